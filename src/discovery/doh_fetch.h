/*
 * DNS-over-HTTPS transfers over libcurl's multi interface, driven by the
 * poller (DESIGN.md §3). Shell code: one CURLM per fetcher; nothing blocks.
 *
 *   CURLMOPT_SOCKETFUNCTION  -> mtci_poller_add / _modify / _remove of curl's
 *                               sockets (callback: curl_multi_socket_action)
 *   CURLMOPT_TIMERFUNCTION   -> one poller deadline slot (absolute ms of the
 *                               configured clock); mtci_doh_fetch_on_timeout
 *                               runs curl_multi_socket_action(TIMEOUT) once
 *                               it has passed
 * No curl_multi_perform / curl_multi_wait anywhere.
 *
 * Every transfer: GET, no redirects followed (a 3xx is an HTTP status
 * error), its connection closed afterwards (discovery runs minutes apart:
 * nothing to reuse, and no idle fds stay in the poller), no proxy (the environment's http_proxy is
 * ignored: DoH goes direct, as in tdesktop), http/https only, TLS peer and host verification ON
 * (CURLOPT_SSL_VERIFYPEER 1, VERIFYHOST 2; the CA file is a setting), body capped (default 64 KiB:
 * Content-Length checked up front, the received bytes counted too), connect and total timeouts, a
 * desktop-Chrome User-Agent, "accept: application/dns-json" for the Cloudflare API, an optional
 * Host header (domain fronting, PROTOCOL.md §1.3 attempt B).
 *
 * Callbacks: done(ud, id, response) runs from the poller fd callback or from
 * mtci_doh_fetch_on_timeout, after libcurl has returned, never from
 * mtci_doh_fetch_start. It may start and cancel transfers; it must not free
 * the fetcher. The response is borrowed until it returns.
 *
 * Global state: libcurl needs curl_global_init once per process before
 * any other curl call. mtci_doh_fetch_new does that through
 * mtci_doh_global_init (a pthread_once, so concurrent creation from
 * several threads is safe; libcurl >= 7.84 is thread-safe here anyway).
 * curl_global_cleanup (mtci_doh_global_cleanup) is for process end only,
 * when no fetcher exists and no other thread uses libcurl.
 *
 * Threads: a fetcher belongs to its poller's thread.
 */
#ifndef MTCI_DISCOVERY_DOH_FETCH_H
#define MTCI_DISCOVERY_DOH_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "discovery/doh_request.h"
#include "io/poller.h"
#include "mtconn/mtconn.h"

#define MTCI_DOH_DEFAULT_USER_AGENT                                                                \
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "              \
  "Chrome/120.0.0.0 Safari/537.36"
#define MTCI_DOH_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define MTCI_DOH_DEFAULT_REQUEST_TIMEOUT_MS 10000
#define MTCI_DOH_BODY_CAP (64u * 1024u)
#define MTCI_DOH_MAX_REQUESTS 16 /* in flight per fetcher */

typedef struct mtci_doh_fetch mtci_doh_fetch;

typedef struct mtci_doh_fetch_config {
  mtci_poller *poller;             /* required; outlives the fetcher */
  int64_t (*now_ms)(void *now_ud); /* the poller's clock; NULL: mtci_clock_realtime_ms */
  void *now_ud;
  const char *ca_file;         /* copied; NULL: libcurl's built-in CA bundle/path */
  const char *user_agent;      /* copied; NULL: MTCI_DOH_DEFAULT_USER_AGENT */
  uint32_t connect_timeout_ms; /* 0: default */
  uint32_t request_timeout_ms; /* whole transfer; 0: default */
  size_t max_body;             /* 0 or over MTCI_DOH_BODY_CAP: MTCI_DOH_BODY_CAP */
} mtci_doh_fetch_config;

typedef struct mtci_doh_request {
  mtci_doh_api api; /* CLOUDFLARE adds "accept: application/dns-json" */
  const char *url;  /* full URL (mtci_doh_build_url); copied by libcurl */
  const char *host; /* NULL, or a Host header to send instead of the URL's */
} mtci_doh_request;

typedef struct mtci_doh_response {
  /* 0: HTTP 200 with the body below. Else MTC_ERR_DOH_HTTP_STATUS (any
   * other status; body may hold the error page), MTC_ERR_DOH_TOO_LARGE
   * (over max_body), MTC_ERR_DISCOVERY_TIMEOUT (connect or total timeout),
   * MTC_ERR_DOH_TLS, MTC_ERR_DOH_HTTP (connect refused, reset, protocol),
   * MTC_ERR_NOMEM. */
  int err;
  long http_status; /* 0 if no response head arrived */
  const char *body; /* NUL-terminated; "" when there is none */
  size_t body_len;
  int have_date;       /* a Date header parsed (mtci_http_date_parse) */
  int64_t date_unix;   /* its value, seconds */
  int64_t received_ms; /* clock when the transfer ended */
  const char *detail;  /* libcurl's error text, or "" (for log lines) */
} mtci_doh_response;

typedef void (*mtci_doh_done_fn)(void *ud, uint32_t id, const mtci_doh_response *r);

/* Create. 0, MTC_ERR_INVALID_ARG (no poller), MTC_ERR_NOMEM,
 * MTC_ERR_IO_TABLE_FULL (no deadline slot), MTC_ERR_UNSUPPORTED (libcurl
 * global init failed). */
int mtci_doh_fetch_new(const mtci_doh_fetch_config *cfg, mtci_doh_fetch **out);

/* Abort every transfer (no callbacks), unregister curl's fds and the
 * deadline. NULL-safe. Not from a done callback. */
void mtci_doh_fetch_free(mtci_doh_fetch *f);

/*
 * Start a transfer. done is called exactly once, unless the transfer is
 * cancelled or the fetcher freed first. *id (may be NULL) gets a non-zero
 * id. Returns 0, MTC_ERR_INVALID_ARG (no url/done), MTC_ERR_IO_TABLE_FULL
 * (MTCI_DOH_MAX_REQUESTS in flight), MTC_ERR_NOMEM.
 */
int mtci_doh_fetch_start(mtci_doh_fetch *f, const mtci_doh_request *req, mtci_doh_done_fn done,
                         void *ud, uint32_t *id);

/* Abort transfer id silently (its connection is closed). 0, or
 * MTC_ERR_INVALID_ARG if id is not in flight. Allowed from a done callback. */
int mtci_doh_fetch_cancel(mtci_doh_fetch *f, uint32_t id);

/* Run libcurl's timeout handling if the fetcher's deadline has passed. */
void mtci_doh_fetch_on_timeout(mtci_doh_fetch *f, int64_t now_ms);

/* Transfers in flight, and started since creation. */
size_t mtci_doh_fetch_active(const mtci_doh_fetch *f);
uint64_t mtci_doh_fetch_started(const mtci_doh_fetch *f);

/* curl_global_init once (see above): 0 or MTC_ERR_UNSUPPORTED. */
int mtci_doh_global_init(void);
/* curl_global_cleanup, if init ran. Process end only. */
void mtci_doh_global_cleanup(void);

#endif /* MTCI_DISCOVERY_DOH_FETCH_H */
