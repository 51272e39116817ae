/*
 * What the context tests (test_context, test_context_discovery,
 * test_context_pfs) share: the scenario's constants, a monotonic clock, a
 * thread-safe random source, and the TL bodies of the demo login's requests
 * written by hand from schema/api.tl (so they do not depend on the generated
 * builders they help to test).
 */
#ifndef MTC_TEST_CONTEXT_REQUESTS_H
#define MTC_TEST_CONTEXT_REQUESTS_H

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "crypto/crypto.h"
#include "mock_dc.h"
#include "mtconn/tl_api.h"
#include "tl/tl.h"

#define PHONE "+15550000005"
#define FILE_ID 4242

static inline int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One DRBG for the whole test program, shared by its contexts' threads. */
static pthread_mutex_t g_rnd_mu = PTHREAD_MUTEX_INITIALIZER;
static mtci_drbg *g_drbg;
static inline int test_rnd(void *ud, uint8_t *out, size_t len) {
  (void)ud;
  pthread_mutex_lock(&g_rnd_mu);
  if (!g_drbg) g_drbg = mtci_drbg_new();
  int rc = g_drbg ? mtci_drbg_random(g_drbg, out, len) : MTC_ERR_RANDOM;
  pthread_mutex_unlock(&g_rnd_mu);
  return rc;
}

/* ---- TL bodies ------------------------------------------------------------- */

typedef struct body {
  uint8_t b[512];
  size_t n;
} body;

static inline void b_u32(body *b, uint32_t v) {
  mtci_put_le32(b->b + b->n, v);
  b->n += 4;
}
static inline void b_i64(body *b, int64_t v) {
  mtci_put_le64(b->b + b->n, mtci_u64_of(v));
  b->n += 8;
}
static inline void b_str(body *b, const char *s) { /* short strings only */
  size_t n = strlen(s);
  b->b[b->n++] = (uint8_t)n;
  memcpy(b->b + b->n, s, n);
  b->n += n;
  while ((n + 1) % 4) {
    b->b[b->n++] = 0;
    n++;
  }
}

static inline body q_nearest(void) {
  body b = {{0}, 0};
  b_u32(&b, MTC_TL_ID_fn_help_getNearestDc);
  return b;
}
static inline body q_send_code(void) {
  body b = {{0}, 0};
  b_u32(&b, MTC_TL_ID_fn_auth_sendCode);
  b_str(&b, PHONE);
  b_u32(&b, 12345);
  b_str(&b, "0123456789abcdef");
  b_u32(&b, MTC_TL_ID_codeSettings);
  b_u32(&b, 0);
  return b;
}
static inline body q_sign_in(const char *hash) {
  body b = {{0}, 0};
  b_u32(&b, MTC_TL_ID_fn_auth_signIn);
  b_u32(&b, 1); /* flags.0: phone_code */
  b_str(&b, PHONE);
  b_str(&b, hash);
  b_str(&b, MOCK_DC_LOGIN_CODE);
  return b;
}
static inline body q_get_file(int64_t offset, int32_t limit) {
  body b = {{0}, 0};
  b_u32(&b, MTC_TL_ID_fn_upload_getFile);
  b_u32(&b, 0);
  b_u32(&b, MTC_TL_ID_inputDocumentFileLocation);
  b_i64(&b, FILE_ID);
  b_i64(&b, 0);
  b_str(&b, "");
  b_str(&b, "");
  b_i64(&b, offset);
  b_u32(&b, (uint32_t)limit);
  return b;
}
static inline body q_get_self(void) {
  body b = {{0}, 0};
  b_u32(&b, MTC_TL_ID_fn_users_getUsers);
  b_u32(&b, MTCI_TL_VECTOR_ID);
  b_u32(&b, 1);
  b_u32(&b, MTC_TL_ID_inputUserSelf);
  return b;
}

/* The phone_code_hash of an auth.sentCode result, NUL-terminated. */
static inline int sent_code_hash(const uint8_t *data, size_t len, char *out, size_t cap) {
  mtc_tl_object *o = NULL;
  if (mtc_tl_parse(data, len, &o) != 0 || !o || o->id != MTC_TL_ID_auth_sentCode) {
    mtc_tl_object_free(o);
    return -1;
  }
  const mtc_tl_auth_sentCode *sc = (const mtc_tl_auth_sentCode *)o;
  int ok = sc->phone_code_hash.len < cap;
  if (ok) {
    memcpy(out, sc->phone_code_hash.data, sc->phone_code_hash.len);
    out[sc->phone_code_hash.len] = 0;
  }
  mtc_tl_object_free(o);
  return ok ? 0 : -1;
}

#endif /* MTC_TEST_CONTEXT_REQUESTS_H */
