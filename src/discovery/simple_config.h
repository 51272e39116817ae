/*
 * The DoH "simple config" (PROTOCOL.md §1.6-§1.10): TXT strings in, a list
 * of emergency access points out. Pure: the RSA key, the time and the
 * phone number are parameters.
 *
 * Pipeline, each step with its own error code:
 *
 *   TXT parts (1..8, each <= 1024 bytes)                    MTC_ERR_SCONF_PARTS
 *     order longest first (ties keep input order), concatenate,
 *     drop every byte not in [A-Za-z0-9+/=]
 *   344 characters                                          MTC_ERR_SCONF_LENGTH
 *     standard base64, '=' padded, canonical
 *   C, 256 bytes                                            MTC_ERR_SCONF_BASE64
 *     m = C^e mod n (raw RSA public op; the key must be 2048-bit)
 *                                                           MTC_ERR_SCONF_RSA (C >= n)
 *     plain = AES-256-CBC-decrypt(key m[0:32], iv m[16:32], m[32:256])
 *   SHA256(plain[0:208])[0:16] == plain[208:224]            MTC_ERR_SCONF_HASH
 *
 *   plain (224 bytes):
 *   +--------+------------------------------------+-------------+----------+
 *   | len LE | help.configSimple (boxed)          | random fill | hash[16] |
 *   +--------+------------------------------------+-------------+----------+
 *   0        4                                   len           208        224
 *   8 <= len <= 208, len % 4 == 0                           MTC_ERR_SCONF_INNER_LENGTH
 *   the object must end exactly at len                      MTC_ERR_SCONF_TRAILING
 *
 *   help.configSimple#5a592a6c date:int expires:int rules:vector<AccessPointRule>
 *   accessPointRule#4679b65f phone_prefix_rules:string dc_id:int ips:vector<IpPort>
 *   ipPort#d433ad73 ipv4:int port:int
 *   ipPortSecret#37982646 ipv4:int port:int secret:bytes
 *   (both vectors bare: a count, then boxed elements)
 *   other ids                                               MTC_ERR_SCONF_CONSTRUCTOR
 *   a vector count larger than the bytes left could hold    MTC_ERR_SCONF_VECTOR
 *   data ends early (also inside a string), malformed string MTC_ERR_SCONF_MALFORMED
 *
 *   date - 1200 <= now <= expires + 1200                    MTC_ERR_SCONF_FUTURE / _EXPIRED
 *   rules that apply to the phone (below); for each of them:
 *     dc_id in 1..1000                                      MTC_ERR_SCONF_BAD_DC
 *     ipv4 not 0.x.x.x and below 224.0.0.0                  MTC_ERR_SCONF_BAD_IP
 *     port 1..65535                                         MTC_ERR_SCONF_BAD_PORT
 *     secret valid (mtci_proxy_secret_from_binary)          MTC_ERR_SCONF_BAD_SECRET
 *   at least one address                                    MTC_ERR_SCONF_NO_RULES
 *
 * Ordering retry (the suggestion of §1.6 step 5): with 2 or 3 parts, if the
 * longest-first order fails at the base64, RSA or hash step, the other
 * orders are tried (at most 5 more RSA operations); the first that decrypts
 * wins. If none does, the error of the longest-first order is returned.
 *
 * Phone rules (§1.10): phone_prefix_rules is split on ','. An empty item
 * matches; "+P" matches when the phone starts with P; "-P" rejects the rule
 * at once when the phone starts with P; P must be decimal digits (possibly
 * none, which then matches every phone, as in tdlib); anything else is
 * ignored. The rule applies iff something matched and nothing rejected.
 * The phone is reduced to its digits first ("+1 555-0100" -> "15550100").
 * Empty phone (NULL or no digits) = before login: every rule applies, like
 * tdlib's ConfigRecoverer (tdesktop would apply only rules with an empty
 * item). Addresses of rules that do not apply are parsed but not checked.
 *
 * IPv4: the TL int is read little-endian and printed most significant byte
 * first (0xc2ddfa32 -> "194.221.250.50"). Loopback and private ranges are
 * allowed (tests point the config at 127.0.0.1).
 */
#ifndef MTCI_DISCOVERY_SIMPLE_CONFIG_H
#define MTCI_DISCOVERY_SIMPLE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"
#include "transport/proxy_link.h"

#define MTCI_SCONF_MAX_PARTS 8
#define MTCI_SCONF_MAX_PART_LEN 1024
#define MTCI_SCONF_B64_LEN 344    /* filtered text */
#define MTCI_SCONF_CIPHER_LEN 256 /* C and m */
#define MTCI_SCONF_PLAIN_LEN 224  /* AES output */
#define MTCI_SCONF_HASHED_LEN 208 /* plain[0:208] is hashed; it holds len + object */
#define MTCI_SCONF_MAX_ENDPOINTS 64
#define MTCI_SCONF_TIME_SLACK 1200 /* seconds of clock error tolerated each way */
#define MTCI_SCONF_MAX_DC_ID 1000

#define MTCI_SCONF_ID_CONFIG_SIMPLE 0x5a592a6cu
#define MTCI_SCONF_ID_ACCESS_POINT_RULE 0x4679b65fu
#define MTCI_SCONF_ID_IP_PORT 0xd433ad73u
#define MTCI_SCONF_ID_IP_PORT_SECRET 0x37982646u

/* One TXT string as received (not NUL-terminated necessarily). */
typedef struct mtci_sconf_part {
  const char *text;
  size_t len;
} mtci_sconf_part;

typedef struct mtci_sconf_endpoint {
  int32_t dc_id;
  uint8_t ip[4];   /* ip[0] is the first number of the dotted quad */
  char ipv4[16];   /* "a.b.c.d", NUL-terminated */
  uint16_t port;
  size_t secret_len; /* 0 for ipPort (plain obfuscated TCP) */
  uint8_t secret[MTCI_PROXY_SECRET_MAX]; /* binary secret (16, 0xdd+16 or 0xee+16+domain) */
  mtci_proxy_secret_kind secret_kind;    /* MTCI_SECRET_NONE when secret_len == 0 */
} mtci_sconf_endpoint;

typedef struct mtci_simple_config {
  int32_t date;
  int32_t expires;
  size_t rules;         /* accessPointRule entries in the config */
  size_t rules_applied; /* of them, those that matched the phone */
  size_t count;         /* endpoints in ep[], in config order */
  mtci_sconf_endpoint ep[MTCI_SCONF_MAX_ENDPOINTS];
} mtci_simple_config;

/*
 * The whole pipeline (see the top of this file). key: a 2048-bit RSA public
 * key — Telegram's (MTCI_RSA_BUILTIN_SIMPLE_CONFIG in crypto/rsa_keys.h) or a
 * test key. now: unix seconds (server-corrected if known). phone: digits
 * taken from phone[0..phone_len); NULL or digit-free = every rule applies.
 * Returns 0 and fills *out, or a negative code with *out zeroed.
 */
int mtci_simple_config_decode(const mtci_rsa_key *key, const mtci_sconf_part *parts,
                              size_t n_parts, int64_t now, const char *phone, size_t phone_len,
                              mtci_simple_config *out);

/* Zeroize (the endpoints carry proxy secrets). NULL-safe. */
void mtci_simple_config_free(mtci_simple_config *c);

/* ---- the steps, for tests and tools ---------------------------------------- */

/*
 * Order parts longest first (stable), concatenate, filter to
 * [A-Za-z0-9+/=]. Writes MTCI_SCONF_B64_LEN characters and a NUL into out.
 * MTC_ERR_SCONF_PARTS or MTC_ERR_SCONF_LENGTH.
 */
int mtci_sconf_join(const mtci_sconf_part *parts, size_t n_parts,
                    char out[MTCI_SCONF_B64_LEN + 1]);

/*
 * Decode b64[0..b64_len) (must be the 344 filtered characters), RSA, AES,
 * hash check. m (may be NULL) receives m; plain receives the 224 bytes
 * (also when the hash check fails, for diagnosis). MTC_ERR_SCONF_LENGTH,
 * _BASE64, _RSA, _HASH, or MTC_ERR_INVALID_ARG for a key that is not 2048-bit.
 */
int mtci_sconf_decrypt(const mtci_rsa_key *key, const char *b64, size_t b64_len,
                       uint8_t m[MTCI_SCONF_CIPHER_LEN], uint8_t plain[MTCI_SCONF_PLAIN_LEN]);

/*
 * Parse a decrypted (hash-checked) plain block: inner length, TL, validity
 * window, phone rules, addresses. Same codes as the pipeline from
 * MTC_ERR_SCONF_INNER_LENGTH on. Does not look at plain[208:224].
 */
int mtci_sconf_parse(const uint8_t plain[MTCI_SCONF_PLAIN_LEN], int64_t now, const char *phone,
                     size_t phone_len, mtci_simple_config *out);

/*
 * Phone rule check (§1.10). rules[0..rules_len), phone = digits only
 * (callers strip; an empty phone gives 1). Returns 1 if the rule applies.
 */
int mtci_sconf_phone_applies(const char *rules, size_t rules_len, const char *phone,
                             size_t phone_len);

#endif /* MTCI_DISCOVERY_SIMPLE_CONFIG_H */
