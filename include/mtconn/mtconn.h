/*
 * mtconn — an embeddable MTProto connection layer.
 *
 * Public API. Conventions (nghttp2/ngtcp2 style):
 *   - every function returns 0 or a positive count on success and a negative
 *     MTC_ERR_* code on failure; mtc_strerror() names the code;
 *   - opaque handles, versioned settings structs;
 *   - "copy in, borrow out": inputs are copied before a call returns, pointers
 *     handed to callbacks live until the callback returns;
 *   - key material is zeroized when freed and never reaches a log line.
 *
 * This header grows issue by issue; what is declared here is implemented and
 * tested.
 */
#ifndef MTCONN_MTCONN_H
#define MTCONN_MTCONN_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MTC_STATIC) || !defined(__GNUC__)
#define MTC_API
#else
#define MTC_API __attribute__((visibility("default")))
#endif

/*
 * Error codes. Ranges by module so a code says where it came from:
 *   -1..-99 general, -100 crypto, -200 TL, -300 transport/proxy,
 *   -400 auth key, -500 session, -600 context, -700 discovery, -800 store.
 */
typedef enum mtc_error {
  MTC_OK = 0,

  MTC_ERR_INVALID_ARG = -1,     /* an argument is out of its documented range */
  MTC_ERR_NOMEM = -2,           /* allocation failed or a size cap was hit */
  MTC_ERR_BUFFER_TOO_SMALL = -3,/* the output buffer cannot hold the result */
  MTC_ERR_INTERNAL = -4,        /* a bug: an invariant did not hold */
  MTC_ERR_RANDOM = -5,          /* the random-bytes source failed */
  MTC_ERR_UNSUPPORTED = -6,     /* valid input this build does not handle */

  MTC_ERR_CRYPTO = -100,        /* the crypto backend reported a failure */
  MTC_ERR_BAD_LENGTH = -101,    /* input length not allowed for the operation */
  MTC_ERR_RSA_KEY = -102,       /* an RSA key could not be parsed or is unusable */
  MTC_ERR_RSA_INPUT = -103,     /* RSA input is not below the modulus or too long */
  MTC_ERR_DH_PRIME = -104,      /* dh_prime is not a 2048-bit safe prime */
  MTC_ERR_DH_GENERATOR = -105,  /* g is outside 2..7 or fails its residue rule */
  MTC_ERR_DH_VALUE = -106,      /* g_a/g_b outside [2^1984, p - 2^1984] */
  MTC_ERR_PQ_FACTOR = -107,     /* pq has no factorization into two 32-bit primes */
  MTC_ERR_BAD_HASH = -108,      /* an integrity hash did not match */

  MTC_ERR_TL_TRUNCATED = -200,  /* TL data ended before the value did */
  MTC_ERR_TL_CONSTRUCTOR = -201,/* an unexpected or unknown constructor id */
  MTC_ERR_TL_TOO_LONG = -202,   /* a length or count exceeds the data or a cap */
  MTC_ERR_TL_BAD_VALUE = -203,  /* a value is malformed (bad padding, bad Bool) */
  MTC_ERR_TL_TRAILING = -204,   /* bytes left over after a complete value */
  MTC_ERR_TL_DEPTH = -205,      /* objects nested deeper than the decoder allows */
  MTC_ERR_GZIP = -206           /* gzip_packed failed to inflate or is too large */
} mtc_error;

/*
 * Returns a static, human-readable description of an mtc_error code (never
 * NULL; unknown codes get a generic text). Thread-safe; callable anywhere.
 */
MTC_API const char *mtc_strerror(int code);

/*
 * Returns the library version string ("MAJOR.MINOR.PATCH") of the linked
 * library, which may differ from MTC_VERSION_STRING of the headers.
 */
MTC_API const char *mtc_version(void);

/*
 * A source of random bytes: fill out[0..len) and return 0, or a negative
 * mtc_error. Every pure module draws randomness only through one of these,
 * so tests can feed fixed bytes. It must not be called with len == 0.
 */
typedef int (*mtc_random_fn)(void *user_data, uint8_t *out, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MTCONN_MTCONN_H */
