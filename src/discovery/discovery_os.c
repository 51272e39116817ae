/*
 * Endpoint discovery: the race's shell (see discovery.h).
 */
#include "discovery/discovery.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/rsa_keys.h"
#include "discovery/doh_json.h"
#include "discovery/doh_request.h"
#include "io/clock.h"

static const mtci_doh_endpoint k_google[] = {{"https://dns.google", NULL}};
static const mtci_doh_endpoint k_cloudflare[] = {{"https://mozilla.cloudflare-dns.com", NULL}};

struct ep {
  char *url;
  char *host;
};

/* One source of the current race. */
struct src {
  mtci_discovery *d;
  size_t index; /* in the race */
  mtci_source_kind kind;
  size_t ep;    /* endpoint index (DoH) */
  uint32_t req; /* fetch or dns request id in flight, 0 none */
};

struct mtci_discovery {
  mtci_poller *poller;
  mtci_doh_fetch *fetch;
  mtci_dns *dns;
  mtci_discovery_fn fn;
  void *ud;
  /* settings */
  struct ep google[MTCI_DISCOVERY_MAX_ENDPOINTS], cloudflare[MTCI_DISCOVERY_MAX_ENDPOINTS];
  size_t n_google, n_cloudflare;
  char domain[MTCI_DOH_MAX_NAME + 2];
  int use_dns;
  int64_t stagger_ms, total_ms;
  int trust_date;
  mtci_rsa_key key;
  mtc_random_fn rnd;
  void *rnd_ud;
  mtci_drbg *own_drbg;
  int64_t (*now_ms)(void *);
  void *now_ud;
  void (*log)(void *, int, const char *);
  void *log_ud;
  /* state */
  int deadline_id;
  mtci_race race;
  struct src src[MTCI_RACE_MAX_SOURCES];
  size_t n_src;
  int running;        /* race running */
  int result_pending; /* race over, callback not yet run */
  int64_t started_ms, ended_ms;
  int64_t base_offset_s;
  int have_date;
  int64_t date_offset_s;
  /* counters */
  uint64_t runs, runs_ok, runs_failed;
  mtci_race_counters ctr;
};

/* ---- small helpers ------------------------------------------------------------------- */

static int64_t now_of(const mtci_discovery *d) {
  return d->now_ms ? d->now_ms(d->now_ud) : mtci_clock_realtime_ms();
}

__attribute__((format(printf, 3, 4))) static void logf_(const mtci_discovery *d, int level,
                                                        const char *fmt, ...) {
  if (!d->log) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  d->log(d->log_ud, level, line);
}

static char *dup_str(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s);
  char *p = malloc(n + 1);
  if (p) memcpy(p, s, n + 1);
  return p;
}

static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static const char *src_url(const mtci_discovery *d, const struct src *s) {
  if (s->kind == MTCI_SOURCE_GOOGLE) return d->google[s->ep].url;
  if (s->kind == MTCI_SOURCE_CLOUDFLARE) return d->cloudflare[s->ep].url;
  return "dns";
}

static int64_t validation_offset(const mtci_discovery *d) {
  int64_t far = d->date_offset_s > MTCI_DISCOVERY_CLOCK_SKEW_S ||
                d->date_offset_s < -MTCI_DISCOVERY_CLOCK_SKEW_S;
  return d->trust_date && d->have_date && far ? d->date_offset_s : d->base_offset_s;
}

/* The poller deadline: "now" while a result waits, else the race's. */
static void update_deadline(mtci_discovery *d, int64_t now) {
  int64_t t = d->result_pending ? now : (d->running ? mtci_race_expiry(&d->race) : -1);
  (void)mtci_poller_deadline_set(d->poller, d->deadline_id, t, now);
}

/* ---- settings -------------------------------------------------------------------------- */

void mtci_discovery_settings_default(mtci_discovery_settings *s) {
  if (!s) return;
  memset(s, 0, sizeof *s);
  s->google = k_google;
  s->n_google = sizeof k_google / sizeof k_google[0];
  s->cloudflare = k_cloudflare;
  s->n_cloudflare = sizeof k_cloudflare / sizeof k_cloudflare[0];
  s->stagger_ms = MTCI_DISCOVERY_DEFAULT_STAGGER_MS;
  s->use_plain_dns = 1;
  s->trust_http_date = 1;
}

static int copy_endpoints(struct ep *dst, const mtci_doh_endpoint *src, size_t n, const char *dom) {
  if (n > MTCI_DISCOVERY_MAX_ENDPOINTS || (n && !src)) return MTC_ERR_INVALID_ARG;
  for (size_t i = 0; i < n; i++) {
    char url[MTCI_DOH_MAX_URL];
    if (!src[i].url ||
        mtci_doh_build_url(MTCI_DOH_API_GOOGLE, src[i].url, dom, NULL, url, sizeof url) < 0)
      return MTC_ERR_INVALID_ARG;
    if (src[i].host &&
        (!src[i].host[0] || strlen(src[i].host) > 255 || strpbrk(src[i].host, "\r\n")))
      return MTC_ERR_INVALID_ARG;
    dst[i].url = dup_str(src[i].url);
    dst[i].host = dup_str(src[i].host);
    if (!dst[i].url || (src[i].host && !dst[i].host)) return MTC_ERR_NOMEM;
  }
  return 0;
}

/* ---- sources --------------------------------------------------------------------------- */

static void pump(mtci_discovery *d, int64_t now);

static void note_date(mtci_discovery *d, const mtci_doh_response *r, const struct src *s) {
  if (!r->have_date) return;
  int64_t off = r->date_unix - floor_div(r->received_ms, 1000);
  d->have_date = 1;
  d->date_offset_s = off;
  if (off > MTCI_DISCOVERY_CLOCK_SKEW_S || off < -MTCI_DISCOVERY_CLOCK_SKEW_S)
    logf_(d, MTCI_DLOG_WARN, "discovery: %s#%zu Date header is %+" PRId64 " s off the local clock",
          mtci_source_kind_name(s->kind), s->ep, off);
}

/* An answer (TXT parts) or a failure of source s; then move the race on. */
static void source_result(mtci_discovery *d, struct src *s, int err, const mtci_doh_txt *txt,
                          int64_t now) {
  int o;
  if (err == 0) {
    mtci_sconf_part parts[MTCI_DOH_MAX_PARTS];
    size_t n = mtci_doh_txt_parts(txt, parts);
    int64_t unix_now = floor_div(now, 1000) + validation_offset(d);
    o = mtci_race_on_answer(&d->race, s->index, parts, n, unix_now, now);
    if (o >= 0 && o != MTCI_OUT_OK) err = d->race.src[s->index].err;
  } else {
    o = mtci_race_on_failure(&d->race, s->index, err, now);
  }
  if (o < 0) return; /* not running any more: a late answer */
  if (o == MTCI_OUT_OK) {
    logf_(d, MTCI_DLOG_INFO,
          "discovery: %s#%zu gave a valid config (%zu endpoints) after %" PRId64 " ms",
          mtci_source_kind_name(s->kind), s->ep, d->race.result.count, now - d->started_ms);
  } else {
    mtci_race_class c = mtci_race_outcome_class((mtci_race_outcome)o);
    logf_(d, c == MTCI_CLASS_INVALID ? MTCI_DLOG_WARN : MTCI_DLOG_INFO,
          "discovery: %s#%zu %s: %s (%s)", mtci_source_kind_name(s->kind), s->ep,
          c == MTCI_CLASS_INVALID ? "answer rejected" : "failed",
          mtci_race_outcome_name((mtci_race_outcome)o), mtc_strerror(err));
  }
  pump(d, now);
}

static void on_doh_done(void *ud, uint32_t id, const mtci_doh_response *r) {
  struct src *s = ud;
  mtci_discovery *d = s->d;
  if (!d->running || s->req != id) return;
  s->req = 0;
  note_date(d, r, s);
  int64_t now = now_of(d);
  if (r->err) {
    if (r->err == MTC_ERR_DOH_HTTP_STATUS)
      logf_(d, MTCI_DLOG_DEBUG, "discovery: %s#%zu HTTP %ld", mtci_source_kind_name(s->kind), s->ep,
            r->http_status);
    else if (r->detail && r->detail[0])
      logf_(d, MTCI_DLOG_DEBUG, "discovery: %s#%zu transfer: %s", mtci_source_kind_name(s->kind),
            s->ep, r->detail);
    source_result(d, s, r->err, NULL, now);
    return;
  }
  mtci_doh_txt *txt = malloc(sizeof *txt);
  int err = txt ? mtci_doh_json_parse(r->body, r->body_len, txt) : MTC_ERR_NOMEM;
  source_result(d, s, err, err ? NULL : txt, now);
  free(txt);
}

static void on_dns_txt(void *ud, uint32_t id, int err, const mtci_doh_txt *txt) {
  struct src *s = ud;
  mtci_discovery *d = s->d;
  if (!d->running || s->req != id) return;
  s->req = 0;
  source_result(d, s, err, txt, now_of(d));
}

static int start_source(mtci_discovery *d, struct src *s) {
  if (s->kind == MTCI_SOURCE_DNS)
    return mtci_dns_query_txt(d->dns, d->domain, on_dns_txt, s, &s->req);
  const struct ep *e = s->kind == MTCI_SOURCE_GOOGLE ? &d->google[s->ep] : &d->cloudflare[s->ep];
  mtci_doh_api api = s->kind == MTCI_SOURCE_GOOGLE ? MTCI_DOH_API_GOOGLE : MTCI_DOH_API_CLOUDFLARE;
  char pad[MTCI_DOH_PADDING_MAX + 1];
  int rc = mtci_doh_random_padding(d->rnd, d->rnd_ud, pad, NULL);
  if (rc) return rc;
  char url[MTCI_DOH_MAX_URL];
  rc = mtci_doh_build_url(api, e->url, d->domain, pad, url, sizeof url);
  if (rc < 0) return rc;
  mtci_doh_request req = {api, url, e->host};
  return mtci_doh_fetch_start(d->fetch, &req, on_doh_done, s, &s->req);
}

static void abort_source(mtci_discovery *d, struct src *s) {
  if (!s->req) return;
  if (s->kind == MTCI_SOURCE_DNS)
    (void)mtci_dns_cancel(d->dns, s->req);
  else
    (void)mtci_doh_fetch_cancel(d->fetch, s->req);
  s->req = 0;
}

/* Start what is due, abort what the race stopped, note the end. */
static void pump(mtci_discovery *d, int64_t now) {
  if (!d->running) return;
  int i;
  while ((i = mtci_race_take_start(&d->race, now)) >= 0) {
    struct src *s = &d->src[i];
    logf_(d, MTCI_DLOG_DEBUG, "discovery: starting %s#%zu (%s)", mtci_source_kind_name(s->kind),
          s->ep, src_url(d, s));
    int rc = start_source(d, s);
    if (rc) {
      s->req = 0;
      logf_(d, MTCI_DLOG_WARN, "discovery: %s#%zu could not start: %s",
            mtci_source_kind_name(s->kind), s->ep, mtc_strerror(rc));
      (void)mtci_race_on_failure(&d->race, (size_t)i, rc, now);
    }
  }
  while ((i = mtci_race_take_abort(&d->race)) >= 0) {
    struct src *s = &d->src[i];
    logf_(d, MTCI_DLOG_DEBUG, "discovery: %s#%zu stopped: %s", mtci_source_kind_name(s->kind),
          s->ep, mtci_race_outcome_name(d->race.src[i].outcome));
    abort_source(d, s);
  }
  if (mtci_race_done(&d->race)) {
    d->running = 0;
    d->result_pending = 1;
    d->ended_ms = now;
  }
  update_deadline(d, now);
}

/* ---- API ----------------------------------------------------------------------------------- */

int mtci_discovery_new(mtci_poller *poller, const mtci_discovery_settings *s, mtci_discovery_fn fn,
                       void *ud, mtci_discovery **out) {
  if (!out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  if (!poller || !s || !fn) return MTC_ERR_INVALID_ARG;
  const char *dom = s->txt_domain
                        ? s->txt_domain
                        : (s->test_dcs ? MTCI_DISCOVERY_TEST_DOMAIN : MTCI_DISCOVERY_DOMAIN);
  if (!mtci_doh_name_ok(dom)) return MTC_ERR_INVALID_ARG;
  size_t n_src = s->n_google + s->n_cloudflare + (s->use_plain_dns ? 1u : 0u);
  if (s->n_google > MTCI_DISCOVERY_MAX_ENDPOINTS || s->n_cloudflare > MTCI_DISCOVERY_MAX_ENDPOINTS)
    return MTC_ERR_INVALID_ARG;
  if (n_src == 0) return MTC_ERR_DISCOVERY_NO_SOURCE;

  mtci_discovery *d = calloc(1, sizeof *d);
  if (!d) return MTC_ERR_NOMEM;
  d->poller = poller;
  d->fn = fn;
  d->ud = ud;
  d->deadline_id = -1;
  d->now_ms = s->now_ms;
  d->now_ud = s->now_ud;
  d->log = s->log;
  d->log_ud = s->log_ud;
  d->use_dns = s->use_plain_dns != 0;
  d->trust_date = s->trust_http_date != 0;
  d->stagger_ms = s->stagger_ms;
  d->total_ms = s->total_timeout_ms ? s->total_timeout_ms : MTCI_DISCOVERY_DEFAULT_TOTAL_TIMEOUT_MS;
  snprintf(d->domain, sizeof d->domain, "%s", dom);
  size_t dl = strlen(d->domain);
  if (dl && d->domain[dl - 1] == '.') d->domain[dl - 1] = '\0';

  int rc = copy_endpoints(d->google, s->google, s->n_google, d->domain);
  d->n_google = s->n_google;
  if (rc == 0) rc = copy_endpoints(d->cloudflare, s->cloudflare, s->n_cloudflare, d->domain);
  d->n_cloudflare = s->n_cloudflare;
  if (rc == 0) {
    if (s->key) {
      d->key = *s->key;
    } else {
      const char *pem = mtci_rsa_builtin_pem(MTCI_RSA_BUILTIN_SIMPLE_CONFIG);
      rc = pem ? mtci_rsa_key_from_pem(&d->key, pem, strlen(pem)) : MTC_ERR_RSA_KEY;
    }
  }
  if (rc == 0) {
    d->rnd = s->random;
    d->rnd_ud = s->random_ud;
    if (!d->rnd) {
      d->own_drbg = mtci_drbg_new();
      if (!d->own_drbg) rc = MTC_ERR_NOMEM;
      d->rnd = mtci_drbg_random;
      d->rnd_ud = d->own_drbg;
    }
  }
  if (rc == 0) {
    d->deadline_id = mtci_poller_deadline_new(poller);
    if (d->deadline_id < 0) rc = d->deadline_id;
  }
  if (rc == 0) {
    mtci_doh_fetch_config fc;
    memset(&fc, 0, sizeof fc);
    fc.poller = poller;
    fc.now_ms = s->now_ms;
    fc.now_ud = s->now_ud;
    fc.ca_file = s->ca_file;
    fc.user_agent = s->user_agent;
    fc.connect_timeout_ms = s->connect_timeout_ms;
    fc.request_timeout_ms = s->request_timeout_ms;
    rc = mtci_doh_fetch_new(&fc, &d->fetch);
  }
  if (rc == 0) {
    mtci_dns_config dc;
    memset(&dc, 0, sizeof dc);
    dc.poller = poller;
    dc.now_ms = s->now_ms;
    dc.now_ud = s->now_ud;
    dc.servers = s->dns_servers;
    dc.timeout_ms = s->dns_timeout_ms;
    rc = mtci_dns_new(&dc, &d->dns);
  }
  if (rc) {
    mtci_discovery_free(d);
    return rc;
  }
  /* Start order: google#0, cloudflare#0, google#1, ..., then plain DNS. */
  size_t n = 0;
  for (size_t i = 0; i < MTCI_DISCOVERY_MAX_ENDPOINTS; i++) {
    if (i < d->n_google) d->src[n++] = (struct src){d, 0, MTCI_SOURCE_GOOGLE, i, 0};
    if (i < d->n_cloudflare) d->src[n++] = (struct src){d, 0, MTCI_SOURCE_CLOUDFLARE, i, 0};
  }
  if (d->use_dns) d->src[n++] = (struct src){d, 0, MTCI_SOURCE_DNS, 0, 0};
  for (size_t i = 0; i < n; i++)
    d->src[i].index = i;
  d->n_src = n;
  *out = d;
  return 0;
}

void mtci_discovery_free(mtci_discovery *d) {
  if (!d) return;
  mtci_doh_fetch_free(d->fetch); /* aborts transfers: no callbacks */
  mtci_dns_free(d->dns);
  if (d->deadline_id >= 0) (void)mtci_poller_deadline_free(d->poller, d->deadline_id, now_of(d));
  for (size_t i = 0; i < MTCI_DISCOVERY_MAX_ENDPOINTS; i++) {
    free(d->google[i].url);
    free(d->google[i].host);
    free(d->cloudflare[i].url);
    free(d->cloudflare[i].host);
  }
  mtci_drbg_free(d->own_drbg);
  mtci_race_free(&d->race);
  mtci_zeroize(d, sizeof *d);
  free(d);
}

int mtci_discovery_start(mtci_discovery *d, int64_t now_ms, const char *phone, size_t phone_len) {
  if (!d) return MTC_ERR_INVALID_ARG;
  if (d->running || d->result_pending) return MTC_ERR_DISCOVERY_BUSY;
  if (phone_len > MTCI_RACE_MAX_PHONE || (phone_len && !phone)) return MTC_ERR_INVALID_ARG;
  mtci_source_kind kinds[MTCI_RACE_MAX_SOURCES];
  for (size_t i = 0; i < d->n_src; i++) {
    kinds[i] = d->src[i].kind;
    d->src[i].req = 0;
  }
  mtci_race_config rc;
  memset(&rc, 0, sizeof rc);
  rc.kinds = kinds;
  rc.n = d->n_src;
  rc.stagger_ms = d->stagger_ms;
  rc.total_timeout_ms = d->total_ms;
  rc.key = &d->key;
  rc.phone = phone;
  rc.phone_len = phone_len;
  int err = mtci_race_begin(&d->race, &rc, &d->ctr, now_ms);
  if (err) return err;
  d->running = 1;
  d->started_ms = now_ms;
  logf_(d, MTCI_DLOG_INFO, "discovery: started (%zu sources, %s)", d->n_src, d->domain);
  pump(d, now_ms); /* even if nothing could start, the result comes from on_timeout */
  return 0;
}

int mtci_discovery_cancel(mtci_discovery *d) {
  if (!d || (!d->running && !d->result_pending)) return MTC_ERR_INVALID_ARG;
  if (d->running) {
    mtci_race_cancel(&d->race);
    int i;
    while ((i = mtci_race_take_abort(&d->race)) >= 0)
      abort_source(d, &d->src[i]);
  }
  d->running = 0;
  d->result_pending = 0;
  update_deadline(d, now_of(d));
  logf_(d, MTCI_DLOG_INFO, "discovery: cancelled");
  return 0;
}

int mtci_discovery_running(const mtci_discovery *d) {
  return d && (d->running || d->result_pending);
}

void mtci_discovery_on_timeout(mtci_discovery *d, int64_t now_ms) {
  if (!d) return;
  mtci_doh_fetch_on_timeout(d->fetch, now_ms);
  mtci_dns_on_timeout(d->dns, now_ms);
  if (d->running) {
    mtci_race_on_timeout(&d->race, now_ms);
    if (mtci_race_done(&d->race) && mtci_race_error(&d->race) == MTC_ERR_DISCOVERY_TIMEOUT)
      logf_(d, MTCI_DLOG_WARN, "discovery: no valid answer within %" PRId64 " ms", d->total_ms);
    pump(d, now_ms);
  }
  if (!d->result_pending) return;
  /* Deliver: the last thing done here (the callback may free d). */
  d->result_pending = 0;
  update_deadline(d, now_ms);
  mtci_discovery_result r;
  memset(&r, 0, sizeof r);
  r.err = mtci_race_error(&d->race);
  r.config = mtci_race_result(&d->race);
  if (r.config) {
    const struct src *w = &d->src[d->race.winner];
    r.source = w->kind;
    r.endpoint = src_url(d, w);
    d->runs_ok++;
  } else {
    d->runs_failed++;
    logf_(d, MTCI_DLOG_WARN, "discovery: failed: %s", mtc_strerror(r.err));
  }
  d->runs++;
  r.elapsed_ms = d->ended_ms - d->started_ms;
  r.have_clock_offset = mtci_discovery_clock_offset(d, &r.clock_offset_s);
  d->fn(d->ud, &r);
}

void mtci_discovery_set_time_offset(mtci_discovery *d, int64_t offset_s) {
  if (d) d->base_offset_s = offset_s;
}

int mtci_discovery_clock_offset(const mtci_discovery *d, int64_t *offset_s) {
  int far = d && d->have_date &&
            (d->date_offset_s > MTCI_DISCOVERY_CLOCK_SKEW_S ||
             d->date_offset_s < -MTCI_DISCOVERY_CLOCK_SKEW_S);
  if (offset_s) *offset_s = far ? d->date_offset_s : 0;
  return far;
}

void mtci_discovery_counters_get(const mtci_discovery *d, mtci_discovery_counters *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!d) return;
  out->runs = d->runs;
  out->runs_ok = d->runs_ok;
  out->runs_failed = d->runs_failed;
  out->http_requests = mtci_doh_fetch_started(d->fetch);
  out->dns_queries = mtci_dns_queries(d->dns);
  out->race = d->ctr;
  out->have_date = d->have_date;
  out->date_offset_s = d->date_offset_s;
}

mtci_dns *mtci_discovery_dns(mtci_discovery *d) { return d ? d->dns : NULL; }

void mtci_discovery_global_cleanup(void) {
  mtci_doh_global_cleanup();
  mtci_dns_global_cleanup();
}
