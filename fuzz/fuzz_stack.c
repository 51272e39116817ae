/*
 * Fuzz the client connection stack with arbitrary server bytes. Byte 0
 * picks the configuration (the 24 of tests/test_stack.c, same order, same
 * dc ids, SOCKS5 targets and credentials), byte 1 the feed chunk size; the
 * rest is what the server sends. The random source is a fixed xorshift, so
 * the ClientHello and the obfuscation keys are the same on every run and
 * the corpus files (server responses recorded against the test's peer)
 * get through the handshakes into the framing layers.
 *
 * Checked: no crash, feed's contract (consumed <= len, 0 means all taken,
 * errors sticky, events well formed), output drained like a socket would,
 * at most 16 packets sent back, so memory stays bounded by the input.
 */
#include <stdint.h>
#include <string.h>

#include "transport/stack.h"

#define NOW 1700000000

static void check(int ok) {
  if (!ok) __builtin_trap();
}

struct xs {
  uint64_t s;
};
static int xs_fn(void *ud, uint8_t *out, size_t len) {
  struct xs *r = ud;
  for (size_t i = 0; i < len; i++) {
    uint64_t x = r->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->s = x;
    out[i] = (uint8_t)(x >> 24);
  }
  return 0;
}

struct combo {
  int kind, obfs, secret, socks;
};

/* secret: 0 none, 1 16-byte key, 2 dd, 3 ee (tests/test_stack.c all_combos) */
static size_t all_combos(struct combo *out) {
  size_t n = 0;
  for (int sec = 0; sec <= 3; sec++)
    for (int k = MTCI_CODEC_ABRIDGED; k <= MTCI_CODEC_FULL; k++)
      for (int obfs = 0; obfs <= 1; obfs++)
        for (int socks = 0; socks <= 1; socks++) {
          if (k == MTCI_CODEC_FULL && (obfs || sec != 0)) continue;
          if (sec != 0 && !obfs) continue;
          if (sec >= 2 && k != MTCI_CODEC_PADDED) continue;
          out[n++] = (struct combo){k, obfs, sec, socks};
        }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 2) return 0;
  static const uint8_t v4[4] = {149, 154, 167, 51};
  static const uint8_t v6[16] = {0x20, 0x01, 0x0b, 0x28, 0xf2, 0x3d, 0xf0, 0x01,
                                 0,    0,    0,    0,    0,    0,    0,    10};
  static const char host[] = "venus.web.telegram.org";
  static const int16_t dcs[3] = {2, -4, 10003};
  static const char *secrets[4] = {NULL, "8a96ef6e42a18c21837580cd1c91c5a8",
                                   "dd8a96ef6e42a18c21837580cd1c91c5a8",
                                   "ee8a96ef6e42a18c21837580cd1c91c5a86578616d706c652e636f6d"};
  struct combo cb[32];
  size_t ncb = all_combos(cb);
  unsigned idx = d[0] % ncb;
  const struct combo *c = &cb[idx];
  size_t step = (size_t)d[1] * 7 % 509 + 1;

  struct xs rng = {0x5eedull + idx * 7919};
  mtci_proxy_secret sec;
  mtci_stack_socks5 s5;
  mtci_stack_config cfg;
  memset(&cfg, 0, sizeof cfg);
  memset(&s5, 0, sizeof s5);
  cfg.codec = (mtci_codec_kind)c->kind;
  cfg.obfuscated = c->obfs;
  cfg.dc_id = dcs[idx % 3];
  cfg.rnd = xs_fn;
  cfg.rnd_ud = &rng;
  cfg.max_queued = 1u << 20;
  if (c->secret) {
    check(mtci_proxy_secret_parse(secrets[c->secret], strlen(secrets[c->secret]), &sec, NULL) == 0);
    cfg.secret = &sec;
  }
  if (c->socks) {
    s5.atyp = idx % 3 == 0 ? MTCI_SOCKS5_ATYP_IPV4
              : idx % 3 == 1 ? MTCI_SOCKS5_ATYP_IPV6
                             : MTCI_SOCKS5_ATYP_DOMAIN;
    s5.addr = idx % 3 == 0 ? v4 : idx % 3 == 1 ? v6 : (const uint8_t *)host;
    s5.addr_len = idx % 3 == 0 ? 4 : idx % 3 == 1 ? 16 : sizeof host - 1;
    s5.port = 443;
    if (idx % 2 == 0) {
      s5.user = (const uint8_t *)"alice", s5.user_len = 5;
      s5.pass = (const uint8_t *)"s3cret", s5.pass_len = 6;
    }
    cfg.socks5 = &s5;
  }
  mtci_stack st;
  check(mtci_stack_init(&st, &cfg) == 0);
  if (c->secret) mtci_proxy_secret_free(&sec);
  int rc = mtci_stack_start(&st, NOW);
  check(rc == 0 || rc == 1);
  uint8_t pkt[64];
  memset(pkt, 0x5a, sizeof pkt);
  check(mtci_stack_send_packet(&st, pkt, 24, 0) == 0);

  const uint8_t *srv = d + 2;
  size_t left = n - 2;
  int sends = 0, err = 0;
  while (left > 0 && !err) {
    const uint8_t *p;
    size_t pend = mtci_stack_pending(&st, &p);
    if (pend) check(p != NULL && mtci_stack_consumed(&st, pend) == 0);
    size_t len = left < step ? left : step;
    const uint8_t *q = srv;
    size_t qn = len;
    for (;;) {
      size_t used = 0;
      mtci_stack_event ev;
      rc = mtci_stack_feed(&st, q, qn, &used, &ev);
      check(used <= qn);
      if (rc < 0) {
        err = rc;
        break;
      }
      q += used;
      qn -= used;
      if (rc == 0) {
        check(qn == 0);
        break;
      }
      check(rc == 1);
      switch (ev.type) {
      case MTCI_STACK_READY: check(mtci_stack_ready(&st)); break;
      case MTCI_STACK_PACKET:
        check(ev.data != NULL && ev.len >= 20 && ev.len <= MTCI_CODEC_MAX_PAYLOAD);
        if (sends < 16) { /* answer with up to 64 bytes of it */
          size_t m = ev.len > 64 ? 64 : ev.len & ~(size_t)3;
          rc = mtci_stack_send_packet(&st, ev.data, m, sends & 1);
          check(rc == 0 || rc == MTC_ERR_UNSUPPORTED);
          sends++;
        }
        break;
      case MTCI_STACK_QUICK_ACK: break;
      case MTCI_STACK_TRANSPORT_ERROR: check(ev.error <= MTC_ERR_TRANSPORT_ERROR); break;
      default: check(0);
      }
    }
    srv += len;
    left -= len;
  }
  if (err) { /* sticky */
    size_t used = 1;
    mtci_stack_event ev;
    check(mtci_stack_feed(&st, srv, left, &used, &ev) == err && used == 0);
    check(mtci_stack_eof(&st) == err);
  } else {
    rc = mtci_stack_eof(&st);
    check(rc <= 0);
  }
  check(mtci_stack_bytes_in(&st) <= n);
  mtci_stack_free(&st);
  return 0;
}
