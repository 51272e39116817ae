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
  uint64_t token;
  int kind; /* REQ_* */
  uint32_t flags;
  uint8_t *body; /* owned; possibly gzip_packed */
  size_t len;
  int sent;       /* 1: sent on this connection, awaiting an answer */
  int acked;      /* the server acknowledged the current send */
  int wrapped;    /* the current send is wrapped */
  int force_wrap; /* CONNECTION_NOT_INITED: wrap the next send */
  int resends;    /* resends forced by the server (bad_msg, salt) */
  int64_t msg_id; /* current send (0: never sent / queued for resend) */
  int64_t container_id;
  int64_t sent_ms;
  uint32_t quick_ack;
  struct mtci_session_old_id old[MTCI_SESSION_OLD_IDS];
  size_t n_old;
};

struct mtci_session_evq {
  mtci_session_event ev;
  uint8_t *buf; /* owned payload (ev.data points into it) */
  size_t buf_size;
};

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
/* Add a received msg_id: 0 added, MTC_ERR_SESSION_DUPLICATE (seen or below
 * a full window). */
int mtci_sess_seen_add(mtci_session *s, int64_t msg_id);
/* Switch to the newest future salt whose valid_since has passed. */
void mtci_sess_update_salt(mtci_session *s, int64_t now_ms);
/* Adopt a salt from the server (SALT_UPDATED if it changed). */
void mtci_sess_set_salt(mtci_session *s, int64_t salt);

/* Handle one inbound message (not a container) of an accepted packet. */
void mtci_sess_handle_message(mtci_session *s, int64_t now_ms, int64_t msg_id, int32_t seqno,
                              const uint8_t *body, size_t len);

#endif /* MTCI_SESSION_IMPL_H */
