/*
 * PFS binding (PROTOCOL.md §6.8): the encrypted_message argument of
 * auth.bindTempAuthKey, i.e. bind_auth_key_inner sealed with MTProto 1.0
 * under the PERMANENT key, plus the server-side check of it (used by the
 * mock DC and the tests).
 *
 *   encrypted_message (104 bytes):
 *   | perm_auth_key_id (8) | msg_key (16) | AES-IGE(aes_key, aes_iv; pt) (80) |
 *
 *   pt: | random (16) | msg_id (8) | seqno 0 (4) | length 40 (4) |
 *       | bind_auth_key_inner (40) | padding (8) |
 *   bind_auth_key_inner: | 75a3f765 | nonce (8) | temp_auth_key_id (8) |
 *       | perm_auth_key_id (8) | temp_session_id (8) | expires_at (4) |
 *
 *   msg_key = SHA1(pt without padding)[4:20]
 *   aes_key, aes_iv = mtci_mtp1_kdf(perm_key, msg_key, x = 0)
 *
 * msg_id must be the msg_id of the auth.bindTempAuthKey request itself, so
 * the message is built when that msg_id is known (and rebuilt on resend).
 */
#ifndef MTCI_AUTH_BIND_H
#define MTCI_AUTH_BIND_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"

#define MTCI_ID_BIND_AUTH_KEY_INNER 0x75a3f765u
#define MTCI_ID_AUTH_BIND_TEMP_AUTH_KEY 0xcdd42a05u
#define MTCI_BIND_INNER_LEN 40
#define MTCI_BIND_MSG_LEN 104 /* 8 + 16 + 80 */

typedef struct mtci_bind_inner {
  int64_t nonce;               /* also the nonce argument of the call */
  uint8_t temp_auth_key_id[8]; /* wire order, as mtci_auth_key_id() gives */
  uint8_t perm_auth_key_id[8];
  int64_t temp_session_id;     /* the session the bind call is sent in */
  int32_t expires_at;          /* server unix time; also the call's argument */
} mtci_bind_inner;

/*
 * Build encrypted_message into out[0..MTCI_BIND_MSG_LEN). inner's
 * perm_auth_key_id must be the perm key's id (MTC_ERR_AUTH_KEY_ID). Draws
 * 16 + 8 random bytes.
 */
int mtci_bind_encrypt(const uint8_t perm_key[MTCI_AUTH_KEY_LEN], const mtci_bind_inner *inner,
                      int64_t msg_id, mtc_random_fn rnd, void *rnd_ud,
                      uint8_t out[MTCI_BIND_MSG_LEN]);

/*
 * Server side: open encrypted_message with the perm key and check it: the
 * leading key id (MTC_ERR_AUTH_KEY_ID), the length (MTC_ERR_AUTH_BIND_INVALID),
 * msg_key (MTC_ERR_AUTH_MSG_KEY), seqno 0, length 40, padding < 16, the
 * inner constructor (MTC_ERR_AUTH_BIND_INVALID), and that the inner
 * perm_auth_key_id is this key's (MTC_ERR_AUTH_KEY_ID). On success fills
 * *inner and *msg_id; the caller compares them with the call's arguments and
 * the outer message (nonce, expires_at, msg_id, temp key and session).
 */
int mtci_bind_decrypt(const uint8_t perm_key[MTCI_AUTH_KEY_LEN], const uint8_t *msg, size_t len,
                      mtci_bind_inner *inner, int64_t *msg_id);

#endif /* MTCI_AUTH_BIND_H */
