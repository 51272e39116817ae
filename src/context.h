/*
 * The MTContext, internal view (the public API is in include/mtconn/mtconn.h).
 *
 * Split (DESIGN.md rule 1):
 *   context.c      pure: settings, DC table, requests, routing, migrations,
 *                  FLOOD_WAIT, authorization transfer, connection slots and
 *                  racing, back-off, events, counters, persistence policy.
 *                  It reaches sockets, the poller, the clock and the state
 *                  file only through mtci_ctx_io (function pointers).
 *   context_os.c   shell: mtc_context_new/free, the mtci_ctx_io
 *                  implementation over src/io (sockets, poller, clock) and
 *                  src/store (files), the loop entry points and the runner.
 *
 * Model
 *   - DC table (dc.h): addresses with health, the perm key, authorized.
 *     Each DC record carries the context's per-DC data (mtci_ctx_dc, the
 *     record's ext area: mtci_ctx_dcx()); records never move, so a DC index
 *     stays valid. The table is 16 long: a signed config's new DC takes the
 *     record of a DC that only older configs named and nothing uses
 *     (mtci_ctx_dc_room); DCs with a key, the seeds and the main DC stay.
 *   - Slots: each DC has one main slot and up to MTCI_CTX_MAX_MEDIA media
 *     slots (capped by settings; the media slots are allocated the first
 *     time the DC gets media work, so an idle DC costs one slot). A slot owns an MTProto session (created
 *     when the DC has a key; it survives reconnects: unanswered requests are
 *     resent on the next connection), the live connection, and the dial
 *     attempts racing for it. With PFS a DC may also have two hidden slots
 *     (mtci_ctx_renewal): one making the next temp key in the background,
 *     and the previous main session finishing its requests.
 *   - Requests: a list owned by the context (bodies copied). A request is
 *     PENDING (not in a session: waiting for a key, a slot, or just
 *     requeued), SENT (in a slot's session, token = request id), or waiting
 *     (FLOOD_WAIT timer, authorization transfer). Internal requests
 *     (help.getConfig, auth.export/importAuthorization) use the same path.
 *   - Re-entrancy: every entry point runs between enter() and leave(); the
 *     outermost leave() does the deferred work (placing requests, dialing,
 *     flushing, saving, arming the timer). Callbacks run inside; mtc_invoke
 *     from a callback only queues.
 */
#ifndef MTCI_CONTEXT_H
#define MTCI_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "auth/rsa_keyset.h"
#include "conn.h"
#include "context_discovery.h"
#include "context_proxy.h"
#include "dc.h"
#include "io/poller.h"
#include "mtconn/mtconn.h"
#include "policy.h"
#include "session.h"
#include "store.h"
#include "transport/proxy_link.h"

#define MTCI_CTX_MAX_MEDIA 8
#define MTCI_CTX_RACE 3                 /* dial attempts in flight per slot */
#define MTCI_CTX_STR_MAX 255            /* initConnection strings */
#define MTCI_CTX_SAVE_THROTTLE_MS 60000 /* salts, time offset, health */
#define MTCI_CTX_READ_CHUNK 65536
#define MTCI_CTX_READ_BUDGET (4u << 20) /* bytes read per readiness event */
#define MTCI_CTX_MAX_REASONS MTC_COUNTERS_MAX_REASONS
#define MTCI_CTX_PUMP_ROUNDS 16

/* IO the shell provides. The pure context calls nothing else that does IO. */
typedef struct mtci_ctx_io {
  void *ud;
  /* TCP connect to ip:port (0: under way, *fd set) or an error. */
  int (*dial)(void *ud, const char *ip, uint16_t port, int *fd);
  /* After writability: 0 connected, 1 still in progress, or an error. */
  int (*dial_result)(void *ud, int fd);
  /* Write / read: count, 0 (would block), or an error (MTC_ERR_IO_EOF ...). */
  int (*xmit)(void *ud, int fd, const uint8_t *p, size_t n);
  int (*take)(void *ud, int fd, uint8_t *p, size_t cap);
  /* Watch fd for MTCI_IO_* events (registers it on first use). */
  int (*watch)(void *ud, int fd, unsigned events);
  /* Stop watching and close fd. */
  void (*hangup)(void *ud, int fd);
  /* The context's next deadline (absolute ms; < 0: none). */
  void (*arm)(void *ud, int64_t at_ms);
  /* Wall clock, unix ms. */
  int64_t (*now_ms)(void *ud);
  /* Persist st: 0, MTC_ERR_UNSUPPORTED (no storage), or an error + msg. */
  int (*save)(void *ud, const mtci_state *st, char *msg, size_t msg_len);
  /* Free the context now (a deferred mtc_context_free). */
  void (*finalize)(void *ud);
  /* Endpoint discovery (context_discovery.h): start a race at now with the
   * known server time offset (0: the result comes through
   * mtci_ctx_disc_result; or an error: no result); its counters (zeroed if
   * it never ran). */
  int (*disc_start)(void *ud, int64_t now_ms, int64_t time_offset_s);
  void (*disc_counters)(void *ud, mtci_discovery_counters *out);
  /* The proxy's host name (context_proxy.h): start an A + AAAA lookup (0:
   * the result comes through mtci_ctx_proxy_resolved; or an error: no
   * result); *questions = DNS questions asked. A new lookup replaces one
   * under way. */
  int (*resolve)(void *ud, const char *host, unsigned *questions);
} mtci_ctx_io;

/* Settings after validation and defaults; strings owned. */
typedef struct mtci_ctx_settings {
  int32_t api_id;
  char *api_hash;
  char *strs[6]; /* device_model, system_version, app_version, system_lang_code, lang_pack, lang_code */
  int test_dcs;
  int codec;     /* mtci_codec_kind */
  int obfuscate;
  int has_proxy;
  mtci_proxy_link proxy;
  int prefer_ipv6;
  int main_dc;
  int media_cap;
  int64_t connect_timeout_ms, stagger_ms, reconnect_initial_ms, reconnect_max_ms;
  int max_attempts, max_per_minute;
  int32_t ping_interval_ms, ping_disconnect_s;
  int64_t idle_close_ms;
  int flood_auto_s;
  int no_auto_config;
  char *state_path;
  int log_level;
  int pfs;                /* temporary keys bound to the perm keys */
  int32_t temp_expires_s; /* their lifetime (expires_in) */
} mtci_ctx_settings;

enum mtci_req_state { MTCI_RS_PENDING = 0, MTCI_RS_SENT, MTCI_RS_WAIT_FLOOD, MTCI_RS_WAIT_AUTH };
enum mtci_req_kind { MTCI_REQ_APP = 0, MTCI_REQ_CONFIG, MTCI_REQ_EXPORT, MTCI_REQ_IMPORT };

typedef struct mtci_slot mtci_slot;

typedef struct mtci_req {
  struct mtci_req *next, *prev;
  uint64_t id;            /* also the session token */
  int kind;               /* mtci_req_kind */
  int arg;                /* EXPORT / IMPORT: the DC being authorized */
  mtc_target target;      /* MAIN follows the main DC */
  int dc_id;              /* DC / MEDIA (0 with MEDIA: the main DC) */
  unsigned flags;         /* MTC_INVOKE_* */
  int state;              /* mtci_req_state */
  mtci_slot *slot;        /* SENT: the slot whose session holds it; PENDING: chosen slot */
  int64_t wake_at;        /* WAIT_FLOOD */
  int held_err;           /* WAIT_FLOOD: a failure held past its own mtc_invoke (req_fail) */
  int64_t deadline;       /* 0: none */
  int migrations, floods, transfers;
  int open_reason;        /* MTC_REASON_* for a connection opened for it */
  uint8_t *body;
  size_t len;
  mtc_result_fn fn;
  void *ud;
} mtci_req;

struct mtci_slot {
  int dci;                /* DC table index */
  int media;              /* 0 main, 1 media */
  int index;              /* 0 main, 1.. media */
  int hidden;             /* PFS renewal slots (never routed to, no events): 1 renewal, 2 retired */
  int used;               /* media, hidden: in use (main: always) */
  int has_sess;
  mtci_session *sess;     /* allocated while has_sess, else NULL */
  uint64_t key_id;        /* the auth key the session runs on */
  int sess_news;          /* server new_session_created seen on this session */
  int sess_recreated;     /* the next session is a replacement (SESSION_RECREATED) */
  mtci_conn *conn;        /* the connection (won the race) */
  mtci_conn *dials[MTCI_CTX_RACE];
  mtci_dc_addr *cands;    /* this round's candidates, best first: MTCI_DC_MAX_ADDRS
                             entries while a round runs, else NULL (mtci_ctx_cands_*) */
  size_t n_cands, next_cand;
  int64_t next_dial_at;   /* stagger: start the next candidate then */
  int round_err;          /* last dial error of the round */
  int failures;           /* consecutive failed attempts */
  int flood;              /* the last failure was -429 */
  int64_t retry_at;
  int gave_up;            /* FAILED until new work arrives */
  int ever_ready;
  int opened_once;        /* reason RECONNECT for later connections */
  int open_reason;        /* MTC_REASON_* of the next first connection */
  int64_t idle_since;
  int reported;           /* last mtc_conn_state reported, 0 none */
  size_t n_assigned;      /* requests routed here (recomputed by the pump) */
};

/* PFS: the bind of a temp key (its session's slot, or NULL) */
struct mtci_ctx_bind {
  mtc_context *ctx;
  mtci_slot *slot;
  int64_t nonce;
  uint64_t temp_key_id;   /* the key being bound */
  int64_t expires_at;
};

/*
 * PFS renewal without a gap (context.c, pfs_renew): the next temp key is
 * made and bound on a hidden connection while the main session goes on;
 * then that connection and session become the main slot's, and the old
 * main session keeps its connection (retired) until its requests are
 * answered. Allocated with the DC's first renewal, kept with the DC.
 */
typedef struct mtci_ctx_renewal {
  mtci_slot slot;         /* hidden 1: makes and binds the next key (used: under way) */
  mtci_slot retired;      /* hidden 2: the previous main session (used: still answering) */
  struct mtci_ctx_bind bind;
  int has_key, bound;
  uint8_t key[MTCI_AUTH_KEY_LEN];
  uint64_t key_id;
  int64_t expires_at;     /* server unix s */
  int64_t salt;
} mtci_ctx_renewal;

typedef struct mtci_ctx_dc {
  mtci_slot main;
  mtci_slot *media;       /* MTCI_CTX_MAX_MEDIA slots, NULL until the DC has media work */
  mtci_slot *keying;      /* the slot whose connection creates the key (perm or temp) */
  /* PFS: the auth.bindTempAuthKey of the DC's temp key in flight */
  struct mtci_ctx_bind bind;
  int renewing;           /* PFS: the temp key is due: 0 no, 1 replaced in the background
                             (mtci_ctx_renewal), 2 no new requests until it is replaced */
  mtci_ctx_renewal *rn;   /* NULL until the DC's first background renewal */
  int transfer;           /* authorization transfer state (context.c) */
  mtci_rate *rate;        /* connect times, allocated with the first connect */
  mtc_dc_counters ctr;    /* n_reconnect_reasons / reasons kept here too */
  uint64_t bytes_in_closed, bytes_out_closed;
} mtci_ctx_dc;

struct mtc_context {
  mtci_ctx_settings set;
  mtc_callbacks cb;
  void *user_data;
  mtc_random_fn rnd;
  void *rnd_ud;
  mtci_ctx_io io;
  mtci_rsa_keyset keys;
  mtci_dc_table dcs;      /* every record's ext is its mtci_ctx_dc */
  mtc_dc_counters gone;   /* totals of the DCs that left the table (mtci_ctx_dc_room) */
  int main_dc;
  int64_t time_offset_ms;
  int time_synced;
  mtci_state_discovered discovered;
  /* requests */
  mtci_req *head, *tail;
  size_t n_reqs;
  uint64_t next_id;
  /* re-entrancy and lifecycle */
  int depth;
  uint64_t invoking;      /* id of the request the outermost mtc_invoke is placing (0: none) */
  int *invoke_refused;    /* that mtc_invoke's flag: set when a deferred free refuses it */
  int changed;            /* the pump has work */
  int closing;
  int free_deferred;
  /* persistence */
  int dirty;              /* keys, authorization, main DC, address sets: save at leave */
  int dirty_minor;        /* salts, time offset, health: throttled */
  int64_t last_save_ms;
  uint64_t saves, save_errors;
  /* discovery */
  int config_wanted, config_inflight, config_done;
  int config_dc;          /* the next help.getConfig goes to this DC (0: the main DC) */
  mtci_ctx_disc disc;     /* endpoint discovery (context_discovery.c) */
  mtci_proxy_res proxy_res; /* the proxy's server address (context_proxy.c) */
  /* shell (context_os.c) */
  mtci_poller poller;
  int poller_up;
  int deadline_slot;
  void *drbg;
  void *runner;           /* mtc_runner * while a runner owns the context */
  mtci_discovery *discovery; /* created on the first run */
  struct mtci_dns *proxy_dns; /* the proxy host's resolver, created on first use */
  uint32_t proxy_dns_id;   /* its lookup under way, 0 none */
};

/* The context's data of DC index i (< ctx->dcs.n). */
static inline mtci_ctx_dc *mtci_ctx_dcx(const mtc_context *ctx, size_t i) {
  return (mtci_ctx_dc *)ctx->dcs.dcs[i]->ext;
}

/* The slot's candidate array: allocated for a dial round, freed when it ends. */
int mtci_ctx_cands_alloc(mtci_slot *s);
void mtci_ctx_cands_drop(mtci_slot *s);

/* ---- used by context_os.c ------------------------------------------------------- */

/*
 * Validate and copy settings and callbacks; set up the DC table from the
 * seeds and the RSA key set. ctx is zeroed by the caller; rnd must be set
 * (ctx->rnd) before any request. msg gets a reason on failure. Returns 0 or
 * MTC_ERR_INVALID_ARG / _VERSION / _UNSUPPORTED / _PROXY_HOST / _NOMEM.
 */
int mtci_ctx_init(mtc_context *ctx, const mtc_settings *s, const mtc_callbacks *cb,
                  void *user_data, char *msg, size_t msg_len);
/* Merge a loaded state. MTC_ERR_STATE_MISMATCH (other cluster). */
int mtci_ctx_load_state(mtc_context *ctx, const mtci_state *st);
/* Closing: cancel every request (CANCELLED callbacks), close every
 * connection, save a changed state. */
void mtci_ctx_shutdown(mtc_context *ctx);
/* Wipe and free what init and the run allocated (not ctx itself). */
void mtci_ctx_destroy(mtc_context *ctx);

/* Entry points bracket every public call that may do work. leave() at the
 * outermost level runs the deferred work and may finalize a deferred free
 * (then ctx is gone when it returns). */
void mtci_ctx_enter(mtc_context *ctx);
void mtci_ctx_leave(mtc_context *ctx);
/* The poller's callback for the context's sockets. */
void mtci_ctx_on_fd(void *ctx, int fd, unsigned revents);
/* Log through on_log when level <= settings.log_level. */
void mtci_ctx_log(mtc_context *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Earliest deadline of the context (INT64_MAX: none). */
int64_t mtci_ctx_next_deadline(const mtc_context *ctx);

/* ---- used by context_discovery.c ------------------------------------------------ */

#define MTCI_CTX_CONFIG_IDS (MTCI_DC_MAX_DCS * 4) /* distinct DC ids of one config kept */

/* Append dc_id to ids[0..*n) unless it is there or the array is full. */
static inline void mtci_ctx_config_id(int *ids, size_t *n, int dc_id) {
  for (size_t k = 0; k < *n; k++)
    if (ids[k] == dc_id) return;
  if (*n < MTCI_CTX_CONFIG_IDS) ids[(*n)++] = dc_id;
}
/* Room in the DC table for the DCs a signed config lists (ids[0..n), in
 * order): each one missing is added, in the place of a DC no seed, key,
 * main DC role, request, connection or this config keeps when the table is
 * full (the config's DCs that find no place are skipped as before). */
void mtci_ctx_dc_room(mtc_context *ctx, const int *ids, size_t n);

/* The slot has work or keeps the main session. */
int mtci_ctx_slot_wanted(const mtc_context *ctx, const mtci_slot *s);
/* Give up on the slot: FAILED, its requests fail (err MTC_ERR_NO_ADDRESS,
 * MTC_ERR_UNREACHABLE or MTC_ERR_PROXY_HOST as is, anything else as
 * MTC_ERR_CONNECT). */
void mtci_ctx_give_up(mtc_context *ctx, mtci_slot *s, int err);
/* A connect attempt of the slot failed with err (back-off; at
 * max_connect_attempts: give up). Used by context_proxy.c too. */
void mtci_ctx_attempt_failed(mtc_context *ctx, mtci_slot *s, int err, int64_t now);
/* Pass an event to on_event (not while closing). */
void mtci_ctx_emit(mtc_context *ctx, const mtc_event *ev);
/* Slot k of DC index i: 0 = main, 1.. = media. */
mtci_slot *mtci_ctx_slot(mtc_context *ctx, size_t i, int k);

#endif /* MTCI_CONTEXT_H */
