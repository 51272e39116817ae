/*
 * Generated TL code (tools/tlgen -> tl_api.h/tl_api.c, codec in
 * src/tl/tl_object.c):
 *   - every constructor and method: populate (flags off, all on, random),
 *     encode, decode, deep-compare, re-encode byte-identical; every strict
 *     prefix fails with TRUNCATED/TOO_LONG; bit flips and random bytes never
 *     crash (ASan/UBSan builds check memory);
 *   - the member sizes in tl_api.h against their schema types;
 *   - known answers from PROTOCOL.md §2.1/§1.8/§7.1/§7.4 and bytes derived
 *     by hand from the schema lines;
 *   - decoder and encoder error codes.
 * Values come from the random generator tests/tl_randgen.c (full range);
 * the compare interpreter below reads the same generated test tables
 * (tl_testgen.c, see tl_testgen.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtconn/tl_api.h"
#include "test.h"
#include "tl/tl_gen.h"
#include "tl_randgen.h"
#include "tl_testgen.h"

enum { FLAGS_OFF = MTCI_RANDGEN_FLAGS_OFF, FLAGS_ON = MTCI_RANDGEN_FLAGS_ON,
       FLAGS_RANDOM = MTCI_RANDGEN_FLAGS_RANDOM };

/* ---- populated values (tl_randgen.c) and deep comparison over the tables ---- */

/* Full-range values: any 64-bit long, arbitrary bytes in strings, empty
 * vectors under a set flags bit; every id may be nested. */
static const mtci_randgen *full_range(void) {
  static mtci_randgen rg;
  static int ready;
  if (!ready && mtci_randgen_init(&rg, NULL) == 0) ready = 1;
  return ready ? &rg : NULL;
}

static mtc_tl_object *make(size_t idx, uint64_t seed, int mode) {
  const mtci_randgen *rg = full_range();
  return rg ? mtci_randgen_make(rg, idx, seed * 0x9e3779b97f4a7c15ull + idx + 1, mode) : NULL;
}

static void vec_get(const uint8_t *p, uint32_t *n, uint8_t **v) {
  memcpy(n, p, sizeof *n);
  memcpy(v, p + MTCI_TL_VEC_V_OFF, sizeof *v);
}

static const char *diff_member; /* first differing member, for messages */

static int entry_index(uint32_t id) { return mtci_randgen_entry_of(id); }

static int equal_object(const mtc_tl_object *a, const mtc_tl_object *b);

static int equal_value(const uint8_t *a, const uint8_t *b, unsigned type) {
  const mtci_testgen_type *t = &mtci_testgen_types[type];
  switch (t->kind) {
  case MTCI_TLK_BYTES:
  case MTCI_TLK_RAW: {
    mtc_tl_bytes x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return x.len == y.len && (x.len == 0 || memcmp(x.data, y.data, x.len) == 0);
  }
  case MTCI_TLK_OBJ:
  case MTCI_TLK_BARE: {
    const mtc_tl_object *x, *y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return equal_object(x, y);
  }
  case MTCI_TLK_VEC:
  case MTCI_TLK_BVEC: {
    uint32_t na, nb;
    uint8_t *va, *vb;
    vec_get(a, &na, &va);
    vec_get(b, &nb, &vb);
    if (na != nb) return 0;
    size_t es = mtci_tl_value_size(mtci_testgen_types[t->arg].kind);
    for (uint32_t i = 0; i < na; i++)
      if (!equal_value(va + (size_t)i * es, vb + (size_t)i * es, t->arg)) return 0;
    return 1;
  }
  default: return memcmp(a, b, mtci_tl_value_size(t->kind)) == 0; /* scalars, int128/256 */
  }
}

static int equal_object(const mtc_tl_object *a, const mtc_tl_object *b) {
  if (!a || !b) return a == b;
  if (a->id != b->id) return 0;
  int idx = entry_index(a->id);
  if (idx < 0) return 0;
  const mtci_testgen_entry *e = &mtci_testgen_entries[idx];
  const mtci_testgen_member *m = &mtci_testgen_members[e->first];
  for (unsigned k = 0; k < e->n; k++)
    if (!equal_value((const uint8_t *)a + m[k].off, (const uint8_t *)b + m[k].off, m[k].type)) {
      diff_member = m[k].name;
      return 0;
    }
  return 1;
}

/* ---- every constructor and method -------------------------------------------------- */

TEST(counts) {
  size_t nc = 0, nm = 0;
  for (size_t i = 0; i < mtci_testgen_nentries; i++) {
    if (mtci_testgen_entries[i].is_method) nm++;
    else nc++;
  }
  CHECK_EQ_INT(nc, MTC_TL_CONSTRUCTOR_COUNT);
  CHECK_EQ_INT(nm, MTC_TL_METHOD_COUNT);
  CHECK_EQ_INT(mtci_testgen_nconstructors, MTC_TL_CONSTRUCTOR_COUNT);
  CHECK_EQ_INT(mtci_testgen_nmethods, MTC_TL_METHOD_COUNT);
  CHECK_EQ_INT(mtci_tl_nctors, nc + nm);
  /* layer 198 api.tl + mtproto.tl: 1450 constructors, 699 methods */
  CHECK(nc + nm > 1500);
  CHECK(nc >= 1400 && nm >= 650);
  CHECK_EQ_INT(MTC_TL_LAYER, 198);
  printf("tlgen: schema has %zu constructors and %zu methods\n", nc, nm);
}

/* Every member's C type has the size its schema type needs, members lie
 * inside the struct after `base`, and ids are unique and named. */
TEST(layout_and_names) {
  for (size_t i = 0; i < mtci_testgen_nentries; i++) {
    const mtci_testgen_entry *e = &mtci_testgen_entries[i];
    const mtci_testgen_member *m = &mtci_testgen_members[e->first];
    size_t prev = sizeof(mtc_tl_object);
    for (unsigned k = 0; k < e->n; k++) {
      unsigned kind = mtci_testgen_types[m[k].type].kind;
      CHECK(kind >= MTCI_TLK_INT && kind <= MTCI_TLK_RAW);
      if (m[k].size != mtci_tl_value_size(kind) || m[k].off < prev || m[k].off + m[k].size > e->size) {
        fprintf(stderr, "  %s.%s: size %u offset %u\n", e->name, m[k].name, m[k].size, m[k].off);
        CHECK(0);
      }
      prev = m[k].off + m[k].size;
    }
    const char *name = mtc_tl_name(e->id);
    CHECK(name != NULL);
    CHECK(strcmp(name, e->name) == 0);
    CHECK_EQ_INT(entry_index(e->id), (long long)i); /* ids unique */
    if (e->is_method) CHECK(mtc_tl_result_type(e->id) != NULL);
    else CHECK(mtc_tl_result_type(e->id) == NULL);
  }
  CHECK(strcmp(mtc_tl_name(0xf35c6d01u), "rpc_result") == 0);
  CHECK(strcmp(mtc_tl_name(0x73f1f8dcu), "msg_container") == 0);
  CHECK(mtc_tl_name(0) == NULL);
  CHECK(strcmp(mtc_tl_result_type(MTC_TL_ID_fn_help_getConfig), "Config") == 0);
  CHECK(strcmp(mtc_tl_result_type(MTC_TL_ID_fn_invokeWithLayer), "X") == 0);
  CHECK(strcmp(mtc_tl_result_type(MTC_TL_ID_fn_users_getIsPremiumRequiredToContact),
               "Vector<Bool>") == 0);
}

/* What the generator produced, walked over the tables: full-range values
 * must reach the codec (test_tlgen), js_safe ones must stay representable by
 * JS implementations (tests/interop/tl_vectors). */
typedef struct gen_stats {
  size_t longs, longs_past_53; /* |v| > 2^53 - 1 */
  size_t strings, strings_not_utf8; /* not valid UTF-8, or holding U+FEFF */
  size_t flag_vecs, flag_vecs_empty;  /* vectors under a set flags bit */
} gen_stats;

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)
 * without U+FEFF. */
static int utf8_ok(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = p[i];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || i + len > n) return 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (p[i + k] & 0x3fu);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000) || cp == 0xfeff) return 0;
    i += len;
  }
  return 1;
}

static void stats_object(gen_stats *st, const mtc_tl_object *o);

#define JS_MAX_SAFE ((INT64_C(1) << 53) - 1)

static void stats_value(gen_stats *st, const uint8_t *p, unsigned type, int flagged) {
  const mtci_testgen_type *t = &mtci_testgen_types[type];
  if (t->kind == MTCI_TLK_LONG) {
    int64_t v;
    memcpy(&v, p, sizeof v);
    st->longs++;
    st->longs_past_53 += v > JS_MAX_SAFE || v < -JS_MAX_SAFE;
  } else if (t->kind == MTCI_TLK_BYTES) {
    mtc_tl_bytes b;
    memcpy(&b, p, sizeof b);
    st->strings++;
    st->strings_not_utf8 += !utf8_ok(b.data, b.len);
  } else if (t->kind == MTCI_TLK_OBJ || t->kind == MTCI_TLK_BARE) {
    const mtc_tl_object *x;
    memcpy(&x, p, sizeof x);
    stats_object(st, x);
  } else if (t->kind == MTCI_TLK_VEC || t->kind == MTCI_TLK_BVEC) {
    uint32_t n;
    uint8_t *v;
    vec_get(p, &n, &v);
    st->flag_vecs += flagged != 0;
    st->flag_vecs_empty += flagged && n == 0;
    size_t es = mtci_tl_value_size(mtci_testgen_types[t->arg].kind);
    for (uint32_t i = 0; i < n; i++) stats_value(st, v + (size_t)i * es, t->arg, 0);
  }
}

static void stats_object(gen_stats *st, const mtc_tl_object *o) {
  int idx = o ? entry_index(o->id) : -1;
  if (idx < 0) return;
  const mtci_testgen_entry *e = &mtci_testgen_entries[idx];
  const mtci_testgen_member *m = &mtci_testgen_members[e->first];
  for (unsigned k = 0; k < e->n; k++) {
    if (m[k].flag != 255) {
      uint32_t fw;
      memcpy(&fw, (const uint8_t *)o + m[m[k].flag].off, 4);
      if (!((fw >> m[k].bit) & 1u)) continue; /* absent */
    }
    stats_value(st, (const uint8_t *)o + m[k].off, m[k].type, m[k].flag != 255);
  }
}

/* Samples 0-3 of every entry, as the round trip and tl_vectors build them. */
static int gen_stats_of(const mtci_randgen *rg, gen_stats *st) {
  static const int modes[] = {FLAGS_ON, FLAGS_RANDOM, FLAGS_RANDOM, FLAGS_RANDOM};
  memset(st, 0, sizeof *st);
  for (size_t i = 0; i < mtci_testgen_nentries; i++)
    for (size_t k = 0; k < 4; k++) {
      mtc_tl_object *o = mtci_randgen_make(rg, i, 0x5eed0000u + i * 4 + k, modes[k]);
      if (!o) return 0;
      stats_object(st, o);
      mtc_tl_object_free(o);
    }
  return 1;
}

TEST(generator_ranges) {
  const mtci_randgen *full = full_range();
  CHECK(full != NULL);
  gen_stats st;
  CHECK(gen_stats_of(full, &st));
  printf("tlgen: full range: %zu/%zu longs past 2^53, %zu/%zu strings not UTF-8, "
         "%zu/%zu flagged vectors empty\n",
         st.longs_past_53, st.longs, st.strings_not_utf8, st.strings, st.flag_vecs_empty,
         st.flag_vecs);
  /* the codec must see each of these often */
  CHECK(st.longs_past_53 * 2 > st.longs);
  CHECK(st.strings_not_utf8 * 4 > st.strings);
  CHECK(st.flag_vecs_empty * 8 > st.flag_vecs);

  mtci_randgen_opts o = {.js_safe = 1, .nonempty_flag_vectors = 1};
  mtci_randgen js;
  CHECK_EQ_INT(mtci_randgen_init(&js, &o), 0);
  int ok = gen_stats_of(&js, &st);
  mtci_randgen_free(&js);
  CHECK(ok);
  printf("tlgen: js_safe: %zu longs, %zu strings, %zu flagged vectors\n", st.longs, st.strings,
         st.flag_vecs);
  CHECK(st.longs > 1000 && st.strings > 1000 && st.flag_vecs > 100);
  CHECK_EQ_INT(st.longs_past_53, 0);
  CHECK_EQ_INT(st.strings_not_utf8, 0);
  CHECK_EQ_INT(st.flag_vecs_empty, 0);
}

static int roundtrip_one(size_t i, uint64_t seed, int mode, uint8_t **enc, size_t *enc_len) {
  const mtci_testgen_entry *e = &mtci_testgen_entries[i];
  mtc_tl_object *a = make(i, seed, mode), *b = NULL;
  uint8_t *x = NULL, *y = NULL;
  size_t xl = 0, yl = 0;
  int ok = 0, rc;
  if (!a) goto out;
  if ((rc = mtc_tl_serialize(a, &x, &xl)) != 0) {
    fprintf(stderr, "  %s mode %d: serialize %d\n", e->name, mode, rc);
    goto out;
  }
  if ((rc = mtc_tl_parse(x, xl, &b)) != 0) {
    fprintf(stderr, "  %s mode %d: parse %d (%zu bytes)\n", e->name, mode, rc, xl);
    goto out;
  }
  diff_member = "";
  if (!equal_object(a, b)) {
    fprintf(stderr, "  %s mode %d: decoded value differs at %s\n", e->name, mode, diff_member);
    goto out;
  }
  if ((rc = mtc_tl_serialize(b, &y, &yl)) != 0 || yl != xl || memcmp(x, y, xl) != 0) {
    fprintf(stderr, "  %s mode %d: re-encoding differs (rc %d)\n", e->name, mode, rc);
    goto out;
  }
  ok = 1;
out:
  mtc_tl_object_free(a);
  mtc_tl_object_free(b);
  mtc_tl_buffer_free(y);
  if (ok && enc) {
    *enc = x;
    *enc_len = xl;
  } else {
    mtc_tl_buffer_free(x);
  }
  return ok;
}

TEST(roundtrip_every_entry) {
  size_t nc = 0, nm = 0, bytes = 0;
  static const int modes[] = {FLAGS_OFF, FLAGS_ON, FLAGS_RANDOM, FLAGS_RANDOM};
  for (size_t i = 0; i < mtci_testgen_nentries; i++) {
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
      uint8_t *enc = NULL;
      size_t len = 0;
      CHECK(roundtrip_one(i, k, modes[k], &enc, &len));
      CHECK(len >= 4 && len % 4 == 0);
      uint32_t id = (uint32_t)enc[0] | (uint32_t)enc[1] << 8 | (uint32_t)enc[2] << 16 |
                    (uint32_t)enc[3] << 24;
      CHECK_EQ_INT(id, mtci_testgen_entries[i].id);
      bytes += len;
      mtc_tl_buffer_free(enc);
    }
    if (mtci_testgen_entries[i].is_method) nm++;
    else nc++;
  }
  CHECK_EQ_INT(nc, MTC_TL_CONSTRUCTOR_COUNT);
  CHECK_EQ_INT(nm, MTC_TL_METHOD_COUNT);
  printf("tlgen: round-tripped %zu constructors + %zu methods x 4 variants (%zu bytes)\n", nc, nm,
         bytes);
}

/* Every strict prefix of a valid encoding is an error, and the right one. */
TEST(truncation_every_entry) {
  size_t tried = 0;
  for (size_t i = 0; i < mtci_testgen_nentries; i++) {
    uint8_t *enc = NULL;
    size_t len = 0;
    CHECK(roundtrip_one(i, 7, FLAGS_ON, &enc, &len));
    /* all prefixes of short encodings; 64 spread over long ones plus the last 8 */
    size_t step = len > 64 ? len / 64 : 1;
    for (size_t cut = 0; cut < len; cut += (cut + 8 >= len ? 1 : step)) {
      mtc_tl_object *o = (mtc_tl_object *)1;
      int rc = mtc_tl_parse(enc, cut, &o);
      if (!(rc == MTC_ERR_TL_TRUNCATED || rc == MTC_ERR_TL_TOO_LONG) || o != NULL) {
        fprintf(stderr, "  %s: prefix %zu/%zu gave %d\n", mtci_testgen_entries[i].name, cut, len, rc);
        mtc_tl_buffer_free(enc);
        CHECK(0);
      }
      tried++;
    }
    mtc_tl_buffer_free(enc);
  }
  printf("tlgen: %zu truncated inputs rejected\n", tried);
}

/* Single bit flips of valid encodings: no crash, no leak; whatever decodes
 * must encode again. */
TEST(bit_flips) {
  uint64_t seed = 42;
  size_t decoded = 0, total = 0;
  for (size_t i = 0; i < mtci_testgen_nentries; i++) {
    uint8_t *enc = NULL;
    size_t len = 0;
    CHECK(roundtrip_one(i, 3, FLAGS_RANDOM, &enc, &len));
    for (int k = 0; k < 6; k++) {
      size_t bit = (size_t)(test_rand64(&seed) % (len * 8));
      enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      mtc_tl_object *o = NULL;
      int rc = mtc_tl_parse(enc, len, &o);
      if (rc == 0) {
        uint8_t *y = NULL;
        size_t yl = 0;
        decoded++;
        int rc2 = mtc_tl_serialize(o, &y, &yl);
        mtc_tl_buffer_free(y);
        mtc_tl_object_free(o);
        if (rc2 != 0) mtc_tl_buffer_free(enc);
        CHECK_EQ_INT(rc2, 0);
      } else {
        CHECK(o == NULL && rc < 0);
      }
      enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      total++;
    }
    mtc_tl_buffer_free(enc);
  }
  printf("tlgen: %zu bit-flipped inputs, %zu still decoded\n", total, decoded);
}

/* Random bytes, half of them starting with a real id so decoding goes deep. */
TEST(random_bytes) {
  uint64_t seed = 7;
  uint8_t buf[96];
  for (int n = 0; n < 20000; n++) {
    size_t len = (size_t)(test_rand64(&seed) % sizeof buf);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(test_rand64(&seed) >> 32);
    if ((n & 1) && len >= 4) {
      uint32_t id = mtci_testgen_entries[test_rand64(&seed) % mtci_testgen_nentries].id;
      for (int b = 0; b < 4; b++) buf[b] = (uint8_t)(id >> (8 * b));
      if (len >= 12 && (n & 2)) { /* small counts and lengths more often */
        buf[4] = (uint8_t)(buf[4] & 3);
        memset(buf + 5, 0, 3);
      }
    }
    mtc_tl_object *o = NULL;
    int rc = mtc_tl_parse(buf, len, &o);
    CHECK(rc <= 0);
    CHECK((rc == 0) == (o != NULL));
    mtc_tl_object_free(o);
  }
}

/* ---- known answers ------------------------------------------------------------------ */

static int hexeq(const uint8_t *got, size_t got_len, const char *hex) {
  uint8_t want[1024];
  size_t n = test_unhex(hex, want, sizeof want);
  if (n == (size_t)-1 || n != got_len || memcmp(got, want, n) != 0) {
    fprintf(stderr, "  length %zu, want %zu\n", got_len, n);
    test_dump_("got", got, got_len);
    if (n != (size_t)-1) test_dump_("want", want, n);
    return 0;
  }
  return 1;
}

#define STR(s) ((mtc_tl_bytes){(uint8_t *)(s), sizeof(s) - 1})

/* PROTOCOL.md §2.1: help.getConfig#c4f9186b, and the layer wrapper
 * invokeWithLayer#da9b0d0d layer:int query:!X. */
TEST(kat_get_config_with_layer) {
  uint8_t *q = NULL, *w = NULL;
  size_t ql = 0, wl = 0;
  CHECK_EQ_INT(mtc_tl_req_help_getConfig(NULL, &q, &ql), 0);
  CHECK(hexeq(q, ql, "6b18f9c4"));
  mtc_tl_fn_invokeWithLayer inv = {{0}, 198, {q, ql}};
  int rc = mtc_tl_req_invokeWithLayer(&inv, &w, &wl);
  int ok = rc == 0 && hexeq(w, wl, "0d0d9bda c6000000 6b18f9c4");
  /* the generic encoder gives the same bytes once base.id is set */
  uint8_t *g = NULL;
  size_t gl = 0;
  inv.base.id = MTC_TL_ID_fn_invokeWithLayer;
  int ok2 = mtc_tl_serialize(&inv.base, &g, &gl) == 0 && gl == wl && memcmp(g, w, wl) == 0;
  /* decoding a call keeps the wrapped query as its raw bytes */
  mtc_tl_object *o = NULL;
  int ok3 = mtc_tl_parse(w, wl, &o) == 0 && o->id == MTC_TL_ID_fn_invokeWithLayer &&
            ((mtc_tl_fn_invokeWithLayer *)o)->layer == 198 &&
            ((mtc_tl_fn_invokeWithLayer *)o)->query.len == 4 &&
            memcmp(((mtc_tl_fn_invokeWithLayer *)o)->query.data, q, 4) == 0;
  mtc_tl_object_free(o);
  mtc_tl_buffer_free(g);
  mtc_tl_buffer_free(q);
  mtc_tl_buffer_free(w);
  CHECK(ok && ok2 && ok3);
}

/* invokeWithLayer(198, initConnection(...)) wrapping help.getConfig, bytes
 * laid out by hand from the two schema lines (PROTOCOL.md §2.1):
 *   initConnection#c1cd5ea9 flags:# api_id:int device_model:string
 *     system_version:string app_version:string system_lang_code:string
 *     lang_pack:string lang_code:string proxy:flags.0?InputClientProxy
 *     params:flags.1?JSONValue query:!X
 * The second case sets only the proxy pointer: the encoder must raise
 * flags bit 0 by itself. */
TEST(kat_init_connection) {
  uint8_t *q = NULL, *ic = NULL, *out = NULL;
  size_t ql = 0, icl = 0, outl = 0;
  CHECK_EQ_INT(mtc_tl_req_help_getConfig(NULL, &q, &ql), 0);
  mtc_tl_fn_initConnection init;
  memset(&init, 0, sizeof init);
  init.api_id = 2040;
  init.device_model = STR("PC");
  init.system_version = STR("Linux");
  init.app_version = STR("1.0");
  init.system_lang_code = STR("en");
  init.lang_pack = STR("");
  init.lang_code = STR("en");
  init.query = (mtc_tl_bytes){q, ql};
  int rc1 = mtc_tl_req_initConnection(&init, &ic, &icl);
  mtc_tl_fn_invokeWithLayer inv = {{0}, 198, {ic, icl}};
  int rc2 = mtc_tl_req_invokeWithLayer(&inv, &out, &outl);
  int ok = rc1 == 0 && rc2 == 0 &&
           hexeq(out, outl,
                 "0d0d9bda c6000000"        /* invokeWithLayer, layer 198 */
                 "a95ecdc1 00000000"        /* initConnection, flags 0 */
                 "f8070000"                 /* api_id 2040 */
                 "02504300"                 /* "PC" */
                 "054c696e 75780000"        /* "Linux" */
                 "03312e30"                 /* "1.0" */
                 "02656e00 00000000 02656e00" /* "en", "", "en" */
                 "6b18f9c4");               /* help.getConfig */
  mtc_tl_buffer_free(ic);
  mtc_tl_buffer_free(out);
  ic = out = NULL;

  mtc_tl_inputClientProxy proxy = {{MTC_TL_ID_inputClientProxy}, STR("1.2.3.4"), 443};
  init.proxy = &proxy.base;
  rc1 = mtc_tl_req_initConnection(&init, &ic, &icl);
  int ok2 = rc1 == 0 && hexeq(ic, icl,
                              "a95ecdc1 01000000 f8070000 02504300 054c696e 75780000 03312e30"
                              "02656e00 00000000 02656e00"
                              "3f8b5875 07312e32 2e332e34 bb010000" /* inputClientProxy */
                              "6b18f9c4");
  mtc_tl_buffer_free(ic);
  mtc_tl_buffer_free(q);
  CHECK(ok && ok2);
}

/* dcOption#18b7a10d flags:# ipv6:flags.0?true media_only:flags.1?true
 * tcpo_only:flags.2?true cdn:flags.3?true static:flags.4?true
 * this_port_only:flags.5?true id:int ip_address:string port:int
 * secret:flags.10?bytes (PROTOCOL.md §2.1). ipv6 and static come from the
 * true members, bit 10 from the flags word (optional bytes). */
TEST(kat_dc_option) {
  uint8_t secret[16];
  for (int i = 0; i < 16; i++) secret[i] = (uint8_t)i;
  mtc_tl_dcOption d;
  memset(&d, 0, sizeof d);
  d.base.id = MTC_TL_ID_dcOption;
  d.flags = 1u << 10;
  d.ipv6 = 1;
  d.static_ = 1;
  d.id = 2;
  d.ip_address = STR("2001:67c:4e8:f002::a");
  d.port = 443;
  d.secret = (mtc_tl_bytes){secret, 16};
  const char *want = "0da1b718 11040000 02000000"
                     "14 32303031 3a363763 3a346538 3a663030 323a3a61 000000"
                     "bb010000"
                     "10 00010203 04050607 08090a0b 0c0d0e0f 000000";
  uint8_t *x = NULL;
  size_t xl = 0;
  CHECK_EQ_INT(mtc_tl_serialize(&d.base, &x, &xl), 0);
  int ok = hexeq(x, xl, want);
  mtc_tl_object *o = NULL;
  int rc = mtc_tl_parse(x, xl, &o);
  mtc_tl_buffer_free(x);
  if (!ok || rc != 0) mtc_tl_object_free(o);
  CHECK(ok);
  CHECK_EQ_INT(rc, 0);
  const mtc_tl_dcOption *p = (const mtc_tl_dcOption *)o;
  ok = p->base.id == MTC_TL_ID_dcOption && p->flags == 0x411 && p->ipv6 == 1 &&
       p->media_only == 0 && p->tcpo_only == 0 && p->cdn == 0 && p->static_ == 1 &&
       p->this_port_only == 0 && p->id == 2 && p->port == 443 && p->ip_address.len == 20 &&
       memcmp(p->ip_address.data, "2001:67c:4e8:f002::a", 20) == 0 && p->secret.len == 16 &&
       memcmp(p->secret.data, secret, 16) == 0;
  mtc_tl_object_free(o);
  CHECK(ok);

  /* without bit 10 the secret is not sent, whatever the member holds */
  d.flags = 0;
  CHECK_EQ_INT(mtc_tl_serialize(&d.base, &x, &xl), 0);
  ok = hexeq(x, xl,
             "0da1b718 11000000 02000000 14 32303031 3a363763 3a346538 3a663030 323a3a61 000000"
             "bb010000");
  mtc_tl_buffer_free(x);
  CHECK(ok);
}

/* An optional Bool is sent only with its bit (messageActionTopicEdit#c0944820
 * flags:# title:flags.0?string icon_emoji_id:flags.1?long closed:flags.2?Bool
 * hidden:flags.3?Bool). */
TEST(kat_optional_scalar) {
  mtc_tl_messageActionTopicEdit t;
  memset(&t, 0, sizeof t);
  t.base.id = MTC_TL_ID_messageActionTopicEdit;
  t.closed = 1;
  uint8_t *x = NULL;
  size_t xl = 0;
  CHECK_EQ_INT(mtc_tl_serialize(&t.base, &x, &xl), 0);
  int ok = hexeq(x, xl, "204894c0 00000000");
  mtc_tl_buffer_free(x);
  t.flags = 1u << 2;
  CHECK_EQ_INT(mtc_tl_serialize(&t.base, &x, &xl), 0);
  ok = ok && hexeq(x, xl, "204894c0 04000000 b5757299");
  mtc_tl_buffer_free(x);
  CHECK(ok);
}

static void check_config_simple(int *t_failed_, const char *hex, int32_t date, int32_t expires,
                                int32_t dc, uint32_t ipv4, int32_t port, const char *secret_hex) {
  uint8_t in[128], sec[64];
  size_t n = test_unhex(hex, in, sizeof in), sn = test_unhex(secret_hex, sec, sizeof sec);
  CHECK(n != (size_t)-1 && sn != (size_t)-1);
  mtc_tl_object *o = NULL;
  CHECK_EQ_INT(mtc_tl_parse(in, n, &o), 0);
  const mtc_tl_help_configSimple *c = (const mtc_tl_help_configSimple *)o;
  int ok = o->id == MTC_TL_ID_help_configSimple && c->date == date && c->expires == expires &&
           c->rules.n == 1 && c->rules.v[0]->id == MTC_TL_ID_accessPointRule;
  const mtc_tl_accessPointRule *r = ok ? (const mtc_tl_accessPointRule *)c->rules.v[0] : NULL;
  ok = ok && r->phone_prefix_rules.len == 0 && r->dc_id == dc && r->ips.n == 1 &&
       r->ips.v[0]->id == MTC_TL_ID_ipPortSecret;
  const mtc_tl_ipPortSecret *ip = ok ? (const mtc_tl_ipPortSecret *)r->ips.v[0] : NULL;
  ok = ok && (uint32_t)ip->ipv4 == ipv4 && ip->port == port && ip->secret.len == sn &&
       memcmp(ip->secret.data, sec, sn) == 0;
  uint8_t *x = NULL;
  size_t xl = 0;
  ok = ok && mtc_tl_serialize(o, &x, &xl) == 0 && xl == n && memcmp(x, in, n) == 0;
  mtc_tl_buffer_free(x);
  mtc_tl_object_free(o);
  CHECK(ok);
}

/* PROTOCOL.md §1.8/§7.1: the boxed help.configSimple inside the decrypted
 * DNS payloads, plain[4:80] of KAT-DNS-1 and plain[4:68] of KAT-DNS-3. */
TEST(kat_config_simple) {
  check_config_simple(t_failed_,
                      "6c2a595a11e6f8699119da6b010000005fb679460000000004000000"
                      "010000004626983732faddc2bb0100001feef7f7da556b4bd989fd44c9bc7b7b"
                      "2a757777772e676f6f676c652e636f6d",
                      1777919505, 1809455505, 4, 0xc2ddfa32u, 443,
                      "eef7f7da556b4bd989fd44c9bc7b7b2a757777772e676f6f676c652e636f6d");
  if (*t_failed_) return;
  check_config_simple(t_failed_,
                      "6c2a595ae1a7e35ae1340b5b010000005fb679460000000002000000010000004626983"
                      "7ff9d448a6614000010ad280a6401a8bbb41733d3c3c3773c36000000",
                      1524869089, 1527461089, 2, 0x8a449dffu, 5222,
                      "ad280a6401a8bbb41733d3c3c3773c36");
}

/* PROTOCOL.md §7.4 (grammers handshake vector): req_pq_multi request,
 * resPQ and dh_gen_ok responses. */
TEST(kat_handshake_objects) {
  mtc_tl_fn_req_pq_multi req;
  memset(&req, 0, sizeof req);
  CHECK_EQ_INT(test_unhex("4e44b426241e8b839153122d44585ac6", req.nonce, 16), 16);
  uint8_t *x = NULL;
  size_t xl = 0;
  CHECK_EQ_INT(mtc_tl_req_req_pq_multi(&req, &x, &xl), 0);
  int ok = hexeq(x, xl, "f18e7ebe4e44b426241e8b839153122d44585ac6");
  mtc_tl_buffer_free(x);
  CHECK(ok);

  uint8_t in[128];
  size_t n = test_unhex("632416054e44b426241e8b839153122d44585ac665ba0b393e1094329eda2c42d6283303"
                        "0819546f942a11278d00000015c4b51c0300000003268d20df9858b2029f4ba16d109296"
                        "216be86c022bb4c3",
                        in, sizeof in);
  mtc_tl_object *o = NULL;
  CHECK_EQ_INT(mtc_tl_parse(in, n, &o), 0);
  const mtc_tl_resPQ *r = (const mtc_tl_resPQ *)o;
  uint8_t sn[16];
  test_unhex("65ba0b393e1094329eda2c42d6283303", sn, 16);
  ok = o->id == MTC_TL_ID_resPQ && memcmp(r->nonce, req.nonce, 16) == 0 &&
       memcmp(r->server_nonce, sn, 16) == 0 && r->pq.len == 8 &&
       memcmp(r->pq.data, "\x19\x54\x6f\x94\x2a\x11\x27\x8d", 8) == 0 &&
       r->server_public_key_fingerprints.n == 3 &&
       (uint64_t)r->server_public_key_fingerprints.v[0] == 0xb25898df208d2603ull &&
       (uint64_t)r->server_public_key_fingerprints.v[1] == 0x9692106da14b9f02ull &&
       (uint64_t)r->server_public_key_fingerprints.v[2] == 0xc3b42b026ce86b21ull;
  ok = ok && mtc_tl_serialize(o, &x, &xl) == 0 && xl == n && memcmp(x, in, n) == 0;
  mtc_tl_buffer_free(x);
  mtc_tl_object_free(o);
  CHECK(ok);

  n = test_unhex("34f7cb3b4e44b426241e8b839153122d44585ac665ba0b393e1094329eda2c42d6283303"
                 "13b781a0de4ab6bc7ab414cbe13f9f86",
                 in, sizeof in);
  CHECK_EQ_INT(mtc_tl_parse(in, n, &o), 0);
  const mtc_tl_dh_gen_ok *g = (const mtc_tl_dh_gen_ok *)o;
  ok = o->id == MTC_TL_ID_dh_gen_ok && memcmp(g->server_nonce, sn, 16) == 0 &&
       g->new_nonce_hash1[0] == 0x13 && g->new_nonce_hash1[15] == 0x86;
  mtc_tl_object_free(o);
  CHECK(ok);
}

/* Lines without #id (the fake-TLS template blocks of mtproto.tl) get the
 * CRC32 of their canonical text; the same values appear in the tables of
 * other public TL generators. The explicit ids that differ from their CRC
 * must stay explicit. */
TEST(kat_computed_ids) {
  CHECK_EQ_INT(MTC_TL_ID_tlsClientHello, 0x6c52c484u);
  CHECK_EQ_INT(MTC_TL_ID_tlsBlockString, 0x4218a164u);
  CHECK_EQ_INT(MTC_TL_ID_tlsBlockRandom, 0x4d4dc41eu);
  CHECK_EQ_INT(MTC_TL_ID_tlsBlockZero, 0x09333afbu);
  CHECK_EQ_INT(MTC_TL_ID_tlsBlockDomain, 0x10e8636fu);
  CHECK_EQ_INT(MTC_TL_ID_tlsBlockGrease, 0xe675a1c1u);
  CHECK_EQ_INT(MTC_TL_ID_tlsBlockPublicKey, 0x9eb95b5cu);
  CHECK_EQ_INT(MTC_TL_ID_tlsBlockScope, 0xe725d44fu);
  CHECK_EQ_INT(MTC_TL_ID_ipPortSecret, 0x37982646u);
  CHECK_EQ_INT(MTC_TL_ID_accessPointRule, 0x4679b65fu);
  CHECK_EQ_INT(MTC_TL_ID_help_configSimple, 0x5a592a6cu);
}

/* ---- decoder and encoder errors ------------------------------------------------------- */

static int parse_hex(const char *hex) {
  uint8_t in[1024];
  size_t n = test_unhex(hex, in, sizeof in);
  if (n == (size_t)-1) return 1;
  mtc_tl_object *o = (mtc_tl_object *)1;
  int rc = mtc_tl_parse(in, n, &o);
  if (rc != 0 && o != NULL) return 2;
  mtc_tl_object_free(o);
  return rc;
}

TEST(decode_errors) {
  CHECK_EQ_INT(parse_hex(""), MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(parse_hex("6b18f9"), MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(parse_hex("6b18f9c4"), 0);
  CHECK_EQ_INT(parse_hex("6b18f9c4 00000000"), MTC_ERR_TL_TRAILING);
  CHECK_EQ_INT(parse_hex("00000000"), MTC_ERR_TL_CONSTRUCTOR);
  /* inputPeerUserFromMessage peer:InputPeer holding a userEmpty (a User) */
  CHECK_EQ_INT(parse_hex("1c0a7ba8 7a4bbcd3 0100000000000000 05000000 0200000000000000"),
               MTC_ERR_TL_CONSTRUCTOR);
  CHECK_EQ_INT(parse_hex("1c0a7ba8 c97ea07d 05000000 0200000000000000"), 0); /* inputPeerSelf */
  /* a method where an object is expected */
  CHECK_EQ_INT(parse_hex("1c0a7ba8 6b18f9c4 05000000 0200000000000000"), MTC_ERR_TL_CONSTRUCTOR);
  /* jsonBool value:Bool with neither boolTrue nor boolFalse */
  CHECK_EQ_INT(parse_hex("6a5e34c7 00000000"), MTC_ERR_TL_BAD_VALUE);
  CHECK_EQ_INT(parse_hex("6a5e34c7 b5757299"), 0);
  /* msgs_ack msg_ids:Vector<long>: a count the input cannot hold */
  CHECK_EQ_INT(parse_hex("59b4d662 15c4b51c 02000000 0100000000000000"), MTC_ERR_TL_TOO_LONG);
  CHECK_EQ_INT(parse_hex("59b4d662 15c4b51c ffffff0f 0100000000000000"), MTC_ERR_TL_TOO_LONG);
  CHECK_EQ_INT(parse_hex("59b4d662 15c4b51c 01000000 0100000000000000"), 0);
  /* a boxed vector without its id */
  CHECK_EQ_INT(parse_hex("59b4d662 00000000 01000000 0100000000000000"), MTC_ERR_TL_CONSTRUCTOR);
  /* string longer than the input */
  CHECK_EQ_INT(parse_hex("bbf9b9c4 05000000 0a616263"), MTC_ERR_TL_TRUNCATED); /* error#c4b9f9bb */
  /* invokeWithLayer whose !X query is no object */
  CHECK_EQ_INT(parse_hex("0d0d9bda c6000000 00000000"), MTC_ERR_TL_CONSTRUCTOR);
  CHECK_EQ_INT(mtc_tl_parse(NULL, 4, NULL), MTC_ERR_INVALID_ARG);
}

/* jsonArray#f7444763 value:Vector<JSONValue>, nested n deep around jsonNull */
static int parse_nested_arrays(int levels) {
  size_t len = (size_t)levels * 12 + 4;
  uint8_t *buf = malloc(len);
  if (!buf) return 1;
  for (int i = 0; i < levels; i++) memcpy(buf + i * 12, "\x63\x47\x44\xf7\x15\xc4\xb5\x1c\x01\0\0\0", 12);
  memcpy(buf + (size_t)levels * 12, "\x68\x7b\x6d\x3f", 4);
  mtc_tl_object *o = NULL;
  int rc = mtc_tl_parse(buf, len, &o);
  mtc_tl_object_free(o);
  free(buf);
  return rc;
}

TEST(decode_depth) {
  CHECK_EQ_INT(parse_nested_arrays(20), 0);
  CHECK_EQ_INT(parse_nested_arrays(40), MTC_ERR_TL_DEPTH);
  CHECK_EQ_INT(parse_nested_arrays(5000), MTC_ERR_TL_DEPTH);
}

TEST(encode_errors) {
  uint8_t *x = NULL;
  size_t xl = 0;
  mtc_tl_object bogus = {0x12345678u};
  CHECK_EQ_INT(mtc_tl_serialize(&bogus, &x, &xl), MTC_ERR_INVALID_ARG);
  CHECK(x == NULL && xl == 0);
  CHECK_EQ_INT(mtc_tl_serialize(NULL, &x, &xl), MTC_ERR_INVALID_ARG);
  /* required object missing, then of the wrong type */
  mtc_tl_inputPeerUserFromMessage p = {{MTC_TL_ID_inputPeerUserFromMessage}, NULL, 5, 2};
  CHECK_EQ_INT(mtc_tl_serialize(&p.base, &x, &xl), MTC_ERR_INVALID_ARG);
  mtc_tl_userEmpty u = {{MTC_TL_ID_userEmpty}, 1};
  p.peer = &u.base;
  CHECK_EQ_INT(mtc_tl_serialize(&p.base, &x, &xl), MTC_ERR_INVALID_ARG);
  mtc_tl_inputPeerSelf self = {{MTC_TL_ID_inputPeerSelf}};
  p.peer = &self.base;
  CHECK_EQ_INT(mtc_tl_serialize(&p.base, &x, &xl), 0);
  int ok = hexeq(x, xl, "1c0a7ba8 c97ea07d 05000000 0200000000000000");
  mtc_tl_buffer_free(x);
  CHECK(ok);
  /* a flags bit set by hand for an optional object that is NULL
   * (messageMediaPhoto#695150d7 flags:# spoiler:flags.3?true photo:flags.0?Photo
   * ttl_seconds:flags.2?int) */
  mtc_tl_messageMediaPhoto mp;
  memset(&mp, 0, sizeof mp);
  mp.base.id = MTC_TL_ID_messageMediaPhoto;
  mp.flags = 1;
  CHECK_EQ_INT(mtc_tl_serialize(&mp.base, &x, &xl), MTC_ERR_INVALID_ARG);
  /* an empty or misaligned !X query; a method with members needs req */
  mtc_tl_fn_invokeWithLayer inv = {{0}, 198, {NULL, 0}};
  CHECK_EQ_INT(mtc_tl_req_invokeWithLayer(&inv, &x, &xl), MTC_ERR_INVALID_ARG);
  inv.query = STR("\x6b\x18\xf9");
  CHECK_EQ_INT(mtc_tl_req_invokeWithLayer(&inv, &x, &xl), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtc_tl_req_invokeWithLayer(NULL, &x, &xl), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtc_tl_req_help_getConfig(NULL, NULL, &xl), MTC_ERR_INVALID_ARG);
  /* bytes with a length but no data */
  mtc_tl_jsonString js = {{MTC_TL_ID_jsonString}, {NULL, 3}};
  CHECK_EQ_INT(mtc_tl_serialize(&js.base, &x, &xl), MTC_ERR_INVALID_ARG);
  /* a cycle: jsonArray containing itself */
  mtc_tl_jsonArray arr;
  mtc_tl_object *self_ptr = &arr.base;
  arr.base.id = MTC_TL_ID_jsonArray;
  arr.value.n = 1;
  arr.value.v = &self_ptr;
  CHECK_EQ_INT(mtc_tl_serialize(&arr.base, &x, &xl), MTC_ERR_TL_DEPTH);
  CHECK(x == NULL);
  mtc_tl_buffer_free(NULL);
  mtc_tl_object_free(NULL);
}

TEST_MAIN("tlgen", CASE(counts), CASE(layout_and_names), CASE(generator_ranges),
          CASE(roundtrip_every_entry), CASE(truncation_every_entry), CASE(bit_flips),
          CASE(random_bytes), CASE(kat_get_config_with_layer), CASE(kat_init_connection),
          CASE(kat_dc_option), CASE(kat_optional_scalar), CASE(kat_config_simple),
          CASE(kat_handshake_objects), CASE(kat_computed_ids), CASE(decode_errors),
          CASE(decode_depth), CASE(encode_errors))
