/*
 * mock_dns: UDP DNS server for TXT / A / AAAA on 127.0.0.1 (see mock_dns.h).
 * TEST CODE.
 */
#include "mock_dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mtconn/mtconn.h"

#define NAME_CAP 254
#define UDP_MAX 512
#define TTL 300u

enum { T_A = 1, T_TXT = 16, T_AAAA = 28, T_ANY = 255, C_IN = 1 };
enum { RC_OK = 0, RC_FORMERR = 1, RC_SERVFAIL = 2, RC_NXDOMAIN = 3 };

struct host {
  char name[NAME_CAP + 1];
  int has4, has6;
  uint8_t v4[4], v6[16];
};

struct mock_dns {
  pthread_mutex_t mu;
  pthread_t thread;
  int thread_started;
  int fd;
  int stop_rd, stop_wr;
  uint16_t port;
  char txt_name[NAME_CAP + 1];
  size_t n_txt;
  size_t txt_len[MOCK_DNS_MAX_RECORDS];
  char txt[MOCK_DNS_MAX_RECORDS][MOCK_DNS_MAX_RECORD_LEN];
  size_t n_hosts;
  struct host hosts[MOCK_DNS_MAX_HOSTS];
  int drop, servfail;
  mock_dns_stats st;
};

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* Case-insensitive name equality, a trailing dot on either side ignored. */
static int name_eq(const char *a, const char *b) {
  size_t an = strlen(a), bn = strlen(b);
  if (an && a[an - 1] == '.') an--;
  if (bn && b[bn - 1] == '.') bn--;
  if (an != bn) return 0;
  for (size_t i = 0; i < an; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
  return 1;
}

static int set_txt_locked(mock_dns *d, const char *const *records, size_t n) {
  if (n > MOCK_DNS_MAX_RECORDS || (n && !records)) return MTC_ERR_INVALID_ARG;
  for (size_t i = 0; i < n; i++)
    if (!records[i] || strlen(records[i]) > MOCK_DNS_MAX_RECORD_LEN) return MTC_ERR_INVALID_ARG;
  d->n_txt = n;
  for (size_t i = 0; i < n; i++) {
    d->txt_len[i] = strlen(records[i]);
    memcpy(d->txt[i], records[i], d->txt_len[i]);
  }
  return 0;
}

/* ---- message building ---------------------------------------------------------- */

static void put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* Decode QNAME at q[off..) into a dotted name. Returns the offset after it,
 * or 0 if malformed (compression is not allowed in a question). */
static size_t read_qname(const uint8_t *q, size_t qlen, size_t off, char name[NAME_CAP + 1]) {
  size_t n = 0;
  for (int labels = 0; labels < 128; labels++) {
    if (off >= qlen) return 0;
    unsigned l = q[off++];
    if (l == 0) {
      name[n] = '\0';
      return off;
    }
    if (l > 63 || off + l > qlen || n + l + 1 > NAME_CAP) return 0;
    if (n) name[n++] = '.';
    for (unsigned i = 0; i < l; i++) {
      uint8_t c = q[off + i];
      if (c == '.' || c < 0x21 || c > 0x7e) return 0;
      name[n++] = (char)c;
    }
    off += l;
  }
  return 0;
}

/* Start an answer: header with rcode, the question copied. */
static size_t begin(uint8_t *out, const uint8_t *q, size_t qend, unsigned rcode) {
  memcpy(out, q, qend);
  unsigned qflags = (unsigned)q[2] << 8 | q[3];
  unsigned flags = 0x8000u | (qflags & 0x7800u) | 0x0400u | (qflags & 0x0100u) | 0x0080u | rcode;
  put16(out + 2, flags);
  put16(out + 4, 1);
  put16(out + 6, 0);
  put16(out + 8, 0);
  put16(out + 10, 0);
  return qend;
}

/* Append one RR (name pointer to offset 12). Returns the new length or 0 if
 * it does not fit in cap. */
static size_t add_rr(uint8_t *out, size_t len, size_t cap, unsigned type, const uint8_t *rdata,
                     size_t rdlen) {
  if (rdlen > 0xffff || len + 12 + rdlen > cap) return 0;
  uint8_t *p = out + len;
  p[0] = 0xc0;
  p[1] = 0x0c;
  put16(p + 2, type);
  put16(p + 4, C_IN);
  p[6] = (uint8_t)(TTL >> 24);
  p[7] = (uint8_t)(TTL >> 16);
  p[8] = (uint8_t)(TTL >> 8);
  p[9] = (uint8_t)TTL;
  put16(p + 10, (unsigned)rdlen);
  memcpy(p + 12, rdata, rdlen);
  unsigned an = (unsigned)out[6] << 8 | out[7];
  put16(out + 6, an + 1);
  return len + 12 + rdlen;
}

static size_t answer_locked(mock_dns *d, const uint8_t *q, size_t qlen, uint8_t *out, size_t cap) {
  d->st.queries++;
  if (qlen < 12 || cap < UDP_MAX || (q[2] & 0x80)) { /* unreadable, or a response */
    d->st.dropped++;
    return 0;
  }
  if (d->drop) {
    d->st.dropped++;
    return 0;
  }
  unsigned qd = (unsigned)q[4] << 8 | q[5];
  char name[NAME_CAP + 1];
  size_t qend = qd == 1 ? read_qname(q, qlen, 12, name) : 0;
  if (qend == 0 || qend + 4 > qlen) {
    /* FORMERR: echo only the header, no question */
    d->st.formerr++;
    memcpy(out, q, 12);
    unsigned qflags = (unsigned)q[2] << 8 | q[3];
    put16(out + 2, 0x8000u | (qflags & 0x7900u) | 0x0080u | RC_FORMERR);
    memset(out + 4, 0, 8);
    return 12;
  }
  unsigned qtype = (unsigned)q[qend] << 8 | q[qend + 1];
  qend += 4; /* QTYPE, QCLASS */
  d->st.last_qtype = (uint16_t)qtype;
  if (d->servfail) {
    d->st.servfail++;
    return begin(out, q, qend, RC_SERVFAIL);
  }

  size_t len;
  int known = 0, answered = 0;
  if (name_eq(name, d->txt_name)) {
    known = 1;
    len = begin(out, q, qend, RC_OK);
    if (qtype == T_TXT || qtype == T_ANY) {
      d->st.txt++;
      for (size_t i = 0; i < d->n_txt; i++) {
        uint8_t rd[MOCK_DNS_MAX_RECORD_LEN + MOCK_DNS_MAX_RECORD_LEN / 255 + 2];
        size_t rl = 0, left = d->txt_len[i];
        const char *s = d->txt[i];
        do { /* an empty record is one empty string */
          size_t chunk = left > 255 ? 255 : left;
          rd[rl++] = (uint8_t)chunk;
          memcpy(rd + rl, s, chunk);
          rl += chunk;
          s += chunk;
          left -= chunk;
        } while (left);
        size_t nl = add_rr(out, len, UDP_MAX, T_TXT, rd, rl);
        if (!nl) { /* too big for UDP: truncated, no answers */
          len = begin(out, q, qend, RC_OK);
          out[2] |= 0x02;
          return len;
        }
        len = nl;
        answered = 1;
      }
    }
  } else {
    len = begin(out, q, qend, RC_OK);
  }
  for (size_t i = 0; i < d->n_hosts; i++) {
    const struct host *h = &d->hosts[i];
    if (!name_eq(name, h->name)) continue;
    known = 1;
    if (qtype == T_A || qtype == T_ANY) {
      if (qtype == T_A) d->st.a++;
      size_t nl = h->has4 ? add_rr(out, len, UDP_MAX, T_A, h->v4, 4) : 0;
      if (nl) {
        len = nl;
        answered = 1;
      }
    }
    if (qtype == T_AAAA || qtype == T_ANY) {
      if (qtype == T_AAAA) d->st.aaaa++;
      size_t nl = h->has6 ? add_rr(out, len, UDP_MAX, T_AAAA, h->v6, 16) : 0;
      if (nl) {
        len = nl;
        answered = 1;
      }
    }
    break;
  }
  if (!known) {
    d->st.nxdomain++;
    return begin(out, q, qend, RC_NXDOMAIN);
  }
  if (!answered) d->st.nodata++;
  return len;
}

size_t mock_dns_answer(mock_dns *d, const uint8_t *q, size_t qlen, uint8_t *out, size_t cap) {
  pthread_mutex_lock(&d->mu);
  size_t n = answer_locked(d, q, qlen, out, cap);
  pthread_mutex_unlock(&d->mu);
  return n;
}

/* ---- server thread ------------------------------------------------------------- */

static void *serve(void *arg) {
  mock_dns *d = arg;
  for (;;) {
    struct pollfd pf[2] = {{d->fd, POLLIN, 0}, {d->stop_rd, POLLIN, 0}};
    int r = poll(pf, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || pf[1].revents) break;
    if (!(pf[0].revents & POLLIN)) continue;
    uint8_t q[4096], out[UDP_MAX];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(d->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0) continue;
    size_t an = mock_dns_answer(d, q, (size_t)n, out, sizeof out);
    if (an) (void)sendto(d->fd, out, an, 0, (struct sockaddr *)&from, fl);
  }
  return NULL;
}

int mock_dns_new(const mock_dns_config *cfg, mock_dns **out) {
  return mock_dns_new_on(cfg, "127.0.0.1", out);
}

int mock_dns_new_on(const mock_dns_config *cfg, const char *ipv4, mock_dns **out) {
  if (!cfg || !out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  struct in_addr bind_addr;
  if (!ipv4 || inet_pton(AF_INET, ipv4, &bind_addr) != 1 ||
      (ntohl(bind_addr.s_addr) >> 24) != 127) /* loopback only */
    return MTC_ERR_INVALID_ARG;
  if (cfg->n_hosts > MOCK_DNS_MAX_HOSTS || (cfg->n_hosts && !cfg->hosts))
    return MTC_ERR_INVALID_ARG;
  const char *tn = cfg->txt_name ? cfg->txt_name : "apv3.stel.com";
  if (strlen(tn) > NAME_CAP) return MTC_ERR_INVALID_ARG;
  mock_dns *d = calloc(1, sizeof *d);
  if (!d) return MTC_ERR_NOMEM;
  d->fd = d->stop_rd = d->stop_wr = -1;
  snprintf(d->txt_name, sizeof d->txt_name, "%s", tn);
  int rc = set_txt_locked(d, cfg->txt_records, cfg->n_txt);
  for (size_t i = 0; rc == 0 && i < cfg->n_hosts; i++) {
    const mock_dns_host *h = &cfg->hosts[i];
    struct host *e = &d->hosts[i];
    if (!h->name || strlen(h->name) > NAME_CAP) rc = MTC_ERR_INVALID_ARG;
    if (rc == 0) snprintf(e->name, sizeof e->name, "%s", h->name);
    if (rc == 0 && h->ipv4) {
      e->has4 = 1;
      if (inet_pton(AF_INET, h->ipv4, e->v4) != 1) rc = MTC_ERR_INVALID_ARG;
    }
    if (rc == 0 && h->ipv6) {
      e->has6 = 1;
      if (inet_pton(AF_INET6, h->ipv6, e->v6) != 1) rc = MTC_ERR_INVALID_ARG;
    }
  }
  d->n_hosts = cfg->n_hosts;
  if (rc) {
    free(d);
    return rc;
  }
  if (pthread_mutex_init(&d->mu, NULL) != 0) {
    free(d);
    return -ENOMEM;
  }
  int p[2] = {-1, -1};
  d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (d->fd < 0 || pipe(p) != 0) rc = -errno;
  d->stop_rd = p[0];
  d->stop_wr = p[1];
  if (rc == 0) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(cfg->port);
    a.sin_addr = bind_addr;
    socklen_t al = sizeof a;
    if (bind(d->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(d->fd, (struct sockaddr *)&a, &al) != 0)
      rc = -errno;
    d->port = ntohs(a.sin_port);
  }
  if (rc == 0) {
    int e = pthread_create(&d->thread, NULL, serve, d);
    if (e)
      rc = -e;
    else
      d->thread_started = 1;
  }
  if (rc) {
    mock_dns_free(d);
    return rc;
  }
  *out = d;
  return 0;
}

void mock_dns_free(mock_dns *d) {
  if (!d) return;
  if (d->thread_started) {
    char c = 1;
    while (write(d->stop_wr, &c, 1) < 0 && errno == EINTR) {
    }
    pthread_join(d->thread, NULL);
  }
  if (d->fd >= 0) close(d->fd);
  if (d->stop_rd >= 0) close(d->stop_rd);
  if (d->stop_wr >= 0) close(d->stop_wr);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

uint16_t mock_dns_port(const mock_dns *d) { return d ? d->port : 0; }

int mock_dns_set_txt(mock_dns *d, const char *const *records, size_t n) {
  pthread_mutex_lock(&d->mu);
  int rc = set_txt_locked(d, records, n);
  pthread_mutex_unlock(&d->mu);
  return rc;
}

void mock_dns_set_drop(mock_dns *d, int drop) {
  pthread_mutex_lock(&d->mu);
  d->drop = drop;
  pthread_mutex_unlock(&d->mu);
}

void mock_dns_set_servfail(mock_dns *d, int servfail) {
  pthread_mutex_lock(&d->mu);
  d->servfail = servfail;
  pthread_mutex_unlock(&d->mu);
}

void mock_dns_stats_get(mock_dns *d, mock_dns_stats *out) {
  pthread_mutex_lock(&d->mu);
  *out = d->st;
  pthread_mutex_unlock(&d->mu);
}
