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

  /* -700..-729: endpoint discovery (src/discovery/: simple config, DoH JSON) */
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

#ifdef __cplusplus
}
#endif

#endif /* MTCONN_MTCONN_H */
