/*
 * mtconn-bench context: the MTContext at scale and its start-up latency.
 * Numbers are printed beside their targets, never asserted.
 *
 * The mock DC cluster (tests/mockdc) runs in a CHILD PROCESS (fork before
 * this process starts any thread), so the heap, RSS, CPU and file
 * descriptors measured here are the client's alone. The child answers a
 * few commands on a pipe (fault switches, counters).
 *
 *   idle  N contexts (default 1000) in this process, one logged-in session
 *         each, driven by one epoll loop through the HOST-mode callbacks
 *         (watch_fd / set_timer), as an application with many accounts
 *         would. Login: ONE context does sendCode -> PHONE_MIGRATE_5 ->
 *         signIn (2 handshakes); its saved state is then handed to every
 *         context through load_state, so the N contexts make no handshake
 *         (the mock's perm key of DC 5 is shared; each context has its own
 *         MTProto session, connection and state). Each sends
 *         users.getUsers(inputUserSelf) and then idles.
 *         Heap per idle session: glibc mallinfo2 (uordblks + hblkhd) before
 *         the contexts exist and once all N are idle, divided by N; RSS
 *         per session likewise from /proc/self/statm. Target <= 32 KiB.
 *         CPU per keepalive cycle: with ping_interval_ms = P (default 1000
 *         so a short window holds many cycles), this process's CPU
 *         (getrusage user + sys) over a W-second window divided by the
 *         ping_delay_disconnect requests the mock counted in it.
 *   rtt   mtc_invoke -> callback on a context started from the saved state
 *         (TCP connect + first RPC), with the mock holding every frame of
 *         DC 5 back by D ms (the delay_ms fault): the time counted in
 *         round trips. Target: 1 round trip after the TCP handshake when
 *         the saved salt is valid (loopback connects are immediate, and the
 *         obfuscated2 header rides with the first packet). For context the
 *         same with D = 0 and with a rotated salt (bad_server_salt: 2).
 *
 * MTCB_VERBOSE=1 prints the library's log lines of the login and rtt
 * contexts on stderr.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int mtcb_context(int argc, char **argv);

#ifndef MTCB_HAVE_MOCKDC
int mtcb_context(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "mtconn-bench context: built without the mock DC (tests/mockdc)\n");
  return 1;
}
#else

#include "bytes.h"
#include "context.h" /* sizeof(struct mtc_context), for the heap breakdown */
#include "mock_dc.h"
#include "mtconn/mtconn.h"
#include "mtconn/tl_api.h"

#define N_DCS 5
#define TARGET_HEAP (32.0 * 1024.0)
#define TARGET_RTT 1.0
#define OP_MS 20000 /* bound on every wait */
#define ID_VECTOR 0x1cb5c415u

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_msf(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- the mock cluster in a child process ------------------------------------------------ */

typedef struct server {
  pid_t pid;
  FILE *to, *from;
  uint16_t ports[N_DCS];
  char pems[N_DCS][2048];
} server;

static void reply(FILE *f, const char *line) {
  fprintf(f, "%s\n", line);
  fflush(f);
}

static void server_main(FILE *in, FILE *out) {
  mock_dc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.n_dcs = N_DCS;
  cfg.home_dc = 5;
  cfg.files_dc = 1;
  mock_dc_cluster *cl = NULL;
  if (mock_dc_cluster_new(&cl, &cfg) != 0 || mock_dc_cluster_start(cl) != 0) {
    reply(out, "{}");
    return;
  }
  json_t *hello = json_pack("{s:[],s:[]}", "ports", "pems");
  for (int dc = 1; dc <= N_DCS; dc++) {
    char pem[2048];
    size_t pl = 0;
    if (mock_dc_public_pem(cl, dc, pem, sizeof pem, &pl) != 0) pem[0] = 0;
    json_array_append_new(json_object_get(hello, "ports"), json_integer(mock_dc_port(cl, dc)));
    json_array_append_new(json_object_get(hello, "pems"), json_string(pem));
  }
  char *text = json_dumps(hello, JSON_COMPACT);
  json_decref(hello);
  reply(out, text ? text : "{}");
  free(text);
  char line[512];
  while (fgets(line, sizeof line, in)) {
    line[strcspn(line, "\n")] = 0;
    if (!strncmp(line, "faults ", 7)) { /* faults DC SPEC */
      int dc = atoi(line + 7);
      const char *spec = strchr(line + 7, ' ');
      mock_dc_faults f;
      int ok = spec && mock_dc_get_faults(cl, dc, &f) == 0 && mock_dc_faults_parse(spec + 1, &f) == 0 &&
               mock_dc_set_faults(cl, dc, &f) == 0;
      reply(out, ok ? "ok" : "error");
    } else if (!strcmp(line, "counters")) {
      char *j = mock_dc_counters_json(cl);
      json_t *v = j ? json_loads(j, 0, NULL) : NULL;
      char *c = v ? json_dumps(v, JSON_COMPACT) : NULL;
      reply(out, c ? c : "{}");
      free(c);
      json_decref(v);
      free(j);
    } else {
      break; /* "quit" or EOF */
    }
  }
  mock_dc_cluster_free(cl);
}

static int server_start(server *s) {
  memset(s, 0, sizeof *s);
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) return -1;
  fflush(stdout);
  fflush(stderr);
  s->pid = fork();
  if (s->pid < 0) return -1;
  if (s->pid == 0) {
    close(a[1]);
    close(b[0]);
    FILE *in = fdopen(a[0], "r"), *out = fdopen(b[1], "w");
    if (in && out) server_main(in, out);
    _exit(0);
  }
  close(a[0]);
  close(b[1]);
  s->to = fdopen(a[1], "w");
  s->from = fdopen(b[0], "r");
  if (!s->to || !s->from) return -1;
  static char line[65536];
  if (!fgets(line, sizeof line, s->from)) return -1;
  json_t *v = json_loads(line, 0, NULL);
  json_t *ports = json_object_get(v, "ports"), *pems = json_object_get(v, "pems");
  int ok = json_array_size(ports) == N_DCS && json_array_size(pems) == N_DCS;
  for (int i = 0; ok && i < N_DCS; i++) {
    s->ports[i] = (uint16_t)json_integer_value(json_array_get(ports, (size_t)i));
    const char *p = json_string_value(json_array_get(pems, (size_t)i));
    ok = s->ports[i] && p && strlen(p) < sizeof s->pems[i];
    if (ok) snprintf(s->pems[i], sizeof s->pems[i], "%s", p);
  }
  json_decref(v);
  return ok ? 0 : -1;
}

/* One command; the reply line is returned as parsed JSON ("ok" -> json true). */
static json_t *server_cmd(server *s, const char *cmd) {
  static char line[1 << 20];
  fprintf(s->to, "%s\n", cmd);
  fflush(s->to);
  if (!fgets(line, sizeof line, s->from)) return NULL;
  line[strcspn(line, "\n")] = 0;
  if (!strcmp(line, "ok")) return json_true();
  if (!strcmp(line, "error")) return NULL;
  return json_loads(line, 0, NULL);
}

static int server_faults(server *s, int dc, const char *spec) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "faults %d %s", dc, spec);
  json_t *r = server_cmd(s, cmd);
  int ok = json_is_true(r);
  json_decref(r);
  return ok ? 0 : -1;
}

/* Count of method `name` on DC dc, or a totals field (name NULL: field). */
static long long server_count(server *s, int dc, const char *name, const char *field) {
  json_t *r = server_cmd(s, "counters");
  long long v = -1;
  if (r) {
    if (field && !dc) {
      v = (long long)json_integer_value(json_object_get(json_object_get(r, "totals"), field));
    } else {
      json_t *d = json_array_get(json_object_get(r, "dcs"), (size_t)(dc - 1));
      v = name ? (long long)json_integer_value(json_object_get(json_object_get(d, "rpcs_by_method"), name))
               : (long long)json_integer_value(json_object_get(d, field));
    }
  }
  json_decref(r);
  return v;
}

static void server_stop(server *s) {
  if (s->to) {
    fprintf(s->to, "quit\n");
    fclose(s->to);
  }
  if (s->from) fclose(s->from);
  if (s->pid > 0) {
    int st;
    for (int i = 0; i < 500 && waitpid(s->pid, &st, WNOHANG) == 0; i++) {
      struct timespec ts = {0, 10000000};
      nanosleep(&ts, NULL);
    }
    if (waitpid(s->pid, &st, WNOHANG) == 0) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &st, 0);
    }
  }
}

/* ---- settings, state, requests ---------------------------------------------------------------- */

static server g_srv;
static mtc_dc_address g_seeds[N_DCS];
static const char *g_pem_ptrs[N_DCS];
static char *g_state;      /* the logged-in context's saved state */
static size_t g_state_len;
static uint64_t g_saves;

static int load_cb(void *ud, char *buf, size_t cap, size_t *len) {
  (void)ud;
  if (!g_state) return MTC_ERR_STORE_NOT_FOUND;
  if (g_state_len > cap) return MTC_ERR_STORE_TOO_LARGE;
  memcpy(buf, g_state, g_state_len);
  *len = g_state_len;
  return 0;
}

static int save_keep_cb(void *ud, const char *json, size_t len) { /* the login context's */
  (void)ud;
  char *p = malloc(len);
  if (!p) return MTC_ERR_NOMEM;
  memcpy(p, json, len);
  free(g_state);
  g_state = p;
  g_state_len = len;
  return 0;
}

static int save_drop_cb(void *ud, const char *json, size_t len) { /* everyone else's */
  (void)ud;
  (void)json;
  (void)len;
  g_saves++;
  return 0;
}

static void log_cb(void *ud, mtc_log_level level, const char *line) {
  (void)ud;
  fprintf(stderr, "  [%lld mtconn %d] %s\n", (long long)(mono_ms() % 100000), (int)level, line);
}

static void base_settings(mtc_settings *s, int ping_ms) {
  mtc_settings_default(s);
  s->api_id = 12345;
  s->api_hash = "0123456789abcdef";
  s->device_model = "mtconn-bench";
  s->system_version = "Linux";
  s->app_version = "0.1";
  s->system_lang_code = "en";
  s->lang_code = "en";
  s->seeds = g_seeds;
  s->n_seeds = N_DCS;
  s->rsa_keys_pem = g_pem_ptrs;
  s->n_rsa_keys = N_DCS;
  s->no_builtin_rsa_keys = 1;
  s->ping_interval_ms = ping_ms;
  s->log_level = MTC_LOG_ERROR;
}

typedef struct call {
  int done;
  mtc_result_kind kind;
  int dc_id;
  double at;
  char hash[128];
  char msg[64];
} call;

static void on_call(void *ud, const mtc_result *r) {
  call *c = ud;
  c->done = 1;
  c->kind = r->kind;
  c->dc_id = r->dc_id;
  c->at = mono_msf();
  if (r->rpc_message) snprintf(c->msg, sizeof c->msg, "%s", r->rpc_message);
  if (r->kind == MTC_RESULT_OK && r->len > 4 && mtci_le32(r->data) == MTC_TL_ID_auth_sentCode) {
    mtc_tl_object *o = NULL;
    if (mtc_tl_parse(r->data, r->len, &o) == 0) {
      const mtc_tl_auth_sentCode *sc = (const mtc_tl_auth_sentCode *)o;
      if (sc->phone_code_hash.len < sizeof c->hash) {
        memcpy(c->hash, sc->phone_code_hash.data, sc->phone_code_hash.len);
        c->hash[sc->phone_code_hash.len] = 0;
      }
    }
    mtc_tl_object_free(o);
  }
}

static int invoke_self(mtc_context *ctx, call *c) {
  mtc_tl_inputUserSelf self = {{MTC_TL_ID_inputUserSelf}};
  mtc_tl_object *ids[1] = {&self.base};
  mtc_tl_fn_users_getUsers q;
  memset(&q, 0, sizeof q);
  q.base.id = MTC_TL_ID_fn_users_getUsers;
  q.id.n = 1;
  q.id.v = ids;
  memset(c, 0, sizeof *c);
  return mtc_invoke_object(ctx, NULL, &q.base, on_call, c, NULL);
}

static int run_until(mtc_context *ctx, call *c) {
  for (int64_t end = mono_ms() + OP_MS; !c->done && mono_ms() < end;) (void)mtc_context_run(ctx, 20);
  return c->done && c->kind == MTC_RESULT_OK ? 0 : -1;
}

/* One context logs in (sendCode on DC 2 -> PHONE_MIGRATE_5, signIn) and
 * leaves its state in g_state. */
static int login_once(void) {
  mtc_settings s;
  base_settings(&s, 0);
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.load_state = load_cb;
  cb.save_state = save_keep_cb;
  if (getenv("MTCB_VERBOSE")) {
    cb.on_log = log_cb;
    s.log_level = MTC_LOG_DEBUG;
  }
  mtc_context *ctx = NULL;
  if (mtc_context_new(&ctx, &s, &cb, NULL) != 0) return -1;
  mtc_tl_codeSettings cs;
  memset(&cs, 0, sizeof cs);
  cs.base.id = MTC_TL_ID_codeSettings;
  mtc_tl_fn_auth_sendCode sc;
  memset(&sc, 0, sizeof sc);
  sc.base.id = MTC_TL_ID_fn_auth_sendCode;
  sc.phone_number.data = (uint8_t *)MOCK_DC_DEFAULT_PHONE;
  sc.phone_number.len = strlen(MOCK_DC_DEFAULT_PHONE);
  sc.api_id = 12345;
  sc.api_hash.data = (uint8_t *)"0123456789abcdef";
  sc.api_hash.len = 16;
  sc.settings = &cs.base;
  call c;
  memset(&c, 0, sizeof c);
  int rc = mtc_invoke_object(ctx, NULL, &sc.base, on_call, &c, NULL);
  if (!rc) rc = run_until(ctx, &c);
  if (!rc && !c.hash[0]) rc = -1;
  char hash[128];
  snprintf(hash, sizeof hash, "%s", c.hash);
  if (!rc) {
    mtc_tl_fn_auth_signIn si;
    memset(&si, 0, sizeof si);
    si.base.id = MTC_TL_ID_fn_auth_signIn;
    si.flags = 1;
    si.phone_number = sc.phone_number;
    si.phone_code_hash.data = (uint8_t *)hash;
    si.phone_code_hash.len = strlen(hash);
    si.phone_code.data = (uint8_t *)MOCK_DC_LOGIN_CODE;
    si.phone_code.len = strlen(MOCK_DC_LOGIN_CODE);
    memset(&c, 0, sizeof c);
    rc = mtc_invoke_object(ctx, NULL, &si.base, on_call, &c, NULL);
    if (!rc) rc = run_until(ctx, &c);
  }
  if (rc)
    fprintf(stderr, "context login: %s%s\n", c.done ? "answer " : "no answer", c.msg);
  if (!rc && (mtc_context_main_dc(ctx) != 5 || !mtc_context_is_authorized(ctx, 5))) rc = -1;
  mtc_context_free(ctx); /* the final save */
  return rc == 0 && g_state ? 0 : -1;
}

/* ---- idle: N contexts on one epoll loop ------------------------------------------------------------ */

typedef struct hctx {
  mtc_context *ctx;
  uint64_t tgen;   /* the live timer's generation */
  int64_t deadline;/* -1: none */
  call c;
} hctx;

typedef struct tentry {
  int64_t at;
  uint64_t gen;
  hctx *h;
} tentry;

typedef struct eloop {
  int ep;
  hctx **owner; /* by fd */
  size_t n_owner;
  tentry *heap;
  size_t n_heap, cap_heap;
  uint64_t timeouts, ios, dropped_timers;
} eloop;

static eloop g_loop;

static void heap_push(tentry e) {
  eloop *l = &g_loop;
  if (l->n_heap == l->cap_heap) {
    l->dropped_timers++; /* cannot happen with the sizes below; counted to be sure */
    return;
  }
  size_t i = l->n_heap++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (l->heap[p].at <= e.at) break;
    l->heap[i] = l->heap[p];
    i = p;
  }
  l->heap[i] = e;
}

static tentry heap_pop(void) {
  eloop *l = &g_loop;
  tentry top = l->heap[0], last = l->heap[--l->n_heap];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= l->n_heap) break;
    if (c + 1 < l->n_heap && l->heap[c + 1].at < l->heap[c].at) c++;
    if (last.at <= l->heap[c].at) break;
    l->heap[i] = l->heap[c];
    i = c;
  }
  if (l->n_heap) l->heap[i] = last;
  return top;
}

static void cb_watch(void *ud, int fd, unsigned events) {
  hctx *h = ud;
  eloop *l = &g_loop;
  if (fd < 0 || (size_t)fd >= l->n_owner) return;
  if (!events) {
    (void)epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
    l->owner[fd] = NULL;
    return;
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = ((events & MTC_IO_READ) ? EPOLLIN : 0u) | ((events & MTC_IO_WRITE) ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) != 0) (void)epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
  l->owner[fd] = h;
}

static void cb_timer(void *ud, int64_t delay) {
  hctx *h = ud;
  h->tgen++;
  if (delay < 0) {
    h->deadline = -1;
    return;
  }
  h->deadline = mono_ms() + delay;
  tentry e = {h->deadline, h->tgen, h};
  heap_push(e);
}

static void loop_step(int max_ms) {
  eloop *l = &g_loop;
  int64_t now = mono_ms(), wait = max_ms;
  if (l->n_heap) {
    int64_t d = l->heap[0].at - now;
    if (d < wait) wait = d < 0 ? 0 : d;
  }
  struct epoll_event evs[256];
  int n = epoll_wait(l->ep, evs, 256, (int)wait);
  for (int i = 0; i < n; i++) {
    int fd = evs[i].data.fd;
    hctx *h = fd >= 0 && (size_t)fd < l->n_owner ? l->owner[fd] : NULL;
    if (!h) continue;
    unsigned e = 0;
    if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) e |= MTC_IO_READ;
    if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) e |= MTC_IO_WRITE;
    l->ios++;
    (void)mtc_context_on_io(h->ctx, fd, e);
  }
  now = mono_ms();
  while (l->n_heap && l->heap[0].at <= now) {
    tentry t = heap_pop();
    if (t.gen != t.h->tgen || t.h->deadline < 0) continue; /* replaced or cancelled */
    t.h->deadline = -1;
    l->timeouts++;
    (void)mtc_context_on_timeout(t.h->ctx);
  }
}

typedef struct idle_result {
  int ok;
  int heap_ok;
  int n;
  double heap_per, rss_per;
  double login_ms, setup_s;
  double cpu_per_cycle_us, cycles, window_s, cpu_s;
  long long mock_getusers, mock_handshakes, mock_tcp;
  uint64_t saves, timeouts, ios;
} idle_result;

static int bench_idle(int n, int ping_ms, int window_s, idle_result *res) {
  memset(res, 0, sizeof *res);
  res->n = n;
  eloop *l = &g_loop;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  l->n_owner = (size_t)rl.rlim_cur;
  l->owner = calloc(l->n_owner, sizeof *l->owner);
  l->cap_heap = (size_t)n * 64 + 4096;
  l->heap = malloc(l->cap_heap * sizeof *l->heap);
  hctx *v = calloc((size_t)n, sizeof *v);
  l->ep = epoll_create1(EPOLL_CLOEXEC);
  if (!l->owner || !l->heap || !v || l->ep < 0) {
    fprintf(stderr, "context idle: out of memory\n");
    return 1;
  }
  mtc_settings s;
  base_settings(&s, ping_ms);
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.watch_fd = cb_watch;
  cb.set_timer = cb_timer;
  cb.load_state = load_cb;
  cb.save_state = save_drop_cb;
  long long hs0 = server_count(&g_srv, 0, NULL, "handshakes_perm");
  long long tcp0 = server_count(&g_srv, 0, NULL, "tcp_accepted");
  long long gu0 = server_count(&g_srv, 5, "users.getUsers", NULL);

  size_t heap0 = heap_in_use(), rss0 = rss_bytes();
  double t0 = mono_msf();
  int created = 0, answered = 0, failed = 0, next = 0;
  const int in_flight = 64; /* connects in progress at once (the mock's listen backlog is 128) */
  int64_t end = mono_ms() + OP_MS + (int64_t)n * 20;
  int broken = 0;
  while (!broken && answered + failed < n && mono_ms() < end) {
    while (next < n && next - (answered + failed) < in_flight) {
      hctx *h = &v[next];
      h->deadline = -1;
      int rc = mtc_context_new(&h->ctx, &s, &cb, h);
      if (rc == 0) rc = invoke_self(h->ctx, &h->c);
      if (rc) {
        fprintf(stderr, "context idle: context %d: %s\n", next, mtc_strerror(rc));
        if (h->ctx) next++; /* freed with the others */
        broken = 1;
        break;
      }
      created++;
      next++;
    }
    loop_step(10);
    answered = failed = 0;
    for (int i = 0; i < next; i++) {
      if (!v[i].c.done) continue;
      if (v[i].c.kind == MTC_RESULT_OK) answered++;
      else failed++;
    }
  }
  res->setup_s = (mono_msf() - t0) / 1000.0;
  if (answered < n) {
    fprintf(stderr, "context idle: %d of %d sessions answered (%d failed, %d created)\n", answered, n,
            failed, created);
  }
  /* idle: acks and the first keepalive settle */
  for (int64_t e2 = mono_ms() + 1500; mono_ms() < e2;) loop_step(50);
  size_t heap1 = heap_in_use(), rss1 = rss_bytes();
  res->heap_per = answered ? (double)(heap1 > heap0 ? heap1 - heap0 : 0) / answered : 0;
  res->rss_per = answered ? (double)(rss1 > rss0 ? rss1 - rss0 : 0) / answered : 0;
  res->mock_getusers = server_count(&g_srv, 5, "users.getUsers", NULL) - gu0;
  res->mock_handshakes = server_count(&g_srv, 0, NULL, "handshakes_perm") - hs0;
  res->mock_tcp = server_count(&g_srv, 0, NULL, "tcp_accepted") - tcp0;

  /* keepalive: CPU over a window, per ping the server saw */
  long long p0 = server_count(&g_srv, 5, "ping_delay_disconnect", NULL);
  uint64_t to0 = l->timeouts, io0 = l->ios;
  double c0 = cpu_s(), w0 = mono_msf();
  for (int64_t e3 = mono_ms() + (int64_t)window_s * 1000; mono_ms() < e3;) loop_step(100);
  double c1 = cpu_s(), w1 = mono_msf();
  long long p1 = server_count(&g_srv, 5, "ping_delay_disconnect", NULL);
  res->timeouts = l->timeouts - to0;
  res->ios = l->ios - io0;
  res->cycles = (double)(p1 - p0);
  res->cpu_s = c1 - c0;
  res->window_s = (w1 - w0) / 1000.0;
  res->cpu_per_cycle_us = res->cycles > 0 ? res->cpu_s * 1e6 / res->cycles : 0;
  res->saves = g_saves;
  res->ok = answered == n;

  printf("\n== idle: %d contexts, one logged-in session each (HOST mode, one epoll loop)\n", n);
  printf("login: one context, sendCode -> PHONE_MIGRATE_5 -> signIn (2 handshakes); its saved "
         "state (%zu bytes of JSON) given to every context: no per-context handshake\n",
         g_state_len);
  printf("setup: %d contexts created and answered users.getUsers(self) in %.2f s "
         "(mock: %lld getUsers, %lld TCP accepts, %lld handshakes)\n",
         answered, res->setup_s, res->mock_getusers, res->mock_tcp, res->mock_handshakes);
  res->heap_ok = heap1 > heap0; /* ASan's allocator, for one, reports nothing through mallinfo2 */
  if (res->heap_ok)
    printf("heap  (mallinfo2 uordblks+hblkhd): %zu -> %zu bytes = %.0f bytes per idle session\n",
           heap0, heap1, res->heap_per);
  else
    printf("heap  n/a: the allocator does not report through mallinfo2 (%zu -> %zu)\n", heap0, heap1);
  printf("      of which struct mtc_context itself (one calloc per context): %zu bytes\n",
         sizeof(struct mtc_context));
  printf("RSS   (/proc/self/statm resident): %zu -> %zu bytes = %.0f bytes per idle session\n", rss0,
         rss1, res->rss_per);
  printf("file descriptors: limit %llu; %d sockets open here (the mock's are in its own process)\n",
         (unsigned long long)rl.rlim_cur, answered);
  printf("keepalive: ping_interval_ms %d over %.1f s: %.0f pings at the mock (expected ~%.0f), "
         "%llu timer callbacks, %llu io callbacks, %.3f s CPU = %.1f us CPU per session per "
         "keepalive cycle\n",
         ping_ms, res->window_s, res->cycles, (double)n * res->window_s * 1000.0 / ping_ms,
         (unsigned long long)res->timeouts, (unsigned long long)res->ios, res->cpu_s,
         res->cpu_per_cycle_us);
  printf("state saves handed to the host during the run: %llu (discarded)\n",
         (unsigned long long)res->saves);

  double f0 = mono_msf();
  for (int i = 0; i < n; i++) mtc_context_free(v[i].ctx); /* NULL-safe */
  printf("freeing %d contexts: %.1f ms\n", n, mono_msf() - f0);
  fflush(stdout);
  free(v);
  close(l->ep);
  free(l->owner);
  free(l->heap);
  memset(l, 0, sizeof *l);
  return res->ok ? 0 : 1;
}

/* ---- rtt: mtc_invoke -> callback from a saved state ---------------------------------------------- */

typedef struct rtt_result {
  int ok;
  int delay_ms, runs;
  double base_ms, delayed_ms, stale_ms;
  double raw_ratio;   /* measured / injected */
  double ratio;       /* (measured - undelayed) / injected: round trips spent waiting */
  double stale_ratio;
  long long bad_valid, bad_stale; /* bad_server_salt / bad_msg answers the mock sent */
} rtt_result;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median over runs of one start: new context from g_state, one getUsers. */
static int start_once(double *ms, const char *fault) {
  mtc_settings s;
  base_settings(&s, 0);
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.load_state = load_cb;
  /* Each start saves its state for the next, as an application would: the
   * salt in it is then the latest (the mock forgets the future salts it
   * issued when another session asks for new ones; Telegram's DCs do not). */
  cb.save_state = save_keep_cb;
  if (getenv("MTCB_VERBOSE")) {
    cb.on_log = log_cb;
    s.log_level = MTC_LOG_DEBUG;
  }
  mtc_context *ctx = NULL;
  if (mtc_context_new(&ctx, &s, &cb, NULL) != 0) return -1;
  if (fault && server_faults(&g_srv, 5, fault) != 0) {
    mtc_context_free(ctx);
    return -1;
  }
  call c;
  double t0 = mono_msf();
  int rc = invoke_self(ctx, &c);
  if (!rc) rc = run_until(ctx, &c);
  *ms = c.at - t0;
  mtc_context_free(ctx);
  return rc;
}

static int median_of(int runs, const char *fault, double *out) {
  double v[64];
  int k = 0;
  for (int i = 0; i < runs && i < 64; i++) {
    double ms = 0;
    if (start_once(&ms, fault) != 0) return -1;
    v[k++] = ms;
  }
  qsort(v, (size_t)k, sizeof v[0], cmp_double);
  *out = v[k / 2];
  return 0;
}

static int bench_rtt(int delay_ms, int runs, rtt_result *res) {
  memset(res, 0, sizeof *res);
  res->delay_ms = delay_ms;
  res->runs = runs;
  char spec[64];
  long long b0 = server_count(&g_srv, 5, NULL, "bad_msgs_sent");
  int rc = median_of(runs, NULL, &res->base_ms);
  snprintf(spec, sizeof spec, "delay_ms=%d", delay_ms);
  if (!rc) rc = server_faults(&g_srv, 5, spec);
  if (!rc) rc = median_of(runs, NULL, &res->delayed_ms);
  long long b1 = server_count(&g_srv, 5, NULL, "bad_msgs_sent");
  if (!rc) rc = median_of(runs, "wrong_salt=1", &res->stale_ms); /* the salt rotated meanwhile */
  long long b2 = server_count(&g_srv, 5, NULL, "bad_msgs_sent");
  res->bad_valid = b1 - b0;
  res->bad_stale = b2 - b1;
  (void)server_faults(&g_srv, 5, "delay_ms=0,wrong_salt=0");
  if (rc) {
    fprintf(stderr, "context rtt: a start did not complete\n");
    return 1;
  }
  res->raw_ratio = res->delayed_ms / delay_ms;
  res->ratio = (res->delayed_ms - res->base_ms) / delay_ms;
  res->stale_ratio = (res->stale_ms - res->base_ms) / delay_ms;
  res->ok = 1;
  printf("\n== rtt: mtc_invoke(users.getUsers) -> callback on a context started from the saved "
         "state (TCP connect + first RPC), median of %d\n", runs);
  printf("no injected delay:                            %8.2f ms (local work: connect, "
         "obfuscation, initConnection, crypto, the mock)\n", res->base_ms);
  printf("DC 5 holds every frame back %3d ms (RTT):      %8.2f ms: measured/injected %.2f; "
         "%.2f round trips beyond the undelayed start\n", delay_ms, res->delayed_ms,
         res->raw_ratio, res->ratio);
  printf("same, the saved salt rotated (bad_server_salt): %8.2f ms = %.2f round trips\n",
         res->stale_ms, res->stale_ratio);
  printf("bad_server_salt / bad_msg answers from the mock: %lld in the %d valid-salt starts, "
         "%lld in the %d rotated-salt starts\n", res->bad_valid, 2 * runs, res->bad_stale, runs);
  fflush(stdout);
  return 0;
}

/* ======================================================================================= */

/* ratio = value / target; met when ratio <= limit (1, or 1.2 for a round-trip count:
 * timers and scheduling add a few ms to any measured RTT). */
static void metric_row_l(const char *name, const char *value, const char *target, double ratio,
                         int has_target, double limit) {
  char r[32];
  if (has_target) snprintf(r, sizeof r, "%.2f %s", ratio, ratio <= limit ? "met" : "MISSED");
  else snprintf(r, sizeof r, "-");
  printf("%-46s %14s %14s %14s\n", name, value, target, r);
}

static void metric_row(const char *name, const char *value, const char *target, double ratio,
                       int has_target) {
  metric_row_l(name, value, target, ratio, has_target, 1.0);
}

int mtcb_context(int argc, char **argv) {
  int n = 1000, ping_ms = 1000, window_s = 5, delay_ms = 50, runs = 7;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sessions") && i + 1 < argc) n = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--ping-ms") && i + 1 < argc) ping_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--window") && i + 1 < argc) window_s = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--rtt-ms") && i + 1 < argc) delay_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else {
      fprintf(stderr, "usage: mtconn-bench context [--sessions N] [--ping-ms P] [--window S] "
                      "[--rtt-ms D] [--runs R] [--only idle|rtt]\n");
      return 2;
    }
  }
  if (n < 1 || n > 100000 || ping_ms < 100 || ping_ms > 600000 || window_s < 1 || window_s > 600 ||
      delay_ms < 1 || delay_ms > 5000 || runs < 1 || runs > 64 ||
      (only && strcmp(only, "idle") && strcmp(only, "rtt"))) {
    fprintf(stderr, "mtconn-bench context: --sessions 1..100000, --ping-ms 100..600000, "
                    "--window 1..600, --rtt-ms 1..5000, --runs 1..64, --only idle|rtt\n");
    return 2;
  }
  /* Room for N client sockets here and N server sockets in the mock's process. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
    int fit = (int)rl.rlim_cur - 64;
    printf("file descriptor limit %llu: measuring %d sessions instead of %d\n",
           (unsigned long long)rl.rlim_cur, fit, n);
    n = fit;
    if (n < 1) return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  printf("mtconn-bench context: numbers beside their targets; timings are printed, never "
         "asserted\n");
  if (server_start(&g_srv) != 0) {
    fprintf(stderr, "mtconn-bench context: the mock cluster did not start\n");
    server_stop(&g_srv);
    return 1;
  }
  for (int i = 0; i < N_DCS; i++) {
    memset(&g_seeds[i], 0, sizeof g_seeds[i]);
    g_seeds[i].dc_id = i + 1;
    g_seeds[i].ip = "127.0.0.1";
    g_seeds[i].port = g_srv.ports[i];
    g_pem_ptrs[i] = g_srv.pems[i];
  }
  int status = 0;
  double l0 = mono_msf();
  if (login_once() != 0) {
    fprintf(stderr, "mtconn-bench context: the login failed\n");
    server_stop(&g_srv);
    return 1;
  }
  double login_ms = mono_msf() - l0;
  idle_result ir;
  rtt_result rr;
  memset(&ir, 0, sizeof ir);
  memset(&rr, 0, sizeof rr);
  /* idle first: rtt's last part rotates the mock's salt, which the saved state then misses */
  if (!only || !strcmp(only, "idle")) status |= bench_idle(n, ping_ms, window_s, &ir);
  if (!only || !strcmp(only, "rtt")) status |= bench_rtt(delay_ms, runs, &rr);
  server_stop(&g_srv);

  printf("\n%-46s %14s %14s %14s\n", "metric", "value", "target", "value/target");
  char val[64], tgt[64];
  int met = 0, total = 0;
  snprintf(val, sizeof val, "%.0f ms", login_ms);
  metric_row("first login (2 handshakes, PHONE_MIGRATE)", val, "-", 0, 0);
  if (ir.ok && ir.heap_ok) {
    snprintf(val, sizeof val, "%.2f KiB", ir.heap_per / 1024.0);
    snprintf(tgt, sizeof tgt, "<= %.0f KiB", TARGET_HEAP / 1024.0);
    metric_row("heap per idle logged-in session", val, tgt, ir.heap_per / TARGET_HEAP, 1);
    total++, met += ir.heap_per <= TARGET_HEAP;
  }
  if (ir.ok) {
    snprintf(val, sizeof val, "%.2f KiB", ir.rss_per / 1024.0);
    metric_row("  RSS per idle session", val, "-", 0, 0);
    snprintf(val, sizeof val, "%.1f us", ir.cpu_per_cycle_us);
    metric_row("CPU per session per keepalive cycle", val, "-", 0, 0);
  }
  if (rr.ok) {
    snprintf(val, sizeof val, "%.2f RTT", rr.ratio);
    snprintf(tgt, sizeof tgt, "<= %.0f RTT", TARGET_RTT);
    metric_row_l("start from saved state: invoke -> callback", val, tgt, rr.ratio / TARGET_RTT, 1,
                 1.2);
    total++, met += rr.ratio / TARGET_RTT <= 1.2;
    snprintf(val, sizeof val, "%.1f/%d ms", rr.delayed_ms, rr.delay_ms);
    metric_row("  measured / injected RTT", val, "-", 0, 0);
    snprintf(val, sizeof val, "%.2f", rr.raw_ratio);
    metric_row("  ratio measured / injected", val, "-", 0, 0);
    snprintf(val, sizeof val, "%.2f RTT", rr.stale_ratio);
    metric_row("  (the same with a rotated salt)", val, "-", 0, 0);
  }
  printf("\nsummary: %d of %d targets met", met, total);
  if (ir.ok && ir.heap_ok)
    printf("; %d sessions: %.1f KiB heap each", ir.n, ir.heap_per / 1024.0);
  if (ir.ok)
    printf("; %.1f KiB RSS each; %.1f us CPU per keepalive cycle", ir.rss_per / 1024.0,
           ir.cpu_per_cycle_us);
  if (rr.ok) printf("; start from state %.2f RTT (%.1f ms at %d ms RTT)", rr.ratio, rr.delayed_ms,
                    rr.delay_ms);
  printf("%s\n", status ? " (some sections FAILED to run, see above)" : "");
  free(g_state);
  g_state = NULL;
  return status;
}

#endif /* MTCB_HAVE_MOCKDC */
