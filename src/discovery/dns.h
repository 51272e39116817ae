/*
 * Plain DNS over c-ares, driven by the poller (DESIGN.md §3): TXT queries
 * for the simple-config name (the same records the DoH providers serve,
 * PROTOCOL.md §1.6), and A + AAAA lookups for proxy host names.
 *
 *   ARES_OPT_SOCK_STATE_CB -> mtci_poller_add / _modify / _remove
 *   fd readiness           -> ares_process_fd(read fd, write fd)
 *   ares_timeout() and each query's own deadline -> one poller deadline
 *                             slot; mtci_dns_on_timeout handles both
 * Nothing blocks; no ares_fds/select loop.
 *
 * Queries go to the configured servers (c-ares CSV, e.g. "127.0.0.1:5353"
 * for tests, "[::1]:53,8.8.8.8"), or to those of /etc/resolv.conf. Names
 * are queried as given (ares_query: no search list, no /etc/hosts).
 *
 * System configuration follows resolv.conf (c-ares 1.18 reads it only when
 * a channel is made): the resolver remembers the file's identity (device,
 * inode, size, mtime; "missing" is one too) from when it built its channel
 * and looks again when a lookup starts, at most once per
 * MTCI_DNS_RECHECK_MS. If it changed, the channel is rebuilt before that
 * lookup when no lookup awaits its callback; otherwise the channel is
 * marked stale, lookups keep using it, and it is rebuilt as soon as the
 * last of them has called back (a network change then costs at most the
 * lookups that were already running or started meanwhile). A rebuild
 * never ends a lookup the application still waits for. Lookups ended by
 * their deadline or cancelled may linger in c-ares; a rebuild drops them
 * silently. If building the new channel fails, the old one stays and the
 * next check tries again.
 *
 * Timeouts: each lookup has a hard deadline of timeout_ms from its start,
 * after which its callback gets MTC_ERR_DISCOVERY_TIMEOUT. c-ares itself
 * tries twice with a per-try timeout of timeout_ms / 2 (the second try
 * doubles it, so c-ares would give up later than our deadline; a query
 * our deadline has ended lingers inside c-ares until c-ares gives up too,
 * without callbacks).
 *
 * TXT answers: each TXT record's character-strings are joined into one
 * string (a record may hold several <=255-byte strings); records are
 * returned in answer order, as the parts of an mtci_doh_txt.
 *
 * Callbacks run from the poller fd callback or mtci_dns_on_timeout, never
 * from the call that started the lookup. They may start and cancel
 * lookups; they must not free the resolver.
 *
 * Global state: ares_library_init once per process (mtci_dns_global_init,
 * a pthread_once, called by mtci_dns_new). mtci_dns_global_cleanup is for
 * process end only.
 *
 * Counting: mtci_dns_queries counts DNS questions asked (a TXT lookup is
 * one, a host lookup two: A and AAAA); c-ares retransmissions are not
 * counted.
 */
#ifndef MTCI_DISCOVERY_DNS_H
#define MTCI_DISCOVERY_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "discovery/doh_json.h"
#include "io/poller.h"
#include "mtconn/mtconn.h"

#define MTCI_DNS_MAX_ADDRS 8
#define MTCI_DNS_DEFAULT_TIMEOUT_MS 5000
#define MTCI_DNS_MAX_REQUESTS 32 /* in flight, including lingering ones */
#define MTCI_DNS_RECHECK_MS 1000  /* resolv.conf looked at no more often */
#define MTCI_DNS_RESOLV_CONF "/etc/resolv.conf"

typedef struct mtci_dns mtci_dns;

typedef struct mtci_dns_config {
  mtci_poller *poller;             /* required; outlives the resolver */
  int64_t (*now_ms)(void *now_ud); /* the poller's clock; NULL: mtci_clock_realtime_ms */
  void *now_ud;
  const char *servers; /* c-ares server CSV (copied by c-ares), NULL: system */
  uint32_t timeout_ms; /* per lookup; 0: MTCI_DNS_DEFAULT_TIMEOUT_MS */
  /* System configuration only (servers NULL); zero for production: */
  const char *resolv_conf; /* the file c-ares reads and we watch (copied);
                              NULL: MTCI_DNS_RESOLV_CONF */
  uint16_t system_port;    /* UDP port of its name servers (tests: c-ares 1.18
                              takes no port from resolv.conf); 0: 53 */
} mtci_dns_config;

typedef struct mtci_dns_addrs {
  size_t n4, n6;
  char v4[MTCI_DNS_MAX_ADDRS][16]; /* dotted quads, answer order */
  char v6[MTCI_DNS_MAX_ADDRS][46]; /* RFC 5952 text */
} mtci_dns_addrs;

/* err: 0 (txt holds >= 1 record), MTC_ERR_DNS_NOT_FOUND, MTC_ERR_DNS_NO_DATA,
 * MTC_ERR_DNS_TOO_MANY (> 8 records or one over 1024 bytes),
 * MTC_ERR_DNS_FAILED, MTC_ERR_DISCOVERY_TIMEOUT, MTC_ERR_NOMEM. txt is
 * borrowed until the callback returns (NULL on error). */
typedef void (*mtci_dns_txt_fn)(void *ud, uint32_t id, int err, const mtci_doh_txt *txt);

/* err: 0 if either family gave an address; otherwise MTC_ERR_DNS_NOT_FOUND
 * if a query said NXDOMAIN, else MTC_ERR_DNS_NO_DATA if both said "no
 * such record", else the A query's error. addrs: borrowed, NULL on error. */
typedef void (*mtci_dns_host_fn)(void *ud, uint32_t id, int err, const mtci_dns_addrs *addrs);

/* 0, MTC_ERR_INVALID_ARG (no poller, unusable server list), MTC_ERR_NOMEM,
 * MTC_ERR_IO_TABLE_FULL (no deadline slot), MTC_ERR_UNSUPPORTED (c-ares
 * library init failed). */
int mtci_dns_new(const mtci_dns_config *cfg, mtci_dns **out);

/* Destroy the channel (pending lookups end without callbacks), unregister
 * fds and the deadline. NULL-safe. Not from a callback. */
void mtci_dns_free(mtci_dns *d);

/*
 * Start a TXT lookup / an A+AAAA lookup of name (a host name,
 * mtci_doh_name_ok; IP literals are the caller's business). fn runs once
 * unless cancelled. *id (may be NULL) gets a non-zero id. Returns 0,
 * MTC_ERR_INVALID_ARG, MTC_ERR_IO_TABLE_FULL, MTC_ERR_NOMEM, or the error
 * c-ares reported at once (e.g. MTC_ERR_DNS_FAILED: no servers).
 */
int mtci_dns_query_txt(mtci_dns *d, const char *name, mtci_dns_txt_fn fn, void *ud, uint32_t *id);
int mtci_dns_lookup_host(mtci_dns *d, const char *name, mtci_dns_host_fn fn, void *ud,
                         uint32_t *id);

/* No callback for id afterwards. 0, or MTC_ERR_INVALID_ARG (not pending). */
int mtci_dns_cancel(mtci_dns *d, uint32_t id);

/* Handle due per-lookup deadlines and c-ares timeouts. */
void mtci_dns_on_timeout(mtci_dns *d, int64_t now_ms);

/* Lookups whose callback is still to come. */
size_t mtci_dns_active(const mtci_dns *d);
/* DNS questions asked since creation (see the top). */
uint64_t mtci_dns_queries(const mtci_dns *d);
/* Channels rebuilt because resolv.conf changed. */
uint64_t mtci_dns_reloads(const mtci_dns *d);

int mtci_dns_global_init(void);     /* 0 or MTC_ERR_UNSUPPORTED */
void mtci_dns_global_cleanup(void); /* process end only */

#endif /* MTCI_DISCOVERY_DNS_H */
