/* MTProxy secrets, tg://proxy and tg://socks links: parsing and validation.
 * The rules and the decisions behind them are at the top of proxy_link.h. */
#include "transport/proxy_link.h"

#include <string.h>

#include "base64.h"
#include "crypto/crypto.h"

/* Largest binary a text secret may decode to before we call it too long:
 * a valid one is at most 199 bytes. */
#define SECRET_BIN_CAP 512
/* Largest secret text kept from a link (hex of 199 bytes is 398 chars). */
#define SECRET_TEXT_CAP 1024

/* ---- small character helpers ------------------------------------------ */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int hex_val(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
static unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}
/* Case-insensitive: does s[0..n) start with the lowercase ASCII prefix p? */
static int has_prefix_ci(const char *s, size_t n, const char *p) {
  size_t k = strlen(p);
  if (n < k) return 0;
  for (size_t i = 0; i < k; i++)
    if (lower((unsigned char)s[i]) != (unsigned char)p[i]) return 0;
  return 1;
}
static int equals_ci(const char *s, size_t n, const char *p) {
  return strlen(p) == n && has_prefix_ci(s, n, p);
}

static int fail(int code, const char *text, const char **msg) {
  if (msg) *msg = text;
  return code;
}

/* ---- addresses and names ---------------------------------------------- */

int mtci_parse_ipv4(const char *s, size_t n, uint8_t out[4]) {
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= n || s[i] != '.') return -1;
      i++;
    }
    size_t start = i;
    unsigned v = 0;
    while (i < n && is_digit((unsigned char)s[i]) && i - start < 3)
      v = v * 10 + (unsigned)(s[i++] - '0');
    size_t digits = i - start;
    /* "01" is octal to inet_aton and decimal to others: refuse the doubt. */
    if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0')) return -1;
    out[part] = (uint8_t)v;
  }
  return i == n ? 0 : -1;
}

int mtci_parse_ipv6(const char *s, size_t n, uint8_t out[16]) {
  uint16_t w[8];
  int count = 0, gap = -1; /* gap: index in w where "::" stands */
  size_t i = 0;
  if (n < 2 || n > 45) return -1;
  if (s[0] == ':') {
    if (s[1] != ':') return -1;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    size_t start = i;
    unsigned v = 0;
    while (i < n && hex_val((unsigned char)s[i]) >= 0 && i - start < 5)
      v = (v << 4) | (unsigned)hex_val((unsigned char)s[i++]);
    if (i < n && s[i] == '.') { /* embedded IPv4 closes the address */
      uint8_t v4[4];
      if (count > 6 || mtci_parse_ipv4(s + start, n - start, v4) != 0) return -1;
      w[count++] = (uint16_t)(v4[0] << 8 | v4[1]);
      w[count++] = (uint16_t)(v4[2] << 8 | v4[3]);
      i = n;
      break;
    }
    if (i == start || i - start > 4 || count >= 8) return -1;
    w[count++] = (uint16_t)v;
    if (i == n) break;
    if (s[i] != ':') return -1;
    i++;
    if (i < n && s[i] == ':') {
      if (gap >= 0) return -1;
      gap = count;
      i++;
    } else if (i == n) {
      return -1; /* a single trailing ':' */
    }
  }
  if (gap < 0 ? count != 8 : count > 7) return -1;
  int fill = 8 - count;
  memset(out, 0, 16);
  for (int k = 0, o = 0; k < count; k++, o++) {
    if (k == gap) o += fill;
    out[2 * o] = (uint8_t)(w[k] >> 8);
    out[2 * o + 1] = (uint8_t)w[k];
  }
  return 0;
}

int mtci_is_ldh_name(const char *s, size_t n, size_t max_len) {
  if (n == 0 || n > max_len) return 0;
  size_t label = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '.') {
      if (label == 0 || s[i - 1] == '-') return 0; /* empty label or trailing '-' */
      label = 0;
      continue;
    }
    if (!is_alpha(c) && !is_digit(c) && c != '-') return 0;
    if (c == '-' && label == 0) return 0; /* leading '-' */
    if (++label > 63) return 0;
  }
  return label > 0 && s[n - 1] != '-';
}

/* ---- secrets ------------------------------------------------------------ */

/* Decode hex, else base64url / base64 into out; returns length, -1 on a bad
 * encoding, -2 if the result would exceed cap. */
static long decode_secret_text(const char *t, size_t n, uint8_t *out, size_t cap) {
  int all_hex = (n % 2 == 0);
  for (size_t i = 0; i < n && all_hex; i++)
    if (hex_val((unsigned char)t[i]) < 0) all_hex = 0;
  if (all_hex) {
    if (n / 2 > cap) return -2;
    for (size_t i = 0; i < n; i += 2)
      out[i / 2] = (uint8_t)(hex_val((unsigned char)t[i]) << 4 | hex_val((unsigned char)t[i + 1]));
    return (long)(n / 2);
  }
  /* Either alphabet, not mixed; '=' optional; canonical only (base64.h). */
  size_t o = 0;
  int rc = mtci_base64_decode(t, n, MTCI_B64_STD | MTCI_B64_URL, out, cap, &o);
  if (rc == MTC_ERR_BUFFER_TOO_SMALL) return -2;
  if (rc < 0) return -1;
  return (long)o;
}

int mtci_proxy_secret_from_binary(const uint8_t *b, size_t n, mtci_proxy_secret *out,
                                  const char **msg) {
  mtci_proxy_secret tmp;
  memset(&tmp, 0, sizeof tmp);
  if (out) memset(out, 0, sizeof *out);
  if (!b && n) return fail(MTC_ERR_INVALID_ARG, "no secret bytes", msg);
  if (n < MTCI_PROXY_KEY_LEN)
    return fail(MTC_ERR_SECRET_LENGTH, "secret shorter than 16 bytes", msg);
  if (n == MTCI_PROXY_KEY_LEN) {
    tmp.kind = MTCI_SECRET_SIMPLE;
    memcpy(tmp.key, b, MTCI_PROXY_KEY_LEN);
  } else if (b[0] == 0xdd) {
    if (n != 1 + MTCI_PROXY_KEY_LEN)
      return fail(MTC_ERR_SECRET_LENGTH, "a 0xdd secret must be exactly 17 bytes", msg);
    tmp.kind = MTCI_SECRET_DD;
    memcpy(tmp.key, b + 1, MTCI_PROXY_KEY_LEN);
  } else if (b[0] == 0xee) {
    size_t dlen = n - 1 - MTCI_PROXY_KEY_LEN;
    if (dlen < MTCI_PROXY_DOMAIN_MIN)
      return fail(MTC_ERR_SECRET_DOMAIN_LENGTH, "fake-TLS secret has no domain", msg);
    if (dlen > MTCI_PROXY_DOMAIN_MAX)
      return fail(MTC_ERR_SECRET_DOMAIN_LENGTH, "fake-TLS domain longer than 182 bytes", msg);
    const char *d = (const char *)b + 1 + MTCI_PROXY_KEY_LEN;
    if (!mtci_is_ldh_name(d, dlen, MTCI_PROXY_DOMAIN_MAX))
      return fail(MTC_ERR_SECRET_DOMAIN, "fake-TLS domain is not a valid host name", msg);
    tmp.kind = MTCI_SECRET_EE;
    memcpy(tmp.key, b + 1, MTCI_PROXY_KEY_LEN);
    memcpy(tmp.domain, d, dlen);
    tmp.domain[dlen] = '\0';
    tmp.domain_len = dlen;
  } else {
    return fail(MTC_ERR_SECRET_TAG, "secret longer than 16 bytes must start with 0xdd or 0xee",
                msg);
  }
  if (out) *out = tmp;
  mtci_zeroize(&tmp, sizeof tmp);
  return 0;
}

int mtci_proxy_secret_parse(const char *text, size_t len, mtci_proxy_secret *out,
                            const char **msg) {
  uint8_t bin[SECRET_BIN_CAP];
  if (out) memset(out, 0, sizeof *out);
  if (!text && len) return fail(MTC_ERR_INVALID_ARG, "no secret text", msg);
  long n = decode_secret_text(text, len, bin, sizeof bin);
  int rc;
  if (n == -1) rc = fail(MTC_ERR_SECRET_ENCODING, "secret is not hex, base64url or base64", msg);
  else if (n == -2) rc = fail(MTC_ERR_SECRET_LENGTH, "secret is far too long", msg);
  else rc = mtci_proxy_secret_from_binary(bin, (size_t)n, out, msg);
  mtci_zeroize(bin, sizeof bin);
  return rc;
}

int mtci_proxy_secret_to_binary(const mtci_proxy_secret *s, uint8_t *out, size_t cap) {
  if (!s || (!out && cap)) return MTC_ERR_INVALID_ARG;
  size_t n;
  switch (s->kind) {
  case MTCI_SECRET_SIMPLE: n = MTCI_PROXY_KEY_LEN; break;
  case MTCI_SECRET_DD: n = 1 + MTCI_PROXY_KEY_LEN; break;
  case MTCI_SECRET_EE:
    if (s->domain_len < MTCI_PROXY_DOMAIN_MIN || s->domain_len > MTCI_PROXY_DOMAIN_MAX)
      return MTC_ERR_INVALID_ARG;
    n = 1 + MTCI_PROXY_KEY_LEN + s->domain_len;
    break;
  default: return MTC_ERR_INVALID_ARG;
  }
  if (cap < n) return MTC_ERR_BUFFER_TOO_SMALL;
  if (s->kind == MTCI_SECRET_SIMPLE) {
    memcpy(out, s->key, MTCI_PROXY_KEY_LEN);
  } else {
    out[0] = s->kind == MTCI_SECRET_DD ? 0xdd : 0xee;
    memcpy(out + 1, s->key, MTCI_PROXY_KEY_LEN);
    if (s->kind == MTCI_SECRET_EE) memcpy(out + 1 + MTCI_PROXY_KEY_LEN, s->domain, s->domain_len);
  }
  return (int)n;
}

void mtci_proxy_secret_free(mtci_proxy_secret *s) {
  if (s) mtci_zeroize(s, sizeof *s);
}

/* ---- links -------------------------------------------------------------- */

/* 1 if every '%' in s[0..n) is followed by two hex digits not encoding 0. */
static int escapes_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') continue;
    if (n - i < 3) return 0;
    int hi = hex_val((unsigned char)s[i + 1]), lo = hex_val((unsigned char)s[i + 2]);
    if (hi < 0 || lo < 0 || (hi | lo) == 0) return 0;
    i += 2;
  }
  return 1;
}

/* Percent-decode s[0..n) (escapes already checked) into out[0..cap); '+'
 * becomes a space if plus_space. Returns the length or -1 if over cap. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap, int plus_space) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      c = (char)(hex_val((unsigned char)s[i + 1]) << 4 | hex_val((unsigned char)s[i + 2]));
      i += 2;
    } else if (c == '+' && plus_space) {
      c = ' ';
    }
    if (o >= cap) return -1;
    out[o++] = c;
  }
  return (long)o;
}

enum { P_SERVER, P_PORT, P_SECRET, P_USER, P_PASS, P_COUNT };
static const char *const param_names[P_COUNT] = {"server", "port", "secret", "user", "pass"};

struct raw_param {
  const char *v; /* still percent-encoded, inside the link */
  size_t n;
  int seen;
};

/* Web hosts that serve proxy links: [www.]t.me, telegram.me, telegram.dog. */
static int is_tme_host(const char *h, size_t n) {
  if (has_prefix_ci(h, n, "www.")) {
    h += 4;
    n -= 4;
  }
  return equals_ci(h, n, "t.me") || equals_ci(h, n, "telegram.me") ||
         equals_ci(h, n, "telegram.dog");
}

static int parse_server(const char *v, size_t n, mtci_proxy_link *out, const char **msg) {
  char host[MTCI_PROXY_HOST_MAX + 3];
  long hn = pct_decode(v, n, host, sizeof host, 0);
  if (hn < 0) return fail(MTC_ERR_LINK_SERVER, "server name longer than 253 characters", msg);
  const char *h = host;
  size_t len = (size_t)hn;
  int bracketed = len >= 2 && h[0] == '[' && h[len - 1] == ']';
  if (bracketed) {
    h++;
    len -= 2;
  }
  if (memchr(h, ':', len) || bracketed) {
    if (mtci_parse_ipv6(h, len, out->addr) != 0)
      return fail(MTC_ERR_LINK_SERVER, "server is not a valid IPv6 address", msg);
    out->family = MTCI_HOST_IPV6;
  } else if (mtci_parse_ipv4(h, len, out->addr) == 0) {
    out->family = MTCI_HOST_IPV4;
  } else {
    if (len > MTCI_PROXY_HOST_MAX)
      return fail(MTC_ERR_LINK_SERVER, "server name longer than 253 characters", msg);
    if (!mtci_is_ldh_name(h, len, MTCI_PROXY_HOST_MAX))
      return fail(MTC_ERR_LINK_SERVER, "server is not an IP address or a valid host name", msg);
    /* An all-digit last label is a mistyped IPv4 address, never a TLD. */
    size_t k = len;
    while (k > 0 && h[k - 1] != '.') k--;
    int numeric = 1;
    for (size_t i = k; i < len; i++)
      if (!is_digit((unsigned char)h[i])) numeric = 0;
    if (numeric) return fail(MTC_ERR_LINK_SERVER, "server is not a valid IPv4 address", msg);
    out->family = MTCI_HOST_NAME;
  }
  memcpy(out->host, h, len);
  out->host[len] = '\0';
  return 0;
}

static int parse_port(const char *v, size_t n, uint16_t *port, const char **msg) {
  char buf[6];
  long len = pct_decode(v, n, buf, 5, 0);
  if (len <= 0) return fail(MTC_ERR_LINK_PORT, "port is not a number in 1..65535", msg);
  unsigned long p = 0;
  for (long i = 0; i < len; i++) {
    if (!is_digit((unsigned char)buf[i]))
      return fail(MTC_ERR_LINK_PORT, "port is not a decimal number", msg);
    p = p * 10 + (unsigned long)(buf[i] - '0');
  }
  if (p == 0 || p > 65535) return fail(MTC_ERR_LINK_PORT, "port is not in 1..65535", msg);
  *port = (uint16_t)p;
  return 0;
}

static int parse_link(const char *link, size_t len, mtci_proxy_link *out, const char **msg,
                      char *scratch, size_t scratch_cap) {
  if (!link && len) return fail(MTC_ERR_INVALID_ARG, "no link", msg);
  if (len > MTCI_PROXY_LINK_MAX)
    return fail(MTC_ERR_LINK_SYNTAX, "link longer than 4096 bytes", msg);
  /* Trim surrounding ASCII whitespace (links get pasted with newlines). */
  while (len > 0 && (link[0] == ' ' || link[0] == '\t' || link[0] == '\r' || link[0] == '\n')) {
    link++;
    len--;
  }
  while (len > 0 && (link[len - 1] == ' ' || link[len - 1] == '\t' || link[len - 1] == '\r' ||
                     link[len - 1] == '\n'))
    len--;
  if (len == 0) return fail(MTC_ERR_LINK_SYNTAX, "empty link", msg);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)link[i];
    if (c <= 0x20 || c >= 0x7f)
      return fail(MTC_ERR_LINK_CHAR, "link contains a space, control or non-ASCII character", msg);
  }
  const char *hash = memchr(link, '#', len);
  if (hash) len = (size_t)(hash - link);

  /* Scheme and host: what remains starts at the kind ("proxy" / "socks"). */
  const char *p;
  size_t n;
  if (has_prefix_ci(link, len, "tg:")) {
    size_t skip = has_prefix_ci(link, len, "tg://") ? 5 : 3;
    p = link + skip;
    n = len - skip;
  } else {
    size_t skip = 0;
    if (has_prefix_ci(link, len, "https://")) skip = 8;
    else if (has_prefix_ci(link, len, "http://")) skip = 7;
    const char *h = link + skip;
    size_t hn = len - skip;
    size_t hl = 0;
    while (hl < hn && h[hl] != '/' && h[hl] != '?') hl++;
    if (!is_tme_host(h, hl))
      return fail(MTC_ERR_LINK_SCHEME, "not a tg: link or a t.me / telegram.me / telegram.dog link",
                  msg);
    if (hl == hn || h[hl] != '/')
      return fail(MTC_ERR_LINK_KIND, "link has no proxy or socks path", msg);
    p = h + hl + 1;
    n = hn - hl - 1;
  }
  size_t kl = 0;
  while (kl < n && p[kl] != '?') kl++;
  size_t kind_len = kl;
  if (kind_len > 0 && p[kind_len - 1] == '/') kind_len--; /* "proxy/?..." */
  if (equals_ci(p, kind_len, "proxy")) out->type = MTCI_PROXY_MTPROTO;
  else if (equals_ci(p, kind_len, "socks")) out->type = MTCI_PROXY_SOCKS5;
  else return fail(MTC_ERR_LINK_KIND, "not a proxy or socks link", msg);

  /* Query: collect the known parameters, still encoded. */
  struct raw_param prm[P_COUNT];
  memset(prm, 0, sizeof prm);
  const char *q = kl < n ? p + kl + 1 : p + n;
  size_t qn = kl < n ? n - kl - 1 : 0;
  if (!escapes_ok(q, qn))
    return fail(MTC_ERR_LINK_PERCENT, "malformed %XX escape or %00 in link", msg);
  size_t i = 0;
  while (i < qn) {
    size_t seg = i;
    while (i < qn && q[i] != '&') i++;
    size_t seg_len = i - seg;
    if (i < qn) i++; /* skip '&' */
    if (seg_len == 0) continue;
    const char *s = q + seg;
    const char *eq = memchr(s, '=', seg_len);
    size_t key_len = eq ? (size_t)(eq - s) : seg_len;
    if (key_len == 0) return fail(MTC_ERR_LINK_SYNTAX, "link parameter without a name", msg);
    char key[8];
    long kn = pct_decode(s, key_len, key, sizeof key, 1);
    if (kn < 0) continue; /* longer than any name we know */
    int which = -1;
    for (int k = 0; k < P_COUNT; k++)
      if (strlen(param_names[k]) == (size_t)kn && memcmp(key, param_names[k], (size_t)kn) == 0)
        which = k;
    if (which < 0) continue;
    if (out->type == MTCI_PROXY_MTPROTO ? (which == P_USER || which == P_PASS) : which == P_SECRET)
      continue; /* belongs to the other kind of link: ignored like any unknown name */
    if (prm[which].seen) {
      static const char *const dup[P_COUNT] = {
          "parameter 'server' appears twice", "parameter 'port' appears twice",
          "parameter 'secret' appears twice", "parameter 'user' appears twice",
          "parameter 'pass' appears twice"};
      return fail(MTC_ERR_LINK_DUPLICATE, dup[which], msg);
    }
    prm[which].seen = 1;
    prm[which].v = eq ? eq + 1 : s + seg_len;
    prm[which].n = eq ? seg_len - key_len - 1 : 0;
  }

  if (prm[P_SERVER].n == 0) return fail(MTC_ERR_LINK_MISSING, "server is missing", msg);
  if (prm[P_PORT].n == 0) return fail(MTC_ERR_LINK_MISSING, "port is missing", msg);
  if (out->type == MTCI_PROXY_MTPROTO && prm[P_SECRET].n == 0)
    return fail(MTC_ERR_LINK_MISSING, "secret is missing", msg);

  int rc = parse_server(prm[P_SERVER].v, prm[P_SERVER].n, out, msg);
  if (rc) return rc;
  rc = parse_port(prm[P_PORT].v, prm[P_PORT].n, &out->port, msg);
  if (rc) return rc;

  if (out->type == MTCI_PROXY_MTPROTO) {
    long sn = pct_decode(prm[P_SECRET].v, prm[P_SECRET].n, scratch, scratch_cap, 0);
    if (sn < 0) return fail(MTC_ERR_SECRET_LENGTH, "secret is far too long", msg);
    return mtci_proxy_secret_parse(scratch, (size_t)sn, &out->secret, msg);
  }
  long un = pct_decode(prm[P_USER].v, prm[P_USER].n, out->user, MTCI_PROXY_CRED_MAX, 1);
  if (un < 0) return fail(MTC_ERR_LINK_CREDENTIALS, "user longer than 255 bytes", msg);
  long pn = pct_decode(prm[P_PASS].v, prm[P_PASS].n, out->pass, MTCI_PROXY_CRED_MAX, 1);
  if (pn < 0) return fail(MTC_ERR_LINK_CREDENTIALS, "pass longer than 255 bytes", msg);
  if (un == 0 && pn > 0) return fail(MTC_ERR_LINK_CREDENTIALS, "pass given without user", msg);
  out->user_len = (size_t)un;
  out->pass_len = (size_t)pn;
  out->user[un] = '\0';
  out->pass[pn] = '\0';
  out->has_auth = un > 0;
  return 0;
}

int mtci_proxy_link_parse(const char *link, size_t len, mtci_proxy_link *out, const char **msg) {
  if (!out) return fail(MTC_ERR_INVALID_ARG, "no output", msg);
  memset(out, 0, sizeof *out);
  char scratch[SECRET_TEXT_CAP];
  int rc = parse_link(link, len, out, msg, scratch, sizeof scratch);
  mtci_zeroize(scratch, sizeof scratch);
  if (rc) mtci_proxy_link_free(out);
  return rc;
}

void mtci_proxy_link_free(mtci_proxy_link *l) {
  if (l) mtci_zeroize(l, sizeof *l);
}
