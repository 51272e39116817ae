/*
 * Non-blocking TCP sockets (see sock.h). Linux first; the fallbacks for
 * systems without SOCK_NONBLOCK/SOCK_CLOEXEC or MSG_NOSIGNAL are marked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/sock.h"

/* Bytes per send/recv call, so a byte count always fits an int result. */
#define SOCK_MAX_IO ((size_t)1 << 30)

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* BSD/macOS: SO_NOSIGPIPE is set on the socket instead */
#endif

/* errno of a failed connect/send/recv -> the most specific code we have. */
static int map_errno(int e, int fallback) {
  switch (e) {
  case ECONNREFUSED: return MTC_ERR_IO_REFUSED;
  case ENETUNREACH:
  case EHOSTUNREACH:
  case ENETDOWN:
#ifdef EHOSTDOWN
  case EHOSTDOWN:
#endif
  case EADDRNOTAVAIL: /* e.g. ::1 on a host without IPv6 loopback */
  case EAFNOSUPPORT:  /* IPv6 disabled in the kernel */
    return MTC_ERR_IO_UNREACHABLE;
  case ETIMEDOUT: return MTC_ERR_IO_TIMED_OUT;
  case ECONNRESET:
  case ECONNABORTED:
  case EPIPE:
    return MTC_ERR_IO_RESET;
  case ENOTCONN: return MTC_ERR_IO_NOT_CONNECTED;
  case ENOMEM:
  case ENOBUFS:
    return MTC_ERR_NOMEM;
  default: return fallback;
  }
}

/* ip literal + port -> sockaddr; 0 or MTC_ERR_IO_ADDRESS. */
static int parse_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                      socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (port == 0) return MTC_ERR_IO_ADDRESS;
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof *v4;
    return 0;
  }
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof *v6;
    return 0;
  }
  return MTC_ERR_IO_ADDRESS;
}

/* A non-blocking, close-on-exec, SIGPIPE-safe TCP socket with TCP_NODELAY. */
static int new_socket(int family, int *fd_out) {
  int fd;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  fd = socket(family, SOCK_STREAM, 0);
  if (fd >= 0) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
      close(fd);
      return MTC_ERR_IO_SOCKET;
    }
  }
#endif
  if (fd < 0) return map_errno(errno, MTC_ERR_IO_SOCKET);
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    close(fd);
    return MTC_ERR_IO_SOCKET;
  }
#ifdef SO_NOSIGPIPE
  if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) {
    close(fd);
    return MTC_ERR_IO_SOCKET;
  }
#endif
  *fd_out = fd;
  return 0;
}

int mtci_sock_connect(const char *ip_literal, uint16_t port, int *fd_out) {
  if (!fd_out) return MTC_ERR_INVALID_ARG;
  *fd_out = -1;
  if (!ip_literal) return MTC_ERR_INVALID_ARG;
  struct sockaddr_storage ss;
  socklen_t slen = 0;
  int rc = parse_addr(ip_literal, port, &ss, &slen);
  if (rc != 0) return rc;
  int fd = -1;
  rc = new_socket(ss.ss_family, &fd);
  if (rc != 0) return rc;
  if (connect(fd, (const struct sockaddr *)&ss, slen) != 0) {
    int e = errno;
    /* EINTR on a non-blocking connect: the handshake goes on in the kernel
     * (retrying would give EALREADY), so it is "in progress" like EINPROGRESS. */
    if (e != EINPROGRESS && e != EINTR) {
      close(fd);
      return map_errno(e, MTC_ERR_IO_CONNECT);
    }
  }
  *fd_out = fd;
  return 0;
}

int mtci_sock_connect_result(int fd) {
  if (fd < 0) return MTC_ERR_INVALID_ARG;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return MTC_ERR_IO_FAILED;
  if (err != 0) return map_errno(err, MTC_ERR_IO_CONNECT);
  /* No error yet: connected only if there is a peer. */
  struct sockaddr_storage ss;
  socklen_t slen = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &slen) == 0) return 0;
  if (errno == ENOTCONN) return MTCI_SOCK_IN_PROGRESS;
  return MTC_ERR_IO_FAILED;
}

int mtci_sock_send(int fd, const uint8_t *buf, size_t len) {
  if (fd < 0 || (!buf && len > 0)) return MTC_ERR_INVALID_ARG;
  if (len == 0) return 0;
  if (len > SOCK_MAX_IO) len = SOCK_MAX_IO;
  for (;;) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return (int)n;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return 0;
    return map_errno(e, MTC_ERR_IO_FAILED);
  }
}

int mtci_sock_recv(int fd, uint8_t *buf, size_t cap) {
  if (fd < 0 || !buf || cap == 0) return MTC_ERR_INVALID_ARG;
  if (cap > SOCK_MAX_IO) cap = SOCK_MAX_IO;
  for (;;) {
    ssize_t n = recv(fd, buf, cap, 0);
    if (n > 0) return (int)n;
    if (n == 0) return MTC_ERR_IO_EOF;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return 0;
    return map_errno(e, MTC_ERR_IO_FAILED);
  }
}

void mtci_sock_close(int fd) {
  /* Not retried on EINTR: Linux has released the fd already, and a retry
   * could close an fd another thread just got. */
  if (fd >= 0) (void)close(fd);
}

static int format_addr(const struct sockaddr_storage *ss, char *buf, size_t cap) {
  char ip[INET6_ADDRSTRLEN];
  unsigned port;
  int n;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
    if (!inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip)) return MTC_ERR_IO_FAILED;
    port = ntohs(v4->sin_port);
    n = snprintf(buf, cap, "%s:%u", ip, port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
    if (!inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip)) return MTC_ERR_IO_FAILED;
    port = ntohs(v6->sin6_port);
    n = snprintf(buf, cap, "[%s]:%u", ip, port);
  } else {
    return MTC_ERR_UNSUPPORTED;
  }
  if (n < 0) return MTC_ERR_IO_FAILED;
  if ((size_t)n >= cap) {
    buf[0] = '\0';
    return MTC_ERR_BUFFER_TOO_SMALL;
  }
  return 0;
}

static int sock_addr(int fd, int peer, char *buf, size_t cap) {
  if (!buf || cap == 0) return MTC_ERR_INVALID_ARG;
  buf[0] = '\0';
  if (fd < 0) return MTC_ERR_INVALID_ARG;
  struct sockaddr_storage ss;
  socklen_t slen = sizeof ss;
  memset(&ss, 0, sizeof ss);
  int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &slen)
               : getsockname(fd, (struct sockaddr *)&ss, &slen);
  if (r != 0) return map_errno(errno, MTC_ERR_IO_FAILED);
  return format_addr(&ss, buf, cap);
}

int mtci_sock_local_addr(int fd, char *buf, size_t cap) { return sock_addr(fd, 0, buf, cap); }

int mtci_sock_peer_addr(int fd, char *buf, size_t cap) { return sock_addr(fd, 1, buf, cap); }
