/*
 * The mock DoH server (tests/mockdc/mock_doh.*) over real loopback sockets,
 * fetched with a tiny blocking HTTP/1.1 client, parsed with doh_json and
 * decoded with simple_config (the mock's TEST key) back to the configured
 * addresses. Every switch is observed from the client side and in the
 * server's counters. Each socket wait has a deadline, so a bug fails, never
 * hangs.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "discovery/doh_json.h"
#include "discovery/simple_config.h"
#include "mock_auth.h"
#include "mock_doh.h"
#include "mock_loop.h"
#include "test.h"
#include "test_net.h"

#define IO_TIMEOUT_MS 5000

/* ---- environment ----------------------------------------------------------------- */

static const uint8_t k_secret_ee[] = {0xee, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
                                      0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 'w', 'w', 'w', '.',
                                      'g', 'o', 'o', 'g', 'l', 'e', '.', 'c', 'o', 'm'};
/* The mock cluster's alternative ports stand in here as fixed numbers. */
#define ALT_PORT_A 24431
#define ALT_PORT_B 24432

static const mock_sconf_ip k_ips_dc2[] = {
    {{127, 0, 0, 1}, ALT_PORT_A, k_secret_ee, sizeof k_secret_ee},
    {{127, 0, 0, 1}, ALT_PORT_B, NULL, 0}};
static const mock_sconf_ip k_ips_dc4[] = {{{127, 0, 0, 2}, 443, NULL, 0}};
static const mock_sconf_rule k_rules[] = {{"", 2, k_ips_dc2, 2}, {"+44", 4, k_ips_dc4, 1}};

struct env {
  mock_loop *loop;
  mock_doh *doh;
  uint16_t port;
  mtci_rsa_key pub;
};

static int env_up(struct env *e, int64_t clock_offset) {
  memset(e, 0, sizeof *e);
  if (mock_loop_new(&e->loop) < 0) return -1;
  mock_doh_config cfg;
  memset(&cfg, 0, sizeof cfg);
  const char *pem = mock_test_key_pem(3);
  cfg.key_pem = pem;
  cfg.key_pem_len = pem ? strlen(pem) : 0;
  cfg.rules = k_rules;
  cfg.n_rules = 2;
  cfg.clock_offset = clock_offset;
  if (mock_doh_new(e->loop, &cfg, &e->doh) != 0) return -1;
  e->port = mock_doh_port(e->doh);
  e->pub = *mock_doh_public_key(e->doh);
  return mock_loop_start_thread(e->loop);
}

static void env_down(struct env *e) {
  if (e->loop) mock_loop_stop_thread(e->loop);
  mock_doh_free(e->doh);
  mock_loop_free(e->loop);
  memset(e, 0, sizeof *e);
}

static void env_switches(struct env *e, const mock_doh_switches *sw) {
  mock_loop_lock(e->loop);
  mock_doh_set_switches(e->doh, sw);
  mock_loop_unlock(e->loop);
}

static mock_doh_stats env_stats(struct env *e) {
  mock_doh_stats st;
  mock_loop_lock(e->loop);
  mock_doh_stats_get(e->doh, &st);
  mock_loop_unlock(e->loop);
  return st;
}

/* ---- a tiny blocking HTTP client ----------------------------------------------------- */

struct resp {
  int timed_out; /* no complete answer before the deadline */
  size_t raw_len;
  int status;
  char date[64];
  char ctype[64];
  const char *body;
  size_t body_len;
  char raw[16384];
};

static int tcp_connect(uint16_t port) {
  int fd = test_tcp_connect(port, IO_TIMEOUT_MS);
  return fd < 0 ? -1 : fd;
}

/* Header value (case-insensitive name) from the raw head, or "". */
static void header(const char *head, const char *name, char *out, size_t cap) {
  out[0] = 0;
  size_t nl = strlen(name);
  for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
    const char *p = l + 2;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      p += nl + 1;
      while (*p == ' ') p++;
      const char *end = strstr(p, "\r\n");
      size_t n = end ? (size_t)(end - p) : strlen(p);
      if (n >= cap) n = cap - 1;
      memcpy(out, p, n);
      out[n] = 0;
      return;
    }
  }
}

/* Send req, read until the server closes or timeout_ms passes. Returns 0
 * when a response was parsed, 1 on timeout, -1 on a socket / parse error. */
static int http(uint16_t port, const char *req, int timeout_ms, struct resp *r) {
  memset(r, 0, sizeof *r);
  int fd = tcp_connect(port);
  if (fd < 0) return -1;
  size_t n = strlen(req), sent = 0;
  while (sent < n) {
    ssize_t k = send(fd, req + sent, n - sent, MSG_NOSIGNAL);
    if (k <= 0) {
      close(fd);
      return -1;
    }
    sent += (size_t)k;
  }
  int64_t deadline = mock_loop_now_ms() + timeout_ms;
  int eof = 0;
  while (!eof) {
    int64_t left = deadline - mock_loop_now_ms();
    if (left <= 0) break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)left);
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    ssize_t k = recv(fd, r->raw + r->raw_len, sizeof r->raw - 1 - r->raw_len, 0);
    if (k > 0) r->raw_len += (size_t)k;
    else if (k == 0 || (errno != EINTR && errno != EAGAIN)) eof = 1;
    if (r->raw_len == sizeof r->raw - 1) break;
  }
  close(fd);
  r->raw[r->raw_len] = 0;
  if (!eof) {
    r->timed_out = 1;
    return 1;
  }
  if (sscanf(r->raw, "HTTP/1.1 %d", &r->status) != 1) return -1;
  char *end = strstr(r->raw, "\r\n\r\n");
  if (!end) return -1;
  end[2] = 0; /* the head ends with its last CRLF */
  header(r->raw, "Date", r->date, sizeof r->date);
  header(r->raw, "Content-Type", r->ctype, sizeof r->ctype);
  char cl[32];
  header(r->raw, "Content-Length", cl, sizeof cl);
  r->body = end + 4;
  r->body_len = r->raw_len - (size_t)(r->body - r->raw);
  if (!cl[0] || (size_t)strtoul(cl, NULL, 10) != r->body_len) return -1;
  return 0;
}

/* RFC 1123 date -> unix seconds; -1 if malformed. */
static int64_t parse_http_date(const char *s) {
  static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char wd[4], mon[4], gmt[4];
  int d, y, hh, mm, ss;
  if (sscanf(s, "%3s, %d %3s %d %d:%d:%d %3s", wd, &d, mon, &y, &hh, &mm, &ss, gmt) != 8) return -1;
  if (strcmp(gmt, "GMT") != 0) return -1;
  int m = -1;
  for (int i = 0; i < 12; i++)
    if (strcmp(mon, mo[i]) == 0) m = i + 1;
  if (m < 0) return -1;
  /* days from civil (Howard Hinnant) */
  int yy = y - (m <= 2);
  int era = yy / 400;
  int yoe = yy - era * 400;
  int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = (int64_t)era * 146097 + doe - 719468;
  return days * 86400 + hh * 3600 + mm * 60 + ss;
}

static char *google_req(char *buf, size_t cap, const char *name, const char *type) {
  snprintf(buf, cap,
           "GET /resolve?name=%s&type=%s&random_padding=Ab3dEfGhIjKlM HTTP/1.1\r\n"
           "Host: dns.google.com\r\nUser-Agent: Mozilla/5.0 (test)\r\n\r\n",
           name, type);
  return buf;
}

static char *cloudflare_req(char *buf, size_t cap, const char *name, int accept) {
  snprintf(buf, cap,
           "GET /dns-query?name=%s&type=16&random_padding=xyzxyzxyzxyzxyz HTTP/1.1\r\n"
           "Host: mozilla.cloudflare-dns.com\r\n%s\r\n",
           name, accept ? "accept: application/dns-json\r\n" : "");
  return buf;
}

/* Body -> TXT -> simple config (mock key, real clock + offset). */
static int fetch_decode(const struct env *e, const struct resp *r, int64_t offset,
                        mtci_doh_txt *t, mtci_simple_config *c) {
  int rc = mtci_doh_json_parse(r->body, r->body_len, t);
  if (rc) return rc;
  mtci_sconf_part parts[MTCI_DOH_MAX_PARTS];
  size_t n = mtci_doh_txt_parts(t, parts);
  return mtci_simple_config_decode(&e->pub, parts, n, (int64_t)time(NULL) + offset, NULL, 0, c);
}

static void check_endpoints(int *t_failed_, const mtci_simple_config *c) {
  CHECK_EQ_INT(c->count, 3);
  CHECK_EQ_INT(c->ep[0].dc_id, 2);
  CHECK(strcmp(c->ep[0].ipv4, "127.0.0.1") == 0);
  CHECK_EQ_INT(c->ep[0].port, ALT_PORT_A);
  CHECK_EQ_INT(c->ep[0].secret_len, sizeof k_secret_ee);
  CHECK_MEM(c->ep[0].secret, k_secret_ee, sizeof k_secret_ee);
  CHECK_EQ_INT(c->ep[1].port, ALT_PORT_B);
  CHECK_EQ_INT(c->ep[1].secret_len, 0);
  CHECK_EQ_INT(c->ep[2].dc_id, 4);
  CHECK(strcmp(c->ep[2].ipv4, "127.0.0.2") == 0);
}

/* ---- tests ------------------------------------------------------------------------ */

TEST(google_resolve) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, 0), 0);
  char req[512];
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  int64_t t0 = (int64_t)time(NULL);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(r->status, 200);
  CHECK(strncmp(r->ctype, "application/json", 16) == 0);
  int64_t date = parse_http_date(r->date);
  CHECK(date >= t0 - 2 && date <= (int64_t)time(NULL) + 2);
  mtci_doh_txt t;
  mtci_simple_config c;
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), 0);
  /* Google order: short part first, bare. */
  CHECK_EQ_INT(t.count, 2);
  CHECK_EQ_INT(t.len[0], 94);
  CHECK_EQ_INT(t.len[1], 250);
  mock_loop_lock(e.loop);
  const char *txt = mock_doh_txt(e.doh);
  int same = memcmp(t.text[1], txt, 250) == 0 && memcmp(t.text[0], txt + 250, 94) == 0;
  mock_loop_unlock(e.loop);
  CHECK(same);
  check_endpoints(t_failed_, &c);
  if (*t_failed_) goto out;
  /* type=TXT / ANY work as 16 does; a trailing dot and upper case too. */
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "APV3.stel.com.", "TXT"), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), 0);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "ANY"), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), 0);
  /* Another type: NOERROR without records. */
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "1"), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(r->status, 200);
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), MTC_ERR_DOH_NO_TXT);
  mock_doh_stats st = env_stats(&e);
  CHECK_EQ_INT(st.google, 4);
  CHECK_EQ_INT(st.cloudflare, 0);
  CHECK_EQ_INT(st.answered, 3);
  CHECK_EQ_INT(st.nodata, 1);
  CHECK_EQ_INT(st.connections, 4);
  CHECK_EQ_INT(st.last_padding_len, 13);
  CHECK(strcmp(st.last_host, "dns.google.com") == 0);
out:
  free(r);
  env_down(&e);
}

TEST(cloudflare_dns_query) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, 0), 0);
  char req[512];
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  CHECK_EQ_INT(http(e.port, cloudflare_req(req, sizeof req, "apv3.stel.com", 1), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(r->status, 200);
  CHECK(strcmp(r->ctype, "application/dns-json") == 0);
  CHECK(strstr(r->body, "\"data\":\"\\\"") != NULL); /* TXT data in literal quotes */
  mtci_doh_txt t;
  mtci_simple_config c;
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), 0);
  CHECK_EQ_INT(t.len[0], 250); /* long first, quotes removed */
  CHECK_EQ_INT(t.len[1], 94);
  check_endpoints(t_failed_, &c);
  if (*t_failed_) goto out;
  /* A phone outside +44 gets the dc 2 addresses only. */
  mtci_sconf_part parts[MTCI_DOH_MAX_PARTS];
  size_t n = mtci_doh_txt_parts(&t, parts);
  CHECK_EQ_INT(mtci_simple_config_decode(&e.pub, parts, n, (int64_t)time(NULL), "+15550100", 9, &c),
               0);
  CHECK_EQ_INT(c.count, 2);
  /* Without the dns-json accept header: 415. */
  CHECK_EQ_INT(http(e.port, cloudflare_req(req, sizeof req, "apv3.stel.com", 0), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(r->status, 415);
  mock_doh_stats st = env_stats(&e);
  CHECK_EQ_INT(st.cloudflare, 1);
  CHECK_EQ_INT(st.bad_requests, 1);
  CHECK_EQ_INT(st.last_padding_len, 15);
  CHECK(strcmp(st.last_host, "mozilla.cloudflare-dns.com") == 0);
out:
  free(r);
  env_down(&e);
}

TEST(nxdomain) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, 0), 0);
  char req[512];
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  mtci_doh_txt t;
  mtci_simple_config c;
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv9.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(r->status, 200);
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), MTC_ERR_DOH_STATUS);
  CHECK_EQ_INT(t.status, 3);
  CHECK_EQ_INT(http(e.port, cloudflare_req(req, sizeof req, "tapv3.stel.com", 1), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), MTC_ERR_DOH_STATUS);
  CHECK_EQ_INT(t.status, 3);
  mock_doh_stats st = env_stats(&e);
  CHECK_EQ_INT(st.nxdomain, 2);
  CHECK_EQ_INT(st.answered, 0);
  free(r);
  env_down(&e);
}

TEST(failing_500) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, 0), 0);
  char req[512];
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  mock_doh_switches sw = {.fail = 1};
  env_switches(&e, &sw);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(r->status, 500);
  CHECK(r->date[0] != 0);
  CHECK_EQ_INT(http(e.port, cloudflare_req(req, sizeof req, "apv3.stel.com", 1), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(r->status, 500);
  mtci_doh_txt t;
  CHECK_EQ_INT(mtci_doh_json_parse(r->body, r->body_len, &t), MTC_ERR_DOH_JSON);
  CHECK_EQ_INT(env_stats(&e).failed, 2);
  memset(&sw, 0, sizeof sw);
  env_switches(&e, &sw);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(r->status, 200);
  free(r);
  env_down(&e);
}

TEST(slow_and_hang) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, 0), 0);
  char req[512];
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  mock_doh_switches sw = {.slow_ms = 300};
  env_switches(&e, &sw);
  /* A client that waits 100 ms sees nothing. */
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), 100, r), 1);
  CHECK_EQ_INT(r->raw_len, 0);
  /* One that waits long enough gets the answer after >= 300 ms. */
  int64_t t0 = mock_loop_now_ms();
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  int64_t took = mock_loop_now_ms() - t0;
  CHECK(took >= 290);
  CHECK_EQ_INT(r->status, 200);
  mtci_doh_txt t;
  mtci_simple_config c;
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), 0);

  /* hang: the request is read and never answered; the connection stays open. */
  sw.slow_ms = 0;
  sw.hang = 1;
  env_switches(&e, &sw);
  t0 = mock_loop_now_ms();
  CHECK_EQ_INT(http(e.port, cloudflare_req(req, sizeof req, "apv3.stel.com", 1), 200, r), 1);
  CHECK(mock_loop_now_ms() - t0 >= 190);
  CHECK_EQ_INT(r->raw_len, 0);
  mock_doh_stats st = env_stats(&e);
  CHECK_EQ_INT(st.hung, 1);
  CHECK_EQ_INT(st.cloudflare, 1);
  CHECK_EQ_INT(st.google, 2);
  CHECK_EQ_INT(st.answered, 2); /* counted when prepared, also the one its client gave up on */
  free(r);
  env_down(&e);
}

TEST(tampered_and_expired) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, 0), 0);
  char req[512];
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  mtci_doh_txt t;
  mtci_simple_config c;
  mock_doh_switches sw = {.tampered = 1};
  env_switches(&e, &sw);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), MTC_ERR_SCONF_HASH);
  sw.tampered = 0;
  sw.expired = 1;
  env_switches(&e, &sw);
  CHECK_EQ_INT(http(e.port, cloudflare_req(req, sizeof req, "apv3.stel.com", 1), IO_TIMEOUT_MS, r),
               0);
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), MTC_ERR_SCONF_EXPIRED);
  /* add_cname: a CNAME entry in front, filtered out by type. */
  sw.expired = 0;
  sw.add_cname = 1;
  env_switches(&e, &sw);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  CHECK(strstr(r->body, "\"type\":5") != NULL);
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), 0);
  CHECK_EQ_INT(t.count, 2);
  check_endpoints(t_failed_, &c);
  free(r);
  env_down(&e);
}

TEST(clock_offset) {
  /* The server's clock runs 3 days ahead: its Date header says so and its
   * config is dated by that clock, so a client with the real clock sees a
   * future-dated config and one corrected by the Date header accepts it. */
  const int64_t off = 3 * 86400;
  struct env e;
  CHECK_EQ_INT(env_up(&e, off), 0);
  char req[512];
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  int64_t now = (int64_t)time(NULL);
  int64_t date = parse_http_date(r->date);
  CHECK(date >= now + off - 2 && date <= now + off + 2);
  mtci_doh_txt t;
  mtci_simple_config c;
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), MTC_ERR_SCONF_FUTURE);
  CHECK_EQ_INT(fetch_decode(&e, r, date - now, &t, &c), 0);
  /* Changed at run time. */
  mock_loop_lock(e.loop);
  mock_doh_set_clock_offset(e.doh, -7200);
  mock_loop_unlock(e.loop);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  date = parse_http_date(r->date);
  now = (int64_t)time(NULL);
  CHECK(date >= now - 7200 - 2 && date <= now - 7200 + 2);
  free(r);
  env_down(&e);
}

TEST(set_rules) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, 0), 0);
  char req[512];
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  mock_sconf_ip ip = {{127, 0, 0, 9}, 5222, NULL, 0};
  mock_sconf_rule rule = {"", 5, &ip, 1};
  mock_loop_lock(e.loop);
  int rc = mock_doh_set_rules(e.doh, 0, 0, &rule, 1);
  mock_loop_unlock(e.loop);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(http(e.port, google_req(req, sizeof req, "apv3.stel.com", "16"), IO_TIMEOUT_MS, r),
               0);
  mtci_doh_txt t;
  mtci_simple_config c;
  CHECK_EQ_INT(fetch_decode(&e, r, 0, &t, &c), 0);
  CHECK_EQ_INT(c.count, 1);
  CHECK_EQ_INT(c.ep[0].dc_id, 5);
  CHECK(strcmp(c.ep[0].ipv4, "127.0.0.9") == 0);
  CHECK_EQ_INT(c.ep[0].port, 5222);
  /* A client holding another key cannot read it. */
  const char *other = mock_test_key_pem(1);
  mock_sconf_key *k = NULL;
  CHECK_EQ_INT(mock_sconf_key_new(other, strlen(other), &k), 0);
  mtci_sconf_part parts[MTCI_DOH_MAX_PARTS];
  size_t n = mtci_doh_txt_parts(&t, parts);
  rc = mtci_simple_config_decode(mock_sconf_key_public(k), parts, n, (int64_t)time(NULL), NULL, 0,
                                 &c);
  mock_sconf_key_free(k);
  CHECK(rc == MTC_ERR_SCONF_HASH || rc == MTC_ERR_SCONF_RSA);
  free(r);
  env_down(&e);
}

TEST(bad_requests) {
  struct env e;
  CHECK_EQ_INT(env_up(&e, 0), 0);
  struct resp *r = malloc(sizeof *r);
  CHECK(r);
  static const struct {
    const char *req;
    int status;
  } cases[] = {
      {"GET /query?name=apv3.stel.com&type=16 HTTP/1.1\r\nHost: x\r\n\r\n", 404},
      {"POST /resolve?name=apv3.stel.com&type=16 HTTP/1.1\r\nHost: x\r\n\r\n", 405},
      {"GET /resolve?type=16 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /resolve?name=apv3.stel.com HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /resolve?name=a%2 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /resolve?name=a\"b&type=16 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"HELLO\r\n\r\n", 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK_EQ_INT(http(e.port, cases[i].req, IO_TIMEOUT_MS, r), 0);
    if (r->status != cases[i].status) fprintf(stderr, "  case %zu\n", i);
    CHECK_EQ_INT(r->status, cases[i].status);
  }
  /* A request head over 8 KiB: 431. */
  char *big = malloc(10000);
  CHECK(big);
  memset(big, 'a', 9999);
  memcpy(big, "GET /resolve?name=", 18);
  big[9999] = 0;
  int rc = http(e.port, big, IO_TIMEOUT_MS, r);
  free(big);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(r->status, 431);
  mock_doh_stats st = env_stats(&e);
  CHECK_EQ_INT(st.bad_requests, 8);
  CHECK_EQ_INT(st.google + st.cloudflare, 0);
  free(r);
  env_down(&e);
}

TEST_MAIN("mock_doh", CASE(google_resolve), CASE(cloudflare_dns_query), CASE(nxdomain),
          CASE(failing_500), CASE(slow_and_hang), CASE(tampered_and_expired), CASE(clock_offset),
          CASE(set_rules), CASE(bad_requests))
