/*
 * CPU feature detection (cpuid) and the process-wide accel mask that picks
 * between the AES-NI/SHA-NI kernels and the portable mbedTLS path, and
 * between the mulx/adx and portable-C Montgomery kernels (montgomery.c).
 */
#include <stdatomic.h>

#include "crypto/accel.h"
#include "crypto/crypto.h"

#if MTCI_X86_KERNELS
#include <cpuid.h>
#endif

/* -1 = not probed yet. cpuid is slow in VMs (it traps), so probe once. */
static _Atomic int g_available = -1;
static _Atomic unsigned g_allowed = ~0u;

static unsigned probe(void) {
  unsigned r = 0;
#if MTCI_X86_KERNELS
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1, aes = (c >> 25) & 1;
  if (aes && sse41 && ssse3) r |= MTCI_ACCEL_AESNI;
  if (__get_cpuid_max(0, NULL) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    if (((b >> 29) & 1) && sse41 && ssse3) r |= MTCI_ACCEL_SHANI;
    if (((b >> 8) & 1) && ((b >> 19) & 1)) r |= MTCI_ACCEL_MULX; /* BMI2, ADX */
  }
#endif
  return r;
}

unsigned mtci_crypto_accel_available(void) {
  int v = atomic_load_explicit(&g_available, memory_order_relaxed);
  if (v < 0) {
    v = (int)probe();
    atomic_store_explicit(&g_available, v, memory_order_relaxed);
  }
  return (unsigned)v;
}

unsigned mtci_crypto_accel_active(void) {
  return mtci_crypto_accel_available() & atomic_load_explicit(&g_allowed, memory_order_relaxed);
}

void mtci_crypto_set_accel(unsigned allowed) {
  atomic_store_explicit(&g_allowed, allowed, memory_order_relaxed);
}
