/*
 * Mock DC: server side of an encrypted session. TEST CODE (see
 * mock_session.h). Written from PROTOCOL.md §6.5-6.9 and the official
 * service-message descriptions, independently of src/session.c.
 */
#include "mock_session.h"

#include <stdlib.h>
#include <string.h>

#include "tl/special.h"

#define ID_RPC_RESULT 0xf35c6d01u
#define ID_RPC_ERROR 0x2144ca19u
#define ID_CONTAINER 0x73f1f8dcu
#define ID_GZIP 0x3072cfa1u
#define ID_MSGS_ACK 0x62d6b459u
#define ID_BAD_MSG 0xa7eff811u
#define ID_BAD_SALT 0xedab447bu
#define ID_NEW_SESSION 0x9ec20908u
#define ID_PING 0x7abe77ecu
#define ID_PING_DD 0xf3427b8cu
#define ID_PONG 0x347773c5u
#define ID_GET_FUTURE_SALTS 0xb921bd04u
#define ID_FUTURE_SALTS 0xae500895u
#define ID_DESTROY_SESSION 0xe7512126u
#define ID_DESTROY_OK 0xe22045fcu
#define ID_DESTROY_NONE 0x62d350c9u
#define ID_STATE_REQ 0xda69fb52u
#define ID_STATE_INFO 0x04deb57du
#define ID_RESEND_REQ 0x7d861a08u
#define ID_RESEND_ANS_REQ 0x8610baebu
#define ID_HTTP_WAIT 0x9299359fu
#define ID_INVOKE_WITH_LAYER 0xda9b0d0du
#define ID_INIT_CONNECTION 0xc1cd5ea9u
#define ID_INPUT_CLIENT_PROXY 0x75588b3fu
#define ID_VECTOR 0x1cb5c415u
#define ID_BOOL_TRUE 0x997275b5u

#define MAX_SESSIONS 16
#define MAX_ISSUED_SALTS 64
#define MAX_RX_LOG 4096 /* messages kept for mock_session_rx (a ring: the newest) */
#define MAX_SENT_LOG 64
/* Content messages sent to a session and not acknowledged yet, kept for
 * re-delivery on its next connection (a real server "re-sends the missing
 * response at the first opportunity"); the oldest goes beyond this. */
#define MAX_UNACKED 64
/* Received msg_ids remembered per session for the duplicate and seq_no
 * checks (a power of two). Like a real server (and the client), the mock
 * keeps a bounded window: a repeated msg_id is detected while it is among
 * the newest MAX_SEEN ids of its session, and an id below the lowest one
 * of a full window counts as already seen (ignored; msgs_state_info says
 * 1, "unknown"). The client's 300 s msg_id time bound makes that window far
 * larger than any test or bench needs. */
#define MAX_SEEN 4096

typedef struct rxid {
  int64_t id;
  int32_t seqno;
} rxid;

typedef struct omsg {
  int64_t session_id, msg_id;
  int32_t seqno;
  uint8_t *body;
  size_t len;
  int redo; /* a re-delivery: goes out in a container (a fresh outer msg_id) */
} omsg;

typedef struct mvec {
  omsg *v;
  size_t n, cap;
} mvec;

typedef struct msess {
  int64_t id;
  int inited;
  int32_t out_content; /* content messages sent to this session */
  uint64_t conn;       /* connection tag of its last packet (mock_session_set_conn) */
  mvec unacked;        /* content messages sent, not acknowledged (<= MAX_UNACKED) */
  /* received (msg_id, seqno), sorted by msg_id, as a ring: entry k of the
   * sorted order is rx[(rx_head + k) % cap_rx]. It grows (doubling) up to
   * MAX_SEEN while rx_head is 0; once full, a new id evicts the lowest. */
  rxid *rx;
  size_t n_rx, cap_rx, rx_head;
} msess;

typedef struct ack {
  int64_t session_id, msg_id;
} ack;

struct mock_session {
  uint8_t key[MTCI_AUTH_KEY_LEN], key_id[8];
  int64_t salt, prev_salt;
  struct {
    int32_t since, until;
    int64_t salt;
  } issued[MAX_ISSUED_SALTS];
  size_t n_issued;
  int64_t clock_offset_ms;
  int require_init;
  size_t gzip_over;
  mock_session_handler handler;
  void *handler_ud;
  mtc_random_fn rnd;
  void *rnd_ud;
  uint64_t conn; /* tag of the connection the packets now come from (0: untracked) */

  unsigned faults;
  int force_bad, force_bad_times;
  msess sess[MAX_SESSIONS];
  size_t n_sess;
  mvec out, later, held, sent; /* sent: the last MAX_SENT_LOG answers, a ring */
  size_t sent_oldest;
  ack *acks;
  size_t n_acks, cap_acks;
  int64_t last_id, last_answer_id;
  mock_session_stats stats;
  /* the last MAX_RX_LOG messages received, oldest first from rxlog_head;
   * bodies are reused buffers (rxlog_cap bytes each) */
  mock_rx_msg rxlog[MAX_RX_LOG];
  size_t rxlog_cap[MAX_RX_LOG];
  size_t n_rxlog, rxlog_head;
};

/* ---- helpers ------------------------------------------------------------------- */

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static int64_t le64(const uint8_t *p) {
  return (int64_t)((uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32);
}

static int64_t id_ms(int64_t id) {
  uint64_t u = (uint64_t)id;
  return (int64_t)((u >> 32) * 1000u + (((u & 0xffffffffu) * 1000u) >> 32));
}

/* Server msg_id: time-based, low bits 1 (answer) or 3 (other), increasing. */
static int64_t next_id(mock_session *m, int64_t now_ms, int answer) {
  int64_t t = now_ms + m->clock_offset_ms;
  if (t < 0) t = 0;
  uint64_t id = (uint64_t)(t / 1000) << 32 | ((((uint64_t)(t % 1000)) << 32) / 1000u & ~3ull);
  if ((int64_t)id <= m->last_id) id = ((uint64_t)m->last_id & ~3ull) + 4;
  id |= answer ? 1u : 3u;
  m->last_id = (int64_t)id;
  return (int64_t)id;
}

static msess *find_sess(mock_session *m, int64_t id) {
  for (size_t i = 0; i < m->n_sess; i++)
    if (m->sess[i].id == id) return &m->sess[i];
  return NULL;
}

static void mvec_clear(mvec *v) {
  for (size_t i = 0; i < v->n; i++) free(v->v[i].body);
  v->n = 0;
}

static void free_sess(msess *s) {
  free(s->rx);
  mvec_clear(&s->unacked);
  free(s->unacked.v);
  memset(s, 0, sizeof *s);
}

static int mvec_push(mvec *v, const omsg *o) {
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 16;
    omsg *nv = realloc(v->v, nc * sizeof *nv);
    if (!nv) return MTC_ERR_NOMEM;
    v->v = nv;
    v->cap = nc;
  }
  omsg c = *o;
  c.body = malloc(o->len ? o->len : 1);
  if (!c.body) return MTC_ERR_NOMEM;
  memcpy(c.body, o->body, o->len);
  v->v[v->n++] = c;
  return 0;
}

/* A content message went out to s: keep a copy until it is acknowledged
 * (once per msg_id; the oldest goes when full). */
static void keep_unacked(msess *s, const omsg *o) {
  for (size_t i = 0; i < s->unacked.n; i++)
    if (s->unacked.v[i].msg_id == o->msg_id) return;
  if (s->unacked.n == MAX_UNACKED) {
    free(s->unacked.v[0].body);
    memmove(s->unacked.v, s->unacked.v + 1, (MAX_UNACKED - 1) * sizeof *s->unacked.v);
    s->unacked.n--;
  }
  omsg c = *o;
  c.redo = 0;
  mvec_push(&s->unacked, &c);
}

static void drop_unacked(msess *s, int64_t msg_id) {
  for (size_t i = 0; i < s->unacked.n; i++) {
    if (s->unacked.v[i].msg_id != msg_id) continue;
    free(s->unacked.v[i].body);
    memmove(s->unacked.v + i, s->unacked.v + i + 1, (s->unacked.n - i - 1) * sizeof *s->unacked.v);
    s->unacked.n--;
    return;
  }
}

/* A new connection carries s: what it never acknowledged goes out again
 * first (same msg_ids, in a container), before anything else queued. */
static void redeliver(mock_session *m, msess *s) {
  size_t k = s->unacked.n;
  if (!k) return;
  if (m->out.cap - m->out.n < k) {
    size_t nc = m->out.cap ? m->out.cap : 16;
    while (nc - m->out.n < k) nc *= 2;
    omsg *nv = realloc(m->out.v, nc * sizeof *nv);
    if (!nv) return;
    m->out.v = nv;
    m->out.cap = nc;
  }
  size_t done = 0;
  for (size_t i = 0; i < k; i++) {
    omsg c = s->unacked.v[i];
    c.body = malloc(c.len ? c.len : 1);
    if (!c.body) break;
    memcpy(c.body, s->unacked.v[i].body, c.len);
    c.redo = 1;
    memmove(m->out.v + done + 1, m->out.v + done, (m->out.n - done) * sizeof *m->out.v);
    m->out.v[done++] = c;
    m->out.n++;
  }
  m->stats.redelivered += (unsigned)done;
}

/* Queue a message for a session: assigns msg_id and seq_no now. */
static int queue(mock_session *m, mvec *v, int64_t now_ms, int64_t session_id, const uint8_t *body,
                 size_t len, int content, int answer, int64_t *id_out) {
  msess *s = find_sess(m, session_id);
  int32_t seq = 0;
  if (s) {
    seq = content ? 2 * s->out_content + 1 : 2 * s->out_content;
    if (content) s->out_content++;
  }
  omsg o = {session_id, next_id(m, now_ms, answer), seq, (uint8_t *)body, len, 0};
  if (id_out) *id_out = o.msg_id;
  return mvec_push(v, &o);
}

static int queue_w(mock_session *m, int64_t now_ms, int64_t sid, mtci_tl_writer *w, int content,
                   int answer) {
  if (w->err) return w->err;
  return queue(m, &m->out, now_ms, sid, mtci_tl_writer_data(w), w->len, content, answer, NULL);
}

static void bad_msg(mock_session *m, int64_t now_ms, int64_t sid, int64_t bad_id, int32_t seqno,
                    int32_t code) {
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, ID_BAD_MSG);
  mtci_tl_write_long(&w, bad_id);
  mtci_tl_write_int(&w, seqno);
  mtci_tl_write_int(&w, code);
  queue_w(m, now_ms, sid, &w, 0, 1);
  mtci_tl_writer_free(&w);
  if (code >= 0 && code < 80) m->stats.bad_msgs[code]++;
}

static int add_ack(mock_session *m, int64_t sid, int64_t id) {
  if (m->n_acks == m->cap_acks) {
    size_t nc = m->cap_acks ? m->cap_acks * 2 : 32;
    ack *na = realloc(m->acks, nc * sizeof *na);
    if (!na) return MTC_ERR_NOMEM;
    m->acks = na;
    m->cap_acks = nc;
  }
  m->acks[m->n_acks].session_id = sid;
  m->acks[m->n_acks].msg_id = id;
  m->n_acks++;
  return 0;
}

static void log_rx(mock_session *m, int64_t sid, int64_t salt, int64_t id, int64_t cont,
                   int32_t seqno, const uint8_t *body, size_t len) {
  if (m->n_rxlog == MAX_RX_LOG) { /* full: forget the oldest, its slot is reused */
    m->rxlog_head = (m->rxlog_head + 1) % MAX_RX_LOG;
    m->n_rxlog--;
  }
  size_t slot = (m->rxlog_head + m->n_rxlog) % MAX_RX_LOG;
  mock_rx_msg *r = &m->rxlog[slot];
  if (!r->body || m->rxlog_cap[slot] < len) {
    size_t cap = len > 64 ? len : 64;
    uint8_t *nb = realloc(r->body, cap);
    if (!nb) return; /* not logged; slot is the ring's free end either way */
    r->body = nb;
    m->rxlog_cap[slot] = cap;
  }
  if (len) memcpy(r->body, body, len);
  r->len = len;
  r->session_id = sid;
  r->salt = salt;
  r->msg_id = id;
  r->container_id = cont;
  r->seqno = seqno;
  m->n_rxlog++;
}

void mock_rpc_error(mtci_tl_writer *out, int32_t code, const char *message) {
  mtci_tl_write_u32(out, ID_RPC_ERROR);
  mtci_tl_write_int(out, code);
  mtci_tl_write_bytes(out, message, strlen(message));
}

/* ---- lifecycle ------------------------------------------------------------------ */

int mock_session_new(mock_session **out, const mock_session_config *cfg) {
  *out = NULL;
  if (!cfg || !cfg->rnd) return MTC_ERR_INVALID_ARG;
  mock_session *m = calloc(1, sizeof *m);
  if (!m) return MTC_ERR_NOMEM;
  memcpy(m->key, cfg->auth_key, sizeof m->key);
  mtci_auth_key_id(m->key, m->key_id);
  m->salt = cfg->salt;
  m->clock_offset_ms = cfg->clock_offset_ms;
  m->require_init = cfg->require_init;
  m->gzip_over = cfg->gzip_over;
  m->handler = cfg->handler;
  m->handler_ud = cfg->handler_ud;
  m->rnd = cfg->rnd;
  m->rnd_ud = cfg->rnd_ud;
  *out = m;
  return 0;
}

void mock_session_free(mock_session *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_sess; i++) free_sess(&m->sess[i]);
  mvec_clear(&m->out);
  mvec_clear(&m->later);
  mvec_clear(&m->held);
  mvec_clear(&m->sent);
  free(m->out.v);
  free(m->later.v);
  free(m->held.v);
  free(m->sent.v);
  free(m->acks);
  for (size_t i = 0; i < MAX_RX_LOG; i++) free(m->rxlog[i].body); /* empty slots too */
  mtci_zeroize(m, sizeof *m);
  free(m);
}

void mock_session_set_faults(mock_session *m, unsigned faults) { m->faults = faults; }
unsigned mock_session_faults(const mock_session *m) { return m->faults; }
void mock_session_force_bad_msg(mock_session *m, int code, int times) {
  m->force_bad = code;
  m->force_bad_times = times;
}
void mock_session_set_clock_offset(mock_session *m, int64_t ms) { m->clock_offset_ms = ms; }
void mock_session_set_conn(mock_session *m, uint64_t conn) { m->conn = conn; }
size_t mock_session_unacked(const mock_session *m, int64_t session_id) {
  for (size_t i = 0; i < m->n_sess; i++)
    if (m->sess[i].id == session_id) return m->sess[i].unacked.n;
  return 0;
}
int64_t mock_session_salt(const mock_session *m) { return m->salt; }
void mock_session_rotate_salt(mock_session *m, int64_t salt) {
  m->prev_salt = m->salt;
  m->salt = salt;
}
int64_t mock_session_last_answer_id(const mock_session *m) { return m->last_answer_id; }
const mock_session_stats *mock_session_get_stats(const mock_session *m) { return &m->stats; }
size_t mock_session_rx_count(const mock_session *m) { return m->n_rxlog; }
const mock_rx_msg *mock_session_rx(const mock_session *m, size_t i) {
  return i < m->n_rxlog ? &m->rxlog[(m->rxlog_head + i) % MAX_RX_LOG] : NULL;
}

size_t mock_session_release(mock_session *m) {
  size_t n = m->held.n;
  for (size_t i = 0; i < n; i++) {
    if (m->out.n == m->out.cap) {
      size_t nc = m->out.cap ? m->out.cap * 2 : 16;
      omsg *nv = realloc(m->out.v, nc * sizeof *nv);
      if (!nv) return i;
      m->out.v = nv;
      m->out.cap = nc;
    }
    m->out.v[m->out.n++] = m->held.v[i]; /* moves ownership */
  }
  m->held.n = 0;
  return n;
}

size_t mock_session_discard_held(mock_session *m) {
  size_t n = m->held.n;
  mvec_clear(&m->held);
  return n;
}

void mock_session_forget_sessions(mock_session *m) {
  for (size_t i = 0; i < m->n_sess; i++) free_sess(&m->sess[i]);
  m->n_sess = 0;
}

void mock_session_drop_output(mock_session *m) {
  mvec_clear(&m->out);
  mvec_clear(&m->later);
  m->n_acks = 0;
}

int mock_session_push(mock_session *m, int64_t now_ms, int64_t session_id, const uint8_t *body,
                      size_t len, int content) {
  return queue(m, &m->out, now_ms, session_id, body, len, content, 0, NULL);
}

/* ---- salts -------------------------------------------------------------------- */

static int salt_ok(const mock_session *m, int64_t salt, int64_t server_ms) {
  if (salt == m->salt || (m->prev_salt && salt == m->prev_salt)) return 1;
  int64_t t = server_ms / 1000;
  for (size_t i = 0; i < m->n_issued; i++)
    if (m->issued[i].salt == salt && m->issued[i].since <= t + 60 && t < m->issued[i].until + 1800)
      return 1;
  return 0;
}

static int draw64(mock_session *m, int64_t *v) {
  uint8_t b[8];
  int rc = m->rnd(m->rnd_ud, b, 8);
  *v = le64(b);
  return rc;
}

/* ---- queries ------------------------------------------------------------------- */

static int skip_string(mtci_tl_reader *r, char *copy, size_t cap) {
  size_t n = 0;
  const uint8_t *p = mtci_tl_read_bytes(r, &n);
  if (copy && cap) {
    size_t k = n < cap - 1 ? n : cap - 1;
    if (p && k) memcpy(copy, p, k);
    copy[p ? k : 0] = 0;
  }
  return r->err;
}

static void answer(mock_session *m, int64_t now_ms, msess *s, int64_t req_id,
                   const uint8_t *res, size_t res_len) {
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, ID_RPC_RESULT);
  mtci_tl_write_long(&w, req_id);
  int packed = 0;
  if (m->gzip_over && res_len > m->gzip_over) {
    size_t mark = w.len;
    if (mtci_tl_gzip_pack(&w, res, res_len) == 0 && w.len - mark < res_len) packed = 1;
    else w.len = mark, w.err = 0;
  }
  if (!packed) mtci_tl_write_raw(&w, res, res_len);
  m->stats.answers++;
  unsigned f = m->faults;
  if (f & MOCK_SESS_DROP_ANSWER) {
    m->faults &= ~(unsigned)MOCK_SESS_DROP_ANSWER;
  } else if ((f & MOCK_SESS_LOSE_ANSWER) && !w.err) {
    /* acknowledged, answered, and the answer lost on the way: it waits
     * among the unacknowledged messages for the next connection */
    m->faults &= ~(unsigned)MOCK_SESS_LOSE_ANSWER;
    add_ack(m, s->id, req_id);
    int64_t id = 0;
    if (queue(m, &s->unacked, now_ms, s->id, mtci_tl_writer_data(&w), w.len, 1, 1, &id) == 0)
      m->last_answer_id = id;
  } else if (!w.err) {
    mvec *dst = (f & MOCK_SESS_HOLD_ANSWERS) ? &m->held : &m->out;
    int64_t id = 0;
    if (queue(m, dst, now_ms, s->id, mtci_tl_writer_data(&w), w.len, 1, 1, &id) != 0) {
      mtci_tl_writer_free(&w);
      return;
    }
    m->last_answer_id = id;
    omsg copy = {s->id, id, dst->v[dst->n - 1].seqno, mtci_tl_writer_data(&w), w.len, 0};
    if (f & MOCK_SESS_DUP_ANSWER) {
      m->faults &= ~(unsigned)MOCK_SESS_DUP_ANSWER;
      mvec_push(&m->later, &copy);
    }
    if (m->sent.n < MAX_SENT_LOG) {
      mvec_push(&m->sent, &copy);
    } else { /* full: overwrite the oldest (the log is only searched by msg_id) */
      omsg *o = &m->sent.v[m->sent_oldest];
      uint8_t *nb = realloc(o->body, copy.len ? copy.len : 1);
      if (nb) {
        memcpy(nb, copy.body, copy.len);
        *o = copy;
        o->body = nb;
      }
      m->sent_oldest = (m->sent_oldest + 1) % MAX_SENT_LOG;
    }
  }
  mtci_tl_writer_free(&w);
}

static void on_query(mock_session *m, int64_t now_ms, msess *s, int64_t msg_id,
                     const uint8_t *body, size_t len) {
  mock_query q;
  memset(&q, 0, sizeof q);
  q.msg_id = msg_id;
  q.session_id = s->id;
  uint8_t *owned = NULL; /* inflated query */
  size_t owned_size = 0;
  const uint8_t *p = body;
  size_t n = len;
  int err = 0;
  for (int depth = 0; depth < 8 && !err; depth++) {
    uint32_t id = n >= 4 ? le32(p) : 0;
    mtci_tl_reader r;
    mtci_tl_reader_init(&r, p, n);
    if (id == ID_INVOKE_WITH_LAYER) {
      (void)mtci_tl_read_u32(&r);
      q.layer = mtci_tl_read_int(&r);
    } else if (id == ID_INIT_CONNECTION) {
      (void)mtci_tl_read_u32(&r);
      int32_t flags = mtci_tl_read_int(&r);
      m->stats.init_api_id = mtci_tl_read_int(&r);
      m->stats.init_proxy_address[0] = 0;
      m->stats.init_proxy_port = 0;
      skip_string(&r, m->stats.init_device_model, sizeof m->stats.init_device_model);
      for (int i = 0; i < 4; i++) skip_string(&r, NULL, 0);
      skip_string(&r, m->stats.init_lang_code, sizeof m->stats.init_lang_code);
      if (flags & 1) { /* inputClientProxy address:string port:int */
        mtci_tl_expect(&r, ID_INPUT_CLIENT_PROXY);
        skip_string(&r, m->stats.init_proxy_address, sizeof m->stats.init_proxy_address);
        m->stats.init_proxy_port = mtci_tl_read_int(&r);
        m->stats.init_with_proxy++;
      }
      if (flags & 2) mtci_tl_fail(&r, MTC_ERR_UNSUPPORTED); /* JSONValue params: not needed */
      m->stats.init_layer = q.layer;
      q.wrapped = 1;
    } else if (id == ID_GZIP) {
      mtci_tl_unwrapped u;
      if (mtci_tl_gzip_unpack(p, n, 0, &u)) {
        err = 1;
        break;
      }
      if (owned) {
        mtci_zeroize(owned, owned_size);
        free(owned);
      }
      owned = u.owned;
      owned_size = u.owned_size;
      p = u.data;
      n = u.len;
      q.gzipped = 1;
      continue;
    } else {
      break;
    }
    if (r.err || r.pos >= n) {
      err = 1;
      break;
    }
    p += r.pos;
    n -= r.pos;
  }
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  if (err || n < 4) {
    mock_rpc_error(&w, 400, "INPUT_REQUEST_INVALID");
  } else {
    q.method = le32(p);
    q.body = p;
    q.len = n;
    m->stats.queries++;
    if (q.wrapped) {
      m->stats.wrapped_queries++;
      s->inited = 1;
    }
    if (q.gzipped) m->stats.gzipped_queries++;
    if (m->require_init && !s->inited) {
      mock_rpc_error(&w, 400, "CONNECTION_NOT_INITED");
    } else if (!m->handler) {
      mtci_tl_write_u32(&w, ID_BOOL_TRUE);
    } else if (m->handler(m->handler_ud, &q, &w) == MOCK_NO_ANSWER) {
      mtci_tl_writer_free(&w);
      if (!(m->faults & MOCK_SESS_NO_ACKS)) add_ack(m, s->id, msg_id);
      if (owned) {
        mtci_zeroize(owned, owned_size);
        free(owned);
      }
      return;
    }
  }
  if (!w.err) answer(m, now_ms, s, msg_id, mtci_tl_writer_data(&w), w.len);
  mtci_tl_writer_free(&w);
  if (owned) {
    mtci_zeroize(owned, owned_size);
    free(owned);
  }
}

/* ---- one client message ------------------------------------------------------------ */

static int is_content(uint32_t id) {
  return !(id == ID_MSGS_ACK || id == ID_PING || id == ID_PING_DD || id == ID_HTTP_WAIT ||
           id == ID_CONTAINER);
}

/* Pings and acks are accepted with either seq_no parity, as Telegram's
 * servers do: tdlib sends them as service messages (even), Telethon its pings
 * as content (odd), and mtcute sends every message, msgs_ack included, as
 * content-related (odd seq_no; mtproto-session.js writeMessage) and works
 * against the production servers. Counted in odd_service_msgs, so a test of
 * a client that should send them even can still tell. */
static int any_parity(uint32_t id) {
  return id == ID_PING || id == ID_PING_DD || id == ID_MSGS_ACK;
}

/* Entry k (0 = lowest) of the session's sorted window. */
static rxid *rx_at(const msess *s, size_t k) {
  size_t i = s->rx_head + k;
  return &s->rx[i < s->cap_rx ? i : i - s->cap_rx];
}

/* Index (in sorted order) of the first entry with an id >= id. The newest
 * id is almost always the highest: checked first. */
static size_t rx_lower(const msess *s, int64_t id) {
  if (s->n_rx == 0 || rx_at(s, s->n_rx - 1)->id < id) return s->n_rx;
  size_t lo = 0, hi = s->n_rx - 1;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (rx_at(s, mid)->id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* 1 if id is in the window, -1 if it is below a full window (too old to
 * tell: treated as seen), 0 if new. */
static int seen_state(const msess *s, int64_t id) {
  if (s->n_rx == MAX_SEEN && id < rx_at(s, 0)->id) return -1;
  size_t k = rx_lower(s, id);
  return k < s->n_rx && rx_at(s, k)->id == id;
}

static int seen_before(const msess *s, int64_t id) { return seen_state(s, id) != 0; }

/* 0 ok, or the bad_msg code for the seq_no order (32 too low, 33 too high),
 * against the neighbours in the window. */
static int seq_order(const msess *s, int64_t id, int32_t seqno) {
  size_t lo = rx_lower(s, id);
  if (lo > 0) { /* the message before this one */
    const rxid *p = rx_at(s, lo - 1);
    if (p->seqno > seqno || (p->seqno == seqno && (seqno & 1))) return 32;
  }
  if (lo < s->n_rx) { /* the message after it */
    const rxid *nx = rx_at(s, lo);
    if (nx->seqno < seqno || (nx->seqno == seqno && (seqno & 1))) return 33;
  }
  return 0;
}

/* Add a new id (not seen_before). O(1) for an id above the others, else it
 * moves the higher entries up by one. */
static void record(msess *s, int64_t id, int32_t seqno) {
  if (s->n_rx == s->cap_rx && s->cap_rx < MAX_SEEN) { /* rx_head is 0 until full */
    size_t nc = s->cap_rx ? s->cap_rx * 2 : 64;
    rxid *nr = realloc(s->rx, nc * sizeof *nr);
    if (!nr) return;
    s->rx = nr;
    s->cap_rx = nc;
  }
  if (s->n_rx == MAX_SEEN) { /* forget the lowest */
    s->rx_head = s->rx_head + 1 < s->cap_rx ? s->rx_head + 1 : 0;
    s->n_rx--;
  }
  size_t k = rx_lower(s, id);
  for (size_t i = s->n_rx; i > k; i--) *rx_at(s, i) = *rx_at(s, i - 1);
  rx_at(s, k)->id = id;
  rx_at(s, k)->seqno = seqno;
  s->n_rx++;
}

static void on_message(mock_session *m, int64_t now_ms, msess *s, int64_t salt, int64_t cont_id,
                       int64_t msg_id, int32_t seqno, const uint8_t *body, size_t len) {
  log_rx(m, s->id, salt, msg_id, cont_id, seqno, body, len);
  m->stats.msgs_in++;
  if (msg_id % 4 != 0) {
    bad_msg(m, now_ms, s->id, msg_id, seqno, 18);
    return;
  }
  if (cont_id && msg_id >= cont_id) {
    bad_msg(m, now_ms, s->id, msg_id, seqno, 64);
    return;
  }
  if (seen_before(s, msg_id)) return; /* duplicate: already processed */
  uint32_t cid = len >= 4 ? le32(body) : 0;
  int content = is_content(cid);
  if (content && !(seqno & 1)) {
    bad_msg(m, now_ms, s->id, msg_id, seqno, 35);
    return;
  }
  if (!content && (seqno & 1) && !any_parity(cid)) {
    bad_msg(m, now_ms, s->id, msg_id, seqno, 34);
    return;
  }
  if (!content && (seqno & 1)) m->stats.odd_service_msgs++;
  if (content && m->force_bad && m->force_bad_times > 0) {
    int code = m->force_bad;
    if (--m->force_bad_times == 0) m->force_bad = 0;
    bad_msg(m, now_ms, s->id, msg_id, seqno, code);
    return;
  }
  int order = seq_order(s, msg_id, seqno);
  if (order) {
    bad_msg(m, now_ms, s->id, msg_id, seqno, order);
    return;
  }
  record(s, msg_id, seqno);

  mtci_tl_reader r;
  mtci_tl_reader_init(&r, body, len);
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  switch (cid) {
  case ID_MSGS_ACK: {
    (void)mtci_tl_read_u32(&r);
    uint32_t k = mtci_tl_read_vector(&r, 8);
    if (!r.err) m->stats.acks_in += k;
    for (uint32_t i = 0; i < k && !r.err; i++) {
      int64_t id = mtci_tl_read_long(&r);
      if (!r.err) drop_unacked(s, id);
    }
    break;
  }
  case ID_PING:
  case ID_PING_DD: {
    (void)mtci_tl_read_u32(&r);
    int64_t ping_id = mtci_tl_read_long(&r);
    if (cid == ID_PING_DD) {
      int32_t delay = mtci_tl_read_int(&r);
      m->stats.last_disconnect_delay = delay;
      m->stats.disconnect_at_ms = now_ms + (int64_t)delay * 1000;
    }
    if (r.err) break;
    m->stats.pings++;
    mtci_tl_write_u32(&w, ID_PONG);
    mtci_tl_write_long(&w, msg_id);
    mtci_tl_write_long(&w, ping_id);
    queue_w(m, now_ms, s->id, &w, 0, 1);
    break;
  }
  case ID_GET_FUTURE_SALTS: {
    (void)mtci_tl_read_u32(&r);
    int32_t num = mtci_tl_read_int(&r);
    if (r.err || num < 1) break;
    if (num > 64) num = 64;
    m->stats.future_salts_req++;
    if (m->faults & MOCK_SESS_NO_SALTS) break;
    int32_t now_s = (int32_t)((now_ms + m->clock_offset_ms) / 1000);
    mtci_tl_write_u32(&w, ID_FUTURE_SALTS);
    mtci_tl_write_long(&w, msg_id);
    mtci_tl_write_int(&w, now_s);
    mtci_tl_write_u32(&w, (uint32_t)num); /* bare vector of bare future_salt */
    m->n_issued = 0;
    for (int32_t i = 0; i < num; i++) {
      int64_t salt_i = m->salt;
      if (i > 0 && draw64(m, &salt_i)) salt_i = i;
      int32_t since = now_s - 1800 + i * 1800, until = since + 3600;
      mtci_tl_write_int(&w, since);
      mtci_tl_write_int(&w, until);
      mtci_tl_write_long(&w, salt_i);
      m->issued[m->n_issued].since = since;
      m->issued[m->n_issued].until = until;
      m->issued[m->n_issued].salt = salt_i;
      m->n_issued++;
    }
    queue_w(m, now_ms, s->id, &w, 1, 1);
    break;
  }
  case ID_DESTROY_SESSION: {
    (void)mtci_tl_read_u32(&r);
    int64_t sid = mtci_tl_read_long(&r);
    if (r.err) break;
    msess *t = find_sess(m, sid);
    int ok = t && t != s;
    if (ok) free_sess(t); /* the slot (id 0) is reused */
    mtci_tl_write_u32(&w, ok ? ID_DESTROY_OK : ID_DESTROY_NONE);
    mtci_tl_write_long(&w, sid);
    queue_w(m, now_ms, s->id, &w, 1, 1);
    break;
  }
  case ID_STATE_REQ: {
    (void)mtci_tl_read_u32(&r);
    uint32_t k = mtci_tl_read_vector(&r, 8);
    if (r.err) break;
    mtci_tl_write_u32(&w, ID_STATE_INFO);
    mtci_tl_write_long(&w, msg_id);
    uint8_t *info = mtci_tl_write_bytes_reserve(&w, k);
    for (uint32_t i = 0; i < k && info; i++) {
      int st = seen_state(s, mtci_tl_read_long(&r));
      info[i] = st > 0 ? 4 : st < 0 ? 1 : 2; /* received / unknown (too old) / not received */
    }
    queue_w(m, now_ms, s->id, &w, 1, 1);
    break;
  }
  case ID_RESEND_ANS_REQ: {
    (void)mtci_tl_read_u32(&r);
    uint32_t k = mtci_tl_read_vector(&r, 8);
    for (uint32_t i = 0; i < k && !r.err; i++) {
      int64_t id = mtci_tl_read_long(&r);
      for (size_t j = 0; j < m->sent.n; j++)
        if (m->sent.v[j].msg_id == id && m->sent.v[j].session_id == s->id)
          mvec_push(&m->out, &m->sent.v[j]);
    }
    break;
  }
  case ID_RESEND_REQ:
  case ID_HTTP_WAIT:
    break;
  default:
    on_query(m, now_ms, s, msg_id, body, len);
    break;
  }
  mtci_tl_writer_free(&w);
}

/* ---- packets ------------------------------------------------------------------------ */

int mock_session_feed(mock_session *m, int64_t now_ms, const uint8_t *pkt, size_t len) {
  if (len < 24 + 48 || (len - 24) % 16 != 0) return MTC_ERR_SESSION_LENGTH;
  if (memcmp(pkt, m->key_id, 8) != 0) return MTC_ERR_SESSION_KEY_ID;
  size_t n = len - 24;
  uint8_t *pt = malloc(n);
  if (!pt) return MTC_ERR_NOMEM;
  uint8_t key[32], iv[32], mk[16];
  mtci_mtp2_kdf(m->key, pkt + 8, 0, key, iv);
  mtci_aes256_ige_decrypt(key, iv, pkt + 24, pt, n);
  mtci_mtp2_msg_key(m->key, 0, pt, n, mk, NULL);
  int rc = 0;
  uint32_t dlen = le32(pt + 28);
  if (memcmp(mk, pkt + 8, 16) != 0) rc = MTC_ERR_SESSION_MSG_KEY;
  else if (dlen % 4 != 0 || dlen < 4 || (size_t)dlen + 32 + 12 > n || n - 32 - dlen > 1024)
    rc = MTC_ERR_SESSION_PADDING;
  if (rc) {
    free(pt);
    return rc;
  }
  m->stats.packets_in++;
  int64_t salt = le64(pt), sid = le64(pt + 8), msg_id = le64(pt + 16);
  int32_t seqno = (int32_t)le32(pt + 24);
  const uint8_t *body = pt + 32;
  int64_t server_ms = now_ms + m->clock_offset_ms;

  msess *s = find_sess(m, sid);
  if (!s) {
    if (m->n_sess == MAX_SESSIONS) { /* forget the oldest */
      free_sess(&m->sess[0]);
      memmove(m->sess, m->sess + 1, (MAX_SESSIONS - 1) * sizeof m->sess[0]);
      memset(&m->sess[MAX_SESSIONS - 1], 0, sizeof m->sess[0]);
      m->n_sess--;
    }
    s = find_sess(m, 0); /* a destroyed session's slot */
    if (!s || sid == 0) s = &m->sess[m->n_sess++];
    memset(s, 0, sizeof *s);
    s->id = sid;
    int64_t unique = 0;
    draw64(m, &unique);
    mtci_tl_writer w;
    mtci_tl_writer_init(&w, 0);
    mtci_tl_write_u32(&w, ID_NEW_SESSION);
    mtci_tl_write_long(&w, msg_id);
    mtci_tl_write_long(&w, unique);
    mtci_tl_write_long(&w, m->salt);
    queue_w(m, now_ms, sid, &w, 1, 0);
    mtci_tl_writer_free(&w);
    m->stats.new_sessions++;
  }
  /* the session moved to another connection: re-deliver after this packet
   * (its acks first drop what the client already has) */
  int moved = m->conn && s->conn && s->conn != m->conn;
  if (m->conn) s->conn = m->conn;
  if (msg_id % 4 != 0) {
    bad_msg(m, now_ms, sid, msg_id, seqno, 18);
  } else if (id_ms(msg_id) < server_ms - 300000) {
    bad_msg(m, now_ms, sid, msg_id, seqno, 16);
  } else if (id_ms(msg_id) > server_ms + 30000) {
    bad_msg(m, now_ms, sid, msg_id, seqno, 17);
  } else {
    if (m->faults & MOCK_SESS_BAD_SALT_ONCE) {
      m->faults &= ~(unsigned)MOCK_SESS_BAD_SALT_ONCE;
      int64_t ns = 0;
      draw64(m, &ns);
      m->salt = ns;
      m->prev_salt = 0;
      m->n_issued = 0;
    }
    if (!salt_ok(m, salt, server_ms)) {
      mtci_tl_writer w;
      mtci_tl_writer_init(&w, 0);
      mtci_tl_write_u32(&w, ID_BAD_SALT);
      mtci_tl_write_long(&w, msg_id);
      mtci_tl_write_int(&w, seqno);
      mtci_tl_write_int(&w, 48);
      mtci_tl_write_long(&w, m->salt);
      queue_w(m, now_ms, sid, &w, 0, 1);
      mtci_tl_writer_free(&w);
      m->stats.bad_server_salts++;
    } else if (dlen >= 4 && le32(body) == ID_CONTAINER) {
      m->stats.containers_in++;
      mtci_tl_container c;
      if (seqno & 1) {
        bad_msg(m, now_ms, sid, msg_id, seqno, 34);
      } else if (mtci_tl_container_parse(&c, body, dlen) != 0) {
        bad_msg(m, now_ms, sid, msg_id, seqno, 64);
      } else {
        mtci_tl_message msg;
        while (mtci_tl_container_next(&c, &msg)) {
          on_message(m, now_ms, s, salt, msg_id, msg.msg_id, msg.seqno, msg.body, msg.body_len);
        }
      }
    } else {
      on_message(m, now_ms, s, salt, 0, msg_id, seqno, body, dlen);
    }
  }
  if (moved) redeliver(m, s);
  mtci_zeroize(pt, n);
  free(pt);
  return 0;
}

int mock_session_pop(mock_session *m, int64_t now_ms, mtci_tl_writer *out) {
  mvec *src = m->out.n ? &m->out : &m->later;
  int64_t sid;
  if (src->n) sid = src->v[0].session_id;
  else if (m->n_acks) sid = m->acks[0].session_id;
  else return 0;
  msess *s = find_sess(m, sid);

  /* messages of this session, in order, up to the container limits */
  size_t take[1020], nt = 0, total = 8;
  for (size_t i = 0; i < src->n && nt < 1019; i++) {
    if (src->v[i].session_id != sid) continue;
    if (nt > 0 && total + 16 + src->v[i].len > 32768) break;
    take[nt++] = i;
    total += 16 + src->v[i].len;
  }
  /* pending acks of this session */
  mtci_tl_writer ackw;
  mtci_tl_writer_init(&ackw, 0);
  size_t na = 0;
  for (size_t i = 0; i < m->n_acks; i++) na += m->acks[i].session_id == sid;
  omsg ackm = {0};
  if (na && total + 16 + 12 + 8 * na <= 32768) {
    mtci_tl_write_u32(&ackw, ID_MSGS_ACK);
    mtci_tl_write_u32(&ackw, ID_VECTOR);
    mtci_tl_write_u32(&ackw, (uint32_t)na);
    size_t k = 0;
    for (size_t i = 0; i < m->n_acks; i++) {
      if (m->acks[i].session_id == sid) mtci_tl_write_long(&ackw, m->acks[i].msg_id);
      else m->acks[k++] = m->acks[i];
    }
    m->n_acks = k;
    ackm.session_id = sid;
    ackm.msg_id = next_id(m, now_ms, 1);
    ackm.seqno = s ? 2 * s->out_content : 0;
    ackm.body = mtci_tl_writer_data(&ackw);
    ackm.len = ackw.len;
  } else {
    na = 0;
  }
  size_t count = nt + (na ? 1 : 0);

  mtci_tl_writer pw;
  mtci_tl_writer_init(&pw, 0);
  mtci_tl_write_long(&pw, m->salt);
  mtci_tl_write_long(&pw, sid);
  if (count == 1 && !(nt && src->v[take[0]].redo)) {
    const omsg *o = nt ? &src->v[take[0]] : &ackm;
    mtci_tl_write_long(&pw, o->msg_id);
    mtci_tl_write_int(&pw, o->seqno);
    mtci_tl_write_u32(&pw, (uint32_t)o->len);
    mtci_tl_write_raw(&pw, o->body, o->len);
  } else {
    int64_t cid = next_id(m, now_ms, 0);
    size_t dlen = 8;
    for (size_t i = 0; i < nt; i++) dlen += 16 + src->v[take[i]].len;
    if (na) dlen += 16 + ackm.len;
    mtci_tl_write_long(&pw, cid);
    mtci_tl_write_int(&pw, s ? 2 * s->out_content : 0);
    mtci_tl_write_u32(&pw, (uint32_t)dlen);
    mtci_tl_write_u32(&pw, ID_CONTAINER);
    mtci_tl_write_u32(&pw, (uint32_t)count);
    for (size_t i = 0; i < count; i++) {
      const omsg *o = i < nt ? &src->v[take[i]] : &ackm;
      mtci_tl_write_long(&pw, o->msg_id);
      mtci_tl_write_int(&pw, o->seqno);
      mtci_tl_write_u32(&pw, (uint32_t)o->len);
      mtci_tl_write_raw(&pw, o->body, o->len);
    }
  }
  /* padding: 12..27 bytes to a multiple of 16, plus a random 0..3 blocks */
  uint8_t r1 = 0;
  m->rnd(m->rnd_ud, &r1, 1);
  size_t pad = 12 + (16 - (pw.len + 12) % 16) % 16 + 16 * (size_t)(r1 % 4);
  uint8_t *pp = mtci_tl_write_reserve(&pw, pad);
  int rc = pw.err;
  if (!rc) rc = m->rnd(m->rnd_ud, pp, pad);
  if (!rc) {
    uint8_t *pt = mtci_tl_writer_data(&pw);
    size_t n = pw.len;
    uint8_t mk[16], key[32], iv[32];
    mtci_mtp2_msg_key(m->key, 8, pt, n, mk, NULL);
    mtci_mtp2_kdf(m->key, mk, 8, key, iv);
    mtci_aes256_ige_encrypt(key, iv, pt, pt, n);
    mtci_tl_write_raw(out, m->key_id, 8);
    mtci_tl_write_raw(out, mk, 16);
    mtci_tl_write_raw(out, pt, n);
    rc = out->err;
  }
  mtci_tl_writer_free(&pw);
  mtci_tl_writer_free(&ackw);
  /* remove what was sent (indices ascending); content stays unacked */
  size_t k = 0, t = 0;
  for (size_t i = 0; i < src->n; i++) {
    if (t < nt && take[t] == i) {
      if (!rc && s && (src->v[i].seqno & 1)) keep_unacked(s, &src->v[i]);
      free(src->v[i].body);
      t++;
    } else {
      src->v[k++] = src->v[i];
    }
  }
  src->n = k;
  return rc ? rc : 1;
}
