/*
 * Hand-written MTProto service constructors that no schema line describes
 * (shared/tl/README.md, PROTOCOL.md §6.6-6.7):
 *
 *   msg_container#73f1f8dc messages:vector<%Message>   (bare vector, no Vector id)
 *     message = msg_id:long seqno:int bytes:int body:Object
 *   rpc_result#f35c6d01 req_msg_id:long result:Object
 *   rpc_error#2144ca19 error_code:int error_message:string
 *   gzip_packed#3072cfa1 packed_data:bytes   (a gzip stream of one object)
 *
 * Parsers take the whole object, constructor id included, and hand out views
 * into it (no copies) except for inflated gzip data, which is owned.
 */
#ifndef MTCI_TL_SPECIAL_H
#define MTCI_TL_SPECIAL_H

#include <stddef.h>
#include <stdint.h>

#include "tl/tl.h"

#define MTCI_TL_MSG_CONTAINER_ID 0x73f1f8dcu
#define MTCI_TL_RPC_RESULT_ID 0xf35c6d01u
#define MTCI_TL_RPC_ERROR_ID 0x2144ca19u
#define MTCI_TL_GZIP_PACKED_ID 0x3072cfa1u

/* Limits when sending a container (PROTOCOL.md §6.7); received containers
 * are bounded only by their own length. */
#define MTCI_TL_CONTAINER_MAX_MSGS 1020u
#define MTCI_TL_CONTAINER_MAX_BYTES (1u << 15) /* whole container, id included */
#define MTCI_TL_CONTAINER_HEADER 8u            /* constructor + count */
#define MTCI_TL_CONTAINER_MSG_HEADER 16u       /* msg_id + seqno + bytes */

/* Default cap on inflated gzip_packed output. */
#define MTCI_TL_GZIP_DEFAULT_CAP (16u * 1024u * 1024u)

/* ---- msg_container ------------------------------------------------------ */

typedef struct mtci_tl_message {
  int64_t msg_id;
  int32_t seqno;
  const uint8_t *body; /* view: the inner object, constructor id first */
  size_t body_len;     /* a multiple of 4, >= 4 */
} mtci_tl_message;

typedef struct mtci_tl_container {
  mtci_tl_reader r; /* positioned at the next message */
  uint32_t count;   /* messages in the container */
  uint32_t index;   /* messages handed out so far */
} mtci_tl_container;

/*
 * Validates a whole msg_container before anything is handed out, so a
 * malformed container is rejected as a unit. Checks, in wire order:
 *   constructor (MTC_ERR_TL_CONSTRUCTOR); count fits the data at 20 bytes per
 *   message (MTC_ERR_TL_TOO_LONG); each message header and body present
 *   (MTC_ERR_TL_TRUNCATED); body length a multiple of 4 and >= 4
 *   (MTC_ERR_TL_BAD_VALUE); a body that is itself a msg_container
 *   (MTC_ERR_TL_BAD_VALUE); bytes after the last message
 *   (MTC_ERR_TL_TRAILING).
 * msg_id/seqno rules (inner ids below the container's, parity) are the
 * session's to check. Returns 0 and fills c, or a negative error.
 */
int mtci_tl_container_parse(mtci_tl_container *c, const uint8_t *obj, size_t len);
/* The next message: 1 and *m filled, or 0 when all were handed out (a
 * negative error only for a container that parse did not validate). */
int mtci_tl_container_next(mtci_tl_container *c, mtci_tl_message *m);

/*
 * Writes msg_container with msgs[0..n). MTC_ERR_INVALID_ARG (nothing written)
 * when n is 0 or above MTCI_TL_CONTAINER_MAX_MSGS, a body is not a whole
 * object (length a multiple of 4, >= 4), a body is a container, or the result
 * would exceed MTCI_TL_CONTAINER_MAX_BYTES. Otherwise returns w->err.
 */
int mtci_tl_container_write(mtci_tl_writer *w, const mtci_tl_message *msgs, size_t n);

/* ---- rpc_result / rpc_error -------------------------------------------- */

typedef struct mtci_tl_rpc_result {
  int64_t req_msg_id;
  const uint8_t *result; /* view: the result object (may be gzip_packed or rpc_error) */
  size_t result_len;
} mtci_tl_rpc_result;

/* MTC_ERR_TL_CONSTRUCTOR if obj is no rpc_result; MTC_ERR_TL_TRUNCATED when
 * the header or a 4-byte result id is missing; MTC_ERR_TL_BAD_VALUE when the
 * result is not a multiple of 4 bytes. */
int mtci_tl_rpc_result_parse(const uint8_t *obj, size_t len, mtci_tl_rpc_result *out);

#define MTCI_TL_RPC_ERROR_TEXT_MAX 255u

typedef struct mtci_tl_rpc_error {
  int32_t code;          /* e.g. 303, 400, 401, 420 */
  const char *message;   /* view into obj, not NUL-terminated */
  size_t message_len;
  /* NUL-terminated copy of the message, cut at MTCI_TL_RPC_ERROR_TEXT_MAX bytes */
  char text[MTCI_TL_RPC_ERROR_TEXT_MAX + 1];
} mtci_tl_rpc_error;

/* Typical flow: rpc_result_parse -> mtci_tl_unwrap(result) -> this.
 * 1 and *out filled if obj is an rpc_error, 0 if it is some other object
 * (at least 4 bytes), or a negative error for a malformed rpc_error
 * (truncated, bad string, trailing bytes). */
int mtci_tl_rpc_error_parse(const uint8_t *obj, size_t len, mtci_tl_rpc_error *out);

/* For messages like "FLOOD_WAIT_30" or "PHONE_MIGRATE_2": 1 and *value set
 * when the text is prefix followed by 1..9 decimal digits, else 0. */
int mtci_tl_rpc_error_suffix(const mtci_tl_rpc_error *e, const char *prefix, int32_t *value);

/* ---- gzip_packed ---------------------------------------------------------- */

typedef struct mtci_tl_unwrapped {
  const uint8_t *data; /* the object: a view into the input, or into owned */
  size_t len;
  uint8_t *owned;      /* heap buffer holding inflated data, or NULL */
  size_t owned_size;   /* its allocated size (<= the cap) */
} mtci_tl_unwrapped;

/*
 * Inflates a gzip or zlib stream (header auto-detected) into out[0..out_cap).
 * MTC_ERR_GZIP when the stream is corrupt or truncated, has bytes after its
 * end, or would produce more than out_cap bytes (stops at once; the excess
 * is never stored). MTC_ERR_NOMEM if zlib cannot allocate its state.
 */
int mtci_tl_gzip_inflate_into(const uint8_t *src, size_t n, uint8_t *out, size_t out_cap,
                              size_t *out_len);

/*
 * gzip_packed object -> the inflated inner object, in a heap buffer that
 * grows to at most cap bytes (0 = MTCI_TL_GZIP_DEFAULT_CAP). Errors:
 * MTC_ERR_TL_CONSTRUCTOR (not gzip_packed), reader errors for packed_data,
 * MTC_ERR_TL_TRAILING (bytes after packed_data), MTC_ERR_GZIP (inflate
 * failure or over cap), MTC_ERR_TL_TRUNCATED (< 4 bytes inflated),
 * MTC_ERR_TL_BAD_VALUE (not a multiple of 4), MTC_ERR_TL_DEPTH (the inner
 * object is gzip_packed again). On error *out is empty.
 */
int mtci_tl_gzip_unpack(const uint8_t *obj, size_t len, size_t cap, mtci_tl_unwrapped *out);

/* One level of unwrapping: gzip_packed -> mtci_tl_gzip_unpack, anything
 * else -> a view of obj as-is. MTC_ERR_TL_TRUNCATED when len < 4. */
int mtci_tl_unwrap(const uint8_t *obj, size_t len, size_t cap, mtci_tl_unwrapped *out);

/* Zeroizes and frees owned data; safe on an empty or freed struct. */
void mtci_tl_unwrapped_free(mtci_tl_unwrapped *u);

/*
 * Appends gzip_packed#3072cfa1 with obj deflated in gzip format. obj must
 * be a whole object (length a multiple of 4, >= 4, at most
 * 4 * MTCI_TL_MAX_BYTES): MTC_ERR_INVALID_ARG otherwise. MTC_ERR_GZIP if
 * deflate fails, MTC_ERR_TL_TOO_LONG if the packed data exceeds 0xffffff
 * bytes; else returns w->err.
 */
int mtci_tl_gzip_pack(mtci_tl_writer *w, const uint8_t *obj, size_t len);

#endif /* MTCI_TL_SPECIAL_H */
