/*
 * Fuzz the JSON DoH answer parser: the input is the HTTP body. TXT strings
 * that come out go on to the simple-config decoder (Telegram's key), as in
 * the real pipeline. Checks the invariants callers rely on; a violation traps.
 */
#include <stdint.h>
#include <string.h>

#include "crypto/rsa_keys.h"
#include "discovery/doh_json.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  static mtci_doh_txt t; /* 8 KiB: keep it off the stack */
  int rc = mtci_doh_json_parse((const char *)d, n, &t);
  if (rc != 0) {
    check(rc == MTC_ERR_INVALID_ARG || (rc <= -720 && rc >= -725));
    check(t.count == 0);
    return 0;
  }
  check(t.status == 0);
  check(t.count >= 1 && t.count <= MTCI_DOH_MAX_PARTS);
  for (size_t i = 0; i < t.count; i++) {
    check(t.len[i] <= MTCI_DOH_MAX_TXT);
    check(t.text[i][t.len[i]] == '\0');
  }
  static mtci_rsa_key key;
  static int have_key;
  if (!have_key) {
    const char *pem = mtci_rsa_builtin_pem(MTCI_RSA_BUILTIN_SIMPLE_CONFIG);
    check(mtci_rsa_key_from_pem(&key, pem, strlen(pem)) == 0);
    have_key = 1;
  }
  mtci_sconf_part parts[MTCI_DOH_MAX_PARTS];
  size_t np = mtci_doh_txt_parts(&t, parts);
  check(np == t.count);
  mtci_simple_config c;
  rc = mtci_simple_config_decode(&key, parts, np, 1780000000, NULL, 0, &c);
  check(rc == 0 ? c.count >= 1 : (rc <= -700 && rc >= -716));
  mtci_simple_config_free(&c);
  return 0;
}
