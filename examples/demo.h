/*
 * mtconn-demo internals shared by examples/demo_*.c and mtconn_demo.c.
 *
 *   mtconn_demo.c   flags, the run, the report (table or JSON), exit status
 *   demo_mock.c     the in-process mock cluster, the mock MTProxy in front of
 *                   it, and the mock's key store kept beside --state
 *   demo_login.c    the scenario on one mtc_context: sendCode (PHONE_MIGRATE),
 *                   signIn, the 1 MiB download (FILE_MIGRATE + authorization
 *                   transfer) checked byte by byte
 */
#ifndef MTC_DEMO_H
#define MTC_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

#define DEMO_MAX_DCS 16
#define DEMO_MAX_KEYS 8
#define DEMO_MAX_DOH 7
#define DEMO_FILE_ID 1
#define DEMO_FILE_SIZE (1u << 20)
#define DEMO_PART (512u * 1024u)
#define DEMO_PHONE "+15550000005"
#define DEMO_CODE "12345"
#define DEMO_API_ID 12345
#define DEMO_API_HASH "0123456789abcdef0123456789abcdef"

typedef struct demo_opts {
  int json;
  int verbose;
  int mock;                        /* no --dc and no --test-dc: the in-process cluster */
  mtc_dc_address dcs[DEMO_MAX_DCS];/* --dc ID:HOST:PORT */
  char dc_ips[DEMO_MAX_DCS][64];
  size_t n_dcs;
  char *rsa_pems[DEMO_MAX_KEYS];   /* --rsa-key files, read */
  size_t n_rsa;
  const char *proxy;               /* --proxy: "plain" / "dd" / "ee" (mock) or a link */
  mtc_transport transport;
  int obfuscate;                   /* -1: the default (on, off for full) */
  const char *state;               /* --state FILE */
  const char *phone, *code;
  int32_t api_id;
  const char *api_hash;
  int test_dc;
  int timeout_ms;                  /* per request */
  /* endpoint discovery */
  int block_seeds;                 /* --block-seeds (mock): the seed ports refuse; an in-process
                                      mock DoH serves the alternative ones */
  int no_discovery;                /* --no-discovery */
  int pfs;                         /* --pfs: temporary keys bound to the perm keys */
  const char *doh_google[DEMO_MAX_DOH];     /* --doh google=URL (repeatable) */
  const char *doh_cloudflare[DEMO_MAX_DOH]; /* --doh cloudflare=URL (repeatable) */
  size_t n_doh_google, n_doh_cloudflare;
  char *config_key_pem;            /* --config-key FILE, read */
  const char *ca_file;             /* --ca-file FILE */
} demo_opts;

/* ---- the mock side (demo_mock.c) ---------------------------------------------------- */

typedef struct demo_mock demo_mock;

typedef struct demo_mock_dc {      /* server-side counts of one DC */
  int dc_id;
  uint64_t tcp_accepted, handshakes_perm, handshakes_temp, bytes_in, bytes_out;
  uint64_t rpcs;          /* API calls answered or dropped */
  uint64_t service_rpcs;  /* the client session's own: get_future_salts, pings */
} demo_mock_dc;

/* Start 5 DCs on 127.0.0.1 (home DC 5, files on DC 1). With a state file the
 * mock's key store and ports come from (and later go to) STATE.mockdc, so a
 * second run meets a server that still knows its keys. proxy_kind "plain",
 * "dd", "ee" or NULL. err gets a message on failure. */
int demo_mock_start(demo_mock **out, const demo_opts *o, char *err, size_t errlen);
/* Seeds (127.0.0.1:port per DC), the DCs' PEMs, and the proxy link (NULL: direct). */
const mtc_dc_address *demo_mock_seeds(const demo_mock *m, size_t *n);
const char *const *demo_mock_pems(const demo_mock *m, size_t *n);
const char *demo_mock_link(const demo_mock *m);
/* Keys restored from STATE.mockdc (0 on a first run); where the ports came from. */
int demo_mock_restored_keys(const demo_mock *m);
int demo_mock_ports_restored(const demo_mock *m);
/* Wait (bounded) until every client connection is closed on the server side,
 * then copy the counts. 0 or -1 (some still open after wait_ms: copied anyway). */
int demo_mock_settle(demo_mock *m, int wait_ms);
size_t demo_mock_counts(demo_mock *m, demo_mock_dc *out, size_t cap);
/* Mock counters / proxy stats as JSON text (malloc'd; NULL if none). */
char *demo_mock_counters_json(demo_mock *m);
char *demo_mock_proxy_json(demo_mock *m);
/* Proxy: client connections accepted, handshakes accepted, rejects (all 0 without one). */
void demo_mock_proxy_counts(demo_mock *m, uint64_t *accepted, uint64_t *ok, uint64_t *rejects);
/* --block-seeds: the mock DoH servers (Google's and Cloudflare's JSON APIs on
 * 127.0.0.1) serve a simple config signed with a test key that sends every
 * DC to its alternative port. Their base URLs (cloudflare 0/1) and the key's
 * public PEM; NULL without --block-seeds. */
const char *demo_mock_doh_url(const demo_mock *m, int cloudflare);
const char *demo_mock_doh_key(const demo_mock *m);
/* Requests the mock DoH servers answered or refused (0 without them). */
uint64_t demo_mock_doh_requests(demo_mock *m);
/* Stop, write STATE.mockdc (0600) when a state file is in use, free. */
int demo_mock_finish(demo_mock *m, char *err, size_t errlen);

/* ---- the scenario (demo_login.c) ------------------------------------------------------ */

#define DEMO_MAX_STEPS 12

typedef struct demo_step {
  char name[64];
  int dc_id;
  double ms;
  int ok;
  char note[160];
} demo_step;

typedef struct demo_result {
  int restart;            /* the state file had an authorized main DC: no sendCode/signIn */
  int login_ok;
  int64_t user_id;
  int main_dc;
  int download_ok;        /* 1 MiB received and every byte checked */
  int download_tried;
  size_t bytes_received;
  int file_dc;
  double wall_ms;
  size_t n_steps;
  demo_step steps[DEMO_MAX_STEPS];
  int keys_dropped;       /* AUTH_KEY_DROPPED events */
  int keys_created;       /* AUTH_KEY_CREATED events */
  int main_dc_changes;
  mtc_counters ctr;       /* the library's counters at the end */
  char *ctr_json;         /* mtc_context_counters_json (malloc'd) */
  char error[256];        /* why the scenario stopped, "" if it ran through */
} demo_result;

/* Run the scenario on a context made from settings (the caller fills seeds,
 * keys, proxy, transport, state). Returns 0 when it ran to its end (see
 * login_ok / download_ok), or a negative code when the context could not be
 * made. */
int demo_run(const demo_opts *o, const mtc_settings *s, demo_result *res);
void demo_result_free(demo_result *res);

/* The scenario's document: block i = SHA-256(id as 8 LE bytes || i as 8 BE
 * bytes), concatenated, cut at DEMO_FILE_SIZE. Writes [offset, offset+len). */
void demo_file_bytes(int64_t file_id, uint64_t offset, uint8_t *out, size_t len);

#endif /* MTC_DEMO_H */
