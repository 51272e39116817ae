/*
 * AES-256: key schedule, single blocks, IGE, CBC decryption and CTR stream.
 * Each operation dispatches to the AES-NI kernels (aes_ni.c) when active,
 * else to mbedTLS block by block. Both read the same round-key layout
 * (crypto.h), so the backend can change between key setup and use.
 */
#include <string.h>

#include <mbedtls/aes.h>

#include "crypto/accel.h"
#include "crypto/crypto.h"

_Static_assert(sizeof(((mtci_aes256 *)0)->rk_enc) == 15 * 16, "AES-256 has 15 round keys");

static int use_ni(void) { return (mtci_crypto_accel_active() & MTCI_ACCEL_AESNI) != 0; }

/* mbedTLS reads only nr and rk when crypting, so a context can borrow our
 * round keys without copying them (and so without a self-pointer in ours). */
static void mb_block(const uint32_t rk[60], int mode, const uint8_t in[16], uint8_t out[16]) {
  mbedtls_aes_context t;
  t.nr = 14;
  t.rk = (uint32_t *)rk;
  (void)mbedtls_aes_crypt_ecb(&t, mode, in, out);
}

int mtci_aes256_init(mtci_aes256 *k, const uint8_t key[32]) {
  if (use_ni()) {
    mtci_aesni_expand(key, k->rk_enc, k->rk_dec);
    return 0;
  }
  mbedtls_aes_context t;
  int rc = 0;
  mbedtls_aes_init(&t);
  if (mbedtls_aes_setkey_enc(&t, key, 256) != 0) rc = MTC_ERR_CRYPTO;
  else memcpy(k->rk_enc, t.rk, sizeof k->rk_enc);
  if (rc == 0 && mbedtls_aes_setkey_dec(&t, key, 256) != 0) rc = MTC_ERR_CRYPTO;
  else if (rc == 0) memcpy(k->rk_dec, t.rk, sizeof k->rk_dec);
  mbedtls_aes_free(&t); /* zeroizes */
  if (rc) mtci_zeroize(k, sizeof *k);
  return rc;
}

void mtci_aes256_free(mtci_aes256 *k) {
  if (k) mtci_zeroize(k, sizeof *k);
}

void mtci_aes256_encrypt_block(const mtci_aes256 *k, const uint8_t in[16], uint8_t out[16]) {
  if (use_ni()) mtci_aesni_encrypt_block(k->rk_enc, in, out);
  else mb_block(k->rk_enc, MBEDTLS_AES_ENCRYPT, in, out);
}

void mtci_aes256_decrypt_block(const mtci_aes256 *k, const uint8_t in[16], uint8_t out[16]) {
  if (use_ni()) mtci_aesni_decrypt_block(k->rk_dec, in, out);
  else mb_block(k->rk_dec, MBEDTLS_AES_DECRYPT, in, out);
}

static void xor16(uint8_t *o, const uint8_t *a, const uint8_t *b) {
  for (int i = 0; i < 16; i++) o[i] = (uint8_t)(a[i] ^ b[i]);
}

/*
 * IGE (PROTOCOL.md §6.4), c_prev = iv[0:16], p_prev = iv[16:32]:
 *   encrypt: c = E(p ^ c_prev) ^ p_prev      decrypt: p = D(c ^ p_prev) ^ c_prev
 * The current input block is saved before out is written, so out may be in.
 */
static void ige_portable(const uint32_t rk[60], int mode, uint8_t chain[32], const uint8_t *in,
                         uint8_t *out, size_t nblocks) {
  /* enc: x = c_prev (xored into the input), y = p_prev (xored into output);
   * dec: x = p_prev, y = c_prev. After a block, y <- input, x <- output. */
  uint8_t *x = mode == MBEDTLS_AES_ENCRYPT ? chain : chain + 16;
  uint8_t *y = mode == MBEDTLS_AES_ENCRYPT ? chain + 16 : chain;
  uint8_t t[16], saved[16];
  for (size_t i = 0; i < nblocks; i++, in += 16, out += 16) {
    memcpy(saved, in, 16);
    xor16(t, saved, x);
    mb_block(rk, mode, t, t);
    xor16(out, t, y);
    memcpy(x, out, 16);
    memcpy(y, saved, 16);
  }
  mtci_zeroize(t, sizeof t);
  mtci_zeroize(saved, sizeof saved);
}

static int ige(const uint8_t key[32], const uint8_t iv[32], const uint8_t *in, uint8_t *out,
               size_t len, int mode) {
  if (len % 16) return MTC_ERR_BAD_LENGTH;
  if (len == 0) return 0;
  mtci_aes256 k;
  uint8_t chain[32];
  int rc = mtci_aes256_init(&k, key);
  if (rc) return rc;
  memcpy(chain, iv, 32);
  const uint32_t *rk = mode == MBEDTLS_AES_ENCRYPT ? k.rk_enc : k.rk_dec;
  if (use_ni()) {
    if (mode == MBEDTLS_AES_ENCRYPT) mtci_aesni_ige_encrypt(rk, chain, in, out, len / 16);
    else mtci_aesni_ige_decrypt(rk, chain, in, out, len / 16);
  } else {
    ige_portable(rk, mode, chain, in, out, len / 16);
  }
  mtci_zeroize(&k, sizeof k);
  mtci_zeroize(chain, sizeof chain);
  return 0;
}

int mtci_aes256_ige_encrypt(const uint8_t key[32], const uint8_t iv[32], const uint8_t *in,
                            uint8_t *out, size_t len) {
  return ige(key, iv, in, out, len, MBEDTLS_AES_ENCRYPT);
}

int mtci_aes256_ige_decrypt(const uint8_t key[32], const uint8_t iv[32], const uint8_t *in,
                            uint8_t *out, size_t len) {
  return ige(key, iv, in, out, len, MBEDTLS_AES_DECRYPT);
}

int mtci_aes256_cbc_decrypt(const uint8_t key[32], const uint8_t iv[16], const uint8_t *in,
                            uint8_t *out, size_t len) {
  if (len % 16) return MTC_ERR_BAD_LENGTH;
  if (len == 0) return 0;
  mtci_aes256 k;
  uint8_t prev[16], saved[16], t[16];
  int rc = mtci_aes256_init(&k, key);
  if (rc) return rc;
  memcpy(prev, iv, 16);
  if (use_ni()) {
    mtci_aesni_cbc_decrypt(k.rk_dec, prev, in, out, len / 16);
  } else {
    for (size_t off = 0; off < len; off += 16) {
      memcpy(saved, in + off, 16);
      mb_block(k.rk_dec, MBEDTLS_AES_DECRYPT, saved, t);
      xor16(out + off, t, prev);
      memcpy(prev, saved, 16);
    }
  }
  mtci_zeroize(&k, sizeof k);
  mtci_zeroize(t, sizeof t);
  mtci_zeroize(saved, sizeof saved);
  return 0;
}

/* ---- CTR stream ---- */

static void ctr_inc(uint8_t ctr[16]) {
  for (int i = 15; i >= 0; i--)
    if (++ctr[i]) break;
}

int mtci_aes_ctr_init(mtci_aes_ctr *c, const uint8_t key[32], const uint8_t iv[16]) {
  int rc = mtci_aes256_init(&c->key, key);
  if (rc) return rc;
  memcpy(c->ctr, iv, 16);
  c->ks_pos = c->ks_len = 0;
  return 0;
}

void mtci_aes_ctr_xor(mtci_aes_ctr *c, const uint8_t *in, uint8_t *out, size_t len) {
  /* 1. leftover keystream from the previous call */
  while (len && c->ks_pos < c->ks_len) {
    *out++ = (uint8_t)(*in++ ^ c->ks[c->ks_pos++]);
    len--;
  }
  if (len == 0) return;
  /* 2. whole blocks straight from the counter */
  size_t nblocks = len / 16;
  if (nblocks) {
    if (use_ni()) {
      mtci_aesni_ctr_xor(c->key.rk_enc, c->ctr, in, out, nblocks);
    } else {
      uint8_t ks[16];
      for (size_t i = 0; i < nblocks; i++) {
        mb_block(c->key.rk_enc, MBEDTLS_AES_ENCRYPT, c->ctr, ks);
        ctr_inc(c->ctr);
        xor16(out + 16 * i, in + 16 * i, ks);
      }
      mtci_zeroize(ks, sizeof ks);
    }
    in += 16 * nblocks;
    out += 16 * nblocks;
    len -= 16 * nblocks;
  }
  /* 3. a partial tail: buffer one keystream block, keep the rest */
  if (len) {
    mtci_aes256_encrypt_block(&c->key, c->ctr, c->ks);
    ctr_inc(c->ctr);
    c->ks_len = 16;
    c->ks_pos = 0;
    while (len--) *out++ = (uint8_t)(*in++ ^ c->ks[c->ks_pos++]);
  }
}

void mtci_aes_ctr_free(mtci_aes_ctr *c) {
  if (c) mtci_zeroize(c, sizeof *c);
}
