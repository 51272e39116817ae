/*
 * AES-256 with AES-NI. Each function carries its own target attribute, so
 * the library builds without -maes and these run only after cpu.c saw the
 * instructions. All loads and stores are unaligned-safe (loadu/storeu).
 *
 * Round keys follow the mtci_aes256 layout: 15 x 16 bytes; the decryption
 * schedule is the "equivalent inverse cipher" one (aesimc of the middle
 * keys, reversed), which is also what mbedTLS stores.
 */
#include "crypto/accel.h"

#if MTCI_X86_KERNELS

#include <immintrin.h>

#define TGT __attribute__((target("aes,sse4.1")))

#define LD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define ST(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))
#define XOR _mm_xor_si128
/* Fully unroll the 13 middle rounds: no loop branch beside the AES chain. */
#define UNROLL13 _Pragma("GCC unroll 13")

TGT static inline void load_keys(const uint32_t rk[60], __m128i k[15]) {
  for (int i = 0; i < 15; i++) k[i] = LD(rk + 4 * i);
}

/* ---- key expansion (FIPS-197 §5.2, AES-256 flavour) ---- */

/* Words (w0, w1, w2, w3) -> (w0, w0^w1, w0^w1^w2, w0^w1^w2^w3): the
 * running XOR that chains each new round-key word to the one before. */
TGT static inline __m128i prefix_xor(__m128i x) {
  x = XOR(x, _mm_slli_si128(x, 4));
  x = XOR(x, _mm_slli_si128(x, 8));
  return x;
}

TGT void mtci_aesni_expand(const uint8_t key[32], uint32_t rk_enc[60], uint32_t rk_dec[60]) {
  __m128i k[15];
  k[0] = LD(key);
  k[1] = LD(key + 16);
  /* Even keys: RotWord+SubWord of the last word, with rcon (lane 3 of
   * keygenassist). Odd keys: SubWord only (lane 2). */
#define EVEN(i, rcon)                                                                              \
  k[i] = XOR(prefix_xor(k[i - 2]),                                                                 \
             _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k[i - 1], rcon), 0xff))
#define ODD(i)                                                                                     \
  k[i] = XOR(prefix_xor(k[i - 2]), _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k[i - 1], 0), 0xaa))
  EVEN(2, 0x01);
  ODD(3);
  EVEN(4, 0x02);
  ODD(5);
  EVEN(6, 0x04);
  ODD(7);
  EVEN(8, 0x08);
  ODD(9);
  EVEN(10, 0x10);
  ODD(11);
  EVEN(12, 0x20);
  ODD(13);
  EVEN(14, 0x40);
#undef EVEN
#undef ODD
  for (int i = 0; i < 15; i++) ST(rk_enc + 4 * i, k[i]);
  ST(rk_dec, k[14]);
  for (int i = 1; i < 14; i++) ST(rk_dec + 4 * i, _mm_aesimc_si128(k[14 - i]));
  ST(rk_dec + 56, k[0]);
}

/* ---- single blocks ---- */

TGT static inline __m128i enc1(const __m128i k[15], __m128i x) {
  x = XOR(x, k[0]);
  UNROLL13
  for (int r = 1; r < 14; r++) x = _mm_aesenc_si128(x, k[r]);
  return _mm_aesenclast_si128(x, k[14]);
}

TGT static inline __m128i dec1(const __m128i k[15], __m128i x) {
  x = XOR(x, k[0]);
  UNROLL13
  for (int r = 1; r < 14; r++) x = _mm_aesdec_si128(x, k[r]);
  return _mm_aesdeclast_si128(x, k[14]);
}

TGT void mtci_aesni_encrypt_block(const uint32_t rk_enc[60], const uint8_t in[16],
                                  uint8_t out[16]) {
  __m128i k[15];
  load_keys(rk_enc, k);
  ST(out, enc1(k, LD(in)));
}

TGT void mtci_aesni_decrypt_block(const uint32_t rk_dec[60], const uint8_t in[16],
                                  uint8_t out[16]) {
  __m128i k[15];
  load_keys(rk_dec, k);
  ST(out, dec1(k, LD(in)));
}

/* ---- IGE ----
 * Strictly sequential, so keep the dependency chain short: the input's
 * round-0 XOR is done off the chain, and the output XOR is folded into the
 * last round key (aesenclast XORs its key in), leaving 1 XOR + 14 rounds
 * per block on the critical path. OPAQUE stops the compiler from
 * re-associating the XORs back onto the chain. Each input block is loaded
 * before the output block is stored, so out may equal in. */

#define OPAQUE(v) __asm__("" : "+x"(v))

TGT void mtci_aesni_ige_encrypt(const uint32_t rk_enc[60], uint8_t iv[32], const uint8_t *in,
                                uint8_t *out, size_t nblocks) {
  __m128i k[15];
  load_keys(rk_enc, k);
  __m128i c_prev = LD(iv), p_prev = LD(iv + 16);
  for (size_t i = 0; i < nblocks; i++, in += 16, out += 16) {
    const __m128i p = LD(in);
    __m128i pk = XOR(p, k[0]);
    OPAQUE(pk);
    __m128i x = XOR(pk, c_prev);
    UNROLL13
    for (int r = 1; r < 14; r++) x = _mm_aesenc_si128(x, k[r]);
    c_prev = _mm_aesenclast_si128(x, XOR(k[14], p_prev));
    ST(out, c_prev);
    p_prev = p;
  }
  ST(iv, c_prev);
  ST(iv + 16, p_prev);
}

TGT void mtci_aesni_ige_decrypt(const uint32_t rk_dec[60], uint8_t iv[32], const uint8_t *in,
                                uint8_t *out, size_t nblocks) {
  __m128i k[15];
  load_keys(rk_dec, k);
  __m128i c_prev = LD(iv), p_prev = LD(iv + 16);
  for (size_t i = 0; i < nblocks; i++, in += 16, out += 16) {
    const __m128i c = LD(in);
    __m128i ck = XOR(c, k[0]);
    OPAQUE(ck);
    __m128i x = XOR(ck, p_prev);
    UNROLL13
    for (int r = 1; r < 14; r++) x = _mm_aesdec_si128(x, k[r]);
    p_prev = _mm_aesdeclast_si128(x, XOR(k[14], c_prev));
    ST(out, p_prev);
    c_prev = c;
  }
  ST(iv, c_prev);
  ST(iv + 16, p_prev);
}

/* Eight independent blocks in flight (x0..x7 as separate variables so they
 * stay in registers; an array would be kept on the stack). */
#define EACH8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

/* ---- CBC decryption: blocks are independent, so 8 in flight ---- */

TGT void mtci_aesni_cbc_decrypt(const uint32_t rk_dec[60], uint8_t iv[16], const uint8_t *in,
                                uint8_t *out, size_t nblocks) {
  __m128i k[15];
  load_keys(rk_dec, k);
  __m128i prev = LD(iv);
  size_t i = 0;
  for (; i + 8 <= nblocks; i += 8, in += 128, out += 128) {
    __m128i x0, x1, x2, x3, x4, x5, x6, x7;
#define INIT(j) x##j = XOR(LD(in + 16 * j), k[0]);
#define RND(j) x##j = _mm_aesdec_si128(x##j, kr);
#define LAST(j) x##j = _mm_aesdeclast_si128(x##j, k[14]);
    EACH8(INIT)
    for (int r = 1; r < 14; r++) {
      const __m128i kr = k[r];
      EACH8(RND)
    }
    EACH8(LAST)
    /* every output needs the previous ciphertext: read all of them before
     * the first store, since out may be in */
    const __m128i c0 = LD(in), c1 = LD(in + 16), c2 = LD(in + 32), c3 = LD(in + 48),
                  c4 = LD(in + 64), c5 = LD(in + 80), c6 = LD(in + 96), c7 = LD(in + 112);
    ST(out, XOR(x0, prev));
    ST(out + 16, XOR(x1, c0));
    ST(out + 32, XOR(x2, c1));
    ST(out + 48, XOR(x3, c2));
    ST(out + 64, XOR(x4, c3));
    ST(out + 80, XOR(x5, c4));
    ST(out + 96, XOR(x6, c5));
    ST(out + 112, XOR(x7, c6));
    prev = c7;
#undef INIT
#undef RND
#undef LAST
  }
  for (; i < nblocks; i++, in += 16, out += 16) {
    const __m128i c = LD(in);
    ST(out, XOR(dec1(k, c), prev));
    prev = c;
  }
  ST(iv, prev);
}

/* ---- CTR: 8 counter blocks per batch ----
 * The counter is a big-endian 128-bit integer. It is kept byte-reversed in
 * a register (a little-endian 128-bit value, low qword = low 64 bits), so
 * the 8 successors are 64-bit lane adds; a batch that would carry out of
 * the low 64 bits takes a slow path that carries by hand. */

TGT static inline __m128i ctr_add(__m128i le, uint64_t n) {
  const uint64_t lo = (uint64_t)_mm_cvtsi128_si64(le) + n;
  uint64_t hi = (uint64_t)_mm_extract_epi64(le, 1);
  if (lo < n) hi++;
  return _mm_set_epi64x((long long)hi, (long long)lo);
}

TGT void mtci_aesni_ctr_xor(const uint32_t rk_enc[60], uint8_t ctr[16], const uint8_t *in,
                            uint8_t *out, size_t nblocks) {
  __m128i k[15];
  load_keys(rk_enc, k);
  const __m128i bswap = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m128i le = _mm_shuffle_epi8(LD(ctr), bswap); /* counter as a LE 128-bit value */
  size_t i = 0;
  for (; i + 8 <= nblocks; i += 8, in += 128, out += 128) {
    __m128i x0, x1, x2, x3, x4, x5, x6, x7;
    if ((uint64_t)_mm_cvtsi128_si64(le) <= UINT64_MAX - 8) {
      /* no carry out of the low qword in this batch */
#define CTR(j) x##j = XOR(_mm_shuffle_epi8(_mm_add_epi64(le, _mm_set_epi64x(0, j)), bswap), k[0]);
      EACH8(CTR)
#undef CTR
      le = _mm_add_epi64(le, _mm_set_epi64x(0, 8));
    } else {
#define CTR(j) x##j = XOR(_mm_shuffle_epi8(ctr_add(le, j), bswap), k[0]);
      EACH8(CTR)
#undef CTR
      le = ctr_add(le, 8);
    }
#define RND(j) x##j = _mm_aesenc_si128(x##j, kr);
#define LAST(j) ST(out + 16 * j, XOR(_mm_aesenclast_si128(x##j, k[14]), LD(in + 16 * j)));
    for (int r = 1; r < 14; r++) {
      const __m128i kr = k[r];
      EACH8(RND)
    }
    EACH8(LAST)
#undef RND
#undef LAST
  }
  for (; i < nblocks; i++, in += 16, out += 16) {
    ST(out, XOR(enc1(k, _mm_shuffle_epi8(le, bswap)), LD(in)));
    le = ctr_add(le, 1);
  }
  ST(ctr, _mm_shuffle_epi8(le, bswap));
}

#else /* not x86-64: never called (cpu.c reports no AES-NI) */

void mtci_aesni_expand(const uint8_t key[32], uint32_t rk_enc[60], uint32_t rk_dec[60]) {
  (void)key, (void)rk_enc, (void)rk_dec;
}
void mtci_aesni_encrypt_block(const uint32_t rk_enc[60], const uint8_t in[16], uint8_t out[16]) {
  (void)rk_enc, (void)in, (void)out;
}
void mtci_aesni_decrypt_block(const uint32_t rk_dec[60], const uint8_t in[16], uint8_t out[16]) {
  (void)rk_dec, (void)in, (void)out;
}
void mtci_aesni_ige_encrypt(const uint32_t rk_enc[60], uint8_t iv[32], const uint8_t *in,
                            uint8_t *out, size_t nblocks) {
  (void)rk_enc, (void)iv, (void)in, (void)out, (void)nblocks;
}
void mtci_aesni_ige_decrypt(const uint32_t rk_dec[60], uint8_t iv[32], const uint8_t *in,
                            uint8_t *out, size_t nblocks) {
  (void)rk_dec, (void)iv, (void)in, (void)out, (void)nblocks;
}
void mtci_aesni_cbc_decrypt(const uint32_t rk_dec[60], uint8_t iv[16], const uint8_t *in,
                            uint8_t *out, size_t nblocks) {
  (void)rk_dec, (void)iv, (void)in, (void)out, (void)nblocks;
}
void mtci_aesni_ctr_xor(const uint32_t rk_enc[60], uint8_t ctr[16], const uint8_t *in,
                        uint8_t *out, size_t nblocks) {
  (void)rk_enc, (void)ctr, (void)in, (void)out, (void)nblocks;
}

#endif
