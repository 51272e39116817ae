/*
 * Fuzz target: arbitrary server answers at each step of the auth key
 * handshake (src/auth/handshake.c), the unencrypted envelope, and the bind
 * message checker (src/auth/bind.c).
 *
 * Input: byte 0 selects the mode, the rest is the message.
 *   0 / 1 / 2: TL body fed while waiting for resPQ / server_DH_params / dh_gen
 *   3:         byte 1 % 3 picks the step, the rest is fed as an envelope
 *   4:         encrypted_message for mtci_bind_decrypt under a fixed perm key
 * The handshake states come from the PROTOCOL.md §7.4 vector (grammers), run
 * once and then copied per input (the state is plain data), so the corpus
 * (the §7.4 server answers) reaches the deep checks.
 */
#include <stdint.h>
#include <string.h>

#include "../tests/data/handshake_grammers.h"
#include "auth/bind.h"
#include "auth/handshake.h"
#include "auth/rsa_keyset.h"

static struct {
  int ready, ok;
  mtci_rsa_keyset keys;
  uint8_t rng[16 + 32 + 96 + 32 + 272];
  size_t rng_len, rng_pos;
  mtci_handshake snap[3];
  size_t snap_rng_pos[3];
} F;

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  for (; hex[0] && hex[1] && n < cap; hex += 2) {
    unsigned v = 0;
    for (int i = 0; i < 2; i++) {
      char c = hex[i];
      v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    out[n++] = (uint8_t)v;
  }
  return n;
}

static int fixed_rng(void *ud, uint8_t *out, size_t len) {
  (void)ud;
  if (F.rng_len - F.rng_pos < len) return MTC_ERR_RANDOM;
  memcpy(out, F.rng + F.rng_pos, len);
  F.rng_pos += len;
  return 0;
}

static void setup(void) {
  F.ready = 1;
  uint8_t s2[256], s3[272], resp1[84], resp2[632];
  size_t n = unhex(HS_GRAMMERS_STEP1_RANDOM, F.rng, 16);
  unhex(HS_GRAMMERS_STEP2_RANDOM, s2, sizeof s2);
  unhex(HS_GRAMMERS_STEP3_RANDOM, s3, sizeof s3);
  memcpy(F.rng + n, s2, 32); /* new_nonce */
  n += 32;
  memcpy(F.rng + n, s2 + 32, 96); /* RSA_PAD padding */
  n += 96;
  memcpy(F.rng + n, s2 + 32 + 192, 32); /* RSA_PAD temp_key */
  n += 32;
  memcpy(F.rng + n, s3, sizeof s3); /* b, IGE padding */
  F.rng_len = n + sizeof s3;
  size_t r1 = unhex(HS_GRAMMERS_STEP1_RESPONSE, resp1, sizeof resp1);
  size_t r2 = unhex(HS_GRAMMERS_STEP2_RESPONSE, resp2, sizeof resp2);

  mtci_rsa_keyset_init(&F.keys);
  if (mtci_rsa_keyset_add_builtin(&F.keys, 1) != 0) return;
  mtci_handshake_params p = {0};
  p.dc = 2;
  p.legacy_inner = 1;
  p.keys = &F.keys;
  p.rnd = fixed_rng;
  mtci_handshake h;
  F.rng_pos = 0;
  if (mtci_handshake_init(&h, &p) != 0 || mtci_handshake_start(&h) != MTCI_HS_SEND) return;
  F.snap[0] = h;
  F.snap_rng_pos[0] = F.rng_pos;
  if (mtci_handshake_feed(&h, resp1, r1, HS_GRAMMERS_NOW) != MTCI_HS_SEND) return;
  F.snap[1] = h;
  F.snap_rng_pos[1] = F.rng_pos;
  if (mtci_handshake_feed(&h, resp2, r2, HS_GRAMMERS_NOW) != MTCI_HS_SEND) return;
  F.snap[2] = h;
  F.snap_rng_pos[2] = F.rng_pos;
  mtci_handshake_free(&h);
  F.ok = 1;
}

static void run_step(int step, const uint8_t *d, size_t n, int envelope) {
  mtci_handshake h = F.snap[step];
  F.rng_pos = F.snap_rng_pos[step];
  int rc = envelope ? mtci_handshake_feed_envelope(&h, d, n, HS_GRAMMERS_NOW)
                    : mtci_handshake_feed(&h, d, n, HS_GRAMMERS_NOW);
  if (rc == MTCI_HS_FINISHED) {
    mtci_auth_result res;
    mtci_handshake_result(&h, &res);
    mtci_auth_result_clear(&res);
  } else if (rc == MTCI_HS_SEND) {
    uint8_t out[MTCI_HS_REQ_MAX + MTCI_UNENC_HEADER_LEN];
    size_t len;
    mtci_handshake_emit_envelope(&h, HS_GRAMMERS_NOW, out, sizeof out, &len);
  }
  /* After any outcome, more input is refused or handled without harm. */
  mtci_handshake_feed(&h, d, n, HS_GRAMMERS_NOW);
  mtci_handshake_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (!F.ready) setup();
  if (!F.ok || n < 1) return 0;
  unsigned mode = d[0] % 5;
  d++;
  n--;
  if (mode < 3) {
    run_step((int)mode, d, n, 0);
  } else if (mode == 3) {
    if (n < 1) return 0;
    run_step(d[0] % 3, d + 1, n - 1, 1);
  } else {
    uint8_t perm[MTCI_AUTH_KEY_LEN];
    for (int i = 0; i < MTCI_AUTH_KEY_LEN; i++) perm[i] = (uint8_t)i;
    mtci_bind_inner inner;
    int64_t msg_id;
    mtci_bind_decrypt(perm, d, n, &inner, &msg_id);
  }
  return 0;
}
