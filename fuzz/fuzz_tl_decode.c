/*
 * Fuzz target: the generated TL decoder (mtc_tl_parse) on arbitrary bytes.
 * Whatever decodes must encode again, and decoding that encoding must give
 * the same bytes once more (the reader accepts nonzero string padding, so
 * the first re-encoding may differ from the input; the second may not).
 */
#include <stdint.h>
#include <string.h>

#include "mtconn/tl_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mtc_tl_object *o = NULL;
  if (mtc_tl_parse(data, size, &o) != 0) {
    if (o) __builtin_trap();
    return 0;
  }
  uint8_t *a = NULL, *b = NULL;
  size_t al = 0, bl = 0;
  mtc_tl_object *o2 = NULL;
  if (mtc_tl_serialize(o, &a, &al) != 0) __builtin_trap();
  if (mtc_tl_parse(a, al, &o2) != 0) __builtin_trap();
  if (mtc_tl_serialize(o2, &b, &bl) != 0 || al != bl || memcmp(a, b, al) != 0) __builtin_trap();
  mtc_tl_buffer_free(a);
  mtc_tl_buffer_free(b);
  mtc_tl_object_free(o);
  mtc_tl_object_free(o2);
  return 0;
}
