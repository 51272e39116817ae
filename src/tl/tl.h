/*
 * TL runtime: a bounds-checked reader and a growable writer, both with a
 * sticky error. Once an error is set every later call is a no-op returning
 * zeros, so a decoder may read a whole structure and check the error once.
 *
 * Wire rules (little-endian scalars; TL bytes = len byte (<254) or
 * 0xfe + 3-byte LE length, then data, zero padding to a multiple of 4).
 */
#ifndef MTCI_TL_H
#define MTCI_TL_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

#define MTCI_TL_VECTOR_ID 0x1cb5c415u
#define MTCI_TL_BOOL_TRUE 0x997275b5u
#define MTCI_TL_BOOL_FALSE 0xbc799737u
#define MTCI_TL_MAX_BYTES (16u * 1024u * 1024u) /* largest TL string/bytes accepted */

typedef struct mtci_tl_reader {
  const uint8_t *data;
  size_t len;
  size_t pos;
  int err; /* 0 or the first negative mtc_error */
} mtci_tl_reader;

void mtci_tl_reader_init(mtci_tl_reader *r, const uint8_t *data, size_t len);
size_t mtci_tl_remaining(const mtci_tl_reader *r);
/* Sets err if it is still 0; returns the (possibly earlier) sticky error. */
int mtci_tl_fail(mtci_tl_reader *r, int err);

int32_t mtci_tl_read_int(mtci_tl_reader *r);
uint32_t mtci_tl_read_u32(mtci_tl_reader *r);
int64_t mtci_tl_read_long(mtci_tl_reader *r);
double mtci_tl_read_double(mtci_tl_reader *r);
void mtci_tl_read_int128(mtci_tl_reader *r, uint8_t out[16]);
void mtci_tl_read_int256(mtci_tl_reader *r, uint8_t out[32]);
void mtci_tl_read_raw(mtci_tl_reader *r, uint8_t *out, size_t n);
/* Borrowed view into the reader's data (valid while the data lives); NULL
 * with *len = 0 on error. A long form with length < 254 or a 0xff prefix is
 * MTC_ERR_TL_BAD_VALUE; padding must be present, its values are not checked. */
const uint8_t *mtci_tl_read_bytes(mtci_tl_reader *r, size_t *len);
/* Boolean: boolTrue -> 1, boolFalse -> 0, other -> MTC_ERR_TL_BAD_VALUE. */
int mtci_tl_read_bool(mtci_tl_reader *r);
/* Expect the given constructor id; otherwise MTC_ERR_TL_CONSTRUCTOR. */
void mtci_tl_expect(mtci_tl_reader *r, uint32_t id);
/* Boxed vector header: expects 0x1cb5c415 then a count; the count must fit in
 * the remaining bytes at min_elem_size bytes each (else MTC_ERR_TL_TOO_LONG). */
uint32_t mtci_tl_read_vector(mtci_tl_reader *r, size_t min_elem_size);
/* Bare vector header: the count only, same bound. */
uint32_t mtci_tl_read_bare_vector(mtci_tl_reader *r, size_t min_elem_size);
/* The next u32 (a constructor id) without consuming it or setting an error;
 * 0 when fewer than 4 bytes remain or the reader has failed. */
uint32_t mtci_tl_peek_u32(const mtci_tl_reader *r);
/* End of a top-level value: MTC_ERR_TL_TRAILING if bytes remain. Returns the
 * sticky error (0 when the whole input was consumed cleanly). */
int mtci_tl_read_end(mtci_tl_reader *r);

typedef struct mtci_tl_writer {
  uint8_t *buf;
  size_t len;  /* bytes written after the headroom */
  size_t cap;  /* allocated bytes, headroom included */
  size_t headroom;
  size_t max;  /* cap on len; 0 = MTCI_TL_MAX_BYTES * 4 */
  int err;
} mtci_tl_writer;

/* headroom: bytes reserved in front of the data so a transport can prepend
 * headers without moving the payload. Allocates at once (a failure shows as
 * err = MTC_ERR_NOMEM), so mtci_tl_writer_data() is valid for an empty
 * payload. reset zeroizes the payload and clears err, keeping the buffer. */
void mtci_tl_writer_init(mtci_tl_writer *w, size_t headroom);
void mtci_tl_writer_free(mtci_tl_writer *w); /* zeroizes the buffer */
uint8_t *mtci_tl_writer_data(const mtci_tl_writer *w); /* first payload byte */
void mtci_tl_writer_reset(mtci_tl_writer *w);

void mtci_tl_write_int(mtci_tl_writer *w, int32_t v);
void mtci_tl_write_u32(mtci_tl_writer *w, uint32_t v);
void mtci_tl_write_long(mtci_tl_writer *w, int64_t v);
void mtci_tl_write_double(mtci_tl_writer *w, double v);
void mtci_tl_write_int128(mtci_tl_writer *w, const uint8_t v[16]);
void mtci_tl_write_int256(mtci_tl_writer *w, const uint8_t v[32]);
void mtci_tl_write_raw(mtci_tl_writer *w, const void *p, size_t n);
void mtci_tl_write_bytes(mtci_tl_writer *w, const void *p, size_t n);
void mtci_tl_write_bool(mtci_tl_writer *w, int v);
void mtci_tl_write_vector(mtci_tl_writer *w, uint32_t count); /* id + count */
/* Reserve n bytes and return a pointer to them (NULL on error). */
uint8_t *mtci_tl_write_reserve(mtci_tl_writer *w, size_t n);
/* Write a TL bytes header for n data bytes plus its zero padding and return
 * a pointer to the n data bytes for the caller to fill (NULL on error, or a
 * valid pointer to the padding when n == 0). */
uint8_t *mtci_tl_write_bytes_reserve(mtci_tl_writer *w, size_t n);

#endif /* MTCI_TL_H */
