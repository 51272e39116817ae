/* RSA public key set keyed by MTProto fingerprint. */
#include "auth/rsa_keyset.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/rsa_keys.h"


void mtci_rsa_keyset_init(mtci_rsa_keyset *ks) { memset(ks, 0, sizeof *ks); }

static size_t index_of(const mtci_rsa_keyset *ks, uint64_t fingerprint) {
  for (size_t i = 0; i < ks->count; i++)
    if (ks->keys[i].fingerprint == fingerprint) return i;
  return ks->count;
}

int mtci_rsa_keyset_add(mtci_rsa_keyset *ks, const mtci_rsa_key *k) {
  if (!ks || !k) return MTC_ERR_INVALID_ARG;
  if (k->n_len == 0 || k->n_len > sizeof k->n || k->e_len == 0 || k->e_len > sizeof k->e ||
      mtci_rsa_fingerprint(k) != k->fingerprint)
    return MTC_ERR_RSA_KEY;
  size_t i = index_of(ks, k->fingerprint);
  if (i == ks->count) {
    if (ks->count >= MTCI_RSA_KEYSET_MAX) return MTC_ERR_AUTH_KEYSET_FULL;
    if (ks->count == ks->cap) {
      size_t cap = ks->cap + 1; /* exact: keys are added once, at set-up */
      mtci_rsa_key *a = realloc(ks->keys, cap * sizeof *a); /* public keys: nothing to wipe */
      if (!a) return MTC_ERR_NOMEM;
      ks->keys = a;
      ks->cap = cap;
    }
    ks->count++;
  }
  ks->keys[i] = *k;
  return 0;
}

int mtci_rsa_keyset_add_pem(mtci_rsa_keyset *ks, const char *pem, size_t pem_len) {
  if (!ks || !pem) return MTC_ERR_INVALID_ARG;
  mtci_rsa_key k;
  int rc = mtci_rsa_key_from_pem(&k, pem, pem_len);
  if (rc == 0) rc = mtci_rsa_keyset_add(ks, &k);
  return rc;
}

int mtci_rsa_keyset_add_builtin(mtci_rsa_keyset *ks, int test_dcs) {
  if (!ks) return MTC_ERR_INVALID_ARG;
  const char *pem = mtci_rsa_builtin_pem(MTCI_RSA_BUILTIN_PROD);
  if (!pem) return MTC_ERR_INTERNAL;
  int rc = mtci_rsa_keyset_add_pem(ks, pem, strlen(pem));
  if (rc != 0 || !test_dcs) return rc;
  pem = mtci_rsa_builtin_pem(MTCI_RSA_BUILTIN_TEST);
  if (!pem) return MTC_ERR_INTERNAL;
  return mtci_rsa_keyset_add_pem(ks, pem, strlen(pem));
}

int mtci_rsa_keyset_remove(mtci_rsa_keyset *ks, uint64_t fingerprint) {
  if (!ks) return 0;
  size_t i = index_of(ks, fingerprint);
  if (i == ks->count) return 0;
  /* Keep insertion order for the rest. */
  memmove(&ks->keys[i], &ks->keys[i + 1], (ks->count - i - 1) * sizeof ks->keys[0]);
  ks->count--;
  memset(&ks->keys[ks->count], 0, sizeof ks->keys[0]);
  return 1;
}

void mtci_rsa_keyset_clear(mtci_rsa_keyset *ks) {
  if (!ks) return;
  free(ks->keys);
  mtci_rsa_keyset_init(ks);
}

const mtci_rsa_key *mtci_rsa_keyset_find(const mtci_rsa_keyset *ks, uint64_t fingerprint) {
  if (!ks) return NULL;
  size_t i = index_of(ks, fingerprint);
  return i < ks->count ? &ks->keys[i] : NULL;
}

const mtci_rsa_key *mtci_rsa_keyset_choose(const mtci_rsa_keyset *ks, const uint64_t *fps,
                                           size_t n_fps, size_t *index) {
  if (!ks || (!fps && n_fps)) return NULL;
  for (size_t j = 0; j < n_fps; j++) {
    const mtci_rsa_key *k = mtci_rsa_keyset_find(ks, fps[j]);
    if (k) {
      if (index) *index = j;
      return k;
    }
  }
  return NULL;
}
