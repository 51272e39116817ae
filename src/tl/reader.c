/*
 * TL reader: every read is bounds-checked against the input; the first
 * failure sticks in r->err and turns every later read into a no-op that
 * returns zeros without moving pos.
 *
 * TL bytes/string on the wire:
 *
 *   short (len < 254):  | len (1) | data (len) | pad to a multiple of 4 |
 *   long  (len >= 254): | 0xfe | len (3, LE) | data (len) | pad to 4 |
 *
 * Decisions:
 *   - the long form must carry len >= 254 (anything shorter has exactly one
 *     encoding, the short form): MTC_ERR_TL_BAD_VALUE; a first byte 0xff is
 *     MTC_ERR_TL_BAD_VALUE too;
 *   - padding must be present in the input (MTC_ERR_TL_TRUNCATED otherwise)
 *     but its byte values are not checked. Telegram servers send zeros; tdlib,
 *     grammers and Telethon ignore the values, and an authenticated message
 *     that carries a nonzero pad byte is still unambiguous. So decode ->
 *     encode is byte-identical only for canonical (zero-padded) input.
 */
#include <string.h>

#include "tl/tl.h"
#include "bytes.h"

void mtci_tl_reader_init(mtci_tl_reader *r, const uint8_t *data, size_t len) {
  static const uint8_t empty[1];
  r->data = data ? data : empty; /* never offset a null pointer */
  r->len = data ? len : 0;
  r->pos = 0;
  r->err = 0;
}

size_t mtci_tl_remaining(const mtci_tl_reader *r) {
  return r->err ? 0 : r->len - r->pos;
}

int mtci_tl_fail(mtci_tl_reader *r, int err) {
  if (!r->err) r->err = err;
  return r->err;
}

/* Consumes n bytes and returns them, or NULL (error set) if they are not all
 * there. */
static const uint8_t *take(mtci_tl_reader *r, size_t n) {
  if (r->err) return NULL;
  if (r->len - r->pos < n) {
    mtci_tl_fail(r, MTC_ERR_TL_TRUNCATED);
    return NULL;
  }
  const uint8_t *p = r->data + r->pos;
  r->pos += n;
  return p;
}

uint32_t mtci_tl_read_u32(mtci_tl_reader *r) {
  const uint8_t *p = take(r, 4);
  return p ? mtci_le32(p) : 0;
}

int32_t mtci_tl_read_int(mtci_tl_reader *r) {
  uint32_t u = mtci_tl_read_u32(r);
  int32_t v;
  memcpy(&v, &u, sizeof v); /* two's complement reinterpretation, no UB */
  return v;
}

static uint64_t read_u64(mtci_tl_reader *r) {
  const uint8_t *p = take(r, 8);
  if (!p) return 0;
  return (uint64_t)mtci_le32(p) | (uint64_t)mtci_le32(p + 4) << 32;
}

int64_t mtci_tl_read_long(mtci_tl_reader *r) {
  uint64_t u = read_u64(r);
  int64_t v;
  memcpy(&v, &u, sizeof v);
  return v;
}

double mtci_tl_read_double(mtci_tl_reader *r) {
  uint64_t u = read_u64(r);
  double v;
  memcpy(&v, &u, sizeof v); /* IEEE 754 binary64, little-endian on the wire */
  return v;
}

void mtci_tl_read_raw(mtci_tl_reader *r, uint8_t *out, size_t n) {
  const uint8_t *p = take(r, n);
  if (n == 0) return;
  if (p) memcpy(out, p, n);
  else memset(out, 0, n);
}

void mtci_tl_read_int128(mtci_tl_reader *r, uint8_t out[16]) { mtci_tl_read_raw(r, out, 16); }

void mtci_tl_read_int256(mtci_tl_reader *r, uint8_t out[32]) { mtci_tl_read_raw(r, out, 32); }

const uint8_t *mtci_tl_read_bytes(mtci_tl_reader *r, size_t *len) {
  *len = 0;
  if (r->err) return NULL;
  if (r->len - r->pos < 1) {
    mtci_tl_fail(r, MTC_ERR_TL_TRUNCATED);
    return NULL;
  }
  const uint8_t *p = r->data + r->pos;
  size_t n, head;
  if (p[0] < 254) {
    n = p[0];
    head = 1;
  } else if (p[0] == 254) {
    if (r->len - r->pos < 4) {
      mtci_tl_fail(r, MTC_ERR_TL_TRUNCATED);
      return NULL;
    }
    n = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16;
    head = 4;
    if (n < 254) { /* non-canonical: the short form is the only encoding */
      mtci_tl_fail(r, MTC_ERR_TL_BAD_VALUE);
      return NULL;
    }
  } else {
    mtci_tl_fail(r, MTC_ERR_TL_BAD_VALUE); /* 0xff is no length prefix */
    return NULL;
  }
  /* Unreachable while MTCI_TL_MAX_BYTES > 0xffffff; kept so a lower cap
   * takes effect here. */
  if (n > MTCI_TL_MAX_BYTES) {
    mtci_tl_fail(r, MTC_ERR_TL_TOO_LONG);
    return NULL;
  }
  size_t total = (head + n + 3) & ~(size_t)3;
  if (!take(r, total)) return NULL;
  *len = n;
  return p + head;
}

int mtci_tl_read_bool(mtci_tl_reader *r) {
  uint32_t id = mtci_tl_read_u32(r);
  if (r->err) return 0;
  if (id == MTCI_TL_BOOL_TRUE) return 1;
  if (id == MTCI_TL_BOOL_FALSE) return 0;
  mtci_tl_fail(r, MTC_ERR_TL_BAD_VALUE);
  return 0;
}

void mtci_tl_expect(mtci_tl_reader *r, uint32_t id) {
  uint32_t got = mtci_tl_read_u32(r);
  if (!r->err && got != id) mtci_tl_fail(r, MTC_ERR_TL_CONSTRUCTOR);
}

uint32_t mtci_tl_read_bare_vector(mtci_tl_reader *r, size_t min_elem_size) {
  uint32_t count = mtci_tl_read_u32(r);
  if (r->err) return 0;
  /* Every TL element takes at least one byte (in practice 4), so a count the
   * remaining data cannot hold is rejected before anyone allocates for it. */
  if (min_elem_size == 0) min_elem_size = 1;
  if (count > (r->len - r->pos) / min_elem_size) {
    mtci_tl_fail(r, MTC_ERR_TL_TOO_LONG);
    return 0;
  }
  return count;
}

uint32_t mtci_tl_read_vector(mtci_tl_reader *r, size_t min_elem_size) {
  mtci_tl_expect(r, MTCI_TL_VECTOR_ID);
  return mtci_tl_read_bare_vector(r, min_elem_size);
}

uint32_t mtci_tl_peek_u32(const mtci_tl_reader *r) {
  if (r->err || r->len - r->pos < 4) return 0;
  return mtci_le32(r->data + r->pos);
}

int mtci_tl_read_end(mtci_tl_reader *r) {
  if (!r->err && r->pos != r->len) mtci_tl_fail(r, MTC_ERR_TL_TRAILING);
  return r->err;
}
