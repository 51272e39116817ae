/* The default random source (CTR-DRBG over OS entropy). Randomness cannot be
 * checked against a vector; these checks catch a source that is constant,
 * repeats, leaves bytes unwritten or shares state between instances. */
#include "crypto/crypto.h"
#include "test.h"

TEST(draws_fill_and_differ) {
  mtci_drbg *d = mtci_drbg_new();
  CHECK(d != NULL);
  uint8_t a[64], b[64];
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  CHECK_EQ_INT(mtci_drbg_random(d, a, sizeof a), 0);
  CHECK_EQ_INT(mtci_drbg_random(d, b, sizeof b), 0);
  static const uint8_t zero[64];
  CHECK(memcmp(a, zero, sizeof a) != 0);
  CHECK(memcmp(a, b, sizeof a) != 0);
  mtci_drbg_free(d);
}

TEST(instances_are_independent) {
  mtci_drbg *d1 = mtci_drbg_new(), *d2 = mtci_drbg_new();
  CHECK(d1 && d2);
  uint8_t a[32], b[32];
  CHECK_EQ_INT(mtci_drbg_random(d1, a, sizeof a), 0);
  CHECK_EQ_INT(mtci_drbg_random(d2, b, sizeof b), 0);
  CHECK(memcmp(a, b, sizeof a) != 0);
  mtci_drbg_free(d1);
  mtci_drbg_free(d2);
}

/* Larger than one CTR-DRBG request (1024 bytes): the loop must cover it all.
 * Every byte value should appear in 64 KiB of output (a missed chunk would
 * leave the 0xA5 fill and skew the histogram). */
TEST(large_draw_is_covered) {
  mtci_drbg *d = mtci_drbg_new();
  CHECK(d != NULL);
  static uint8_t buf[65536];
  memset(buf, 0xA5, sizeof buf);
  CHECK_EQ_INT(mtci_drbg_random(d, buf, sizeof buf), 0);
  unsigned hist[256] = {0};
  for (size_t i = 0; i < sizeof buf; i++) hist[buf[i]]++;
  for (int v = 0; v < 256; v++) CHECK(hist[v] > 128 && hist[v] < 400); /* mean 256 */
  /* No 1 KiB block left untouched. */
  for (size_t off = 0; off < sizeof buf; off += 1024) {
    size_t same = 0;
    for (size_t i = 0; i < 1024; i++) same += buf[off + i] == 0xA5;
    CHECK(same < 32);
  }
  mtci_drbg_free(d);
}

TEST(bad_arguments) {
  uint8_t b[4];
  CHECK_EQ_INT(mtci_drbg_random(NULL, b, sizeof b), MTC_ERR_INVALID_ARG);
  mtci_drbg *d = mtci_drbg_new();
  CHECK(d != NULL);
  CHECK_EQ_INT(mtci_drbg_random(d, NULL, 4), MTC_ERR_INVALID_ARG);
  mtci_drbg_free(d);
  mtci_drbg_free(NULL);
}

TEST_MAIN("drbg", CASE(draws_fill_and_differ), CASE(instances_are_independent),
          CASE(large_draw_is_covered), CASE(bad_arguments))
