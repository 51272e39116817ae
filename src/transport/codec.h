/*
 * MTProto framing codecs (https://core.telegram.org/mtproto/mtproto-transports,
 * PROTOCOL.md §4.1, §6.10): abridged, intermediate, padded intermediate and
 * full. Pure code: bytes in, bytes and events out. One mtci_codec per TCP
 * connection and role; it sits under the session (or the handshake) and above
 * obfuscation / fake-TLS, which see the framed bytes only.
 *
 * Wire formats, client -> server (LE = little-endian; "qa" = quick-ack request):
 *
 *   abridged      [ef]? [n | qa<<7] payload                   n = len/4 < 0x7f
 *                 [ef]? [7f | qa<<7] [n0 n1 n2] payload       n = len/4 >= 0x7f (3 bytes LE)
 *   intermediate  [ee ee ee ee]? [len | qa<<31 : LE4] payload
 *   padded        [dd dd dd dd]? [(len+pad) | qa<<31 : LE4] payload [pad random bytes]
 *                 pad = 0..15, drawn from the random callback
 *   full          [len+12 : LE4] [seqno : LE4] payload [crc32 : LE4]
 *                 seqno counts this direction's frames from 0; crc32 (zlib)
 *                 covers the length word, the seqno and the payload. No tag,
 *                 no quick ack (the spec defines none for this transport).
 *
 * The tag ([..]?) precedes only the first frame of a plain connection. When
 * the connection is obfuscated the tag goes into the 64-byte obfuscation
 * header instead (4 bytes at offset 56, abridged padded to ef ef ef ef: see
 * mtci_codec_tag) and the codec must not emit it (no MTCI_CODEC_F_TAG).
 *
 * Server -> client, as the client decoder reads it:
 *
 *   frames        the same envelopes without tag and without the qa bit
 *   quick ack     abridged: the 4 token bytes byte-swapped, no header: the
 *                   first byte has bit 7 set, which no length byte has;
 *                 intermediate / padded: the LE token word in place of a
 *                   length word (bit 31 set: no valid length) (tdlib);
 *                 any codec: a short frame whose payload is
 *                   [ff ff ff ff] [token : LE4] [0..8 padding]  (spec, padded)
 *   transport     a short frame whose payload is [code : LE4, signed],
 *   error         e.g. -404 auth key not found, -429 flood, -444 invalid DC
 *
 *   "Short frame" = payload shorter than MTCI_CODEC_MIN_MESSAGE (20) bytes.
 *   No MTProto message is that small (an unencrypted one has a 20-byte header
 *   and a non-empty body, an encrypted one 24 + 16k bytes), and a padded
 *   error or quick ack stays below it (4 + 15 padding). Like tdlib
 *   (Transport::read): first word -1 and >= 8 bytes -> quick ack, else the
 *   first word is a transport error code (0 and positive values included:
 *   none of them is a valid message; the caller drops the connection).
 *
 * The token is reported in the same form the client computed it on send:
 * uint32 = LE(msg_key_large[0:4]) | 0x80000000 (PROTOCOL.md §6.5).
 *
 * Receiving is incremental: mtci_codec_feed() takes any split of the stream
 * (one byte at a time or many frames at once) and yields the same events.
 * Framing errors are sticky: once feed() failed the connection must be
 * dropped, every later call returns the same code.
 *
 * Memory: the codec allocates only its receive buffer, which holds the part
 * of the current frame received so far when a frame arrives split across
 * feed() calls. It grows with the bytes that actually arrived (doubling from
 * 4 KiB, never past the frame's length), never from the announced length
 * alone, and a buffer above 64 KiB is released after its frame. A frame that
 * arrives whole inside one feed() call is not copied at all.
 *
 * Server role (MTCI_CODEC_F_SERVER, for the mock DC and tests): the decoder
 * reads client frames (reporting the quick-ack request bit, expecting the tag
 * if MTCI_CODEC_F_TAG), the encoder writes server frames and quick acks.
 */
#ifndef MTCI_TRANSPORT_CODEC_H
#define MTCI_TRANSPORT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

typedef enum mtci_codec_kind {
  MTCI_CODEC_ABRIDGED = 1,     /* tag 0xef */
  MTCI_CODEC_INTERMEDIATE = 2, /* tag 0xeeeeeeee */
  MTCI_CODEC_PADDED = 3,       /* tag 0xdddddddd, 0..15 random padding bytes */
  MTCI_CODEC_FULL = 4          /* no tag; length + seqno + crc32 */
} mtci_codec_kind;

enum {
  /* Client: put the tag in front of the first encoded frame. Server: expect
   * it at the start of the received stream (MTC_ERR_FRAME_TAG otherwise).
   * Leave it out on obfuscated connections. No effect for the full codec. */
  MTCI_CODEC_F_TAG = 1u << 0,
  /* Server role: decode client frames, encode server frames (see above). */
  MTCI_CODEC_F_SERVER = 1u << 1
};

#define MTCI_CODEC_MAX_PAYLOAD (16u * 1024u * 1024u) /* largest payload either way */
#define MTCI_CODEC_MAX_HEADROOM 8u  /* largest mtci_codec_header_size() */
#define MTCI_CODEC_MAX_TAILROOM 15u /* largest mtci_codec_tailroom() */
#define MTCI_CODEC_MIN_MESSAGE 20u  /* payloads below this are service frames */

typedef enum mtci_frame_type {
  MTCI_FRAME_DATA = 1,           /* data/len: a payload (padded: + its padding) */
  MTCI_FRAME_QUICK_ACK = 2,      /* quick_ack: the token, as computed on send */
  MTCI_FRAME_TRANSPORT_ERROR = 3 /* error_code: the server's code, e.g. -404 */
} mtci_frame_type;

/* One receive event. `data` is borrowed: it points into the bytes given to
 * the feed() call that returned the event or into the codec's buffer, and is
 * valid until the next feed()/free() on this codec while those bytes live. */
typedef struct mtci_frame {
  mtci_frame_type type;
  const uint8_t *data;
  size_t len;
  uint32_t quick_ack; /* QUICK_ACK: the token (bit 31 set when well formed) */
  int32_t error_code; /* TRANSPORT_ERROR: the signed code from the wire */
  int ack_requested;  /* server role, DATA: the client asked for a quick ack */
} mtci_frame;

/* The length word of an intermediate or padded frame (quick-ack bit
 * cleared): 0 if the codec accepts it, else MTC_ERR_FRAME_LENGTH (0, not a
 * multiple of 4 for intermediate, under 4 for padded) or
 * MTC_ERR_FRAME_TOO_LARGE. Other kinds: 0. */
int mtci_codec_check_len(mtci_codec_kind kind, uint32_t w);

/* Caller-allocated; all fields are private to codec.c. */
typedef struct mtci_codec {
  mtci_codec_kind kind;
  unsigned flags;
  mtc_random_fn rnd;
  void *rnd_ud;
  /* send side */
  int tag_pending;    /* client: the tag goes in front of the next frame */
  uint32_t tx_seqno;  /* full: seqno of the next frame sent */
  /* receive side */
  int err;            /* sticky receive error, 0 while healthy */
  int rx_state;       /* tag, header or body of the current frame */
  uint8_t hdr[4];     /* tag or header bytes received so far */
  size_t hdr_have, hdr_need;
  size_t body_len;    /* bytes after the header: payload (+ padding, seqno, crc) */
  size_t body_have;   /* of which already in buf */
  int ack_req;        /* server: the current frame requested a quick ack */
  uint32_t rx_seqno;  /* full: seqno expected next */
  uint8_t *buf;       /* partial frame body; NULL when nothing is buffered */
  size_t buf_cap;
  int release_buf;    /* free buf at the next feed(): the last event used it */
} mtci_codec;

/* Sets up a codec. rnd is required for the padded codec (padding length and
 * bytes) and may be NULL otherwise. Returns 0 or MTC_ERR_INVALID_ARG (unknown
 * kind or flags, padded without rnd). Allocates nothing. */
int mtci_codec_init(mtci_codec *c, mtci_codec_kind kind, unsigned flags, mtc_random_fn rnd,
                    void *rnd_ud);
/* Releases the receive buffer unless it holds part of a frame (an idle
 * connection need not keep up to 64 KiB). Ends the validity of the last
 * event's data. Safe on a zeroed codec. */
void mtci_codec_trim(mtci_codec *c);

/* Releases the receive buffer. Safe on a zeroed or already-freed codec. */
void mtci_codec_free(mtci_codec *c);

/* The transport tag. out[0..4) receives the 4-byte form for the obfuscation
 * header (ef ef ef ef, ee ee ee ee, dd dd dd dd; zeros for full); returns the
 * length of the tag sent on a plain connection (1, 4, 4, 0), or
 * MTC_ERR_INVALID_ARG for an unknown kind. */
int mtci_codec_tag(mtci_codec_kind kind, uint8_t out[4]);

/* Server side: which codec a client stream starts with. p[0..n) are the first
 * bytes received. Returns 1 and sets *kind when decided, 0 when more bytes are
 * needed (n < 4 and the bytes so far are ee.. or dd..). A stream that starts
 * with none of the tags is the full codec (its first length word is a
 * multiple of 4, so it never starts with ef, ee ee ee ee or dd dd dd dd). */
int mtci_codec_detect(const uint8_t *p, size_t n, mtci_codec_kind *kind);

/* Largest header encode() writes in front of the payload, tag included
 * (abridged 5, intermediate 8, padded 8, full 8); 0 for an unknown kind. */
size_t mtci_codec_header_size(mtci_codec_kind kind);
/* Bytes encode() may write after the payload (padded 15, full 4, others 0). */
size_t mtci_codec_tailroom(mtci_codec_kind kind);
/* 1 if the codec can carry a quick-ack request (all but full). */
int mtci_codec_has_quick_ack(mtci_codec_kind kind);

/* Frames one payload in place, without moving it:
 *
 *   buf: [ .... headroom .... | payload (payload_len) | tailroom ... ] buf_len
 *                   [ header  | payload               | trailer ]
 *                   ^ *frame_off                         *frame_len bytes
 *
 * The payload sits at buf[headroom]; the header is written just in front of
 * it and the padding (padded) or crc (full) just behind it. headroom must be
 * at least the header this frame needs (mtci_codec_header_size() always
 * suffices) and buf_len - headroom - payload_len at least
 * mtci_codec_tailroom(), else MTC_ERR_BUFFER_TOO_SMALL. payload_len must be a
 * non-zero multiple of 4 (MTC_ERR_FRAME_LENGTH; every MTProto payload is) and
 * at most MTCI_CODEC_MAX_PAYLOAD (MTC_ERR_FRAME_TOO_LARGE). quick_ack = 1 sets
 * the request bit: MTC_ERR_UNSUPPORTED for the full codec (the spec defines
 * no request there, and silently dropping it would leave the caller waiting
 * for a token), MTC_ERR_INVALID_ARG in the server role. A failing random
 * callback returns its code. On any error nothing is consumed: the tag is
 * still pending and the seqno unchanged. */
int mtci_codec_encode(mtci_codec *c, uint8_t *buf, size_t buf_len, size_t headroom,
                      size_t payload_len, int quick_ack, size_t *frame_off, size_t *frame_len);

/* Server role: writes the quick-ack packet for `token` to out (abridged: the
 * token bytes swapped; intermediate and padded: the LE token word in place of
 * a length, as tdlib reads it). Returns the byte count (4),
 * MTC_ERR_BUFFER_TOO_SMALL, or MTC_ERR_UNSUPPORTED (full codec, client role).
 * The spec's padded form (a frame with ff ff ff ff + token) is an ordinary
 * encode() of that 8-byte payload. */
int mtci_codec_encode_quick_ack(mtci_codec *c, uint32_t token, uint8_t *out, size_t cap);

/* Consumes data[0..len) until one event is complete or the data is used up.
 * Returns 1 with *ev filled, 0 when all len bytes were consumed without
 * completing an event, or a negative sticky error:
 *   MTC_ERR_FRAME_LENGTH     zero length, not a multiple of 4 (abridged,
 *                            intermediate, full), full length below 16,
 *                            a padded frame below 4 bytes
 *   MTC_ERR_FRAME_TOO_LARGE  payload above MTCI_CODEC_MAX_PAYLOAD (padded:
 *                            above it + 15)
 *   MTC_ERR_FRAME_CRC        full: crc32 mismatch
 *   MTC_ERR_FRAME_SEQNO      full: seqno is not the expected one
 *   MTC_ERR_FRAME_TAG        server role with MTCI_CODEC_F_TAG: wrong tag
 *   MTC_ERR_NOMEM            the receive buffer could not grow
 * *consumed is always set (0 after an error). Typical loop:
 *   while (len) { r = feed(c, p, len, &used, &ev); if (r < 0) drop;
 *                 p += used; len -= used; if (r) handle(&ev); } */
int mtci_codec_feed(mtci_codec *c, const uint8_t *data, size_t len, size_t *consumed,
                    mtci_frame *ev);

/* At end of stream: 0 if it ended between frames, MTC_ERR_FRAME_TRUNCATED if
 * it ended inside one, or the sticky error. */
int mtci_codec_eof(const mtci_codec *c);

/* The MTProto payload inside a padded-intermediate DATA frame (PROTOCOL.md
 * §4.1; the codec alone cannot know where the padding starts):
 *   auth_key_id != 0 (encrypted):   24 + floor((len - 24) / 16) * 16
 *   auth_key_id == 0 (unencrypted): 20 + message_data_length (LE32 at 16)
 * Sets *payload_len and returns 0, or MTC_ERR_FRAME_LENGTH when len < 24, or
 * the unencrypted length exceeds the frame or leaves more than 15 bytes. */
int mtci_padded_payload_len(const uint8_t *frame, size_t len, size_t *payload_len);

/* Maps a transport error code from the wire to a connection error:
 * -404 -> MTC_ERR_TRANSPORT_AUTH_KEY, -429 -> MTC_ERR_TRANSPORT_FLOOD,
 * -444 -> MTC_ERR_TRANSPORT_BAD_DC, anything else -> MTC_ERR_TRANSPORT_ERROR. */
int mtci_transport_error(int32_t code);

#endif /* MTCI_TRANSPORT_CODEC_H */
