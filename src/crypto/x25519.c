/*
 * X25519 public keys for the fake-TLS key_share extension (PROTOCOL.md §5.3).
 * A real public key looks like what a browser sends; the matching private
 * scalar is never needed (the proxy does not do a key exchange), so it is
 * zeroized at once.
 */
#include "crypto/crypto.h"

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>

int mtci_x25519_public_key(mtc_random_fn rnd, void *rnd_ud, uint8_t out[32]) {
  if (!rnd || !out) return MTC_ERR_INVALID_ARG;
  uint8_t k[32];
  int rc = rnd(rnd_ud, k, sizeof k);
  if (rc < 0) return rc;
  /* RFC 7748 decodeScalar25519: clear the 3 low bits, clear bit 255, set bit 254. */
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;

  mbedtls_ecp_group grp;
  mbedtls_ecp_point q;
  mbedtls_mpi d;
  mbedtls_ecp_group_init(&grp);
  mbedtls_ecp_point_init(&q);
  mbedtls_mpi_init(&d);
  rc = MTC_ERR_CRYPTO;
  if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_CURVE25519) != 0) goto done;
  if (mbedtls_mpi_read_binary_le(&d, k, sizeof k) != 0) goto done;
  /* No RNG for blinding: mbedTLS then blinds with an internal generator
   * seeded from the scalar, and the caller's stream is used only for k. */
  if (mbedtls_ecp_mul(&grp, &q, &d, &grp.G, NULL, NULL) != 0) goto done;
  if (mbedtls_mpi_write_binary_le(&q.X, out, 32) != 0) goto done;
  rc = 0;
done:
  mtci_zeroize(k, sizeof k);
  mbedtls_mpi_free(&d); /* mbedTLS zeroizes limbs on free */
  mbedtls_ecp_point_free(&q);
  mbedtls_ecp_group_free(&grp);
  return rc;
}
