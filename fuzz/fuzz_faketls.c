/*
 * Fake-TLS parsers on arbitrary bytes: the incremental ServerHello check,
 * then the record reader on what follows (or on everything when the check
 * fails), plus the MTProxy-side ClientHello check and parser.
 *
 * Input: byte 0 seeds the chunk sizes; the rest is the byte stream. The
 * ServerHello check uses the secret and client random of the alexbers
 * capture (tests/data), so that seed passes and reaches the record reader.
 */
#include <stdint.h>
#include <string.h>

#include "transport/faketls.h"

static const uint8_t secret[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t client_random[32] = {
    0xa1, 0x32, 0xe3, 0x91, 0x60, 0x83, 0xb3, 0x14, 0xc1, 0xb9, 0x74, 0xd0, 0x57, 0x85, 0xe8, 0xee,
    0x70, 0x45, 0x6e, 0x5f, 0x86, 0x6d, 0x96, 0x57, 0xd5, 0x0a, 0x5c, 0x08, 0xea, 0x38, 0x31, 0x8e};

static uint32_t next_chunk(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return 1 + (*s >> 16) % 700;
}

static int zero_rng(void *ud, uint8_t *out, size_t len) {
  (void)ud;
  memset(out, 0x5a, len);
  return 0;
}

static void read_records(const uint8_t *d, size_t n, uint32_t *seed) {
  static uint8_t out[1 << 16];
  mtci_tls_reader r;
  mtci_tls_reader_init(&r);
  size_t off = 0, total = 0;
  while (off < n) {
    size_t c = next_chunk(seed), got = 0;
    if (c > n - off) c = n - off;
    if (c > sizeof out) c = sizeof out;
    if (mtci_tls_reader_feed(&r, d + off, c, out, &got) < 0) break;
    if (got > c) __builtin_trap();
    total += got;
    off += c;
  }
  (void)total;
  (void)mtci_tls_reader_eof(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint32_t seed = data[0];
  const uint8_t *d = data + 1;
  size_t n = size - 1;

  mtci_tls_sh sh;
  mtci_tls_sh_init(&sh, secret, client_random);
  size_t off = 0;
  int rc = 0;
  while (off < n && rc == 0) {
    size_t c = next_chunk(&seed), used = 0;
    if (c > n - off) c = n - off;
    rc = mtci_tls_sh_feed(&sh, d + off, c, &used);
    if (rc >= 0 && used > c) __builtin_trap();
    if (rc >= 0) off += used;
  }
  (void)mtci_tls_sh_eof(&sh);
  mtci_tls_sh_free(&sh);
  if (rc == 1) read_records(d + off, n - off, &seed);
  else read_records(d, n, &seed);

  /* MTProxy side: header, digest, SNI parse, and the reply builder's parser */
  uint32_t ts;
  (void)mtci_tls_client_hello_size(d, n);
  (void)mtci_tls_server_check_hello(d, n, secret, (const uint8_t *)"example.com", 11, 1700000000,
                                    0, &ts);
  if (n >= 5 + 512 && n <= 5 + MTCI_TLS_MAX_RECORD && mtci_tls_client_hello_size(d, n) == (int)n) {
    static uint8_t resp[512];
    size_t rlen;
    (void)mtci_tls_server_hello(secret, d, n, 64, zero_rng, NULL, resp, sizeof resp, &rlen);
  }
  return 0;
}
