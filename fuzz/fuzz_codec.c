/*
 * Fuzz target: the framing codecs' receive side (src/transport/codec.c).
 *
 * Input layout:
 *   byte 0    bits 0-1: codec (abridged, intermediate, padded, full),
 *             bit 2: server role, bit 3: tag expected (server role)
 *   then      records [n][n bytes], each fed as one chunk (a short last
 *             record is fed as far as it goes).
 * Each chunk lives in its own heap copy, so a view that outlives its chunk
 * shows up under ASan. Every DATA view is read in full; non-padded DATA
 * frames are re-encoded by the opposite role and decoded again, which must
 * give the same frame back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/codec.h"

static int fuzz_rng(void *ud, uint8_t *out, size_t len) {
  (void)ud;
  memset(out, 0x5a, len);
  return 0;
}

static void roundtrip(mtci_codec_kind kind, int server, const mtci_frame *ev) {
  if (kind == MTCI_CODEC_PADDED || ev->len > 65536) return;
  mtci_codec e, d;
  if (mtci_codec_init(&e, kind, server ? 0 : MTCI_CODEC_F_SERVER, fuzz_rng, NULL) != 0 ||
      mtci_codec_init(&d, kind, server ? MTCI_CODEC_F_SERVER : 0, fuzz_rng, NULL) != 0)
    __builtin_trap();
  size_t cap = MTCI_CODEC_MAX_HEADROOM + ev->len + MTCI_CODEC_MAX_TAILROOM;
  uint8_t *buf = malloc(cap);
  if (!buf) return;
  memcpy(buf + MTCI_CODEC_MAX_HEADROOM, ev->data, ev->len);
  size_t off = 0, fl = 0, used = 0;
  if (mtci_codec_encode(&e, buf, cap, MTCI_CODEC_MAX_HEADROOM, ev->len,
                        server ? ev->ack_requested : 0, &off, &fl) != 0)
    __builtin_trap();
  mtci_frame out;
  if (mtci_codec_feed(&d, buf + off, fl, &used, &out) != 1 || used != fl ||
      out.type != MTCI_FRAME_DATA || out.len != ev->len ||
      memcmp(out.data, ev->data, ev->len) != 0 || out.ack_requested != ev->ack_requested)
    __builtin_trap();
  free(buf);
  mtci_codec_free(&e);
  mtci_codec_free(&d);
}

static volatile uint8_t sink;

static void consume(mtci_codec_kind kind, int server, const mtci_frame *ev) {
  switch (ev->type) {
  case MTCI_FRAME_DATA: {
    uint8_t x = 0;
    for (size_t i = 0; i < ev->len; i++) x ^= ev->data[i];
    sink = x;
    if (kind == MTCI_CODEC_PADDED) {
      size_t pl = 0;
      if (mtci_padded_payload_len(ev->data, ev->len, &pl) == 0 && pl > ev->len) __builtin_trap();
    }
    roundtrip(kind, server, ev);
    break;
  }
  case MTCI_FRAME_QUICK_ACK: sink = (uint8_t)ev->quick_ack; break;
  case MTCI_FRAME_TRANSPORT_ERROR:
    if (mtci_transport_error(ev->error_code) >= 0) __builtin_trap();
    break;
  default: __builtin_trap();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  mtci_codec_kind kind = (mtci_codec_kind)((d[0] & 3) + 1);
  int server = (d[0] & 4) != 0;
  unsigned flags = (server ? MTCI_CODEC_F_SERVER : 0) | ((d[0] & 8) ? MTCI_CODEC_F_TAG : 0);
  mtci_codec c;
  if (mtci_codec_init(&c, kind, flags, fuzz_rng, NULL) != 0) __builtin_trap();
  size_t pos = 1;
  int err = 0;
  while (pos < n && !err) {
    size_t chunk = d[pos++];
    if (chunk > n - pos) chunk = n - pos;
    uint8_t *buf = malloc(chunk ? chunk : 1);
    if (!buf) break;
    memcpy(buf, d + pos, chunk);
    size_t cp = 0;
    do {
      size_t used = 0;
      mtci_frame ev;
      int r = mtci_codec_feed(&c, buf + cp, chunk - cp, &used, &ev);
      if (r < 0) {
        err = r;
        break;
      }
      if (used > chunk - cp || (r == 1 && used == 0) || (r == 0 && used != chunk - cp))
        __builtin_trap();
      cp += used;
      if (r == 1) consume(kind, server, &ev);
    } while (cp < chunk);
    free(buf);
    pos += chunk;
  }
  if (err) { /* sticky */
    size_t used = 1;
    mtci_frame ev;
    if (mtci_codec_feed(&c, d, n, &used, &ev) != err || used != 0) __builtin_trap();
    if (mtci_codec_eof(&c) != err) __builtin_trap();
  } else {
    int r = mtci_codec_eof(&c);
    if (r != 0 && r != MTC_ERR_FRAME_TRUNCATED) __builtin_trap();
  }
  mtci_codec_free(&c);
  return 0;
}
