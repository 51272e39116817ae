/*
 * Inbound message handling for the session (PROTOCOL.md §6.7): rpc_result
 * matching, gzip_packed, and the service messages. Called for each message
 * of an accepted packet (containers are opened by session.c). A malformed
 * message is skipped and counted; it never fails the packet, which was
 * already accepted.
 */
#include <stdlib.h>
#include <string.h>

#include "session_impl.h"
#include "tl/special.h"

static void bad(mtci_session *s) { s->stats.bad_msgs++; }

static int text_is(const mtci_tl_rpc_error *e, const char *t) {
  size_t n = strlen(t);
  return e->message_len == n && memcmp(e->message, t, n) == 0;
}

/* future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt>
 * (a bare vector of bare future_salt: valid_since:int valid_until:int salt:long) */
static void on_future_salts(mtci_session *s, int64_t now_ms, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_FUTURE_SALTS);
  int64_t req_msg_id = mtci_tl_read_long(&r);
  (void)mtci_tl_read_int(&r); /* now */
  uint32_t n = mtci_tl_read_bare_vector(&r, 16);
  mtci_session_salt tmp[MTCI_SESSION_MAX_SALTS];
  size_t k = 0;
  for (uint32_t i = 0; i < n && !r.err; i++) {
    mtci_session_salt e;
    e.valid_since = mtci_tl_read_int(&r);
    e.valid_until = mtci_tl_read_int(&r);
    e.salt = mtci_tl_read_long(&r);
    if (k < MTCI_SESSION_MAX_SALTS && !r.err) tmp[k++] = e;
  }
  if (mtci_tl_read_end(&r)) {
    bad(s);
    return;
  }
  mtci_session_req *req = mtci_sess_find_req(s, req_msg_id, NULL);
  if (req && req->kind == REQ_FUTURE_SALTS) mtci_sess_remove_req(s, req);
  s->salts_requested = 0;
  s->salts_retry_ms = now_ms + MTCI_SESS_SALTS_RETRY_MS; /* a short list must not cause a request loop */
  /* insertion sort by valid_since (k <= 64) */
  for (size_t i = 1; i < k; i++) {
    mtci_session_salt v = tmp[i];
    size_t j = i;
    while (j > 0 && tmp[j - 1].valid_since > v.valid_since) {
      tmp[j] = tmp[j - 1];
      j--;
    }
    tmp[j] = v;
  }
  if (k > 0) {
    memcpy(s->salts, tmp, k * sizeof tmp[0]);
    s->n_salts = k;
    mtci_sess_update_salt(s, now_ms);
  }
}

static void on_pong(mtci_session *s, int64_t now_ms, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_PONG);
  int64_t ping_msg_id = mtci_tl_read_long(&r);
  (void)mtci_tl_read_long(&r); /* ping_id */
  if (mtci_tl_read_end(&r)) {
    bad(s);
    return;
  }
  if (ping_msg_id != 0 && ping_msg_id == s->ping_msg_id) {
    s->rtt_ms = now_ms - s->ping_sent_ms;
    s->ping_msg_id = 0;
  }
}

static void on_destroy_result(mtci_session *s, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  (void)mtci_tl_read_u32(&r);
  int64_t sid = mtci_tl_read_long(&r);
  if (mtci_tl_read_end(&r)) {
    bad(s);
    return;
  }
  for (size_t i = 0; i < s->n_reqs; i++) {
    mtci_session_req *q = s->reqs[i];
    if (q->kind == REQ_DESTROY_SESSION && q->len == 12 && mtci_sess_le64(q->body + 4) == sid) {
      mtci_sess_remove_req(s, q);
      return;
    }
  }
}

static void fail_req(mtci_session *s, mtci_session_req *r, int err) {
  if (r->kind == REQ_API) mtci_sess_event(s, MTCI_SEV_FAILED, r->token, err, NULL, 0, 0, 0);
  else if (r->kind == REQ_FUTURE_SALTS) s->salts_requested = 0;
  mtci_sess_remove_req(s, r);
}

static void on_rpc_result(mtci_session *s, int64_t now_ms, int64_t msg_id, const uint8_t *obj,
                          size_t len) {
  mtci_tl_rpc_result rr;
  if (mtci_tl_rpc_result_parse(obj, len, &rr)) {
    bad(s);
    return;
  }
  int wrapped = 0;
  mtci_session_req *r = mtci_sess_find_req(s, rr.req_msg_id, &wrapped);
  if (!r) {
    /* some servers answer ping in rpc_result */
    if (rr.req_msg_id == s->ping_msg_id && rr.result_len >= 4 &&
        mtci_sess_le32(rr.result) == MTCI_ID_PONG)
      on_pong(s, now_ms, rr.result, rr.result_len);
    return; /* an answer for a cancelled or already answered request: dropped */
  }
  /* result_len >= 4 (parse); only a gzip_packed result needs unwrapping */
  mtci_tl_unwrapped u = {rr.result, rr.result_len, NULL, 0};
  if (mtci_sess_le32(rr.result) == MTCI_TL_GZIP_PACKED_ID) {
    int rc = mtci_tl_unwrap(rr.result, rr.result_len, s->gzip_cap, &u);
    if (rc) {
      fail_req(s, r, rc);
      return;
    }
  }
  if (r->kind == REQ_FUTURE_SALTS) {
    mtci_sess_remove_req(s, r);
    s->salts_requested = 0;
    if (u.len >= 4 && mtci_sess_le32(u.data) == MTCI_ID_FUTURE_SALTS)
      on_future_salts(s, now_ms, u.data, u.len);
    else
      bad(s);
    mtci_tl_unwrapped_free(&u);
    return;
  }
  if (r->kind != REQ_API) {
    mtci_sess_remove_req(s, r);
    mtci_tl_unwrapped_free(&u);
    return;
  }
  mtci_tl_rpc_error e;
  int er = 0; /* the parse clears a 280-byte struct: only for what may be an rpc_error */
  if (u.len < 4 || mtci_sess_le32(u.data) == MTCI_TL_RPC_ERROR_ID)
    er = mtci_tl_rpc_error_parse(u.data, u.len, &e);
  if (er < 0) {
    fail_req(s, r, er);
  } else if (er == 1) {
    if ((text_is(&e, "CONNECTION_NOT_INITED") || text_is(&e, "CONNECTION_LAYER_INVALID")) &&
        !s->no_init && !(r->flags & MTCI_SESSION_REQ_NO_INIT)) {
      /* the server lost (or never had) our initConnection: wrap again */
      s->init_done = 0;
      r->force_wrap = 1;
      mtci_sess_resend(s, r, 1);
    } else {
      if (wrapped) s->init_done = 1;
      mtci_sess_event(s, MTCI_SEV_RPC_ERROR, r->token, e.code, e.message, e.message_len, 0,
                      msg_id);
      mtci_sess_remove_req(s, r);
    }
  } else {
    if (wrapped) s->init_done = 1;
    uint64_t token = r->token;
    mtci_sess_remove_req(s, r);
    if (u.owned) {
      mtci_sess_event_owned(s, MTCI_SEV_RESULT, token, u.owned, u.owned_size, u.data, u.len,
                            msg_id);
      u.owned = NULL; /* the event owns it now */
    } else {
      mtci_sess_event(s, MTCI_SEV_RESULT, token, 0, u.data, u.len, 0, msg_id);
    }
  }
  if (u.owned) mtci_tl_unwrapped_free(&u);
}

static void on_msgs_ack(mtci_session *s, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_MSGS_ACK);
  uint32_t n = mtci_tl_read_vector(&r, 8);
  for (uint32_t i = 0; i < n && !r.err; i++) {
    int64_t id = mtci_tl_read_long(&r);
    if (!r.err) mtci_sess_mark_acked(s, id);
  }
  if (mtci_tl_read_end(&r)) bad(s);
}

static void on_bad_server_salt(mtci_session *s, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_BAD_SERVER_SALT);
  int64_t bad_id = mtci_tl_read_long(&r);
  (void)mtci_tl_read_int(&r); /* bad_msg_seqno */
  (void)mtci_tl_read_int(&r); /* error_code (48) */
  int64_t salt = mtci_tl_read_long(&r);
  if (mtci_tl_read_end(&r)) {
    bad(s);
    return;
  }
  /* The future salts we had are evidently not what the server wants now. */
  s->n_salts = 0;
  mtci_sess_set_salt(s, salt);
  mtci_sess_resend_msg(s, bad_id);
}

static void fix_time(mtci_session *s, int64_t now_ms, int64_t server_msg_id) {
  s->time_offset_ms = mtci_session_msg_id_ms(server_msg_id) - now_ms;
  s->time_synced = 1;
  mtci_sess_event(s, MTCI_SEV_TIME_FIXED, 0, 0, NULL, 0, s->time_offset_ms, server_msg_id);
}

static void on_bad_msg(mtci_session *s, int64_t now_ms, int64_t msg_id, const uint8_t *obj,
                       size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_BAD_MSG_NOTIFICATION);
  int64_t bad_id = mtci_tl_read_long(&r);
  (void)mtci_tl_read_int(&r); /* bad_msg_seqno */
  int32_t code = mtci_tl_read_int(&r);
  if (mtci_tl_read_end(&r)) {
    bad(s);
    return;
  }
  switch (code) {
  case 16: /* msg_id too low: our clock is behind */
    fix_time(s, now_ms, msg_id);
    mtci_sess_resend_msg(s, bad_id);
    break;
  case 17: /* msg_id too high: the clock goes back, so msg_ids restart in a new session */
    fix_time(s, now_ms, msg_id);
    mtci_sess_resend_msg(s, bad_id);
    mtci_sess_new_session(s);
    break;
  case 20: /* too old: the server forgot it */
  case 48: /* bad salt without a salt: resend */
    mtci_sess_resend_msg(s, bad_id);
    break;
  case 18: /* msg_id not divisible by 4 */
  case 19: /* container msg_id reused */
  case 32: /* seq_no too low */
  case 33: /* seq_no too high */
  case 34: /* even seq_no expected */
  case 35: /* odd seq_no expected */
  case 64: /* invalid container */
    /* Our numbering is out of step with the server's view: a fresh
     * session_id restarts seq_no (the resend counter stops a loop). */
    mtci_sess_resend_msg(s, bad_id);
    mtci_sess_new_session(s);
    break;
  default:
    mtci_sess_resend_msg(s, bad_id);
    mtci_sess_event(s, MTCI_SEV_NEED_RECONNECT, 0, MTC_ERR_SESSION_BAD_MSG, NULL, 0, code, msg_id);
    break;
  }
}

static void on_new_session(mtci_session *s, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_NEW_SESSION_CREATED);
  int64_t first = mtci_tl_read_long(&r);
  int64_t unique = mtci_tl_read_long(&r);
  int64_t salt = mtci_tl_read_long(&r);
  if (mtci_tl_read_end(&r)) {
    bad(s);
    return;
  }
  mtci_sess_set_salt(s, salt);
  /* The server's session starts at first_msg_id: whatever we sent before it
   * is lost, and so is its initConnection. A query in a container counts by
   * the container's id (tdlib), which servers may report as first_msg_id. */
  s->init_done = 0;
  for (size_t i = 0; i < s->n_reqs; i++) {
    mtci_session_req *q = s->reqs[i];
    int64_t id = q->container_id ? q->container_id : q->msg_id;
    if (q->sent && id < first) mtci_sess_resend(s, q, 0);
  }
  mtci_sess_event(s, MTCI_SEV_NEW_SESSION, 0, 0, NULL, 0, unique, first);
}

/* msgs_state_req -> msgs_state_info(req_msg_id, one status byte per id) */
static void on_state_req(mtci_session *s, int64_t msg_id, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_MSGS_STATE_REQ);
  uint32_t n = mtci_tl_read_vector(&r, 8);
  size_t start = r.pos;
  for (uint32_t i = 0; i < n; i++) (void)mtci_tl_read_long(&r);
  if (mtci_tl_read_end(&r) || n > 8192) {
    bad(s);
    return;
  }
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_ID_MSGS_STATE_INFO);
  mtci_tl_write_long(&w, msg_id);
  uint8_t *info = mtci_tl_write_bytes_reserve(&w, n);
  int64_t max_seen = mtci_sess_seen_max(s);
  for (uint32_t i = 0; info && i < n; i++) {
    int64_t id = mtci_sess_le64(obj + start + 8 * (size_t)i);
    int st = mtci_sess_seen_state(s, id);
    /* 1 unknown (below our window), 2 not received, 3 not received (too
     * high), 4 received */
    info[i] = (uint8_t)(st == 1 ? 4 : st < 0 ? 1 : id > max_seen ? 3 : 2);
  }
  if (!w.err) mtci_sess_queue_svc(s, mtci_tl_writer_data(&w), w.len);
  mtci_tl_writer_free(&w);
}

/*
 * msgs_state_info#04deb57d req_msg_id:long info:string, the answer to the
 * msgs_state_req of a reconnect: one status byte per id we asked about, in
 * order. Low 3 bits: 1 nothing known (msg_id too low), 2 not received, 3 not
 * received (msg_id too high): the query is lost, resend it with a new msg_id;
 * 4 received (+8 acked, +16 no ack needed, +32 processing or processed, +64
 * answer generated, +128 known to be received): the server will re-send its
 * answer, keep waiting with no deadline of our own (the app's request
 * timeout still applies). Anything else: leave it to the safety net.
 */
static void on_state_info(mtci_session *s, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_MSGS_STATE_INFO);
  int64_t req_msg_id = mtci_tl_read_long(&r);
  size_t info_len = 0;
  const uint8_t *info = mtci_tl_read_bytes(&r, &info_len);
  if (mtci_tl_read_end(&r)) {
    bad(s);
    return;
  }
  if (s->chk_msg_id == 0 || req_msg_id != s->chk_msg_id) return; /* not (or no longer) ours */
  if (info_len != s->n_chk) {
    bad(s);
    return;
  }
  for (size_t i = 0; i < info_len; i++) {
    int st = info[i] & 7;
    if (st < 1 || st > 4) continue;
    for (size_t j = 0; j < s->n_reqs; j++) {
      mtci_session_req *q = s->reqs[j];
      if (!q->kept || q->msg_id != s->chk_ids[i]) continue;
      if (st == 4) {
        /* the server has it: its answer will come however long the call
         * runs, so the safety net no longer applies (resending would run it
         * twice); a later reconnect asks again */
        q->kept = 0;
        s->n_kept--;
        s->stats.state_confirmed++;
      } else {
        mtci_sess_resend(s, q, 0);
        s->stats.state_resends++;
      }
      break;
    }
  }
  s->n_chk = 0;
  s->chk_msg_id = 0;
}

/* msgs_all_info / msgs_state_info-like lists: resend what the server lacks */
static void on_all_info(mtci_session *s, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_MSGS_ALL_INFO);
  uint32_t n = mtci_tl_read_vector(&r, 8);
  size_t start = r.pos;
  for (uint32_t i = 0; i < n; i++) (void)mtci_tl_read_long(&r);
  size_t info_len = 0;
  const uint8_t *info = mtci_tl_read_bytes(&r, &info_len);
  if (mtci_tl_read_end(&r) || info_len != n) {
    bad(s);
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    int st = info[i] & 7;
    if (st >= 1 && st <= 3) mtci_sess_resend_msg(s, mtci_sess_le64(obj + start + 8 * (size_t)i));
  }
}

static void on_resend_req(mtci_session *s, const uint8_t *obj, size_t len) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_ID_MSG_RESEND_REQ);
  uint32_t n = mtci_tl_read_vector(&r, 8);
  for (uint32_t i = 0; i < n && !r.err; i++) {
    int64_t id = mtci_tl_read_long(&r);
    if (!r.err) mtci_sess_resend_msg(s, id);
  }
  if (mtci_tl_read_end(&r)) bad(s);
}

/* The server has an answer for us: ack it if we have it, else ask for it. */
static void on_detailed_info(mtci_session *s, int64_t now_ms, const uint8_t *obj, size_t len,
                             int with_msg_id) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  (void)mtci_tl_read_u32(&r);
  int64_t our_id = with_msg_id ? mtci_tl_read_long(&r) : 0;
  int64_t answer_id = mtci_tl_read_long(&r);
  (void)mtci_tl_read_int(&r); /* bytes */
  (void)mtci_tl_read_int(&r); /* status */
  if (mtci_tl_read_end(&r)) {
    bad(s);
    return;
  }
  if (our_id) mtci_sess_mark_acked(s, our_id);
  if (mtci_sess_seen_state(s, answer_id) == 1) {
    mtci_sess_queue_ack(s, answer_id, now_ms);
    return;
  }
  uint8_t b[20];
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_ID_MSG_RESEND_ANS_REQ);
  mtci_tl_write_vector(&w, 1);
  mtci_tl_write_long(&w, answer_id);
  if (!w.err && w.len == sizeof b) {
    memcpy(b, mtci_tl_writer_data(&w), sizeof b);
    mtci_sess_queue_svc(s, b, sizeof b);
  }
  mtci_tl_writer_free(&w);
}

static void dispatch(mtci_session *s, int64_t now_ms, int64_t msg_id, const uint8_t *obj,
                     size_t len, int depth) {
  if (len < 4) {
    bad(s);
    return;
  }
  switch (mtci_sess_le32(obj)) {
  case MTCI_TL_RPC_RESULT_ID: on_rpc_result(s, now_ms, msg_id, obj, len); break;
  case MTCI_ID_MSGS_ACK: on_msgs_ack(s, obj, len); break;
  case MTCI_ID_BAD_SERVER_SALT: on_bad_server_salt(s, obj, len); break;
  case MTCI_ID_BAD_MSG_NOTIFICATION: on_bad_msg(s, now_ms, msg_id, obj, len); break;
  case MTCI_ID_NEW_SESSION_CREATED: on_new_session(s, obj, len); break;
  case MTCI_ID_FUTURE_SALTS: on_future_salts(s, now_ms, obj, len); break;
  case MTCI_ID_PONG: on_pong(s, now_ms, obj, len); break;
  case MTCI_ID_MSGS_STATE_REQ: on_state_req(s, msg_id, obj, len); break;
  case MTCI_ID_MSGS_ALL_INFO: on_all_info(s, obj, len); break;
  case MTCI_ID_MSG_RESEND_REQ: on_resend_req(s, obj, len); break;
  case MTCI_ID_MSG_DETAILED_INFO: on_detailed_info(s, now_ms, obj, len, 1); break;
  case MTCI_ID_MSG_NEW_DETAILED_INFO: on_detailed_info(s, now_ms, obj, len, 0); break;
  case MTCI_ID_DESTROY_SESSION_OK:
  case MTCI_ID_DESTROY_SESSION_NONE: on_destroy_result(s, obj, len); break;
  case MTCI_ID_MSGS_STATE_INFO: on_state_info(s, obj, len); break;
  case MTCI_ID_MSG_COPY:        /* deprecated, never sent by servers */
    break;
  case MTCI_TL_MSG_CONTAINER_ID: /* containers do not nest */
    bad(s);
    break;
  case MTCI_TL_GZIP_PACKED_ID: {
    if (depth > 0) {
      bad(s);
      break;
    }
    mtci_tl_unwrapped u;
    if (mtci_tl_gzip_unpack(obj, len, s->gzip_cap, &u)) {
      bad(s);
      break;
    }
    dispatch(s, now_ms, msg_id, u.data, u.len, depth + 1);
    mtci_tl_unwrapped_free(&u);
    break;
  }
  default: /* updates and anything else for the application */
    mtci_sess_event(s, MTCI_SEV_UPDATES, 0, 0, obj, len, 0, msg_id);
    break;
  }
}

void mtci_sess_handle_message(mtci_session *s, int64_t now_ms, int64_t msg_id, int32_t seqno,
                              const uint8_t *body, size_t len) {
  s->stats.msgs_in++;
  /* content-related messages (odd seq_no) are acknowledged */
  if (seqno & 1) mtci_sess_queue_ack(s, msg_id, now_ms);
  dispatch(s, now_ms, msg_id, body, len, 0);
}
