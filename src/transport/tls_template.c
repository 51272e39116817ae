/* The ClientHello template interpreter and tdlib's Chrome-like template (PROTOCOL.md §5.2-5.3). */
#include "transport/tls_template.h"

#include <string.h>

#include "crypto/crypto.h"

#define S(lit) {MTCI_TLS_OP_BYTES, (uint16_t)(sizeof(lit) - 1), lit}
#define R(num) {MTCI_TLS_OP_RANDOM, num, NULL}
#define Z(num) {MTCI_TLS_OP_ZERO, num, NULL}
#define DOMAIN {MTCI_TLS_OP_DOMAIN, 0, NULL}
#define G(idx) {MTCI_TLS_OP_GREASE, idx, NULL}
#define KEY {MTCI_TLS_OP_KEY, 0, NULL}
#define BEGIN {MTCI_TLS_OP_BEGIN, 0, NULL}
#define END {MTCI_TLS_OP_END, 0, NULL}
#define PERM(num) {MTCI_TLS_OP_PERM, num, NULL}
#define ALT_END {MTCI_TLS_OP_ALT_END, 0, NULL}
#define PERM_END {MTCI_TLS_OP_PERM_END, 0, NULL}
#define PADDING(total) {MTCI_TLS_OP_PADDING, total, NULL}
#define DONE {MTCI_TLS_OP_DONE, 0, NULL}

/*
 * tdlib TlsInit.cpp, non-Darwin branch (@f1917d0d). The three outer length
 * prefixes come out as 0x0200 (record), 0x0001fc (handshake, 3 bytes: 00 +
 * scope) and 0x0193 (extensions) because PADDING always ends the hello at 517.
 */
const mtci_tls_op mtci_tls_chrome_template[] = {
    S("\x16\x03\x01"), BEGIN,         /* record: handshake, legacy version 3.1 */
    S("\x01\x00"), BEGIN,             /* ClientHello, 24-bit length */
    S("\x03\x03"),                    /* client_version TLS 1.2 */
    Z(32),                            /* random: the HMAC digest goes here */
    S("\x20"), R(32),                 /* session_id */
    S("\x00\x20"), G(0),              /* cipher suites, GREASE first */
    S("\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30\xcc\xa9\xcc\xa8\xc0\x13\xc0\x14"
      "\x00\x9c\x00\x9d\x00\x2f\x00\x35"),
    S("\x01\x00"),                    /* compression: null only */
    BEGIN,                            /* extensions */
    G(2), S("\x00\x00"),              /* GREASE extension, empty */
    PERM(15),
      /* server_name: list length, host_name type, name length, name */
      S("\x00\x00"), BEGIN, BEGIN, S("\x00"), BEGIN, DOMAIN, END, END, END, ALT_END,
      S("\x00\x05\x00\x05\x01\x00\x00\x00\x00"), ALT_END,              /* status_request */
      S("\x00\x0a\x00\x0a\x00\x08"), G(4),                             /* supported_groups */
        S("\x00\x1d\x00\x17\x00\x18"), ALT_END,
      S("\x00\x0b\x00\x02\x01\x00"), ALT_END,                          /* ec_point_formats */
      S("\x00\x0d\x00\x12\x00\x10\x04\x03\x08\x04\x04\x01\x05\x03\x08\x05\x05\x01\x08\x06"
        "\x06\x01"), ALT_END,                                          /* signature_algorithms */
      S("\x00\x10\x00\x0e\x00\x0c\x02\x68\x32\x08\x68\x74\x74\x70\x2f\x31\x2e\x31"),
        ALT_END,                                                       /* ALPN h2, http/1.1 */
      S("\x00\x12\x00\x00"), ALT_END,                                  /* signed_certificate_timestamp */
      S("\x00\x17\x00\x00"), ALT_END,                                  /* extended_master_secret */
      S("\x00\x1b\x00\x03\x02\x00\x02"), ALT_END,                      /* compress_certificate */
      S("\x00\x23\x00\x00"), ALT_END,                                  /* session_ticket */
      S("\x00\x2b\x00\x07\x06"), G(6), S("\x03\x04\x03\x03"), ALT_END, /* supported_versions */
      S("\x00\x2d\x00\x02\x01\x01"), ALT_END,                          /* psk_key_exchange_modes */
      S("\x00\x33\x00\x2b\x00\x29"), G(4),                             /* key_share: GREASE group, */
        S("\x00\x01\x00\x00\x1d\x00\x20"), KEY, ALT_END,               /* then x25519 */
      S("\x44\x69\x00\x05\x00\x03\x02\x68\x32"), ALT_END,              /* application_settings h2 */
      S("\xff\x01\x00\x01\x00"), ALT_END,                              /* renegotiation_info */
    PERM_END,
    G(3), S("\x00\x01\x00"),          /* trailing GREASE extension, 1 byte */
    S("\x00\x15"), PADDING(517),      /* padding extension to 517 bytes */
    END, END, END,
    DONE,
};

void mtci_tls_grease_derive(uint8_t g[MTCI_TLS_GREASE_COUNT]) {
  for (int i = 0; i < MTCI_TLS_GREASE_COUNT; i++) g[i] = (uint8_t)((g[i] & 0xf0) + 0x0a);
  for (int i = 1; i < MTCI_TLS_GREASE_COUNT; i += 2)
    if (g[i] == g[i - 1]) g[i] ^= 0x10;
}

struct run {
  const mtci_tls_build *in;
  uint8_t *out;
  size_t cap, pos;
  size_t scope[MTCI_TLS_MAX_SCOPES];
  int depth;
};

/* Append n bytes of p, or n zeros when p is NULL. */
static int put(struct run *r, const void *p, size_t n) {
  if (n > r->cap - r->pos) return MTC_ERR_TLS_HELLO_TOO_LONG;
  if (p) memcpy(r->out + r->pos, p, n);
  else memset(r->out + r->pos, 0, n);
  r->pos += n;
  return 0;
}

/* Index of the ALT_END closing the alternative that starts at i (nested
 * PERM groups skipped), or -1 if the template ends first. */
static long alt_end(const mtci_tls_op *ops, size_t i) {
  int nest = 0;
  for (;; i++) {
    switch (ops[i].kind) {
    case MTCI_TLS_OP_DONE: return -1;
    case MTCI_TLS_OP_PERM: nest++; break;
    case MTCI_TLS_OP_PERM_END:
      if (nest == 0) return -1;
      nest--;
      break;
    case MTCI_TLS_OP_ALT_END:
      if (nest == 0) return (long)i;
      break;
    default: break;
    }
  }
}

static int run_seq(struct run *r, const mtci_tls_op *ops, size_t i, int level, size_t *stop);

static int run_perm(struct run *r, const mtci_tls_op *ops, size_t i, int level, size_t *next) {
  size_t n = ops[i].n, start[MTCI_TLS_MAX_ALTS + 1], order[MTCI_TLS_MAX_ALTS];
  if (n == 0 || n > MTCI_TLS_MAX_ALTS || level >= 4) return MTC_ERR_INTERNAL;
  start[0] = i + 1;
  for (size_t k = 0; k < n; k++) {
    long e = alt_end(ops, start[k]);
    if (e < 0) return MTC_ERR_INTERNAL;
    start[k + 1] = (size_t)e + 1;
    order[k] = k;
  }
  if (ops[start[n]].kind != MTCI_TLS_OP_PERM_END) return MTC_ERR_INTERNAL;
  if (!r->in->no_shuffle) {
    for (size_t k = n - 1; k > 0; k--) { /* Fisher-Yates; modulo bias < 2^-27 */
      uint8_t b[4];
      int rc = r->in->rnd(r->in->rnd_ud, b, 4);
      if (rc < 0) return rc;
      uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24;
      size_t j = u % (uint32_t)(k + 1), t = order[k];
      order[k] = order[j];
      order[j] = t;
    }
  }
  for (size_t k = 0; k < n; k++) {
    size_t stop;
    int rc = run_seq(r, ops, start[order[k]], level + 1, &stop);
    if (rc < 0) return rc;
    if (ops[stop].kind != MTCI_TLS_OP_ALT_END) return MTC_ERR_INTERNAL;
  }
  *next = start[n] + 1;
  return 0;
}

/* Run ops from i up to the next ALT_END or DONE at this level; *stop = its index. */
static int run_seq(struct run *r, const mtci_tls_op *ops, size_t i, int level, size_t *stop) {
  const mtci_tls_build *in = r->in;
  int rc = 0;
  for (;;) {
    const mtci_tls_op *op = &ops[i];
    switch (op->kind) {
    case MTCI_TLS_OP_DONE:
    case MTCI_TLS_OP_ALT_END: *stop = i; return 0;
    case MTCI_TLS_OP_PERM_END: return MTC_ERR_INTERNAL; /* PERM_END without PERM */
    case MTCI_TLS_OP_BYTES: rc = put(r, op->bytes, op->n); break;
    case MTCI_TLS_OP_ZERO: rc = put(r, NULL, op->n); break;
    case MTCI_TLS_OP_RANDOM:
      if (op->n > r->cap - r->pos) return MTC_ERR_TLS_HELLO_TOO_LONG;
      if (op->n) rc = in->rnd(in->rnd_ud, r->out + r->pos, op->n);
      if (rc == 0) r->pos += op->n;
      break;
    case MTCI_TLS_OP_DOMAIN: rc = put(r, in->domain, in->domain_len); break;
    case MTCI_TLS_OP_GREASE: {
      if (op->n >= MTCI_TLS_GREASE_COUNT) return MTC_ERR_INTERNAL;
      uint8_t g[2] = {in->greases[op->n], in->greases[op->n]};
      rc = put(r, g, 2);
      break;
    }
    case MTCI_TLS_OP_KEY: {
      uint8_t k[32];
      if (in->fixed_key) memcpy(k, in->fixed_key, 32);
      else rc = mtci_x25519_public_key(in->rnd, in->rnd_ud, k);
      if (rc == 0) rc = put(r, k, 32);
      break;
    }
    case MTCI_TLS_OP_BEGIN:
      if (r->depth >= MTCI_TLS_MAX_SCOPES) return MTC_ERR_INTERNAL;
      r->scope[r->depth++] = r->pos;
      rc = put(r, NULL, 2);
      break;
    case MTCI_TLS_OP_END: {
      if (r->depth == 0) return MTC_ERR_INTERNAL;
      size_t at = r->scope[--r->depth], len = r->pos - at - 2;
      if (len > 0xffff) return MTC_ERR_INTERNAL;
      r->out[at] = (uint8_t)(len >> 8);
      r->out[at + 1] = (uint8_t)len;
      break;
    }
    case MTCI_TLS_OP_PERM: {
      size_t next;
      rc = run_perm(r, ops, i, level, &next);
      if (rc < 0) return rc;
      i = next;
      continue;
    }
    case MTCI_TLS_OP_PADDING: {
      /* |off| 2-byte length |pad zeros| == target; tdlib wants pad >= 1 */
      size_t target = op->n, off = r->pos;
      if (target > r->cap) return MTC_ERR_INTERNAL;
      if (off + 3 > target) return MTC_ERR_TLS_HELLO_TOO_LONG;
      size_t pad = target - off - 2;
      uint8_t l[2] = {(uint8_t)(pad >> 8), (uint8_t)pad};
      rc = put(r, l, 2);
      if (rc == 0) rc = put(r, NULL, pad);
      break;
    }
    default: return MTC_ERR_INTERNAL;
    }
    if (rc < 0) return rc;
    i++;
  }
}

int mtci_tls_template_run(const mtci_tls_op *ops, const mtci_tls_build *in, uint8_t *out,
                          size_t cap, size_t *out_len) {
  if (!ops || !in || !in->rnd || !out || !out_len || (!in->domain && in->domain_len))
    return MTC_ERR_INVALID_ARG;
  struct run r = {.in = in, .out = out, .cap = cap};
  size_t stop;
  int rc = run_seq(&r, ops, 0, 0, &stop);
  if (rc == 0 && (ops[stop].kind != MTCI_TLS_OP_DONE || r.depth != 0)) rc = MTC_ERR_INTERNAL;
  if (rc < 0) return rc;
  *out_len = r.pos;
  return 0;
}
