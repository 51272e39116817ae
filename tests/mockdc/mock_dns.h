/*
 * mock_dns: a tiny UDP DNS server on 127.0.0.1 (or another loopback
 * address, mock_dns_new_on) for the plain-DNS side of
 * endpoint discovery (c-ares TXT queries for apv3.stel.com, A/AAAA lookups
 * of proxy host names). TEST CODE: its own thread, POSIX sockets, poll().
 *
 * Messages are built by hand (RFC 1035 §4.1):
 *
 *   header   id(2) flags(2) qdcount(2) ancount(2) nscount(2) arcount(2)
 *            flags: QR=1, opcode copied, AA=1, TC=0, RD copied, RA=1, RCODE
 *   question echoed byte for byte (QNAME labels, QTYPE, QCLASS)
 *   answers  NAME = c0 0c (pointer to the question's name), TYPE, CLASS IN,
 *            TTL 300, RDLENGTH, RDATA
 *            TXT  RDATA = one or more <len:1><bytes> character-strings; a
 *                 record longer than 255 bytes is split into 255-byte
 *                 strings (a resolver joins the strings of one record)
 *            A    4 bytes, AAAA 16 bytes
 *
 * Answers:
 *   - the TXT name (case-insensitive, trailing dot optional), type TXT (16)
 *     or ANY (255): one TXT RR per configured record, in configured order
 *   - a configured host name, type A (1) / AAAA (28): its address, if any
 *   - a known name with no record of the asked type: NOERROR, no answers
 *   - any other name: NXDOMAIN (RCODE 3)
 *   - a query that does not parse (short, QR set, qdcount != 1, bad labels):
 *     FORMERR (RCODE 1) if the header is readable, else dropped
 *   The answer is capped at 512 bytes (classic UDP); a bigger one is sent
 *   with TC=1 and no answers (the tests keep records small).
 *
 * Switches: drop (read queries, never answer - the client must time out),
 * servfail (RCODE 2 for every query).
 *
 * Thread safety: every function may be called from any thread (one mutex).
 */
#ifndef MTC_MOCK_DNS_H
#define MTC_MOCK_DNS_H

#include <stddef.h>
#include <stdint.h>

#define MOCK_DNS_MAX_RECORDS 8
#define MOCK_DNS_MAX_RECORD_LEN 1024
#define MOCK_DNS_MAX_HOSTS 8

typedef struct mock_dns mock_dns;

typedef struct mock_dns_host {
  const char *name; /* host name */
  const char *ipv4; /* dotted quad or NULL (no A record) */
  const char *ipv6; /* IPv6 literal or NULL (no AAAA record) */
} mock_dns_host;

typedef struct mock_dns_config {
  uint16_t port;                  /* 0 = ephemeral */
  const char *txt_name;           /* NULL = "apv3.stel.com" */
  const char *const *txt_records; /* copied */
  size_t n_txt;
  const mock_dns_host *hosts; /* copied */
  size_t n_hosts;
} mock_dns_config;

typedef struct mock_dns_stats {
  uint64_t queries;  /* datagrams received */
  uint64_t txt;      /* TXT/ANY queries for the TXT name */
  uint64_t a, aaaa;  /* A / AAAA queries for a configured host */
  uint64_t nxdomain; /* unknown names */
  uint64_t nodata;   /* known name, no record of that type */
  uint64_t dropped;  /* drop switch, or unreadable datagrams */
  uint64_t formerr;
  uint64_t servfail;
  uint16_t last_qtype;
} mock_dns_stats;

/* Bind 127.0.0.1:port (UDP) and start the thread. 0, MTC_ERR_INVALID_ARG
 * (too many/long records, bad host address), -errno, MTC_ERR_NOMEM. */
int mock_dns_new(const mock_dns_config *cfg, mock_dns **out);
/* The same on another loopback address (127.x.y.z, e.g. "127.0.0.2": a
 * second server on the same port, for resolvers that take no port from
 * resolv.conf). MTC_ERR_INVALID_ARG for a non-loopback address. */
int mock_dns_new_on(const mock_dns_config *cfg, const char *ipv4, mock_dns **out);
void mock_dns_free(mock_dns *d); /* stops the thread; NULL-safe */

uint16_t mock_dns_port(const mock_dns *d);
/* Replace the TXT records (copied). 0 or MTC_ERR_INVALID_ARG. */
int mock_dns_set_txt(mock_dns *d, const char *const *records, size_t n);
void mock_dns_set_drop(mock_dns *d, int drop);
void mock_dns_set_servfail(mock_dns *d, int servfail);
void mock_dns_stats_get(mock_dns *d, mock_dns_stats *out);

/* ---- pure helpers (also used by the server) --------------------------------------- */

/*
 * Build the answer to query q[0..qlen) into out[0..cap) (cap >= 512) from
 * d's records and switches, counting it in d's stats, as the server thread
 * does. Returns the answer length, 0 to drop the query. Exposed so a test
 * can check the bytes.
 */
size_t mock_dns_answer(mock_dns *d, const uint8_t *q, size_t qlen, uint8_t *out, size_t cap);

#endif /* MTC_MOCK_DNS_H */
