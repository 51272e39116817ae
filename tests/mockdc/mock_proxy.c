/* mock_proxy: see mock_proxy.h for the checks and why. TEST CODE. */
#include "mock_proxy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "transport/faketls.h"
#include "transport/obfuscated2.h"

#define HIGH_WATER (1u << 20) /* stop reading a side while the other has this much unsent */
#define CHUNK (16u << 10)     /* relay step; a TLS record payload fits */
#define TLS_REPLAY_KEY 16     /* digest[0:16] */
#define OBFS_REPLAY_KEY 48    /* header[8:56] */

/* ---- bounded replay set ------------------------------------------------------
 * Fixed-size keys kept in a ring (oldest evicted first, like mtprotoproxy's
 * OrderedDict.popitem(last=False)) and indexed by an open-addressing table
 * of ring positions + 1 (0 = empty slot), linear probing. */
typedef struct replay_set {
  size_t klen, cap, count, oldest;
  uint8_t *keys;
  uint32_t *table;
  size_t mask;
} replay_set;

static size_t rs_hash(const replay_set *r, const uint8_t *k) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (size_t i = 0; i < r->klen; i++) h = (h ^ k[i]) * 0x100000001b3ull;
  return (size_t)(h ^ (h >> 29)) & r->mask;
}

static int rs_init(replay_set *r, size_t klen, size_t cap) {
  memset(r, 0, sizeof *r);
  size_t slots = 2;
  while (slots < 2 * cap) slots *= 2;
  r->klen = klen;
  r->cap = cap;
  r->mask = slots - 1;
  r->keys = calloc(cap, klen);
  r->table = calloc(slots, sizeof *r->table);
  return r->keys && r->table ? 0 : -1;
}

static void rs_free(replay_set *r) {
  if (r->keys) mtci_zeroize(r->keys, r->cap * r->klen);
  free(r->keys);
  free(r->table);
  memset(r, 0, sizeof *r);
}

/* Table slot holding key k, or the empty slot where it would go. */
static size_t rs_find(const replay_set *r, const uint8_t *k) {
  size_t i = rs_hash(r, k);
  for (size_t n = 0; n <= r->mask && r->table[i]; n++, i = (i + 1) & r->mask)
    if (memcmp(r->keys + (r->table[i] - 1) * r->klen, k, r->klen) == 0) return i;
  return i;
}

static int rs_has(const replay_set *r, const uint8_t *k) { return r->table[rs_find(r, k)] != 0; }

/* Backward-shift deletion keeps every probe chain unbroken. */
static void rs_delete_slot(replay_set *r, size_t i) {
  size_t j = i;
  for (;;) {
    j = (j + 1) & r->mask;
    if (!r->table[j]) break;
    size_t home = rs_hash(r, r->keys + (r->table[j] - 1) * r->klen);
    /* move j back to i unless its home lies cyclically in (i, j] */
    int keep = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (keep) continue;
    r->table[i] = r->table[j];
    i = j;
  }
  r->table[i] = 0;
}

static void rs_add(replay_set *r, const uint8_t *k) {
  if (rs_has(r, k)) return;
  if (r->count == r->cap) {
    size_t s = rs_find(r, r->keys + r->oldest * r->klen);
    if (r->table[s]) rs_delete_slot(r, s);
    r->oldest = (r->oldest + 1) % r->cap;
    r->count--;
  }
  size_t pos = (r->oldest + r->count) % r->cap;
  memcpy(r->keys + pos * r->klen, k, r->klen);
  r->table[rs_find(r, k)] = (uint32_t)(pos + 1);
  r->count++;
}

/* ---- proxy state ------------------------------------------------------------ */

enum { ST_FIRST, ST_HEADER, ST_RELAY };

struct session {
  mock_proxy *px;
  struct session *prev, *next;
  mock_conn *cli, *up;
  int state;
  int tls;
  int settled; /* handshake outcome counted (reject or success) */
  uint64_t timer;
  mtci_tls_reader rd;
  mtci_tls_writer wr;
  uint8_t hdr[MTCI_OBFS_HEADER_LEN];
  size_t hdr_len;
  mtci_obfs cobfs; /* client side (server role) */
  mtci_obfs uobfs; /* DC side (client role) */
};

struct mock_proxy {
  mock_loop *loop;
  int listener;
  uint16_t port;
  uint8_t secret[16];
  unsigned modes;
  char domain[MTCI_TLS_MAX_DOMAIN + 1];
  size_t domain_len;
  mock_proxy_dc dcs[MOCK_PROXY_MAX_DCS];
  size_t n_dcs;
  int64_t clock_offset;
  int ignore_time_skew;
  size_t cert_len;
  uint32_t hs_timeout_ms;
  mtc_random_fn rnd;
  void *rnd_ud;
  mtci_drbg *drbg;
  replay_set tls_seen, obfs_seen;
  struct session *sessions;
  mock_proxy_stats st;
  uint8_t scratch[CHUNK];
};

static const char *const reject_names[MOCK_PROXY_REJ_COUNT] = {
    "mode",        "tls_malformed", "tls_digest", "tls_time",     "tls_sni",
    "tls_replay",  "tls_record",    "obfs_tag",   "obfs_tag_not_allowed",
    "obfs_replay", "unknown_dc",    "timeout",    "incomplete"};

const char *mock_proxy_reject_name(int reason) {
  return reason >= 0 && reason < MOCK_PROXY_REJ_COUNT ? reject_names[reason] : "?";
}

static void session_free(struct session *s) {
  mock_proxy *px = s->px;
  if (s->timer) mock_loop_cancel_timer(px->loop, s->timer);
  if (s->prev) s->prev->next = s->next;
  else px->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  mtci_obfs_free(&s->cobfs);
  mtci_obfs_free(&s->uobfs);
  mtci_zeroize(s, sizeof *s);
  free(s);
}

/* Close the client having sent nothing (or only the ServerHello). */
static void reject(struct session *s, int reason) {
  mock_proxy *px = s->px;
  px->st.rejects[reason]++;
  s->settled = 1;
  if (s->cli) {
    px->st.rejected_bytes_sent += mock_conn_bytes_out(s->cli);
    mock_conn_close(s->cli);
  }
}

static int64_t proxy_now(const mock_proxy *px) { return (int64_t)time(NULL) + px->clock_offset; }

/* ---- relay -------------------------------------------------------------------- */

static void up_on_connect(mock_conn *c, void *ud);
static void up_on_data(mock_conn *c, void *ud);
static void up_on_drain(mock_conn *c, void *ud);
static void up_on_close(mock_conn *c, void *ud, int reason);
static const mock_conn_handler up_handler = {.on_connect = up_on_connect,
                                             .on_data = up_on_data,
                                             .on_drain = up_on_drain,
                                             .on_close = up_on_close};

/* Client plaintext stream -> DC. */
static void relay_to_dc(struct session *s, const uint8_t *p, size_t n) {
  if (!s->up) return; /* DC gone: the client is being closed */
  uint8_t *out = mock_conn_send_reserve(s->up, n);
  if (!out) return;
  mtci_obfs_decrypt(&s->cobfs, p, out, n);
  mtci_obfs_encrypt(&s->uobfs, out, out, n);
  s->px->st.bytes_client_to_dc += n;
}

/* Steps 8..13 of mock_proxy.h on a complete header. 0, or -1 if rejected. */
static int accept_header(struct session *s) {
  mock_proxy *px = s->px;
  if (rs_has(&px->obfs_seen, s->hdr + 8)) {
    reject(s, MOCK_PROXY_REJ_OBFS_REPLAY);
    return -1;
  }
  uint32_t tag = 0;
  int16_t dc_id = 0;
  if (mtci_obfs_server_init(&s->cobfs, s->hdr, px->secret, MTCI_OBFS_ALLOW_ALL, &tag, &dc_id) < 0) {
    reject(s, MOCK_PROXY_REJ_OBFS_TAG);
    return -1;
  }
  int ok;
  if (s->tls) ok = tag == MTCI_OBFS_TAG_PADDED && (px->modes & MOCK_PROXY_MODE_TLS);
  else if (tag == MTCI_OBFS_TAG_PADDED) ok = (px->modes & MOCK_PROXY_MODE_SECURE) != 0;
  else ok = (px->modes & MOCK_PROXY_MODE_CLASSIC) != 0;
  if (!ok) {
    mtci_obfs_free(&s->cobfs);
    reject(s, MOCK_PROXY_REJ_OBFS_TAG_NOT_ALLOWED);
    return -1;
  }
  rs_add(&px->obfs_seen, s->hdr + 8);
  px->st.handshakes_ok++;

  int dc = dc_id < 0 ? -(int)dc_id : dc_id;
  size_t i = 0;
  while (i < px->n_dcs && px->dcs[i].dc != dc) i++;
  if (dc == 0 || i == px->n_dcs) {
    reject(s, MOCK_PROXY_REJ_UNKNOWN_DC);
    return -1;
  }
  if (s->timer) mock_loop_cancel_timer(px->loop, s->timer);
  s->timer = 0;

  uint8_t uh[MTCI_OBFS_HEADER_LEN];
  s->settled = 1; /* from here on a failure is the DC's, not the client's */
  if (mtci_obfs_client_init(&s->uobfs, tag, dc_id, NULL, 0, px->rnd, px->rnd_ud, uh) < 0) {
    px->st.upstream_failures++;
    mock_conn_close(s->cli);
    return -1;
  }
  s->up = mock_loop_connect(px->loop, px->dcs[i].port, &up_handler, s);
  if (!s->up) {
    px->st.upstream_failures++;
    mock_conn_close(s->cli);
    return -1;
  }
  px->st.upstream_connects[i]++;
  mock_conn_send(s->up, uh, sizeof uh); /* queued until connected */
  s->state = ST_RELAY;
  return 0;
}

/* The client's obfuscated2 stream (already out of TLS records). 0 or -1. */
static int client_stream(struct session *s, const uint8_t *p, size_t n) {
  if (s->state == ST_HEADER) {
    size_t k = MTCI_OBFS_HEADER_LEN - s->hdr_len;
    if (k > n) k = n;
    memcpy(s->hdr + s->hdr_len, p, k);
    s->hdr_len += k;
    p += k;
    n -= k;
    if (s->hdr_len < MTCI_OBFS_HEADER_LEN) return 0;
    if (accept_header(s) < 0) return -1;
  }
  if (n) relay_to_dc(s, p, n);
  return 0;
}

/* Steps 1..6 on a complete ClientHello record. 0 or -1 if rejected. */
static int accept_hello(struct session *s, const uint8_t *rec, size_t n) {
  mock_proxy *px = s->px;
  if (!(px->modes & MOCK_PROXY_MODE_TLS)) {
    reject(s, MOCK_PROXY_REJ_MODE);
    return -1;
  }
  const uint8_t *client_random = rec + MTCI_TLS_RANDOM_OFFSET;
  if (rs_has(&px->tls_seen, client_random)) {
    reject(s, MOCK_PROXY_REJ_TLS_REPLAY);
    return -1;
  }
  int rc = mtci_tls_server_check_hello(rec, n, px->secret,
                                       px->domain_len ? (const uint8_t *)px->domain : NULL,
                                       px->domain_len, proxy_now(px),
                                       px->ignore_time_skew ? MTCI_TLS_IGNORE_TIME_SKEW : 0, NULL);
  if (rc < 0) {
    int why = rc == MTC_ERR_TLS_BAD_DIGEST  ? MOCK_PROXY_REJ_TLS_DIGEST
              : rc == MTC_ERR_TLS_TIME_SKEW ? MOCK_PROXY_REJ_TLS_TIME
              : rc == MTC_ERR_TLS_BAD_SNI   ? MOCK_PROXY_REJ_TLS_SNI
                                            : MOCK_PROXY_REJ_TLS_MALFORMED;
    reject(s, why);
    return -1;
  }
  size_t cert_len = px->cert_len;
  if (!cert_len) {
    uint8_t r2[2];
    if (px->rnd(px->rnd_ud, r2, 2) < 0) r2[0] = r2[1] = 0;
    cert_len = 1024 + (((size_t)r2[0] << 8 | r2[1]) % 3072); /* 1024..4095 */
  }
  size_t cap = 5 + 4 + 2 + 32 + 1 + 255 + 3 + 2 + 46 + 6 + 5 + cert_len;
  uint8_t *resp = malloc(cap);
  size_t len = 0;
  if (!resp || mtci_tls_server_hello(px->secret, rec, n, cert_len, px->rnd, px->rnd_ud, resp, cap,
                                     &len) < 0) {
    free(resp);
    reject(s, MOCK_PROXY_REJ_TLS_MALFORMED);
    return -1;
  }
  rs_add(&px->tls_seen, client_random);
  mock_conn_send(s->cli, resp, len);
  free(resp);
  px->st.tls_hellos_ok++;
  s->tls = 1;
  mtci_tls_reader_init(&s->rd);
  mtci_tls_writer_init(&s->wr, 1);
  return 0;
}

static void cli_on_data(mock_conn *c, void *ud) {
  struct session *s = ud;
  mock_proxy *px = s->px;
  size_t len;
  const uint8_t *p = mock_conn_data(c, &len);
  if (s->state == ST_FIRST) {
    int size = mtci_tls_client_hello_size(p, len);
    if (size == 0) return; /* 16 03 01 so far: need the length */
    if (size > 0) {
      if (len < (size_t)size) return;
      if (accept_hello(s, p, (size_t)size) < 0) return;
      mock_conn_consume(c, (size_t)size);
      p = mock_conn_data(c, &len);
    } else if (!(px->modes & (MOCK_PROXY_MODE_CLASSIC | MOCK_PROXY_MODE_SECURE))) {
      reject(s, MOCK_PROXY_REJ_MODE);
      return;
    }
    s->state = ST_HEADER;
  }
  while (len > 0) {
    if (s->up && mock_conn_pending(s->up) > HIGH_WATER) {
      mock_conn_pause(c, 1); /* up_on_drain resumes */
      return;
    }
    size_t n = len < CHUNK ? len : CHUNK;
    int rc = 0;
    if (s->tls) {
      size_t plain = 0;
      if (mtci_tls_reader_feed(&s->rd, p, n, px->scratch, &plain) < 0) {
        if (s->state != ST_RELAY) reject(s, MOCK_PROXY_REJ_TLS_RECORD);
        else mock_conn_close(c);
        return;
      }
      mock_conn_consume(c, n);
      rc = client_stream(s, px->scratch, plain);
    } else {
      /* the relay reads p before the consume below touches the buffer */
      rc = client_stream(s, p, n);
      mock_conn_consume(c, n);
    }
    if (rc < 0) return;
    p = mock_conn_data(c, &len);
  }
}

static void cli_on_drain(mock_conn *c, void *ud) {
  struct session *s = ud;
  (void)c;
  if (s->up) mock_conn_pause(s->up, 0);
}

static void cli_on_close(mock_conn *c, void *ud, int reason) {
  struct session *s = ud;
  (void)c;
  (void)reason;
  s->cli = NULL;
  s->px->st.active--;
  if (s->state != ST_RELAY && !s->settled) s->px->st.rejects[MOCK_PROXY_REJ_INCOMPLETE]++;
  if (s->up) mock_conn_close_after_flush(s->up);
  else session_free(s);
}

static const mock_conn_handler cli_handler = {
    .on_data = cli_on_data, .on_drain = cli_on_drain, .on_close = cli_on_close};

static void up_on_connect(mock_conn *c, void *ud) {
  (void)c;
  (void)ud;
}

/* DC -> client: decrypt, re-encrypt, frame for fake-TLS clients. */
static void up_on_data(mock_conn *c, void *ud) {
  struct session *s = ud;
  mock_proxy *px = s->px;
  size_t len;
  const uint8_t *p = mock_conn_data(c, &len);
  while (len > 0) {
    if (!s->cli) {
      mock_conn_consume(c, len); /* client gone: drop */
      return;
    }
    if (mock_conn_pending(s->cli) > HIGH_WATER) {
      mock_conn_pause(c, 1); /* cli_on_drain resumes */
      return;
    }
    size_t n = len < CHUNK ? len : CHUNK;
    if (s->tls) {
      mtci_obfs_decrypt(&s->uobfs, p, px->scratch, n);
      mtci_obfs_encrypt(&s->cobfs, px->scratch, px->scratch, n);
      size_t need = mtci_tls_writer_size(&s->wr, n), got = 0;
      uint8_t *out = mock_conn_send_reserve(s->cli, need);
      if (!out || mtci_tls_writer_emit(&s->wr, px->scratch, n, out, need, &got) < 0) return;
    } else {
      uint8_t *out = mock_conn_send_reserve(s->cli, n);
      if (!out) return;
      mtci_obfs_decrypt(&s->uobfs, p, out, n);
      mtci_obfs_encrypt(&s->cobfs, out, out, n);
    }
    px->st.bytes_dc_to_client += n;
    mock_conn_consume(c, n);
    p = mock_conn_data(c, &len);
  }
}

static void up_on_drain(mock_conn *c, void *ud) {
  struct session *s = ud;
  (void)c;
  if (s->cli) mock_conn_pause(s->cli, 0);
}

static void up_on_close(mock_conn *c, void *ud, int reason) {
  struct session *s = ud;
  (void)c;
  s->up = NULL;
  if (reason == MOCK_CLOSE_CONNECT_FAILED) s->px->st.upstream_failures++;
  if (s->cli) mock_conn_close_after_flush(s->cli);
  else session_free(s);
}

static void on_handshake_timeout(mock_loop *l, void *ud) {
  struct session *s = ud;
  (void)l;
  s->timer = 0;
  if (s->state != ST_RELAY && s->cli && !s->settled) reject(s, MOCK_PROXY_REJ_TIMEOUT);
}

static void on_accept(mock_loop *l, mock_conn *c, void *ud) {
  mock_proxy *px = ud;
  px->st.accepted++;
  struct session *s = calloc(1, sizeof *s);
  if (!s) {
    mock_conn_close(c);
    return;
  }
  px->st.active++;
  s->px = px;
  s->cli = c;
  s->next = px->sessions;
  if (px->sessions) px->sessions->prev = s;
  px->sessions = s;
  s->timer = mock_loop_timer(l, px->hs_timeout_ms, on_handshake_timeout, s);
  mock_conn_set_handler(c, &cli_handler, s);
}

/* ---- API ---------------------------------------------------------------------- */

int mock_proxy_new(mock_loop *l, const mock_proxy_config *cfg, mock_proxy **out) {
  *out = NULL;
  if (!l || !cfg || cfg->n_dcs > MOCK_PROXY_MAX_DCS || (cfg->n_dcs && !cfg->dcs) ||
      cfg->cert_len > MTCI_TLS_MAX_RECORD)
    return MTC_ERR_INVALID_ARG;
  size_t dl = cfg->tls_domain ? strlen(cfg->tls_domain) : 0;
  if (dl > MTCI_TLS_MAX_DOMAIN) return MTC_ERR_INVALID_ARG;
  mock_proxy *px = calloc(1, sizeof *px);
  if (!px) return MTC_ERR_NOMEM;
  px->loop = l;
  memcpy(px->secret, cfg->secret, 16);
  px->modes = cfg->modes ? cfg->modes & MOCK_PROXY_MODE_ALL : MOCK_PROXY_MODE_ALL;
  if (dl) memcpy(px->domain, cfg->tls_domain, dl);
  px->domain_len = dl;
  for (size_t i = 0; i < cfg->n_dcs; i++) {
    px->dcs[i] = cfg->dcs[i];
    px->st.dc_ids[i] = cfg->dcs[i].dc;
  }
  px->n_dcs = px->st.n_dcs = cfg->n_dcs;
  px->clock_offset = cfg->clock_offset;
  px->ignore_time_skew = cfg->ignore_time_skew;
  px->cert_len = cfg->cert_len;
  px->hs_timeout_ms = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 10000;
  px->rnd = cfg->rnd;
  px->rnd_ud = cfg->rnd_ud;
  int rc = 0;
  if (!px->rnd) {
    px->drbg = mtci_drbg_new();
    if (!px->drbg) rc = MTC_ERR_RANDOM;
    px->rnd = mtci_drbg_random;
    px->rnd_ud = px->drbg;
  }
  size_t cap = cfg->replay_cap ? cfg->replay_cap : MOCK_PROXY_REPLAY_DEFAULT;
  if (!rc && (cap > UINT32_MAX / 4 || rs_init(&px->tls_seen, TLS_REPLAY_KEY, cap) < 0 ||
              rs_init(&px->obfs_seen, OBFS_REPLAY_KEY, cap) < 0))
    rc = MTC_ERR_NOMEM;
  if (!rc) {
    int id = mock_loop_listen(l, cfg->port, on_accept, px, &px->port);
    if (id < 0) rc = id;
    else px->listener = id;
  }
  if (rc) {
    mock_proxy_free(px);
    return rc;
  }
  *out = px;
  return 0;
}

uint16_t mock_proxy_port(const mock_proxy *p) { return p->port; }

void mock_proxy_stats_get(const mock_proxy *p, mock_proxy_stats *out) { *out = p->st; }

void mock_proxy_set_clock_offset(mock_proxy *p, int64_t offset) { p->clock_offset = offset; }

void mock_proxy_free(mock_proxy *p) {
  if (!p) return;
  if (p->listener) mock_loop_unlisten(p->loop, p->listener);
  while (p->sessions) {
    struct session *s = p->sessions;
    /* detach first: the loop reports these closes later, to nobody */
    if (s->cli) {
      mock_conn_set_handler(s->cli, NULL, NULL);
      mock_conn_close(s->cli);
    }
    if (s->up) {
      mock_conn_set_handler(s->up, NULL, NULL);
      mock_conn_close(s->up);
    }
    session_free(s);
  }
  rs_free(&p->tls_seen);
  rs_free(&p->obfs_seen);
  mtci_drbg_free(p->drbg);
  mtci_zeroize(p, sizeof *p);
  free(p);
}

/* Bounded appender: pos keeps counting past cap so overflow is detectable. */
struct jw {
  char *buf;
  size_t cap, pos;
};

__attribute__((format(printf, 2, 3))) static void jw_put(struct jw *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t at = w->pos < w->cap ? w->pos : w->cap;
  int n = vsnprintf(w->buf + at, w->cap - at, fmt, ap);
  va_end(ap);
  if (n > 0) w->pos += (size_t)n;
}

int mock_proxy_stats_json(const mock_proxy_stats *s, char *buf, size_t cap) {
  if (!buf || !cap) return -1;
  struct jw w = {buf, cap, 0};
  jw_put(&w, "{\"accepted\":%" PRIu64 ",\"tls_hellos_ok\":%" PRIu64 ",\"handshakes_ok\":%" PRIu64
             ",\"rejects\":{",
         s->accepted, s->tls_hellos_ok, s->handshakes_ok);
  for (int i = 0; i < MOCK_PROXY_REJ_COUNT; i++)
    jw_put(&w, "%s\"%s\":%" PRIu64, i ? "," : "", mock_proxy_reject_name(i), s->rejects[i]);
  jw_put(&w, "},\"rejected_bytes_sent\":%" PRIu64 ",\"bytes_client_to_dc\":%" PRIu64
             ",\"bytes_dc_to_client\":%" PRIu64 ",\"upstream_failures\":%" PRIu64
             ",\"active\":%" PRIu64 ",\"upstream_connects\":{",
         s->rejected_bytes_sent, s->bytes_client_to_dc, s->bytes_dc_to_client,
         s->upstream_failures, s->active);
  for (size_t i = 0; i < s->n_dcs && i < MOCK_PROXY_MAX_DCS; i++)
    jw_put(&w, "%s\"%d\":%" PRIu64, i ? "," : "", s->dc_ids[i], s->upstream_connects[i]);
  jw_put(&w, "}}");
  return w.pos < cap ? (int)w.pos : -1;
}
