/*
 * The proxy's host name (src/context_proxy.c, issue 6).
 *
 * Pure part: the mtci_proxy_res state machine on a fake clock - fixed
 * addresses (literals, localhost) and names DNS never resolves, the order of
 * a resolved list (families interleaved, the preferred first; RFC 8305 §4),
 * expiry after 5 min (stale while refreshing), distrust after every IP
 * failed twice, the lookup back-off (1 s doubling to 60 s), stale vs dropped
 * lists on failures, and the DNS question count.
 *
 * End to end (127.0.0.1 only): a context against the mock DC cluster whose
 * proxy link names a host that the mock DNS server (tests/mockdc/mock_dns)
 * answers with A 127.0.0.1 - through the mock MTProxy and through the mock
 * SOCKS5 server (tests/mockdc/mock_socks) - logs in; the context's dns_queries and the
 * mock's query counts show one lookup (A + AAAA) shared by two slots that
 * wanted it at once. "localhost" needs no DNS. An NXDOMAIN name fails the
 * request with MTC_ERR_PROXY_HOST after max_connect_attempts lookups spaced
 * by the back-off.
 *
 * Lifetimes and odd answers: a hand-made DNS server's 12 A + 10 AAAA records
 * with records of the wrong type and size give an 8-address list of the
 * right families; mtc_context_free while the lookup is in flight (own and
 * host loop: every fd unwatched, the host's timer cancelled), from the
 * request's callback inside the DNS callback and while c-ares still retries
 * a query our deadline ended (ASan: nothing touched after the free); a
 * lookup abandoned at the guard time and superseded, whose late answers are
 * dropped; a 1 ms lookup deadline that neither spins nor hangs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "context.h"
#include "context_env.h"
#include "context_proxy.h"
#include "context_requests.h"
#include "mock_dc.h"
#include "mock_dns.h"
#include "mock_socks.h"
#include "mtconn/mtconn.h"
#include "test.h"

/* ==== pure: the state machine ==================================================================== */

static int res_for(mtci_proxy_res *p, const char *link, int prefer_ipv6) {
  mtci_proxy_link l;
  if (mtci_proxy_link_parse(link, strlen(link), &l, NULL) != 0) return -999;
  int rc = mtci_proxy_res_init(p, &l, prefer_ipv6);
  mtci_proxy_link_free(&l);
  return rc;
}

static void addrs_set(mtci_dns_addrs *a, const char *const *v4, size_t n4, const char *const *v6,
                      size_t n6) {
  memset(a, 0, sizeof *a);
  for (size_t i = 0; i < n4; i++) snprintf(a->v4[i], sizeof a->v4[i], "%s", v4[i]);
  for (size_t i = 0; i < n6; i++) snprintf(a->v6[i], sizeof a->v6[i], "%s", v6[i]);
  a->n4 = n4;
  a->n6 = n6;
}

static const char *ip_k(const mtci_proxy_res *p, size_t k) {
  const mtci_proxy_res_ip *e = mtci_proxy_res_ip_at(p, k);
  return e ? e->ip : "";
}

TEST(fixed_addresses) {
  mtci_proxy_res p;
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=10.1.2.3&port=1080", 0), 0);
  CHECK(p.fixed && p.n_ips == 1 && !p.ips[0].v6);
  CHECK(strcmp(ip_k(&p, 0), "10.1.2.3") == 0);
  CHECK(mtci_proxy_res_usable(&p));
  CHECK(!mtci_proxy_res_need_lookup(&p, 0));
  CHECK(!mtci_proxy_res_need_lookup(&p, INT64_MAX / 2)); /* never expires */
  for (int i = 0; i < 10; i++) mtci_proxy_res_round_failed(&p, 1);
  CHECK(mtci_proxy_res_usable(&p) && !mtci_proxy_res_need_lookup(&p, 0)); /* never distrusted */
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, NULL, 5), MTCI_PROXY_RES_IGNORED);

  CHECK_EQ_INT(res_for(&p, "tg://socks?server=[2001:db8::7]&port=1080", 0), 0);
  CHECK(p.fixed && p.n_ips == 1 && p.ips[0].v6 && strcmp(p.ips[0].ip, "2001:db8::7") == 0);

  /* localhost: RFC 6761 §6.3, no DNS; the family order follows prefer_ipv6 */
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=localhost&port=1080", 0), 0);
  CHECK(p.fixed && p.n_ips == 2);
  CHECK(strcmp(ip_k(&p, 0), "127.0.0.1") == 0 && strcmp(ip_k(&p, 1), "::1") == 0);
  CHECK(!mtci_proxy_res_need_lookup(&p, 0));
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=Db.LocalHost&port=1080", 1), 0);
  CHECK(p.fixed && strcmp(ip_k(&p, 0), "::1") == 0 && strcmp(ip_k(&p, 1), "127.0.0.1") == 0);
  mtci_proxy_res_round_failed(&p, 1); /* SOCKS5: the next round dials the next IP */
  CHECK(strcmp(ip_k(&p, 0), "127.0.0.1") == 0);

  /* names DNS never resolves: refused */
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=abcdef.onion&port=1080", 0), MTC_ERR_PROXY_HOST);
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=proxy.INVALID&port=1080", 0), MTC_ERR_PROXY_HOST);
  /* ... but only as whole labels */
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=notonion&port=1080", 0), 0);
  CHECK(!p.fixed);
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=mylocalhost.com&port=1080", 0), 0);
  CHECK(!p.fixed && p.n_ips == 0);

  /* a name: nothing to dial until a lookup answers */
  CHECK_EQ_INT(res_for(&p, "tg://proxy?server=proxy.example.com&port=443&secret="
                           "00112233445566778899aabbccddeeff", 0), 0);
  CHECK(!p.fixed && p.state == MTCI_PROXY_RES_NONE && strcmp(p.host, "proxy.example.com") == 0);
  CHECK(!mtci_proxy_res_usable(&p));
  CHECK(mtci_proxy_res_need_lookup(&p, 0));
}

TEST(order) {
  static const char *const v4[] = {"1.1.1.1", "2.2.2.2", "3.3.3.3"};
  static const char *const v6[] = {"2001:db8::1", "2001:db8::2"};
  mtci_dns_addrs a;
  addrs_set(&a, v4, 3, v6, 2);
  mtci_proxy_res p;
  /* IPv4 preferred: 4 6 4 6 4 */
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=p.test&port=1", 0), 0);
  mtci_proxy_res_started(&p, 2, 100);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, 100), MTCI_PROXY_RES_NEW_LIST);
  static const char *const want4[] = {"1.1.1.1", "2001:db8::1", "2.2.2.2", "2001:db8::2", "3.3.3.3"};
  CHECK_EQ_INT(p.n_ips, 5);
  for (size_t i = 0; i < 5; i++) CHECK(strcmp(ip_k(&p, i), want4[i]) == 0);
  CHECK(p.ips[1].v6 && !p.ips[0].v6);
  CHECK(mtci_proxy_res_ip_at(&p, 5) == NULL);
  /* IPv6 preferred: 6 4 6 4 4 */
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=p.test&port=1", 1), 0);
  mtci_proxy_res_started(&p, 2, 100);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, 100), MTCI_PROXY_RES_NEW_LIST);
  static const char *const want6[] = {"2001:db8::1", "1.1.1.1", "2001:db8::2", "2.2.2.2", "3.3.3.3"};
  for (size_t i = 0; i < 5; i++) CHECK(strcmp(ip_k(&p, i), want6[i]) == 0);

  /* duplicates and unparsable entries are dropped; the list holds at most 8 */
  static const char *const bad4[] = {"9.9.9.9", "9.9.9.9", "300.1.1.1", "1.2.3"};
  addrs_set(&a, bad4, 4, NULL, 0);
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=p.test&port=1", 0), 0);
  mtci_proxy_res_started(&p, 2, 100);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, 100), MTCI_PROXY_RES_NEW_LIST);
  CHECK(p.n_ips == 1 && strcmp(ip_k(&p, 0), "9.9.9.9") == 0);
  static const char *const m4[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4",
                                   "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8"};
  static const char *const m6[] = {"::a", "::b", "::c", "::d", "::e", "::f", "::10", "::11"};
  addrs_set(&a, m4, 8, m6, 8);
  mtci_proxy_res_started(&p, 2, 200);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, 200), MTCI_PROXY_RES_NEW_LIST);
  CHECK_EQ_INT(p.n_ips, MTCI_PROXY_RES_MAX_IPS);
  CHECK(strcmp(ip_k(&p, 6), "10.0.0.4") == 0 && strcmp(ip_k(&p, 7), "::d") == 0);
  /* an answer with nothing usable is "no data" */
  addrs_set(&a, bad4 + 2, 2, NULL, 0);
  mtci_proxy_res_started(&p, 2, 300);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, 300), MTCI_PROXY_RES_NO_LIST);
  CHECK_EQ_INT(p.last_err, MTC_ERR_DNS_NO_DATA);
  CHECK(!mtci_proxy_res_usable(&p) && p.state == MTCI_PROXY_RES_FAILED);
}

TEST(expiry) {
  static const char *const v4[] = {"192.0.2.1"};
  static const char *const v4b[] = {"192.0.2.2"};
  mtci_dns_addrs a;
  addrs_set(&a, v4, 1, NULL, 0);
  mtci_proxy_res p;
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=p.test&port=1", 0), 0);
  const int64_t t0 = 1700000000000;
  CHECK(mtci_proxy_res_need_lookup(&p, t0));
  mtci_proxy_res_started(&p, 2, t0);
  CHECK(p.state == MTCI_PROXY_RES_RESOLVING);
  CHECK(!mtci_proxy_res_need_lookup(&p, t0 + 1)); /* one lookup at a time */
  CHECK(!mtci_proxy_res_usable(&p));              /* nothing to dial yet: wait */
  CHECK_EQ_INT(mtci_proxy_res_wake(&p), t0 + MTCI_PROXY_RES_GUARD_MS);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, t0 + 40), MTCI_PROXY_RES_NEW_LIST);
  CHECK(mtci_proxy_res_usable(&p));
  CHECK_EQ_INT(p.expires_at, t0 + 40 + 300000);
  CHECK(!mtci_proxy_res_need_lookup(&p, t0 + 40 + 299999));
  CHECK(mtci_proxy_res_need_lookup(&p, t0 + 40 + 300000));
  /* expired: the refresh runs while the old list is still dialed */
  int64_t t1 = t0 + 40 + 300000;
  mtci_proxy_res_started(&p, 2, t1);
  CHECK(mtci_proxy_res_usable(&p) && strcmp(ip_k(&p, 0), "192.0.2.1") == 0);
  addrs_set(&a, v4b, 1, NULL, 0);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, t1 + 5), MTCI_PROXY_RES_NEW_LIST);
  CHECK(strcmp(ip_k(&p, 0), "192.0.2.2") == 0);
  CHECK_EQ_INT(p.expires_at, t1 + 5 + 300000);
  /* a second answer for the same lookup changes nothing */
  CHECK_EQ_INT(mtci_proxy_res_done(&p, MTC_ERR_DNS_NOT_FOUND, NULL, t1 + 6), MTCI_PROXY_RES_IGNORED);
  CHECK(mtci_proxy_res_usable(&p));
  CHECK_EQ_INT(p.lookups, 2);
  CHECK_EQ_INT(p.dns_queries, 4);
}

TEST(ip_failures) {
  static const char *const v4[] = {"192.0.2.1", "192.0.2.2"};
  mtci_dns_addrs a;
  addrs_set(&a, v4, 2, NULL, 0);
  mtci_proxy_res p;
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=p.test&port=1", 0), 0);
  mtci_proxy_res_started(&p, 2, 1000);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, 1000), MTCI_PROXY_RES_NEW_LIST);
  /* SOCKS5 rounds: one IP each, rotating */
  mtci_proxy_res_round_failed(&p, 1);
  CHECK(strcmp(ip_k(&p, 0), "192.0.2.2") == 0 && strcmp(ip_k(&p, 1), "192.0.2.1") == 0);
  mtci_proxy_res_round_failed(&p, 1);
  mtci_proxy_res_round_failed(&p, 1);
  CHECK(mtci_proxy_res_usable(&p)); /* 3 of 2 x 2 */
  CHECK(!mtci_proxy_res_need_lookup(&p, 2000));
  mtci_proxy_res_dial_ok(&p); /* a connect worked: count from zero */
  for (int i = 0; i < 3; i++) mtci_proxy_res_round_failed(&p, 1);
  CHECK(mtci_proxy_res_usable(&p));
  mtci_proxy_res_round_failed(&p, 1); /* every IP failed twice */
  CHECK(!mtci_proxy_res_usable(&p));
  CHECK(mtci_proxy_res_need_lookup(&p, 2000)); /* long before the expiry */
  mtci_proxy_res_started(&p, 2, 2000);
  CHECK(!mtci_proxy_res_usable(&p)); /* distrusted: dials wait for the new list */
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, 2010), MTCI_PROXY_RES_NEW_LIST);
  CHECK(mtci_proxy_res_usable(&p) && p.ip_fails == 0);
  /* MTProxy rounds: every IP of the list in one round */
  mtci_proxy_res_round_failed(&p, 2);
  CHECK(mtci_proxy_res_usable(&p));
  mtci_proxy_res_round_failed(&p, 9); /* counted as at most the list */
  CHECK(!mtci_proxy_res_usable(&p));
}

TEST(backoff) {
  mtci_proxy_res p;
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=p.test&port=1", 0), 0);
  static const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
  int64_t now = 500000;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    CHECK(mtci_proxy_res_need_lookup(&p, now));
    mtci_proxy_res_started(&p, 2, now);
    now += 5000; /* the resolver's own timeout */
    CHECK_EQ_INT(mtci_proxy_res_done(&p, MTC_ERR_DISCOVERY_TIMEOUT, NULL, now), MTCI_PROXY_RES_NO_LIST);
    CHECK(p.state == MTCI_PROXY_RES_FAILED && !mtci_proxy_res_usable(&p));
    CHECK_EQ_INT(p.retry_at - now, want[i]);
    CHECK_EQ_INT(mtci_proxy_res_wake(&p), p.retry_at);
    CHECK(!mtci_proxy_res_need_lookup(&p, p.retry_at - 1));
    now = p.retry_at;
  }
  CHECK_EQ_INT(p.lookup_failures, 9);
  CHECK_EQ_INT(p.last_err, MTC_ERR_DISCOVERY_TIMEOUT);
  /* a success resets the back-off */
  static const char *const v4[] = {"192.0.2.1"};
  mtci_dns_addrs a;
  addrs_set(&a, v4, 1, NULL, 0);
  mtci_proxy_res_started(&p, 2, now);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, now), MTCI_PROXY_RES_NEW_LIST);
  CHECK_EQ_INT(p.last_err, 0);
  now += 300000;
  mtci_proxy_res_started(&p, 2, now);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, MTC_ERR_DNS_NOT_FOUND, NULL, now), MTCI_PROXY_RES_NO_LIST);
  CHECK_EQ_INT(p.retry_at - now, 1000);
}

TEST(stale_or_dropped) {
  static const char *const v4[] = {"192.0.2.1"};
  mtci_dns_addrs a;
  addrs_set(&a, v4, 1, NULL, 0);
  mtci_proxy_res p;
  CHECK_EQ_INT(res_for(&p, "tg://socks?server=p.test&port=1", 0), 0);
  mtci_proxy_res_started(&p, 2, 0);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, 0), MTCI_PROXY_RES_NEW_LIST);
  /* SERVFAIL / timeout on a refresh: the old list stays (serve stale) */
  int64_t t = 300000;
  mtci_proxy_res_started(&p, 2, t);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, MTC_ERR_DNS_FAILED, NULL, t), MTCI_PROXY_RES_STALE);
  CHECK(mtci_proxy_res_usable(&p) && strcmp(ip_k(&p, 0), "192.0.2.1") == 0);
  CHECK_EQ_INT(p.retry_at, t + 1000);
  CHECK(!mtci_proxy_res_need_lookup(&p, t + 999));
  CHECK(mtci_proxy_res_need_lookup(&p, t + 1000)); /* tried again after the back-off */
  mtci_proxy_res_started(&p, 2, t + 1000);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, MTC_ERR_DISCOVERY_TIMEOUT, NULL, t + 6000), MTCI_PROXY_RES_STALE);
  CHECK_EQ_INT(p.retry_at, t + 6000 + 2000);
  /* NXDOMAIN: the name is gone, so is the list */
  mtci_proxy_res_started(&p, 2, t + 8000);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, MTC_ERR_DNS_NOT_FOUND, NULL, t + 8000), MTCI_PROXY_RES_NO_LIST);
  CHECK(!mtci_proxy_res_usable(&p) && p.n_ips == 0);
  /* the same for "no A / AAAA record" */
  mtci_proxy_res_started(&p, 2, t + 20000);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, 0, &a, t + 20000), MTCI_PROXY_RES_NEW_LIST);
  mtci_proxy_res_started(&p, 2, t + 400000);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, MTC_ERR_DNS_NO_DATA, NULL, t + 400000), MTCI_PROXY_RES_NO_LIST);
  CHECK(!mtci_proxy_res_usable(&p));
  /* a lookup that could not start (no resolver) with no list */
  mtci_proxy_res_started(&p, 0, t + 500000);
  CHECK_EQ_INT(mtci_proxy_res_done(&p, MTC_ERR_UNSUPPORTED, NULL, t + 500000), MTCI_PROXY_RES_NO_LIST);
  CHECK_EQ_INT(p.lookups, 7);      /* at 0, t, t+1 s, t+8 s, t+20 s, t+400 s, t+500 s */
  CHECK_EQ_INT(p.dns_queries, 12); /* 6 x (A + AAAA), none for the one that could not start */
}

/* ==== end to end ===================================================================================== */

static void cb_log(void *ud, mtc_log_level level, const char *line) {
  (void)ud;
  if (getenv("MTC_TEST_VERBOSE")) fprintf(stderr, "    [%lld %d] %s\n", (long long)(mono_ms() % 100000), level, line);
}

typedef struct res {
  int calls;
  mtc_result_kind kind;
  int dc_id, error;
  uint8_t data[512];
  size_t len;
  int64_t at;
} res;

static void res_cb(void *ud, const mtc_result *r) {
  res *x = ud;
  if (x->calls++ == 0) {
    x->kind = r->kind;
    x->dc_id = r->dc_id;
    x->error = r->error;
    x->at = mono_ms();
    x->len = r->len < sizeof x->data ? r->len : 0;
    if (x->len) memcpy(x->data, r->data, x->len);
  }
}

/* HOST mode: the application's loop (watch_fd / set_timer, poll() here). */
static int g_host_on;
static ctx_host g_host;

static void cb_watch(void *ud, int fd, unsigned events) {
  (void)ud;
  ctx_host_watch(&g_host, fd, events);
}

static void cb_timer(void *ud, int64_t delay) {
  (void)ud;
  ctx_host_timer(&g_host, delay);
}

/* Run ctx until r has its answer (bounded). */
static int wait_res(mtc_context *ctx, res *r, int timeout_ms) {
  int64_t end = mono_ms() + timeout_ms;
  while (r->calls == 0 && mono_ms() < end) {
    if (g_host_on) ctx_host_step(&g_host, ctx, 20);
    else (void)mtc_context_run(ctx, 20);
  }
  return r->calls > 0 ? 0 : -1;
}

static int call(mtc_context *ctx, const mtc_invoke_options *o, const body *b, res *r) {
  memset(r, 0, sizeof *r);
  REQ(mtc_invoke(ctx, o, b->b, b->n, res_cb, r, NULL) == 0);
  return wait_res(ctx, r, WAIT_MS);
}

/* The demo login: sendCode on DC 2 (PHONE_MIGRATE_5), signIn on DC 5. While
 * the first request waits for the proxy's address, help.getNearestDc goes to
 * DC 1: two slots, one lookup. */
static int login(mtc_context *ctx) {
  res r0, r;
  memset(&r0, 0, sizeof r0);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_DC;
  o.dc_id = 1;
  body nb = q_nearest();
  REQ(mtc_invoke(ctx, &o, nb.b, nb.n, res_cb, &r0, NULL) == 0);
  body q = q_send_code();
  REQ(call(ctx, NULL, &q, &r) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 5);
  char hash[64];
  REQ(sent_code_hash(r.data, r.len, hash, sizeof hash) == 0);
  q = q_sign_in(hash);
  REQ(call(ctx, NULL, &q, &r) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 5);
  REQ(r.len >= 4 && mtci_le32(r.data) == MTC_TL_ID_auth_authorization);
  REQ(wait_res(ctx, &r0, WAIT_MS) == 0);
  REQ(r0.kind == MTC_RESULT_OK && r0.dc_id == 1);
  return 0;
}

/* The cluster, and a DNS server that knows the proxies' names. */
typedef struct env {
  ctx_env base;
  mock_dns *dns;
  char dns_servers[32];
} env;

static int env_start(env *e) {
  memset(e, 0, sizeof *e);
  REQ(ctx_env_start(&e->base, NULL, NULL) == 0);
  static const mock_dns_host hosts[] = {{"proxy.mtconn.test", "127.0.0.1", NULL},
                                        {"socks.mtconn.test", "127.0.0.1", NULL}};
  mock_dns_config dc = {0, NULL, NULL, 0, hosts, 2};
  REQ(mock_dns_new(&dc, &e->dns) == 0);
  snprintf(e->dns_servers, sizeof e->dns_servers, "127.0.0.1:%u", (unsigned)mock_dns_port(e->dns));
  return 0;
}

static void env_stop(env *e) {
  mock_dns_free(e->dns);
  ctx_env_stop(&e->base);
}

static void env_settings(env *e, mtc_settings *s) {
  ctx_env_settings(&e->base, s);
  s->no_auto_config = 1;
  s->dns_servers = e->dns_servers;
}

static int new_ctx(mtc_context **ctx, const mtc_settings *s) {
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_log = cb_log;
  if (g_host_on) {
    cb.watch_fd = cb_watch;
    cb.set_timer = cb_timer;
  }
  return mtc_context_new(ctx, s, &cb, NULL);
}

/* ---- the cases ---------------------------------------------------------------------------------------- */

static int via_mtproxy_name(void) {
  env e;
  REQ(env_start(&e) == 0);
  uint8_t secret[16];
  for (int i = 0; i < 16; i++) secret[i] = (uint8_t)(0x30 + i);
  ctx_mtproxy px;
  REQ(ctx_mtproxy_start(&px, &e.base, secret, NULL) == 0);
  char link[160];
  snprintf(link, sizeof link,
           "tg://proxy?server=proxy.mtconn.test&port=%u&secret=dd303132333435363738393a3b3c3d3e3f",
           (unsigned)mock_proxy_port(px.px));
  mtc_settings s;
  env_settings(&e, &s);
  s.proxy = link;
  mtc_context *ctx = NULL;
  REQ(new_ctx(&ctx, &s) == 0);
  mock_dns_stats ds;
  mock_dns_stats_get(e.dns, &ds);
  REQ(ds.queries == 0); /* nothing is asked before a connection is due */
  int rc = login(ctx);
  mtc_counters c;
  REQ(ctx_counters(ctx, &c) == 0);
  mock_dns_stats_get(e.dns, &ds);
  mock_proxy_stats ps;
  ctx_mtproxy_stats(&px, &ps);
  fprintf(stderr, "    MTProxy by name: login %s, %llu DNS queries (mock: %llu A, %llu AAAA), "
                  "%llu proxy connections, %llu connects\n",
          rc ? "FAILED" : "ok", (unsigned long long)c.dns_queries, (unsigned long long)ds.a,
          (unsigned long long)ds.aaaa, (unsigned long long)ps.accepted,
          (unsigned long long)c.connects_started);
  REQ(rc == 0);
  REQ(c.dns_queries == 2 && ds.a == 1 && ds.aaaa == 1 && ds.queries == 2);
  REQ(ps.accepted == 3 && ps.handshakes_ok == 3 && c.connects_started == 3);
  mtc_context_free(ctx);
  ctx_mtproxy_stop(&px);
  env_stop(&e);
  return 0;
}

TEST(mtproxy_by_name) { CHECK(via_mtproxy_name() == 0); }

static int via_socks_name(const char *host, int want_dns) {
  env e;
  REQ(env_start(&e) == 0);
  mock_socks *x = NULL;
  REQ(mock_socks_new(0, &x) == 0); /* a SOCKS5 server */
  char link[128];
  snprintf(link, sizeof link, "tg://socks?server=%s&port=%u", host, (unsigned)mock_socks_port(x));
  mtc_settings s;
  env_settings(&e, &s);
  s.proxy = link;
  mtc_context *ctx = NULL;
  REQ(new_ctx(&ctx, &s) == 0);
  int rc = login(ctx);
  mtc_counters c;
  REQ(ctx_counters(ctx, &c) == 0);
  mock_dns_stats ds;
  mock_dns_stats_get(e.dns, &ds);
  mock_socks_stats xs;
  mock_socks_stats_get(x, &xs);
  int acc = (int)xs.accepted;
  fprintf(stderr, "    SOCKS5 %s: login %s, %llu DNS queries (mock saw %llu), %d proxy connections\n",
          host, rc ? "FAILED" : "ok", (unsigned long long)c.dns_queries,
          (unsigned long long)ds.queries, acc);
  REQ(rc == 0);
  REQ(c.dns_queries == (uint64_t)want_dns && ds.queries == (uint64_t)want_dns);
  REQ(acc == 3 && c.connects_started == 3);
  mtc_context_free(ctx);
  mock_socks_free(x);
  env_stop(&e);
  return 0;
}

TEST(socks5_by_name) { CHECK(via_socks_name("socks.mtconn.test", 2) == 0); }
/* the same with the application's loop: c-ares' socket and timer go through
 * watch_fd / set_timer */
TEST(socks5_by_name_host_loop) {
  ctx_host_init(&g_host);
  g_host_on = 1;
  int rc = via_socks_name("socks.mtconn.test", 2);
  fprintf(stderr, "    host loop: %d on_io calls, %d timer fires, %d fds left\n", g_host.io_calls,
          g_host.timer_fires, g_host.n);
  int left = g_host.n;
  g_host_on = 0;
  CHECK(rc == 0);
  CHECK_EQ_INT(left, 0); /* every fd unwatched when the context went */
}
TEST(socks5_localhost_no_dns) { CHECK(via_socks_name("localhost", 0) == 0); }

/* NXDOMAIN: no connection, the request fails with MTC_ERR_PROXY_HOST after
 * max_connect_attempts (2) lookups, 1 s apart (the back-off). */
static int nxdomain(const char *kind) {
  env e;
  REQ(env_start(&e) == 0);
  char link[160];
  if (!strcmp(kind, "socks"))
    snprintf(link, sizeof link, "tg://socks?server=nope.mtconn.test&port=1080");
  else
    snprintf(link, sizeof link, "tg://proxy?server=nope.mtconn.test&port=443&secret="
                                "dd303132333435363738393a3b3c3d3e3f");
  mtc_settings s;
  env_settings(&e, &s);
  s.proxy = link;
  s.max_connect_attempts = 2;
  s.reconnect_initial_ms = 50;
  mtc_context *ctx = NULL;
  REQ(new_ctx(&ctx, &s) == 0);
  res r;
  body q = q_nearest();
  int64_t t0 = mono_ms();
  REQ(call(ctx, NULL, &q, &r) == 0);
  int64_t took = r.at - t0;
  mtc_counters c;
  REQ(ctx_counters(ctx, &c) == 0);
  mock_dns_stats ds;
  mock_dns_stats_get(e.dns, &ds);
  fprintf(stderr, "    %s NXDOMAIN: error %d after %lld ms, %llu DNS queries (mock NXDOMAIN %llu), "
                  "%llu connects\n",
          kind, r.error, (long long)took, (unsigned long long)c.dns_queries,
          (unsigned long long)ds.nxdomain, (unsigned long long)c.connects_started);
  REQ(r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_PROXY_HOST);
  REQ(took >= 950 && took < 8000);
  REQ(c.dns_queries == 4 && ds.nxdomain == 4 && ds.queries == 4);
  REQ(c.connects_started == 0);
  /* new work: the slot tries again (one more lookup once the back-off ends) */
  res r2;
  REQ(call(ctx, NULL, &q, &r2) == 0);
  REQ(r2.kind == MTC_RESULT_ERROR && r2.error == MTC_ERR_PROXY_HOST);
  REQ(ctx_counters(ctx, &c) == 0);
  REQ(c.dns_queries >= 6 && c.dns_queries <= 8);
  mtc_context_free(ctx);
  env_stop(&e);
  return 0;
}

static int64_t thread_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The cluster with a DNS server that never answers, and settings for a
 * SOCKS5 proxy named socks.mtconn.test (so every dial waits on a lookup). */
static int silent_socks_env(env *e, mtc_settings *s) {
  if (env_start(e) != 0) return -1;
  mock_dns_set_drop(e->dns, 1);
  env_settings(e, s);
  s->proxy = "tg://socks?server=socks.mtconn.test&port=1080";
  return 0;
}

/* A DNS server that never answers: the slot waits without spinning (the
 * context's next timeout stays in the future, the loop sleeps), the lookup
 * times out after min(connect_timeout_ms, 5 s), and with one attempt
 * allowed the request fails with MTC_ERR_PROXY_HOST. */
static int silent_dns(void) {
  env e;
  mtc_settings s;
  REQ(silent_socks_env(&e, &s) == 0);
  s.max_connect_attempts = 1;
  s.connect_timeout_ms = 1000;
  mtc_context *ctx = NULL;
  REQ(new_ctx(&ctx, &s) == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  int64_t t0 = mono_ms();
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, res_cb, &r, NULL) == 0);
  int64_t next = mtc_context_next_timeout_ms(ctx);
  int64_t cpu0 = thread_cpu_ms();
  int rounds = 0;
  while (r.calls == 0 && mono_ms() - t0 < WAIT_MS) {
    (void)mtc_context_run(ctx, 50);
    rounds++;
  }
  int64_t cpu = thread_cpu_ms() - cpu0;
  int64_t took = r.at - t0;
  mtc_counters c;
  REQ(ctx_counters(ctx, &c) == 0);
  fprintf(stderr, "    silent DNS: error %d after %lld ms, %d loop rounds, %lld ms CPU, first timeout "
                  "%lld ms, %llu DNS questions\n",
          r.error, (long long)took, rounds, (long long)cpu, (long long)next,
          (unsigned long long)c.dns_queries);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_PROXY_HOST);
  REQ(next > 0);                   /* waiting, not due */
  REQ(took >= 950 && took < 4000); /* the lookup's own deadline */
  REQ(cpu < 300);                  /* the loop slept: a busy loop would burn the whole second */
  REQ(c.dns_queries == 2 && c.connects_started == 0);
  mtc_context_free(ctx);
  env_stop(&e);
  return 0;
}

TEST(silent_dns) { CHECK(silent_dns() == 0); }

TEST(mtproxy_nxdomain) { CHECK(nxdomain("mtproxy") == 0); }
TEST(socks5_nxdomain) { CHECK(nxdomain("socks") == 0); }

TEST(refused_names) {
  env e;
  CHECK(env_start(&e) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  mtc_context *ctx = NULL;
  s.proxy = "tg://socks?server=hidden.onion&port=9050";
  CHECK_EQ_INT(new_ctx(&ctx, &s), MTC_ERR_PROXY_HOST);
  s.proxy = "tg://proxy?server=x.invalid&port=443&secret=00112233445566778899aabbccddeeff";
  CHECK_EQ_INT(new_ctx(&ctx, &s), MTC_ERR_PROXY_HOST);
  CHECK(ctx == NULL);
  s.proxy = "tg://proxy?server=proxy.example.com&port=443&secret=00112233445566778899aabbccddeeff";
  CHECK_EQ_INT(new_ctx(&ctx, &s), 0); /* accepted; nothing asked yet */
  mtc_counters c;
  CHECK_EQ_INT(ctx_counters(ctx, &c), 0);
  CHECK_EQ_INT(c.dns_queries, 0);
  mtc_context_free(ctx);
  env_stop(&e);
}

/* ==== lifetimes and odd answers ===================================================================== */

/* A hand-made DNS server for answers mock_dns cannot give (more than 8
 * records, records of the other family, wrong RDLENGTHs): a UDP socket on
 * 127.0.0.1 that the test serves between rounds of the context's loop.
 * Answer layout as in mock_dns.h: the question echoed, then RRs
 * c0 0c TYPE CLASS(IN) TTL(300) RDLENGTH RDATA. */
typedef struct raw_rr {
  uint16_t type;
  uint8_t len;
  uint8_t data[16];
} raw_rr;

typedef struct raw_dns {
  int fd;
  uint16_t port;
  raw_rr a_ans[20], aaaa_ans[20]; /* the answers to an A / AAAA question */
  size_t n_a, n_aaaa;
  int queries;
} raw_dns;

static int raw_dns_start(raw_dns *r) {
  memset(r, 0, sizeof *r);
  r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQ(r->fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQ(bind(r->fd, (struct sockaddr *)&sa, sizeof sa) == 0);
  socklen_t sl = sizeof sa;
  REQ(getsockname(r->fd, (struct sockaddr *)&sa, &sl) == 0);
  r->port = ntohs(sa.sin_port);
  return 0;
}

static void raw_dns_stop(raw_dns *r) {
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
}

static void raw_rr_add(raw_rr *list, size_t *n, int v6, const char *ip) {
  raw_rr *e = &list[(*n)++];
  e->type = v6 ? 28 : 1;
  e->len = v6 ? 16 : 4;
  (void)inet_pton(v6 ? AF_INET6 : AF_INET, ip, e->data);
}

/* Answer every query waiting on the socket. */
static void raw_dns_serve(raw_dns *r) {
  for (int guard = 0; guard < 16; guard++) {
    uint8_t q[512], out[1024];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(r->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n < 12) return;
    size_t o = 12;
    while (o < (size_t)n && q[o]) o += 1u + q[o]; /* QNAME labels */
    if (o + 5 > (size_t)n) continue;
    o++;
    uint16_t qtype = (uint16_t)(q[o] << 8 | q[o + 1]);
    o += 4;
    r->queries++;
    const raw_rr *list = qtype == 28 ? r->aaaa_ans : r->a_ans;
    size_t cnt = qtype == 28 ? r->n_aaaa : r->n_a;
    memcpy(out, q, o);
    out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, RD copied */
    out[3] = 0x80;                            /* RA, NOERROR */
    out[6] = 0;
    out[7] = (uint8_t)cnt;
    memset(out + 8, 0, 4);
    size_t len = o;
    for (size_t i = 0; i < cnt; i++) {
      static const uint8_t ttl_class[] = {0x00, 0x01, 0x00, 0x00, 0x01, 0x2c};
      out[len++] = 0xc0;
      out[len++] = 0x0c;
      out[len++] = (uint8_t)(list[i].type >> 8);
      out[len++] = (uint8_t)list[i].type;
      memcpy(out + len, ttl_class, sizeof ttl_class);
      len += sizeof ttl_class;
      out[len++] = 0;
      out[len++] = list[i].len;
      memcpy(out + len, list[i].data, list[i].len);
      len += list[i].len;
    }
    (void)sendto(r->fd, out, len, 0, (struct sockaddr *)&from, fl);
  }
}

/* A: 12 A records, then an AAAA record and an A record with RDLENGTH 16;
 * AAAA: 10 AAAA records, an A record, an AAAA record with RDLENGTH 4. The
 * list: 8 entries, families alternating (IPv4 first), each IP under its own
 * family, first records first, nothing from a record of the wrong type or
 * size. */
static int many_and_odd(void) {
  raw_dns r;
  REQ(raw_dns_start(&r) == 0);
  char ip[64];
  for (int i = 1; i <= 12; i++) {
    snprintf(ip, sizeof ip, "127.0.0.%d", i);
    raw_rr_add(r.a_ans, &r.n_a, 0, ip);
  }
  raw_rr_add(r.a_ans, &r.n_a, 1, "2001:db8::99");
  raw_rr_add(r.a_ans, &r.n_a, 0, "127.0.0.99");
  r.a_ans[r.n_a - 1].len = 16; /* an A record 16 bytes long */
  for (int i = 1; i <= 10; i++) {
    snprintf(ip, sizeof ip, "2001:db8::%d", i);
    raw_rr_add(r.aaaa_ans, &r.n_aaaa, 1, ip);
  }
  raw_rr_add(r.aaaa_ans, &r.n_aaaa, 0, "127.0.0.98");
  raw_rr_add(r.aaaa_ans, &r.n_aaaa, 1, "2001:db8::98");
  r.aaaa_ans[r.n_aaaa - 1].len = 4; /* an AAAA record 4 bytes long */
  char servers[32];
  snprintf(servers, sizeof servers, "127.0.0.1:%u", (unsigned)r.port);
  ctx_env base;
  REQ(ctx_env_start(&base, NULL, NULL) == 0);
  mtc_settings s;
  ctx_env_settings(&base, &s);
  s.no_auto_config = 1;
  s.dns_servers = servers;
  s.proxy = "tg://socks?server=many.mtconn.test&port=9";
  mtc_context *ctx = NULL;
  REQ(new_ctx(&ctx, &s) == 0);
  res x;
  memset(&x, 0, sizeof x);
  body q = q_nearest();
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, res_cb, &x, NULL) == 0);
  const mtci_proxy_res *p = &ctx->proxy_res;
  int64_t end = mono_ms() + 3000;
  while (p->state != MTCI_PROXY_RES_RESOLVED && p->state != MTCI_PROXY_RES_FAILED && mono_ms() < end) {
    raw_dns_serve(&r);
    (void)mtc_context_run(ctx, 5);
  }
  fprintf(stderr, "    12 A + 10 AAAA (and odd records): state %d, %zu addresses, %d queries\n",
          (int)p->state, p->n_ips, r.queries);
  int rc = 0;
  if (p->state != MTCI_PROXY_RES_RESOLVED || p->n_ips != MTCI_PROXY_RES_MAX_IPS) rc = -1;
  for (size_t i = 0; rc == 0 && i < p->n_ips; i++) {
    char want[64];
    if (i % 2 == 0) snprintf(want, sizeof want, "127.0.0.%zu", i / 2 + 1);
    else snprintf(want, sizeof want, "2001:db8::%zu", i / 2 + 1);
    if (strcmp(p->ips[i].ip, want) != 0 || p->ips[i].v6 != (int)(i % 2)) {
      fprintf(stderr, "    ips[%zu] = %s (v6 %d), want %s\n", i, p->ips[i].ip, p->ips[i].v6, want);
      rc = -1;
    }
  }
  mtc_context_free(ctx);
  raw_dns_stop(&r);
  ctx_env_stop(&base);
  REQ(rc == 0);
  REQ(x.calls == 1 && x.error == MTC_ERR_CANCELLED);
  return 0;
}

TEST(many_and_odd_answers) { CHECK(many_and_odd() == 0); }

/* ---- mtc_context_free while the proxy's lookup is under way ---- */

/* The host loop's timer state as set_timer left it (HOST mode). */
static int g_timer_calls;
static void cb_timer_count(void *ud, int64_t delay) {
  g_timer_calls++;
  cb_timer(ud, delay);
}

static int new_ctx_counted(mtc_context **ctx, const mtc_settings *s) {
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_log = cb_log;
  if (g_host_on) {
    cb.watch_fd = cb_watch;
    cb.set_timer = cb_timer_count;
  }
  return mtc_context_new(ctx, s, &cb, NULL);
}

static void step(mtc_context *ctx) {
  if (g_host_on) ctx_host_step(&g_host, ctx, 10);
  else (void)mtc_context_run(ctx, 10);
}

/* A silent DNS server: the query is in flight when the context goes. Its
 * request ends CANCELLED once; nothing runs afterwards (ASan: no use after
 * free from c-ares' ARES_EDESTRUCTION callbacks); HOST mode: every fd
 * unwatched and the timer cancelled. */
static int free_in_flight(void) {
  env e;
  mtc_settings s;
  REQ(silent_socks_env(&e, &s) == 0);
  mtc_context *ctx = NULL;
  g_timer_calls = 0;
  REQ(new_ctx_counted(&ctx, &s) == 0);
  res x, y;
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  body q = q_nearest();
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, res_cb, &x, NULL) == 0);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_DC;
  o.dc_id = 3;
  REQ(mtc_invoke(ctx, &o, q.b, q.n, res_cb, &y, NULL) == 0);
  mock_dns_stats ds;
  int64_t end = mono_ms() + 3000;
  do {
    step(ctx);
    mock_dns_stats_get(e.dns, &ds);
  } while (ds.dropped < 2 && mono_ms() < end);
  REQ(ds.dropped >= 2); /* A and AAAA asked, never answered */
  REQ(x.calls == 0 && y.calls == 0);
  int fds = g_host.n;
  mtc_context_free(ctx);
  if (g_host_on)
    fprintf(stderr, "    freed during the lookup (host loop): %d fds watched before, %d after, "
                    "%d set_timer calls, timer %s\n",
            fds, g_host.n, g_timer_calls, g_host.timer_at < 0 ? "cancelled" : "still armed");
  REQ(x.calls == 1 && x.error == MTC_ERR_CANCELLED);
  REQ(y.calls == 1 && y.error == MTC_ERR_CANCELLED);
  if (g_host_on) {
    REQ(fds >= 1);       /* c-ares' UDP socket */
    REQ(g_host.n == 0);  /* ... unwatched */
    REQ(g_host.timer_at < 0); /* no on_timeout for a freed context */
  }
  env_stop(&e);
  return 0;
}

TEST(free_during_lookup) { CHECK(free_in_flight() == 0); }
TEST(free_during_lookup_host_loop) {
  ctx_host_init(&g_host);
  g_host_on = 1;
  int rc = free_in_flight();
  g_host_on = 0;
  CHECK(rc == 0);
}

/* The result callback frees the context. With one attempt allowed the
 * request fails from inside the DNS callback (NXDOMAIN: c-ares' read of the
 * answer) or from the lookup's deadline while c-ares still retries (silent
 * server, connect_timeout_ms 200: our deadline 200 ms, c-ares gives up at
 * 100 + 200 ms); the free waits for the end of that call and c-ares ends
 * the lingering query with ARES_EDESTRUCTION. */
typedef struct free_box {
  mtc_context *ctx;
  res r;
} free_box;

static void res_cb_free(void *ud, const mtc_result *r) {
  free_box *b = ud;
  res_cb(&b->r, r);
  mtc_context_free(b->ctx);
  b->ctx = NULL;
}

static int free_from_callback(int silent) {
  env e;
  REQ(env_start(&e) == 0);
  if (silent) mock_dns_set_drop(e.dns, 1);
  mtc_settings s;
  env_settings(&e, &s);
  s.proxy = silent ? "tg://socks?server=socks.mtconn.test&port=1080"
                   : "tg://socks?server=nope.mtconn.test&port=1080";
  s.max_connect_attempts = 1;
  s.connect_timeout_ms = 200;
  free_box b;
  memset(&b, 0, sizeof b);
  REQ(new_ctx_counted(&b.ctx, &s) == 0);
  body q = q_nearest();
  REQ(mtc_invoke(b.ctx, NULL, q.b, q.n, res_cb_free, &b, NULL) == 0);
  int64_t t0 = mono_ms();
  while (b.ctx && mono_ms() - t0 < 3000) step(b.ctx);
  fprintf(stderr, "    freed from the result (%s DNS, %s loop): error %d after %lld ms, %d fds left\n",
          silent ? "silent" : "NXDOMAIN", g_host_on ? "host" : "own", b.r.error,
          (long long)(b.r.at - t0), g_host.n);
  REQ(b.ctx == NULL && b.r.calls == 1);
  REQ(b.r.kind == MTC_RESULT_ERROR && b.r.error == MTC_ERR_PROXY_HOST);
  if (silent) REQ(b.r.at - t0 < 290); /* before c-ares gave up: its query lingered */
  if (g_host_on) REQ(g_host.n == 0 && g_host.timer_at < 0);
  env_stop(&e);
  return 0;
}

TEST(free_from_dns_callback) {
  CHECK(free_from_callback(0) == 0);
  CHECK(free_from_callback(1) == 0);
  ctx_host_init(&g_host);
  g_host_on = 1;
  int rc0 = free_from_callback(0), rc1 = free_from_callback(1);
  g_host_on = 0;
  CHECK(rc0 == 0 && rc1 == 0);
}

/* ---- a lookup superseded after the guard time ---- */

/* The application's clock, which the test moves forward. */
static int64_t g_clock_offset;
static int64_t cb_now(void *ud) {
  (void)ud;
  return mono_ms() + g_clock_offset;
}

/* The context's guard (30 s) abandons a lookup the resolver has not ended
 * (here: the clock jumps while the queries sit unanswered, and only
 * mtc_invoke runs the pump, not the resolver's timers); after the back-off
 * the next lookup cancels the old one in c-ares. Then the server answers
 * both (c-ares retries): the old lookup's late answers are dropped without
 * a callback, the new one gives the list. */
static int superseded(void) {
  env e;
  mtc_settings s;
  REQ(silent_socks_env(&e, &s) == 0);
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_log = cb_log;
  cb.now_ms = cb_now;
  g_clock_offset = 0;
  mtc_context *ctx = NULL;
  REQ(mtc_context_new(&ctx, &s, &cb, NULL) == 0);
  const mtci_proxy_res *p = &ctx->proxy_res;
  res x, y, z;
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  memset(&z, 0, sizeof z);
  body q = q_nearest();
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, res_cb, &x, NULL) == 0);
  REQ(p->state == MTCI_PROXY_RES_RESOLVING && p->lookups == 1);
  (void)mtc_context_run(ctx, 0);
  g_clock_offset += MTCI_PROXY_RES_GUARD_MS + 1000;
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, res_cb, &y, NULL) == 0); /* the pump: the guard ends it */
  REQ(p->state == MTCI_PROXY_RES_FAILED && p->lookup_failures == 1);
  REQ(p->last_err == MTC_ERR_DISCOVERY_TIMEOUT);
  g_clock_offset += 1500; /* after the back-off (and the slot's reconnect delay) */
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, res_cb, &z, NULL) == 0);
  REQ(p->state == MTCI_PROXY_RES_RESOLVING && p->lookups == 2);
  mock_dns_set_drop(e.dns, 0);
  mock_dns_stats ds;
  int64_t end = mono_ms() + 8000;
  do {
    (void)mtc_context_run(ctx, 20);
    mock_dns_stats_get(e.dns, &ds);
  } while ((p->state == MTCI_PROXY_RES_RESOLVING || ds.a < 2 || ds.aaaa < 2) && mono_ms() < end);
  mtc_counters c;
  REQ(ctx_counters(ctx, &c) == 0);
  fprintf(stderr, "    superseded lookup: state %d, %llu lookups, %llu failed, %llu DNS questions, "
                  "mock answered %llu A + %llu AAAA of %llu queries\n",
          (int)p->state, (unsigned long long)p->lookups, (unsigned long long)p->lookup_failures,
          (unsigned long long)c.dns_queries, (unsigned long long)ds.a, (unsigned long long)ds.aaaa,
          (unsigned long long)ds.queries);
  REQ(p->state == MTCI_PROXY_RES_RESOLVED && p->n_ips == 1 && strcmp(p->ips[0].ip, "127.0.0.1") == 0);
  REQ(ds.a >= 2 && ds.aaaa >= 2); /* the old lookup's retries were answered too */
  REQ(p->lookups == 2 && p->lookup_failures == 1 && c.dns_queries == 4);
  mtc_context_free(ctx);
  REQ(x.calls == 1 && y.calls == 1 && z.calls == 1);
  g_clock_offset = 0;
  env_stop(&e);
  return 0;
}

TEST(superseded_lookup) { CHECK(superseded() == 0); }

/* connect_timeout_ms 1: the lookup's deadline is 1 ms (c-ares' own try 50
 * ms). Silent server, two attempts: each lookup ends at its deadline, the
 * second after the 1 s back-off, then the request fails; the loop sleeps
 * meanwhile. */
static int tiny_deadline(void) {
  env e;
  mtc_settings s;
  REQ(silent_socks_env(&e, &s) == 0);
  s.max_connect_attempts = 2;
  s.connect_timeout_ms = 1;
  s.reconnect_initial_ms = 50;
  mtc_context *ctx = NULL;
  REQ(new_ctx(&ctx, &s) == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  int64_t t0 = mono_ms();
  int64_t cpu0 = thread_cpu_ms();
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, res_cb, &r, NULL) == 0);
  REQ(wait_res(ctx, &r, 5000) == 0);
  int64_t cpu = thread_cpu_ms() - cpu0;
  mtc_counters c;
  REQ(ctx_counters(ctx, &c) == 0);
  fprintf(stderr, "    1 ms lookup deadline: error %d after %lld ms, %lld ms CPU, %llu DNS questions\n",
          r.error, (long long)(r.at - t0), (long long)cpu, (unsigned long long)c.dns_queries);
  REQ(r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_PROXY_HOST);
  REQ(r.at - t0 >= 950 && r.at - t0 < 3000);
  REQ(c.dns_queries == 4 && c.connects_started == 0);
  REQ(cpu < 300);
  mtc_context_free(ctx);
  env_stop(&e);
  return 0;
}

TEST(tiny_lookup_deadline) { CHECK(tiny_deadline() == 0); }

TEST_MAIN("context_proxy", CASE(fixed_addresses), CASE(order), CASE(expiry), CASE(ip_failures),
          CASE(backoff), CASE(stale_or_dropped), CASE(refused_names), CASE(mtproxy_by_name),
          CASE(socks5_by_name), CASE(socks5_by_name_host_loop), CASE(socks5_localhost_no_dns), CASE(mtproxy_nxdomain),
          CASE(socks5_nxdomain), CASE(silent_dns), CASE(many_and_odd_answers),
          CASE(free_during_lookup), CASE(free_during_lookup_host_loop), CASE(free_from_dns_callback),
          CASE(superseded_lookup), CASE(tiny_lookup_deadline))
