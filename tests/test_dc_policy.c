/*
 * Pure pieces of the MTContext: address sets (src/dc.c), the rules
 * (src/policy.c) and one connection's byte logic (src/conn.c). Expected
 * values come from the documented rules (policy.h, dc.h) and the transport
 * spec (PROTOCOL.md §4.1), worked out by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
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
  size_t n_out = 99;
  CHECK_EQ_INT(mtci_dc_table_from_state(&u, &back, 2, NULL, &n_out), 0);
  CHECK_EQ_INT(n_out, 0);
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

static void ext_note_index(void *ud, mtci_dc *dc) {
  (*(int *)ud)++;
  int v = (int)dc->index + 1000;
  memcpy(dc->ext, &v, sizeof v);
}

/* Seeds and state together name 21 DCs, 16 fit: the 12 DCs with keys stay,
 * then main_id (seed DC 5), then seeds 1..3; seed DC 4 and the key-less
 * state DCs 201..204 are left out. DC 5 moves down and gets its ext again. */
TEST(state_overflow_order) {
  mtci_dc_table t;
  int inits = 0;
  mtci_dc_table_init_ext(&t, sizeof(int), ext_note_index, &inits);
  for (int d = 1; d <= 5; d++) {
    mtci_dc_option o = opt(d, "10.0.0.1", (uint16_t)(400 + d), 0);
    CHECK_EQ_INT(mtci_dc_add_addr(mtci_dc_get(&t, d), &o, MTCI_DC_FROM_SEED), 1);
  }
  static mtci_state st;
  mtci_state_init(&st);
  for (int i = 0; i < 16; i++) {
    mtci_state_dc *s = &st.dcs[st.n_dcs++];
    s->dc_id = i < 12 ? 101 + i : 201 + (i - 12);
    s->n_addrs = 1;
    strcpy(s->addrs[0].ip, "127.0.0.1");
    s->addrs[0].port = (uint16_t)(1000 + i);
    if (i < 12) {
      s->has_perm = 1;
      memset(s->perm_key, i + 1, sizeof s->perm_key);
    }
  }
  int out[MTCI_DC_MAX_DCS];
  size_t n_out = 0;
  CHECK_EQ_INT(mtci_dc_table_from_state(&t, &st, 5, out, &n_out), 0);
  CHECK_EQ_INT(t.n, 16);
  static const int want[16] = {1, 2, 3, 5, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112};
  for (size_t i = 0; i < 16; i++) {
    CHECK_EQ_INT(t.dcs[i]->id, want[i]);
    CHECK_EQ_INT(t.dcs[i]->index, i);
    int v = 0;
    memcpy(&v, t.dcs[i]->ext, sizeof v);
    CHECK_EQ_INT(v, (int)i + 1000);
    CHECK_EQ_INT(t.dcs[i]->has_perm, want[i] > 100);
  }
  CHECK_EQ_INT(inits, 5 + 1 + 12); /* 5 seeds, DC 5 again at index 3, 12 new DCs */
  static const int want_out[5] = {4, 201, 202, 203, 204};
  CHECK_EQ_INT(n_out, 5);
  for (size_t i = 0; i < 5 && i < n_out; i++) CHECK_EQ_INT(out[i], want_out[i]);
  CHECK(mtci_dc_find(&t, 5)->n_addrs == 1 && mtci_dc_find(&t, 5)->addrs[0].port == 405);
  CHECK_MEM(mtci_dc_find(&t, 112)->perm_key, st.dcs[11].perm_key, MTCI_AUTH_KEY_LEN);
  /* the next save holds every key */
  static mtci_state back;
  mtci_state_init(&back);
  mtci_dc_table_to_state(&t, &back);
  int keys = 0;
  for (int i = 0; i < back.n_dcs; i++) keys += back.dcs[i].has_perm;
  CHECK_EQ_INT(keys, 12);
  mtci_dc_table_clear(&t);
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
  /* the main DC moved while the request was in flight: any 401 of the old
   * one sends it to the new main DC (never a transfer), within the
   * migration limit */
  r.main_moved = 1;
  a = act(401, "AUTH_KEY_UNREGISTERED", &r);
  CHECK(a.kind == MTCI_RPC_RESEND_MAIN && a.unauthorized == 1 && !a.loop);
  a = act(401, "SESSION_REVOKED", &r);
  CHECK(a.kind == MTCI_RPC_RESEND_MAIN && a.unauthorized == 0);
  r.migrations = MTCI_POLICY_MAX_MIGRATIONS;
  a = act(401, "AUTH_KEY_UNREGISTERED", &r);
  CHECK(a.kind == MTCI_RPC_DELIVER && a.loop == 1);
  r.migrations = 0;
  CHECK(act(400, "PHONE_CODE_INVALID", &r).kind == MTCI_RPC_DELIVER);
  r.main_moved = 0;
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

/* ---- backpressure: a burst of file parts through one connection ------------------------- */

#define BP_PARTS 40                     /* 20 MiB of upload.saveFilePart */
#define BP_PART (512u * 1024u)
#define BP_BODY (4u + 8u + 4u + 4u + BP_PART) /* id, file_id, file_part, bytes (0xfe header) */
#define BP_CAP (8u << 20)               /* the stack's hard cap in this test */
/* largest frame of one part: length, auth_key_id + msg_key, header, data, padding <= 27 */
#define BP_FRAME (4u + 24u + 32u + BP_BODY + 27u)
#define BP_T0 1700000000000LL
#define BP_SAVE_FILE_PART 0xb304a621u
#define BP_UPDATES_TOO_LONG 0xe317af7eu
#define BP_CONTAINER 0x73f1f8dcu

/* The server's side of the client's bytes: frames decrypted, messages counted. */
typedef struct bp_peer {
  uint8_t key[MTCI_AUTH_KEY_LEN];
  uint8_t *buf;
  size_t len, cap;
  uint32_t next_part;
  int parts_bad, acks, pings, bad;
} bp_peer;

static void bp_msg(bp_peer *pe, const uint8_t *b, size_t n) {
  uint32_t id = n >= 4 ? mtci_le32(b) : 0;
  if (id == BP_SAVE_FILE_PART) {
    /* in order, whole, and its bytes are the ones of that part */
    if (n != BP_BODY || mtci_le32(b + 12) != pe->next_part || b[20 + 7] != (uint8_t)pe->next_part)
      pe->parts_bad++;
    pe->next_part++;
  } else if (id == 0x62d6b459u) {
    pe->acks++;
  } else if (id == 0xf3427b8cu) {
    pe->pings++;
  } else {
    pe->bad++;
  }
}

/* One client packet: auth_key_id | msg_key | AES-IGE(header | data | padding). */
static void bp_packet(bp_peer *pe, const uint8_t *p, size_t n) {
  uint8_t kid[8], key[32], iv[32], mk[16];
  mtci_auth_key_id(pe->key, kid);
  if (n < 24 + 32 || (n - 24) % 16 || memcmp(p, kid, 8) != 0) {
    pe->bad++;
    return;
  }
  uint8_t *plain = malloc(n - 24);
  if (!plain) {
    pe->bad++;
    return;
  }
  mtci_mtp2_kdf(pe->key, p + 8, 0, key, iv);
  (void)mtci_aes256_ige_decrypt(key, iv, p + 24, plain, n - 24);
  mtci_mtp2_msg_key(pe->key, 0, plain, n - 24, mk, NULL);
  size_t len = mtci_le32(plain + 28);
  if (memcmp(mk, p + 8, 16) != 0 || len > n - 24 - 32) {
    pe->bad++;
  } else if (len >= 8 && mtci_le32(plain + 32) == BP_CONTAINER) {
    const uint8_t *q = plain + 40, *end = plain + 32 + len;
    for (uint32_t i = 0, k = mtci_le32(plain + 36); i < k; i++) {
      if (end - q < 16 || (size_t)(end - q - 16) < mtci_le32(q + 12)) {
        pe->bad++;
        break;
      }
      size_t m = mtci_le32(q + 12);
      bp_msg(pe, q + 16, m);
      q += 16 + m;
    }
  } else {
    bp_msg(pe, plain + 32, len);
  }
  free(plain);
}

/* The socket takes up to `max` pending bytes (intermediate frames). */
static void bp_take(bp_peer *pe, mtci_conn *c, size_t max) {
  const uint8_t *p;
  size_t n = mtci_conn_pending(c, &p);
  if (n > max) n = max;
  if (!n) return;
  if (pe->len + n > pe->cap) {
    size_t cap = pe->len + n + BP_FRAME;
    uint8_t *b = realloc(pe->buf, cap);
    if (!b) {
      pe->bad++;
      return;
    }
    pe->buf = b;
    pe->cap = cap;
  }
  memcpy(pe->buf + pe->len, p, n);
  pe->len += n;
  if (mtci_conn_consumed(c, n) != 0) pe->bad++;
  size_t off = 0;
  while (pe->len - off >= 4) {
    size_t f = mtci_le32(pe->buf + off);
    if (pe->len - off - 4 < f) break;
    bp_packet(pe, pe->buf + off + 4, f);
    off += 4 + f;
  }
  memmove(pe->buf, pe->buf + off, pe->len - off);
  pe->len -= off;
}

/* An intermediate frame from the server: one content message (updatesTooLong)
 * the client must acknowledge. */
static size_t bp_server_frame(const bp_peer *pe, int64_t session_id, int64_t msg_id, uint8_t *out) {
  uint8_t plain[48], key[32], iv[32], mk[16];
  memset(plain, 0x5a, sizeof plain); /* padding: 12 bytes */
  mtci_put_le64(plain, 0);           /* salt */
  mtci_put_le64(plain + 8, mtci_u64_of(session_id));
  mtci_put_le64(plain + 16, mtci_u64_of(msg_id));
  mtci_put_le32(plain + 24, 1); /* seq_no: content-related */
  mtci_put_le32(plain + 28, 4);
  mtci_put_le32(plain + 32, BP_UPDATES_TOO_LONG);
  mtci_mtp2_msg_key(pe->key, 8, plain, sizeof plain, mk, NULL);
  mtci_mtp2_kdf(pe->key, mk, 8, key, iv);
  mtci_put_le32(out, 24 + sizeof plain);
  mtci_auth_key_id(pe->key, out + 4);
  memcpy(out + 12, mk, 16);
  (void)mtci_aes256_ige_encrypt(key, iv, plain, out + 28, sizeof plain);
  return 28 + sizeof plain;
}

/*
 * 20 MiB of 512 KiB file parts queued at once against a stack capped at
 * 8 MiB: the connection takes parts only while less than MTCI_CONN_OUT_SOFT
 * is queued, the rest waits in the session and goes out, in order, as the
 * socket drains. While held back, an ack and a keepalive ping still go out
 * when due, and no deadline is left in the past (the host would spin).
 */
TEST(conn_backpressure) {
  static bp_peer pe;
  memset(&pe, 0, sizeof pe);
  for (size_t i = 0; i < sizeof pe.key; i++) pe.key[i] = (uint8_t)(i * 7 + 3);
  mtci_stack_config sc;
  memset(&sc, 0, sizeof sc);
  sc.codec = MTCI_CODEC_INTERMEDIATE;
  sc.rnd = fixed_rnd;
  sc.max_queued = BP_CAP;
  mtci_conn c;
  CHECK_EQ_INT(mtci_conn_init(&c, &sc, 7, "127.0.0.1", 443, 0, BP_T0, 5000), 0);
  CHECK_EQ_INT(mtci_conn_connected(&c, BP_T0, 5000), 1);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_conn_pending(&c, &p), 4); /* the intermediate tag */
  CHECK_EQ_INT(mtci_conn_consumed(&c, 4), 0);
  mtci_session_config cfg;
  memset(&cfg, 0, sizeof cfg);
  memcpy(cfg.auth_key, pe.key, sizeof pe.key);
  cfg.server_salt = 0x1122334455667788;
  cfg.session_id = 0x0102030405060708;
  cfg.time_synced = 1;
  cfg.no_init_connection = 1;
  cfg.no_future_salts = 1;
  cfg.ping_interval_ms = 3000;
  cfg.rnd = fixed_rnd;
  static mtci_session s;
  CHECK_EQ_INT(mtci_session_init(&s, &cfg, BP_T0), 0);
  CHECK_EQ_INT(mtci_conn_attach(&c, &s, BP_T0), 0);
  uint8_t *body = calloc(1, BP_BODY);
  CHECK(body != NULL);
  if (!body) return;
  for (uint32_t i = 0; i < BP_PARTS; i++) {
    mtci_put_le32(body, BP_SAVE_FILE_PART);
    mtci_put_le64(body + 4, 77);
    mtci_put_le32(body + 12, i);
    mtci_put_le32(body + 16, 0xfeu | BP_PART << 8);
    memset(body + 20, (int)(uint8_t)i, BP_PART);
    CHECK_EQ_INT(mtci_session_invoke(&s, body, BP_BODY, MTCI_SESSION_REQ_NO_GZIP, 100 + i), 0);
  }
  free(body);

  /* the burst: one soft limit's worth is taken, the rest stays queued */
  int64_t now = BP_T0;
  int rc = mtci_conn_flush(&c, now);
  CHECK(rc >= 2); /* before backpressure: MTC_ERR_NOMEM at the cap, connection dead */
  CHECK(c.phase == MTCI_CONN_READY);
  CHECK(mtci_stack_queued(&c.st) >= MTCI_CONN_OUT_SOFT);
  CHECK(mtci_stack_queued(&c.st) <= MTCI_CONN_OUT_SOFT + BP_FRAME);
  CHECK(mtci_conn_held(&c));
  CHECK(mtci_session_unsent(&s) > 0 && mtci_session_unsent(&s) < BP_PARTS);
  CHECK(mtci_conn_deadline(&c) > now);

  /* held, the socket stalled: a server message's ack goes out at its deadline */
  uint8_t sf[128];
  size_t sn = bp_server_frame(&pe, cfg.session_id, ((BP_T0 + 100) / 1000) << 32 | 1, sf);
  now = BP_T0 + 100;
  CHECK_EQ_INT(mtci_conn_feed(&c, sf, sn, now), 0);
  mtci_session_event ev;
  while (mtci_session_next_event(&s, &ev)) {}
  size_t q0 = mtci_stack_queued(&c.st);
  CHECK_EQ_INT(mtci_conn_flush(&c, now), 0); /* not yet due: nothing */
  now = mtci_conn_deadline(&c);
  CHECK_EQ_INT(now, BP_T0 + 100 + MTCI_SESSION_ACK_FLUSH_MS);
  CHECK_EQ_INT(mtci_conn_on_deadline(&c, now), 0);
  CHECK_EQ_INT(mtci_conn_flush(&c, now), 1); /* the ack alone */
  CHECK(mtci_stack_queued(&c.st) > q0 && mtci_stack_queued(&c.st) - q0 < 256);
  CHECK(mtci_conn_held(&c));
  CHECK(mtci_conn_deadline(&c) > now);
  /* ... and the keepalive ping at its time */
  now = mtci_conn_deadline(&c);
  CHECK_EQ_INT(now, BP_T0 + 3000);
  CHECK_EQ_INT(mtci_conn_on_deadline(&c, now), 0);
  CHECK_EQ_INT(mtci_conn_flush(&c, now), 1);
  CHECK(mtci_conn_deadline(&c) > now);

  /* the socket drains in 256 KiB steps; each flush tops the queue up */
  size_t peak = 0;
  int steps = 0;
  for (; steps < 1000 && (mtci_session_unsent(&s) || mtci_conn_pending(&c, &p)); steps++) {
    now += 10;
    bp_take(&pe, &c, 256 * 1024);
    if (now >= mtci_conn_deadline(&c)) CHECK_EQ_INT(mtci_conn_on_deadline(&c, now), 0);
    CHECK(mtci_conn_flush(&c, now) >= 0);
    size_t q = mtci_stack_queued(&c.st);
    if (q > peak) peak = q;
    if (mtci_conn_held(&c)) CHECK(mtci_conn_deadline(&c) > now);
  }
  CHECK(c.phase == MTCI_CONN_READY);
  CHECK_EQ_INT(mtci_session_unsent(&s), 0);
  CHECK(!mtci_conn_held(&c));
  CHECK(peak <= MTCI_CONN_OUT_SOFT + BP_FRAME);
  CHECK_EQ_INT(pe.next_part, BP_PARTS);
  CHECK_EQ_INT(pe.parts_bad, 0);
  CHECK_EQ_INT(pe.acks, 1);
  CHECK_EQ_INT(pe.pings, 1);
  CHECK_EQ_INT(pe.bad, 0);
  CHECK_EQ_INT(pe.len, 0);

  /* small requests are not held: all of them in one packet at once */
  uint8_t small[8];
  mtci_put_le32(small, 0x1fb33026u); /* help.getNearestDc */
  for (uint64_t t = 1; t <= 3; t++) CHECK_EQ_INT(mtci_session_invoke(&s, small, 4, 0, t), 0);
  CHECK_EQ_INT(mtci_conn_flush(&c, now), 1);
  CHECK(!mtci_conn_held(&c));
  CHECK_EQ_INT(mtci_session_unsent(&s), 0);
  CHECK(mtci_conn_pending(&c, &p) < 256);
  mtci_conn_free(&c);
  mtci_session_free(&s);
  free(pe.buf);
}

TEST_MAIN("dc_policy", CASE(backoff), CASE(rate), CASE(candidates), CASE(options_checked),
          CASE(apply_config), CASE(state_roundtrip), CASE(state_overflow_order), CASE(rpc_rules), CASE(transport_rules),
          CASE(liveness), CASE(conn_bytes), CASE(conn_backpressure))
