/*
 * MTProto 2.0 session (src/session.c, session_msgs.c) against the in-memory
 * mock DC (tests/mockdc/mock_session.c), with a fixed RNG and clock:
 *   - the receive path on grammers' decrypt_server_data_v2 vector;
 *   - packets crafted here with an independent encryptor (hash-level KDF)
 *     for the inbound checks, tampering in every byte, replay, time window;
 *   - round trips, initConnection bytes, msg_id / seq_no rules, acks,
 *     containers, rpc_error, gzip both ways, every bad_msg path, salts,
 *     new sessions, duplicates, reconnect, keepalive and probe deadlines.
 */
#include <string.h>

#include "mock_session.h"
#include "mtconn/version.h"
#include "session_impl.h" /* private fields of requests */
#include "test.h"
#include "tl/special.h"
#include "tl/tl.h"

/* ---- fixtures ------------------------------------------------------------------- */

#define T0 1700000000000LL /* 2023-11-14 22:13:20 UTC, in ms */
#define SALT0 0x1122334455667788LL
#define SID0 0x0102030405060708LL

#define M_ECHO 0x11111111u   /* answer: R_ECHO + the query's payload */
#define R_ECHO 0x22222222u
#define M_ERROR 0x33333333u  /* answer: rpc_error 420 FLOOD_WAIT_30 */
#define M_SILENT 0x55555555u /* no answer */

struct xrng {
  uint64_t s;
};
static int xrng_fn(void *ud, uint8_t *out, size_t len) {
  struct xrng *r = ud;
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(test_rand64(&r->s) >> 24);
  return 0;
}

static void test_key(uint8_t key[256]) {
  for (int i = 0; i < 256; i++) key[i] = (uint8_t)(i * 7 + 3);
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static int64_t rd64(const uint8_t *p) {
  return (int64_t)((uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32);
}
static void wr32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, int64_t v) {
  wr32(p, (uint32_t)(uint64_t)v);
  wr32(p + 4, (uint32_t)((uint64_t)v >> 32));
}

#define MAX_EV 300
typedef struct rec_ev {
  int type;
  uint64_t token;
  int32_t code;
  int64_t value, msg_id;
  size_t len;
  uint8_t data[64];
} rec_ev;

typedef struct world {
  mtci_session c;
  mock_session *m;
  struct xrng crng, mrng;
  mtci_tl_writer w;
  int64_t now;
  rec_ev ev[MAX_EV];
  size_t n_ev;
  unsigned counts[16];   /* events by type */
  unsigned handler_calls;
  size_t last_query_len; /* as the handler saw it */
  int last_query_wrapped;
  size_t big_answer;     /* M_ECHO answers this many extra zero bytes when set */
} world;

static int handler(void *ud, const mock_query *q, mtci_tl_writer *out) {
  world *W = ud;
  W->handler_calls++;
  W->last_query_len = q->len;
  W->last_query_wrapped = q->wrapped;
  switch (q->method) {
  case M_ECHO:
    mtci_tl_write_u32(out, R_ECHO);
    mtci_tl_write_raw(out, q->body + 4, q->len - 4);
    if (W->big_answer) {
      uint8_t *z = mtci_tl_write_reserve(out, W->big_answer);
      if (z) memset(z, 0, W->big_answer);
    }
    return MOCK_ANSWER;
  case M_ERROR: mock_rpc_error(out, 420, "FLOOD_WAIT_30"); return MOCK_ANSWER;
  case M_SILENT: return MOCK_NO_ANSWER;
  default: mtci_tl_write_u32(out, MTCI_TL_BOOL_TRUE); return MOCK_ANSWER;
  }
}

static void client_cfg(world *W, mtci_session_config *c) {
  memset(c, 0, sizeof *c);
  test_key(c->auth_key);
  c->server_salt = SALT0;
  c->session_id = SID0;
  c->time_synced = 1;
  c->api_id = 12345;
  c->device_model = "dev";
  c->system_version = "1.0";
  c->app_version = "0.1";
  c->system_lang_code = "en";
  c->lang_pack = "";
  c->lang_code = "en";
  c->no_future_salts = 1;
  c->rnd = xrng_fn;
  c->rnd_ud = &W->crng;
}

static void mock_cfg(world *W, mock_session_config *mc) {
  memset(mc, 0, sizeof *mc);
  test_key(mc->auth_key);
  mc->salt = SALT0;
  mc->handler = handler;
  mc->handler_ud = W;
  mc->rnd = xrng_fn;
  mc->rnd_ud = &W->mrng;
}

/* NULL configs: the defaults above. */
static int world_init(world *W, const mtci_session_config *cc, const mock_session_config *mc) {
  memset(W, 0, sizeof *W);
  W->crng.s = 0x1234567;
  W->mrng.s = 0x7654321;
  W->now = T0;
  mtci_session_config c;
  mock_session_config m;
  if (cc) c = *cc;
  else client_cfg(W, &c);
  c.rnd_ud = &W->crng;
  if (mc) m = *mc;
  else mock_cfg(W, &m);
  m.handler_ud = W;
  m.rnd_ud = &W->mrng;
  mtci_tl_writer_init(&W->w, 0);
  int rc = mtci_session_init(&W->c, &c, W->now);
  if (rc) return rc;
  return mock_session_new(&W->m, &m);
}

static void world_free(world *W) {
  mtci_session_free(&W->c);
  mock_session_free(W->m);
  mtci_tl_writer_free(&W->w);
}

static void drain(world *W) {
  mtci_session_event e;
  while (mtci_session_next_event(&W->c, &e)) {
    if (e.type >= 0 && e.type < 16) W->counts[e.type]++;
    if (W->n_ev == MAX_EV) continue;
    rec_ev *r = &W->ev[W->n_ev++];
    r->type = e.type;
    r->token = e.token;
    r->code = e.code;
    r->value = e.value;
    r->msg_id = e.msg_id;
    r->len = e.len;
    if (e.data) memcpy(r->data, e.data, e.len < sizeof r->data ? e.len : sizeof r->data);
  }
}

static unsigned count_ev(const world *W, int type, uint64_t token) {
  unsigned n = 0;
  for (size_t i = 0; i < W->n_ev; i++) n += W->ev[i].type == type && W->ev[i].token == token;
  return n;
}

static const rec_ev *find_ev(const world *W, int type) {
  for (size_t i = 0; i < W->n_ev; i++)
    if (W->ev[i].type == type) return &W->ev[i];
  return NULL;
}

/* Client packets to the mock; returns how many, or a negative error. */
static int c2s(world *W) {
  int n = 0;
  for (int i = 0; i < 5000; i++) {
    mtci_tl_writer_reset(&W->w);
    int rc = mtci_session_build_packet(&W->c, W->now, &W->w, NULL);
    if (rc <= 0) return rc < 0 ? rc : n;
    rc = mock_session_feed(W->m, W->now, mtci_tl_writer_data(&W->w), W->w.len);
    if (rc) return rc;
    n++;
  }
  return MTC_ERR_INTERNAL;
}

/* Mock packets to the client; returns how many, or a negative error. */
static int s2c(world *W) {
  int n = 0;
  for (int i = 0; i < 5000; i++) {
    mtci_tl_writer_reset(&W->w);
    int rc = mock_session_pop(W->m, W->now, &W->w);
    if (rc <= 0) return rc < 0 ? rc : n;
    rc = mtci_session_feed_packet(&W->c, W->now, mtci_tl_writer_data(&W->w), W->w.len);
    if (rc < 0) return rc;
    n++;
  }
  return MTC_ERR_INTERNAL;
}

/* Both ways until quiet. */
static int pump(world *W) {
  for (int round = 0; round < 100; round++) {
    int a = c2s(W);
    if (a < 0) return a;
    int b = s2c(W);
    if (b < 0) return b;
    drain(W);
    if (a == 0 && b == 0) return 0;
  }
  return MTC_ERR_INTERNAL;
}

/* M_ECHO query with a 4-byte tag. */
static int invoke_echo(world *W, uint64_t token, uint32_t tag) {
  uint8_t b[8];
  wr32(b, M_ECHO);
  wr32(b + 4, tag);
  return mtci_session_invoke(&W->c, b, sizeof b, 0, token);
}
static int invoke_id(world *W, uint64_t token, uint32_t method) {
  uint8_t b[4];
  wr32(b, method);
  return mtci_session_invoke(&W->c, b, sizeof b, 0, token);
}

/* One result event for token carrying R_ECHO + tag. */
static int echo_ok(const world *W, uint64_t token, uint32_t tag) {
  unsigned n = 0;
  for (size_t i = 0; i < W->n_ev; i++) {
    const rec_ev *e = &W->ev[i];
    if (e->type != MTCI_SEV_RESULT || e->token != token) continue;
    n++;
    if (e->len != 8 || rd32(e->data) != R_ECHO || rd32(e->data + 4) != tag) return 0;
  }
  return n == 1;
}

/* ---- an independent server-side encryptor (hash-level KDF, x = 8) ---------------- */

static void kdf_by_hand(const uint8_t key[256], const uint8_t mk[16], int x, uint8_t aes_key[32],
                        uint8_t aes_iv[32]) {
  uint8_t buf[52], a[32], b[32];
  memcpy(buf, mk, 16);
  memcpy(buf + 16, key + x, 36);
  mtci_sha256(buf, 52, a);
  memcpy(buf, key + 40 + x, 36);
  memcpy(buf + 36, mk, 16);
  mtci_sha256(buf, 52, b);
  memcpy(aes_key, a, 8);
  memcpy(aes_key + 8, b + 8, 16);
  memcpy(aes_key + 24, a + 24, 8);
  memcpy(aes_iv, b, 8);
  memcpy(aes_iv + 8, a + 8, 16);
  memcpy(aes_iv + 24, b + 24, 8);
}

/* msg_key_large = SHA256(key[88+x : 120+x] || pt) */
static void msg_key_by_hand(const uint8_t key[256], int x, const uint8_t *pt, size_t n,
                            uint8_t large[32]) {
  mtci_sha256_ctx c;
  mtci_sha256_init(&c);
  mtci_sha256_update(&c, key + 88 + x, 32);
  mtci_sha256_update(&c, pt, n);
  mtci_sha256_final(&c, large);
}

/* salt|sid|msg_id|seqno|declared_len|body|pad (pad bytes 0x5a); returns the
 * packet length (0 if it does not fit or is not a multiple of 16). */
static size_t craft(uint8_t *out, size_t cap, const uint8_t key[256], int64_t salt, int64_t sid,
                    int64_t msg_id, int32_t seqno, uint32_t declared_len, const uint8_t *body,
                    size_t blen, size_t pad) {
  size_t n = 32 + blen + pad;
  if (n % 16 || 24 + n > cap) return 0;
  uint8_t *pt = out + 24;
  wr64(pt, salt);
  wr64(pt + 8, sid);
  wr64(pt + 16, msg_id);
  wr32(pt + 24, (uint32_t)seqno);
  wr32(pt + 28, declared_len);
  memcpy(pt + 32, body, blen);
  memset(pt + 32 + blen, 0x5a, pad);
  uint8_t large[32], ak[32], iv[32];
  msg_key_by_hand(key, 8, pt, n, large);
  kdf_by_hand(key, large + 8, 8, ak, iv);
  mtci_aes256_ige_encrypt(ak, iv, pt, pt, n);
  uint8_t h[20];
  mtci_sha1(key, 256, h);
  memcpy(out, h + 12, 8); /* auth_key_id = SHA1(key)[12:20] */
  memcpy(out + 8, large + 8, 16);
  return 24 + n;
}

/* Decrypt a client packet by hand (x = 0); returns the plaintext length. */
static size_t open_client(const uint8_t key[256], const uint8_t *pkt, size_t len, uint8_t *pt) {
  uint8_t ak[32], iv[32];
  kdf_by_hand(key, pkt + 8, 0, ak, iv);
  mtci_aes256_ige_decrypt(ak, iv, pkt + 24, pt, len - 24);
  return len - 24;
}

/* A snapshot of what a rejected packet must not change. */
typedef struct snap {
  size_t n_seen, n_reqs, evq_n, n_acks;
  int64_t salt, offset, sid, last_msg_id;
  uint64_t packets_in;
} snap;
static snap take_snap(const mtci_session *s) {
  snap x = {s->n_seen, s->n_reqs, s->evq_n,  s->n_acks,         s->salt,
            s->time_offset_ms, s->session_id, s->last_msg_id, s->stats.packets_in};
  return x;
}
static int snap_eq(const snap *a, const snap *b) { return memcmp(a, b, sizeof *a) == 0; }

/* ---- the grammers receive vector --------------------------------------------------- */

static const char GR_CT[] =
    "7a7183c2c10e4f4df945fa9a9abd35e7c3840b61f045304f39674c19c0e20978"
    "4f50f6226a073529d675c92cbf0bfa8c99a79b3f39c72a5d9a026d431ab7407c"
    "a04ecc55187d6c45f17871524edd90cea02ed728e14d7cb18aea2a636158f094"
    "59a9437710d894c79f368c4e8164b7647ea98612aefe942c5d92121acb8db02d"
    "ccceb66d0f8720ac12a06db0582bfd955be34f365118e3bab8cd080ce6b45b28"
    "eac56dcd2a29374e";
static const char GR_KEY[] =
    "5d2e7d65f49ec28bd029a88761ea27b8a4c79f12226525443e7d7c596ef33035"
    "30db2107e89aa997c7a0164ab694187adeff156bd6ef7118a1962347753c0e7e"
    "89a0354b8ec364f9997e71bc6923fb86e8e43491e010606a6ce845e2fa019409"
    "77ef0aa32adf5a97dbf6d428ec0434d717a2d3ad19622cc05887642113c7965f"
    "fb862a3e3ccb0ab95addda57f89245dbd76b492348f8e94bd5a7c0e0b8480852"
    "3cfd1ea80b32fe9ad198bc2e103fceb7d52492ecc0273a28674bc923eee59265"
    "ab17a002df1f4aa2c59b819a5e5e1d105ec117336f5c76c6b187037d4b4270ce"
    "e9cc21071d97e9bca220c6d7b01b998cf2e5cdb9a50ecda1852a36e635690c8e";
/* Its plaintext (grammers' expected value): salt fd288b24026a82fc, session
 * 68ad432482c4f260, msg_id 5e308b91c2c1f001, seq_no 2, 88 bytes: a container
 * of new_session_created (first_msg_id 5e308b91ad33fdc4, unique_id
 * 1658ee07a68ea818) and pong, then 24 bytes of padding. */

TEST(grammers_server_vector) {
  uint8_t ct[168], key[256];
  CHECK_EQ_INT(test_unhex(GR_CT, ct, sizeof ct), 168);
  CHECK_EQ_INT(test_unhex(GR_KEY, key, sizeof key), 256);
  struct xrng rng = {5};
  mtci_session_config c;
  memset(&c, 0, sizeof c);
  memcpy(c.auth_key, key, 256);
  c.server_salt = 1; /* differs, so adopting the new salt shows as an event */
  c.session_id = 0x68ad432482c4f260LL;
  c.time_synced = 1; /* clock right at the vector's time: the window check runs */
  c.no_future_salts = 1;
  c.rnd = xrng_fn;
  c.rnd_ud = &rng;
  int64_t now = 0x5e308b91LL * 1000 + 800;
  mtci_session s;
  CHECK_EQ_INT(mtci_session_init(&s, &c, now), 0);

  /* every single-bit change is rejected and changes nothing */
  for (size_t i = 0; i < sizeof ct; i += 7) {
    uint8_t t[168];
    memcpy(t, ct, sizeof t);
    t[i] ^= 0x10;
    snap a = take_snap(&s);
    int rc = mtci_session_feed_packet(&s, now, t, sizeof t);
    CHECK_EQ_INT(rc, i < 8 ? MTC_ERR_SESSION_KEY_ID : MTC_ERR_SESSION_MSG_KEY);
    snap b = take_snap(&s);
    CHECK(snap_eq(&a, &b));
  }
  /* an unsynced clock far away would still accept it; a synced one 10 min
   * later rejects it as too old */
  CHECK_EQ_INT(mtci_session_feed_packet(&s, now + 600000, ct, sizeof ct), MTC_ERR_SESSION_MSG_TIME);

  CHECK_EQ_INT(mtci_session_feed_packet(&s, now, ct, sizeof ct), 0);
  CHECK_EQ_INT(s.salt, (int64_t)0xfd288b24026a82fcULL);
  mtci_session_event e;
  int saw_new = 0, saw_salt = 0;
  while (mtci_session_next_event(&s, &e)) {
    if (e.type == MTCI_SEV_NEW_SESSION) {
      saw_new = 1;
      CHECK_EQ_INT(e.code, 0);
      CHECK_EQ_INT(e.value, 0x1658ee07a68ea818LL);
      CHECK_EQ_INT(e.msg_id, 0x5e308b91ad33fdc4LL);
    } else if (e.type == MTCI_SEV_SALT_UPDATED) {
      saw_salt = 1;
      CHECK_EQ_INT(e.value, (int64_t)0xfd288b24026a82fcULL);
    } else {
      CHECK(0); /* nothing else: the pong matches no ping of ours */
    }
  }
  CHECK(saw_new && saw_salt);
  /* new_session_created had seq_no 1: acked; pong (2) and the container (2) not */
  CHECK_EQ_INT(s.n_acks, 1);
  CHECK_EQ_INT(s.acks[0], 0x5e308b91c2c1a801LL);
  /* the container and both messages are in the duplicate window */
  CHECK_EQ_INT(s.n_seen, 3);
  /* the same packet again: a replay, ignored */
  CHECK_EQ_INT(mtci_session_feed_packet(&s, now, ct, sizeof ct), MTCI_SESSION_IGNORED);
  CHECK_EQ_INT(mtci_session_last_ignored(&s), MTC_ERR_SESSION_DUPLICATE);
  CHECK(!mtci_session_next_event(&s, &e));
  mtci_session_free(&s);

  /* with another session_id it is authentic but not ours */
  c.session_id = 0x68ad432482c4f261LL;
  CHECK_EQ_INT(mtci_session_init(&s, &c, now), 0);
  CHECK_EQ_INT(mtci_session_feed_packet(&s, now, ct, sizeof ct), MTCI_SESSION_IGNORED);
  CHECK_EQ_INT(mtci_session_last_ignored(&s), MTC_ERR_SESSION_ID);
  CHECK_EQ_INT(s.n_seen, 0);
  mtci_session_free(&s);
}

/* ---- msg_id, seq_no ----------------------------------------------------------------- */

TEST(msg_id_rules) {
  int64_t last = 0;
  /* 1700000000.123 s: (1700000000 << 32) | floor(0.123 * 2^32) with the 2
   * low bits cleared = 0x6553f1001f7ced90 (worked out by hand) */
  CHECK_EQ_INT(mtci_session_make_msg_id(&last, 1700000000123LL), 0x6553f1001f7ced90LL);
  /* frozen clock: +4 each time */
  CHECK_EQ_INT(mtci_session_make_msg_id(&last, 1700000000123LL), 0x6553f1001f7ced94LL);
  /* a whole second: low 32 bits would be 0 -> 4 */
  last = 0;
  CHECK_EQ_INT(mtci_session_make_msg_id(&last, 1700000000000LL), 0x6553f10000000004LL);
  /* back to ms: floor(0x1f7ced90 * 1000 / 2^32) = 122 (the cleared bits round down) */
  CHECK_EQ_INT(mtci_session_msg_id_ms(0x6553f1001f7ced90LL), 1700000000122LL);
  /* clock going back: still increasing */
  int64_t prev = last;
  CHECK(mtci_session_make_msg_id(&last, 1600000000000LL) == prev + 4);
}

TEST(msg_ids_frozen_clock) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  /* 40 queries in two batches, all at the same instant */
  for (int i = 0; i < 20; i++) CHECK_EQ_INT(invoke_echo(&W, 100 + i, i), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  for (int i = 20; i < 40; i++) CHECK_EQ_INT(invoke_echo(&W, 100 + i, i), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  size_t n = mock_session_rx_count(W.m);
  CHECK_EQ_INT(n, 40);
  int64_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    const mock_rx_msg *r = mock_session_rx(W.m, i);
    CHECK(r->msg_id > prev);
    CHECK_EQ_INT(r->msg_id % 4, 0);
    CHECK_EQ_INT((uint64_t)r->msg_id >> 32, T0 / 1000);
    CHECK((r->msg_id & 0xffffffff) != 0);
    CHECK(r->container_id > r->msg_id); /* the container's id is the greatest */
    prev = r->msg_id;
  }
  /* the second container's contents are above the first container */
  CHECK(mock_session_rx(W.m, 20)->msg_id > mock_session_rx(W.m, 0)->container_id);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_msgs[18], 0);
  CHECK_EQ_INT(pump(&W), 0);
  for (int i = 0; i < 40; i++) CHECK(echo_ok(&W, 100 + i, i));
  world_free(&W);
}

TEST(seq_no_sequence) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 1));
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));
  /* first packet: the query alone, seq_no 1; second: a container of
   * msgs_ack (2) and the query (3), container 4 */
  CHECK_EQ_INT(mock_session_rx_count(W.m), 3);
  const mock_rx_msg *q1 = mock_session_rx(W.m, 0), *ack = mock_session_rx(W.m, 1),
                    *q2 = mock_session_rx(W.m, 2);
  CHECK_EQ_INT(q1->seqno, 1);
  CHECK_EQ_INT(q1->container_id, 0);
  CHECK_EQ_INT(rd32(ack->body), MTCI_ID_MSGS_ACK);
  CHECK_EQ_INT(ack->seqno, 2);
  CHECK_EQ_INT(q2->seqno, 3);
  CHECK(ack->container_id != 0 && ack->container_id == q2->container_id);
  CHECK_EQ_INT(W.c.content_sent, 2);
  world_free(&W);
}

/* ---- round trip, initConnection ------------------------------------------------------- */

/* Through an MTProxy, initConnection carries proxy:inputClientProxy
 * (flags.0) right after lang_code, before the query. */
TEST(init_connection_proxy) {
  world W;
  mtci_session_config c;
  client_cfg(&W, &c);
  c.init_proxy_address = "proxy.example.org";
  c.init_proxy_port = 8443;
  CHECK_EQ_INT(world_init(&W, &c, NULL), 0);
  /* the prefix's tail, byte for byte: ... lang_code | 3f8b5875 | 11 "proxy.example.org" 00 00 | fb200000 */
  static const uint8_t tail[] = {0x3f, 0x8b, 0x58, 0x75, 0x11, 'p', 'r', 'o', 'x', 'y', '.', 'e', 'x',
                                 'a', 'm', 'p', 'l', 'e', '.', 'o', 'r', 'g', 0x00, 0x00, 0xfb, 0x20,
                                 0x00, 0x00};
  CHECK(W.c.init_prefix_len > sizeof tail);
  CHECK_MEM(W.c.init_prefix + W.c.init_prefix_len - sizeof tail, tail, sizeof tail);
  CHECK_EQ_INT(W.c.init_prefix[12] | W.c.init_prefix[13] << 8, 1); /* flags, after invokeWithLayer (8) and the initConnection id */
  CHECK_EQ_INT(invoke_echo(&W, 5, 6), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 5, 6));
  const mock_session_stats *st = mock_session_get_stats(W.m);
  CHECK_EQ_INT(st->wrapped_queries, 1);
  CHECK(strcmp(st->init_proxy_address, "proxy.example.org") == 0);
  CHECK_EQ_INT(st->init_proxy_port, 8443);
  world_free(&W);
  /* an address over 255 bytes is refused */
  static char longname[300];
  memset(longname, 'a', sizeof longname - 1);
  c.init_proxy_address = longname;
  mtci_session sess;
  CHECK_EQ_INT(mtci_session_init(&sess, &c, T0), MTC_ERR_INVALID_ARG);
}

TEST(rpc_round_trip) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 77, 0xabcdef01u), 0);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 1);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 77, 0xabcdef01u));
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  /* first contact: the server announced a new session */
  const rec_ev *ns = find_ev(&W, MTCI_SEV_NEW_SESSION);
  CHECK(ns && ns->code == 0);
  CHECK_EQ_INT(ns->msg_id, mock_session_rx(W.m, 0)->msg_id); /* first_msg_id = our query */
  const mock_session_stats *st = mock_session_get_stats(W.m);
  CHECK_EQ_INT(st->queries, 1);
  CHECK_EQ_INT(st->wrapped_queries, 1);
  CHECK_EQ_INT(st->init_api_id, 12345);
  CHECK_EQ_INT(st->init_layer, MTC_TL_LAYER);
  CHECK(strcmp(st->init_device_model, "dev") == 0);
  CHECK(st->init_proxy_address[0] == 0); /* direct: flags.0 clear */
  CHECK_EQ_INT(W.c.init_done, 1);
  /* a second query is not wrapped any more */
  CHECK_EQ_INT(invoke_echo(&W, 78, 5), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 78, 5));
  CHECK_EQ_INT(st->wrapped_queries, 1);
  CHECK_EQ_INT(W.last_query_wrapped, 0);
  world_free(&W);
}

TEST(init_connection_bytes) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 0x04030201u), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  CHECK_EQ_INT(mock_session_rx_count(W.m), 1);
  const mock_rx_msg *r = mock_session_rx(W.m, 0);
  /* invokeWithLayer#da9b0d0d layer:198 initConnection#c1cd5ea9 flags:0
   * api_id:12345 "dev" "1.0" "0.1" "en" "" "en" query:(11111111 01020304) */
  uint8_t want[128];
  size_t n = test_unhex("0d0d9bda c6000000"
                        "a95ecdc1 00000000 39300000"
                        "03646576 03312e30 03302e31 02656e00 00000000 02656e00"
                        "11111111 01020304",
                        want, sizeof want);
  CHECK_EQ_INT(r->len, n);
  CHECK_MEM(r->body, want, n);
  CHECK_EQ_INT(r->salt, SALT0);
  CHECK_EQ_INT(r->session_id, SID0);
  world_free(&W);
}

TEST(no_init_flag_and_config) {
  world W;
  mtci_session_config c;
  client_cfg(&W, &c);
  c.no_init_connection = 1;
  CHECK_EQ_INT(world_init(&W, &c, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 9), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 9));
  CHECK_EQ_INT(mock_session_get_stats(W.m)->wrapped_queries, 0);
  world_free(&W);
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  uint8_t b[8];
  wr32(b, M_ECHO);
  wr32(b + 4, 3);
  CHECK_EQ_INT(mtci_session_invoke(&W.c, b, 8, MTCI_SESSION_REQ_NO_INIT, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 3));
  CHECK_EQ_INT(mock_session_get_stats(W.m)->wrapped_queries, 0);
  world_free(&W);
}

TEST(connection_not_inited_rewrap) {
  world W;
  mock_session_config mc;
  mock_cfg(&W, &mc);
  mc.require_init = 1;
  CHECK_EQ_INT(world_init(&W, NULL, &mc), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 1));
  CHECK_EQ_INT(W.c.init_done, 1);
  /* the server restarts and forgets the session and its initConnection */
  mock_session_forget_sessions(W.m);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));
  CHECK_EQ_INT(W.counts[MTCI_SEV_RPC_ERROR], 0); /* CONNECTION_NOT_INITED stays inside */
  const mock_session_stats *st = mock_session_get_stats(W.m);
  CHECK_EQ_INT(st->queries, 3);          /* 1, 2 unwrapped (rejected), 2 wrapped */
  CHECK_EQ_INT(st->wrapped_queries, 2);
  CHECK_EQ_INT(W.counts[MTCI_SEV_NEW_SESSION], 2);
  world_free(&W);
}

/* ---- acks ------------------------------------------------------------------------------ */

TEST(acks_flush_and_piggyback) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  /* new_session_created and rpc_result wait to be acknowledged */
  CHECK_EQ_INT(W.c.n_acks, 2);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + MTCI_SESSION_ACK_FLUSH_MS);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, T0 + 999, &W.w, NULL), 0);
  W.now = T0 + 1000;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  CHECK_EQ_INT(W.c.n_acks, 0);
  const mock_rx_msg *r = mock_session_rx(W.m, 1);
  CHECK_EQ_INT(rd32(r->body), MTCI_ID_MSGS_ACK);
  CHECK_EQ_INT(rd32(r->body + 4), MTCI_TL_VECTOR_ID);
  CHECK_EQ_INT(rd32(r->body + 8), 2);
  CHECK_EQ_INT(r->len, 12 + 16);
  CHECK_EQ_INT(r->seqno % 2, 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->acks_in, 2);

  /* piggy-back: acks ride with the next query */
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(W.c.n_acks, 1); /* the new rpc_result */
  CHECK_EQ_INT(invoke_echo(&W, 3, 3), 0);
  size_t before = mock_session_rx_count(W.m);
  CHECK_EQ_INT(c2s(&W), 1);
  CHECK_EQ_INT(mock_session_rx_count(W.m), before + 2);
  CHECK_EQ_INT(rd32(mock_session_rx(W.m, before)->body), MTCI_ID_MSGS_ACK);
  CHECK_EQ_INT(rd32(mock_session_rx(W.m, before + 1)->body), M_ECHO);
  CHECK(mock_session_rx(W.m, before)->container_id != 0);

  /* more than 16 pending: sent at once */
  CHECK_EQ_INT(pump(&W), 0);
  for (int i = 0; i < 17; i++) {
    uint8_t upd[8];
    wr32(upd, 0x74ae4240u); /* updates#74ae4240 (opaque to the session) */
    wr32(upd + 4, (uint32_t)i);
    CHECK_EQ_INT(mock_session_push(W.m, W.now, SID0, upd, sizeof upd, 1), 0);
  }
  CHECK_EQ_INT(s2c(&W), 1);
  drain(&W);
  CHECK_EQ_INT(W.counts[MTCI_SEV_UPDATES], 17);
  CHECK(W.c.n_acks > 16);
  CHECK(mtci_session_next_deadline(&W.c) <= W.now);
  CHECK_EQ_INT(c2s(&W), 1);
  CHECK_EQ_INT(W.c.n_acks, 0);
  /* acks and pings go as service messages (even seq_no): the mock accepts
   * odd ones too (mtcute sends them so), and counts them */
  CHECK(mock_session_get_stats(W.m)->acks_in > 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->odd_service_msgs, 0);
  world_free(&W);
}

/* ---- containers ---------------------------------------------------------------------- */

TEST(containers) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  for (int i = 0; i < 3; i++) CHECK_EQ_INT(invoke_echo(&W, 10 + i, i), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->containers_in, 1);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->msgs_in, 3);
  CHECK_EQ_INT(s2c(&W), 1); /* answers come back in one container too */
  drain(&W);
  for (int i = 0; i < 3; i++) CHECK(echo_ok(&W, 10 + i, i));
  CHECK_EQ_INT(pump(&W), 0);

  /* a 40000-byte query goes alone, the small one after it */
  static uint8_t big[40000];
  memset(big, 0, sizeof big);
  wr32(big, 0x66666666u);
  for (size_t i = 4; i < sizeof big; i++) big[i] = (uint8_t)(i * 131 + (i >> 7));
  CHECK_EQ_INT(mtci_session_invoke(&W.c, big, sizeof big, MTCI_SESSION_REQ_NO_GZIP, 20), 0);
  CHECK_EQ_INT(invoke_echo(&W, 21, 21), 0);
  size_t before = mock_session_rx_count(W.m);
  CHECK_EQ_INT(c2s(&W), 3); /* acks alone (do not fit with it), big alone, then the echo */
  size_t big_at = before;
  while (big_at < mock_session_rx_count(W.m) && mock_session_rx(W.m, big_at)->len != sizeof big)
    big_at++;
  CHECK(big_at < mock_session_rx_count(W.m));
  CHECK_EQ_INT(mock_session_rx(W.m, big_at)->container_id, 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_RESULT, 20), 1);
  CHECK(echo_ok(&W, 21, 21));

  /* 1100 tiny queries: containers of at most 1020 messages and 32 KiB */
  for (int i = 0; i < 1100; i++) CHECK_EQ_INT(invoke_id(&W, 1000 + i, 0x77777777u), 0);
  before = mock_session_rx_count(W.m);
  CHECK_EQ_INT(c2s(&W), 2);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_msgs[64], 0);
  unsigned results_before = W.counts[MTCI_SEV_RESULT];
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(W.counts[MTCI_SEV_RESULT] - results_before, 1100);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  CHECK(W.c.stats.containers_out >= 3);
  world_free(&W);
}

TEST(container_limits_exact) {
  /* the first container carries exactly 1020 messages */
  world W;
  mtci_session_config c;
  client_cfg(&W, &c);
  c.no_init_connection = 1;
  CHECK_EQ_INT(world_init(&W, &c, NULL), 0);
  for (int i = 0; i < 1030; i++) CHECK_EQ_INT(invoke_id(&W, 1 + i, 0x77777777u), 0);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 1);
  CHECK_EQ_INT(mock_session_feed(W.m, W.now, mtci_tl_writer_data(&W.w), W.w.len), 0);
  CHECK_EQ_INT(mock_session_rx_count(W.m), MTCI_TL_CONTAINER_MAX_MSGS);
  /* 1020 * (16 + 4) + 8 bytes of container, plus header and padding */
  CHECK(W.w.len <= 24 + 32 + 8 + 1020 * 20 + 27);
  world_free(&W);
}

/* ---- rpc_error, gzip ------------------------------------------------------------------ */

TEST(rpc_error_as_data) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_id(&W, 5, M_ERROR), 0);
  CHECK_EQ_INT(pump(&W), 0);
  const rec_ev *e = find_ev(&W, MTCI_SEV_RPC_ERROR);
  CHECK(e != NULL);
  CHECK_EQ_INT(e->token, 5);
  CHECK_EQ_INT(e->code, 420);
  CHECK_EQ_INT(e->len, 13);
  CHECK_MEM(e->data, "FLOOD_WAIT_30", 14); /* NUL-terminated */
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  CHECK_EQ_INT(W.c.init_done, 1); /* any answer to a wrapped query confirms init */
  world_free(&W);
}

TEST(gzip_both_ways) {
  world W;
  mock_session_config mc;
  mock_cfg(&W, &mc);
  mc.gzip_over = 1024;
  CHECK_EQ_INT(world_init(&W, NULL, &mc), 0);
  W.big_answer = 60000;
  /* an 8008-byte compressible query */
  static uint8_t q[8008];
  memset(q, 0, sizeof q);
  wr32(q, M_ECHO);
  wr32(q + 4, 0xfeedbeefu);
  CHECK_EQ_INT(mtci_session_invoke(&W.c, q, sizeof q, 0, 1), 0);
  CHECK(W.c.n_reqs == 1 && W.c.reqs[0]->len < 200); /* stored packed */
  CHECK_EQ_INT(rd32(W.c.reqs[0]->body), MTCI_TL_GZIP_PACKED_ID);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->gzipped_queries, 1);
  CHECK_EQ_INT(W.last_query_len, sizeof q); /* inflated by the server */
  const rec_ev *e = find_ev(&W, MTCI_SEV_RESULT);
  CHECK(e != NULL);
  CHECK_EQ_INT(e->len, 4 + 8004 + 60000);
  CHECK_EQ_INT(rd32(e->data), R_ECHO);
  CHECK_EQ_INT(rd32(e->data + 4), 0xfeedbeefu);
  /* a small query is not packed; NO_GZIP is honoured */
  CHECK_EQ_INT(mtci_session_invoke(&W.c, q, sizeof q, MTCI_SESSION_REQ_NO_GZIP, 2), 0);
  CHECK_EQ_INT(W.c.reqs[0]->len, sizeof q);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->gzipped_queries, 1);
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_RESULT, 2), 1);
  /* file parts (upload.saveFilePart, upload.saveBigFilePart) are never
   * packed, however compressible: stored as given */
  static const uint32_t parts[2] = {0xb304a621u, 0xde7b673du};
  for (int k = 0; k < 2; k++) {
    wr32(q, parts[k]);
    CHECK_EQ_INT(mtci_session_invoke(&W.c, q, sizeof q, 0, 10 + (uint64_t)k), 0);
    CHECK_EQ_INT(W.c.reqs[W.c.n_reqs - 1]->len, sizeof q);
    CHECK_EQ_INT(rd32(W.c.reqs[W.c.n_reqs - 1]->body), parts[k]);
    CHECK_EQ_INT(mtci_session_cancel(&W.c, 10 + (uint64_t)k), 0);
  }
  world_free(&W);

  /* the inflate cap turns an oversized answer into a FAILED event */
  mtci_session_config c;
  client_cfg(&W, &c);
  c.gzip_cap = 4096;
  CHECK_EQ_INT(world_init(&W, &c, &mc), 0);
  W.big_answer = 60000;
  CHECK_EQ_INT(invoke_echo(&W, 3, 3), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_RESULT, 3), 0);
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_FAILED, 3), 1);
  CHECK_EQ_INT(find_ev(&W, MTCI_SEV_FAILED)->code, MTC_ERR_GZIP);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  world_free(&W);
}

/* ---- salts, time, sessions ------------------------------------------------------------- */

TEST(bad_server_salt_resend) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  mock_session_set_faults(W.m, MOCK_SESS_BAD_SALT_ONCE);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 1));
  const mock_session_stats *st = mock_session_get_stats(W.m);
  CHECK_EQ_INT(st->bad_server_salts, 1);
  CHECK_EQ_INT(st->queries, 1); /* the first send was never processed */
  const rec_ev *e = find_ev(&W, MTCI_SEV_SALT_UPDATED);
  CHECK(e && e->value == mock_session_salt(W.m));
  CHECK_EQ_INT(W.c.salt, mock_session_salt(W.m));
  CHECK(W.c.salt != SALT0);
  /* the resend used a new msg_id */
  size_t n = mock_session_rx_count(W.m);
  CHECK(n >= 2);
  CHECK(mock_session_rx(W.m, n - 1)->msg_id != mock_session_rx(W.m, 0)->msg_id);
  world_free(&W);
}

TEST(bad_msg_16_time_fixed) {
  world W;
  mock_session_config mc;
  mock_cfg(&W, &mc);
  mc.clock_offset_ms = 400000; /* the server is 400 s ahead: our msg_ids are too low */
  CHECK_EQ_INT(world_init(&W, NULL, &mc), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 1));
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_msgs[16], 1);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->queries, 1);
  const rec_ev *e = find_ev(&W, MTCI_SEV_TIME_FIXED);
  CHECK(e != NULL);
  CHECK(e->value >= 400000 && e->value < 401000);
  CHECK(W.c.time_offset_ms >= 400000 && W.c.time_offset_ms < 401000);
  CHECK_EQ_INT(W.c.session_id, SID0); /* same session */
  world_free(&W);
}

TEST(bad_msg_17_time_fixed_new_session) {
  world W;
  mock_session_config mc;
  mock_cfg(&W, &mc);
  mc.clock_offset_ms = -60000; /* the server is 60 s behind: our msg_ids are too high */
  CHECK_EQ_INT(world_init(&W, NULL, &mc), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 1));
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_msgs[17], 1);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->queries, 1);
  const rec_ev *e = find_ev(&W, MTCI_SEV_TIME_FIXED);
  CHECK(e && e->value <= -59000 && e->value > -61000);
  CHECK(W.c.session_id != SID0);
  unsigned local_new = 0;
  for (size_t i = 0; i < W.n_ev; i++)
    local_new += W.ev[i].type == MTCI_SEV_NEW_SESSION && W.ev[i].code == 1;
  CHECK_EQ_INT(local_new, 1);
  world_free(&W);
}

TEST(bad_msg_codes_new_session) {
  static const int codes[] = {32, 33, 34, 35, 18, 19, 64};
  for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
    world W;
    CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
    CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
    CHECK_EQ_INT(pump(&W), 0);
    int64_t sid = W.c.session_id;
    mock_session_force_bad_msg(W.m, codes[k], 1);
    CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
    CHECK_EQ_INT(pump(&W), 0);
    CHECK(echo_ok(&W, 2, 2));
    CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_msgs[codes[k]], 1);
    CHECK(W.c.session_id != sid);
    CHECK_EQ_INT(mock_session_get_stats(W.m)->new_sessions, 2);
    CHECK_EQ_INT(mock_session_get_stats(W.m)->queries, 2);
    /* the new session starts wrapped again and numbered from 1 */
    CHECK_EQ_INT(mock_session_get_stats(W.m)->wrapped_queries, 2);
    world_free(&W);
  }
}

TEST(bad_msg_20_48_same_session) {
  static const int codes[] = {20, 48};
  for (size_t k = 0; k < 2; k++) {
    world W;
    CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
    CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
    CHECK_EQ_INT(pump(&W), 0);
    mock_session_force_bad_msg(W.m, codes[k], 1);
    CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
    CHECK_EQ_INT(pump(&W), 0);
    CHECK(echo_ok(&W, 2, 2));
    CHECK_EQ_INT(W.c.session_id, SID0);
    CHECK_EQ_INT(mock_session_get_stats(W.m)->new_sessions, 1);
    world_free(&W);
  }
}

TEST(unknown_bad_msg_code) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mock_session_force_bad_msg(W.m, 99, 1);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));
  const rec_ev *e = find_ev(&W, MTCI_SEV_NEED_RECONNECT);
  CHECK(e && e->code == MTC_ERR_SESSION_BAD_MSG && e->value == 99);
  world_free(&W);
}

TEST(salt_rotation_previous_accepted) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mock_session_rotate_salt(W.m, 0x0badc0ffeeLL);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));
  CHECK_EQ_INT(W.c.salt, SALT0); /* the previous salt is still good */
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_server_salts, 0);
  mock_session_rotate_salt(W.m, 0x0badc0ffefLL); /* now SALT0 is too old */
  CHECK_EQ_INT(invoke_echo(&W, 3, 3), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 3, 3));
  CHECK_EQ_INT(W.c.salt, 0x0badc0ffefLL);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_server_salts, 1);
  world_free(&W);
}

TEST(dropped_answer_recovered_by_reconnect) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mock_session_set_faults(W.m, MOCK_SESS_DROP_ANSWER);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_RESULT, 2), 0);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 1);
  /* the probe is answered (the link lives), the query stays pending */
  W.now = mtci_session_next_deadline(&W.c);
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->pings, 1);
  CHECK_EQ_INT(W.counts[MTCI_SEV_DEAD], 0);
  /* the owner gives up on the connection; the new one gets the answer */
  W.now += 100;
  CHECK_EQ_INT(mtci_session_on_reconnect(&W.c, W.now), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  world_free(&W);
}

TEST(resend_limit) {
  /* a server that rejects the same request forever: it fails, no loop */
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  mock_session_force_bad_msg(W.m, 20, 1000);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_msgs[20], MTCI_SESSION_MAX_RESENDS + 1);
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_FAILED, 2), 1);
  const rec_ev *e = find_ev(&W, MTCI_SEV_FAILED);
  CHECK_EQ_INT(e->code, MTC_ERR_SESSION_RESEND_LIMIT);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  world_free(&W);
}

TEST(new_session_created_resends_older) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(W.counts[MTCI_SEV_NEW_SESSION], 1);
  /* A is sent, its answer is lost in a server restart */
  mock_session_set_faults(W.m, MOCK_SESS_HOLD_ANSWERS);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_discard_held(W.m), 1);
  mock_session_set_faults(W.m, 0);
  mock_session_forget_sessions(W.m);
  /* B reaches the restarted server: new_session_created(first_msg_id = B)
   * makes the client resend A, whose msg_id is lower */
  W.now += 10;
  CHECK_EQ_INT(invoke_echo(&W, 3, 3), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));
  CHECK(echo_ok(&W, 3, 3));
  CHECK_EQ_INT(W.counts[MTCI_SEV_NEW_SESSION], 2);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  world_free(&W);
}

/* A world whose client prefetches future salts (no keepalive pings). */
static int salts_world_init(world *W) {
  mtci_session_config c;
  client_cfg(W, &c);
  c.no_future_salts = 0;
  c.no_keepalive = 1;
  return world_init(W, &c, NULL);
}

TEST(future_salts) {
  world W;
  CHECK_EQ_INT(salts_world_init(&W), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 1));
  CHECK_EQ_INT(mock_session_get_stats(W.m)->future_salts_req, 1);
  /* mock: salt i valid from now - 1800 + 1800 i: #0 (the current) and #1
   * (valid from now) are used up, 30 remain */
  CHECK_EQ_INT(W.c.n_salts, MTCI_SESSION_FUTURE_SALTS - 2);
  int64_t next = W.c.salts[0].salt;
  CHECK_EQ_INT(W.c.salts[0].valid_since, T0 / 1000 + 1800);
  CHECK(W.c.salt != SALT0);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  /* half an hour later the next one takes over, and the server accepts it */
  W.now = T0 + 1800 * 1000;
  CHECK(mtci_session_next_deadline(&W.c) <= W.now);
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(W.c.salt, next);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_server_salts, 0);
  CHECK_EQ_INT(mock_session_rx(W.m, mock_session_rx_count(W.m) - 1)->salt, next);
  world_free(&W);
}

/* Time moves in 1 s steps to `until`; each step runs the timers and pumps. */
static int run_until(world *W, int64_t until) {
  for (int i = 0; i < 1000 && W->now < until; i++) {
    W->now = W->now + 1000 < until ? W->now + 1000 : until;
    if (mtci_session_next_deadline(&W->c) <= W->now) {
      int rc = mtci_session_on_deadline(&W->c, W->now);
      if (rc) return rc;
    }
    int rc = pump(W);
    if (rc) return rc;
  }
  return W->now == until ? 0 : MTC_ERR_INTERNAL;
}

TEST(internal_request_timeout) {
  world W;
  CHECK_EQ_INT(salts_world_init(&W), 0);
  /* the server acknowledges get_future_salts and never answers it */
  mock_session_set_faults(W.m, MOCK_SESS_NO_SALTS);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 1));
  CHECK_EQ_INT(mock_session_get_stats(W.m)->future_salts_req, 1);
  CHECK(W.c.salts_requested);
  /* probes keep the connection alive; the request (sent at T0) is kept 30 s */
  CHECK_EQ_INT(run_until(&W, T0 + MTCI_SESS_INTERNAL_TIMEOUT_MS - 1), 0);
  CHECK_EQ_INT(W.counts[MTCI_SEV_DEAD], 0);
  CHECK(W.c.salts_requested);
  CHECK_EQ_INT(W.c.n_reqs, 1);
  CHECK_EQ_INT(W.c.stats.internal_timeouts, 0);
  CHECK(mtci_session_next_deadline(&W.c) <= T0 + MTCI_SESS_INTERNAL_TIMEOUT_MS);
  CHECK_EQ_INT(run_until(&W, T0 + MTCI_SESS_INTERNAL_TIMEOUT_MS), 0);
  CHECK_EQ_INT(W.c.stats.internal_timeouts, 1);
  CHECK(!W.c.salts_requested);
  CHECK_EQ_INT(W.c.n_reqs, 0);
  CHECK_EQ_INT(W.c.n_salts, 0);
  /* asked again a minute later, and this time answered */
  mock_session_set_faults(W.m, 0);
  int64_t again = T0 + MTCI_SESS_INTERNAL_TIMEOUT_MS + MTCI_SESS_SALTS_RETRY_MS;
  CHECK_EQ_INT(run_until(&W, again - 1), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->future_salts_req, 1);
  CHECK_EQ_INT(run_until(&W, again), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->future_salts_req, 2);
  CHECK(!W.c.salts_requested);
  CHECK(W.c.n_salts > 0);
  CHECK_EQ_INT(W.c.stats.internal_timeouts, 1);
  CHECK_EQ_INT(W.counts[MTCI_SEV_DEAD], 0);
  world_free(&W);
}

/* ---- duplicates, replay, tampering, window ---------------------------------------------- */

TEST(duplicate_server_message_dropped) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mock_session_set_faults(W.m, MOCK_SESS_DUP_ANSWER);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  /* the answer, then its copy with the same msg_id in a packet of its own */
  CHECK_EQ_INT(s2c(&W), 2);
  drain(&W);
  CHECK(echo_ok(&W, 2, 2));
  CHECK_EQ_INT(W.c.stats.ignored_packets, 1);
  CHECK_EQ_INT(mtci_session_last_ignored(&W.c), MTC_ERR_SESSION_DUPLICATE);

  /* a duplicate inside a container is skipped, the rest is processed */
  int64_t seen_id = W.ev[W.n_ev - 1].msg_id; /* the rpc_result's msg_id */
  uint8_t body[8 + 2 * (16 + 8)], pkt[256];
  wr32(body, MTCI_TL_MSG_CONTAINER_ID);
  wr32(body + 4, 2);
  wr64(body + 8, seen_id);
  wr32(body + 16, 3);
  wr32(body + 20, 8);
  wr32(body + 24, 0x74ae4240u);
  wr32(body + 28, 1);
  int64_t fresh = (int64_t)((uint64_t)(T0 / 1000) << 32 | 0x7ffff001u);
  wr64(body + 32, fresh);
  wr32(body + 40, 5);
  wr32(body + 44, 8);
  wr32(body + 48, 0x74ae4240u);
  wr32(body + 52, 2);
  uint8_t key[256];
  test_key(key);
  size_t n = craft(pkt, sizeof pkt, key, SALT0, SID0, fresh + 2, 6, sizeof body, body,
                   sizeof body, 24);
  CHECK(n > 0);
  unsigned upd = W.counts[MTCI_SEV_UPDATES];
  uint64_t dups = W.c.stats.dup_msgs;
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), 0);
  drain(&W);
  CHECK_EQ_INT(W.counts[MTCI_SEV_UPDATES] - upd, 1);
  CHECK_EQ_INT(W.ev[W.n_ev - 1].data[4], 2);
  CHECK_EQ_INT(W.c.stats.dup_msgs - dups, 1);
  world_free(&W);
}

TEST(replay_and_tamper_rejected) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mock_session_pop(W.m, W.now, &W.w), 1);
  static uint8_t pkt[4096], t[4096];
  size_t len = W.w.len;
  CHECK(len <= sizeof pkt);
  memcpy(pkt, mtci_tl_writer_data(&W.w), len);

  /* a flipped bit anywhere: auth_key_id, msg_key, ciphertext */
  snap a = take_snap(&W.c);
  for (size_t i = 0; i < len; i++) {
    memcpy(t, pkt, len);
    t[i] ^= (uint8_t)(1u << (i % 8));
    int rc = mtci_session_feed_packet(&W.c, W.now, t, len);
    CHECK_EQ_INT(rc, i < 8 ? MTC_ERR_SESSION_KEY_ID : MTC_ERR_SESSION_MSG_KEY);
    snap b = take_snap(&W.c);
    CHECK(snap_eq(&a, &b));
  }
  /* lengths */
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, len - 1), MTC_ERR_SESSION_LENGTH);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, len - 16), MTC_ERR_SESSION_MSG_KEY);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, 24 + 32), MTC_ERR_SESSION_LENGTH);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, NULL, 0), MTC_ERR_SESSION_LENGTH);
  snap b = take_snap(&W.c);
  CHECK(snap_eq(&a, &b));
  drain(&W);
  CHECK_EQ_INT(W.n_ev, 0);

  /* the genuine packet still works: nothing above touched the state */
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, len), 0);
  drain(&W);
  CHECK(echo_ok(&W, 1, 1));
  /* and its replay is dropped */
  size_t nev = W.n_ev;
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, len), MTCI_SESSION_IGNORED);
  CHECK_EQ_INT(mtci_session_last_ignored(&W.c), MTC_ERR_SESSION_DUPLICATE);
  drain(&W);
  CHECK_EQ_INT(W.n_ev, nev);
  world_free(&W);
}

TEST(inbound_checks_crafted) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  uint8_t key[256], body[12], pkt[2048];
  test_key(key);
  wr32(body, 0x74ae4240u);
  wr32(body + 4, 1);
  wr32(body + 8, 2);
  int64_t sec = T0 / 1000;
  int64_t id = (int64_t)((uint64_t)sec << 32 | 0x1001u);
  size_t n;
  /* padding 4 (< 12) and 1028 (> 1024); a length not % 4; a length beyond the data */
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, id, 1, 12, body, 12, 4);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), MTC_ERR_SESSION_PADDING);
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, id, 1, 12, body, 12, 1028);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), MTC_ERR_SESSION_PADDING);
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, id, 1, 10, body, 12, 20);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), MTC_ERR_SESSION_PADDING);
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, id, 1, 100, body, 12, 20);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), MTC_ERR_SESSION_PADDING);
  /* even msg_id */
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, id + 1, 1, 12, body, 12, 20);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), MTC_ERR_SESSION_MSG_ID);
  /* 301 s in the past: rejected while the time is synced */
  int64_t old = (int64_t)((uint64_t)(sec - 301) << 32 | 0x1001u);
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, old, 1, 12, body, 12, 20);
  snap a = take_snap(&W.c);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), MTC_ERR_SESSION_MSG_TIME);
  snap b = take_snap(&W.c);
  CHECK(snap_eq(&a, &b));
  /* 299 s in the past is fine; so is a wrong salt (servers need not match it) */
  int64_t ok_old = (int64_t)((uint64_t)(sec - 299) << 32 | 0x1001u);
  n = craft(pkt, sizeof pkt, key, 0x5555, SID0, ok_old, 1, 12, body, 12, 20);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), 0);
  /* from 100 s in the future: accepted, our clock moves forward (tdlib) */
  int64_t fut = (int64_t)((uint64_t)(sec + 100) << 32 | 0x1001u);
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, fut, 1, 12, body, 12, 20);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), 0);
  CHECK(W.c.time_offset_ms >= 100000 && W.c.time_offset_ms < 101000);
  /* now the 299-s-old id is more than 300 s behind the new server time */
  int64_t old2 = (int64_t)((uint64_t)(sec - 250) << 32 | 0x1001u);
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, old2, 1, 12, body, 12, 20);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), MTC_ERR_SESSION_MSG_TIME);
  /* unsynced: anything goes, and the first packet sets the offset */
  mtci_session_resync_time(&W.c);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), 0);
  CHECK(W.c.time_offset_ms <= -250000 && W.c.time_offset_ms > -251000);
  drain(&W);
  CHECK_EQ_INT(W.counts[MTCI_SEV_UPDATES], 3);
  world_free(&W);
}

TEST(seen_window_bounded) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  uint8_t key[256], body[8], pkt[256];
  test_key(key);
  wr32(body, 0x74ae4240u);
  int64_t base = (int64_t)((uint64_t)(T0 / 1000) << 32);
  for (int i = 0; i < MTCI_SESSION_SEEN_WINDOW + 10; i++) {
    wr32(body + 4, (uint32_t)i);
    size_t n = craft(pkt, sizeof pkt, key, SALT0, SID0, base + 4 * (i + 1) + 1, 2, 8, body, 8, 24);
    CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), 0);
  }
  CHECK_EQ_INT(W.c.n_seen, MTCI_SESSION_SEEN_WINDOW);
  /* below the window: too old even though never seen */
  size_t n = craft(pkt, sizeof pkt, key, SALT0, SID0, base + 3, 2, 8, body, 8, 24);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), MTCI_SESSION_IGNORED);
  CHECK_EQ_INT(mtci_session_last_ignored(&W.c), MTC_ERR_SESSION_DUPLICATE);
  /* an unseen id inside the window is fine */
  n = craft(pkt, sizeof pkt, key, SALT0, SID0, base + 4 * (MTCI_SESSION_SEEN_WINDOW + 5) + 3, 2, 8,
            body, 8, 24);
  CHECK_EQ_INT(mtci_session_feed_packet(&W.c, W.now, pkt, n), 0);
  world_free(&W);
}

/* ---- reconnect ----------------------------------------------------------------------- */

static int reconnect_case(int late_first) {
  world W;
  if (world_init(&W, NULL, NULL)) return 0;
  int ok = 0;
  mock_session_set_faults(W.m, MOCK_SESS_HOLD_ANSWERS);
  for (int i = 0; i < 3; i++)
    if (invoke_echo(&W, 10 + i, 100 + i)) goto out;
  if (pump(&W)) goto out;
  if (W.counts[MTCI_SEV_RESULT] != 0) goto out;
  /* the connection breaks; a new one comes up */
  mock_session_drop_output(W.m);
  W.now += 2000;
  mtci_session_on_reconnect(&W.c, W.now);
  mock_session_set_faults(W.m, 0);
  if (late_first && mock_session_release(W.m) != 3) goto out; /* old answers first */
  if (pump(&W)) goto out;
  if (!late_first && mock_session_release(W.m) != 3) goto out; /* old answers last */
  if (pump(&W)) goto out;
  ok = 1;
  for (int i = 0; i < 3; i++) ok &= echo_ok(&W, 10 + i, 100 + i);
  ok &= W.counts[MTCI_SEV_RESULT] == 3;
  ok &= mtci_session_pending(&W.c) == 0;
  /* resent with new msg_ids, still wrapped (no wrapped query had an answer) */
  ok &= mock_session_get_stats(W.m)->queries == 6;
  ok &= mock_session_get_stats(W.m)->wrapped_queries == 6;
  if (!ok)
    fprintf(stderr, "  reconnect(%d): results %u pending %zu queries %u wrapped %u\n", late_first,
            W.counts[MTCI_SEV_RESULT], mtci_session_pending(&W.c),
            mock_session_get_stats(W.m)->queries, mock_session_get_stats(W.m)->wrapped_queries);
out:
  world_free(&W);
  return ok;
}

TEST(reconnect_pending_answered_once) {
  CHECK(reconnect_case(1));
  CHECK(reconnect_case(0));
}

/* ---- keepalive, probes ---------------------------------------------------------------- */

TEST(keepalive_ping_and_dead) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + 60000);
  W.now = T0 + 59999;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(c2s(&W), 0);
  W.now = T0 + 60000;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  const mock_session_stats *st = mock_session_get_stats(W.m);
  CHECK_EQ_INT(st->pings, 1);
  CHECK_EQ_INT(st->last_disconnect_delay, 75);
  const mock_rx_msg *r = mock_session_rx(W.m, 0);
  CHECK_EQ_INT(rd32(r->body), MTCI_ID_PING_DELAY_DISCONNECT);
  CHECK_EQ_INT(rd64(r->body + 4), r->msg_id); /* ping_id = its msg_id */
  CHECK_EQ_INT(r->seqno % 2, 0);
  /* no pong: dead 15 s after the ping */
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + 75000);
  W.now = T0 + 74999;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  drain(&W);
  CHECK_EQ_INT(W.counts[MTCI_SEV_DEAD], 0);
  W.now = T0 + 75000;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  drain(&W);
  CHECK_EQ_INT(W.counts[MTCI_SEV_DEAD], 1);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), INT64_MAX);
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now + 100000), 0);
  drain(&W);
  CHECK_EQ_INT(W.counts[MTCI_SEV_DEAD], 1); /* once per connection */
  world_free(&W);

  /* with the pong: alive, next ping 60 s later */
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  W.now = T0 + 60000;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  W.now += 120;
  CHECK_EQ_INT(s2c(&W), 1);
  CHECK_EQ_INT(W.c.ping_msg_id, 0);
  CHECK_EQ_INT(W.c.rtt_ms, 120);
  /* (new_session_created came along: its ack is due first) */
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), W.now + MTCI_SESSION_ACK_FLUSH_MS);
  W.now += MTCI_SESSION_ACK_FLUSH_MS;
  CHECK_EQ_INT(c2s(&W), 1);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + 120000);
  world_free(&W);
}

TEST(probe_when_pending) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_id(&W, 1, M_SILENT), 0);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 1); /* lost */
  /* silent connection with a request pending: probe at 5 s, dead at 10 s */
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + 5000);
  W.now = T0 + 5000;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  CHECK_EQ_INT(rd32(mock_session_rx(W.m, 0)->body), MTCI_ID_PING_DELAY_DISCONNECT);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + 10000);
  W.now = T0 + 10000;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  drain(&W);
  CHECK_EQ_INT(W.counts[MTCI_SEV_DEAD], 1);
  /* a new connection: the request goes again, liveness restarts */
  W.now += 500;
  CHECK_EQ_INT(mtci_session_on_reconnect(&W.c, W.now), 0);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 1);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), W.now + 5000);
  world_free(&W);

  /* configurable, and inbound bytes push the probe back */
  mtci_session_config c;
  client_cfg(&W, &c);
  c.probe_after_ms = 1500;
  c.dead_after_ms = 2500;
  CHECK_EQ_INT(world_init(&W, &c, NULL), 0);
  CHECK_EQ_INT(invoke_id(&W, 1, M_SILENT), 0);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 1);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + 1500);
  mtci_session_on_bytes_received(&W.c, T0 + 1000);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + 2500);
  W.now = T0 + 2500;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 1);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), T0 + 5000);
  world_free(&W);
}

/* ---- reconnect: acknowledged queries wait for the server's re-delivery ------------------ */

static mtci_session_req *req_of(const mtci_session *s, uint64_t token) {
  for (size_t i = 0; i < s->n_reqs; i++)
    if (s->reqs[i]->kind == REQ_API && s->reqs[i]->token == token) return s->reqs[i];
  return NULL;
}

/* M_ECHO queries with this tag the mock received (each a separate send). */
static unsigned echo_sends(const world *W, uint32_t tag) {
  unsigned n = 0;
  for (size_t i = 0; i < mock_session_rx_count(W->m); i++) {
    const mock_rx_msg *r = mock_session_rx(W->m, i);
    /* wrapped (invokeWithLayer(initConnection(...))) or not: the query ends the body */
    if (r->len >= 8 && rd32(r->body + r->len - 8) == M_ECHO && rd32(r->body + r->len - 4) == tag)
      n++;
  }
  return n;
}

/* The msg_ids of the last msgs_state_req the mock received (up to cap);
 * -1 if none. */
static int last_state_req(const world *W, int64_t *ids, int cap) {
  int n = -1;
  for (size_t i = 0; i < mock_session_rx_count(W->m); i++) {
    const mock_rx_msg *r = mock_session_rx(W->m, i);
    if (r->len < 12 || rd32(r->body) != MTCI_ID_MSGS_STATE_REQ) continue;
    if (rd32(r->body + 4) != MTCI_TL_VECTOR_ID || r->len != 12 + 8 * (size_t)rd32(r->body + 8))
      return -2;
    n = (int)rd32(r->body + 8);
    for (int k = 0; k < n && k < cap; k++) ids[k] = rd64(r->body + 12 + 8 * (size_t)k);
  }
  return n;
}

TEST(reconnect_acked_query_not_resent) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  mock_session_set_conn(W.m, 1);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 1, 1));
  /* query 2: acknowledged by the server, its answer lost with the connection */
  mock_session_set_faults(W.m, MOCK_SESS_LOSE_ANSWER);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mtci_session_req *r2 = req_of(&W.c, 2);
  CHECK(r2 != NULL && r2->sent && r2->acked);
  int64_t id2 = r2->msg_id;
  CHECK(id2 != 0);
  CHECK_EQ_INT(mock_session_unacked(W.m, SID0) >= 1, 1);
  /* query 3: sent, never acknowledged (its answer lost too) */
  mock_session_set_faults(W.m, MOCK_SESS_HOLD_ANSWERS);
  CHECK_EQ_INT(invoke_echo(&W, 3, 3), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_discard_held(W.m), 1);
  mock_session_set_faults(W.m, 0);
  mtci_session_req *r3 = req_of(&W.c, 3);
  CHECK(r3 != NULL && r3->sent && !r3->acked);
  CHECK_EQ_INT(W.handler_calls, 3);

  /* a new connection; the server does not re-send yet (untracked tag) */
  mock_session_drop_output(W.m);
  mock_session_set_conn(W.m, 0);
  W.now += 1000;
  int64_t t_rc = W.now;
  CHECK_EQ_INT(mtci_session_on_reconnect(&W.c, W.now), 0);
  CHECK(r2->sent && r2->kept && r2->msg_id == id2); /* not requeued: same msg_id */
  CHECK(!r3->sent && r3->msg_id == 0 && r3->n_old == 1); /* requeued at once */
  CHECK_EQ_INT(W.c.stats.kept, 1);
  CHECK_EQ_INT(W.c.keep_until, t_rc + MTCI_SESSION_KEPT_PROBES * MTCI_SESSION_PROBE_AFTER_MS);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c) <= W.c.keep_until, 1);
  CHECK_EQ_INT(pump(&W), 0);
  int64_t ids[4];
  CHECK_EQ_INT(last_state_req(&W, ids, 4), 1);
  CHECK_EQ_INT(ids[0], id2);
  CHECK_EQ_INT(W.c.stats.state_reqs, 1);
  CHECK_EQ_INT(echo_sends(&W, 2), 1); /* query 2 went out once */
  CHECK_EQ_INT(echo_sends(&W, 3), 2); /* query 3 twice, the second with a new id */
  CHECK(echo_ok(&W, 3, 3));
  CHECK(r2 == req_of(&W.c, 2)); /* msgs_state_info said 4 (received): still waiting */
  CHECK(!r2->kept && r2->msg_id == id2); /* confirmed: out of the safety net */
  CHECK_EQ_INT(W.c.stats.state_confirmed, 1);
  CHECK_EQ_INT(W.c.n_kept, 0);
  CHECK_EQ_INT(W.c.stats.state_resends, 0);
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_RESULT, 2), 0);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 1);
  /* a confirmed call may run long: past the safety net's bound it is still
   * not sent again (a resend would run it twice) */
  W.now = t_rc + MTCI_SESSION_KEPT_PROBES * MTCI_SESSION_PROBE_AFTER_MS + 1;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(echo_sends(&W, 2), 1);
  CHECK_EQ_INT(W.c.stats.late_resends, 0);

  /* the next packet on a tracked new connection: the server re-sends the
   * answer (same msg_id, by req_msg_id), delivered once */
  mock_session_set_conn(W.m, 2);
  CHECK_EQ_INT(invoke_echo(&W, 4, 4), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->redelivered >= 1, 1);
  CHECK(echo_ok(&W, 2, 2));
  CHECK(echo_ok(&W, 4, 4));
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  CHECK_EQ_INT(W.c.n_kept, 0);
  CHECK_EQ_INT(echo_sends(&W, 2), 1);
  CHECK_EQ_INT(W.handler_calls, 5); /* 1, 2, 3, 3 again, 4: query 2 ran once */
  /* a later re-delivery (another connection) is not delivered again */
  mock_session_set_conn(W.m, 3);
  CHECK_EQ_INT(invoke_echo(&W, 5, 5), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));
  CHECK(echo_ok(&W, 5, 5));
  CHECK_EQ_INT(W.c.stats.late_resends, 0);
  world_free(&W);
}

TEST(reconnect_state_info_not_received_resends) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  /* query 2 is built and lost before the server, yet an ack for it comes
   * (the server's view is what msgs_state_info reports) */
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 1);
  mtci_session_req *r2 = req_of(&W.c, 2);
  CHECK(r2 != NULL && r2->sent);
  int64_t id2 = r2->msg_id;
  uint8_t ack[20];
  wr32(ack, MTCI_ID_MSGS_ACK);
  wr32(ack + 4, MTCI_TL_VECTOR_ID);
  wr32(ack + 8, 1);
  wr64(ack + 12, id2);
  CHECK_EQ_INT(mock_session_push(W.m, W.now, SID0, ack, sizeof ack, 0), 0);
  CHECK_EQ_INT(s2c(&W) > 0, 1);
  drain(&W);
  CHECK(r2->acked);
  W.now += 500;
  CHECK_EQ_INT(mtci_session_on_reconnect(&W.c, W.now), 0);
  CHECK(r2->kept && r2->msg_id == id2);
  CHECK_EQ_INT(echo_sends(&W, 2), 0);
  /* msgs_state_req -> msgs_state_info with 2 (not received): resent, new id */
  CHECK_EQ_INT(pump(&W), 0);
  int64_t ids[2];
  CHECK_EQ_INT(last_state_req(&W, ids, 2), 1);
  CHECK_EQ_INT(ids[0], id2);
  CHECK_EQ_INT(W.c.stats.state_resends, 1);
  CHECK_EQ_INT(echo_sends(&W, 2), 1);
  int64_t id_new = 0;
  for (size_t i = 0; i < mock_session_rx_count(W.m); i++) {
    const mock_rx_msg *m = mock_session_rx(W.m, i);
    if (m->len >= 8 && rd32(m->body + m->len - 8) == M_ECHO && rd32(m->body + m->len - 4) == 2)
      id_new = m->msg_id;
  }
  CHECK(id_new != 0 && id_new != id2);
  CHECK(echo_ok(&W, 2, 2));
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  CHECK_EQ_INT(W.c.stats.late_resends, 0);

  /* a status byte per asked id; a stale or short msgs_state_info is ignored */
  uint8_t info[4 + 8 + 4];
  wr32(info, MTCI_ID_MSGS_STATE_INFO);
  wr64(info + 4, 0x1234);
  info[12] = 1;
  info[13] = 2;
  info[14] = info[15] = 0;
  CHECK_EQ_INT(mock_session_push(W.m, W.now, SID0, info, sizeof info, 1), 0);
  uint64_t bad0 = W.c.stats.bad_msgs;
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(W.c.stats.bad_msgs, bad0);
  CHECK_EQ_INT(W.c.stats.state_resends, 1);
  world_free(&W);
}

TEST(reconnect_safety_net_resends) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  /* acknowledged, answer lost; the server will never re-send it (no
   * connection tags) and its msgs_state_info never arrives */
  mock_session_set_faults(W.m, MOCK_SESS_LOSE_ANSWER);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mtci_session_req *r2 = req_of(&W.c, 2);
  CHECK(r2 != NULL && r2->acked);
  int64_t id2 = r2->msg_id;
  W.now += 100;
  int64_t t_rc = W.now;
  CHECK_EQ_INT(mtci_session_on_reconnect(&W.c, W.now), 0);
  CHECK_EQ_INT(c2s(&W) > 0, 1); /* the msgs_state_req goes out ... */
  mock_session_drop_output(W.m); /* ... its answer is lost */
  CHECK_EQ_INT(echo_sends(&W, 2), 1);
  int64_t until = t_rc + MTCI_SESSION_KEPT_PROBES * MTCI_SESSION_PROBE_AFTER_MS;
  /* the timers up to just before the bound: still waiting (probes answered) */
  for (int i = 0; i < 20; i++) {
    int64_t d = mtci_session_next_deadline(&W.c);
    if (d >= until) break;
    W.now = d > W.now ? d : W.now;
    CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
    CHECK_EQ_INT(pump(&W), 0);
  }
  CHECK(r2 == req_of(&W.c, 2) && r2->kept && r2->msg_id == id2);
  CHECK_EQ_INT(W.c.stats.late_resends, 0);
  CHECK_EQ_INT(mtci_session_next_deadline(&W.c), until);
  W.now = until;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(W.c.stats.late_resends, 1);
  CHECK_EQ_INT(W.c.n_kept, 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(echo_sends(&W, 2), 2);
  CHECK(echo_ok(&W, 2, 2));
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  world_free(&W);
}

/* The msgs_state_req of a reconnect is rejected by the server (bad_server_salt
 * for its container, which is likely after a long disconnect, or a
 * msg_resend_req for it): it must go out again, else the acknowledged query
 * it asks about is resent by the safety net and runs twice on the server. */
static int state_req_rejected_case(int mode) {
  world W;
  if (world_init(&W, NULL, NULL)) return 0;
  int ok = 0;
  mock_session_set_conn(W.m, 1);
  if (invoke_echo(&W, 1, 1) || pump(&W)) goto out;
  /* query 2: acknowledged, its answer lost with the connection */
  mock_session_set_faults(W.m, MOCK_SESS_LOSE_ANSWER);
  if (invoke_echo(&W, 2, 2) || pump(&W)) goto out;
  mtci_session_req *r2 = req_of(&W.c, 2);
  if (!r2 || !r2->acked) goto out;
  int64_t id2 = r2->msg_id;
  if (mode == 0) { /* query 3: sent, not acknowledged (resent with the state_req) */
    mock_session_set_faults(W.m, MOCK_SESS_HOLD_ANSWERS);
    if (invoke_echo(&W, 3, 3) || pump(&W)) goto out;
    if (mock_session_discard_held(W.m) != 1) goto out;
    mock_session_set_faults(W.m, 0);
  }
  mock_session_drop_output(W.m);
  mock_session_set_conn(W.m, 0);
  W.now += 1000;
  int64_t t_rc = W.now;
  if (mtci_session_on_reconnect(&W.c, W.now) || !r2->kept) goto out;
  /* the first packet of the new connection is lost on the way ... */
  mtci_tl_writer_reset(&W.w);
  if (mtci_session_build_packet(&W.c, W.now, &W.w, NULL) != 1) goto out;
  uint8_t key[256], pt[512];
  test_key(key);
  if (W.w.len - 24 > sizeof pt) goto out;
  open_client(key, mtci_tl_writer_data(&W.w), W.w.len, pt);
  int64_t outer = rd64(pt + 16);
  int is_cont = rd32(pt + 32) == MTCI_TL_MSG_CONTAINER_ID;
  if (W.c.chk_msg_id == 0 || is_cont != (mode == 0)) goto out;
  if (mode == 1 && outer != W.c.chk_msg_id) goto out;
  /* ... and the server complains about it */
  uint8_t b[28];
  size_t blen;
  if (mode == 0) { /* bad_server_salt for the container */
    wr32(b, MTCI_ID_BAD_SERVER_SALT);
    wr64(b + 4, outer);
    wr32(b + 12, (uint32_t)rd32(pt + 24));
    wr32(b + 16, 48);
    wr64(b + 20, SALT0);
    blen = 28;
  } else { /* msg_resend_req for the msgs_state_req */
    wr32(b, MTCI_ID_MSG_RESEND_REQ);
    wr32(b + 4, MTCI_TL_VECTOR_ID);
    wr32(b + 8, 1);
    wr64(b + 12, outer);
    blen = 20;
  }
  if (mock_session_push(W.m, W.now, SID0, b, blen, mode == 1)) goto out;
  if (pump(&W)) goto out;
  int64_t ids[2];
  ok = last_state_req(&W, ids, 2) == 1 && ids[0] == id2;
  ok &= W.c.stats.state_confirmed == 1 && W.c.n_kept == 0;
  if (mode == 0) ok &= echo_ok(&W, 3, 3);
  /* past the safety net's bound: query 2 was still sent only once */
  W.now = t_rc + MTCI_SESSION_KEPT_PROBES * MTCI_SESSION_PROBE_AFTER_MS + 1;
  if (mtci_session_on_deadline(&W.c, W.now) || pump(&W)) ok = 0;
  ok &= echo_sends(&W, 2) == 1 && W.c.stats.late_resends == 0;
  ok &= mtci_session_pending(&W.c) == 1 && req_of(&W.c, 2) == r2 && r2->msg_id == id2;
  if (!ok)
    fprintf(stderr, "  state_req_rejected(%d): confirmed %llu late %llu sends(2) %u kept %zu\n",
            mode, (unsigned long long)W.c.stats.state_confirmed,
            (unsigned long long)W.c.stats.late_resends, echo_sends(&W, 2), W.c.n_kept);
out:
  world_free(&W);
  return ok;
}

TEST(reconnect_state_req_rejected_sent_again) {
  int ok0 = state_req_rejected_case(0), ok1 = state_req_rejected_case(1);
  CHECK(ok0);
  CHECK(ok1);
}

/* msgs_state_info(req_msg_id = S, one status per id) as the server sends it */
static int push_state_info(world *W, int64_t req, uint8_t st0, uint8_t st1) {
  uint8_t b[4 + 8 + 4];
  wr32(b, MTCI_ID_MSGS_STATE_INFO);
  wr64(b + 4, req);
  b[12] = 2;
  b[13] = st0;
  b[14] = st1;
  b[15] = 0;
  return mock_session_push(W->m, W->now, SID0, b, sizeof b, 1);
}

TEST(reconnect_twice_stale_state_info_and_cancel) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  mock_session_set_conn(W.m, 1);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  /* queries 2 and 3: acknowledged, answers lost with the connection */
  for (uint32_t t = 2; t <= 3; t++) {
    mock_session_set_faults(W.m, MOCK_SESS_LOSE_ANSWER);
    CHECK_EQ_INT(invoke_echo(&W, t, t), 0);
    CHECK_EQ_INT(pump(&W), 0);
  }
  mtci_session_req *r2 = req_of(&W.c, 2), *r3 = req_of(&W.c, 3);
  CHECK(r2 && r3 && r2->acked && r3->acked);
  int64_t id2 = r2->msg_id;
  /* reconnect 1: the msgs_state_req goes out, its answer is lost */
  mock_session_drop_output(W.m);
  mock_session_set_conn(W.m, 0);
  W.now += 1000;
  CHECK_EQ_INT(mtci_session_on_reconnect(&W.c, W.now), 0);
  CHECK_EQ_INT(c2s(&W) > 0, 1);
  int64_t s1 = W.c.chk_msg_id;
  CHECK(s1 != 0);
  mock_session_drop_output(W.m);
  /* reconnect 2 while it is outstanding: asked again, the kept count stays */
  W.now += 1000;
  int64_t t_rc = W.now;
  CHECK_EQ_INT(mtci_session_on_reconnect(&W.c, W.now), 0);
  CHECK_EQ_INT(W.c.chk_msg_id, 0);
  CHECK_EQ_INT(W.c.n_kept, 2);
  CHECK_EQ_INT(W.c.stats.kept, 2);
  /* the first answer shows up late (re-sent by the server): stale, ignored */
  uint64_t bad0 = W.c.stats.bad_msgs;
  CHECK_EQ_INT(push_state_info(&W, s1, 2, 2), 0);
  CHECK_EQ_INT(s2c(&W), 1);
  CHECK(r2->kept && r3->kept && r2->msg_id == id2);
  CHECK_EQ_INT(W.c.stats.state_resends, 0);
  CHECK_EQ_INT(W.c.stats.bad_msgs, bad0);
  /* query 3 is cancelled while the second msgs_state_req is pending */
  CHECK_EQ_INT(mtci_session_cancel(&W.c, 3), 0);
  CHECK_EQ_INT(W.c.n_kept, 1);
  CHECK_EQ_INT(pump(&W), 0); /* msgs_state_info: 4, 4 */
  int64_t ids[2];
  CHECK_EQ_INT(last_state_req(&W, ids, 2), 2);
  CHECK_EQ_INT(ids[0], id2);
  CHECK_EQ_INT(W.c.stats.state_confirmed, 1);
  CHECK_EQ_INT(W.c.n_kept, 0);
  CHECK_EQ_INT(W.c.chk_msg_id, 0);
  CHECK(mtci_session_next_deadline(&W.c) > W.now); /* no timer left behind */
  /* the same answer once more: ignored, nothing resent */
  int64_t s2 = 0;
  for (size_t i = 0; i < mock_session_rx_count(W.m); i++)
    if (rd32(mock_session_rx(W.m, i)->body) == MTCI_ID_MSGS_STATE_REQ)
      s2 = mock_session_rx(W.m, i)->msg_id;
  CHECK(s2 != 0 && s2 != s1);
  CHECK_EQ_INT(push_state_info(&W, s2, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(W.c.stats.state_resends, 0);
  W.now = t_rc + MTCI_SESSION_KEPT_PROBES * MTCI_SESSION_PROBE_AFTER_MS + 1;
  CHECK_EQ_INT(mtci_session_on_deadline(&W.c, W.now), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(W.c.stats.late_resends, 0);
  CHECK_EQ_INT(echo_sends(&W, 2), 1);
  CHECK_EQ_INT(echo_sends(&W, 3), 1);
  /* a tracked connection: both answers re-delivered; the cancelled one is dropped */
  mock_session_set_conn(W.m, 2);
  CHECK_EQ_INT(invoke_echo(&W, 4, 4), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->redelivered >= 2, 1);
  CHECK(echo_ok(&W, 2, 2));
  CHECK(echo_ok(&W, 4, 4));
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_RESULT, 3), 0);
  CHECK_EQ_INT(W.counts[MTCI_SEV_RESULT], 3);
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  CHECK_EQ_INT(W.handler_calls, 4);
  world_free(&W);
}

/* An answer lost with the connection (later ones got through), re-sent by
 * the server under its msg_id when the session comes back more than the
 * window's 600 s later: below the duplicate window, but the answer of a
 * pending request, so it is taken (once) and acked, not dropped as a
 * duplicate (the query, confirmed by msgs_state_info, would wait forever). */
TEST(reconnect_old_answer_below_window_taken) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  mock_session_set_conn(W.m, 1);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mock_session_set_faults(W.m, MOCK_SESS_LOSE_ANSWER);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(invoke_echo(&W, 3, 3), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 3, 3));
  W.now += 11 * 60 * 1000;
  mock_session_set_conn(W.m, 2);
  CHECK_EQ_INT(mtci_session_on_reconnect(&W.c, W.now), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->redelivered, 1);
  CHECK(echo_ok(&W, 2, 2));
  CHECK_EQ_INT(mtci_session_pending(&W.c), 0);
  CHECK_EQ_INT(echo_sends(&W, 2), 1);
  W.now += MTCI_SESSION_ACK_FLUSH_MS;
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mock_session_unacked(W.m, SID0), 0); /* acked: not re-sent again */
  world_free(&W);
}

/* ---- the rest of the service messages -------------------------------------------------- */

TEST(state_req_detailed_info_resend) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  int64_t seen = W.ev[W.n_ev - 1].msg_id;
  /* msgs_state_req([seen, unseen-above]) -> msgs_state_info with 4, 3 */
  uint8_t req[4 + 8 + 16];
  wr32(req, MTCI_ID_MSGS_STATE_REQ);
  wr32(req + 4, MTCI_TL_VECTOR_ID);
  wr32(req + 8, 2);
  wr64(req + 12, seen);
  wr64(req + 20, seen + 4000);
  CHECK_EQ_INT(mock_session_push(W.m, W.now, SID0, req, sizeof req, 1), 0);
  size_t before = mock_session_rx_count(W.m);
  CHECK_EQ_INT(pump(&W), 0);
  int found = 0;
  for (size_t i = before; i < mock_session_rx_count(W.m); i++) {
    const mock_rx_msg *r = mock_session_rx(W.m, i);
    if (rd32(r->body) != MTCI_ID_MSGS_STATE_INFO) continue;
    found = 1;
    CHECK_EQ_INT(r->len, 16);
    CHECK_EQ_INT(r->body[12], 2);
    CHECK_EQ_INT(r->body[13], 4);
    CHECK_EQ_INT(r->body[14], 3);
  }
  CHECK(found);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_msgs[34] + mock_session_get_stats(W.m)->bad_msgs[35], 0);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->odd_service_msgs, 0);

  /* an answer the client never got: msg_new_detailed_info -> msg_resend_ans_req */
  mock_session_set_faults(W.m, MOCK_SESS_HOLD_ANSWERS);
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mock_session_set_faults(W.m, 0);
  CHECK_EQ_INT(mock_session_discard_held(W.m), 1);
  uint8_t info[4 + 8 + 4 + 4];
  wr32(info, MTCI_ID_MSG_NEW_DETAILED_INFO);
  wr64(info + 4, mock_session_last_answer_id(W.m));
  wr32(info + 12, 16);
  wr32(info + 16, 0);
  CHECK_EQ_INT(mock_session_push(W.m, W.now, SID0, info, sizeof info, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 2, 2));

  /* msg_resend_req for our pending query: sent again */
  mock_session_set_faults(W.m, MOCK_SESS_HOLD_ANSWERS);
  CHECK_EQ_INT(invoke_echo(&W, 3, 3), 0);
  CHECK_EQ_INT(pump(&W), 0);
  mock_session_set_faults(W.m, 0);
  mock_session_discard_held(W.m);
  int64_t qid = 0;
  for (size_t i = 0; i < mock_session_rx_count(W.m); i++)
    if (rd32(mock_session_rx(W.m, i)->body) == M_ECHO) qid = mock_session_rx(W.m, i)->msg_id;
  uint8_t rr[20];
  wr32(rr, MTCI_ID_MSG_RESEND_REQ);
  wr32(rr + 4, MTCI_TL_VECTOR_ID);
  wr32(rr + 8, 1);
  wr64(rr + 12, qid);
  CHECK_EQ_INT(mock_session_push(W.m, W.now, SID0, rr, sizeof rr, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK(echo_ok(&W, 3, 3));

  /* msgs_ack marks a request acknowledged */
  mock_session_set_faults(W.m, 0);
  CHECK_EQ_INT(invoke_id(&W, 4, M_SILENT), 0);
  CHECK_EQ_INT(pump(&W), 0); /* the mock acks what it does not answer */
  CHECK_EQ_INT(W.c.n_reqs, 1);
  CHECK_EQ_INT(W.c.reqs[0]->acked, 1);
  CHECK_EQ_INT(mtci_session_cancel(&W.c, 4), 0);
  world_free(&W);
}

TEST(quick_ack_token) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 42, 1), 0);
  uint32_t qa = 0;
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, &qa), 1);
  /* token = le32(SHA256(key[88:120] || plaintext)[0:4]) | 2^31, by hand */
  uint8_t key[256], pt[512], large[32];
  test_key(key);
  CHECK(W.w.len - 24 <= sizeof pt);
  size_t n = open_client(key, mtci_tl_writer_data(&W.w), W.w.len, pt);
  msg_key_by_hand(key, 0, pt, n, large);
  CHECK_MEM(large + 8, mtci_tl_writer_data(&W.w) + 8, 16); /* msg_key on the wire */
  CHECK_EQ_INT(qa, rd32(large) | 0x80000000u);
  /* the plaintext: our salt, session, a 12..27-byte padding */
  CHECK_EQ_INT(rd64(pt), SALT0);
  CHECK_EQ_INT(rd64(pt + 8), SID0);
  size_t pad = n - 32 - rd32(pt + 28);
  CHECK(pad >= 12 && pad <= 27);
  CHECK_EQ_INT(mtci_session_on_quick_ack(&W.c, qa ^ 1), 0);
  CHECK_EQ_INT(mtci_session_on_quick_ack(&W.c, qa), 1);
  drain(&W);
  CHECK_EQ_INT(count_ev(&W, MTCI_SEV_QUICK_ACK, 42), 1);
  world_free(&W);
}

TEST(size_buckets) {
  world W;
  mtci_session_config c;
  client_cfg(&W, &c);
  c.size_buckets = 1;
  CHECK_EQ_INT(world_init(&W, &c, NULL), 0);
  static const size_t sizes[] = {8, 100, 300, 900, 2000, 5000};
  static uint8_t b[5000];
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    memset(b, (int)k, sizeof b);
    wr32(b, 0x66666666u);
    CHECK_EQ_INT(mtci_session_invoke(&W.c, b, sizes[k], MTCI_SESSION_REQ_NO_GZIP, k + 1), 0);
    mtci_tl_writer_reset(&W.w);
    CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 1);
    size_t pl = W.w.len - 24;
    int okb = pl == 64 || pl == 128 || pl == 192 || pl == 256 || pl == 384 || pl == 512 ||
              pl == 768 || pl == 1024 || pl == 1280 || (pl > 1280 && (pl - 1280) % 448 == 0);
    CHECK(okb);
    CHECK_EQ_INT(mock_session_feed(W.m, W.now, mtci_tl_writer_data(&W.w), W.w.len), 0);
  }
  world_free(&W);
}

TEST(random_padding) {
  world W;
  mtci_session_config c;
  client_cfg(&W, &c);
  c.random_padding = 1;
  CHECK_EQ_INT(world_init(&W, &c, NULL), 0);
  uint8_t key[256], pt[2048];
  test_key(key);
  size_t min_pad = 9999, max_pad = 0;
  for (int i = 0; i < 64; i++) {
    CHECK_EQ_INT(invoke_echo(&W, 1 + i, i), 0);
    mtci_tl_writer_reset(&W.w);
    CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 1);
    CHECK(W.w.len - 24 <= sizeof pt);
    size_t n = open_client(key, mtci_tl_writer_data(&W.w), W.w.len, pt);
    size_t pad = n - 32 - rd32(pt + 28);
    CHECK(pad >= 12 && pad <= 12 + 255 + 15);
    if (pad < min_pad) min_pad = pad;
    if (pad > max_pad) max_pad = pad;
    CHECK_EQ_INT(mock_session_feed(W.m, W.now, mtci_tl_writer_data(&W.w), W.w.len), 0);
  }
  CHECK(max_pad - min_pad >= 128); /* it does vary */
  world_free(&W);
}

TEST(api_errors_and_cancel) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  uint8_t b[8] = {0};
  CHECK_EQ_INT(mtci_session_invoke(&W.c, b, 3, 0, 1), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_session_invoke(&W.c, NULL, 8, 0, 1), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_session_invoke(&W.c, b, 0, 0, 1), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 2), MTC_ERR_SESSION_DUP_TOKEN);
  CHECK_EQ_INT(mtci_session_cancel(&W.c, 9), MTC_ERR_SESSION_NO_REQUEST);
  /* cancelled before sending: nothing goes out */
  CHECK_EQ_INT(mtci_session_cancel(&W.c, 1), 0);
  mtci_tl_writer_reset(&W.w);
  CHECK_EQ_INT(mtci_session_build_packet(&W.c, W.now, &W.w, NULL), 0);
  /* cancelled after sending: the answer is dropped */
  CHECK_EQ_INT(invoke_echo(&W, 2, 2), 0);
  CHECK_EQ_INT(c2s(&W), 1);
  CHECK_EQ_INT(mtci_session_cancel(&W.c, 2), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(W.counts[MTCI_SEV_RESULT], 0);
  world_free(&W);

  mtci_session_config c;
  client_cfg(&W, &c);
  c.rnd = NULL;
  mtci_session s;
  CHECK_EQ_INT(mtci_session_init(&s, &c, T0), MTC_ERR_INVALID_ARG);
  mtci_session_free(&s);
  client_cfg(&W, &c);
  char longs[300];
  memset(longs, 'a', sizeof longs - 1);
  longs[sizeof longs - 1] = 0;
  c.device_model = longs;
  CHECK_EQ_INT(mtci_session_init(&s, &c, T0), MTC_ERR_INVALID_ARG);
  mtci_session_free(&s);
  /* session_id 0: drawn */
  client_cfg(&W, &c);
  c.session_id = 0;
  W.crng.s = 99;
  c.rnd_ud = &W.crng;
  CHECK_EQ_INT(mtci_session_init(&s, &c, T0), 0);
  CHECK(s.session_id != 0);
  mtci_session_free(&s);
}

TEST(destroy_session) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  CHECK_EQ_INT(invoke_echo(&W, 1, 1), 0);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(mtci_session_destroy_session(&W.c, 0x999), 0);
  CHECK_EQ_INT(W.c.n_reqs, 1);
  CHECK_EQ_INT(pump(&W), 0);
  CHECK_EQ_INT(W.c.n_reqs, 0); /* destroy_session_none matched it */
  world_free(&W);
}

/* ---- bodies built for their msg_id (invoke_built) ------------------------------------- */

/* Writes M_ECHO | msg_id | session_id: the echo carries what the body held. */
struct built_ud {
  mtci_session *s;
  unsigned calls;
  int64_t ids[4];
};
static int build_echo_id(void *ud, int64_t msg_id, mtci_tl_writer *out) {
  struct built_ud *b = ud;
  if (b->calls < 4) b->ids[b->calls] = msg_id;
  b->calls++;
  mtci_tl_write_u32(out, M_ECHO);
  mtci_tl_write_long(out, msg_id);
  mtci_tl_write_long(out, b->s->session_id);
  return 0;
}
static int build_wrong_len(void *ud, int64_t msg_id, mtci_tl_writer *out) {
  (void)ud;
  (void)msg_id;
  mtci_tl_write_u32(out, M_ECHO);
  return 0;
}

TEST(invoke_built_msg_id_in_body) {
  world W;
  CHECK_EQ_INT(world_init(&W, NULL, NULL), 0);
  struct built_ud b;
  memset(&b, 0, sizeof b);
  b.s = &W.c;
  CHECK_EQ_INT(mtci_session_invoke_built(&W.c, NULL, &b, 20, 0, 1), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_session_invoke_built(&W.c, build_echo_id, &b, 18, 0, 1), MTC_ERR_INVALID_ARG);
  mock_session_set_faults(W.m, MOCK_SESS_BAD_SALT_ONCE);
  CHECK_EQ_INT(mtci_session_invoke_built(&W.c, build_echo_id, &b, 20, 0, 9), 0);
  CHECK_EQ_INT(mtci_session_invoke_built(&W.c, build_echo_id, &b, 20, 0, 9),
               MTC_ERR_SESSION_DUP_TOKEN);
  CHECK_EQ_INT(b.calls, 0); /* built at send time only */
  CHECK_EQ_INT(pump(&W), 0);
  /* sent twice (bad_server_salt), built twice, each with its own msg_id */
  CHECK_EQ_INT(mock_session_get_stats(W.m)->bad_server_salts, 1);
  CHECK_EQ_INT(b.calls, 2);
  size_t n = mock_session_rx_count(W.m);
  CHECK(n >= 2);
  unsigned seen = 0;
  for (size_t i = 0; i < n; i++) {
    const mock_rx_msg *m = mock_session_rx(W.m, i);
    if (m->len != 20 || rd32(m->body) != M_ECHO) continue; /* not wrapped, not packed */
    CHECK_EQ_INT(rd64(m->body + 4), m->msg_id);
    CHECK_EQ_INT(rd64(m->body + 12), m->session_id);
    CHECK(m->msg_id == b.ids[0] || m->msg_id == b.ids[1]);
    seen++;
  }
  CHECK(seen >= 1); /* the mock records what it processed */
  CHECK(b.ids[0] != b.ids[1]);
  /* one answer, and it echoes the msg_id of the send that was processed */
  unsigned results = 0;
  for (size_t i = 0; i < W.n_ev; i++) {
    const rec_ev *e = &W.ev[i];
    if (e->type != MTCI_SEV_RESULT || e->token != 9) continue;
    results++;
    CHECK_EQ_INT(e->len, 20);
    CHECK_EQ_INT(rd32(e->data), R_ECHO);
    CHECK_EQ_INT(rd64(e->data + 4), b.ids[1]);
  }
  CHECK_EQ_INT(results, 1);
  CHECK_EQ_INT(mock_session_get_stats(W.m)->wrapped_queries, 0);
  /* a builder that writes another length: nothing goes out */
  CHECK_EQ_INT(mtci_session_invoke_built(&W.c, build_wrong_len, NULL, 20, 0, 10), 0);
  size_t before = mock_session_rx_count(W.m);
  CHECK_EQ_INT(c2s(&W), MTC_ERR_INTERNAL);
  CHECK_EQ_INT(mock_session_rx_count(W.m), before);
  CHECK_EQ_INT(mtci_session_cancel(&W.c, 10), 0);
  world_free(&W);
}

TEST_MAIN("session", CASE(grammers_server_vector), CASE(msg_id_rules), CASE(msg_ids_frozen_clock),
          CASE(seq_no_sequence), CASE(init_connection_proxy), CASE(rpc_round_trip), CASE(init_connection_bytes),
          CASE(no_init_flag_and_config), CASE(connection_not_inited_rewrap),
          CASE(acks_flush_and_piggyback), CASE(containers), CASE(container_limits_exact),
          CASE(rpc_error_as_data), CASE(gzip_both_ways), CASE(bad_server_salt_resend),
          CASE(bad_msg_16_time_fixed), CASE(bad_msg_17_time_fixed_new_session),
          CASE(bad_msg_codes_new_session), CASE(bad_msg_20_48_same_session), CASE(unknown_bad_msg_code),
          CASE(salt_rotation_previous_accepted), CASE(dropped_answer_recovered_by_reconnect),
          CASE(resend_limit),
          CASE(new_session_created_resends_older), CASE(future_salts),
          CASE(internal_request_timeout),
          CASE(duplicate_server_message_dropped), CASE(replay_and_tamper_rejected),
          CASE(inbound_checks_crafted), CASE(seen_window_bounded),
          CASE(reconnect_pending_answered_once), CASE(keepalive_ping_and_dead),
          CASE(probe_when_pending), CASE(reconnect_acked_query_not_resent),
          CASE(reconnect_state_info_not_received_resends), CASE(reconnect_safety_net_resends),
          CASE(reconnect_state_req_rejected_sent_again),
          CASE(reconnect_twice_stale_state_info_and_cancel), 
          CASE(reconnect_old_answer_below_window_taken),
          CASE(state_req_detailed_info_resend), CASE(quick_ack_token),
          CASE(size_buckets), CASE(random_padding), CASE(api_errors_and_cancel), CASE(destroy_session),
          CASE(invoke_built_msg_id_in_body))
