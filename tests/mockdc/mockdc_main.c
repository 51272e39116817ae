/*
 * mtconn-mockdc: the mock DC cluster as a program (TEST TOOL). Binds
 * 127.0.0.1 only. See usage() for the flags.
 *
 * Control on stdin (when stdin is a pipe or a terminal), one command a line:
 *   fault <dc> <spec>   replace the faults of DC <dc> (0 = every DC), spec as
 *                       in --fault, e.g. "fault 2 stall=1", "fault 2 -" (none)
 *   counters            print the counters JSON on stdout (one line)
 *   ports               print the ports JSON on stdout (one line)
 *   proxies             print the --proxy MTProxies' stats on stdout (one line):
 *                       {"proxies":[{"port":P,"stats":{mock_proxy_stats_json}},...]}
 *   quit                exit
 * EOF on such a stdin ends the program too.
 *
 * --proxy SECRET[:MODES] (repeatable) puts a mock MTProxy (mock_proxy.h) in
 * front of the cluster, relaying to every DC's main port, on its own loop
 * thread. SECRET is written as in a proxy link: 32 hex digits (plain), "dd" +
 * 32 (secure) or "ee" + 32 + the hex of the fake-TLS domain (the SNI it then
 * requires). MODES (classic,secure,tls or all) defaults to the secret's kind.
 * --json-ports then adds "proxies":[{"port":P,"kind":K,"modes":M},...] in the
 * order given, K = plain, dd or ee (the secret itself is never printed).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mock_dc.h"
#include "mock_loop.h"
#include "mock_proxy.h"

static volatile sig_atomic_t g_term, g_usr1;

static void on_signal(int sig) {
  if (sig == SIGUSR1) g_usr1 = 1;
  else g_term = 1;
}

/* ---- --proxy: mock MTProxies in front of the cluster --------------------------- */

#define MAX_PROXIES 4

typedef struct proxy_arg {
  const char *kind; /* "plain", "dd", "ee" */
  uint8_t secret[16];
  unsigned modes;
  char domain[256]; /* fake-TLS SNI, "" = none */
  mock_proxy *px;
} proxy_arg;

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* n bytes from 2n hex digits; -1 on a non-hex digit. */
static int unhex(const char *h, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(h[2 * i]), lo = hi < 0 ? -1 : hexval(h[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

/* "SECRET[:MODES]" -> *pa. 0 or -1. */
static int parse_proxy(const char *v, proxy_arg *pa) {
  memset(pa, 0, sizeof *pa);
  size_t n = strcspn(v, ":");
  const char *h = v;
  if (n == 32) {
    pa->kind = "plain";
    pa->modes = MOCK_PROXY_MODE_CLASSIC;
  } else if (n == 34 && (h[0] == 'd' || h[0] == 'D') && (h[1] == 'd' || h[1] == 'D')) {
    pa->kind = "dd";
    pa->modes = MOCK_PROXY_MODE_SECURE;
    h += 2;
  } else if (n > 34 && n % 2 == 0 && (n - 34) / 2 < sizeof pa->domain &&
             (h[0] == 'e' || h[0] == 'E') && (h[1] == 'e' || h[1] == 'E')) {
    pa->kind = "ee";
    pa->modes = MOCK_PROXY_MODE_TLS;
    if (unhex(h + 34, (uint8_t *)pa->domain, (n - 34) / 2) != 0) return -1;
    if (strlen(pa->domain) != (n - 34) / 2) return -1; /* a NUL inside the domain */
    h += 2;
  } else {
    return -1;
  }
  if (unhex(h, pa->secret, 16) != 0) return -1;
  if (v[n] == ':') {
    char modes[64];
    if (strlen(v + n + 1) >= sizeof modes) return -1;
    strcpy(modes, v + n + 1);
    pa->modes = 0;
    for (char *save = NULL, *t = strtok_r(modes, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      if (strcmp(t, "classic") == 0) pa->modes |= MOCK_PROXY_MODE_CLASSIC;
      else if (strcmp(t, "secure") == 0) pa->modes |= MOCK_PROXY_MODE_SECURE;
      else if (strcmp(t, "tls") == 0) pa->modes |= MOCK_PROXY_MODE_TLS;
      else if (strcmp(t, "all") == 0) pa->modes |= MOCK_PROXY_MODE_ALL;
      else return -1;
    }
    if (!pa->modes) return -1;
  }
  return 0;
}

/* Builds the proxies on their own loop (started by the caller). 0 or -1. */
static int start_proxies(mock_dc_cluster *c, mock_loop *pl, proxy_arg *pa, int n) {
  mock_proxy_dc dcs[MOCK_DC_MAX_DCS];
  size_t n_dcs = 0;
  for (int i = 1; i <= mock_dc_cluster_count(c) && n_dcs < MOCK_DC_MAX_DCS; i++)
    dcs[n_dcs++] = (mock_proxy_dc){i, mock_dc_port(c, i)};
  for (int k = 0; k < n; k++) {
    mock_proxy_config pc;
    memset(&pc, 0, sizeof pc);
    memcpy(pc.secret, pa[k].secret, 16);
    pc.modes = pa[k].modes;
    pc.tls_domain = pa[k].domain;
    pc.dcs = dcs;
    pc.n_dcs = n_dcs;
    if (mock_proxy_new(pl, &pc, &pa[k].px) != 0) return -1;
  }
  return 0;
}

static void modes_text(unsigned m, char *out, size_t cap) {
  snprintf(out, cap, "%s%s%s%s%s", m & MOCK_PROXY_MODE_CLASSIC ? "classic" : "",
           (m & MOCK_PROXY_MODE_CLASSIC) && (m & 6u) ? "," : "",
           m & MOCK_PROXY_MODE_SECURE ? "secure" : "",
           (m & MOCK_PROXY_MODE_SECURE) && (m & MOCK_PROXY_MODE_TLS) ? "," : "",
           m & MOCK_PROXY_MODE_TLS ? "tls" : "");
}

/* The ports JSON, with "proxies" added when there are any. */
static void print_ports(mock_dc_cluster *c, const proxy_arg *pa, int n) {
  char *js = mock_dc_ports_json(c);
  size_t len = js ? strlen(js) : 0;
  if (!len) return;
  if (n && js[len - 1] == '}') {
    js[len - 1] = 0;
    printf("%s,\"proxies\":[", js);
    for (int k = 0; k < n; k++) {
      char modes[32];
      modes_text(pa[k].modes, modes, sizeof modes);
      printf("%s{\"port\":%u,\"kind\":\"%s\",\"modes\":\"%s\"}", k ? "," : "",
             (unsigned)mock_proxy_port(pa[k].px), pa[k].kind, modes);
    }
    printf("]}\n");
  } else {
    printf("%s\n", js);
  }
  fflush(stdout);
  free(js);
}

static void print_proxy_stats(mock_loop *pl, const proxy_arg *pa, int n) {
  printf("{\"proxies\":[");
  for (int k = 0; k < n; k++) {
    mock_proxy_stats st;
    char buf[4096];
    mock_loop_lock(pl);
    mock_proxy_stats_get(pa[k].px, &st);
    mock_loop_unlock(pl);
    if (mock_proxy_stats_json(&st, buf, sizeof buf) < 0) snprintf(buf, sizeof buf, "{}");
    printf("%s{\"port\":%u,\"stats\":%s}", k ? "," : "", (unsigned)mock_proxy_port(pa[k].px), buf);
  }
  printf("]}\n");
  fflush(stdout);
}

static proxy_arg g_proxies[MAX_PROXIES];
static int g_n_proxies;
static mock_loop *g_proxy_loop;

static void usage(FILE *f) {
  fprintf(f,
          "usage: mtconn-mockdc [options]\n"
          "  --dcs N                 number of DCs (1..%d, default 5)\n"
          "  --base-port P           DC i listens on P+i-1 (default 0: ephemeral ports)\n"
          "  --alt-ports             each DC also listens on an alternative port (P+100+i-1\n"
          "                          with --base-port), listed second in help.getConfig\n"
          "  --home-dc N             DC where phone numbers live (default 5)\n"
          "  --files-dc N            DC that stores the mock documents (default 1)\n"
          "  --nearest-dc N          help.getNearestDc's nearest_dc (default: the asked DC)\n"
          "  --fault DC:SPEC         faults of DC (0 = all), SPEC = name=value[,...]:\n"
          "                          close_after_frames, transport_404_once, flood_connects,\n"
          "                          flood_window_ms, wrong_salt, clock_offset, delay_ms,\n"
          "                          drop_every, drop_method, lose_method, stall, refuse_seed,\n"
          "                          transport_444_once, config_extra_first,\n"
          "                          config_extra_count, config_extra_port\n"
          "  --json-ports            print {\"dcs\":[{\"id\":1,\"port\":P},...]} on stdout\n"
          "  --print-public-keys DIR write DIR/dcN.pub.pem (PKCS#1 RSA PUBLIC KEY) per DC\n"
          "  --counters-file F       write the counters JSON to F at exit and on SIGUSR1\n"
          "  --seconds S             exit after S seconds (default: until SIGTERM/SIGINT,\n"
          "                          'quit' or EOF on a piped/terminal stdin)\n"
          "  --no-stdin              ignore stdin\n"
          "  --verbose               log events to stderr\n"
          "  --proxy SECRET[:MODES]  also run a mock MTProxy in front of the DCs (repeatable,\n"
          "                          up to %d): SECRET = 32 hex (plain), dd+32 hex (secure)\n"
          "                          or ee+32 hex+hex(domain) (fake-TLS); MODES = comma list\n"
          "                          of classic,secure,tls or all (default: the secret's kind)\n"
          "Login: phone " MOCK_DC_DEFAULT_PHONE " (any phone), code " MOCK_DC_LOGIN_CODE
          ". Files: inputDocumentFileLocation, any id > 0, 1 MiB.\n",
          MOCK_DC_MAX_DCS, MAX_PROXIES);
}

static void log_line(void *ud, const char *line) {
  (void)ud;
  fprintf(stderr, "mockdc: %s\n", line);
}

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || *end || errno || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Write text to path atomically (temp file + rename). */
static int write_file(const char *path, const char *text) {
  size_t n = strlen(path) + 16;
  char *tmp = malloc(n);
  if (!tmp) return -1;
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int rc = -1;
  if (f) {
    rc = fputs(text, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
    if (fclose(f) != 0) rc = -1;
    if (!rc && rename(tmp, path) != 0) rc = -1;
    if (rc) remove(tmp);
  }
  free(tmp);
  return rc;
}

static void write_counters(mock_dc_cluster *c, const char *path) {
  if (!path) return;
  char *js = mock_dc_counters_json(c);
  if (!js || write_file(path, js) != 0) fprintf(stderr, "mockdc: cannot write %s\n", path);
  free(js);
}

static int set_faults_spec(mock_dc_cluster *c, int dc, const char *spec) {
  int n = mock_dc_cluster_count(c);
  for (int i = 1; i <= n; i++) {
    if (dc && i != dc) continue;
    mock_dc_faults f;
    memset(&f, 0, sizeof f);
    if (strcmp(spec, "-") != 0 && mock_dc_faults_parse(spec, &f) != 0) return -1;
    if (mock_dc_set_faults(c, i, &f) != 0) return -1;
  }
  return 0;
}

/* One stdin command; returns 1 to quit. */
static int command(mock_dc_cluster *c, char *line) {
  line[strcspn(line, "\r\n")] = 0;
  if (strcmp(line, "quit") == 0) return 1;
  if (strcmp(line, "counters") == 0) {
    char *js = mock_dc_counters_json(c);
    if (js) printf("%s\n", js);
    fflush(stdout);
    free(js);
    return 0;
  }
  if (strcmp(line, "ports") == 0) {
    print_ports(c, g_proxies, g_n_proxies);
    return 0;
  }
  if (strcmp(line, "proxies") == 0) {
    if (g_proxy_loop) print_proxy_stats(g_proxy_loop, g_proxies, g_n_proxies);
    else printf("{\"proxies\":[]}\n");
    fflush(stdout);
    return 0;
  }
  long dc = 0;
  char dcs[16], spec[480];
  if (sscanf(line, "fault %15s %479s", dcs, spec) == 2 &&
      parse_int(dcs, 0, mock_dc_cluster_count(c), &dc) == 0) {
    if (set_faults_spec(c, (int)dc, spec) != 0) fprintf(stderr, "mockdc: bad fault: %s\n", line);
    return 0;
  }
  if (line[0]) fprintf(stderr, "mockdc: unknown command: %s\n", line);
  return 0;
}

int main(int argc, char **argv) {
  mock_dc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  int json_ports = 0, no_stdin = 0;
  long seconds = -1;
  const char *counters_file = NULL, *keys_dir = NULL;
  struct {
    int dc;
    const char *spec;
  } faults[64];
  int n_faults = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long x;
#define NEED_ARG                                                                                   \
  do {                                                                                             \
    if (!v) {                                                                                      \
      fprintf(stderr, "mockdc: %s needs a value\n", a);                                           \
      return 2;                                                                                    \
    }                                                                                              \
    i++;                                                                                           \
  } while (0)
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--dcs") == 0) {
      NEED_ARG;
      if (parse_int(v, 1, MOCK_DC_MAX_DCS, &x)) goto bad;
      cfg.n_dcs = (int)x;
    } else if (strcmp(a, "--base-port") == 0) {
      NEED_ARG;
      if (parse_int(v, 0, 65000, &x)) goto bad;
      cfg.base_port = (uint16_t)x;
    } else if (strcmp(a, "--alt-ports") == 0) {
      cfg.alt_ports = 1;
    } else if (strcmp(a, "--home-dc") == 0) {
      NEED_ARG;
      if (parse_int(v, 1, MOCK_DC_MAX_DCS, &x)) goto bad;
      cfg.home_dc = (int)x;
    } else if (strcmp(a, "--files-dc") == 0) {
      NEED_ARG;
      if (parse_int(v, 1, MOCK_DC_MAX_DCS, &x)) goto bad;
      cfg.files_dc = (int)x;
    } else if (strcmp(a, "--nearest-dc") == 0) {
      NEED_ARG;
      if (parse_int(v, 1, MOCK_DC_MAX_DCS, &x)) goto bad;
      cfg.nearest_dc = (int)x;
    } else if (strcmp(a, "--fault") == 0) {
      NEED_ARG;
      const char *colon = strchr(v, ':');
      char num[8];
      if (!colon || colon - v >= (long)sizeof num || n_faults == 64) goto bad;
      memcpy(num, v, (size_t)(colon - v));
      num[colon - v] = 0;
      if (parse_int(num, 0, MOCK_DC_MAX_DCS, &x)) goto bad;
      faults[n_faults].dc = (int)x;
      faults[n_faults].spec = colon + 1;
      n_faults++;
    } else if (strcmp(a, "--json-ports") == 0) {
      json_ports = 1;
    } else if (strcmp(a, "--print-public-keys") == 0) {
      NEED_ARG;
      keys_dir = v;
    } else if (strcmp(a, "--counters-file") == 0) {
      NEED_ARG;
      counters_file = v;
    } else if (strcmp(a, "--seconds") == 0) {
      NEED_ARG;
      if (parse_int(v, 0, 86400 * 365, &x)) goto bad;
      seconds = x;
    } else if (strcmp(a, "--no-stdin") == 0) {
      no_stdin = 1;
    } else if (strcmp(a, "--verbose") == 0) {
      cfg.log = log_line;
    } else if (strcmp(a, "--proxy") == 0) {
      NEED_ARG;
      if (g_n_proxies == MAX_PROXIES || parse_proxy(v, &g_proxies[g_n_proxies]) != 0) {
        fprintf(stderr, "mockdc: bad --proxy secret (value not shown) or more than %d\n",
                MAX_PROXIES);
        return 2;
      }
      g_n_proxies++;
    } else {
      fprintf(stderr, "mockdc: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
    continue;
  bad:
    fprintf(stderr, "mockdc: bad value for %s: %s\n", a, v ? v : "");
    return 2;
#undef NEED_ARG
  }
  /* Faults given at start: parsed into the config (0 = every DC). */
  for (int k = 0; k < n_faults; k++) {
    for (int i = 0; i < MOCK_DC_MAX_DCS; i++) {
      if (faults[k].dc && faults[k].dc != i + 1) continue;
      if (mock_dc_faults_parse(faults[k].spec, &cfg.faults[i]) != 0) {
        fprintf(stderr, "mockdc: bad fault spec: %s\n", faults[k].spec);
        return 2;
      }
    }
  }

  mock_dc_cluster *c = NULL;
  int rc = mock_dc_cluster_new(&c, &cfg);
  if (rc) {
    fprintf(stderr, "mockdc: cannot create the cluster: %s\n", mtc_strerror(rc));
    return 1;
  }
  if (keys_dir) {
    for (int i = 1; i <= mock_dc_cluster_count(c); i++) {
      char pem[2048], path[4096];
      size_t pl = 0;
      snprintf(path, sizeof path, "%s/dc%d.pub.pem", keys_dir, i);
      if (mock_dc_public_pem(c, i, pem, sizeof pem, &pl) != 0 || write_file(path, pem) != 0) {
        fprintf(stderr, "mockdc: cannot write %s\n", path);
        mock_dc_cluster_free(c);
        return 1;
      }
    }
  }
  rc = mock_dc_cluster_start(c);
  if (rc) {
    fprintf(stderr, "mockdc: cannot listen: %s\n", rc < 0 && rc > -200 ? strerror(-rc) : "error");
    mock_dc_cluster_free(c);
    return 1;
  }
  if (g_n_proxies) {
    if (mock_loop_new(&g_proxy_loop) != 0 ||
        start_proxies(c, g_proxy_loop, g_proxies, g_n_proxies) != 0 ||
        mock_loop_start_thread(g_proxy_loop) != 0) {
      fprintf(stderr, "mockdc: cannot start the proxies\n");
      rc = 1;
      goto done;
    }
  }
  if (json_ports) print_ports(c, g_proxies, g_n_proxies);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* stdin is watched when it is a pipe, a socket (Node's child_process
   * pipes are socketpairs) or a terminal (not /dev/null). */
  struct stat st;
  int watch_stdin = !no_stdin && fstat(0, &st) == 0 &&
                    (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(0));
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char line[512];
  size_t have = 0;
  while (!g_term) {
    if (g_usr1) {
      g_usr1 = 0;
      write_counters(c, counters_file);
    }
    if (seconds >= 0) {
      struct timespec t;
      clock_gettime(CLOCK_MONOTONIC, &t);
      if (t.tv_sec - t0.tv_sec >= seconds) break;
    }
    struct pollfd p = {0, POLLIN, 0};
    int pr = poll(&p, watch_stdin ? 1 : 0, 100);
    if (pr <= 0 || !(p.revents & (POLLIN | POLLHUP))) continue;
    ssize_t n = read(0, line + have, sizeof line - 1 - have);
    if (n <= 0) break; /* EOF (or error): end */
    have += (size_t)n;
    line[have] = 0;
    char *nl;
    int quit = 0;
    while (!quit && (nl = strchr(line, '\n')) != NULL) {
      *nl = 0;
      quit = command(c, line);
      size_t used = (size_t)(nl - line) + 1;
      memmove(line, line + used, have - used + 1);
      have -= used;
    }
    if (quit) break;
    if (have == sizeof line - 1) have = 0; /* an overlong line is dropped */
  }
  write_counters(c, counters_file);
done:
  /* Proxies first: their loop thread stops before they are freed. */
  if (g_proxy_loop) mock_loop_stop_thread(g_proxy_loop);
  for (int k = 0; k < g_n_proxies; k++) mock_proxy_free(g_proxies[k].px);
  mock_loop_free(g_proxy_loop);
  mtci_zeroize(g_proxies, sizeof g_proxies);
  mock_dc_cluster_free(c);
  return rc;
}
