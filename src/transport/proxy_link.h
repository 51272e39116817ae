/*
 * MTProxy secrets and proxy links (PROTOCOL.md §3), pure parsing.
 *
 * Secrets, binary form:
 *
 *   simple   : key[16]                          16 bytes
 *   "dd"     : 0xdd | key[16]                   17 bytes
 *   "ee"     : 0xee | key[16] | domain (ASCII)  18..199 bytes (domain 1..182)
 *
 * Text form: hex (either case), base64url ('-' '_') or standard base64
 * ('+' '/'), '=' padding optional; tried in that order like tdlib
 * (ProxySecret::from_link). Base64 must be canonical (unused trailing bits
 * zero) and must not mix the two alphabets.
 *
 * Decisions (documented here because clients differ):
 *   - Fake-TLS domain: 1..182 bytes (tdlib MAX_DOMAIN_LENGTH; it has to fit
 *     the ClientHello). tdesktop wants >= 4; we follow tdlib and let the
 *     server decide. Characters: LDH host-name rules — labels of 1..63
 *     letters, digits and '-', no leading/trailing '-', separated by single
 *     dots, no leading/trailing dot. Case is kept as given (it goes into SNI).
 *   - Tag bytes other than 0xdd/0xee (gotd also takes 0xef) are rejected.
 *
 * Links accepted (scheme and host case-insensitive, surrounding ASCII
 * whitespace trimmed, a '#fragment' ignored):
 *
 *   tg://proxy?...   tg:proxy?...   tg://socks?...   tg:socks?...
 *   http(s)://[www.]{t.me|telegram.me|telegram.dog}/{proxy|socks}[/]?...
 *   [www.]{t.me|telegram.me|telegram.dog}/{proxy|socks}[/]?...   (no scheme)
 *
 * No port, user-info or other path segments on the web host.
 *
 * Query: parameters in any order; names matched exactly after
 * percent-decoding; a known name twice is MTC_ERR_LINK_DUPLICATE; unknown
 * names are ignored (their escapes are still checked); "&&" and a trailing
 * '&' are harmless; a parameter without '=' has an empty value.
 * Percent escapes must be '%' + two hex digits and must not decode to NUL.
 *
 * '+': tdlib and current tdesktop decode '+' in query values as a space,
 * which breaks standard-base64 secrets unless the '+' was written %2B
 * (telegram-bot-api maps the space back to '+'). No secret encoding
 * contains a space and no host name or port contains '+', so in server,
 * port and secret a '+' stays '+'. In user and pass, where a space is
 * legitimate, '+' means space (form encoding, as tdlib); write %2B for '+'.
 *
 * Values: server is an IPv4 dotted quad (no leading zeros), an IPv6 literal
 * with or without brackets (no zone id), or an LDH host name <= 253 chars
 * whose last label is not all digits; port is 1..65535, decimal digits only
 * (leading zeros allowed, at most 5 digits); SOCKS user/pass are 0..255
 * bytes each (RFC 1929 fields); a pass without a user is rejected; an empty
 * user means no authentication.
 *
 * Checks run in this order: length and characters, scheme/host, kind, query
 * syntax and escapes, duplicates, missing values (server, port, secret),
 * server, port, secret or credentials. Every failure returns a specific
 * MTC_ERR_* in -340..-354 and a static message that never quotes the input.
 */
#ifndef MTCI_TRANSPORT_PROXY_LINK_H
#define MTCI_TRANSPORT_PROXY_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

#define MTCI_PROXY_KEY_LEN 16
#define MTCI_PROXY_DOMAIN_MIN 1
#define MTCI_PROXY_DOMAIN_MAX 182 /* tdlib ProxySecret::MAX_DOMAIN_LENGTH */
#define MTCI_PROXY_SECRET_MAX (1 + MTCI_PROXY_KEY_LEN + MTCI_PROXY_DOMAIN_MAX) /* 199 */
#define MTCI_PROXY_HOST_MAX 253    /* DNS name limit; IPv6 text fits too */
#define MTCI_PROXY_CRED_MAX 255    /* RFC 1929 ULEN / PLEN */
#define MTCI_PROXY_LINK_MAX 4096   /* longer links are rejected outright */

typedef enum mtci_proxy_secret_kind {
  MTCI_SECRET_NONE = 0,
  MTCI_SECRET_SIMPLE = 1, /* 16-byte key: obfuscated2 */
  MTCI_SECRET_DD = 2,     /* 0xdd: obfuscated2 + padded intermediate */
  MTCI_SECRET_EE = 3      /* 0xee: fake-TLS + obfuscated2 + padded intermediate */
} mtci_proxy_secret_kind;

typedef struct mtci_proxy_secret {
  mtci_proxy_secret_kind kind;
  uint8_t key[MTCI_PROXY_KEY_LEN];
  size_t domain_len;                      /* 0 unless kind == EE */
  char domain[MTCI_PROXY_DOMAIN_MAX + 1]; /* NUL-terminated SNI */
} mtci_proxy_secret;

/*
 * Parse a secret in text form (hex / base64url / base64). On success fills
 * *out and returns 0; on failure returns MTC_ERR_SECRET_* (out is zeroed)
 * and, if msg != NULL, points *msg at a static explanation.
 */
int mtci_proxy_secret_parse(const char *text, size_t len, mtci_proxy_secret *out,
                            const char **msg);

/*
 * Validate a binary secret (as in dcOption.secret, PROTOCOL.md §2.2): 16
 * bytes, 17 starting 0xdd, or 18..199 starting 0xee with a valid domain.
 * out may be NULL to only check. Same codes as mtci_proxy_secret_parse.
 */
int mtci_proxy_secret_from_binary(const uint8_t *bin, size_t len, mtci_proxy_secret *out,
                                  const char **msg);

/* Binary form of a parsed secret into out[0..cap); returns its length
 * (16, 17 or 17 + domain_len) or MTC_ERR_BUFFER_TOO_SMALL / INVALID_ARG. */
int mtci_proxy_secret_to_binary(const mtci_proxy_secret *s, uint8_t *out, size_t cap);

/* Zeroize a secret (safe on a zeroed one). */
void mtci_proxy_secret_free(mtci_proxy_secret *s);

typedef enum mtci_proxy_type {
  MTCI_PROXY_NONE = 0,
  MTCI_PROXY_MTPROTO = 1, /* tg://proxy */
  MTCI_PROXY_SOCKS5 = 2   /* tg://socks */
} mtci_proxy_type;

typedef enum mtci_host_family {
  MTCI_HOST_NAME = 0, /* a DNS name to resolve */
  MTCI_HOST_IPV4 = 4, /* addr[0..4) */
  MTCI_HOST_IPV6 = 6  /* addr[0..16) */
} mtci_host_family;

typedef struct mtci_proxy_link {
  mtci_proxy_type type;
  mtci_host_family family;
  char host[MTCI_PROXY_HOST_MAX + 1]; /* as given, brackets removed, NUL-terminated */
  uint8_t addr[16];                   /* network order, for IPv4/IPv6 literals */
  uint16_t port;
  mtci_proxy_secret secret;           /* MTPROTO only */
  int has_auth;                       /* SOCKS5: 1 if user is non-empty */
  size_t user_len, pass_len;
  char user[MTCI_PROXY_CRED_MAX + 1]; /* NUL-terminated (no NUL inside: %00 is rejected) */
  char pass[MTCI_PROXY_CRED_MAX + 1];
} mtci_proxy_link;

/*
 * Parse a proxy link (see the top of this file). link[0..len) need not be
 * NUL-terminated; a NUL inside is a bad character. Returns 0 and fills *out,
 * or a negative MTC_ERR_SECRET_* / MTC_ERR_LINK_* code with *out zeroed and
 * *msg (if msg != NULL) set to a static message.
 */
int mtci_proxy_link_parse(const char *link, size_t len, mtci_proxy_link *out, const char **msg);

/* Zeroize a parsed link (secret and credentials included). */
void mtci_proxy_link_free(mtci_proxy_link *l);

/*
 * Helpers shared with other transport code: strict IPv4 dotted quad and
 * IPv6 text (RFC 4291 section 2.2, no zone id, no brackets). Return 0 and
 * fill out, or -1.
 */
int mtci_parse_ipv4(const char *s, size_t n, uint8_t out[4]);
int mtci_parse_ipv6(const char *s, size_t n, uint8_t out[16]);
/* 1 if s[0..n) is an LDH host name (labels 1..63, total 1..max_len). */
int mtci_is_ldh_name(const char *s, size_t n, size_t max_len);

#endif /* MTCI_TRANSPORT_PROXY_LINK_H */
