/*
 * One client connection's transport stack: SOCKS5, fake-TLS, obfuscated2 and
 * a framing codec composed into one byte pipeline (layers and states in
 * stack.h).
 *
 * Send path, with as few passes over the payload as the layers allow:
 *
 *   queue:  [ header | payload ............ | padding ]   reserved at the end
 *            ^ codec encode() writes these   ^
 *
 *   The codec writes only the header in front of the payload and the
 *   padding (padded) or crc (full) behind it; for every kind but full it
 *   reads nothing of the payload. So encode() runs first on the reserved
 *   space and the payload is then copied in, AES-CTR-encrypted on the way
 *   (one pass). The full codec (never obfuscated) gets the payload copied
 *   first, for its crc.
 *
 *   With fake-TLS the encrypted frame is written straight as records:
 *
 *   queue:  [14 03 03 00 01 01]? [17 03 03 len][<= 2878 stream bytes] ...
 *
 *   encode() runs on the reserved space, its header and padding are saved,
 *   then header, payload and padding are encrypted into the record bodies.
 *
 * Receive path: SOCKS5 reply, then the ServerHello, then the records, the
 * decrypt stream and the codec. Input is decrypted straight into `rx`
 * (record bodies too: tls_rx follows mtci_tls_reader's rules without its
 * copy), where a frame that spans several inputs is assembled: the codec is
 * handed a frame only once rx holds all of it (next_frame_len peeks at its
 * header), so it never copies one, and every packet is a view into rx.
 * rx grows with the bytes that arrived, never with an announced length.
 * Plain connections feed the codec from the input directly.
 *
 *   rx:  [ consumed | frame N+1 (partial) ...... | free ]
 *                   ^ pos                        ^ len
 */
#include "transport/stack.h"

#include <stdlib.h>
#include <string.h>

enum { ST_NONE = 0, ST_INIT, ST_HANDSHAKING, ST_READY, ST_FAILED };
enum { STAGE_SOCKS = 1, STAGE_TLS, STAGE_DATA };

/* Buffers are allocated when bytes arrive (the first one just big enough,
 * from BUF_FIRST doubling). A drained one is kept for the next bytes while
 * traffic flows (up to MTCI_STACK_KEEP, stack.h): freeing it made every
 * large send fault in and zeroize a fresh buffer, a cost of the order of
 * the AES pass itself. mtci_stack_trim releases them once idle. */
#define BUF_FIRST 512u

/* The fake-TLS handshake's state, allocated by mtci_stack_start and freed
 * once the ServerHello is verified: only fake-TLS connections pay for it. */
struct mtci_stack_tls_hs {
  mtci_tls_sh sh;
  uint8_t hello[MTCI_TLS_HELLO_LEN]; /* ClientHello (queued after the SOCKS5 reply) */
};

static const uint8_t ccs_record[6] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01};

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* ---- byte queues ---------------------------------------------------------- */

static size_t buf_used(const mtci_stack_buf *b) { return b->len - b->pos; }

/* Room for n more bytes at b->p + b->len (compacting or growing), or NULL. */
static uint8_t *buf_reserve(mtci_stack_buf *b, size_t n) {
  if (b->pos == b->len) b->pos = b->len = 0;
  if (b->cap - b->len >= n) return b->p + b->len;
  if (b->pos && b->pos >= b->len - b->pos) { /* mostly written: move the rest to the front */
    memmove(b->p, b->p + b->pos, b->len - b->pos);
    b->len -= b->pos;
    b->pos = 0;
    if (b->cap - b->len >= n) return b->p + b->len;
  }
  if (n > (size_t)-1 / 4 - b->len) return NULL;
  size_t need = b->len + n, cap = b->cap ? b->cap : BUF_FIRST;
  while (cap < need) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) return NULL;
  b->p = p;
  b->cap = cap;
  return b->p + b->len;
}

static int buf_append(mtci_stack_buf *b, const uint8_t *d, size_t n) {
  if (n == 0) return 0;
  uint8_t *w = buf_reserve(b, n);
  if (!w) return MTC_ERR_NOMEM;
  memcpy(w, d, n);
  b->len += n;
  return 0;
}

static void buf_free(mtci_stack_buf *b) {
  if (b->p) mtci_zeroize(b->p, b->cap);
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* After the content was taken: keep an empty buffer for the next bytes,
 * unless a burst made it bigger than MTCI_STACK_KEEP. */
static void buf_drained(mtci_stack_buf *b) {
  if (b->pos != b->len || !b->p) return;
  if (b->cap > MTCI_STACK_KEEP) buf_free(b);
  else b->pos = b->len = 0;
}

/* Release an empty buffer (trim); one with content stays as it is. */
static void buf_trim(mtci_stack_buf *b) {
  if (b->pos == b->len && b->p) buf_free(b);
}

static void tls_hs_free(mtci_stack *st) {
  if (!st->hs) return;
  mtci_tls_sh_free(&st->hs->sh);
  mtci_zeroize(st->hs, sizeof *st->hs);
  free(st->hs);
  st->hs = NULL;
}

/*
 * Room for n more bytes at the end of rx, where the frame that starts at
 * rx.pos needs `frame` bytes in all (0: not known yet). The frame stays
 * where it is if it fits; a small partial frame (<= cap / 8) is moved to the
 * front instead of growing the buffer; otherwise buf_reserve grows it with
 * the arriving bytes (doubling).
 */
static uint8_t *rx_room(mtci_stack_buf *b, size_t n, size_t frame) {
  if (b->pos == b->len) b->pos = b->len = 0;
  size_t avail = b->len - b->pos;
  size_t fit = avail + n > frame ? avail + n : frame;
  if (b->cap - b->pos >= fit) return b->p + b->len;
  if (b->pos && avail <= b->cap / 8) {
    memmove(b->p, b->p + b->pos, avail);
    b->pos = 0;
    b->len = avail;
    if (b->cap - b->len >= n) return b->p + b->len;
  }
  return buf_reserve(b, n);
}

/* ---- helpers -------------------------------------------------------------- */

static int fail(mtci_stack *st, int err) {
  st->err = err;
  st->state = ST_FAILED;
  return err;
}

/* Does n more queued bytes stay within the cap? */
static int queue_room(const mtci_stack *st, size_t n) {
  size_t q = buf_used(&st->out) + buf_used(&st->held);
  return n <= st->max_queued && q <= st->max_queued - n;
}

/* The exact header encode() writes for a len-byte payload (no tag: plain
 * connections send the tag themselves from mtci_stack_start). */
static size_t frame_header_len(mtci_codec_kind kind, size_t len) {
  switch (kind) {
  case MTCI_CODEC_ABRIDGED: return len / 4 < 0x7f ? 1 : 4;
  case MTCI_CODEC_INTERMEDIATE:
  case MTCI_CODEC_PADDED: return 4;
  case MTCI_CODEC_FULL: return 8;
  }
  return 0;
}

static uint32_t obfs_tag(mtci_codec_kind kind) {
  switch (kind) {
  case MTCI_CODEC_ABRIDGED: return MTCI_OBFS_TAG_ABRIDGED;
  case MTCI_CODEC_INTERMEDIATE: return MTCI_OBFS_TAG_INTERMEDIATE;
  default: return MTCI_OBFS_TAG_PADDED;
  }
}

/* Move a SOCKS5 message that became pending to the output queue. */
static int socks_flush(mtci_stack *st) {
  const uint8_t *p;
  size_t n = mtci_socks5_pending(st->s5, &p);
  if (n == 0) return 0;
  int rc = buf_append(&st->out, p, n);
  if (rc == 0) rc = mtci_socks5_sent(st->s5, n);
  return rc;
}

/* The SOCKS5 state (credentials inside): wiped and freed. */
static void socks_free(mtci_stack *st) {
  if (!st->s5) return;
  mtci_socks5_free(st->s5);
  mtci_zeroize(st->s5, sizeof *st->s5);
  free(st->s5);
  st->s5 = NULL;
}

/* ---- life cycle ----------------------------------------------------------- */

int mtci_stack_init(mtci_stack *st, const mtci_stack_config *cfg) {
  if (!st) return MTC_ERR_INVALID_ARG;
  memset(st, 0, sizeof *st);
  if (!cfg || !cfg->rnd) return MTC_ERR_INVALID_ARG;
  mtci_codec_kind kind = cfg->codec;
  if (kind != MTCI_CODEC_ABRIDGED && kind != MTCI_CODEC_INTERMEDIATE &&
      kind != MTCI_CODEC_PADDED && kind != MTCI_CODEC_FULL)
    return MTC_ERR_INVALID_ARG;
  int obfs = cfg->obfuscated != 0, tls = 0;
  const mtci_proxy_secret *sec = cfg->secret;
  if (sec && sec->kind != MTCI_SECRET_NONE) {
    switch (sec->kind) {
    case MTCI_SECRET_SIMPLE:
      if (kind == MTCI_CODEC_FULL) return MTC_ERR_INVALID_ARG;
      break;
    case MTCI_SECRET_DD: kind = MTCI_CODEC_PADDED; break;
    case MTCI_SECRET_EE:
      if (sec->domain_len < MTCI_PROXY_DOMAIN_MIN || sec->domain_len > MTCI_PROXY_DOMAIN_MAX)
        return MTC_ERR_INVALID_ARG;
      kind = MTCI_CODEC_PADDED;
      tls = 1;
      break;
    default: return MTC_ERR_INVALID_ARG;
    }
    obfs = 1;
  }
  if (kind == MTCI_CODEC_FULL && obfs) return MTC_ERR_INVALID_ARG;
  if (obfs && cfg->dc_id == 0) return MTC_ERR_INVALID_ARG;

  int rc = mtci_codec_init(&st->codec, kind, 0, cfg->rnd, cfg->rnd_ud);
  if (rc < 0) goto fail;
  if (cfg->socks5) {
    const mtci_stack_socks5 *s = cfg->socks5;
    st->s5 = calloc(1, sizeof *st->s5);
    if (!st->s5) {
      rc = MTC_ERR_NOMEM;
      goto fail;
    }
    rc = mtci_socks5_init(st->s5, s->atyp, s->addr, s->addr_len, s->port, s->user, s->user_len,
                          s->pass, s->pass_len);
    if (rc < 0) goto fail;
    st->socks = 1;
  }
  if (sec && sec->kind != MTCI_SECRET_NONE) st->secret = *sec;
  st->kind = kind;
  st->obfs = obfs;
  st->tls = tls;
  st->dc_id = cfg->dc_id;
  st->max_queued = cfg->max_queued ? cfg->max_queued : MTCI_STACK_MAX_QUEUED;
  st->rnd = cfg->rnd;
  st->rnd_ud = cfg->rnd_ud;
  st->state = ST_INIT;
  return 0;
fail:
  mtci_stack_free(st);
  return rc;
}

int mtci_stack_start(mtci_stack *st, int64_t unix_time) {
  if (!st) return MTC_ERR_INVALID_ARG;
  if (st->err) return st->err;
  if (st->state != ST_INIT) return MTC_ERR_INVALID_ARG;
  int rc;
  if (st->tls) {
    st->hs = calloc(1, sizeof *st->hs);
    if (!st->hs) return fail(st, MTC_ERR_NOMEM);
    rc = mtci_tls_client_hello(st->secret.key, (const uint8_t *)st->secret.domain,
                               st->secret.domain_len, unix_time, st->rnd, st->rnd_ud, NULL,
                               st->hs->hello);
    if (rc < 0) return fail(st, rc);
    mtci_tls_sh_init(&st->hs->sh, st->secret.key, st->hs->hello + MTCI_TLS_RANDOM_OFFSET);
    mtci_tls_writer_init(&st->tw, 0);
  }

  /* The stream opens with the obfuscation header, or the plain codec tag. */
  uint8_t head[MTCI_OBFS_HEADER_LEN];
  size_t head_len;
  if (st->obfs) {
    const uint8_t *key = st->secret.kind != MTCI_SECRET_NONE ? st->secret.key : NULL;
    rc = mtci_obfs_client_init(&st->ob, obfs_tag(st->kind), st->dc_id, key,
                               st->tls ? MTCI_OBFS_INSIDE_TLS : 0, st->rnd, st->rnd_ud, head);
    if (rc < 0) return fail(st, rc);
    head_len = MTCI_OBFS_HEADER_LEN;
  } else {
    rc = mtci_codec_tag(st->kind, head);
    if (rc < 0) return fail(st, rc);
    head_len = (size_t)rc;
  }
  int handshake = st->socks || st->tls;
  rc = buf_append(handshake ? &st->held : &st->out, head, head_len);
  if (rc < 0) return fail(st, rc);

  if (st->socks) {
    rc = socks_flush(st);
    st->stage = STAGE_SOCKS;
  } else if (st->tls) {
    rc = buf_append(&st->out, st->hs->hello, sizeof st->hs->hello);
    st->stage = STAGE_TLS;
  } else {
    st->stage = STAGE_DATA;
  }
  if (rc < 0) return fail(st, rc);
  st->state = handshake ? ST_HANDSHAKING : ST_READY;
  return handshake ? 0 : 1;
}

int mtci_stack_ready(const mtci_stack *st) { return st && st->state == ST_READY; }

mtci_codec_kind mtci_stack_codec(const mtci_stack *st) {
  return st && st->state != ST_NONE ? st->kind : (mtci_codec_kind)0;
}

size_t mtci_stack_queued(const mtci_stack *st) {
  return st ? buf_used(&st->out) + buf_used(&st->held) : 0;
}

uint64_t mtci_stack_bytes_in(const mtci_stack *st) { return st ? st->bytes_in : 0; }
uint64_t mtci_stack_bytes_out(const mtci_stack *st) { return st ? st->bytes_out : 0; }

void mtci_stack_trim(mtci_stack *st) {
  if (!st) return;
  buf_trim(&st->out);
  buf_trim(&st->held);
  buf_trim(&st->rx);
  mtci_codec_trim(&st->codec);
}

size_t mtci_stack_heap_bytes(const mtci_stack *st) {
  if (!st) return 0;
  return st->out.cap + st->held.cap + st->rx.cap + (st->hs ? sizeof *st->hs : 0) +
         (st->s5 ? sizeof *st->s5 : 0) + st->codec.buf_cap;
}

void mtci_stack_free(mtci_stack *st) {
  if (!st) return;
  mtci_codec_free(&st->codec);
  mtci_obfs_free(&st->ob);
  socks_free(st);
  tls_hs_free(st);
  mtci_proxy_secret_free(&st->secret);
  buf_free(&st->out);
  buf_free(&st->held);
  buf_free(&st->rx);
  mtci_zeroize(st, sizeof *st);
}

/* ---- output ------------------------------------------------------------- */

size_t mtci_stack_pending(const mtci_stack *st, const uint8_t **p) {
  if (!st || !st->out.p || st->out.pos == st->out.len) {
    if (p) *p = NULL;
    return 0;
  }
  if (p) *p = st->out.p + st->out.pos;
  return st->out.len - st->out.pos;
}

int mtci_stack_consumed(mtci_stack *st, size_t n) {
  if (!st || n > buf_used(&st->out)) return MTC_ERR_INVALID_ARG;
  /* SOCKS5 auth carries the password: leave no copy behind. */
  if (st->stage == STAGE_SOCKS && n) mtci_zeroize(st->out.p + st->out.pos, n);
  st->out.pos += n;
  st->bytes_out += n;
  buf_drained(&st->out);
  return 0;
}

/* Fake-TLS after READY: one frame straight into records (see the top). */
static int send_tls(mtci_stack *st, const uint8_t *pkt, size_t len, int quick_ack, size_t hn,
                    size_t fmax) {
  size_t rmax = mtci_tls_writer_size(&st->tw, fmax);
  if (!queue_room(st, rmax)) return MTC_ERR_NOMEM;
  uint8_t *w = buf_reserve(&st->out, rmax);
  if (!w) return MTC_ERR_NOMEM;
  size_t off, flen;
  int rc = mtci_codec_encode(&st->codec, w, rmax, hn, len, quick_ack, &off, &flen);
  if (rc < 0) return rc;
  if (off != 0 || flen < hn + len || flen > fmax) return MTC_ERR_INTERNAL;
  uint8_t head[MTCI_CODEC_MAX_HEADROOM], tail[MTCI_CODEC_MAX_TAILROOM];
  size_t tn = flen - hn - len;
  memcpy(head, w, hn);
  memcpy(tail, w + hn + len, tn);

  size_t o = 0;
  if (st->tw.ccs_pending) {
    memcpy(w, ccs_record, sizeof ccs_record);
    o = sizeof ccs_record;
    st->tw.ccs_pending = 0;
  }
  const uint8_t *src[3] = {head, pkt, tail};
  size_t srclen[3] = {hn, len, tn};
  size_t left = flen, rec = 0;
  for (int i = 0; i < 3; i++) {
    const uint8_t *p = src[i];
    size_t n = srclen[i];
    while (n) {
      if (rec == 0) { /* 17 03 03 <len16 BE> */
        rec = min_sz(left, st->tw.max_payload);
        w[o] = 0x17, w[o + 1] = 0x03, w[o + 2] = 0x03;
        w[o + 3] = (uint8_t)(rec >> 8), w[o + 4] = (uint8_t)rec;
        o += 5;
      }
      size_t take = min_sz(n, rec);
      mtci_obfs_encrypt(&st->ob, p, w + o, take);
      o += take;
      p += take;
      n -= take;
      rec -= take;
      left -= take;
    }
  }
  st->out.len += o;
  return 0;
}

int mtci_stack_send_packet(mtci_stack *st, const uint8_t *pkt, size_t len, int quick_ack) {
  if (!st || (!pkt && len)) return MTC_ERR_INVALID_ARG;
  if (st->err) return st->err;
  if (st->state != ST_HANDSHAKING && st->state != ST_READY) return MTC_ERR_INVALID_ARG;
  if (len == 0 || len % 4 != 0) return MTC_ERR_FRAME_LENGTH;
  if (len > MTCI_CODEC_MAX_PAYLOAD) return MTC_ERR_FRAME_TOO_LARGE;
  if (quick_ack && !mtci_codec_has_quick_ack(st->kind)) return MTC_ERR_UNSUPPORTED;
  size_t hn = frame_header_len(st->kind, len);
  size_t fmax = hn + len + mtci_codec_tailroom(st->kind);
  if (st->tls && st->state == ST_READY) return send_tls(st, pkt, len, quick_ack, hn, fmax);

  mtci_stack_buf *b = st->state == ST_READY ? &st->out : &st->held;
  if (!queue_room(st, fmax)) return MTC_ERR_NOMEM;
  uint8_t *w = buf_reserve(b, fmax);
  if (!w) return MTC_ERR_NOMEM;
  size_t off, flen;
  if (st->kind == MTCI_CODEC_FULL) memcpy(w + hn, pkt, len); /* the crc reads it */
  int rc = mtci_codec_encode(&st->codec, w, fmax, hn, len, quick_ack, &off, &flen);
  if (rc < 0) return rc;
  if (off != 0 || flen < hn + len || flen > fmax) return MTC_ERR_INTERNAL;
  if (st->obfs) {
    mtci_obfs_encrypt(&st->ob, w, w, hn);
    mtci_obfs_encrypt(&st->ob, pkt, w + hn, len);
    mtci_obfs_encrypt(&st->ob, w + hn + len, w + hn + len, flen - hn - len);
  } else if (st->kind != MTCI_CODEC_FULL) {
    memcpy(w + hn, pkt, len);
  }
  b->len += flen;
  return 0;
}

/* ---- input -------------------------------------------------------------- */

/* The handshakes are done: queue the held stream (as records with fake-TLS). */
static int go_ready(mtci_stack *st, mtci_stack_event *ev) {
  size_t n = buf_used(&st->held);
  int rc = 0;
  if (n && st->tls) {
    size_t need = mtci_tls_writer_size(&st->tw, n), olen = 0;
    uint8_t *w = buf_reserve(&st->out, need);
    if (!w) return fail(st, MTC_ERR_NOMEM);
    rc = mtci_tls_writer_emit(&st->tw, st->held.p + st->held.pos, n, w, need, &olen);
    if (rc == 0) st->out.len += olen;
  } else if (n && buf_used(&st->out) == 0) { /* just take the held buffer over */
    mtci_stack_buf t = st->out;
    st->out = st->held;
    st->held = t;
  } else if (n) {
    rc = buf_append(&st->out, st->held.p + st->held.pos, n);
  }
  if (rc < 0) return fail(st, rc);
  buf_free(&st->held);
  st->state = ST_READY;
  st->stage = STAGE_DATA;
  memset(ev, 0, sizeof *ev);
  ev->type = MTCI_STACK_READY;
  return 1;
}

/*
 * Fake-TLS records in, one pass: walk the 17 03 03 headers of in[0..len)
 * and decrypt the bodies into out (room for len bytes). The rules are
 * mtci_tls_reader's (faketls.h): 17 03 03 records up to MTCI_TLS_MAX_RECORD
 * (else MTC_ERR_TLS_RECORD_TOO_LONG), "14 03 03 00 01 01" and empty records
 * skipped, anything else MTC_ERR_TLS_BAD_RECORD. Its copy of each body
 * would cost about half an AES-CTR pass, hence the walk here.
 */
static int tls_rx(mtci_stack *st, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
  size_t i = 0, o = 0;
  *out_len = 0;
  while (i < len) {
    if (st->rec_hl < 5) {
      size_t take = min_sz(5u - st->rec_hl, len - i);
      memcpy(st->rec_hdr + st->rec_hl, in + i, take);
      st->rec_hl = (uint8_t)(st->rec_hl + take);
      i += take;
      if (st->rec_hl < 5) break;
      const uint8_t *h = st->rec_hdr;
      size_t l = (size_t)h[3] << 8 | h[4];
      int v12 = h[1] == 0x03 && h[2] == 0x03;
      if (h[0] == 0x17 && v12) {
        if (l > MTCI_TLS_MAX_RECORD) return MTC_ERR_TLS_RECORD_TOO_LONG;
        st->rec_ccs = 0;
      } else if (h[0] == 0x14 && v12 && l == 1) {
        st->rec_ccs = 1;
      } else {
        return MTC_ERR_TLS_BAD_RECORD;
      }
      st->rec_left = l;
      if (l == 0) st->rec_hl = 0; /* empty record: skipped */
      continue;
    }
    size_t take = min_sz(st->rec_left, len - i);
    if (st->rec_ccs) {
      if (in[i] != 0x01) return MTC_ERR_TLS_BAD_RECORD;
    } else {
      mtci_obfs_decrypt(&st->ob, in + i, out + o, take);
      o += take;
    }
    i += take;
    st->rec_left -= take;
    if (st->rec_left == 0) st->rec_hl = 0;
  }
  *out_len = o;
  return 0;
}

/*
 * How many bytes the next server frame occupies, from its header (codec.h):
 * 0 while the header is incomplete, 1 for a length the codec rejects (fed
 * at once, so it reports the error). Only decides when to hand rx to the
 * codec; the codec still checks everything.
 */
static size_t next_frame_len(mtci_codec_kind kind, const uint8_t *p, size_t n) {
  if (n == 0) return 0;
  if (kind == MTCI_CODEC_ABRIDGED) {
    if (p[0] & 0x80) return 4; /* a byte-swapped quick-ack token */
    if (p[0] != 0x7f) return 1 + (size_t)p[0] * 4;
    if (n < 4) return 0;
    size_t body = ((size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16) * 4;
    return body > MTCI_CODEC_MAX_PAYLOAD ? 1 : 4 + body;
  }
  if (kind != MTCI_CODEC_INTERMEDIATE && kind != MTCI_CODEC_PADDED) return 1;
  if (n < 4) return 0;
  uint32_t w = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  if (w & 0x80000000u) return 4; /* a quick-ack token in place of a length */
  return mtci_codec_check_len(kind, w) ? 1 : 4 + (size_t)w; /* a bad word fails now */
}

/* A codec event becomes a stack event. */
static int frame_event(mtci_stack *st, const mtci_frame *fr, mtci_stack_event *ev) {
  memset(ev, 0, sizeof *ev);
  switch (fr->type) {
  case MTCI_FRAME_DATA: {
    size_t n = fr->len;
    if (st->kind == MTCI_CODEC_PADDED) {
      int rc = mtci_padded_payload_len(fr->data, fr->len, &n);
      if (rc < 0) return fail(st, rc);
    }
    ev->type = MTCI_STACK_PACKET;
    ev->data = fr->data;
    ev->len = n;
    return 1;
  }
  case MTCI_FRAME_QUICK_ACK:
    ev->type = MTCI_STACK_QUICK_ACK;
    ev->quick_ack = fr->quick_ack;
    return 1;
  case MTCI_FRAME_TRANSPORT_ERROR:
    ev->type = MTCI_STACK_TRANSPORT_ERROR;
    ev->error_code = fr->error_code;
    ev->error = mtci_transport_error(fr->error_code);
    fail(st, ev->error); /* reported now, sticky from the next call on */
    return 1;
  }
  return fail(st, MTC_ERR_INTERNAL);
}

int mtci_stack_feed(mtci_stack *st, const uint8_t *in, size_t len, size_t *consumed,
                    mtci_stack_event *ev) {
  if (consumed) *consumed = 0;
  if (!st || !consumed || !ev || (!in && len)) return MTC_ERR_INVALID_ARG;
  if (st->err) return st->err;
  if (st->state != ST_HANDSHAKING && st->state != ST_READY) return MTC_ERR_INVALID_ARG;
  size_t pos = 0, used = 0;
  int rc;

  if (st->stage == STAGE_SOCKS) {
    /* One byte at a time: a message the machine queues is in our output
     * (handed out) before the next answer byte arrives, however the
     * caller's input was split. The handshake is a few hundred bytes. */
    rc = 0;
    while (pos < len && rc == 0) {
      rc = mtci_socks5_feed(st->s5, in + pos, 1, &used);
      pos += used;
      st->bytes_in += used;
      *consumed = pos;
      if (rc < 0) return fail(st, rc);
      int frc = socks_flush(st);
      if (frc < 0) return fail(st, frc);
    }
    if (rc != MTCI_SOCKS5_DONE) return 0;
    socks_free(st); /* the proxy's part is over */
    if (!st->tls) return go_ready(st, ev);
    rc = buf_append(&st->out, st->hs->hello, sizeof st->hs->hello);
    if (rc < 0) return fail(st, rc);
    st->stage = STAGE_TLS;
  }

  if (st->stage == STAGE_TLS) {
    rc = mtci_tls_sh_feed(&st->hs->sh, in + pos, len - pos, &used);
    pos += used;
    st->bytes_in += used;
    *consumed = pos;
    if (rc < 0) return fail(st, rc);
    if (rc == 0) return 0;
    tls_hs_free(st); /* the MAC state and the ClientHello are no longer needed */
    return go_ready(st, ev);
  }

  mtci_frame fr;
  if (!st->obfs) { /* plain: the codec reads the input itself, no copy */
    if (pos == len) return 0;
    rc = mtci_codec_feed(&st->codec, in + pos, len - pos, &used, &fr);
    if (rc < 0) return fail(st, rc);
    pos += used;
    st->bytes_in += used;
    *consumed = pos;
    return rc == 1 ? frame_event(st, &fr, ev) : 0;
  }
  for (;;) {
    size_t avail = st->rx.len - st->rx.pos;
    size_t need = avail ? next_frame_len(st->kind, st->rx.p + st->rx.pos, avail) : 0;
    if (need && avail >= need) { /* a whole frame (or a bad header): to the codec */
      rc = mtci_codec_feed(&st->codec, st->rx.p + st->rx.pos, avail, &used, &fr);
      if (rc < 0) return fail(st, rc);
      st->rx.pos += used;
      if (rc == 1) {
        *consumed = pos;
        return frame_event(st, &fr, ev);
      }
      continue; /* the codec took it all without an event: it holds a partial frame */
    }
    if (pos == len) break;
    /* decrypt the next piece of input into rx, behind what is there */
    size_t take = min_sz(len - pos, MTCI_STACK_RX_BATCH), got = take;
    uint8_t *w = rx_room(&st->rx, take, need);
    if (!w) return fail(st, MTC_ERR_NOMEM);
    if (st->tls) {
      rc = tls_rx(st, in + pos, take, w, &got);
      if (rc < 0) return fail(st, rc);
    } else {
      mtci_obfs_decrypt(&st->ob, in + pos, w, got);
    }
    st->rx.len += got;
    pos += take;
    st->bytes_in += take;
    *consumed = pos;
  }
  buf_drained(&st->rx);
  *consumed = pos;
  return 0;
}

int mtci_stack_eof(const mtci_stack *st) {
  if (!st) return MTC_ERR_INVALID_ARG;
  if (st->err) return st->err;
  if (st->state != ST_HANDSHAKING && st->state != ST_READY) return MTC_ERR_INVALID_ARG;
  switch (st->stage) {
  case STAGE_SOCKS: return MTC_ERR_TRANSPORT_CLOSED;
  case STAGE_TLS: return st->hs ? mtci_tls_sh_eof(&st->hs->sh) : MTC_ERR_INTERNAL;
  default: break;
  }
  if (st->tls && st->rec_hl) return MTC_ERR_TLS_TRUNCATED;      /* inside a record */
  if (st->rx.pos < st->rx.len) return MTC_ERR_FRAME_TRUNCATED; /* inside a frame */
  return mtci_codec_eof(&st->codec);
}
