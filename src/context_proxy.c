/*
 * The proxy's server address, pure part (see context_proxy.h for the
 * rules): the state of the proxy's host name, and what the context does
 * with it. The lookup itself runs in the shell behind ctx->io.resolve.
 */
#include "context_proxy.h"

#include <stdio.h>
#include <string.h>

#include "context.h"

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

/* name is `label` or ends with ".label" (ASCII case-insensitive). */
static int under(const char *name, const char *label) {
  size_t n = strlen(name), m = strlen(label);
  if (n && name[n - 1] == '.') n--; /* a fully qualified form */
  if (n < m || (n > m && name[n - m - 1] != '.')) return 0;
  for (size_t i = 0; i < m; i++)
    if (lower((unsigned char)name[n - m + i]) != label[i]) return 0;
  return 1;
}

static size_t bounded_len(const char *s, size_t cap) {
  size_t n = 0;
  while (n < cap && s[n]) n++;
  return n;
}

/* Append ip (text in a buffer of cap bytes) unless unparsable or a duplicate. */
static void put_ip(mtci_proxy_res *p, const char *ip, size_t cap, int v6) {
  if (p->n_ips >= MTCI_PROXY_RES_MAX_IPS) return;
  size_t n = bounded_len(ip, cap);
  uint8_t bin[16];
  if (n == cap || n >= MTCI_PROXY_RES_IP_LEN) return; /* unterminated or too long */
  if (v6 ? mtci_parse_ipv6(ip, n, bin) != 0 : mtci_parse_ipv4(ip, n, bin) != 0) return;
  for (size_t i = 0; i < p->n_ips; i++)
    if (p->ips[i].v6 == v6 && strcmp(p->ips[i].ip, ip) == 0) return; /* a duplicate */
  mtci_proxy_res_ip *e = &p->ips[p->n_ips++];
  memset(e, 0, sizeof *e);
  memcpy(e->ip, ip, n);
  e->v6 = v6;
}

/* The list from an answer: families interleaved, the preferred one first. */
static void take_list(mtci_proxy_res *p, const mtci_dns_addrs *a) {
  p->n_ips = 0;
  p->cur = 0;
  p->ip_fails = 0;
  size_t n4 = a->n4 < MTCI_DNS_MAX_ADDRS ? a->n4 : MTCI_DNS_MAX_ADDRS;
  size_t n6 = a->n6 < MTCI_DNS_MAX_ADDRS ? a->n6 : MTCI_DNS_MAX_ADDRS;
  size_t most = n4 > n6 ? n4 : n6;
  for (size_t i = 0; i < most; i++) {
    for (int f = 0; f < 2; f++) {
      int v6 = p->prefer_ipv6 ? f == 0 : f == 1;
      if (v6 && i < n6) put_ip(p, a->v6[i], sizeof a->v6[i], 1);
      if (!v6 && i < n4) put_ip(p, a->v4[i], sizeof a->v4[i], 0);
    }
  }
}

/* ---- the state machine -------------------------------------------------------------- */

int mtci_proxy_res_init(mtci_proxy_res *p, const mtci_proxy_link *l, int prefer_ipv6) {
  memset(p, 0, sizeof *p);
  p->prefer_ipv6 = prefer_ipv6 != 0;
  p->backoff_ms = MTCI_PROXY_RES_BACKOFF_MS;
  size_t n = bounded_len(l->host, sizeof l->host);
  if (n == 0 || n >= sizeof p->host) return MTC_ERR_PROXY_HOST;
  memcpy(p->host, l->host, n);
  if (l->family == MTCI_HOST_IPV4 || l->family == MTCI_HOST_IPV6) {
    put_ip(p, p->host, sizeof p->host, l->family == MTCI_HOST_IPV6);
    p->fixed = 1;
    p->state = MTCI_PROXY_RES_RESOLVED;
    return p->n_ips ? 0 : MTC_ERR_PROXY_HOST;
  }
  if (under(p->host, "onion") || under(p->host, "invalid")) return MTC_ERR_PROXY_HOST;
  if (under(p->host, "localhost")) {
    mtci_dns_addrs a;
    memset(&a, 0, sizeof a);
    memcpy(a.v4[0], "127.0.0.1", sizeof "127.0.0.1");
    memcpy(a.v6[0], "::1", sizeof "::1");
    a.n4 = a.n6 = 1;
    take_list(p, &a);
    p->fixed = 1;
    p->state = MTCI_PROXY_RES_RESOLVED;
  }
  return 0;
}

static int distrusted(const mtci_proxy_res *p) {
  return !p->fixed && p->ip_fails >= (uint64_t)MTCI_PROXY_RES_FAILS_PER_IP * p->n_ips;
}

int mtci_proxy_res_need_lookup(const mtci_proxy_res *p, int64_t now) {
  if (p->fixed || p->state == MTCI_PROXY_RES_RESOLVING || now < p->retry_at) return 0;
  if (p->state != MTCI_PROXY_RES_RESOLVED || p->n_ips == 0) return 1;
  return now >= p->expires_at || distrusted(p);
}

void mtci_proxy_res_started(mtci_proxy_res *p, unsigned questions, int64_t now) {
  p->state = MTCI_PROXY_RES_RESOLVING;
  p->started_at = now;
  p->lookups++;
  p->dns_queries += questions;
}

mtci_proxy_res_outcome mtci_proxy_res_done(mtci_proxy_res *p, int err, const mtci_dns_addrs *a,
                                           int64_t now) {
  if (p->fixed || p->state != MTCI_PROXY_RES_RESOLVING) return MTCI_PROXY_RES_IGNORED;
  if (err == 0) {
    if (a) take_list(p, a);
    else p->n_ips = 0;
    if (p->n_ips > 0) {
      p->state = MTCI_PROXY_RES_RESOLVED;
      p->expires_at = now + MTCI_PROXY_RES_TTL_MS;
      p->retry_at = 0;
      p->backoff_ms = MTCI_PROXY_RES_BACKOFF_MS;
      p->last_err = 0;
      return MTCI_PROXY_RES_NEW_LIST;
    }
    err = MTC_ERR_DNS_NO_DATA; /* nothing usable in the answer: as "no such record" */
  }
  p->lookup_failures++;
  p->last_err = err;
  p->retry_at = now + p->backoff_ms;
  int64_t next = p->backoff_ms * 2;
  p->backoff_ms = next > MTCI_PROXY_RES_BACKOFF_MAX_MS ? MTCI_PROXY_RES_BACKOFF_MAX_MS : next;
  int gone = err == MTC_ERR_DNS_NOT_FOUND || err == MTC_ERR_DNS_NO_DATA;
  if (p->n_ips > 0 && !gone) {
    p->state = MTCI_PROXY_RES_RESOLVED; /* serve stale until the next try */
    p->expires_at = p->retry_at;
    p->ip_fails = 0;
    return MTCI_PROXY_RES_STALE;
  }
  p->state = MTCI_PROXY_RES_FAILED;
  p->n_ips = 0;
  p->cur = 0;
  p->ip_fails = 0;
  return MTCI_PROXY_RES_NO_LIST;
}

int mtci_proxy_res_usable(const mtci_proxy_res *p) {
  if (p->fixed) return 1;
  if (p->n_ips == 0 || distrusted(p)) return 0;
  return p->state == MTCI_PROXY_RES_RESOLVED || p->state == MTCI_PROXY_RES_RESOLVING;
}

int64_t mtci_proxy_res_wake(const mtci_proxy_res *p) {
  if (p->state == MTCI_PROXY_RES_RESOLVING) return p->started_at + MTCI_PROXY_RES_GUARD_MS;
  return p->retry_at;
}

const mtci_proxy_res_ip *mtci_proxy_res_ip_at(const mtci_proxy_res *p, size_t k) {
  if (k >= p->n_ips) return NULL;
  return &p->ips[(p->cur + k) % p->n_ips];
}

void mtci_proxy_res_round_failed(mtci_proxy_res *p, size_t tried) {
  if (p->n_ips == 0) return;
  if (tried > p->n_ips) tried = p->n_ips;
  if (p->ip_fails < UINT32_MAX - MTCI_PROXY_RES_MAX_IPS) p->ip_fails += (uint32_t)tried;
  p->cur = (p->cur + 1) % p->n_ips;
}

void mtci_proxy_res_dial_ok(mtci_proxy_res *p) { p->ip_fails = 0; }

/* ---- the context's use ------------------------------------------------------------- */

#define LOGW(...) mtci_ctx_log(ctx, MTC_LOG_WARN, __VA_ARGS__)
#define LOGI(...) mtci_ctx_log(ctx, MTC_LOG_INFO, __VA_ARGS__)

int mtci_ctx_proxy_init(mtc_context *ctx, char *msg, size_t msg_len) {
  int rc = mtci_proxy_res_init(&ctx->proxy_res, &ctx->set.proxy, ctx->set.prefer_ipv6);
  if (rc && msg && msg_len)
    snprintf(msg, msg_len, "settings.proxy: the server's name is one DNS never resolves "
                           "(.onion, .invalid)");
  return rc;
}

static int needs_dns(const mtc_context *ctx) {
  return ctx->set.has_proxy && !ctx->proxy_res.fixed;
}

/* Every slot that waited for the failed lookup records a failed attempt. */
static void charge_waiting(mtc_context *ctx, int err, int64_t now) {
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    const mtci_dc *dc = ctx->dcs.dcs[i];
    for (int k = 0; k <= MTCI_CTX_MAX_MEDIA; k++) {
      mtci_slot *s = mtci_ctx_slot(ctx, i, k);
      if (!s || !s->used || s->conn || s->gave_up || now < s->retry_at) continue;
      int dialing = 0;
      for (int j = 0; j < MTCI_CTX_RACE; j++) dialing |= s->dials[j] != NULL;
      const mtci_ctx_dc *x = mtci_ctx_dcx(ctx, i);
      if (dialing || (!dc->has_perm && x->keying && x->keying != s)) continue;
      if (!mtci_ctx_slot_wanted(ctx, s)) continue;
      mtci_ctx_attempt_failed(ctx, s, err, now);
    }
  }
}

void mtci_ctx_proxy_resolved(mtc_context *ctx, int err, const mtci_dns_addrs *a, int64_t now) {
  if (ctx->closing || !needs_dns(ctx)) return;
  mtci_proxy_res *p = &ctx->proxy_res;
  mtci_proxy_res_outcome o = mtci_proxy_res_done(p, err, a, now);
  if (o == MTCI_PROXY_RES_IGNORED) return;
  ctx->changed = 1;
  if (o == MTCI_PROXY_RES_NEW_LIST) {
    LOGI("proxy %s: %zu address%s, first %s", p->host, p->n_ips, p->n_ips == 1 ? "" : "es",
         p->ips[0].ip);
    return;
  }
  LOGW("proxy %s: lookup failed: %s; %s, next lookup in %lld ms", p->host,
       mtc_strerror(p->last_err),
       o == MTCI_PROXY_RES_STALE ? "still using the last addresses" : "nothing to dial",
       (long long)(p->retry_at - now));
  if (o == MTCI_PROXY_RES_NO_LIST) charge_waiting(ctx, MTC_ERR_PROXY_HOST, now);
}

int mtci_ctx_proxy_ready(mtc_context *ctx, int64_t now) {
  if (!needs_dns(ctx)) return 1;
  mtci_proxy_res *p = &ctx->proxy_res;
  if (p->state == MTCI_PROXY_RES_RESOLVING && now >= mtci_proxy_res_wake(p))
    mtci_ctx_proxy_resolved(ctx, MTC_ERR_DISCOVERY_TIMEOUT, NULL, now); /* never answered */
  if (mtci_proxy_res_need_lookup(p, now)) {
    unsigned questions = 0;
    int rc = ctx->io.resolve ? ctx->io.resolve(ctx->io.ud, p->host, &questions)
                             : MTC_ERR_UNSUPPORTED;
    mtci_proxy_res_started(p, questions, now);
    mtci_ctx_log(ctx, MTC_LOG_DEBUG, "proxy %s: looking up its addresses", p->host);
    if (rc) mtci_ctx_proxy_resolved(ctx, rc, NULL, now);
  }
  return mtci_proxy_res_usable(p);
}

int64_t mtci_ctx_proxy_gate(const mtc_context *ctx, int64_t at) {
  if (!needs_dns(ctx) || mtci_proxy_res_usable(&ctx->proxy_res)) return at;
  return max64(at, mtci_proxy_res_wake(&ctx->proxy_res));
}

size_t mtci_ctx_proxy_cands(const mtc_context *ctx, mtci_dc_addr *out, size_t cap) {
  size_t n = 0;
  for (const mtci_proxy_res_ip *e; n < cap && (e = mtci_proxy_res_ip_at(&ctx->proxy_res, n));
       n++) {
    memset(&out[n], 0, sizeof out[n]);
    memcpy(out[n].ip, e->ip, sizeof out[n].ip < sizeof e->ip ? sizeof out[n].ip : sizeof e->ip);
    out[n].ip[sizeof out[n].ip - 1] = '\0';
    out[n].port = ctx->set.proxy.port;
    out[n].flags = e->v6 ? MTC_ADDR_IPV6 : 0u;
  }
  return n;
}

const char *mtci_ctx_proxy_dial_ip(const mtc_context *ctx) {
  const mtci_proxy_res_ip *e = mtci_proxy_res_ip_at(&ctx->proxy_res, 0);
  return e ? e->ip : ctx->set.proxy.host;
}

void mtci_ctx_proxy_round_failed(mtc_context *ctx, size_t n_cands) {
  if (!ctx->set.has_proxy) return;
  /* MTProxy: every candidate was a proxy IP; SOCKS5: one proxy IP per round */
  mtci_proxy_res_round_failed(&ctx->proxy_res,
                              ctx->set.proxy.type == MTCI_PROXY_MTPROTO ? n_cands : 1);
}

void mtci_ctx_proxy_dial_ok(mtc_context *ctx) {
  if (ctx->set.has_proxy) mtci_proxy_res_dial_ok(&ctx->proxy_res);
}
