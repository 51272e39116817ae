/*
 * The fd table and deadline aggregator: the one place where the library's
 * sockets (and later c-ares and libcurl sockets) meet the host's event loop.
 *
 * Two modes, chosen at init by whether the host gave a watch_fd callback:
 *
 *  HOST mode (watch_fd != NULL): the host's loop does the waiting. Every
 *    change of an fd's wanted events is told to watch_fd(user_data, fd,
 *    events) exactly once (0 = stop watching); unchanged interest is never
 *    repeated, and an fd wanted for nothing is never reported at all. On
 *    readiness the host calls mtci_poller_dispatch (what mtc_context_on_io
 *    does), which runs the fd's callback.
 *  OWN mode (watch_fd == NULL): mtci_poller_run does one poll() round over
 *    the table and dispatches. A wakeup fd (eventfd, or a pipe elsewhere)
 *    sits in every round, so mtci_poller_wakeup from any thread ends a
 *    blocked poll() at once (the runner thread's submit path).
 *
 * Deadlines: components hold deadline slots and set each slot's next
 * deadline (absolute ms of the caller's clock, < 0 = none). The poller keeps
 * the minimum, and tells set_timer(user_data, delay_ms) only when that
 * minimum changes (-1 = cancel), the CURLMOPT_TIMERFUNCTION shape. The
 * host's timer is one-shot: when it fires, the context calls
 * mtci_poller_timer_fired, handles what expired, then mtci_poller_timer_sync
 * re-arms the timer for whatever deadline remains (even an unchanged one).
 *
 * Dispatch safety: a callback may add, modify or remove any fd, including
 * its own, and close fds it removed. mtci_poller_run looks every fd up again
 * before its callback runs and skips fds removed during the round; an fd
 * number that was removed and added again in the same round does not get
 * the old registration's events (entries carry a serial number). Events an
 * fd no longer wants are masked out. A callback must not free the poller or
 * call mtci_poller_run (MTC_ERR_IO_BUSY).
 *
 * Threads: one thread owns the poller; only mtci_poller_wakeup may be called
 * from other threads. watch_fd and set_timer run synchronously inside the
 * call that changed things, and must not call back into the poller.
 *
 * Close order: mtci_poller_remove(fd) before close(fd), so the host stops
 * watching an fd number that may soon be reused.
 */
#ifndef MTCI_IO_POLLER_H
#define MTCI_IO_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

/* Event bits; the same values as the public MTC_IO_READ / MTC_IO_WRITE. */
enum { MTCI_IO_READ = 1u, MTCI_IO_WRITE = 2u };

#define MTCI_POLLER_DEFAULT_MAX_FDS 1024
#define MTCI_POLLER_DEFAULT_MAX_DEADLINES 256

/* An fd's callback: revents is a non-empty subset of the wanted MTCI_IO_*
 * bits. Errors and hang-ups arrive as readiness of whatever is wanted (the
 * next recv/send or mtci_sock_connect_result reports the error). */
typedef void (*mtci_poller_fn)(void *ud, int fd, unsigned revents);

typedef struct mtci_poller_config {
  /* NULL: OWN mode. Otherwise HOST mode, see above. */
  void (*watch_fd)(void *user_data, int fd, unsigned events);
  /* May be NULL (nobody to tell; mtci_poller_next_timeout_ms still works). */
  void (*set_timer)(void *user_data, int64_t delay_ms);
  void *user_data;
  size_t max_fds;       /* 0: MTCI_POLLER_DEFAULT_MAX_FDS; at most 65536 */
  size_t max_deadlines; /* 0: MTCI_POLLER_DEFAULT_MAX_DEADLINES; at most 65536 */
} mtci_poller_config;

typedef struct mtci_poller_entry {
  int fd;
  unsigned events; /* wanted MTCI_IO_* (in HOST mode: also what the host was told) */
  mtci_poller_fn fn;
  void *ud;
  uint64_t serial; /* unique per registration */
} mtci_poller_entry;

typedef struct mtci_poller {
  void (*watch_fd)(void *user_data, int fd, unsigned events);
  void (*set_timer)(void *user_data, int64_t delay_ms);
  void *user_data;
  /* fd table, dense (order is not stable); the arrays grow on demand
   * (cap_fds) up to max_fds, so an idle context holds a few entries */
  mtci_poller_entry *entries;
  size_t n_entries, cap_fds, max_fds;
  uint64_t next_serial;
  /* OWN mode: the poll() set of the current round and its entries' serials;
   * slot 0 is the wakeup fd */
  struct pollfd *pfds;
  uint64_t *pserials;
  int in_run;
  int wake_rd, wake_wr; /* -1 in HOST mode; equal for an eventfd */
  /* deadline slots: deadlines[i] < 0 = none; used[i] = slot allocated */
  int64_t *deadlines;
  unsigned char *deadline_used;
  size_t cap_deadlines, max_deadlines; /* allocated slots, limit */
  int64_t min_deadline; /* < 0: none */
  int64_t armed;        /* deadline the host's timer is set for, < 0: none */
} mtci_poller;

/*
 * Set up p (caller-allocated) from cfg (copied; NULL = OWN mode with
 * defaults). Returns 0, MTC_ERR_INVALID_ARG (limits out of range),
 * MTC_ERR_NOMEM, MTC_ERR_IO_WAKEUP (OWN mode: no eventfd/pipe). On failure p
 * is left so that mtci_poller_free is a no-op. Makes no host calls.
 */
int mtci_poller_init(mtci_poller *p, const mtci_poller_config *cfg);

/*
 * Release the table and close the wakeup fd. Does not call watch_fd or
 * set_timer (the host is tearing down too) and does not close registered
 * fds, which belong to their owners. NULL-safe; safe after a failed init.
 */
void mtci_poller_free(mtci_poller *p);

/* 1 in OWN mode (mtci_poller_run usable), 0 in HOST mode. */
int mtci_poller_own_mode(const mtci_poller *p);

/*
 * Register fd (>= 0) for events (MTCI_IO_* bits, 0 allowed: registered but
 * not watched) with callback fn(ud, fd, revents). HOST mode: watch_fd(fd,
 * events) if events != 0. Returns 0, MTC_ERR_INVALID_ARG,
 * MTC_ERR_IO_FD_EXISTS, MTC_ERR_IO_TABLE_FULL.
 */
int mtci_poller_add(mtci_poller *p, int fd, unsigned events, mtci_poller_fn fn, void *ud);

/* Change fd's wanted events. HOST mode: watch_fd(fd, events) only if they
 * differ from before. Returns 0, MTC_ERR_INVALID_ARG, MTC_ERR_IO_FD_UNKNOWN. */
int mtci_poller_modify(mtci_poller *p, int fd, unsigned events);

/* Forget fd. HOST mode: watch_fd(fd, 0) if it was watched for something.
 * Returns 0, MTC_ERR_IO_FD_UNKNOWN, MTC_ERR_INVALID_ARG. */
int mtci_poller_remove(mtci_poller *p, int fd);

/* 1 if fd is registered, else 0. */
int mtci_poller_has(const mtci_poller *p, int fd);
/* fd's wanted events, or MTC_ERR_IO_FD_UNKNOWN. */
int mtci_poller_events(const mtci_poller *p, int fd);
/* Number of registered fds (the wakeup fd not counted). */
size_t mtci_poller_count(const mtci_poller *p);

/*
 * The host reports fd ready for revents (MTCI_IO_* bits; other bits are
 * ignored). Runs fd's callback with revents masked to its wanted events.
 * Returns 1 if the callback ran, 0 if not (fd not registered - a stale
 * event after removal is normal - or nothing wanted), MTC_ERR_INVALID_ARG.
 * Usable in both modes.
 */
int mtci_poller_dispatch(mtci_poller *p, int fd, unsigned revents);

/*
 * OWN mode: one poll() round over the registered fds with wanted events,
 * waiting at most timeout_ms (0 = just look, < 0 = no limit), then dispatch.
 * A wakeup ends the wait and is consumed. Returns the number of callbacks
 * run (0 on timeout, wakeup or EINTR), MTC_ERR_IO_POLL, MTC_ERR_IO_BUSY
 * (called from a callback), MTC_ERR_INVALID_ARG (HOST mode).
 * The caller computes timeout_ms, typically
 * min(limit, mtci_poller_next_timeout_ms(p, now)).
 */
int mtci_poller_run(mtci_poller *p, int timeout_ms);

/*
 * Any thread, also a signal handler: make the current or next
 * mtci_poller_run return at once. Wakeups coalesce. Returns 0,
 * MTC_ERR_UNSUPPORTED (HOST mode: there is no poll() to interrupt),
 * MTC_ERR_IO_WAKEUP.
 */
int mtci_poller_wakeup(mtci_poller *p);
/* The wakeup fd (read end) in OWN mode, else -1. */
int mtci_poller_wakeup_fd(const mtci_poller *p);

/* ---- deadlines ------------------------------------------------------------ */

/* Allocate a deadline slot (initially no deadline). Returns its id (>= 0),
 * MTC_ERR_IO_TABLE_FULL or MTC_ERR_INVALID_ARG. No host call. */
int mtci_poller_deadline_new(mtci_poller *p);

/*
 * Set slot id's deadline to at_ms (absolute, the caller's clock; < 0 = none).
 * If the minimum over all slots changes, set_timer(max(0, min - now_ms)) or
 * set_timer(-1) is called. Returns 0 or MTC_ERR_INVALID_ARG (bad id).
 */
int mtci_poller_deadline_set(mtci_poller *p, int id, int64_t at_ms, int64_t now_ms);

/* Clear and release slot id (the id may be handed out again), reporting a
 * changed minimum like mtci_poller_deadline_set. */
int mtci_poller_deadline_free(mtci_poller *p, int id, int64_t now_ms);

/* Earliest deadline (absolute ms), or -1 if there is none. */
int64_t mtci_poller_next_deadline(const mtci_poller *p);

/* Milliseconds from now_ms to the earliest deadline, 0 if it has passed,
 * -1 if there is none. */
int64_t mtci_poller_next_timeout_ms(const mtci_poller *p, int64_t now_ms);

/* The host's one-shot timer fired: it is no longer armed. No host call. */
void mtci_poller_timer_fired(mtci_poller *p);

/* Tell set_timer about the current minimum if the host's timer is not set
 * for exactly it (after mtci_poller_timer_fired: re-arm or stay silent). */
void mtci_poller_timer_sync(mtci_poller *p, int64_t now_ms);

#endif /* MTCI_IO_POLLER_H */
