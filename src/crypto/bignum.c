/*
 * Big-number helpers over mbedTLS: modular exponentiation (DH, raw RSA) and
 * the Diffie-Hellman checks of the auth-key handshake (PROTOCOL.md §6.3.8).
 */
#include <string.h>

#include <mbedtls/bignum.h>

#include "crypto/crypto.h"
#include "crypto/montgomery.h"

/* MBEDTLS_MPI_MAX_SIZE is 1024 bytes in the default config: larger inputs
 * would fail inside mbedTLS, so refuse them up front with a clear code. */
#define MODEXP_MAX_BYTES 1024

/* Telegram's well-known 2048-bit safe prime (tdlib, tdesktop, Telegram
 * Android, and the official samples-auth_key page all carry it). */
static const uint8_t k_known_prime[256] = {
    0xC7, 0x1C, 0xAE, 0xB9, 0xC6, 0xB1, 0xC9, 0x04, 0x8E, 0x6C, 0x52, 0x2F, 0x70, 0xF1, 0x3F, 0x73,
    0x98, 0x0D, 0x40, 0x23, 0x8E, 0x3E, 0x21, 0xC1, 0x49, 0x34, 0xD0, 0x37, 0x56, 0x3D, 0x93, 0x0F,
    0x48, 0x19, 0x8A, 0x0A, 0xA7, 0xC1, 0x40, 0x58, 0x22, 0x94, 0x93, 0xD2, 0x25, 0x30, 0xF4, 0xDB,
    0xFA, 0x33, 0x6F, 0x6E, 0x0A, 0xC9, 0x25, 0x13, 0x95, 0x43, 0xAE, 0xD4, 0x4C, 0xCE, 0x7C, 0x37,
    0x20, 0xFD, 0x51, 0xF6, 0x94, 0x58, 0x70, 0x5A, 0xC6, 0x8C, 0xD4, 0xFE, 0x6B, 0x6B, 0x13, 0xAB,
    0xDC, 0x97, 0x46, 0x51, 0x29, 0x69, 0x32, 0x84, 0x54, 0xF1, 0x8F, 0xAF, 0x8C, 0x59, 0x5F, 0x64,
    0x24, 0x77, 0xFE, 0x96, 0xBB, 0x2A, 0x94, 0x1D, 0x5B, 0xCD, 0x1D, 0x4A, 0xC8, 0xCC, 0x49, 0x88,
    0x07, 0x08, 0xFA, 0x9B, 0x37, 0x8E, 0x3C, 0x4F, 0x3A, 0x90, 0x60, 0xBE, 0xE6, 0x7C, 0xF9, 0xA4,
    0xA4, 0xA6, 0x95, 0x81, 0x10, 0x51, 0x90, 0x7E, 0x16, 0x27, 0x53, 0xB5, 0x6B, 0x0F, 0x6B, 0x41,
    0x0D, 0xBA, 0x74, 0xD8, 0xA8, 0x4B, 0x2A, 0x14, 0xB3, 0x14, 0x4E, 0x0E, 0xF1, 0x28, 0x47, 0x54,
    0xFD, 0x17, 0xED, 0x95, 0x0D, 0x59, 0x65, 0xB4, 0xB9, 0xDD, 0x46, 0x58, 0x2D, 0xB1, 0x17, 0x8D,
    0x16, 0x9C, 0x6B, 0xC4, 0x65, 0xB0, 0xD6, 0xFF, 0x9C, 0xA3, 0x92, 0x8F, 0xEF, 0x5B, 0x9A, 0xE4,
    0xE4, 0x18, 0xFC, 0x15, 0xE8, 0x3E, 0xBE, 0xA0, 0xF8, 0x7F, 0xA9, 0xFF, 0x5E, 0xED, 0x70, 0x05,
    0x0D, 0xED, 0x28, 0x49, 0xF4, 0x7B, 0xF9, 0x59, 0xD9, 0x56, 0x85, 0x0C, 0xE9, 0x29, 0x85, 0x1F,
    0x0D, 0x81, 0x15, 0xF6, 0x35, 0xB1, 0x05, 0xEE, 0x2E, 0x4E, 0x15, 0xD0, 0x4B, 0x24, 0x54, 0xBF,
    0x6F, 0x4F, 0xAD, 0xF0, 0x34, 0xB1, 0x04, 0x03, 0x11, 0x9C, 0xD8, 0xE3, 0xB9, 0x2F, 0xCC, 0x5B,
};

/* Skip leading zero bytes of a big-endian number. */
static void strip(const uint8_t **p, size_t *len) {
  while (*len > 0 && (*p)[0] == 0) {
    (*p)++;
    (*len)--;
  }
}

static int mpi_err(int ret) {
  return ret == MBEDTLS_ERR_MPI_ALLOC_FAILED ? MTC_ERR_NOMEM : MTC_ERR_CRYPTO;
}

int mtci_modexp(const uint8_t *base, size_t base_len, const uint8_t *exp, size_t exp_len,
                const uint8_t *mod, size_t mod_len, uint8_t *out, size_t out_len) {
  /* DH (2048-bit prime) and RSA sizes: our constant-time Montgomery code
   * (2048 bits: ~2.4x faster than mbedtls_mpi_exp_mod with the mulx/adx
   * kernels, ~1.6x in portable C); other sizes stay with mbedTLS. */
  if (mtci_mont_supported(mod, mod_len))
    return mtci_mont_modexp(base, base_len, exp, exp_len, mod, mod_len, out, out_len);
  return mtci_modexp_mbedtls(base, base_len, exp, exp_len, mod, mod_len, out, out_len);
}

int mtci_modexp_mbedtls(const uint8_t *base, size_t base_len, const uint8_t *exp, size_t exp_len,
                        const uint8_t *mod, size_t mod_len, uint8_t *out, size_t out_len) {
  if ((!base && base_len) || (!exp && exp_len) || (!mod && mod_len) || !out)
    return MTC_ERR_INVALID_ARG;
  strip(&base, &base_len);
  strip(&exp, &exp_len);
  strip(&mod, &mod_len);
  /* mbedTLS exponentiates by Montgomery multiplication: odd moduli only.
   * DH primes and RSA moduli are odd; zero and even moduli are refused. */
  if (mod_len == 0 || (mod[mod_len - 1] & 1) == 0) return MTC_ERR_INVALID_ARG;
  if (base_len > MODEXP_MAX_BYTES || exp_len > MODEXP_MAX_BYTES || mod_len > MODEXP_MAX_BYTES)
    return MTC_ERR_BAD_LENGTH;
  if (out_len < mod_len) return MTC_ERR_BUFFER_TOO_SMALL;

  mbedtls_mpi b, e, m, r;
  mbedtls_mpi_init(&b);
  mbedtls_mpi_init(&e);
  mbedtls_mpi_init(&m);
  mbedtls_mpi_init(&r);
  int ret = mbedtls_mpi_read_binary(&b, base, base_len);
  if (ret == 0) ret = mbedtls_mpi_read_binary(&e, exp, exp_len);
  if (ret == 0) ret = mbedtls_mpi_read_binary(&m, mod, mod_len);
  if (ret == 0) ret = mbedtls_mpi_exp_mod(&r, &b, &e, &m, NULL);
  if (ret == 0) ret = mbedtls_mpi_write_binary(&r, out, out_len); /* left-pads with zeros */
  /* mbedtls_mpi_free zeroizes the limbs: the exponent may be a DH secret. */
  mbedtls_mpi_free(&b);
  mbedtls_mpi_free(&e);
  mbedtls_mpi_free(&m);
  mbedtls_mpi_free(&r);
  if (ret != 0) {
    mtci_zeroize(out, out_len);
    return mpi_err(ret);
  }
  return 0;
}

int mtci_dh_is_known_prime(const uint8_t *p, size_t p_len) {
  if (!p) return 0;
  strip(&p, &p_len);
  return p_len == sizeof k_known_prime && memcmp(p, k_known_prime, sizeof k_known_prime) == 0;
}

/* p mod m for a small m, from the big-endian bytes. */
static unsigned mod_small(const uint8_t *p, size_t len, unsigned m) {
  unsigned r = 0;
  for (size_t i = 0; i < len; i++) r = (r * 256u + p[i]) % m;
  return r;
}

/*
 * g must generate the subgroup of quadratic residues mod p, i.e. g must be
 * a quadratic residue; for a safe prime that reduces to these conditions on
 * p (official auth_key page, tdlib DhHandshake).
 */
static int generator_ok(const uint8_t *p, size_t len, int32_t g) {
  switch (g) {
  case 2: return mod_small(p, len, 8) == 7;
  case 3: return mod_small(p, len, 3) == 2;
  case 4: return 1;
  case 5: {
    unsigned r = mod_small(p, len, 5);
    return r == 1 || r == 4;
  }
  case 6: {
    unsigned r = mod_small(p, len, 24);
    return r == 19 || r == 23;
  }
  case 7: {
    unsigned r = mod_small(p, len, 7);
    return r == 3 || r == 5 || r == 6;
  }
  default: return 0;
  }
}

/*
 * Witness source for Miller-Rabin. Primality witnesses need not be secret,
 * and the pure core has no entropy of its own here, so this is a fixed
 * splitmix64 stream: the check is deterministic and reproducible. The prime
 * arrives inside the RSA/AES-protected server_DH_inner_data, so only the
 * genuine server chooses it (and it always sends the known prime, which
 * skips this test); the many rounds guard against a merely broken server.
 */
static int witness_rng(void *state, unsigned char *out, size_t len) {
  uint64_t *s = state;
  for (size_t i = 0; i < len; i += 8) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (size_t j = 0; j < 8 && i + j < len; j++) out[i + j] = (unsigned char)(z >> (8 * j));
  }
  return 0;
}

/* Miller-Rabin rounds for each of p and (p-1)/2: error below 2^-50 per
 * number for a composite not built against these fixed witnesses. The full
 * check costs 2 x 25 exponentiations of 2048 bits (about 0.2-0.4 s); only a
 * server with a prime other than the known one ever pays it. */
#define DH_MR_ROUNDS 25

/* 0 if p and (p-1)/2 are both (probable) primes, else MTC_ERR_DH_PRIME. */
static int safe_prime_check(const uint8_t *p, size_t len) {
  mbedtls_mpi P, Q;
  mbedtls_mpi_init(&P);
  mbedtls_mpi_init(&Q);
  uint64_t seed = 0x6d7463636f6e6e31ull; /* fixed: "mtcconn1" */
  int ret = mbedtls_mpi_read_binary(&P, p, len);
  if (ret == 0) ret = mbedtls_mpi_copy(&Q, &P);
  if (ret == 0) ret = mbedtls_mpi_shift_r(&Q, 1);
  /* (p-1)/2 first: for a random prime p it usually has a small factor, so
   * most non-safe primes fail in the cheap trial division. */
  if (ret == 0) ret = mbedtls_mpi_is_prime_ext(&Q, DH_MR_ROUNDS, witness_rng, &seed);
  if (ret == 0) ret = mbedtls_mpi_is_prime_ext(&P, DH_MR_ROUNDS, witness_rng, &seed);
  mbedtls_mpi_free(&P);
  mbedtls_mpi_free(&Q);
  if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED) return MTC_ERR_NOMEM;
  return ret == 0 ? 0 : MTC_ERR_DH_PRIME;
}

int mtci_dh_check_params(const uint8_t *p, size_t p_len, int32_t g) {
  if (!p && p_len) return MTC_ERR_INVALID_ARG;
  strip(&p, &p_len);
  /* 2^2047 < p < 2^2048: exactly 256 significant bytes, top bit set (p is
   * odd, so p == 2^2047 is excluded by the primality test below). */
  if (p_len != 256 || (p[0] & 0x80) == 0) return MTC_ERR_DH_PRIME;
  /* Cheap checks before the expensive one: g's range and residue rule. */
  if (g < 2 || g > 7 || !generator_ok(p, p_len, g)) return MTC_ERR_DH_GENERATOR;
  if (mtci_dh_is_known_prime(p, p_len)) return 0;
  return safe_prime_check(p, p_len);
}

int mtci_dh_check_value(const uint8_t *p, size_t p_len, const uint8_t *v, size_t v_len) {
  if ((!p && p_len) || (!v && v_len)) return MTC_ERR_INVALID_ARG;
  strip(&p, &p_len);
  strip(&v, &v_len);
  if (p_len > MODEXP_MAX_BYTES || v_len > MODEXP_MAX_BYTES) return MTC_ERR_DH_VALUE;
  mbedtls_mpi P, V, L, H;
  mbedtls_mpi_init(&P);
  mbedtls_mpi_init(&V);
  mbedtls_mpi_init(&L);
  mbedtls_mpi_init(&H);
  int ret = mbedtls_mpi_read_binary(&P, p, p_len);
  if (ret == 0) ret = mbedtls_mpi_read_binary(&V, v, v_len);
  if (ret == 0) ret = mbedtls_mpi_lset(&L, 1);
  if (ret == 0) ret = mbedtls_mpi_shift_l(&L, 2048 - 64);
  if (ret == 0) ret = mbedtls_mpi_sub_mpi(&H, &P, &L); /* may go negative: then nothing fits */
  int ok = ret == 0 && mbedtls_mpi_cmp_mpi(&V, &L) > 0 && mbedtls_mpi_cmp_mpi(&V, &H) < 0;
  mbedtls_mpi_free(&P);
  mbedtls_mpi_free(&V);
  mbedtls_mpi_free(&L);
  mbedtls_mpi_free(&H);
  if (ret != 0) return mpi_err(ret);
  return ok ? 0 : MTC_ERR_DH_VALUE;
}
