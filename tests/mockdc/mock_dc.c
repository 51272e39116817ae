/*
 * Mock DC cluster: listeners, per-connection transport pipeline, auth key
 * store, fault switches. TEST CODE (see mock_dc.h).
 *
 * One connection, bytes in:
 *
 *   [detect]   ef                 -> abridged      (the tag stays in the stream:
 *              ee ee ee ee        -> intermediate   the server codec checks it)
 *              dd dd dd dd        -> padded
 *              bytes 4..7 == 0    -> full          (seqno 0 of the first frame)
 *              else 64 bytes      -> obfuscated2 header; its tag picks the codec
 *   [obfs]     AES-256-CTR decrypt (server side, no secret)
 *   [codec]    frames; padded frames trimmed with mtci_padded_payload_len
 *   [frame]    auth_key_id 0 -> mock_auth (one per connection)
 *              known key     -> the key's mock_session -> mock_rpc
 *              unknown key   -> transport error -404, close
 *
 * Bytes out: payload -> codec frame -> obfs encrypt -> socket, or through
 * the per-connection delay queue (fault delay_ms), in order either way.
 * Answers produced while a connection is stalled are dropped before they
 * are framed, so the codec seqno and the CTR stream stay in step.
 */
#include "mock_dc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "mock_auth.h"
#include "mock_dc_int.h"
#include "mock_session.h"
#include "transport/codec.h"
#include "transport/obfuscated2.h"

#define GZIP_OVER 512      /* results above this go gzip_packed, as on the real DCs */
#define AUTH_OUT_CAP 2048  /* largest handshake answer (server_DH_params_ok ~ 650) */
#define ID_DH_GEN_OK 0x3bcbf734u
#define MAX_DELAYED (32u << 20) /* bytes held by the delay fault per connection */

enum { C_DETECT = 0, C_RUN, C_DEAD };

typedef struct outq {
  struct outq *next;
  int64_t due_ms;
  size_t len;
  uint8_t data[];
} outq;

struct mock_dconn {
  mock_dc *dc;
  mock_conn *mc;
  mock_dconn *next;
  int state;
  int obfuscated;
  mtci_obfs obfs;
  mtci_codec codec;
  mtci_codec_kind kind;
  mock_auth_server *auth;
  uint32_t frames;
  int flood;          /* answer -429 to the first frame */
  uint64_t pdd_timer; /* ping_delay_disconnect: close when it fires */
  outq *q_head, *q_tail;
  size_t q_bytes;
  uint64_t q_timer;
  uint8_t *rx;        /* scratch copy of the received bytes */
  size_t rx_cap;
  uint64_t serial;    /* unique per accepted connection (mock_session_set_conn) */
};

/* ---- small helpers ------------------------------------------------------------- */

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t skew_ms(const mock_dc *dc) {
  return (int64_t)dc->faults.clock_offset * 1000 + dc->faults.clock_offset_ms;
}

double mock_dc_now(const mock_dc *dc) { return wall_now() + (double)skew_ms(dc) / 1000.0; }

int mock_dc_random(mock_dc_cluster *cl, void *out, size_t len) {
  if (len == 0) return 0;
  int rc = cl->rnd(cl->rnd_ud, out, len);
  return rc == 0 ? 0 : (rc < 0 ? rc : MTC_ERR_RANDOM);
}

static int cl_rnd(void *ud, uint8_t *out, size_t len) {
  return mock_dc_random((mock_dc_cluster *)ud, out, len);
}

void mock_dc_logf(mock_dc *dc, const char *fmt, ...) {
  if (!dc->cl->cfg.log) return;
  char line[256];
  int k = snprintf(line, sizeof line, "dc%d: ", dc->id);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
  va_end(ap);
  dc->cl->cfg.log(dc->cl->cfg.log_ud, line);
}

static mock_dc *dc_of(mock_dc_cluster *c, int dc_id) {
  if (!c || dc_id < 1 || dc_id > c->n) return NULL;
  return &c->dcs[dc_id - 1];
}

/* ---- key store and session records -------------------------------------------- */

static void forget_key(mock_key *k) {
  mock_session_free(k->ms);
  mtci_zeroize(k, sizeof *k);
}

static mock_key *find_key_raw(mock_dc *dc, const uint8_t id[8]) {
  for (size_t i = 0; i < MOCK_DC_MAX_KEYS; i++) {
    mock_key *k = &dc->keys[i];
    if (k->used && memcmp(k->id, id, 8) == 0) return k;
  }
  return NULL;
}

static int expired(const mock_dc *dc, const mock_key *k) {
  return k->temp && k->expires_at && mock_dc_now(dc) > (double)k->expires_at;
}

/* Expired temp keys are not found (they are forgotten in on_encrypted, never
 * from inside a session's own processing). */
mock_key *mock_dc_find_key(mock_dc *dc, const uint8_t id[8]) {
  mock_key *k = find_key_raw(dc, id);
  return k && !expired(dc, k) ? k : NULL;
}

mock_key *mock_dc_auth_key(mock_dc *dc, mock_key *k) {
  if (!k) return NULL;
  if (!k->temp) return k;
  return k->bound ? mock_dc_find_key(dc, k->bound_perm_id) : NULL;
}

static int rpc_handler(void *ud, const mock_query *q, mtci_tl_writer *out);

static mock_key *store_key(mock_dc *dc, const mock_auth_result *res) {
  mock_key *slot = find_key_raw(dc, res->auth_key_id);
  if (slot) forget_key(slot);
  slot = NULL;
  for (size_t i = 0; i < MOCK_DC_MAX_KEYS && !slot; i++)
    if (!dc->keys[i].used) slot = &dc->keys[i];
  if (!slot) { /* evict the least recently used temp key, else any key */
    for (int pass = 0; pass < 2 && !slot; pass++) {
      for (size_t i = 0; i < MOCK_DC_MAX_KEYS; i++) {
        mock_key *k = &dc->keys[i];
        if (pass == 0 && !k->temp) continue;
        if (!slot || k->last_use < slot->last_use) slot = k;
      }
    }
    forget_key(slot);
  }
  mock_session_config sc;
  memset(&sc, 0, sizeof sc);
  memcpy(sc.auth_key, res->auth_key, sizeof sc.auth_key);
  sc.salt = res->server_salt;
  sc.clock_offset_ms = skew_ms(dc);
  sc.require_init = 0; /* mock_rpc decides, per session with the key's layer as fallback */
  sc.gzip_over = GZIP_OVER;
  sc.handler = rpc_handler;
  sc.handler_ud = slot;
  sc.rnd = cl_rnd;
  sc.rnd_ud = dc->cl;
  mock_session *ms = NULL;
  int rc = mock_session_new(&ms, &sc);
  mtci_zeroize(&sc, sizeof sc);
  if (rc) return NULL;
  memset(slot, 0, sizeof *slot);
  slot->used = 1;
  slot->dc = dc;
  slot->ms = ms;
  memcpy(slot->key, res->auth_key, sizeof slot->key);
  memcpy(slot->id, res->auth_key_id, 8);
  slot->temp = res->temp;
  slot->expires_at = res->temp ? res->expires_at : 0;
  slot->last_use = ++dc->cl->use_clock;
  return slot;
}

/* A restored key store (examples/: the demo persists the mock's keys). */
mock_key *mock_dc_store_key(mock_dc *dc, const mock_auth_result *res) { return store_key(dc, res); }

static mock_sess *session_record(mock_dc *dc, const uint8_t key_id[8], int64_t session_id) {
  mock_sess *lru = NULL, *free_slot = NULL;
  for (size_t i = 0; i < MOCK_DC_MAX_SESSIONS; i++) {
    mock_sess *s = &dc->sess[i];
    if (!s->used) {
      if (!free_slot) free_slot = s;
      continue;
    }
    if (s->session_id == session_id && memcmp(s->key_id, key_id, 8) == 0) {
      s->last_use = ++dc->cl->use_clock;
      return s;
    }
    if (!lru || s->last_use < lru->last_use) lru = s;
  }
  mock_sess *s = free_slot ? free_slot : lru;
  memset(s, 0, sizeof *s);
  s->used = 1;
  memcpy(s->key_id, key_id, 8);
  s->session_id = session_id;
  s->last_use = ++dc->cl->use_clock;
  return s;
}

/* mock_session -> API layer; runs inside mock_session_feed. */
static int rpc_handler(void *ud, const mock_query *q, mtci_tl_writer *out) {
  mock_key *k = ud;
  mock_dc *dc = k->dc;
  mock_rpc_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.dc = dc;
  ctx.key = k;
  ctx.sess = session_record(dc, k->id, q->session_id);
  ctx.session_id = q->session_id;
  ctx.msg_id = q->msg_id;
  ctx.now = (int32_t)mock_dc_now(dc);
  ctx.layer_in = q->layer;
  mock_rpc_call(&ctx, q->body, q->len, out);
  mock_ctr_method(dc, ctx.method);
  dc->answers++;
  int drop = (dc->faults.drop_every && dc->answers % dc->faults.drop_every == 0) ||
             (dc->faults.drop_method[0] && strcmp(dc->faults.drop_method, ctx.method) == 0);
  if (drop) {
    dc->ctr.answers_dropped++;
    mock_dc_logf(dc, "dropping the answer to %s", ctx.method);
    mtci_tl_writer_reset(out);
    return MOCK_NO_ANSWER;
  }
  if (dc->faults.lose_method[0] && strcmp(dc->faults.lose_method, ctx.method) == 0) {
    dc->ctr.answers_dropped++;
    mock_dc_logf(dc, "acknowledging %s, its answer lost until a new connection", ctx.method);
    mock_session_set_faults(k->ms, mock_session_faults(k->ms) | MOCK_SESS_LOSE_ANSWER);
  }
  return MOCK_ANSWER;
}

/* ---- output ------------------------------------------------------------------------- */

static void conn_kill(mock_dconn *c) {
  if (c->state == C_DEAD) return;
  c->state = C_DEAD;
  mock_conn_close(c->mc);
}

static void conn_kill_after_flush(mock_dconn *c) {
  if (c->state == C_DEAD) return;
  c->state = C_DEAD;
  mock_conn_close_after_flush(c->mc);
}

static void to_socket(mock_dconn *c, const uint8_t *p, size_t n) {
  if (mock_conn_send(c->mc, p, n) == 0) c->dc->ctr.bytes_out += n;
}

static void queue_timer(mock_loop *l, void *ud);

static void arm_queue_timer(mock_dconn *c) {
  if (c->q_timer || !c->q_head) return;
  int64_t wait = c->q_head->due_ms - mock_loop_now_ms();
  if (wait < 0) wait = 0;
  c->q_timer = mock_loop_timer(c->dc->cl->loop, (uint32_t)wait, queue_timer, c);
}

/* Send what is due from the delay queue; held back while stalled. */
static void flush_queue(mock_dconn *c) {
  int64_t now = mock_loop_now_ms();
  while (c->q_head && !c->dc->faults.stall && c->q_head->due_ms <= now) {
    outq *e = c->q_head;
    c->q_head = e->next;
    if (!c->q_head) c->q_tail = NULL;
    c->q_bytes -= e->len;
    to_socket(c, e->data, e->len);
    free(e);
  }
  if (!c->dc->faults.stall) arm_queue_timer(c);
}

static void queue_timer(mock_loop *l, void *ud) {
  (void)l;
  mock_dconn *c = ud;
  c->q_timer = 0;
  flush_queue(c);
  /* A failed timer (table full) must not strand bytes: send them now. */
  if (c->q_head && !c->q_timer && !c->dc->faults.stall) {
    while (c->q_head) {
      outq *e = c->q_head;
      c->q_head = e->next;
      to_socket(c, e->data, e->len);
      free(e);
    }
    c->q_tail = NULL;
    c->q_bytes = 0;
  }
}

/* Bytes already framed and encrypted: to the socket, or behind the queue. */
static void emit_bytes(mock_dconn *c, const uint8_t *p, size_t n) {
  uint32_t delay = c->dc->faults.delay_ms;
  if (!delay && !c->q_head) {
    to_socket(c, p, n);
    return;
  }
  outq *e = c->q_bytes + n <= MAX_DELAYED ? malloc(sizeof *e + n) : NULL;
  if (!e) {
    conn_kill(c);
    return;
  }
  e->next = NULL;
  e->due_ms = mock_loop_now_ms() + delay;
  e->len = n;
  memcpy(e->data, p, n);
  if (c->q_tail) c->q_tail->next = e;
  else c->q_head = e;
  c->q_tail = e;
  c->q_bytes += n;
  if (!c->dc->faults.stall) arm_queue_timer(c);
}

/* One MTProto payload (or a 4-byte transport error) as a frame. */
static void send_payload(mock_dconn *c, const uint8_t *p, size_t n) {
  if (c->state == C_DEAD) return;
  if (c->dc->faults.stall) {
    c->dc->ctr.answers_dropped++;
    return;
  }
  size_t head = MTCI_CODEC_MAX_HEADROOM, cap = head + n + MTCI_CODEC_MAX_TAILROOM;
  uint8_t *buf = malloc(cap);
  if (!buf) {
    conn_kill(c);
    return;
  }
  memcpy(buf + head, p, n);
  size_t off = 0, len = 0;
  int rc = mtci_codec_encode(&c->codec, buf, cap, head, n, 0, &off, &len);
  if (rc == 0) {
    if (c->obfuscated) mtci_obfs_encrypt(&c->obfs, buf + off, buf + off, len);
    emit_bytes(c, buf + off, len);
  } else {
    mock_dc_logf(c->dc, "cannot frame %zu bytes: %s", n, mtc_strerror(rc));
    conn_kill(c);
  }
  free(buf);
}

static void send_transport_error(mock_dconn *c, int32_t code) {
  uint8_t b[4];
  mtci_put_le32(b, (uint32_t)code);
  send_payload(c, b, sizeof b);
  c->dc->ctr.transport_errors_sent++;
  if (code == -404) c->dc->ctr.transport_404++;
  if (code == -429) c->dc->ctr.transport_429++;
  mock_dc_logf(c->dc, "transport error %d", (int)code);
  conn_kill_after_flush(c);
}

static void send_quick_ack(mock_dconn *c, uint32_t token) {
  if (c->dc->faults.stall || c->state == C_DEAD) return;
  uint8_t b[4];
  int n = mtci_codec_encode_quick_ack(&c->codec, token, b, sizeof b);
  if (n != 4) return;
  if (c->obfuscated) mtci_obfs_encrypt(&c->obfs, b, b, 4);
  emit_bytes(c, b, 4);
  c->dc->ctr.quick_acks++;
}

/* The quick-ack token of a client packet: LE32(msg_key_large[0:4]) | 2^31,
 * msg_key_large = SHA256(auth_key[88:120] || plaintext). */
static int quick_ack_token(const mock_key *k, const uint8_t *pkt, size_t len, uint32_t *token) {
  if (len < 24 + 16 || (len - 24) % 16) return -1;
  size_t n = len - 24;
  uint8_t *pt = malloc(n);
  if (!pt) return -1;
  uint8_t key[32], iv[32], mk[16], large[32];
  mtci_mtp2_kdf(k->key, pkt + 8, 0, key, iv);
  mtci_aes256_ige_decrypt(key, iv, pkt + 24, pt, n);
  mtci_mtp2_msg_key(k->key, 0, pt, n, mk, large);
  int ok = memcmp(mk, pkt + 8, 16) == 0;
  mtci_zeroize(pt, n);
  mtci_zeroize(key, sizeof key);
  mtci_zeroize(iv, sizeof iv);
  free(pt);
  if (!ok) return -1;
  *token = mtci_le32(large) | 0x80000000u;
  return 0;
}

/* ---- frames --------------------------------------------------------------------- */

static void on_unencrypted(mock_dconn *c, const uint8_t *p, size_t n) {
  mock_dc *dc = c->dc;
  double now = mock_dc_now(dc);
  if (!c->auth) {
    mock_auth_config ac;
    memset(&ac, 0, sizeof ac);
    ac.rsa_pem = dc->pem;
    ac.rsa_pem_len = strlen(dc->pem);
    ac.rnd = cl_rnd;
    ac.rnd_ud = dc->cl;
    /* now already carries the DC's clock offset */
    if (mock_auth_new(&c->auth, &ac) != 0) {
      conn_kill(c);
      return;
    }
  }
  uint8_t out[AUTH_OUT_CAP];
  size_t out_len = 0;
  int rc = mock_auth_feed_envelope(c->auth, p, n, now, out, sizeof out, &out_len);
  if (rc) {
    dc->ctr.handshake_failures++;
    mock_dc_logf(dc, "bad handshake message: %s", mtc_strerror(rc));
    send_transport_error(c, -404);
    return;
  }
  send_payload(c, out, out_len);
  mock_auth_result res;
  if (out_len >= 24 && mtci_le32(out + 20) == ID_DH_GEN_OK && mock_auth_done(c->auth, &res)) {
    mock_key *k = store_key(dc, &res);
    if (k) {
      if (res.temp) dc->ctr.handshakes_temp++;
      else dc->ctr.handshakes_perm++;
      mock_dc_logf(dc, "%s auth key created", res.temp ? "temp" : "perm");
    }
    mtci_zeroize(&res, sizeof res);
  }
}

/* Count the service requests mock_session answered itself (its rx log). */
static void count_service(mock_dc *dc, mock_session *ms, unsigned before_msgs) {
  const mock_session_stats *st = mock_session_get_stats(ms);
  size_t fresh = st->msgs_in - before_msgs, have = mock_session_rx_count(ms);
  if (fresh > have) fresh = have;
  for (size_t i = have - fresh; i < have; i++) {
    const mock_rx_msg *m = mock_session_rx(ms, i);
    if (!m || m->len < 4) continue;
    uint32_t id = mtci_le32(m->body);
    switch (id) {
    case 0x7abe77ecu: /* ping */
    case 0xf3427b8cu: /* ping_delay_disconnect */
    case 0xb921bd04u: /* get_future_salts */
    case 0xe7512126u: /* destroy_session */
    case 0xda69fb52u: /* msgs_state_req */
    case 0x8610baebu: /* msg_resend_ans_req */
    case 0x58e4a740u: /* rpc_drop_answer */ {
      char name[MOCK_DC_NAME_LEN];
      mock_rpc_method_name(id, name);
      mock_ctr_method(dc, name);
      break;
    }
    default: break;
    }
  }
}

static void pdd_timer(mock_loop *l, void *ud) {
  (void)l;
  mock_dconn *c = ud;
  c->pdd_timer = 0;
  mock_dc_logf(c->dc, "ping_delay_disconnect delay passed: closing");
  conn_kill(c);
}

void mock_dc_conn_disconnect_after(mock_dconn *c, int32_t seconds) {
  if (c->pdd_timer) mock_loop_cancel_timer(c->dc->cl->loop, c->pdd_timer);
  c->pdd_timer = 0;
  if (seconds > 0 && seconds <= 86400)
    c->pdd_timer = mock_loop_timer(c->dc->cl->loop, (uint32_t)seconds * 1000u, pdd_timer, c);
}

static void on_encrypted(mock_dconn *c, const uint8_t *p, size_t n, int ack_requested) {
  mock_dc *dc = c->dc;
  mock_key *k = find_key_raw(dc, p);
  if (k && expired(dc, k)) { /* the real DCs forget expired temp keys */
    mock_dc_logf(dc, "temp key expired, forgotten");
    forget_key(k);
    k = NULL;
  }
  if (!k) {
    mock_dc_logf(dc, "unknown auth key");
    send_transport_error(c, -404);
    return;
  }
  if (dc->faults.transport_444_once) {
    dc->faults.transport_444_once = 0;
    mock_dc_logf(dc, "fault: transport error -444");
    send_transport_error(c, -444);
    return;
  }
  if (dc->faults.transport_404_once) {
    dc->faults.transport_404_once = 0;
    mock_dc_logf(dc, "fault: forgetting the %s key", k->temp ? "temp" : "perm");
    forget_key(k);
    send_transport_error(c, -404);
    return;
  }
  k->last_use = ++dc->cl->use_clock;
  uint32_t token;
  if (ack_requested && quick_ack_token(k, p, n, &token) == 0) send_quick_ack(c, token);
  if (dc->faults.wrong_salt) {
    dc->faults.wrong_salt--;
    mock_session_set_faults(k->ms, mock_session_faults(k->ms) | MOCK_SESS_BAD_SALT_ONCE);
  }
  mock_session *ms = k->ms;
  const mock_session_stats *st = mock_session_get_stats(ms);
  unsigned msgs = st->msgs_in, sessions = st->new_sessions, salts = st->bad_server_salts;
  unsigned via_proxy = st->init_with_proxy;
  unsigned bad = 0;
  for (int i = 0; i < 80; i++) bad += st->bad_msgs[i];
  int64_t pdd_at = st->disconnect_at_ms;
  int64_t now = wall_ms();
  mock_session_set_conn(ms, c->serial); /* a session on a new connection gets its unacked answers */
  int rc = mock_session_feed(ms, now, p, n);
  if (rc) {
    dc->ctr.framing_errors++;
    mock_dc_logf(dc, "undecryptable packet: %s", mtc_strerror(rc));
    conn_kill(c);
    return;
  }
  /* The handler may have forgotten nothing, but k stays valid: keys are
   * only forgotten here, in store_key and by the fault above. */
  st = mock_session_get_stats(ms);
  dc->ctr.sessions_created += st->new_sessions - sessions;
  dc->ctr.init_via_proxy += st->init_with_proxy - via_proxy;
  unsigned bad_after = 0;
  for (int i = 0; i < 80; i++) bad_after += st->bad_msgs[i];
  dc->ctr.bad_msgs_sent += (bad_after - bad) + (st->bad_server_salts - salts);
  count_service(dc, ms, msgs);
  if (st->disconnect_at_ms != pdd_at && st->disconnect_at_ms)
    mock_dc_conn_disconnect_after(c, st->last_disconnect_delay);
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  for (int guard = 0; guard < 100000; guard++) {
    mtci_tl_writer_reset(&w);
    int r = mock_session_pop(ms, now, &w);
    if (r != 1) break;
    send_payload(c, mtci_tl_writer_data(&w), w.len);
  }
  mtci_tl_writer_free(&w);
}

static void on_frame(mock_dconn *c, const mtci_frame *ev) {
  mock_dc *dc = c->dc;
  c->frames++;
  if (dc->faults.close_after_frames && c->frames >= dc->faults.close_after_frames) {
    mock_dc_logf(dc, "fault: closing after %u frames", (unsigned)c->frames);
    conn_kill(c);
    return;
  }
  if (c->flood) {
    send_transport_error(c, -429);
    return;
  }
  if (ev->type != MTCI_FRAME_DATA) {
    dc->ctr.framing_errors++;
    conn_kill(c);
    return;
  }
  size_t n = ev->len;
  if (c->kind == MTCI_CODEC_PADDED && mtci_padded_payload_len(ev->data, ev->len, &n) != 0) {
    dc->ctr.framing_errors++;
    conn_kill(c);
    return;
  }
  if (n < 24) { /* no MTProto message is shorter */
    dc->ctr.framing_errors++;
    send_transport_error(c, -404);
    return;
  }
  static const uint8_t zero[8];
  if (memcmp(ev->data, zero, 8) == 0) on_unencrypted(c, ev->data, n);
  else on_encrypted(c, ev->data, n, ev->ack_requested);
}

/* ---- input --------------------------------------------------------------------- */

static const char *kind_name(mtci_codec_kind k) {
  switch (k) {
  case MTCI_CODEC_ABRIDGED: return "abridged";
  case MTCI_CODEC_INTERMEDIATE: return "intermediate";
  case MTCI_CODEC_PADDED: return "padded";
  case MTCI_CODEC_FULL: return "full";
  default: return "?";
  }
}

/* Decide the transport from the first bytes. 1 = decided (consumed the
 * obfuscation header if any), 0 = need more, -1 = reject. */
static int detect(mock_dconn *c, const uint8_t *p, size_t n, size_t *used) {
  *used = 0;
  mtci_codec_kind kind;
  int d = mtci_codec_detect(p, n, &kind);
  if (d == 0) return 0;
  if (d == 1 && kind != MTCI_CODEC_FULL) {
    c->kind = kind;
    if (mtci_codec_init(&c->codec, kind, MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG, cl_rnd,
                        c->dc->cl) != 0)
      return -1;
    return 1;
  }
  if (n < 8) return 0;
  if (p[4] == 0 && p[5] == 0 && p[6] == 0 && p[7] == 0) {
    c->kind = MTCI_CODEC_FULL;
    if (mtci_codec_init(&c->codec, MTCI_CODEC_FULL, MTCI_CODEC_F_SERVER, NULL, NULL) != 0)
      return -1;
    return 1;
  }
  if (n < MTCI_OBFS_HEADER_LEN) return 0;
  uint32_t tag = 0;
  int16_t dc_id = 0;
  if (mtci_obfs_server_init(&c->obfs, p, NULL, MTCI_OBFS_ALLOW_ALL, &tag, &dc_id) != 0)
    return -1;
  c->obfuscated = 1;
  c->kind = tag == MTCI_OBFS_TAG_ABRIDGED       ? MTCI_CODEC_ABRIDGED
            : tag == MTCI_OBFS_TAG_INTERMEDIATE ? MTCI_CODEC_INTERMEDIATE
                                                : MTCI_CODEC_PADDED;
  if (mtci_codec_init(&c->codec, c->kind, MTCI_CODEC_F_SERVER, cl_rnd, c->dc->cl) != 0)
    return -1;
  *used = MTCI_OBFS_HEADER_LEN;
  return 1;
}

static void on_data(mock_conn *mc, void *ud) {
  mock_dconn *c = ud;
  mock_dc *dc = c->dc;
  if (c->state == C_DEAD) return;
  if (dc->faults.stall) {
    mock_conn_pause(mc, 1);
    return;
  }
  size_t len = 0;
  const uint8_t *data = mock_conn_data(mc, &len);
  if (!len) return;
  if (c->state == C_DETECT) {
    size_t used = 0;
    int d = detect(c, data, len, &used);
    if (d == 0) return; /* wait for more; nothing consumed */
    dc->ctr.bytes_in += used;
    mock_conn_consume(mc, used);
    if (d < 0) {
      dc->ctr.framing_errors++;
      mock_dc_logf(dc, "unknown transport, closing");
      conn_kill(c);
      return;
    }
    char name[MOCK_DC_NAME_LEN];
    snprintf(name, sizeof name, "%s%s", c->obfuscated ? "obfuscated/" : "", kind_name(c->kind));
    mock_ctr_transport(dc, name);
    c->state = C_RUN;
    data = mock_conn_data(mc, &len);
    if (!len) return;
  }
  /* Work on a private copy: answers are sent while frames are parsed. */
  if (len > c->rx_cap) {
    uint8_t *nb = realloc(c->rx, len);
    if (!nb) {
      conn_kill(c);
      return;
    }
    c->rx = nb;
    c->rx_cap = len;
  }
  if (c->obfuscated) mtci_obfs_decrypt(&c->obfs, data, c->rx, len);
  else memcpy(c->rx, data, len);
  mock_conn_consume(mc, len);
  dc->ctr.bytes_in += len;
  size_t pos = 0;
  while (pos < len && c->state == C_RUN) {
    size_t used = 0;
    mtci_frame ev;
    int r = mtci_codec_feed(&c->codec, c->rx + pos, len - pos, &used, &ev);
    if (r < 0) {
      dc->ctr.framing_errors++;
      mock_dc_logf(dc, "framing error: %s", mtc_strerror(r));
      conn_kill(c);
      return;
    }
    pos += used;
    if (r == 1) on_frame(c, &ev);
  }
}

static void on_close(mock_conn *mc, void *ud, int reason) {
  (void)mc;
  (void)reason;
  mock_dconn *c = ud;
  mock_dc *dc = c->dc;
  for (mock_dconn **pp = &dc->conns; *pp; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  dc->ctr.tcp_closed++;
  if (c->pdd_timer) mock_loop_cancel_timer(dc->cl->loop, c->pdd_timer);
  if (c->q_timer) mock_loop_cancel_timer(dc->cl->loop, c->q_timer);
  while (c->q_head) {
    outq *e = c->q_head;
    c->q_head = e->next;
    free(e);
  }
  mock_auth_free(c->auth);
  mtci_codec_free(&c->codec);
  mtci_obfs_free(&c->obfs);
  free(c->rx);
  free(c);
}

static const mock_conn_handler k_handler = {NULL, on_data, NULL, on_close};

static void on_accept(mock_loop *l, mock_conn *mc, void *ud) {
  (void)l;
  mock_dc *dc = ud;
  mock_dconn *c = calloc(1, sizeof *c);
  if (!c) {
    mock_conn_close(mc);
    return;
  }
  c->dc = dc;
  c->mc = mc;
  c->serial = ++dc->cl->use_clock; /* unique in the cluster, never 0 */
  c->next = dc->conns;
  dc->conns = c;
  mock_conn_set_handler(mc, &k_handler, c);
  dc->ctr.tcp_accepted++;
  int64_t now = mock_loop_now_ms();
  dc->connects[dc->n_connects++ % MOCK_DC_FLOOD_RING] = now;
  if (dc->faults.flood_connects) {
    size_t have = dc->n_connects < MOCK_DC_FLOOD_RING ? dc->n_connects : MOCK_DC_FLOOD_RING;
    uint32_t recent = 0;
    for (size_t i = 0; i < have; i++)
      if (now - dc->connects[i] <= (int64_t)dc->faults.flood_window_ms) recent++;
    if (recent > dc->faults.flood_connects) {
      c->flood = 1;
      mock_dc_logf(dc, "fault: connection flood (%u in %u ms)", recent,
                   (unsigned)dc->faults.flood_window_ms);
    }
  }
  if (dc->faults.stall) mock_conn_pause(mc, 1);
}

/* ---- listeners ---------------------------------------------------------------- */

/* A bound socket without listen(): connect() to it is refused. */
static int refuse_port(uint16_t port, uint16_t *bound) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  if (bound) *bound = ntohs(a.sin_port);
  return fd;
}

/* Make the main port match faults.refuse_seed. */
static int apply_seed_port(mock_dc *dc) {
  if (dc->faults.refuse_seed && dc->refuse_fd < 0) {
    if (dc->listen_id > 0) mock_loop_unlisten(dc->cl->loop, dc->listen_id);
    dc->listen_id = 0;
    uint16_t bound = 0;
    int fd = refuse_port(dc->port, &bound);
    if (fd < 0) return fd;
    dc->refuse_fd = fd;
    dc->port = bound;
    mock_dc_logf(dc, "seed port %u refuses connections", (unsigned)bound);
  } else if (!dc->faults.refuse_seed && dc->listen_id <= 0) {
    if (dc->refuse_fd >= 0) close(dc->refuse_fd);
    dc->refuse_fd = -1;
    uint16_t bound = 0;
    int id = mock_loop_listen(dc->cl->loop, dc->port, on_accept, dc, &bound);
    if (id < 0) return id;
    dc->listen_id = id;
    dc->port = bound;
  }
  return 0;
}

/* ---- cluster lifecycle ---------------------------------------------------------- */

int mock_dc_cluster_new(mock_dc_cluster **out, const mock_dc_config *cfg) {
  if (!out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  mock_dc_config def;
  memset(&def, 0, sizeof def);
  if (!cfg) cfg = &def;
  int n = cfg->n_dcs ? cfg->n_dcs : 5;
  if (n < 1 || n > MOCK_DC_MAX_DCS || mock_test_key_count() < 1) return MTC_ERR_INVALID_ARG;
  if (cfg->base_port && (uint32_t)cfg->base_port + 100u + (uint32_t)n > 65535u)
    return MTC_ERR_INVALID_ARG;
  mock_dc_cluster *c = calloc(1, sizeof *c);
  if (!c) return MTC_ERR_NOMEM;
  c->cfg = *cfg;
  c->n = n;
  if (!c->cfg.home_dc) c->cfg.home_dc = n < 5 ? n : 5;
  if (!c->cfg.files_dc) c->cfg.files_dc = 1;
  int rc = 0;
  if (c->cfg.home_dc < 1 || c->cfg.home_dc > n || c->cfg.files_dc < 1 || c->cfg.files_dc > n)
    rc = MTC_ERR_INVALID_ARG;
  if (!rc && cfg->rnd) {
    c->rnd = cfg->rnd;
    c->rnd_ud = cfg->rnd_ud;
  } else if (!rc) {
    c->drbg = mtci_drbg_new();
    if (!c->drbg) rc = MTC_ERR_RANDOM;
    c->rnd = mtci_drbg_random;
    c->rnd_ud = c->drbg;
  }
  if (!rc) rc = mock_dc_random(c, c->secret, sizeof c->secret);
  if (!rc) {
    int e = mock_loop_new(&c->loop);
    if (e < 0) rc = MTC_ERR_NOMEM;
  }
  for (int i = 0; i < n && !rc; i++) {
    mock_dc *dc = &c->dcs[i];
    dc->id = i + 1;
    dc->cl = c;
    dc->refuse_fd = -1;
    dc->faults = cfg->faults[i];
    dc->faults.drop_method[MOCK_DC_NAME_LEN - 1] = 0;
  dc->faults.lose_method[MOCK_DC_NAME_LEN - 1] = 0;
    dc->ctr.dc_id = dc->id;
    /* One key per DC while the committed keys last (5); beyond, DCs share
     * keys, as the production DCs all do. */
    dc->pem = mock_test_key_pem(i % mock_test_key_count());
    dc->keys = calloc(MOCK_DC_MAX_KEYS, sizeof *dc->keys);
    dc->sess = calloc(MOCK_DC_MAX_SESSIONS, sizeof *dc->sess);
    if (!dc->keys || !dc->sess) {
      rc = MTC_ERR_NOMEM;
      break;
    }
    /* The public key, via a throwaway handshake server (it parses the PEM). */
    mock_auth_config ac;
    memset(&ac, 0, sizeof ac);
    ac.rsa_pem = dc->pem;
    ac.rsa_pem_len = strlen(dc->pem);
    ac.rnd = cl_rnd;
    ac.rnd_ud = c;
    mock_auth_server *a = NULL;
    rc = mock_auth_new(&a, &ac);
    if (!rc) rc = mock_auth_public_key(a, &dc->pub);
    mock_auth_free(a);
  }
  if (rc) {
    mock_dc_cluster_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

int mock_dc_cluster_start(mock_dc_cluster *c) {
  if (!c) return MTC_ERR_INVALID_ARG;
  if (c->running) return 0;
  mock_loop_lock(c->loop);
  int rc = 0;
  for (int i = 0; i < c->n && !rc; i++) {
    mock_dc *dc = &c->dcs[i];
    if (!dc->port && !dc->listen_id && dc->refuse_fd < 0 && c->cfg.base_port)
      dc->port = (uint16_t)(c->cfg.base_port + i);
    rc = apply_seed_port(dc);
    if (!rc && c->cfg.alt_ports && !dc->alt_listen_id) {
      uint16_t want = c->cfg.base_port ? (uint16_t)(c->cfg.base_port + 100 + i) : 0;
      if (dc->alt_port) want = dc->alt_port;
      int id = mock_loop_listen(c->loop, want, on_accept, dc, &dc->alt_port);
      if (id < 0) rc = id;
      else dc->alt_listen_id = id;
    }
    dc->ctr.port = dc->port;
    dc->ctr.alt_port = dc->alt_port;
  }
  mock_loop_unlock(c->loop);
  if (!rc) rc = mock_loop_start_thread(c->loop);
  if (!rc) c->running = 1;
  return rc;
}

void mock_dc_cluster_stop(mock_dc_cluster *c) {
  if (!c || !c->running) return;
  mock_loop_stop_thread(c->loop);
  c->running = 0;
}

void mock_dc_cluster_free(mock_dc_cluster *c) {
  if (!c) return;
  mock_dc_cluster_stop(c);
  /* The loop closes the connections (on_close frees ours) and listeners. */
  mock_loop_free(c->loop);
  for (int i = 0; i < MOCK_DC_MAX_DCS; i++) {
    mock_dc *dc = &c->dcs[i];
    if (dc->refuse_fd >= 0 && dc->cl) close(dc->refuse_fd);
    if (dc->keys) {
      for (size_t k = 0; k < MOCK_DC_MAX_KEYS; k++)
        if (dc->keys[k].used) forget_key(&dc->keys[k]);
      free(dc->keys);
    }
    free(dc->sess);
  }
  if (c->drbg) mtci_drbg_free(c->drbg);
  mtci_zeroize(c, sizeof *c);
  free(c);
}

/* ---- queries and switches ---------------------------------------------------------- */

int mock_dc_cluster_count(const mock_dc_cluster *c) { return c ? c->n : 0; }

uint16_t mock_dc_port(const mock_dc_cluster *c, int dc_id) {
  if (!c || dc_id < 1 || dc_id > c->n) return 0;
  return c->dcs[dc_id - 1].port;
}

uint16_t mock_dc_alt_port(const mock_dc_cluster *c, int dc_id) {
  if (!c || dc_id < 1 || dc_id > c->n) return 0;
  return c->dcs[dc_id - 1].alt_port;
}

int mock_dc_public_key(const mock_dc_cluster *c, int dc_id, mtci_rsa_key *out) {
  if (!c || !out || dc_id < 1 || dc_id > c->n) return MTC_ERR_INVALID_ARG;
  *out = c->dcs[dc_id - 1].pub;
  return 0;
}

/* DER length prefix. */
static size_t der_len(uint8_t *p, size_t n) {
  if (n < 128) {
    p[0] = (uint8_t)n;
    return 1;
  }
  if (n < 256) {
    p[0] = 0x81;
    p[1] = (uint8_t)n;
    return 2;
  }
  p[0] = 0x82;
  p[1] = (uint8_t)(n >> 8);
  p[2] = (uint8_t)n;
  return 3;
}

/* DER INTEGER of an unsigned big-endian number. */
static size_t der_uint(uint8_t *p, const uint8_t *v, size_t n) {
  while (n > 1 && v[0] == 0) {
    v++;
    n--;
  }
  int pad = v[0] & 0x80 ? 1 : 0;
  size_t k = 0;
  p[k++] = 0x02;
  k += der_len(p + k, n + (size_t)pad);
  if (pad) p[k++] = 0;
  memcpy(p + k, v, n);
  return k + n;
}

int mock_dc_public_pem(const mock_dc_cluster *c, int dc_id, char *out, size_t cap,
                       size_t *pem_len) {
  if (!c || !out || dc_id < 1 || dc_id > c->n) return MTC_ERR_INVALID_ARG;
  const mtci_rsa_key *k = &c->dcs[dc_id - 1].pub;
  /* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
  uint8_t body[600], der[610];
  size_t bl = der_uint(body, k->n, k->n_len);
  bl += der_uint(body + bl, k->e, k->e_len);
  size_t dl = 0;
  der[dl++] = 0x30;
  dl += der_len(der + dl, bl);
  memcpy(der + dl, body, bl);
  dl += bl;
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char head[] = "-----BEGIN RSA PUBLIC KEY-----\n";
  static const char tail[] = "-----END RSA PUBLIC KEY-----\n";
  size_t need = sizeof head - 1 + (dl + 2) / 3 * 4 + (dl + 47) / 48 + sizeof tail - 1 + 1;
  if (cap < need) return MTC_ERR_BUFFER_TOO_SMALL;
  size_t o = 0;
  memcpy(out, head, sizeof head - 1);
  o += sizeof head - 1;
  for (size_t i = 0, col = 0; i < dl; i += 3) {
    uint32_t v = (uint32_t)der[i] << 16;
    if (i + 1 < dl) v |= (uint32_t)der[i + 1] << 8;
    if (i + 2 < dl) v |= der[i + 2];
    out[o++] = b64[v >> 18 & 63];
    out[o++] = b64[v >> 12 & 63];
    out[o++] = i + 1 < dl ? b64[v >> 6 & 63] : '=';
    out[o++] = i + 2 < dl ? b64[v & 63] : '=';
    col += 4;
    if (col == 64 || i + 3 >= dl) {
      out[o++] = '\n';
      col = 0;
    }
  }
  memcpy(out + o, tail, sizeof tail - 1);
  o += sizeof tail - 1;
  out[o] = 0;
  if (pem_len) *pem_len = o;
  return 0;
}

int mock_dc_set_faults(mock_dc_cluster *c, int dc_id, const mock_dc_faults *f) {
  mock_dc *dc = dc_of(c, dc_id);
  if (!dc || !f) return MTC_ERR_INVALID_ARG;
  mock_loop_lock(c->loop);
  int was_stalled = dc->faults.stall;
  /* A new flood rule counts connects from now on. */
  if (f->flood_connects != dc->faults.flood_connects ||
      f->flood_window_ms != dc->faults.flood_window_ms)
    dc->n_connects = 0;
  int64_t old_offset = skew_ms(dc);
  dc->faults = *f;
  dc->faults.drop_method[MOCK_DC_NAME_LEN - 1] = 0;
  dc->faults.lose_method[MOCK_DC_NAME_LEN - 1] = 0;
  if (skew_ms(dc) != old_offset) {
    for (size_t i = 0; i < MOCK_DC_MAX_KEYS; i++)
      if (dc->keys[i].used) mock_session_set_clock_offset(dc->keys[i].ms, skew_ms(dc));
  }
  if (dc->faults.stall != was_stalled) {
    for (mock_dconn *k = dc->conns; k; k = k->next) {
      mock_conn_pause(k->mc, dc->faults.stall);
      if (!dc->faults.stall) arm_queue_timer(k);
    }
  }
  int rc = 0;
  if (c->running || dc->listen_id > 0 || dc->refuse_fd >= 0) rc = apply_seed_port(dc);
  /* A closed listener lingers while the loop thread still polls it: let the
   * loop wake up (unlock does that) and try again. */
  for (int tries = 0; rc == -EADDRINUSE && tries < 500; tries++) {
    mock_loop_unlock(c->loop);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    mock_loop_lock(c->loop);
    rc = apply_seed_port(dc);
  }
  dc->ctr.port = dc->port;
  mock_loop_unlock(c->loop);
  return rc;
}

int mock_dc_get_faults(mock_dc_cluster *c, int dc_id, mock_dc_faults *out) {
  mock_dc *dc = dc_of(c, dc_id);
  if (!dc || !out) return MTC_ERR_INVALID_ARG;
  mock_loop_lock(c->loop);
  *out = dc->faults;
  mock_loop_unlock(c->loop);
  return 0;
}

int mock_dc_faults_parse(const char *spec, mock_dc_faults *f) {
  if (!spec || !f) return MTC_ERR_INVALID_ARG;
  char buf[512];
  if (strlen(spec) >= sizeof buf) return MTC_ERR_INVALID_ARG;
  memcpy(buf, spec, strlen(spec) + 1);
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    const char *val = eq ? eq + 1 : "1";
    if (eq) *eq = 0;
    if (strcmp(tok, "drop_method") == 0 || strcmp(tok, "lose_method") == 0) {
      if (strlen(val) >= MOCK_DC_NAME_LEN) return MTC_ERR_INVALID_ARG;
      char *dst = tok[0] == 'd' ? f->drop_method : f->lose_method;
      snprintf(dst, MOCK_DC_NAME_LEN, "%s", val);
      continue;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!*val || *end || errno || v < -2000000000L || v > 2000000000L)
      return MTC_ERR_INVALID_ARG;
    if (strcmp(tok, "clock_offset") == 0) {
      f->clock_offset = (int32_t)v;
      continue;
    }
    if (strcmp(tok, "clock_offset_ms") == 0) {
      if (v < -999 || v > 999) return MTC_ERR_INVALID_ARG;
      f->clock_offset_ms = (int32_t)v;
      continue;
    }
    if (v < 0) return MTC_ERR_INVALID_ARG;
    uint32_t u = (uint32_t)v;
    if (strcmp(tok, "close_after_frames") == 0) f->close_after_frames = u;
    else if (strcmp(tok, "transport_404_once") == 0) f->transport_404_once = (int)u;
    else if (strcmp(tok, "flood_connects") == 0) f->flood_connects = u;
    else if (strcmp(tok, "flood_window_ms") == 0) f->flood_window_ms = u;
    else if (strcmp(tok, "wrong_salt") == 0) f->wrong_salt = u;
    else if (strcmp(tok, "delay_ms") == 0) f->delay_ms = u;
    else if (strcmp(tok, "drop_every") == 0) f->drop_every = u;
    else if (strcmp(tok, "stall") == 0) f->stall = (int)u;
    else if (strcmp(tok, "refuse_seed") == 0) f->refuse_seed = (int)u;
    else if (strcmp(tok, "transport_444_once") == 0) f->transport_444_once = (int)u;
    else if (strcmp(tok, "config_extra_first") == 0) f->config_extra_first = u;
    else if (strcmp(tok, "config_extra_count") == 0) f->config_extra_count = u;
    else if (strcmp(tok, "config_extra_port") == 0 && u <= 65535) f->config_extra_port = u;
    else return MTC_ERR_INVALID_ARG;
  }
  return 0;
}

int mock_dc_get_counters(mock_dc_cluster *c, int dc_id, mock_dc_counters *out) {
  mock_dc *dc = dc_of(c, dc_id);
  if (!dc || !out) return MTC_ERR_INVALID_ARG;
  mock_loop_lock(c->loop);
  *out = dc->ctr;
  mock_loop_unlock(c->loop);
  return 0;
}

char *mock_dc_counters_json(mock_dc_cluster *c) {
  if (!c) return NULL;
  mock_dc_counters *all = calloc((size_t)c->n, sizeof *all);
  if (!all) return NULL;
  mock_loop_lock(c->loop);
  for (int i = 0; i < c->n; i++) all[i] = c->dcs[i].ctr;
  mock_loop_unlock(c->loop);
  char *s = mock_ctr_json(all, c->n);
  free(all);
  return s;
}

char *mock_dc_ports_json(mock_dc_cluster *c) {
  if (!c) return NULL;
  size_t cap = 32 + (size_t)c->n * 64;
  char *s = malloc(cap);
  if (!s) return NULL;
  size_t o = (size_t)snprintf(s, cap, "{\"dcs\":[");
  mock_loop_lock(c->loop);
  for (int i = 0; i < c->n; i++) {
    const mock_dc *dc = &c->dcs[i];
    o += (size_t)snprintf(s + o, cap - o, "%s{\"id\":%d,\"port\":%u", i ? "," : "", dc->id,
                          (unsigned)dc->port);
    if (dc->alt_port) o += (size_t)snprintf(s + o, cap - o, ",\"alt_port\":%u", dc->alt_port);
    o += (size_t)snprintf(s + o, cap - o, "}");
  }
  mock_loop_unlock(c->loop);
  snprintf(s + o, cap - o, "]}");
  return s;
}

int64_t mock_dc_key_user(mock_dc_cluster *c, int dc_id, const uint8_t key_id[8]) {
  mock_dc *dc = dc_of(c, dc_id);
  if (!dc || !key_id) return -1;
  mock_loop_lock(c->loop);
  mock_key *k = mock_dc_find_key(dc, key_id);
  int64_t uid = -1;
  if (k) {
    mock_key *a = mock_dc_auth_key(dc, k);
    uid = a ? a->user_id : 0;
  }
  mock_loop_unlock(c->loop);
  return uid;
}

int mock_dc_key_count(mock_dc_cluster *c, int dc_id, int *perm, int *temp) {
  mock_dc *dc = dc_of(c, dc_id);
  if (!dc) return MTC_ERR_INVALID_ARG;
  int p = 0, t = 0;
  mock_loop_lock(c->loop);
  for (size_t i = 0; i < MOCK_DC_MAX_KEYS; i++) {
    if (!dc->keys[i].used) continue;
    if (dc->keys[i].temp) t++;
    else p++;
  }
  mock_loop_unlock(c->loop);
  if (perm) *perm = p;
  if (temp) *temp = t;
  return p + t;
}

size_t mock_dc_conn_count(mock_dc_cluster *c, int dc_id) {
  mock_dc *dc = dc_of(c, dc_id);
  if (!dc) return 0;
  size_t n = 0;
  mock_loop_lock(c->loop);
  for (mock_dconn *k = dc->conns; k; k = k->next) n++;
  mock_loop_unlock(c->loop);
  return n;
}
