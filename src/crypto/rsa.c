/*
 * RSA public keys for MTProto: PEM parsing, the MTProto key fingerprint, the
 * raw public operation, and RSA_PAD (PROTOCOL.md §2.4, §6.3.5).
 */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "crypto/crypto.h"

#define RSA_MIN_BITS 1024
#define RSA_MAX_BITS 4096
/* A PEM public key of 4096 bits is under 1 KiB; refuse silly sizes before
 * copying the text. */
#define PEM_MAX_LEN 16384

/* Number of significant bits of a big-endian number with no leading zero. */
static size_t bit_length(const uint8_t *p, size_t len) {
  if (len == 0) return 0;
  size_t bits = (len - 1) * 8;
  for (uint8_t top = p[0]; top; top >>= 1) bits++;
  return bits;
}

int mtci_rsa_key_from_ne(mtci_rsa_key *k, const uint8_t *n, size_t n_len, const uint8_t *e,
                         size_t e_len) {
  if (!k || (!n && n_len) || (!e && e_len)) return MTC_ERR_INVALID_ARG;
  while (n_len > 0 && n[0] == 0) n++, n_len--;
  while (e_len > 0 && e[0] == 0) e++, e_len--;
  size_t bits = bit_length(n, n_len);
  /* n odd (a product of odd primes; also what Montgomery exponentiation
   * needs); e odd and > 1 (even e is never invertible mod phi(n), e = 1
   * encrypts nothing). */
  if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS || (n[n_len - 1] & 1) == 0)
    return MTC_ERR_RSA_KEY;
  if (e_len == 0 || e_len > sizeof k->e || (e[e_len - 1] & 1) == 0 || (e_len == 1 && e[0] == 1))
    return MTC_ERR_RSA_KEY;
  memset(k, 0, sizeof *k);
  memcpy(k->n, n, n_len);
  k->n_len = n_len;
  memcpy(k->e, e, e_len);
  k->e_len = e_len;
  k->fingerprint = mtci_rsa_fingerprint(k);
  return 0;
}

int mtci_rsa_key_from_pem(mtci_rsa_key *k, const char *pem, size_t pem_len) {
  if (!k || (!pem && pem_len)) return MTC_ERR_INVALID_ARG;
  if (pem_len == 0 || pem_len > PEM_MAX_LEN) return MTC_ERR_RSA_KEY;
  /* mbedTLS treats a buffer as PEM only if it is NUL-terminated and the NUL
   * is counted in the length. */
  unsigned char *buf = malloc(pem_len + 1);
  if (!buf) return MTC_ERR_NOMEM;
  memcpy(buf, pem, pem_len);
  buf[pem_len] = 0;

  mbedtls_pk_context pk;
  mbedtls_pk_init(&pk);
  mbedtls_mpi N, E;
  mbedtls_mpi_init(&N);
  mbedtls_mpi_init(&E);
  uint8_t nb[RSA_MAX_BITS / 8 + 1], eb[sizeof k->e];
  int rc = MTC_ERR_RSA_KEY;
  /* Handles both "RSA PUBLIC KEY" (PKCS#1) and "PUBLIC KEY" (SPKI); a
   * private key or certificate PEM does not match and fails here. */
  int ret = mbedtls_pk_parse_public_key(&pk, buf, pem_len + 1);
  if (ret == MBEDTLS_ERR_PK_ALLOC_FAILED) {
    rc = MTC_ERR_NOMEM;
  } else if (ret == 0 && mbedtls_pk_get_type(&pk) == MBEDTLS_PK_RSA &&
             mbedtls_rsa_export(mbedtls_pk_rsa(pk), &N, NULL, NULL, NULL, &E) == 0 &&
             mbedtls_mpi_size(&N) <= sizeof nb && mbedtls_mpi_size(&E) <= sizeof eb) {
    size_t n_len = mbedtls_mpi_size(&N), e_len = mbedtls_mpi_size(&E);
    if (mbedtls_mpi_write_binary(&N, nb, n_len) == 0 &&
        mbedtls_mpi_write_binary(&E, eb, e_len) == 0)
      rc = mtci_rsa_key_from_ne(k, nb, n_len, eb, e_len);
  }
  mbedtls_mpi_free(&N);
  mbedtls_mpi_free(&E);
  mbedtls_pk_free(&pk);
  free(buf);
  return rc;
}

/* Feed x to the hash as TL `bytes`: length prefix, data, zero pad to 4. */
static void sha1_tl_bytes(mtci_sha1_ctx *c, const uint8_t *x, size_t len) {
  static const uint8_t zeros[3] = {0, 0, 0};
  uint8_t hdr[4];
  size_t hdr_len;
  if (len < 254) {
    hdr[0] = (uint8_t)len;
    hdr_len = 1;
  } else {
    hdr[0] = 0xfe;
    hdr[1] = (uint8_t)len;
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)(len >> 16);
    hdr_len = 4;
  }
  mtci_sha1_update(c, hdr, hdr_len);
  mtci_sha1_update(c, x, len);
  size_t pad = (4 - (hdr_len + len) % 4) % 4;
  if (pad) mtci_sha1_update(c, zeros, pad);
}

uint64_t mtci_rsa_fingerprint(const mtci_rsa_key *k) {
  if (!k) return 0;
  mtci_sha1_ctx c;
  uint8_t d[MTCI_SHA1_LEN];
  mtci_sha1_init(&c);
  sha1_tl_bytes(&c, k->n, k->n_len);
  sha1_tl_bytes(&c, k->e, k->e_len);
  mtci_sha1_final(&c, d);
  /* The "lower 64 bits" of the digest: bytes 12..19, little-endian. */
  uint64_t fp = 0;
  for (int i = 7; i >= 0; i--) fp = fp << 8 | d[12 + i];
  return fp;
}

/* 1 if the big-endian x (any length, leading zeros allowed) is < n. */
static int below_modulus(const mtci_rsa_key *k, const uint8_t *x, size_t len) {
  while (len > 0 && x[0] == 0) x++, len--;
  if (len != k->n_len) return len < k->n_len;
  return memcmp(x, k->n, len) < 0;
}

int mtci_rsa_public_raw(const mtci_rsa_key *k, const uint8_t *in, size_t in_len, uint8_t *out,
                        size_t out_len) {
  if (!k || (!in && in_len) || !out || k->n_len == 0 || k->n_len > sizeof k->n)
    return MTC_ERR_INVALID_ARG;
  if (out_len < k->n_len) return MTC_ERR_BUFFER_TOO_SMALL;
  if (!below_modulus(k, in, in_len)) return MTC_ERR_RSA_INPUT;
  return mtci_modexp(in, in_len, k->e, k->e_len, k->n, k->n_len, out, k->n_len);
}

/* A random draw; a callback's failure code is passed on (a non-negative
 * "failure" cannot happen by contract, but is not mistaken for success). */
static int draw(mtc_random_fn rnd, void *ud, uint8_t *out, size_t len) {
  int rc = rnd(ud, out, len);
  if (rc == 0) return 0;
  return rc < 0 ? rc : MTC_ERR_RANDOM;
}

/* A healthy source yields a key_aes_encrypted below n within a few tries
 * (each try fails with probability < 1/2 for a 2048-bit n); a source that
 * keeps failing is broken, and the loop must end. */
#define RSA_PAD_MAX_TRIES 64

/*
 * RSA_PAD (MTProto 2.0):
 *   data_with_padding (192) = data || random
 *   temp_key (32)           = random
 *   data_with_hash (224)    = reverse(data_with_padding) || SHA256(temp_key || data_with_padding)
 *   aes_encrypted (224)     = AES256-IGE(data_with_hash, temp_key, iv = 0^32)
 *   key_aes_encrypted (256) = (temp_key XOR SHA256(aes_encrypted)) || aes_encrypted
 *   out                     = key_aes_encrypted ^ e mod n    (retry temp_key while >= n)
 */
int mtci_rsa_pad_encrypt(const mtci_rsa_key *k, const uint8_t *data, size_t data_len,
                         mtc_random_fn rnd, void *rnd_ud, uint8_t out[256]) {
  if (!k || (!data && data_len) || !rnd || !out) return MTC_ERR_INVALID_ARG;
  if (k->n_len != 256) return MTC_ERR_RSA_KEY;
  if (data_len > 144) return MTC_ERR_BAD_LENGTH;

  uint8_t dwp[192], temp_key[32], dwh[224], kae[256], h[32];
  static const uint8_t zero_iv[32];
  mtci_sha256_ctx c;
  int rc;
  if (data_len) memcpy(dwp, data, data_len);
  rc = draw(rnd, rnd_ud, dwp + data_len, sizeof dwp - data_len); /* >= 48 bytes */
  for (int tries = 0; rc == 0; tries++) {
    if (tries == RSA_PAD_MAX_TRIES) {
      rc = MTC_ERR_RANDOM;
      break;
    }
    rc = draw(rnd, rnd_ud, temp_key, sizeof temp_key);
    if (rc != 0) break;
    for (size_t i = 0; i < sizeof dwp; i++) dwh[i] = dwp[sizeof dwp - 1 - i];
    mtci_sha256_init(&c);
    mtci_sha256_update(&c, temp_key, sizeof temp_key);
    mtci_sha256_update(&c, dwp, sizeof dwp);
    mtci_sha256_final(&c, dwh + sizeof dwp);
    rc = mtci_aes256_ige_encrypt(temp_key, zero_iv, dwh, kae + 32, sizeof dwh);
    if (rc != 0) break;
    mtci_sha256(kae + 32, sizeof dwh, h);
    for (size_t i = 0; i < 32; i++) kae[i] = temp_key[i] ^ h[i];
    if (below_modulus(k, kae, sizeof kae)) {
      rc = mtci_rsa_public_raw(k, kae, sizeof kae, out, 256);
      break;
    }
  }
  mtci_zeroize(dwp, sizeof dwp);
  mtci_zeroize(temp_key, sizeof temp_key);
  mtci_zeroize(dwh, sizeof dwh);
  mtci_zeroize(kae, sizeof kae);
  mtci_zeroize(h, sizeof h);
  mtci_zeroize(&c, sizeof c);
  return rc;
}
