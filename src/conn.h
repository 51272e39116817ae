/*
 * One client connection of the MTContext, pure logic (DESIGN.md rule 1): the
 * socket's fd number (the context does the IO through src/io), the byte
 * stack (SOCKS5 -> fake-TLS -> obfuscated2 -> codec), the auth key creation
 * when the DC has no key yet, and then an MTProto session ON THE SAME
 * connection: the connection that creates a key carries the DC's RPCs
 * afterwards, no close and reopen.
 *
 *   phase   DIAL --connected()--> STACK --(stack READY)--> IDLE
 *                (no SOCKS5/TLS: straight to IDLE)
 *           IDLE --start_auth()--> AUTH --(dh_gen_ok)--> IDLE, key_done = 1
 *                (PFS: again for the temp key; its msg_ids continue above the first's)
 *           IDLE --attach(session)--> READY
 *           any --error--> DEAD (sticky; the context closes the fd)
 *
 * The session is borrowed: it belongs to the context's slot and survives
 * the connection (on_reconnect resends what is unanswered on the next one).
 *
 * Deadlines: DIAL, STACK and AUTH each have one (set by the caller's
 * timeout), READY follows the session's. `now` is unix ms throughout.
 *
 * Errors are negative mtc_error codes and sticky (DESIGN.md rule 5). After
 * a transport error frame, terr_code holds the wire code (e.g. -404).
 */
#ifndef MTCI_CONN_H
#define MTCI_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "auth/handshake.h"
#include "dc.h"
#include "mtconn/mtconn.h"
#include "session.h"
#include "tl/tl.h"
#include "transport/stack.h"

/*
 * Backpressure: mtci_conn_flush takes requests from the session only while
 * fewer than this many output bytes wait for the socket; the rest stay
 * queued in the session (unsent, in order) and are taken when the socket
 * drains (the owner flushes again on write-readiness, see
 * mtci_conn_held). Without it a burst (200 file parts of 512 KiB) was
 * encrypted into the stack at once: memory up to the stack's hard cap
 * (MTCI_STACK_MAX_QUEUED), and past it MTC_ERR_NOMEM killed the
 * connection, and the next one the same way. The kernel's send buffer keeps
 * the link busy; this queue only refills it between wakeups, so 1 MiB
 * (one or two file parts) is enough, and pings and acks wait behind at
 * most this plus one packet. Acks, pings and service messages are not held
 * back: the session's timers wait for them. The check is once per packet.
 */
#define MTCI_CONN_OUT_SOFT (1u << 20)

typedef enum mtci_conn_phase {
  MTCI_CONN_DIAL = 1, /* TCP connect under way */
  MTCI_CONN_STACK,    /* SOCKS5 / fake-TLS handshakes under way */
  MTCI_CONN_IDLE,     /* transport up, neither key creation nor session */
  MTCI_CONN_AUTH,     /* creating the auth key */
  MTCI_CONN_READY,    /* a session runs on it */
  MTCI_CONN_DEAD
} mtci_conn_phase;

typedef struct mtci_conn {
  int fd;
  mtci_conn_phase phase;
  int err;             /* sticky error once DEAD */
  int32_t terr_code;   /* transport error code from the server, 0 if none */
  /* the endpoint (a copy: address sets may change under us) */
  char ip[MTCI_DC_IP_LEN];
  uint16_t port;
  unsigned addr_flags;
  int64_t started_ms;  /* dial start */
  int64_t clock_fix_ms; /* added to now for the fake-TLS timestamp (set after init) */
  int64_t phase_deadline;
  int stack_up;        /* mtci_stack_init succeeded */
  mtci_stack st;
  mtci_handshake *hs;  /* heap, only while a key is being made (2 KiB an idle connection need not hold) */
  int key_done;        /* the key is made: key holds it until the caller takes it */
  mtci_auth_result key;
  int64_t hs_last_msg_id; /* last unencrypted msg_id: a session on this connection continues above */
  mtci_session *sess;  /* borrowed, READY only */
  int had_session;     /* a session was attached at some point */
  int healthy;         /* the server sent something valid (key step or session packet) */
  uint64_t packets_in, packets_out;
  mtci_tl_writer w;    /* scratch for outgoing session packets */
  int w_up;
  int held;            /* the last flush left requests in the session (backpressure) */
} mtci_conn;

/*
 * Set up a connection whose TCP connect to ip:port is under way on fd.
 * sc is checked and copied by mtci_stack_init (its pointers are borrowed
 * only for this call). Returns 0 or the stack's MTC_ERR_INVALID_ARG /
 * MTC_ERR_SOCKS_PARAMS; mtci_conn_free is safe either way.
 */
int mtci_conn_init(mtci_conn *c, const mtci_stack_config *sc, int fd, const char *ip,
                   uint16_t port, unsigned addr_flags, int64_t now_ms, int64_t dial_timeout_ms);

/* TCP is up: queue the opening bytes. Returns 1 when the transport is
 * usable now (IDLE), 0 when SOCKS5 / fake-TLS answers are awaited (STACK,
 * deadline now + timeout_ms), or a negative error (DEAD). */
int mtci_conn_connected(mtci_conn *c, int64_t now_ms, int64_t timeout_ms);

/* Start creating an auth key (IDLE only): the first request is queued.
 * p is borrowed until the key is done. Returns 0 or an error (DEAD). */
int mtci_conn_start_auth(mtci_conn *c, const mtci_handshake_params *p, int64_t now_ms,
                         int64_t timeout_ms);

/* Take the made key (key_done): copies it to *out and wipes the
 * connection's copy. Returns 0 or MTC_ERR_AUTH_STATE. */
int mtci_conn_take_key(mtci_conn *c, mtci_auth_result *out);

/* Run session s on this connection (IDLE only): s->on_reconnect(now).
 * Returns 0 or MTC_ERR_INVALID_ARG. */
int mtci_conn_attach(mtci_conn *c, mtci_session *s, int64_t now_ms);
/* Forget the session (it is told the connection is gone). */
void mtci_conn_detach(mtci_conn *c);

/*
 * Bytes from the socket. Feeds the stack; handshake answers go to the key
 * creation (answers queued), packets to the session (read its events
 * afterwards). Returns 0, or a negative error after which the connection is
 * DEAD (framing, TLS, SOCKS5, handshake or session decryption errors, a
 * transport error frame: see terr_code).
 */
int mtci_conn_feed(mtci_conn *c, const uint8_t *data, size_t len, int64_t now_ms);

/* The peer closed: the reason (a frame cut short: MTC_ERR_FRAME_TRUNCATED,
 * ...; clean: MTC_ERR_TRANSPORT_CLOSED). The connection is DEAD after. */
int mtci_conn_eof(mtci_conn *c);

/* Mark the connection dead with err (first error wins). Returns c->err. */
int mtci_conn_fail(mtci_conn *c, int err);

/* READY: move the packets the session has to send into the stack:
 * requests while less than MTCI_CONN_OUT_SOFT bytes are queued (then one
 * more packet at most), acks, pings and service messages always. Returns
 * the number of packets, or a negative error (DEAD). */
int mtci_conn_flush(mtci_conn *c, int64_t now_ms);
/* 1 when the last flush left requests in the session (the output was at
 * its soft limit): flush again once the socket took bytes, i.e. keep
 * watching for write-readiness even with nothing pending. */
int mtci_conn_held(const mtci_conn *c);

/* Socket bytes waiting to be written (borrowed until the next call on c). */
size_t mtci_conn_pending(const mtci_conn *c, const uint8_t **p);
/* n of them were written. */
int mtci_conn_consumed(mtci_conn *c, size_t n);

/* Earliest time mtci_conn_on_deadline has work (INT64_MAX: none). */
int64_t mtci_conn_deadline(const mtci_conn *c);
/* Phase timeouts (MTC_ERR_TIMEOUT, DEAD) and the session's timers. Returns
 * 0 or a negative error. */
int mtci_conn_on_deadline(mtci_conn *c, int64_t now_ms);

/* The connection went idle (nothing in flight, nothing to write): free what
 * only traffic needs, i.e. the stack's empty buffers (mtci_stack_trim) and
 * the packet scratch. Pending bytes and partial frames are kept; the next
 * traffic allocates again. Safe in any phase, on a zeroed or freed c. */
void mtci_conn_trim(mtci_conn *c);

uint64_t mtci_conn_bytes_in(const mtci_conn *c);
uint64_t mtci_conn_bytes_out(const mtci_conn *c);

/* Wipe and free everything (detaches the session). Safe on a zeroed or
 * freed connection. Does not close the fd. */
void mtci_conn_free(mtci_conn *c);

#endif /* MTCI_CONN_H */
