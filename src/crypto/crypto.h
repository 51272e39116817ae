/*
 * Internal crypto API (mtci_*). src/crypto/ is the only folder that includes
 * mbedTLS; nothing here exposes an mbedTLS type, so a move to mbedTLS 3.x
 * touches this folder only.
 *
 * Conventions: functions return 0 or a negative mtc_error. Output buffers may
 * alias inputs where stated. Contexts are caller-allocated; *_free zeroizes
 * and is safe on a zeroed or already-freed context.
 *
 * Accelerated paths (AES-NI, SHA-NI) sit behind the same functions and are
 * chosen at run time; mtci_crypto_set_accel() lets tests force the portable
 * mbedTLS path so both are checked against the same vectors.
 */
#ifndef MTCI_CRYPTO_H
#define MTCI_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

/* ---- CPU feature dispatch -------------------------------------------- */

enum {
  MTCI_ACCEL_AESNI = 1u << 0, /* AES-NI + SSE4.1 (also PCLMUL not needed) */
  MTCI_ACCEL_SHANI = 1u << 1, /* SHA extensions (SHA-1 and SHA-256) */
  MTCI_ACCEL_MULX = 1u << 2   /* BMI2 mulx + ADX: mtci_modexp's Montgomery kernels; without
                                 it they are portable C (mbedTLS: montgomery.h) */
};
/* Bitmask of features the CPU offers (independent of the current mask). */
unsigned mtci_crypto_accel_available(void);
/* Bitmask in use now: available & allowed. */
unsigned mtci_crypto_accel_active(void);
/* Restrict acceleration to `allowed` (0 = portable only, ~0u = all).
 * Process-wide; for tests and benchmarks. Not thread-safe against
 * concurrent crypto calls. */
void mtci_crypto_set_accel(unsigned allowed);

/* ---- utilities -------------------------------------------------------- */

/* Overwrite n bytes with zeros in a way the compiler cannot drop. */
void mtci_zeroize(void *p, size_t n);
/* 1 if a[0..n) == b[0..n), else 0; time depends on n only. */
int mtci_ct_equal(const void *a, const void *b, size_t n);

/* ---- hashes ----------------------------------------------------------- */

#define MTCI_SHA1_LEN 20
#define MTCI_SHA256_LEN 32

typedef struct mtci_sha1_ctx {
  uint32_t h[5];
  uint64_t total;
  uint8_t buf[64];
  size_t buf_len;
} mtci_sha1_ctx;

typedef struct mtci_sha256_ctx {
  uint32_t h[8];
  uint64_t total;
  uint8_t buf[64];
  size_t buf_len;
} mtci_sha256_ctx;

void mtci_sha1_init(mtci_sha1_ctx *c);
void mtci_sha1_update(mtci_sha1_ctx *c, const void *data, size_t len);
void mtci_sha1_final(mtci_sha1_ctx *c, uint8_t out[MTCI_SHA1_LEN]); /* zeroizes c */
void mtci_sha1(const void *data, size_t len, uint8_t out[MTCI_SHA1_LEN]);

void mtci_sha256_init(mtci_sha256_ctx *c);
void mtci_sha256_update(mtci_sha256_ctx *c, const void *data, size_t len);
void mtci_sha256_final(mtci_sha256_ctx *c, uint8_t out[MTCI_SHA256_LEN]); /* zeroizes c */
void mtci_sha256(const void *data, size_t len, uint8_t out[MTCI_SHA256_LEN]);

typedef struct mtci_hmac_sha256_ctx {
  mtci_sha256_ctx inner;
  uint8_t okey[64]; /* key XOR opad */
} mtci_hmac_sha256_ctx;

void mtci_hmac_sha256_init(mtci_hmac_sha256_ctx *c, const void *key, size_t key_len);
void mtci_hmac_sha256_update(mtci_hmac_sha256_ctx *c, const void *data, size_t len);
void mtci_hmac_sha256_final(mtci_hmac_sha256_ctx *c, uint8_t out[MTCI_SHA256_LEN]); /* zeroizes c */
void mtci_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                      uint8_t out[MTCI_SHA256_LEN]);

/* ---- AES-256 ---------------------------------------------------------- */

/*
 * Expanded AES-256 key for both directions. One layout serves both backends:
 * 15 round keys as host-order words (mbedTLS's layout, which on x86 is byte
 * for byte the AES-NI layout), decryption keys in "equivalent inverse cipher"
 * form. So a key expanded under one accel mask stays valid under another.
 * Plain data: may be copied.
 */
typedef struct mtci_aes256 {
  _Alignas(16) uint32_t rk_enc[60];
  _Alignas(16) uint32_t rk_dec[60];
} mtci_aes256;

int mtci_aes256_init(mtci_aes256 *k, const uint8_t key[32]);
void mtci_aes256_free(mtci_aes256 *k);
void mtci_aes256_encrypt_block(const mtci_aes256 *k, const uint8_t in[16], uint8_t out[16]);
void mtci_aes256_decrypt_block(const mtci_aes256 *k, const uint8_t in[16], uint8_t out[16]);

/*
 * AES-256-IGE over len bytes (len % 16 == 0, else MTC_ERR_BAD_LENGTH).
 * iv is 32 bytes: iv[0:16] = previous ciphertext block, iv[16:32] = previous
 * plaintext block (OpenSSL AES_ige_encrypt convention). out may equal in.
 */
int mtci_aes256_ige_encrypt(const uint8_t key[32], const uint8_t iv[32], const uint8_t *in,
                            uint8_t *out, size_t len);
int mtci_aes256_ige_decrypt(const uint8_t key[32], const uint8_t iv[32], const uint8_t *in,
                            uint8_t *out, size_t len);

/* AES-256-CBC decryption without padding removal (simple config, §1.7). */
int mtci_aes256_cbc_decrypt(const uint8_t key[32], const uint8_t iv[16], const uint8_t *in,
                            uint8_t *out, size_t len);

/*
 * AES-256-CTR as a stream: the 16-byte IV is the initial counter block,
 * incremented as a big-endian 128-bit integer. State (counter and unused
 * keystream) is kept across calls, so any split of the input gives the same
 * output. out may equal in.
 */
typedef struct mtci_aes_ctr {
  mtci_aes256 key;
  uint8_t ctr[16];
  uint8_t ks[16 * 8]; /* buffered keystream */
  size_t ks_pos;      /* next unused byte of ks; == ks_len when empty */
  size_t ks_len;
} mtci_aes_ctr;

int mtci_aes_ctr_init(mtci_aes_ctr *c, const uint8_t key[32], const uint8_t iv[16]);
void mtci_aes_ctr_xor(mtci_aes_ctr *c, const uint8_t *in, uint8_t *out, size_t len);
void mtci_aes_ctr_free(mtci_aes_ctr *c);

/* ---- MTProto key derivation ------------------------------------------- */

#define MTCI_AUTH_KEY_LEN 256

/* auth_key_id = SHA1(auth_key)[12:20] (wire order). */
void mtci_auth_key_id(const uint8_t auth_key[MTCI_AUTH_KEY_LEN], uint8_t out[8]);

/*
 * MTProto 2.0: msg_key_large = SHA256(auth_key[88+x : 120+x] || plaintext),
 * msg_key = msg_key_large[8:24]. x = 0 client->server, 8 server->client.
 * msg_key_large may be NULL (it gives the quick-ack token).
 */
void mtci_mtp2_msg_key(const uint8_t auth_key[MTCI_AUTH_KEY_LEN], int x, const uint8_t *plain,
                       size_t len, uint8_t msg_key[16], uint8_t msg_key_large[32]);
/* MTProto 2.0 KDF: aes_key (32) and aes_iv (32) from auth_key, msg_key, x. */
void mtci_mtp2_kdf(const uint8_t auth_key[MTCI_AUTH_KEY_LEN], const uint8_t msg_key[16], int x,
                   uint8_t aes_key[32], uint8_t aes_iv[32]);
/* MTProto 1.0 KDF (SHA-1 based), used only for bind_auth_key_inner (§6.8). */
void mtci_mtp1_kdf(const uint8_t auth_key[MTCI_AUTH_KEY_LEN], const uint8_t msg_key[16], int x,
                   uint8_t aes_key[32], uint8_t aes_iv[32]);
/* Handshake tmp_aes_key/iv from new_nonce (32) and server_nonce (16), §6.3.7. */
void mtci_dh_tmp_aes(const uint8_t new_nonce[32], const uint8_t server_nonce[16],
                     uint8_t key[32], uint8_t iv[32]);

/* ---- RSA -------------------------------------------------------------- */

/* An RSA public key as plain data (big-endian, minimal, no leading zeros). */
typedef struct mtci_rsa_key {
  uint8_t n[512];
  size_t n_len;
  uint8_t e[8];
  size_t e_len;
  uint64_t fingerprint; /* MTProto fingerprint, filled by the parsers */
} mtci_rsa_key;

/*
 * Parse a PEM public key: PKCS#1 "RSA PUBLIC KEY" or SPKI "PUBLIC KEY".
 * Requires 1024 <= bits <= 4096 and an odd e > 1. Fills fingerprint.
 */
int mtci_rsa_key_from_pem(mtci_rsa_key *k, const char *pem, size_t pem_len);
/* Build from raw big-endian n and e (leading zeros stripped). Fills fingerprint. */
int mtci_rsa_key_from_ne(mtci_rsa_key *k, const uint8_t *n, size_t n_len, const uint8_t *e,
                         size_t e_len);
/* MTProto fingerprint: SHA1(tlbytes(n) || tlbytes(e))[12:20] read as LE u64. */
uint64_t mtci_rsa_fingerprint(const mtci_rsa_key *k);
/*
 * Raw public operation out = in^e mod n, written as n_len big-endian bytes
 * (left-padded). in is big-endian of any length; in >= n -> MTC_ERR_RSA_INPUT.
 * out_len must be >= n_len.
 */
int mtci_rsa_public_raw(const mtci_rsa_key *k, const uint8_t *in, size_t in_len, uint8_t *out,
                        size_t out_len);
/*
 * RSA_PAD (MTProto 2.0, §6.3.5) for a 2048-bit key: data_len <= 144.
 * Draws randomness in this order: (192 - data_len) padding bytes, then a
 * 32-byte temp_key; if the result is >= n it draws a fresh 32-byte temp_key
 * and repeats. out is 256 bytes.
 */
int mtci_rsa_pad_encrypt(const mtci_rsa_key *k, const uint8_t *data, size_t data_len,
                         mtc_random_fn rnd, void *rnd_ud, uint8_t out[256]);

/* ---- big numbers and DH ----------------------------------------------- */

/* out = base^exp mod mod, big-endian, left-padded to out_len (>= mod length).
 * mod must be odd: zero or even -> MTC_ERR_INVALID_ARG; out_len too small ->
 * MTC_ERR_BUFFER_TOO_SMALL; an input over 1024 bytes -> MTC_ERR_BAD_LENGTH.
 * Odd moduli of 1024..4096 bits take the constant-time Montgomery path
 * (montgomery.c: timing independent of the values of base and exp), others
 * mbedTLS. */
int mtci_modexp(const uint8_t *base, size_t base_len, const uint8_t *exp, size_t exp_len,
                const uint8_t *mod, size_t mod_len, uint8_t *out, size_t out_len);

/*
 * DH parameter check (§6.3.8): p must be a 2048-bit safe prime (Telegram's
 * known prime is accepted at once; any other gets a full probabilistic check
 * of p and (p-1)/2), and g in 2..7 must satisfy its residue condition.
 * Returns 0, MTC_ERR_DH_PRIME or MTC_ERR_DH_GENERATOR.
 */
int mtci_dh_check_params(const uint8_t *p, size_t p_len, int32_t g);
/* 1 if p is Telegram's well-known 2048-bit prime (C71CAEB9...2FCC5B). */
int mtci_dh_is_known_prime(const uint8_t *p, size_t p_len);
/* Require 2^(2048-64) < v < p - 2^(2048-64); else MTC_ERR_DH_VALUE. */
int mtci_dh_check_value(const uint8_t *p, size_t p_len, const uint8_t *v, size_t v_len);

/* Factor pq into primes p < q, both below 2^32 (Pollard-Brent, deterministic). */
int mtci_pq_factor(uint64_t pq, uint32_t *p, uint32_t *q);

/* ---- X25519 (fake-TLS key_share) ------------------------------------- */

/*
 * A fresh X25519 public key: draws 32 random bytes as the scalar, clamps it
 * (RFC 7748 decodeScalar25519) and writes scalar*G as 32 bytes little-endian.
 * The scalar is zeroized; only the public key is needed (fake-TLS §5.3).
 */
int mtci_x25519_public_key(mtc_random_fn rnd, void *rnd_ud, uint8_t out[32]);

/* ---- secure random (shell side: reads OS entropy) ---------------------- */

/* A CTR-DRBG seeded from OS entropy. Heap-allocated; NULL on failure. */
typedef struct mtci_drbg mtci_drbg;
mtci_drbg *mtci_drbg_new(void);
void mtci_drbg_free(mtci_drbg *d); /* zeroizes; NULL-safe */
/* Matches mtc_random_fn with user_data = the mtci_drbg. */
int mtci_drbg_random(void *drbg, uint8_t *out, size_t len);

#endif /* MTCI_CRYPTO_H */
