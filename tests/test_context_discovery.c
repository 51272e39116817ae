/*
 * Endpoint discovery in the MTContext (src/context_discovery.c) against the
 * in-process mock DC cluster and two mock DoH servers (tests/mockdc): the
 * mock "Google" and "Cloudflare" serve a real-format simple config,
 * encrypted with a TEST key whose public half the context is given, whose
 * rules point each DC at its alternative port.
 *
 *   blocked_seeds_*   every DC's seed port refuses: the demo's first login
 *                     (DC 2 -> PHONE_MIGRATE_5 -> sign-in on DC 5 -> 1 MiB
 *                     from DC 1 via FILE_MIGRATE + authorization transfer)
 *                     completes through the discovered endpoints, within the
 *                     budget (<= 2 HTTP requests, 3 perm keys); a second run
 *                     from the saved state makes no HTTP request
 *   healthy_start     seeds work: no discovery, no HTTP request
 *   google_tampered   Google's answer fails its SHA-256 check: counted and
 *                     logged, Cloudflare's config is used, nothing of
 *                     Google's reaches the address sets
 *   google_malformed / google_oversized
 *                     the same for a TXT record that is no simple config and
 *                     for a body over the 64 KiB cap (a raw HTTP responder)
 *   both_expired      both answers expired: the run fails with
 *                     MTC_ERR_SCONF_EXPIRED, the address sets stay, the
 *                     request fails with MTC_ERR_UNREACHABLE after
 *                     max_connect_attempts; no further run or connect storm
 *   silent_seed       the seed accepts TCP and never answers: the time
 *                     trigger starts discovery and the silent connection is
 *                     replaced
 *   secret_clock      an ipPortSecret endpoint (ee: fake-TLS) through the
 *                     mock MTProxy, whose clock - like the DoH Date header
 *                     and the DCs - is 2 h ahead of ours: the Date header
 *                     correction makes the ClientHello timestamp acceptable
 *   settings          argument checks, no_discovery, custom seeds without
 *                     sources (no discovery)
 * Set MTC_TEST_VERBOSE=1 to see the context's log lines.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "crypto/crypto.h"
#include "discovery/discovery.h"
#include "mock_auth.h"
#include "mock_dc.h"
#include "mock_doh.h"
#include "mock_loop.h"
#include "mock_proxy.h"
#include "mtconn/mtconn.h"
#include "mtconn/tl_api.h"
#include "store.h"
#include "context_env.h"
#include "context_requests.h"
#include "test.h"
#include "test_net.h"
#include "tl/tl.h"

#define SCONF_KEY 3 /* mock_test_key_pem(3): mock DC 4's key, used here to sign the config */

static int g_verbose;

/* ---- TL bodies ------------------------------------------------------------------------- */

/* ---- harness: one context, driven by mtc_context_run or a host poll() loop ---------------- */

enum { MODE_RUN = 0, MODE_HOST = 1 };

typedef ctx_res res;

typedef struct evrec {
  int type, dc_id, state, reason;
  char data[16];
} evrec;

#define MAX_EVS 2048

typedef struct harness {
  int mode;
  mtc_context *ctx;
  ctx_host host; /* MODE_HOST */
  evrec evs[MAX_EVS];
  size_t n_evs;
  char *log;
  size_t log_len, log_cap;
  char tag[16];
} harness;

static void cb_watch(void *ud, int fd, unsigned events) {
  harness *h = ud;
  ctx_host_watch(&h->host, fd, events);
}

static void cb_timer(void *ud, int64_t delay) {
  harness *h = ud;
  ctx_host_timer(&h->host, delay);
}

static void cb_event(void *ud, const mtc_event *ev) {
  harness *h = ud;
  if (h->n_evs >= MAX_EVS) return;
  evrec *e = &h->evs[h->n_evs++];
  memset(e, 0, sizeof *e);
  e->type = ev->type;
  e->dc_id = ev->dc_id;
  e->state = ev->state;
  e->reason = ev->reason;
  if (ev->type == MTC_EVENT_DISCOVERY && ev->data && ev->len < sizeof e->data)
    memcpy(e->data, ev->data, ev->len);
}

static void cb_log(void *ud, mtc_log_level level, const char *line) {
  harness *h = ud;
  if (ctx_log_add(&h->log, &h->log_len, &h->log_cap, line) != 0) return;
  if (g_verbose)
    fprintf(stderr, "    [%s %lld %d] %s\n", h->tag, (long long)(mono_ms() % 100000), level, line);
}

static void res_cb(void *ud, const mtc_result *r) { ctx_res_take(ud, r); }

static void h_step(harness *h, int max_ms) {
  if (h->mode == MODE_RUN) {
    (void)mtc_context_run(h->ctx, max_ms);
    return;
  }
  ctx_host_step(&h->host, h->ctx, max_ms);
}

/* Spin until *calls > 0 or timeout; 1 if it came. */
static int h_wait(harness *h, const int *calls, int timeout_ms) {
  int64_t end = mono_ms() + timeout_ms;
  while (!(calls && *calls > 0)) {
    if (mono_ms() >= end) return 0;
    h_step(h, 20);
  }
  return 1;
}

static void h_idle(harness *h, int ms) { (void)h_wait(h, NULL, ms); }

static int h_call(harness *h, const mtc_invoke_options *o, const body *b, res *r, int timeout_ms) {
  if (mtc_invoke(h->ctx, o, b->b, b->n, res_cb, r, NULL) != 0) return -1;
  return h_wait(h, &r->calls, timeout_ms) ? 0 : -1;
}

static int h_start(harness *h, int mode, const mtc_settings *s, const char *tag) {
  memset(h, 0, sizeof *h);
  h->mode = mode;
  ctx_host_init(&h->host);
  snprintf(h->tag, sizeof h->tag, "%s", tag);
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  if (mode == MODE_HOST) {
    cb.watch_fd = cb_watch;
    cb.set_timer = cb_timer;
  }
  cb.on_event = cb_event;
  cb.on_log = cb_log;
  cb.random = test_rnd;
  return mtc_context_new(&h->ctx, s, &cb, h);
}

static void h_stop(harness *h) {
  mtc_context_free(h->ctx);
  h->ctx = NULL;
}

static void h_free(harness *h) {
  h_stop(h);
  free(h->log);
  h->log = NULL;
}

static size_t count_events(const harness *h, int type, int reason) {
  size_t n = 0;
  for (size_t i = 0; i < h->n_evs; i++)
    if (h->evs[i].type == type && (reason == 1 || h->evs[i].reason == reason)) n++;
  return n;
}

static const evrec *last_event(const harness *h, int type) {
  for (size_t i = h->n_evs; i-- > 0;)
    if (h->evs[i].type == type) return &h->evs[i];
  return NULL;
}

static int get_counters(harness *h, mtc_counters *c, char **json) {
  if (ctx_counters(h->ctx, c) != 0) return -1;
  if (json && mtc_context_counters_json(h->ctx, json) != 0) return -1;
  return 0;
}

static const mtc_dc_counters *dc_ctr(const mtc_counters *c, int dc) {
  static const mtc_dc_counters zero;
  for (size_t i = 0; i < c->n_dcs; i++)
    if (c->dcs[i].dc_id == dc) return &c->dcs[i];
  return &zero;
}

/* ---- environment: the cluster, the two DoH mocks, the state directory --------------------------- */

typedef struct denv {
  ctx_env base;         /* the cluster (alternative ports on), the state directory */
  char sconf_pem[2048]; /* the public key of the config's signing key */
  mock_loop *loop;
  mock_doh *g, *c;
  char gurl[64], curl[80];
  const char *gl[1], *cl_list[1];
} denv;

/* Rules: DC d -> 127.0.0.1:port[d-1] (ipPort), one rule per DC. */
static void make_rules(const uint16_t port[5], mock_sconf_ip ips[5], mock_sconf_rule rules[5]) {
  for (int i = 0; i < 5; i++) {
    memset(&ips[i], 0, sizeof ips[i]);
    ips[i].ip[0] = 127;
    ips[i].ip[3] = 1;
    ips[i].port = port[i];
    rules[i].phone_prefix_rules = "";
    rules[i].dc_id = i + 1;
    rules[i].ips = &ips[i];
    rules[i].n_ips = 1;
  }
}

static int denv_start(denv *e, int refuse, int32_t dc_clock, int64_t doh_clock) {
  memset(e, 0, sizeof *e);
  mock_dc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.alt_ports = 1;
  for (int i = 0; i < 5; i++) {
    cfg.faults[i].refuse_seed = refuse;
    cfg.faults[i].clock_offset = dc_clock;
  }
  REQ(ctx_env_start(&e->base, &cfg, "/tmp/mtc_cdisc_XXXXXX") == 0);
  uint16_t alt[5];
  for (int dc = 1; dc <= 5; dc++) {
    alt[dc - 1] = mock_dc_alt_port(e->base.cl, dc);
    REQ(alt[dc - 1] != 0);
  }
  size_t pl = 0;
  REQ(mock_dc_public_pem(e->base.cl, SCONF_KEY + 1, e->sconf_pem, sizeof e->sconf_pem, &pl) == 0);
  /* the DoH side */
  REQ(mock_loop_new(&e->loop) == 0);
  mock_sconf_ip ips[5];
  mock_sconf_rule rules[5];
  make_rules(alt, ips, rules);
  mock_doh_config dc;
  memset(&dc, 0, sizeof dc);
  dc.key_pem = mock_test_key_pem(SCONF_KEY);
  dc.key_pem_len = strlen(dc.key_pem);
  dc.rules = rules;
  dc.n_rules = 5;
  dc.clock_offset = doh_clock;
  REQ(mock_doh_new(e->loop, &dc, &e->g) == 0);
  REQ(mock_doh_new(e->loop, &dc, &e->c) == 0);
  snprintf(e->gurl, sizeof e->gurl, "http://127.0.0.1:%u", (unsigned)mock_doh_port(e->g));
  /* given with the API path, as a user might copy it */
  snprintf(e->curl, sizeof e->curl, "http://127.0.0.1:%u/dns-query", (unsigned)mock_doh_port(e->c));
  e->gl[0] = e->gurl;
  e->cl_list[0] = e->curl;
  REQ(mock_loop_start_thread(e->loop) == 0);
  return 0;
}

static void denv_stop(denv *e) {
  if (e->loop) mock_loop_stop_thread(e->loop);
  mock_doh_free(e->g);
  mock_doh_free(e->c);
  mock_loop_free(e->loop);
  ctx_env_stop(&e->base);
  memset(e, 0, sizeof *e);
}

static void denv_settings(denv *e, mtc_settings *s) {
  ctx_env_settings(&e->base, s);
  s->doh_google = e->gl;
  s->n_doh_google = 1;
  s->doh_cloudflare = e->cl_list;
  s->n_doh_cloudflare = 1;
  s->simple_config_key_pem = e->sconf_pem;
  s->no_plain_dns = 1; /* nothing in the tests may ask the system's resolvers */
}

static void doh_switches(denv *e, mock_doh *d, const mock_doh_switches *sw) {
  mock_loop_lock(e->loop);
  mock_doh_set_switches(d, sw);
  mock_loop_unlock(e->loop);
}

static void doh_stats(denv *e, mock_doh *d, mock_doh_stats *st) {
  mock_loop_lock(e->loop);
  mock_doh_stats_get(d, st);
  mock_loop_unlock(e->loop);
}

static uint64_t mock_perm_keys(denv *e) {
  uint64_t n = 0;
  for (int dc = 1; dc <= 5; dc++) {
    mock_dc_counters c;
    if (mock_dc_get_counters(e->base.cl, dc, &c) == 0) n += c.handshakes_perm;
  }
  return n;
}

/* Index of port in the saved address set of dc (-1: absent, -2: no such DC / no state). */
static int state_addr_index(const char *path, int dc, uint16_t port) {
  static mtci_state st;
  if (mtci_store_load(path, &st, NULL, 0) != 0) return -2;
  int r = -2;
  mtci_state_dc *d = mtci_state_find_dc(&st, dc);
  if (d) {
    r = -1;
    for (int i = 0; i < d->n_addrs && r < 0; i++)
      if (d->addrs[i].port == port) r = i;
  }
  mtci_state_clear(&st);
  return r;
}

static int state_discovered(const char *path, char *source, size_t cap, int64_t *expires) {
  static mtci_state st;
  if (mtci_store_load(path, &st, NULL, 0) != 0) return -1;
  int present = st.discovered.present;
  snprintf(source, cap, "%s", st.discovered.source);
  *expires = st.discovered.expires_at;
  mtci_state_clear(&st);
  return present;
}

/* ---- the demo's login flow --------------------------------------------------------------------- */

static int login(harness *h) {
  res r;
  memset(&r, 0, sizeof r);
  body q = q_send_code();
  REQ(h_call(h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 5);
  char hash[64];
  REQ(sent_code_hash(r.data, r.len, hash, sizeof hash) == 0);
  ctx_res_clear(&r);
  q = q_sign_in(hash);
  REQ(h_call(h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 5);
  REQ(r.len >= 4 && mtci_le32(r.data) == MTC_TL_ID_auth_authorization);
  ctx_res_clear(&r);
  return 0;
}

/* The 1 MiB document: the first part for the main DC (FILE_MIGRATE_1 and the
 * authorization transfer), the rest to DC 1 directly. */
static int download(harness *h, int first_main) {
  const int32_t part = 256 * 1024;
  res r[4];
  memset(r, 0, sizeof r);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = first_main ? MTC_TARGET_MAIN : MTC_TARGET_DC;
  o.dc_id = first_main ? 0 : 1;
  body q = q_get_file(0, part);
  REQ(h_call(h, &o, &q, &r[0], WAIT_MS) == 0);
  REQ(r[0].dc_id == 1);
  REQ(ctx_check_part(&r[0], 0, (size_t)part) == 0);
  o.target = MTC_TARGET_DC;
  o.dc_id = 1;
  for (int i = 1; i < 4; i++) {
    body qi = q_get_file((int64_t)i * part, part);
    REQ(mtc_invoke(h->ctx, &o, qi.b, qi.n, res_cb, &r[i], NULL) == 0);
  }
  for (int i = 1; i < 4; i++) {
    REQ(h_wait(h, &r[i].calls, WAIT_MS));
    REQ(ctx_check_part(&r[i], (int64_t)i * part, (size_t)part) == 0);
  }
  for (int i = 0; i < 4; i++) ctx_res_clear(&r[i]);
  return 0;
}

/* ---- blocked seeds: the demo scenario ------------------------------------------------------------ */

static int blocked_seeds(int mode) {
  denv e;
  REQ(denv_start(&e, 1, 0, 0) == 0);
  mtc_settings s;
  denv_settings(&e, &s);
  harness h;
  int64_t t0 = mono_ms();
  REQ(h_start(&h, mode, &s, mode == MODE_RUN ? "run" : "host") == 0);
  REQ(login(&h) == 0);
  int64_t t_login = mono_ms();
  REQ(mtc_context_main_dc(h.ctx) == 5);
  REQ(download(&h, 1) == 0);
  int64_t t_done = mono_ms();
  mtc_counters c;
  char *json = NULL;
  REQ(get_counters(&h, &c, &json) == 0);
  mock_doh_stats gs, cs;
  doh_stats(&e, e.g, &gs);
  doh_stats(&e, e.c, &cs);
  uint64_t dead = 0;
  for (int dc = 1; dc <= 5; dc++) dead += dc_ctr(&c, dc)->connects_failed;
  fprintf(stderr,
          "    [%s] blocked seeds: login %lld ms, + 1 MiB %lld ms; %llu HTTP requests (mock: google %llu, "
          "cloudflare %llu), %llu DNS queries; connects %llu (%llu to dead seeds: dc2 %llu, dc5 %llu, "
          "dc1 %llu); perm keys %llu (mock %llu)\n",
          h.tag, (long long)(t_login - t0), (long long)(t_done - t_login),
          (unsigned long long)c.http_requests, (unsigned long long)gs.google,
          (unsigned long long)cs.cloudflare, (unsigned long long)c.dns_queries,
          (unsigned long long)c.connects_started, (unsigned long long)dead,
          (unsigned long long)dc_ctr(&c, 2)->connects_failed,
          (unsigned long long)dc_ctr(&c, 5)->connects_failed,
          (unsigned long long)dc_ctr(&c, 1)->connects_failed, (unsigned long long)c.handshakes_perm,
          (unsigned long long)mock_perm_keys(&e));
  if (g_verbose && json) fprintf(stderr, "    counters: %s\n", json);
  /* the budget */
  REQ(c.http_requests >= 1 && c.http_requests <= 2);
  REQ(gs.google + cs.cloudflare == c.http_requests);
  REQ(c.dns_queries == 0);
  REQ(c.handshakes_perm == 3 && mock_perm_keys(&e) == 3);
  REQ(c.discovery_runs == 1 && c.discovery_failures == 0 && c.discovery_last_error == 0);
  /* dead seeds: DC 2 twice (the trigger), then the discovered endpoints go
   * first for every DC: no dead connect on DC 5 or DC 1 */
  REQ(dc_ctr(&c, 2)->connects_failed == 2);
  REQ(dc_ctr(&c, 5)->connects_failed == 0 && dc_ctr(&c, 1)->connects_failed == 0);
  REQ(dead == 2);
  REQ(dc_ctr(&c, 2)->n_reconnect_reasons >= 1 &&
      dc_ctr(&c, 2)->reconnect_reasons[0].reason == MTC_ERR_IO_REFUSED);
  REQ(c.connects_succeeded == 3);
  /* by reason: DC 2's first connect (main) and retry (reconnect) hit the dead
   * seed; the one through the discovered endpoint counts as discovery */
  REQ(dc_ctr(&c, 2)->connects_by_reason[MTC_REASON_MAIN] == 1 &&
      dc_ctr(&c, 2)->connects_by_reason[MTC_REASON_RECONNECT] == 1 &&
      dc_ctr(&c, 2)->connects_by_reason[MTC_REASON_DISCOVERY] == 1);
  REQ(dc_ctr(&c, 5)->connects_by_reason[MTC_REASON_MIGRATE] == 1 &&
      dc_ctr(&c, 1)->connects_by_reason[MTC_REASON_MIGRATE] == 1);
  REQ(json && strstr(json, "\"discovery\":{\"runs\":1,"));
  free(json);
  /* the result: an event naming the source, help.getConfig over the new
   * connection of DC 2 (its only session), then the usual flow */
  const evrec *ev = last_event(&h, MTC_EVENT_DISCOVERY);
  REQ(ev && ev->reason == 0 && ev->dc_id == 2 && strcmp(ev->data, "google") == 0);
  REQ(count_events(&h, MTC_EVENT_DISCOVERY, 1) == 1);
  REQ(ctx_mock_method(e.base.cl, 2, "help.getConfig") == 1);
  REQ(ctx_mock_method(e.base.cl, 5, "auth.exportAuthorization") == 1);
  REQ(ctx_mock_method(e.base.cl, 1, "auth.importAuthorization") == 1);
  REQ(h.log && strstr(h.log, "starting endpoint discovery") &&
      strstr(h.log, "help.getConfig confirmed the endpoints from google"));
  h_stop(&h);
  /* persisted: the discovered record and the endpoints, first in line */
  char src[32];
  int64_t exp = 0;
  REQ(state_discovered(e.base.state_path, src, sizeof src, &exp) == 1);
  REQ(strcmp(src, "google") == 0 && exp > 0);
  for (int dc = 1; dc <= 5; dc++) {
    if (dc == 3 || dc == 4) continue; /* not used */
    REQ(state_addr_index(e.base.state_path, dc, mock_dc_alt_port(e.base.cl, dc)) == 0);
    REQ(state_addr_index(e.base.state_path, dc, mock_dc_port(e.base.cl, dc)) > 0); /* kept, behind */
  }
  free(h.log);

  /* second run from the saved state: no HTTP request, no dead connect */
  harness h2;
  REQ(h_start(&h2, mode, &s, "rerun") == 0);
  REQ(mtc_context_is_authorized(h2.ctx, 5) == 1);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_get_self();
  int64_t t1 = mono_ms();
  REQ(h_call(&h2, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 5);
  int64_t t2 = mono_ms();
  ctx_res_clear(&r);
  REQ(download(&h2, 0) == 0);
  REQ(get_counters(&h2, &c, NULL) == 0);
  doh_stats(&e, e.g, &gs);
  doh_stats(&e, e.c, &cs);
  fprintf(stderr,
          "    [%s] second run with the state: first answer %lld ms, %llu HTTP requests, %llu connects "
          "(%llu failed), %llu perm keys\n",
          h.tag, (long long)(t2 - t1), (unsigned long long)c.http_requests,
          (unsigned long long)c.connects_started, (unsigned long long)c.connects_failed,
          (unsigned long long)c.handshakes_perm);
  REQ(c.http_requests == 0 && c.discovery_runs == 0 && gs.google + cs.cloudflare == 1);
  REQ(c.connects_failed == 0 && c.connects_started == 2 && c.handshakes_perm == 0);
  REQ(count_events(&h2, MTC_EVENT_DISCOVERY, 1) == 0);
  h_free(&h2);
  denv_stop(&e);
  return 0;
}

/*
 * phone_prefix_rules: the simple config gives DC 2 two endpoints, the
 * working alternative port for "+1" numbers and a dead one (port 1) for
 * "+44" numbers. Before login every rule applies; the login's auth.sendCode
 * (+15550000005) tells the context the phone, so only the "+1" endpoint may
 * enter DC 2's set. With settings.phone_number = "+44 20 7946 0000" the
 * "+44" endpoint enters and the "+1" one does not.
 */
static int phone_rules(int given_uk) {
  denv e;
  REQ(denv_start(&e, 1, 0, 0) == 0);
  uint16_t alt[5];
  for (int dc = 1; dc <= 5; dc++) alt[dc - 1] = mock_dc_alt_port(e.base.cl, dc);
  mock_sconf_ip ips[6];
  mock_sconf_rule rules[6];
  make_rules(alt, ips, rules);
  rules[1].phone_prefix_rules = "+1";
  memset(&ips[5], 0, sizeof ips[5]);
  ips[5].ip[0] = 127;
  ips[5].ip[3] = 1;
  ips[5].port = 1; /* nothing listens there */
  rules[5].phone_prefix_rules = "+44";
  rules[5].dc_id = 2;
  rules[5].ips = &ips[5];
  rules[5].n_ips = 1;
  REQ(mock_doh_set_rules(e.g, 0, 0, rules, 6) == 0);
  REQ(mock_doh_set_rules(e.c, 0, 0, rules, 6) == 0);
  mtc_settings s;
  denv_settings(&e, &s);
  if (given_uk) s.phone_number = "+44 20 7946 0000";
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, given_uk ? "uk" : "learnt") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_send_code();
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = given_uk ? 3000 : 0; /* DC 2 has only dead endpoints then */
  int rc = h_call(&h, &o, &q, &r, WAIT_MS);
  if (!given_uk) REQ(rc == 0 && r.kind == MTC_RESULT_OK && r.dc_id == 5);
  ctx_res_clear(&r);
  mtc_counters c;
  REQ(get_counters(&h, &c, NULL) == 0);
  REQ(c.discovery_runs == 1 && c.discovery_failures == 0);
  REQ(h.log && !strstr(h.log, "15550000005") && !strstr(h.log, "2079460000")); /* never logged */
  h_stop(&h);
  int dead = state_addr_index(e.base.state_path, 2, 1);
  int good = state_addr_index(e.base.state_path, 2, alt[1]);
  fprintf(stderr, "    [%s] DC 2 after discovery: +44 endpoint at %d, +1 endpoint at %d\n",
          given_uk ? "uk" : "learnt", dead, good);
  if (given_uk) {
    REQ(dead >= 0 && good == -1);
  } else {
    REQ(dead == -1 && good == 0);
  }
  free(h.log);
  denv_stop(&e);
  return 0;
}

TEST(phone_rules_learnt) { CHECK(phone_rules(0) == 0); }
TEST(phone_rules_given) { CHECK(phone_rules(1) == 0); }

TEST(blocked_seeds_run) { CHECK(blocked_seeds(MODE_RUN) == 0); }
TEST(blocked_seeds_host) { CHECK(blocked_seeds(MODE_HOST) == 0); }

/* ---- healthy start: no request at all -------------------------------------------------------------- */

static int healthy_start(void) {
  denv e;
  REQ(denv_start(&e, 0, 0, 0) == 0);
  mtc_settings s;
  denv_settings(&e, &s);
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "healthy") == 0);
  REQ(login(&h) == 0);
  REQ(download(&h, 1) == 0);
  h_idle(&h, 300);
  mtc_counters c;
  REQ(get_counters(&h, &c, NULL) == 0);
  mock_doh_stats gs, cs;
  doh_stats(&e, e.g, &gs);
  doh_stats(&e, e.c, &cs);
  fprintf(stderr, "    healthy start: %llu HTTP requests, %llu DNS queries, %llu connects, %llu perm keys\n",
          (unsigned long long)c.http_requests, (unsigned long long)c.dns_queries,
          (unsigned long long)c.connects_started, (unsigned long long)c.handshakes_perm);
  REQ(c.http_requests == 0 && c.dns_queries == 0 && c.discovery_runs == 0);
  REQ(gs.connections == 0 && cs.connections == 0);
  REQ(c.connects_started == 3 && c.connects_failed == 0 && c.handshakes_perm == 3);
  REQ(count_events(&h, MTC_EVENT_DISCOVERY, 1) == 0);
  h_free(&h);
  denv_stop(&e);
  return 0;
}

TEST(healthy_start) { CHECK(healthy_start() == 0); }

/* ---- Google tampered: Cloudflare's config wins, Google's changes nothing --------------------------------- */

static int google_tampered(void) {
  denv e;
  REQ(denv_start(&e, 1, 0, 0) == 0);
  /* Google's config (which must never be read) would send every DC to
   * these ports */
  uint16_t bogus[5] = {9, 9, 9, 9, 9};
  mock_sconf_ip ips[5];
  mock_sconf_rule rules[5];
  make_rules(bogus, ips, rules);
  mock_loop_lock(e.loop);
  int rc = mock_doh_set_rules(e.g, 0, 0, rules, 5);
  mock_loop_unlock(e.loop);
  REQ(rc == 0);
  mock_doh_switches sw;
  memset(&sw, 0, sizeof sw);
  sw.tampered = 1;
  doh_switches(&e, e.g, &sw);
  mtc_settings s;
  denv_settings(&e, &s);
  s.reconnect_initial_ms = 200;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "tampered") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 2);
  ctx_res_clear(&r);
  mtc_counters c;
  REQ(get_counters(&h, &c, NULL) == 0);
  mock_doh_stats gs, cs;
  doh_stats(&e, e.g, &gs);
  doh_stats(&e, e.c, &cs);
  fprintf(stderr, "    google tampered: %llu HTTP requests (google %llu, cloudflare %llu), rejected: "
                  "tampered %llu\n",
          (unsigned long long)c.http_requests, (unsigned long long)gs.google,
          (unsigned long long)cs.cloudflare,
          (unsigned long long)c.discovery_rejected[MTC_DISCOVERY_TAMPERED]);
  REQ(c.http_requests == 2 && gs.google == 1 && cs.cloudflare == 1);
  REQ(c.discovery_rejected[MTC_DISCOVERY_TAMPERED] == 1);
  for (int k = 1; k < MTC_DISCOVERY_REJECT_COUNT; k++) REQ(c.discovery_rejected[k] == 0);
  REQ(c.discovery_runs == 1 && c.discovery_failures == 0);
  const evrec *ev = last_event(&h, MTC_EVENT_DISCOVERY);
  REQ(ev && ev->reason == 0 && strcmp(ev->data, "cloudflare") == 0);
  REQ(h.log && strstr(h.log, "google#0 answer rejected: bad hash"));
  REQ(mtc_context_save(h.ctx) == 0);
  for (int dc = 1; dc <= 5; dc++) {
    REQ(state_addr_index(e.base.state_path, dc, 9) == -1); /* nothing of Google's */
    REQ(state_addr_index(e.base.state_path, dc, mock_dc_alt_port(e.base.cl, dc)) == 0);
  }
  char src[32];
  int64_t exp;
  REQ(state_discovered(e.base.state_path, src, sizeof src, &exp) == 1 && strcmp(src, "cloudflare") == 0);
  h_free(&h);
  denv_stop(&e);
  return 0;
}

TEST(google_tampered) { CHECK(google_tampered() == 0); }

/* ---- both expired: a clear failure, nothing changed, no storm ------------------------------------------- */

static int both_expired(void) {
  denv e;
  REQ(denv_start(&e, 1, 0, 0) == 0);
  mock_doh_switches sw;
  memset(&sw, 0, sizeof sw);
  sw.expired = 1;
  doh_switches(&e, e.g, &sw);
  doh_switches(&e, e.c, &sw);
  mtc_settings s;
  denv_settings(&e, &s);
  s.reconnect_initial_ms = 200;
  s.max_connect_attempts = 3;
  harness h;
  REQ(h_start(&h, MODE_HOST, &s, "expired") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  int64_t t0 = mono_ms();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  int64_t t1 = mono_ms();
  REQ(r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_UNREACHABLE);
  ctx_res_clear(&r);
  h_idle(&h, 1500); /* nothing more happens */
  mtc_counters c;
  REQ(get_counters(&h, &c, NULL) == 0);
  fprintf(stderr, "    both expired: request failed after %lld ms (%s); %llu HTTP requests, %llu connects, "
                  "rejected expired %llu, last error %d\n",
          (long long)(t1 - t0), mtc_strerror(MTC_ERR_UNREACHABLE), (unsigned long long)c.http_requests,
          (unsigned long long)c.connects_started,
          (unsigned long long)c.discovery_rejected[MTC_DISCOVERY_EXPIRED], c.discovery_last_error);
  REQ(c.http_requests == 2 && c.discovery_rejected[MTC_DISCOVERY_EXPIRED] == 2);
  REQ(c.discovery_runs == 1 && c.discovery_failures == 1);
  REQ(c.discovery_last_error == MTC_ERR_SCONF_EXPIRED);
  REQ(dc_ctr(&c, 2)->connects_started == 3); /* max_connect_attempts, one address each */
  const evrec *ev = last_event(&h, MTC_EVENT_DISCOVERY);
  REQ(ev && ev->reason == MTC_ERR_SCONF_EXPIRED && ev->dc_id == 2);
  REQ(h.log && strstr(h.log, "answer rejected: expired") &&
      strstr(h.log, "address sets unchanged"));
  /* a new request: one more round, no new run (runs are spaced), the same clear error */
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_UNREACHABLE);
  ctx_res_clear(&r);
  h_idle(&h, 500);
  REQ(get_counters(&h, &c, NULL) == 0);
  REQ(c.http_requests == 2 && c.discovery_runs == 1);
  REQ(dc_ctr(&c, 2)->connects_started == 4);
  /* the address sets never saw the expired configs */
  REQ(mtc_context_save(h.ctx) == 0);
  for (int dc = 1; dc <= 5; dc++) REQ(state_addr_index(e.base.state_path, dc, mock_dc_alt_port(e.base.cl, dc)) < 0);
  REQ(state_addr_index(e.base.state_path, 2, mock_dc_port(e.base.cl, 2)) == 0);
  char src[32];
  int64_t exp;
  REQ(state_discovered(e.base.state_path, src, sizeof src, &exp) == 0);
  h_free(&h);
  denv_stop(&e);
  return 0;
}

TEST(both_expired) { CHECK(both_expired() == 0); }

/* ---- a seed that accepts TCP and stays silent: the time trigger ----------------------------------- */

static int silent_seed(void) {
  denv e;
  REQ(denv_start(&e, 0, 0, 0) == 0);
  /* a listener that never accepts: the kernel completes the TCP handshake */
  uint16_t port = 0;
  int lfd = test_tcp_listen(8, &port);
  REQ(lfd >= 0);
  e.base.seeds[1].port = port; /* DC 2 */
  mtc_settings s;
  denv_settings(&e, &s);
  s.discovery_after_ms = 800;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "silent") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  int64_t t0 = mono_ms();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  int64_t t1 = mono_ms();
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 2);
  ctx_res_clear(&r);
  mtc_counters c;
  REQ(get_counters(&h, &c, NULL) == 0);
  fprintf(stderr, "    silent seed: answered after %lld ms (discovery after 800 ms); %llu HTTP requests, "
                  "%llu connects\n",
          (long long)(t1 - t0), (unsigned long long)c.http_requests,
          (unsigned long long)c.connects_started);
  REQ(t1 - t0 >= 800 && t1 - t0 < 5000); /* well before the 20 s handshake timeout */
  REQ(c.http_requests == 1 && c.discovery_runs == 1);
  REQ(dc_ctr(&c, 2)->connects_started == 2 && c.handshakes_perm == 1);
  REQ(h.log && strstr(h.log, "dropping the silent connection"));
  h_free(&h);
  close(lfd);
  denv_stop(&e);
  return 0;
}

TEST(silent_seed) { CHECK(silent_seed() == 0); }

/* ---- a config that lists one endpoint several times --------------------------------------------------
 *
 * DC 2's seed is black-holed (a listener whose accept queue is full: the
 * kernel drops the SYN, so the dial stays pending) and the time trigger
 * starts discovery while that dial is still running. The config gives DC 2
 * the endpoint X three times and Y once (both refuse). The running round
 * gets the new front entries of the set: exactly X and Y, never an entry
 * past the end of the set (an empty ip, port 0). */

static int dup_endpoints(void) {
  denv e;
  REQ(denv_start(&e, 0, 0, 0) == 0);
  uint16_t port = 0;
  int lfd = test_tcp_listen(0, &port);
  REQ(lfd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fill[3];
  for (int i = 0; i < 3; i++) { /* fill the accept queue; later SYNs are dropped */
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQ(fill[i] >= 0);
    (void)connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
  }
  e.base.seeds[1].port = port; /* DC 2 */
  uint16_t alt[5];
  for (int dc = 1; dc <= 5; dc++) alt[dc - 1] = mock_dc_alt_port(e.base.cl, dc);
  mock_sconf_ip ips[5], dc2[4];
  mock_sconf_rule rules[5];
  make_rules(alt, ips, rules);
  for (int i = 0; i < 4; i++) {
    memset(&dc2[i], 0, sizeof dc2[i]);
    dc2[i].ip[0] = 127;
    dc2[i].ip[3] = i == 3 ? 2 : 1; /* X = 127.0.0.1:1 three times, Y = 127.0.0.2:1 */
    dc2[i].port = 1;
  }
  rules[1].ips = dc2;
  rules[1].n_ips = 4;
  REQ(mock_doh_set_rules(e.g, 0, 0, rules, 5) == 0);
  REQ(mock_doh_set_rules(e.c, 0, 0, rules, 5) == 0);
  mtc_settings s;
  denv_settings(&e, &s);
  s.discovery_after_ms = 500;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "dup") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = 2500;
  REQ(h_call(&h, &o, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_ERROR); /* nothing of DC 2 answers */
  ctx_res_clear(&r);
  mtc_counters c;
  REQ(get_counters(&h, &c, NULL) == 0);
  fprintf(stderr, "    duplicated endpoint: %llu discovery runs, dc 2: %llu connects (%llu failed)\n",
          (unsigned long long)c.discovery_runs, (unsigned long long)dc_ctr(&c, 2)->connects_started,
          (unsigned long long)dc_ctr(&c, 2)->connects_failed);
  REQ(c.discovery_runs == 1 && c.discovery_failures == 0);
  REQ(h.log && strstr(h.log, "connect to 127.0.0.1:1 failed") && strstr(h.log, "connect to 127.0.0.2:1 failed"));
  REQ(!strstr(h.log, "connecting to :") && !strstr(h.log, "connect to :") && !strstr(h.log, ":0 failed"));
  h_free(&h);
  for (int i = 0; i < 3; i++) close(fill[i]);
  close(lfd);
  denv_stop(&e);
  return 0;
}

TEST(dup_endpoints) { CHECK(dup_endpoints() == 0); }

/* ---- ipPortSecret (ee) through the mock MTProxy, clocks 2 h ahead of ours ---------------------------- */

static int secret_clock(void) {
  const int64_t ahead = 7200;
  denv e;
  REQ(denv_start(&e, 1, (int32_t)ahead, ahead) == 0);
  mock_proxy_dc pdcs[5];
  for (int i = 0; i < 5; i++) {
    pdcs[i].dc = i + 1;
    pdcs[i].port = mock_dc_alt_port(e.base.cl, i + 1);
  }
  mock_proxy_config pc;
  memset(&pc, 0, sizeof pc);
  for (int i = 0; i < 16; i++) pc.secret[i] = (uint8_t)(0x30 + i);
  pc.tls_domain = "example.com";
  pc.dcs = pdcs;
  pc.n_dcs = 5;
  pc.rnd = test_rnd;
  pc.clock_offset = ahead;
  mock_proxy *px = NULL;
  mock_loop_lock(e.loop);
  int rc = mock_proxy_new(e.loop, &pc, &px);
  mock_loop_unlock(e.loop);
  REQ(rc == 0);
  /* DC 2 only through the proxy: ee + secret + "example.com" */
  uint8_t secret[1 + 16 + 11];
  secret[0] = 0xee;
  memcpy(secret + 1, pc.secret, 16);
  memcpy(secret + 17, "example.com", 11);
  uint16_t alt[5];
  for (int i = 0; i < 5; i++) alt[i] = mock_dc_alt_port(e.base.cl, i + 1);
  mock_sconf_ip ips[5];
  mock_sconf_rule rules[5];
  make_rules(alt, ips, rules);
  ips[1].port = mock_proxy_port(px);
  ips[1].secret = secret;
  ips[1].secret_len = sizeof secret;
  mock_loop_lock(e.loop);
  rc = mock_doh_set_rules(e.g, 0, 0, rules, 5);
  mock_loop_unlock(e.loop);
  REQ(rc == 0);
  mtc_settings s;
  denv_settings(&e, &s);
  s.reconnect_initial_ms = 200;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "clock") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 2);
  ctx_res_clear(&r);
  mock_proxy_stats ps;
  mock_loop_lock(e.loop);
  mock_proxy_stats_get(px, &ps);
  mock_loop_unlock(e.loop);
  mtc_counters c;
  REQ(get_counters(&h, &c, NULL) == 0);
  fprintf(stderr, "    ee endpoint, clocks +2 h: proxy hellos ok %llu, time rejects %llu; %llu HTTP "
                  "requests\n",
          (unsigned long long)ps.tls_hellos_ok,
          (unsigned long long)ps.rejects[MOCK_PROXY_REJ_TLS_TIME], (unsigned long long)c.http_requests);
  REQ(ps.tls_hellos_ok == 1 && ps.handshakes_ok == 1 && ps.rejects[MOCK_PROXY_REJ_TLS_TIME] == 0);
  REQ(c.http_requests == 1);
  REQ(h.log && strstr(h.log, "local clock is +7200 s off") != NULL);
  /* the secret is kept with the endpoint in the state (not in any log line) */
  REQ(mtc_context_save(h.ctx) == 0);
  REQ(state_addr_index(e.base.state_path, 2, mock_proxy_port(px)) == 0);
  REQ(!strstr(h.log, "303132333435363738393a3b3c3d3e3f"));
  h_free(&h);
  mock_loop_lock(e.loop);
  mock_proxy_free(px);
  mock_loop_unlock(e.loop);
  denv_stop(&e);
  return 0;
}

TEST(secret_clock) { CHECK(secret_clock() == 0); }

/* ---- malformed and oversized answers (a raw HTTP responder as "Google") ----------------------------------- */

typedef struct rawdoh {
  int lfd;
  uint16_t port;
  pthread_t th;
  int stop, served;
  const char *resp;
  size_t resp_len;
} rawdoh;

static void *rawdoh_main(void *arg) {
  rawdoh *r = arg;
  while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
    struct pollfd p = {r->lfd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    int c = accept(r->lfd, NULL, NULL);
    if (c < 0) continue;
    char req[8192];
    size_t n = 0;
    for (int guard = 0; guard < 100 && n < sizeof req - 1; guard++) {
      struct pollfd q = {c, POLLIN, 0};
      if (poll(&q, 1, 50) <= 0) continue;
      ssize_t k = recv(c, req + n, sizeof req - 1 - n, 0);
      if (k <= 0) break;
      n += (size_t)k;
      req[n] = 0;
      if (strstr(req, "\r\n\r\n")) break;
    }
    for (size_t off = 0; off < r->resp_len;) {
      ssize_t w = send(c, r->resp + off, r->resp_len - off, MSG_NOSIGNAL);
      if (w <= 0) break; /* the client may hang up on an oversized answer */
      off += (size_t)w;
    }
    close(c);
    __atomic_add_fetch(&r->served, 1, __ATOMIC_ACQ_REL);
  }
  return NULL;
}

static int rawdoh_start(rawdoh *r, const char *resp, size_t len) {
  memset(r, 0, sizeof *r);
  r->resp = resp;
  r->resp_len = len;
  r->lfd = test_tcp_listen(8, &r->port);
  REQ(r->lfd >= 0);
  REQ(pthread_create(&r->th, NULL, rawdoh_main, r) == 0);
  return 0;
}

static void rawdoh_stop(rawdoh *r) {
  __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
  pthread_join(r->th, NULL);
  close(r->lfd);
}

static int bad_answer(int oversized) {
  static char resp[80000];
  size_t len;
  if (oversized) { /* over the 64 KiB cap, announced up front */
    const size_t body_len = 70000;
    int h = snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     body_len);
    memset(resp + h, ' ', body_len);
    len = (size_t)h + body_len;
  } else { /* well-formed JSON whose TXT record is no simple config */
    const char *json = "{\"Status\":0,\"Answer\":[{\"name\":\"apv3.stel.com.\",\"type\":16,"
                       "\"TTL\":300,\"data\":\"not a config\"}]}";
    len = (size_t)snprintf(resp, sizeof resp,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                           "Connection: close\r\n\r\n%s",
                           strlen(json), json);
  }
  rawdoh raw;
  REQ(rawdoh_start(&raw, resp, len) == 0);
  denv e;
  REQ(denv_start(&e, 1, 0, 0) == 0);
  snprintf(e.gurl, sizeof e.gurl, "http://127.0.0.1:%u", (unsigned)raw.port);
  mtc_settings s;
  denv_settings(&e, &s);
  s.reconnect_initial_ms = 200;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, oversized ? "oversized" : "malformed") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 2);
  ctx_res_clear(&r);
  mtc_counters c;
  REQ(get_counters(&h, &c, NULL) == 0);
  int which = oversized ? MTC_DISCOVERY_OVERSIZED : MTC_DISCOVERY_MALFORMED;
  int served = __atomic_load_n(&raw.served, __ATOMIC_ACQUIRE);
  fprintf(stderr, "    google %s: %llu HTTP requests (raw server %d), rejected %llu, cloudflare used\n",
          oversized ? "oversized" : "malformed", (unsigned long long)c.http_requests, served,
          (unsigned long long)c.discovery_rejected[which]);
  REQ(c.http_requests == 2 && served == 1);
  for (int k = 0; k < MTC_DISCOVERY_REJECT_COUNT; k++) REQ(c.discovery_rejected[k] == (k == which));
  const evrec *ev = last_event(&h, MTC_EVENT_DISCOVERY);
  REQ(ev && ev->reason == 0 && strcmp(ev->data, "cloudflare") == 0);
  REQ(h.log && strstr(h.log, oversized ? "google#0 answer rejected: oversized"
                                       : "google#0 answer rejected: malformed"));
  REQ(mtc_context_save(h.ctx) == 0);
  REQ(state_addr_index(e.base.state_path, 2, mock_dc_alt_port(e.base.cl, 2)) == 0);
  h_free(&h);
  denv_stop(&e);
  rawdoh_stop(&raw);
  return 0;
}

TEST(google_malformed) { CHECK(bad_answer(0) == 0); }
TEST(google_oversized) { CHECK(bad_answer(1) == 0); }

/* ---- settings -------------------------------------------------------------------------------------------- */

static int settings_checks(void) {
  denv e;
  REQ(denv_start(&e, 1, 0, 0) == 0);
  mtc_settings s, b;
  denv_settings(&e, &s);
  s.state_path = NULL;
  mtc_context *ctx = NULL;
  const char *bad_url[1] = {"ftp://127.0.0.1/"};
  b = s;
  b.doh_google = bad_url;
  REQ(mtc_context_new(&ctx, &b, NULL, NULL) == MTC_ERR_INVALID_ARG);
  const char *query_url[1] = {"https://dns.google/resolve?x=1"};
  b = s;
  b.doh_cloudflare = query_url;
  REQ(mtc_context_new(&ctx, &b, NULL, NULL) == MTC_ERR_INVALID_ARG);
  const char *many[8] = {e.gurl, e.gurl, e.gurl, e.gurl, e.gurl, e.gurl, e.gurl, e.gurl};
  b = s;
  b.doh_google = many;
  b.n_doh_google = 8;
  REQ(mtc_context_new(&ctx, &b, NULL, NULL) == MTC_ERR_INVALID_ARG);
  b = s;
  b.doh_google = NULL;
  b.n_doh_google = 1;
  REQ(mtc_context_new(&ctx, &b, NULL, NULL) == MTC_ERR_INVALID_ARG);
  b = s;
  b.simple_config_key_pem = "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n";
  REQ(mtc_context_new(&ctx, &b, NULL, NULL) == MTC_ERR_INVALID_ARG);
  b = s;
  b.discovery_after_ms = -1;
  REQ(mtc_context_new(&ctx, &b, NULL, NULL) == MTC_ERR_INVALID_ARG);
  b = s;
  b.phone_number = "+1 555 0100 x7"; /* not a phone number */
  REQ(mtc_context_new(&ctx, &b, NULL, NULL) == MTC_ERR_INVALID_ARG);
  b.phone_number = "+1 (555) 000-0000-0000-0000-0000-0000"; /* over 32 characters */
  REQ(mtc_context_new(&ctx, &b, NULL, NULL) == MTC_ERR_INVALID_ARG);
  REQ(ctx == NULL);
  /* no_discovery, and custom seeds without any source: the seeds' failure
   * is the answer (MTC_ERR_CONNECT), no request anywhere */
  for (int variant = 0; variant < 2; variant++) {
    b = s;
    b.max_connect_attempts = 2;
    b.reconnect_initial_ms = 100;
    if (variant == 0) {
      b.no_discovery = 1;
    } else {
      b.doh_google = NULL;
      b.n_doh_google = 0;
      b.doh_cloudflare = NULL;
      b.n_doh_cloudflare = 0;
      b.no_plain_dns = 0; /* no dns_servers with custom seeds: no plain DNS either */
    }
    harness h;
    REQ(h_start(&h, MODE_RUN, &b, "off") == 0);
    res r;
    memset(&r, 0, sizeof r);
    body q = q_nearest();
    REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
    REQ(r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_CONNECT);
    ctx_res_clear(&r);
    mtc_counters c;
    REQ(get_counters(&h, &c, NULL) == 0);
    REQ(c.http_requests == 0 && c.dns_queries == 0 && c.discovery_runs == 0);
    h_free(&h);
  }
  mock_doh_stats gs, cs;
  doh_stats(&e, e.g, &gs);
  doh_stats(&e, e.c, &cs);
  REQ(gs.connections == 0 && cs.connections == 0);
  /* defaults documented in the header */
  mtc_settings d;
  mtc_settings_default(&d);
  REQ(d.no_discovery == 0 && d.doh_google == NULL && d.doh_cloudflare == NULL &&
      d.simple_config_key_pem == NULL && d.discovery_after_failures == 0 && d.discovery_after_ms == 0);
  REQ(strcmp(mtc_strerror(MTC_ERR_UNREACHABLE), "invalid argument") != 0);
  denv_stop(&e);
  return 0;
}

TEST(settings) { CHECK(settings_checks() == 0); }

static void cleanup(void) {
  mtci_drbg_free(g_drbg);
  g_drbg = NULL;
  mtci_discovery_global_cleanup();
}

int main(int argc, char **argv) {
  g_verbose = getenv("MTC_TEST_VERBOSE") != NULL;
  atexit(cleanup);
  static const struct test_case cases[] = {
      CASE(settings),        CASE(healthy_start), CASE(blocked_seeds_run), CASE(blocked_seeds_host),
      CASE(google_tampered), CASE(google_malformed), CASE(google_oversized), CASE(both_expired),
      CASE(silent_seed),     CASE(secret_clock),     CASE(phone_rules_learnt), CASE(phone_rules_given),
      CASE(dup_endpoints),
  };
  return ctx_test_run("context_discovery", cases, sizeof cases / sizeof cases[0], argc, argv);
}
