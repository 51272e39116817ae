/*
 * Framing codecs (src/transport/codec.*). Exact bytes are hand-derived from
 * the transports spec (seed 002, PROTOCOL.md §4.1); full-transport CRC32
 * values were computed independently with python3 zlib.crc32 over
 * len|seqno|payload. Property tests check that every split of a stream gives
 * the same events.
 */
#include "test.h"

#include "transport/codec.h"

/* ---- helpers ------------------------------------------------------------ */

static const uint8_t P8[8] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};

/* 24 bytes 20 21 .. 37: an arbitrary message-sized payload. */
static void fill_p24(uint8_t *p) {
  for (int i = 0; i < 24; i++) p[i] = (uint8_t)(0x20 + i);
}

static int init_ok(mtci_codec *c, mtci_codec_kind kind, unsigned flags) {
  static struct test_fixed_rng none = {NULL, 0, 0};
  return mtci_codec_init(c, kind, flags, test_fixed_rng_fn, &none);
}

/* Encodes payload (copied to buf[hr]) and returns the frame bytes' start. */
static int enc(mtci_codec *c, uint8_t *buf, size_t cap, size_t hr, const uint8_t *payload,
               size_t len, int qa, const uint8_t **frame, size_t *flen) {
  memcpy(buf + hr, payload, len);
  size_t off = 0;
  int r = mtci_codec_encode(c, buf, cap, hr, len, qa, &off, flen);
  *frame = buf + off;
  return r;
}

/* Feeds all of s at once, expecting exactly one event that uses all bytes. */
static int feed_one(mtci_codec *c, const uint8_t *s, size_t n, mtci_frame *ev) {
  size_t used = 0;
  int r = mtci_codec_feed(c, s, n, &used, ev);
  if (r < 0) return r;
  if (r != 1 || used != n) return -1000;
  return 1;
}

static int feed_hex(mtci_codec *c, const char *hex, mtci_frame *ev) {
  static uint8_t tmp[4096];
  size_t n = test_unhex(hex, tmp, sizeof tmp);
  if (n == (size_t)-1) return -2000;
  return feed_one(c, tmp, n, ev);
}

/* Feeds all of s; returns the first error, else 0; the count of events in *nev. */
static int feed_expect_none(mtci_codec *c, const char *hex) {
  uint8_t tmp[64];
  size_t n = test_unhex(hex, tmp, sizeof tmp), used = 0;
  mtci_frame ev;
  int r = mtci_codec_feed(c, tmp, n, &used, &ev);
  if (r < 0) return r;
  if (r != 0 || used != n) return -1000;
  return 0;
}

static uint64_t fnv(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* ---- tags, sizes, init ---------------------------------------------------- */

TEST(tags_and_sizes) {
  uint8_t t[4];
  CHECK_EQ_INT(mtci_codec_tag(MTCI_CODEC_ABRIDGED, t), 1);
  CHECK_MEM(t, "\xef\xef\xef\xef", 4);
  CHECK_EQ_INT(mtci_codec_tag(MTCI_CODEC_INTERMEDIATE, t), 4);
  CHECK_MEM(t, "\xee\xee\xee\xee", 4);
  CHECK_EQ_INT(mtci_codec_tag(MTCI_CODEC_PADDED, t), 4);
  CHECK_MEM(t, "\xdd\xdd\xdd\xdd", 4);
  CHECK_EQ_INT(mtci_codec_tag(MTCI_CODEC_FULL, t), 0);
  CHECK_EQ_INT(mtci_codec_tag((mtci_codec_kind)9, t), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_codec_header_size(MTCI_CODEC_ABRIDGED), 5);
  CHECK_EQ_INT(mtci_codec_header_size(MTCI_CODEC_INTERMEDIATE), 8);
  CHECK_EQ_INT(mtci_codec_header_size(MTCI_CODEC_PADDED), 8);
  CHECK_EQ_INT(mtci_codec_header_size(MTCI_CODEC_FULL), 8);
  CHECK_EQ_INT(mtci_codec_tailroom(MTCI_CODEC_ABRIDGED), 0);
  CHECK_EQ_INT(mtci_codec_tailroom(MTCI_CODEC_INTERMEDIATE), 0);
  CHECK_EQ_INT(mtci_codec_tailroom(MTCI_CODEC_PADDED), 15);
  CHECK_EQ_INT(mtci_codec_tailroom(MTCI_CODEC_FULL), 4);
  CHECK(mtci_codec_has_quick_ack(MTCI_CODEC_ABRIDGED));
  CHECK(mtci_codec_has_quick_ack(MTCI_CODEC_PADDED));
  CHECK(!mtci_codec_has_quick_ack(MTCI_CODEC_FULL));

  mtci_codec c;
  CHECK_EQ_INT(mtci_codec_init(&c, (mtci_codec_kind)0, 0, NULL, NULL), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_codec_init(&c, (mtci_codec_kind)5, 0, NULL, NULL), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_codec_init(&c, MTCI_CODEC_PADDED, 0, NULL, NULL), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_codec_init(&c, MTCI_CODEC_ABRIDGED, 1u << 7, NULL, NULL),
               MTC_ERR_INVALID_ARG);
  mtci_codec_free(&c); /* safe after a failed init */
  mtci_codec_free(&c);
  CHECK_EQ_INT(mtci_codec_init(&c, MTCI_CODEC_FULL, MTCI_CODEC_F_TAG, NULL, NULL), 0);
  mtci_codec_free(&c);
  mtci_codec_free(NULL);
}

TEST(detect) {
  mtci_codec_kind k = (mtci_codec_kind)0;
  CHECK_EQ_INT(mtci_codec_detect((const uint8_t *)"", 0, &k), 0);
  CHECK_EQ_INT(mtci_codec_detect((const uint8_t *)"\xef", 1, &k), 1);
  CHECK_EQ_INT(k, MTCI_CODEC_ABRIDGED);
  CHECK_EQ_INT(mtci_codec_detect((const uint8_t *)"\xee\xee\xee", 3, &k), 0);
  CHECK_EQ_INT(mtci_codec_detect((const uint8_t *)"\xee\xee\xee\xee\x18", 5, &k), 1);
  CHECK_EQ_INT(k, MTCI_CODEC_INTERMEDIATE);
  CHECK_EQ_INT(mtci_codec_detect((const uint8_t *)"\xdd", 1, &k), 0);
  CHECK_EQ_INT(mtci_codec_detect((const uint8_t *)"\xdd\xdd\xdd\xdd", 4, &k), 1);
  CHECK_EQ_INT(k, MTCI_CODEC_PADDED);
  CHECK_EQ_INT(mtci_codec_detect((const uint8_t *)"\x14\x00\x00\x00", 4, &k), 1);
  CHECK_EQ_INT(k, MTCI_CODEC_FULL);
  k = (mtci_codec_kind)0;
  CHECK_EQ_INT(mtci_codec_detect((const uint8_t *)"\xee\xef", 2, &k), 1);
  CHECK_EQ_INT(k, MTCI_CODEC_FULL);
}

/* ---- exact encodings ---------------------------------------------------- */

TEST(abridged_encode) {
  mtci_codec c;
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_ABRIDGED, MTCI_CODEC_F_TAG), 0);
  uint8_t buf[8 + 2032], want[16];
  const uint8_t *f;
  size_t fl;
  /* first frame: tag ef, then len/4 = 2 */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 10);
  CHECK_EQ_INT(f - buf, 6);
  test_unhex("ef 02 0011223344556677", want, sizeof want);
  CHECK_MEM(f, want, 10);
  /* later frames: no tag */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 9);
  CHECK_MEM(f, want + 1, 9);
  /* quick ack: bit 7 of the length byte */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 1, &f, &fl), 0);
  CHECK_EQ_INT(f[0], 0x82);
  CHECK_MEM(f + 1, P8, 8);

  static uint8_t big[2032];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
  /* 126*4 = 504 bytes: still one byte (0x7e) */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, big, 504, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 505);
  CHECK_EQ_INT(f[0], 0x7e);
  /* 127*4 = 508 bytes: 7f + 3-byte LE 0x7f */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, big, 508, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 512);
  CHECK_MEM(f, "\x7f\x7f\x00\x00", 4);
  /* 508*4 = 2032 bytes: 7f fc 01 00 */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, big, 2032, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 2036);
  CHECK_EQ_INT(f - buf, 4);
  CHECK_MEM(f, "\x7f\xfc\x01\x00", 4);
  CHECK_MEM(f + 4, big, 2032);
  /* ... with quick ack: ff fc 01 00 */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, big, 2032, 1, &f, &fl), 0);
  CHECK_MEM(f, "\xff\xfc\x01\x00", 4);
  mtci_codec_free(&c);
}

TEST(intermediate_encode) {
  mtci_codec c;
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_F_TAG), 0);
  uint8_t buf[32], want[32];
  const uint8_t *f;
  size_t fl;
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 16);
  CHECK_EQ_INT(f - buf, 0);
  test_unhex("eeeeeeee 08000000 0011223344556677", want, sizeof want);
  CHECK_MEM(f, want, 16);
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 1, &f, &fl), 0);
  CHECK_EQ_INT(fl, 12);
  test_unhex("08000080 0011223344556677", want, sizeof want);
  CHECK_MEM(f, want, 12);
  mtci_codec_free(&c);

  /* obfuscated connection: no tag on the first frame */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, 0), 0);
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 12);
  CHECK_MEM(f, "\x08\x00\x00\x00", 4);
  mtci_codec_free(&c);
}

TEST(padded_encode) {
  /* RNG stream: pad-length byte, then that many padding bytes, per frame. */
  uint8_t rnd[64];
  size_t rn = test_unhex("37 a1a2a3a4a5a6a7"  /* 0x37 & 15 = 7 */
                         "40"                 /* 0x40 & 15 = 0 */
                         "2f 000102030405060708090a0b0c0d0e", /* 15 */
                         rnd, sizeof rnd);
  struct test_fixed_rng r = {rnd, rn, 0};
  mtci_codec c;
  CHECK_EQ_INT(mtci_codec_init(&c, MTCI_CODEC_PADDED, MTCI_CODEC_F_TAG, test_fixed_rng_fn, &r),
               0);
  uint8_t buf[8 + 8 + 15], want[64];
  const uint8_t *f;
  size_t fl;
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 4 + 4 + 8 + 7);
  test_unhex("dddddddd 0f000000 0011223344556677 a1a2a3a4a5a6a7", want, sizeof want);
  CHECK_MEM(f, want, fl);
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 1, &f, &fl), 0);
  CHECK_EQ_INT(fl, 12);
  test_unhex("08000080 0011223344556677", want, sizeof want);
  CHECK_MEM(f, want, fl);
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 4 + 8 + 15);
  test_unhex("17000000 0011223344556677 000102030405060708090a0b0c0d0e", want, sizeof want);
  CHECK_MEM(f, want, fl);
  /* the RNG is exhausted: its error comes back */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), MTC_ERR_RANDOM);
  mtci_codec_free(&c);

  /* a failed encode keeps the tag pending */
  uint8_t rnd2[1] = {0x10};
  struct test_fixed_rng r2 = {rnd2, 0, 0};
  CHECK_EQ_INT(mtci_codec_init(&c, MTCI_CODEC_PADDED, MTCI_CODEC_F_TAG, test_fixed_rng_fn, &r2),
               0);
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), MTC_ERR_RANDOM);
  r2.len = 1;
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  test_unhex("dddddddd 08000000 0011223344556677", want, sizeof want);
  CHECK_EQ_INT(fl, 16);
  CHECK_MEM(f, want, fl);
  mtci_codec_free(&c);
}

/* xorshift RNG callback for the distribution test */
static int xs_rng(void *ud, uint8_t *out, size_t len) {
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(test_rand64((uint64_t *)ud) >> 24);
  return 0;
}

TEST(padded_distribution) {
  uint64_t seed = 12345;
  mtci_codec c;
  CHECK_EQ_INT(mtci_codec_init(&c, MTCI_CODEC_PADDED, 0, xs_rng, &seed), 0);
  int count[16] = {0};
  uint8_t buf[4 + 24 + 15];
  uint8_t p[24];
  fill_p24(p);
  for (int i = 0; i < 1600; i++) {
    const uint8_t *f;
    size_t fl;
    CHECK_EQ_INT(enc(&c, buf, sizeof buf, 4, p, 24, 0, &f, &fl), 0);
    CHECK(fl >= 4 + 24 && fl <= 4 + 24 + 15);
    size_t pad = fl - 4 - 24;
    uint32_t w = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 |
                 (uint32_t)f[3] << 24;
    CHECK_EQ_INT(w, 24 + pad); /* the length word counts the padding */
    CHECK_MEM(f + 4, p, 24);
    count[pad]++;
  }
  for (int i = 0; i < 16; i++) CHECK(count[i] >= 50 && count[i] <= 150); /* mean 100 */
  mtci_codec_free(&c);
}

TEST(full_encode) {
  mtci_codec c;
  /* F_TAG has no effect: the full transport has no tag */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_FULL, MTCI_CODEC_F_TAG), 0);
  uint8_t buf[8 + 24 + 4], want[64];
  const uint8_t *f;
  size_t fl;
  /* len = 8 + 12 = 0x14, seqno 0, crc32 (python zlib) = 0x3026c3d2 */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 20);
  CHECK_EQ_INT(f - buf, 0);
  test_unhex("14000000 00000000 0011223344556677 d2c32630", want, sizeof want);
  CHECK_MEM(f, want, 20);
  /* seqno 1, crc 0xab838fbd */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  test_unhex("14000000 01000000 0011223344556677 bd8f83ab", want, sizeof want);
  CHECK_MEM(f, want, 20);
  /* seqno 2 with a 24-byte payload: checked via the decoder below */
  uint8_t p[24];
  fill_p24(p);
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, p, 24, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 36);
  CHECK_MEM(f, "\x24\x00\x00\x00\x02\x00\x00\x00", 8);
  /* quick ack is not defined for the full transport: refused, seqno kept */
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 1, &f, &fl), MTC_ERR_UNSUPPORTED);
  /* tailroom < 4 */
  CHECK_EQ_INT(enc(&c, buf, 8 + 8 + 3, 8, P8, 8, 0, &f, &fl), MTC_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_MEM(f + 4, "\x03\x00\x00\x00", 4);
  mtci_codec_free(&c);

  /* the known full stream decodes: seqno 0 then 1 (server -> client) */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_FULL, 0), 0);
  mtci_frame ev;
  CHECK_EQ_INT(feed_hex(&c, "24000000 00000000 202122232425262728292a2b2c2d2e2f3031323334353637"
                            "11284dab", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_DATA);
  CHECK_EQ_INT(ev.len, 24);
  CHECK_MEM(ev.data, p, 24);
  CHECK_EQ_INT(feed_hex(&c, "10000000 01000000 6cfeffff 932febcb", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_TRANSPORT_ERROR);
  CHECK_EQ_INT(ev.error_code, -404);
  CHECK_EQ_INT(feed_hex(&c, "10000000 02000000 53feffff 87c02ced", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -429);
  CHECK_EQ_INT(feed_hex(&c, "10000000 03000000 44feffff 3faf48ec", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -444);
  CHECK_EQ_INT(feed_hex(&c, "14000000 04000000 ffffffff0df0ad8b a4111b61", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_QUICK_ACK);
  CHECK_EQ_INT(ev.quick_ack, 0x8badf00du);
  CHECK_EQ_INT(mtci_codec_eof(&c), 0);
  mtci_codec_free(&c);
}

TEST(encode_errors) {
  mtci_codec c;
  uint8_t buf[64];
  const uint8_t *f;
  size_t fl, off;
  mtci_codec_kind kinds[4] = {MTCI_CODEC_ABRIDGED, MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_PADDED,
                              MTCI_CODEC_FULL};
  uint8_t *huge = calloc(1, MTCI_CODEC_MAX_PAYLOAD + 4 + 32);
  CHECK(huge != NULL);
  for (int k = 0; k < 4; k++) {
    uint64_t seed = 7;
    CHECK_EQ_INT(mtci_codec_init(&c, kinds[k], 0, xs_rng, &seed), 0);
    CHECK_EQ_INT(mtci_codec_encode(&c, buf, sizeof buf, 8, 0, 0, &off, &fl),
                 MTC_ERR_FRAME_LENGTH);
    CHECK_EQ_INT(mtci_codec_encode(&c, buf, sizeof buf, 8, 6, 0, &off, &fl),
                 MTC_ERR_FRAME_LENGTH);
    /* headroom too small for the header */
    CHECK_EQ_INT(mtci_codec_encode(&c, buf, sizeof buf, 0, 8, 0, &off, &fl),
                 MTC_ERR_BUFFER_TOO_SMALL);
    /* payload runs past the buffer */
    CHECK_EQ_INT(mtci_codec_encode(&c, buf, sizeof buf, 8, 60, 0, &off, &fl),
                 MTC_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(mtci_codec_encode(&c, buf, 4, 8, 4, 0, &off, &fl), MTC_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(mtci_codec_encode(NULL, buf, sizeof buf, 8, 8, 0, &off, &fl),
                 MTC_ERR_INVALID_ARG);
    /* 16 MiB + 4: too large; exactly 16 MiB: fine */
    CHECK_EQ_INT(mtci_codec_encode(&c, huge, MTCI_CODEC_MAX_PAYLOAD + 4 + 32, 8,
                                   MTCI_CODEC_MAX_PAYLOAD + 4, 0, &off, &fl),
                 MTC_ERR_FRAME_TOO_LARGE);
    CHECK_EQ_INT(mtci_codec_encode(&c, huge, MTCI_CODEC_MAX_PAYLOAD + 4 + 32, 8,
                                   MTCI_CODEC_MAX_PAYLOAD, 0, &off, &fl), 0);
    if (kinds[k] == MTCI_CODEC_ABRIDGED) {
      CHECK_EQ_INT(off, 4);
      CHECK_MEM(huge + 4, "\x7f\x00\x00\x40", 4); /* 2^22 words */
    }
    mtci_codec_free(&c);
  }
  free(huge);
  /* abridged needs 4 header bytes from 508 payload bytes on */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_ABRIDGED, 0), 0);
  static uint8_t big[4 + 508];
  CHECK_EQ_INT(mtci_codec_encode(&c, big, sizeof big, 3, 508, 0, &off, &fl),
               MTC_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ_INT(mtci_codec_encode(&c, big, sizeof big, 4, 508, 0, &off, &fl), 0);
  mtci_codec_free(&c);
  /* padded: tailroom must always hold 15 bytes */
  uint64_t seed = 1;
  CHECK_EQ_INT(mtci_codec_init(&c, MTCI_CODEC_PADDED, 0, xs_rng, &seed), 0);
  CHECK_EQ_INT(enc(&c, buf, 4 + 8 + 14, 4, P8, 8, 0, &f, &fl), MTC_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ_INT(enc(&c, buf, 4 + 8 + 15, 4, P8, 8, 0, &f, &fl), 0);
  mtci_codec_free(&c);
  /* server role never requests quick acks */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_F_SERVER), 0);
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 1, &f, &fl), MTC_ERR_INVALID_ARG);
  mtci_codec_free(&c);
}

TEST(headroom_no_move) {
  mtci_codec_kind kinds[4] = {MTCI_CODEC_ABRIDGED, MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_PADDED,
                              MTCI_CODEC_FULL};
  for (int k = 0; k < 4; k++) {
    uint64_t seed = 99;
    mtci_codec c;
    CHECK_EQ_INT(mtci_codec_init(&c, kinds[k], MTCI_CODEC_F_TAG, xs_rng, &seed), 0);
    uint8_t buf[100 + 64 + 16];
    memset(buf, 0xaa, sizeof buf);
    uint8_t *payload = buf + 100;
    for (int i = 0; i < 64; i++) payload[i] = (uint8_t)(i + 1);
    size_t off = 0, fl = 0;
    CHECK_EQ_INT(mtci_codec_encode(&c, buf, sizeof buf, 100, 64, 0, &off, &fl), 0);
    size_t hn = 100 - off;
    CHECK(hn >= 1 && hn <= mtci_codec_header_size(kinds[k]));
    for (size_t i = 0; i < off; i++) CHECK_EQ_INT(buf[i], 0xaa); /* nothing before */
    for (int i = 0; i < 64; i++) CHECK_EQ_INT(payload[i], i + 1); /* payload in place */
    size_t tail = fl - hn - 64;
    CHECK(tail <= mtci_codec_tailroom(kinds[k]));
    for (size_t i = 100 + 64 + tail; i < sizeof buf; i++) CHECK_EQ_INT(buf[i], 0xaa);
    mtci_codec_free(&c);
  }
}

/* ---- exact decodings (client role: server -> client bytes) --------------- */

TEST(abridged_decode) {
  mtci_codec c;
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_ABRIDGED, MTCI_CODEC_F_TAG), 0);
  mtci_frame ev;
  uint8_t p[24];
  fill_p24(p);
  CHECK_EQ_INT(feed_hex(&c, "06 202122232425262728292a2b2c2d2e2f3031323334353637", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_DATA);
  CHECK_EQ_INT(ev.len, 24);
  CHECK_MEM(ev.data, p, 24);
  /* extended length: 7f + 7f 00 00 -> 508 bytes */
  static uint8_t big[4 + 508];
  memcpy(big, "\x7f\x7f\x00\x00", 4);
  for (int i = 0; i < 508; i++) big[4 + i] = (uint8_t)i;
  CHECK_EQ_INT(feed_one(&c, big, sizeof big, &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_DATA);
  CHECK_EQ_INT(ev.len, 508);
  CHECK(ev.data == big + 4); /* delivered in place */
  /* quick ack: token 0x8badf00d arrives byte-swapped (8b first, bit 7 set) */
  CHECK_EQ_INT(feed_hex(&c, "8b ad f0 0d", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_QUICK_ACK);
  CHECK_EQ_INT(ev.quick_ack, 0x8badf00du);
  /* transport errors: one word */
  CHECK_EQ_INT(feed_hex(&c, "01 6cfeffff", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_TRANSPORT_ERROR);
  CHECK_EQ_INT(ev.error_code, -404);
  CHECK_EQ_INT(feed_hex(&c, "01 53feffff", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -429);
  CHECK_EQ_INT(feed_hex(&c, "01 44feffff", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -444);
  CHECK_EQ_INT(feed_hex(&c, "01 ffffffff", &ev), 1); /* -1 alone is no quick ack */
  CHECK_EQ_INT(ev.type, MTCI_FRAME_TRANSPORT_ERROR);
  CHECK_EQ_INT(ev.error_code, -1);
  /* a framed -1 + token is a quick ack (spec's padded form, tdlib reads it anywhere) */
  CHECK_EQ_INT(feed_hex(&c, "02 ffffffff 0df0ad8b", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_QUICK_ACK);
  CHECK_EQ_INT(ev.quick_ack, 0x8badf00du);
  CHECK_EQ_INT(mtci_codec_eof(&c), 0);
  mtci_codec_free(&c);
}

TEST(intermediate_decode) {
  mtci_codec c;
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_F_TAG), 0);
  mtci_frame ev;
  uint8_t p[24];
  fill_p24(p);
  CHECK_EQ_INT(feed_hex(&c, "18000000 202122232425262728292a2b2c2d2e2f3031323334353637", &ev),
               1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_DATA);
  CHECK_EQ_INT(ev.len, 24);
  CHECK_MEM(ev.data, p, 24);
  /* quick ack: the LE token word in place of a length (bit 31 set) */
  CHECK_EQ_INT(feed_hex(&c, "0df0ad8b", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_QUICK_ACK);
  CHECK_EQ_INT(ev.quick_ack, 0x8badf00du);
  CHECK_EQ_INT(feed_hex(&c, "04000000 6cfeffff", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_TRANSPORT_ERROR);
  CHECK_EQ_INT(ev.error_code, -404);
  CHECK_EQ_INT(feed_hex(&c, "04000000 53feffff", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -429);
  CHECK_EQ_INT(feed_hex(&c, "04000000 44feffff", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -444);
  CHECK_EQ_INT(feed_hex(&c, "04000000 ffffffff", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -1);
  mtci_codec_free(&c);
}

TEST(padded_decode) {
  mtci_codec c;
  uint64_t seed = 3;
  CHECK_EQ_INT(mtci_codec_init(&c, MTCI_CODEC_PADDED, 0, xs_rng, &seed), 0);
  mtci_frame ev;
  /* 24 payload bytes + 3 padding bytes: delivered whole (27) */
  CHECK_EQ_INT(feed_hex(&c, "1b000000 202122232425262728292a2b2c2d2e2f3031323334353637 aabbcc",
                        &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_DATA);
  CHECK_EQ_INT(ev.len, 27);
  size_t pl = 0;
  CHECK_EQ_INT(mtci_padded_payload_len(ev.data, ev.len, &pl), 0);
  CHECK_EQ_INT(pl, 24); /* encrypted rule: 24 + 0*16 */
  /* bare token word (tdlib) */
  CHECK_EQ_INT(feed_hex(&c, "0df0ad8b", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_QUICK_ACK);
  CHECK_EQ_INT(ev.quick_ack, 0x8badf00du);
  /* spec form: 12-byte frame = ffffffff + token + 4 padding bytes */
  CHECK_EQ_INT(feed_hex(&c, "0c000000 ffffffff 0df0ad8b 01020304", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_QUICK_ACK);
  CHECK_EQ_INT(ev.quick_ack, 0x8badf00du);
  /* transport errors, padded up to 15 bytes */
  CHECK_EQ_INT(feed_hex(&c, "07000000 53feffff aabbcc", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_TRANSPORT_ERROR);
  CHECK_EQ_INT(ev.error_code, -429);
  CHECK_EQ_INT(feed_hex(&c, "13000000 6cfeffff 000102030405060708090a0b0c0d0e", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -404);
  CHECK_EQ_INT(feed_hex(&c, "04000000 44feffff", &ev), 1);
  CHECK_EQ_INT(ev.error_code, -444);
  mtci_codec_free(&c);
}

TEST(padded_payload_len) {
  uint8_t f[64];
  size_t pl = 0;
  memset(f, 0x5a, sizeof f); /* auth_key_id != 0: encrypted */
  CHECK_EQ_INT(mtci_padded_payload_len(f, 24 + 32 + 7, &pl), 0);
  CHECK_EQ_INT(pl, 56);
  CHECK_EQ_INT(mtci_padded_payload_len(f, 24 + 32 + 15, &pl), 0);
  CHECK_EQ_INT(pl, 56);
  CHECK_EQ_INT(mtci_padded_payload_len(f, 24 + 48, &pl), 0);
  CHECK_EQ_INT(pl, 72);
  CHECK_EQ_INT(mtci_padded_payload_len(f, 23, &pl), MTC_ERR_FRAME_LENGTH);
  /* unencrypted: zero auth_key_id, msg_id, message_data_length = 20 */
  memset(f, 0, 8);
  f[16] = 20, f[17] = 0, f[18] = 0, f[19] = 0;
  CHECK_EQ_INT(mtci_padded_payload_len(f, 40 + 5, &pl), 0);
  CHECK_EQ_INT(pl, 40);
  CHECK_EQ_INT(mtci_padded_payload_len(f, 40, &pl), 0);
  CHECK_EQ_INT(pl, 40);
  CHECK_EQ_INT(mtci_padded_payload_len(f, 39, &pl), MTC_ERR_FRAME_LENGTH); /* mdl too big */
  CHECK_EQ_INT(mtci_padded_payload_len(f, 56, &pl), MTC_ERR_FRAME_LENGTH); /* 16 bytes excess */
  CHECK_EQ_INT(mtci_padded_payload_len(f, 55, &pl), 0);
  f[19] = 0x80; /* huge length */
  CHECK_EQ_INT(mtci_padded_payload_len(f, 64, &pl), MTC_ERR_FRAME_LENGTH);
}

TEST(transport_error_map) {
  CHECK_EQ_INT(mtci_transport_error(-404), MTC_ERR_TRANSPORT_AUTH_KEY);
  CHECK_EQ_INT(mtci_transport_error(-429), MTC_ERR_TRANSPORT_FLOOD);
  CHECK_EQ_INT(mtci_transport_error(-444), MTC_ERR_TRANSPORT_BAD_DC);
  CHECK_EQ_INT(mtci_transport_error(-403), MTC_ERR_TRANSPORT_ERROR);
  CHECK_EQ_INT(mtci_transport_error(-1), MTC_ERR_TRANSPORT_ERROR);
  int codes[] = {MTC_ERR_FRAME_TOO_LARGE,  MTC_ERR_FRAME_LENGTH,       MTC_ERR_FRAME_CRC,
                 MTC_ERR_FRAME_SEQNO,      MTC_ERR_FRAME_TAG,          MTC_ERR_FRAME_TRUNCATED,
                 MTC_ERR_TRANSPORT_CLOSED, MTC_ERR_TRANSPORT_ERROR,    MTC_ERR_TRANSPORT_AUTH_KEY,
                 MTC_ERR_TRANSPORT_FLOOD,  MTC_ERR_TRANSPORT_BAD_DC};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    CHECK(codes[i] <= -300 && codes[i] >= -319);
    CHECK(strcmp(mtc_strerror(codes[i]), "unknown error") != 0);
  }
}

/* ---- receive errors: exact code, sticky ----------------------------------- */

/* Init a client codec, feed hex, expect err; then check it sticks. */
static int sticky_case(mtci_codec_kind kind, unsigned flags, const char *hex, int err) {
  mtci_codec c;
  uint64_t seed = 5;
  if (mtci_codec_init(&c, kind, flags, xs_rng, &seed) != 0) return -1;
  uint8_t tmp[256];
  size_t n = test_unhex(hex, tmp, sizeof tmp), used = 99;
  mtci_frame ev;
  int r = mtci_codec_feed(&c, tmp, n, &used, &ev);
  int ok = r == err && used == 0;
  /* a valid-looking frame afterwards is refused with the same code */
  r = mtci_codec_feed(&c, (const uint8_t *)"\x01\x00\x00\x00\x00", 5, &used, &ev);
  ok = ok && r == err && used == 0 && mtci_codec_eof(&c) == err;
  mtci_codec_free(&c);
  if (!ok) fprintf(stderr, "    sticky_case %s: got %d\n", hex, r);
  return ok;
}

TEST(receive_errors) {
  /* abridged */
  CHECK(sticky_case(MTCI_CODEC_ABRIDGED, 0, "00", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_ABRIDGED, 0, "7f 000000", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_ABRIDGED, 0, "7f 010040", MTC_ERR_FRAME_TOO_LARGE));
  CHECK(sticky_case(MTCI_CODEC_ABRIDGED, 0, "7f ffffff", MTC_ERR_FRAME_TOO_LARGE));
  /* intermediate */
  CHECK(sticky_case(MTCI_CODEC_INTERMEDIATE, 0, "00000000", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_INTERMEDIATE, 0, "06000000", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_INTERMEDIATE, 0, "04000001", MTC_ERR_FRAME_TOO_LARGE));
  CHECK(sticky_case(MTCI_CODEC_INTERMEDIATE, 0, "ffffff7f", MTC_ERR_FRAME_TOO_LARGE));
  /* padded: any length >= 4 up to 16 MiB + 15 */
  CHECK(sticky_case(MTCI_CODEC_PADDED, 0, "00000000", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_PADDED, 0, "03000000 aabbcc", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_PADDED, 0, "10000001", MTC_ERR_FRAME_TOO_LARGE));
  /* full */
  CHECK(sticky_case(MTCI_CODEC_FULL, 0, "00000000", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_FULL, 0, "0c000000", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_FULL, 0, "15000000", MTC_ERR_FRAME_LENGTH));
  CHECK(sticky_case(MTCI_CODEC_FULL, 0, "10000001", MTC_ERR_FRAME_TOO_LARGE));
  /* bad crc: one payload bit flipped in the seqno-0 vector */
  CHECK(sticky_case(MTCI_CODEC_FULL, 0, "14000000 00000000 0011223344556676 d2c32630",
                    MTC_ERR_FRAME_CRC));
  /* ... or in the crc itself */
  CHECK(sticky_case(MTCI_CODEC_FULL, 0, "14000000 00000000 0011223344556677 d2c32631",
                    MTC_ERR_FRAME_CRC));
  /* good crc (python), wrong seqno: 1 first, 5 first */
  CHECK(sticky_case(MTCI_CODEC_FULL, 0, "14000000 01000000 0011223344556677 bd8f83ab",
                    MTC_ERR_FRAME_SEQNO));
  CHECK(sticky_case(MTCI_CODEC_FULL, 0, "14000000 05000000 0011223344556677 c2b485a8",
                    MTC_ERR_FRAME_SEQNO));
  /* a repeated seqno 0 after a good frame */
  mtci_codec c;
  mtci_frame ev;
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_FULL, 0), 0);
  CHECK_EQ_INT(feed_hex(&c, "14000000 00000000 0011223344556677 d2c32630", &ev), 1);
  CHECK_EQ_INT(feed_hex(&c, "14000000 00000000 0011223344556677 d2c32630", &ev),
               MTC_ERR_FRAME_SEQNO);
  mtci_codec_free(&c);
  /* server role: wrong tag */
  CHECK(sticky_case(MTCI_CODEC_ABRIDGED, MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG, "ee",
                    MTC_ERR_FRAME_TAG));
  CHECK(sticky_case(MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG,
                    "eeeeeedd", MTC_ERR_FRAME_TAG));
  CHECK(sticky_case(MTCI_CODEC_PADDED, MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG, "eeeeeeee",
                    MTC_ERR_FRAME_TAG));

  /* the exact caps are accepted (the body stays pending) */
  const char *at_cap[4] = {"7f 000040", "00000001", "0f000001", "0c000001"};
  mtci_codec_kind kinds[4] = {MTCI_CODEC_ABRIDGED, MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_PADDED,
                              MTCI_CODEC_FULL};
  for (int k = 0; k < 4; k++) {
    uint64_t seed = 1;
    CHECK_EQ_INT(mtci_codec_init(&c, kinds[k], 0, xs_rng, &seed), 0);
    CHECK_EQ_INT(feed_expect_none(&c, at_cap[k]), 0);
    CHECK_EQ_INT(c.buf_cap, 0); /* nothing allocated from the announced length */
    CHECK_EQ_INT(mtci_codec_eof(&c), MTC_ERR_FRAME_TRUNCATED);
    mtci_codec_free(&c);
  }
}

TEST(eof_and_partial) {
  mtci_codec c;
  mtci_frame ev;
  size_t used;
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_ABRIDGED, 0), 0);
  CHECK_EQ_INT(mtci_codec_eof(&c), 0);
  CHECK_EQ_INT(mtci_codec_feed(&c, (const uint8_t *)"\x7f\x7f", 2, &used, &ev), 0);
  CHECK_EQ_INT(used, 2);
  CHECK_EQ_INT(mtci_codec_eof(&c), MTC_ERR_FRAME_TRUNCATED);
  mtci_codec_free(&c);
  /* two frames in one call: one event per call, consumed says where */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, 0), 0);
  uint8_t two[8 + 8];
  test_unhex("04000000 6cfeffff 04000000 53feffff", two, sizeof two);
  CHECK_EQ_INT(mtci_codec_feed(&c, two, sizeof two, &used, &ev), 1);
  CHECK_EQ_INT(used, 8);
  CHECK_EQ_INT(ev.error_code, -404);
  CHECK_EQ_INT(mtci_codec_feed(&c, two + 8, 8, &used, &ev), 1);
  CHECK_EQ_INT(used, 8);
  CHECK_EQ_INT(ev.error_code, -429);
  CHECK_EQ_INT(mtci_codec_feed(&c, two, 0, &used, &ev), 0);
  CHECK_EQ_INT(mtci_codec_eof(&c), 0);
  CHECK_EQ_INT(mtci_codec_feed(&c, NULL, 0, &used, &ev), 0);
  CHECK_EQ_INT(mtci_codec_feed(&c, NULL, 1, &used, &ev), MTC_ERR_INVALID_ARG);
  mtci_codec_free(&c);
  /* server role: a partial tag is a truncated stream */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_PADDED, MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG), 0);
  CHECK_EQ_INT(mtci_codec_eof(&c), 0);
  CHECK_EQ_INT(mtci_codec_feed(&c, (const uint8_t *)"\xdd\xdd", 2, &used, &ev), 0);
  CHECK_EQ_INT(mtci_codec_eof(&c), MTC_ERR_FRAME_TRUNCATED);
  mtci_codec_free(&c);
}

/* ---- memory: bounded, growing with arrived bytes -------------------------- */

TEST(buffer_growth) {
  mtci_codec c;
  mtci_frame ev;
  size_t used;
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, 0), 0);
  /* a frame announcing 16 MiB, of which 1 MiB arrives in 1000-byte pieces */
  CHECK_EQ_INT(feed_expect_none(&c, "00000001"), 0);
  static uint8_t chunk[1000];
  memset(chunk, 0x42, sizeof chunk);
  size_t got = 0;
  for (int i = 0; i < 1049; i++) {
    CHECK_EQ_INT(mtci_codec_feed(&c, chunk, sizeof chunk, &used, &ev), 0);
    got += used;
    CHECK(c.buf_cap >= got);
    CHECK(c.buf_cap <= (got < 4096 ? 4096 : 2 * got));
  }
  mtci_codec_free(&c);

  /* a 1 MiB frame delivered from the buffer, released at the next feed */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, 0), 0);
  size_t big = 1u << 20;
  uint8_t *s = malloc(4 + big);
  CHECK(s != NULL);
  memcpy(s, "\x00\x00\x10\x00", 4);
  for (size_t i = 0; i < big; i++) s[4 + i] = (uint8_t)(i * 13 + 1);
  size_t pos = 0;
  int events = 0;
  while (pos < 4 + big) {
    size_t n = 4 + big - pos < 777 ? 4 + big - pos : 777;
    int r = mtci_codec_feed(&c, s + pos, n, &used, &ev);
    CHECK(r >= 0);
    pos += used;
    if (r == 1) {
      events++;
      CHECK_EQ_INT(ev.len, big);
      CHECK_MEM(ev.data, s + 4, big);
      CHECK(ev.data == c.buf);
      CHECK_EQ_INT(c.buf_cap, big); /* doubling stopped at the frame size */
    }
  }
  CHECK_EQ_INT(events, 1);
  CHECK_EQ_INT(mtci_codec_feed(&c, s, 1, &used, &ev), 0);
  CHECK(c.buf == NULL); /* released: the buffer was above 64 KiB */
  mtci_codec_free(&c);

  /* a small split frame keeps its 4 KiB buffer; a whole frame is not copied */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, 0), 0);
  memcpy(s, "\x18\x00\x00\x00", 4);
  CHECK_EQ_INT(mtci_codec_feed(&c, s, 10, &used, &ev), 0);
  CHECK_EQ_INT(mtci_codec_feed(&c, s + 10, 18, &used, &ev), 1);
  CHECK_EQ_INT(c.buf_cap, 4096);
  CHECK(ev.data == c.buf);
  CHECK_EQ_INT(mtci_codec_feed(&c, s, 28, &used, &ev), 1);
  CHECK(ev.data == s + 4);
  CHECK(c.buf != NULL);
  /* a 5000-byte split frame: 4096 doubles to 8192, capped at the frame size */
  memcpy(s, "\x88\x13\x00\x00", 4);
  CHECK_EQ_INT(mtci_codec_feed(&c, s, 4 + 4999, &used, &ev), 0);
  CHECK_EQ_INT(c.buf_cap, 5000);
  CHECK_EQ_INT(mtci_codec_feed(&c, s + 4 + 4999, 1, &used, &ev), 1);
  CHECK_EQ_INT(ev.len, 5000);
  CHECK_MEM(ev.data, s + 4, 5000);
  /* trim: a buffer holding part of a frame stays (and the frame completes);
   * an idle one goes */
  CHECK_EQ_INT(mtci_codec_feed(&c, s, 4 + 100, &used, &ev), 0);
  CHECK(c.buf != NULL);
  mtci_codec_trim(&c);
  CHECK(c.buf != NULL && c.buf_cap >= 100);
  CHECK_EQ_INT(mtci_codec_feed(&c, s + 4 + 100, 4900, &used, &ev), 1);
  CHECK_EQ_INT(ev.len, 5000);
  CHECK_MEM(ev.data, s + 4, 5000);
  mtci_codec_trim(&c);
  CHECK(c.buf == NULL && c.buf_cap == 0);
  CHECK_EQ_INT(mtci_codec_feed(&c, s, 4 + 5000, &used, &ev), 1); /* still decodes */
  CHECK_MEM(ev.data, s + 4, 5000);
  mtci_codec_free(&c);
  free(s);
}

/* ---- server role ---------------------------------------------------------- */

TEST(server_role) {
  mtci_codec c;
  mtci_frame ev;
  uint8_t p[24];
  fill_p24(p);
  /* abridged client stream: tag, then 0x86 = 6 words + quick-ack request */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_ABRIDGED, MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG), 0);
  CHECK_EQ_INT(feed_hex(&c, "ef 86 202122232425262728292a2b2c2d2e2f3031323334353637", &ev),
               1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_DATA);
  CHECK_EQ_INT(ev.len, 24);
  CHECK_EQ_INT(ev.ack_requested, 1);
  CHECK_MEM(ev.data, p, 24);
  static uint8_t big[4 + 508];
  memcpy(big, "\xff\x7f\x00\x00", 4);
  CHECK_EQ_INT(feed_one(&c, big, sizeof big, &ev), 1);
  CHECK_EQ_INT(ev.len, 508);
  CHECK_EQ_INT(ev.ack_requested, 1);
  big[0] = 0x7f;
  CHECK_EQ_INT(feed_one(&c, big, sizeof big, &ev), 1);
  CHECK_EQ_INT(ev.ack_requested, 0);
  /* short frames are data on the server side */
  CHECK_EQ_INT(feed_hex(&c, "01 6cfeffff", &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_FRAME_DATA);
  uint8_t out[8];
  CHECK_EQ_INT(mtci_codec_encode_quick_ack(&c, 0x8badf00du, out, sizeof out), 4);
  CHECK_MEM(out, "\x8b\xad\xf0\x0d", 4);
  CHECK_EQ_INT(mtci_codec_encode_quick_ack(&c, 0x0badf00du, out, sizeof out),
               MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_codec_encode_quick_ack(&c, 0x8badf00du, out, 3), MTC_ERR_BUFFER_TOO_SMALL);
  /* the server never sends a tag */
  const uint8_t *f;
  size_t fl;
  uint8_t buf[32];
  CHECK_EQ_INT(enc(&c, buf, sizeof buf, 8, P8, 8, 0, &f, &fl), 0);
  CHECK_EQ_INT(fl, 9);
  CHECK_EQ_INT(f[0], 0x02);
  mtci_codec_free(&c);

  /* intermediate */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG), 0);
  CHECK_EQ_INT(feed_hex(&c, "eeeeeeee 18000080 202122232425262728292a2b2c2d2e2f3031323334353637",
                        &ev), 1);
  CHECK_EQ_INT(ev.len, 24);
  CHECK_EQ_INT(ev.ack_requested, 1);
  CHECK_EQ_INT(mtci_codec_encode_quick_ack(&c, 0x8badf00du, out, sizeof out), 4);
  CHECK_MEM(out, "\x0d\xf0\xad\x8b", 4);
  mtci_codec_free(&c);

  /* full / client role: no quick-ack packets to write */
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_FULL, MTCI_CODEC_F_SERVER), 0);
  CHECK_EQ_INT(mtci_codec_encode_quick_ack(&c, 0x8badf00du, out, sizeof out),
               MTC_ERR_UNSUPPORTED);
  mtci_codec_free(&c);
  CHECK_EQ_INT(init_ok(&c, MTCI_CODEC_INTERMEDIATE, 0), 0);
  CHECK_EQ_INT(mtci_codec_encode_quick_ack(&c, 0x8badf00du, out, sizeof out),
               MTC_ERR_UNSUPPORTED);
  mtci_codec_free(&c);
}

/* ---- property: any split of a stream gives the same events ---------------- */

struct rec {
  int type;
  size_t len;
  uint64_t hash;
  uint32_t qa;
  int32_t code;
  int ack;
  size_t plen; /* DATA: the payload length before padding */
};

#define MAX_EVENTS 128

struct stream {
  uint8_t *bytes;
  size_t len, cap;
  struct rec want[MAX_EVENTS];
  size_t nwant;
};

static int stream_put(struct stream *s, const uint8_t *p, size_t n) {
  if (s->len + n > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 65536;
    while (cap < s->len + n) cap *= 2;
    uint8_t *b = realloc(s->bytes, cap);
    if (!b) return -1;
    s->bytes = b;
    s->cap = cap;
  }
  memcpy(s->bytes + s->len, p, n);
  s->len += n;
  return 0;
}

static size_t rand_payload_len(uint64_t *seed, int i) {
  if (i % 23 == 11) return 24 + (4400 + (size_t)(test_rand64(seed) % 64)) * 16; /* > 64 KiB */
  if (i % 7 == 3) return 24 + (size_t)(test_rand64(seed) % 200) * 16;   /* > 127 words */
  return 24 + (size_t)(test_rand64(seed) % 30) * 16;
}

/* Builds a stream of `nframes` events in direction server->client (server
 * encoder, client decoder) or client->server. */
static int build_stream(struct stream *s, mtci_codec_kind kind, int to_server, uint64_t seed,
                        int nframes) {
  uint64_t rs = seed * 2654435761u + 1;
  mtci_codec enc_c;
  unsigned flags = to_server ? MTCI_CODEC_F_TAG : MTCI_CODEC_F_SERVER;
  if (mtci_codec_init(&enc_c, kind, flags, xs_rng, &rs) != 0) return -1;
  size_t maxp = 72000 + 1024;
  uint8_t *buf = malloc(8 + maxp + 16);
  if (!buf) return -1;
  int rc = 0;
  for (int i = 0; i < nframes && rc == 0 && s->nwant < MAX_EVENTS; i++) {
    struct rec *w = &s->want[s->nwant];
    memset(w, 0, sizeof *w);
    uint64_t pick = test_rand64(&rs) % 10;
    if (!to_server && pick == 0 && kind != MTCI_CODEC_FULL) { /* bare quick ack */
      uint32_t token = (uint32_t)test_rand64(&rs) | 0x80000000u;
      uint8_t q[4];
      if (mtci_codec_encode_quick_ack(&enc_c, token, q, 4) != 4) rc = -1;
      else rc = stream_put(s, q, 4);
      w->type = MTCI_FRAME_QUICK_ACK;
      w->qa = token;
      s->nwant++;
      continue;
    }
    size_t plen;
    uint8_t *p = buf + 8;
    if (!to_server && pick == 1) { /* transport error */
      /* padded: -1 + padding would read as a quick ack; -1 is no valid code */
      int32_t codes[4] = {-404, -429, -444, kind == MTCI_CODEC_PADDED ? -403 : -1};
      int32_t code = codes[test_rand64(&rs) % 4];
      uint32_t u = (uint32_t)code;
      p[0] = (uint8_t)u, p[1] = (uint8_t)(u >> 8), p[2] = (uint8_t)(u >> 16),
      p[3] = (uint8_t)(u >> 24);
      plen = 4;
      w->type = MTCI_FRAME_TRANSPORT_ERROR;
      w->code = code;
    } else if (!to_server && pick == 2 && kind != MTCI_CODEC_PADDED) {
      /* framed quick ack: -1 + token (padded: the encoder's 0..15 padding
       * could exceed the spec's 0..8, so only the bare form there) */
      uint32_t token = (uint32_t)test_rand64(&rs) | 0x80000000u;
      memset(p, 0xff, 4);
      p[4] = (uint8_t)token, p[5] = (uint8_t)(token >> 8), p[6] = (uint8_t)(token >> 16),
      p[7] = (uint8_t)(token >> 24);
      plen = 8;
      w->type = MTCI_FRAME_QUICK_ACK;
      w->qa = token;
    } else {
      plen = rand_payload_len(&rs, i);
      for (size_t j = 0; j < plen; j++) p[j] = (uint8_t)test_rand64(&rs);
      p[0] |= 1; /* nonzero auth_key_id: the padded helper's encrypted rule */
      w->type = MTCI_FRAME_DATA;
    }
    int qa = to_server && mtci_codec_has_quick_ack(kind) && (test_rand64(&rs) & 1);
    size_t off, fl;
    if (mtci_codec_encode(&enc_c, buf, 8 + maxp + 16, 8, plen, qa, &off, &fl) != 0) {
      rc = -1;
      break;
    }
    if (w->type == MTCI_FRAME_DATA) {
      /* padded: the event carries the padding too */
      w->len = kind == MTCI_CODEC_PADDED ? fl - (8 - off) : plen;
      w->hash = fnv(p, w->len);
      w->plen = plen;
      w->ack = qa;
    }
    rc = stream_put(s, buf + off, fl);
    s->nwant++;
  }
  free(buf);
  mtci_codec_free(&enc_c);
  return rc;
}

/* Feeds the stream in chunks chosen by `mode` (0 all, 1 single bytes, 2+
 * random sizes seeded by mode), each chunk in its own heap copy so a view
 * that outlives its chunk is caught by ASan. Compares with the wanted events. */
static int replay(const struct stream *s, mtci_codec_kind kind, int to_server, int mode) {
  mtci_codec c;
  uint64_t unused = 1;
  unsigned flags = to_server ? (MTCI_CODEC_F_SERVER | MTCI_CODEC_F_TAG) : MTCI_CODEC_F_TAG;
  if (mtci_codec_init(&c, kind, flags, xs_rng, &unused) != 0) return -1;
  uint64_t rs = (uint64_t)mode * 7919u;
  size_t pos = 0, nev = 0;
  int bad = 0;
  while (pos < s->len && !bad) {
    size_t n;
    if (mode == 0) n = s->len;
    else if (mode == 1) n = 1;
    else {
      uint64_t r = test_rand64(&rs);
      n = (r & 3) == 0 ? 1 + (r >> 8) % 4 : 1 + (r >> 8) % 9000;
    }
    if (n > s->len - pos) n = s->len - pos;
    uint8_t *chunk = malloc(n);
    if (!chunk) return -1;
    memcpy(chunk, s->bytes + pos, n);
    size_t cp = 0;
    while (cp < n && !bad) {
      size_t used = 0;
      mtci_frame ev;
      int r = mtci_codec_feed(&c, chunk + cp, n - cp, &used, &ev);
      if (r < 0) {
        fprintf(stderr, "    replay mode %d: error %d at %zu\n", mode, r, pos + cp);
        bad = 1;
        break;
      }
      cp += used;
      if (r == 0) continue;
      if (nev >= s->nwant) {
        bad = 1;
        break;
      }
      const struct rec *w = &s->want[nev++];
      int ok = (int)ev.type == w->type;
      if (ok && w->type == MTCI_FRAME_DATA) {
        ok = ev.len == w->len && fnv(ev.data, ev.len) == w->hash && ev.ack_requested == w->ack;
        size_t pl = 0;
        if (ok && kind == MTCI_CODEC_PADDED)
          ok = mtci_padded_payload_len(ev.data, ev.len, &pl) == 0 && pl == w->plen;
      }
      if (ok && w->type == MTCI_FRAME_QUICK_ACK) ok = ev.quick_ack == w->qa;
      if (ok && w->type == MTCI_FRAME_TRANSPORT_ERROR) ok = ev.error_code == w->code;
      if (!ok) {
        fprintf(stderr, "    replay mode %d: event %zu differs: type %d/%d len %zu/%zu\n", mode, nev - 1, (int)ev.type, w->type, ev.len, w->len);
        bad = 1;
      }
    }
    free(chunk);
    pos += n;
  }
  if (!bad && (nev != s->nwant || mtci_codec_eof(&c) != 0)) bad = 1;
  mtci_codec_free(&c);
  return bad ? -1 : 0;
}

TEST(split_invariance) {
  mtci_codec_kind kinds[4] = {MTCI_CODEC_ABRIDGED, MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_PADDED,
                              MTCI_CODEC_FULL};
  int streams = 0, replays = 0;
  for (int k = 0; k < 4; k++) {
    for (int dir = 0; dir < 2; dir++) {
      struct stream s;
      memset(&s, 0, sizeof s);
      CHECK_EQ_INT(build_stream(&s, kinds[k], dir, (uint64_t)(k * 2 + dir + 1), 60), 0);
      CHECK(s.nwant == 60);
      int seen[4] = {0};
      for (size_t i = 0; i < s.nwant; i++) seen[s.want[i].type]++;
      CHECK(seen[MTCI_FRAME_DATA] > 0);
      CHECK(dir == 1 || (seen[MTCI_FRAME_QUICK_ACK] > 0 && seen[MTCI_FRAME_TRANSPORT_ERROR] > 0));
      streams++;
      for (int mode = 0; mode < 6; mode++) {
        if (replay(&s, kinds[k], dir, mode) != 0) {
          fprintf(stderr, "    kind %d dir %d mode %d\n", (int)kinds[k], dir, mode);
          free(s.bytes);
          CHECK(0);
        }
        replays++;
      }
      free(s.bytes);
    }
  }
  CHECK_EQ_INT(streams, 8);
  CHECK_EQ_INT(replays, 48);
}

TEST_MAIN("codec", CASE(tags_and_sizes), CASE(detect), CASE(abridged_encode),
          CASE(intermediate_encode), CASE(padded_encode), CASE(padded_distribution),
          CASE(full_encode), CASE(encode_errors), CASE(headroom_no_move), CASE(abridged_decode),
          CASE(intermediate_decode), CASE(padded_decode), CASE(padded_payload_len),
          CASE(transport_error_map), CASE(receive_errors), CASE(eof_and_partial),
          CASE(buffer_growth), CASE(server_role), CASE(split_invariance))
