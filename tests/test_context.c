/*
 * The MTContext against the in-process mock DC cluster (tests/mockdc): the
 * login flow with its connection budget, restart from the saved state,
 * migrations, FLOOD_WAIT, transport errors -404 / -429 / -444, liveness
 * with the stall switch, resets / truncation / a corrupted byte on every
 * framing, cancel, free with pending requests, persistence refusals, media
 * connections, MTProxy (ee), API argument checks, and routing corners:
 * failures never inside mtc_invoke, authorization transfers that fail, are
 * shared by waiters (cancelled, timed out) or outlive a key, re-entry from
 * an event callback, FLOOD_WAIT ended by a timeout or a cancel, a 401 from
 * a former main DC (resent to the new one), and config churn in the
 * 16-entry DC table.
 *
 * Loop modes: MODE_HOST (watch_fd/set_timer callbacks driven by a small
 * poll() loop here), MODE_RUN (mtc_context_run) and MODE_RUNNER (the runner
 * thread, everything through mtc_runner_submit). Every wait is bounded.
 *
 * Test-side helpers (no mock switch covers these):
 *   relay     mock_socks with a fixed target: a TCP relay in front of a mock
 *             DC that can reset the client, cut the server's stream short,
 *             flip one byte of it, or inject transport error -444 (the same
 *             mock is the SOCKS5 server of the socks5 case);
 *   script DC a small DC (mock_auth + mock_session on a mock_loop) whose
 *             help.getNearestDc answers follow a script of rpc_errors
 *             (FLOOD_WAIT_X, USER_MIGRATE_X, NETWORK_MIGRATE_X, STATS_MIGRATE_X).
 * Set MTC_TEST_VERBOSE=1 to see the context's log lines.
 */
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "crypto/crypto.h"
#include "mock_auth.h"
#include "mock_dc.h"
#include "mock_loop.h"
#include "mock_proxy.h"
#include "mock_session.h"
#include "mock_socks.h"
#include "mtconn/mtconn.h"
#include "mtconn/tl_api.h"
#include "store.h"
#include "context_env.h"
#include "context_requests.h"
#include "test.h"
#include "transport/codec.h"

/* ---- clocks, randomness, lock ------------------------------------------------------- */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
#define LOCK() pthread_mutex_lock(&g_mu)
#define UNLOCK() pthread_mutex_unlock(&g_mu)

static int g_verbose;

/* ---- TL bodies ------------------------------------------------------------------------- */

/* ---- the harness: one context in one loop mode --------------------------------------------- */

enum { MODE_RUN = 0, MODE_HOST = 1, MODE_RUNNER = 2 };
static const char *const k_modes[] = {"run", "host", "runner"};

typedef ctx_res res;

typedef struct evrec {
  int type, dc_id, old, media, index, state, reason;
  uint64_t key_id;
  int64_t at;
} evrec;

#define MAX_EVS 4096

typedef struct harness {
  int mode;
  mtc_context *ctx;
  mtc_runner *runner;
  ctx_host host; /* MODE_HOST */
  evrec evs[MAX_EVS];
  size_t n_evs;
  char *log;
  size_t log_len, log_cap;
  char tag[16];
  int move_main_on, move_main_to; /* the next READY of DC move_main_on moves the main DC */
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
  int move = 0;
  LOCK();
  if (h->move_main_to && ev->type == MTC_EVENT_CONN_STATE && ev->state == MTC_CONN_READY &&
      ev->dc_id == h->move_main_on && !ev->media) {
    move = h->move_main_to;
    h->move_main_to = 0;
  }
  if (h->n_evs < MAX_EVS) {
    evrec *e = &h->evs[h->n_evs++];
    e->type = ev->type;
    e->dc_id = ev->dc_id;
    e->old = ev->old_dc_id;
    e->media = ev->media;
    e->index = ev->index;
    e->state = ev->state;
    e->reason = ev->reason;
    e->key_id = ev->key_id;
    e->at = mono_ms();
  }
  UNLOCK();
  if (move) (void)mtc_context_set_main_dc(h->ctx, move);
}

static void cb_log(void *ud, mtc_log_level level, const char *line) {
  harness *h = ud;
  LOCK();
  (void)ctx_log_add(&h->log, &h->log_len, &h->log_cap, line);
  if (g_verbose) fprintf(stderr, "    [%s %lld %d] %s\n", h->tag, (long long)(mono_ms() % 100000), level, line);
  UNLOCK();
}

static void res_cb(void *ud, const mtc_result *r) {
  LOCK();
  ctx_res_take(ud, r);
  UNLOCK();
}

static void h_step(harness *h, int max_ms) {
  if (h->mode == MODE_RUN) {
    (void)mtc_context_run(h->ctx, max_ms);
    return;
  }
  if (h->mode == MODE_RUNNER) {
    sleep_ms(max_ms < 5 ? max_ms : 5);
    return;
  }
  ctx_host_step(&h->host, h->ctx, max_ms);
}

typedef int (*pred_fn)(harness *h, void *arg);

static int h_wait(harness *h, pred_fn pred, void *arg, int timeout_ms) {
  int64_t end = mono_ms() + timeout_ms;
  for (;;) {
    LOCK();
    int ok = pred(h, arg);
    UNLOCK();
    if (ok) return 1;
    if (mono_ms() >= end) return 0;
    h_step(h, 20);
  }
}

static int pred_res(harness *h, void *arg) {
  (void)h;
  return ((res *)arg)->calls > 0;
}

static int pred_never(harness *h, void *arg) {
  (void)h;
  (void)arg;
  return 0;
}

/* Spin the loop for ms. */
static void h_idle(harness *h, int ms) { (void)h_wait(h, pred_never, NULL, ms); }

/* Run fn(ctx, ud) on the context's thread and wait for it. */
typedef struct exec_item {
  void (*fn)(mtc_context *, void *);
  void *ud;
  int done;
} exec_item;

static void exec_tramp(mtc_context *ctx, void *ud) {
  exec_item *it = ud;
  it->fn(ctx, it->ud);
  LOCK();
  it->done = 1;
  UNLOCK();
}

static int h_exec(harness *h, void (*fn)(mtc_context *, void *), void *ud) {
  if (h->mode != MODE_RUNNER) {
    fn(h->ctx, ud);
    return 0;
  }
  exec_item it = {fn, ud, 0};
  if (mtc_runner_submit(h->runner, exec_tramp, &it) != 0) return -1;
  for (int64_t end = mono_ms() + 10000; mono_ms() < end;) {
    LOCK();
    int d = it.done;
    UNLOCK();
    if (d) return 0;
    sleep_ms(1);
  }
  return -1;
}

typedef struct inv {
  const mtc_invoke_options *opts;
  const uint8_t *body;
  size_t len;
  res *r;
  uint64_t id;
  int rc;
} inv;

static void do_invoke(mtc_context *ctx, void *ud) {
  inv *v = ud;
  v->rc = mtc_invoke(ctx, v->opts, v->body, v->len, res_cb, v->r, &v->id);
}

static int h_invoke(harness *h, const mtc_invoke_options *o, const body *b, res *r, uint64_t *id) {
  inv v = {o, b->b, b->n, r, 0, MTC_ERR_INTERNAL};
  if (h_exec(h, do_invoke, &v) != 0) return MTC_ERR_INTERNAL;
  if (id) *id = v.id;
  return v.rc;
}

/* Invoke and wait for the answer; 0 when the callback ran. */
static int h_call(harness *h, const mtc_invoke_options *o, const body *b, res *r, int timeout_ms) {
  if (h_invoke(h, o, b, r, NULL) != 0) return -1;
  return h_wait(h, pred_res, r, timeout_ms) ? 0 : -1;
}

typedef struct ctr_req {
  mtc_counters c;
  char *json;
} ctr_req;

static void do_counters(mtc_context *ctx, void *ud) {
  ctr_req *q = ud;
  (void)ctx_counters(ctx, &q->c);
  (void)mtc_context_counters_json(ctx, &q->json);
}

static int h_counters(harness *h, ctr_req *q) {
  memset(q, 0, sizeof *q);
  return h_exec(h, do_counters, q);
}

static const mtc_dc_counters *dc_ctr(const mtc_counters *c, int dc) {
  for (size_t i = 0; i < c->n_dcs; i++)
    if (c->dcs[i].dc_id == dc) return &c->dcs[i];
  return NULL;
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
  int rc = mtc_context_new(&h->ctx, s, &cb, h);
  if (rc) return rc;
  if (mode == MODE_RUNNER) {
    rc = mtc_runner_start(&h->runner, h->ctx);
    if (rc) {
      mtc_context_free(h->ctx);
      h->ctx = NULL;
    }
  }
  return rc;
}

static void h_stop(harness *h) {
  if (h->runner) (void)mtc_runner_stop(h->runner);
  h->runner = NULL;
  mtc_context_free(h->ctx);
  h->ctx = NULL;
}

static void h_free(harness *h) {
  h_stop(h);
  free(h->log);
  h->log = NULL;
}

static size_t count_events(harness *h, int type, int dc, int state) {
  size_t n = 0;
  LOCK();
  for (size_t i = 0; i < h->n_evs; i++)
    if (h->evs[i].type == type && (dc == 0 || h->evs[i].dc_id == dc) &&
        (state == 0 || h->evs[i].state == state))
      n++;
  UNLOCK();
  return n;
}

/* ---- the mock cluster environment ------------------------------------------------------------ */

typedef ctx_env env;

static int env_start(env *e, const mock_dc_config *cfg) {
  return ctx_env_start(e, cfg, "/tmp/mtc_ctx_XXXXXX");
}

static void env_settings(env *e, mtc_settings *s) {
  ctx_env_settings(e, s);
  s->no_auto_config = 1;
}

/* totals.<field> of the mock's counters JSON */
static long long mock_total(env *e, const char *field) {
  char *text = mock_dc_counters_json(e->cl);
  if (!text) return -1;
  json_t *root = json_loads(text, 0, NULL);
  free(text);
  long long v = -1;
  json_t *f = root ? json_object_get(json_object_get(root, "totals"), field) : NULL;
  if (f) v = (long long)json_integer_value(f);
  json_decref(root);
  return v;
}

/* ---- test-side TCP relay (mock_socks with a fixed target) ------------------------------------- */

static int relay_get(mock_socks *r, int *accepted) {
  mock_socks_stats st;
  mock_socks_stats_get(r, &st);
  if (accepted) *accepted = (int)st.accepted;
  return (int)st.fired;
}

/* ---- the script DC ------------------------------------------------------------------------------ */

typedef struct sdc {
  mock_loop *loop;
  uint16_t port;
  mock_session *ms;
  char script[8][48]; /* "420 FLOOD_WAIT_1"; "" = answer normally */
  int n_script, next;
  int handshakes, queries, conns, answered;
} sdc;

typedef struct sdc_conn {
  sdc *d;
  mtci_codec codec;
  int have_codec;
  mock_auth_server *auth;
} sdc_conn;

static int sdc_handler(void *ud, const mock_query *q, mtci_tl_writer *out) {
  sdc *d = ud;
  d->queries++;
  if (q->method != MTC_TL_ID_fn_help_getNearestDc) {
    mock_rpc_error(out, 400, "INPUT_METHOD_INVALID");
    return MOCK_ANSWER;
  }
  if (d->next < d->n_script && d->script[d->next][0]) {
    const char *line = d->script[d->next++];
    mock_rpc_error(out, (int32_t)atoi(line), strchr(line, ' ') + 1);
    return MOCK_ANSWER;
  }
  if (d->next < d->n_script) d->next++;
  d->answered++;
  mtci_tl_write_u32(out, MTC_TL_ID_nearestDc);
  mtci_tl_write_bytes(out, "ZZ", 2);
  mtci_tl_write_int(out, 2);
  mtci_tl_write_int(out, 2);
  return MOCK_ANSWER;
}

static void sdc_send(sdc_conn *sc, mock_conn *c, const uint8_t *p, size_t n) {
  size_t cap = n + 8 + 16;
  uint8_t *buf = malloc(cap);
  if (!buf) return;
  memcpy(buf + 8, p, n);
  size_t off = 0, flen = 0;
  if (mtci_codec_encode(&sc->codec, buf, cap, 8, n, 0, &off, &flen) == 0)
    (void)mock_conn_send(c, buf + off, flen);
  free(buf);
}

static void sdc_frame(sdc_conn *sc, mock_conn *c, const uint8_t *p, size_t n) {
  sdc *d = sc->d;
  static const uint8_t e404[4] = {0x6c, 0xfe, 0xff, 0xff};
  if (n >= 8 && mtci_le64(p) == 0) {
    if (!sc->auth) {
      mock_auth_config ac;
      memset(&ac, 0, sizeof ac);
      ac.rsa_pem = mock_test_key_pem(0); /* = mock DC 1's key, which the client knows */
      ac.rsa_pem_len = strlen(ac.rsa_pem);
      ac.rnd = test_rnd;
      if (mock_auth_new(&sc->auth, &ac) != 0) return;
    }
    uint8_t out[1024];
    size_t ol = 0;
    if (mock_auth_feed_envelope(sc->auth, p, n, (double)wall_ms() / 1000.0, out, sizeof out, &ol) != 0) {
      sdc_send(sc, c, e404, 4);
      return;
    }
    sdc_send(sc, c, out, ol);
    mock_auth_result ar;
    if (mock_auth_done(sc->auth, &ar)) {
      mock_session_config mc;
      memset(&mc, 0, sizeof mc);
      memcpy(mc.auth_key, ar.auth_key, sizeof mc.auth_key);
      mc.salt = ar.server_salt;
      mc.require_init = 1;
      mc.handler = sdc_handler;
      mc.handler_ud = d;
      mc.rnd = test_rnd;
      mock_session_free(d->ms);
      d->ms = NULL;
      if (mock_session_new(&d->ms, &mc) == 0) d->handshakes++;
      mtci_zeroize(&mc, sizeof mc);
      mtci_zeroize(&ar, sizeof ar);
      mock_auth_free(sc->auth);
      sc->auth = NULL;
    }
    return;
  }
  if (!d->ms || mock_session_feed(d->ms, wall_ms(), p, n) != 0) {
    sdc_send(sc, c, e404, 4);
    return;
  }
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  for (int guard = 0; guard < 1000; guard++) {
    mtci_tl_writer_reset(&w);
    if (mock_session_pop(d->ms, wall_ms(), &w) != 1) break;
    sdc_send(sc, c, mtci_tl_writer_data(&w), w.len);
  }
  mtci_tl_writer_free(&w);
}

static void sdc_on_data(mock_conn *c, void *ud) {
  sdc_conn *sc = ud;
  size_t n = 0;
  const uint8_t *p0 = mock_conn_data(c, &n);
  if (!n) return;
  uint8_t *p = malloc(n);
  if (!p) return;
  memcpy(p, p0, n);
  if (!sc->have_codec) {
    mtci_codec_kind k;
    if (mtci_codec_detect(p, n, &k) != 1) {
      free(p);
      return;
    }
    mtci_codec_init(&sc->codec, k, MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG, test_rnd, NULL);
    sc->have_codec = 1;
  }
  mock_conn_consume(c, n);
  size_t off = 0;
  while (off < n) {
    size_t used = 0;
    mtci_frame fr;
    int r = mtci_codec_feed(&sc->codec, p + off, n - off, &used, &fr);
    if (r < 0) {
      mock_conn_close(c);
      break;
    }
    off += used;
    if (r == 0) break;
    if (fr.type == MTCI_FRAME_DATA) sdc_frame(sc, c, fr.data, fr.len);
  }
  free(p);
}

static void sdc_on_close(mock_conn *c, void *ud, int reason) {
  (void)c;
  (void)reason;
  sdc_conn *sc = ud;
  mtci_codec_free(&sc->codec);
  mock_auth_free(sc->auth);
  free(sc);
}

static const mock_conn_handler k_sdc_handler = {NULL, sdc_on_data, NULL, sdc_on_close};

static void sdc_accept(mock_loop *l, mock_conn *c, void *ud) {
  (void)l;
  sdc_conn *sc = calloc(1, sizeof *sc);
  if (!sc) {
    mock_conn_close(c);
    return;
  }
  sc->d = ud;
  sc->d->conns++;
  mock_conn_set_handler(c, &k_sdc_handler, sc);
}

static int sdc_start(sdc *d) {
  memset(d, 0, sizeof *d);
  if (mock_loop_new(&d->loop) != 0) return -1;
  if (mock_loop_listen(d->loop, 0, sdc_accept, d, &d->port) <= 0) return -1;
  return mock_loop_start_thread(d->loop);
}

static void sdc_stop(sdc *d) {
  if (!d->loop) return;
  mock_loop_stop_thread(d->loop);
  mock_loop_free(d->loop);
  mock_session_free(d->ms);
  d->loop = NULL;
}

static void sdc_script(sdc *d, const char *const *lines, int n) {
  mock_loop_lock(d->loop);
  for (int i = 0; i < n && i < 8; i++) snprintf(d->script[i], sizeof d->script[i], "%s", lines[i]);
  d->n_script = n;
  d->next = 0;
  mock_loop_unlock(d->loop);
}

/* ---- shared checks ----------------------------------------------------------------------------- */

/* sendCode on the main DC (2: PHONE_MIGRATE_5 follows) and signIn. */
static int login(harness *h) {
  res r;
  memset(&r, 0, sizeof r);
  body q = q_send_code();
  REQ(h_call(h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK);
  REQ(r.dc_id == 5);
  char hash[64];
  REQ(sent_code_hash(r.data, r.len, hash, sizeof hash) == 0);
  ctx_res_clear(&r);
  q = q_sign_in(hash);
  REQ(h_call(h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK && r.dc_id == 5);
  REQ(r.len >= 4 && mtci_le32(r.data) == MTC_TL_ID_auth_authorization);
  ctx_res_clear(&r);
  return 0;
}

/* Download the 1 MiB document in 4 parts: the first for the main DC
 * (FILE_MIGRATE_1 + authorization transfer), the rest to the DC it came from. */
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
  REQ(r[0].calls == 1 && r[0].dc_id == 1);
  REQ(ctx_check_part(&r[0], 0, (size_t)part) == 0);
  o.target = MTC_TARGET_DC;
  o.dc_id = r[0].dc_id;
  for (int i = 1; i < 4; i++) {
    body qi = q_get_file((int64_t)i * part, part);
    REQ(h_invoke(h, &o, &qi, &r[i], NULL) == 0);
  }
  for (int i = 1; i < 4; i++) {
    REQ(h_wait(h, pred_res, &r[i], WAIT_MS));
    REQ(r[i].calls == 1);
    REQ(ctx_check_part(&r[i], (int64_t)i * part, (size_t)part) == 0);
  }
  for (int i = 0; i < 4; i++) ctx_res_clear(&r[i]);
  return 0;
}

static void hex_of(const uint8_t *p, size_t n, char *out, int upper) {
  const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[p[i] >> 4];
    out[2 * i + 1] = d[p[i] & 15];
  }
  out[2 * n] = 0;
}

static void b64_of(const uint8_t *p, size_t n, char *out) {
  static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    out[o++] = t[v >> 18 & 63];
    out[o++] = t[v >> 12 & 63];
    out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? t[v & 63] : '=';
  }
  out[o] = 0;
}

/* No auth key from the state file appears in the log, in hex (any 8-byte
 * window, either case) or base64 (any 16-character window). Returns the
 * number of keys checked, or -1 on a leak. */
static int check_no_keys_in_log(const char *state_path, const char *log) {
  static mtci_state st;
  REQ(mtci_store_load(state_path, &st, NULL, 0) == 0);
  int keys = 0;
  for (int i = 0; i < st.n_dcs; i++) {
    if (!st.dcs[i].has_perm) continue;
    keys++;
    const uint8_t *k = st.dcs[i].perm_key;
    char hx[2 * 8 + 1], b64[400];
    for (int off = 0; off + 8 <= MTCI_STATE_KEY_LEN; off++) {
      for (int up = 0; up < 2; up++) {
        hex_of(k + off, 8, hx, up);
        if (strstr(log, hx)) {
          fprintf(stderr, "  key bytes of dc %d in the log (hex at %d)\n", st.dcs[i].dc_id, off);
          mtci_state_clear(&st);
          return -1;
        }
      }
    }
    b64_of(k, MTCI_STATE_KEY_LEN, b64);
    for (size_t off = 0; off + 16 <= strlen(b64); off += 4) {
      char w[17];
      memcpy(w, b64 + off, 16);
      w[16] = 0;
      if (strstr(log, w)) {
        fprintf(stderr, "  key bytes of dc %d in the log (base64)\n", st.dcs[i].dc_id);
        mtci_state_clear(&st);
        return -1;
      }
    }
  }
  mtci_state_clear(&st);
  return keys;
}

/* ---- login flow with the connection budget, then restart ----------------------------------------- */

static int login_flow(int mode) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.no_auto_config = 0; /* the real thing: help.getConfig once on the first main DC */
  harness h;
  int64_t t0 = mono_ms();
  REQ(h_start(&h, mode, &s, k_modes[mode]) == 0);
  REQ(login(&h) == 0);
  REQ(mtc_context_main_dc(h.ctx) == 5);
  REQ(download(&h, 1) == 0);
  int64_t t1 = mono_ms();
  ctr_req c;
  REQ(h_counters(&h, &c) == 0);
  long long tcp = mock_total(&e, "tcp_accepted"), hs = mock_total(&e, "handshakes_perm");
  fprintf(stderr, "    [%s] first login + 1 MiB download: %lld ms, %llu connects (mock accepted %lld), "
                  "%llu perm keys (mock %lld), %llu HTTP requests\n",
          k_modes[mode], (long long)(t1 - t0), (unsigned long long)c.c.connects_started, tcp,
          (unsigned long long)c.c.handshakes_perm, hs, (unsigned long long)c.c.http_requests);
  if (g_verbose && c.json) fprintf(stderr, "    counters: %s\n", c.json);
  REQ(tcp == 3 && hs == 3);
  REQ(c.c.connects_started == 3 && c.c.handshakes_perm == 3 && c.c.connects_failed == 0);
  REQ(c.c.http_requests == 0 && c.c.dns_queries == 0);
  REQ(dc_ctr(&c.c, 2)->connects_by_reason[MTC_REASON_MAIN] == 1);
  REQ(dc_ctr(&c.c, 5)->connects_by_reason[MTC_REASON_MIGRATE] == 1);
  REQ(dc_ctr(&c.c, 1)->connects_by_reason[MTC_REASON_MIGRATE] == 1);
  REQ(dc_ctr(&c.c, 1)->auth_imports == 1);
  REQ(c.json && strstr(c.json, "\"http_requests\":0"));
  free(c.json);
  REQ(ctx_mock_method(e.cl, 5, "auth.exportAuthorization") == 1);
  REQ(ctx_mock_method(e.cl, 1, "auth.importAuthorization") == 1);
  REQ(ctx_mock_method(e.cl, 2, "help.getConfig") == 1);
  REQ(count_events(&h, MTC_EVENT_AUTH_KEY_CREATED, 0, 0) == 3);
  REQ(count_events(&h, MTC_EVENT_MAIN_DC_CHANGED, 5, 0) == 1);
  REQ(count_events(&h, MTC_EVENT_STATE_CHANGED, 0, 0) >= 1);
  if (mode == MODE_HOST) {
    /* idle with three open connections: the timer must not spin */
    int fires = h.host.timer_fires;
    h_idle(&h, 1500);
    fprintf(stderr, "    [host] idle 1.5 s: %d timer callbacks\n", h.host.timer_fires - fires);
    REQ(h.host.timer_fires - fires <= 5);
  }
  h_stop(&h);
  /* the saved keys never reached a log line */
  LOCK();
  int keys = check_no_keys_in_log(e.state_path, h.log ? h.log : "");
  UNLOCK();
  REQ(keys == 3);
  REQ(h.log_len > 0);
  free(h.log);

  /* restart: no handshake, no second authorization transfer */
  harness h2;
  REQ(h_start(&h2, mode, &s, k_modes[mode]) == 0);
  REQ(mtc_context_main_dc(h2.ctx) == 5);
  REQ(mtc_context_is_authorized(h2.ctx, 5) == 1 && mtc_context_is_authorized(h2.ctx, 1) == 1);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_get_self();
  REQ(h_call(&h2, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == 5);
  ctx_res_clear(&r);
  REQ(download(&h2, 0) == 0);
  REQ(h_counters(&h2, &c) == 0);
  free(c.json);
  fprintf(stderr, "    [%s] restart with state: %llu handshakes, %llu connects\n", k_modes[mode],
          (unsigned long long)c.c.handshakes_perm, (unsigned long long)c.c.connects_started);
  REQ(c.c.handshakes_perm == 0 && c.c.connects_started == 2);
  REQ(mock_total(&e, "handshakes_perm") == 3);
  REQ(ctx_mock_method(e.cl, 1, "auth.importAuthorization") == 1);
  REQ(ctx_mock_method(e.cl, 2, "help.getConfig") == 1); /* the saved config is still fresh */
  h_free(&h2);
  ctx_env_stop(&e);
  return 0;
}

TEST(login_run) { CHECK(login_flow(MODE_RUN) == 0); }
TEST(login_host) { CHECK(login_flow(MODE_HOST) == 0); }
TEST(login_runner) { CHECK(login_flow(MODE_RUNNER) == 0); }

/* ---- migrate variants and FLOOD_WAIT (script DC as DC 2) ----------------------------------------- */

typedef struct script_env {
  env e;
  sdc d;
  mtc_settings s;
} script_env;

static int script_start(script_env *x) {
  REQ(env_start(&x->e, NULL) == 0);
  REQ(sdc_start(&x->d) == 0);
  x->e.seeds[1].port = x->d.port; /* DC 2 is the script DC */
  env_settings(&x->e, &x->s);
  x->s.obfuscate = 0; /* the script DC reads plain framing */
  return 0;
}

static void script_stop(script_env *x) {
  sdc_stop(&x->d);
  ctx_env_stop(&x->e);
}

static void do_set_main2(mtc_context *ctx, void *ud) {
  (void)ud;
  (void)mtc_context_set_main_dc(ctx, 2);
}

static int migrate_case(harness *h, script_env *x, const char *err, int want_dc, int want_main) {
  const char *lines[1] = {err};
  sdc_script(&x->d, lines, 1);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(h, NULL, &q, &r, WAIT_MS) == 0);
  h_idle(h, 50);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK);
  REQ(r.dc_id == want_dc);
  REQ(mtc_context_main_dc(h->ctx) == want_main);
  ctx_res_clear(&r);
  REQ(h_exec(h, do_set_main2, NULL) == 0);
  return 0;
}

static int migrate_variants(int mode) {
  script_env x;
  REQ(script_start(&x) == 0);
  harness h;
  REQ(h_start(&h, mode, &x.s, "migrate") == 0);
  REQ(migrate_case(&h, &x, "303 USER_MIGRATE_3", 3, 3) == 0);
  REQ(count_events(&h, MTC_EVENT_MAIN_DC_CHANGED, 3, 0) == 1);
  REQ(migrate_case(&h, &x, "303 NETWORK_MIGRATE_4", 4, 4) == 0);
  REQ(migrate_case(&h, &x, "303 STATS_MIGRATE_1", 1, 2) == 0);
  REQ(migrate_case(&h, &x, "303 PHONE_MIGRATE_3", 3, 3) == 0);
  /* the app asked for the errors */
  const char *lines[1] = {"303 USER_MIGRATE_4"};
  sdc_script(&x.d, lines, 1);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.flags = MTC_INVOKE_NO_MIGRATE;
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, &o, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_RPC_ERROR && r.code == 303 && strcmp(r.msg, "USER_MIGRATE_4") == 0);
  REQ(mtc_context_main_dc(h.ctx) == 2);
  ctx_res_clear(&r);
  /* a migration loop ends with MTC_ERR_MIGRATE_LOOP, not a storm */
  const char *loop[8] = {"303 STATS_MIGRATE_2", "303 STATS_MIGRATE_2", "303 STATS_MIGRATE_2",
                         "303 STATS_MIGRATE_2", "303 STATS_MIGRATE_2", "303 STATS_MIGRATE_2",
                         "303 STATS_MIGRATE_2", "303 STATS_MIGRATE_2"};
  sdc_script(&x.d, loop, 8);
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_MIGRATE_LOOP);
  ctx_res_clear(&r);
  REQ(x.d.handshakes == 1);
  h_free(&h);
  script_stop(&x);
  return 0;
}

TEST(migrate_variants) { CHECK(migrate_variants(MODE_RUN) == 0); }

static int flood_wait(int mode) {
  script_env x;
  REQ(script_start(&x) == 0);
  x.s.flood_wait_auto_s = 2;
  harness h;
  REQ(h_start(&h, mode, &x.s, "flood") == 0);
  /* below the threshold: waited out and resent, one answer */
  const char *l1[2] = {"420 FLOOD_WAIT_1", ""};
  sdc_script(&x.d, l1, 2);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  int64_t t0 = mono_ms();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  int64_t dt = r.at - t0;
  h_idle(&h, 100);
  fprintf(stderr, "    FLOOD_WAIT_1 waited out: answer after %lld ms\n", (long long)dt);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK && r.dc_id == 2);
  REQ(dt >= 1000 && dt < 4000);
  ctx_res_clear(&r);
  /* above the threshold: the app gets it at once */
  const char *l2[1] = {"420 FLOOD_WAIT_30"};
  sdc_script(&x.d, l2, 1);
  t0 = mono_ms();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  dt = r.at - t0;
  REQ(r.calls == 1 && r.kind == MTC_RESULT_RPC_ERROR && r.code == 420);
  REQ(strcmp(r.msg, "FLOOD_WAIT_30") == 0 && dt < 1000);
  ctx_res_clear(&r);
  /* MTC_INVOKE_NO_FLOOD_WAIT: delivered even when short */
  const char *l3[1] = {"420 FLOOD_WAIT_1"};
  sdc_script(&x.d, l3, 1);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.flags = MTC_INVOKE_NO_FLOOD_WAIT;
  REQ(h_call(&h, &o, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_RPC_ERROR && strcmp(r.msg, "FLOOD_WAIT_1") == 0);
  ctx_res_clear(&r);
  ctr_req c;
  REQ(h_counters(&h, &c) == 0);
  REQ(dc_ctr(&c.c, 2)->flood_waits == 1);
  free(c.json);
  h_free(&h);
  script_stop(&x);
  return 0;
}

TEST(flood_wait) { CHECK(flood_wait(MODE_RUN) == 0); }
TEST(flood_wait_host) { CHECK(flood_wait(MODE_HOST) == 0); }

/* ---- transport errors ------------------------------------------------------------------------------ */

static int key_404(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "404") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  REQ(ctx_set_fault(e.cl, 2, "transport_404_once=1") == 0);
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  h_idle(&h, 100);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK && r.dc_id == 2);
  ctx_res_clear(&r);
  REQ(count_events(&h, MTC_EVENT_AUTH_KEY_DROPPED, 2, 0) == 1);
  REQ(count_events(&h, MTC_EVENT_AUTH_KEY_CREATED, 2, 0) == 2);
  REQ(count_events(&h, MTC_EVENT_SESSION_RECREATED, 2, 0) == 1);
  mock_dc_counters mc;
  REQ(mock_dc_get_counters(e.cl, 2, &mc) == 0);
  REQ(mc.handshakes_perm == 2 && mc.transport_404 == 1);
  h_free(&h);
  /* the new key was saved: a restart needs no handshake */
  REQ(h_start(&h, MODE_RUN, &s, "404b") == 0);
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  REQ(mock_dc_get_counters(e.cl, 2, &mc) == 0);
  REQ(mc.handshakes_perm == 2);
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(key_404) { CHECK(key_404() == 0); }

/* Times of CONN_STATE events with this state for dc. */
static size_t event_times(harness *h, int dc, int state, int64_t *out, size_t cap) {
  size_t n = 0;
  LOCK();
  for (size_t i = 0; i < h->n_evs && n < cap; i++)
    if (h->evs[i].type == MTC_EVENT_CONN_STATE && h->evs[i].dc_id == dc && h->evs[i].state == state)
      out[n++] = h->evs[i].at;
  UNLOCK();
  return n;
}

static int flood_429(void) {
  mock_dc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.faults[1].flood_connects = 1; /* DC 2: a 2nd connect within 2 s gets -429 */
  cfg.faults[1].flood_window_ms = 2000;
  env e;
  REQ(env_start(&e, &cfg) == 0);
  mock_socks *rl = NULL;
  REQ(mock_socks_new(mock_dc_port(e.cl, 2), &rl) == 0);
  e.seeds[1].port = mock_socks_port(rl);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "429") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  /* reset the working connection: the replacement gets -429 */
  mock_socks_arm(rl, MOCK_SOCKS_FAULT_RST, 0);
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  int64_t t[8];
  size_t n = event_times(&h, 2, MTC_CONN_CONNECTING, t, 8);
  REQ(n == 3); /* first, replacement (-429), the one after the back-off */
  int64_t gap = t[2] - t[1];
  fprintf(stderr, "    -429: next connect %lld ms after the flood answer (normal first retry 1000 ms)\n",
          (long long)gap);
  REQ(gap >= 2900);
  mock_dc_counters mc;
  REQ(mock_dc_get_counters(e.cl, 2, &mc) == 0);
  REQ(mc.transport_429 == 1);
  ctr_req c;
  REQ(h_counters(&h, &c) == 0);
  REQ(c.json && strstr(c.json, "(-309)"));
  free(c.json);
  h_free(&h);
  mock_socks_free(rl);
  ctx_env_stop(&e);
  return 0;
}

TEST(flood_429) { CHECK(flood_429() == 0); }

static int backoff_refused(void) {
  mock_dc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.faults[2].refuse_seed = 1; /* DC 3 refuses connections */
  env e;
  REQ(env_start(&e, &cfg) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.max_connect_attempts = 3;
  harness h;
  REQ(h_start(&h, MODE_HOST, &s, "refused") == 0);
  res r;
  memset(&r, 0, sizeof r);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_DC;
  o.dc_id = 3;
  body q = q_nearest();
  REQ(h_call(&h, &o, &q, &r, WAIT_MS) == 0);
  h_idle(&h, 300);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_CONNECT);
  ctx_res_clear(&r);
  int64_t t[8];
  size_t n = event_times(&h, 3, MTC_CONN_CONNECTING, t, 8);
  REQ(n == 3);
  fprintf(stderr, "    refused: retries after %lld and %lld ms, then FAILED\n", (long long)(t[1] - t[0]),
          (long long)(t[2] - t[1]));
  REQ(t[1] - t[0] >= 950 && t[1] - t[0] < 1500);
  REQ(t[2] - t[1] >= 1950 && t[2] - t[1] < 2600);
  REQ(count_events(&h, MTC_EVENT_CONN_STATE, 3, MTC_CONN_FAILED) == 1);
  /* nothing more happens until new work arrives */
  h_idle(&h, 1500);
  REQ(event_times(&h, 3, MTC_CONN_CONNECTING, t, 8) == 3);
  ctr_req c;
  REQ(h_counters(&h, &c) == 0);
  REQ(dc_ctr(&c.c, 3)->connects_failed == 3 && dc_ctr(&c.c, 3)->connects_started == 3);
  free(c.json);
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(backoff_refused) { CHECK(backoff_refused() == 0); }

/* ---- liveness with the stall switch ------------------------------------------------------------------ */

typedef struct live_job {
  int pending; /* 1: a request waits; 0: idle */
  int64_t measured, bound;
  int rc;
} live_job;

static int pred_reconnecting_dead(harness *h, void *arg) {
  (void)arg;
  for (size_t i = 0; i < h->n_evs; i++)
    if (h->evs[i].type == MTC_EVENT_CONN_STATE && h->evs[i].state == MTC_CONN_RECONNECTING &&
        h->evs[i].reason == MTC_ERR_SESSION_DEAD)
      return 1;
  return 0;
}

static int live_run(live_job *j) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  if (!j->pending) s.ping_interval_ms = 1000;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, j->pending ? "stall+req" : "stall idle") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  h_idle(&h, 200);
  REQ(ctx_set_fault(e.cl, 2, "stall=1") == 0);
  int64_t t0 = mono_ms();
  if (j->pending) REQ(h_invoke(&h, NULL, &q, &r, NULL) == 0);
  REQ(h_wait(&h, pred_reconnecting_dead, NULL, 25000));
  int64_t t1 = 0;
  LOCK();
  for (size_t i = 0; i < h.n_evs; i++)
    if (h.evs[i].type == MTC_EVENT_CONN_STATE && h.evs[i].state == MTC_CONN_RECONNECTING && !t1)
      t1 = h.evs[i].at;
  UNLOCK();
  j->measured = t1 - t0;
  j->bound = j->pending ? 10000 : 1000 + 15000;
  /* the replacement connection starts at once */
  int64_t tc[8];
  size_t nc = event_times(&h, 2, MTC_CONN_CONNECTING, tc, 8);
  REQ(nc >= 2 && tc[1] - t1 < 500);
  REQ(ctx_set_fault(e.cl, 2, "stall=0") == 0);
  if (j->pending) {
    REQ(h_wait(&h, pred_res, &r, WAIT_MS));
    h_idle(&h, 200);
    REQ(r.calls == 1 && r.kind == MTC_RESULT_OK);
    ctx_res_clear(&r);
  }
  h_free(&h);
  ctx_env_stop(&e);
  REQ(j->measured <= j->bound);
  return 0;
}

static void *live_thread(void *arg) {
  live_job *j = arg;
  j->rc = live_run(j);
  return NULL;
}

TEST(liveness_stall) {
  live_job a = {1, 0, 0, -1}, b = {0, 0, 0, -1};
  pthread_t ta, tb;
  CHECK(pthread_create(&ta, NULL, live_thread, &a) == 0);
  CHECK(pthread_create(&tb, NULL, live_thread, &b) == 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  fprintf(stderr, "    stall with a request pending: dead and replaced after %lld ms (bound %lld)\n",
          (long long)a.measured, (long long)a.bound);
  fprintf(stderr, "    stall while idle (ping every 1 s): dead and replaced after %lld ms (bound %lld)\n",
          (long long)b.measured, (long long)b.bound);
  CHECK(a.rc == 0);
  CHECK(b.rc == 0);
}

/* ---- reset / truncated / corrupted byte / salt on every framing ---------------------------------------- */

static int framing_faults(mtc_transport tr) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mock_socks *rl = NULL;
  REQ(mock_socks_new(mock_dc_port(e.cl, 2), &rl) == 0);
  e.seeds[1].port = mock_socks_port(rl);
  mtc_settings s;
  env_settings(&e, &s);
  s.transport = tr;
  s.obfuscate = tr != MTC_TRANSPORT_FULL;
  harness h;
  char tag[16];
  snprintf(tag, sizeof tag, "framing %d", (int)tr);
  REQ(h_start(&h, MODE_RUN, &s, tag) == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  int flip_err = tr == MTC_TRANSPORT_FULL ? MTC_ERR_FRAME_CRC : MTC_ERR_SESSION_MSG_KEY;
  const struct {
    mock_socks_fault fault;
    size_t arg;
    const char *name;
    int err1, err2; /* the reconnect reason(s) expected */
  } faults[] = {{MOCK_SOCKS_FAULT_RST, 0, "reset", MTC_ERR_IO_RESET, MTC_ERR_TRANSPORT_CLOSED},
                {MOCK_SOCKS_FAULT_TRUNCATE, 20, "truncated", MTC_ERR_FRAME_TRUNCATED,
                 MTC_ERR_FRAME_TRUNCATED},
                {MOCK_SOCKS_FAULT_FLIP, 30, "corrupted byte", flip_err, flip_err}};
  for (size_t i = 0; i < 3; i++) {
    h_idle(&h, 150);
    int acc0 = 0;
    int before = relay_get(rl, &acc0);
    size_t rec0 = count_events(&h, MTC_EVENT_CONN_STATE, 2, MTC_CONN_RECONNECTING);
    mock_socks_arm(rl, faults[i].fault, faults[i].arg);
    REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
    h_idle(&h, 200);
    int acc = 0;
    int fired = relay_get(rl, &acc) - before;
    int reason = 0;
    LOCK();
    for (size_t k = 0; k < h.n_evs; k++)
      if (h.evs[k].type == MTC_EVENT_CONN_STATE && h.evs[k].state == MTC_CONN_RECONNECTING)
        reason = h.evs[k].reason;
    UNLOCK();
    size_t rec = count_events(&h, MTC_EVENT_CONN_STATE, 2, MTC_CONN_RECONNECTING) - rec0;
    if (r.calls != 1 || r.kind != MTC_RESULT_OK || fired != 1 || rec != 1 || acc != acc0 + 1 ||
        (reason != faults[i].err1 && reason != faults[i].err2))
      fprintf(stderr, "  transport %d, %s: calls %d kind %d fired %d reconnects %zu reason %d\n",
              (int)tr, faults[i].name, r.calls, (int)r.kind, fired, rec, reason);
    REQ(r.calls == 1 && r.kind == MTC_RESULT_OK && fired == 1);
    REQ(rec == 1 && acc == acc0 + 1);
    REQ(reason == faults[i].err1 || reason == faults[i].err2);
    ctx_res_clear(&r);
  }
  /* the server closes on a frame (mock switch close_after_frames): answered once */
  h_idle(&h, 150);
  REQ(ctx_set_fault(e.cl, 2, "close_after_frames=2") == 0);
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  REQ(ctx_set_fault(e.cl, 2, "close_after_frames=0") == 0);
  h_idle(&h, 300);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  /* bad_server_salt twice (mock switch): resent, answered once, same connection */
  int acc0 = 0;
  (void)relay_get(rl, &acc0);
  REQ(ctx_set_fault(e.cl, 2, "wrong_salt=2") == 0);
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  h_idle(&h, 200);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  int acc1 = 0;
  (void)relay_get(rl, &acc1);
  REQ(acc1 == acc0);
  REQ(count_events(&h, MTC_EVENT_AUTH_KEY_CREATED, 2, 0) == 1);
  /* an answer the server never sends ends with the request's own timeout */
  REQ(ctx_set_fault(e.cl, 2, "drop_method=help.getNearestDc") == 0);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = 700;
  REQ(h_call(&h, &o, &q, &r, WAIT_MS) == 0);
  h_idle(&h, 200);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_ERROR && r.error == MTC_ERR_TIMEOUT);
  ctx_res_clear(&r);
  h_free(&h);
  mock_socks_free(rl);
  ctx_env_stop(&e);
  return 0;
}

TEST(faults_abridged) { CHECK(framing_faults(MTC_TRANSPORT_ABRIDGED) == 0); }
TEST(faults_intermediate) { CHECK(framing_faults(MTC_TRANSPORT_INTERMEDIATE) == 0); }
TEST(faults_padded) { CHECK(framing_faults(MTC_TRANSPORT_PADDED) == 0); }
TEST(faults_full) { CHECK(framing_faults(MTC_TRANSPORT_FULL) == 0); }

/* ---- new address sets never reset a healthy connection; -444 refreshes ---------------------------------- */

static int pred_config(harness *h, void *arg) {
  (void)arg;
  for (size_t i = 0; i < h->n_evs; i++)
    if (h->evs[i].type == MTC_EVENT_CONFIG_UPDATED) return 1;
  return 0;
}

static int config_keeps_conn(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mock_socks *rl = NULL;
  REQ(mock_socks_new(mock_dc_port(e.cl, 2), &rl) == 0);
  e.seeds[1].port = mock_socks_port(rl); /* DC 2 reached through the relay: not in getConfig's list */
  mtc_settings s;
  env_settings(&e, &s);
  s.no_auto_config = 0;
  s.obfuscate = 0; /* so the relay can inject a plain -444 frame */
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "config") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  REQ(h_wait(&h, pred_config, NULL, WAIT_MS));
  /* DC 2's address set changed under the connection: it stays */
  for (int i = 0; i < 3; i++) {
    REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
    ctx_res_clear(&r);
  }
  int acc = 0;
  (void)relay_get(rl, &acc);
  REQ(acc == 1);
  REQ(mock_total(&e, "tcp_accepted") == 1);
  REQ(count_events(&h, MTC_EVENT_CONN_STATE, 2, MTC_CONN_CONNECTING) == 1);
  /* -444 on it: the endpoint is marked failing and the config asked again */
  uint64_t cfg_calls = ctx_mock_method(e.cl, 2, "help.getConfig");
  mock_socks_arm(rl, MOCK_SOCKS_FAULT_INJECT_444, 0);
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0);
  h_idle(&h, 300);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK && r.dc_id == 2);
  ctx_res_clear(&r);
  REQ(ctx_mock_method(e.cl, 2, "help.getConfig") == cfg_calls + 1);
  (void)relay_get(rl, &acc);
  REQ(acc == 1); /* the reconnect went to the healthy config address, not the failing relay */
  REQ(mock_total(&e, "tcp_accepted") == 2);
  h_free(&h);
  mock_socks_free(rl);
  ctx_env_stop(&e);
  return 0;
}

TEST(config_keeps_connection) { CHECK(config_keeps_conn() == 0); }

/* Config churn: three configs list DCs 100..107, then 200..207, then
 * 300..307 besides the seeds 1..5 (the mock's config_extra switch), each
 * asked after a -444. The 16-entry DC table takes each new config's DCs in
 * place of DCs that only older configs named and nothing uses, and keeps
 * the seeds, DC 100 (it has a key), DC 101 (a request waits for its key:
 * mock DC 3 stalls) and DC 102 while it is the main DC. */
typedef struct mock_count {
  env *e;
  int dc;
  const char *name;
  uint64_t want;
} mock_count;

static int pred_mock_method(harness *h, void *arg) {
  (void)h;
  const mock_count *m = arg;
  return ctx_mock_method(m->e->cl, m->dc, m->name) >= m->want;
}

static void do_set_main(mtc_context *ctx, void *ud) { (void)mtc_context_set_main_dc(ctx, *(int *)ud); }

static int pred_configs(harness *h, void *arg) {
  size_t n = 0;
  for (size_t i = 0; i < h->n_evs; i++) n += h->evs[i].type == MTC_EVENT_CONFIG_UPDATED;
  return n >= *(size_t *)arg;
}

/* How many of the ids first .. first + n - 1 the context's DC table holds. */
static int table_count(const mtc_counters *c, int first, int n) {
  int k = 0;
  for (size_t i = 0; i < c->n_dcs; i++) k += c->dcs[i].dc_id >= first && c->dcs[i].dc_id < first + n;
  return k;
}

static int churn_table(harness *h, size_t *n_dcs, int first, int n) {
  ctr_req c;
  REQ(h_counters(h, &c) == 0);
  free(c.json);
  *n_dcs = c.c.n_dcs;
  return table_count(&c.c, first, n);
}

static int config_churn(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  char spec[128];
  snprintf(spec, sizeof spec, "config_extra_first=100,config_extra_count=8,config_extra_port=%u",
           (unsigned)mock_dc_port(e.cl, 3));
  REQ(ctx_set_fault(e.cl, 2, spec) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.no_auto_config = 0;
  s.connect_timeout_ms = 60000; /* DC 101's key creation waits on the stalled DC */
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "churn") == 0);
  res r[2];
  memset(r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r[0], WAIT_MS) == 0 && r[0].kind == MTC_RESULT_OK);
  ctx_res_clear(&r[0]);
  size_t want = 1, n = 0;
  REQ(h_wait(&h, pred_configs, &want, WAIT_MS));
  REQ(churn_table(&h, &n, 100, 8) == 8 && n == 13);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_DC;
  o.dc_id = 100;
  REQ(h_call(&h, &o, &q, &r[0], WAIT_MS) == 0 && r[0].kind == MTC_RESULT_OK && r[0].dc_id == 100);
  ctx_res_clear(&r[0]);
  REQ(ctx_set_fault(e.cl, 3, "stall=1") == 0);
  o.dc_id = 101;
  REQ(h_invoke(&h, &o, &q, &r[1], NULL) == 0);
  /* round 1: the main DC moves to DC 102 when DC 2 is back after the -444,
   * with help.getConfig already in DC 2's session */
  REQ(ctx_set_fault(e.cl, 2, "config_extra_first=200,transport_444_once=1") == 0);
  LOCK();
  h.move_main_on = 2;
  h.move_main_to = 102;
  UNLOCK();
  REQ(h_invoke(&h, NULL, &q, &r[0], NULL) == 0); /* its frame draws the -444 */
  want = 2;
  REQ(h_wait(&h, pred_configs, &want, WAIT_MS));
  REQ(h_wait(&h, pred_res, &r[0], WAIT_MS) && r[0].kind == MTC_RESULT_OK && r[0].dc_id == 2);
  ctx_res_clear(&r[0]);
  REQ(mtc_context_main_dc(h.ctx) == 102 && ctx_mock_method(e.cl, 2, "help.getConfig") == 2);
  REQ(churn_table(&h, &n, 200, 8) == 8 && n == 16);
  REQ(churn_table(&h, &n, 1, 5) == 5 && churn_table(&h, &n, 100, 3) == 3);
  REQ(churn_table(&h, &n, 103, 5) == 0);
  /* round 2: DC 102 is no longer the main DC; one DC of round 1 is left */
  int dc = 2;
  REQ(h_exec(&h, do_set_main, &dc) == 0);
  REQ(ctx_set_fault(e.cl, 2, "config_extra_first=300,transport_444_once=1") == 0);
  REQ(h_call(&h, NULL, &q, &r[0], WAIT_MS) == 0 && r[0].kind == MTC_RESULT_OK);
  ctx_res_clear(&r[0]);
  want = 3;
  REQ(h_wait(&h, pred_configs, &want, WAIT_MS));
  REQ(ctx_mock_method(e.cl, 2, "help.getConfig") == 3);
  REQ(churn_table(&h, &n, 300, 8) == 8 && n == 16);
  REQ(churn_table(&h, &n, 1, 5) == 5 && churn_table(&h, &n, 100, 2) == 2);
  REQ(churn_table(&h, &n, 102, 6) == 0 && churn_table(&h, &n, 200, 8) == 1);
  REQ(r[1].calls == 0);
  REQ(mtc_context_is_authorized(h.ctx, 100) == 0);
  h_free(&h);
  REQ(r[1].calls == 1 && r[1].kind == MTC_RESULT_CANCELLED);
  ctx_res_clear(&r[1]);
  ctx_env_stop(&e);
  return 0;
}

TEST(config_churn) { CHECK(config_churn() == 0); }

/* ---- cancel, free with pending requests ------------------------------------------------------------------ */

typedef struct cancel_probe {
  harness *h;
  res r;
  int invoke_rc;
} cancel_probe;

static void cb_invoke_again(void *ud, const mtc_result *r) {
  cancel_probe *p = ud;
  res_cb(&p->r, r);
  /* from inside a CANCELLED callback during free: refused */
  body q = q_nearest();
  res dummy;
  memset(&dummy, 0, sizeof dummy);
  p->invoke_rc = mtc_invoke(p->h->ctx, NULL, q.b, q.n, res_cb, &dummy, NULL);
}

typedef struct cancel_call {
  uint64_t id;
  int rc;
  int calls_before, calls_after;
  res *r;
} cancel_call;

static void do_cancel(mtc_context *ctx, void *ud) {
  cancel_call *c = ud;
  LOCK();
  c->calls_before = c->r->calls;
  UNLOCK();
  c->rc = mtc_cancel(ctx, c->id);
  LOCK();
  c->calls_after = c->r->calls;
  UNLOCK();
}

/* Runner: submissions from another thread, free after stop. */
typedef struct runner_inv {
  cancel_probe *p;
  const mtc_invoke_options *o;
  const body *q;
  int rc;
} runner_inv;

static void do_invoke_probe(mtc_context *ctx, void *ud) {
  runner_inv *a = ud;
  a->rc = mtc_invoke(ctx, a->o, a->q->b, a->q->n, cb_invoke_again, a->p, NULL);
}

static int cancel_and_free(int mode) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  REQ(h_start(&h, mode, &s, "cancel") == 0);
  res r;
  memset(&r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
  ctx_res_clear(&r);
  REQ(ctx_set_fault(e.cl, 2, "drop_method=help.getNearestDc") == 0);
  /* cancel: the callback runs before mtc_cancel returns, exactly once */
  uint64_t id = 0;
  REQ(h_invoke(&h, NULL, &q, &r, &id) == 0 && id != 0);
  h_idle(&h, 200);
  cancel_call cc = {id, -1, -1, -1, &r};
  REQ(h_exec(&h, do_cancel, &cc) == 0);
  REQ(cc.rc == 0 && cc.calls_before == 0 && cc.calls_after == 1);
  REQ(r.kind == MTC_RESULT_CANCELLED && r.error == MTC_ERR_CANCELLED);
  cc.calls_before = cc.calls_after = -1;
  REQ(h_exec(&h, do_cancel, &cc) == 0);
  REQ(cc.rc == MTC_ERR_REQUEST_UNKNOWN && r.calls == 1);
  h_idle(&h, 300);
  REQ(r.calls == 1);
  ctx_res_clear(&r);
  /* free with requests pending: every callback gets CANCELLED once, and
   * mtc_invoke from inside those callbacks is refused */
  REQ(ctx_set_fault(e.cl, 3, "drop_method=help.getNearestDc") == 0);
  cancel_probe p[3];
  memset(p, 0, sizeof p);
  mtc_invoke_options o3;
  memset(&o3, 0, sizeof o3);
  o3.target = MTC_TARGET_DC;
  o3.dc_id = 3;
  for (int i = 0; i < 3; i++) {
    p[i].h = &h;
    p[i].invoke_rc = 1;
    runner_inv a = {&p[i], i == 2 ? &o3 : NULL, &q, -1};
    REQ(h_exec(&h, do_invoke_probe, &a) == 0 && a.rc == 0);
  }
  h_idle(&h, 300);
  LOCK();
  int pending = p[0].r.calls + p[1].r.calls + p[2].r.calls;
  UNLOCK();
  REQ(pending == 0);
  h_stop(&h);
  for (int i = 0; i < 3; i++) {
    REQ(p[i].r.calls == 1 && p[i].r.kind == MTC_RESULT_CANCELLED);
    REQ(p[i].invoke_rc == MTC_ERR_CLOSED);
    ctx_res_clear(&p[i].r);
  }
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(cancel_and_free_run) { CHECK(cancel_and_free(MODE_RUN) == 0); }
TEST(cancel_and_free_host) { CHECK(cancel_and_free(MODE_HOST) == 0); }

static int runner_free_pending(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  REQ(ctx_set_fault(e.cl, 2, "drop_method=help.getNearestDc") == 0);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  REQ(h_start(&h, MODE_RUNNER, &s, "runner") == 0);
  body q = q_nearest();
  cancel_probe p[2];
  memset(p, 0, sizeof p);
  for (int i = 0; i < 2; i++) {
    p[i].h = &h;
    runner_inv a = {&p[i], NULL, &q, -1};
    REQ(h_exec(&h, do_invoke_probe, &a) == 0 && a.rc == 0);
  }
  sleep_ms(300);
  REQ(mtc_runner_stop(h.runner) == 0);
  h.runner = NULL;
  LOCK();
  int pending = p[0].r.calls + p[1].r.calls;
  UNLOCK();
  REQ(pending == 0);
  mtc_context_free(h.ctx);
  h.ctx = NULL;
  for (int i = 0; i < 2; i++) {
    REQ(p[i].r.calls == 1 && p[i].r.kind == MTC_RESULT_CANCELLED && p[i].invoke_rc == MTC_ERR_CLOSED);
    ctx_res_clear(&p[i].r);
  }
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(runner_free_pending) { CHECK(runner_free_pending() == 0); }

/* mtc_context_free from inside a result callback: deferred to the end of
 * the outermost call; the other pending request is cancelled once. */
typedef struct free_probe {
  mtc_context **ctx;
  res r;
} free_probe;

static void cb_free_ctx(void *ud, const mtc_result *r) {
  free_probe *p = ud;
  res_cb(&p->r, r);
  mtc_context_free(*p->ctx);
  /* still usable until this callback returns: mtc_invoke is refused */
  body q = q_nearest();
  res dummy;
  memset(&dummy, 0, sizeof dummy);
  if (mtc_invoke(*p->ctx, NULL, q.b, q.n, res_cb, &dummy, NULL) != MTC_ERR_CLOSED) p->r.calls += 100;
}

static int free_from_callback(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  REQ(ctx_set_fault(e.cl, 3, "drop_method=help.getNearestDc") == 0);
  mtc_settings s;
  env_settings(&e, &s);
  mtc_context *ctx = NULL;
  REQ(mtc_context_new(&ctx, &s, NULL, NULL) == 0);
  body q = q_nearest();
  res other;
  memset(&other, 0, sizeof other);
  mtc_invoke_options o3;
  memset(&o3, 0, sizeof o3);
  o3.target = MTC_TARGET_DC;
  o3.dc_id = 3;
  REQ(mtc_invoke(ctx, &o3, q.b, q.n, res_cb, &other, NULL) == 0);
  free_probe p;
  memset(&p, 0, sizeof p);
  p.ctx = &ctx;
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, cb_free_ctx, &p, NULL) == 0);
  for (int64_t end = mono_ms() + WAIT_MS; p.r.calls == 0 && mono_ms() < end;)
    (void)mtc_context_run(ctx, 20); /* the context is gone once the callback ran */
  REQ(p.r.calls == 1 && p.r.kind == MTC_RESULT_OK);
  REQ(other.calls == 1 && other.kind == MTC_RESULT_CANCELLED);
  ctx_res_clear(&p.r);
  ctx_res_clear(&other);
  ctx_env_stop(&e);
  return 0;
}

TEST(free_from_callback) { CHECK(free_from_callback() == 0); }

/* ---- routing: immediate failures, transfers that wait, fail or are cancelled ---------------------------------- */

/* A request that cannot be placed (a DC without any address) fails, but
 * never from inside mtc_invoke: its callback comes from a later loop round. */
static int invoke_fail_later(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  mtc_context *ctx = NULL;
  REQ(mtc_context_new(&ctx, &s, NULL, NULL) == 0);
  body q = q_nearest();
  res r[2];
  memset(r, 0, sizeof r);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_DC;
  o.dc_id = 7; /* no seed, no address */
  for (int i = 0; i < 2; i++) {
    if (i == 1) o.target = MTC_TARGET_MEDIA;
    uint64_t id = 0;
    REQ(mtc_invoke(ctx, &o, q.b, q.n, res_cb, &r[i], &id) == 0 && id != 0);
    REQ(r[i].calls == 0); /* "never from inside this call" */
  }
  for (int64_t end = mono_ms() + 2000; (r[0].calls == 0 || r[1].calls == 0) && mono_ms() < end;)
    (void)mtc_context_run(ctx, 20);
  for (int i = 0; i < 2; i++) {
    REQ(r[i].calls == 1 && r[i].kind == MTC_RESULT_ERROR && r[i].error == MTC_ERR_NO_ADDRESS);
    ctx_res_clear(&r[i]);
  }
  mtc_context_free(ctx);
  /* the only address fails at connect() itself (multicast: ENETUNREACH) and
   * one attempt is all there is: MTC_ERR_CONNECT, again from a later round */
  e.seeds[2].ip = "224.0.0.1";
  s.max_connect_attempts = 1;
  s.no_discovery = 1;
  REQ(mtc_context_new(&ctx, &s, NULL, NULL) == 0);
  o.target = MTC_TARGET_DC;
  o.dc_id = 3;
  REQ(mtc_invoke(ctx, &o, q.b, q.n, res_cb, &r[0], NULL) == 0);
  REQ(r[0].calls == 0);
  for (int64_t end = mono_ms() + 2000; r[0].calls == 0 && mono_ms() < end;)
    (void)mtc_context_run(ctx, 20);
  REQ(r[0].calls == 1 && r[0].kind == MTC_RESULT_ERROR && r[0].error == MTC_ERR_CONNECT);
  ctx_res_clear(&r[0]);
  mtc_context_free(ctx);
  ctx_env_stop(&e);
  return 0;
}

TEST(invoke_fail_later) { CHECK(invoke_fail_later() == 0); }

/* The main DC claims an authorization the server does not know: the export
 * fails (401), the transfer ends, and each waiting request gets its own
 * 401 once; the export is tried once, nothing is imported. */
static void do_set_auth2(mtc_context *ctx, void *ud) { *(int *)ud = mtc_context_set_authorized(ctx, 2, 1); }

static int transfer_fails(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "trfail") == 0);
  res r[3];
  memset(r, 0, sizeof r);
  body q = q_nearest();
  REQ(h_call(&h, NULL, &q, &r[0], WAIT_MS) == 0 && r[0].kind == MTC_RESULT_OK);
  ctx_res_clear(&r[0]);
  int rc = -1;
  REQ(h_exec(&h, do_set_auth2, &rc) == 0 && rc == 0);
  mtc_invoke_options o1;
  memset(&o1, 0, sizeof o1);
  o1.target = MTC_TARGET_DC;
  o1.dc_id = 1;
  body f = q_get_file(0, 4096);
  REQ(h_invoke(&h, &o1, &f, &r[0], NULL) == 0); /* 401 on DC 1: both wait for one export */
  REQ(h_invoke(&h, &o1, &f, &r[1], NULL) == 0);
  o1.flags = MTC_INVOKE_NO_AUTH_TRANSFER;
  REQ(h_invoke(&h, &o1, &f, &r[2], NULL) == 0);   /* 401 to the app at once */
  for (int i = 0; i < 3; i++) REQ(h_wait(&h, pred_res, &r[i], WAIT_MS));
  h_idle(&h, 200);
  for (int i = 0; i < 3; i++) {
    REQ(r[i].calls == 1 && r[i].kind == MTC_RESULT_RPC_ERROR && r[i].code == 401);
    REQ(strcmp(r[i].msg, "AUTH_KEY_UNREGISTERED") == 0 && r[i].dc_id == 1);
    ctx_res_clear(&r[i]);
  }
  REQ(ctx_mock_method(e.cl, 2, "auth.exportAuthorization") == 1);
  REQ(ctx_mock_method(e.cl, 1, "auth.importAuthorization") == 0);
  REQ(mtc_context_is_authorized(h.ctx, 2) == 0 && mtc_context_is_authorized(h.ctx, 1) == 0);
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(transfer_fails) { CHECK(transfer_fails() == 0); }

/* Requests waiting for the one transfer to DC 1: one is cancelled while it
 * waits, one is cancelled from inside another's result callback, one times
 * out while the import is held back; each gets exactly one callback, and
 * the DC is authorized once. */
typedef struct tr_probe {
  res r;
  uint64_t cancel_id; /* cancel this from the callback */
  int cancel_rc;
  mtc_context *ctx;
} tr_probe;

static void cb_tr_cancel(void *ud, const mtc_result *r) {
  tr_probe *p = ud;
  res_cb(&p->r, r);
  p->cancel_rc = mtc_cancel(p->ctx, p->cancel_id);
  if (mtc_cancel(p->ctx, r->request_id) != MTC_ERR_REQUEST_UNKNOWN) p->cancel_rc = 1000;
}

static int transfer_waiters(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "trwait") == 0);
  REQ(login(&h) == 0);
  REQ(ctx_set_fault(e.cl, 1, "delay_ms=300") == 0);
  tr_probe p[4];
  memset(p, 0, sizeof p);
  mtc_invoke_options o1;
  memset(&o1, 0, sizeof o1);
  o1.target = MTC_TARGET_DC;
  o1.dc_id = 1;
  uint64_t id[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4; i++) {
    body f = q_get_file((int64_t)i * 4096, 4096);
    mtc_invoke_options o = o1;
    if (i == 3) o.timeout_ms = 500; /* before the transfer can be done */
    p[i].ctx = h.ctx;
    p[i].cancel_id = UINT64_MAX; /* none */
    REQ(mtc_invoke(h.ctx, i == 0 ? NULL : &o, f.b, f.n, cb_tr_cancel, &p[i], &id[i]) == 0);
  }
  p[0].cancel_id = id[2]; /* the first answer cancels request 2 if it still waits */
  h_idle(&h, 100);
  REQ(mtc_cancel(h.ctx, id[1]) == 0); /* waiting for the key of DC 1 or the transfer */
  REQ(p[1].r.calls == 1 && p[1].r.kind == MTC_RESULT_CANCELLED);
  REQ(mtc_cancel(h.ctx, id[1]) == MTC_ERR_REQUEST_UNKNOWN);
  REQ(h_wait(&h, pred_res, &p[0].r, WAIT_MS));
  h_idle(&h, 500);
  REQ(p[0].r.calls == 1 && p[0].r.kind == MTC_RESULT_OK && p[0].r.dc_id == 1);
  REQ(p[0].cancel_rc == 0 || p[0].cancel_rc == MTC_ERR_REQUEST_UNKNOWN);
  REQ(p[1].r.calls == 1);
  REQ(p[2].r.calls == 1);
  REQ(p[2].r.kind == (p[0].cancel_rc == 0 ? MTC_RESULT_CANCELLED : MTC_RESULT_OK));
  REQ(p[3].r.calls == 1 && p[3].r.kind == MTC_RESULT_ERROR && p[3].r.error == MTC_ERR_TIMEOUT);
  for (int i = 0; i < 4; i++) REQ(p[i].cancel_rc != 1000);
  REQ(ctx_mock_method(e.cl, 5, "auth.exportAuthorization") == 1);
  REQ(ctx_mock_method(e.cl, 1, "auth.importAuthorization") == 1);
  REQ(mtc_context_is_authorized(h.ctx, 1) == 1);
  for (int i = 0; i < 4; i++) ctx_res_clear(&p[i].r);
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(transfer_waiters) { CHECK(transfer_waiters() == 0); }

/* Re-entry from an event callback: MAIN_DC_CHANGED (PHONE_MIGRATE_5 of a
 * sendCode) cancels the very request being migrated - CANCELLED once, and
 * it never reaches the new main DC - and invokes a new one, which the new
 * main DC answers. Then mtc_context_free from the same event: deferred to
 * the end of the call, the pending requests are cancelled once. */
typedef struct ev_probe {
  mtc_context *ctx;
  uint64_t cancel_id;
  int cancel_rc, invoke_rc, do_free, freed, migrated;
  res cancelled, fresh, other;
} ev_probe;

static void cb_ev_reenter(void *ud, const mtc_event *ev) {
  ev_probe *p = ud;
  if (ev->type != MTC_EVENT_MAIN_DC_CHANGED || p->migrated++) return;
  if (p->do_free) {
    mtc_context_free(p->ctx);
    p->freed = 1;
    return;
  }
  p->cancel_rc = mtc_cancel(p->ctx, p->cancel_id);
  body q = q_nearest();
  p->invoke_rc = mtc_invoke(p->ctx, NULL, q.b, q.n, res_cb, &p->fresh, NULL);
}

static int event_reentry(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.state_path = NULL;
  for (int round = 0; round < 2; round++) {
    ev_probe p;
    memset(&p, 0, sizeof p);
    p.cancel_rc = p.invoke_rc = 1;
    p.do_free = round == 1;
    mtc_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.on_event = cb_ev_reenter;
    REQ(mtc_context_new(&p.ctx, &s, &cb, &p) == 0);
    body q = q_send_code();
    REQ(mtc_invoke(p.ctx, NULL, q.b, q.n, res_cb, &p.cancelled, &p.cancel_id) == 0);
    body n = q_nearest();
    mtc_invoke_options o3;
    memset(&o3, 0, sizeof o3);
    o3.target = MTC_TARGET_DC;
    o3.dc_id = 3;
    REQ(ctx_set_fault(e.cl, 3, "drop_method=help.getNearestDc") == 0);
    REQ(mtc_invoke(p.ctx, &o3, n.b, n.n, res_cb, &p.other, NULL) == 0); /* never answered */
    for (int64_t end = mono_ms() + WAIT_MS; !p.freed && p.fresh.calls == 0 && mono_ms() < end;)
      (void)mtc_context_run(p.ctx, 20);
    if (!p.freed) {
      sleep_ms(100);
      (void)mtc_context_run(p.ctx, 100); /* a late sendCode answer would show here */
    }
    REQ(p.migrated == 1 && p.cancelled.calls == 1 && p.cancelled.kind == MTC_RESULT_CANCELLED);
    if (round == 0) {
      REQ(p.cancel_rc == 0 && p.invoke_rc == 0);
      REQ(p.fresh.calls == 1 && p.fresh.kind == MTC_RESULT_OK && p.fresh.dc_id == 5);
      REQ(ctx_mock_method(e.cl, 5, "auth.sendCode") == 0); /* the cancelled one was not resent */
      REQ(p.other.calls == 0);
      mtc_context_free(p.ctx);
    }
    REQ(p.other.calls == 1 && p.other.kind == MTC_RESULT_CANCELLED);
    ctx_res_clear(&p.cancelled);
    ctx_res_clear(&p.fresh);
    ctx_res_clear(&p.other);
  }
  ctx_env_stop(&e);
  return 0;
}

TEST(event_reentry) { CHECK(event_reentry() == 0); }

/* DC 1 forgets its key (-404) while the export for it is under way: the
 * transfer goes on with the new key, and a request that meets 401 on the
 * new key meanwhile waits for it - one export, one import. */
static int transfer_key_dropped(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "trdrop") == 0);
  REQ(login(&h) == 0);
  mtc_invoke_options o1;
  memset(&o1, 0, sizeof o1);
  o1.target = MTC_TARGET_DC;
  o1.dc_id = 1;
  res r[3];
  memset(r, 0, sizeof r);
  body n = q_nearest();
  REQ(h_call(&h, &o1, &n, &r[1], WAIT_MS) == 0 && r[1].kind == MTC_RESULT_OK); /* DC 1's key */
  ctx_res_clear(&r[1]);
  REQ(ctx_set_fault(e.cl, 5, "delay_ms=600") == 0); /* the export's answer comes late */
  body f = q_get_file(0, 4096);
  REQ(h_invoke(&h, &o1, &f, &r[0], NULL) == 0); /* 401: waits for the transfer */
  h_idle(&h, 100);
  REQ(r[0].calls == 0);
  REQ(ctx_set_fault(e.cl, 1, "transport_404_once=1") == 0);
  REQ(h_call(&h, &o1, &n, &r[1], WAIT_MS) == 0 && r[1].kind == MTC_RESULT_OK); /* new key */
  REQ(count_events(&h, MTC_EVENT_AUTH_KEY_DROPPED, 1, 0) == 1);
  REQ(h_invoke(&h, &o1, &f, &r[2], NULL) == 0); /* 401 on the new key */
  REQ(h_wait(&h, pred_res, &r[0], WAIT_MS) && h_wait(&h, pred_res, &r[2], WAIT_MS));
  h_idle(&h, 100);
  for (int i = 0; i < 3; i++) {
    REQ(r[i].calls == 1 && r[i].kind == MTC_RESULT_OK && r[i].dc_id == 1);
    ctx_res_clear(&r[i]);
  }
  REQ(ctx_mock_method(e.cl, 5, "auth.exportAuthorization") == 1);
  REQ(ctx_mock_method(e.cl, 1, "auth.importAuthorization") == 1);
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(transfer_key_dropped) { CHECK(transfer_key_dropped() == 0); }

/* The main DC moves while a request for it is in flight on the old one,
 * and the old one answers 401 AUTH_KEY_UNREGISTERED: the request goes to
 * the new main DC - no authorization transfer to the old one. The move
 * comes from a PHONE_MIGRATE_5 answered to a sendCode sent just before
 * (DC 5 not logged in yet: its own 401 is the answer), then from the app
 * (mtc_context_set_main_dc(5), DC 5 logged in: the request succeeds there). */
static int main_moved_401(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "moved401") == 0);
  res r[2];
  memset(r, 0, sizeof r);
  body sc = q_send_code(), self = q_get_self();
  REQ(h_invoke(&h, NULL, &sc, &r[0], NULL) == 0); /* both go out on DC 2, in this order */
  REQ(h_invoke(&h, NULL, &self, &r[1], NULL) == 0);
  for (int i = 0; i < 2; i++) REQ(h_wait(&h, pred_res, &r[i], WAIT_MS));
  h_idle(&h, 100);
  REQ(r[0].calls == 1 && r[0].kind == MTC_RESULT_OK && r[0].dc_id == 5);
  REQ(ctx_mock_method(e.cl, 2, "users.getUsers") == 1);
  REQ(r[1].calls == 1 && r[1].kind == MTC_RESULT_RPC_ERROR && r[1].code == 401);
  REQ(strcmp(r[1].msg, "AUTH_KEY_UNREGISTERED") == 0 && r[1].dc_id == 5);
  REQ(ctx_mock_method(e.cl, 5, "users.getUsers") == 1);
  for (int i = 0; i < 2; i++) ctx_res_clear(&r[i]);
  REQ(login(&h) == 0);
  REQ(mtc_context_main_dc(h.ctx) == 5 && mtc_context_is_authorized(h.ctx, 5) == 1);
  /* the app moves the main DC to 2 and back while DC 2 holds the request */
  int dc = 2;
  REQ(h_exec(&h, do_set_main, &dc) == 0);
  REQ(ctx_set_fault(e.cl, 2, "delay_ms=400") == 0);
  REQ(h_invoke(&h, NULL, &self, &r[0], NULL) == 0);
  mock_count mc = {&e, 2, "users.getUsers", 2};
  REQ(h_wait(&h, pred_mock_method, &mc, WAIT_MS));
  REQ(r[0].calls == 0);
  dc = 5;
  REQ(h_exec(&h, do_set_main, &dc) == 0);
  REQ(h_wait(&h, pred_res, &r[0], WAIT_MS));
  h_idle(&h, 600);
  REQ(r[0].calls == 1 && r[0].kind == MTC_RESULT_OK && r[0].dc_id == 5);
  ctx_res_clear(&r[0]);
  REQ(ctx_mock_method(e.cl, 5, "auth.exportAuthorization") == 0);
  REQ(ctx_mock_method(e.cl, 2, "auth.importAuthorization") == 0);
  REQ(mtc_context_is_authorized(h.ctx, 2) == 0);
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(main_moved_401) { CHECK(main_moved_401() == 0); }

/* FLOOD_WAIT_X being waited out ends early, once, when the request's own
 * timeout passes or it is cancelled; neither is resent afterwards. */
static void do_cancel_id(mtc_context *ctx, void *ud) {
  cancel_call *c = ud;
  c->rc = mtc_cancel(ctx, c->id);
}

static int flood_wait_ends(void) {
  script_env x;
  REQ(script_start(&x) == 0);
  x.s.flood_wait_auto_s = 5;
  harness h;
  REQ(h_start(&h, MODE_RUN, &x.s, "floodend") == 0);
  const char *l[2] = {"420 FLOOD_WAIT_1", "420 FLOOD_WAIT_1"};
  sdc_script(&x.d, l, 2);
  res r[2];
  memset(r, 0, sizeof r);
  body q = q_nearest();
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = 400;
  int64_t t0 = mono_ms();
  REQ(h_call(&h, &o, &q, &r[0], WAIT_MS) == 0);
  REQ(r[0].kind == MTC_RESULT_ERROR && r[0].error == MTC_ERR_TIMEOUT);
  REQ(r[0].at - t0 >= 350 && r[0].at - t0 < 900);
  uint64_t id = 0;
  REQ(h_invoke(&h, NULL, &q, &r[1], &id) == 0);
  h_idle(&h, 300);
  REQ(r[1].calls == 0);
  cancel_call cc = {id, -1, 0, 0, &r[1]};
  REQ(h_exec(&h, do_cancel_id, &cc) == 0 && cc.rc == 0);
  REQ(r[1].calls == 1 && r[1].kind == MTC_RESULT_CANCELLED);
  h_idle(&h, 1200); /* past both waits */
  REQ(r[0].calls == 1 && r[1].calls == 1);
  mock_loop_lock(x.d.loop);
  int queries = x.d.queries;
  mock_loop_unlock(x.d.loop);
  REQ(queries == 2);
  for (int i = 0; i < 2; i++) ctx_res_clear(&r[i]);
  h_free(&h);
  script_stop(&x);
  return 0;
}

TEST(flood_wait_ends) { CHECK(flood_wait_ends() == 0); }

/* ---- persistence refusals ------------------------------------------------------------------------------------ */

static int read_file(const char *path, char *buf, size_t cap, size_t *len, struct stat *st) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, cap);
  fstat(fd, st);
  close(fd);
  if (n < 0) return -1;
  *len = (size_t)n;
  return 0;
}

static int write_file(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return -1;
  ssize_t w = write(fd, text, strlen(text));
  fchmod(fd, mode);
  close(fd);
  return w == (ssize_t)strlen(text) ? 0 : -1;
}

static int bad_state(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  static const char *const texts[] = {
      "{\"format\":\"mtconn-state\",\"version\":1,\"test_dcs\":false", /* truncated */
      "not json at all",
      "{\"format\":\"mtconn-state\",\"version\":7}",                    /* a future version */
  };
  static const int codes[] = {MTC_ERR_STORE_CORRUPT, MTC_ERR_STORE_CORRUPT, MTC_ERR_STORE_VERSION};
  for (int i = 0; i < 3; i++) {
    REQ(write_file(e.state_path, texts[i], 0600) == 0);
    char before[512], after[512];
    size_t lb = 0, la = 0;
    struct stat sb, sa;
    REQ(read_file(e.state_path, before, sizeof before, &lb, &sb) == 0);
    sleep_ms(20);
    harness h;
    int rc = h_start(&h, MODE_RUN, &s, "badstate");
    REQ(rc == codes[i]);
    REQ(h.ctx == NULL);
    REQ(h.log && strstr(h.log, "refusing to start"));
    REQ(read_file(e.state_path, after, sizeof after, &la, &sa) == 0);
    REQ(la == lb && memcmp(before, after, lb) == 0);
    REQ(sa.st_mtim.tv_sec == sb.st_mtim.tv_sec && sa.st_mtim.tv_nsec == sb.st_mtim.tv_nsec);
    REQ(sa.st_ino == sb.st_ino);
    free(h.log);
  }
  /* readable by others: refused too */
  {
    harness h;
    harness h0;
    REQ(unlink(e.state_path) == 0);
    REQ(h_start(&h0, MODE_RUN, &s, "fresh") == 0); /* fresh start, then save a real state */
    res r;
    memset(&r, 0, sizeof r);
    body q = q_nearest();
    REQ(h_call(&h0, NULL, &q, &r, WAIT_MS) == 0 && r.kind == MTC_RESULT_OK);
    ctx_res_clear(&r);
    h_free(&h0);
    REQ(chmod(e.state_path, 0644) == 0);
    REQ(h_start(&h, MODE_RUN, &s, "perm") == MTC_ERR_STORE_PERMISSIONS);
    free(h.log);
    REQ(chmod(e.state_path, 0600) == 0);
    /* a state of the production DCs does not load into a test-DC context */
    s.test_dcs = 1;
    REQ(h_start(&h, MODE_RUN, &s, "cluster") == MTC_ERR_STATE_MISMATCH);
    free(h.log);
  }
  ctx_env_stop(&e);
  return 0;
}

TEST(bad_state_file) { CHECK(bad_state() == 0); }

/*
 * A state with keys for 16 DCs (the table's capacity) next to the 5 seed
 * DCs of the settings (e.g. the seeds changed since the state was saved):
 * the union does not fit. Every key must survive a load and a save; the
 * seed DCs that had to give way are named in the log.
 */
#define OVF_DCS 16
static int state_overflow(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  static mtci_state st;
  mtci_state_init(&st);
  st.main_dc = 101;
  for (int i = 0; i < OVF_DCS; i++) {
    mtci_state_dc *d = &st.dcs[st.n_dcs++];
    d->dc_id = 101 + i;
    d->has_perm = 1;
    for (int k = 0; k < MTCI_STATE_KEY_LEN; k++) d->perm_key[k] = (uint8_t)(k * 13 + i * 29 + 1);
    uint8_t id[8];
    mtci_auth_key_id(d->perm_key, id);
    d->perm_key_id = mtci_le64(id);
    d->perm_created = 1700000000;
    d->authorized = i == 0;
    d->n_addrs = 1;
    snprintf(d->addrs[0].ip, sizeof d->addrs[0].ip, "127.0.0.1");
    d->addrs[0].port = (uint16_t)(20000 + i);
  }
  REQ(mtci_store_save(e.state_path, &st, NULL, 0) == 0);
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "overflow") == 0);
  REQ(mtc_context_main_dc(h.ctx) == 101);
  REQ(mtc_context_is_authorized(h.ctx, 101) == 1);
  REQ(mtc_context_save(h.ctx) == 0);
  int logged = h.log && strstr(h.log, "5 DCs left out") != NULL;
  h_free(&h);
  static mtci_state back;
  REQ(mtci_store_load(e.state_path, &back, NULL, 0) == 0);
  int kept = 0;
  for (int i = 0; i < OVF_DCS; i++) {
    for (int j = 0; j < back.n_dcs; j++) {
      const mtci_state_dc *b = &back.dcs[j];
      if (b->dc_id != st.dcs[i].dc_id) continue;
      if (b->has_perm && memcmp(b->perm_key, st.dcs[i].perm_key, MTCI_STATE_KEY_LEN) == 0 &&
          b->authorized == st.dcs[i].authorized && b->n_addrs >= 1 &&
          b->addrs[0].port == st.dcs[i].addrs[0].port)
        kept++;
    }
  }
  if (kept != OVF_DCS) fprintf(stderr, "  %d of %d DCs with keys saved back\n", kept, OVF_DCS);
  REQ(kept == OVF_DCS);
  REQ(back.main_dc == 101);
  REQ(logged);
  mtci_state_clear(&st);
  mtci_state_clear(&back);
  ctx_env_stop(&e);
  return 0;
}

TEST(state_overflow_keeps_keys) { CHECK(state_overflow() == 0); }

/* ---- persistence through the host's callbacks ------------------------------------------------------------- */

typedef struct mem_store {
  char *json;
  size_t len;
  int saves, loads;
  int fail_load;
} mem_store;

static mem_store g_store;

static int cb_load(void *ud, char *buf, size_t cap, size_t *len) {
  (void)ud;
  g_store.loads++;
  if (g_store.fail_load) return g_store.fail_load;
  if (!g_store.json) return MTC_ERR_STORE_NOT_FOUND;
  if (g_store.len > cap) return MTC_ERR_STORE_TOO_LARGE;
  memcpy(buf, g_store.json, g_store.len);
  *len = g_store.len;
  return 0;
}

static int cb_save(void *ud, const char *json, size_t len) {
  (void)ud;
  char *p = malloc(len);
  if (!p) return MTC_ERR_NOMEM;
  memcpy(p, json, len);
  free(g_store.json);
  g_store.json = p;
  g_store.len = len;
  g_store.saves++;
  return 0;
}

static int state_callbacks(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.state_path = NULL;
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.load_state = cb_load;
  cb.save_state = cb_save;
  memset(&g_store, 0, sizeof g_store);
  for (int round = 0; round < 2; round++) {
    mtc_context *ctx = NULL;
    REQ(mtc_context_new(&ctx, &s, &cb, NULL) == 0);
    res r;
    memset(&r, 0, sizeof r);
    body q = q_nearest();
    REQ(mtc_invoke(ctx, NULL, q.b, q.n, res_cb, &r, NULL) == 0);
    for (int64_t end = mono_ms() + WAIT_MS; r.calls == 0 && mono_ms() < end;) mtc_context_run(ctx, 20);
    REQ(r.calls == 1 && r.kind == MTC_RESULT_OK);
    ctx_res_clear(&r);
    mtc_context_free(ctx);
  }
  REQ(g_store.loads == 2 && g_store.saves >= 1);
  REQ(g_store.json && strstr(g_store.json, "\"mtconn-state\""));
  REQ(mock_total(&e, "handshakes_perm") == 1); /* the second context reused the saved key */
  /* a load error other than NOT_FOUND stops creation, and nothing is saved */
  int saves = g_store.saves;
  g_store.fail_load = MTC_ERR_STORE_IO;
  mtc_context *ctx = NULL;
  REQ(mtc_context_new(&ctx, &s, &cb, NULL) == MTC_ERR_STORE_IO && ctx == NULL);
  REQ(g_store.saves == saves);
  free(g_store.json);
  memset(&g_store, 0, sizeof g_store);
  ctx_env_stop(&e);
  return 0;
}

TEST(state_callbacks) { CHECK(state_callbacks() == 0); }

/* ---- media connections: capped, opened for work, closed when idle ----------------------------------------------- */

static int media_cap(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.media_connections_per_dc = 2;
  s.idle_close_ms = 400;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "media") == 0);
  REQ(login(&h) == 0);
  const int32_t part = 128 * 1024;
  res r[6];
  memset(r, 0, sizeof r);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_MEDIA;
  o.dc_id = 1;
  for (int i = 0; i < 6; i++) {
    body qi = q_get_file((int64_t)i * part, part);
    REQ(h_invoke(&h, &o, &qi, &r[i], NULL) == 0);
  }
  for (int i = 0; i < 6; i++) {
    REQ(h_wait(&h, pred_res, &r[i], WAIT_MS));
    REQ(r[i].calls == 1 && r[i].dc_id == 1);
    REQ(ctx_check_part(&r[i], (int64_t)i * part, (size_t)part) == 0);
    ctx_res_clear(&r[i]);
  }
  mock_dc_counters mc;
  REQ(mock_dc_get_counters(e.cl, 1, &mc) == 0);
  fprintf(stderr, "    media: 6 parts over %llu connections to DC 1 (media cap 2)\n",
          (unsigned long long)mc.tcp_accepted);
  REQ(mc.tcp_accepted == 2 && mc.handshakes_perm == 1);
  /* every part met 401 AUTH_KEY_UNREGISTERED once; one transfer served them all */
  REQ(ctx_mock_method(e.cl, 5, "auth.exportAuthorization") == 1);
  REQ(ctx_mock_method(e.cl, 1, "auth.importAuthorization") == 1);
  REQ(mock_dc_counter_name(mc.errors, mc.n_errors, "401 AUTH_KEY_UNREGISTERED") >= 1);
  REQ(mtc_context_is_authorized(h.ctx, 1) == 1);
  REQ(count_events(&h, MTC_EVENT_CONN_STATE, 1, MTC_CONN_READY) >= 2);
  h_idle(&h, 1200);
  size_t closed = 0;
  LOCK();
  for (size_t i = 0; i < h.n_evs; i++)
    if (h.evs[i].type == MTC_EVENT_CONN_STATE && h.evs[i].dc_id == 1 && h.evs[i].media &&
        h.evs[i].state == MTC_CONN_CLOSED)
      closed++;
  UNLOCK();
  REQ(closed >= 1);
  REQ(mock_dc_conn_count(e.cl, 5) >= 1); /* the main DC's connection stays */
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(media_connections) { CHECK(media_cap() == 0); }

/* ---- through the mock MTProxy (ee: fake-TLS) --------------------------------------------------------------------- */

static int via_proxy(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  uint8_t secret[16];
  for (int i = 0; i < 16; i++) secret[i] = (uint8_t)(0xa0 + i);
  ctx_mtproxy px;
  REQ(ctx_mtproxy_start(&px, &e, secret, "example.com") == 0);
  char link[256], hex[64];
  hex_of(secret, 16, hex, 0);
  snprintf(link, sizeof link, "tg://proxy?server=127.0.0.1&port=%u&secret=ee%s%s",
           (unsigned)mock_proxy_port(px.px), hex, "6578616d706c652e636f6d"); /* "example.com" */
  mtc_settings s;
  env_settings(&e, &s);
  s.proxy = link;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "proxy") == 0);
  REQ(login(&h) == 0);
  mock_proxy_stats ps;
  ctx_mtproxy_stats(&px, &ps);
  fprintf(stderr, "    MTProxy ee: %llu proxy connections, %llu fake-TLS hellos, %llu rejects\n",
          (unsigned long long)ps.accepted, (unsigned long long)ps.tls_hellos_ok,
          (unsigned long long)(ps.rejects[MOCK_PROXY_REJ_TLS_DIGEST] + ps.rejects[MOCK_PROXY_REJ_UNKNOWN_DC]));
  REQ(ps.accepted == 2 && ps.tls_hellos_ok == 2 && ps.handshakes_ok == 2);
  REQ(mock_total(&e, "tcp_accepted") == 2);
  /* each session's initConnection named the proxy (inputClientProxy) */
  REQ(mock_total(&e, "init_via_proxy") == 2);
  h_free(&h);
  ctx_mtproxy_stop(&px);
  ctx_env_stop(&e);
  return 0;
}

TEST(mtproxy_ee) { CHECK(via_proxy() == 0); }

static int via_socks(void) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mock_socks *rl = NULL;
  REQ(mock_socks_new(0, &rl) == 0); /* target 0: SOCKS5 mode */
  char link[128];
  snprintf(link, sizeof link, "tg://socks?server=127.0.0.1&port=%u", (unsigned)mock_socks_port(rl));
  mtc_settings s;
  env_settings(&e, &s);
  s.proxy = link;
  harness h;
  REQ(h_start(&h, MODE_RUN, &s, "socks") == 0);
  REQ(login(&h) == 0);
  int acc = 0;
  (void)relay_get(rl, &acc);
  fprintf(stderr, "    SOCKS5: %d proxy connections\n", acc);
  REQ(acc == 2 && mock_total(&e, "tcp_accepted") == 2);
  REQ(mock_total(&e, "init_via_proxy") == 0); /* SOCKS5 is not an MTProxy: no inputClientProxy */
  h_free(&h);
  mock_socks_free(rl);
  ctx_env_stop(&e);
  return 0;
}

TEST(socks5) { CHECK(via_socks() == 0); }

/* ---- API argument checks ---------------------------------------------------------------------------------------- */

static void noop_cb(void *ud, const mtc_result *r) {
  (void)ud;
  (void)r;
}

TEST(api_args) {
  env e;
  CHECK(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.state_path = NULL;
  mtc_context *ctx = NULL;
  CHECK_EQ_INT(mtc_context_new(NULL, &s, NULL, NULL), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtc_context_new(&ctx, NULL, NULL, NULL), MTC_ERR_INVALID_ARG);
  mtc_settings b = s;
  b.version = 99;
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_VERSION);
  b = s;
  b.pfs = 1;
  b.temp_key_expires_s = 3; /* too short to renew in time */
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  b.temp_key_expires_s = -1;
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  b = s;
  b.transport = MTC_TRANSPORT_FULL; /* obfuscate = 1 from the defaults */
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  b = s;
  b.transport = (mtc_transport)9;
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  b = s;
  b.media_connections_per_dc = 9;
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  b = s;
  b.proxy = "tg://proxy?server=proxy.example.onion&port=443&secret=00112233445566778899aabbccddeeff";
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_PROXY_HOST);
  b = s;
  b.proxy = "tg://proxy?server=127.0.0.1&port=0&secret=00";
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  mtc_dc_address bad_seed = {2, "127.0.0.1", 0, 0, NULL, 0};
  b = s;
  b.seeds = &bad_seed;
  b.n_seeds = 1;
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  const char *bad_pem[1] = {"-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n"};
  b = s;
  b.rsa_keys_pem = bad_pem;
  b.n_rsa_keys = 1;
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  b = s;
  b.n_rsa_keys = 0; /* no built-in keys either */
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  char longs[300];
  memset(longs, 'x', sizeof longs - 1);
  longs[sizeof longs - 1] = 0;
  b = s;
  b.device_model = longs;
  CHECK_EQ_INT(mtc_context_new(&ctx, &b, NULL, NULL), MTC_ERR_INVALID_ARG);
  CHECK(ctx == NULL);

  /* defaults: built-in seeds and keys are usable */
  mtc_settings d;
  mtc_settings_default(&d);
  CHECK_EQ_INT(d.transport, MTC_TRANSPORT_INTERMEDIATE);
  CHECK_EQ_INT(d.obfuscate, 1);
  CHECK_EQ_INT(d.main_dc, 2);
  CHECK_EQ_INT(d.media_connections_per_dc, 2);
  CHECK_EQ_INT(mtc_context_new(&ctx, &d, NULL, NULL), 0);
  CHECK_EQ_INT(mtc_context_main_dc(ctx), 2);
  CHECK_EQ_INT(mtc_context_save(ctx), MTC_ERR_UNSUPPORTED);
  mtc_context_free(ctx);
  ctx = NULL;

  CHECK_EQ_INT(mtc_context_new(&ctx, &s, NULL, NULL), 0);
  body q = q_nearest();
  uint64_t id = 77;
  CHECK_EQ_INT(mtc_invoke(ctx, NULL, q.b, 3, noop_cb, NULL, &id), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(id, 0);
  CHECK_EQ_INT(mtc_invoke(ctx, NULL, q.b, q.n, NULL, NULL, &id), MTC_ERR_INVALID_ARG);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_DC;
  o.dc_id = 0;
  CHECK_EQ_INT(mtc_invoke(ctx, &o, q.b, q.n, noop_cb, NULL, &id), MTC_ERR_DC_UNKNOWN);
  o.dc_id = 1000;
  CHECK_EQ_INT(mtc_invoke(ctx, &o, q.b, q.n, noop_cb, NULL, &id), MTC_ERR_DC_UNKNOWN);
  o.target = (mtc_target)7;
  CHECK_EQ_INT(mtc_invoke(ctx, &o, q.b, q.n, noop_cb, NULL, &id), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtc_cancel(ctx, 12345), MTC_ERR_REQUEST_UNKNOWN);
  CHECK_EQ_INT(mtc_context_run(ctx, 0), 0);
  CHECK_EQ_INT(mtc_context_on_io(ctx, -1, MTC_IO_READ), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtc_context_set_main_dc(ctx, 0), MTC_ERR_DC_UNKNOWN);
  CHECK_EQ_INT(mtc_context_set_authorized(ctx, 2, 1), MTC_ERR_DC_UNKNOWN); /* no key yet */
  mtc_counters c;
  memset(&c, 0, sizeof c);
  c.version = 2;
  CHECK_EQ_INT(mtc_context_counters(ctx, &c), MTC_ERR_VERSION);
  CHECK_EQ_INT(mtc_context_next_timeout_ms(ctx), -1); /* nothing to do yet */
  CHECK(strcmp(mtc_context_api_hash(ctx), "0123456789abcdef") == 0);
  CHECK_EQ_INT(mtc_context_api_id(ctx), 12345);
  /* a generated request object */
  mtc_tl_fn_help_getNearestDc nd;
  memset(&nd, 0, sizeof nd);
  nd.base.id = MTC_TL_ID_fn_help_getNearestDc;
  res r;
  memset(&r, 0, sizeof r);
  CHECK_EQ_INT(mtc_invoke_object(ctx, NULL, &nd.base, res_cb, &r, &id), 0);
  CHECK(id != 0);
  for (int64_t end = mono_ms() + WAIT_MS; r.calls == 0 && mono_ms() < end;) mtc_context_run(ctx, 20);
  CHECK(r.calls == 1 && r.kind == MTC_RESULT_OK && r.len >= 4 && mtci_le32(r.data) == MTC_TL_ID_nearestDc);
  ctx_res_clear(&r);
  /* HOST-mode calls on an OWN-mode context */
  mtc_runner *rn = NULL;
  CHECK_EQ_INT(mtc_runner_start(&rn, ctx), 0);
  CHECK_EQ_INT(mtc_context_run(ctx, 0), MTC_ERR_IO_BUSY); /* the runner owns it */
  CHECK_EQ_INT(mtc_runner_stop(rn), 0);
  mtc_context_free(ctx);
  mtc_context_free(NULL);
  ctx_env_stop(&e);
}

/* ---- backpressure: an upload burst ------------------------------------------------------------ */

#define UP_PARTS 140               /* 70 MiB queued at once: above the stack's 64 MiB cap */
#define UP_PART (512 * 1024)
#define UP_BODY (4 + 8 + 4 + 4 + UP_PART) /* upload.saveFilePart file_id file_part bytes */

typedef struct burst {
  mtc_context *ctx;
  res first, parts[UP_PARTS];
  int queued; /* parts accepted by mtc_invoke */
} burst;

static int pred_parts(harness *h, void *arg) {
  (void)h;
  const burst *u = arg;
  for (int i = 0; i < UP_PARTS; i++)
    if (u->parts[i].calls == 0) return 0;
  return 1;
}

/* The first answer's callback queues every part at once (no loop round in
 * between: the next flush finds all 100 MiB). */
static void cb_burst(void *ud, const mtc_result *r) {
  burst *u = ud;
  res_cb(&u->first, r);
  uint8_t *b = malloc(UP_BODY);
  for (int i = 0; b && i < UP_PARTS; i++) {
    mtci_put_le32(b, MTC_TL_ID_fn_upload_saveFilePart);
    mtci_put_le64(b + 4, 77);
    mtci_put_le32(b + 12, (uint32_t)i);
    mtci_put_le32(b + 16, 0xfeu | (uint32_t)UP_PART << 8);
    /* file bytes do not compress (media): else gzip would shrink the burst */
    uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)i;
    for (size_t k = 0; k < UP_PART; k += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      mtci_put_le64(b + 20 + k, x);
    }
    if (mtc_invoke(u->ctx, NULL, b, UP_BODY, res_cb, &u->parts[i], NULL) == 0) u->queued++;
  }
  free(b);
}

static void do_burst(mtc_context *ctx, void *ud) {
  burst *u = ud;
  body q = q_get_self();
  u->ctx = ctx;
  if (mtc_invoke(ctx, NULL, q.b, q.n, cb_burst, u, NULL) != 0) u->queued = -1;
}

/* An app queues 140 parts of 512 KiB at once. The connection takes them as
 * the socket drains (backpressure): every part is answered, none twice, on
 * the one connection (before, the output queue hit its cap, MTC_ERR_NOMEM
 * killed the connection, and every reconnect did the same). */
static int upload_burst(int mode) {
  env e;
  REQ(env_start(&e, NULL) == 0);
  mtc_settings s;
  env_settings(&e, &s);
  static harness h;
  REQ(h_start(&h, mode, &s, "upload") == 0);
  REQ(login(&h) == 0);
  ctr_req c0;
  REQ(h_counters(&h, &c0) == 0);
  free(c0.json);
  static burst u;
  memset(&u, 0, sizeof u);
  int fires0 = h.host.timer_fires, io0 = h.host.io_calls;
  int64_t t0 = mono_ms();
  REQ(h_exec(&h, do_burst, &u) == 0);
  int done = h_wait(&h, pred_parts, &u, 4 * WAIT_MS);
  int64_t took = mono_ms() - t0;
  int ok = 0;
  LOCK();
  for (int i = 0; i < UP_PARTS; i++) {
    if (u.parts[i].calls == 1 && u.parts[i].kind == MTC_RESULT_OK && u.parts[i].len == 4 &&
        mtci_le32(u.parts[i].data) == MTC_TL_ID_boolTrue)
      ok++;
    ctx_res_clear(&u.parts[i]);
  }
  int first_ok = u.first.calls == 1 && u.first.kind == MTC_RESULT_OK;
  ctx_res_clear(&u.first);
  UNLOCK();
  ctr_req c1;
  REQ(h_counters(&h, &c1) == 0);
  free(c1.json);
  fprintf(stderr,
          "  upload burst (%s): %d of %d parts of %d KiB answered in %lld ms, %llu reconnects, "
          "%d timer fires, %d io calls\n",
          k_modes[mode], ok, UP_PARTS, UP_PART / 1024, (long long)took,
          (unsigned long long)(c1.c.connects_succeeded - c0.c.connects_succeeded),
          h.host.timer_fires - fires0, h.host.io_calls - io0);
  REQ(first_ok && u.queued == UP_PARTS);
  REQ(done && ok == UP_PARTS);
  REQ(ctx_mock_method(e.cl, 5, "upload.saveFilePart") == UP_PARTS); /* none sent twice */
  REQ(c1.c.connects_succeeded == c0.c.connects_succeeded);          /* no reconnect */
  /* no spinning while requests were held back: a deadline left in the past
   * fires the timer at once, over and over; a write watch with nothing to
   * take wakes the loop the same way (each wakeup here takes a part) */
  REQ(h.host.timer_fires - fires0 < 50);
  REQ(h.host.io_calls - io0 < 10 * UP_PARTS);
  /* small requests flow as before on the same connection */
  res q;
  memset(&q, 0, sizeof q);
  body g = q_get_self();
  REQ(h_call(&h, NULL, &g, &q, WAIT_MS) == 0);
  REQ(q.calls == 1 && q.kind == MTC_RESULT_OK);
  ctx_res_clear(&q);
  h_free(&h);
  ctx_env_stop(&e);
  return 0;
}

TEST(upload_burst_host) { CHECK(upload_burst(MODE_HOST) == 0); }

static void cleanup(void) {
  mtci_drbg_free(g_drbg);
  g_drbg = NULL;
}

int main(int argc, char **argv) {
  g_verbose = getenv("MTC_TEST_VERBOSE") != NULL;
  atexit(cleanup);
  static const struct test_case cases[] = {
      CASE(api_args),        CASE(login_run),           CASE(login_host),
      CASE(login_runner),    CASE(migrate_variants),    CASE(flood_wait),
      CASE(flood_wait_host), CASE(key_404),             CASE(flood_429),
      CASE(backoff_refused), CASE(faults_abridged),     CASE(faults_intermediate),
      CASE(faults_padded),   CASE(faults_full),         CASE(config_keeps_connection),
      CASE(cancel_and_free_run), CASE(cancel_and_free_host), CASE(runner_free_pending), CASE(free_from_callback),
      CASE(bad_state_file),  CASE(state_overflow_keeps_keys), CASE(state_callbacks),     CASE(media_connections),   CASE(mtproxy_ee), CASE(socks5),
      CASE(liveness_stall),  CASE(upload_burst_host),
      CASE(invoke_fail_later), CASE(transfer_fails), CASE(transfer_waiters), CASE(event_reentry),
      CASE(transfer_key_dropped), CASE(flood_wait_ends), CASE(main_moved_401), CASE(config_churn),
  };
  return ctx_test_run("context", cases, sizeof cases / sizeof cases[0], argc, argv);
}
