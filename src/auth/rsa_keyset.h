/*
 * A set of RSA public keys for the auth key handshake, looked up by MTProto
 * fingerprint (§2.4, §6.3 step 2). The keys live in a heap array sized to
 * what was added (an app usually holds one key: a fixed array of 16 cost
 * 8.5 KiB per context); at most MTCI_RSA_KEYSET_MAX. A handshake copies the
 * key it picks, so the set may change while a handshake runs. Not copyable
 * by assignment; mtci_rsa_keyset_clear releases it.
 */
#ifndef MTCI_AUTH_RSA_KEYSET_H
#define MTCI_AUTH_RSA_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

#define MTCI_RSA_KEYSET_MAX 16

typedef struct mtci_rsa_keyset {
  mtci_rsa_key *keys; /* count entries (cap allocated); NULL when empty */
  size_t count, cap;
} mtci_rsa_keyset;

/* Empty set (no allocation). */
void mtci_rsa_keyset_init(mtci_rsa_keyset *ks);

/*
 * Add a key. A key with the same fingerprint is replaced in place (so an
 * override of a built-in key wins); otherwise the key is appended, or
 * MTC_ERR_AUTH_KEYSET_FULL, or MTC_ERR_NOMEM. MTC_ERR_RSA_KEY if k->n_len is 0 or the stored
 * fingerprint is not the key's.
 */
int mtci_rsa_keyset_add(mtci_rsa_keyset *ks, const mtci_rsa_key *k);
/* Parse a PEM public key (PKCS#1 or SPKI) and add it. */
int mtci_rsa_keyset_add_pem(mtci_rsa_keyset *ks, const char *pem, size_t pem_len);
/*
 * Add Telegram's built-in handshake keys: the production key, plus the
 * test-DC key when test_dcs is non-zero (§2.4).
 */
int mtci_rsa_keyset_add_builtin(mtci_rsa_keyset *ks, int test_dcs);
/* Remove the key with this fingerprint; 1 if one was removed, else 0. */
int mtci_rsa_keyset_remove(mtci_rsa_keyset *ks, uint64_t fingerprint);
/* Remove every key and free the array (the set is empty and reusable). */
void mtci_rsa_keyset_clear(mtci_rsa_keyset *ks);

/* The key with this fingerprint, or NULL. */
const mtci_rsa_key *mtci_rsa_keyset_find(const mtci_rsa_keyset *ks, uint64_t fingerprint);

/*
 * Choose the key for a resPQ: the FIRST fingerprint in server order that the
 * set holds (tdlib, tdesktop). Writes its index in fps to *index (may be
 * NULL) and returns the key, or NULL when none matches (the handshake then
 * fails with MTC_ERR_AUTH_NO_RSA_KEY).
 */
const mtci_rsa_key *mtci_rsa_keyset_choose(const mtci_rsa_keyset *ks, const uint64_t *fps,
                                           size_t n_fps, size_t *index);

#endif /* MTCI_AUTH_RSA_KEYSET_H */
