/*
 * Fake-TLS for "ee" MTProxy secrets (PROTOCOL.md §5): the ClientHello with
 * its HMAC "random", the ServerHello check, and the TLS record framing that
 * carries obfuscated2 afterwards. Both sides are here: the client for the
 * connection stack, the server for the mock MTProxy and for tests.
 *
 * Secrets are the 16-byte key (secret bytes [1..17)); the domain is the
 * secret's bytes [17..), plain ASCII, used at most MTCI_TLS_MAX_DOMAIN bytes.
 *
 * Flow, client side:
 *   mtci_tls_client_hello()        -> send 517 bytes; client random = hello[11..43)
 *   mtci_tls_sh_init/feed()        <- ServerHello response, any split; leftover
 *                                     bytes after it are application data
 *   mtci_tls_writer (client)       -> 14 03 03 00 01 01 once, then 17 03 03 records
 *   mtci_tls_reader                <- 17 03 03 records, payloads concatenated
 */
#ifndef MTCI_TRANSPORT_FAKETLS_H
#define MTCI_TRANSPORT_FAKETLS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"

#define MTCI_TLS_HELLO_LEN 517
#define MTCI_TLS_MAX_DOMAIN 182          /* tdlib ProxySecret::MAX_DOMAIN_LENGTH */
#define MTCI_TLS_RANDOM_OFFSET 11        /* hello / ServerHello "random" at [11..43) */
#define MTCI_TLS_CLIENT_MAX_PAYLOAD 2878 /* tdlib MAX_TLS_PACKET_LENGTH */
#define MTCI_TLS_SERVER_MAX_PAYLOAD 16384
#define MTCI_TLS_MAX_RECORD (16384 + 256) /* longest record payload accepted */
#define MTCI_TLS_MAX_HANDSHAKE_RECORDS 17 /* ServerHello + up to 16 more (gotd) */

/* ---- ClientHello ----------------------------------------------------- */

/* Test hooks for mtci_tls_client_hello; pass NULL in production. */
typedef struct mtci_tls_hello_hook {
  int no_shuffle;     /* extensions in the template's listed order */
  const uint8_t *key; /* 32 bytes used as the key_share key instead of X25519 */
} mtci_tls_hello_hook;

/*
 * Build the 517-byte ClientHello from tdlib's template: draws 7 GREASE bytes,
 * then the template's randomness (session_id, X25519 key, extension order).
 * The random field = HMAC-SHA256(secret16, hello with it zeroed) with its last
 * 4 bytes XORed with int32_le(unix_time); it is also the client random the
 * ServerHello check needs (out + MTCI_TLS_RANDOM_OFFSET).
 * domain: 1.. bytes, cut to MTCI_TLS_MAX_DOMAIN. Errors: MTC_ERR_INVALID_ARG,
 * MTC_ERR_TLS_HELLO_TOO_LONG, the RNG's error.
 */
int mtci_tls_client_hello(const uint8_t secret16[16], const uint8_t *domain, size_t domain_len,
                          int64_t unix_time, mtc_random_fn rnd, void *rnd_ud,
                          const mtci_tls_hello_hook *hook, uint8_t out[MTCI_TLS_HELLO_LEN]);

/* ---- server side: ClientHello acceptance (mtprotoproxy's checks, §5.7) ---- */

/*
 * How long the ClientHello record at the start of d[0..n) is: 0 if fewer than
 * 5 bytes are there, else 5 + length. MTC_ERR_TLS_NOT_HELLO unless it starts
 * 16 03 01 with a length >= 512; MTC_ERR_TLS_RECORD_TOO_LONG over the cap.
 */
int mtci_tls_client_hello_size(const uint8_t *d, size_t n);

#define MTCI_TLS_IGNORE_TIME_SKEW 1u

/*
 * Check one whole ClientHello record rec[0..len) as an MTProxy does:
 *   record header (MTC_ERR_TLS_NOT_HELLO / _RECORD_TOO_LONG / _TRUNCATED if
 *   len < record, _MALFORMED if len > record);
 *   HMAC-SHA256(secret16, rec with random zeroed) XOR random: 28 zero bytes,
 *   else MTC_ERR_TLS_BAD_DIGEST; the last 4 are the client's timestamp;
 *   -1200 < now - timestamp < 600 unless timestamp < 86400000 or the flag
 *   MTCI_TLS_IGNORE_TIME_SKEW, else MTC_ERR_TLS_TIME_SKEW;
 *   if domain is not NULL, the SNI host name must equal it (cut to 182
 *   bytes), else MTC_ERR_TLS_BAD_SNI (MTC_ERR_TLS_MALFORMED if the hello
 *   cannot be parsed).
 * *timestamp (may be NULL) gets the timestamp once the digest matched.
 */
int mtci_tls_server_check_hello(const uint8_t *rec, size_t len, const uint8_t secret16[16],
                                const uint8_t *domain, size_t domain_len, int64_t now,
                                unsigned flags, uint32_t *timestamp);

/*
 * The response an MTProxy sends (mtprotoproxy layout, §5.5): ServerHello
 * record echoing the hello's session_id, CCS, and one 17 03 03 record of
 * cert_len random bytes; its random = HMAC(secret16, client random || all of
 * it with the random zeroed). Draws a 32-byte X25519 key seed, then cert_len
 * bytes. Output: 127 + 6 + 5 + cert_len bytes for a 32-byte session_id
 * (MTC_ERR_BUFFER_TOO_SMALL if cap is less); cert_len <= MTCI_TLS_MAX_RECORD.
 * hello must be a ClientHello record (MTC_ERR_TLS_MALFORMED otherwise).
 */
int mtci_tls_server_hello(const uint8_t secret16[16], const uint8_t *hello, size_t hello_len,
                          size_t cert_len, mtc_random_fn rnd, void *rnd_ud, uint8_t *out,
                          size_t cap, size_t *out_len);

/* ---- client side: ServerHello check (§5.5), incremental ---------------- */

typedef struct mtci_tls_sh {
  mtci_hmac_sha256_ctx mac; /* over client random || R, R[11:43] as zeros */
  uint8_t digest[32];       /* R[11:43] as received */
  uint8_t hdr[5];
  uint8_t hdr_len;
  uint8_t state;
  uint8_t kind;       /* type of the record being read */
  uint8_t handshakes; /* 16 03 03 records seen */
  size_t left;        /* payload bytes left in the current record */
  size_t total;       /* bytes of R consumed */
  int err;            /* sticky error */
} mtci_tls_sh;

void mtci_tls_sh_init(mtci_tls_sh *s, const uint8_t secret16[16], const uint8_t client_random[32]);
/*
 * Feed response bytes. Returns 1 when the whole response was read and its
 * digest matched (*consumed = bytes of d that belonged to it; the rest is
 * application data for the record reader), 0 if more is needed (all of d
 * consumed), or an error: MTC_ERR_TLS_BAD_RECORD (type/version/order: not
 * 16.. then 14 03 03 00 01 01 then 17), MTC_ERR_TLS_MALFORMED (first
 * record shorter than 38 bytes), MTC_ERR_TLS_RECORD_TOO_LONG,
 * MTC_ERR_TLS_BAD_DIGEST. Errors are sticky; after success it returns 1
 * with *consumed = 0.
 */
int mtci_tls_sh_feed(mtci_tls_sh *s, const uint8_t *d, size_t len, size_t *consumed);
/* At end of stream: 0 if verified, else the sticky error or MTC_ERR_TLS_TRUNCATED. */
int mtci_tls_sh_eof(const mtci_tls_sh *s);
void mtci_tls_sh_free(mtci_tls_sh *s);

/* ---- record framing after the handshake (§5.6) ------------------------ */

/*
 * Writer. Client side: "14 03 03 00 01 01" before the first record, payloads
 * of at most 2878 bytes. Server side: no CCS, at most 16384 bytes.
 *
 *   17 03 03 <len16 BE> <payload>   17 03 03 <len16 BE> <payload> ...
 */
typedef struct mtci_tls_writer {
  size_t max_payload;
  int ccs_pending;
} mtci_tls_writer;

void mtci_tls_writer_init(mtci_tls_writer *w, int server_side);
/* Bytes mtci_tls_writer_emit will produce for len input bytes now. */
size_t mtci_tls_writer_size(const mtci_tls_writer *w, size_t len);
/* Frame in[0..len) into out (must not overlap in). len == 0 writes nothing.
 * MTC_ERR_BUFFER_TOO_SMALL if cap < mtci_tls_writer_size(). */
int mtci_tls_writer_emit(mtci_tls_writer *w, const uint8_t *in, size_t len, uint8_t *out,
                         size_t cap, size_t *out_len);

/*
 * Reader (either side): 17 03 03 records, any split; payloads appended to
 * out. "14 03 03 00 01 01" and zero-length records are skipped. Another
 * type or version, or a CCS of other content: MTC_ERR_TLS_BAD_RECORD; a
 * length over MTCI_TLS_MAX_RECORD: MTC_ERR_TLS_RECORD_TOO_LONG. Errors are
 * sticky.
 */
typedef struct mtci_tls_reader {
  uint8_t hdr[5];
  uint8_t hdr_len;
  uint8_t ccs; /* inside a CCS record */
  size_t left; /* payload bytes left in the current record */
  int err;
} mtci_tls_reader;

void mtci_tls_reader_init(mtci_tls_reader *r);
/* out has room for len bytes and may equal in. *out_len = payload bytes written. */
int mtci_tls_reader_feed(mtci_tls_reader *r, const uint8_t *in, size_t len, uint8_t *out,
                         size_t *out_len);
/* At end of stream: MTC_ERR_TLS_TRUNCATED inside a record, the sticky error, or 0. */
int mtci_tls_reader_eof(const mtci_tls_reader *r);

#endif /* MTCI_TRANSPORT_FAKETLS_H */
