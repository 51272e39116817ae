/* Telegram's built-in RSA public keys (public constants, not secrets). */
#include "crypto/rsa_keys.h"

#include <stddef.h>

/* tdlib td/telegram/net/PublicRsaKeySharedMain.cpp (production). */
static const char k_pem_prod[] =
    "-----BEGIN RSA PUBLIC KEY-----\n"
    "MIIBCgKCAQEA6LszBcC1LGzyr992NzE0ieY+BSaOW622Aa9Bd4ZHLl+TuFQ4lo4g\n"
    "5nKaMBwK/BIb9xUfg0Q29/2mgIR6Zr9krM7HjuIcCzFvDtr+L0GQjae9H0pRB2OO\n"
    "62cECs5HKhT5DZ98K33vmWiLowc621dQuwKWSQKjWf50XYFw42h21P2KXUGyp2y/\n"
    "+aEyZ+uVgLLQbRA1dEjSDZ2iGRy12Mk5gpYc397aYp438fsJoHIgJ2lgMv5h7WY9\n"
    "t6N/byY9Nw9p21Og3AoXSL2q/2IJ1WRUhebgAdGVMlV1fkuOQoEzR7EdpqtQD9Cs\n"
    "5+bfo3Nhmcyvk5ftB0WkJ9z6bNZ7yxrP8wIDAQAB\n"
    "-----END RSA PUBLIC KEY-----\n";

/* Test DCs (same modulus as grammers' key_for_fingerprint "Test"). */
static const char k_pem_test[] =
    "-----BEGIN RSA PUBLIC KEY-----\n"
    "MIIBCgKCAQEAyMEdY1aR+sCR3ZSJrtztKTKqigvO/vBfqACJLZtS7QMgCGXJ6XIR\n"
    "yy7mx66W0/sOFa7/1mAZtEoIokDP3ShoqF4fVNb6XeqgQfaUHd8wJpDWHcR2OFwv\n"
    "plUUI1PLTktZ9uW2WE23b+ixNwJjJGwBDJPQEQFBE+vfmH0JP503wr5INS1poWg/\n"
    "j25sIWeYPHYeOrFp/eXaqhISP6G+q2IeTaWTXpwZj4LzXq5YOpk4bYEQ6mvRq7D1\n"
    "aHWfYmlEGepfaYR8Q0YqvvhYtMte3ITnuSJs171+GDqpdKcSwHnd6FudwGO4pcCO\n"
    "j4WcDuXc2CTHgH8gFTNhp/Y8/SpDOhvn9QIDAQAB\n"
    "-----END RSA PUBLIC KEY-----\n";

/* tdesktop special_config_request.cpp kPublicKey = tdlib ConfigManager.cpp. */
static const char k_pem_simple_config[] =
    "-----BEGIN RSA PUBLIC KEY-----\n"
    "MIIBCgKCAQEAyr+18Rex2ohtVy8sroGPBwXD3DOoKCSpjDqYoXgCqB7ioln4eDCF\n"
    "fOBUlfXUEvM/fnKCpF46VkAftlb4VuPDeQSS/ZxZYEGqHaywlroVnXHIjgqoxiAd\n"
    "192xRGreuXIaUKmkwlM9JID9WS2jUsTpzQ91L8MEPLJ/4zrBwZua8W5fECwCCh2c\n"
    "9G5IzzBm+otMS/YKwmR1olzRCyEkyAEjXWqBI9Ftv5eG8m0VkBzOG655WIYdyV0H\n"
    "fDK/NWcvGqa0w/nriMD6mDjKOryamw0OP9QuYgMN0C9xMW9y8SmP4h92OAWodTYg\n"
    "Y1hZCxdv6cs5UnW9+PWvS+WIbkh+GaWYxwIDAQAB\n"
    "-----END RSA PUBLIC KEY-----\n";

static const struct {
  const char *pem;
  uint64_t fingerprint;
} k_builtin[MTCI_RSA_BUILTIN_COUNT] = {
    [MTCI_RSA_BUILTIN_PROD] = {k_pem_prod, 0xd09d1d85de64fd85ull},
    [MTCI_RSA_BUILTIN_TEST] = {k_pem_test, 0xb25898df208d2603ull},
    [MTCI_RSA_BUILTIN_SIMPLE_CONFIG] = {k_pem_simple_config, 0x6f3a701151477715ull},
};

const char *mtci_rsa_builtin_pem(int which) {
  if (which < 0 || which >= MTCI_RSA_BUILTIN_COUNT) return NULL;
  return k_builtin[which].pem;
}

uint64_t mtci_rsa_builtin_fingerprint(int which) {
  if (which < 0 || which >= MTCI_RSA_BUILTIN_COUNT) return 0;
  return k_builtin[which].fingerprint;
}
