/*
 * obfuscated2: the AES-256-CTR layer every official client runs under its
 * framing codec (PROTOCOL.md §4), directly, through an MTProxy, or inside
 * fake-TLS records.
 *
 * The 64-byte init header (client -> server, sent first):
 *
 *    0        8                               40              56      60  62  64
 *    +--------+-------------------------------+---------------+-------+---+---+
 *    | random |  K_enc material (32)          |  IV_enc (16)  |  tag  |dc |rnd|
 *    +--------+-------------------------------+---------------+-------+---+---+
 *    sent in clear ------------------------------------------->|<- encrypted ->|
 *
 * K_dec / IV_dec are bytes 8..56 of the reversed header. With an MTProxy
 * secret each key becomes SHA256(key || secret16). Both CTR streams run over
 * the whole connection; the encrypt stream has already consumed the 64
 * header bytes when init returns, the decrypt stream starts at offset 0.
 *
 * The same context type serves the server side (mock DC / mock MTProxy):
 * there the directions are mirrored, so mtci_obfs_encrypt always means
 * "bytes this side sends" and mtci_obfs_decrypt "bytes this side receives".
 */
#ifndef MTCI_TRANSPORT_OBFUSCATED2_H
#define MTCI_TRANSPORT_OBFUSCATED2_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"

#define MTCI_OBFS_HEADER_LEN 64
#define MTCI_OBFS_SECRET_LEN 16

/* Protocol tags as uint32 little-endian of header bytes 56..59. */
#define MTCI_OBFS_TAG_ABRIDGED 0xefefefefu     /* ef ef ef ef */
#define MTCI_OBFS_TAG_INTERMEDIATE 0xeeeeeeeeu /* ee ee ee ee */
#define MTCI_OBFS_TAG_PADDED 0xddddddddu       /* dd dd dd dd (padded intermediate) */

/* Bits for the server side's allowed-tag mask. */
#define MTCI_OBFS_ALLOW_ABRIDGED 1u
#define MTCI_OBFS_ALLOW_INTERMEDIATE 2u
#define MTCI_OBFS_ALLOW_PADDED 4u
#define MTCI_OBFS_ALLOW_ALL 7u

/* Client init flag: skip the forbidden-first-bytes rules. tdlib does so when
 * the header travels inside fake-TLS records, where no server sniffs it. */
#define MTCI_OBFS_INSIDE_TLS 1u

/* How many candidate headers the client draws before giving up on a random
 * source that keeps producing forbidden prefixes (MTC_ERR_RANDOM). A working
 * source hits a forbidden value with probability ~2^-8 per draw. */
#define MTCI_OBFS_MAX_DRAWS 64

/* Value type; plain data. Holds key schedules: free it (zeroizes). */
typedef struct mtci_obfs {
  mtci_aes_ctr enc; /* bytes this side sends */
  mtci_aes_ctr dec; /* bytes this side receives */
} mtci_obfs;

/*
 * The signed dc id written at offset 60: dc + 10000 for test servers,
 * negated for media-only DCs (e.g. media DC 4 -> -4, test DC 2 -> 10002).
 * Returns 0 (never a valid id) if dc is outside 1..9999.
 */
int16_t mtci_obfs_dc_id(int dc, int test, int media);

/*
 * Client side. Draws 64 random bytes (again while a forbidden value hits,
 * unless flags has MTCI_OBFS_INSIDE_TLS), writes tag and dc_id, derives both
 * streams (hashing with secret16 when it is not NULL) and writes the header
 * to send: init[0:56] || encrypted[56:64].
 * tag must be one of the MTCI_OBFS_TAG_* values (else MTC_ERR_INVALID_ARG).
 */
int mtci_obfs_client_init(mtci_obfs *o, uint32_t tag, int16_t dc_id, const uint8_t *secret16,
                          unsigned flags, mtc_random_fn rnd, void *rnd_ud,
                          uint8_t header[MTCI_OBFS_HEADER_LEN]);

/*
 * Server side: from the 64 received header bytes (and secret16, or NULL for
 * a direct DC connection) derive the mirrored streams, decrypt the header
 * (advancing the receive stream by 64) and check the tag:
 * MTC_ERR_OBFS_BAD_TAG if it is none of ef/ee/dd x4, MTC_ERR_OBFS_TAG_NOT_ALLOWED
 * if it is not in allowed_tags (MTCI_OBFS_ALLOW_*). On success *tag and
 * *dc_id (either may be NULL) are filled; on failure o is zeroized.
 */
int mtci_obfs_server_init(mtci_obfs *o, const uint8_t header[MTCI_OBFS_HEADER_LEN],
                          const uint8_t *secret16, unsigned allowed_tags, uint32_t *tag,
                          int16_t *dc_id);

/* Continue the send / receive stream. out may equal in. */
void mtci_obfs_encrypt(mtci_obfs *o, const uint8_t *in, uint8_t *out, size_t len);
void mtci_obfs_decrypt(mtci_obfs *o, const uint8_t *in, uint8_t *out, size_t len);

/* Zeroize both streams. Safe on a zeroed or already-freed context. */
void mtci_obfs_free(mtci_obfs *o);

#endif /* MTCI_TRANSPORT_OBFUSCATED2_H */
