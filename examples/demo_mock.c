/*
 * The demo's server side: the mock DC cluster of tests/mockdc in this
 * process (5 DCs on 127.0.0.1, the phone's home DC 5, files on DC 1), and
 * optionally the mock MTProxy in front of it. With --block-seeds every DC's
 * seed port refuses connections while its alternative port works, and two
 * mock DoH servers (tests/mockdc/mock_doh) publish a simple config, signed
 * with a test key, that sends every DC to its alternative port.
 *
 * A restart needs a server that remembers: with --state FILE the mock's key
 * store (every auth key with its salt and authorized user, the cluster's
 * signing secret) and its ports are written to FILE.mockdc when the demo
 * ends and read back when it starts, so a second run meets "the same" DCs at
 * the same addresses. Without a state file the ports are ephemeral and
 * nothing is written.
 *
 * STATE.mockdc (JSON, 0600; test keys only, never real ones):
 *   {"format":"mtconn-demo-mockdc","version":1,"base_port":P,"secret":"hex32",
 *    "dcs":[{"id":1,"keys":[{"key":"hex256","temp":0,"expires_at":0,"bound":"",
 *            "user_id":N,"layer":198,"salt":N}]},...]}
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "crypto/crypto.h"
#include "demo.h"
#include "mock_auth.h"
#include "mock_dc.h"
#include "mock_dc_int.h"
#include "mock_doh.h"
#include "mock_loop.h"
#include "mock_proxy.h"
#include "mock_session.h"

#define N_DCS 5
#define SIDE_FORMAT "mtconn-demo-mockdc"
#define SIDE_MAX (8u << 20)
#define PORT_TRIES 16
#define TLS_DOMAIN "example.com"
#define DOH_KEY 3 /* mock_test_key_pem(3), DC 4's test key, signs the simple config */

struct demo_mock {
  mock_dc_cluster *cl;
  uint16_t base_port;
  char pems[N_DCS][2048];
  const char *pem_ptrs[N_DCS];
  mtc_dc_address seeds[N_DCS];
  mock_loop *ploop;
  mock_proxy *px;
  char link[512];
  char *sidecar;       /* STATE.mockdc, NULL without --state */
  int restored_keys, ports_restored;
  int block;           /* --block-seeds */
  mock_loop *dloop;    /* the mock DoH servers' loop */
  mock_doh *doh[2];    /* Google API, Cloudflare API */
  char doh_url[2][64];
  char doh_key[2048];  /* public PEM of the config's key */
};

static void set_err(char *err, size_t n, const char *fmt, const char *a) {
  if (err && n) snprintf(err, n, fmt, a ? a : "");
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void hex_of(const uint8_t *p, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[p[i] >> 4];
    out[2 * i + 1] = d[p[i] & 15];
  }
  out[2 * n] = 0;
}

static int unhex(const char *s, uint8_t *out, size_t n) {
  if (!s || strlen(s) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    int v = 0;
    for (int j = 0; j < 2; j++) {
      char c = s[2 * i + (size_t)j];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    out[i] = (uint8_t)v;
  }
  return 0;
}

/* ---- STATE.mockdc ------------------------------------------------------------------ */

typedef struct side_key {
  int dc;
  mock_auth_result r;
  int bound;
  uint8_t bound_id[8];
  int64_t user_id;
  int32_t layer;
} side_key;

typedef struct side {
  int present;
  uint16_t base_port;
  uint8_t secret[32];
  side_key *keys;
  size_t n_keys;
} side;

static void side_free(side *s) {
  if (s->keys) mtci_zeroize(s->keys, s->n_keys * sizeof *s->keys);
  free(s->keys);
  mtci_zeroize(s, sizeof *s);
}

/* 0 (s->present says whether the file existed) or -1 with err set. */
static int side_load(const char *path, side *s, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return 0;
    set_err(err, errlen, "cannot read %s", path);
    return -1;
  }
  char *text = malloc(SIDE_MAX + 1);
  size_t n = text ? fread(text, 1, SIDE_MAX + 1, f) : 0;
  fclose(f);
  if (!text || n > SIDE_MAX) {
    free(text);
    set_err(err, errlen, "%s: too large", path);
    return -1;
  }
  text[n] = 0;
  json_t *root = json_loads(text, 0, NULL);
  mtci_zeroize(text, n);
  free(text);
  int ok = root && json_is_object(root);
  const char *fmt = ok ? json_string_value(json_object_get(root, "format")) : NULL;
  ok = ok && fmt && !strcmp(fmt, SIDE_FORMAT) &&
       json_integer_value(json_object_get(root, "version")) == 1;
  json_int_t bp = ok ? json_integer_value(json_object_get(root, "base_port")) : 0;
  ok = ok && bp > 0 && bp + 100 + N_DCS <= 65535;
  ok = ok && unhex(json_string_value(json_object_get(root, "secret")), s->secret, 32) == 0;
  json_t *dcs = ok ? json_object_get(root, "dcs") : NULL;
  ok = ok && json_is_array(dcs);
  size_t total = 0, i;
  json_t *d;
  if (ok) {
    json_array_foreach(dcs, i, d) total += json_array_size(json_object_get(d, "keys"));
  }
  if (ok && total) {
    s->keys = calloc(total, sizeof *s->keys);
    ok = s->keys != NULL;
  }
  if (ok) {
    json_array_foreach(dcs, i, d) {
      json_int_t id = json_integer_value(json_object_get(d, "id"));
      json_t *keys = json_object_get(d, "keys"), *k;
      size_t j;
      if (id < 1 || id > N_DCS || !json_is_array(keys)) {
        ok = 0;
        break;
      }
      json_array_foreach(keys, j, k) {
        side_key *sk = &s->keys[s->n_keys];
        sk->dc = (int)id;
        const char *bound = json_string_value(json_object_get(k, "bound"));
        if (unhex(json_string_value(json_object_get(k, "key")), sk->r.auth_key, MTCI_AUTH_KEY_LEN) ||
            !bound) {
          ok = 0;
          break;
        }
        mtci_auth_key_id(sk->r.auth_key, sk->r.auth_key_id);
        sk->r.temp = json_is_true(json_object_get(k, "temp"));
        sk->r.expires_at = (int64_t)json_integer_value(json_object_get(k, "expires_at"));
        sk->r.server_salt = (int64_t)json_integer_value(json_object_get(k, "salt"));
        sk->bound = bound[0] != 0;
        if (sk->bound && unhex(bound, sk->bound_id, 8)) {
          ok = 0;
          break;
        }
        sk->user_id = (int64_t)json_integer_value(json_object_get(k, "user_id"));
        sk->layer = (int32_t)json_integer_value(json_object_get(k, "layer"));
        s->n_keys++;
      }
      if (!ok) break;
    }
  }
  json_decref(root);
  if (!ok) {
    side_free(s);
    set_err(err, errlen, "%s is not a demo mock state (delete it to start afresh)", path);
    return -1;
  }
  s->base_port = (uint16_t)bp;
  s->present = 1;
  return 0;
}

static json_t *key_json(const mock_key *k) {
  char key[2 * MTCI_AUTH_KEY_LEN + 1], bound[17] = "";
  hex_of(k->key, MTCI_AUTH_KEY_LEN, key);
  if (k->temp && k->bound) hex_of(k->bound_perm_id, 8, bound);
  json_t *o = json_pack("{s:s,s:b,s:I,s:s,s:I,s:i,s:I}", "key", key, "temp", k->temp, "expires_at",
                        (json_int_t)k->expires_at, "bound", bound, "user_id",
                        (json_int_t)k->user_id, "layer", (int)k->layer, "salt",
                        (json_int_t)(k->ms ? mock_session_salt(k->ms) : 0));
  mtci_zeroize(key, sizeof key);
  return o;
}

/* Atomic 0600 write: a temporary file in the same directory, then rename. */
static int write_private(const char *path, const char *text, char *err, size_t errlen) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) return -1;
  snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
  int fd = mkstemp(tmp);
  int ok = fd >= 0;
  if (ok) {
    size_t len = strlen(text), off = 0;
    while (ok && off < len) {
      ssize_t w = write(fd, text + off, len - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) ok = 0;
      else off += (size_t)w;
    }
    ok = ok && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok) ok = rename(tmp, path) == 0;
    if (!ok) unlink(tmp);
  }
  if (!ok) set_err(err, errlen, "cannot write %s", path);
  free(tmp);
  return ok ? 0 : -1;
}

static int side_save(demo_mock *m, char *err, size_t errlen) {
  mock_dc_cluster *cl = m->cl;
  char secret[65];
  hex_of(cl->secret, 32, secret);
  json_t *root = json_pack("{s:s,s:i,s:i,s:s,s:[]}", "format", SIDE_FORMAT, "version", 1,
                           "base_port", (int)m->base_port, "secret", secret, "dcs");
  mtci_zeroize(secret, sizeof secret);
  json_t *dcs = root ? json_object_get(root, "dcs") : NULL;
  int ok = dcs != NULL;
  for (int i = 0; ok && i < cl->n; i++) {
    mock_dc *dc = &cl->dcs[i];
    json_t *keys = json_array();
    ok = keys && json_array_append_new(dcs, json_pack("{s:i,s:o}", "id", dc->id, "keys", keys)) == 0;
    for (size_t k = 0; ok && k < MOCK_DC_MAX_KEYS; k++) {
      const mock_key *key = &dc->keys[k];
      if (!key->used) continue;
      if (key->temp && key->expires_at && mock_dc_now(dc) > (double)key->expires_at) continue;
      ok = json_array_append_new(keys, key_json(key)) == 0;
    }
  }
  char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  if (!text) {
    set_err(err, errlen, "%s: out of memory", m->sidecar);
    return -1;
  }
  int rc = write_private(m->sidecar, text, err, errlen);
  mtci_zeroize(text, strlen(text));
  free(text);
  return rc;
}

/* ---- the cluster ---------------------------------------------------------------------- */

static int build_cluster(demo_mock *m, const side *sd, uint16_t base_port) {
  mock_dc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.n_dcs = N_DCS;
  cfg.home_dc = 5;
  cfg.files_dc = 1;
  cfg.base_port = base_port;
  cfg.alt_ports = m->block;
  for (int i = 0; i < N_DCS; i++) cfg.faults[i].refuse_seed = m->block;
  int rc = mock_dc_cluster_new(&m->cl, &cfg);
  if (rc) return rc;
  if (sd->present) {
    memcpy(m->cl->secret, sd->secret, sizeof m->cl->secret);
    m->restored_keys = 0;
    for (size_t i = 0; i < sd->n_keys; i++) {
      const side_key *sk = &sd->keys[i];
      mock_key *k = mock_dc_store_key(&m->cl->dcs[sk->dc - 1], &sk->r);
      if (!k) {
        mock_dc_cluster_free(m->cl);
        m->cl = NULL;
        return MTC_ERR_NOMEM;
      }
      k->user_id = sk->user_id;
      k->layer = sk->layer;
      k->bound = sk->bound;
      memcpy(k->bound_perm_id, sk->bound_id, 8);
      m->restored_keys++;
    }
  }
  rc = mock_dc_cluster_start(m->cl);
  if (rc) {
    mock_dc_cluster_free(m->cl);
    m->cl = NULL;
  }
  return rc;
}

static int random_base_port(uint16_t *out) {
  mtci_drbg *d = mtci_drbg_new();
  uint8_t b[2];
  int rc = d ? mtci_drbg_random(d, b, 2) : MTC_ERR_RANDOM;
  mtci_drbg_free(d);
  if (rc) return rc;
  /* below Linux's ephemeral range (32768..), so no outgoing socket takes it in between runs */
  *out = (uint16_t)(20000u + (uint32_t)(b[0] << 8 | b[1]) % 12700u);
  return 0;
}

static int start_proxy(demo_mock *m, const demo_opts *o, char *err, size_t errlen) {
  const char *kind = o->proxy;
  mock_proxy_config pc;
  memset(&pc, 0, sizeof pc);
  mtci_drbg *d = mtci_drbg_new();
  int rc = d ? mtci_drbg_random(d, pc.secret, sizeof pc.secret) : MTC_ERR_RANDOM; /* a fresh secret */
  mtci_drbg_free(d);
  if (rc) return rc;
  mock_proxy_dc pdcs[N_DCS];
  for (int i = 0; i < N_DCS; i++) {
    pdcs[i].dc = i + 1;
    pdcs[i].port = mock_dc_port(m->cl, i + 1);
  }
  pc.dcs = pdcs;
  pc.n_dcs = N_DCS;
  char hex[33], secret[160];
  hex_of(pc.secret, 16, hex);
  if (!strcmp(kind, "plain")) {
    /* a 16-byte secret: the classic tags, or dd when the client pads */
    pc.modes = o->transport == MTC_TRANSPORT_PADDED ? MOCK_PROXY_MODE_SECURE : MOCK_PROXY_MODE_CLASSIC;
    snprintf(secret, sizeof secret, "%s", hex);
  } else if (!strcmp(kind, "dd")) {
    pc.modes = MOCK_PROXY_MODE_SECURE;
    snprintf(secret, sizeof secret, "dd%s", hex);
  } else {
    char dom[2 * sizeof TLS_DOMAIN];
    hex_of((const uint8_t *)TLS_DOMAIN, strlen(TLS_DOMAIN), dom);
    pc.modes = MOCK_PROXY_MODE_TLS;
    pc.tls_domain = TLS_DOMAIN;
    snprintf(secret, sizeof secret, "ee%s%s", hex, dom);
  }
  rc = mock_loop_new(&m->ploop);
  if (rc == 0) rc = mock_proxy_new(m->ploop, &pc, &m->px);
  if (rc == 0) rc = mock_loop_start_thread(m->ploop);
  if (rc) {
    set_err(err, errlen, "cannot start the mock MTProxy (%s)", kind);
    return rc < 0 ? rc : MTC_ERR_INTERNAL;
  }
  snprintf(m->link, sizeof m->link, "tg://proxy?server=127.0.0.1&port=%u&secret=%s",
           (unsigned)mock_proxy_port(m->px), secret);
  mtci_zeroize(&pc, sizeof pc);
  mtci_zeroize(hex, sizeof hex);
  mtci_zeroize(secret, sizeof secret);
  return 0;
}

/* --block-seeds: the two DoH servers, each DC's rule pointing at its
 * alternative port (an ipPort: obfuscated TCP, no secret). */
static int start_doh(demo_mock *m, char *err, size_t errlen) {
  mock_sconf_ip ips[N_DCS];
  mock_sconf_rule rules[N_DCS];
  for (int i = 0; i < N_DCS; i++) {
    memset(&ips[i], 0, sizeof ips[i]);
    ips[i].ip[0] = 127;
    ips[i].ip[3] = 1;
    ips[i].port = mock_dc_alt_port(m->cl, i + 1);
    rules[i].phone_prefix_rules = "";
    rules[i].dc_id = i + 1;
    rules[i].ips = &ips[i];
    rules[i].n_ips = 1;
  }
  mock_doh_config dc;
  memset(&dc, 0, sizeof dc);
  dc.key_pem = mock_test_key_pem(DOH_KEY);
  dc.key_pem_len = dc.key_pem ? strlen(dc.key_pem) : 0;
  dc.rules = rules;
  dc.n_rules = N_DCS;
  size_t pl = 0;
  int rc = mock_dc_public_pem(m->cl, DOH_KEY + 1, m->doh_key, sizeof m->doh_key, &pl);
  if (rc == 0) rc = mock_loop_new(&m->dloop);
  for (int k = 0; rc == 0 && k < 2; k++) {
    rc = mock_doh_new(m->dloop, &dc, &m->doh[k]);
    if (rc == 0)
      snprintf(m->doh_url[k], sizeof m->doh_url[k], "http://127.0.0.1:%u",
               (unsigned)mock_doh_port(m->doh[k]));
  }
  if (rc == 0) rc = mock_loop_start_thread(m->dloop);
  if (rc) set_err(err, errlen, "cannot start the mock DoH servers%s", "");
  return rc;
}

const char *demo_mock_doh_url(const demo_mock *m, int cloudflare) {
  return m->doh[cloudflare ? 1 : 0] ? m->doh_url[cloudflare ? 1 : 0] : NULL;
}

const char *demo_mock_doh_key(const demo_mock *m) { return m->doh[0] ? m->doh_key : NULL; }

uint64_t demo_mock_doh_requests(demo_mock *m) {
  uint64_t n = 0;
  if (!m->dloop) return 0;
  mock_loop_lock(m->dloop);
  for (int k = 0; k < 2; k++) {
    mock_doh_stats st;
    if (!m->doh[k]) continue;
    mock_doh_stats_get(m->doh[k], &st);
    n += st.google + st.cloudflare + st.bad_requests;
  }
  mock_loop_unlock(m->dloop);
  return n;
}

int demo_mock_start(demo_mock **out, const demo_opts *o, char *err, size_t errlen) {
  *out = NULL;
  demo_mock *m = calloc(1, sizeof *m);
  if (!m) return MTC_ERR_NOMEM;
  m->block = o->block_seeds;
  side sd;
  memset(&sd, 0, sizeof sd);
  int rc = 0;
  if (o->state) {
    size_t n = strlen(o->state) + sizeof ".mockdc";
    m->sidecar = malloc(n);
    if (!m->sidecar) rc = MTC_ERR_NOMEM;
    else snprintf(m->sidecar, n, "%s.mockdc", o->state);
    if (!rc && side_load(m->sidecar, &sd, err, errlen) != 0) rc = MTC_ERR_INVALID_ARG;
  }
  if (!rc && o->state) {
    /* Fixed ports, so the addresses in the state file stay right: the saved
     * ones, else a random base (retried while busy). */
    rc = -1;
    if (sd.present) {
      rc = build_cluster(m, &sd, sd.base_port);
      if (rc == 0) {
        m->base_port = sd.base_port;
        m->ports_restored = 1;
      }
    }
    for (int t = 0; rc != 0 && t < PORT_TRIES; t++) {
      uint16_t bp = 0;
      if (random_base_port(&bp) != 0) break;
      rc = build_cluster(m, &sd, bp);
      if (rc == 0) m->base_port = bp;
    }
    if (rc) set_err(err, errlen, "cannot start the mock DCs on fixed ports%s", "");
  } else if (!rc) {
    rc = build_cluster(m, &sd, 0);
    if (rc) set_err(err, errlen, "cannot start the mock DCs%s", "");
  }
  side_free(&sd);
  for (int i = 0; !rc && i < N_DCS; i++) {
    size_t pl = 0;
    mtc_dc_address *a = &m->seeds[i];
    a->dc_id = i + 1;
    a->ip = "127.0.0.1";
    a->port = mock_dc_port(m->cl, i + 1);
    rc = mock_dc_public_pem(m->cl, i + 1, m->pems[i], sizeof m->pems[i], &pl);
    m->pem_ptrs[i] = m->pems[i];
  }
  if (!rc && o->proxy) rc = start_proxy(m, o, err, errlen);
  if (!rc && m->block) rc = start_doh(m, err, errlen);
  if (rc) {
    (void)demo_mock_finish(m, NULL, 0);
    return rc < 0 ? rc : MTC_ERR_INTERNAL;
  }
  *out = m;
  return 0;
}

const mtc_dc_address *demo_mock_seeds(const demo_mock *m, size_t *n) {
  *n = N_DCS;
  return m->seeds;
}

const char *const *demo_mock_pems(const demo_mock *m, size_t *n) {
  *n = N_DCS;
  return m->pem_ptrs;
}

const char *demo_mock_link(const demo_mock *m) { return m->px ? m->link : NULL; }
int demo_mock_restored_keys(const demo_mock *m) { return m->restored_keys; }
int demo_mock_ports_restored(const demo_mock *m) { return m->ports_restored; }

int demo_mock_settle(demo_mock *m, int wait_ms) {
  for (int waited = 0;; waited += 5) {
    uint64_t open = 0;
    for (int dc = 1; dc <= N_DCS; dc++) open += mock_dc_conn_count(m->cl, dc);
    if (m->px) {
      mock_proxy_stats ps;
      mock_loop_lock(m->ploop);
      mock_proxy_stats_get(m->px, &ps);
      mock_loop_unlock(m->ploop);
      open += ps.active;
    }
    if (!open) return 0;
    if (waited >= wait_ms) return -1;
    sleep_ms(5);
  }
}

size_t demo_mock_counts(demo_mock *m, demo_mock_dc *out, size_t cap) {
  size_t n = 0;
  mock_dc_counters *c = malloc(sizeof *c);
  if (!c) return 0;
  for (int dc = 1; dc <= N_DCS && n < cap; dc++) {
    if (mock_dc_get_counters(m->cl, dc, c) != 0) continue;
    demo_mock_dc *o = &out[n++];
    o->dc_id = dc;
    o->tcp_accepted = c->tcp_accepted;
    o->handshakes_perm = c->handshakes_perm;
    o->handshakes_temp = c->handshakes_temp;
    /* The session's own requests (salts, pings) are no API calls: the
     * library counts those it was asked for. */
    static const char *const service[] = {"get_future_salts", "ping", "ping_delay_disconnect",
                                          "destroy_session"};
    o->service_rpcs = 0;
    for (size_t i = 0; i < sizeof service / sizeof service[0]; i++)
      o->service_rpcs += mock_dc_counter_name(c->methods, c->n_methods, service[i]);
    o->rpcs = c->rpcs - o->service_rpcs;
    o->bytes_in = c->bytes_in;
    o->bytes_out = c->bytes_out;
  }
  free(c);
  return n;
}

char *demo_mock_counters_json(demo_mock *m) { return mock_dc_counters_json(m->cl); }

char *demo_mock_proxy_json(demo_mock *m) {
  if (!m->px) return NULL;
  mock_proxy_stats ps;
  mock_loop_lock(m->ploop);
  mock_proxy_stats_get(m->px, &ps);
  mock_loop_unlock(m->ploop);
  char *buf = malloc(4096);
  if (buf && mock_proxy_stats_json(&ps, buf, 4096) < 0) {
    free(buf);
    buf = NULL;
  }
  return buf;
}

void demo_mock_proxy_counts(demo_mock *m, uint64_t *accepted, uint64_t *ok, uint64_t *rejects) {
  *accepted = *ok = *rejects = 0;
  if (!m->px) return;
  mock_proxy_stats ps;
  mock_loop_lock(m->ploop);
  mock_proxy_stats_get(m->px, &ps);
  mock_loop_unlock(m->ploop);
  *accepted = ps.accepted;
  *ok = ps.handshakes_ok;
  for (int i = 0; i < MOCK_PROXY_REJ_COUNT; i++) *rejects += ps.rejects[i];
}

int demo_mock_finish(demo_mock *m, char *err, size_t errlen) {
  if (!m) return 0;
  int rc = 0;
  if (m->ploop) mock_loop_stop_thread(m->ploop);
  mock_proxy_free(m->px);
  mock_loop_free(m->ploop);
  if (m->dloop) mock_loop_stop_thread(m->dloop);
  for (int k = 0; k < 2; k++) mock_doh_free(m->doh[k]);
  mock_loop_free(m->dloop);
  if (m->cl) {
    mock_dc_cluster_stop(m->cl); /* the key store is ours to read from now on */
    if (m->sidecar && m->base_port) rc = side_save(m, err, errlen);
    mock_dc_cluster_free(m->cl);
  }
  free(m->sidecar);
  mtci_zeroize(m->link, sizeof m->link);
  free(m);
  return rc;
}
