/*
 * IO shell tests (src/io/): sockets against real loopback listeners, the
 * poller in HOST mode (recorded watch_fd / set_timer calls) and OWN mode
 * (real poll() rounds), cross-thread wakeup latency, and the runner thread.
 * Only 127.0.0.1 and ::1 are used; every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/clock.h"
#include "io/poller.h"
#include "io/runner.h"
#include "io/sock.h"
#include "test.h"

/* ---- helpers -------------------------------------------------------------------- */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void sleep_us(int us) {
  struct timespec ts = {0, (long)us * 1000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* poll one fd for events (POLLIN/POLLOUT) up to ms; returns revents or 0. */
static short wait_fd(int fd, short events, int ms) {
  struct pollfd pfd = {fd, events, 0};
  int64_t end = mtci_clock_monotonic_ms() + ms;
  for (;;) {
    int64_t left = end - mtci_clock_monotonic_ms();
    if (left < 0) left = 0;
    int r = poll(&pfd, 1, (int)left);
    if (r > 0) return pfd.revents;
    if (r == 0 || (r < 0 && errno != EINTR)) return 0;
  }
}

/* A socket bound to the loopback address of family (port 0 = ephemeral),
 * listening unless listen_too == 0; *port_out gets the bound port. -1 on
 * failure (errno kept). rcvbuf > 0 shrinks the receive buffer (inherited
 * by accepted sockets). */
static int loopback_socket(int family, int listen_too, int rcvbuf, uint16_t *port_out) {
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  }
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || (listen_too && listen(fd, 8) != 0)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
    close(fd);
    return -1;
  }
  *port_out = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return fd;
}

/* accept within ms; the accepted socket is made non-blocking. */
static int accept_within(int lfd, int ms) {
  if (!(wait_fd(lfd, POLLIN, ms) & POLLIN)) return -1;
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0) return -1;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* Whether this host has the IPv6 loopback address configured. */
static int ipv6_loopback_configured(void) {
  FILE *f = fopen("/proc/net/if_inet6", "r");
  if (!f) return 0;
  char line[256];
  int found = 0;
  while (!found && fgets(line, sizeof line, f))
    if (strncmp(line, "00000000000000000000000000000001", 32) == 0) found = 1;
  fclose(f);
  return found;
}

/* A connected pair over 127.0.0.1: *cli from mtci_sock_connect, *srv accepted. */
static int tcp_pair(int *cli, int *srv, int srv_rcvbuf) {
  uint16_t port;
  *cli = *srv = -1;
  int lfd = loopback_socket(AF_INET, 1, srv_rcvbuf, &port);
  if (lfd < 0) return -1;
  int rc = mtci_sock_connect("127.0.0.1", port, cli);
  if (rc == 0) *srv = accept_within(lfd, 2000);
  close(lfd);
  if (rc != 0 || *srv < 0) return -1;
  if (!(wait_fd(*cli, POLLOUT, 2000) & POLLOUT) || mtci_sock_connect_result(*cli) != 0) return -1;
  return 0;
}

/* ---- clock ------------------------------------------------------------------------ */

TEST(clock_realtime_and_monotonic) {
  int64_t rt = mtci_clock_realtime_ms();
  int64_t wall = (int64_t)time(NULL) * 1000;
  CHECK(rt >= wall - 1000 && rt <= wall + 2000);
  int64_t rt2 = mtci_clock_realtime_cb(NULL);
  CHECK(rt2 >= rt && rt2 - rt < 1000);
  int64_t m0 = mtci_clock_monotonic_ms();
  sleep_ms(30);
  int64_t m1 = mtci_clock_monotonic_ms();
  CHECK(m1 - m0 >= 29 && m1 - m0 < 2000);
}

/* ---- sockets --------------------------------------------------------------------- */

/* Connect to a listener of family; checks socket options and the address
 * strings against the listener's port. */
static void connect_case(int *t_failed_, int family, const char *ip, const char *fmt) {
  uint16_t port;
  int lfd = loopback_socket(family, 1, 0, &port);
  CHECK(lfd >= 0);
  int fd = 12345;
  CHECK_EQ_INT(mtci_sock_connect(ip, port, &fd), 0);
  CHECK(fd >= 0);
  /* non-blocking, close-on-exec, TCP_NODELAY */
  CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
  CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  int nodelay = 0;
  socklen_t olen = sizeof nodelay;
  CHECK_EQ_INT(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &olen), 0);
  CHECK(nodelay != 0);

  CHECK(wait_fd(fd, POLLOUT, 2000) & POLLOUT);
  CHECK_EQ_INT(mtci_sock_connect_result(fd), 0);
  int srv = accept_within(lfd, 2000);
  CHECK(srv >= 0);

  char want[80], got[MTCI_SOCK_ADDR_STRLEN];
  snprintf(want, sizeof want, fmt, (unsigned)port);
  CHECK_EQ_INT(mtci_sock_peer_addr(fd, got, sizeof got), 0);
  CHECK(strcmp(got, want) == 0);
  /* our local address is the server side's peer address */
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  CHECK_EQ_INT(getpeername(srv, (struct sockaddr *)&ss, &sl), 0);
  unsigned lport = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                     : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  snprintf(want, sizeof want, fmt, lport);
  CHECK_EQ_INT(mtci_sock_local_addr(fd, got, sizeof got), 0);
  CHECK(strcmp(got, want) == 0);

  mtci_sock_close(fd);
  close(srv);
  close(lfd);
}

TEST(sock_connect_ipv4) { connect_case(t_failed_, AF_INET, "127.0.0.1", "127.0.0.1:%u"); }

TEST(sock_connect_ipv6) {
  uint16_t port;
  int probe = loopback_socket(AF_INET6, 0, 0, &port);
  if (probe < 0) {
    int configured = ipv6_loopback_configured();
    fprintf(stderr, "  note: cannot bind [::1] (%s); IPv6 loopback %s\n", strerror(errno),
            configured ? "IS configured: failing" : "not configured: case skipped");
    CHECK(!configured);
    return;
  }
  close(probe);
  connect_case(t_failed_, AF_INET6, "::1", "[::1]:%u");
}

/* A port that is bound but not listening answers SYN with RST. The socket
 * stays bound during the case so no one else can take the port. */
static void refused_case(int *t_failed_, int family, const char *ip) {
  uint16_t port;
  int bfd = loopback_socket(family, 0, 0, &port);
  CHECK(bfd >= 0);
  int fd = -2;
  int rc = mtci_sock_connect(ip, port, &fd);
  if (rc == 0) {
    CHECK(fd >= 0);
    CHECK(wait_fd(fd, POLLOUT, 2000) != 0);
    rc = mtci_sock_connect_result(fd);
    mtci_sock_close(fd);
  } else {
    CHECK_EQ_INT(fd, -1);
    fprintf(stderr, "  note: %s refused at connect() already\n", ip);
  }
  CHECK_EQ_INT(rc, MTC_ERR_IO_REFUSED);
  close(bfd);
}

TEST(sock_refused) {
  refused_case(t_failed_, AF_INET, "127.0.0.1");
  if (*t_failed_) return;
  uint16_t port;
  int probe = loopback_socket(AF_INET6, 0, 0, &port);
  if (probe < 0) {
    fprintf(stderr, "  note: no [::1]; IPv6 refused case skipped\n");
    CHECK(!ipv6_loopback_configured());
    return;
  }
  close(probe);
  refused_case(t_failed_, AF_INET6, "::1");
}

TEST(sock_bad_address) {
  static const char *bad[] = {"",          "1.2.3",   "1.2.3.4.5",  "256.1.1.1", "localhost",
                              "[::1]",     "::1::2",  " 127.0.0.1", "127.0.0.1 ", "fe80::1%lo",
                              "::ffff:1.2.3", "1.2.3.04x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int fd = 7;
    int rc = mtci_sock_connect(bad[i], 443, &fd);
    if (rc != MTC_ERR_IO_ADDRESS) fprintf(stderr, "  for \"%s\"\n", bad[i]);
    CHECK_EQ_INT(rc, MTC_ERR_IO_ADDRESS);
    CHECK_EQ_INT(fd, -1);
  }
  int fd = 7;
  CHECK_EQ_INT(mtci_sock_connect("127.0.0.1", 0, &fd), MTC_ERR_IO_ADDRESS);
  CHECK_EQ_INT(fd, -1);
  CHECK_EQ_INT(mtci_sock_connect(NULL, 443, &fd), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_sock_connect("127.0.0.1", 443, NULL), MTC_ERR_INVALID_ARG);
  uint8_t b[4];
  CHECK_EQ_INT(mtci_sock_send(-1, b, 4), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_sock_recv(-1, b, 4), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_sock_connect_result(-1), MTC_ERR_INVALID_ARG);
  mtci_sock_close(-1); /* no-op */
}

TEST(sock_round_trip) {
  int cli, srv;
  CHECK_EQ_INT(tcp_pair(&cli, &srv, 0), 0);
  uint8_t buf[64];
  CHECK_EQ_INT(mtci_sock_recv(cli, buf, sizeof buf), 0); /* nothing yet: EAGAIN */
  CHECK_EQ_INT(mtci_sock_recv(cli, buf, 0), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_sock_send(cli, NULL, 0), 0);
  CHECK_EQ_INT(mtci_sock_send(cli, NULL, 3), MTC_ERR_INVALID_ARG);

  CHECK_EQ_INT(mtci_sock_send(cli, (const uint8_t *)"hello", 5), 5);
  CHECK(wait_fd(srv, POLLIN, 2000) & POLLIN);
  CHECK_EQ_INT(mtci_sock_recv(srv, buf, sizeof buf), 5);
  CHECK_MEM(buf, "hello", 5);
  CHECK_EQ_INT(mtci_sock_send(srv, (const uint8_t *)"world!", 6), 6);
  CHECK(wait_fd(cli, POLLIN, 2000) & POLLIN);
  /* a small cap takes part of it; the rest stays */
  CHECK_EQ_INT(mtci_sock_recv(cli, buf, 4), 4);
  CHECK_EQ_INT(mtci_sock_recv(cli, buf + 4, sizeof buf - 4), 2);
  CHECK_MEM(buf, "world!", 6);
  mtci_sock_close(cli);
  mtci_sock_close(srv);
}

/* Fill the path until send says "full" (0), then drain and check every byte. */
TEST(sock_full_buffer_eagain) {
  int cli, srv;
  CHECK_EQ_INT(tcp_pair(&cli, &srv, 4096), 0);
  int small = 4096;
  setsockopt(cli, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  static uint8_t chunk[65536];
  size_t total = 0;
  int full = 0;
  for (int i = 0; i < 1024 && !full; i++) { /* at most 64 MiB */
    for (size_t j = 0; j < sizeof chunk; j++) chunk[j] = (uint8_t)((total + j) * 7 + 3);
    int n = mtci_sock_send(cli, chunk, sizeof chunk);
    CHECK(n >= 0);
    if (n == 0) full = 1;
    total += (size_t)n;
  }
  CHECK(full);
  CHECK(total > 0);
  CHECK(!(wait_fd(cli, POLLOUT, 0) & POLLOUT)); /* the kernel agrees: not writable */
  fprintf(stderr, "  send buffer full after %zu bytes\n", total);

  size_t got = 0;
  int64_t end = mtci_clock_monotonic_ms() + 5000;
  while (got < total && mtci_clock_monotonic_ms() < end) {
    if (!(wait_fd(srv, POLLIN, 1000) & POLLIN)) continue;
    int n = mtci_sock_recv(srv, chunk, sizeof chunk);
    CHECK(n >= 0);
    for (int j = 0; j < n; j++) {
      if (chunk[j] != (uint8_t)((got + (size_t)j) * 7 + 3)) {
        fprintf(stderr, "  byte %zu differs\n", got + (size_t)j);
        CHECK(0);
      }
    }
    got += (size_t)n;
  }
  CHECK_EQ_INT(got, total);
  CHECK(wait_fd(cli, POLLOUT, 2000) & POLLOUT); /* room again */
  CHECK(mtci_sock_send(cli, chunk, 100) > 0);
  mtci_sock_close(cli);
  mtci_sock_close(srv);
}

TEST(sock_eof_on_peer_close) {
  int cli, srv;
  CHECK_EQ_INT(tcp_pair(&cli, &srv, 0), 0);
  CHECK_EQ_INT(mtci_sock_send(srv, (const uint8_t *)"x", 1), 1);
  CHECK_EQ_INT(shutdown(srv, SHUT_WR), 0);
  uint8_t buf[16];
  CHECK(wait_fd(cli, POLLIN, 2000) & POLLIN);
  CHECK_EQ_INT(mtci_sock_recv(cli, buf, sizeof buf), 1); /* data before the EOF */
  CHECK_EQ_INT(buf[0], 'x');
  CHECK(wait_fd(cli, POLLIN, 2000) & POLLIN);
  CHECK_EQ_INT(mtci_sock_recv(cli, buf, sizeof buf), MTC_ERR_IO_EOF);
  CHECK_EQ_INT(mtci_sock_recv(cli, buf, sizeof buf), MTC_ERR_IO_EOF); /* stays */
  mtci_sock_close(cli);
  mtci_sock_close(srv);
}

/* RST from the peer: recv reports a reset, and send afterwards gets EPIPE,
 * which must come back as a code, not as a SIGPIPE that kills this process. */
TEST(sock_reset_no_sigpipe) {
  signal(SIGPIPE, SIG_DFL);
  int cli, srv;
  CHECK_EQ_INT(tcp_pair(&cli, &srv, 0), 0);
  struct linger lg = {1, 0};
  CHECK_EQ_INT(setsockopt(srv, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(srv); /* abortive close: RST */
  uint8_t buf[16];
  CHECK(wait_fd(cli, POLLIN, 2000) != 0);
  CHECK_EQ_INT(mtci_sock_recv(cli, buf, sizeof buf), MTC_ERR_IO_RESET);
  CHECK_EQ_INT(mtci_sock_send(cli, (const uint8_t *)"abc", 3), MTC_ERR_IO_RESET);
  mtci_sock_close(cli);

  /* orderly close, then we keep writing: the peer's RST turns into a reset */
  CHECK_EQ_INT(tcp_pair(&cli, &srv, 0), 0);
  close(srv);
  int rc = 0;
  for (int i = 0; i < 200 && rc >= 0; i++) {
    rc = mtci_sock_send(cli, (const uint8_t *)"abc", 3);
    if (rc >= 0) sleep_ms(5);
  }
  CHECK_EQ_INT(rc, MTC_ERR_IO_RESET);
  mtci_sock_close(cli);
}

TEST(sock_addr_strings_errors) {
  int cli, srv;
  CHECK_EQ_INT(tcp_pair(&cli, &srv, 0), 0);
  char small[8];
  CHECK_EQ_INT(mtci_sock_peer_addr(cli, small, sizeof small), MTC_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ_INT(small[0], 0);
  CHECK_EQ_INT(mtci_sock_peer_addr(cli, NULL, 10), MTC_ERR_INVALID_ARG);
  mtci_sock_close(cli);
  mtci_sock_close(srv);

  char buf[MTCI_SOCK_ADDR_STRLEN];
  int un = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(un >= 0);
  CHECK_EQ_INT(mtci_sock_peer_addr(un, buf, sizeof buf), MTC_ERR_IO_NOT_CONNECTED);
  CHECK_EQ_INT(mtci_sock_local_addr(un, buf, sizeof buf), 0);
  CHECK(strcmp(buf, "0.0.0.0:0") == 0);
  close(un);
  int sp[2];
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  CHECK_EQ_INT(mtci_sock_local_addr(sp[0], buf, sizeof buf), MTC_ERR_UNSUPPORTED);
  close(sp[0]);
  close(sp[1]);
}

/* ---- poller: HOST mode --------------------------------------------------------- */

#define REC_MAX 64
typedef struct rec_host {
  int n_watch;
  int watch_fd[REC_MAX];
  unsigned watch_ev[REC_MAX];
  int n_timer;
  int64_t timer[REC_MAX];
} rec_host;

static void rec_watch(void *ud, int fd, unsigned events) {
  rec_host *h = ud;
  if (h->n_watch < REC_MAX) {
    h->watch_fd[h->n_watch] = fd;
    h->watch_ev[h->n_watch] = events;
  }
  h->n_watch++;
}

static void rec_timer(void *ud, int64_t delay) {
  rec_host *h = ud;
  if (h->n_timer < REC_MAX) h->timer[h->n_timer] = delay;
  h->n_timer++;
}

typedef struct cb_rec {
  int calls;
  int last_fd;
  unsigned last_ev;
} cb_rec;

static void rec_cb(void *ud, int fd, unsigned revents) {
  cb_rec *c = ud;
  c->calls++;
  c->last_fd = fd;
  c->last_ev = revents;
}

static int host_poller(mtci_poller *p, rec_host *h, size_t max_fds, size_t max_dl) {
  memset(h, 0, sizeof *h);
  mtci_poller_config cfg = {rec_watch, rec_timer, h, max_fds, max_dl};
  return mtci_poller_init(p, &cfg);
}

TEST(poller_host_watch_minimal) {
  rec_host h;
  mtci_poller p;
  cb_rec c = {0};
  CHECK_EQ_INT(host_poller(&p, &h, 3, 0), 0);
  CHECK_EQ_INT(mtci_poller_own_mode(&p), 0);
  CHECK_EQ_INT(mtci_poller_wakeup_fd(&p), -1);
  CHECK_EQ_INT(mtci_poller_wakeup(&p), MTC_ERR_UNSUPPORTED);
  CHECK_EQ_INT(mtci_poller_run(&p, 0), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(h.n_watch, 0);

  const int R = MTCI_IO_READ, W = MTCI_IO_WRITE;
  CHECK_EQ_INT(mtci_poller_add(&p, 10, R, rec_cb, &c), 0);       /* -> (10, R) */
  CHECK_EQ_INT(mtci_poller_add(&p, 10, W, rec_cb, &c), MTC_ERR_IO_FD_EXISTS);
  CHECK_EQ_INT(mtci_poller_modify(&p, 10, R), 0);                /* unchanged */
  CHECK_EQ_INT(mtci_poller_modify(&p, 10, R | W), 0);            /* -> (10, RW) */
  CHECK_EQ_INT(mtci_poller_modify(&p, 10, R | W), 0);            /* unchanged */
  CHECK_EQ_INT(mtci_poller_add(&p, 11, 0, rec_cb, &c), 0);       /* nothing wanted */
  CHECK_EQ_INT(mtci_poller_modify(&p, 11, 0), 0);                /* unchanged */
  CHECK_EQ_INT(mtci_poller_modify(&p, 11, W), 0);                /* -> (11, W) */
  CHECK_EQ_INT(mtci_poller_modify(&p, 10, W), 0);                /* -> (10, W) */
  CHECK_EQ_INT(mtci_poller_modify(&p, 10, 0), 0);                /* -> (10, 0) */
  CHECK_EQ_INT(mtci_poller_remove(&p, 10), 0);                   /* was 0: silent */
  CHECK_EQ_INT(mtci_poller_remove(&p, 10), MTC_ERR_IO_FD_UNKNOWN);
  CHECK_EQ_INT(mtci_poller_modify(&p, 10, R), MTC_ERR_IO_FD_UNKNOWN);
  CHECK_EQ_INT(mtci_poller_add(&p, 12, R, rec_cb, &c), 0);       /* -> (12, R) */
  CHECK_EQ_INT(mtci_poller_add(&p, 13, R, rec_cb, &c), 0);       /* -> (13, R) */
  CHECK_EQ_INT(mtci_poller_add(&p, 14, R, rec_cb, &c), MTC_ERR_IO_TABLE_FULL);
  CHECK_EQ_INT(mtci_poller_remove(&p, 11), 0);                   /* -> (11, 0) */
  CHECK_EQ_INT(mtci_poller_remove(&p, 12), 0);                   /* -> (12, 0) */
  CHECK_EQ_INT(mtci_poller_add(&p, 12, R | W, rec_cb, &c), 0);   /* -> (12, RW) */
  CHECK_EQ_INT(mtci_poller_add(&p, 15, 4, rec_cb, &c), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_poller_add(&p, -1, R, rec_cb, &c), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_poller_add(&p, 15, R, NULL, &c), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_poller_modify(&p, 12, 8), MTC_ERR_INVALID_ARG);

  static const int want_fd[] = {10, 10, 11, 10, 10, 12, 13, 11, 12, 12};
  static const unsigned want_ev[] = {1, 3, 2, 2, 0, 1, 1, 0, 0, 3};
  CHECK_EQ_INT(h.n_watch, 10);
  for (int i = 0; i < 10; i++) {
    CHECK_EQ_INT(h.watch_fd[i], want_fd[i]);
    CHECK_EQ_INT(h.watch_ev[i], want_ev[i]);
  }
  CHECK_EQ_INT(mtci_poller_count(&p), 2);
  CHECK_EQ_INT(mtci_poller_events(&p, 12), 3);
  CHECK_EQ_INT(mtci_poller_events(&p, 13), 1);
  CHECK_EQ_INT(mtci_poller_events(&p, 11), MTC_ERR_IO_FD_UNKNOWN);
  CHECK_EQ_INT(h.n_timer, 0);
  mtci_poller_free(&p);
  CHECK_EQ_INT(h.n_watch, 10); /* free tells the host nothing */
  mtci_poller_free(&p);        /* twice is fine */
}

TEST(poller_host_dispatch) {
  rec_host h;
  mtci_poller p;
  cb_rec a = {0}, b = {0};
  CHECK_EQ_INT(host_poller(&p, &h, 0, 0), 0);
  CHECK_EQ_INT(mtci_poller_add(&p, 20, MTCI_IO_READ, rec_cb, &a), 0);
  CHECK_EQ_INT(mtci_poller_add(&p, 21, MTCI_IO_WRITE, rec_cb, &b), 0);
  CHECK_EQ_INT(mtci_poller_dispatch(&p, 20, MTCI_IO_READ | MTCI_IO_WRITE), 1);
  CHECK_EQ_INT(a.calls, 1);
  CHECK_EQ_INT(a.last_fd, 20);
  CHECK_EQ_INT(a.last_ev, MTCI_IO_READ); /* masked to what is wanted */
  CHECK_EQ_INT(mtci_poller_dispatch(&p, 21, MTCI_IO_READ), 0); /* not wanted */
  CHECK_EQ_INT(b.calls, 0);
  CHECK_EQ_INT(mtci_poller_dispatch(&p, 21, MTCI_IO_WRITE | 0x80), 1);
  CHECK_EQ_INT(b.last_ev, MTCI_IO_WRITE);
  CHECK_EQ_INT(mtci_poller_dispatch(&p, 22, MTCI_IO_READ), 0); /* unknown fd */
  CHECK_EQ_INT(mtci_poller_remove(&p, 20), 0);
  CHECK_EQ_INT(mtci_poller_dispatch(&p, 20, MTCI_IO_READ), 0); /* stale event */
  CHECK_EQ_INT(a.calls, 1);
  CHECK_EQ_INT(mtci_poller_dispatch(&p, -3, MTCI_IO_READ), MTC_ERR_INVALID_ARG);
  mtci_poller_free(&p);
}

TEST(poller_set_timer_on_min_change) {
  rec_host h;
  mtci_poller p;
  CHECK_EQ_INT(host_poller(&p, &h, 0, 3), 0);
  int a = mtci_poller_deadline_new(&p), b = mtci_poller_deadline_new(&p);
  int c = mtci_poller_deadline_new(&p);
  CHECK(a >= 0 && b >= 0 && c >= 0 && a != b && b != c && a != c);
  CHECK_EQ_INT(mtci_poller_deadline_new(&p), MTC_ERR_IO_TABLE_FULL);
  CHECK_EQ_INT(mtci_poller_next_deadline(&p), -1);
  CHECK_EQ_INT(mtci_poller_next_timeout_ms(&p, 0), -1);

  CHECK_EQ_INT(mtci_poller_deadline_set(&p, a, 1000, 0), 0);   /* min none->1000: 1000 */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, b, 2000, 10), 0);  /* min stays */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, b, 500, 20), 0);   /* min 500: 480 */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, b, 500, 30), 0);   /* unchanged */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, c, 700, 40), 0);   /* min stays */
  CHECK_EQ_INT(mtci_poller_next_deadline(&p), 500);
  CHECK_EQ_INT(mtci_poller_next_timeout_ms(&p, 100), 400);
  CHECK_EQ_INT(mtci_poller_next_timeout_ms(&p, 600), 0);
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, b, -1, 50), 0);    /* min 700: 650 */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, a, 900, 60), 0);   /* min stays 700 */
  CHECK_EQ_INT(mtci_poller_deadline_free(&p, c, 70), 0);       /* min 900: 830 */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, c, 5, 70), MTC_ERR_INVALID_ARG); /* freed */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, 99, 5, 70), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, -1, 5, 70), MTC_ERR_INVALID_ARG);
  /* The one-shot timer fires at 900; nothing changed the deadline, so the
   * sync after handling must re-arm it (already due: 0). */
  mtci_poller_timer_fired(&p);
  mtci_poller_timer_sync(&p, 905);                             /* 0 */
  mtci_poller_timer_sync(&p, 906);                             /* armed: silent */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, a, -1, 910), 0);   /* none: -1 */
  mtci_poller_timer_fired(&p);                                 /* nothing armed */
  mtci_poller_timer_sync(&p, 920);                             /* none and none: silent */
  CHECK_EQ_INT(mtci_poller_deadline_set(&p, a, 10, 920), 0);   /* past: 0 */
  int d = mtci_poller_deadline_new(&p);                        /* reuses c's slot */
  CHECK_EQ_INT(d, c);

  static const int64_t want[] = {1000, 480, 650, 830, 0, -1, 0};
  CHECK_EQ_INT(h.n_timer, 7);
  for (int i = 0; i < 7; i++) CHECK_EQ_INT(h.timer[i], want[i]);
  CHECK_EQ_INT(h.n_watch, 0);
  mtci_poller_free(&p);
}

/* ---- poller: OWN mode ---------------------------------------------------------- */

TEST(poller_own_round) {
  mtci_poller p;
  CHECK_EQ_INT(mtci_poller_init(&p, NULL), 0);
  CHECK_EQ_INT(mtci_poller_own_mode(&p), 1);
  int wfd = mtci_poller_wakeup_fd(&p);
  CHECK(wfd >= 0);
  CHECK(fcntl(wfd, F_GETFD) & FD_CLOEXEC);
  CHECK_EQ_INT(mtci_poller_add(&p, wfd, MTCI_IO_READ, rec_cb, NULL), MTC_ERR_IO_FD_EXISTS);

  int a[2], b[2], c[2];
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, c), 0);
  cb_rec ra = {0}, rb = {0}, rc_ = {0};
  CHECK_EQ_INT(mtci_poller_add(&p, a[0], MTCI_IO_READ, rec_cb, &ra), 0);
  CHECK_EQ_INT(mtci_poller_add(&p, b[0], MTCI_IO_READ, rec_cb, &rb), 0);
  CHECK_EQ_INT(mtci_poller_add(&p, c[0], 0, rec_cb, &rc_), 0); /* registered, not watched */
  CHECK_EQ_INT(mtci_poller_run(&p, 0), 0);                     /* nothing ready */

  CHECK_EQ_INT(write(a[1], "1", 1), 1);
  CHECK_EQ_INT(write(c[1], "1", 1), 1);
  CHECK_EQ_INT(mtci_poller_run(&p, 1000), 1);
  CHECK_EQ_INT(ra.calls, 1);
  CHECK_EQ_INT(ra.last_fd, a[0]);
  CHECK_EQ_INT(ra.last_ev, MTCI_IO_READ);
  CHECK_EQ_INT(rb.calls, 0);
  CHECK_EQ_INT(rc_.calls, 0);

  /* data still unread: level-triggered, reported again; b now too */
  CHECK_EQ_INT(write(b[1], "2", 1), 1);
  CHECK_EQ_INT(mtci_poller_run(&p, 1000), 2);
  CHECK_EQ_INT(ra.calls, 2);
  CHECK_EQ_INT(rb.calls, 1);
  /* write interest: a socket with room is writable at once */
  CHECK_EQ_INT(mtci_poller_modify(&p, b[0], MTCI_IO_WRITE), 0);
  CHECK_EQ_INT(mtci_poller_modify(&p, a[0], 0), 0);
  CHECK_EQ_INT(mtci_poller_run(&p, 1000), 1);
  CHECK_EQ_INT(rb.last_ev, MTCI_IO_WRITE);
  CHECK_EQ_INT(ra.calls, 2);
  /* a hang-up arrives as the wanted event */
  CHECK_EQ_INT(mtci_poller_modify(&p, b[0], MTCI_IO_READ), 0);
  uint8_t tmp[4];
  CHECK_EQ_INT(read(b[0], tmp, sizeof tmp), 1);
  close(b[1]);
  CHECK_EQ_INT(mtci_poller_run(&p, 1000), 1);
  CHECK_EQ_INT(rb.last_ev, MTCI_IO_READ);
  CHECK_EQ_INT(mtci_poller_count(&p), 3);

  mtci_poller_free(&p);
  close(a[0]), close(a[1]), close(b[0]), close(c[0]), close(c[1]);
}

/* Both fds are ready in one round; whichever callback runs first removes
 * the other, closes it, and registers a quiet socket under the same fd
 * number. The removed registration must not run, nor must the new one get
 * the old readiness. */
typedef struct swap_ctx {
  mtci_poller *p;
  int fd[2];
  int quiet; /* an fd with nothing to read */
  int old_calls, new_calls;
} swap_ctx;

static void new_cb(void *ud, int fd, unsigned ev) {
  (void)fd, (void)ev;
  ((swap_ctx *)ud)->new_calls++;
}

static void old_cb(void *ud, int fd, unsigned ev) {
  (void)ev;
  swap_ctx *s = ud;
  s->old_calls++;
  int other = fd == s->fd[0] ? s->fd[1] : s->fd[0];
  if (mtci_poller_remove(s->p, other) != 0) return;
  dup2(s->quiet, other); /* closes the old socket, reuses its number */
  mtci_poller_add(s->p, other, MTCI_IO_READ, new_cb, s);
}

TEST(poller_remove_during_dispatch) {
  mtci_poller p;
  CHECK_EQ_INT(mtci_poller_init(&p, NULL), 0);
  int a[2], b[2], q[2];
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, q), 0);
  swap_ctx s = {&p, {a[0], b[0]}, q[0], 0, 0};
  CHECK_EQ_INT(mtci_poller_add(&p, a[0], MTCI_IO_READ, old_cb, &s), 0);
  CHECK_EQ_INT(mtci_poller_add(&p, b[0], MTCI_IO_READ, old_cb, &s), 0);
  CHECK_EQ_INT(write(a[1], "x", 1), 1);
  CHECK_EQ_INT(write(b[1], "y", 1), 1);
  CHECK_EQ_INT(wait_fd(a[0], POLLIN, 1000) & POLLIN, POLLIN);
  CHECK_EQ_INT(wait_fd(b[0], POLLIN, 1000) & POLLIN, POLLIN);

  CHECK_EQ_INT(mtci_poller_run(&p, 1000), 1);
  CHECK_EQ_INT(s.old_calls, 1);
  CHECK_EQ_INT(s.new_calls, 0);
  CHECK_EQ_INT(mtci_poller_count(&p), 2);
  CHECK_EQ_INT(mtci_poller_run(&p, 0), 1); /* the survivor is still readable */
  CHECK_EQ_INT(s.new_calls, 0);            /* the quiet socket stays quiet */
  CHECK_EQ_INT(s.old_calls, 2);

  mtci_poller_free(&p);
  close(a[0]), close(a[1]), close(b[0]), close(b[1]), close(q[0]), close(q[1]);
}

typedef struct busy_ctx {
  mtci_poller *p;
  int rc;
  int removed_self;
} busy_ctx;

static void busy_cb(void *ud, int fd, unsigned ev) {
  (void)ev;
  busy_ctx *b = ud;
  b->rc = mtci_poller_run(b->p, 0);
  b->removed_self = mtci_poller_remove(b->p, fd) == 0;
}

TEST(poller_reentry_and_self_removal) {
  mtci_poller p;
  CHECK_EQ_INT(mtci_poller_init(&p, NULL), 0);
  int a[2];
  CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  busy_ctx b = {&p, 0, 0};
  CHECK_EQ_INT(mtci_poller_add(&p, a[0], MTCI_IO_READ, busy_cb, &b), 0);
  CHECK_EQ_INT(write(a[1], "x", 1), 1);
  CHECK_EQ_INT(mtci_poller_run(&p, 1000), 1);
  CHECK_EQ_INT(b.rc, MTC_ERR_IO_BUSY);
  CHECK_EQ_INT(b.removed_self, 1);
  CHECK_EQ_INT(mtci_poller_count(&p), 0);
  CHECK_EQ_INT(mtci_poller_run(&p, 0), 0);
  mtci_poller_free(&p);
  close(a[0]), close(a[1]);

  mtci_poller_config cfg = {NULL, NULL, NULL, 65537, 0};
  CHECK_EQ_INT(mtci_poller_init(&p, &cfg), MTC_ERR_INVALID_ARG);
  mtci_poller_free(&p);
}

typedef struct waker {
  mtci_poller *p;
  int delay_ms;
  int count;
  int64_t t_wake;
} waker;

static void *waker_main(void *arg) {
  waker *w = arg;
  sleep_ms(w->delay_ms);
  w->t_wake = mtci_clock_monotonic_ms();
  for (int i = 0; i < w->count; i++) mtci_poller_wakeup(w->p);
  return NULL;
}

TEST(poller_wakeup_from_thread) {
  mtci_poller p;
  CHECK_EQ_INT(mtci_poller_init(&p, NULL), 0);
  waker w = {&p, 100, 1, 0};
  pthread_t th;
  int64_t t0 = mtci_clock_monotonic_ms();
  int created = pthread_create(&th, NULL, waker_main, &w) == 0;
  int rc = created ? mtci_poller_run(&p, 5000) : -1;
  int64_t t1 = mtci_clock_monotonic_ms();
  if (created) pthread_join(th, NULL);
  fprintf(stderr, "  5 s poll ended %lld ms after the wakeup (%lld ms in poll)\n",
          (long long)(t1 - w.t_wake), (long long)(t1 - t0));
  /* pending wakeups coalesce; the round consumes them, the next one waits */
  for (int i = 0; i < 3; i++) mtci_poller_wakeup(&p);
  int64_t t2 = mtci_clock_monotonic_ms();
  int rc2 = mtci_poller_run(&p, 5000);
  int64_t t3 = mtci_clock_monotonic_ms();
  int rc3 = mtci_poller_run(&p, 50);
  int64_t t4 = mtci_clock_monotonic_ms();
  mtci_poller_free(&p);
  CHECK(created);
  CHECK_EQ_INT(rc, 0);
  CHECK(t1 - w.t_wake < 100);
  CHECK(t1 - t0 < 1000);
  CHECK_EQ_INT(rc2, 0);
  CHECK(t3 - t2 < 100);
  CHECK_EQ_INT(rc3, 0);
  CHECK(t4 - t3 >= 45);
}

/* ---- runner ---------------------------------------------------------------------- */

typedef struct target {
  mtci_poller p;
  atomic_int rounds;
  int fail_after; /* run_once fails from this round on (0: never) */
} target;

static int target_run_once(void *t, int max_ms) {
  target *tg = t;
  int n = atomic_fetch_add(&tg->rounds, 1) + 1;
  if (tg->fail_after && n >= tg->fail_after) return MTC_ERR_IO_POLL;
  int rc = mtci_poller_run(&tg->p, max_ms);
  return rc < 0 ? rc : 0;
}

static mtci_poller *target_poller(void *t) { return &((target *)t)->p; }

static int target_start(target *tg, mtci_runner *r, size_t cap) {
  memset(tg, 0, sizeof *tg);
  atomic_init(&tg->rounds, 0);
  if (mtci_poller_init(&tg->p, NULL) != 0) return -1;
  mtci_runner_target t = {target_run_once, target_poller, tg};
  return mtci_runner_start(r, &t, cap);
}

#define N_THREADS 4
#define N_PER_THREAD 1000

typedef struct sub_log {
  mtci_runner *r;
  int order[N_THREADS * N_PER_THREAD]; /* item ids in run order */
  int n;                               /* touched only on the runner thread */
  int off_thread;                      /* runs seen off the runner thread */
  int counts[N_THREADS * N_PER_THREAD];
} sub_log;

typedef struct sub_item {
  sub_log *log;
  int id; /* thread * N_PER_THREAD + seq */
} sub_item;

static sub_item g_items[N_THREADS * N_PER_THREAD];

static void log_fn(void *t, void *ud) {
  (void)t;
  sub_item *it = ud;
  sub_log *l = it->log;
  if (!mtci_runner_on_thread(l->r)) l->off_thread++;
  if (l->n < N_THREADS * N_PER_THREAD) l->order[l->n] = it->id;
  l->n++;
  l->counts[it->id]++;
}

typedef struct producer {
  mtci_runner *r;
  int thread;
  int rc;
  long full_retries;
} producer;

static void *producer_main(void *arg) {
  producer *pr = arg;
  for (int s = 0; s < N_PER_THREAD; s++) {
    sub_item *it = &g_items[pr->thread * N_PER_THREAD + s];
    int rc;
    long tries = 0;
    while ((rc = mtci_runner_submit(pr->r, log_fn, it)) == MTC_ERR_IO_QUEUE_FULL &&
           tries++ < 200000) {
      pr->full_retries++;
      sleep_us(100);
    }
    if (rc != 0) {
      pr->rc = rc;
      return NULL;
    }
  }
  return NULL;
}

TEST(runner_submissions_fifo_once) {
  static target tg;
  static sub_log slog;
  mtci_runner r;
  memset(&slog, 0, sizeof slog);
  CHECK_EQ_INT(target_start(&tg, &r, 64), 0);
  slog.r = &r;
  CHECK_EQ_INT(mtci_runner_on_thread(&r), 0);
  for (int i = 0; i < N_THREADS * N_PER_THREAD; i++) g_items[i] = (sub_item){&slog, i};
  producer pr[N_THREADS];
  pthread_t th[N_THREADS];
  int started = 0;
  int64_t t0 = mtci_clock_monotonic_ms();
  for (int i = 0; i < N_THREADS; i++) {
    pr[i] = (producer){&r, i, 0, 0};
    if (pthread_create(&th[i], NULL, producer_main, &pr[i]) == 0) started++;
  }
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  int stop_rc = mtci_runner_stop(&r);
  int64_t t1 = mtci_clock_monotonic_ms();
  long retries = 0;
  for (int i = 0; i < N_THREADS; i++) retries += pr[i].full_retries;
  fprintf(stderr, "  %d submissions in %lld ms, %ld queue-full retries, %d runner rounds\n",
          N_THREADS * N_PER_THREAD, (long long)(t1 - t0), retries, atomic_load(&tg.rounds));
  CHECK_EQ_INT(started, N_THREADS);
  CHECK_EQ_INT(stop_rc, 0);
  for (int i = 0; i < N_THREADS; i++) CHECK_EQ_INT(pr[i].rc, 0);
  CHECK_EQ_INT(slog.n, N_THREADS * N_PER_THREAD);
  CHECK_EQ_INT(slog.off_thread, 0);
  for (int i = 0; i < N_THREADS * N_PER_THREAD; i++) CHECK_EQ_INT(slog.counts[i], 1);
  int next[N_THREADS] = {0};
  for (int i = 0; i < slog.n; i++) {
    int thr = slog.order[i] / N_PER_THREAD, seq = slog.order[i] % N_PER_THREAD;
    CHECK_EQ_INT(seq, next[thr]);
    next[thr]++;
  }
  CHECK_EQ_INT(mtci_runner_submit(&r, log_fn, &g_items[0]), MTC_ERR_IO_STOPPED);
  CHECK_EQ_INT(mtci_runner_stop(&r), 0); /* idempotent */
  mtci_poller_free(&tg.p);
}

typedef struct stamp {
  atomic_llong t;
  atomic_int done;
} stamp;

static void stamp_fn(void *t, void *ud) {
  (void)t;
  stamp *s = ud;
  atomic_store(&s->t, (long long)mtci_clock_monotonic_ms());
  atomic_store(&s->done, 1);
}

TEST(runner_submit_wakes_poll) {
  static target tg;
  mtci_runner r;
  CHECK_EQ_INT(target_start(&tg, &r, 0), 0);
  sleep_ms(100); /* the runner is now inside a 1000 ms poll */
  stamp s;
  atomic_init(&s.t, 0);
  atomic_init(&s.done, 0);
  int64_t t0 = mtci_clock_monotonic_ms();
  int rc = mtci_runner_submit(&r, stamp_fn, &s);
  for (int i = 0; i < 400 && !atomic_load(&s.done); i++) sleep_ms(5);
  int done = atomic_load(&s.done);
  long long lat = (long long)atomic_load(&s.t) - t0;
  int stop_rc = mtci_runner_stop(&r);
  mtci_poller_free(&tg.p);
  fprintf(stderr, "  submission ran %lld ms after submit\n", lat);
  CHECK_EQ_INT(rc, 0);
  CHECK(done);
  CHECK(lat < 100);
  CHECK_EQ_INT(stop_rc, 0);
}

typedef struct pend {
  mtci_runner *r;
  atomic_int counter;
  atomic_int resubmit_runs;
  atomic_int last_resubmit_rc;
  atomic_int stop_from_runner_rc;
  atomic_int on_thread;
} pend;

static void slow_fn(void *t, void *ud) {
  (void)t;
  pend *pd = ud;
  atomic_store(&pd->on_thread, mtci_runner_on_thread(pd->r));
  atomic_store(&pd->stop_from_runner_rc, mtci_runner_stop(pd->r));
  sleep_ms(100);
}

static void count_fn(void *t, void *ud) {
  (void)t;
  atomic_fetch_add(&((pend *)ud)->counter, 1);
}

static void resubmit_fn(void *t, void *ud) {
  (void)t;
  pend *pd = ud;
  atomic_fetch_add(&pd->resubmit_runs, 1);
  atomic_store(&pd->last_resubmit_rc, mtci_runner_submit(pd->r, resubmit_fn, pd));
}

TEST(runner_stop_runs_pending) {
  static target tg;
  static pend pd;
  mtci_runner r;
  CHECK_EQ_INT(target_start(&tg, &r, 0), 0);
  pd.r = &r;
  atomic_init(&pd.counter, 0);
  atomic_init(&pd.resubmit_runs, 0);
  atomic_init(&pd.last_resubmit_rc, 1);
  atomic_init(&pd.stop_from_runner_rc, 1);
  atomic_init(&pd.on_thread, 0);
  int rcs = 0;
  rcs |= mtci_runner_submit(&r, slow_fn, &pd); /* keeps the runner busy */
  sleep_ms(20);
  for (int i = 0; i < 10; i++) rcs |= mtci_runner_submit(&r, count_fn, &pd);
  rcs |= mtci_runner_submit(&r, resubmit_fn, &pd); /* would run forever */
  int stop_rc = mtci_runner_stop(&r);
  /* after stop: everything accepted has run, and nothing runs any more */
  int counter = atomic_load(&pd.counter);
  int after_rc = mtci_runner_submit(&r, count_fn, &pd);
  mtci_poller_free(&tg.p);
  CHECK_EQ_INT(rcs, 0);
  CHECK_EQ_INT(stop_rc, 0);
  CHECK_EQ_INT(counter, 10);
  CHECK_EQ_INT(atomic_load(&pd.on_thread), 1);
  CHECK_EQ_INT(atomic_load(&pd.stop_from_runner_rc), MTC_ERR_IO_BUSY);
  CHECK(atomic_load(&pd.resubmit_runs) >= 1);
  CHECK_EQ_INT(atomic_load(&pd.last_resubmit_rc), MTC_ERR_IO_STOPPED);
  CHECK_EQ_INT(after_rc, MTC_ERR_IO_STOPPED);
}

static int fail_run_once(void *t, int max_ms) {
  (void)max_ms;
  target *tg = t;
  int n = atomic_fetch_add(&tg->rounds, 1) + 1;
  if (n >= 3) return MTC_ERR_IO_POLL;
  return mtci_poller_run(&tg->p, 10) < 0 ? -1 : 0;
}

/* A function that submits while later submissions are still queued sends
 * no wakeup (the queue is not empty); the runner must not then block a
 * whole round before running it. */
typedef struct chain {
  mtci_runner *r;
  stamp b, c;
  atomic_int c_rc;
} chain;

static void chain_c(void *t, void *ud) { stamp_fn(t, &((chain *)ud)->c); }
static void chain_b(void *t, void *ud) { stamp_fn(t, &((chain *)ud)->b); }
static void chain_a(void *t, void *ud) {
  (void)t;
  chain *ch = ud;
  atomic_store(&ch->c_rc, mtci_runner_submit(ch->r, chain_c, ch));
}
static void sleep_fn(void *t, void *ud) {
  (void)t, (void)ud;
  sleep_ms(50);
}

TEST(runner_submit_during_drain_not_delayed) {
  static target tg;
  static chain ch;
  mtci_runner r;
  CHECK_EQ_INT(target_start(&tg, &r, 0), 0);
  ch.r = &r;
  atomic_init(&ch.b.t, 0), atomic_init(&ch.b.done, 0);
  atomic_init(&ch.c.t, 0), atomic_init(&ch.c.done, 0);
  atomic_init(&ch.c_rc, 1);
  int rcs = mtci_runner_submit(&r, sleep_fn, NULL);
  sleep_ms(10); /* the runner is in sleep_fn: A and B queue up behind it */
  rcs |= mtci_runner_submit(&r, chain_a, &ch);
  rcs |= mtci_runner_submit(&r, chain_b, &ch);
  for (int i = 0; i < 400 && !atomic_load(&ch.c.done); i++) sleep_ms(5);
  int done = atomic_load(&ch.c.done) && atomic_load(&ch.b.done);
  long long gap = (long long)atomic_load(&ch.c.t) - (long long)atomic_load(&ch.b.t);
  int stop_rc = mtci_runner_stop(&r);
  mtci_poller_free(&tg.p);
  fprintf(stderr, "  submission made during a drain ran %lld ms after the drain\n", gap);
  CHECK_EQ_INT(rcs, 0);
  CHECK_EQ_INT(atomic_load(&ch.c_rc), 0);
  CHECK(done);
  CHECK(gap >= 0 && gap < 100);
  CHECK_EQ_INT(stop_rc, 0);
}

TEST(runner_error_stops_loop) {
  static target tg;
  static pend pd;
  mtci_runner r;
  memset(&tg, 0, sizeof tg);
  atomic_init(&tg.rounds, 0);
  atomic_init(&pd.counter, 0);
  CHECK_EQ_INT(mtci_poller_init(&tg.p, NULL), 0);
  mtci_runner_target t = {fail_run_once, target_poller, &tg};
  CHECK_EQ_INT(mtci_runner_start(&r, &t, 0), 0);
  int err = 0;
  for (int i = 0; i < 400 && (err = mtci_runner_error(&r)) == 0; i++) sleep_ms(5);
  int sub_rc = mtci_runner_submit(&r, count_fn, &pd);
  int stop_rc = mtci_runner_stop(&r);
  mtci_poller_free(&tg.p);
  CHECK_EQ_INT(err, MTC_ERR_IO_POLL);
  CHECK_EQ_INT(sub_rc, MTC_ERR_IO_STOPPED);
  CHECK_EQ_INT(stop_rc, MTC_ERR_IO_POLL);
  CHECK_EQ_INT(mtci_runner_error(&r), MTC_ERR_IO_POLL);
  CHECK_EQ_INT(atomic_load(&tg.rounds), 3);
  CHECK_EQ_INT(atomic_load(&pd.counter), 0);
}

/* The runner knows its own thread from the very first round: the thread
 * marks itself, since r->thread is written only when pthread_create returns,
 * possibly after the new thread has started working. */
static mtci_runner *first_round_runner;
static atomic_int first_round_on_thread = 2; /* 2: not run yet */

static int first_round_run_once(void *t, int max_ms) {
  target *tg = t;
  if (atomic_fetch_add(&tg->rounds, 1) == 0)
    atomic_store(&first_round_on_thread, mtci_runner_on_thread(first_round_runner));
  return mtci_poller_run(&tg->p, max_ms < 10 ? max_ms : 10) < 0 ? -1 : 0;
}

TEST(runner_on_thread_from_first_round) {
  static target tg;
  static mtci_runner r;
  for (int run = 0; run < 20; run++) {
    memset(&tg, 0, sizeof tg);
    atomic_init(&tg.rounds, 0);
    atomic_store(&first_round_on_thread, 2);
    first_round_runner = &r;
    CHECK_EQ_INT(mtci_poller_init(&tg.p, NULL), 0);
    mtci_runner_target t = {first_round_run_once, target_poller, &tg};
    CHECK_EQ_INT(mtci_runner_start(&r, &t, 0), 0);
    for (int i = 0; i < 400 && atomic_load(&first_round_on_thread) == 2; i++) sleep_ms(1);
    CHECK(!mtci_runner_on_thread(&r)); /* this is not the runner thread */
    CHECK_EQ_INT(mtci_runner_stop(&r), 0);
    mtci_poller_free(&tg.p);
    CHECK_EQ_INT(atomic_load(&first_round_on_thread), 1);
  }
}

TEST(runner_bad_start) {
  mtci_runner r;
  rec_host h;
  mtci_poller hp;
  CHECK_EQ_INT(host_poller(&hp, &h, 0, 0), 0);
  mtci_runner_target t = {target_run_once, target_poller, NULL};
  t.run_once = NULL;
  CHECK_EQ_INT(mtci_runner_start(&r, &t, 0), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_runner_stop(&r), 0);
  CHECK_EQ_INT(mtci_runner_submit(&r, count_fn, NULL), MTC_ERR_IO_STOPPED);
  /* a HOST-mode poller has no wakeup fd: refused */
  static target tg;
  memset(&tg, 0, sizeof tg);
  tg.p = hp;
  t = (mtci_runner_target){target_run_once, target_poller, &tg};
  CHECK_EQ_INT(mtci_runner_start(&r, &t, 0), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_runner_start(&r, &t, MTCI_RUNNER_MAX_QUEUE + 1), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_runner_stop(NULL), 0);
  mtci_poller_free(&hp);
}

/* ---- error texts ------------------------------------------------------------------ */

TEST(error_texts) {
  const char *seen[20];
  int n = 0;
  for (int code = -620; code >= -638; code--) {
    const char *s = mtc_strerror(code);
    CHECK(strcmp(s, "unknown error") != 0);
    for (int i = 0; i < n; i++) CHECK(strcmp(seen[i], s) != 0);
    seen[n++] = s;
  }
  CHECK(strcmp(mtc_strerror(-639), "unknown error") == 0);
}

TEST_MAIN("io", CASE(clock_realtime_and_monotonic), CASE(sock_connect_ipv4),
          CASE(sock_connect_ipv6), CASE(sock_refused), CASE(sock_bad_address),
          CASE(sock_round_trip), CASE(sock_full_buffer_eagain), CASE(sock_eof_on_peer_close),
          CASE(sock_reset_no_sigpipe), CASE(sock_addr_strings_errors),
          CASE(poller_host_watch_minimal), CASE(poller_host_dispatch),
          CASE(poller_set_timer_on_min_change), CASE(poller_own_round),
          CASE(poller_remove_during_dispatch), CASE(poller_reentry_and_self_removal),
          CASE(poller_wakeup_from_thread), CASE(runner_submissions_fifo_once),
          CASE(runner_submit_wakes_poll), CASE(runner_stop_runs_pending),
          CASE(runner_submit_during_drain_not_delayed), CASE(runner_error_stops_loop),
          CASE(runner_on_thread_from_first_round), CASE(runner_bad_start), CASE(error_texts))
