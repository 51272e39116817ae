/*
 * DoH simple-config decoder (src/discovery/simple_config.*).
 *
 * Known answers: KAT-DNS-1, -2, -3 of PROTOCOL.md §7.1, decrypted with
 * Telegram's built-in simple-config key (m, plain and the parsed fields are
 * compared with the document's bytes). Then round trips and negatives with
 * configs this file encrypts itself (tests/mockdc/mock_doh.c encoder, a
 * TEST-ONLY RSA key), one per error code.
 */
#include <string.h>

#include "base64.h"
#include "bytes.h"
#include "crypto/crypto.h"
#include "crypto/rsa_keys.h"
#include "discovery/simple_config.h"
#include "mock_auth.h"
#include "mock_doh.h"
#include "test.h"

/* ---- vectors (PROTOCOL.md §7.1) ------------------------------------------------ */

/* KAT-DNS-1: TXT answers A (250) and B (94) of apv3.stel.com. */
static const char k_dns1_a[] =
    "oiVvQMgmCSOQvenEo/Ug1a+IzF4Q/13++Cq2zwvy0z75GVRblmruH6SBuEaPsfEz"
    "pAdJw/1QoMphLuQx9bzCU2LgCMLNZ+4awO+Is8p4k0r4FgerDwWBFabdMBUl2sZM"
    "OKI4c4soNa6LXal7q7kuVTZjFNSC6p9dcYTYtG1GnQPf5W7kD6hPZDr1PF5+Wga3"
    "yp6hErN0iff2BMxmmmxAAbWOQ2TbaDlY36ViLkf9RUXcxAABU4Vg9d9mW0";
static const char k_dns1_b[] =
    "35arl4mB8+LFXX7F4rGWpyGpsclPI6jq4L7OvFpmAAJtUp7pD8BSBtCJa7rgojCj"
    "kjnYxGPQA/3MHeBCrT22Y5V+Y0KA==";
static const char k_dns1_m[] =
    "927fc91ff629d5f63c7c1c46453bb4dc545358db5dab9705e0c633a34ebb1fe2"
    "895a93e2097d9c6a10103fb281dcd53f4824b9b8bfc0efb3f4b451dbcf92100c"
    "06cfca8ce151cb20e5077b6028a4380486067696e5aacdefa403041460287e18"
    "ade85178ee9a548a1ae58e46292ec4a339955ea3adaa56c1466d2d910f9e4e4c"
    "440d383ce80ecc7928cf7b02460f02f1aebe0749740eb1e4f5a4fad689e80331"
    "2dc6ee77eda825ce580c09c6134f79e9a6cee54b702f2fcd66425211a8408c0d"
    "291d170123627db982e68d4d78366c53b1c0137dc0bff8a67d01396138c96d48"
    "73beb3a5e5f483cef7062b1b82b444fbd61dfc55ec148fe309616bd8d3c1b5bf";
static const char k_dns1_plain[] =
    "500000006c2a595a11e6f8699119da6b010000005fb679460000000004000000"
    "010000004626983732faddc2bb0100001feef7f7da556b4bd989fd44c9bc7b7b"
    "2a757777772e676f6f676c652e636f6d9c7ea2d9293fc56ab7605aed5d3b80db"
    "bb81f63ccbf78dff694d26d2f70c5cff23ea3b1ced86ed4caf771d555f60ef89"
    "d2843bc056c7ca481abce286fadecedcb47f978442224ef32790759b55e7f81d"
    "ad416a7e4afb6c8c1281e5823bc9ec164781cad2f05ddd942489cf7dc03497b6"
    "0cf413b5fc931998c6e97f90f21e87bbe95edb89928e97be58b3ad4f973652d4";
/* 0xee + 16-byte key + "www.google.com" (both live vectors). */
static const char k_live_secret[] =
    "eef7f7da556b4bd989fd44c9bc7b7b2a757777772e676f6f676c652e636f6d";

/* KAT-DNS-2: Firestore copy, one string. */
static const char k_dns2[] =
    "SIiJpKPAUg/1tqjnFQSFH78tMOqkYxeiiKkY6B4Ao1hBDp/UbDy9Zda2azORL1ib"
    "t7mRfy6E8wPekcSqWvTHDPnaYk7ec9VkEWgSDBYUadtAZAI7mvAaV3rDdUS63lMc"
    "teZf7BOVYX56GgXO3CSLmMx0P0CRybYwRwERDgQ5tY+QuPyTXPn5Xm+FoeqjH3ni"
    "DmPi+8rOmw6Q3paCYJNtGr9+LyspCvWdL0Pto5g0XBLTpMMkj7nwB9bttrMrLbKu"
    "0ToOIOwlYd8VkJVypR6KSLhCzs0tevQONL8FB+npIQCr1HdDukoLREofAtUsGc2k"
    "aliZ2ORDeur24emaUaNI6g==";
static const char k_dns2_m32[] = "32f736eff4504f689b8785396d07830fa9bd1eef8c23903d8291b80fad5c4b94";
static const char k_dns2_plain80[] =
    "500000006c2a595a8564636a0598446c010000005fb67946000000000400000001000000"
    "46269837654ca15fbb0100001feef7f7da556b4bd989fd44c9bc7b7b2a757777772e676f"
    "6f676c652e636f6d";

/* KAT-DNS-3: tdlib's test string, junk characters included (C escapes). */
static const char k_dns3[] =
    "   hO//tt \b\n\tiwPVovorKtIYtQ8y2ik7CqfJiJ4pJOCLRa4fBmNPixuRPXnBFF/3mTAAZoSyHq4SNylGHz0Cv1/"
    "FnWWdEV+BPJeOTk+ARHcNkuJBt0CqnfcVCoDOpKqGyq0U31s2MOpQvHgAG+Tlpg02syuH0E4dCGRw5CbJPARiynteb9y5fT5x/"
    "kmdp6BMR5tWQSQF0liH16zLh8BDSIdiMsikdcwnAvBwdNhRqQBqGx9MTh62MDmlebjtczE9Gz0z5cscUO2yhzGdphgIy6SP+"
    "bwaqLWYF0XdPGjKLMUEJW+rou6fbL1t/EUXPtU0XmQAnO0Fh86h+AqDMOe30N4qKrPQ==   ";
static const char k_dns3_m32[] = "22132af16a8e4fdc9b33f98931425fcef111683952c17d266626c96acee2903d";
static const char k_dns3_plain68[] =
    "440000006c2a595ae1a7e35ae1340b5b010000005fb6794600000000020000000100000046269837"
    "ff9d448a6614000010ad280a6401a8bbb41733d3c3c3773c36000000";

#define NOW_2026 1780000000 /* 2026-05-28 */

static int builtin_key(mtci_rsa_key *k) {
  const char *pem = mtci_rsa_builtin_pem(MTCI_RSA_BUILTIN_SIMPLE_CONFIG);
  if (!pem || mtci_rsa_key_from_pem(k, pem, strlen(pem)) != 0) return -1;
  return k->fingerprint == 0x6f3a701151477715ull ? 0 : -1;
}

static mtci_sconf_part part(const char *s) {
  mtci_sconf_part p = {s, strlen(s)};
  return p;
}

/* ---- KAT-DNS-1 ---------------------------------------------------------------- */

TEST(kat_dns1_steps) {
  mtci_rsa_key key;
  CHECK_EQ_INT(builtin_key(&key), 0);
  CHECK_EQ_INT(strlen(k_dns1_a), 250);
  CHECK_EQ_INT(strlen(k_dns1_b), 94);
  /* Short part first, as Google returned them: the join puts A first. */
  mtci_sconf_part parts[2] = {part(k_dns1_b), part(k_dns1_a)};
  char b64[MTCI_SCONF_B64_LEN + 1];
  CHECK_EQ_INT(mtci_sconf_join(parts, 2, b64), 0);
  CHECK(memcmp(b64, k_dns1_a, 250) == 0 && memcmp(b64 + 250, k_dns1_b, 94) == 0);

  uint8_t m[256], plain[224], want_m[256], want_plain[224];
  CHECK_EQ_INT(test_unhex(k_dns1_m, want_m, sizeof want_m), 256);
  CHECK_EQ_INT(test_unhex(k_dns1_plain, want_plain, sizeof want_plain), 224);
  CHECK_EQ_INT(mtci_sconf_decrypt(&key, b64, strlen(b64), m, plain), 0);
  CHECK_MEM(m, want_m, 256);
  CHECK_MEM(plain, want_plain, 224);
  /* SHA256(plain[0:208])[0:16] == plain[208:224] = e95edb89... */
  uint8_t h[32], want_h[16];
  test_unhex("e95edb89928e97be58b3ad4f973652d4", want_h, 16);
  mtci_sha256(plain, 208, h);
  CHECK_MEM(h, want_h, 16);
  CHECK_MEM(plain + 208, want_h, 16);
}

static void check_live(int *t_failed_, const mtci_simple_config *c, const char *ip) {
  uint8_t secret[31];
  CHECK_EQ_INT(test_unhex(k_live_secret, secret, sizeof secret), 31);
  CHECK_EQ_INT(c->rules, 1);
  CHECK_EQ_INT(c->rules_applied, 1);
  CHECK_EQ_INT(c->count, 1);
  CHECK_EQ_INT(c->ep[0].dc_id, 4);
  CHECK(strcmp(c->ep[0].ipv4, ip) == 0);
  CHECK_EQ_INT(c->ep[0].port, 443);
  CHECK_EQ_INT(c->ep[0].secret_len, 31);
  CHECK_MEM(c->ep[0].secret, secret, 31);
  CHECK_EQ_INT(c->ep[0].secret_kind, MTCI_SECRET_EE);
}

TEST(kat_dns1_decode) {
  mtci_rsa_key key;
  CHECK_EQ_INT(builtin_key(&key), 0);
  mtci_sconf_part parts[2] = {part(k_dns1_b), part(k_dns1_a)};
  mtci_simple_config c;
  CHECK_EQ_INT(mtci_simple_config_decode(&key, parts, 2, NOW_2026, NULL, 0, &c), 0);
  CHECK_EQ_INT(c.date, 1777919505);
  CHECK_EQ_INT(c.expires, 1809455505);
  check_live(t_failed_, &c, "194.221.250.50");
  if (*t_failed_) return;
  const uint8_t ip[4] = {194, 221, 250, 50};
  CHECK_MEM(c.ep[0].ip, ip, 4);
  /* The rule string is empty: it applies to any phone too. */
  CHECK_EQ_INT(mtci_simple_config_decode(&key, parts, 2, NOW_2026, "+44 20 7946 0000", 16, &c), 0);
  CHECK_EQ_INT(c.count, 1);
  /* Validity window edges: date - 1200 and expires + 1200 are inside. */
  CHECK_EQ_INT(mtci_simple_config_decode(&key, parts, 2, 1777919505 - 1200, NULL, 0, &c), 0);
  CHECK_EQ_INT(mtci_simple_config_decode(&key, parts, 2, 1777919505 - 1201, NULL, 0, &c),
               MTC_ERR_SCONF_FUTURE);
  CHECK_EQ_INT(c.count, 0);
  CHECK_EQ_INT(mtci_simple_config_decode(&key, parts, 2, 1809455505 + 1200, NULL, 0, &c), 0);
  CHECK_EQ_INT(mtci_simple_config_decode(&key, parts, 2, 1809455505 + 1201, NULL, 0, &c),
               MTC_ERR_SCONF_EXPIRED);
  mtci_simple_config_free(&c);
}

TEST(kat_dns2) {
  mtci_rsa_key key;
  CHECK_EQ_INT(builtin_key(&key), 0);
  CHECK_EQ_INT(strlen(k_dns2), 344);
  uint8_t m[256], plain[224], want[80];
  CHECK_EQ_INT(mtci_sconf_decrypt(&key, k_dns2, strlen(k_dns2), m, plain), 0);
  CHECK_EQ_INT(test_unhex(k_dns2_m32, want, 32), 32);
  CHECK_MEM(m, want, 32);
  CHECK_EQ_INT(test_unhex(k_dns2_plain80, want, 80), 80);
  CHECK_MEM(plain, want, 80);
  mtci_sconf_part p = part(k_dns2);
  mtci_simple_config c;
  CHECK_EQ_INT(mtci_simple_config_decode(&key, &p, 1, NOW_2026, NULL, 0, &c), MTC_ERR_SCONF_FUTURE);
  CHECK_EQ_INT(mtci_simple_config_decode(&key, &p, 1, 1790000000, NULL, 0, &c), 0);
  CHECK_EQ_INT(c.date, 1784898693);
  CHECK_EQ_INT(c.expires, 1816434693);
  check_live(t_failed_, &c, "95.161.76.101");
}

TEST(kat_dns3) {
  mtci_rsa_key key;
  CHECK_EQ_INT(builtin_key(&key), 0);
  CHECK_EQ_INT(strlen(k_dns3), 354);
  mtci_sconf_part p = part(k_dns3);
  char b64[MTCI_SCONF_B64_LEN + 1];
  CHECK_EQ_INT(mtci_sconf_join(&p, 1, b64), 0);
  CHECK_EQ_INT(strlen(b64), 344);
  CHECK(memcmp(b64, "hO//ttiwPVov", 12) == 0);
  uint8_t m[256], plain[224], want[68];
  CHECK_EQ_INT(mtci_sconf_decrypt(&key, b64, 344, m, plain), 0);
  CHECK_EQ_INT(test_unhex(k_dns3_m32, want, 32), 32);
  CHECK_MEM(m, want, 32);
  CHECK_EQ_INT(test_unhex(k_dns3_plain68, want, 68), 68);
  CHECK_MEM(plain, want, 68);

  mtci_simple_config c;
  /* Expired in 2018: rejected anywhere in 2026. */
  static const int64_t in_2026[] = {1767225600, NOW_2026, 1798761599};
  for (size_t i = 0; i < 3; i++)
    CHECK_EQ_INT(mtci_simple_config_decode(&key, &p, 1, in_2026[i], NULL, 0, &c),
                 MTC_ERR_SCONF_EXPIRED);
  /* Inside its window (2018-05-01): dc 2, 138.68.157.255:5222, 16-byte secret. */
  CHECK_EQ_INT(mtci_simple_config_decode(&key, &p, 1, 1525132800, NULL, 0, &c), 0);
  CHECK_EQ_INT(c.date, 1524869089);
  CHECK_EQ_INT(c.expires, 1527461089);
  CHECK_EQ_INT(c.count, 1);
  CHECK_EQ_INT(c.ep[0].dc_id, 2);
  CHECK(strcmp(c.ep[0].ipv4, "138.68.157.255") == 0);
  CHECK_EQ_INT(c.ep[0].port, 5222);
  CHECK_EQ_INT(c.ep[0].secret_len, 16);
  CHECK_EQ_INT(test_unhex("ad280a6401a8bbb41733d3c3c3773c36", want, 16), 16);
  CHECK_MEM(c.ep[0].secret, want, 16);
  CHECK_EQ_INT(c.ep[0].secret_kind, MTCI_SECRET_SIMPLE);
  CHECK_EQ_INT(mtci_simple_config_decode(&key, &p, 1, 1527461089 + 1201, NULL, 0, &c),
               MTC_ERR_SCONF_EXPIRED);
  CHECK_EQ_INT(mtci_simple_config_decode(&key, &p, 1, 1524869089 - 1201, NULL, 0, &c),
               MTC_ERR_SCONF_FUTURE);
}

/* ---- own test key: encoder round trips ------------------------------------------ */

static int xrng(void *ud, uint8_t *out, size_t len) {
  uint64_t *s = ud;
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(test_rand64(s) >> 24);
  return 0;
}

struct fx {
  mock_sconf_key *key;
  mock_sconf_key *other;
  uint64_t seed;
};

static int fx_up(struct fx *f) {
  memset(f, 0, sizeof *f);
  f->seed = 0x5eed5eed12345678ull;
  const char *a = mock_test_key_pem(1), *b = mock_test_key_pem(2);
  if (!a || !b) return -1;
  if (mock_sconf_key_new(a, strlen(a), &f->key) != 0) return -1;
  if (mock_sconf_key_new(b, strlen(b), &f->other) != 0) return -1;
  return 0;
}

static void fx_down(struct fx *f) {
  mock_sconf_key_free(f->key);
  mock_sconf_key_free(f->other);
}

#define T_DATE 1780000000
#define T_EXP (T_DATE + 86400)
#define T_NOW (T_DATE + 60)

static const uint8_t k_ee[] = {0xee, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                               'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'};
static const uint8_t k_dd[] = {0xdd, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
static const uint8_t k_dd_long[] = {0xdd, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

/* Encrypt a body (raw TL) with f->key; text[345] out. */
static int enc(struct fx *f, const uint8_t *body, size_t len, uint32_t len_field, unsigned faults,
               char text[345]) {
  return mock_sconf_encrypt(f->key, body, len, len_field, faults, xrng, &f->seed, text, NULL,
                            NULL);
}

static int enc_rules(struct fx *f, int32_t date, int32_t expires, const mock_sconf_rule *rules,
                     size_t n, char text[345]) {
  uint8_t body[256];
  size_t len = 0;
  int rc = mock_sconf_build_tl(date, expires, rules, n, body, 204, &len);
  return rc ? rc : enc(f, body, len, 0, 0, text);
}

/* Decode text as the 250 + 94 split, short part first. */
static int dec(struct fx *f, const char *text, int64_t now, const char *phone,
               mtci_simple_config *c) {
  mtci_sconf_part parts[2] = {{text + 250, strlen(text) - 250}, {text, 250}};
  return mtci_simple_config_decode(mock_sconf_key_public(f->key), parts, 2, now, phone,
                                   phone ? strlen(phone) : 0, c);
}

TEST(roundtrip) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  mock_sconf_ip ips1[] = {{{127, 0, 0, 1}, 4431, k_ee, sizeof k_ee}, {{10, 0, 0, 5}, 443, NULL, 0}};
  mock_sconf_ip ips2[] = {{{203, 0, 113, 9}, 8443, k_dd, sizeof k_dd}};
  mock_sconf_rule rules[] = {{"", 2, ips1, 2}, {"+44", 4, ips2, 1}};
  uint8_t body[256];
  size_t len = 0;
  CHECK_EQ_INT(mock_sconf_build_tl(T_DATE, T_EXP, rules, 2, body, sizeof body, &len), 0);
  char text[345];
  uint8_t m_enc[256], plain_enc[224];
  CHECK_EQ_INT(mock_sconf_encrypt(f.key, body, len, 0, 0, xrng, &f.seed, text, m_enc, plain_enc),
               0);
  CHECK_EQ_INT(strlen(text), 344);
  /* The decoder's intermediate values are the encoder's. */
  uint8_t m[256], plain[224];
  CHECK_EQ_INT(mtci_sconf_decrypt(mock_sconf_key_public(f.key), text, 344, m, plain), 0);
  CHECK_MEM(m, m_enc, 256);
  CHECK_MEM(plain, plain_enc, 224);
  CHECK_EQ_INT(mtci_le32(plain), 4 + len);
  CHECK_MEM(plain + 4, body, len);

  mtci_simple_config c;
  CHECK_EQ_INT(dec(&f, text, T_NOW, NULL, &c), 0); /* no phone: every rule */
  CHECK_EQ_INT(c.date, T_DATE);
  CHECK_EQ_INT(c.expires, T_EXP);
  CHECK_EQ_INT(c.rules, 2);
  CHECK_EQ_INT(c.rules_applied, 2);
  CHECK_EQ_INT(c.count, 3);
  CHECK(strcmp(c.ep[0].ipv4, "127.0.0.1") == 0);
  CHECK_EQ_INT(c.ep[0].port, 4431);
  CHECK_EQ_INT(c.ep[0].dc_id, 2);
  CHECK_EQ_INT(c.ep[0].secret_len, sizeof k_ee);
  CHECK_MEM(c.ep[0].secret, k_ee, sizeof k_ee);
  CHECK_EQ_INT(c.ep[0].secret_kind, MTCI_SECRET_EE);
  CHECK(strcmp(c.ep[1].ipv4, "10.0.0.5") == 0);
  CHECK_EQ_INT(c.ep[1].secret_len, 0);
  CHECK_EQ_INT(c.ep[1].secret_kind, MTCI_SECRET_NONE);
  CHECK(strcmp(c.ep[2].ipv4, "203.0.113.9") == 0);
  CHECK_EQ_INT(c.ep[2].port, 8443);
  CHECK_EQ_INT(c.ep[2].dc_id, 4);
  CHECK_EQ_INT(c.ep[2].secret_kind, MTCI_SECRET_DD);
  /* A US phone: the "+44" rule does not apply. */
  CHECK_EQ_INT(dec(&f, text, T_NOW, "+1 555 0100", &c), 0);
  CHECK_EQ_INT(c.rules_applied, 1);
  CHECK_EQ_INT(c.count, 2);
  /* A UK phone: both apply (the first rule has an empty item). */
  CHECK_EQ_INT(dec(&f, text, T_NOW, "+44 7700 900000", &c), 0);
  CHECK_EQ_INT(c.count, 3);
  /* Long part first works the same. */
  mtci_sconf_part fwd[2] = {{text, 250}, {text + 250, 94}};
  CHECK_EQ_INT(mtci_simple_config_decode(mock_sconf_key_public(f.key), fwd, 2, T_NOW, NULL, 0, &c),
               0);
  CHECK_EQ_INT(c.count, 3);
  mtci_simple_config_free(&c);
  fx_down(&f);
}

/* Equal-length parts in the wrong order: the first order fails (a '=' in
 * the middle), the retry of §1.6 step 5 finds the right one. Three parts too. */
TEST(ordering_retry) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  mock_sconf_ip ips[] = {{{127, 0, 0, 1}, 443, NULL, 0}};
  mock_sconf_rule rules[] = {{"", 2, ips, 1}};
  char text[345];
  CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, rules, 1, text), 0);
  const mtci_rsa_key *pub = mock_sconf_key_public(f.key);
  mtci_simple_config c;
  mtci_sconf_part two[2] = {{text + 172, 172}, {text, 172}};
  CHECK_EQ_INT(mtci_simple_config_decode(pub, two, 2, T_NOW, NULL, 0, &c), 0);
  CHECK_EQ_INT(c.count, 1);
  /* join() alone keeps the (wrong) tie order. */
  char b64[345];
  CHECK_EQ_INT(mtci_sconf_join(two, 2, b64), 0);
  CHECK(memcmp(b64, text + 172, 172) == 0);
  for (int perm = 0; perm < 6; perm++) {
    static const int p[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    mtci_sconf_part three[3];
    for (int i = 0; i < 3; i++) {
      three[p[perm][i]].text = text + 115 * i;
      three[p[perm][i]].len = i < 2 ? 115 : 114;
    }
    CHECK_EQ_INT(mtci_simple_config_decode(pub, three, 3, T_NOW, NULL, 0, &c), 0);
  }
  /* With 4 equal parts in a wrong order there is no retry ('=' lands inside). */
  mtci_sconf_part four[4] = {{text + 258, 86}, {text, 86}, {text + 86, 86}, {text + 172, 86}};
  CHECK_EQ_INT(mtci_simple_config_decode(pub, four, 4, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_BASE64);
  /* The same 8 parts of 43 in order: fine (1..8 parts allowed). */
  mtci_sconf_part eight[8];
  for (int i = 0; i < 8; i++) eight[i] = (mtci_sconf_part){text + 43 * i, 43};
  CHECK_EQ_INT(mtci_simple_config_decode(pub, eight, 8, T_NOW, NULL, 0, &c), 0);
  fx_down(&f);
}

TEST(parts_and_length) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  mock_sconf_ip ips[] = {{{127, 0, 0, 1}, 443, NULL, 0}};
  mock_sconf_rule rules[] = {{"", 2, ips, 1}};
  char text[345];
  CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, rules, 1, text), 0);
  const mtci_rsa_key *pub = mock_sconf_key_public(f.key);
  mtci_simple_config c;
  mtci_sconf_part p = {text, 344};
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &p, 0, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_PARTS);
  mtci_sconf_part nine[9];
  for (int i = 0; i < 9; i++) nine[i] = (mtci_sconf_part){text, 1};
  CHECK_EQ_INT(mtci_simple_config_decode(pub, nine, 9, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_PARTS);
  /* A part over 1024 bytes, even if mostly junk. */
  static char big[1100];
  memset(big, ' ', sizeof big);
  memcpy(big, text, 344);
  mtci_sconf_part bp = {big, 1025};
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &bp, 1, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_PARTS);
  bp.len = 1024; /* 344 characters + 680 spaces: accepted */
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &bp, 1, T_NOW, NULL, 0, &c), 0);
  /* Wrong length after filtering: one short, one long. */
  p.len = 343;
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &p, 1, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_LENGTH);
  char longer[346];
  memcpy(longer, text, 344);
  longer[344] = 'A';
  longer[345] = 0;
  p = (mtci_sconf_part){longer, 345};
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &p, 1, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_LENGTH);
  CHECK_EQ_INT(mtci_sconf_decrypt(pub, text, 343, NULL, (uint8_t[224]){0}), MTC_ERR_SCONF_LENGTH);
  fx_down(&f);
}

TEST(bad_base64) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  mock_sconf_ip ips[] = {{{127, 0, 0, 1}, 443, NULL, 0}};
  mock_sconf_rule rules[] = {{"", 2, ips, 1}};
  char text[345], t[345];
  CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, rules, 1, text), 0);
  const mtci_rsa_key *pub = mock_sconf_key_public(f.key);
  mtci_simple_config c;
  mtci_sconf_part p = {t, 344};
  /* '=' inside the text. */
  memcpy(t, text, 345);
  t[100] = '=';
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &p, 1, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_BASE64);
  /* Non-canonical: unused low bits of the last character set. */
  memcpy(t, text, 345);
  CHECK(t[342] == '=' && t[343] == '=');
  t[341] = t[341] == 'B' ? 'C' : 'B'; /* value 1 or 2: low 4 bits non-zero */
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &p, 1, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_BASE64);
  /* 344 characters without padding decode to 258 bytes. */
  memcpy(t, text, 345);
  t[342] = 'A';
  t[343] = 'A';
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &p, 1, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_BASE64);
  /* "A===" style: three '='. */
  memcpy(t, text, 345);
  t[341] = '=';
  CHECK_EQ_INT(mtci_simple_config_decode(pub, &p, 1, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_BASE64);
  fx_down(&f);
}

TEST(rsa_and_wrong_key) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  mtci_simple_config c;
  /* C = ff..ff is above any 2048-bit modulus. */
  char t[345];
  memset(t, '/', 342);
  t[341] = 'w'; /* last 2 chars + "==" carry one byte 0xff: "/w==" */
  t[342] = t[343] = '=';
  t[344] = 0;
  mtci_sconf_part p = {t, 344};
  mtci_rsa_key bk;
  CHECK_EQ_INT(builtin_key(&bk), 0);
  CHECK_EQ_INT(mtci_simple_config_decode(&bk, &p, 1, T_NOW, NULL, 0, &c), MTC_ERR_SCONF_RSA);
  CHECK_EQ_INT(mtci_simple_config_decode(mock_sconf_key_public(f.key), &p, 1, T_NOW, NULL, 0, &c),
               MTC_ERR_SCONF_RSA);

  /* Encrypted for key 1, decoded with key 2 (and Telegram's): C < n gives
   * garbage that fails the hash, C >= n the RSA check. */
  mock_sconf_ip ips[] = {{{127, 0, 0, 1}, 443, NULL, 0}};
  mock_sconf_rule rules[] = {{"", 2, ips, 1}};
  char text[345];
  int seen_rsa = 0, seen_hash = 0;
  for (int i = 0; i < 12; i++) {
    CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, rules, 1, text), 0);
    uint8_t cbin[256];
    const mtci_rsa_key *keys[2] = {mock_sconf_key_public(f.other), &bk};
    for (int k = 0; k < 2; k++) {
      /* C as a big-endian number against n. */
      size_t cl = 0;
      CHECK_EQ_INT(mtci_base64_decode(text, 344, MTCI_B64_STD, cbin, sizeof cbin, &cl), 0);
      int above = memcmp(cbin, keys[k]->n, 256) >= 0;
      mtci_sconf_part tp = {text, 344};
      int rc = mtci_simple_config_decode(keys[k], &tp, 1, T_NOW, NULL, 0, &c);
      CHECK_EQ_INT(rc, above ? MTC_ERR_SCONF_RSA : MTC_ERR_SCONF_HASH);
      if (above) seen_rsa++;
      else seen_hash++;
    }
  }
  CHECK(seen_hash > 0 && seen_rsa + seen_hash == 24);
  /* A key that is not 2048-bit is refused outright. */
  mtci_rsa_key small = *mock_sconf_key_public(f.key);
  small.n_len = 128;
  CHECK_EQ_INT(mtci_sconf_decrypt(&small, text, 344, NULL, (uint8_t[224]){0}), MTC_ERR_INVALID_ARG);
  fx_down(&f);
}

TEST(bad_hash) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  mock_sconf_ip ips[] = {{{127, 0, 0, 1}, 443, NULL, 0}};
  mock_sconf_rule rules[] = {{"", 2, ips, 1}};
  uint8_t body[256];
  size_t len = 0;
  CHECK_EQ_INT(mock_sconf_build_tl(T_DATE, T_EXP, rules, 1, body, sizeof body, &len), 0);
  static const unsigned faults[] = {MOCK_SCONF_TAMPER_PLAIN, MOCK_SCONF_TAMPER_AES,
                                    MOCK_SCONF_TAMPER_RSA};
  mtci_simple_config c;
  char text[345];
  for (size_t i = 0; i < 3; i++) {
    CHECK_EQ_INT(enc(&f, body, len, 0, faults[i], text), 0);
    CHECK_EQ_INT(dec(&f, text, T_NOW, NULL, &c), MTC_ERR_SCONF_HASH);
  }
  CHECK_EQ_INT(enc(&f, body, len, 0, 0, text), 0);
  CHECK_EQ_INT(dec(&f, text, T_NOW, NULL, &c), 0);
  fx_down(&f);
}

/* Little helpers to write TL bodies by hand for the structural negatives. */
struct tlb {
  uint8_t b[256];
  size_t n;
};
static void put32(struct tlb *t, uint32_t v) {
  t->b[t->n++] = (uint8_t)v;
  t->b[t->n++] = (uint8_t)(v >> 8);
  t->b[t->n++] = (uint8_t)(v >> 16);
  t->b[t->n++] = (uint8_t)(v >> 24);
}

/* help.configSimple with one rule "" dc 2 and one ipPort 127.0.0.1:443,
 * with the given overrides. */
static void body_one(struct tlb *t, uint32_t cfg_id, uint32_t n_rules, uint32_t rule_id,
                     uint32_t n_ips, uint32_t ip_id) {
  t->n = 0;
  put32(t, cfg_id);
  put32(t, T_DATE);
  put32(t, T_EXP);
  put32(t, n_rules);
  put32(t, rule_id);
  put32(t, 0); /* "" */
  put32(t, 2);
  put32(t, n_ips);
  put32(t, ip_id);
  put32(t, 0x7f000001);
  put32(t, 443);
}

static int dec_body(struct fx *f, const struct tlb *t, uint32_t len_field) {
  char text[345];
  int rc = enc(f, t->b, t->n, len_field, 0, text);
  if (rc) return 1000 + rc;
  mtci_simple_config c;
  return dec(f, text, T_NOW, NULL, &c);
}

TEST(structure) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  struct tlb t;
  const uint32_t CS = MTCI_SCONF_ID_CONFIG_SIMPLE, AR = MTCI_SCONF_ID_ACCESS_POINT_RULE,
                 IP = MTCI_SCONF_ID_IP_PORT;
  body_one(&t, CS, 1, AR, 1, IP);
  CHECK_EQ_INT(t.n, 44);
  CHECK_EQ_INT(dec_body(&f, &t, 0), 0);
  /* Inner length. */
  CHECK_EQ_INT(dec_body(&f, &t, 4), MTC_ERR_SCONF_INNER_LENGTH);
  CHECK_EQ_INT(dec_body(&f, &t, 212), MTC_ERR_SCONF_INNER_LENGTH);
  CHECK_EQ_INT(dec_body(&f, &t, 50), MTC_ERR_SCONF_INNER_LENGTH);
  CHECK_EQ_INT(dec_body(&f, &t, 0xfffffffcu), MTC_ERR_SCONF_INNER_LENGTH);
  /* len cuts the port off: the ips count no longer fits the bytes left. */
  CHECK_EQ_INT(dec_body(&f, &t, 4 + 40), MTC_ERR_SCONF_VECTOR);
  /* Data ends early: len cuts off expires. */
  CHECK_EQ_INT(dec_body(&f, &t, 4 + 8), MTC_ERR_SCONF_MALFORMED);
  /* Trailing bytes inside len: 4 more than the object. */
  CHECK_EQ_INT(dec_body(&f, &t, 4 + 44 + 4), MTC_ERR_SCONF_TRAILING);
  /* len = 208: everything up to the hash must be the object. */
  CHECK_EQ_INT(dec_body(&f, &t, 208), MTC_ERR_SCONF_TRAILING);
  /* Constructors. */
  body_one(&t, 0xd997c3c5u, 1, AR, 1, IP); /* the pre-2019 configSimple */
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_CONSTRUCTOR);
  body_one(&t, CS, 1, 0x1cb5c415u, 1, IP);
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_CONSTRUCTOR);
  body_one(&t, CS, 1, AR, 1, 0x12345678u);
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_CONSTRUCTOR);
  /* Oversized vector counts (bounded by the bytes left). */
  body_one(&t, CS, 1000, AR, 1, IP);
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_VECTOR);
  body_one(&t, CS, 0xffffffffu, AR, 1, IP);
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_VECTOR);
  body_one(&t, CS, 1, AR, 0x7fffffffu, IP);
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_VECTOR);
  body_one(&t, CS, 1, AR, 2, IP); /* 2 ips need 24 bytes, 12 left */
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_VECTOR);
  /* A phone rule string running past the end. */
  body_one(&t, CS, 1, AR, 1, IP);
  t.b[20] = 200; /* the "" becomes a 200-byte string */
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_MALFORMED);
  /* Secret bytes running past the end. */
  body_one(&t, CS, 1, AR, 1, MTCI_SCONF_ID_IP_PORT_SECRET);
  put32(&t, 0x00000010u); /* length 16, no data follows */
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_MALFORMED);
  /* Empty rules vector; a rule without addresses. */
  t.n = 0;
  put32(&t, CS);
  put32(&t, T_DATE);
  put32(&t, T_EXP);
  put32(&t, 0);
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_NO_RULES);
  body_one(&t, CS, 1, AR, 0, IP);
  t.n -= 12;
  CHECK_EQ_INT(dec_body(&f, &t, 0), MTC_ERR_SCONF_NO_RULES);
  fx_down(&f);
}

TEST(validity) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  mock_sconf_ip ips[] = {{{127, 0, 0, 1}, 443, NULL, 0}};
  mock_sconf_rule rules[] = {{"", 2, ips, 1}};
  char text[345];
  mtci_simple_config c;
  CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, rules, 1, text), 0);
  CHECK_EQ_INT(dec(&f, text, T_DATE - 1200, NULL, &c), 0);
  CHECK_EQ_INT(dec(&f, text, T_DATE - 1201, NULL, &c), MTC_ERR_SCONF_FUTURE);
  CHECK_EQ_INT(dec(&f, text, T_EXP + 1200, NULL, &c), 0);
  CHECK_EQ_INT(dec(&f, text, T_EXP + 1201, NULL, &c), MTC_ERR_SCONF_EXPIRED);
  /* A config from last month that expired yesterday. */
  CHECK_EQ_INT(enc_rules(&f, T_NOW - 30 * 86400, T_NOW - 86400, rules, 1, text), 0);
  CHECK_EQ_INT(dec(&f, text, T_NOW, NULL, &c), MTC_ERR_SCONF_EXPIRED);
  /* One dated tomorrow. */
  CHECK_EQ_INT(enc_rules(&f, T_NOW + 86400, T_NOW + 2 * 86400, rules, 1, text), 0);
  CHECK_EQ_INT(dec(&f, text, T_NOW, NULL, &c), MTC_ERR_SCONF_FUTURE);
  /* Extreme clocks do not overflow. */
  CHECK_EQ_INT(dec(&f, text, INT64_MIN, NULL, &c), MTC_ERR_SCONF_FUTURE);
  CHECK_EQ_INT(dec(&f, text, INT64_MAX, NULL, &c), MTC_ERR_SCONF_EXPIRED);
  fx_down(&f);
}

TEST(addresses) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  struct {
    uint8_t ip[4];
    int32_t port;
    const uint8_t *secret;
    size_t secret_len;
    int32_t dc;
    int want;
  } cases[] = {
      {{1, 2, 3, 4}, 1, NULL, 0, 1, 0},
      {{223, 255, 255, 255}, 65535, NULL, 0, 1000, 0},
      {{127, 0, 0, 1}, 443, k_dd, sizeof k_dd, 2, 0},
      {{127, 0, 0, 1}, 443, NULL, 0, 0, MTC_ERR_SCONF_BAD_DC},
      {{127, 0, 0, 1}, 443, NULL, 0, 1001, MTC_ERR_SCONF_BAD_DC},
      {{127, 0, 0, 1}, 443, NULL, 0, -2, MTC_ERR_SCONF_BAD_DC},
      {{0, 1, 2, 3}, 443, NULL, 0, 2, MTC_ERR_SCONF_BAD_IP},
      {{224, 0, 0, 1}, 443, NULL, 0, 2, MTC_ERR_SCONF_BAD_IP},
      {{255, 255, 255, 255}, 443, NULL, 0, 2, MTC_ERR_SCONF_BAD_IP},
      {{127, 0, 0, 1}, 0, NULL, 0, 2, MTC_ERR_SCONF_BAD_PORT},
      {{127, 0, 0, 1}, 65536, NULL, 0, 2, MTC_ERR_SCONF_BAD_PORT},
      {{127, 0, 0, 1}, -443, NULL, 0, 2, MTC_ERR_SCONF_BAD_PORT},
      {{127, 0, 0, 1}, 443, k_dd + 1, 15, 2, MTC_ERR_SCONF_BAD_SECRET}, /* 15 bytes */
      {{127, 0, 0, 1}, 443, k_dd, 16, 2, 0}, /* 16 bytes starting 0xdd: a plain key */
      {{127, 0, 0, 1}, 443, k_dd_long, 18, 2, MTC_ERR_SCONF_BAD_SECRET}, /* 0xdd + 17 */
      {{127, 0, 0, 1}, 443, k_ee, 17, 2, MTC_ERR_SCONF_BAD_SECRET},     /* 0xee, no domain */
      {{127, 0, 0, 1}, 443, k_dd + 1, 0, 2, MTC_ERR_SCONF_BAD_SECRET},  /* empty */
  };
  static const uint8_t bad_tag[17] = {0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static const uint8_t bad_domain[20] = {0xee, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                         16, 'a', ' ', 'b'};
  char text[345];
  mtci_simple_config c;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mock_sconf_ip ip = {{0}, cases[i].port, cases[i].secret, cases[i].secret_len};
    memcpy(ip.ip, cases[i].ip, 4);
    mock_sconf_rule rule = {"", cases[i].dc, &ip, 1};
    CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, &rule, 1, text), 0);
    int rc = dec(&f, text, T_NOW, NULL, &c);
    if (rc != cases[i].want) fprintf(stderr, "  case %zu\n", i);
    CHECK_EQ_INT(rc, cases[i].want);
  }
  const uint8_t *bad[] = {bad_tag, bad_domain};
  size_t bad_len[] = {sizeof bad_tag, sizeof bad_domain};
  for (int i = 0; i < 2; i++) {
    mock_sconf_ip ip = {{127, 0, 0, 1}, 443, bad[i], bad_len[i]};
    mock_sconf_rule rule = {"", 2, &ip, 1};
    CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, &rule, 1, text), 0);
    CHECK_EQ_INT(dec(&f, text, T_NOW, NULL, &c), MTC_ERR_SCONF_BAD_SECRET);
  }
  /* A broken address in a rule that does not apply is not looked at. */
  mock_sconf_ip good = {{127, 0, 0, 1}, 443, NULL, 0}, broken = {{0, 0, 0, 0}, 0, NULL, 0};
  mock_sconf_rule rules[] = {{"+7", 0, &broken, 1}, {"", 2, &good, 1}};
  CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, rules, 2, text), 0);
  CHECK_EQ_INT(dec(&f, text, T_NOW, "+15550100", &c), 0);
  CHECK_EQ_INT(c.count, 1);
  CHECK_EQ_INT(c.rules, 2);
  CHECK_EQ_INT(c.rules_applied, 1);
  CHECK_EQ_INT(dec(&f, text, T_NOW, "+79001234567", &c), MTC_ERR_SCONF_BAD_DC);
  CHECK_EQ_INT(dec(&f, text, T_NOW, NULL, &c), MTC_ERR_SCONF_BAD_DC); /* before login: all */
  fx_down(&f);
}

TEST(phone_rules_unit) {
  struct {
    const char *rules;
    const char *phone;
    int want;
  } cases[] = {
      {"", "15551234", 1},          /* empty item */
      {"+1", "15551234", 1},        /* prefix */
      {"+1", "445551234", 0},       /* no match */
      {"+1,-1555", "15551234", 0},  /* reject wins */
      {"+1,-1555", "12125551234", 1},
      {"-1555,", "15551234", 0},    /* rejected before the empty item */
      {",-1555", "15551234", 0},    /* rejected after a match: still rejected */
      {"-1555,", "4420", 1},        /* the empty item matches */
      {"x1,+7", "79001234567", 1},  /* unknown item ignored */
      {"x1", "1", 0},               /* only unknown items: no match */
      {"+1a", "1", 0},              /* P not digits: ignored */
      {"+", "999", 1},              /* empty P matches all (tdlib) */
      {"-", "999", 0},
      {"+44,+7", "79001234567", 1},
      {"+44,+7", "15550000", 0},
      {"+1 555", "1555", 0},        /* space inside P: not digits, ignored */
      {"+1555", "+1 (555) 012-3456", 1}, /* phone reduced to its digits */
      {"-1", "", 1},                /* before login: every rule applies */
      {"-1", "+ ()", 1},            /* no digits = no phone */
      {"+12345678901234567890", "1234567890", 0}, /* P longer than the phone */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = mtci_sconf_phone_applies(cases[i].rules, strlen(cases[i].rules), cases[i].phone,
                                       strlen(cases[i].phone));
    if (got != cases[i].want) fprintf(stderr, "  case %zu: \"%s\" vs \"%s\"\n", i, cases[i].rules,
                                      cases[i].phone);
    CHECK_EQ_INT(got, cases[i].want);
  }
  CHECK_EQ_INT(mtci_sconf_phone_applies("-1", 2, NULL, 0), 1);
}

TEST(phone_rules_decode) {
  struct fx f;
  CHECK_EQ_INT(fx_up(&f), 0);
  mock_sconf_ip a = {{127, 0, 0, 1}, 1001, NULL, 0}, b = {{127, 0, 0, 2}, 1002, NULL, 0},
                d = {{127, 0, 0, 3}, 1003, NULL, 0}, e = {{127, 0, 0, 4}, 1004, NULL, 0};
  mock_sconf_rule rules[] = {
      {"+1", 1, &a, 1}, {"+1,-1555", 2, &b, 1}, {",x9", 3, &d, 1}, {"x9", 4, &e, 1}};
  char text[345];
  mtci_simple_config c;
  CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, rules, 4, text), 0);
  /* +1 555...: rule 1 (+1), not rule 2 (-1555), rule 3 (empty item), not 4. */
  CHECK_EQ_INT(dec(&f, text, T_NOW, "+15550001", &c), 0);
  CHECK_EQ_INT(c.rules_applied, 2);
  CHECK_EQ_INT(c.count, 2);
  CHECK_EQ_INT(c.ep[0].port, 1001);
  CHECK_EQ_INT(c.ep[1].port, 1003);
  /* +1 212...: rules 1, 2, 3. */
  CHECK_EQ_INT(dec(&f, text, T_NOW, "+12125550000", &c), 0);
  CHECK_EQ_INT(c.count, 3);
  CHECK_EQ_INT(c.ep[1].dc_id, 2);
  /* +44: only rule 3. */
  CHECK_EQ_INT(dec(&f, text, T_NOW, "+442079460000", &c), 0);
  CHECK_EQ_INT(c.count, 1);
  CHECK_EQ_INT(c.ep[0].dc_id, 3);
  /* No phone: all four. */
  CHECK_EQ_INT(dec(&f, text, T_NOW, "", &c), 0);
  CHECK_EQ_INT(c.count, 4);
  /* Nothing applies. */
  mock_sconf_rule only[] = {{"-1555", 1, &a, 1}, {"+7", 2, &b, 1}};
  CHECK_EQ_INT(enc_rules(&f, T_DATE, T_EXP, only, 2, text), 0);
  CHECK_EQ_INT(dec(&f, text, T_NOW, "+15550001", &c), MTC_ERR_SCONF_NO_RULES);
  CHECK_EQ_INT(c.count, 0);
  fx_down(&f);
}

TEST(error_texts) {
  for (int code = -716; code <= -700; code++) {
    const char *s = mtc_strerror(code);
    CHECK(s && strncmp(s, "simple config:", 14) == 0);
  }
  for (int code = -725; code <= -720; code++) CHECK(strstr(mtc_strerror(code), "DoH") != NULL);
}

TEST_MAIN("simple_config", CASE(kat_dns1_steps), CASE(kat_dns1_decode), CASE(kat_dns2),
          CASE(kat_dns3), CASE(roundtrip), CASE(ordering_retry), CASE(parts_and_length),
          CASE(bad_base64), CASE(rsa_and_wrong_key), CASE(bad_hash), CASE(structure),
          CASE(validity), CASE(addresses), CASE(phone_rules_unit), CASE(phone_rules_decode),
          CASE(error_texts))
