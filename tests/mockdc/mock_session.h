/*
 * Mock DC, server side of an encrypted MTProto 2.0 session (PROTOCOL.md
 * §6.5-6.9 mirrored). TEST CODE: not part of the library. Pure like the
 * client: packets in, packets out, `now_ms` passed in (server clock =
 * now_ms + clock_offset_ms), randomness through an mtc_random_fn.
 *
 * It checks what a real server checks of a client packet: auth_key_id,
 * msg_key (x = 0), padding 12..1024, msg_id divisible by 4 (18), msg_id time
 * within [server_now - 300 s, server_now + 30 s] (16/17), salt current,
 * previous or a future salt it handed out (bad_server_salt), seq_no parity
 * (34/35) and order (32/33), containers (64), duplicates (ignored). Each
 * query is unwrapped from invokeWithLayer / initConnection / gzip_packed and
 * handed to the handler; answers go back as rpc_result (gzip_packed above a
 * size), together with new_session_created, msgs_ack, pong, future_salts,
 * in containers, encrypted with x = 8 and odd msg_ids.
 *
 * Written from the protocol description independently of src/session.c;
 * only the crypto and TL primitives are shared.
 */
#ifndef MTC_MOCK_SESSION_H
#define MTC_MOCK_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"
#include "tl/tl.h"

typedef struct mock_query {
  int64_t msg_id;     /* of the message that carried the query */
  int64_t session_id;
  uint32_t method;    /* constructor id of the innermost query */
  const uint8_t *body;/* the innermost query, id first (valid during the call) */
  size_t len;
  int wrapped;        /* arrived inside invokeWithLayer(initConnection(...)) */
  int32_t layer;      /* from invokeWithLayer, else 0 */
  int gzipped;        /* the query (or a wrapper) was gzip_packed */
} mock_query;

/* Handler results */
#define MOCK_ANSWER 0    /* the result object is in `out` (see mock_rpc_error) */
#define MOCK_NO_ANSWER 1 /* stay silent (the query is only acknowledged) */

typedef int (*mock_session_handler)(void *ud, const mock_query *q, mtci_tl_writer *out);

/* Write rpc_error#2144ca19 code message into out (for handlers). */
void mock_rpc_error(mtci_tl_writer *out, int32_t code, const char *message);

typedef struct mock_session_config {
  uint8_t auth_key[MTCI_AUTH_KEY_LEN];
  int64_t salt;
  int64_t clock_offset_ms; /* server clock = now_ms + this */
  int require_init;        /* queries on a session before initConnection -> 400 CONNECTION_NOT_INITED */
  size_t gzip_over;        /* results longer than this go gzip_packed (0 = never) */
  mock_session_handler handler; /* NULL: every query answered with boolTrue */
  void *handler_ud;
  mtc_random_fn rnd;
  void *rnd_ud;
} mock_session_config;

/* Faults (mock_session_set_faults). One-shot ones clear themselves when used. */
enum {
  MOCK_SESS_BAD_SALT_ONCE = 1u << 0, /* next packet: a new salt, the old ones invalid -> bad_server_salt */
  MOCK_SESS_DROP_ANSWER = 1u << 1,   /* next answer is never sent */
  MOCK_SESS_DUP_ANSWER = 1u << 2,    /* next answer is sent again, same msg_id, in a later packet */
  MOCK_SESS_HOLD_ANSWERS = 1u << 3,  /* sticky: answers wait for mock_session_release() */
  MOCK_SESS_NO_ACKS = 1u << 4,       /* sticky: never send msgs_ack */
  /* next answer: the query is acknowledged (msgs_ack), the answer made but
   * lost on the way; it waits, unacknowledged, for the session's next
   * connection (mock_session_set_conn) */
  MOCK_SESS_LOSE_ANSWER = 1u << 5,
  MOCK_SESS_NO_SALTS = 1u << 6 /* sticky: get_future_salts is acknowledged, never answered */
};

typedef struct mock_session_stats {
  unsigned packets_in, msgs_in, containers_in, queries, wrapped_queries, gzipped_queries;
  unsigned pings, acks_in, future_salts_req, new_sessions, bad_server_salts, answers;
  unsigned redelivered;           /* unacknowledged messages sent again on a new connection */
  unsigned bad_msgs[80];          /* bad_msg_notification sent, by error code */
  unsigned odd_service_msgs;      /* ping / msgs_ack with an odd seq_no (accepted) */
  int32_t last_disconnect_delay;  /* from the last ping_delay_disconnect */
  int64_t disconnect_at_ms;       /* local clock; 0 = none */
  int32_t init_api_id, init_layer;/* from the last initConnection */
  char init_device_model[256], init_lang_code[256];
  char init_proxy_address[256]; /* the last initConnection's inputClientProxy, "" if absent */
  int32_t init_proxy_port;
  unsigned init_with_proxy;     /* initConnections that carried one */
} mock_session_stats;

/* One message as the client sent it (after decryption). */
typedef struct mock_rx_msg {
  int64_t session_id, salt, msg_id, container_id; /* container_id 0: sent alone */
  int32_t seqno;
  uint8_t *body;
  size_t len;
} mock_rx_msg;

typedef struct mock_session mock_session;

/* 0, MTC_ERR_INVALID_ARG (no rnd) or MTC_ERR_NOMEM. */
int mock_session_new(mock_session **out, const mock_session_config *cfg);
void mock_session_free(mock_session *m); /* NULL-safe; wipes the key */

/*
 * One client packet. Returns 0 (processed; protocol complaints such as
 * bad_server_salt are queued as answers), or a negative error for a packet a
 * real server would drop the connection over: MTC_ERR_SESSION_LENGTH,
 * _KEY_ID, _MSG_KEY, _PADDING, MTC_ERR_NOMEM.
 */
int mock_session_feed(mock_session *m, int64_t now_ms, const uint8_t *pkt, size_t len);
/* Append the next server packet to out: 1, 0 when nothing is queued, or an error. */
int mock_session_pop(mock_session *m, int64_t now_ms, mtci_tl_writer *out);

void mock_session_set_faults(mock_session *m, unsigned faults);
unsigned mock_session_faults(const mock_session *m);
/* The next `times` content messages get bad_msg_notification(code) instead
 * of processing. */
void mock_session_force_bad_msg(mock_session *m, int code, int times);
void mock_session_set_clock_offset(mock_session *m, int64_t ms);
/*
 * Like a real server, the mock keeps every content message it sent to a
 * session (rpc_result, future_salts, ...) until the client acknowledges it
 * (msgs_ack), at most 64 per session. Tag the connection the next packets
 * come from (any non-zero value per connection): when a session's packet
 * arrives on another connection than its last one, its unacknowledged
 * messages are sent again (same msg_ids, in a container) before anything
 * else. With no tag (0, the default) nothing is re-sent.
 */
void mock_session_set_conn(mock_session *m, uint64_t conn);
/* Unacknowledged messages kept for a session. */
size_t mock_session_unacked(const mock_session *m, int64_t session_id);
/* Held answers (MOCK_SESS_HOLD_ANSWERS) go to the output queue; returns how many. */
size_t mock_session_release(mock_session *m);
/* Drop held answers; returns how many. */
size_t mock_session_discard_held(mock_session *m);
/* Forget all sessions (a server restart): the next packet of any session
 * gets new_session_created; the salt stays. */
void mock_session_forget_sessions(mock_session *m);
/* Queue a server-initiated message (updates, service messages) for a session. */
int mock_session_push(mock_session *m, int64_t now_ms, int64_t session_id, const uint8_t *body,
                      size_t len, int content);
/* Drop everything queued for output (a lost connection). */
void mock_session_drop_output(mock_session *m);

int64_t mock_session_salt(const mock_session *m);
/* A new current salt; the old one stays valid as the previous salt. */
void mock_session_rotate_salt(mock_session *m, int64_t salt);
/* msg_id of the last rpc_result the server produced (sent, held or dropped). */
int64_t mock_session_last_answer_id(const mock_session *m);
const mock_session_stats *mock_session_get_stats(const mock_session *m);
size_t mock_session_rx_count(const mock_session *m);
const mock_rx_msg *mock_session_rx(const mock_session *m, size_t i);

#endif /* MTC_MOCK_SESSION_H */
