/*
 * msg_container, rpc_result/rpc_error and gzip_packed by hand (special.h).
 *
 * msg_container on the wire:
 *
 *   | dcf8f173 | count (4) | message 0 | message 1 | ... |
 *   message: | msg_id (8) | seqno (4) | bytes (4) | body (bytes, %4 == 0) |
 *
 * rpc_result:  | 016d5cf3 | req_msg_id (8) | result object ... |
 * rpc_error:   | 19ca4421 | error_code (4) | error_message (TL string) |
 * gzip_packed: | a1cf7230 | packed_data (TL bytes: gzip or zlib stream) |
 *
 * Inflated data is plaintext: every buffer that held it, zlib's own window
 * included (custom allocator below), is zeroized before it is freed.
 */
#define ZLIB_CONST
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "crypto/crypto.h"
#include "tl/special.h"
#include "bytes.h"

#define MSG_MIN_SIZE (MTCI_TL_CONTAINER_MSG_HEADER + 4u) /* header + a constructor */
#define MAX_BYTES_LEN 0xffffffu
#define INFLATE_MIN_START 4096u

/* ---- msg_container ------------------------------------------------------ */

/* Message headers are read straight from the buffer: a packet of small
 * answers holds dozens of them, each looked at twice (parse, next). */

/* The message at obj[*pos..len): its header and body checked in wire
 * order (header present, length, body present, not a container); on
 * success *pos moves past it. */
static int container_take(const uint8_t *obj, size_t len, size_t *pos, mtci_tl_message *m) {
  size_t p = *pos;
  if (len - p < MTCI_TL_CONTAINER_MSG_HEADER) return MTC_ERR_TL_TRUNCATED;
  uint32_t blen = mtci_le32(obj + p + 12);
  p += MTCI_TL_CONTAINER_MSG_HEADER;
  if (blen < 4 || blen % 4 != 0) return MTC_ERR_TL_BAD_VALUE;
  if (blen > len - p) return MTC_ERR_TL_TRUNCATED;
  if (mtci_le32(obj + p) == MTCI_TL_MSG_CONTAINER_ID) return MTC_ERR_TL_BAD_VALUE;
  if (m) {
    m->msg_id = mtci_i64_of(mtci_le64(obj + *pos));
    uint32_t seqno = mtci_le32(obj + *pos + 8);
    memcpy(&m->seqno, &seqno, sizeof m->seqno); /* two's complement, no conversion */
    m->body = obj + p;
    m->body_len = blen;
  }
  *pos = p + blen;
  return 0;
}

int mtci_tl_container_parse(mtci_tl_container *c, const uint8_t *obj, size_t len) {
  memset(c, 0, sizeof *c);
  if (!obj || len < 4) return MTC_ERR_TL_TRUNCATED;
  if (mtci_le32(obj) != MTCI_TL_MSG_CONTAINER_ID) return MTC_ERR_TL_CONSTRUCTOR;
  if (len < MTCI_TL_CONTAINER_HEADER) return MTC_ERR_TL_TRUNCATED;
  uint32_t count = mtci_le32(obj + 4);
  size_t pos = MTCI_TL_CONTAINER_HEADER;
  if (count > (len - pos) / MSG_MIN_SIZE) return MTC_ERR_TL_TOO_LONG;
  for (uint32_t i = 0; i < count; i++) { /* count <= len / 20: bounded */
    int rc = container_take(obj, len, &pos, NULL);
    if (rc) return rc;
  }
  if (pos != len) return MTC_ERR_TL_TRAILING;
  mtci_tl_reader_init(&c->r, obj, len);
  c->r.pos = MTCI_TL_CONTAINER_HEADER;
  c->count = count;
  return 0;
}

int mtci_tl_container_next(mtci_tl_container *c, mtci_tl_message *m) {
  if (c->index >= c->count || c->r.err) {
    memset(m, 0, sizeof *m);
    return c->r.err;
  }
  int rc = container_take(c->r.data, c->r.len, &c->r.pos, m); /* validated by parse */
  if (rc) {
    memset(m, 0, sizeof *m);
    return mtci_tl_fail(&c->r, rc);
  }
  c->index++;
  return 1;
}

int mtci_tl_container_write(mtci_tl_writer *w, const mtci_tl_message *msgs, size_t n) {
  if (n == 0 || n > MTCI_TL_CONTAINER_MAX_MSGS || !msgs) return MTC_ERR_INVALID_ARG;
  size_t total = MTCI_TL_CONTAINER_HEADER;
  for (size_t i = 0; i < n; i++) {
    size_t bl = msgs[i].body_len;
    if (!msgs[i].body || bl < 4 || bl % 4 != 0) return MTC_ERR_INVALID_ARG;
    if (mtci_le32(msgs[i].body) == MTCI_TL_MSG_CONTAINER_ID) return MTC_ERR_INVALID_ARG;
    if (bl > MTCI_TL_CONTAINER_MAX_BYTES) return MTC_ERR_INVALID_ARG; /* keeps the sum small */
    total += MTCI_TL_CONTAINER_MSG_HEADER + bl;
    if (total > MTCI_TL_CONTAINER_MAX_BYTES) return MTC_ERR_INVALID_ARG;
  }
  mtci_tl_write_u32(w, MTCI_TL_MSG_CONTAINER_ID);
  mtci_tl_write_u32(w, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    mtci_tl_write_long(w, msgs[i].msg_id);
    mtci_tl_write_int(w, msgs[i].seqno);
    mtci_tl_write_u32(w, (uint32_t)msgs[i].body_len);
    mtci_tl_write_raw(w, msgs[i].body, msgs[i].body_len);
  }
  return w->err;
}

/* ---- rpc_result / rpc_error -------------------------------------------- */

int mtci_tl_rpc_result_parse(const uint8_t *obj, size_t len, mtci_tl_rpc_result *out) {
  memset(out, 0, sizeof *out);
  if (!obj || len < 4) return MTC_ERR_TL_TRUNCATED;
  if (mtci_le32(obj) != MTCI_TL_RPC_RESULT_ID) return MTC_ERR_TL_CONSTRUCTOR;
  if (len < 12) return MTC_ERR_TL_TRUNCATED;
  size_t rest = len - 12;
  if (rest < 4) return MTC_ERR_TL_TRUNCATED;
  if (rest % 4 != 0) return MTC_ERR_TL_BAD_VALUE;
  out->req_msg_id = mtci_i64_of(mtci_le64(obj + 4));
  out->result = obj + 12;
  out->result_len = rest;
  return 0;
}

int mtci_tl_rpc_error_parse(const uint8_t *obj, size_t len, mtci_tl_rpc_error *out) {
  memset(out, 0, sizeof *out);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  uint32_t id = mtci_tl_read_u32(&r);
  if (r.err) return r.err;
  if (id != MTCI_TL_RPC_ERROR_ID) return 0;
  int32_t code = mtci_tl_read_int(&r);
  size_t mlen;
  const uint8_t *msg = mtci_tl_read_bytes(&r, &mlen);
  int rc = mtci_tl_read_end(&r);
  if (rc) return rc;
  out->code = code;
  out->message = (const char *)msg;
  out->message_len = mlen;
  size_t k = mlen < MTCI_TL_RPC_ERROR_TEXT_MAX ? mlen : MTCI_TL_RPC_ERROR_TEXT_MAX;
  if (k) memcpy(out->text, msg, k);
  out->text[k] = '\0';
  return 1;
}

int mtci_tl_rpc_error_suffix(const mtci_tl_rpc_error *e, const char *prefix, int32_t *value) {
  size_t pl = strlen(prefix);
  size_t tl = strnlen(e->text, sizeof e->text);
  if (tl != e->message_len || tl <= pl || tl - pl > 9) return 0;
  if (memcmp(e->text, prefix, pl) != 0) return 0;
  int32_t v = 0;
  for (size_t i = pl; i < tl; i++) {
    char ch = e->text[i];
    if (ch < '0' || ch > '9') return 0;
    v = v * 10 + (ch - '0'); /* at most 9 digits: no overflow */
  }
  *value = v;
  return 1;
}

/* ---- zlib with zeroizing allocations ------------------------------------- */

typedef union zhdr {
  max_align_t align;
  size_t size;
} zhdr;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
  (void)opaque;
  if (size && items > (SIZE_MAX - sizeof(zhdr)) / size) return Z_NULL;
  size_t n = (size_t)items * size;
  zhdr *h = malloc(sizeof *h + n);
  if (!h) return Z_NULL;
  h->size = n;
  return h + 1;
}

static void z_free(voidpf opaque, voidpf p) {
  (void)opaque;
  if (!p) return;
  zhdr *h = (zhdr *)p - 1;
  mtci_zeroize(h + 1, h->size);
  free(h);
}

/* ---- inflate -------------------------------------------------------------- */

typedef struct outbuf {
  uint8_t *p;
  size_t size; /* allocated (or given) */
  size_t used;
  size_t cap;    /* most bytes the output may reach */
  int growable;  /* p is ours to replace */
} outbuf;

static void outbuf_free(outbuf *o) {
  if (o->p) mtci_zeroize(o->p, o->size);
  free(o->p);
  o->p = NULL;
  o->size = o->used = 0;
}

static int outbuf_grow(outbuf *o, size_t first) {
  size_t ns = o->size ? (o->size > o->cap / 2 ? o->cap : o->size * 2) : first;
  if (ns > o->cap) ns = o->cap;
  uint8_t *np = malloc(ns);
  if (!np) return MTC_ERR_NOMEM;
  if (o->p) {
    memcpy(np, o->p, o->used);
    mtci_zeroize(o->p, o->size);
    free(o->p);
  }
  o->p = np;
  o->size = ns;
  return 0;
}

/*
 * Runs a gzip/zlib stream (auto-detected: windowBits 15 + 32) into o. Once
 * o is full at its cap, inflate continues into a small probe buffer only to
 * see whether the stream ends there: any further byte means "over cap".
 */
static int inflate_run(const uint8_t *src, size_t n, outbuf *o, size_t first) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  zs.zalloc = z_alloc;
  zs.zfree = z_free;
  int zr = inflateInit2(&zs, 15 + 32);
  if (zr != Z_OK) return zr == Z_MEM_ERROR ? MTC_ERR_NOMEM : MTC_ERR_GZIP;
  const uint8_t *in = src;
  size_t in_left = n;
  uint8_t probe[64];
  int rc = 0;
  for (;;) { /* every Z_OK round consumes input or produces output: bounded */
    if (zs.avail_in == 0 && in_left) {
      uInt k = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
      zs.next_in = in;
      zs.avail_in = k;
      in += k;
      in_left -= k;
    }
    int probing = 0;
    if (o->used == o->size) {
      if (o->growable && o->size < o->cap) {
        rc = outbuf_grow(o, first);
        if (rc) break;
      } else {
        probing = 1;
      }
    }
    if (probing) {
      zs.next_out = probe;
      zs.avail_out = sizeof probe;
    } else {
      size_t room = o->size - o->used;
      zs.next_out = o->p + o->used;
      zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
    }
    uInt before = zs.avail_out;
    zr = inflate(&zs, Z_NO_FLUSH);
    size_t produced = before - zs.avail_out;
    if (probing) {
      mtci_zeroize(probe, sizeof probe);
      if (produced) {
        rc = MTC_ERR_GZIP; /* more than cap bytes */
        break;
      }
    } else {
      o->used += produced;
    }
    if (zr == Z_STREAM_END) {
      if (zs.avail_in || in_left) rc = MTC_ERR_GZIP; /* bytes after the stream */
      break;
    }
    if (zr == Z_OK) continue;
    /* Z_BUF_ERROR here means input ran out mid-stream; the rest are corrupt
     * data, a dictionary request or zlib failing. */
    rc = zr == Z_MEM_ERROR ? MTC_ERR_NOMEM : MTC_ERR_GZIP;
    break;
  }
  inflateEnd(&zs);
  return rc;
}

int mtci_tl_gzip_inflate_into(const uint8_t *src, size_t n, uint8_t *out, size_t out_cap,
                              size_t *out_len) {
  *out_len = 0;
  if ((!src && n) || (!out && out_cap)) return MTC_ERR_INVALID_ARG;
  outbuf o = {out, out_cap, 0, out_cap, 0};
  int rc = inflate_run(src ? src : (const uint8_t *)"", n, &o, 0);
  if (rc) {
    if (out_cap) mtci_zeroize(out, out_cap);
    return rc;
  }
  *out_len = o.used;
  return 0;
}

int mtci_tl_gzip_unpack(const uint8_t *obj, size_t len, size_t cap, mtci_tl_unwrapped *out) {
  memset(out, 0, sizeof *out);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, obj, len);
  mtci_tl_expect(&r, MTCI_TL_GZIP_PACKED_ID);
  size_t plen;
  const uint8_t *packed = mtci_tl_read_bytes(&r, &plen);
  int rc = mtci_tl_read_end(&r);
  if (rc) return rc;
  if (cap == 0) cap = MTCI_TL_GZIP_DEFAULT_CAP;
  /* start near a typical ratio, grow by doubling, never beyond cap */
  size_t first = plen < cap / 4 ? plen * 4 : cap;
  if (first < INFLATE_MIN_START) first = INFLATE_MIN_START < cap ? INFLATE_MIN_START : cap;
  outbuf o = {NULL, 0, 0, cap, 1};
  rc = inflate_run(packed, plen, &o, first);
  if (!rc) {
    if (o.used < 4) rc = MTC_ERR_TL_TRUNCATED;
    else if (o.used % 4 != 0) rc = MTC_ERR_TL_BAD_VALUE;
    else if (mtci_le32(o.p) == MTCI_TL_GZIP_PACKED_ID) rc = MTC_ERR_TL_DEPTH; /* one level only */
  }
  if (rc) {
    outbuf_free(&o);
    return rc;
  }
  out->data = o.p;
  out->len = o.used;
  out->owned = o.p;
  out->owned_size = o.size;
  return 0;
}

int mtci_tl_unwrap(const uint8_t *obj, size_t len, size_t cap, mtci_tl_unwrapped *out) {
  memset(out, 0, sizeof *out);
  if (!obj || len < 4) return MTC_ERR_TL_TRUNCATED;
  if (mtci_le32(obj) == MTCI_TL_GZIP_PACKED_ID) return mtci_tl_gzip_unpack(obj, len, cap, out);
  out->data = obj;
  out->len = len;
  return 0;
}

void mtci_tl_unwrapped_free(mtci_tl_unwrapped *u) {
  if (u->owned) {
    mtci_zeroize(u->owned, u->owned_size);
    free(u->owned);
  }
  memset(u, 0, sizeof *u);
}

/* ---- deflate ---------------------------------------------------------------- */

int mtci_tl_gzip_pack(mtci_tl_writer *w, const uint8_t *obj, size_t len) {
  if (w->err) return w->err;
  if (!obj || len < 4 || len % 4 != 0 || len > (size_t)MTCI_TL_MAX_BYTES * 4u)
    return MTC_ERR_INVALID_ARG;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  zs.zalloc = z_alloc;
  zs.zfree = z_free;
  /* windowBits 15 + 16: gzip wrapper (mtime 0, no name), as servers send */
  int zr = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  if (zr != Z_OK) return zr == Z_MEM_ERROR ? MTC_ERR_NOMEM : MTC_ERR_GZIP;
  /* Room for the worst case, but no more than a TL bytes value can carry
   * (+1 so "did not fit" is visible). */
  uLong bound = deflateBound(&zs, (uLong)len);
  size_t tsize = bound > MAX_BYTES_LEN ? (size_t)MAX_BYTES_LEN + 1 : (size_t)bound;
  uint8_t *tmp = malloc(tsize);
  if (!tmp) {
    deflateEnd(&zs);
    return MTC_ERR_NOMEM;
  }
  zs.next_in = obj;
  zs.avail_in = (uInt)len; /* <= 64 MiB */
  zs.next_out = tmp;
  zs.avail_out = (uInt)tsize;
  zr = deflate(&zs, Z_FINISH);
  size_t clen = tsize - zs.avail_out;
  deflateEnd(&zs);
  int rc = 0;
  if (zr != Z_STREAM_END) rc = (zr == Z_OK || zr == Z_BUF_ERROR) ? MTC_ERR_TL_TOO_LONG : MTC_ERR_GZIP;
  else if (clen > MAX_BYTES_LEN) rc = MTC_ERR_TL_TOO_LONG;
  if (!rc) {
    mtci_tl_write_u32(w, MTCI_TL_GZIP_PACKED_ID);
    mtci_tl_write_bytes(w, tmp, clen);
    rc = w->err;
  }
  mtci_zeroize(tmp, tsize);
  free(tmp);
  return rc;
}
