/*
 * Endpoint discovery over real loopback sockets: the race (pure), the DoH
 * fetcher (libcurl multi on the poller), the DNS resolver (c-ares on the
 * poller) and the discovery object, against the mock DoH servers
 * (tests/mockdc/mock_doh.*) and the mock DNS server (mock_dns.*).
 *
 * The expected endpoints are the rules the test hands to the mocks; the
 * mocks encrypt them with a TEST key whose public half the discovery gets.
 * The poller runs in OWN mode with a bounded loop, and once in HOST mode
 * with a small poll() loop of the test's own (watch_fd / set_timer).
 * Every wait is bounded by a wall-clock limit: a bug fails, never hangs.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discovery/discovery.h"
#include "discovery/doh_request.h"
#include "discovery/race.h"
#include "io/clock.h"
#include "mock_dns.h"
#include "mock_doh.h"
#include "mock_loop.h"
#include "test.h"

#define LIMIT_MS 4000 /* the longest any case waits for a result */

/* ---- data ------------------------------------------------------------------------------ */

static const uint8_t k_secret_ee[] = {
    0xee, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
    0x1f, 'w',  'w',  'w',  '.',  'g',  'o',  'o',  'g',  'l',  'e',  '.',  'c',  'o',  'm'};
#define ALT_PORT_A 24431
#define ALT_PORT_B 24432

/* Config A (served by the "Google" mock). */
static const mock_sconf_ip k_ips_a2[] = {
    {{127, 0, 0, 1}, ALT_PORT_A, k_secret_ee, sizeof k_secret_ee},
    {{127, 0, 0, 1}, ALT_PORT_B, NULL, 0}};
static const mock_sconf_ip k_ips_a4[] = {{{127, 0, 0, 2}, 443, NULL, 0}};
static const mock_sconf_rule k_rules_a[] = {{"", 2, k_ips_a2, 2}, {"+44", 4, k_ips_a4, 1}};
/* Config B (served by the "Cloudflare" mock in some cases). */
static const mock_sconf_ip k_ips_b[] = {{{10, 0, 0, 5}, 2222, NULL, 0}};
static const mock_sconf_rule k_rules_b[] = {{"", 5, k_ips_b, 1}};

/* Compare a decoded config with rules (all rules applying, or only those
 * whose phone_prefix_rules is "" when only_empty_rules). */
static int same_endpoints(const mtci_simple_config *c, const mock_sconf_rule *rules, size_t n,
                          int only_empty_rules) {
  size_t k = 0;
  for (size_t r = 0; r < n; r++) {
    if (only_empty_rules && rules[r].phone_prefix_rules && rules[r].phone_prefix_rules[0]) continue;
    for (size_t i = 0; i < rules[r].n_ips; i++, k++) {
      if (k >= c->count) return 0;
      const mtci_sconf_endpoint *e = &c->ep[k];
      const mock_sconf_ip *want = &rules[r].ips[i];
      char ip[16];
      snprintf(ip, sizeof ip, "%u.%u.%u.%u", want->ip[0], want->ip[1], want->ip[2], want->ip[3]);
      if (e->dc_id != rules[r].dc_id || strcmp(e->ipv4, ip) != 0 || e->port != want->port ||
          e->secret_len != want->secret_len ||
          (want->secret_len && memcmp(e->secret, want->secret, want->secret_len) != 0))
        return 0;
    }
  }
  return k == c->count;
}

/* ---- environment ------------------------------------------------------------------------- */

struct result {
  int got;
  int calls;
  int err;
  mtci_source_kind source;
  char endpoint[128];
  mtci_simple_config cfg;
  int have_offset;
  int64_t offset;
  int64_t elapsed;
};

struct env {
  mock_loop *loop;
  mock_doh *g, *c;
  uint16_t pg, pc;
  mock_dns *dns;
  uint16_t pd;
  mtci_rsa_key pub;
  mtci_poller poller;
  int poller_up;
  mtci_discovery *d;
  struct result res;
  char gurl[64], curl[64], servers[32];
  mtci_doh_endpoint ge, ce;
  char log[8192];
  size_t log_len;
};

static void cleanup_at_exit(void) { mtci_discovery_global_cleanup(); }

static void on_log(void *ud, int level, const char *line) {
  struct env *e = ud;
  (void)level;
  size_t n = strlen(line);
  if (e->log_len + n + 2 > sizeof e->log) return;
  memcpy(e->log + e->log_len, line, n);
  e->log_len += n;
  e->log[e->log_len++] = '\n';
  e->log[e->log_len] = '\0';
  if (getenv("MTC_TEST_VERBOSE")) fprintf(stderr, "    log: %s\n", line);
}

static void on_result(void *ud, const mtci_discovery_result *r) {
  struct env *e = ud;
  e->res.calls++;
  e->res.got = 1;
  e->res.err = r->err;
  e->res.source = r->source;
  e->res.have_offset = r->have_clock_offset;
  e->res.offset = r->clock_offset_s;
  e->res.elapsed = r->elapsed_ms;
  if (r->endpoint) snprintf(e->res.endpoint, sizeof e->res.endpoint, "%s", r->endpoint);
  if (r->config) e->res.cfg = *r->config;
}

struct env_opts {
  const mock_sconf_rule *rules_g, *rules_c;
  size_t n_rules_g, n_rules_c;
  int64_t clock_offset_g; /* seconds, the Google mock's clock */
};

static int env_up(struct env *e, const struct env_opts *o) {
  static int registered;
  if (!registered) {
    registered = 1;
    atexit(cleanup_at_exit);
  }
  memset(e, 0, sizeof *e);
  if (mock_loop_new(&e->loop) < 0) return -1;
  mock_doh_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.rules = o && o->rules_g ? o->rules_g : k_rules_a;
  cfg.n_rules = o && o->rules_g ? o->n_rules_g : 2;
  cfg.clock_offset = o ? o->clock_offset_g : 0;
  if (mock_doh_new(e->loop, &cfg, &e->g) != 0) return -1;
  cfg.rules = o && o->rules_c ? o->rules_c : k_rules_a;
  cfg.n_rules = o && o->rules_c ? o->n_rules_c : 2;
  cfg.clock_offset = 0;
  if (mock_doh_new(e->loop, &cfg, &e->c) != 0) return -1;
  e->pg = mock_doh_port(e->g);
  e->pc = mock_doh_port(e->c);
  e->pub = *mock_doh_public_key(e->g);
  /* The DNS mock serves Google's text, split like the published record and
   * short part first. */
  char long_part[MOCK_DOH_LONG_PART + 1], short_part[MTCI_SCONF_B64_LEN];
  const char *txt = mock_doh_txt(e->g);
  memcpy(long_part, txt, MOCK_DOH_LONG_PART);
  long_part[MOCK_DOH_LONG_PART] = 0;
  snprintf(short_part, sizeof short_part, "%s", txt + MOCK_DOH_LONG_PART);
  const char *recs[2] = {short_part, long_part};
  static const mock_dns_host hosts[] = {{"proxy.mock.test", "127.0.0.1", "::1"},
                                        {"v4only.mock.test", "127.0.0.7", NULL}};
  mock_dns_config dc = {0, NULL, recs, 2, hosts, 2};
  if (mock_dns_new(&dc, &e->dns) != 0) return -1;
  e->pd = mock_dns_port(e->dns);
  snprintf(e->gurl, sizeof e->gurl, "http://127.0.0.1:%u", e->pg);
  snprintf(e->curl, sizeof e->curl, "http://127.0.0.1:%u/", e->pc); /* a trailing '/' is fine */
  snprintf(e->servers, sizeof e->servers, "127.0.0.1:%u", e->pd);
  e->ge = (mtci_doh_endpoint){e->gurl, NULL};
  e->ce = (mtci_doh_endpoint){e->curl, NULL};
  if (mtci_poller_init(&e->poller, NULL) != 0) return -1;
  e->poller_up = 1;
  return mock_loop_start_thread(e->loop);
}

static void env_down(struct env *e) {
  mtci_discovery_free(e->d);
  e->d = NULL;
  if (e->poller_up) mtci_poller_free(&e->poller);
  if (e->loop) mock_loop_stop_thread(e->loop);
  mock_doh_free(e->g);
  mock_doh_free(e->c);
  mock_loop_free(e->loop);
  mock_dns_free(e->dns);
  mtci_simple_config_free(&e->res.cfg);
  memset(e, 0, sizeof *e);
}

/* Test settings: both mocks, plain DNS off, short timeouts. */
static void test_settings(struct env *e, mtci_discovery_settings *s) {
  mtci_discovery_settings_default(s);
  s->google = &e->ge;
  s->n_google = 1;
  s->cloudflare = &e->ce;
  s->n_cloudflare = 1;
  s->use_plain_dns = 0;
  s->dns_servers = e->servers;
  s->key = &e->pub;
  s->stagger_ms = 300;
  s->connect_timeout_ms = 1000;
  s->request_timeout_ms = 2000;
  s->total_timeout_ms = 3000;
  s->dns_timeout_ms = 1000;
  s->log = on_log;
  s->log_ud = e;
}

static int disc_new(struct env *e, const mtci_discovery_settings *s) {
  return mtci_discovery_new(&e->poller, s, on_result, e, &e->d);
}

static void set_switches(struct env *e, mock_doh *d, const mock_doh_switches *sw) {
  mock_loop_lock(e->loop);
  mock_doh_set_switches(d, sw);
  mock_loop_unlock(e->loop);
}

static mock_doh_stats doh_stats(struct env *e, mock_doh *d) {
  mock_doh_stats st;
  mock_loop_lock(e->loop);
  mock_doh_stats_get(d, &st);
  mock_loop_unlock(e->loop);
  return st;
}

static size_t open_conns(struct env *e) {
  mock_loop_lock(e->loop);
  size_t n = mock_loop_conn_count(e->loop);
  mock_loop_unlock(e->loop);
  return n;
}

/* OWN mode: poll rounds of at most 20 ms, on_timeout after each, until the
 * result arrived or limit_ms passed. Returns 1 if it arrived. */
static int run_own(struct env *e, int limit_ms) {
  int64_t end = mtci_clock_monotonic_ms() + limit_ms;
  for (int it = 0; it < 100000 && !e->res.got; it++) {
    if (mtci_clock_monotonic_ms() > end) break;
    int64_t t = mtci_poller_next_timeout_ms(&e->poller, mtci_clock_realtime_ms());
    if (t < 0 || t > 20) t = 20;
    if (mtci_poller_run(&e->poller, (int)t) < 0) return 0;
    mtci_discovery_on_timeout(e->d, mtci_clock_realtime_ms());
  }
  return e->res.got;
}

/* Keep the loop turning for ms (e.g. to let cancelled transfers settle). */
static void spin_own(struct env *e, int ms) {
  int64_t end = mtci_clock_monotonic_ms() + ms;
  for (int it = 0; it < 100000 && mtci_clock_monotonic_ms() < end; it++) {
    (void)mtci_poller_run(&e->poller, 10);
    mtci_discovery_on_timeout(e->d, mtci_clock_realtime_ms());
  }
}

static int start(struct env *e) {
  return mtci_discovery_start(e->d, mtci_clock_realtime_ms(), NULL, 0);
}

/* ---- pure pieces --------------------------------------------------------------------------- */

TEST(request_urls) {
  char url[MTCI_DOH_MAX_URL];
  int n = mtci_doh_build_url(MTCI_DOH_API_GOOGLE, "https://dns.google/", "apv3.stel.com.", "AbC09",
                             url, sizeof url);
  static const char want_g[] =
      "https://dns.google/resolve?name=apv3.stel.com&type=16&random_padding=AbC09";
  CHECK_EQ_INT(n, strlen(want_g));
  CHECK(strcmp(url, want_g) == 0);
  n = mtci_doh_build_url(MTCI_DOH_API_CLOUDFLARE, "https://mozilla.cloudflare-dns.com",
                         "tapv3.stel.com", NULL, url, sizeof url);
  CHECK(n > 0);
  CHECK(strcmp(url, "https://mozilla.cloudflare-dns.com/dns-query?name=tapv3.stel.com&type=16") ==
        0);
  /* rejected inputs */
  CHECK_EQ_INT(mtci_doh_build_url(MTCI_DOH_API_GOOGLE, "ftp://x", "a.b", NULL, url, sizeof url),
               MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_doh_build_url(MTCI_DOH_API_GOOGLE, "https://", "a.b", NULL, url, sizeof url),
               MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(
      mtci_doh_build_url(MTCI_DOH_API_GOOGLE, "https://x/?q", "a.b", NULL, url, sizeof url),
      MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_doh_build_url(MTCI_DOH_API_GOOGLE, "https://x", "a b", NULL, url, sizeof url),
               MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_doh_build_url(MTCI_DOH_API_GOOGLE, "https://x", "a.b", "a&b", url, sizeof url),
               MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_doh_build_url(MTCI_DOH_API_GOOGLE, "https://x", "a.b", NULL, url, 20),
               MTC_ERR_BUFFER_TOO_SMALL);
  CHECK(mtci_doh_name_ok("apv3.stel.com"));
  CHECK(!mtci_doh_name_ok("a..b"));
  CHECK(!mtci_doh_name_ok(".a"));
  CHECK(!mtci_doh_name_ok(""));
  CHECK(!mtci_doh_name_ok("a%2e"));
  char lab[70];
  memset(lab, 'a', 64);
  lab[64] = 0;
  CHECK(!mtci_doh_name_ok(lab)); /* a 64-byte label */
  lab[63] = 0;
  CHECK(mtci_doh_name_ok(lab));
}

TEST(random_padding) {
  /* r = 0 -> 13 characters; then alphabet[b % 62] of
   * 0 1 25 26 51 52 61 62 123 255 100 7 200 -> a b z A Z 0 9 a 9 h M h o */
  static const uint8_t a[] = {0, 0, 1, 25, 26, 51, 52, 61, 62, 123, 255, 100, 7, 200};
  struct test_fixed_rng rng = {a, sizeof a, 0};
  char pad[MTCI_DOH_PADDING_MAX + 1];
  size_t n = 0;
  CHECK_EQ_INT(mtci_doh_random_padding(test_fixed_rng_fn, &rng, pad, &n), 0);
  CHECK_EQ_INT(n, 13);
  CHECK(strcmp(pad, "abzAZ09a9hMho") == 0);
  CHECK_EQ_INT(rng.pos, sizeof a);
  /* r = 255 -> 13 + 255 * 116 / 256 = 128; r = 128 -> 13 + 58 = 71 */
  uint8_t big[1 + 128];
  memset(big, 0, sizeof big);
  big[0] = 255;
  rng = (struct test_fixed_rng){big, sizeof big, 0};
  CHECK_EQ_INT(mtci_doh_random_padding(test_fixed_rng_fn, &rng, pad, &n), 0);
  CHECK_EQ_INT(n, 128);
  CHECK_EQ_INT(strlen(pad), 128);
  big[0] = 128;
  rng = (struct test_fixed_rng){big, sizeof big, 0};
  CHECK_EQ_INT(mtci_doh_random_padding(test_fixed_rng_fn, &rng, pad, &n), 0);
  CHECK_EQ_INT(n, 71);
  /* the random source's failure is passed on */
  rng = (struct test_fixed_rng){big, 5, 0};
  CHECK_EQ_INT(mtci_doh_random_padding(test_fixed_rng_fn, &rng, pad, &n), MTC_ERR_RANDOM);
}

TEST(http_date) {
  int64_t t = 0;
  /* RFC 7231 §7.1.1.1's example: 784111777 */
  CHECK(mtci_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t));
  CHECK_EQ_INT(t, 784111777);
  CHECK(mtci_http_date_parse("  Tue, 29 Feb 2000 00:00:00 GMT\r\n", 33, &t));
  CHECK_EQ_INT(t, 951782400);
  CHECK(mtci_http_date_parse("Thu, 01 Jan 1970 00:00:00 GMT", 29, &t));
  CHECK_EQ_INT(t, 0);
  CHECK(mtci_http_date_parse("Fri, 31 Dec 9999 23:59:59 GMT", 29, &t));
  CHECK_EQ_INT(t, 253402300799);
  CHECK(!mtci_http_date_parse("Thu, 29 Feb 2001 00:00:00 GMT", 29, &t));  /* not a leap year */
  CHECK(!mtci_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t)); /* RFC 850 */
  CHECK(!mtci_http_date_parse("Sun Nov  6 08:49:37 1994", 24, &t));       /* asctime */
  CHECK(!mtci_http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", 29, &t));
  CHECK(!mtci_http_date_parse("Xyz, 06 Nov 1994 08:49:37 GMT", 29, &t));
  CHECK(!mtci_http_date_parse("Sun, 06 Nov 1994 24:00:00 GMT", 29, &t));
  CHECK(!mtci_http_date_parse("Sun, 06 Nov 1969 08:49:37 GMT", 29, &t));
  CHECK(!mtci_http_date_parse("Sun, 6 Nov 1994 08:49:37 GMT", 28, &t));
}

/* The race without IO: answers are a mock's encrypted text, fed by hand. */
struct race_env {
  mock_loop *loop;
  mock_doh *doh;
  mtci_rsa_key key;
  char good[MTCI_SCONF_B64_LEN + 1], bad[MTCI_SCONF_B64_LEN + 1];
  mtci_sconf_part pg[2], pb[2];
  int64_t now_s; /* the wall clock, when the config is valid */
};

static int race_env_up(struct race_env *e) {
  memset(e, 0, sizeof *e);
  if (mock_loop_new(&e->loop) != 0) return -1;
  mock_doh_config mc;
  memset(&mc, 0, sizeof mc);
  mc.rules = k_rules_a;
  mc.n_rules = 2;
  if (mock_doh_new(e->loop, &mc, &e->doh) != 0) return -1;
  e->key = *mock_doh_public_key(e->doh);
  snprintf(e->good, sizeof e->good, "%s", mock_doh_txt(e->doh));
  memcpy(e->bad, e->good, sizeof e->bad);
  e->bad[100] = e->bad[100] == 'A' ? 'B' : 'A'; /* one ciphertext character changed */
  e->pg[0] = (mtci_sconf_part){e->good, MOCK_DOH_LONG_PART};
  e->pg[1] =
      (mtci_sconf_part){e->good + MOCK_DOH_LONG_PART, MTCI_SCONF_B64_LEN - MOCK_DOH_LONG_PART};
  e->pb[0] = (mtci_sconf_part){e->bad, MOCK_DOH_LONG_PART};
  e->pb[1] =
      (mtci_sconf_part){e->bad + MOCK_DOH_LONG_PART, MTCI_SCONF_B64_LEN - MOCK_DOH_LONG_PART};
  e->now_s = mtci_clock_realtime_ms() / 1000;
  return 0;
}

static void race_env_down(struct race_env *e) {
  mock_doh_free(e->doh);
  mock_loop_free(e->loop);
}

static const mtci_source_kind k_kinds[] = {MTCI_SOURCE_GOOGLE, MTCI_SOURCE_CLOUDFLARE,
                                           MTCI_SOURCE_DNS};

TEST(race_fallthrough_and_tampered) {
  struct race_env e;
  int up = race_env_up(&e);
  if (up) race_env_down(&e);
  CHECK_EQ_INT(up, 0);
  mtci_race_counters ctr;
  memset(&ctr, 0, sizeof ctr);
  mtci_race r;
  memset(&r, 0, sizeof r);
  mtci_race_config cfg = {k_kinds, 3, 100, 1000, &e.key, NULL, 0};
  int ok = mtci_race_begin(&r, &cfg, &ctr, 10000) == 0;
  /* staggered starts */
  ok = ok && mtci_race_take_start(&r, 10000) == 0 && mtci_race_take_start(&r, 10000) == -1 &&
       mtci_race_take_start(&r, 10099) == -1 && mtci_race_expiry(&r) == 10100;
  /* Google fails at 10050: Cloudflare starts at once, not at 10100 */
  ok = ok && mtci_race_on_failure(&r, 0, MTC_ERR_DOH_HTTP_STATUS, 10050) == MTCI_OUT_HTTP_STATUS;
  ok = ok && mtci_race_expiry(&r) == 10050 && mtci_race_take_start(&r, 10050) == 1;
  /* Cloudflare's answer is tampered: counted, nothing kept, DNS starts */
  int o = mtci_race_on_answer(&r, 1, e.pb, 2, e.now_s, 10060);
  int late = 0;
  if (ok && o == MTCI_OUT_BAD_HASH && !mtci_race_done(&r) && mtci_race_result(&r) == NULL &&
      r.result.count == 0 && mtci_race_take_start(&r, 10060) == 2 &&
      mtci_race_on_answer(&r, 2, e.pg, 2, e.now_s, 10070) == MTCI_OUT_OK) {
    late = mtci_race_on_answer(&r, 1, e.pg, 2, e.now_s, 10080); /* no longer running */
  } else {
    ok = 0;
  }
  int done = mtci_race_done(&r), err = mtci_race_error(&r), abort1 = mtci_race_take_abort(&r);
  const mtci_simple_config *res = mtci_race_result(&r);
  int same = res && same_endpoints(res, k_rules_a, 2, 0);
  mtci_race_free(&r);
  race_env_down(&e);
  CHECK(ok);
  CHECK_EQ_INT(o, MTCI_OUT_BAD_HASH);
  CHECK_EQ_INT(late, MTC_ERR_INVALID_ARG);
  CHECK(done);
  CHECK_EQ_INT(err, 0);
  CHECK_EQ_INT(abort1, -1);
  CHECK(same);
  CHECK_EQ_INT(ctr.started[MTCI_SOURCE_GOOGLE], 1);
  CHECK_EQ_INT(ctr.started[MTCI_SOURCE_CLOUDFLARE], 1);
  CHECK_EQ_INT(ctr.started[MTCI_SOURCE_DNS], 1);
  CHECK_EQ_INT(ctr.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_HTTP_STATUS], 1);
  CHECK_EQ_INT(ctr.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_BAD_HASH], 1);
  CHECK_EQ_INT(ctr.outcome[MTCI_SOURCE_DNS][MTCI_OUT_OK], 1);
  CHECK_EQ_INT(mtci_race_counters_class(&ctr, MTCI_SOURCE_CLOUDFLARE, MTCI_CLASS_INVALID), 1);
  CHECK_EQ_INT(mtci_race_counters_class(&ctr, MTCI_SOURCE_GOOGLE, MTCI_CLASS_FAIL), 1);
  CHECK_EQ_INT(mtci_race_counters_class(&ctr, MTCI_SOURCE_DNS, MTCI_CLASS_OK), 1);
}

TEST(race_winner_cancels_and_deadline) {
  struct race_env e;
  int up = race_env_up(&e);
  if (up) race_env_down(&e);
  CHECK_EQ_INT(up, 0);
  mtci_race_counters ctr;
  memset(&ctr, 0, sizeof ctr);
  mtci_race r;
  memset(&r, 0, sizeof r);
  /* 1: the second source wins, the first is aborted, the third never starts */
  mtci_race_config cfg = {k_kinds, 3, 100, 1000, &e.key, "+44 20", 6};
  int ok = mtci_race_begin(&r, &cfg, &ctr, 0) == 0 && mtci_race_take_start(&r, 0) == 0 &&
           mtci_race_take_start(&r, 100) == 1 &&
           mtci_race_on_answer(&r, 1, e.pg, 2, e.now_s, 150) == MTCI_OUT_OK;
  int a1 = mtci_race_take_abort(&r), a2 = mtci_race_take_abort(&r);
  int s3 = mtci_race_take_start(&r, 1000);
  /* phone +44: both rules apply (the empty item matches everyone) */
  int same1 = mtci_race_result(&r) && same_endpoints(mtci_race_result(&r), k_rules_a, 2, 0);
  int64_t exp1 = mtci_race_expiry(&r);

  /* 2: deadline with one authentic-but-expired answer: EXPIRED beats TIMEOUT */
  mtci_race_config cfg2 = {k_kinds, 3, 0, 500, &e.key, NULL, 0};
  int ok2 = mtci_race_begin(&r, &cfg2, &ctr, 0) == 0 && mtci_race_take_start(&r, 0) == 0 &&
            mtci_race_take_start(&r, 0) == 1 && mtci_race_take_start(&r, 0) == 2 &&
            mtci_race_on_answer(&r, 0, e.pg, 2, e.now_s + 40 * 86400, 10) == MTCI_OUT_EXPIRED;
  mtci_race_on_timeout(&r, 499);
  int not_yet = !mtci_race_done(&r);
  mtci_race_on_timeout(&r, 500);
  int err2 = mtci_race_error(&r);
  int b1 = mtci_race_take_abort(&r), b2 = mtci_race_take_abort(&r), b3 = mtci_race_take_abort(&r);

  /* 3: nothing but silence: TIMEOUT */
  mtci_race_config cfg3 = {k_kinds, 2, 0, 500, &e.key, NULL, 0};
  int ok3 = mtci_race_begin(&r, &cfg3, NULL, 0) == 0 && mtci_race_take_start(&r, 0) == 0 &&
            mtci_race_take_start(&r, 0) == 1;
  mtci_race_on_timeout(&r, 600);
  int err3 = mtci_race_error(&r);

  /* 4: both answers expired: the race ends at once, EXPIRED */
  mtci_race_config cfg4 = {k_kinds, 2, 100, 5000, &e.key, NULL, 0};
  int ok4 = mtci_race_begin(&r, &cfg4, NULL, 0) == 0 && mtci_race_take_start(&r, 0) == 0 &&
            mtci_race_on_answer(&r, 0, e.pg, 2, e.now_s + 40 * 86400, 5) == MTCI_OUT_EXPIRED &&
            mtci_race_take_start(&r, 5) == 1 &&
            mtci_race_on_answer(&r, 1, e.pg, 2, e.now_s + 40 * 86400, 6) == MTCI_OUT_EXPIRED;
  int err4 = mtci_race_done(&r) ? mtci_race_error(&r) : 1;

  /* 5: ranking: malformed JSON beats an HTTP status; dated in the future */
  int ok5 = mtci_race_begin(&r, &cfg4, NULL, 0) == 0 && mtci_race_take_start(&r, 0) == 0 &&
            mtci_race_on_failure(&r, 0, MTC_ERR_DOH_HTTP_STATUS, 1) == MTCI_OUT_HTTP_STATUS &&
            mtci_race_take_start(&r, 1) == 1 &&
            mtci_race_on_failure(&r, 1, MTC_ERR_DOH_JSON, 2) == MTCI_OUT_MALFORMED;
  int err5 = mtci_race_done(&r) ? mtci_race_error(&r) : 1;
  int ok6 = mtci_race_begin(&r, &cfg4, NULL, 0) == 0 && mtci_race_take_start(&r, 0) == 0 &&
            mtci_race_on_answer(&r, 0, e.pg, 2, e.now_s - 40 * 86400, 1) == MTCI_OUT_FUTURE;

  /* 6: cancel */
  int ok7 = mtci_race_begin(&r, &cfg4, &ctr, 0) == 0 && mtci_race_take_start(&r, 0) == 0;
  mtci_race_cancel(&r);
  int err7 = mtci_race_error(&r), c1 = mtci_race_take_abort(&r), c2 = mtci_race_take_abort(&r);

  /* 7: bad configurations */
  mtci_race_config bad = cfg4;
  bad.n = 0;
  int e1 = mtci_race_begin(&r, &bad, NULL, 0);
  bad = cfg4;
  bad.key = NULL;
  int e2 = mtci_race_begin(&r, &bad, NULL, 0);
  bad = cfg4;
  bad.total_timeout_ms = 0;
  int e3 = mtci_race_begin(&r, &bad, NULL, 0);
  bad = cfg4;
  bad.phone_len = MTCI_RACE_MAX_PHONE + 1;
  bad.phone = "x";
  int e4 = mtci_race_begin(&r, &bad, NULL, 0);
  mtci_race_free(&r);
  race_env_down(&e);

  CHECK(ok);
  CHECK_EQ_INT(a1, 0);
  CHECK_EQ_INT(a2, -1);
  CHECK_EQ_INT(s3, -1);
  CHECK(same1);
  CHECK_EQ_INT(exp1, -1);
  CHECK(ok2);
  CHECK(not_yet);
  CHECK_EQ_INT(err2, MTC_ERR_SCONF_EXPIRED);
  CHECK_EQ_INT(b1, 1);
  CHECK_EQ_INT(b2, 2);
  CHECK_EQ_INT(b3, -1);
  CHECK(ok3);
  CHECK_EQ_INT(err3, MTC_ERR_DISCOVERY_TIMEOUT);
  CHECK(ok4);
  CHECK_EQ_INT(err4, MTC_ERR_SCONF_EXPIRED);
  CHECK(ok5);
  CHECK_EQ_INT(err5, MTC_ERR_DOH_JSON);
  CHECK(ok6);
  CHECK(ok7);
  CHECK_EQ_INT(err7, MTC_ERR_DISCOVERY_CANCELLED);
  CHECK_EQ_INT(c1, 0);
  CHECK_EQ_INT(c2, -1);
  CHECK_EQ_INT(e1, MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(e2, MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(e3, MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(e4, MTC_ERR_INVALID_ARG);
  /* counters of runs 1, 2 and 6 */
  CHECK_EQ_INT(ctr.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_CANCELLED], 2);
  CHECK_EQ_INT(ctr.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_OK], 1);
  CHECK_EQ_INT(ctr.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_EXPIRED], 1);
  CHECK_EQ_INT(ctr.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_TIMEOUT], 1);
  CHECK_EQ_INT(ctr.outcome[MTCI_SOURCE_DNS][MTCI_OUT_TIMEOUT], 1);
  CHECK_EQ_INT(ctr.started[MTCI_SOURCE_DNS], 1);
}

/* ---- DoH over libcurl, OWN mode ------------------------------------------------------- */

/* The usual start: env up, discovery created from the test settings with
 * a tweak, started. Any failure leaves e down. */
#define SETUP(e, opts, tweak)                                                                      \
  do {                                                                                             \
    int up_ = env_up(&(e), (opts));                                                                \
    mtci_discovery_settings s_;                                                                    \
    if (up_ == 0) {                                                                                \
      test_settings(&(e), &s_);                                                                    \
      tweak;                                                                                       \
      up_ = disc_new(&(e), &s_);                                                                   \
    }                                                                                              \
    if (up_ != 0) env_down(&(e));                                                                  \
    CHECK_EQ_INT(up_, 0);                                                                          \
  } while (0)

TEST(doh_google_wins) {
  struct env e;
  /* a fixed random source: padding length byte 255 -> 128 characters */
  uint8_t rnd[1 + 128];
  memset(rnd, 7, sizeof rnd);
  rnd[0] = 255;
  struct test_fixed_rng rng = {rnd, sizeof rnd, 0};
  SETUP(e, NULL, (s_.random = test_fixed_rng_fn, s_.random_ud = &rng));
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  mock_doh_stats g = doh_stats(&e, e.g), c = doh_stats(&e, e.c);
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  struct result res = e.res;
  int same = same_endpoints(&res.cfg, k_rules_a, 2, 0);
  int busy = mtci_discovery_running(e.d);
  env_down(&e);
  CHECK_EQ_INT(rc, 0);
  CHECK(got);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.source, MTCI_SOURCE_GOOGLE);
  CHECK(strncmp(res.endpoint, "http://127.0.0.1:", 17) == 0);
  CHECK(same);
  CHECK_EQ_INT(res.have_offset, 0);
  CHECK(!busy);
  /* one request, a Google one, with the 128-character padding; Cloudflare
   * never asked (Google answered within the 300 ms stagger) */
  CHECK_EQ_INT(g.google, 1);
  CHECK_EQ_INT(g.answered, 1);
  CHECK_EQ_INT(g.last_padding_len, 128);
  CHECK_EQ_INT(c.connections, 0);
  CHECK_EQ_INT(ctr.http_requests, 1);
  CHECK_EQ_INT(ctr.runs_ok, 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_OK], 1);
  CHECK_EQ_INT(ctr.have_date, 1);
  CHECK(ctr.date_offset_s >= -3 && ctr.date_offset_s <= 3);
}

TEST(doh_phone_rules) {
  struct env e;
  SETUP(e, NULL, (void)0);
  int rc = mtci_discovery_start(e.d, mtci_clock_realtime_ms(), "+1 (555) 0100", 13);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  struct result res = e.res;
  int same = same_endpoints(&res.cfg, k_rules_a, 2, 1); /* "+44" does not apply */
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.cfg.count, 2);
  CHECK(same);
}

TEST(doh_google_500_cloudflare_wins) {
  struct env e;
  /* stagger 2 s: Cloudflare must start because Google failed, not because
   * its slot came */
  SETUP(e, NULL, (s_.stagger_ms = 2000));
  mock_doh_switches sw = {0};
  sw.fail = 1;
  set_switches(&e, e.g, &sw);
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  mock_doh_stats g = doh_stats(&e, e.g), c = doh_stats(&e, e.c);
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  struct result res = e.res;
  int same = same_endpoints(&res.cfg, k_rules_a, 2, 0);
  int logged = strstr(e.log, "google#0 failed: http status") != NULL;
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.source, MTCI_SOURCE_CLOUDFLARE);
  CHECK(same);
  CHECK(res.elapsed < 1000);
  CHECK_EQ_INT(g.failed, 1);
  CHECK_EQ_INT(c.cloudflare, 1);
  CHECK_EQ_INT(ctr.http_requests, 2);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_HTTP_STATUS], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_OK], 1);
  CHECK(logged);
}

TEST(doh_tampered_google) {
  struct env e;
  /* Google serves config A (tampered), Cloudflare config B: the result must
   * be exactly B */
  struct env_opts o = {k_rules_a, k_rules_b, 2, 1, 0};
  SETUP(e, &o, (s_.stagger_ms = 2000));
  mock_doh_switches sw = {0};
  sw.tampered = 1;
  set_switches(&e, e.g, &sw);
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  struct result res = e.res;
  int same = same_endpoints(&res.cfg, k_rules_b, 1, 0);
  int logged = strstr(e.log, "google#0 answer rejected: bad hash") != NULL;
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.source, MTCI_SOURCE_CLOUDFLARE);
  CHECK_EQ_INT(res.cfg.count, 1);
  CHECK(same);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_BAD_HASH], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_OK], 1);
  CHECK_EQ_INT(ctr.http_requests, 2);
  CHECK(logged);
}

TEST(doh_both_expired) {
  struct env e;
  SETUP(e, NULL, (void)0);
  mock_doh_switches sw = {0};
  sw.expired = 1;
  set_switches(&e, e.g, &sw);
  set_switches(&e, e.c, &sw);
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  struct result res = e.res;
  int logged = strstr(e.log, "answer rejected: expired") != NULL;
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, MTC_ERR_SCONF_EXPIRED);
  CHECK_EQ_INT(res.cfg.count, 0);
  CHECK_EQ_INT(ctr.runs_failed, 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_EXPIRED], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_EXPIRED], 1);
  CHECK(logged);
}

TEST(doh_slow_google_cancelled) {
  struct env e;
  SETUP(e, NULL, (s_.stagger_ms = 100));
  mock_doh_switches sw = {0};
  sw.slow_ms = 3000;
  set_switches(&e, e.g, &sw);
  int64_t t0 = mtci_clock_monotonic_ms();
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  /* the Google mock must see its connection closed long before its 3 s */
  size_t open = 1;
  for (int i = 0; i < 100 && open; i++) {
    spin_own(&e, 10);
    open = open_conns(&e);
  }
  int64_t closed_after = mtci_clock_monotonic_ms() - t0;
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  mock_doh_stats g = doh_stats(&e, e.g);
  struct result res = e.res;
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.source, MTCI_SOURCE_CLOUDFLARE);
  CHECK(res.elapsed >= 99 && res.elapsed < 1000);
  CHECK_EQ_INT(open, 0);
  CHECK(closed_after < 2000);
  CHECK_EQ_INT(g.google, 1);
  /* the budget: one good source, at most 2 HTTP requests */
  CHECK_EQ_INT(ctr.http_requests, 2);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_CANCELLED], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_OK], 1);
}

TEST(doh_hang_timeout) {
  struct env e;
  SETUP(e, NULL, (s_.stagger_ms = 50, s_.request_timeout_ms = 400, s_.total_timeout_ms = 1500));
  mock_doh_switches sw = {0};
  sw.hang = 1;
  set_switches(&e, e.g, &sw);
  set_switches(&e, e.c, &sw);
  int64_t t0 = mtci_clock_monotonic_ms();
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  int64_t took = mtci_clock_monotonic_ms() - t0;
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  mock_doh_stats g = doh_stats(&e, e.g), c = doh_stats(&e, e.c);
  struct result res = e.res;
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, MTC_ERR_DISCOVERY_TIMEOUT);
  /* each request ends at its 400 ms timeout: the race is over at ~450 ms,
   * before its own 1500 ms limit */
  CHECK(took >= 390 && took < 1500);
  CHECK_EQ_INT(g.hung, 1);
  CHECK_EQ_INT(c.hung, 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_TIMEOUT], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_TIMEOUT], 1);
}

TEST(race_total_timeout) {
  struct env e;
  /* requests would wait 2 s; the whole race is cut at 300 ms */
  SETUP(e, NULL, (s_.stagger_ms = 0, s_.total_timeout_ms = 300));
  mock_doh_switches sw = {0};
  sw.hang = 1;
  set_switches(&e, e.g, &sw);
  set_switches(&e, e.c, &sw);
  int64_t t0 = mtci_clock_monotonic_ms();
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  int64_t took = mtci_clock_monotonic_ms() - t0;
  size_t active = 0;
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  struct result res = e.res;
  (void)active;
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, MTC_ERR_DISCOVERY_TIMEOUT);
  CHECK(took >= 290 && took < 1000);
  CHECK_EQ_INT(ctr.http_requests, 2);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_TIMEOUT], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_TIMEOUT], 1);
}

TEST(clock_offset_from_date) {
  /* The Google mock's clock runs 2 days ahead: its Date says so, and its
   * config is dated in its own time (date = its now - 1 h). */
  struct env_opts o = {NULL, NULL, 0, 0, 2 * 86400};
  for (int trust = 1; trust >= 0; trust--) {
    struct env e;
    SETUP(e, &o, (s_.n_cloudflare = 0, s_.trust_http_date = trust));
    int rc = start(&e);
    int got = rc == 0 && run_own(&e, LIMIT_MS);
    int64_t off = 0;
    int far = mtci_discovery_clock_offset(e.d, &off);
    struct result res = e.res;
    int same = same_endpoints(&res.cfg, k_rules_a, 2, 0);
    int logged = strstr(e.log, "Date header is +") != NULL;
    env_down(&e);
    CHECK(got);
    /* trusted: validated against the Date clock; else the config looks
     * dated 2 days ahead of the local clock */
    CHECK_EQ_INT(res.err, trust ? 0 : MTC_ERR_SCONF_FUTURE);
    if (trust) CHECK(same);
    CHECK_EQ_INT(res.have_offset, 1);
    CHECK(res.offset >= 2 * 86400 - 3 && res.offset <= 2 * 86400 + 3);
    CHECK_EQ_INT(far, 1);
    CHECK_EQ_INT(off, res.offset);
    CHECK(logged);
  }
}

/* ---- a server of broken answers ------------------------------------------------------- */

static const char *g_junk; /* the whole response to send */
static size_t g_junk_len;

static void junk_on_data(mock_conn *c, void *ud) {
  (void)ud;
  size_t len;
  const uint8_t *p = mock_conn_data(c, &len);
  int end = 0;
  for (size_t i = 0; i + 4 <= len; i++)
    if (memcmp(p + i, "\r\n\r\n", 4) == 0) end = 1;
  if (!end) return;
  mock_conn_consume(c, len);
  mock_conn_send(c, g_junk, g_junk_len);
  mock_conn_close_after_flush(c);
}

static const mock_conn_handler k_junk_handler = {NULL, junk_on_data, NULL, NULL};

static void junk_accept(mock_loop *l, mock_conn *c, void *ud) {
  (void)l;
  (void)ud;
  mock_conn_set_handler(c, &k_junk_handler, NULL);
}

TEST(doh_broken_answers) {
  static const char big_head[] = "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n";
  static const char big_nolen_head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
  static const char redirect[] =
      "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n";
  static const char bad_json[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{";
  static const char nxdomain[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"Status\":3}";
  static char big[80000], big_nolen[80000];
  size_t bl = strlen(big_head);
  memcpy(big, big_head, bl);
  memset(big + bl, 'a', 70000);
  size_t nl = strlen(big_nolen_head);
  memcpy(big_nolen, big_nolen_head, nl);
  memset(big_nolen + nl, 'a', 70000);
  struct {
    const char *resp;
    size_t len;
    int want_err;
    mtci_race_outcome outcome;
  } cases[] = {
      {big, bl + 70000, MTC_ERR_DOH_TOO_LARGE, MTCI_OUT_OVERSIZED},
      {big_nolen, nl + 70000, MTC_ERR_DOH_TOO_LARGE, MTCI_OUT_OVERSIZED},
      {redirect, sizeof redirect - 1, MTC_ERR_DOH_HTTP_STATUS, MTCI_OUT_HTTP_STATUS},
      {bad_json, sizeof bad_json - 1, MTC_ERR_DOH_JSON, MTCI_OUT_MALFORMED},
      {nxdomain, sizeof nxdomain - 1, MTC_ERR_DOH_STATUS, MTCI_OUT_NOT_FOUND},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct env e;
    SETUP(e, NULL, (s_.n_cloudflare = 0));
    uint16_t port = 0;
    mock_loop_lock(e.loop);
    g_junk = cases[i].resp;
    g_junk_len = cases[i].len;
    int id = mock_loop_listen(e.loop, 0, junk_accept, NULL, &port);
    mock_loop_unlock(e.loop);
    /* re-create the discovery with the junk server as Google */
    mtci_discovery_free(e.d);
    e.d = NULL;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
    mtci_doh_endpoint ep = {url, NULL};
    mtci_discovery_settings s;
    test_settings(&e, &s);
    s.google = &ep;
    s.n_cloudflare = 0;
    int rc = id > 0 ? disc_new(&e, &s) : -1;
    if (rc == 0) rc = start(&e);
    int got = rc == 0 && run_own(&e, LIMIT_MS);
    mtci_discovery_counters ctr;
    mtci_discovery_counters_get(e.d, &ctr);
    struct result res = e.res;
    env_down(&e);
    if (!got || res.err != cases[i].want_err) fprintf(stderr, "  case %zu: err %d\n", i, res.err);
    CHECK(got);
    CHECK_EQ_INT(res.err, cases[i].want_err);
    CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][cases[i].outcome], 1);
  }
}

static void greet_accept(mock_loop *l, mock_conn *c, void *ud) {
  (void)l;
  (void)ud;
  mock_conn_set_handler(c, NULL, NULL);
  mock_conn_send(c, g_junk, g_junk_len);
  mock_conn_close_after_flush(c);
}

/* https to a plain-HTTP server fails the TLS handshake; a closed port is
 * a connect failure. Both count as network failures, and the other
 * provider still wins. */
TEST(doh_tls_and_refused) {
  for (int k = 0; k < 2; k++) {
    struct env e;
    SETUP(e, NULL, (void)0);
    uint16_t port = 0;
    mock_loop_lock(e.loop);
    if (k == 0) { /* answers a ClientHello with plain HTTP at once */
      g_junk = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      g_junk_len = strlen(g_junk);
      (void)mock_loop_listen(e.loop, 0, greet_accept, NULL, &port);
    } else { /* a port nobody listens on: listen, note, close */
      int id = mock_loop_listen(e.loop, 0, junk_accept, NULL, &port);
      if (id > 0) mock_loop_unlisten(e.loop, id);
    }
    mock_loop_unlock(e.loop);
    mtci_discovery_free(e.d);
    e.d = NULL;
    char url[64];
    snprintf(url, sizeof url, "%s://127.0.0.1:%u", k == 0 ? "https" : "http", port);
    mtci_doh_endpoint ep = {url, NULL};
    mtci_discovery_settings s;
    test_settings(&e, &s);
    s.google = &ep;
    s.stagger_ms = 2000;
    int rc = disc_new(&e, &s);
    if (rc == 0) rc = start(&e);
    int got = rc == 0 && run_own(&e, LIMIT_MS);
    mtci_discovery_counters ctr;
    mtci_discovery_counters_get(e.d, &ctr);
    struct result res = e.res;
    int logged = strstr(e.log, "google#0 failed: network error") != NULL;
    int tls = strstr(e.log, "TLS") != NULL;
    env_down(&e);
    CHECK(got);
    CHECK_EQ_INT(res.err, 0);
    CHECK_EQ_INT(res.source, MTCI_SOURCE_CLOUDFLARE);
    CHECK(res.elapsed < 1000);
    CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_NETWORK], 1);
    CHECK(logged);
    CHECK(tls == (k == 0));
  }
}

/* The mock DNS server's bytes, for the cases c-ares never sends. */
TEST(mock_dns_bytes) {
  mock_dns *d = NULL;
  static const mock_dns_host hosts[] = {{"x.test", "10.1.2.3", NULL}};
  mock_dns_config dc = {0, "t.test", NULL, 0, hosts, 1};
  CHECK_EQ_INT(mock_dns_new(&dc, &d), 0);
  /* id 1234, RD, 1 question: y.test A IN */
  static const uint8_t q_nx[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0, 0, 0, 0, 0,
                                 1,    'y',  4,    't',  'e', 's', 't', 0, 0, 1, 0, 1};
  static const uint8_t q_a[] = {0xab, 0xcd, 0x01, 0x00, 0,   1,   0,   0, 0, 0, 0, 0,
                                1,    'X',  4,    'T',  'E', 'S', 'T', 0, 0, 1, 0, 1};
  static const uint8_t q_two[] = {0x00, 0x07, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0};
  uint8_t out[512];
  size_t n1 = mock_dns_answer(d, q_nx, sizeof q_nx, out, sizeof out);
  /* QR AA RD RA, RCODE 3; the question echoed; no answers */
  static const uint8_t want_nx[] = {0x12, 0x34, 0x85, 0x83, 0, 1, 0, 0, 0, 0, 0, 0};
  int nx_ok = n1 == sizeof q_nx && memcmp(out, want_nx, 12) == 0 &&
              memcmp(out + 12, q_nx + 12, sizeof q_nx - 12) == 0;
  size_t n2 = mock_dns_answer(d, q_a, sizeof q_a, out, sizeof out);
  /* one A RR: c0 0c, type 1, class 1, TTL 300, rdlength 4, 10.1.2.3 */
  static const uint8_t want_rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 10, 1, 2, 3};
  int a_ok = n2 == sizeof q_a + sizeof want_rr && out[2] == 0x85 && out[3] == 0x80 && out[7] == 1 &&
             memcmp(out + sizeof q_a, want_rr, sizeof want_rr) == 0;
  size_t n3 = mock_dns_answer(d, q_two, sizeof q_two, out, sizeof out);
  static const uint8_t want_fe[] = {0x00, 0x07, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0};
  int fe_ok = n3 == 12 && memcmp(out, want_fe, 12) == 0;
  size_t n4 = mock_dns_answer(d, q_two, 5, out, sizeof out); /* no header: dropped */
  mock_dns_stats st;
  mock_dns_stats_get(d, &st);
  mock_dns_free(d);
  CHECK(nx_ok);
  CHECK(a_ok);
  CHECK(fe_ok);
  CHECK_EQ_INT(n4, 0);
  CHECK_EQ_INT(st.nxdomain, 1);
  CHECK_EQ_INT(st.a, 1);
  CHECK_EQ_INT(st.formerr, 1);
  CHECK_EQ_INT(st.dropped, 1);
}

TEST(cancel_restart_free) {
  struct env e;
  SETUP(e, NULL, (s_.stagger_ms = 0));
  mock_doh_switches sw = {0};
  sw.slow_ms = 200;
  set_switches(&e, e.g, &sw);
  set_switches(&e, e.c, &sw);
  int rc = start(&e);
  int busy = start(&e); /* a second start while running */
  spin_own(&e, 50);
  int cancel = mtci_discovery_cancel(&*e.d);
  int cancel2 = mtci_discovery_cancel(e.d);
  spin_own(&e, 400); /* no callback may come */
  int calls_after_cancel = e.res.calls;
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  /* restart: works, and gets the answer */
  int rc2 = start(&e);
  int got = rc2 == 0 && run_own(&e, LIMIT_MS);
  int err = e.res.err;
  /* and free while running: no callback, no leak (ASan) */
  e.res.got = 0;
  int rc3 = start(&e);
  spin_own(&e, 20);
  int calls = e.res.calls;
  env_down(&e);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(busy, MTC_ERR_DISCOVERY_BUSY);
  CHECK_EQ_INT(cancel, 0);
  CHECK_EQ_INT(cancel2, MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(calls_after_cancel, 0);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_GOOGLE][MTCI_OUT_CANCELLED], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_CLOUDFLARE][MTCI_OUT_CANCELLED], 1);
  CHECK_EQ_INT(ctr.runs, 0);
  CHECK(got);
  CHECK_EQ_INT(err, 0);
  CHECK_EQ_INT(rc3, 0);
  CHECK_EQ_INT(calls, 1);
}

TEST(settings_rejected) {
  struct env e;
  int up = env_up(&e, NULL);
  if (up) env_down(&e);
  CHECK_EQ_INT(up, 0);
  mtci_discovery_settings s;
  mtci_discovery *d = NULL;
  test_settings(&e, &s);
  s.n_google = s.n_cloudflare = 0;
  int r1 = mtci_discovery_new(&e.poller, &s, on_result, &e, &d);
  test_settings(&e, &s);
  mtci_doh_endpoint bad = {"ftp://127.0.0.1", NULL};
  s.google = &bad;
  int r2 = mtci_discovery_new(&e.poller, &s, on_result, &e, &d);
  test_settings(&e, &s);
  s.txt_domain = "bad domain";
  int r3 = mtci_discovery_new(&e.poller, &s, on_result, &e, &d);
  test_settings(&e, &s);
  s.n_google = MTCI_DISCOVERY_MAX_ENDPOINTS + 1;
  int r4 = mtci_discovery_new(&e.poller, &s, on_result, &e, &d);
  /* the default settings name Telegram's providers and key, and test DCs
   * pick the test domain */
  mtci_discovery_settings_default(&s);
  int def_ok = s.n_google == 1 && strcmp(s.google[0].url, "https://dns.google") == 0 &&
               s.n_cloudflare == 1 &&
               strcmp(s.cloudflare[0].url, "https://mozilla.cloudflare-dns.com") == 0 &&
               s.use_plain_dns == 1 && s.stagger_ms == 800 && s.trust_http_date == 1;
  s.test_dcs = 1;
  int r5 = mtci_discovery_new(&e.poller, &s, on_result, &e, &d);
  mtci_discovery_free(d);
  size_t fds = mtci_poller_count(&e.poller);
  env_down(&e);
  CHECK_EQ_INT(r1, MTC_ERR_DISCOVERY_NO_SOURCE);
  CHECK_EQ_INT(r2, MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(r3, MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(r4, MTC_ERR_INVALID_ARG);
  CHECK(def_ok);
  CHECK_EQ_INT(r5, 0);
  CHECK_EQ_INT(fds, 0);
}

/* ---- plain DNS over c-ares ------------------------------------------------------------ */

TEST(dns_txt_wins) {
  struct env e;
  SETUP(e, NULL, (s_.n_google = 0, s_.n_cloudflare = 0, s_.use_plain_dns = 1));
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  mock_dns_stats st;
  mock_dns_stats_get(e.dns, &st);
  struct result res = e.res;
  int same = same_endpoints(&res.cfg, k_rules_a, 2, 0);
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.source, MTCI_SOURCE_DNS);
  CHECK(strcmp(res.endpoint, "dns") == 0);
  CHECK(same);
  CHECK_EQ_INT(ctr.dns_queries, 1);
  CHECK_EQ_INT(ctr.http_requests, 0);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_DNS][MTCI_OUT_OK], 1);
  CHECK_EQ_INT(st.txt, 1);
  CHECK_EQ_INT(st.last_qtype, 16);
}

TEST(dns_after_doh_failures) {
  /* both DoH providers fail: the DNS source (last in order) still wins,
   * started at once by the fall-through */
  struct env e;
  SETUP(e, NULL, (s_.use_plain_dns = 1, s_.stagger_ms = 2000));
  mock_doh_switches sw = {0};
  sw.fail = 1;
  set_switches(&e, e.g, &sw);
  set_switches(&e, e.c, &sw);
  int rc = start(&e);
  int got = rc == 0 && run_own(&e, LIMIT_MS);
  struct result res = e.res;
  int same = same_endpoints(&res.cfg, k_rules_a, 2, 0);
  env_down(&e);
  CHECK(got);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.source, MTCI_SOURCE_DNS);
  CHECK(same);
  CHECK(res.elapsed < 1000);
}

struct host_res {
  int calls;
  int err;
  mtci_dns_addrs a;
};

static void on_host(void *ud, uint32_t id, int err, const mtci_dns_addrs *a) {
  (void)id;
  struct host_res *h = ud;
  h->calls++;
  h->err = err;
  if (a) h->a = *a;
}

static int run_host_lookup(struct env *e, const char *name, struct host_res *h) {
  memset(h, 0, sizeof *h);
  mtci_dns *dns = mtci_discovery_dns(e->d);
  int rc = mtci_dns_lookup_host(dns, name, on_host, h, NULL);
  if (rc) return rc;
  int64_t end = mtci_clock_monotonic_ms() + LIMIT_MS;
  while (!h->calls && mtci_clock_monotonic_ms() < end) {
    int64_t t = mtci_poller_next_timeout_ms(&e->poller, mtci_clock_realtime_ms());
    (void)mtci_poller_run(&e->poller, t < 0 || t > 20 ? 20 : (int)t);
    mtci_discovery_on_timeout(e->d, mtci_clock_realtime_ms());
  }
  return h->calls == 1 ? 0 : -1;
}

TEST(dns_host_lookup) {
  struct env e;
  SETUP(e, NULL, (s_.dns_timeout_ms = 300));
  struct host_res both, v4, none, dropped;
  int r1 = run_host_lookup(&e, "proxy.mock.test", &both);
  int r2 = run_host_lookup(&e, "V4ONLY.mock.test.", &v4);
  int r3 = run_host_lookup(&e, "nohost.mock.test", &none);
  mock_dns_set_drop(e.dns, 1);
  int64_t t0 = mtci_clock_monotonic_ms();
  int r4 = run_host_lookup(&e, "proxy.mock.test", &dropped);
  int64_t took = mtci_clock_monotonic_ms() - t0;
  int r5 = mtci_dns_lookup_host(mtci_discovery_dns(e.d), "127.0.0.1 ", on_host, &none, NULL);
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  mock_dns_stats st;
  mock_dns_stats_get(e.dns, &st);
  env_down(&e);
  CHECK_EQ_INT(r1, 0);
  CHECK_EQ_INT(both.err, 0);
  CHECK_EQ_INT(both.a.n4, 1);
  CHECK(strcmp(both.a.v4[0], "127.0.0.1") == 0);
  CHECK_EQ_INT(both.a.n6, 1);
  CHECK(strcmp(both.a.v6[0], "::1") == 0);
  CHECK_EQ_INT(r2, 0);
  CHECK_EQ_INT(v4.err, 0);
  CHECK_EQ_INT(v4.a.n4, 1);
  CHECK(strcmp(v4.a.v4[0], "127.0.0.7") == 0);
  CHECK_EQ_INT(v4.a.n6, 0);
  CHECK_EQ_INT(r3, 0);
  CHECK_EQ_INT(none.err, MTC_ERR_DNS_NOT_FOUND);
  CHECK_EQ_INT(r4, 0);
  CHECK_EQ_INT(dropped.err, MTC_ERR_DISCOVERY_TIMEOUT);
  /* (>= 290: the realtime deadline and this monotonic stopwatch may
   * truncate to whole ms at different phases) */
  CHECK(took >= 290 && took < 1000);
  CHECK_EQ_INT(r5, MTC_ERR_INVALID_ARG);
  /* 4 lookups, A + AAAA each */
  CHECK_EQ_INT(ctr.dns_queries, 8);
  CHECK_EQ_INT(st.a, 2);
  CHECK_EQ_INT(st.aaaa, 2);
  CHECK_EQ_INT(st.nxdomain, 2);
  CHECK(st.dropped >= 2);
}

TEST(dns_txt_failures) {
  struct env e;
  SETUP(e, NULL,
        (s_.n_google = 0, s_.n_cloudflare = 0, s_.use_plain_dns = 1, s_.dns_timeout_ms = 300));
  /* 1: NXDOMAIN for another name is covered by host lookups; here SERVFAIL */
  mock_dns_set_servfail(e.dns, 1);
  int rc = start(&e);
  int got1 = rc == 0 && run_own(&e, LIMIT_MS);
  int err1 = e.res.err;
  mock_dns_set_servfail(e.dns, 0);
  /* 2: a tampered record (one character of the long part changed) */
  char long_part[MOCK_DOH_LONG_PART + 1], short_part[MTCI_SCONF_B64_LEN];
  const char *txt = mock_doh_txt(e.g);
  memcpy(long_part, txt, MOCK_DOH_LONG_PART);
  long_part[MOCK_DOH_LONG_PART] = 0;
  long_part[100] = long_part[100] == 'A' ? 'B' : 'A';
  snprintf(short_part, sizeof short_part, "%s", txt + MOCK_DOH_LONG_PART);
  const char *recs[2] = {short_part, long_part};
  mock_dns_set_txt(e.dns, recs, 2);
  e.res.got = 0;
  rc = start(&e);
  int got2 = rc == 0 && run_own(&e, LIMIT_MS);
  int err2 = e.res.err;
  /* 3: dropped: the lookup times out */
  mock_dns_set_drop(e.dns, 1);
  e.res.got = 0;
  rc = start(&e);
  int got3 = rc == 0 && run_own(&e, LIMIT_MS);
  int err3 = e.res.err;
  mtci_discovery_counters ctr;
  mtci_discovery_counters_get(e.d, &ctr);
  env_down(&e);
  CHECK(got1);
  CHECK_EQ_INT(err1, MTC_ERR_DNS_FAILED);
  CHECK(got2);
  CHECK_EQ_INT(err2, MTC_ERR_SCONF_HASH);
  CHECK(got3);
  CHECK_EQ_INT(err3, MTC_ERR_DISCOVERY_TIMEOUT);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_DNS][MTCI_OUT_NETWORK], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_DNS][MTCI_OUT_BAD_HASH], 1);
  CHECK_EQ_INT(ctr.race.outcome[MTCI_SOURCE_DNS][MTCI_OUT_TIMEOUT], 1);
  CHECK_EQ_INT(ctr.runs_failed, 3);
}

/* ---- HOST mode: the test's own poll() loop ------------------------------------------------ */

#define HOST_MAX 64
struct host_loop {
  int fd[HOST_MAX];
  unsigned ev[HOST_MAX];
  size_t n;
  int64_t timer_at; /* realtime ms, -1 none */
  int watch_calls, timer_calls, bad;
};

static void h_watch(void *ud, int fd, unsigned events) {
  struct host_loop *h = ud;
  h->watch_calls++;
  for (size_t i = 0; i < h->n; i++)
    if (h->fd[i] == fd) {
      if (events == 0) {
        h->fd[i] = h->fd[--h->n];
        h->ev[i] = h->ev[h->n];
      } else {
        h->ev[i] = events;
      }
      return;
    }
  if (events == 0 || h->n == HOST_MAX) {
    h->bad++; /* stop for an fd never watched, or table full */
    return;
  }
  h->fd[h->n] = fd;
  h->ev[h->n++] = events;
}

static void h_timer(void *ud, int64_t delay_ms) {
  struct host_loop *h = ud;
  h->timer_calls++;
  h->timer_at = delay_ms < 0 ? -1 : mtci_clock_realtime_ms() + delay_ms;
}

/* ---- the system configuration follows resolv.conf ------------------------------------- */

/* Two mock servers on one port, A on 127.0.0.1 and B on 127.0.0.2 (c-ares
 * 1.18 drops "nameserver 127.0.0.1:PORT" lines, so resolv.conf can only
 * name addresses; the resolver's system_port gives the port). Both know
 * h.test, with different addresses, so an answer says who gave it. The
 * resolver runs on the test's own poller with a clock the test can move
 * past the resolv.conf re-check interval. */
struct rc_env {
  mock_dns *a, *b;
  uint16_t port;
  char dir[32], path[64], tmp[64];
  mtci_poller poller;
  int poller_up;
  mtci_dns *dns;
  int64_t skew;
};

#define RC_ADDR_A "10.0.0.1"
#define RC_ADDR_B "10.0.0.2"

static int64_t rc_now(void *ud) {
  const struct rc_env *e = ud;
  return mtci_clock_realtime_ms() + e->skew;
}

/* Replace the file atomically (write a temp file, rename it over). */
static int rc_write(struct rc_env *e, const char *server) {
  FILE *f = fopen(e->tmp, "w");
  if (!f) return -1;
  int ok = fprintf(f, "# written by test_discovery\nnameserver %s\n", server) > 0;
  if (fclose(f) != 0) ok = 0;
  return ok && rename(e->tmp, e->path) == 0 ? 0 : -1;
}

static void rc_down(struct rc_env *e) {
  mtci_dns_free(e->dns);
  if (e->poller_up) mtci_poller_free(&e->poller);
  mock_dns_free(e->a);
  mock_dns_free(e->b);
  if (e->path[0]) (void)unlink(e->path);
  if (e->tmp[0]) (void)unlink(e->tmp);
  if (e->dir[0]) (void)rmdir(e->dir);
  memset(e, 0, sizeof *e);
}

/* Servers up, resolv.conf naming A, the resolver made. 0 or -1. */
static int rc_up(struct rc_env *e) {
  memset(e, 0, sizeof *e);
  static const mock_dns_host ha[] = {{"h.test", RC_ADDR_A, NULL}};
  static const mock_dns_host hb[] = {{"h.test", RC_ADDR_B, NULL}};
  mock_dns_config ca = {0, NULL, NULL, 0, ha, 1};
  mock_dns_config cb = {0, NULL, NULL, 0, hb, 1};
  for (int i = 0; i < 10 && !e->b; i++) { /* B's bind of A's port may collide: retry */
    mock_dns_free(e->a);
    e->a = NULL;
    if (mock_dns_new(&ca, &e->a) != 0) return -1;
    cb.port = mock_dns_port(e->a);
    if (mock_dns_new_on(&cb, "127.0.0.2", &e->b) != 0) e->b = NULL;
  }
  if (!e->b) return -1;
  e->port = cb.port;
  snprintf(e->dir, sizeof e->dir, "/tmp/mtc_dns_XXXXXX");
  if (!mkdtemp(e->dir)) {
    e->dir[0] = 0;
    return -1;
  }
  snprintf(e->path, sizeof e->path, "%s/resolv.conf", e->dir);
  snprintf(e->tmp, sizeof e->tmp, "%s/resolv.new", e->dir);
  if (rc_write(e, "127.0.0.1") != 0) return -1;
  if (mtci_poller_init(&e->poller, NULL) != 0) return -1;
  e->poller_up = 1;
  mtci_dns_config dc;
  memset(&dc, 0, sizeof dc);
  dc.poller = &e->poller;
  dc.now_ms = rc_now;
  dc.now_ud = e;
  dc.timeout_ms = 2000;
  dc.resolv_conf = e->path;
  dc.system_port = e->port;
  return mtci_dns_new(&dc, &e->dns) == 0 ? 0 : -1;
}

/* Turn the loop until every res has its callback (bounded). 1 if all did. */
static int rc_wait(struct rc_env *e, struct host_res *const *res, size_t n) {
  int64_t end = mtci_clock_monotonic_ms() + LIMIT_MS;
  for (int it = 0; it < 100000 && mtci_clock_monotonic_ms() < end; it++) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
      done += res[i]->calls > 0;
    if (done == n) return 1;
    int64_t t = mtci_poller_next_timeout_ms(&e->poller, rc_now(e));
    (void)mtci_poller_run(&e->poller, t < 0 || t > 20 ? 20 : (int)t);
    mtci_dns_on_timeout(e->dns, rc_now(e));
  }
  return 0;
}

/* One lookup of h.test, run to its callback: which address came back
 * ("" on error / no callback). */
static const char *rc_lookup(struct rc_env *e, struct host_res *h) {
  memset(h, 0, sizeof *h);
  if (mtci_dns_lookup_host(e->dns, "h.test", on_host, h, NULL) != 0) return "";
  struct host_res *one[1] = {h};
  if (!rc_wait(e, one, 1) || h->calls != 1 || h->err != 0 || h->a.n4 != 1) return "";
  return h->a.v4[0];
}

static uint64_t rc_a_queries(mock_dns *m) {
  mock_dns_stats st;
  mock_dns_stats_get(m, &st);
  return st.a;
}

TEST(dns_resolv_conf_reload) {
  struct rc_env e;
  int up = rc_up(&e);
  CHECK_EQ_INT(up, 0);
  if (up != 0) {
    rc_down(&e);
    return;
  }
  struct host_res h;
  char r1[16], r2[16], r3[16], r4[16];
  snprintf(r1, sizeof r1, "%s", rc_lookup(&e, &h)); /* A */
  int w1 = rc_write(&e, "127.0.0.2");
  /* within the re-check interval: the file is not looked at yet */
  snprintf(r2, sizeof r2, "%s", rc_lookup(&e, &h));
  uint64_t reloads2 = mtci_dns_reloads(e.dns);
  e.skew += MTCI_DNS_RECHECK_MS + 100;
  uint64_t a_before = rc_a_queries(e.a);
  snprintf(r3, sizeof r3, "%s", rc_lookup(&e, &h)); /* B now */
  uint64_t reloads3 = mtci_dns_reloads(e.dns);
  uint64_t a_after = rc_a_queries(e.a), b_after = rc_a_queries(e.b);
  /* a missing file is a state too: c-ares 1.18 then asks 127.0.0.1 (A) */
  int gone = unlink(e.path);
  e.skew += MTCI_DNS_RECHECK_MS + 100;
  snprintf(r4, sizeof r4, "%s", rc_lookup(&e, &h));
  uint64_t reloads4 = mtci_dns_reloads(e.dns);
  rc_down(&e);
  CHECK(strcmp(r1, RC_ADDR_A) == 0);
  CHECK_EQ_INT(w1, 0);
  CHECK(strcmp(r2, RC_ADDR_A) == 0);
  CHECK_EQ_INT(reloads2, 0);
  CHECK(strcmp(r3, RC_ADDR_B) == 0);
  CHECK_EQ_INT(reloads3, 1);
  CHECK_EQ_INT(a_after, a_before); /* A was not asked again */
  CHECK_EQ_INT(b_after, 1);
  CHECK_EQ_INT(gone, 0);
  CHECK(strcmp(r4, RC_ADDR_A) == 0);
  CHECK_EQ_INT(reloads4, 2);
}

TEST(dns_resolv_conf_in_flight) {
  struct rc_env e;
  int up = rc_up(&e);
  CHECK_EQ_INT(up, 0);
  if (up != 0) {
    rc_down(&e);
    return;
  }
  /* x is asked (c-ares sends at once) but not answered yet when the file
   * changes; y starts after the change while x still waits. */
  struct host_res x, y, z, w, v;
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  int rx = mtci_dns_lookup_host(e.dns, "h.test", on_host, &x, NULL);
  int w1 = rc_write(&e, "127.0.0.2");
  e.skew += MTCI_DNS_RECHECK_MS + 100;
  int ry = mtci_dns_lookup_host(e.dns, "h.test", on_host, &y, NULL);
  uint64_t reloads_y = mtci_dns_reloads(e.dns); /* x holds the old channel */
  struct host_res *xy[2] = {&x, &y};
  int both = rc_wait(&e, xy, 2);
  uint64_t reloads_xy = mtci_dns_reloads(e.dns); /* rebuilt after the last callback */
  char rz[16];
  snprintf(rz, sizeof rz, "%s", rc_lookup(&e, &z)); /* the next one goes to B */
  uint64_t a_xyz = rc_a_queries(e.a), b_xyz = rc_a_queries(e.b);
  /* A cancelled lookup does not hold a rebuild back, and gets no callback
   * when its channel goes. */
  memset(&w, 0, sizeof w);
  uint32_t wid = 0;
  int rw = mtci_dns_lookup_host(e.dns, "h.test", on_host, &w, &wid);
  int cw = mtci_dns_cancel(e.dns, wid);
  int w2 = rc_write(&e, "127.0.0.1");
  e.skew += MTCI_DNS_RECHECK_MS + 100;
  char rv[16];
  snprintf(rv, sizeof rv, "%s", rc_lookup(&e, &v)); /* rebuilt at once: A */
  uint64_t reloads_v = mtci_dns_reloads(e.dns);
  size_t active = mtci_dns_active(e.dns);
  rc_down(&e);
  CHECK_EQ_INT(rx, 0);
  CHECK_EQ_INT(w1, 0);
  CHECK_EQ_INT(ry, 0);
  CHECK_EQ_INT(reloads_y, 0);
  CHECK(both);
  CHECK_EQ_INT(x.calls, 1);
  CHECK_EQ_INT(x.err, 0); /* not ended by the rebuild */
  CHECK_EQ_INT(x.a.n4, 1);
  CHECK(strcmp(x.a.v4[0], RC_ADDR_A) == 0);
  CHECK_EQ_INT(y.calls, 1);
  CHECK_EQ_INT(y.err, 0);
  CHECK(strcmp(y.a.v4[0], RC_ADDR_A) == 0); /* started on the stale channel */
  CHECK_EQ_INT(reloads_xy, 1);
  CHECK(strcmp(rz, RC_ADDR_B) == 0);
  CHECK_EQ_INT(a_xyz, 2);
  CHECK_EQ_INT(b_xyz, 1);
  CHECK_EQ_INT(rw, 0);
  CHECK_EQ_INT(cw, 0);
  CHECK_EQ_INT(w2, 0);
  CHECK(strcmp(rv, RC_ADDR_A) == 0);
  CHECK_EQ_INT(reloads_v, 2);
  CHECK_EQ_INT(w.calls, 0);
  CHECK_EQ_INT(active, 0);
}

TEST(host_mode_loop) {
  struct env e;
  int up = env_up(&e, NULL);
  struct host_loop h;
  memset(&h, 0, sizeof h);
  h.timer_at = -1;
  mtci_poller hp;
  mtci_poller_config pc = {h_watch, h_timer, &h, 0, 0};
  if (up == 0) up = mtci_poller_init(&hp, &pc);
  if (up) env_down(&e);
  CHECK_EQ_INT(up, 0);
  mtci_discovery_settings s;
  test_settings(&e, &s);
  s.stagger_ms = 100;
  s.use_plain_dns = 1;
  mock_doh_switches sw = {0};
  sw.fail = 1;
  set_switches(&e, e.g, &sw); /* Google fails, Cloudflare answers */
  int rc = mtci_discovery_new(&hp, &s, on_result, &e, &e.d);
  if (rc == 0) rc = start(&e);
  int64_t end = mtci_clock_monotonic_ms() + LIMIT_MS;
  int max_watched = 0;
  while (rc == 0 && !e.res.got && mtci_clock_monotonic_ms() < end) {
    struct pollfd pf[HOST_MAX];
    size_t n = h.n;
    if ((int)n > max_watched) max_watched = (int)n;
    for (size_t i = 0; i < n; i++) {
      pf[i].fd = h.fd[i];
      pf[i].events = (short)(((h.ev[i] & MTCI_IO_READ) ? POLLIN : 0) |
                             ((h.ev[i] & MTCI_IO_WRITE) ? POLLOUT : 0));
      pf[i].revents = 0;
    }
    int64_t now = mtci_clock_realtime_ms();
    int64_t wait = h.timer_at < 0 ? 50 : (h.timer_at > now ? h.timer_at - now : 0);
    if (wait > 50) wait = 50;
    int pr = poll(pf, (nfds_t)n, (int)wait);
    if (pr < 0 && errno != EINTR) break;
    for (size_t i = 0; pr > 0 && i < n; i++) {
      unsigned ev = 0;
      if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) ev |= MTCI_IO_READ;
      if (pf[i].revents & (POLLOUT | POLLHUP | POLLERR)) ev |= MTCI_IO_WRITE;
      if (ev) (void)mtci_poller_dispatch(&hp, pf[i].fd, ev);
    }
    now = mtci_clock_realtime_ms();
    if (h.timer_at >= 0 && now >= h.timer_at) { /* the one-shot timer fired */
      h.timer_at = -1;
      mtci_poller_timer_fired(&hp);
      mtci_discovery_on_timeout(e.d, now);
      mtci_poller_timer_sync(&hp, mtci_clock_realtime_ms());
    }
  }
  struct result res = e.res;
  int same = same_endpoints(&res.cfg, k_rules_a, 2, 0);
  mtci_discovery_free(e.d);
  e.d = NULL;
  size_t left = h.n; /* every fd the host watched was released */
  mtci_poller_free(&hp);
  env_down(&e);
  CHECK_EQ_INT(rc, 0);
  CHECK(res.got);
  CHECK_EQ_INT(res.err, 0);
  CHECK_EQ_INT(res.source, MTCI_SOURCE_CLOUDFLARE);
  CHECK(same);
  CHECK(max_watched >= 1);
  CHECK(h.timer_calls >= 1);
  CHECK_EQ_INT(h.bad, 0);
  CHECK_EQ_INT(left, 0);
}

TEST(error_texts) {
  static const int codes[] = {
      MTC_ERR_DOH_HTTP_STATUS, MTC_ERR_DOH_HTTP,           MTC_ERR_DOH_TLS,
      MTC_ERR_DNS_FAILED,      MTC_ERR_DNS_NOT_FOUND,      MTC_ERR_DNS_NO_DATA,
      MTC_ERR_DNS_TOO_MANY,    MTC_ERR_DISCOVERY_TIMEOUT,  MTC_ERR_DISCOVERY_CANCELLED,
      MTC_ERR_DISCOVERY_BUSY,  MTC_ERR_DISCOVERY_NO_SOURCE};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    CHECK(strcmp(mtc_strerror(codes[i]), "unknown error") != 0);
}

TEST_MAIN("discovery", CASE(request_urls), CASE(random_padding), CASE(http_date),
          CASE(race_fallthrough_and_tampered), CASE(race_winner_cancels_and_deadline),
          CASE(doh_google_wins), CASE(doh_phone_rules), CASE(doh_google_500_cloudflare_wins),
          CASE(doh_tampered_google), CASE(doh_both_expired), CASE(doh_slow_google_cancelled),
          CASE(doh_hang_timeout), CASE(race_total_timeout), CASE(clock_offset_from_date),
          CASE(doh_broken_answers), CASE(doh_tls_and_refused), CASE(mock_dns_bytes),
          CASE(cancel_restart_free), CASE(settings_rejected), CASE(dns_txt_wins),
          CASE(dns_after_doh_failures), CASE(dns_host_lookup), CASE(dns_txt_failures),
          CASE(dns_resolv_conf_reload), CASE(dns_resolv_conf_in_flight),
          CASE(host_mode_loop), CASE(error_texts))
