/* Persistent state: JSON form (exact text, round trip, every corruption
 * refused with its code and a message naming the field) and the file layer
 * (atomic replace, mode 0600, no temp files left, failures leave the old
 * file intact, loads never modify the file). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "store.h"
#include "test.h"
#include "transport/proxy_link.h"

/* ---- fixtures ------------------------------------------------------------ */

/* Key bytes 00 01 .. ff and ff fe .. 00. Their base64 and key ids were
 * computed independently with Python:
 *   base64.b64encode(k), int.from_bytes(hashlib.sha1(k).digest()[12:20], 'little') */
#define KEY_UP_B64                                                                                 \
  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERU" \
  "ZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouM" \
  "jY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0t" \
  "PU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w=="
#define KEY_UP_ID UINT64_C(14474384091129631026)
#define KEY_DOWN_B64                                                                               \
  "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eDf3t3c29rZ2NfW1dTT0tHQz87NzMvKycjHxsXEw8LBwL++vby7ur" \
  "m4t7a1tLOysbCvrq2sq6qpqKempaSjoqGgn56dnJuamZiXlpWUk5KRkI+OjYyLiomIh4aFhIOCgYB/fn18e3p5eHd2dXRz" \
  "cnFwb25tbGtqaWhnZmVkY2JhYF9eXVxbWllYV1ZVVFNSUVBPTk1MS0pJSEdGRURDQkFAPz49PDs6OTg3NjU0MzIxMC8uLS" \
  "wrKikoJyYlJCMiISAfHh0cGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAA=="
#define KEY_DOWN_ID UINT64_C(1390049393749643670)

static mtci_state *new_state(void) {
  mtci_state *st = malloc(sizeof *st);
  if (st) mtci_state_init(st);
  return st;
}
static void free_state(mtci_state *st) {
  mtci_state_clear(st);
  free(st);
}

static void add_addr(mtci_state_dc *d, const char *ip, uint16_t port, unsigned flags,
                     const char *secret_hex, int64_t ok_ms, int64_t fail_ms, uint32_t fails) {
  mtci_state_addr *a = &d->addrs[d->n_addrs++];
  snprintf(a->ip, sizeof a->ip, "%s", ip);
  a->port = port;
  a->flags = flags;
  a->secret_len = secret_hex ? test_unhex(secret_hex, a->secret, sizeof a->secret) : 0;
  a->last_success_ms = ok_ms;
  a->last_failure_ms = fail_ms;
  a->consecutive_failures = fails;
}

/* The small state whose exact JSON is SMALL_JSON below. */
static void fill_small(mtci_state *st) {
  mtci_state_init(st);
  st->main_dc = 2;
  st->time_offset_ms = -1500;
  st->discovered.present = 1;
  snprintf(st->discovered.source, sizeof st->discovered.source, "getConfig");
  st->discovered.fetched_at = 1700000000;
  st->discovered.expires_at = 1700003600;
  mtci_state_dc *d = mtci_state_add_dc(st, 2);
  d->authorized = 1;
  d->has_perm = 1;
  for (int i = 0; i < 256; i++) d->perm_key[i] = (uint8_t)i;
  d->perm_key_id = KEY_UP_ID;
  d->perm_created = 1700000000;
  d->has_temp = 1;
  for (int i = 0; i < 256; i++) d->temp_key[i] = (uint8_t)(255 - i);
  d->temp_key_id = KEY_DOWN_ID;
  d->temp_expires_at = 1700086400;
  d->temp_bound = 1;
  d->salt = INT64_C(0x1122334455667788);
  d->salt_valid_until = 1700001800;
  d->n_future_salts = 1;
  d->future_salts[0].valid_since = 1700001800;
  d->future_salts[0].valid_until = 1700003600;
  d->future_salts[0].salt = -1;
  add_addr(d, "149.154.167.51", 443, MTCI_STATE_ADDR_STATIC, NULL, 1700000000123, 0, 0);
  add_addr(d, "2001:67c:4e8:f002::a", 443, MTCI_STATE_ADDR_STATIC | MTCI_STATE_ADDR_IPV6,
           "dd000102030405060708090a0b0c0d0e0f", 0, 1700000000456, 3);
  mtci_state_add_dc(st, 4);
}

/* Written by hand from the format in store.h (jansson's 2-space indent). Python's
 * json.dumps(obj, indent=2) gives the same bytes (fuzz/corpus/store/small.json). */
static const char SMALL_JSON[] =
    "{\n"
    "  \"format\": \"mtconn-state\",\n"
    "  \"version\": 1,\n"
    "  \"test_dcs\": false,\n"
    "  \"main_dc\": 2,\n"
    "  \"time_offset_ms\": -1500,\n"
    "  \"discovered\": {\n"
    "    \"source\": \"getConfig\",\n"
    "    \"fetched_at\": 1700000000,\n"
    "    \"expires_at\": 1700003600\n"
    "  },\n"
    "  \"dcs\": [\n"
    "    {\n"
    "      \"dc_id\": 2,\n"
    "      \"authorized\": true,\n"
    "      \"perm_key\": {\n"
    "        \"key\": \"" KEY_UP_B64 "\",\n"
    "        \"key_id\": \"14474384091129631026\",\n"
    "        \"created\": 1700000000\n"
    "      },\n"
    "      \"temp_key\": {\n"
    "        \"key\": \"" KEY_DOWN_B64 "\",\n"
    "        \"key_id\": \"1390049393749643670\",\n"
    "        \"expires_at\": 1700086400,\n"
    "        \"bound\": true\n"
    "      },\n"
    "      \"salt\": \"1234605616436508552\",\n"
    "      \"salt_valid_until\": 1700001800,\n"
    "      \"future_salts\": [\n"
    "        {\n"
    "          \"valid_since\": 1700001800,\n"
    "          \"valid_until\": 1700003600,\n"
    "          \"salt\": \"-1\"\n"
    "        }\n"
    "      ],\n"
    "      \"addrs\": [\n"
    "        {\n"
    "          \"ip\": \"149.154.167.51\",\n"
    "          \"port\": 443,\n"
    "          \"flags\": 16,\n"
    "          \"last_success_ms\": 1700000000123,\n"
    "          \"last_failure_ms\": 0,\n"
    "          \"consecutive_failures\": 0\n"
    "        },\n"
    "        {\n"
    "          \"ip\": \"2001:67c:4e8:f002::a\",\n"
    "          \"port\": 443,\n"
    "          \"flags\": 17,\n"
    "          \"secret\": \"dd000102030405060708090a0b0c0d0e0f\",\n"
    "          \"last_success_ms\": 0,\n"
    "          \"last_failure_ms\": 1700000000456,\n"
    "          \"consecutive_failures\": 3\n"
    "        }\n"
    "      ]\n"
    "    },\n"
    "    {\n"
    "      \"dc_id\": 4,\n"
    "      \"authorized\": false,\n"
    "      \"salt\": \"0\",\n"
    "      \"salt_valid_until\": 0,\n"
    "      \"future_salts\": [],\n"
    "      \"addrs\": []\n"
    "    }\n"
    "  ]\n"
    "}\n";

/* A valid fake-TLS domain of exactly n bytes (1..182): labels of up to 63
 * letters joined by dots. */
static void make_domain(char *out, size_t n, char letter) {
  for (size_t i = 0; i < n; i++) out[i] = (i % 64 == 63) ? '.' : letter;
  if (n > 1 && out[n - 1] == '.') out[n - 1] = letter; /* never end with a dot */
  out[n] = '\0';
}

/* Every field set, at capacity, with extreme values. */
static void fill_full(mtci_state *st) {
  static const char *const ips[] = {
      "0.0.0.0", "255.255.255.255", "149.154.175.50", "10.0.0.1", "::", "::1",
      "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", /* 45 characters */
      "2001:b28:f23d:f001::a", "fe80::1:2:3:4", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4",
      "127.0.0.1", "2001:db8::", "8.8.8.8", "abcd:ef01:2345:6789:abcd:ef01:2345:6789", "1.1.1.1"};
  static const int64_t salts[] = {INT64_MIN, INT64_MAX, -1, 0, 1, INT64_MIN + 1, INT64_MAX - 1,
                                  -6917529027641081856};
  mtci_state_init(st);
  st->test_dcs = 1;
  st->main_dc = MTCI_STATE_MAX_DC_ID;
  st->time_offset_ms = -MTCI_STATE_SAFE_INT;
  st->discovered.present = 1;
  snprintf(st->discovered.source, sizeof st->discovered.source, "%s",
           "cloudflare-dns.com_v2-abcdefghi"); /* 31 characters */
  st->discovered.fetched_at = MTCI_STATE_SAFE_INT;
  st->discovered.expires_at = 0;
  uint64_t rs = 42;
  for (int i = 0; i < MTCI_STATE_MAX_DCS; i++) {
    mtci_state_dc *d = mtci_state_add_dc(st, i == 0 ? MTCI_STATE_MAX_DC_ID : i);
    d->authorized = i % 2;
    d->has_perm = i != 3;
    for (int k = 0; k < 256; k++) d->perm_key[k] = (uint8_t)test_rand64(&rs);
    uint8_t id[8];
    mtci_auth_key_id(d->perm_key, id);
    d->perm_key_id = (uint64_t)id[0] | (uint64_t)id[1] << 8 | (uint64_t)id[2] << 16 |
                     (uint64_t)id[3] << 24 | (uint64_t)id[4] << 32 | (uint64_t)id[5] << 40 |
                     (uint64_t)id[6] << 48 | (uint64_t)id[7] << 56;
    if (!d->has_perm) {
      memset(d->perm_key, 0, sizeof d->perm_key); /* not persisted without has_perm */
      d->perm_key_id = 0;
      d->authorized = 0;
    }
    d->perm_created = i == 1 ? MTCI_STATE_SAFE_INT : 1700000000 + i;
    d->has_temp = i % 3 != 0;
    if (d->has_temp) {
      for (int k = 0; k < 256; k++) d->temp_key[k] = (uint8_t)test_rand64(&rs);
      mtci_auth_key_id(d->temp_key, id);
      d->temp_key_id = (uint64_t)id[0] | (uint64_t)id[1] << 8 | (uint64_t)id[2] << 16 |
                       (uint64_t)id[3] << 24 | (uint64_t)id[4] << 32 | (uint64_t)id[5] << 40 |
                       (uint64_t)id[6] << 48 | (uint64_t)id[7] << 56;
      d->temp_expires_at = i == 2 ? MTCI_STATE_SAFE_INT : 1;
      d->temp_bound = d->has_perm && i % 2;
    }
    d->salt = salts[i % 8];
    d->salt_valid_until = i == 5 ? MTCI_STATE_SAFE_INT : 0;
    d->n_future_salts = MTCI_STATE_MAX_FUTURE_SALTS;
    for (int f = 0; f < MTCI_STATE_MAX_FUTURE_SALTS; f++) {
      d->future_salts[f].valid_since = f == 7 ? MTCI_STATE_SAFE_INT : f * 1800;
      d->future_salts[f].valid_until = f == 7 ? MTCI_STATE_SAFE_INT : f * 1800 + 3600;
      d->future_salts[f].salt = salts[(i + f) % 8];
    }
    for (int a = 0; a < MTCI_STATE_MAX_ADDRS; a++) {
      mtci_state_addr *ad = &d->addrs[d->n_addrs++];
      const char *ip = ips[(a + i) % 16];
      snprintf(ad->ip, sizeof ad->ip, "%s", ip);
      ad->flags = (unsigned)((a * 7 + i) & (MTCI_STATE_ADDR_ALL & ~MTCI_STATE_ADDR_IPV6));
      if (strchr(ip, ':')) ad->flags |= MTCI_STATE_ADDR_IPV6;
      ad->port = a == 0 ? 1 : a == 1 ? 65535 : (uint16_t)(443 + a);
      switch (a % 4) {
      case 0: ad->secret_len = 0; break;
      case 1:
        ad->secret_len = 16;
        for (int k = 0; k < 16; k++) ad->secret[k] = (uint8_t)test_rand64(&rs);
        break;
      case 2:
        ad->secret_len = 17;
        ad->secret[0] = 0xdd;
        for (int k = 1; k < 17; k++) ad->secret[k] = (uint8_t)test_rand64(&rs);
        break;
      default: {
        size_t dl = a == 3 ? 182 : (size_t)(1 + (a * 13 + i) % 182); /* 199-byte secret first */
        ad->secret[0] = 0xee;
        for (int k = 1; k < 17; k++) ad->secret[k] = (uint8_t)test_rand64(&rs);
        char dom[MTCI_PROXY_DOMAIN_MAX + 1];
        make_domain(dom, dl, (char)('a' + i));
        memcpy(ad->secret + 17, dom, dl);
        ad->secret_len = 17 + dl;
      }
      }
      ad->last_success_ms = a == 2 ? MTCI_STATE_SAFE_INT : (int64_t)a * 1000;
      ad->last_failure_ms = a == 4 ? MTCI_STATE_SAFE_INT : (int64_t)i * 1000;
      ad->consecutive_failures = a == 5 ? UINT32_MAX : (uint32_t)a;
    }
  }
}

/* Name of the first field where a and b differ, or NULL. */
static const char *state_diff(const mtci_state *a, const mtci_state *b) {
#define DIFF(f)                                                                                    \
  if (a->f != b->f) return #f
  DIFF(version);
  DIFF(test_dcs);
  DIFF(main_dc);
  DIFF(time_offset_ms);
  DIFF(discovered.present);
  if (a->discovered.present) {
    if (strcmp(a->discovered.source, b->discovered.source)) return "discovered.source";
    DIFF(discovered.fetched_at);
    DIFF(discovered.expires_at);
  }
  DIFF(n_dcs);
  for (int i = 0; i < a->n_dcs; i++) {
    DIFF(dcs[i].dc_id);
    DIFF(dcs[i].authorized);
    DIFF(dcs[i].has_perm);
    if (a->dcs[i].has_perm) {
      if (memcmp(a->dcs[i].perm_key, b->dcs[i].perm_key, 256)) return "perm_key";
      DIFF(dcs[i].perm_key_id);
      DIFF(dcs[i].perm_created);
    }
    DIFF(dcs[i].has_temp);
    if (a->dcs[i].has_temp) {
      if (memcmp(a->dcs[i].temp_key, b->dcs[i].temp_key, 256)) return "temp_key";
      DIFF(dcs[i].temp_key_id);
      DIFF(dcs[i].temp_expires_at);
      DIFF(dcs[i].temp_bound);
    }
    DIFF(dcs[i].salt);
    DIFF(dcs[i].salt_valid_until);
    DIFF(dcs[i].n_future_salts);
    for (int f = 0; f < a->dcs[i].n_future_salts; f++) {
      DIFF(dcs[i].future_salts[f].valid_since);
      DIFF(dcs[i].future_salts[f].valid_until);
      DIFF(dcs[i].future_salts[f].salt);
    }
    DIFF(dcs[i].n_addrs);
    for (int k = 0; k < a->dcs[i].n_addrs; k++) {
      const mtci_state_addr *x = &a->dcs[i].addrs[k], *y = &b->dcs[i].addrs[k];
      if (memcmp(x->ip, y->ip, sizeof x->ip)) return "ip";
      if (x->port != y->port) return "port";
      if (x->flags != y->flags) return "flags";
      if (x->secret_len != y->secret_len) return "secret_len";
      if (memcmp(x->secret, y->secret, x->secret_len)) return "secret";
      if (x->last_success_ms != y->last_success_ms) return "last_success_ms";
      if (x->last_failure_ms != y->last_failure_ms) return "last_failure_ms";
      if (x->consecutive_failures != y->consecutive_failures) return "consecutive_failures";
    }
  }
  return NULL;
#undef DIFF
}

/* ---- JSON: exact text and round trips -------------------------------------- */

TEST(exact_json_small) {
  mtci_state *st = new_state(), *back = new_state();
  CHECK(st && back);
  fill_small(st);
  char *text = NULL, msg[256];
  size_t n = 0;
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), 0);
  CHECK_EQ_INT(n, strlen(SMALL_JSON));
  CHECK_EQ_INT(strlen(text), n);
  if (strcmp(text, SMALL_JSON) != 0) fprintf(stderr, "got:\n%s", text);
  CHECK(strcmp(text, SMALL_JSON) == 0);
  /* And the hand-written text reads back into the same state. */
  CHECK_EQ_INT(mtci_state_from_json(SMALL_JSON, strlen(SMALL_JSON), back, msg, sizeof msg), 0);
  const char *d = state_diff(st, back);
  if (d) fprintf(stderr, "  differs at %s\n", d);
  CHECK(d == NULL);
  mtci_state_json_free(text, n + 1);
  free_state(st);
  free_state(back);
}

TEST(empty_state) {
  mtci_state *st = new_state(), *back = new_state();
  CHECK(st && back);
  char *text = NULL, msg[256];
  size_t n = 0;
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), 0);
  static const char want[] = "{\n  \"format\": \"mtconn-state\",\n  \"version\": 1,\n"
                             "  \"test_dcs\": false,\n  \"main_dc\": 0,\n"
                             "  \"time_offset_ms\": 0,\n  \"dcs\": []\n}\n";
  CHECK_EQ_INT(n, strlen(want));
  CHECK(strcmp(text, want) == 0);
  CHECK_EQ_INT(mtci_state_from_json(text, n, back, msg, sizeof msg), 0);
  CHECK(state_diff(st, back) == NULL);
  mtci_state_json_free(text, n + 1);
  free_state(st);
  free_state(back);
}

TEST(round_trip_full) {
  mtci_state *st = new_state(), *back = new_state();
  CHECK(st && back);
  fill_full(st);
  char *text = NULL, msg[256] = "";
  size_t n = 0;
  int rc = mtci_state_to_json(st, &text, &n, msg, sizeof msg);
  if (rc) fprintf(stderr, "  %s\n", msg);
  CHECK_EQ_INT(rc, 0);
  CHECK(n < MTCI_STATE_MAX_JSON);
  fprintf(stderr, "  full state (16 DCs x 16 addrs): %zu bytes of JSON\n", n);
  /* Decimal strings for the extremes; no JSON number beyond 2^53. */
  CHECK(strstr(text, "\"salt\": \"-9223372036854775808\"") != NULL);
  CHECK(strstr(text, "\"salt\": \"9223372036854775807\"") != NULL);
  CHECK(strstr(text, "\"time_offset_ms\": -9007199254740991") != NULL);
  CHECK(strstr(text, "\"consecutive_failures\": 4294967295") != NULL);
  rc = mtci_state_from_json(text, n, back, msg, sizeof msg);
  if (rc) fprintf(stderr, "  %s\n", msg);
  CHECK_EQ_INT(rc, 0);
  const char *d = state_diff(st, back);
  if (d) fprintf(stderr, "  differs at %s\n", d);
  CHECK(d == NULL);
  /* Writing what was read gives the same text. */
  char *again = NULL;
  size_t n2 = 0;
  CHECK_EQ_INT(mtci_state_to_json(back, &again, &n2, msg, sizeof msg), 0);
  CHECK_EQ_INT(n2, n);
  CHECK(memcmp(again, text, n) == 0);
  mtci_state_json_free(again, n2 + 1);
  mtci_state_json_free(text, n + 1);
  free_state(st);
  free_state(back);
}

TEST(truncated_everywhere) {
  mtci_state *st = new_state();
  CHECK(st);
  char msg[256];
  size_t n = strlen(SMALL_JSON);
  /* Every cut of the small text: all fail as CORRUPT, none crash. */
  for (size_t cut = 0; cut + 1 < n; cut++) {
    char *copy = malloc(cut + 1); /* exact size so ASan sees any over-read */
    CHECK(copy);
    memcpy(copy, SMALL_JSON, cut);
    int rc = mtci_state_from_json(copy, cut, st, msg, sizeof msg);
    free(copy);
    if (rc != MTC_ERR_STORE_CORRUPT) fprintf(stderr, "  cut at %zu: rc %d\n", cut, rc);
    CHECK_EQ_INT(rc, MTC_ERR_STORE_CORRUPT);
    CHECK(msg[0] != '\0');
    CHECK(st->n_dcs == 0 && st->dcs[0].perm_key[1] == 0); /* zeroized on failure */
  }
  /* Only the final newline may go: the document is complete without it. */
  CHECK_EQ_INT(mtci_state_from_json(SMALL_JSON, n - 1, st, msg, sizeof msg), 0);
  /* The full state cut at 500 points spread over its length. */
  mtci_state *full = new_state();
  CHECK(full);
  fill_full(full);
  char *text = NULL;
  size_t fn = 0;
  CHECK_EQ_INT(mtci_state_to_json(full, &text, &fn, msg, sizeof msg), 0);
  for (size_t k = 0; k < 500; k++) {
    size_t cut = (fn - 1) * k / 500;
    CHECK_EQ_INT(mtci_state_from_json(text, cut, st, msg, sizeof msg), MTC_ERR_STORE_CORRUPT);
  }
  CHECK_EQ_INT(mtci_state_from_json("", 0, st, msg, sizeof msg), MTC_ERR_STORE_CORRUPT);
  CHECK(strstr(msg, "empty") != NULL);
  mtci_state_json_free(text, fn + 1);
  free_state(full);
  free_state(st);
}

/* ---- corruptions ------------------------------------------------------------- */

/* SMALL_JSON with the first occurrence of `from` replaced by `to`. */
static char *replaced(const char *from, const char *to) {
  const char *p = strstr(SMALL_JSON, from);
  if (!p) return NULL;
  size_t pre = (size_t)(p - SMALL_JSON), fl = strlen(from), tl = strlen(to);
  size_t n = strlen(SMALL_JSON) - fl + tl;
  char *out = malloc(n + 1);
  if (!out) return NULL;
  memcpy(out, SMALL_JSON, pre);
  memcpy(out + pre, to, tl);
  memcpy(out + pre + tl, p + fl, strlen(SMALL_JSON) - pre - fl + 1);
  return out;
}

/* Parse text; require code and a message containing want (and no key text). */
static int expect_fail(const char *text, size_t len, int code, const char *want) {
  mtci_state *st = new_state();
  char msg[512] = "";
  int rc = st ? mtci_state_from_json(text, len, st, msg, sizeof msg) : -999;
  int ok = rc == code && strstr(msg, want) != NULL && strstr(msg, "AAECAwQF") == NULL &&
           strstr(msg, "//79/Pv6") == NULL;
  if (!ok) fprintf(stderr, "  want %d \"%s\", got %d \"%s\"\n", code, want, rc, msg);
  if (st) {
    static const uint8_t zero[sizeof(mtci_state)];
    if (rc != 0 && memcmp(st, zero, sizeof zero) != 0) ok = 0; /* zeroized on failure */
  }
  free_state(st);
  return ok;
}

static int expect_replaced(const char *from, const char *to, int code, const char *want) {
  char *t = replaced(from, to);
  if (!t) {
    fprintf(stderr, "  fixture text \"%s\" not found\n", from);
    return 0;
  }
  int ok = expect_fail(t, strlen(t), code, want);
  free(t);
  return ok;
}

TEST(corrupt_keys) {
  /* One base64 character changed: still 256 bytes, but the key id no
   * longer matches (AAEC = 00 01 02 -> AAED = 00 01 03). */
  CHECK(expect_replaced("AAECAwQF", "AAEDAwQF", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].perm_key.key_id: does not match the key"));
  CHECK(expect_replaced("//79/Pv6", "//79/Pv7", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].temp_key.key_id: does not match the key"));
  /* The key id edited instead. */
  CHECK(expect_replaced("\"14474384091129631026\"", "\"14474384091129631027\"",
                        MTC_ERR_STORE_CORRUPT, "dcs[0].perm_key.key_id: does not match"));
  /* 255 bytes (the last quantum removed) and 258 bytes. */
  CHECK(expect_replaced("+/w==\"", "+w==\"", MTC_ERR_STORE_CORRUPT, "perm_key.key: not canonical"));
  CHECK(expect_replaced("/P3+/w==\"", "/P3+\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].perm_key.key: must decode to 256 bytes"));
  CHECK(expect_replaced("/P3+/w==\"", "/P3+/w8AAA==\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].perm_key.key: must decode to 256 bytes"));
  /* Bad base64: a foreign character, base64url, missing padding, unused
   * bits set, '=' in the middle. */
  CHECK(expect_replaced("AAECAwQF", "AA!CAwQF", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].perm_key.key: not canonical padded base64"));
  CHECK(expect_replaced("//79/Pv6", "__79/Pv6", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].temp_key.key: not canonical padded base64"));
  CHECK(expect_replaced("/w==\"", "/w\"", MTC_ERR_STORE_CORRUPT, "not canonical padded base64"));
  CHECK(expect_replaced("/w==\"", "/x==\"", MTC_ERR_STORE_CORRUPT, "not canonical padded base64"));
  CHECK(expect_replaced("AAECAwQF", "AA==AwQF", MTC_ERR_STORE_CORRUPT,
                        "not canonical padded base64"));
  CHECK(expect_replaced("\"key\": \"AAEC", "\"key\": 5, \"x\": \"AAEC", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].perm_key.key: must be a string"));
  /* Key id syntax. */
  CHECK(expect_replaced("\"1390049393749643670\"", "1390049393749643670", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].temp_key.key_id: must be a string"));
  CHECK(expect_replaced("\"14474384091129631026\"", "\"18446744073709551616\"",
                        MTC_ERR_STORE_CORRUPT, "dcs[0].perm_key.key_id: must be a decimal"));
  CHECK(expect_replaced("\"14474384091129631026\"", "\"-1\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].perm_key.key_id: must be a decimal"));
  CHECK(expect_replaced("\"14474384091129631026\"", "\"014474384091129631026\"",
                        MTC_ERR_STORE_CORRUPT, "dcs[0].perm_key.key_id: must be a decimal"));
  /* Consistency: a temp key with expires_at 0; a bound temp key or an
   * authorized DC without a perm key. */
  CHECK(expect_replaced("\"expires_at\": 1700086400", "\"expires_at\": 0", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].temp_key.expires_at: must be 1..9007199254740991"));
  char *t = replaced("\"perm_key\"", "\"old_perm_key\"");
  CHECK(t);
  int ok = expect_fail(t, strlen(t), MTC_ERR_STORE_CORRUPT,
                       "dcs[0].temp_key.bound: bound to a perm key that is not there");
  free(t);
  CHECK(ok);
  CHECK(expect_replaced("\"authorized\": false", "\"authorized\": true", MTC_ERR_STORE_CORRUPT,
                        "dcs[1].authorized: true without a perm key"));
}

TEST(corrupt_addresses) {
  CHECK(expect_replaced("149.154.167.51", "149.154.167.256", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].ip: not an IPv4 or IPv6 literal"));
  CHECK(expect_replaced("149.154.167.51", "149.154.167.051", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].ip: not an IPv4"));
  CHECK(expect_replaced("149.154.167.51", "localhost", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].ip: not an IPv4"));
  CHECK(expect_replaced("149.154.167.51", "", MTC_ERR_STORE_CORRUPT, "dcs[0].addrs[0].ip: not"));
  CHECK(expect_replaced("149.154.167.51", "149.154.167.51\\u0000", MTC_ERR_STORE_CORRUPT,
                        "malformed JSON"));
  CHECK(expect_replaced("2001:67c:4e8:f002::a", "2001:67c:4e8:f002::a::1", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].ip: not an IPv4 or IPv6 literal"));
  CHECK(expect_replaced("2001:67c:4e8:f002::a", "[2001:67c:4e8:f002::a]", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].ip: not"));
  CHECK(expect_replaced("2001:67c:4e8:f002::a", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2550",
                        MTC_ERR_STORE_CORRUPT, "dcs[0].addrs[1].ip: not"));
  /* The ipv6 flag must match the literal. */
  CHECK(expect_replaced("\"flags\": 16", "\"flags\": 17", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].flags: ipv6 bit (1) does not match the ip"));
  CHECK(expect_replaced("\"flags\": 17", "\"flags\": 16", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].flags: ipv6 bit"));
  CHECK(expect_replaced("\"flags\": 16", "\"flags\": 80", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].flags: must be 0..63"));
  CHECK(expect_replaced("\"flags\": 16", "\"flags\": -1", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].flags: must be 0..63"));
  /* Ports. */
  CHECK(expect_replaced("\"port\": 443", "\"port\": 0", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].port: must be 1..65535"));
  CHECK(expect_replaced("\"port\": 443", "\"port\": 65536", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].port: must be 1..65535"));
  CHECK(expect_replaced("\"port\": 443", "\"port\": \"443\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].port: must be an integer"));
  CHECK(expect_replaced("\"port\": 443", "\"port\": 443.0", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].port: must be an integer"));
  CHECK(expect_replaced("\"port\": 443", "\"port\": 99999999999999999999", MTC_ERR_STORE_CORRUPT,
                        "malformed JSON"));
  /* Secrets: odd hex, not hex, 15 bytes, a 0xdd secret of 16 bytes, a
   * fake-TLS domain that is not a host name. */
  CHECK(expect_replaced("dd00010203", "dd0001020", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].secret: must be hex"));
  CHECK(expect_replaced("dd00010203", "dd000102zz", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].secret: must be hex"));
  CHECK(expect_replaced("\"dd000102030405060708090a0b0c0d0e0f\"",
                        "\"000102030405060708090a0b0c0d0e\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].secret: secret shorter than 16 bytes"));
  CHECK(expect_replaced("\"dd000102030405060708090a0b0c0d0e0f\"",
                        "\"dd000102030405060708090a0b0c0d0e0f00\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].secret: a 0xdd secret must be exactly 17 bytes"));
  CHECK(expect_replaced("\"dd000102030405060708090a0b0c0d0e0f\"",
                        "\"ee000102030405060708090a0b0c0d0e0f2d61\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].secret: fake-TLS domain is not a valid host name"));
  CHECK(expect_replaced("\"dd000102030405060708090a0b0c0d0e0f\"", "\"\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].secret: must be hex"));
  /* Upper-case hex is fine. */
  char *t = replaced("dd000102030405060708090a0b0c0d0e0f", "DD000102030405060708090A0B0C0D0E0F");
  CHECK(t);
  mtci_state *st = new_state();
  char msg[256];
  int rc = mtci_state_from_json(t, strlen(t), st, msg, sizeof msg);
  free(t);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(st->dcs[0].addrs[1].secret[0], 0xdd);
  free_state(st);
  /* Health fields. */
  CHECK(expect_replaced("\"consecutive_failures\": 3", "\"consecutive_failures\": 4294967296",
                        MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[1].consecutive_failures: must be 0..4294967295"));
  CHECK(expect_replaced("\"last_failure_ms\": 1700000000456", "\"last_failure_ms\": -1",
                        MTC_ERR_STORE_CORRUPT, "dcs[0].addrs[1].last_failure_ms: must be 0.."));
  CHECK(expect_replaced("\"last_success_ms\": 1700000000123", "\"last_success_ms\": null",
                        MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].last_success_ms: must be an integer"));
}

/* SMALL_JSON's dcs array with its first DC repeated n times (new dc_ids). */
static char *many_dcs(int n, int same_id) {
  json_error_t e;
  json_t *root = json_loads(SMALL_JSON, 0, &e);
  if (!root) return NULL;
  json_t *dcs = json_object_get(root, "dcs");
  json_t *first = json_array_get(dcs, 0);
  json_t *arr = json_array();
  for (int i = 0; i < n; i++) {
    json_t *c = json_deep_copy(first);
    json_object_set_new(c, "dc_id", json_integer(same_id ? 2 : 10 + i));
    json_array_append_new(arr, c);
  }
  json_object_set_new(root, "dcs", arr);
  char *text = json_dumps(root, JSON_INDENT(1));
  json_decref(root);
  return text;
}

TEST(corrupt_structure) {
  /* Capacity. */
  char *t = many_dcs(MTCI_STATE_MAX_DCS, 0);
  CHECK(t);
  mtci_state *st = new_state();
  char msg[256];
  int rc = mtci_state_from_json(t, strlen(t), st, msg, sizeof msg);
  free(t);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(st->n_dcs, MTCI_STATE_MAX_DCS);
  free_state(st);
  t = many_dcs(MTCI_STATE_MAX_DCS + 1, 0);
  CHECK(t);
  int ok = expect_fail(t, strlen(t), MTC_ERR_STORE_CORRUPT, "dcs: more than 16 entries");
  free(t);
  CHECK(ok);
  t = many_dcs(2, 1);
  CHECK(t);
  ok = expect_fail(t, strlen(t), MTC_ERR_STORE_CORRUPT, "dcs[1].dc_id: 2 appears twice");
  free(t);
  CHECK(ok);
  /* 17 addresses, 9 future salts. */
  {
    char big[8192] = "\"addrs\": [";
    for (int i = 0; i < 17; i++)
      snprintf(big + strlen(big), sizeof big - strlen(big),
               "%s{\"ip\": \"1.2.3.%d\", \"port\": 443, \"flags\": 0, \"last_success_ms\": 0, "
               "\"last_failure_ms\": 0, \"consecutive_failures\": 0}",
               i ? ", " : "", i);
    snprintf(big + strlen(big), sizeof big - strlen(big), "], \"old_addrs\": [");
    CHECK(expect_replaced("\"addrs\": [", big, MTC_ERR_STORE_CORRUPT,
                          "dcs[0].addrs: more than 16 entries"));
    char fs[4096] = "\"future_salts\": [";
    for (int i = 0; i < 9; i++)
      snprintf(fs + strlen(fs), sizeof fs - strlen(fs),
               "%s{\"valid_since\": 0, \"valid_until\": 0, \"salt\": \"1\"}", i ? ", " : "");
    snprintf(fs + strlen(fs), sizeof fs - strlen(fs), "], \"old_fs\": [");
    CHECK(expect_replaced("\"future_salts\": [", fs, MTC_ERR_STORE_CORRUPT,
                          "dcs[0].future_salts: more than 8 entries"));
  }
  /* Version and format marker. */
  CHECK(expect_replaced("\"version\": 1", "\"version\": 2", MTC_ERR_STORE_VERSION,
                        "version: 2 is not supported"));
  CHECK(expect_replaced("\"version\": 1", "\"version\": 0", MTC_ERR_STORE_VERSION, "version: 0"));
  CHECK(expect_replaced("\"version\": 1", "\"version\": \"1\"", MTC_ERR_STORE_CORRUPT,
                        "version: must be an integer"));
  CHECK(expect_replaced("\"version\": 1,", "", MTC_ERR_STORE_CORRUPT, "version: missing"));
  CHECK(expect_replaced("\"format\": \"mtconn-state\",", "", MTC_ERR_STORE_CORRUPT,
                        "not an mtconn state file"));
  CHECK(expect_replaced("\"mtconn-state\"", "\"mtconn-stat\"", MTC_ERR_STORE_CORRUPT,
                        "format: not an mtconn state file"));
  CHECK(expect_fail("[]", 2, MTC_ERR_STORE_CORRUPT, "not a JSON object"));
  CHECK(expect_fail("\"mtconn-state\"", 14, MTC_ERR_STORE_CORRUPT, "malformed JSON"));
  /* Wrong types. */
  CHECK(expect_replaced("\"test_dcs\": false", "\"test_dcs\": 0", MTC_ERR_STORE_CORRUPT,
                        "test_dcs: must be true or false"));
  CHECK(expect_replaced("\"authorized\": true", "\"authorized\": 1", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].authorized: must be true or false"));
  CHECK(expect_replaced("\"salt\": \"1234605616436508552\"", "\"salt\": 1234605616436508552",
                        MTC_ERR_STORE_CORRUPT, "dcs[0].salt: must be a string"));
  CHECK(expect_replaced("\"dcs\": [", "\"dcs\": {}, \"x\": [", MTC_ERR_STORE_CORRUPT,
                        "dcs: must be an array"));
  CHECK(expect_replaced("\"addrs\": [\n        {", "\"addrs\": [ 5, {", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0]: must be an object"));
  CHECK(expect_replaced("\"perm_key\": {", "\"perm_key\": null, \"x\": {", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].perm_key: must be an object"));
  CHECK(expect_replaced("\"discovered\": {", "\"discovered\": [], \"x\": {",
                        MTC_ERR_STORE_CORRUPT, "discovered: must be an object"));
  /* Missing required fields. */
  CHECK(expect_replaced("\"main_dc\": 2,", "", MTC_ERR_STORE_CORRUPT, "main_dc: missing"));
  CHECK(expect_replaced("\"salt_valid_until\": 1700001800,", "", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].salt_valid_until: missing"));
  CHECK(expect_replaced("\"port\": 443,", "", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].addrs[0].port: missing"));
  CHECK(expect_replaced("\"created\": 1700000000\n", "\"x\": 1\n", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].perm_key.created: missing"));
  /* Ranges. */
  CHECK(expect_replaced("\"dc_id\": 2", "\"dc_id\": 0", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].dc_id: must be 1..999"));
  CHECK(expect_replaced("\"dc_id\": 2", "\"dc_id\": 10002", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].dc_id: must be 1..999"));
  CHECK(expect_replaced("\"main_dc\": 2", "\"main_dc\": 1000", MTC_ERR_STORE_CORRUPT,
                        "main_dc: must be 0..999"));
  CHECK(expect_replaced("\"time_offset_ms\": -1500", "\"time_offset_ms\": 9007199254740992",
                        MTC_ERR_STORE_CORRUPT, "time_offset_ms: must be -9007199254740991.."));
  CHECK(expect_replaced("\"valid_since\": 1700001800", "\"valid_since\": 1700003601",
                        MTC_ERR_STORE_CORRUPT,
                        "dcs[0].future_salts[0].valid_until: before valid_since"));
  CHECK(expect_replaced("\"salt\": \"-1\"", "\"salt\": \"-0\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[0].future_salts[0].salt: must be a decimal string"));
  CHECK(expect_replaced("\"salt\": \"0\"", "\"salt\": \"+1\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[1].salt: must be a decimal string"));
  CHECK(expect_replaced("\"salt\": \"0\"", "\"salt\": \"9223372036854775808\"",
                        MTC_ERR_STORE_CORRUPT, "dcs[1].salt: must be a decimal string"));
  CHECK(expect_replaced("\"salt\": \"0\"", "\"salt\": \"-9223372036854775809\"",
                        MTC_ERR_STORE_CORRUPT, "dcs[1].salt: must be a decimal string"));
  CHECK(expect_replaced("\"salt\": \"0\"", "\"salt\": \" 1\"", MTC_ERR_STORE_CORRUPT,
                        "dcs[1].salt: must be a decimal string"));
  CHECK(expect_replaced("\"getConfig\"", "\"get config\"", MTC_ERR_STORE_CORRUPT,
                        "discovered.source: must be 1..31 characters"));
  CHECK(expect_replaced("\"getConfig\"", "\"\"", MTC_ERR_STORE_CORRUPT,
                        "discovered.source: must be 1..31"));
  /* JSON-level damage: trailing garbage, a second document, duplicate
   * keys, invalid UTF-8, a raw NUL, deep nesting. */
  size_t n = strlen(SMALL_JSON);
  char *g = malloc(n + 8);
  CHECK(g);
  memcpy(g, SMALL_JSON, n);
  memcpy(g + n, "x", 2);
  ok = expect_fail(g, n + 1, MTC_ERR_STORE_CORRUPT, "data after the end of the JSON value");
  memcpy(g + n, "{}", 3);
  ok = ok && expect_fail(g, n + 2, MTC_ERR_STORE_CORRUPT, "data after the end");
  memcpy(g + n, "\n\n \t", 5); /* whitespace is fine */
  mtci_state *ws = new_state();
  ok = ok && ws && mtci_state_from_json(g, n + 4, ws, msg, sizeof msg) == 0;
  free_state(ws);
  g[n - 3] = '\0'; /* a NUL byte inside the text */
  ok = ok && expect_fail(g, n, MTC_ERR_STORE_CORRUPT, "malformed JSON at line");
  free(g);
  CHECK(ok);
  CHECK(expect_replaced("\"main_dc\": 2,", "\"main_dc\": 2, \"main_dc\": 3,", MTC_ERR_STORE_CORRUPT,
                        "a key appears twice"));
  CHECK(expect_replaced("getConfig", "get\xff\xfe", MTC_ERR_STORE_CORRUPT, "invalid UTF-8"));
  char deep[5000];
  memset(deep, '[', sizeof deep);
  CHECK(expect_fail(deep, sizeof deep, MTC_ERR_STORE_CORRUPT, "malformed JSON"));
}

TEST(unknown_fields_ignored) {
  /* Forward compatibility within version 1: new fields anywhere are
   * skipped, including objects and arrays. */
  char *t1 = replaced("\"version\": 1,", "\"version\": 1, \"future_top\": {\"a\": [1, 2]},");
  CHECK(t1);
  char *t2 = NULL;
  {
    const char *p = strstr(t1, "\"port\": 443,");
    size_t pre = (size_t)(p - t1);
    const char *ins = "\"transport\": \"tcp\", \"rtt_ms\": [12, 13], ";
    t2 = malloc(strlen(t1) + strlen(ins) + 1);
    CHECK(t2);
    memcpy(t2, t1, pre);
    strcpy(t2 + pre, ins);
    strcat(t2, t1 + pre);
  }
  mtci_state *want = new_state(), *got = new_state();
  CHECK(want && got);
  fill_small(want);
  char msg[256];
  CHECK_EQ_INT(mtci_state_from_json(t2, strlen(t2), got, msg, sizeof msg), 0);
  CHECK(state_diff(want, got) == NULL);
  free(t1);
  free(t2);
  free_state(want);
  free_state(got);
}

TEST(too_large) {
  size_t n = 2u << 20;
  char *big = malloc(n);
  CHECK(big);
  memset(big, ' ', n);
  memcpy(big, SMALL_JSON, strlen(SMALL_JSON)); /* valid JSON + spaces: still refused */
  CHECK(expect_fail(big, n, MTC_ERR_STORE_TOO_LARGE, "over the 1048576-byte limit"));
  CHECK(expect_fail(big, MTCI_STATE_MAX_JSON + 1, MTC_ERR_STORE_TOO_LARGE, "limit"));
  mtci_state *st = new_state();
  char msg[256];
  CHECK_EQ_INT(mtci_state_from_json(big, MTCI_STATE_MAX_JSON, st, msg, sizeof msg), 0);
  free_state(st);
  free(big);
}

TEST(save_refuses_invalid_state) {
  /* The library never writes a file it would refuse to read. */
  mtci_state *st = new_state();
  CHECK(st);
  char *text = (char *)1, msg[256];
  size_t n = 7;
  fill_small(st);
  st->dcs[0].perm_key[100] ^= 1;
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), MTC_ERR_INVALID_ARG);
  CHECK(text == NULL && n == 0);
  CHECK(strstr(msg, "dcs[0].perm_key.key_id: does not match") != NULL);
  fill_small(st);
  st->dcs[0].addrs[1].port = 0;
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), MTC_ERR_INVALID_ARG);
  CHECK(strstr(msg, "dcs[0].addrs[1].port: must be 1..65535") != NULL);
  fill_small(st);
  st->dcs[1].dc_id = 2;
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), MTC_ERR_INVALID_ARG);
  CHECK(strstr(msg, "dcs[1].dc_id: 2 appears twice") != NULL);
  fill_small(st);
  memset(st->dcs[0].addrs[0].ip, 'x', sizeof st->dcs[0].addrs[0].ip);
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), MTC_ERR_INVALID_ARG);
  CHECK(strstr(msg, "dcs[0].addrs[0].ip: not terminated") != NULL);
  fill_small(st);
  st->n_dcs = MTCI_STATE_MAX_DCS + 1;
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), MTC_ERR_INVALID_ARG);
  CHECK(strstr(msg, "dcs (count): must be 0..16") != NULL);
  fill_small(st);
  st->time_offset_ms = INT64_MIN;
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), MTC_ERR_INVALID_ARG);
  CHECK(strstr(msg, "time_offset_ms") != NULL);
  fill_small(st);
  st->dcs[0].addrs[0].secret_len = 200;
  CHECK_EQ_INT(mtci_state_to_json(st, &text, &n, msg, sizeof msg), MTC_ERR_INVALID_ARG);
  CHECK(strstr(msg, "dcs[0].addrs[0].secret: longer than 199 bytes") != NULL);
  free_state(st);
}

TEST(state_helpers) {
  mtci_state *st = new_state();
  CHECK(st);
  CHECK(mtci_state_add_dc(st, 0) == NULL);
  CHECK(mtci_state_add_dc(st, 1000) == NULL);
  mtci_state_dc *d = mtci_state_add_dc(st, 5);
  CHECK(d && d->dc_id == 5 && st->n_dcs == 1);
  CHECK(mtci_state_add_dc(st, 5) == d);
  CHECK(mtci_state_find_dc(st, 5) == d);
  CHECK(mtci_state_find_dc(st, 6) == NULL);
  for (int i = 1; i <= MTCI_STATE_MAX_DCS; i++) mtci_state_add_dc(st, 100 + i);
  CHECK_EQ_INT(st->n_dcs, MTCI_STATE_MAX_DCS);
  CHECK(mtci_state_find_dc(st, 100 + MTCI_STATE_MAX_DCS) == NULL); /* no room for the last */
  d->has_perm = 1;
  memset(d->perm_key, 0xab, sizeof d->perm_key);
  mtci_state_clear(st);
  static const uint8_t zero[sizeof(mtci_state)];
  CHECK(memcmp(st, zero, sizeof zero) == 0);
  free_state(st);
}

/* ---- files ------------------------------------------------------------------ */

static char tmp_root[64];

static int make_tmp(void) {
  snprintf(tmp_root, sizeof tmp_root, "/tmp/mtc_store_XXXXXX");
  return mkdtemp(tmp_root) != NULL;
}

/* Remove everything in dir (one level) and dir itself. */
static void rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char p[512];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      chmod(p, 0700);
      if (rmdir(p) != 0) unlink(p);
    }
    closedir(d);
  }
  chmod(dir, 0700);
  rmdir(dir);
}

/* Number of entries in dir (without . and ..), -1 if it cannot be opened. */
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* Whole file into a malloc'ed buffer. */
static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(4u << 20);
  *n = buf ? fread(buf, 1, 4u << 20, f) : 0;
  fclose(f);
  return buf;
}

static int write_raw(const char *path, const char *data, size_t n, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return -1;
  int ok = write(fd, data, n) == (ssize_t)n;
  close(fd);
  chmod(path, mode);
  return ok ? 0 : -1;
}

TEST(file_save_load) {
  CHECK(make_tmp());
  char path[128], msg[256];
  snprintf(path, sizeof path, "%s/state.json", tmp_root);
  mtci_state *a = new_state(), *b = new_state(), *got = new_state();
  CHECK(a && b && got);
  fill_small(a);
  fill_full(b);
  mode_t old_mask = umask(0); /* a permissive umask must not widen the mode */
  int rc = mtci_store_save(path, a, msg, sizeof msg);
  umask(old_mask);
  if (rc) fprintf(stderr, "  %s\n", msg);
  CHECK_EQ_INT(rc, 0);
  struct stat sb;
  CHECK(stat(path, &sb) == 0);
  CHECK_EQ_INT(sb.st_mode & 0777, 0600);
  CHECK_EQ_INT(count_entries(tmp_root), 1); /* no temp file left behind */
  size_t n = 0;
  char *bytes = slurp(path, &n);
  CHECK(bytes);
  CHECK_EQ_INT(n, strlen(SMALL_JSON));
  CHECK(memcmp(bytes, SMALL_JSON, n) == 0);
  free(bytes);
  CHECK_EQ_INT(mtci_store_load(path, got, msg, sizeof msg), 0);
  CHECK(state_diff(a, got) == NULL);
  /* Replace the content with a different state. */
  CHECK_EQ_INT(mtci_store_save(path, b, msg, sizeof msg), 0);
  CHECK_EQ_INT(count_entries(tmp_root), 1);
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
  CHECK_EQ_INT(mtci_store_load(path, got, msg, sizeof msg), 0);
  CHECK(state_diff(b, got) == NULL);
  /* A relative path (no directory part) works too. */
  char cwd[512];
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  CHECK(chdir(tmp_root) == 0);
  rc = mtci_store_save("rel.json", a, msg, sizeof msg);
  int rc2 = mtci_store_load("rel.json", got, msg, sizeof msg);
  CHECK(chdir(cwd) == 0);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(rc2, 0);
  CHECK(state_diff(a, got) == NULL);
  free_state(a);
  free_state(b);
  free_state(got);
  rm_tree(tmp_root);
}

TEST(file_save_failures) {
  CHECK(make_tmp());
  char path[128], msg[256];
  snprintf(path, sizeof path, "%s/state.json", tmp_root);
  mtci_state *a = new_state(), *b = new_state();
  CHECK(a && b);
  fill_small(a);
  fill_full(b);
  /* A missing directory: STORE_IO, nothing created anywhere. */
  char nodir[160];
  snprintf(nodir, sizeof nodir, "%s/missing/state.json", tmp_root);
  CHECK_EQ_INT(mtci_store_save(nodir, a, msg, sizeof msg), MTC_ERR_STORE_IO);
  CHECK(strstr(msg, "cannot create a temporary file") != NULL);
  CHECK_EQ_INT(count_entries(tmp_root), 0);

  /* The old file stays byte for byte through every failing step. */
  CHECK_EQ_INT(mtci_store_save(path, a, msg, sizeof msg), 0);
  static const struct {
    int step;
    const char *text;
  } faults[] = {{MTCI_STORE_FAULT_WRITE, "write of the temporary file failed"},
                {MTCI_STORE_FAULT_FSYNC, "fsync of the temporary file failed"},
                {MTCI_STORE_FAULT_CLOSE, "close of the temporary file failed"},
                {MTCI_STORE_FAULT_RENAME, "rename to the state file failed"}};
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
    mtci_store_fault_step = faults[i].step;
    CHECK_EQ_INT(mtci_store_save(path, b, msg, sizeof msg), MTC_ERR_STORE_IO);
    CHECK(strstr(msg, faults[i].text) != NULL);
    CHECK(strstr(msg, "Input/output error") != NULL);
    CHECK_EQ_INT(mtci_store_fault_step, MTCI_STORE_FAULT_NONE);
    CHECK_EQ_INT(count_entries(tmp_root), 1);
    size_t n = 0;
    char *bytes = slurp(path, &n);
    CHECK(bytes);
    int same = n == strlen(SMALL_JSON) && memcmp(bytes, SMALL_JSON, n) == 0;
    free(bytes);
    CHECK(same);
  }
  /* A failing directory fsync happens after the rename: reported, but the
   * new content is in place. */
  mtci_store_fault_step = MTCI_STORE_FAULT_DIR_FSYNC;
  CHECK_EQ_INT(mtci_store_save(path, b, msg, sizeof msg), MTC_ERR_STORE_IO);
  CHECK(strstr(msg, "state file replaced, but fsync of its directory failed") != NULL);
  mtci_state *got = new_state();
  CHECK(got);
  CHECK_EQ_INT(mtci_store_load(path, got, msg, sizeof msg), 0);
  CHECK(state_diff(b, got) == NULL);
  free_state(got);
  CHECK_EQ_INT(count_entries(tmp_root), 1);

  /* The target is a directory: rename fails, the directory survives, no
   * temp file is left. */
  char dirpath[160];
  snprintf(dirpath, sizeof dirpath, "%s/adir", tmp_root);
  CHECK(mkdir(dirpath, 0700) == 0);
  CHECK_EQ_INT(mtci_store_save(dirpath, a, msg, sizeof msg), MTC_ERR_STORE_IO);
  CHECK(strstr(msg, "rename to the state file failed") != NULL);
  struct stat sb;
  CHECK(stat(dirpath, &sb) == 0 && S_ISDIR(sb.st_mode));
  CHECK_EQ_INT(count_entries(tmp_root), 2);
  CHECK_EQ_INT(mtci_store_save_file("", "x", 1, msg, sizeof msg), MTC_ERR_INVALID_ARG);
  snprintf(dirpath, sizeof dirpath, "%s/adir/", tmp_root);
  CHECK_EQ_INT(mtci_store_save(dirpath, a, msg, sizeof msg), MTC_ERR_STORE_IO);

  /* A read-only directory. Root ignores the mode: probe, and rely on the
   * fault injection above when writes still succeed. */
  char rodir[160], ropath[200], probe[200];
  snprintf(rodir, sizeof rodir, "%s/ro", tmp_root);
  snprintf(ropath, sizeof ropath, "%s/state.json", rodir);
  snprintf(probe, sizeof probe, "%s/probe", rodir);
  CHECK(mkdir(rodir, 0700) == 0);
  CHECK_EQ_INT(mtci_store_save(ropath, a, msg, sizeof msg), 0);
  CHECK(chmod(rodir, 0500) == 0);
  int pfd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (pfd >= 0) {
    close(pfd);
    unlink(probe);
    fprintf(stderr, "  (running as root: read-only directory case covered by fault injection)\n");
  } else {
    CHECK_EQ_INT(mtci_store_save(ropath, b, msg, sizeof msg), MTC_ERR_STORE_IO);
    CHECK(strstr(msg, "Permission denied") != NULL);
    size_t n = 0;
    char *bytes = slurp(ropath, &n);
    CHECK(bytes);
    int same = n == strlen(SMALL_JSON) && memcmp(bytes, SMALL_JSON, n) == 0;
    free(bytes);
    CHECK(same);
    CHECK_EQ_INT(count_entries(rodir), 1);
  }
  chmod(rodir, 0700);
  unlink(ropath);
  rmdir(rodir);
  free_state(a);
  free_state(b);
  rm_tree(tmp_root);
}

/* Load of path must fail with code and leave the file's bytes and mtime
 * exactly as they were. */
static int load_fails_untouched(const char *path, int code, const char *want) {
  struct stat before, after;
  if (stat(path, &before) != 0) return 0;
  size_t n0 = 0, n1 = 0;
  char *b0 = slurp(path, &n0);
  mtci_state *st = new_state();
  char msg[256] = "";
  int rc = mtci_store_load(path, st, msg, sizeof msg);
  char *b1 = slurp(path, &n1);
  int ok = rc == code && strstr(msg, want) != NULL && b0 && b1 && n0 == n1 &&
           memcmp(b0, b1, n0) == 0 && stat(path, &after) == 0 &&
           before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
           before.st_mtim.tv_nsec == after.st_mtim.tv_nsec && before.st_mode == after.st_mode;
  if (!ok) fprintf(stderr, "  %s: want %d \"%s\", got %d \"%s\"\n", path, code, want, rc, msg);
  static const uint8_t zero[sizeof(mtci_state)];
  if (memcmp(st, zero, sizeof zero) != 0) ok = 0;
  free(b0);
  free(b1);
  free_state(st);
  return ok;
}

TEST(file_load_failures) {
  CHECK(make_tmp());
  char path[128], msg[256];
  mtci_state *st = new_state();
  CHECK(st);
  snprintf(path, sizeof path, "%s/none.json", tmp_root);
  CHECK_EQ_INT(mtci_store_load(path, st, msg, sizeof msg), MTC_ERR_STORE_NOT_FOUND);
  CHECK(strstr(msg, "fresh start") != NULL);
  CHECK_EQ_INT(count_entries(tmp_root), 0); /* loading creates nothing */

  /* Corrupt (truncated), empty, wrong version, edited key, too large,
   * loose permissions: each refused, the file unchanged. */
  snprintf(path, sizeof path, "%s/trunc.json", tmp_root);
  CHECK(write_raw(path, SMALL_JSON, 1000, 0600) == 0);
  CHECK(load_fails_untouched(path, MTC_ERR_STORE_CORRUPT, "malformed JSON"));
  snprintf(path, sizeof path, "%s/empty.json", tmp_root);
  CHECK(write_raw(path, "", 0, 0600) == 0);
  CHECK(load_fails_untouched(path, MTC_ERR_STORE_CORRUPT, "empty"));
  char *t = replaced("\"version\": 1", "\"version\": 2");
  CHECK(t);
  snprintf(path, sizeof path, "%s/v2.json", tmp_root);
  CHECK(write_raw(path, t, strlen(t), 0600) == 0);
  free(t);
  CHECK(load_fails_untouched(path, MTC_ERR_STORE_VERSION, "version: 2"));
  t = replaced("AAECAwQF", "AAEDAwQF");
  CHECK(t);
  snprintf(path, sizeof path, "%s/edited.json", tmp_root);
  CHECK(write_raw(path, t, strlen(t), 0600) == 0);
  free(t);
  CHECK(load_fails_untouched(path, MTC_ERR_STORE_CORRUPT, "perm_key.key_id"));
  snprintf(path, sizeof path, "%s/big.json", tmp_root);
  {
    size_t n = 2u << 20;
    char *big = malloc(n);
    CHECK(big);
    memset(big, ' ', n);
    memcpy(big, SMALL_JSON, strlen(SMALL_JSON));
    int w = write_raw(path, big, n, 0600);
    free(big);
    CHECK(w == 0);
  }
  CHECK(load_fails_untouched(path, MTC_ERR_STORE_TOO_LARGE, "over the 1048576-byte limit"));
  snprintf(path, sizeof path, "%s/open.json", tmp_root);
  CHECK(write_raw(path, SMALL_JSON, strlen(SMALL_JSON), 0644) == 0);
  CHECK(load_fails_untouched(path, MTC_ERR_STORE_PERMISSIONS, "mode is 644; run chmod 600"));
  CHECK(chmod(path, 0620) == 0);
  CHECK(load_fails_untouched(path, MTC_ERR_STORE_PERMISSIONS, "mode is 620"));
  CHECK(chmod(path, 0400) == 0); /* owner read-only is fine */
  CHECK_EQ_INT(mtci_store_load(path, st, msg, sizeof msg), 0);
  CHECK_EQ_INT(st->main_dc, 2);
  /* A directory is not a state file. */
  snprintf(path, sizeof path, "%s/sub", tmp_root);
  CHECK(mkdir(path, 0700) == 0);
  CHECK_EQ_INT(mtci_store_load(path, st, msg, sizeof msg), MTC_ERR_STORE_IO);
  CHECK(strstr(msg, "not a regular file") != NULL);
  /* The raw layer hands back exactly the bytes, NUL-terminated. */
  snprintf(path, sizeof path, "%s/open.json", tmp_root);
  char *data = NULL;
  size_t len = 0;
  CHECK_EQ_INT(mtci_store_load_file(path, &data, &len, msg, sizeof msg), 0);
  CHECK_EQ_INT(len, strlen(SMALL_JSON));
  CHECK(memcmp(data, SMALL_JSON, len) == 0 && data[len] == '\0');
  mtci_state_json_free(data, len + 1);
  free_state(st);
  rm_tree(tmp_root);
}

/* Symlinks, FIFOs, modes. A symlink at the path is replaced by the file on
 * save, its target untouched; a symlink whose target is missing (say, on a
 * volume that is not mounted) is not "no state": loading it must not look
 * like a fresh start, or the first save would replace the link and the
 * keys behind it would be orphaned. A FIFO is refused without blocking. A
 * save over a file with loose permissions, or under umask 0777, leaves
 * mode 0600. */
TEST(file_links_modes) {
  CHECK(make_tmp());
  char path[160], target[160], msg[256];
  snprintf(path, sizeof path, "%s/state.json", tmp_root);
  snprintf(target, sizeof target, "%s/target.json", tmp_root);
  mtci_state *a = new_state(), *b = new_state(), *got = new_state();
  CHECK(a && b && got);
  fill_small(a);
  fill_full(b);

  /* A symlink to a missing file: STORE_IO naming it, nothing created. */
  CHECK(symlink("target.json", path) == 0);
  CHECK_EQ_INT(mtci_store_load(path, got, msg, sizeof msg), MTC_ERR_STORE_IO);
  CHECK(strstr(msg, "symlink") != NULL);
  CHECK_EQ_INT(count_entries(tmp_root), 1);
  struct stat sb;
  CHECK(lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode));

  /* A symlink to a state file: loads through the link; a save replaces the
   * link with a regular file and leaves the target's bytes alone. */
  CHECK(write_raw(target, SMALL_JSON, strlen(SMALL_JSON), 0600) == 0);
  CHECK_EQ_INT(mtci_store_load(path, got, msg, sizeof msg), 0);
  CHECK(state_diff(a, got) == NULL);
  CHECK_EQ_INT(mtci_store_save(path, b, msg, sizeof msg), 0);
  CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0600);
  size_t n = 0;
  char *bytes = slurp(target, &n);
  CHECK(bytes);
  int same = n == strlen(SMALL_JSON) && memcmp(bytes, SMALL_JSON, n) == 0;
  free(bytes);
  CHECK(same);
  CHECK_EQ_INT(mtci_store_load(path, got, msg, sizeof msg), 0);
  CHECK(state_diff(b, got) == NULL);
  CHECK_EQ_INT(count_entries(tmp_root), 2);

  /* A save over a file with loose permissions, under umask 0777. */
  CHECK(chmod(path, 0666) == 0);
  CHECK_EQ_INT(mtci_store_load(path, got, msg, sizeof msg), MTC_ERR_STORE_PERMISSIONS);
  mode_t old_mask = umask(0777);
  int rc = mtci_store_save(path, a, msg, sizeof msg);
  umask(old_mask);
  CHECK_EQ_INT(rc, 0);
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
  CHECK_EQ_INT(mtci_store_load(path, got, msg, sizeof msg), 0);
  CHECK(state_diff(a, got) == NULL);
  CHECK_EQ_INT(count_entries(tmp_root), 2);

  /* A FIFO: refused at once (no writer needed), not read. */
  char fifo[160];
  snprintf(fifo, sizeof fifo, "%s/fifo.json", tmp_root);
  CHECK(mkfifo(fifo, 0600) == 0);
  CHECK_EQ_INT(mtci_store_load(fifo, got, msg, sizeof msg), MTC_ERR_STORE_IO);
  CHECK(strstr(msg, "not a regular file") != NULL);
  free_state(a);
  free_state(b);
  free_state(got);
  rm_tree(tmp_root);
}

TEST(strerror_texts) {
  static const int codes[] = {MTC_ERR_STORE_CORRUPT, MTC_ERR_STORE_VERSION,
                              MTC_ERR_STORE_NOT_FOUND, MTC_ERR_STORE_IO,
                              MTC_ERR_STORE_TOO_LARGE, MTC_ERR_STORE_PERMISSIONS};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    CHECK(codes[i] <= -800 && codes[i] >= -819);
    CHECK(strcmp(mtc_strerror(codes[i]), "unknown error") != 0);
  }
}

TEST_MAIN("store", CASE(exact_json_small), CASE(empty_state), CASE(round_trip_full),
          CASE(truncated_everywhere), CASE(corrupt_keys), CASE(corrupt_addresses),
          CASE(corrupt_structure), CASE(unknown_fields_ignored), CASE(too_large),
          CASE(save_refuses_invalid_state), CASE(state_helpers), CASE(file_save_load),
          CASE(file_save_failures), CASE(file_load_failures), CASE(file_links_modes),
          CASE(strerror_texts))
