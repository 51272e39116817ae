/* auth.bindTempAuthKey encrypted_message, MTProto 1.0 under the perm key (§6.8). */
#include "auth/bind.h"
#include "bytes.h"

#include <string.h>

#define HEADER_LEN 32 /* random 16 | msg_id 8 | seqno 4 | length 4 */
#define PLAIN_LEN (HEADER_LEN + MTCI_BIND_INNER_LEN) /* 72 */
#define PADDED_LEN 80
#define MAX_PADDED 1024 /* what the checker accepts from a peer */

/* msg_key = SHA1(pt)[4:20] (MTProto 1.0). */
static void msg_key_v1(const uint8_t *pt, size_t len, uint8_t out[16]) {
  uint8_t d[MTCI_SHA1_LEN];
  mtci_sha1(pt, len, d);
  memcpy(out, d + 4, 16);
}

int mtci_bind_encrypt(const uint8_t perm_key[MTCI_AUTH_KEY_LEN], const mtci_bind_inner *inner,
                      int64_t msg_id, mtc_random_fn rnd, void *rnd_ud,
                      uint8_t out[MTCI_BIND_MSG_LEN]) {
  if (!perm_key || !inner || !rnd || !out) return MTC_ERR_INVALID_ARG;
  uint8_t perm_id[8];
  mtci_auth_key_id(perm_key, perm_id);
  if (memcmp(perm_id, inner->perm_auth_key_id, 8) != 0) return MTC_ERR_AUTH_KEY_ID;

  uint8_t pt[PADDED_LEN];
  int rc = rnd(rnd_ud, pt, 16);
  mtci_put_le64(pt + 16, mtci_u64_of(msg_id));
  mtci_put_le32(pt + 24, 0); /* seqno */
  mtci_put_le32(pt + 28, MTCI_BIND_INNER_LEN);
  uint8_t *in = pt + HEADER_LEN;
  mtci_put_le32(in, MTCI_ID_BIND_AUTH_KEY_INNER);
  mtci_put_le64(in + 4, mtci_u64_of(inner->nonce));
  memcpy(in + 12, inner->temp_auth_key_id, 8);
  memcpy(in + 20, inner->perm_auth_key_id, 8);
  mtci_put_le64(in + 28, mtci_u64_of(inner->temp_session_id));
  mtci_put_le32(in + 36, (uint32_t)inner->expires_at);
  if (rc == 0) rc = rnd(rnd_ud, pt + PLAIN_LEN, PADDED_LEN - PLAIN_LEN);
  if (rc > 0) rc = MTC_ERR_RANDOM;

  uint8_t msg_key[16], key[32], iv[32];
  if (rc == 0) {
    msg_key_v1(pt, PLAIN_LEN, msg_key); /* before padding */
    mtci_mtp1_kdf(perm_key, msg_key, 0, key, iv);
    memcpy(out, perm_id, 8);
    memcpy(out + 8, msg_key, 16);
    rc = mtci_aes256_ige_encrypt(key, iv, pt, out + 24, PADDED_LEN);
  }
  mtci_zeroize(pt, sizeof pt);
  mtci_zeroize(key, sizeof key);
  mtci_zeroize(iv, sizeof iv);
  if (rc != 0) mtci_zeroize(out, MTCI_BIND_MSG_LEN);
  return rc;
}

int mtci_bind_decrypt(const uint8_t perm_key[MTCI_AUTH_KEY_LEN], const uint8_t *msg, size_t len,
                      mtci_bind_inner *inner, int64_t *msg_id) {
  if (!perm_key || (!msg && len) || !inner || !msg_id) return MTC_ERR_INVALID_ARG;
  if (len < 24 + PADDED_LEN || len > 24 + MAX_PADDED || (len - 24) % 16 != 0)
    return MTC_ERR_AUTH_BIND_INVALID;
  uint8_t perm_id[8];
  mtci_auth_key_id(perm_key, perm_id);
  if (!mtci_ct_equal(msg, perm_id, 8)) return MTC_ERR_AUTH_KEY_ID;

  size_t n = len - 24;
  uint8_t pt[MAX_PADDED], key[32], iv[32], mk[16];
  mtci_mtp1_kdf(perm_key, msg + 8, 0, key, iv);
  int rc = mtci_aes256_ige_decrypt(key, iv, msg + 24, pt, n);
  mtci_zeroize(key, sizeof key);
  mtci_zeroize(iv, sizeof iv);
  if (rc != 0) return rc;
  /* The length field decides what msg_key covers; only 40 is valid, and
   * the msg_key check runs whenever the length is usable at all. */
  uint32_t body_len = mtci_le32(pt + 28);
  if (body_len > n - HEADER_LEN) {
    rc = MTC_ERR_AUTH_BIND_INVALID;
  } else {
    msg_key_v1(pt, HEADER_LEN + body_len, mk);
    if (!mtci_ct_equal(mk, msg + 8, 16)) rc = MTC_ERR_AUTH_MSG_KEY;
    else if (body_len != MTCI_BIND_INNER_LEN || n - HEADER_LEN - body_len >= 16 ||
             mtci_le32(pt + 24) != 0 || mtci_le32(pt + HEADER_LEN) != MTCI_ID_BIND_AUTH_KEY_INNER)
      rc = MTC_ERR_AUTH_BIND_INVALID;
    else if (!mtci_ct_equal(pt + HEADER_LEN + 20, perm_id, 8))
      rc = MTC_ERR_AUTH_KEY_ID;
  }
  if (rc == 0) {
    const uint8_t *in = pt + HEADER_LEN;
    *msg_id = mtci_i64_of(mtci_le64(pt + 16));
    inner->nonce = mtci_i64_of(mtci_le64(in + 4));
    memcpy(inner->temp_auth_key_id, in + 12, 8);
    memcpy(inner->perm_auth_key_id, in + 20, 8);
    inner->temp_session_id = mtci_i64_of(mtci_le64(in + 28));
    uint32_t e = mtci_le32(in + 36);
    memcpy(&inner->expires_at, &e, sizeof e);
  }
  mtci_zeroize(pt, sizeof pt);
  return rc;
}
