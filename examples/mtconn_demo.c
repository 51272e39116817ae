/*
 * mtconn-demo: a first Telegram login with mtconn, and what it cost.
 *
 * With no arguments it starts the mock DC cluster of tests/mockdc in this
 * process (5 DCs on 127.0.0.1, the phone's home DC 5, files on DC 1) and
 * runs a first login: sendCode on DC 2 -> PHONE_MIGRATE_5 -> signIn on DC 5
 * -> a 1 MiB document from DC 1 (FILE_MIGRATE_1 + authorization transfer,
 * done by the context). It prints what the library used (TCP connections
 * per DC with their reasons, handshakes, HTTP requests, DNS queries, RPCs,
 * bytes, wall time) beside the mock's own server-side counts, and the
 * budgets of a first login. Exit status 1 when a count disagrees with the
 * mock, a budget is exceeded, or the login or the download failed.
 *
 * Telegram-iOS spent 20 TCP connections and 8 HTTPS requests on the same
 * first login (seeds/000); the budget here is 3 connections, 3 permanent
 * keys and no HTTP request, and a run from a saved state makes no handshake.
 *
 * --dc / --test-dc talk to real servers instead (no mock comparison).
 *
 * --block-seeds: the mock's seed ports refuse every connection; the library
 * finds the DCs' alternative ports through endpoint discovery (an
 * in-process mock DoH publishing a signed simple config). The budget is then
 * 3 working connections, 3 permanent keys and at most 2 HTTP requests; the
 * connects to the dead seeds are counted and shown on their own line. A
 * second run with the same --state makes no HTTP request.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "mtconn/mtconn.h"

#define DEMO_TIMEOUT_MS 30000
#define FIRST_TCP_BUDGET 3
#define FIRST_PERM_BUDGET 3
#define BLOCKED_HTTP_BUDGET 2 /* --block-seeds: one DoH provider, maybe the second one started */

static void usage(FILE *f) {
  fprintf(f,
          "usage: mtconn-demo [options]\n"
          "\n"
          "Without --dc/--test-dc: a first login against an in-process mock cluster\n"
          "(5 DCs on 127.0.0.1, home DC 5, files on DC 1), its costs beside the mock's\n"
          "counts, and the budgets (3 TCP connections, 3 permanent keys, 0 HTTP requests;\n"
          "a run with the --state of an earlier one: 0 handshakes). Exit 1 if any fails.\n"
          "\n"
          "  --dc ID:HOST:PORT     a DC address (repeatable; HOST an IP literal, IPv6 in\n"
          "                        [brackets]); talk to these servers, not the mock\n"
          "  --test-dc             Telegram's test DCs (built-in test seeds unless --dc)\n"
          "  --rsa-key FILE        an extra server RSA public key, PEM (repeatable)\n"
          "  --proxy LINK          tg://proxy / t.me/proxy / tg://socks link; with the mock\n"
          "                        also plain|dd|ee: a mock MTProxy with a fresh secret\n"
          "  --transport T         abridged|intermediate|padded|full (default intermediate)\n"
          "  --obfuscated          obfuscated2 framing (the default; not with full)\n"
          "  --no-obfuscation      plain framing\n"
          "  --state FILE          keep keys, salts, addresses here (mock: its keys in\n"
          "                        FILE.mockdc); a second run then makes no handshake\n"
          "  --phone NUMBER        default %s (the mock's)\n"
          "  --code CODE           the login code (mock: %s; servers: asked on stdin)\n"
          "  --api-id ID           default %d (the mock accepts any; Telegram needs yours)\n"
          "  --api-hash HASH\n"
          "  --timeout MS          per request (default %d)\n"
          "  --block-seeds         mock: the seed ports refuse; an in-process mock DoH\n"
          "                        publishes the alternative ones (budget: <= 2 HTTP\n"
          "                        requests; connects to dead seeds shown apart)\n"
          "  --doh google=URL      a Google JSON DoH endpoint (repeatable; so is\n"
          "  --doh cloudflare=URL  cloudflare=URL); given ones replace the built-in ones\n"
          "  --config-key FILE     the simple config's RSA public key, PEM (default\n"
          "                        Telegram's; with --block-seeds the mock's test key)\n"
          "  --ca-file FILE        CA bundle for the DoH servers' TLS\n"
          "  --no-discovery        never run endpoint discovery\n"
          "  --pfs                 PFS: a temporary key per DC, bound to the permanent\n"
          "                        one (budget: <= 1 temporary key per DC)\n"
          "  --json                print the report as JSON\n"
          "  --verbose             the library's log and connection events on stderr\n"
          "  --help\n",
          DEMO_PHONE, DEMO_CODE, DEMO_API_ID, DEMO_TIMEOUT_MS);
}

/* ---- flags -------------------------------------------------------------------------------- */

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || !end || *end || end == s || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int parse_dc(demo_opts *o, const char *arg) {
  if (o->n_dcs >= DEMO_MAX_DCS) return -1;
  const char *c1 = strchr(arg, ':');
  if (!c1) return -1;
  char idbuf[8];
  size_t il = (size_t)(c1 - arg);
  if (il == 0 || il >= sizeof idbuf) return -1;
  memcpy(idbuf, arg, il);
  idbuf[il] = 0;
  long id, port;
  if (parse_int(idbuf, 1, 999, &id)) return -1;
  const char *host = c1 + 1, *hend, *pstr;
  if (*host == '[') {
    host++;
    hend = strchr(host, ']');
    if (!hend || hend[1] != ':') return -1;
    pstr = hend + 2;
  } else {
    hend = strrchr(host, ':');
    if (!hend) return -1;
    pstr = hend + 1;
  }
  size_t hl = (size_t)(hend - host);
  if (hl == 0 || hl >= sizeof o->dc_ips[0] || parse_int(pstr, 1, 65535, &port)) return -1;
  char *ip = o->dc_ips[o->n_dcs];
  memcpy(ip, host, hl);
  ip[hl] = 0;
  mtc_dc_address *a = &o->dcs[o->n_dcs++];
  memset(a, 0, sizeof *a);
  a->dc_id = (int)id;
  a->ip = ip;
  a->port = (uint16_t)port;
  a->flags = strchr(ip, ':') ? MTC_ADDR_IPV6 : 0;
  return 0;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(65537);
  size_t n = buf ? fread(buf, 1, 65536, f) : 0;
  fclose(f);
  if (!buf || n == 0 || n == 65536) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  return buf;
}

static int parse_args(demo_opts *o, int argc, char **argv) {
  memset(o, 0, sizeof *o);
  o->transport = MTC_TRANSPORT_INTERMEDIATE;
  o->obfuscate = -1;
  o->api_id = DEMO_API_ID;
  o->api_hash = DEMO_API_HASH;
  o->timeout_ms = DEMO_TIMEOUT_MS;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long n;
#define NEED_VALUE()                                                                               \
  do {                                                                                             \
    if (!v) {                                                                                      \
      fprintf(stderr, "mtconn-demo: %s needs a value\n", a);                                       \
      return 2;                                                                                    \
    }                                                                                              \
    i++;                                                                                           \
  } while (0)
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 1;
    } else if (!strcmp(a, "--json")) {
      o->json = 1;
    } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
      o->verbose = 1;
    } else if (!strcmp(a, "--test-dc")) {
      o->test_dc = 1;
    } else if (!strcmp(a, "--obfuscated")) {
      o->obfuscate = 1;
    } else if (!strcmp(a, "--no-obfuscation") || !strcmp(a, "--no-obfuscated")) {
      o->obfuscate = 0;
    } else if (!strcmp(a, "--dc")) {
      NEED_VALUE();
      if (parse_dc(o, v)) {
        fprintf(stderr, "mtconn-demo: --dc %s: want ID:IP:PORT (ID 1..999, IPv6 in [ ])\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--rsa-key")) {
      NEED_VALUE();
      if (o->n_rsa >= DEMO_MAX_KEYS || !(o->rsa_pems[o->n_rsa] = read_text(v))) {
        fprintf(stderr, "mtconn-demo: --rsa-key %s: cannot read it (or too many keys)\n", v);
        return 2;
      }
      o->n_rsa++;
    } else if (!strcmp(a, "--proxy")) {
      NEED_VALUE();
      o->proxy = v;
    } else if (!strcmp(a, "--transport")) {
      NEED_VALUE();
      if (!strcmp(v, "abridged")) o->transport = MTC_TRANSPORT_ABRIDGED;
      else if (!strcmp(v, "intermediate")) o->transport = MTC_TRANSPORT_INTERMEDIATE;
      else if (!strcmp(v, "padded")) o->transport = MTC_TRANSPORT_PADDED;
      else if (!strcmp(v, "full")) o->transport = MTC_TRANSPORT_FULL;
      else {
        fprintf(stderr, "mtconn-demo: --transport %s: abridged|intermediate|padded|full\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--state")) {
      NEED_VALUE();
      o->state = v;
    } else if (!strcmp(a, "--phone")) {
      NEED_VALUE();
      o->phone = v;
    } else if (!strcmp(a, "--code")) {
      NEED_VALUE();
      o->code = v;
    } else if (!strcmp(a, "--api-id")) {
      NEED_VALUE();
      if (parse_int(v, 1, 2147483647L, &n)) {
        fprintf(stderr, "mtconn-demo: --api-id %s: a positive number\n", v);
        return 2;
      }
      o->api_id = (int32_t)n;
    } else if (!strcmp(a, "--api-hash")) {
      NEED_VALUE();
      o->api_hash = v;
    } else if (!strcmp(a, "--block-seeds")) {
      o->block_seeds = 1;
    } else if (!strcmp(a, "--pfs")) {
      o->pfs = 1;
    } else if (!strcmp(a, "--no-discovery")) {
      o->no_discovery = 1;
    } else if (!strcmp(a, "--doh")) {
      NEED_VALUE();
      int g = !strncmp(v, "google=", 7), c = !strncmp(v, "cloudflare=", 11);
      const char *url = g ? v + 7 : c ? v + 11 : NULL;
      size_t *cnt = g ? &o->n_doh_google : &o->n_doh_cloudflare;
      if (!url || !*url || *cnt >= DEMO_MAX_DOH) {
        fprintf(stderr, "mtconn-demo: --doh %s: want google=URL or cloudflare=URL (at most %d each)\n",
                v, DEMO_MAX_DOH);
        return 2;
      }
      (g ? o->doh_google : o->doh_cloudflare)[(*cnt)++] = url;
    } else if (!strcmp(a, "--config-key")) {
      NEED_VALUE();
      free(o->config_key_pem);
      if (!(o->config_key_pem = read_text(v))) {
        fprintf(stderr, "mtconn-demo: --config-key %s: cannot read it\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--ca-file")) {
      NEED_VALUE();
      o->ca_file = v;
    } else if (!strcmp(a, "--timeout")) {
      NEED_VALUE();
      if (parse_int(v, 100, 600000, &n)) {
        fprintf(stderr, "mtconn-demo: --timeout %s: 100..600000 ms\n", v);
        return 2;
      }
      o->timeout_ms = (int)n;
    } else {
      fprintf(stderr, "mtconn-demo: unknown option %s (see --help)\n", a);
      return 2;
    }
#undef NEED_VALUE
  }
  o->mock = o->n_dcs == 0 && !o->test_dc;
  if (o->obfuscate < 0) o->obfuscate = o->transport != MTC_TRANSPORT_FULL;
  if (o->transport == MTC_TRANSPORT_FULL && o->obfuscate) {
    fprintf(stderr, "mtconn-demo: the full transport has no obfuscated form\n");
    return 2;
  }
  int kind = o->proxy && (!strcmp(o->proxy, "plain") || !strcmp(o->proxy, "dd") ||
                          !strcmp(o->proxy, "ee"));
  if (kind && !o->mock) {
    fprintf(stderr, "mtconn-demo: --proxy %s starts a mock MTProxy: give a link with --dc\n",
            o->proxy);
    return 2;
  }
  if (o->block_seeds && (!o->mock || o->proxy)) {
    fprintf(stderr, "mtconn-demo: --block-seeds is for the mock cluster without a proxy "
                    "(discovery never runs through a proxy)\n");
    return 2;
  }
  if (o->proxy && o->transport == MTC_TRANSPORT_FULL) {
    fprintf(stderr, "mtconn-demo: the full transport cannot go through MTProxy\n");
    return 2;
  }
  if (!o->phone) {
    if (!o->mock) {
      fprintf(stderr, "mtconn-demo: --phone is needed with real servers\n");
      return 2;
    }
    o->phone = DEMO_PHONE;
  }
  return 0;
}

/* ---- the report ------------------------------------------------------------------------------ */

static const char *k_transport_names[] = {"?", "abridged", "intermediate", "padded", "full"};
static const char *k_reason_names[MTC_REASON_COUNT] = {"main", "media", "reconnect", "migrate",
                                                       "discovery"};

typedef struct check {
  char what[64];
  long long lib, mock; /* mock < 0: not compared */
  int ok;
} check;

typedef struct budget {
  char what[48];
  long long used, limit;
  char note[48];
  int ok;
} budget;

typedef struct report {
  check checks[64];
  size_t n_checks;
  budget budgets[8];
  size_t n_budgets;
  int mismatches, over_budget;
} report;

static void add_check(report *r, const char *what, long long lib, long long mock) {
  if (r->n_checks >= sizeof r->checks / sizeof r->checks[0]) return;
  check *c = &r->checks[r->n_checks++];
  snprintf(c->what, sizeof c->what, "%s", what);
  c->lib = lib;
  c->mock = mock;
  c->ok = mock < 0 || lib == mock;
  if (!c->ok) r->mismatches++;
}

/* A server-side count the library does not keep. */
static void add_info(report *r, const char *what, long long mock) {
  if (r->n_checks >= sizeof r->checks / sizeof r->checks[0]) return;
  check *c = &r->checks[r->n_checks++];
  snprintf(c->what, sizeof c->what, "%s", what);
  c->lib = -1;
  c->mock = mock;
  c->ok = 1;
}

static void add_budget(report *r, const char *what, long long used, long long limit,
                       const char *note) {
  budget *b = &r->budgets[r->n_budgets++];
  snprintf(b->what, sizeof b->what, "%s", what);
  snprintf(b->note, sizeof b->note, "%s", note ? note : "");
  b->used = used;
  b->limit = limit;
  b->ok = used <= limit;
  if (!b->ok) r->over_budget++;
}

static const mtc_dc_counters *lib_dc(const mtc_counters *c, int dc) {
  for (size_t i = 0; i < c->n_dcs; i++)
    if (c->dcs[i].dc_id == dc) return &c->dcs[i];
  return NULL;
}

static const demo_mock_dc *mock_dc(const demo_mock_dc *m, size_t n, int dc) {
  for (size_t i = 0; i < n; i++)
    if (m[i].dc_id == dc) return &m[i];
  return NULL;
}

static void reasons_text(const mtc_dc_counters *d, char *out, size_t cap) {
  size_t k = 0;
  out[0] = 0;
  for (int i = 0; i < MTC_REASON_COUNT && d; i++) {
    if (!d->connects_by_reason[i]) continue;
    int w = snprintf(out + k, cap - k, "%s%s %llu", k ? ", " : "", k_reason_names[i],
                     (unsigned long long)d->connects_by_reason[i]);
    if (w < 0 || (size_t)w >= cap - k) break;
    k += (size_t)w;
  }
}

static int utf8_term(void) {
  const char *v[3] = {getenv("LC_ALL"), getenv("LC_CTYPE"), getenv("LANG")};
  for (int i = 0; i < 3; i++) {
    if (!v[i] || !v[i][0]) continue;
    char low[64];
    size_t n = 0;
    for (; v[i][n] && n < sizeof low - 1; n++) low[n] = (char)tolower((unsigned char)v[i][n]);
    low[n] = 0;
    return strstr(low, "utf-8") || strstr(low, "utf8");
  }
  return 0;
}

typedef struct run_info {
  const demo_opts *o;
  demo_result *res;
  demo_mock *mock;
  demo_mock_dc mdc[8];
  size_t n_mdc;
  int settled;
  int proxied;
  int proxy_bytes_equal; /* a mock plain/dd proxy: the DC sees our byte counts */
  const char *proxy_label;
  uint64_t px_accepted, px_ok, px_rejects;
  char *mock_json, *proxy_json; /* the mock's counters and proxy stats, JSON */
  int doh_mock;                 /* --block-seeds: the mock DoH servers ran */
  uint64_t doh_requests;        /* requests they received */
  int restored_keys;
  char mock_error[256];
} run_info;

/* The comparisons with the mock and the budgets. */
static void evaluate(run_info *ri, report *rp) {
  const demo_result *res = ri->res;
  const mtc_counters *c = &res->ctr;
  memset(rp, 0, sizeof *rp);
  if (ri->o->mock) {
    char what[64];
    for (int dc = 1; dc <= 5; dc++) {
      const mtc_dc_counters *l = lib_dc(c, dc);
      const demo_mock_dc *m = mock_dc(ri->mdc, ri->n_mdc, dc);
      if (!m) continue;
      if (!m->tcp_accepted && (!l || !l->connects_started)) continue;
      long long lc = l ? (long long)l->connects_succeeded : 0;
      char reasons[40];
      reasons_text(l, reasons, sizeof reasons);
      snprintf(what, sizeof what, "DC %d TCP connections%s%s%s", dc, reasons[0] ? " (" : "",
               reasons, reasons[0] ? ")" : "");
      add_check(rp, what, lc, (long long)m->tcp_accepted);
      snprintf(what, sizeof what, "DC %d permanent keys made", dc);
      add_check(rp, what, l ? (long long)l->handshakes_perm : 0, (long long)m->handshakes_perm);
      snprintf(what, sizeof what, "DC %d temporary keys made", dc);
      add_check(rp, what, l ? (long long)l->handshakes_temp : 0, (long long)m->handshakes_temp);
      snprintf(what, sizeof what, "DC %d RPCs (API calls)", dc);
      add_check(rp, what, l ? (long long)l->rpcs_sent : 0, (long long)m->rpcs);
      snprintf(what, sizeof what, "DC %d session requests (salts, pings)", dc);
      add_info(rp, what, (long long)m->service_rpcs);
      /* A plain or dd proxy relays byte for byte (its own 64-byte header in
       * place of ours); fake-TLS (ee) adds TLS records on our side only. */
      int cmp = !ri->proxied || ri->proxy_bytes_equal;
      snprintf(what, sizeof what, "DC %d bytes sent", dc);
      add_check(rp, what, l ? (long long)l->bytes_out : 0, cmp ? (long long)m->bytes_in : -1);
      snprintf(what, sizeof what, "DC %d bytes received", dc);
      add_check(rp, what, l ? (long long)l->bytes_in : 0, cmp ? (long long)m->bytes_out : -1);
    }
    if (ri->proxied) {
      add_check(rp, "MTProxy connections", (long long)c->connects_succeeded, (long long)ri->px_accepted);
      add_check(rp, "MTProxy handshakes accepted", (long long)c->connects_succeeded, (long long)ri->px_ok);
      add_check(rp, "MTProxy rejects", 0, (long long)ri->px_rejects);
    }
    add_check(rp, "connections left open on the mock", 0, ri->settled ? 0 : 1);
    if (ri->doh_mock)
      add_check(rp, "HTTP requests (mock DoH)", (long long)c->http_requests, (long long)ri->doh_requests);
  }
  /* PFS: at most one temporary key per DC that made a permanent one */
  long long temp_budget = ri->o->pfs ? FIRST_PERM_BUDGET : 0;
  const char *temp_note = ri->o->pfs ? "PFS: <= 1 per DC" : "PFS off: none";
  if (!res->restart && ri->o->block_seeds) {
    /* the refused connects to the seeds are shown apart (dead seeds) */
    add_budget(rp, "TCP connections that worked", (long long)c->connects_succeeded, FIRST_TCP_BUDGET,
               NULL);
    add_budget(rp, "permanent auth keys", (long long)c->handshakes_perm, FIRST_PERM_BUDGET, NULL);
    add_budget(rp, "temporary auth keys", (long long)c->handshakes_temp, temp_budget, temp_note);
    add_budget(rp, "HTTP requests", (long long)c->http_requests, BLOCKED_HTTP_BUDGET,
               "seeds blocked: discovery");
  } else if (!res->restart) {
    add_budget(rp, "TCP connections", (long long)c->connects_started, FIRST_TCP_BUDGET, NULL);
    add_budget(rp, "permanent auth keys", (long long)c->handshakes_perm, FIRST_PERM_BUDGET, NULL);
    add_budget(rp, "temporary auth keys", (long long)c->handshakes_temp, temp_budget, temp_note);
    add_budget(rp, "HTTP requests", (long long)c->http_requests, 0, NULL);
  } else {
    /* a saved state whose keys the servers still hold: nothing to create */
    long long allowed = !ri->o->mock && res->keys_dropped ? res->keys_dropped : 0;
    add_budget(rp, "TCP connections", (long long)c->connects_started, FIRST_TCP_BUDGET, NULL);
    add_budget(rp, "handshakes (saved keys)", (long long)(c->handshakes_perm + c->handshakes_temp),
               allowed, allowed ? "keys dropped by the server" : "keys from --state");
    add_budget(rp, "HTTP requests", (long long)c->http_requests, 0, NULL);
  }
}

static int run_ok(const run_info *ri, const report *rp) {
  const demo_result *res = ri->res;
  int download_needed = ri->o->mock;
  return res->login_ok && (res->download_ok || !download_needed) && !rp->mismatches &&
         !rp->over_budget && !ri->mock_error[0];
}

static void print_table(const run_info *ri, const report *rp) {
  const demo_opts *o = ri->o;
  const demo_result *res = ri->res;
  const mtc_counters *c = &res->ctr;
  const char *yes = utf8_term() ? "\xe2\x9c\x93" : "ok";
  const char *no = utf8_term() ? "\xe2\x9c\x97" : "FAIL";
  printf("mtconn-demo %s: %s\n", mtc_version(),
         res->restart ? "start from a saved state" : "first login");
  if (o->mock)
    printf("  in-process mock cluster: 5 DCs on 127.0.0.1, home DC 5, files on DC 1%s\n",
           ri->restored_keys ? " (its keys restored from the state)" : "");
  else
    printf("  servers: %s\n", o->n_dcs ? "--dc addresses" : "Telegram's test DCs (built-in seeds)");
  printf("  transport %s%s, %s\n", k_transport_names[o->transport],
         o->obfuscate ? " obfuscated" : "", ri->proxy_label);
  printf("  state: %s\n\n", o->state ? o->state : "in memory only");

  printf("  %-40s %4s %9s  %s\n", "step", "DC", "ms", "result");
  for (size_t i = 0; i < res->n_steps; i++) {
    const demo_step *s = &res->steps[i];
    printf("  %-40s %4d %9.1f  %s %s\n", s->name, s->dc_id, s->ms, s->ok ? yes : no, s->note);
  }
  if (res->error[0] && !res->n_steps) printf("  %s\n", res->error);

  printf("\n  %-42s %10s %14s\n", "what it used", "library", o->mock ? "mock (server)" : "");
  for (size_t i = 0; i < rp->n_checks; i++) {
    const check *k = &rp->checks[i];
    if (k->lib < 0)
      printf("  %-42s %10s %14lld  (server side only)\n", k->what, "-", k->mock);
    else if (k->mock < 0)
      printf("  %-42s %10lld %14s  (not compared: fake-TLS records)\n", k->what, k->lib, "-");
    else
      printf("  %-42s %10lld %14lld  %s\n", k->what, k->lib, k->mock, k->ok ? yes : no);
  }
  if (!o->mock) {
    for (size_t i = 0; i < c->n_dcs; i++) {
      const mtc_dc_counters *d = &c->dcs[i];
      if (!d->connects_started && !d->rpcs_sent) continue;
      char what[96], reasons[40];
      reasons_text(d, reasons, sizeof reasons);
      snprintf(what, sizeof what, "DC %d TCP connections%s%s%s", d->dc_id, reasons[0] ? " (" : "",
               reasons, reasons[0] ? ")" : "");
      printf("  %-42s %10llu\n", what, (unsigned long long)d->connects_started);
      snprintf(what, sizeof what, "DC %d permanent / temporary keys made", d->dc_id);
      printf("  %-42s %6llu / %llu\n", what, (unsigned long long)d->handshakes_perm,
             (unsigned long long)d->handshakes_temp);
      snprintf(what, sizeof what, "DC %d RPCs (API calls)", d->dc_id);
      printf("  %-42s %10llu\n", what, (unsigned long long)d->rpcs_sent);
      snprintf(what, sizeof what, "DC %d bytes sent / received", d->dc_id);
      printf("  %-42s %10llu / %llu\n", what, (unsigned long long)d->bytes_out,
             (unsigned long long)d->bytes_in);
    }
  }
  printf("  %-42s %10llu\n", "TCP connections, all DCs (attempts)",
         (unsigned long long)c->connects_started);
  printf("  %-42s %10llu\n", "TCP connects to dead seeds (failed)",
         (unsigned long long)c->connects_failed);
  if (ri->doh_mock)
    printf("  %-42s %10llu %14llu\n", "HTTP requests (DoH)", (unsigned long long)c->http_requests,
           (unsigned long long)ri->doh_requests);
  else
    printf("  %-42s %10llu %14s\n", "HTTP requests (DoH)", (unsigned long long)c->http_requests,
           o->mock ? "- (no server)" : "");
  if (c->discovery_runs)
    printf("  %-42s %10llu  %s\n", "endpoint discovery runs", (unsigned long long)c->discovery_runs,
           c->discovery_failures ? mtc_strerror(c->discovery_last_error) : "ok");
  printf("  %-42s %10llu %14s\n", "DNS queries", (unsigned long long)c->dns_queries,
         o->mock ? "- (no server)" : "");
  printf("  %-42s %7.1f ms\n", "wall time (login + download)", res->wall_ms);

  printf("\n  %-47s %6s %6s\n", res->restart ? "budget (start from a saved state)" : "budget (first login)",
         "used", "limit");
  for (size_t i = 0; i < rp->n_budgets; i++) {
    const budget *b = &rp->budgets[i];
    printf("  %-4s %-42s %6lld %6lld  %s\n", b->ok ? yes : no, b->what, b->used, b->limit, b->note);
  }
  if (!res->restart) printf("  (Telegram-iOS's first login: 20 TCP connections, 8 HTTPS requests)\n");
  if (ri->mock_error[0]) printf("\n  mock: %s\n", ri->mock_error);
  printf("\nresult: %s", run_ok(ri, rp) ? "ok" : "FAILED");
  if (!run_ok(ri, rp)) {
    if (res->error[0]) printf(" - %s", res->error);
    else if (rp->mismatches) printf(" - %d count(s) differ from the mock's", rp->mismatches);
    else if (rp->over_budget) printf(" - %d budget(s) exceeded", rp->over_budget);
  }
  printf("\n");
}

static json_t *json_text_or_null(const char *text) {
  json_t *v = text ? json_loads(text, 0, NULL) : NULL;
  return v ? v : json_null();
}

static void print_json(const run_info *ri, const report *rp) {
  const demo_opts *o = ri->o;
  const demo_result *res = ri->res;
  json_t *root = json_object();
  json_object_set_new(root, "version", json_string(mtc_version()));
  json_object_set_new(root, "mode", json_string(o->mock ? "mock" : "servers"));
  json_object_set_new(root, "transport", json_string(k_transport_names[o->transport]));
  json_object_set_new(root, "obfuscated", json_boolean(o->obfuscate));
  /* a link holds the proxy's secret: only its kind is printed */
  const char *proxy = !o->proxy ? "none"
                      : (!strcmp(o->proxy, "plain") || !strcmp(o->proxy, "dd") || !strcmp(o->proxy, "ee"))
                          ? o->proxy
                          : "link";
  json_object_set_new(root, "proxy", json_string(proxy));
  json_object_set_new(root, "state", o->state ? json_string(o->state) : json_null());
  json_object_set_new(root, "restart", json_boolean(res->restart));
  json_object_set_new(root, "mock_keys_restored", json_integer(ri->restored_keys));
  json_t *steps = json_array();
  for (size_t i = 0; i < res->n_steps; i++) {
    const demo_step *s = &res->steps[i];
    json_array_append_new(steps, json_pack("{s:s,s:i,s:f,s:b,s:s}", "step", s->name, "dc", s->dc_id,
                                           "ms", s->ms, "ok", s->ok, "note", s->note));
  }
  json_object_set_new(root, "steps", steps);
  json_object_set_new(root, "login", json_pack("{s:b,s:I,s:i}", "ok", res->login_ok, "user_id",
                                               (json_int_t)res->user_id, "main_dc", res->main_dc));
  json_object_set_new(root, "download",
                      json_pack("{s:b,s:b,s:i,s:I,s:b}", "tried", res->download_tried, "ok",
                                res->download_ok, "dc", res->file_dc, "bytes",
                                (json_int_t)res->bytes_received, "verified", res->download_ok));
  json_object_set_new(root, "wall_ms", json_real(res->wall_ms));
  json_object_set_new(root, "events", json_pack("{s:i,s:i,s:i}", "auth_keys_created", res->keys_created,
                                                "auth_keys_dropped", res->keys_dropped,
                                                "main_dc_changes", res->main_dc_changes));
  json_object_set_new(root, "library", json_text_or_null(res->ctr_json));
  json_object_set_new(root, "block_seeds", json_boolean(o->block_seeds));
  json_object_set_new(root, "dead_seed_connects", json_integer((json_int_t)res->ctr.connects_failed));
  json_object_set_new(root, "http_requests", json_integer((json_int_t)res->ctr.http_requests));
  json_object_set_new(root, "mock_doh_requests",
                      ri->doh_mock ? json_integer((json_int_t)ri->doh_requests) : json_null());
  if (o->mock) {
    json_object_set_new(root, "mock", json_text_or_null(ri->mock_json));
    json_object_set_new(root, "mock_proxy", json_text_or_null(ri->proxy_json));
  }
  json_t *checks = json_array();
  for (size_t i = 0; i < rp->n_checks; i++) {
    const check *k = &rp->checks[i];
    json_array_append_new(checks, json_pack("{s:s,s:o,s:o,s:b}", "what", k->what, "library",
                                            k->lib < 0 ? json_null() : json_integer(k->lib), "mock",
                                            k->mock < 0 ? json_null() : json_integer(k->mock),
                                            "ok", k->ok));
  }
  json_object_set_new(root, "comparison", checks);
  json_t *budgets = json_array();
  for (size_t i = 0; i < rp->n_budgets; i++) {
    const budget *b = &rp->budgets[i];
    json_array_append_new(budgets, json_pack("{s:s,s:I,s:I,s:b,s:s}", "what", b->what, "used",
                                             (json_int_t)b->used, "limit", (json_int_t)b->limit,
                                             "ok", b->ok, "note", b->note));
  }
  json_object_set_new(root, "budgets", budgets);
  json_object_set_new(root, "error", json_string(res->error[0] ? res->error : ri->mock_error));
  json_object_set_new(root, "ok", json_boolean(run_ok(ri, rp)));
  char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  if (text) printf("%s\n", text);
  free(text);
  json_decref(root);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  demo_opts o;
  int rc = parse_args(&o, argc, argv);
  if (rc) return rc == 1 ? 0 : rc;

  run_info ri;
  memset(&ri, 0, sizeof ri);
  ri.o = &o;
  static demo_result res;
  ri.res = &res;
  char label[160];
  mtc_settings s;
  mtc_settings_default(&s);
  s.api_id = o.api_id;
  s.api_hash = o.api_hash;
  s.device_model = "mtconn-demo";
  s.system_version = "Linux";
  s.app_version = mtc_version();
  s.system_lang_code = "en";
  s.lang_pack = "";
  s.lang_code = "en";
  s.test_dcs = o.test_dc;
  s.transport = o.transport;
  s.obfuscate = o.obfuscate;
  s.state_path = o.state;
  s.pfs = o.pfs;
  s.log_level = o.verbose ? MTC_LOG_DEBUG : MTC_LOG_INFO;
  const char *pems[DEMO_MAX_KEYS + 8];
  size_t n_pems = 0;
  if (o.mock) {
    char err[256] = "";
    rc = demo_mock_start(&ri.mock, &o, err, sizeof err);
    if (rc) {
      fprintf(stderr, "mtconn-demo: %s (%s)\n", err[0] ? err : "mock cluster", mtc_strerror(rc));
      return 1;
    }
    ri.restored_keys = demo_mock_restored_keys(ri.mock);
    size_t n = 0;
    s.seeds = demo_mock_seeds(ri.mock, &s.n_seeds);
    const char *const *mp = demo_mock_pems(ri.mock, &n);
    for (size_t i = 0; i < n; i++) pems[n_pems++] = mp[i];
    s.no_builtin_rsa_keys = 1; /* the mock's test keys only */
    s.main_dc = 2;
    if (demo_mock_doh_url(ri.mock, 0)) {
      /* --block-seeds: the in-process DoH (unless --doh names others) */
      static const char *g[1], *cf[1];
      g[0] = demo_mock_doh_url(ri.mock, 0);
      cf[0] = demo_mock_doh_url(ri.mock, 1);
      s.doh_google = g;
      s.n_doh_google = 1;
      s.doh_cloudflare = cf;
      s.n_doh_cloudflare = 1;
      s.simple_config_key_pem = demo_mock_doh_key(ri.mock);
      s.no_plain_dns = 1; /* the mock has no DNS server: nothing to ask the system */
      ri.doh_mock = 1;
    }
    const char *link = demo_mock_link(ri.mock);
    ri.proxied = link != NULL || o.proxy != NULL;
    ri.proxy_bytes_equal = link && strcmp(o.proxy, "ee") != 0;
    s.proxy = link ? link : o.proxy;
    if (link)
      snprintf(label, sizeof label, "through a mock MTProxy (%s secret%s)", o.proxy,
               strcmp(o.proxy, "plain") ? ": padded framing forced" : "");
    else
      snprintf(label, sizeof label, "%s", o.proxy ? "through the given proxy" : "direct");
  } else {
    if (o.n_dcs) {
      s.seeds = o.dcs;
      s.n_seeds = o.n_dcs;
      s.main_dc = o.dcs[0].dc_id;
      for (size_t i = 0; i < o.n_dcs; i++)
        if (o.dcs[i].dc_id == 2) s.main_dc = 2;
    }
    s.proxy = o.proxy;
    ri.proxied = o.proxy != NULL;
    snprintf(label, sizeof label, "%s", o.proxy ? "through the given proxy" : "direct");
  }
  ri.proxy_label = label;
  /* endpoint discovery flags (given DoH endpoints replace the built-in/mock ones) */
  if (o.n_doh_google || o.n_doh_cloudflare) {
    s.doh_google = o.doh_google;
    s.n_doh_google = o.n_doh_google;
    s.doh_cloudflare = o.doh_cloudflare;
    s.n_doh_cloudflare = o.n_doh_cloudflare;
    ri.doh_mock = 0; /* not compared with the mock's count */
  }
  if (o.config_key_pem) s.simple_config_key_pem = o.config_key_pem;
  if (o.ca_file) s.ca_file = o.ca_file;
  s.no_discovery = o.no_discovery;
  for (size_t i = 0; i < o.n_rsa; i++) pems[n_pems++] = o.rsa_pems[i];
  s.rsa_keys_pem = n_pems ? pems : NULL;
  s.n_rsa_keys = n_pems;

  rc = demo_run(&o, &s, &res);
  if (ri.mock) {
    /* the context is gone: let the server side see every close, then count */
    ri.settled = demo_mock_settle(ri.mock, 3000) == 0;
    ri.n_mdc = demo_mock_counts(ri.mock, ri.mdc, sizeof ri.mdc / sizeof ri.mdc[0]);
    demo_mock_proxy_counts(ri.mock, &ri.px_accepted, &ri.px_ok, &ri.px_rejects);
    ri.doh_requests = demo_mock_doh_requests(ri.mock);
  }
  report rp;
  evaluate(&ri, &rp);
  if (ri.mock) {
    ri.mock_json = demo_mock_counters_json(ri.mock);
    ri.proxy_json = demo_mock_proxy_json(ri.mock);
    /* stops the mock and writes its key store beside --state */
    (void)demo_mock_finish(ri.mock, ri.mock_error, sizeof ri.mock_error);
    ri.mock = NULL;
  }
  if (o.json) print_json(&ri, &rp);
  else print_table(&ri, &rp);
  int ok = rc == 0 && run_ok(&ri, &rp);
  free(ri.mock_json);
  free(ri.proxy_json);
  demo_result_free(&res);
  for (size_t i = 0; i < o.n_rsa; i++) free(o.rsa_pems[i]);
  free(o.config_key_pem);
  return ok ? 0 : 1;
}
