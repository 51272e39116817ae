/*
 * tlgen [--verbose] --layer N --out-dir DIR schema.tl...
 *
 * Writes DIR/mtconn/tl_api.h, DIR/tl_api.c and DIR/tl_testgen.c. Exits 1
 * with a file:line message on an unparsable line or a conflicting
 * definition, leaving no partial output behind. --verbose lists the
 * explicit ids that differ from the CRC32 of their line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "tlgen.h"

static void usage(void) {
  tg_die("usage: tlgen [--verbose] --layer N --out-dir DIR schema.tl...");
}

typedef int (*emit_fn)(const tg_schema *s, FILE *f);

/* Writes via a temporary file renamed into place, so an interrupted run
 * never leaves a truncated output that make would consider up to date. */
static void write_file(const tg_schema *s, const char *dir, const char *name, emit_fn fn) {
  size_t n = strlen(dir) + strlen(name) + 8;
  char *path = tg_alloc(n), *tmp = tg_alloc(n + 4);
  snprintf(path, n, "%s/%s", dir, name);
  snprintf(tmp, n + 4, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) tg_die("%s: cannot create: %s", tmp, strerror(errno));
  int rc = fn(s, f);
  if (fclose(f) != 0 || rc != 0) {
    remove(tmp);
    tg_die("%s: write failed", tmp);
  }
  if (rename(tmp, path) != 0) {
    remove(tmp);
    tg_die("%s: rename failed: %s", path, strerror(errno));
  }
}

static void make_dir(const char *path) {
  if (mkdir(path, 0777) != 0 && errno != EEXIST) tg_die("%s: mkdir: %s", path, strerror(errno));
}

int main(int argc, char **argv) {
  tg_schema s;
  memset(&s, 0, sizeof s);
  const char *out = NULL;
  int nfiles = 0, verbose = 0;
  s.layer = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--layer") && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v <= 0 || v > 100000) usage();
      s.layer = (int)v;
    } else if (!strcmp(argv[i], "--out-dir") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(argv[i], "--verbose")) {
      verbose = 1;
    } else if (argv[i][0] == '-') {
      usage();
    } else {
      tg_parse_file(&s, argv[i]);
      nfiles++;
    }
  }
  if (!out || s.layer < 0 || !nfiles) usage();
  tg_resolve(&s);
  for (int i = 0; verbose && i < s.ncombs; i++)
    if (s.combs[i].explicit_id && s.combs[i].id != s.combs[i].crc)
      printf("%s:%d: %s#%08x: the CRC32 of the line is %08x; the explicit id is used\n",
             s.combs[i].file, s.combs[i].line, s.combs[i].name, s.combs[i].id, s.combs[i].crc);

  make_dir(out);
  size_t n = strlen(out) + 16;
  char *inc = tg_alloc(n);
  snprintf(inc, n, "%s/mtconn", out);
  make_dir(inc);
  write_file(&s, inc, "tl_api.h", tg_emit_header);
  write_file(&s, out, "tl_api.c", tg_emit_source);
  write_file(&s, out, "tl_testgen.c", tg_emit_testgen);

  printf("tlgen: layer %d: %d constructors, %d methods, %d types; %d ids computed (no #id), "
         "%d explicit ids differ from the CRC32 of their line, %d duplicate lines\n",
         s.layer, s.nconstructors, s.nmethods, s.ngroups, s.computed_ids, s.crc_mismatch,
         s.duplicates);
  tg_free_all();
  return 0;
}
