/*
 * Modular exponentiation for odd moduli of 1024..4096 bits: Montgomery
 * arithmetic on 64-bit limbs and a fixed-window ladder that is constant-time
 * in the exponent (a DH secret) and the base.
 *
 * Numbers are arrays of n = ceil(bits / 64) limbs (rounded up to a multiple
 * of 8 for the mulx kernels: a larger R works the same), least significant
 * first; R = 2^(64n). The Montgomery form of v is v*R mod m, and
 *   mul(a, b) = a*b/R mod m   (fully reduced: the result is always < m)
 * which holds for any n-limb a when b < m (or the other way round), since
 * then a*b + q*m < 2*m*R and one conditional subtraction finishes the job.
 *
 * Two kernel sets with one contract, both operand scanning: the product
 * (or square) row by row into 2n limbs, then n reduction rows (REDC):
 *  - portable C with unsigned __int128. Squaring forms each cross product
 *    a[i]*a[j] once, doubles the sum and adds the squares: about 1.5 n^2
 *    word products instead of 2 n^2;
 *  - x86-64 with BMI2+ADX (run-time choice, MTCI_ACCEL_MULX): the same
 *    algorithms, each row in 8-limb inline-asm blocks of mulx with two
 *    carry chains (adcx for the low halves, adox for the high halves).
 * 2048 bits, this machine (Xeon, gcc 12 -O2): mulx kernels ~1.1 us per
 * multiplication, ~0.9 us per squaring, ~2.5-2.8 ms per modexp with a
 * 2048-bit exponent; portable C ~1.8 / 1.55 us, ~4 ms; mbedTLS 2.28 ~6 ms.
 *
 * Constant-time argument. For a given modulus, base buffer length and
 * exponent buffer length (all public), every call runs the same sequence of
 * operations on the same addresses:
 *  - every loop bound and branch depends only on n, on the window size w
 *    (a function of the exponent's buffer length) or on bit positions;
 *  - limb arithmetic is multiply, add-with-carry and shifts by constants;
 *    carries and borrows are computed arithmetically, never branched on;
 *  - the final subtraction of each multiplication (and of each modular
 *    addition) is always computed, and the result picked by an all-ones or
 *    all-zero mask built from the borrow and carry bits (select_if);
 *  - the exponent is read as exactly 8 * exp_len bits, leading zeros
 *    included, in windows of w bits from the top: each window costs w
 *    squarings and one multiplication, also when the window is zero (then
 *    by table[0], the Montgomery form of 1);
 *  - table entries are picked by table_select, which reads all 2^w entries
 *    and keeps one with a mask from ct_eq_mask: no secret-dependent index
 *    or branch, so the memory access pattern is the same for every window;
 *  - masks pass through value_barrier (an empty asm) so the compiler cannot
 *    turn them back into branches.
 * The base is reduced by Horner steps over n-limb chunks (mul by R^2 mod m
 * and a masked modular addition), so a base >= m costs the same whatever
 * its value. mul compiles to the x86 MUL/MULX instructions, whose timing
 * does not depend on operands. The modulus is public and may branch
 * (strip of leading zeros, R^2 mod m setup).
 *
 * Stack: about 22 KB (the 32-entry table and the kernels' scratch, sized
 * for 4096 bits); every buffer that held exponent- or base-dependent data is
 * zeroized before return.
 */
#include <string.h>

#include "crypto/accel.h"
#include "crypto/crypto.h"
#include "crypto/montgomery.h"

__extension__ typedef unsigned __int128 u128;

#define MAXN (MTCI_MONT_MAX_BITS / 64) /* limbs */
#define MAX_BYTES 1024                   /* mtci_modexp's input limit */
#define MAXW 5                           /* window bits */

typedef struct mont mont;
/* r = a*b/R mod m and r = a*a/R mod m; r may alias a or b. */
typedef void (*mul_fn)(uint64_t *r, const uint64_t *a, const uint64_t *b, mont *M);
typedef void (*sqr_fn)(uint64_t *r, const uint64_t *a, mont *M);

struct mont {
  size_t n;          /* limbs (a multiple of 8 for the mulx/adx kernels) */
  uint64_t m0inv;    /* -m^-1 mod 2^64 */
  uint64_t m[MAXN];  /* zero limbs above the modulus when n is rounded up */
  uint64_t rr[MAXN]; /* R^2 mod m: the Montgomery form of R */
  mul_fn mul;
  sqr_fn sqr;
  /* Scratch for the kernels, in one place so one zeroize clears it:
   * T the 2n-limb product (+8 limbs of overhang for 8-limb rows), pad a
   * zero-padded operand copy, d and s the subtraction and addition. */
  uint64_t T[2 * MAXN + 8];
  uint64_t pad[MAXN + 8];
  uint64_t d[MAXN];
  uint64_t s[MAXN];
};

/* ---- constant-time helpers -------------------------------------------------------- */

/* Hides x's value from the optimizer, so masks stay masks. */
static inline uint64_t value_barrier(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+r"(x));
#endif
  return x;
}

/* All ones if x == y, else 0. */
static inline uint64_t ct_eq_mask(uint64_t x, uint64_t y) {
  const uint64_t d = x ^ y;
  return value_barrier(((d | (0 - d)) >> 63) - 1);
}

/*
 * t (n limbs) plus top * R is below 2m; r = that value mod m: t - m when
 * top is set or t >= m, else t. Both are computed; a mask picks one.
 * r may alias t.
 */
static void select_if(uint64_t *r, const uint64_t *t, uint64_t top, mont *M) {
  const size_t n = M->n;
  uint64_t *d = M->d, br = 0;
  for (size_t i = 0; i < n; i++) {
    const u128 z = (u128)t[i] - M->m[i] - br;
    d[i] = (uint64_t)z;
    br = (uint64_t)(z >> 64) & 1;
  }
  const uint64_t use_d = value_barrier(0 - (top | (br ^ 1)));
  for (size_t i = 0; i < n; i++) r[i] = (d[i] & use_d) | (t[i] & ~use_d);
}

/* r = a + b mod m for a, b < m. */
static void mod_add(uint64_t *r, const uint64_t *a, const uint64_t *b, mont *M) {
  uint64_t c = 0;
  for (size_t i = 0; i < M->n; i++) {
    const u128 z = (u128)a[i] + b[i] + c;
    M->s[i] = (uint64_t)z;
    c = (uint64_t)(z >> 64);
  }
  select_if(r, M->s, c, M);
}

/* r = table[idx] out of `count` entries of n limbs, reading every entry. */
static void table_select(uint64_t *r, const uint64_t *table, size_t count, size_t n,
                         uint64_t idx) {
  for (size_t k = 0; k < n; k++) r[k] = 0;
  for (size_t j = 0; j < count; j++) {
    const uint64_t mask = ct_eq_mask(j, idx);
    const uint64_t *e = table + j * n;
    for (size_t k = 0; k < n; k++) r[k] |= e[k] & mask;
  }
}

/* T[0..2n) = 2T + the squares a[i]^2 (at limbs 2i, 2i+1): turns the sum of
 * cross products a[i]*a[j], i < j, which is below R^2 / 2, into a^2. */
static void double_add_squares(uint64_t *T, const uint64_t *a, size_t n) {
  uint64_t hi = 0;
  for (size_t k = 0; k < 2 * n; k++) {
    const uint64_t v = T[k];
    T[k] = v << 1 | hi;
    hi = v >> 63;
  }
  uint64_t c = 0;
  for (size_t i = 0; i < n; i++) {
    const u128 sq = (u128)a[i] * a[i];
    u128 z = (u128)T[2 * i] + (uint64_t)sq + c;
    T[2 * i] = (uint64_t)z;
    z = (u128)T[2 * i + 1] + (uint64_t)(sq >> 64) + (uint64_t)(z >> 64);
    T[2 * i + 1] = (uint64_t)z;
    c = (uint64_t)(z >> 64);
  }
}

/* ---- portable kernels ------------------------------------------------------------- */

/*
 * Row by row: one multiply-accumulate chain per loop is what gcc compiles
 * well from unsigned __int128 (mul, add, adc). Merged CIOS (two live
 * carries) and product scanning (a three-word accumulator) ran about 1.5x
 * and 2x slower than these rows with gcc 12 -O2 on 2048-bit operands: gcc
 * spills the 128-bit temporaries to the stack.
 */

/* t[0..n) += a[0..n) * b; returns the carry word (t's limb n). */
static inline uint64_t row_port(uint64_t *t, const uint64_t *a, uint64_t b, size_t n) {
  uint64_t c = 0;
  _Pragma("GCC unroll 8") for (size_t j = 0; j < n; j++) {
    const u128 z = (u128)a[j] * b + t[j] + c;
    t[j] = (uint64_t)z;
    c = (uint64_t)(z >> 64);
  }
  return c;
}

/* r = T/R mod m for the 2n-limb T < m*R in M->T (clobbered). */
static void redc_port(uint64_t *r, mont *M) {
  const size_t n = M->n;
  uint64_t *T = M->T, top = 0;
  for (size_t i = 0; i < n; i++) {
    const uint64_t q = T[i] * M->m0inv; /* makes T[i] zero */
    const u128 z = (u128)T[i + n] + row_port(T + i, M->m, q, n) + top;
    T[i + n] = (uint64_t)z;
    top = (uint64_t)(z >> 64);
  }
  select_if(r, T + n, top, M);
}

static void mul_port(uint64_t *r, const uint64_t *a, const uint64_t *b, mont *M) {
  const size_t n = M->n;
  uint64_t *T = M->T;
  memset(T, 0, 2 * n * sizeof T[0]);
  for (size_t i = 0; i < n; i++) T[i + n] = row_port(T + i, a, b[i], n);
  redc_port(r, M);
}

/* Cross products once (row i: a[i] * a[i+1..n) at T[2i+1]), doubled, plus
 * the squares: about n^2/2 word products where mul_port needs n^2. */
static void sqr_port(uint64_t *r, const uint64_t *a, mont *M) {
  const size_t n = M->n;
  uint64_t *T = M->T;
  memset(T, 0, 2 * n * sizeof T[0]);
  for (size_t i = 0; i + 1 < n; i++) T[i + n] = row_port(T + 2 * i + 1, a + i + 1, a[i], n - 1 - i);
  double_add_squares(T, a, n);
  redc_port(r, M);
}

/* ---- mulx/adx kernels (x86-64) ---------------------------------------------------- */

#if MTCI_X86_KERNELS

/*
 * The row t += a*b, 8 limbs per asm block: mulx leaves the flags alone,
 * adcx adds the low halves on the carry flag, adox the high halves (one
 * limb up) on the overflow flag, so the two chains run side by side. This
 * is inline asm rather than _mulx_u64/_addcarryx_u64: gcc 12 turns those
 * intrinsics into one adc chain that saves and restores each carry with
 * setc through memory, and a 2048-bit modexp took 10.2 ms that way (slower
 * than mbedTLS) against ~2.6 ms with these blocks.
 * Operands: rdx = b; c = carry word in, then the spare high-half register,
 * then carry word out (the last high half plus both pending flags; it cannot
 * overflow, as t + a*b < 2^64 * 2^512).
 */
#define ADX_LIMB(j, P, H)                                                                          \
  "mulx " #j "*8(%[a]), %[lo], %[" #H "]\n\t"                                                      \
  "movq " #j "*8(%[t]), %[x]\n\t"                                                                  \
  "adcx %[lo], %[x]\n\t"                                                                           \
  "adox %[" #P "], %[x]\n\t"                                                                       \
  "movq %[x], " #j "*8(%[t])\n\t"

/* t[0..8) += a[0..8) * b + c; returns the carry word. */
static inline uint64_t row8_adx(uint64_t *t, const uint64_t *a, uint64_t b, uint64_t c) {
  uint64_t lo, hi, x;
  __asm__("xorl %k[lo], %k[lo]\n\t" /* clears CF and OF */
          ADX_LIMB(0, c, hi) ADX_LIMB(1, hi, c) ADX_LIMB(2, c, hi) ADX_LIMB(3, hi, c)
          ADX_LIMB(4, c, hi) ADX_LIMB(5, hi, c) ADX_LIMB(6, c, hi) ADX_LIMB(7, hi, c)
          "movl $0, %k[lo]\n\t" /* mov keeps the flags */
          "adcx %[lo], %[c]\n\t"
          "adox %[lo], %[c]\n\t"
          : [c] "+r"(c), [lo] "=&r"(lo), [hi] "=&r"(hi), [x] "=&r"(x),
            "+m"(*(uint64_t(*)[8])t)
          : [t] "r"(t), [a] "r"(a), "d"(b), "m"(*(const uint64_t(*)[8])a)
          : "cc");
  return c;
}

/* t[0..len) += a[0..len) * b for len a multiple of 8; returns the carry word. */
static inline uint64_t row_adx(uint64_t *t, const uint64_t *a, uint64_t b, size_t len) {
  uint64_t c = 0;
  for (size_t j = 0; j < len; j += 8) c = row8_adx(t + j, a + j, b, c);
  return c;
}

static void redc_adx(uint64_t *r, mont *M) {
  const size_t n = M->n;
  uint64_t *T = M->T, top = 0;
  for (size_t i = 0; i < n; i++) {
    const uint64_t q = T[i] * M->m0inv;
    const u128 z = (u128)T[i + n] + row_adx(T + i, M->m, q, n) + top;
    T[i + n] = (uint64_t)z;
    top = (uint64_t)(z >> 64);
  }
  select_if(r, T + n, top, M);
}

static void mul_adx(uint64_t *r, const uint64_t *a, const uint64_t *b, mont *M) {
  const size_t n = M->n;
  uint64_t *T = M->T;
  memset(T, 0, 2 * n * sizeof T[0]);
  for (size_t i = 0; i < n; i++) T[i + n] = row_adx(T + i, a, b[i], n);
  redc_adx(r, M);
}

/*
 * double_add_squares for n a multiple of 4, one pass: per limb of T, adox
 * doubles it (x + x + OF: the overflow flag carries each limb's top bit into
 * the next) and adcx adds its half of a square (on the carry flag). Both
 * flags end clear, as the result a^2 fits 2n limbs. The loop steps with lea
 * and jrcxz, which leave the flags alone.
 */
#define ADX_SQ(j)                                                                                  \
  "movq " #j "*8(%[a]), %%rdx\n\t"                                                                 \
  "mulx %%rdx, %[lo], %[hi]\n\t"                                                                  \
  "movq " #j "*16(%[t]), %[x]\n\t"                                                                \
  "adox %[x], %[x]\n\t"                                                                           \
  "adcx %[lo], %[x]\n\t"                                                                          \
  "movq %[x], " #j "*16(%[t])\n\t"                                                                \
  "movq " #j "*16+8(%[t]), %[x]\n\t"                                                              \
  "adox %[x], %[x]\n\t"                                                                           \
  "adcx %[hi], %[x]\n\t"                                                                          \
  "movq %[x], " #j "*16+8(%[t])\n\t"

static void double_add_squares_adx(uint64_t *T, const uint64_t *a, size_t n) {
  uint64_t lo, hi, x, groups = n / 4;
  /* volatile: the results go to memory only ("memory" clobber) */
  __asm__ volatile("xorl %k[x], %k[x]\n\t" /* clears CF and OF */
                   "1:\n\t" ADX_SQ(0) ADX_SQ(1) ADX_SQ(2) ADX_SQ(3)
                   "leaq 32(%[a]), %[a]\n\t"
                   "leaq 64(%[t]), %[t]\n\t"
                   "leaq -1(%%rcx), %%rcx\n\t"
                   "jrcxz 2f\n\t" /* rel8 only: too far to jump back to 1 */
                   "jmp 1b\n\t"
                   "2:\n\t"
                   : [t] "+r"(T), [a] "+r"(a), "+c"(groups), [lo] "=&r"(lo), [hi] "=&r"(hi),
                     [x] "=&r"(x)
                   :
                   : "rdx", "cc", "memory");
}

/*
 * As sqr_port, with each cross-product row rounded up to whole 8-limb
 * blocks: the operand is copied into M->pad with zero limbs after it, so
 * the extra products are zero. Row i's true top limb is T[i+n], zero
 * before the row (the rows so far sum to less than a[0..i) * a, below
 * R^(i+n)); a rounded-up row ends at or past it, and its carry word is
 * the row's top limb when it ends there, else 0: either way it belongs at
 * T[2i+1+len]. T has 8 spare limbs for the overhang.
 */
static void sqr_adx(uint64_t *r, const uint64_t *a, mont *M) {
  const size_t n = M->n;
  uint64_t *T = M->T, *ap = M->pad;
  memcpy(ap, a, n * sizeof ap[0]);
  memset(ap + n, 0, 8 * sizeof ap[0]);
  memset(T, 0, (2 * n + 8) * sizeof T[0]);
  for (size_t i = 0; i + 1 < n; i++) {
    const size_t len = (n - 1 - i + 7) / 8 * 8;
    T[2 * i + 1 + len] += row_adx(T + 2 * i + 1, ap + i + 1, a[i], len);
  }
  double_add_squares_adx(T, a, n);
  redc_adx(r, M);
}

#endif /* MTCI_X86_KERNELS */

/* ---- setup ------------------------------------------------------------------------ */

static void strip(const uint8_t **p, size_t *len) {
  while (*len > 0 && (*p)[0] == 0) {
    (*p)++;
    (*len)--;
  }
}

/* Strip leading zeros only while the number is over the size limit: below
 * it the buffer length, not the value, sets the work (and so the timing). */
static void strip_oversize(const uint8_t **p, size_t *len) {
  while (*len > MAX_BYTES && (*p)[0] == 0) {
    (*p)++;
    (*len)--;
  }
}

/* Bit length of a stripped big-endian number. */
static size_t bit_length(const uint8_t *p, size_t len) {
  if (len == 0) return 0;
  size_t bits = 8 * (len - 1);
  for (unsigned v = p[0]; v; v >>= 1) bits++;
  return bits;
}

int mtci_mont_supported(const uint8_t *mod, size_t mod_len) {
  if (!mod) return 0;
  strip(&mod, &mod_len);
  if (mod_len == 0 || (mod[mod_len - 1] & 1) == 0) return 0;
  const size_t bits = bit_length(mod, mod_len);
  return bits >= MTCI_MONT_MIN_BITS && bits <= MTCI_MONT_MAX_BITS;
}

/* n limbs from the big-endian p[0..len), starting `skip` bytes above its
 * least significant byte; bytes beyond p read as zero. */
static void load_limbs(uint64_t *l, size_t n, const uint8_t *p, size_t len, size_t skip) {
  for (size_t k = 0; k < n; k++) {
    uint64_t v = 0;
    for (size_t b = 0; b < 8; b++) {
      const size_t off = skip + 8 * k + b; /* byte offset from the end */
      if (off < len) v |= (uint64_t)p[len - 1 - off] << (8 * b);
    }
    l[k] = v;
  }
}

/* r = 2r mod m for r < m (r's top limb may have its high bit set). */
static void mod_double(uint64_t *r, mont *M) {
  uint64_t hi = 0;
  for (size_t k = 0; k < M->n; k++) {
    const uint64_t v = r[k];
    r[k] = v << 1 | hi;
    hi = v >> 63;
  }
  select_if(r, r, hi, M);
}

/* Kernels and constants for the stripped, supported modulus. */
static void mont_setup(mont *M, const uint8_t *mod, size_t mod_len) {
  const size_t bits = bit_length(mod, mod_len);
  size_t n = (bits + 63) / 64;
  M->mul = mul_port;
  M->sqr = sqr_port;
#if MTCI_X86_KERNELS
  if (mtci_crypto_accel_active() & MTCI_ACCEL_MULX) {
    M->mul = mul_adx;
    M->sqr = sqr_adx;
    /* whole 8-limb rows: a larger R works the same (m < R, m odd) */
    n = (n + 7) / 8 * 8;
  }
#endif
  M->n = n;
  load_limbs(M->m, n, mod, mod_len, 0);
  /* Newton's iteration for m0^-1 mod 2^64: x = m0 is right to 3 bits (odd
   * squares are 1 mod 8), each step doubles the correct bits: 3->6->...->96. */
  const uint64_t m0 = M->m[0];
  uint64_t x = m0;
  for (int i = 0; i < 5; i++) x *= 2 - m0 * x;
  M->m0inv = 0 - x;
  /* R^2 mod m: 2^(bits-1) < m, doubled up to 2^(64n+n) mod m = the
   * Montgomery form of 2^n; six Montgomery squarings take that to the form
   * of 2^(64n) = R, which is R^2 mod m. */
  uint64_t *x2 = M->rr;
  memset(x2, 0, n * sizeof x2[0]);
  x2[(bits - 1) / 64] = (uint64_t)1 << ((bits - 1) % 64);
  for (size_t k = bits - 1; k < 64 * n + n; k++) mod_double(x2, M);
  for (int i = 0; i < 6; i++) M->sqr(x2, x2, M);
}

/* w bits of the big-endian e[0..len) from bit `pos` up (bits past the top
 * read as zero). Indexes depend on pos only, never on e's contents. */
static uint64_t window_at(const uint8_t *e, size_t len, size_t pos, unsigned w) {
  const size_t byte = pos / 8;
  unsigned v = 0;
  if (byte < len) v = e[len - 1 - byte];
  if (byte + 1 < len) v |= (unsigned)e[len - 2 - byte] << 8;
  return (v >> (pos % 8)) & ((1u << w) - 1);
}

/* ---- exponentiation --------------------------------------------------------------- */

int mtci_mont_modexp(const uint8_t *base, size_t base_len, const uint8_t *exp, size_t exp_len,
                     const uint8_t *mod, size_t mod_len, uint8_t *out, size_t out_len) {
  if ((!base && base_len) || (!exp && exp_len) || (!mod && mod_len) || !out)
    return MTC_ERR_INVALID_ARG;
  strip(&mod, &mod_len);
  strip_oversize(&base, &base_len);
  strip_oversize(&exp, &exp_len);
  if (!mtci_mont_supported(mod, mod_len)) return MTC_ERR_INVALID_ARG;
  if (base_len > MAX_BYTES || exp_len > MAX_BYTES) return MTC_ERR_BAD_LENGTH;
  if (out_len < mod_len) return MTC_ERR_BUFFER_TOO_SMALL;

  mont M;
  mont_setup(&M, mod, mod_len);
  const size_t n = M.n;
  uint64_t one[MAXN], x[MAXN], acc[MAXN], table[(1u << MAXW) * MAXN];
  memset(one, 0, n * sizeof one[0]);
  one[0] = 1;

  /* base -> Montgomery form, Horner over n-limb chunks from the top:
   * acc = acc*R + chunk (mod m). mul(v, R^2) = v*R mod m for any n-limb v. */
  const size_t chunk = 8 * n, chunks = base_len ? (base_len + chunk - 1) / chunk : 1;
  for (size_t c = chunks; c-- > 0;) {
    load_limbs(x, n, base, base_len, c * chunk);
    M.mul(x, x, M.rr, &M);
    if (c + 1 == chunks) {
      memcpy(acc, x, n * sizeof x[0]);
    } else {
      M.mul(acc, acc, M.rr, &M);
      mod_add(acc, acc, x, &M);
    }
  }

  /* table[k] = base^k in Montgomery form, k < 2^w */
  const size_t ebits = 8 * exp_len;
  const unsigned w = ebits >= 512 ? 5 : 4;
  const size_t count = (size_t)1 << w;
  M.mul(table, M.rr, one, &M); /* R mod m: the form of 1 */
  memcpy(table + n, acc, n * sizeof acc[0]);
  for (size_t k = 2; k < count; k++) {
    if (k % 2 == 0) M.sqr(table + k * n, table + k / 2 * n, &M);
    else M.mul(table + k * n, table + (k - 1) * n, table + n, &M);
  }

  /* Fixed windows from the top; the top window holds the leftover bits. */
  if (ebits == 0) {
    memcpy(acc, table, n * sizeof acc[0]);
  } else {
    size_t pos = (ebits - 1) / w * w;
    table_select(acc, table, count, n, window_at(exp, exp_len, pos, w));
    while (pos > 0) {
      pos -= w;
      for (unsigned s = 0; s < w; s++) M.sqr(acc, acc, &M);
      table_select(x, table, count, n, window_at(exp, exp_len, pos, w));
      M.mul(acc, acc, x, &M);
    }
  }
  M.mul(acc, acc, one, &M); /* out of Montgomery form: fully reduced */

  /* big-endian, left-padded with zeros */
  for (size_t i = 0; i < out_len; i++) {
    const size_t off = out_len - 1 - i; /* byte offset from the end */
    out[i] = off < 8 * n ? (uint8_t)(acc[off / 8] >> (8 * (off % 8))) : 0;
  }
  mtci_zeroize(table, count * n * sizeof table[0]);
  mtci_zeroize(acc, sizeof acc);
  mtci_zeroize(x, sizeof x);
  mtci_zeroize(&M, sizeof M);
  return 0;
}
