/*
 * The MTContext's endpoint discovery, pure part (context_discovery.c): when
 * to run a discovery race, what to do with its result, and the settings.
 * The race itself (DoH over libcurl, DNS over c-ares) is the discovery
 * object's (discovery/discovery.h); the context reaches it only through
 * two mtci_ctx_io hooks that context_os.c implements:
 *
 *   disc_start(now, time offset)  create the object on first use, start a race
 *   disc_counters(out)            its counters (every request it made)
 *
 * and the result comes back through mtci_ctx_disc_result (from the shell's
 * result callback, inside an entry point, so the pump runs after it).
 *
 * Trigger (checked by the pump for every DC): a slot that has work (or
 * keeps the main session) is not connected, no slot of the DC has a healthy
 * connection, and
 *   - its consecutive failed attempts reached N (after_failures, capped at
 *     max_connect_attempts; 1 when the saved config has expired), or
 *   - the DC has been without a healthy connection for T ms (after_ms)
 *     while trying (a black-holed address takes a whole connect timeout to
 *     fail).
 * A healthy start never gets there. Runs are spaced (next_allowed): 30 s
 * after each run, doubling after every failed run up to 15 min. A slot
 * that reaches max_connect_attempts while a run can still help is parked
 * (no more connects) until the run ends.
 *
 * Result, success: every endpoint (ipPort = obfuscated TCP; ipPortSecret =
 * the same keyed with the secret) goes to the front of its DC's address set
 * as tcpo_only, marked as a seed so that the help.getConfig merge keeps it
 * as a fallback; slots of those DCs retry at once with a fresh attempt
 * budget (a round in progress gets the new endpoints next); help.getConfig
 * is asked on the DC that needed the run (over the connection through the
 * new endpoint), unless no_auto_config; the "discovered" record is set (the
 * source, the config's expiry) and the state saved. After the getConfig
 * merge the discovered endpoints are put first again (the config lists the
 * blocked ones first). A far-off HTTP Date becomes clock_fix_ms, added to
 * the wall clock for fake-TLS timestamps.
 * Result, failure: nothing changes but counters and the log; parked slots
 * give up with MTC_ERR_UNREACHABLE, and so do the DC's slots later, when
 * they reach max_connect_attempts with no run allowed.
 */
#ifndef MTCI_CONTEXT_DISCOVERY_H
#define MTCI_CONTEXT_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "discovery/discovery.h"
#include "mtconn/mtconn.h"
#include "store.h"

#define MTCI_CTX_DISC_DEFAULT_FAILURES 2
#define MTCI_CTX_DISC_DEFAULT_AFTER_MS 8000
#define MTCI_CTX_DISC_SPACING_MS 30000       /* between runs */
#define MTCI_CTX_DISC_SPACING_MAX_MS 900000  /* after repeated failures */
#define MTCI_CTX_DISC_MAX_URL 512
#define MTCI_CTX_DISC_MAX_REMEMBERED 64      /* discovered endpoints re-fronted after getConfig */

/* Settings after validation (strings owned; NULL = none). */
#define MTCI_CTX_DISC_PHONE_MAX 32 /* settings.phone_number, characters */

typedef struct mtci_ctx_disc_settings {
  int enabled;               /* some source exists and no_discovery is 0 */
  char *google[MTCI_DISCOVERY_MAX_ENDPOINTS];
  size_t n_google;
  char *cloudflare[MTCI_DISCOVERY_MAX_ENDPOINTS];
  size_t n_cloudflare;
  mtci_rsa_key *key;         /* configured key (heap), NULL: Telegram's */
  char *ca_file;
  char *dns_servers;
  int plain_dns;
  int test_dcs;
  uint32_t connect_timeout_ms, request_timeout_ms, total_timeout_ms, stagger_ms;
  int after_failures;
  int64_t after_ms;
  /* the phone for phone_prefix_rules: digits only, "" = before login */
  char phone[MTCI_CTX_DISC_PHONE_MAX + 1];
  int phone_given;           /* from settings: auth.sendCode does not replace it */
} mtci_ctx_disc_settings;

/* One endpoint of the last good config (no secret: the address set has it). */
typedef struct mtci_ctx_disc_ep {
  int dc_id;
  char ip[16];
  uint16_t port;
} mtci_ctx_disc_ep;

typedef struct mtci_ctx_disc {
  mtci_ctx_disc_settings set;
  int running;               /* a race is under way */
  int trigger_dc;            /* the DC that needed it */
  int64_t started_ms;
  int64_t next_allowed_ms;   /* no new run before this */
  int64_t spacing_ms;        /* the next pause (doubles after failures) */
  int64_t down_since[MTCI_STATE_MAX_DCS];  /* per DC index: trying without success since */
  int episode_err[MTCI_STATE_MAX_DCS];     /* per DC index: a run failed while it was down */
  uint32_t parked[MTCI_STATE_MAX_DCS];     /* per DC index: bit k = slot k waits for the run */
  int confirm_pending;       /* help.getConfig after a run not done yet */
  char source[MTCI_STATE_SOURCE_LEN];      /* the last winner's name */
  mtci_ctx_disc_ep eps[MTCI_CTX_DISC_MAX_REMEMBERED];
  size_t n_eps;
  int64_t clock_fix_ms;      /* HTTP Date - local clock when far off, else 0 */
  int last_err;
  uint64_t runs, failures;   /* runs ended (a run that could not start included) */
} mtci_ctx_disc;

struct mtc_context;
struct mtci_slot;

/* From mtci_ctx_init: validate and copy the discovery settings. builtin_seeds:
 * settings.seeds was NULL. Returns 0 or MTC_ERR_INVALID_ARG / MTC_ERR_NOMEM
 * with msg. */
int mtci_ctx_disc_init(struct mtc_context *ctx, const mtc_settings *s, int builtin_seeds,
                       char *msg, size_t msg_len);
/* A request the app invokes: an auth.sendCode gives the phone number the
 * simple config's phone rules are matched against (unless settings gave
 * one). Anything else is ignored. */
void mtci_ctx_disc_note_request(struct mtc_context *ctx, const uint8_t *body, size_t len);

/* Free the copied settings (mtci_ctx_destroy). */
void mtci_ctx_disc_clear(struct mtc_context *ctx);

/* The pump: start a run when a DC needs one. */
void mtci_ctx_disc_pump(struct mtc_context *ctx, int64_t now);
/* Earliest time the pump wants to look again (INT64_MAX: none). */
int64_t mtci_ctx_disc_deadline(const struct mtc_context *ctx);
/* A slot reached max_connect_attempts: 1 if discovery took it over (parked
 * until a run ends, or given up with MTC_ERR_UNREACHABLE), 0 to give up as
 * usual. */
int mtci_ctx_disc_hold(struct mtc_context *ctx, struct mtci_slot *s, int err, int64_t now);
/* The race ended (the shell's result callback). */
void mtci_ctx_disc_result(struct mtc_context *ctx, const mtci_discovery_result *r, int64_t now);
/* A help.getConfig ended (after apply_config); ok: it succeeded. */
void mtci_ctx_disc_config_done(struct mtc_context *ctx, int ok, int64_t now);
/* Counters into the public struct / JSON object. */
void mtci_ctx_disc_counters(const struct mtc_context *ctx, mtc_counters *out);
int mtci_ctx_disc_counters_json(const mtc_counters *c, void *json_root);

#endif /* MTCI_CONTEXT_DISCOVERY_H */
