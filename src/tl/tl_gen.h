/*
 * Generic TL object codec (tl_object.c) and the descriptor tables that
 * tools/tlgen generates for it (build/gen/tl_api.c).
 *
 * Each constructor/method has a descriptor with its id, struct size and a
 * run of field descriptors; each field names a type descriptor. The codec
 * walks these, reading and writing struct members at their offsets, so the
 * generated code is data, not per-field functions.
 *
 * Internal API for the library: encode/decode objects directly into a
 * transport's writer or out of a received message.
 */
#ifndef MTCI_TL_GEN_H
#define MTCI_TL_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/tl_api.h"
#include "tl/tl.h"

/* Type kinds (tlgen writes these numbers into mtci_tl_types). */
enum {
  MTCI_TLK_INT = 1,     /* int32_t */
  MTCI_TLK_LONG = 2,    /* int64_t */
  MTCI_TLK_DOUBLE = 3,  /* double */
  MTCI_TLK_INT128 = 4,  /* uint8_t[16] */
  MTCI_TLK_INT256 = 5,  /* uint8_t[32] */
  MTCI_TLK_BYTES = 6,   /* mtc_tl_bytes */
  MTCI_TLK_BOOL = 7,    /* int; boolTrue/boolFalse on the wire */
  MTCI_TLK_TRUE = 8,    /* int mirrored from a flags bit; nothing on the wire */
  MTCI_TLK_FLAGS = 9,   /* uint32_t */
  MTCI_TLK_OBJ = 10,    /* mtc_tl_object *, boxed; arg = group or MTCI_TL_ANY */
  MTCI_TLK_BARE = 11,   /* mtc_tl_object *, bare; arg = constructor index */
  MTCI_TLK_VEC = 12,    /* Vector<T>; arg = element type */
  MTCI_TLK_BVEC = 13,   /* vector<T> (no 0x1cb5c415); arg = element type */
  MTCI_TLK_RAW = 14     /* mtc_tl_bytes holding an encoded boxed object (!X) */
};

#define MTCI_TL_ANY 0xffffu     /* OBJ arg: any constructor or method */
#define MTCI_TL_NO_FLAG 255u    /* field flag: unconditional */
#define MTCI_TL_MAX_FLAGS 4     /* # fields per constructor */
#define MTCI_TL_MAX_DEPTH 64    /* nesting of objects and vectors */
/* Every mtc_tl_vec_* is {uint32_t n; T *v;} with v at this offset (the
 * generated file checks each typedef). */
#define MTCI_TL_VEC_V_OFF offsetof(mtc_tl_vec_int, v)

typedef struct mtci_tl_type_desc {
  uint8_t kind;
  uint16_t arg;
  uint32_t min_size; /* smallest encoding, bounds vector counts */
} mtci_tl_type_desc;

typedef struct mtci_tl_field_desc {
  uint16_t off;  /* offsetof the member */
  uint16_t type; /* index into mtci_tl_types */
  uint8_t flag;  /* # field: its own ordinal; flags.N?T: the controlling
                    field's ordinal; else MTCI_TL_NO_FLAG */
  uint8_t bit;   /* N of flags.N?T */
} mtci_tl_field_desc;

typedef struct mtci_tl_ctor_desc {
  uint32_t id;
  uint32_t size;        /* sizeof the struct */
  uint32_t first_field; /* index into mtci_tl_fields */
  uint16_t nfields;
  uint16_t group;       /* result type of a constructor; 0xffff for methods */
  uint8_t is_method;
  const char *name;
  const char *result;   /* methods: result type text; else NULL */
} mtci_tl_ctor_desc;

extern const mtci_tl_type_desc mtci_tl_types[];
extern const mtci_tl_field_desc mtci_tl_fields[];
extern const mtci_tl_ctor_desc mtci_tl_ctors[];
extern const uint16_t mtci_tl_ctor_order[]; /* indexes into mtci_tl_ctors sorted by id */
extern const size_t mtci_tl_nctors;

/* Descriptor of an id, or NULL. */
const mtci_tl_ctor_desc *mtci_tl_find(uint32_t id);

/* sizeof one in-memory value of a kind (MTCI_TLK_*): a struct member or a
 * vector element. */
size_t mtci_tl_value_size(unsigned kind);

/* Appends obj boxed (id + body). Returns the writer's sticky error: 0,
 * MTC_ERR_INVALID_ARG (see mtc_tl_serialize), MTC_ERR_TL_DEPTH, MTC_ERR_NOMEM. */
int mtci_tl_encode_object(mtci_tl_writer *w, const mtc_tl_object *obj);
/* Appends the body of obj only (bare, no id). */
int mtci_tl_encode_bare(mtci_tl_writer *w, const mtc_tl_object *obj);
/* Reads one boxed object of any known id into a new *out (NULL on error).
 * Does not check for trailing bytes. Returns the reader's sticky error. */
int mtci_tl_decode_object(mtci_tl_reader *r, mtc_tl_object **out);
/* Reads the bare body of constructor `id` into a new *out. */
int mtci_tl_decode_bare(mtci_tl_reader *r, uint32_t id, mtc_tl_object **out);

/* Used by the generated mtc_tl_req_* builders: encodes the method at
 * mtci_tl_ctors[index] with the members of req (NULL allowed for a method
 * without fields) into a new buffer. */
int mtci_tl_request(size_t index, const mtc_tl_object *req, uint8_t **out, size_t *out_len);

#endif /* MTCI_TL_GEN_H */
