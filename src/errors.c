/* mtc_strerror and mtc_version: the text behind every public error code. */
#include "mtconn/mtconn.h"

const char *mtc_strerror(int code) {
  switch ((mtc_error)code) {
  case MTC_OK: return "success";
  case MTC_ERR_INVALID_ARG: return "invalid argument";
  case MTC_ERR_NOMEM: return "out of memory or size cap reached";
  case MTC_ERR_BUFFER_TOO_SMALL: return "output buffer too small";
  case MTC_ERR_INTERNAL: return "internal error";
  case MTC_ERR_RANDOM: return "random source failed";
  case MTC_ERR_UNSUPPORTED: return "unsupported input";
  case MTC_ERR_CRYPTO: return "crypto backend failure";
  case MTC_ERR_BAD_LENGTH: return "input length not allowed";
  case MTC_ERR_RSA_KEY: return "RSA key unparsable or unusable";
  case MTC_ERR_RSA_INPUT: return "RSA input not below the modulus";
  case MTC_ERR_DH_PRIME: return "DH prime is not a 2048-bit safe prime";
  case MTC_ERR_DH_GENERATOR: return "DH generator rejected";
  case MTC_ERR_DH_VALUE: return "DH value outside the allowed range";
  case MTC_ERR_PQ_FACTOR: return "pq is not a product of two 32-bit primes";
  case MTC_ERR_BAD_HASH: return "integrity hash mismatch";
  case MTC_ERR_TL_TRUNCATED: return "TL data truncated";
  case MTC_ERR_TL_CONSTRUCTOR: return "unexpected TL constructor";
  case MTC_ERR_TL_TOO_LONG: return "TL length or count too large";
  case MTC_ERR_TL_BAD_VALUE: return "malformed TL value";
  case MTC_ERR_TL_TRAILING: return "trailing bytes after TL value";
  case MTC_ERR_TL_DEPTH: return "TL nesting too deep";
  case MTC_ERR_GZIP: return "gzip_packed inflate failed or too large";
  }
  return "unknown error";
}

const char *mtc_version(void) { return MTC_VERSION_STRING; }
