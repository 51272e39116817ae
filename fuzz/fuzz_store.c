/* Fuzz the state file reader: the input is the file's text. Invariants
 * (a violation traps):
 *   - a failure is one of the documented codes, with a message, and leaves
 *     the state zeroized;
 *   - a success always serializes again (the validator and the writer
 *     agree), and writing what was read is a fixed point: parse(write(s))
 *     writes the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static mtci_state st_a, st_b; /* ~75 KB each: keep them off the stack */

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  char msg[256] = "";
  int rc = mtci_state_from_json((const char *)d, n, &st_a, msg, sizeof msg);
  if (rc != 0) {
    check(rc == MTC_ERR_STORE_CORRUPT || rc == MTC_ERR_STORE_VERSION ||
          rc == MTC_ERR_STORE_TOO_LARGE || rc == MTC_ERR_NOMEM);
    check(msg[0] != '\0');
    check(st_a.n_dcs == 0 && st_a.version == 0);
    return 0;
  }
  check(st_a.version == MTCI_STATE_VERSION);
  check(st_a.n_dcs >= 0 && st_a.n_dcs <= MTCI_STATE_MAX_DCS);
  check(mtci_state_validate(&st_a, msg, sizeof msg) == 0);

  char *t1 = NULL, *t2 = NULL;
  size_t n1 = 0, n2 = 0;
  rc = mtci_state_to_json(&st_a, &t1, &n1, msg, sizeof msg);
  if (rc == MTC_ERR_NOMEM) return 0;
  check(rc == 0 && t1 && n1 == strlen(t1));
  check(mtci_state_from_json(t1, n1, &st_b, msg, sizeof msg) == 0);
  rc = mtci_state_to_json(&st_b, &t2, &n2, msg, sizeof msg);
  if (rc == 0) check(n1 == n2 && memcmp(t1, t2, n1) == 0);
  mtci_state_json_free(t1, n1 + 1);
  mtci_state_json_free(t2, n2 + 1);
  mtci_state_clear(&st_a);
  mtci_state_clear(&st_b);
  return 0;
}
