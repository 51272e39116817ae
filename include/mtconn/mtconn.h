/*
 * mtconn — an embeddable MTProto connection layer.
 *
 * Public API. Conventions (nghttp2/ngtcp2 style):
 *   - every function returns 0 or a positive count on success and a negative
 *     MTC_ERR_* code on failure; mtc_strerror() names the code;
 *   - opaque handles, versioned settings structs;
 *   - "copy in, borrow out": inputs are copied before a call returns, pointers
 *     handed to callbacks live until the callback returns;
 *   - key material is zeroized when freed and never reaches a log line.
 *
 * This header grows issue by issue; what is declared here is implemented and
 * tested.
 */
#ifndef MTCONN_MTCONN_H
#define MTCONN_MTCONN_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MTC_STATIC) || !defined(__GNUC__)
#define MTC_API
#else
#define MTC_API __attribute__((visibility("default")))
#endif

/*
 * Error codes. Ranges by module so a code says where it came from:
 *   -1..-99 general, -100 crypto, -200 TL, -300 transport/proxy,
 *   -400 auth key, -500 session, -600 context, -700 discovery, -800 store.
 */
typedef enum mtc_error {
  MTC_OK = 0,

  MTC_ERR_INVALID_ARG = -1,     /* an argument is out of its documented range */
  MTC_ERR_NOMEM = -2,           /* allocation failed or a size cap was hit */
  MTC_ERR_BUFFER_TOO_SMALL = -3,/* the output buffer cannot hold the result */
  MTC_ERR_INTERNAL = -4,        /* a bug: an invariant did not hold */
  MTC_ERR_RANDOM = -5,          /* the random-bytes source failed */
  MTC_ERR_UNSUPPORTED = -6,     /* valid input this build does not handle */

  MTC_ERR_CRYPTO = -100,        /* the crypto backend reported a failure */
  MTC_ERR_BAD_LENGTH = -101,    /* input length not allowed for the operation */
  MTC_ERR_RSA_KEY = -102,       /* an RSA key could not be parsed or is unusable */
  MTC_ERR_RSA_INPUT = -103,     /* RSA input is not below the modulus or too long */
  MTC_ERR_DH_PRIME = -104,      /* dh_prime is not a 2048-bit safe prime */
  MTC_ERR_DH_GENERATOR = -105,  /* g is outside 2..7 or fails its residue rule */
  MTC_ERR_DH_VALUE = -106,      /* g_a/g_b outside [2^1984, p - 2^1984] */
  MTC_ERR_PQ_FACTOR = -107,     /* pq has no factorization into two 32-bit primes */
  MTC_ERR_BAD_HASH = -108,      /* an integrity hash did not match */

  MTC_ERR_TL_TRUNCATED = -200,  /* TL data ended before the value did */
  MTC_ERR_TL_CONSTRUCTOR = -201,/* an unexpected or unknown constructor id */
  MTC_ERR_TL_TOO_LONG = -202,   /* a length or count exceeds the data or a cap */
  MTC_ERR_TL_BAD_VALUE = -203,  /* a value is malformed (bad padding, bad Bool) */
  MTC_ERR_TL_TRAILING = -204,   /* bytes left over after a complete value */
  MTC_ERR_TL_DEPTH = -205,      /* objects nested deeper than the decoder allows */
  MTC_ERR_GZIP = -206,          /* gzip_packed failed to inflate or is too large */

  /* -320..-339 obfuscated2 and fake-TLS (src/transport/obfuscated2.*, faketls.*) */
  MTC_ERR_OBFS_BAD_TAG = -320,  /* obfuscated2 header: unknown protocol tag */
  MTC_ERR_OBFS_TAG_NOT_ALLOWED = -321, /* obfuscated2 header: tag not allowed here */
  MTC_ERR_TLS_HELLO_TOO_LONG = -322, /* fake-TLS ClientHello over 514 bytes before padding */
  MTC_ERR_TLS_BAD_RECORD = -323, /* unexpected TLS record type, version or sequence */
  MTC_ERR_TLS_RECORD_TOO_LONG = -324, /* TLS record length over 16384+256 */
  MTC_ERR_TLS_BAD_DIGEST = -325, /* fake-TLS HMAC mismatch: wrong secret or altered bytes */
  MTC_ERR_TLS_TIME_SKEW = -326, /* fake-TLS ClientHello timestamp outside the window */
  MTC_ERR_TLS_BAD_SNI = -327,   /* fake-TLS ClientHello SNI missing or not the domain */
  MTC_ERR_TLS_NOT_HELLO = -328, /* not a TLS ClientHello record (16 03 01, len >= 512) */
  MTC_ERR_TLS_MALFORMED = -329, /* a TLS handshake message is malformed */
  MTC_ERR_TLS_TRUNCATED = -330, /* the stream ended inside a TLS record */

  /* -300..-319 framing codecs (src/transport/codec.*); -320..-339 reserved for
   * obfuscation / fake-TLS; -340..-359 reserved for proxy links / SOCKS5. */
  MTC_ERR_FRAME_TOO_LARGE = -300, /* a frame exceeds the 16 MiB cap */
  MTC_ERR_FRAME_LENGTH = -301,  /* a frame length is zero, misaligned or too small */
  MTC_ERR_FRAME_CRC = -302,     /* full transport: CRC32 mismatch */
  MTC_ERR_FRAME_SEQNO = -303,   /* full transport: unexpected sequence number */
  MTC_ERR_FRAME_TAG = -304,     /* the stream did not start with the transport tag */
  MTC_ERR_FRAME_TRUNCATED = -305, /* the stream ended inside a frame */
  MTC_ERR_TRANSPORT_CLOSED = -306, /* the peer closed the connection */
  MTC_ERR_TRANSPORT_ERROR = -307, /* the server sent a transport error code */
  MTC_ERR_TRANSPORT_AUTH_KEY = -308, /* transport error -404: auth key not found */
  MTC_ERR_TRANSPORT_FLOOD = -309, /* transport error -429: transport flood */
  MTC_ERR_TRANSPORT_BAD_DC = -310, /* transport error -444: invalid DC */

  /* -340..-354: MTProxy secrets and proxy links (src/transport/proxy_link.h) */
  MTC_ERR_SECRET_ENCODING = -340,      /* secret is not hex, base64url or base64 */
  MTC_ERR_SECRET_LENGTH = -341,        /* secret size wrong (< 16, 0xdd not 17, too long) */
  MTC_ERR_SECRET_TAG = -342,           /* 17+ byte secret not starting 0xdd or 0xee */
  MTC_ERR_SECRET_DOMAIN_LENGTH = -343, /* fake-TLS domain empty or over 182 bytes */
  MTC_ERR_SECRET_DOMAIN = -344,        /* fake-TLS domain is not an LDH host name */
  MTC_ERR_LINK_SYNTAX = -345,          /* empty, too long, or a parameter without a name */
  MTC_ERR_LINK_CHAR = -346,            /* space, control or non-ASCII byte in the link */
  MTC_ERR_LINK_SCHEME = -347,          /* not tg:, or http(s) to t.me/telegram.me/.dog */
  MTC_ERR_LINK_KIND = -348,            /* not a proxy or socks link */
  MTC_ERR_LINK_PERCENT = -349,         /* malformed %XX escape or %00 */
  MTC_ERR_LINK_DUPLICATE = -350,       /* a parameter appears twice */
  MTC_ERR_LINK_MISSING = -351,         /* server, port or secret missing or empty */
  MTC_ERR_LINK_SERVER = -352,          /* server is not an IP literal or host name */
  MTC_ERR_LINK_PORT = -353,            /* port is not decimal 1..65535 */
  MTC_ERR_LINK_CREDENTIALS = -354,     /* SOCKS user/pass over 255 bytes or pass alone */
  /* -355..-370: SOCKS5 client (src/transport/socks5.h); REP n maps to -360 - n */
  MTC_ERR_SOCKS_PARAMS = -355,         /* bad target or credentials at init */
  MTC_ERR_SOCKS_VERSION = -356,        /* reply version byte not 5 (1 for auth) */
  MTC_ERR_SOCKS_NO_METHOD = -357,      /* server accepts none of our methods (0xFF) */
  MTC_ERR_SOCKS_METHOD = -358,         /* server chose a method we did not offer */
  MTC_ERR_SOCKS_AUTH_FAILED = -359,    /* username/password rejected */
  MTC_ERR_SOCKS_REPLY = -360,          /* unknown REP code (0x09..0xff) */
  MTC_ERR_SOCKS_GENERAL_FAILURE = -361, /* REP 0x01 general SOCKS server failure */
  MTC_ERR_SOCKS_NOT_ALLOWED = -362,    /* REP 0x02 connection not allowed by ruleset */
  MTC_ERR_SOCKS_NET_UNREACHABLE = -363, /* REP 0x03 network unreachable */
  MTC_ERR_SOCKS_HOST_UNREACHABLE = -364, /* REP 0x04 host unreachable */
  MTC_ERR_SOCKS_CONN_REFUSED = -365,   /* REP 0x05 connection refused */
  MTC_ERR_SOCKS_TTL_EXPIRED = -366,    /* REP 0x06 TTL expired */
  MTC_ERR_SOCKS_CMD_UNSUPPORTED = -367, /* REP 0x07 command not supported */
  MTC_ERR_SOCKS_ATYP_UNSUPPORTED = -368, /* REP 0x08 address type not supported */
  MTC_ERR_SOCKS_ATYP = -369,           /* reply carries an unknown ATYP */
  MTC_ERR_SOCKS_PROTOCOL = -370,       /* RSV != 0, empty BND name, or data out of turn */

  /* -400..-449: auth key creation, RSA key set, PFS binding (src/auth/) */
  MTC_ERR_AUTH_STATE = -400,           /* handshake call not valid in its current state */
  MTC_ERR_AUTH_UNEXPECTED = -401,      /* not the answer expected at this handshake step */
  MTC_ERR_AUTH_NONCE = -402,           /* nonce in a server answer differs from ours */
  MTC_ERR_AUTH_SERVER_NONCE = -403,    /* server_nonce differs from the one in resPQ */
  MTC_ERR_AUTH_NO_RSA_KEY = -404,      /* no server fingerprint matches a key we hold */
  MTC_ERR_AUTH_BAD_PQ = -405,          /* pq is empty, over 8 bytes or zero */
  MTC_ERR_AUTH_BAD_PADDING = -406,     /* encrypted part not 16-aligned, or padding >= 16 */
  MTC_ERR_AUTH_ANSWER_HASH = -407,     /* SHA1 of decrypted DH data does not match */
  MTC_ERR_AUTH_NEW_NONCE_HASH = -408,  /* new_nonce_hash in a server answer is wrong */
  MTC_ERR_AUTH_DH_PARAMS_FAIL = -409,  /* server answered server_DH_params_fail */
  MTC_ERR_AUTH_DH_GEN_FAIL = -410,     /* server answered dh_gen_fail */
  MTC_ERR_AUTH_TOO_MANY_RETRIES = -411, /* dh_gen_retry more often than allowed */
  MTC_ERR_AUTH_ENVELOPE = -412,        /* unencrypted message: auth_key_id != 0 or bad length */
  MTC_ERR_AUTH_KEYSET_FULL = -413,     /* the RSA key set has no room for another key */
  MTC_ERR_AUTH_KEY_ID = -414,          /* an auth_key_id is not the expected key's */
  MTC_ERR_AUTH_MSG_KEY = -415,         /* msg_key does not match the decrypted message */
  MTC_ERR_AUTH_BIND_INVALID = -416,    /* bind_auth_key_inner message malformed or inconsistent */
  MTC_ERR_AUTH_RSA_DECRYPT = -417,     /* encrypted_data fits no RSA scheme (server side) */

  /* -500..-549: MTProto session (src/session.*) */
  MTC_ERR_SESSION_LENGTH = -500,       /* encrypted packet length not 24 + 16k or too short */
  MTC_ERR_SESSION_KEY_ID = -501,       /* packet auth_key_id is not the session's key */
  MTC_ERR_SESSION_MSG_KEY = -502,      /* msg_key does not match the decrypted packet */
  MTC_ERR_SESSION_PADDING = -503,      /* message length not % 4 or padding outside 12..1024 */
  MTC_ERR_SESSION_MSG_ID = -504,       /* server msg_id with the wrong parity */
  MTC_ERR_SESSION_MSG_TIME = -505,     /* server msg_id time outside [now-300 s, now+30 s] */
  MTC_ERR_SESSION_DUPLICATE = -506,    /* msg_id already received or below the window */
  MTC_ERR_SESSION_ID = -507,           /* packet for another session_id */
  MTC_ERR_SESSION_DUP_TOKEN = -508,    /* a pending request already uses this token */
  MTC_ERR_SESSION_NO_REQUEST = -509,   /* no pending request has this token */
  MTC_ERR_SESSION_RESEND_LIMIT = -510, /* the server rejected a request too many times */
  MTC_ERR_SESSION_DEAD = -511,         /* no inbound data before the liveness deadline */
  MTC_ERR_SESSION_BAD_MSG = -512,      /* the server reported a client bug (bad_msg 18/19/34/35/64) */

  /* -800..-819: persistent state (src/store.*) */
  MTC_ERR_STORE_CORRUPT = -800,        /* state file malformed, truncated, or a field fails validation */
  MTC_ERR_STORE_VERSION = -801,        /* state file has a version this library does not read */
  MTC_ERR_STORE_NOT_FOUND = -802,      /* no state file yet: a fresh start */
  MTC_ERR_STORE_IO = -803,             /* state file write/fsync/rename/read failed (message says which) */
  MTC_ERR_STORE_TOO_LARGE = -804,      /* state file over 1 MiB */
  MTC_ERR_STORE_PERMISSIONS = -805,    /* state file accessible by group/others (chmod 600) */

  /* -600..-619: the context (src/context*.c, src/conn.c, src/dc.c, src/policy.c) */
  MTC_ERR_CANCELLED = -600,            /* the request was cancelled (mtc_cancel, context freed) */
  MTC_ERR_TIMEOUT = -601,              /* the request's timeout_ms passed, or a connect/handshake timed out */
  MTC_ERR_CLOSED = -602,               /* the context is being freed: no new requests */
  MTC_ERR_NO_ADDRESS = -603,           /* no usable address for the DC */
  MTC_ERR_CONNECT = -604,              /* gave up connecting after max_connect_attempts failures */
  MTC_ERR_DC_UNKNOWN = -605,           /* DC id outside 1..999 */
  MTC_ERR_STATE_MISMATCH = -606,       /* state file is for the other cluster (test_dcs) */
  MTC_ERR_MIGRATE_LOOP = -607,         /* too many *_MIGRATE_X redirects for one request */
  MTC_ERR_REQUEST_UNKNOWN = -608,      /* no pending request has this id */
  MTC_ERR_VERSION = -609,              /* settings or counters struct version not supported */
  MTC_ERR_PROXY_HOST = -610,           /* the proxy's host name cannot be resolved: its lookups
                                          failed max_connect_attempts times (the log has the DNS
                                          error), or at mtc_context_new a name DNS never
                                          resolves (.onion, .invalid). Host names are accepted
                                          since issue 6; IP literals need no DNS */
  MTC_ERR_KEY_DROPPED = -611,          /* the server forgot the auth key (-404): a new one is made */
  MTC_ERR_UNREACHABLE = -612,          /* every known address of the DC failed and endpoint
                                          discovery found none that works (MTC_EVENT_DISCOVERY
                                          and the log say why) */

  /* -620..-639: IO shell (src/io/: sockets, poller, runner thread) */
  MTC_ERR_IO_ADDRESS = -620,           /* not an IPv4/IPv6 literal, or port 0 */
  MTC_ERR_IO_SOCKET = -621,            /* a socket could not be created or set up (fd limit) */
  MTC_ERR_IO_REFUSED = -622,           /* connection refused (RST to our SYN) */
  MTC_ERR_IO_UNREACHABLE = -623,       /* network or host unreachable, or no such address family */
  MTC_ERR_IO_TIMED_OUT = -624,         /* the kernel gave up on the TCP connection (ETIMEDOUT) */
  MTC_ERR_IO_CONNECT = -625,           /* connect failed for another reason */
  MTC_ERR_IO_EOF = -626,               /* the peer closed the connection (orderly) */
  MTC_ERR_IO_RESET = -627,             /* connection reset or broken pipe */
  MTC_ERR_IO_FAILED = -628,            /* another send/recv/socket call failure */
  MTC_ERR_IO_NOT_CONNECTED = -629,     /* the socket is not connected */
  MTC_ERR_IO_POLL = -630,              /* poll() failed */
  MTC_ERR_IO_TABLE_FULL = -631,        /* the poller's fd or deadline table is full */
  MTC_ERR_IO_FD_EXISTS = -632,         /* the fd is already in the poller */
  MTC_ERR_IO_FD_UNKNOWN = -633,        /* the fd is not in the poller */
  MTC_ERR_IO_BUSY = -634,              /* not allowed from inside a dispatch / the runner thread */
  MTC_ERR_IO_WAKEUP = -635,            /* the wakeup fd could not be created */
  MTC_ERR_IO_THREAD = -636,            /* a thread or mutex could not be created */
  MTC_ERR_IO_QUEUE_FULL = -637,        /* the runner's submit queue is full */
  MTC_ERR_IO_STOPPED = -638,           /* the runner is not running (stopped or failed) */

  /* -700..-725: endpoint discovery (src/discovery/: simple config, DoH JSON) */
  MTC_ERR_SCONF_PARTS = -700,          /* simple config: 0 or > 8 TXT parts, or a part > 1024 bytes */
  MTC_ERR_SCONF_LENGTH = -701,         /* simple config: not 344 base64 characters after filtering */
  MTC_ERR_SCONF_BASE64 = -702,         /* simple config: bad base64 or not 256 bytes */
  MTC_ERR_SCONF_RSA = -703,            /* simple config: ciphertext not below the key's modulus */
  MTC_ERR_SCONF_HASH = -704,           /* simple config: SHA-256 check failed (tampered or wrong key) */
  MTC_ERR_SCONF_INNER_LENGTH = -705,   /* simple config: inner length not 8..208 or not % 4 */
  MTC_ERR_SCONF_CONSTRUCTOR = -706,    /* simple config: unexpected TL constructor */
  MTC_ERR_SCONF_TRAILING = -707,       /* simple config: bytes left inside len after the object */
  MTC_ERR_SCONF_VECTOR = -708,         /* simple config: a vector count or string exceeds the data */
  MTC_ERR_SCONF_MALFORMED = -709,      /* simple config: TL ends early or a string is malformed */
  MTC_ERR_SCONF_EXPIRED = -710,        /* simple config: now > expires + 1200 */
  MTC_ERR_SCONF_FUTURE = -711,         /* simple config: now < date - 1200 */
  MTC_ERR_SCONF_NO_RULES = -712,       /* simple config: no rule applies, or no address in them */
  MTC_ERR_SCONF_BAD_DC = -713,         /* simple config: dc_id outside 1..1000 */
  MTC_ERR_SCONF_BAD_IP = -714,         /* simple config: IPv4 0.x.x.x or >= 224.0.0.0 */
  MTC_ERR_SCONF_BAD_PORT = -715,       /* simple config: port outside 1..65535 */
  MTC_ERR_SCONF_BAD_SECRET = -716,     /* simple config: secret not 16 / 0xdd+16 / 0xee+16+domain */
  MTC_ERR_DOH_JSON = -720,             /* DoH answer is not well-formed JSON */
  MTC_ERR_DOH_FORMAT = -721,           /* DoH JSON lacks Status, or Answer/type/data/quotes malformed */
  MTC_ERR_DOH_STATUS = -722,           /* DoH Status is not 0 (3 = NXDOMAIN) */
  MTC_ERR_DOH_NO_TXT = -723,           /* DoH answer holds no TXT (type 16) record */
  MTC_ERR_DOH_TOO_MANY = -724,         /* DoH answer: over 8 TXT records or over 64 entries */
  MTC_ERR_DOH_TOO_LARGE = -725,        /* DoH body over 64 KiB or a TXT string over 1024 bytes */
  /* -726..-749: discovery transport (DoH over libcurl, DNS over c-ares, racing) */
  MTC_ERR_DOH_HTTP_STATUS = -726,      /* DoH server answered with an HTTP status other than 200 */
  MTC_ERR_DOH_HTTP = -727,             /* DoH request failed: connect, HTTP protocol or redirect */
  MTC_ERR_DOH_TLS = -728,              /* DoH TLS handshake or certificate verification failed */
  MTC_ERR_DNS_FAILED = -730,           /* DNS query failed: server failure, refused or bad answer */
  MTC_ERR_DNS_NOT_FOUND = -731,        /* DNS name does not exist (NXDOMAIN) */
  MTC_ERR_DNS_NO_DATA = -732,          /* DNS name has no record of the asked type */
  MTC_ERR_DNS_TOO_MANY = -733,         /* DNS answer: over 8 TXT records or a record over 1024 bytes */
  MTC_ERR_DISCOVERY_TIMEOUT = -740,    /* a discovery request or the whole race timed out */
  MTC_ERR_DISCOVERY_CANCELLED = -741,  /* discovery was cancelled */
  MTC_ERR_DISCOVERY_BUSY = -742,       /* discovery is already running */
  MTC_ERR_DISCOVERY_NO_SOURCE = -743,  /* no DoH endpoint and plain DNS off: nothing to ask */
} mtc_error;

/*
 * Returns a static, human-readable description of an mtc_error code (never
 * NULL; unknown codes get a generic text). Thread-safe; callable anywhere.
 */
MTC_API const char *mtc_strerror(int code);

/*
 * Returns the library version string ("MAJOR.MINOR.PATCH") of the linked
 * library, which may differ from MTC_VERSION_STRING of the headers.
 */
MTC_API const char *mtc_version(void);

/*
 * A source of random bytes: fill out[0..len) and return 0, or a negative
 * mtc_error. Every pure module draws randomness only through one of these,
 * so tests can feed fixed bytes. It must not be called with len == 0.
 */
typedef int (*mtc_random_fn)(void *user_data, uint8_t *out, size_t len);

/* ==== The MTContext: connections, sessions, requests (src/context*.c) ====
 *
 * One mtc_context owns everything a Telegram client needs below the API
 * layer: every DC's address set and health, the auth keys, one MTProto
 * session per DC (plus capped media connections), reconnects with back-off,
 * keepalive and liveness, *_MIGRATE_X and FLOOD_WAIT_X handling, the
 * authorization transfer between DCs, counters and persistence.
 *
 * Threads: a context is not thread-safe. Every mtc_context_* / mtc_invoke /
 * mtc_cancel call must come from one thread at a time (the host loop's, or
 * the runner thread through mtc_runner_submit). Callbacks run on that
 * thread, inside the call that caused them.
 *
 * Callbacks (results and events) may call mtc_invoke, mtc_cancel, the
 * getters, setters and counters functions. mtc_context_on_io, _on_timeout
 * and _run return MTC_ERR_IO_BUSY there; mtc_context_free is deferred until
 * the outermost mtc_context_* call returns (the callback may still use ctx
 * until it returns; new requests are refused with MTC_ERR_CLOSED). on_log,
 * watch_fd and set_timer must not call into the context at all.
 *
 * Routing: MTC_TARGET_MAIN follows the main DC (PHONE/USER/NETWORK_MIGRATE_X
 * move it and resend); FILE/STATS_MIGRATE_X resend that request to DC X; a
 * request that meets 401 AUTH_KEY_UNREGISTERED on a DC other than the main
 * one while the main DC is authorized (or is redirected there) waits for an
 * automatic auth.exportAuthorization (main DC) + auth.importAuthorization
 * (that DC), done once per DC and remembered in the state (a request that
 * follows the main DC and was sent before the main DC moved goes to the new
 * one instead when the old one answers 401); FLOOD_WAIT_X up
 * to settings.flood_wait_auto_s is waited out and resent.
 *
 * Connections: one main session per DC; media connections per DC open only
 * for MTC_TARGET_MEDIA work, at most media_connections_per_dc, and close
 * after idle_close_ms (so do main connections of DCs other than the main
 * one). The connection that creates a DC's auth key carries its requests
 * afterwards, and every later connection of the DC reuses the key.
 * Addresses are raced (connect_stagger_ms apart, best health first); a
 * failed attempt backs off reconnect_initial_ms doubling to reconnect_max_ms
 * (at least 3 s after transport error -429), a connection that had worked
 * is replaced at once; after max_connect_attempts consecutive failures the
 * DC's requests fail with MTC_ERR_CONNECT and nothing is retried until new
 * work arrives. Transport error -404 drops the key and makes a new one
 * (AUTH_KEY_DROPPED, SESSION_RECREATED); -444 asks help.getConfig again.
 * New address sets never close a working connection.
 *
 * Endpoint discovery (PROTOCOL.md §1): when a DC that has work cannot be
 * reached - discovery_after_failures consecutive failed attempts (each tries
 * every known address), or discovery_after_ms without a working connection
 * while trying; after the first failed attempt when the saved config has
 * expired - the context fetches Telegram's signed "simple config" over
 * DNS-over-HTTPS (Google, Cloudflare; plain DNS TXT last), raced: the first
 * valid answer wins, the other requests are cancelled. A healthy start never
 * makes a request. Tampered, expired, malformed or oversized answers change
 * nothing (counted by reason, logged); the next source is tried. The winning
 * config's endpoints join their DCs' address sets, first in line (ipPort:
 * obfuscated TCP; ipPortSecret: obfuscated TCP keyed with the MTProxy-style
 * secret, fake-TLS for 0xee secrets), waiting connections retry at once,
 * help.getConfig is asked over the first session through them (not with
 * no_auto_config) and merged without closing working connections; the state
 * keeps the endpoints and a "discovered" record, so the next start uses them
 * without any request. A DoH Date header more than 60 s off the local clock
 * corrects the fake-TLS timestamps (and the simple config's validity check).
 * Runs are spaced: 30 s after one, doubling after each failed run up to
 * 15 min. When no run can help, the DC's requests fail with
 * MTC_ERR_UNREACHABLE once max_connect_attempts is reached. Never with a
 * proxy. The built-in sources describe Telegram's DCs, so with settings.seeds
 * given only the sources named in the settings are used (none: no discovery).
 *
 * Liveness bound: a connection that goes silent while a request waits is
 * probed after max(4 s, 4 RTT) and replaced max(5 s, 4 RTT) later (9 s in
 * all while RTT <= 1 s); an idle one pings every ping_interval_ms and is
 * replaced when nothing arrived for ping_interval_ms + 15 s. Requests stay
 * pending across reconnects and are answered exactly once. */

/* ---- transports and addresses --------------------------------------------------- */

typedef enum mtc_transport {
  MTC_TRANSPORT_ABRIDGED = 1,
  MTC_TRANSPORT_INTERMEDIATE = 2,
  MTC_TRANSPORT_PADDED = 3, /* padded intermediate */
  MTC_TRANSPORT_FULL = 4    /* never obfuscated */
} mtc_transport;

enum { /* mtc_dc_address.flags: the dcOption flags (PROTOCOL.md §2.2) */
  MTC_ADDR_IPV6 = 1u << 0,
  MTC_ADDR_MEDIA_ONLY = 1u << 1,
  MTC_ADDR_TCPO_ONLY = 1u << 2,
  MTC_ADDR_CDN = 1u << 3,
  MTC_ADDR_STATIC = 1u << 4,
  MTC_ADDR_THIS_PORT_ONLY = 1u << 5
};

/* One seed endpoint. Test DCs use their plain ids (settings.test_dcs says
 * which cluster), never +10000. */
typedef struct mtc_dc_address {
  int dc_id;             /* 1..999 */
  const char *ip;        /* IPv4 or IPv6 literal (no brackets, no zone) */
  uint16_t port;         /* 1..65535 */
  unsigned flags;        /* MTC_ADDR_*; MTC_ADDR_IPV6 must match the literal */
  const uint8_t *secret; /* optional MTProxy-style secret: 16 / 0xdd+16 / 0xee+16+domain */
  size_t secret_len;
} mtc_dc_address;

/* ---- callbacks ----------------------------------------------------------------------- */

enum { MTC_IO_READ = 1, MTC_IO_WRITE = 2 };

typedef enum mtc_log_level {
  MTC_LOG_ERROR = 0,
  MTC_LOG_WARN = 1,
  MTC_LOG_INFO = 2,
  MTC_LOG_DEBUG = 3
} mtc_log_level;

typedef enum mtc_event_type {
  MTC_EVENT_CONN_STATE = 1,    /* dc_id, media, index, state, reason */
  MTC_EVENT_AUTH_KEY_CREATED,  /* dc_id, temp, key_id */
  MTC_EVENT_AUTH_KEY_DROPPED,  /* dc_id, key_id, reason (MTC_ERR_TRANSPORT_AUTH_KEY) */
  MTC_EVENT_MAIN_DC_CHANGED,   /* dc_id = new main DC, old_dc_id */
  MTC_EVENT_CONFIG_UPDATED,    /* address sets changed (help.getConfig) */
  MTC_EVENT_SESSION_RECREATED, /* dc_id, media, index: updates may have been missed */
  MTC_EVENT_STATE_CHANGED,     /* persistent state changed; reason = 0 if it was saved,
                                  else the save error (or MTC_ERR_UNSUPPORTED: no storage) */
  MTC_EVENT_UPDATES,           /* dc_id; data/len: an object the server pushed (updates...) */
  MTC_EVENT_DISCOVERY          /* endpoint discovery ended: dc_id = the DC that needed it;
                                  reason = 0 (endpoints added; data/len = the source's name,
                                  "google", "cloudflare" or "dns") or the error that ended it
                                  (e.g. MTC_ERR_SCONF_EXPIRED: the address sets are unchanged) */
} mtc_event_type;

typedef enum mtc_conn_state {
  MTC_CONN_CONNECTING = 1, /* TCP connects (raced across addresses) */
  MTC_CONN_HANDSHAKING,    /* creating the DC's auth key on this connection */
  MTC_CONN_READY,          /* the session runs */
  MTC_CONN_RECONNECTING,   /* lost; reason = why; a new attempt follows after back-off */
  MTC_CONN_FAILED,         /* gave up (max_connect_attempts); requests got MTC_ERR_CONNECT */
  MTC_CONN_CLOSED          /* closed on purpose (idle, or no longer needed) */
} mtc_conn_state;

typedef struct mtc_event {
  mtc_event_type type;
  int dc_id;
  int old_dc_id;        /* MAIN_DC_CHANGED: the previous main DC (0: none) */
  int media;            /* 1 for a media/download connection */
  int index;            /* connection index within the DC: 0 main, 1.. media */
  int temp;             /* AUTH_KEY_*: 1 for a temporary key */
  uint64_t key_id;      /* AUTH_KEY_*: the key's id (public; never the key) */
  mtc_conn_state state; /* CONN_STATE */
  int reason;           /* an MTC_ERR_* explaining the state, or 0 */
  const uint8_t *data;  /* borrowed until the callback returns */
  size_t len;
} mtc_event;

typedef struct mtc_callbacks {
  /* Host loop integration (the libcurl-multi shape). watch_fd: watch fd for
   * MTC_IO_* events (0 = stop); called only when the interest changes. NULL:
   * the context keeps its own fd set; drive it with mtc_context_run() or a
   * runner. */
  void (*watch_fd)(void *user_data, int fd, unsigned events);
  /* Call mtc_context_on_timeout() once after delay_ms (0 = as soon as
   * possible; -1 = cancel the timer). Replaces the previous timer. May be
   * NULL in OWN mode. */
  void (*set_timer)(void *user_data, int64_t delay_ms);
  /* Events (may be NULL). ev and its data live until the callback returns. */
  void (*on_event)(void *user_data, const mtc_event *ev);
  /* Log lines up to settings.log_level (may be NULL). line is NUL-terminated,
   * borrowed, has no newline and never holds key material (key ids, which
   * travel in clear on the wire, may appear). Must not call into the context. */
  void (*on_log)(void *user_data, mtc_log_level level, const char *line);
  /* Randomness (user_data is passed). NULL: a CTR-DRBG over OS entropy. */
  mtc_random_fn random;
  /* Wall clock, unix milliseconds. NULL: CLOCK_REALTIME. */
  int64_t (*now_ms)(void *user_data);
  /* Persistence through the host instead of settings.state_path (both
   * NULL: use state_path, or keep the state in memory only).
   * load_state: copy the saved JSON text into buf[0..cap) (cap is 1 MiB),
   * set *len, return 0; return MTC_ERR_STORE_NOT_FOUND for a fresh start or
   * another negative code to make mtc_context_new fail with it.
   * save_state: store json[0..len) (borrowed; it holds auth keys: keep it
   * private) and return 0 or a negative code (logged, retried later). */
  int (*load_state)(void *user_data, char *buf, size_t cap, size_t *len);
  int (*save_state)(void *user_data, const char *json, size_t len);
} mtc_callbacks;

/* ---- settings (versioned) ------------------------------------------------------------ */

#define MTC_SETTINGS_VERSION 1

typedef struct mtc_settings {
  uint32_t version;             /* MTC_SETTINGS_VERSION */
  /* initConnection (PROTOCOL.md §2.1). Strings are copied; NULL = "". */
  int32_t api_id;
  const char *api_hash;         /* kept for the app's convenience (mtc_context_api_hash) */
  const char *device_model, *system_version, *app_version, *system_lang_code, *lang_pack,
      *lang_code;
  int test_dcs;                 /* 1: test DCs (ids +10000 on the wire, test RSA key and seeds) */
  const mtc_dc_address *seeds;  /* NULL: the built-in seeds (PROTOCOL.md §2.3); copied */
  size_t n_seeds;
  const char *const *rsa_keys_pem; /* extra handshake keys (PKCS#1 or SPKI PEM); copied */
  size_t n_rsa_keys;
  int no_builtin_rsa_keys;      /* 1: only rsa_keys_pem */
  mtc_transport transport;      /* default INTERMEDIATE (tdlib's choice); dd/ee secrets force PADDED */
  int obfuscate;                /* default 1 (official clients always obfuscate); not with FULL */
  const char *proxy;            /* tg://proxy, t.me/proxy or tg://socks link, or NULL for
                                   direct connections. The server may be an IP literal or a
                                   host name: names are looked up (A + AAAA, plain DNS over
                                   dns_servers or the system's resolvers; "localhost" is
                                   127.0.0.1 / ::1 without DNS) when the first connection is
                                   due, again after 5 min or after every address failed
                                   twice; failed lookups back off 1 s doubling to 60 s and
                                   count as failed connect attempts (see MTC_ERR_PROXY_HOST) */
  int prefer_ipv6;              /* 1: IPv6 addresses first (else IPv4 first, IPv6 as fallback) */
  int main_dc;                  /* first main DC when the state has none (default 2) */
  int media_connections_per_dc; /* cap on media connections per DC (default 2, at most 8) */
  int connect_timeout_ms;       /* TCP connect, proxy and key creation steps (default 10000) */
  int connect_stagger_ms;       /* start the next address after this (default 250); up to 3 race */
  int reconnect_initial_ms;     /* first back-off delay (default 1000), doubling per failure */
  int reconnect_max_ms;         /* back-off cap (default 30000) */
  int max_connect_attempts;     /* consecutive failed attempts before FAILED (default 8) */
  int max_connects_per_minute;  /* TCP connects per DC per 60 s (default 20, at most 64) */
  int ping_interval_ms;         /* keepalive ping_delay_disconnect period (default 60000) */
  int ping_disconnect_delay_s;  /* disconnect_delay sent to the server (default 75) */
  int idle_close_ms;            /* media and non-main-DC connections idle this long close (60000) */
  int flood_wait_auto_s;        /* FLOOD_WAIT_X with X <= this is waited out and resent
                                   (default 5; 0: always give the error to the app) */
  int no_auto_config;           /* 1: never call help.getConfig on its own */
  int pfs;                      /* PFS: traffic uses a temporary key per DC, bound to the perm key
                                   (auth.bindTempAuthKey), renewed at 75% of its lifetime */
  int temp_key_expires_s;       /* temporary key lifetime (default 86400; >= 4 with pfs) */
  const char *state_path;       /* JSON state file (atomic, 0600); NULL: see load/save_state */
  mtc_log_level log_level;      /* most verbose level passed to on_log (default MTC_LOG_INFO) */
  /* ---- endpoint discovery (see "Endpoint discovery" above) ---- */
  int no_discovery;             /* 1: never run endpoint discovery */
  const char *const *doh_google; /* Google JSON DoH endpoints in start order: base URLs
                                   ("https://dns.google") or with the path
                                   ("https://dns.google/resolve"); copied. NULL: the built-in
                                   {"https://dns.google"} (built-in seeds only, see above) */
  size_t n_doh_google;          /* at most 7 */
  const char *const *doh_cloudflare; /* Cloudflare JSON DoH endpoints, the same way; NULL: the
                                   built-in {"https://mozilla.cloudflare-dns.com"} */
  size_t n_doh_cloudflare;      /* at most 7 */
  const char *simple_config_key_pem; /* RSA public key (2048-bit, PKCS#1 or SPKI PEM) the
                                   simple config is signed with; NULL: Telegram's */
  const char *ca_file;          /* CA bundle (PEM file) for the DoH servers; NULL: libcurl's */
  const char *dns_servers;      /* plain DNS TXT source: c-ares server list ("127.0.0.1:5353");
                                   NULL: the system's resolvers (built-in seeds only). Also
                                   the servers for a proxy host name (NULL: the system's;
                                   no_plain_dns does not apply to those lookups) */
  int no_plain_dns;             /* 1: DoH only, no plain DNS TXT source */
  int doh_connect_timeout_ms;   /* per DoH request, TCP + TLS (default 5000) */
  int doh_timeout_ms;           /* per DoH request, whole transfer (default 10000) */
  int discovery_timeout_ms;     /* one whole race (default 20000) */
  int discovery_stagger_ms;     /* the next source starts this much later (default 800,
                                   tdesktop's), at once when one fails */
  int discovery_after_failures; /* N above (default 2; capped at max_connect_attempts) */
  int discovery_after_ms;       /* T above (default 8000, tdesktop's kEnumerateDcTimeout) */
  const char *phone_number;     /* the user's phone number, for the simple config's
                                   phone_prefix_rules (only its digits count; at most 32
                                   characters of digits, spaces, "+-()"). NULL: the number of
                                   the app's last auth.sendCode is used; before that every
                                   rule applies (tdlib's rule before login). Never logged. */
} mtc_settings;

/* Fill *s with the defaults above (version set, seeds NULL = built-in).
 * Always call this first, then change fields. For the timing and limit
 * fields 0 also means "default". No allocation; s must not be NULL. */
MTC_API void mtc_settings_default(mtc_settings *s);

/* ---- context ----------------------------------------------------------------------------- */

typedef struct mtc_context mtc_context;

/*
 * Create a context. settings and callbacks are copied (strings, seeds, keys
 * included); user_data is passed to every callback. The persisted state is
 * loaded here: none (MTC_ERR_STORE_NOT_FOUND) is a fresh start; any other
 * load error makes this fail with that code (MTC_ERR_STORE_CORRUPT,
 * _VERSION, _PERMISSIONS, _IO, _TOO_LARGE, MTC_ERR_STATE_MISMATCH), logged
 * through on_log with the reason, and the file is never written. If the
 * state and the seeds together name more DCs than a context holds (16,
 * e.g. the seeds changed), every DC with an auth key is kept and seed-only
 * DCs give way (a warning names them); no key is dropped. No
 * connection is opened until the first request. In HOST mode (watch_fd set)
 * no fd exists yet, so watch_fd is not called during creation.
 * Returns 0 and *out, or MTC_ERR_INVALID_ARG (bad settings: NULL, a string
 * over 255 bytes, a bad seed or PEM, FULL with obfuscation, a bad proxy
 * link...), MTC_ERR_VERSION, MTC_ERR_PROXY_HOST (a .onion or .invalid proxy host),
 * MTC_ERR_NOMEM, MTC_ERR_IO_WAKEUP, a store error. Not from a callback of
 * another context's loop thread unless that thread owns this one too.
 */
MTC_API int mtc_context_new(mtc_context **out, const mtc_settings *settings,
                            const mtc_callbacks *callbacks, void *user_data);

/*
 * Free the context: every pending request's callback gets
 * MTC_RESULT_CANCELLED exactly once (mtc_invoke from those callbacks fails
 * with MTC_ERR_CLOSED), connections close (watch_fd(fd, 0) is told; no
 * events), a changed state is saved, keys are zeroized. NULL-safe.
 * Called from inside a callback it is deferred until the outermost
 * mtc_context_* call returns. If a runner still owns ctx, a call from
 * another thread stops the runner first (as mtc_runner_stop); a call on the
 * runner thread is refused (logged, nothing freed): stop the runner first.
 */
MTC_API void mtc_context_free(mtc_context *ctx);

/* ---- loop integration ---- */

/* HOST mode: fd (one the context asked to watch) is ready for events
 * (MTC_IO_* bits; errors and hang-ups as READ|WRITE). Stale fds are ignored.
 * Returns 0, MTC_ERR_INVALID_ARG, MTC_ERR_IO_BUSY (from a callback). */
MTC_API int mtc_context_on_io(mtc_context *ctx, int fd, unsigned events);
/* HOST mode: the timer set by set_timer fired. Returns 0 or MTC_ERR_IO_BUSY. */
MTC_API int mtc_context_on_timeout(mtc_context *ctx);
/* Milliseconds until the context wants mtc_context_on_timeout (0 = now),
 * -1 = no deadline (also for NULL). Both modes; callable from callbacks. */
MTC_API int64_t mtc_context_next_timeout_ms(const mtc_context *ctx);
/* OWN mode (watch_fd == NULL): one poll() round over the context's fds
 * waiting at most max_ms (0 = do not wait; < 0 = until the next deadline or
 * event), then the due work. Returns 0, MTC_ERR_INVALID_ARG (NULL, HOST
 * mode), MTC_ERR_IO_BUSY (from a callback, or while a runner owns ctx),
 * MTC_ERR_IO_POLL. */
MTC_API int mtc_context_run(mtc_context *ctx, int max_ms);

/* ---- requests ---- */

typedef enum mtc_result_kind {
  MTC_RESULT_OK = 0,        /* data/len = the result object (TL, gzip already inflated) */
  MTC_RESULT_RPC_ERROR = 1, /* rpc_code / rpc_message (a Telegram rpc_error: data, not a failure) */
  MTC_RESULT_ERROR = 2,     /* error = a library error (MTC_ERR_TIMEOUT, _CONNECT, ...) */
  MTC_RESULT_CANCELLED = 3  /* error = MTC_ERR_CANCELLED */
} mtc_result_kind;

typedef struct mtc_result {
  mtc_result_kind kind;
  uint64_t request_id;
  int dc_id;                /* DC that answered (after migrations), 0 if none */
  const uint8_t *data;      /* borrowed until the callback returns */
  size_t len;
  int32_t rpc_code;         /* RPC_ERROR: e.g. 400, 420 */
  const char *rpc_message;  /* RPC_ERROR: NUL-terminated, borrowed; else NULL */
  int error;                /* ERROR / CANCELLED: the code */
} mtc_result;

/* Called exactly once per accepted request. May call mtc_invoke / mtc_cancel. */
typedef void (*mtc_result_fn)(void *user_data, const mtc_result *result);

typedef enum mtc_target {
  MTC_TARGET_MAIN = 0,  /* the main (home) DC's session; follows PHONE/USER/NETWORK_MIGRATE */
  MTC_TARGET_DC = 1,    /* dc_id's main session */
  MTC_TARGET_MEDIA = 2  /* a media/download connection of dc_id (0 = the main DC) */
} mtc_target;

enum { /* mtc_invoke_options.flags */
  MTC_INVOKE_NO_MIGRATE = 1u << 0,      /* give *_MIGRATE_X errors to the app */
  MTC_INVOKE_NO_FLOOD_WAIT = 1u << 1,   /* give every FLOOD_WAIT_X to the app */
  MTC_INVOKE_NO_AUTH_TRANSFER = 1u << 2 /* no automatic export/import for this request */
};

typedef struct mtc_invoke_options {
  mtc_target target;
  int dc_id;       /* MTC_TARGET_DC / _MEDIA */
  int timeout_ms;  /* > 0: MTC_ERR_TIMEOUT after this; 0: until answered or cancelled */
  unsigned flags;  /* MTC_INVOKE_* */
} mtc_invoke_options;

/*
 * Queue a request: body[0..len) is one TL method call (constructor id
 * first; length a multiple of 4, at most 4 MiB), copied. The context adds
 * invokeWithLayer(initConnection) where a session needs it, routes it
 * (opts NULL = main DC), opens connections as needed and follows migrations,
 * FLOOD_WAIT_X up to settings.flood_wait_auto_s and the authorization
 * transfer. fn(user_data, result) is called exactly once, never from inside
 * this call; when this call fails, fn is never called. (A top-level call
 * also does the context's due work — other requests' answers and timeouts —
 * so their callbacks may run inside it; if one of them frees the context,
 * this call returns MTC_ERR_CLOSED.)
 * *request_id (may be NULL) gets the id, never 0. Returns 0,
 * MTC_ERR_INVALID_ARG, MTC_ERR_DC_UNKNOWN, MTC_ERR_CLOSED, MTC_ERR_NOMEM.
 * Callable from callbacks.
 */
MTC_API int mtc_invoke(mtc_context *ctx, const mtc_invoke_options *opts, const uint8_t *body,
                       size_t len, mtc_result_fn fn, void *user_data, uint64_t *request_id);

struct mtc_tl_object; /* mtconn/tl_api.h */
/* mtc_invoke with a generated request object (e.g. an mtc_tl_fn_help_getConfig
 * with base.id set), serialized with mtc_tl_serialize; request is only read
 * during the call. Same rules and codes, plus mtc_tl_serialize's. Callable
 * from callbacks. */
MTC_API int mtc_invoke_object(mtc_context *ctx, const mtc_invoke_options *opts,
                              const struct mtc_tl_object *request, mtc_result_fn fn,
                              void *user_data, uint64_t *request_id);

/* Cancel a pending request: its fn gets MTC_RESULT_CANCELLED before this
 * returns; a late answer is dropped. Returns 0 or MTC_ERR_REQUEST_UNKNOWN
 * (already completed, or never issued). Callable from callbacks. */
MTC_API int mtc_cancel(mtc_context *ctx, uint64_t request_id);

/* ---- state (all callable from callbacks) ---- */

/* The current main DC (from the state, else settings.main_dc; 0 for NULL). */
MTC_API int mtc_context_main_dc(const mtc_context *ctx);
/* Make dc_id the main DC (MAIN_DC_CHANGED, saved). 0, MTC_ERR_INVALID_ARG,
 * MTC_ERR_DC_UNKNOWN (outside 1..999). */
MTC_API int mtc_context_set_main_dc(mtc_context *ctx, int dc_id);
/* 1 if the user is authorized on dc_id's key (signIn / importAuthorization
 * seen, or restored from the state), else 0. */
MTC_API int mtc_context_is_authorized(const mtc_context *ctx, int dc_id);
/* Set or clear that flag (after a login flow the context cannot see, or a
 * logout); saved. 0, MTC_ERR_INVALID_ARG, MTC_ERR_DC_UNKNOWN (no such DC,
 * or it has no auth key yet). The context sets it itself when it sees an
 * auth.authorization result (signIn, signUp, importAuthorization, ...) and
 * clears it on auth.loggedOut, 401 AUTH_KEY_UNREGISTERED or a dropped key. */
MTC_API int mtc_context_set_authorized(mtc_context *ctx, int dc_id, int authorized);
/* settings.api_id / api_hash as given (the hash is borrowed until the
 * context is freed; "" if none). */
MTC_API int32_t mtc_context_api_id(const mtc_context *ctx);
MTC_API const char *mtc_context_api_hash(const mtc_context *ctx);
/* Save the state now (state_path or save_state; STATE_CHANGED follows).
 * Saving is otherwise automatic: at once when keys, authorization, the main
 * DC or address sets change; salts, time offset and endpoint health at most
 * once a minute; and at mtc_context_free. 0, MTC_ERR_UNSUPPORTED (no storage
 * configured), MTC_ERR_CLOSED, or the store's error (MTC_ERR_STORE_IO ...). */
MTC_API int mtc_context_save(mtc_context *ctx);

/* ---- counters ---- */

#define MTC_COUNTERS_VERSION 1
#define MTC_COUNTERS_MAX_DCS 16
#define MTC_COUNTERS_MAX_REASONS 8

typedef enum mtc_connect_reason {
  MTC_REASON_MAIN = 0,  /* first connection of a DC's main session */
  MTC_REASON_MEDIA,     /* a media connection */
  MTC_REASON_RECONNECT, /* replacing a lost or failed connection */
  MTC_REASON_MIGRATE,   /* opened for a request redirected by *_MIGRATE_X */
  MTC_REASON_DISCOVERY, /* opened for endpoint discovery (help.getConfig) */
  MTC_REASON_COUNT
} mtc_connect_reason;

/* Why a discovery answer was refused (mtc_counters.discovery_rejected). */
typedef enum mtc_discovery_reject {
  MTC_DISCOVERY_TAMPERED = 0,  /* SHA-256 check or RSA step failed: altered, or another key */
  MTC_DISCOVERY_EXPIRED,       /* authentic but expired, or dated in the future */
  MTC_DISCOVERY_MALFORMED,     /* JSON, TXT text, base64 or TL layout wrong */
  MTC_DISCOVERY_OVERSIZED,     /* body over 64 KiB, too many TXT records, a record too long */
  MTC_DISCOVERY_UNUSABLE,      /* authentic, but no usable rule or address */
  MTC_DISCOVERY_REJECT_COUNT
} mtc_discovery_reject;

typedef struct mtc_reason_count {
  int reason;     /* an MTC_ERR_* code */
  uint64_t count;
} mtc_reason_count;

typedef struct mtc_dc_counters {
  int dc_id;
  uint64_t connects_started, connects_succeeded, connects_failed;
  uint64_t connects_cancelled; /* lost a connect race, closed unused */
  uint64_t connects_by_reason[MTC_REASON_COUNT];
  uint64_t handshakes_perm, handshakes_temp, handshakes_failed;
  uint64_t rpcs_sent, rpcs_answered, rpc_errors; /* requests handed to / answered by a session */
  uint64_t migrations, flood_waits, auth_exports, auth_imports;
  uint64_t reconnects;
  size_t n_reconnect_reasons;  /* the most frequent distinct reasons */
  mtc_reason_count reconnect_reasons[MTC_COUNTERS_MAX_REASONS];
  uint64_t bytes_in, bytes_out; /* socket bytes */
} mtc_dc_counters;

typedef struct mtc_counters {
  uint32_t version;     /* set by the caller to MTC_COUNTERS_VERSION */
  size_t n_dcs;
  mtc_dc_counters dcs[MTC_COUNTERS_MAX_DCS];
  /* totals over all DCs */
  uint64_t connects_started, connects_succeeded, connects_failed, handshakes_perm,
      handshakes_temp, reconnects, rpcs_sent, bytes_in, bytes_out;
  uint64_t dns_queries, http_requests; /* every DNS question (endpoint discovery's and the
                                          proxy host's A + AAAA), every DoH request */
  uint64_t state_saves, state_save_errors;
  uint64_t requests_pending;
  /* endpoint discovery */
  uint64_t discovery_runs;      /* runs ended (one that could not start included) */
  uint64_t discovery_failures;  /* of them, ended without a valid config */
  uint64_t discovery_rejected[MTC_DISCOVERY_REJECT_COUNT]; /* answers refused, by reason */
  uint64_t discovery_requests_failed; /* no answer: network, TLS, HTTP status, NXDOMAIN, timeout */
  int discovery_last_error;     /* the last failed race's error, 0 if none */
} mtc_counters;

/* Fill *out (out->version must be MTC_COUNTERS_VERSION: else MTC_ERR_VERSION).
 * Callable from callbacks. */
MTC_API int mtc_context_counters(const mtc_context *ctx, mtc_counters *out);
/* The same as JSON text, malloc'ed (free with free()):
 *   {"dcs":[{"dc_id":2,"connects_started":1,...,"connects_by_reason":{"main":1,...},
 *            "reconnect_reasons":{"session dead (-511)":1}},...],
 *    "totals":{...},"dns_queries":0,"http_requests":0,...,
 *    "discovery":{"runs":1,"failures":0,"rejected":{"tampered":1,"expired":0,...},
 *                 "requests_failed":0,"last_error":0}}
 * *json is owned by the caller. Returns 0, MTC_ERR_INVALID_ARG,
 * MTC_ERR_NOMEM. Callable from callbacks. */
MTC_API int mtc_context_counters_json(const mtc_context *ctx, char **json);

/* ---- runner thread (optional) ---- */

typedef struct mtc_runner mtc_runner;

/* Start a thread that owns ctx (OWN mode only: watch_fd == NULL) and drives
 * it with mtc_context_run. From now until mtc_runner_stop returns, touch ctx
 * only through mtc_runner_submit; callbacks run on the runner thread.
 * Returns 0, MTC_ERR_INVALID_ARG (NULL, HOST mode), MTC_ERR_NOMEM,
 * MTC_ERR_IO_THREAD. */
MTC_API int mtc_runner_start(mtc_runner **out, mtc_context *ctx);
/* Any thread: run fn(ctx, ud) on the runner thread soon (FIFO per thread);
 * every accepted submission runs exactly once, also when stop comes first.
 * ud is passed through untouched (the caller owns it). Inside fn every
 * mtc_context_* call is allowed except _run, _free and mtc_runner_stop.
 * Returns 0, MTC_ERR_IO_QUEUE_FULL, MTC_ERR_IO_STOPPED, MTC_ERR_INVALID_ARG,
 * MTC_ERR_NOMEM. */
MTC_API int mtc_runner_submit(mtc_runner *r, void (*fn)(mtc_context *ctx, void *ud), void *ud);
/* Stop: run pending submissions, join, free r; ctx is the caller's again
 * (with its requests and connections intact). Not from the runner thread
 * (MTC_ERR_IO_BUSY, nothing freed). NULL-safe (0). Returns 0 or the error
 * that had stopped the loop. */
MTC_API int mtc_runner_stop(mtc_runner *r);

#ifdef __cplusplus
}
#endif

#endif /* MTCONN_MTCONN_H */
