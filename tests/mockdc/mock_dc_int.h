/*
 * Mock DC cluster internals shared by mock_dc.c (cluster, connections, key
 * store), mock_rpc.c (RPC handlers) and mock_counters.c. TEST CODE.
 * Everything here runs on the loop thread (or under the loop lock).
 */
#ifndef MTC_MOCK_DC_INT_H
#define MTC_MOCK_DC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mock_dc.h"
#include "mock_loop.h"
#include "mock_session.h"
#include "tl/tl.h"

#define MOCK_DC_MAX_KEYS 512       /* auth keys per DC (LRU eviction, temp keys first) */
#define MOCK_DC_MAX_SESSIONS 1024  /* server sessions per DC (LRU eviction) */
#define MOCK_DC_FLOOD_RING 256     /* connect times remembered for the -429 fault */

/* Layers whose result layouts the mock can write. */
#define MOCK_LAYER_CURRENT 198
#define MOCK_LAYER_TELETHON 144

typedef struct mock_dc mock_dc;
typedef struct mock_dconn mock_dconn;

typedef struct mock_key {
  int used;
  mock_dc *dc;
  mock_session *ms;          /* the key's server session state */
  uint8_t key[MTCI_AUTH_KEY_LEN];
  uint8_t id[8];
  int temp;
  int64_t expires_at;        /* temp keys: server time */
  int bound;                 /* temp keys: bound to bound_perm_id */
  uint8_t bound_perm_id[8];
  int64_t user_id;           /* authorized user (perm keys, or a temp key's own import) */
  int32_t layer;             /* last layer announced with this key */
  uint64_t last_use;
} mock_key;

/* A server session: (auth_key_id, session_id). The MTProto state lives in
 * mock_session; this record keeps what the API layer needs. */
typedef struct mock_sess {
  int used;
  uint8_t key_id[8];
  int64_t session_id;
  int32_t layer;             /* from invokeWithLayer in this session, 0 = none yet */
  uint64_t last_use;
} mock_sess;

struct mock_dc {
  int id;
  mock_dc_cluster *cl;
  uint16_t port, alt_port;
  int listen_id, alt_listen_id;
  int refuse_fd;             /* bound, not listening: the refused seed port */
  const char *pem;           /* TEST-ONLY private key (static string) */
  mtci_rsa_key pub;
  mock_dc_faults faults;
  mock_dc_counters ctr;
  mock_key *keys;            /* MOCK_DC_MAX_KEYS */
  mock_sess *sess;           /* MOCK_DC_MAX_SESSIONS */
  int64_t connects[MOCK_DC_FLOOD_RING]; /* accept times (ms), ring */
  size_t n_connects;
  uint64_t answers;          /* RPC answers produced (drop_every) */
  mock_dconn *conns;         /* open connections */
};

struct mock_dc_cluster {
  mock_dc_config cfg;
  int n;
  mock_loop *loop;
  int running;
  mock_dc dcs[MOCK_DC_MAX_DCS];
  void *drbg;                /* mtci_drbg when cfg.rnd is NULL */
  mtc_random_fn rnd;
  void *rnd_ud;
  uint8_t secret[32];        /* signs exported authorizations, phone_code_hash */
  uint64_t use_clock;        /* LRU stamps */
};

/* ---- key and session store (mock_dc.c) ---------------------------------- */

/* Store a key as if a handshake had just made it (a restored key store). */
struct mock_auth_result;
mock_key *mock_dc_store_key(mock_dc *dc, const struct mock_auth_result *res);
mock_key *mock_dc_find_key(mock_dc *dc, const uint8_t id[8]);
/* The key whose authorization applies: a temp key's bound perm key, else
 * the key itself; NULL for an unbound temp key. */
mock_key *mock_dc_auth_key(mock_dc *dc, mock_key *k);
/* Server time now, seconds (real clock + the DC's clock_offset). */
double mock_dc_now(const mock_dc *dc);
/* Randomness for the cluster. */
int mock_dc_random(mock_dc_cluster *cl, void *out, size_t len);
/* One-line log (no-op without a sink). */
void mock_dc_logf(mock_dc *dc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* ping_delay_disconnect on a connection: (re)arm its close timer. */
void mock_dc_conn_disconnect_after(mock_dconn *c, int32_t seconds);

/* ---- RPC layer (mock_rpc.c) --------------------------------------------- */

typedef struct mock_rpc_ctx {
  mock_dc *dc;
  mock_key *key;             /* the key the request came under */
  mock_sess *sess;           /* its server session record */
  mock_dconn *conn;          /* the connection it arrived on */
  int64_t session_id;
  int64_t msg_id;            /* of the request message */
  int32_t layer_in;          /* layer of an invokeWithLayer mock_session unwrapped, else 0 */
  int32_t now;               /* server unix time */
  char method[MOCK_DC_NAME_LEN]; /* out: innermost method name */
} mock_rpc_ctx;

/*
 * One API call (the body of a content message that is not a service
 * message): writes the result object or an rpc_error to out (empty on
 * entry). Always produces an answer unless out->err is set.
 */
void mock_rpc_call(mock_rpc_ctx *ctx, const uint8_t *q, size_t len, mtci_tl_writer *out);
/* The name counted for a constructor id ("help.getConfig", "ping", ...),
 * "0x%08x" for unknown ones. */
void mock_rpc_method_name(uint32_t id, char out[MOCK_DC_NAME_LEN]);

/* ---- counters (mock_counters.c) ----------------------------------------- */

void mock_ctr_add(mock_dc_name_count *v, size_t *n, const char *name);
void mock_ctr_method(mock_dc *dc, const char *name);
void mock_ctr_error(mock_dc *dc, int32_t code, const char *message);
void mock_ctr_transport(mock_dc *dc, const char *name);
/* JSON of n counter sets (jansson); malloc'd text or NULL. */
char *mock_ctr_json(const mock_dc_counters *ctrs, int n);

#endif /* MTC_MOCK_DC_INT_H */
