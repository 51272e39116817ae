/*
 * MTProto 2.0 session: requests, packet building and encryption, packet
 * decryption and checks, timers. Inbound message handling is in
 * session_msgs.c. See session.h for the model.
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
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

/* Little-endian stores. On a little-endian host a plain copy: gcc's
 * vectorizer turns the byte-by-byte form of a packet's 16-byte message
 * headers into byte shuffles and a stalled reload from the stack. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, int64_t v) { memcpy(p, &v, 8); }
#else
static void put32(uint8_t *p, uint32_t v) { mtci_put_le32(p, v); }
static void put64(uint8_t *p, int64_t v) { mtci_put_le64(p, mtci_u64_of(v)); }
#endif

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

/* mtci_session_make_msg_id(last, server_ms) when *last is already at or
 * above server_ms's id (a packet's messages after its first): the
 * successor, without the time arithmetic. */
static int64_t next_msg_id(int64_t *last, int64_t server_ms) {
  if (*last < 0) return mtci_session_make_msg_id(last, server_ms);
  uint64_t id = ((uint64_t)*last & ~(uint64_t)3) + 4;
  if ((id & 0xffffffffu) == 0) id += 4;
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

/*
 * The queue: entries [evq_head, evq_head + evq_n) are pending. Entries
 * handed out stay below evq_head with their inline payloads until the
 * queue drains (next_event zeroizes them then, all at once), is compacted
 * or trimmed, or the session is freed: one zeroize per burst, not one per
 * event.
 */

/* Room for one more entry: compact (handed-out entries are dropped; what
 * they and the moved entries left behind is zeroized) or grow (a new array:
 * the old one is zeroized, not left to realloc). */
static int evq_room(mtci_session *s) {
  if (s->evq_head > 0) {
    memmove(s->evq, s->evq + s->evq_head, s->evq_n * sizeof *s->evq);
    mtci_zeroize(s->evq + s->evq_n, s->evq_head * sizeof *s->evq);
    s->evq_head = 0;
    if (s->evq_n < s->evq_cap) return 0;
  }
  size_t ncap = s->evq_cap ? s->evq_cap : 8;
  while (ncap <= s->evq_n) {
    if (ncap > SIZE_MAX / 2 / sizeof *s->evq) return MTC_ERR_NOMEM;
    ncap *= 2;
  }
  mtci_session_evq *n = malloc(ncap * sizeof *n);
  if (!n) return MTC_ERR_NOMEM;
  if (s->evq) {
    memcpy(n, s->evq, s->evq_n * sizeof *n);
    mtci_zeroize(s->evq, s->evq_cap * sizeof *s->evq);
    free(s->evq);
  }
  s->evq = n;
  s->evq_cap = ncap;
  return 0;
}

/* A new entry at the end of the queue (its fields are the caller's to
 * set); or NULL. */
static mtci_session_evq *evq_push(mtci_session *s) {
  if (s->evq_head + s->evq_n == s->evq_cap && evq_room(s)) return NULL;
  return &s->evq[s->evq_head + s->evq_n++];
}

int mtci_sess_event_owned(mtci_session *s, int type, uint64_t token, uint8_t *buf, size_t size,
                          const uint8_t *data, size_t len, int64_t msg_id) {
  mtci_session_evq *q = evq_push(s);
  if (!q) {
    if (buf) {
      mtci_zeroize(buf, size);
      free(buf);
    }
    return MTC_ERR_NOMEM;
  }
  q->ev = (mtci_session_event){.type = type, .token = token, .data = data, .len = len,
                                .msg_id = msg_id};
  q->buf = buf;
  q->buf_size = size;
  q->inl_size = 0;
  return 0;
}

int mtci_sess_event(mtci_session *s, int type, uint64_t token, int32_t code, const void *data,
                    size_t len, int64_t value, int64_t msg_id) {
  mtci_session_evq *q;
  if (data && len < MTCI_SESS_EV_INLINE) { /* small: in the entry */
    q = evq_push(s);
    if (!q) return MTC_ERR_NOMEM;
    q->ev = (mtci_session_event){.type = type, .code = code, .token = token, .len = len,
                                  .value = value, .msg_id = msg_id};
    q->buf = NULL;
    q->buf_size = 0;
    if (len) memcpy(q->inl, data, len);
    q->inl[len] = 0;
    q->inl_size = (uint8_t)(len + 1);
    return 0;
  }
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
  q = &s->evq[s->evq_head + s->evq_n - 1];
  q->ev.code = code;
  q->ev.value = value;
  return 0;
}

/* The owned payload handed out last is no longer needed. */
static void release_ev_big(mtci_sess_evcur *c) {
  if (c->big) {
    mtci_zeroize(c->big, c->big_size);
    free(c->big);
    c->big = NULL;
    c->big_size = 0;
  }
}

/* ... nor the inline one. */
static void release_ev_small(mtci_sess_evcur *c) {
  if (c->small_size) {
    mtci_zeroize(c->small, sizeof c->small);
    c->small_size = 0;
  }
}

static void free_ev_cur(mtci_session *s) {
  mtci_sess_evcur *c = (mtci_sess_evcur *)(void *)s->ev_cur;
  if (!c) return;
  release_ev_big(c);
  mtci_zeroize(s->ev_cur, s->ev_cur_size);
  free(s->ev_cur);
  s->ev_cur = NULL;
  s->ev_cur_size = 0;
}

int mtci_session_next_event(mtci_session *s, mtci_session_event *ev) {
  mtci_sess_evcur *c = (mtci_sess_evcur *)(void *)s->ev_cur;
  if (c) release_ev_big(c);
  if (s->evq_n == 0 || !c) {
    if (c) release_ev_small(c);
    memset(ev, 0, sizeof *ev);
    return 0;
  }
  mtci_session_evq *q = &s->evq[s->evq_head++];
  s->evq_n--;
  *ev = q->ev;
  if (q->inl_size) {
    /* the whole buffer: overwrites the previous payload entirely, and a
     * fixed-size copy is cheaper than an exact one */
    memcpy(c->small, q->inl, sizeof c->small);
    c->small_size = q->inl_size;
    ev->data = c->small;
  } else {
    release_ev_small(c);
    c->big = q->buf;
    c->big_size = q->buf_size;
    q->buf = NULL;
  }
  if (s->evq_n == 0) { /* drained: wipe the handed-out entries at once */
    mtci_zeroize(s->evq, s->evq_head * sizeof *s->evq);
    s->evq_head = 0;
  }
  return 1;
}

/* ---- requests ---------------------------------------------------------------- */

/* A request and its body are one allocation (add_req). */
static void req_free(mtci_session_req *r) {
  if (!r) return;
  if (r->body) mtci_zeroize(r->body, r->len);
  free(r);
}

/* The spare requests (see MTCI_SESS_SPARE_BODY_MAX). */
static void free_spares(mtci_session *s) {
  while (s->spare_reqs) {
    mtci_session_req *r = s->spare_reqs;
    s->spare_reqs = r->next_spare;
    free(r); /* its body was zeroized when it became a spare */
  }
}

/* The reqs array as allocated (s->reqs starts reqs_head entries into it). */
static mtci_session_req **reqs_base(const mtci_session *s) {
  return s->reqs ? s->reqs - s->reqs_head : NULL;
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
    if (s->reqs[i] != r) continue;
    if (i == 0) { /* the oldest (answers mostly come in order): move the start */
      s->reqs++;
      s->reqs_head++;
    } else {
      memmove(s->reqs + i, s->reqs + i + 1, (s->n_reqs - i - 1) * sizeof *s->reqs);
    }
    if (!r->sent) s->n_unsent--;
    if (r->kept) s->n_kept--;
    if (--s->n_reqs == 0) { /* empty: back to the start of the array */
      s->reqs -= s->reqs_head;
      s->reqs_head = 0;
    }
    if (r->body_cap <= MTCI_SESS_SPARE_BODY_MAX) {
      mtci_zeroize(r->body, r->len);
      r->next_spare = s->spare_reqs;
      s->spare_reqs = r;
    } else {
      req_free(r);
    }
    return;
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
  if (r->sent) s->n_unsent++;
  if (r->kept) s->n_kept--;
  r->kept = 0;
  r->sent = 0;
  r->acked = 0;
  r->quick_ack = 0;
  s->stats.resends++;
}

static int queue_state_req(mtci_session *s);

size_t mtci_sess_resend_msg(mtci_session *s, int64_t msg_id) {
  size_t n = 0;
  if (msg_id == 0) return 0;
  if (s->chk_msg_id && (msg_id == s->chk_msg_id || msg_id == s->chk_cont_id)) {
    /* our msgs_state_req was rejected (bad salt, bad_msg) or is asked for
     * again: without it the safety net would resend what the server has */
    s->chk_msg_id = 0;
    s->n_chk = 0;
    (void)queue_state_req(s); /* no memory: the safety net still applies */
  }
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
  if (kind == REQ_API && (s->n_reqs == 0 || token > s->reqs[s->n_reqs - 1]->token_bound))
    return NULL;
  for (size_t i = 0; i < s->n_reqs; i++)
    if (s->reqs[i]->kind == kind && s->reqs[i]->token == token) return s->reqs[i];
  return NULL;
}

/* Appends a request with a copy of body[0..len) (one allocation: the
 * request, then its body). */
static int add_req(mtci_session *s, int kind, uint64_t token, uint32_t flags, const uint8_t *body,
                   size_t len) {
  mtci_session_req *r = NULL;
  if (len > SIZE_MAX - sizeof *r - 16) return MTC_ERR_NOMEM;
  if (s->reqs_head + s->n_reqs == s->cap_reqs) { /* no room at the end */
    mtci_session_req **base = reqs_base(s);
    if (s->reqs_head > 0) { /* room at the start: move down (amortized O(1)) */
      memmove(base, s->reqs, s->n_reqs * sizeof *s->reqs);
    } else if (grow((void **)&base, &s->cap_reqs, s->n_reqs + 1, sizeof *s->reqs)) {
      return MTC_ERR_NOMEM;
    }
    s->reqs = base;
    s->reqs_head = 0;
  }
  size_t cap = len;
  r = s->spare_reqs;
  if (r && r->body_cap >= len) {
    s->spare_reqs = r->next_spare;
    cap = r->body_cap;
  } else { /* a new one (a first spare too small for it goes) */
    if (cap < 16) cap = 16;
    mtci_session_req *n = malloc(sizeof *n + cap);
    if (!n) return MTC_ERR_NOMEM;
    if (r) {
      s->spare_reqs = r->next_spare;
      free(r);
    }
    r = n;
  }
  /* every field but old[] (only old[0..n_old) is read) */
  r->kind = kind;
  r->token = token;
  r->flags = flags;
  r->sent = r->acked = r->kept = r->wrapped = r->force_wrap = r->resends = 0;
  r->msg_id = r->container_id = r->sent_ms = 0;
  r->quick_ack = 0;
  r->n_old = 0;
  r->body = (uint8_t *)(r + 1);
  r->body_cap = cap;
  r->build = NULL;
  r->build_ud = NULL;
  if (body) memcpy(r->body, body, len);
  else memset(r->body, 0, len); /* invoke_built: filled at each send */
  r->len = len;
  r->token_bound = s->n_reqs ? s->reqs[s->n_reqs - 1]->token_bound : 0;
  if (kind == REQ_API && token > r->token_bound) r->token_bound = token;
  s->reqs[s->n_reqs++] = r;
  s->n_unsent++;
  return 0;
}

static int add_internal(mtci_session *s, int kind, const uint8_t *body, size_t len) {
  return add_req(s, kind, s->next_internal++, 0, body, len);
}

/* upload.saveFilePart#b304a621 and upload.saveBigFilePart#de7b673d carry
 * file bytes, mostly media that is compressed already: deflating each
 * 512 KiB part costs ~15 ms of CPU to save nothing, so they go as they are. */
static int is_file_part(const uint8_t *body) {
  uint32_t id = mtci_sess_le32(body);
  return id == 0xb304a621u || id == 0xde7b673du;
}

int mtci_session_invoke(mtci_session *s, const uint8_t *body, size_t len, uint32_t flags,
                        uint64_t token) {
  if (!body || len < 4 || len % 4 != 0 || len > MTCI_SESSION_MAX_BODY) return MTC_ERR_INVALID_ARG;
  if (find_token(s, token, REQ_API)) return MTC_ERR_SESSION_DUP_TOKEN;
  if (!(flags & MTCI_SESSION_REQ_NO_GZIP) && s->gzip_min != SIZE_MAX && len > s->gzip_min &&
      !is_file_part(body)) {
    /* Pack; keep the packed form only if it is smaller. */
    mtci_tl_writer w;
    mtci_tl_writer_init(&w, 0);
    int rc = 1;
    if (!w.err && mtci_tl_gzip_pack(&w, body, len) == 0 && w.len < len)
      rc = add_req(s, REQ_API, token, flags, mtci_tl_writer_data(&w), w.len);
    mtci_tl_writer_free(&w);
    if (rc == 0) return 0; /* else (not smaller, no memory): as it is */
  }
  return add_req(s, REQ_API, token, flags, body, len);
}

int mtci_session_invoke_built(mtci_session *s, mtci_session_build_fn fn, void *ud, size_t len,
                              uint32_t flags, uint64_t token) {
  if (!fn || len < 4 || len % 4 != 0 || len > MTCI_SESSION_MAX_BODY) return MTC_ERR_INVALID_ARG;
  if (find_token(s, token, REQ_API)) return MTC_ERR_SESSION_DUP_TOKEN;
  flags |= MTCI_SESSION_REQ_NO_INIT | MTCI_SESSION_REQ_NO_GZIP;
  int rc = add_req(s, REQ_API, token, flags, NULL, len);
  if (rc) return rc;
  s->reqs[s->n_reqs - 1]->build = fn;
  s->reqs[s->n_reqs - 1]->build_ud = ud;
  return 0;
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
  s->n_chk = 0;
  s->chk_msg_id = 0;
  s->ping_msg_id = 0;
  return mtci_sess_event(s, MTCI_SEV_NEW_SESSION, 0, 1, NULL, 0, id, 0);
}

/* ---- acks, service queue, seen window, salts ------------------------------------ */

/* Pending acks are kept ascending (their order on the wire does not
 * matter): a new id, almost always the highest, is checked against the
 * last one only. */
int mtci_sess_queue_ack(mtci_session *s, int64_t msg_id, int64_t now_ms) {
  size_t i = s->n_acks;
  if (i > 0 && s->acks[i - 1] >= msg_id) {
    size_t lo = 0, hi = i - 1;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (s->acks[mid] < msg_id) lo = mid + 1;
      else hi = mid;
    }
    if (s->acks[lo] == msg_id) return 0;
    i = lo;
  }
  if (s->n_acks == s->cap_acks &&
      grow((void **)&s->acks, &s->cap_acks, s->n_acks + 1, sizeof *s->acks))
    return MTC_ERR_NOMEM;
  if (s->n_acks == 0) s->ack_since_ms = now_ms;
  if (i < s->n_acks) memmove(s->acks + i + 1, s->acks + i, (s->n_acks - i) * sizeof *s->acks);
  s->acks[i] = msg_id;
  s->n_acks++;
  return 0;
}

int mtci_sess_queue_svc(mtci_session *s, const uint8_t *body, size_t len) {
  if (grow((void **)&s->svc, &s->cap_svc, s->n_svc + 1, sizeof *s->svc)) return MTC_ERR_NOMEM;
  uint8_t *b = malloc(len);
  if (!b) return MTC_ERR_NOMEM;
  memcpy(b, body, len);
  s->svc[s->n_svc].body = b;
  s->svc[s->n_svc].len = len;
  s->svc[s->n_svc].state_req = 0;
  s->n_svc++;
  return 0;
}

/* ---- the duplicate window (a sorted ring, see session_impl.h) ---- */

static mtci_sess_seen *seen_ring(const mtci_session *s) {
  return (mtci_sess_seen *)(void *)s->seen;
}

/* cap is a power of two (MTCI_SESS_SEEN_MIN_CAP doubled or halved, at
 * most MTCI_SESSION_SEEN_WINDOW): a position wraps with a mask. */
_Static_assert((MTCI_SESS_SEEN_MIN_CAP & (MTCI_SESS_SEEN_MIN_CAP - 1)) == 0 &&
                   (MTCI_SESSION_SEEN_WINDOW & (MTCI_SESSION_SEEN_WINDOW - 1)) == 0,
               "seen ring sizes are powers of two");
static size_t seen_pos(const mtci_sess_seen *w, size_t k) { return (w->head + k) & (w->cap - 1); }

static int64_t seen_at(const mtci_sess_seen *w, size_t k) { return w->ids[seen_pos(w, k)]; }

/* Move the ids to a new ring of cap >= n_seen slots, lowest first. */
static int seen_resize(mtci_session *s, size_t cap) {
  mtci_sess_seen *o = seen_ring(s);
  if (cap > (SIZE_MAX - sizeof *o) / sizeof o->ids[0]) return MTC_ERR_NOMEM;
  mtci_sess_seen *w = malloc(sizeof *w + cap * sizeof w->ids[0]);
  if (!w) return MTC_ERR_NOMEM;
  w->head = 0;
  w->cap = cap;
  w->forgot = o ? o->forgot : 0;
  for (size_t k = 0; o && k < s->n_seen; k++) w->ids[k] = seen_at(o, k);
  free(o);
  s->seen = (int64_t *)(void *)w;
  return 0;
}

static void seen_forget_lowest(mtci_session *s) {
  mtci_sess_seen *w = seen_ring(s);
  w->head = (w->head + 1) & (w->cap - 1);
  s->n_seen--;
  w->forgot = 1;
}

/* Index (ascending order) of the first id >= id. Ids come nearly in order
 * (a container's id above its messages'): the last few are looked at
 * first, then a binary search. */
static size_t seen_lower(const mtci_session *s, int64_t id) {
  const mtci_sess_seen *w = seen_ring(s);
  size_t k = s->n_seen;
  for (int steps = 0; k > 0 && steps < 4; steps++, k--)
    if (seen_at(w, k - 1) < id) return k;
  size_t lo = 0, hi = k; /* the answer is in [0, k]: ids from k on are >= id */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (seen_at(w, mid) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Below the window: something was forgotten (or it is full) and id is
 * lower than every id kept. Each forgotten id was lower than those kept,
 * so no id seen before gets past this and seen_lower together. */
static int seen_below(const mtci_session *s, int64_t id) {
  const mtci_sess_seen *w = seen_ring(s);
  return (w->forgot || s->n_seen == MTCI_SESSION_SEEN_WINDOW) && id < seen_at(w, 0);
}

int mtci_sess_seen_state(const mtci_session *s, int64_t msg_id) {
  const mtci_sess_seen *w = seen_ring(s);
  if (!w || s->n_seen == 0) return 0;
  if (seen_below(s, msg_id)) return -1;
  size_t i = seen_lower(s, msg_id);
  return i < s->n_seen && seen_at(w, i) == msg_id;
}

int mtci_sess_seen_add(mtci_session *s, int64_t msg_id) {
  mtci_sess_seen *w = seen_ring(s);
  if (!w) return MTC_ERR_SESSION_DUPLICATE;
  /* The usual cases, as the general path below would do them: the id is
   * above every id kept, or just below the highest (a container's
   * messages come after its own id, which is above theirs); there is room,
   * or the window is at its largest and the lowest goes. */
  size_t n = s->n_seen;
  if (n >= 2 && (n < w->cap || w->cap == MTCI_SESSION_SEEN_WINDOW)) {
    int64_t top = seen_at(w, n - 1);
    if (msg_id > top) {
      if (n == w->cap) seen_forget_lowest(s);
      w->ids[seen_pos(w, s->n_seen)] = msg_id;
      s->n_seen++;
      return 0;
    }
    if (msg_id < top && msg_id > seen_at(w, n - 2)) {
      if (n == w->cap) seen_forget_lowest(s);
      w->ids[seen_pos(w, s->n_seen)] = top;
      w->ids[seen_pos(w, s->n_seen - 1)] = msg_id;
      s->n_seen++;
      return 0;
    }
  }
  size_t i = 0;
  if (s->n_seen) {
    if (seen_below(s, msg_id)) return MTC_ERR_SESSION_DUPLICATE;
    i = seen_lower(s, msg_id);
    if (i < s->n_seen && seen_at(w, i) == msg_id) return MTC_ERR_SESSION_DUPLICATE;
  }
  if (s->n_seen == w->cap && w->cap < MTCI_SESSION_SEEN_WINDOW) {
    size_t cap = w->cap * 2 < MTCI_SESSION_SEEN_WINDOW ? w->cap * 2 : MTCI_SESSION_SEEN_WINDOW;
    if (seen_resize(s, cap) == 0) w = seen_ring(s); /* else: a smaller window, still safe */
  }
  if (s->n_seen == w->cap) {
    /* Full: the lowest goes. An id below it cannot take its place (the
     * forgotten id would then be above the lowest kept). */
    if (i == 0) return MTC_ERR_SESSION_DUPLICATE;
    seen_forget_lowest(s);
    i--;
  }
  for (size_t k = s->n_seen; k > i; k--) w->ids[seen_pos(w, k)] = seen_at(w, k - 1);
  w->ids[seen_pos(w, i)] = msg_id;
  s->n_seen++;
  return 0;
}

int64_t mtci_sess_seen_max(const mtci_session *s) {
  return s->seen && s->n_seen ? seen_at(seen_ring(s), s->n_seen - 1) : 0;
}

void mtci_sess_seen_expire(mtci_session *s, int64_t now_ms) {
  mtci_sess_seen *w = seen_ring(s);
  if (!w || !s->time_synced) return;
  int64_t limit = mtci_session_server_time_ms(s, now_ms) - MTCI_SESS_SEEN_KEEP_MS;
  while (s->n_seen > 1 && mtci_session_msg_id_ms(seen_at(w, 0)) < limit) seen_forget_lowest(s);
  size_t cap = w->cap; /* shrink to at most half full (hysteresis: only from a quarter) */
  while (cap / 2 >= MTCI_SESS_SEEN_MIN_CAP && s->n_seen <= cap / 4) cap /= 2;
  if (cap != w->cap) (void)seen_resize(s, cap); /* no memory: keep the larger ring */
}

size_t mtci_sess_seen_bytes(const mtci_session *s) {
  const mtci_sess_seen *w = seen_ring(s);
  return w ? sizeof *w + w->cap * sizeof w->ids[0] : 0;
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
  if (c->init_proxy_address && strlen(c->init_proxy_address) > INIT_STR_MAX)
    return MTC_ERR_INVALID_ARG;
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_ID_INVOKE_WITH_LAYER);
  mtci_tl_write_int(&w, c->layer ? c->layer : MTC_TL_LAYER);
  mtci_tl_write_u32(&w, MTCI_ID_INIT_CONNECTION);
  mtci_tl_write_int(&w, c->init_proxy_address ? 1 : 0); /* flags.0 proxy; no params */
  mtci_tl_write_int(&w, c->api_id);
  for (int i = 0; i < 6; i++) write_str(&w, strs[i]);
  if (c->init_proxy_address) { /* inputClientProxy#75588b3f address:string port:int */
    mtci_tl_write_u32(&w, MTCI_ID_INPUT_CLIENT_PROXY);
    write_str(&w, c->init_proxy_address);
    mtci_tl_write_int(&w, c->init_proxy_port);
  }
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
    s->ev_cur = calloc(1, sizeof(mtci_sess_evcur));
    if (s->ev_cur) s->ev_cur_size = sizeof(mtci_sess_evcur);
    else rc = MTC_ERR_NOMEM;
  }
  if (!rc) {
    size_t cap = MTCI_SESS_SEEN_MIN_CAP;
    if (cap > MTCI_SESSION_SEEN_WINDOW) cap = MTCI_SESSION_SEEN_WINDOW;
    rc = seen_resize(s, cap);
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
  free_spares(s);
  free(reqs_base(s));
  for (size_t i = 0; i < s->n_svc; i++) free(s->svc[i].body);
  free(s->svc);
  free(s->acks);
  free(s->chk_ids);
  free(s->seen);
  for (size_t i = 0; i < s->evq_n; i++) {
    mtci_session_evq *q = &s->evq[s->evq_head + i];
    if (q->buf) {
      mtci_zeroize(q->buf, q->buf_size);
      free(q->buf);
    }
  }
  if (s->evq) mtci_zeroize(s->evq, s->evq_cap * sizeof *s->evq); /* inline payloads */
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

/* max(last_rx_ms, the earliest send time of a request waiting for its
 * answer), or INT64_MAX with none. The scan stops at a request sent before
 * the last inbound bytes (usually the first one). */
static int64_t probe_base(const mtci_session *s) {
  int64_t t = INT64_MAX;
  if (s->n_unsent == s->n_reqs) return t; /* none sent */
  for (size_t i = 0; i < s->n_reqs; i++) {
    const mtci_session_req *r = s->reqs[i];
    if (!r->sent) continue;
    if (r->sent_ms <= s->last_rx_ms) return s->last_rx_ms;
    t = min64(t, r->sent_ms);
  }
  return t;
}

static int any_sent(const mtci_session *s) { return s->n_unsent < s->n_reqs; }

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
  int64_t o = probe_base(s);
  return o == INT64_MAX ? INT64_MAX : o + s->probe_after_ms;
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
  if (s->n_kept) t = min64(t, s->keep_until);
  if (s->internal_due) t = min64(t, s->internal_due);
  t = min64(t, salts_at(s));
  if (s->n_salts) t = min64(t, (int64_t)s->salts[0].valid_since * 1000 - s->time_offset_ms);
  return t;
}

/* Quiet for a while: release what a burst left behind (the event payload
 * handed out last stays: it may still be in use). */
static void trim(mtci_session *s) {
  free_spares(s);
  if (s->n_reqs == 0 && s->reqs) {
    free(reqs_base(s));
    s->reqs = NULL;
    s->cap_reqs = s->reqs_head = 0;
  }
  if (s->evq_n == 0 && s->evq) {
    mtci_zeroize(s->evq, s->evq_cap * sizeof *s->evq);
    free(s->evq);
    s->evq = NULL;
    s->evq_cap = s->evq_head = 0;
  }
  if (s->n_acks == 0 && s->acks) {
    free(s->acks);
    s->acks = NULL;
    s->cap_acks = 0;
  }
  if (s->n_chk == 0 && s->chk_ids) {
    free(s->chk_ids);
    s->chk_ids = NULL;
    s->cap_chk = 0;
  }
  if (s->n_svc == 0 && s->svc) {
    free(s->svc);
    s->svc = NULL;
    s->cap_svc = 0;
  }
  if (s->rx) {
    mtci_zeroize(s->rx, s->rx_cap);
    free(s->rx);
    s->rx = NULL;
    s->rx_cap = 0;
  }
}

/* Give up the internal requests sent MTCI_SESS_INTERNAL_TIMEOUT_MS ago or
 * more; internal_due becomes the next such moment (0: none left sent). */
static void expire_internal(mtci_session *s, int64_t now_ms) {
  int64_t due = 0;
  for (size_t i = 0; i < s->n_reqs;) {
    mtci_session_req *r = s->reqs[i];
    if (r->kind != REQ_API && r->sent) {
      int64_t at = r->sent_ms + MTCI_SESS_INTERNAL_TIMEOUT_MS;
      if (now_ms >= at) {
        if (r->kind == REQ_FUTURE_SALTS) {
          s->salts_requested = 0;
          s->salts_retry_ms = now_ms + MTCI_SESS_SALTS_RETRY_MS;
        }
        s->stats.internal_timeouts++;
        mtci_sess_remove_req(s, r); /* the same index holds the next one */
        continue;
      }
      if (!due || at < due) due = at;
    }
    i++;
  }
  s->internal_due = due;
}

static int tick(mtci_session *s, int64_t now_ms) {
  if (now_ms - s->last_rx_ms >= MTCI_SESS_TRIM_QUIET_MS) trim(s);
  if (s->internal_due && now_ms >= s->internal_due) expire_internal(s, now_ms);
  if (s->n_kept && s->connected && !s->dead && now_ms >= s->keep_until) {
    /* safety net: the re-delivery of a kept request's answer did not come */
    for (size_t i = 0; i < s->n_reqs && s->n_kept; i++) {
      if (!s->reqs[i]->kept) continue;
      mtci_sess_resend(s, s->reqs[i], 0);
      s->stats.late_resends++;
    }
    s->n_chk = 0;
    s->chk_msg_id = 0;
  }
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

/* Drop a msgs_state_req of an earlier connection that never went out. */
static void drop_state_req(mtci_session *s) {
  size_t k = 0;
  for (size_t i = 0; i < s->n_svc; i++) {
    if (s->svc[i].state_req) free(s->svc[i].body);
    else s->svc[k++] = s->svc[i];
  }
  s->n_svc = k;
  s->n_chk = 0;
  s->chk_msg_id = 0;
}

/* msgs_state_req#da69fb52 msg_ids:Vector<long> for the kept requests (the
 * first MTCI_SESSION_STATE_IDS of them; the rest rely on the safety net). */
static int queue_state_req(mtci_session *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->n_reqs; i++) n += s->reqs[i]->kept;
  if (n > MTCI_SESSION_STATE_IDS) n = MTCI_SESSION_STATE_IDS;
  if (n == 0) return 0;
  if (grow((void **)&s->chk_ids, &s->cap_chk, n, sizeof *s->chk_ids)) return MTC_ERR_NOMEM;
  /* | msgs_state_req | vector | n | msg_id x n | */
  size_t len = 12 + 8 * n;
  uint8_t *b = malloc(len);
  if (!b) return MTC_ERR_NOMEM;
  put32(b, MTCI_ID_MSGS_STATE_REQ);
  put32(b + 4, MTCI_TL_VECTOR_ID);
  put32(b + 8, (uint32_t)n);
  size_t k = 0;
  for (size_t i = 0; i < s->n_reqs && k < n; i++) {
    if (!s->reqs[i]->kept) continue;
    s->chk_ids[k] = s->reqs[i]->msg_id;
    put64(b + 12 + 8 * k, s->reqs[i]->msg_id);
    k++;
  }
  int rc = mtci_sess_queue_svc(s, b, len);
  free(b);
  if (rc) return rc;
  s->svc[s->n_svc - 1].state_req = 1;
  s->n_chk = n;
  s->stats.state_reqs++;
  return 0;
}

int mtci_session_on_reconnect(mtci_session *s, int64_t now_ms) {
  drop_state_req(s);
  for (size_t i = 0; i < s->n_reqs; i++) {
    mtci_session_req *r = s->reqs[i];
    if (!r->sent) continue;
    if (r->acked && r->msg_id) { /* the server has it: its answer will be re-sent */
      if (!r->kept) {
        r->kept = 1;
        s->n_kept++;
        s->stats.kept++;
      }
    } else {
      mtci_sess_resend(s, r, 0);
    }
  }
  int rc = 0;
  if (s->n_kept) {
    s->keep_until = now_ms + MTCI_SESSION_KEPT_PROBES * s->probe_after_ms;
    rc = queue_state_req(s);
    if (rc) { /* no memory for the check: resend them after all */
      for (size_t i = 0; i < s->n_reqs && s->n_kept; i++)
        if (s->reqs[i]->kept) mtci_sess_resend(s, s->reqs[i], 0);
      s->n_chk = 0;
    }
  }
  s->connected = 1;
  s->dead = 0;
  s->conn_start_ms = s->last_rx_ms = now_ms;
  s->last_keepalive_ms = 0;
  s->ping_due = 0;
  s->ping_msg_id = 0;
  s->ping_sent_ms = 0;
  return rc;
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

/* One message of the packet being built (32 bytes: the array of them for
 * a packet of up to OUT_LOCAL messages lives on the stack). */
typedef struct out_item {
  mtci_session_req *req; /* IT_REQ */
  int64_t msg_id;
  uint32_t body_len; /* <= MTCI_SESSION_MAX_BODY + the init prefix */
  int32_t seqno;
  uint32_t index; /* IT_SVC: index in s->svc (< MTCI_TL_CONTAINER_MAX_MSGS) */
  uint8_t kind, content, wrap;
} out_item;

#define OUT_LOCAL 128 /* items without an allocation: a full window of 64 plus acks */

/* Writes the item's message body at p (it->body_len bytes); returns the
 * end. */
static uint8_t *emit_body(const mtci_session *s, uint8_t *p, const out_item *it, size_t n_acks,
                          int64_t ping_id) {
  switch (it->kind) {
  case IT_ACKS:
    put32(p, MTCI_ID_MSGS_ACK);
    put32(p + 4, MTCI_TL_VECTOR_ID);
    put32(p + 8, (uint32_t)n_acks);
    p += 12;
    for (size_t i = 0; i < n_acks; i++, p += 8) put64(p, s->acks[i]);
    break;
  case IT_PING:
    put32(p, s->no_keepalive ? MTCI_ID_PING : MTCI_ID_PING_DELAY_DISCONNECT);
    put64(p + 4, ping_id);
    p += 12;
    if (!s->no_keepalive) {
      put32(p, (uint32_t)s->ping_disconnect_delay_s);
      p += 4;
    }
    break;
  case IT_SVC:
    memcpy(p, s->svc[it->index].body, s->svc[it->index].len);
    p += s->svc[it->index].len;
    break;
  default:
    if (it->wrap) {
      memcpy(p, s->init_prefix, s->init_prefix_len);
      p += s->init_prefix_len;
    }
    memcpy(p, it->req->body, it->req->len);
    p += it->req->len;
    break;
  }
  return p;
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

/* build_packet; with_reqs = 0 leaves the queued requests out (see
 * mtci_session_build_service_packet). */
static int build(mtci_session *s, int64_t now_ms, mtci_tl_writer *out, uint32_t *quick_ack,
                 int with_reqs) {
  if (quick_ack) *quick_ack = 0;
  if (out->err) return out->err;
  int rc = tick(s, now_ms);
  if (rc) return rc;

  /* 1. what goes out: acks, ping, service messages, then queued requests */
  size_t n_unsent = with_reqs ? s->n_unsent : 0;
  int ping_now = s->ping_due && s->connected && !s->dead;
  if (!s->n_acks && !ping_now && !s->n_svc && !n_unsent) return 0;
  size_t n_cand = s->n_svc + n_unsent + 2;
  size_t cap = n_cand < MTCI_TL_CONTAINER_MAX_MSGS ? n_cand : MTCI_TL_CONTAINER_MAX_MSGS;
  out_item local[OUT_LOCAL]; /* the usual case needs no allocation */
  out_item *items = cap <= OUT_LOCAL ? local : calloc(cap, sizeof *items);
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

  int have_other = s->n_svc > 0 || ping_now || n_unsent > 0;
  if (s->n_acks && (have_other || s->n_acks > MTCI_SESSION_ACKS_IMMEDIATE ||
                    now_ms >= s->ack_since_ms + s->ack_flush_ms)) {
    n_acks = s->n_acks < MTCI_SESSION_ACKS_PER_MSG ? s->n_acks : MTCI_SESSION_ACKS_PER_MSG;
    out_item it = {NULL, 0, (uint32_t)(12 + 8 * n_acks), 0, 0, IT_ACKS, 0, 0};
    TRY_ADD(it);
  }
  if (!full && ping_now) {
    out_item it = {NULL, 0, s->no_keepalive ? 12u : 16u, 0, 0, IT_PING, 0, 0};
    TRY_ADD(it);
  }
  for (size_t i = 0; i < s->n_svc && !full; i++) {
    out_item it = {NULL, 0, (uint32_t)s->svc[i].len, 0, (uint32_t)i, IT_SVC, 1, 0};
    TRY_ADD(it);
  }
  const int may_wrap = !s->no_init, wrap_all = !s->init_done;
  /* the first unsent request: found from the end (new requests are
   * appended, so with many in flight this skips the sent ones unread) */
  size_t first = s->n_reqs;
  for (size_t left = n_unsent; first > 0 && left; first--) left -= !s->reqs[first - 1]->sent;
  for (size_t i = first, left = n_unsent; i < s->n_reqs && !full && left; i++) {
    mtci_session_req *r = s->reqs[i];
    if (r->sent) continue;
    left--;
    int wrap = may_wrap && r->kind == REQ_API && !(r->flags & MTCI_SESSION_REQ_NO_INIT) &&
               (wrap_all || r->force_wrap);
    out_item it = {r, 0, (uint32_t)(r->len + (wrap ? s->init_prefix_len : 0)), 0, 0, IT_REQ, 1,
                   (uint8_t)wrap};
    TRY_ADD(it);
  }
#undef TRY_ADD
  if (n == 0) {
    if (items != local) free(items);
    return 0;
  }

  /* 2. ids: contents first, the container last (its id must be the greatest) */
  int64_t last = s->last_msg_id;
  int32_t content = s->content_sent;
  int64_t server_ms = mtci_session_server_time_ms(s, now_ms);
  int64_t ping_id = 0;
  for (size_t i = 0; i < n; i++) {
    /* after the first id, make_msg_id(&last, server_ms) is last's successor */
    items[i].msg_id =
        i ? next_msg_id(&last, server_ms) : mtci_session_make_msg_id(&last, server_ms);
    items[i].seqno = items[i].content ? 2 * content + 1 : 2 * content;
    content += items[i].content;
    if (items[i].kind == IT_PING) ping_id = items[i].msg_id;
  }
  int64_t msg_id = items[0].msg_id;
  int32_t seqno = items[0].seqno;
  size_t data_len = items[0].body_len;
  if (n > 1) {
    msg_id = next_msg_id(&last, server_ms);
    seqno = 2 * content;
    data_len = total;
  }

  /* 2b. bodies that depend on their msg_id (invoke_built) */
  for (size_t i = 0; i < n && !rc; i++) {
    mtci_session_req *r = items[i].req;
    if (items[i].kind != IT_REQ || !r->build) continue;
    mtci_tl_writer bw;
    mtci_tl_writer_init(&bw, 0);
    rc = r->build(r->build_ud, items[i].msg_id, &bw);
    if (!rc && bw.err) rc = bw.err;
    if (!rc && bw.len != r->len) rc = MTC_ERR_INTERNAL;
    if (!rc) memcpy(r->body, mtci_tl_writer_data(&bw), r->len);
    mtci_tl_writer_free(&bw);
  }
  if (rc) {
    if (items != local) free(items);
    return rc;
  }

  /* 3. plaintext, in place in out after room for auth_key_id and msg_key */
  size_t start = out->len;
  uint8_t extra = 0;
  if (s->random_padding) {
    rc = s->rnd(s->rnd_ud, &extra, 1);
    if (rc) {
      if (items != local) free(items);
      return rc;
    }
  }
  size_t plain_len = padded_len(s, data_len, extra);
  /* the whole packet at once, then the fields written in place:
   * | OUTER_LEN | salt session_id msg_id seq_no length | data | padding | */
  uint8_t *pkt = mtci_tl_write_reserve(out, OUTER_LEN + plain_len);
  rc = out->err;
  if (!rc) {
    uint8_t *p = pkt + OUTER_LEN;
    put64(p, s->salt);
    put64(p + 8, s->session_id);
    put64(p + 16, msg_id);
    put32(p + 24, (uint32_t)seqno);
    put32(p + 28, (uint32_t)data_len);
    p += HEADER_LEN;
    if (n > 1) {
      put32(p, MTCI_TL_MSG_CONTAINER_ID);
      put32(p + 4, (uint32_t)n);
      p += 8;
      for (size_t i = 0; i < n && !rc; i++) {
        /* msg_id, then seqno and bytes as one 8-byte word */
        put64(p, items[i].msg_id);
        put64(p + 8, (int64_t)((uint64_t)(uint32_t)items[i].seqno |
                               (uint64_t)items[i].body_len << 32));
        uint8_t *end = emit_body(s, p + 16, &items[i], n_acks, ping_id);
        if ((size_t)(end - p) != MTCI_TL_CONTAINER_MSG_HEADER + items[i].body_len)
          rc = MTC_ERR_INTERNAL;
        p = end;
      }
    } else {
      p = emit_body(s, p, &items[0], n_acks, ping_id);
    }
    if (!rc && p != pkt + OUTER_LEN + HEADER_LEN + data_len) rc = MTC_ERR_INTERNAL;
    if (!rc) rc = s->rnd(s->rnd_ud, p, plain_len - HEADER_LEN - data_len);
  }
  uint32_t qa = 0;
  if (!rc) {
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
    if (items != local) free(items);
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
      s->n_unsent--;
      r->acked = 0;
      r->msg_id = it->msg_id;
      r->container_id = cont_id;
      r->wrapped = it->wrap;
      r->force_wrap = 0;
      r->sent_ms = now_ms;
      r->quick_ack = qa;
      int64_t due = now_ms + MTCI_SESS_INTERNAL_TIMEOUT_MS;
      if (r->kind != REQ_API && (!s->internal_due || due < s->internal_due)) s->internal_due = due;
    } else if (it->kind == IT_PING) {
      s->ping_msg_id = it->msg_id;
      s->ping_sent_ms = now_ms;
      s->ping_probe = s->ping_due == 2 || any_sent(s);
      s->ping_due = 0;
      if (!s->no_keepalive) s->last_keepalive_ms = now_ms;
    } else if (it->kind == IT_SVC) {
      if (s->svc[it->index].state_req) {
        s->chk_msg_id = it->msg_id;
        s->chk_cont_id = cont_id;
      }
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
  if (items != local) free(items);
  return 1;
}

int mtci_session_build_packet(mtci_session *s, int64_t now_ms, mtci_tl_writer *out,
                              uint32_t *quick_ack) {
  return build(s, now_ms, out, quick_ack, 1);
}

int mtci_session_build_service_packet(mtci_session *s, int64_t now_ms, mtci_tl_writer *out,
                                      uint32_t *quick_ack) {
  return build(s, now_ms, out, quick_ack, 0);
}

size_t mtci_session_unsent(const mtci_session *s) { return s->n_unsent; }

/* ---- receiving packets --------------------------------------------------------- */

int mtci_session_last_ignored(const mtci_session *s) { return s->last_ignored; }

static int ignored(mtci_session *s, int why) {
  s->last_ignored = why;
  s->stats.ignored_packets++;
  return MTCI_SESSION_IGNORED;
}

/* A message below the duplicate window (older than it, or pushed out) that
 * is the answer to a request still pending: the server's re-delivery, after
 * a reconnect, of an answer lost with the old connection, under its
 * original msg_id. Taken (and acked): a request is answered once, so it
 * cannot be delivered twice; without it a request the server confirmed
 * (msgs_state_info 4) would wait forever. */
static int old_answer(const mtci_session *s, const mtci_tl_message *m) {
  return m->body_len >= 12 && mtci_sess_le32(m->body) == MTCI_TL_RPC_RESULT_ID &&
         mtci_sess_seen_state(s, m->msg_id) < 0 &&
         mtci_sess_find_req(s, mtci_sess_le64(m->body + 4), NULL) != NULL;
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
  s->time_offset_ms = new_offset;
  s->time_synced = 1;
  mtci_sess_seen_expire(s, now_ms);
  mtci_sess_seen_add(s, msg_id);
  mtci_session_on_bytes_received(s, now_ms);
  s->stats.packets_in++;
  s->last_ignored = 0;
  if (is_container) {
    if (seqno & 1) mtci_sess_queue_ack(s, msg_id, now_ms);
    mtci_tl_message m;
    while (mtci_tl_container_next(&cont, &m) > 0) {
      if ((m.msg_id & 1) == 0) {
        s->stats.bad_msgs++;
        continue;
      }
      if (mtci_sess_seen_add(s, m.msg_id) != 0 && !old_answer(s, &m)) {
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
