/*
 * tlgen: reads TL schemas and writes the C types, codec tables and typed
 * request builders of the library (tl_api.h, tl_api.c) plus test support
 * (tl_testgen.c). Host tool, plain C11, libc only.
 *
 * Model: every schema line becomes a combinator (constructor or method).
 * Field types are resolved into interned type nodes; the emitters walk the
 * combinators and the type table.
 */
#ifndef TLGEN_H
#define TLGEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Type kinds. Their numeric values are written into the generated tables
 * (src/tl/tl_gen.h declares the same numbers as MTCI_TLK_*). */
enum tg_kind {
  TK_INT = 1,    /* int -> int32_t */
  TK_LONG = 2,   /* long -> int64_t */
  TK_DOUBLE = 3, /* double */
  TK_INT128 = 4, /* uint8_t[16] */
  TK_INT256 = 5, /* uint8_t[32] */
  TK_BYTES = 6,  /* string, bytes -> mtc_tl_bytes */
  TK_BOOL = 7,   /* Bool (boxed boolTrue/boolFalse) -> int */
  TK_TRUE = 8,   /* true: no bytes, an int mirrored from a flags bit */
  TK_FLAGS = 9,  /* # -> uint32_t */
  TK_OBJ = 10,   /* boxed object of a type (group) or of any type -> mtc_tl_object * */
  TK_BARE = 11,  /* bare constructor (no id on the wire) -> mtc_tl_object * */
  TK_VEC = 12,   /* Vector<T>: 0x1cb5c415, count, elements */
  TK_BVEC = 13,  /* vector<T>: count, elements */
  TK_RAW = 14    /* !X: an already-encoded boxed object -> mtc_tl_bytes */
};

#define TG_ANY 0xffff /* TK_OBJ arg: any constructor or method (Object, !X) */

typedef struct tg_type {
  int kind;
  int elem;   /* vectors: index of the element type, else -1 */
  int arg;    /* TK_OBJ: group index or TG_ANY; TK_BARE: combinator index */
  int index;  /* position in the type table */
} tg_type;

typedef struct tg_field {
  char *name;   /* as in the schema */
  char *cname;  /* C member name (keyword-safe) */
  char *type_text; /* type as written, without the flags.N? prefix */
  int type;     /* type table index */
  int cond;     /* 1 if flags.N?T */
  int flag_field; /* index (in fields) of the controlling # field, or -1 */
  int bit;
  int flag_ord; /* for # fields: ordinal among the # fields (0..3) */
} tg_field;

typedef struct tg_comb {
  char *name;       /* e.g. help.configSimple */
  char *cname;      /* e.g. help_configSimple */
  uint32_t id;
  int explicit_id;  /* 0 if computed as CRC32 of the canonical line */
  uint32_t crc;     /* CRC32 of the canonical line */
  int is_method;
  int generic;      /* has {X:Type} */
  char *result;     /* result type text, e.g. help.ConfigSimple or Vector<long> */
  int group;        /* constructors: group index */
  tg_field *fields;
  int nfields;
  char *canon;      /* normalized text, for duplicate detection */
  const char *file;
  int line;
  int min_size;     /* smallest encoding of the bare body (bytes) */
} tg_comb;

typedef struct tg_group {
  char *name;  /* type name, e.g. InputPeer */
  int *ctors;  /* combinator indexes */
  int n, cap;
  int min_ctor; /* constructor with the smallest nesting depth (testgen) */
} tg_group;

typedef struct tg_schema {
  tg_comb *combs;
  int ncombs, capcombs;
  tg_group *groups;
  int ngroups, capgroups;
  tg_type *types;
  int ntypes, captypes;
  int nconstructors, nmethods;
  int computed_ids;   /* lines without #id */
  int crc_mismatch;   /* explicit ids that differ from the CRC32 of their line */
  int duplicates;     /* identical lines seen twice */
  int layer;
} tg_schema;

/* util.c */
void *tg_alloc(size_t n);           /* zeroed; exits on failure; freed by tg_free_all */
char *tg_strdup(const char *s);
char *tg_strndup(const char *s, size_t n);
void tg_free_all(void);
uint32_t tg_crc32(const char *s, size_t n);
void tg_die(const char *fmt, ...);

/* parse.c */
int tg_parse_file(tg_schema *s, const char *path);
int tg_resolve(tg_schema *s);
int tg_find_comb(const tg_schema *s, const char *name);
int tg_find_group(const tg_schema *s, const char *name);

/* emit_api.c */
const char *tg_ctype(const tg_schema *s, int type, char *buf, size_t cap);
const char *tg_vec_name(const tg_schema *s, int type, char *buf, size_t cap);
int tg_emit_header(const tg_schema *s, FILE *f);
int tg_emit_source(const tg_schema *s, FILE *f);

/* emit_testgen.c */
int tg_emit_testgen(const tg_schema *s, FILE *f);

#endif
