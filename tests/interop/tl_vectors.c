/*
 * tl_vectors: random valid encodings of every constructor and method of the
 * generated TL code (build/gen/tl_api.c), for the mtcute interop check
 * (tests/interop/mtcute_tl/check.mjs decodes them with mtcute's reader,
 * re-encodes them with mtcute's writer and compares the bytes).
 *
 *   tl_vectors [--seed N] [--count K] [--allow FILE]
 *
 * Output, one line per encoding:  <name> <id as 8 hex> <sample> <hex bytes>
 * Sample 0 has every flag of the top-level entry set, sample 1 none, the
 * others random flags. Deterministic for a given seed.
 *
 * FILE lists the constructor/method ids (hex, one a line) that may be
 * chosen for NESTED values: the ids the other implementation knows, so that
 * an entry both sides share is not lost to a nested newer/older
 * constructor. Top-level entries are always emitted; when a type has no
 * allowed constructor left the generator falls back to any (the checker then
 * counts that object as skipped).
 *
 * Values are chosen so that they survive the other side's in-memory types
 * (tests/tl_randgen.c, the generator test_tlgen uses, with js_safe and
 * nonempty_flag_vectors):
 *   - long: within +-(2^53-1) (mtcute reads many ids as JS numbers, int53);
 *   - string/bytes: valid UTF-8 without U+FEFF (strings are JS strings);
 *   - a vector under a flag is never empty (mtcute sets the flag from
 *     "present and non-empty").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtconn/tl_api.h"
#include "tl_randgen.h"
#include "tl_testgen.h"

/* The ids of FILE (hex, one a line); *ids is never NULL on success. */
static int load_allow(const char *path, uint32_t **ids, size_t *n) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "tl_vectors: cannot open %s\n", path);
    return -1;
  }
  size_t cap = 256;
  *n = 0;
  *ids = malloc(cap * sizeof **ids);
  char line[64];
  while (*ids && fgets(line, sizeof line, f)) {
    char *end = NULL;
    unsigned long v = strtoul(line, &end, 16);
    if (end == line) continue;
    if (*n == cap) {
      uint32_t *more = realloc(*ids, 2 * cap * sizeof **ids);
      if (!more) {
        free(*ids);
        *ids = NULL;
        break;
      }
      *ids = more;
      cap *= 2;
    }
    (*ids)[(*n)++] = (uint32_t)v;
  }
  fclose(f);
  return *ids ? 0 : -1;
}

int main(int argc, char **argv) {
  uint64_t seed = 1;
  unsigned count = 4;
  const char *allow_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = (unsigned)strtoul(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--allow") && i + 1 < argc) allow_path = argv[++i];
    else {
      fprintf(stderr, "usage: tl_vectors [--seed N] [--count K] [--allow FILE]\n");
      return 2;
    }
  }
  if (count == 0 || count > 64) count = 4;
  mtci_randgen_opts opts = {.js_safe = 1, .nonempty_flag_vectors = 1};
  uint32_t *allow = NULL;
  if (allow_path && load_allow(allow_path, &allow, &opts.nallow) != 0) return 1;
  opts.allow = allow;
  mtci_randgen rg;
  int rc = mtci_randgen_init(&rg, &opts);
  free(allow);
  if (rc != 0) return 1;

  static const int modes[] = {MTCI_RANDGEN_FLAGS_ON, MTCI_RANDGEN_FLAGS_OFF, MTCI_RANDGEN_FLAGS_RANDOM};
  size_t lines = 0;
  for (size_t i = 0; i < mtci_testgen_nentries; i++) {
    const mtci_testgen_entry *e = &mtci_testgen_entries[i];
    for (unsigned k = 0; k < count; k++) {
      mtc_tl_object *o =
          mtci_randgen_make(&rg, i, seed * 0x9e3779b97f4a7c15ull + i * 131 + k, modes[k < 2 ? k : 2]);
      uint8_t *enc = NULL, *again = NULL;
      size_t len = 0, alen = 0;
      mtc_tl_object *back = NULL;
      rc = o ? mtc_tl_serialize(o, &enc, &len) : -1;
      /* our own decoder must agree with our encoder before anyone else looks */
      if (rc == 0) rc = mtc_tl_parse(enc, len, &back);
      if (rc == 0) rc = mtc_tl_serialize(back, &again, &alen);
      if (rc == 0 && (alen != len || memcmp(enc, again, len) != 0)) rc = -2;
      if (rc != 0) {
        fprintf(stderr, "tl_vectors: %s sample %u: failed (%d)\n", e->name, k, rc);
        return 1;
      }
      printf("%s %08x %u ", e->name, (unsigned)e->id, k);
      for (size_t b = 0; b < len; b++) printf("%02x", enc[b]);
      putchar('\n');
      lines++;
      mtc_tl_object_free(o);
      mtc_tl_object_free(back);
      mtc_tl_buffer_free(enc);
      mtc_tl_buffer_free(again);
    }
  }
  mtci_randgen_free(&rg);
  fprintf(stderr, "tl_vectors: %zu entries, %zu encodings\n", mtci_testgen_nentries, lines);
  return fflush(stdout) == 0 ? 0 : 1;
}
