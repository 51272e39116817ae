/*
 * The byte pipeline of one client connection: every transport layer between
 * the socket and an MTProto packet, composed once per connection. Pure code
 * (DESIGN.md rule 1): bytes in, bytes out; no sockets, no clock (the unix
 * time is passed to mtci_stack_start), randomness only through the
 * configured mtc_random_fn.
 *
 * Layers, outermost first (each optional one is chosen by the config):
 *
 *   socket bytes
 *     |  [SOCKS5]      greeting / auth / CONNECT, then a transparent tunnel
 *     |  [fake-TLS]    517-byte ClientHello, ServerHello HMAC check, then
 *     |                17 03 03 records (client: CCS once, <= 2878 bytes each)
 *     |  [obfuscated2] 64-byte init header, then AES-256-CTR both ways
 *     |  codec         abridged / intermediate / padded / full framing
 *     v                (plain connections: the tag goes first, once)
 *   MTProto packet
 *
 * What goes to the socket, in order:
 *
 *   [05 01 00 | 05 02 00 02] [auth] [CONNECT]     SOCKS5, one message per answer
 *   [ClientHello (517)]                           after the SOCKS5 reply
 *   [14 03 03 00 01 01] [17 03 03 len | ...]*     after the ServerHello check
 *       stream = [obfs header (64) | tag] [frame] [frame] ...
 *
 * The "stream" (obfs header or plain tag, then the encrypted frames) is
 * produced from mtci_stack_start on, but held back until the handshakes
 * (SOCKS5 reply received, ServerHello verified) are done: the obfuscation
 * header must follow them. Packets sent before that are held the same way,
 * in order, and flushed at READY.
 *
 * Configurations (secrets force their transport, PROTOCOL.md §3.4):
 *
 *   secret        codec                obfuscation          TLS
 *   none          any of the 4         optional (not full)  -
 *   16-byte key   abridged/int/padded  forced, key hashing  -
 *   0xdd          padded (forced)      forced, key hashing  -
 *   0xee          padded (forced)      forced, key hashing, tag dd,
 *                                      no forbidden-prefix rules   yes
 *   full + obfuscation, or full + any secret: MTC_ERR_INVALID_ARG.
 *   SOCKS5 combines with all of them (it runs first).
 *
 * States: INIT -> (start) -> HANDSHAKING -> READY; any -> FAILED (sticky).
 * With neither SOCKS5 nor fake-TLS the stack is READY as soon as
 * mtci_stack_start returns (it returns 1); otherwise mtci_stack_feed reports
 * one MTCI_STACK_READY event when the last handshake finished.
 *
 * Ownership: the stack is caller-allocated; init copies the config (secret
 * and SOCKS5 credentials included); the random callback and its user data
 * are borrowed and must outlive the stack. Buffers are allocated on demand
 * and bounded: output by MTCI_STACK_MAX_QUEUED (or the configured cap);
 * the receive buffer by twice one partial frame (the codec's 16 MiB cap)
 * plus one MTCI_STACK_RX_BATCH, growing (doubling) only with bytes that
 * arrived. Drained buffers are kept for the next bytes while traffic flows
 * (each up to MTCI_STACK_KEEP) and released by mtci_stack_trim, which the
 * owner calls when the connection goes idle (then it holds none); the
 * fake-TLS handshake state lives only until READY. mtci_stack_free
 * zeroizes the key material (obfuscation streams, TLS MAC state, secret,
 * SOCKS5 credentials) and releases everything.
 *
 * Errors: receive-side errors are sticky (DESIGN.md rule 5): once feed
 * failed, or reported a transport error, every later feed / send_packet
 * returns the same code and the connection must be dropped. send_packet
 * errors on the caller's input (size, quick ack on full, queue cap, a failing
 * random source) queue nothing and are not sticky.
 */
#ifndef MTCI_TRANSPORT_STACK_H
#define MTCI_TRANSPORT_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"
#include "transport/codec.h"
#include "transport/faketls.h"
#include "transport/obfuscated2.h"
#include "transport/proxy_link.h"
#include "transport/socks5.h"

/* Default cap on bytes queued for the socket (sent-but-unwritten plus held). */
#define MTCI_STACK_MAX_QUEUED (64u * 1024u * 1024u)
/* Most input bytes decrypted in one step (obfuscated / fake-TLS). */
#define MTCI_STACK_RX_BATCH (4u * 1024u * 1024u)
/* Largest drained buffer kept for reuse (larger ones are freed when
 * drained). Telegram's biggest packets are 1 MiB file parts: with framing
 * and the MTProto envelope they need a 2 MiB buffer (BUF_FIRST doubling),
 * so file transfers reuse theirs; a burst of several queued frames does not
 * pin its peak. A busy connection keeps at most 2 x this (output + input). */
#define MTCI_STACK_KEEP (2u * 1024u * 1024u)

/* SOCKS5 hop: the address the proxy should CONNECT to, and credentials. */
typedef struct mtci_stack_socks5 {
  uint8_t atyp;        /* MTCI_SOCKS5_ATYP_IPV4 / _IPV6 / _DOMAIN */
  const uint8_t *addr; /* 4 bytes, 16 bytes, or a 1..255-byte host name */
  size_t addr_len;
  uint16_t port;
  const uint8_t *user; /* NULL / 0: offer "no authentication" only */
  size_t user_len;
  const uint8_t *pass;
  size_t pass_len;
} mtci_stack_socks5;

typedef struct mtci_stack_config {
  mtci_codec_kind codec; /* forced to PADDED by a dd / ee secret */
  int obfuscated;        /* 1: obfuscated2 (official clients always); forced by a secret */
  int16_t dc_id;         /* obfuscation header offset 60, final value (see mtci_obfs_dc_id);
                            must be non-zero when obfuscated */
  const mtci_proxy_secret *secret;  /* MTProxy secret, or NULL / kind NONE (copied) */
  const mtci_stack_socks5 *socks5;  /* SOCKS5 hop, or NULL (copied) */
  size_t max_queued;     /* cap on queued output bytes; 0 = MTCI_STACK_MAX_QUEUED */
  mtc_random_fn rnd;     /* required; borrowed */
  void *rnd_ud;
} mtci_stack_config;

typedef enum mtci_stack_event_type {
  MTCI_STACK_READY = 1,          /* handshakes done; held output has been queued */
  MTCI_STACK_PACKET = 2,         /* data/len: one received MTProto packet */
  MTCI_STACK_QUICK_ACK = 3,      /* quick_ack: the token, as computed on send */
  MTCI_STACK_TRANSPORT_ERROR = 4 /* error_code (wire) and error (mapped); now FAILED */
} mtci_stack_event_type;

/* One receive event. PACKET's data is borrowed: it points into the input of
 * the feed() call that returned it or into the stack's buffers, and stays
 * valid until the next feed() / trim() / free() on this stack, provided the caller
 * keeps that input unchanged until then. For the padded codec the padding
 * is already trimmed (mtci_padded_payload_len). */
typedef struct mtci_stack_event {
  mtci_stack_event_type type;
  const uint8_t *data;
  size_t len;
  uint32_t quick_ack;
  int32_t error_code; /* TRANSPORT_ERROR: e.g. -404 */
  int error;          /* TRANSPORT_ERROR: mtci_transport_error(error_code) */
} mtci_stack_event;

/* Growable byte queue: p[pos..len) is the content. */
typedef struct mtci_stack_buf {
  uint8_t *p;
  size_t pos, len, cap;
} mtci_stack_buf;

/* Caller-allocated; all fields are private to stack.c. */
typedef struct mtci_stack {
  int state;  /* INIT, HANDSHAKING, READY, FAILED */
  int stage;  /* receive stage: SOCKS5 reply, ServerHello, data */
  int err;    /* sticky error */
  mtci_codec_kind kind;
  int obfs, tls, socks;
  int16_t dc_id;
  size_t max_queued;
  mtci_proxy_secret secret;
  mtc_random_fn rnd;
  void *rnd_ud;
  mtci_codec codec;
  mtci_obfs ob;
  mtci_socks5 *s5;    /* SOCKS5 only, from init until its handshake ends (1.9 KiB) */
  struct mtci_stack_tls_hs *hs; /* fake-TLS only, from start until READY (stack.c) */
  mtci_tls_writer tw;
  uint8_t rec_hdr[5]; /* received record header, as mtci_tls_reader reads it */
  uint8_t rec_hl;
  uint8_t rec_ccs;
  size_t rec_left;
  mtci_stack_buf out;  /* socket bytes waiting for the caller */
  mtci_stack_buf held; /* stream bytes produced before READY */
  mtci_stack_buf rx;   /* decrypted stream bytes not yet taken by the codec */
  uint64_t bytes_in, bytes_out;
} mtci_stack;

/*
 * Check and copy the config. Returns 0, MTC_ERR_INVALID_ARG (NULL cfg or
 * rnd, unknown codec, full with obfuscation or a secret, dc_id 0 with
 * obfuscation, a secret with a bad kind or an ee secret without domain), or
 * the SOCKS5 parameter error (MTC_ERR_SOCKS_PARAMS), or MTC_ERR_NOMEM.
 * Allocates only the SOCKS5 state (with cfg->socks5); mtci_stack_free is
 * safe afterwards, whatever the result.
 */
int mtci_stack_init(mtci_stack *st, const mtci_stack_config *cfg);

/*
 * Queue the opening bytes: the SOCKS5 greeting, else the ClientHello, else
 * the obfuscation header or the plain codec tag. unix_time (seconds, the
 * caller's best estimate of real time) goes into the ClientHello; otherwise
 * unused. Random bytes are drawn in layer order: ClientHello, then the
 * obfuscation header. Returns 1 when the stack is READY already (no
 * handshake), 0 when handshakes are pending, or an error (the RNG's, or
 * MTC_ERR_INVALID_ARG when called twice or after a failed init); an error
 * is sticky.
 */
int mtci_stack_start(mtci_stack *st, int64_t unix_time);

/* 1 once READY (and not failed). */
int mtci_stack_ready(const mtci_stack *st);
/* The codec in use after the secret's forcing (0 before a successful init). */
mtci_codec_kind mtci_stack_codec(const mtci_stack *st);

/* Bytes to write to the socket: sets *p (borrowed, valid until the next call
 * on the stack) and returns their count, 0 if none. */
size_t mtci_stack_pending(const mtci_stack *st, const uint8_t **p);
/* n of the pending bytes were written (partial writes are fine). Returns 0
 * or MTC_ERR_INVALID_ARG if n exceeds what is pending. */
int mtci_stack_consumed(mtci_stack *st, size_t n);
/* Output bytes queued and not yet written: pending plus those held back
 * until READY (what the queue cap counts). 0 on a zeroed stack. */
size_t mtci_stack_queued(const mtci_stack *st);

/*
 * Frame, encrypt and wrap one MTProto packet pkt[0..len) (copied) into the
 * output queue; held until READY if called during the handshakes. len must
 * be a non-zero multiple of 4 (MTC_ERR_FRAME_LENGTH), at most
 * MTCI_CODEC_MAX_PAYLOAD (MTC_ERR_FRAME_TOO_LARGE). quick_ack = 1 requests a
 * quick ack (MTC_ERR_UNSUPPORTED with the full codec). MTC_ERR_NOMEM when
 * the queue would exceed its cap or cannot grow; MTC_ERR_INVALID_ARG before
 * start; the RNG's error; the sticky error once failed.
 */
int mtci_stack_send_packet(mtci_stack *st, const uint8_t *pkt, size_t len, int quick_ack);

/*
 * Feed bytes received from the socket, in any split. Consumes in[0..len)
 * until one event is complete. Returns 1 with *ev filled, 0 when all input
 * was consumed without completing an event, or a negative sticky error.
 * *consumed is always set. Events may come from bytes taken by an earlier
 * call, so call again (with the rest of the input, possibly empty) until it
 * returns 0:
 *   for (;;) { r = mtci_stack_feed(st, p, n, &used, &ev); if (r < 0) drop;
 *              p += used; n -= used; if (r == 0) break; handle(&ev); }
 * Errors: the SOCKS5 ones (MTC_ERR_SOCKS_*), the ServerHello / record ones
 * (MTC_ERR_TLS_*: a wrong secret shows as MTC_ERR_TLS_BAD_DIGEST), the
 * codec's framing ones (MTC_ERR_FRAME_*), MTC_ERR_NOMEM, and after a
 * TRANSPORT_ERROR event its mapped code. MTC_ERR_INVALID_ARG before start.
 */
int mtci_stack_feed(mtci_stack *st, const uint8_t *in, size_t len, size_t *consumed,
                    mtci_stack_event *ev);

/*
 * At end of stream (after feed returned 0): 0 if the stream ended cleanly
 * between packets, else why it did not: the sticky error, the handshake's
 * truncation (MTC_ERR_TRANSPORT_CLOSED during SOCKS5, MTC_ERR_TLS_TRUNCATED
 * during the ServerHello), or a frame /
 * record cut short (MTC_ERR_FRAME_TRUNCATED, MTC_ERR_TLS_TRUNCATED).
 */
int mtci_stack_eof(const mtci_stack *st);

/* Raw socket bytes: consumed by feed() / reported by consumed(). */
uint64_t mtci_stack_bytes_in(const mtci_stack *st);
uint64_t mtci_stack_bytes_out(const mtci_stack *st);

/*
 * Call when the connection goes idle: zeroize and free the buffers that are
 * empty (output queue, held queue, receive buffer). Bytes still pending or a
 * partial frame stay where they are, so it is safe at any time between
 * calls; it only ends the validity of the last PACKET event's data. The
 * next bytes allocate again. Safe on a zeroed, failed or freed stack.
 */
void mtci_stack_trim(mtci_stack *st);

/* Heap bytes the stack holds now: buffer capacities, the fake-TLS handshake
 * state and the codec's frame buffer (which only plain connections use, for
 * frames split across inputs; the codec keeps it up to 64 KiB). */
size_t mtci_stack_heap_bytes(const mtci_stack *st);

/* Zeroize key material and free all buffers. Safe on a zeroed, failed or
 * already-freed stack. */
void mtci_stack_free(mtci_stack *st);

#endif /* MTCI_TRANSPORT_STACK_H */
