/*
 * The MTContext, shell part (see context.h): creation and destruction, the
 * mtci_ctx_io implementation over src/io (sockets, poller, clock) and
 * src/store (state file), the loop entry points, and the runner thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "crypto/crypto.h"
#include "discovery/discovery.h"
#include "discovery/dns.h"
#include "io/clock.h"
#include "io/runner.h"
#include "io/sock.h"

/* The runner wrapper (ctx->runner points to one while it owns the context). */
struct mtc_runner {
  mtci_runner r; /* first member */
  mtc_context *ctx;
};

static int runner_is_self(const mtc_runner *r) { return r && mtci_runner_on_thread(&r->r); }

/* ---- io ops ---------------------------------------------------------------------- */

static int os_dial(void *ud, const char *ip, uint16_t port, int *fd) {
  (void)ud;
  return mtci_sock_connect(ip, port, fd);
}

static int os_dial_result(void *ud, int fd) {
  (void)ud;
  return mtci_sock_connect_result(fd);
}

static int os_xmit(void *ud, int fd, const uint8_t *p, size_t n) {
  (void)ud;
  return mtci_sock_send(fd, p, n);
}

static int os_take(void *ud, int fd, uint8_t *p, size_t cap) {
  (void)ud;
  return mtci_sock_recv(fd, p, cap);
}

static int os_watch(void *ud, int fd, unsigned events) {
  mtc_context *ctx = ud;
  if (mtci_poller_has(&ctx->poller, fd)) return mtci_poller_modify(&ctx->poller, fd, events);
  return mtci_poller_add(&ctx->poller, fd, events, mtci_ctx_on_fd, ctx);
}

static void os_hangup(void *ud, int fd) {
  mtc_context *ctx = ud;
  if (mtci_poller_has(&ctx->poller, fd)) (void)mtci_poller_remove(&ctx->poller, fd);
  mtci_sock_close(fd);
}

static int64_t os_now(void *ud) {
  mtc_context *ctx = ud;
  return ctx->cb.now_ms ? ctx->cb.now_ms(ctx->user_data) : mtci_clock_realtime_ms();
}

static void os_arm(void *ud, int64_t at_ms) {
  mtc_context *ctx = ud;
  int64_t now = os_now(ctx);
  (void)mtci_poller_deadline_set(&ctx->poller, ctx->deadline_slot, at_ms, now);
  mtci_poller_timer_sync(&ctx->poller, now);
}

static int os_save(void *ud, const mtci_state *st, char *msg, size_t msg_len) {
  mtc_context *ctx = ud;
  if (ctx->cb.save_state) {
    char *json = NULL;
    size_t len = 0;
    int rc = mtci_state_to_json(st, &json, &len, msg, msg_len);
    if (rc) return rc;
    rc = ctx->cb.save_state(ctx->user_data, json, len);
    mtci_state_json_free(json, len + 1);
    return rc > 0 ? 0 : rc;
  }
  if (ctx->set.state_path) return mtci_store_save(ctx->set.state_path, st, msg, msg_len);
  return MTC_ERR_UNSUPPORTED;
}

static void free_now(mtc_context *ctx);

static void os_finalize(void *ud) { free_now(ud); }

/* ---- endpoint discovery: the object on the context's poller ------------------------ */

static int64_t disc_now(void *ud) { return os_now(ud); }

static void disc_log(void *ud, int level, const char *line) { mtci_ctx_log(ud, level, "%s", line); }

/* Runs from mtci_discovery_on_timeout, inside an entry point. */
static void disc_done(void *ud, const mtci_discovery_result *r) {
  mtc_context *ctx = ud;
  mtci_ctx_disc_result(ctx, r, os_now(ctx));
}

static int os_disc_start(void *ud, int64_t now_ms, int64_t time_offset_s) {
  mtc_context *ctx = ud;
  if (!ctx->discovery) {
    const mtci_ctx_disc_settings *t = &ctx->disc.set;
    mtci_doh_endpoint g[MTCI_DISCOVERY_MAX_ENDPOINTS], c[MTCI_DISCOVERY_MAX_ENDPOINTS];
    for (size_t i = 0; i < t->n_google; i++) g[i] = (mtci_doh_endpoint){t->google[i], NULL};
    for (size_t i = 0; i < t->n_cloudflare; i++) c[i] = (mtci_doh_endpoint){t->cloudflare[i], NULL};
    mtci_discovery_settings ds;
    mtci_discovery_settings_default(&ds);
    ds.google = g;
    ds.n_google = t->n_google;
    ds.cloudflare = c;
    ds.n_cloudflare = t->n_cloudflare;
    ds.test_dcs = t->test_dcs;
    ds.ca_file = t->ca_file;
    ds.connect_timeout_ms = t->connect_timeout_ms;
    ds.request_timeout_ms = t->request_timeout_ms;
    ds.total_timeout_ms = t->total_timeout_ms;
    ds.stagger_ms = t->stagger_ms;
    ds.use_plain_dns = t->plain_dns;
    ds.dns_servers = t->dns_servers;
    ds.key = t->key;
    ds.random = ctx->rnd;
    ds.random_ud = ctx->rnd_ud;
    ds.now_ms = disc_now;
    ds.now_ud = ctx;
    ds.log = disc_log;
    ds.log_ud = ctx;
    int rc = mtci_discovery_new(&ctx->poller, &ds, disc_done, ctx, &ctx->discovery);
    if (rc) return rc;
  }
  mtci_discovery_set_time_offset(ctx->discovery, time_offset_s);
  const char *phone = ctx->disc.set.phone; /* digits, "" before login */
  return mtci_discovery_start(ctx->discovery, now_ms, phone[0] ? phone : NULL, strlen(phone));
}

static void os_disc_counters(void *ud, mtci_discovery_counters *out) {
  mtc_context *ctx = ud;
  mtci_discovery_counters_get(ctx->discovery, out); /* zeroes when there is none */
}

/* Timers of the discovery (and its result): cheap when nothing is due. */
static void disc_tick(mtc_context *ctx) {
  if (ctx->discovery) mtci_discovery_on_timeout(ctx->discovery, os_now(ctx));
}

/* ---- the proxy's host name: c-ares on the context's poller -------------------------- */

/* Runs from the poller's fd callback or proxy_tick, inside an entry point. */
static void proxy_dns_done(void *ud, uint32_t id, int err, const mtci_dns_addrs *a) {
  mtc_context *ctx = ud;
  if (id == ctx->proxy_dns_id) ctx->proxy_dns_id = 0;
  mtci_ctx_proxy_resolved(ctx, err, a, os_now(ctx));
}

static int os_resolve(void *ud, const char *host, unsigned *questions) {
  mtc_context *ctx = ud;
  *questions = 0;
  if (!ctx->proxy_dns) {
    mtci_dns_config dc;
    memset(&dc, 0, sizeof dc);
    dc.poller = &ctx->poller;
    dc.now_ms = disc_now;
    dc.now_ud = ctx;
    dc.servers = ctx->disc.set.dns_servers; /* NULL: the system's resolvers */
    int64_t t = ctx->set.connect_timeout_ms; /* a lookup is part of a connect: min(it, 5 s) */
    if (t <= 0 || t > MTCI_DNS_DEFAULT_TIMEOUT_MS) t = MTCI_DNS_DEFAULT_TIMEOUT_MS;
    dc.timeout_ms = (uint32_t)t;
    int rc = mtci_dns_new(&dc, &ctx->proxy_dns);
    if (rc) return rc;
  }
  if (ctx->proxy_dns_id) (void)mtci_dns_cancel(ctx->proxy_dns, ctx->proxy_dns_id); /* replaced */
  ctx->proxy_dns_id = 0;
  uint64_t before = mtci_dns_queries(ctx->proxy_dns);
  int rc = mtci_dns_lookup_host(ctx->proxy_dns, host, proxy_dns_done, ctx, &ctx->proxy_dns_id);
  *questions = (unsigned)(mtci_dns_queries(ctx->proxy_dns) - before);
  return rc;
}

/* The resolver's timers (its per-lookup deadline, c-ares retries). */
static void proxy_tick(mtc_context *ctx) {
  if (ctx->proxy_dns) mtci_dns_on_timeout(ctx->proxy_dns, os_now(ctx));
}

/* ---- creation ---------------------------------------------------------------------- */

static void free_now(mtc_context *ctx) {
  mtci_ctx_shutdown(ctx);
  /* The context's own deadline first: as the components' deadlines leave
   * below, the poller would re-arm the host's timer for it (set_timer with a
   * delay, from inside mtc_context_free). Without it the last one out
   * cancels the timer (set_timer -1): no on_timeout for a freed context. */
  if (ctx->poller_up && ctx->deadline_slot >= 0)
    (void)mtci_poller_deadline_free(&ctx->poller, ctx->deadline_slot, os_now(ctx));
  ctx->deadline_slot = -1;
  mtci_discovery_free(ctx->discovery); /* its fds and deadline leave the poller */
  ctx->discovery = NULL;
  mtci_dns_free(ctx->proxy_dns); /* pending lookups end without callbacks */
  ctx->proxy_dns = NULL;
  mtci_ctx_destroy(ctx);
  if (ctx->poller_up) mtci_poller_free(&ctx->poller);
  if (ctx->drbg) mtci_drbg_free(ctx->drbg);
  mtci_zeroize(ctx, sizeof *ctx);
  free(ctx);
}

/* Load the persisted state, if any: 0 (loaded or fresh) or the error. */
static int load_state(mtc_context *ctx) {
  if (!ctx->cb.load_state && !ctx->set.state_path) return 0;
  mtci_state *st = calloc(1, sizeof *st);
  if (!st) return MTC_ERR_NOMEM;
  char msg[256] = "";
  int rc;
  if (ctx->cb.load_state) {
    char *buf = malloc(MTCI_STATE_MAX_JSON);
    size_t len = 0;
    if (!buf) {
      free(st);
      return MTC_ERR_NOMEM;
    }
    rc = ctx->cb.load_state(ctx->user_data, buf, MTCI_STATE_MAX_JSON, &len);
    if (rc == 0 && len > MTCI_STATE_MAX_JSON) rc = MTC_ERR_STORE_TOO_LARGE;
    if (rc == 0) rc = mtci_state_from_json(buf, len, st, msg, sizeof msg);
    mtci_state_json_free(buf, MTCI_STATE_MAX_JSON);
  } else {
    rc = mtci_store_load(ctx->set.state_path, st, msg, sizeof msg);
  }
  if (rc == MTC_ERR_STORE_NOT_FOUND) {
    mtci_ctx_log(ctx, MTC_LOG_INFO, "no saved state: fresh start");
    rc = 0;
  } else if (rc) {
    mtci_ctx_log(ctx, MTC_LOG_ERROR, "saved state unusable, refusing to start (the file is left as it is): %s%s%s",
                 mtc_strerror(rc), msg[0] ? ": " : "", msg);
  } else {
    rc = mtci_ctx_load_state(ctx, st);
    if (rc == MTC_ERR_STATE_MISMATCH)
      mtci_ctx_log(ctx, MTC_LOG_ERROR, "saved state belongs to the %s DCs, refusing to start",
                   st->test_dcs ? "test" : "production");
    else if (rc)
      mtci_ctx_log(ctx, MTC_LOG_ERROR, "saved state could not be loaded, refusing to start: %s",
                   mtc_strerror(rc));
    else
      mtci_ctx_log(ctx, MTC_LOG_INFO, "state loaded: main DC %d, %d DCs", st->main_dc, st->n_dcs);
  }
  mtci_state_clear(st);
  free(st);
  return rc;
}

int mtc_context_new(mtc_context **out, const mtc_settings *settings,
                    const mtc_callbacks *callbacks, void *user_data) {
  if (!out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  mtc_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return MTC_ERR_NOMEM;
  ctx->deadline_slot = -1;
  ctx->io.ud = ctx;
  ctx->io.dial = os_dial;
  ctx->io.dial_result = os_dial_result;
  ctx->io.xmit = os_xmit;
  ctx->io.take = os_take;
  ctx->io.watch = os_watch;
  ctx->io.hangup = os_hangup;
  ctx->io.arm = os_arm;
  ctx->io.now_ms = os_now;
  ctx->io.save = os_save;
  ctx->io.finalize = os_finalize;
  ctx->io.disc_start = os_disc_start;
  ctx->io.disc_counters = os_disc_counters;
  ctx->io.resolve = os_resolve;
  char msg[256] = "";
  int rc = mtci_ctx_init(ctx, settings, callbacks, user_data, msg, sizeof msg);
  if (rc) {
    mtci_ctx_log(ctx, MTC_LOG_ERROR, "settings rejected: %s (%s)", msg[0] ? msg : "invalid",
                 mtc_strerror(rc));
    goto fail;
  }
  if (ctx->cb.random) {
    ctx->rnd = ctx->cb.random;
    ctx->rnd_ud = ctx->user_data;
  } else {
    ctx->drbg = mtci_drbg_new();
    if (!ctx->drbg) {
      rc = MTC_ERR_RANDOM;
      goto fail;
    }
    ctx->rnd = mtci_drbg_random;
    ctx->rnd_ud = ctx->drbg;
  }
  rc = load_state(ctx);
  if (rc) goto fail;
  mtci_poller_config pc;
  memset(&pc, 0, sizeof pc);
  pc.watch_fd = ctx->cb.watch_fd;
  pc.set_timer = ctx->cb.set_timer;
  pc.user_data = ctx->user_data;
  rc = mtci_poller_init(&ctx->poller, &pc);
  if (rc) goto fail;
  ctx->poller_up = 1;
  rc = mtci_poller_deadline_new(&ctx->poller);
  if (rc < 0) goto fail;
  ctx->deadline_slot = rc;
  *out = ctx;
  return 0;
fail:
  ctx->io.save = NULL; /* never write over a state we refused */
  ctx->dirty = ctx->dirty_minor = 0;
  free_now(ctx);
  return rc;
}

void mtc_context_free(mtc_context *ctx) {
  if (!ctx || ctx->closing) return;
  if (ctx->runner) {
    mtc_runner *r = ctx->runner;
    if (ctx->depth > 0 || runner_is_self(r)) {
      mtci_ctx_log(ctx, MTC_LOG_ERROR,
                   "mtc_context_free while a runner owns the context: call mtc_runner_stop first");
      return;
    }
    /* another thread: stop the runner first, then free */
    (void)mtc_runner_stop(r);
  }
  if (ctx->depth > 0) {
    ctx->free_deferred = 1; /* from a callback: at the end of the outermost call */
    return;
  }
  free_now(ctx);
}

/* ---- loop integration ------------------------------------------------------------------ */

int mtc_context_on_io(mtc_context *ctx, int fd, unsigned events) {
  if (!ctx || fd < 0) return MTC_ERR_INVALID_ARG;
  if (ctx->depth > 0) return MTC_ERR_IO_BUSY;
  mtci_ctx_enter(ctx);
  (void)mtci_poller_dispatch(&ctx->poller, fd, events & (MTCI_IO_READ | MTCI_IO_WRITE));
  mtci_ctx_leave(ctx);
  return 0;
}

int mtc_context_on_timeout(mtc_context *ctx) {
  if (!ctx) return MTC_ERR_INVALID_ARG;
  if (ctx->depth > 0) return MTC_ERR_IO_BUSY;
  mtci_ctx_enter(ctx);
  mtci_poller_timer_fired(&ctx->poller);
  disc_tick(ctx);
  proxy_tick(ctx);
  mtci_ctx_leave(ctx); /* runs what is due and re-arms */
  return 0;
}

int64_t mtc_context_next_timeout_ms(const mtc_context *ctx) {
  if (!ctx || !ctx->poller_up) return -1;
  int64_t now = ctx->cb.now_ms ? ctx->cb.now_ms(ctx->user_data) : mtci_clock_realtime_ms();
  return mtci_poller_next_timeout_ms(&ctx->poller, now);
}

static int run_round(mtc_context *ctx, int max_ms) {
  mtci_ctx_enter(ctx);
  int64_t t = mtci_poller_next_timeout_ms(&ctx->poller, os_now(ctx));
  int64_t wait = max_ms;
  if (t >= 0 && (wait < 0 || t < wait)) wait = t;
  if (wait > 3600000) wait = 3600000;
  int rc = mtci_poller_run(&ctx->poller, (int)wait);
  disc_tick(ctx);
  proxy_tick(ctx);
  mtci_ctx_leave(ctx);
  return rc < 0 ? rc : 0;
}

int mtc_context_run(mtc_context *ctx, int max_ms) {
  if (!ctx) return MTC_ERR_INVALID_ARG;
  if (!mtci_poller_own_mode(&ctx->poller)) return MTC_ERR_INVALID_ARG;
  if (ctx->depth > 0 || ctx->runner) return MTC_ERR_IO_BUSY; /* a runner drives it */
  return run_round(ctx, max_ms);
}

/* ---- runner ----------------------------------------------------------------------------- */

typedef struct runner_item {
  void (*fn)(mtc_context *ctx, void *ud);
  void *ud;
} runner_item;

static int runner_run_once(void *target, int max_ms) {
  mtc_context *ctx = target;
  if (ctx->depth > 0) return MTC_ERR_IO_BUSY;
  return run_round(ctx, max_ms);
}
static mtci_poller *runner_poller(void *target) { return &((mtc_context *)target)->poller; }

static void runner_tramp(void *target, void *ud) {
  runner_item it = *(runner_item *)ud;
  free(ud);
  it.fn(target, it.ud);
}

int mtc_runner_start(mtc_runner **out, mtc_context *ctx) {
  if (!out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  if (!ctx || ctx->runner || ctx->depth > 0 || !mtci_poller_own_mode(&ctx->poller))
    return MTC_ERR_INVALID_ARG;
  mtc_runner *r = calloc(1, sizeof *r);
  if (!r) return MTC_ERR_NOMEM;
  r->ctx = ctx;
  mtci_runner_target t = {runner_run_once, runner_poller, ctx};
  ctx->runner = r; /* before the thread runs: mtc_context_run checks it */
  int rc = mtci_runner_start(&r->r, &t, 0);
  if (rc) {
    ctx->runner = NULL;
    free(r);
    return rc;
  }
  *out = r;
  return 0;
}

int mtc_runner_submit(mtc_runner *r, void (*fn)(mtc_context *ctx, void *ud), void *ud) {
  if (!r || !fn) return MTC_ERR_INVALID_ARG;
  runner_item *it = malloc(sizeof *it);
  if (!it) return MTC_ERR_NOMEM;
  it->fn = fn;
  it->ud = ud;
  int rc = mtci_runner_submit(&r->r, runner_tramp, it);
  if (rc) free(it);
  return rc;
}

int mtc_runner_stop(mtc_runner *r) {
  if (!r) return 0;
  if (runner_is_self(r)) return MTC_ERR_IO_BUSY;
  int rc = mtci_runner_stop(&r->r);
  if (r->ctx) r->ctx->runner = NULL;
  free(r);
  return rc;
}
