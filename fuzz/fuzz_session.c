/*
 * Fuzz the session's receive path (src/session.c, session_msgs.c).
 * First byte = mode:
 *   0: the rest is a raw packet (auth_key_id || msg_key || ciphertext): the
 *      checks in front of the crypto;
 *   1: the rest is one message body (the first byte a seq_no, then the
 *      object), sealed here under the session's key with a valid header, so
 *      the parser behind the crypto gets the input; with seq_no bit 1 set,
 *      the msg_id field of rpc_result / bad_msg / bad_server_salt /
 *      msg_detailed_info is pointed at a pending request;
 *   2: the rest is a whole plaintext (header included), padded to 16 and
 *      sealed: the header and length checks after authentication;
 *   3: like 0, then timers fire and the connection is replaced.
 * Bit 7 of the first byte: the session's clock counts as synced.
 * Afterwards events are drained and packets built, so whatever the input
 * queued (acks, resends, service answers) is serialized too.
 * The key is grammers' decrypt_server_data_v2 key, so that vector's packet
 * is a valid mode-0 seed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session_impl.h"
#include "tl/special.h"

#define NOW 1580239761800LL /* the grammers vector's time */
#define SID 0x68ad432482c4f260LL

static const uint8_t k_key[256] = {
    93,  46,  125, 101, 244, 158, 194, 139, 208, 41,  168, 135, 97,  234, 39,  184, 164, 199, 159,
    18,  34,  101, 37,  68,  62,  125, 124, 89,  110, 243, 48,  53,  48,  219, 33,  7,   232, 154,
    169, 151, 199, 160, 22,  74,  182, 148, 24,  122, 222, 255, 21,  107, 214, 239, 113, 24,  161,
    150, 35,  71,  117, 60,  14,  126, 137, 160, 53,  75,  142, 195, 100, 249, 153, 126, 113, 188,
    105, 35,  251, 134, 232, 228, 52,  145, 224, 16,  96,  106, 108, 232, 69,  226, 250, 1,   148,
    9,   119, 239, 10,  163, 42,  223, 90,  151, 219, 246, 212, 40,  236, 4,   52,  215, 23,  162,
    211, 173, 25,  98,  44,  192, 88,  135, 100, 33,  19,  199, 150, 95,  251, 134, 42,  62,  60,
    203, 10,  185, 90,  221, 218, 87,  248, 146, 69,  219, 215, 107, 73,  35,  72,  248, 233, 75,
    213, 167, 192, 224, 184, 72,  8,   82,  60,  253, 30,  168, 11,  50,  254, 154, 209, 152, 188,
    46,  16,  63,  206, 183, 213, 36,  146, 236, 192, 39,  58,  40,  103, 75,  201, 35,  238, 229,
    146, 101, 171, 23,  160, 2,   223, 31,  74,  162, 197, 155, 129, 154, 94,  94,  29,  16,  94,
    193, 23,  51,  111, 92,  118, 198, 177, 135, 3,   125, 75,  66,  112, 206, 233, 204, 33,  7,
    29,  151, 233, 188, 162, 32,  198, 215, 176, 27,  153, 140, 242, 229, 205, 185, 165, 14,  205,
    161, 133, 42,  54,  230, 53,  105, 12,  142};

static int rng(void *ud, uint8_t *out, size_t len) {
  uint64_t *s = ud;
  for (size_t i = 0; i < len; i++) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    out[i] = (uint8_t)(*s >> 24);
  }
  return 0;
}

/* Seal plaintext pt[0..n) (n % 16 == 0) as a server packet into out. */
static void seal(const uint8_t *pt, size_t n, uint8_t *out) {
  uint8_t large[32], key[32], iv[32], kid[8];
  mtci_mtp2_msg_key(k_key, 8, pt, n, out + 8, large);
  mtci_mtp2_kdf(k_key, out + 8, 8, key, iv);
  mtci_aes256_ige_encrypt(key, iv, pt, out + 24, n);
  mtci_auth_key_id(k_key, kid);
  memcpy(out, kid, 8);
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, int64_t v) {
  put32(p, (uint32_t)(uint64_t)v);
  put32(p + 4, (uint32_t)((uint64_t)v >> 32));
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 1 || n > (1u << 20)) return 0;
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  mtci_session_config c;
  memset(&c, 0, sizeof c);
  memcpy(c.auth_key, k_key, sizeof k_key);
  c.server_salt = 1;
  c.session_id = SID;
  c.time_synced = d[0] & 0x80 ? 1 : 0;
  c.api_id = 1;
  c.gzip_cap = 1u << 16;
  c.rnd = rng;
  c.rnd_ud = &seed;
  mtci_session s;
  if (mtci_session_init(&s, &c, NOW)) return 0;
  /* two pending queries, sent, so rpc_results and acks can match */
  uint8_t q[8] = {0x11, 0x11, 0x11, 0x11, 1, 2, 3, 4};
  mtci_session_invoke(&s, q, sizeof q, 0, 1);
  mtci_session_invoke(&s, q, sizeof q, 0, 2);
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  while (mtci_session_build_packet(&s, NOW, &w, NULL) == 1) mtci_tl_writer_reset(&w);
  int64_t req_id = s.n_reqs ? s.reqs[0]->msg_id : 0;

  int mode = d[0] & 3;
  const uint8_t *p = d + 1;
  size_t len = n - 1;
  uint8_t *buf = NULL;
  if (mode == 0) {
    mtci_session_feed_packet(&s, NOW, p, len);
  } else if (mode == 1 && len >= 1) {
    int32_t seqno = p[0];
    p++;
    len--;
    size_t blen = len & ~(size_t)3;
    size_t pad = 12 + (16 - (32 + blen + 12) % 16) % 16;
    size_t total = 32 + blen + pad;
    buf = malloc(2 * total + 24);
    if (buf) {
      uint8_t *pt = buf;
      put64(pt, 7);
      put64(pt + 8, SID);
      put64(pt + 16, (int64_t)((uint64_t)(NOW / 1000) << 32 | 0x10000001u));
      put32(pt + 24, (uint32_t)seqno);
      put32(pt + 28, (uint32_t)blen);
      memcpy(pt + 32, p, blen);
      /* point rpc_result / bad_msg / bad_server_salt / msg_detailed_info at
       * a pending query (their first field is that msg_id) */
      uint32_t id = blen >= 12 ? mtci_sess_le32(pt + 32) : 0;
      if ((seqno & 2) && (id == MTCI_TL_RPC_RESULT_ID || id == MTCI_ID_BAD_MSG_NOTIFICATION ||
                          id == MTCI_ID_BAD_SERVER_SALT || id == MTCI_ID_MSG_DETAILED_INFO))
        put64(pt + 36, req_id);
      memset(pt + 32 + blen, 0xa5, pad);
      seal(pt, total, buf + total);
      mtci_session_feed_packet(&s, NOW, buf + total, total + 24);
    }
  } else if (mode == 2) {
    size_t total = (len + 15) & ~(size_t)15;
    if (total >= 48) {
      buf = calloc(1, 2 * total + 24);
      if (buf) {
        memcpy(buf, p, len);
        seal(buf, total, buf + total);
        mtci_session_feed_packet(&s, NOW, buf + total, total + 24);
      }
    }
  } else {
    /* mode 3: the raw input, then timers and a reconnect */
    mtci_session_feed_packet(&s, NOW, p, len);
    mtci_session_on_deadline(&s, NOW + 70000);
    mtci_session_on_reconnect(&s, NOW + 70001);
  }
  free(buf);

  mtci_session_event ev;
  for (int i = 0; i < 100000 && mtci_session_next_event(&s, &ev); i++) {
  }
  mtci_session_on_deadline(&s, NOW + 2000);
  for (int i = 0; i < 16; i++) {
    mtci_tl_writer_reset(&w);
    if (mtci_session_build_packet(&s, NOW + 2000, &w, NULL) != 1) break;
  }
  mtci_tl_writer_free(&w);
  mtci_session_free(&s);
  return 0;
}
