/*
 * Mock DC cluster over real loopback sockets, driven by OUR client pieces:
 * src/transport/stack.h (framing + obfuscation), src/auth/handshake.h (auth
 * keys), src/session.h (encrypted session, invokeWithLayer/initConnection
 * wrapping). Where a test needs a message the session cannot make (a bind
 * whose inner msg_id must equal the outer one, a precise salt check) a small
 * raw helper below encrypts and decrypts single messages with crypto.h.
 *
 * Results are decoded with the generated layer-198 TL decoder
 * (mtc_tl_parse, from schema/api.tl) so the mock's hand-written encoders
 * are checked against the schema; layer-144 layouts follow Telethon 1.25's
 * types.Config / types.User field order. The file content is recomputed
 * here from its definition (SHA-256 counter stream).
 *
 * Every wait is bounded (OP_MS per operation).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth/bind.h"
#include "auth/handshake.h"
#include "auth/rsa_keyset.h"
#include "bytes.h"
#include "crypto/crypto.h"
#include "mock_dc.h"
#include "mtconn/tl_api.h"
#include "session_impl.h" /* request fields (acked) */
#include "session.h"
#include "test.h"
#include "test_net.h"
#include "tl/special.h"
#include "tl/tl.h"
#include "transport/stack.h"

#define OP_MS 5000
#define PHONE "+15550000005"
#define USER_ID 15550000005ll

/* ---- clocks and randomness ----------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static mtci_drbg *g_drbg;

static void cleanup(void);
static int rnd(void *ud, uint8_t *out, size_t len) {
  (void)ud;
  return mtci_drbg_random(g_drbg, out, len);
}

/* ---- cluster ---------------------------------------------------------------------------- */

static mock_dc_cluster *start_cluster(int alt_ports) {
  if (!g_drbg) {
    g_drbg = mtci_drbg_new();
    atexit(cleanup);
  }
  mock_dc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.n_dcs = 5;
  cfg.alt_ports = alt_ports;
  mock_dc_cluster *c = NULL;
  if (mock_dc_cluster_new(&c, &cfg) != 0) return NULL;
  if (mock_dc_cluster_start(c) != 0) {
    mock_dc_cluster_free(c);
    return NULL;
  }
  return c;
}

/* ---- a test client: socket + stack + handshake + session --------------------------------- */

typedef struct tc {
  mock_dc_cluster *cl;
  int dc;
  int fd;
  mtci_stack st;
  uint8_t rb[1 << 16];
  size_t rpos, rlen;
  uint8_t *pkt; /* last packet (copy) */
  size_t pkt_len, pkt_cap;
  int32_t terr;        /* transport error code received */
  uint32_t qa_token;   /* last quick ack received */
  unsigned quick_acks;
  mtci_auth_result key;
  int64_t hs_last_msg_id;
  mtci_session s;
  int has_sess;
  uint64_t next_token;
  /* last call outcome */
  uint8_t *res;
  size_t res_len, res_cap;
  int32_t err_code;
  char err_msg[256];
  unsigned salt_updates, new_sessions;
  int want_quick_ack;
} tc;

static int tc_flush(tc *t) {
  const uint8_t *p;
  size_t n;
  while ((n = mtci_stack_pending(&t->st, &p)) > 0) {
    ssize_t w = send(t->fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    mtci_stack_consumed(&t->st, (size_t)w);
  }
  return 0;
}


static int test_tcp_connect_op(uint16_t port) { return test_tcp_connect(port, OP_MS); }

static void tc_close(tc *t) {
  if (t->fd >= 0) close(t->fd);
  t->fd = -1;
  mtci_stack_free(&t->st);
  if (t->has_sess) mtci_session_free(&t->s);
  t->has_sess = 0;
  mtci_auth_result_clear(&t->key);
  free(t->pkt);
  free(t->res);
  t->pkt = t->res = NULL;
  t->pkt_cap = t->res_cap = 0;
}

/* Connect to port with a transport; 0 or a negative errno / mtc_error. */
static int tc_open_port(tc *t, mock_dc_cluster *cl, int dc, uint16_t port, mtci_codec_kind kind,
                        int obfuscated) {
  memset(t, 0, sizeof *t);
  t->fd = -1;
  t->cl = cl;
  t->dc = dc;
  int fd = test_tcp_connect_op(port);
  if (fd < 0) return fd;
  t->fd = fd;
  mtci_stack_config sc;
  memset(&sc, 0, sizeof sc);
  sc.codec = kind;
  sc.obfuscated = obfuscated;
  sc.dc_id = mtci_obfs_dc_id(dc, 0, 0);
  sc.rnd = rnd;
  int rc = mtci_stack_init(&t->st, &sc);
  if (!rc) rc = mtci_stack_start(&t->st, now_ms() / 1000) < 0 ? -1 : 0;
  if (!rc) rc = tc_flush(t);
  return rc;
}

static int tc_open(tc *t, mock_dc_cluster *cl, int dc, mtci_codec_kind kind, int obfuscated) {
  return tc_open_port(t, cl, dc, mock_dc_port(cl, dc), kind, obfuscated);
}

enum { EV_TIMEOUT = 0, EV_PACKET = 1, EV_QUICK_ACK = 2, EV_TERR = 3, EV_EOF = -1, EV_ERR = -2 };

static int tc_read(tc *t, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  for (;;) {
    size_t used = 0;
    mtci_stack_event ev;
    int r = mtci_stack_feed(&t->st, t->rb + t->rpos, t->rlen - t->rpos, &used, &ev);
    t->rpos += used;
    if (r < 0) return EV_ERR;
    if (r == 1) {
      if (ev.type == MTCI_STACK_PACKET) {
        if (ev.len > t->pkt_cap) {
          uint8_t *nb = realloc(t->pkt, ev.len);
          if (!nb) return EV_ERR;
          t->pkt = nb;
          t->pkt_cap = ev.len;
        }
        memcpy(t->pkt, ev.data, ev.len);
        t->pkt_len = ev.len;
        return EV_PACKET;
      }
      if (ev.type == MTCI_STACK_QUICK_ACK) {
        t->qa_token = ev.quick_ack;
        t->quick_acks++;
        return EV_QUICK_ACK;
      }
      if (ev.type == MTCI_STACK_TRANSPORT_ERROR) {
        t->terr = ev.error_code;
        return EV_TERR;
      }
      continue; /* READY */
    }
    t->rpos = t->rlen = 0;
    int64_t left = end - now_ms();
    if (left <= 0) return EV_TIMEOUT;
    struct pollfd pfd = {t->fd, POLLIN, 0};
    int pr = poll(&pfd, 1, (int)left);
    if (pr == 0) return EV_TIMEOUT;
    if (pr < 0) return EV_ERR;
    ssize_t n = recv(t->fd, t->rb, sizeof t->rb, 0);
    if (n == 0) return EV_EOF;
    if (n < 0) return errno == ECONNRESET ? EV_EOF : EV_ERR;
    t->rlen = (size_t)n;
  }
}

/* Auth key creation over the connection; 0 or an error. */
static int tc_handshake(tc *t, int32_t expires_in) {
  mtci_rsa_keyset ks;
  mtci_rsa_keyset_init(&ks);
  mtci_rsa_key k;
  if (mock_dc_public_key(t->cl, t->dc, &k) != 0 || mtci_rsa_keyset_add(&ks, &k) != 0) {
    mtci_rsa_keyset_clear(&ks);
    return -1;
  }
  mtci_handshake hs;
  mtci_handshake_params p;
  memset(&p, 0, sizeof p);
  p.dc = t->dc;
  p.expires_in = expires_in;
  p.keys = &ks;
  p.rnd = rnd;
  int rc = mtci_handshake_init(&hs, &p);
  if (!rc) rc = mtci_handshake_start(&hs) == MTCI_HS_SEND ? 0 : -1;
  for (int step = 0; !rc && step < 8; step++) {
    uint8_t env[MTCI_HS_REQ_MAX + MTCI_UNENC_HEADER_LEN];
    size_t n;
    rc = mtci_handshake_emit_envelope(&hs, (double)now_ms() / 1000.0, env, sizeof env, &n);
    if (!rc) rc = mtci_stack_send_packet(&t->st, env, n, 0);
    if (!rc) rc = tc_flush(t);
    if (!rc) rc = tc_read(t, OP_MS) == EV_PACKET ? 0 : -1;
    if (!rc) {
      int r = mtci_handshake_feed_envelope(&hs, t->pkt, t->pkt_len, (double)now_ms() / 1000.0);
      if (r == MTCI_HS_FINISHED) {
        rc = mtci_handshake_result(&hs, &t->key);
        t->hs_last_msg_id = hs.last_msg_id;
        break;
      }
      if (r != MTCI_HS_SEND) rc = r < 0 ? r : -1;
    }
  }
  mtci_handshake_free(&hs);
  mtci_rsa_keyset_clear(&ks);
  return rc;
}

typedef struct sess_opts {
  int32_t layer;        /* 0 = 198 */
  int no_init;
  int32_t pdd_delay_s;  /* ping_disconnect_delay_s */
} sess_opts;

static int tc_session(tc *t, const sess_opts *o) {
  mtci_session_config c;
  memset(&c, 0, sizeof c);
  memcpy(c.auth_key, t->key.auth_key, MTCI_AUTH_KEY_LEN);
  c.server_salt = t->key.server_salt;
  c.time_offset_ms = t->key.time_offset * 1000;
  c.time_synced = 1;
  c.min_msg_id = t->hs_last_msg_id;
  c.no_init_connection = o ? o->no_init : 0;
  c.api_id = 12345;
  c.layer = o && o->layer ? o->layer : 198;
  c.device_model = "test";
  c.system_version = "linux";
  c.app_version = "0.1";
  c.system_lang_code = "en";
  c.lang_pack = "";
  c.lang_code = "en";
  c.ping_disconnect_delay_s = o && o->pdd_delay_s ? o->pdd_delay_s : 75;
  c.no_future_salts = 1;
  c.rnd = rnd;
  int rc = mtci_session_init(&t->s, &c, now_ms());
  mtci_zeroize(&c, sizeof c);
  if (!rc) t->has_sess = 1;
  return rc;
}

static int tc_pump_out(tc *t) {
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  int rc = 0;
  for (int i = 0; i < 64; i++) {
    mtci_tl_writer_reset(&w);
    uint32_t qa = 0;
    int r = mtci_session_build_packet(&t->s, now_ms(), &w, &qa);
    if (r <= 0) {
      rc = r;
      break;
    }
    rc = mtci_stack_send_packet(&t->st, mtci_tl_writer_data(&w), w.len,
                                t->want_quick_ack && mtci_stack_codec(&t->st) != MTCI_CODEC_FULL);
    if (rc) break;
  }
  mtci_tl_writer_free(&w);
  return rc ? rc : tc_flush(t);
}

enum { CALL_RESULT = 1, CALL_ERROR = 2 };

/* Feed one inbound packet to the session and collect events for token.
 * Returns CALL_RESULT / CALL_ERROR when token finished, 0 otherwise, < 0 on error. */
static int tc_absorb(tc *t, uint64_t token) {
  int r = mtci_session_feed_packet(&t->s, now_ms(), t->pkt, t->pkt_len);
  if (r < 0) return r;
  mtci_session_on_bytes_received(&t->s, now_ms());
  int done = 0;
  mtci_session_event ev;
  while (mtci_session_next_event(&t->s, &ev)) {
    if (ev.type == MTCI_SEV_SALT_UPDATED) t->salt_updates++;
    if (ev.type == MTCI_SEV_NEW_SESSION) t->new_sessions++;
    if (ev.token != token || !token) continue;
    if (ev.type == MTCI_SEV_RESULT) {
      if (ev.len > t->res_cap) {
        uint8_t *nb = realloc(t->res, ev.len);
        if (!nb) return -1;
        t->res = nb;
        t->res_cap = ev.len;
      }
      memcpy(t->res, ev.data, ev.len);
      t->res_len = ev.len;
      done = CALL_RESULT;
    } else if (ev.type == MTCI_SEV_RPC_ERROR) {
      t->err_code = ev.code;
      snprintf(t->err_msg, sizeof t->err_msg, "%.*s", (int)ev.len, (const char *)ev.data);
      done = CALL_ERROR;
    } else if (ev.type == MTCI_SEV_FAILED) {
      return -2;
    }
  }
  int rc = tc_pump_out(t); /* acks, resends after bad_server_salt */
  return rc < 0 ? rc : done;
}

/* Invoke one query and wait (<= timeout_ms) for its answer. Returns
 * CALL_RESULT (t->res), CALL_ERROR (t->err_code/err_msg), EV_TIMEOUT (0),
 * EV_EOF, EV_TERR (t->terr) or another negative value. */
static int tc_call_wait(tc *t, const uint8_t *body, size_t len, int timeout_ms) {
  uint64_t token = ++t->next_token;
  t->err_code = 0;
  t->err_msg[0] = 0;
  t->res_len = 0;
  if (mtci_session_invoke(&t->s, body, len, 0, token) != 0) return -3;
  if (tc_pump_out(t) != 0) return -4;
  int64_t end = now_ms() + timeout_ms;
  for (;;) {
    int64_t left = end - now_ms();
    if (left <= 0) return EV_TIMEOUT;
    int e = tc_read(t, (int)left);
    if (e == EV_PACKET) {
      int r = tc_absorb(t, token);
      if (r != 0) return r;
    } else if (e == EV_QUICK_ACK) {
      mtci_session_on_quick_ack(&t->s, t->qa_token);
    } else {
      return e == EV_TERR ? 100 + EV_TERR : e;
    }
  }
}
#define CALL_TERR (100 + EV_TERR)

static int tc_call(tc *t, const uint8_t *body, size_t len) {
  return tc_call_wait(t, body, len, OP_MS);
}

/* Run the session timers so it sends a ping (ping_interval_ms = 1); wait
 * for the pong. 1 if the round trip was measured. */
static int tc_ping(tc *t) {
  int64_t before = t->s.rtt_ms;
  t->s.rtt_ms = -1;
  /* Pretend the keepalive interval has passed: the ping goes out now. */
  mtci_session_on_deadline(&t->s, now_ms() + MTCI_SESSION_PING_INTERVAL_MS + 1);
  if (tc_pump_out(t) != 0) return 0;
  int64_t end = now_ms() + OP_MS;
  while (t->s.rtt_ms < 0 && now_ms() < end) {
    int e = tc_read(t, (int)(end - now_ms()));
    if (e == EV_QUICK_ACK) {
      mtci_session_on_quick_ack(&t->s, t->qa_token);
      continue;
    }
    if (e != EV_PACKET || tc_absorb(t, 0) < 0) return 0;
  }
  (void)before;
  return t->s.rtt_ms >= 0;
}

/* A connected client with a perm key and a session on DC dc. */
static int tc_ready(tc *t, mock_dc_cluster *cl, int dc, mtci_codec_kind kind, int obfs,
                    const sess_opts *o) {
  int rc = tc_open(t, cl, dc, kind, obfs);
  if (!rc) rc = tc_handshake(t, 0);
  if (!rc) rc = tc_session(t, o);
  return rc;
}

/* ---- request bodies (schema/api.tl, layer 198) ------------------------------------------ */

typedef struct body {
  uint8_t b[512];
  size_t n;
} body;

static void b_u32(body *b, uint32_t v) {
  mtci_put_le32(b->b + b->n, v);
  b->n += 4;
}
static void b_i64(body *b, int64_t v) {
  mtci_put_le64(b->b + b->n, mtci_u64_of(v));
  b->n += 8;
}
static void b_bytes(body *b, const void *p, size_t n) {
  /* short form only (< 254 bytes): enough for the requests here */
  b->b[b->n++] = (uint8_t)n;
  memcpy(b->b + b->n, p, n);
  b->n += n;
  while ((n + 1) % 4) {
    b->b[b->n++] = 0;
    n++;
  }
}
static void b_str(body *b, const char *s) { b_bytes(b, s, strlen(s)); }

static body q_nearest(void) {
  body b = {{0}, 0};
  b_u32(&b, 0x1fb33026u);
  return b;
}
static body q_config(void) {
  body b = {{0}, 0};
  b_u32(&b, 0xc4f9186bu);
  return b;
}
static body q_send_code(const char *phone) {
  body b = {{0}, 0};
  b_u32(&b, 0xa677244fu);
  b_str(&b, phone);
  b_u32(&b, 12345);              /* api_id */
  b_str(&b, "0123456789abcdef"); /* api_hash */
  b_u32(&b, 0xad253d78u);        /* codeSettings */
  b_u32(&b, 0);
  return b;
}
static body q_sign_in(const char *phone, const char *hash, const char *code) {
  body b = {{0}, 0};
  b_u32(&b, 0x8d52a951u);
  b_u32(&b, 1); /* flags.0: phone_code */
  b_str(&b, phone);
  b_str(&b, hash);
  b_str(&b, code);
  return b;
}
static body q_export(int dc) {
  body b = {{0}, 0};
  b_u32(&b, 0xe5bfffcdu);
  b_u32(&b, (uint32_t)dc);
  return b;
}
static body q_import(int64_t id, const uint8_t *bytes, size_t n) {
  body b = {{0}, 0};
  b_u32(&b, 0xa57a7dadu);
  b_i64(&b, id);
  b_bytes(&b, bytes, n);
  return b;
}
static body q_get_file(int64_t id, int64_t offset, int32_t limit) {
  body b = {{0}, 0};
  b_u32(&b, 0xbe5335beu);
  b_u32(&b, 0);           /* flags */
  b_u32(&b, 0xbad07584u); /* inputDocumentFileLocation */
  b_i64(&b, id);
  b_i64(&b, 0);           /* access_hash */
  b_str(&b, "");          /* file_reference */
  b_str(&b, "");          /* thumb_size */
  b_i64(&b, offset);
  b_u32(&b, (uint32_t)limit);
  return b;
}
static body q_get_self(void) {
  body b = {{0}, 0};
  b_u32(&b, 0x0d91a548u);
  b_u32(&b, 0x1cb5c415u);
  b_u32(&b, 1);
  b_u32(&b, 0xf7c1b13fu); /* inputUserSelf */
  return b;
}

#define CALL(t, q) tc_call((t), (q).b, (q).n)

static int is_error(const tc *t, int32_t code, const char *msg) {
  return t->err_code == code && strcmp(t->err_msg, msg) == 0;
}

/* The mock document, from its definition: block i = SHA-256(id LE8 || i BE8). */
static void expected_file(int64_t id, uint64_t offset, uint8_t *out, size_t len) {
  for (size_t done = 0; done < len;) {
    uint64_t pos = offset + done, blk = pos / 32;
    uint8_t in[16], h[32];
    for (int i = 0; i < 8; i++) in[i] = (uint8_t)((uint64_t)id >> (8 * i));
    for (int i = 0; i < 8; i++) in[8 + i] = (uint8_t)(blk >> (56 - 8 * i));
    mtci_sha256(in, sizeof in, h);
    size_t from = (size_t)(pos % 32), take = 32 - from;
    if (take > len - done) take = len - done;
    memcpy(out + done, h + from, take);
    done += take;
  }
}

/* ---- counters from the JSON ----------------------------------------------------------- */

static json_t *g_json;

static void cleanup(void) {
  json_decref(g_json);
  g_json = NULL;
  mtci_drbg_free(g_drbg);
  g_drbg = NULL;
}

static int load_json(mock_dc_cluster *cl) {
  json_decref(g_json);
  char *s = mock_dc_counters_json(cl);
  if (!s) return -1;
  g_json = json_loads(s, 0, NULL);
  free(s);
  return g_json ? 0 : -1;
}

static json_t *jdc(int dc) {
  return json_array_get(json_object_get(g_json, "dcs"), (size_t)dc - 1);
}

static long long jnum(int dc, const char *field) {
  return (long long)json_integer_value(json_object_get(jdc(dc), field));
}

static long long jmap(int dc, const char *map, const char *key) {
  return (long long)json_integer_value(json_object_get(json_object_get(jdc(dc), map), key));
}

/* ================================================================================== */

static const struct {
  mtci_codec_kind kind;
  int obfs;
  const char *name;
} k_transports[] = {
    {MTCI_CODEC_ABRIDGED, 0, "abridged"},
    {MTCI_CODEC_INTERMEDIATE, 0, "intermediate"},
    {MTCI_CODEC_PADDED, 0, "padded"},
    {MTCI_CODEC_FULL, 0, "full"},
    {MTCI_CODEC_ABRIDGED, 1, "obfuscated/abridged"},
    {MTCI_CODEC_INTERMEDIATE, 1, "obfuscated/intermediate"},
    {MTCI_CODEC_PADDED, 1, "obfuscated/padded"},
};
#define N_TRANSPORTS (sizeof k_transports / sizeof k_transports[0])

/* Handshake + ping + help.getNearestDc over every transport (DC 2), quick
 * acks where the codec has them. */
TEST(transports) {
  mock_dc_cluster *cl = start_cluster(0);
  CHECK(cl != NULL);
  int ok = 1;
  for (size_t i = 0; i < N_TRANSPORTS && ok; i++) {
    tc t;
    int rc = tc_ready(&t, cl, 2, k_transports[i].kind, k_transports[i].obfs, NULL);
    if (rc) fprintf(stderr, "  %s: setup %d\n", k_transports[i].name, rc);
    ok = rc == 0;
    t.want_quick_ack = k_transports[i].kind != MTCI_CODEC_FULL;
    if (ok && !tc_ping(&t)) {
      fprintf(stderr, "  %s: no pong\n", k_transports[i].name);
      ok = 0;
    }
    body q = q_nearest();
    if (ok && CALL(&t, q) != CALL_RESULT) {
      fprintf(stderr, "  %s: getNearestDc failed (%d %s)\n", k_transports[i].name,
              (int)t.err_code, t.err_msg);
      ok = 0;
    }
    if (ok) {
      mtc_tl_object *o = NULL;
      ok = mtc_tl_parse(t.res, t.res_len, &o) == 0 && o->id == MTC_TL_ID_nearestDc;
      if (ok) {
        const mtc_tl_nearestDc *nd = (const mtc_tl_nearestDc *)o;
        ok = nd->this_dc == 2 && nd->nearest_dc == 2 && nd->country.len == 2 &&
             memcmp(nd->country.data, "ZZ", 2) == 0;
      }
      mtc_tl_object_free(o);
      if (!ok) fprintf(stderr, "  %s: bad nearestDc\n", k_transports[i].name);
    }
    if (ok && t.want_quick_ack && t.quick_acks == 0) {
      fprintf(stderr, "  %s: no quick ack\n", k_transports[i].name);
      ok = 0;
    }
    tc_close(&t);
  }
  CHECK(ok);
  CHECK(load_json(cl) == 0);
  CHECK_EQ_INT(jnum(2, "tcp_accepted"), N_TRANSPORTS);
  CHECK_EQ_INT(jnum(2, "handshakes_perm"), N_TRANSPORTS);
  CHECK_EQ_INT(jnum(2, "handshakes_temp"), 0);
  CHECK_EQ_INT(jmap(2, "rpcs_by_method", "help.getNearestDc"), N_TRANSPORTS);
  CHECK_EQ_INT(jmap(2, "rpcs_by_method", "ping_delay_disconnect"), N_TRANSPORTS);
  CHECK_EQ_INT(jnum(2, "sessions_created"), N_TRANSPORTS);
  CHECK_EQ_INT(jnum(2, "quick_acks") >= 6, 1);
  for (size_t i = 0; i < N_TRANSPORTS; i++)
    CHECK_EQ_INT(jmap(2, "transports", k_transports[i].name), 1);
  CHECK_EQ_INT(jnum(1, "tcp_accepted"), 0);
  CHECK(jnum(2, "bytes_in") > 0 && jnum(2, "bytes_out") > 0);
  mock_dc_cluster_free(cl);
}

/* help.getConfig at layer 198 (decoded with the schema's decoder) and 144
 * (Telethon's layout), plus the refusals around it. */
TEST(config) {
  mock_dc_cluster *cl = start_cluster(1);
  CHECK(cl != NULL);
  tc t;
  CHECK_EQ_INT(tc_ready(&t, cl, 3, MTCI_CODEC_INTERMEDIATE, 1, NULL), 0);
  body q = q_config();
  CHECK_EQ_INT(CALL(&t, q), CALL_RESULT);
  mtc_tl_object *o = NULL;
  CHECK_EQ_INT(mtc_tl_parse(t.res, t.res_len, &o), 0);
  CHECK(o->id == MTC_TL_ID_config);
  const mtc_tl_config *c = (const mtc_tl_config *)o;
  int good = c->this_dc == 3 && c->test_mode == 0 && c->expires > c->date &&
             c->dc_options.n == 10 && c->me_url_prefix.len > 0;
  for (uint32_t i = 0; good && i < c->dc_options.n; i++) {
    const mtc_tl_dcOption *d = (const mtc_tl_dcOption *)c->dc_options.v[i];
    int dc = (int)i / 2 + 1;
    uint16_t want = i % 2 ? mock_dc_alt_port(cl, dc) : mock_dc_port(cl, dc);
    good = d->base.id == MTC_TL_ID_dcOption && d->id == dc && d->port == want &&
           d->ip_address.len == 9 && memcmp(d->ip_address.data, "127.0.0.1", 9) == 0 &&
           d->flags == 0;
  }
  mtc_tl_object_free(o);
  CHECK(good);
  /* An unknown method and an unsupported layer. */
  body u = {{0}, 0};
  b_u32(&u, 0x12345678u);
  CHECK_EQ_INT(CALL(&t, u), CALL_ERROR);
  CHECK(is_error(&t, 400, "INPUT_METHOD_INVALID"));
  tc_close(&t);

  /* Layer 144: config#330b4067 in Telethon 1.25's field order. */
  sess_opts l144 = {144, 0, 0};
  CHECK_EQ_INT(tc_ready(&t, cl, 3, MTCI_CODEC_FULL, 0, &l144), 0);
  CHECK_EQ_INT(CALL(&t, q), CALL_RESULT);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, t.res, t.res_len);
  CHECK(mtci_tl_read_u32(&r) == 0x330b4067u);
  uint32_t flags = mtci_tl_read_u32(&r);
  int32_t date = mtci_tl_read_int(&r), expires = mtci_tl_read_int(&r);
  CHECK(mtci_tl_read_bool(&r) == 0);
  CHECK_EQ_INT(mtci_tl_read_int(&r), 3);
  uint32_t nopt = mtci_tl_read_vector(&r, 20);
  CHECK_EQ_INT(nopt, 10);
  for (uint32_t i = 0; i < nopt; i++) {
    CHECK(mtci_tl_read_u32(&r) == 0x18b7a10du);
    CHECK_EQ_INT(mtci_tl_read_u32(&r), 0);
    CHECK_EQ_INT(mtci_tl_read_int(&r), (int)i / 2 + 1);
    size_t n;
    (void)mtci_tl_read_bytes(&r, &n);
    (void)mtci_tl_read_int(&r);
  }
  size_t n;
  (void)mtci_tl_read_bytes(&r, &n);            /* dc_txt_domain_name */
  /* chat_size_max .. channels_read_media_period */
  for (int i = 0; i < 19; i++) (void)mtci_tl_read_int(&r);
  if (flags & 1u) (void)mtci_tl_read_int(&r); /* tmp_sessions */
  for (int i = 0; i < 6; i++) (void)mtci_tl_read_int(&r); /* pinned x2, call x4 */
  (void)mtci_tl_read_bytes(&r, &n);            /* me_url_prefix */
  CHECK(n > 0);
  for (int b = 7; b <= 12; b++)
    if (b != 8 && (flags >> b & 1u)) (void)mtci_tl_read_bytes(&r, &n);
  for (int i = 0; i < 3; i++) (void)mtci_tl_read_int(&r); /* caption, message, webfile */
  CHECK(!(flags & 4u));
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
  CHECK(expires > date);
  tc_close(&t);

  /* Another layer: refused at invokeWithLayer. */
  sess_opts l100 = {100, 0, 0};
  CHECK_EQ_INT(tc_ready(&t, cl, 3, MTCI_CODEC_ABRIDGED, 0, &l100), 0);
  CHECK_EQ_INT(CALL(&t, q), CALL_ERROR);
  CHECK(is_error(&t, 400, "INPUT_LAYER_INVALID"));
  tc_close(&t);

  /* No initConnection on a fresh key. */
  sess_opts raw = {0, 1, 0};
  CHECK_EQ_INT(tc_ready(&t, cl, 3, MTCI_CODEC_ABRIDGED, 0, &raw), 0);
  CHECK_EQ_INT(CALL(&t, q), CALL_ERROR);
  CHECK(is_error(&t, 400, "CONNECTION_NOT_INITED"));
  tc_close(&t);
  CHECK(load_json(cl) == 0);
  CHECK_EQ_INT(jmap(3, "errors", "400 CONNECTION_NOT_INITED"), 1);
  CHECK_EQ_INT(jmap(3, "errors", "400 INPUT_LAYER_INVALID"), 1);
  CHECK_EQ_INT(jmap(3, "errors", "400 INPUT_METHOD_INVALID"), 1);
  CHECK_EQ_INT(jmap(3, "rpcs_by_method", "help.getConfig"), 4);
  mock_dc_cluster_free(cl);
}

static int parse_user(const uint8_t *p, size_t n, int64_t *uid) {
  mtc_tl_object *o = NULL;
  int ok = mtc_tl_parse(p, n, &o) == 0 && o->id == MTC_TL_ID_user;
  if (ok) {
    const mtc_tl_user *u = (const mtc_tl_user *)o;
    *uid = u->id;
    ok = u->self == 1 && u->phone.len == 11 && memcmp(u->phone.data, "15550000005", 11) == 0;
  }
  mtc_tl_object_free(o);
  return ok;
}

static int parse_authorization(const tc *t, int64_t *uid) {
  mtc_tl_object *o = NULL;
  int ok = mtc_tl_parse(t->res, t->res_len, &o) == 0 && o->id == MTC_TL_ID_auth_authorization;
  if (ok) {
    const mtc_tl_auth_authorization *a = (const mtc_tl_auth_authorization *)o;
    const mtc_tl_user *u = (const mtc_tl_user *)a->user;
    ok = u && u->base.id == MTC_TL_ID_user && u->self;
    if (ok) *uid = u->id;
  }
  mtc_tl_object_free(o);
  return ok;
}

/* The login flow across DCs, then file parts from the files DC. */
TEST(login_flow) {
  mock_dc_cluster *cl = start_cluster(0);
  CHECK(cl != NULL);
  tc d2, d5, d1, d2b;
  CHECK_EQ_INT(tc_ready(&d2, cl, 2, MTCI_CODEC_INTERMEDIATE, 1, NULL), 0);
  body q = q_send_code(PHONE);
  CHECK_EQ_INT(CALL(&d2, q), CALL_ERROR);
  CHECK(is_error(&d2, 303, "PHONE_MIGRATE_5"));
  body me = q_get_self();
  CHECK_EQ_INT(CALL(&d2, me), CALL_ERROR);
  CHECK(is_error(&d2, 401, "AUTH_KEY_UNREGISTERED"));

  CHECK_EQ_INT(tc_ready(&d5, cl, 5, MTCI_CODEC_PADDED, 1, NULL), 0);
  CHECK_EQ_INT(CALL(&d5, q), CALL_RESULT);
  char hash[64] = {0};
  {
    mtc_tl_object *o = NULL;
    CHECK_EQ_INT(mtc_tl_parse(d5.res, d5.res_len, &o), 0);
    const mtc_tl_auth_sentCode *sc = (const mtc_tl_auth_sentCode *)o;
    int ok = o->id == MTC_TL_ID_auth_sentCode && sc->type &&
             sc->type->id == MTC_TL_ID_auth_sentCodeTypeApp &&
             ((const mtc_tl_auth_sentCodeTypeApp *)sc->type)->length == 5 &&
             sc->phone_code_hash.len > 0 && sc->phone_code_hash.len < sizeof hash;
    if (ok) memcpy(hash, sc->phone_code_hash.data, sc->phone_code_hash.len);
    mtc_tl_object_free(o);
    CHECK(ok);
  }
  body bad = q_sign_in(PHONE, hash, "54321");
  CHECK_EQ_INT(CALL(&d5, bad), CALL_ERROR);
  CHECK(is_error(&d5, 400, "PHONE_CODE_INVALID"));
  body wrong_hash = q_sign_in(PHONE, "0000", "12345");
  CHECK_EQ_INT(CALL(&d5, wrong_hash), CALL_ERROR);
  CHECK(is_error(&d5, 400, "PHONE_CODE_EXPIRED"));
  CHECK_EQ_INT(mock_dc_key_user(cl, 5, d5.key.auth_key_id), 0);
  body good = q_sign_in(PHONE, hash, "12345");
  CHECK_EQ_INT(CALL(&d5, good), CALL_RESULT);
  int64_t uid = 0;
  CHECK(parse_authorization(&d5, &uid));
  CHECK_EQ_INT(uid, USER_ID);
  CHECK_EQ_INT(mock_dc_key_user(cl, 5, d5.key.auth_key_id), USER_ID);
  CHECK_EQ_INT(CALL(&d5, me), CALL_RESULT);
  {
    mtci_tl_reader r;
    mtci_tl_reader_init(&r, d5.res, d5.res_len);
    CHECK_EQ_INT(mtci_tl_read_vector(&r, 4), 1);
    CHECK(parse_user(d5.res + 8, d5.res_len - 8, &uid));
    CHECK_EQ_INT(uid, USER_ID);
  }

  /* DC 1 holds the file; a fresh key there is not logged in. */
  CHECK_EQ_INT(tc_ready(&d1, cl, 1, MTCI_CODEC_ABRIDGED, 0, NULL), 0);
  body part0 = q_get_file(1, 0, 524288), part1 = q_get_file(1, 524288, 524288);
  CHECK_EQ_INT(CALL(&d1, part0), CALL_ERROR);
  CHECK(is_error(&d1, 401, "AUTH_KEY_UNREGISTERED"));
  body ex = q_export(1);
  CHECK_EQ_INT(CALL(&d5, ex), CALL_RESULT);
  int64_t ex_id = 0;
  uint8_t ex_bytes[256];
  size_t ex_len = 0;
  {
    mtc_tl_object *o = NULL;
    CHECK_EQ_INT(mtc_tl_parse(d5.res, d5.res_len, &o), 0);
    const mtc_tl_auth_exportedAuthorization *e = (const mtc_tl_auth_exportedAuthorization *)o;
    int ok = o->id == MTC_TL_ID_auth_exportedAuthorization && e->bytes.len > 0 &&
             e->bytes.len <= sizeof ex_bytes;
    if (ok) {
      ex_id = e->id;
      ex_len = e->bytes.len;
      memcpy(ex_bytes, e->bytes.data, ex_len);
    }
    mtc_tl_object_free(o);
    CHECK(ok);
  }
  CHECK_EQ_INT(ex_id, USER_ID);
  /* Tampered bytes are refused. */
  ex_bytes[ex_len - 1] ^= 1;
  body imp_bad = q_import(ex_id, ex_bytes, ex_len);
  CHECK_EQ_INT(CALL(&d1, imp_bad), CALL_ERROR);
  CHECK(is_error(&d1, 400, "AUTH_BYTES_INVALID"));
  ex_bytes[ex_len - 1] ^= 1;
  body imp = q_import(ex_id, ex_bytes, ex_len);
  CHECK_EQ_INT(CALL(&d1, imp), CALL_RESULT);
  CHECK(parse_authorization(&d1, &uid));
  CHECK_EQ_INT(uid, USER_ID);
  CHECK_EQ_INT(mock_dc_key_user(cl, 1, d1.key.auth_key_id), USER_ID);

  uint8_t *want = malloc(524288);
  CHECK(want != NULL);
  for (int part = 0; part < 2; part++) {
    body *qp = part ? &part1 : &part0;
    int r = tc_call(&d1, qp->b, qp->n);
    mtc_tl_object *o = NULL;
    int ok = r == CALL_RESULT && mtc_tl_parse(d1.res, d1.res_len, &o) == 0 &&
             o->id == MTC_TL_ID_upload_file;
    if (ok) {
      const mtc_tl_upload_file *f = (const mtc_tl_upload_file *)o;
      expected_file(1, (uint64_t)part * 524288u, want, 524288);
      ok = f->type && f->type->id == MTC_TL_ID_storage_filePartial && f->bytes.len == 524288 &&
           memcmp(f->bytes.data, want, 524288) == 0;
    }
    mtc_tl_object_free(o);
    if (!ok) free(want);
    CHECK(ok);
  }
  free(want);
  /* Files live on DC 1 only. */
  CHECK_EQ_INT(CALL(&d5, part0), CALL_ERROR);
  CHECK(is_error(&d5, 303, "FILE_MIGRATE_1"));
  body ex2 = q_export(2);
  CHECK_EQ_INT(CALL(&d5, ex2), CALL_RESULT);
  {
    mtc_tl_object *o = NULL;
    CHECK_EQ_INT(mtc_tl_parse(d5.res, d5.res_len, &o), 0);
    const mtc_tl_auth_exportedAuthorization *e = (const mtc_tl_auth_exportedAuthorization *)o;
    body imp2 = q_import(e->id, e->bytes.data, e->bytes.len);
    mtc_tl_object_free(o);
    /* An export for DC 2 is no good on DC 1. */
    CHECK_EQ_INT(CALL(&d1, imp2), CALL_ERROR);
    CHECK(is_error(&d1, 400, "AUTH_BYTES_INVALID"));
    CHECK_EQ_INT(tc_ready(&d2b, cl, 2, MTCI_CODEC_FULL, 0, NULL), 0);
    CHECK_EQ_INT(CALL(&d2b, imp2), CALL_RESULT);
  }
  CHECK_EQ_INT(CALL(&d2b, part0), CALL_ERROR);
  CHECK(is_error(&d2b, 303, "FILE_MIGRATE_1"));
  body bad_limit = q_get_file(1, 0, 1000);
  CHECK_EQ_INT(CALL(&d1, bad_limit), CALL_ERROR);
  CHECK(is_error(&d1, 400, "LIMIT_INVALID"));
  tc_close(&d2);
  tc_close(&d5);
  tc_close(&d1);
  tc_close(&d2b);

  /* The counters tell the same story. */
  CHECK(load_json(cl) == 0);
  CHECK_EQ_INT(jnum(1, "tcp_accepted"), 1);
  CHECK_EQ_INT(jnum(2, "tcp_accepted"), 2);
  CHECK_EQ_INT(jnum(5, "tcp_accepted"), 1);
  CHECK_EQ_INT(jnum(3, "tcp_accepted") + jnum(4, "tcp_accepted"), 0);
  CHECK_EQ_INT(jnum(1, "handshakes_perm") + jnum(2, "handshakes_perm") +
                   jnum(5, "handshakes_perm"),
               4);
  CHECK_EQ_INT(jmap(2, "rpcs_by_method", "auth.sendCode"), 1);
  CHECK_EQ_INT(jmap(2, "rpcs_by_method", "users.getUsers"), 1);
  CHECK_EQ_INT(jmap(2, "rpcs_by_method", "auth.importAuthorization"), 1);
  CHECK_EQ_INT(jmap(2, "rpcs_by_method", "upload.getFile"), 1);
  CHECK_EQ_INT(jmap(5, "rpcs_by_method", "auth.sendCode"), 1);
  CHECK_EQ_INT(jmap(5, "rpcs_by_method", "auth.signIn"), 3);
  CHECK_EQ_INT(jmap(5, "rpcs_by_method", "users.getUsers"), 1);
  CHECK_EQ_INT(jmap(5, "rpcs_by_method", "auth.exportAuthorization"), 2);
  CHECK_EQ_INT(jmap(5, "rpcs_by_method", "upload.getFile"), 1);
  CHECK_EQ_INT(jmap(1, "rpcs_by_method", "auth.importAuthorization"), 3);
  CHECK_EQ_INT(jmap(1, "rpcs_by_method", "upload.getFile"), 4);
  CHECK_EQ_INT(jmap(2, "errors", "303 PHONE_MIGRATE_5"), 1);
  CHECK_EQ_INT(jmap(2, "errors", "401 AUTH_KEY_UNREGISTERED"), 1);
  CHECK_EQ_INT(jmap(2, "errors", "303 FILE_MIGRATE_1"), 1);
  CHECK_EQ_INT(jmap(5, "errors", "400 PHONE_CODE_INVALID"), 1);
  CHECK_EQ_INT(jmap(5, "errors", "400 PHONE_CODE_EXPIRED"), 1);
  CHECK_EQ_INT(jmap(5, "errors", "303 FILE_MIGRATE_1"), 1);
  CHECK_EQ_INT(jmap(1, "errors", "401 AUTH_KEY_UNREGISTERED"), 1);
  CHECK_EQ_INT(jmap(1, "errors", "400 AUTH_BYTES_INVALID"), 2);
  CHECK_EQ_INT(jmap(1, "errors", "400 LIMIT_INVALID"), 1);
  CHECK_EQ_INT(json_integer_value(
                   json_object_get(json_object_get(g_json, "totals"), "handshakes_perm")),
               4);
  mock_dc_cluster_free(cl);
}

/* ---- raw messages (for the bind and the salt checks) ------------------------------------ */

typedef struct raw {
  int64_t salt, session_id, last_msg_id;
  int32_t content;
} raw;

static int64_t raw_msg_id(tc *t, raw *r) {
  return mtci_session_make_msg_id(&r->last_msg_id, now_ms() + t->key.time_offset * 1000);
}

/* One content message alone in a packet. */
static int raw_send(tc *t, raw *r, int64_t msg_id, const uint8_t *b, size_t n, int content) {
  uint8_t pt[1024], pkt[1100];
  size_t len = 32 + n, pad = 12 + (16 - (32 + n + 12) % 16) % 16;
  if (len + pad > sizeof pt) return -1;
  mtci_put_le64(pt, mtci_u64_of(r->salt));
  mtci_put_le64(pt + 8, mtci_u64_of(r->session_id));
  mtci_put_le64(pt + 16, mtci_u64_of(msg_id));
  int32_t seq = content ? 2 * r->content + 1 : 2 * r->content;
  if (content) r->content++;
  mtci_put_le32(pt + 24, (uint32_t)seq);
  mtci_put_le32(pt + 28, (uint32_t)n);
  memcpy(pt + 32, b, n);
  if (rnd(NULL, pt + len, pad)) return -1;
  len += pad;
  uint8_t mk[16], key[32], iv[32];
  mtci_mtp2_msg_key(t->key.auth_key, 0, pt, len, mk, NULL);
  mtci_mtp2_kdf(t->key.auth_key, mk, 0, key, iv);
  memcpy(pkt, t->key.auth_key_id, 8);
  memcpy(pkt + 8, mk, 16);
  mtci_aes256_ige_encrypt(key, iv, pt, pkt + 24, len);
  if (mtci_stack_send_packet(&t->st, pkt, 24 + len, 0)) return -1;
  return tc_flush(t);
}

/* Wait for a server message with constructor id `want` (looking inside
 * containers and rpc_results with req_msg_id == req). Copies its body to
 * out. 1 found, 0 not in time, < 0 error. */
static int raw_wait(tc *t, uint32_t want, int64_t req, uint8_t *out, size_t cap, size_t *out_len) {
  int64_t end = now_ms() + OP_MS;
  while (now_ms() < end) {
    int e = tc_read(t, (int)(end - now_ms()));
    if (e != EV_PACKET) return e == EV_TIMEOUT ? 0 : -1;
    if (t->pkt_len < 24 + 32 || (t->pkt_len - 24) % 16) return -1;
    size_t n = t->pkt_len - 24;
    uint8_t *pt = malloc(n), key[32], iv[32], mk[16];
    if (!pt) return -1;
    mtci_mtp2_kdf(t->key.auth_key, t->pkt + 8, 8, key, iv);
    mtci_aes256_ige_decrypt(key, iv, t->pkt + 24, pt, n);
    mtci_mtp2_msg_key(t->key.auth_key, 8, pt, n, mk, NULL);
    uint32_t dlen = mtci_le32(pt + 28);
    if (memcmp(mk, t->pkt + 8, 16) != 0 || dlen + 32 > n) {
      free(pt);
      return -1;
    }
    const uint8_t *bodyp = pt + 32;
    /* messages: one, or a container's */
    mtci_tl_message msgs[64];
    size_t nm = 0;
    mtci_tl_container c;
    if (dlen >= 4 && mtci_le32(bodyp) == MTCI_TL_MSG_CONTAINER_ID) {
      if (mtci_tl_container_parse(&c, bodyp, dlen) == 0)
        while (nm < 64 && mtci_tl_container_next(&c, &msgs[nm])) nm++;
    } else {
      msgs[0].body = bodyp;
      msgs[0].body_len = dlen;
      nm = 1;
    }
    int found = 0;
    for (size_t i = 0; i < nm && !found; i++) {
      const uint8_t *b = msgs[i].body;
      size_t bl = msgs[i].body_len;
      mtci_tl_unwrapped u = {0};
      if (bl >= 12 && mtci_le32(b) == MTCI_TL_RPC_RESULT_ID &&
          mtci_i64_of(mtci_le64(b + 4)) == req && mtci_tl_unwrap(b + 12, bl - 12, 0, &u) == 0) {
        b = u.data;
        bl = u.len;
      }
      if (bl >= 4 && mtci_le32(b) == want && bl <= cap) {
        memcpy(out, b, bl);
        *out_len = bl;
        found = 1;
      }
      mtci_tl_unwrapped_free(&u);
    }
    free(pt);
    if (found) return 1;
  }
  return 0;
}

/* PFS: a temp key may only bind (and fetch config) until bound; a bind is
 * checked field by field. */
TEST(pfs_bind) {
  mock_dc_cluster *cl = start_cluster(0);
  CHECK(cl != NULL);
  tc perm, tmp;
  CHECK_EQ_INT(tc_open(&perm, cl, 3, MTCI_CODEC_ABRIDGED, 1), 0);
  CHECK_EQ_INT(tc_handshake(&perm, 0), 0);
  CHECK_EQ_INT(tc_open(&tmp, cl, 3, MTCI_CODEC_ABRIDGED, 1), 0);
  CHECK_EQ_INT(tc_handshake(&tmp, 3600), 0);
  CHECK(tmp.key.temp == 1);
  int np = 0, nt = 0;
  mock_dc_key_count(cl, 3, &np, &nt);
  CHECK_EQ_INT(np, 1);
  CHECK_EQ_INT(nt, 1);
  CHECK_EQ_INT(tc_session(&tmp, NULL), 0);
  body near = q_nearest(), me = q_get_self();
  CHECK_EQ_INT(CALL(&tmp, near), CALL_RESULT);
  CHECK_EQ_INT(CALL(&tmp, me), CALL_ERROR);
  CHECK(is_error(&tmp, 401, "AUTH_KEY_PERM_EMPTY"));

  /* The bind goes in its own (raw) session on the temp key's connection. */
  raw r = {0};
  r.salt = tmp.key.server_salt;
  CHECK_EQ_INT(rnd(NULL, (uint8_t *)&r.session_id, 8), 0);
  r.last_msg_id = tmp.s.last_msg_id;
  for (int attempt = 0; attempt < 2; attempt++) {
    mtci_bind_inner in;
    memset(&in, 0, sizeof in);
    CHECK_EQ_INT(rnd(NULL, (uint8_t *)&in.nonce, 8), 0);
    memcpy(in.temp_auth_key_id, tmp.key.auth_key_id, 8);
    memcpy(in.perm_auth_key_id, perm.key.auth_key_id, 8);
    in.temp_session_id = r.session_id;
    in.expires_at = (int32_t)tmp.key.expires_at;
    int64_t msg_id = raw_msg_id(&tmp, &r);
    uint8_t enc[MTCI_BIND_MSG_LEN];
    /* attempt 0 seals a different msg_id: the server must refuse it */
    CHECK_EQ_INT(mtci_bind_encrypt(perm.key.auth_key, &in, attempt ? msg_id : msg_id + 4, rnd,
                                   NULL, enc),
                 0);
    body b = {{0}, 0};
    b_u32(&b, MTCI_ID_AUTH_BIND_TEMP_AUTH_KEY);
    memcpy(b.b + b.n, perm.key.auth_key_id, 8);
    b.n += 8;
    b_i64(&b, in.nonce);
    b_u32(&b, (uint32_t)in.expires_at);
    b_bytes(&b, enc, sizeof enc);
    CHECK_EQ_INT(raw_send(&tmp, &r, msg_id, b.b, b.n, 1), 0);
    uint8_t ans[512];
    size_t al = 0;
    if (attempt == 0) {
      CHECK_EQ_INT(raw_wait(&tmp, MTCI_TL_RPC_ERROR_ID, msg_id, ans, sizeof ans, &al), 1);
      mtci_tl_rpc_error e;
      CHECK_EQ_INT(mtci_tl_rpc_error_parse(ans, al, &e), 1);
      CHECK_EQ_INT(e.code, 400);
      CHECK(strcmp(e.text, "ENCRYPTED_MESSAGE_INVALID") == 0);
    } else {
      CHECK_EQ_INT(raw_wait(&tmp, MTCI_TL_BOOL_TRUE, msg_id, ans, sizeof ans, &al), 1);
    }
  }
  /* Bound: the temp key now speaks for the (not logged in) perm key. */
  CHECK_EQ_INT(CALL(&tmp, me), CALL_ERROR);
  CHECK(is_error(&tmp, 401, "AUTH_KEY_UNREGISTERED"));
  tc_close(&perm);
  tc_close(&tmp);
  CHECK(load_json(cl) == 0);
  CHECK_EQ_INT(jnum(3, "handshakes_perm"), 1);
  CHECK_EQ_INT(jnum(3, "handshakes_temp"), 1);
  CHECK_EQ_INT(jnum(3, "binds"), 1);
  CHECK_EQ_INT(jmap(3, "rpcs_by_method", "auth.bindTempAuthKey"), 2);
  CHECK_EQ_INT(jmap(3, "errors", "401 AUTH_KEY_PERM_EMPTY"), 1);
  CHECK_EQ_INT(jmap(3, "errors", "400 ENCRYPTED_MESSAGE_INVALID"), 1);
  mock_dc_cluster_free(cl);
}

/* Service requests mock_session answers itself, as counted by the DC. */
TEST(service) {
  mock_dc_cluster *cl = start_cluster(0);
  CHECK(cl != NULL);
  tc t;
  CHECK_EQ_INT(tc_open(&t, cl, 1, MTCI_CODEC_INTERMEDIATE, 0), 0);
  CHECK_EQ_INT(tc_handshake(&t, 0), 0);
  raw r = {0};
  r.salt = t.key.server_salt;
  r.session_id = 0x1122334455667788ll;
  r.last_msg_id = t.hs_last_msg_id;
  uint8_t ans[2048];
  size_t al = 0;
  /* ping (not content-related: even seq_no) */
  uint8_t q[12];
  mtci_put_le32(q, MTCI_ID_PING);
  mtci_put_le64(q + 4, 4242);
  int64_t id = raw_msg_id(&t, &r);
  CHECK_EQ_INT(raw_send(&t, &r, id, q, sizeof q, 0), 0);
  CHECK_EQ_INT(raw_wait(&t, MTCI_ID_PONG, 0, ans, sizeof ans, &al), 1);
  CHECK_EQ_INT(mtci_i64_of(mtci_le64(ans + 12)), 4242);
  /* get_future_salts(3): future_salts req_msg_id now vector<future_salt> */
  mtci_put_le32(q, MTCI_ID_GET_FUTURE_SALTS);
  mtci_put_le32(q + 4, 3);
  id = raw_msg_id(&t, &r);
  CHECK_EQ_INT(raw_send(&t, &r, id, q, 8, 1), 0);
  CHECK_EQ_INT(raw_wait(&t, MTCI_ID_FUTURE_SALTS, 0, ans, sizeof ans, &al), 1);
  CHECK_EQ_INT(mtci_i64_of(mtci_le64(ans + 4)), id);
  CHECK_EQ_INT(mtci_le32(ans + 16), 3);
  CHECK_EQ_INT(al, 20 + 3 * 16);
  /* destroy_session of an unknown session: destroy_session_none */
  mtci_put_le32(q, MTCI_ID_DESTROY_SESSION);
  mtci_put_le64(q + 4, 99);
  id = raw_msg_id(&t, &r);
  CHECK_EQ_INT(raw_send(&t, &r, id, q, sizeof q, 1), 0);
  CHECK_EQ_INT(raw_wait(&t, MTCI_ID_DESTROY_SESSION_NONE, 0, ans, sizeof ans, &al), 1);
  CHECK_EQ_INT(mtci_i64_of(mtci_le64(ans + 4)), 99);
  tc_close(&t);
  CHECK(load_json(cl) == 0);
  CHECK_EQ_INT(jmap(1, "rpcs_by_method", "ping"), 1);
  CHECK_EQ_INT(jmap(1, "rpcs_by_method", "get_future_salts"), 1);
  CHECK_EQ_INT(jmap(1, "rpcs_by_method", "destroy_session"), 1);
  CHECK_EQ_INT(jnum(1, "rpcs"), 3);
  CHECK_EQ_INT(jnum(1, "sessions_created"), 1);
  mock_dc_cluster_free(cl);
}

static int set_fault(mock_dc_cluster *cl, int dc, const char *spec) {
  mock_dc_faults f;
  memset(&f, 0, sizeof f);
  if (mock_dc_faults_parse(spec, &f) != 0) return -1;
  return mock_dc_set_faults(cl, dc, &f);
}

/* Each fault switch, observed once by the client. */
TEST(faults) {
  mock_dc_cluster *cl = start_cluster(1);
  CHECK(cl != NULL);
  tc t, u;
  body near = q_nearest();

  /* -404 once: the key is forgotten. */
  CHECK_EQ_INT(tc_ready(&t, cl, 4, MTCI_CODEC_INTERMEDIATE, 0, NULL), 0);
  CHECK_EQ_INT(CALL(&t, near), CALL_RESULT);
  CHECK_EQ_INT(set_fault(cl, 4, "transport_404_once=1"), 0);
  CHECK_EQ_INT(CALL(&t, near), CALL_TERR);
  CHECK_EQ_INT(t.terr, -404);
  CHECK_EQ_INT(mock_dc_key_count(cl, 4, NULL, NULL), 0);
  tc_close(&t);

  /* close after N frames: the 2nd frame (req_DH_params) gets EOF, no answer. */
  CHECK_EQ_INT(set_fault(cl, 4, "close_after_frames=2"), 0);
  CHECK_EQ_INT(tc_open(&t, cl, 4, MTCI_CODEC_ABRIDGED, 0), 0);
  CHECK(tc_handshake(&t, 0) != 0);
  CHECK_EQ_INT(tc_read(&t, OP_MS), EV_EOF);
  tc_close(&t);

  /* -429 on a burst: more than 2 connects within 5 s. */
  CHECK_EQ_INT(set_fault(cl, 4, "flood_connects=2,flood_window_ms=5000"), 0);
  tc f[3];
  for (int i = 0; i < 3; i++) CHECK_EQ_INT(tc_open(&f[i], cl, 4, MTCI_CODEC_PADDED, 1), 0);
  CHECK_EQ_INT(tc_handshake(&f[0], 0), 0);
  CHECK(tc_handshake(&f[2], 0) != 0);
  CHECK_EQ_INT(f[2].terr, -429);
  for (int i = 0; i < 3; i++) tc_close(&f[i]);

  /* wrong salt: bad_server_salt (48) with the new salt; the retry works. */
  CHECK_EQ_INT(set_fault(cl, 4, ""), 0);
  CHECK_EQ_INT(tc_ready(&t, cl, 4, MTCI_CODEC_ABRIDGED, 1, NULL), 0);
  CHECK_EQ_INT(CALL(&t, near), CALL_RESULT);
  {
    raw r = {0};
    r.salt = t.s.salt;
    r.session_id = t.s.session_id ^ 0x5a5a;
    r.last_msg_id = t.s.last_msg_id;
    CHECK_EQ_INT(set_fault(cl, 4, "wrong_salt=1"), 0);
    int64_t id1 = raw_msg_id(&t, &r);
    uint8_t ping[12];
    mtci_put_le32(ping, MTCI_ID_PING);
    mtci_put_le64(ping + 4, 77);
    CHECK_EQ_INT(raw_send(&t, &r, id1, ping, sizeof ping, 0), 0);
    uint8_t ans[256];
    size_t al = 0;
    CHECK_EQ_INT(raw_wait(&t, MTCI_ID_BAD_SERVER_SALT, 0, ans, sizeof ans, &al), 1);
    CHECK_EQ_INT(al, 28);
    CHECK_EQ_INT(mtci_i64_of(mtci_le64(ans + 4)), id1);
    CHECK_EQ_INT(mtci_le32(ans + 16), 48);
    int64_t new_salt = mtci_i64_of(mtci_le64(ans + 20));
    CHECK(new_salt != r.salt);
    r.salt = new_salt;
    int64_t id2 = raw_msg_id(&t, &r);
    CHECK_EQ_INT(raw_send(&t, &r, id2, ping, sizeof ping, 0), 0);
    CHECK_EQ_INT(raw_wait(&t, MTCI_ID_PONG, 0, ans, sizeof ans, &al), 1);
    CHECK_EQ_INT(mtci_i64_of(mtci_le64(ans + 4)), id2);
    CHECK_EQ_INT(mtci_i64_of(mtci_le64(ans + 12)), 77);
    /* The session (old salt) gets it too and recovers by itself. */
    CHECK_EQ_INT(set_fault(cl, 4, "wrong_salt=1"), 0);
    unsigned before = t.salt_updates;
    CHECK_EQ_INT(CALL(&t, near), CALL_RESULT);
    CHECK(t.salt_updates > before);
  }
  tc_close(&t);

  /* delayed answers */
  CHECK_EQ_INT(tc_ready(&t, cl, 4, MTCI_CODEC_FULL, 0, NULL), 0);
  CHECK_EQ_INT(set_fault(cl, 4, "delay_ms=300"), 0);
  int64_t t0 = now_ms();
  CHECK_EQ_INT(CALL(&t, near), CALL_RESULT);
  CHECK(now_ms() - t0 >= 290);

  /* dropped answers: getNearestDc never answered; getConfig still is. */
  CHECK_EQ_INT(set_fault(cl, 4, "drop_method=help.getNearestDc"), 0);
  CHECK_EQ_INT(tc_call_wait(&t, near.b, near.n, 600), EV_TIMEOUT);
  body cfg = q_config();
  CHECK_EQ_INT(CALL(&t, cfg), CALL_RESULT);

  /* stall: no bytes while stalled, TCP stays open; the answer follows the unstall. */
  CHECK_EQ_INT(set_fault(cl, 4, "stall=1"), 0);
  CHECK_EQ_INT(tc_call_wait(&t, cfg.b, cfg.n, 500), EV_TIMEOUT);
  CHECK(mock_dc_conn_count(cl, 4) >= 1); /* still connected (no EOF above) */
  CHECK_EQ_INT(set_fault(cl, 4, ""), 0);
  {
    int got = 0;
    int64_t end = now_ms() + OP_MS;
    while (!got && now_ms() < end) {
      if (tc_read(&t, OP_MS) != EV_PACKET) break;
      got = tc_absorb(&t, t.next_token) == CALL_RESULT;
    }
    CHECK(got);
  }
  tc_close(&t);

  /* clock skew: the handshake reports it; the session works in server time. */
  CHECK_EQ_INT(set_fault(cl, 4, "clock_offset=3600"), 0);
  CHECK_EQ_INT(tc_ready(&t, cl, 4, MTCI_CODEC_INTERMEDIATE, 1, NULL), 0);
  CHECK(t.key.time_offset >= 3595 && t.key.time_offset <= 3605);
  CHECK_EQ_INT(CALL(&t, near), CALL_RESULT);
  tc_close(&t);
  CHECK_EQ_INT(set_fault(cl, 4, ""), 0);

  /* ping_delay_disconnect: closed about disconnect_delay after the ping. */
  sess_opts pdd = {0, 0, 1};
  CHECK_EQ_INT(tc_ready(&t, cl, 4, MTCI_CODEC_ABRIDGED, 0, &pdd), 0);
  CHECK(tc_ping(&t));
  t0 = now_ms();
  CHECK_EQ_INT(tc_read(&t, 3000), EV_EOF);
  CHECK(now_ms() - t0 >= 700);
  tc_close(&t);

  /* refused seed port, working alternative port */
  uint16_t seed = mock_dc_port(cl, 4), alt = mock_dc_alt_port(cl, 4);
  CHECK(alt != 0);
  CHECK_EQ_INT(set_fault(cl, 4, "refuse_seed=1"), 0);
  CHECK_EQ_INT(mock_dc_port(cl, 4), seed);
  CHECK_EQ_INT(test_tcp_connect_op(seed), -ECONNREFUSED);
  CHECK_EQ_INT(tc_open_port(&u, cl, 4, alt, MTCI_CODEC_INTERMEDIATE, 1), 0);
  CHECK_EQ_INT(tc_handshake(&u, 0), 0);
  tc_close(&u);
  CHECK_EQ_INT(set_fault(cl, 4, ""), 0);
  int fd = test_tcp_connect_op(seed);
  CHECK(fd >= 0);
  close(fd);

  CHECK(load_json(cl) == 0);
  CHECK_EQ_INT(jnum(4, "transport_404"), 1);
  CHECK_EQ_INT(jnum(4, "transport_429"), 1);
  CHECK_EQ_INT(jnum(4, "answers_dropped"), 1);
  CHECK(jnum(4, "bad_msgs_sent") >= 2);
  mock_dc_cluster_free(cl);
}

/* Fault spec parsing, PEM export, the public key's fingerprint. */
TEST(api) {
  mock_dc_faults f;
  memset(&f, 0, sizeof f);
  CHECK_EQ_INT(mock_dc_faults_parse("close_after_frames=3,delay_ms=20,drop_method=ping,"
                                    "clock_offset=-30,stall,refuse_seed=1",
                                    &f),
               0);
  CHECK_EQ_INT(f.close_after_frames, 3);
  CHECK_EQ_INT(f.delay_ms, 20);
  CHECK(strcmp(f.drop_method, "ping") == 0);
  CHECK_EQ_INT(f.clock_offset, -30);
  CHECK_EQ_INT(f.stall, 1);
  CHECK_EQ_INT(f.refuse_seed, 1);
  CHECK_EQ_INT(mock_dc_faults_parse("nonsense=1", &f), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mock_dc_faults_parse("delay_ms=-1", &f), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mock_dc_faults_parse("delay_ms=x", &f), MTC_ERR_INVALID_ARG);

  mock_dc_cluster *cl = NULL;
  mock_dc_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.n_dcs = 11;
  CHECK_EQ_INT(mock_dc_cluster_new(&cl, &cfg), MTC_ERR_INVALID_ARG);
  cfg.n_dcs = 3;
  cfg.home_dc = 4;
  CHECK_EQ_INT(mock_dc_cluster_new(&cl, &cfg), MTC_ERR_INVALID_ARG);
  cfg.home_dc = 0;
  CHECK_EQ_INT(mock_dc_cluster_new(&cl, &cfg), 0);
  CHECK_EQ_INT(mock_dc_cluster_count(cl), 3);
  CHECK_EQ_INT(mock_dc_port(cl, 1), 0); /* not started */
  char pem[2048];
  size_t pl = 0;
  for (int dc = 1; dc <= 3; dc++) {
    CHECK_EQ_INT(mock_dc_public_pem(cl, dc, pem, sizeof pem, &pl), 0);
    CHECK(strncmp(pem, "-----BEGIN RSA PUBLIC KEY-----\n", 31) == 0);
    mtci_rsa_key a, b;
    CHECK_EQ_INT(mtci_rsa_key_from_pem(&a, pem, pl), 0);
    CHECK_EQ_INT(mock_dc_public_key(cl, dc, &b), 0);
    CHECK(a.fingerprint == b.fingerprint && a.n_len == 256);
  }
  CHECK_EQ_INT(mock_dc_public_pem(cl, 4, pem, sizeof pem, &pl), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mock_dc_public_pem(cl, 1, pem, 100, &pl), MTC_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ_INT(mock_dc_cluster_start(cl), 0);
  char *ports = mock_dc_ports_json(cl);
  CHECK(ports != NULL);
  json_t *j = json_loads(ports, 0, NULL);
  free(ports);
  CHECK(j != NULL);
  json_t *dcs = json_object_get(j, "dcs");
  int ok = json_array_size(dcs) == 3;
  for (size_t i = 0; ok && i < 3; i++) {
    json_t *d = json_array_get(dcs, i);
    ok = json_integer_value(json_object_get(d, "id")) == (json_int_t)i + 1 &&
         json_integer_value(json_object_get(d, "port")) == mock_dc_port(cl, (int)i + 1);
  }
  json_decref(j);
  CHECK(ok);
  mock_dc_cluster_stop(cl);
  mock_dc_cluster_stop(cl);
  mock_dc_cluster_free(cl);
  mock_dc_cluster_free(NULL);
}

/* RPCs the DC ran for a method (its counters). */
static long long method_count(mock_dc_cluster *cl, int dc, const char *name) {
  mock_dc_counters c;
  if (mock_dc_get_counters(cl, dc, &c) != 0) return -1;
  for (size_t i = 0; i < c.n_methods; i++)
    if (strcmp(c.methods[i].name, name) == 0) return (long long)c.methods[i].count;
  return 0;
}

/* The connection breaks; the same session goes on over a new one. */
static int tc_reconnect(tc *t, mtci_codec_kind kind) {
  if (t->fd >= 0) close(t->fd);
  t->fd = -1;
  mtci_stack_free(&t->st);
  t->rpos = t->rlen = 0;
  int fd = test_tcp_connect_op(mock_dc_port(t->cl, t->dc));
  if (fd < 0) return fd;
  t->fd = fd;
  mtci_stack_config sc;
  memset(&sc, 0, sizeof sc);
  sc.codec = kind;
  sc.rnd = rnd;
  int rc = mtci_stack_init(&t->st, &sc);
  if (!rc) rc = mtci_stack_start(&t->st, now_ms() / 1000) < 0 ? -1 : 0;
  if (!rc) rc = tc_flush(t);
  if (!rc) rc = mtci_session_on_reconnect(&t->s, now_ms());
  if (!rc) rc = tc_pump_out(t);
  return rc;
}

/* A query the server acknowledged, whose answer the connection lost: after
 * the reconnect the client does not send it again (a new msg_id would run
 * it twice), the DC re-sends the answer; it ran once, answered once. */
TEST(lost_answer_after_ack) {
  mock_dc_cluster *cl = start_cluster(0);
  CHECK(cl != NULL);
  tc t;
  body near = q_nearest();
  CHECK_EQ_INT(tc_ready(&t, cl, 2, MTCI_CODEC_INTERMEDIATE, 0, NULL), 0);
  CHECK_EQ_INT(CALL(&t, near), CALL_RESULT);
  long long before = method_count(cl, 2, "help.getNearestDc");
  CHECK_EQ_INT(before, 1);
  CHECK_EQ_INT(set_fault(cl, 2, "lose_method=help.getNearestDc"), 0);
  CHECK_EQ_INT(tc_call_wait(&t, near.b, near.n, 300), EV_TIMEOUT);
  uint64_t token = t.next_token;
  CHECK_EQ_INT(mtci_session_pending(&t.s), 1);
  CHECK(t.s.n_reqs == 1 && t.s.reqs[0]->acked); /* the DC's msgs_ack came */
  CHECK_EQ_INT(method_count(cl, 2, "help.getNearestDc"), 2);
  CHECK_EQ_INT(set_fault(cl, 2, ""), 0);
  CHECK_EQ_INT(tc_reconnect(&t, MTCI_CODEC_INTERMEDIATE), 0);
  int got = 0, results = 0;
  int64_t end = now_ms() + OP_MS;
  while (!got && now_ms() < end) {
    int e = tc_read(&t, (int)(end - now_ms()));
    if (e == EV_QUICK_ACK) continue;
    if (e != EV_PACKET) break;
    int r = tc_absorb(&t, token);
    CHECK(r >= 0);
    if (r == CALL_RESULT) results++;
    got = r != 0;
  }
  CHECK_EQ_INT(got, CALL_RESULT);
  /* a while longer: nothing more for it (the DC has nothing else to send) */
  for (int e = tc_read(&t, 200); e == EV_PACKET; e = tc_read(&t, 200))
    if (tc_absorb(&t, token) == CALL_RESULT) results++;
  CHECK_EQ_INT(results, 1);
  CHECK_EQ_INT(mtci_session_pending(&t.s), 0);
  CHECK_EQ_INT(method_count(cl, 2, "help.getNearestDc"), 2); /* ran once for this call */
  CHECK_EQ_INT(t.s.stats.kept, 1);
  CHECK_EQ_INT(t.s.stats.late_resends, 0);
  CHECK_EQ_INT(method_count(cl, 2, "msgs_state_req"), 1);
  tc_close(&t);
  mock_dc_cluster_free(cl);
}

TEST_MAIN("mockdc", CASE(api), CASE(transports), CASE(config), CASE(login_flow), CASE(pfs_bind),
          CASE(service), CASE(faults), CASE(lost_answer_after_ack))
