/*
 * Generic TL object codec driven by the tables tlgen generates (tl_gen.h).
 *
 * Struct members are reached as bytes at their offsets and copied with
 * memcpy, so no member is accessed through a mismatched type and nothing
 * needs alignment beyond what the compiler gave the struct.
 *
 * Wire shapes handled here (all little-endian):
 *   boxed object:  | id (4) | fields... |
 *   bare object:   | fields... |
 *   # field:       | u32 |; flags.N?T fields follow only when bit N is set
 *   Vector<T>:     | 0x1cb5c415 | count (4) | elements |
 *   vector<T>:     | count (4) | elements |
 *   Bool:          | 0x997275b5 (true) or 0xbc799737 (false) |
 *   !X:            | the wrapped boxed object, copied verbatim |
 *
 * Decoding allocates each object with calloc and fills it in place; a failure
 * anywhere frees the partial object (absent members are zero/NULL, so the
 * ordinary free walks it safely). A vector count is checked against the
 * remaining input (count * smallest element encoding) before its array is
 * allocated, and nesting stops at MTCI_TL_MAX_DEPTH.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "tl/tl_gen.h"

/* Ids that no schema line describes (handled by hand); named for logs. */
static const struct {
  uint32_t id;
  const char *name;
} service_names[] = {{0x1cb5c415u, "vector"},      {0xf35c6d01u, "rpc_result"},
                     {0x73f1f8dcu, "msg_container"}, {0x3072cfa1u, "gzip_packed"},
                     {0xe06046b2u, "msg_copy"}};

const mtci_tl_ctor_desc *mtci_tl_find(uint32_t id) {
  size_t lo = 0, hi = mtci_tl_nctors;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const mtci_tl_ctor_desc *c = &mtci_tl_ctors[mtci_tl_ctor_order[mid]];
    if (c->id == id) return c;
    if (c->id < id) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

/* In-memory size of one value of a kind (vector element size); also used by
 * the tests to lay out random values. */
size_t mtci_tl_value_size(unsigned kind) {
  switch (kind) {
  case MTCI_TLK_INT: return sizeof(int32_t);
  case MTCI_TLK_LONG: return sizeof(int64_t);
  case MTCI_TLK_DOUBLE: return sizeof(double);
  case MTCI_TLK_INT128: return 16;
  case MTCI_TLK_INT256: return 32;
  case MTCI_TLK_BYTES: case MTCI_TLK_RAW: return sizeof(mtc_tl_bytes);
  case MTCI_TLK_BOOL: case MTCI_TLK_TRUE: return sizeof(int);
  case MTCI_TLK_FLAGS: return sizeof(uint32_t);
  case MTCI_TLK_OBJ: case MTCI_TLK_BARE: return sizeof(mtc_tl_object *);
  default: return sizeof(mtc_tl_vec_int); /* VEC, BVEC */
  }
}

/* Generic view of any mtc_tl_vec_*: {uint32_t n; T *v;}. */
static void vec_get(const uint8_t *p, uint32_t *n, uint8_t **v) {
  memcpy(n, p, sizeof *n);
  memcpy(v, p + MTCI_TL_VEC_V_OFF, sizeof *v);
}

static void vec_set(uint8_t *p, uint32_t n, uint8_t *v) {
  memcpy(p, &n, sizeof n);
  memcpy(p + MTCI_TL_VEC_V_OFF, &v, sizeof v);
}

static const mtc_tl_object *get_ptr(const uint8_t *p) {
  const mtc_tl_object *o;
  memcpy(&o, p, sizeof o);
  return o;
}

/* ---- encoding ---------------------------------------------------------------- */

static void wfail(mtci_tl_writer *w, int err) {
  if (!w->err) w->err = err;
}

static void enc_body(mtci_tl_writer *w, const mtci_tl_ctor_desc *c, const uint8_t *obj, int depth);

static void enc_object(mtci_tl_writer *w, const mtc_tl_object *o, unsigned group, int depth) {
  if (w->err) return;
  if (depth > MTCI_TL_MAX_DEPTH) { wfail(w, MTC_ERR_TL_DEPTH); return; }
  if (!o) { wfail(w, MTC_ERR_INVALID_ARG); return; }
  const mtci_tl_ctor_desc *c = mtci_tl_find(o->id);
  if (!c || (group != MTCI_TL_ANY && (c->is_method || c->group != group)))
    { wfail(w, MTC_ERR_INVALID_ARG); return; }
  mtci_tl_write_u32(w, c->id);
  enc_body(w, c, (const uint8_t *)o, depth);
}

static void enc_value(mtci_tl_writer *w, const uint8_t *p, unsigned type, int depth) {
  const mtci_tl_type_desc *t = &mtci_tl_types[type];
  if (w->err) return;
  switch (t->kind) {
  case MTCI_TLK_INT: {
    int32_t v;
    memcpy(&v, p, sizeof v);
    mtci_tl_write_int(w, v);
    return;
  }
  case MTCI_TLK_LONG: {
    int64_t v;
    memcpy(&v, p, sizeof v);
    mtci_tl_write_long(w, v);
    return;
  }
  case MTCI_TLK_DOUBLE: {
    double v;
    memcpy(&v, p, sizeof v);
    mtci_tl_write_double(w, v);
    return;
  }
  case MTCI_TLK_INT128: mtci_tl_write_raw(w, p, 16); return;
  case MTCI_TLK_INT256: mtci_tl_write_raw(w, p, 32); return;
  case MTCI_TLK_FLAGS: {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    mtci_tl_write_u32(w, v);
    return;
  }
  case MTCI_TLK_BOOL: {
    int v;
    memcpy(&v, p, sizeof v);
    mtci_tl_write_bool(w, v);
    return;
  }
  case MTCI_TLK_TRUE: return;
  case MTCI_TLK_BYTES:
  case MTCI_TLK_RAW: {
    mtc_tl_bytes b;
    memcpy(&b, p, sizeof b);
    if (b.len && !b.data) { wfail(w, MTC_ERR_INVALID_ARG); return; }
    if (t->kind == MTCI_TLK_BYTES) {
      mtci_tl_write_bytes(w, b.data, b.len);
      return;
    }
    /* !X: a complete boxed object, so at least an id and whole words */
    if (b.len < 4 || b.len % 4) { wfail(w, MTC_ERR_INVALID_ARG); return; }
    mtci_tl_write_raw(w, b.data, b.len);
    return;
  }
  case MTCI_TLK_OBJ: enc_object(w, get_ptr(p), t->arg, depth + 1); return;
  case MTCI_TLK_BARE: {
    const mtc_tl_object *o = get_ptr(p);
    if (depth + 1 > MTCI_TL_MAX_DEPTH) { wfail(w, MTC_ERR_TL_DEPTH); return; }
    const mtci_tl_ctor_desc *c = &mtci_tl_ctors[t->arg];
    if (!o || o->id != c->id) { wfail(w, MTC_ERR_INVALID_ARG); return; }
    enc_body(w, c, (const uint8_t *)o, depth + 1);
    return;
  }
  case MTCI_TLK_VEC:
  case MTCI_TLK_BVEC: {
    uint32_t n;
    uint8_t *v;
    vec_get(p, &n, &v);
    if (depth + 1 > MTCI_TL_MAX_DEPTH) { wfail(w, MTC_ERR_TL_DEPTH); return; }
    if (n && !v) { wfail(w, MTC_ERR_INVALID_ARG); return; }
    if (t->kind == MTCI_TLK_VEC) mtci_tl_write_vector(w, n);
    else mtci_tl_write_u32(w, n);
    size_t es = mtci_tl_value_size(mtci_tl_types[t->arg].kind);
    for (uint32_t i = 0; i < n && !w->err; i++) enc_value(w, v + (size_t)i * es, t->arg, depth + 1);
    return;
  }
  default: wfail(w, MTC_ERR_INTERNAL);
  }
}

static void enc_body(mtci_tl_writer *w, const mtci_tl_ctor_desc *c, const uint8_t *obj, int depth) {
  const mtci_tl_field_desc *fd = &mtci_tl_fields[c->first_field];
  uint32_t fv[MTCI_TL_MAX_FLAGS] = {0};
  for (unsigned i = 0; i < c->nfields && !w->err; i++) {
    const mtci_tl_field_desc *f = &fd[i];
    unsigned kind = mtci_tl_types[f->type].kind;
    if (kind == MTCI_TLK_FLAGS) {
      /* the word in the struct, plus the bits implied by true members and
       * present optional objects that it controls */
      uint32_t v;
      memcpy(&v, obj + f->off, sizeof v);
      for (unsigned j = i + 1; j < c->nfields; j++) {
        const mtci_tl_field_desc *g = &fd[j];
        unsigned gk = mtci_tl_types[g->type].kind;
        if (g->flag != f->flag || gk == MTCI_TLK_FLAGS) continue;
        if (gk == MTCI_TLK_TRUE) {
          int b;
          memcpy(&b, obj + g->off, sizeof b);
          if (b) v |= 1u << g->bit;
        } else if (gk == MTCI_TLK_OBJ || gk == MTCI_TLK_BARE) {
          if (get_ptr(obj + g->off)) v |= 1u << g->bit;
        }
      }
      if (f->flag >= MTCI_TL_MAX_FLAGS) { wfail(w, MTC_ERR_INTERNAL); return; }
      fv[f->flag] = v;
      mtci_tl_write_u32(w, v);
      continue;
    }
    if (f->flag != MTCI_TL_NO_FLAG) {
      if (f->flag >= MTCI_TL_MAX_FLAGS) { wfail(w, MTC_ERR_INTERNAL); return; }
      if (!((fv[f->flag] >> f->bit) & 1u)) continue;
    }
    enc_value(w, obj + f->off, f->type, depth);
  }
}

int mtci_tl_encode_object(mtci_tl_writer *w, const mtc_tl_object *obj) {
  enc_object(w, obj, MTCI_TL_ANY, 0);
  return w->err;
}

int mtci_tl_encode_bare(mtci_tl_writer *w, const mtc_tl_object *obj) {
  if (w->err) return w->err;
  const mtci_tl_ctor_desc *c = obj ? mtci_tl_find(obj->id) : NULL;
  if (!c) {
    wfail(w, MTC_ERR_INVALID_ARG);
    return w->err;
  }
  enc_body(w, c, (const uint8_t *)obj, 0);
  return w->err;
}

/* ---- freeing ------------------------------------------------------------------- */

static void free_object(mtc_tl_object *o);

static void free_value(uint8_t *p, unsigned type) {
  const mtci_tl_type_desc *t = &mtci_tl_types[type];
  switch (t->kind) {
  case MTCI_TLK_BYTES:
  case MTCI_TLK_RAW: {
    mtc_tl_bytes b;
    memcpy(&b, p, sizeof b);
    if (b.data) {
      mtci_zeroize(b.data, b.len);
      free(b.data);
    }
    return;
  }
  case MTCI_TLK_OBJ:
  case MTCI_TLK_BARE: {
    mtc_tl_object *o;
    memcpy(&o, p, sizeof o);
    free_object(o);
    return;
  }
  case MTCI_TLK_VEC:
  case MTCI_TLK_BVEC: {
    uint32_t n;
    uint8_t *v;
    vec_get(p, &n, &v);
    if (!v) return;
    unsigned ek = mtci_tl_types[t->arg].kind;
    size_t es = mtci_tl_value_size(ek);
    if (ek == MTCI_TLK_BYTES || ek == MTCI_TLK_RAW || ek == MTCI_TLK_OBJ || ek == MTCI_TLK_BARE ||
        ek == MTCI_TLK_VEC || ek == MTCI_TLK_BVEC)
      for (uint32_t i = 0; i < n; i++) free_value(v + (size_t)i * es, t->arg);
    mtci_zeroize(v, (size_t)n * es);
    free(v);
    return;
  }
  default: return;
  }
}

static void free_object(mtc_tl_object *o) {
  if (!o) return;
  const mtci_tl_ctor_desc *c = mtci_tl_find(o->id);
  if (c) {
    const mtci_tl_field_desc *fd = &mtci_tl_fields[c->first_field];
    for (unsigned i = 0; i < c->nfields; i++) free_value((uint8_t *)o + fd[i].off, fd[i].type);
    mtci_zeroize(o, c->size);
  }
  free(o);
}

void mtc_tl_object_free(mtc_tl_object *obj) { free_object(obj); }

/* ---- decoding ---------------------------------------------------------------- */

static mtc_tl_object *dec_body(mtci_tl_reader *r, const mtci_tl_ctor_desc *c, int depth);

static mtc_tl_object *dec_object(mtci_tl_reader *r, unsigned group, int depth) {
  if (r->err) return NULL;
  if (depth > MTCI_TL_MAX_DEPTH) {
    mtci_tl_fail(r, MTC_ERR_TL_DEPTH);
    return NULL;
  }
  uint32_t id = mtci_tl_read_u32(r);
  if (r->err) return NULL;
  const mtci_tl_ctor_desc *c = mtci_tl_find(id);
  if (!c || (group != MTCI_TL_ANY && (c->is_method || c->group != group))) {
    mtci_tl_fail(r, MTC_ERR_TL_CONSTRUCTOR);
    return NULL;
  }
  return dec_body(r, c, depth);
}

static void dec_value(mtci_tl_reader *r, uint8_t *p, unsigned type, int depth) {
  const mtci_tl_type_desc *t = &mtci_tl_types[type];
  if (r->err) return;
  switch (t->kind) {
  case MTCI_TLK_INT: {
    int32_t v = mtci_tl_read_int(r);
    memcpy(p, &v, sizeof v);
    return;
  }
  case MTCI_TLK_LONG: {
    int64_t v = mtci_tl_read_long(r);
    memcpy(p, &v, sizeof v);
    return;
  }
  case MTCI_TLK_DOUBLE: {
    double v = mtci_tl_read_double(r);
    memcpy(p, &v, sizeof v);
    return;
  }
  case MTCI_TLK_INT128: mtci_tl_read_raw(r, p, 16); return;
  case MTCI_TLK_INT256: mtci_tl_read_raw(r, p, 32); return;
  case MTCI_TLK_FLAGS: {
    uint32_t v = mtci_tl_read_u32(r);
    memcpy(p, &v, sizeof v);
    return;
  }
  case MTCI_TLK_BOOL: {
    int v = mtci_tl_read_bool(r);
    memcpy(p, &v, sizeof v);
    return;
  }
  case MTCI_TLK_TRUE: {
    int one = 1;
    memcpy(p, &one, sizeof one);
    return;
  }
  case MTCI_TLK_BYTES:
  case MTCI_TLK_RAW: {
    size_t start = r->pos, n = 0;
    const uint8_t *src;
    if (t->kind == MTCI_TLK_BYTES) {
      src = mtci_tl_read_bytes(r, &n);
    } else {
      /* !X: parse the wrapped object to find where it ends, keep its bytes */
      mtc_tl_object *inner = dec_object(r, MTCI_TL_ANY, depth + 1);
      free_object(inner);
      src = r->data + start;
      n = r->pos - start;
    }
    if (r->err || n == 0) return;
    mtc_tl_bytes b = {malloc(n), n};
    if (!b.data) {
      mtci_tl_fail(r, MTC_ERR_NOMEM);
      return;
    }
    memcpy(b.data, src, n);
    memcpy(p, &b, sizeof b);
    return;
  }
  case MTCI_TLK_OBJ: {
    mtc_tl_object *o = dec_object(r, t->arg, depth + 1);
    memcpy(p, &o, sizeof o);
    return;
  }
  case MTCI_TLK_BARE: {
    if (depth + 1 > MTCI_TL_MAX_DEPTH) {
      mtci_tl_fail(r, MTC_ERR_TL_DEPTH);
      return;
    }
    mtc_tl_object *o = dec_body(r, &mtci_tl_ctors[t->arg], depth + 1);
    memcpy(p, &o, sizeof o);
    return;
  }
  case MTCI_TLK_VEC:
  case MTCI_TLK_BVEC: {
    if (depth + 1 > MTCI_TL_MAX_DEPTH) {
      mtci_tl_fail(r, MTC_ERR_TL_DEPTH);
      return;
    }
    const mtci_tl_type_desc *et = &mtci_tl_types[t->arg];
    uint32_t n = t->kind == MTCI_TLK_VEC ? mtci_tl_read_vector(r, et->min_size)
                                         : mtci_tl_read_bare_vector(r, et->min_size);
    if (r->err || n == 0) return;
    size_t es = mtci_tl_value_size(et->kind);
    uint8_t *v = calloc(n, es); /* n <= remaining input bytes: bounded */
    if (!v) {
      mtci_tl_fail(r, MTC_ERR_NOMEM);
      return;
    }
    vec_set(p, n, v); /* owned by the struct from here: freed with it */
    for (uint32_t i = 0; i < n && !r->err; i++) dec_value(r, v + (size_t)i * es, t->arg, depth + 1);
    return;
  }
  default: mtci_tl_fail(r, MTC_ERR_INTERNAL);
  }
}

static mtc_tl_object *dec_body(mtci_tl_reader *r, const mtci_tl_ctor_desc *c, int depth) {
  uint8_t *obj = calloc(1, c->size);
  if (!obj) {
    mtci_tl_fail(r, MTC_ERR_NOMEM);
    return NULL;
  }
  mtc_tl_object *o = (mtc_tl_object *)(void *)obj;
  o->id = c->id;
  const mtci_tl_field_desc *fd = &mtci_tl_fields[c->first_field];
  uint32_t fv[MTCI_TL_MAX_FLAGS] = {0};
  for (unsigned i = 0; i < c->nfields && !r->err; i++) {
    const mtci_tl_field_desc *f = &fd[i];
    if (f->flag != MTCI_TL_NO_FLAG && f->flag >= MTCI_TL_MAX_FLAGS) {
      mtci_tl_fail(r, MTC_ERR_INTERNAL);
      break;
    }
    if (mtci_tl_types[f->type].kind == MTCI_TLK_FLAGS) {
      dec_value(r, obj + f->off, f->type, depth);
      memcpy(&fv[f->flag], obj + f->off, sizeof fv[0]);
      continue;
    }
    if (f->flag != MTCI_TL_NO_FLAG && !((fv[f->flag] >> f->bit) & 1u)) continue;
    dec_value(r, obj + f->off, f->type, depth);
  }
  if (r->err) {
    free_object(o);
    return NULL;
  }
  return o;
}

int mtci_tl_decode_object(mtci_tl_reader *r, mtc_tl_object **out) {
  *out = dec_object(r, MTCI_TL_ANY, 0);
  return r->err;
}

int mtci_tl_decode_bare(mtci_tl_reader *r, uint32_t id, mtc_tl_object **out) {
  *out = NULL;
  const mtci_tl_ctor_desc *c = mtci_tl_find(id);
  if (!c) return mtci_tl_fail(r, MTC_ERR_TL_CONSTRUCTOR);
  if (r->err) return r->err;
  *out = dec_body(r, c, 0);
  return r->err;
}

/* ---- public entry points --------------------------------------------------------- */

/* Copies the writer's payload into a plain malloc'ed buffer for the caller. */
static int finish(mtci_tl_writer *w, uint8_t **out, size_t *out_len) {
  int rc = w->err;
  if (!rc) {
    uint8_t *buf = malloc(w->len ? w->len : 1);
    if (!buf) {
      rc = MTC_ERR_NOMEM;
    } else {
      memcpy(buf, mtci_tl_writer_data(w), w->len);
      *out = buf;
      *out_len = w->len;
    }
  }
  mtci_tl_writer_free(w);
  return rc;
}

int mtc_tl_serialize(const mtc_tl_object *obj, uint8_t **out, size_t *out_len) {
  if (!out || !out_len) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  *out_len = 0;
  if (!obj) return MTC_ERR_INVALID_ARG;
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  enc_object(&w, obj, MTCI_TL_ANY, 0);
  return finish(&w, out, out_len);
}

int mtci_tl_request(size_t index, const mtc_tl_object *req, uint8_t **out, size_t *out_len) {
  if (!out || !out_len) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  *out_len = 0;
  if (index >= mtci_tl_nctors) return MTC_ERR_INTERNAL;
  const mtci_tl_ctor_desc *c = &mtci_tl_ctors[index];
  if (!req && c->nfields) return MTC_ERR_INVALID_ARG;
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, c->id);
  if (req) enc_body(&w, c, (const uint8_t *)req, 0);
  return finish(&w, out, out_len);
}

void mtc_tl_buffer_free(uint8_t *buf) { free(buf); }

int mtc_tl_parse(const uint8_t *data, size_t len, mtc_tl_object **out) {
  if (!out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  if (!data && len) return MTC_ERR_INVALID_ARG;
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, data, len);
  mtc_tl_object *o = dec_object(&r, MTCI_TL_ANY, 0);
  int rc = mtci_tl_read_end(&r);
  if (rc) {
    free_object(o);
    return rc;
  }
  *out = o;
  return 0;
}

const char *mtc_tl_name(uint32_t id) {
  const mtci_tl_ctor_desc *c = mtci_tl_find(id);
  if (c) return c->name;
  for (size_t i = 0; i < sizeof service_names / sizeof service_names[0]; i++)
    if (service_names[i].id == id) return service_names[i].name;
  return NULL;
}

const char *mtc_tl_result_type(uint32_t id) {
  const mtci_tl_ctor_desc *c = mtci_tl_find(id);
  return c && c->is_method ? c->result : NULL;
}
