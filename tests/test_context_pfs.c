/*
 * The MTContext with settings.pfs = 1 against the mock cluster (tests/mockdc):
 * temporary keys made on the same connection as the perm key, bound with
 * auth.bindTempAuthKey (the mock checks the sealed bind_auth_key_inner,
 * msg_id and session included), persisted, replaced after -404 and renewed
 * before they expire. The context runs in mtc_context_run mode here
 * (test_context.c covers the loop modes).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
} harness;

static void cb_event(void *ud, const mtc_event *ev) {
  harness *h = ud;
  if (ev->type == MTC_EVENT_AUTH_KEY_CREATED) h->key_created[ev->temp ? 1 : 0]++;
  if (ev->type == MTC_EVENT_AUTH_KEY_DROPPED) h->key_dropped[ev->temp ? 1 : 0]++;
}

static void cb_log(void *ud, mtc_log_level level, const char *line) {
  (void)ud;
  if (g_verbose) fprintf(stderr, "    [%lld %d] %s\n", (long long)(mono_ms() % 100000), level, line);
}

static int h_start(harness *h, const mtc_settings *s) {
  memset(h, 0, sizeof *h);
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

TEST_MAIN("context_pfs", CASE(login_flow_then_restart), CASE(temp_key_404_replaced_perm_kept),
          CASE(unbound_temp_key_rebound),
          CASE(short_lifetime_renewed_before_expiry))
