/*
 * The default random source: mbedTLS CTR-DRBG (AES-256) seeded from OS
 * entropy. Shell code (the *_os.c suffix keeps it out of mtconn_core): pure
 * modules only ever see it as an mtc_random_fn.
 *
 * The DRBG draws its seed and reseeds straight from getrandom(2) rather
 * than through an mbedtls_entropy_context: that context (an accumulator
 * and a table of sources) is ~37 KiB, which every context would carry.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include <mbedtls/ctr_drbg.h>

#include "crypto/crypto.h"

struct mtci_drbg {
  mbedtls_ctr_drbg_context drbg;
};

/* mbedTLS's entropy callback: len bytes from the kernel (blocking only until
 * the pool is first initialised, at boot). 0 or nonzero on failure. */
static int os_entropy(void *ud, unsigned char *out, size_t len) {
  (void)ud;
  size_t got = 0;
  for (int tries = 0; got < len && tries < 64; tries++) {
    ssize_t r = getrandom(out + got, len - got, 0);
    if (r > 0) got += (size_t)r;
    else if (r < 0 && errno != EINTR) return -1;
  }
  return got == len ? 0 : -1;
}

mtci_drbg *mtci_drbg_new(void) {
  static const unsigned char pers[] = "mtconn drbg";
  mtci_drbg *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  mbedtls_ctr_drbg_init(&d->drbg);
  if (mbedtls_ctr_drbg_seed(&d->drbg, os_entropy, NULL, pers, sizeof pers - 1) != 0) {
    mtci_drbg_free(d);
    return NULL;
  }
  /* Reseed on its own schedule; prediction resistance is not needed here. */
  mbedtls_ctr_drbg_set_reseed_interval(&d->drbg, 10000);
  return d;
}

void mtci_drbg_free(mtci_drbg *d) {
  if (!d) return;
  mbedtls_ctr_drbg_free(&d->drbg);
  mtci_zeroize(d, sizeof *d);
  free(d);
}

int mtci_drbg_random(void *drbg, uint8_t *out, size_t len) {
  mtci_drbg *d = drbg;
  if (!d || (!out && len)) return MTC_ERR_INVALID_ARG;
  while (len > 0) {
    size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
    if (mbedtls_ctr_drbg_random(&d->drbg, out, n) != 0) return MTC_ERR_RANDOM;
    out += n;
    len -= n;
  }
  return 0;
}
