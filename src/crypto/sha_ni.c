/*
 * SHA-1 and SHA-256 compression with the x86 SHA extensions. Same chaining
 * value layout as sha.c (h[0] = a ...), so the backends interchange.
 *
 * Both are unrolled by macros: the round-function selector of sha1rnds4 is
 * an immediate, and fixed indexes keep the message words in registers.
 */
#include "crypto/accel.h"

#if MTCI_X86_KERNELS

#include <immintrin.h>

#define TGT __attribute__((target("sha,sse4.1,ssse3")))
#define LD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define ST(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))

/* ---- SHA-256 ----
 * sha256rnds2 wants the state as ABEF / CDGH and does two rounds with the
 * W+K sums in the low two dwords of its third operand.
 * Message schedule, in 4-word groups G[n] (n = 0..15 over 64 rounds):
 *   G[n] = msg2(msg1(G[n-4], G[n-3]) + alignr(G[n-1], G[n-2], 4), G[n-1])
 * Step g runs rounds 4g..4g+3 and, interleaved, prepares G[g+1] (msg2 part)
 * and G[g+3] (msg1 part) in the slot that held G[g-1]. */

static const uint32_t k256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

TGT void mtci_shani_sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i s0 = LD(h), s1 = LD(h + 4); /* DCBA, HGFE */
  __m128i t = _mm_shuffle_epi32(s0, 0xB1);   /* CDAB */
  s1 = _mm_shuffle_epi32(s1, 0x1B);          /* EFGH */
  s0 = _mm_alignr_epi8(t, s1, 8);            /* ABEF */
  s1 = _mm_blend_epi16(s1, t, 0xF0);         /* CDGH */

  for (size_t b = 0; b < nblocks; b++, p += 64) {
    const __m128i save0 = s0, save1 = s1;
    __m128i w0, w1, w2, w3, m;
#define STEP(g, cur, prev, next)                                                                   \
  do {                                                                                             \
    if ((g) < 4) cur = _mm_shuffle_epi8(LD(p + 16 * (g)), bswap);                                  \
    m = _mm_add_epi32(cur, LD(k256 + 4 * (g)));                                                    \
    s1 = _mm_sha256rnds2_epu32(s1, s0, m);                                                         \
    if ((g) >= 3 && (g) <= 14)                                                                     \
      next = _mm_sha256msg2_epu32(_mm_add_epi32(next, _mm_alignr_epi8(cur, prev, 4)), cur);        \
    m = _mm_shuffle_epi32(m, 0x0E);                                                                \
    s0 = _mm_sha256rnds2_epu32(s0, s1, m);                                                         \
    if ((g) >= 1 && (g) <= 12) prev = _mm_sha256msg1_epu32(prev, cur);                           \
  } while (0)
    /* slots rotate: G[n] lives in w(n % 4) */
    w0 = w1 = w2 = w3 = _mm_setzero_si128();
    STEP(0, w0, w3, w1);
    STEP(1, w1, w0, w2);
    STEP(2, w2, w1, w3);
    STEP(3, w3, w2, w0);
    STEP(4, w0, w3, w1);
    STEP(5, w1, w0, w2);
    STEP(6, w2, w1, w3);
    STEP(7, w3, w2, w0);
    STEP(8, w0, w3, w1);
    STEP(9, w1, w0, w2);
    STEP(10, w2, w1, w3);
    STEP(11, w3, w2, w0);
    STEP(12, w0, w3, w1);
    STEP(13, w1, w0, w2);
    STEP(14, w2, w1, w3);
    STEP(15, w3, w2, w0);
#undef STEP
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
  }

  t = _mm_shuffle_epi32(s0, 0x1B);    /* FEBA */
  s1 = _mm_shuffle_epi32(s1, 0xB1);   /* DCHG */
  s0 = _mm_blend_epi16(t, s1, 0xF0);  /* DCBA */
  s1 = _mm_alignr_epi8(s1, t, 8);     /* HGFE */
  ST(h, s0);
  ST(h + 4, s1);
}

/* ---- SHA-1 ----
 * abcd holds A in the top dword. sha1nexte(prev_abcd, W) adds rol30(A) (the
 * next E) into W's top dword; sha1rnds4 then does 4 rounds.
 * Schedule in groups: G[n] = msg2(msg1(G[n-4], G[n-3]) ^ G[n-2], G[n-1]).
 * Step g: finish G[g+1] (msg2), XOR G[g] into G[g+2], start G[g+3] (msg1). */

TGT void mtci_shani_sha1_blocks(uint32_t h[5], const uint8_t *p, size_t nblocks) {
  const __m128i bswap = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
  __m128i abcd = _mm_shuffle_epi32(LD(h), 0x1B);
  __m128i e = _mm_set_epi32((int)h[4], 0, 0, 0);

  for (size_t b = 0; b < nblocks; b++, p += 64) {
    const __m128i save_abcd = abcd, save_e = e;
    __m128i w0, w1, w2, w3, prev_abcd = abcd, x;
#define STEP(g, cur, prev, next, next2)                                                            \
  do {                                                                                             \
    if ((g) < 4) cur = _mm_shuffle_epi8(LD(p + 16 * (g)), bswap);                                  \
    x = (g) == 0 ? _mm_add_epi32(e, cur) : _mm_sha1nexte_epu32(prev_abcd, cur);                    \
    prev_abcd = abcd;                                                                              \
    if ((g) >= 3 && (g) <= 18) next = _mm_sha1msg2_epu32(next, cur);                              \
    abcd = _mm_sha1rnds4_epu32(abcd, x, (g) / 5);                                                  \
    if ((g) >= 1 && (g) <= 16) prev = _mm_sha1msg1_epu32(prev, cur);                              \
    if ((g) >= 2 && (g) <= 17) next2 = _mm_xor_si128(next2, cur);                                 \
  } while (0)
    /* G[n] lives in w(n % 4); next = G[g+1], prev = G[g-1] (becomes G[g+3]),
     * next2 = G[g+2]. */
    w0 = w1 = w2 = w3 = _mm_setzero_si128();
    STEP(0, w0, w3, w1, w2);
    STEP(1, w1, w0, w2, w3);
    STEP(2, w2, w1, w3, w0);
    STEP(3, w3, w2, w0, w1);
    STEP(4, w0, w3, w1, w2);
    STEP(5, w1, w0, w2, w3);
    STEP(6, w2, w1, w3, w0);
    STEP(7, w3, w2, w0, w1);
    STEP(8, w0, w3, w1, w2);
    STEP(9, w1, w0, w2, w3);
    STEP(10, w2, w1, w3, w0);
    STEP(11, w3, w2, w0, w1);
    STEP(12, w0, w3, w1, w2);
    STEP(13, w1, w0, w2, w3);
    STEP(14, w2, w1, w3, w0);
    STEP(15, w3, w2, w0, w1);
    STEP(16, w0, w3, w1, w2);
    STEP(17, w1, w0, w2, w3);
    STEP(18, w2, w1, w3, w0);
    STEP(19, w3, w2, w0, w1);
#undef STEP
    e = _mm_sha1nexte_epu32(prev_abcd, save_e);
    abcd = _mm_add_epi32(abcd, save_abcd);
  }

  ST(h, _mm_shuffle_epi32(abcd, 0x1B));
  h[4] = (uint32_t)_mm_extract_epi32(e, 3);
}

#else /* not x86-64: never called (cpu.c reports no SHA-NI) */

void mtci_shani_sha1_blocks(uint32_t h[5], const uint8_t *p, size_t nblocks) {
  (void)h, (void)p, (void)nblocks;
}
void mtci_shani_sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks) {
  (void)h, (void)p, (void)nblocks;
}

#endif
