/* One client connection: stack + key creation + session (see conn.h). */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

int mtci_conn_fail(mtci_conn *c, int err) {
  if (!c->err) c->err = err ? err : MTC_ERR_INTERNAL;
  if (c->phase != MTCI_CONN_DEAD) {
    c->phase = MTCI_CONN_DEAD;
    if (c->sess) mtci_session_on_disconnect(c->sess);
  }
  return c->err;
}

int mtci_conn_init(mtci_conn *c, const mtci_stack_config *sc, int fd, const char *ip,
                   uint16_t port, unsigned addr_flags, int64_t now_ms, int64_t dial_timeout_ms) {
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->phase = MTCI_CONN_DIAL;
  if (ip) {
    size_t n = strlen(ip);
    if (n >= sizeof c->ip) n = sizeof c->ip - 1;
    memcpy(c->ip, ip, n);
  }
  c->port = port;
  c->addr_flags = addr_flags;
  c->started_ms = now_ms;
  c->phase_deadline = now_ms + dial_timeout_ms;
  int rc = mtci_stack_init(&c->st, sc);
  if (rc) {
    mtci_stack_free(&c->st);
    c->phase = MTCI_CONN_DEAD;
    c->err = rc;
    return rc;
  }
  c->stack_up = 1;
  return 0;
}

int mtci_conn_connected(mtci_conn *c, int64_t now_ms, int64_t timeout_ms) {
  if (c->phase == MTCI_CONN_DEAD) return c->err;
  if (c->phase != MTCI_CONN_DIAL) return mtci_conn_fail(c, MTC_ERR_INTERNAL);
  int64_t unix_ms = now_ms + c->clock_fix_ms; /* the caller's best estimate of real time */
  int64_t unix_s = unix_ms >= 0 ? unix_ms / 1000 : 0;
  int rc = mtci_stack_start(&c->st, unix_s);
  if (rc < 0) return mtci_conn_fail(c, rc);
  if (rc == 1) {
    c->phase = MTCI_CONN_IDLE;
    c->phase_deadline = INT64_MAX;
    return 1;
  }
  c->phase = MTCI_CONN_STACK;
  c->phase_deadline = now_ms + timeout_ms;
  return 0;
}

/* End the key creation: wipe and free its state. */
static void hs_drop(mtci_conn *c) {
  if (!c->hs) return;
  mtci_handshake_free(c->hs);
  mtci_zeroize(c->hs, sizeof *c->hs);
  free(c->hs);
  c->hs = NULL;
}

/* Queue the handshake's pending request in its envelope. */
static int send_hs_request(mtci_conn *c, int64_t now_ms) {
  uint8_t env[MTCI_UNENC_HEADER_LEN + MTCI_HS_REQ_MAX];
  size_t n = 0;
  int rc = mtci_handshake_emit_envelope(c->hs, (double)now_ms / 1000.0, env, sizeof env, &n);
  if (!rc) rc = mtci_stack_send_packet(&c->st, env, n, 0);
  c->hs_last_msg_id = c->hs->last_msg_id;
  mtci_zeroize(env, sizeof env);
  if (!rc) c->packets_out++;
  return rc;
}

int mtci_conn_start_auth(mtci_conn *c, const mtci_handshake_params *p, int64_t now_ms,
                         int64_t timeout_ms) {
  if (c->phase == MTCI_CONN_DEAD) return c->err;
  if (c->phase != MTCI_CONN_IDLE || c->sess || c->hs) return MTC_ERR_INVALID_ARG;
  c->hs = calloc(1, sizeof *c->hs);
  if (!c->hs) return mtci_conn_fail(c, MTC_ERR_NOMEM);
  int rc = mtci_handshake_init(c->hs, p);
  if (rc) {
    hs_drop(c);
    return mtci_conn_fail(c, rc);
  }
  c->hs->last_msg_id = c->hs_last_msg_id; /* a second key on this connection (PFS): ids go on rising */
  rc = mtci_handshake_start(c->hs);
  if (rc != MTCI_HS_SEND) return mtci_conn_fail(c, rc < 0 ? rc : MTC_ERR_AUTH_STATE);
  rc = send_hs_request(c, now_ms);
  if (rc) return mtci_conn_fail(c, rc);
  c->phase = MTCI_CONN_AUTH;
  c->phase_deadline = now_ms + timeout_ms;
  return 0;
}

int mtci_conn_take_key(mtci_conn *c, mtci_auth_result *out) {
  if (!c->key_done) return MTC_ERR_AUTH_STATE;
  *out = c->key;
  mtci_auth_result_clear(&c->key);
  c->key_done = 0;
  return 0;
}

int mtci_conn_attach(mtci_conn *c, mtci_session *s, int64_t now_ms) {
  if (!s || c->phase != MTCI_CONN_IDLE || c->sess) return MTC_ERR_INVALID_ARG;
  c->sess = s;
  c->had_session = 1;
  c->phase = MTCI_CONN_READY;
  c->phase_deadline = INT64_MAX;
  mtci_session_on_reconnect(s, now_ms);
  return 0;
}

void mtci_conn_detach(mtci_conn *c) {
  if (c->sess) mtci_session_on_disconnect(c->sess);
  c->sess = NULL;
  if (c->phase == MTCI_CONN_READY) c->phase = MTCI_CONN_IDLE;
}

/* One received MTProto packet. */
static int on_packet(mtci_conn *c, const uint8_t *p, size_t n, int64_t now_ms) {
  c->packets_in++;
  if (c->phase == MTCI_CONN_AUTH) {
    int rc = mtci_handshake_feed_envelope(c->hs, p, n, (double)now_ms / 1000.0);
    if (rc == MTCI_HS_SEND) {
      c->healthy = 1;
      return send_hs_request(c, now_ms);
    }
    if (rc == MTCI_HS_FINISHED) {
      c->healthy = 1;
      rc = mtci_handshake_result(c->hs, &c->key);
      if (rc) return rc;
      c->key_done = 1;
      c->hs_last_msg_id = c->hs->last_msg_id;
      hs_drop(c);
      c->phase = MTCI_CONN_IDLE;
      c->phase_deadline = INT64_MAX;
      return 0;
    }
    return rc < 0 ? rc : MTC_ERR_AUTH_STATE;
  }
  if (c->phase == MTCI_CONN_READY && c->sess) {
    int rc = mtci_session_feed_packet(c->sess, now_ms, p, n);
    if (rc < 0) return rc;
    if (rc == 0) c->healthy = 1;
    return 0;
  }
  /* IDLE: nothing was asked; a server never speaks first */
  return MTC_ERR_AUTH_UNEXPECTED;
}

int mtci_conn_feed(mtci_conn *c, const uint8_t *data, size_t len, int64_t now_ms) {
  if (c->phase == MTCI_CONN_DEAD) return c->err;
  if (c->phase == MTCI_CONN_DIAL) return mtci_conn_fail(c, MTC_ERR_INTERNAL);
  if (c->phase == MTCI_CONN_READY && c->sess && len) mtci_session_on_bytes_received(c->sess, now_ms);
  const uint8_t *p = data;
  size_t n = len;
  for (;;) {
    size_t used = 0;
    mtci_stack_event ev;
    memset(&ev, 0, sizeof ev);
    int r = mtci_stack_feed(&c->st, p, n, &used, &ev);
    if (r < 0) return mtci_conn_fail(c, r);
    p += used;
    n -= used;
    if (r == 0) break;
    int rc = 0;
    switch (ev.type) {
    case MTCI_STACK_READY:
      if (c->phase == MTCI_CONN_STACK) {
        c->phase = MTCI_CONN_IDLE;
        c->phase_deadline = INT64_MAX;
      }
      break;
    case MTCI_STACK_PACKET: rc = on_packet(c, ev.data, ev.len, now_ms); break;
    case MTCI_STACK_QUICK_ACK:
      if (c->sess) (void)mtci_session_on_quick_ack(c->sess, ev.quick_ack);
      break;
    case MTCI_STACK_TRANSPORT_ERROR:
      c->terr_code = ev.error_code;
      rc = ev.error ? ev.error : MTC_ERR_TRANSPORT_ERROR;
      break;
    default: rc = MTC_ERR_INTERNAL; break;
    }
    if (rc) return mtci_conn_fail(c, rc);
  }
  return 0;
}

int mtci_conn_eof(mtci_conn *c) {
  if (c->phase == MTCI_CONN_DEAD) return c->err;
  int rc = c->stack_up ? mtci_stack_eof(&c->st) : 0;
  return mtci_conn_fail(c, rc ? rc : MTC_ERR_TRANSPORT_CLOSED);
}

int mtci_conn_flush(mtci_conn *c, int64_t now_ms) {
  if (c->phase == MTCI_CONN_DEAD) return c->err;
  if (c->phase != MTCI_CONN_READY || !c->sess) return 0;
  if (!c->w_up) {
    mtci_tl_writer_init(&c->w, 0);
    c->w_up = 1;
  }
  int count = 0;
  for (int guard = 0; guard < 4096; guard++) {
    mtci_tl_writer_reset(&c->w);
    /* backpressure: past the soft limit only what the session's timers wait for */
    int r = mtci_stack_queued(&c->st) < MTCI_CONN_OUT_SOFT
                ? mtci_session_build_packet(c->sess, now_ms, &c->w, NULL)
                : mtci_session_build_service_packet(c->sess, now_ms, &c->w, NULL);
    if (r < 0) return mtci_conn_fail(c, r);
    if (r == 0) break;
    r = mtci_stack_send_packet(&c->st, mtci_tl_writer_data(&c->w), c->w.len, 0);
    if (r < 0) return mtci_conn_fail(c, r);
    c->packets_out++;
    count++;
  }
  c->held = mtci_session_unsent(c->sess) > 0;
  return count;
}

int mtci_conn_held(const mtci_conn *c) {
  return c->phase == MTCI_CONN_READY && c->sess && c->held && mtci_session_unsent(c->sess) > 0;
}

size_t mtci_conn_pending(const mtci_conn *c, const uint8_t **p) {
  *p = NULL;
  if (!c->stack_up || c->phase == MTCI_CONN_DIAL) return 0;
  return mtci_stack_pending(&c->st, p);
}

int mtci_conn_consumed(mtci_conn *c, size_t n) {
  if (!c->stack_up) return MTC_ERR_INVALID_ARG;
  return mtci_stack_consumed(&c->st, n);
}

int64_t mtci_conn_deadline(const mtci_conn *c) {
  switch (c->phase) {
  case MTCI_CONN_DIAL:
  case MTCI_CONN_STACK:
  case MTCI_CONN_AUTH: return c->phase_deadline;
  case MTCI_CONN_READY: return c->sess ? mtci_session_next_deadline(c->sess) : INT64_MAX;
  default: return INT64_MAX;
  }
}

int mtci_conn_on_deadline(mtci_conn *c, int64_t now_ms) {
  switch (c->phase) {
  case MTCI_CONN_DEAD: return c->err;
  case MTCI_CONN_DIAL:
  case MTCI_CONN_STACK:
  case MTCI_CONN_AUTH:
    if (now_ms >= c->phase_deadline) return mtci_conn_fail(c, MTC_ERR_TIMEOUT);
    return 0;
  case MTCI_CONN_READY:
    if (c->sess && now_ms >= mtci_session_next_deadline(c->sess)) {
      int rc = mtci_session_on_deadline(c->sess, now_ms);
      if (rc) return mtci_conn_fail(c, rc);
    }
    return 0;
  default: return 0;
  }
}

void mtci_conn_trim(mtci_conn *c) {
  if (!c) return;
  if (c->stack_up) mtci_stack_trim(&c->st);
  if (c->w_up) { /* flush() sets it up again */
    mtci_tl_writer_free(&c->w);
    c->w_up = 0;
  }
}

uint64_t mtci_conn_bytes_in(const mtci_conn *c) { return c->stack_up ? mtci_stack_bytes_in(&c->st) : 0; }
uint64_t mtci_conn_bytes_out(const mtci_conn *c) {
  return c->stack_up ? mtci_stack_bytes_out(&c->st) : 0;
}

void mtci_conn_free(mtci_conn *c) {
  if (!c) return;
  mtci_conn_detach(c);
  hs_drop(c);
  mtci_auth_result_clear(&c->key);
  if (c->stack_up) mtci_stack_free(&c->st);
  if (c->w_up) mtci_tl_writer_free(&c->w);
  mtci_zeroize(c, sizeof *c);
  c->fd = -1;
}
