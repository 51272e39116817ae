/*
 * SOCKS5 client handshake (RFC 1928 CONNECT, RFC 1929 username/password) as
 * a pure state machine: it never touches a socket. The caller sends what
 * mtci_socks5_pending() returns, reports it with mtci_socks5_sent(), and
 * feeds whatever the server sends to mtci_socks5_feed(), in any split.
 *
 * Client messages:
 *   greeting   05 01 00                 (no credentials)
 *              05 02 00 02              (credentials: no-auth or user/pass)
 *   auth       01 ULEN UNAME PLEN PASSWD                       (RFC 1929)
 *   request    05 01 00 ATYP DST.ADDR DST.PORT(2, big endian)
 *                ATYP 01: 4 bytes | 03: LEN(1) name[LEN] | 04: 16 bytes
 * Server messages:
 *   method     05 METHOD                 (FF = none acceptable)
 *   auth reply 01 STATUS                 (00 = success)
 *   reply      05 REP 00 ATYP BND.ADDR BND.PORT  (REP 00 = succeeded)
 *
 * Greeting, auth and request go one at a time, each after the previous
 * answer (no pipelining, as tdlib and curl do). Bytes the server sends
 * before our current message has been handed out are a protocol error.
 * After the reply, extra bytes in the same feed are application data: feed
 * reports how many bytes it consumed and the rest belongs to the caller.
 *
 * Decisions: the reply's RSV byte must be 0; the auth reply's version byte
 * must be 1 (RFC 1929); a BND domain must not be empty; an empty password
 * is sent as PLEN 0 (RFC 1929 asks for 1..255, many servers take 0).
 *
 * Errors are sticky: after a failure every call returns the same code.
 * The stored credentials and the auth message are zeroized as soon as the
 * auth message has been handed out in full, and on free.
 */
#ifndef MTCI_TRANSPORT_SOCKS5_H
#define MTCI_TRANSPORT_SOCKS5_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

enum {
  MTCI_SOCKS5_ATYP_IPV4 = 0x01,
  MTCI_SOCKS5_ATYP_DOMAIN = 0x03,
  MTCI_SOCKS5_ATYP_IPV6 = 0x04
};

/* mtci_socks5_feed's positive result: the tunnel is open. */
#define MTCI_SOCKS5_DONE 1

typedef struct mtci_socks5 {
  int state;
  int err; /* sticky error, 0 while fine */
  /* target */
  uint8_t atyp;
  uint8_t addr[255];
  size_t addr_len;
  uint16_t port;
  /* credentials (RFC 1929) */
  int use_auth;
  uint8_t user[255], pass[255];
  size_t user_len, pass_len;
  /* message waiting to be sent: out[out_pos..out_len) */
  uint8_t out[1 + 1 + 255 + 1 + 255];
  size_t out_len, out_pos;
  /* partial server message */
  uint8_t in[4 + 1 + 255 + 2];
  size_t in_len;
  /* results, valid once done */
  uint8_t method;    /* method the server chose: 0x00 or 0x02 */
  uint8_t bnd_atyp;  /* BND.ADDR type of the reply */
  uint8_t bnd_addr[255];
  size_t bnd_addr_len;
  uint16_t bnd_port;
} mtci_socks5;

/*
 * Start a handshake to atyp/addr/port. addr is 4 bytes (IPv4), 16 (IPv6) or
 * a 1..255-byte host name (DOMAIN); port is 1..65535. user == NULL (or
 * user_len == 0) offers only "no authentication"; otherwise user is 1..255
 * bytes and pass 0..255 bytes. Returns 0 (the greeting is then pending) or
 * MTC_ERR_SOCKS_PARAMS / MTC_ERR_INVALID_ARG; s is zeroed on failure.
 */
int mtci_socks5_init(mtci_socks5 *s, uint8_t atyp, const uint8_t *addr, size_t addr_len,
                     uint16_t port, const uint8_t *user, size_t user_len, const uint8_t *pass,
                     size_t pass_len);

/* Bytes to send now: sets *data and returns their count (0 if none). */
size_t mtci_socks5_pending(const mtci_socks5 *s, const uint8_t **data);

/* n of the pending bytes were sent. Returns 0, the sticky error, or
 * MTC_ERR_INVALID_ARG if n exceeds what is pending. */
int mtci_socks5_sent(mtci_socks5 *s, size_t n);

/*
 * Feed server bytes. Returns 0 (more needed, or a message became pending),
 * MTCI_SOCKS5_DONE once the reply is complete, or a negative MTC_ERR_*.
 * *consumed (if not NULL) is set to the bytes used; after DONE,
 * data[*consumed..len) is application data. Feeding after DONE consumes
 * nothing and returns DONE.
 */
int mtci_socks5_feed(mtci_socks5 *s, const uint8_t *data, size_t len, size_t *consumed);

/* 1 once the tunnel is open. */
int mtci_socks5_done(const mtci_socks5 *s);

/* Zeroize everything (credentials included). */
void mtci_socks5_free(mtci_socks5 *s);

#endif /* MTCI_TRANSPORT_SOCKS5_H */
