/*
 * mock_socks: SOCKS5 server / TCP relay with fault injection on 127.0.0.1
 * (see mock_socks.h). TEST CODE.
 */
#include "mock_socks.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mtconn/mtconn.h"

#define BUF_CAP 65536

struct mock_socks {
  pthread_mutex_t mu;
  pthread_t thread;
  int thread_started;
  int lfd, stop_rd, stop_wr;
  uint16_t port, target;
  /* the relay thread's own */
  int c[MOCK_SOCKS_MAX_PAIRS], s[MOCK_SOCKS_MAX_PAIRS];
  int n;
  uint8_t buf[BUF_CAP];
  /* under mu */
  mock_socks_fault fault;
  size_t arg;
  mock_socks_stats st;
};

static void count(mock_socks *x, uint64_t *field) {
  pthread_mutex_lock(&x->mu);
  (*field)++;
  pthread_mutex_unlock(&x->mu);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n bytes from a client in the handshake, unless the deadline passes or
 * mock_socks_free asks the thread to stop first. */
static int recv_all(mock_socks *x, int fd, uint8_t *p, size_t n, int64_t deadline) {
  while (n) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return -1;
    struct pollfd pf[2] = {{fd, POLLIN, 0}, {x->stop_rd, POLLIN, 0}};
    int r = poll(pf, 2, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || pf[1].revents) return -1;
    if (r == 0) continue;
    ssize_t got = recv(fd, p, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

static int send_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void nodelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int connect_local(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* The SOCKS5 exchange (diagram in mock_socks.h) up to the request: the
 * requested port, or 0 for anything but CONNECT to 127.0.0.1. */
static uint16_t socks_request(mock_socks *x, int cfd) {
  uint8_t g[3], q[10];
  static const uint8_t no_auth[2] = {5, 0};
  int64_t deadline = now_ms() + MOCK_SOCKS_HANDSHAKE_MS; /* the relay waits for nobody longer */
  if (recv_all(x, cfd, g, 3, deadline) || g[0] != 5 || g[1] != 1 || g[2] != 0) return 0;
  if (send_all(cfd, no_auth, 2) != 0) return 0;
  if (recv_all(x, cfd, q, 10, deadline) || q[0] != 5 || q[1] != 1 || q[2] != 0 || q[3] != 1) return 0;
  if (q[4] != 127 || q[5] != 0 || q[6] != 0 || q[7] != 1) return 0;
  return (uint16_t)(q[8] << 8 | q[9]);
}

static void on_accept(mock_socks *x) {
  int cfd = accept(x->lfd, NULL, NULL);
  if (cfd < 0) return;
  int sfd = -1;
  if (x->n < MOCK_SOCKS_MAX_PAIRS) {
    if (x->target) {
      sfd = connect_local(x->target);
    } else {
      uint16_t port = socks_request(x, cfd);
      sfd = port ? connect_local(port) : -1;
      /* REP 00 succeeded / 05 connection refused, BND.ADDR 0.0.0.0:0 */
      uint8_t reply[10] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
      reply[1] = sfd >= 0 ? 0 : 5;
      if (port && send_all(cfd, reply, sizeof reply) != 0 && sfd >= 0) {
        close(sfd);
        sfd = -1;
      }
    }
  }
  if (sfd < 0) {
    close(cfd);
    count(x, &x->st.refused);
    return;
  }
  nodelay(cfd);
  nodelay(sfd);
  x->c[x->n] = cfd;
  x->s[x->n++] = sfd;
  count(x, &x->st.accepted);
}

static void drop(mock_socks *x, int i, int rst) {
  if (rst) {
    struct linger lg = {1, 0};
    (void)setsockopt(x->c[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(x->c[i]);
  close(x->s[i]);
  x->c[i] = x->c[x->n - 1];
  x->s[i] = x->s[x->n - 1];
  x->n--;
}

/* Client -> server. 0, or -1 when the pair was closed. */
static int from_client(mock_socks *x, int i) {
  ssize_t n = recv(x->c[i], x->buf, sizeof x->buf, 0);
  if (n <= 0) {
    drop(x, i, 0);
    return -1;
  }
  pthread_mutex_lock(&x->mu);
  int rst = x->fault == MOCK_SOCKS_FAULT_RST;
  if (rst) {
    x->fault = MOCK_SOCKS_FAULT_NONE;
    x->st.fired++;
  }
  pthread_mutex_unlock(&x->mu);
  if (rst || send_all(x->s[i], x->buf, (size_t)n) != 0) {
    drop(x, i, rst);
    return -1;
  }
  return 0;
}

/* Server -> client, through the armed fault. 0, or -1 when the pair was closed. */
static int from_server(mock_socks *x, int i) {
  static const uint8_t e444[8] = {4, 0, 0, 0, 0x44, 0xfe, 0xff, 0xff};
  ssize_t n = recv(x->s[i], x->buf, sizeof x->buf, 0);
  if (n <= 0) {
    drop(x, i, 0);
    return -1;
  }
  size_t len = (size_t)n;
  int cut = 0, fired = 0;
  pthread_mutex_lock(&x->mu);
  switch (x->fault) {
  case MOCK_SOCKS_FAULT_TRUNCATE:
    if (len > x->arg) {
      len = x->arg;
      cut = fired = 1;
    } else {
      x->arg -= len;
    }
    break;
  case MOCK_SOCKS_FAULT_FLIP:
    if (len > x->arg) {
      x->buf[x->arg] ^= 0x5a;
      fired = 1;
    } else {
      x->arg -= len;
    }
    break;
  case MOCK_SOCKS_FAULT_INJECT_444:
    memcpy(x->buf, e444, sizeof e444);
    len = sizeof e444;
    cut = fired = 1;
    break;
  default:
    break;
  }
  if (fired) {
    x->fault = MOCK_SOCKS_FAULT_NONE;
    x->st.fired++;
  }
  pthread_mutex_unlock(&x->mu);
  if (send_all(x->c[i], x->buf, len) != 0 || cut) {
    drop(x, i, 0);
    return -1;
  }
  return 0;
}

static void *serve(void *arg) {
  mock_socks *x = arg;
  for (;;) {
    struct pollfd p[2 + 2 * MOCK_SOCKS_MAX_PAIRS];
    int np = 0;
    p[np].fd = x->stop_rd;
    p[np++].events = POLLIN;
    p[np].fd = x->lfd;
    p[np++].events = POLLIN;
    for (int i = 0; i < x->n; i++) {
      p[np].fd = x->c[i];
      p[np++].events = POLLIN;
      p[np].fd = x->s[i];
      p[np++].events = POLLIN;
    }
    for (int i = 0; i < np; i++) p[i].revents = 0;
    int r = poll(p, (nfds_t)np, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || p[0].revents) break;
    if (p[1].revents & POLLIN) {
      on_accept(x);
      continue; /* the pair table changed: poll again */
    }
    for (int i = 0; i < x->n; i++) {
      short ce = p[2 + 2 * i].revents, se = p[3 + 2 * i].revents;
      if ((ce & (POLLIN | POLLHUP | POLLERR)) && from_client(x, i) != 0) break;
      if ((se & (POLLIN | POLLHUP | POLLERR)) && from_server(x, i) != 0) break;
    }
  }
  while (x->n) drop(x, 0, 0);
  return NULL;
}

int mock_socks_new(uint16_t target, mock_socks **out) {
  if (!out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  mock_socks *x = calloc(1, sizeof *x);
  if (!x) return MTC_ERR_NOMEM;
  x->lfd = x->stop_rd = x->stop_wr = -1;
  x->target = target;
  if (pthread_mutex_init(&x->mu, NULL) != 0) {
    free(x);
    return MTC_ERR_NOMEM;
  }
  int rc = 0, pp[2] = {-1, -1};
  if (pipe(pp) != 0) rc = -errno;
  x->stop_rd = pp[0];
  x->stop_wr = pp[1];
  if (rc == 0) {
    x->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (x->lfd < 0) rc = -errno;
  }
  if (rc == 0) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(x->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(x->lfd, 16) != 0 ||
        getsockname(x->lfd, (struct sockaddr *)&sa, &sl) != 0)
      rc = -errno;
    x->port = ntohs(sa.sin_port);
  }
  if (rc == 0) {
    int e = pthread_create(&x->thread, NULL, serve, x);
    if (e)
      rc = -e;
    else
      x->thread_started = 1;
  }
  if (rc) {
    mock_socks_free(x);
    return rc;
  }
  *out = x;
  return 0;
}

void mock_socks_free(mock_socks *x) {
  if (!x) return;
  if (x->thread_started) {
    char c = 1;
    while (write(x->stop_wr, &c, 1) < 0 && errno == EINTR) {
    }
    pthread_join(x->thread, NULL);
  }
  if (x->lfd >= 0) close(x->lfd);
  if (x->stop_rd >= 0) close(x->stop_rd);
  if (x->stop_wr >= 0) close(x->stop_wr);
  pthread_mutex_destroy(&x->mu);
  free(x);
}

uint16_t mock_socks_port(const mock_socks *x) { return x ? x->port : 0; }

void mock_socks_arm(mock_socks *x, mock_socks_fault fault, size_t arg) {
  pthread_mutex_lock(&x->mu);
  x->fault = fault;
  x->arg = arg;
  pthread_mutex_unlock(&x->mu);
}

void mock_socks_stats_get(mock_socks *x, mock_socks_stats *out) {
  pthread_mutex_lock(&x->mu);
  *out = x->st;
  pthread_mutex_unlock(&x->mu);
}
