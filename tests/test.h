/*
 * A tiny test harness. Each test program registers cases with TEST(), runs
 * them all from main via TEST_MAIN(), and ends with the line
 *   "<module>: N passed, N failed"
 * exiting non-zero on any failure. A case fails on its first failed CHECK.
 */
#ifndef MTC_TEST_H
#define MTC_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(int *failed);
struct test_case {
  const char *name;
  test_fn fn;
};

#define TEST(name)                                                                                 \
  static void test_##name(int *t_failed_)

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                   \
      *t_failed_ = 1;                                                                              \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
  do {                                                                                             \
    long long a_ = (long long)(a), b_ = (long long)(b);                                            \
    if (a_ != b_) {                                                                                \
      fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, a_,  \
              b_);                                                                                 \
      *t_failed_ = 1;                                                                              \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

#define CHECK_MEM(a, b, n)                                                                         \
  do {                                                                                             \
    if (memcmp((a), (b), (n)) != 0) {                                                              \
      fprintf(stderr, "  %s:%d: memory %s != %s (%zu bytes)\n", __FILE__, __LINE__, #a, #b,        \
              (size_t)(n));                                                                        \
      test_dump_("got", (const uint8_t *)(a), (n));                                                \
      test_dump_("want", (const uint8_t *)(b), (n));                                               \
      *t_failed_ = 1;                                                                              \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

static inline void test_dump_(const char *label, const uint8_t *p, size_t n) {
  fprintf(stderr, "    %-4s ", label);
  for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, "%02x", p[i]);
  fprintf(stderr, n > 64 ? "...\n" : "\n");
}

/* Decode a hex string (whitespace ignored) into out; returns bytes written or
 * (size_t)-1 on a bad digit or overflow. */
static inline size_t test_unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  int hi = -1;
  for (const char *s = hex; *s; s++) {
    int v;
    if (*s >= '0' && *s <= '9') v = *s - '0';
    else if (*s >= 'a' && *s <= 'f') v = *s - 'a' + 10;
    else if (*s >= 'A' && *s <= 'F') v = *s - 'A' + 10;
    else if (*s == ' ' || *s == '\n' || *s == '\t') continue;
    else return (size_t)-1;
    if (hi < 0) hi = v;
    else {
      if (n >= cap) return (size_t)-1;
      out[n++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  return hi < 0 ? n : (size_t)-1;
}

/* A random source that replays fixed bytes, then fails (MTC_ERR_RANDOM). */
struct test_fixed_rng {
  const uint8_t *data;
  size_t len, pos;
};
static inline int test_fixed_rng_fn(void *ud, uint8_t *out, size_t len) {
  struct test_fixed_rng *r = (struct test_fixed_rng *)ud;
  if (r->len - r->pos < len) return -5; /* MTC_ERR_RANDOM */
  memcpy(out, r->data + r->pos, len);
  r->pos += len;
  return 0;
}

/* Deterministic xorshift generator for property tests. */
static inline uint64_t test_rand64(uint64_t *s) {
  uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

#define TEST_MAIN(module, ...)                                                                     \
  int main(int argc, char **argv) {                                                                \
    static const struct test_case cases_[] = {__VA_ARGS__};                                        \
    int passed = 0, failed = 0;                                                                    \
    for (size_t i = 0; i < sizeof(cases_) / sizeof(cases_[0]); i++) {                              \
      if (argc > 1 && !strstr(cases_[i].name, argv[1])) continue;                                  \
      int f = 0;                                                                                   \
      cases_[i].fn(&f);                                                                            \
      fprintf(stderr, "%s %s\n", f ? "FAIL" : "ok  ", cases_[i].name);                             \
      if (f) failed++;                                                                             \
      else passed++;                                                                               \
    }                                                                                              \
    printf("%s: %d passed, %d failed\n", module, passed, failed);                                  \
    return failed ? 1 : (passed ? 0 : 1);                                                          \
  }

#define CASE(name) {#name, test_##name}

#endif /* MTC_TEST_H */
