/*
 * One encrypted MTProto 2.0 session (PROTOCOL.md §6.5-6.10): a pure state
 * machine. No IO, no clock: every call that needs time takes `now_ms`, the
 * host's wall-clock unix time in milliseconds, and deadlines come back in the
 * same clock. The session keeps the server time offset itself. Randomness
 * (session_id, padding) only through the config's mtc_random_fn.
 *
 * Driving it (one connection at a time):
 *
 *   init(cfg, now)            the connection is up (or call on_reconnect later)
 *   invoke(body, token)       queue an API query (copied)
 *   while build_packet(now, out) == 1: send out     (after every input below)
 *   feed_packet(now, pkt)     one transport frame's payload; < 0: drop the
 *                             connection (state is unchanged by that packet)
 *   on_bytes_received(now)    any inbound bytes (liveness, also mid-frame)
 *   next_event(&ev)           results, rpc_errors, updates, session events
 *   next_deadline()/on_deadline(now)   acks, pings, probes, salts, dead check
 *   on_reconnect(now)         a new connection replaced the old one: requests
 *                             the server did not acknowledge are resent with new
 *                             msg_ids; acknowledged ones wait for the server's
 *                             re-delivery, checked with msgs_state_req
 *
 * Wire layout of one packet (x = 0 out, 8 in):
 *
 *   | auth_key_id (8) | msg_key (16) | AES-IGE( salt (8) | session_id (8) |
 *     msg_id (8) | seq_no (4) | length (4) | message_data | padding 12..1024 ) |
 *
 *   msg_key = SHA256(auth_key[88+x:120+x] || plaintext)[8:24]
 *
 * Request bookkeeping: a request keeps its body until it is answered; each
 * send gets a new msg_id and the old ones stay mapped to it, so a late
 * rpc_result for any of its ids is delivered once and every other answer for
 * it is dropped. Errors are negative mtc_error codes; a Telegram rpc_error is
 * data (an RPC_ERROR event), never a library error.
 */
#ifndef MTCI_SESSION_H
#define MTCI_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"
#include "tl/tl.h"

/* ---- constructor ids used by the session (mtproto.tl, api.tl) ------------- */

#define MTCI_ID_MSGS_ACK 0x62d6b459u
#define MTCI_ID_BAD_MSG_NOTIFICATION 0xa7eff811u
#define MTCI_ID_BAD_SERVER_SALT 0xedab447bu
#define MTCI_ID_MSGS_STATE_REQ 0xda69fb52u
#define MTCI_ID_MSGS_STATE_INFO 0x04deb57du
#define MTCI_ID_MSGS_ALL_INFO 0x8cc0d131u
#define MTCI_ID_MSG_DETAILED_INFO 0x276d3ec6u
#define MTCI_ID_MSG_NEW_DETAILED_INFO 0x809db6dfu
#define MTCI_ID_MSG_RESEND_REQ 0x7d861a08u
#define MTCI_ID_MSG_RESEND_ANS_REQ 0x8610baebu
#define MTCI_ID_FUTURE_SALT 0x0949d9dcu
#define MTCI_ID_FUTURE_SALTS 0xae500895u
#define MTCI_ID_GET_FUTURE_SALTS 0xb921bd04u
#define MTCI_ID_PING 0x7abe77ecu
#define MTCI_ID_PING_DELAY_DISCONNECT 0xf3427b8cu
#define MTCI_ID_PONG 0x347773c5u
#define MTCI_ID_DESTROY_SESSION 0xe7512126u
#define MTCI_ID_DESTROY_SESSION_OK 0xe22045fcu
#define MTCI_ID_DESTROY_SESSION_NONE 0x62d350c9u
#define MTCI_ID_NEW_SESSION_CREATED 0x9ec20908u
#define MTCI_ID_HTTP_WAIT 0x9299359fu
#define MTCI_ID_MSG_COPY 0xe06046b2u
#define MTCI_ID_INVOKE_WITH_LAYER 0xda9b0d0du
#define MTCI_ID_INIT_CONNECTION 0xc1cd5ea9u
#define MTCI_ID_INPUT_CLIENT_PROXY 0x75588b3fu

/* ---- defaults (a config field of 0 selects these) ---------------------------- */

#define MTCI_SESSION_PING_INTERVAL_MS 60000  /* keepalive ping_delay_disconnect period */
#define MTCI_SESSION_PING_DISCONNECT_S 75    /* disconnect_delay sent to the server */
#define MTCI_SESSION_PING_TIMEOUT_MS 15000   /* no inbound bytes this long after a keepalive ping: dead */
#define MTCI_SESSION_PROBE_AFTER_MS 5000     /* silence with a request pending: probe ping */
#define MTCI_SESSION_DEAD_AFTER_MS 5000      /* no inbound bytes this long after a probe: dead */
#define MTCI_SESSION_ACK_FLUSH_MS 1000       /* pending acks go out standalone after this */
#define MTCI_SESSION_ACKS_IMMEDIATE 16       /* ... or at once when more than this are pending */
#define MTCI_SESSION_GZIP_MIN 4096           /* outgoing bodies above this are gzip-packed if smaller */
#define MTCI_SESSION_FUTURE_SALTS 32         /* num in get_future_salts */

/* Fixed limits. */
#define MTCI_SESSION_MAX_BODY (4u << 20)     /* largest query body accepted by invoke */
#define MTCI_SESSION_SEEN_WINDOW 2048        /* received msg_ids kept for duplicate checks */
#define MTCI_SESSION_OLD_IDS 8               /* earlier msg_ids remembered per request */
#define MTCI_SESSION_MAX_RESENDS 16          /* bad_msg/salt resends before a request fails */
#define MTCI_SESSION_MAX_SALTS 64            /* future salts kept */
#define MTCI_SESSION_ACKS_PER_MSG 1024       /* ids per msgs_ack message we send */
#define MTCI_SESSION_STATE_IDS 1024          /* ids in the msgs_state_req of a reconnect */
/* After a reconnect, an acknowledged request that is still unanswered and
 * whose state the server did not confirm (no msgs_state_info, or no status
 * for it) this many probe intervals (probe_after_ms) later is resent anyway
 * (safety net). */
#define MTCI_SESSION_KEPT_PROBES 2
/* Inbound msg_id time once the clock is synced: at most this far behind
 * server time. A newer one moves the offset forward instead (tdlib), which
 * makes the "+30 s" bound of the guidelines hold by construction. */
#define MTCI_SESSION_TIME_PAST_S 300

/* feed_packet: authenticated but dropped (duplicate, other session); see
 * mtci_session_last_ignored(). Not an error: keep the connection. */
#define MTCI_SESSION_IGNORED 1

/* invoke() flags */
enum {
  MTCI_SESSION_REQ_NO_INIT = 1u << 0, /* never wrap in invokeWithLayer(initConnection) */
  MTCI_SESSION_REQ_NO_GZIP = 1u << 1  /* never gzip-pack the body */
};

typedef struct mtci_session_config {
  uint8_t auth_key[MTCI_AUTH_KEY_LEN]; /* copied; the session zeroizes its copy on free */
  int64_t server_salt;                 /* from the handshake (or a stored salt) */
  int64_t session_id;                  /* 0 = draw a random one */
  /* server_time_ms - local now_ms (the handshake's time_offset is in
   * seconds: multiply by 1000). time_synced != 0 says it is reliable (from a
   * handshake or an earlier session): inbound msg_ids are then held to the
   * window (MTCI_SESSION_TIME_PAST_S). Unsynced, the first valid packet sets
   * it. Either way every valid packet may move it forward. */
  int64_t time_offset_ms;
  int time_synced;
  /* Client msg_ids continue above this (e.g. the handshake's last msg_id on
   * the same connection). */
  int64_t min_msg_id;

  /* initConnection (PROTOCOL.md §2.1). Strings are copied; NULL = "". */
  int no_init_connection; /* never wrap (e.g. a key that is not bound yet) */
  int32_t api_id;
  int32_t layer; /* 0 = MTC_TL_LAYER */
  const char *device_model, *system_version, *app_version, *system_lang_code, *lang_pack,
      *lang_code;
  /* The MTProxy the connection goes through (flags.0 proxy:inputClientProxy
   * address port, as tdlib sends it: the server may then show the proxy's
   * sponsored channel). NULL: direct or SOCKS5. Copied into the prefix. */
  const char *init_proxy_address;
  int32_t init_proxy_port;

  /* Timing (0 = the default above). */
  int32_t ping_interval_ms;
  int32_t ping_disconnect_delay_s;
  int32_t ping_timeout_ms;
  int32_t probe_after_ms;
  int32_t dead_after_ms;
  int32_t ack_flush_ms;
  int no_keepalive; /* no ping_delay_disconnect (probes and dead checks still run) */

  /* Salts: get_future_salts is sent when no future salt is known or the last
   * known one starts within 10 minutes. no_future_salts turns that off. */
  int no_future_salts;

  size_t gzip_cap;  /* largest inflated gzip_packed accepted (0 = 16 MiB) */
  size_t gzip_min;  /* 0 = MTCI_SESSION_GZIP_MIN; SIZE_MAX = never pack */
  /* Padding: 12..27 bytes by default; size_buckets pads to tdlib's buckets
   * (64..1280, then steps of 448); random_padding adds 0..255 random bytes
   * first (tdlib's mode for dd/ee transports). */
  int size_buckets;
  int random_padding;

  mtc_random_fn rnd; /* required */
  void *rnd_ud;
} mtci_session_config;

enum mtci_session_event_type {
  MTCI_SEV_NONE = 0,
  MTCI_SEV_RESULT,         /* token; data/len = the result object (gzip already inflated) */
  MTCI_SEV_RPC_ERROR,      /* token; code = error_code; data = message, NUL-terminated */
  MTCI_SEV_FAILED,         /* token; code = mtc_error (gzip too big, malformed answer,
                              too many resends): the request is gone */
  MTCI_SEV_UPDATES,        /* data/len = an object the session does not handle itself
                              (updates, updateShort, ...); msg_id = its server msg_id */
  MTCI_SEV_NEW_SESSION,    /* updates may have been missed. code = 0: the server's
                              new_session_created (value = unique_id, msg_id = first_msg_id);
                              code = 1: we started a new session_id (value = it) */
  MTCI_SEV_SALT_UPDATED,   /* value = the salt now in use */
  MTCI_SEV_TIME_FIXED,     /* value = the new time offset (ms) after bad_msg 16/17 */
  MTCI_SEV_DEAD,           /* no inbound bytes past the deadline: reconnect */
  MTCI_SEV_NEED_RECONNECT, /* code = mtc_error reason; the session state is consistent,
                              but this connection should be replaced */
  MTCI_SEV_QUICK_ACK       /* token: the server confirmed receipt of the request */
};

typedef struct mtci_session_event {
  int type;
  int32_t code;
  uint64_t token;
  const uint8_t *data; /* owned by the session; valid until the next next_event/free */
  size_t len;
  int64_t value;
  int64_t msg_id;
} mtci_session_event;

typedef struct mtci_session_salt {
  int32_t valid_since, valid_until; /* server unix time, seconds */
  int64_t salt;
} mtci_session_salt;

/* Private types (session.c); the struct below is caller-allocated and its
 * fields are private, readable by tests. */
typedef struct mtci_session_req mtci_session_req;
typedef struct mtci_session_evq mtci_session_evq;
typedef struct mtci_session_svc {
  uint8_t *body;
  size_t len;
  int state_req; /* our msgs_state_req of a reconnect: its msg_id is kept */
} mtci_session_svc;

typedef struct mtci_session_stats {
  uint64_t packets_out, packets_in, containers_out, msgs_in, resends, dup_msgs, bad_msgs,
      ignored_packets, acks_out;
  /* reconnects: acknowledged requests kept waiting for the server's
   * re-delivery, msgs_state_req sent, kept requests resent after
   * msgs_state_info said "not received", confirmed as received (then
   * waited for), and resent by the safety net */
  uint64_t kept, state_reqs, state_resends, state_confirmed, late_resends;
  uint64_t internal_timeouts; /* internal requests given up (MTCI_SESS_INTERNAL_TIMEOUT_MS) */
} mtci_session_stats;

typedef struct mtci_session {
  /* configuration */
  uint8_t auth_key[MTCI_AUTH_KEY_LEN];
  uint8_t key_id[8];
  uint8_t *init_prefix; /* invokeWithLayer + initConnection up to `query` */
  size_t init_prefix_len;
  int no_init;
  int64_t ping_interval_ms, ping_timeout_ms, probe_after_ms, dead_after_ms, ack_flush_ms;
  int32_t ping_disconnect_delay_s;
  int no_keepalive, no_future_salts, size_buckets, random_padding;
  size_t gzip_cap, gzip_min;
  mtc_random_fn rnd;
  void *rnd_ud;

  /* session */
  int64_t session_id, prev_session_id;
  int64_t salt;
  mtci_session_salt salts[MTCI_SESSION_MAX_SALTS]; /* future salts, sorted by valid_since */
  size_t n_salts;
  int64_t time_offset_ms;
  int time_synced;
  int64_t last_msg_id;  /* last client msg_id handed out */
  int32_t content_sent; /* content-related messages sent in this session_id */
  int init_done;        /* a wrapped query got an answer (no more wrapping) */

  /* received msg_ids, sorted ascending (duplicate window) */
  int64_t *seen;
  size_t n_seen;

  /* outgoing */
  mtci_session_req **reqs; /* in queue order: reqs[0..n_reqs) */
  size_t n_reqs, cap_reqs;
  size_t reqs_head;              /* reqs is this far into its allocation (of cap_reqs) */
  mtci_session_req *spare_reqs;  /* answered requests kept for reuse (a list) */
  size_t n_unsent;               /* of reqs[0..n_reqs): not sent on this connection */
  uint64_t next_internal; /* tokens of internal requests (get_future_salts, ...) */
  int64_t *acks;          /* server msg_ids to acknowledge */
  size_t n_acks, cap_acks;
  int64_t ack_since_ms; /* when the oldest pending ack was queued */
  mtci_session_svc *svc; /* service messages to send once (msgs_state_info, ...) */
  size_t n_svc, cap_svc;

  /* reconnect: acknowledged requests kept (req->kept) until their answer,
   * a msgs_state_info, or keep_until (then resent) */
  size_t n_kept;
  int64_t keep_until;
  int64_t *chk_ids;   /* the msg_ids our msgs_state_req asks about, in order */
  size_t n_chk, cap_chk;
  int64_t chk_msg_id; /* msg_id of that msgs_state_req once sent (0: none) */
  int64_t chk_cont_id; /* ... and of its container (0: sent alone) */

  /* liveness */
  int connected, dead;
  int64_t conn_start_ms, last_rx_ms, last_keepalive_ms;
  int ping_due;   /* 1 keepalive, 2 probe */
  int64_t ping_msg_id, ping_sent_ms; /* outstanding ping (0 = none) */
  int ping_probe;                    /* it was a probe (dead_after_ms applies) */
  int64_t rtt_ms;                    /* last ping round trip, -1 unknown */

  /* salts refresh */
  int salts_requested;
  int64_t salts_retry_ms;
  int64_t internal_due; /* an internal request may time out from then on (0: none sent) */

  /* events */
  mtci_session_evq *evq;
  size_t evq_head, evq_n, evq_cap;
  uint8_t *ev_cur; /* payload of the event last handed out */
  size_t ev_cur_size;

  /* scratch for decryption */
  uint8_t *rx;
  size_t rx_cap;

  int last_ignored; /* reason (mtc_error) of the last MTCI_SESSION_IGNORED */
  mtci_session_stats stats;
} mtci_session;

/*
 * Validate cfg and set up: copies the key and strings, draws session_id if 0
 * and marks the connection up at now_ms. MTC_ERR_INVALID_ARG (no rnd, a
 * string longer than 255 bytes, negative timing), MTC_ERR_NOMEM,
 * MTC_ERR_RANDOM. On error nothing needs freeing (free is still safe).
 */
int mtci_session_init(mtci_session *s, const mtci_session_config *cfg, int64_t now_ms);
/* Frees everything and zeroizes the key and buffers; safe on a zeroed or
 * freed struct. Pending requests are dropped without events. */
void mtci_session_free(mtci_session *s);

/*
 * Queue a query (a whole TL object: length a multiple of 4, >= 4, at most
 * MTCI_SESSION_MAX_BODY). body is copied (and gzip-packed when large).
 * token identifies it in events; it must not equal a pending request's.
 * Errors: MTC_ERR_INVALID_ARG, MTC_ERR_SESSION_DUP_TOKEN, MTC_ERR_NOMEM.
 */
int mtci_session_invoke(mtci_session *s, const uint8_t *body, size_t len, uint32_t flags,
                        uint64_t token);
/*
 * A query whose body depends on the msg_id it is sent with (PFS: the
 * auth.bindTempAuthKey call carries bind_auth_key_inner sealed with that
 * msg_id, PROTOCOL.md §6.8). fn(ud, msg_id, out) appends exactly len bytes
 * (a multiple of 4, >= 4) to out; it is called every time the message is
 * serialized: the first send and every resend (bad_server_salt, bad_msg,
 * new session, reconnect), each time with the new msg_id, so fn and ud must
 * stay valid until the request is answered, failed or cancelled (it may read
 * s->session_id: the session the message goes out in). Never wrapped in
 * invokeWithLayer(initConnection), never gzip-packed. If fn fails (negative
 * rc) or appends another length, build_packet returns that rc
 * (MTC_ERR_INTERNAL for a wrong length) and sends nothing.
 * Errors: MTC_ERR_INVALID_ARG, MTC_ERR_SESSION_DUP_TOKEN, MTC_ERR_NOMEM.
 */
typedef int (*mtci_session_build_fn)(void *ud, int64_t msg_id, mtci_tl_writer *out);
int mtci_session_invoke_built(mtci_session *s, mtci_session_build_fn fn, void *ud, size_t len,
                              uint32_t flags, uint64_t token);
/* Forget a pending request: no event will carry its token (a late answer is
 * dropped). MTC_ERR_SESSION_NO_REQUEST if none is pending with it. */
int mtci_session_cancel(mtci_session *s, uint64_t token);
/* Number of requests not answered yet (queued or sent). */
size_t mtci_session_pending(const mtci_session *s);

/*
 * Append the next encrypted packet (auth_key_id || msg_key || ciphertext) to
 * out. Returns 1 if a packet was produced, 0 if there is nothing to send now,
 * or a negative error (MTC_ERR_NOMEM, MTC_ERR_RANDOM; nothing appended and no
 * state changed). *quick_ack (may be NULL) gets the packet's quick-ack token
 * (bit 31 set) for the transport. Several messages go in one msg_container
 * (<= 1020 messages, <= 32 KiB); a larger message goes alone. Call until it
 * returns 0.
 */
int mtci_session_build_packet(mtci_session *s, int64_t now_ms, mtci_tl_writer *out,
                              uint32_t *quick_ack);
/*
 * The same without queued requests: acks, pings and service messages only
 * (returns 0 when none is due). For a connection whose output queue is
 * full (backpressure): the requests stay queued, in order, while the
 * session's own timers still get what they are waiting for (an ack flush
 * or a due ping would otherwise keep next_deadline() in the past). These
 * messages are small (a msgs_ack holds at most MTCI_SESSION_ACKS_PER_MSG ids).
 */
int mtci_session_build_service_packet(mtci_session *s, int64_t now_ms, mtci_tl_writer *out,
                                      uint32_t *quick_ack);
/* Requests queued and not sent on this connection yet. */
size_t mtci_session_unsent(const mtci_session *s);

/*
 * One packet from the server. Returns 0 (processed; read events),
 * MTCI_SESSION_IGNORED (authentic but dropped: a duplicate or too old msg_id,
 * or another session_id; mtci_session_last_ignored() says which; a duplicate
 * with an odd seq_no is acknowledged again), or a
 * negative error after which the connection should be dropped; such a packet
 * changes no state:
 *   MTC_ERR_SESSION_LENGTH  length not 24 + 16k or too short
 *   MTC_ERR_SESSION_KEY_ID  auth_key_id is not ours
 *   MTC_ERR_SESSION_MSG_KEY msg_key does not match (checked in any case)
 *   MTC_ERR_SESSION_PADDING data length not % 4, padding outside 12..1024
 *   MTC_ERR_SESSION_MSG_ID  even server msg_id
 *   MTC_ERR_SESSION_MSG_TIME msg_id more than 300 s behind server time (time
 *                           synced; a newer msg_id moves our offset forward
 *                           instead). If it persists the local clock jumped
 *                           ahead: call mtci_session_resync_time() and reconnect
 *   MTC_ERR_TL_*            malformed container
 * Messages inside an accepted packet that are malformed are skipped (counted
 * in stats.bad_msgs), a duplicate inner msg_id is skipped and re-acked.
 */
int mtci_session_feed_packet(mtci_session *s, int64_t now_ms, const uint8_t *pkt, size_t len);
int mtci_session_last_ignored(const mtci_session *s);

/* Any inbound bytes on the connection (liveness). */
void mtci_session_on_bytes_received(mtci_session *s, int64_t now_ms);
/* The transport delivered a quick-ack token: QUICK_ACK events for the
 * requests of that packet. Returns how many matched. */
int mtci_session_on_quick_ack(mtci_session *s, uint32_t token);

/* 1 and *ev filled, or 0 when no event is queued. */
int mtci_session_next_event(mtci_session *s, mtci_session_event *ev);

/* Earliest time on_deadline() has work (INT64_MAX: none; may be <= now). */
int64_t mtci_session_next_deadline(const mtci_session *s);
/* Runs due timers: dead check (DEAD event, once per connection), keepalive
 * and probe pings, ack flush, future-salt refresh. Then call build_packet.
 * Returns 0 or MTC_ERR_NOMEM. */
int mtci_session_on_deadline(mtci_session *s, int64_t now_ms);

/* A new connection is up; pings and liveness restart. A sent request the
 * server has not acknowledged (msgs_ack, quick ack) is queued for resending
 * with a new msg_id (the old ids keep mapping to it). An acknowledged one is
 * not: a new msg_id would make it a new query (a second sendMessage), while
 * the server keeps its answer and re-sends it on the new connection. Those
 * are kept, and one msgs_state_req asks about their msg_ids; the answer's
 * status (low 3 bits) 1, 2, 3 (not received) resends the request, 4
 * (received) waits for the answer as long as the call runs
 * (stats.state_confirmed). A kept request with no status yet
 * MTCI_SESSION_KEPT_PROBES x probe_after_ms after the reconnect is resent
 * anyway (stats.late_resends). Returns 0 or MTC_ERR_NOMEM (then everything sent is
 * resent, as before). */
int mtci_session_on_reconnect(mtci_session *s, int64_t now_ms);
/* The connection is gone (no liveness deadlines until on_reconnect). */
void mtci_session_on_disconnect(mtci_session *s);

/* Forget that the time offset is reliable: the next valid packet sets it. */
void mtci_session_resync_time(mtci_session *s);
/* Server time in ms for a local time. */
int64_t mtci_session_server_time_ms(const mtci_session *s, int64_t now_ms);
/* Ask the server to destroy another session of this key (destroy_session). */
int mtci_session_destroy_session(mtci_session *s, int64_t session_id);

/* Client msg_id for server time server_ms: (sec << 32) | fraction, divisible
 * by 4, low 32 bits non-zero, strictly above *last (updated). Exposed for
 * tests and the mock. */
int64_t mtci_session_make_msg_id(int64_t *last, int64_t server_ms);
/* Milliseconds of a msg_id's time part (msg_id / 2^32 * 1000). */
int64_t mtci_session_msg_id_ms(int64_t msg_id);

#endif /* MTCI_SESSION_H */
