/*
 * A thread that drives an abstract target (the context) in OWN mode, for
 * hosts that want "just run it" (DESIGN.md rule 2: optional, built on the
 * same calls a host loop would make).
 *
 * The thread loops: run the submissions that were queued when the drain
 * began (FIFO), then run_once(target, at most 1000 ms), until stopped.
 * Other threads touch the target only through mtci_runner_submit: a
 * mutex-protected bounded queue plus the poller's wakeup fd, so a blocked
 * poll() returns at once and the submission runs promptly.
 *
 * Pending submissions at stop: every submission that mtci_runner_submit
 * accepted (returned 0) runs exactly once, on the runner thread, before
 * mtci_runner_stop returns - also when the loop ended because run_once
 * failed. Submissions made after stop began, or from a function running in
 * that final drain, are refused with MTC_ERR_IO_STOPPED (so nothing runs
 * after stop returns and a self-resubmitting function cannot keep the
 * thread alive).
 *
 * run_once failing (negative) ends the loop: the error is kept
 * (mtci_runner_error, returned by mtci_runner_stop), the queue is drained
 * and closed, and later submits get MTC_ERR_IO_STOPPED.
 *
 * The thread starts with all signals blocked, so process signals reach the
 * host's own threads.
 *
 * Lifetime: every mtci_runner_submit call must have returned before
 * mtci_runner_stop returns (stop frees the queue and its mutex); submits
 * that overlap the start of stop are fine and get MTC_ERR_IO_STOPPED.
 */
#ifndef MTCI_IO_RUNNER_H
#define MTCI_IO_RUNNER_H

#include <pthread.h>
#include <stddef.h>

#include "io/poller.h"

#define MTCI_RUNNER_DEFAULT_QUEUE 1024
#define MTCI_RUNNER_MAX_QUEUE 65536
#define MTCI_RUNNER_MAX_WAIT_MS 1000

/* What the runner drives. run_once does one round of waiting and work
 * (0 or a negative error); poller returns the target's poller, which must
 * be in OWN mode and outlive the runner (asked once, at start). */
typedef struct mtci_runner_target {
  int (*run_once)(void *target, int max_ms);
  mtci_poller *(*poller)(void *target);
  void *target;
} mtci_runner_target;

/* A submitted function: runs on the runner thread with the target. */
typedef void (*mtci_runner_fn)(void *target, void *ud);

typedef struct mtci_runner_item {
  mtci_runner_fn fn;
  void *ud;
} mtci_runner_item;

typedef struct mtci_runner {
  mtci_runner_target t;
  mtci_poller *poller;
  pthread_t thread;
  pthread_mutex_t mu;
  mtci_runner_item *q; /* ring buffer: q[head .. head+len) mod cap */
  size_t cap, head, len;
  int started;  /* start succeeded and stop has not joined yet */
  int stopping; /* stop was asked for */
  int closed;   /* the loop ended: no more submissions */
  int error;    /* run_once's failure that ended the loop, or 0 */
} mtci_runner;

/*
 * Start the thread (r is caller-allocated; t is copied). queue_cap: most
 * pending submissions (0: MTCI_RUNNER_DEFAULT_QUEUE, at most
 * MTCI_RUNNER_MAX_QUEUE). From the start on, the target belongs to the
 * runner thread until mtci_runner_stop returns. Returns 0,
 * MTC_ERR_INVALID_ARG (missing callback, poller not in OWN mode, bad cap),
 * MTC_ERR_NOMEM, MTC_ERR_IO_THREAD. On failure r needs no stop.
 */
int mtci_runner_start(mtci_runner *r, const mtci_runner_target *t, size_t queue_cap);

/*
 * Queue fn(target, ud) to run on the runner thread. Any thread, including
 * the runner thread itself (it then runs in a later drain). Submissions of
 * one thread run in the order they were made. Returns 0,
 * MTC_ERR_IO_QUEUE_FULL (try again later), MTC_ERR_IO_STOPPED,
 * MTC_ERR_INVALID_ARG.
 */
int mtci_runner_submit(mtci_runner *r, mtci_runner_fn fn, void *ud);

/*
 * Stop the loop, run what is pending (see above), join the thread and free
 * the queue. Not from the runner thread (MTC_ERR_IO_BUSY). Idempotent and
 * NULL-safe (0 when not running). Returns 0, or the run_once error that had
 * ended the loop early.
 */
int mtci_runner_stop(mtci_runner *r);

/* The run_once error that ended the loop, or 0 while fine. Any thread. */
int mtci_runner_error(mtci_runner *r);

/* 1 if the calling thread is r's runner thread. */
int mtci_runner_on_thread(const mtci_runner *r);

#endif /* MTCI_IO_RUNNER_H */
