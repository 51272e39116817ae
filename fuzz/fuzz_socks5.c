/* Fuzz the SOCKS5 client: byte 0 picks the setup (bit 0: credentials,
 * bits 1-2: target type), byte 1 the feed chunk size; the rest is what the
 * server sends. Client messages are taken as soon as they are pending, as
 * a well-behaved caller would. */
#include <stdint.h>
#include <string.h>

#include "transport/socks5.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 2) return 0;
  static const uint8_t v4[4] = {149, 154, 167, 51};
  static const uint8_t v6[16] = {0x20, 0x01, 0x0b, 0x28, 0xf2, 0x3d, 0xf0, 0x01,
                                 0,    0,    0,    0,    0,    0,    0,    10};
  static const char name[] = "venus.web.telegram.org";
  uint8_t atyp;
  const uint8_t *addr;
  size_t alen;
  switch ((d[0] >> 1) & 3) {
  case 0: atyp = MTCI_SOCKS5_ATYP_IPV4; addr = v4; alen = 4; break;
  case 1: atyp = MTCI_SOCKS5_ATYP_IPV6; addr = v6; alen = 16; break;
  default:
    atyp = MTCI_SOCKS5_ATYP_DOMAIN;
    addr = (const uint8_t *)name;
    alen = sizeof name - 1;
    break;
  }
  int auth = d[0] & 1;
  size_t step = (size_t)d[1] % 16 + 1;
  mtci_socks5 s;
  int rc = mtci_socks5_init(&s, atyp, addr, alen, 443, auth ? (const uint8_t *)"user" : NULL,
                            auth ? 4 : 0, auth ? (const uint8_t *)"pass" : NULL, auth ? 4 : 0);
  check(rc == 0);
  const uint8_t *srv = d + 2;
  size_t left = n - 2;
  while (left > 0) {
    const uint8_t *p;
    size_t pend = mtci_socks5_pending(&s, &p);
    if (pend) {
      check(p != NULL && pend <= sizeof s.out);
      check(mtci_socks5_sent(&s, pend) == 0);
    }
    size_t len = left < step ? left : step, used = 0;
    rc = mtci_socks5_feed(&s, srv, len, &used);
    check(used <= len);
    if (rc < 0) {
      check(rc <= -355 && rc >= -370);
      check(mtci_socks5_feed(&s, srv, len, NULL) == rc); /* sticky */
      break;
    }
    if (rc == MTCI_SOCKS5_DONE) {
      check(mtci_socks5_done(&s));
      check(s.bnd_addr_len >= 1 && s.bnd_addr_len <= 255);
      break;
    }
    check(used == len);
    srv += len;
    left -= len;
  }
  mtci_socks5_free(&s);
  return 0;
}
