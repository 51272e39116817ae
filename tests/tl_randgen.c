/*
 * Random populated TL objects over the generated test tables (see
 * tl_randgen.h). The builder walks an entry's members in order: a # member
 * gets the mode's flags (only the bits its flags.N?T members use), a
 * flags.N?T member is filled only when its bit is set, a true member mirrors
 * its bit. Vectors are {n, v} with v at MTCI_TL_VEC_V_OFF.
 */
#include "tl_randgen.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "tl/tl_gen.h"
#include "tl_testgen.h"

#define DEPTH_LIMIT 3 /* from here on: flags off, empty vectors, shallow objects */
#define OBJECT_BUDGET 48
#define HARD_DEPTH 40 /* a bug guard: never reached with the shallow choices */
#define COST_INF 0x7fffffff
#define PICK_TRIES 10000 /* random draws for an allowed entry of Object / !X */

typedef struct gen {
  const mtci_randgen *rg;
  uint64_t x;
  int budget;
  int failed;
} gen;

static uint64_t rnd(gen *g) { /* splitmix64 */
  uint64_t z = (g->x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int limited(const gen *g, int depth) { return depth >= DEPTH_LIMIT || g->budget <= 0; }

int mtci_randgen_entry_of(uint32_t id) {
  for (size_t i = 0; i < mtci_testgen_nentries; i++)
    if (mtci_testgen_entries[i].id == id) return (int)i;
  return -1;
}

/* ---- shallow choices among the allowed entries ------------------------------ */

static int group_pick_limited(const mtci_randgen *rg, unsigned grp) {
  if (rg->shallow_group[grp] >= 0) return rg->shallow_group[grp];
  return mtci_testgen_groups[grp].shallowest; /* nothing allowed: fall back */
}

/* Cost of building an entry at the limit: only unconditional object members
 * recurse (flags are off, vectors empty). */
static int entry_cost(const mtci_randgen *rg, size_t i) {
  const mtci_testgen_entry *e = &mtci_testgen_entries[i];
  const mtci_testgen_member *m = &mtci_testgen_members[e->first];
  int worst = 0;
  for (unsigned k = 0; k < e->n; k++) {
    if (m[k].flag != 255) continue;
    const mtci_testgen_type *t = &mtci_testgen_types[m[k].type];
    int c = 0;
    if (t->kind == MTCI_TLK_OBJ) {
      int p = t->arg == 0xffff ? rg->shallow_any_ctor : rg->shallow_group[t->arg];
      c = p >= 0 ? rg->cost[p] : COST_INF;
    } else if (t->kind == MTCI_TLK_BARE) {
      c = rg->cost[t->arg];
    } else if (t->kind == MTCI_TLK_RAW) {
      c = rg->shallow_any_method >= 0 ? rg->cost[rg->shallow_any_method] : COST_INF;
    }
    if (c == COST_INF) return COST_INF;
    if (c > worst) worst = c;
  }
  return worst + 1;
}

/* Least-cost allowed choices, Bellman-Ford style: at most n rounds. */
static void setup_shallow(mtci_randgen *rg) {
  size_t n = mtci_testgen_nentries;
  for (size_t i = 0; i < n; i++) rg->cost[i] = COST_INF;
  for (size_t g = 0; g < mtci_testgen_ngroups; g++) rg->shallow_group[g] = -1;
  rg->shallow_any_ctor = rg->shallow_any_method = -1;
  for (size_t round = 0; round < n; round++) {
    int changed = 0;
    for (size_t i = 0; i < n; i++) {
      int c = entry_cost(rg, i);
      if (c < rg->cost[i]) {
        rg->cost[i] = c;
        changed = 1;
      }
    }
    for (size_t g = 0; g < mtci_testgen_ngroups; g++) {
      const mtci_testgen_group *gr = &mtci_testgen_groups[g];
      for (unsigned k = 0; k < gr->n; k++) {
        int idx = mtci_testgen_group_members[gr->first + k];
        if (rg->avoid[idx] || rg->cost[idx] == COST_INF) continue;
        if (rg->shallow_group[g] < 0 || rg->cost[idx] < rg->cost[rg->shallow_group[g]]) {
          rg->shallow_group[g] = idx;
          changed = 1;
        }
      }
    }
    for (size_t i = 0; i < n; i++) {
      if (rg->avoid[i] || rg->cost[i] == COST_INF) continue;
      int *slot = mtci_testgen_entries[i].is_method ? &rg->shallow_any_method : &rg->shallow_any_ctor;
      if (*slot < 0 || rg->cost[i] < rg->cost[*slot]) {
        *slot = (int)i;
        changed = 1;
      }
    }
    if (!changed) break;
  }
  if (rg->shallow_any_ctor < 0) rg->shallow_any_ctor = mtci_testgen_leaf_ctor;
  if (rg->shallow_any_method < 0) rg->shallow_any_method = mtci_testgen_leaf_method;
}

int mtci_randgen_init(mtci_randgen *rg, const mtci_randgen_opts *opts) {
  memset(rg, 0, sizeof *rg);
  if (opts) rg->opts = *opts;
  rg->opts.allow = NULL;
  rg->opts.nallow = 0;
  rg->avoid = malloc(mtci_testgen_nentries);
  rg->cost = malloc(mtci_testgen_nentries * sizeof *rg->cost);
  rg->shallow_group = malloc(mtci_testgen_ngroups * sizeof *rg->shallow_group);
  if (!rg->avoid || !rg->cost || !rg->shallow_group) {
    mtci_randgen_free(rg);
    return -1;
  }
  int restrict_ids = opts && opts->allow;
  memset(rg->avoid, restrict_ids, mtci_testgen_nentries);
  for (size_t i = 0; restrict_ids && i < opts->nallow; i++) {
    int idx = mtci_randgen_entry_of(opts->allow[i]);
    if (idx >= 0) rg->avoid[idx] = 0;
  }
  setup_shallow(rg);
  return 0;
}

void mtci_randgen_free(mtci_randgen *rg) {
  free(rg->avoid);
  free(rg->cost);
  free(rg->shallow_group);
  rg->avoid = NULL;
  rg->cost = NULL;
  rg->shallow_group = NULL;
}

/* ---- value builder ---------------------------------------------------------- */

static mtc_tl_object *make_entry(gen *g, int idx, int depth, int mode);

/* One code point of a mix of 1-4 byte UTF-8 forms; never a surrogate or U+FEFF. */
static size_t utf8_char(gen *g, uint8_t *p) {
  uint64_t r = rnd(g);
  uint32_t cp;
  switch (r & 7) {
  case 0: cp = 0x80 + (uint32_t)(r >> 8) % (0x800 - 0x80); break;
  case 1: cp = 0x800 + (uint32_t)(r >> 8) % (0xd800 - 0x800); break;
  case 2: cp = 0x10000 + (uint32_t)(r >> 8) % (0x110000 - 0x10000); break;
  default: cp = (uint32_t)(r >> 8) % 0x80; break;
  }
  if (cp < 0x80) {
    p[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    p[0] = (uint8_t)(0xc0 | cp >> 6);
    p[1] = (uint8_t)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    p[0] = (uint8_t)(0xe0 | cp >> 12);
    p[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    p[2] = (uint8_t)(0x80 | (cp & 0x3f));
    return 3;
  }
  p[0] = (uint8_t)(0xf0 | cp >> 18);
  p[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
  p[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
  p[3] = (uint8_t)(0x80 | (cp & 0x3f));
  return 4;
}

static void r_bytes(gen *g, mtc_tl_bytes *b) {
  uint64_t r = rnd(g);
  /* mostly short, sometimes past 253 bytes (the 0xfe long form) */
  size_t want = (r & 7) == 0 ? 250 + (size_t)(r >> 8) % 70 : (size_t)(r >> 8) % 14;
  b->data = NULL;
  b->len = 0;
  if (!want) return;
  uint8_t *d = malloc(want + 4); /* a UTF-8 sequence may run 3 bytes past want */
  if (!d) {
    g->failed = 1;
    return;
  }
  size_t n = 0;
  if (g->rg->opts.js_safe) {
    while (n < want) n += utf8_char(g, d + n);
  } else {
    for (; n < want; n++) d[n] = (uint8_t)(rnd(g) >> 24);
  }
  b->data = d;
  b->len = n;
}

static int64_t r_long(gen *g) {
  uint64_t r = rnd(g);
  if (!g->rg->opts.js_safe) return mtci_i64_of(r);
  /* a 53-bit magnitude and a sign: exact as a JS number */
  int64_t mag = (int64_t)(r >> 11) & ((INT64_C(1) << 53) - 1);
  if (mag == (INT64_C(1) << 53) - 1) mag--;
  return (r & 1) ? -mag : mag;
}

/* A random allowed constructor (methods = 0) or method (methods = 1); the
 * shallow one at the limit. */
static int pick_any(gen *g, int depth, int methods) {
  const mtci_randgen *rg = g->rg;
  int idx = methods ? rg->shallow_any_method : rg->shallow_any_ctor;
  if (limited(g, depth)) return idx;
  for (int tries = 0; tries < PICK_TRIES; tries++) {
    int c = (int)(rnd(g) % mtci_testgen_nentries);
    if (mtci_testgen_entries[c].is_method == methods && !rg->avoid[c]) return c;
  }
  return idx;
}

static int pick_in_group(gen *g, unsigned grp, int depth) {
  const mtci_randgen *rg = g->rg;
  if (limited(g, depth)) return group_pick_limited(rg, grp);
  const mtci_testgen_group *gr = &mtci_testgen_groups[grp];
  int allowed = 0;
  for (unsigned k = 0; k < gr->n; k++) allowed += !rg->avoid[mtci_testgen_group_members[gr->first + k]];
  if (!allowed) return mtci_testgen_group_members[gr->first + rnd(g) % gr->n];
  unsigned want = (unsigned)(rnd(g) % (unsigned)allowed);
  for (unsigned k = 0; k < gr->n; k++) {
    int idx = mtci_testgen_group_members[gr->first + k];
    if (!rg->avoid[idx] && want-- == 0) return idx;
  }
  return group_pick_limited(rg, grp);
}

/* !X: the encoding of a random allowed method (a shallow one at the limit). */
static void r_raw(gen *g, mtc_tl_bytes *b, int depth, int mode) {
  int idx = pick_any(g, depth, 1);
  b->data = NULL;
  b->len = 0;
  mtc_tl_object *o = make_entry(g, idx, depth, mode);
  uint8_t *buf = NULL;
  size_t len = 0;
  if (o && mtc_tl_serialize(o, &buf, &len) == 0) {
    b->data = buf; /* mtc_tl_buffer_free is free() */
    b->len = len;
  } else {
    g->failed = 1;
  }
  mtc_tl_object_free(o);
}

static void put_object(gen *g, uint8_t *p, int idx, int depth, int mode) {
  mtc_tl_object *o = make_entry(g, idx, depth, mode);
  if (!o) g->failed = 1;
  memcpy(p, &o, sizeof o);
}

static void make_value(gen *g, uint8_t *p, unsigned type, int depth, int mode, int flagged) {
  const mtci_testgen_type *t = &mtci_testgen_types[type];
  switch (t->kind) {
  case MTCI_TLK_INT:
  case MTCI_TLK_FLAGS: {
    uint32_t v = (uint32_t)rnd(g);
    memcpy(p, &v, 4);
    return;
  }
  case MTCI_TLK_LONG: {
    int64_t v = r_long(g);
    memcpy(p, &v, 8);
    return;
  }
  case MTCI_TLK_DOUBLE: {
    double v = (double)(int32_t)(rnd(g) >> 32) / 8.0;
    memcpy(p, &v, sizeof v);
    return;
  }
  case MTCI_TLK_INT128:
  case MTCI_TLK_INT256:
    for (size_t i = 0; i < mtci_tl_value_size(t->kind); i++) p[i] = (uint8_t)(rnd(g) >> 16);
    return;
  case MTCI_TLK_BOOL:
  case MTCI_TLK_TRUE: {
    int v = (int)(rnd(g) >> 40) & 1;
    memcpy(p, &v, sizeof v);
    return;
  }
  case MTCI_TLK_BYTES: {
    mtc_tl_bytes b;
    r_bytes(g, &b);
    memcpy(p, &b, sizeof b);
    return;
  }
  case MTCI_TLK_RAW: {
    mtc_tl_bytes b;
    r_raw(g, &b, depth + 1, mode);
    memcpy(p, &b, sizeof b);
    return;
  }
  case MTCI_TLK_OBJ: {
    int idx = t->arg == 0xffff ? pick_any(g, depth + 1, 0) /* Object: any constructor */
                               : pick_in_group(g, t->arg, depth + 1);
    put_object(g, p, idx, depth + 1, mode);
    return;
  }
  case MTCI_TLK_BARE:
    put_object(g, p, t->arg, depth + 1, mode);
    return;
  case MTCI_TLK_VEC:
  case MTCI_TLK_BVEC: {
    uint32_t n = limited(g, depth + 1) ? 0 : (uint32_t)(rnd(g) % 4);
    if (flagged && n == 0 && g->rg->opts.nonempty_flag_vectors) n = 1;
    size_t es = mtci_tl_value_size(mtci_testgen_types[t->arg].kind);
    uint8_t *v = n ? calloc(n, es) : NULL;
    if (n && !v) {
      g->failed = 1;
      n = 0;
    }
    memcpy(p, &n, sizeof n);
    memcpy(p + MTCI_TL_VEC_V_OFF, &v, sizeof v);
    for (uint32_t i = 0; i < n; i++) make_value(g, v + (size_t)i * es, t->arg, depth + 1, mode, 0);
    return;
  }
  }
}

static mtc_tl_object *make_entry(gen *g, int idx, int depth, int mode) {
  if (idx < 0 || (size_t)idx >= mtci_testgen_nentries || depth > HARD_DEPTH) {
    g->failed = 1;
    return NULL;
  }
  if (limited(g, depth)) mode = MTCI_RANDGEN_FLAGS_OFF;
  g->budget--;
  const mtci_testgen_entry *e = &mtci_testgen_entries[idx];
  const mtci_testgen_member *m = &mtci_testgen_members[e->first];
  uint8_t *obj = calloc(1, e->size);
  if (!obj) {
    g->failed = 1;
    return NULL;
  }
  mtc_tl_object *o = (mtc_tl_object *)(void *)obj;
  o->id = e->id;
  for (unsigned k = 0; k < e->n; k++) {
    unsigned kind = mtci_testgen_types[m[k].type].kind;
    if (kind == MTCI_TLK_FLAGS) {
      uint32_t mask = 0;
      for (unsigned j = k + 1; j < e->n; j++)
        if (m[j].flag == k) mask |= 1u << m[j].bit;
      uint32_t v = mode == MTCI_RANDGEN_FLAGS_OFF  ? 0
                   : mode == MTCI_RANDGEN_FLAGS_ON ? mask
                                                   : (uint32_t)rnd(g) & mask;
      memcpy(obj + m[k].off, &v, 4);
      continue;
    }
    int on = 1;
    if (m[k].flag != 255) {
      uint32_t fw;
      memcpy(&fw, obj + m[m[k].flag].off, 4);
      on = (int)((fw >> m[k].bit) & 1u);
    }
    if (kind == MTCI_TLK_TRUE) {
      memcpy(obj + m[k].off, &on, sizeof on);
      continue;
    }
    if (on) make_value(g, obj + m[k].off, m[k].type, depth, mode, m[k].flag != 255);
  }
  return o;
}

mtc_tl_object *mtci_randgen_make(const mtci_randgen *rg, size_t idx, uint64_t seed, int mode) {
  if (idx >= mtci_testgen_nentries) return NULL;
  gen g = {rg, seed, OBJECT_BUDGET, 0};
  mtc_tl_object *o = make_entry(&g, (int)idx, 0, mode);
  if (g.failed) {
    mtc_tl_object_free(o);
    return NULL;
  }
  return o;
}
