/*
 * Mock DC, server side of auth key creation (PROTOCOL.md §6.3 mirrored).
 * TEST CODE: not part of the library; it may use mbedTLS directly for the
 * RSA private-key operation. Pure like the client: requests in, answers out,
 * `now` passed in, randomness through an mtc_random_fn.
 *
 *   req_pq_multi / req_pq     -> resPQ (pq = product of two random 31-bit primes)
 *   req_DH_params             -> server_DH_params_ok (or _fail on request)
 *       encrypted_data: RSA_PAD (MTProto 2.0) or the legacy
 *       SHA1(data) || data || padding (Telethon <= 1.25); inner data any of
 *       p_q_inner_data, _dc, _temp, _temp_dc
 *   set_client_DH_params      -> dh_gen_ok (or dh_gen_retry / dh_gen_fail on request)
 *
 * DH uses Telegram's 2048-bit prime with g = 3.
 */
#ifndef MTC_MOCK_AUTH_H
#define MTC_MOCK_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"

/* Faults a test may switch on (bit mask). */
enum {
  MOCK_AUTH_FAULT_RETRY_ONCE = 1u << 0,      /* first set_client_DH_params -> dh_gen_retry */
  MOCK_AUTH_FAULT_GEN_FAIL = 1u << 1,        /* set_client_DH_params -> dh_gen_fail */
  MOCK_AUTH_FAULT_DH_PARAMS_FAIL = 1u << 2,  /* req_DH_params -> server_DH_params_fail */
  MOCK_AUTH_FAULT_BAD_PRIME = 1u << 3,       /* dh_prime is not a safe prime */
  MOCK_AUTH_FAULT_GA_RANGE = 1u << 4,        /* g_a = 2^1984 (at the edge: rejected) */
  MOCK_AUTH_FAULT_BAD_G = 1u << 5,           /* g = 2, which fails the residue rule for p */
  MOCK_AUTH_FAULT_ANSWER_HASH = 1u << 6,     /* wrong SHA1 in front of server_DH_inner_data */
  MOCK_AUTH_FAULT_NEW_NONCE_HASH = 1u << 7,  /* dh_gen_ok with a wrong new_nonce_hash1 */
  MOCK_AUTH_FAULT_RETRY_ALWAYS = 1u << 8,    /* every set_client_DH_params -> dh_gen_retry */
  MOCK_AUTH_FAULT_BIG_PADDING = 1u << 9      /* 16 extra padding bytes in encrypted_answer */
};

typedef struct mock_auth_config {
  const char *rsa_pem; /* private key, PEM (PKCS#1 or PKCS#8), 2048-bit */
  size_t rsa_pem_len;  /* strlen(rsa_pem) */
  /* Fingerprints listed in resPQ before / after the server's own. */
  const uint64_t *fps_before;
  size_t n_fps_before;
  const uint64_t *fps_after;
  size_t n_fps_after;
  int32_t server_clock_offset; /* server_time = floor(now) + this */
  unsigned faults;
  mtc_random_fn rnd;
  void *rnd_ud;
} mock_auth_config;

typedef struct mock_auth_server mock_auth_server;

/* What the server learned; valid once mock_auth_done() is non-zero. */
typedef struct mock_auth_result {
  uint8_t auth_key[MTCI_AUTH_KEY_LEN];
  uint8_t auth_key_id[8];
  int64_t server_salt;
  int temp;            /* 1 for p_q_inner_data_temp(_dc) */
  int32_t expires_in;  /* temp keys */
  int64_t expires_at;  /* server_time + expires_in for temp keys, else 0 */
  int has_dc;          /* 0 for p_q_inner_data / _temp (no dc field) */
  int32_t dc;
  uint32_t inner_id;   /* constructor of the inner data */
  int legacy_rsa;      /* 1 if encrypted_data used the legacy SHA1 scheme */
  int retries;         /* dh_gen_retry answers sent */
} mock_auth_result;

/* Returns 0 or an mtc_error (MTC_ERR_RSA_KEY for an unusable PEM). */
int mock_auth_new(mock_auth_server **out, const mock_auth_config *cfg);
void mock_auth_free(mock_auth_server *s); /* NULL-safe; wipes secrets */

/* The server's public key (n, e, fingerprint) for a client key set. */
int mock_auth_public_key(const mock_auth_server *s, mtci_rsa_key *out);

/*
 * One client request (TL body) in, one answer (TL body) out. Returns 0 with
 * an answer, or a negative mtc_error when the request is invalid (a real DC
 * would answer transport error -404 and close); the server then stays in
 * its state.
 */
int mock_auth_feed(mock_auth_server *s, const uint8_t *req, size_t len, double now,
                   uint8_t *out, size_t cap, size_t *out_len);
/* The same around the unencrypted envelope; answers carry odd msg_ids. */
int mock_auth_feed_envelope(mock_auth_server *s, const uint8_t *msg, size_t len, double now,
                            uint8_t *out, size_t cap, size_t *out_len);

/* Non-zero once dh_gen_ok was sent; fills *out if non-NULL. */
int mock_auth_done(const mock_auth_server *s, mock_auth_result *out);

/* The committed TEST-ONLY private keys in tests/mockdc/keys/ (PEM text,
 * NUL-terminated), index 0..mock_test_key_count()-1; NULL when out of range. */
const char *mock_test_key_pem(int index);
int mock_test_key_count(void);

#endif /* MTC_MOCK_AUTH_H */
