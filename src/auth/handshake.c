/*
 * Auth key creation, client side (PROTOCOL.md §6.3), and the unencrypted
 * message envelope (§6.2). See handshake.h for the flow.
 */
#include "auth/handshake.h"

#include <string.h>

#include "tl/tl.h"
#include "bytes.h"

/* Largest encrypted_answer accepted: SHA1 (20) + server_DH_inner_data
 * (564 with a 2048-bit prime) + padding, with room to spare. */
#define MAX_ENCRYPTED_ANSWER 1024
/* Draws of b before giving up on a g_b outside the safe range (each draw
 * fails with probability about 2^-63). */
#define MAX_B_DRAWS 4

/* ---- envelope ------------------------------------------------------------ */

int mtci_unenc_wrap(int64_t msg_id, const uint8_t *body, size_t len, uint8_t *out, size_t cap,
                    size_t *out_len) {
  if ((!body && len) || !out || !out_len) return MTC_ERR_INVALID_ARG;
  if (len > UINT32_MAX || cap < MTCI_UNENC_HEADER_LEN || cap - MTCI_UNENC_HEADER_LEN < len)
    return MTC_ERR_BUFFER_TOO_SMALL;
  memset(out, 0, 8);
  mtci_put_le64(out + 8, mtci_u64_of(msg_id));
  for (int i = 0; i < 4; i++) out[16 + i] = (uint8_t)((uint64_t)len >> (8 * i));
  if (len) memmove(out + MTCI_UNENC_HEADER_LEN, body, len);
  *out_len = MTCI_UNENC_HEADER_LEN + len;
  return 0;
}

int mtci_unenc_unwrap(const uint8_t *msg, size_t len, const uint8_t **body, size_t *body_len,
                      int64_t *msg_id) {
  if ((!msg && len) || !body || !body_len) return MTC_ERR_INVALID_ARG;
  *body = NULL;
  *body_len = 0;
  if (len < MTCI_UNENC_HEADER_LEN) return MTC_ERR_AUTH_ENVELOPE;
  for (int i = 0; i < 8; i++)
    if (msg[i] != 0) return MTC_ERR_AUTH_ENVELOPE;
  size_t n = (size_t)msg[16] | (size_t)msg[17] << 8 | (size_t)msg[18] << 16 |
             (size_t)msg[19] << 24;
  size_t avail = len - MTCI_UNENC_HEADER_LEN;
  if (n > avail || avail - n > 15) return MTC_ERR_AUTH_ENVELOPE;
  if (msg_id) *msg_id = mtci_i64_of(mtci_le64(msg + 8));
  *body = msg + MTCI_UNENC_HEADER_LEN;
  *body_len = n;
  return 0;
}

int64_t mtci_unenc_next_msg_id(int64_t *last, double now) {
  int64_t id = 0;
  if (now >= 0.0 && now < 2147483648.0) id = (int64_t)(now * 4294967296.0);
  id &= ~(int64_t)3;
  if ((id & 0xffffffff) == 0) id += 4; /* the low half must not be zero */
  if (id <= *last) id = *last < INT64_MAX - 7 ? (*last + 4) & ~(int64_t)3 : *last;
  *last = id;
  return id;
}

/* ---- helpers -------------------------------------------------------------- */

static int draw(const mtci_handshake *h, uint8_t *out, size_t len) {
  if (len == 0) return 0;
  int rc = h->rnd(h->rnd_ud, out, len);
  if (rc == 0) return 0;
  return rc < 0 ? rc : MTC_ERR_RANDOM;
}

static void wipe_secrets(mtci_handshake *h) {
  mtci_zeroize(h->new_nonce, sizeof h->new_nonce);
  mtci_zeroize(h->tmp_key, sizeof h->tmp_key);
  mtci_zeroize(h->tmp_iv, sizeof h->tmp_iv);
  mtci_zeroize(h->auth_key, sizeof h->auth_key);
  mtci_zeroize(h->aux_hash, sizeof h->aux_hash);
  mtci_zeroize(h->req, sizeof h->req);
  h->req_len = 0;
}

static int fail(mtci_handshake *h, int rc) {
  wipe_secrets(h);
  h->state = MTCI_HS_FAILED;
  h->err = rc;
  h->keys = NULL;
  return rc;
}

/* Copy a finished writer into h->req and free it. */
static int take_request(mtci_handshake *h, mtci_tl_writer *w) {
  int rc = w->err;
  if (rc == 0 && w->len > sizeof h->req) rc = MTC_ERR_INTERNAL;
  if (rc == 0) {
    memcpy(h->req, mtci_tl_writer_data(w), w->len);
    h->req_len = w->len;
  }
  mtci_tl_writer_free(w);
  return rc;
}

/* Minimal big-endian bytes of a 32-bit value (p and q of §6.3 step 3:
 * leading zeros make the server answer -404). */
static size_t be_minimal(uint32_t v, uint8_t out[4]) {
  uint8_t tmp[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  size_t skip = 0;
  while (skip < 3 && tmp[skip] == 0) skip++;
  memcpy(out, tmp + skip, 4 - skip);
  return 4 - skip;
}

/* Local seconds as an integer; outside [0, 2^53) counts as 0. */
static int64_t whole_seconds(double now) {
  if (!(now >= 0.0 && now < 9007199254740992.0)) return 0;
  return (int64_t)now; /* truncation == floor for non-negative values */
}

/* Nonce checks shared by every answer. */
static int check_nonces(const mtci_handshake *h, const uint8_t nonce[16],
                        const uint8_t server_nonce[16]) {
  if (!mtci_ct_equal(nonce, h->nonce, 16)) return MTC_ERR_AUTH_NONCE;
  if (!mtci_ct_equal(server_nonce, h->server_nonce, 16)) return MTC_ERR_AUTH_SERVER_NONCE;
  return 0;
}

/* new_nonce_hashN = SHA1(new_nonce || N || auth_key_aux_hash)[4:20] (§6.3.11). */
static void new_nonce_hash(const uint8_t new_nonce[32], uint8_t n, const uint8_t aux[8],
                           uint8_t out[16]) {
  mtci_sha1_ctx c;
  uint8_t d[MTCI_SHA1_LEN];
  mtci_sha1_init(&c);
  mtci_sha1_update(&c, new_nonce, 32);
  mtci_sha1_update(&c, &n, 1);
  mtci_sha1_update(&c, aux, 8);
  mtci_sha1_final(&c, d);
  memcpy(out, d + 4, 16);
  mtci_zeroize(d, sizeof d);
}

/* ---- lifecycle ------------------------------------------------------------ */

int mtci_handshake_init(mtci_handshake *h, const mtci_handshake_params *p) {
  if (!h) return MTC_ERR_INVALID_ARG;
  memset(h, 0, sizeof *h);
  if (!p || !p->rnd || !p->keys || p->expires_in < 0 || p->max_retries < 0 ||
      (p->legacy_inner && p->expires_in > 0))
    return MTC_ERR_INVALID_ARG;
  h->state = MTCI_HS_INIT;
  h->dc = p->dc;
  h->expires_in = p->expires_in;
  h->legacy_inner = p->legacy_inner ? 1 : 0;
  h->max_retries = p->max_retries ? p->max_retries : MTCI_HS_DEFAULT_MAX_RETRIES;
  h->keys = p->keys;
  h->rnd = p->rnd;
  h->rnd_ud = p->rnd_ud;
  return 0;
}

void mtci_handshake_free(mtci_handshake *h) {
  if (!h) return;
  mtci_zeroize(h, sizeof *h);
}

/* ---- step 1: req_pq_multi --------------------------------------------------- */

int mtci_handshake_start(mtci_handshake *h) {
  if (!h || h->state != MTCI_HS_INIT || !h->rnd) return MTC_ERR_AUTH_STATE;
  int rc = draw(h, h->nonce, sizeof h->nonce);
  if (rc != 0) return fail(h, rc);
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_ID_REQ_PQ_MULTI);
  mtci_tl_write_int128(&w, h->nonce);
  rc = take_request(h, &w);
  if (rc != 0) return fail(h, rc);
  h->state = MTCI_HS_WAIT_RESPQ;
  return MTCI_HS_SEND;
}

/* ---- step 2: resPQ -> req_DH_params ------------------------------------------- */

/*
 * p_q_inner_data_dc      pq p q nonce server_nonce new_nonce dc
 * p_q_inner_data_temp_dc pq p q nonce server_nonce new_nonce dc expires_in
 * p_q_inner_data         pq p q nonce server_nonce new_nonce      (legacy)
 */
static void write_inner(const mtci_handshake *h, mtci_tl_writer *w, const uint8_t *pq,
                        size_t pq_len, const uint8_t *p, size_t p_len, const uint8_t *q,
                        size_t q_len) {
  uint32_t id = h->legacy_inner      ? MTCI_ID_P_Q_INNER_DATA
                : h->expires_in > 0 ? MTCI_ID_P_Q_INNER_DATA_TEMP_DC
                                    : MTCI_ID_P_Q_INNER_DATA_DC;
  mtci_tl_write_u32(w, id);
  mtci_tl_write_bytes(w, pq, pq_len);
  mtci_tl_write_bytes(w, p, p_len);
  mtci_tl_write_bytes(w, q, q_len);
  mtci_tl_write_int128(w, h->nonce);
  mtci_tl_write_int128(w, h->server_nonce);
  mtci_tl_write_int256(w, h->new_nonce);
  if (h->legacy_inner) return;
  mtci_tl_write_int(w, h->dc);
  if (h->expires_in > 0) mtci_tl_write_int(w, h->expires_in);
}

static int on_res_pq(mtci_handshake *h, const uint8_t *body, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, body, len);
  uint32_t id = mtci_tl_read_u32(&r);
  if (r.err) return r.err;
  if (id != MTCI_ID_RES_PQ) return MTC_ERR_AUTH_UNEXPECTED;
  uint8_t nonce[16], server_nonce[16];
  mtci_tl_read_int128(&r, nonce);
  mtci_tl_read_int128(&r, server_nonce);
  size_t pq_len;
  const uint8_t *pq = mtci_tl_read_bytes(&r, &pq_len);
  uint32_t n_fps = mtci_tl_read_vector(&r, 8);
  const mtci_rsa_key *key = NULL;
  uint64_t fingerprint = 0;
  for (uint32_t i = 0; i < n_fps && !r.err; i++) {
    uint64_t fp = mtci_u64_of(mtci_tl_read_long(&r));
    if (!key && !r.err) {
      key = mtci_rsa_keyset_find(h->keys, fp);
      fingerprint = fp;
    }
  }
  int rc = mtci_tl_read_end(&r);
  if (rc != 0) return rc;
  if (!mtci_ct_equal(nonce, h->nonce, 16)) return MTC_ERR_AUTH_NONCE;
  if (!key) return MTC_ERR_AUTH_NO_RSA_KEY;
  if (pq_len == 0 || pq_len > 8) return MTC_ERR_AUTH_BAD_PQ;
  uint64_t pq_v = 0;
  for (size_t i = 0; i < pq_len; i++) pq_v = pq_v << 8 | pq[i];
  if (pq_v == 0) return MTC_ERR_AUTH_BAD_PQ;
  uint32_t p, q;
  rc = mtci_pq_factor(pq_v, &p, &q);
  if (rc != 0) return rc;

  memcpy(h->server_nonce, server_nonce, 16);
  h->rsa = *key;
  h->keys = NULL; /* borrowed only until here */
  rc = draw(h, h->new_nonce, sizeof h->new_nonce);
  if (rc != 0) return rc;

  uint8_t p_be[4], q_be[4];
  size_t p_len = be_minimal(p, p_be), q_len = be_minimal(q, q_be);
  mtci_tl_writer inner;
  mtci_tl_writer_init(&inner, 0);
  write_inner(h, &inner, pq, pq_len, p_be, p_len, q_be, q_len);
  uint8_t encrypted[256];
  rc = inner.err;
  if (rc == 0)
    rc = mtci_rsa_pad_encrypt(&h->rsa, mtci_tl_writer_data(&inner), inner.len, h->rnd,
                              h->rnd_ud, encrypted);
  mtci_tl_writer_free(&inner);
  if (rc != 0) return rc;

  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_ID_REQ_DH_PARAMS);
  mtci_tl_write_int128(&w, h->nonce);
  mtci_tl_write_int128(&w, h->server_nonce);
  mtci_tl_write_bytes(&w, p_be, p_len);
  mtci_tl_write_bytes(&w, q_be, q_len);
  mtci_tl_write_long(&w, mtci_i64_of(fingerprint));
  mtci_tl_write_bytes(&w, encrypted, sizeof encrypted);
  rc = take_request(h, &w);
  if (rc != 0) return rc;
  /* The temporary AES key and IV of steps 7 and 9 depend only on the nonces. */
  mtci_dh_tmp_aes(h->new_nonce, h->server_nonce, h->tmp_key, h->tmp_iv);
  h->state = MTCI_HS_WAIT_DH;
  return MTCI_HS_SEND;
}

/* ---- step 3: server_DH_params -> set_client_DH_params ------------------------- */

/*
 * One attempt of step 9: fresh b, g_b = g^b mod p, auth_key = g_a^b mod p,
 * then set_client_DH_params carrying
 *   IGE(tmp_key, tmp_iv; SHA1(inner) || inner || pad to 16)
 *   inner = client_DH_inner_data(nonce, server_nonce, retry_id, g_b)
 */
static int make_client_dh(mtci_handshake *h) {
  uint8_t b[256], g_b[256], g_byte = (uint8_t)h->g;
  int rc = MTC_ERR_DH_VALUE;
  for (int i = 0; i < MAX_B_DRAWS; i++) {
    rc = draw(h, b, sizeof b);
    if (rc == 0) rc = mtci_modexp(&g_byte, 1, b, sizeof b, h->dh_prime, 256, g_b, sizeof g_b);
    if (rc == 0) rc = mtci_dh_check_value(h->dh_prime, 256, g_b, sizeof g_b);
    if (rc != MTC_ERR_DH_VALUE) break;
  }
  if (rc == 0) rc = mtci_modexp(h->g_a, 256, b, sizeof b, h->dh_prime, 256, h->auth_key, 256);
  mtci_zeroize(b, sizeof b);
  if (rc != 0) return rc;
  uint8_t digest[MTCI_SHA1_LEN];
  mtci_sha1(h->auth_key, sizeof h->auth_key, digest);
  memcpy(h->aux_hash, digest, 8);

  /* g_b as a minimal big-endian string (grammers, tdlib). */
  size_t skip = 0;
  while (skip < sizeof g_b - 1 && g_b[skip] == 0) skip++;
  mtci_tl_writer inner;
  mtci_tl_writer_init(&inner, MTCI_SHA1_LEN); /* headroom for the hash */
  mtci_tl_write_u32(&inner, MTCI_ID_CLIENT_DH_INNER_DATA);
  mtci_tl_write_int128(&inner, h->nonce);
  mtci_tl_write_int128(&inner, h->server_nonce);
  mtci_tl_write_long(&inner, h->retry_id);
  mtci_tl_write_bytes(&inner, g_b + skip, sizeof g_b - skip);
  size_t inner_len = inner.len;
  size_t pad = (16 - (MTCI_SHA1_LEN + inner_len) % 16) % 16;
  uint8_t *tail = mtci_tl_write_reserve(&inner, pad);
  rc = inner.err;
  if (rc == 0) rc = draw(h, tail, pad);
  uint8_t *plain = NULL;
  size_t plain_len = MTCI_SHA1_LEN + inner_len + pad;
  if (rc == 0) {
    plain = inner.buf + inner.headroom - MTCI_SHA1_LEN; /* the hash goes in the headroom */
    mtci_sha1(plain + MTCI_SHA1_LEN, inner_len, plain);
    /* Fresh IV state: the encryption does not continue from the decryption. */
    rc = mtci_aes256_ige_encrypt(h->tmp_key, h->tmp_iv, plain, plain, plain_len);
  }
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_ID_SET_CLIENT_DH_PARAMS);
  mtci_tl_write_int128(&w, h->nonce);
  mtci_tl_write_int128(&w, h->server_nonce);
  if (rc == 0) mtci_tl_write_bytes(&w, plain, plain_len);
  mtci_tl_writer_free(&inner);
  mtci_zeroize(g_b, sizeof g_b);
  mtci_zeroize(digest, sizeof digest);
  if (rc != 0) {
    mtci_tl_writer_free(&w);
    return rc;
  }
  return take_request(h, &w);
}

/* server_DH_params_fail: verify it is genuine, then fail. */
static int on_dh_params_fail(mtci_handshake *h, mtci_tl_reader *r) {
  uint8_t nonce[16], server_nonce[16], got[16], want[16], d[MTCI_SHA1_LEN];
  mtci_tl_read_int128(r, nonce);
  mtci_tl_read_int128(r, server_nonce);
  mtci_tl_read_int128(r, got);
  int rc = mtci_tl_read_end(r);
  if (rc != 0) return rc;
  rc = check_nonces(h, nonce, server_nonce);
  if (rc != 0) return rc;
  mtci_sha1(h->new_nonce, sizeof h->new_nonce, d);
  memcpy(want, d + 4, 16);
  return mtci_ct_equal(got, want, 16) ? MTC_ERR_AUTH_DH_PARAMS_FAIL : MTC_ERR_AUTH_NEW_NONCE_HASH;
}

/*
 * Decrypted encrypted_answer = SHA1(answer) || answer || pad (0..15), with
 * answer = server_DH_inner_data(nonce, server_nonce, g, dh_prime, g_a,
 * server_time). The hash covers exactly the parsed bytes.
 */
static int on_dh_answer(mtci_handshake *h, const uint8_t *enc, size_t enc_len, double now) {
  if (enc_len > MAX_ENCRYPTED_ANSWER) return MTC_ERR_TL_TOO_LONG;
  if (enc_len == 0 || enc_len % 16 != 0 || enc_len < MTCI_SHA1_LEN + 16)
    return MTC_ERR_AUTH_BAD_PADDING;
  uint8_t plain[MAX_ENCRYPTED_ANSWER];
  int rc = mtci_aes256_ige_decrypt(h->tmp_key, h->tmp_iv, enc, plain, enc_len);
  if (rc != 0) return rc;

  mtci_tl_reader r;
  mtci_tl_reader_init(&r, plain + MTCI_SHA1_LEN, enc_len - MTCI_SHA1_LEN);
  uint32_t id = mtci_tl_read_u32(&r);
  uint8_t nonce[16], server_nonce[16];
  mtci_tl_read_int128(&r, nonce);
  mtci_tl_read_int128(&r, server_nonce);
  int32_t g = mtci_tl_read_int(&r);
  size_t p_len, ga_len;
  const uint8_t *p = mtci_tl_read_bytes(&r, &p_len);
  const uint8_t *ga = mtci_tl_read_bytes(&r, &ga_len);
  int32_t server_time = mtci_tl_read_int(&r);
  uint8_t digest[MTCI_SHA1_LEN];
  /* Without the right key the plaintext is noise: whether it fails to parse
   * or parses with a wrong hash, the answer does not verify. */
  if (r.err || id != MTCI_ID_SERVER_DH_INNER_DATA) {
    rc = MTC_ERR_AUTH_ANSWER_HASH;
  } else {
    mtci_sha1(plain + MTCI_SHA1_LEN, r.pos, digest);
    if (!mtci_ct_equal(digest, plain, MTCI_SHA1_LEN)) rc = MTC_ERR_AUTH_ANSWER_HASH;
    else if (mtci_tl_remaining(&r) >= 16) rc = MTC_ERR_AUTH_BAD_PADDING;
    else rc = check_nonces(h, nonce, server_nonce);
  }
  if (rc == 0 && p_len != 256) rc = MTC_ERR_DH_PRIME;
  if (rc == 0) rc = mtci_dh_check_params(p, p_len, g);
  if (rc == 0 && ga_len > 256) rc = MTC_ERR_DH_VALUE;
  if (rc == 0) rc = mtci_dh_check_value(p, p_len, ga, ga_len);
  if (rc == 0) {
    memcpy(h->dh_prime, p, 256);
    memset(h->g_a, 0, sizeof h->g_a);
    memcpy(h->g_a + 256 - ga_len, ga, ga_len);
    h->g = g;
    h->server_time = server_time;
    h->time_offset = (int64_t)server_time - whole_seconds(now);
  }
  mtci_zeroize(plain, sizeof plain);
  if (rc != 0) return rc;
  h->retry_id = 0;
  rc = make_client_dh(h);
  if (rc != 0) return rc;
  h->state = MTCI_HS_WAIT_DH_GEN;
  return MTCI_HS_SEND;
}

static int on_dh_params(mtci_handshake *h, const uint8_t *body, size_t len, double now) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, body, len);
  uint32_t id = mtci_tl_read_u32(&r);
  if (r.err) return r.err;
  if (id == MTCI_ID_SERVER_DH_PARAMS_FAIL) return on_dh_params_fail(h, &r);
  if (id != MTCI_ID_SERVER_DH_PARAMS_OK) return MTC_ERR_AUTH_UNEXPECTED;
  uint8_t nonce[16], server_nonce[16];
  mtci_tl_read_int128(&r, nonce);
  mtci_tl_read_int128(&r, server_nonce);
  size_t enc_len;
  const uint8_t *enc = mtci_tl_read_bytes(&r, &enc_len);
  int rc = mtci_tl_read_end(&r);
  if (rc == 0) rc = check_nonces(h, nonce, server_nonce);
  if (rc == 0) rc = on_dh_answer(h, enc, enc_len, now);
  return rc;
}

/* ---- step 4: dh_gen_ok / dh_gen_retry / dh_gen_fail ---------------------------- */

static int on_dh_gen(mtci_handshake *h, const uint8_t *body, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, body, len);
  uint32_t id = mtci_tl_read_u32(&r);
  if (r.err) return r.err;
  uint8_t n;
  switch (id) {
  case MTCI_ID_DH_GEN_OK: n = 1; break;
  case MTCI_ID_DH_GEN_RETRY: n = 2; break;
  case MTCI_ID_DH_GEN_FAIL: n = 3; break;
  default: return MTC_ERR_AUTH_UNEXPECTED;
  }
  uint8_t nonce[16], server_nonce[16], got[16], want[16];
  mtci_tl_read_int128(&r, nonce);
  mtci_tl_read_int128(&r, server_nonce);
  mtci_tl_read_int128(&r, got);
  int rc = mtci_tl_read_end(&r);
  if (rc == 0) rc = check_nonces(h, nonce, server_nonce);
  if (rc != 0) return rc;
  new_nonce_hash(h->new_nonce, n, h->aux_hash, want);
  if (!mtci_ct_equal(got, want, 16)) return MTC_ERR_AUTH_NEW_NONCE_HASH;
  if (n == 3) return MTC_ERR_AUTH_DH_GEN_FAIL;
  if (n == 2) {
    if (h->retries >= h->max_retries) return MTC_ERR_AUTH_TOO_MANY_RETRIES;
    h->retries++;
    h->retry_id = mtci_i64_of(mtci_le64(h->aux_hash));
    rc = make_client_dh(h);
    return rc != 0 ? rc : MTCI_HS_SEND;
  }
  mtci_zeroize(h->req, sizeof h->req);
  h->req_len = 0;
  h->state = MTCI_HS_DONE;
  return MTCI_HS_FINISHED;
}

/* ---- dispatch --------------------------------------------------------------- */

int mtci_handshake_feed(mtci_handshake *h, const uint8_t *body, size_t len, double now) {
  if (!h) return MTC_ERR_INVALID_ARG;
  if (h->state != MTCI_HS_WAIT_RESPQ && h->state != MTCI_HS_WAIT_DH &&
      h->state != MTCI_HS_WAIT_DH_GEN)
    return MTC_ERR_AUTH_STATE;
  if (!body && len) return fail(h, MTC_ERR_INVALID_ARG);
  int rc;
  switch (h->state) {
  case MTCI_HS_WAIT_RESPQ: rc = on_res_pq(h, body, len); break;
  case MTCI_HS_WAIT_DH: rc = on_dh_params(h, body, len, now); break;
  default: rc = on_dh_gen(h, body, len); break;
  }
  return rc < 0 ? fail(h, rc) : rc;
}

const uint8_t *mtci_handshake_request(const mtci_handshake *h, size_t *len) {
  if (len) *len = 0;
  if (!h || h->req_len == 0) return NULL;
  if (len) *len = h->req_len;
  return h->req;
}

int mtci_handshake_emit_envelope(mtci_handshake *h, double now, uint8_t *out, size_t cap,
                                 size_t *out_len) {
  if (!h || !out || !out_len) return MTC_ERR_INVALID_ARG;
  if (h->req_len == 0) return MTC_ERR_AUTH_STATE;
  if (cap < MTCI_UNENC_HEADER_LEN + h->req_len) return MTC_ERR_BUFFER_TOO_SMALL;
  int64_t id = mtci_unenc_next_msg_id(&h->last_msg_id, now);
  return mtci_unenc_wrap(id, h->req, h->req_len, out, cap, out_len);
}

int mtci_handshake_feed_envelope(mtci_handshake *h, const uint8_t *msg, size_t len, double now) {
  if (!h) return MTC_ERR_INVALID_ARG;
  if (h->state != MTCI_HS_WAIT_RESPQ && h->state != MTCI_HS_WAIT_DH &&
      h->state != MTCI_HS_WAIT_DH_GEN)
    return MTC_ERR_AUTH_STATE;
  const uint8_t *body;
  size_t body_len;
  int rc = mtci_unenc_unwrap(msg, len, &body, &body_len, NULL);
  if (rc != 0) return fail(h, rc);
  return mtci_handshake_feed(h, body, body_len, now);
}

int mtci_handshake_result(const mtci_handshake *h, mtci_auth_result *out) {
  if (!h || !out) return MTC_ERR_INVALID_ARG;
  if (h->state != MTCI_HS_DONE) return MTC_ERR_AUTH_STATE;
  memset(out, 0, sizeof *out);
  memcpy(out->auth_key, h->auth_key, sizeof out->auth_key);
  mtci_auth_key_id(h->auth_key, out->auth_key_id);
  uint8_t salt[8];
  for (int i = 0; i < 8; i++) salt[i] = h->new_nonce[i] ^ h->server_nonce[i];
  out->server_salt = mtci_i64_of(mtci_le64(salt));
  out->time_offset = h->time_offset;
  out->server_time = h->server_time;
  out->temp = h->expires_in > 0;
  out->expires_in = h->expires_in;
  out->expires_at = h->expires_in > 0 ? (int64_t)h->server_time + h->expires_in : 0;
  out->dc = h->dc;
  return 0;
}

void mtci_auth_result_clear(mtci_auth_result *r) {
  if (r) mtci_zeroize(r, sizeof *r);
}
