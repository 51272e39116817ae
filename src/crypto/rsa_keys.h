/*
 * Telegram's built-in RSA public keys, as PEM text (PROTOCOL.md §1.7, §2.4).
 * Parse them with mtci_rsa_key_from_pem(); the expected MTProto fingerprint
 * of each is listed too, so a caller (and the tests) can check the parse.
 */
#ifndef MTCI_RSA_KEYS_H
#define MTCI_RSA_KEYS_H

#include <stdint.h>

enum {
  MTCI_RSA_BUILTIN_PROD = 0,          /* handshake key of the production DCs */
  MTCI_RSA_BUILTIN_TEST = 1,          /* handshake key of the test DCs */
  MTCI_RSA_BUILTIN_SIMPLE_CONFIG = 2, /* decrypts the DoH "simple config" (never a handshake key) */
  MTCI_RSA_BUILTIN_COUNT = 3
};

/* NUL-terminated PEM ("-----BEGIN RSA PUBLIC KEY-----" ...), or NULL if
 * `which` is out of range. */
const char *mtci_rsa_builtin_pem(int which);
/* Published fingerprint of key `which` (PROTOCOL.md §7.2), 0 if out of range. */
uint64_t mtci_rsa_builtin_fingerprint(int which);

#endif /* MTCI_RSA_KEYS_H */
