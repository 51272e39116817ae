/*
 * Pure pieces of the MTContext: address sets (src/dc.c), the rules
 * (src/policy.c) and one connection's byte logic (src/conn.c). Expected
 * values come from the documented rules (policy.h, dc.h) and the transport
 * spec (PROTOCOL.md §4.1), worked out by hand.
 */
#include <string.h>

#include "conn.h"
#include "dc.h"
#include "policy.h"
#include "store.h"
#include "test.h"

static mtci_dc_option opt(int dc, const char *ip, uint16_t port, unsigned flags) {
  mtci_dc_option o = {dc, ip, strlen(ip), port, flags, NULL, 0};
  return o;
}

/* ---- back-off and rate ----------------------------------------------------------- */

TEST(backoff) {
  /* 1 s doubling, capped at 30 s; 0 failures: at once */
  static const int64_t want[] = {0, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
  for (int f = 0; f < 9; f++) CHECK_EQ_INT(mtci_policy_backoff_ms(1000, 30000, f, 0), want[f]);
  /* -429: at least double, never below 3 s */
  CHECK_EQ_INT(mtci_policy_backoff_ms(1000, 30000, 0, 1), 3000);
  CHECK_EQ_INT(mtci_policy_backoff_ms(1000, 30000, 1, 1), 3000);
  CHECK_EQ_INT(mtci_policy_backoff_ms(1000, 30000, 2, 1), 4000);
  CHECK_EQ_INT(mtci_policy_backoff_ms(1000, 30000, 3, 1), 8000);
  CHECK_EQ_INT(mtci_policy_backoff_ms(1000, 30000, 9, 1), 30000);
  /* a huge failure count does not overflow */
  CHECK_EQ_INT(mtci_policy_backoff_ms(1000, 30000, 1000000, 0), 30000);
  CHECK_EQ_INT(mtci_policy_backoff_ms(250, 100, 3, 0), 250); /* max below initial: initial */
}

TEST(rate) {
  mtci_rate r;
  memset(&r, 0, sizeof r);
  CHECK_EQ_INT(mtci_rate_next_allowed(&r, 3, 0), 0);
  mtci_rate_note(&r, 0);
  mtci_rate_note(&r, 1000);
  mtci_rate_note(&r, 2000);
  /* a 4th connect must wait until the first leaves the 60 s window */
  CHECK_EQ_INT(mtci_rate_next_allowed(&r, 3, 2500), 60000);
  CHECK_EQ_INT(mtci_rate_next_allowed(&r, 4, 2500), 2500);
  CHECK_EQ_INT(mtci_rate_next_allowed(&r, 3, 70000), 70000);
  mtci_rate_note(&r, 60000);
  CHECK_EQ_INT(mtci_rate_next_allowed(&r, 3, 60500), 61000);
  CHECK_EQ_INT(mtci_rate_next_allowed(&r, 0, 60500), 120000); /* clamped to 1 per minute */
  /* the ring keeps the last 64 */
  for (int i = 0; i < 100; i++) mtci_rate_note(&r, 100000 + i);
  CHECK_EQ_INT(mtci_rate_next_allowed(&r, 64, 100100), 100036 + 60000);
}

/* ---- address choice --------------------------------------------------------------- */

TEST(candidates) {
  mtci_dc dc;
  memset(&dc, 0, sizeof dc);
  dc.id = 2;
  static const uint8_t secret[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  mtci_dc_option o[9] = {
      opt(2, "10.0.0.1", 443, 0),                   /* 0 untried v4 */
      opt(2, "10.0.0.2", 443, 0),                   /* 1 failing, last failure 500 */
      opt(2, "10.0.0.3", 443, 0),                   /* 2 good, success 100 */
      opt(2, "10.0.0.4", 443, 0),                   /* 3 failing, last failure 200 */
      opt(2, "2001:db8::1", 443, MTC_ADDR_IPV6),    /* 4 untried v6 */
      opt(2, "10.0.0.6", 443, MTC_ADDR_MEDIA_ONLY), /* 5 media only */
      opt(2, "10.0.0.7", 443, MTC_ADDR_CDN),        /* 6 CDN: never */
      opt(2, "10.0.0.8", 443, 0),                   /* 7 with a secret */
      opt(2, "10.0.0.9", 443, MTC_ADDR_STATIC),     /* 8 static, good, success 50 */
  };
  o[7].secret = secret;
  o[7].secret_len = sizeof secret;
  for (int i = 0; i < 9; i++) CHECK_EQ_INT(mtci_dc_add_addr(&dc, &o[i], MTCI_DC_FROM_SEED), 1);
  mtci_dc_note_failure(&dc, "10.0.0.2", 443, 500);
  mtci_dc_note_failure(&dc, "10.0.0.4", 443, 200);
  mtci_dc_note_success(&dc, "10.0.0.3", 443, 100);
  mtci_dc_note_success(&dc, "10.0.0.9", 443, 50);
  CHECK_EQ_INT(dc.addrs[1].consecutive_failures, 1);

  size_t ord[16];
  mtci_choice c;
  memset(&c, 0, sizeof c);
  c.obfuscated = 1;
  /* good (latest success first), untried (v4 first, list order), failing (oldest failure first) */
  size_t n = mtci_policy_candidates(dc.addrs, dc.n_addrs, &c, ord, 16);
  static const size_t want1[] = {2, 8, 0, 4, 3, 1};
  CHECK_EQ_INT(n, 6);
  for (size_t i = 0; i < n; i++) CHECK_EQ_INT(ord[i], want1[i]);
  /* secrets usable: the secret endpoint joins the untried ones in list order */
  c.secret_ok = 1;
  n = mtci_policy_candidates(dc.addrs, dc.n_addrs, &c, ord, 16);
  static const size_t want2[] = {2, 8, 0, 7, 4, 3, 1};
  CHECK_EQ_INT(n, 7);
  for (size_t i = 0; i < n; i++) CHECK_EQ_INT(ord[i], want2[i]);
  /* IPv6 preferred within a class */
  c.secret_ok = 0;
  c.prefer_ipv6 = 1;
  n = mtci_policy_candidates(dc.addrs, dc.n_addrs, &c, ord, 16);
  static const size_t want3[] = {2, 8, 4, 0, 3, 1};
  CHECK_EQ_INT(n, 6);
  for (size_t i = 0; i < n; i++) CHECK_EQ_INT(ord[i], want3[i]);
  /* media: only the media_only endpoint */
  c.prefer_ipv6 = 0;
  c.media = 1;
  n = mtci_policy_candidates(dc.addrs, dc.n_addrs, &c, ord, 16);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ord[0], 5);
  /* through SOCKS5: only static endpoints */
  c.media = 0;
  c.via_proxy = 1;
  n = mtci_policy_candidates(dc.addrs, dc.n_addrs, &c, ord, 16);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ord[0], 8);
  /* cap respected */
  c.via_proxy = 0;
  CHECK_EQ_INT(mtci_policy_candidates(dc.addrs, dc.n_addrs, &c, ord, 2), 2);
  /* a success resets the failure count: 10.0.0.2 becomes the freshest good one */
  mtci_dc_note_success(&dc, "10.0.0.2", 443, 900);
  n = mtci_policy_candidates(dc.addrs, dc.n_addrs, &c, ord, 16);
  CHECK_EQ_INT(ord[0], 1);
  CHECK_EQ_INT(ord[1], 2);
  mtci_dc_clear_addrs(&dc);
}

/* ---- address sets ------------------------------------------------------------------- */

TEST(options_checked) {
  mtci_dc_option bad[] = {
      opt(2, "10.0.0.1", 0, 0),                /* port 0 */
      opt(2, "10.0.0.300", 443, 0),            /* not an IPv4 literal */
      opt(0, "10.0.0.1", 443, 0),              /* DC 0 */
      opt(1000, "10.0.0.1", 443, 0),           /* DC 1000: temporary ids are not kept */
      opt(2, "2001:db8::1", 443, 0),           /* IPv6 without the ipv6 flag */
      opt(2, "10.0.0.1", 443, MTC_ADDR_IPV6),  /* the flag on an IPv4 literal */
      opt(2, "10.0.0.1", 443, 1u << 6),        /* unknown flag bit */
      opt(2, "[2001:db8::1]", 443, MTC_ADDR_IPV6), /* brackets */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ_INT(mtci_dc_option_check(&bad[i]), MTC_ERR_INVALID_ARG);
  static const uint8_t dd17[17] = {0xdd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static const uint8_t bad17[17] = {0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  mtci_dc_option s = opt(2, "10.0.0.1", 443, 0);
  s.secret = dd17;
  s.secret_len = sizeof dd17;
  CHECK_EQ_INT(mtci_dc_option_check(&s), 0);
  s.secret = bad17;
  CHECK_EQ_INT(mtci_dc_option_check(&s), MTC_ERR_INVALID_ARG);
  mtci_dc dc;
  memset(&dc, 0, sizeof dc);
  for (int i = 0; i < MTCI_DC_MAX_ADDRS; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.1.0.%d", i + 1);
    mtci_dc_option o = opt(2, ip, 443, 0);
    CHECK_EQ_INT(mtci_dc_add_addr(&dc, &o, MTCI_DC_FROM_SEED), 1);
  }
  mtci_dc_option extra = opt(2, "10.2.0.1", 443, 0);
  CHECK_EQ_INT(mtci_dc_add_addr(&dc, &extra, MTCI_DC_FROM_SEED), MTC_ERR_NOMEM);
  mtci_dc_option dup = opt(2, "10.1.0.1", 443, MTC_ADDR_STATIC);
  CHECK_EQ_INT(mtci_dc_add_addr(&dc, &dup, MTCI_DC_FROM_CONFIG), 0);
  CHECK_EQ_INT(dc.addrs[0].flags, 0); /* first occurrence wins */
  CHECK_EQ_INT(dc.cap_addrs, MTCI_DC_MAX_ADDRS); /* grew on demand up to the cap */
  mtci_dc_clear_addrs(&dc);
}

TEST(apply_config) {
  mtci_dc_table t;
  mtci_dc_table_init(&t);
  mtci_dc_option seed = opt(2, "149.154.167.51", 443, MTC_ADDR_STATIC);
  CHECK_EQ_INT(mtci_dc_add_addr(mtci_dc_get(&t, 2), &seed, MTCI_DC_FROM_SEED), 1);
  mtci_dc_option seed5 = opt(5, "149.154.171.5", 443, MTC_ADDR_STATIC);
  CHECK_EQ_INT(mtci_dc_add_addr(mtci_dc_get(&t, 5), &seed5, MTCI_DC_FROM_SEED), 1);

  mtci_dc_option cfg[] = {
      opt(2, "1.1.1.1", 443, 0),
      opt(2, "1.1.1.1", 443, MTC_ADDR_MEDIA_ONLY), /* duplicate: dropped */
      opt(2, "2.2.2.2", 80, 0),
      opt(4, "4.4.4.4", 443, 0),                   /* a new DC */
      opt(2, "2.2.2.2", 0, 0),                     /* invalid: skipped */
      opt(1000, "5.5.5.5", 443, 0),                /* temporary id: skipped */
  };
  uint32_t mask = 0;
  size_t skipped = 0;
  CHECK_EQ_INT(mtci_dc_apply_config(&t, cfg, 6, &mask, &skipped), 0);
  CHECK_EQ_INT(skipped, 2);
  CHECK_EQ_INT(t.n, 3); /* 2, 5, 4 */
  mtci_dc *d2 = mtci_dc_find(&t, 2);
  CHECK_EQ_INT(d2->n_addrs, 3); /* config order, then the seed */
  CHECK(strcmp(d2->addrs[0].ip, "1.1.1.1") == 0);
  CHECK_EQ_INT(d2->addrs[0].flags, 0);
  CHECK(strcmp(d2->addrs[1].ip, "2.2.2.2") == 0);
  CHECK_EQ_INT(d2->addrs[1].port, 80);
  CHECK(strcmp(d2->addrs[2].ip, "149.154.167.51") == 0);
  CHECK_EQ_INT(d2->addrs[2].origin, MTCI_DC_FROM_SEED);
  CHECK_EQ_INT(mask, (1u << 0) | (1u << 2)); /* DC 2 (index 0), DC 4 (index 2); DC 5 untouched */
  CHECK_EQ_INT(mtci_dc_find(&t, 5)->n_addrs, 1);

  /* health survives a refresh that keeps the endpoint; the same set: no change */
  mtci_dc_note_failure(d2, "2.2.2.2", 80, 777);
  mtci_dc_note_success(d2, "1.1.1.1", 443, 555);
  CHECK_EQ_INT(mtci_dc_apply_config(&t, cfg, 4, &mask, &skipped), 0);
  CHECK_EQ_INT(mask, 0);
  CHECK_EQ_INT(d2->addrs[0].last_success_ms, 555);
  CHECK_EQ_INT(d2->addrs[1].last_failure_ms, 777);
  CHECK_EQ_INT(d2->addrs[1].consecutive_failures, 1);
  /* an endpoint that goes away: DC 2 changed, the seed stays */
  mtci_dc_option cfg2[] = {opt(2, "2.2.2.2", 80, 0)};
  CHECK_EQ_INT(mtci_dc_apply_config(&t, cfg2, 1, &mask, NULL), 0);
  CHECK_EQ_INT(mask, 1u << 0);
  CHECK_EQ_INT(d2->n_addrs, 2);
  CHECK_EQ_INT(d2->addrs[0].last_failure_ms, 777);
  CHECK(strcmp(d2->addrs[1].ip, "149.154.167.51") == 0);
  mtci_dc_table_clear(&t);
}

TEST(state_roundtrip) {
  mtci_dc_table t;
  mtci_dc_table_init(&t);
  mtci_dc_option a = opt(2, "127.0.0.1", 4000, 0), b = opt(2, "::1", 4001, MTC_ADDR_IPV6);
  mtci_dc *d = mtci_dc_get(&t, 2);
  CHECK_EQ_INT(mtci_dc_add_addr(d, &a, MTCI_DC_FROM_SEED), 1);
  CHECK_EQ_INT(mtci_dc_add_addr(d, &b, MTCI_DC_FROM_SEED), 1);
  uint8_t key[MTCI_AUTH_KEY_LEN];
  for (int i = 0; i < MTCI_AUTH_KEY_LEN; i++) key[i] = (uint8_t)(i * 7 + 3);
  mtci_dc_set_perm_key(d, key, 1700000000, -12345);
  d->authorized = 1;
  mtci_dc_note_failure(d, "::1", 4001, 1700000000123);
  /* key id = SHA1(key)[12:20] little-endian */
  uint8_t h[20];
  mtci_sha1(key, sizeof key, h);
  uint64_t kid = 0;
  for (int i = 19; i >= 12; i--) kid = kid << 8 | h[i];
  CHECK(d->perm_key_id == kid);

  static mtci_state st, back;
  mtci_state_init(&st);
  st.main_dc = 2;
  mtci_dc_table_to_state(&t, &st);
  char *json = NULL;
  size_t len = 0;
  CHECK_EQ_INT(mtci_state_to_json(&st, &json, &len, NULL, 0), 0);
  CHECK_EQ_INT(mtci_state_from_json(json, len, &back, NULL, 0), 0);
  mtci_state_json_free(json, len + 1);

  /* into a table that holds other seeds: stored endpoints first, then new seeds */
  mtci_dc_table u;
  mtci_dc_table_init(&u);
  mtci_dc_option s2 = opt(2, "10.9.9.9", 443, 0);
  CHECK_EQ_INT(mtci_dc_add_addr(mtci_dc_get(&u, 2), &s2, MTCI_DC_FROM_SEED), 1);
  CHECK_EQ_INT(mtci_dc_table_from_state(&u, &back), 0);
  mtci_dc *e = mtci_dc_find(&u, 2);
  CHECK(e && e->has_perm && e->authorized);
  CHECK_MEM(e->perm_key, key, sizeof key);
  CHECK(e->perm_key_id == kid);
  CHECK_EQ_INT(e->salt, -12345);
  CHECK_EQ_INT(e->n_addrs, 3);
  CHECK(strcmp(e->addrs[1].ip, "::1") == 0);
  CHECK_EQ_INT(e->addrs[1].consecutive_failures, 1);
  CHECK_EQ_INT(e->addrs[1].last_failure_ms, 1700000000123);
  CHECK(strcmp(e->addrs[2].ip, "10.9.9.9") == 0);
  /* dropping the key clears the authorization too */
  mtci_dc_drop_perm_key(e);
  CHECK(!e->has_perm && !e->authorized);
  mtci_dc_table_clear(&t);
  mtci_dc_table_clear(&u);
  mtci_state_clear(&st);
  mtci_state_clear(&back);
}

/* ---- rules ------------------------------------------------------------------------------ */

static mtci_rpc_action act(int32_t code, const char *msg, const mtci_rpc_rules *r) {
  mtci_rpc_action a;
  mtci_policy_rpc_error(code, msg, r, &a);
  return a;
}

TEST(rpc_rules) {
  mtci_rpc_rules r;
  memset(&r, 0, sizeof r);
  r.flood_auto_s = 5;
  r.allow_migrate = r.allow_flood = r.allow_transfer = 1;
  r.target_main = 1;
  r.on_main_dc = 1;
  mtci_rpc_action a = act(303, "PHONE_MIGRATE_5", &r);
  CHECK(a.kind == MTCI_RPC_MIGRATE_MAIN && a.dc == 5);
  a = act(303, "USER_MIGRATE_3", &r);
  CHECK(a.kind == MTCI_RPC_MIGRATE_MAIN && a.dc == 3);
  a = act(303, "NETWORK_MIGRATE_4", &r);
  CHECK(a.kind == MTCI_RPC_MIGRATE_MAIN && a.dc == 4);
  a = act(303, "FILE_MIGRATE_1", &r);
  CHECK(a.kind == MTCI_RPC_ROUTE_DC && a.dc == 1);
  a = act(303, "STATS_MIGRATE_2", &r);
  CHECK(a.kind == MTCI_RPC_ROUTE_DC && a.dc == 2);
  /* malformed suffixes are delivered */
  CHECK(act(303, "PHONE_MIGRATE_", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(303, "PHONE_MIGRATE_5X", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(303, "PHONE_MIGRATE_1234567890", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(303, "PHONE_MIGRATE_1000", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(303, "PHONE_MIGRATE_0", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(303, "SOMETHING_ELSE", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(400, "PHONE_MIGRATE_5", &r).kind == MTCI_RPC_DELIVER); /* only with 303 */
  /* a request for a given DC does not move the main DC */
  r.target_main = 0;
  CHECK(act(303, "PHONE_MIGRATE_5", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(303, "FILE_MIGRATE_4", &r).kind == MTCI_RPC_ROUTE_DC);
  r.target_main = 1;
  /* the app asked for the errors */
  r.allow_migrate = 0;
  CHECK(act(303, "PHONE_MIGRATE_5", &r).kind == MTCI_RPC_DELIVER);
  r.allow_migrate = 1;
  /* migration limit */
  r.migrations = MTCI_POLICY_MAX_MIGRATIONS;
  a = act(303, "FILE_MIGRATE_1", &r);
  CHECK(a.kind == MTCI_RPC_DELIVER && a.loop == 1);
  r.migrations = 0;
  /* FLOOD_WAIT */
  a = act(420, "FLOOD_WAIT_3", &r);
  CHECK(a.kind == MTCI_RPC_FLOOD_WAIT && a.wait_ms == 3000);
  a = act(420, "FLOOD_WAIT_5", &r);
  CHECK(a.kind == MTCI_RPC_FLOOD_WAIT && a.wait_ms == 5000);
  CHECK(act(420, "FLOOD_WAIT_6", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(420, "FLOOD_WAIT_30", &r).kind == MTCI_RPC_DELIVER);
  a = act(420, "FLOOD_PREMIUM_WAIT_2", &r);
  CHECK(a.kind == MTCI_RPC_FLOOD_WAIT && a.wait_ms == 2000);
  CHECK(act(420, "SLOWMODE_WAIT_2", &r).kind == MTCI_RPC_DELIVER);
  r.flood_waits = MTCI_POLICY_MAX_FLOOD_WAITS;
  CHECK(act(420, "FLOOD_WAIT_1", &r).kind == MTCI_RPC_DELIVER);
  r.flood_waits = 0;
  r.flood_auto_s = 0;
  CHECK(act(420, "FLOOD_WAIT_1", &r).kind == MTCI_RPC_DELIVER);
  r.flood_auto_s = 5;
  r.allow_flood = 0;
  CHECK(act(420, "FLOOD_WAIT_1", &r).kind == MTCI_RPC_DELIVER);
  r.allow_flood = 1;
  /* AUTH_KEY_UNREGISTERED */
  a = act(401, "AUTH_KEY_UNREGISTERED", &r); /* on the main DC: the app must log in */
  CHECK(a.kind == MTCI_RPC_DELIVER && a.unauthorized == 1);
  r.on_main_dc = 0;
  a = act(401, "AUTH_KEY_UNREGISTERED", &r); /* elsewhere, main not logged in */
  CHECK(a.kind == MTCI_RPC_DELIVER && a.unauthorized == 1);
  r.main_authorized = 1;
  a = act(401, "AUTH_KEY_UNREGISTERED", &r);
  CHECK(a.kind == MTCI_RPC_AUTH_TRANSFER && a.unauthorized == 1);
  r.transfers = 1; /* once per request */
  CHECK(act(401, "AUTH_KEY_UNREGISTERED", &r).kind == MTCI_RPC_DELIVER);
  r.transfers = 0;
  CHECK(act(401, "SESSION_REVOKED", &r).kind == MTCI_RPC_DELIVER);
  CHECK(act(400, "PHONE_CODE_INVALID", &r).kind == MTCI_RPC_DELIVER);
  int32_t v = 0;
  CHECK(mtci_policy_suffix("FLOOD_WAIT_123456789", "FLOOD_WAIT_", &v) && v == 123456789);
  CHECK(!mtci_policy_suffix("FLOOD_WAIT_-1", "FLOOD_WAIT_", &v));
}

TEST(transport_rules) {
  CHECK(mtci_policy_transport_error(MTC_ERR_TRANSPORT_AUTH_KEY, 1) == MTCI_TERR_DROP_KEY);
  CHECK(mtci_policy_transport_error(MTC_ERR_TRANSPORT_AUTH_KEY, 0) == MTCI_TERR_RETRY);
  CHECK(mtci_policy_transport_error(MTC_ERR_TRANSPORT_FLOOD, 0) == MTCI_TERR_FLOOD);
  CHECK(mtci_policy_transport_error(MTC_ERR_TRANSPORT_BAD_DC, 1) == MTCI_TERR_REFRESH);
  CHECK(mtci_policy_transport_error(MTC_ERR_TRANSPORT_ERROR, 1) == MTCI_TERR_RETRY);
  CHECK(mtci_policy_transport_error(MTC_ERR_IO_RESET, 1) == MTCI_TERR_RETRY);
}

TEST(liveness) {
  int32_t p = 0, d = 0;
  mtci_policy_liveness(-1, &p, &d);
  CHECK(p == 4000 && d == 5000); /* dead 9 s after the silence began */
  mtci_policy_liveness(900, &p, &d);
  CHECK(p == 4000 && d == 5000);
  mtci_policy_liveness(1250, &p, &d);
  CHECK(p == 5000 && d == 5000);
  mtci_policy_liveness(2000, &p, &d);
  CHECK(p == 8000 && d == 8000);
  mtci_policy_liveness(100000, &p, &d);
  CHECK(p == 60000 && d == 60000);
}

/* ---- one connection's bytes --------------------------------------------------------------- */

static int fixed_rnd(void *ud, uint8_t *out, size_t len) {
  (void)ud;
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(0x40 + i);
  return 0;
}

static int conn_plain(mtci_conn *c, mtci_codec_kind kind) {
  mtci_stack_config sc;
  memset(&sc, 0, sizeof sc);
  sc.codec = kind;
  sc.rnd = fixed_rnd;
  return mtci_conn_init(c, &sc, 7, "127.0.0.1", 443, 0, 1000, 5000);
}

TEST(conn_bytes) {
  static mtci_rsa_keyset ks;
  mtci_rsa_keyset_init(&ks);
  CHECK_EQ_INT(mtci_rsa_keyset_add_builtin(&ks, 0), 0);
  mtci_conn c;
  CHECK_EQ_INT(conn_plain(&c, MTCI_CODEC_INTERMEDIATE), 0);
  CHECK(c.phase == MTCI_CONN_DIAL);
  CHECK_EQ_INT(mtci_conn_deadline(&c), 6000);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_conn_pending(&c, &p), 0); /* nothing before TCP is up */
  CHECK_EQ_INT(mtci_conn_connected(&c, 1500, 5000), 1); /* plain: usable at once */
  CHECK(c.phase == MTCI_CONN_IDLE);
  mtci_handshake_params hp;
  memset(&hp, 0, sizeof hp);
  hp.dc = 2;
  hp.keys = &ks;
  hp.rnd = fixed_rnd;
  CHECK_EQ_INT(mtci_conn_start_auth(&c, &hp, 2000, 10000), 0);
  CHECK(c.phase == MTCI_CONN_AUTH);
  CHECK_EQ_INT(mtci_conn_deadline(&c), 12000);
  /* tag ee ee ee ee, then a 40-byte frame: 20-byte envelope + req_pq_multi (id + nonce) */
  size_t n = mtci_conn_pending(&c, &p);
  CHECK_EQ_INT(n, 4 + 4 + 40);
  static const uint8_t head[] = {0xee, 0xee, 0xee, 0xee, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK_MEM(p, head, sizeof head);
  static const uint8_t tail[] = {20, 0, 0, 0, 0xf1, 0x8e, 0x7e, 0xbe}; /* length 20, req_pq_multi */
  CHECK_MEM(p + 24, tail, sizeof tail);
  CHECK_MEM(p + 32, "\x40\x41\x42\x43", 4); /* the nonce: our fixed random bytes */
  CHECK_EQ_INT(mtci_conn_consumed(&c, n), 0);
  CHECK_EQ_INT(mtci_conn_pending(&c, &p), 0);
  CHECK_EQ_INT(mtci_conn_bytes_out(&c), 48);
  /* transport error -404 as a 4-byte frame: sticky, code kept */
  static const uint8_t terr[] = {4, 0, 0, 0, 0x6c, 0xfe, 0xff, 0xff};
  CHECK_EQ_INT(mtci_conn_feed(&c, terr, sizeof terr, 2100), MTC_ERR_TRANSPORT_AUTH_KEY);
  CHECK_EQ_INT(c.terr_code, -404);
  CHECK(c.phase == MTCI_CONN_DEAD);
  CHECK_EQ_INT(mtci_conn_feed(&c, terr, sizeof terr, 2100), MTC_ERR_TRANSPORT_AUTH_KEY);
  mtci_conn_free(&c);

  /* a frame cut short, then EOF: truncated */
  CHECK_EQ_INT(conn_plain(&c, MTCI_CODEC_INTERMEDIATE), 0);
  CHECK_EQ_INT(mtci_conn_connected(&c, 0, 5000), 1);
  static const uint8_t cut[] = {0x40, 0, 0, 0, 1, 2, 3};
  CHECK_EQ_INT(mtci_conn_feed(&c, cut, sizeof cut, 10), 0);
  CHECK_EQ_INT(mtci_conn_eof(&c), MTC_ERR_FRAME_TRUNCATED);
  mtci_conn_free(&c);
  /* clean EOF between frames: closed by the peer */
  CHECK_EQ_INT(conn_plain(&c, MTCI_CODEC_ABRIDGED), 0);
  CHECK_EQ_INT(mtci_conn_connected(&c, 0, 5000), 1);
  CHECK_EQ_INT(mtci_conn_eof(&c), MTC_ERR_TRANSPORT_CLOSED);
  mtci_conn_free(&c);
  /* a packet nobody asked for (no key creation, no session) */
  CHECK_EQ_INT(conn_plain(&c, MTCI_CODEC_INTERMEDIATE), 0);
  CHECK_EQ_INT(mtci_conn_connected(&c, 0, 5000), 1);
  uint8_t frame[4 + 40];
  memset(frame, 0, sizeof frame);
  frame[0] = 40;
  CHECK_EQ_INT(mtci_conn_feed(&c, frame, sizeof frame, 10), MTC_ERR_AUTH_UNEXPECTED);
  mtci_conn_free(&c);
  /* phase timeouts */
  CHECK_EQ_INT(conn_plain(&c, MTCI_CODEC_INTERMEDIATE), 0);
  CHECK_EQ_INT(mtci_conn_on_deadline(&c, 5999), 0);
  CHECK_EQ_INT(mtci_conn_on_deadline(&c, 6000), MTC_ERR_TIMEOUT);
  CHECK(c.phase == MTCI_CONN_DEAD);
  mtci_conn_free(&c);
  /* full + obfuscation is refused by the stack */
  mtci_stack_config sc;
  memset(&sc, 0, sizeof sc);
  sc.codec = MTCI_CODEC_FULL;
  sc.obfuscated = 1;
  sc.dc_id = 2;
  sc.rnd = fixed_rnd;
  CHECK_EQ_INT(mtci_conn_init(&c, &sc, 7, "127.0.0.1", 443, 0, 0, 1000), MTC_ERR_INVALID_ARG);
  mtci_conn_free(&c);
}

TEST_MAIN("dc_policy", CASE(backoff), CASE(rate), CASE(candidates), CASE(options_checked),
          CASE(apply_config), CASE(state_roundtrip), CASE(rpc_rules), CASE(transport_rules),
          CASE(liveness), CASE(conn_bytes))
