/*
 * The proxy's server address, pure part (context_proxy.c): a proxy link
 * (MTProxy or SOCKS5) may name its server by host name; the context dials
 * IPs only, so the name is resolved first, over plain DNS (A + AAAA) in the
 * shell (context_os.c: c-ares on the context's poller, settings.dns_servers
 * or the system's resolvers). The context reaches the shell through one
 * mtci_ctx_io hook:
 *
 *   resolve(host, &questions)   start a lookup (0) or fail at once; the
 *                               result comes back through
 *                               mtci_ctx_proxy_resolved (inside an entry
 *                               point, so the pump runs after it)
 *
 * State of the name (mtci_proxy_res):
 *
 *   fixed       an IP literal, or "localhost" / "*.localhost" (RFC 6761
 *               §6.3: 127.0.0.1 and ::1, never asked of DNS). No DNS, ever.
 *   NONE        nothing asked yet: the first dial starts a lookup.
 *   RESOLVING   a lookup is under way. Slots that need the proxy wait (no
 *               dial, no busy loop: the context's deadline for a waiting
 *               slot is pushed to the lookup's guard time; the result wakes
 *               the pump). Only one lookup at a time, whatever the number
 *               of slots.
 *   RESOLVED    a list of up to MTCI_PROXY_RES_MAX_IPS IPs. Order: the
 *               families interleaved, the preferred one first
 *               (settings.prefer_ipv6; RFC 8305 §4 with a first-family
 *               count of 1), each family in answer order; duplicates and
 *               unparsable entries dropped.
 *   FAILED      the last lookup gave nothing usable; the next one waits for
 *               the back-off.
 *
 * Rules:
 *   - Expiry: a list is used for MTCI_PROXY_RES_TTL_MS (5 min). After that
 *     the next dial starts a new lookup but keeps dialing the old list while
 *     it runs (stale while refreshing).
 *   - IP failures: a dial round through the proxy that fails entirely counts
 *     the proxy IPs it tried (MTProxy: every candidate of the round, all of
 *     them proxy IPs; SOCKS5: the one proxy IP of the round, which then
 *     rotates to the next). Once MTCI_PROXY_RES_FAILS_PER_IP x (IPs in the
 *     list) tries failed with no successful TCP connect in between, the
 *     list is distrusted: dials wait for a new lookup.
 *   - Back-off between lookups after a failed one: 1 s, doubling, capped at
 *     60 s; reset by a successful lookup.
 *   - A failed lookup while an old list exists: NXDOMAIN or "no A/AAAA
 *     record" drops the list (FAILED); any other failure (timeout,
 *     SERVFAIL, no server) keeps the old list in use (RFC 8767 "serve
 *     stale") and retries after the back-off.
 *   - A failed lookup with no list: every slot that was waiting for it
 *     (wanted, due, not connected) records one failed connect attempt with
 *     MTC_ERR_PROXY_HOST, like a dial round that failed: the usual back-off
 *     applies and, after settings.max_connect_attempts consecutive failures,
 *     the slot gives up and its requests fail with MTC_ERR_PROXY_HOST.
 *   - A lookup the shell never answers is abandoned after
 *     MTCI_PROXY_RES_GUARD_MS (a timeout failure). The c-ares lookup has its
 *     own, shorter deadline (min(connect_timeout_ms, 5 s)).
 *   - Refused at mtc_context_new (MTC_ERR_PROXY_HOST): names DNS never
 *     resolves, "*.onion" (RFC 7686) and "*.invalid" (RFC 6761 §6.4).
 *
 * Counting: every DNS question the shell reports (A and AAAA: two per
 * lookup) goes into mtc_counters.dns_queries, beside discovery's.
 */
#ifndef MTCI_CONTEXT_PROXY_H
#define MTCI_CONTEXT_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "dc.h"
#include "discovery/dns.h"
#include "transport/proxy_link.h"

#define MTCI_PROXY_RES_MAX_IPS 8
#define MTCI_PROXY_RES_IP_LEN 46
#define MTCI_PROXY_RES_TTL_MS 300000        /* re-resolve after 5 min */
#define MTCI_PROXY_RES_FAILS_PER_IP 2       /* failed tries per IP before re-resolving */
#define MTCI_PROXY_RES_BACKOFF_MS 1000      /* after the first failed lookup */
#define MTCI_PROXY_RES_BACKOFF_MAX_MS 60000
#define MTCI_PROXY_RES_GUARD_MS 30000       /* a lookup never answered */

typedef enum mtci_proxy_res_state {
  MTCI_PROXY_RES_NONE = 0,
  MTCI_PROXY_RES_RESOLVING,
  MTCI_PROXY_RES_RESOLVED,
  MTCI_PROXY_RES_FAILED
} mtci_proxy_res_state;

/* What a lookup result did (mtci_proxy_res_done). */
typedef enum mtci_proxy_res_outcome {
  MTCI_PROXY_RES_IGNORED = 0, /* no lookup was under way */
  MTCI_PROXY_RES_NEW_LIST,    /* resolved: a fresh list */
  MTCI_PROXY_RES_STALE,       /* failed, the old list stays in use */
  MTCI_PROXY_RES_NO_LIST      /* failed, nothing to dial: waiting slots fail an attempt */
} mtci_proxy_res_outcome;

typedef struct mtci_proxy_res_ip {
  char ip[MTCI_PROXY_RES_IP_LEN]; /* literal, NUL-terminated */
  int v6;
} mtci_proxy_res_ip;

typedef struct mtci_proxy_res {
  char host[MTCI_PROXY_HOST_MAX + 1];
  int fixed;                /* no DNS (literal or localhost) */
  int prefer_ipv6;
  mtci_proxy_res_state state;
  mtci_proxy_res_ip ips[MTCI_PROXY_RES_MAX_IPS];
  size_t n_ips;
  size_t cur;               /* SOCKS5 dials ips[cur]; MTProxy rounds start there */
  uint32_t ip_fails;        /* IP tries failed since the list came or a connect worked */
  int64_t expires_at;       /* RESOLVED: a new lookup from then on */
  int64_t started_at;       /* RESOLVING: when the lookup started */
  int64_t retry_at;         /* no lookup before this (after a failed one) */
  int64_t backoff_ms;       /* the pause after the next failed lookup */
  int last_err;             /* the last failed lookup's error, 0 after a success */
  uint64_t lookups, lookup_failures, dns_queries;
} mtci_proxy_res;

/* ---- the state machine (no context: unit-testable) ---------------------------------- */

/* Set up for link l. 0, or MTC_ERR_PROXY_HOST (a .onion / .invalid name). */
int mtci_proxy_res_init(mtci_proxy_res *p, const mtci_proxy_link *l, int prefer_ipv6);
/* 1 if a lookup should start now (none under way, back-off over, and no
 * list, an expired list, or a distrusted one). */
int mtci_proxy_res_need_lookup(const mtci_proxy_res *p, int64_t now);
/* A lookup started (questions: DNS questions it asked). */
void mtci_proxy_res_started(mtci_proxy_res *p, unsigned questions, int64_t now);
/* The lookup ended: err 0 with a (an empty / unusable a counts as
 * MTC_ERR_DNS_NO_DATA), or an error. */
mtci_proxy_res_outcome mtci_proxy_res_done(mtci_proxy_res *p, int err, const mtci_dns_addrs *a,
                                           int64_t now);
/* 1 if there is a list to dial now (fixed, or resolved and not distrusted;
 * an expired one counts while its refresh runs). */
int mtci_proxy_res_usable(const mtci_proxy_res *p);
/* When a dial that waits can move on: the guard time of the lookup under
 * way, else the end of the back-off. */
int64_t mtci_proxy_res_wake(const mtci_proxy_res *p);
/* k-th IP in dial order (starting at cur), NULL past the end. */
const mtci_proxy_res_ip *mtci_proxy_res_ip_at(const mtci_proxy_res *p, size_t k);
/* A dial round failed after trying `tried` proxy IPs; the next round starts
 * at the next IP. */
void mtci_proxy_res_round_failed(mtci_proxy_res *p, size_t tried);
/* A TCP connect through the proxy worked. */
void mtci_proxy_res_dial_ok(mtci_proxy_res *p);

/* ---- the context's use (context.c, context_os.c) ------------------------------------- */

struct mtc_context;

/* From mtci_ctx_init once the link is parsed: 0 or MTC_ERR_PROXY_HOST + msg. */
int mtci_ctx_proxy_init(struct mtc_context *ctx, char *msg, size_t msg_len);
/* A slot is about to start a dial round: 1 go on, 0 wait (a lookup is
 * under way or backing off; it may start one). */
int mtci_ctx_proxy_ready(struct mtc_context *ctx, int64_t now);
/* The deadline of a slot due at `at`: `at`, or later while it waits for
 * the proxy's address. */
int64_t mtci_ctx_proxy_gate(const struct mtc_context *ctx, int64_t at);
/* The lookup's result (the shell's callback; a is borrowed). */
void mtci_ctx_proxy_resolved(struct mtc_context *ctx, int err, const mtci_dns_addrs *a,
                             int64_t now);
/* MTProxy: the round's candidates (the proxy's IPs) into out; their count. */
size_t mtci_ctx_proxy_cands(const struct mtc_context *ctx, mtci_dc_addr *out, size_t cap);
/* SOCKS5: the IP to dial. */
const char *mtci_ctx_proxy_dial_ip(const struct mtc_context *ctx);
/* A dial round with n_cands candidates failed / a TCP connect worked. */
void mtci_ctx_proxy_round_failed(struct mtc_context *ctx, size_t n_cands);
void mtci_ctx_proxy_dial_ok(struct mtc_context *ctx);

#endif /* MTCI_CONTEXT_PROXY_H */
