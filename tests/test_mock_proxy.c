/*
 * The mock MTProxy (tests/mockdc/mock_proxy.*) over real loopback sockets.
 *
 * Each case starts a mock_loop thread running an echo DC (obfuscated2
 * server side, no secret, echoes the decrypted stream) and the proxy with
 * DCs 2 and 4 pointing at it. The client side is our library code:
 * mtci_obfs_client_init with the proxy secret, and for fake-TLS
 * mtci_tls_client_hello + the ServerHello check + the record writer/reader.
 * Every socket operation has a 5 s deadline, so a bug fails, never hangs.
 *
 * Negative cases check that the proxy closed the connection having sent
 * zero bytes and that the reject counter for the reason went up by one.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "mock_echo_dc.h"
#include "mock_loop.h"
#include "mock_proxy.h"
#include "test.h"
#include "test_net.h"
#include "transport/faketls.h"
#include "transport/obfuscated2.h"

#define IO_TIMEOUT_MS 5000
#define DOMAIN "example.com"

static const uint8_t SECRET[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                   0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};

/* ---- environment: loop thread + echo DC + proxy ------------------------------ */

struct env {
  mock_loop *loop;
  mock_echo_dc *echo;
  mock_proxy *px;
  mtci_drbg *rng;
};

struct env_opts {
  unsigned modes;
  size_t replay_cap;
  uint32_t hs_timeout_ms;
  int64_t clock_offset;
};

static int env_up(struct env *e, const struct env_opts *o) {
  memset(e, 0, sizeof *e);
  e->rng = mtci_drbg_new();
  if (!e->rng || mock_loop_new(&e->loop) < 0) return -1;
  if (mock_echo_dc_new(e->loop, 0, &e->echo) < 0) return -1;
  uint16_t ep = mock_echo_dc_port(e->echo);
  mock_proxy_dc dcs[2] = {{2, ep}, {4, ep}};
  mock_proxy_config cfg;
  memset(&cfg, 0, sizeof cfg);
  memcpy(cfg.secret, SECRET, 16);
  cfg.modes = o ? o->modes : 0;
  cfg.tls_domain = DOMAIN;
  cfg.dcs = dcs;
  cfg.n_dcs = 2;
  cfg.replay_cap = o ? o->replay_cap : 0;
  cfg.handshake_timeout_ms = o ? o->hs_timeout_ms : 0;
  cfg.clock_offset = o ? o->clock_offset : 0;
  if (mock_proxy_new(e->loop, &cfg, &e->px) < 0) return -1;
  return mock_loop_start_thread(e->loop);
}

static void env_down(struct env *e) {
  if (e->loop) mock_loop_stop_thread(e->loop);
  mock_proxy_free(e->px);
  mock_echo_dc_free(e->echo);
  mock_loop_free(e->loop);
  mtci_drbg_free(e->rng);
  memset(e, 0, sizeof *e);
}

static void env_stats(struct env *e, mock_proxy_stats *st, mock_echo_stats *es) {
  mock_loop_lock(e->loop);
  if (st) mock_proxy_stats_get(e->px, st);
  if (es) mock_echo_dc_stats(e->echo, es);
  mock_loop_unlock(e->loop);
}

/* Sum of all reject counters. */
static uint64_t rejects_total(const mock_proxy_stats *st) {
  uint64_t n = 0;
  for (int i = 0; i < MOCK_PROXY_REJ_COUNT; i++) n += st->rejects[i];
  return n;
}

/* ---- client built from the library's transport code ---------------------------- */

enum { K_PLAIN, K_DD, K_EE };

struct client {
  int fd;
  int tls;
  mtci_drbg *rng;
  mtci_obfs obfs;
  uint8_t hdr[MTCI_OBFS_HEADER_LEN];
  int hdr_sent;
  uint8_t hello[MTCI_TLS_HELLO_LEN];
  mtci_tls_sh sh;
  int sh_done;
  mtci_tls_reader rd;
  mtci_tls_writer wr;
  uint8_t *rx; /* decrypted bytes received */
  size_t rx_len, rx_cap;
  size_t raw_rx; /* bytes read from the socket */
  int closed;
  int err;
};

static int tcp_connect(uint16_t port) {
  int fd = test_tcp_connect(port, IO_TIMEOUT_MS);
  if (fd < 0) return -1;
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Received bytes: ServerHello check, TLS records, obfuscated2 decryption. */
static int client_feed(struct client *c, const uint8_t *d, size_t n) {
  c->raw_rx += n;
  if (c->tls && !c->sh_done) {
    size_t used = 0;
    int rc = mtci_tls_sh_feed(&c->sh, d, n, &used);
    if (rc < 0) return c->err = rc;
    if (rc == 0) return 0;
    c->sh_done = 1;
    d += used;
    n -= used;
  }
  if (n == 0) return 0;
  if (c->rx_cap - c->rx_len < n) {
    size_t nc = c->rx_cap ? c->rx_cap : 4096;
    while (nc - c->rx_len < n) nc *= 2;
    uint8_t *p = realloc(c->rx, nc);
    if (!p) return c->err = -1;
    c->rx = p;
    c->rx_cap = nc;
  }
  uint8_t *out = c->rx + c->rx_len;
  size_t plain = n;
  if (c->tls) {
    int rc = mtci_tls_reader_feed(&c->rd, d, n, out, &plain);
    if (rc < 0) return c->err = rc;
    d = out;
  }
  if (!c->hdr_sent) return c->err = -1; /* nothing may arrive before we spoke */
  mtci_obfs_decrypt(&c->obfs, d, out, plain);
  c->rx_len += plain;
  return 0;
}

/* Send out[0..n) while reading, until it is all sent, *and* (if set) the
 * ServerHello is verified and rx holds want_rx bytes. 0, or -1 on timeout,
 * early close or a decoding error. */
static int client_pump(struct client *c, const uint8_t *out, size_t n, size_t want_rx,
                       int want_sh) {
  int64_t deadline = mock_loop_now_ms() + IO_TIMEOUT_MS;
  size_t sent = 0;
  uint8_t buf[65536];
  while (sent < n || c->rx_len < want_rx || (want_sh && !c->sh_done)) {
    if (c->closed || c->err) return -1;
    int64_t left = deadline - mock_loop_now_ms();
    if (left <= 0) return -1;
    struct pollfd p = {.fd = c->fd, .events = (short)(POLLIN | (sent < n ? POLLOUT : 0))};
    if (poll(&p, 1, (int)left) < 0 && errno != EINTR) return -1;
    if ((p.revents & POLLOUT) && sent < n) {
      ssize_t k = send(c->fd, out + sent, n - sent, MSG_NOSIGNAL);
      if (k > 0) sent += (size_t)k;
      else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) c->closed = 1;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t k = recv(c->fd, buf, sizeof buf, 0);
      if (k > 0) client_feed(c, buf, (size_t)k);
      else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) c->closed = 1;
    }
  }
  return 0;
}

/*
 * Wait for the peer to close. Returns the bytes received meanwhile (the
 * negative tests want 0), or -1 if it stayed open for IO_TIMEOUT_MS.
 * A reset counts as a close.
 */
static long client_wait_close(struct client *c) {
  int64_t deadline = mock_loop_now_ms() + IO_TIMEOUT_MS;
  long got = 0;
  uint8_t buf[4096];
  while (!c->closed) {
    int64_t left = deadline - mock_loop_now_ms();
    if (left <= 0) return -1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, (int)left) < 0 && errno != EINTR) return -1;
    if (!p.revents) continue;
    ssize_t k = recv(c->fd, buf, sizeof buf, 0);
    if (k > 0) got += k;
    else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) c->closed = 1;
  }
  return got;
}

struct client_opts {
  int kind;
  uint32_t tag;
  int16_t dc_id;
  const uint8_t *secret; /* NULL: SECRET */
  int64_t hello_time;    /* 0: now */
  const char *sni;       /* NULL: DOMAIN */
  int no_wait_sh;        /* fake-TLS: send the hello, do not wait for the answer */
};

static void client_init(struct client *c) {
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

static void client_close(struct client *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  mtci_obfs_free(&c->obfs);
  mtci_tls_sh_free(&c->sh);
  free(c->rx);
  c->rx = NULL;
}

/* Connect; for fake-TLS send the ClientHello and verify the ServerHello;
 * prepare (not send) the obfuscated2 header. 0 or -1. */
static int client_open(struct client *c, struct env *e, const struct client_opts *o) {
  memset(c, 0, sizeof *c);
  c->rng = e->rng;
  c->fd = tcp_connect(mock_proxy_port(e->px));
  if (c->fd < 0) return -1;
  const uint8_t *secret = o->secret ? o->secret : SECRET;
  c->tls = o->kind == K_EE;
  if (c->tls) {
    const char *sni = o->sni ? o->sni : DOMAIN;
    int64_t t = o->hello_time ? o->hello_time : (int64_t)time(NULL);
    if (mtci_tls_client_hello(secret, (const uint8_t *)sni, strlen(sni), t, mtci_drbg_random,
                              c->rng, NULL, c->hello) < 0)
      return -1;
    mtci_tls_sh_init(&c->sh, secret, c->hello + MTCI_TLS_RANDOM_OFFSET);
    mtci_tls_reader_init(&c->rd);
    mtci_tls_writer_init(&c->wr, 0);
    if (client_pump(c, c->hello, sizeof c->hello, 0, !o->no_wait_sh) < 0) return -1;
  }
  return mtci_obfs_client_init(&c->obfs, o->tag, o->dc_id, secret,
                               c->tls ? MTCI_OBFS_INSIDE_TLS : 0, mtci_drbg_random, c->rng,
                               c->hdr) < 0
             ? -1
             : 0;
}

/* The bytes that carry data[0..n) (header first if not sent yet, TLS
 * records for fake-TLS). Caller frees *out. */
static int client_encode(struct client *c, const uint8_t *data, size_t n, uint8_t **out,
                         size_t *out_len) {
  size_t h = c->hdr_sent ? 0 : MTCI_OBFS_HEADER_LEN;
  uint8_t *plain = malloc(h + n + 1);
  if (!plain) return -1;
  memcpy(plain, c->hdr, h);
  if (n) mtci_obfs_encrypt(&c->obfs, data, plain + h, n);
  c->hdr_sent = 1;
  if (!c->tls) {
    *out = plain;
    *out_len = h + n;
    return 0;
  }
  size_t cap = mtci_tls_writer_size(&c->wr, h + n);
  *out = malloc(cap + 1);
  int rc = *out ? mtci_tls_writer_emit(&c->wr, plain, h + n, *out, cap, out_len) : -1;
  free(plain);
  return rc < 0 ? -1 : 0;
}

/* Send data and wait until the same bytes came back. 0 or -1. */
static int client_echo(struct client *c, const uint8_t *data, size_t n) {
  uint8_t *out = NULL;
  size_t len = 0;
  size_t base = c->rx_len;
  if (client_encode(c, data, n, &out, &len) < 0) return -1;
  int rc = client_pump(c, out, len, base + n, 0);
  free(out);
  if (rc < 0 || c->rx_len != base + n || memcmp(c->rx + base, data, n) != 0) return -1;
  return 0;
}

/* Send the header (and data) without expecting anything back. */
static int client_send_hdr(struct client *c, const uint8_t *data, size_t n) {
  uint8_t *out = NULL;
  size_t len = 0;
  if (client_encode(c, data, n, &out, &len) < 0) return -1;
  int rc = client_pump(c, out, len, 0, 0);
  free(out);
  return rc;
}

static void fill(uint8_t *p, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(test_rand64(&seed) >> 24);
}

/* ---- positive cases ------------------------------------------------------------ */

/* One echo round trip through the proxy; checks the counters it implies. */
static int echo_case(const struct env_opts *eo, const struct client_opts *co, size_t len,
                     int dc_index, uint32_t want_tag) {
  struct env e;
  struct client c;
  int ok = -1;
  uint8_t *data = malloc(len);
  memset(&e, 0, sizeof e);
  client_init(&c);
  if (data && env_up(&e, eo) == 0 && client_open(&c, &e, co) == 0) {
    fill(data, len, len * 31 + co->tag);
    if (client_echo(&c, data, len) == 0 && client_echo(&c, data, len / 3) == 0) {
      mock_proxy_stats st;
      mock_echo_stats es;
      env_stats(&e, &st, &es);
      size_t total = len + len / 3;
      ok = st.accepted == 1 && st.handshakes_ok == 1 && rejects_total(&st) == 0 &&
                   st.upstream_connects[dc_index] == 1 &&
                   st.upstream_connects[1 - dc_index] == 0 && st.bytes_client_to_dc == total &&
                   st.bytes_dc_to_client == total &&
                   st.tls_hellos_ok == (co->kind == K_EE ? 1u : 0u) && es.handshakes_ok == 1 &&
                   es.last_tag == want_tag && es.last_dc_id == co->dc_id &&
                   es.bytes_echoed == total
               ? 0
               : -1;
      if (ok) {
        char js[1024];
        mock_proxy_stats_json(&st, js, sizeof js);
        fprintf(stderr, "    stats %s\n", js);
      }
    }
  }
  client_close(&c);
  env_down(&e);
  free(data);
  return ok;
}

TEST(plain_ef_echo) {
  struct client_opts co = {.kind = K_PLAIN, .tag = MTCI_OBFS_TAG_ABRIDGED, .dc_id = 2};
  CHECK_EQ_INT(echo_case(NULL, &co, 1000, 0, MTCI_OBFS_TAG_ABRIDGED), 0);
}

TEST(plain_ee_echo) {
  struct client_opts co = {.kind = K_PLAIN, .tag = MTCI_OBFS_TAG_INTERMEDIATE, .dc_id = 2};
  CHECK_EQ_INT(echo_case(NULL, &co, 1000, 0, MTCI_OBFS_TAG_INTERMEDIATE), 0);
}

TEST(dd_echo) {
  struct client_opts co = {.kind = K_DD, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  CHECK_EQ_INT(echo_case(NULL, &co, 1000, 0, MTCI_OBFS_TAG_PADDED), 0);
}

TEST(ee_echo) {
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  CHECK_EQ_INT(echo_case(NULL, &co, 1000, 0, MTCI_OBFS_TAG_PADDED), 0);
}

/* -4 (media DC 4) reaches DC 4 and the DC sees the signed id. */
TEST(media_dc_abs) {
  struct client_opts co = {.kind = K_DD, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = -4};
  CHECK_EQ_INT(echo_case(NULL, &co, 300, 1, MTCI_OBFS_TAG_PADDED), 0);
}

/* Only the configured modes are needed for each kind. */
TEST(mode_exact) {
  struct env_opts classic = {.modes = MOCK_PROXY_MODE_CLASSIC};
  struct env_opts secure = {.modes = MOCK_PROXY_MODE_SECURE};
  struct env_opts tls = {.modes = MOCK_PROXY_MODE_TLS};
  struct client_opts ef = {.kind = K_PLAIN, .tag = MTCI_OBFS_TAG_ABRIDGED, .dc_id = 2};
  struct client_opts dd = {.kind = K_DD, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  struct client_opts ee = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  CHECK_EQ_INT(echo_case(&classic, &ef, 100, 0, MTCI_OBFS_TAG_ABRIDGED), 0);
  CHECK_EQ_INT(echo_case(&secure, &dd, 100, 0, MTCI_OBFS_TAG_PADDED), 0);
  CHECK_EQ_INT(echo_case(&tls, &ee, 100, 0, MTCI_OBFS_TAG_PADDED), 0);
}

/* Inside the window (d = now - ts, -1200 < d < 600: the client may be up
 * to 20 min ahead or 10 min behind): 500 s behind, 700 s and 1100 s ahead,
 * and a "time since boot" timestamp (< 86400000) mtprotoproxy lets through. */
TEST(ee_time_window_ok) {
  int64_t now = (int64_t)time(NULL);
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  co.hello_time = now - 500;
  CHECK_EQ_INT(echo_case(NULL, &co, 64, 0, MTCI_OBFS_TAG_PADDED), 0);
  co.hello_time = now + 700;
  CHECK_EQ_INT(echo_case(NULL, &co, 64, 0, MTCI_OBFS_TAG_PADDED), 0);
  co.hello_time = now + 1100;
  CHECK_EQ_INT(echo_case(NULL, &co, 64, 0, MTCI_OBFS_TAG_PADDED), 0);
  co.hello_time = 1000;
  CHECK_EQ_INT(echo_case(NULL, &co, 64, 0, MTCI_OBFS_TAG_PADDED), 0);
}

/* The server clock offset moves the window: a client 5000 s behind real time
 * matches a server 5000 s behind. */
TEST(server_clock_offset) {
  struct env_opts eo = {.clock_offset = -5000};
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  co.hello_time = (int64_t)time(NULL) - 5000;
  CHECK_EQ_INT(echo_case(&eo, &co, 64, 0, MTCI_OBFS_TAG_PADDED), 0);
}

/* 3 MiB each way, sent while reading: TLS records split both ways, the relay's
 * backpressure and buffer growth. */
TEST(ee_big_transfer) {
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  CHECK_EQ_INT(echo_case(NULL, &co, 3u << 20, 0, MTCI_OBFS_TAG_PADDED), 0);
}

TEST(plain_big_transfer) {
  struct client_opts co = {.kind = K_PLAIN, .tag = MTCI_OBFS_TAG_INTERMEDIATE, .dc_id = 2};
  CHECK_EQ_INT(echo_case(NULL, &co, 3u << 20, 0, MTCI_OBFS_TAG_INTERMEDIATE), 0);
}

/* Two clients at once on one proxy, interleaved. */
TEST(two_clients) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, NULL), 0);
  struct client a, b;
  client_init(&a);
  client_init(&b);
  struct client_opts ca = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  struct client_opts cb = {.kind = K_PLAIN, .tag = MTCI_OBFS_TAG_ABRIDGED, .dc_id = -4};
  int ok = client_open(&a, &e, &ca) == 0 && client_open(&b, &e, &cb) == 0;
  uint8_t d1[5000], d2[7000];
  fill(d1, sizeof d1, 1);
  fill(d2, sizeof d2, 2);
  ok = ok && client_echo(&a, d1, sizeof d1) == 0 && client_echo(&b, d2, sizeof d2) == 0 &&
       client_echo(&a, d2, sizeof d2) == 0 && client_echo(&b, d1, sizeof d1) == 0;
  mock_proxy_stats st;
  env_stats(&e, &st, NULL);
  client_close(&a);
  client_close(&b);
  env_down(&e);
  CHECK(ok);
  CHECK_EQ_INT(st.handshakes_ok, 2);
  CHECK_EQ_INT(st.upstream_connects[0], 1);
  CHECK_EQ_INT(st.upstream_connects[1], 1);
  CHECK_EQ_INT(st.bytes_client_to_dc, 24000);
}

/* The replay set is bounded FIFO: with room for 2, the first of three headers
 * is forgotten and may come again; the newest may not. */
TEST(replay_set_evicts_oldest) {
  struct env_opts eo = {.replay_cap = 2};
  struct env e;
  CHECK_EQ_INT(env_up(&e, &eo), 0);
  struct client_opts co = {.kind = K_PLAIN, .tag = MTCI_OBFS_TAG_ABRIDGED, .dc_id = 2};
  uint8_t hdrs[3][MTCI_OBFS_HEADER_LEN];
  int ok = 1;
  for (int i = 0; i < 3 && ok; i++) {
    struct client c;
    ok = client_open(&c, &e, &co) == 0 && client_echo(&c, (const uint8_t *)"ping", 4) == 0;
    memcpy(hdrs[i], c.hdr, sizeof c.hdr);
    client_close(&c);
  }
  /* replay header 0 (evicted): accepted; header 2: rejected */
  struct client r0, r2;
  client_init(&r0);
  client_init(&r2);
  ok = ok && client_open(&r0, &e, &co) == 0;
  if (ok) {
    memcpy(r0.hdr, hdrs[0], sizeof r0.hdr);
    ok = client_send_hdr(&r0, NULL, 0) == 0;
  }
  ok = ok && client_open(&r2, &e, &co) == 0;
  long got = -2;
  if (ok) {
    memcpy(r2.hdr, hdrs[2], sizeof r2.hdr);
    ok = client_send_hdr(&r2, NULL, 0) == 0;
    got = client_wait_close(&r2);
  }
  client_close(&r2);
  /* r0 is still open: the proxy relayed its header */
  int64_t until = mock_loop_now_ms() + IO_TIMEOUT_MS;
  mock_proxy_stats st;
  do {
    env_stats(&e, &st, NULL);
  } while (st.handshakes_ok < 4 && mock_loop_now_ms() < until);
  client_close(&r0);
  env_down(&e);
  CHECK(ok);
  CHECK_EQ_INT(got, 0);
  CHECK_EQ_INT(st.handshakes_ok, 4);
  CHECK_EQ_INT(st.rejects[MOCK_PROXY_REJ_OBFS_REPLAY], 1);
  CHECK_EQ_INT(rejects_total(&st), 1);
}

/* ---- negative cases ------------------------------------------------------------- */

/*
 * Open with co (for fake-TLS the hello goes out; want_sh says whether its
 * answer is expected), send the obfuscated2 header (+ a few bytes) if
 * send_hdr, then require a close with no further byte and exactly one
 * reject, for `reason`.
 */
static int reject_case(const struct env_opts *eo, const struct client_opts *co, int send_hdr,
                       int reason, int want_handshakes) {
  struct env e;
  struct client c;
  memset(&e, 0, sizeof e);
  client_init(&c);
  int ok = -1;
  if (env_up(&e, eo) == 0 && client_open(&c, &e, co) == 0) {
    size_t before = c.raw_rx;
    if (!send_hdr || client_send_hdr(&c, (const uint8_t *)"hello", 5) == 0) {
      long got = client_wait_close(&c);
      mock_proxy_stats st;
      env_stats(&e, &st, NULL);
      ok = got == 0 && c.raw_rx == before && st.rejects[reason] == 1 && rejects_total(&st) == 1 &&
                   st.handshakes_ok == (uint64_t)want_handshakes && st.upstream_connects[0] == 0 &&
                   st.upstream_connects[1] == 0 && st.rejected_bytes_sent == before
               ? 0
               : -1;
      if (ok) {
        char js[1024];
        mock_proxy_stats_json(&st, js, sizeof js);
        fprintf(stderr, "    got %ld, stats %s\n", got, js);
      }
    }
  }
  client_close(&c);
  env_down(&e);
  return ok;
}

static const uint8_t WRONG[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                  0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x11};

TEST(wrong_secret_plain) {
  struct client_opts co = {
      .kind = K_PLAIN, .tag = MTCI_OBFS_TAG_ABRIDGED, .dc_id = 2, .secret = WRONG};
  CHECK_EQ_INT(reject_case(NULL, &co, 1, MOCK_PROXY_REJ_OBFS_TAG, 0), 0);
  co.tag = MTCI_OBFS_TAG_INTERMEDIATE;
  CHECK_EQ_INT(reject_case(NULL, &co, 1, MOCK_PROXY_REJ_OBFS_TAG, 0), 0);
}

TEST(wrong_secret_dd) {
  struct client_opts co = {.kind = K_DD, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2, .secret = WRONG};
  CHECK_EQ_INT(reject_case(NULL, &co, 1, MOCK_PROXY_REJ_OBFS_TAG, 0), 0);
}

TEST(wrong_secret_ee) {
  struct client_opts co = {.kind = K_EE,
                           .tag = MTCI_OBFS_TAG_PADDED,
                           .dc_id = 2,
                           .secret = WRONG,
                           .no_wait_sh = 1};
  CHECK_EQ_INT(reject_case(NULL, &co, 0, MOCK_PROXY_REJ_TLS_DIGEST, 0), 0);
}

/* Client clock 1300 s and 700 s behind (d >= 600). */
TEST(ee_stale_past) {
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2, .no_wait_sh = 1};
  co.hello_time = (int64_t)time(NULL) - 1300;
  CHECK_EQ_INT(reject_case(NULL, &co, 0, MOCK_PROXY_REJ_TLS_TIME, 0), 0);
  co.hello_time = (int64_t)time(NULL) - 700;
  CHECK_EQ_INT(reject_case(NULL, &co, 0, MOCK_PROXY_REJ_TLS_TIME, 0), 0);
}

/* Client clock 1300 s ahead (d <= -1200). */
TEST(ee_stale_future) {
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2, .no_wait_sh = 1};
  co.hello_time = (int64_t)time(NULL) + 1300;
  CHECK_EQ_INT(reject_case(NULL, &co, 0, MOCK_PROXY_REJ_TLS_TIME, 0), 0);
}

/* A client at real time against a server clock 5000 s behind. */
TEST(ee_server_clock_behind) {
  struct env_opts eo = {.clock_offset = -5000};
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2, .no_wait_sh = 1};
  CHECK_EQ_INT(reject_case(&eo, &co, 0, MOCK_PROXY_REJ_TLS_TIME, 0), 0);
}

TEST(ee_wrong_sni) {
  struct client_opts co = {
      .kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2, .sni = "example.org", .no_wait_sh = 1};
  CHECK_EQ_INT(reject_case(NULL, &co, 0, MOCK_PROXY_REJ_TLS_SNI, 0), 0);
}

/* The same ClientHello twice: the first gets its ServerHello, the second
 * is closed silently. */
TEST(ee_replayed_hello) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, NULL), 0);
  struct client a, b;
  client_init(&a);
  client_init(&b);
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  int ok = client_open(&a, &e, &co) == 0 && a.sh_done;
  b.fd = tcp_connect(mock_proxy_port(e.px));
  ok = ok && b.fd >= 0 && client_pump(&b, a.hello, sizeof a.hello, 0, 0) == 0;
  long got = ok ? client_wait_close(&b) : -2;
  mock_proxy_stats st;
  env_stats(&e, &st, NULL);
  client_close(&a);
  client_close(&b);
  env_down(&e);
  CHECK(ok);
  CHECK_EQ_INT(got, 0);
  CHECK_EQ_INT(b.raw_rx, 0);
  CHECK_EQ_INT(st.tls_hellos_ok, 1);
  CHECK_EQ_INT(st.rejects[MOCK_PROXY_REJ_TLS_REPLAY], 1);
  CHECK_EQ_INT(rejects_total(&st), 1);
}

/* The same obfuscated2 header on a second connection. */
TEST(obfs_replayed_header) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, NULL), 0);
  struct client a, b;
  client_init(&a);
  client_init(&b);
  struct client_opts co = {.kind = K_DD, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  int ok = client_open(&a, &e, &co) == 0 && client_echo(&a, (const uint8_t *)"abc", 3) == 0;
  ok = ok && client_open(&b, &e, &co) == 0;
  long got = -2;
  if (ok) {
    memcpy(b.hdr, a.hdr, sizeof b.hdr);
    ok = client_send_hdr(&b, NULL, 0) == 0;
    got = client_wait_close(&b);
  }
  mock_proxy_stats st;
  env_stats(&e, &st, NULL);
  client_close(&a);
  client_close(&b);
  env_down(&e);
  CHECK(ok);
  CHECK_EQ_INT(got, 0);
  CHECK_EQ_INT(b.raw_rx, 0);
  CHECK_EQ_INT(st.handshakes_ok, 1);
  CHECK_EQ_INT(st.rejects[MOCK_PROXY_REJ_OBFS_REPLAY], 1);
  CHECK_EQ_INT(rejects_total(&st), 1);
}

/* Modes (mock_proxy.h step 11): dd needs "secure", ef/ee need "classic". */
TEST(dd_to_classic_only) {
  struct env_opts eo = {.modes = MOCK_PROXY_MODE_CLASSIC | MOCK_PROXY_MODE_TLS};
  struct client_opts co = {.kind = K_DD, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  CHECK_EQ_INT(reject_case(&eo, &co, 1, MOCK_PROXY_REJ_OBFS_TAG_NOT_ALLOWED, 0), 0);
}

TEST(plain_to_secure_only) {
  struct env_opts eo = {.modes = MOCK_PROXY_MODE_SECURE | MOCK_PROXY_MODE_TLS};
  struct client_opts co = {.kind = K_PLAIN, .tag = MTCI_OBFS_TAG_ABRIDGED, .dc_id = 2};
  CHECK_EQ_INT(reject_case(&eo, &co, 1, MOCK_PROXY_REJ_OBFS_TAG_NOT_ALLOWED, 0), 0);
  co.tag = MTCI_OBFS_TAG_INTERMEDIATE;
  CHECK_EQ_INT(reject_case(&eo, &co, 1, MOCK_PROXY_REJ_OBFS_TAG_NOT_ALLOWED, 0), 0);
}

/* A TLS-only proxy takes no raw obfuscated2; a proxy without "tls" no hello. */
TEST(raw_to_tls_only) {
  struct env_opts eo = {.modes = MOCK_PROXY_MODE_TLS};
  struct client_opts co = {.kind = K_DD, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  CHECK_EQ_INT(reject_case(&eo, &co, 1, MOCK_PROXY_REJ_MODE, 0), 0);
}

TEST(ee_to_no_tls) {
  struct env_opts eo = {.modes = MOCK_PROXY_MODE_CLASSIC | MOCK_PROXY_MODE_SECURE};
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2, .no_wait_sh = 1};
  CHECK_EQ_INT(reject_case(&eo, &co, 0, MOCK_PROXY_REJ_MODE, 0), 0);
}

/* Inside TLS only dd: an ef header after a good ServerHello is closed with
 * nothing more sent. */
TEST(ee_inner_tag_not_dd) {
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_ABRIDGED, .dc_id = 2};
  CHECK_EQ_INT(reject_case(NULL, &co, 1, MOCK_PROXY_REJ_OBFS_TAG_NOT_ALLOWED, 0), 0);
}

/* DC 3 and DC 0 are not in the table (2 and 4 are). The header itself was
 * good, so it counts as a handshake, as in mtprotoproxy. */
TEST(unknown_dc) {
  struct client_opts co = {.kind = K_PLAIN, .tag = MTCI_OBFS_TAG_ABRIDGED, .dc_id = 3};
  CHECK_EQ_INT(reject_case(NULL, &co, 1, MOCK_PROXY_REJ_UNKNOWN_DC, 1), 0);
  co.dc_id = 0;
  CHECK_EQ_INT(reject_case(NULL, &co, 1, MOCK_PROXY_REJ_UNKNOWN_DC, 1), 0);
  struct client_opts dd = {.kind = K_DD, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = -3};
  CHECK_EQ_INT(reject_case(NULL, &dd, 1, MOCK_PROXY_REJ_UNKNOWN_DC, 1), 0);
}

/* After the ServerHello, a record of another type (a 16 handshake record)
 * where the header should be. */
TEST(ee_bad_record_after_hello) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, NULL), 0);
  struct client c;
  client_init(&c);
  struct client_opts co = {.kind = K_EE, .tag = MTCI_OBFS_TAG_PADDED, .dc_id = 2};
  int ok = client_open(&c, &e, &co) == 0;
  size_t before = c.raw_rx;
  static const uint8_t bad[] = {0x16, 0x03, 0x03, 0x00, 0x02, 0x00, 0x00};
  ok = ok && client_pump(&c, bad, sizeof bad, 0, 0) == 0;
  long got = ok ? client_wait_close(&c) : -2;
  mock_proxy_stats st;
  env_stats(&e, &st, NULL);
  size_t after = c.raw_rx;
  client_close(&c);
  env_down(&e);
  CHECK(ok);
  CHECK_EQ_INT(got, 0);
  CHECK_EQ_INT(after, before);
  CHECK_EQ_INT(st.rejects[MOCK_PROXY_REJ_TLS_RECORD], 1);
  CHECK_EQ_INT(rejects_total(&st), 1);
}

/* Silence, or half a header, until the handshake timer fires. */
TEST(handshake_timeout) {
  struct env_opts eo = {.hs_timeout_ms = 200};
  struct env e;
  CHECK_EQ_INT(env_up(&e, &eo), 0);
  struct client a, b;
  client_init(&a);
  client_init(&b);
  a.fd = tcp_connect(mock_proxy_port(e.px));
  b.fd = tcp_connect(mock_proxy_port(e.px));
  uint8_t half[30];
  fill(half, sizeof half, 9);
  half[0] = 0x42;
  int64_t t0 = mock_loop_now_ms();
  int ok = a.fd >= 0 && b.fd >= 0 && client_pump(&b, half, sizeof half, 0, 0) == 0;
  long ga = ok ? client_wait_close(&a) : -2;
  long gb = ok ? client_wait_close(&b) : -2;
  int64_t took = mock_loop_now_ms() - t0;
  mock_proxy_stats st;
  env_stats(&e, &st, NULL);
  client_close(&a);
  client_close(&b);
  env_down(&e);
  CHECK(ok);
  CHECK_EQ_INT(ga, 0);
  CHECK_EQ_INT(gb, 0);
  CHECK(took >= 150 && took < 3000);
  CHECK_EQ_INT(st.rejects[MOCK_PROXY_REJ_TIMEOUT], 2);
  CHECK_EQ_INT(rejects_total(&st), 2);
}

/* ---- stats text and the loop itself -------------------------------------------- */

TEST(stats_json_format) {
  mock_proxy_stats s;
  memset(&s, 0, sizeof s);
  s.accepted = 7;
  s.tls_hellos_ok = 2;
  s.handshakes_ok = 5;
  s.rejects[MOCK_PROXY_REJ_TLS_TIME] = 1;
  s.rejects[MOCK_PROXY_REJ_INCOMPLETE] = 3;
  s.bytes_client_to_dc = 1234;
  s.bytes_dc_to_client = 18446744073709551615ull;
  s.active = 1;
  s.n_dcs = 2;
  s.dc_ids[0] = 2;
  s.dc_ids[1] = -4;
  s.upstream_connects[0] = 4;
  s.upstream_connects[1] = 1;
  static const char want[] =
      "{\"accepted\":7,\"tls_hellos_ok\":2,\"handshakes_ok\":5,\"rejects\":{\"mode\":0,"
      "\"tls_malformed\":0,\"tls_digest\":0,\"tls_time\":1,\"tls_sni\":0,\"tls_replay\":0,"
      "\"tls_record\":0,\"obfs_tag\":0,\"obfs_tag_not_allowed\":0,\"obfs_replay\":0,"
      "\"unknown_dc\":0,\"timeout\":0,\"incomplete\":3},\"rejected_bytes_sent\":0,"
      "\"bytes_client_to_dc\":1234,\"bytes_dc_to_client\":18446744073709551615,"
      "\"upstream_failures\":0,\"active\":1,\"upstream_connects\":{\"2\":4,\"-4\":1}}";
  char buf[1024];
  int n = mock_proxy_stats_json(&s, buf, sizeof buf);
  CHECK_EQ_INT(n, (int)strlen(want));
  CHECK(strcmp(buf, want) == 0);
  CHECK_EQ_INT(mock_proxy_stats_json(&s, buf, strlen(want)), -1); /* no room for the NUL */
  CHECK_EQ_INT(mock_proxy_stats_json(&s, buf, strlen(want) + 1), (int)strlen(want));
  CHECK(strcmp(mock_proxy_reject_name(MOCK_PROXY_REJ_COUNT), "?") == 0);
}

struct tick {
  int order[4];
  int n;
};

static void tick_fn(mock_loop *l, void *ud, int v) {
  struct tick *t = ud;
  if (t->n < 4) t->order[t->n++] = v;
  if (v == 3) mock_loop_stop(l);
}
static void tick1(mock_loop *l, void *ud) { tick_fn(l, ud, 1); }
static void tick2(mock_loop *l, void *ud) { tick_fn(l, ud, 2); }
static void tick3(mock_loop *l, void *ud) { tick_fn(l, ud, 3); }

/* Timers fire in due order, a cancelled one never; stop ends run(); run()
 * returns on its time limit. */
TEST(loop_timers) {
  mock_loop *l;
  CHECK_EQ_INT(mock_loop_new(&l), 0);
  struct tick t;
  memset(&t, 0, sizeof t);
  uint64_t a = mock_loop_timer(l, 40, tick3, &t);
  uint64_t b = mock_loop_timer(l, 10, tick1, &t);
  uint64_t c = mock_loop_timer(l, 20, tick2, &t);
  uint64_t d = mock_loop_timer(l, 30, tick2, &t);
  mock_loop_cancel_timer(l, d);
  int64_t t0 = mock_loop_now_ms();
  int rc = mock_loop_run(l, 2000);
  int64_t took = mock_loop_now_ms() - t0;
  int64_t t1 = mock_loop_now_ms();
  int rc2 = mock_loop_run(l, 50);
  int64_t took2 = mock_loop_now_ms() - t1;
  mock_loop_free(l);
  CHECK(a && b && c && d);
  CHECK_EQ_INT(rc, 1);
  CHECK_EQ_INT(t.n, 3);
  CHECK_EQ_INT(t.order[0], 1);
  CHECK_EQ_INT(t.order[1], 2);
  CHECK_EQ_INT(t.order[2], 3);
  CHECK(took >= 35 && took < 1500);
  CHECK_EQ_INT(rc2, 0);
  CHECK(took2 >= 45 && took2 < 1500);
}

/* A refused outgoing connect is reported through on_close. */
static int g_close_reason;
static void cf_close(mock_conn *c, void *ud, int reason) {
  (void)c;
  g_close_reason = reason;
  mock_loop_stop(ud);
}

TEST(loop_connect_refused) {
  mock_loop *l;
  CHECK_EQ_INT(mock_loop_new(&l), 0);
  /* a port that was just free: bind, note, close */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0);
  close(fd);
  static const mock_conn_handler h = {.on_close = cf_close};
  g_close_reason = 0;
  mock_conn *c = mock_loop_connect(l, ntohs(a.sin_port), &h, l);
  int rc = c ? mock_loop_run(l, 3000) : -1;
  size_t open_after = mock_loop_conn_count(l);
  mock_loop_free(l);
  CHECK(c != NULL);
  CHECK_EQ_INT(rc, 1);
  CHECK_EQ_INT(g_close_reason, MOCK_CLOSE_CONNECT_FAILED);
  CHECK_EQ_INT(open_after, 0);
}

TEST_MAIN("mock_proxy", CASE(plain_ef_echo), CASE(plain_ee_echo), CASE(dd_echo), CASE(ee_echo),
          CASE(media_dc_abs), CASE(mode_exact), CASE(ee_time_window_ok),
          CASE(server_clock_offset), CASE(ee_big_transfer), CASE(plain_big_transfer),
          CASE(two_clients), CASE(replay_set_evicts_oldest), CASE(wrong_secret_plain),
          CASE(wrong_secret_dd), CASE(wrong_secret_ee), CASE(ee_stale_past),
          CASE(ee_stale_future), CASE(ee_server_clock_behind), CASE(ee_wrong_sni),
          CASE(ee_replayed_hello), CASE(obfs_replayed_header), CASE(dd_to_classic_only),
          CASE(plain_to_secure_only), CASE(raw_to_tls_only), CASE(ee_to_no_tls),
          CASE(ee_inner_tag_not_dd), CASE(unknown_dc), CASE(ee_bad_record_after_hello),
          CASE(handshake_timeout), CASE(stats_json_format), CASE(loop_timers),
          CASE(loop_connect_refused))
