/*
 * mock_loop: a small single-threaded poll() event loop for the mock servers
 * (mock MTProxy, echo DC, the mock DC cluster). TEST CODE, not part of the
 * library: it uses POSIX sockets, poll(), clocks and pthreads freely.
 *
 * Model
 *   - Listeners bind to 127.0.0.1 only (port 0 = ephemeral; the chosen port
 *     is reported). Outgoing connects go to 127.0.0.1:port only.
 *   - A connection (mock_conn) owns a read buffer and a write buffer, both
 *     growable up to MOCK_LOOP_BUF_CAP (32 MiB). Reading stops while paused;
 *     a read buffer that would exceed the cap, or a send that would make the
 *     write buffer exceed it, closes the connection (MOCK_CLOSE_OVERFLOW).
 *   - Sends never block: bytes are queued and written when poll() says the
 *     socket is writable. mock_conn_pending() is the backpressure signal: a
 *     relay pauses its source while the sink's pending bytes are above a
 *     high-water mark and resumes it from the sink's on_drain.
 *   - Callbacks (mock_conn_handler) run on the loop thread only:
 *       on_connect  outgoing connect completed (queued sends go out next)
 *       on_data     new bytes arrived: look with mock_conn_data(), take what
 *                   you can with mock_conn_consume(); what you leave stays
 *                   for the next call (which comes with more bytes, or after
 *                   mock_conn_pause(c, 0) if bytes are buffered)
 *       on_drain    the write buffer became empty after poll() wrote it out
 *       on_close    exactly once per connection, with a MOCK_CLOSE_* reason;
 *                   the mock_conn pointer is invalid once it returns
 *     Closing is deferred: mock_conn_close() closes the socket at once (the
 *     peer sees EOF, or a reset if it had unread data), but on_close runs from
 *     the loop after the current callback has returned, never from inside
 *     mock_conn_* calls. Sends on a closed connection are ignored (-1).
 *   - Timers are one-shot, in milliseconds, identified by a non-zero id.
 *   - mock_loop_run(loop, max_ms) runs until mock_loop_stop() or max_ms.
 *     mock_loop_start_thread() runs the loop in a background thread until
 *     mock_loop_stop_thread(); a self-pipe wakes poll() for both.
 *
 * Threads: all state is guarded by one mutex that the loop holds except
 * while it sleeps in poll(). Code on another thread (a test acting as a
 * client) wraps any call into the loop or its servers in mock_loop_lock() /
 * mock_loop_unlock() (unlock wakes the loop so new timers or sends are
 * seen). Callbacks already hold the lock: they must not call
 * mock_loop_lock(). mock_loop_stop() is the only call that needs no lock.
 *
 * Shutdown: free servers built on the loop (they close their connections)
 * before mock_loop_free(), with the thread stopped or under the lock.
 * mock_loop_free() stops the thread if it still runs, closes what is left
 * (on_close with MOCK_CLOSE_SHUTDOWN) and frees everything.
 */
#ifndef MTC_MOCK_LOOP_H
#define MTC_MOCK_LOOP_H

#include <stddef.h>
#include <stdint.h>

#define MOCK_LOOP_BUF_CAP (32u << 20)       /* per buffer, per connection */
#define MOCK_LOOP_READ_BUDGET (256u << 10)  /* bytes read per connection per iteration */
#define MOCK_LOOP_MAX_LISTENERS 16
#define MOCK_LOOP_MAX_TIMERS 65536

typedef struct mock_loop mock_loop;
typedef struct mock_conn mock_conn;

enum mock_close_reason {
  MOCK_CLOSE_LOCAL = 1,       /* mock_conn_close() / mock_conn_close_after_flush() */
  MOCK_CLOSE_EOF = 2,         /* the peer closed its side (pending writes were flushed) */
  MOCK_CLOSE_ERROR = 3,       /* socket error: reset, broken pipe, ... */
  MOCK_CLOSE_OVERFLOW = 4,    /* a buffer would exceed MOCK_LOOP_BUF_CAP */
  MOCK_CLOSE_CONNECT_FAILED = 5, /* outgoing connect refused or failed */
  MOCK_CLOSE_SHUTDOWN = 6     /* mock_loop_free() */
};

typedef struct mock_conn_handler {
  void (*on_connect)(mock_conn *c, void *ud);
  void (*on_data)(mock_conn *c, void *ud);
  void (*on_drain)(mock_conn *c, void *ud);
  void (*on_close)(mock_conn *c, void *ud, int reason);
} mock_conn_handler;

/* A new accepted connection: set its handler with mock_conn_set_handler(). */
typedef void (*mock_accept_fn)(mock_loop *l, mock_conn *c, void *ud);
typedef void (*mock_timer_fn)(mock_loop *l, void *ud);

/* ---- loop ---------------------------------------------------------------- */

/* 0, or -errno (pipe / mutex failure) / -ENOMEM. */
int mock_loop_new(mock_loop **out);
void mock_loop_free(mock_loop *l); /* NULL-safe */

/*
 * Listen on 127.0.0.1:port (0 = ephemeral). Returns a listener id > 0 and
 * *bound_port (may be NULL), or -errno (-ENOSPC past MOCK_LOOP_MAX_LISTENERS).
 */
int mock_loop_listen(mock_loop *l, uint16_t port, mock_accept_fn fn, void *ud,
                     uint16_t *bound_port);
/* Close a listener (accepted connections stay). Unknown ids are ignored. */
void mock_loop_unlisten(mock_loop *l, int id);

/*
 * Non-blocking connect to 127.0.0.1:port. Returns the connection (sends are
 * queued until connected) or NULL if no socket could be made. A failed
 * connect is reported through on_close(MOCK_CLOSE_CONNECT_FAILED).
 */
mock_conn *mock_loop_connect(mock_loop *l, uint16_t port, const mock_conn_handler *h, void *ud);

/* One-shot timer after delay_ms. Returns its id (> 0), or 0 if the table is full. */
uint64_t mock_loop_timer(mock_loop *l, uint32_t delay_ms, mock_timer_fn fn, void *ud);
/* Cancel a pending timer; unknown or fired ids are ignored. */
void mock_loop_cancel_timer(mock_loop *l, uint64_t id);

/*
 * Run the loop on this thread until mock_loop_stop() (the request is then
 * cleared) or max_ms elapsed (max_ms < 0: no limit). Returns 1 if stopped,
 * 0 on timeout, -errno if poll() failed.
 */
int mock_loop_run(mock_loop *l, int max_ms);
/* Ask the loop to return; thread-safe and callable from callbacks. */
void mock_loop_stop(mock_loop *l);

/* Run the loop in a background thread. 0, -EBUSY if running, -errno. */
int mock_loop_start_thread(mock_loop *l);
/* Stop and join the background thread (no-op if none). Not from callbacks. */
void mock_loop_stop_thread(mock_loop *l);

void mock_loop_lock(mock_loop *l);
void mock_loop_unlock(mock_loop *l); /* also wakes the loop */

/* Monotonic milliseconds. */
int64_t mock_loop_now_ms(void);

/* Open connections (not yet reported closed). */
size_t mock_loop_conn_count(const mock_loop *l);

/* ---- connections --------------------------------------------------------- */

/* Replace the callbacks (h may be NULL: no callbacks) and user data. */
void mock_conn_set_handler(mock_conn *c, const mock_conn_handler *h, void *ud);
void *mock_conn_userdata(const mock_conn *c);
mock_loop *mock_conn_loop(const mock_conn *c);
uint64_t mock_conn_id(const mock_conn *c); /* unique per loop, from 1 */

/* Unconsumed received bytes (pointer valid until the next mock_conn_* call). */
const uint8_t *mock_conn_data(const mock_conn *c, size_t *len);
/* Drop n (clamped) bytes from the front of the read buffer. */
void mock_conn_consume(mock_conn *c, size_t n);

/* Queue bytes to send. 0, or -1 if the connection is closed or the write
 * buffer would overflow (the connection is then closed). */
int mock_conn_send(mock_conn *c, const void *d, size_t n);
/* Queue n bytes to be filled by the caller right away (before any other call
 * on this connection). NULL as for mock_conn_send's -1. */
uint8_t *mock_conn_send_reserve(mock_conn *c, size_t n);
/* Bytes queued and not yet written to the socket. */
size_t mock_conn_pending(const mock_conn *c);

/* Stop / resume reading. Resuming re-delivers buffered bytes via on_data. */
void mock_conn_pause(mock_conn *c, int paused);

/* Close now; pending writes are dropped. */
void mock_conn_close(mock_conn *c);
/* Stop reading, write what is pending, then close (reason MOCK_CLOSE_LOCAL). */
void mock_conn_close_after_flush(mock_conn *c);
/* 1 until the connection is closed or closing. */
int mock_conn_is_open(const mock_conn *c);

/* Totals over the connection's life. */
uint64_t mock_conn_bytes_in(const mock_conn *c);
uint64_t mock_conn_bytes_out(const mock_conn *c); /* written to the socket */

#endif /* MTC_MOCK_LOOP_H */
