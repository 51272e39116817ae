/*
 * Shared base64 (src/base64.*): RFC 4648 §10 test vectors both ways, the
 * URL alphabet, the padding modes and every rejection.
 */
#include <string.h>

#include "base64.h"
#include "test.h"

static const struct {
  const char *raw, *b64, *b64_nopad;
} k_rfc[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static int dec(const char *s, unsigned flags, uint8_t *out, size_t cap, size_t *n) {
  return mtci_base64_decode(s, strlen(s), flags, out, cap, n);
}

TEST(rfc4648_vectors) {
  for (size_t i = 0; i < sizeof k_rfc / sizeof k_rfc[0]; i++) {
    uint8_t out[16];
    size_t n = 99;
    size_t rl = strlen(k_rfc[i].raw);
    CHECK_EQ_INT(dec(k_rfc[i].b64, MTCI_B64_STD, out, sizeof out, &n), 0);
    CHECK_EQ_INT(n, rl);
    CHECK_MEM(out, k_rfc[i].raw, rl);
    CHECK_EQ_INT(dec(k_rfc[i].b64, MTCI_B64_STD | MTCI_B64_PAD_REQUIRED, out, sizeof out, &n), 0);
    CHECK_EQ_INT(dec(k_rfc[i].b64_nopad, MTCI_B64_STD, out, sizeof out, &n), 0);
    CHECK_EQ_INT(n, rl);
    unsigned url_nopad = MTCI_B64_URL | MTCI_B64_PAD_FORBIDDEN;
    CHECK_EQ_INT(dec(k_rfc[i].b64_nopad, url_nopad, out, sizeof out, &n), 0);
    CHECK_MEM(out, k_rfc[i].raw, rl);
    if (strcmp(k_rfc[i].b64, k_rfc[i].b64_nopad) != 0) {
      CHECK_EQ_INT(dec(k_rfc[i].b64_nopad, MTCI_B64_STD | MTCI_B64_PAD_REQUIRED, out, sizeof out,
                       &n),
                   MTC_ERR_INVALID_ARG);
      CHECK_EQ_INT(dec(k_rfc[i].b64, MTCI_B64_STD | MTCI_B64_PAD_FORBIDDEN, out, sizeof out, &n),
                   MTC_ERR_INVALID_ARG);
    }
    char enc[32];
    CHECK_EQ_INT(mtci_base64_encode((const uint8_t *)k_rfc[i].raw, rl, MTCI_B64_STD, enc,
                                    sizeof enc, &n),
                 0);
    CHECK(strcmp(enc, k_rfc[i].b64) == 0);
    CHECK_EQ_INT(n, MTCI_BASE64_ENCODED_LEN(rl, 1));
    CHECK_EQ_INT(mtci_base64_encode((const uint8_t *)k_rfc[i].raw, rl, MTCI_B64_PAD_FORBIDDEN, enc,
                                    sizeof enc, &n),
                 0);
    CHECK(strcmp(enc, k_rfc[i].b64_nopad) == 0);
    CHECK_EQ_INT(n, MTCI_BASE64_ENCODED_LEN(rl, 0));
  }
}

TEST(alphabets) {
  static const uint8_t raw[] = {0xfb, 0xff, 0xbf, 0x3e};
  uint8_t out[8];
  size_t n;
  char enc[16];
  CHECK_EQ_INT(mtci_base64_encode(raw, 4, MTCI_B64_STD, enc, sizeof enc, &n), 0);
  CHECK(strcmp(enc, "+/+/Pg==") == 0);
  CHECK_EQ_INT(mtci_base64_encode(raw, 4, MTCI_B64_URL, enc, sizeof enc, &n), 0);
  CHECK(strcmp(enc, "-_-_Pg==") == 0);
  CHECK_EQ_INT(dec("+/+/Pg==", MTCI_B64_STD, out, sizeof out, &n), 0);
  CHECK_MEM(out, raw, 4);
  CHECK_EQ_INT(dec("-_-_Pg", MTCI_B64_URL, out, sizeof out, &n), 0);
  CHECK_MEM(out, raw, 4);
  /* Either alphabet when both are allowed, but not mixed. */
  CHECK_EQ_INT(dec("-_-_Pg", MTCI_B64_STD | MTCI_B64_URL, out, sizeof out, &n), 0);
  CHECK_EQ_INT(dec("+/+/Pg", MTCI_B64_STD | MTCI_B64_URL, out, sizeof out, &n), 0);
  CHECK_EQ_INT(dec("+_+/Pg", MTCI_B64_STD | MTCI_B64_URL, out, sizeof out, &n),
               MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(dec("-_-_Pg", MTCI_B64_STD, out, sizeof out, &n), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(dec("+/+/Pg", MTCI_B64_URL, out, sizeof out, &n), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(dec("Zg", 0, out, sizeof out, &n), MTC_ERR_INVALID_ARG); /* no alphabet */
}

TEST(rejections) {
  uint8_t out[8];
  size_t n;
  static const char *const bad[] = {
      "Z",     /* 6 bits cannot end a byte */
      "Zg=",   /* padding without a multiple of 4 */
      "Z===",  /* three '=' */
      "Zh==",  /* unused bits set (canonical form only) */
      "Zm9=",  /* unused bits set */
      "Zm 9v", /* space */
      "Zm9v\n",
      "Zg==Zg==", /* '=' inside */
      "=",
      "Zm*v",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ_INT(dec(bad[i], MTCI_B64_STD, out, sizeof out, &n), MTC_ERR_INVALID_ARG);
  /* Output capacity: exact fits, one less does not. */
  CHECK_EQ_INT(dec("Zm9vYmFy", MTCI_B64_STD, out, 6, &n), 0);
  CHECK_EQ_INT(dec("Zm9vYmFy", MTCI_B64_STD, out, 5, &n), MTC_ERR_BUFFER_TOO_SMALL);
  /* Shape errors are reported before the size check. */
  CHECK_EQ_INT(dec("Zm9vYmFyZ", MTCI_B64_STD, out, 1, &n), MTC_ERR_INVALID_ARG);
  char enc[9];
  CHECK_EQ_INT(mtci_base64_encode((const uint8_t *)"foob", 4, MTCI_B64_STD, enc, 8, &n),
               MTC_ERR_BUFFER_TOO_SMALL); /* 8 chars need 9 with the NUL */
  CHECK_EQ_INT(mtci_base64_encode((const uint8_t *)"foob", 4, MTCI_B64_STD, enc, 9, &n), 0);
  CHECK(strcmp(enc, "Zm9vYg==") == 0);
}

TEST(roundtrip_random) {
  uint64_t seed = 42;
  for (int iter = 0; iter < 200; iter++) {
    uint8_t raw[300], back[300];
    char enc[410];
    size_t len = (size_t)(test_rand64(&seed) % sizeof raw), n = 0, m = 0;
    for (size_t i = 0; i < len; i++) raw[i] = (uint8_t)test_rand64(&seed);
    unsigned flags =
        (iter & 1 ? MTCI_B64_URL : MTCI_B64_STD) | (iter & 2 ? MTCI_B64_PAD_FORBIDDEN : 0);
    CHECK_EQ_INT(mtci_base64_encode(raw, len, flags, enc, sizeof enc, &n), 0);
    CHECK_EQ_INT(n, strlen(enc));
    CHECK_EQ_INT(mtci_base64_decode(enc, n, flags, back, sizeof back, &m), 0);
    CHECK_EQ_INT(m, len);
    CHECK_MEM(back, raw, len);
    CHECK(m <= MTCI_BASE64_DECODED_MAX(n));
  }
}

TEST_MAIN("base64", CASE(rfc4648_vectors), CASE(alphabets), CASE(rejections),
          CASE(roundtrip_random))
