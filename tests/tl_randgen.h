/*
 * Random populated TL objects for the tests (tl_randgen.c), built member by
 * member from the generated test tables (tl_testgen.h): test_tlgen
 * round-trips them through our codec, tools like interop/tl_vectors hand
 * their encodings to other implementations.
 *
 * Shape of a value: below a nesting depth of 3 (and while an object budget
 * lasts) nested objects are random constructors of their type and vectors
 * hold 0-3 elements; from there on the least deep constructor is used, with
 * flags off and empty vectors, so every object is finite and small.
 * Deterministic for a given seed.
 */
#ifndef MTC_TL_RANDGEN_H
#define MTC_TL_RANDGEN_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/tl_api.h"

/* Flags words of the top-level object (nested objects use the same mode
 * above the depth limit). */
enum { MTCI_RANDGEN_FLAGS_OFF, MTCI_RANDGEN_FLAGS_ON, MTCI_RANDGEN_FLAGS_RANDOM };

typedef struct mtci_randgen_opts {
  /* 0: full-range values (any 64-bit long, arbitrary bytes in strings).
   * 1: values another implementation's in-memory types hold exactly: longs
   *    within +-(2^53-1) (JS numbers), strings valid UTF-8 without U+FEFF. */
  int js_safe;
  /* 1: a vector under a flags bit is never empty (some implementations set
   * the bit from "present and non-empty"). 0: it may be, as the wire allows. */
  int nonempty_flag_vectors;
  /* With allow != NULL only these ids are chosen for NESTED objects and !X
   * queries (top-level entries are whatever the caller asks for); a type with
   * no allowed constructor falls back to any. NULL: any id. */
  const uint32_t *allow;
  size_t nallow;
} mtci_randgen_opts;

typedef struct mtci_randgen {
  mtci_randgen_opts opts; /* allow is not kept: see avoid */
  uint8_t *avoid;         /* per entry: 1 = not to be nested */
  int *cost;              /* per entry: nesting depth when built at the limit */
  int *shallow_group;     /* per group: allowed member of least cost, or -1 */
  int shallow_any_ctor;   /* for Object */
  int shallow_any_method; /* for !X */
} mtci_randgen;

/* 0, or -1 when out of memory (then nothing needs freeing). */
int mtci_randgen_init(mtci_randgen *rg, const mtci_randgen_opts *opts);
void mtci_randgen_free(mtci_randgen *rg);

/* A new object of entry idx (index into mtci_testgen_entries) with the given
 * flags mode, drawn from seed; free with mtc_tl_object_free. NULL when idx is
 * out of range or an allocation or nested encoding failed. */
mtc_tl_object *mtci_randgen_make(const mtci_randgen *rg, size_t idx, uint64_t seed, int mode);

/* Index of id in mtci_testgen_entries, or -1. */
int mtci_randgen_entry_of(uint32_t id);

#endif
