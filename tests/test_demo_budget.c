/*
 * The connection budget of a first login, enforced on the built demo
 * (examples/mtconn-demo, path compiled in as MTC_DEMO_PATH) for every
 * transport, directly and through every mock MTProxy kind:
 *
 *   direct       abridged, intermediate, padded (obfuscated and plain), full
 *   proxy plain  abridged, intermediate, padded
 *   proxy dd     padded      (a dd secret forces padded framing)
 *   proxy ee     padded      (fake-TLS; padded inside)
 *   (full has no proxy form: skipped)
 *   --pfs        intermediate direct, padded through ee: 3 temporary keys
 *                (1 per DC), each bound once (mock binds), none on restart
 *
 * Each combination runs the demo twice with --json and one fresh --state:
 *   1st: first login + 1 MiB download: <= 3 TCP connections, <= 3 permanent
 *        keys, 0 temporary keys (PFS off), 0 HTTP requests, 0 DNS queries,
 *        the library's counts equal the mock's, every byte checked;
 *   2nd: same state: 0 handshakes (client and server side), still a login
 *        (users.getUsers on the saved main DC) and the download.
 * A negative case removes the mock's saved key store between the runs: the
 * second run must then fail its budget (the demo must notice).
 *
 * --block-seeds (endpoint discovery): the mock's seed ports refuse, a mock
 * DoH publishes the alternative ports. 1st run: <= 2 HTTP requests, 3 working
 * connections, 3 permanent keys, the dead-seed connects reported apart; 2nd
 * run from the state: no HTTP request, no dead connect, no handshake. With
 * --no-discovery the same blocked login must fail.
 *
 * Every child run is bounded (RUN_TIMEOUT_S), and so is the whole program
 * (TOTAL_TIMEOUT_S). Timings are printed, never checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#ifndef MTC_DEMO_PATH
#error "tests/CMakeLists.txt builds this test only with the demo (MTC_BUILD_EXAMPLES)"
#endif

#define RUN_TIMEOUT_S 40
#define TOTAL_TIMEOUT_S 240
#define OUT_CAP (4u << 20)

static double g_start;

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run the demo with args; stdout into *out (malloc'd). Returns the exit
 * status, or -1 (could not run / killed at the timeout). */
static int run_demo(const char *const *args, char **out, double *secs) {
  *out = NULL;
  int p[2];
  if (pipe(p) != 0) return -1;
  const char *argv[32];
  size_t n = 0;
  argv[n++] = MTC_DEMO_PATH;
  for (size_t i = 0; args[i] && n < 31; i++) argv[n++] = args[i];
  argv[n] = NULL;
  double t0 = mono_s();
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(p[1]);
  char *buf = malloc(OUT_CAP + 1);
  size_t len = 0;
  int killed = 0;
  double end = t0 + RUN_TIMEOUT_S;
  for (;;) {
    double left = end - mono_s();
    if (left <= 0 || mono_s() - g_start > TOTAL_TIMEOUT_S) {
      kill(pid, SIGKILL);
      killed = 1;
      break;
    }
    struct pollfd pf = {p[0], POLLIN, 0};
    int r = poll(&pf, 1, (int)(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[65536];
    ssize_t k = read(p[0], tmp, sizeof tmp);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    if (buf && len + (size_t)k <= OUT_CAP) {
      memcpy(buf + len, tmp, (size_t)k);
      len += (size_t)k;
    }
  }
  close(p[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  *secs = mono_s() - t0;
  if (buf) buf[len] = 0;
  *out = buf;
  if (killed) fprintf(stderr, "  demo killed after %.1f s\n", *secs);
  return killed || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* ---- JSON helpers ---------------------------------------------------------------------------- */

static long long jint(json_t *root, const char *a, const char *b, const char *c) {
  json_t *v = json_object_get(root, a);
  if (b) v = json_object_get(v, b);
  if (c) v = json_object_get(v, c);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static int jtrue(json_t *root, const char *a, const char *b) {
  json_t *v = json_object_get(root, a);
  if (b) v = json_object_get(v, b);
  return json_is_true(v);
}

/* Every entry of array `name` has "ok": true (and there is at least one). */
static int all_ok(json_t *root, const char *name, int want_ok) {
  json_t *arr = json_object_get(root, name), *e;
  size_t i;
  if (!json_is_array(arr) || !json_array_size(arr)) return 0;
  int every = 1;
  json_array_foreach(arr, i, e) {
    if (!json_is_true(json_object_get(e, "ok"))) {
      every = 0;
      if (want_ok)
        fprintf(stderr, "  %s not ok: %s (used/library %lld, limit/mock %lld)\n", name,
                json_string_value(json_object_get(e, "what")),
                (long long)json_integer_value(json_object_get(e, json_object_get(e, "used") ? "used" : "library")),
                (long long)json_integer_value(json_object_get(e, json_object_get(e, "limit") ? "limit" : "mock")));
    }
  }
  return every;
}

#define REQ(cond)                                                                                  \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "  [%s] %s:%d: %s\n", label, __FILE__, __LINE__, #cond);                     \
      goto fail;                                                                                   \
    }                                                                                              \
  } while (0)

/* The checks of one run's JSON. second: the run from the saved state. */
static int check_run(const char *label, const char *text, int status, int second, int proxied,
                     int pfs) {
  json_error_t jerr;
  json_t *root = text ? json_loads(text, 0, &jerr) : NULL;
  if (!root) {
    fprintf(stderr, "  [%s] no JSON from the demo (exit %d)\n%s\n", label, status, text ? text : "");
    return -1;
  }
  REQ(status == 0);
  REQ(jtrue(root, "ok", NULL));
  REQ(!strcmp(json_string_value(json_object_get(root, "mode")), "mock"));
  REQ(jtrue(root, "restart", NULL) == second);
  REQ(jtrue(root, "login", "ok"));
  REQ(jint(root, "login", "main_dc", NULL) == 5);
  REQ(jtrue(root, "download", "ok") && jtrue(root, "download", "verified"));
  REQ(jint(root, "download", "bytes", NULL) == 1048576);
  REQ(jint(root, "download", "dc", NULL) == 1);
  REQ(all_ok(root, "budgets", 1));
  REQ(all_ok(root, "comparison", 1));
  /* the numbers themselves, not only the demo's verdicts */
  long long tcp = jint(root, "library", "totals", "connects_started");
  long long tcp_ok = jint(root, "library", "totals", "connects_succeeded");
  long long perm = jint(root, "library", "totals", "handshakes_perm");
  long long temp = jint(root, "library", "totals", "handshakes_temp");
  REQ(tcp >= 1 && tcp <= 3 && tcp_ok == tcp);
  REQ(jint(root, "library", "http_requests", NULL) == 0);
  REQ(jint(root, "library", "dns_queries", NULL) == 0);
  REQ(jint(root, "mock", "totals", "tcp_accepted") == tcp);
  REQ(jint(root, "mock", "totals", "handshakes_perm") == perm);
  REQ(jint(root, "mock", "totals", "handshakes_temp") == temp);
  /* PFS: one temporary key per DC on the first login, none from the state */
  REQ(temp == (pfs && !second ? 3 : 0));
  if (pfs) REQ(jint(root, "mock", "totals", "binds") == temp);
  if (second) {
    REQ(perm == 0);
    REQ(jint(root, "events", "auth_keys_created", NULL) == 0);
    REQ(jint(root, "mock_keys_restored", NULL, NULL) >= 3);
    REQ(tcp == 2); /* the saved main DC 5 and the file's DC 1 */
  } else {
    REQ(perm == 3 && tcp == 3);
    REQ(jint(root, "events", "auth_keys_created", NULL) == perm + temp);
  }
  if (proxied) {
    REQ(jint(root, "mock_proxy", "accepted", NULL) == tcp);
    REQ(jint(root, "mock_proxy", "handshakes_ok", NULL) == tcp);
  }
  json_decref(root);
  return 0;
fail:
  json_decref(root);
  return -1;
}

/* ---- the matrix -------------------------------------------------------------------------------- */

typedef struct combo {
  const char *transport;
  const char *proxy; /* NULL: direct */
  int plain;         /* --no-obfuscation */
  int pfs;           /* --pfs */
} combo;

static const combo k_combos[] = {
    {"abridged", NULL, 0},     {"intermediate", NULL, 0}, {"padded", NULL, 0},
    {"full", NULL, 1},         {"abridged", NULL, 1},     {"intermediate", NULL, 1},
    {"padded", NULL, 1},       {"abridged", "plain", 0},  {"intermediate", "plain", 0},
    {"padded", "plain", 0},    {"padded", "dd", 0},       {"padded", "ee", 0},
    {"intermediate", NULL, 0, 1}, {"padded", "ee", 0, 1},
};

typedef struct tmpstate {
  char dir[64], state[96], side[128];
} tmpstate;

static int tmp_make(tmpstate *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/mtc_demo_XXXXXX");
  if (!mkdtemp(t->dir)) return -1;
  snprintf(t->state, sizeof t->state, "%s/state.json", t->dir);
  snprintf(t->side, sizeof t->side, "%s.mockdc", t->state);
  return 0;
}

static void tmp_remove(tmpstate *t) {
  unlink(t->state);
  unlink(t->side);
  rmdir(t->dir);
}

static int one_combo(const combo *c) {
  char label[64];
  snprintf(label, sizeof label, "%s%s %s%s", c->transport, c->plain ? " (plain framing)" : "",
           c->proxy ? c->proxy : "direct", c->pfs ? " pfs" : "");
  tmpstate t;
  if (tmp_make(&t) != 0) return -1;
  const char *args[16];
  size_t n = 0;
  args[n++] = "--json";
  args[n++] = "--transport";
  args[n++] = c->transport;
  args[n++] = "--state";
  args[n++] = t.state;
  if (c->plain) args[n++] = "--no-obfuscation";
  if (c->pfs) args[n++] = "--pfs";
  if (c->proxy) {
    args[n++] = "--proxy";
    args[n++] = c->proxy;
  }
  args[n] = NULL;
  int rc = 0;
  double s1 = 0, s2 = 0;
  for (int run = 0; run < 2 && rc == 0; run++) {
    char *out = NULL;
    double secs = 0;
    int st = run_demo(args, &out, &secs);
    rc = check_run(label, out, st, run == 1, c->proxy != NULL, c->pfs);
    free(out);
    if (run == 0) s1 = secs;
    else s2 = secs;
  }
  fprintf(stderr, "  %-34s %s  (first %.2f s, restart %.2f s)\n", label, rc ? "FAILED" : "ok", s1, s2);
  tmp_remove(&t);
  return rc;
}

TEST(budget_matrix) {
  int failures = 0;
  for (size_t i = 0; i < sizeof k_combos / sizeof k_combos[0]; i++) {
    if (mono_s() - g_start > TOTAL_TIMEOUT_S) {
      fprintf(stderr, "  out of time after %zu combinations\n", i);
      failures++;
      break;
    }
    if (one_combo(&k_combos[i]) != 0) failures++;
  }
  CHECK_EQ_INT(failures, 0);
}

/* The demo notices a broken budget: the mock forgot its keys between the
 * runs (its saved key store removed), so the second run cannot reuse the
 * saved ones and must not report success. */
TEST(budget_violation_detected) {
  tmpstate t;
  CHECK(tmp_make(&t) == 0);
  const char *args[] = {"--json", "--state", t.state, NULL};
  char *out = NULL;
  double secs = 0;
  int st = run_demo(args, &out, &secs);
  CHECK(st == 0 && out);
  free(out);
  CHECK(access(t.side, F_OK) == 0);
  CHECK(unlink(t.side) == 0);
  out = NULL;
  st = run_demo(args, &out, &secs);
  json_t *root = out ? json_loads(out, 0, NULL) : NULL;
  free(out);
  tmp_remove(&t);
  CHECK(root != NULL);
  int ok = jtrue(root, "ok", NULL);
  int budgets_ok = all_ok(root, "budgets", 0);
  int login_ok = jtrue(root, "login", "ok");
  fprintf(stderr, "  keys forgotten by the server: exit %d, ok %d, budgets ok %d, login ok %d\n", st,
          ok, budgets_ok, login_ok);
  json_decref(root);
  CHECK_EQ_INT(st, 1);
  CHECK(!ok);
  CHECK(!budgets_ok || !login_ok);
}

/* Seeds blocked: endpoint discovery finds the alternative ports. */
TEST(block_seeds) {
  tmpstate t;
  CHECK(tmp_make(&t) == 0);
  const char *args[] = {"--json", "--block-seeds", "--state", t.state, NULL};
  long long http[2] = {-1, -1}, dead[2] = {-1, -1}, ok_tcp[2] = {-1, -1}, perm[2] = {-1, -1};
  int ok[2] = {0, 0}, st[2] = {-1, -1};
  double secs[2] = {0, 0};
  for (int run = 0; run < 2; run++) {
    char *out = NULL;
    st[run] = run_demo(args, &out, &secs[run]);
    json_t *root = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    if (root) {
      ok[run] = jtrue(root, "ok", NULL) && all_ok(root, "budgets", 1) && all_ok(root, "comparison", 1) &&
                jtrue(root, "download", "verified") && jtrue(root, "restart", NULL) == run;
      http[run] = jint(root, "library", "http_requests", NULL);
      dead[run] = jint(root, "dead_seed_connects", NULL, NULL);
      ok_tcp[run] = jint(root, "library", "totals", "connects_succeeded");
      perm[run] = jint(root, "library", "totals", "handshakes_perm");
      if (jint(root, "mock_doh_requests", NULL, NULL) != http[run]) ok[run] = 0;
    }
    json_decref(root);
  }
  fprintf(stderr, "  block-seeds: 1st exit %d, %lld HTTP, %lld dead-seed connects, %lld working, %lld keys "
                  "(%.2f s); 2nd exit %d, %lld HTTP, %lld dead, %lld keys (%.2f s)\n",
          st[0], http[0], dead[0], ok_tcp[0], perm[0], secs[0], st[1], http[1], dead[1], perm[1], secs[1]);
  tmp_remove(&t);
  CHECK(st[0] == 0 && ok[0]);
  CHECK(http[0] >= 1 && http[0] <= 2);
  CHECK(dead[0] >= 1 && ok_tcp[0] == 3 && perm[0] == 3);
  CHECK(st[1] == 0 && ok[1]);
  CHECK(http[1] == 0 && dead[1] == 0 && perm[1] == 0);
  /* the same blocked login without discovery cannot work: the demo says so */
  const char *off[] = {"--json", "--block-seeds", "--no-discovery", "--timeout", "1500", NULL};
  char *out = NULL;
  int s3 = run_demo(off, &out, &secs[0]);
  json_t *root = out ? json_loads(out, 0, NULL) : NULL;
  free(out);
  CHECK(root != NULL);
  int ok3 = jtrue(root, "ok", NULL), login3 = jtrue(root, "login", "ok");
  long long http3 = jint(root, "library", "http_requests", NULL);
  json_decref(root);
  fprintf(stderr, "  block-seeds --no-discovery: exit %d, ok %d, login %d, %lld HTTP\n", s3, ok3, login3, http3);
  CHECK(s3 == 1 && !ok3 && !login3 && http3 == 0);
}

int main(int argc, char **argv) {
  g_start = mono_s();
  signal(SIGPIPE, SIG_IGN);
  static const struct test_case cases[] = {CASE(budget_matrix), CASE(budget_violation_detected),
                                           CASE(block_seeds)};
  int passed = 0, failed = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (argc > 1 && !strstr(cases[i].name, argv[1])) continue;
    int f = 0;
    cases[i].fn(&f);
    fprintf(stderr, "%s %s\n", f ? "FAIL" : "ok  ", cases[i].name);
    if (f) failed++;
    else passed++;
  }
  printf("demo_budget: %d passed, %d failed (%.1f s)\n", passed, failed, mono_s() - g_start);
  return failed ? 1 : (passed ? 0 : 1);
}
