/* Fuzz the RSA public-key PEM parser (keys come from configuration files). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mtci_rsa_key k;
  if (mtci_rsa_key_from_pem(&k, (const char *)data, size) == 0) {
    /* A key that parsed must work for the raw operation on a small input. */
    uint8_t in[1] = {2}, out[512];
    if (mtci_rsa_public_raw(&k, in, sizeof in, out, sizeof out) != 0 || k.n_len > sizeof out)
      abort();
  }
  return 0;
}
