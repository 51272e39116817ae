/*
 * A randomized soak of the MTContext against the in-process mock cluster
 * (tests/mockdc), plus the small deterministic cases the soak led to.
 *
 * The soak (cases soak_*, one fixed seed each, about 5 s): after a login
 * without faults, many concurrent requests of mixed kinds - getNearestDc on
 * the main DC, on DC x and on DC x's media connections, upload.getFile parts
 * on the files DC (media, DC 1, and through FILE_MIGRATE_1 from the main
 * DC), users.getUsers - some with a timeout, some without; random cancels
 * of in-flight and of finished requests; invokes and cancels from inside
 * result callbacks; while the mock's fault switches are turned on and off
 * at random moments (close_after_frames, transport_404_once,
 * transport_444_once, flood_connects, wrong_salt, clock_offset(_ms),
 * delay_ms, drop_every, drop_method, lose_method, stall, refuse_seed).
 * PFS on/off, transports and loop modes (mtc_context_run, HOST) vary by
 * seed. Then the faults go off, the timed requests must all have ended,
 * the rest is cancelled (or left to mtc_context_free), and every DC must
 * answer again.
 *
 * Invariants checked (timing-independent):
 *   - every accepted invoke's callback runs exactly once (counted per
 *     request), never inside mtc_invoke, with its own request_id;
 *   - mtc_cancel of a request whose callback has not run returns 0 and the
 *     callback (CANCELLED) has run when it returns; of one that has run,
 *     MTC_ERR_REQUEST_UNKNOWN; CANCELLED only for cancelled/freed requests;
 *   - an OK result is right: getNearestDc's this_dc is the DC that
 *     answered and the one asked, file bytes equal the mock document's,
 *     users.getUsers is a vector of one user;
 *   - MTC_ERR_TIMEOUT only for a request with timeout_ms, never before it;
 *     a timed request ends by its timeout plus a generous slack;
 *   - requests_pending >= the app's requests in flight, 0 at the end;
 *   - counters against the mock's: per DC connects_succeeded <= accepted,
 *     handshakes (perm, temp) <= the mock's, perm handshakes <= connects,
 *     started >= succeeded + failed + cancelled, bytes_in <= the mock's
 *     bytes_out, the mock's bytes_in <= bytes_out;
 *   - after the faults are gone every DC answers (recovery);
 *   - mtc_context_free cancels what is left exactly once (mtc_invoke from
 *     those callbacks: MTC_ERR_CLOSED); ASan/LSan clean in that build.
 *
 * MTC_CHAOS_SEEDS=a-b runs extra seeds (case soak_env); MTC_TEST_VERBOSE=1
 * shows the context's log; a failed soak prints the last log lines.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "context_env.h"
#include "context_requests.h"
#include "mock_dc.h"
#include "mtconn/mtconn.h"
#include "mtconn/tl_api.h"
#include "test.h"
#include "tl/tl.h"

static int g_verbose;
static int g_skew_s = 1;      /* server clock steps up to this many seconds (MTC_CHAOS_SKEW) */
static int g_drop_all;        /* MTC_CHAOS_DROPALL: lossy faults on every DC */
static int g_fault_gap = 300; /* ms between fault switches: 30 + 0..this (MTC_CHAOS_GAP) */

/* ---- a small deterministic PRNG (splitmix64) ---------------------------------------------- */

typedef struct prng {
  uint64_t s;
} prng;

static uint64_t prng_next(prng *p) {
  uint64_t z = (p->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* 0..n-1 */
static int prng_below(prng *p, int n) { return n <= 1 ? 0 : (int)(prng_next(p) % (uint64_t)n); }
/* 1 with probability pct/100 */
static int prng_pct(prng *p, int pct) { return prng_below(p, 100) < pct; }

/* ---- the soak's state ------------------------------------------------------------------------ */

enum {
  K_NEAREST_MAIN = 0, /* help.getNearestDc, MTC_TARGET_MAIN */
  K_NEAREST_DC,       /* help.getNearestDc, MTC_TARGET_DC x */
  K_NEAREST_MEDIA,    /* help.getNearestDc, MTC_TARGET_MEDIA x */
  K_FILE_MEDIA,       /* upload.getFile, MTC_TARGET_MEDIA 1 */
  K_FILE_DC,          /* upload.getFile, MTC_TARGET_DC 1 */
  K_FILE_MAIN,        /* upload.getFile, MTC_TARGET_MAIN: FILE_MIGRATE_1 */
  K_SELF,             /* users.getUsers([inputUserSelf]), main DC */
  K_COUNT
};
static const char *const k_kind[K_COUNT] = {"nearest_main", "nearest_dc", "nearest_media",
                                            "file_media",   "file_dc",    "file_main",
                                            "self"};

#define MAX_SLOTS 3000
#define MAX_OUT 40
#define HOME_DC 5
#define FILES_DC 1
#define N_DCS CTX_ENV_DCS

typedef struct slot {
  int kind, dc;          /* dc: the DC asked (0: main) */
  int64_t offset;
  int32_t limit;
  int timeout_ms;
  int64_t issued;        /* mono_ms() */
  uint64_t id;
  int calls;
  int rkind, rerr, rdc;
  int32_t rcode;
  char rmsg[48];
  int64_t done_at;
  int cancel_tried;      /* mtc_cancel called while it was in flight */
  int freed;             /* in flight at mtc_context_free */
  int probe;             /* a recovery probe */
  int invoke_from_cb_rc; /* freed: mtc_invoke from its callback (1: not tried) */
} slot;

#define LOG_RING 400
#define LOG_LINE 240

typedef struct soak {
  uint64_t seed;
  int mode; /* 0 run, 1 host */
  int pfs;
  mtc_context *ctx;
  ctx_host host;
  ctx_env env;
  prng ops;    /* the loop thread's */
  prng faults; /* the test thread's */
  slot *slots; /* MAX_SLOTS */
  int n_slots;
  int in_invoke, cb_depth;
  slot *invoking; /* the slot mtc_invoke is issuing (in_invoke) */
  int closing; /* mtc_context_free under way */
  int64_t t0;
  int violations;
  char first_violation[256];
  /* counts */
  unsigned by_kind[K_COUNT], by_result[4];
  unsigned cancels_ok, cancels_unknown, invokes_from_cb, cancels_from_cb, timeouts;
  unsigned fault_switches, faults_by[16];
  unsigned refuse_on[N_DCS + 1]; /* refuse_seed switched on, by DC */
  unsigned rpc_errors;
  unsigned others_in_invoke;
  int64_t recovery_ms; /* callbacks of other requests run inside a top-level mtc_invoke */
  char rpc_error_names[8][48];
  unsigned rpc_error_counts[8];
  unsigned lib_errors[8];
  int lib_error_codes[8];
  /* log ring */
  char (*ring)[LOG_LINE];
  unsigned ring_n;
} soak;

static soak *g_s; /* the soak in progress (the callbacks' user_data is the slot) */

static void dump_ring(soak *s, unsigned last);

static void violation(soak *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void violation(soak *s, const char *fmt, ...) {
  char m[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  if (s->violations <= 20)
    fprintf(stderr, "  VIOLATION seed %llu t=%lld: %s\n", (unsigned long long)s->seed,
            (long long)(mono_ms() - s->t0), m);
  if (s->violations++ == 0) {
    snprintf(s->first_violation, sizeof s->first_violation, "%s", m);
    dump_ring(s, 60);
  }
}

static void note_name(char names[8][48], unsigned counts[8], const char *name) {
  for (int i = 0; i < 8; i++) {
    if (names[i][0] && strcmp(names[i], name) == 0) {
      counts[i]++;
      return;
    }
    if (!names[i][0]) {
      snprintf(names[i], 48, "%s", name);
      counts[i] = 1;
      return;
    }
  }
}

static void note_code(soak *s, int code) {
  for (int i = 0; i < 8; i++) {
    if (s->lib_error_codes[i] == code && s->lib_errors[i]) {
      s->lib_errors[i]++;
      return;
    }
    if (!s->lib_errors[i]) {
      s->lib_error_codes[i] = code;
      s->lib_errors[i] = 1;
      return;
    }
  }
}

/* ---- callbacks ------------------------------------------------------------------------------- */

static void cb_watch(void *ud, int fd, unsigned events) {
  soak *s = ud;
  ctx_host_watch(&s->host, fd, events);
}

static void cb_timer(void *ud, int64_t delay) {
  soak *s = ud;
  ctx_host_timer(&s->host, delay);
}

static void cb_log(void *ud, mtc_log_level level, const char *line) {
  soak *s = ud;
  if (s->ring) {
    snprintf(s->ring[s->ring_n % LOG_RING], LOG_LINE, "%lld %d %s", (long long)(mono_ms() - s->t0),
             (int)level, line);
    s->ring_n++;
  }
  if (g_verbose) fprintf(stderr, "    [%lld %d] %s\n", (long long)(mono_ms() - s->t0), level, line);
}

static void dump_ring(soak *s, unsigned last) {
  if (!s->ring) return;
  unsigned n = s->ring_n < LOG_RING ? s->ring_n : LOG_RING;
  if (last < n) n = last;
  fprintf(stderr, "  --- the context's last %u log lines ---\n", n);
  for (unsigned i = s->ring_n - n; i < s->ring_n; i++) fprintf(stderr, "    %s\n", s->ring[i % LOG_RING]);
}

static int outstanding(const soak *s) {
  int n = 0;
  for (int i = 0; i < s->n_slots; i++)
    if (s->slots[i].calls == 0) n++;
  return n;
}

/* ---- result checks --------------------------------------------------------------------------- */

/* The content of an OK result; 0 or -1 (with a violation). */
static int check_ok(soak *s, const slot *q, const mtc_result *r) {
  int want_dc = q->dc ? q->dc : HOME_DC;
  if (q->kind == K_FILE_MEDIA || q->kind == K_FILE_DC || q->kind == K_FILE_MAIN) want_dc = FILES_DC;
  if (r->dc_id != want_dc) {
    violation(s, "%s #%llu: answered by dc %d, not %d", k_kind[q->kind], (unsigned long long)q->id,
              r->dc_id, want_dc);
    return -1;
  }
  if (q->kind == K_SELF) {
    if (r->len < 12 || mtci_le32(r->data) != MTCI_TL_VECTOR_ID || mtci_le32(r->data + 4) != 1 ||
        mtci_le32(r->data + 8) != MTC_TL_ID_user) {
      violation(s, "self #%llu: not a vector of one user (%zu bytes)", (unsigned long long)q->id, r->len);
      return -1;
    }
    return 0;
  }
  mtc_tl_object *o = NULL;
  int rc = mtc_tl_parse(r->data, r->len, &o);
  int ok = 0;
  if (rc == 0 && o && o->id == MTC_TL_ID_nearestDc &&
      (q->kind == K_NEAREST_MAIN || q->kind == K_NEAREST_DC || q->kind == K_NEAREST_MEDIA)) {
    const mtc_tl_nearestDc *n = (const mtc_tl_nearestDc *)o;
    ok = n->country.len == 2 && memcmp(n->country.data, "ZZ", 2) == 0 && n->this_dc == want_dc &&
         n->nearest_dc == want_dc;
  } else if (rc == 0 && o && o->id == MTC_TL_ID_upload_file &&
             (q->kind == K_FILE_MEDIA || q->kind == K_FILE_DC || q->kind == K_FILE_MAIN)) {
    const mtc_tl_upload_file *f = (const mtc_tl_upload_file *)o;
    uint8_t *want = malloc((size_t)q->limit);
    ok = want && f->bytes.len == (size_t)q->limit;
    if (ok) {
      mock_dc_file_content(FILE_ID, (uint64_t)q->offset, want, (size_t)q->limit);
      ok = memcmp(want, f->bytes.data, (size_t)q->limit) == 0;
    }
    free(want);
  }
  mtc_tl_object_free(o);
  if (!ok) {
    violation(s, "%s #%llu: wrong OK result (%zu bytes, parse %d)", k_kind[q->kind],
              (unsigned long long)q->id, r->len, rc);
    return -1;
  }
  return 0;
}

static void soak_ops_in_cb(soak *s, slot *q);
static void res_cb(void *ud, const mtc_result *r);

static void res_cb(void *ud, const mtc_result *r) {
  slot *q = ud;
  soak *s = g_s;
  int64_t now = mono_ms();
  if (s->in_invoke && s->invoking != q)
    s->others_in_invoke++; /* another request's timeout or answer: allowed (see the report) */
  if (s->in_invoke && s->invoking == q)
    violation(s, "%s #%llu: callback (kind %d, error %d) inside mtc_invoke of %s #%llu%s", k_kind[q->kind],
              (unsigned long long)q->id, (int)r->kind, r->error, k_kind[s->invoking->kind],
              (unsigned long long)s->invoking->id, s->invoking == q ? " (its own)" : "");
  if (++q->calls > 1) {
    violation(s, "%s #%llu: callback %d times (kind %d, then %d)", k_kind[q->kind],
              (unsigned long long)q->id, q->calls, q->rkind, (int)r->kind);
    return;
  }
  if (r->request_id != q->id)
    violation(s, "%s #%llu: result for request_id %llu", k_kind[q->kind], (unsigned long long)q->id,
              (unsigned long long)r->request_id);
  q->rkind = (int)r->kind;
  q->rerr = r->error;
  q->rdc = r->dc_id;
  q->rcode = r->rpc_code;
  q->done_at = now;
  if (r->rpc_message) snprintf(q->rmsg, sizeof q->rmsg, "%s", r->rpc_message);
  if ((unsigned)r->kind < 4) s->by_result[r->kind]++;
  switch (r->kind) {
  case MTC_RESULT_OK:
    (void)check_ok(s, q, r);
    break;
  case MTC_RESULT_RPC_ERROR: {
    char name[48];
    snprintf(name, sizeof name, "%d %s", (int)r->rpc_code, r->rpc_message ? r->rpc_message : "?");
    note_name(s->rpc_error_names, s->rpc_error_counts, name);
    s->rpc_errors++;
    if (!r->rpc_message) violation(s, "#%llu: RPC_ERROR without a message", (unsigned long long)q->id);
    break;
  }
  case MTC_RESULT_ERROR:
    note_code(s, r->error);
    if (r->error == MTC_ERR_CANCELLED || r->error >= 0)
      violation(s, "#%llu: ERROR with code %d", (unsigned long long)q->id, r->error);
    if (r->error == MTC_ERR_TIMEOUT) {
      s->timeouts++;
      if (q->timeout_ms <= 0)
        violation(s, "%s #%llu: MTC_ERR_TIMEOUT without a timeout", k_kind[q->kind],
                  (unsigned long long)q->id);
      else if (now - q->issued + 50 < q->timeout_ms)
        violation(s, "%s #%llu: timed out after %lld ms of %d", k_kind[q->kind],
                  (unsigned long long)q->id, (long long)(now - q->issued), q->timeout_ms);
    }
    break;
  case MTC_RESULT_CANCELLED:
    if (r->error != MTC_ERR_CANCELLED)
      violation(s, "#%llu: CANCELLED with error %d", (unsigned long long)q->id, r->error);
    if (!q->cancel_tried && !s->closing)
      violation(s, "%s #%llu: CANCELLED but never cancelled", k_kind[q->kind], (unsigned long long)q->id);
    break;
  default:
    violation(s, "#%llu: result kind %d", (unsigned long long)q->id, (int)r->kind);
  }
  if (q->timeout_ms > 0 && now - q->issued > q->timeout_ms + 2500)
    violation(s, "%s #%llu: ended %lld ms after the invoke, timeout %d", k_kind[q->kind],
              (unsigned long long)q->id, (long long)(now - q->issued), q->timeout_ms);
  if (s->closing) {
    /* mtc_context_free under way: new requests are refused */
    static const uint8_t body4[4] = {0x26, 0x30, 0xb3, 0x1f}; /* help.getNearestDc */
    q->invoke_from_cb_rc = mtc_invoke(s->ctx, NULL, body4, 4, res_cb, q, NULL);
    return;
  }
  soak_ops_in_cb(s, q);
}

/* ---- issuing and cancelling ------------------------------------------------------------------- */

static int issue(soak *s, int kind, int dc, int timeout_ms, int probe) {
  if (s->n_slots >= MAX_SLOTS) return -1;
  /* taken before mtc_invoke: a callback run inside it may issue too */
  slot *q = &s->slots[s->n_slots++];
  memset(q, 0, sizeof *q);
  q->kind = kind;
  q->dc = dc;
  q->timeout_ms = timeout_ms;
  q->probe = probe;
  q->invoke_from_cb_rc = 1;
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = timeout_ms;
  body b;
  switch (kind) {
  case K_NEAREST_MAIN:
    b = q_nearest();
    q->dc = 0;
    break;
  case K_NEAREST_DC:
  case K_NEAREST_MEDIA:
    b = q_nearest();
    o.target = kind == K_NEAREST_DC ? MTC_TARGET_DC : MTC_TARGET_MEDIA;
    o.dc_id = dc;
    break;
  case K_FILE_MEDIA:
  case K_FILE_DC:
  case K_FILE_MAIN: {
    static const int32_t limits[] = {4096, 16384, 65536, 131072, 262144};
    q->limit = limits[prng_below(&s->ops, 5)];
    q->offset = (int64_t)prng_below(&s->ops, (int)(MOCK_DC_FILE_SIZE / (uint32_t)q->limit)) * q->limit;
    b = q_get_file(q->offset, q->limit);
    o.target = kind == K_FILE_MEDIA ? MTC_TARGET_MEDIA : kind == K_FILE_DC ? MTC_TARGET_DC : MTC_TARGET_MAIN;
    o.dc_id = kind == K_FILE_MAIN ? 0 : FILES_DC;
    q->dc = kind == K_FILE_MAIN ? 0 : FILES_DC;
    break;
  }
  default:
    b = q_get_self();
    q->dc = 0;
    break;
  }
  q->issued = mono_ms();
  int was = s->in_invoke;
  slot *was_q = s->invoking;
  s->in_invoke = 1;
  s->invoking = q;
  int rc = mtc_invoke(s->ctx, &o, b.b, b.n, res_cb, q, &q->id);
  s->in_invoke = was;
  s->invoking = was_q;
  if (rc != 0) {
    violation(s, "%s: mtc_invoke = %d", k_kind[kind], rc);
    q->calls = 1; /* no callback comes */
    q->rkind = MTC_RESULT_ERROR;
    q->probe = 1;
    return -1;
  }
  if (q->id == 0) violation(s, "%s: request id 0", k_kind[kind]);
  s->by_kind[kind]++;
  return 0;
}

static void issue_random(soak *s) {
  int kind = prng_below(&s->ops, K_COUNT);
  int dc = 1 + prng_below(&s->ops, N_DCS);
  int timeout = prng_pct(&s->ops, 65) ? 300 + prng_below(&s->ops, 2200) : 0;
  (void)issue(s, kind, dc, timeout, 0);
}

/* Cancel slot i; the API's promise is checked. */
static void cancel_slot(soak *s, int i) {
  slot *q = &s->slots[i];
  int before = q->calls;
  if (before == 0) q->cancel_tried = 1;
  int rc = mtc_cancel(s->ctx, q->id);
  if (before == 0) {
    if (rc != 0 || q->calls != 1 || q->rkind != MTC_RESULT_CANCELLED)
      violation(s, "%s #%llu: cancel in flight = %d, calls %d, kind %d", k_kind[q->kind],
                (unsigned long long)q->id, rc, q->calls, q->rkind);
    else
      s->cancels_ok++;
  } else {
    if (rc != MTC_ERR_REQUEST_UNKNOWN || q->calls != before)
      violation(s, "%s #%llu: cancel after the answer = %d, calls %d", k_kind[q->kind],
                (unsigned long long)q->id, rc, q->calls);
    else
      s->cancels_unknown++;
  }
}

/* A random slot, in flight (want_open) or finished; -1 if none found. */
static int pick_slot(soak *s, int want_open) {
  if (s->n_slots == 0) return -1;
  for (int tries = 0; tries < 16; tries++) {
    int i = s->n_slots - 1 - prng_below(&s->ops, s->n_slots < 200 ? s->n_slots : 200);
    /* not the request a top-level mtc_invoke is placing: the app cannot
     * know its id before the call returns */
    if ((s->slots[i].calls == 0) == (want_open != 0) && !s->slots[i].probe &&
        !(s->in_invoke && &s->slots[i] == s->invoking))
      return i;
  }
  return -1;
}

static void soak_ops_in_cb(soak *s, slot *q) {
  (void)q;
  if (s->cb_depth >= 3 || q->probe) return;
  s->cb_depth++;
  if (prng_pct(&s->ops, 15) && outstanding(s) < MAX_OUT) {
    s->invokes_from_cb++;
    issue_random(s);
  }
  if (prng_pct(&s->ops, 8)) {
    int i = pick_slot(s, 1);
    if (i >= 0) {
      s->cancels_from_cb++;
      cancel_slot(s, i);
    }
  }
  s->cb_depth--;
}

/* One round of the app's work on the loop thread. */
static void soak_tick(soak *s) {
  int n = prng_below(&s->ops, 4);
  for (int k = 0; k < n && outstanding(s) < MAX_OUT; k++) issue_random(s);
  if (prng_pct(&s->ops, 20)) {
    int i = pick_slot(s, 1);
    if (i >= 0) cancel_slot(s, i);
  }
  if (prng_pct(&s->ops, 5)) {
    int i = pick_slot(s, 0);
    if (i >= 0) cancel_slot(s, i);
  }
  if (prng_pct(&s->ops, 3)) {
    int rc = mtc_cancel(s->ctx, 0x7fffffffffffull);
    if (rc != MTC_ERR_REQUEST_UNKNOWN) violation(s, "cancel of an unknown id = %d", rc);
  }
  mtc_counters c;
  if (ctx_counters(s->ctx, &c) != 0) {
    violation(s, "mtc_context_counters failed");
    return;
  }
  int out = outstanding(s);
  if (c.requests_pending < (uint64_t)out)
    violation(s, "requests_pending %llu < %d requests in flight", (unsigned long long)c.requests_pending, out);
}

static void step(soak *s, int max_ms) {
  if (s->mode == 0) (void)mtc_context_run(s->ctx, max_ms);
  else ctx_host_step(&s->host, s->ctx, max_ms);
}

/* ---- faults ----------------------------------------------------------------------------------- */

typedef struct fault_kind {
  const char *on, *off;
  int dcs;    /* bit d-1: allowed on DC d */
  int min_ms, max_ms;
} fault_kind;

static const fault_kind k_faults[] = {
    {"close_after_frames=%d", "close_after_frames=0", 0x1f, 200, 1200},
    {"transport_404_once=1", "transport_404_once=0", 0x0f, 100, 400}, /* not the home DC: login */
    {"transport_444_once=1", "transport_444_once=0", 0x1f, 100, 400},
    {"flood_connects=1,flood_window_ms=400", "flood_connects=0,flood_window_ms=0", 0x1f, 200, 600},
    {"wrong_salt=%d", "wrong_salt=0", 0x1f, 200, 800},
    {"clock_offset=%d,clock_offset_ms=%d", "clock_offset=0,clock_offset_ms=0", 0x1f, 300, 1500},
    {"delay_ms=%d", "delay_ms=0", 0x1f, 200, 1200},
    {"drop_every=%d", "drop_every=0", 0x1f, 200, 900},
    {"drop_method=%s", "drop_method=", 0x1f, 200, 900},
    {"lose_method=%s", "lose_method=", 0x1f, 200, 900},
    {"stall=1", "stall=0", 0x1f, 150, 700},
    {"refuse_seed=1", "refuse_seed=0", 0x1f, 150, 600},
};
#define N_FAULT_KINDS (sizeof k_faults / sizeof k_faults[0])

typedef struct active_fault {
  int on;
  int kind, dc;
  int64_t until;
} active_fault;

static const char *const k_methods[] = {"help.getNearestDc", "upload.getFile", "users.getUsers"};

static void fault_apply(soak *s, int kind, int dc) {
  char spec[160];
  prng *p = &s->faults;
  switch (kind) {
  case 0: snprintf(spec, sizeof spec, k_faults[kind].on, 3 + prng_below(p, 25)); break;
  case 4: snprintf(spec, sizeof spec, k_faults[kind].on, 1 + prng_below(p, 3)); break;
  case 5:
    /* whole seconds only as far as MTC_CHAOS_SKEW (default 1): a server
     * clock that moves back further leaves the context's offset ahead (it
     * only moves forward), and with the short temp keys here every new key
     * looks due at once (see the report) */
    snprintf(spec, sizeof spec, k_faults[kind].on, prng_below(p, 2 * g_skew_s + 1) - g_skew_s,
             prng_below(p, 1999) - 999);
    break;
  case 6: snprintf(spec, sizeof spec, k_faults[kind].on, 10 + prng_below(p, 300)); break;
  case 7: snprintf(spec, sizeof spec, k_faults[kind].on, 2 + prng_below(p, 5)); break;
  case 8:
  case 9: snprintf(spec, sizeof spec, k_faults[kind].on, k_methods[prng_below(p, 3)]); break;
  default: snprintf(spec, sizeof spec, "%s", k_faults[kind].on); break;
  }
  if (ctx_set_fault(s->env.cl, dc, spec) != 0) violation(s, "fault %s on dc %d refused", spec, dc);
  if (g_verbose) fprintf(stderr, "  [%lld] dc %d <- %s\n", (long long)(mono_ms() - s->t0), dc, spec);
  s->fault_switches++;
  s->faults_by[kind]++;
  if (strncmp(spec, "refuse_seed", 11) == 0) s->refuse_on[dc]++;
}

static void fault_clear(soak *s, int kind, int dc) {
  if (ctx_set_fault(s->env.cl, dc, k_faults[kind].off) != 0) violation(s, "fault off refused");
  if (g_verbose)
    fprintf(stderr, "  [%lld] dc %d <- %s\n", (long long)(mono_ms() - s->t0), dc, k_faults[kind].off);
}

static void faults_all_off(soak *s) {
  mock_dc_faults f;
  memset(&f, 0, sizeof f);
  for (int dc = 1; dc <= N_DCS; dc++)
    if (mock_dc_set_faults(s->env.cl, dc, &f) != 0) violation(s, "clearing faults refused");
}

/* ---- the soak ------------------------------------------------------------------------------- */

typedef struct soak_cfg {
  uint64_t seed;
  int mode, pfs;
  int free_pending; /* end with requests in flight left to mtc_context_free */
  int soak_ms;
} soak_cfg;

static void take_cb(void *ud, const mtc_result *r) { ctx_res_take(ud, r); }

static int call_wait(soak *s, const body *q, ctx_res *r, int ms) {
  memset(r, 0, sizeof *r);
  REQ(mtc_invoke(s->ctx, NULL, q->b, q->n, take_cb, r, NULL) == 0);
  for (int64_t end = mono_ms() + ms; r->calls == 0 && mono_ms() < end;) step(s, 20);
  REQ(r->calls == 1);
  return 0;
}

static int do_login(soak *s) {
  ctx_res r;
  body q = q_send_code();
  REQ(call_wait(s, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == HOME_DC);
  char hash[64];
  REQ(sent_code_hash(r.data, r.len, hash, sizeof hash) == 0);
  ctx_res_clear(&r);
  q = q_sign_in(hash);
  REQ(call_wait(s, &q, &r, WAIT_MS) == 0);
  REQ(r.kind == MTC_RESULT_OK && r.dc_id == HOME_DC);
  ctx_res_clear(&r);
  return 0;
}

/* Counters of the context against the mock's (see the file comment). */
static void check_counters(soak *s) {
  mtc_counters c;
  if (ctx_counters(s->ctx, &c) != 0) {
    violation(s, "counters failed");
    return;
  }
  uint64_t started = 0, ended = 0;
  for (size_t i = 0; i < c.n_dcs; i++) {
    const mtc_dc_counters *d = &c.dcs[i];
    started += d->connects_started;
    ended += d->connects_succeeded + d->connects_failed + d->connects_cancelled;
    if (d->connects_started < d->connects_succeeded + d->connects_failed + d->connects_cancelled)
      violation(s, "dc %d: connects started %llu < succeeded %llu + failed %llu + cancelled %llu",
                d->dc_id, (unsigned long long)d->connects_started,
                (unsigned long long)d->connects_succeeded, (unsigned long long)d->connects_failed,
                (unsigned long long)d->connects_cancelled);
    if (d->handshakes_perm > d->connects_succeeded)
      violation(s, "dc %d: %llu perm handshakes on %llu connections", d->dc_id,
                (unsigned long long)d->handshakes_perm, (unsigned long long)d->connects_succeeded);
    if (d->dc_id < 1 || d->dc_id > N_DCS) continue;
    mock_dc_counters m;
    if (mock_dc_get_counters(s->env.cl, d->dc_id, &m) != 0) continue;
    /* refuse_seed closes the listening socket: connections the kernel had
     * completed but the mock not yet accepted are reset, after the context
     * saw them connect (up to MTCI_CTX_RACE per slot) */
    if (d->connects_succeeded > m.tcp_accepted + 12u * s->refuse_on[d->dc_id])
      violation(s, "dc %d: %llu connects succeeded, the mock accepted %llu", d->dc_id,
                (unsigned long long)d->connects_succeeded, (unsigned long long)m.tcp_accepted);
    if (d->handshakes_perm > m.handshakes_perm || d->handshakes_temp > m.handshakes_temp)
      violation(s, "dc %d: handshakes perm %llu temp %llu, the mock's %llu %llu", d->dc_id,
                (unsigned long long)d->handshakes_perm, (unsigned long long)d->handshakes_temp,
                (unsigned long long)m.handshakes_perm, (unsigned long long)m.handshakes_temp);
    if (d->bytes_in > m.bytes_out || m.bytes_in > d->bytes_out)
      violation(s, "dc %d: bytes in %llu out %llu, the mock's in %llu out %llu", d->dc_id,
                (unsigned long long)d->bytes_in, (unsigned long long)d->bytes_out,
                (unsigned long long)m.bytes_in, (unsigned long long)m.bytes_out);
    if (d->rpcs_answered > m.rpcs)
      violation(s, "dc %d: %llu rpcs answered, the mock answered %llu", d->dc_id,
                (unsigned long long)d->rpcs_answered, (unsigned long long)m.rpcs);
  }
  if (c.connects_started != started) violation(s, "connects_started total differs from the DCs' sum");
  (void)ended;
}

static void print_summary(soak *s, const soak_cfg *cfg, int64_t took) {
  mtc_counters c;
  memset(&c, 0, sizeof c);
  if (s->ctx) (void)ctx_counters(s->ctx, &c);
  fprintf(stderr,
          "    seed %llu (%s, pfs %d%s): %d requests in %lld ms: ok %u rpc_error %u error %u "
          "cancelled %u; cancels %u (+%u after the answer), from callbacks %u invokes %u cancels; "
          "%u timeouts (%u callbacks inside another's mtc_invoke); %u fault switches; connects %llu "
          "(failed %llu), handshakes %llu+%llu\n",
          (unsigned long long)s->seed, s->mode ? "host" : "run", s->pfs,
          cfg->free_pending ? ", free pending" : "", s->n_slots, (long long)took, s->by_result[0],
          s->by_result[1], s->by_result[2], s->by_result[3], s->cancels_ok, s->cancels_unknown,
          s->invokes_from_cb, s->cancels_from_cb, s->timeouts, s->others_in_invoke, s->fault_switches,
          (unsigned long long)c.connects_started, (unsigned long long)c.connects_failed,
          (unsigned long long)c.handshakes_perm, (unsigned long long)c.handshakes_temp);
  fprintf(stderr, "      recovery %lld ms; rpc errors:", (long long)s->recovery_ms);
  for (int i = 0; i < 8 && s->rpc_error_names[i][0]; i++)
    fprintf(stderr, " [%s] %u", s->rpc_error_names[i], s->rpc_error_counts[i]);
  fprintf(stderr, "\n      library errors:");
  for (int i = 0; i < 8 && s->lib_errors[i]; i++)
    fprintf(stderr, " [%s] %u", mtc_strerror(s->lib_error_codes[i]), s->lib_errors[i]);
  fprintf(stderr, "\n");
}

static int run_soak(const soak_cfg *cfg) {
  static soak S;
  soak *s = &S;
  memset(s, 0, sizeof *s);
  g_s = s;
  s->seed = cfg->seed;
  s->mode = cfg->mode;
  s->pfs = cfg->pfs;
  s->ops.s = cfg->seed * 0x100000001b3ull + 1;
  s->faults.s = cfg->seed * 0x9e3779b97f4a7c15ull + 7;
  s->slots = calloc(MAX_SLOTS, sizeof *s->slots);
  s->ring = calloc(LOG_RING, LOG_LINE);
  REQ(s->slots && s->ring);
  ctx_host_init(&s->host);
  s->t0 = mono_ms();
  REQ(ctx_env_start(&s->env, NULL, NULL) == 0);

  mtc_settings st;
  ctx_env_settings(&s->env, &st);
  prng *p = &s->ops;
  static const mtc_transport tr[] = {MTC_TRANSPORT_ABRIDGED, MTC_TRANSPORT_INTERMEDIATE,
                                     MTC_TRANSPORT_PADDED, MTC_TRANSPORT_FULL};
  st.transport = tr[prng_below(p, 4)];
  st.obfuscate = st.transport == MTC_TRANSPORT_FULL ? 0 : prng_below(p, 2);
  st.no_auto_config = prng_below(p, 2);
  st.pfs = cfg->pfs;
  st.temp_key_expires_s = cfg->pfs ? 12 + prng_below(p, 20) : 0; /* renewals within the soak */
  st.connect_timeout_ms = 1500;
  st.reconnect_initial_ms = 50;
  st.reconnect_max_ms = 400;
  st.max_connect_attempts = 4;
  st.max_connects_per_minute = 1000;
  st.idle_close_ms = 300 + prng_below(p, 2000);
  st.media_connections_per_dc = 1 + prng_below(p, 3);
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  if (s->mode == 1) {
    cb.watch_fd = cb_watch;
    cb.set_timer = cb_timer;
  }
  cb.on_log = cb_log;
  cb.random = test_rnd;
  REQ(mtc_context_new(&s->ctx, &st, &cb, s) == 0);
  int failed = 0;
  if (do_login(s) != 0) {
    fprintf(stderr, "  seed %llu: login failed\n", (unsigned long long)s->seed);
    failed = 1;
  }

  /* the soak: requests and faults at random moments */
  active_fault act[8];
  memset(act, 0, sizeof act);
  int64_t start = mono_ms(), next_fault = start + 50;
  while (!failed && mono_ms() < start + cfg->soak_ms) {
    int64_t now = mono_ms();
    for (int k = 0; k < 8; k++) {
      if (act[k].on && now >= act[k].until) {
        fault_clear(s, act[k].kind, act[k].dc);
        act[k].on = 0;
      }
    }
    if (now >= next_fault) {
      next_fault = now + 30 + prng_below(&s->faults, g_fault_gap);
      int k = 0;
      while (k < 8 && act[k].on) k++;
      if (k < 8) {
        int kind = prng_below(&s->faults, (int)N_FAULT_KINDS);
        int dc = 1 + prng_below(&s->faults, N_DCS);
        int busy = 0;
        for (int j = 0; j < 8; j++) busy |= act[j].on && act[j].kind == kind && act[j].dc == dc;
        /* answers lost for good (drop_every, stall) only on DCs 2-4 unless
         * MTC_CHAOS_DROPALL: on DC 5 (home: export, getConfig) and DC 1
         * (files: import) a lost internal answer has no deadline and blocks
         * the DC's untimed requests for good (see the report) */
        int lossy = kind == 7 || kind == 10;
        int allowed = (k_faults[kind].dcs >> (dc - 1) & 1) && (!lossy || g_drop_all || (dc >= 2 && dc <= 4));
        if (allowed && !busy) {
          fault_apply(s, kind, dc);
          act[k].on = 1;
          act[k].kind = kind;
          act[k].dc = dc;
          act[k].until = now + k_faults[kind].min_ms +
                         prng_below(&s->faults, k_faults[kind].max_ms - k_faults[kind].min_ms);
        }
      }
    }
    soak_tick(s);
    step(s, prng_below(&s->faults, 25));
  }
  faults_all_off(s);

  /* every timed request ends by its timeout (+ slack); the rest continue */
  int64_t drain_end = mono_ms() + 2500 + 2500;
  for (;;) {
    int open_timed = 0;
    for (int i = 0; i < s->n_slots; i++) open_timed += s->slots[i].calls == 0 && s->slots[i].timeout_ms > 0;
    if (!open_timed || mono_ms() >= drain_end) {
      if (open_timed) violation(s, "%d timed requests still open after their timeouts", open_timed);
      break;
    }
    step(s, 20);
  }

  int untimed_open = outstanding(s);
  if (!cfg->free_pending) {
    for (int i = 0; i < s->n_slots; i++)
      if (s->slots[i].calls == 0) cancel_slot(s, i);
    /* recovery: every DC answers again, the files DC's media too */
    int first_probe = s->n_slots;
    for (int dc = 1; dc <= N_DCS; dc++) (void)issue(s, K_NEAREST_DC, dc, 0, 1);
    (void)issue(s, K_FILE_MEDIA, FILES_DC, 0, 1);
    (void)issue(s, K_NEAREST_MAIN, 0, 0, 1);
    int64_t rec0 = mono_ms(), end = rec0 + 12000;
    while (outstanding(s) > 0 && mono_ms() < end) step(s, 20);
    s->recovery_ms = mono_ms() - rec0;
    if (s->recovery_ms > 3000 && getenv("MTC_CHAOS_SLOW")) {
      fprintf(stderr, "  SLOW recovery seed %llu: %lld ms\n", (unsigned long long)s->seed, (long long)s->recovery_ms);
      for (int i = first_probe; i < s->n_slots; i++)
        fprintf(stderr, "    probe %s dc %d #%llu: %lld ms\n", k_kind[s->slots[i].kind], s->slots[i].dc,
                (unsigned long long)s->slots[i].id, (long long)(s->slots[i].done_at - s->slots[i].issued));
      dump_ring(s, LOG_RING);
    }
    for (int i = first_probe; i < s->n_slots; i++) {
      slot *q = &s->slots[i];
      if (q->calls != 1 || q->rkind != MTC_RESULT_OK)
        violation(s, "recovery: %s dc %d: calls %d kind %d err %d rpc '%s' after %lld ms", k_kind[q->kind],
                  q->dc, q->calls, q->rkind, q->rerr, q->rmsg,
                  (long long)((q->calls ? q->done_at : mono_ms()) - q->issued));
    }
    /* internal requests (config, transfers) end too */
    mtc_counters c;
    for (int64_t e2 = mono_ms() + 3000; mono_ms() < e2;) {
      if (ctx_counters(s->ctx, &c) == 0 && c.requests_pending == 0) break;
      step(s, 20);
    }
    if (ctx_counters(s->ctx, &c) != 0)
      violation(s, "counters failed");
    else if (c.requests_pending != 0) /* the app's are all done (above): these are internal */
      fprintf(stderr, "      NOTE: requests_pending %llu at the end: an internal request (help.getConfig, "
              "authorization transfer) whose answer a drop fault lost has no deadline\n",
              (unsigned long long)c.requests_pending);
  }
  check_counters(s);
  print_summary(s, cfg, mono_ms() - start);

  /* free: what is left is cancelled exactly once; no new request from there */
  for (int i = 0; i < s->n_slots; i++)
    if (s->slots[i].calls == 0) s->slots[i].freed = 1;
  s->closing = 1;
  mtc_context_free(s->ctx);
  s->ctx = NULL;
  int freed = 0;
  for (int i = 0; i < s->n_slots; i++) {
    slot *q = &s->slots[i];
    if (q->calls != 1) violation(s, "%s #%llu: %d callbacks in all", k_kind[q->kind], (unsigned long long)q->id, q->calls);
    if (q->freed) {
      freed++;
      if (q->rkind != MTC_RESULT_CANCELLED || q->invoke_from_cb_rc != MTC_ERR_CLOSED)
        violation(s, "%s #%llu: at free: kind %d, invoke from its callback %d", k_kind[q->kind],
                  (unsigned long long)q->id, q->rkind, q->invoke_from_cb_rc);
    }
  }
  if (cfg->free_pending) fprintf(stderr, "      %d requests in flight at free (untimed %d)\n", freed, untimed_open);
  ctx_env_stop(&s->env);
  failed |= s->violations != 0;
  if (failed && s->first_violation[0]) fprintf(stderr, "  first violation: %s\n", s->first_violation);
  free(s->slots);
  free(s->ring);
  s->slots = NULL;
  s->ring = NULL;
  g_s = NULL;
  return failed ? -1 : 0;
}

TEST(soak_run_plain) {
  soak_cfg c = {11, 0, 0, 0, 4500};
  CHECK(run_soak(&c) == 0);
}

TEST(soak_host_pfs) {
  soak_cfg c = {22, 1, 1, 1, 4500};
  CHECK(run_soak(&c) == 0);
}

TEST(soak_run_pfs) {
  soak_cfg c = {33, 0, 1, 0, 4500};
  CHECK(run_soak(&c) == 0);
}

/* MTC_CHAOS_SEEDS=a-b: extra seeds (mode, PFS and ending from the seed). */
TEST(soak_env) {
  const char *v = getenv("MTC_CHAOS_SEEDS");
  if (!v) return;
  unsigned long a = 0, b = 0;
  if (sscanf(v, "%lu-%lu", &a, &b) != 2) b = a = strtoul(v, NULL, 10);
  int fails = 0;
  for (unsigned long sd = a; sd <= b && sd - a < 1000; sd++) {
    const char *ms = getenv("MTC_CHAOS_MS");
    soak_cfg c = {sd, (int)(sd & 1), (int)(sd >> 1 & 1), (int)(sd % 3 == 0), ms ? atoi(ms) : 4500};
    if (run_soak(&c) != 0) {
      fails++;
      fprintf(stderr, "  seed %lu FAILED\n", sd);
    }
  }
  CHECK(fails == 0);
}

/* ---- small deterministic cases the soak led to ------------------------------------------------ */

static int g_in_invoke; /* the test is inside a top-level mtc_invoke */

typedef struct probe {
  mtc_context *ctx;
  int calls, kind, error;
  int cb_inside; /* the callback ran inside the top-level mtc_invoke */
  int free_it;   /* the callback frees the context */
} probe;

static void probe_cb(void *ud, const mtc_result *r) {
  probe *p = ud;
  p->calls++;
  p->kind = (int)r->kind;
  p->error = r->error;
  if (g_in_invoke) p->cb_inside = 1;
  if (p->free_it) mtc_context_free(p->ctx); /* deferred to the end of the outermost call */
}

/*
 * A top-level mtc_invoke runs the context's due work before it returns; a
 * request whose timeout has passed fails there, and its callback may free
 * the context (deferred to the end of that same mtc_invoke). The new
 * request must then not get its callback inside mtc_invoke ("never from
 * inside this call"): mtc_invoke refuses it with MTC_ERR_CLOSED and its
 * callback never runs. Before the fix the free cancelled it inside
 * mtc_invoke, which then returned 0.
 */
static int free_inside_invoke(void) {
  ctx_env e;
  REQ(ctx_env_start(&e, NULL, NULL) == 0);
  mtc_settings st;
  ctx_env_settings(&e, &st);
  st.no_auto_config = 1;
  st.log_level = MTC_LOG_WARN;
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.random = test_rnd;
  mtc_context *ctx = NULL;
  REQ(mtc_context_new(&ctx, &st, &cb, NULL) == 0);
  /* DC 2 (the main DC) connected and keyed */
  probe w;
  memset(&w, 0, sizeof w);
  body q = q_nearest();
  REQ(mtc_invoke(ctx, NULL, q.b, q.n, probe_cb, &w, NULL) == 0);
  for (int64_t end = mono_ms() + WAIT_MS; !w.calls && mono_ms() < end;) (void)mtc_context_run(ctx, 20);
  REQ(w.calls == 1 && w.kind == MTC_RESULT_OK);
  /* B: a timeout of 50 ms, no answer; its callback frees the context */
  REQ(ctx_set_fault(e.cl, 2, "drop_method=help.getNearestDc") == 0);
  probe b, a;
  memset(&b, 0, sizeof b);
  memset(&a, 0, sizeof a);
  b.ctx = ctx;
  b.free_it = 1;
  mtc_invoke_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = 50;
  REQ(mtc_invoke(ctx, &o, q.b, q.n, probe_cb, &b, NULL) == 0);
  struct timespec ts = {0, 150 * 1000000L};
  nanosleep(&ts, NULL); /* B's deadline passes while the app does other work */
  /* A: B times out inside this call, and B's callback frees the context */
  uint64_t id = 1;
  g_in_invoke = 1;
  int rc = mtc_invoke(ctx, NULL, q.b, q.n, probe_cb, &a, &id);
  g_in_invoke = 0;
  /* ctx is gone now either way */
  fprintf(stderr, "    B: calls %d kind %d error %d; A: invoke %d id %llu, calls %d kind %d%s\n", b.calls,
          b.kind, b.error, rc, (unsigned long long)id, a.calls, a.kind,
          a.cb_inside ? " (inside mtc_invoke)" : "");
  ctx_env_stop(&e);
  REQ(b.calls == 1 && b.kind == MTC_RESULT_ERROR && b.error == MTC_ERR_TIMEOUT && b.cb_inside);
  REQ(a.cb_inside == 0);
  REQ(rc == MTC_ERR_CLOSED && a.calls == 0 && id == 0);
  return 0;
}

TEST(free_inside_invoke) { CHECK(free_inside_invoke() == 0); }

static void cleanup(void) {
  mtci_drbg_free(g_drbg);
  g_drbg = NULL;
}

int main(int argc, char **argv) {
  g_verbose = getenv("MTC_TEST_VERBOSE") != NULL;
  g_drop_all = getenv("MTC_CHAOS_DROPALL") != NULL;
  if (getenv("MTC_CHAOS_SKEW")) g_skew_s = atoi(getenv("MTC_CHAOS_SKEW"));
  if (getenv("MTC_CHAOS_GAP")) g_fault_gap = atoi(getenv("MTC_CHAOS_GAP")) > 0 ? atoi(getenv("MTC_CHAOS_GAP")) : 1;
  atexit(cleanup);
  static const struct test_case cases[] = {
      CASE(free_inside_invoke),
      CASE(soak_run_plain),
      CASE(soak_host_pfs),
      CASE(soak_run_pfs),
      CASE(soak_env),
  };
  return ctx_test_run("context_chaos", cases, sizeof cases / sizeof cases[0], argc, argv);
}
