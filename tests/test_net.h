/*
 * Loopback TCP for the test programs: a blocking connect to 127.0.0.1:port,
 * and a listener on 127.0.0.1 at a kernel-chosen port.
 */
#ifndef MTC_TEST_NET_H
#define MTC_TEST_NET_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* One blocking connect to 127.0.0.1:port, bounded by a send timeout, with
 * TCP_NODELAY. Returns the fd, or -errno (e.g. -ECONNREFUSED). */
static inline int test_tcp_connect(uint16_t port, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect() */
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* A listener on 127.0.0.1 (port chosen by the kernel, into *port) that the
 * test never accepts on: the kernel completes up to `backlog` handshakes.
 * Returns the fd, or -errno. */
static inline int test_tcp_listen(int backlog, uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

#endif /* MTC_TEST_NET_H */
