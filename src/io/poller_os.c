/*
 * fd table, poll() round, wakeup fd and deadline aggregator (see poller.h).
 *
 * The table is a dense array searched linearly: a context holds a few dozen
 * fds (connections, c-ares, curl), so a scan is cheaper than keeping a map,
 * and removal by swapping in the last entry keeps it dense. Nothing holds a
 * pointer into it across a callback: every dispatch looks its fd up again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include "io/poller.h"

#define POLLER_LIMIT 65536u
#define IO_MASK (MTCI_IO_READ | MTCI_IO_WRITE)

static mtci_poller_entry *find(const mtci_poller *p, int fd) {
  for (size_t i = 0; i < p->n_entries; i++)
    if (p->entries[i].fd == fd) return &p->entries[i];
  return NULL;
}

static void tell_host(mtci_poller *p, int fd, unsigned events) {
  if (p->watch_fd) p->watch_fd(p->user_data, fd, events);
}

/* ---- wakeup fd ---------------------------------------------------------------- */

#ifndef __linux__
static int set_nonblock_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -1;
  return fcntl(fd, F_SETFD, FD_CLOEXEC);
}
#endif

static int wake_open(mtci_poller *p) {
#ifdef __linux__
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return MTC_ERR_IO_WAKEUP;
  p->wake_rd = p->wake_wr = fd;
#else
  int fds[2];
  if (pipe(fds) != 0) return MTC_ERR_IO_WAKEUP;
  if (set_nonblock_cloexec(fds[0]) != 0 || set_nonblock_cloexec(fds[1]) != 0) {
    close(fds[0]);
    close(fds[1]);
    return MTC_ERR_IO_WAKEUP;
  }
  p->wake_rd = fds[0];
  p->wake_wr = fds[1];
#endif
  return 0;
}

/* Consume pending wakeups (the fd is non-blocking: stops at EAGAIN). */
static void wake_drain(mtci_poller *p) {
  uint8_t buf[64];
  for (int i = 0; i < 64; i++) {
    ssize_t n = read(p->wake_rd, buf, sizeof buf);
    if (n > 0 && p->wake_rd != p->wake_wr) continue; /* pipe: maybe more */
    if (n < 0 && errno == EINTR) continue;
    break; /* eventfd: one read resets the counter; or EAGAIN / error */
  }
}

int mtci_poller_wakeup(mtci_poller *p) {
  if (!p) return MTC_ERR_INVALID_ARG;
  if (p->wake_wr < 0) return MTC_ERR_UNSUPPORTED;
  int saved = errno; /* callable from a signal handler */
  uint64_t one = 1;
  int rc = 0;
  for (;;) {
    ssize_t n = write(p->wake_wr, &one, p->wake_rd == p->wake_wr ? sizeof one : 1);
    if (n > 0) break;
    if (n < 0 && errno == EINTR) continue;
    /* EAGAIN: the counter or pipe is full, so a wakeup is pending anyway. */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    rc = MTC_ERR_IO_WAKEUP;
    break;
  }
  errno = saved;
  return rc;
}

int mtci_poller_wakeup_fd(const mtci_poller *p) { return p ? p->wake_rd : -1; }

/* ---- lifetime ------------------------------------------------------------------ */

#define FDS_FIRST 4
#define DEADLINES_FIRST 2

/* Double the fd table (and OWN mode's poll set: one more for the wakeup
 * fd), up to max_fds. realloc keeps the contents, so a poll round that is
 * dispatching while a callback adds an fd still reads its own set. */
static int grow_fds(mtci_poller *p) {
  if (p->cap_fds >= p->max_fds) return MTC_ERR_IO_TABLE_FULL;
  size_t cap = p->cap_fds ? p->cap_fds * 2 : FDS_FIRST;
  if (cap > p->max_fds) cap = p->max_fds;
  mtci_poller_entry *e = realloc(p->entries, cap * sizeof *e);
  if (!e) return MTC_ERR_NOMEM;
  p->entries = e;
  if (!p->watch_fd) {
    struct pollfd *f = realloc(p->pfds, (cap + 1) * sizeof *f);
    if (!f) return MTC_ERR_NOMEM;
    p->pfds = f;
    uint64_t *sr = realloc(p->pserials, (cap + 1) * sizeof *sr);
    if (!sr) return MTC_ERR_NOMEM;
    p->pserials = sr;
  }
  p->cap_fds = cap;
  return 0;
}

static int grow_deadlines(mtci_poller *p) {
  if (p->cap_deadlines >= p->max_deadlines) return MTC_ERR_IO_TABLE_FULL;
  size_t cap = p->cap_deadlines ? p->cap_deadlines * 2 : DEADLINES_FIRST;
  if (cap > p->max_deadlines) cap = p->max_deadlines;
  int64_t *d = realloc(p->deadlines, cap * sizeof *d);
  if (!d) return MTC_ERR_NOMEM;
  p->deadlines = d;
  unsigned char *u = realloc(p->deadline_used, cap);
  if (!u) return MTC_ERR_NOMEM;
  p->deadline_used = u;
  for (size_t i = p->cap_deadlines; i < cap; i++) {
    d[i] = -1;
    u[i] = 0;
  }
  p->cap_deadlines = cap;
  return 0;
}

int mtci_poller_init(mtci_poller *p, const mtci_poller_config *cfg) {
  if (!p) return MTC_ERR_INVALID_ARG;
  memset(p, 0, sizeof *p);
  p->wake_rd = p->wake_wr = -1;
  p->min_deadline = p->armed = -1;
  mtci_poller_config def;
  memset(&def, 0, sizeof def);
  if (!cfg) cfg = &def;
  size_t max_fds = cfg->max_fds ? cfg->max_fds : MTCI_POLLER_DEFAULT_MAX_FDS;
  size_t max_dl = cfg->max_deadlines ? cfg->max_deadlines : MTCI_POLLER_DEFAULT_MAX_DEADLINES;
  if (max_fds > POLLER_LIMIT || max_dl > POLLER_LIMIT) return MTC_ERR_INVALID_ARG;

  p->watch_fd = cfg->watch_fd;
  p->max_fds = max_fds;
  p->max_deadlines = max_dl;
  /* start small: the arrays grow as fds and deadlines are added */
  int rc = grow_fds(p);
  if (rc == 0) rc = grow_deadlines(p);
  if (rc == 0 && !cfg->watch_fd) rc = wake_open(p);
  if (rc != 0) {
    mtci_poller_free(p);
    return rc;
  }
  p->set_timer = cfg->set_timer;
  p->user_data = cfg->user_data;
  p->next_serial = 1;
  return 0;
}

void mtci_poller_free(mtci_poller *p) {
  if (!p) return;
  if (p->wake_rd >= 0) close(p->wake_rd);
  if (p->wake_wr >= 0 && p->wake_wr != p->wake_rd) close(p->wake_wr);
  free(p->entries);
  free(p->pfds);
  free(p->pserials);
  free(p->deadlines);
  free(p->deadline_used);
  memset(p, 0, sizeof *p);
  p->wake_rd = p->wake_wr = -1;
  p->min_deadline = p->armed = -1;
}

int mtci_poller_own_mode(const mtci_poller *p) { return p && !p->watch_fd; }

/* ---- fd table ------------------------------------------------------------------- */

int mtci_poller_add(mtci_poller *p, int fd, unsigned events, mtci_poller_fn fn, void *ud) {
  if (!p || !p->entries || fd < 0 || !fn || (events & ~IO_MASK)) return MTC_ERR_INVALID_ARG;
  if (fd == p->wake_rd || fd == p->wake_wr) return MTC_ERR_IO_FD_EXISTS;
  if (find(p, fd)) return MTC_ERR_IO_FD_EXISTS;
  if (p->n_entries >= p->cap_fds) {
    int rc = grow_fds(p);
    if (rc) return rc;
  }
  mtci_poller_entry *e = &p->entries[p->n_entries++];
  e->fd = fd;
  e->events = events;
  e->fn = fn;
  e->ud = ud;
  e->serial = p->next_serial++;
  if (events) tell_host(p, fd, events);
  return 0;
}

int mtci_poller_modify(mtci_poller *p, int fd, unsigned events) {
  if (!p || fd < 0 || (events & ~IO_MASK)) return MTC_ERR_INVALID_ARG;
  mtci_poller_entry *e = find(p, fd);
  if (!e) return MTC_ERR_IO_FD_UNKNOWN;
  if (e->events == events) return 0;
  e->events = events;
  tell_host(p, fd, events);
  return 0;
}

int mtci_poller_remove(mtci_poller *p, int fd) {
  if (!p || fd < 0) return MTC_ERR_INVALID_ARG;
  mtci_poller_entry *e = find(p, fd);
  if (!e) return MTC_ERR_IO_FD_UNKNOWN;
  unsigned was = e->events;
  *e = p->entries[--p->n_entries]; /* swap in the last entry */
  if (was) tell_host(p, fd, 0);
  return 0;
}

int mtci_poller_has(const mtci_poller *p, int fd) { return p && fd >= 0 && find(p, fd) != NULL; }

int mtci_poller_events(const mtci_poller *p, int fd) {
  if (!p || fd < 0) return MTC_ERR_INVALID_ARG;
  const mtci_poller_entry *e = find(p, fd);
  return e ? (int)e->events : MTC_ERR_IO_FD_UNKNOWN;
}

size_t mtci_poller_count(const mtci_poller *p) { return p ? p->n_entries : 0; }

/* Run fd's callback if it is registered (as registration `serial`, when
 * nonzero) and wants some of revents. */
static int dispatch(mtci_poller *p, int fd, uint64_t serial, unsigned revents) {
  mtci_poller_entry *e = find(p, fd);
  if (!e || (serial && e->serial != serial)) return 0;
  unsigned ev = revents & e->events;
  if (!ev) return 0;
  /* Copy out: the callback may reshuffle the table. */
  mtci_poller_fn fn = e->fn;
  void *ud = e->ud;
  fn(ud, fd, ev);
  return 1;
}

int mtci_poller_dispatch(mtci_poller *p, int fd, unsigned revents) {
  if (!p || fd < 0) return MTC_ERR_INVALID_ARG;
  return dispatch(p, fd, 0, revents & IO_MASK);
}

int mtci_poller_run(mtci_poller *p, int timeout_ms) {
  if (!p || !p->pfds || p->watch_fd) return MTC_ERR_INVALID_ARG;
  if (p->in_run) return MTC_ERR_IO_BUSY;
  /* Snapshot the wanted set: callbacks may change the table mid-round. */
  size_t n = 0;
  p->pfds[n].fd = p->wake_rd;
  p->pfds[n].events = POLLIN;
  p->pfds[n].revents = 0;
  p->pserials[n++] = 0;
  for (size_t i = 0; i < p->n_entries; i++) {
    const mtci_poller_entry *e = &p->entries[i];
    if (!e->events) continue;
    p->pfds[n].fd = e->fd;
    p->pfds[n].events = (short)(((e->events & MTCI_IO_READ) ? POLLIN : 0) |
                                ((e->events & MTCI_IO_WRITE) ? POLLOUT : 0));
    p->pfds[n].revents = 0;
    p->pserials[n++] = e->serial;
  }
  int r = poll(p->pfds, (nfds_t)n, timeout_ms < 0 ? -1 : timeout_ms);
  if (r < 0) return errno == EINTR ? 0 : MTC_ERR_IO_POLL;
  if (r == 0) return 0;
  if (p->pfds[0].revents) wake_drain(p);

  p->in_run = 1;
  int ran = 0;
  for (size_t i = 1; i < n; i++) {
    short re = p->pfds[i].revents;
    if (!re) continue;
    unsigned ev = 0;
    if (re & POLLIN) ev |= MTCI_IO_READ;
    if (re & POLLOUT) ev |= MTCI_IO_WRITE;
    /* Errors and hang-ups: let the owner's next recv/send/connect_result
     * see them, through whichever events it wants. */
    if (re & (POLLERR | POLLHUP | POLLNVAL)) ev |= IO_MASK;
    if (ran < INT_MAX) ran += dispatch(p, p->pfds[i].fd, p->pserials[i], ev);
  }
  p->in_run = 0;
  return ran;
}

/* ---- deadlines -------------------------------------------------------------------- */

static void recompute_min(mtci_poller *p) {
  int64_t m = -1;
  for (size_t i = 0; i < p->cap_deadlines; i++) {
    int64_t d = p->deadlines[i];
    if (d >= 0 && (m < 0 || d < m)) m = d;
  }
  p->min_deadline = m;
}

void mtci_poller_timer_sync(mtci_poller *p, int64_t now_ms) {
  if (!p || p->min_deadline == p->armed) return;
  p->armed = p->min_deadline;
  if (!p->set_timer) return;
  if (p->armed < 0) p->set_timer(p->user_data, -1);
  else p->set_timer(p->user_data, p->armed > now_ms ? p->armed - now_ms : 0);
}

void mtci_poller_timer_fired(mtci_poller *p) {
  if (p) p->armed = -1;
}

int mtci_poller_deadline_new(mtci_poller *p) {
  if (!p || !p->deadline_used) return MTC_ERR_INVALID_ARG;
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < p->cap_deadlines; i++) {
      if (!p->deadline_used[i]) {
        p->deadline_used[i] = 1;
        p->deadlines[i] = -1;
        return (int)i;
      }
    }
    int rc = grow_deadlines(p);
    if (rc) return rc;
  }
  return MTC_ERR_IO_TABLE_FULL;
}

int mtci_poller_deadline_set(mtci_poller *p, int id, int64_t at_ms, int64_t now_ms) {
  if (!p || id < 0 || (size_t)id >= p->cap_deadlines || !p->deadline_used[id])
    return MTC_ERR_INVALID_ARG;
  if (at_ms < 0) at_ms = -1;
  int64_t old = p->deadlines[id];
  if (old == at_ms) return 0;
  p->deadlines[id] = at_ms;
  /* Rescan only when the slot that held the minimum moved later or away. */
  if (at_ms >= 0 && (p->min_deadline < 0 || at_ms < p->min_deadline)) p->min_deadline = at_ms;
  else if (old >= 0 && old == p->min_deadline) recompute_min(p);
  mtci_poller_timer_sync(p, now_ms);
  return 0;
}

int mtci_poller_deadline_free(mtci_poller *p, int id, int64_t now_ms) {
  int rc = mtci_poller_deadline_set(p, id, -1, now_ms);
  if (rc == 0) p->deadline_used[id] = 0;
  return rc;
}

int64_t mtci_poller_next_deadline(const mtci_poller *p) {
  return p && p->min_deadline >= 0 ? p->min_deadline : -1;
}

int64_t mtci_poller_next_timeout_ms(const mtci_poller *p, int64_t now_ms) {
  int64_t d = mtci_poller_next_deadline(p);
  if (d < 0) return -1;
  return d > now_ms ? d - now_ms : 0;
}
