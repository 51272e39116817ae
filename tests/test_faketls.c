/* Fake-TLS: ClientHello KAT, MTProxy-side checks, alexbers ServerHello, record framing. */
#include "crypto/crypto.h"
#include "test.h"
#include "transport/faketls.h"
#include "transport/obfuscated2.h"
#include "transport/tls_template.h"

#ifndef MTC_TEST_DATA_DIR
#define MTC_TEST_DATA_DIR "tests/data"
#endif

/* ---- helpers ------------------------------------------------------------ */

struct xs_rng {
  uint64_t s;
};
static int xs_rng_fn(void *ud, uint8_t *out, size_t len) {
  struct xs_rng *r = ud;
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(test_rand64(&r->s) >> 24);
  return 0;
}

/* ---- PROTOCOL.md §7.8 ClientHello construction vector -------------------- */

static const char *KAT_SECRET = "0123456789abcdef0123456789abcdef";
static const char *KAT_DOMAIN = "example.com";
#define KAT_TIME 1700000000
static const char *KAT_HELLO =
    "1603010200010001fc030366d366db2e7de1b67dc9e16c7e8a68859f7ffa604a"
    "405f8e18596f8a540e39d9201111111111111111111111111111111111111111"
    "11111111111111111111111100200a0a130113021303c02bc02fc02cc030cca9"
    "cca8c013c014009c009d002f0035010001932a2a000000000010000e00000b65"
    "78616d706c652e636f6d000500050100000000000a000a00084a4a001d001700"
    "18000b00020100000d0012001004030804040105030805050108060601001000"
    "0e000c02683208687474702f312e310012000000170000001b00030200020023"
    "0000002b0007066a6a03040303002d000201010033002b00294a4a000100001d"
    "0020222222222222222222222222222222222222222222222222222222222222"
    "2222446900050003026832ff010001003a3a000100001500cc00000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "0000000000";

/* greases 0a..6a, then session_id 32 x 11 */
static uint8_t kat_rng_bytes[7 + 32];
static const uint8_t kat_key[32] = {
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22};

static int kat_hello(uint8_t out[MTCI_TLS_HELLO_LEN], const char *domain, int64_t t,
                     size_t *drawn) {
  uint8_t secret[16];
  test_unhex(KAT_SECRET, secret, 16);
  for (int i = 0; i < 7; i++) kat_rng_bytes[i] = (uint8_t)(0x0a + 0x10 * i);
  memset(kat_rng_bytes + 7, 0x11, 32);
  struct test_fixed_rng r = {kat_rng_bytes, sizeof kat_rng_bytes, 0};
  mtci_tls_hello_hook hook = {1, kat_key};
  int rc = mtci_tls_client_hello(secret, (const uint8_t *)domain, strlen(domain), t,
                                 test_fixed_rng_fn, &r, &hook, out);
  if (drawn) *drawn = r.pos;
  return rc;
}

TEST(client_hello_kat) {
  uint8_t hello[MTCI_TLS_HELLO_LEN], want[MTCI_TLS_HELLO_LEN], h[32], d[32];
  size_t drawn = 0;
  CHECK_EQ_INT(kat_hello(hello, KAT_DOMAIN, KAT_TIME, &drawn), 0);
  CHECK_EQ_INT(drawn, 39); /* 7 greases + 32 session_id, nothing else */
  CHECK_EQ_INT(test_unhex(KAT_HELLO, want, sizeof want), 517);
  CHECK_MEM(hello, want, 517);
  mtci_sha256(hello, sizeof hello, h);
  test_unhex("787e552f20af0c4c375704785b07193a280ea9f5a875ad61831620c00581abc8", d, 32);
  CHECK_MEM(h, d, 32);
  /* the HMAC over the zeroed hello, before the time XOR */
  test_unhex("66d366db2e7de1b67dc9e16c7e8a68859f7ffa604a405f8e18596f8a54ff6abc", d, 32);
  CHECK_MEM(hello + 11, d, 28);
  uint32_t t = (uint32_t)KAT_TIME;
  for (int i = 0; i < 4; i++) CHECK_EQ_INT(hello[39 + i] ^ d[28 + i], (t >> (8 * i)) & 0xff);
  /* pre-padding size 311: padding extension 00 15, length 204 */
  CHECK_EQ_INT(hello[311 - 2], 0x00);
  CHECK_EQ_INT(hello[311 - 1], 0x15);
  CHECK_EQ_INT(hello[311] << 8 | hello[312], 204);
}

TEST(client_hello_bad_args) {
  uint8_t out[MTCI_TLS_HELLO_LEN], secret[16] = {0};
  struct test_fixed_rng r = {kat_rng_bytes, sizeof kat_rng_bytes, 0};
  CHECK_EQ_INT(mtci_tls_client_hello(secret, (const uint8_t *)"", 0, 0, test_fixed_rng_fn, &r,
                                     NULL, out),
               MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_tls_client_hello(NULL, (const uint8_t *)"a.b", 3, 0, test_fixed_rng_fn, &r,
                                     NULL, out),
               MTC_ERR_INVALID_ARG);
  /* RNG runs dry inside the template: its error comes back */
  uint8_t few[20] = {0};
  struct test_fixed_rng r2 = {few, sizeof few, 0};
  CHECK_EQ_INT(mtci_tls_client_hello(secret, (const uint8_t *)"a.b", 3, 0, test_fixed_rng_fn, &r2,
                                     NULL, out),
               MTC_ERR_RANDOM);
}

/* RFC 7748 §6.1: Alice's and Bob's public keys from their private keys. */
TEST(x25519_rfc7748) {
  static const char *priv[2] = {
      "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
      "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"};
  static const char *pub[2] = {
      "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
      "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"};
  for (int i = 0; i < 2; i++) {
    uint8_t k[32], want[32], out[32];
    test_unhex(priv[i], k, 32);
    test_unhex(pub[i], want, 32);
    struct test_fixed_rng r = {k, 32, 0};
    CHECK_EQ_INT(mtci_x25519_public_key(test_fixed_rng_fn, &r, out), 0);
    CHECK_MEM(out, want, 32);
  }
  uint8_t out[32];
  struct test_fixed_rng empty = {NULL, 0, 0};
  CHECK_EQ_INT(mtci_x25519_public_key(test_fixed_rng_fn, &empty, out), MTC_ERR_RANDOM);
}

TEST(grease_derivation) {
  uint8_t g[7] = {0x00, 0x0f, 0x3c, 0x31, 0xff, 0xf0, 0x12};
  static const uint8_t want[7] = {0x0a, 0x1a, 0x3a, 0x2a, 0xfa, 0xea, 0x1a};
  mtci_tls_grease_derive(g);
  CHECK_MEM(g, want, 7);
  uint8_t h[7] = {0x0a, 0x1a, 0x2a, 0x3a, 0x4a, 0x5a, 0x6a};
  mtci_tls_grease_derive(h);
  static const uint8_t same[7] = {0x0a, 0x1a, 0x2a, 0x3a, 0x4a, 0x5a, 0x6a};
  CHECK_MEM(h, same, 7);
}

/* PADDING rejects more than 514 bytes before it (tdlib), and templates that
 * do not fit or do not balance are refused. */
TEST(template_edges) {
  static const mtci_tls_op fits[] = {{MTCI_TLS_OP_ZERO, 512, NULL},
                                     {MTCI_TLS_OP_BYTES, 2, "\x00\x15"},
                                     {MTCI_TLS_OP_PADDING, 517, NULL},
                                     {MTCI_TLS_OP_DONE, 0, NULL}};
  static const mtci_tls_op too_long[] = {{MTCI_TLS_OP_ZERO, 513, NULL},
                                         {MTCI_TLS_OP_BYTES, 2, "\x00\x15"},
                                         {MTCI_TLS_OP_PADDING, 517, NULL},
                                         {MTCI_TLS_OP_DONE, 0, NULL}};
  static const mtci_tls_op overflow[] = {{MTCI_TLS_OP_ZERO, 600, NULL},
                                         {MTCI_TLS_OP_DONE, 0, NULL}};
  static const mtci_tls_op unbalanced[] = {{MTCI_TLS_OP_BEGIN, 0, NULL},
                                           {MTCI_TLS_OP_DONE, 0, NULL}};
  static const mtci_tls_op stray_alt[] = {{MTCI_TLS_OP_ALT_END, 0, NULL},
                                          {MTCI_TLS_OP_DONE, 0, NULL}};
  static const mtci_tls_op open_perm[] = {{MTCI_TLS_OP_PERM, 2, NULL},
                                          {MTCI_TLS_OP_BYTES, 1, "a"},
                                          {MTCI_TLS_OP_ALT_END, 0, NULL},
                                          {MTCI_TLS_OP_DONE, 0, NULL}};
  static const mtci_tls_op bad_grease[] = {{MTCI_TLS_OP_GREASE, 7, NULL},
                                           {MTCI_TLS_OP_DONE, 0, NULL}};
  uint8_t out[517];
  size_t n = 0;
  struct xs_rng rng = {1};
  mtci_tls_build b = {.domain = (const uint8_t *)"x", .domain_len = 1, .rnd = xs_rng_fn,
                      .rnd_ud = &rng};
  CHECK_EQ_INT(mtci_tls_template_run(fits, &b, out, sizeof out, &n), 0);
  CHECK_EQ_INT(n, 517);
  CHECK_EQ_INT(out[514] << 8 | out[515], 1); /* one byte of padding */
  CHECK_EQ_INT(mtci_tls_template_run(too_long, &b, out, sizeof out, &n),
               MTC_ERR_TLS_HELLO_TOO_LONG);
  CHECK_EQ_INT(mtci_tls_template_run(overflow, &b, out, sizeof out, &n),
               MTC_ERR_TLS_HELLO_TOO_LONG);
  CHECK_EQ_INT(mtci_tls_template_run(unbalanced, &b, out, sizeof out, &n), MTC_ERR_INTERNAL);
  CHECK_EQ_INT(mtci_tls_template_run(stray_alt, &b, out, sizeof out, &n), MTC_ERR_INTERNAL);
  CHECK_EQ_INT(mtci_tls_template_run(open_perm, &b, out, sizeof out, &n), MTC_ERR_INTERNAL);
  CHECK_EQ_INT(mtci_tls_template_run(bad_grease, &b, out, sizeof out, &n), MTC_ERR_INTERNAL);
}

/* ---- MTProxy-side ClientHello check ------------------------------------- */

TEST(server_accepts_kat_hello) {
  uint8_t hello[517], secret[16];
  uint32_t ts = 0;
  test_unhex(KAT_HELLO, hello, sizeof hello);
  test_unhex(KAT_SECRET, secret, 16);
  CHECK_EQ_INT(mtci_tls_client_hello_size(hello, 3), 0);
  CHECK_EQ_INT(mtci_tls_client_hello_size(hello, 5), 517);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, (const uint8_t *)KAT_DOMAIN, 11,
                                           KAT_TIME, 0, &ts),
               0);
  CHECK_EQ_INT(ts, KAT_TIME);
  /* no domain given: SNI not checked */
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, NULL, 0, KAT_TIME, 0, NULL), 0);
}

TEST(server_rejects_bad_hellos) {
  uint8_t hello[518], bad[518], secret[16], other[16];
  const uint8_t *dom = (const uint8_t *)KAT_DOMAIN;
  test_unhex(KAT_HELLO, hello, 517);
  test_unhex(KAT_SECRET, secret, 16);
  memcpy(other, secret, 16);
  other[0] ^= 0x80;
  /* wrong secret */
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, other, dom, 11, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_BAD_DIGEST);
  /* one tampered byte anywhere: in the random, the body, the SNI, the padding */
  static const size_t spots[] = {11, 38, 60, 130, 300, 516};
  for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
    memcpy(bad, hello, 517);
    bad[spots[k]] ^= 0x04;
    CHECK_EQ_INT(mtci_tls_server_check_hello(bad, 517, secret, dom, 11, KAT_TIME, 0, NULL),
                 MTC_ERR_TLS_BAD_DIGEST);
  }
  /* a changed timestamp byte (39..42) moves the time, not the digest */
  memcpy(bad, hello, 517);
  bad[42] ^= 0x01;
  CHECK_EQ_INT(mtci_tls_server_check_hello(bad, 517, secret, dom, 11, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_TIME_SKEW);
  /* time window: -1200 < now - ts < 600 */
  uint32_t ts = 0;
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, dom, 11, KAT_TIME + 599, 0, &ts), 0);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, dom, 11, KAT_TIME + 600, 0, NULL),
               MTC_ERR_TLS_TIME_SKEW);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, dom, 11, KAT_TIME - 1199, 0, NULL),
               0);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, dom, 11, KAT_TIME - 1200, 0, NULL),
               MTC_ERR_TLS_TIME_SKEW);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, dom, 11, KAT_TIME + 100000,
                                           MTCI_TLS_IGNORE_TIME_SKEW, NULL),
               0);
  /* wrong domain: a hello made for another domain with the same secret */
  uint8_t h2[517];
  CHECK_EQ_INT(kat_hello(h2, "example.org", KAT_TIME, NULL), 0);
  CHECK_EQ_INT(mtci_tls_server_check_hello(h2, 517, secret, NULL, 0, KAT_TIME, 0, NULL), 0);
  CHECK_EQ_INT(mtci_tls_server_check_hello(h2, 517, secret, dom, 11, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_BAD_SNI);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, dom, 10, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_BAD_SNI);
  /* record header and size */
  memcpy(bad, hello, 517);
  bad[2] = 0x03;
  CHECK_EQ_INT(mtci_tls_client_hello_size(bad, 2), 0);
  CHECK_EQ_INT(mtci_tls_client_hello_size(bad, 3), MTC_ERR_TLS_NOT_HELLO);
  CHECK_EQ_INT(mtci_tls_server_check_hello(bad, 517, secret, dom, 11, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_NOT_HELLO);
  memcpy(bad, hello, 517);
  bad[3] = 0x01, bad[4] = 0xff; /* 511 */
  CHECK_EQ_INT(mtci_tls_server_check_hello(bad, 517, secret, dom, 11, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_NOT_HELLO);
  bad[3] = 0x41, bad[4] = 0x01; /* 16641 */
  CHECK_EQ_INT(mtci_tls_client_hello_size(bad, 5), MTC_ERR_TLS_RECORD_TOO_LONG);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 516, secret, dom, 11, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_TRUNCATED);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 4, secret, dom, 11, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_TRUNCATED);
  hello[517] = 0;
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 518, secret, dom, 11, KAT_TIME, 0, NULL),
               MTC_ERR_TLS_MALFORMED);
}

/* A "time since boot" client (timestamp < 86400000) skips the window. */
TEST(server_boot_time_client) {
  uint8_t hello[517], secret[16];
  uint32_t ts = 0;
  test_unhex(KAT_SECRET, secret, 16);
  CHECK_EQ_INT(kat_hello(hello, KAT_DOMAIN, 86399999, NULL), 0);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, (const uint8_t *)KAT_DOMAIN, 11,
                                           KAT_TIME, 0, &ts),
               0);
  CHECK_EQ_INT(ts, 86399999);
  CHECK_EQ_INT(kat_hello(hello, KAT_DOMAIN, 86400000, NULL), 0);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, (const uint8_t *)KAT_DOMAIN, 11,
                                           KAT_TIME, 0, &ts),
               MTC_ERR_TLS_TIME_SKEW);
}

/* The domain is cut to 182 bytes, on both sides. */
TEST(long_domain_cut) {
  char dom[201];
  for (int i = 0; i < 200; i++) dom[i] = (char)('a' + i % 26);
  dom[200] = 0;
  uint8_t hello[517], secret[16];
  test_unhex(KAT_SECRET, secret, 16);
  CHECK_EQ_INT(kat_hello(hello, dom, KAT_TIME, NULL), 0);
  /* server_name ext is first with no shuffle: 00 00 <len> <list len> 00 <name len> */
  const uint8_t *sni = hello + 118;
  CHECK_EQ_INT(sni[0] << 8 | sni[1], 0x0000);
  CHECK_EQ_INT(sni[7] << 8 | sni[8], 182);
  CHECK_MEM(sni + 9, dom, 182);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, (const uint8_t *)dom, 200, KAT_TIME,
                                           0, NULL),
               0);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, (const uint8_t *)dom, 182, KAT_TIME,
                                           0, NULL),
               0);
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, (const uint8_t *)dom, 181, KAT_TIME,
                                           0, NULL),
               MTC_ERR_TLS_BAD_SNI);
}

/* The 15 extension types between the leading GREASE extension and the
 * trailing one, in order. Returns how many were found. */
static int ext_order(const uint8_t *h, uint16_t types[16]) {
  size_t p = 5 + 4 + 2 + 32;
  p += 1 + h[p];                             /* session_id */
  p += 2 + (size_t)(h[p] << 8 | h[p + 1]);   /* cipher suites */
  p += 1 + h[p];                             /* compression */
  size_t end = p + 2 + (size_t)(h[p] << 8 | h[p + 1]);
  p += 2;
  int n = 0, i = 0;
  while (p + 4 <= end && p + 4 <= 517) {
    uint16_t t = (uint16_t)(h[p] << 8 | h[p + 1]);
    size_t l = (size_t)(h[p + 2] << 8 | h[p + 3]);
    if (i > 0 && (t & 0x0f0f) != 0x0a0a && t != 0x0015 && n < 16) types[n++] = t;
    i++;
    p += 4 + l;
  }
  return n;
}

/* Shuffled hellos: 517 bytes, accepted by the server check, same 15
 * extensions in varying orders. */
TEST(shuffled_hellos) {
  static const uint16_t listed[15] = {0x0000, 0x0005, 0x000a, 0x000b, 0x000d,
                                      0x0010, 0x0012, 0x0017, 0x001b, 0x0023,
                                      0x002b, 0x002d, 0x0033, 0x4469, 0xff01};
  uint8_t secret[16];
  test_unhex(KAT_SECRET, secret, 16);
  static uint16_t orders[50][16];
  int first_pos_seen[15] = {0};
  for (int k = 0; k < 50; k++) {
    uint8_t hello[MTCI_TLS_HELLO_LEN];
    struct xs_rng rng = {0x1000u + (uint64_t)k * 7919u};
    int64_t now = KAT_TIME + k;
    CHECK_EQ_INT(mtci_tls_client_hello(secret, (const uint8_t *)KAT_DOMAIN, 11, now, xs_rng_fn,
                                       &rng, NULL, hello),
                 0);
    CHECK_EQ_INT(mtci_tls_client_hello_size(hello, sizeof hello), 517);
    uint32_t ts = 0;
    CHECK_EQ_INT(mtci_tls_server_check_hello(hello, sizeof hello, secret,
                                             (const uint8_t *)KAT_DOMAIN, 11, now, 0, &ts),
                 0);
    CHECK_EQ_INT(ts, now);
    CHECK_EQ_INT(ext_order(hello, orders[k]), 15);
    /* a permutation of the listed set */
    int seen = 0;
    for (int a = 0; a < 15; a++)
      for (int b = 0; b < 15; b++)
        if (orders[k][a] == listed[b]) seen |= 1 << b;
    CHECK_EQ_INT(seen, 0x7fff);
    for (int b = 0; b < 15; b++)
      if (orders[k][0] == listed[b]) first_pos_seen[b] = 1;
  }
  int distinct = 0;
  for (int k = 0; k < 50; k++) {
    int dup = 0;
    for (int j = 0; j < k && !dup; j++) dup = !memcmp(orders[k], orders[j], sizeof orders[k]);
    distinct += !dup;
  }
  CHECK(distinct >= 49); /* 50 draws from 15! orders: a repeat is ~1e-9 likely */
  int firsts = 0;
  for (int b = 0; b < 15; b++) firsts += first_pos_seen[b];
  CHECK(firsts >= 8); /* different extensions lead */
}

/* ---- ServerHello check: alexbers capture (gotd testdata) ---------------- */

static uint8_t alexbers[4400];
static size_t alexbers_len;
static const char *ALEX_CLIENT_RANDOM =
    "a132e3916083b314c1b974d05785e8ee70456e5f866d9657d50a5c08ea38318e";
static const uint8_t alex_secret[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static int load_alexbers(void) {
  if (alexbers_len) return 0;
  static char hex[9000];
  FILE *f = fopen(MTC_TEST_DATA_DIR "/faketls_alexbers_server_hello.hex", "rb");
  if (!f) return -1;
  size_t n = fread(hex, 1, sizeof hex - 1, f);
  fclose(f);
  hex[n] = 0;
  size_t m = test_unhex(hex, alexbers, sizeof alexbers);
  if (m == (size_t)-1) return -1;
  alexbers_len = m;
  return 0;
}

TEST(alexbers_server_hello) {
  CHECK_EQ_INT(load_alexbers(), 0);
  CHECK_EQ_INT(alexbers_len, 4286);
  uint8_t h[32], want[32], cr[32];
  mtci_sha256(alexbers, alexbers_len, h);
  test_unhex("ec62646da053ed66b96ebbe10682862b7a5c5dcb7d2ee5c1a3c67a9008abbd44", want, 32);
  CHECK_MEM(h, want, 32);
  uint8_t head[11];
  test_unhex("160303007a020000760303", head, 11);
  CHECK_MEM(alexbers, head, 11);
  test_unhex("b53349a80a60a14a1508c59086ebdaa36b96f4135f123e7a7cb3afb39ce9d793", want, 32);
  CHECK_MEM(alexbers + 11, want, 32);
  test_unhex(ALEX_CLIENT_RANDOM, cr, 32);

  /* in one piece, with application data behind it */
  static uint8_t buf[4400];
  memcpy(buf, alexbers, alexbers_len);
  memcpy(buf + alexbers_len, "\x17\x03\x03\x00\x02hi", 7);
  mtci_tls_sh s;
  size_t used = 0;
  mtci_tls_sh_init(&s, alex_secret, cr);
  CHECK_EQ_INT(mtci_tls_sh_eof(&s), MTC_ERR_TLS_TRUNCATED);
  CHECK_EQ_INT(mtci_tls_sh_feed(&s, buf, alexbers_len + 7, &used), 1);
  CHECK_EQ_INT(used, 4286);
  CHECK_EQ_INT(mtci_tls_sh_eof(&s), 0);
  CHECK_EQ_INT(mtci_tls_sh_feed(&s, buf, 10, &used), 1); /* done: consumes nothing */
  CHECK_EQ_INT(used, 0);
  mtci_tls_sh_free(&s);

  /* any split */
  uint64_t seed = 77;
  for (int iter = 0; iter < 40; iter++) {
    mtci_tls_sh_init(&s, alex_secret, cr);
    size_t off = 0;
    int rc = 0;
    while (off < alexbers_len) {
      size_t n = 1 + (size_t)(test_rand64(&seed) % (iter < 20 ? 16 : 900));
      if (n > alexbers_len - off) n = alexbers_len - off;
      rc = mtci_tls_sh_feed(&s, alexbers + off, n, &used);
      CHECK_EQ_INT(used, n);
      off += n;
      if (off < alexbers_len) CHECK_EQ_INT(rc, 0);
    }
    CHECK_EQ_INT(rc, 1);
    mtci_tls_sh_free(&s);
  }
}

static int sh_check(const uint8_t *d, size_t n, const uint8_t secret[16], const char *cr_hex) {
  uint8_t cr[32];
  test_unhex(cr_hex, cr, 32);
  mtci_tls_sh s;
  size_t used = 0;
  mtci_tls_sh_init(&s, secret, cr);
  int rc = mtci_tls_sh_feed(&s, d, n, &used);
  if (rc == 0) rc = mtci_tls_sh_eof(&s);
  else if (rc < 0 && mtci_tls_sh_eof(&s) != rc) rc = -9999; /* errors are sticky */
  mtci_tls_sh_free(&s);
  return rc;
}

TEST(alexbers_negative) {
  CHECK_EQ_INT(load_alexbers(), 0);
  static uint8_t b[4400];
  uint8_t other[16] = {0};
  CHECK_EQ_INT(sh_check(alexbers, alexbers_len, alex_secret, ALEX_CLIENT_RANDOM), 1);
  /* wrong secret, wrong client random */
  CHECK_EQ_INT(sh_check(alexbers, alexbers_len, other, ALEX_CLIENT_RANDOM), MTC_ERR_TLS_BAD_DIGEST);
  CHECK_EQ_INT(sh_check(alexbers, alexbers_len, alex_secret,
                        "0000000000000000000000000000000000000000000000000000000000000000"),
               MTC_ERR_TLS_BAD_DIGEST);
  /* tampered digest, tampered body */
  static const size_t spots[] = {11, 42, 60, 100, 2000, 4285};
  for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
    memcpy(b, alexbers, alexbers_len);
    b[spots[k]] ^= 0x20;
    CHECK_EQ_INT(sh_check(b, alexbers_len, alex_secret, ALEX_CLIENT_RANDOM),
                 MTC_ERR_TLS_BAD_DIGEST);
  }
  /* truncated anywhere */
  static const size_t cuts[] = {0, 3, 5, 42, 127, 130, 133, 137, 138, 4285};
  for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++)
    CHECK_EQ_INT(sh_check(alexbers, cuts[k], alex_secret, ALEX_CLIENT_RANDOM),
                 MTC_ERR_TLS_TRUNCATED);
  /* record types and versions: R = [16 03 03 007a] @0, [14 03 03 0001 01] @127,
   * [17 03 03 1034] @133 */
  static const struct {
    size_t at;
    uint8_t v;
    int rc;
  } muts[] = {
      {0, 0x17, MTC_ERR_TLS_BAD_RECORD},   {0, 0x14, MTC_ERR_TLS_BAD_RECORD},
      {2, 0x01, MTC_ERR_TLS_BAD_RECORD},   {127, 0x17, MTC_ERR_TLS_BAD_RECORD},
      {127, 0x15, MTC_ERR_TLS_BAD_RECORD}, {129, 0x01, MTC_ERR_TLS_BAD_RECORD},
      {131, 0x02, MTC_ERR_TLS_BAD_RECORD}, {132, 0x02, MTC_ERR_TLS_BAD_RECORD},
      {133, 0x16, MTC_ERR_TLS_BAD_RECORD}, {133, 0x14, MTC_ERR_TLS_BAD_RECORD},
      {135, 0x04, MTC_ERR_TLS_BAD_RECORD}, {136, 0x41, MTC_ERR_TLS_RECORD_TOO_LONG},
      {3, 0x41, MTC_ERR_TLS_RECORD_TOO_LONG},
  };
  for (size_t k = 0; k < sizeof muts / sizeof muts[0]; k++) {
    memcpy(b, alexbers, alexbers_len);
    b[muts[k].at] = muts[k].v;
    CHECK_EQ_INT(sh_check(b, alexbers_len, alex_secret, ALEX_CLIENT_RANDOM), muts[k].rc);
  }
  /* a first record too short to hold the server random (37 < 38) */
  static const uint8_t shorty[] = {0x16, 0x03, 0x03, 0x00, 0x25};
  CHECK_EQ_INT(sh_check(shorty, sizeof shorty, alex_secret, ALEX_CLIENT_RANDOM),
               MTC_ERR_TLS_MALFORMED);
}

/* Extra handshake records before the CCS are accepted (gotd's test), up to
 * MTCI_TLS_MAX_HANDSHAKE_RECORDS; the digest is computed independently here. */
static size_t put_rec(uint8_t *p, uint8_t type, const uint8_t *data, size_t n) {
  p[0] = type, p[1] = 0x03, p[2] = 0x03, p[3] = (uint8_t)(n >> 8), p[4] = (uint8_t)n;
  if (n) memcpy(p + 5, data, n);
  return 5 + n;
}

static size_t make_response(uint8_t *buf, int handshakes, const uint8_t cr[32]) {
  static const uint8_t zero38[38];
  static const uint8_t more[4] = {0x0b, 0, 0, 0};
  size_t n = put_rec(buf, 0x16, zero38, 38);
  for (int i = 1; i < handshakes; i++) n += put_rec(buf + n, 0x16, more, 4);
  n += put_rec(buf + n, 0x14, (const uint8_t *)"\x01", 1);
  n += put_rec(buf + n, 0x17, (const uint8_t *)"\x14\x00\x00\x00", 4);
  uint8_t mac_in[32 + 512];
  memcpy(mac_in, cr, 32);
  memcpy(mac_in + 32, buf, n);
  mtci_hmac_sha256(alex_secret, 16, mac_in, 32 + n, buf + 11);
  return n;
}

TEST(extra_handshake_records) {
  uint8_t cr[32], buf[512];
  test_unhex(ALEX_CLIENT_RANDOM, cr, 32);
  size_t n = make_response(buf, 3, cr);
  CHECK_EQ_INT(sh_check(buf, n, alex_secret, ALEX_CLIENT_RANDOM), 1);
  n = make_response(buf, MTCI_TLS_MAX_HANDSHAKE_RECORDS, cr);
  CHECK_EQ_INT(sh_check(buf, n, alex_secret, ALEX_CLIENT_RANDOM), 1);
  n = make_response(buf, MTCI_TLS_MAX_HANDSHAKE_RECORDS + 1, cr);
  CHECK_EQ_INT(sh_check(buf, n, alex_secret, ALEX_CLIENT_RANDOM), MTC_ERR_TLS_BAD_RECORD);
  /* a zero-length application record also ends the response */
  n = make_response(buf, 1, cr);
  buf[n - 4 - 1] = 0; /* app record length 4 -> 0, drop its payload */
  n -= 4;
  uint8_t mac_in[32 + 512];
  memset(buf + 11, 0, 32);
  memcpy(mac_in, cr, 32);
  memcpy(mac_in + 32, buf, n);
  mtci_hmac_sha256(alex_secret, 16, mac_in, 32 + n, buf + 11);
  CHECK_EQ_INT(sh_check(buf, n, alex_secret, ALEX_CLIENT_RANDOM), 1);
}

/* Our own MTProxy-side response: layout as mtprotoproxy's, accepted by the
 * client check, session_id echoed. */
TEST(server_hello_round_trip) {
  uint8_t hello[517], secret[16], resp[2000];
  test_unhex(KAT_SECRET, secret, 16);
  CHECK_EQ_INT(kat_hello(hello, KAT_DOMAIN, KAT_TIME, NULL), 0);
  struct xs_rng rng = {99};
  size_t n = 0;
  CHECK_EQ_INT(mtci_tls_server_hello(secret, hello, 517, 1500, xs_rng_fn, &rng, resp, 137 + 1500,
                                     &n),
               MTC_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ_INT(mtci_tls_server_hello(secret, hello, 517, 1500, xs_rng_fn, &rng, resp, sizeof resp,
                                     &n),
               0);
  CHECK_EQ_INT(n, 138 + 1500);
  uint8_t head[11], mid[9];
  test_unhex("160303007a020000760303", head, 11);
  CHECK_MEM(resp, head, 11);
  CHECK_EQ_INT(resp[43], 32);
  CHECK_MEM(resp + 44, hello + 44, 32);
  test_unhex("140303000101170303", mid, 9);
  CHECK_MEM(resp + 127, mid, 9);
  CHECK_EQ_INT(resp[136] << 8 | resp[137], 1500);
  mtci_tls_sh s;
  size_t used = 0;
  mtci_tls_sh_init(&s, secret, hello + 11);
  CHECK_EQ_INT(mtci_tls_sh_feed(&s, resp, n, &used), 1);
  CHECK_EQ_INT(used, n);
  mtci_tls_sh_free(&s);
}

/* ---- record framing ------------------------------------------------------ */

TEST(writer_splits_at_2878) {
  static uint8_t in[20000], out[21000];
  for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)(i * 31 + 7);
  mtci_tls_writer w;
  size_t n = 0;
  mtci_tls_writer_init(&w, 0);
  CHECK_EQ_INT(mtci_tls_writer_size(&w, 0), 0);
  CHECK_EQ_INT(mtci_tls_writer_emit(&w, in, 0, out, sizeof out, &n), 0);
  CHECK_EQ_INT(n, 0);
  CHECK_EQ_INT(mtci_tls_writer_size(&w, 2878), 6 + 5 + 2878);
  CHECK_EQ_INT(mtci_tls_writer_emit(&w, in, 2878, out, 6 + 5 + 2877, &n),
               MTC_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ_INT(mtci_tls_writer_emit(&w, in, 2878, out, sizeof out, &n), 0);
  CHECK_EQ_INT(n, 6 + 5 + 2878);
  CHECK_MEM(out, "\x14\x03\x03\x00\x01\x01\x17\x03\x03\x0b\x3e", 11);
  CHECK_MEM(out + 11, in, 2878);
  /* no second CCS; 2879 bytes -> 2878 + 1 */
  CHECK_EQ_INT(mtci_tls_writer_size(&w, 2879), 2879 + 10);
  CHECK_EQ_INT(mtci_tls_writer_emit(&w, in, 2879, out, sizeof out, &n), 0);
  CHECK_EQ_INT(n, 2879 + 10);
  CHECK_MEM(out, "\x17\x03\x03\x0b\x3e", 5);
  CHECK_MEM(out + 5, in, 2878);
  CHECK_MEM(out + 5 + 2878, "\x17\x03\x03\x00\x01", 5);
  CHECK_EQ_INT(out[5 + 2878 + 5], in[2878]);
  /* server side: no CCS, 16384 per record */
  mtci_tls_writer_init(&w, 1);
  CHECK_EQ_INT(mtci_tls_writer_emit(&w, in, 20000, out, sizeof out, &n), 0);
  CHECK_EQ_INT(n, 20000 + 10);
  CHECK_MEM(out, "\x17\x03\x03\x40\x00", 5);
  CHECK_MEM(out + 5 + 16384, "\x17\x03\x03\x0e\x20", 5);
  CHECK_MEM(out + 10 + 16384, in + 16384, 20000 - 16384);
}

/* Writer output (plus stray CCS and empty records) read back under random
 * splits, in place. */
TEST(reader_random_splits) {
  static uint8_t msg[12000], stream[14000], got[14000];
  uint64_t seed = 4242;
  for (int iter = 0; iter < 30; iter++) {
    mtci_tls_writer w;
    mtci_tls_writer_init(&w, iter & 1);
    size_t slen = 0, mlen = 0;
    for (int part = 0; part < 4; part++) {
      size_t n = (size_t)(test_rand64(&seed) % 3000), out = 0;
      for (size_t i = 0; i < n; i++) msg[mlen + i] = (uint8_t)test_rand64(&seed);
      CHECK_EQ_INT(mtci_tls_writer_emit(&w, msg + mlen, n, stream + slen, sizeof stream - slen,
                                        &out),
                   0);
      mlen += n;
      slen += out;
      if (test_rand64(&seed) % 2) {
        memcpy(stream + slen, "\x17\x03\x03\x00\x00", 5); /* empty record */
        slen += 5;
      }
      if (test_rand64(&seed) % 2) {
        memcpy(stream + slen, "\x14\x03\x03\x00\x01\x01", 6);
        slen += 6;
      }
    }
    mtci_tls_reader r;
    mtci_tls_reader_init(&r);
    memcpy(got, stream, slen);
    size_t in_off = 0, out_off = 0;
    while (in_off < slen) {
      size_t n = 1 + (size_t)(test_rand64(&seed) % (iter < 10 ? 7 : 4000)), o = 0;
      if (n > slen - in_off) n = slen - in_off;
      /* in place: payload lands at out_off <= in_off in the same buffer */
      CHECK_EQ_INT(mtci_tls_reader_feed(&r, got + in_off, n, got + out_off, &o), 0);
      in_off += n;
      out_off += o;
    }
    CHECK_EQ_INT(mtci_tls_reader_eof(&r), 0);
    CHECK_EQ_INT(out_off, mlen);
    CHECK_MEM(got, msg, mlen);
  }
}

static int read_all(const uint8_t *d, size_t n, size_t *out_n) {
  static uint8_t out[20000];
  mtci_tls_reader r;
  mtci_tls_reader_init(&r);
  int rc = mtci_tls_reader_feed(&r, d, n, out, out_n);
  if (rc < 0) {
    size_t dummy;
    if (mtci_tls_reader_feed(&r, d, n, out, &dummy) != rc) return -9999; /* sticky */
    return rc;
  }
  return mtci_tls_reader_eof(&r);
}

TEST(reader_errors) {
  size_t n = 0;
  CHECK_EQ_INT(read_all((const uint8_t *)"\x17\x03\x03\x00\x02hi", 7, &n), 0);
  CHECK_EQ_INT(n, 2);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x16\x03\x03\x00\x02hi", 7, &n), MTC_ERR_TLS_BAD_RECORD);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x15\x03\x03\x00\x02hi", 7, &n), MTC_ERR_TLS_BAD_RECORD);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x17\x03\x01\x00\x02hi", 7, &n), MTC_ERR_TLS_BAD_RECORD);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x17\x02\x03\x00\x02hi", 7, &n), MTC_ERR_TLS_BAD_RECORD);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x14\x03\x03\x00\x02\x01\x01", 7, &n),
               MTC_ERR_TLS_BAD_RECORD);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x14\x03\x03\x00\x01\x00", 6, &n),
               MTC_ERR_TLS_BAD_RECORD);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x17\x03\x03\x41\x01", 5, &n),
               MTC_ERR_TLS_RECORD_TOO_LONG);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x17\x03\x03\x41\x00", 5, &n), MTC_ERR_TLS_TRUNCATED);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x17\x03\x03", 3, &n), MTC_ERR_TLS_TRUNCATED);
  CHECK_EQ_INT(read_all((const uint8_t *)"\x17\x03\x03\x00\x03hi", 7, &n), MTC_ERR_TLS_TRUNCATED);
  CHECK_EQ_INT(n, 2); /* what arrived is still handed over */
  /* good data before a bad record is delivered with the error */
  CHECK_EQ_INT(read_all((const uint8_t *)"\x17\x03\x03\x00\x02hi\x16\x03\x03\x00\x00", 12, &n),
               MTC_ERR_TLS_BAD_RECORD);
  CHECK_EQ_INT(n, 2);
  /* a 16640-byte record is fine */
  static uint8_t big[5 + 16640];
  memcpy(big, "\x17\x03\x03\x41\x00", 5);
  CHECK_EQ_INT(read_all(big, sizeof big, &n), 0);
  CHECK_EQ_INT(n, 16640);
}

/* The whole client path against the server-side pieces: hello, check,
 * response, CCS + records carrying an obfuscated2 header (dd tag, secret,
 * no forbidden-prefix rules) and data. */
TEST(end_to_end_with_obfuscated2) {
  uint8_t secret[16], hello[517];
  test_unhex(KAT_SECRET, secret, 16);
  struct xs_rng crng = {5}, srng = {6};
  CHECK_EQ_INT(mtci_tls_client_hello(secret, (const uint8_t *)KAT_DOMAIN, 11, KAT_TIME, xs_rng_fn,
                                     &crng, NULL, hello),
               0);
  /* server */
  CHECK_EQ_INT(mtci_tls_server_check_hello(hello, 517, secret, (const uint8_t *)KAT_DOMAIN, 11,
                                           KAT_TIME + 3, 0, NULL),
               0);
  static uint8_t resp[5000], wire[8000], rx[8000];
  size_t rlen = 0;
  CHECK_EQ_INT(mtci_tls_server_hello(secret, hello, 517, 2000, xs_rng_fn, &srng, resp, sizeof resp,
                                     &rlen),
               0);
  /* server's first data record glued behind the response */
  mtci_tls_writer sw;
  mtci_tls_writer_init(&sw, 1);
  size_t extra = 0;
  CHECK_EQ_INT(mtci_tls_writer_emit(&sw, (const uint8_t *)"pong", 4, resp + rlen,
                                    sizeof resp - rlen, &extra),
               0);
  /* client reads response + data in two uneven pieces */
  mtci_tls_sh sh;
  mtci_tls_reader cr;
  mtci_tls_sh_init(&sh, secret, hello + 11);
  mtci_tls_reader_init(&cr);
  size_t used = 0, o = 0;
  CHECK_EQ_INT(mtci_tls_sh_feed(&sh, resp, 700, &used), 0);
  CHECK_EQ_INT(mtci_tls_sh_feed(&sh, resp + 700, rlen + extra - 700, &used), 1);
  CHECK_EQ_INT(used, rlen - 700);
  CHECK_EQ_INT(mtci_tls_reader_feed(&cr, resp + 700 + used, extra, rx, &o), 0);
  CHECK_EQ_INT(o, 4);
  CHECK_MEM(rx, "pong", 4);
  mtci_tls_sh_free(&sh);

  /* client: obfuscated2 header + 3000 bytes of payload through records */
  mtci_obfs co, so;
  uint8_t first[64 + 3000];
  CHECK_EQ_INT(mtci_obfs_client_init(&co, MTCI_OBFS_TAG_PADDED, 2, secret, MTCI_OBFS_INSIDE_TLS,
                                     xs_rng_fn, &crng, first),
               0);
  static uint8_t payload[3000];
  for (int i = 0; i < 3000; i++) payload[i] = (uint8_t)(i ^ 0x5a);
  mtci_obfs_encrypt(&co, payload, first + 64, 3000);
  mtci_tls_writer cw;
  mtci_tls_writer_init(&cw, 0);
  size_t wlen = 0;
  CHECK_EQ_INT(mtci_tls_writer_emit(&cw, first, sizeof first, wire, sizeof wire, &wlen), 0);
  CHECK_EQ_INT(wlen, 6 + 5 + 2878 + 5 + (3064 - 2878));
  /* server side */
  mtci_tls_reader sr;
  mtci_tls_reader_init(&sr);
  CHECK_EQ_INT(mtci_tls_reader_feed(&sr, wire, wlen, rx, &o), 0);
  CHECK_EQ_INT(o, 3064);
  uint32_t tag = 0;
  int16_t dc = 0;
  CHECK_EQ_INT(mtci_obfs_server_init(&so, rx, secret, MTCI_OBFS_ALLOW_PADDED, &tag, &dc), 0);
  CHECK_EQ_INT(dc, 2);
  mtci_obfs_decrypt(&so, rx + 64, rx + 64, 3000);
  CHECK_MEM(rx + 64, payload, 3000);
  mtci_obfs_free(&co);
  mtci_obfs_free(&so);
}

TEST(strerror_texts) {
  for (int c = -330; c <= -320; c++) CHECK(strcmp(mtc_strerror(c), "unknown error") != 0);
}

TEST_MAIN("faketls", CASE(client_hello_kat), CASE(client_hello_bad_args), CASE(x25519_rfc7748),
          CASE(grease_derivation), CASE(template_edges), CASE(server_accepts_kat_hello),
          CASE(server_rejects_bad_hellos), CASE(server_boot_time_client), CASE(long_domain_cut),
          CASE(shuffled_hellos), CASE(alexbers_server_hello), CASE(alexbers_negative),
          CASE(extra_handshake_records), CASE(server_hello_round_trip),
          CASE(writer_splits_at_2878), CASE(reader_random_splits), CASE(reader_errors),
          CASE(end_to_end_with_obfuscated2), CASE(strerror_texts))
