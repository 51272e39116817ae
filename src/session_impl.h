/*
 * Internals shared by session.c (packets, requests, timers) and
 * session_msgs.c (inbound message handling). Not part of any API.
 */
#ifndef MTCI_SESSION_IMPL_H
#define MTCI_SESSION_IMPL_H

#include "session.h"

enum { REQ_API = 0, REQ_FUTURE_SALTS, REQ_DESTROY_SESSION };

struct mtci_session_old_id {
  int64_t id;
  int wrapped; /* that send carried invokeWithLayer(initConnection) */
};

struct mtci_session_req {
  /* what every request touches first (two cache lines), then old[], then
   * the body */
  uint64_t token;
  int kind; /* REQ_* */
  uint32_t flags;
  uint8_t *body; /* right after this struct (one allocation); possibly gzip_packed */
  size_t len;
  mtci_session_build_fn build; /* non-NULL: body is rebuilt for each send (invoke_built) */
  void *build_ud;
  int sent;       /* 1: sent on this connection, awaiting an answer */
  int acked;      /* the server acknowledged the current send */
  int kept;       /* acked, carried over a reconnect: waits for re-delivery */
  int wrapped;    /* the current send is wrapped */
  int force_wrap; /* CONNECTION_NOT_INITED: wrap the next send */
  int resends;    /* resends forced by the server (bad_msg, salt) */
  uint32_t quick_ack;
  int64_t msg_id; /* current send (0: never sent / queued for resend) */
  int64_t container_id;
  int64_t sent_ms;
  size_t n_old;
  size_t body_cap; /* body = (uint8_t *)(this + 1), body_cap bytes: one allocation */
  /* >= the token of every REQ_API request up to this one in s->reqs (it
   * stays an upper bound when requests go): a new token above the last
   * request's needs no duplicate search (tokens usually count up). */
  uint64_t token_bound;
  mtci_session_req *next_spare; /* in s->spare_reqs */
  struct mtci_session_old_id old[MTCI_SESSION_OLD_IDS];
};

/* Answered requests are kept for reuse in s->spare_reqs (their bodies
 * zeroized) when their body room is at most this; released when the
 * session goes quiet (see MTCI_SESS_TRIM_QUIET_MS). */
#define MTCI_SESS_SPARE_BODY_MAX 256
/* No inbound bytes this long: the timers (tick) release what a burst left
 * behind: spare requests, empty queue arrays, the decryption scratch. */
#define MTCI_SESS_TRIM_QUIET_MS 1000
/* An internal request (get_future_salts, destroy_session) sent this long
 * ago without an answer is given up: the app has no timeout of its own on
 * it, and a server that acknowledged it (or confirmed it with msgs_state_info
 * 4) and lost the answer would otherwise keep it, and with get_future_salts
 * the salt prefetch, waiting forever. */
#define MTCI_SESS_INTERNAL_TIMEOUT_MS 30000
/* ... and get_future_salts is asked again this much later. */
#define MTCI_SESS_SALTS_RETRY_MS 60000

/*
 * The duplicate window s->seen points to (it is declared int64_t * in
 * session.h; only session.c and session_msgs.c look inside). The received
 * msg_ids kept, ascending, as a ring: the k-th lowest of the s->n_seen is
 * ids[(head + k) % cap]. An id above all the others (the usual case) goes
 * in at the end in O(1); the lowest is forgotten in O(1).
 *
 * Kept: at most MTCI_SESSION_SEEN_WINDOW ids, and (once the clock is
 * synced) only those not older than MTCI_SESS_SEEN_KEEP_MS of server time,
 * the newest one always. cap grows (doubling) from MTCI_SESS_SEEN_MIN_CAP
 * with the ids kept and shrinks when they are few, so an idle session holds
 * a few dozen bytes. Once an id was forgotten, `forgot` says so and every id
 * below the lowest kept one counts as seen ("below the window"): a
 * duplicate is rejected whether it is still in the window or not. (One
 * exception, in a container: an rpc_result below the window for a request
 * still pending, i.e. a late re-delivery; a request is answered once.)
 */
typedef struct mtci_sess_seen {
  size_t head, cap;
  int forgot;
  int64_t ids[]; /* cap of them */
} mtci_sess_seen;

#define MTCI_SESS_SEEN_MIN_CAP 16
/* Twice the msg_id time bound: older ids could only come inside a container
 * (the outer msg_id is held to MTCI_SESSION_TIME_PAST_S). */
#define MTCI_SESS_SEEN_KEEP_MS (2 * MTCI_SESSION_TIME_PAST_S * 1000)

/* Payloads up to this many bytes (with the NUL the session adds) are kept
 * in the queue entry itself: no allocation per event. */
#define MTCI_SESS_EV_INLINE 47

struct mtci_session_evq {
  mtci_session_event ev;
  uint8_t *buf; /* owned payload (ev.data points into it), or NULL */
  size_t buf_size;
  uint8_t inl_size; /* > 0: the payload is inl[0..inl_size) (ev.data is set when handed out) */
  uint8_t inl[MTCI_SESS_EV_INLINE];
};

/*
 * What s->ev_cur points to (declared uint8_t * in session.h), allocated
 * with the session: the payload of the event last handed out, valid until
 * the next next_event / free. An inline payload is copied to `small`
 * (the queue array may move); an owned one is held as `big`.
 */
typedef struct mtci_sess_evcur {
  uint8_t *big;
  size_t big_size;
  uint8_t small[MTCI_SESS_EV_INLINE];
  uint8_t small_size;
} mtci_sess_evcur;

static inline uint32_t mtci_sess_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline int64_t mtci_sess_le64(const uint8_t *p) {
  uint64_t v = (uint64_t)mtci_sess_le32(p) | (uint64_t)mtci_sess_le32(p + 4) << 32;
  return (int64_t)v;
}

/* Queue an event; data (may be NULL) is copied with a NUL after it. */
int mtci_sess_event(mtci_session *s, int type, uint64_t token, int32_t code, const void *data,
                    size_t len, int64_t value, int64_t msg_id);
/* Queue an event taking ownership of buf (size bytes; data/len point into
 * it). buf is freed on failure. */
int mtci_sess_event_owned(mtci_session *s, int type, uint64_t token, uint8_t *buf, size_t size,
                          const uint8_t *data, size_t len, int64_t msg_id);

/* The request one of whose msg_ids (current or earlier) is msg_id, or NULL.
 * *wrapped (may be NULL) says whether that send was wrapped. */
mtci_session_req *mtci_sess_find_req(const mtci_session *s, int64_t msg_id, int *wrapped);
void mtci_sess_remove_req(mtci_session *s, mtci_session_req *r);
/* Queue r for sending again with a new msg_id. counted: a server-forced
 * resend (limited to MTCI_SESSION_MAX_RESENDS, then a FAILED event). */
void mtci_sess_resend(mtci_session *s, mtci_session_req *r, int counted);
/* Resend whatever was sent as msg_id: a request, or a container's members.
 * Returns how many requests were requeued. */
size_t mtci_sess_resend_msg(mtci_session *s, int64_t msg_id);
/* Mark what was sent as msg_id (request or container) acknowledged. */
void mtci_sess_mark_acked(mtci_session *s, int64_t msg_id);
/* Start a new session_id: seq_no restarts, every unanswered request is
 * resent, NEW_SESSION (code 1) is queued. */
int mtci_sess_new_session(mtci_session *s);

int mtci_sess_queue_ack(mtci_session *s, int64_t msg_id, int64_t now_ms);
/* Queue one service message (copied) to send once. */
int mtci_sess_queue_svc(mtci_session *s, const uint8_t *body, size_t len);
/* Seen-window lookup: 1 seen, 0 not seen, -1 below the window. */
int mtci_sess_seen_state(const mtci_session *s, int64_t msg_id);
/* Add a received msg_id: 0 added, MTC_ERR_SESSION_DUPLICATE (seen, or below
 * the window). */
int mtci_sess_seen_add(mtci_session *s, int64_t msg_id);
/* The highest msg_id in the window (0 if none). */
int64_t mtci_sess_seen_max(const mtci_session *s);
/* Forget window ids older than MTCI_SESS_SEEN_KEEP_MS (clock synced only). */
void mtci_sess_seen_expire(mtci_session *s, int64_t now_ms);
/* Heap bytes of the window (for the bench's breakdown). */
size_t mtci_sess_seen_bytes(const mtci_session *s);
/* Switch to the newest future salt whose valid_since has passed. */
void mtci_sess_update_salt(mtci_session *s, int64_t now_ms);
/* Adopt a salt from the server (SALT_UPDATED if it changed). */
void mtci_sess_set_salt(mtci_session *s, int64_t salt);

/* Handle one inbound message (not a container) of an accepted packet. */
void mtci_sess_handle_message(mtci_session *s, int64_t now_ms, int64_t msg_id, int32_t seqno,
                              const uint8_t *body, size_t len);

#endif /* MTCI_SESSION_IMPL_H */
