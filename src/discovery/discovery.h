/*
 * Endpoint discovery (PROTOCOL.md §1): the object the context owns. It
 * races the simple-config sources - Google JSON DoH, Cloudflare JSON DoH
 * (doh_fetch.h, libcurl multi) and plain DNS TXT (dns.h, c-ares) - on the
 * context's poller, decodes and validates each answer (simple_config.h),
 * and reports the first valid config or a final error (race.h has the
 * policy). Shell code.
 *
 * Requests (PROTOCOL.md §1.3-§1.5, doh_request.h):
 *   GET <google endpoint>/resolve?name=<txt domain>&type=16&random_padding=<13..128>
 *   GET <cloudflare endpoint>/dns-query?name=<txt domain>&type=16&random_padding=<..>
 *       + accept: application/dns-json
 *   DNS TXT <txt domain> to the system's (or the configured) DNS servers
 * Start order: google#0, cloudflare#0, google#1, cloudflare#1, ..., then
 * plain DNS; each start stagger_ms after the previous one, a failure
 * starting the next one at once. Defaults: google = https://dns.google,
 * cloudflare = https://mozilla.cloudflare-dns.com, stagger 800 ms (the
 * tdesktop kSendNextTimeout), so a blocked-seeds login with one working
 * provider makes at most 2 HTTP requests.
 *
 * Loop integration: the context passes its poller; the fetcher's and the
 * resolver's fds go into it directly. The context calls
 * mtci_discovery_on_timeout(d, now) whenever its timer fires (it is cheap
 * and idempotent when nothing is due). The result callback runs ONLY from
 * mtci_discovery_on_timeout - never from start, from an fd callback or
 * from cancel - and it is the last thing on_timeout does, so the callback
 * may call start again, cancel, or free the discovery.
 *
 * Clock correction (PROTOCOL.md §1.13): every DoH answer's `Date:` header
 * (RFC 1123, second resolution) gives offset = Date - local now, in
 * seconds. The Date is rounded down to the second and the request takes a
 * round trip, so a correct clock reads as 0 +- 2 s; an offset counts as
 * "far off" only beyond MTCI_DISCOVERY_CLOCK_SKEW_S = 60 s, well above that
 * noise and well below the simple config's own +-1200 s slack (§1.9). A
 * far-off offset is exposed (mtci_discovery_clock_offset, and in the
 * result) for the context to correct its wall clock (fake-TLS timestamps,
 * §5.4), and - with trust_http_date (default on, as tdesktop's http_now) -
 * the answers of that run are validated against local time + that offset
 * instead of local time + the context's known server offset. A TLS-
 * verified Google/Cloudflare Date is as trustworthy as their TXT data; a
 * forged Date alone cannot forge a signed config, only make an old one
 * look current within its published validity.
 *
 * Threads: everything runs on the poller's thread.
 */
#ifndef MTCI_DISCOVERY_DISCOVERY_H
#define MTCI_DISCOVERY_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "discovery/dns.h"
#include "discovery/doh_fetch.h"
#include "discovery/race.h"
#include "discovery/simple_config.h"
#include "io/poller.h"
#include "mtconn/mtconn.h"

#define MTCI_DISCOVERY_DOMAIN "apv3.stel.com"
#define MTCI_DISCOVERY_TEST_DOMAIN "tapv3.stel.com"
#define MTCI_DISCOVERY_CLOCK_SKEW_S 60
#define MTCI_DISCOVERY_DEFAULT_STAGGER_MS 800
#define MTCI_DISCOVERY_DEFAULT_TOTAL_TIMEOUT_MS 20000
#define MTCI_DISCOVERY_MAX_ENDPOINTS 7 /* per provider */

/* Log levels, the values of the public mtc_log_level. */
enum { MTCI_DLOG_ERROR = 0, MTCI_DLOG_WARN = 1, MTCI_DLOG_INFO = 2, MTCI_DLOG_DEBUG = 3 };

typedef struct mtci_doh_endpoint {
  const char *url;  /* base URL: "https://dns.google", "http://127.0.0.1:8053" */
  const char *host; /* NULL, or a Host header (domain fronting) */
} mtci_doh_endpoint;

typedef struct mtci_discovery_settings {
  const mtci_doh_endpoint *google; /* copied; n_google 0 = no Google source */
  size_t n_google;                 /* <= MTCI_DISCOVERY_MAX_ENDPOINTS */
  const mtci_doh_endpoint *cloudflare;
  size_t n_cloudflare;
  const char *txt_domain; /* NULL: tapv3.stel.com if test_dcs, else apv3.stel.com */
  int test_dcs;
  const char *ca_file;         /* NULL: libcurl's default CA store */
  const char *user_agent;      /* NULL: MTCI_DOH_DEFAULT_USER_AGENT (desktop Chrome) */
  uint32_t connect_timeout_ms; /* per DoH request; 0: 5000 */
  uint32_t request_timeout_ms; /* per DoH request, whole transfer; 0: 10000 */
  uint32_t total_timeout_ms;   /* whole race; 0: 20000 */
  uint32_t stagger_ms;         /* between source starts (0: all at once) */
  int use_plain_dns;           /* add the plain DNS TXT source */
  const char *dns_servers;     /* c-ares CSV ("127.0.0.1:5353"); NULL: system */
  uint32_t dns_timeout_ms;     /* per DNS lookup; 0: 5000 */
  const mtci_rsa_key *key;     /* copied; NULL: Telegram's simple-config key */
  int trust_http_date;         /* see the top */
  mtc_random_fn random;        /* padding; NULL: an own CTR-DRBG */
  void *random_ud;
  int64_t (*now_ms)(void *now_ud); /* the poller's clock, unix ms; NULL: realtime */
  void *now_ud;
  void (*log)(void *log_ud, int level, const char *line); /* may be NULL */
  void *log_ud;
} mtci_discovery_settings;

/* Defaults: the public providers above, stagger 800 ms, plain DNS on,
 * trust_http_date on, everything else 0/NULL. */
void mtci_discovery_settings_default(mtci_discovery_settings *s);

typedef struct mtci_discovery_result {
  int err;                 /* 0, or the race's final error (race.h), e.g. MTC_ERR_SCONF_EXPIRED,
                            * MTC_ERR_DISCOVERY_TIMEOUT, MTC_ERR_DOH_HTTP_STATUS */
  mtci_source_kind source; /* the winner's kind (err == 0) */
  const char *endpoint;    /* the winner's base URL, or "dns" (err == 0) */
  const mtci_simple_config *config; /* the endpoints (err == 0), else NULL; borrowed until
                                     * the callback returns or calls start/free: copy it */
  int64_t elapsed_ms;               /* from start to the end of the race */
  int have_clock_offset;            /* a far-off Date offset is known */
  int64_t clock_offset_s;           /* server - local, seconds */
} mtci_discovery_result;

typedef void (*mtci_discovery_fn)(void *ud, const mtci_discovery_result *r);

typedef struct mtci_discovery_counters {
  uint64_t runs, runs_ok, runs_failed; /* finished races (cancelled ones not counted) */
  uint64_t http_requests;              /* DoH transfers started */
  uint64_t dns_queries;                /* DNS questions: TXT + host lookups (A, AAAA) */
  mtci_race_counters race;             /* per source kind: started, outcomes */
  int have_date;                       /* a DoH Date header was seen */
  int64_t date_offset_s;               /* its offset (server - local), even if small */
} mtci_discovery_counters;

typedef struct mtci_discovery mtci_discovery;

/*
 * Create on poller (which must outlive d). s is copied (strings too).
 * fn: the result callback. Returns 0, MTC_ERR_INVALID_ARG (bad endpoint
 * URL or domain, too many endpoints), MTC_ERR_DISCOVERY_NO_SOURCE (no
 * endpoint and plain DNS off), MTC_ERR_RSA_KEY, MTC_ERR_NOMEM,
 * MTC_ERR_IO_TABLE_FULL, MTC_ERR_UNSUPPORTED (libcurl / c-ares init).
 * The first creation runs curl_global_init / ares_library_init (once).
 */
int mtci_discovery_new(mtci_poller *poller, const mtci_discovery_settings *s, mtci_discovery_fn fn,
                       void *ud, mtci_discovery **out);

/* Abort everything silently, release fds and deadlines, zeroize. NULL-safe.
 * Allowed from the result callback; not from other callbacks of d. */
void mtci_discovery_free(mtci_discovery *d);

/*
 * Start a race at now_ms (the poller's clock). phone: the user's number
 * for the access-point rules (NULL/empty: before login, every rule
 * applies). The first source starts before this returns; a source that
 * cannot start counts as failed, so even "nothing could start" ends in the
 * callback. Returns 0 (the callback will come), MTC_ERR_DISCOVERY_BUSY
 * (running, or a result is waiting for on_timeout), MTC_ERR_INVALID_ARG
 * (phone over 64 bytes).
 */
int mtci_discovery_start(mtci_discovery *d, int64_t now_ms, const char *phone, size_t phone_len);

/* Stop a running race: in-flight requests are aborted (counted as
 * cancelled), no callback comes. 0, or MTC_ERR_INVALID_ARG if idle. */
int mtci_discovery_cancel(mtci_discovery *d);

/* 1 while a race runs or its result waits for delivery. */
int mtci_discovery_running(const mtci_discovery *d);

/* Timers: libcurl's, c-ares', the stagger and the race deadline; delivers
 * the result last. */
void mtci_discovery_on_timeout(mtci_discovery *d, int64_t now_ms);

/* The context's known server-time offset (seconds, server - local), used
 * to validate answers unless a far-off Date says otherwise. */
void mtci_discovery_set_time_offset(mtci_discovery *d, int64_t offset_s);

/* 1 and *offset_s if the last Date header was more than
 * MTCI_DISCOVERY_CLOCK_SKEW_S off; else 0 and *offset_s = 0. */
int mtci_discovery_clock_offset(const mtci_discovery *d, int64_t *offset_s);

void mtci_discovery_counters_get(const mtci_discovery *d, mtci_discovery_counters *out);

/* The race's resolver (its queries are in dns_queries), for tests. Proxy
 * host names use the context's own resolver (context_os.c): discovery never
 * runs with a proxy, so the two never coexist. */
mtci_dns *mtci_discovery_dns(mtci_discovery *d);

/* curl_global_cleanup + ares_library_cleanup: process end only, with no
 * discovery, fetcher or resolver left (tests call it for clean ASan). */
void mtci_discovery_global_cleanup(void);

#endif /* MTCI_DISCOVERY_DISCOVERY_H */
