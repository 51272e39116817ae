/*
 * Fuzz the DoH simple-config decoder. The first byte picks a mode:
 *   0  TXT text: the rest split at '\n' into parts (more than 8 allowed, to
 *      reach the limit), decoded with Telegram's simple-config key;
 *   1  a decrypted block: the next 224 bytes (zero-filled if short) go to
 *      mtci_sconf_parse with `now` = its date + 60 s, what follows is the
 *      phone number;
 *   2  phone rules: rules, a NUL, then the phone.
 * Checks the invariants callers rely on; a violation traps.
 */
#include <stdint.h>
#include <string.h>

#include "bytes.h"
#include "crypto/rsa_keys.h"
#include "discovery/simple_config.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static void check_result(int rc, const mtci_simple_config *c) {
  if (rc != 0) {
    check(rc == MTC_ERR_INTERNAL || (rc <= -700 && rc >= -716));
    check(c->count == 0);
    return;
  }
  check(c->count >= 1 && c->count <= MTCI_SCONF_MAX_ENDPOINTS);
  check(c->rules_applied >= 1 && c->rules_applied <= c->rules);
  for (size_t i = 0; i < c->count; i++) {
    const mtci_sconf_endpoint *e = &c->ep[i];
    check(e->dc_id >= 1 && e->dc_id <= MTCI_SCONF_MAX_DC_ID);
    check(e->port >= 1);
    check(e->ip[0] != 0 && e->ip[0] < 224);
    check(memchr(e->ipv4, '\0', sizeof e->ipv4) != NULL && strlen(e->ipv4) >= 7);
    if (e->secret_len) {
      mtci_proxy_secret s;
      check(mtci_proxy_secret_from_binary(e->secret, e->secret_len, &s, NULL) == 0);
      check(s.kind == e->secret_kind);
      mtci_proxy_secret_free(&s);
    } else {
      check(e->secret_kind == MTCI_SECRET_NONE);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n == 0) return 0;
  static mtci_rsa_key key;
  static int have_key;
  if (!have_key) {
    const char *pem = mtci_rsa_builtin_pem(MTCI_RSA_BUILTIN_SIMPLE_CONFIG);
    check(mtci_rsa_key_from_pem(&key, pem, strlen(pem)) == 0);
    have_key = 1;
  }
  const uint8_t mode = d[0] % 3;
  d++;
  n--;
  mtci_simple_config c;
  if (mode == 0) {
    mtci_sconf_part parts[12];
    size_t np = 0, start = 0;
    for (size_t i = 0; i <= n && np < 12; i++) {
      if (i == n || d[i] == '\n') {
        parts[np].text = (const char *)d + start;
        parts[np].len = i - start;
        np++;
        start = i + 1;
      }
    }
    int rc = mtci_simple_config_decode(&key, parts, np, 1780000000, NULL, 0, &c);
    check_result(rc, &c);
    if (np > MTCI_SCONF_MAX_PARTS) check(rc == MTC_ERR_SCONF_PARTS);
    char b64[MTCI_SCONF_B64_LEN + 1];
    rc = mtci_sconf_join(parts, np, b64);
    check(rc == 0 ? strlen(b64) == MTCI_SCONF_B64_LEN
                  : (rc == MTC_ERR_SCONF_PARTS || rc == MTC_ERR_SCONF_LENGTH));
  } else if (mode == 1) {
    uint8_t plain[MTCI_SCONF_PLAIN_LEN] = {0};
    size_t k = n < sizeof plain ? n : sizeof plain;
    memcpy(plain, d, k);
    int64_t now = (int64_t)(int32_t)mtci_le32(plain + 8) + 60;
    const char *phone = (const char *)d + k;
    int rc = mtci_sconf_parse(plain, now, phone, n - k, &c);
    check_result(rc, &c);
  } else {
    const uint8_t *z = memchr(d, 0, n);
    size_t rl = z ? (size_t)(z - d) : n;
    const char *phone = z ? (const char *)z + 1 : "";
    size_t pl = z ? n - rl - 1 : 0;
    int a = mtci_sconf_phone_applies((const char *)d, rl, phone, pl);
    check(a == 0 || a == 1);
    check(mtci_sconf_phone_applies((const char *)d, rl, NULL, 0) == 1);
  }
  mtci_simple_config_free(&c);
  return 0;
}
