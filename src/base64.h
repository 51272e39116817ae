/*
 * Base64 (RFC 4648) shared by every module that meets it: MTProxy secrets
 * (standard or URL alphabet, '=' optional) and the DoH simple config
 * (standard alphabet, '=' required). Pure; no allocation.
 *
 * Decoding is strict: no whitespace or other characters (callers that want
 * to drop junk filter first), at most two '=' and only at the end, and the
 * canonical form only — the unused low bits of the last character must be
 * zero, so every byte string has exactly one accepted spelling per
 * alphabet and padding style.
 */
#ifndef MTCI_BASE64_H
#define MTCI_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

enum {
  /* Alphabet. Give one or both; with both the input picks one by the
   * characters it uses ('+' '/' vs '-' '_'), and mixing them is an error. */
  MTCI_B64_STD = 1u << 0, /* A-Z a-z 0-9 + / */
  MTCI_B64_URL = 1u << 1, /* A-Z a-z 0-9 - _ */
  /* Padding. Neither flag: '=' optional, but when present the length must
   * be a multiple of 4. */
  MTCI_B64_PAD_REQUIRED = 1u << 2, /* length % 4 == 0, the last quantum filled with '=' */
  MTCI_B64_PAD_FORBIDDEN = 1u << 3 /* no '=' at all */
};

/* Bytes needed to decode n characters (an upper bound). */
#define MTCI_BASE64_DECODED_MAX(n) ((n) / 4 * 3 + 2)
/* Characters (without the NUL) that mtci_base64_encode writes for n bytes. */
#define MTCI_BASE64_ENCODED_LEN(n, padded)                                                         \
  ((padded) ? ((n) + 2) / 3 * 4 : (n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/*
 * Decode in[0..n) into out[0..cap). Returns 0 with *out_len set, or:
 *   MTC_ERR_INVALID_ARG      the text is not base64 under `flags` (a
 *                            character outside the alphabet, mixed alphabets,
 *                            bad or missing padding, a dangling character,
 *                            non-zero unused bits) or no alphabet was given;
 *   MTC_ERR_BUFFER_TOO_SMALL the result would not fit in cap bytes.
 * The checks on the shape (alphabet mix, padding, length) come before the
 * size check, which comes before the per-character check. out is not
 * cleared on failure; it may hold partial output.
 */
int mtci_base64_decode(const char *in, size_t n, unsigned flags, uint8_t *out, size_t cap,
                       size_t *out_len);

/*
 * Encode in[0..n) with the alphabet chosen by flags (MTCI_B64_URL alone
 * selects '-' '_', anything else '+' '/'), '=' padded unless
 * MTCI_B64_PAD_FORBIDDEN. Writes a NUL-terminated string into out[0..cap)
 * and returns 0 with *out_len = characters written (NUL excluded), or
 * MTC_ERR_BUFFER_TOO_SMALL / MTC_ERR_INVALID_ARG.
 */
int mtci_base64_encode(const uint8_t *in, size_t n, unsigned flags, char *out, size_t cap,
                       size_t *out_len);

#endif /* MTCI_BASE64_H */
