/*
 * MTProto key derivation: auth_key_id, MTProto 2.0 msg_key and KDF
 * (PROTOCOL.md §6.5), the MTProto 1.0 KDF used only by bind_auth_key_inner
 * (§6.8), and the handshake's tmp_aes key/iv (§6.3 step 7).
 */
#include <string.h>

#include "crypto/crypto.h"

void mtci_auth_key_id(const uint8_t auth_key[MTCI_AUTH_KEY_LEN], uint8_t out[8]) {
  uint8_t h[MTCI_SHA1_LEN];
  mtci_sha1(auth_key, MTCI_AUTH_KEY_LEN, h);
  memcpy(out, h + 12, 8);
}

/* msg_key_large = SHA256(auth_key[88+x : 120+x] || plaintext); msg_key = [8:24] */
void mtci_mtp2_msg_key(const uint8_t auth_key[MTCI_AUTH_KEY_LEN], int x, const uint8_t *plain,
                       size_t len, uint8_t msg_key[16], uint8_t msg_key_large[32]) {
  uint8_t large[MTCI_SHA256_LEN];
  mtci_sha256_ctx c;
  mtci_sha256_init(&c);
  mtci_sha256_update(&c, auth_key + 88 + x, 32);
  mtci_sha256_update(&c, plain, len);
  mtci_sha256_final(&c, large);
  memcpy(msg_key, large + 8, 16);
  if (msg_key_large) memcpy(msg_key_large, large, 32);
  mtci_zeroize(large, sizeof large);
}

/*
 * a = SHA256(msg_key || auth_key[x : x+36])
 * b = SHA256(auth_key[40+x : 76+x] || msg_key)
 * aes_key = a[0:8] || b[8:24] || a[24:32]
 * aes_iv  = b[0:8] || a[8:24] || b[24:32]
 */
void mtci_mtp2_kdf(const uint8_t auth_key[MTCI_AUTH_KEY_LEN], const uint8_t msg_key[16], int x,
                   uint8_t aes_key[32], uint8_t aes_iv[32]) {
  uint8_t a[MTCI_SHA256_LEN], b[MTCI_SHA256_LEN];
  mtci_sha256_ctx c;
  mtci_sha256_init(&c);
  mtci_sha256_update(&c, msg_key, 16);
  mtci_sha256_update(&c, auth_key + x, 36);
  mtci_sha256_final(&c, a);
  mtci_sha256_init(&c);
  mtci_sha256_update(&c, auth_key + 40 + x, 36);
  mtci_sha256_update(&c, msg_key, 16);
  mtci_sha256_final(&c, b);
  memcpy(aes_key, a, 8);
  memcpy(aes_key + 8, b + 8, 16);
  memcpy(aes_key + 24, a + 24, 8);
  memcpy(aes_iv, b, 8);
  memcpy(aes_iv + 8, a + 8, 16);
  memcpy(aes_iv + 24, b + 24, 8);
  mtci_zeroize(a, sizeof a);
  mtci_zeroize(b, sizeof b);
}

/* SHA-1 over up to three pieces (NULL/0 pieces skipped). */
static void sha1_3(const uint8_t *p1, size_t n1, const uint8_t *p2, size_t n2, const uint8_t *p3,
                   size_t n3, uint8_t out[MTCI_SHA1_LEN]) {
  mtci_sha1_ctx c;
  mtci_sha1_init(&c);
  mtci_sha1_update(&c, p1, n1);
  mtci_sha1_update(&c, p2, n2);
  if (n3) mtci_sha1_update(&c, p3, n3);
  mtci_sha1_final(&c, out);
}

/*
 * sha1_a = SHA1(msg_key || perm[x : x+32])
 * sha1_b = SHA1(perm[32+x : 48+x] || msg_key || perm[48+x : 64+x])
 * sha1_c = SHA1(perm[64+x : 96+x] || msg_key)
 * sha1_d = SHA1(msg_key || perm[96+x : 128+x])
 * aes_key = a[0:8] || b[8:20] || c[4:16]
 * aes_iv  = a[8:20] || b[0:8] || c[16:20] || d[0:8]
 */
void mtci_mtp1_kdf(const uint8_t auth_key[MTCI_AUTH_KEY_LEN], const uint8_t msg_key[16], int x,
                   uint8_t aes_key[32], uint8_t aes_iv[32]) {
  uint8_t a[MTCI_SHA1_LEN], b[MTCI_SHA1_LEN], c[MTCI_SHA1_LEN], d[MTCI_SHA1_LEN];
  sha1_3(msg_key, 16, auth_key + x, 32, NULL, 0, a);
  sha1_3(auth_key + 32 + x, 16, msg_key, 16, auth_key + 48 + x, 16, b);
  sha1_3(auth_key + 64 + x, 32, msg_key, 16, NULL, 0, c);
  sha1_3(msg_key, 16, auth_key + 96 + x, 32, NULL, 0, d);
  memcpy(aes_key, a, 8);
  memcpy(aes_key + 8, b + 8, 12);
  memcpy(aes_key + 20, c + 4, 12);
  memcpy(aes_iv, a + 8, 12);
  memcpy(aes_iv + 12, b, 8);
  memcpy(aes_iv + 20, c + 16, 4);
  memcpy(aes_iv + 24, d, 8);
  mtci_zeroize(a, sizeof a);
  mtci_zeroize(b, sizeof b);
  mtci_zeroize(c, sizeof c);
  mtci_zeroize(d, sizeof d);
}

/*
 * tmp_aes_key = SHA1(new_nonce || server_nonce) || SHA1(server_nonce || new_nonce)[0:12]
 * tmp_aes_iv  = SHA1(server_nonce || new_nonce)[12:20] || SHA1(new_nonce || new_nonce)
 *               || new_nonce[0:4]
 */
void mtci_dh_tmp_aes(const uint8_t new_nonce[32], const uint8_t server_nonce[16],
                     uint8_t key[32], uint8_t iv[32]) {
  uint8_t ns[MTCI_SHA1_LEN], sn[MTCI_SHA1_LEN], nn[MTCI_SHA1_LEN];
  sha1_3(new_nonce, 32, server_nonce, 16, NULL, 0, ns);
  sha1_3(server_nonce, 16, new_nonce, 32, NULL, 0, sn);
  sha1_3(new_nonce, 32, new_nonce, 32, NULL, 0, nn);
  memcpy(key, ns, 20);
  memcpy(key + 20, sn, 12);
  memcpy(iv, sn + 12, 8);
  memcpy(iv + 8, nn, 20);
  memcpy(iv + 28, new_nonce, 4);
  mtci_zeroize(ns, sizeof ns);
  mtci_zeroize(sn, sizeof sn);
  mtci_zeroize(nn, sizeof nn);
}
