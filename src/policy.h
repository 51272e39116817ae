/*
 * The MTContext's rules, as pure functions of their inputs (DESIGN.md
 * rule 1): reconnect back-off and connect-rate limits, address choice,
 * what to do with an rpc_error or a transport error, and the liveness
 * timing. The context asks; nothing here keeps state beyond its arguments.
 *
 * Back-off (a failing network must never become a reconnect storm):
 *   - a connection that worked (it received a valid packet) and then broke
 *     is replaced at once;
 *   - every attempt that fails before that waits initial * 2^(n-1),
 *     capped (defaults 1 s doubling to 30 s), n = consecutive failures;
 *   - transport error -429 (flood) at least doubles that and never goes
 *     below MTCI_POLICY_FLOOD_MIN_MS;
 *   - on top, at most N TCP connects per DC per 60 s (mtci_rate), and
 *     after max_connect_attempts consecutive failures the context gives up
 *     (requests get MTC_ERR_CONNECT) until new work arrives.
 *
 * Address choice ("earliest failure first, successes remembered"): usable
 * endpoints are ranked in three classes: known good (a success and no
 * failure since), untried, failing. Known good: most recent success first;
 * untried: list order; failing: the one whose last failure is oldest first.
 * Within a class the preferred IP family goes first.
 *
 * Liveness: with a request pending, a silent connection is probed after
 * max(4 s, 4 RTT) and declared dead max(5 s, 4 RTT) after the probe: dead
 * within 9 s while RTT <= 1 s, within 8 RTT on slower links; the context
 * replaces it at once. An idle connection pings every ping_interval and is
 * dead when nothing arrived for ping_interval + 15 s (session.h).
 */
#ifndef MTCI_POLICY_H
#define MTCI_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "dc.h"
#include "mtconn/mtconn.h"

#define MTCI_POLICY_FLOOD_MIN_MS 3000      /* shortest wait after transport error -429 */
#define MTCI_POLICY_RATE_WINDOW_MS 60000
#define MTCI_POLICY_RATE_SLOTS 64          /* most connects a window can count */
#define MTCI_POLICY_PROBE_MIN_MS 4000
#define MTCI_POLICY_DEAD_MIN_MS 5000
#define MTCI_POLICY_RTT_FACTOR 4
#define MTCI_POLICY_LIVENESS_MAX_MS 60000
#define MTCI_POLICY_MAX_MIGRATIONS 5       /* per request, then MTC_ERR_MIGRATE_LOOP */
#define MTCI_POLICY_MAX_FLOOD_WAITS 5      /* automatic waits per request */

/* ---- back-off ------------------------------------------------------------------ */

/* Delay before the next attempt after `failures` consecutive failures
 * (0 -> 0 ms: reconnect at once). flood: the last failure was -429.
 * initial_ms and max_ms must be > 0. */
int64_t mtci_policy_backoff_ms(int64_t initial_ms, int64_t max_ms, int failures, int flood);

/* ---- connect rate ----------------------------------------------------------------- */

typedef struct mtci_rate {
  int64_t t[MTCI_POLICY_RATE_SLOTS]; /* ring of connect times */
  size_t head, n;
} mtci_rate;

/* Earliest time >= now at which one more connect keeps at most max_per_window
 * connects in any 60 s window (max_per_window is clamped to 1..64). */
int64_t mtci_rate_next_allowed(const mtci_rate *r, int max_per_window, int64_t now_ms);
void mtci_rate_note(mtci_rate *r, int64_t now_ms);

/* ---- address choice --------------------------------------------------------------- */

typedef struct mtci_choice {
  int media;       /* for a media connection: media_only endpoints (only them, if any) */
  int prefer_ipv6; /* IPv6 first within a class (else IPv4 first) */
  int via_proxy;   /* through SOCKS5: static endpoints only, if any */
  int obfuscated;  /* tcpo_only endpoints need obfuscation */
  int secret_ok;   /* endpoints with a secret are usable (not the full transport, no proxy) */
} mtci_choice;

/*
 * Usable endpoints of addrs[0..n), best first, as indices into order[0..cap).
 * Never CDN endpoints. Returns the count written.
 */
size_t mtci_policy_candidates(const mtci_dc_addr *addrs, size_t n, const mtci_choice *c,
                              size_t *order, size_t cap);

/* ---- rpc_error rules --------------------------------------------------------------- */

typedef enum mtci_rpc_action_kind {
  MTCI_RPC_DELIVER = 0,   /* give the error to the app */
  MTCI_RPC_MIGRATE_MAIN,  /* PHONE/USER/NETWORK_MIGRATE_X: main DC := dc, resend */
  MTCI_RPC_ROUTE_DC,      /* FILE/STATS_MIGRATE_X: resend this request to dc */
  MTCI_RPC_FLOOD_WAIT,    /* wait wait_ms, resend */
  MTCI_RPC_AUTH_TRANSFER, /* export on the main DC, import here, resend */
  MTCI_RPC_RESEND_MAIN    /* 401 with main_moved: resend to the (new) main DC */
} mtci_rpc_action_kind;

typedef struct mtci_rpc_rules {
  int flood_auto_s;     /* FLOOD_WAIT_X with X <= this is waited out (0: never) */
  int allow_migrate;    /* the request lets the context follow *_MIGRATE_X */
  int allow_flood;      /* ... wait FLOOD_WAIT_X */
  int allow_transfer;   /* ... transfer the authorization */
  int target_main;      /* the request is for the main DC */
  int on_main_dc;       /* it was answered by the main DC */
  int main_moved;       /* it is for the main DC and was answered by the one that was the
                           main DC when it was sent (the main DC moved meanwhile) */
  int main_authorized;  /* the main DC's key is logged in */
  int migrations;       /* redirects this request already had */
  int flood_waits;      /* automatic waits it already had */
  int transfers;        /* transfers it already triggered */
} mtci_rpc_rules;

typedef struct mtci_rpc_action {
  mtci_rpc_action_kind kind;
  int dc;              /* MIGRATE_MAIN / ROUTE_DC target */
  int64_t wait_ms;     /* FLOOD_WAIT */
  int unauthorized;    /* 401 AUTH_KEY_UNREGISTERED: the answering DC's key is not logged in */
  int loop;            /* DELIVER because of the migration limit: report MTC_ERR_MIGRATE_LOOP */
} mtci_rpc_action;

/* Decide for rpc_error (code, message). message is NUL-terminated. */
void mtci_policy_rpc_error(int32_t code, const char *message, const mtci_rpc_rules *r,
                           mtci_rpc_action *out);

/* "PREFIX_123" -> 1 and *value = 123 (1..9 digits, nothing after), else 0. */
int mtci_policy_suffix(const char *message, const char *prefix, int32_t *value);

/* ---- transport errors --------------------------------------------------------------- */

typedef enum mtci_terr_action {
  MTCI_TERR_RETRY = 0,  /* reconnect with the usual back-off */
  MTCI_TERR_DROP_KEY,   /* -404 on an encrypted session: the server forgot the key */
  MTCI_TERR_FLOOD,      /* -429: back off harder */
  MTCI_TERR_REFRESH     /* -444: this endpoint is wrong: refresh the address sets */
} mtci_terr_action;

/* err is the mapped connection error (MTC_ERR_TRANSPORT_*); had_session: the
 * connection carried an encrypted session (not only key creation). */
mtci_terr_action mtci_policy_transport_error(int err, int had_session);

/* ---- liveness ------------------------------------------------------------------------- */

/* Probe and dead delays for a measured RTT (rtt_ms < 0: unknown). */
void mtci_policy_liveness(int64_t rtt_ms, int32_t *probe_after_ms, int32_t *dead_after_ms);

#endif /* MTCI_POLICY_H */
