/*
 * The MTContext, pure part (see context.h for the model and the split).
 * Every side effect goes through ctx->io; time is read once per entry.
 */
#include "context.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/bind.h"
#include "bytes.h"
#include "mtconn/tl_api.h"
#include "tl/tl.h"

enum { TR_NONE = 0, TR_EXPORT, TR_IMPORT, TR_DONE, TR_FAILED };

static const char *const k_str_names[6] = {"device_model",     "system_version", "app_version",
                                           "system_lang_code", "lang_pack",      "lang_code"};

/* ---- small helpers --------------------------------------------------------------- */

static int64_t now_of(mtc_context *ctx) { return ctx->io.now_ms(ctx->io.ud); }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

#define dcx_at(ctx, i) mtci_ctx_dcx((ctx), (size_t)(i))
static mtci_dc *dc_of(mtc_context *ctx, const mtci_slot *s) { return ctx->dcs.dcs[s->dci]; }
static mtci_ctx_dc *dcx_of(mtc_context *ctx, const mtci_slot *s) { return dcx_at(ctx, s->dci); }
static int dc_id_of(const mtc_context *ctx, const mtci_slot *s) { return ctx->dcs.dcs[s->dci]->id; }

/* Every slot of a DC: k < K_SLOTS (the hidden PFS renewal slots last). */
enum { K_RENEW = MTCI_CTX_MAX_MEDIA + 1, K_RETIRED, K_SLOTS };

/* Slot k of DC i: 0 = main, 1.. = media, then the renewal slots; NULL for a
 * media slot of a DC that never had media work (its media slots are not
 * allocated) or a renewal slot of a DC never renewed in the background. */
static mtci_slot *slot_at(mtc_context *ctx, size_t i, int k) {
  mtci_ctx_dc *x = dcx_at(ctx, i);
  if (k == 0) return &x->main;
  if (k <= MTCI_CTX_MAX_MEDIA) return x->media ? &x->media[k - 1] : NULL;
  if (!x->rn) return NULL;
  return k == K_RENEW ? &x->rn->slot : &x->rn->retired;
}
static const mtci_slot *slot_at_c(const mtc_context *ctx, size_t i, int k) {
  return slot_at((mtc_context *)ctx, i, k);
}

/* The DC's media slots, allocated on first use: 0 or MTC_ERR_NOMEM. */
static int media_alloc(mtci_ctx_dc *x) {
  if (x->media) return 0;
  x->media = calloc(MTCI_CTX_MAX_MEDIA, sizeof *x->media);
  if (!x->media) return MTC_ERR_NOMEM;
  for (int j = 0; j < MTCI_CTX_MAX_MEDIA; j++) {
    x->media[j].dci = x->main.dci;
    x->media[j].media = 1;
    x->media[j].index = j + 1;
  }
  return 0;
}

/* The table's ext_init: a new DC record's context data. */
static void dcx_init(void *ud, mtci_dc *dc) {
  (void)ud;
  mtci_ctx_dc *x = dc->ext;
  x->main.dci = (int)dc->index;
  x->main.used = 1;
}

static size_t slot_dials(const mtci_slot *s) {
  size_t n = 0;
  for (int k = 0; k < MTCI_CTX_RACE; k++) n += s->dials[k] != NULL;
  return n;
}

static const char *slot_kind(const mtci_slot *s) {
  return s->hidden == 1 ? "renewal" : s->hidden == 2 ? "retired" : s->media ? "media" : "main";
}

int mtci_ctx_cands_alloc(mtci_slot *s) {
  if (!s->cands) {
    s->cands = calloc(MTCI_DC_MAX_ADDRS, sizeof *s->cands);
    if (!s->cands) return MTC_ERR_NOMEM;
  }
  return 0;
}

void mtci_ctx_cands_drop(mtci_slot *s) {
  free(s->cands);
  s->cands = NULL;
  s->n_cands = s->next_cand = 0;
}

static void slot_reset(mtci_slot *s) {
  int dci = s->dci, media = s->media, index = s->index, hidden = s->hidden;
  mtci_ctx_cands_drop(s);
  if (s->has_sess) mtci_session_free(s->sess);
  free(s->sess);
  memset(s, 0, sizeof *s);
  s->dci = dci;
  s->media = media;
  s->index = index;
  s->hidden = hidden;
}

void mtci_ctx_log(mtc_context *ctx, int level, const char *fmt, ...) {
  if (!ctx->cb.on_log || level > ctx->set.log_level) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  ctx->cb.on_log(ctx->user_data, (mtc_log_level)level, line);
}

#define LOGE(...) mtci_ctx_log(ctx, MTC_LOG_ERROR, __VA_ARGS__)
#define LOGW(...) mtci_ctx_log(ctx, MTC_LOG_WARN, __VA_ARGS__)
#define LOGI(...) mtci_ctx_log(ctx, MTC_LOG_INFO, __VA_ARGS__)
#define LOGD(...) mtci_ctx_log(ctx, MTC_LOG_DEBUG, __VA_ARGS__)

static void emit(mtc_context *ctx, const mtc_event *ev) {
  if (ctx->closing || !ctx->cb.on_event) return;
  ctx->cb.on_event(ctx->user_data, ev);
}

static void report(mtc_context *ctx, mtci_slot *s, mtc_conn_state st, int reason) {
  if (s->hidden) return; /* the application sees the main slot only */
  if (s->reported == (int)st && st != MTC_CONN_RECONNECTING) return;
  s->reported = (int)st;
  mtc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = MTC_EVENT_CONN_STATE;
  ev.dc_id = dc_id_of(ctx, s);
  ev.media = s->media;
  ev.index = s->index;
  ev.state = st;
  ev.reason = reason;
  emit(ctx, &ev);
}

static void note_reason(mtc_dc_counters *c, int reason) {
  for (size_t i = 0; i < c->n_reconnect_reasons; i++) {
    if (c->reconnect_reasons[i].reason == reason) {
      c->reconnect_reasons[i].count++;
      return;
    }
  }
  if (c->n_reconnect_reasons < MTCI_CTX_MAX_REASONS) {
    c->reconnect_reasons[c->n_reconnect_reasons].reason = reason;
    c->reconnect_reasons[c->n_reconnect_reasons].count = 1;
    c->n_reconnect_reasons++;
  }
}

/* DC table index of dc_id, appended if missing; -1 if out of range / full. */
static int dc_index(mtc_context *ctx, int dc_id) {
  mtci_dc *dc = mtci_dc_get(&ctx->dcs, dc_id);
  return dc ? (int)(dc->index) : -1;
}

static int slot_wanted(const mtc_context *ctx, const mtci_slot *s);

/* ---- requests ------------------------------------------------------------------------ */

static void req_link(mtc_context *ctx, mtci_req *r) {
  r->prev = ctx->tail;
  r->next = NULL;
  if (ctx->tail) ctx->tail->next = r;
  else ctx->head = r;
  ctx->tail = r;
  ctx->n_reqs++;
}

static void req_unlink(mtc_context *ctx, mtci_req *r) {
  if (r->prev) r->prev->next = r->next;
  else ctx->head = r->next;
  if (r->next) r->next->prev = r->prev;
  else ctx->tail = r->prev;
  r->next = r->prev = NULL;
  ctx->n_reqs--;
}

static void req_free(mtci_req *r) {
  if (!r) return;
  if (r->body) {
    mtci_zeroize(r->body, r->len);
    free(r->body);
  }
  free(r);
}

static mtci_req *req_new(mtc_context *ctx, int kind, mtc_target target, int dc_id,
                         const uint8_t *body, size_t len) {
  mtci_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->body = malloc(len);
  if (!r->body) {
    free(r);
    return NULL;
  }
  memcpy(r->body, body, len);
  r->len = len;
  r->kind = kind;
  r->target = target;
  r->dc_id = dc_id;
  r->id = ctx->next_id++;
  r->state = MTCI_RS_PENDING;
  r->open_reason = kind == MTCI_REQ_CONFIG ? MTC_REASON_DISCOVERY
                   : target == MTC_TARGET_MEDIA ? MTC_REASON_MEDIA
                                                : MTC_REASON_MAIN;
  req_link(ctx, r);
  ctx->changed = 1;
  return r;
}

static mtci_req *req_find(const mtc_context *ctx, uint64_t id) {
  for (mtci_req *r = ctx->head; r; r = r->next)
    if (r->id == id) return r;
  return NULL;
}

static void internal_done(mtc_context *ctx, mtci_req *r, int kind, int dc_id, const uint8_t *data,
                          size_t len, int err);

/*
 * The one place a request ends: out of its session, out of the list, the
 * callback (app) or the internal continuation, freed. data/msg are borrowed.
 */
static void req_finish(mtc_context *ctx, mtci_req *r, mtc_result_kind kind, int dc_id,
                       const uint8_t *data, size_t len, int32_t code, const char *msg, int err) {
  if (r->state == MTCI_RS_SENT && r->slot && r->slot->has_sess)
    (void)mtci_session_cancel(r->slot->sess, r->id);
  req_unlink(ctx, r);
  ctx->changed = 1;
  if (r->kind == MTCI_REQ_APP) {
    mtc_result res;
    memset(&res, 0, sizeof res);
    res.kind = kind;
    res.request_id = r->id;
    res.dc_id = dc_id;
    res.data = data;
    res.len = len;
    res.rpc_code = code;
    res.rpc_message = kind == MTC_RESULT_RPC_ERROR ? (msg ? msg : "") : NULL;
    res.error = err;
    if (r->fn) r->fn(r->ud, &res);
  } else if (!ctx->closing) {
    internal_done(ctx, r, (int)kind, dc_id, data, len, kind == MTC_RESULT_RPC_ERROR ? code : err);
  }
  req_free(r);
}

/* mtc_invoke promises its callback never runs inside the call, yet the pump
 * runs there and may fail the new request at once (no address, a connect
 * refused at once, a timeout already past): such a failure is held, out of
 * every slot, and expire() delivers it from the next round (~1 ms). */
static void req_fail(mtc_context *ctx, mtci_req *r, int err) {
  if (r->id == ctx->invoking && r->kind == MTCI_REQ_APP && err != MTC_ERR_CANCELLED &&
      !ctx->closing) {
    if (r->state == MTCI_RS_SENT && r->slot && r->slot->has_sess)
      (void)mtci_session_cancel(r->slot->sess, r->id);
    r->slot = NULL;
    r->state = MTCI_RS_WAIT_FLOOD;
    r->held_err = err;
    r->deadline = 0;
    r->wake_at = now_of(ctx) + 1;
    ctx->changed = 1;
    return;
  }
  req_finish(ctx, r, err == MTC_ERR_CANCELLED ? MTC_RESULT_CANCELLED : MTC_RESULT_ERROR, 0, NULL,
             0, 0, NULL, err);
}

/* Back to PENDING (out of any session it was in). */
static void req_requeue(mtc_context *ctx, mtci_req *r) {
  if (r->state == MTCI_RS_SENT && r->slot && r->slot->has_sess)
    (void)mtci_session_cancel(r->slot->sess, r->id);
  r->state = MTCI_RS_PENDING;
  r->slot = NULL;
  ctx->changed = 1;
}

/* Fail every request routed to slot s. */
static void fail_slot_requests(mtc_context *ctx, mtci_slot *s, int err) {
  for (int guard = 0; guard < 1000000; guard++) {
    mtci_req *r = ctx->head;
    while (r && !(r->slot == s && (r->state == MTCI_RS_SENT || r->state == MTCI_RS_PENDING)))
      r = r->next;
    if (!r) break;
    req_fail(ctx, r, err);
  }
}

/* ---- persistence -------------------------------------------------------------------- */

static int save_now(mtc_context *ctx, int64_t now) {
  mtci_state *st = calloc(1, sizeof *st);
  if (!st) return MTC_ERR_NOMEM;
  mtci_state_init(st);
  st->test_dcs = ctx->set.test_dcs;
  st->main_dc = ctx->main_dc;
  st->time_offset_ms = ctx->time_offset_ms;
  st->discovered = ctx->discovered;
  mtci_dc_table_to_state(&ctx->dcs, st);
  char msg[256] = "";
  int rc = ctx->io.save(ctx->io.ud, st, msg, sizeof msg);
  mtci_state_clear(st);
  free(st);
  int major = ctx->dirty;
  ctx->dirty = 0;
  ctx->dirty_minor = 0;
  ctx->last_save_ms = now;
  if (rc == 0) {
    ctx->saves++;
    LOGD("state saved");
  } else if (rc != MTC_ERR_UNSUPPORTED) {
    ctx->save_errors++;
    ctx->dirty_minor = 1; /* try again after the throttle */
    LOGE("state save failed: %s (%s)", mtc_strerror(rc), msg[0] ? msg : "no detail");
  }
  if (rc == 0 || major) {
    mtc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = MTC_EVENT_STATE_CHANGED;
    ev.reason = rc;
    emit(ctx, &ev);
  }
  return rc;
}

static void maybe_save(mtc_context *ctx, int64_t now) {
  if (ctx->dirty || (ctx->dirty_minor && now - ctx->last_save_ms >= MTCI_CTX_SAVE_THROTTLE_MS))
    (void)save_now(ctx, now);
}

/* ---- main DC and authorization ---------------------------------------------------------- */

static void set_main_dc(mtc_context *ctx, int dc_id) {
  if (dc_id == ctx->main_dc) return;
  int old = ctx->main_dc;
  ctx->main_dc = dc_id;
  (void)mtci_dc_get(&ctx->dcs, dc_id);
  ctx->dirty = 1;
  ctx->changed = 1;
  LOGI("main DC %d -> %d", old, dc_id);
  mtc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = MTC_EVENT_MAIN_DC_CHANGED;
  ev.dc_id = dc_id;
  ev.old_dc_id = old;
  emit(ctx, &ev);
}

static void set_authorized(mtc_context *ctx, int dc_id, int v, int via_import) {
  mtci_dc *dc = mtci_dc_find(&ctx->dcs, dc_id);
  if (!dc || !dc->has_perm) return;
  if ((dc->authorized != 0) == (v != 0)) return;
  if (v && !via_import && dc_id == ctx->main_dc) {
    /* a new login on the home DC: what other DCs imported was the old one's */
    for (size_t i = 0; i < ctx->dcs.n; i++) {
      if (ctx->dcs.dcs[i]->id == dc_id) continue;
      ctx->dcs.dcs[i]->authorized = 0;
      dcx_at(ctx, i)->transfer = TR_NONE;
    }
  }
  dc->authorized = v ? 1 : 0;
  if (!v) dcx_at(ctx, dc->index)->transfer = TR_NONE;
  ctx->dirty = 1;
  LOGI("dc %d: %s", dc_id, v ? "authorized" : "not authorized");
}

/* ---- sessions ------------------------------------------------------------------------ */

static int ensure_session(mtc_context *ctx, mtci_slot *s, int64_t now, int64_t min_msg_id) {
  if (s->has_sess) return 0;
  mtci_dc *dc = dc_of(ctx, s);
  const mtci_ctx_renewal *rn = dcx_of(ctx, s)->rn;
  if (!dc->has_perm || (ctx->set.pfs && !dc->has_temp)) return MTC_ERR_INTERNAL;
  if (s->hidden == 2 || (s->hidden == 1 && !(rn && rn->has_key))) return MTC_ERR_INTERNAL;
  mtci_session_config c;
  memset(&c, 0, sizeof c);
  /* with PFS every session runs on the temp key (the renewal slot's on the next one) */
  if (s->hidden == 1) {
    memcpy(c.auth_key, rn->key, MTCI_AUTH_KEY_LEN);
    c.server_salt = rn->salt;
    s->key_id = rn->key_id;
  } else {
    memcpy(c.auth_key, ctx->set.pfs ? dc->temp_key : dc->perm_key, MTCI_AUTH_KEY_LEN);
    c.server_salt = dc->salt;
    s->key_id = ctx->set.pfs ? dc->temp_key_id : dc->perm_key_id;
  }
  c.time_offset_ms = ctx->time_offset_ms;
  c.time_synced = ctx->time_synced;
  c.min_msg_id = min_msg_id;
  c.api_id = ctx->set.api_id;
  c.device_model = ctx->set.strs[0];
  c.system_version = ctx->set.strs[1];
  c.app_version = ctx->set.strs[2];
  c.system_lang_code = ctx->set.strs[3];
  c.lang_pack = ctx->set.strs[4];
  c.lang_code = ctx->set.strs[5];
  c.ping_interval_ms = ctx->set.ping_interval_ms;
  c.ping_disconnect_delay_s = ctx->set.ping_disconnect_s;
  mtci_policy_liveness(-1, &c.probe_after_ms, &c.dead_after_ms);
  if (ctx->set.has_proxy && ctx->set.proxy.type == MTCI_PROXY_MTPROTO) {
    c.init_proxy_address = ctx->set.proxy.host; /* as the link gave it */
    c.init_proxy_port = ctx->set.proxy.port;
  }
  c.random_padding = ctx->set.has_proxy && ctx->set.proxy.type == MTCI_PROXY_MTPROTO &&
                     (ctx->set.proxy.secret.kind == MTCI_SECRET_DD ||
                      ctx->set.proxy.secret.kind == MTCI_SECRET_EE);
  c.rnd = ctx->rnd;
  c.rnd_ud = ctx->rnd_ud;
  /* the session is allocated only while the slot has one (idle slots hold none) */
  if (!s->sess) s->sess = calloc(1, sizeof *s->sess);
  int rc = s->sess ? mtci_session_init(s->sess, &c, now) : MTC_ERR_NOMEM;
  mtci_zeroize(&c, sizeof c);
  if (rc) {
    free(s->sess);
    s->sess = NULL;
    return rc;
  }
  mtci_session_on_disconnect(s->sess);
  s->has_sess = 1;
  s->sess_news = 0;
  if (s->sess_recreated) s->sess_recreated = 2; /* reported by the pump (no callback here) */
  return 0;
}

static void emit_recreated(mtc_context *ctx, mtci_slot *s) {
  mtc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = MTC_EVENT_SESSION_RECREATED;
  ev.dc_id = dc_id_of(ctx, s);
  ev.media = s->media;
  ev.index = s->index;
  emit(ctx, &ev);
}

/* Drop the session: its requests go back to PENDING. */
static void free_session(mtc_context *ctx, mtci_slot *s) {
  if (!s->has_sess) return;
  for (mtci_req *r = ctx->head; r; r = r->next) {
    if (r->slot == s && r->state == MTCI_RS_SENT) {
      r->state = MTCI_RS_PENDING;
      r->slot = NULL;
    }
  }
  if (s->conn) mtci_conn_detach(s->conn);
  mtci_ctx_dc *x = dcx_of(ctx, s);
  if (x->bind.slot == s) x->bind.slot = NULL;
  if (x->rn && x->rn->bind.slot == s) x->rn->bind.slot = NULL;
  mtci_session_free(s->sess);
  free(s->sess);
  s->sess = NULL;
  s->has_sess = 0;
  ctx->changed = 1;
}

/* ---- connections ------------------------------------------------------------------------- */

static void close_conn(mtc_context *ctx, mtci_slot *s, mtci_conn *c) {
  mtci_ctx_dc *x = dcx_of(ctx, s);
  x->bytes_in_closed += mtci_conn_bytes_in(c);
  x->bytes_out_closed += mtci_conn_bytes_out(c);
  if (c->fd >= 0) ctx->io.hangup(ctx->io.ud, c->fd);
  mtci_conn_free(c);
  free(c);
}

static void attempt_failed(mtc_context *ctx, mtci_slot *s, int err, int64_t now);
static void conn_lost(mtc_context *ctx, mtci_slot *s, int err, int64_t now);
static void drain(mtc_context *ctx, mtci_slot *s, int64_t now);
static void dial_next(mtc_context *ctx, mtci_slot *s, int64_t now);

static void give_up(mtc_context *ctx, mtci_slot *s, int err) {
  s->gave_up = 1;
  mtci_ctx_cands_drop(s);
  LOGW("dc %d (%s %d): giving up: %s", dc_id_of(ctx, s), slot_kind(s), s->index, mtc_strerror(err));
  report(ctx, s, MTC_CONN_FAILED, err);
  fail_slot_requests(ctx, s,
                     err == MTC_ERR_NO_ADDRESS || err == MTC_ERR_UNREACHABLE || err == MTC_ERR_PROXY_HOST
                         ? err
                         : MTC_ERR_CONNECT);
}

static void attempt_failed(mtc_context *ctx, mtci_slot *s, int err, int64_t now) {
  mtci_ctx_dc *x = dcx_of(ctx, s);
  s->failures++;
  int64_t d = mtci_policy_backoff_ms(ctx->set.reconnect_initial_ms, ctx->set.reconnect_max_ms,
                                     s->failures, s->flood);
  s->flood = 0;
  s->retry_at = now + d;
  ctx->changed = 1;
  if (s->failures >= ctx->set.max_attempts) {
    /* a discovery run may help (the renewal slots: the main slot's business) */
    if (s->hidden || !mtci_ctx_disc_hold(ctx, s, err, now)) give_up(ctx, s, err);
    return;
  }
  if (slot_wanted(ctx, s)) {
    x->ctr.reconnects++;
    note_reason(&x->ctr, err);
    LOGI("dc %d (%s %d): attempt %d failed (%s), next in %lld ms", dc_id_of(ctx, s), slot_kind(s),
         s->index, s->failures, mtc_strerror(err), (long long)d);
    report(ctx, s, MTC_CONN_RECONNECTING, err);
  } else {
    report(ctx, s, MTC_CONN_CLOSED, err);
  }
}

static void renewal_clear(mtc_context *ctx, mtci_ctx_dc *x);

/* The DC's key changed: a finished (or failed) authorization transfer no
 * longer holds; one under way (export or import) goes on with the new key,
 * so requests waiting for it never start a second transfer. */
static void transfer_forget(mtci_ctx_dc *x) {
  if (x->transfer != TR_EXPORT && x->transfer != TR_IMPORT) x->transfer = TR_NONE;
}

static void drop_key(mtc_context *ctx, size_t dci, int reason, int64_t now) {
  mtci_dc *dc = ctx->dcs.dcs[dci];
  mtci_ctx_dc *x = dcx_at(ctx, dci);
  if (!dc->has_perm) return;
  uint64_t key_id = dc->perm_key_id;
  renewal_clear(ctx, x);
  for (int k = 0; k <= MTCI_CTX_MAX_MEDIA; k++) {
    mtci_slot *s = slot_at(ctx, dci, k);
    if (!s || !s->used) continue;
    for (int j = 0; j < MTCI_CTX_RACE; j++) {
      if (s->dials[j]) {
        close_conn(ctx, s, s->dials[j]);
        s->dials[j] = NULL;
      }
    }
    if (s->conn) {
      close_conn(ctx, s, s->conn);
      s->conn = NULL;
      report(ctx, s, MTC_CONN_RECONNECTING, reason);
    }
    if (s->has_sess) {
      free_session(ctx, s);
      s->sess_recreated = 1;
    }
    mtci_ctx_cands_drop(s);
    s->retry_at = now;
  }
  mtci_dc_drop_perm_key(dc);
  x->keying = NULL;
  x->renewing = 0;
  transfer_forget(x);
  ctx->dirty = 1;
  ctx->changed = 1;
  LOGW("dc %d: the server forgot auth key %016llx; making a new one", dc->id,
       (unsigned long long)key_id);
  mtc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = MTC_EVENT_AUTH_KEY_DROPPED;
  ev.dc_id = dc->id;
  ev.key_id = key_id;
  ev.reason = reason;
  emit(ctx, &ev);
}

/* ---- PFS: temporary keys (PROTOCOL.md §6.8) ---------------------------------------------------
 *
 * With settings.pfs every session runs on a temporary key per DC, made on
 * the same connection right after the perm key (or first thing when the
 * perm key is known) and bound with auth.bindTempAuthKey as the session's
 * first request. API requests wait until the DC's temp key is bound
 * (dc_usable). -404 on a temp key drops it only (the perm key stays); 401
 * AUTH_KEY_PERM_EMPTY marks it unbound: rebind, then resend.
 *
 * Renewal, at 75% of the lifetime (pfs_renew), without a gap in service:
 *   1. A hidden renewal slot (mtci_ctx_renewal.slot) dials the DC, makes
 *      the next temp key and binds it in a session of its own, while the
 *      main slot goes on serving on the old key.
 *   2. Bound: the new key becomes the DC's (saved), the renewal slot's
 *      connection and session become the main slot's, and new requests go
 *      there at once. The old main session moves to the retired slot and
 *      keeps its connection until its requests are answered (never resent
 *      in a new session: that would run them twice), then closes. The
 *      server unbinds the old key with the new bind, so a request the old
 *      key carries after it gets 401 AUTH_KEY_PERM_EMPTY, which the server
 *      answers without running it: that one is simply resent on the new
 *      session. Media sessions on the old key take no new requests and
 *      close once their requests are answered (at once if idle); their
 *      next connection runs on the new key (no handshake of their own).
 *   3. Failures (connect, handshake, bind) retry with the usual back-off;
 *      when the renewal slot gives up, or the old key expires before a new
 *      one is bound, the old way takes over: no new requests for the DC,
 *      and once none is in flight the key is dropped, the connections
 *      close and the next connection makes and binds a new key. A DC
 *      without connections at the renewal point is renewed that way too
 *      (it has nothing to keep going).
 */

enum { RENEW_NONE = 0, RENEW_BACKGROUND, RENEW_STOPPED };

#define MTCI_CTX_BIND_TOKEN UINT64_MAX /* session token of auth.bindTempAuthKey */
/* cdd42a05 perm_auth_key_id:long nonce:long expires_at:int encrypted_message:bytes(104) */
#define MTCI_CTX_BIND_BODY_LEN (4 + 8 + 8 + 4 + 1 + MTCI_BIND_MSG_LEN + 3)

static int64_t server_now_s(const mtc_context *ctx, int64_t now) {
  return (now + ctx->time_offset_ms) / 1000;
}

/* Server time at which the temp key is due: 75% of its lifetime. */
static int64_t temp_renew_at(const mtc_context *ctx, const mtci_dc *dc) {
  return dc->temp_expires_at - ctx->set.temp_expires_s / 4;
}

/* The DC can take API requests: a perm key and, with PFS, a bound temp key
 * that is not being replaced the old way. */
static int dc_usable(const mtc_context *ctx, size_t dci) {
  const mtci_dc *dc = ctx->dcs.dcs[dci];
  if (!dc->has_perm) return 0;
  if (!ctx->set.pfs) return 1;
  return dc->has_temp && dc->temp_bound && dcx_at(ctx, dci)->renewing != RENEW_STOPPED;
}

/* PFS: the slot's session runs on a temp key that is no longer the DC's
 * (the retired slot, or a media session after a renewal). */
static int slot_old_key(const mtc_context *ctx, const mtci_slot *s) {
  const mtci_dc *dc = ctx->dcs.dcs[s->dci];
  return ctx->set.pfs && s->has_sess && s->hidden != 1 &&
         (s->hidden == 2 || s->key_id != dc->temp_key_id);
}

/* A request of the context is SENT in s's session. */
static int slot_has_sent(const mtc_context *ctx, const mtci_slot *s) {
  for (const mtci_req *r = ctx->head; r; r = r->next)
    if (r->slot == s && r->state == MTCI_RS_SENT) return 1;
  return 0;
}

/* PFS: a new connection must make a temp key before its session runs (none,
 * or the one known is about to expire). */
static int needs_temp(mtc_context *ctx, const mtci_slot *s, int64_t now) {
  const mtci_dc *dc = dc_of(ctx, s);
  /* a background renewal makes the next one: the key serves until it expires
   * (dropping it would stop the renewal; short lifetimes start it within the
   * last 2 s) */
  int64_t margin = dcx_of(ctx, s)->renewing == RENEW_BACKGROUND ? 0 : 2;
  return ctx->set.pfs && dc->has_perm &&
         (!dc->has_temp || server_now_s(ctx, now) >= dc->temp_expires_at - margin);
}

/* Close a slot's connection and dial attempts (its session stays). */
static void slot_close_conns(mtc_context *ctx, mtci_slot *s) {
  mtci_ctx_dc *x = dcx_of(ctx, s);
  for (int j = 0; j < MTCI_CTX_RACE; j++) {
    if (s->dials[j]) {
      close_conn(ctx, s, s->dials[j]);
      s->dials[j] = NULL;
    }
  }
  if (s->conn) {
    if (x->keying == s) x->keying = NULL;
    close_conn(ctx, s, s->conn);
    s->conn = NULL;
  }
  mtci_ctx_cands_drop(s);
}

/* Forget the next key of a background renewal (the slot stays as it is). */
static void renewal_forget_key(mtci_ctx_renewal *rn) {
  mtci_zeroize(rn->key, sizeof rn->key);
  rn->has_key = 0;
  rn->bound = 0;
  rn->key_id = 0;
  rn->expires_at = 0;
  rn->bind.slot = NULL;
}

/* Stop the background renewal: its connection and session go. */
static void renewal_stop(mtc_context *ctx, mtci_ctx_dc *x) {
  mtci_ctx_renewal *rn = x->rn;
  if (!rn) return;
  if (rn->slot.used) {
    slot_close_conns(ctx, &rn->slot);
    if (rn->slot.has_sess) free_session(ctx, &rn->slot);
    slot_reset(&rn->slot);
  }
  renewal_forget_key(rn);
  if (x->renewing == RENEW_BACKGROUND) x->renewing = RENEW_NONE;
  ctx->changed = 1;
}

/* Close the retired slot: its requests (if any: the old key is gone) go
 * back to PENDING. */
static void retired_close(mtc_context *ctx, mtci_ctx_dc *x) {
  mtci_slot *s = x->rn ? &x->rn->retired : NULL;
  if (!s || !s->used) return;
  slot_close_conns(ctx, s);
  if (s->has_sess) free_session(ctx, s);
  slot_reset(s);
  ctx->changed = 1;
}

/* A key of the DC is gone (drop_key, drop_temp): so is any renewal. */
static void renewal_clear(mtc_context *ctx, mtci_ctx_dc *x) {
  renewal_stop(ctx, x);
  retired_close(ctx, x);
}

/* Start a background renewal of DC dci: 0, or MTC_ERR_NOMEM. */
static int renewal_start(mtc_context *ctx, size_t dci, int64_t now) {
  mtci_ctx_dc *x = dcx_at(ctx, dci);
  if (!x->rn) {
    x->rn = calloc(1, sizeof *x->rn);
    if (!x->rn) return MTC_ERR_NOMEM;
    x->rn->slot.dci = x->rn->retired.dci = (int)dci;
    x->rn->slot.hidden = 1;
    x->rn->retired.hidden = 2;
  }
  mtci_ctx_renewal *rn = x->rn;
  slot_reset(&rn->slot);
  renewal_forget_key(rn);
  rn->slot.used = 1;
  rn->slot.retry_at = now;
  rn->slot.open_reason = MTC_REASON_MAIN;
  ctx->changed = 1;
  return 0;
}

/* The DC has a connection (or one on the way) worth keeping going. */
static int dc_active(mtc_context *ctx, size_t dci) {
  for (int k = 0; k <= MTCI_CTX_MAX_MEDIA; k++) {
    const mtci_slot *s = slot_at(ctx, dci, k);
    if (s && s->used && (s->conn || slot_dials(s) || slot_wanted(ctx, s))) return 1;
  }
  return 0;
}

/* A media (or main) session on the old key with nothing in flight: close
 * it; the slot's next connection runs a session on the new key. */
static void close_stale(mtc_context *ctx, mtci_slot *s, int64_t now) {
  LOGI("dc %d (%s %d): session on the previous temporary key closed", dc_id_of(ctx, s),
       slot_kind(s), s->index);
  if (s->conn) report(ctx, s, MTC_CONN_CLOSED, 0);
  slot_close_conns(ctx, s);
  free_session(ctx, s);
  s->idle_since = 0;
  s->retry_at = now;
}

/* The renewal's key is bound: switch the DC over to it (see above). */
static void renewal_commit(mtc_context *ctx, size_t dci, int64_t now) {
  mtci_dc *dc = ctx->dcs.dcs[dci];
  mtci_ctx_dc *x = dcx_at(ctx, dci);
  mtci_ctx_renewal *rn = x->rn;
  mtci_slot *m = &x->main, *r = &rn->slot, *old = &rn->retired;
  uint64_t old_id = dc->temp_key_id;
  if (!r->has_sess || mtci_dc_set_temp_key(dc, rn->key, rn->expires_at, rn->salt) != 0) {
    renewal_stop(ctx, x);
    x->renewing = RENEW_STOPPED; /* the old way */
    return;
  }
  dc->temp_bound = 1;
  x->bind.slot = NULL; /* a bind of the old key in flight no longer matters */
  ctx->dirty = 1;
  ctx->changed = 1;
  /* a previous retired session still waiting a whole renewal period: its
   * key is gone, its requests are resent */
  retired_close(ctx, x);
  /* the main session retires with its connection (if it has one; else it
   * reconnects to finish its requests); main's dial attempts stop */
  mtci_conn *mc = m->conn;
  m->conn = NULL;
  slot_close_conns(ctx, m);
  size_t moved = 0;
  if (m->has_sess) {
    old->used = 1;
    old->conn = mc;
    mc = NULL;
    old->sess = m->sess;
    old->has_sess = 1;
    old->key_id = m->key_id;
    old->sess_news = m->sess_news;
    old->opened_once = 1;
    old->retry_at = now;
    for (mtci_req *q = ctx->head; q; q = q->next) {
      if (q->slot == m && q->state == MTCI_RS_SENT) {
        q->slot = old;
        moved++;
      }
    }
    m->sess = NULL;
    m->has_sess = 0;
  }
  if (mc) close_conn(ctx, m, mc); /* a connection without a session (cannot happen) */
  m->conn = r->conn;
  m->sess = r->sess;
  m->has_sess = 1;
  m->key_id = r->key_id;
  m->sess_news = r->sess_news;
  m->sess_recreated = 2; /* a new session: updates may have been missed */
  m->failures = 0;
  m->flood = 0;
  m->gave_up = 0;
  m->retry_at = now;
  m->opened_once = 1;
  m->ever_ready = 1;
  m->idle_since = 0;
  r->conn = NULL;
  r->sess = NULL;
  r->has_sess = 0;
  slot_close_conns(ctx, r); /* dial attempts, if it was reconnecting */
  slot_reset(r);
  renewal_forget_key(rn);
  x->renewing = RENEW_NONE;
  if (m->conn && m->conn->phase == MTCI_CONN_READY) report(ctx, m, MTC_CONN_READY, 0);
  LOGI("dc %d: switched to temporary key %016llx; %zu request(s) finish on %016llx", dc->id,
       (unsigned long long)dc->temp_key_id, moved, (unsigned long long)old_id);
  for (int k = 1; k <= MTCI_CTX_MAX_MEDIA; k++) {
    mtci_slot *s = slot_at(ctx, dci, k);
    if (s && s->used && slot_old_key(ctx, s) && !slot_has_sent(ctx, s)) close_stale(ctx, s, now);
  }
}

/* Forget the DC's temp key: its sessions go (their requests back to
 * PENDING) and every connection but keep's closes. reason != 0: the server
 * lost it (AUTH_KEY_DROPPED event). */
static void drop_temp(mtc_context *ctx, size_t dci, mtci_slot *keep, int reason, int64_t now) {
  mtci_dc *dc = ctx->dcs.dcs[dci];
  mtci_ctx_dc *x = dcx_at(ctx, dci);
  uint64_t key_id = dc->temp_key_id;
  int had = dc->has_temp;
  for (int k = 0; k <= MTCI_CTX_MAX_MEDIA; k++) {
    mtci_slot *s = slot_at(ctx, dci, k);
    if (!s || !s->used) continue;
    if (s != keep) {
      if (s->conn) report(ctx, s, MTC_CONN_RECONNECTING, reason);
      slot_close_conns(ctx, s);
      s->retry_at = now;
    }
    if (s->has_sess) {
      free_session(ctx, s);
      s->sess_recreated = 1;
    }
  }
  renewal_clear(ctx, x);
  mtci_dc_drop_temp_key(dc);
  x->bind.slot = NULL;
  x->renewing = RENEW_NONE;
  ctx->dirty = 1;
  ctx->changed = 1;
  if (!had) return;
  if (!reason) {
    LOGI("dc %d: retiring temporary key %016llx", dc->id, (unsigned long long)key_id);
    return;
  }
  LOGW("dc %d: temporary key %016llx lost (%s); making a new one", dc->id,
       (unsigned long long)key_id, mtc_strerror(reason));
  mtc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = MTC_EVENT_AUTH_KEY_DROPPED;
  ev.dc_id = dc->id;
  ev.temp = 1;
  ev.key_id = key_id;
  ev.reason = reason;
  emit(ctx, &ev);
}

/* The body of auth.bindTempAuthKey for the msg_id it goes out with
 * (mtci_session_invoke_built calls this for every send). */
static int bind_build(void *ud, int64_t msg_id, mtci_tl_writer *out) {
  struct mtci_ctx_bind *b = ud;
  mtc_context *ctx = b->ctx;
  mtci_slot *s = b->slot;
  if (!ctx || !s || !s->has_sess) return MTC_ERR_INTERNAL;
  const mtci_dc *dc = dc_of(ctx, s);
  if (!dc->has_perm || !b->temp_key_id) return MTC_ERR_INTERNAL;
  mtci_bind_inner in;
  memset(&in, 0, sizeof in);
  in.nonce = b->nonce;
  mtci_put_le64(in.temp_auth_key_id, b->temp_key_id);
  mtci_put_le64(in.perm_auth_key_id, dc->perm_key_id);
  in.temp_session_id = s->sess->session_id;
  in.expires_at = (int32_t)b->expires_at;
  uint8_t enc[MTCI_BIND_MSG_LEN];
  int rc = mtci_bind_encrypt(dc->perm_key, &in, msg_id, ctx->rnd, ctx->rnd_ud, enc);
  if (!rc) {
    mtci_tl_write_u32(out, MTCI_ID_AUTH_BIND_TEMP_AUTH_KEY);
    mtci_tl_write_long(out, mtci_i64_of(dc->perm_key_id));
    mtci_tl_write_long(out, in.nonce);
    mtci_tl_write_int(out, in.expires_at);
    mtci_tl_write_bytes(out, enc, sizeof enc);
    rc = out->err;
  }
  mtci_zeroize(enc, sizeof enc);
  mtci_zeroize(&in, sizeof in);
  return rc;
}

/* Queue the bind as the next request of s's session, unless its key is
 * bound or a bind is in flight: the DC's temp key on its sessions, the next
 * key on the renewal slot's. */
static void send_bind(mtc_context *ctx, mtci_slot *s) {
  mtci_ctx_dc *x = dcx_of(ctx, s);
  mtci_dc *dc = dc_of(ctx, s);
  if (!ctx->set.pfs || !s->has_sess || !dc->has_perm || s->hidden == 2) return;
  struct mtci_ctx_bind *b = &x->bind;
  uint64_t id = dc->temp_key_id;
  int64_t exp = dc->temp_expires_at;
  if (s->hidden == 1) {
    mtci_ctx_renewal *rn = x->rn;
    if (!rn->has_key || rn->bound || rn->bind.slot) return;
    b = &rn->bind;
    id = rn->key_id;
    exp = rn->expires_at;
  } else if (!dc->has_temp || dc->temp_bound || x->bind.slot || s->key_id != dc->temp_key_id) {
    return;
  } else if (x->renewing == RENEW_BACKGROUND && x->rn && (x->rn->bind.slot || x->rn->bound)) {
    /* the renewal's bind unbound this key (a 401 before its answer came):
     * binding it again would unbind the next key; the switch (or the
     * fallback) follows */
    return;
  }
  uint8_t nb[8];
  int rc = ctx->rnd(ctx->rnd_ud, nb, sizeof nb);
  b->ctx = ctx;
  b->slot = s;
  b->nonce = mtci_i64_of(mtci_le64(nb));
  b->temp_key_id = id;
  b->expires_at = exp;
  if (!rc)
    rc = mtci_session_invoke_built(s->sess, bind_build, b, MTCI_CTX_BIND_BODY_LEN, 0,
                                   MTCI_CTX_BIND_TOKEN);
  if (rc) {
    b->slot = NULL;
    LOGE("dc %d: cannot queue auth.bindTempAuthKey: %s", dc->id, mtc_strerror(rc));
    return;
  }
  x->ctr.rpcs_sent++; /* an RPC like any other for the counters */
  ctx->changed = 1;
  LOGI("dc %d (%s %d): binding temporary key %016llx to %016llx", dc->id, slot_kind(s), s->index,
       (unsigned long long)id, (unsigned long long)dc->perm_key_id);
}

/* The bind's answer (result, rpc_error or failure). */
static void on_bind_answer(mtc_context *ctx, mtci_slot *s, const mtci_session_event *ev,
                           int64_t now) {
  mtci_ctx_dc *x = dcx_of(ctx, s);
  mtci_dc *dc = dc_of(ctx, s);
  mtci_ctx_renewal *rn = s->hidden == 1 ? x->rn : NULL;
  struct mtci_ctx_bind *b = rn ? &rn->bind : &x->bind;
  if (b->slot == s) b->slot = NULL;
  if (ev->type != MTCI_SEV_FAILED) x->ctr.rpcs_answered++;
  if (ev->type == MTCI_SEV_RPC_ERROR) x->ctr.rpc_errors++;
  if (!rn && slot_old_key(ctx, s)) return; /* a bind of the previous key: no longer matters */
  uint64_t id = rn ? rn->key_id : dc->temp_key_id;
  if (ev->type == MTCI_SEV_RESULT && ev->len >= 4 && mtci_le32(ev->data) == MTCI_TL_BOOL_TRUE) {
    if (rn) rn->bound = 1; /* pfs_renew switches over (not here: in the slot's own read) */
    else dc->temp_bound = 1;
    ctx->dirty = 1;
    ctx->changed = 1;
    LOGI("dc %d: temporary key %016llx bound", dc->id, (unsigned long long)id);
    return;
  }
  int perm_gone = ev->type == MTCI_SEV_RPC_ERROR && ev->data &&
                  strcmp((const char *)ev->data, "ENCRYPTED_MESSAGE_INVALID") == 0;
  LOGW("dc %d: auth.bindTempAuthKey of %016llx failed (%s)", dc->id, (unsigned long long)id,
       ev->type == MTCI_SEV_RPC_ERROR && ev->data ? (const char *)ev->data : mtc_strerror(ev->code));
  /* the perm key no longer opens: the server lost it (tdesktop does the same) */
  if (perm_gone) {
    drop_key(ctx, (size_t)s->dci, MTC_ERR_AUTH_BIND_INVALID, now);
  } else if (rn) {
    /* a new key and bind later (the slot struct stays: we are in its read) */
    slot_close_conns(ctx, s);
    free_session(ctx, s);
    renewal_forget_key(rn);
    attempt_failed(ctx, s, MTC_ERR_AUTH_BIND_INVALID, now);
  } else {
    drop_temp(ctx, (size_t)s->dci, NULL, MTC_ERR_AUTH_BIND_INVALID, now);
  }
}

/* Renewal (see above): start it for due keys, switch over once bound, or
 * fall back to the old way; the old way drops the key once its DC is
 * quiet. */
static void pfs_renew(mtc_context *ctx, int64_t now) {
  if (!ctx->set.pfs) return;
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    mtci_dc *dc = ctx->dcs.dcs[i];
    mtci_ctx_dc *x = dcx_at(ctx, i);
    if (!dc->has_temp) continue;
    if (x->renewing == RENEW_BACKGROUND) {
      mtci_ctx_renewal *rn = x->rn;
      if (rn->bound) {
        renewal_commit(ctx, i, now);
        continue;
      }
      if (!rn->slot.gave_up && server_now_s(ctx, now) < dc->temp_expires_at) continue;
      LOGW("dc %d: no new temporary key in time; renewing with a pause", dc->id);
      renewal_stop(ctx, x);
      x->renewing = RENEW_STOPPED;
    }
    if (x->renewing == RENEW_NONE && server_now_s(ctx, now) >= temp_renew_at(ctx, dc)) {
      int bg = dc_active(ctx, i) && renewal_start(ctx, i, now) == 0;
      x->renewing = bg ? RENEW_BACKGROUND : RENEW_STOPPED;
      ctx->changed = 1;
      LOGI("dc %d: temporary key %016llx due for renewal%s", dc->id,
           (unsigned long long)dc->temp_key_id, bg ? " (in the background)" : "");
      if (bg) continue;
    }
    if (x->renewing != RENEW_STOPPED || x->bind.slot || x->keying) continue;
    int busy = 0;
    for (const mtci_req *r = ctx->head; r && !busy; r = r->next)
      busy = r->state == MTCI_RS_SENT && r->slot && r->slot->dci == (int)i;
    if (!busy) drop_temp(ctx, i, NULL, 0, now);
  }
}

/* The slot's connection died with err. */
static void conn_lost(mtc_context *ctx, mtci_slot *s, int err, int64_t now) {
  mtci_conn *c = s->conn;
  if (!c) return;
  mtci_ctx_dc *x = dcx_of(ctx, s);
  mtci_dc *dc = dc_of(ctx, s);
  int healthy = c->healthy;
  int32_t terr = c->terr_code;
  mtci_terr_action act = mtci_policy_transport_error(err, c->had_session);
  char ip[MTCI_DC_IP_LEN];
  memcpy(ip, c->ip, sizeof ip);
  uint16_t port = c->port;
  if (x->keying == s || (s->hidden == 1 && !x->rn->has_key)) {
    if (x->keying == s) x->keying = NULL;
    if (c->phase == MTCI_CONN_AUTH || (c->phase == MTCI_CONN_DEAD && !c->had_session))
      x->ctr.handshakes_failed++;
  }
  s->conn = NULL;
  close_conn(ctx, s, c);
  ctx->changed = 1;
  if (!healthy || act == MTCI_TERR_REFRESH) {
    mtci_dc_note_failure(dc, ip, port, now);
    ctx->dirty_minor = 1;
  }
  if (terr)
    LOGW("dc %d (%s %d): %s:%u sent transport error %d", dc->id, slot_kind(s), s->index, ip,
         (unsigned)port, (int)terr);
  else
    LOGI("dc %d (%s %d): connection to %s:%u lost: %s", dc->id, slot_kind(s), s->index, ip,
         (unsigned)port, mtc_strerror(err));
  if (err == MTC_ERR_SESSION_MSG_TIME && s->has_sess) {
    /* server msg_ids outside our window: the local clock moved */
    mtci_session_resync_time(s->sess);
    ctx->time_synced = 0;
  }
  if (act == MTCI_TERR_DROP_KEY && s->hidden == 1) {
    /* the renewal's key (or handshake) was refused: a new one on the next connection */
    if (s->has_sess) free_session(ctx, s);
    renewal_forget_key(x->rn);
  } else if (act == MTCI_TERR_DROP_KEY && slot_old_key(ctx, s)) {
    free_session(ctx, s); /* the previous key is gone; the DC's current one is not */
  } else if (act == MTCI_TERR_DROP_KEY) {
    if (ctx->set.pfs && dc->has_temp) drop_temp(ctx, (size_t)s->dci, NULL, err, now); /* perm kept */
    else drop_key(ctx, s->dci, err, now);
  }
  if (act == MTCI_TERR_FLOOD) s->flood = 1;
  if (act == MTCI_TERR_REFRESH && !ctx->set.no_auto_config) {
    ctx->config_wanted = 1;
    ctx->config_done = 0;
  }
  if (healthy && act != MTCI_TERR_FLOOD) {
    /* it worked: replace it at once */
    s->failures = 0;
    s->retry_at = now;
    if (slot_wanted(ctx, s)) {
      x->ctr.reconnects++;
      note_reason(&x->ctr, err);
      report(ctx, s, MTC_CONN_RECONNECTING, err);
    } else {
      report(ctx, s, MTC_CONN_CLOSED, err);
    }
    return;
  }
  attempt_failed(ctx, s, err, now);
}

static int stack_config_for(mtc_context *ctx, const mtci_slot *s, const mtci_dc_addr *a,
                            mtci_stack_config *sc, mtci_proxy_secret *sec, mtci_stack_socks5 *s5,
                            uint8_t s5addr[16]) {
  memset(sc, 0, sizeof *sc);
  sc->codec = (mtci_codec_kind)ctx->set.codec;
  sc->obfuscated = ctx->set.obfuscate;
  int media_hdr = s->media && (a->flags & MTC_ADDR_MEDIA_ONLY);
  sc->dc_id = mtci_obfs_dc_id(dc_id_of(ctx, s), ctx->set.test_dcs, media_hdr);
  sc->rnd = ctx->rnd;
  sc->rnd_ud = ctx->rnd_ud;
  const mtci_proxy_link *p = &ctx->set.proxy;
  if (ctx->set.has_proxy && p->type == MTCI_PROXY_MTPROTO) {
    sc->secret = &p->secret;
    sc->obfuscated = 1;
  } else if (a->secret_len) {
    if (mtci_proxy_secret_from_binary(a->secret, a->secret_len, sec, NULL) != 0)
      return MTC_ERR_INVALID_ARG;
    sc->secret = sec;
    sc->obfuscated = 1;
  }
  if (sc->obfuscated && sc->codec == MTCI_CODEC_FULL) return MTC_ERR_INVALID_ARG;
  if (ctx->set.has_proxy && p->type == MTCI_PROXY_SOCKS5) {
    memset(s5, 0, sizeof *s5);
    size_t n = strlen(a->ip);
    if (a->flags & MTC_ADDR_IPV6) {
      if (mtci_parse_ipv6(a->ip, n, s5addr) != 0) return MTC_ERR_INVALID_ARG;
      s5->atyp = MTCI_SOCKS5_ATYP_IPV6;
      s5->addr_len = 16;
    } else {
      if (mtci_parse_ipv4(a->ip, n, s5addr) != 0) return MTC_ERR_INVALID_ARG;
      s5->atyp = MTCI_SOCKS5_ATYP_IPV4;
      s5->addr_len = 4;
    }
    s5->addr = s5addr;
    s5->port = a->port;
    if (p->has_auth) {
      s5->user = (const uint8_t *)p->user;
      s5->user_len = p->user_len;
      s5->pass = (const uint8_t *)p->pass;
      s5->pass_len = p->pass_len;
    }
    sc->socks5 = s5;
  }
  return 0;
}

/* Candidates of this round into s->cands. */
static size_t build_cands(mtc_context *ctx, mtci_slot *s) {
  s->n_cands = s->next_cand = 0;
  if (mtci_ctx_cands_alloc(s) < 0) return 0;
  const mtci_proxy_link *p = &ctx->set.proxy;
  if (ctx->set.has_proxy && p->type == MTCI_PROXY_MTPROTO) {
    s->n_cands = mtci_ctx_proxy_cands(ctx, s->cands, MTCI_DC_MAX_ADDRS); /* the proxy's IPs */
    return s->n_cands;
  }
  mtci_dc *dc = dc_of(ctx, s);
  mtci_choice ch;
  memset(&ch, 0, sizeof ch);
  ch.media = s->media;
  ch.prefer_ipv6 = ctx->set.prefer_ipv6;
  ch.via_proxy = ctx->set.has_proxy;
  ch.obfuscated = ctx->set.obfuscate;
  ch.secret_ok = ctx->set.codec != MTCI_CODEC_FULL && !ctx->set.has_proxy;
  size_t order[MTCI_DC_MAX_ADDRS];
  size_t m = mtci_policy_candidates(dc->addrs, dc->n_addrs, &ch, order, MTCI_DC_MAX_ADDRS);
  for (size_t i = 0; i < m; i++) s->cands[i] = dc->addrs[order[i]];
  s->n_cands = m;
  return m;
}

static void round_over(mtc_context *ctx, mtci_slot *s, int64_t now) {
  int err = s->round_err ? s->round_err : MTC_ERR_IO_CONNECT;
  mtci_ctx_proxy_round_failed(ctx, s->n_cands);
  mtci_ctx_cands_drop(s);
  s->opened_once = 1;
  attempt_failed(ctx, s, err, now);
}

static void dial_next(mtc_context *ctx, mtci_slot *s, int64_t now) {
  mtci_ctx_dc *x = dcx_of(ctx, s);
  mtci_dc *dc = dc_of(ctx, s);
  while (!s->conn && s->next_cand < s->n_cands && slot_dials(s) < MTCI_CTX_RACE) {
    int64_t allowed = x->rate ? mtci_rate_next_allowed(x->rate, ctx->set.max_per_minute, now) : now;
    if (allowed > now) {
      if (slot_dials(s) == 0) {
        LOGW("dc %d: %d connects in the last minute: waiting %lld ms", dc->id,
             ctx->set.max_per_minute, (long long)(allowed - now));
        s->retry_at = allowed;
        mtci_ctx_cands_drop(s);
      } else {
        s->next_dial_at = allowed;
      }
      return;
    }
    mtci_dc_addr cur = s->cands[s->next_cand++]; /* a copy: the array may go mid-dial */
    mtci_dc_addr *a = &cur;
    const char *dial_ip = a->ip;
    uint16_t dial_port = a->port;
    if (ctx->set.has_proxy && ctx->set.proxy.type == MTCI_PROXY_SOCKS5) {
      dial_ip = mtci_ctx_proxy_dial_ip(ctx); /* resolved if a host name */
      dial_port = ctx->set.proxy.port;
    }
    int reason = s->opened_once ? MTC_REASON_RECONNECT
                 : s->media     ? MTC_REASON_MEDIA
                                : s->open_reason;
    if (reason < 0 || reason >= MTC_REASON_COUNT) reason = MTC_REASON_MAIN;
    if (!x->rate) x->rate = calloc(1, sizeof *x->rate);
    if (x->rate) mtci_rate_note(x->rate, now); /* without memory: no rate limit, not a failure */
    x->ctr.connects_started++;
    x->ctr.connects_by_reason[reason]++;
    int fd = -1;
    mtci_conn *c = NULL;
    int rc = ctx->io.dial(ctx->io.ud, dial_ip, dial_port, &fd);
    if (rc == 0) {
      c = calloc(1, sizeof *c);
      if (!c) rc = MTC_ERR_NOMEM;
    }
    if (rc == 0) {
      mtci_stack_config sc;
      mtci_proxy_secret sec;
      mtci_stack_socks5 s5;
      uint8_t s5addr[16];
      memset(&sec, 0, sizeof sec);
      rc = stack_config_for(ctx, s, a, &sc, &sec, &s5, s5addr);
      if (!rc)
        rc = mtci_conn_init(c, &sc, fd, a->ip, a->port, a->flags, now, ctx->set.connect_timeout_ms);
      if (!rc) c->clock_fix_ms = ctx->disc.clock_fix_ms; /* fake-TLS timestamp (HTTP Date) */
      mtci_proxy_secret_free(&sec);
    }
    if (rc == 0) rc = ctx->io.watch(ctx->io.ud, fd, MTCI_IO_WRITE);
    if (rc) {
      x->ctr.connects_failed++;
      mtci_dc_note_failure(dc, a->ip, a->port, now);
      ctx->dirty_minor = 1;
      s->round_err = rc;
      LOGI("dc %d (%s %d): connect to %s:%u failed: %s", dc->id, slot_kind(s), s->index, dial_ip,
           (unsigned)dial_port, mtc_strerror(rc));
      if (c) {
        c->fd = -1;
        mtci_conn_free(c);
        free(c);
      }
      if (fd >= 0) ctx->io.hangup(ctx->io.ud, fd);
      continue;
    }
    LOGD("dc %d (%s %d): connecting to %s:%u", dc->id, slot_kind(s), s->index, dial_ip,
         (unsigned)dial_port);
    for (int k = 0; k < MTCI_CTX_RACE; k++) {
      if (!s->dials[k]) {
        s->dials[k] = c;
        break;
      }
    }
    s->next_dial_at = now + ctx->set.stagger_ms;
    return;
  }
  if (!s->conn && slot_dials(s) == 0 && s->n_cands > 0 && s->next_cand >= s->n_cands)
    round_over(ctx, s, now);
}

static void start_round(mtc_context *ctx, mtci_slot *s, int64_t now) {
  if (build_cands(ctx, s) == 0) {
    give_up(ctx, s, MTC_ERR_NO_ADDRESS);
    return;
  }
  s->round_err = 0;
  report(ctx, s, MTC_CONN_CONNECTING, 0);
  dial_next(ctx, s, now);
}

static void dial_failed(mtc_context *ctx, mtci_slot *s, int k, int err, int64_t now) {
  mtci_conn *c = s->dials[k];
  mtci_ctx_dc *x = dcx_of(ctx, s);
  mtci_dc *dc = dc_of(ctx, s);
  s->dials[k] = NULL;
  x->ctr.connects_failed++;
  mtci_dc_note_failure(dc, c->ip, c->port, now);
  ctx->dirty_minor = 1;
  s->round_err = err;
  LOGI("dc %d (%s %d): connect to %s:%u failed: %s", dc->id, slot_kind(s), s->index, c->ip,
       (unsigned)c->port, mtc_strerror(err));
  close_conn(ctx, s, c);
  ctx->changed = 1;
  dial_next(ctx, s, now);
}

static void write_out(mtc_context *ctx, mtci_slot *s, int64_t now) {
  mtci_conn *c = s->conn;
  if (!c) return;
  const uint8_t *p;
  for (int guard = 0; guard < 1024; guard++) {
    size_t n = mtci_conn_pending(c, &p);
    if (!n) break;
    int w = ctx->io.xmit(ctx->io.ud, c->fd, p, n);
    if (w < 0) {
      conn_lost(ctx, s, w, now);
      return;
    }
    if (w == 0) break;
    (void)mtci_conn_consumed(c, (size_t)w);
  }
  /* held back requests (backpressure): the next write-readiness flushes more */
  unsigned want = MTCI_IO_READ | (mtci_conn_pending(c, &p) || mtci_conn_held(c) ? MTCI_IO_WRITE : 0u);
  int rc = ctx->io.watch(ctx->io.ud, c->fd, want);
  if (rc) conn_lost(ctx, s, rc, now);
}

static void attach_session(mtc_context *ctx, mtci_slot *s, int64_t now, int64_t min_msg_id) {
  mtci_conn *c = s->conn;
  int rc = ensure_session(ctx, s, now, min_msg_id);
  if (!rc) rc = mtci_conn_attach(c, s->sess, now);
  if (rc) {
    (void)mtci_conn_fail(c, rc);
    conn_lost(ctx, s, rc, now);
    return;
  }
  int32_t probe, dead;
  mtci_policy_liveness(s->sess->rtt_ms, &probe, &dead);
  s->sess->probe_after_ms = probe;
  s->sess->dead_after_ms = dead;
  send_bind(ctx, s); /* PFS, key not bound yet: the session's first request */
  s->ever_ready = 1;
  s->gave_up = 0;
  ctx->changed = 1;
  LOGI("dc %d (%s %d): ready on %s:%u", dc_id_of(ctx, s), slot_kind(s), s->index, c->ip,
       (unsigned)c->port);
  report(ctx, s, MTC_CONN_READY, 0);
  if (!s->media && !s->hidden && dc_id_of(ctx, s) == ctx->main_dc && !ctx->set.no_auto_config &&
      !ctx->config_done) {
    int64_t now_s = now / 1000;
    if (!ctx->discovered.present || (ctx->discovered.expires_at > 0 && now_s >= ctx->discovered.expires_at))
      ctx->config_wanted = 1;
    else
      ctx->config_done = 1;
  }
}

static void start_auth(mtc_context *ctx, mtci_slot *s, int64_t now, int temp) {
  mtci_ctx_dc *x = dcx_of(ctx, s);
  int id = dc_id_of(ctx, s);
  mtci_handshake_params p;
  memset(&p, 0, sizeof p);
  p.dc = ctx->set.test_dcs ? id + 10000 : id;
  p.expires_in = temp ? ctx->set.temp_expires_s : 0;
  p.keys = &ctx->keys;
  p.rnd = ctx->rnd;
  p.rnd_ud = ctx->rnd_ud;
  int rc = mtci_conn_start_auth(s->conn, &p, now, 2 * ctx->set.connect_timeout_ms);
  if (rc) {
    conn_lost(ctx, s, rc, now);
    return;
  }
  if (!s->hidden) x->keying = s; /* the renewal slot keys on its own */
  LOGI("dc %d (%s %d): creating the %s auth key", id, slot_kind(s), s->index,
       temp ? "temporary" : "permanent");
  report(ctx, s, MTC_CONN_HANDSHAKING, 0);
}

/* The transport is up (IDLE): run the session, or make the key first. */
static void transport_up(mtc_context *ctx, mtci_slot *s, int64_t now) {
  mtci_conn *c = s->conn;
  if (!c || c->phase != MTCI_CONN_IDLE || c->key_done) return;
  mtci_ctx_dc *x = dcx_of(ctx, s);
  if (s->hidden == 2) { /* the old session, reconnected to finish its requests */
    if (s->has_sess) attach_session(ctx, s, now, 0);
    return;
  }
  if (s->hidden == 1) { /* the next temp key, then its session that binds it */
    if (x->rn->has_key) attach_session(ctx, s, now, 0);
    else start_auth(ctx, s, now, 1);
    return;
  }
  if (dc_of(ctx, s)->has_perm) {
    if (!needs_temp(ctx, s, now)) {
      attach_session(ctx, s, now, 0);
      return;
    }
    if (x->keying && x->keying != s) return; /* another connection makes it */
    if (dc_of(ctx, s)->has_temp) drop_temp(ctx, (size_t)s->dci, s, 0, now); /* expiring */
    start_auth(ctx, s, now, 1);
    return;
  }
  if (x->keying && x->keying != s) return; /* another connection makes it */
  start_auth(ctx, s, now, 0);
}

static void emit_key_created(mtc_context *ctx, int dc_id, int temp, uint64_t key_id) {
  mtc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = MTC_EVENT_AUTH_KEY_CREATED;
  ev.dc_id = dc_id;
  ev.temp = temp;
  ev.key_id = key_id;
  emit(ctx, &ev);
}

/* A key the server accepted: its clock corrects ours; the result is wiped.
 * The handshake's offset is in whole seconds (server_time), so it is only
 * within a second of the truth; an offset already synced to the
 * millisecond by a session (msg_ids) that agrees with it that closely is
 * kept, else every renewal would move the clock by up to a second. */
static void key_taken(mtc_context *ctx, mtci_slot *s, mtci_auth_result *k) {
  int64_t coarse = k->time_offset * 1000, d = ctx->time_offset_ms - coarse;
  if (!ctx->time_synced || d <= -1000 || d >= 1000) ctx->time_offset_ms = coarse;
  ctx->time_synced = 1;
  mtci_auth_result_clear(k);
  s->failures = 0;
  ctx->changed = 1;
}

/* No memory to store a new key: it is dropped and its connection goes. */
static void key_unstored(mtc_context *ctx, mtci_slot *s, mtci_auth_result *k, const char *what,
                         int64_t now) {
  mtci_auth_result_clear(k);
  LOGE("dc %d: out of memory storing the new %s; it is dropped", dc_id_of(ctx, s), what);
  dcx_of(ctx, s)->ctr.handshakes_failed++;
  conn_lost(ctx, s, MTC_ERR_NOMEM, now);
}

static void on_key_done(mtc_context *ctx, mtci_slot *s, int64_t now) {
  mtci_conn *c = s->conn;
  mtci_auth_result k;
  if (!c || mtci_conn_take_key(c, &k) != 0) return;
  mtci_dc *dc = dc_of(ctx, s);
  mtci_ctx_dc *x = dcx_of(ctx, s);
  if (s->has_sess) free_session(ctx, s); /* cannot happen: no key, no session */
  if (s->hidden && !(s->hidden == 1 && k.temp)) { /* cannot happen: the renewal slot asks for a temp key */
    mtci_auth_result_clear(&k);
    conn_lost(ctx, s, MTC_ERR_INTERNAL, now);
    return;
  }
  if (k.temp) {
    uint64_t key_id;
    int64_t expires_at;
    if (s->hidden) { /* the next temp key: kept apart until it is bound */
      mtci_ctx_renewal *rn = x->rn;
      memcpy(rn->key, k.auth_key, MTCI_AUTH_KEY_LEN);
      rn->key_id = key_id = mtci_le64(k.auth_key_id);
      rn->expires_at = expires_at = k.expires_at;
      rn->salt = k.server_salt;
      rn->has_key = 1;
      rn->bound = 0;
    } else {
      if (dc->has_temp) drop_temp(ctx, (size_t)s->dci, s, 0, now);
      if (mtci_dc_set_temp_key(dc, k.auth_key, k.expires_at, k.server_salt) != 0) {
        key_unstored(ctx, s, &k, "temporary key", now);
        return;
      }
      key_id = dc->temp_key_id;
      expires_at = dc->temp_expires_at;
      x->keying = NULL;
      x->renewing = RENEW_NONE;
      ctx->dirty = 1;
    }
    key_taken(ctx, s, &k);
    x->ctr.handshakes_temp++;
    LOGI("dc %d: %stemporary auth key created (id %016llx, expires_at %lld)", dc->id,
         s->hidden ? "next " : "", (unsigned long long)key_id, (long long)expires_at);
    emit_key_created(ctx, dc->id, 1, key_id);
    if (s->conn == c) attach_session(ctx, s, now, c->hs_last_msg_id);
    return;
  }
  mtci_dc_drop_temp_key(dc); /* bound to the old perm key, if any */
  if (mtci_dc_set_perm_key(dc, k.auth_key, now / 1000, k.server_salt) != 0) {
    key_unstored(ctx, s, &k, "auth key", now);
    return;
  }
  key_taken(ctx, s, &k);
  x->keying = NULL;
  transfer_forget(x); /* a new key is not authorized */
  x->ctr.handshakes_perm++;
  ctx->dirty = 1;
  LOGI("dc %d: auth key created (id %016llx)", dc->id, (unsigned long long)dc->perm_key_id);
  emit_key_created(ctx, dc->id, 0, dc->perm_key_id);
  if (s->conn != c) return;
  if (ctx->set.pfs) start_auth(ctx, s, now, 1); /* the temp key, on the same connection */
  else attach_session(ctx, s, now, c->hs_last_msg_id);
}

static void dial_won(mtc_context *ctx, mtci_slot *s, int k, int64_t now) {
  mtci_conn *c = s->dials[k];
  mtci_ctx_dc *x = dcx_of(ctx, s);
  mtci_dc *dc = dc_of(ctx, s);
  s->dials[k] = NULL;
  x->ctr.connects_succeeded++;
  mtci_dc_note_success(dc, c->ip, c->port, now);
  mtci_ctx_proxy_dial_ok(ctx);
  ctx->dirty_minor = 1;
  for (int j = 0; j < MTCI_CTX_RACE; j++) {
    if (s->dials[j]) {
      x->ctr.connects_cancelled++;
      close_conn(ctx, s, s->dials[j]);
      s->dials[j] = NULL;
    }
  }
  mtci_ctx_cands_drop(s);
  s->opened_once = 1;
  s->conn = c;
  ctx->changed = 1;
  LOGD("dc %d (%s %d): TCP connected to %s:%u", dc->id, slot_kind(s), s->index, c->ip,
       (unsigned)c->port);
  int rc = mtci_conn_connected(c, now, ctx->set.connect_timeout_ms);
  if (rc < 0) {
    conn_lost(ctx, s, rc, now);
    return;
  }
  if (rc == 1) transport_up(ctx, s, now);
  write_out(ctx, s, now);
}

static void read_in(mtc_context *ctx, mtci_slot *s, int64_t now) {
  mtci_conn *c = s->conn;
  size_t got = 0;
  /* the read buffer lives only for this call: an idle context holds none */
  uint8_t *rx = c ? malloc(MTCI_CTX_READ_CHUNK) : NULL;
  if (c && !rx) {
    conn_lost(ctx, s, MTC_ERR_NOMEM, now);
    return;
  }
  while (c && s->conn == c && got < MTCI_CTX_READ_BUDGET) {
    int n = ctx->io.take(ctx->io.ud, c->fd, rx, MTCI_CTX_READ_CHUNK);
    if (n == 0) break;
    if (n < 0) {
      int err = n == MTC_ERR_IO_EOF ? mtci_conn_eof(c) : mtci_conn_fail(c, n);
      if (s->has_sess) drain(ctx, s, now);
      if (s->conn == c) conn_lost(ctx, s, err, now);
      free(rx);
      return;
    }
    got += (size_t)n;
    int rc = mtci_conn_feed(c, rx, (size_t)n, now);
    mtci_zeroize(rx, (size_t)n);
    if (c->key_done) on_key_done(ctx, s, now);
    if (s->has_sess) drain(ctx, s, now);
    if (s->conn != c) {
      free(rx);
      return;
    }
    if (rc < 0) {
      conn_lost(ctx, s, rc, now);
      free(rx);
      return;
    }
    if (c->phase == MTCI_CONN_IDLE) transport_up(ctx, s, now); /* SOCKS5 / TLS done */
  }
  free(rx);
  ctx->changed = 1;
}

void mtci_ctx_on_fd(void *ud, int fd, unsigned revents) {
  mtc_context *ctx = ud;
  if (ctx->closing) return;
  int64_t now = now_of(ctx);
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    for (int k = 0; k < K_SLOTS; k++) {
      mtci_slot *s = slot_at(ctx, i, k);
      if (!s || !s->used) continue;
      for (int j = 0; j < MTCI_CTX_RACE; j++) {
        mtci_conn *c = s->dials[j];
        if (!c || c->fd != fd) continue;
        int r = ctx->io.dial_result(ctx->io.ud, fd);
        if (r == 1) return;
        if (r < 0) dial_failed(ctx, s, j, r, now);
        else dial_won(ctx, s, j, now);
        return;
      }
      mtci_conn *c = s->conn;
      if (!c || c->fd != fd) continue;
      if (revents & MTCI_IO_WRITE) {
        write_out(ctx, s, now);
        if (s->conn != c) return;
      }
      if (revents & MTCI_IO_READ) read_in(ctx, s, now);
      return;
    }
  }
}

/* ---- requests into sessions ---------------------------------------------------------------- */

static mtci_slot *pick_slot(mtc_context *ctx, int dci, int media) {
  mtci_ctx_dc *x = dcx_at(ctx, dci);
  if (!media) return &x->main;
  if (media_alloc(x) != 0) return NULL;
  mtci_slot *best = NULL;
  int used = 0;
  for (int j = 0; j < ctx->set.media_cap; j++) {
    mtci_slot *m = &x->media[j];
    if (!m->used) continue;
    used++;
    if (!best || m->n_assigned < best->n_assigned ||
        (m->n_assigned == best->n_assigned && m->conn && !best->conn))
      best = m;
  }
  if (!best || (best->n_assigned > 0 && used < ctx->set.media_cap)) {
    for (int j = 0; j < ctx->set.media_cap; j++) {
      mtci_slot *m = &x->media[j];
      if (m->used) continue;
      slot_reset(m);
      m->used = 1;
      return m;
    }
  }
  return best;
}

static int target_dc(const mtc_context *ctx, const mtci_req *r) {
  if (r->target == MTC_TARGET_MAIN || (r->target == MTC_TARGET_MEDIA && r->dc_id == 0))
    return ctx->main_dc;
  return r->dc_id;
}

/* PENDING -> SENT when the DC has a key (else it waits on its slot). */
static void place(mtc_context *ctx, mtci_req *r, int64_t now) {
  int dc_id = target_dc(ctx, r);
  int dci = dc_index(ctx, dc_id);
  if (dci < 0) {
    req_fail(ctx, r, dc_id < 1 || dc_id > MTCI_DC_MAX_ID ? MTC_ERR_DC_UNKNOWN : MTC_ERR_NOMEM);
    return;
  }
  mtci_dc *dc = ctx->dcs.dcs[dci];
  if (dc->n_addrs == 0 && !(ctx->set.has_proxy && ctx->set.proxy.type == MTCI_PROXY_MTPROTO)) {
    LOGW("dc %d: no address known", dc_id);
    req_fail(ctx, r, MTC_ERR_NO_ADDRESS);
    return;
  }
  mtci_slot *s = pick_slot(ctx, dci, r->target == MTC_TARGET_MEDIA);
  if (s && r->kind == MTCI_REQ_IMPORT && !s->conn && slot_dials(s) == 0) {
    /* the import needs the DC's key, not its main session: ride an open
     * media connection rather than opening one more */
    for (int j = 0; dcx_at(ctx, dci)->media && j < ctx->set.media_cap; j++) {
      mtci_slot *m = &dcx_at(ctx, dci)->media[j];
      if (m->used && m->conn && m->conn->phase == MTCI_CONN_READY) {
        s = m;
        break;
      }
    }
  }
  if (!s) {
    /* only the media slots' allocation can fail here */
    req_fail(ctx, r, dcx_at(ctx, dci)->media ? MTC_ERR_INTERNAL : MTC_ERR_NOMEM);
    return;
  }
  r->slot = s;
  s->n_assigned++;
  if (s->gave_up) {
    s->gave_up = 0; /* new work: try again (after the back-off) */
    ctx->changed = 1;
  }
  if (!s->opened_once && !s->conn && slot_dials(s) == 0) s->open_reason = r->open_reason;
  if (!dc_usable(ctx, (size_t)dci) || slot_old_key(ctx, s)) return; /* waits on its slot */
  int rc = ensure_session(ctx, s, now, 0);
  if (!rc) rc = mtci_session_invoke(s->sess, r->body, r->len, 0, r->id);
  if (rc) {
    r->slot = NULL;
    s->n_assigned--;
    req_fail(ctx, r, rc);
    return;
  }
  r->state = MTCI_RS_SENT;
  dcx_at(ctx, dci)->ctr.rpcs_sent++;
}

static void recount(mtc_context *ctx) {
  for (size_t i = 0; i < ctx->dcs.n; i++)
    for (int k = 0; k < K_SLOTS; k++) {
      mtci_slot *s = slot_at(ctx, i, k);
      if (s) s->n_assigned = 0;
    }
  for (mtci_req *r = ctx->head; r; r = r->next)
    if (r->slot && (r->state == MTCI_RS_SENT || r->state == MTCI_RS_PENDING)) r->slot->n_assigned++;
}

static int slot_busy(const mtci_slot *s) {
  return s->n_assigned > 0 || (s->has_sess && mtci_session_pending(s->sess) > 0);
}

static int slot_keepalive(const mtc_context *ctx, const mtci_slot *s) {
  return !s->media && !s->hidden && dc_id_of(ctx, s) == ctx->main_dc && s->ever_ready;
}

static int slot_wanted(const mtc_context *ctx, const mtci_slot *s) {
  if (s->hidden == 1) return 1; /* in use only while the renewal runs */
  return slot_busy(s) || slot_keepalive(ctx, s);
}

/* ---- authorization transfer and config ------------------------------------------------------ */

static void release_waiters(mtc_context *ctx, int dc_id) {
  for (mtci_req *r = ctx->head; r; r = r->next) {
    if (r->state == MTCI_RS_WAIT_AUTH && r->dc_id == dc_id) {
      r->state = MTCI_RS_PENDING;
      r->slot = NULL;
      ctx->changed = 1;
    }
  }
}

static void start_transfer(mtc_context *ctx, int dc_id) {
  int dci = dc_index(ctx, dc_id);
  if (dci < 0) {
    release_waiters(ctx, dc_id);
    return;
  }
  mtci_ctx_dc *x = dcx_at(ctx, dci);
  if (x->transfer == TR_EXPORT || x->transfer == TR_IMPORT) return;
  if (ctx->dcs.dcs[dci]->authorized) {
    release_waiters(ctx, dc_id);
    return;
  }
  uint8_t body[8];
  mtci_put_le32(body, MTC_TL_ID_fn_auth_exportAuthorization);
  mtci_put_le32(body + 4, (uint32_t)dc_id);
  mtci_req *r = req_new(ctx, MTCI_REQ_EXPORT, MTC_TARGET_MAIN, 0, body, sizeof body);
  if (!r) {
    release_waiters(ctx, dc_id);
    return;
  }
  r->arg = dc_id;
  x->transfer = TR_EXPORT;
  x->ctr.auth_exports++;
  LOGI("dc %d: transferring the authorization from dc %d", dc_id, ctx->main_dc);
}

static void transfer_failed(mtc_context *ctx, int dc_id, int err) {
  int dci = dc_index(ctx, dc_id);
  if (dci >= 0) dcx_at(ctx, dci)->transfer = TR_FAILED;
  LOGW("dc %d: authorization transfer failed: %s", dc_id, err ? mtc_strerror(err) : "bad answer");
  release_waiters(ctx, dc_id);
}

/* DC index i only configs brought and nothing uses: no key, not a seed, not
 * the main DC, no request, connection or transfer, not in ids[0..n). */
static int dc_spare(mtc_context *ctx, size_t i, const int *ids, size_t n) {
  const mtci_dc *dc = ctx->dcs.dcs[i];
  const mtci_ctx_dc *x = dcx_at(ctx, i);
  if (dc->seed || dc->has_perm || dc->has_temp || dc->id == ctx->main_dc ||
      dc->id == ctx->config_dc || (ctx->disc.running && dc->id == ctx->disc.trigger_dc))
    return 0;
  for (size_t k = 0; k < n; k++)
    if (ids[k] == dc->id) return 0;
  if (x->keying || x->transfer == TR_EXPORT || x->transfer == TR_IMPORT) return 0;
  for (int k = 0; k < K_SLOTS; k++) {
    const mtci_slot *s = slot_at_c(ctx, i, k);
    if (s && (s->conn || slot_dials(s) || s->has_sess || s->n_assigned)) return 0;
  }
  for (const mtci_req *r = ctx->head; r; r = r->next)
    if (target_dc(ctx, r) == dc->id || r->arg == dc->id || (r->slot && r->slot->dci == (int)i))
      return 0; /* the slot: a request may wait there after its target moved */
  return 1;
}

void mtci_ctx_dc_room(mtc_context *ctx, const int *ids, size_t n) {
  for (size_t k = 0; k < n; k++) {
    if (mtci_dc_find(&ctx->dcs, ids[k])) continue;
    if (ctx->dcs.n < MTCI_DC_MAX_DCS) {
      (void)mtci_dc_get(&ctx->dcs, ids[k]);
      continue;
    }
    size_t v = 0;
    while (v < ctx->dcs.n && !dc_spare(ctx, v, ids, n)) v++;
    if (v == ctx->dcs.n) return; /* the rest of the config does not fit */
    /* what a spare DC's context data still owns (no session, connection or request) */
    mtci_ctx_dc *x = dcx_at(ctx, v);
    for (int j = 0; j < K_SLOTS; j++) {
      mtci_slot *s = slot_at(ctx, v, j);
      if (s) mtci_ctx_cands_drop(s);
    }
    free(x->media);
    if (x->rn) mtci_zeroize(x->rn, sizeof *x->rn);
    free(x->rn);
    free(x->rate);
    x->media = NULL;
    x->rn = NULL;
    x->rate = NULL;
    /* its part of the totals stays counted */
    mtc_dc_counters *g = &ctx->gone;
    g->connects_started += x->ctr.connects_started;
    g->connects_succeeded += x->ctr.connects_succeeded;
    g->connects_failed += x->ctr.connects_failed;
    g->handshakes_perm += x->ctr.handshakes_perm;
    g->handshakes_temp += x->ctr.handshakes_temp;
    g->reconnects += x->ctr.reconnects;
    g->rpcs_sent += x->ctr.rpcs_sent;
    g->bytes_in += x->bytes_in_closed;
    g->bytes_out += x->bytes_out_closed;
    int old = ctx->dcs.dcs[v]->id;
    if (mtci_dc_table_reuse(&ctx->dcs, v, ids[k]) != 0) return;
    ctx->disc.down_since[v] = 0;
    ctx->disc.episode_err[v] = 0;
    ctx->disc.parked[v] = 0;
    ctx->dirty = 1;
    LOGI("dc %d leaves the DC table for dc %d of the new config (only older configs named it)",
         old, ids[k]);
  }
}

static void apply_config(mtc_context *ctx, const uint8_t *data, size_t len, int64_t now) {
  mtc_tl_object *o = NULL;
  int rc = mtc_tl_parse(data, len, &o);
  if (rc || !o || o->id != MTC_TL_ID_config) {
    LOGW("help.getConfig: unexpected answer (%s)", rc ? mtc_strerror(rc) : "constructor");
    mtc_tl_object_free(o);
    return;
  }
  const mtc_tl_config *cfg = (const mtc_tl_config *)o;
  size_t n = cfg->dc_options.n;
  mtci_dc_option *opts = n ? calloc(n, sizeof *opts) : NULL;
  size_t m = 0;
  for (size_t i = 0; opts && i < n; i++) {
    const mtc_tl_object *e = cfg->dc_options.v[i];
    if (!e || e->id != MTC_TL_ID_dcOption) continue;
    const mtc_tl_dcOption *d = (const mtc_tl_dcOption *)e;
    if (d->port < 1 || d->port > 65535 || !d->ip_address.data) continue;
    mtci_dc_option *op = &opts[m++];
    op->dc_id = d->id;
    op->ip = (const char *)d->ip_address.data;
    op->ip_len = d->ip_address.len;
    op->port = (uint16_t)d->port;
    op->flags = d->flags & MTCI_DC_ADDR_ALL;
    op->secret = d->secret.data;
    op->secret_len = d->secret.len;
  }
  /* its DCs take the place of DCs only older configs named (the table is 16 long) */
  int ids[MTCI_CTX_CONFIG_IDS] = {0};
  size_t n_ids = 0;
  for (size_t i = 0; i < m; i++)
    if (mtci_dc_option_check(&opts[i]) == 0) mtci_ctx_config_id(ids, &n_ids, opts[i].dc_id);
  mtci_ctx_dc_room(ctx, ids, n_ids);
  uint32_t mask = 0;
  size_t skipped = 0;
  if (m) (void)mtci_dc_apply_config(&ctx->dcs, opts, m, &mask, &skipped);
  free(opts);
  ctx->discovered.present = 1;
  snprintf(ctx->discovered.source, sizeof ctx->discovered.source, "getConfig");
  ctx->discovered.fetched_at = now / 1000;
  ctx->discovered.expires_at = cfg->expires > 0 ? cfg->expires : 0;
  mtc_tl_object_free(o);
  ctx->dirty = 1;
  LOGI("config: %zu options, %zu skipped, %s", m, skipped,
       mask ? "address sets changed" : "address sets unchanged");
  if (mask) {
    mtc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = MTC_EVENT_CONFIG_UPDATED;
    emit(ctx, &ev);
  }
}

static void internal_done(mtc_context *ctx, mtci_req *r, int kind, int dc_id, const uint8_t *data,
                          size_t len, int err) {
  int64_t now = now_of(ctx);
  switch (r->kind) {
  case MTCI_REQ_CONFIG:
    ctx->config_inflight = 0;
    ctx->config_wanted = 0;
    ctx->config_done = 1;
    if (kind == MTC_RESULT_OK) apply_config(ctx, data, len, now);
    else LOGW("help.getConfig failed (%d)", err);
    mtci_ctx_disc_config_done(ctx, kind == MTC_RESULT_OK, now);
    break;
  case MTCI_REQ_EXPORT: {
    if (kind != MTC_RESULT_OK) {
      transfer_failed(ctx, r->arg, kind == MTC_RESULT_ERROR ? err : 0);
      break;
    }
    mtc_tl_object *o = NULL;
    int rc = mtc_tl_parse(data, len, &o);
    if (rc || !o || o->id != MTC_TL_ID_auth_exportedAuthorization) {
      mtc_tl_object_free(o);
      transfer_failed(ctx, r->arg, rc);
      break;
    }
    const mtc_tl_auth_exportedAuthorization *e = (const mtc_tl_auth_exportedAuthorization *)o;
    mtci_tl_writer w;
    mtci_tl_writer_init(&w, 0);
    mtci_tl_write_u32(&w, MTC_TL_ID_fn_auth_importAuthorization);
    mtci_tl_write_long(&w, e->id);
    mtci_tl_write_bytes(&w, e->bytes.data, e->bytes.len);
    mtc_tl_object_free(o);
    mtci_req *imp = NULL;
    if (!w.err) imp = req_new(ctx, MTCI_REQ_IMPORT, MTC_TARGET_DC, r->arg, mtci_tl_writer_data(&w), w.len);
    mtci_tl_writer_free(&w);
    if (!imp) {
      transfer_failed(ctx, r->arg, MTC_ERR_NOMEM);
      break;
    }
    imp->arg = r->arg;
    imp->open_reason = MTC_REASON_MIGRATE; /* a transfer serves a redirected request */
    int dci = dc_index(ctx, r->arg);
    if (dci >= 0) {
      dcx_at(ctx, dci)->transfer = TR_IMPORT;
      dcx_at(ctx, dci)->ctr.auth_imports++;
    }
    break;
  }
  case MTCI_REQ_IMPORT: {
    uint32_t cid = kind == MTC_RESULT_OK && len >= 4 ? mtci_le32(data) : 0;
    if (cid != MTC_TL_ID_auth_authorization) {
      transfer_failed(ctx, r->arg, kind == MTC_RESULT_ERROR ? err : 0);
      break;
    }
    int dci = dc_index(ctx, r->arg);
    if (dci >= 0) dcx_at(ctx, dci)->transfer = TR_DONE;
    set_authorized(ctx, r->arg, 1, 1);
    LOGI("dc %d: authorization imported", r->arg);
    release_waiters(ctx, r->arg);
    break;
  }
  default: break;
  }
  (void)dc_id;
}

/* ---- session events -------------------------------------------------------------------------- */

static mtci_req *find_sent(const mtc_context *ctx, const mtci_slot *s, uint64_t token) {
  mtci_req *r = req_find(ctx, token);
  return r && r->state == MTCI_RS_SENT && r->slot == s ? r : NULL;
}

static void on_result(mtc_context *ctx, mtci_req *r, mtci_slot *s, const uint8_t *data,
                      size_t len) {
  int dc_id = dc_id_of(ctx, s);
  dcx_of(ctx, s)->ctr.rpcs_answered++;
  uint32_t cid = len >= 4 ? mtci_le32(data) : 0;
  if (cid == MTC_TL_ID_auth_authorization && r->kind == MTCI_REQ_APP) {
    set_authorized(ctx, dc_id, 1, 0);
  } else if (cid == MTC_TL_ID_auth_loggedOut) {
    for (size_t i = 0; i < ctx->dcs.n; i++) {
      if (ctx->dcs.dcs[i]->authorized) ctx->dirty = 1;
      ctx->dcs.dcs[i]->authorized = 0;
      dcx_at(ctx, i)->transfer = TR_NONE;
    }
    LOGI("logged out");
  }
  req_finish(ctx, r, MTC_RESULT_OK, dc_id, data, len, 0, NULL, 0);
}

static void on_rpc_error(mtc_context *ctx, mtci_req *r, mtci_slot *s, int32_t code,
                         const char *msg, int64_t now) {
  int dc_id = dc_id_of(ctx, s);
  mtci_ctx_dc *x = dcx_of(ctx, s);
  x->ctr.rpcs_answered++;
  x->ctr.rpc_errors++;
  if (ctx->set.pfs && code == 401 && strcmp(msg, "AUTH_KEY_PERM_EMPTY") == 0) {
    /* the server does not know our binding (any more): rebind, then resend;
     * on the previous key (a renewal's bind unbound it): just resend, on the
     * new one (the server did not run it) */
    mtci_dc *dc = dc_of(ctx, s);
    int old = slot_old_key(ctx, s);
    r->state = MTCI_RS_PENDING;
    r->slot = NULL;
    if (old) {
      LOGD("dc %d (%s %d): %s on the previous temporary key: resending", dc_id, slot_kind(s),
           s->index, msg);
    } else if (dc->temp_bound) {
      dc->temp_bound = 0;
      ctx->dirty = 1;
      LOGW("dc %d: %s: binding the temporary key again", dc_id, msg);
    }
    ctx->changed = 1;
    return;
  }
  /* the session has forgotten the request: it is PENDING-like from here */
  r->state = MTCI_RS_PENDING;
  mtci_slot *was = r->slot;
  r->slot = NULL;
  const mtci_dc *main = mtci_dc_find_const(&ctx->dcs, ctx->main_dc);
  int app = r->kind == MTCI_REQ_APP;
  mtci_rpc_rules rules;
  memset(&rules, 0, sizeof rules);
  rules.flood_auto_s = ctx->set.flood_auto_s;
  rules.allow_migrate = app && !(r->flags & MTC_INVOKE_NO_MIGRATE);
  rules.allow_flood = !(r->flags & MTC_INVOKE_NO_FLOOD_WAIT);
  rules.allow_transfer = app && !(r->flags & MTC_INVOKE_NO_AUTH_TRANSFER);
  rules.target_main = r->target == MTC_TARGET_MAIN;
  rules.on_main_dc = dc_id == ctx->main_dc;
  /* a request that follows the main DC is sent there: answered elsewhere, the main DC
   * moved after */
  rules.main_moved = !rules.on_main_dc && (r->target == MTC_TARGET_MAIN ||
                                           (r->target == MTC_TARGET_MEDIA && r->dc_id == 0));
  rules.main_authorized = main && main->authorized;
  rules.migrations = r->migrations;
  rules.flood_waits = r->floods;
  rules.transfers = r->transfers;
  mtci_rpc_action a;
  mtci_policy_rpc_error(code, msg, &rules, &a);
  if (a.unauthorized) set_authorized(ctx, dc_id, 0, 0);
  switch (a.kind) {
  case MTCI_RPC_MIGRATE_MAIN:
    r->migrations++;
    x->ctr.migrations++;
    r->open_reason = MTC_REASON_MIGRATE;
    req_requeue(ctx, r); /* r may be cancelled from the event below: not used after */
    LOGI("dc %d: %s: the main DC moves to %d", dc_id, msg, a.dc);
    set_main_dc(ctx, a.dc);
    return;
  case MTCI_RPC_ROUTE_DC: {
    r->migrations++;
    x->ctr.migrations++;
    r->open_reason = MTC_REASON_MIGRATE;
    if (r->target == MTC_TARGET_MAIN) r->target = MTC_TARGET_DC;
    r->dc_id = a.dc;
    req_requeue(ctx, r);
    const mtci_dc *to = mtci_dc_find_const(&ctx->dcs, a.dc);
    if (rules.allow_transfer && rules.main_authorized && a.dc != ctx->main_dc &&
        !(to && to->authorized) && r->transfers == 0) {
      r->transfers++;
      r->state = MTCI_RS_WAIT_AUTH;
      start_transfer(ctx, a.dc);
    }
    LOGI("dc %d: %s: resending to dc %d", dc_id, msg, a.dc);
    return;
  }
  case MTCI_RPC_FLOOD_WAIT:
    r->floods++;
    x->ctr.flood_waits++;
    r->state = MTCI_RS_WAIT_FLOOD;
    r->wake_at = now + a.wait_ms;
    ctx->changed = 1;
    LOGI("dc %d: %s: waiting %lld ms, then resending", dc_id, msg, (long long)a.wait_ms);
    return;
  case MTCI_RPC_RESEND_MAIN:
    r->migrations++;
    req_requeue(ctx, r);
    LOGI("dc %d: %s: the main DC is dc %d now: resending there", dc_id, msg, ctx->main_dc);
    return;
  case MTCI_RPC_AUTH_TRANSFER:
    r->transfers++;
    r->dc_id = dc_id;
    if (r->target == MTC_TARGET_MAIN) r->target = MTC_TARGET_DC;
    r->state = MTCI_RS_WAIT_AUTH;
    ctx->changed = 1;
    start_transfer(ctx, dc_id);
    return;
  default: break;
  }
  r->slot = was;
  r->state = MTCI_RS_PENDING; /* not in the session any more: nothing to cancel */
  if (a.loop)
    req_finish(ctx, r, MTC_RESULT_ERROR, dc_id, NULL, 0, 0, NULL, MTC_ERR_MIGRATE_LOOP);
  else
    req_finish(ctx, r, MTC_RESULT_RPC_ERROR, dc_id, NULL, 0, code, msg, 0);
}

static void drain(mtc_context *ctx, mtci_slot *s, int64_t now) {
  mtci_session_event ev;
  for (int guard = 0; guard < 1000000 && s->has_sess; guard++) {
    if (!mtci_session_next_event(s->sess, &ev)) break;
    if (ev.token == MTCI_CTX_BIND_TOKEN && (ev.type == MTCI_SEV_RESULT ||
                                            ev.type == MTCI_SEV_RPC_ERROR ||
                                            ev.type == MTCI_SEV_FAILED)) {
      on_bind_answer(ctx, s, &ev, now);
      continue;
    }
    switch (ev.type) {
    case MTCI_SEV_RESULT: {
      mtci_req *r = find_sent(ctx, s, ev.token);
      if (r) on_result(ctx, r, s, ev.data, ev.len);
      break;
    }
    case MTCI_SEV_RPC_ERROR: {
      mtci_req *r = find_sent(ctx, s, ev.token);
      if (r) on_rpc_error(ctx, r, s, ev.code, ev.data ? (const char *)ev.data : "", now);
      break;
    }
    case MTCI_SEV_FAILED: {
      mtci_req *r = find_sent(ctx, s, ev.token);
      if (r) {
        r->state = MTCI_RS_PENDING; /* the session dropped it */
        req_fail(ctx, r, ev.code ? ev.code : MTC_ERR_INTERNAL);
      }
      break;
    }
    case MTCI_SEV_UPDATES: {
      mtc_event e;
      memset(&e, 0, sizeof e);
      e.type = MTC_EVENT_UPDATES;
      e.dc_id = dc_id_of(ctx, s);
      e.media = s->media;
      e.index = s->index;
      e.data = ev.data;
      e.len = ev.len;
      emit(ctx, &e);
      break;
    }
    case MTCI_SEV_NEW_SESSION:
      if (ev.code == 0 && s->sess_news++ == 0) break; /* the server met this session */
      LOGI("dc %d (%s %d): session recreated: updates may have been missed", dc_id_of(ctx, s),
           slot_kind(s), s->index);
      emit_recreated(ctx, s);
      break;
    case MTCI_SEV_SALT_UPDATED:
      if (s->hidden == 1) {
        dcx_of(ctx, s)->rn->salt = ev.value; /* the next key's */
      } else if (!slot_old_key(ctx, s)) {
        dc_of(ctx, s)->salt = ev.value;
        ctx->dirty_minor = 1;
      }
      break;
    case MTCI_SEV_TIME_FIXED:
      ctx->time_offset_ms = ev.value;
      ctx->time_synced = 1;
      ctx->dirty_minor = 1;
      break;
    case MTCI_SEV_DEAD:
    case MTCI_SEV_NEED_RECONNECT:
      if (s->conn && s->conn->phase == MTCI_CONN_READY) {
        int err = ev.type == MTCI_SEV_DEAD ? MTC_ERR_SESSION_DEAD
                                           : (ev.code ? ev.code : MTC_ERR_SESSION_BAD_MSG);
        (void)mtci_conn_fail(s->conn, err);
        conn_lost(ctx, s, err, now);
      }
      break;
    default: break;
    }
  }
  if (s->has_sess) {
    /* A session's offset only moves forward, to the newest server msg_id's
     * time minus the one-way delay: never above the truth. It corrects a
     * handshake's whole-second offset, which can be up to a second behind
     * (key renewal would then be late by as much). Moves under 50 ms are
     * left alone: no state save per packet. */
    int64_t off = mtci_session_server_time_ms(s->sess, 0);
    if (ctx->time_synced ? off >= ctx->time_offset_ms + 50 : off != ctx->time_offset_ms) {
      ctx->time_offset_ms = off;
      ctx->dirty_minor = 1;
    }
  }
}

/* ---- the pump ---------------------------------------------------------------------------------- */

static void close_idle(mtc_context *ctx, mtci_slot *s) {
  LOGI("dc %d (%s %d): closing idle connection", dc_id_of(ctx, s), slot_kind(s), s->index);
  report(ctx, s, MTC_CONN_CLOSED, 0);
  close_conn(ctx, s, s->conn);
  s->conn = NULL;
  s->idle_since = 0;
  if (s->media) {
    if (s->has_sess) free_session(ctx, s);
    slot_reset(s);
  }
}

static void service_slot(mtc_context *ctx, mtci_slot *s, int64_t now) {
  if (s->sess_recreated == 2) {
    s->sess_recreated = 0;
    emit_recreated(ctx, s);
  }
  if (s->hidden == 2 && !slot_busy(s) && !slot_has_sent(ctx, s)) {
    LOGI("dc %d: the previous session's requests are answered: closing its connection",
         dc_id_of(ctx, s));
    retired_close(ctx, dcx_of(ctx, s));
    return;
  }
  if (!s->hidden && slot_old_key(ctx, s) && !slot_has_sent(ctx, s) &&
      mtci_session_pending(s->sess) == 0) {
    close_stale(ctx, s, now); /* its requests wait on it: placed in a new session below */
    return;
  }
  mtci_conn *c = s->conn;
  if (c) {
    if (c->phase == MTCI_CONN_IDLE && !c->key_done) transport_up(ctx, s, now);
    c = s->conn;
    if (!c) return;
    if (c->phase == MTCI_CONN_READY) send_bind(ctx, s); /* PFS: (re)bind if needed */
    if (c->phase == MTCI_CONN_READY && !slot_wanted(ctx, s)) {
      if (!s->idle_since) s->idle_since = now;
      else if (now - s->idle_since >= ctx->set.idle_close_ms) close_idle(ctx, s);
    } else {
      s->idle_since = 0;
    }
    return;
  }
  if (slot_dials(s)) return;
  if (s->media && !slot_busy(s)) { /* a media slot without work or connection: release it */
    if (s->reported != 0 && s->reported != MTC_CONN_CLOSED) report(ctx, s, MTC_CONN_CLOSED, 0);
    if (s->has_sess) free_session(ctx, s);
    slot_reset(s);
    return;
  }
  if (!slot_wanted(ctx, s) || s->gave_up || now < s->retry_at) return;
  mtci_ctx_dc *x = dcx_of(ctx, s);
  if (!dc_of(ctx, s)->has_perm && x->keying && x->keying != s) return;
  if (!mtci_ctx_proxy_ready(ctx, now)) return; /* the proxy's host name is being resolved */
  start_round(ctx, s, now);
}

static void expire(mtc_context *ctx, int64_t now) {
  for (int guard = 0; guard < 1000000; guard++) {
    mtci_req *r = ctx->head;
    int acted = 0;
    for (; r; r = r->next) {
      if (r->deadline && now >= r->deadline) {
        req_fail(ctx, r, MTC_ERR_TIMEOUT);
        acted = 1;
        break;
      }
      if (r->state == MTCI_RS_WAIT_FLOOD && now >= r->wake_at && r->held_err) {
        req_fail(ctx, r, r->held_err); /* held back from its mtc_invoke (req_fail) */
        acted = 1;
        break;
      }
      if (r->state == MTCI_RS_WAIT_FLOOD && now >= r->wake_at) {
        r->state = MTCI_RS_PENDING;
        r->slot = NULL;
        ctx->changed = 1;
      }
    }
    if (!acted) break;
  }
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    for (int k = 0; k < K_SLOTS; k++) {
      mtci_slot *s = slot_at(ctx, i, k);
      if (!s || !s->used) continue;
      for (int j = 0; j < MTCI_CTX_RACE; j++)
        if (s->dials[j] && now >= mtci_conn_deadline(s->dials[j]))
          dial_failed(ctx, s, j, MTC_ERR_IO_TIMED_OUT, now);
      if (s->conn && now >= mtci_conn_deadline(s->conn)) {
        mtci_conn *c = s->conn;
        int rc = mtci_conn_on_deadline(c, now);
        if (s->has_sess) drain(ctx, s, now);
        if (rc && s->conn == c) conn_lost(ctx, s, rc, now);
        ctx->changed = 1;
      }
      if (!s->conn && slot_dials(s) && s->next_cand < s->n_cands && now >= s->next_dial_at)
        dial_next(ctx, s, now);
    }
  }
}

static void flush_all(mtc_context *ctx, int64_t now) {
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    for (int k = 0; k < K_SLOTS; k++) {
      mtci_slot *s = slot_at(ctx, i, k);
      if (!s || !s->used || !s->conn) continue;
      mtci_conn *c = s->conn;
      if (c->phase == MTCI_CONN_READY) {
        int rc = mtci_conn_flush(c, now);
        if (rc < 0) {
          conn_lost(ctx, s, rc, now);
          continue;
        }
      }
      write_out(ctx, s, now);
      /* idle (nothing in flight, nothing left to write): give the buffers
       * back; a busy connection keeps them so large transfers do not
       * reallocate for every packet */
      const uint8_t *left;
      if (s->conn == c && c->phase == MTCI_CONN_READY && !slot_busy(s) &&
          mtci_conn_pending(c, &left) == 0)
        mtci_conn_trim(c);
    }
  }
}

static void pump(mtc_context *ctx, int64_t now) {
  pfs_renew(ctx, now);
  recount(ctx);
  /* requests: restart the walk after anything that may have run a callback */
  for (int guard = 0; guard < 1000000; guard++) {
    mtci_req *r = ctx->head;
    while (r && !(r->state == MTCI_RS_PENDING && !r->slot)) r = r->next;
    if (!r) break;
    place(ctx, r, now); /* r is placed, waiting on a slot, or finished: never unplaced */
  }
  /* requests that wait for a key sit on their slot; re-place them once it exists */
  for (mtci_req *r = ctx->head; r; r = r->next) {
    if (r->state != MTCI_RS_PENDING || !r->slot) continue;
    if (dc_usable(ctx, (size_t)r->slot->dci) && !slot_old_key(ctx, r->slot)) {
      r->slot->n_assigned--;
      r->slot = NULL;
      ctx->changed = 1;
    }
  }
  if (ctx->config_wanted && !ctx->config_inflight && !ctx->closing) {
    uint8_t body[4];
    mtci_put_le32(body, MTC_TL_ID_fn_help_getConfig);
    if (req_new(ctx, MTCI_REQ_CONFIG, ctx->config_dc ? MTC_TARGET_DC : MTC_TARGET_MAIN,
                ctx->config_dc, body, sizeof body)) {
      ctx->config_inflight = 1;
      LOGD("requesting help.getConfig");
    }
    ctx->config_wanted = 0;
    ctx->config_dc = 0;
  }
  mtci_ctx_disc_pump(ctx, now);
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    for (int k = 0; k < K_SLOTS; k++) {
      mtci_slot *s = slot_at(ctx, i, k);
      if (s && s->used) service_slot(ctx, s, now);
    }
  }
  flush_all(ctx, now);
}

int64_t mtci_ctx_next_deadline(const mtc_context *ctx) {
  int64_t t = INT64_MAX;
  for (const mtci_req *r = ctx->head; r; r = r->next) {
    if (r->deadline) t = min64(t, r->deadline);
    if (r->state == MTCI_RS_WAIT_FLOOD) t = min64(t, r->wake_at);
  }
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    const mtci_ctx_dc *x = dcx_at(ctx, i);
    const mtci_dc *d = ctx->dcs.dcs[i];
    if (ctx->set.pfs && d->has_temp && x->renewing == RENEW_NONE)
      t = min64(t, temp_renew_at(ctx, d) * 1000 - ctx->time_offset_ms);
    if (ctx->set.pfs && d->has_temp && x->renewing == RENEW_BACKGROUND) /* the fallback */
      t = min64(t, d->temp_expires_at * 1000 - ctx->time_offset_ms);
    for (int k = 0; k < K_SLOTS; k++) {
      const mtci_slot *s = slot_at_c(ctx, i, k);
      if (!s || !s->used) continue;
      for (int j = 0; j < MTCI_CTX_RACE; j++)
        if (s->dials[j]) t = min64(t, mtci_conn_deadline(s->dials[j]));
      if (s->conn) {
        t = min64(t, mtci_conn_deadline(s->conn));
        if (s->conn->phase == MTCI_CONN_READY && s->idle_since)
          t = min64(t, s->idle_since + ctx->set.idle_close_ms);
        continue;
      }
      if (slot_dials(s)) {
        if (s->next_cand < s->n_cands) t = min64(t, s->next_dial_at);
        continue;
      }
      int waits_key = !ctx->dcs.dcs[i]->has_perm && x->keying && x->keying != s;
      if (slot_wanted(ctx, s) && !s->gave_up && !waits_key)
        t = min64(t, mtci_ctx_proxy_gate(ctx, s->retry_at)); /* later while the proxy resolves */
    }
  }
  if (ctx->dirty_minor) t = min64(t, ctx->last_save_ms + MTCI_CTX_SAVE_THROTTLE_MS);
  t = min64(t, mtci_ctx_disc_deadline(ctx));
  return t;
}

void mtci_ctx_enter(mtc_context *ctx) { ctx->depth++; }

void mtci_ctx_leave(mtc_context *ctx) {
  if (ctx->depth > 1) {
    ctx->depth--;
    return;
  }
  if (!ctx->closing) {
    int64_t now = now_of(ctx);
    for (int round = 0; round < MTCI_CTX_PUMP_ROUNDS; round++) {
      ctx->changed = 0;
      expire(ctx, now);
      pump(ctx, now);
      if (!ctx->changed) break;
    }
    maybe_save(ctx, now);
    int64_t d = mtci_ctx_next_deadline(ctx);
    ctx->io.arm(ctx->io.ud, d == INT64_MAX ? -1 : d);
  }
  ctx->depth = 0;
  /* A callback run by the work above (another request's timeout, say)
   * freed the context inside a top-level mtc_invoke: its new request would
   * be cancelled by the free inside that call, which promises the callback
   * never runs there. mtc_invoke fails with MTC_ERR_CLOSED instead, and a
   * failed mtc_invoke never calls back: the request goes without one. */
  if (ctx->free_deferred && ctx->invoking && ctx->invoke_refused) {
    mtci_req *r = req_find(ctx, ctx->invoking);
    if (r && r->kind == MTCI_REQ_APP) {
      if (r->state == MTCI_RS_SENT && r->slot && r->slot->has_sess)
        (void)mtci_session_cancel(r->slot->sess, r->id);
      req_unlink(ctx, r);
      req_free(r);
      *ctx->invoke_refused = 1;
    }
  }
  ctx->invoking = 0; /* the outermost call returns: its request's failures go as usual */
  ctx->invoke_refused = NULL;
  if (ctx->free_deferred && ctx->io.finalize) ctx->io.finalize(ctx->io.ud);
}

/* ---- settings ------------------------------------------------------------------------------------ */

void mtc_settings_default(mtc_settings *s) {
  if (!s) return;
  memset(s, 0, sizeof *s);
  s->version = MTC_SETTINGS_VERSION;
  s->transport = MTC_TRANSPORT_INTERMEDIATE;
  s->obfuscate = 1;
  s->main_dc = 2;
  s->media_connections_per_dc = 2;
  s->connect_timeout_ms = 10000;
  s->connect_stagger_ms = 250;
  s->reconnect_initial_ms = 1000;
  s->reconnect_max_ms = 30000;
  s->max_connect_attempts = 8;
  s->max_connects_per_minute = 20;
  s->ping_interval_ms = 60000;
  s->ping_disconnect_delay_s = 75;
  s->idle_close_ms = 60000;
  s->flood_wait_auto_s = 5;
  s->temp_key_expires_s = 86400;
  s->log_level = MTC_LOG_INFO;
}

/* Built-in seeds, PROTOCOL.md §2.3 (tdesktop's list): static, port 443. */
static const struct {
  int test, dc;
  const char *ip;
} k_seeds[] = {
    {0, 1, "149.154.175.50"},        {0, 2, "149.154.167.51"},
    {0, 2, "95.161.76.100"},         {0, 3, "149.154.175.100"},
    {0, 4, "149.154.167.91"},        {0, 5, "149.154.171.5"},
    {0, 1, "2001:b28:f23d:f001::a"}, {0, 2, "2001:67c:4e8:f002::a"},
    {0, 3, "2001:b28:f23d:f003::a"}, {0, 4, "2001:67c:4e8:f004::a"},
    {0, 5, "2001:b28:f23f:f005::a"}, {1, 1, "149.154.175.10"},
    {1, 2, "149.154.167.40"},        {1, 3, "149.154.175.117"},
    {1, 1, "2001:b28:f23d:f001::e"}, {1, 2, "2001:67c:4e8:f002::e"},
    {1, 3, "2001:b28:f23d:f003::e"},
};

static int fail_msg(char *msg, size_t msg_len, int rc, const char *text) {
  if (msg && msg_len) snprintf(msg, msg_len, "%s", text);
  return rc;
}

static int64_t pick_ms(int v, int64_t def) { return v > 0 ? v : def; }

int mtci_ctx_init(mtc_context *ctx, const mtc_settings *s, const mtc_callbacks *cb,
                  void *user_data, char *msg, size_t msg_len) {
  if (cb) ctx->cb = *cb;
  ctx->user_data = user_data;
  ctx->next_id = 1;
  ctx->set.log_level = MTC_LOG_INFO;
  mtci_dc_table_init_ext(&ctx->dcs, sizeof(mtci_ctx_dc), dcx_init, ctx);
  if (!s) return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings missing");
  if (s->version != MTC_SETTINGS_VERSION)
    return fail_msg(msg, msg_len, MTC_ERR_VERSION, "settings.version is not MTC_SETTINGS_VERSION");
  mtci_ctx_settings *t = &ctx->set;
  t->log_level = s->log_level < MTC_LOG_ERROR   ? MTC_LOG_ERROR
                 : s->log_level > MTC_LOG_DEBUG ? MTC_LOG_DEBUG
                                                : (int)s->log_level;
  t->api_id = s->api_id;
  const char *src[6] = {s->device_model,     s->system_version, s->app_version,
                        s->system_lang_code, s->lang_pack,      s->lang_code};
  for (int i = 0; i < 6; i++) {
    const char *v = src[i] ? src[i] : "";
    size_t n = strlen(v);
    if (n > MTCI_CTX_STR_MAX) {
      if (msg && msg_len) snprintf(msg, msg_len, "settings.%s: longer than 255 bytes", k_str_names[i]);
      return MTC_ERR_INVALID_ARG;
    }
    t->strs[i] = malloc(n + 1);
    if (!t->strs[i]) return MTC_ERR_NOMEM;
    memcpy(t->strs[i], v, n + 1);
  }
  {
    const char *v = s->api_hash ? s->api_hash : "";
    size_t n = strlen(v);
    if (n > MTCI_CTX_STR_MAX) return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.api_hash too long");
    t->api_hash = malloc(n + 1);
    if (!t->api_hash) return MTC_ERR_NOMEM;
    memcpy(t->api_hash, v, n + 1);
  }
  t->test_dcs = s->test_dcs != 0;
  int tr = s->transport ? (int)s->transport : MTC_TRANSPORT_INTERMEDIATE;
  if (tr < MTC_TRANSPORT_ABRIDGED || tr > MTC_TRANSPORT_FULL)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.transport unknown");
  t->codec = tr; /* MTC_TRANSPORT_* and mtci_codec_kind share values */
  t->obfuscate = s->obfuscate != 0;
  if (tr == MTC_TRANSPORT_FULL && t->obfuscate)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "the full transport is never obfuscated");
  t->prefer_ipv6 = s->prefer_ipv6 != 0;
  t->main_dc = s->main_dc ? s->main_dc : 2;
  if (t->main_dc < 1 || t->main_dc > MTCI_DC_MAX_ID)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.main_dc outside 1..999");
  t->media_cap = s->media_connections_per_dc ? s->media_connections_per_dc : 2;
  if (t->media_cap < 1 || t->media_cap > MTCI_CTX_MAX_MEDIA)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.media_connections_per_dc outside 1..8");
  if (s->connect_timeout_ms < 0 || s->connect_stagger_ms < 0 || s->reconnect_initial_ms < 0 ||
      s->reconnect_max_ms < 0 || s->max_connect_attempts < 0 || s->max_connects_per_minute < 0 ||
      s->ping_interval_ms < 0 || s->ping_disconnect_delay_s < 0 || s->idle_close_ms < 0)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "a timing or limit setting is negative");
  t->connect_timeout_ms = pick_ms(s->connect_timeout_ms, 10000);
  t->stagger_ms = pick_ms(s->connect_stagger_ms, 250);
  t->reconnect_initial_ms = pick_ms(s->reconnect_initial_ms, 1000);
  t->reconnect_max_ms = pick_ms(s->reconnect_max_ms, 30000);
  if (t->reconnect_max_ms < t->reconnect_initial_ms) t->reconnect_max_ms = t->reconnect_initial_ms;
  t->max_attempts = s->max_connect_attempts ? s->max_connect_attempts : 8;
  t->max_per_minute = s->max_connects_per_minute ? s->max_connects_per_minute : 20;
  if (t->max_per_minute > MTCI_POLICY_RATE_SLOTS) t->max_per_minute = MTCI_POLICY_RATE_SLOTS;
  t->ping_interval_ms = (int32_t)pick_ms(s->ping_interval_ms, 60000);
  t->ping_disconnect_s = (int32_t)pick_ms(s->ping_disconnect_delay_s, 75);
  t->idle_close_ms = pick_ms(s->idle_close_ms, 60000);
  t->flood_auto_s = s->flood_wait_auto_s > 0 ? s->flood_wait_auto_s : 0;
  t->no_auto_config = s->no_auto_config != 0;
  t->pfs = s->pfs != 0;
  if (s->temp_key_expires_s < 0)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.temp_key_expires_s negative");
  t->temp_expires_s = s->temp_key_expires_s ? s->temp_key_expires_s : 86400;
  if (t->pfs && t->temp_expires_s < 4)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.temp_key_expires_s below 4 s");
  if (s->state_path) {
    size_t n = strlen(s->state_path);
    if (n == 0 || n > 4096) return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.state_path empty or too long");
    t->state_path = malloc(n + 1);
    if (!t->state_path) return MTC_ERR_NOMEM;
    memcpy(t->state_path, s->state_path, n + 1);
  }
  if (s->proxy) {
    const char *why = NULL;
    int rc = mtci_proxy_link_parse(s->proxy, strlen(s->proxy), &t->proxy, &why);
    if (rc) {
      if (msg && msg_len) snprintf(msg, msg_len, "settings.proxy: %s", why ? why : mtc_strerror(rc));
      return MTC_ERR_INVALID_ARG;
    }
    rc = mtci_ctx_proxy_init(ctx, msg, msg_len); /* host names are resolved when dialing */
    if (rc) return rc;
    if (tr == MTC_TRANSPORT_FULL && t->proxy.type == MTCI_PROXY_MTPROTO)
      return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "an MTProxy cannot carry the full transport");
    t->has_proxy = 1;
  }
  /* seeds */
  if (s->n_seeds && !s->seeds) return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.seeds missing");
  if (s->seeds) {
    for (size_t i = 0; i < s->n_seeds; i++) {
      const mtc_dc_address *a = &s->seeds[i];
      mtci_dc_option o = {a->dc_id, a->ip, a->ip ? strlen(a->ip) : 0, a->port, a->flags,
                          a->secret, a->secret_len};
      mtci_dc *dc = mtci_dc_option_check(&o) == 0 ? mtci_dc_get(&ctx->dcs, a->dc_id) : NULL;
      int rc = dc ? mtci_dc_add_addr(dc, &o, MTCI_DC_FROM_SEED) : MTC_ERR_INVALID_ARG;
      if (dc) dc->seed = 1;
      if (rc < 0) {
        if (msg && msg_len) snprintf(msg, msg_len, "settings.seeds[%zu]: invalid or too many", i);
        return MTC_ERR_INVALID_ARG;
      }
    }
  } else {
    for (size_t i = 0; i < sizeof k_seeds / sizeof k_seeds[0]; i++) {
      if (k_seeds[i].test != t->test_dcs) continue;
      int v6 = strchr(k_seeds[i].ip, ':') != NULL;
      mtci_dc_option o = {k_seeds[i].dc, k_seeds[i].ip, strlen(k_seeds[i].ip), 443,
                          MTC_ADDR_STATIC | (v6 ? MTC_ADDR_IPV6 : 0u), NULL, 0};
      mtci_dc *dc = mtci_dc_get(&ctx->dcs, k_seeds[i].dc);
      if (!dc || mtci_dc_add_addr(dc, &o, MTCI_DC_FROM_SEED) < 0) return MTC_ERR_INTERNAL;
      dc->seed = 1;
    }
  }
  /* RSA keys */
  mtci_rsa_keyset_init(&ctx->keys);
  if (!s->no_builtin_rsa_keys) {
    int rc = mtci_rsa_keyset_add_builtin(&ctx->keys, t->test_dcs);
    if (rc) return fail_msg(msg, msg_len, rc, "built-in RSA keys failed to parse");
  }
  if (s->n_rsa_keys && !s->rsa_keys_pem) return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.rsa_keys_pem missing");
  for (size_t i = 0; i < s->n_rsa_keys; i++) {
    const char *pem = s->rsa_keys_pem[i];
    int rc = pem ? mtci_rsa_keyset_add_pem(&ctx->keys, pem, strlen(pem)) : MTC_ERR_INVALID_ARG;
    if (rc) {
      if (msg && msg_len) snprintf(msg, msg_len, "settings.rsa_keys_pem[%zu]: %s", i, mtc_strerror(rc));
      return MTC_ERR_INVALID_ARG;
    }
  }
  if (ctx->keys.count == 0) return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "no RSA keys");
  ctx->main_dc = t->main_dc;
  (void)mtci_dc_get(&ctx->dcs, ctx->main_dc);
  return mtci_ctx_disc_init(ctx, s, s->seeds == NULL, msg, msg_len);
}

int mtci_ctx_load_state(mtc_context *ctx, const mtci_state *st) {
  if ((st->test_dcs != 0) != (ctx->set.test_dcs != 0)) return MTC_ERR_STATE_MISMATCH;
  /* more DCs than fit (the seeds changed since the save): every DC with an
   * auth key stays, seed-only DCs give way (dc.h); a key is never dropped */
  int out[MTCI_DC_MAX_DCS];
  size_t n_out = 0;
  int rc = mtci_dc_table_from_state(&ctx->dcs, st, st->main_dc ? st->main_dc : ctx->main_dc, out,
                                    &n_out);
  if (rc) return rc; /* out of memory: the table is incomplete, fail (never save it) */
  if (n_out) {
    char ids[MTCI_DC_MAX_DCS * 5 + 1] = "";
    size_t used = 0;
    for (size_t i = 0; i < n_out && used < sizeof ids; i++) {
      int w = snprintf(ids + used, sizeof ids - used, "%s%d", i ? " " : "", out[i]);
      if (w < 0) break;
      used += (size_t)w;
    }
    LOGW("saved state and seeds together name more DCs than fit (%d): %zu DCs left out (%s); "
         "every DC with an auth key is kept",
         MTCI_DC_MAX_DCS, n_out, ids);
  }
  if (st->main_dc) ctx->main_dc = st->main_dc;
  (void)mtci_dc_get(&ctx->dcs, ctx->main_dc);
  ctx->time_offset_ms = st->time_offset_ms;
  ctx->time_synced = 0;
  ctx->discovered = st->discovered;
  return 0;
}

void mtci_ctx_shutdown(mtc_context *ctx) {
  ctx->depth++;
  ctx->closing = 1;
  for (int guard = 0; guard < 1000000 && ctx->head; guard++) req_fail(ctx, ctx->head, MTC_ERR_CANCELLED);
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    for (int k = 0; k < K_SLOTS; k++) {
      mtci_slot *s = slot_at(ctx, i, k);
      if (!s) continue;
      for (int j = 0; j < MTCI_CTX_RACE; j++) {
        if (s->dials[j]) {
          close_conn(ctx, s, s->dials[j]);
          s->dials[j] = NULL;
        }
      }
      if (s->conn) {
        close_conn(ctx, s, s->conn);
        s->conn = NULL;
      }
      if (s->has_sess) {
        mtci_session_free(s->sess);
        free(s->sess);
        s->sess = NULL;
        s->has_sess = 0;
      }
    }
  }
  if ((ctx->dirty || ctx->dirty_minor) && ctx->io.save) (void)save_now(ctx, ctx->io.now_ms(ctx->io.ud));
  ctx->depth--;
}

void mtci_ctx_destroy(mtc_context *ctx) {
  while (ctx->head) {
    mtci_req *r = ctx->head;
    req_unlink(ctx, r);
    req_free(r);
  }
  for (int i = 0; i < 6; i++) free(ctx->set.strs[i]);
  if (ctx->set.api_hash) {
    mtci_zeroize(ctx->set.api_hash, strlen(ctx->set.api_hash));
    free(ctx->set.api_hash);
  }
  free(ctx->set.state_path);
  mtci_proxy_link_free(&ctx->set.proxy);
  mtci_ctx_disc_clear(ctx);
  for (size_t i = 0; i < ctx->dcs.n; i++) {
    mtci_ctx_dc *x = dcx_at(ctx, i);
    for (int k = 0; k < K_SLOTS; k++) {
      mtci_slot *s = slot_at(ctx, i, k);
      if (!s) continue;
      mtci_ctx_cands_drop(s);
      if (s->has_sess) mtci_session_free(s->sess);
      free(s->sess);
      s->sess = NULL;
      s->has_sess = 0;
    }
    free(x->media);
    x->media = NULL;
    if (x->rn) mtci_zeroize(x->rn, sizeof *x->rn);
    free(x->rn);
    x->rn = NULL;
    free(x->rate);
    x->rate = NULL;
  }
  mtci_dc_table_clear(&ctx->dcs);
  mtci_rsa_keyset_clear(&ctx->keys);
}

/* ---- public: requests ------------------------------------------------------------------------------ */

int mtc_invoke(mtc_context *ctx, const mtc_invoke_options *opts, const uint8_t *body, size_t len,
               mtc_result_fn fn, void *user_data, uint64_t *request_id) {
  if (request_id) *request_id = 0;
  if (!ctx || !fn || !body || len < 4 || len % 4 || len > MTCI_SESSION_MAX_BODY)
    return MTC_ERR_INVALID_ARG;
  if (ctx->closing || ctx->free_deferred) return MTC_ERR_CLOSED;
  mtc_target target = opts ? opts->target : MTC_TARGET_MAIN;
  int dc_id = opts ? opts->dc_id : 0;
  if (target != MTC_TARGET_MAIN && target != MTC_TARGET_DC && target != MTC_TARGET_MEDIA)
    return MTC_ERR_INVALID_ARG;
  if (target == MTC_TARGET_DC && (dc_id < 1 || dc_id > MTCI_DC_MAX_ID)) return MTC_ERR_DC_UNKNOWN;
  if (target == MTC_TARGET_MEDIA && (dc_id < 0 || dc_id > MTCI_DC_MAX_ID)) return MTC_ERR_DC_UNKNOWN;
  if (opts && opts->timeout_ms < 0) return MTC_ERR_INVALID_ARG;
  mtci_ctx_enter(ctx);
  mtci_ctx_disc_note_request(ctx, body, len);
  mtci_req *r = req_new(ctx, MTCI_REQ_APP, target, target == MTC_TARGET_MAIN ? 0 : dc_id, body, len);
  if (!r) {
    mtci_ctx_leave(ctx);
    return MTC_ERR_NOMEM;
  }
  r->fn = fn;
  r->ud = user_data;
  r->flags = opts ? opts->flags : 0;
  if (opts && opts->timeout_ms > 0) r->deadline = now_of(ctx) + opts->timeout_ms;
  int refused = 0;
  if (ctx->depth == 1) { /* the pump runs inside this call: see req_fail and leave */
    ctx->invoking = r->id;
    ctx->invoke_refused = &refused;
  }
  if (request_id) *request_id = r->id;
  mtci_ctx_leave(ctx); /* may free ctx (a deferred mtc_context_free) */
  if (refused) {
    if (request_id) *request_id = 0;
    return MTC_ERR_CLOSED;
  }
  return 0;
}

int mtc_invoke_object(mtc_context *ctx, const mtc_invoke_options *opts,
                      const struct mtc_tl_object *request, mtc_result_fn fn, void *user_data,
                      uint64_t *request_id) {
  if (request_id) *request_id = 0;
  if (!ctx || !request || !fn) return MTC_ERR_INVALID_ARG;
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = mtc_tl_serialize(request, &buf, &len);
  if (rc) return rc;
  rc = mtc_invoke(ctx, opts, buf, len, fn, user_data, request_id);
  mtc_tl_buffer_free(buf);
  return rc;
}

int mtc_cancel(mtc_context *ctx, uint64_t request_id) {
  if (!ctx) return MTC_ERR_INVALID_ARG;
  mtci_req *r = req_find(ctx, request_id);
  if (!r || r->kind != MTCI_REQ_APP) return MTC_ERR_REQUEST_UNKNOWN;
  mtci_ctx_enter(ctx);
  req_fail(ctx, r, MTC_ERR_CANCELLED);
  mtci_ctx_leave(ctx);
  return 0;
}

/* ---- public: state ------------------------------------------------------------------------------------ */

int mtc_context_main_dc(const mtc_context *ctx) { return ctx ? ctx->main_dc : 0; }

int mtc_context_set_main_dc(mtc_context *ctx, int dc_id) {
  if (!ctx) return MTC_ERR_INVALID_ARG;
  if (dc_id < 1 || dc_id > MTCI_DC_MAX_ID) return MTC_ERR_DC_UNKNOWN;
  mtci_ctx_enter(ctx);
  if (dc_index(ctx, dc_id) >= 0) set_main_dc(ctx, dc_id);
  mtci_ctx_leave(ctx);
  return 0;
}

int mtc_context_is_authorized(const mtc_context *ctx, int dc_id) {
  if (!ctx) return 0;
  const mtci_dc *dc = mtci_dc_find_const(&ctx->dcs, dc_id);
  return dc && dc->has_perm && dc->authorized;
}

int mtc_context_set_authorized(mtc_context *ctx, int dc_id, int authorized) {
  if (!ctx) return MTC_ERR_INVALID_ARG;
  mtci_dc *dc = mtci_dc_find(&ctx->dcs, dc_id);
  if (!dc || !dc->has_perm) return MTC_ERR_DC_UNKNOWN;
  mtci_ctx_enter(ctx);
  if ((dc->authorized != 0) != (authorized != 0)) {
    dc->authorized = authorized != 0;
    dcx_at(ctx, dc->index)->transfer = TR_NONE;
    ctx->dirty = 1;
  }
  mtci_ctx_leave(ctx);
  return 0;
}

int32_t mtc_context_api_id(const mtc_context *ctx) { return ctx ? ctx->set.api_id : 0; }
const char *mtc_context_api_hash(const mtc_context *ctx) {
  return ctx && ctx->set.api_hash ? ctx->set.api_hash : "";
}

int mtc_context_save(mtc_context *ctx) {
  if (!ctx) return MTC_ERR_INVALID_ARG;
  if (ctx->closing) return MTC_ERR_CLOSED;
  mtci_ctx_enter(ctx);
  int rc = save_now(ctx, now_of(ctx));
  mtci_ctx_leave(ctx);
  return rc;
}

/* ---- public: counters -------------------------------------------------------------------------------- */

static void dc_bytes(const mtc_context *ctx, size_t i, uint64_t *in, uint64_t *out) {
  const mtci_ctx_dc *x = dcx_at(ctx, i);
  *in = x->bytes_in_closed;
  *out = x->bytes_out_closed;
  for (int k = 0; k < K_SLOTS; k++) {
    const mtci_slot *s = slot_at_c(ctx, i, k);
    if (!s) continue;
    if (s->conn) {
      *in += mtci_conn_bytes_in(s->conn);
      *out += mtci_conn_bytes_out(s->conn);
    }
    for (int j = 0; j < MTCI_CTX_RACE; j++) {
      if (s->dials[j]) {
        *in += mtci_conn_bytes_in(s->dials[j]);
        *out += mtci_conn_bytes_out(s->dials[j]);
      }
    }
  }
}

static void add_totals(mtc_counters *out, const mtc_dc_counters *d) {
  out->connects_started += d->connects_started;
  out->connects_succeeded += d->connects_succeeded;
  out->connects_failed += d->connects_failed;
  out->handshakes_perm += d->handshakes_perm;
  out->handshakes_temp += d->handshakes_temp;
  out->reconnects += d->reconnects;
  out->rpcs_sent += d->rpcs_sent;
  out->bytes_in += d->bytes_in;
  out->bytes_out += d->bytes_out;
}

int mtc_context_counters(const mtc_context *ctx, mtc_counters *out) {
  if (!ctx || !out) return MTC_ERR_INVALID_ARG;
  if (out->version != MTC_COUNTERS_VERSION) return MTC_ERR_VERSION;
  memset(out, 0, sizeof *out);
  out->version = MTC_COUNTERS_VERSION;
  for (size_t i = 0; i < ctx->dcs.n && i < MTC_COUNTERS_MAX_DCS; i++) {
    mtc_dc_counters *d = &out->dcs[out->n_dcs++];
    *d = dcx_at(ctx, i)->ctr;
    d->dc_id = ctx->dcs.dcs[i]->id;
    dc_bytes(ctx, i, &d->bytes_in, &d->bytes_out);
    add_totals(out, d);
  }
  add_totals(out, &ctx->gone); /* DCs that left the table */
  out->state_saves = ctx->saves;
  out->state_save_errors = ctx->save_errors;
  out->requests_pending = ctx->n_reqs;
  mtci_ctx_disc_counters(ctx, out);
  out->dns_queries += ctx->proxy_res.dns_queries; /* the proxy's host lookups */
  return 0;
}

static const char *const k_reason_names[MTC_REASON_COUNT] = {"main", "media", "reconnect", "migrate",
                                                             "discovery"};

static int jset_u(json_t *o, const char *k, uint64_t v) {
  return json_object_set_new(o, k, json_integer((json_int_t)(v > (uint64_t)INT64_MAX ? INT64_MAX : v)));
}

int mtc_context_counters_json(const mtc_context *ctx, char **json) {
  if (!ctx || !json) return MTC_ERR_INVALID_ARG;
  *json = NULL;
  mtc_counters *c = calloc(1, sizeof *c);
  if (!c) return MTC_ERR_NOMEM;
  c->version = MTC_COUNTERS_VERSION;
  (void)mtc_context_counters(ctx, c);
  json_t *root = json_object(), *dcs = json_array(), *tot = json_object();
  int bad = !root || !dcs || !tot;
  for (size_t i = 0; !bad && i < c->n_dcs; i++) {
    const mtc_dc_counters *d = &c->dcs[i];
    json_t *o = json_object(), *by = json_object(), *rs = json_object();
    if (!o || !by || !rs) {
      json_decref(o);
      json_decref(by);
      json_decref(rs);
      bad = 1;
      break;
    }
    json_object_set_new(o, "dc_id", json_integer(d->dc_id));
    jset_u(o, "connects_started", d->connects_started);
    jset_u(o, "connects_succeeded", d->connects_succeeded);
    jset_u(o, "connects_failed", d->connects_failed);
    jset_u(o, "connects_cancelled", d->connects_cancelled);
    for (int k = 0; k < MTC_REASON_COUNT; k++) jset_u(by, k_reason_names[k], d->connects_by_reason[k]);
    json_object_set_new(o, "connects_by_reason", by);
    jset_u(o, "handshakes_perm", d->handshakes_perm);
    jset_u(o, "handshakes_temp", d->handshakes_temp);
    jset_u(o, "handshakes_failed", d->handshakes_failed);
    jset_u(o, "rpcs_sent", d->rpcs_sent);
    jset_u(o, "rpcs_answered", d->rpcs_answered);
    jset_u(o, "rpc_errors", d->rpc_errors);
    jset_u(o, "migrations", d->migrations);
    jset_u(o, "flood_waits", d->flood_waits);
    jset_u(o, "auth_exports", d->auth_exports);
    jset_u(o, "auth_imports", d->auth_imports);
    jset_u(o, "reconnects", d->reconnects);
    for (size_t k = 0; k < d->n_reconnect_reasons; k++) {
      char name[160];
      snprintf(name, sizeof name, "%s (%d)", mtc_strerror(d->reconnect_reasons[k].reason),
               d->reconnect_reasons[k].reason);
      jset_u(rs, name, d->reconnect_reasons[k].count);
    }
    json_object_set_new(o, "reconnect_reasons", rs);
    jset_u(o, "bytes_in", d->bytes_in);
    jset_u(o, "bytes_out", d->bytes_out);
    json_array_append_new(dcs, o);
  }
  if (!bad) {
    jset_u(tot, "connects_started", c->connects_started);
    jset_u(tot, "connects_succeeded", c->connects_succeeded);
    jset_u(tot, "connects_failed", c->connects_failed);
    jset_u(tot, "handshakes_perm", c->handshakes_perm);
    jset_u(tot, "handshakes_temp", c->handshakes_temp);
    jset_u(tot, "reconnects", c->reconnects);
    jset_u(tot, "rpcs_sent", c->rpcs_sent);
    jset_u(tot, "bytes_in", c->bytes_in);
    jset_u(tot, "bytes_out", c->bytes_out);
    json_object_set_new(root, "dcs", dcs);
    json_object_set_new(root, "totals", tot);
    dcs = tot = NULL;
    jset_u(root, "dns_queries", c->dns_queries);
    jset_u(root, "http_requests", c->http_requests);
    jset_u(root, "state_saves", c->state_saves);
    jset_u(root, "state_save_errors", c->state_save_errors);
    jset_u(root, "requests_pending", c->requests_pending);
    json_object_set_new(root, "main_dc", json_integer(ctx->main_dc));
    bad = mtci_ctx_disc_counters_json(c, root) != 0;
  }
  char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
  json_decref(root);
  json_decref(dcs);
  json_decref(tot);
  free(c);
  if (!text) return MTC_ERR_NOMEM;
  /* hand out a buffer of our malloc (jansson's allocator may be replaced) */
  size_t n = strlen(text);
  *json = malloc(n + 1);
  if (*json) memcpy(*json, text, n + 1);
  free(text);
  return *json ? 0 : MTC_ERR_NOMEM;
}

/* ---- for context_discovery.c ------------------------------------------------------------------------ */

int mtci_ctx_slot_wanted(const mtc_context *ctx, const mtci_slot *s) { return slot_wanted(ctx, s); }
void mtci_ctx_give_up(mtc_context *ctx, mtci_slot *s, int err) { give_up(ctx, s, err); }
void mtci_ctx_attempt_failed(mtc_context *ctx, mtci_slot *s, int err, int64_t now) {
  attempt_failed(ctx, s, err, now);
}
void mtci_ctx_emit(mtc_context *ctx, const mtc_event *ev) { emit(ctx, ev); }
mtci_slot *mtci_ctx_slot(mtc_context *ctx, size_t i, int k) { return slot_at(ctx, i, k); }
