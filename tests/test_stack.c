/*
 * Connection stack: a client stack against an in-memory peer built from the
 * SERVER-side pieces (codec F_SERVER, mtci_obfs_server_init, the fake-TLS
 * server checks, server record writer / reader) and a scripted SOCKS5
 * server written here.
 *
 * Matrix (24 configurations, each run twice: random splits with 20 packets
 * each way, and every byte fed and written one at a time):
 *
 *   secret        codecs                       obfuscation   x SOCKS5
 *   none          abridged/int/padded/full     plain         x {no, yes}   8
 *   none          abridged/int/padded          obfuscated    x {no, yes}   6
 *   16-byte key   abridged/int/padded          (forced)      x {no, yes}   6
 *   dd            padded (forced)              (forced)      x {no, yes}   2
 *   ee            padded (forced) + fake-TLS   (forced)      x {no, yes}   2
 *
 * Skipped as invalid (checked to fail in init_errors): full + obfuscation,
 * full + any secret. Duplicates a secret forces onto the same transport
 * (dd/ee with another codec, secret without obfuscation) are run once in
 * secret_forcing.
 *
 * Memory: drained buffers are kept up to MTCI_STACK_KEEP and mtci_stack_trim
 * / mtci_conn_trim free only the empty ones (drained_buffers_kept_until_trim,
 * conn_trim_releases_stack_buffers), observed through mtci_stack_heap_bytes.
 */
#include "conn.h"
#include "crypto/crypto.h"
#include "test.h"
#include "transport/stack.h"

#define NOW 1700000000
#define MAX_PKTS 64

/* ---- small helpers ------------------------------------------------------- */

struct xs_rng {
  uint64_t s;
};
static int xs_rng_fn(void *ud, uint8_t *out, size_t len) {
  struct xs_rng *r = ud;
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(test_rand64(&r->s) >> 24);
  return 0;
}
static uint32_t xs_u32(struct xs_rng *r) { return (uint32_t)(test_rand64(&r->s) >> 16); }

struct tbuf {
  uint8_t *p;
  size_t len, cap, pos;
};
static void tb_put(struct tbuf *b, const uint8_t *d, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) abort();
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, d, n);
  b->len += n;
}
static void tb_drop(struct tbuf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}
static void tb_free(struct tbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

struct plist {
  size_t n;
  uint8_t *data[MAX_PKTS];
  size_t len[MAX_PKTS];
  int ack[MAX_PKTS];
};
static void pl_add(struct plist *l, const uint8_t *d, size_t n, int ack) {
  if (l->n >= MAX_PKTS) abort();
  l->data[l->n] = malloc(n ? n : 1);
  if (!l->data[l->n]) abort();
  memcpy(l->data[l->n], d, n);
  l->len[l->n] = n;
  l->ack[l->n] = ack;
  l->n++;
}
static void pl_free(struct plist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->data[i]);
  memset(l, 0, sizeof *l);
}
static int pl_equal(const struct plist *a, const struct plist *b) {
  if (a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (a->len[i] != b->len[i] || memcmp(a->data[i], b->data[i], a->len[i]) != 0) return 0;
  return 1;
}

/* An MTProto-shaped packet (the padded codec's receiver trims by the shape):
 * encrypted: auth_key_id != 0, 24 + 16k bytes; unencrypted: auth_key_id 0,
 * msg_id, message_data_length, data (20 + 4j bytes). big: ~200 KiB. */
static size_t gen_packet(struct xs_rng *r, uint8_t *buf, int big) {
  uint32_t c = xs_u32(r) % 100;
  size_t units = big ? 12800 + xs_u32(r) % 64 : c < 60 ? 1 + xs_u32(r) % 40
                                               : c < 95 ? 1 + xs_u32(r) % 512
                                                        : 1 + xs_u32(r) % 4096;
  if (xs_u32(r) % 3 == 0) { /* unencrypted */
    size_t j = units * (big ? 16 : 4);
    memset(buf, 0, 8);
    xs_rng_fn(r, buf + 8, 8);
    buf[16] = (uint8_t)j, buf[17] = (uint8_t)(j >> 8), buf[18] = (uint8_t)(j >> 16), buf[19] = 0;
    xs_rng_fn(r, buf + 20, j);
    return 20 + j;
  }
  size_t n = 24 + 16 * units;
  xs_rng_fn(r, buf, n);
  buf[0] |= 1; /* auth_key_id != 0 */
  return n;
}
#define PKT_MAX (24 + 16 * (12800 + 64))

/* ---- the peer: SOCKS5 server, MTProxy / DC server side --------------------- */

enum { PS_GREET, PS_AUTH, PS_REQ, PS_HELLO, PS_HEAD, PS_DATA };

struct peer {
  /* expectations */
  mtci_codec_kind kind;
  int obfs, tls, socks, auth, has_key, bad_digest;
  uint8_t key[16];
  const char *domain;
  int16_t dc;
  uint8_t atyp;
  const uint8_t *addr;
  size_t addr_len;
  uint16_t port;
  /* state */
  int stage, err;
  struct xs_rng rng;
  struct tbuf in, head, out;
  mtci_tls_reader tr;
  mtci_tls_writer tw;
  uint8_t rec_hdr[5]; /* client record layout check: header bytes so far */
  size_t rec_hl, rec_left, records;
  mtci_obfs ob;
  mtci_codec codec;
  struct plist got;
  uint64_t raw_in;
};

static const uint8_t socks_user[] = "alice", socks_pass[] = "s3cret";

static void peer_fail(struct peer *pe, int line) {
  if (!pe->err) {
    fprintf(stderr, "  peer failure at line %d\n", line);
    pe->err = line;
  }
}
#define PCHECK(c)                                                                                  \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      peer_fail(pe, __LINE__);                                                                     \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

/* Server -> client stream bytes: obfuscate, wrap in records. */
static void peer_emit(struct peer *pe, uint8_t *p, size_t n) {
  if (pe->obfs) mtci_obfs_encrypt(&pe->ob, p, p, n);
  if (!pe->tls) {
    tb_put(&pe->out, p, n);
    return;
  }
  size_t cap = mtci_tls_writer_size(&pe->tw, n), olen = 0;
  uint8_t *t = malloc(cap ? cap : 1);
  if (!t) abort();
  if (mtci_tls_writer_emit(&pe->tw, p, n, t, cap, &olen) != 0 || olen != cap) peer_fail(pe, __LINE__);
  tb_put(&pe->out, t, olen);
  free(t);
}

static void peer_send(struct peer *pe, const uint8_t *pkt, size_t len) {
  size_t cap = 8 + len + 15, off, flen;
  uint8_t *b = malloc(cap);
  if (!b) abort();
  memcpy(b + 8, pkt, len);
  if (mtci_codec_encode(&pe->codec, b, cap, 8, len, 0, &off, &flen) != 0) peer_fail(pe, __LINE__);
  else peer_emit(pe, b + off, flen);
  free(b);
}

static void peer_quick_ack(struct peer *pe, uint32_t token) {
  uint8_t b[4];
  if (mtci_codec_encode_quick_ack(&pe->codec, token, b, 4) != 4) peer_fail(pe, __LINE__);
  else peer_emit(pe, b, 4);
}

static void peer_error(struct peer *pe, int32_t code) {
  uint8_t b[8 + 4 + 15];
  uint32_t u = (uint32_t)code;
  b[8] = (uint8_t)u, b[9] = (uint8_t)(u >> 8), b[10] = (uint8_t)(u >> 16), b[11] = (uint8_t)(u >> 24);
  size_t off, flen;
  if (mtci_codec_encode(&pe->codec, b, sizeof b, 8, 4, 0, &off, &flen) != 0) peer_fail(pe, __LINE__);
  else peer_emit(pe, b + off, flen);
}

/* Decrypted client stream bytes into the server codec. */
static void peer_stream(struct peer *pe, const uint8_t *p, size_t n) {
  while (n) {
    size_t used;
    mtci_frame fr;
    int rc = mtci_codec_feed(&pe->codec, p, n, &used, &fr);
    PCHECK(rc >= 0 && used <= n);
    p += used;
    n -= used;
    if (rc == 0) {
      PCHECK(n == 0);
      break;
    }
    PCHECK(fr.type == MTCI_FRAME_DATA);
    size_t plen = fr.len;
    if (pe->kind == MTCI_CODEC_PADDED) PCHECK(mtci_padded_payload_len(fr.data, fr.len, &plen) == 0);
    pl_add(&pe->got, fr.data, plen, fr.ack_requested);
  }
}

/* Client records: CCS first, then 17 03 03 records of 1..2878 bytes. */
static void peer_check_records(struct peer *pe, const uint8_t *p, size_t n) {
  while (n) {
    if (pe->rec_left) {
      size_t take = n < pe->rec_left ? n : pe->rec_left;
      p += take, n -= take, pe->rec_left -= take;
      continue;
    }
    pe->rec_hdr[pe->rec_hl++] = *p++;
    n--;
    if (pe->rec_hl < 5) continue;
    size_t len = (size_t)pe->rec_hdr[3] << 8 | pe->rec_hdr[4];
    if (pe->records == 0) PCHECK(memcmp(pe->rec_hdr, "\x14\x03\x03\x00\x01", 5) == 0);
    else PCHECK(pe->rec_hdr[0] == 0x17 && pe->rec_hdr[1] == 3 && pe->rec_hdr[2] == 3);
    PCHECK(len >= 1 && len <= (pe->records ? MTCI_TLS_CLIENT_MAX_PAYLOAD : 1));
    pe->rec_left = len;
    pe->rec_hl = 0;
    pe->records++;
  }
}

static void peer_feed(struct peer *pe, const uint8_t *d, size_t n) {
  pe->raw_in += n;
  tb_put(&pe->in, d, n);
  for (;;) {
    uint8_t *p = pe->in.p;
    size_t have = pe->in.len;
    switch (pe->stage) {
    case PS_GREET: {
      if (have < 2 || have < 2 + (size_t)p[1]) return;
      PCHECK(p[0] == 5);
      if (pe->auth) PCHECK(p[1] == 2 && p[2] == 0 && p[3] == 2);
      else PCHECK(p[1] == 1 && p[2] == 0);
      tb_drop(&pe->in, 2 + (size_t)p[1]);
      uint8_t reply[2] = {5, pe->auth ? 2 : 0};
      tb_put(&pe->out, reply, 2);
      pe->stage = pe->auth ? PS_AUTH : PS_REQ;
      break;
    }
    case PS_AUTH: {
      if (have < 2 || have < 3 + (size_t)p[1] || have < 3 + (size_t)p[1] + p[2 + p[1]]) return;
      size_t ul = p[1], pl = p[2 + ul];
      PCHECK(p[0] == 1 && ul == 5 && memcmp(p + 2, socks_user, 5) == 0);
      PCHECK(pl == 6 && memcmp(p + 3 + ul, socks_pass, 6) == 0);
      tb_drop(&pe->in, 3 + ul + pl);
      static const uint8_t ok[2] = {1, 0};
      tb_put(&pe->out, ok, 2);
      pe->stage = PS_REQ;
      break;
    }
    case PS_REQ: {
      size_t alen = pe->atyp == MTCI_SOCKS5_ATYP_DOMAIN ? 1 + pe->addr_len : pe->addr_len;
      if (have < 4 + alen + 2) return;
      PCHECK(p[0] == 5 && p[1] == 1 && p[2] == 0 && p[3] == pe->atyp);
      const uint8_t *a = p + 4;
      if (pe->atyp == MTCI_SOCKS5_ATYP_DOMAIN) PCHECK(*a++ == pe->addr_len);
      PCHECK(memcmp(a, pe->addr, pe->addr_len) == 0);
      PCHECK(a[pe->addr_len] == pe->port >> 8 && a[pe->addr_len + 1] == (pe->port & 0xff));
      tb_drop(&pe->in, 4 + alen + 2);
      static const uint8_t ok[10] = {5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38};
      tb_put(&pe->out, ok, sizeof ok);
      pe->stage = pe->tls ? PS_HELLO : PS_HEAD;
      break;
    }
    case PS_HELLO: {
      int sz = mtci_tls_client_hello_size(p, have);
      PCHECK(sz >= 0);
      if (sz == 0 || have < (size_t)sz) return;
      PCHECK(sz == MTCI_TLS_HELLO_LEN);
      uint32_t ts = 0;
      PCHECK(mtci_tls_server_check_hello(p, (size_t)sz, pe->key, (const uint8_t *)pe->domain,
                                         strlen(pe->domain), NOW + 5, 0, &ts) == 0);
      PCHECK(ts == NOW);
      uint8_t wrong[16];
      memcpy(wrong, pe->key, 16);
      wrong[15] ^= 1;
      uint8_t resp[127 + 6 + 5 + 4096];
      size_t cert = 1024 + xs_u32(&pe->rng) % 3072, rlen = 0;
      PCHECK(mtci_tls_server_hello(pe->bad_digest ? wrong : pe->key, p, (size_t)sz, cert, xs_rng_fn,
                                   &pe->rng, resp, sizeof resp, &rlen) == 0);
      tb_put(&pe->out, resp, rlen);
      tb_drop(&pe->in, (size_t)sz);
      mtci_tls_reader_init(&pe->tr);
      mtci_tls_writer_init(&pe->tw, 1);
      pe->stage = PS_HEAD;
      break;
    }
    default: {
      /* the tunnel: strip records, then the obfuscation header, then frames */
      size_t n2 = have;
      if (pe->tls) {
        peer_check_records(pe, p, have);
        PCHECK(mtci_tls_reader_feed(&pe->tr, p, have, p, &n2) == 0);
      }
      pe->in.len = 0;
      if (pe->stage == PS_HEAD && pe->obfs) {
        size_t take = n2 < 64 - pe->head.len ? n2 : 64 - pe->head.len;
        tb_put(&pe->head, p, take);
        p += take;
        n2 -= take;
        if (pe->head.len < 64) return;
        static const unsigned bits[] = {0, MTCI_OBFS_ALLOW_ABRIDGED, MTCI_OBFS_ALLOW_INTERMEDIATE,
                                        MTCI_OBFS_ALLOW_PADDED};
        uint32_t tag = 0;
        int16_t dc = 0;
        PCHECK(mtci_obfs_server_init(&pe->ob, pe->head.p, pe->has_key ? pe->key : NULL,
                                     bits[pe->kind], &tag, &dc) == 0);
        PCHECK(dc == pe->dc);
      }
      pe->stage = PS_DATA;
      if (pe->obfs) mtci_obfs_decrypt(&pe->ob, p, p, n2);
      peer_stream(pe, p, n2);
      return;
    }
    }
    if (pe->err) return;
  }
}

static void peer_free(struct peer *pe) {
  tb_free(&pe->in);
  tb_free(&pe->head);
  tb_free(&pe->out);
  mtci_obfs_free(&pe->ob);
  mtci_codec_free(&pe->codec);
  pl_free(&pe->got);
}

/* ---- the client side and the wire between them ------------------------------ */

struct client {
  mtci_stack st;
  struct xs_rng rng;
  struct plist got;
  int ready, err, n_acks;
  uint32_t acks[8];
  int32_t tcode;
  int terr;
  uint64_t raw_in;
};

static void client_feed(struct client *c, const uint8_t *p, size_t n) {
  c->raw_in += n;
  for (;;) {
    size_t used = 0;
    mtci_stack_event ev;
    int r = mtci_stack_feed(&c->st, p, n, &used, &ev);
    if (r < 0) {
      c->err = r;
      return;
    }
    if (used > n) abort();
    p += used;
    n -= used;
    if (r == 0) {
      if (n) c->err = -9999; /* feed must take everything when it reports 0 */
      return;
    }
    switch (ev.type) {
    case MTCI_STACK_READY: c->ready++; break;
    case MTCI_STACK_PACKET: pl_add(&c->got, ev.data, ev.len, 0); break;
    case MTCI_STACK_QUICK_ACK:
      if (c->n_acks < 8) c->acks[c->n_acks] = ev.quick_ack;
      c->n_acks++;
      break;
    case MTCI_STACK_TRANSPORT_ERROR:
      c->tcode = ev.error_code;
      c->terr = ev.error;
      break;
    }
  }
}

/* mode 0: random splits (a quarter of them single bytes); 1: byte by byte */
static size_t split(struct xs_rng *r, size_t n, int mode) {
  if (mode == 1 || n == 1) return 1;
  switch (xs_u32(r) % 4) {
  case 0: return 1;
  case 1: return 1 + xs_u32(r) % (n < 16 ? n : 16);
  default: return 1 + xs_u32(r) % n;
  }
}

/* Shuttle bytes both ways until neither side has anything to say. */
static void pump(struct client *c, struct peer *pe, struct xs_rng *wire, int mode) {
  for (int progress = 1; progress && !pe->err && !c->err;) {
    progress = 0;
    const uint8_t *p;
    size_t n = mtci_stack_pending(&c->st, &p);
    if (n) {
      size_t k = split(wire, n, mode);
      peer_feed(pe, p, k);
      if (mtci_stack_consumed(&c->st, k) != 0) c->err = -9998;
      progress = 1;
    }
    size_t m = pe->out.len - pe->out.pos;
    if (m) {
      size_t k = split(wire, m, mode);
      client_feed(c, pe->out.p + pe->out.pos, k);
      pe->out.pos += k;
      if (pe->out.pos == pe->out.len) pe->out.pos = pe->out.len = 0;
      progress = 1;
    }
  }
}

/* ---- one configuration ----------------------------------------------------- */

enum { SEC_NONE, SEC_SIMPLE, SEC_DD, SEC_EE };

struct combo {
  mtci_codec_kind kind; /* as configured */
  int obfs, secret, socks;
};

static const uint8_t v4[4] = {149, 154, 167, 51};
static const uint8_t v6[16] = {0x20, 0x01, 0x0b, 0x28, 0xf2, 0x3d, 0xf0, 0x01, 0, 0, 0, 0, 0, 0, 0, 10};
static const char host[] = "venus.web.telegram.org";
static const char *KEY_HEX = "8a96ef6e42a18c21837580cd1c91c5a8";

static int make_secret(int kind, mtci_proxy_secret *s) {
  char text[128];
  switch (kind) {
  case SEC_SIMPLE: snprintf(text, sizeof text, "%s", KEY_HEX); break;
  case SEC_DD: snprintf(text, sizeof text, "dd%s", KEY_HEX); break;
  default: snprintf(text, sizeof text, "ee%s6578616d706c652e636f6d", KEY_HEX); break; /* example.com */
  }
  return mtci_proxy_secret_parse(text, strlen(text), s, NULL);
}

struct setup {
  struct client c;
  struct peer pe;
  mtci_proxy_secret secret;
  mtci_stack_socks5 s5;
  int start_rc;
};

/* Configure client and peer for combo number idx (varies dc id, SOCKS5
 * target type and credentials with it). Returns the init result. */
static int setup_init(struct setup *su, const struct combo *cb, unsigned idx, uint64_t seed,
                      int bad_digest) {
  memset(su, 0, sizeof *su);
  static const int16_t dcs[3] = {2, -4, 10003};
  mtci_stack_config cfg = {0};
  cfg.codec = cb->kind;
  cfg.obfuscated = cb->obfs;
  cfg.dc_id = dcs[idx % 3];
  cfg.rnd = xs_rng_fn;
  su->c.rng.s = seed;
  cfg.rnd_ud = &su->c.rng;
  if (cb->secret != SEC_NONE) {
    if (make_secret(cb->secret, &su->secret) != 0) return -9997;
    cfg.secret = &su->secret;
  }
  struct peer *pe = &su->pe;
  pe->rng.s = seed ^ 0x5555;
  pe->kind = cb->secret >= SEC_DD ? MTCI_CODEC_PADDED : cb->kind;
  pe->obfs = cb->obfs || cb->secret != SEC_NONE;
  pe->tls = cb->secret == SEC_EE;
  pe->has_key = cb->secret != SEC_NONE;
  memcpy(pe->key, su->secret.key, 16);
  pe->domain = "example.com";
  pe->dc = cfg.dc_id;
  pe->bad_digest = bad_digest;
  pe->socks = cb->socks;
  pe->auth = cb->socks && idx % 2 == 0;
  pe->stage = cb->socks ? PS_GREET : pe->tls ? PS_HELLO : PS_HEAD;
  if (cb->socks) {
    su->s5.atyp = idx % 3 == 0 ? MTCI_SOCKS5_ATYP_IPV4 : idx % 3 == 1 ? MTCI_SOCKS5_ATYP_IPV6
                                                                      : MTCI_SOCKS5_ATYP_DOMAIN;
    su->s5.addr = idx % 3 == 0 ? v4 : idx % 3 == 1 ? v6 : (const uint8_t *)host;
    su->s5.addr_len = idx % 3 == 0 ? 4 : idx % 3 == 1 ? 16 : sizeof host - 1;
    su->s5.port = 443;
    if (pe->auth) {
      su->s5.user = socks_user, su->s5.user_len = 5;
      su->s5.pass = socks_pass, su->s5.pass_len = 6;
    }
    cfg.socks5 = &su->s5;
    pe->atyp = su->s5.atyp, pe->addr = su->s5.addr, pe->addr_len = su->s5.addr_len;
    pe->port = 443;
  }
  unsigned flags = MTCI_CODEC_F_SERVER | (pe->obfs ? 0 : MTCI_CODEC_F_TAG);
  if (mtci_codec_init(&pe->codec, pe->kind, flags, xs_rng_fn, &pe->rng) != 0) return -9996;
  return mtci_stack_init(&su->c.st, &cfg);
}

static void setup_free(struct setup *su) {
  mtci_stack_free(&su->c.st);
  pl_free(&su->c.got);
  peer_free(&su->pe);
  mtci_proxy_secret_free(&su->secret);
}

static void describe(const struct combo *cb, int mode, int line) {
  static const char *kinds[] = {"?", "abridged", "intermediate", "padded", "full"};
  static const char *secs[] = {"direct", "secret", "dd", "ee"};
  fprintf(stderr, "  line %d, config: %s %s %s%s, %s splits\n", line, kinds[cb->kind],
          cb->obfs ? "obfs" : "plain", secs[cb->secret], cb->socks ? " +socks5" : "",
          mode ? "1-byte" : "random");
}

/* Run one configuration; returns 0 or the failing line. */
static int run_combo(const struct combo *cb, unsigned idx, int mode) {
  static uint8_t buf[PKT_MAX];
  struct setup su;
  int bad = 0;
#define RCHECK(c)                                                                                  \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      bad = __LINE__;                                                                              \
      goto out;                                                                                    \
    }                                                                                              \
  } while (0)
  struct plist sent_c = {0}, sent_s = {0};
  struct client *c = &su.c;
  struct peer *pe = &su.pe;
  RCHECK(setup_init(&su, cb, idx, 0x1234567ull + idx * 7919 + (uint64_t)mode, 0) == 0);
  struct xs_rng wire = {0xabcdefull + idx};
  struct xs_rng gen = {0x777ull + idx * 31 + (uint64_t)mode};
  int handshake = cb->socks || cb->secret == SEC_EE;
  mtci_codec_kind kind = mtci_stack_codec(&c->st);
  RCHECK(kind == pe->kind);

  RCHECK(mtci_stack_start(&c->st, NOW) == (handshake ? 0 : 1));
  RCHECK(mtci_stack_ready(&c->st) == !handshake);
  /* two packets before the handshakes: held, then sent in order */
  for (int i = 0; i < 2; i++) {
    size_t n = gen_packet(&gen, buf, 0);
    RCHECK(mtci_stack_send_packet(&c->st, buf, n, 0) == 0);
    pl_add(&sent_c, buf, n, 0);
  }
  pump(c, pe, &wire, mode);
  RCHECK(!pe->err && !c->err);
  RCHECK(mtci_stack_ready(&c->st));
  RCHECK(c->ready == handshake);
  RCHECK(pe->stage == PS_DATA);

  int rounds = mode ? 3 : 20;
  for (int i = 0; i < rounds; i++) {
    size_t n = gen_packet(&gen, buf, mode == 0 && i == 7);
    RCHECK(mtci_stack_send_packet(&c->st, buf, n, 0) == 0);
    pl_add(&sent_c, buf, n, 0);
    n = gen_packet(&gen, buf, mode == 0 && i == 13);
    peer_send(pe, buf, n);
    pl_add(&sent_s, buf, n, 0);
    if (xs_u32(&gen) % 3 == 0) pump(c, pe, &wire, mode);
    RCHECK(!pe->err && !c->err);
  }
  pump(c, pe, &wire, mode);
  RCHECK(!pe->err && !c->err);
  RCHECK(pl_equal(&pe->got, &sent_c));
  RCHECK(pl_equal(&c->got, &sent_s));
  if (mode == 0) RCHECK(pe->raw_in > 200000 && c->raw_in > 200000); /* the big ones went too */
  if (pe->tls) RCHECK(pe->records > (mode ? 1u : 80u) && pe->rec_hl == 0 && pe->rec_left == 0);
  for (size_t i = 0; i < pe->got.n; i++) RCHECK(pe->got.ack[i] == 0);

  /* quick ack round trip */
  size_t n = gen_packet(&gen, buf, 0);
  if (mtci_codec_has_quick_ack(kind)) {
    RCHECK(mtci_stack_send_packet(&c->st, buf, n, 1) == 0);
    pump(c, pe, &wire, mode);
    RCHECK(pe->got.n == sent_c.n + 1 && pe->got.ack[sent_c.n] == 1);
    RCHECK(pe->got.len[sent_c.n] == n && memcmp(pe->got.data[sent_c.n], buf, n) == 0);
    uint32_t token = 0x80000000u | xs_u32(&gen);
    peer_quick_ack(pe, token);
    pump(c, pe, &wire, mode);
    RCHECK(!pe->err && !c->err);
    RCHECK(c->n_acks == 1 && c->acks[0] == token);
  } else {
    RCHECK(mtci_stack_send_packet(&c->st, buf, n, 1) == MTC_ERR_UNSUPPORTED);
  }

  /* counters: raw bytes as the peer saw them */
  RCHECK(mtci_stack_bytes_out(&c->st) == pe->raw_in);
  RCHECK(mtci_stack_bytes_in(&c->st) == c->raw_in);
  RCHECK(mtci_stack_eof(&c->st) == 0);

  /* transport error -404: reported once, then sticky */
  peer_error(pe, -404);
  pump(c, pe, &wire, mode);
  RCHECK(c->tcode == -404 && c->terr == MTC_ERR_TRANSPORT_AUTH_KEY);
  RCHECK(c->err == MTC_ERR_TRANSPORT_AUTH_KEY || c->err == 0);
  {
    size_t used = 1;
    mtci_stack_event ev;
    RCHECK(mtci_stack_feed(&c->st, NULL, 0, &used, &ev) == MTC_ERR_TRANSPORT_AUTH_KEY && used == 0);
    RCHECK(mtci_stack_send_packet(&c->st, buf, 24, 0) == MTC_ERR_TRANSPORT_AUTH_KEY);
    RCHECK(mtci_stack_eof(&c->st) == MTC_ERR_TRANSPORT_AUTH_KEY);
  }
out:
  if (bad) describe(cb, mode, bad);
  pl_free(&sent_c);
  pl_free(&sent_s);
  setup_free(&su);
  return bad;
#undef RCHECK
}

static size_t all_combos(struct combo *out) {
  size_t n = 0;
  for (int sec = SEC_NONE; sec <= SEC_EE; sec++)
    for (int k = MTCI_CODEC_ABRIDGED; k <= MTCI_CODEC_FULL; k++)
      for (int obfs = 0; obfs <= 1; obfs++)
        for (int socks = 0; socks <= 1; socks++) {
          if (k == MTCI_CODEC_FULL && (obfs || sec != SEC_NONE)) continue;
          if (sec != SEC_NONE && !obfs) continue;                /* forced on */
          if (sec >= SEC_DD && k != MTCI_CODEC_PADDED) continue; /* forced to padded */
          out[n++] = (struct combo){(mtci_codec_kind)k, obfs, sec, socks};
        }
  return n;
}

TEST(matrix_random_splits) {
  struct combo cb[32];
  size_t n = all_combos(cb);
  CHECK_EQ_INT(n, 24);
  int failed = 0;
  for (size_t i = 0; i < n; i++)
    if (run_combo(&cb[i], (unsigned)i, 0)) failed++;
  CHECK_EQ_INT(failed, 0);
}

TEST(matrix_byte_by_byte) {
  struct combo cb[32];
  size_t n = all_combos(cb);
  int failed = 0;
  for (size_t i = 0; i < n; i++)
    if (run_combo(&cb[i], (unsigned)i, 1)) failed++;
  CHECK_EQ_INT(failed, 0);
}

/* A secret decides the transport whatever the config asks for. */
TEST(secret_forcing) {
  static uint8_t buf[PKT_MAX];
  for (int sec = SEC_SIMPLE; sec <= SEC_EE; sec++) {
    struct combo cb = {sec == SEC_SIMPLE ? MTCI_CODEC_ABRIDGED : MTCI_CODEC_INTERMEDIATE, 0, sec, 0};
    struct setup su;
    CHECK_EQ_INT(setup_init(&su, &cb, 1, 99 + (uint64_t)sec, 0), 0);
    CHECK_EQ_INT(mtci_stack_codec(&su.c.st),
                 sec == SEC_SIMPLE ? MTCI_CODEC_ABRIDGED : MTCI_CODEC_PADDED);
    CHECK(mtci_stack_start(&su.c.st, NOW) >= 0);
    struct xs_rng gen = {5}, wire = {6};
    size_t n = gen_packet(&gen, buf, 0);
    CHECK_EQ_INT(mtci_stack_send_packet(&su.c.st, buf, n, 0), 0);
    pump(&su.c, &su.pe, &wire, 0);
    int ok = !su.pe.err && !su.c.err && su.pe.got.n == 1 && su.pe.got.len[0] == n &&
             memcmp(su.pe.got.data[0], buf, n) == 0;
    setup_free(&su);
    CHECK(ok);
  }
}

TEST(ee_wrong_server_digest) {
  for (int socks = 0; socks <= 1; socks++) {
    struct combo cb = {MTCI_CODEC_PADDED, 1, SEC_EE, socks};
    struct setup su;
    CHECK_EQ_INT(setup_init(&su, &cb, 2, 42, 1), 0);
    CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 0);
    uint8_t pkt[24] = {1};
    CHECK_EQ_INT(mtci_stack_send_packet(&su.c.st, pkt, sizeof pkt, 0), 0);
    struct xs_rng wire = {7};
    pump(&su.c, &su.pe, &wire, 0);
    int err = su.c.err, ready = su.c.ready, peer_err = su.pe.err;
    size_t used = 1;
    mtci_stack_event ev;
    int again = mtci_stack_feed(&su.c.st, pkt, 1, &used, &ev);
    int eof = mtci_stack_eof(&su.c.st);
    int send = mtci_stack_send_packet(&su.c.st, pkt, sizeof pkt, 0);
    /* nothing of the obfuscated stream reached the peer */
    int stage = su.pe.stage;
    setup_free(&su);
    CHECK_EQ_INT(peer_err, 0);
    CHECK_EQ_INT(err, MTC_ERR_TLS_BAD_DIGEST);
    CHECK_EQ_INT(ready, 0);
    CHECK_EQ_INT(again, MTC_ERR_TLS_BAD_DIGEST);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(eof, MTC_ERR_TLS_BAD_DIGEST);
    CHECK_EQ_INT(send, MTC_ERR_TLS_BAD_DIGEST);
    CHECK_EQ_INT(stage, PS_HEAD);
  }
}

/* PROTOCOL.md §7.7: with the RNG replaying gotd's init bytes, a dd-secret
 * connection to DC 2 starts with init[0:56] || bea2dde16dc59dd2; the encrypt
 * stream continues at offset 64 (keystream = "abcd" ^ ca7a8226) and the
 * decrypt stream starts at 0 (keystream = "abcd" ^ 8f711982). */
TEST(obfuscated2_vector_dd) {
  uint8_t rnd[64 + 1], want[64], key[16];
  CHECK_EQ_INT(test_unhex("f5768f50b731260a46be1027c2eeaa39350624f0b6da59eba56c81fe4510c2e0"
                          "b61d3dd323ee02388633e3837a0c1c24fa6f29ccd724be6f416ff7b026f6cce6",
                          rnd, 64),
               64);
  rnd[64] = 0x30; /* padding length byte: 0x30 & 15 = 0 */
  memcpy(want, rnd, 56);
  CHECK_EQ_INT(test_unhex("bea2dde16dc59dd2", want + 56, 8), 8);
  CHECK_EQ_INT(test_unhex(KEY_HEX, key, 16), 16);
  struct test_fixed_rng fr = {rnd, sizeof rnd, 0};
  mtci_proxy_secret sec;
  char text[64];
  snprintf(text, sizeof text, "dd%s", KEY_HEX);
  CHECK_EQ_INT(mtci_proxy_secret_parse(text, strlen(text), &sec, NULL), 0);
  mtci_stack_config cfg = {0};
  cfg.codec = MTCI_CODEC_ABRIDGED; /* forced to padded by dd */
  cfg.dc_id = 2;
  cfg.secret = &sec;
  cfg.rnd = test_fixed_rng_fn;
  cfg.rnd_ud = &fr;
  mtci_stack st;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), 0);
  CHECK_EQ_INT(mtci_stack_start(&st, NOW), 1);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 64);
  CHECK_MEM(p, want, 64);
  /* "abcd" as a padded frame: 04 00 00 00 'a' 'b' 'c' 'd', no padding */
  CHECK_EQ_INT(mtci_stack_send_packet(&st, (const uint8_t *)"abcd", 4, 0), 0);
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 72);
  const uint8_t ks_enc[4] = {'a' ^ 0xca, 'b' ^ 0x7a, 'c' ^ 0x82, 'd' ^ 0x26};
  const uint8_t len_enc[4] = {0x04 ^ ks_enc[0], ks_enc[1], ks_enc[2], ks_enc[3]};
  CHECK_MEM(p + 64, len_enc, 4);
  CHECK_EQ_INT(mtci_stack_consumed(&st, 70), 0);
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 2);
  CHECK_EQ_INT(mtci_stack_consumed(&st, 2), 0);
  CHECK_EQ_INT(mtci_stack_bytes_out(&st), 72);
  /* server sends quick-ack token 0x8badf00d (LE 0d f0 ad 8b) encrypted */
  const uint8_t ks_dec[4] = {'a' ^ 0x8f, 'b' ^ 0x71, 'c' ^ 0x19, 'd' ^ 0x82};
  const uint8_t wire[4] = {0x0d ^ ks_dec[0], 0xf0 ^ ks_dec[1], 0xad ^ ks_dec[2], 0x8b ^ ks_dec[3]};
  mtci_stack_event ev;
  size_t used = 0;
  CHECK_EQ_INT(mtci_stack_feed(&st, wire, 3, &used, &ev), 0);
  CHECK_EQ_INT(used, 3);
  CHECK_EQ_INT(mtci_stack_feed(&st, wire + 3, 1, &used, &ev), 1);
  CHECK_EQ_INT(used, 1);
  CHECK_EQ_INT(ev.type, MTCI_STACK_QUICK_ACK);
  CHECK_EQ_INT(ev.quick_ack, 0x8badf00du);
  CHECK_EQ_INT(mtci_stack_feed(&st, NULL, 0, &used, &ev), 0);
  CHECK_EQ_INT(mtci_stack_bytes_in(&st), 4);
  mtci_stack_free(&st);
  mtci_proxy_secret_free(&sec);
  /* free zeroizes the whole context (key schedules, secret included) */
  static const uint8_t zero[sizeof(mtci_stack)];
  CHECK(memcmp(&st, zero, sizeof st) == 0);
}

/* Plain abridged: the tag, then frames; 1-byte and 4-byte headers. */
TEST(plain_abridged_bytes) {
  mtci_stack_config cfg = {0};
  struct xs_rng r = {1};
  cfg.codec = MTCI_CODEC_ABRIDGED;
  cfg.rnd = xs_rng_fn;
  cfg.rnd_ud = &r;
  mtci_stack st;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), 0);
  CHECK_EQ_INT(mtci_stack_start(&st, 0), 1);
  static uint8_t pkt[508];
  for (size_t i = 0; i < sizeof pkt; i++) pkt[i] = (uint8_t)i;
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 8, 1), 0);
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 508, 0), 0);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 1 + 1 + 8 + 4 + 508);
  static const uint8_t head[] = {0xef, 0x82, 0, 1, 2, 3, 4, 5, 6, 7, 0x7f, 127, 0, 0};
  CHECK_MEM(p, head, sizeof head);
  CHECK_MEM(p + sizeof head, pkt, 508);
  /* receive: a 20-byte frame in one piece points into the input */
  uint8_t in[1 + 20] = {5};
  for (int i = 1; i < 21; i++) in[i] = (uint8_t)(0xa0 + i);
  mtci_stack_event ev;
  size_t used;
  CHECK_EQ_INT(mtci_stack_feed(&st, in, sizeof in, &used, &ev), 1);
  CHECK_EQ_INT(used, 21);
  CHECK_EQ_INT(ev.type, MTCI_STACK_PACKET);
  CHECK(ev.data == in + 1 && ev.len == 20);
  /* cut inside a frame: eof says so */
  CHECK_EQ_INT(mtci_stack_feed(&st, in, 3, &used, &ev), 0);
  CHECK_EQ_INT(mtci_stack_eof(&st), MTC_ERR_FRAME_TRUNCATED);
  mtci_stack_free(&st);
}

TEST(init_errors) {
  struct xs_rng r = {1};
  mtci_stack st;
  mtci_stack_config cfg = {0};
  cfg.rnd = xs_rng_fn;
  cfg.rnd_ud = &r;
  cfg.dc_id = 2;
  mtci_proxy_secret simple, dd, ee;
  CHECK_EQ_INT(make_secret(SEC_SIMPLE, &simple), 0);
  CHECK_EQ_INT(make_secret(SEC_DD, &dd), 0);
  CHECK_EQ_INT(make_secret(SEC_EE, &ee), 0);

  CHECK_EQ_INT(mtci_stack_init(NULL, &cfg), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_stack_init(&st, NULL), MTC_ERR_INVALID_ARG);
  cfg.codec = (mtci_codec_kind)0;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_INVALID_ARG);
  cfg.codec = (mtci_codec_kind)5;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_INVALID_ARG);
  cfg.codec = MTCI_CODEC_FULL;
  cfg.obfuscated = 1;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_INVALID_ARG); /* full is never obfuscated */
  cfg.obfuscated = 0;
  cfg.secret = &simple;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_INVALID_ARG); /* a secret forces obfuscation */
  cfg.secret = &dd;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), 0); /* dd forces padded */
  CHECK_EQ_INT(mtci_stack_codec(&st), MTCI_CODEC_PADDED);
  mtci_stack_free(&st);
  cfg.secret = NULL;
  cfg.codec = MTCI_CODEC_INTERMEDIATE;
  cfg.obfuscated = 1;
  cfg.dc_id = 0;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_INVALID_ARG); /* obfuscation needs a dc id */
  cfg.dc_id = 2;
  cfg.rnd = NULL;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_INVALID_ARG);
  cfg.rnd = xs_rng_fn;
  mtci_proxy_secret broken = ee;
  broken.domain_len = 0;
  cfg.secret = &broken;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_INVALID_ARG);
  broken.kind = (mtci_proxy_secret_kind)9;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_INVALID_ARG);
  cfg.secret = &ee;
  mtci_stack_socks5 s5 = {MTCI_SOCKS5_ATYP_IPV4, v4, 3, 443, NULL, 0, NULL, 0}; /* 3-byte IPv4 */
  cfg.socks5 = &s5;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), MTC_ERR_SOCKS_PARAMS);
  static const uint8_t zero[sizeof(mtci_stack)];
  CHECK(memcmp(&st, zero, sizeof st) == 0); /* the copied secret did not stay behind */
  CHECK_EQ_INT(mtci_stack_start(&st, NOW), MTC_ERR_INVALID_ARG);
  mtci_stack_free(&st);
  mtci_stack_free(&st);
  mtci_proxy_secret_free(&simple);
  mtci_proxy_secret_free(&dd);
  mtci_proxy_secret_free(&ee);
}

TEST(call_order_and_sizes) {
  struct xs_rng r = {3};
  mtci_stack_config cfg = {0};
  cfg.codec = MTCI_CODEC_INTERMEDIATE;
  cfg.obfuscated = 1;
  cfg.dc_id = 1;
  cfg.rnd = xs_rng_fn;
  cfg.rnd_ud = &r;
  cfg.max_queued = 1000;
  mtci_stack st;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), 0);
  uint8_t pkt[600] = {0};
  mtci_stack_event ev;
  size_t used = 7;
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 24, 0), MTC_ERR_INVALID_ARG); /* before start */
  CHECK_EQ_INT(mtci_stack_feed(&st, pkt, 4, &used, &ev), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(used, 0);
  CHECK_EQ_INT(mtci_stack_start(&st, NOW), 1);
  CHECK_EQ_INT(mtci_stack_start(&st, NOW), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 0, 0), MTC_ERR_FRAME_LENGTH);
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 22, 0), MTC_ERR_FRAME_LENGTH);
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, MTCI_CODEC_MAX_PAYLOAD + 4, 0),
               MTC_ERR_FRAME_TOO_LARGE);
  CHECK_EQ_INT(mtci_stack_send_packet(&st, NULL, 4, 0), MTC_ERR_INVALID_ARG);
  /* queue cap: 64 header + 604 fits, another 604 does not, nothing queued */
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 600, 0), 0);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 64 + 604);
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 600, 0), MTC_ERR_NOMEM);
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 64 + 604);
  CHECK_EQ_INT(mtci_stack_consumed(&st, 669), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_stack_consumed(&st, 300), 0); /* a partial write */
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 600, 0), 0);
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 368 + 604);
  CHECK_EQ_INT(mtci_stack_consumed(&st, 368 + 604), 0);
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 0);
  CHECK(p == NULL);
  CHECK_EQ_INT(mtci_stack_bytes_out(&st), 64 + 604 + 604);
  CHECK_EQ_INT(mtci_stack_feed(&st, pkt, 4, NULL, &ev), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_stack_feed(&st, pkt, 4, &used, NULL), MTC_ERR_INVALID_ARG);
  mtci_stack_free(&st);

  /* full: no quick ack; a failing random source fails start */
  cfg.codec = MTCI_CODEC_FULL;
  cfg.obfuscated = 0;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), 0);
  CHECK_EQ_INT(mtci_stack_start(&st, NOW), 1);
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 0); /* full has no tag */
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 24, 1), MTC_ERR_UNSUPPORTED);
  mtci_stack_free(&st);
  struct test_fixed_rng empty = {pkt, 10, 0};
  cfg.codec = MTCI_CODEC_ABRIDGED;
  cfg.obfuscated = 1;
  cfg.rnd = test_fixed_rng_fn;
  cfg.rnd_ud = &empty;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), 0);
  CHECK_EQ_INT(mtci_stack_start(&st, NOW), MTC_ERR_RANDOM);
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 24, 0), MTC_ERR_RANDOM);
  mtci_stack_free(&st);
  /* padded with a source that runs dry after the header: send fails, not sticky */
  uint8_t seed[64 + 1];
  memset(seed, 0x42, sizeof seed);
  struct test_fixed_rng once = {seed, 64, 0};
  cfg.codec = MTCI_CODEC_PADDED;
  cfg.rnd_ud = &once;
  CHECK_EQ_INT(mtci_stack_init(&st, &cfg), 0);
  CHECK_EQ_INT(mtci_stack_start(&st, NOW), 1);
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 24, 0), MTC_ERR_RANDOM);
  CHECK_EQ_INT(mtci_stack_pending(&st, &p), 64);
  once.len = 65; /* one more byte: padding length 0x42 & 15 = 2 needs 2 more */
  CHECK_EQ_INT(mtci_stack_send_packet(&st, pkt, 24, 0), MTC_ERR_RANDOM);
  mtci_stack_free(&st);
}

/* SOCKS5 refusal, truncated handshakes and a malformed padded frame. */
TEST(handshake_failures) {
  struct combo cb = {MTCI_CODEC_INTERMEDIATE, 1, SEC_NONE, 1};
  struct setup su;
  CHECK_EQ_INT(setup_init(&su, &cb, 1, 5, 0), 0);
  CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 0);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_stack_pending(&su.c.st, &p), 3); /* 05 01 00 */
  CHECK_EQ_INT(mtci_stack_consumed(&su.c.st, 3), 0);
  CHECK_EQ_INT(mtci_stack_eof(&su.c.st), MTC_ERR_TRANSPORT_CLOSED);
  static const uint8_t no[2] = {5, 0xff};
  size_t used;
  mtci_stack_event ev;
  CHECK_EQ_INT(mtci_stack_feed(&su.c.st, no, 2, &used, &ev), MTC_ERR_SOCKS_NO_METHOD);
  CHECK_EQ_INT(mtci_stack_feed(&su.c.st, no, 2, &used, &ev), MTC_ERR_SOCKS_NO_METHOD);
  CHECK_EQ_INT(mtci_stack_eof(&su.c.st), MTC_ERR_SOCKS_NO_METHOD);
  setup_free(&su);

  /* ee: the ServerHello cut short */
  struct combo ee = {MTCI_CODEC_PADDED, 1, SEC_EE, 0};
  CHECK_EQ_INT(setup_init(&su, &ee, 1, 6, 0), 0);
  CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 0);
  size_t n = mtci_stack_pending(&su.c.st, &p);
  CHECK_EQ_INT(n, MTCI_TLS_HELLO_LEN);
  peer_feed(&su.pe, p, n);
  CHECK_EQ_INT(su.pe.err, 0);
  CHECK_EQ_INT(mtci_stack_consumed(&su.c.st, n), 0);
  CHECK_EQ_INT(mtci_stack_feed(&su.c.st, su.pe.out.p, 100, &used, &ev), 0);
  CHECK_EQ_INT(mtci_stack_eof(&su.c.st), MTC_ERR_TLS_TRUNCATED);
  /* the rest, and READY comes with exactly the response consumed */
  CHECK_EQ_INT(mtci_stack_feed(&su.c.st, su.pe.out.p + 100, su.pe.out.len - 100, &used, &ev), 1);
  CHECK_EQ_INT(used, su.pe.out.len - 100);
  CHECK_EQ_INT(ev.type, MTCI_STACK_READY);
  CHECK_EQ_INT(mtci_stack_eof(&su.c.st), 0);
  /* then CCS + one record holding the 64-byte header */
  n = mtci_stack_pending(&su.c.st, &p);
  CHECK_EQ_INT(n, 6 + 5 + 64);
  static const uint8_t rec[11] = {0x14, 3, 3, 0, 1, 1, 0x17, 3, 3, 0, 64};
  CHECK_MEM(p, rec, 11);
  /* a record cut short at end of stream */
  static const uint8_t part[3] = {0x17, 3, 3};
  CHECK_EQ_INT(mtci_stack_feed(&su.c.st, part, 3, &used, &ev), 0);
  CHECK_EQ_INT(mtci_stack_eof(&su.c.st), MTC_ERR_TLS_TRUNCATED);
  setup_free(&su);

  /* padded: a 20-byte unencrypted frame announcing more data than it has */
  struct combo dd = {MTCI_CODEC_PADDED, 1, SEC_DD, 0};
  CHECK_EQ_INT(setup_init(&su, &dd, 0, 8, 0), 0);
  CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 1);
  struct xs_rng wire = {9};
  pump(&su.c, &su.pe, &wire, 0);
  uint8_t bogus[24] = {0};
  bogus[16] = 40; /* message_data_length 40 > 4 */
  peer_send(&su.pe, bogus, sizeof bogus);
  pump(&su.c, &su.pe, &wire, 0);
  CHECK_EQ_INT(su.c.err, MTC_ERR_FRAME_LENGTH);
  setup_free(&su);
}

/* All SOCKS5 answers in one feed (with the first stream bytes behind them):
 * each request is queued before the answer to it is read. */
TEST(socks5_answers_in_one_feed) {
  struct combo cb = {MTCI_CODEC_ABRIDGED, 0, SEC_NONE, 1};
  struct setup su;
  CHECK_EQ_INT(setup_init(&su, &cb, 0, 11, 0), 0); /* idx 0: IPv4, with credentials */
  CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 0);
  CHECK_EQ_INT(mtci_stack_send_packet(&su.c.st, (const uint8_t *)"0123456789abcdefghij", 20, 0), 0);
  static const uint8_t answers[] = {5, 2, 1, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0, 80,
                                    5, 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J',
                                    'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R', 'S', 'T'};
  size_t used;
  mtci_stack_event ev;
  CHECK_EQ_INT(mtci_stack_feed(&su.c.st, answers, sizeof answers, &used, &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_STACK_READY);
  CHECK_EQ_INT(used, 14);
  CHECK_EQ_INT(mtci_stack_feed(&su.c.st, answers + 14, sizeof answers - 14, &used, &ev), 1);
  CHECK_EQ_INT(ev.type, MTCI_STACK_PACKET);
  CHECK(ev.len == 20 && memcmp(ev.data, "ABCDEFGHIJKLMNOPQRST", 20) == 0);
  static const uint8_t want[] = {5, 2, 0, 2,                                         /* greeting */
                                 1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', '3', 'c', 'r', 'e', 't',
                                 5, 1, 0, 1, 149, 154, 167, 51, 1, 0xbb,             /* CONNECT */
                                 0xef, 5, '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a',
                                 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'};
  const uint8_t *p;
  CHECK_EQ_INT(mtci_stack_pending(&su.c.st, &p), sizeof want);
  CHECK_MEM(p, want, sizeof want);
  setup_free(&su);
}

/* ee connection through its handshake with the peer. */
static int ee_ready(struct setup *su, uint64_t seed) {
  struct combo ee = {MTCI_CODEC_PADDED, 1, SEC_EE, 0};
  if (setup_init(su, &ee, 1, seed, 0) != 0 || mtci_stack_start(&su->c.st, NOW) != 0) return 0;
  struct xs_rng wire = {seed};
  pump(&su->c, &su->pe, &wire, 0);
  return !su->c.err && !su->pe.err && mtci_stack_ready(&su->c.st) && su->pe.stage == PS_DATA;
}

static int feed_raw(struct setup *su, const uint8_t *p, size_t n) {
  client_feed(&su->c, p, n);
  return su->c.err;
}

/* Server records as the stack reads them (mtci_tls_reader's rules). */
TEST(tls_records_in) {
  struct setup su;
  CHECK(ee_ready(&su, 21));
  /* an empty record and a CCS are skipped; a packet split over two records */
  static const uint8_t skip[] = {0x17, 3, 3, 0, 0, 0x14, 3, 3, 0, 1, 1};
  CHECK_EQ_INT(feed_raw(&su, skip, sizeof skip), 0);
  uint8_t pkt[40];
  memset(pkt, 0x33, sizeof pkt);
  peer_send(&su.pe, pkt, sizeof pkt); /* one 16 KiB-max server record */
  struct tbuf *o = &su.pe.out;
  CHECK(o->len > 5 + 44 && o->p[0] == 0x17);
  size_t body = (size_t)o->p[3] << 8 | o->p[4];
  uint8_t two[2 * 5 + 64 + 15];
  memcpy(two, o->p, 5 + 10);
  two[3] = 0, two[4] = 10; /* first 10 body bytes */
  two[15] = 0x17, two[16] = 3, two[17] = 3, two[18] = 0, two[19] = (uint8_t)(body - 10);
  memcpy(two + 20, o->p + 15, body - 10);
  CHECK_EQ_INT(feed_raw(&su, two, 10 + body), 0);
  CHECK_EQ_INT(su.c.got.n, 1);
  CHECK(su.c.got.len[0] == 40 && memcmp(su.c.got.data[0], pkt, 40) == 0);
  o->len = o->pos = 0;
  /* a handshake record now: fatal and sticky */
  static const uint8_t hs[] = {0x16, 3, 3, 0, 1, 0};
  CHECK_EQ_INT(feed_raw(&su, hs, sizeof hs), MTC_ERR_TLS_BAD_RECORD);
  CHECK_EQ_INT(mtci_stack_eof(&su.c.st), MTC_ERR_TLS_BAD_RECORD);
  setup_free(&su);

  /* the longest record accepted is 16384 + 256 bytes */
  CHECK(ee_ready(&su, 22));
  static const uint8_t max_ok[] = {0x17, 3, 3, 0x41, 0x00};
  CHECK_EQ_INT(feed_raw(&su, max_ok, sizeof max_ok), 0);
  CHECK_EQ_INT(mtci_stack_eof(&su.c.st), MTC_ERR_TLS_TRUNCATED);
  setup_free(&su);
  CHECK(ee_ready(&su, 23));
  static const uint8_t too_long[] = {0x17, 3, 3, 0x41, 0x01};
  CHECK_EQ_INT(feed_raw(&su, too_long, sizeof too_long), MTC_ERR_TLS_RECORD_TOO_LONG);
  setup_free(&su);
  /* CCS with another body, another version */
  CHECK(ee_ready(&su, 24));
  static const uint8_t bad_ccs[] = {0x14, 3, 3, 0, 1, 2};
  CHECK_EQ_INT(feed_raw(&su, bad_ccs, sizeof bad_ccs), MTC_ERR_TLS_BAD_RECORD);
  setup_free(&su);
  CHECK(ee_ready(&su, 25));
  static const uint8_t v11[] = {0x17, 3, 2, 0, 4};
  CHECK_EQ_INT(feed_raw(&su, v11, sizeof v11), MTC_ERR_TLS_BAD_RECORD);
  setup_free(&su);
}

/* A frame announced large costs memory only as its bytes arrive; one over
 * the cap fails at once. (Looks at the private rx buffer on purpose.) */
TEST(announced_length_does_not_allocate) {
  struct setup su;
  struct combo dd = {MTCI_CODEC_PADDED, 1, SEC_DD, 0};
  CHECK_EQ_INT(setup_init(&su, &dd, 0, 31, 0), 0);
  CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 1);
  struct xs_rng wire = {32};
  pump(&su.c, &su.pe, &wire, 0);
  uint8_t b[4 + 100] = {0};
  uint32_t big = MTCI_CODEC_MAX_PAYLOAD; /* 16 MiB announced, 100 bytes sent */
  b[0] = (uint8_t)big, b[1] = (uint8_t)(big >> 8), b[2] = (uint8_t)(big >> 16);
  b[3] = (uint8_t)(big >> 24);
  peer_emit(&su.pe, b, sizeof b);
  pump(&su.c, &su.pe, &wire, 1);
  CHECK_EQ_INT(su.c.err, 0);
  CHECK(su.c.st.rx.cap <= 8192);
  CHECK_EQ_INT(mtci_stack_eof(&su.c.st), MTC_ERR_FRAME_TRUNCATED);
  setup_free(&su);

  CHECK_EQ_INT(setup_init(&su, &dd, 0, 33, 0), 0);
  CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 1);
  pump(&su.c, &su.pe, &wire, 0);
  big = MTCI_CODEC_MAX_PAYLOAD + 16; /* over the cap (padded allows + 15) */
  b[0] = (uint8_t)big, b[1] = (uint8_t)(big >> 8), b[2] = (uint8_t)(big >> 16);
  b[3] = (uint8_t)(big >> 24);
  peer_emit(&su.pe, b, 8);
  pump(&su.c, &su.pe, &wire, 0);
  CHECK_EQ_INT(su.c.err, MTC_ERR_FRAME_TOO_LARGE);
  setup_free(&su);
}

/* A length word the codec rejects fails as soon as its 4 bytes are in, over
 * obfuscation as on a plain connection: the stack must not wait for (and
 * buffer) the body of a frame that can never be valid, and a peer closing
 * right after such a header is a framing error, not a truncated frame. */
TEST(bad_length_fails_at_header) {
  static const struct {
    mtci_codec_kind kind;
    uint32_t w;
    int want;
  } cases[] = {
      {MTCI_CODEC_INTERMEDIATE, 5, MTC_ERR_FRAME_LENGTH},      /* not a multiple of 4 */
      {MTCI_CODEC_INTERMEDIATE, 1022, MTC_ERR_FRAME_LENGTH},
      {MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_MAX_PAYLOAD + 4, MTC_ERR_FRAME_TOO_LARGE},
      {MTCI_CODEC_INTERMEDIATE, MTCI_CODEC_MAX_PAYLOAD + 16, MTC_ERR_FRAME_TOO_LARGE},
      {MTCI_CODEC_INTERMEDIATE, 0, MTC_ERR_FRAME_LENGTH},
      {MTCI_CODEC_PADDED, 3, MTC_ERR_FRAME_LENGTH},            /* below one word */
      {MTCI_CODEC_PADDED, 0, MTC_ERR_FRAME_LENGTH},
      {MTCI_CODEC_PADDED, MTCI_CODEC_MAX_PAYLOAD + 16, MTC_ERR_FRAME_TOO_LARGE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (int obfs = 0; obfs <= 1; obfs++) {
      struct combo cb = {cases[i].kind, obfs, SEC_NONE, 0};
      struct setup su;
      CHECK_EQ_INT(setup_init(&su, &cb, 0, 70 + i, 0), 0);
      CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 1);
      struct xs_rng wire = {71};
      pump(&su.c, &su.pe, &wire, 0);
      uint8_t b[4];
      uint32_t w = cases[i].w;
      b[0] = (uint8_t)w, b[1] = (uint8_t)(w >> 8), b[2] = (uint8_t)(w >> 16);
      b[3] = (uint8_t)(w >> 24);
      peer_emit(&su.pe, b, sizeof b);
      pump(&su.c, &su.pe, &wire, 1); /* one byte at a time */
      int err = su.c.err, eof = mtci_stack_eof(&su.c.st);
      setup_free(&su);
      if (err != cases[i].want) fprintf(stderr, "  case %zu, %s\n", i, obfs ? "obfs" : "plain");
      CHECK_EQ_INT(err, cases[i].want);
      CHECK_EQ_INT(eof, cases[i].want);
    }
  }
}

/* An MTProto-shaped (encrypted: auth_key_id != 0, 24 + 16k bytes) packet
 * of n bytes; contents vary with seed. */
static uint8_t *shaped_packet(size_t n, unsigned seed) {
  uint8_t *p = malloc(n);
  if (!p) abort();
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 131u + seed + (i >> 9));
  p[0] |= 1;
  return p;
}

static int got_is(const struct plist *l, size_t i, const uint8_t *d, size_t n) {
  return l->n > i && l->len[i] == n && memcmp(l->data[i], d, n) == 0;
}

/* ee: the server's bytes (ServerHello, then records of every kind and size
 * around two packets and a quick ack) cut in two at every offset. Each cut
 * gives the same events, and end of stream at the cut reports where it
 * fell: inside the ServerHello or a record (TLS_TRUNCATED), between records
 * inside a frame (FRAME_TRUNCATED), or between frames (0). Every offset but
 * the middle of the ServerHello's certificate record, which is sampled. */
TEST(tls_split_and_eof_at_every_offset) {
  enum { A = 40, B = 200, SEED = 81 };
  struct combo ee = {MTCI_CODEC_PADDED, 1, SEC_EE, 0};
  struct setup su;
  uint8_t *pa = shaped_packet(A, 5), *pb = shaped_packet(B, 6);
  struct tbuf wire = {0}, sh = {0}, s = {0};
  int *want = NULL;
  const uint32_t token = 0x8123abcdu;
  /* reference run: the ServerHello, then the peer's plain stream bytes */
  CHECK_EQ_INT(setup_init(&su, &ee, 1, SEED, 0), 0);
  CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 0);
  const uint8_t *p;
  size_t n = mtci_stack_pending(&su.c.st, &p);
  peer_feed(&su.pe, p, n);
  CHECK_EQ_INT(mtci_stack_consumed(&su.c.st, n), 0);
  tb_put(&sh, su.pe.out.p, su.pe.out.len);
  su.pe.out.len = 0;
  client_feed(&su.c, sh.p, sh.len);
  CHECK(su.c.ready == 1 && su.c.err == 0);
  n = mtci_stack_pending(&su.c.st, &p);
  peer_feed(&su.pe, p, n);
  CHECK(su.pe.err == 0 && su.pe.stage == PS_DATA);
  su.pe.tls = 0; /* records are cut by hand below */
  size_t ends[4] = {0};
  peer_send(&su.pe, pa, A);
  ends[1] = su.pe.out.len;
  peer_send(&su.pe, pb, B);
  ends[2] = su.pe.out.len;
  peer_quick_ack(&su.pe, token);
  ends[3] = su.pe.out.len;
  CHECK_EQ_INT(su.pe.err, 0);
  tb_put(&s, su.pe.out.p, su.pe.out.len);
  setup_free(&su);

  /* the wire: ServerHello, then records; -1 stands for a CCS record */
  static const int sizes[] = {1, 0, 6, -1, 30, 2, 0, 100, 7};
  tb_put(&wire, sh.p, sh.len);
  want = malloc((sh.len + s.len + 16 * 12 + 1) * sizeof *want);
  CHECK(want != NULL);
  for (size_t k = 0; k < sh.len; k++) want[k] = MTC_ERR_TLS_TRUNCATED;
  want[sh.len] = 0;
  size_t sp = 0;
  for (size_t r = 0; sp < s.len; r++) {
    size_t len = r < sizeof sizes / sizeof sizes[0] ? (sizes[r] < 0 ? 1 : (size_t)sizes[r])
                                                    : s.len - sp;
    int ccs = r < sizeof sizes / sizeof sizes[0] && sizes[r] < 0;
    if (!ccs && len > s.len - sp) len = s.len - sp;
    uint8_t h[5] = {ccs ? 0x14 : 0x17, 3, 3, (uint8_t)(len >> 8), (uint8_t)len};
    size_t o = wire.len;
    tb_put(&wire, h, 5);
    if (ccs) tb_put(&wire, (const uint8_t *)"\x01", 1);
    else tb_put(&wire, s.p + sp, len), sp += len;
    for (size_t k = o + 1; k < wire.len; k++) want[k] = MTC_ERR_TLS_TRUNCATED;
    int between = sp == ends[0] || sp == ends[1] || sp == ends[2] || sp == ends[3];
    want[wire.len] = between ? 0 : MTC_ERR_FRAME_TRUNCATED;
  }
  CHECK_EQ_INT(sp, s.len);

  int bad = 0;
  for (size_t k = 0; k <= wire.len && !bad; k++) {
    /* the middle of the certificate record is one code path: sample it */
    if (k > 200 && k + 50 < sh.len && k % 61 != 0) continue;
    CHECK_EQ_INT(setup_init(&su, &ee, 1, SEED, 0), 0);
    CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 0);
    client_feed(&su.c, wire.p, k);
    int err1 = su.c.err, eof1 = mtci_stack_eof(&su.c.st);
    client_feed(&su.c, wire.p + k, wire.len - k);
    int ok = err1 == 0 && eof1 == want[k] && su.c.err == 0 && su.c.ready == 1 &&
             su.c.got.n == 2 && got_is(&su.c.got, 0, pa, A) && got_is(&su.c.got, 1, pb, B) &&
             su.c.n_acks == 1 && su.c.acks[0] == token && mtci_stack_eof(&su.c.st) == 0 &&
             mtci_stack_bytes_in(&su.c.st) == wire.len;
    if (!ok) {
      fprintf(stderr, "  cut at %zu of %zu: err %d eof %d (want %d), then err %d, %zu packets\n",
              k, wire.len, err1, eof1, want[k], su.c.err, su.c.got.n);
      bad = 1;
    }
    setup_free(&su);
  }
  CHECK_EQ_INT(bad, 0);
  free(want);
  free(pa), free(pb);
  tb_free(&wire), tb_free(&sh), tb_free(&s);
}

/* One byte of a queued packet written, trim, more packets queued behind it,
 * then the rest written in odd pieces: the peer gets every packet once, in
 * order (plain, obfuscated, ee). */
TEST(partial_write_trim_then_queue) {
  static const struct combo cbs[] = {{MTCI_CODEC_ABRIDGED, 0, SEC_NONE, 0},
                                     {MTCI_CODEC_INTERMEDIATE, 1, SEC_NONE, 0},
                                     {MTCI_CODEC_PADDED, 1, SEC_EE, 0}};
  for (size_t i = 0; i < sizeof cbs / sizeof cbs[0]; i++) {
    struct setup su;
    CHECK_EQ_INT(setup_init(&su, &cbs[i], 1, 90 + i, 0), 0);
    CHECK(mtci_stack_start(&su.c.st, NOW) >= 0);
    struct xs_rng wire = {91};
    pump(&su.c, &su.pe, &wire, 0);
    CHECK(mtci_stack_ready(&su.c.st) && su.c.err == 0 && su.pe.err == 0);
    uint8_t *pk[4];
    static const size_t lens[4] = {40, 24 + 16 * 190, 24, 24 + 16 * 560}; /* 24 + 16k */
    for (int j = 0; j < 4; j++) pk[j] = shaped_packet(lens[j], (unsigned)(j + 10 * i));
    const uint8_t *p;
    CHECK_EQ_INT(mtci_stack_send_packet(&su.c.st, pk[0], lens[0], 0), 0);
    CHECK(mtci_stack_pending(&su.c.st, &p) > 1);
    peer_feed(&su.pe, p, 1);
    CHECK_EQ_INT(mtci_stack_consumed(&su.c.st, 1), 0);
    mtci_stack_trim(&su.c.st);
    CHECK_EQ_INT(mtci_stack_send_packet(&su.c.st, pk[1], lens[1], 0), 0);
    size_t n = mtci_stack_pending(&su.c.st, &p);
    peer_feed(&su.pe, p, n - 1); /* all but the last byte */
    CHECK_EQ_INT(mtci_stack_consumed(&su.c.st, n - 1), 0);
    mtci_stack_trim(&su.c.st);
    CHECK_EQ_INT(mtci_stack_send_packet(&su.c.st, pk[2], lens[2], 0), 0);
    CHECK_EQ_INT(mtci_stack_send_packet(&su.c.st, pk[3], lens[3], 0), 0);
    pump(&su.c, &su.pe, &wire, 0);
    int ok = su.c.err == 0 && su.pe.err == 0 && su.pe.got.n == 4;
    for (int j = 0; j < 4 && ok; j++) ok = got_is(&su.pe.got, (size_t)j, pk[j], lens[j]);
    ok = ok && mtci_stack_bytes_out(&su.c.st) == su.pe.raw_in;
    if (!ok)
      fprintf(stderr, "  config %zu: err %d/%d, %zu packets, out %llu in %llu\n", i, su.c.err,
              su.pe.err, su.pe.got.n, (unsigned long long)mtci_stack_bytes_out(&su.c.st),
              (unsigned long long)su.pe.raw_in);
    for (int j = 0; j < 4; j++) free(pk[j]);
    setup_free(&su);
    CHECK(ok);
  }
}

/* Drained buffers stay allocated while traffic flows, up to MTCI_STACK_KEEP,
 * and mtci_stack_trim frees exactly the empty ones. ee: the fake-TLS send
 * path (records written straight into the output queue). */
static void retention_run(int *t_failed_, int ee) {
  enum { BIG = 100008, SMALL = 40, MIB = (1 << 20) - 8 };
  struct setup su;
  struct xs_rng wire = {51};
  if (ee) {
    CHECK(ee_ready(&su, 50));
  } else {
    struct combo oi = {MTCI_CODEC_INTERMEDIATE, 1, SEC_NONE, 0};
    CHECK_EQ_INT(setup_init(&su, &oi, 0, 50, 0), 0);
    CHECK_EQ_INT(mtci_stack_start(&su.c.st, NOW), 1);
    pump(&su.c, &su.pe, &wire, 0);
  }
  mtci_stack *st = &su.c.st;
  struct peer *pe = &su.pe;
  uint8_t *big = shaped_packet(BIG, 1), *small = shaped_packet(SMALL, 2);
  uint8_t *mib = shaped_packet(MIB, 3), *snap = NULL;
  const uint8_t *p;
  int ok = 0;
#define RQ(c)                                                                                      \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      fprintf(stderr, "  %s:%d: CHECK failed (%s): %s\n", __FILE__, __LINE__, ee ? "ee" : "obfs",  \
              #c);                                                                                 \
      goto out;                                                                                    \
    }                                                                                              \
  } while (0)
  /* the output queue, drained, is kept and reused without growing */
  RQ(mtci_stack_send_packet(st, big, BIG, 0) == 0);
  pump(&su.c, pe, &wire, 0);
  RQ(!su.c.err && !pe->err && got_is(&pe->got, 0, big, BIG));
  RQ(mtci_stack_pending(st, &p) == 0);
  size_t h1 = mtci_stack_heap_bytes(st);
  RQ(h1 >= BIG && h1 <= MTCI_STACK_KEEP);
  RQ(mtci_stack_send_packet(st, big, BIG, 0) == 0);
  RQ(mtci_stack_heap_bytes(st) == h1);
  pump(&su.c, pe, &wire, 0);
  RQ(!su.c.err && !pe->err && got_is(&pe->got, 1, big, BIG));

  /* the receive buffer, drained, is kept too */
  peer_send(pe, big, BIG);
  pump(&su.c, pe, &wire, 0);
  RQ(!su.c.err && !pe->err && got_is(&su.c.got, 0, big, BIG));
  size_t h2 = mtci_stack_heap_bytes(st);
  RQ(h2 > h1);

  /* trim with bytes pending: they stay, byte for byte; only the empty
   * receive buffer goes */
  RQ(mtci_stack_send_packet(st, small, SMALL, 0) == 0);
  RQ(mtci_stack_send_packet(st, big, BIG, 0) == 0);
  size_t n = mtci_stack_pending(st, &p);
  RQ(n > BIG + SMALL);
  snap = malloc(n);
  RQ(snap != NULL);
  memcpy(snap, p, n);
  peer_feed(pe, p, 100);
  RQ(mtci_stack_consumed(st, 100) == 0);
  mtci_stack_trim(st);
  RQ(mtci_stack_heap_bytes(st) == h1);
  RQ(mtci_stack_pending(st, &p) == n - 100 && memcmp(p, snap + 100, n - 100) == 0);
  pump(&su.c, pe, &wire, 0);
  RQ(!su.c.err && !pe->err && pe->got.n == 4);
  RQ(got_is(&pe->got, 2, small, SMALL) && got_is(&pe->got, 3, big, BIG));

  /* trim when everything is drained: nothing left; the next bytes allocate */
  mtci_stack_trim(st);
  RQ(mtci_stack_heap_bytes(st) == 0);
  RQ(mtci_stack_send_packet(st, small, SMALL, 0) == 0);
  peer_send(pe, small, SMALL);
  pump(&su.c, pe, &wire, 0);
  RQ(!su.c.err && !pe->err && got_is(&pe->got, 4, small, SMALL));
  RQ(got_is(&su.c.got, 1, small, SMALL));

  /* a partial frame survives trim */
  mtci_stack_trim(st);
  RQ(mtci_stack_heap_bytes(st) == 0);
  peer_send(pe, big, BIG);
  size_t half = (pe->out.len - pe->out.pos) / 2;
  client_feed(&su.c, pe->out.p + pe->out.pos, half);
  pe->out.pos += half;
  RQ(!su.c.err && su.c.got.n == 2);
  mtci_stack_trim(st);
  RQ(mtci_stack_heap_bytes(st) >= half - 5 * (half / 2878 + 2));
  pump(&su.c, pe, &wire, 0);
  RQ(!su.c.err && !pe->err && got_is(&su.c.got, 2, big, BIG));

  /* the cap: a burst of three 1 MiB packets grows the queue past
   * MTCI_STACK_KEEP, and it is freed when drained; one 1 MiB packet's
   * queue is kept */
  mtci_stack_trim(st);
  for (int i = 0; i < 3; i++) RQ(mtci_stack_send_packet(st, mib, MIB, 0) == 0);
  RQ(mtci_stack_heap_bytes(st) > MTCI_STACK_KEEP);
  pump(&su.c, pe, &wire, 0);
  RQ(!su.c.err && !pe->err && pe->got.n == 8 && got_is(&pe->got, 7, mib, MIB));
  RQ(mtci_stack_heap_bytes(st) == 0);
  RQ(mtci_stack_send_packet(st, mib, MIB, 0) == 0);
  pump(&su.c, pe, &wire, 0);
  RQ(!su.c.err && !pe->err && got_is(&pe->got, 8, mib, MIB));
  size_t h3 = mtci_stack_heap_bytes(st);
  RQ(h3 >= MIB && h3 <= MTCI_STACK_KEEP);
  mtci_stack_trim(st);
  RQ(mtci_stack_heap_bytes(st) == 0);
  ok = 1;
#undef RQ
out:
  free(big), free(small), free(mib), free(snap);
  setup_free(&su);
  CHECK(ok);
}

TEST(drained_buffers_kept_until_trim) {
  retention_run(t_failed_, 0);
  if (*t_failed_) return;
  retention_run(t_failed_, 1);
}

/* mtci_conn_trim reaches the stack: the drained opening bytes' queue is
 * kept by the stack and released by the connection's trim. */
TEST(conn_trim_releases_stack_buffers) {
  struct xs_rng r = {61};
  mtci_stack_config cfg = {0};
  cfg.codec = MTCI_CODEC_INTERMEDIATE;
  cfg.obfuscated = 1;
  cfg.dc_id = 2;
  cfg.rnd = xs_rng_fn;
  cfg.rnd_ud = &r;
  mtci_conn c;
  CHECK_EQ_INT(mtci_conn_init(&c, &cfg, 7, "149.154.167.51", 443, 0, 1000, 5000), 0);
  CHECK_EQ_INT(mtci_conn_connected(&c, 1010, 5000), 1);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_conn_pending(&c, &p), MTCI_OBFS_HEADER_LEN);
  CHECK_EQ_INT(mtci_conn_consumed(&c, MTCI_OBFS_HEADER_LEN), 0);
  CHECK(mtci_stack_heap_bytes(&c.st) >= MTCI_OBFS_HEADER_LEN);
  mtci_conn_trim(&c);
  CHECK_EQ_INT(mtci_stack_heap_bytes(&c.st), 0);
  CHECK_EQ_INT(c.phase, MTCI_CONN_IDLE);
  mtci_conn_free(&c);
  mtci_conn_trim(&c); /* safe on a freed connection */
}

TEST_MAIN("stack", CASE(obfuscated2_vector_dd), CASE(plain_abridged_bytes), CASE(init_errors),
          CASE(call_order_and_sizes), CASE(handshake_failures), CASE(secret_forcing),
          CASE(ee_wrong_server_digest), CASE(socks5_answers_in_one_feed),
          CASE(tls_records_in), CASE(announced_length_does_not_allocate),
          CASE(bad_length_fails_at_header), CASE(tls_split_and_eof_at_every_offset),
          CASE(partial_write_trim_then_queue),
          CASE(drained_buffers_kept_until_trim), CASE(conn_trim_releases_stack_buffers),
          CASE(matrix_random_splits), CASE(matrix_byte_by_byte))
