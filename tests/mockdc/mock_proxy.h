/*
 * mock_proxy: an MTProxy server mock on mock_loop. TEST CODE.
 *
 * It mirrors what alexbers/mtprotoproxy (mtprotoproxy.py: handle_handshake,
 * handle_fake_tls_handshake, do_direct_handshake) does in "direct" mode, as
 * summarised in PROTOCOL.md §3.1 (modes), §4.3 (obfuscated2 checks) and §5.7
 * (fake-TLS checks). One 16-byte secret (one "user").
 *
 * Classification of a new connection (§5.7 step 1)
 *   The first bytes are 16 03 01 with a record length >= 512 (up to
 *   MTCI_TLS_MAX_RECORD): fake-TLS. Anything else: a raw 64-byte obfuscated2
 *   header. (mtprotoproxy matches the 11-byte prefix of a 517-byte hello,
 *   16 03 01 02 00 01 00 01 fc 03 03; the >= 512 rule of §5.7 accepts that
 *   and any longer hello.)
 *
 * Fake-TLS path, in this order (each failure = reject, see below)
 *   1. MOCK_PROXY_MODE_TLS must be on                      -> REJ_MODE
 *   2. replay: digest[0:16] (hello[11:27]) seen before      -> REJ_TLS_REPLAY
 *      (checked before the digest, like mtprotoproxy)
 *   3. mtci_tls_server_check_hello(): the whole record; HMAC-SHA256(secret,
 *      hello with random zeroed) XOR random has 28 zero bytes -> REJ_TLS_DIGEST
 *   4. timestamp = its last 4 bytes (LE); d = now - timestamp must satisfy
 *      -1200 < d < 600, unless timestamp < 86400000 ("time since boot"
 *      clients) or ignore_time_skew                        -> REJ_TLS_TIME
 *   5. SNI equals tls_domain when one is configured        -> REJ_TLS_SNI
 *      (an addition: mtprotoproxy does not look at SNI; mtg and other
 *      servers do, and it checks that our client sends the secret's domain)
 *      unparsable hello                                     -> REJ_TLS_MALFORMED
 *   6. remember digest[0:16] (bounded FIFO set, replay_cap entries), send the
 *      mtci_tls_server_hello() response (ServerHello, CCS, one 17 03 03
 *      record of cert_len random bytes).
 *   7. From now on the client stream is TLS records (mtci_tls_reader: 17 03
 *      03 records, 14 03 03 00 01 01 skipped); a bad record  -> REJ_TLS_RECORD.
 *      The first 64 payload bytes are the obfuscated2 header.
 *
 * obfuscated2 header (raw, or the first 64 bytes inside TLS), §4.3
 *   8. raw connections need MODE_CLASSIC or MODE_SECURE      -> REJ_MODE
 *   9. replay: header[8:56] seen before                     -> REJ_OBFS_REPLAY
 *  10. keys SHA256(header[8:40] || secret) etc. (mtci_obfs_server_init);
 *      the decrypted tag must be ef/ee/dd x4; with a wrong secret it is
 *      noise                                                -> REJ_OBFS_TAG
 *  11. tag allowed for the path (mtprotoproxy's modes, §3.1):
 *        raw  ef / ee : MODE_CLASSIC  ("classic", plain 16-byte secrets)
 *        raw  dd      : MODE_SECURE   ("secure", dd secrets)
 *        TLS  dd      : MODE_TLS      ("tls", ee secrets)
 *        TLS  ef / ee : never (§5.7 step 7; mtprotoproxy would let them
 *                       through when "classic" is also on)
 *                                                           -> REJ_OBFS_TAG_NOT_ALLOWED
 *  12. remember header[8:56] (second FIFO set), count handshakes_ok.
 *  13. dc = abs(signed LE int16 at decrypted offset 60); it must be in the
 *      DC table (0 never is)                                -> REJ_UNKNOWN_DC
 *      (as in mtprotoproxy the header is already remembered at this point)
 *
 * Reject = close the client socket at once, having sent nothing on that
 * connection (the fake-TLS ServerHello is only sent after step 5, so the
 * only reject after bytes went out is a TLS-path failure from step 7 on);
 * rejects[reason] is incremented. mtprotoproxy instead hands bad clients to
 * handle_bad_client (drain, or splice to the mask host); a test cannot tell
 * the two apart except by the close, which is what our tests look for.
 * A connection that completes no handshake within handshake_timeout_ms is
 * closed the same way (REJ_TIMEOUT); one that ends early counts
 * REJ_INCOMPLETE.
 *
 * Relay (mtprotoproxy do_direct_handshake, FAST_MODE off)
 *   Connect to 127.0.0.1:port of the DC and open a NEW obfuscated2 stream:
 *   fresh random header without a secret (mtci_obfs_client_init, forbidden
 *   prefixes avoided), the client's protocol tag and its signed dc id (which
 *   the echo DC records; mtprotoproxy leaves bytes 60..61 random). Bytes
 *   are re-encrypted both ways: client decrypt -> DC encrypt; DC decrypt ->
 *   client encrypt (inside server-side TLS records, <= 16384 bytes each, for
 *   fake-TLS clients). Either side closing closes the other after its
 *   pending bytes are written. Backpressure: a side stops reading while the
 *   other side has more than 1 MiB unsent.
 *
 * All calls need the loop lock when the loop runs in a thread (mock_loop.h).
 */
#ifndef MTC_MOCK_PROXY_H
#define MTC_MOCK_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "mock_loop.h"
#include "mtconn/mtconn.h"

#define MOCK_PROXY_MAX_DCS 16
#define MOCK_PROXY_REPLAY_DEFAULT 65536 /* mtprotoproxy REPLAY_CHECK_LEN */

/* Modes (mtprotoproxy MODES). */
enum {
  MOCK_PROXY_MODE_CLASSIC = 1u << 0, /* raw obfuscated2, tags ef / ee */
  MOCK_PROXY_MODE_SECURE = 1u << 1,  /* raw obfuscated2, tag dd */
  MOCK_PROXY_MODE_TLS = 1u << 2,     /* fake-TLS, tag dd inside */
  MOCK_PROXY_MODE_ALL = 7u
};

enum mock_proxy_reject {
  MOCK_PROXY_REJ_MODE = 0,          /* connection kind disabled by the modes */
  MOCK_PROXY_REJ_TLS_MALFORMED,     /* ClientHello cannot be parsed */
  MOCK_PROXY_REJ_TLS_DIGEST,        /* HMAC mismatch: wrong secret or altered hello */
  MOCK_PROXY_REJ_TLS_TIME,          /* timestamp outside -1200 < now - ts < 600 */
  MOCK_PROXY_REJ_TLS_SNI,           /* SNI is not tls_domain */
  MOCK_PROXY_REJ_TLS_REPLAY,        /* client random seen before */
  MOCK_PROXY_REJ_TLS_RECORD,        /* bad TLS record after the handshake */
  MOCK_PROXY_REJ_OBFS_TAG,          /* decrypted tag unknown: wrong secret */
  MOCK_PROXY_REJ_OBFS_TAG_NOT_ALLOWED, /* tag not allowed for this path/modes */
  MOCK_PROXY_REJ_OBFS_REPLAY,       /* header[8:56] seen before */
  MOCK_PROXY_REJ_UNKNOWN_DC,        /* dc id not in the table */
  MOCK_PROXY_REJ_TIMEOUT,           /* no handshake within handshake_timeout_ms */
  MOCK_PROXY_REJ_INCOMPLETE,        /* client closed before finishing the handshake */
  MOCK_PROXY_REJ_COUNT
};

typedef struct mock_proxy_dc {
  int dc;        /* DC number > 0; a client's -dc (media) maps here too */
  uint16_t port; /* 127.0.0.1:port */
} mock_proxy_dc;

typedef struct mock_proxy_config {
  uint16_t port;             /* listen port, 0 = ephemeral */
  uint8_t secret[16];
  unsigned modes;            /* MOCK_PROXY_MODE_*; 0 means all */
  const char *tls_domain;    /* SNI to require; NULL or "" = no SNI check */
  const mock_proxy_dc *dcs;  /* copied */
  size_t n_dcs;              /* <= MOCK_PROXY_MAX_DCS */
  int64_t clock_offset;      /* server now = time(NULL) + clock_offset (seconds) */
  int ignore_time_skew;      /* mtprotoproxy IGNORE_TIME_SKEW */
  size_t replay_cap;         /* entries per replay set; 0 = 65536 */
  size_t cert_len;           /* fake certificate record size; 0 = random 1024..4095 */
  uint32_t handshake_timeout_ms; /* 0 = 10000 */
  mtc_random_fn rnd;         /* NULL = a CTR-DRBG from OS entropy */
  void *rnd_ud;
} mock_proxy_config;

typedef struct mock_proxy_stats {
  uint64_t accepted;          /* client connections */
  uint64_t tls_hellos_ok;     /* ServerHello sent */
  uint64_t handshakes_ok;     /* obfuscated2 header accepted (step 12) */
  uint64_t rejects[MOCK_PROXY_REJ_COUNT];
  uint64_t rejected_bytes_sent; /* bytes written to connections later rejected (TLS path only) */
  uint64_t bytes_client_to_dc;  /* payload bytes relayed (after decryption) */
  uint64_t bytes_dc_to_client;
  uint64_t upstream_failures;   /* DC connect failed */
  uint64_t active;              /* client connections open now */
  size_t n_dcs;
  int dc_ids[MOCK_PROXY_MAX_DCS];
  uint64_t upstream_connects[MOCK_PROXY_MAX_DCS]; /* per dc_ids[i] */
} mock_proxy_stats;

typedef struct mock_proxy mock_proxy;

/* 0, MTC_ERR_INVALID_ARG (bad config), MTC_ERR_NO_MEMORY-like negatives, or -errno. */
int mock_proxy_new(mock_loop *l, const mock_proxy_config *cfg, mock_proxy **out);
uint16_t mock_proxy_port(const mock_proxy *p);
void mock_proxy_stats_get(const mock_proxy *p, mock_proxy_stats *out);
/* Shift the server clock (seconds) at run time. */
void mock_proxy_set_clock_offset(mock_proxy *p, int64_t offset);
/* Closes the listener and every session. */
void mock_proxy_free(mock_proxy *p);

/* "tls_digest" etc.; "?" for an unknown value. */
const char *mock_proxy_reject_name(int reason);
/*
 * Stats as one JSON object:
 *   {"accepted":N,"tls_hellos_ok":N,"handshakes_ok":N,
 *    "rejects":{"mode":N,...},"rejected_bytes_sent":N,
 *    "bytes_client_to_dc":N,"bytes_dc_to_client":N,"upstream_failures":N,
 *    "active":N,"upstream_connects":{"2":N,...}}
 * Returns the length written (NUL-terminated), or -1 if cap is too small.
 */
int mock_proxy_stats_json(const mock_proxy_stats *s, char *buf, size_t cap);

#endif /* MTC_MOCK_PROXY_H */
