/*
 * What the context tests (test_context, test_context_discovery,
 * test_context_pfs, test_context_proxy) share besides their requests
 * (context_requests.h):
 *   - the environment: the mock cluster's 5 DCs on 127.0.0.1 as seeds with
 *     their public keys, optionally a state directory;
 *   - the settings of the test application for it;
 *   - the context's counters, the mock's fault switch and method counts;
 *   - a mock MTProxy on its own loop thread in front of the 5 DCs;
 *   - the first result of a request, and a check of a file part;
 *   - a growing log buffer;
 *   - HOST mode: the application's loop behind watch_fd / set_timer, run
 *     with poll();
 *   - TEST_MAIN's case loop with each case's time.
 * Every wait is bounded by its caller.
 */
#ifndef MTC_TEST_CONTEXT_ENV_H
#define MTC_TEST_CONTEXT_ENV_H

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "context_requests.h"
#include "mock_dc.h"
#include "mock_loop.h"
#include "mock_proxy.h"
#include "mtconn/mtconn.h"
#include "mtconn/tl_api.h"
#include "test.h"
#include "tl/tl.h"

#define WAIT_MS 15000

/* In a function returning int: report the failed condition, return -1. */
#define REQ(cond)                                                                                  \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "  %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
      return -1;                                                                                   \
    }                                                                                              \
  } while (0)

/* ---- the mock cluster ------------------------------------------------------------------------ */

#define CTX_ENV_DCS 5

typedef struct ctx_env {
  mock_dc_cluster *cl;
  mtc_dc_address seeds[CTX_ENV_DCS]; /* DC d at seeds[d - 1]; a test may redirect one */
  size_t n_seeds;
  char pems[CTX_ENV_DCS][2048];
  const char *pem_ptrs[CTX_ENV_DCS];
  char dir[64], state_path[128]; /* "" without a state directory */
} ctx_env;

static inline void ctx_env_stop(ctx_env *e) {
  mock_dc_cluster_free(e->cl);
  e->cl = NULL;
  if (e->dir[0]) {
    unlink(e->state_path);
    rmdir(e->dir);
    e->dir[0] = 0;
  }
}

static inline int ctx_env_start_(ctx_env *e, const mock_dc_config *cfg_in, const char *dir_template) {
  mock_dc_config cfg;
  if (cfg_in) cfg = *cfg_in;
  else memset(&cfg, 0, sizeof cfg);
  cfg.n_dcs = CTX_ENV_DCS;
  cfg.rnd = test_rnd;
  REQ(mock_dc_cluster_new(&e->cl, &cfg) == 0);
  REQ(mock_dc_cluster_start(e->cl) == 0);
  for (int dc = 1; dc <= CTX_ENV_DCS; dc++) {
    mtc_dc_address *a = &e->seeds[e->n_seeds++];
    memset(a, 0, sizeof *a);
    a->dc_id = dc;
    a->ip = "127.0.0.1";
    a->port = mock_dc_port(e->cl, dc);
    size_t pl = 0;
    REQ(mock_dc_public_pem(e->cl, dc, e->pems[dc - 1], sizeof e->pems[0], &pl) == 0);
    e->pem_ptrs[dc - 1] = e->pems[dc - 1];
  }
  if (dir_template) {
    char dir[sizeof e->dir];
    snprintf(dir, sizeof dir, "%s", dir_template);
    REQ(mkdtemp(dir) != NULL);
    memcpy(e->dir, dir, sizeof dir);
    snprintf(e->state_path, sizeof e->state_path, "%s/state.json", e->dir);
  }
  return 0;
}

/*
 * Start the cluster: cfg holds the switches (faults, alt_ports; NULL for
 * none), n_dcs and rnd are set here. dir_template ("/tmp/name_XXXXXX", for
 * mkdtemp) or NULL: a state directory for <dir>/state.json, removed by
 * ctx_env_stop. 0, or -1 with everything stopped again.
 */
static inline int ctx_env_start(ctx_env *e, const mock_dc_config *cfg, const char *dir_template) {
  memset(e, 0, sizeof *e);
  if (ctx_env_start_(e, cfg, dir_template) == 0) return 0;
  ctx_env_stop(e);
  return -1;
}

/* The test application on the cluster: its seeds and keys only (no
 * built-in ones), the state file if there is one, every log line. */
static inline void ctx_env_settings(ctx_env *e, mtc_settings *s) {
  mtc_settings_default(s);
  s->api_id = 12345;
  s->api_hash = "0123456789abcdef";
  s->device_model = "mtconn test";
  s->system_version = "Linux";
  s->app_version = "0.1";
  s->system_lang_code = "en";
  s->lang_pack = ""; /* what NULL means too */
  s->lang_code = "en";
  s->seeds = e->seeds;
  s->n_seeds = e->n_seeds;
  s->rsa_keys_pem = e->pem_ptrs;
  s->n_rsa_keys = CTX_ENV_DCS;
  s->no_builtin_rsa_keys = 1;
  s->state_path = e->dir[0] ? e->state_path : NULL;
  s->log_level = MTC_LOG_DEBUG;
}

/* Apply a mock_dc_faults_parse spec ("stall=1") to one DC. */
static inline int ctx_set_fault(mock_dc_cluster *cl, int dc, const char *spec) {
  mock_dc_faults f;
  if (mock_dc_get_faults(cl, dc, &f) != 0) return -1;
  if (mock_dc_faults_parse(spec, &f) != 0) return -1;
  return mock_dc_set_faults(cl, dc, &f);
}

/* How often dc served the method ("help.getConfig"). */
static inline uint64_t ctx_mock_method(mock_dc_cluster *cl, int dc, const char *name) {
  mock_dc_counters c;
  if (mock_dc_get_counters(cl, dc, &c) != 0) return 0;
  return mock_dc_counter_name(c.methods, c.n_methods, name);
}

/* The context's counters (on its own thread). */
static inline int ctx_counters(mtc_context *ctx, mtc_counters *c) {
  memset(c, 0, sizeof *c);
  c->version = MTC_COUNTERS_VERSION;
  return mtc_context_counters(ctx, c);
}

/* ---- a mock MTProxy in front of the cluster -------------------------------------------------- */

typedef struct ctx_mtproxy {
  mock_loop *loop;
  mock_proxy *px;
} ctx_mtproxy;

static inline void ctx_mtproxy_stop(ctx_mtproxy *p) {
  if (p->loop) mock_loop_stop_thread(p->loop);
  mock_proxy_free(p->px);
  mock_loop_free(p->loop);
  memset(p, 0, sizeof *p);
}

static inline int ctx_mtproxy_start_(ctx_mtproxy *p, ctx_env *e, const uint8_t secret[16],
                                     const char *tls_domain) {
  REQ(mock_loop_new(&p->loop) == 0);
  mock_proxy_dc pdcs[CTX_ENV_DCS];
  for (int i = 0; i < CTX_ENV_DCS; i++) {
    pdcs[i].dc = i + 1;
    pdcs[i].port = mock_dc_port(e->cl, i + 1);
  }
  mock_proxy_config pc;
  memset(&pc, 0, sizeof pc);
  memcpy(pc.secret, secret, sizeof pc.secret);
  pc.tls_domain = tls_domain;
  pc.dcs = pdcs;
  pc.n_dcs = CTX_ENV_DCS;
  pc.rnd = test_rnd;
  REQ(mock_proxy_new(p->loop, &pc, &p->px) == 0);
  REQ(mock_loop_start_thread(p->loop) == 0);
  return 0;
}

/* The proxy (all modes; SNI checked when tls_domain is given) on its own
 * loop thread, relaying to the cluster's DCs. 0, or -1 with nothing left. */
static inline int ctx_mtproxy_start(ctx_mtproxy *p, ctx_env *e, const uint8_t secret[16],
                                    const char *tls_domain) {
  memset(p, 0, sizeof *p);
  if (ctx_mtproxy_start_(p, e, secret, tls_domain) == 0) return 0;
  ctx_mtproxy_stop(p);
  return -1;
}

static inline void ctx_mtproxy_stats(ctx_mtproxy *p, mock_proxy_stats *st) {
  mock_loop_lock(p->loop);
  mock_proxy_stats_get(p->px, st);
  mock_loop_unlock(p->loop);
}

/* ---- results --------------------------------------------------------------------------------- */

typedef struct ctx_res {
  int calls;
  mtc_result_kind kind;
  int dc_id;
  int32_t code;
  char msg[128];
  int error;
  uint8_t *data;
  size_t len;
  int64_t at; /* mono_ms() of the first answer */
} ctx_res;

static inline void ctx_res_clear(ctx_res *r) {
  free(r->data);
  memset(r, 0, sizeof *r);
}

/* Keep the first answer to a request; later ones are only counted. */
static inline void ctx_res_take(ctx_res *x, const mtc_result *r) {
  if (x->calls++ > 0) return;
  x->kind = r->kind;
  x->dc_id = r->dc_id;
  x->code = r->rpc_code;
  x->error = r->error;
  x->at = mono_ms();
  if (r->rpc_message) snprintf(x->msg, sizeof x->msg, "%s", r->rpc_message);
  if (r->len) {
    x->data = malloc(r->len);
    if (x->data) memcpy(x->data, r->data, r->len);
    x->len = r->len;
  }
}

/* upload.file whose bytes equal the mock document at offset. */
static inline int ctx_check_part(const ctx_res *r, int64_t offset, size_t len) {
  mtc_tl_object *o = NULL;
  REQ(r->kind == MTC_RESULT_OK);
  REQ(mtc_tl_parse(r->data, r->len, &o) == 0 && o && o->id == MTC_TL_ID_upload_file);
  const mtc_tl_upload_file *f = (const mtc_tl_upload_file *)o;
  int ok = f->bytes.len == len;
  uint8_t *want = malloc(len);
  if (ok && want) {
    mock_dc_file_content(FILE_ID, (uint64_t)offset, want, len);
    ok = memcmp(want, f->bytes.data, len) == 0;
  }
  free(want);
  mtc_tl_object_free(o);
  REQ(ok);
  return 0;
}

/* ---- a growing log --------------------------------------------------------------------------- */

/* Append line and '\n' to the NUL-terminated *log; -1 (nothing added) when
 * memory runs out. */
static inline int ctx_log_add(char **log, size_t *len, size_t *cap, const char *line) {
  size_t n = strlen(line);
  if (*len + n + 2 > *cap) {
    size_t c = (*cap ? *cap * 2 : 65536) + n + 2;
    char *p = realloc(*log, c);
    if (!p) return -1;
    *log = p;
    *cap = c;
  }
  memcpy(*log + *len, line, n);
  *len += n;
  (*log)[(*len)++] = '\n';
  (*log)[*len] = 0;
  return 0;
}

/* ---- HOST mode: the application's loop ------------------------------------------------------- */

#define CTX_HOST_MAX_FDS 256

typedef struct ctx_host {
  int fds[CTX_HOST_MAX_FDS];
  unsigned ev[CTX_HOST_MAX_FDS]; /* MTC_IO_READ | MTC_IO_WRITE */
  int n;
  int64_t timer_at; /* mono_ms() when due, -1: none */
  int timer_fires, io_calls;
} ctx_host;

static inline void ctx_host_init(ctx_host *h) {
  memset(h, 0, sizeof *h);
  h->timer_at = -1;
}

/* The watch_fd callback's work: events 0 unwatches. */
static inline void ctx_host_watch(ctx_host *h, int fd, unsigned events) {
  for (int i = 0; i < h->n; i++) {
    if (h->fds[i] != fd) continue;
    if (events == 0) {
      h->fds[i] = h->fds[h->n - 1];
      h->ev[i] = h->ev[h->n - 1];
      h->n--;
    } else {
      h->ev[i] = events;
    }
    return;
  }
  if (events && h->n < CTX_HOST_MAX_FDS) {
    h->fds[h->n] = fd;
    h->ev[h->n++] = events;
  }
}

/* The set_timer callback's work: delay < 0 cancels. */
static inline void ctx_host_timer(ctx_host *h, int64_t delay) {
  h->timer_at = delay < 0 ? -1 : mono_ms() + delay;
}

/* One round: poll the watched fds up to max_ms or the timer, hand what is
 * ready to the context, then the timer if it is due. */
static inline void ctx_host_step(ctx_host *h, mtc_context *ctx, int max_ms) {
  struct pollfd p[CTX_HOST_MAX_FDS];
  int n = h->n;
  for (int i = 0; i < n; i++) {
    p[i].fd = h->fds[i];
    p[i].events = (short)(((h->ev[i] & MTC_IO_READ) ? POLLIN : 0) |
                          ((h->ev[i] & MTC_IO_WRITE) ? POLLOUT : 0));
    p[i].revents = 0;
  }
  int64_t to = max_ms;
  if (h->timer_at >= 0) {
    int64_t d = h->timer_at - mono_ms();
    if (d < 0) d = 0;
    if (d < to) to = d;
  }
  int r = poll(p, (nfds_t)n, (int)to);
  for (int i = 0; r > 0 && i < n; i++) {
    if (!p[i].revents) continue;
    unsigned e = 0;
    if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) e |= MTC_IO_READ;
    if (p[i].revents & (POLLOUT | POLLHUP | POLLERR)) e |= MTC_IO_WRITE;
    h->io_calls++;
    (void)mtc_context_on_io(ctx, p[i].fd, e); /* stale fds are ignored by the context */
  }
  if (h->timer_at >= 0 && mono_ms() >= h->timer_at) {
    h->timer_at = -1;
    h->timer_fires++;
    (void)mtc_context_on_timeout(ctx);
  }
}

/* ---- the case loop --------------------------------------------------------------------------- */

/* TEST_MAIN's loop (argv[1] picks the cases whose name contains it), with
 * each case's time; the exit status for main. */
static inline int ctx_test_run(const char *module, const struct test_case *cases, size_t n, int argc,
                               char **argv) {
  int passed = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (argc > 1 && !strstr(cases[i].name, argv[1])) continue;
    int f = 0;
    int64_t t0 = mono_ms();
    cases[i].fn(&f);
    fprintf(stderr, "%s %s (%lld ms)\n", f ? "FAIL" : "ok  ", cases[i].name, (long long)(mono_ms() - t0));
    if (f) failed++;
    else passed++;
  }
  printf("%s: %d passed, %d failed\n", module, passed, failed);
  return failed ? 1 : (passed ? 0 : 1);
}

#endif /* MTC_TEST_CONTEXT_ENV_H */
