/* Fake-TLS: ClientHello digest, server-side checks, ServerHello check, record framing (PROTOCOL.md §5). */
#include "transport/faketls.h"

#include <string.h>

#include "transport/tls_template.h"
#include "bytes.h"

static const uint8_t zeros32[32];

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* ---- ClientHello ----------------------------------------------------- */

int mtci_tls_client_hello(const uint8_t secret16[16], const uint8_t *domain, size_t domain_len,
                          int64_t unix_time, mtc_random_fn rnd, void *rnd_ud,
                          const mtci_tls_hello_hook *hook, uint8_t out[MTCI_TLS_HELLO_LEN]) {
  if (!secret16 || !domain || domain_len == 0 || !rnd || !out) return MTC_ERR_INVALID_ARG;
  mtci_tls_build b = {
      .domain = domain,
      .domain_len = min_sz(domain_len, MTCI_TLS_MAX_DOMAIN),
      .rnd = rnd,
      .rnd_ud = rnd_ud,
      .no_shuffle = hook ? hook->no_shuffle : 0,
      .fixed_key = hook ? hook->key : NULL,
  };
  int rc = rnd(rnd_ud, b.greases, MTCI_TLS_GREASE_COUNT);
  if (rc < 0) return rc;
  mtci_tls_grease_derive(b.greases);
  size_t n = 0;
  rc = mtci_tls_template_run(mtci_tls_chrome_template, &b, out, MTCI_TLS_HELLO_LEN, &n);
  if (rc == 0 && n != MTCI_TLS_HELLO_LEN) rc = MTC_ERR_INTERNAL;
  if (rc < 0) {
    mtci_zeroize(out, MTCI_TLS_HELLO_LEN);
    return rc;
  }
  /* random = HMAC(secret, hello with random zeroed), last word ^= time */
  uint8_t d[32];
  mtci_hmac_sha256(secret16, 16, out, MTCI_TLS_HELLO_LEN, d);
  uint32_t t = (uint32_t)((uint64_t)unix_time & 0xffffffffu);
  for (int i = 0; i < 4; i++) d[28 + i] ^= (uint8_t)(t >> (8 * i));
  memcpy(out + MTCI_TLS_RANDOM_OFFSET, d, 32);
  mtci_zeroize(d, sizeof d);
  return 0;
}

/* ---- ClientHello parsing (server side) ------------------------------- */

struct hello_view {
  const uint8_t *sid;
  size_t sid_len;
  const uint8_t *sni; /* first host_name of server_name, or NULL */
  size_t sni_len;
};

/* Walk a ClientHello record (5-byte header included) far enough to find the
 * session_id and the SNI host name. Every length is checked against its
 * enclosing one. */
static int parse_hello(const uint8_t *rec, size_t len, struct hello_view *v) {
  memset(v, 0, sizeof *v);
  if (len < 9 || rec[5] != 0x01) return MTC_ERR_TLS_MALFORMED;
  size_t hl = (size_t)rec[6] << 16 | (size_t)rec[7] << 8 | rec[8];
  size_t p = 9;
  if (hl > len - p) return MTC_ERR_TLS_MALFORMED;
  size_t end = p + hl;
  if (end - p < 2 + 32 + 1) return MTC_ERR_TLS_MALFORMED; /* version, random, sid length */
  p += 34;
  size_t sid_len = rec[p++];
  if (sid_len > 32 || sid_len > end - p) return MTC_ERR_TLS_MALFORMED;
  v->sid = rec + p;
  v->sid_len = sid_len;
  p += sid_len;
  if (end - p < 2) return MTC_ERR_TLS_MALFORMED;
  size_t cs = mtci_be16(rec + p);
  p += 2;
  if (cs > end - p) return MTC_ERR_TLS_MALFORMED;
  p += cs;
  if (end - p < 1) return MTC_ERR_TLS_MALFORMED;
  size_t comp = rec[p++];
  if (comp > end - p) return MTC_ERR_TLS_MALFORMED;
  p += comp;
  if (p == end) return 0; /* no extensions */
  if (end - p < 2) return MTC_ERR_TLS_MALFORMED;
  size_t el = mtci_be16(rec + p);
  p += 2;
  if (el > end - p) return MTC_ERR_TLS_MALFORMED;
  end = p + el;
  while (end - p >= 4) {
    size_t type = mtci_be16(rec + p), n = mtci_be16(rec + p + 2);
    p += 4;
    if (n > end - p) return MTC_ERR_TLS_MALFORMED;
    if (type == 0x0000 && !v->sni) {
      /* server_name: list length, then (type, length, name) entries */
      size_t q = p, qend;
      if (n < 2 || mtci_be16(rec + q) > n - 2) return MTC_ERR_TLS_MALFORMED;
      qend = q + 2 + mtci_be16(rec + q);
      q += 2;
      while (qend - q >= 3) {
        size_t nt = rec[q], nl = mtci_be16(rec + q + 1);
        q += 3;
        if (nl > qend - q) return MTC_ERR_TLS_MALFORMED;
        if (nt == 0) {
          v->sni = rec + q;
          v->sni_len = nl;
          break;
        }
        q += nl;
      }
    }
    p += n;
  }
  return 0;
}

int mtci_tls_client_hello_size(const uint8_t *d, size_t n) {
  static const uint8_t prefix[3] = {0x16, 0x03, 0x01};
  if (!d && n) return MTC_ERR_INVALID_ARG;
  if (memcmp(d ? d : prefix, prefix, min_sz(n, 3)) != 0) return MTC_ERR_TLS_NOT_HELLO;
  if (n < 5) return 0;
  size_t l = mtci_be16(d + 3);
  if (l < 512) return MTC_ERR_TLS_NOT_HELLO;
  if (l > MTCI_TLS_MAX_RECORD) return MTC_ERR_TLS_RECORD_TOO_LONG;
  return (int)(5 + l);
}

int mtci_tls_server_check_hello(const uint8_t *rec, size_t len, const uint8_t secret16[16],
                                const uint8_t *domain, size_t domain_len, int64_t now,
                                unsigned flags, uint32_t *timestamp) {
  if (!rec || !secret16 || (!domain && domain_len)) return MTC_ERR_INVALID_ARG;
  int size = mtci_tls_client_hello_size(rec, len);
  if (size < 0) return size;
  if (size == 0 || len < (size_t)size) return MTC_ERR_TLS_TRUNCATED;
  if (len > (size_t)size) return MTC_ERR_TLS_MALFORMED;

  uint8_t h[32];
  mtci_hmac_sha256_ctx mac;
  mtci_hmac_sha256_init(&mac, secret16, 16);
  mtci_hmac_sha256_update(&mac, rec, MTCI_TLS_RANDOM_OFFSET);
  mtci_hmac_sha256_update(&mac, zeros32, 32);
  mtci_hmac_sha256_update(&mac, rec + MTCI_TLS_RANDOM_OFFSET + 32,
                          len - MTCI_TLS_RANDOM_OFFSET - 32);
  mtci_hmac_sha256_final(&mac, h);
  for (int i = 0; i < 32; i++) h[i] ^= rec[MTCI_TLS_RANDOM_OFFSET + i];
  int ok = mtci_ct_equal(h, zeros32, 28);
  uint32_t ts = mtci_le32(h + 28);
  mtci_zeroize(h, sizeof h);
  if (!ok) return MTC_ERR_TLS_BAD_DIGEST;
  if (timestamp) *timestamp = ts;

  /* the client may be up to 20 min ahead or 10 min behind; small values
   * are "time since boot" clients (mtprotoproxy) */
  int64_t skew = now - (int64_t)ts;
  if (!(flags & MTCI_TLS_IGNORE_TIME_SKEW) && ts >= 86400000u && !(skew > -1200 && skew < 600))
    return MTC_ERR_TLS_TIME_SKEW;

  if (domain) {
    struct hello_view v;
    int rc = parse_hello(rec, len, &v);
    if (rc < 0) return rc;
    size_t dl = min_sz(domain_len, MTCI_TLS_MAX_DOMAIN);
    if (!v.sni || v.sni_len != dl || memcmp(v.sni, domain, dl) != 0) return MTC_ERR_TLS_BAD_SNI;
  }
  return 0;
}

/*
 * mtprotoproxy's reply:
 *   16 03 03 <len16> 02 <len24> 03 03 <random 32> <sid_len> <sid> 13 01 00
 *     00 2e  00 33 00 24 00 1d 00 20 <x25519 key 32>  00 2b 00 02 03 04
 *   14 03 03 00 01 01
 *   17 03 03 <len16> <cert_len random bytes>
 */
int mtci_tls_server_hello(const uint8_t secret16[16], const uint8_t *hello, size_t hello_len,
                          size_t cert_len, mtc_random_fn rnd, void *rnd_ud, uint8_t *out,
                          size_t cap, size_t *out_len) {
  if (!secret16 || !hello || !rnd || !out || !out_len || cert_len > MTCI_TLS_MAX_RECORD)
    return MTC_ERR_INVALID_ARG;
  struct hello_view v;
  if (hello_len < MTCI_TLS_RANDOM_OFFSET + 32) return MTC_ERR_TLS_MALFORMED;
  int rc = parse_hello(hello, hello_len, &v);
  if (rc < 0) return rc;
  size_t body = 2 + 32 + 1 + v.sid_len + 3 + 2 + 46;
  size_t total = 5 + 4 + body + 6 + 5 + cert_len;
  if (cap < total) return MTC_ERR_BUFFER_TOO_SMALL;

  uint8_t *p = out;
  size_t rl = 4 + body;
  *p++ = 0x16, *p++ = 0x03, *p++ = 0x03, *p++ = (uint8_t)(rl >> 8), *p++ = (uint8_t)rl;
  *p++ = 0x02, *p++ = 0x00, *p++ = (uint8_t)(body >> 8), *p++ = (uint8_t)body;
  *p++ = 0x03, *p++ = 0x03;
  memset(p, 0, 32), p += 32;
  *p++ = (uint8_t)v.sid_len;
  memcpy(p, v.sid, v.sid_len), p += v.sid_len;
  static const uint8_t mid[] = {0x13, 0x01, 0x00, 0x00, 0x2e, 0x00, 0x33, 0x00,
                                0x24, 0x00, 0x1d, 0x00, 0x20};
  memcpy(p, mid, sizeof mid), p += sizeof mid;
  rc = mtci_x25519_public_key(rnd, rnd_ud, p);
  if (rc < 0) return rc;
  p += 32;
  static const uint8_t tail[] = {0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
                                 0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03};
  memcpy(p, tail, sizeof tail), p += sizeof tail;
  *p++ = (uint8_t)(cert_len >> 8), *p++ = (uint8_t)cert_len;
  if (cert_len) {
    rc = rnd(rnd_ud, p, cert_len);
    if (rc < 0) return rc;
    p += cert_len;
  }
  if ((size_t)(p - out) != total) return MTC_ERR_INTERNAL;

  mtci_hmac_sha256_ctx mac;
  mtci_hmac_sha256_init(&mac, secret16, 16);
  mtci_hmac_sha256_update(&mac, hello + MTCI_TLS_RANDOM_OFFSET, 32);
  mtci_hmac_sha256_update(&mac, out, total);
  mtci_hmac_sha256_final(&mac, out + MTCI_TLS_RANDOM_OFFSET);
  *out_len = total;
  return 0;
}

/* ---- ServerHello check ------------------------------------------------ */

enum { SH_FIRST, SH_MORE, SH_APP, SH_DONE };
enum { REC_HANDSHAKE = 1, REC_CCS, REC_APP };

void mtci_tls_sh_init(mtci_tls_sh *s, const uint8_t secret16[16],
                      const uint8_t client_random[32]) {
  memset(s, 0, sizeof *s);
  mtci_hmac_sha256_init(&s->mac, secret16, 16);
  mtci_hmac_sha256_update(&s->mac, client_random, 32);
  s->state = SH_FIRST;
}

/* MAC the next n bytes of R; R[11:43] is saved and counted as zeros. */
static void sh_mac(mtci_tls_sh *s, const uint8_t *p, size_t n) {
  const size_t lo = MTCI_TLS_RANDOM_OFFSET, hi = MTCI_TLS_RANDOM_OFFSET + 32;
  while (n) {
    size_t pos = s->total, take;
    if (pos < lo) {
      take = min_sz(n, lo - pos);
      mtci_hmac_sha256_update(&s->mac, p, take);
    } else if (pos < hi) {
      take = min_sz(n, hi - pos);
      memcpy(s->digest + (pos - lo), p, take);
      mtci_hmac_sha256_update(&s->mac, zeros32, take);
    } else {
      take = n;
      mtci_hmac_sha256_update(&s->mac, p, take);
    }
    p += take;
    n -= take;
    s->total += take;
  }
}

/* A complete 5-byte header: is this record allowed here? */
static int sh_header(mtci_tls_sh *s) {
  const uint8_t *h = s->hdr;
  size_t l = mtci_be16(h + 3);
  int v12 = h[1] == 0x03 && h[2] == 0x03;
  if (s->state == SH_MORE && h[0] == 0x14 && v12) {
    if (l != 1) return MTC_ERR_TLS_BAD_RECORD;
    s->kind = REC_CCS;
  } else if ((s->state == SH_FIRST || s->state == SH_MORE) && h[0] == 0x16 && v12) {
    if (s->handshakes >= MTCI_TLS_MAX_HANDSHAKE_RECORDS) return MTC_ERR_TLS_BAD_RECORD;
    if (l > MTCI_TLS_MAX_RECORD) return MTC_ERR_TLS_RECORD_TOO_LONG;
    /* the first record must hold the whole server random R[11:43] */
    if (s->state == SH_FIRST && l < MTCI_TLS_RANDOM_OFFSET + 32 - 5) return MTC_ERR_TLS_MALFORMED;
    s->handshakes++;
    s->kind = REC_HANDSHAKE;
  } else if (s->state == SH_APP && h[0] == 0x17 && v12) {
    if (l > MTCI_TLS_MAX_RECORD) return MTC_ERR_TLS_RECORD_TOO_LONG;
    s->kind = REC_APP;
  } else {
    return MTC_ERR_TLS_BAD_RECORD;
  }
  s->left = l;
  return 0;
}

/* The current record is complete: 1 if that finished the response. */
static int sh_record_done(mtci_tls_sh *s) {
  s->hdr_len = 0;
  switch (s->kind) {
  case REC_HANDSHAKE: s->state = SH_MORE; return 0;
  case REC_CCS: s->state = SH_APP; return 0;
  default: break;
  }
  uint8_t h[32];
  mtci_hmac_sha256_final(&s->mac, h);
  int ok = mtci_ct_equal(h, s->digest, 32);
  mtci_zeroize(h, sizeof h);
  if (!ok) return MTC_ERR_TLS_BAD_DIGEST;
  s->state = SH_DONE;
  return 1;
}

int mtci_tls_sh_feed(mtci_tls_sh *s, const uint8_t *d, size_t len, size_t *consumed) {
  if (!s || !consumed || (!d && len)) return MTC_ERR_INVALID_ARG;
  *consumed = 0;
  if (s->err) return s->err;
  if (s->state == SH_DONE) return 1;
  size_t i = 0;
  int rc = 0;
  while (i < len) {
    if (s->hdr_len < 5) {
      size_t take = min_sz(5u - s->hdr_len, len - i);
      memcpy(s->hdr + s->hdr_len, d + i, take);
      sh_mac(s, d + i, take);
      s->hdr_len = (uint8_t)(s->hdr_len + take);
      i += take;
      if (s->hdr_len < 5) break;
      rc = sh_header(s);
      if (rc == 0 && s->left == 0) rc = sh_record_done(s);
    } else {
      size_t take = min_sz(s->left, len - i);
      if (s->kind == REC_CCS && d[i] != 0x01) {
        rc = MTC_ERR_TLS_BAD_RECORD;
        break;
      }
      sh_mac(s, d + i, take);
      s->left -= take;
      i += take;
      if (s->left == 0) rc = sh_record_done(s);
    }
    if (rc != 0) break;
  }
  if (rc < 0) {
    s->err = rc;
    mtci_zeroize(&s->mac, sizeof s->mac);
    return rc;
  }
  *consumed = i;
  return rc;
}

int mtci_tls_sh_eof(const mtci_tls_sh *s) {
  if (s->err) return s->err;
  return s->state == SH_DONE ? 0 : MTC_ERR_TLS_TRUNCATED;
}

void mtci_tls_sh_free(mtci_tls_sh *s) {
  if (s) mtci_zeroize(s, sizeof *s);
}

/* ---- record framing --------------------------------------------------- */

static const uint8_t ccs_record[6] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01};

void mtci_tls_writer_init(mtci_tls_writer *w, int server_side) {
  w->max_payload = server_side ? MTCI_TLS_SERVER_MAX_PAYLOAD : MTCI_TLS_CLIENT_MAX_PAYLOAD;
  w->ccs_pending = !server_side;
}

size_t mtci_tls_writer_size(const mtci_tls_writer *w, size_t len) {
  if (len == 0) return 0;
  if (len > (size_t)-1 / 2) return (size_t)-1;
  size_t records = len / w->max_payload + (len % w->max_payload != 0);
  return len + 5 * records + (w->ccs_pending ? sizeof ccs_record : 0);
}

int mtci_tls_writer_emit(mtci_tls_writer *w, const uint8_t *in, size_t len, uint8_t *out,
                         size_t cap, size_t *out_len) {
  if (!w || !out_len || (!in && len) || (!out && cap) || w->max_payload == 0 ||
      w->max_payload > 0xffff)
    return MTC_ERR_INVALID_ARG;
  *out_len = 0;
  size_t need = mtci_tls_writer_size(w, len);
  if (need > cap) return MTC_ERR_BUFFER_TOO_SMALL;
  if (len == 0) return 0;
  size_t o = 0;
  if (w->ccs_pending) {
    memcpy(out, ccs_record, sizeof ccs_record);
    o = sizeof ccs_record;
    w->ccs_pending = 0;
  }
  while (len) {
    size_t n = min_sz(len, w->max_payload);
    out[o] = 0x17, out[o + 1] = 0x03, out[o + 2] = 0x03;
    out[o + 3] = (uint8_t)(n >> 8), out[o + 4] = (uint8_t)n;
    memcpy(out + o + 5, in, n);
    o += 5 + n;
    in += n;
    len -= n;
  }
  *out_len = o;
  return 0;
}

void mtci_tls_reader_init(mtci_tls_reader *r) { memset(r, 0, sizeof *r); }

int mtci_tls_reader_feed(mtci_tls_reader *r, const uint8_t *in, size_t len, uint8_t *out,
                         size_t *out_len) {
  if (!r || !out_len || (!in && len) || (!out && len)) return MTC_ERR_INVALID_ARG;
  *out_len = 0;
  if (r->err) return r->err;
  size_t i = 0, o = 0;
  while (i < len) {
    if (r->hdr_len < 5) {
      size_t take = min_sz(5u - r->hdr_len, len - i);
      memcpy(r->hdr + r->hdr_len, in + i, take);
      r->hdr_len = (uint8_t)(r->hdr_len + take);
      i += take;
      if (r->hdr_len < 5) break;
      const uint8_t *h = r->hdr;
      size_t l = mtci_be16(h + 3);
      int v12 = h[1] == 0x03 && h[2] == 0x03;
      if (h[0] == 0x17 && v12) {
        if (l > MTCI_TLS_MAX_RECORD) r->err = MTC_ERR_TLS_RECORD_TOO_LONG;
        r->ccs = 0;
      } else if (h[0] == 0x14 && v12 && l == 1) {
        r->ccs = 1;
      } else {
        r->err = MTC_ERR_TLS_BAD_RECORD;
      }
      if (r->err) break;
      r->left = l;
      if (l == 0) r->hdr_len = 0; /* empty record: skipped */
      continue;
    }
    size_t take = min_sz(r->left, len - i);
    if (r->ccs) {
      if (in[i] != 0x01) {
        r->err = MTC_ERR_TLS_BAD_RECORD;
        break;
      }
    } else {
      memmove(out + o, in + i, take); /* o <= i: safe in place */
      o += take;
    }
    i += take;
    r->left -= take;
    if (r->left == 0) r->hdr_len = 0;
  }
  *out_len = o;
  return r->err;
}

int mtci_tls_reader_eof(const mtci_tls_reader *r) {
  if (r->err) return r->err;
  return r->hdr_len ? MTC_ERR_TLS_TRUNCATED : 0;
}
