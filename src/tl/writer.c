/*
 * TL writer: a growable heap buffer with a sticky error.
 *
 *   buf: | headroom (free for transport headers) | payload (len) | spare |
 *        ^buf          mtci_tl_writer_data() -> ^
 *
 * The payload may hold plaintext, so a buffer is zeroized before it is freed,
 * both on mtci_tl_writer_free() and when it is replaced by a larger one
 * (no realloc: it could leave a stale copy behind). Exceeding the size cap or
 * a failed malloc sets MTC_ERR_NOMEM; a bytes value longer than 0xffffff
 * (the largest 3-byte length) sets MTC_ERR_TL_TOO_LONG.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "tl/tl.h"

#define INITIAL_PAYLOAD 64u
#define MAX_BYTES_LEN 0xffffffu /* largest length the long form can carry */

static size_t max_len(const mtci_tl_writer *w) {
  return w->max ? w->max : (size_t)MTCI_TL_MAX_BYTES * 4u;
}

static void set_err(mtci_tl_writer *w, int err) {
  if (!w->err) w->err = err;
}

/* Makes room for n more payload bytes; 0 or the sticky error. */
static int ensure(mtci_tl_writer *w, size_t n) {
  if (w->err) return w->err;
  size_t lim = max_len(w);
  if (w->len > lim || n > lim - w->len || w->headroom > SIZE_MAX - lim) {
    set_err(w, MTC_ERR_NOMEM);
    return w->err;
  }
  size_t need = w->headroom + w->len + n; /* <= headroom + lim: no overflow */
  if (w->buf && need <= w->cap) return 0;
  size_t ceiling = w->headroom + lim;
  size_t ncap = w->cap > w->headroom ? w->cap
                 : w->headroom + (lim < INITIAL_PAYLOAD ? lim : INITIAL_PAYLOAD);
  while (ncap < need) ncap = ncap > ceiling / 2 ? ceiling : ncap * 2; /* ncap >= 1 */
  uint8_t *nbuf = malloc(ncap);
  if (!nbuf) {
    set_err(w, MTC_ERR_NOMEM);
    return w->err;
  }
  if (w->buf) {
    memcpy(nbuf, w->buf, w->headroom + w->len);
    mtci_zeroize(w->buf, w->cap);
    free(w->buf);
  } else {
    memset(nbuf, 0, w->headroom);
  }
  w->buf = nbuf;
  w->cap = ncap;
  return 0;
}

void mtci_tl_writer_init(mtci_tl_writer *w, size_t headroom) {
  w->buf = NULL;
  w->len = 0;
  w->cap = 0;
  w->headroom = headroom;
  w->max = 0;
  w->err = 0;
  /* Allocate now so mtci_tl_writer_data() is valid even for an empty
   * payload; a failure stays in w->err. */
  ensure(w, 0);
}

void mtci_tl_writer_free(mtci_tl_writer *w) {
  if (w->buf) {
    mtci_zeroize(w->buf, w->cap);
    free(w->buf);
  }
  w->buf = NULL;
  w->len = 0;
  w->cap = 0;
  w->err = 0;
}

uint8_t *mtci_tl_writer_data(const mtci_tl_writer *w) {
  return w->buf ? w->buf + w->headroom : NULL;
}

void mtci_tl_writer_reset(mtci_tl_writer *w) {
  if (w->buf) mtci_zeroize(w->buf + w->headroom, w->len);
  w->len = 0;
  w->err = 0;
}

uint8_t *mtci_tl_write_reserve(mtci_tl_writer *w, size_t n) {
  if (ensure(w, n)) return NULL;
  uint8_t *p = w->buf + w->headroom + w->len;
  if (n) memset(p, 0, n);
  w->len += n;
  return p;
}

void mtci_tl_write_raw(mtci_tl_writer *w, const void *p, size_t n) {
  uint8_t *dst = mtci_tl_write_reserve(w, n);
  if (dst && n) memcpy(dst, p, n);
}

void mtci_tl_write_u32(mtci_tl_writer *w, uint32_t v) {
  uint8_t *p = mtci_tl_write_reserve(w, 4);
  if (!p) return;
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

void mtci_tl_write_int(mtci_tl_writer *w, int32_t v) {
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  mtci_tl_write_u32(w, u);
}

static void write_u64(mtci_tl_writer *w, uint64_t v) {
  uint8_t *p = mtci_tl_write_reserve(w, 8);
  if (!p) return;
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void mtci_tl_write_long(mtci_tl_writer *w, int64_t v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  write_u64(w, u);
}

void mtci_tl_write_double(mtci_tl_writer *w, double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  write_u64(w, u);
}

void mtci_tl_write_int128(mtci_tl_writer *w, const uint8_t v[16]) { mtci_tl_write_raw(w, v, 16); }

void mtci_tl_write_int256(mtci_tl_writer *w, const uint8_t v[32]) { mtci_tl_write_raw(w, v, 32); }

uint8_t *mtci_tl_write_bytes_reserve(mtci_tl_writer *w, size_t n) {
  if (w->err) return NULL;
  if (n > MAX_BYTES_LEN) {
    set_err(w, MTC_ERR_TL_TOO_LONG);
    return NULL;
  }
  size_t head = n < 254 ? 1 : 4;
  uint8_t *p = mtci_tl_write_reserve(w, (head + n + 3) & ~(size_t)3); /* zeroed: padding */
  if (!p) return NULL;
  if (head == 1) {
    p[0] = (uint8_t)n;
  } else {
    p[0] = 254;
    p[1] = (uint8_t)n;
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)(n >> 16);
  }
  return p + head;
}

void mtci_tl_write_bytes(mtci_tl_writer *w, const void *p, size_t n) {
  uint8_t *dst = mtci_tl_write_bytes_reserve(w, n);
  if (dst && n) memcpy(dst, p, n);
}

void mtci_tl_write_bool(mtci_tl_writer *w, int v) {
  mtci_tl_write_u32(w, v ? MTCI_TL_BOOL_TRUE : MTCI_TL_BOOL_FALSE);
}

void mtci_tl_write_vector(mtci_tl_writer *w, uint32_t count) {
  mtci_tl_write_u32(w, MTCI_TL_VECTOR_ID);
  mtci_tl_write_u32(w, count);
}
