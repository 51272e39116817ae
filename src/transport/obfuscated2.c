/* obfuscated2 init header and CTR streams, client and server side (PROTOCOL.md §4.2-4.3). */
#include "transport/obfuscated2.h"
#include "bytes.h"

#include <string.h>

int16_t mtci_obfs_dc_id(int dc, int test, int media) {
  if (dc < 1 || dc > 9999) return 0;
  int v = test ? dc + 10000 : dc;
  return (int16_t)(media ? -v : v);
}

/*
 * A first 8 bytes a server could mistake for another protocol: abridged's
 * 0xef, HTTP verbs, a TLS record, the plain intermediate tags, or a zero
 * second word (the "full" transport's seqno 0).
 */
static int forbidden_start(const uint8_t b[8]) {
  static const uint32_t words[] = {
      0x44414548u, /* "HEAD" */
      0x54534f50u, /* "POST" */
      0x20544547u, /* "GET " */
      0x4954504fu, /* "OPTI" */
      0x02010316u, /* 16 03 01 02: TLS handshake record */
      0xddddddddu, 0xeeeeeeeeu};
  if (b[0] == 0xef) return 1;
  uint32_t w0 = mtci_le32(b);
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (w0 == words[i]) return 1;
  return mtci_le32(b + 4) == 0;
}

static int tag_bit(uint32_t tag) {
  switch (tag) {
  case MTCI_OBFS_TAG_ABRIDGED: return MTCI_OBFS_ALLOW_ABRIDGED;
  case MTCI_OBFS_TAG_INTERMEDIATE: return MTCI_OBFS_ALLOW_INTERMEDIATE;
  case MTCI_OBFS_TAG_PADDED: return MTCI_OBFS_ALLOW_PADDED;
  }
  return 0;
}

/* One CTR stream from key material km (32) and iv (16), hashed with the
 * secret when there is one: key = SHA256(km || secret16). */
static int stream_init(mtci_aes_ctr *c, const uint8_t km[32], const uint8_t iv[16],
                       const uint8_t *secret16) {
  uint8_t key[32];
  if (secret16) {
    mtci_sha256_ctx h;
    mtci_sha256_init(&h);
    mtci_sha256_update(&h, km, 32);
    mtci_sha256_update(&h, secret16, MTCI_OBFS_SECRET_LEN);
    mtci_sha256_final(&h, key);
  } else {
    memcpy(key, km, 32);
  }
  int rc = mtci_aes_ctr_init(c, key, iv);
  mtci_zeroize(key, sizeof key);
  return rc;
}

/*
 * Both streams from the 64 header bytes as the client generated them.
 * "fwd" is the client->server stream (init[8:40], init[40:56]), "back" the
 * server->client one (the same from the reversed header).
 */
static int derive(const uint8_t init[64], const uint8_t *secret16, mtci_aes_ctr *fwd,
                  mtci_aes_ctr *back) {
  uint8_t rev[64];
  for (int i = 0; i < 64; i++) rev[i] = init[63 - i];
  int rc = stream_init(fwd, init + 8, init + 40, secret16);
  if (rc == 0) rc = stream_init(back, rev + 8, rev + 40, secret16);
  mtci_zeroize(rev, sizeof rev);
  return rc;
}

int mtci_obfs_client_init(mtci_obfs *o, uint32_t tag, int16_t dc_id, const uint8_t *secret16,
                          unsigned flags, mtc_random_fn rnd, void *rnd_ud,
                          uint8_t header[MTCI_OBFS_HEADER_LEN]) {
  if (!o || !rnd || !header || !tag_bit(tag)) return MTC_ERR_INVALID_ARG;
  memset(o, 0, sizeof *o);
  uint8_t init[64], enc[64];
  int rc = MTC_ERR_RANDOM, draws = 0;
  for (; draws < MTCI_OBFS_MAX_DRAWS; draws++) {
    rc = rnd(rnd_ud, init, sizeof init);
    if (rc < 0) break;
    if ((flags & MTCI_OBFS_INSIDE_TLS) || !forbidden_start(init)) break;
  }
  if (rc == 0 && draws == MTCI_OBFS_MAX_DRAWS) rc = MTC_ERR_RANDOM;
  if (rc < 0) goto fail;

  /* tag (56..59) and dc id (60..61, int16 LE); 62..63 stay random */
  init[56] = init[57] = init[58] = init[59] = (uint8_t)tag;
  uint16_t dc = (uint16_t)dc_id;
  init[60] = (uint8_t)(dc & 0xff);
  init[61] = (uint8_t)(dc >> 8);

  rc = derive(init, secret16, &o->enc, &o->dec);
  if (rc < 0) goto fail;
  mtci_aes_ctr_xor(&o->enc, init, enc, sizeof enc);
  memcpy(header, init, 56);
  memcpy(header + 56, enc + 56, 8);
  mtci_zeroize(enc, sizeof enc);
  mtci_zeroize(init, sizeof init);
  return 0;
fail:
  mtci_zeroize(init, sizeof init);
  mtci_obfs_free(o);
  return rc;
}

int mtci_obfs_server_init(mtci_obfs *o, const uint8_t header[MTCI_OBFS_HEADER_LEN],
                          const uint8_t *secret16, unsigned allowed_tags, uint32_t *tag,
                          int16_t *dc_id) {
  if (!o || !header) return MTC_ERR_INVALID_ARG;
  memset(o, 0, sizeof *o);
  /* Mirrored: what the client encrypts we decrypt, and the other way round. */
  int rc = derive(header, secret16, &o->dec, &o->enc);
  if (rc < 0) {
    mtci_obfs_free(o);
    return rc;
  }
  uint8_t plain[64];
  mtci_aes_ctr_xor(&o->dec, header, plain, sizeof plain);
  uint32_t t = mtci_le32(plain + 56);
  uint16_t dc = (uint16_t)(plain[60] | plain[61] << 8);
  mtci_zeroize(plain, sizeof plain);
  int bit = tag_bit(t);
  if (!bit) rc = MTC_ERR_OBFS_BAD_TAG;
  else if (!(allowed_tags & (unsigned)bit)) rc = MTC_ERR_OBFS_TAG_NOT_ALLOWED;
  if (rc < 0) {
    mtci_obfs_free(o);
    return rc;
  }
  if (tag) *tag = t;
  /* uint16 -> int16 without implementation-defined conversion */
  if (dc_id) *dc_id = dc < 0x8000u ? (int16_t)dc : (int16_t)((int)dc - 0x10000);
  return 0;
}

void mtci_obfs_encrypt(mtci_obfs *o, const uint8_t *in, uint8_t *out, size_t len) {
  if (len) mtci_aes_ctr_xor(&o->enc, in, out, len);
}

void mtci_obfs_decrypt(mtci_obfs *o, const uint8_t *in, uint8_t *out, size_t len) {
  if (len) mtci_aes_ctr_xor(&o->dec, in, out, len);
}

void mtci_obfs_free(mtci_obfs *o) {
  if (!o) return;
  mtci_aes_ctr_free(&o->enc);
  mtci_aes_ctr_free(&o->dec);
  mtci_zeroize(o, sizeof *o);
}
