/*
 * Private to src/crypto/: the hardware-accelerated kernels behind the
 * symmetric API. Callers check mtci_crypto_accel_active() first; on builds
 * or CPUs without the instructions these functions are never reached (they
 * exist as stubs so everything links everywhere).
 *
 * Round keys use the mtci_aes256 layout (crypto.h): 15 x 16 bytes.
 */
#ifndef MTCI_CRYPTO_ACCEL_H
#define MTCI_CRYPTO_ACCEL_H

#include <stddef.h>
#include <stdint.h>

/* The kernels exist for x86-64 with GCC/Clang (target attributes); cpu.c
 * reports features only where they do. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MTCI_X86_KERNELS 1
#else
#define MTCI_X86_KERNELS 0
#endif

/* ---- AES-NI (aes_ni.c) ---- */
void mtci_aesni_expand(const uint8_t key[32], uint32_t rk_enc[60], uint32_t rk_dec[60]);
void mtci_aesni_encrypt_block(const uint32_t rk_enc[60], const uint8_t in[16], uint8_t out[16]);
void mtci_aesni_decrypt_block(const uint32_t rk_dec[60], const uint8_t in[16], uint8_t out[16]);
/* iv (32 bytes) is updated to the chaining state after the last block. */
void mtci_aesni_ige_encrypt(const uint32_t rk_enc[60], uint8_t iv[32], const uint8_t *in,
                            uint8_t *out, size_t nblocks);
void mtci_aesni_ige_decrypt(const uint32_t rk_dec[60], uint8_t iv[32], const uint8_t *in,
                            uint8_t *out, size_t nblocks);
/* iv (16 bytes) is updated to the last ciphertext block. */
void mtci_aesni_cbc_decrypt(const uint32_t rk_dec[60], uint8_t iv[16], const uint8_t *in,
                            uint8_t *out, size_t nblocks);
/* out = in XOR keystream for nblocks whole blocks; ctr (big-endian 128-bit)
 * is advanced by nblocks. */
void mtci_aesni_ctr_xor(const uint32_t rk_enc[60], uint8_t ctr[16], const uint8_t *in,
                        uint8_t *out, size_t nblocks);

/* ---- SHA extensions (sha_ni.c) ---- */
void mtci_shani_sha1_blocks(uint32_t h[5], const uint8_t *p, size_t nblocks);
void mtci_shani_sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks);

#endif /* MTCI_CRYPTO_ACCEL_H */
