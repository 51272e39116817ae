/*
 * MTProto framing codecs: abridged, intermediate, padded intermediate, full.
 * Wire formats, events and the memory rules are described in codec.h.
 *
 * The receive side is one state machine for all four codecs:
 *   RX_TAG    (server role with a tag) collecting the tag bytes;
 *   RX_HEADER collecting hdr_need header bytes (abridged: 1, then 4 for an
 *             extended length or a quick ack; others: 4, the length word);
 *   RX_BODY   collecting body_len bytes: the payload (padded: + padding;
 *             full: seqno + payload + crc).
 * Each feed() call walks the machine over the input and stops at the first
 * complete event, so the events do not depend on how the stream was split.
 */
#include "transport/codec.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { RX_TAG = 0, RX_HEADER = 1, RX_BODY = 2 };

#define BUF_START 4096u         /* first receive buffer size */
#define BUF_KEEP (64u * 1024u)  /* buffers above this are released after their frame */
#define QUICK_ACK_BIT 0x80000000u

static uint32_t ld32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* Two's-complement reinterpretation without implementation-defined casts. */
static int32_t to_i32(uint32_t v) {
  return v <= 0x7fffffffu ? (int32_t)v : -(int32_t)(~v) - 1;
}

static int kind_ok(int kind) {
  return kind >= MTCI_CODEC_ABRIDGED && kind <= MTCI_CODEC_FULL;
}

static int is_server(const mtci_codec *c) { return (c->flags & MTCI_CODEC_F_SERVER) != 0; }

static size_t first_header_need(mtci_codec_kind kind) {
  return kind == MTCI_CODEC_ABRIDGED ? 1 : 4;
}

/* Largest frame body accepted for the codec (see codec.h). */
static size_t max_body(mtci_codec_kind kind) {
  switch (kind) {
  case MTCI_CODEC_PADDED: return (size_t)MTCI_CODEC_MAX_PAYLOAD + 15;
  case MTCI_CODEC_FULL: return (size_t)MTCI_CODEC_MAX_PAYLOAD + 8;
  default: return MTCI_CODEC_MAX_PAYLOAD;
  }
}

/* ---- tags and sizes ----------------------------------------------------- */

int mtci_codec_check_len(mtci_codec_kind kind, uint32_t w) {
  if (kind != MTCI_CODEC_INTERMEDIATE && kind != MTCI_CODEC_PADDED) return 0;
  if (w == 0) return MTC_ERR_FRAME_LENGTH;
  if (w > max_body(kind)) return MTC_ERR_FRAME_TOO_LARGE;
  if (kind == MTCI_CODEC_INTERMEDIATE ? w % 4 != 0 : w < 4) return MTC_ERR_FRAME_LENGTH;
  return 0;
}

int mtci_codec_tag(mtci_codec_kind kind, uint8_t out[4]) {
  uint8_t b;
  int len;
  switch (kind) {
  case MTCI_CODEC_ABRIDGED: b = 0xef, len = 1; break;
  case MTCI_CODEC_INTERMEDIATE: b = 0xee, len = 4; break;
  case MTCI_CODEC_PADDED: b = 0xdd, len = 4; break;
  case MTCI_CODEC_FULL: b = 0x00, len = 0; break;
  default: return MTC_ERR_INVALID_ARG;
  }
  if (out) memset(out, b, 4);
  return len;
}

int mtci_codec_detect(const uint8_t *p, size_t n, mtci_codec_kind *kind) {
  if (!kind || (!p && n)) return MTC_ERR_INVALID_ARG;
  if (n == 0) return 0;
  if (p[0] == 0xef) {
    *kind = MTCI_CODEC_ABRIDGED;
    return 1;
  }
  if (p[0] == 0xee || p[0] == 0xdd) {
    for (size_t i = 1; i < n && i < 4; i++) {
      if (p[i] != p[0]) {
        *kind = MTCI_CODEC_FULL; /* garbage for full too; its decoder rejects it */
        return 1;
      }
    }
    if (n < 4) return 0;
    *kind = p[0] == 0xee ? MTCI_CODEC_INTERMEDIATE : MTCI_CODEC_PADDED;
    return 1;
  }
  *kind = MTCI_CODEC_FULL;
  return 1;
}

size_t mtci_codec_header_size(mtci_codec_kind kind) {
  switch (kind) {
  case MTCI_CODEC_ABRIDGED: return 1 + 4;     /* tag + 0x7f and 3 length bytes */
  case MTCI_CODEC_INTERMEDIATE: return 4 + 4; /* tag + length */
  case MTCI_CODEC_PADDED: return 4 + 4;       /* tag + length */
  case MTCI_CODEC_FULL: return 4 + 4;         /* length + seqno */
  }
  return 0;
}

size_t mtci_codec_tailroom(mtci_codec_kind kind) {
  switch (kind) {
  case MTCI_CODEC_PADDED: return 15;
  case MTCI_CODEC_FULL: return 4;
  default: return 0;
  }
}

int mtci_codec_has_quick_ack(mtci_codec_kind kind) {
  return kind == MTCI_CODEC_ABRIDGED || kind == MTCI_CODEC_INTERMEDIATE ||
         kind == MTCI_CODEC_PADDED;
}

/* ---- life cycle --------------------------------------------------------- */

static void rx_next_frame(mtci_codec *c) {
  c->rx_state = RX_HEADER;
  c->hdr_have = 0;
  c->hdr_need = first_header_need(c->kind);
  c->body_len = 0;
  c->body_have = 0;
  c->ack_req = 0;
}

int mtci_codec_init(mtci_codec *c, mtci_codec_kind kind, unsigned flags, mtc_random_fn rnd,
                    void *rnd_ud) {
  if (!c) return MTC_ERR_INVALID_ARG;
  memset(c, 0, sizeof *c);
  if (!kind_ok((int)kind)) return MTC_ERR_INVALID_ARG;
  if (flags & ~(unsigned)(MTCI_CODEC_F_TAG | MTCI_CODEC_F_SERVER)) return MTC_ERR_INVALID_ARG;
  if (kind == MTCI_CODEC_PADDED && !rnd) return MTC_ERR_INVALID_ARG;
  c->kind = kind;
  c->flags = flags;
  c->rnd = rnd;
  c->rnd_ud = rnd_ud;
  rx_next_frame(c);
  int tagged = (flags & MTCI_CODEC_F_TAG) && kind != MTCI_CODEC_FULL;
  if (tagged && is_server(c)) {
    c->rx_state = RX_TAG;
    c->hdr_need = (size_t)mtci_codec_tag(kind, NULL);
  }
  c->tag_pending = tagged && !is_server(c);
  return 0;
}

void mtci_codec_trim(mtci_codec *c) {
  if (!c || !c->buf || (c->rx_state == RX_BODY && c->body_have > 0)) return;
  free(c->buf);
  c->buf = NULL;
  c->buf_cap = 0;
  c->release_buf = 0;
}

void mtci_codec_free(mtci_codec *c) {
  if (!c) return;
  free(c->buf);
  c->buf = NULL;
  c->buf_cap = 0;
  c->release_buf = 0;
}

/* ---- send --------------------------------------------------------------- */

int mtci_codec_encode(mtci_codec *c, uint8_t *buf, size_t buf_len, size_t headroom,
                      size_t payload_len, int quick_ack, size_t *frame_off, size_t *frame_len) {
  if (!c || !kind_ok((int)c->kind) || !buf || !frame_off || !frame_len)
    return MTC_ERR_INVALID_ARG;
  if (quick_ack && is_server(c)) return MTC_ERR_INVALID_ARG;
  if (quick_ack && !mtci_codec_has_quick_ack(c->kind)) return MTC_ERR_UNSUPPORTED;
  if (payload_len == 0 || payload_len % 4 != 0) return MTC_ERR_FRAME_LENGTH;
  if (payload_len > MTCI_CODEC_MAX_PAYLOAD) return MTC_ERR_FRAME_TOO_LARGE;
  if (headroom > buf_len || payload_len > buf_len - headroom) return MTC_ERR_BUFFER_TOO_SMALL;
  if (buf_len - headroom - payload_len < mtci_codec_tailroom(c->kind))
    return MTC_ERR_BUFFER_TOO_SMALL;

  uint8_t hdr[MTCI_CODEC_MAX_HEADROOM];
  size_t hn = 0;
  if (c->tag_pending) hn = (size_t)mtci_codec_tag(c->kind, hdr);
  uint32_t len32 = (uint32_t)payload_len; /* <= 16 MiB */
  uint8_t *payload = buf + headroom;
  size_t trailer = 0;

  switch (c->kind) {
  case MTCI_CODEC_ABRIDGED: {
    uint32_t n = len32 / 4;
    uint8_t qa = quick_ack ? 0x80 : 0x00;
    if (n < 0x7f) {
      hdr[hn++] = (uint8_t)(n | qa);
    } else {
      hdr[hn++] = (uint8_t)(0x7f | qa);
      hdr[hn++] = (uint8_t)n;
      hdr[hn++] = (uint8_t)(n >> 8);
      hdr[hn++] = (uint8_t)(n >> 16);
    }
    if (headroom < hn) return MTC_ERR_BUFFER_TOO_SMALL;
    break;
  }
  case MTCI_CODEC_INTERMEDIATE:
  case MTCI_CODEC_PADDED: {
    if (headroom < hn + 4) return MTC_ERR_BUFFER_TOO_SMALL;
    if (c->kind == MTCI_CODEC_PADDED) {
      /* One byte picks the padding length (uniform over 0..15, like tdlib's
       * random % 16), then the padding bytes themselves. */
      uint8_t r = 0;
      int rc = c->rnd(c->rnd_ud, &r, 1);
      if (rc != 0) return rc < 0 ? rc : MTC_ERR_RANDOM;
      trailer = r & 15u;
      if (trailer) {
        rc = c->rnd(c->rnd_ud, payload + payload_len, trailer);
        if (rc != 0) return rc < 0 ? rc : MTC_ERR_RANDOM;
      }
    }
    st32(hdr + hn, (len32 + (uint32_t)trailer) | (quick_ack ? QUICK_ACK_BIT : 0));
    hn += 4;
    break;
  }
  case MTCI_CODEC_FULL: {
    if (headroom < hn + 8) return MTC_ERR_BUFFER_TOO_SMALL;
    st32(hdr + hn, len32 + 12);
    st32(hdr + hn + 4, c->tx_seqno);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, hdr + hn, 8);
    crc = crc32(crc, payload, (uInt)payload_len);
    st32(payload + payload_len, (uint32_t)crc);
    hn += 8;
    trailer = 4;
    break;
  }
  }

  memcpy(payload - hn, hdr, hn);
  *frame_off = headroom - hn;
  *frame_len = hn + payload_len + trailer;
  c->tag_pending = 0;
  if (c->kind == MTCI_CODEC_FULL) c->tx_seqno++;
  return 0;
}

int mtci_codec_encode_quick_ack(mtci_codec *c, uint32_t token, uint8_t *out, size_t cap) {
  if (!c || !kind_ok((int)c->kind) || !out) return MTC_ERR_INVALID_ARG;
  if (!is_server(c) || !mtci_codec_has_quick_ack(c->kind)) return MTC_ERR_UNSUPPORTED;
  /* Bit 31 is what tells the client this is no length: required. */
  if (!(token & QUICK_ACK_BIT)) return MTC_ERR_INVALID_ARG;
  if (cap < 4) return MTC_ERR_BUFFER_TOO_SMALL;
  if (c->kind == MTCI_CODEC_ABRIDGED) {
    out[0] = (uint8_t)(token >> 24);
    out[1] = (uint8_t)(token >> 16);
    out[2] = (uint8_t)(token >> 8);
    out[3] = (uint8_t)token;
  } else {
    st32(out, token);
  }
  return 4;
}

/* ---- receive ------------------------------------------------------------ */

static int fail(mtci_codec *c, int err) {
  c->err = err;
  free(c->buf); /* the connection is dead: keep nothing */
  c->buf = NULL;
  c->buf_cap = 0;
  c->release_buf = 0;
  return err;
}

static void quick_ack_event(mtci_frame *ev, uint32_t token) {
  memset(ev, 0, sizeof *ev);
  ev->type = MTCI_FRAME_QUICK_ACK;
  ev->quick_ack = token;
}

static int on_tag(mtci_codec *c) {
  uint8_t tag[4];
  size_t n = (size_t)mtci_codec_tag(c->kind, tag);
  if (memcmp(c->hdr, tag, n) != 0) return MTC_ERR_FRAME_TAG;
  rx_next_frame(c);
  return 0;
}

/* The header is complete (hdr_have == hdr_need). Returns 1 with a quick-ack
 * event, 0 when the machine moved on (more header or the body), or an error.
 * Length checks, in this order: zero, above the cap, misaligned/too small. */
static int on_header(mtci_codec *c, mtci_frame *ev) {
  size_t body;
  switch (c->kind) {
  case MTCI_CODEC_ABRIDGED: {
    uint32_t n;
    if (c->hdr_need == 1) {
      uint8_t b = c->hdr[0];
      if (b & 0x80) {
        if (!is_server(c)) { /* a byte-swapped quick-ack token: 3 more bytes */
          c->hdr_need = 4;
          return 0;
        }
        c->ack_req = 1; /* client asked for a quick ack */
        b &= 0x7f;
      }
      if (b == 0x7f) { /* extended length: 3 bytes follow */
        c->hdr_need = 4;
        return 0;
      }
      n = b;
    } else if (!is_server(c) && (c->hdr[0] & 0x80)) {
      uint32_t token = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                       (uint32_t)c->hdr[2] << 8 | (uint32_t)c->hdr[3];
      rx_next_frame(c);
      quick_ack_event(ev, token);
      return 1;
    } else {
      n = (uint32_t)c->hdr[1] | (uint32_t)c->hdr[2] << 8 | (uint32_t)c->hdr[3] << 16;
    }
    if (n == 0) return MTC_ERR_FRAME_LENGTH;
    body = (size_t)n * 4;
    if (body > max_body(c->kind)) return MTC_ERR_FRAME_TOO_LARGE;
    break;
  }
  case MTCI_CODEC_INTERMEDIATE:
  case MTCI_CODEC_PADDED: {
    uint32_t w = ld32(c->hdr);
    if (w & QUICK_ACK_BIT) {
      if (!is_server(c)) { /* a bare token in place of a length (tdlib) */
        rx_next_frame(c);
        quick_ack_event(ev, w);
        return 1;
      }
      c->ack_req = 1;
      w &= ~QUICK_ACK_BIT;
    }
    int rc = mtci_codec_check_len(c->kind, w);
    if (rc) return rc;
    body = w;
    break;
  }
  case MTCI_CODEC_FULL: {
    uint32_t w = ld32(c->hdr); /* counts itself, seqno and crc too */
    if (w == 0) return MTC_ERR_FRAME_LENGTH;
    if (w > max_body(c->kind) + 4) return MTC_ERR_FRAME_TOO_LARGE;
    if (w % 4 != 0 || w < 16) return MTC_ERR_FRAME_LENGTH;
    body = (size_t)w - 4;
    break;
  }
  default: return MTC_ERR_INTERNAL;
  }
  c->body_len = body;
  c->body_have = 0;
  c->rx_state = RX_BODY;
  return 0;
}

/* The body is complete at p[0..body_len). Fills *ev, returns 1 or an error. */
static int on_frame(mtci_codec *c, const uint8_t *p, mtci_frame *ev) {
  size_t len = c->body_len;
  if (c->kind == MTCI_CODEC_FULL) {
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, c->hdr, 4);
    crc = crc32(crc, p, (uInt)(len - 4));
    if ((uint32_t)crc != ld32(p + len - 4)) return MTC_ERR_FRAME_CRC;
    if (ld32(p) != c->rx_seqno) return MTC_ERR_FRAME_SEQNO;
    c->rx_seqno++;
    p += 4;
    len -= 8;
  }
  int ack_req = c->ack_req;
  rx_next_frame(c);
  memset(ev, 0, sizeof *ev);
  if (is_server(c)) { /* clients send messages only */
    ev->type = MTCI_FRAME_DATA;
    ev->data = p;
    ev->len = len;
    ev->ack_requested = ack_req;
    return 1;
  }
  if (len < MTCI_CODEC_MIN_MESSAGE) { /* a service frame: see codec.h */
    if (len < 4) return MTC_ERR_FRAME_LENGTH;
    int32_t code = to_i32(ld32(p));
    if (code == -1 && len >= 8) {
      quick_ack_event(ev, ld32(p + 4));
    } else {
      ev->type = MTCI_FRAME_TRANSPORT_ERROR;
      ev->error_code = code;
    }
    return 1;
  }
  ev->type = MTCI_FRAME_DATA;
  ev->data = p;
  ev->len = len;
  return 1;
}

/* Makes room for `need` body bytes: doubling from BUF_START and, above that,
 * never past the frame's body, so memory follows the bytes that arrived. */
static int grow(mtci_codec *c, size_t need) {
  if (need <= c->buf_cap) return 0;
  size_t cap = c->buf_cap ? c->buf_cap : BUF_START;
  while (cap < need) cap *= 2;
  if (cap > c->body_len && c->body_len > BUF_START) cap = c->body_len;
  uint8_t *p = realloc(c->buf, cap);
  if (!p) return MTC_ERR_NOMEM;
  c->buf = p;
  c->buf_cap = cap;
  return 0;
}

int mtci_codec_feed(mtci_codec *c, const uint8_t *data, size_t len, size_t *consumed,
                    mtci_frame *ev) {
  if (consumed) *consumed = 0;
  if (!c || !consumed || !ev || (!data && len)) return MTC_ERR_INVALID_ARG;
  if (c->err) return c->err;
  if (!kind_ok((int)c->kind)) return MTC_ERR_INVALID_ARG;
  if (c->release_buf) { /* the previous event's view is no longer valid */
    free(c->buf);
    c->buf = NULL;
    c->buf_cap = 0;
    c->release_buf = 0;
  }
  size_t pos = 0;
  int r;
  while (pos < len) {
    if (c->rx_state != RX_BODY) {
      size_t take = c->hdr_need - c->hdr_have;
      if (take > len - pos) take = len - pos;
      memcpy(c->hdr + c->hdr_have, data + pos, take);
      c->hdr_have += take;
      pos += take;
      if (c->hdr_have < c->hdr_need) break;
      r = c->rx_state == RX_TAG ? on_tag(c) : on_header(c, ev);
      if (r < 0) return fail(c, r);
      if (r > 0) {
        *consumed = pos;
        return 1;
      }
      continue;
    }
    size_t want = c->body_len - c->body_have;
    if (c->body_have == 0 && len - pos >= want) { /* whole body at hand: no copy */
      const uint8_t *p = data + pos;
      pos += want;
      r = on_frame(c, p, ev);
      if (r < 0) return fail(c, r);
      *consumed = pos;
      return 1;
    }
    size_t take = want < len - pos ? want : len - pos;
    r = grow(c, c->body_have + take);
    if (r < 0) return fail(c, r);
    memcpy(c->buf + c->body_have, data + pos, take);
    c->body_have += take;
    pos += take;
    if (c->body_have == c->body_len) {
      r = on_frame(c, c->buf, ev);
      if (r < 0) return fail(c, r);
      if (c->buf_cap > BUF_KEEP) c->release_buf = 1;
      *consumed = pos;
      return 1;
    }
  }
  *consumed = pos;
  return 0;
}

int mtci_codec_eof(const mtci_codec *c) {
  if (!c) return MTC_ERR_INVALID_ARG;
  if (c->err) return c->err;
  if (c->rx_state != RX_BODY && c->hdr_have == 0) return 0;
  return MTC_ERR_FRAME_TRUNCATED;
}

/* ---- helpers ------------------------------------------------------------ */

int mtci_padded_payload_len(const uint8_t *frame, size_t len, size_t *payload_len) {
  if (!frame || !payload_len) return MTC_ERR_INVALID_ARG;
  if (len < 24) return MTC_ERR_FRAME_LENGTH;
  static const uint8_t zero_id[8];
  if (memcmp(frame, zero_id, 8) != 0) { /* encrypted: 24-byte head + 16-byte blocks */
    *payload_len = 24 + (len - 24) / 16 * 16;
    return 0;
  }
  /* unencrypted: auth_key_id(8) msg_id(8) message_data_length(4) data */
  uint32_t mdl = ld32(frame + 16);
  if (mdl > len - 20) return MTC_ERR_FRAME_LENGTH;
  size_t total = 20 + (size_t)mdl;
  if (len - total > 15) return MTC_ERR_FRAME_LENGTH;
  *payload_len = total;
  return 0;
}

int mtci_transport_error(int32_t code) {
  switch (code) {
  case -404: return MTC_ERR_TRANSPORT_AUTH_KEY;
  case -429: return MTC_ERR_TRANSPORT_FLOOD;
  case -444: return MTC_ERR_TRANSPORT_BAD_DC;
  default: return MTC_ERR_TRANSPORT_ERROR;
  }
}
