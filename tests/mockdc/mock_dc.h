/*
 * Mock DC cluster. TEST CODE, not part of the library: N data centers on
 * 127.0.0.1, each with its own TEST-ONLY RSA key (tests/mockdc/keys; DCs
 * past the fifth share them, as production DCs share theirs), auth
 * key store (perm and temp keys, PFS bindings), salts, server sessions and
 * per-key "authorized user" flag. It stands in for Telegram's servers, so
 * everything on the wire is the real protocol: any MTProto client (ours,
 * Telethon) can log in against it.
 *
 *   per connection:  transport detection (abridged ef, intermediate ee x4,
 *                    padded dd x4, full (no tag, first seqno 0), else a
 *                    64-byte obfuscated2 header whose tag picks the codec)
 *                    -> frames -> auth_key_id 0: mock_auth (key creation)
 *                                 else:          mock_session (MTProto 2.0)
 *                    -> RPCs (mock_rpc.c), quick acks when requested
 *
 * RPCs (layer 198 constructors, and layer 144 where a client announced it):
 * invokeWithLayer, initConnection, invokeWithoutUpdates, invokeAfterMsg(s)
 * (unwrapped), help.getConfig, help.getNearestDc, auth.sendCode,
 * auth.signIn, auth.logOut, auth.exportAuthorization,
 * auth.importAuthorization, auth.bindTempAuthKey, users.getUsers,
 * updates.getState, upload.getFile; service: ping, ping_delay_disconnect,
 * get_future_salts, destroy_session, msgs_ack (via mock_session). Anything
 * else: rpc_error 400 INPUT_METHOD_INVALID.
 *
 * Threads: the cluster runs on a mock_loop in a background thread between
 * mock_dc_cluster_start() and _stop(). Every mock_dc_* call below takes the
 * loop lock itself, so it may be called from any thread EXCEPT from inside
 * a mock_loop callback (the lock is not recursive).
 */
#ifndef MTC_MOCK_DC_H
#define MTC_MOCK_DC_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"

#define MOCK_DC_MAX_DCS 10
#define MOCK_DC_MAX_NAMES 48      /* distinct method / error names counted per DC */
#define MOCK_DC_NAME_LEN 48
#define MOCK_DC_DEFAULT_PHONE "+15550000005"
#define MOCK_DC_LOGIN_CODE "12345"
#define MOCK_DC_FILE_SIZE (1u << 20) /* every mock document is 1 MiB */

/*
 * Fault switches, per DC. All zero = a healthy DC. Settable at start
 * (config) and at run time (mock_dc_set_faults). Counters like
 * transport_404_once are consumed as they fire.
 */
typedef struct mock_dc_faults {
  /* Close a connection (without answering) when its N-th frame arrives;
   * every frame counts, handshake frames included. 0 = off. */
  uint32_t close_after_frames;
  /* The next encrypted frame on this DC: forget its auth key (perm or
   * temp), answer transport error -404 and close. Consumed when fired. */
  int transport_404_once;
  /* More than flood_connects connections accepted within flood_window_ms:
   * the extra connection gets transport error -429 on its first frame and
   * is closed. 0 = off. */
  uint32_t flood_connects;
  uint32_t flood_window_ms;
  /* The next N encrypted messages carrying an api call find the salt
   * rotated: the key's salt changes, so the client gets bad_server_salt
   * (error 48) with the new salt. Consumed one per message. */
  uint32_t wrong_salt;
  /* Server clock = real clock + clock_offset seconds + clock_offset_ms
   * (handshake server_time, msg_ids, config dates; msg_id checks use it
   * too). The milliseconds give the server a clock a fraction of a second
   * off ours, which a handshake's whole-second server_time cannot show. */
  int32_t clock_offset;
  int32_t clock_offset_ms;
  /* Every frame this DC sends is held back for delay_ms (order kept). */
  uint32_t delay_ms;
  /* Drop every N-th RPC answer (counted per DC), and/or every answer to
   * the method named drop_method (e.g. "help.getNearestDc"). */
  uint32_t drop_every;
  char drop_method[MOCK_DC_NAME_LEN];
  /* Every answer to the method named lose_method is made and the query
   * acknowledged (msgs_ack), but the answer is lost on the way: like a
   * real server, the DC re-sends it when the session's next packet comes
   * on a new connection (until the client acknowledges it). */
  char lose_method[MOCK_DC_NAME_LEN];
  /* Stall: every connection of this DC (existing and new) stops reading
   * and writing while TCP stays open; answers due meanwhile are dropped. */
  int stall;
  /* The DC's main ("seed") port refuses TCP connections (a bound socket
   * without listen(): connect() gets ECONNREFUSED); the alternative port,
   * if configured, keeps working. */
  int refuse_seed;
  /* The next encrypted frame on this DC: answer transport error -444 (the
   * client refreshes its address sets) and close. Consumed when fired. */
  int transport_444_once;
  /* Config churn: help.getConfig also lists DCs config_extra_first ..
   * config_extra_first + config_extra_count - 1 (ids up to 999), each at
   * 127.0.0.1 on port config_extra_port (0: this DC's main port). */
  uint32_t config_extra_first, config_extra_count, config_extra_port;
} mock_dc_faults;

typedef struct mock_dc_config {
  int n_dcs;            /* 1..MOCK_DC_MAX_DCS; 0 = 5 */
  uint16_t base_port;   /* 0 = ephemeral ports; else DC i listens on base_port + i - 1 */
  int alt_ports;        /* 1: each DC also listens on an alternative (ephemeral, or
                         * base_port + 100 + i - 1) port, listed second in getConfig */
  int home_dc;          /* DC where every phone number lives; 0 = min(5, n_dcs) */
  int files_dc;         /* DC that stores the mock documents; 0 = 1 */
  int nearest_dc;       /* help.getNearestDc's nearest_dc; 0 = the asked DC */
  /* Faults for every DC at start (index dc - 1). */
  mock_dc_faults faults[MOCK_DC_MAX_DCS];
  /* Optional randomness; NULL = an OS-seeded DRBG owned by the cluster. */
  mtc_random_fn rnd;
  void *rnd_ud;
  /* Optional log sink for one-line events (connections, errors); NULL = quiet. */
  void (*log)(void *ud, const char *line);
  void *log_ud;
} mock_dc_config;

typedef struct mock_dc_name_count {
  char name[MOCK_DC_NAME_LEN];
  uint64_t count;
} mock_dc_name_count;

/* Counters of one DC (monotonic since start). */
typedef struct mock_dc_counters {
  int dc_id;
  uint16_t port, alt_port;
  uint64_t tcp_accepted;        /* connections accepted (both ports) */
  uint64_t tcp_closed;
  uint64_t handshakes_perm;     /* dh_gen_ok sent, permanent keys */
  uint64_t handshakes_temp;     /* dh_gen_ok sent, temporary keys */
  uint64_t handshake_failures;  /* invalid handshake messages (-404 sent) */
  uint64_t sessions_created;    /* new (auth key, session_id) pairs */
  uint64_t binds;               /* successful auth.bindTempAuthKey */
  uint64_t rpcs;                /* api calls + service requests answered or dropped */
  uint64_t quick_acks;          /* quick acks sent */
  uint64_t transport_errors_sent; /* -404 / -429 frames sent */
  uint64_t transport_404, transport_429;
  uint64_t framing_errors;      /* bad transport bytes from clients (connection dropped) */
  uint64_t bad_msgs_sent;       /* bad_msg_notification / bad_server_salt */
  uint64_t answers_dropped;     /* by the drop faults or a stall */
  uint64_t init_via_proxy;      /* initConnections carrying proxy:inputClientProxy (MTProxy) */
  uint64_t bytes_in, bytes_out; /* TCP payload bytes, closed and open connections */
  size_t n_methods;             /* RPCs by innermost method name */
  mock_dc_name_count methods[MOCK_DC_MAX_NAMES];
  size_t n_errors;              /* rpc_errors sent, by "CODE MESSAGE" */
  mock_dc_name_count errors[MOCK_DC_MAX_NAMES];
  size_t n_transports;          /* connections by transport ("abridged",
                                 * "obfuscated/intermediate", ...) */
  mock_dc_name_count transports[MOCK_DC_MAX_NAMES];
} mock_dc_counters;

typedef struct mock_dc_cluster mock_dc_cluster;

/* Builds the cluster (keys parsed, nothing listening yet). cfg may be NULL
 * (defaults). Returns 0 or an mtc_error. */
int mock_dc_cluster_new(mock_dc_cluster **out, const mock_dc_config *cfg);
/* Binds every listener and starts the loop thread. 0, or a negative errno
 * (e.g. -EADDRINUSE for a busy base port) / mtc_error. */
int mock_dc_cluster_start(mock_dc_cluster *c);
/* Stops the thread; connections stay until _free. Safe to call twice. */
void mock_dc_cluster_stop(mock_dc_cluster *c);
/* Stops if running, closes everything, wipes keys. NULL-safe. */
void mock_dc_cluster_free(mock_dc_cluster *c);

int mock_dc_cluster_count(const mock_dc_cluster *c);
/* Main port of DC dc_id (1-based), 0 for an unknown id or before start. */
uint16_t mock_dc_port(const mock_dc_cluster *c, int dc_id);
/* Alternative port (alt_ports), else 0. */
uint16_t mock_dc_alt_port(const mock_dc_cluster *c, int dc_id);

/* The DC's RSA public key (for a client's key set) and as PKCS#1 PEM
 * ("-----BEGIN RSA PUBLIC KEY-----"); pem_len excludes the NUL. */
int mock_dc_public_key(const mock_dc_cluster *c, int dc_id, mtci_rsa_key *out);
int mock_dc_public_pem(const mock_dc_cluster *c, int dc_id, char *out, size_t cap,
                       size_t *pem_len);

/* Fault switches at run time. */
int mock_dc_set_faults(mock_dc_cluster *c, int dc_id, const mock_dc_faults *f);
int mock_dc_get_faults(mock_dc_cluster *c, int dc_id, mock_dc_faults *out);
/* Parse "name=value[,name=value...]" (names as the struct fields, e.g.
 * "close_after_frames=3,delay_ms=200,drop_method=help.getConfig,stall=1")
 * into *f (fields not named keep their value). 0 or MTC_ERR_INVALID_ARG. */
int mock_dc_faults_parse(const char *spec, mock_dc_faults *f);

/* Counters of one DC (copied under the lock). */
int mock_dc_get_counters(mock_dc_cluster *c, int dc_id, mock_dc_counters *out);
/* Count of one method / error / transport name in a counters copy (0 if absent). */
uint64_t mock_dc_counter_name(const mock_dc_name_count *v, size_t n, const char *name);
/* All counters as JSON text (malloc'd, caller frees):
 *   {"dcs":[{"id":1,"port":..,"alt_port":..,"tcp_accepted":..,...,
 *            "rpcs_by_method":{"help.getConfig":1,...},
 *            "errors":{"303 PHONE_MIGRATE_5":1,...},
 *            "transports":{"abridged":1,...}},...],
 *    "totals":{"tcp_accepted":..,"handshakes_perm":..,...}}
 * NULL on allocation failure. */
char *mock_dc_counters_json(mock_dc_cluster *c);
/* Ports as JSON: {"dcs":[{"id":1,"port":P[,"alt_port":A]},...]} (malloc'd). */
char *mock_dc_ports_json(mock_dc_cluster *c);

/* Authorization state: user id authorized on auth key key_id (wire order)
 * of DC dc_id, 0 if none, -1 if the key is unknown. For tests. */
int64_t mock_dc_key_user(mock_dc_cluster *c, int dc_id, const uint8_t key_id[8]);
/* Number of auth keys the DC holds (perm, temp). */
int mock_dc_key_count(mock_dc_cluster *c, int dc_id, int *perm, int *temp);
/* Open connections of a DC. */
size_t mock_dc_conn_count(mock_dc_cluster *c, int dc_id);

/* The mock document's bytes [offset, offset+len) (clamped to the 1 MiB
 * size): block i = SHA-256(file_id as 8 LE bytes || i as 8 BE bytes), the
 * 32-byte blocks concatenated. Returns the bytes written. */
size_t mock_dc_file_content(int64_t file_id, uint64_t offset, uint8_t *out, size_t len);

#endif /* MTC_MOCK_DC_H */
