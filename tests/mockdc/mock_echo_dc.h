/*
 * mock_echo_dc: an "echo DC" on mock_loop. TEST CODE.
 *
 * Accepts obfuscated2 the way a Telegram DC does (server side, no secret,
 * tags ef/ee/dd), then echoes the decrypted stream back re-encrypted with
 * its own send stream. No framing: whatever bytes the client's obfuscated2
 * layer carried come back unchanged. A header with an unknown tag closes
 * the connection without an answer.
 */
#ifndef MTC_MOCK_ECHO_DC_H
#define MTC_MOCK_ECHO_DC_H

#include <stddef.h>
#include <stdint.h>

#include "mock_loop.h"

typedef struct mock_echo_dc mock_echo_dc;

typedef struct mock_echo_stats {
  uint64_t accepted;
  uint64_t handshakes_ok;
  uint64_t bad_headers;
  uint64_t bytes_echoed;
  uint32_t last_tag;  /* tag of the last accepted header (MTCI_OBFS_TAG_*) */
  int16_t last_dc_id; /* its signed dc id */
} mock_echo_stats;

/* Listen on 127.0.0.1:port (0 = ephemeral). 0 or a negative errno / mtc_error. */
int mock_echo_dc_new(mock_loop *l, uint16_t port, mock_echo_dc **out);
uint16_t mock_echo_dc_port(const mock_echo_dc *d);
void mock_echo_dc_stats(const mock_echo_dc *d, mock_echo_stats *out);
/* Closes its listener and connections. Thread stopped or under the loop lock. */
void mock_echo_dc_free(mock_echo_dc *d);

#endif /* MTC_MOCK_ECHO_DC_H */
