/*
 * SHA-1, SHA-256 and HMAC-SHA-256. The streaming state (chaining value,
 * byte count, partial block) is ours; only the 64-byte compression function
 * is switched: SHA-NI when active, else mbedTLS's block function. Both work
 * on the same chaining value, so the accel mask may change mid-hash.
 */
#include <string.h>

#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>

#include "crypto/accel.h"
#include "crypto/crypto.h"

static void sha1_blocks(uint32_t h[5], const uint8_t *p, size_t n) {
  if (mtci_crypto_accel_active() & MTCI_ACCEL_SHANI) {
    mtci_shani_sha1_blocks(h, p, n);
    return;
  }
  mbedtls_sha1_context m;
  mbedtls_sha1_init(&m);
  memcpy(m.state, h, sizeof m.state);
  for (size_t i = 0; i < n; i++) (void)mbedtls_internal_sha1_process(&m, p + 64 * i);
  memcpy(h, m.state, sizeof m.state);
  mbedtls_sha1_free(&m); /* zeroizes */
}

static void sha256_blocks(uint32_t h[8], const uint8_t *p, size_t n) {
  if (mtci_crypto_accel_active() & MTCI_ACCEL_SHANI) {
    mtci_shani_sha256_blocks(h, p, n);
    return;
  }
  mbedtls_sha256_context m;
  mbedtls_sha256_init(&m);
  memcpy(m.state, h, sizeof m.state);
  for (size_t i = 0; i < n; i++) (void)mbedtls_internal_sha256_process(&m, p + 64 * i);
  memcpy(h, m.state, sizeof m.state);
  mbedtls_sha256_free(&m);
}

typedef void (*blocks_fn)(uint32_t *h, const uint8_t *p, size_t n);

/* Shared Merkle-Damgard buffering for both hashes. */
static void md_update(uint32_t *h, uint64_t *total, uint8_t buf[64], size_t *buf_len,
                      blocks_fn blocks, const uint8_t *p, size_t len) {
  if (len == 0) return;
  *total += len;
  if (*buf_len) {
    size_t take = 64 - *buf_len;
    if (take > len) take = len;
    memcpy(buf + *buf_len, p, take);
    *buf_len += take;
    p += take;
    len -= take;
    if (*buf_len < 64) return;
    blocks(h, buf, 1);
    *buf_len = 0;
  }
  if (len >= 64) {
    blocks(h, p, len / 64);
    p += len & ~(size_t)63;
    len &= 63;
  }
  if (len) {
    memcpy(buf, p, len);
    *buf_len = len;
  }
}

/* Pad: 0x80, zeros, 64-bit big-endian bit count. */
static void md_final(uint32_t *h, uint64_t total, uint8_t buf[64], size_t buf_len,
                     blocks_fn blocks) {
  const uint64_t bits = total << 3;
  buf[buf_len++] = 0x80;
  if (buf_len > 56) {
    memset(buf + buf_len, 0, 64 - buf_len);
    blocks(h, buf, 1);
    buf_len = 0;
  }
  memset(buf + buf_len, 0, 56 - buf_len);
  for (int i = 0; i < 8; i++) buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  blocks(h, buf, 1);
}

static void put_be32(uint8_t *o, uint32_t v) {
  o[0] = (uint8_t)(v >> 24);
  o[1] = (uint8_t)(v >> 16);
  o[2] = (uint8_t)(v >> 8);
  o[3] = (uint8_t)v;
}

/* ---- SHA-1 ---- */

static void sha1_blocks_cb(uint32_t *h, const uint8_t *p, size_t n) { sha1_blocks(h, p, n); }

void mtci_sha1_init(mtci_sha1_ctx *c) {
  static const uint32_t iv[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  memcpy(c->h, iv, sizeof iv);
  c->total = 0;
  c->buf_len = 0;
}

void mtci_sha1_update(mtci_sha1_ctx *c, const void *data, size_t len) {
  md_update(c->h, &c->total, c->buf, &c->buf_len, sha1_blocks_cb, data, len);
}

void mtci_sha1_final(mtci_sha1_ctx *c, uint8_t out[MTCI_SHA1_LEN]) {
  md_final(c->h, c->total, c->buf, c->buf_len, sha1_blocks_cb);
  for (int i = 0; i < 5; i++) put_be32(out + 4 * i, c->h[i]);
  mtci_zeroize(c, sizeof *c);
}

void mtci_sha1(const void *data, size_t len, uint8_t out[MTCI_SHA1_LEN]) {
  mtci_sha1_ctx c;
  mtci_sha1_init(&c);
  mtci_sha1_update(&c, data, len);
  mtci_sha1_final(&c, out);
}

/* ---- SHA-256 ---- */

static void sha256_blocks_cb(uint32_t *h, const uint8_t *p, size_t n) { sha256_blocks(h, p, n); }

void mtci_sha256_init(mtci_sha256_ctx *c) {
  static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
  memcpy(c->h, iv, sizeof iv);
  c->total = 0;
  c->buf_len = 0;
}

void mtci_sha256_update(mtci_sha256_ctx *c, const void *data, size_t len) {
  md_update(c->h, &c->total, c->buf, &c->buf_len, sha256_blocks_cb, data, len);
}

void mtci_sha256_final(mtci_sha256_ctx *c, uint8_t out[MTCI_SHA256_LEN]) {
  md_final(c->h, c->total, c->buf, c->buf_len, sha256_blocks_cb);
  for (int i = 0; i < 8; i++) put_be32(out + 4 * i, c->h[i]);
  mtci_zeroize(c, sizeof *c);
}

void mtci_sha256(const void *data, size_t len, uint8_t out[MTCI_SHA256_LEN]) {
  mtci_sha256_ctx c;
  mtci_sha256_init(&c);
  mtci_sha256_update(&c, data, len);
  mtci_sha256_final(&c, out);
}

/* ---- HMAC-SHA-256 (RFC 2104) ---- */

void mtci_hmac_sha256_init(mtci_hmac_sha256_ctx *c, const void *key, size_t key_len) {
  uint8_t k[64] = {0}, ipad[64];
  if (key_len > 64) mtci_sha256(key, key_len, k);
  else if (key_len) memcpy(k, key, key_len);
  for (int i = 0; i < 64; i++) {
    ipad[i] = (uint8_t)(k[i] ^ 0x36);
    c->okey[i] = (uint8_t)(k[i] ^ 0x5c);
  }
  mtci_sha256_init(&c->inner);
  mtci_sha256_update(&c->inner, ipad, 64);
  mtci_zeroize(k, sizeof k);
  mtci_zeroize(ipad, sizeof ipad);
}

void mtci_hmac_sha256_update(mtci_hmac_sha256_ctx *c, const void *data, size_t len) {
  mtci_sha256_update(&c->inner, data, len);
}

void mtci_hmac_sha256_final(mtci_hmac_sha256_ctx *c, uint8_t out[MTCI_SHA256_LEN]) {
  uint8_t ih[MTCI_SHA256_LEN];
  mtci_sha256_ctx o;
  mtci_sha256_final(&c->inner, ih);
  mtci_sha256_init(&o);
  mtci_sha256_update(&o, c->okey, 64);
  mtci_sha256_update(&o, ih, sizeof ih);
  mtci_sha256_final(&o, out);
  mtci_zeroize(ih, sizeof ih);
  mtci_zeroize(c, sizeof *c);
}

void mtci_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                      uint8_t out[MTCI_SHA256_LEN]) {
  mtci_hmac_sha256_ctx c;
  mtci_hmac_sha256_init(&c, key, key_len);
  mtci_hmac_sha256_update(&c, data, len);
  mtci_hmac_sha256_final(&c, out);
}
