/*
 * Auth key creation (src/auth/handshake.c, rsa_keyset.c):
 *   - PROTOCOL.md §7.4 (grammers test-DC exchange) byte for byte;
 *   - the official samples-auth_key envelope (§6.2, §7.3);
 *   - negative cases on the vector (tampered, truncated, misplaced messages);
 *   - loopback against the mock DC (tests/mockdc/mock_auth.c): perm and temp
 *     keys, both RSA schemes, all four inner-data constructors, and every
 *     server fault the mock can inject.
 */
#include <math.h>
#include <string.h>

#include "auth/handshake.h"
#include "auth/rsa_keyset.h"
#include "crypto/rsa_keys.h"
#include "data/handshake_grammers.h"
#include "mock_auth.h"
#include "test.h"
#include "tl/tl.h"

/* ---- helpers ---------------------------------------------------------------------- */

struct xrng {
  uint64_t s;
  int fail; /* non-zero: every draw fails */
};
static int xrng_fn(void *ud, uint8_t *out, size_t len) {
  struct xrng *r = ud;
  if (r->fail) return MTC_ERR_RANDOM;
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(test_rand64(&r->s) >> 24);
  return 0;
}

static size_t unhex_or_die(const char *hex, uint8_t *out, size_t cap) {
  size_t n = test_unhex(hex, out, cap);
  if (n == (size_t)-1) {
    fprintf(stderr, "bad hex vector\n");
    exit(2);
  }
  return n;
}

/* The grammers vector, decoded once. */
static struct {
  uint8_t rng[16 + 32 + 96 + 32 + 272]; /* what our handshake draws, in order */
  size_t rng_len;
  uint8_t req1[20], resp1[84], req2[320], resp2[632], req3[376], resp3[52], key[256];
  size_t req1_len, resp1_len, req2_len, resp2_len, req3_len, resp3_len;
} G;

static void load_grammers(void) {
  static int done;
  if (done) return;
  done = 1;
  uint8_t s2[256], s3[272];
  size_t n = unhex_or_die(HS_GRAMMERS_STEP1_RANDOM, G.rng, 16);
  unhex_or_die(HS_GRAMMERS_STEP2_RANDOM, s2, sizeof s2);
  unhex_or_die(HS_GRAMMERS_STEP3_RANDOM, s3, sizeof s3);
  /* step 2: new_nonce (32), then RSA_PAD draws (192 - 96) padding bytes and
   * the 32-byte temp_key; grammers' 224-byte block has the padding first and
   * temp_key at [192:224]. */
  memcpy(G.rng + n, s2, 32);
  n += 32;
  memcpy(G.rng + n, s2 + 32, 96);
  n += 96;
  memcpy(G.rng + n, s2 + 32 + 192, 32);
  n += 32;
  /* step 3: b (256), then the IGE padding of client_DH_inner_data. */
  memcpy(G.rng + n, s3, sizeof s3);
  n += sizeof s3;
  G.rng_len = n;
  G.req1_len = unhex_or_die(HS_GRAMMERS_STEP1_REQUEST, G.req1, sizeof G.req1);
  G.resp1_len = unhex_or_die(HS_GRAMMERS_STEP1_RESPONSE, G.resp1, sizeof G.resp1);
  G.req2_len = unhex_or_die(HS_GRAMMERS_STEP2_REQUEST, G.req2, sizeof G.req2);
  G.resp2_len = unhex_or_die(HS_GRAMMERS_STEP2_RESPONSE, G.resp2, sizeof G.resp2);
  G.req3_len = unhex_or_die(HS_GRAMMERS_STEP3_REQUEST, G.req3, sizeof G.req3);
  G.resp3_len = unhex_or_die(HS_GRAMMERS_STEP3_RESPONSE, G.resp3, sizeof G.resp3);
  unhex_or_die(HS_GRAMMERS_AUTH_KEY, G.key, sizeof G.key);
}

/* A handshake set up for the vector: test-DC key built in, legacy inner data. */
static mtci_rsa_keyset g_builtin;
static struct test_fixed_rng g_frng;

static int grammers_init(mtci_handshake *h) {
  load_grammers();
  mtci_rsa_keyset_clear(&g_builtin); /* the previous call's (g_builtin starts zeroed) */
  int rc = mtci_rsa_keyset_add_builtin(&g_builtin, 1);
  if (rc) return rc;
  g_frng.data = G.rng;
  g_frng.len = G.rng_len;
  g_frng.pos = 0;
  mtci_handshake_params p = {0};
  p.dc = 2;
  p.legacy_inner = 1;
  p.keys = &g_builtin;
  p.rnd = test_fixed_rng_fn;
  p.rnd_ud = &g_frng;
  return mtci_handshake_init(h, &p);
}

/* Run the vector up to (not including) step `upto` (1: resPQ pending,
 * 2: server_DH_params pending, 3: dh_gen pending). */
static int grammers_advance(mtci_handshake *h, int upto) {
  int rc = grammers_init(h);
  if (rc) return rc;
  rc = mtci_handshake_start(h);
  if (rc != MTCI_HS_SEND || upto == 1) return rc == MTCI_HS_SEND ? 0 : -1000;
  rc = mtci_handshake_feed(h, G.resp1, G.resp1_len, HS_GRAMMERS_NOW);
  if (rc != MTCI_HS_SEND || upto == 2) return rc == MTCI_HS_SEND ? 0 : -1000;
  rc = mtci_handshake_feed(h, G.resp2, G.resp2_len, HS_GRAMMERS_NOW);
  return rc == MTCI_HS_SEND ? 0 : -1000;
}

static int request_is(const mtci_handshake *h, const uint8_t *want, size_t want_len) {
  size_t len;
  const uint8_t *req = mtci_handshake_request(h, &len);
  if (!req || len != want_len || memcmp(req, want, len) != 0) {
    if (req) {
      fprintf(stderr, "    request (%zu bytes, want %zu):\n", len, want_len);
      test_dump_("got", req, len);
      test_dump_("want", want, want_len);
    }
    return 0;
  }
  return 1;
}

/* ---- §7.4 known-answer test ---------------------------------------------------------- */

TEST(grammers_full_exchange) {
  mtci_handshake h;
  CHECK_EQ_INT(grammers_init(&h), 0);
  CHECK_EQ_INT(mtci_handshake_start(&h), MTCI_HS_SEND);
  CHECK(request_is(&h, G.req1, G.req1_len));
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp1, G.resp1_len, HS_GRAMMERS_NOW), MTCI_HS_SEND);
  CHECK(request_is(&h, G.req2, G.req2_len));
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp2, G.resp2_len, HS_GRAMMERS_NOW), MTCI_HS_SEND);
  CHECK(request_is(&h, G.req3, G.req3_len));
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp3, G.resp3_len, HS_GRAMMERS_NOW), MTCI_HS_FINISHED);
  CHECK_EQ_INT(h.state, MTCI_HS_DONE);
  CHECK(mtci_handshake_request(&h, NULL) == NULL);

  mtci_auth_result res;
  CHECK_EQ_INT(mtci_handshake_result(&h, &res), 0);
  CHECK_MEM(res.auth_key, G.key, 256);
  uint8_t id[8];
  test_unhex(HS_GRAMMERS_AUTH_KEY_ID, id, sizeof id);
  CHECK_MEM(res.auth_key_id, id, 8);
  CHECK(res.server_salt == HS_GRAMMERS_SALT);
  CHECK_EQ_INT(res.time_offset, HS_GRAMMERS_TIME_OFFSET);
  CHECK_EQ_INT(res.server_time, 1693436740);
  CHECK_EQ_INT(res.temp, 0);
  CHECK_EQ_INT(res.expires_at, 0);
  /* step 3 drew b (256) and 12 padding bytes of the 16 provided */
  CHECK_EQ_INT(g_frng.pos, G.rng_len - 4);
  mtci_auth_result_clear(&res);
  mtci_handshake_free(&h);
  uint8_t zero[sizeof h];
  memset(zero, 0, sizeof zero);
  CHECK_MEM(&h, zero, sizeof h);
}

/* time_offset follows server_time - floor(now). */
TEST(grammers_time_offset) {
  mtci_handshake h;
  CHECK_EQ_INT(grammers_advance(&h, 2), 0);
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp2, G.resp2_len, 1693436700.75), MTCI_HS_SEND);
  CHECK(request_is(&h, G.req3, G.req3_len));
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp3, G.resp3_len, 0), MTCI_HS_FINISHED);
  mtci_auth_result res;
  CHECK_EQ_INT(mtci_handshake_result(&h, &res), 0);
  CHECK_EQ_INT(res.time_offset, 40);
  mtci_handshake_free(&h);
}

/* ---- envelope ---------------------------------------------------------------------- */

/* The official samples-auth_key req_pq message (§7.3): msg_id 51e57ac42770964a. */
TEST(envelope_official_sample) {
  uint8_t want[40], body[20], out[64];
  size_t n = test_unhex("0000000000000000 4a967027c47ae551 14000000"
                        "78974660 3e0549828cca27e966b301a48fece2fc",
                        want, sizeof want);
  CHECK_EQ_INT(n, 40);
  test_unhex("78974660 3e0549828cca27e966b301a48fece2fc", body, sizeof body);
  size_t len;
  CHECK_EQ_INT(mtci_unenc_wrap(INT64_C(0x51e57ac42770964a), body, 20, out, sizeof out, &len), 0);
  CHECK_EQ_INT(len, 40);
  CHECK_MEM(out, want, 40);
  const uint8_t *b;
  size_t blen;
  int64_t id;
  CHECK_EQ_INT(mtci_unenc_unwrap(want, 40, &b, &blen, &id), 0);
  CHECK(id == INT64_C(0x51e57ac42770964a));
  CHECK_EQ_INT(blen, 20);
  CHECK(b == want + 20);
  /* msg_id 0x51e57ac4... encodes unixtime 1373993668 (§7.3) */
  CHECK_EQ_INT(id >> 32, 1373993668);
  CHECK_EQ_INT(mtci_unenc_wrap(1, body, 20, out, 39, &len), MTC_ERR_BUFFER_TOO_SMALL);
}

TEST(envelope_checks) {
  uint8_t m[64] = {0};
  const uint8_t *b;
  size_t blen;
  m[16] = 8; /* length 8 */
  CHECK_EQ_INT(mtci_unenc_unwrap(m, 28, &b, &blen, NULL), 0);
  CHECK_EQ_INT(blen, 8);
  CHECK_EQ_INT(mtci_unenc_unwrap(m, 28 + 15, &b, &blen, NULL), 0);  /* transport padding */
  CHECK_EQ_INT(mtci_unenc_unwrap(m, 28 + 16, &b, &blen, NULL), MTC_ERR_AUTH_ENVELOPE);
  CHECK_EQ_INT(mtci_unenc_unwrap(m, 27, &b, &blen, NULL), MTC_ERR_AUTH_ENVELOPE);
  CHECK_EQ_INT(mtci_unenc_unwrap(m, 19, &b, &blen, NULL), MTC_ERR_AUTH_ENVELOPE);
  CHECK_EQ_INT(mtci_unenc_unwrap(m, 0, &b, &blen, NULL), MTC_ERR_AUTH_ENVELOPE);
  m[3] = 1; /* non-zero auth_key_id: an encrypted message */
  CHECK_EQ_INT(mtci_unenc_unwrap(m, 28, &b, &blen, NULL), MTC_ERR_AUTH_ENVELOPE);
  m[3] = 0;
  m[19] = 0x80; /* huge length */
  CHECK_EQ_INT(mtci_unenc_unwrap(m, 28, &b, &blen, NULL), MTC_ERR_AUTH_ENVELOPE);
}

TEST(msg_id_generation) {
  int64_t last = 0;
  int64_t a = mtci_unenc_next_msg_id(&last, 1693436740.5);
  CHECK(a == (INT64_C(1693436740) << 32 | INT64_C(0x80000000)));
  int64_t b = mtci_unenc_next_msg_id(&last, 1693436740.5); /* same time: +4 */
  CHECK(b == a + 4);
  int64_t c = mtci_unenc_next_msg_id(&last, 1693436000.0); /* clock went back */
  CHECK(c == b + 4);
  int64_t last2 = 0;
  int64_t d = mtci_unenc_next_msg_id(&last2, 1693436740.0); /* whole second */
  CHECK((d & 3) == 0 && (d & 0xffffffff) != 0 && (d >> 32) == 1693436740);
  int64_t last3 = 0;
  int64_t e = mtci_unenc_next_msg_id(&last3, -5.0);
  CHECK(e == 4);
  CHECK(mtci_unenc_next_msg_id(&last3, NAN) == 8);
}

/* ---- negative cases on the vector ---------------------------------------------------- */

TEST(respq_wrong_nonce) {
  mtci_handshake h;
  CHECK_EQ_INT(grammers_advance(&h, 1), 0);
  uint8_t m[84];
  memcpy(m, G.resp1, G.resp1_len);
  m[4] ^= 1;
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp1_len, HS_GRAMMERS_NOW), MTC_ERR_AUTH_NONCE);
  CHECK_EQ_INT(h.state, MTCI_HS_FAILED);
  CHECK_EQ_INT(h.err, MTC_ERR_AUTH_NONCE);
  /* once failed, every further input is refused without effect */
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp1, G.resp1_len, 0), MTC_ERR_AUTH_STATE);
  CHECK_EQ_INT(h.err, MTC_ERR_AUTH_NONCE);
  CHECK(mtci_handshake_request(&h, NULL) == NULL);
  mtci_handshake_free(&h);
}

TEST(respq_no_known_key) {
  mtci_handshake h;
  CHECK_EQ_INT(grammers_init(&h), 0);
  mtci_rsa_keyset prod_only;
  mtci_rsa_keyset_init(&prod_only);
  CHECK_EQ_INT(mtci_rsa_keyset_add_builtin(&prod_only, 0), 0);
  CHECK_EQ_INT(prod_only.count, 1);
  h.keys = &prod_only;
  CHECK_EQ_INT(mtci_handshake_start(&h), MTCI_HS_SEND);
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp1, G.resp1_len, 0), MTC_ERR_AUTH_NO_RSA_KEY);
  mtci_handshake_free(&h);
  mtci_rsa_keyset_clear(&prod_only);
}

TEST(respq_bad_pq) {
  /* pq = 0x19546f942a11278d + 2 is not a product of two 32-bit primes */
  mtci_handshake h;
  CHECK_EQ_INT(grammers_advance(&h, 1), 0);
  uint8_t m[84];
  memcpy(m, G.resp1, G.resp1_len);
  CHECK_EQ_INT(m[36], 8); /* pq string header */
  m[44] += 2;
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp1_len, 0), MTC_ERR_PQ_FACTOR);
  /* pq of length 0 */
  CHECK_EQ_INT(grammers_advance(&h, 1), 0);
  uint8_t e[84];
  size_t n = 0;
  memcpy(e, G.resp1, 36);
  n = 36;
  e[n++] = 0, e[n++] = 0, e[n++] = 0, e[n++] = 0; /* empty string, padded */
  memcpy(e + n, G.resp1 + 48, G.resp1_len - 48);
  n += G.resp1_len - 48;
  CHECK_EQ_INT(mtci_handshake_feed(&h, e, n, 0), MTC_ERR_AUTH_BAD_PQ);
  mtci_handshake_free(&h);
}

TEST(dh_answer_tampered) {
  mtci_handshake h;
  uint8_t m[632];
  /* A flipped byte in the last IGE block garbles only the tail (g_a's last
   * bytes, server_time, padding): the answer still parses, its SHA1 fails. */
  CHECK_EQ_INT(grammers_advance(&h, 2), 0);
  memcpy(m, G.resp2, G.resp2_len);
  m[G.resp2_len - 5] ^= 0x40;
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp2_len, 0), MTC_ERR_AUTH_ANSWER_HASH);
  /* A flip in the first block garbles everything: no parse, same error. */
  CHECK_EQ_INT(grammers_advance(&h, 2), 0);
  memcpy(m, G.resp2, G.resp2_len);
  m[40] ^= 0x01;
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp2_len, 0), MTC_ERR_AUTH_ANSWER_HASH);
  /* Outer nonces are checked before decryption. */
  CHECK_EQ_INT(grammers_advance(&h, 2), 0);
  memcpy(m, G.resp2, G.resp2_len);
  m[20] ^= 0x01;
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp2_len, 0), MTC_ERR_AUTH_SERVER_NONCE);
  CHECK_EQ_INT(grammers_advance(&h, 2), 0);
  memcpy(m, G.resp2, G.resp2_len);
  m[4] ^= 0x01;
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp2_len, 0), MTC_ERR_AUTH_NONCE);
  mtci_handshake_free(&h);
}

TEST(dh_answer_not_aligned) {
  /* encrypted_answer of 591 bytes (one byte shorter, TL length patched) */
  mtci_handshake h;
  CHECK_EQ_INT(grammers_advance(&h, 2), 0);
  uint8_t m[632];
  memcpy(m, G.resp2, G.resp2_len);
  CHECK_EQ_INT(m[36], 0xfe);
  CHECK_EQ_INT(m[37] | m[38] << 8, 592);
  m[37] = (uint8_t)(591 & 0xff);
  m[38] = (uint8_t)(591 >> 8);
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp2_len, 0), MTC_ERR_AUTH_BAD_PADDING);
  mtci_handshake_free(&h);
}

TEST(dh_gen_tampered) {
  mtci_handshake h;
  uint8_t m[52];
  CHECK_EQ_INT(grammers_advance(&h, 3), 0);
  memcpy(m, G.resp3, G.resp3_len);
  m[51] ^= 0x01;
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp3_len, 0), MTC_ERR_AUTH_NEW_NONCE_HASH);
  CHECK_EQ_INT(grammers_advance(&h, 3), 0);
  memcpy(m, G.resp3, G.resp3_len);
  m[30] ^= 0x01;
  CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp3_len, 0), MTC_ERR_AUTH_SERVER_NONCE);
  /* the same hash under dh_gen_retry / dh_gen_fail ids: N differs, so the
   * hash check fails */
  static const uint32_t ids[] = {MTCI_ID_DH_GEN_RETRY, MTCI_ID_DH_GEN_FAIL};
  for (int i = 0; i < 2; i++) {
    CHECK_EQ_INT(grammers_advance(&h, 3), 0);
    memcpy(m, G.resp3, G.resp3_len);
    for (int k = 0; k < 4; k++) m[k] = (uint8_t)(ids[i] >> (8 * k));
    CHECK_EQ_INT(mtci_handshake_feed(&h, m, G.resp3_len, 0), MTC_ERR_AUTH_NEW_NONCE_HASH);
  }
  mtci_handshake_free(&h);
}

TEST(unexpected_messages) {
  mtci_handshake h;
  CHECK_EQ_INT(grammers_advance(&h, 1), 0);
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp3, G.resp3_len, 0), MTC_ERR_AUTH_UNEXPECTED);
  CHECK_EQ_INT(grammers_advance(&h, 2), 0);
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp1, G.resp1_len, 0), MTC_ERR_AUTH_UNEXPECTED);
  CHECK_EQ_INT(grammers_advance(&h, 3), 0);
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp2, G.resp2_len, 0), MTC_ERR_AUTH_UNEXPECTED);
  /* feed before start, start twice */
  CHECK_EQ_INT(grammers_init(&h), 0);
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp1, G.resp1_len, 0), MTC_ERR_AUTH_STATE);
  CHECK_EQ_INT(mtci_handshake_start(&h), MTCI_HS_SEND);
  CHECK_EQ_INT(mtci_handshake_start(&h), MTC_ERR_AUTH_STATE);
  mtci_auth_result res;
  CHECK_EQ_INT(mtci_handshake_result(&h, &res), MTC_ERR_AUTH_STATE);
  mtci_handshake_free(&h);
}

/* Every truncation of every answer fails with a TL error; one extra word
 * is trailing data. */
TEST(truncated_and_trailing) {
  const uint8_t *msgs[3] = {G.resp1, G.resp2, G.resp3};
  const size_t *lens[3] = {&G.resp1_len, &G.resp2_len, &G.resp3_len};
  mtci_handshake h, snap;
  load_grammers();
  for (int step = 0; step < 3; step++) {
    /* the struct is plain data: advance once, copy per case */
    CHECK_EQ_INT(grammers_advance(&snap, step + 1), 0);
    for (size_t cut = 0; cut < *lens[step]; cut++) {
      h = snap;
      int rc = mtci_handshake_feed(&h, msgs[step], cut, 0);
      if (rc != MTC_ERR_TL_TRUNCATED && rc != MTC_ERR_TL_TOO_LONG) {
        fprintf(stderr, "  step %d cut %zu: rc %d\n", step + 1, cut, rc);
        CHECK(0);
      }
      CHECK_EQ_INT(h.state, MTCI_HS_FAILED);
    }
    uint8_t m[640];
    memcpy(m, msgs[step], *lens[step]);
    memset(m + *lens[step], 0, 4);
    h = snap;
    CHECK_EQ_INT(mtci_handshake_feed(&h, m, *lens[step] + 4, 0), MTC_ERR_TL_TRAILING);
  }
  mtci_handshake_free(&h);
  mtci_handshake_free(&snap);
}

/* Arbitrary bytes at each step: a negative code, never a crash. */
TEST(garbage_never_crashes) {
  uint64_t seed = 12345;
  uint8_t m[700];
  mtci_handshake snap[3], h;
  for (int step = 0; step < 3; step++) CHECK_EQ_INT(grammers_advance(&snap[step], step + 1), 0);
  for (int i = 0; i < 600; i++) {
    int step = i % 3;
    size_t len = (size_t)(test_rand64(&seed) % sizeof m);
    for (size_t k = 0; k < len; k++) m[k] = (uint8_t)test_rand64(&seed);
    if (len >= 4 && (i & 4)) { /* right constructor, random rest */
      static const uint32_t ids[3] = {MTCI_ID_RES_PQ, MTCI_ID_SERVER_DH_PARAMS_OK,
                                      MTCI_ID_DH_GEN_OK};
      for (int k = 0; k < 4; k++) m[k] = (uint8_t)(ids[step] >> (8 * k));
    }
    h = snap[step];
    g_frng.pos = 16 + (step >= 1 ? 160 : 0) + (step >= 2 ? 268 : 0);
    int rc = mtci_handshake_feed(&h, m, len, 0);
    CHECK(rc < 0);
    CHECK_EQ_INT(h.state, MTCI_HS_FAILED);
  }
}

TEST(random_source_failure) {
  struct xrng bad = {1, 1};
  mtci_rsa_keyset ks;
  mtci_rsa_keyset_init(&ks);
  mtci_handshake_params p = {0};
  p.keys = &ks;
  p.rnd = xrng_fn;
  p.rnd_ud = &bad;
  mtci_handshake h;
  CHECK_EQ_INT(mtci_handshake_init(&h, &p), 0);
  CHECK_EQ_INT(mtci_handshake_start(&h), MTC_ERR_RANDOM);
  CHECK_EQ_INT(h.state, MTCI_HS_FAILED);
  /* the fixed stream runs out inside RSA_PAD */
  CHECK_EQ_INT(grammers_advance(&h, 1), 0);
  g_frng.len = 16 + 32 + 50;
  CHECK_EQ_INT(mtci_handshake_feed(&h, G.resp1, G.resp1_len, 0), MTC_ERR_RANDOM);
}

TEST(init_arguments) {
  struct xrng r = {1, 0};
  mtci_rsa_keyset ks;
  mtci_rsa_keyset_init(&ks);
  mtci_handshake h;
  mtci_handshake_params p = {0};
  p.keys = &ks;
  CHECK_EQ_INT(mtci_handshake_init(&h, &p), MTC_ERR_INVALID_ARG); /* no rnd */
  p.rnd = xrng_fn;
  p.rnd_ud = &r;
  p.expires_in = -1;
  CHECK_EQ_INT(mtci_handshake_init(&h, &p), MTC_ERR_INVALID_ARG);
  p.expires_in = 3600;
  p.legacy_inner = 1; /* the legacy constructor has no expires_in */
  CHECK_EQ_INT(mtci_handshake_init(&h, &p), MTC_ERR_INVALID_ARG);
  p.legacy_inner = 0;
  p.keys = NULL;
  CHECK_EQ_INT(mtci_handshake_init(&h, &p), MTC_ERR_INVALID_ARG);
  p.keys = &ks;
  CHECK_EQ_INT(mtci_handshake_init(&h, &p), 0);
  CHECK_EQ_INT(h.max_retries, MTCI_HS_DEFAULT_MAX_RETRIES);
}

/* ---- RSA key set ----------------------------------------------------------------------- */

TEST(keyset_builtin_and_choose) {
  mtci_rsa_keyset ks;
  mtci_rsa_keyset_init(&ks);
  CHECK_EQ_INT(mtci_rsa_keyset_add_builtin(&ks, 1), 0);
  CHECK_EQ_INT(ks.count, 2);
  const uint64_t prod = UINT64_C(0xd09d1d85de64fd85), test = UINT64_C(0xb25898df208d2603);
  CHECK(mtci_rsa_keyset_find(&ks, prod) != NULL);
  CHECK(mtci_rsa_keyset_find(&ks, test) != NULL);
  CHECK(mtci_rsa_keyset_find(&ks, UINT64_C(0xc3b42b026ce86b21)) == NULL);
  /* first in SERVER order wins, whatever the set's order */
  uint64_t fps[] = {UINT64_C(0x9692106da14b9f02), test, prod};
  size_t idx = 99;
  const mtci_rsa_key *k = mtci_rsa_keyset_choose(&ks, fps, 3, &idx);
  CHECK(k && k->fingerprint == test && idx == 1);
  uint64_t fps2[] = {prod, test};
  k = mtci_rsa_keyset_choose(&ks, fps2, 2, &idx);
  CHECK(k && k->fingerprint == prod && idx == 0);
  uint64_t none[] = {UINT64_C(0x9692106da14b9f02), UINT64_C(0xc3b42b026ce86b21)};
  CHECK(mtci_rsa_keyset_choose(&ks, none, 2, &idx) == NULL);
  CHECK(mtci_rsa_keyset_choose(&ks, NULL, 0, &idx) == NULL);
  /* re-adding replaces in place; remove keeps the rest */
  CHECK_EQ_INT(mtci_rsa_keyset_add_builtin(&ks, 1), 0);
  CHECK_EQ_INT(ks.count, 2);
  CHECK_EQ_INT(mtci_rsa_keyset_remove(&ks, prod), 1);
  CHECK_EQ_INT(mtci_rsa_keyset_remove(&ks, prod), 0);
  CHECK_EQ_INT(ks.count, 1);
  CHECK(ks.keys[0].fingerprint == test);
  /* a key whose stored fingerprint is wrong is refused */
  mtci_rsa_key bad = ks.keys[0];
  bad.fingerprint ^= 1;
  CHECK_EQ_INT(mtci_rsa_keyset_add(&ks, &bad), MTC_ERR_RSA_KEY);
  CHECK_EQ_INT(mtci_rsa_keyset_add_pem(&ks, "nonsense", 8), MTC_ERR_RSA_KEY);
  mtci_rsa_keyset_clear(&ks);
  CHECK_EQ_INT(ks.count, 0);
}

TEST(keyset_full) {
  /* distinct keys from one modulus with different odd exponents */
  const mtci_rsa_key *base;
  mtci_rsa_keyset ks, src;
  mtci_rsa_keyset_init(&src);
  CHECK_EQ_INT(mtci_rsa_keyset_add_builtin(&src, 0), 0);
  base = &src.keys[0];
  mtci_rsa_keyset_init(&ks);
  for (int i = 0; i < MTCI_RSA_KEYSET_MAX + 1; i++) {
    uint8_t e[3] = {0x01, 0x00, (uint8_t)(2 * i + 3)};
    mtci_rsa_key k;
    CHECK_EQ_INT(mtci_rsa_key_from_ne(&k, base->n, base->n_len, e, 3), 0);
    int rc = mtci_rsa_keyset_add(&ks, &k);
    CHECK_EQ_INT(rc, i < MTCI_RSA_KEYSET_MAX ? 0 : MTC_ERR_AUTH_KEYSET_FULL);
  }
  CHECK_EQ_INT(ks.count, MTCI_RSA_KEYSET_MAX);
  mtci_rsa_keyset_clear(&ks);
  mtci_rsa_keyset_clear(&src);
}

/* ---- loopback against the mock DC ------------------------------------------------------- */

struct loop {
  struct xrng crng, srng;
  mtci_rsa_keyset keys;
  mock_auth_server *srv;
  mtci_handshake h;
  int client_rc, server_rc;
};

static int loop_setup(struct loop *L, uint64_t seed, int key_index, unsigned faults,
                      const mtci_handshake_params *pp, int32_t clock_offset) {
  memset(L, 0, sizeof *L);
  L->crng.s = seed * 2 + 1;
  L->srng.s = seed * 2 + 2;
  mock_auth_config cfg = {0};
  cfg.rsa_pem = mock_test_key_pem(key_index);
  if (!cfg.rsa_pem) return MTC_ERR_INTERNAL;
  cfg.rsa_pem_len = strlen(cfg.rsa_pem);
  cfg.faults = faults;
  cfg.server_clock_offset = clock_offset;
  cfg.rnd = xrng_fn;
  cfg.rnd_ud = &L->srng;
  int rc = mock_auth_new(&L->srv, &cfg);
  if (rc) return rc;
  mtci_rsa_key pub;
  mock_auth_public_key(L->srv, &pub);
  mtci_rsa_keyset_init(&L->keys);
  rc = mtci_rsa_keyset_add_builtin(&L->keys, 0);
  if (!rc) rc = mtci_rsa_keyset_add(&L->keys, &pub);
  if (rc) return rc;
  mtci_handshake_params p = *pp;
  p.keys = &L->keys;
  p.rnd = xrng_fn;
  p.rnd_ud = &L->crng;
  return mtci_handshake_init(&L->h, &p);
}

/* Pass messages through envelopes until one side stops. Returns the
 * client's last result code; the server's in L->server_rc. */
static int loop_run(struct loop *L, double now) {
  uint8_t a[1200], b[1200];
  size_t alen, blen;
  int rc = mtci_handshake_start(&L->h);
  for (int round = 0; round < 20 && rc == MTCI_HS_SEND; round++) {
    int e = mtci_handshake_emit_envelope(&L->h, now, a, sizeof a, &alen);
    if (e) return e;
    L->server_rc = mock_auth_feed_envelope(L->srv, a, alen, now, b, sizeof b, &blen);
    if (L->server_rc) return rc;
    rc = mtci_handshake_feed_envelope(&L->h, b, blen, now);
  }
  return rc;
}

static void loop_free(struct loop *L) {
  mock_auth_free(L->srv);
  mtci_handshake_free(&L->h);
  mtci_rsa_keyset_clear(&L->keys);
}

TEST(loopback_perm_and_temp_keys) {
  uint64_t seed = 777;
  for (int run = 0; run < 40; run++) {
    struct loop L;
    mtci_handshake_params p = {0};
    int temp = run >= 20;
    p.dc = (int32_t)(test_rand64(&seed) % 5) + 1;
    if (run % 3 == 1) p.dc += 10000;
    if (run % 4 == 2) p.dc = -p.dc;
    p.expires_in = temp ? (int32_t)(60 + test_rand64(&seed) % 86400) : 0;
    int32_t offset = (int32_t)(test_rand64(&seed) % 200) - 100;
    double now = 1700000000.0 + (double)(test_rand64(&seed) % 100000000) + 0.25;
    CHECK_EQ_INT(loop_setup(&L, test_rand64(&seed), run % mock_test_key_count(), 0, &p, offset),
                 0);
    CHECK_EQ_INT(loop_run(&L, now), MTCI_HS_FINISHED);
    CHECK_EQ_INT(L.server_rc, 0);
    mtci_auth_result c;
    mock_auth_result s;
    CHECK_EQ_INT(mtci_handshake_result(&L.h, &c), 0);
    CHECK(mock_auth_done(L.srv, &s));
    CHECK_MEM(c.auth_key, s.auth_key, 256);
    CHECK_MEM(c.auth_key_id, s.auth_key_id, 8);
    uint8_t d[20];
    mtci_sha1(c.auth_key, 256, d);
    CHECK_MEM(c.auth_key_id, d + 12, 8);
    CHECK(c.server_salt == s.server_salt);
    CHECK_EQ_INT(c.time_offset, offset);
    CHECK_EQ_INT(c.temp, temp);
    CHECK_EQ_INT(s.temp, temp);
    CHECK_EQ_INT(s.has_dc, 1);
    CHECK_EQ_INT(s.dc, p.dc);
    CHECK_EQ_INT(s.inner_id, temp ? MTCI_ID_P_Q_INNER_DATA_TEMP_DC : MTCI_ID_P_Q_INNER_DATA_DC);
    CHECK_EQ_INT(s.legacy_rsa, 0);
    CHECK_EQ_INT(s.expires_in, p.expires_in);
    CHECK_EQ_INT(c.expires_at, s.expires_at);
    if (temp) CHECK_EQ_INT(c.expires_at, (int64_t)now + offset + p.expires_in);
    else CHECK_EQ_INT(c.expires_at, 0);
    CHECK(L.h.last_msg_id > 0 && (L.h.last_msg_id & 3) == 0);
    mtci_auth_result_clear(&c);
    loop_free(&L);
  }
}

TEST(loopback_legacy_inner) {
  struct loop L;
  mtci_handshake_params p = {0};
  p.legacy_inner = 1;
  CHECK_EQ_INT(loop_setup(&L, 5, 0, 0, &p, 0), 0);
  CHECK_EQ_INT(loop_run(&L, 1700000000.0), MTCI_HS_FINISHED);
  mock_auth_result s;
  CHECK(mock_auth_done(L.srv, &s));
  CHECK_EQ_INT(s.inner_id, MTCI_ID_P_Q_INNER_DATA);
  CHECK_EQ_INT(s.has_dc, 0);
  loop_free(&L);
}

/*
 * The mock also takes the pre-2.0 RSA scheme (Telethon 1.25):
 * RSA(0 || SHA1(data) || data || random) over p_q_inner_data_temp (no dc).
 * The client's req_DH_params is swapped for one built that way; the rest of
 * the exchange continues with the client's state.
 */
TEST(mock_accepts_legacy_rsa) {
  struct loop L;
  mtci_handshake_params p = {0};
  CHECK_EQ_INT(loop_setup(&L, 9, 1, 0, &p, 0), 0);
  uint8_t a[1200], b[1200];
  size_t alen, blen;
  CHECK_EQ_INT(mtci_handshake_start(&L.h), MTCI_HS_SEND);
  const uint8_t *req = mtci_handshake_request(&L.h, &alen);
  CHECK_EQ_INT(mock_auth_feed(L.srv, req, alen, 1e9, b, sizeof b, &blen), 0);
  CHECK_EQ_INT(mtci_handshake_feed(&L.h, b, blen, 1e9), MTCI_HS_SEND);
  /* take p, q, fingerprint from the client's request: 4+16+16 | p | q | fp */
  req = mtci_handshake_request(&L.h, &alen);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, req, alen);
  uint8_t skip[36];
  mtci_tl_read_raw(&r, skip, 36);
  size_t p_len, q_len;
  const uint8_t *pp = mtci_tl_read_bytes(&r, &p_len);
  const uint8_t *qq = mtci_tl_read_bytes(&r, &q_len);
  int64_t fp = mtci_tl_read_long(&r);
  CHECK_EQ_INT(r.err, 0);
  uint8_t pq[8];
  uint64_t pv = 0, qv = 0;
  for (size_t i = 0; i < p_len; i++) pv = pv << 8 | pp[i];
  for (size_t i = 0; i < q_len; i++) qv = qv << 8 | qq[i];
  for (int i = 0; i < 8; i++) pq[i] = (uint8_t)((pv * qv) >> (56 - 8 * i));

  mtci_tl_writer inner;
  mtci_tl_writer_init(&inner, 0);
  mtci_tl_write_u32(&inner, MTCI_ID_P_Q_INNER_DATA_TEMP);
  mtci_tl_write_bytes(&inner, pq, 8);
  mtci_tl_write_bytes(&inner, pp, p_len);
  mtci_tl_write_bytes(&inner, qq, q_len);
  mtci_tl_write_int128(&inner, L.h.nonce);
  mtci_tl_write_int128(&inner, L.h.server_nonce);
  mtci_tl_write_int256(&inner, L.h.new_nonce);
  mtci_tl_write_int(&inner, 3600);
  CHECK_EQ_INT(inner.err, 0);
  uint8_t m[256] = {0}, enc[256];
  mtci_sha1(mtci_tl_writer_data(&inner), inner.len, m + 1);
  memcpy(m + 21, mtci_tl_writer_data(&inner), inner.len);
  for (size_t i = 21 + inner.len; i < 256; i++) m[i] = (uint8_t)(i * 7);
  const mtci_rsa_key *key = mtci_rsa_keyset_find(&L.keys, (uint64_t)fp);
  CHECK(key != NULL);
  CHECK_EQ_INT(mtci_rsa_public_raw(key, m, 256, enc, 256), 0);
  mtci_tl_writer_free(&inner);

  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, MTCI_ID_REQ_DH_PARAMS);
  mtci_tl_write_int128(&w, L.h.nonce);
  mtci_tl_write_int128(&w, L.h.server_nonce);
  mtci_tl_write_bytes(&w, pp, p_len);
  mtci_tl_write_bytes(&w, qq, q_len);
  mtci_tl_write_long(&w, fp);
  mtci_tl_write_bytes(&w, enc, 256);
  CHECK_EQ_INT(w.err, 0);
  CHECK_EQ_INT(mock_auth_feed(L.srv, mtci_tl_writer_data(&w), w.len, 1e9, b, sizeof b, &blen), 0);
  mtci_tl_writer_free(&w);
  CHECK_EQ_INT(mtci_handshake_feed(&L.h, b, blen, 1e9), MTCI_HS_SEND);
  req = mtci_handshake_request(&L.h, &alen);
  memcpy(a, req, alen);
  CHECK_EQ_INT(mock_auth_feed(L.srv, a, alen, 1e9, b, sizeof b, &blen), 0);
  CHECK_EQ_INT(mtci_handshake_feed(&L.h, b, blen, 1e9), MTCI_HS_FINISHED);
  mock_auth_result s;
  mtci_auth_result c;
  CHECK(mock_auth_done(L.srv, &s));
  CHECK_EQ_INT(mtci_handshake_result(&L.h, &c), 0);
  CHECK_EQ_INT(s.legacy_rsa, 1);
  CHECK_EQ_INT(s.inner_id, MTCI_ID_P_Q_INNER_DATA_TEMP);
  CHECK_EQ_INT(s.temp, 1);
  CHECK_EQ_INT(s.expires_in, 3600);
  CHECK_MEM(c.auth_key, s.auth_key, 256);
  loop_free(&L);
}

TEST(loopback_retry_once) {
  struct loop L;
  mtci_handshake_params p = {0};
  p.expires_in = 86400;
  CHECK_EQ_INT(loop_setup(&L, 21, 2, MOCK_AUTH_FAULT_RETRY_ONCE, &p, 0), 0);
  CHECK_EQ_INT(loop_run(&L, 1700000000.0), MTCI_HS_FINISHED);
  mock_auth_result s;
  mtci_auth_result c;
  CHECK(mock_auth_done(L.srv, &s));
  CHECK_EQ_INT(s.retries, 1);
  CHECK_EQ_INT(L.h.retries, 1);
  CHECK(L.h.retry_id != 0); /* the mock checked it equals the first aux hash */
  CHECK_EQ_INT(mtci_handshake_result(&L.h, &c), 0);
  CHECK_MEM(c.auth_key, s.auth_key, 256);
  loop_free(&L);
}

TEST(loopback_server_faults) {
  static const struct {
    unsigned fault;
    int want;
  } cases[] = {
      {MOCK_AUTH_FAULT_GEN_FAIL, MTC_ERR_AUTH_DH_GEN_FAIL},
      {MOCK_AUTH_FAULT_DH_PARAMS_FAIL, MTC_ERR_AUTH_DH_PARAMS_FAIL},
      {MOCK_AUTH_FAULT_BAD_PRIME, MTC_ERR_DH_PRIME},
      {MOCK_AUTH_FAULT_GA_RANGE, MTC_ERR_DH_VALUE},
      {MOCK_AUTH_FAULT_BAD_G, MTC_ERR_DH_GENERATOR},
      {MOCK_AUTH_FAULT_ANSWER_HASH, MTC_ERR_AUTH_ANSWER_HASH},
      {MOCK_AUTH_FAULT_NEW_NONCE_HASH, MTC_ERR_AUTH_NEW_NONCE_HASH},
      {MOCK_AUTH_FAULT_RETRY_ALWAYS, MTC_ERR_AUTH_TOO_MANY_RETRIES},
      {MOCK_AUTH_FAULT_BIG_PADDING, MTC_ERR_AUTH_BAD_PADDING},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct loop L;
    mtci_handshake_params p = {0};
    p.dc = 2;
    p.max_retries = 2;
    CHECK_EQ_INT(loop_setup(&L, 100 + i, 0, cases[i].fault, &p, 0), 0);
    int rc = loop_run(&L, 1700000000.0);
    if (rc != cases[i].want) fprintf(stderr, "  fault %#x: rc %d\n", cases[i].fault, rc);
    CHECK_EQ_INT(rc, cases[i].want);
    CHECK_EQ_INT(L.h.state, MTCI_HS_FAILED);
    CHECK_EQ_INT(L.server_rc, 0);
    if (cases[i].fault == MOCK_AUTH_FAULT_RETRY_ALWAYS) CHECK_EQ_INT(L.h.retries, 2);
    loop_free(&L);
  }
}

TEST(loopback_fingerprint_choice) {
  /* The mock lists an unknown fingerprint first: the client skips it. */
  struct loop L;
  mtci_handshake_params p = {0};
  CHECK_EQ_INT(loop_setup(&L, 31, 0, 0, &p, 0), 0);
  mock_auth_free(L.srv);
  uint64_t unknown[] = {UINT64_C(0x1122334455667788)};
  uint64_t prod[] = {UINT64_C(0xd09d1d85de64fd85)};
  mock_auth_config cfg = {0};
  cfg.rsa_pem = mock_test_key_pem(0);
  cfg.rsa_pem_len = strlen(cfg.rsa_pem);
  cfg.fps_before = unknown;
  cfg.n_fps_before = 1;
  cfg.fps_after = prod;
  cfg.n_fps_after = 1;
  cfg.rnd = xrng_fn;
  cfg.rnd_ud = &L.srng;
  CHECK_EQ_INT(mock_auth_new(&L.srv, &cfg), 0);
  CHECK_EQ_INT(loop_run(&L, 1700000000.0), MTCI_HS_FINISHED);
  loop_free(&L);

  /* Production key listed first and held: the client picks it, so the mock
   * (which has only its own private key) refuses the request. */
  CHECK_EQ_INT(loop_setup(&L, 32, 0, 0, &p, 0), 0);
  mock_auth_free(L.srv);
  cfg.fps_before = prod;
  cfg.fps_after = NULL;
  cfg.n_fps_after = 0;
  cfg.rnd_ud = &L.srng;
  CHECK_EQ_INT(mock_auth_new(&L.srv, &cfg), 0);
  CHECK_EQ_INT(loop_run(&L, 1700000000.0), MTCI_HS_SEND);
  CHECK_EQ_INT(L.server_rc, MTC_ERR_AUTH_NO_RSA_KEY);
  size_t len;
  const uint8_t *req = mtci_handshake_request(&L.h, &len);
  CHECK(req && len == 320);
  /* fingerprint at 4+16+16+8+8 */
  uint64_t fp = 0;
  for (int i = 7; i >= 0; i--) fp = fp << 8 | req[52 + i];
  CHECK(fp == prod[0]);
  loop_free(&L);

  /* Client without the mock's key: no known RSA key. */
  CHECK_EQ_INT(loop_setup(&L, 33, 0, 0, &p, 0), 0);
  mtci_rsa_key pub;
  mock_auth_public_key(L.srv, &pub);
  CHECK_EQ_INT(mtci_rsa_keyset_remove(&L.keys, pub.fingerprint), 1);
  CHECK_EQ_INT(loop_run(&L, 1700000000.0), MTC_ERR_AUTH_NO_RSA_KEY);
  loop_free(&L);
}

TEST(mock_rejects_bad_requests) {
  struct loop L;
  mtci_handshake_params p = {0};
  CHECK_EQ_INT(loop_setup(&L, 41, 0, 0, &p, 0), 0);
  uint8_t b[1200], req[600];
  size_t blen, len;
  CHECK_EQ_INT(mtci_handshake_start(&L.h), MTCI_HS_SEND);
  const uint8_t *q = mtci_handshake_request(&L.h, &len);
  CHECK_EQ_INT(mock_auth_feed(L.srv, q, len, 1e9, b, sizeof b, &blen), 0);
  CHECK_EQ_INT(mtci_handshake_feed(&L.h, b, blen, 1e9), MTCI_HS_SEND);
  q = mtci_handshake_request(&L.h, &len);
  memcpy(req, q, len);
  /* out of order */
  uint8_t scd[4] = {0x1f, 0x5f, 0x04, 0xf5};
  CHECK_EQ_INT(mock_auth_feed(L.srv, scd, 4, 1e9, b, sizeof b, &blen), MTC_ERR_AUTH_UNEXPECTED);
  /* corrupted RSA block: neither scheme verifies */
  req[len - 1] ^= 1;
  CHECK_EQ_INT(mock_auth_feed(L.srv, req, len, 1e9, b, sizeof b, &blen),
               MTC_ERR_AUTH_RSA_DECRYPT);
  req[len - 1] ^= 1;
  req[10] ^= 1; /* nonce */
  CHECK_EQ_INT(mock_auth_feed(L.srv, req, len, 1e9, b, sizeof b, &blen), MTC_ERR_AUTH_NONCE);
  req[10] ^= 1;
  CHECK_EQ_INT(mock_auth_feed(L.srv, req, len, 1e9, b, sizeof b, &blen), 0);
  loop_free(&L);
}

/* The old req_pq#60469778 gets the same resPQ treatment as req_pq_multi. */
TEST(mock_answers_req_pq) {
  struct loop L;
  mtci_handshake_params p = {0};
  CHECK_EQ_INT(loop_setup(&L, 51, 0, 0, &p, 0), 0);
  uint8_t req[20] = {0x78, 0x97, 0x46, 0x60}, b[200];
  for (int i = 0; i < 16; i++) req[4 + i] = (uint8_t)(0x30 + i);
  size_t blen;
  CHECK_EQ_INT(mock_auth_feed(L.srv, req, sizeof req, 1e9, b, sizeof b, &blen), 0);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, b, blen);
  mtci_tl_expect(&r, MTCI_ID_RES_PQ);
  uint8_t nonce[16], server_nonce[16];
  mtci_tl_read_int128(&r, nonce);
  mtci_tl_read_int128(&r, server_nonce);
  size_t pq_len;
  const uint8_t *pq = mtci_tl_read_bytes(&r, &pq_len);
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 8), 1);
  uint64_t fp = (uint64_t)mtci_tl_read_long(&r);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
  CHECK_MEM(nonce, req + 4, 16);
  CHECK_EQ_INT(pq_len, 8);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | pq[i];
  uint32_t pp, qq;
  CHECK_EQ_INT(mtci_pq_factor(v, &pp, &qq), 0);
  CHECK(pp < qq && pp >= (1u << 30) && qq < (1u << 31));
  mtci_rsa_key pub;
  mock_auth_public_key(L.srv, &pub);
  CHECK(fp == pub.fingerprint);
  /* the keys are the committed TEST-ONLY ones, and distinct */
  CHECK(mock_test_key_count() >= 3);
  CHECK(mock_test_key_pem(mock_test_key_count()) == NULL);
  CHECK(strstr(mock_test_key_pem(0), "PRIVATE KEY") != NULL);
  loop_free(&L);
}

TEST_MAIN("handshake", CASE(grammers_full_exchange), CASE(grammers_time_offset),
          CASE(envelope_official_sample), CASE(envelope_checks), CASE(msg_id_generation),
          CASE(respq_wrong_nonce), CASE(respq_no_known_key), CASE(respq_bad_pq),
          CASE(dh_answer_tampered), CASE(dh_answer_not_aligned), CASE(dh_gen_tampered),
          CASE(unexpected_messages), CASE(truncated_and_trailing), CASE(garbage_never_crashes),
          CASE(random_source_failure), CASE(init_arguments), CASE(keyset_builtin_and_choose),
          CASE(keyset_full), CASE(loopback_perm_and_temp_keys), CASE(loopback_legacy_inner),
          CASE(mock_accepts_legacy_rsa), CASE(loopback_retry_once), CASE(loopback_server_faults),
          CASE(loopback_fingerprint_choice), CASE(mock_rejects_bad_requests),
          CASE(mock_answers_req_pq))
