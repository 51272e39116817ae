/*
 * Private to src/crypto/: modular exponentiation by Montgomery
 * multiplication on 64-bit limbs (montgomery.c), constant-time in the
 * exponent and the base. mtci_modexp (bignum.c) routes odd moduli of
 * MTCI_MONT_MIN_BITS..MTCI_MONT_MAX_BITS bits here (DH's 2048-bit prime,
 * RSA keys) and everything else to mbedTLS. No mbedTLS in montgomery.c.
 */
#ifndef MTCI_MONTGOMERY_H
#define MTCI_MONTGOMERY_H

#include <stddef.h>
#include <stdint.h>

#define MTCI_MONT_MIN_BITS 1024
#define MTCI_MONT_MAX_BITS 4096

/* 1 if mod (big-endian, leading zeros allowed) is odd and its bit length is
 * in [MTCI_MONT_MIN_BITS, MTCI_MONT_MAX_BITS], else 0. */
int mtci_mont_supported(const uint8_t *mod, size_t mod_len);

/*
 * out = base^exp mod mod with mtci_modexp's contract (crypto.h): base may be
 * >= mod (it is reduced), exp of length 0 gives 1, out is left-padded to
 * out_len, an input over 1024 significant bytes -> MTC_ERR_BAD_LENGTH.
 * A modulus that mtci_mont_supported() rejects -> MTC_ERR_INVALID_ARG.
 *
 * Timing depends on mod and on base_len and exp_len (the buffer lengths,
 * leading zeros included), never on the values of base or exp: exp is
 * processed as exactly 8 * exp_len bits. Uses the mulx/adx kernels when
 * mtci_crypto_accel_active() has MTCI_ACCEL_MULX, else portable C.
 */
int mtci_mont_modexp(const uint8_t *base, size_t base_len, const uint8_t *exp, size_t exp_len,
                     const uint8_t *mod, size_t mod_len, uint8_t *out, size_t out_len);

/*
 * mtci_modexp's mbedTLS path (bignum.c: mbedtls_mpi_exp_mod), callable for
 * any odd modulus whatever its size: the reference that tests and the
 * benchmark compare the Montgomery path against.
 */
int mtci_modexp_mbedtls(const uint8_t *base, size_t base_len, const uint8_t *exp, size_t exp_len,
                        const uint8_t *mod, size_t mod_len, uint8_t *out, size_t out_len);

#endif /* MTCI_MONTGOMERY_H */
