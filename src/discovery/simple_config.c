/* DoH simple config decoder (PROTOCOL.md §1.6-§1.10); see simple_config.h. */
#include "discovery/simple_config.h"

#include <string.h>

#include "base64.h"
#include "bytes.h"
#include "tl/tl.h"

/* Smallest wire sizes, used to bound vector counts by the bytes left. */
#define RULE_MIN_SIZE 16 /* id + empty string + dc_id + ips count */
#define IP_MIN_SIZE 12   /* ipPort: id + ipv4 + port */

/* At most this many rules / addresses fit in 208 bytes; the endpoint table
 * can therefore never overflow on valid-length input. */
#define MAX_RULES (MTCI_SCONF_HASHED_LEN / RULE_MIN_SIZE)
#define MAX_IPS (MTCI_SCONF_HASHED_LEN / IP_MIN_SIZE)
_Static_assert(MAX_IPS <= MTCI_SCONF_MAX_ENDPOINTS, "endpoint table too small");

/* ---- joining the TXT parts -------------------------------------------------- */

static int is_b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

static int check_parts(const mtci_sconf_part *parts, size_t n) {
  if (!parts || n == 0 || n > MTCI_SCONF_MAX_PARTS) return MTC_ERR_SCONF_PARTS;
  for (size_t i = 0; i < n; i++)
    if ((!parts[i].text && parts[i].len) || parts[i].len > MTCI_SCONF_MAX_PART_LEN)
      return MTC_ERR_SCONF_PARTS;
  return 0;
}

/* Longest first; equal lengths keep their input order (insertion sort is
 * stable). tdesktop's multimap keyed by INT_MAX - length does the same. */
static void longest_first(const mtci_sconf_part *parts, size_t n, size_t order[]) {
  for (size_t i = 0; i < n; i++) {
    size_t j = i;
    while (j > 0 && parts[order[j - 1]].len < parts[i].len) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
}

/* Concatenate in `order`, keeping only base64 characters; exactly 344. */
static int join_in(const mtci_sconf_part *parts, size_t n, const size_t order[],
                   char out[MTCI_SCONF_B64_LEN + 1]) {
  size_t o = 0;
  for (size_t k = 0; k < n; k++) {
    const mtci_sconf_part *p = &parts[order[k]];
    for (size_t i = 0; i < p->len; i++) {
      unsigned char c = (unsigned char)p->text[i];
      if (!is_b64_char(c)) continue;
      if (o == MTCI_SCONF_B64_LEN) return MTC_ERR_SCONF_LENGTH;
      out[o++] = (char)c;
    }
  }
  out[o] = '\0';
  return o == MTCI_SCONF_B64_LEN ? 0 : MTC_ERR_SCONF_LENGTH;
}

int mtci_sconf_join(const mtci_sconf_part *parts, size_t n_parts,
                    char out[MTCI_SCONF_B64_LEN + 1]) {
  if (!out) return MTC_ERR_INVALID_ARG;
  out[0] = '\0';
  int rc = check_parts(parts, n_parts);
  if (rc) return rc;
  size_t order[MTCI_SCONF_MAX_PARTS];
  longest_first(parts, n_parts, order);
  return join_in(parts, n_parts, order, out);
}

/* ---- decryption ------------------------------------------------------------- */

int mtci_sconf_decrypt(const mtci_rsa_key *key, const char *b64, size_t b64_len,
                       uint8_t m_out[MTCI_SCONF_CIPHER_LEN],
                       uint8_t plain[MTCI_SCONF_PLAIN_LEN]) {
  if (!key || !b64 || !plain) return MTC_ERR_INVALID_ARG;
  if (key->n_len != MTCI_SCONF_CIPHER_LEN) return MTC_ERR_INVALID_ARG;
  if (b64_len != MTCI_SCONF_B64_LEN) return MTC_ERR_SCONF_LENGTH;

  uint8_t c[MTCI_SCONF_CIPHER_LEN], m[MTCI_SCONF_CIPHER_LEN], h[MTCI_SHA256_LEN];
  size_t clen = 0;
  int rc = mtci_base64_decode(b64, b64_len, MTCI_B64_STD | MTCI_B64_PAD_REQUIRED, c, sizeof c,
                              &clen);
  if (rc < 0 || clen != sizeof c) return MTC_ERR_SCONF_BASE64;

  rc = mtci_rsa_public_raw(key, c, sizeof c, m, sizeof m);
  if (rc == MTC_ERR_RSA_INPUT) return MTC_ERR_SCONF_RSA;
  if (rc) return rc;
  /* key = m[0:32], iv = m[16:32] (overlapping the key), data = m[32:256]. */
  rc = mtci_aes256_cbc_decrypt(m, m + 16, m + 32, plain, MTCI_SCONF_PLAIN_LEN);
  if (rc == 0) {
    mtci_sha256(plain, MTCI_SCONF_HASHED_LEN, h);
    if (!mtci_ct_equal(h, plain + MTCI_SCONF_HASHED_LEN, 16)) rc = MTC_ERR_SCONF_HASH;
  }
  if (m_out) memcpy(m_out, m, sizeof m);
  mtci_zeroize(m, sizeof m);
  mtci_zeroize(h, sizeof h);
  return rc;
}

/* ---- phone rules ---------------------------------------------------------------- */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Does the digit sequence of phone[0..n) start with p[0..pn) (all digits)? */
static int digits_start_with(const char *phone, size_t n, const char *p, size_t pn) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < pn; i++) {
    if (!is_digit((unsigned char)phone[i])) continue;
    if (phone[i] != p[k]) return 0;
    k++;
  }
  return k == pn;
}

int mtci_sconf_phone_applies(const char *rules, size_t rules_len, const char *phone,
                             size_t phone_len) {
  size_t digits = 0;
  for (size_t i = 0; phone && i < phone_len; i++)
    if (is_digit((unsigned char)phone[i])) digits++;
  if (digits == 0) return 1; /* before login: every rule applies (tdlib) */
  if (!rules) rules_len = 0;
  int matched = 0;
  size_t start = 0;
  for (;;) {
    size_t end = start;
    while (end < rules_len && rules[end] != ',') end++;
    const char *item = rules + start;
    size_t len = end - start;
    if (len == 0) {
      matched = 1;
    } else if (item[0] == '+' || item[0] == '-') {
      int all_digits = 1;
      for (size_t i = 1; i < len; i++)
        if (!is_digit((unsigned char)item[i])) all_digits = 0;
      if (all_digits && digits_start_with(phone, phone_len, item + 1, len - 1)) {
        if (item[0] == '-') return 0;
        matched = 1;
      }
    } /* other items: ignored */
    if (end >= rules_len) break;
    start = end + 1;
  }
  return matched;
}

/* ---- TL parsing ----------------------------------------------------------------- */

struct raw_ip {
  uint32_t ipv4;
  int32_t port;
  int has_secret;        /* ipPortSecret */
  const uint8_t *secret;
  size_t secret_len;
};

struct raw_rule {
  const char *prefix_rules;
  size_t prefix_len;
  int32_t dc_id;
  size_t first_ip, n_ips; /* slice of the ip table */
};

/* The reader's sticky error in this module's terms. */
static int map_tl_error(int err) {
  switch (err) {
  case 0: return 0;
  case MTC_ERR_TL_CONSTRUCTOR: return MTC_ERR_SCONF_CONSTRUCTOR;
  case MTC_ERR_TL_TOO_LONG: return MTC_ERR_SCONF_VECTOR;
  case MTC_ERR_TL_TRAILING: return MTC_ERR_SCONF_TRAILING;
  default: return MTC_ERR_SCONF_MALFORMED; /* truncated, bad string form */
  }
}

static int valid_ip(uint32_t ipv4) {
  uint32_t first = ipv4 >> 24;
  return first != 0 && first < 224; /* not "this network", multicast or reserved */
}

static void ip_text(uint32_t v, uint8_t ip[4], char out[16]) {
  size_t o = 0;
  for (int i = 0; i < 4; i++) {
    unsigned b = (unsigned)(v >> (24 - 8 * i)) & 0xffu;
    ip[i] = (uint8_t)b;
    if (i) out[o++] = '.';
    if (b >= 100) out[o++] = (char)('0' + b / 100);
    if (b >= 10) out[o++] = (char)('0' + b / 10 % 10);
    out[o++] = (char)('0' + b % 10);
  }
  out[o] = '\0';
}

int mtci_sconf_parse(const uint8_t plain[MTCI_SCONF_PLAIN_LEN], int64_t now, const char *phone,
                     size_t phone_len, mtci_simple_config *out) {
  if (!plain || !out) return MTC_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  uint32_t len = mtci_le32(plain);
  if (len < 8 || len > MTCI_SCONF_HASHED_LEN || len % 4) return MTC_ERR_SCONF_INNER_LENGTH;

  struct raw_rule rules[MAX_RULES];
  struct raw_ip ips[MAX_IPS];
  size_t n_rules = 0, n_ips = 0;

  mtci_tl_reader r;
  mtci_tl_reader_init(&r, plain + 4, len - 4);
  mtci_tl_expect(&r, MTCI_SCONF_ID_CONFIG_SIMPLE);
  int32_t date = mtci_tl_read_int(&r);
  int32_t expires = mtci_tl_read_int(&r);
  uint32_t count = mtci_tl_read_bare_vector(&r, RULE_MIN_SIZE);
  for (uint32_t i = 0; i < count && !r.err; i++) {
    if (n_rules == MAX_RULES) return MTC_ERR_INTERNAL; /* bounded by the vector check */
    struct raw_rule *rule = &rules[n_rules++];
    mtci_tl_expect(&r, MTCI_SCONF_ID_ACCESS_POINT_RULE);
    size_t plen = 0;
    const uint8_t *p = mtci_tl_read_bytes(&r, &plen);
    rule->prefix_rules = (const char *)p;
    rule->prefix_len = plen;
    rule->dc_id = mtci_tl_read_int(&r);
    uint32_t nip = mtci_tl_read_bare_vector(&r, IP_MIN_SIZE);
    rule->first_ip = n_ips;
    for (uint32_t k = 0; k < nip && !r.err; k++) {
      if (n_ips == MAX_IPS) return MTC_ERR_INTERNAL;
      struct raw_ip *ip = &ips[n_ips++];
      uint32_t id = mtci_tl_read_u32(&r);
      if (!r.err && id != MTCI_SCONF_ID_IP_PORT && id != MTCI_SCONF_ID_IP_PORT_SECRET)
        mtci_tl_fail(&r, MTC_ERR_TL_CONSTRUCTOR);
      ip->ipv4 = mtci_tl_read_u32(&r);
      ip->port = mtci_tl_read_int(&r);
      ip->has_secret = id == MTCI_SCONF_ID_IP_PORT_SECRET;
      ip->secret = NULL;
      ip->secret_len = 0;
      if (ip->has_secret) ip->secret = mtci_tl_read_bytes(&r, &ip->secret_len);
    }
    rule->n_ips = n_ips - rule->first_ip;
  }
  int rc = map_tl_error(mtci_tl_read_end(&r));
  if (rc) return rc;

  /* Validity window with ±20 min of clock error (§1.9). */
  if (now < (int64_t)date - MTCI_SCONF_TIME_SLACK) return MTC_ERR_SCONF_FUTURE;
  if (now > (int64_t)expires + MTCI_SCONF_TIME_SLACK) return MTC_ERR_SCONF_EXPIRED;

  mtci_simple_config res;
  memset(&res, 0, sizeof res);
  res.date = date;
  res.expires = expires;
  res.rules = n_rules;
  for (size_t i = 0; i < n_rules && rc == 0; i++) {
    const struct raw_rule *rule = &rules[i];
    if (!mtci_sconf_phone_applies(rule->prefix_rules, rule->prefix_len, phone, phone_len))
      continue;
    res.rules_applied++;
    if (rule->dc_id < 1 || rule->dc_id > MTCI_SCONF_MAX_DC_ID) {
      rc = MTC_ERR_SCONF_BAD_DC;
      break;
    }
    for (size_t k = 0; k < rule->n_ips; k++) {
      const struct raw_ip *ip = &ips[rule->first_ip + k];
      if (!valid_ip(ip->ipv4)) rc = MTC_ERR_SCONF_BAD_IP;
      else if (ip->port < 1 || ip->port > 65535) rc = MTC_ERR_SCONF_BAD_PORT;
      if (rc) break;
      mtci_sconf_endpoint *ep = &res.ep[res.count++];
      ep->dc_id = rule->dc_id;
      ip_text(ip->ipv4, ep->ip, ep->ipv4);
      ep->port = (uint16_t)ip->port;
      if (ip->has_secret) {
        mtci_proxy_secret s;
        if (mtci_proxy_secret_from_binary(ip->secret, ip->secret_len, &s, NULL) != 0) {
          rc = MTC_ERR_SCONF_BAD_SECRET;
          break;
        }
        ep->secret_kind = s.kind;
        mtci_proxy_secret_free(&s);
        memcpy(ep->secret, ip->secret, ip->secret_len); /* 16..199, checked above */
        ep->secret_len = ip->secret_len;
      }
    }
  }
  if (rc == 0 && res.count == 0) rc = MTC_ERR_SCONF_NO_RULES;
  if (rc == 0) *out = res;
  mtci_zeroize(&res, sizeof res);
  return rc;
}

/* ---- the whole pipeline ------------------------------------------------------------ */

static int retryable(int rc) {
  return rc == MTC_ERR_SCONF_BASE64 || rc == MTC_ERR_SCONF_RSA || rc == MTC_ERR_SCONF_HASH;
}

int mtci_simple_config_decode(const mtci_rsa_key *key, const mtci_sconf_part *parts,
                              size_t n_parts, int64_t now, const char *phone, size_t phone_len,
                              mtci_simple_config *out) {
  if (!out) return MTC_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  if (!key) return MTC_ERR_INVALID_ARG;
  int rc = check_parts(parts, n_parts);
  if (rc) return rc;

  size_t order[MTCI_SCONF_MAX_PARTS];
  char b64[MTCI_SCONF_B64_LEN + 1];
  uint8_t plain[MTCI_SCONF_PLAIN_LEN];
  longest_first(parts, n_parts, order);
  /* The filtered length does not depend on the order: checked once here. */
  rc = join_in(parts, n_parts, order, b64);
  if (rc == 0) rc = mtci_sconf_decrypt(key, b64, MTCI_SCONF_B64_LEN, NULL, plain);

  /* §1.6 step 5: other orders of 2 or 3 parts (the first row is the
   * longest-first order itself, already tried). */
  static const uint8_t perms[6][3] = {{0, 1, 2}, {1, 0, 2}, {0, 2, 1},
                                      {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  if (retryable(rc) && (n_parts == 2 || n_parts == 3)) {
    size_t n_perms = n_parts == 2 ? 2 : 6;
    for (size_t p = 1; p < n_perms; p++) {
      size_t alt[3];
      for (size_t i = 0; i < n_parts; i++) alt[i] = order[perms[p][i]];
      if (join_in(parts, n_parts, alt, b64) != 0) continue;
      if (mtci_sconf_decrypt(key, b64, MTCI_SCONF_B64_LEN, NULL, plain) == 0) {
        rc = 0;
        break;
      }
    }
  }
  if (rc == 0) rc = mtci_sconf_parse(plain, now, phone, phone_len, out);
  mtci_zeroize(plain, sizeof plain);
  return rc;
}

void mtci_simple_config_free(mtci_simple_config *c) {
  if (c) mtci_zeroize(c, sizeof *c);
}
