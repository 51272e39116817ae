/* tlgen helpers: an allocation list freed at exit (the tool runs under ASan
 * in sanitizer builds, so it must not leak), CRC32, fatal errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlgen.h"

struct tg_block {
  struct tg_block *next;
  max_align_t align[]; /* payload */
};

static struct tg_block *blocks;

void *tg_alloc(size_t n) {
  struct tg_block *b = calloc(1, sizeof *b + n);
  if (!b) tg_die("tlgen: out of memory");
  b->next = blocks;
  blocks = b;
  return b->align;
}

char *tg_strndup(const char *s, size_t n) {
  char *p = tg_alloc(n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *tg_strdup(const char *s) { return tg_strndup(s, strlen(s)); }

void tg_free_all(void) {
  while (blocks) {
    struct tg_block *next = blocks->next;
    free(blocks);
    blocks = next;
  }
}

void tg_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  tg_free_all();
  exit(1);
}

/* CRC-32 (IEEE 802.3, reflected, poly 0xedb88320), as zlib's crc32(). */
uint32_t tg_crc32(const char *s, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= (uint8_t)s[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}
