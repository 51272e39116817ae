/*
 * Declarative TLS ClientHello templates (PROTOCOL.md §5.2) and the small
 * interpreter that turns one into bytes.
 *
 * A template is a static array of ops ending with MTCI_TLS_OP_DONE:
 *
 *   BYTES(s)       literal bytes            RANDOM(n)   n bytes from the RNG
 *   ZERO(n)        n zero bytes             DOMAIN      the SNI host name
 *   GREASE(i)      greases[i] twice         KEY         32-byte X25519 public key
 *   BEGIN / END    a 2-byte big-endian length prefix around what lies between
 *   PERM(n) ALT... ALT_END ... PERM_END
 *                  n alternatives, each closed by ALT_END, written in an
 *                  order shuffled per hello
 *   PADDING(t)     the padding extension's body: a 2-byte length and zeros
 *                  so that the whole hello is exactly t bytes
 *
 * Nothing here knows about secrets or HMAC; faketls.c fills the random
 * field afterwards.
 */
#ifndef MTCI_TRANSPORT_TLS_TEMPLATE_H
#define MTCI_TRANSPORT_TLS_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

enum mtci_tls_op_kind {
  MTCI_TLS_OP_DONE = 0,
  MTCI_TLS_OP_BYTES,
  MTCI_TLS_OP_RANDOM,
  MTCI_TLS_OP_ZERO,
  MTCI_TLS_OP_DOMAIN,
  MTCI_TLS_OP_GREASE,
  MTCI_TLS_OP_KEY,
  MTCI_TLS_OP_BEGIN,
  MTCI_TLS_OP_END,
  MTCI_TLS_OP_PERM,
  MTCI_TLS_OP_ALT_END,
  MTCI_TLS_OP_PERM_END,
  MTCI_TLS_OP_PADDING
};

typedef struct mtci_tls_op {
  uint8_t kind;        /* enum mtci_tls_op_kind */
  uint16_t n;          /* byte count, grease index, alternative count or target size */
  const char *bytes;   /* MTCI_TLS_OP_BYTES only */
} mtci_tls_op;

#define MTCI_TLS_GREASE_COUNT 7 /* tdlib uses 7 GREASE values */
#define MTCI_TLS_MAX_ALTS 16    /* alternatives in one PERM group */
#define MTCI_TLS_MAX_SCOPES 8   /* nesting of BEGIN/END */

/* tdlib's non-Darwin "Chrome-like" template (§5.2): 517 bytes, 15 shuffled
 * extensions. */
extern const mtci_tls_op mtci_tls_chrome_template[];

/* Inputs of one run. */
typedef struct mtci_tls_build {
  const uint8_t *domain;
  size_t domain_len;
  uint8_t greases[MTCI_TLS_GREASE_COUNT]; /* already derived (§5.3) */
  mtc_random_fn rnd;                      /* RANDOM, KEY and the shuffles */
  void *rnd_ud;
  int no_shuffle;          /* test hook: alternatives in listed order */
  const uint8_t *fixed_key; /* test hook: 32 bytes used for KEY as they are */
} mtci_tls_build;

/*
 * Interpret ops into out[0..cap). On success *out_len is the size written.
 * Errors: MTC_ERR_TLS_HELLO_TOO_LONG if the content does not fit in cap or
 * PADDING finds more than target-3 bytes before it; MTC_ERR_INTERNAL for a
 * malformed template; the RNG's or X25519's error.
 * Randomness is drawn in template order: RANDOM/KEY where they stand, and
 * for each PERM group (when shuffling) n-1 uint32 values, Fisher-Yates.
 */
int mtci_tls_template_run(const mtci_tls_op *ops, const mtci_tls_build *in, uint8_t *out,
                          size_t cap, size_t *out_len);

/* GREASE values from 7 random bytes (§5.3): (b & 0xf0) | 0x0a, and each odd
 * index differs from the one before. Modifies g in place. */
void mtci_tls_grease_derive(uint8_t g[MTCI_TLS_GREASE_COUNT]);

#endif /* MTCI_TRANSPORT_TLS_TEMPLATE_H */
