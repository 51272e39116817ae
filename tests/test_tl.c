/* TL runtime: reader, writer and the hand-written service constructors. */
#include <float.h>

#include <zlib.h>

#include "test.h"
#include "tl/special.h"
#include "tl/tl.h"

/* ---- writer: exact encodings ------------------------------------------------ */

TEST(write_scalars_exact) {
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_int(&w, -2);
  mtci_tl_write_u32(&w, 0x01020304u);
  mtci_tl_write_long(&w, 0x0102030405060708ll);
  mtci_tl_write_long(&w, -1);
  mtci_tl_write_double(&w, 1.0);
  mtci_tl_write_double(&w, -2.5);
  mtci_tl_write_bool(&w, 1);
  mtci_tl_write_bool(&w, 0);
  mtci_tl_write_vector(&w, 3);
  uint8_t i128[16], i256[32];
  for (int i = 0; i < 16; i++) i128[i] = (uint8_t)i;
  for (int i = 0; i < 32; i++) i256[i] = (uint8_t)(0xa0 + i);
  mtci_tl_write_int128(&w, i128);
  mtci_tl_write_int256(&w, i256);
  uint8_t want[256];
  size_t n = test_unhex("feffffff 04030201 0807060504030201 ffffffffffffffff"
                        "000000000000f03f 00000000000004c0"
                        "b5757299 379779bc 15c4b51c 03000000"
                        "000102030405060708090a0b0c0d0e0f"
                        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
                        want, sizeof want);
  CHECK_EQ_INT(w.err, 0);
  CHECK_EQ_INT(w.len, n);
  CHECK_MEM(mtci_tl_writer_data(&w), want, n);
  mtci_tl_writer_free(&w);
  CHECK(w.buf == NULL);
}

/* Known encodings of TL bytes written out by hand from the wire rules. */
TEST(write_bytes_exact_small) {
  static const struct {
    const char *data, *hex;
  } v[] = {
      {"", "00000000"},
      {"a", "01610000"},
      {"abc", "03616263"},
      {"abcd", "04616263 64000000"},
      {"abcdefg", "07616263 64656667"},
      {"abcdefgh", "08616263 64656667 68000000"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    mtci_tl_writer w;
    mtci_tl_writer_init(&w, 0);
    mtci_tl_write_bytes(&w, v[i].data, strlen(v[i].data));
    uint8_t want[16];
    size_t n = test_unhex(v[i].hex, want, sizeof want);
    CHECK_EQ_INT(w.len, n);
    CHECK_MEM(mtci_tl_writer_data(&w), want, n);
    mtci_tl_writer_free(&w);
  }
}

TEST(write_bytes_lengths) {
  static const size_t lens[] = {0, 1, 3, 4, 253, 254, 255, 1000};
  /* header bytes and total encoded size, worked out by hand */
  static const uint8_t heads[][4] = {{0x00}, {0x01}, {0x03}, {0x04}, {0xfd},
                                     {0xfe, 0xfe, 0x00, 0x00}, {0xfe, 0xff, 0x00, 0x00},
                                     {0xfe, 0xe8, 0x03, 0x00}};
  static const size_t head_len[] = {1, 1, 1, 1, 1, 4, 4, 4};
  static const size_t totals[] = {4, 4, 4, 8, 256, 260, 260, 1004};
  uint8_t data[1000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7 + 1);
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
    mtci_tl_writer w;
    mtci_tl_writer_init(&w, 0);
    mtci_tl_write_bytes(&w, data, lens[k]);
    const uint8_t *p = mtci_tl_writer_data(&w);
    CHECK_EQ_INT(w.err, 0);
    CHECK_EQ_INT(w.len, totals[k]);
    CHECK_MEM(p, heads[k], head_len[k]);
    CHECK_MEM(p + head_len[k], data, lens[k]);
    for (size_t j = head_len[k] + lens[k]; j < totals[k]; j++) CHECK_EQ_INT(p[j], 0);
    /* and back */
    mtci_tl_reader r;
    mtci_tl_reader_init(&r, p, w.len);
    size_t got_len = 99;
    const uint8_t *got = mtci_tl_read_bytes(&r, &got_len);
    CHECK(got != NULL);
    CHECK_EQ_INT(got_len, lens[k]);
    CHECK_MEM(got, data, lens[k]);
    CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
    mtci_tl_writer_free(&w);
  }
}

/* 0xffffff is the largest length the 3-byte long form carries; one more is
 * refused before anything is allocated. One 16 MiB buffer in total: the data
 * is filled in place through mtci_tl_write_bytes_reserve. */
TEST(bytes_max_length_boundary) {
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  size_t cap0 = w.cap;
  uint8_t one = 1;
  mtci_tl_write_bytes(&w, &one, 0x1000000u);
  CHECK_EQ_INT(w.err, MTC_ERR_TL_TOO_LONG);
  CHECK_EQ_INT(w.len, 0);
  CHECK_EQ_INT(w.cap, cap0); /* nothing allocated */
  mtci_tl_writer_reset(&w);
  CHECK(mtci_tl_write_bytes_reserve(&w, 0x1000000u) == NULL);
  CHECK_EQ_INT(w.err, MTC_ERR_TL_TOO_LONG);
  mtci_tl_writer_reset(&w);

  uint8_t *d = mtci_tl_write_bytes_reserve(&w, 0xffffffu);
  CHECK(d != NULL);
  CHECK_EQ_INT(w.len, 0x1000004u); /* 4 header + 0xffffff data + 1 pad */
  const uint8_t *p = mtci_tl_writer_data(&w);
  static const uint8_t head[4] = {0xfe, 0xff, 0xff, 0xff};
  CHECK_MEM(p, head, 4);
  CHECK(d == p + 4);
  d[0] = 0x11;
  d[0xfffffe] = 0x22;
  CHECK_EQ_INT(p[0x1000003], 0);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, p, w.len);
  size_t n = 0;
  const uint8_t *v = mtci_tl_read_bytes(&r, &n);
  CHECK(v == p + 4);
  CHECK_EQ_INT(n, 0xffffffu);
  CHECK_EQ_INT(v[0], 0x11);
  CHECK_EQ_INT(v[0xfffffe], 0x22);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
  /* the same data without its pad byte is truncated */
  mtci_tl_reader_init(&r, p, w.len - 1);
  CHECK(mtci_tl_read_bytes(&r, &n) == NULL);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TRUNCATED);
  mtci_tl_writer_free(&w);
}

TEST(writer_headroom_stays_in_front) {
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 24);
  CHECK_EQ_INT(w.err, 0);
  CHECK(mtci_tl_writer_data(&w) == w.buf + 24);
  CHECK_EQ_INT(w.len, 0);
  /* grow through several reallocations */
  for (uint32_t i = 0; i < 50000; i++) mtci_tl_write_u32(&w, i);
  CHECK_EQ_INT(w.err, 0);
  CHECK_EQ_INT(w.len, 200000);
  CHECK(w.cap >= 24 + 200000);
  uint8_t *p = mtci_tl_writer_data(&w);
  CHECK(p == w.buf + 24);
  for (uint32_t i = 0; i < 50000; i += 997) {
    uint32_t v = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                 (uint32_t)p[4 * i + 3] << 24;
    CHECK_EQ_INT(v, i);
  }
  /* a transport fills the headroom without moving the payload */
  memset(p - 24, 0xee, 24);
  mtci_tl_write_u32(&w, 7);
  CHECK(mtci_tl_writer_data(&w) - 24 == w.buf);
  CHECK_EQ_INT(w.buf[0], 0xee);
  mtci_tl_writer_reset(&w);
  CHECK_EQ_INT(w.len, 0);
  CHECK(mtci_tl_writer_data(&w) == w.buf + 24);
  mtci_tl_writer_free(&w);
  mtci_tl_writer_free(&w); /* second free is harmless */
}

TEST(writer_cap_is_sticky) {
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 8);
  w.max = 10;
  mtci_tl_write_long(&w, 5);
  CHECK_EQ_INT(w.err, 0);
  mtci_tl_write_int(&w, 1); /* 12 > 10 */
  CHECK_EQ_INT(w.err, MTC_ERR_NOMEM);
  CHECK_EQ_INT(w.len, 8);
  mtci_tl_write_raw(&w, "ab", 2); /* would fit, but the error sticks */
  CHECK_EQ_INT(w.len, 8);
  CHECK(mtci_tl_write_reserve(&w, 0) == NULL);
  CHECK(mtci_tl_write_bytes_reserve(&w, 1) == NULL);
  mtci_tl_write_bytes(&w, "x", 1);
  CHECK_EQ_INT(w.len, 8);
  CHECK_EQ_INT(w.err, MTC_ERR_NOMEM);
  mtci_tl_writer_reset(&w);
  CHECK_EQ_INT(w.err, 0);
  mtci_tl_write_raw(&w, "0123456789", 10); /* exactly the cap */
  CHECK_EQ_INT(w.err, 0);
  CHECK_EQ_INT(w.len, 10);
  mtci_tl_write_raw(&w, "", 0); /* zero bytes at the cap is fine */
  CHECK_EQ_INT(w.err, 0);
  mtci_tl_writer_free(&w);
  /* a huge reserve is refused by the default cap, not by malloc */
  mtci_tl_writer_init(&w, 0);
  CHECK(mtci_tl_write_reserve(&w, SIZE_MAX - 4) == NULL);
  CHECK_EQ_INT(w.err, MTC_ERR_NOMEM);
  mtci_tl_writer_free(&w);
}

/* ---- reader ------------------------------------------------------------------- */

TEST(read_scalars_exact) {
  uint8_t in[128];
  size_t n = test_unhex("ffffffff 04030201 0000000000000080 0807060504030201"
                        "000000000000f03f b5757299 379779bc"
                        "000102030405060708090a0b0c0d0e0f",
                        in, sizeof in);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_read_int(&r), -1);
  CHECK_EQ_INT(mtci_tl_read_u32(&r), 0x01020304u);
  CHECK(mtci_tl_read_long(&r) == INT64_MIN);
  CHECK(mtci_tl_read_long(&r) == 0x0102030405060708ll);
  CHECK(mtci_tl_read_double(&r) == 1.0);
  CHECK_EQ_INT(mtci_tl_read_bool(&r), 1);
  CHECK_EQ_INT(mtci_tl_read_bool(&r), 0);
  uint8_t i128[16];
  mtci_tl_read_int128(&r, i128);
  CHECK_EQ_INT(i128[0], 0);
  CHECK_EQ_INT(i128[15], 15);
  CHECK_EQ_INT(mtci_tl_remaining(&r), 0);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
}

TEST(read_truncated_scalars) {
  const uint8_t in[7] = {1, 2, 3, 4, 5, 6, 7};
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, in, 3);
  CHECK_EQ_INT(mtci_tl_read_int(&r), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(r.pos, 0);
  mtci_tl_reader_init(&r, in, 7);
  CHECK_EQ_INT(mtci_tl_read_long(&r), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(r.pos, 0);
  mtci_tl_reader_init(&r, in, 7);
  uint8_t out[16];
  memset(out, 0xaa, sizeof out);
  mtci_tl_read_int128(&r, out);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TRUNCATED);
  for (int i = 0; i < 16; i++) CHECK_EQ_INT(out[i], 0);
  mtci_tl_reader_init(&r, NULL, 0);
  CHECK_EQ_INT(mtci_tl_read_u32(&r), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TRUNCATED);
  mtci_tl_reader_init(&r, NULL, 0);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
}

static int bytes_err(const char *hex) {
  uint8_t in[64];
  size_t n = test_unhex(hex, in, sizeof in);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, in, n);
  size_t len = 77;
  const uint8_t *p = mtci_tl_read_bytes(&r, &len);
  if (r.err && (p != NULL || len != 0 || r.pos != 0)) return 1; /* must not move */
  return r.err;
}

TEST(read_bytes_errors) {
  CHECK_EQ_INT(bytes_err(""), MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(bytes_err("05616263"), MTC_ERR_TL_TRUNCATED);          /* 5 declared, 3 there */
  CHECK_EQ_INT(bytes_err("05616263 6465"), MTC_ERR_TL_TRUNCATED);     /* data ok, pad missing */
  CHECK_EQ_INT(bytes_err("05616263 646500"), MTC_ERR_TL_TRUNCATED);   /* one pad byte short */
  CHECK_EQ_INT(bytes_err("05616263 64650000"), 0);
  CHECK_EQ_INT(bytes_err("fe01"), MTC_ERR_TL_TRUNCATED);              /* long header cut */
  CHECK_EQ_INT(bytes_err("fefd0000"), MTC_ERR_TL_BAD_VALUE);          /* 253 in long form */
  CHECK_EQ_INT(bytes_err("fe000000"), MTC_ERR_TL_BAD_VALUE);          /* 0 in long form */
  CHECK_EQ_INT(bytes_err("fefe0000 00"), MTC_ERR_TL_TRUNCATED);       /* 254 declared */
  CHECK_EQ_INT(bytes_err("feffffff 00000000"), MTC_ERR_TL_TRUNCATED); /* 16 MiB declared */
  CHECK_EQ_INT(bytes_err("ff000000"), MTC_ERR_TL_BAD_VALUE);          /* no such prefix */
}

/* Documented choice: padding byte values are not checked. */
TEST(read_bytes_nonzero_padding_accepted) {
  uint8_t in[8];
  size_t n = test_unhex("026162ff 01000000", in, sizeof in);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, in, n);
  size_t len;
  const uint8_t *p = mtci_tl_read_bytes(&r, &len);
  CHECK(p == in + 1);
  CHECK_EQ_INT(len, 2);
  CHECK_EQ_INT(mtci_tl_read_int(&r), 1);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
}

TEST(read_bool_and_constructor) {
  uint8_t in[16];
  size_t n = test_unhex("b5757298", in, sizeof in); /* boolTrue with one bit off */
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_read_bool(&r), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_BAD_VALUE);
  mtci_tl_reader_init(&r, in, 2);
  CHECK_EQ_INT(mtci_tl_read_bool(&r), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TRUNCATED);

  n = test_unhex("dcf8f173", in, sizeof in);
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_peek_u32(&r), 0x73f1f8dcu);
  CHECK_EQ_INT(r.pos, 0);
  mtci_tl_expect(&r, 0x73f1f8dcu);
  CHECK_EQ_INT(r.err, 0);
  CHECK_EQ_INT(mtci_tl_peek_u32(&r), 0); /* nothing left */
  mtci_tl_reader_init(&r, in, n);
  mtci_tl_expect(&r, 0xf35c6d01u);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_CONSTRUCTOR);
  CHECK_EQ_INT(mtci_tl_peek_u32(&r), 0);
}

TEST(read_vector_bounds) {
  uint8_t in[32];
  /* Vector<int> of 2 */
  size_t n = test_unhex("15c4b51c 02000000 0a000000 0b000000", in, sizeof in);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 4), 2);
  CHECK_EQ_INT(mtci_tl_read_int(&r), 10);
  CHECK_EQ_INT(mtci_tl_read_int(&r), 11);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
  /* the same 8 bytes cannot hold 2 longs */
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 8), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TOO_LONG);
  CHECK_EQ_INT(r.pos, 8);
  mtci_tl_reader_init(&r, in, n);
  in[4] = 3;
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 4), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TOO_LONG);
  /* a count of 2^32-1 with no data */
  n = test_unhex("15c4b51c ffffffff", in, sizeof in);
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 4), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TOO_LONG);
  /* min_elem_size 0 still bounds by bytes */
  mtci_tl_reader_init(&r, in + 4, 4);
  CHECK_EQ_INT(mtci_tl_read_bare_vector(&r, 0), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TOO_LONG);
  /* wrong vector id */
  n = test_unhex("15c4b51d 00000000", in, sizeof in);
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 4), 0);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_CONSTRUCTOR);
  /* empty vector */
  n = test_unhex("15c4b51c 00000000", in, sizeof in);
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 1000), 0);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
}

TEST(read_after_error_is_noop) {
  uint8_t in[32];
  size_t n = test_unhex("01000000 02000000 03616263 0000000000000000 0000000000000000", in,
                        sizeof in);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, in, n);
  CHECK_EQ_INT(mtci_tl_read_int(&r), 1);
  mtci_tl_expect(&r, 7); /* fails: 2 != 7 */
  CHECK_EQ_INT(r.err, MTC_ERR_TL_CONSTRUCTOR);
  size_t pos = r.pos;
  CHECK_EQ_INT(mtci_tl_read_int(&r), 0);
  CHECK_EQ_INT(mtci_tl_read_u32(&r), 0);
  CHECK(mtci_tl_read_long(&r) == 0);
  CHECK(mtci_tl_read_double(&r) == 0.0);
  CHECK_EQ_INT(mtci_tl_read_bool(&r), 0);
  size_t len = 5;
  CHECK(mtci_tl_read_bytes(&r, &len) == NULL);
  CHECK_EQ_INT(len, 0);
  uint8_t raw[8];
  memset(raw, 0x55, sizeof raw);
  mtci_tl_read_raw(&r, raw, sizeof raw);
  for (int i = 0; i < 8; i++) CHECK_EQ_INT(raw[i], 0);
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 4), 0);
  CHECK_EQ_INT(mtci_tl_remaining(&r), 0);
  CHECK_EQ_INT(mtci_tl_peek_u32(&r), 0);
  CHECK_EQ_INT(r.pos, pos);
  /* the first error wins */
  CHECK_EQ_INT(mtci_tl_fail(&r, MTC_ERR_TL_TRUNCATED), MTC_ERR_TL_CONSTRUCTOR);
  CHECK_EQ_INT(mtci_tl_read_end(&r), MTC_ERR_TL_CONSTRUCTOR);
}

TEST(read_end_trailing) {
  uint8_t in[8] = {1, 0, 0, 0, 2, 0, 0, 0};
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, in, sizeof in);
  mtci_tl_read_int(&r);
  CHECK_EQ_INT(mtci_tl_read_end(&r), MTC_ERR_TL_TRAILING);
  CHECK_EQ_INT(r.err, MTC_ERR_TL_TRAILING);
}

/* Random mixes of values written and read back. */
TEST(round_trip_property) {
  uint64_t seed = 0x1234567;
  static uint8_t blob[600];
  for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)(i ^ 0x5a);
  for (int iter = 0; iter < 200; iter++) {
    mtci_tl_writer w;
    mtci_tl_writer_init(&w, (size_t)(test_rand64(&seed) % 40));
    uint64_t ops[24], vals[24];
    int nops = (int)(test_rand64(&seed) % 24);
    for (int k = 0; k < nops; k++) {
      ops[k] = test_rand64(&seed) % 5;
      vals[k] = test_rand64(&seed);
      switch (ops[k]) {
      case 0: mtci_tl_write_u32(&w, (uint32_t)vals[k]); break;
      case 1: mtci_tl_write_long(&w, (int64_t)(vals[k] >> 1)); break;
      case 2: mtci_tl_write_bytes(&w, blob, (size_t)(vals[k] % sizeof blob)); break;
      case 3: mtci_tl_write_bool(&w, (int)(vals[k] & 1)); break;
      default: {
        double d = (double)(int64_t)(vals[k] >> 3) / 7.0;
        mtci_tl_write_double(&w, d);
      }
      }
    }
    CHECK_EQ_INT(w.err, 0);
    CHECK_EQ_INT(w.len % 4, 0);
    mtci_tl_reader r;
    mtci_tl_reader_init(&r, mtci_tl_writer_data(&w), w.len);
    for (int k = 0; k < nops; k++) {
      switch (ops[k]) {
      case 0: CHECK_EQ_INT(mtci_tl_read_u32(&r), (uint32_t)vals[k]); break;
      case 1: CHECK(mtci_tl_read_long(&r) == (int64_t)(vals[k] >> 1)); break;
      case 2: {
        size_t len;
        const uint8_t *p = mtci_tl_read_bytes(&r, &len);
        CHECK(p != NULL);
        CHECK_EQ_INT(len, vals[k] % sizeof blob);
        CHECK_MEM(p, blob, len);
        break;
      }
      case 3: CHECK_EQ_INT(mtci_tl_read_bool(&r), (int)(vals[k] & 1)); break;
      default: {
        double d = (double)(int64_t)(vals[k] >> 3) / 7.0;
        CHECK(mtci_tl_read_double(&r) == d);
      }
      }
    }
    CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
    mtci_tl_writer_free(&w);
  }
}


/* ---- msg_container ------------------------------------------------------------ */

/* Three messages built by hand:
 *   1: msg_id 0x5e0b700a00000001 seqno 1, boolTrue
 *   2: msg_id 0x5e0b700a00000005 seqno 2, rpc_result{req 0x5e0b6ff800000004,
 *      rpc_error{420, "FLOOD_WAIT_30"}}
 *   3: msg_id 0x5e0b700a00000009 seqno 3, msgs_ack{[0x0102030405060708]} */
static const char CONTAINER_HEX[] =
    "dcf8f173 03000000"
    "010000000a700b5e 01000000 04000000 b5757299"
    "050000000a700b5e 02000000 24000000"
    "  016d5cf3 04000000f86f0b5e 19ca4421 a4010000 0d464c4f 4f445f57 4149545f 33300000"
    "090000000a700b5e 03000000 14000000"
    "  59b4d662 15c4b51c 01000000 0807060504030201";
#define MSG2_OFF 36u
#define BODY2_LEN 36u

static size_t container_bytes(uint8_t *out, size_t cap) {
  return test_unhex(CONTAINER_HEX, out, cap);
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

TEST(container_parse_three) {
  uint8_t in[160];
  size_t n = container_bytes(in, sizeof in);
  CHECK_EQ_INT(n, 116);
  mtci_tl_container c;
  CHECK_EQ_INT(mtci_tl_container_parse(&c, in, n), 0);
  CHECK_EQ_INT(c.count, 3);
  mtci_tl_message m;
  CHECK_EQ_INT(mtci_tl_container_next(&c, &m), 1);
  CHECK(m.msg_id == 0x5e0b700a00000001ll);
  CHECK_EQ_INT(m.seqno, 1);
  CHECK(m.body == in + 24);
  CHECK_EQ_INT(m.body_len, 4);
  CHECK_EQ_INT(mtci_tl_container_next(&c, &m), 1);
  CHECK(m.msg_id == 0x5e0b700a00000005ll);
  CHECK_EQ_INT(m.seqno, 2);
  CHECK(m.body == in + 44);
  CHECK_EQ_INT(m.body_len, BODY2_LEN);
  CHECK_EQ_INT(mtci_tl_container_next(&c, &m), 1);
  CHECK(m.msg_id == 0x5e0b700a00000009ll);
  CHECK_EQ_INT(m.seqno, 3);
  CHECK(m.body == in + 96);
  CHECK_EQ_INT(m.body_len, 20);
  CHECK_EQ_INT(mtci_tl_container_next(&c, &m), 0);
  CHECK_EQ_INT(mtci_tl_container_next(&c, &m), 0);
  /* empty container */
  uint8_t e[8];
  test_unhex("dcf8f173 00000000", e, sizeof e);
  CHECK_EQ_INT(mtci_tl_container_parse(&c, e, 8), 0);
  CHECK_EQ_INT(mtci_tl_container_next(&c, &m), 0);
}

static int container_err(const uint8_t *in, size_t n) {
  mtci_tl_container c;
  int rc = mtci_tl_container_parse(&c, in, n);
  mtci_tl_message m;
  if (rc && (c.count != 0 || mtci_tl_container_next(&c, &m) != 0)) return 1;
  return rc;
}

TEST(container_malformed) {
  uint8_t in[200], t[200];
  size_t n = container_bytes(in, sizeof in);
  CHECK_EQ_INT(container_err(in, n), 0);
  /* cut anywhere inside -> truncated (the count check allows 5 at >= 108 bytes) */
  CHECK_EQ_INT(container_err(in, n - 1), MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(container_err(in, n - 20), MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(container_err(in, 6), MTC_ERR_TL_TRUNCATED);
  /* trailing bytes */
  memcpy(t, in, n);
  memset(t + n, 0, 4);
  CHECK_EQ_INT(container_err(t, n + 4), MTC_ERR_TL_TRAILING);
  /* wrong constructor */
  memcpy(t, in, n);
  t[0] ^= 1;
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_CONSTRUCTOR);
  /* count 4: passes the size bound (108 / 20 = 5) but the 4th is missing */
  memcpy(t, in, n);
  put32(t + 4, 4);
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_TRUNCATED);
  /* count 6: more than 108 bytes can hold */
  put32(t + 4, 6);
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_TOO_LONG);
  put32(t + 4, 0xffffffffu);
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_TOO_LONG);
  /* body length not a multiple of 4, zero, beyond the data */
  memcpy(t, in, n);
  put32(t + 20, 6);
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_BAD_VALUE);
  put32(t + 20, 0);
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_BAD_VALUE);
  put32(t + 20, 0x7ffffffcu);
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_TRUNCATED);
  put32(t + 20, 0xfffffffcu); /* -4 as int */
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_TRUNCATED);
  /* last body one word longer than what is left */
  memcpy(t, in, n);
  put32(t + 92, 24);
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_TRUNCATED);
  /* shifting a boundary: first body 8 bytes swallows the next header word, and
   * the rest no longer lines up */
  memcpy(t, in, n);
  put32(t + 20, 8);
  CHECK(container_err(t, n) < 0);
  /* nested container as a body */
  memcpy(t, in, n);
  put32(t + 24, 0x73f1f8dcu);
  CHECK_EQ_INT(container_err(t, n), MTC_ERR_TL_BAD_VALUE);
}

TEST(container_build) {
  uint8_t want[160];
  size_t n = container_bytes(want, sizeof want);
  mtci_tl_message msgs[3] = {
      {0x5e0b700a00000001ll, 1, want + 24, 4},
      {0x5e0b700a00000005ll, 2, want + 44, BODY2_LEN},
      {0x5e0b700a00000009ll, 3, want + 96, 20},
  };
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 16);
  CHECK_EQ_INT(mtci_tl_container_write(&w, msgs, 3), 0);
  CHECK_EQ_INT(w.len, n);
  CHECK_MEM(mtci_tl_writer_data(&w), want, n);

  /* arguments outside the sending limits: nothing written */
  mtci_tl_writer_reset(&w);
  CHECK_EQ_INT(mtci_tl_container_write(&w, msgs, 0), MTC_ERR_INVALID_ARG);
  mtci_tl_message bad = msgs[0];
  bad.body_len = 6;
  CHECK_EQ_INT(mtci_tl_container_write(&w, &bad, 1), MTC_ERR_INVALID_ARG);
  bad.body_len = 0;
  CHECK_EQ_INT(mtci_tl_container_write(&w, &bad, 1), MTC_ERR_INVALID_ARG);
  bad = msgs[0];
  bad.body = want; /* starts with the container id */
  CHECK_EQ_INT(mtci_tl_container_write(&w, &bad, 1), MTC_ERR_INVALID_ARG);
  static mtci_tl_message many[1021];
  for (size_t i = 0; i < 1021; i++) many[i] = msgs[0];
  CHECK_EQ_INT(mtci_tl_container_write(&w, many, 1021), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(w.len, 0);
  CHECK_EQ_INT(mtci_tl_container_write(&w, many, 1020), 0); /* 8 + 1020 * 20 bytes */
  CHECK_EQ_INT(w.len, 8 + 1020 * 20);
  mtci_tl_writer_reset(&w);
  /* 2^15 total: 8 + 16 + 32744 fits, 4 more does not */
  static uint8_t big[32768];
  memset(big, 0x11, sizeof big);
  mtci_tl_message b = {1, 0, big, 32744};
  CHECK_EQ_INT(mtci_tl_container_write(&w, &b, 1), 0);
  CHECK_EQ_INT(w.len, 32768);
  mtci_tl_writer_reset(&w);
  b.body_len = 32748;
  CHECK_EQ_INT(mtci_tl_container_write(&w, &b, 1), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(w.len, 0);
  /* the writer's own error comes back */
  w.max = 12;
  CHECK_EQ_INT(mtci_tl_container_write(&w, msgs, 3), MTC_ERR_NOMEM);
  mtci_tl_writer_free(&w);
}

/* ---- rpc_result / rpc_error ------------------------------------------------------ */

TEST(rpc_result_with_error) {
  uint8_t in[160];
  container_bytes(in, sizeof in);
  const uint8_t *obj = in + MSG2_OFF + 8; /* body 2 of the container */
  mtci_tl_rpc_result res;
  CHECK_EQ_INT(mtci_tl_rpc_result_parse(obj, BODY2_LEN, &res), 0);
  CHECK(res.req_msg_id == 0x5e0b6ff800000004ll);
  CHECK(res.result == obj + 12);
  CHECK_EQ_INT(res.result_len, 24);
  mtci_tl_rpc_error e;
  CHECK_EQ_INT(mtci_tl_rpc_error_parse(res.result, res.result_len, &e), 1);
  CHECK_EQ_INT(e.code, 420);
  CHECK_EQ_INT(e.message_len, 13);
  CHECK(memcmp(e.message, "FLOOD_WAIT_30", 13) == 0);
  CHECK(strcmp(e.text, "FLOOD_WAIT_30") == 0);
  int32_t v = -1;
  CHECK_EQ_INT(mtci_tl_rpc_error_suffix(&e, "FLOOD_WAIT_", &v), 1);
  CHECK_EQ_INT(v, 30);
  CHECK_EQ_INT(mtci_tl_rpc_error_suffix(&e, "PHONE_MIGRATE_", &v), 0);
  CHECK_EQ_INT(mtci_tl_rpc_error_suffix(&e, "FLOOD_WAIT_3", &v), 1);
  CHECK_EQ_INT(v, 0);
  CHECK_EQ_INT(mtci_tl_rpc_error_suffix(&e, "FLOOD_WAIT_30", &v), 0); /* no digits left */
  CHECK_EQ_INT(mtci_tl_rpc_error_suffix(&e, "FLOOD", &v), 0);         /* "_WAIT_30" */

  /* a result that is no error */
  static const uint8_t yes[4] = {0xb5, 0x75, 0x72, 0x99};
  CHECK_EQ_INT(mtci_tl_rpc_error_parse(yes, 4, &e), 0);
  CHECK_EQ_INT(mtci_tl_rpc_error_parse(yes, 3, &e), MTC_ERR_TL_TRUNCATED);
}

TEST(rpc_result_malformed) {
  uint8_t in[160], t[64];
  container_bytes(in, sizeof in);
  const uint8_t *obj = in + MSG2_OFF + 8;
  mtci_tl_rpc_result res;
  memcpy(t, obj, BODY2_LEN);
  t[3] ^= 0x80;
  CHECK_EQ_INT(mtci_tl_rpc_result_parse(t, BODY2_LEN, &res), MTC_ERR_TL_CONSTRUCTOR);
  CHECK_EQ_INT(mtci_tl_rpc_result_parse(obj, 10, &res), MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(mtci_tl_rpc_result_parse(obj, 12, &res), MTC_ERR_TL_TRUNCATED); /* no result */
  CHECK_EQ_INT(mtci_tl_rpc_result_parse(obj, 14, &res), MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(mtci_tl_rpc_result_parse(obj, 18, &res), MTC_ERR_TL_BAD_VALUE);
  CHECK(res.result == NULL);
  CHECK_EQ_INT(mtci_tl_rpc_result_parse(obj, 16, &res), 0);

  /* rpc_error: cut string, trailing word, bad string prefix */
  mtci_tl_rpc_error e;
  const uint8_t *err = obj + 12;
  CHECK_EQ_INT(mtci_tl_rpc_error_parse(err, 20, &e), MTC_ERR_TL_TRUNCATED);
  CHECK_EQ_INT(mtci_tl_rpc_error_parse(err, 6, &e), MTC_ERR_TL_TRUNCATED);
  memcpy(t, err, 24);
  memset(t + 24, 0, 4);
  CHECK_EQ_INT(mtci_tl_rpc_error_parse(t, 28, &e), MTC_ERR_TL_TRAILING);
  t[8] = 0xff;
  CHECK_EQ_INT(mtci_tl_rpc_error_parse(t, 24, &e), MTC_ERR_TL_BAD_VALUE);
  CHECK_EQ_INT(e.code, 0);

  /* a long message is cut in text[] but whole in the view */
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  char msg[300];
  memset(msg, 'A', sizeof msg);
  mtci_tl_write_u32(&w, MTCI_TL_RPC_ERROR_ID);
  mtci_tl_write_int(&w, -503);
  mtci_tl_write_bytes(&w, msg, sizeof msg);
  CHECK_EQ_INT(mtci_tl_rpc_error_parse(mtci_tl_writer_data(&w), w.len, &e), 1);
  CHECK_EQ_INT(e.code, -503);
  CHECK_EQ_INT(e.message_len, 300);
  CHECK_EQ_INT(strlen(e.text), 255);
  int32_t v;
  CHECK_EQ_INT(mtci_tl_rpc_error_suffix(&e, "A", &v), 0);
  mtci_tl_writer_free(&w);
}

/* ---- gzip_packed ----------------------------------------------------------------- */

/* gzip_packed{gzip(Vector<int>[1, -1])}; the stream is Python's
 * gzip.compress(bytes.fromhex("15c4b51c0200000001000000ffffffff"), mtime=0). */
static const char GZ_VEC_HEX[] =
    "1f8b0800000000000203133db25586898181811188ff0301008022540210000000";
static const char VEC_HEX[] = "15c4b51c0200000001000000ffffffff";

static void wrap_gzip_packed(mtci_tl_writer *w, const uint8_t *packed, size_t n) {
  mtci_tl_write_u32(w, MTCI_TL_GZIP_PACKED_ID);
  mtci_tl_write_bytes(w, packed, n);
}

/* Compresses with zlib directly, independent of mtci_tl_gzip_pack;
 * window_bits 15 = zlib, 31 = gzip, -15 = raw. Returns the length. */
static size_t zlib_compress(const uint8_t *in, size_t n, uint8_t *out, size_t cap, int wbits) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  zs.next_in = (Bytef *)(uintptr_t)in;
  zs.avail_in = (uInt)n;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  int zr = deflate(&zs, Z_FINISH);
  size_t len = cap - zs.avail_out;
  deflateEnd(&zs);
  return zr == Z_STREAM_END ? len : 0;
}

static int unwrap_err(const uint8_t *packed, size_t n, size_t cap) {
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  wrap_gzip_packed(&w, packed, n);
  mtci_tl_unwrapped u;
  int rc = mtci_tl_unwrap(mtci_tl_writer_data(&w), w.len, cap, &u);
  if (rc && (u.data || u.owned || u.len)) rc = 1;
  mtci_tl_unwrapped_free(&u);
  mtci_tl_writer_free(&w);
  return rc;
}

TEST(gzip_known_stream) {
  uint8_t gz[64], vec[16];
  size_t gn = test_unhex(GZ_VEC_HEX, gz, sizeof gz);
  size_t vn = test_unhex(VEC_HEX, vec, sizeof vec);
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  wrap_gzip_packed(&w, gz, gn);
  mtci_tl_unwrapped u;
  CHECK_EQ_INT(mtci_tl_unwrap(mtci_tl_writer_data(&w), w.len, 0, &u), 0);
  CHECK(u.owned != NULL);
  CHECK(u.data == u.owned);
  CHECK_EQ_INT(u.len, vn);
  CHECK_MEM(u.data, vec, vn);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, u.data, u.len);
  CHECK_EQ_INT(mtci_tl_read_vector(&r, 4), 2);
  CHECK_EQ_INT(mtci_tl_read_int(&r), 1);
  CHECK_EQ_INT(mtci_tl_read_int(&r), -1);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
  mtci_tl_unwrapped_free(&u);
  CHECK(u.owned == NULL);
  mtci_tl_unwrapped_free(&u);
  /* into a caller buffer: exactly 16 fits, 12 does not */
  uint8_t out[16];
  size_t olen = 0;
  CHECK_EQ_INT(mtci_tl_gzip_inflate_into(gz, gn, out, 16, &olen), 0);
  CHECK_EQ_INT(olen, 16);
  CHECK_EQ_INT(mtci_tl_gzip_inflate_into(gz, gn, out, 12, &olen), MTC_ERR_GZIP);
  CHECK_EQ_INT(olen, 0);
  /* and a non-gzip object is a plain view */
  CHECK_EQ_INT(mtci_tl_unwrap(vec, vn, 0, &u), 0);
  CHECK(u.data == vec);
  CHECK(u.owned == NULL);
  CHECK_EQ_INT(u.len, vn);
  mtci_tl_unwrapped_free(&u);
  CHECK_EQ_INT(mtci_tl_unwrap(vec, 3, 0, &u), MTC_ERR_TL_TRUNCATED);
  mtci_tl_writer_free(&w);
}

TEST(gzip_round_trip_zlib_and_gzip) {
  static uint8_t obj[4004], z[8192];
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_vector(&w, 999);
  for (int i = 0; i < 999; i++) mtci_tl_write_int(&w, i * i);
  CHECK_EQ_INT(w.len, sizeof obj);
  memcpy(obj, mtci_tl_writer_data(&w), sizeof obj);
  mtci_tl_writer_free(&w);
  const int kinds[2] = {15, 31}; /* zlib header, gzip header: both auto-detected */
  for (int k = 0; k < 2; k++) {
    size_t zn = zlib_compress(obj, sizeof obj, z, sizeof z, kinds[k]);
    CHECK(zn > 0 && zn < sizeof obj);
    mtci_tl_writer_init(&w, 0);
    wrap_gzip_packed(&w, z, zn);
    mtci_tl_unwrapped u;
    CHECK_EQ_INT(mtci_tl_gzip_unpack(mtci_tl_writer_data(&w), w.len, 0, &u), 0);
    CHECK_EQ_INT(u.len, sizeof obj);
    CHECK_MEM(u.data, obj, sizeof obj);
    CHECK(u.owned_size <= MTCI_TL_GZIP_DEFAULT_CAP);
    mtci_tl_unwrapped_free(&u);
    /* a cap of exactly the size works and is the most ever allocated */
    CHECK_EQ_INT(mtci_tl_gzip_unpack(mtci_tl_writer_data(&w), w.len, sizeof obj, &u), 0);
    CHECK_EQ_INT(u.owned_size, sizeof obj);
    mtci_tl_unwrapped_free(&u);
    CHECK_EQ_INT(mtci_tl_gzip_unpack(mtci_tl_writer_data(&w), w.len, sizeof obj - 1, &u),
                 MTC_ERR_GZIP);
    CHECK(u.owned == NULL);
    mtci_tl_writer_free(&w);
  }
  /* raw deflate has no header to detect */
  size_t zn = zlib_compress(obj, sizeof obj, z, sizeof z, -15);
  CHECK(zn > 0);
  CHECK_EQ_INT(unwrap_err(z, zn, 0), MTC_ERR_GZIP);
}

TEST(gzip_pack_independent_check) {
  static uint8_t obj[20000], z[40000];
  for (size_t i = 0; i < sizeof obj; i++) obj[i] = (uint8_t)("TL runtime "[i % 11]);
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 32);
  CHECK_EQ_INT(mtci_tl_gzip_pack(&w, obj, sizeof obj), 0);
  const uint8_t *p = mtci_tl_writer_data(&w);
  CHECK(w.len < 1000);
  static const uint8_t id[4] = {0xa1, 0xcf, 0x72, 0x30};
  CHECK_MEM(p, id, 4);
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, p + 4, w.len - 4);
  size_t pn;
  const uint8_t *packed = mtci_tl_read_bytes(&r, &pn);
  CHECK_EQ_INT(mtci_tl_read_end(&r), 0);
  CHECK(packed[0] == 0x1f && packed[1] == 0x8b && packed[2] == 8); /* gzip, deflate */
  /* inflate with zlib directly */
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  CHECK_EQ_INT(inflateInit2(&zs, 31), Z_OK);
  zs.next_in = (Bytef *)(uintptr_t)packed;
  zs.avail_in = (uInt)pn;
  zs.next_out = z;
  zs.avail_out = sizeof z;
  int zr = inflate(&zs, Z_FINISH);
  size_t zn = sizeof z - zs.avail_out;
  inflateEnd(&zs);
  CHECK_EQ_INT(zr, Z_STREAM_END);
  CHECK_EQ_INT(zn, sizeof obj);
  CHECK_MEM(z, obj, sizeof obj);
  /* and back through unwrap */
  mtci_tl_unwrapped u;
  CHECK_EQ_INT(mtci_tl_unwrap(p, w.len, 0, &u), 0);
  CHECK_EQ_INT(u.len, sizeof obj);
  CHECK_MEM(u.data, obj, sizeof obj);
  mtci_tl_unwrapped_free(&u);
  /* only whole objects are packed */
  mtci_tl_writer_reset(&w);
  CHECK_EQ_INT(mtci_tl_gzip_pack(&w, obj, 6), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_tl_gzip_pack(&w, obj, 0), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(w.len, 0);
  w.max = 8;
  CHECK_EQ_INT(mtci_tl_gzip_pack(&w, obj, sizeof obj), MTC_ERR_NOMEM);
  mtci_tl_writer_free(&w);
}

/* 64 MiB of zeros deflate to about 64 KiB; inflating stops at the cap. The
 * bomb is built in 64 KiB steps so the test never holds 64 MiB either. */
TEST(gzip_bomb_rejected) {
  static uint8_t zeros[65536];
  size_t zcap = 1u << 20, zn = 0;
  uint8_t *z = malloc(zcap);
  CHECK(z != NULL);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  CHECK_EQ_INT(deflateInit2(&zs, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_out = z;
  zs.avail_out = (uInt)zcap;
  for (int i = 0; i < 1024; i++) {
    zs.next_in = zeros;
    zs.avail_in = sizeof zeros;
    CHECK_EQ_INT(deflate(&zs, i == 1023 ? Z_FINISH : Z_NO_FLUSH), i == 1023 ? Z_STREAM_END : Z_OK);
  }
  CHECK_EQ_INT(zs.total_in, 64u << 20);
  zn = zcap - zs.avail_out;
  deflateEnd(&zs);
  CHECK(zn < 200000);
  CHECK_EQ_INT(unwrap_err(z, zn, 0), MTC_ERR_GZIP);       /* default 16 MiB cap */
  CHECK_EQ_INT(unwrap_err(z, zn, 1u << 20), MTC_ERR_GZIP); /* 1 MiB cap */
  /* into a fixed 1 MiB buffer: the cap is the buffer, nothing else is allocated */
  uint8_t *out = malloc(1u << 20);
  CHECK(out != NULL);
  size_t olen = 1;
  CHECK_EQ_INT(mtci_tl_gzip_inflate_into(z, zn, out, 1u << 20, &olen), MTC_ERR_GZIP);
  CHECK_EQ_INT(olen, 0);
  free(out);
  free(z);
}

TEST(gzip_corrupt_rejected) {
  uint8_t gz[64], t[64];
  size_t gn = test_unhex(GZ_VEC_HEX, gz, sizeof gz);
  CHECK_EQ_INT(unwrap_err(gz, gn, 0), 0);
  /* CRC32 in the trailer */
  memcpy(t, gz, gn);
  t[gn - 8] ^= 1;
  CHECK_EQ_INT(unwrap_err(t, gn, 0), MTC_ERR_GZIP);
  /* ISIZE in the trailer */
  memcpy(t, gz, gn);
  t[gn - 4] ^= 1;
  CHECK_EQ_INT(unwrap_err(t, gn, 0), MTC_ERR_GZIP);
  /* bad magic, bad method */
  memcpy(t, gz, gn);
  t[1] = 0;
  CHECK_EQ_INT(unwrap_err(t, gn, 0), MTC_ERR_GZIP);
  memcpy(t, gz, gn);
  t[2] = 7;
  CHECK_EQ_INT(unwrap_err(t, gn, 0), MTC_ERR_GZIP);
  /* stream cut short at every length */
  for (size_t k = 0; k < gn; k++) CHECK_EQ_INT(unwrap_err(gz, k, 0), MTC_ERR_GZIP);
  /* bytes after the end of the stream, inside packed_data */
  memcpy(t, gz, gn);
  t[gn] = 0;
  CHECK_EQ_INT(unwrap_err(t, gn + 1, 0), MTC_ERR_GZIP);
  /* bytes after packed_data, outside it */
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  wrap_gzip_packed(&w, gz, gn);
  mtci_tl_write_u32(&w, 0);
  mtci_tl_unwrapped u;
  CHECK_EQ_INT(mtci_tl_unwrap(mtci_tl_writer_data(&w), w.len, 0, &u), MTC_ERR_TL_TRAILING);
  /* packed_data itself truncated */
  CHECK_EQ_INT(mtci_tl_unwrap(mtci_tl_writer_data(&w), w.len - 8, 0, &u), MTC_ERR_TL_TRUNCATED);
  /* not gzip_packed at all for the direct call */
  uint8_t vec[16];
  test_unhex(VEC_HEX, vec, sizeof vec);
  CHECK_EQ_INT(mtci_tl_gzip_unpack(vec, sizeof vec, 0, &u), MTC_ERR_TL_CONSTRUCTOR);
  mtci_tl_writer_free(&w);
}

TEST(gzip_inner_object_checks) {
  uint8_t z[256], obj[64];
  mtci_tl_writer w;
  /* gzip_packed inside gzip_packed */
  mtci_tl_writer_init(&w, 0);
  uint8_t gz[64];
  size_t gn = test_unhex(GZ_VEC_HEX, gz, sizeof gz);
  wrap_gzip_packed(&w, gz, gn);
  size_t zn = zlib_compress(mtci_tl_writer_data(&w), w.len, z, sizeof z, 31);
  CHECK(zn > 0);
  mtci_tl_writer_free(&w);
  CHECK_EQ_INT(unwrap_err(z, zn, 0), MTC_ERR_TL_DEPTH);
  /* inflated length not a multiple of 4 */
  memset(obj, 0x42, sizeof obj);
  zn = zlib_compress(obj, 6, z, sizeof z, 31);
  CHECK_EQ_INT(unwrap_err(z, zn, 0), MTC_ERR_TL_BAD_VALUE);
  /* empty */
  zn = zlib_compress(obj, 0, z, sizeof z, 31);
  CHECK(zn > 0);
  CHECK_EQ_INT(unwrap_err(z, zn, 0), MTC_ERR_TL_TRUNCATED);
  /* empty packed_data */
  CHECK_EQ_INT(unwrap_err(z, 0, 0), MTC_ERR_GZIP);
}

TEST_MAIN("tl", CASE(write_scalars_exact), CASE(write_bytes_exact_small), CASE(write_bytes_lengths),
          CASE(bytes_max_length_boundary), CASE(writer_headroom_stays_in_front),
          CASE(writer_cap_is_sticky), CASE(read_scalars_exact), CASE(read_truncated_scalars),
          CASE(read_bytes_errors), CASE(read_bytes_nonzero_padding_accepted),
          CASE(read_bool_and_constructor), CASE(read_vector_bounds), CASE(read_after_error_is_noop),
          CASE(read_end_trailing), CASE(round_trip_property), CASE(container_parse_three),
          CASE(container_malformed), CASE(container_build), CASE(rpc_result_with_error),
          CASE(rpc_result_malformed), CASE(gzip_known_stream), CASE(gzip_round_trip_zlib_and_gzip),
          CASE(gzip_pack_independent_check), CASE(gzip_bomb_rejected), CASE(gzip_corrupt_rejected),
          CASE(gzip_inner_object_checks))
