/*
 * Symmetric crypto: SHA-1, SHA-256, HMAC-SHA-256, AES-256 (block, IGE, CBC
 * decrypt, CTR stream) and the MTProto KDFs. Every known-answer vector runs
 * on each backend: the portable mbedTLS path (accel mask 0) and, when the
 * CPU has them, the AES-NI/SHA-NI kernels (mask ~0u). Then the two backends
 * are cross-checked on random inputs.
 */
#include "crypto/crypto.h"
#include "test.h"

/* Backends to run: portable always; accelerated if the CPU offers any. */
static const unsigned k_masks[2] = {0u, ~0u};
static size_t n_masks(void) { return mtci_crypto_accel_available() ? 2 : 1; }

#define FOR_EACH_BACKEND(m)                                                                        \
  for (size_t m##_i = 0; m##_i < n_masks() && (mtci_crypto_set_accel(k_masks[m##_i]), 1);         \
       m##_i++)

/* Restore the default (all acceleration) after a case, whatever happened. */
static void reset_accel(void) { mtci_crypto_set_accel(~0u); }

static size_t unhex(const char *hex, uint8_t *out, size_t cap) { return test_unhex(hex, out, cap); }

/* ---- SHA-1 / SHA-256: FIPS 180-2 examples -------------------------------- */

static const char k_abc[] = "abc";
static const char k_448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

TEST(sha1_fips180) {
  uint8_t want[20], got[20];
  FOR_EACH_BACKEND(m) {
    unhex("a9993e364706816aba3e25717850c26c9cd0d89d", want, 20);
    mtci_sha1(k_abc, 3, got);
    CHECK_MEM(got, want, 20);
    unhex("84983e441c3bd26ebaae4aa1f95129e5e54670f1", want, 20);
    mtci_sha1(k_448, strlen(k_448), got);
    CHECK_MEM(got, want, 20);
    unhex("da39a3ee5e6b4b0d3255bfef95601890afd80709", want, 20);
    mtci_sha1("", 0, got);
    CHECK_MEM(got, want, 20);
  }
  reset_accel();
}

TEST(sha256_fips180) {
  uint8_t want[32], got[32];
  FOR_EACH_BACKEND(m) {
    unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
    mtci_sha256(k_abc, 3, got);
    CHECK_MEM(got, want, 32);
    unhex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", want, 32);
    mtci_sha256(k_448, strlen(k_448), got);
    CHECK_MEM(got, want, 32);
    unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
    mtci_sha256("", 0, got);
    CHECK_MEM(got, want, 32);
  }
  reset_accel();
}

/* One million 'a', fed in odd-sized chunks (1, 7, 63, 64, 65, 1000, ...). */
TEST(sha_million_a_chunked) {
  static const size_t chunks[] = {1, 7, 63, 64, 65, 127, 1000, 4093};
  static uint8_t a[4096];
  memset(a, 'a', sizeof a);
  uint8_t want1[20], want256[32], got1[20], got256[32];
  unhex("34aa973cd4c4daa4f61eeb2bdbad27316534016f", want1, 20);
  unhex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want256, 32);
  FOR_EACH_BACKEND(m) {
    mtci_sha1_ctx c1;
    mtci_sha256_ctx c2;
    mtci_sha1_init(&c1);
    mtci_sha256_init(&c2);
    size_t done = 0, k = 0;
    while (done < 1000000) {
      size_t n = chunks[k++ % (sizeof chunks / sizeof chunks[0])];
      if (n > 1000000 - done) n = 1000000 - done;
      mtci_sha1_update(&c1, a, n);
      mtci_sha256_update(&c2, a, n);
      done += n;
    }
    mtci_sha1_final(&c1, got1);
    mtci_sha256_final(&c2, got256);
    CHECK_MEM(got1, want1, 20);
    CHECK_MEM(got256, want256, 32);
  }
  reset_accel();
}

/* The chaining state is shared by both backends: switching mid-hash works. */
TEST(sha_switch_backend_mid_hash) {
  uint8_t want[32], got[32];
  unhex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", want, 32);
  for (unsigned first = 0; first < 2; first++) {
    mtci_sha256_ctx c;
    mtci_crypto_set_accel(first ? ~0u : 0u);
    mtci_sha256_init(&c);
    mtci_sha256_update(&c, k_448, 20);
    mtci_crypto_set_accel(first ? 0u : ~0u);
    mtci_sha256_update(&c, k_448 + 20, strlen(k_448) - 20);
    mtci_sha256_final(&c, got);
    CHECK_MEM(got, want, 32);
  }
  reset_accel();
}

/* ---- HMAC-SHA-256: RFC 4231 cases 1-4, 6, 7 ------------------------------ */

TEST(hmac_sha256_rfc4231) {
  static const struct {
    size_t key_len;
    uint8_t key_byte; /* key = key_byte repeated, unless key_hex is set */
    const char *key_hex;
    const char *data; /* text, or NULL for data_byte * data_len */
    uint8_t data_byte;
    size_t data_len;
    const char *mac;
  } v[] = {
      {20, 0x0b, NULL, "Hi There", 0, 0,
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {4, 0, "4a656665", "what do ya want for nothing?", 0, 0,
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {20, 0xaa, NULL, NULL, 0xdd, 50,
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {25, 0, "0102030405060708090a0b0c0d0e0f10111213141516171819", NULL, 0xcd, 50,
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {131, 0xaa, NULL, "Test Using Larger Than Block-Size Key - Hash Key First", 0, 0,
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {131, 0xaa, NULL,
       "This is a test using a larger than block-size key and a larger than block-size data. "
       "The key needs to be hashed before being used by the HMAC algorithm.",
       0, 0, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  FOR_EACH_BACKEND(m) {
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
      uint8_t key[131], data[160], want[32], got[32];
      size_t dlen;
      if (v[i].key_hex) CHECK_EQ_INT(unhex(v[i].key_hex, key, sizeof key), v[i].key_len);
      else memset(key, v[i].key_byte, v[i].key_len);
      if (v[i].data) {
        dlen = strlen(v[i].data);
        memcpy(data, v[i].data, dlen);
      } else {
        dlen = v[i].data_len;
        memset(data, v[i].data_byte, dlen);
      }
      unhex(v[i].mac, want, 32);
      mtci_hmac_sha256(key, v[i].key_len, data, dlen, got);
      CHECK_MEM(got, want, 32);
      /* streaming, split in two */
      mtci_hmac_sha256_ctx c;
      mtci_hmac_sha256_init(&c, key, v[i].key_len);
      mtci_hmac_sha256_update(&c, data, dlen / 3);
      mtci_hmac_sha256_update(&c, data + dlen / 3, dlen - dlen / 3);
      mtci_hmac_sha256_final(&c, got);
      CHECK_MEM(got, want, 32);
    }
  }
  reset_accel();
}

/* ---- AES-256 block: FIPS-197 appendix C.3 -------------------------------- */

TEST(aes256_block_fips197) {
  uint8_t key[32], pt[16], want[16], got[16];
  unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key, 32);
  unhex("00112233445566778899aabbccddeeff", pt, 16);
  unhex("8ea2b7ca516745bfeafc49904b496089", want, 16);
  FOR_EACH_BACKEND(m) {
    mtci_aes256 k;
    CHECK_EQ_INT(mtci_aes256_init(&k, key), 0);
    mtci_aes256_encrypt_block(&k, pt, got);
    CHECK_MEM(got, want, 16);
    mtci_aes256_decrypt_block(&k, want, got);
    CHECK_MEM(got, pt, 16);
    memcpy(got, pt, 16); /* in place */
    mtci_aes256_encrypt_block(&k, got, got);
    CHECK_MEM(got, want, 16);
    mtci_aes256_decrypt_block(&k, got, got);
    CHECK_MEM(got, pt, 16);
    mtci_aes256_free(&k);
    static const mtci_aes256 zero_key;
    CHECK_MEM(&k, &zero_key, sizeof k); /* free zeroizes */
  }
  reset_accel();
}

/* A key expanded under one backend is used under the other. */
TEST(aes256_key_crosses_backends) {
  uint8_t key[32], pt[16], want[16], got[16];
  unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key, 32);
  unhex("00112233445566778899aabbccddeeff", pt, 16);
  unhex("8ea2b7ca516745bfeafc49904b496089", want, 16);
  for (unsigned a = 0; a < 2; a++) {
    mtci_aes256 k;
    mtci_crypto_set_accel(a ? ~0u : 0u);
    CHECK_EQ_INT(mtci_aes256_init(&k, key), 0);
    mtci_crypto_set_accel(a ? 0u : ~0u);
    mtci_aes256_encrypt_block(&k, pt, got);
    CHECK_MEM(got, want, 16);
    mtci_aes256_decrypt_block(&k, want, got);
    CHECK_MEM(got, pt, 16);
  }
  reset_accel();
}

/* ---- AES-256-IGE ---------------------------------------------------------- */

/* PROTOCOL.md §7.6 (grammers): key = iv = data = 00..1f. */
TEST(ige_grammers_vector) {
  uint8_t k[32], buf[32], want[32], got[32];
  for (int i = 0; i < 32; i++) k[i] = (uint8_t)i;
  FOR_EACH_BACKEND(m) {
    unhex("e28112a53e5c89c7b1ea8071c133699fd4e86b26c4bac9fc5af1ab8ce27a44a4", want, 32);
    CHECK_EQ_INT(mtci_aes256_ige_encrypt(k, k, k, got, 32), 0);
    CHECK_MEM(got, want, 32);
    unhex("e5777afacd7b2c16f7ac40cae61ef603fee6098fb8a8860ab9ee672cd7e5bacc", want, 32);
    CHECK_EQ_INT(mtci_aes256_ige_decrypt(k, k, k, got, 32), 0);
    CHECK_MEM(got, want, 32);
    /* in place both ways */
    memcpy(buf, k, 32);
    CHECK_EQ_INT(mtci_aes256_ige_encrypt(k, k, buf, buf, 32), 0);
    CHECK_EQ_INT(mtci_aes256_ige_decrypt(k, k, buf, buf, 32), 0);
    CHECK_MEM(buf, k, 32);
  }
  reset_accel();
}

/* Telethon's old test_crypto.py IGE vector (32-byte ASCII plaintext). */
TEST(ige_telethon_vector) {
  uint8_t key[32], iv[32], pt[32], ct[32], got[32];
  unhex("d1f44d58790cf82f7a2ce9f9a41704d943c9ab6181f3f8ddcb0c3692011fc279", key, 32);
  unhex("3a02917890446aa6039043089e4058b545ff7779f31cdedefb6f8d6dd6652e5a", iv, 32);
  memcpy(pt, "My len is more uniform, promise!", 32);
  unhex("57d1ed2701a663c3cbefaae51d1a5b1bdfcd491f3e5a0a09b9d23dba46d18e27", ct, 32);
  FOR_EACH_BACKEND(m) {
    CHECK_EQ_INT(mtci_aes256_ige_encrypt(key, iv, pt, got, 32), 0);
    CHECK_MEM(got, ct, 32);
    CHECK_EQ_INT(mtci_aes256_ige_decrypt(key, iv, ct, got, 32), 0);
    CHECK_MEM(got, pt, 32);
  }
  reset_accel();
}

TEST(bad_lengths) {
  uint8_t k[32] = {0}, buf[48] = {0};
  FOR_EACH_BACKEND(m) {
    static const size_t bad[] = {1, 15, 17, 31, 47};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      CHECK_EQ_INT(mtci_aes256_ige_encrypt(k, k, buf, buf, bad[i]), MTC_ERR_BAD_LENGTH);
      CHECK_EQ_INT(mtci_aes256_ige_decrypt(k, k, buf, buf, bad[i]), MTC_ERR_BAD_LENGTH);
      CHECK_EQ_INT(mtci_aes256_cbc_decrypt(k, k, buf, buf, bad[i]), MTC_ERR_BAD_LENGTH);
    }
    CHECK_EQ_INT(mtci_aes256_ige_encrypt(k, k, buf, buf, 0), 0);
    CHECK_EQ_INT(mtci_aes256_ige_decrypt(k, k, buf, buf, 0), 0);
    CHECK_EQ_INT(mtci_aes256_cbc_decrypt(k, k, buf, buf, 0), 0);
  }
  reset_accel();
}

/* ---- AES-256-CBC decrypt: SP 800-38A F.2.6 -------------------------------- */

static const char k_sp_key[] = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
static const char k_sp_pt[] = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                              "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

TEST(cbc_decrypt_sp800_38a) {
  uint8_t key[32], iv[16], ct[64], pt[64], got[64];
  unhex(k_sp_key, key, 32);
  unhex("000102030405060708090a0b0c0d0e0f", iv, 16);
  unhex("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
        "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        ct, 64);
  unhex(k_sp_pt, pt, 64);
  FOR_EACH_BACKEND(m) {
    for (size_t n = 16; n <= 64; n += 16) {
      memset(got, 0, sizeof got);
      CHECK_EQ_INT(mtci_aes256_cbc_decrypt(key, iv, ct, got, n), 0);
      CHECK_MEM(got, pt, n);
    }
    memcpy(got, ct, 64);
    CHECK_EQ_INT(mtci_aes256_cbc_decrypt(key, iv, got, got, 64), 0);
    CHECK_MEM(got, pt, 64);
  }
  reset_accel();
}

/*
 * A 12-block CBC known answer derived from the same published vector, so the
 * 8-block pipeline is checked too: ciphertext = (C1..C4) x 3. Since
 * D(Ck) = Pk ^ C(k-1) (C0 = IV), block j decrypts to D(Cj) ^ (previous
 * ciphertext block), all from the published values.
 */
TEST(cbc_decrypt_long_derived) {
  uint8_t key[32], iv[16], c[64], p[64], ct[192], want[192], got[192];
  unhex(k_sp_key, key, 32);
  unhex("000102030405060708090a0b0c0d0e0f", iv, 16);
  unhex("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
        "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        c, 64);
  unhex(k_sp_pt, p, 64);
  for (int j = 0; j < 12; j++) {
    const int kb = j % 4;
    const uint8_t *ck_prev = kb ? c + 16 * (kb - 1) : iv; /* C(k-1) in the original chain */
    const uint8_t *prev = j ? ct + 16 * (j - 1) : iv;     /* previous block in ours */
    memcpy(ct + 16 * j, c + 16 * kb, 16);
    for (int b = 0; b < 16; b++)
      want[16 * j + b] = (uint8_t)(p[16 * kb + b] ^ ck_prev[b] ^ prev[b]);
  }
  CHECK_MEM(want, p, 64); /* the first 4 blocks are the published plaintext */
  FOR_EACH_BACKEND(m) {
    CHECK_EQ_INT(mtci_aes256_cbc_decrypt(key, iv, ct, got, 192), 0);
    CHECK_MEM(got, want, 192);
    memcpy(got, ct, 192);
    CHECK_EQ_INT(mtci_aes256_cbc_decrypt(key, iv, got, got, 192), 0);
    CHECK_MEM(got, want, 192);
  }
  reset_accel();
}

/* ---- AES-256-CTR: SP 800-38A F.5.5, stream splits, counter wrap ----------- */

TEST(ctr_sp800_38a) {
  uint8_t key[32], iv[16], pt[64], ct[64], got[64];
  unhex(k_sp_key, key, 32);
  unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", iv, 16);
  unhex(k_sp_pt, pt, 64);
  unhex("601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
        "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6",
        ct, 64);
  FOR_EACH_BACKEND(m) {
    mtci_aes_ctr c;
    CHECK_EQ_INT(mtci_aes_ctr_init(&c, key, iv), 0);
    mtci_aes_ctr_xor(&c, pt, got, 64);
    CHECK_MEM(got, ct, 64);
    mtci_aes_ctr_free(&c);
    /* in place, odd split */
    CHECK_EQ_INT(mtci_aes_ctr_init(&c, key, iv), 0);
    memcpy(got, ct, 64);
    mtci_aes_ctr_xor(&c, got, got, 5);
    mtci_aes_ctr_xor(&c, got + 5, got + 5, 40);
    mtci_aes_ctr_xor(&c, got + 45, got + 45, 19);
    CHECK_MEM(got, pt, 64);
    mtci_aes_ctr_free(&c);
  }
  reset_accel();
}

/* Random splits of a 4 KiB buffer (including runs of 1-byte feeds) give the
 * same output as one call, on each backend, and both backends agree. */
TEST(ctr_split_property) {
  static uint8_t in[4096], whole[2][4096], split[4096];
  uint8_t key[32], iv[16];
  uint64_t s = 0x1234567;
  for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)test_rand64(&s);
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)test_rand64(&s);
  for (int i = 0; i < 16; i++) iv[i] = (uint8_t)test_rand64(&s);
  FOR_EACH_BACKEND(m) {
    mtci_aes_ctr c;
    CHECK_EQ_INT(mtci_aes_ctr_init(&c, key, iv), 0);
    mtci_aes_ctr_xor(&c, in, whole[m_i], sizeof in);
    mtci_aes_ctr_free(&c);
    for (int round = 0; round < 40; round++) {
      CHECK_EQ_INT(mtci_aes_ctr_init(&c, key, iv), 0);
      size_t off = 0;
      while (off < sizeof in) {
        uint64_t r = test_rand64(&s);
        size_t n;
        switch (r % 4) {
        case 0: n = 1; break;                         /* single bytes */
        case 1: n = (size_t)(r >> 8) % 16 + 1; break; /* within a block */
        case 2: n = (size_t)(r >> 8) % 200; break;    /* a few blocks, maybe 0 */
        default: n = (size_t)(r >> 8) % 1500; break;  /* several 8-block batches */
        }
        if (n > sizeof in - off) n = sizeof in - off;
        mtci_aes_ctr_xor(&c, in + off, split + off, n);
        off += n;
      }
      mtci_aes_ctr_free(&c);
      CHECK_MEM(split, whole[m_i], sizeof in);
    }
  }
  if (n_masks() == 2) CHECK_MEM(whole[0], whole[1], sizeof in);
  reset_accel();
}

/*
 * Counter carries: IVs whose low 64 bits (or all 128) are near all-ones, so
 * the increment crosses the 64-bit word inside an 8-block batch. Each
 * keystream block is checked against AES(expected counter) done by hand.
 */
TEST(ctr_counter_wrap) {
  static const char *ivs[] = {
      "0000000000000000ffffffffffffffff", "0123456789abcdeffffffffffffffffa",
      "fffffffffffffffffffffffffffffffd", "00000000fffffffffffffffffffffff0",
      "ffffffffffffffff00000000fffffffe",
  };
  uint8_t key[32], zero[16 * 20] = {0}, ks[16 * 20];
  unhex(k_sp_key, key, 32);
  FOR_EACH_BACKEND(m) {
    for (size_t v = 0; v < sizeof ivs / sizeof ivs[0]; v++) {
      uint8_t iv[16], ctr[16], want[16];
      unhex(ivs[v], iv, 16);
      mtci_aes_ctr c;
      CHECK_EQ_INT(mtci_aes_ctr_init(&c, key, iv), 0);
      mtci_aes_ctr_xor(&c, zero, ks, 3);                   /* partial first */
      mtci_aes_ctr_xor(&c, zero + 3, ks + 3, 16 * 20 - 3); /* then many blocks */
      /* expected: AES_k(iv + i) with a hand-rolled 128-bit big-endian add */
      memcpy(ctr, iv, 16);
      for (int b = 0; b < 20; b++) {
        mtci_aes256_encrypt_block(&c.key, ctr, want);
        CHECK_MEM(ks + 16 * b, want, 16);
        int j = 15;
        while (j >= 0 && ++ctr[j] == 0) j--;
      }
      mtci_aes_ctr_free(&c);
    }
  }
  reset_accel();
}

/* ---- backends agree on random inputs ------------------------------------ */

TEST(cross_check_random) {
  static uint8_t in[3000], out[2][3000];
  uint64_t s = 0xfeedface;
  if (n_masks() < 2) return; /* nothing to compare against */
  for (int iter = 0; iter < 150; iter++) {
    uint8_t key[32], iv[32], h1[2][20], h2[2][32];
    size_t len = (size_t)(test_rand64(&s) % sizeof in);
    size_t blen = len & ~(size_t)15;
    for (size_t i = 0; i < len; i++) in[i] = (uint8_t)test_rand64(&s);
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)test_rand64(&s);
    for (int i = 0; i < 32; i++) iv[i] = (uint8_t)test_rand64(&s);
    if (iter % 5 == 0) memset(iv + 8, 0xff, 8); /* CTR carry into the high word */
    for (int b = 0; b < 2; b++) {
      mtci_crypto_set_accel(b ? ~0u : 0u);
      mtci_sha1(in, len, h1[b]);
      mtci_sha256(in, len, h2[b]);
    }
    CHECK_MEM(h1[0], h1[1], 20);
    CHECK_MEM(h2[0], h2[1], 32);
    for (int op = 0; op < 4; op++) {
      for (int b = 0; b < 2; b++) {
        mtci_crypto_set_accel(b ? ~0u : 0u);
        if (op == 0) CHECK_EQ_INT(mtci_aes256_ige_encrypt(key, iv, in, out[b], blen), 0);
        if (op == 1) CHECK_EQ_INT(mtci_aes256_ige_decrypt(key, iv, in, out[b], blen), 0);
        if (op == 2) CHECK_EQ_INT(mtci_aes256_cbc_decrypt(key, iv, in, out[b], blen), 0);
        if (op == 3) {
          mtci_aes_ctr c;
          CHECK_EQ_INT(mtci_aes_ctr_init(&c, key, iv), 0);
          mtci_aes_ctr_xor(&c, in, out[b], len / 2);
          mtci_aes_ctr_xor(&c, in + len / 2, out[b] + len / 2, len - len / 2);
          mtci_aes_ctr_free(&c);
        }
      }
      CHECK_MEM(out[0], out[1], op == 3 ? len : blen);
    }
    /* IGE round trip on the accelerated path */
    CHECK_EQ_INT(mtci_aes256_ige_encrypt(key, iv, in, out[0], blen), 0);
    CHECK_EQ_INT(mtci_aes256_ige_decrypt(key, iv, out[0], out[0], blen), 0);
    CHECK_MEM(out[0], in, blen);
  }
  reset_accel();
}

/* ---- MTProto key derivation ---------------------------------------------- */

static void fill_a(uint8_t a[256]) {
  for (int i = 0; i < 256; i++) a[i] = (uint8_t)i;
}

TEST(auth_key_id_vector) {
  uint8_t a[256], id[8], want[8];
  fill_a(a);
  unhex("32d1586ea457dfc8", want, 8);
  FOR_EACH_BACKEND(m) {
    mtci_auth_key_id(a, id);
    CHECK_MEM(id, want, 8);
  }
  reset_accel();
}

/* PROTOCOL.md §7.6: A = 00..ff, M = 00..0f. */
TEST(mtp2_kdf_vectors) {
  uint8_t a[256], mk[16], key[32], iv[32], wk[32], wi[32];
  fill_a(a);
  for (int i = 0; i < 16; i++) mk[i] = (uint8_t)i;
  FOR_EACH_BACKEND(m) {
    mtci_mtp2_kdf(a, mk, 0, key, iv);
    unhex("704ed09c8b41668ae8f99d244738f71dbddc44469b6bbd4aa8573dd042bd059e", wk, 32);
    unhex("4d266000a550edabbf4c7ce40fd0043cc92230184cd317a5cc9c2482fd3b9318", wi, 32);
    CHECK_MEM(key, wk, 32);
    CHECK_MEM(iv, wi, 32);
    mtci_mtp2_kdf(a, mk, 8, key, iv);
    unhex("217725799b245806458174a1fcfbc883906807b15033fdd0ea2b4d69cf9c364e", wk, 32);
    unhex("669a6538917a4fa56ca32360a431c9160be4ad887140980dab91ce7bdc47ffbc", wi, 32);
    CHECK_MEM(key, wk, 32);
    CHECK_MEM(iv, wi, 32);
  }
  reset_accel();
}

/* gram-js tests/crypto/calcKey.spec: server side (x = 8), random auth key. */
TEST(mtp2_kdf_gramjs_vector) {
  uint8_t a[256], mk[16], key[32], iv[32], wk[32], wi[32];
  CHECK_EQ_INT(
      unhex("bbf38532a79cd64363b490b3bc5e258adfc1d1a67ef3c6d322caac603f90a15215b609"
            "0ccb2226b477b24eb3412757d078d53c72b81864d1376ff20eb405a591781726495407628d8d611e37"
            "ecd6e23c605b57c53b40270bac7e7de0312a5deb3a1a16e65808b944fcf700d3788da10074d5c088e9"
            "e6aca119320d7f07c16d7e3c9fd48e9d3f50ccc5276a30002d9919831bf783c368ce4b3e6f25f95875"
            "ec9315523cfcaa3ee50b1e40e5552cee2e16eec86b46308c97f808d58f249479bb0ee1b7b08cf7f0fc"
            "047fbe38df6083558494e732dbf26d16b1538c22d361bf31d3dc4f2b2cb115b3bfac1ec45c960e0854"
            "221cf484533025fa679a9b7a8ae11a00",
            a, 256),
      256);
  unhex("00f285b0bf254b5242e075bf87806c51", mk, 16);
  unhex("93355e3f1f50529b6fb93eaf97f29b69c16345f53621e9d45cd9a11ddfbebac9", wk, 32);
  unhex("11e94363ad7145222e2fbac4aaa27f01a6d832fb8115e89395bc43e23f868e47", wi, 32);
  FOR_EACH_BACKEND(m) {
    mtci_mtp2_kdf(a, mk, 8, key, iv);
    CHECK_MEM(key, wk, 32);
    CHECK_MEM(iv, wi, 32);
  }
  reset_accel();
}

/*
 * PROTOCOL.md §7.6 encrypt_client_data_v2: plaintext = 45-byte string + 19
 * zero bytes; msg_key = SHA256(A[88:120] || plaintext)[8:24] (x = 0), then
 * KDF and IGE. Then the receive direction: decrypt, recompute msg_key.
 */
TEST(mtp2_encrypt_client_data_vector) {
  static const char msg[] = "Hello, world! This data should remain secure!";
  uint8_t a[256], pt[64] = {0}, pkt[88], want[88], mk[16], large[32], key[32], iv[32], back[64];
  fill_a(a);
  CHECK_EQ_INT(strlen(msg), 45);
  memcpy(pt, msg, 45);
  CHECK_EQ_INT(unhex("32d1586ea457dfc8a81729d46db54019a2bfd7f744f9b96c"
                     "4f716cfdc4477db2a2c15f6ddb85235fb9552f1d8407c6aaea00cc844c5a1bf6"
                     "ac44b79b5edc2a23868b3d6073a590992c0f2975243d563ea180d218ee757c9a",
                     want, 88),
               88);
  FOR_EACH_BACKEND(m) {
    mtci_auth_key_id(a, pkt);
    mtci_mtp2_msg_key(a, 0, pt, 64, mk, large);
    CHECK_MEM(large + 8, mk, 16);
    memcpy(pkt + 8, mk, 16);
    mtci_mtp2_kdf(a, mk, 0, key, iv);
    CHECK_EQ_INT(mtci_aes256_ige_encrypt(key, iv, pt, pkt + 24, 64), 0);
    CHECK_MEM(pkt, want, 88);
    /* receive side */
    uint8_t mk2[16];
    mtci_mtp2_kdf(a, want + 8, 0, key, iv);
    CHECK_EQ_INT(mtci_aes256_ige_decrypt(key, iv, want + 24, back, 64), 0);
    CHECK_MEM(back, pt, 64);
    mtci_mtp2_msg_key(a, 0, back, 64, mk2, NULL);
    CHECK(mtci_ct_equal(mk2, want + 8, 16));
  }
  reset_accel();
}

/* Telethon's old test_calc_key (MTProto 1.0 KDF), client (x=0) and server (x=8). */
TEST(mtp1_kdf_telethon_vector) {
  uint8_t a[256], mk[16], key[32], iv[32], wk[32], wi[32];
  CHECK_EQ_INT(
      unhex("bcd26db7ca76f45d5b88832720f3118a73d0349431ae2a4f03869a2f48231a8cb56ae924e0497643"
            "6d5ee7301a3543091603d29da989d6ce08500f6472a0b3ebfe63761adf4a14969816a347ab041421"
            "5ceb0abc6edfc425c609b716149c2781153db0af0e0b52aa04363673f0cfb7b83e2c449478d7f8e0"
            "84cb25d305b2e8954d723fa2e8496ef90b5b459baa0c587f0e69deee641d782f4aceea5e7d303ba8"
            "3342bb52a1bf6504b91ea122663da54d409edd8180c9a5fbfc67dd150370210f6644168932eacab1"
            "41994fa93450a9a2c63bb243391d4335d20dec4cd9ab772d030d79c276175d02150c426197cea5b1"
            "e45d8ee02ccf437b6ffa9966a4704d00",
            a, 256),
      256);
  FOR_EACH_BACKEND(m) {
    unhex("ba1acfdaa85e43626cfab60c3a9bb0fc", mk, 16);
    unhex("afe384516de0210cd931e49aa0765f676378a1b0c9bc162776cf2c9d4daec6a5", wk, 32);
    unhex("b851f3c5a35dc6df9ee051bd228d13090e9a9d5e38a2f8e70077d9c1a7a0f70f", wi, 32);
    mtci_mtp1_kdf(a, mk, 0, key, iv);
    CHECK_MEM(key, wk, 32);
    CHECK_MEM(iv, wi, 32);
    unhex("866d9269cf8b93aa864b1f69d034835d", mk, 16);
    unhex("dd3058b6938ec979ef83f88c6aa76803e2c6b136c5bbfce7dfd6b167f775cf6b", wk, 32);
    unhex("dc4cc218014a2258866c62b6b53437fde26134b6af7d4653d75be04e0d19fbbc", wi, 32);
    mtci_mtp1_kdf(a, mk, 8, key, iv);
    CHECK_MEM(key, wk, 32);
    CHECK_MEM(iv, wi, 32);
  }
  reset_accel();
}

/* PROTOCOL.md §7.6: server_nonce = 00..0f, new_nonce = 00..1f. */
TEST(dh_tmp_aes_vector) {
  uint8_t nn[32], sn[16], key[32], iv[32], wk[32], wi[32];
  for (int i = 0; i < 32; i++) nn[i] = (uint8_t)i;
  for (int i = 0; i < 16; i++) sn[i] = (uint8_t)i;
  unhex("0758f1533b615d24f6e8a94a6fcbee0a55eaab2217d7295ca9213d1a2d7d16a6", wk, 32);
  unhex("5a84108e9805656ce864070e166e6218f6783e8511471a5ab7802cf200010203", wi, 32);
  FOR_EACH_BACKEND(m) {
    mtci_dh_tmp_aes(nn, sn, key, iv);
    CHECK_MEM(key, wk, 32);
    CHECK_MEM(iv, wi, 32);
  }
  reset_accel();
}

/* PROTOCOL.md §7.3: the official samples-auth_key page. */
TEST(dh_tmp_aes_official_sample) {
  uint8_t nn[32], sn[16], key[32], iv[32], wk[32], wi[32];
  unhex("311C85DB234AA2640AFC4A76A735CF5B1F0FD68BD17FA181E1229AD867CC024D", nn, 32);
  unhex("A5CF4D33F4A11EA877BA4AA573907330", sn, 16);
  unhex("F011280887C7BB01DF0FC4E17830E0B91FBB8BE4B2267CB985AE25F33B527253", wk, 32);
  unhex("3212D579EE35452ED23E0D0C92841AA7D31B2E9BDEF2151E80D15860311C85DB", wi, 32);
  FOR_EACH_BACKEND(m) {
    mtci_dh_tmp_aes(nn, sn, key, iv);
    CHECK_MEM(key, wk, 32);
    CHECK_MEM(iv, wi, 32);
  }
  reset_accel();
}

TEST(accel_mask) {
  unsigned avail = mtci_crypto_accel_available();
  mtci_crypto_set_accel(0);
  CHECK_EQ_INT(mtci_crypto_accel_active(), 0);
  mtci_crypto_set_accel(MTCI_ACCEL_SHANI);
  CHECK_EQ_INT(mtci_crypto_accel_active(), avail & MTCI_ACCEL_SHANI);
  mtci_crypto_set_accel(~0u);
  CHECK_EQ_INT(mtci_crypto_accel_active(), avail);
  fprintf(stderr, "  (accel available: aesni=%d shani=%d)\n", !!(avail & MTCI_ACCEL_AESNI),
          !!(avail & MTCI_ACCEL_SHANI));
}

TEST_MAIN("crypto_sym", CASE(accel_mask), CASE(sha1_fips180), CASE(sha256_fips180),
          CASE(sha_million_a_chunked), CASE(sha_switch_backend_mid_hash),
          CASE(hmac_sha256_rfc4231), CASE(aes256_block_fips197), CASE(aes256_key_crosses_backends),
          CASE(ige_grammers_vector), CASE(ige_telethon_vector), CASE(bad_lengths),
          CASE(cbc_decrypt_sp800_38a), CASE(cbc_decrypt_long_derived), CASE(ctr_sp800_38a),
          CASE(ctr_split_property), CASE(ctr_counter_wrap), CASE(cross_check_random), CASE(auth_key_id_vector),
          CASE(mtp2_kdf_vectors), CASE(mtp2_kdf_gramjs_vector),
          CASE(mtp2_encrypt_client_data_vector), CASE(mtp1_kdf_telethon_vector),
          CASE(dh_tmp_aes_vector), CASE(dh_tmp_aes_official_sample))
