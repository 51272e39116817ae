/*
 * The MTContext with settings.pfs = 1 against the mock cluster (tests/mockdc):
 * temporary keys made on the same connection as the perm key, bound with
 * auth.bindTempAuthKey (the mock checks the sealed bind_auth_key_inner,
 * msg_id and session included), persisted, replaced after -404 and renewed
 * before they expire. The context runs in mtc_context_run mode here
 * (test_context.c covers the loop modes).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "crypto/crypto.h"
#include "mock_dc.h"
#include "mtconn/mtconn.h"
#include "mtconn/tl_api.h"
#include "context_env.h"
#include "context_requests.h"
#include "test.h"
#include "test_net.h"
#include "tl/tl.h"

static int g_verbose;

/* ---- TL bodies ------------------------------------------------------------------------- */

/* ---- the context (mtc_context_run) ---------------------------------------------------------- */

typedef ctx_res res;

static void res_cb(void *ud, const mtc_result *r) { ctx_res_take(ud, r); }

typedef struct harness {
  mtc_context *ctx;
  unsigned key_created[2]; /* AUTH_KEY_CREATED perm / temp */
  unsigned key_dropped[2];
  char bound_id[17]; /* hex id of the temp key bound last (from the log) */
  unsigned main_lost[8]; /* CONN_STATE RECONNECTING of DC i's main connection */
  unsigned recreated;    /* SESSION_RECREATED events */
  unsigned switched;     /* background renewals switched over (from the log) */
  unsigned next_keys;    /* next temp keys made by the renewal slot (from the log) */
  char next_id[17];      /* hex id of the last of them */
  unsigned due_bg;       /* background renewals started (from the log) */
} harness;

static void cb_event(void *ud, const mtc_event *ev) {
  harness *h = ud;
  if (ev->type == MTC_EVENT_AUTH_KEY_CREATED) h->key_created[ev->temp ? 1 : 0]++;
  if (ev->type == MTC_EVENT_AUTH_KEY_DROPPED) h->key_dropped[ev->temp ? 1 : 0]++;
  if (ev->type == MTC_EVENT_CONN_STATE && ev->state == MTC_CONN_RECONNECTING && !ev->media &&
      ev->dc_id >= 0 && ev->dc_id < 8)
    h->main_lost[ev->dc_id]++;
  if (ev->type == MTC_EVENT_SESSION_RECREATED) h->recreated++;
}

static void cb_log(void *ud, mtc_log_level level, const char *line) {
  harness *h = ud;
  const char *k = strstr(line, ": temporary key ");
  size_t n = strlen(line);
  if (k && n > 6 && strcmp(line + n - 6, " bound") == 0 && strlen(k + 16) >= 16) {
    memcpy(h->bound_id, k + 16, 16);
    h->bound_id[16] = 0;
  }
  if (strstr(line, ": switched to temporary key ")) h->switched++;
  const char *nk = strstr(line, ": next temporary auth key created (id ");
  if (nk && strlen(nk + 38) >= 16) {
    h->next_keys++;
    memcpy(h->next_id, nk + 38, 16);
    h->next_id[16] = 0;
  }
  if (strstr(line, " due for renewal (in the background)")) h->due_bg++;
  if (g_verbose) fprintf(stderr, "    [%lld %d] %s\n", (long long)(mono_ms() % 100000), level, line);
}

static int h_start(harness *h, const mtc_settings *s) {
  memset(h, 0, sizeof *h);
  g_verbose = getenv("MTC_TEST_VERBOSE") != NULL; /* every log line to stderr */
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_event = cb_event;
  cb.on_log = cb_log;
  return mtc_context_new(&h->ctx, s, &cb, h);
}

static void h_stop(harness *h) {
  mtc_context_free(h->ctx);
  h->ctx = NULL;
}

static int h_wait(harness *h, const res *r, int timeout_ms) {
  int64_t end = mono_ms() + timeout_ms;
  while (r->calls == 0 && mono_ms() < end) (void)mtc_context_run(h->ctx, 20);
  return r->calls > 0 ? 0 : -1;
}

static void h_idle(harness *h, int ms) {
  int64_t end = mono_ms() + ms;
  while (mono_ms() < end) (void)mtc_context_run(h->ctx, 20);
}

static int h_call(harness *h, const mtc_invoke_options *o, const body *b, res *r) {
  if (mtc_invoke(h->ctx, o, b->b, b->n, res_cb, r, NULL) != 0) return -1;
  return h_wait(h, r, WAIT_MS);
}

static int h_counters(harness *h, mtc_counters *c) { return ctx_counters(h->ctx, c); }

/* ---- the mock cluster -------------------------------------------------------------------------- */

typedef ctx_env env;

static int env_start(env *e) { return ctx_env_start(e, NULL, "/tmp/mtc_pfs_XXXXXX"); }

static void env_settings(env *e, mtc_settings *s) {
  ctx_env_settings(e, s);
  s->no_auto_config = 1;
  s->pfs = 1;
}

/* The cluster, and settings with 4 s temp keys (renewed 1 s before they
 * expire) and no state file. */
static int short_key_env(env *e, mtc_settings *s) {
  if (env_start(e) != 0) return -1;
  env_settings(e, s);
  s->state_path = NULL;
  s->temp_key_expires_s = 4;
  return 0;
}

/* Sum of a mock counter over the 5 DCs. */
typedef struct mock_sum {
  uint64_t perm, temp, binds, t404, rpcs;
} mock_sum;

static void mock_totals(env *e, mock_sum *m) {
  memset(m, 0, sizeof *m);
  for (int dc = 1; dc <= 5; dc++) {
    mock_dc_counters c;
    if (mock_dc_get_counters(e->cl, dc, &c) != 0) continue;
    m->perm += c.handshakes_perm;
    m->temp += c.handshakes_temp;
    m->binds += c.binds;
    m->t404 += c.transport_404;
    m->rpcs += c.rpcs;
  }
}

static uint64_t mock_error(env *e, int dc, const char *name) {
  mock_dc_counters c;
  return mock_dc_get_counters(e->cl, dc, &c) == 0 ? mock_dc_counter_name(c.errors, c.n_errors, name)
                                                   : 0;
}

static uint64_t mock_binds(env *e, int dc) {
  mock_dc_counters c;
  return mock_dc_get_counters(e->cl, dc, &c) == 0 ? c.binds : 0;
}

/* ---- flows ----------------------------------------------------------------------------------------- */

/* The demo's login: sendCode (DC 2 -> PHONE_MIGRATE_5), signIn on DC 5,
 * one file part via the main DC (FILE_MIGRATE_1 + authorization transfer). */
static int login_and_file(harness *h) {
  res r;
  memset(&r, 0, sizeof r);
  body q = q_send_code();
  REQ(h_call(h, NULL, &q, &r) == 0);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK && r.dc_id == 5);
  char hash[64];
  REQ(sent_code_hash(r.data, r.len, hash, sizeof hash) == 0);
  ctx_res_clear(&r);
  q = q_sign_in(hash);
  REQ(h_call(h, NULL, &q, &r) == 0);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK && r.dc_id == 5);
  REQ(r.len >= 4 && mtci_le32(r.data) == MTC_TL_ID_auth_authorization);
  ctx_res_clear(&r);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_MAIN;
  q = q_get_file(0, 64 * 1024);
  REQ(h_call(h, &o, &q, &r) == 0);
  REQ(r.calls == 1 && r.kind == MTC_RESULT_OK && r.dc_id == 1);
  REQ(r.len >= 4 && mtci_le32(r.data) == MTC_TL_ID_upload_file);
  ctx_res_clear(&r);
  return 0;
}

static int call_ok(harness *h, int dc, const body *q) {
  res r;
  memset(&r, 0, sizeof r);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = dc ? MTC_TARGET_DC : MTC_TARGET_MAIN;
  o.dc_id = dc;
  int rc = h_call(h, &o, q, &r);
  int ok = rc == 0 && r.calls == 1 && r.kind == MTC_RESULT_OK;
  if (!ok)
    fprintf(stderr, "  call on dc %d: rc %d calls %d kind %d code %d error %d\n", dc, rc, r.calls,
            (int)r.kind, (int)r.code, r.error);
  ctx_res_clear(&r);
  return ok ? 0 : -1;
}

/* ---- tests ----------------------------------------------------------------------------------------- */

TEST(login_flow_then_restart) {
  env e;
  CHECK_EQ_INT(env_start(&e), 0);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  CHECK_EQ_INT(login_and_file(&h), 0);
  mtc_counters c;
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  /* DCs 2, 5 and 1: one perm and one temp key each, each temp key bound once */
  CHECK_EQ_INT(c.handshakes_perm, 3);
  CHECK_EQ_INT(c.handshakes_temp, 3);
  CHECK_EQ_INT(h.key_created[0], 3);
  CHECK_EQ_INT(h.key_created[1], 3);
  mock_sum m;
  mock_totals(&e, &m);
  CHECK_EQ_INT(m.perm, 3);
  CHECK_EQ_INT(m.temp, 3);
  CHECK_EQ_INT(m.binds, 3);
  CHECK_EQ_INT(m.t404, 0);
  for (int dc = 1; dc <= 5; dc++) {
    int perm = 0, temp = 0;
    CHECK_EQ_INT(mock_dc_key_count(e.cl, dc, &perm, &temp), perm + temp);
    int used = dc == 1 || dc == 2 || dc == 5;
    CHECK_EQ_INT(perm, used);
    CHECK_EQ_INT(temp, used);
    CHECK_EQ_INT(mock_binds(&e, dc), (uint64_t)used);
  }
  CHECK(mtc_context_is_authorized(h.ctx, 5) == 1);
  CHECK_EQ_INT(mtc_context_save(h.ctx), 0);
  h_stop(&h);

  /* restart within the keys' lifetime: no handshake, no bind */
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body q = q_get_self();
  CHECK_EQ_INT(call_ok(&h, 0, &q), 0);
  q = q_get_file(0, 4096);
  CHECK_EQ_INT(call_ok(&h, 1, &q), 0);
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  CHECK_EQ_INT(c.handshakes_perm, 0);
  CHECK_EQ_INT(c.handshakes_temp, 0);
  mock_totals(&e, &m);
  CHECK_EQ_INT(m.perm, 3);
  CHECK_EQ_INT(m.temp, 3);
  CHECK_EQ_INT(m.binds, 3);
  h_stop(&h);
  ctx_env_stop(&e);
}

TEST(temp_key_404_replaced_perm_kept) {
  env e;
  CHECK_EQ_INT(env_start(&e), 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.state_path = NULL;
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body q = q_nearest();
  CHECK_EQ_INT(call_ok(&h, 2, &q), 0);
  CHECK_EQ_INT(mock_binds(&e, 2), 1);
  /* the next encrypted frame on DC 2: the server forgets the (temp) key, -404 */
  CHECK_EQ_INT(ctx_set_fault(e.cl, 2, "transport_404_once=1"), 0);
  uint64_t nearest_before = ctx_mock_method(e.cl, 2, "help.getNearestDc");
  CHECK_EQ_INT(nearest_before, 1);
  q = q_nearest();
  CHECK_EQ_INT(call_ok(&h, 2, &q), 0);
  mtc_counters c;
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  CHECK_EQ_INT(c.handshakes_perm, 1);
  CHECK_EQ_INT(c.handshakes_temp, 2);
  CHECK_EQ_INT(h.key_dropped[0], 0);
  CHECK_EQ_INT(h.key_dropped[1], 1);
  mock_sum m;
  mock_totals(&e, &m);
  CHECK_EQ_INT(m.t404, 1);
  CHECK_EQ_INT(m.perm, 1);
  CHECK_EQ_INT(m.temp, 2);
  CHECK_EQ_INT(mock_binds(&e, 2), 2);
  /* the request reached the server once (the frame that met -404 was not processed) */
  CHECK_EQ_INT(ctx_mock_method(e.cl, 2, "help.getNearestDc") - nearest_before, 1);
  CHECK_EQ_INT(ctx_mock_method(e.cl, 2, "auth.bindTempAuthKey"), 2);
  int perm = 0, temp = 0;
  CHECK_EQ_INT(mock_dc_key_count(e.cl, 2, &perm, &temp), 2);
  CHECK_EQ_INT(perm, 1);
  CHECK_EQ_INT(temp, 1);
  h_stop(&h);
  ctx_env_stop(&e);
}

TEST(short_lifetime_renewed_before_expiry) {
  env e;
  CHECK_EQ_INT(env_start(&e), 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.state_path = NULL;
  s.temp_key_expires_s = 4; /* renewed 1 s before the server forgets it */
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body q = q_nearest();
  int64_t end = mono_ms() + 7000;
  int calls = 0;
  while (mono_ms() < end) {
    CHECK_EQ_INT(call_ok(&h, 2, &q), 0);
    calls++;
    h_idle(&h, 250);
  }
  CHECK(calls >= 10);
  mtc_counters c;
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  CHECK_EQ_INT(c.handshakes_perm, 1);
  CHECK(c.handshakes_temp >= 2); /* renewed at ~3 s and ~6 s (network time permitting) */
  CHECK(c.handshakes_temp <= 3);
  CHECK_EQ_INT(h.key_dropped[1], 0); /* never lost: replaced in time */
  mock_sum m;
  mock_totals(&e, &m);
  CHECK_EQ_INT(m.t404, 0);
  CHECK_EQ_INT(m.temp, c.handshakes_temp);
  CHECK_EQ_INT(m.binds, c.handshakes_temp);
  h_stop(&h);
  ctx_env_stop(&e);
}

/* The state file's time_offset_ms (server - local); -1000000 if unreadable. */
static int64_t state_time_offset(const char *path) {
  json_t *root = json_load_file(path, 0, NULL);
  json_t *v = root ? json_object_get(root, "time_offset_ms") : NULL;
  int64_t off = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1000000;
  json_decref(root);
  return off;
}

static int64_t wall_ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The server's clock is 600 ms ahead of ours. A handshake only says the
 * server's whole second: started early in a second of ours (the server
 * then reads x.0..x.4 + 0.6 s), it gives an offset of 0, 600 ms behind,
 * and key renewal would be due that much late. The sessions' msg_ids show
 * the server's milliseconds; the context's clock must follow them (the
 * state file keeps what the context uses).
 */
TEST(handshake_offset_refined_by_sessions) {
  env e;
  CHECK_EQ_INT(env_start(&e), 0);
  for (int dc = 1; dc <= CTX_ENV_DCS; dc++)
    CHECK_EQ_INT(ctx_set_fault(e.cl, dc, "clock_offset_ms=600"), 0);
  mtc_settings s;
  env_settings(&e, &s);
  /* start in the first 100 ms of a second of ours (bounded wait) */
  for (int i = 0; i < 1200 && wall_ms_now() % 1000 >= 100; i++) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body q = q_nearest();
  for (int i = 0; i < 3; i++) CHECK_EQ_INT(call_ok(&h, 2, &q), 0);
  mtc_counters c;
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  CHECK_EQ_INT(c.handshakes_temp, 1);
  h_stop(&h); /* saves the state */
  int64_t off = state_time_offset(e.state_path);
  fprintf(stderr, "    server clock +600 ms: the context's offset %lld ms\n", (long long)off);
  CHECK(off >= 450);
  CHECK(off <= 700);
  ctx_env_stop(&e);
}

static int copy_file(const char *from, const char *to) {
  FILE *f = fopen(from, "rb");
  if (!f) return -1;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  if (n == 0 || n == sizeof buf) return -1;
  f = fopen(to, "wb");
  if (!f) return -1;
  int ok = fwrite(buf, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

/* Remove every "temp_key" from a state file. */
static int strip_temp_keys(const char *path) {
  json_t *root = json_load_file(path, 0, NULL);
  json_t *dcs = root ? json_object_get(root, "dcs") : NULL;
  if (!json_is_array(dcs)) {
    json_decref(root);
    return -1;
  }
  for (size_t i = 0; i < json_array_size(dcs); i++)
    (void)json_object_del(json_array_get(dcs, i), "temp_key");
  int rc = json_dump_file(root, path, JSON_COMPACT);
  json_decref(root);
  return rc == 0 ? 0 : -1;
}

/* A saved state whose temp key the server no longer has bound (another
 * client of the same perm key bound a newer one): 401 AUTH_KEY_PERM_EMPTY,
 * the context binds it again and the request is answered. */
TEST(unbound_temp_key_rebound) {
  env e;
  CHECK_EQ_INT(env_start(&e), 0);
  char saved[160];
  snprintf(saved, sizeof saved, "%s/saved.json", e.dir);
  mtc_settings s;
  env_settings(&e, &s);
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body q = q_send_code(); /* not allowed on an unbound temp key */
  CHECK_EQ_INT(call_ok(&h, 5, &q), 0);
  CHECK_EQ_INT(mtc_context_save(h.ctx), 0);
  h_stop(&h);
  CHECK_EQ_INT(copy_file(e.state_path, saved), 0); /* temp key T1, bound */
  /* a run that knows only the perm key makes T2 and binds it: T1 stays on
   * the server, unbound (one temp key per perm key) */
  CHECK_EQ_INT(strip_temp_keys(e.state_path), 0);
  CHECK_EQ_INT(h_start(&h, &s), 0);
  CHECK_EQ_INT(call_ok(&h, 5, &q), 0);
  mtc_counters c;
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  CHECK_EQ_INT(c.handshakes_perm, 0);
  CHECK_EQ_INT(c.handshakes_temp, 1);
  h_stop(&h);
  CHECK_EQ_INT(mock_binds(&e, 5), 2);
  int perm = 0, temp = 0;
  CHECK_EQ_INT(mock_dc_key_count(e.cl, 5, &perm, &temp), 3);
  CHECK_EQ_INT(temp, 2);
  CHECK_EQ_INT(copy_file(saved, e.state_path), 0);
  CHECK_EQ_INT(h_start(&h, &s), 0);
  uint64_t nearest = ctx_mock_method(e.cl, 5, "auth.sendCode");
  CHECK_EQ_INT(call_ok(&h, 5, &q), 0);
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  CHECK_EQ_INT(c.handshakes_perm + c.handshakes_temp, 0);
  CHECK_EQ_INT(mock_binds(&e, 5), 3); /* T1 bound again */
  CHECK_EQ_INT(ctx_mock_method(e.cl, 5, "auth.sendCode") - nearest, 2); /* 401, then answered */
  h_stop(&h);
  unlink(saved);
  ctx_env_stop(&e);
}

/* The state file's temp key of DC dc: hex key id (16 digits) and bound flag. */
static int state_temp_key(const char *path, int dc, char hex[17], int *bound) {
  json_t *root = json_load_file(path, 0, NULL);
  json_t *dcs = root ? json_object_get(root, "dcs") : NULL;
  int rc = -1;
  for (size_t i = 0; json_is_array(dcs) && i < json_array_size(dcs); i++) {
    json_t *d = json_array_get(dcs, i);
    if (json_integer_value(json_object_get(d, "dc_id")) != dc) continue;
    json_t *t = json_object_get(d, "temp_key");
    const char *id = json_string_value(json_object_get(t, "key_id"));
    if (!id) break;
    snprintf(hex, 17, "%016llx", strtoull(id, NULL, 10));
    *bound = json_is_true(json_object_get(t, "bound"));
    rc = 0;
  }
  json_decref(root);
  return rc;
}

/* Wait (bounded) until every result of rs[0..n) came; the number still missing. */
static int h_wait_all(harness *h, const res *rs, int n, int timeout_ms) {
  int64_t end = mono_ms() + timeout_ms;
  for (int i = 0; i < n && mono_ms() < end; i++)
    while (rs[i].calls == 0 && mono_ms() < end) (void)mtc_context_run(h->ctx, 20);
  int missing = 0;
  for (int i = 0; i < n; i++) missing += rs[i].calls == 0;
  return missing;
}

/* Requests of rs[0..n) answered other than exactly once with a result. */
static int not_ok_once(const res *rs, int n) {
  int bad = 0;
  for (int i = 0; i < n; i++) bad += rs[i].calls != 1 || rs[i].kind != MTC_RESULT_OK;
  return bad;
}

/* Invoke q on DC dc (timeout_ms 0: none); the result goes to *r. */
static int invoke_dc(harness *h, int dc, const body *q, int timeout_ms, res *r, uint64_t *id) {
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_DC;
  o.dc_id = dc;
  o.timeout_ms = timeout_ms;
  return mtc_invoke(h->ctx, &o, q->b, q->n, res_cb, r, id);
}

#define STREAM_MAX 400

/*
 * Renewal without a service gap: a stream of requests to DC 5 (auth.sendCode
 * on the main session every 20 ms, help.getNearestDc on a media session
 * every 100 ms) runs across the renewal point of a 4 s temp key. Every
 * request is answered once and soon; one new temp key and one bind per
 * renewal; nothing runs twice on the server (a request the old key met
 * after the new bind is refused with 401 before it runs: counted apart);
 * the old connection closes and the state file holds the new, bound key.
 */
TEST(renewal_without_gap) {
  env e;
  CHECK_EQ_INT(env_start(&e), 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.temp_key_expires_s = 4; /* renewed 2..3 s after it was made */
  s.media_connections_per_dc = 1;
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body code = q_send_code(), near = q_nearest();
  CHECK_EQ_INT(call_ok(&h, 5, &code), 0);
  char first[17];
  memcpy(first, h.bound_id, sizeof first);
  CHECK(first[0] != 0);
  uint64_t codes0 = ctx_mock_method(e.cl, 5, "auth.sendCode");
  uint64_t near0 = ctx_mock_method(e.cl, 5, "help.getNearestDc");
  uint64_t e401_0 = mock_error(&e, 5, "401 AUTH_KEY_PERM_EMPTY");
  /* 100 ms from DC 5 to us: a round trip costs what it does on a real network */
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "delay_ms=100"), 0);
  static res rs[STREAM_MAX];
  static int64_t sent_at[STREAM_MAX];
  memset(rs, 0, sizeof rs);
  int n = 0, n_media = 0;
  int64_t t0 = mono_ms(), next = t0;
  while (mono_ms() - t0 < 3600 && n < STREAM_MAX) {
    if (mono_ms() >= next) {
      mtc_invoke_options o;
      memset(&o, 0, sizeof o);
      o.dc_id = 5;
      int media = n % 5 == 4;
      o.target = media ? MTC_TARGET_MEDIA : MTC_TARGET_DC;
      const body *q = media ? &near : &code;
      sent_at[n] = mono_ms();
      CHECK_EQ_INT(mtc_invoke(h.ctx, &o, q->b, q->n, res_cb, &rs[n], NULL), 0);
      n++;
      n_media += media;
      next += 20;
    }
    (void)mtc_context_run(h.ctx, 5);
  }
  (void)h_wait_all(&h, rs, n, WAIT_MS); /* a missing one counts in not_ok_once */
  h_idle(&h, 300); /* late duplicates would show here; the old connection closes */
  int64_t worst = 0, worst_at = 0;
  int bad = not_ok_once(rs, n);
  for (int i = 0; i < n; i++) {
    int64_t l = rs[i].at - sent_at[i];
    if (rs[i].calls && l > worst) {
      worst = l;
      worst_at = sent_at[i] - t0;
    }
  }
  fprintf(stderr, "    %d requests (%d media) across the renewal: worst latency %lld ms (sent at +%lld ms)\n",
          n, n_media, (long long)worst, (long long)worst_at);
  CHECK_EQ_INT(bad, 0);
  CHECK(n >= 150);
  /* no gap, shown without a clock: DC 5's main connection never went down
   * (the old renewal closed it, reconnected, and made and bound the key
   * while requests waited); the switch to the new key is one new session */
  CHECK_EQ_INT(h.main_lost[5], 0);
  CHECK(h.recreated >= 1);
  /* one renewal: one more temp key, one more bind, nothing lost */
  mtc_counters c;
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  CHECK_EQ_INT(c.handshakes_perm, 1);
  CHECK_EQ_INT(c.handshakes_temp, 2);
  CHECK_EQ_INT(h.key_created[1], 2);
  CHECK_EQ_INT(h.key_dropped[1], 0);
  mock_sum m;
  mock_totals(&e, &m);
  CHECK_EQ_INT(m.temp, 2);
  CHECK_EQ_INT(m.binds, 2);
  CHECK_EQ_INT(m.t404, 0);
  /* every request ran once: a 401 (old key after the new bind) did not run */
  uint64_t refused = mock_error(&e, 5, "401 AUTH_KEY_PERM_EMPTY") - e401_0;
  fprintf(stderr, "    refused on the old key and resent: %llu\n", (unsigned long long)refused);
  CHECK_EQ_INT(ctx_mock_method(e.cl, 5, "auth.sendCode") - codes0 - refused, (uint64_t)(n - n_media));
  CHECK_EQ_INT(ctx_mock_method(e.cl, 5, "help.getNearestDc") - near0, (uint64_t)n_media);
  /* the old connection is gone: main and one media connection remain */
  CHECK_EQ_INT(mock_dc_conn_count(e.cl, 5), 2);
  /* the state file holds the new key, bound */
  CHECK(strcmp(first, h.bound_id) != 0);
  CHECK_EQ_INT(mtc_context_save(h.ctx), 0);
  char saved[17] = "";
  int bound = 0;
  CHECK_EQ_INT(state_temp_key(e.state_path, 5, saved, &bound), 0);
  CHECK(strcmp(saved, h.bound_id) == 0);
  CHECK_EQ_INT(bound, 1);
  h_stop(&h);
  ctx_env_stop(&e);
}

/* Open and close a TCP connection to 127.0.0.1:port. */
static int tcp_poke(uint16_t port) {
  int fd = test_tcp_connect(port, 2000);
  if (fd < 0) return -1;
  struct timespec ts = {0, 50 * 1000 * 1000}; /* the mock accepts it meanwhile */
  nanosleep(&ts, NULL);
  close(fd);
  return 0;
}

/* The background renewal cannot make its key (DC 5 answers every new
 * connection with transport error -429): requests go on on the old key meanwhile;
 * when the old key expires the old way takes over, and once connections
 * work again a new key is made and bound. */
TEST(renewal_fails_then_old_way) {
  env e;
  mtc_settings s;
  CHECK_EQ_INT(short_key_env(&e, &s), 0);
  s.reconnect_initial_ms = 200;
  s.reconnect_max_ms = 400;
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body q = q_send_code();
  CHECK_EQ_INT(call_ok(&h, 5, &q), 0);
  /* one connection allowed from now on: this one; the renewal's are extra */
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "flood_connects=1,flood_window_ms=30000"), 0);
  CHECK_EQ_INT(tcp_poke(mock_dc_port(e.cl, 5)), 0);
  /* until the renewal (1 s before expiry, 2..3 s after the key was made)
   * has failed once: the old key still serves meanwhile. Waiting for the
   * failure, not a fixed time, keeps a loaded machine from ending the wait
   * just before the renewal starts. */
  mtc_counters c;
  int failed = 0;
  int64_t end = mono_ms() + 3500;
  while (failed == 0 && mono_ms() < end) {
    CHECK_EQ_INT(call_ok(&h, 5, &q), 0);
    h_idle(&h, 100);
    CHECK_EQ_INT(h_counters(&h, &c), 0);
    for (size_t i = 0; i < c.n_dcs; i++)
      if (c.dcs[i].dc_id == 5) failed = (int)c.dcs[i].handshakes_failed;
  }
  CHECK(failed >= 1);
  CHECK_EQ_INT(c.handshakes_temp, 1);
  CHECK_EQ_INT(call_ok(&h, 5, &q), 0); /* after the failure too */
  h_idle(&h, 1200); /* the old key expires: the old way */
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "flood_connects=0"), 0);
  CHECK_EQ_INT(call_ok(&h, 5, &q), 0);
  CHECK_EQ_INT(h_counters(&h, &c), 0);
  CHECK_EQ_INT(c.handshakes_perm, 1);
  CHECK_EQ_INT(c.handshakes_temp, 2);
  mock_sum m;
  mock_totals(&e, &m);
  CHECK_EQ_INT(m.temp, 2);
  CHECK_EQ_INT(m.binds, 2);
  h_stop(&h);
  ctx_env_stop(&e);
}

#define LATE_MAX 64

/*
 * The renewal's bind runs on the server but its answer is late (dropped
 * here): the server unbound the old key, so the main session's requests
 * meet 401 AUTH_KEY_PERM_EMPTY. That must not bind the old key again (it
 * would unbind the new key the DC is about to switch to, and the answer of
 * a bind in flight blocks the fallback): the requests wait for the switch
 * or, as here, for the fallback at expiry, and are answered once.
 */
TEST(renewal_bind_late_old_key_not_rebound) {
  env e;
  mtc_settings s;
  CHECK_EQ_INT(short_key_env(&e, &s), 0);
  s.reconnect_initial_ms = 200;
  s.reconnect_max_ms = 400;
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body q = q_send_code();
  CHECK_EQ_INT(call_ok(&h, 5, &q), 0);
  CHECK_EQ_INT(mock_binds(&e, 5), 1);
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "drop_method=auth.bindTempAuthKey"), 0);
  uint64_t e401_0 = mock_error(&e, 5, "401 AUTH_KEY_PERM_EMPTY");
  static res rs[LATE_MAX];
  memset(rs, 0, sizeof rs);
  int n = 0;
  int64_t t0 = mono_ms(), next = t0, seen = 0;
  while (mono_ms() - t0 < 6000 && n < LATE_MAX) {
    if (!seen && mock_error(&e, 5, "401 AUTH_KEY_PERM_EMPTY") > e401_0) seen = mono_ms();
    if (seen && mono_ms() - seen > 400) break;
    if (mono_ms() >= next) {
      CHECK_EQ_INT(invoke_dc(&h, 5, &q, 0, &rs[n], NULL), 0);
      n++;
      next += 100;
    }
    (void)mtc_context_run(h.ctx, 10);
  }
  CHECK(seen != 0);              /* the renewal's bind unbound the old key */
  CHECK_EQ_INT(h.next_keys, 1);
  CHECK_EQ_INT(h.switched, 0);   /* its answer never came */
  CHECK_EQ_INT(mock_binds(&e, 5), 2); /* the first key and the next one: never the first again */
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "drop_method="), 0);
  CHECK_EQ_INT(h_wait_all(&h, rs, n, WAIT_MS), 0);
  CHECK_EQ_INT(not_ok_once(rs, n), 0);
  h_idle(&h, 200);
  CHECK_EQ_INT(not_ok_once(rs, n), 0);
  h_stop(&h);
  ctx_env_stop(&e);
}

/* Run the context until *flag reaches want (bounded): 0, or -1. */
static int h_until(harness *h, const unsigned *flag, unsigned want, int timeout_ms) {
  int64_t end = mono_ms() + timeout_ms;
  while (*flag < want && mono_ms() < end) (void)mtc_context_run(h->ctx, 10);
  return *flag >= want ? 0 : -1;
}

/*
 * Requests left on the retired slot (the old main session after a switch;
 * their answers never come here) end the ways an application ends them:
 * one cancelled, one timed out, one still in flight when the context is
 * freed. Each gets one result; none is resent; the old connection stays
 * while a request is in flight on it; the new main session serves.
 */
TEST(retired_requests_cancel_timeout_free) {
  env e;
  mtc_settings s;
  CHECK_EQ_INT(short_key_env(&e, &s), 0);
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body code = q_send_code(), near = q_nearest();
  CHECK_EQ_INT(call_ok(&h, 5, &code), 0);
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "drop_method=help.getNearestDc"), 0);
  uint64_t near0 = ctx_mock_method(e.cl, 5, "help.getNearestDc");
  res a, b, c;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&c, 0, sizeof c);
  uint64_t c_id = 0;
  CHECK_EQ_INT(invoke_dc(&h, 5, &near, 0, &a, NULL), 0);
  CHECK_EQ_INT(invoke_dc(&h, 5, &near, 0, &c, &c_id), 0);
  CHECK_EQ_INT(h_until(&h, &h.due_bg, 1, 5000), 0);
  CHECK_EQ_INT(invoke_dc(&h, 5, &near, 300, &b, NULL), 0); /* times out after the switch */
  CHECK_EQ_INT(h_until(&h, &h.switched, 1, 3000), 0);
  CHECK_EQ_INT(a.calls + b.calls + c.calls, 0);
  CHECK_EQ_INT(ctx_mock_method(e.cl, 5, "help.getNearestDc") - near0, 3);
  CHECK_EQ_INT(mock_dc_conn_count(e.cl, 5), 2); /* the new main and the retired one */
  CHECK_EQ_INT(mtc_cancel(h.ctx, c_id), 0);
  CHECK_EQ_INT(c.calls, 1);
  CHECK_EQ_INT(c.kind, MTC_RESULT_CANCELLED);
  CHECK_EQ_INT(h_wait(&h, &b, 1000), 0);
  CHECK_EQ_INT(b.kind, MTC_RESULT_ERROR);
  CHECK_EQ_INT(b.error, MTC_ERR_TIMEOUT);
  CHECK_EQ_INT(call_ok(&h, 5, &code), 0); /* the new session */
  h_idle(&h, 100); /* (well before the old key expires: it would end the retired session) */
  CHECK_EQ_INT(a.calls, 0);
  CHECK_EQ_INT(mock_dc_conn_count(e.cl, 5), 2); /* a is still in flight on the old one */
  CHECK_EQ_INT(ctx_mock_method(e.cl, 5, "help.getNearestDc") - near0, 3); /* none resent */
  h_stop(&h); /* a on the retired slot: cancelled once, nothing leaks (ASan) */
  CHECK_EQ_INT(a.calls, 1);
  CHECK_EQ_INT(a.kind, MTC_RESULT_CANCELLED);
  CHECK_EQ_INT(b.calls + c.calls, 2);
  ctx_res_clear(&a);
  ctx_res_clear(&b);
  ctx_res_clear(&c);
  ctx_env_stop(&e);
}

/*
 * The context is freed while a renewal is under way: the next key is made
 * and its bind done on the server, but the answer never came. Nothing
 * leaks (ASan), the state file only ever holds the bound first key, never
 * the next one, and the next run works from it.
 */
TEST(free_mid_renewal_state_keeps_bound_key) {
  env e;
  CHECK_EQ_INT(env_start(&e), 0);
  mtc_settings s;
  env_settings(&e, &s);
  s.temp_key_expires_s = 4;
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body code = q_send_code();
  CHECK_EQ_INT(call_ok(&h, 5, &code), 0);
  char first[17];
  memcpy(first, h.bound_id, sizeof first);
  CHECK(first[0] != 0);
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "drop_method=auth.bindTempAuthKey"), 0);
  int64_t end = mono_ms() + 5000;
  while (mock_binds(&e, 5) < 2 && mono_ms() < end) (void)mtc_context_run(h.ctx, 10);
  CHECK_EQ_INT(mock_binds(&e, 5), 2);
  CHECK_EQ_INT(h.next_keys, 1);
  CHECK_EQ_INT(h.switched, 0);
  CHECK(strcmp(h.next_id, first) != 0);
  CHECK_EQ_INT(mtc_context_save(h.ctx), 0);
  char saved[17] = "";
  int bound = 0;
  CHECK_EQ_INT(state_temp_key(e.state_path, 5, saved, &bound), 0);
  CHECK(strcmp(saved, first) == 0);
  CHECK_EQ_INT(bound, 1);
  char next[17];
  memcpy(next, h.next_id, sizeof next);
  h_stop(&h);
  CHECK_EQ_INT(state_temp_key(e.state_path, 5, saved, &bound), 0);
  CHECK(strcmp(saved, first) == 0);
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "drop_method="), 0);
  CHECK_EQ_INT(h_start(&h, &s), 0);
  CHECK_EQ_INT(call_ok(&h, 5, &code), 0);
  CHECK_EQ_INT(mtc_context_save(h.ctx), 0);
  CHECK_EQ_INT(state_temp_key(e.state_path, 5, saved, &bound), 0);
  CHECK(strcmp(saved, next) != 0);
  CHECK(strcmp(saved, h.bound_id) == 0);
  CHECK_EQ_INT(bound, 1);
  h_stop(&h);
  ctx_env_stop(&e);
}

/*
 * A media request in flight over the switch whose answer never comes keeps
 * the media session on the old key (it takes no new requests meanwhile).
 * Once the old key expires the server answers that session's connection
 * with -404: only that session goes (its request is resent on the new
 * key), the DC's new key stays, and the waiting request is served too.
 */
TEST(media_old_key_session_ends_on_404) {
  env e;
  mtc_settings s;
  CHECK_EQ_INT(short_key_env(&e, &s), 0);
  s.media_connections_per_dc = 1;
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body code = q_send_code(), near = q_nearest();
  CHECK_EQ_INT(call_ok(&h, 5, &code), 0);
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "drop_method=help.getNearestDc"), 0);
  res a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.target = MTC_TARGET_MEDIA;
  o.dc_id = 5;
  CHECK_EQ_INT(mtc_invoke(h.ctx, &o, near.b, near.n, res_cb, &a, NULL), 0);
  CHECK_EQ_INT(h_until(&h, &h.switched, 1, 6000), 0);
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "drop_method="), 0);
  CHECK_EQ_INT(mtc_invoke(h.ctx, &o, near.b, near.n, res_cb, &b, NULL), 0);
  CHECK_EQ_INT(h_wait(&h, &b, 5000), 0);
  CHECK_EQ_INT(h_wait(&h, &a, 1000), 0);
  h_idle(&h, 100);
  CHECK_EQ_INT(a.calls, 1);
  CHECK_EQ_INT(a.kind, MTC_RESULT_OK);
  CHECK_EQ_INT(b.calls, 1);
  CHECK_EQ_INT(b.kind, MTC_RESULT_OK);
  mock_sum m;
  mock_totals(&e, &m);
  CHECK_EQ_INT(m.t404, 1);          /* the old key's session */
  CHECK_EQ_INT(h.key_dropped[1], 0); /* the DC's key is not the one the server forgot */
  CHECK_EQ_INT(m.temp, 2);
  CHECK_EQ_INT(m.binds, 2);
  CHECK_EQ_INT(call_ok(&h, 5, &code), 0);
  ctx_res_clear(&a);
  ctx_res_clear(&b);
  h_stop(&h);
  ctx_env_stop(&e);
}

/*
 * The DC's main connection dies while the background renewal runs (a 4 s
 * key: within the last 2 s of the old key). The main slot reconnects on the
 * old key, which still serves, instead of dropping it (that would stop the
 * renewal and make the key the old way); the renewal switches over as
 * usual and every request is answered once.
 */
TEST(main_lost_during_renewal_keeps_renewal) {
  env e;
  mtc_settings s;
  CHECK_EQ_INT(short_key_env(&e, &s), 0);
  harness h;
  CHECK_EQ_INT(h_start(&h, &s), 0);
  body code = q_send_code();
  for (int i = 0; i < 12; i++) CHECK_EQ_INT(call_ok(&h, 5, &code), 0); /* main: > 12 frames */
  CHECK_EQ_INT(h_until(&h, &h.due_bg, 1, 5000), 0);
  /* the main connection closes at its next frame; the renewal's needs fewer */
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "close_after_frames=12"), 0);
  res r;
  memset(&r, 0, sizeof r);
  CHECK_EQ_INT(invoke_dc(&h, 5, &code, 0, &r, NULL), 0);
  CHECK_EQ_INT(h_until(&h, &h.main_lost[5], 1, 2000), 0);
  CHECK_EQ_INT(h_until(&h, &h.switched, 1, 2000), 0);
  CHECK_EQ_INT(ctx_set_fault(e.cl, 5, "close_after_frames=0"), 0);
  CHECK_EQ_INT(h_wait(&h, &r, WAIT_MS), 0);
  CHECK_EQ_INT(r.calls, 1);
  CHECK_EQ_INT(r.kind, MTC_RESULT_OK);
  CHECK_EQ_INT(call_ok(&h, 5, &code), 0);
  CHECK_EQ_INT(h.key_dropped[1], 0);
  mock_sum m;
  mock_totals(&e, &m);
  CHECK_EQ_INT(m.temp, 2); /* the first key and the renewal's: none the old way */
  CHECK_EQ_INT(m.binds, 2);
  ctx_res_clear(&r);
  h_stop(&h);
  ctx_env_stop(&e);
}

TEST_MAIN("context_pfs", CASE(login_flow_then_restart), CASE(temp_key_404_replaced_perm_kept),
          CASE(unbound_temp_key_rebound), CASE(short_lifetime_renewed_before_expiry),
          CASE(handshake_offset_refined_by_sessions), CASE(renewal_without_gap),
          CASE(renewal_fails_then_old_way),
          CASE(renewal_bind_late_old_key_not_rebound),
          CASE(retired_requests_cancel_timeout_free), CASE(free_mid_renewal_state_keeps_bound_key),
          CASE(media_old_key_session_ends_on_404),
          CASE(main_lost_during_renewal_keeps_renewal))
