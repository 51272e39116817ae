/* mock_echo_dc: see mock_echo_dc.h. TEST CODE. */
#include "mock_echo_dc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "transport/obfuscated2.h"

#define ECHO_HIGH_WATER (1u << 20) /* pause reading while this much is unsent */
#define ECHO_CHUNK (64u << 10)

struct echo_conn {
  mock_echo_dc *dc;
  mock_conn *c;
  struct echo_conn *prev, *next;
  int ready; /* header accepted */
  mtci_obfs obfs;
};

struct mock_echo_dc {
  mock_loop *loop;
  int listener;
  uint16_t port;
  struct echo_conn *conns;
  mock_echo_stats st;
};

static void echo_unlink(struct echo_conn *e) {
  mock_echo_dc *d = e->dc;
  if (e->prev) e->prev->next = e->next;
  else d->conns = e->next;
  if (e->next) e->next->prev = e->prev;
  mtci_obfs_free(&e->obfs);
  free(e);
}

static void echo_on_data(mock_conn *c, void *ud) {
  struct echo_conn *e = ud;
  size_t len;
  const uint8_t *p = mock_conn_data(c, &len);
  if (!e->ready) {
    if (len < MTCI_OBFS_HEADER_LEN) return;
    uint32_t tag = 0;
    int16_t dc = 0;
    if (mtci_obfs_server_init(&e->obfs, p, NULL, MTCI_OBFS_ALLOW_ALL, &tag, &dc) < 0) {
      e->dc->st.bad_headers++;
      mock_conn_close(c);
      return;
    }
    e->ready = 1;
    e->dc->st.handshakes_ok++;
    e->dc->st.last_tag = tag;
    e->dc->st.last_dc_id = dc;
    mock_conn_consume(c, MTCI_OBFS_HEADER_LEN);
    p = mock_conn_data(c, &len);
  }
  /* Echo in chunks; stop taking input while the peer is not reading. */
  while (len > 0 && mock_conn_pending(c) < ECHO_HIGH_WATER) {
    size_t n = len < ECHO_CHUNK ? len : ECHO_CHUNK;
    uint8_t *out = mock_conn_send_reserve(c, n);
    if (!out) return;
    mtci_obfs_decrypt(&e->obfs, p, out, n);
    mtci_obfs_encrypt(&e->obfs, out, out, n);
    e->dc->st.bytes_echoed += n;
    mock_conn_consume(c, n);
    p = mock_conn_data(c, &len);
  }
  if (len > 0) mock_conn_pause(c, 1);
}

static void echo_on_drain(mock_conn *c, void *ud) {
  (void)ud;
  mock_conn_pause(c, 0); /* re-delivers what is buffered */
}

static void echo_on_close(mock_conn *c, void *ud, int reason) {
  (void)c;
  (void)reason;
  echo_unlink(ud);
}

static const mock_conn_handler echo_handler = {
    .on_data = echo_on_data, .on_drain = echo_on_drain, .on_close = echo_on_close};

static void echo_on_accept(mock_loop *l, mock_conn *c, void *ud) {
  (void)l;
  mock_echo_dc *d = ud;
  d->st.accepted++;
  struct echo_conn *e = calloc(1, sizeof *e);
  if (!e) {
    mock_conn_close(c);
    return;
  }
  e->dc = d;
  e->c = c;
  e->next = d->conns;
  if (d->conns) d->conns->prev = e;
  d->conns = e;
  mock_conn_set_handler(c, &echo_handler, e);
}

int mock_echo_dc_new(mock_loop *l, uint16_t port, mock_echo_dc **out) {
  *out = NULL;
  mock_echo_dc *d = calloc(1, sizeof *d);
  if (!d) return -ENOMEM;
  d->loop = l;
  int id = mock_loop_listen(l, port, echo_on_accept, d, &d->port);
  if (id < 0) {
    free(d);
    return id;
  }
  d->listener = id;
  *out = d;
  return 0;
}

uint16_t mock_echo_dc_port(const mock_echo_dc *d) { return d->port; }

void mock_echo_dc_stats(const mock_echo_dc *d, mock_echo_stats *out) { *out = d->st; }

void mock_echo_dc_free(mock_echo_dc *d) {
  if (!d) return;
  mock_loop_unlisten(d->loop, d->listener);
  while (d->conns) {
    struct echo_conn *e = d->conns;
    mock_conn_set_handler(e->c, NULL, NULL); /* no callbacks into freed memory */
    mock_conn_close(e->c);
    echo_unlink(e);
  }
  free(d);
}
