/* Persistent context state <-> JSON text (pure). The format and every
 * validation rule are described at the top of store.h. */
#include "store.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "bytes.h"
#include "crypto/crypto.h"
#include "transport/proxy_link.h"

#define KEY_B64_LEN 344 /* base64 of 256 bytes, with "==" */
#define PATH_CAP 48     /* "dcs[15].future_salts[7]" and the like */

_Static_assert(MTCI_STATE_KEY_LEN == MTCI_AUTH_KEY_LEN, "auth key size");
_Static_assert(MTCI_STATE_SECRET_MAX == MTCI_PROXY_SECRET_MAX, "secret size");

/* ---- messages ----------------------------------------------------------- */

int mtci_store_failf(int code, char *msg, size_t msg_len, const char *fmt, ...) {
  if (msg && msg_len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Path of a nested field, e.g. "dcs[1].addrs[3]". A path that does not fit
 * is cut short, which only shortens a message. */
static void pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, cap, fmt, ap);
  va_end(ap);
}

/* "prefix.name", or "name" at the top level. */
static void join_path(char *out, size_t cap, const char *prefix, const char *name) {
  if (!name[0]) snprintf(out, cap, "%s", prefix);
  else if (prefix[0]) snprintf(out, cap, "%s.%s", prefix, name);
  else snprintf(out, cap, "%s", name);
}

#define CORRUPT(...) mtci_store_failf(MTC_ERR_STORE_CORRUPT, msg, msg_len, __VA_ARGS__)

/* ---- encodings ---------------------------------------------------------- */

static int hex_digit(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decimal u64: digits only, no leading zeros (except "0"), no overflow. */
static int dec_u64(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 20 || (n > 1 && s[0] == '0')) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* Decimal i64: an optional '-', then as dec_u64; "-0" refused. */
static int dec_i64(const char *s, size_t n, int64_t *out) {
  int neg = n > 0 && s[0] == '-';
  uint64_t mag;
  if (dec_u64(s + neg, n - (size_t)neg, &mag) != 0) return -1;
  if (neg) {
    if (mag == 0 || mag > (uint64_t)INT64_MAX + 1) return -1;
    *out = mtci_i64_of(0 - mag); /* two's complement of the magnitude */
  } else {
    if (mag > (uint64_t)INT64_MAX) return -1;
    *out = (int64_t)mag;
  }
  return 0;
}

static uint64_t key_id_of(const uint8_t key[MTCI_STATE_KEY_LEN]) {
  uint8_t id[8];
  mtci_auth_key_id(key, id);
  return mtci_le64(id);
}

/* ---- state helpers ------------------------------------------------------ */

void mtci_state_init(mtci_state *st) {
  if (!st) return;
  mtci_zeroize(st, sizeof *st);
  st->version = MTCI_STATE_VERSION;
}

void mtci_state_clear(mtci_state *st) {
  if (st) mtci_zeroize(st, sizeof *st);
}

mtci_state_dc *mtci_state_find_dc(mtci_state *st, int dc_id) {
  if (!st) return NULL;
  for (int i = 0; i < st->n_dcs && i < MTCI_STATE_MAX_DCS; i++)
    if (st->dcs[i].dc_id == dc_id) return &st->dcs[i];
  return NULL;
}

mtci_state_dc *mtci_state_add_dc(mtci_state *st, int dc_id) {
  if (!st || dc_id < 1 || dc_id > MTCI_STATE_MAX_DC_ID) return NULL;
  mtci_state_dc *d = mtci_state_find_dc(st, dc_id);
  if (d) return d;
  if (st->n_dcs < 0 || st->n_dcs >= MTCI_STATE_MAX_DCS) return NULL;
  d = &st->dcs[st->n_dcs++];
  mtci_zeroize(d, sizeof *d);
  d->dc_id = dc_id;
  return d;
}

/* ---- validation of a state in memory ------------------------------------ */

static int range(int64_t v, int64_t lo, int64_t hi, const char *prefix, const char *name,
                 char *msg, size_t msg_len) {
  if (v >= lo && v <= hi) return 0;
  char p[PATH_CAP + 32];
  join_path(p, sizeof p, prefix, name);
  return CORRUPT("%s: must be %" PRId64 "..%" PRId64, p, lo, hi);
}
#define RANGE(v, lo, hi, prefix, name)                                                             \
  do {                                                                                             \
    int r_ = range((int64_t)(v), (lo), (hi), (prefix), (name), msg, msg_len);                      \
    if (r_) return r_;                                                                             \
  } while (0)

static int source_ok(const char *s, size_t cap) {
  const char *end = memchr(s, '\0', cap);
  if (!end || end == s) return 0;
  for (const char *p = s; p < end; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* The ip is a literal of the family the ipv6 flag names. Returns 0, or -1
 * when it is no literal at all, or -2 when the flag disagrees. */
static int ip_check(const char *ip, size_t n, unsigned flags) {
  uint8_t a[16];
  int v4 = mtci_parse_ipv4(ip, n, a) == 0;
  int v6 = !v4 && mtci_parse_ipv6(ip, n, a) == 0;
  if (!v4 && !v6) return -1;
  if (v6 != ((flags & MTCI_STATE_ADDR_IPV6) != 0)) return -2;
  return 0;
}

static int validate_addr(const mtci_state_addr *a, const char *p, char *msg, size_t msg_len) {
  const char *nul = memchr(a->ip, '\0', sizeof a->ip);
  if (!nul) return CORRUPT("%s.ip: not terminated", p);
  if (a->flags & ~(unsigned)MTCI_STATE_ADDR_ALL)
    return CORRUPT("%s.flags: unknown bits (allowed: 0..63)", p);
  int ic = ip_check(a->ip, (size_t)(nul - a->ip), a->flags);
  if (ic == -1) return CORRUPT("%s.ip: not an IPv4 or IPv6 literal", p);
  if (ic == -2) return CORRUPT("%s.flags: ipv6 bit (1) does not match the ip", p);
  RANGE(a->port, 1, 65535, p, "port");
  if (a->secret_len > MTCI_STATE_SECRET_MAX)
    return CORRUPT("%s.secret: longer than %d bytes", p, MTCI_STATE_SECRET_MAX);
  if (a->secret_len > 0) {
    const char *why = NULL;
    if (mtci_proxy_secret_from_binary(a->secret, a->secret_len, NULL, &why) != 0)
      return CORRUPT("%s.secret: %s", p, why ? why : "invalid");
  }
  RANGE(a->last_success_ms, 0, MTCI_STATE_SAFE_INT, p, "last_success_ms");
  RANGE(a->last_failure_ms, 0, MTCI_STATE_SAFE_INT, p, "last_failure_ms");
  return 0;
}

static int validate_dc(const mtci_state_dc *d, const char *p, char *msg, size_t msg_len) {
  RANGE(d->dc_id, 1, MTCI_STATE_MAX_DC_ID, p, "dc_id");
  RANGE(d->authorized, 0, 1, p, "authorized");
  RANGE(d->has_perm, 0, 1, p, "has_perm");
  RANGE(d->has_temp, 0, 1, p, "has_temp");
  if (d->has_perm) {
    if (key_id_of(d->perm_key) != d->perm_key_id)
      return CORRUPT("%s.perm_key.key_id: does not match the key (edited or damaged key)", p);
    RANGE(d->perm_created, 0, MTCI_STATE_SAFE_INT, p, "perm_key.created");
  }
  if (d->has_temp) {
    if (key_id_of(d->temp_key) != d->temp_key_id)
      return CORRUPT("%s.temp_key.key_id: does not match the key (edited or damaged key)", p);
    RANGE(d->temp_expires_at, 1, MTCI_STATE_SAFE_INT, p, "temp_key.expires_at");
    RANGE(d->temp_bound, 0, 1, p, "temp_key.bound");
    if (d->temp_bound && !d->has_perm)
      return CORRUPT("%s.temp_key.bound: bound to a perm key that is not there", p);
  }
  if (d->authorized && !d->has_perm) return CORRUPT("%s.authorized: true without a perm key", p);
  RANGE(d->salt_valid_until, 0, MTCI_STATE_SAFE_INT, p, "salt_valid_until");
  RANGE(d->n_future_salts, 0, MTCI_STATE_MAX_FUTURE_SALTS, p, "future_salts (count)");
  for (int i = 0; i < d->n_future_salts; i++) {
    char q[PATH_CAP];
    pathf(q, sizeof q, "%s.future_salts[%d]", p, i);
    const mtci_state_future_salt *f = &d->future_salts[i];
    RANGE(f->valid_since, 0, MTCI_STATE_SAFE_INT, q, "valid_since");
    RANGE(f->valid_until, 0, MTCI_STATE_SAFE_INT, q, "valid_until");
    if (f->valid_until < f->valid_since)
      return CORRUPT("%s.valid_until: before valid_since", q);
  }
  RANGE(d->n_addrs, 0, MTCI_STATE_MAX_ADDRS, p, "addrs (count)");
  for (int i = 0; i < d->n_addrs; i++) {
    char q[PATH_CAP];
    pathf(q, sizeof q, "%s.addrs[%d]", p, i);
    int r = validate_addr(&d->addrs[i], q, msg, msg_len);
    if (r) return r;
  }
  return 0;
}

int mtci_state_validate(const mtci_state *st, char *msg, size_t msg_len) {
  if (!st) return mtci_store_failf(MTC_ERR_INVALID_ARG, msg, msg_len, "no state");
  RANGE(st->version, MTCI_STATE_VERSION, MTCI_STATE_VERSION, "", "version");
  RANGE(st->test_dcs, 0, 1, "", "test_dcs");
  if (st->main_dc != 0) RANGE(st->main_dc, 1, MTCI_STATE_MAX_DC_ID, "", "main_dc");
  RANGE(st->time_offset_ms, -MTCI_STATE_SAFE_INT, MTCI_STATE_SAFE_INT, "", "time_offset_ms");
  RANGE(st->discovered.present, 0, 1, "", "discovered (present)");
  if (st->discovered.present) {
    if (!source_ok(st->discovered.source, sizeof st->discovered.source))
      return CORRUPT("discovered.source: must be 1..%d characters of [A-Za-z0-9._-]",
                     MTCI_STATE_SOURCE_LEN - 1);
    RANGE(st->discovered.fetched_at, 0, MTCI_STATE_SAFE_INT, "discovered", "fetched_at");
    RANGE(st->discovered.expires_at, 0, MTCI_STATE_SAFE_INT, "discovered", "expires_at");
  }
  RANGE(st->n_dcs, 0, MTCI_STATE_MAX_DCS, "", "dcs (count)");
  for (int i = 0; i < st->n_dcs; i++) {
    char p[PATH_CAP];
    pathf(p, sizeof p, "dcs[%d]", i);
    int r = validate_dc(&st->dcs[i], p, msg, msg_len);
    if (r) return r;
    for (int j = 0; j < i; j++)
      if (st->dcs[j].dc_id == st->dcs[i].dc_id)
        return CORRUPT("%s.dc_id: %d appears twice (also dcs[%d])", p, st->dcs[i].dc_id, j);
  }
  return 0;
}

/* ---- state -> JSON ------------------------------------------------------ */

/* Wipe every string value of a jansson tree in place (they may hold keys).
 * Depth is bounded by jansson's parser limit for parsed trees. */
static void wipe_tree(json_t *j) {
  if (json_is_string(j)) {
    char *s = (char *)(uintptr_t)json_string_value(j); /* heap memory owned by the tree */
    if (s) mtci_zeroize(s, json_string_length(j));
  } else if (json_is_object(j)) {
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) wipe_tree(v);
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) wipe_tree(json_array_get(j, i));
  }
}

/* Builder: json_object_set_new consumes v even on failure; a NULL v (failed
 * constructor) counts as failure too. */
static void put(json_t *o, const char *k, json_t *v, int *bad) {
  if (!o || !v || json_object_set_new(o, k, v) != 0) {
    if (!o && v) json_decref(v);
    *bad = 1;
  }
}
static void put_int(json_t *o, const char *k, int64_t v, int *bad) {
  put(o, k, json_integer((json_int_t)v), bad);
}
static void put_bool(json_t *o, const char *k, int v, int *bad) { put(o, k, json_boolean(v), bad); }
static void put_u64s(json_t *o, const char *k, uint64_t v, int *bad) {
  char b[24];
  int n = snprintf(b, sizeof b, "%" PRIu64, v);
  put(o, k, json_stringn(b, (size_t)n), bad);
}
static void put_i64s(json_t *o, const char *k, int64_t v, int *bad) {
  char b[24];
  int n = snprintf(b, sizeof b, "%" PRId64, v);
  put(o, k, json_stringn(b, (size_t)n), bad);
}
static void put_key(json_t *o, const char *k, const uint8_t key[MTCI_STATE_KEY_LEN], int *bad) {
  char b[KEY_B64_LEN + 1];
  size_t n = 0;
  if (mtci_base64_encode(key, MTCI_STATE_KEY_LEN, MTCI_B64_STD, b, sizeof b, &n) != 0) *bad = 1;
  else put(o, k, json_stringn(b, n), bad);
  mtci_zeroize(b, sizeof b);
}
static json_t *append_obj(json_t *arr, int *bad) {
  json_t *o = json_object();
  if (!o || json_array_append_new(arr, o) != 0) {
    *bad = 1;
    return NULL;
  }
  return o;
}

static void build_addr(json_t *o, const mtci_state_addr *a, int *bad) {
  put(o, "ip", json_string(a->ip), bad);
  put_int(o, "port", a->port, bad);
  put_int(o, "flags", a->flags, bad);
  if (a->secret_len > 0) {
    static const char HEX[] = "0123456789abcdef";
    char h[2 * MTCI_STATE_SECRET_MAX + 1];
    for (size_t i = 0; i < a->secret_len; i++) {
      h[2 * i] = HEX[a->secret[i] >> 4];
      h[2 * i + 1] = HEX[a->secret[i] & 15];
    }
    put(o, "secret", json_stringn(h, 2 * a->secret_len), bad);
    mtci_zeroize(h, sizeof h);
  }
  put_int(o, "last_success_ms", a->last_success_ms, bad);
  put_int(o, "last_failure_ms", a->last_failure_ms, bad);
  put_int(o, "consecutive_failures", a->consecutive_failures, bad);
}

static void build_dc(json_t *o, const mtci_state_dc *d, int *bad) {
  put_int(o, "dc_id", d->dc_id, bad);
  put_bool(o, "authorized", d->authorized, bad);
  if (d->has_perm) {
    json_t *k = json_object();
    put_key(k, "key", d->perm_key, bad);
    put_u64s(k, "key_id", d->perm_key_id, bad);
    put_int(k, "created", d->perm_created, bad);
    put(o, "perm_key", k, bad);
  }
  if (d->has_temp) {
    json_t *k = json_object();
    put_key(k, "key", d->temp_key, bad);
    put_u64s(k, "key_id", d->temp_key_id, bad);
    put_int(k, "expires_at", d->temp_expires_at, bad);
    put_bool(k, "bound", d->temp_bound, bad);
    put(o, "temp_key", k, bad);
  }
  put_i64s(o, "salt", d->salt, bad);
  put_int(o, "salt_valid_until", d->salt_valid_until, bad);
  json_t *fs = json_array();
  for (int i = 0; fs && i < d->n_future_salts; i++) {
    json_t *f = append_obj(fs, bad);
    if (!f) break;
    put_int(f, "valid_since", d->future_salts[i].valid_since, bad);
    put_int(f, "valid_until", d->future_salts[i].valid_until, bad);
    put_i64s(f, "salt", d->future_salts[i].salt, bad);
  }
  put(o, "future_salts", fs, bad);
  json_t *as = json_array();
  for (int i = 0; as && i < d->n_addrs; i++) {
    json_t *a = append_obj(as, bad);
    if (!a) break;
    build_addr(a, &d->addrs[i], bad);
  }
  put(o, "addrs", as, bad);
}

static json_t *build_state(const mtci_state *st, int *bad) {
  json_t *root = json_object();
  if (!root) {
    *bad = 1;
    return NULL;
  }
  put(root, "format", json_string(MTCI_STATE_FORMAT), bad);
  put_int(root, "version", st->version, bad);
  put_bool(root, "test_dcs", st->test_dcs, bad);
  put_int(root, "main_dc", st->main_dc, bad);
  put_int(root, "time_offset_ms", st->time_offset_ms, bad);
  if (st->discovered.present) {
    json_t *d = json_object();
    put(d, "source", json_string(st->discovered.source), bad);
    put_int(d, "fetched_at", st->discovered.fetched_at, bad);
    put_int(d, "expires_at", st->discovered.expires_at, bad);
    put(root, "discovered", d, bad);
  }
  json_t *dcs = json_array();
  for (int i = 0; dcs && i < st->n_dcs; i++) {
    json_t *o = append_obj(dcs, bad);
    if (!o) break;
    build_dc(o, &st->dcs[i], bad);
  }
  put(root, "dcs", dcs, bad);
  return root;
}

int mtci_state_to_json(const mtci_state *st, char **out, size_t *out_len, char *msg,
                       size_t msg_len) {
  if (msg && msg_len) msg[0] = '\0';
  if (!out || !out_len) return mtci_store_failf(MTC_ERR_INVALID_ARG, msg, msg_len, "no output");
  *out = NULL;
  *out_len = 0;
  int r = mtci_state_validate(st, msg, msg_len);
  if (r) return r == MTC_ERR_STORE_CORRUPT ? MTC_ERR_INVALID_ARG : r;

  int bad = 0;
  json_t *root = build_state(st, &bad);
  char *text = NULL;
  size_t n = 0;
  const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
  if (!bad) {
    n = json_dumpb(root, NULL, 0, flags); /* size only */
    text = n ? malloc(n + 2) : NULL;
    if (!text || json_dumpb(root, text, n, flags) != n) bad = 1;
  }
  if (root) {
    wipe_tree(root);
    json_decref(root);
  }
  if (bad) {
    if (text) mtci_state_json_free(text, n + 2);
    return mtci_store_failf(MTC_ERR_NOMEM, msg, msg_len, "out of memory while writing the state");
  }
  text[n] = '\n';
  text[n + 1] = '\0';
  if (n + 1 > MTCI_STATE_MAX_JSON) { /* cannot happen within the capacities; keep the promise */
    mtci_state_json_free(text, n + 2);
    return mtci_store_failf(MTC_ERR_STORE_TOO_LARGE, msg, msg_len, "state text over %u bytes",
                 MTCI_STATE_MAX_JSON);
  }
  *out = text;
  *out_len = n + 1;
  return 0;
}

void mtci_state_json_free(char *text, size_t len) {
  if (!text) return;
  mtci_zeroize(text, len);
  free(text);
}

/* ---- JSON -> state ------------------------------------------------------ */

/* Field access with messages. Each returns 0, 1 ("absent", optional
 * fields only) or MTC_ERR_STORE_CORRUPT. */
typedef struct reader {
  char *msg;
  size_t msg_len;
} reader;

static int rd_fail(reader *r, const char *prefix, const char *name, const char *what) {
  char p[PATH_CAP + 32];
  join_path(p, sizeof p, prefix, name);
  return mtci_store_failf(MTC_ERR_STORE_CORRUPT, r->msg, r->msg_len, "%s: %s", p, what);
}

static int rd_get(reader *r, json_t *o, const char *prefix, const char *name, int optional,
                  json_t **v) {
  *v = json_object_get(o, name);
  if (*v) return 0;
  return optional ? 1 : rd_fail(r, prefix, name, "missing");
}

static int rd_int(reader *r, json_t *o, const char *prefix, const char *name, int64_t lo,
                  int64_t hi, int64_t *out) {
  json_t *v;
  int rc = rd_get(r, o, prefix, name, 0, &v);
  if (rc) return rc;
  if (!json_is_integer(v)) return rd_fail(r, prefix, name, "must be an integer");
  int64_t x = (int64_t)json_integer_value(v);
  if (x < lo || x > hi) {
    char p[PATH_CAP + 32];
    join_path(p, sizeof p, prefix, name);
    return mtci_store_failf(MTC_ERR_STORE_CORRUPT, r->msg, r->msg_len, "%s: must be %" PRId64 "..%" PRId64,
                 p, lo, hi);
  }
  *out = x;
  return 0;
}

static int rd_bool(reader *r, json_t *o, const char *prefix, const char *name, int *out) {
  json_t *v;
  int rc = rd_get(r, o, prefix, name, 0, &v);
  if (rc) return rc;
  if (!json_is_boolean(v)) return rd_fail(r, prefix, name, "must be true or false");
  *out = json_is_true(v) ? 1 : 0;
  return 0;
}

static int rd_str(reader *r, json_t *o, const char *prefix, const char *name, int optional,
                  const char **s, size_t *n) {
  json_t *v;
  *s = NULL;
  *n = 0;
  int rc = rd_get(r, o, prefix, name, optional, &v);
  if (rc) return rc;
  if (!json_is_string(v)) return rd_fail(r, prefix, name, "must be a string");
  *s = json_string_value(v);
  *n = json_string_length(v);
  return 0;
}

static int rd_u64s(reader *r, json_t *o, const char *prefix, const char *name, uint64_t *out) {
  const char *s;
  size_t n;
  int rc = rd_str(r, o, prefix, name, 0, &s, &n);
  if (rc) return rc;
  if (dec_u64(s, n, out) != 0)
    return rd_fail(r, prefix, name, "must be a decimal string 0..18446744073709551615");
  return 0;
}

static int rd_i64s(reader *r, json_t *o, const char *prefix, const char *name, int64_t *out) {
  const char *s;
  size_t n;
  int rc = rd_str(r, o, prefix, name, 0, &s, &n);
  if (rc) return rc;
  if (dec_i64(s, n, out) != 0)
    return rd_fail(r, prefix, name,
                   "must be a decimal string -9223372036854775808..9223372036854775807");
  return 0;
}

static int rd_key(reader *r, json_t *o, const char *prefix, const char *name,
                  uint8_t key[MTCI_STATE_KEY_LEN]) {
  const char *s;
  size_t n;
  int rc = rd_str(r, o, prefix, name, 0, &s, &n);
  if (rc) return rc;
  uint8_t buf[MTCI_STATE_KEY_LEN];
  size_t got = 0;
  int d = mtci_base64_decode(s, n, MTCI_B64_STD | MTCI_B64_PAD_REQUIRED, buf, sizeof buf, &got);
  if (d == MTC_ERR_INVALID_ARG) rc = rd_fail(r, prefix, name, "not canonical padded base64");
  else if (d != 0 || got != MTCI_STATE_KEY_LEN)
    rc = rd_fail(r, prefix, name, "must decode to 256 bytes");
  else memcpy(key, buf, MTCI_STATE_KEY_LEN);
  mtci_zeroize(buf, sizeof buf);
  return rc;
}

/* A present, optional object (1 when absent). */
static int rd_obj(reader *r, json_t *o, const char *prefix, const char *name, int optional,
                  json_t **out) {
  int rc = rd_get(r, o, prefix, name, optional, out);
  if (rc) return rc;
  if (!json_is_object(*out)) return rd_fail(r, prefix, name, "must be an object");
  return 0;
}

static int rd_arr(reader *r, json_t *o, const char *prefix, const char *name, size_t max,
                  json_t **out) {
  int rc = rd_get(r, o, prefix, name, 0, out);
  if (rc) return rc;
  if (!json_is_array(*out)) return rd_fail(r, prefix, name, "must be an array");
  if (json_array_size(*out) > max) {
    char p[PATH_CAP + 32];
    join_path(p, sizeof p, prefix, name);
    return mtci_store_failf(MTC_ERR_STORE_CORRUPT, r->msg, r->msg_len, "%s: more than %zu entries", p, max);
  }
  return 0;
}

#define TRY(x)                                                                                     \
  do {                                                                                             \
    int t_ = (x);                                                                                  \
    if (t_) return t_;                                                                             \
  } while (0)

static int rd_addr(reader *r, json_t *o, const char *p, mtci_state_addr *a) {
  int64_t v;
  const char *s;
  size_t n;
  TRY(rd_str(r, o, p, "ip", 0, &s, &n));
  if (n >= sizeof a->ip) return rd_fail(r, p, "ip", "not an IPv4 or IPv6 literal");
  memcpy(a->ip, s, n); /* a NUL inside makes the literal check fail later */
  TRY(rd_int(r, o, p, "port", 1, 65535, &v));
  a->port = (uint16_t)v;
  TRY(rd_int(r, o, p, "flags", 0, MTCI_STATE_ADDR_ALL, &v));
  a->flags = (unsigned)v;
  int rc = rd_str(r, o, p, "secret", 1, &s, &n);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (n == 0 || n % 2 != 0 || n > 2 * MTCI_STATE_SECRET_MAX)
      return rd_fail(r, p, "secret", "must be hex of 16..199 bytes");
    for (size_t i = 0; i < n; i += 2) {
      int hi = hex_digit((unsigned char)s[i]), lo = hex_digit((unsigned char)s[i + 1]);
      if (hi < 0 || lo < 0) return rd_fail(r, p, "secret", "must be hex of 16..199 bytes");
      a->secret[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    a->secret_len = n / 2;
  }
  TRY(rd_int(r, o, p, "last_success_ms", 0, MTCI_STATE_SAFE_INT, &a->last_success_ms));
  TRY(rd_int(r, o, p, "last_failure_ms", 0, MTCI_STATE_SAFE_INT, &a->last_failure_ms));
  TRY(rd_int(r, o, p, "consecutive_failures", 0, UINT32_MAX, &v));
  a->consecutive_failures = (uint32_t)v;
  return 0;
}

static int rd_dc(reader *r, json_t *o, const char *p, mtci_state_dc *d) {
  int64_t v;
  json_t *k, *arr;
  TRY(rd_int(r, o, p, "dc_id", 1, MTCI_STATE_MAX_DC_ID, &v));
  d->dc_id = (int)v;
  TRY(rd_bool(r, o, p, "authorized", &d->authorized));
  char q[PATH_CAP];
  int rc = rd_obj(r, o, p, "perm_key", 1, &k);
  if (rc < 0) return rc;
  if (rc == 0) {
    pathf(q, sizeof q, "%s.perm_key", p);
    d->has_perm = 1;
    TRY(rd_key(r, k, q, "key", d->perm_key));
    TRY(rd_u64s(r, k, q, "key_id", &d->perm_key_id));
    TRY(rd_int(r, k, q, "created", 0, MTCI_STATE_SAFE_INT, &d->perm_created));
  }
  rc = rd_obj(r, o, p, "temp_key", 1, &k);
  if (rc < 0) return rc;
  if (rc == 0) {
    pathf(q, sizeof q, "%s.temp_key", p);
    d->has_temp = 1;
    TRY(rd_key(r, k, q, "key", d->temp_key));
    TRY(rd_u64s(r, k, q, "key_id", &d->temp_key_id));
    TRY(rd_int(r, k, q, "expires_at", 1, MTCI_STATE_SAFE_INT, &d->temp_expires_at));
    TRY(rd_bool(r, k, q, "bound", &d->temp_bound));
  }
  TRY(rd_i64s(r, o, p, "salt", &d->salt));
  TRY(rd_int(r, o, p, "salt_valid_until", 0, MTCI_STATE_SAFE_INT, &d->salt_valid_until));
  TRY(rd_arr(r, o, p, "future_salts", MTCI_STATE_MAX_FUTURE_SALTS, &arr));
  for (size_t i = 0; i < json_array_size(arr); i++) {
    pathf(q, sizeof q, "%s.future_salts[%zu]", p, i);
    json_t *f = json_array_get(arr, i);
    if (!json_is_object(f)) return rd_fail(r, q, "", "must be an object");
    mtci_state_future_salt *fs = &d->future_salts[i];
    TRY(rd_int(r, f, q, "valid_since", 0, MTCI_STATE_SAFE_INT, &fs->valid_since));
    TRY(rd_int(r, f, q, "valid_until", 0, MTCI_STATE_SAFE_INT, &fs->valid_until));
    TRY(rd_i64s(r, f, q, "salt", &fs->salt));
    d->n_future_salts = (int)i + 1;
  }
  TRY(rd_arr(r, o, p, "addrs", MTCI_STATE_MAX_ADDRS, &arr));
  for (size_t i = 0; i < json_array_size(arr); i++) {
    pathf(q, sizeof q, "%s.addrs[%zu]", p, i);
    json_t *a = json_array_get(arr, i);
    if (!json_is_object(a)) return rd_fail(r, q, "", "must be an object");
    TRY(rd_addr(r, a, q, &d->addrs[i]));
    d->n_addrs = (int)i + 1;
  }
  return 0;
}

static int rd_state(reader *r, json_t *root, mtci_state *st) {
  char *msg = r->msg;
  size_t msg_len = r->msg_len;
  if (!json_is_object(root)) return CORRUPT("not an mtconn state file (not a JSON object)");
  json_t *f = json_object_get(root, "format");
  if (!json_is_string(f) || strcmp(json_string_value(f), MTCI_STATE_FORMAT) != 0 ||
      json_string_length(f) != strlen(MTCI_STATE_FORMAT))
    return CORRUPT("format: not an mtconn state file (want \"" MTCI_STATE_FORMAT "\")");
  json_t *ver = json_object_get(root, "version");
  if (!ver) return CORRUPT("version: missing");
  if (!json_is_integer(ver)) return CORRUPT("version: must be an integer");
  if (json_integer_value(ver) != MTCI_STATE_VERSION) {
    json_int_t v = json_integer_value(ver);
    return mtci_store_failf(MTC_ERR_STORE_VERSION, msg, msg_len,
                 "version: %" JSON_INTEGER_FORMAT " is not supported by this library (it reads "
                 "version %d)",
                 v, MTCI_STATE_VERSION);
  }
  st->version = MTCI_STATE_VERSION;
  int64_t v;
  TRY(rd_bool(r, root, "", "test_dcs", &st->test_dcs));
  TRY(rd_int(r, root, "", "main_dc", 0, MTCI_STATE_MAX_DC_ID, &v));
  st->main_dc = (int)v;
  TRY(rd_int(r, root, "", "time_offset_ms", -MTCI_STATE_SAFE_INT, MTCI_STATE_SAFE_INT,
             &st->time_offset_ms));
  json_t *disc;
  int rc = rd_obj(r, root, "", "discovered", 1, &disc);
  if (rc < 0) return rc;
  if (rc == 0) {
    const char *s;
    size_t n;
    st->discovered.present = 1;
    TRY(rd_str(r, disc, "discovered", "source", 0, &s, &n));
    if (n == 0 || n >= sizeof st->discovered.source)
      return CORRUPT("discovered.source: must be 1..%d characters of [A-Za-z0-9._-]",
                     MTCI_STATE_SOURCE_LEN - 1);
    memcpy(st->discovered.source, s, n); /* charset (and NULs) checked by validate */
    TRY(rd_int(r, disc, "discovered", "fetched_at", 0, MTCI_STATE_SAFE_INT,
               &st->discovered.fetched_at));
    TRY(rd_int(r, disc, "discovered", "expires_at", 0, MTCI_STATE_SAFE_INT,
               &st->discovered.expires_at));
  }
  json_t *dcs;
  TRY(rd_arr(r, root, "", "dcs", MTCI_STATE_MAX_DCS, &dcs));
  for (size_t i = 0; i < json_array_size(dcs); i++) {
    char p[PATH_CAP];
    pathf(p, sizeof p, "dcs[%zu]", i);
    json_t *d = json_array_get(dcs, i);
    if (!json_is_object(d)) return CORRUPT("%s: must be an object", p);
    TRY(rd_dc(r, d, p, &st->dcs[i]));
    st->n_dcs = (int)i + 1;
  }
  /* Cross-field rules (key ids, ip families, secrets, duplicates...). */
  return mtci_state_validate(st, msg, msg_len);
}

static const char *json_error_reason(const json_error_t *e) {
  switch (json_error_code(e)) {
  case json_error_premature_end_of_input: return "truncated";
  case json_error_end_of_input_expected: return "data after the end of the JSON value";
  case json_error_invalid_utf8: return "invalid UTF-8";
  case json_error_duplicate_key: return "a key appears twice in one object";
  case json_error_numeric_overflow: return "a number is out of range";
  case json_error_null_character:
  case json_error_null_byte_in_key: return "a NUL character in a string";
  case json_error_stack_overflow: return "nested too deeply";
  default: return "syntax error";
  }
}

int mtci_state_from_json(const char *text, size_t len, mtci_state *st, char *msg,
                         size_t msg_len) {
  if (msg && msg_len) msg[0] = '\0';
  if (!st) return mtci_store_failf(MTC_ERR_INVALID_ARG, msg, msg_len, "no state");
  mtci_state_clear(st);
  if (!text && len) return mtci_store_failf(MTC_ERR_INVALID_ARG, msg, msg_len, "no text");
  if (len > MTCI_STATE_MAX_JSON)
    return mtci_store_failf(MTC_ERR_STORE_TOO_LARGE, msg, msg_len,
                 "state text is %zu bytes, over the %u-byte limit", len, MTCI_STATE_MAX_JSON);
  if (len == 0) return mtci_store_failf(MTC_ERR_STORE_CORRUPT, msg, msg_len, "state file is empty");

  json_error_t err;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  if (!root) {
    if (json_error_code(&err) == json_error_out_of_memory)
      return mtci_store_failf(MTC_ERR_NOMEM, msg, msg_len, "out of memory while reading the state");
    /* err.text may quote the input (key material): report position only. */
    return mtci_store_failf(MTC_ERR_STORE_CORRUPT, msg, msg_len,
                 "malformed JSON at line %d, column %d (byte %d): %s", err.line, err.column,
                 err.position, json_error_reason(&err));
  }
  reader r = {msg, msg_len};
  int rc = rd_state(&r, root, st);
  wipe_tree(root);
  json_decref(root);
  if (rc) mtci_state_clear(st);
  return rc;
}
