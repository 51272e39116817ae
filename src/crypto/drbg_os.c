/*
 * The default random source: mbedTLS CTR-DRBG (AES-256) seeded from OS
 * entropy. Shell code (the *_os.c suffix keeps it out of mtconn_core): pure
 * modules only ever see it as an mtc_random_fn.
 */
#include <stdlib.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

#include "crypto/crypto.h"

struct mtci_drbg {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
};

mtci_drbg *mtci_drbg_new(void) {
  static const unsigned char pers[] = "mtconn drbg";
  mtci_drbg *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  mbedtls_entropy_init(&d->entropy);
  mbedtls_ctr_drbg_init(&d->drbg);
  if (mbedtls_ctr_drbg_seed(&d->drbg, mbedtls_entropy_func, &d->entropy, pers,
                            sizeof pers - 1) != 0) {
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
  mbedtls_entropy_free(&d->entropy);
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
