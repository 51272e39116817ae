/*
 * Mock DC: server side of auth key creation. TEST CODE (see mock_auth.h).
 * Written from the protocol description (PROTOCOL.md §6.3), independently of
 * src/auth/handshake.c, so a loopback run checks the two against each other;
 * only primitives (hashes, AES-IGE, modexp, the tmp AES derivation) are
 * shared with the library, and those have their own known-answer tests.
 */
#include "mock_auth.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "tl/tl.h"

#define ID_REQ_PQ 0x60469778u
#define ID_REQ_PQ_MULTI 0xbe7e8ef1u
#define ID_RES_PQ 0x05162463u
#define ID_PQ_INNER 0x83c95aecu
#define ID_PQ_INNER_DC 0xa9f55f95u
#define ID_PQ_INNER_TEMP 0x3c6a84d4u
#define ID_PQ_INNER_TEMP_DC 0x56fddf88u
#define ID_REQ_DH_PARAMS 0xd712e4beu
#define ID_DH_PARAMS_FAIL 0x79cb045du
#define ID_DH_PARAMS_OK 0xd0e8075cu
#define ID_DH_INNER 0xb5890dbau
#define ID_CLIENT_DH_INNER 0x6643b654u
#define ID_SET_CLIENT_DH 0xf5045f1fu
#define ID_DH_GEN_OK 0x3bcbf734u
#define ID_DH_GEN_RETRY 0x46dc1fb9u
#define ID_DH_GEN_FAIL 0xa69dae02u

#define MAX_FPS 8
#define MAX_ENC 1024

/* Telegram's 2048-bit DH prime (official samples-auth_key page; the grammers
 * 2023 trace carries the same one). */
static const char k_prime_hex[] =
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f"
    "48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c37"
    "20fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f64"
    "2477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4"
    "a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754"
    "fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4"
    "e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f"
    "0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b";

enum { S_WAIT_PQ = 0, S_WAIT_DH, S_WAIT_CLIENT_DH, S_DONE };

struct mock_auth_server {
  mbedtls_pk_context pk;
  mtci_rsa_key pub;
  uint64_t fps[MAX_FPS];
  size_t n_fps;
  int32_t clock_offset;
  unsigned faults;
  mtc_random_fn rnd;
  void *rnd_ud;

  int state;
  uint8_t nonce[16], server_nonce[16], new_nonce[32];
  uint32_t p, q;
  uint8_t pq_be[8];
  uint8_t tmp_key[32], tmp_iv[32];
  uint8_t prime[256];
  int32_t g;
  uint8_t a[256], g_a[256];
  int32_t server_time;
  uint8_t prev_aux[8];
  mock_auth_result res;
  int64_t last_msg_id;
};

/* ---- small helpers --------------------------------------------------------- */

static int draw(mock_auth_server *s, void *out, size_t len) {
  if (len == 0) return 0;
  int rc = s->rnd(s->rnd_ud, out, len);
  return rc == 0 ? 0 : (rc < 0 ? rc : MTC_ERR_RANDOM);
}

static int mbed_rng(void *ud, unsigned char *out, size_t len) {
  mock_auth_server *s = ud;
  return draw(s, out, len) == 0 ? 0 : -1;
}

static void unhex(const char *hex, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned v = 0;
    for (int j = 0; j < 2; j++) {
      char c = hex[2 * i + (size_t)j];
      v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    out[i] = (uint8_t)v;
  }
}

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static int64_t as_i64(uint64_t v) {
  int64_t r;
  memcpy(&r, &v, sizeof r);
  return r;
}

/* Deterministic Miller-Rabin, exact for n < 3,215,031,751 with bases 2,3,5,7. */
static uint64_t powmod32(uint64_t b, uint64_t e, uint64_t m) {
  uint64_t r = 1;
  b %= m;
  while (e) {
    if (e & 1) r = r * b % m;
    b = b * b % m;
    e >>= 1;
  }
  return r;
}
static int is_prime32(uint32_t n) {
  if (n < 2) return 0;
  static const uint32_t small[] = {2, 3, 5, 7};
  for (int i = 0; i < 4; i++)
    if (n % small[i] == 0) return n == small[i];
  uint32_t d = n - 1;
  int r = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    r++;
  }
  for (int i = 0; i < 4; i++) {
    uint64_t x = powmod32(small[i], d, n);
    if (x == 1 || x == n - 1) continue;
    int ok = 0;
    for (int j = 1; j < r && !ok; j++) {
      x = x * x % n;
      if (x == n - 1) ok = 1;
    }
    if (!ok) return 0;
  }
  return 1;
}

/* A random prime in [2^30, 2^31), so pq < 2^62 like the real DCs'. */
static int random_prime(mock_auth_server *s, uint32_t *out) {
  for (int tries = 0; tries < 10000; tries++) {
    uint8_t b[4];
    int rc = draw(s, b, sizeof b);
    if (rc) return rc;
    uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    v = (v & 0x3fffffffu) | 0x40000000u | 1u;
    if (is_prime32(v)) {
      *out = v;
      return 0;
    }
  }
  return MTC_ERR_RANDOM;
}

static size_t be_min32(uint32_t v, uint8_t out[4]) {
  uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  size_t k = 0;
  while (k < 3 && t[k] == 0) k++;
  memcpy(out, t + k, 4 - k);
  return 4 - k;
}

static int bytes_eq(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
  return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static void nn_hash(const uint8_t new_nonce[32], uint8_t n, const uint8_t aux[8],
                    uint8_t out[16]) {
  uint8_t buf[41], d[20];
  memcpy(buf, new_nonce, 32);
  buf[32] = n;
  memcpy(buf + 33, aux, 8);
  mtci_sha1(buf, sizeof buf, d);
  memcpy(out, d + 4, 16);
}

/* Copy a writer's payload out and free it. */
static int emit(mtci_tl_writer *w, uint8_t *out, size_t cap, size_t *out_len) {
  int rc = w->err;
  if (rc == 0 && w->len > cap) rc = MTC_ERR_BUFFER_TOO_SMALL;
  if (rc == 0) {
    memcpy(out, mtci_tl_writer_data(w), w->len);
    *out_len = w->len;
  }
  mtci_tl_writer_free(w);
  return rc;
}

/* ---- lifecycle -------------------------------------------------------------- */

int mock_auth_new(mock_auth_server **out, const mock_auth_config *cfg) {
  if (!out || !cfg || !cfg->rsa_pem || !cfg->rnd) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  if (cfg->n_fps_before + cfg->n_fps_after + 1 > MAX_FPS) return MTC_ERR_INVALID_ARG;
  mock_auth_server *s = calloc(1, sizeof *s);
  if (!s) return MTC_ERR_NOMEM;
  mbedtls_pk_init(&s->pk);
  s->rnd = cfg->rnd;
  s->rnd_ud = cfg->rnd_ud;
  s->clock_offset = cfg->server_clock_offset;
  s->faults = cfg->faults;

  /* mbedTLS wants PEM NUL-terminated with the NUL counted. */
  unsigned char *pem = malloc(cfg->rsa_pem_len + 1);
  int rc = pem ? 0 : MTC_ERR_NOMEM;
  if (rc == 0) {
    memcpy(pem, cfg->rsa_pem, cfg->rsa_pem_len);
    pem[cfg->rsa_pem_len] = 0;
    if (mbedtls_pk_parse_key(&s->pk, pem, cfg->rsa_pem_len + 1, NULL, 0) != 0 ||
        mbedtls_pk_get_type(&s->pk) != MBEDTLS_PK_RSA ||
        mbedtls_rsa_get_len(mbedtls_pk_rsa(s->pk)) != 256)
      rc = MTC_ERR_RSA_KEY;
    free(pem);
  }
  if (rc == 0) {
    uint8_t n[256], e[8];
    if (mbedtls_rsa_export_raw(mbedtls_pk_rsa(s->pk), n, sizeof n, NULL, 0, NULL, 0, NULL, 0, e,
                               sizeof e) != 0)
      rc = MTC_ERR_RSA_KEY;
    if (rc == 0) rc = mtci_rsa_key_from_ne(&s->pub, n, sizeof n, e, sizeof e);
  }
  if (rc != 0) {
    mock_auth_free(s);
    return rc;
  }
  for (size_t i = 0; i < cfg->n_fps_before; i++) s->fps[s->n_fps++] = cfg->fps_before[i];
  s->fps[s->n_fps++] = s->pub.fingerprint;
  for (size_t i = 0; i < cfg->n_fps_after; i++) s->fps[s->n_fps++] = cfg->fps_after[i];
  s->state = S_WAIT_PQ;
  *out = s;
  return 0;
}

void mock_auth_free(mock_auth_server *s) {
  if (!s) return;
  mbedtls_pk_free(&s->pk);
  mtci_zeroize(s, sizeof *s);
  free(s);
}

int mock_auth_public_key(const mock_auth_server *s, mtci_rsa_key *out) {
  if (!s || !out) return MTC_ERR_INVALID_ARG;
  *out = s->pub;
  return 0;
}

int mock_auth_done(const mock_auth_server *s, mock_auth_result *out) {
  if (!s || s->state != S_DONE) return 0;
  if (out) *out = s->res;
  return 1;
}

/* ---- req_pq -> resPQ ------------------------------------------------------------ */

static int on_req_pq(mock_auth_server *s, mtci_tl_reader *r, uint8_t *out, size_t cap,
                     size_t *out_len) {
  uint8_t nonce[16];
  mtci_tl_read_int128(r, nonce);
  int rc = mtci_tl_read_end(r);
  if (rc) return rc;
  /* A new req_pq restarts the exchange, as on a real DC. */
  memset(&s->res, 0, sizeof s->res);
  memcpy(s->nonce, nonce, 16);
  rc = draw(s, s->server_nonce, 16);
  if (!rc) rc = random_prime(s, &s->p);
  do {
    if (!rc) rc = random_prime(s, &s->q);
  } while (!rc && s->q == s->p);
  if (rc) return rc;
  if (s->p > s->q) {
    uint32_t t = s->p;
    s->p = s->q;
    s->q = t;
  }
  uint64_t pq = (uint64_t)s->p * s->q;
  for (int i = 0; i < 8; i++) s->pq_be[i] = (uint8_t)(pq >> (56 - 8 * i));

  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, ID_RES_PQ);
  mtci_tl_write_int128(&w, s->nonce);
  mtci_tl_write_int128(&w, s->server_nonce);
  mtci_tl_write_bytes(&w, s->pq_be, 8);
  mtci_tl_write_vector(&w, (uint32_t)s->n_fps);
  for (size_t i = 0; i < s->n_fps; i++) mtci_tl_write_long(&w, as_i64(s->fps[i]));
  rc = emit(&w, out, cap, out_len);
  if (!rc) s->state = S_WAIT_DH;
  return rc;
}

/* ---- req_DH_params -> server_DH_params ------------------------------------------ */

/*
 * Parse p_q_inner_data{,_dc,_temp,_temp_dc} from data (trailing padding
 * allowed); *used = bytes parsed.
 */
static int parse_inner(mock_auth_server *s, const uint8_t *data, size_t len, size_t *used) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, data, len);
  uint32_t id = mtci_tl_read_u32(&r);
  size_t pq_len, p_len, q_len;
  const uint8_t *pq = mtci_tl_read_bytes(&r, &pq_len);
  const uint8_t *p = mtci_tl_read_bytes(&r, &p_len);
  const uint8_t *q = mtci_tl_read_bytes(&r, &q_len);
  uint8_t nonce[16], server_nonce[16], new_nonce[32];
  mtci_tl_read_int128(&r, nonce);
  mtci_tl_read_int128(&r, server_nonce);
  mtci_tl_read_int256(&r, new_nonce);
  int has_dc = id == ID_PQ_INNER_DC || id == ID_PQ_INNER_TEMP_DC;
  int temp = id == ID_PQ_INNER_TEMP || id == ID_PQ_INNER_TEMP_DC;
  int32_t dc = has_dc ? mtci_tl_read_int(&r) : 0;
  int32_t expires_in = temp ? mtci_tl_read_int(&r) : 0;
  if (r.err) return r.err;
  if (id != ID_PQ_INNER && !has_dc && !temp) return MTC_ERR_TL_CONSTRUCTOR;
  uint8_t pb[4], qb[4];
  size_t pbl = be_min32(s->p, pb), qbl = be_min32(s->q, qb);
  if (!bytes_eq(pq, pq_len, s->pq_be, 8) || !bytes_eq(p, p_len, pb, pbl) ||
      !bytes_eq(q, q_len, qb, qbl))
    return MTC_ERR_AUTH_BAD_PQ;
  if (memcmp(nonce, s->nonce, 16) != 0) return MTC_ERR_AUTH_NONCE;
  if (memcmp(server_nonce, s->server_nonce, 16) != 0) return MTC_ERR_AUTH_SERVER_NONCE;
  if (temp && expires_in <= 0) return MTC_ERR_TL_BAD_VALUE;
  memcpy(s->new_nonce, new_nonce, 32);
  s->res.inner_id = id;
  s->res.has_dc = has_dc;
  s->res.dc = dc;
  s->res.temp = temp;
  s->res.expires_in = expires_in;
  *used = r.pos;
  return 0;
}

/*
 * Undo the client's RSA step. MTProto 2.0 RSA_PAD first:
 *   m = temp_key_xor(32) || aes_encrypted(224)
 *   temp_key = temp_key_xor XOR SHA256(aes_encrypted)
 *   data_with_hash = AES-IGE-decrypt(aes_encrypted, temp_key, 0^32)
 *   data_with_padding = reverse(data_with_hash[0:192]); the last 32 bytes
 *   must be SHA256(temp_key || data_with_padding).
 * Else legacy: m = 0 || SHA1(data) || data || random, the hash over exactly
 * the parsed inner data.
 */
static int rsa_unwrap(mock_auth_server *s, const uint8_t *enc, size_t enc_len) {
  if (enc_len == 0 || enc_len > 256) return MTC_ERR_AUTH_RSA_DECRYPT;
  uint8_t in[256] = {0}, m[256];
  memcpy(in + 256 - enc_len, enc, enc_len);
  if (mbedtls_rsa_private(mbedtls_pk_rsa(s->pk), mbed_rng, s, in, m) != 0)
    return MTC_ERR_AUTH_RSA_DECRYPT;

  static const uint8_t zero_iv[32];
  uint8_t h[32], temp_key[32], dwh[224], dwp[192];
  mtci_sha256(m + 32, 224, h);
  for (int i = 0; i < 32; i++) temp_key[i] = m[i] ^ h[i];
  int rc = mtci_aes256_ige_decrypt(temp_key, zero_iv, m + 32, dwh, sizeof dwh);
  if (rc) return rc;
  for (int i = 0; i < 192; i++) dwp[i] = dwh[191 - i];
  mtci_sha256_ctx c;
  mtci_sha256_init(&c);
  mtci_sha256_update(&c, temp_key, 32);
  mtci_sha256_update(&c, dwp, 192);
  mtci_sha256_final(&c, h);
  size_t used;
  if (memcmp(h, dwh + 192, 32) == 0) {
    rc = parse_inner(s, dwp, sizeof dwp, &used);
    s->res.legacy_rsa = 0;
  } else if (m[0] == 0) {
    /* The hash can only be checked over a parse: any failure means the
     * block is not this scheme either. */
    rc = parse_inner(s, m + 21, 256 - 21, &used);
    if (rc == 0) {
      mtci_sha1(m + 21, used, h);
      if (memcmp(h, m + 1, 20) != 0) rc = MTC_ERR_AUTH_RSA_DECRYPT;
    } else {
      rc = MTC_ERR_AUTH_RSA_DECRYPT;
    }
    s->res.legacy_rsa = 1;
  } else {
    rc = MTC_ERR_AUTH_RSA_DECRYPT;
  }
  mtci_zeroize(m, sizeof m);
  mtci_zeroize(temp_key, sizeof temp_key);
  mtci_zeroize(dwh, sizeof dwh);
  mtci_zeroize(dwp, sizeof dwp);
  return rc;
}

static int make_dh(mock_auth_server *s) {
  unhex(k_prime_hex, s->prime, 256);
  s->g = 3;
  if (s->faults & MOCK_AUTH_FAULT_BAD_PRIME) {
    /* +6 keeps p odd and p mod 3 = 2 (so g = 3 passes its rule) but makes
     * p composite or at least not the known safe prime. */
    unsigned carry = 6;
    for (int i = 255; i >= 0 && carry; i--) {
      unsigned v = s->prime[i] + carry;
      s->prime[i] = (uint8_t)v;
      carry = v >> 8;
    }
  }
  if (s->faults & MOCK_AUTH_FAULT_BAD_G) s->g = 2; /* p mod 8 = 3: not allowed for g = 2 */
  uint8_t g = (uint8_t)s->g;
  int rc = MTC_ERR_DH_VALUE;
  for (int i = 0; i < 4 && rc == MTC_ERR_DH_VALUE; i++) {
    rc = draw(s, s->a, sizeof s->a);
    if (!rc) rc = mtci_modexp(&g, 1, s->a, sizeof s->a, s->prime, 256, s->g_a, 256);
    if (!rc) rc = mtci_dh_check_value(s->prime, 256, s->g_a, 256);
  }
  if (rc) return rc;
  if (s->faults & MOCK_AUTH_FAULT_GA_RANGE) {
    memset(s->g_a, 0, 256);
    s->g_a[256 - 248 - 1] = 1; /* 2^1984: byte 7 from the top holds bit 1984 */
  }
  return 0;
}

static int on_req_dh(mock_auth_server *s, mtci_tl_reader *r, double now, uint8_t *out,
                     size_t cap, size_t *out_len) {
  uint8_t nonce[16], server_nonce[16];
  mtci_tl_read_int128(r, nonce);
  mtci_tl_read_int128(r, server_nonce);
  size_t p_len, q_len, enc_len;
  const uint8_t *p = mtci_tl_read_bytes(r, &p_len);
  const uint8_t *q = mtci_tl_read_bytes(r, &q_len);
  uint64_t fp = (uint64_t)mtci_tl_read_long(r);
  const uint8_t *enc = mtci_tl_read_bytes(r, &enc_len);
  int rc = mtci_tl_read_end(r);
  if (rc) return rc;
  if (memcmp(nonce, s->nonce, 16) != 0) return MTC_ERR_AUTH_NONCE;
  if (memcmp(server_nonce, s->server_nonce, 16) != 0) return MTC_ERR_AUTH_SERVER_NONCE;
  uint8_t pb[4], qb[4];
  size_t pbl = be_min32(s->p, pb), qbl = be_min32(s->q, qb);
  if (!bytes_eq(p, p_len, pb, pbl) || !bytes_eq(q, q_len, qb, qbl)) return MTC_ERR_AUTH_BAD_PQ;
  if (fp != s->pub.fingerprint) return MTC_ERR_AUTH_NO_RSA_KEY;
  rc = rsa_unwrap(s, enc, enc_len);
  if (rc) return rc;

  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  if (s->faults & MOCK_AUTH_FAULT_DH_PARAMS_FAIL) {
    uint8_t d[20];
    mtci_sha1(s->new_nonce, 32, d);
    mtci_tl_write_u32(&w, ID_DH_PARAMS_FAIL);
    mtci_tl_write_int128(&w, s->nonce);
    mtci_tl_write_int128(&w, s->server_nonce);
    mtci_tl_write_int128(&w, d + 4);
    rc = emit(&w, out, cap, out_len);
    if (!rc) s->state = S_WAIT_PQ;
    return rc;
  }

  rc = make_dh(s);
  if (rc) {
    mtci_tl_writer_free(&w);
    return rc;
  }
  int64_t secs = now >= 0.0 && now < 2147483647.0 ? (int64_t)now : 0;
  s->server_time = (int32_t)(secs + s->clock_offset);
  mtci_dh_tmp_aes(s->new_nonce, s->server_nonce, s->tmp_key, s->tmp_iv);

  /* SHA1(answer) || answer || padding, answer = server_DH_inner_data. */
  mtci_tl_writer a;
  mtci_tl_writer_init(&a, 20);
  mtci_tl_write_u32(&a, ID_DH_INNER);
  mtci_tl_write_int128(&a, s->nonce);
  mtci_tl_write_int128(&a, s->server_nonce);
  mtci_tl_write_int(&a, s->g);
  mtci_tl_write_bytes(&a, s->prime, 256);
  mtci_tl_write_bytes(&a, s->g_a, 256);
  mtci_tl_write_int(&a, s->server_time);
  size_t alen = a.len;
  size_t pad = (16 - (20 + alen) % 16) % 16;
  if (s->faults & MOCK_AUTH_FAULT_BIG_PADDING) pad += 16;
  uint8_t *tail = mtci_tl_write_reserve(&a, pad);
  rc = a.err;
  if (!rc) rc = draw(s, tail, pad);
  size_t plen = 20 + alen + pad;
  uint8_t enc_answer[MAX_ENC];
  if (!rc && plen > sizeof enc_answer) rc = MTC_ERR_INTERNAL;
  if (!rc) {
    uint8_t *plain = a.buf + a.headroom - 20;
    mtci_sha1(plain + 20, alen, plain);
    if (s->faults & MOCK_AUTH_FAULT_ANSWER_HASH) plain[0] ^= 0x01;
    rc = mtci_aes256_ige_encrypt(s->tmp_key, s->tmp_iv, plain, enc_answer, plen);
  }
  mtci_tl_writer_free(&a);
  mtci_tl_write_u32(&w, ID_DH_PARAMS_OK);
  mtci_tl_write_int128(&w, s->nonce);
  mtci_tl_write_int128(&w, s->server_nonce);
  if (!rc) mtci_tl_write_bytes(&w, enc_answer, plen);
  if (rc) {
    mtci_tl_writer_free(&w);
    return rc;
  }
  rc = emit(&w, out, cap, out_len);
  if (!rc) {
    memset(s->prev_aux, 0, sizeof s->prev_aux);
    s->res.retries = 0;
    s->state = S_WAIT_CLIENT_DH;
  }
  return rc;
}

/* ---- set_client_DH_params -> dh_gen_* --------------------------------------------- */

static int on_set_client_dh(mock_auth_server *s, mtci_tl_reader *r, uint8_t *out, size_t cap,
                            size_t *out_len) {
  uint8_t nonce[16], server_nonce[16];
  mtci_tl_read_int128(r, nonce);
  mtci_tl_read_int128(r, server_nonce);
  size_t enc_len;
  const uint8_t *enc = mtci_tl_read_bytes(r, &enc_len);
  int rc = mtci_tl_read_end(r);
  if (rc) return rc;
  if (memcmp(nonce, s->nonce, 16) != 0) return MTC_ERR_AUTH_NONCE;
  if (memcmp(server_nonce, s->server_nonce, 16) != 0) return MTC_ERR_AUTH_SERVER_NONCE;
  if (enc_len < 32 || enc_len % 16 || enc_len > MAX_ENC) return MTC_ERR_AUTH_BAD_PADDING;
  uint8_t plain[MAX_ENC];
  rc = mtci_aes256_ige_decrypt(s->tmp_key, s->tmp_iv, enc, plain, enc_len);
  if (rc) return rc;
  mtci_tl_reader ir;
  mtci_tl_reader_init(&ir, plain + 20, enc_len - 20);
  uint32_t id = mtci_tl_read_u32(&ir);
  uint8_t n2[16], sn2[16], d[20];
  mtci_tl_read_int128(&ir, n2);
  mtci_tl_read_int128(&ir, sn2);
  uint64_t retry_id = (uint64_t)mtci_tl_read_long(&ir);
  size_t gb_len;
  const uint8_t *g_b = mtci_tl_read_bytes(&ir, &gb_len);
  if (ir.err || id != ID_CLIENT_DH_INNER) rc = MTC_ERR_AUTH_ANSWER_HASH;
  if (!rc) {
    mtci_sha1(plain + 20, ir.pos, d);
    if (memcmp(d, plain, 20) != 0) rc = MTC_ERR_AUTH_ANSWER_HASH;
    else if (mtci_tl_remaining(&ir) >= 16) rc = MTC_ERR_AUTH_BAD_PADDING;
    else if (memcmp(n2, s->nonce, 16) != 0) rc = MTC_ERR_AUTH_NONCE;
    else if (memcmp(sn2, s->server_nonce, 16) != 0) rc = MTC_ERR_AUTH_SERVER_NONCE;
    else if (retry_id != le64(s->prev_aux)) rc = MTC_ERR_TL_BAD_VALUE;
  }
  if (!rc) rc = mtci_dh_check_value(s->prime, 256, g_b, gb_len);
  uint8_t key[256], aux[8];
  if (!rc) rc = mtci_modexp(g_b, gb_len, s->a, sizeof s->a, s->prime, 256, key, sizeof key);
  mtci_zeroize(plain, sizeof plain);
  if (rc) return rc;
  mtci_sha1(key, sizeof key, d);
  memcpy(aux, d, 8);

  uint8_t hash[16];
  uint32_t ans;
  int next;
  if ((s->faults & MOCK_AUTH_FAULT_RETRY_ALWAYS) ||
      ((s->faults & MOCK_AUTH_FAULT_RETRY_ONCE) && s->res.retries == 0)) {
    ans = ID_DH_GEN_RETRY;
    nn_hash(s->new_nonce, 2, aux, hash);
    next = S_WAIT_CLIENT_DH;
  } else if (s->faults & MOCK_AUTH_FAULT_GEN_FAIL) {
    ans = ID_DH_GEN_FAIL;
    nn_hash(s->new_nonce, 3, aux, hash);
    next = S_WAIT_PQ;
  } else {
    ans = ID_DH_GEN_OK;
    nn_hash(s->new_nonce, 1, aux, hash);
    if (s->faults & MOCK_AUTH_FAULT_NEW_NONCE_HASH) hash[15] ^= 0x80;
    next = S_DONE;
  }
  mtci_tl_writer w;
  mtci_tl_writer_init(&w, 0);
  mtci_tl_write_u32(&w, ans);
  mtci_tl_write_int128(&w, s->nonce);
  mtci_tl_write_int128(&w, s->server_nonce);
  mtci_tl_write_int128(&w, hash);
  rc = emit(&w, out, cap, out_len);
  if (!rc) {
    if (ans == ID_DH_GEN_RETRY) {
      s->res.retries++;
      memcpy(s->prev_aux, aux, 8);
    }
    if (next == S_DONE) {
      memcpy(s->res.auth_key, key, 256);
      memcpy(s->res.auth_key_id, d + 12, 8);
      uint8_t salt[8];
      for (int i = 0; i < 8; i++) salt[i] = s->new_nonce[i] ^ s->server_nonce[i];
      s->res.server_salt = as_i64(le64(salt));
      s->res.expires_at = s->res.temp ? (int64_t)s->server_time + s->res.expires_in : 0;
      mtci_zeroize(s->a, sizeof s->a);
    }
    s->state = next;
  }
  mtci_zeroize(key, sizeof key);
  return rc;
}

/* ---- dispatch ----------------------------------------------------------------------- */

int mock_auth_feed(mock_auth_server *s, const uint8_t *req, size_t len, double now,
                   uint8_t *out, size_t cap, size_t *out_len) {
  if (!s || (!req && len) || !out || !out_len) return MTC_ERR_INVALID_ARG;
  *out_len = 0;
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, req, len);
  uint32_t id = mtci_tl_read_u32(&r);
  if (r.err) return r.err;
  switch (id) {
  case ID_REQ_PQ:
  case ID_REQ_PQ_MULTI: return on_req_pq(s, &r, out, cap, out_len);
  case ID_REQ_DH_PARAMS:
    if (s->state != S_WAIT_DH) return MTC_ERR_AUTH_UNEXPECTED;
    return on_req_dh(s, &r, now, out, cap, out_len);
  case ID_SET_CLIENT_DH:
    if (s->state != S_WAIT_CLIENT_DH) return MTC_ERR_AUTH_UNEXPECTED;
    return on_set_client_dh(s, &r, out, cap, out_len);
  default: return MTC_ERR_AUTH_UNEXPECTED;
  }
}

int mock_auth_feed_envelope(mock_auth_server *s, const uint8_t *msg, size_t len, double now,
                            uint8_t *out, size_t cap, size_t *out_len) {
  if (!s || (!msg && len) || !out || !out_len) return MTC_ERR_INVALID_ARG;
  *out_len = 0;
  /* auth_key_id 0 | msg_id | length | body */
  if (len < 20) return MTC_ERR_AUTH_ENVELOPE;
  for (int i = 0; i < 8; i++)
    if (msg[i]) return MTC_ERR_AUTH_ENVELOPE;
  size_t n = (size_t)msg[16] | (size_t)msg[17] << 8 | (size_t)msg[18] << 16 | (size_t)msg[19] << 24;
  if (n != len - 20) return MTC_ERR_AUTH_ENVELOPE;
  int64_t client_id = as_i64(le64(msg + 8));
  if (client_id & 3) return MTC_ERR_AUTH_ENVELOPE; /* client msg_ids are divisible by 4 */
  if (cap < 20) return MTC_ERR_BUFFER_TOO_SMALL;
  size_t body_len;
  int rc = mock_auth_feed(s, msg + 20, n, now, out + 20, cap - 20, &body_len);
  if (rc) return rc;
  /* Server answers: msg_id = 1 mod 4, increasing. */
  int64_t id = now >= 0.0 && now < 2147483647.0 ? (int64_t)(now * 4294967296.0) : 0;
  id = (id & ~(int64_t)3) | 1;
  if (id <= s->last_msg_id) id = s->last_msg_id + 4;
  s->last_msg_id = id;
  memset(out, 0, 8);
  for (int i = 0; i < 8; i++) out[8 + i] = (uint8_t)((uint64_t)id >> (8 * i));
  for (int i = 0; i < 4; i++) out[16 + i] = (uint8_t)(body_len >> (8 * i));
  *out_len = 20 + body_len;
  return 0;
}
