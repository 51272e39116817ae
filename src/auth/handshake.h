/*
 * Auth key creation, client side (PROTOCOL.md §6.3): a pure state machine.
 * Server answers go in, requests come out; no IO, no clock (the caller passes
 * `now`), randomness only through an mtc_random_fn.
 *
 *   start()          -> req_pq_multi
 *   feed(resPQ)      -> req_DH_params          (RSA_PAD of p_q_inner_data_*)
 *   feed(server_DH_params_ok)
 *                    -> set_client_DH_params   (g_b, auth_key computed here)
 *   feed(dh_gen_ok)  -> DONE
 *   feed(dh_gen_retry) -> set_client_DH_params again (new b, retry_id)
 *
 * Every error is final: the state becomes FAILED and the caller starts a
 * new handshake (on a new connection: the server may also answer a bad
 * query with transport error -404). The struct is plain data (no heap, no
 * pointers once resPQ is processed besides the rnd callback), so it may be
 * copied; secrets in it are wiped by mtci_handshake_free().
 *
 * Two layers of API: the TL bodies (start/feed/request) and the unencrypted
 * envelope of §6.2 around them (emit_envelope/feed_envelope, or the plain
 * mtci_unenc_wrap/unwrap functions).
 */
#ifndef MTCI_AUTH_HANDSHAKE_H
#define MTCI_AUTH_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "auth/rsa_keyset.h"
#include "crypto/crypto.h"
#include "mtconn/mtconn.h"

/* ---- unencrypted envelope (§6.2) --------------------------------------- */

/*
 *   0        8          16        20
 *   | 0 (8) | msg_id LE | len LE  | message_data (len) |
 */
#define MTCI_UNENC_HEADER_LEN 20

/* Wrap body: out = 0^8 | msg_id | len | body. MTC_ERR_BUFFER_TOO_SMALL if
 * cap < 20 + len. */
int mtci_unenc_wrap(int64_t msg_id, const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                    size_t *out_len);
/*
 * Check and open an unencrypted message: auth_key_id must be 0 and the
 * length field must fit the packet. Up to 15 trailing bytes are tolerated
 * (padded intermediate transport adds 0..15 random bytes the codec cannot
 * strip). *body points into msg. msg_id may be NULL; its parity is not
 * checked. Errors: MTC_ERR_AUTH_ENVELOPE.
 */
int mtci_unenc_unwrap(const uint8_t *msg, size_t len, const uint8_t **body, size_t *body_len,
                      int64_t *msg_id);
/*
 * Next client msg_id for an unencrypted message: floor(now * 2^32) with the
 * two low bits cleared, made strictly greater than *last (last + 4) and with
 * non-zero low 32 bits; *last is updated. now is unix time in seconds
 * (fractional); a value outside [0, 2^31) counts as 0.
 */
int64_t mtci_unenc_next_msg_id(int64_t *last, double now);

/* ---- constructor ids (mtproto.tl) ------------------------------------------ */

#define MTCI_ID_REQ_PQ 0x60469778u
#define MTCI_ID_REQ_PQ_MULTI 0xbe7e8ef1u
#define MTCI_ID_RES_PQ 0x05162463u
#define MTCI_ID_P_Q_INNER_DATA 0x83c95aecu
#define MTCI_ID_P_Q_INNER_DATA_DC 0xa9f55f95u
#define MTCI_ID_P_Q_INNER_DATA_TEMP 0x3c6a84d4u
#define MTCI_ID_P_Q_INNER_DATA_TEMP_DC 0x56fddf88u
#define MTCI_ID_REQ_DH_PARAMS 0xd712e4beu
#define MTCI_ID_SERVER_DH_PARAMS_FAIL 0x79cb045du
#define MTCI_ID_SERVER_DH_PARAMS_OK 0xd0e8075cu
#define MTCI_ID_SERVER_DH_INNER_DATA 0xb5890dbau
#define MTCI_ID_CLIENT_DH_INNER_DATA 0x6643b654u
#define MTCI_ID_SET_CLIENT_DH_PARAMS 0xf5045f1fu
#define MTCI_ID_DH_GEN_OK 0x3bcbf734u
#define MTCI_ID_DH_GEN_RETRY 0x46dc1fb9u
#define MTCI_ID_DH_GEN_FAIL 0xa69dae02u

/* ---- handshake ----------------------------------------------------------- */

enum mtci_hs_state {
  MTCI_HS_INIT = 0,     /* before start() */
  MTCI_HS_WAIT_RESPQ,   /* req_pq_multi sent */
  MTCI_HS_WAIT_DH,      /* req_DH_params sent */
  MTCI_HS_WAIT_DH_GEN,  /* set_client_DH_params sent */
  MTCI_HS_DONE,         /* dh_gen_ok accepted; result available */
  MTCI_HS_FAILED        /* an error ended the handshake; see err */
};

/* start()/feed() results besides errors. */
#define MTCI_HS_SEND 1     /* a new request is ready: mtci_handshake_request() */
#define MTCI_HS_FINISHED 2 /* the key is made: mtci_handshake_result() */

#define MTCI_HS_DEFAULT_MAX_RETRIES 5
#define MTCI_HS_REQ_MAX 512 /* largest request body: set_client_DH_params is 376 */

typedef struct mtci_handshake_params {
  /* Value of the dc field of p_q_inner_data_dc / _temp_dc: the DC number,
   * +10000 for test DCs, negative for media DCs (the caller passes the
   * final value). */
  int32_t dc;
  /* 0: permanent key (p_q_inner_data_dc). > 0: temporary key valid for this
   * many seconds (p_q_inner_data_temp_dc). */
  int32_t expires_in;
  /* Non-zero: use the legacy p_q_inner_data#83c95aec (no dc field; permanent
   * keys only). Exists for the 2023 grammers vector (§7.4). */
  int legacy_inner;
  /* Keys to choose from. Borrowed: must stay valid until resPQ is fed (the
   * chosen key is copied). */
  const mtci_rsa_keyset *keys;
  mtc_random_fn rnd; /* required */
  void *rnd_ud;
  /* Bound on dh_gen_retry answers; 0 = MTCI_HS_DEFAULT_MAX_RETRIES. */
  int max_retries;
} mtci_handshake_params;

/* Outcome of a finished handshake. Holds the key: mtci_auth_result_clear(). */
typedef struct mtci_auth_result {
  uint8_t auth_key[MTCI_AUTH_KEY_LEN];
  uint8_t auth_key_id[8]; /* SHA1(auth_key)[12:20], wire order */
  int64_t server_salt;    /* new_nonce[0:8] XOR server_nonce[0:8] as LE int64 */
  int64_t time_offset;    /* server_time - floor(now) at server_DH_params_ok */
  int32_t server_time;    /* from server_DH_inner_data */
  int temp;               /* 1 for a temporary key */
  int32_t expires_in;     /* as requested (temp keys), else 0 */
  /* Temp keys: server_time + expires_in, i.e. in the server's clock (what
   * auth.bindTempAuthKey wants); local time = expires_at - time_offset.
   * 0 for permanent keys. */
  int64_t expires_at;
  int32_t dc;
} mtci_auth_result;

typedef struct mtci_handshake {
  int state; /* enum mtci_hs_state */
  int err;   /* the error that ended it (FAILED), else 0 */

  /* parameters */
  int32_t dc, expires_in;
  int legacy_inner, max_retries;
  const mtci_rsa_keyset *keys;
  mtc_random_fn rnd;
  void *rnd_ud;

  /* protocol state */
  mtci_rsa_key rsa; /* the key chosen at resPQ */
  uint8_t nonce[16], server_nonce[16], new_nonce[32];
  uint8_t tmp_key[32], tmp_iv[32];
  uint8_t dh_prime[256];
  int32_t g;
  uint8_t g_a[256];
  int32_t server_time;
  int64_t time_offset;
  int64_t retry_id; /* 0, then the previous attempt's auth_key_aux_hash */
  int retries;
  uint8_t auth_key[MTCI_AUTH_KEY_LEN]; /* of the attempt in flight */
  uint8_t aux_hash[8];                 /* SHA1(auth_key)[0:8] */

  /* the request to send (TL body) */
  uint8_t req[MTCI_HS_REQ_MAX];
  size_t req_len;
  /* msg_id of the last envelope emitted (see mtci_unenc_next_msg_id); a
   * session on the same connection continues above it. */
  int64_t last_msg_id;
} mtci_handshake;

/* Validate params and set up (state INIT). MTC_ERR_INVALID_ARG on missing
 * rnd/keys, expires_in < 0, or legacy_inner with a temporary key. */
int mtci_handshake_init(mtci_handshake *h, const mtci_handshake_params *p);
/* Wipe every secret; safe on a zeroed or freed struct. */
void mtci_handshake_free(mtci_handshake *h);

/* INIT -> WAIT_RESPQ: draws the nonce, builds req_pq_multi. Returns
 * MTCI_HS_SEND or an error. */
int mtci_handshake_start(mtci_handshake *h);
/*
 * Feed one server answer (TL body, no envelope). now = local unix time in
 * seconds (used for time_offset). Returns MTCI_HS_SEND (a new request is
 * ready), MTCI_HS_FINISHED, or a negative error (state becomes FAILED; a
 * call in INIT/DONE/FAILED returns MTC_ERR_AUTH_STATE without changing
 * anything).
 */
int mtci_handshake_feed(mtci_handshake *h, const uint8_t *body, size_t len, double now);
/* The pending request's TL body (valid until the next call), or NULL. */
const uint8_t *mtci_handshake_request(const mtci_handshake *h, size_t *len);

/* The pending request wrapped in an envelope with the next msg_id. */
int mtci_handshake_emit_envelope(mtci_handshake *h, double now, uint8_t *out, size_t cap,
                                 size_t *out_len);
/* Unwrap (mtci_unenc_unwrap) and feed. An envelope error also ends the
 * handshake. */
int mtci_handshake_feed_envelope(mtci_handshake *h, const uint8_t *msg, size_t len, double now);

/* Copy the outcome (state DONE only, else MTC_ERR_AUTH_STATE). */
int mtci_handshake_result(const mtci_handshake *h, mtci_auth_result *out);
void mtci_auth_result_clear(mtci_auth_result *r);

#endif /* MTCI_AUTH_HANDSHAKE_H */
