/*
 * mock_socks: a SOCKS5 server (RFC 1928) on 127.0.0.1 that relays to local
 * ports, or - given a fixed target port - a plain TCP relay in front of one
 * local server (a mock DC), either one able to break the stream on request.
 * TEST CODE: its own thread, POSIX sockets, poll(); 127.0.0.1 only.
 *
 * SOCKS5 (target 0): no authentication, CONNECT to IPv4 127.0.0.1 only
 *
 *   greeting  05 01 00                        -> 05 00
 *   request   05 01 00 01 7f 00 00 01 pp pp   -> 05 00 00 01 00 00 00 00 00 00
 *             (ver, CONNECT, rsv, IPv4, address, port big-endian)
 *
 *   Anything else (other methods, BIND / UDP ASSOCIATE, a domain name or an
 *   IPv6 address, another IP) or a handshake not complete within
 *   MOCK_SOCKS_HANDSHAKE_MS: the client is closed without a reply. A target
 *   that refuses: REP 05 (connection refused), then closed. Both counted in
 *   refused; in relay mode (target != 0) a refusing target closes the client.
 *
 * Relay: at most MOCK_SOCKS_MAX_PAIRS client/server pairs at once (a client
 * beyond that is closed at once), both ways, TCP_NODELAY on both sockets; a
 * pair is closed when either side ends.
 *
 * Faults (mock_socks_arm): one armed at a time, shared by all pairs, applied
 * once (counted in fired), then disarmed:
 *   RST         the next client->server read is not forwarded: the client is
 *               reset (SO_LINGER 0) and the pair closed
 *   TRUNCATE n  the server->client stream ends after n more bytes: those are
 *               sent, then the pair is closed
 *   FLIP n      byte n of the server->client stream from now on is XORed
 *               with 0x5a
 *   INJECT_444  the next server->client read is replaced by an intermediate
 *               frame carrying transport error -444 (04 00 00 00 44 fe ff ff),
 *               then the pair is closed
 *
 * Thread safety: every function may be called from any thread (one mutex);
 * mock_socks_free wakes the thread (also one waiting in a handshake), closes
 * every pair and joins it.
 */
#ifndef MTC_MOCK_SOCKS_H
#define MTC_MOCK_SOCKS_H

#include <stddef.h>
#include <stdint.h>

#define MOCK_SOCKS_MAX_PAIRS 16
#define MOCK_SOCKS_HANDSHAKE_MS 2000

typedef struct mock_socks mock_socks;

typedef enum mock_socks_fault {
  MOCK_SOCKS_FAULT_NONE = 0,
  MOCK_SOCKS_FAULT_TRUNCATE,
  MOCK_SOCKS_FAULT_FLIP,
  MOCK_SOCKS_FAULT_RST,
  MOCK_SOCKS_FAULT_INJECT_444
} mock_socks_fault;

typedef struct mock_socks_stats {
  uint64_t accepted; /* pairs relayed */
  uint64_t refused;  /* clients closed without a relay */
  uint64_t fired;    /* faults applied */
} mock_socks_stats;

/* Listen on 127.0.0.1 (ephemeral port) and start the thread. target 0: a
 * SOCKS5 server; else every client is relayed to 127.0.0.1:target.
 * 0, -errno or MTC_ERR_NOMEM / MTC_ERR_INVALID_ARG. */
int mock_socks_new(uint16_t target, mock_socks **out);
void mock_socks_free(mock_socks *x); /* NULL-safe */

uint16_t mock_socks_port(const mock_socks *x);
void mock_socks_arm(mock_socks *x, mock_socks_fault fault, size_t arg);
void mock_socks_stats_get(mock_socks *x, mock_socks_stats *out);

#endif /* MTC_MOCK_SOCKS_H */
