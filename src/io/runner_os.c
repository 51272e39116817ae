/* The optional runner thread (see runner.h). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "io/runner.h"

/* Pop the oldest submission; 1 if there was one. Caller holds r->mu. */
static int pop_locked(mtci_runner *r, mtci_runner_item *out) {
  if (r->len == 0) return 0;
  *out = r->q[r->head];
  r->head = (r->head + 1) % r->cap;
  r->len--;
  return 1;
}

/* Run at most `limit` submissions, one lock round each, so functions that
 * submit more (or busy producers) cannot starve run_once. */
static void drain(mtci_runner *r, size_t limit) {
  for (size_t i = 0; i < limit; i++) {
    mtci_runner_item it;
    pthread_mutex_lock(&r->mu);
    int got = pop_locked(r, &it);
    pthread_mutex_unlock(&r->mu);
    if (!got) return;
    it.fn(r->t.target, it.ud);
  }
}

/* The runner this thread runs, set by the thread itself before anything
 * else: r->thread is only written when pthread_create returns, which may be
 * after the new thread has started working. */
static _Thread_local const mtci_runner *current_runner;

static void *runner_main(void *arg) {
  mtci_runner *r = arg;
  current_runner = r;
  int err = 0;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    size_t pending = r->len;
    int stop = r->stopping;
    pthread_mutex_unlock(&r->mu);
    drain(r, pending);
    if (stop) break;
    /* Submissions made during the drain may have found the queue non-empty
     * and so sent no wakeup: with work left, look at the fds without
     * waiting. Once the queue was seen empty, the next submit wakes us. */
    pthread_mutex_lock(&r->mu);
    int wait = r->len || r->stopping ? 0 : MTCI_RUNNER_MAX_WAIT_MS;
    pthread_mutex_unlock(&r->mu);
    int rc = r->t.run_once(r->t.target, wait);
    if (rc < 0) {
      err = rc;
      break;
    }
  }
  /* Close the queue, then run what it still holds: nothing can be added. */
  pthread_mutex_lock(&r->mu);
  r->closed = 1;
  if (err) r->error = err;
  pthread_mutex_unlock(&r->mu);
  drain(r, (size_t)-1);
  return NULL;
}

int mtci_runner_start(mtci_runner *r, const mtci_runner_target *t, size_t queue_cap) {
  if (!r) return MTC_ERR_INVALID_ARG;
  memset(r, 0, sizeof *r);
  if (!t || !t->run_once || !t->poller) return MTC_ERR_INVALID_ARG;
  if (queue_cap == 0) queue_cap = MTCI_RUNNER_DEFAULT_QUEUE;
  if (queue_cap > MTCI_RUNNER_MAX_QUEUE) return MTC_ERR_INVALID_ARG;
  mtci_poller *p = t->poller(t->target);
  if (!p || mtci_poller_wakeup_fd(p) < 0) return MTC_ERR_INVALID_ARG;

  r->t = *t;
  r->poller = p;
  r->cap = queue_cap;
  r->q = calloc(queue_cap, sizeof *r->q);
  if (!r->q) return MTC_ERR_NOMEM;
  if (pthread_mutex_init(&r->mu, NULL) != 0) {
    free(r->q);
    memset(r, 0, sizeof *r);
    return MTC_ERR_IO_THREAD;
  }
  /* The thread inherits the mask: block everything, restore ours after. */
  sigset_t all, old;
  sigfillset(&all);
  int masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
  int rc = pthread_create(&r->thread, NULL, runner_main, r);
  if (masked) pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_mutex_destroy(&r->mu);
    free(r->q);
    memset(r, 0, sizeof *r);
    return MTC_ERR_IO_THREAD;
  }
  r->started = 1;
  return 0;
}

int mtci_runner_submit(mtci_runner *r, mtci_runner_fn fn, void *ud) {
  if (!r || !fn) return MTC_ERR_INVALID_ARG;
  if (!r->started) return MTC_ERR_IO_STOPPED;
  pthread_mutex_lock(&r->mu);
  if (r->stopping || r->closed) {
    pthread_mutex_unlock(&r->mu);
    return MTC_ERR_IO_STOPPED;
  }
  if (r->len == r->cap) {
    pthread_mutex_unlock(&r->mu);
    return MTC_ERR_IO_QUEUE_FULL;
  }
  r->q[(r->head + r->len) % r->cap] = (mtci_runner_item){fn, ud};
  int was_empty = r->len++ == 0;
  pthread_mutex_unlock(&r->mu);
  /* One wakeup per empty -> non-empty change is enough: the thread only
   * blocks in run_once after seeing the queue empty, so a queue that was
   * already non-empty has a wakeup pending or a drain coming. A failed
   * wakeup only delays the run to the end of the current round (at most
   * MTCI_RUNNER_MAX_WAIT_MS). */
  if (was_empty) (void)mtci_poller_wakeup(r->poller);
  return 0;
}

int mtci_runner_stop(mtci_runner *r) {
  if (!r || !r->started) return 0;
  if (current_runner == r) return MTC_ERR_IO_BUSY;
  pthread_mutex_lock(&r->mu);
  r->stopping = 1;
  pthread_mutex_unlock(&r->mu);
  (void)mtci_poller_wakeup(r->poller);
  pthread_join(r->thread, NULL);
  int err = r->error;
  pthread_mutex_destroy(&r->mu);
  free(r->q);
  memset(r, 0, sizeof *r);
  r->error = err;
  return err;
}

int mtci_runner_error(mtci_runner *r) {
  if (!r) return 0;
  if (!r->started) return r->error;
  pthread_mutex_lock(&r->mu);
  int e = r->error;
  pthread_mutex_unlock(&r->mu);
  return e;
}

int mtci_runner_on_thread(const mtci_runner *r) {
  return r && current_runner == r;
}
