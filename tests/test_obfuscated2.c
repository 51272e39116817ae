/* obfuscated2: gotd known-answer vector, forbidden-prefix regeneration, server side. */
#include "test.h"
#include "transport/obfuscated2.h"

/* PROTOCOL.md §7.7 (gotd mtproxy/obfuscated2 TestEncrypt) */
static const char *KAT_INIT =
    "f5768f50b731260a46be1027c2eeaa39350624f0b6da59eba56c81fe4510c2e0"
    "b61d3dd323ee02388633e3837a0c1c24fa6f29ccd724be6f416ff7b026f6cce6";
static const char *KAT_SECRET = "8a96ef6e42a18c21837580cd1c91c5a8";

static void gotd_vector_once(int *t_failed_);
/* Same vector with hardware acceleration allowed and with the portable path. */
TEST(gotd_vector) {
  mtci_crypto_set_accel(~0u);
  gotd_vector_once(t_failed_);
  mtci_crypto_set_accel(0);
  if (!*t_failed_) gotd_vector_once(t_failed_);
  mtci_crypto_set_accel(~0u);
}

static void gotd_vector_once(int *t_failed_) {
  uint8_t init[64], secret[16], header[64], want_tail[8], buf[4], want[4];
  CHECK_EQ_INT(test_unhex(KAT_INIT, init, sizeof init), 64);
  CHECK_EQ_INT(test_unhex(KAT_SECRET, secret, sizeof secret), 16);
  struct test_fixed_rng r = {init, sizeof init, 0};
  mtci_obfs o;
  CHECK_EQ_INT(mtci_obfs_client_init(&o, MTCI_OBFS_TAG_PADDED, 2, secret, 0, test_fixed_rng_fn, &r,
                                     header),
               0);
  CHECK_EQ_INT(r.pos, 64); /* the first candidate was fine: one draw */
  CHECK_MEM(header, init, 56);
  test_unhex("bea2dde16dc59dd2", want_tail, 8);
  CHECK_MEM(header + 56, want_tail, 8);

  mtci_obfs_encrypt(&o, (const uint8_t *)"abcd", buf, 4);
  test_unhex("ca7a8226", want, 4);
  CHECK_MEM(buf, want, 4);
  mtci_obfs_decrypt(&o, (const uint8_t *)"abcd", buf, 4);
  test_unhex("8f711982", want, 4);
  CHECK_MEM(buf, want, 4);
  mtci_obfs_free(&o);
  /* free zeroizes: every byte of the context is 0 */
  static const mtci_obfs zero;
  CHECK_MEM(&o, &zero, sizeof o);
  mtci_obfs_free(&o); /* twice is safe */
}

/* The server side recovers tag and dc id from the KAT header, reads the
 * client's first bytes and its reply is what the client decrypts. */
TEST(gotd_vector_server_side) {
  uint8_t init[64], secret[16], header[64], ct[4], pt[4];
  test_unhex(KAT_INIT, init, sizeof init);
  test_unhex(KAT_SECRET, secret, sizeof secret);
  test_unhex(KAT_INIT, header, 56);
  test_unhex("bea2dde16dc59dd2", header + 56, 8);
  mtci_obfs s;
  uint32_t tag = 0;
  int16_t dc = 0;
  CHECK_EQ_INT(mtci_obfs_server_init(&s, header, secret, MTCI_OBFS_ALLOW_PADDED, &tag, &dc), 0);
  CHECK_EQ_INT(tag, MTCI_OBFS_TAG_PADDED);
  CHECK_EQ_INT(dc, 2);
  test_unhex("ca7a8226", ct, 4);
  mtci_obfs_decrypt(&s, ct, pt, 4);
  CHECK_MEM(pt, "abcd", 4);
  /* server -> client stream at offset 0: the client's decrypt of "abcd" was
   * 8f711982, so the server's encrypt of "abcd" is the same keystream. */
  mtci_obfs_encrypt(&s, (const uint8_t *)"abcd", ct, 4);
  test_unhex("8f711982", pt, 4);
  CHECK_MEM(ct, pt, 4);
  mtci_obfs_free(&s);
}

TEST(dc_id_helper) {
  CHECK_EQ_INT(mtci_obfs_dc_id(2, 0, 0), 2);
  CHECK_EQ_INT(mtci_obfs_dc_id(2, 1, 0), 10002);
  CHECK_EQ_INT(mtci_obfs_dc_id(4, 0, 1), -4);
  CHECK_EQ_INT(mtci_obfs_dc_id(2, 1, 1), -10002);
  CHECK_EQ_INT(mtci_obfs_dc_id(0, 0, 0), 0);
  CHECK_EQ_INT(mtci_obfs_dc_id(-1, 0, 0), 0);
  CHECK_EQ_INT(mtci_obfs_dc_id(10000, 0, 0), 0);

  /* media DC 4 is written as fc ff: check through the server side */
  uint8_t init[64], header[64];
  test_unhex(KAT_INIT, init, sizeof init);
  struct test_fixed_rng r = {init, sizeof init, 0};
  mtci_obfs c, s;
  CHECK_EQ_INT(mtci_obfs_client_init(&c, MTCI_OBFS_TAG_ABRIDGED, mtci_obfs_dc_id(4, 0, 1), NULL, 0,
                                     test_fixed_rng_fn, &r, header),
               0);
  int16_t dc = 0;
  CHECK_EQ_INT(mtci_obfs_server_init(&s, header, NULL, MTCI_OBFS_ALLOW_ALL, NULL, &dc), 0);
  CHECK_EQ_INT(dc, -4);
  /* byte level, without a secret the key is init[8:40] and the IV
   * init[40:56] as is: the decrypted header ends ef ef ef ef fc ff cc e6 */
  mtci_aes_ctr raw;
  uint8_t plain[64], want[8];
  CHECK_EQ_INT(mtci_aes_ctr_init(&raw, init + 8, init + 40), 0);
  mtci_aes_ctr_xor(&raw, header, plain, 64);
  mtci_aes_ctr_free(&raw);
  test_unhex("efefefeffcffcce6", want, 8);
  CHECK_MEM(plain + 56, want, 8);
  mtci_obfs_free(&c);
  mtci_obfs_free(&s);
}

/*
 * Each forbidden rule: the RNG stream holds a first candidate that breaks
 * exactly that rule, then a valid one. The header must come from the second
 * (its clear part is bytes 0..56 of it) and exactly 128 bytes were drawn.
 * Inside fake-TLS the first candidate is used as is.
 */
TEST(forbidden_values_regenerate) {
  static const uint8_t bad_prefix[][8] = {
      {0xef, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}, /* byte0 == 0xef */
      {'H', 'E', 'A', 'D', 1, 2, 3, 4},
      {'P', 'O', 'S', 'T', 1, 2, 3, 4},
      {'G', 'E', 'T', ' ', 1, 2, 3, 4},
      {'O', 'P', 'T', 'I', 1, 2, 3, 4},
      {0x16, 0x03, 0x01, 0x02, 1, 2, 3, 4},
      {0xdd, 0xdd, 0xdd, 0xdd, 1, 2, 3, 4},
      {0xee, 0xee, 0xee, 0xee, 1, 2, 3, 4},
      {0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0}, /* second word zero */
  };
  uint8_t stream[128], header[64];
  for (size_t k = 0; k < sizeof bad_prefix / sizeof bad_prefix[0]; k++) {
    for (int i = 0; i < 128; i++) stream[i] = (uint8_t)(0x31 + 7 * i + k);
    memcpy(stream, bad_prefix[k], 8);
    stream[64] = 0x01; /* the second candidate starts with an allowed prefix */
    struct test_fixed_rng r = {stream, sizeof stream, 0};
    mtci_obfs o;
    CHECK_EQ_INT(mtci_obfs_client_init(&o, MTCI_OBFS_TAG_INTERMEDIATE, 1, NULL, 0,
                                       test_fixed_rng_fn, &r, header),
                 0);
    CHECK_EQ_INT(r.pos, 128);
    CHECK_MEM(header, stream + 64, 56);
    mtci_obfs_free(&o);

    struct test_fixed_rng r2 = {stream, sizeof stream, 0};
    CHECK_EQ_INT(mtci_obfs_client_init(&o, MTCI_OBFS_TAG_PADDED, 1, NULL, MTCI_OBFS_INSIDE_TLS,
                                       test_fixed_rng_fn, &r2, header),
                 0);
    CHECK_EQ_INT(r2.pos, 64);
    CHECK_MEM(header, stream, 56);
    mtci_obfs_free(&o);

    /* only one (forbidden) candidate available: the RNG error comes back */
    struct test_fixed_rng r3 = {stream, 64, 0};
    CHECK_EQ_INT(mtci_obfs_client_init(&o, MTCI_OBFS_TAG_INTERMEDIATE, 1, NULL, 0,
                                       test_fixed_rng_fn, &r3, header),
                 MTC_ERR_RANDOM);
  }
  /* "OPTI" is forbidden but "OPTJ" is not: the rule matches whole words */
  for (int i = 0; i < 64; i++) stream[i] = (uint8_t)(i + 1);
  memcpy(stream, "OPTJ", 4);
  struct test_fixed_rng r4 = {stream, 64, 0};
  mtci_obfs o;
  CHECK_EQ_INT(mtci_obfs_client_init(&o, MTCI_OBFS_TAG_INTERMEDIATE, 1, NULL, 0, test_fixed_rng_fn,
                                     &r4, header),
               0);
  mtci_obfs_free(&o);
}

static int zero_rng(void *ud, uint8_t *out, size_t len) {
  (*(int *)ud)++;
  memset(out, 0, len);
  return 0;
}

TEST(broken_rng_gives_up) {
  int calls = 0;
  uint8_t header[64];
  mtci_obfs o;
  CHECK_EQ_INT(mtci_obfs_client_init(&o, MTCI_OBFS_TAG_INTERMEDIATE, 1, NULL, 0, zero_rng, &calls,
                                     header),
               MTC_ERR_RANDOM);
  CHECK_EQ_INT(calls, MTCI_OBFS_MAX_DRAWS);
  static const mtci_obfs zero;
  CHECK_MEM(&o, &zero, sizeof o);
}

TEST(bad_arguments_and_tags) {
  uint8_t init[64], header[64], secret[16], other[16];
  test_unhex(KAT_INIT, init, sizeof init);
  test_unhex(KAT_SECRET, secret, sizeof secret);
  memcpy(other, secret, 16);
  other[15] ^= 1;
  mtci_obfs c, s;
  struct test_fixed_rng r = {init, sizeof init, 0};
  CHECK_EQ_INT(mtci_obfs_client_init(&c, 0x12345678u, 2, secret, 0, test_fixed_rng_fn, &r, header),
               MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(r.pos, 0);
  CHECK_EQ_INT(mtci_obfs_client_init(&c, MTCI_OBFS_TAG_ABRIDGED, 2, secret, 0, test_fixed_rng_fn,
                                     &r, header),
               0);
  mtci_obfs_free(&c);
  /* right secret, tag not in the allowed set */
  CHECK_EQ_INT(mtci_obfs_server_init(&s, header, secret, MTCI_OBFS_ALLOW_PADDED, NULL, NULL),
               MTC_ERR_OBFS_TAG_NOT_ALLOWED);
  CHECK_EQ_INT(mtci_obfs_server_init(&s, header, secret, MTCI_OBFS_ALLOW_ABRIDGED, NULL, NULL), 0);
  mtci_obfs_free(&s);
  /* wrong secret / no secret: the decrypted tag is garbage */
  CHECK_EQ_INT(mtci_obfs_server_init(&s, header, other, MTCI_OBFS_ALLOW_ALL, NULL, NULL),
               MTC_ERR_OBFS_BAD_TAG);
  CHECK_EQ_INT(mtci_obfs_server_init(&s, header, NULL, MTCI_OBFS_ALLOW_ALL, NULL, NULL),
               MTC_ERR_OBFS_BAD_TAG);
  static const mtci_obfs zero;
  CHECK_MEM(&s, &zero, sizeof s);
  /* a header with its tag byte flipped in the encrypted part */
  header[57] ^= 0x01;
  CHECK_EQ_INT(mtci_obfs_server_init(&s, header, secret, MTCI_OBFS_ALLOW_ALL, NULL, NULL),
               MTC_ERR_OBFS_BAD_TAG);
}

struct xs_rng {
  uint64_t s;
};
static int xs_rng_fn(void *ud, uint8_t *out, size_t len) {
  struct xs_rng *r = ud;
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(test_rand64(&r->s) >> 24);
  return 0;
}

/* Client and server talk through random splits in both directions. */
TEST(round_trip_random) {
  static const uint32_t tags[] = {MTCI_OBFS_TAG_ABRIDGED, MTCI_OBFS_TAG_INTERMEDIATE,
                                  MTCI_OBFS_TAG_PADDED};
  uint64_t seed = 0x0b5f0b5fu;
  struct xs_rng rng = {12345};
  static uint8_t msg[3000], ct[3000], back[3000];
  for (int iter = 0; iter < 40; iter++) {
    uint8_t secret[16], header[64];
    int use_secret = (int)(test_rand64(&seed) % 2);
    for (int i = 0; i < 16; i++) secret[i] = (uint8_t)test_rand64(&seed);
    uint32_t tag = tags[test_rand64(&seed) % 3];
    int16_t dc = mtci_obfs_dc_id((int)(test_rand64(&seed) % 5) + 1, (int)(test_rand64(&seed) % 2),
                                 (int)(test_rand64(&seed) % 2));
    unsigned flags = (unsigned)(test_rand64(&seed) % 2);
    mtci_obfs c, s;
    CHECK_EQ_INT(mtci_obfs_client_init(&c, tag, dc, use_secret ? secret : NULL, flags, xs_rng_fn,
                                       &rng, header),
                 0);
    uint32_t got_tag = 0;
    int16_t got_dc = 0;
    CHECK_EQ_INT(mtci_obfs_server_init(&s, header, use_secret ? secret : NULL, MTCI_OBFS_ALLOW_ALL,
                                       &got_tag, &got_dc),
                 0);
    CHECK_EQ_INT(got_tag, tag);
    CHECK_EQ_INT(got_dc, dc);
    for (int dir = 0; dir < 2; dir++) {
      size_t len = (size_t)(test_rand64(&seed) % sizeof msg);
      for (size_t i = 0; i < len; i++) msg[i] = (uint8_t)test_rand64(&seed);
      mtci_obfs *tx = dir ? &s : &c, *rx = dir ? &c : &s;
      /* sender encrypts in random pieces, receiver decrypts in others */
      for (size_t off = 0; off < len;) {
        size_t n = 1 + (size_t)(test_rand64(&seed) % 700);
        if (n > len - off) n = len - off;
        mtci_obfs_encrypt(tx, msg + off, ct + off, n);
        off += n;
      }
      if (len >= 16) CHECK(memcmp(ct, msg, 16) != 0);
      memcpy(back, ct, len);
      for (size_t off = 0; off < len;) {
        size_t n = 1 + (size_t)(test_rand64(&seed) % 900);
        if (n > len - off) n = len - off;
        mtci_obfs_decrypt(rx, back + off, back + off, n); /* in place */
        off += n;
      }
      CHECK_MEM(back, msg, len);
    }
    mtci_obfs_free(&c);
    mtci_obfs_free(&s);
  }
}

TEST(strerror_texts) {
  CHECK(strcmp(mtc_strerror(MTC_ERR_OBFS_BAD_TAG), "unknown error") != 0);
  CHECK(strcmp(mtc_strerror(MTC_ERR_OBFS_TAG_NOT_ALLOWED), "unknown error") != 0);
}

TEST_MAIN("obfuscated2", CASE(gotd_vector), CASE(gotd_vector_server_side), CASE(dc_id_helper),
          CASE(forbidden_values_regenerate), CASE(broken_rng_gives_up),
          CASE(bad_arguments_and_tags), CASE(round_trip_random), CASE(strerror_texts))
