/*
 * mock_doh: the publishing side of DoH endpoint discovery. TEST CODE.
 *
 * 1. A simple-config ENCODER (the inverse of src/discovery/simple_config.c,
 *    PROTOCOL.md §1.7): with a TEST-ONLY RSA private key (tests/mockdc/keys)
 *
 *      plain[0:4]     = len (LE), normally 4 + body length
 *      plain[4:..]    = body (a boxed help.configSimple, <= 204 bytes)
 *      up to 208      = random filler
 *      plain[208:224] = SHA256(plain[0:208])[0:16]
 *      m[0:32]        = random AES key (iv = m[16:32]); m[0] is drawn below
 *                       n[0] so that m < n
 *      m[32:256]      = AES-256-CBC-encrypt(plain)
 *      C              = m^d mod n (raw RSA private op), base64 -> 344 chars
 *
 *    Faults flip single bits at each stage so a test can see each check.
 *
 * 2. A mock DoH HTTP/1.1 server on mock_loop (127.0.0.1 only, plain HTTP,
 *    one request per connection, "Connection: close"):
 *
 *      GET /resolve?name=<n>&type=16[&random_padding=...]        (Google JSON)
 *      GET /dns-query?name=<n>&type=16  + accept: application/dns-json
 *                                                        (Cloudflare JSON)
 *
 *    type may be 16, TXT or ANY (case-insensitive); other types get a
 *    NOERROR answer without records. A name other than the configured one
 *    (case-insensitive, trailing dot optional) gets Status 3 (NXDOMAIN).
 *    The TXT record is the encrypted config split into two strings of 250
 *    and 94 characters. Google order: short first, bare text (as in the
 *    captured KAT-DNS-1); Cloudflare order: long first, each wrapped in
 *    literal double quotes. Every answer has a "Date:" header (RFC 1123,
 *    GMT) from the wall clock + clock_offset.
 *    Bad requests: unknown path 404, method not GET 405, missing/invalid
 *    name or type 400, /dns-query without the dns-json accept header 415,
 *    request head over 8 KiB 431.
 *
 *    Switches (mock_doh_switches), read when a request arrives:
 *      slow_ms    answer after this delay
 *      fail       HTTP 500
 *      hang       read the request, never answer (the client must time out)
 *      tampered   TXT whose SHA-256 check fails (bit flipped in plain)
 *      expired    TXT of a config that expired 2 days ago (date 30 days ago)
 *      add_cname  put a CNAME (type 5) entry in front of the TXT entries
 *
 * All calls need the loop lock while the loop runs in a thread (mock_loop.h).
 */
#ifndef MTC_MOCK_DOH_H
#define MTC_MOCK_DOH_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mock_loop.h"
#include "mtconn/mtconn.h"

/* ---- encoder ------------------------------------------------------------------ */

typedef struct mock_sconf_key mock_sconf_key;

/* PEM private key (PKCS#1 or PKCS#8, 2048-bit). 0, MTC_ERR_RSA_KEY, MTC_ERR_NOMEM. */
int mock_sconf_key_new(const char *pem, size_t pem_len, mock_sconf_key **out);
void mock_sconf_key_free(mock_sconf_key *k); /* NULL-safe */
/* The public half, for mtci_simple_config_decode(). */
const mtci_rsa_key *mock_sconf_key_public(const mock_sconf_key *k);

typedef struct mock_sconf_ip {
  uint8_t ip[4];         /* dotted-quad order: {127,0,0,1} */
  int32_t port;
  const uint8_t *secret; /* NULL: ipPort; else ipPortSecret with these bytes */
  size_t secret_len;
} mock_sconf_ip;

typedef struct mock_sconf_rule {
  const char *phone_prefix_rules; /* NULL = "" */
  int32_t dc_id;
  const mock_sconf_ip *ips;
  size_t n_ips;
} mock_sconf_rule;

/* Boxed help.configSimple into out[0..cap). 0 with *len, or MTC_ERR_BUFFER_TOO_SMALL. */
int mock_sconf_build_tl(int32_t date, int32_t expires, const mock_sconf_rule *rules,
                        size_t n_rules, uint8_t *out, size_t cap, size_t *len);

enum {
  MOCK_SCONF_TAMPER_PLAIN = 1u << 0, /* flip a bit of plain[4] after hashing */
  MOCK_SCONF_TAMPER_AES = 1u << 1,   /* flip a bit of the AES ciphertext (m[40]) */
  MOCK_SCONF_TAMPER_RSA = 1u << 2    /* flip the lowest bit of C */
};

/*
 * Encrypt body[0..body_len) (<= 204 bytes). len_field: the plain[0:4]
 * value, 0 = 4 + body_len. Writes 344 base64 characters and a NUL.
 * m_out / plain_out (may be NULL) receive m and plain as produced (before
 * the TAMPER_RSA flip; after TAMPER_PLAIN / TAMPER_AES).
 * 0, MTC_ERR_INVALID_ARG, MTC_ERR_RANDOM (rnd failed, or never gave m < n).
 */
int mock_sconf_encrypt(const mock_sconf_key *k, const uint8_t *body, size_t body_len,
                       uint32_t len_field, unsigned faults, mtc_random_fn rnd, void *rnd_ud,
                       char out[345], uint8_t m_out[256], uint8_t plain_out[224]);

/* ---- server ------------------------------------------------------------------- */

#define MOCK_DOH_DEFAULT_NAME "apv3.stel.com"
#define MOCK_DOH_LONG_PART 250 /* split of the 344 characters, as published */

typedef struct mock_doh mock_doh;

typedef struct mock_doh_config {
  uint16_t port;         /* 0 = ephemeral */
  const char *name;      /* served TXT name; NULL = MOCK_DOH_DEFAULT_NAME */
  const char *key_pem;   /* TEST private key; NULL = mock_test_key_pem(0) */
  size_t key_pem_len;
  /* Validity of the served config; 0 = now - 1 h / now + 30 days, with now =
   * wall clock + clock_offset at mock_doh_new(). */
  int32_t date, expires;
  const mock_sconf_rule *rules; /* encrypted at once, not kept */
  size_t n_rules;
  int64_t clock_offset; /* seconds added to the wall clock */
} mock_doh_config;

typedef struct mock_doh_switches {
  uint32_t slow_ms;
  int fail;
  int hang;
  int tampered;
  int expired;
  int add_cname;
} mock_doh_switches;

typedef struct mock_doh_stats {
  uint64_t connections;
  uint64_t google;       /* well-formed GET /resolve */
  uint64_t cloudflare;   /* well-formed GET /dns-query */
  uint64_t answered;     /* 200 with TXT records */
  uint64_t nxdomain;     /* 200 with Status 3 */
  uint64_t nodata;       /* 200 with Status 0, no records (other type) */
  uint64_t failed;       /* 500 (fail switch) */
  uint64_t hung;         /* requests left unanswered (hang switch) */
  uint64_t bad_requests; /* 400 / 404 / 405 / 415 / 431 */
  size_t last_padding_len; /* random_padding of the last request (0: none) */
  char last_host[128];     /* Host header of the last request ("" if none) */
} mock_doh_stats;

/* 0, or MTC_ERR_INVALID_ARG / MTC_ERR_RSA_KEY / MTC_ERR_NOMEM / -errno (listen). */
int mock_doh_new(mock_loop *l, const mock_doh_config *cfg, mock_doh **out);
void mock_doh_free(mock_doh *d); /* closes its connections; NULL-safe */

uint16_t mock_doh_port(const mock_doh *d);
/* The public key matching the server's private key. */
const mtci_rsa_key *mock_doh_public_key(const mock_doh *d);
/* The 344-character text served now (normal config), for comparisons. */
const char *mock_doh_txt(const mock_doh *d);

/* Re-encrypt the served config (date/expires 0 = defaults as at creation). */
int mock_doh_set_rules(mock_doh *d, int32_t date, int32_t expires, const mock_sconf_rule *rules,
                       size_t n_rules);
void mock_doh_set_switches(mock_doh *d, const mock_doh_switches *sw);
void mock_doh_set_clock_offset(mock_doh *d, int64_t offset);
void mock_doh_stats_get(const mock_doh *d, mock_doh_stats *out);

#endif /* MTC_MOCK_DOH_H */
