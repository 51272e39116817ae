/*
 * mtconn-bench transport: the connection stack's byte pipeline beside
 * OpenSSL EVP AES-256-CTR over the same byte count in the same run.
 *
 *   send  obfuscated2 + padded intermediate: send_packet() (framing, one
 *         pass that copies and encrypts) + draining the output queue
 *   recv  the same stream back: feed() in socket-sized reads (decrypt,
 *         deframe, padding trimmed), packets handed out as views
 *   TLS   the same under fake-TLS ("ee" secret): records of 2878 bytes out,
 *         16 KiB server records in
 *
 * OpenSSL reference rows: EVP aes-256-ctr over the packet bytes (send: from
 * the packet into a packet-sized buffer; receive: over the received stream
 * in the same read sizes). One client stack per row, in steady state: for
 * the receive rows a server side (codec F_SERVER, obfuscation, server
 * records) that lives as long writes the next batch before each timed run,
 * untimed.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/stack.h"

int mtcb_transport(int argc, char **argv);

#define NOW 1700000000
#define BATCH (4u * 1024u * 1024u) /* packet bytes per timed run */
static double g_min_time = 0.3;
static size_t g_read = 64 * 1024;
static const char *g_filter = NULL;

/* The thread's CPU time: the machine may be shared, and time spent
 * descheduled says nothing about either side. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Deterministic random source: runs are comparable. */
struct xs {
  uint64_t s;
};
static int xs_fn(void *ud, uint8_t *out, size_t len) {
  struct xs *r = ud;
  for (size_t i = 0; i < len; i++) {
    uint64_t x = r->s;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    r->s = x;
    out[i] = (uint8_t)(x >> 24);
  }
  return 0;
}

static const uint8_t k_key[16] = {0x8a, 0x96, 0xef, 0x6e, 0x42, 0xa1, 0x8c, 0x21,
                                  0x83, 0x75, 0x80, 0xcd, 0x1c, 0x91, 0xc5, 0xa8};

struct tb {
  int tls;
  size_t pkt_len, count; /* packets per run */
  uint8_t *pkt, *scratch;
  EVP_CIPHER_CTX *evp;
  mtci_proxy_secret secret;
  mtci_stack st;
  int st_live;
  struct xs rng;
  /* receive: the server side, and its bytes for the next `count` packets */
  mtci_obfs srv_ob;
  mtci_codec srv_codec;
  mtci_tls_writer srv_tw;
  struct xs srng;
  uint8_t *stream, *frame;
  size_t stream_cap, stream_len;
  size_t got; /* packets seen by the last receive run */
  int bad;
};

static int stack_new(struct tb *b) {
  if (b->st_live) mtci_stack_free(&b->st);
  b->st_live = 0;
  b->rng.s = 0x9e3779b97f4a7c15ull;
  mtci_stack_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.codec = MTCI_CODEC_PADDED;
  cfg.obfuscated = 1;
  cfg.dc_id = 2;
  cfg.rnd = xs_fn;
  cfg.rnd_ud = &b->rng;
  if (b->tls) cfg.secret = &b->secret;
  if (mtci_stack_init(&b->st, &cfg) != 0) return -1;
  b->st_live = 1;
  return mtci_stack_start(&b->st, NOW) < 0 ? -1 : 0;
}

static void drain(struct tb *b) {
  const uint8_t *p;
  size_t n = mtci_stack_pending(&b->st, &p);
  if (n) mtci_stack_consumed(&b->st, n);
}

/* Feed p[0..n) in g_read pieces; counts packets. */
static int feed_all(struct tb *b, const uint8_t *p, size_t n, int *ready) {
  while (n) {
    size_t len = n < g_read ? n : g_read;
    const uint8_t *q = p;
    size_t qn = len;
    for (;;) {
      size_t used;
      mtci_stack_event ev;
      int r = mtci_stack_feed(&b->st, q, qn, &used, &ev);
      if (r < 0) return r;
      q += used, qn -= used;
      if (r == 0) break;
      if (ev.type == MTCI_STACK_PACKET) { /* length, head and tail of the packet */
        if (ev.len != b->pkt_len || memcmp(ev.data, b->pkt, 16) != 0 ||
            memcmp(ev.data + ev.len - 16, b->pkt + ev.len - 16, 16) != 0)
          return -1;
        b->got++;
      } else if (ev.type == MTCI_STACK_READY && ready) {
        *ready = 1;
        if (qn) return -1; /* nothing follows the ServerHello here */
        return 0;
      }
    }
    p += len, n -= len;
  }
  return 0;
}

/* ---- timed operations ------------------------------------------------------- */

typedef void (*op_fn)(struct tb *b);

static void ours_send(struct tb *b) {
  for (size_t i = 0; i < b->count; i++) {
    if (mtci_stack_send_packet(&b->st, b->pkt, b->pkt_len, 0) != 0) b->bad = 1;
    drain(b);
  }
}

static void ossl_send(struct tb *b) {
  int outl = 0;
  for (size_t i = 0; i < b->count; i++)
    EVP_EncryptUpdate(b->evp, b->scratch, &outl, b->pkt, (int)b->pkt_len);
}

/* The server writes the next batch: `count` frames, obfuscated, in records
 * with fake-TLS. Untimed. */
static void recv_setup(struct tb *b) {
  size_t o = 0;
  b->got = 0;
  for (size_t i = 0; i < b->count; i++) {
    size_t off, flen;
    memcpy(b->frame + 8, b->pkt, b->pkt_len);
    if (mtci_codec_encode(&b->srv_codec, b->frame, b->pkt_len + 8 + 15, 8, b->pkt_len, 0, &off,
                          &flen) != 0) {
      b->bad = 1;
      return;
    }
    mtci_obfs_encrypt(&b->srv_ob, b->frame + off, b->frame + off, flen);
    if (b->tls) {
      size_t w = 0;
      if (mtci_tls_writer_emit(&b->srv_tw, b->frame + off, flen, b->stream + o, b->stream_cap - o,
                               &w) != 0)
        b->bad = 1;
      o += w;
    } else {
      memcpy(b->stream + o, b->frame + off, flen);
      o += flen;
    }
  }
  b->stream_len = o;
}

static void ours_recv(struct tb *b) {
  if (feed_all(b, b->stream, b->stream_len, NULL) != 0 || b->got != b->count) b->bad = 1;
}

static void ossl_recv(struct tb *b) {
  int outl = 0;
  const uint8_t *p = b->stream;
  size_t n = b->stream_len;
  while (n) {
    size_t len = n < g_read ? n : g_read;
    EVP_EncryptUpdate(b->evp, b->scratch, &outl, p, (int)len); /* CTR: same both ways */
    p += len, n -= len;
  }
}

/* MB/s of run over slices of at least dur seconds; setup is not timed. */
static double measure(op_fn setup, op_fn run, struct tb *b, double dur) {
  double spent = 0, bytes = 0;
  do {
    if (setup) setup(b);
    double t0 = now_s();
    run(b);
    spent += now_s() - t0;
    bytes += (double)b->count * (double)b->pkt_len;
  } while (spent < dur);
  return bytes / spent / 1e6;
}

/* ---- the server side: record what a DC / MTProxy would send --------------- */

static int tb_prepare(struct tb *b) {
  /* the client's opening, as the server sees it */
  if (stack_new(b) != 0) return -1;
  const uint8_t *p;
  size_t n = mtci_stack_pending(&b->st, &p);
  uint8_t head[64];
  b->stream_cap = b->count * (b->pkt_len + 4 + 15) + 16;
  b->stream_cap += b->stream_cap / 1000 + 64 * 1024;
  b->stream = malloc(b->stream_cap);
  b->frame = malloc(b->pkt_len + 4 + 15 + 8);
  if (!b->stream || !b->frame) return -1;
  b->srng.s = 12345;
  mtci_tls_reader tr;
  if (b->tls) {
    size_t o = 0;
    if (n != MTCI_TLS_HELLO_LEN ||
        mtci_tls_server_check_hello(p, n, k_key, (const uint8_t *)"example.com", 11, NOW, 0,
                                    NULL) != 0 ||
        mtci_tls_server_hello(k_key, p, n, 2048, xs_fn, &b->srng, b->stream, b->stream_cap,
                              &o) != 0)
      return -1;
    mtci_stack_consumed(&b->st, n);
    int ready = 0;
    if (feed_all(b, b->stream, o, &ready) != 0 || !ready) return -1;
    n = mtci_stack_pending(&b->st, &p); /* CCS + the record with the header */
    uint8_t rec[256];
    size_t got = 0;
    if (n > sizeof rec) return -1;
    mtci_tls_reader_init(&tr);
    if (mtci_tls_reader_feed(&tr, p, n, rec, &got) != 0 || got != 64) return -1;
    memcpy(head, rec, 64);
    mtci_tls_writer_init(&b->srv_tw, 1);
  } else {
    if (n != 64) return -1;
    memcpy(head, p, 64);
  }
  drain(b);
  if (mtci_obfs_server_init(&b->srv_ob, head, b->tls ? k_key : NULL, MTCI_OBFS_ALLOW_PADDED, NULL,
                            NULL) != 0 ||
      mtci_codec_init(&b->srv_codec, MTCI_CODEC_PADDED, MTCI_CODEC_F_SERVER, xs_fn, &b->srng) != 0)
    return -1;

  /* one packet each way, checked byte for byte */
  size_t count = b->count;
  b->count = 1;
  recv_setup(b);
  ours_recv(b);
  b->count = count;
  if (b->bad || mtci_stack_send_packet(&b->st, b->pkt, b->pkt_len, 0) != 0) return -1;
  n = mtci_stack_pending(&b->st, &p);
  uint8_t *plain = malloc(n);
  if (!plain) return -1;
  size_t pn = n;
  if (b->tls) {
    if (mtci_tls_reader_feed(&tr, p, n, plain, &pn) != 0) pn = 0;
  } else {
    memcpy(plain, p, n);
  }
  mtci_obfs_decrypt(&b->srv_ob, plain, plain, pn);
  mtci_frame fr;
  size_t used, plen = 0;
  int ok = mtci_codec_feed(&b->srv_codec, plain, pn, &used, &fr) == 1 && used == pn &&
           mtci_padded_payload_len(fr.data, fr.len, &plen) == 0 && plen == b->pkt_len &&
           memcmp(fr.data, b->pkt, plen) == 0;
  free(plain);
  drain(b);
  return ok ? 0 : -1;
}

static void tb_free(struct tb *b) {
  if (b->st_live) mtci_stack_free(&b->st);
  mtci_obfs_free(&b->srv_ob);
  mtci_codec_free(&b->srv_codec);
  free(b->frame);
  free(b->stream);
  free(b->pkt);
  free(b->scratch);
  EVP_CIPHER_CTX_free(b->evp);
  memset(b, 0, sizeof *b);
}

static int tb_init(struct tb *b, int tls, size_t pkt_len) {
  memset(b, 0, sizeof *b);
  b->tls = tls;
  b->pkt_len = pkt_len;
  b->count = BATCH / pkt_len ? BATCH / pkt_len : 1;
  b->pkt = malloc(pkt_len);
  b->scratch = malloc(pkt_len > g_read ? pkt_len : g_read);
  b->evp = EVP_CIPHER_CTX_new();
  if (!b->pkt || !b->scratch || !b->evp) return -1;
  uint64_t s = 0x243f6a8885a308d3ull;
  for (size_t i = 0; i < pkt_len; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    b->pkt[i] = (uint8_t)s;
  }
  b->pkt[0] |= 1; /* auth_key_id != 0: an encrypted message, 24 + 16k bytes */
  b->secret.kind = MTCI_SECRET_EE;
  memcpy(b->secret.key, k_key, 16);
  memcpy(b->secret.domain, "example.com", 12);
  b->secret.domain_len = 11;
  uint8_t key[32], iv[16];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)(i * 7 + 1);
  for (int i = 0; i < 16; i++) iv[i] = (uint8_t)(i * 13 + 5);
  if (EVP_EncryptInit_ex(b->evp, EVP_aes_256_ctr(), NULL, key, iv) != 1) return -1;
  return tb_prepare(b);
}

struct row {
  const char *name;
  op_fn setup, ours, ossl;
};

int mtcb_transport(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--time") && i + 1 < argc) g_min_time = atof(argv[++i]);
    else if (!strcmp(argv[i], "--read") && i + 1 < argc) g_read = (size_t)strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) g_filter = argv[++i];
    else {
      fprintf(stderr, "usage: mtconn-bench transport [--time SECONDS_PER_ROW] [--read BYTES] "
                      "[--only SUBSTRING_OF_PATH]\n");
      return 2;
    }
  }
  if (!(g_min_time > 0) || g_read == 0 || g_read > (1u << 26)) {
    fprintf(stderr, "mtconn-bench transport: --time > 0, --read 1..64 MiB\n");
    return 2;
  }
  static const struct {
    const char *label;
    size_t len;
  } sizes[] = {{"1 MiB", (1u << 20) - 8}, {"64 KiB", (64u << 10) - 8}, {"4 KiB", (4u << 10) - 8}};
  static const struct row rows[] = {
      {"send obfs2 + padded", NULL, ours_send, ossl_send},
      {"recv obfs2 + padded", recv_setup, ours_recv, ossl_recv},
      {"send fake-TLS + obfs2 + padded", NULL, ours_send, ossl_send},
      {"recv fake-TLS + obfs2 + padded", recv_setup, ours_recv, ossl_recv},
  };
  printf("mtconn-bench transport: packets of 1 MiB / 64 KiB / 4 KiB minus 8 bytes (24 + 16k, "
         "MTProto-shaped),\n%u MiB of packets per run, receive reads of %zu bytes, %.2f s per "
         "cell of thread CPU time (best of 5 interleaved slices), MB/s = 10^6 B/s of packet bytes\n",
         BATCH >> 20, g_read, g_min_time);
  printf("check: every path round-trips through the server-side codec / obfuscation / records\n\n");
  printf("%-32s %8s %10s %10s %9s\n", "path", "packet", "ours", "OpenSSL", "ours/OSSL");
  int rc = 0;
  for (size_t r = 0; r < sizeof rows / sizeof rows[0] && rc == 0; r++) {
    if (g_filter && !strstr(rows[r].name, g_filter)) continue;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      struct tb b;
      if (tb_init(&b, r >= 2, sizes[s].len) != 0) {
        fprintf(stderr, "mtconn-bench transport: setup failed (%s, %s)\n", rows[r].name,
                sizes[s].label);
        tb_free(&b);
        rc = 1;
        break;
      }
      enum { SLICES = 5 };
      double best[2] = {0, 0};
      for (int sl = 0; sl < SLICES; sl++) {
        for (int v = 0; v < 2; v++) {
          double m = measure(v ? NULL : rows[r].setup, v ? rows[r].ossl : rows[r].ours, &b,
                             g_min_time / SLICES);
          if (m > best[v]) best[v] = m;
        }
      }
      if (b.bad) {
        fprintf(stderr, "mtconn-bench transport: %s, %s: a run failed its checks\n", rows[r].name,
                sizes[s].label);
        rc = 1;
      } else {
        printf("%-32s %8s %10.1f %10.1f %8.2fx\n", rows[r].name, sizes[s].label, best[0], best[1],
               best[0] / best[1]);
        fflush(stdout);
      }
      tb_free(&b);
    }
  }
  return rc;
}
