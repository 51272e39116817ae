/* SOCKS5 client handshake (src/transport/socks5.c). Expected bytes are
 * written out from the RFC 1928 / RFC 1929 message layouts. */
#include "test.h"
#include "transport/socks5.h"

static const uint8_t dc2_v4[4] = {149, 154, 167, 51};
static const uint8_t dc1_v6[16] = {0x20, 0x01, 0x0b, 0x28, 0xf2, 0x3d, 0xf0, 0x01,
                                   0,    0,    0,    0,    0,    0,    0,    0x0a};

/* Take everything pending, check it equals want_hex, mark it sent. */
static int expect_out(mtci_socks5 *s, const char *want_hex) {
  uint8_t want[600];
  size_t n = test_unhex(want_hex, want, sizeof want);
  const uint8_t *p = NULL;
  size_t got = mtci_socks5_pending(s, &p);
  if (n == (size_t)-1 || got != n || (n && memcmp(p, want, n) != 0)) {
    fprintf(stderr, "    pending %zu bytes, want %zu\n", got, n);
    if (got) test_dump_("got", p, got);
    test_dump_("want", want, n);
    return 0;
  }
  return mtci_socks5_sent(s, got) == 0;
}

/* Feed server bytes given as hex in chunks of `step` (0 = all at once);
 * returns the last result and the total consumed. */
static int feed_hex(mtci_socks5 *s, const char *hex, size_t step, size_t *consumed) {
  uint8_t b[600];
  size_t n = test_unhex(hex, b, sizeof b);
  size_t off = 0, total = 0;
  int rc = 0;
  if (n == (size_t)-1) return -9999;
  if (step == 0) step = n ? n : 1;
  while (off < n) {
    size_t len = n - off < step ? n - off : step;
    size_t used = 0;
    rc = mtci_socks5_feed(s, b + off, len, &used);
    total += used;
    off += len;
    if (rc != 0) break;
  }
  if (consumed) *consumed = total;
  return rc;
}

TEST(greeting_bytes) {
  mtci_socks5 s;
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0), 0);
  CHECK(expect_out(&s, "050100"));
  CHECK_EQ_INT(mtci_socks5_pending(&s, NULL), 0);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, (const uint8_t *)"u", 1,
                                (const uint8_t *)"p", 1),
               0);
  CHECK(expect_out(&s, "05020002"));
  /* Partial sends. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0), 0);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_socks5_pending(&s, &p), 3);
  CHECK_EQ_INT(mtci_socks5_sent(&s, 1), 0);
  CHECK_EQ_INT(mtci_socks5_pending(&s, &p), 2);
  CHECK_MEM(p, "\x01\x00", 2);
  CHECK_EQ_INT(mtci_socks5_sent(&s, 3), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_socks5_sent(&s, 2), 0);
  CHECK_EQ_INT(mtci_socks5_pending(&s, &p), 0);
  mtci_socks5_free(&s);
}

/* No auth, IPv4 target 149.154.167.51:443; BND IPv4 in the reply. */
static int run_noauth_v4(size_t step, int *done_rc, size_t *consumed) {
  mtci_socks5 s;
  if (mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0)) return 0;
  if (!expect_out(&s, "050100")) return 0;
  if (feed_hex(&s, "0500", step, NULL) != 0) return 0;
  if (!expect_out(&s, "05010001 959aa733 01bb")) return 0;
  *done_rc = feed_hex(&s, "05000001 0a000001 1f90", step, consumed);
  int ok = mtci_socks5_done(&s) && s.bnd_atyp == 1 && s.bnd_addr_len == 4 &&
           memcmp(s.bnd_addr, "\x0a\x00\x00\x01", 4) == 0 && s.bnd_port == 8080 && s.method == 0;
  mtci_socks5_free(&s);
  return ok;
}

TEST(noauth_ipv4) {
  int rc = 0;
  size_t used = 0;
  CHECK(run_noauth_v4(0, &rc, &used));
  CHECK_EQ_INT(rc, MTCI_SOCKS5_DONE);
  CHECK_EQ_INT(used, 10);
  /* Same result one byte at a time and in 3-byte chunks. */
  CHECK(run_noauth_v4(1, &rc, &used));
  CHECK_EQ_INT(rc, MTCI_SOCKS5_DONE);
  CHECK_EQ_INT(used, 10);
  CHECK(run_noauth_v4(3, &rc, &used));
  CHECK_EQ_INT(rc, MTCI_SOCKS5_DONE);
  CHECK_EQ_INT(used, 10);
}

/* User/pass, IPv6 target [2001:b28:f23d:f001::a]:443, BND IPv6. */
static int run_auth_v6(size_t step) {
  mtci_socks5 s;
  int ok = 0;
  if (mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV6, dc1_v6, 16, 443, (const uint8_t *)"alice", 5,
                       (const uint8_t *)"s3cret!", 7))
    return 0;
  if (!expect_out(&s, "05020002")) goto out;
  if (feed_hex(&s, "0502", step, NULL) != 0) goto out;
  /* 01 | 05 "alice" | 07 "s3cret!" */
  if (!expect_out(&s, "01 05 616c696365 07 73336372657421")) goto out;
  if (feed_hex(&s, "0100", step, NULL) != 0) goto out;
  if (!expect_out(&s, "05010004 20010b28f23df001000000000000000a 01bb")) goto out;
  if (feed_hex(&s, "05000004 20010db8000000000000000000000001 0438", step, NULL) !=
      MTCI_SOCKS5_DONE)
    goto out;
  ok = s.method == 2 && s.bnd_atyp == 4 && s.bnd_addr_len == 16 && s.bnd_addr[0] == 0x20 &&
       s.bnd_addr[15] == 1 && s.bnd_port == 1080;
  /* Credentials wiped once the auth message went out. */
  for (size_t i = 0; i + 7 <= sizeof s; i++)
    if (memcmp((const uint8_t *)&s + i, "s3cret!", 7) == 0) ok = 0;
out:
  mtci_socks5_free(&s);
  return ok;
}

TEST(auth_ipv6) {
  CHECK(run_auth_v6(0));
  CHECK(run_auth_v6(1));
  CHECK(run_auth_v6(2));
}

TEST(domain_target_and_leftover) {
  mtci_socks5 s;
  const char *name = "venus.web.telegram.org";
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_DOMAIN, (const uint8_t *)name, strlen(name),
                                443, NULL, 0, NULL, 0),
               0);
  CHECK(expect_out(&s, "050100"));
  CHECK_EQ_INT(feed_hex(&s, "0500", 0, NULL), 0);
  /* 05 01 00 03 | 16 "venus.web.telegram.org" | 01bb */
  CHECK(expect_out(&s, "05010003 16 76656e75732e7765622e74656c656772616d2e6f7267 01bb"));
  /* Reply with a domain BND.ADDR ("proxy.local") and 5 bytes of app data. */
  uint8_t reply[64];
  size_t n = test_unhex("05000003 0b 70726f78792e6c6f63616c 0050 68656c6c6f", reply, sizeof reply);
  CHECK_EQ_INT(n, 4 + 1 + 11 + 2 + 5);
  size_t used = 0;
  CHECK_EQ_INT(mtci_socks5_feed(&s, reply, n, &used), MTCI_SOCKS5_DONE);
  CHECK_EQ_INT(used, 18);
  CHECK_MEM(reply + used, "hello", 5);
  CHECK_EQ_INT(s.bnd_atyp, 3);
  CHECK_EQ_INT(s.bnd_addr_len, 11);
  CHECK_MEM(s.bnd_addr, "proxy.local", 11);
  CHECK_EQ_INT(s.bnd_port, 80);
  /* After done: nothing consumed, still done. */
  CHECK_EQ_INT(mtci_socks5_feed(&s, reply, n, &used), MTCI_SOCKS5_DONE);
  CHECK_EQ_INT(used, 0);
  CHECK_EQ_INT(mtci_socks5_pending(&s, NULL), 0);

  /* The same one byte at a time: the leftover starts at the same place. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_DOMAIN, (const uint8_t *)name, strlen(name),
                                443, NULL, 0, NULL, 0),
               0);
  CHECK(expect_out(&s, "050100"));
  CHECK_EQ_INT(feed_hex(&s, "0500", 1, NULL), 0);
  CHECK(expect_out(&s, "05010003 16 76656e75732e7765622e74656c656772616d2e6f7267 01bb"));
  size_t total = 0;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    rc = mtci_socks5_feed(&s, reply + i, 1, &used);
    total += used;
    if (rc == MTCI_SOCKS5_DONE) {
      CHECK_EQ_INT(i + 1, 18);
      break;
    }
    CHECK_EQ_INT(rc, 0);
  }
  CHECK_EQ_INT(rc, MTCI_SOCKS5_DONE);
  CHECK_EQ_INT(total, 18);
  mtci_socks5_free(&s);
}

TEST(domain_limits) {
  mtci_socks5 s;
  uint8_t name[256];
  memset(name, 'a', sizeof name);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_DOMAIN, name, 256, 443, NULL, 0, NULL, 0),
               MTC_ERR_SOCKS_PARAMS);
  CHECK_EQ_INT(mtci_socks5_pending(&s, NULL), 0);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_DOMAIN, name, 0, 443, NULL, 0, NULL, 0),
               MTC_ERR_SOCKS_PARAMS);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_DOMAIN, name, 255, 443, NULL, 0, NULL, 0), 0);
  CHECK(expect_out(&s, "050100"));
  CHECK_EQ_INT(feed_hex(&s, "0500", 0, NULL), 0);
  const uint8_t *p;
  CHECK_EQ_INT(mtci_socks5_pending(&s, &p), 4 + 1 + 255 + 2);
  CHECK_MEM(p, "\x05\x01\x00\x03\xff" "aaaa", 9);
  CHECK_MEM(p + 260, "\x01\xbb", 2);
  /* Other bad parameters. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 3, 443, NULL, 0, NULL, 0),
               MTC_ERR_SOCKS_PARAMS);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV6, dc1_v6, 4, 443, NULL, 0, NULL, 0),
               MTC_ERR_SOCKS_PARAMS);
  CHECK_EQ_INT(mtci_socks5_init(&s, 0x02, dc2_v4, 4, 443, NULL, 0, NULL, 0), MTC_ERR_SOCKS_PARAMS);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 0, NULL, 0, NULL, 0),
               MTC_ERR_SOCKS_PARAMS);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, name, 256, name, 1),
               MTC_ERR_SOCKS_PARAMS);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, name, 1, name, 256),
               MTC_ERR_SOCKS_PARAMS);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, name, 1),
               MTC_ERR_SOCKS_PARAMS);
  /* 255/255 credentials and an empty password are accepted. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, name, 255, name, 255),
               0);
  CHECK(expect_out(&s, "05020002"));
  CHECK_EQ_INT(feed_hex(&s, "0502", 0, NULL), 0);
  CHECK_EQ_INT(mtci_socks5_pending(&s, &p), 1 + 1 + 255 + 1 + 255);
  CHECK_EQ_INT(p[1], 255);
  CHECK_EQ_INT(p[257], 255);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, (const uint8_t *)"bob",
                                3, NULL, 0),
               0);
  CHECK(expect_out(&s, "05020002"));
  CHECK_EQ_INT(feed_hex(&s, "0502", 0, NULL), 0);
  CHECK(expect_out(&s, "01 03 626f62 00"));
  mtci_socks5_free(&s);
}

/* Run to the reply stage (no auth, IPv4) and feed `reply`; return the code. */
static int reply_code(const char *reply_hex, size_t step) {
  mtci_socks5 s;
  if (mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0)) return -9998;
  if (!expect_out(&s, "050100")) return -9997;
  if (feed_hex(&s, "0500", 0, NULL) != 0) return -9996;
  if (!expect_out(&s, "05010001 959aa733 01bb")) return -9995;
  int rc = feed_hex(&s, reply_hex, step, NULL);
  /* Errors are sticky. */
  if (rc < 0) {
    uint8_t more[1] = {0};
    if (mtci_socks5_feed(&s, more, 1, NULL) != rc) return -9994;
    if (mtci_socks5_sent(&s, 0) != rc) return -9993;
    if (mtci_socks5_pending(&s, NULL) != 0) return -9992;
  }
  mtci_socks5_free(&s);
  return rc;
}

TEST(rep_codes) {
  static const struct {
    const char *hex;
    int code;
  } cases[] = {
      {"05010001 00000000 0000", MTC_ERR_SOCKS_GENERAL_FAILURE},
      {"05020001 00000000 0000", MTC_ERR_SOCKS_NOT_ALLOWED},
      {"05030001 00000000 0000", MTC_ERR_SOCKS_NET_UNREACHABLE},
      {"05040001 00000000 0000", MTC_ERR_SOCKS_HOST_UNREACHABLE},
      {"05050001 00000000 0000", MTC_ERR_SOCKS_CONN_REFUSED},
      {"05060001 00000000 0000", MTC_ERR_SOCKS_TTL_EXPIRED},
      {"05070001 00000000 0000", MTC_ERR_SOCKS_CMD_UNSUPPORTED},
      {"05080001 00000000 0000", MTC_ERR_SOCKS_ATYP_UNSUPPORTED},
      {"05090001 00000000 0000", MTC_ERR_SOCKS_REPLY},
      {"05ff0001 00000000 0000", MTC_ERR_SOCKS_REPLY},
      {"04000001 00000000 0000", MTC_ERR_SOCKS_VERSION},
      {"00", MTC_ERR_SOCKS_VERSION},
      {"05000101 00000000 0000", MTC_ERR_SOCKS_PROTOCOL},  /* RSV != 0 */
      {"05000002 00000000 0000", MTC_ERR_SOCKS_ATYP},
      {"05000005 00000000 0000", MTC_ERR_SOCKS_ATYP},
      {"05000000", MTC_ERR_SOCKS_ATYP},
      {"05000003 00 0000", MTC_ERR_SOCKS_PROTOCOL},        /* empty BND name */
      {"05000001 00000000 00", 0},                          /* incomplete: wait */
      {"05000003 03 616263 00", 0},
      {"05000003 03 616263 0050", MTCI_SOCKS5_DONE},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int whole = reply_code(cases[i].hex, 0), bytewise = reply_code(cases[i].hex, 1);
    if (whole != cases[i].code || bytewise != cases[i].code)
      fprintf(stderr, "  reply case %zu: %d / %d\n", i, whole, bytewise);
    CHECK_EQ_INT(whole, cases[i].code);
    CHECK_EQ_INT(bytewise, cases[i].code);
  }
  /* REP n -> -360 - n: the mapping the header promises. */
  for (int rep = 1; rep <= 8; rep++) {
    char hex[32];
    snprintf(hex, sizeof hex, "05%02x0001 00000000 0000", rep);
    CHECK_EQ_INT(reply_code(hex, 0), -360 - rep);
    CHECK(strcmp(mtc_strerror(-360 - rep), "unknown error") != 0);
  }
}

TEST(method_and_auth_errors) {
  mtci_socks5 s;
  /* 0xFF: no acceptable method. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0), 0);
  CHECK(expect_out(&s, "050100"));
  CHECK_EQ_INT(feed_hex(&s, "05ff", 1, NULL), MTC_ERR_SOCKS_NO_METHOD);
  /* Server picks user/pass although we offered only no-auth. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0), 0);
  CHECK(expect_out(&s, "050100"));
  CHECK_EQ_INT(feed_hex(&s, "0502", 0, NULL), MTC_ERR_SOCKS_METHOD);
  /* GSSAPI (01). */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, (const uint8_t *)"u", 1,
                                (const uint8_t *)"p", 1),
               0);
  CHECK(expect_out(&s, "05020002"));
  CHECK_EQ_INT(feed_hex(&s, "0501", 0, NULL), MTC_ERR_SOCKS_METHOD);
  /* Bad version in the method reply. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0), 0);
  CHECK(expect_out(&s, "050100"));
  CHECK_EQ_INT(feed_hex(&s, "0400", 0, NULL), MTC_ERR_SOCKS_VERSION);
  /* With credentials, the server may still choose no-auth. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, (const uint8_t *)"u", 1,
                                (const uint8_t *)"p", 1),
               0);
  CHECK(expect_out(&s, "05020002"));
  CHECK_EQ_INT(feed_hex(&s, "0500", 0, NULL), 0);
  CHECK(expect_out(&s, "05010001 959aa733 01bb"));
  /* Auth rejected; auth reply with a wrong version. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, (const uint8_t *)"u", 1,
                                (const uint8_t *)"p", 1),
               0);
  CHECK(expect_out(&s, "05020002"));
  CHECK_EQ_INT(feed_hex(&s, "0502", 1, NULL), 0);
  CHECK(expect_out(&s, "01 01 75 01 70"));
  CHECK_EQ_INT(feed_hex(&s, "0101", 1, NULL), MTC_ERR_SOCKS_AUTH_FAILED);
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, (const uint8_t *)"u", 1,
                                (const uint8_t *)"p", 1),
               0);
  CHECK(expect_out(&s, "05020002"));
  CHECK_EQ_INT(feed_hex(&s, "0502", 0, NULL), 0);
  CHECK(expect_out(&s, "01 01 75 01 70"));
  CHECK_EQ_INT(feed_hex(&s, "0500", 0, NULL), MTC_ERR_SOCKS_VERSION);
  mtci_socks5_free(&s);
}

TEST(out_of_turn) {
  mtci_socks5 s;
  /* Server bytes before the greeting was handed out. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0), 0);
  CHECK_EQ_INT(feed_hex(&s, "0500", 0, NULL), MTC_ERR_SOCKS_PROTOCOL);
  /* The method reply and the CONNECT reply in one chunk: the server answered
   * a request it had not received. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0), 0);
  CHECK(expect_out(&s, "050100"));
  size_t used = 0;
  CHECK_EQ_INT(feed_hex(&s, "0500 05000001 00000000 0000", 0, &used), MTC_ERR_SOCKS_PROTOCOL);
  CHECK_EQ_INT(used, 2);
  /* Partly sent greeting. */
  CHECK_EQ_INT(mtci_socks5_init(&s, MTCI_SOCKS5_ATYP_IPV4, dc2_v4, 4, 443, NULL, 0, NULL, 0), 0);
  CHECK_EQ_INT(mtci_socks5_sent(&s, 2), 0);
  CHECK_EQ_INT(feed_hex(&s, "05", 0, NULL), MTC_ERR_SOCKS_PROTOCOL);
  /* Feeding an uninitialized (zeroed) machine. */
  memset(&s, 0, sizeof s);
  CHECK_EQ_INT(mtci_socks5_feed(&s, (const uint8_t *)"\x05", 1, NULL), MTC_ERR_INVALID_ARG);
  mtci_socks5_free(&s);
}

TEST(error_texts) {
  for (int c = -355; c >= -370; c--) {
    const char *t = mtc_strerror(c);
    CHECK(t && strcmp(t, "unknown error") != 0);
    for (int d = c + 1; d <= -340; d++) CHECK(strcmp(t, mtc_strerror(d)) != 0);
  }
}

TEST_MAIN("socks5", CASE(greeting_bytes), CASE(noauth_ipv4), CASE(auth_ipv6),
          CASE(domain_target_and_leftover), CASE(domain_limits), CASE(rep_codes),
          CASE(method_and_auth_errors), CASE(out_of_turn), CASE(error_texts))
