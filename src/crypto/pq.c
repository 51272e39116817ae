/*
 * Factoring the handshake's pq (PROTOCOL.md §6.3.3): a 64-bit product of two
 * primes below 2^32. Pollard-Brent rho with Montgomery arithmetic, fully
 * deterministic (fixed start value and polynomial constants) and bounded:
 * an input that is not such a product fails with MTC_ERR_PQ_FACTOR.
 */
#include "crypto/crypto.h"

__extension__ typedef unsigned __int128 u128;

/* ---- Montgomery arithmetic modulo an odd n < 2^64 (R = 2^64) ------------ */

typedef struct mont {
  uint64_t n;
  uint64_t ninv; /* n^-1 mod 2^64 */
  uint64_t r2;   /* R^2 mod n */
  uint64_t one;  /* R mod n, i.e. 1 in Montgomery form */
} mont;

static void mont_init(mont *m, uint64_t n) {
  m->n = n;
  uint64_t x = n; /* n*n == 1 mod 8: correct to 3 bits; each step doubles */
  for (int i = 0; i < 5; i++) x *= 2 - n * x;
  m->ninv = x;
  m->one = (0 - n) % n; /* 2^64 mod n */
  m->r2 = (uint64_t)((u128)m->one * m->one % n);
}

/* t * R^-1 mod n for t < n * 2^64. With k = lo(t) * n^-1, k*n agrees with t
 * in the low word, so t - k*n = (hi(t) - hi(k*n)) * 2^64 and the difference
 * lies in (-n, n): no 128-bit overflow for any odd n. */
static uint64_t redc(const mont *m, u128 t) {
  uint64_t k = (uint64_t)t * m->ninv;
  uint64_t kn_hi = (uint64_t)(((u128)k * m->n) >> 64);
  uint64_t t_hi = (uint64_t)(t >> 64);
  uint64_t r = t_hi - kn_hi;
  return t_hi < kn_hi ? r + m->n : r;
}

static uint64_t mont_mul(const mont *m, uint64_t a, uint64_t b) { return redc(m, (u128)a * b); }
static uint64_t to_mont(const mont *m, uint64_t a) { return mont_mul(m, a % m->n, m->r2); }

static uint64_t mont_pow(const mont *m, uint64_t a_mont, uint64_t e) {
  uint64_t r = m->one;
  while (e) {
    if (e & 1) r = mont_mul(m, r, a_mont);
    a_mont = mont_mul(m, a_mont, a_mont);
    e >>= 1;
  }
  return r;
}

/* ---- deterministic primality for 64-bit numbers ----------------------- */

/* Miller-Rabin with the first 12 primes as bases is exact below 3.3e24
 * (Sorenson & Webster), so for every uint64_t. */
static int is_prime_u64(uint64_t n) {
  static const uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  if (n < 2) return 0;
  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
    if (n == bases[i]) return 1;
    if (n % bases[i] == 0) return 0;
  }
  mont m;
  mont_init(&m, n); /* n is odd here */
  uint64_t d = n - 1;
  int s = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    s++;
  }
  uint64_t minus_one = to_mont(&m, n - 1);
  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
    uint64_t x = mont_pow(&m, to_mont(&m, bases[i]), d);
    if (x == m.one || x == minus_one) continue;
    int witness = 1;
    for (int r = 1; r < s; r++) {
      x = mont_mul(&m, x, x);
      if (x == minus_one) {
        witness = 0;
        break;
      }
    }
    if (witness) return 0;
  }
  return 1;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* ---- Pollard-Brent ---------------------------------------------------- */

/* Limits. A prime factor below 2^32 shows up after about sqrt(pi*p/2) < 2^17
 * steps; the cycle-length cap of 2^22 leaves a wide margin, and a failed
 * constant (gcd == n) moves on to the next of PQ_MAX_TRIES polynomials. */
#define PQ_BATCH 128
#define PQ_MAX_CYCLE (1u << 22)
#define PQ_MAX_TRIES 16

static uint64_t absdiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

/* One rho step y -> y^2 + c mod n (y, c < n; written to avoid overflow for
 * n near 2^64). */
static uint64_t step(const mont *m, uint64_t y, uint64_t c) {
  y = mont_mul(m, y, y);
  return y >= m->n - c ? y - (m->n - c) : y + c;
}

/* A nontrivial factor of the odd composite n, or 0 if none was found within
 * the limits. Iterates y -> y^2 + c in Montgomery form (still a polynomial
 * map mod n, which is all rho needs). */
static uint64_t brent(uint64_t n) {
  mont m;
  mont_init(&m, n);
  for (uint64_t c = 1; c <= PQ_MAX_TRIES; c++) {
    uint64_t cm = to_mont(&m, c);
    uint64_t y = to_mont(&m, 2), x = y, ys = y, q = m.one, g = 1;
    for (uint32_t r = 1; g == 1 && r <= PQ_MAX_CYCLE; r *= 2) {
      x = y;
      for (uint32_t i = 0; i < r; i++) {
        y = step(&m, y, cm);
      }
      for (uint32_t k = 0; k < r && g == 1; k += PQ_BATCH) {
        ys = y;
        uint32_t lim = r - k < PQ_BATCH ? r - k : PQ_BATCH;
        for (uint32_t i = 0; i < lim; i++) {
          y = step(&m, y, cm);
          q = mont_mul(&m, q, absdiff(x, y));
        }
        g = gcd_u64(q, n);
      }
    }
    if (g == n) {
      /* The batch overshot (or q hit 0): replay it one step at a time. */
      g = 1;
      for (uint32_t i = 0; g == 1 && i < PQ_BATCH; i++) {
        ys = step(&m, ys, cm);
        g = gcd_u64(absdiff(x, ys), n);
      }
    }
    if (g != 1 && g != n) return g;
  }
  return 0;
}

int mtci_pq_factor(uint64_t pq, uint32_t *p, uint32_t *q) {
  if (!p || !q) return MTC_ERR_INVALID_ARG;
  if (pq < 4 || is_prime_u64(pq)) return MTC_ERR_PQ_FACTOR;
  uint64_t d = 0;
  /* Small factors directly; rho is for the large ones (and can miss tiny
   * ones because the sequence cycles mod n too soon). */
  for (uint64_t t = 2; t < 64 && !d; t++)
    if (pq % t == 0) d = t;
  if (!d) d = brent(pq);
  if (!d) return MTC_ERR_PQ_FACTOR;
  uint64_t a = d, b = pq / d;
  if (a > b) {
    uint64_t t = a;
    a = b;
    b = t;
  }
  if (a == b || b > UINT32_MAX || !is_prime_u64(a) || !is_prime_u64(b)) return MTC_ERR_PQ_FACTOR;
  *p = (uint32_t)a;
  *q = (uint32_t)b;
  return 0;
}
