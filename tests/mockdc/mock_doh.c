/* mock_doh: simple-config encoder and mock DoH server; see mock_doh.h. TEST CODE. */
#include "mock_doh.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "base64.h"
#include "bytes.h"
#include "discovery/simple_config.h"
#include "mock_auth.h"
#include "tl/tl.h"

/* ---- encoder ------------------------------------------------------------------ */

struct mock_sconf_key {
  mbedtls_pk_context pk;
  mtci_rsa_key pub;
};

int mock_sconf_key_new(const char *pem, size_t pem_len, mock_sconf_key **out) {
  if (!pem || !out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  mock_sconf_key *k = calloc(1, sizeof *k);
  unsigned char *buf = malloc(pem_len + 1);
  if (!k || !buf) {
    free(k);
    free(buf);
    return MTC_ERR_NOMEM;
  }
  mbedtls_pk_init(&k->pk);
  /* mbedTLS wants the PEM NUL-terminated, the NUL counted. */
  memcpy(buf, pem, pem_len);
  buf[pem_len] = 0;
  int rc = 0;
  uint8_t n[256], e[8];
  if (mbedtls_pk_parse_key(&k->pk, buf, pem_len + 1, NULL, 0) != 0 ||
      mbedtls_pk_get_type(&k->pk) != MBEDTLS_PK_RSA ||
      mbedtls_rsa_get_len(mbedtls_pk_rsa(k->pk)) != 256 ||
      mbedtls_rsa_export_raw(mbedtls_pk_rsa(k->pk), n, sizeof n, NULL, 0, NULL, 0, NULL, 0, e,
                             sizeof e) != 0)
    rc = MTC_ERR_RSA_KEY;
  if (rc == 0) rc = mtci_rsa_key_from_ne(&k->pub, n, sizeof n, e, sizeof e);
  free(buf);
  if (rc) {
    mock_sconf_key_free(k);
    return rc;
  }
  *out = k;
  return 0;
}

void mock_sconf_key_free(mock_sconf_key *k) {
  if (!k) return;
  mbedtls_pk_free(&k->pk);
  mtci_zeroize(k, sizeof *k);
  free(k);
}

const mtci_rsa_key *mock_sconf_key_public(const mock_sconf_key *k) { return k ? &k->pub : NULL; }

int mock_sconf_build_tl(int32_t date, int32_t expires, const mock_sconf_rule *rules,
                        size_t n_rules, uint8_t *out, size_t cap, size_t *len) {
  if ((!rules && n_rules) || !out || !len) return MTC_ERR_INVALID_ARG;
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_SCONF_ID_CONFIG_SIMPLE);
  mtci_tl_write_int(&w, date);
  mtci_tl_write_int(&w, expires);
  mtci_tl_write_int(&w, (int32_t)n_rules); /* bare vector: count only */
  for (size_t i = 0; i < n_rules; i++) {
    const mock_sconf_rule *r = &rules[i];
    const char *pr = r->phone_prefix_rules ? r->phone_prefix_rules : "";
    mtci_tl_write_u32(&w, MTCI_SCONF_ID_ACCESS_POINT_RULE);
    mtci_tl_write_bytes(&w, pr, strlen(pr));
    mtci_tl_write_int(&w, r->dc_id);
    mtci_tl_write_int(&w, (int32_t)r->n_ips);
    for (size_t k = 0; k < r->n_ips; k++) {
      const mock_sconf_ip *ip = &r->ips[k];
      mtci_tl_write_u32(&w, ip->secret ? MTCI_SCONF_ID_IP_PORT_SECRET : MTCI_SCONF_ID_IP_PORT);
      mtci_tl_write_u32(&w, mtci_be32(ip->ip)); /* the int's value is a.b.c.d MSB first */
      mtci_tl_write_int(&w, ip->port);
      if (ip->secret) mtci_tl_write_bytes(&w, ip->secret, ip->secret_len);
    }
  }
  int rc = w.err;
  if (rc == 0 && w.len > cap) rc = MTC_ERR_BUFFER_TOO_SMALL;
  if (rc == 0) {
    memcpy(out, mtci_tl_writer_data(&w), w.len);
    *len = w.len;
  }
  mtci_tl_writer_free(&w);
  return rc;
}

struct rng_ref {
  mtc_random_fn fn;
  void *ud;
};

static int mbed_rng(void *ud, unsigned char *out, size_t len) {
  struct rng_ref *r = ud;
  return r->fn(r->ud, out, len) == 0 ? 0 : -1;
}

int mock_sconf_encrypt(const mock_sconf_key *k, const uint8_t *body, size_t body_len,
                       uint32_t len_field, unsigned faults, mtc_random_fn rnd, void *rnd_ud,
                       char out[345], uint8_t m_out[256], uint8_t plain_out[224]) {
  if (!k || (!body && body_len) || body_len > MTCI_SCONF_HASHED_LEN - 4 || !rnd || !out)
    return MTC_ERR_INVALID_ARG;
  uint8_t plain[MTCI_SCONF_PLAIN_LEN], m[256], c[256], h[32];
  mtci_put_le32(plain, len_field ? len_field : (uint32_t)(4 + body_len));
  if (body_len) memcpy(plain + 4, body, body_len);
  size_t fill = MTCI_SCONF_HASHED_LEN - 4 - body_len;
  if (fill && rnd(rnd_ud, plain + 4 + body_len, fill) != 0) return MTC_ERR_RANDOM;
  mtci_sha256(plain, MTCI_SCONF_HASHED_LEN, h);
  memcpy(plain + MTCI_SCONF_HASHED_LEN, h, 16);
  if (faults & MOCK_SCONF_TAMPER_PLAIN) plain[4] ^= 0x01;

  /* AES key m[0:32]; m < n needs m[0] < n[0] (n[0] >= 0x80 for 2048 bits). */
  int tries = 0;
  do {
    if (++tries > 64 || rnd(rnd_ud, m, 32) != 0) return MTC_ERR_RANDOM;
  } while (m[0] >= k->pub.n[0]);
  mtci_aes256 aes;
  mtci_aes256_init(&aes, m);
  const uint8_t *prev = m + 16; /* iv */
  for (size_t off = 0; off < MTCI_SCONF_PLAIN_LEN; off += 16) {
    uint8_t blk[16];
    for (int i = 0; i < 16; i++) blk[i] = plain[off + (size_t)i] ^ prev[i];
    mtci_aes256_encrypt_block(&aes, blk, m + 32 + off);
    prev = m + 32 + off;
  }
  mtci_aes256_free(&aes);
  if (faults & MOCK_SCONF_TAMPER_AES) m[40] ^= 0x01;

  struct rng_ref rr = {rnd, rnd_ud};
  if (mbedtls_rsa_private(mbedtls_pk_rsa(k->pk), mbed_rng, &rr, m, c) != 0) return MTC_ERR_CRYPTO;
  if (faults & MOCK_SCONF_TAMPER_RSA) c[255] ^= 0x01;
  size_t olen = 0;
  int rc = mtci_base64_encode(c, sizeof c, MTCI_B64_STD, out, 345, &olen);
  if (rc == 0 && olen != MTCI_SCONF_B64_LEN) rc = MTC_ERR_INTERNAL;
  if (m_out) memcpy(m_out, m, sizeof m);
  if (plain_out) memcpy(plain_out, plain, sizeof plain);
  return rc;
}

/* ---- server ------------------------------------------------------------------- */

#define HEAD_CAP 8192
#define NAME_CAP 254

struct doh_conn {
  mock_doh *d;
  mock_conn *c;
  uint64_t timer;
  char *resp; /* answer waiting for the slow timer */
  size_t resp_len;
  int handled;
  struct doh_conn *prev, *next;
};

struct mock_doh {
  mock_loop *loop;
  int listener;
  uint16_t port;
  char name[NAME_CAP + 1];
  mock_sconf_key *key;
  mtci_drbg *drbg;
  int64_t clock_offset;
  int64_t created; /* server clock at creation, for the default dates */
  char txt[MTCI_SCONF_B64_LEN + 1];
  char txt_tampered[MTCI_SCONF_B64_LEN + 1];
  char txt_expired[MTCI_SCONF_B64_LEN + 1];
  mock_doh_switches sw;
  mock_doh_stats st;
  struct doh_conn *conns;
};

static int64_t server_now(const mock_doh *d) { return (int64_t)time(NULL) + d->clock_offset; }

static int encode_config(mock_doh *d, int32_t date, int32_t expires, const mock_sconf_rule *rules,
                         size_t n_rules, unsigned faults, char out[345]) {
  uint8_t body[MTCI_SCONF_HASHED_LEN];
  size_t len = 0;
  int rc = mock_sconf_build_tl(date, expires, rules, n_rules, body, sizeof body - 4, &len);
  if (rc == 0)
    rc = mock_sconf_encrypt(d->key, body, len, 0, faults, mtci_drbg_random, d->drbg, out, NULL,
                            NULL);
  return rc;
}

int mock_doh_set_rules(mock_doh *d, int32_t date, int32_t expires, const mock_sconf_rule *rules,
                       size_t n_rules) {
  if (!d) return MTC_ERR_INVALID_ARG;
  if (!date) date = (int32_t)(d->created - 3600);
  if (!expires) expires = (int32_t)(d->created + 30 * 86400);
  int32_t old_date = (int32_t)(d->created - 30 * 86400);
  int32_t old_exp = (int32_t)(d->created - 2 * 86400);
  int rc = encode_config(d, date, expires, rules, n_rules, 0, d->txt);
  if (rc == 0)
    rc = encode_config(d, date, expires, rules, n_rules, MOCK_SCONF_TAMPER_PLAIN, d->txt_tampered);
  if (rc == 0) rc = encode_config(d, old_date, old_exp, rules, n_rules, 0, d->txt_expired);
  return rc;
}

/* Growable text buffer for responses. */
struct sbuf {
  char *p;
  size_t len, cap;
  int err;
};

__attribute__((format(printf, 2, 3))) static void sb_put(struct sbuf *b, const char *fmt, ...) {
  if (b->err) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->err = 1;
      return;
    }
    if (b->p && (size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t nc = b->cap ? b->cap : 1024;
    while (nc - b->len <= (size_t)n) nc *= 2;
    char *q = realloc(b->p, nc);
    if (!q) {
      b->err = 1;
      return;
    }
    b->p = q;
    b->cap = nc;
  }
}

/* RFC 1123 date, English names whatever the locale. */
static void http_date(int64_t t, char out[40]) {
  static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm)) memset(&tm, 0, sizeof tm);
  snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday,
           mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static char *make_response(mock_doh *d, int code, const char *reason, const char *ctype,
                           const char *body, size_t *len) {
  char date[40];
  http_date(server_now(d), date);
  struct sbuf b = {0};
  sb_put(&b,
         "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
         "Connection: close\r\n\r\n%s",
         code, reason, date, ctype, strlen(body), body);
  if (b.err) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}

static char *json_answer(mock_doh *d, int cloudflare, const char *qname, int status, int with_txt,
                         size_t *len) {
  const char *txt = d->sw.tampered ? d->txt_tampered : d->sw.expired ? d->txt_expired : d->txt;
  const char *q = cloudflare ? "\\\"" : ""; /* Cloudflare: data in literal quotes */
  struct sbuf b = {0};
  sb_put(&b,
         "{\"Status\":%d,\"TC\":false,\"RD\":true,\"RA\":true,\"AD\":false,\"CD\":false,"
         "\"Question\":[{\"name\":\"%s.\",\"type\":16}]",
         status, qname);
  if (with_txt) {
    sb_put(&b, ",\"Answer\":[");
    if (d->sw.add_cname)
      sb_put(&b, "{\"name\":\"%s.\",\"type\":5,\"TTL\":300,\"data\":\"cdn.example.net.\"},", qname);
    const int long_first = cloudflare;
    for (int i = 0; i < 2; i++) {
      int is_long = (i == 0) == long_first;
      const char *p = is_long ? txt : txt + MOCK_DOH_LONG_PART;
      int n = is_long ? MOCK_DOH_LONG_PART : MTCI_SCONF_B64_LEN - MOCK_DOH_LONG_PART;
      sb_put(&b, "%s{\"name\":\"%s.\",\"type\":16,\"TTL\":%d,\"data\":\"%s%.*s%s\"}", i ? "," : "",
             qname, 299, q, n, p, q);
    }
    sb_put(&b, "]");
  } else if (status == 3) {
    sb_put(&b, ",\"Authority\":[{\"name\":\"stel.com.\",\"type\":6,\"TTL\":1800,"
               "\"data\":\"ns1.example.net. hostmaster.example.net. 1 7200 1800 1209600 1800\"}]");
  }
  sb_put(&b, "%s}", cloudflare ? "" : ",\"Comment\":\"Response from 127.0.0.1.\"");
  char *resp = NULL;
  if (!b.err)
    resp = make_response(d, 200, "OK",
                         cloudflare ? "application/dns-json" : "application/json; charset=UTF-8",
                         b.p, len);
  free(b.p);
  return resp;
}

static char *error_response(mock_doh *d, int code, size_t *len) {
  const char *reason = code == 400   ? "Bad Request"
                       : code == 404 ? "Not Found"
                       : code == 405 ? "Method Not Allowed"
                       : code == 415 ? "Unsupported Media Type"
                       : code == 431 ? "Request Header Fields Too Large"
                                     : "Internal Server Error";
  char body[64];
  snprintf(body, sizeof body, "%d %s\n", code, reason);
  return make_response(d, code, reason, "text/plain", body, len);
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int eq_ci(const char *a, size_t an, const char *b) {
  size_t bn = strlen(b);
  if (an != bn) return 0;
  for (size_t i = 0; i < an; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
  return 1;
}

static int hexv(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) into out (cap incl. NUL); -1 on a bad escape or overflow. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int hi = hexv((unsigned char)s[i + 1]), lo = hexv((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      c = hi << 4 | lo;
      i += 2;
    } else if (c == '+') {
      c = ' ';
    }
    if (o + 1 >= cap) return -1;
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return (int)o;
}

/* A DNS name as we accept it: LDH labels and dots, no trailing dot. */
static int clean_name(char *s) {
  size_t n = strlen(s);
  if (n && s[n - 1] == '.') s[--n] = '\0';
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '.' || c == '_'))
      return 0;
  }
  return 1;
}

/* Build the answer to one request head (NUL-terminated, CRLFs intact).
 * Returns the response, or NULL for "hang" (and on allocation failure). */
static char *handle_request(mock_doh *d, char *head, size_t *len) {
  char *eol = strstr(head, "\r\n");
  if (!eol) {
    d->st.bad_requests++;
    return error_response(d, 400, len);
  }
  *eol = '\0';
  char *sp1 = strchr(head, ' ');
  char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
    d->st.bad_requests++;
    return error_response(d, 400, len);
  }
  *sp1 = *sp2 = '\0';
  const char *method = head, *target = sp1 + 1;

  /* Headers: Host and Accept. */
  int dns_json = 0;
  d->st.last_host[0] = '\0';
  for (char *line = eol + 2; *line;) {
    char *end = strstr(line, "\r\n");
    if (!end) break;
    *end = '\0';
    char *colon = strchr(line, ':');
    if (colon) {
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      if (eq_ci(line, (size_t)(colon - line), "host"))
        snprintf(d->st.last_host, sizeof d->st.last_host, "%s", v);
      if (eq_ci(line, (size_t)(colon - line), "accept") && strstr(v, "application/dns-json"))
        dns_json = 1;
    }
    line = end + 2;
  }

  const char *q = strchr(target, '?');
  size_t path_len = q ? (size_t)(q - target) : strlen(target);
  int google = eq_ci(target, path_len, "/resolve");
  int cloudflare = eq_ci(target, path_len, "/dns-query");
  if (!google && !cloudflare) {
    d->st.bad_requests++;
    return error_response(d, 404, len);
  }
  if (strcmp(method, "GET") != 0) {
    d->st.bad_requests++;
    return error_response(d, 405, len);
  }
  if (cloudflare && !dns_json) {
    d->st.bad_requests++;
    return error_response(d, 415, len);
  }

  char name[NAME_CAP + 1] = "", type[16] = "";
  int have_name = 0, have_type = 0, bad = 0;
  d->st.last_padding_len = 0;
  for (const char *p = q ? q + 1 : ""; *p && !bad;) {
    const char *amp = strchr(p, '&');
    size_t n = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    size_t kn = eq ? (size_t)(eq - p) : n;
    const char *v = eq ? eq + 1 : p + n;
    size_t vn = (size_t)(p + n - v);
    if (eq_ci(p, kn, "name")) {
      have_name = pct_decode(v, vn, name, sizeof name) >= 0 && clean_name(name);
      bad = !have_name;
    } else if (eq_ci(p, kn, "type")) {
      have_type = pct_decode(v, vn, type, sizeof type) > 0;
      bad = !have_type;
    } else if (eq_ci(p, kn, "random_padding")) {
      d->st.last_padding_len = vn;
    }
    p += n + (amp ? 1 : 0);
  }
  if (bad || !have_name || !have_type) {
    d->st.bad_requests++;
    return error_response(d, 400, len);
  }
  if (google) d->st.google++;
  else d->st.cloudflare++;

  if (d->sw.hang) {
    d->st.hung++;
    return NULL;
  }
  if (d->sw.fail) {
    d->st.failed++;
    return error_response(d, 500, len);
  }
  if (!eq_ci(name, strlen(name), d->name)) {
    d->st.nxdomain++;
    return json_answer(d, cloudflare, name, 3, 0, len);
  }
  int txt = eq_ci(type, strlen(type), "16") || eq_ci(type, strlen(type), "TXT") ||
            eq_ci(type, strlen(type), "ANY");
  if (!txt) {
    d->st.nodata++;
    return json_answer(d, cloudflare, name, 0, 0, len);
  }
  d->st.answered++;
  return json_answer(d, cloudflare, name, 0, 1, len);
}

static void conn_unlink(struct doh_conn *e) {
  mock_doh *d = e->d;
  if (e->prev) e->prev->next = e->next;
  else d->conns = e->next;
  if (e->next) e->next->prev = e->prev;
  if (e->timer) mock_loop_cancel_timer(d->loop, e->timer);
  free(e->resp);
  free(e);
}

static void send_and_close(struct doh_conn *e, const char *resp, size_t len) {
  mock_conn_send(e->c, resp, len);
  mock_conn_close_after_flush(e->c);
}

static void on_slow_timer(mock_loop *l, void *ud) {
  (void)l;
  struct doh_conn *e = ud;
  e->timer = 0;
  if (e->resp) send_and_close(e, e->resp, e->resp_len);
  free(e->resp);
  e->resp = NULL;
}

/* After a 431 the client may still be sending: keep reading (and dropping)
 * for a moment, so that closing does not reset the connection before the
 * client has read the answer. */
#define LINGER_MS 100

static void on_linger_timer(mock_loop *l, void *ud) {
  (void)l;
  struct doh_conn *e = ud;
  e->timer = 0;
  mock_conn_close_after_flush(e->c);
}

static void on_data(mock_conn *c, void *ud) {
  struct doh_conn *e = ud;
  mock_doh *d = e->d;
  size_t len;
  const uint8_t *p = mock_conn_data(c, &len);
  if (e->handled) {
    mock_conn_consume(c, len); /* one request per connection */
    return;
  }
  const uint8_t *end = NULL;
  for (size_t i = 0; i + 4 <= len && i + 4 <= HEAD_CAP; i++)
    if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
      end = p + i + 4;
      break;
    }
  if (!end) {
    if (len >= HEAD_CAP) {
      e->handled = 1;
      d->st.bad_requests++;
      mock_conn_consume(c, len);
      size_t n = 0;
      char *r = error_response(d, 431, &n);
      if (r) mock_conn_send(c, r, n);
      free(r);
      e->timer = mock_loop_timer(d->loop, LINGER_MS, on_linger_timer, e);
      if (!e->timer) mock_conn_close_after_flush(c);
    }
    return;
  }
  size_t hl = (size_t)(end - p);
  char head[HEAD_CAP + 1];
  memcpy(head, p, hl);
  head[hl] = '\0';
  mock_conn_consume(c, len);
  e->handled = 1;
  size_t n = 0;
  char *r = handle_request(d, head, &n);
  if (!r) {
    if (!d->sw.hang) mock_conn_close(c); /* allocation failure */
    return;                              /* hang: keep the connection, say nothing */
  }
  if (d->sw.slow_ms) {
    e->resp = r;
    e->resp_len = n;
    e->timer = mock_loop_timer(d->loop, d->sw.slow_ms, on_slow_timer, e);
    if (e->timer) return;
    e->resp = NULL;
  }
  send_and_close(e, r, n);
  free(r);
}

static void on_close(mock_conn *c, void *ud, int reason) {
  (void)c;
  (void)reason;
  conn_unlink(ud);
}

static const mock_conn_handler k_handler = {NULL, on_data, NULL, on_close};

static void on_accept(mock_loop *l, mock_conn *c, void *ud) {
  (void)l;
  mock_doh *d = ud;
  struct doh_conn *e = calloc(1, sizeof *e);
  if (!e) {
    mock_conn_close(c);
    return;
  }
  e->d = d;
  e->c = c;
  e->next = d->conns;
  if (d->conns) d->conns->prev = e;
  d->conns = e;
  d->st.connections++;
  mock_conn_set_handler(c, &k_handler, e);
}

int mock_doh_new(mock_loop *l, const mock_doh_config *cfg, mock_doh **out) {
  if (!l || !cfg || !out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  const char *name = cfg->name ? cfg->name : MOCK_DOH_DEFAULT_NAME;
  if (strlen(name) > NAME_CAP) return MTC_ERR_INVALID_ARG;
  mock_doh *d = calloc(1, sizeof *d);
  if (!d) return MTC_ERR_NOMEM;
  d->loop = l;
  snprintf(d->name, sizeof d->name, "%s", name);
  size_t nl = strlen(d->name);
  if (nl && d->name[nl - 1] == '.') d->name[nl - 1] = '\0';
  d->clock_offset = cfg->clock_offset;
  d->created = server_now(d);
  const char *pem = cfg->key_pem ? cfg->key_pem : mock_test_key_pem(0);
  size_t pem_len = cfg->key_pem ? cfg->key_pem_len : (pem ? strlen(pem) : 0);
  int rc = pem ? 0 : MTC_ERR_RSA_KEY;
  d->drbg = mtci_drbg_new();
  if (rc == 0 && !d->drbg) rc = MTC_ERR_NOMEM;
  if (rc == 0) rc = mock_sconf_key_new(pem, pem_len, &d->key);
  if (rc == 0) rc = mock_doh_set_rules(d, cfg->date, cfg->expires, cfg->rules, cfg->n_rules);
  if (rc == 0) {
    int id = mock_loop_listen(l, cfg->port, on_accept, d, &d->port);
    if (id < 0) rc = id;
    else d->listener = id;
  }
  if (rc) {
    mock_doh_free(d);
    return rc;
  }
  *out = d;
  return 0;
}

void mock_doh_free(mock_doh *d) {
  if (!d) return;
  if (d->listener > 0) mock_loop_unlisten(d->loop, d->listener);
  while (d->conns) {
    struct doh_conn *e = d->conns;
    mock_conn_set_handler(e->c, NULL, NULL); /* no callbacks into freed memory */
    mock_conn_close(e->c);
    conn_unlink(e);
  }
  mock_sconf_key_free(d->key);
  mtci_drbg_free(d->drbg);
  free(d);
}

uint16_t mock_doh_port(const mock_doh *d) { return d ? d->port : 0; }
const mtci_rsa_key *mock_doh_public_key(const mock_doh *d) {
  return d ? mock_sconf_key_public(d->key) : NULL;
}
const char *mock_doh_txt(const mock_doh *d) { return d ? d->txt : NULL; }
void mock_doh_set_switches(mock_doh *d, const mock_doh_switches *sw) {
  if (d && sw) d->sw = *sw;
}
void mock_doh_set_clock_offset(mock_doh *d, int64_t offset) {
  if (d) d->clock_offset = offset;
}
void mock_doh_stats_get(const mock_doh *d, mock_doh_stats *out) {
  if (d && out) *out = d->st;
}
