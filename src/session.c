/*
 * MTProto 2.0 session: requests, packet building and encryption, packet
 * decryption and checks, timers. Inbound message handling is in
 * session_msgs.c. See session.h for the model.
 */
#include <stdlib.h>
#include <string.h>

#include "mtconn/version.h"
#include "session_impl.h"
#include "tl/special.h"

#define HEADER_LEN 32   /* salt, session_id, msg_id, seq_no, length */
#define OUTER_LEN 24    /* auth_key_id, msg_key */
#define MIN_PAD 12
#define MAX_PAD 1024
#define MIN_PLAIN 48    /* header + 4-byte body + 12 padding, rounded to 16 */
#define INIT_STR_MAX 255

/* ---- small helpers ------------------------------------------------------------ */

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t ncap = *cap ? *cap : 8;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2 / elem) return MTC_ERR_NOMEM;
    ncap *= 2;
  }
  void *n = realloc(*p, ncap * elem);
  if (!n) return MTC_ERR_NOMEM;
  *p = n;
  *cap = ncap;
  return 0;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static void put64(uint8_t *p, int64_t v) {
  put32(p, (uint32_t)(uint64_t)v);
  put32(p + 4, (uint32_t)((uint64_t)v >> 32));
}

int64_t mtci_session_make_msg_id(int64_t *last, int64_t server_ms) {
  if (server_ms < 0) server_ms = 0;
  uint64_t sec = (uint64_t)server_ms / 1000u, ms = (uint64_t)server_ms % 1000u;
  if (sec > 0x7fffffffu) sec = 0x7fffffffu;
  uint64_t id = sec << 32 | (((ms << 32) / 1000u) & ~(uint64_t)3);
  if ((id & 0xffffffffu) == 0) id |= 4;
  uint64_t prev = (uint64_t)*last;
  if (*last >= 0 && id <= prev) {
    id = (prev & ~(uint64_t)3) + 4;
    if ((id & 0xffffffffu) == 0) id += 4;
  }
  *last = (int64_t)id;
  return (int64_t)id;
}

int64_t mtci_session_msg_id_ms(int64_t msg_id) {
  uint64_t u = (uint64_t)msg_id;
  uint64_t sec = u >> 32, frac = u & 0xffffffffu;
  return (int64_t)(sec * 1000u + ((frac * 1000u) >> 32));
}

int64_t mtci_session_server_time_ms(const mtci_session *s, int64_t now_ms) {
  return now_ms + s->time_offset_ms;
}

/* ---- events ------------------------------------------------------------------ */

int mtci_sess_event_owned(mtci_session *s, int type, uint64_t token, uint8_t *buf, size_t size,
                          const uint8_t *data, size_t len, int64_t msg_id) {
  size_t need = s->evq_head + s->evq_n + 1;
  if (need > s->evq_cap && s->evq_head > 0) { /* compact */
    memmove(s->evq, s->evq + s->evq_head, s->evq_n * sizeof *s->evq);
    s->evq_head = 0;
    need = s->evq_n + 1;
  }
  if (grow((void **)&s->evq, &s->evq_cap, need, sizeof *s->evq)) {
    if (buf) {
      mtci_zeroize(buf, size);
      free(buf);
    }
    return MTC_ERR_NOMEM;
  }
  mtci_session_evq *q = &s->evq[s->evq_head + s->evq_n++];
  memset(q, 0, sizeof *q);
  q->ev.type = type;
  q->ev.token = token;
  q->ev.data = data;
  q->ev.len = len;
  q->ev.msg_id = msg_id;
  q->buf = buf;
  q->buf_size = size;
  return 0;
}

int mtci_sess_event(mtci_session *s, int type, uint64_t token, int32_t code, const void *data,
                    size_t len, int64_t value, int64_t msg_id) {
  uint8_t *buf = NULL;
  if (data) {
    if (len == SIZE_MAX) return MTC_ERR_NOMEM;
    buf = malloc(len + 1);
    if (!buf) return MTC_ERR_NOMEM;
    if (len) memcpy(buf, data, len);
    buf[len] = 0;
  }
  int rc = mtci_sess_event_owned(s, type, token, buf, data ? len + 1 : 0, buf, data ? len : 0,
                                 msg_id);
  if (rc) return rc;
  mtci_session_evq *q = &s->evq[s->evq_head + s->evq_n - 1];
  q->ev.code = code;
  q->ev.value = value;
  return 0;
}

static void free_ev_cur(mtci_session *s) {
  if (s->ev_cur) {
    mtci_zeroize(s->ev_cur, s->ev_cur_size);
    free(s->ev_cur);
    s->ev_cur = NULL;
    s->ev_cur_size = 0;
  }
}

int mtci_session_next_event(mtci_session *s, mtci_session_event *ev) {
  free_ev_cur(s);
  if (s->evq_n == 0) {
    memset(ev, 0, sizeof *ev);
    return 0;
  }
  mtci_session_evq *q = &s->evq[s->evq_head++];
  s->evq_n--;
  if (s->evq_n == 0) s->evq_head = 0;
  *ev = q->ev;
  s->ev_cur = q->buf;
  s->ev_cur_size = q->buf_size;
  return 1;
}

/* ---- requests ---------------------------------------------------------------- */

static void req_free(mtci_session_req *r) {
  if (!r) return;
  if (r->body) {
    mtci_zeroize(r->body, r->len);
    free(r->body);
  }
  free(r);
}

mtci_session_req *mtci_sess_find_req(const mtci_session *s, int64_t msg_id, int *wrapped) {
  if (msg_id == 0) return NULL;
  for (size_t i = 0; i < s->n_reqs; i++) {
    mtci_session_req *r = s->reqs[i];
    if (r->msg_id == msg_id) {
      if (wrapped) *wrapped = r->wrapped;
      return r;
    }
    for (size_t j = 0; j < r->n_old; j++) {
      if (r->old[j].id == msg_id) {
        if (wrapped) *wrapped = r->old[j].wrapped;
        return r;
      }
    }
  }
  return NULL;
}

void mtci_sess_remove_req(mtci_session *s, mtci_session_req *r) {
  for (size_t i = 0; i < s->n_reqs; i++) {
    if (s->reqs[i] == r) {
      memmove(s->reqs + i, s->reqs + i + 1, (s->n_reqs - i - 1) * sizeof *s->reqs);
      s->n_reqs--;
      req_free(r);
      return;
    }
  }
}

static void push_old(mtci_session_req *r) {
  if (!r->msg_id) return;
  if (r->n_old == MTCI_SESSION_OLD_IDS) {
    memmove(r->old, r->old + 1, (MTCI_SESSION_OLD_IDS - 1) * sizeof r->old[0]);
    r->n_old--;
  }
  r->old[r->n_old].id = r->msg_id;
  r->old[r->n_old].wrapped = r->wrapped;
  r->n_old++;
  r->msg_id = 0;
  r->container_id = 0;
}

void mtci_sess_resend(mtci_session *s, mtci_session_req *r, int counted) {
  if (counted && ++r->resends > MTCI_SESSION_MAX_RESENDS) {
    if (r->kind == REQ_API)
      mtci_sess_event(s, MTCI_SEV_FAILED, r->token, MTC_ERR_SESSION_RESEND_LIMIT, NULL, 0, 0, 0);
    else if (r->kind == REQ_FUTURE_SALTS)
      s->salts_requested = 0;
    mtci_sess_remove_req(s, r);
    return;
  }
  push_old(r);
  r->sent = 0;
  r->acked = 0;
  r->quick_ack = 0;
  s->stats.resends++;
}

size_t mtci_sess_resend_msg(mtci_session *s, int64_t msg_id) {
  size_t n = 0;
  if (msg_id == 0) return 0;
  for (size_t i = 0; i < s->n_reqs;) {
    mtci_session_req *r = s->reqs[i];
    if (r->sent && (r->msg_id == msg_id || r->container_id == msg_id)) {
      size_t before = s->n_reqs;
      mtci_sess_resend(s, r, 1);
      n++;
      if (s->n_reqs < before) continue; /* removed (limit): same index holds the next */
    }
    i++;
  }
  return n;
}

void mtci_sess_mark_acked(mtci_session *s, int64_t msg_id) {
  if (msg_id == 0) return;
  for (size_t i = 0; i < s->n_reqs; i++) {
    mtci_session_req *r = s->reqs[i];
    if (r->sent && (r->msg_id == msg_id || r->container_id == msg_id)) r->acked = 1;
  }
}

static mtci_session_req *find_token(const mtci_session *s, uint64_t token, int kind) {
  for (size_t i = 0; i < s->n_reqs; i++)
    if (s->reqs[i]->kind == kind && s->reqs[i]->token == token) return s->reqs[i];
  return NULL;
}

/* Appends a request owning body (freed on failure). */
static int add_req(mtci_session *s, int kind, uint64_t token, uint32_t flags, uint8_t *body,
                   size_t len) {
  mtci_session_req *r = NULL;
  if (grow((void **)&s->reqs, &s->cap_reqs, s->n_reqs + 1, sizeof *s->reqs) ||
      !(r = calloc(1, sizeof *r))) {
    mtci_zeroize(body, len);
    free(body);
    return MTC_ERR_NOMEM;
  }
  r->kind = kind;
  r->token = token;
  r->flags = flags;
  r->body = body;
  r->len = len;
  s->reqs[s->n_reqs++] = r;
  return 0;
}

static int add_internal(mtci_session *s, int kind, const uint8_t *body, size_t len) {
  uint8_t *copy = malloc(len);
  if (!copy) return MTC_ERR_NOMEM;
  memcpy(copy, body, len);
  return add_req(s, kind, s->next_internal++, 0, copy, len);
}

int mtci_session_invoke(mtci_session *s, const uint8_t *body, size_t len, uint32_t flags,
                        uint64_t token) {
  if (!body || len < 4 || len % 4 != 0 || len > MTCI_SESSION_MAX_BODY) return MTC_ERR_INVALID_ARG;
  if (find_token(s, token, REQ_API)) return MTC_ERR_SESSION_DUP_TOKEN;
  uint8_t *copy = NULL;
  size_t clen = 0;
  if (!(flags & MTCI_SESSION_REQ_NO_GZIP) && s->gzip_min != SIZE_MAX && len > s->gzip_min) {
    /* Pack; keep the packed form only if it is smaller. */
    mtci_tl_writer w;
    mtci_tl_writer_init(&w, 0);
    if (!w.err && mtci_tl_gzip_pack(&w, body, len) == 0 && w.len < len) {
      copy = malloc(w.len);
      if (copy) {
        memcpy(copy, mtci_tl_writer_data(&w), w.len);
        clen = w.len;
      }
    }
    mtci_tl_writer_free(&w);
  }
  if (!copy) {
    copy = malloc(len);
    if (!copy) return MTC_ERR_NOMEM;
    memcpy(copy, body, len);
    clen = len;
  }
  return add_req(s, REQ_API, token, flags, copy, clen);
}

int mtci_session_cancel(mtci_session *s, uint64_t token) {
  mtci_session_req *r = find_token(s, token, REQ_API);
  if (!r) return MTC_ERR_SESSION_NO_REQUEST;
  mtci_sess_remove_req(s, r);
  return 0;
}

size_t mtci_session_pending(const mtci_session *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_reqs; i++) n += s->reqs[i]->kind == REQ_API;
  return n;
}

int mtci_session_destroy_session(mtci_session *s, int64_t session_id) {
  uint8_t b[12];
  put32(b, MTCI_ID_DESTROY_SESSION);
  put64(b + 4, session_id);
  return add_internal(s, REQ_DESTROY_SESSION, b, sizeof b);
}

int mtci_sess_new_session(mtci_session *s) {
  int64_t id = 0;
  for (int tries = 0; tries < 4 && (id == 0 || id == s->session_id); tries++) {
    int rc = s->rnd(s->rnd_ud, (uint8_t *)&id, sizeof id);
    if (rc) return rc;
  }
  s->prev_session_id = s->session_id;
  s->session_id = id;
  s->content_sent = 0;
  s->last_msg_id = 0; /* msg_ids are per session (bad_msg 17 moves the clock back) */
  s->init_done = 0;
  /* Answers for the old session will not come here: resend everything. */
  for (size_t i = 0; i < s->n_reqs; i++)
    if (s->reqs[i]->sent) mtci_sess_resend(s, s->reqs[i], 0);
  /* Acks and service answers belong to the old session. */
  s->n_acks = 0;
  for (size_t i = 0; i < s->n_svc; i++) free(s->svc[i].body);
  s->n_svc = 0;
  s->ping_msg_id = 0;
  return mtci_sess_event(s, MTCI_SEV_NEW_SESSION, 0, 1, NULL, 0, id, 0);
}

/* ---- acks, service queue, seen window, salts ------------------------------------ */

int mtci_sess_queue_ack(mtci_session *s, int64_t msg_id, int64_t now_ms) {
  for (size_t i = 0; i < s->n_acks; i++)
    if (s->acks[i] == msg_id) return 0;
  if (grow((void **)&s->acks, &s->cap_acks, s->n_acks + 1, sizeof *s->acks)) return MTC_ERR_NOMEM;
  if (s->n_acks == 0) s->ack_since_ms = now_ms;
  s->acks[s->n_acks++] = msg_id;
  return 0;
}

int mtci_sess_queue_svc(mtci_session *s, const uint8_t *body, size_t len) {
  if (grow((void **)&s->svc, &s->cap_svc, s->n_svc + 1, sizeof *s->svc)) return MTC_ERR_NOMEM;
  uint8_t *b = malloc(len);
  if (!b) return MTC_ERR_NOMEM;
  memcpy(b, body, len);
  s->svc[s->n_svc].body = b;
  s->svc[s->n_svc].len = len;
  s->n_svc++;
  return 0;
}

/* Index of the first element >= id. */
static size_t seen_lower(const mtci_session *s, int64_t id) {
  size_t lo = 0, hi = s->n_seen;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->seen[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

int mtci_sess_seen_state(const mtci_session *s, int64_t msg_id) {
  if (s->n_seen == MTCI_SESSION_SEEN_WINDOW && msg_id < s->seen[0]) return -1;
  size_t i = seen_lower(s, msg_id);
  return i < s->n_seen && s->seen[i] == msg_id;
}

int mtci_sess_seen_add(mtci_session *s, int64_t msg_id) {
  if (mtci_sess_seen_state(s, msg_id) != 0) return MTC_ERR_SESSION_DUPLICATE;
  size_t i = seen_lower(s, msg_id);
  if (s->n_seen == MTCI_SESSION_SEEN_WINDOW) { /* forget the lowest */
    memmove(s->seen, s->seen + 1, (i - 1) * sizeof *s->seen);
    s->seen[i - 1] = msg_id;
    return 0;
  }
  memmove(s->seen + i + 1, s->seen + i, (s->n_seen - i) * sizeof *s->seen);
  s->seen[i] = msg_id;
  s->n_seen++;
  return 0;
}

void mtci_sess_set_salt(mtci_session *s, int64_t salt) {
  if (salt == s->salt) return;
  s->salt = salt;
  mtci_sess_event(s, MTCI_SEV_SALT_UPDATED, 0, 0, NULL, 0, salt, 0);
}

void mtci_sess_update_salt(mtci_session *s, int64_t now_ms) {
  int64_t server_s = mtci_session_server_time_ms(s, now_ms) / 1000;
  size_t k = 0;
  while (k < s->n_salts && s->salts[k].valid_since <= server_s) k++;
  if (k == 0) return;
  int64_t salt = s->salts[k - 1].salt;
  memmove(s->salts, s->salts + k, (s->n_salts - k) * sizeof *s->salts);
  s->n_salts -= k;
  mtci_sess_set_salt(s, salt);
}

/* ---- init / free --------------------------------------------------------------- */

static void write_str(mtci_tl_writer *w, const char *str) {
  if (!str) str = "";
  mtci_tl_write_bytes(w, str, strlen(str));
}

static int build_init_prefix(mtci_session *s, const mtci_session_config *c) {
  const char *strs[6] = {c->device_model,     c->system_version, c->app_version,
                         c->system_lang_code, c->lang_pack,      c->lang_code};
  for (int i = 0; i < 6; i++)
    if (strs[i] && strlen(strs[i]) > INIT_STR_MAX) return MTC_ERR_INVALID_ARG;
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_ID_INVOKE_WITH_LAYER);
  mtci_tl_write_int(&w, c->layer ? c->layer : MTC_TL_LAYER);
  mtci_tl_write_u32(&w, MTCI_ID_INIT_CONNECTION);
  mtci_tl_write_int(&w, 0); /* flags: no proxy, no params */
  mtci_tl_write_int(&w, c->api_id);
  for (int i = 0; i < 6; i++) write_str(&w, strs[i]);
  int rc = w.err;
  if (!rc) {
    s->init_prefix = malloc(w.len);
    if (!s->init_prefix) rc = MTC_ERR_NOMEM;
    else {
      memcpy(s->init_prefix, mtci_tl_writer_data(&w), w.len);
      s->init_prefix_len = w.len;
    }
  }
  mtci_tl_writer_free(&w);
  return rc;
}

static int64_t pick(int64_t v, int64_t def) { return v > 0 ? v : def; }

int mtci_session_init(mtci_session *s, const mtci_session_config *c, int64_t now_ms) {
  memset(s, 0, sizeof *s);
  if (!c || !c->rnd || c->ping_interval_ms < 0 || c->ping_disconnect_delay_s < 0 ||
      c->ping_timeout_ms < 0 || c->probe_after_ms < 0 || c->dead_after_ms < 0 ||
      c->ack_flush_ms < 0)
    return MTC_ERR_INVALID_ARG;
  memcpy(s->auth_key, c->auth_key, MTCI_AUTH_KEY_LEN);
  mtci_auth_key_id(s->auth_key, s->key_id);
  s->no_init = c->no_init_connection;
  s->ping_interval_ms = pick(c->ping_interval_ms, MTCI_SESSION_PING_INTERVAL_MS);
  s->ping_disconnect_delay_s = (int32_t)pick(c->ping_disconnect_delay_s, MTCI_SESSION_PING_DISCONNECT_S);
  s->ping_timeout_ms = pick(c->ping_timeout_ms, MTCI_SESSION_PING_TIMEOUT_MS);
  s->probe_after_ms = pick(c->probe_after_ms, MTCI_SESSION_PROBE_AFTER_MS);
  s->dead_after_ms = pick(c->dead_after_ms, MTCI_SESSION_DEAD_AFTER_MS);
  s->ack_flush_ms = pick(c->ack_flush_ms, MTCI_SESSION_ACK_FLUSH_MS);
  s->no_keepalive = c->no_keepalive;
  s->no_future_salts = c->no_future_salts;
  s->size_buckets = c->size_buckets;
  s->random_padding = c->random_padding && !c->size_buckets;
  s->gzip_cap = c->gzip_cap ? c->gzip_cap : MTCI_TL_GZIP_DEFAULT_CAP;
  s->gzip_min = c->gzip_min ? c->gzip_min : MTCI_SESSION_GZIP_MIN;
  s->rnd = c->rnd;
  s->rnd_ud = c->rnd_ud;
  s->salt = c->server_salt;
  s->time_offset_ms = c->time_offset_ms;
  s->time_synced = c->time_synced;
  s->last_msg_id = c->min_msg_id > 0 ? c->min_msg_id : 0;
  s->next_internal = 1;
  s->rtt_ms = -1;
  int rc = build_init_prefix(s, c);
  if (!rc) {
    s->seen = malloc(MTCI_SESSION_SEEN_WINDOW * sizeof *s->seen);
    if (!s->seen) rc = MTC_ERR_NOMEM;
  }
  if (!rc) {
    s->session_id = c->session_id;
    for (int tries = 0; tries < 4 && s->session_id == 0; tries++) {
      rc = s->rnd(s->rnd_ud, (uint8_t *)&s->session_id, sizeof s->session_id);
      if (rc) break;
    }
    if (!rc && s->session_id == 0) rc = MTC_ERR_RANDOM;
  }
  if (rc) {
    mtci_session_free(s);
    return rc;
  }
  mtci_session_on_reconnect(s, now_ms);
  s->salts_retry_ms = now_ms;
  return 0;
}

void mtci_session_free(mtci_session *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_reqs; i++) req_free(s->reqs[i]);
  free(s->reqs);
  for (size_t i = 0; i < s->n_svc; i++) free(s->svc[i].body);
  free(s->svc);
  free(s->acks);
  free(s->seen);
  for (size_t i = 0; i < s->evq_n; i++) {
    mtci_session_evq *q = &s->evq[s->evq_head + i];
    if (q->buf) {
      mtci_zeroize(q->buf, q->buf_size);
      free(q->buf);
    }
  }
  free(s->evq);
  free_ev_cur(s);
  if (s->rx) {
    mtci_zeroize(s->rx, s->rx_cap);
    free(s->rx);
  }
  free(s->init_prefix);
  mtci_zeroize(s, sizeof *s);
}

/* ---- timers ---------------------------------------------------------------------- */

static int ping_in_flight(const mtci_session *s) {
  return s->ping_msg_id != 0 && s->last_rx_ms < s->ping_sent_ms;
}

/* Earliest send time of a request waiting for its answer, or INT64_MAX. */
static int64_t oldest_sent(const mtci_session *s) {
  int64_t t = INT64_MAX;
  for (size_t i = 0; i < s->n_reqs; i++)
    if (s->reqs[i]->sent) t = min64(t, s->reqs[i]->sent_ms);
  return t;
}

static int64_t dead_at(const mtci_session *s) {
  int64_t t = INT64_MAX;
  if (ping_in_flight(s))
    t = s->ping_sent_ms + (s->ping_probe ? s->dead_after_ms : s->ping_timeout_ms);
  if (!s->no_keepalive) t = min64(t, s->last_rx_ms + s->ping_interval_ms + s->ping_timeout_ms);
  return t;
}

static int64_t keepalive_at(const mtci_session *s) {
  if (s->no_keepalive) return INT64_MAX;
  return (s->last_keepalive_ms ? s->last_keepalive_ms : s->conn_start_ms) + s->ping_interval_ms;
}

static int64_t probe_at(const mtci_session *s) {
  if (ping_in_flight(s)) return INT64_MAX;
  int64_t o = oldest_sent(s);
  if (o == INT64_MAX) return INT64_MAX;
  return max64(s->last_rx_ms, o) + s->probe_after_ms;
}

static int salts_needed(const mtci_session *s, int64_t now_ms) {
  if (s->no_future_salts || s->salts_requested || now_ms < s->salts_retry_ms) return 0;
  if (s->n_salts == 0) return 1;
  int64_t last_since_ms = (int64_t)s->salts[s->n_salts - 1].valid_since * 1000;
  return last_since_ms - mtci_session_server_time_ms(s, now_ms) < 600000;
}

static int64_t salts_at(const mtci_session *s) {
  if (s->no_future_salts || s->salts_requested) return INT64_MAX;
  int64_t t = s->salts_retry_ms;
  if (s->n_salts > 0) {
    int64_t last_since_ms = (int64_t)s->salts[s->n_salts - 1].valid_since * 1000;
    t = max64(t, last_since_ms - 600000 - s->time_offset_ms);
  }
  return t;
}

int64_t mtci_session_next_deadline(const mtci_session *s) {
  int64_t t = INT64_MAX;
  if (!s->connected || s->dead) return t; /* nothing to do until on_reconnect */
  t = min64(t, dead_at(s));
  if (!s->ping_due) {
    t = min64(t, keepalive_at(s));
    t = min64(t, probe_at(s));
  }
  if (s->n_acks) {
    if (s->n_acks > MTCI_SESSION_ACKS_IMMEDIATE) t = min64(t, s->ack_since_ms);
    else t = min64(t, s->ack_since_ms + s->ack_flush_ms);
  }
  t = min64(t, salts_at(s));
  if (s->n_salts) t = min64(t, (int64_t)s->salts[0].valid_since * 1000 - s->time_offset_ms);
  return t;
}

static int tick(mtci_session *s, int64_t now_ms) {
  if (s->connected && !s->dead) {
    if (now_ms >= dead_at(s)) {
      s->dead = 1;
      s->ping_due = 0;
      int rc = mtci_sess_event(s, MTCI_SEV_DEAD, 0, MTC_ERR_SESSION_DEAD, NULL, 0, 0, 0);
      if (rc) return rc;
    } else if (now_ms >= keepalive_at(s)) {
      s->ping_due = 1;
    } else if (!s->ping_due && now_ms >= probe_at(s)) {
      s->ping_due = 2;
    }
  }
  mtci_sess_update_salt(s, now_ms);
  if (salts_needed(s, now_ms)) {
    uint8_t b[8];
    put32(b, MTCI_ID_GET_FUTURE_SALTS);
    put32(b + 4, MTCI_SESSION_FUTURE_SALTS);
    int rc = add_internal(s, REQ_FUTURE_SALTS, b, sizeof b);
    if (rc) return rc;
    s->salts_requested = 1;
  }
  return 0;
}

int mtci_session_on_deadline(mtci_session *s, int64_t now_ms) { return tick(s, now_ms); }

int mtci_session_on_reconnect(mtci_session *s, int64_t now_ms) {
  for (size_t i = 0; i < s->n_reqs; i++)
    if (s->reqs[i]->sent) mtci_sess_resend(s, s->reqs[i], 0);
  s->connected = 1;
  s->dead = 0;
  s->conn_start_ms = s->last_rx_ms = now_ms;
  s->last_keepalive_ms = 0;
  s->ping_due = 0;
  s->ping_msg_id = 0;
  s->ping_sent_ms = 0;
  return 0;
}

void mtci_session_on_disconnect(mtci_session *s) {
  s->connected = 0;
  s->ping_due = 0;
  s->ping_msg_id = 0;
}

void mtci_session_on_bytes_received(mtci_session *s, int64_t now_ms) {
  if (now_ms > s->last_rx_ms) s->last_rx_ms = now_ms;
}

void mtci_session_resync_time(mtci_session *s) { s->time_synced = 0; }

int mtci_session_on_quick_ack(mtci_session *s, uint32_t token) {
  int n = 0;
  for (size_t i = 0; i < s->n_reqs; i++) {
    mtci_session_req *r = s->reqs[i];
    if (!r->sent || r->quick_ack != token || token == 0) continue;
    r->acked = 1;
    n++;
    if (r->kind == REQ_API) mtci_sess_event(s, MTCI_SEV_QUICK_ACK, r->token, 0, NULL, 0, 0, 0);
  }
  return n;
}

/* ---- building packets -------------------------------------------------------- */

enum { IT_ACKS = 1, IT_PING, IT_SVC, IT_REQ };

typedef struct out_item {
  int kind;
  size_t index; /* svc index */
  mtci_session_req *req;
  size_t body_len;
  int content, wrap;
  int64_t msg_id;
  int32_t seqno;
} out_item;

static void emit_body(mtci_session *s, mtci_tl_writer *w, const out_item *it, size_t n_acks,
                      int64_t ping_id) {
  switch (it->kind) {
  case IT_ACKS:
    mtci_tl_write_u32(w, MTCI_ID_MSGS_ACK);
    mtci_tl_write_vector(w, (uint32_t)n_acks);
    for (size_t i = 0; i < n_acks; i++) mtci_tl_write_long(w, s->acks[i]);
    break;
  case IT_PING:
    if (s->no_keepalive) {
      mtci_tl_write_u32(w, MTCI_ID_PING);
      mtci_tl_write_long(w, ping_id);
    } else {
      mtci_tl_write_u32(w, MTCI_ID_PING_DELAY_DISCONNECT);
      mtci_tl_write_long(w, ping_id);
      mtci_tl_write_int(w, s->ping_disconnect_delay_s);
    }
    break;
  case IT_SVC:
    mtci_tl_write_raw(w, s->svc[it->index].body, s->svc[it->index].len);
    break;
  default:
    if (it->wrap) mtci_tl_write_raw(w, s->init_prefix, s->init_prefix_len);
    mtci_tl_write_raw(w, it->req->body, it->req->len);
    break;
  }
}

/* Plaintext length with padding for data_len bytes of message data; extra
 * random bytes (0..255) before rounding in random-padding mode. */
static size_t padded_len(const mtci_session *s, size_t data_len, size_t extra) {
  size_t base = HEADER_LEN + data_len + MIN_PAD + extra;
  size_t len = (base + 15) & ~(size_t)15;
  if (s->size_buckets) {
    static const size_t buckets[] = {64, 128, 192, 256, 384, 512, 768, 1024, 1280};
    size_t b = 0;
    for (size_t i = 0; i < sizeof buckets / sizeof buckets[0] && !b; i++)
      if (buckets[i] >= len) b = buckets[i];
    if (!b) b = 1280 + ((len - 1280 + 447) / 448) * 448;
    if (b - (HEADER_LEN + data_len) <= MAX_PAD) len = b;
  }
  return len;
}

int mtci_session_build_packet(mtci_session *s, int64_t now_ms, mtci_tl_writer *out,
                              uint32_t *quick_ack) {
  if (quick_ack) *quick_ack = 0;
  if (out->err) return out->err;
  int rc = tick(s, now_ms);
  if (rc) return rc;

  /* 1. what goes out: acks, ping, service messages, then queued requests */
  size_t n_cand = s->n_svc + s->n_reqs + 2;
  size_t cap = n_cand < MTCI_TL_CONTAINER_MAX_MSGS ? n_cand : MTCI_TL_CONTAINER_MAX_MSGS;
  out_item *items = calloc(cap, sizeof *items);
  if (!items) return MTC_ERR_NOMEM;
  size_t n = 0, total = MTCI_TL_CONTAINER_HEADER, n_acks = 0;
  int full = 0;
#define TRY_ADD(it_)                                                                             \
  do {                                                                                           \
    size_t need_ = MTCI_TL_CONTAINER_MSG_HEADER + (it_).body_len;                                \
    if (n > 0 && (n + 1 > cap || total + need_ > MTCI_TL_CONTAINER_MAX_BYTES)) full = 1;        \
    else {                                                                                       \
      items[n++] = (it_);                                                                        \
      total += need_;                                                                            \
      if (need_ + MTCI_TL_CONTAINER_HEADER > MTCI_TL_CONTAINER_MAX_BYTES) full = 1;             \
    }                                                                                            \
  } while (0)

  int have_other = s->n_svc > 0 || (s->ping_due && s->connected && !s->dead);
  for (size_t i = 0; i < s->n_reqs && !have_other; i++) have_other = !s->reqs[i]->sent;
  if (s->n_acks && (have_other || s->n_acks > MTCI_SESSION_ACKS_IMMEDIATE ||
                    now_ms >= s->ack_since_ms + s->ack_flush_ms)) {
    n_acks = s->n_acks < MTCI_SESSION_ACKS_PER_MSG ? s->n_acks : MTCI_SESSION_ACKS_PER_MSG;
    out_item it = {IT_ACKS, 0, NULL, 12 + 8 * n_acks, 0, 0, 0, 0};
    TRY_ADD(it);
  }
  if (!full && s->ping_due && s->connected && !s->dead) {
    out_item it = {IT_PING, 0, NULL, s->no_keepalive ? 12u : 16u, 0, 0, 0, 0};
    TRY_ADD(it);
  }
  for (size_t i = 0; i < s->n_svc && !full; i++) {
    out_item it = {IT_SVC, i, NULL, s->svc[i].len, 1, 0, 0, 0};
    TRY_ADD(it);
  }
  for (size_t i = 0; i < s->n_reqs && !full; i++) {
    mtci_session_req *r = s->reqs[i];
    if (r->sent) continue;
    int wrap = r->kind == REQ_API && !s->no_init && !(r->flags & MTCI_SESSION_REQ_NO_INIT) &&
               (!s->init_done || r->force_wrap);
    out_item it = {IT_REQ, 0, r, r->len + (wrap ? s->init_prefix_len : 0), 1, wrap, 0, 0};
    TRY_ADD(it);
  }
#undef TRY_ADD
  if (n == 0) {
    free(items);
    return 0;
  }

  /* 2. ids: contents first, the container last (its id must be the greatest) */
  int64_t last = s->last_msg_id;
  int32_t content = s->content_sent;
  int64_t server_ms = mtci_session_server_time_ms(s, now_ms);
  for (size_t i = 0; i < n; i++) {
    items[i].msg_id = mtci_session_make_msg_id(&last, server_ms);
    items[i].seqno = items[i].content ? 2 * content + 1 : 2 * content;
    if (items[i].content) content++;
  }
  int64_t msg_id = items[0].msg_id, ping_id = 0;
  int32_t seqno = items[0].seqno;
  for (size_t i = 0; i < n; i++)
    if (items[i].kind == IT_PING) ping_id = items[i].msg_id;
  size_t data_len = items[0].body_len;
  if (n > 1) {
    msg_id = mtci_session_make_msg_id(&last, server_ms);
    seqno = 2 * content;
    data_len = total;
  }

  /* 3. plaintext, in place in out after room for auth_key_id and msg_key */
  size_t start = out->len;
  uint8_t extra = 0;
  if (s->random_padding) {
    rc = s->rnd(s->rnd_ud, &extra, 1);
    if (rc) {
      free(items);
      return rc;
    }
  }
  size_t plain_len = padded_len(s, data_len, extra);
  mtci_tl_write_reserve(out, OUTER_LEN);
  mtci_tl_write_long(out, s->salt);
  mtci_tl_write_long(out, s->session_id);
  mtci_tl_write_long(out, msg_id);
  mtci_tl_write_int(out, seqno);
  mtci_tl_write_u32(out, (uint32_t)data_len);
  if (n > 1) {
    mtci_tl_write_u32(out, MTCI_TL_MSG_CONTAINER_ID);
    mtci_tl_write_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
      mtci_tl_write_long(out, items[i].msg_id);
      mtci_tl_write_int(out, items[i].seqno);
      mtci_tl_write_u32(out, (uint32_t)items[i].body_len);
      emit_body(s, out, &items[i], n_acks, ping_id);
    }
  } else {
    emit_body(s, out, &items[0], n_acks, ping_id);
  }
  size_t pad = plain_len - HEADER_LEN - data_len;
  uint8_t *padp = mtci_tl_write_reserve(out, pad);
  rc = out->err;
  if (!rc && out->len - start != OUTER_LEN + plain_len) rc = MTC_ERR_INTERNAL;
  if (!rc) rc = s->rnd(s->rnd_ud, padp, pad);
  uint32_t qa = 0;
  if (!rc) {
    uint8_t *pkt = mtci_tl_writer_data(out) + start;
    uint8_t *plain = pkt + OUTER_LEN;
    uint8_t mk[16], mk_large[32], key[32], iv[32];
    mtci_mtp2_msg_key(s->auth_key, 0, plain, plain_len, mk, mk_large);
    mtci_mtp2_kdf(s->auth_key, mk, 0, key, iv);
    rc = mtci_aes256_ige_encrypt(key, iv, plain, plain, plain_len);
    memcpy(pkt, s->key_id, 8);
    memcpy(pkt + 8, mk, 16);
    qa = mtci_sess_le32(mk_large) | 0x80000000u;
    mtci_zeroize(key, sizeof key);
    mtci_zeroize(iv, sizeof iv);
    mtci_zeroize(mk_large, sizeof mk_large);
  }
  if (rc) {
    /* leave out as it was: drop what was appended and the sticky error */
    if (out->buf && out->len > start) mtci_zeroize(mtci_tl_writer_data(out) + start, out->len - start);
    out->len = start;
    out->err = 0;
    free(items);
    return rc;
  }

  /* 4. commit */
  s->last_msg_id = last;
  s->content_sent = content;
  int64_t cont_id = n > 1 ? msg_id : 0;
  size_t svc_done = 0;
  for (size_t i = 0; i < n; i++) {
    out_item *it = &items[i];
    if (it->kind == IT_REQ) {
      mtci_session_req *r = it->req;
      r->sent = 1;
      r->acked = 0;
      r->msg_id = it->msg_id;
      r->container_id = cont_id;
      r->wrapped = it->wrap;
      r->force_wrap = 0;
      r->sent_ms = now_ms;
      r->quick_ack = qa;
    } else if (it->kind == IT_PING) {
      s->ping_msg_id = it->msg_id;
      s->ping_sent_ms = now_ms;
      s->ping_probe = s->ping_due == 2 || oldest_sent(s) != INT64_MAX;
      s->ping_due = 0;
      if (!s->no_keepalive) s->last_keepalive_ms = now_ms;
    } else if (it->kind == IT_SVC) {
      svc_done++;
    }
  }
  if (n_acks) {
    memmove(s->acks, s->acks + n_acks, (s->n_acks - n_acks) * sizeof *s->acks);
    s->n_acks -= n_acks;
    s->ack_since_ms = now_ms;
    s->stats.acks_out += n_acks;
  }
  if (svc_done) { /* service items are taken from the front, in order */
    for (size_t i = 0; i < svc_done; i++) free(s->svc[i].body);
    memmove(s->svc, s->svc + svc_done, (s->n_svc - svc_done) * sizeof *s->svc);
    s->n_svc -= svc_done;
  }
  s->stats.packets_out++;
  if (n > 1) s->stats.containers_out++;
  if (quick_ack) *quick_ack = qa;
  free(items);
  return 1;
}

/* ---- receiving packets --------------------------------------------------------- */

int mtci_session_last_ignored(const mtci_session *s) { return s->last_ignored; }

static int ignored(mtci_session *s, int why) {
  s->last_ignored = why;
  s->stats.ignored_packets++;
  return MTCI_SESSION_IGNORED;
}

int mtci_session_feed_packet(mtci_session *s, int64_t now_ms, const uint8_t *pkt, size_t len) {
  if (!pkt || len < OUTER_LEN + MIN_PLAIN || (len - OUTER_LEN) % 16 != 0)
    return MTC_ERR_SESSION_LENGTH;
  size_t n = len - OUTER_LEN;
  if (n > s->rx_cap) {
    uint8_t *nb = malloc(n);
    if (!nb) return MTC_ERR_NOMEM;
    if (s->rx) {
      mtci_zeroize(s->rx, s->rx_cap);
      free(s->rx);
    }
    s->rx = nb;
    s->rx_cap = n;
  }
  /* Every check runs whatever the earlier ones said (security guidelines:
   * the msg_key check even after a length error). */
  int key_ok = mtci_ct_equal(pkt, s->key_id, 8);
  uint8_t key[32], iv[32], mk[16];
  mtci_mtp2_kdf(s->auth_key, pkt + 8, 8, key, iv);
  int rc = mtci_aes256_ige_decrypt(key, iv, pkt + OUTER_LEN, s->rx, n);
  mtci_zeroize(key, sizeof key);
  mtci_zeroize(iv, sizeof iv);
  if (rc) return rc;
  uint8_t *plain = s->rx;
  mtci_mtp2_msg_key(s->auth_key, 8, plain, n, mk, NULL);
  int mk_ok = mtci_ct_equal(mk, pkt + 8, 16);
  uint32_t data_len = mtci_sess_le32(plain + 28);
  size_t room = n - HEADER_LEN; /* >= 16 */
  int len_ok = data_len % 4 == 0 && data_len >= 4 && data_len <= room - MIN_PAD &&
               room - data_len <= MAX_PAD;
  rc = !key_ok ? MTC_ERR_SESSION_KEY_ID
       : !mk_ok ? MTC_ERR_SESSION_MSG_KEY
       : !len_ok ? MTC_ERR_SESSION_PADDING
                 : 0;
  int64_t session_id = mtci_sess_le64(plain + 8);
  int64_t msg_id = mtci_sess_le64(plain + 16);
  int32_t seqno = (int32_t)mtci_sess_le32(plain + 24);
  const uint8_t *body = plain + HEADER_LEN;
  int64_t new_offset = s->time_offset_ms;
  mtci_tl_container cont;
  int is_container = 0;
  if (!rc && session_id != s->session_id) rc = ignored(s, MTC_ERR_SESSION_ID);
  if (!rc && (msg_id & 1) == 0) rc = MTC_ERR_SESSION_MSG_ID;
  if (!rc) {
    /* Time (tdlib AuthData::check_packet): the offset first follows the
     * server forward, so a message from "the future" means our clock is
     * behind and is never rejected; one more than 300 s old is (once the
     * time is synced), which is what stops a replay from an earlier run. */
    int64_t msg_ms = mtci_session_msg_id_ms(msg_id);
    int64_t sample = msg_ms - now_ms;
    if (!s->time_synced || sample > new_offset) new_offset = sample;
    if (s->time_synced && msg_ms < now_ms + new_offset - MTCI_SESSION_TIME_PAST_S * 1000)
      rc = MTC_ERR_SESSION_MSG_TIME;
  }
  if (!rc && mtci_sess_seen_state(s, msg_id) != 0) {
    if ((seqno & 1) && mtci_sess_seen_state(s, msg_id) == 1) mtci_sess_queue_ack(s, msg_id, now_ms);
    s->stats.dup_msgs++;
    rc = ignored(s, MTC_ERR_SESSION_DUPLICATE);
  }
  if (!rc && data_len >= 4 && mtci_sess_le32(body) == MTCI_TL_MSG_CONTAINER_ID) {
    rc = mtci_tl_container_parse(&cont, body, data_len);
    is_container = 1;
  }
  if (rc) {
    mtci_zeroize(plain, n);
    return rc;
  }

  /* accepted: commit, then handle the messages */
  mtci_sess_seen_add(s, msg_id);
  s->time_offset_ms = new_offset;
  s->time_synced = 1;
  mtci_session_on_bytes_received(s, now_ms);
  s->stats.packets_in++;
  s->last_ignored = 0;
  if (is_container) {
    if (seqno & 1) mtci_sess_queue_ack(s, msg_id, now_ms);
    mtci_tl_message m;
    while (mtci_tl_container_next(&cont, &m)) {
      if ((m.msg_id & 1) == 0) {
        s->stats.bad_msgs++;
        continue;
      }
      if (mtci_sess_seen_add(s, m.msg_id) != 0) {
        s->stats.dup_msgs++;
        if ((m.seqno & 1) && mtci_sess_seen_state(s, m.msg_id) == 1)
          mtci_sess_queue_ack(s, m.msg_id, now_ms);
        continue;
      }
      mtci_sess_handle_message(s, now_ms, m.msg_id, m.seqno, m.body, m.body_len);
    }
  } else {
    mtci_sess_handle_message(s, now_ms, msg_id, seqno, body, data_len);
  }
  mtci_zeroize(plain, n);
  return 0;
}
