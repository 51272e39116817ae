/* Fuzz the proxy link and secret parsers: the input is the link text. The
 * same bytes also go through the text and binary secret parsers. Checks the
 * invariants callers rely on; a violation traps. */
#include <stdint.h>
#include <string.h>

#include "transport/proxy_link.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  mtci_proxy_link l;
  const char *msg = NULL;
  int rc = mtci_proxy_link_parse((const char *)d, n, &l, &msg);
  if (rc == 0) {
    check(l.type == MTCI_PROXY_MTPROTO || l.type == MTCI_PROXY_SOCKS5);
    check(l.port != 0);
    check(memchr(l.host, '\0', sizeof l.host) != NULL && l.host[0] != '\0');
    check(l.user_len <= MTCI_PROXY_CRED_MAX && l.pass_len <= MTCI_PROXY_CRED_MAX);
    check(l.user[l.user_len] == '\0' && l.pass[l.pass_len] == '\0');
    if (l.type == MTCI_PROXY_MTPROTO) {
      uint8_t bin[MTCI_PROXY_SECRET_MAX];
      int bn = mtci_proxy_secret_to_binary(&l.secret, bin, sizeof bin);
      check(bn >= 16);
      mtci_proxy_secret again;
      check(mtci_proxy_secret_from_binary(bin, (size_t)bn, &again, NULL) == 0);
      check(memcmp(&again, &l.secret, sizeof again) == 0);
    }
  } else {
    check(rc < 0 && msg != NULL);
  }
  mtci_proxy_link_free(&l);

  mtci_proxy_secret s;
  rc = mtci_proxy_secret_parse((const char *)d, n, &s, &msg);
  check(rc == 0 || (rc <= -340 && rc >= -354));
  if (rc == 0) check(s.kind != MTCI_SECRET_EE || (s.domain_len >= 1 && s.domain_len <= 182));
  rc = mtci_proxy_secret_from_binary(d, n, &s, &msg);
  check(rc == 0 || (rc <= -340 && rc >= -354));
  mtci_proxy_secret_free(&s);
  return 0;
}
