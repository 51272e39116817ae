/* Zeroize and constant-time compare: the two primitives every secret needs. */
#include <string.h>

#include "crypto/crypto.h"

void mtci_zeroize(void *p, size_t n) {
  /* A volatile function pointer stops the compiler from proving the store
   * dead and removing it. */
  static void *(*const volatile memset_v)(void *, int, size_t) = memset;
  if (p && n) memset_v(p, 0, n);
}

int mtci_ct_equal(const void *a, const void *b, size_t n) {
  const volatile uint8_t *x = a, *y = b;
  uint8_t d = 0;
  for (size_t i = 0; i < n; i++) d |= (uint8_t)(x[i] ^ y[i]);
  return d == 0;
}
