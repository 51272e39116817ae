/* mock_loop: see mock_loop.h. TEST CODE (POSIX sockets, poll, pthreads). */
#include "mock_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64u << 10)
#define ACCEPT_BUDGET 64   /* accepts per listener per iteration */
#define MAX_SLEEP_MS 1000  /* poll() never sleeps longer (belt and braces) */
#define SHRINK_ABOVE (1u << 20) /* an emptied write buffer larger than this is freed */

/* A byte queue: data is p[head..tail). */
typedef struct mbuf {
  uint8_t *p;
  size_t head, tail, cap;
} mbuf;

struct mock_conn {
  mock_loop *loop;
  mock_conn *prev, *next;
  int fd;
  uint64_t id;
  mock_conn_handler h;
  void *ud;
  mbuf rb, wb;
  int connecting;  /* outgoing connect in progress */
  int paused;      /* reading stopped by the user */
  int flush_close; /* close once wb is empty */
  int after_flush_reason;
  int closed;      /* socket closed, on_close pending or done */
  int reported;    /* on_close ran; freed at the next reap */
  int redeliver;   /* on_data owed for buffered bytes after a resume */
  int reason;
  uint64_t bytes_in, bytes_out;
};

struct listener {
  int id; /* 0 = free slot */
  int fd;
  mock_accept_fn fn;
  void *ud;
};

struct timer {
  uint64_t id;
  int64_t due;
  mock_timer_fn fn;
  void *ud;
};

enum { SLOT_WAKE, SLOT_LISTENER, SLOT_CONN };
struct slot {
  int kind;
  int listener_id;
  mock_conn *conn;
};

struct mock_loop {
  pthread_mutex_t mu;
  int wake[2];
  atomic_int stop;
  mock_conn *head, *tail;
  size_t n_open;
  uint64_t next_conn_id, next_timer_id;
  int next_listener_id;
  struct listener ls[MOCK_LOOP_MAX_LISTENERS];
  struct timer *timers;
  size_t n_timers, timer_cap;
  pthread_t thread;
  int thread_running;
  struct pollfd *pfds;
  struct slot *slots;
  size_t pcap;
  int freeing;
};

/* ---- helpers ------------------------------------------------------------- */

int64_t mock_loop_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  int fdfl = fcntl(fd, F_GETFD, 0);
  if (fdfl >= 0) (void)fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
  return 0;
}

static void set_nodelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void loop_wake(mock_loop *l) {
  uint8_t b = 1;
  ssize_t r = write(l->wake[1], &b, 1); /* EAGAIN: a wakeup is already pending */
  (void)r;
}

static size_t mbuf_len(const mbuf *b) { return b->tail - b->head; }

/* Make room for n more bytes at the tail; 0 or -1 past the cap / no memory. */
static int mbuf_reserve(mbuf *b, size_t n) {
  if (b->cap - b->tail >= n) return 0;
  size_t len = mbuf_len(b);
  if (len + n > MOCK_LOOP_BUF_CAP) return -1;
  if (b->head) {
    memmove(b->p, b->p + b->head, len);
    b->head = 0;
    b->tail = len;
    if (b->cap - b->tail >= n) return 0;
  }
  size_t nc = b->cap ? b->cap : 4096;
  while (nc < len + n) nc *= 2;
  if (nc > MOCK_LOOP_BUF_CAP) nc = MOCK_LOOP_BUF_CAP;
  uint8_t *p = realloc(b->p, nc);
  if (!p) return -1;
  b->p = p;
  b->cap = nc;
  return 0;
}

static void mbuf_free(mbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- connections ----------------------------------------------------------- */

static mock_conn *conn_new(mock_loop *l, int fd) {
  mock_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->loop = l;
  c->fd = fd;
  c->id = ++l->next_conn_id;
  c->prev = l->tail;
  if (l->tail) l->tail->next = c;
  else l->head = c;
  l->tail = c;
  l->n_open++;
  return c;
}

/* Close the socket now; on_close follows from report_closed(). */
static void mark_closed(mock_conn *c, int reason) {
  if (c->closed) return;
  c->closed = 1;
  c->reason = reason;
  if (c->fd >= 0) {
    if (c->flush_close) {
      /* Graceful: discard what the peer sent meanwhile so close() sends FIN,
       * not a reset that could destroy the bytes we just flushed. */
      uint8_t sink[4096];
      for (int i = 0; i < 256; i++)
        if (recv(c->fd, sink, sizeof sink, 0) <= 0) break;
      (void)shutdown(c->fd, SHUT_WR);
    }
    close(c->fd);
    c->fd = -1;
  }
  mbuf_free(&c->rb);
  mbuf_free(&c->wb);
}

/* Run on_close for every closed connection not yet reported (callbacks may
 * close more; each connection is reported once, so this ends). */
static void report_closed(mock_loop *l) {
  for (int again = 1; again;) {
    again = 0;
    for (mock_conn *c = l->head; c; c = c->next) {
      if (!c->closed || c->reported) continue;
      c->reported = 1;
      l->n_open--;
      again = 1;
      if (c->h.on_close) c->h.on_close(c, c->ud, c->reason);
    }
  }
}

/* Free connections whose on_close has run. Only between iterations: the
 * poll slots of the current iteration may still point at them. */
static void reap(mock_loop *l) {
  mock_conn *c = l->head;
  while (c) {
    mock_conn *n = c->next;
    if (c->reported) {
      if (c->prev) c->prev->next = c->next;
      else l->head = c->next;
      if (c->next) c->next->prev = c->prev;
      else l->tail = c->prev;
      free(c);
    }
    c = n;
  }
}

static void do_read(mock_conn *c) {
  size_t budget = MOCK_LOOP_READ_BUDGET, got = 0;
  int eof = 0, err = 0;
  while (budget > 0) {
    size_t want = budget < READ_CHUNK ? budget : READ_CHUNK;
    size_t len = mbuf_len(&c->rb);
    if (len + want > MOCK_LOOP_BUF_CAP) want = MOCK_LOOP_BUF_CAP - len;
    if (want == 0 || mbuf_reserve(&c->rb, want) < 0) {
      mark_closed(c, MOCK_CLOSE_OVERFLOW);
      return;
    }
    ssize_t n = recv(c->fd, c->rb.p + c->rb.tail, want, 0);
    if (n > 0) {
      c->rb.tail += (size_t)n;
      c->bytes_in += (uint64_t)n;
      got += (size_t)n;
      budget -= (size_t)n;
      if ((size_t)n < want) break; /* socket drained, most likely */
    } else if (n == 0) {
      eof = 1;
      break;
    } else if (errno == EINTR) {
      continue;
    } else {
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = 1;
      break;
    }
  }
  if (got && c->h.on_data) c->h.on_data(c, c->ud);
  if (c->closed) return;
  if (err) {
    mark_closed(c, MOCK_CLOSE_ERROR);
  } else if (eof) {
    if (mbuf_len(&c->wb) == 0) {
      mark_closed(c, MOCK_CLOSE_EOF);
    } else {
      c->flush_close = 1;
      c->after_flush_reason = MOCK_CLOSE_EOF;
    }
  }
}

static void do_flush(mock_conn *c) {
  int had = mbuf_len(&c->wb) > 0;
  while (mbuf_len(&c->wb) > 0) {
    ssize_t n = send(c->fd, c->wb.p + c->wb.head, mbuf_len(&c->wb), MSG_NOSIGNAL);
    if (n > 0) {
      c->wb.head += (size_t)n;
      c->bytes_out += (uint64_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    } else {
      mark_closed(c, MOCK_CLOSE_ERROR);
      return;
    }
  }
  c->wb.head = c->wb.tail = 0;
  if (c->wb.cap > SHRINK_ABOVE) mbuf_free(&c->wb);
  if (c->flush_close) {
    mark_closed(c, c->after_flush_reason);
    return;
  }
  if (had && c->h.on_drain) c->h.on_drain(c, c->ud);
}

static void dispatch_conn(mock_conn *c, short rev) {
  if (c->closed || !rev) return;
  if (c->connecting) {
    if (!(rev & (POLLOUT | POLLERR | POLLHUP))) return;
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
    if (err) {
      mark_closed(c, MOCK_CLOSE_CONNECT_FAILED);
      return;
    }
    c->connecting = 0;
    if (c->h.on_connect) c->h.on_connect(c, c->ud);
    if (c->closed) return;
  }
  if ((rev & (POLLIN | POLLHUP | POLLERR)) && !c->paused && !c->flush_close) {
    do_read(c);
    if (c->closed) return;
  }
  if (mbuf_len(&c->wb) > 0 || c->flush_close) do_flush(c);
  else if ((rev & POLLERR) && c->paused) mark_closed(c, MOCK_CLOSE_ERROR);
}

static void dispatch_listener(mock_loop *l, int id) {
  struct listener *ls = NULL;
  for (int i = 0; i < MOCK_LOOP_MAX_LISTENERS; i++)
    if (l->ls[i].id == id) ls = &l->ls[i];
  for (int i = 0; ls && ls->id == id && i < ACCEPT_BUDGET; i++) {
    int fd = accept(ls->fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN, or out of descriptors: try again next time */
    }
    if (set_nonblock(fd) < 0) {
      close(fd);
      continue;
    }
    set_nodelay(fd);
    mock_conn *c = conn_new(l, fd);
    if (!c) {
      close(fd);
      continue;
    }
    ls->fn(l, c, ls->ud); /* may unlisten: the id check above ends the loop */
  }
}

static void fire_timers(mock_loop *l) {
  int64_t now = mock_loop_now_ms();
  uint64_t last_id = l->next_timer_id; /* timers added by callbacks wait a round */
  for (size_t round = 0, due = l->n_timers; round < due; round++) {
    size_t best = l->n_timers;
    for (size_t i = 0; i < l->n_timers; i++) {
      if (l->timers[i].due > now || l->timers[i].id > last_id) continue;
      if (best == l->n_timers || l->timers[i].due < l->timers[best].due) best = i;
    }
    if (best == l->n_timers) return;
    struct timer t = l->timers[best];
    l->timers[best] = l->timers[--l->n_timers];
    t.fn(l, t.ud);
  }
}

/* ---- loop API ------------------------------------------------------------- */

int mock_loop_new(mock_loop **out) {
  *out = NULL;
  mock_loop *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  if (pipe(l->wake) < 0) {
    int e = errno;
    free(l);
    return -e;
  }
  if (set_nonblock(l->wake[0]) < 0 || set_nonblock(l->wake[1]) < 0 ||
      pthread_mutex_init(&l->mu, NULL) != 0) {
    close(l->wake[0]);
    close(l->wake[1]);
    free(l);
    return -EIO;
  }
  atomic_init(&l->stop, 0);
  *out = l;
  return 0;
}

void mock_loop_free(mock_loop *l) {
  if (!l) return;
  mock_loop_stop_thread(l);
  l->freeing = 1;
  for (int i = 0; i < MOCK_LOOP_MAX_LISTENERS; i++)
    if (l->ls[i].id) mock_loop_unlisten(l, l->ls[i].id);
  for (mock_conn *c = l->head; c; c = c->next) mark_closed(c, MOCK_CLOSE_SHUTDOWN);
  report_closed(l);
  reap(l);
  free(l->timers);
  close(l->wake[0]);
  close(l->wake[1]);
  pthread_mutex_destroy(&l->mu);
  free(l->pfds);
  free(l->slots);
  free(l);
}

int mock_loop_listen(mock_loop *l, uint16_t port, mock_accept_fn fn, void *ud,
                     uint16_t *bound_port) {
  if (!fn || l->freeing) return -EINVAL;
  struct listener *slot = NULL;
  for (int i = 0; i < MOCK_LOOP_MAX_LISTENERS && !slot; i++)
    if (!l->ls[i].id) slot = &l->ls[i];
  if (!slot) return -ENOSPC;
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
  int rc = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &al) < 0)
    rc = -errno;
  if (!rc) rc = set_nonblock(fd);
  if (rc) {
    close(fd);
    return rc;
  }
  slot->id = ++l->next_listener_id;
  slot->fd = fd;
  slot->fn = fn;
  slot->ud = ud;
  if (bound_port) *bound_port = ntohs(a.sin_port);
  return slot->id;
}

void mock_loop_unlisten(mock_loop *l, int id) {
  for (int i = 0; i < MOCK_LOOP_MAX_LISTENERS; i++) {
    if (id <= 0 || l->ls[i].id != id) continue;
    close(l->ls[i].fd);
    memset(&l->ls[i], 0, sizeof l->ls[i]);
  }
}

mock_conn *mock_loop_connect(mock_loop *l, uint16_t port, const mock_conn_handler *h, void *ud) {
  if (l->freeing) return NULL;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return NULL;
  if (set_nonblock(fd) < 0) {
    close(fd);
    return NULL;
  }
  set_nodelay(fd);
  mock_conn *c = conn_new(l, fd);
  if (!c) {
    close(fd);
    return NULL;
  }
  mock_conn_set_handler(c, h, ud);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc;
  do {
    rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  } while (rc < 0 && errno == EINTR);
  /* Success or in progress: poll() reports writability, SO_ERROR decides. */
  if (rc == 0 || errno == EINPROGRESS) c->connecting = 1;
  else mark_closed(c, MOCK_CLOSE_CONNECT_FAILED);
  return c;
}

uint64_t mock_loop_timer(mock_loop *l, uint32_t delay_ms, mock_timer_fn fn, void *ud) {
  if (!fn || l->n_timers >= MOCK_LOOP_MAX_TIMERS) return 0;
  if (l->n_timers == l->timer_cap) {
    size_t nc = l->timer_cap ? l->timer_cap * 2 : 16;
    struct timer *p = realloc(l->timers, nc * sizeof *p);
    if (!p) return 0;
    l->timers = p;
    l->timer_cap = nc;
  }
  struct timer *t = &l->timers[l->n_timers++];
  t->id = ++l->next_timer_id;
  t->due = mock_loop_now_ms() + delay_ms;
  t->fn = fn;
  t->ud = ud;
  return t->id;
}

void mock_loop_cancel_timer(mock_loop *l, uint64_t id) {
  for (size_t i = 0; i < l->n_timers; i++) {
    if (l->timers[i].id != id) continue;
    l->timers[i] = l->timers[--l->n_timers];
    return;
  }
}

size_t mock_loop_conn_count(const mock_loop *l) { return l->n_open; }

/* Grow the poll arrays to n entries; 0 or -1. */
static int poll_reserve(mock_loop *l, size_t n) {
  if (n <= l->pcap) return 0;
  size_t nc = l->pcap ? l->pcap : 16;
  while (nc < n) nc *= 2;
  struct pollfd *p = realloc(l->pfds, nc * sizeof *p);
  if (!p) return -1;
  l->pfds = p;
  struct slot *s = realloc(l->slots, nc * sizeof *s);
  if (!s) return -1;
  l->slots = s;
  l->pcap = nc;
  return 0;
}

/* Build the poll set; *urgent is set if work is owed without waiting. */
static size_t build_poll_set(mock_loop *l, int *urgent) {
  size_t n = 1 + MOCK_LOOP_MAX_LISTENERS;
  for (mock_conn *c = l->head; c; c = c->next) n++;
  if (poll_reserve(l, n) < 0) return 0;
  size_t k = 0;
  l->pfds[k] = (struct pollfd){.fd = l->wake[0], .events = POLLIN};
  l->slots[k++] = (struct slot){.kind = SLOT_WAKE};
  for (int i = 0; i < MOCK_LOOP_MAX_LISTENERS; i++) {
    if (!l->ls[i].id) continue;
    l->pfds[k] = (struct pollfd){.fd = l->ls[i].fd, .events = POLLIN};
    l->slots[k++] = (struct slot){.kind = SLOT_LISTENER, .listener_id = l->ls[i].id};
  }
  *urgent = 0;
  for (mock_conn *c = l->head; c; c = c->next) {
    if (c->closed) {
      if (!c->reported) *urgent = 1;
      continue;
    }
    if (c->redeliver) *urgent = 1;
    short ev = 0;
    if (c->connecting) ev = POLLOUT;
    else {
      if (!c->paused && !c->flush_close) ev |= POLLIN;
      if (mbuf_len(&c->wb) > 0 || c->flush_close) ev |= POLLOUT;
    }
    /* A paused connection with nothing to write is left out entirely, so a
     * hang-up on it cannot make poll() spin. */
    if (!ev) continue;
    l->pfds[k] = (struct pollfd){.fd = c->fd, .events = ev};
    l->slots[k++] = (struct slot){.kind = SLOT_CONN, .conn = c};
  }
  return k;
}

int mock_loop_run(mock_loop *l, int max_ms) {
  pthread_mutex_lock(&l->mu);
  int64_t start = mock_loop_now_ms();
  int ret = 0;
  for (;;) {
    if (atomic_exchange(&l->stop, 0)) {
      ret = 1;
      break;
    }
    report_closed(l);
    reap(l);
    int64_t now = mock_loop_now_ms();
    if (max_ms >= 0 && now - start >= max_ms) break;
    int urgent;
    size_t n = build_poll_set(l, &urgent);
    if (n == 0) {
      ret = -ENOMEM;
      break;
    }
    int64_t wait = MAX_SLEEP_MS;
    if (max_ms >= 0 && start + max_ms - now < wait) wait = start + max_ms - now;
    for (size_t i = 0; i < l->n_timers; i++)
      if (l->timers[i].due - now < wait) wait = l->timers[i].due - now;
    if (wait < 0 || urgent) wait = 0;

    pthread_mutex_unlock(&l->mu);
    int pr = poll(l->pfds, (nfds_t)n, (int)wait);
    int perr = errno;
    pthread_mutex_lock(&l->mu);
    if (pr < 0 && perr != EINTR) {
      ret = -perr;
      break;
    }
    for (size_t i = 0; pr > 0 && i < n; i++) {
      short rev = l->pfds[i].revents;
      if (!rev) continue;
      if (l->slots[i].kind == SLOT_WAKE) {
        uint8_t sink[64];
        while (read(l->wake[0], sink, sizeof sink) > 0) {
        }
      } else if (l->slots[i].kind == SLOT_LISTENER) {
        dispatch_listener(l, l->slots[i].listener_id);
      } else {
        dispatch_conn(l->slots[i].conn, rev);
      }
    }
    for (mock_conn *c = l->head; c; c = c->next) {
      if (!c->redeliver) continue;
      c->redeliver = 0;
      if (!c->closed && !c->paused && mbuf_len(&c->rb) && c->h.on_data) c->h.on_data(c, c->ud);
    }
    fire_timers(l);
    report_closed(l);
  }
  pthread_mutex_unlock(&l->mu);
  return ret;
}

void mock_loop_stop(mock_loop *l) {
  atomic_store(&l->stop, 1);
  loop_wake(l);
}

static void *loop_thread(void *arg) {
  (void)mock_loop_run((mock_loop *)arg, -1);
  return NULL;
}

int mock_loop_start_thread(mock_loop *l) {
  if (l->thread_running) return -EBUSY;
  atomic_store(&l->stop, 0);
  int rc = pthread_create(&l->thread, NULL, loop_thread, l);
  if (rc != 0) return -rc;
  l->thread_running = 1;
  return 0;
}

void mock_loop_stop_thread(mock_loop *l) {
  if (!l->thread_running) return;
  mock_loop_stop(l);
  pthread_join(l->thread, NULL);
  l->thread_running = 0;
  atomic_store(&l->stop, 0);
}

void mock_loop_lock(mock_loop *l) { pthread_mutex_lock(&l->mu); }

void mock_loop_unlock(mock_loop *l) {
  pthread_mutex_unlock(&l->mu);
  loop_wake(l);
}

/* ---- connection API ------------------------------------------------------- */

void mock_conn_set_handler(mock_conn *c, const mock_conn_handler *h, void *ud) {
  if (h) c->h = *h;
  else memset(&c->h, 0, sizeof c->h);
  c->ud = ud;
}

void *mock_conn_userdata(const mock_conn *c) { return c->ud; }
mock_loop *mock_conn_loop(const mock_conn *c) { return c->loop; }
uint64_t mock_conn_id(const mock_conn *c) { return c->id; }

const uint8_t *mock_conn_data(const mock_conn *c, size_t *len) {
  *len = mbuf_len(&c->rb);
  return *len ? c->rb.p + c->rb.head : (const uint8_t *)"";
}

void mock_conn_consume(mock_conn *c, size_t n) {
  size_t len = mbuf_len(&c->rb);
  c->rb.head += n < len ? n : len;
  if (c->rb.head == c->rb.tail) c->rb.head = c->rb.tail = 0;
}

uint8_t *mock_conn_send_reserve(mock_conn *c, size_t n) {
  if (c->closed || c->flush_close) return NULL;
  if (mbuf_reserve(&c->wb, n) < 0) {
    mark_closed(c, MOCK_CLOSE_OVERFLOW);
    return NULL;
  }
  uint8_t *p = c->wb.p + c->wb.tail;
  c->wb.tail += n;
  return p;
}

int mock_conn_send(mock_conn *c, const void *d, size_t n) {
  if (n == 0) return c->closed || c->flush_close ? -1 : 0;
  uint8_t *p = mock_conn_send_reserve(c, n);
  if (!p) return -1;
  memcpy(p, d, n);
  return 0;
}

size_t mock_conn_pending(const mock_conn *c) { return mbuf_len(&c->wb); }

void mock_conn_pause(mock_conn *c, int paused) {
  if (c->paused && !paused && mbuf_len(&c->rb)) c->redeliver = 1;
  c->paused = paused != 0;
}

void mock_conn_close(mock_conn *c) { mark_closed(c, MOCK_CLOSE_LOCAL); }

void mock_conn_close_after_flush(mock_conn *c) {
  if (c->closed || c->flush_close) return;
  c->flush_close = 1;
  c->after_flush_reason = MOCK_CLOSE_LOCAL;
  if (mbuf_len(&c->wb) == 0 && !c->connecting) mark_closed(c, MOCK_CLOSE_LOCAL);
}

int mock_conn_is_open(const mock_conn *c) { return !c->closed && !c->flush_close; }

uint64_t mock_conn_bytes_in(const mock_conn *c) { return c->bytes_in; }
uint64_t mock_conn_bytes_out(const mock_conn *c) { return c->bytes_out; }
