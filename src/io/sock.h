/*
 * Non-blocking TCP sockets for the IO shell: the only library code that calls
 * socket/connect/send/recv. Addresses are IPv4 or IPv6 literals; turning
 * names into addresses is discovery's job (c-ares).
 *
 * Every socket made here is non-blocking and close-on-exec and has
 * TCP_NODELAY set (MTProto frames are small and latency-bound). Writes use
 * MSG_NOSIGNAL, so a peer that went away yields MTC_ERR_IO_RESET instead of
 * a SIGPIPE that would kill the host. EINTR is retried inside every call
 * except connect and close, where a retry would be wrong (see sock_os.c).
 *
 * Connect flow:
 *   mtci_sock_connect(ip, port, &fd)     -> 0: connected or in progress
 *   watch fd for MTCI_IO_WRITE (poller.h)
 *   on writability: mtci_sock_connect_result(fd)
 *                                         -> 0 connected, MTCI_SOCK_IN_PROGRESS
 *                                            (spurious event: keep waiting),
 *                                            or an error (close the fd)
 * Nothing here blocks and nothing here logs; callers may log the address
 * strings from mtci_sock_local_addr / mtci_sock_peer_addr.
 */
#ifndef MTCI_IO_SOCK_H
#define MTCI_IO_SOCK_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

/* mtci_sock_connect_result: the connection is still being established. */
#define MTCI_SOCK_IN_PROGRESS 1

/* Enough for "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535". */
#define MTCI_SOCK_ADDR_STRLEN 64

/*
 * Start a TCP connection to ip_literal:port. ip_literal is a dotted-quad IPv4
 * or an IPv6 literal without brackets or zone ("149.154.167.51",
 * "2001:67c:4e8:f002::a"); port is 1..65535. On 0, *fd_out holds the new
 * socket (the caller owns it: mtci_sock_close) and the connection is
 * established or under way. On error *fd_out is -1 and nothing is left open:
 * MTC_ERR_INVALID_ARG (NULL), MTC_ERR_IO_ADDRESS (not a literal, port 0),
 * MTC_ERR_IO_SOCKET (socket or option failed; fd limit), MTC_ERR_NOMEM,
 * or an immediate connect failure: MTC_ERR_IO_REFUSED, MTC_ERR_IO_UNREACHABLE
 * (also: no IPv6 on this host), MTC_ERR_IO_TIMED_OUT, MTC_ERR_IO_CONNECT.
 */
int mtci_sock_connect(const char *ip_literal, uint16_t port, int *fd_out);

/*
 * After fd became writable (or reported an error) following
 * mtci_sock_connect: 0 when connected, MTCI_SOCK_IN_PROGRESS when the
 * handshake is still running, else the failure: MTC_ERR_IO_REFUSED,
 * MTC_ERR_IO_UNREACHABLE, MTC_ERR_IO_TIMED_OUT, MTC_ERR_IO_RESET,
 * MTC_ERR_IO_CONNECT. Reading the error clears it in the kernel, so call it
 * once per event and close the socket on a negative result.
 */
int mtci_sock_connect_result(int fd);

/*
 * Send up to len bytes (at most 1 GiB per call). Returns the number of bytes
 * the kernel took (may be fewer than len), 0 when the send buffer is full
 * (wait for MTCI_IO_WRITE) or len is 0, MTC_ERR_IO_RESET when the peer reset
 * or closed the connection, MTC_ERR_IO_NOT_CONNECTED, MTC_ERR_IO_TIMED_OUT,
 * MTC_ERR_IO_UNREACHABLE, MTC_ERR_NOMEM, MTC_ERR_IO_FAILED; MTC_ERR_INVALID_ARG
 * for buf == NULL with len > 0. Never raises SIGPIPE.
 */
int mtci_sock_send(int fd, const uint8_t *buf, size_t len);

/*
 * Receive up to cap bytes (1..1 GiB per call). Returns the number of bytes
 * read, 0 when nothing is waiting (wait for MTCI_IO_READ), MTC_ERR_IO_EOF
 * when the peer closed its side in order, MTC_ERR_IO_RESET on a reset,
 * MTC_ERR_IO_TIMED_OUT, MTC_ERR_IO_UNREACHABLE, MTC_ERR_IO_NOT_CONNECTED,
 * MTC_ERR_NOMEM, MTC_ERR_IO_FAILED; MTC_ERR_INVALID_ARG for buf == NULL or
 * cap == 0 (0 bytes would be indistinguishable from "nothing waiting").
 */
int mtci_sock_recv(int fd, uint8_t *buf, size_t cap);

/* Close fd (ignored if negative). Remove it from the poller first. */
void mtci_sock_close(int fd);

/*
 * Write the socket's local or peer address as "a.b.c.d:port" or
 * "[v6]:port" into buf (NUL-terminated), for log lines. Returns 0,
 * MTC_ERR_BUFFER_TOO_SMALL, MTC_ERR_IO_NOT_CONNECTED (peer of an unconnected
 * socket), MTC_ERR_UNSUPPORTED (not an IP socket), MTC_ERR_IO_FAILED,
 * MTC_ERR_INVALID_ARG. On failure buf holds "" when cap > 0.
 */
int mtci_sock_local_addr(int fd, char *buf, size_t cap);
int mtci_sock_peer_addr(int fd, char *buf, size_t cap);

#endif /* MTCI_IO_SOCK_H */
