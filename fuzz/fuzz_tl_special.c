/*
 * Fuzz target for the TL runtime's hand-written service constructors: the
 * input goes through msg_container parsing (and each body through rpc_result,
 * unwrap and rpc_error), rpc_result parsing, the gzip_packed unwrap with a
 * small cap, and a plain TL bytes walk. Checks the documented invariants:
 * views stay inside the input, inflated data stays under the cap.
 *
 * Seeds in fuzz/corpus/tl_special/: a container of three messages (boolTrue,
 * rpc_result{rpc_error}, rpc_result{gzip_packed}), a bare gzip_packed, an
 * rpc_result carrying gzip_packed, and an rpc_result carrying rpc_error.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tl/special.h"
#include "tl/tl.h"

#define CAP (64u * 1024u)

static int inside(const uint8_t *p, size_t n, const uint8_t *d, size_t len) {
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)d;
  return a >= b && n <= len && a - b <= len - n;
}

static void object(const uint8_t *d, size_t n, int depth) {
  mtci_tl_unwrapped u;
  if (mtci_tl_unwrap(d, n, CAP, &u) == 0) {
    if (u.len < 4) abort();
    if (u.owned && (u.len % 4 != 0 || u.owned_size > CAP || u.len > u.owned_size)) abort();
    if (!u.owned && (u.data != d || u.len != n)) abort(); /* a plain view as-is */
    mtci_tl_rpc_error e;
    if (mtci_tl_rpc_error_parse(u.data, u.len, &e) == 1) {
      if (e.message_len && !inside((const uint8_t *)e.message, e.message_len, u.data, u.len))
        abort();
      int32_t v;
      if (mtci_tl_rpc_error_suffix(&e, "FLOOD_WAIT_", &v) == 1 && v < 0) abort();
    }
    mtci_tl_rpc_result res;
    if (depth == 0 && mtci_tl_rpc_result_parse(u.data, u.len, &res) == 0) {
      if (!inside(res.result, res.result_len, u.data, u.len)) abort();
      object(res.result, res.result_len, depth + 1);
    }
    mtci_tl_unwrapped_free(&u);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  mtci_tl_container c;
  if (mtci_tl_container_parse(&c, d, n) == 0) {
    mtci_tl_message m;
    uint32_t seen = 0;
    while (mtci_tl_container_next(&c, &m) == 1) {
      if (!inside(m.body, m.body_len, d, n) || m.body_len % 4 != 0) abort();
      object(m.body, m.body_len, 0);
      seen++;
    }
    if (seen != c.count) abort();
  }
  object(d, n, 0);

  /* a walk over TL bytes values, checking every view */
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, d, n);
  for (int i = 0; i < 64 && !r.err && mtci_tl_remaining(&r); i++) {
    size_t len;
    const uint8_t *p = mtci_tl_read_bytes(&r, &len);
    if (p && !inside(p, len, d, n)) abort();
    if (!p && (!r.err || len)) abort();
  }
  return 0;
}
