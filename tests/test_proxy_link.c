/* MTProxy secrets and tg://proxy, tg://socks links (src/transport/proxy_link.c).
 *
 * Constants: the ee/example.com secret is the form mtprotoproxy prints
 * ("ee" + hex(key) + hex(domain), PROTOCOL.md §3.2). Its base64url / base64
 * forms and the other base64 constants were computed with python3's base64
 * module, e.g. base64.urlsafe_b64encode(bytes.fromhex("ee0123...636f6d")). */
#include "test.h"
#include "transport/proxy_link.h"

#define KEY_HEX "0123456789abcdef0123456789abcdef"
#define EE_HEX "ee" KEY_HEX "6578616d706c652e636f6d" /* example.com */
#define EE_B64URL "7gEjRWeJq83vASNFZ4mrze9leGFtcGxlLmNvbQ"
/* 0xdd + fbef * 8: standard base64 uses '+' and '/', base64url '-' and '_' */
#define DD_FB_HEX "ddfbeffbeffbeffbeffbeffbeffbeffbef"
#define DD_FB_B64 "3fvv++/77/vv++/77/vv++8="
#define DD_FB_B64URL "3fvv--_77_vv--_77_vv--8="
/* 0xee + fbef * 8 + "www.google.com" */
#define EE_FB_B64 "7vvv++/77/vv++/77/vv++93d3cuZ29vZ2xlLmNvbQ=="
/* 00112233..ff as a plain 16-byte secret */
#define PLAIN_B64 "ABEiM0RVZneImaq7zN3u/w=="
#define PLAIN_B64URL "ABEiM0RVZneImaq7zN3u_w"

static const uint8_t key_0123[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                     0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
static const uint8_t key_fbef[16] = {0xfb, 0xef, 0xfb, 0xef, 0xfb, 0xef, 0xfb, 0xef,
                                     0xfb, 0xef, 0xfb, 0xef, 0xfb, 0xef, 0xfb, 0xef};
static const uint8_t key_0011[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                     0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static int parse(const char *s, mtci_proxy_link *l, const char **msg) {
  return mtci_proxy_link_parse(s, strlen(s), l, msg);
}
static int secret(const char *s, mtci_proxy_secret *out) {
  return mtci_proxy_secret_parse(s, strlen(s), out, NULL);
}

/* ---- secrets ------------------------------------------------------------ */

TEST(secret_encodings) {
  mtci_proxy_secret s;
  CHECK_EQ_INT(secret(KEY_HEX, &s), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_SIMPLE);
  CHECK_MEM(s.key, key_0123, 16);
  CHECK_EQ_INT(s.domain_len, 0);
  CHECK_EQ_INT(secret("0123456789ABCDEF0123456789ABCDEF", &s), 0); /* upper-case hex */
  CHECK_MEM(s.key, key_0123, 16);
  CHECK_EQ_INT(secret("DD" KEY_HEX, &s), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_DD);
  CHECK_MEM(s.key, key_0123, 16);
  CHECK_EQ_INT(secret(EE_HEX, &s), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_EE);
  CHECK_MEM(s.key, key_0123, 16);
  CHECK_EQ_INT(s.domain_len, 11);
  CHECK(strcmp(s.domain, "example.com") == 0);
  /* The same ee secret as base64url, without and with padding. */
  mtci_proxy_secret t;
  CHECK_EQ_INT(secret(EE_B64URL, &t), 0);
  CHECK(memcmp(&s, &t, sizeof s) == 0);
  CHECK_EQ_INT(secret(EE_B64URL "==", &t), 0);
  CHECK(memcmp(&s, &t, sizeof s) == 0);
  /* Standard base64 ('+', '/') and base64url ('-', '_') of a dd secret. */
  CHECK_EQ_INT(secret(DD_FB_B64, &s), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_DD);
  CHECK_MEM(s.key, key_fbef, 16);
  CHECK_EQ_INT(secret(DD_FB_B64URL, &t), 0);
  CHECK(memcmp(&s, &t, sizeof s) == 0);
  CHECK_EQ_INT(secret("3fvv--_77_vv--_77_vv--8", &t), 0); /* unpadded */
  CHECK(memcmp(&s, &t, sizeof s) == 0);
  CHECK_EQ_INT(secret(DD_FB_HEX, &t), 0);
  CHECK(memcmp(&s, &t, sizeof s) == 0);
  CHECK_EQ_INT(secret(EE_FB_B64, &s), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_EE);
  CHECK_MEM(s.key, key_fbef, 16);
  CHECK(strcmp(s.domain, "www.google.com") == 0);
  CHECK_EQ_INT(secret(PLAIN_B64, &s), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_SIMPLE);
  CHECK_MEM(s.key, key_0011, 16);
  CHECK_EQ_INT(secret(PLAIN_B64URL, &t), 0);
  CHECK(memcmp(&s, &t, sizeof s) == 0);
  mtci_proxy_secret_free(&s);
  mtci_proxy_secret_free(&t);
}

TEST(secret_errors) {
  static const struct {
    const char *text;
    int code;
  } bad[] = {
      {"", MTC_ERR_SECRET_LENGTH},
      {"0123456789abcdef0123456789abcd", MTC_ERR_SECRET_LENGTH},       /* 15 bytes */
      {"dd" KEY_HEX "00", MTC_ERR_SECRET_LENGTH},                      /* dd + 17 */
      {"ab" KEY_HEX, MTC_ERR_SECRET_TAG},                              /* 17 bytes, tag ab */
      {"ef" KEY_HEX "6161", MTC_ERR_SECRET_TAG},                       /* gotd's ef: refused */
      {"ee" KEY_HEX, MTC_ERR_SECRET_DOMAIN_LENGTH},                    /* no domain */
      {"ee" KEY_HEX "2d612e636f6d", MTC_ERR_SECRET_DOMAIN},            /* "-a.com" */
      {"ee" KEY_HEX "612e2e636f6d", MTC_ERR_SECRET_DOMAIN},            /* "a..com" */
      {"ee" KEY_HEX "612e636f6d2e", MTC_ERR_SECRET_DOMAIN},            /* "a.com." */
      {"ee" KEY_HEX "615f622e636f6d", MTC_ERR_SECRET_DOMAIN},          /* "a_b.com" */
      {"ee" KEY_HEX "6120622e636f6d", MTC_ERR_SECRET_DOMAIN},          /* "a b.com" */
      {"ee" KEY_HEX "612d2e636f6d", MTC_ERR_SECRET_DOMAIN},            /* "a-.com" */
      {"ee" KEY_HEX "c3a92e636f6d", MTC_ERR_SECRET_DOMAIN},            /* UTF-8 "é.com" */
      {"0123456789abcdef0123456789abcde!", MTC_ERR_SECRET_ENCODING},   /* '!' */
      /* Not hex, but valid base64 of 24 bytes starting 0xd3 (like tdlib). */
      {"0123456789abcdef0123456789abcdeg", MTC_ERR_SECRET_TAG},
      {"3fvv+-/77/vv++/77/vv++8=", MTC_ERR_SECRET_ENCODING},           /* mixed alphabets */
      {"3fvv++/77/vv++/77/vv++9=", MTC_ERR_SECRET_ENCODING},           /* non-zero tail bits */
      {"ABEiM0RVZneImaq7zN3u/w=", MTC_ERR_SECRET_ENCODING},            /* padding breaks %4 */
      {"ABEiM0RVZneImaq7zN3u/===", MTC_ERR_SECRET_ENCODING},           /* three '=' */
      {"ABEiM0RV=neImaq7zN3u/w==", MTC_ERR_SECRET_ENCODING},           /* '=' inside */
      {"ABEiM0RVZneImaq7zN3u/wA", MTC_ERR_SECRET_TAG},                 /* 17 bytes, tag 00 */
      {" " KEY_HEX, MTC_ERR_SECRET_ENCODING},
      {"ABCDE", MTC_ERR_SECRET_ENCODING},                              /* 5 % 4 == 1 */
  };
  mtci_proxy_secret s;
  /* Unpadded standard base64 is fine. */
  CHECK_EQ_INT(secret("3fvv++/77/vv++/77/vv++8", &s), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_DD);
  CHECK_MEM(s.key, key_fbef, 16);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *msg = NULL;
    int rc = mtci_proxy_secret_parse(bad[i].text, strlen(bad[i].text), &s, &msg);
    if (rc != bad[i].code) fprintf(stderr, "  secret case %zu\n", i);
    CHECK_EQ_INT(rc, bad[i].code);
    CHECK(msg != NULL && msg[0] != '\0');
    static const uint8_t zero[sizeof s] = {0};
    CHECK(memcmp(&s, zero, sizeof s) == 0); /* zeroed on failure */
  }
}

TEST(secret_domain_lengths) {
  /* Binary form, domain of 1, 4, 182 and 183 bytes. */
  uint8_t b[1 + 16 + 200];
  b[0] = 0xee;
  memcpy(b + 1, key_0123, 16);
  memset(b + 17, 'a', sizeof b - 17);
  mtci_proxy_secret s;
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 18, &s, NULL), 0);
  CHECK(strcmp(s.domain, "a") == 0);
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 21, &s, NULL), 0);
  CHECK(strcmp(s.domain, "aaaa") == 0);
  /* 182 letters in one label is not a host name (labels <= 63). */
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 17 + 182, &s, NULL), MTC_ERR_SECRET_DOMAIN);
  for (size_t i = 17 + 60; i < sizeof b; i += 61) b[i] = '.';
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 17 + 182, &s, NULL), 0);
  CHECK_EQ_INT(s.domain_len, 182);
  CHECK_EQ_INT(s.domain[182], '\0');
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 17 + 183, &s, NULL), MTC_ERR_SECRET_DOMAIN_LENGTH);
  /* The same through hex text: 183-byte domain. */
  char hex[2 * sizeof b + 1];
  for (size_t i = 0; i < 17 + 183; i++) snprintf(hex + 2 * i, 3, "%02x", b[i]);
  CHECK_EQ_INT(secret(hex, &s), MTC_ERR_SECRET_DOMAIN_LENGTH);
  hex[2 * (17 + 182)] = '\0';
  CHECK_EQ_INT(secret(hex, &s), 0);
  /* Far too long text. */
  char big[1400];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  CHECK_EQ_INT(secret(big, &s), MTC_ERR_SECRET_LENGTH);
}

TEST(secret_binary) {
  uint8_t b[64];
  mtci_proxy_secret s;
  CHECK_EQ_INT(test_unhex(KEY_HEX, b, sizeof b), 16);
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 16, &s, NULL), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_SIMPLE);
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 15, NULL, NULL), MTC_ERR_SECRET_LENGTH);
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 0, NULL, NULL), MTC_ERR_SECRET_LENGTH);
  CHECK_EQ_INT(test_unhex("dd" KEY_HEX, b, sizeof b), 17);
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 17, NULL, NULL), 0);
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 18, NULL, NULL), MTC_ERR_SECRET_LENGTH);
  b[0] = 0x00;
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 17, NULL, NULL), MTC_ERR_SECRET_TAG);
  CHECK_EQ_INT(test_unhex(EE_HEX, b, sizeof b), 28);
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 28, &s, NULL), 0);
  CHECK_EQ_INT(s.kind, MTCI_SECRET_EE);
  CHECK_EQ_INT(mtci_proxy_secret_from_binary(b, 17, NULL, NULL), MTC_ERR_SECRET_DOMAIN_LENGTH);
  /* Round trip to binary. */
  uint8_t out[256];
  CHECK_EQ_INT(mtci_proxy_secret_to_binary(&s, out, sizeof out), 28);
  CHECK_MEM(out, b, 28);
  CHECK_EQ_INT(mtci_proxy_secret_to_binary(&s, out, 27), MTC_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ_INT(secret("dd" KEY_HEX, &s), 0);
  CHECK_EQ_INT(mtci_proxy_secret_to_binary(&s, out, sizeof out), 17);
  CHECK_EQ_INT(out[0], 0xdd);
  CHECK_MEM(out + 1, key_0123, 16);
  CHECK_EQ_INT(secret(KEY_HEX, &s), 0);
  CHECK_EQ_INT(mtci_proxy_secret_to_binary(&s, out, sizeof out), 16);
  CHECK_MEM(out, key_0123, 16);
  mtci_proxy_secret_free(&s);
  static const uint8_t zero[sizeof s] = {0};
  CHECK(memcmp(&s, zero, sizeof s) == 0);
  CHECK_EQ_INT(mtci_proxy_secret_to_binary(&s, out, sizeof out), MTC_ERR_INVALID_ARG);
}

/* ---- addresses ------------------------------------------------------------ */

TEST(ipv6_parser) {
  static const struct {
    const char *text, *hex;
  } good[] = {
      {"2001:db8::1", "20010db8000000000000000000000001"},
      {"::", "00000000000000000000000000000000"},
      {"::1", "00000000000000000000000000000001"},
      {"1::", "00010000000000000000000000000000"},
      {"fe80::1:2", "fe800000000000000000000000010002"},
      {"1:2:3:4:5:6:7:8", "00010002000300040005000600070008"},
      {"1:2:3:4:5:6:7::", "00010002000300040005000600070000"},
      {"::ffff:192.0.2.1", "00000000000000000000ffffc0000201"},
      {"2001:B28:F23D:F001::A", "20010b28f23df001000000000000000a"},
      {"1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304"},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    uint8_t got[16], want[16];
    CHECK_EQ_INT(test_unhex(good[i].hex, want, 16), 16);
    int rc = mtci_parse_ipv6(good[i].text, strlen(good[i].text), got);
    if (rc) fprintf(stderr, "  ipv6 good case %zu\n", i);
    CHECK_EQ_INT(rc, 0);
    CHECK_MEM(got, want, 16);
  }
  static const char *const bad[] = {
      "", ":", ":1", "1:", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "1:2:3:4:5:6:7::8",
      ":::", "g::1", "::1.2.3", "::1.2.3.256", "1:2:3:4:5:6:7:1.2.3.4", "::01.2.3.4",
      "fe80::1%eth0", "1:2:3:4:5:6:7", "::1:", "1.2.3.4::"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t got[16];
    int rc = mtci_parse_ipv6(bad[i], strlen(bad[i]), got);
    if (rc != -1) fprintf(stderr, "  ipv6 bad case %zu\n", i);
    CHECK_EQ_INT(rc, -1);
  }
  uint8_t v4[4];
  CHECK_EQ_INT(mtci_parse_ipv4("149.154.175.50", 14, v4), 0);
  CHECK_MEM(v4, "\x95\x9a\xaf\x32", 4);
  CHECK_EQ_INT(mtci_parse_ipv4("0.0.0.0", 7, v4), 0);
  CHECK_EQ_INT(mtci_parse_ipv4("255.255.255.255", 15, v4), 0);
  CHECK_MEM(v4, "\xff\xff\xff\xff", 4);
  CHECK_EQ_INT(mtci_parse_ipv4("1.2.3.4.", 8, v4), -1);
  CHECK_EQ_INT(mtci_parse_ipv4("1.2.3.1234", 10, v4), -1);
  CHECK_EQ_INT(mtci_parse_ipv4("1..2.3", 6, v4), -1);
}

/* ---- links: good ------------------------------------------------------------ */

TEST(link_mtproxy_forms) {
  mtci_proxy_link l;
  const char *msg = NULL;
  CHECK_EQ_INT(parse("tg://proxy?server=1.2.3.4&port=443&secret=" KEY_HEX, &l, &msg), 0);
  CHECK_EQ_INT(l.type, MTCI_PROXY_MTPROTO);
  CHECK_EQ_INT(l.family, MTCI_HOST_IPV4);
  CHECK(strcmp(l.host, "1.2.3.4") == 0);
  CHECK_MEM(l.addr, "\x01\x02\x03\x04", 4);
  CHECK_EQ_INT(l.port, 443);
  CHECK_EQ_INT(l.secret.kind, MTCI_SECRET_SIMPLE);
  CHECK_MEM(l.secret.key, key_0123, 16);

  CHECK_EQ_INT(parse("https://t.me/proxy?server=proxy.example.org&port=8443&secret=DD"
                     "0123456789ABCDEF0123456789ABCDEF",
                     &l, NULL),
               0);
  CHECK_EQ_INT(l.family, MTCI_HOST_NAME);
  CHECK(strcmp(l.host, "proxy.example.org") == 0);
  CHECK_EQ_INT(l.port, 8443);
  CHECK_EQ_INT(l.secret.kind, MTCI_SECRET_DD);
  CHECK_MEM(l.secret.key, key_0123, 16);

  /* Parameter order free, IPv6 without brackets, ee hex secret. */
  CHECK_EQ_INT(parse("tg://proxy?secret=" EE_HEX "&port=443&server=2001:db8::1", &l, NULL), 0);
  CHECK_EQ_INT(l.family, MTCI_HOST_IPV6);
  CHECK(strcmp(l.host, "2001:db8::1") == 0);
  CHECK_MEM(l.addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
  CHECK_EQ_INT(l.secret.kind, MTCI_SECRET_EE);
  CHECK(strcmp(l.secret.domain, "example.com") == 0);

  /* Percent-encoded bracketed IPv6, base64url secret. */
  CHECK_EQ_INT(parse("https://telegram.me/proxy?server=%5B2001%3Adb8%3A%3A1%5D&port=443"
                     "&secret=" EE_B64URL,
                     &l, NULL),
               0);
  CHECK_EQ_INT(l.family, MTCI_HOST_IPV6);
  CHECK(strcmp(l.host, "2001:db8::1") == 0);
  CHECK_EQ_INT(l.secret.kind, MTCI_SECRET_EE);
  CHECK_MEM(l.secret.key, key_0123, 16);
  CHECK(strcmp(l.secret.domain, "example.com") == 0);
  /* Literal brackets and encoded padding. */
  CHECK_EQ_INT(parse("tg://proxy?server=[::1]&port=1&secret=" EE_B64URL "%3D%3D", &l, NULL), 0);
  CHECK_MEM(l.addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
  CHECK_EQ_INT(l.port, 1);
  CHECK(strcmp(l.secret.domain, "example.com") == 0);

  /* Standard base64 with a literal '+' (kept as '+') and with %2B / %2F. */
  CHECK_EQ_INT(parse("tg://proxy?server=a.example&port=65535&secret=" DD_FB_B64, &l, NULL), 0);
  CHECK_EQ_INT(l.port, 65535);
  CHECK_EQ_INT(l.secret.kind, MTCI_SECRET_DD);
  CHECK_MEM(l.secret.key, key_fbef, 16);
  CHECK_EQ_INT(parse("tg://proxy?server=a.example&port=443&secret="
                     "3fvv%2B%2B%2F77%2Fvv%2B%2B%2F77%2Fvv%2B%2B8%3D",
                     &l, NULL),
               0);
  CHECK_MEM(l.secret.key, key_fbef, 16);
  CHECK_EQ_INT(parse("tg://proxy?server=a.example&port=443&secret=" EE_FB_B64, &l, NULL), 0);
  CHECK_EQ_INT(l.secret.kind, MTCI_SECRET_EE);
  CHECK(strcmp(l.secret.domain, "www.google.com") == 0);

  /* Other hosts and spellings of the same link. */
  static const char *const same[] = {
      "http://t.me/proxy?server=1.2.3.4&port=443&secret=" KEY_HEX,
      "https://telegram.dog/proxy?server=1.2.3.4&port=443&secret=" KEY_HEX,
      "https://www.t.me/proxy?server=1.2.3.4&port=443&secret=" KEY_HEX,
      "HTTPS://T.ME/PROXY?server=1.2.3.4&port=443&secret=" KEY_HEX,
      "t.me/proxy?server=1.2.3.4&port=443&secret=" KEY_HEX,
      "telegram.me/proxy/?server=1.2.3.4&port=443&secret=" KEY_HEX,
      "tg:proxy?server=1.2.3.4&port=443&secret=" KEY_HEX,
      "TG://proxy/?server=1.2.3.4&port=443&secret=" KEY_HEX,
      "tg://proxy?server=1.2.3.4&port=443&secret=" KEY_HEX "#fragment",
      "  tg://proxy?server=1.2.3.4&port=443&secret=" KEY_HEX "\r\n",
      "tg://proxy?&server=1.2.3.4&&port=0443&secret=" KEY_HEX "&",
      "tg://proxy?server=1.2.3.4&foo=bar&flag&port=443&user=x&secret=" KEY_HEX "&foo=baz",
      "tg://proxy?%73erver=1.2.3.4&port=%34%343&secret=" KEY_HEX,
  };
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    msg = NULL;
    int rc = parse(same[i], &l, &msg);
    if (rc) fprintf(stderr, "  same-link case %zu: %d %s\n", i, rc, msg ? msg : "");
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(l.type, MTCI_PROXY_MTPROTO);
    CHECK_EQ_INT(l.family, MTCI_HOST_IPV4);
    CHECK_MEM(l.addr, "\x01\x02\x03\x04", 4);
    CHECK_EQ_INT(l.port, 443);
    CHECK_MEM(l.secret.key, key_0123, 16);
  }
  /* Host names: single label, digits and hyphens, 63-char label, 253 total. */
  CHECK_EQ_INT(parse("tg://proxy?server=localhost&port=443&secret=" KEY_HEX, &l, NULL), 0);
  CHECK_EQ_INT(l.family, MTCI_HOST_NAME);
  CHECK_EQ_INT(parse("tg://proxy?server=xn--80ak6aa92e.com&port=443&secret=" KEY_HEX, &l, NULL), 0);
  CHECK(strcmp(l.host, "xn--80ak6aa92e.com") == 0);
  CHECK_EQ_INT(parse("tg://proxy?server=1.2.3.com&port=443&secret=" KEY_HEX, &l, NULL), 0);
  CHECK_EQ_INT(l.family, MTCI_HOST_NAME);
  char link[600];
  char host[260];
  /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
  memset(host, 'a', 253);
  host[63] = host[127] = host[191] = '.';
  host[253] = '\0';
  snprintf(link, sizeof link, "tg://proxy?server=%s&port=443&secret=%s", host, KEY_HEX);
  CHECK_EQ_INT(parse(link, &l, NULL), 0);
  CHECK_EQ_INT(strlen(l.host), 253);
  mtci_proxy_link_free(&l);
}

TEST(link_socks_forms) {
  mtci_proxy_link l;
  CHECK_EQ_INT(parse("tg://socks?server=10.0.0.1&port=1080", &l, NULL), 0);
  CHECK_EQ_INT(l.type, MTCI_PROXY_SOCKS5);
  CHECK_EQ_INT(l.family, MTCI_HOST_IPV4);
  CHECK_MEM(l.addr, "\x0a\x00\x00\x01", 4);
  CHECK_EQ_INT(l.port, 1080);
  CHECK_EQ_INT(l.has_auth, 0);
  CHECK_EQ_INT(l.user_len, 0);
  CHECK_EQ_INT(l.secret.kind, MTCI_SECRET_NONE);

  CHECK_EQ_INT(parse("https://t.me/socks?server=socks.example.net&port=1080&user=alice"
                     "&pass=p%40ss+word",
                     &l, NULL),
               0);
  CHECK_EQ_INT(l.type, MTCI_PROXY_SOCKS5);
  CHECK(strcmp(l.host, "socks.example.net") == 0);
  CHECK_EQ_INT(l.has_auth, 1);
  CHECK_EQ_INT(l.user_len, 5);
  CHECK(strcmp(l.user, "alice") == 0);
  CHECK_EQ_INT(l.pass_len, 9);
  CHECK(strcmp(l.pass, "p@ss word") == 0); /* '+' is a space in user/pass */

  CHECK_EQ_INT(parse("tg://socks?pass=%2B%26%3D&user=a%2Bb&port=1080&server=%5B::1%5D", &l, NULL),
               0);
  CHECK_EQ_INT(l.family, MTCI_HOST_IPV6);
  CHECK(strcmp(l.user, "a+b") == 0);
  CHECK(strcmp(l.pass, "+&=") == 0);
  /* User without pass; UTF-8 bytes in user; empty user and pass = no auth;
   * a secret parameter on a socks link is ignored. */
  CHECK_EQ_INT(parse("tg://socks?server=h&port=1&user=%D0%B8", &l, NULL), 0);
  CHECK_EQ_INT(l.has_auth, 1);
  CHECK_EQ_INT(l.user_len, 2);
  CHECK_MEM(l.user, "\xd0\xb8", 2);
  CHECK_EQ_INT(l.pass_len, 0);
  CHECK_EQ_INT(parse("tg://socks?server=h&port=1&user=&pass=&secret=zz", &l, NULL), 0);
  CHECK_EQ_INT(l.has_auth, 0);
  /* 255-byte user and pass are the RFC 1929 maximum. */
  char link[1300], u[256];
  memset(u, 'u', 255);
  u[255] = '\0';
  snprintf(link, sizeof link, "tg://socks?server=h&port=1&user=%s&pass=%s", u, u);
  CHECK_EQ_INT(parse(link, &l, NULL), 0);
  CHECK_EQ_INT(l.user_len, 255);
  CHECK_EQ_INT(l.pass_len, 255);
  mtci_proxy_link_free(&l);
  static const uint8_t zero[sizeof l] = {0};
  CHECK(memcmp(&l, zero, sizeof l) == 0);
}

/* ---- links: bad --------------------------------------------------------------- */

#define S "&secret=" KEY_HEX
static const struct {
  const char *link;
  int code;
} bad_links[] = {
    {"", MTC_ERR_LINK_SYNTAX},
    {"   ", MTC_ERR_LINK_SYNTAX},
    {"tg://proxy?=1&server=1.2.3.4&port=443" S, MTC_ERR_LINK_SYNTAX},
    {"tg://proxy?server=1.2.3.4&port=443 " S, MTC_ERR_LINK_CHAR},
    {"tg://proxy?server=1.2.3.4&port=443\t" S, MTC_ERR_LINK_CHAR},
    {"tg://proxy?server=\xc3\xa9.com&port=443" S, MTC_ERR_LINK_CHAR},
    {"ftp://t.me/proxy?server=1.2.3.4&port=443" S, MTC_ERR_LINK_SCHEME},
    {"https://example.com/proxy?server=1.2.3.4&port=443" S, MTC_ERR_LINK_SCHEME},
    {"https://t.me:443/proxy?server=1.2.3.4&port=443" S, MTC_ERR_LINK_SCHEME},
    {"https://user@t.me/proxy?server=1.2.3.4&port=443" S, MTC_ERR_LINK_SCHEME},
    {"https://t.me.evil.com/proxy?server=1.2.3.4&port=443" S, MTC_ERR_LINK_SCHEME},
    {"proxy?server=1.2.3.4&port=443" S, MTC_ERR_LINK_SCHEME},
    {"tg://resolve?domain=durov", MTC_ERR_LINK_KIND},
    {"https://t.me/durov", MTC_ERR_LINK_KIND},
    {"https://t.me/proxy/extra?server=1.2.3.4&port=443" S, MTC_ERR_LINK_KIND},
    {"https://t.me?server=1.2.3.4&port=443" S, MTC_ERR_LINK_KIND},
    {"tg://proxies?server=1.2.3.4&port=443" S, MTC_ERR_LINK_KIND},
    {"tg://proxy?server=1.2.3.4&port=443&secret=%zz", MTC_ERR_LINK_PERCENT},
    {"tg://proxy?server=1.2.3.4&port=443" S "%4", MTC_ERR_LINK_PERCENT},
    {"tg://proxy?server=1.2.3.4%00&port=443" S, MTC_ERR_LINK_PERCENT},
    {"tg://proxy?server=1.2.3.4&port=443&x=%G1" S, MTC_ERR_LINK_PERCENT},
    {"tg://proxy?server=1.2.3.4&server=5.6.7.8&port=443" S, MTC_ERR_LINK_DUPLICATE},
    {"tg://proxy?server=1.2.3.4&port=443" S "&secret=" KEY_HEX, MTC_ERR_LINK_DUPLICATE},
    {"tg://socks?server=1.2.3.4&port=1080&port=1081", MTC_ERR_LINK_DUPLICATE},
    {"tg://proxy?server=1.2.3.4&port=443&%70ort=443" S, MTC_ERR_LINK_DUPLICATE},
    {"tg://proxy", MTC_ERR_LINK_MISSING},
    {"tg://proxy?port=443" S, MTC_ERR_LINK_MISSING},
    {"tg://proxy?server=&port=443" S, MTC_ERR_LINK_MISSING},
    {"tg://proxy?server=1.2.3.4" S, MTC_ERR_LINK_MISSING},
    {"tg://proxy?server=1.2.3.4&port=443", MTC_ERR_LINK_MISSING},
    {"tg://proxy?server=1.2.3.4&port=443&secret", MTC_ERR_LINK_MISSING},
    {"tg://socks?server=1.2.3.4", MTC_ERR_LINK_MISSING},
    {"tg://proxy?server=bad_host&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=-a.com&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=a-.com&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=a..com&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=example.com.&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=256.1.1.1&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=1.2.3&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=1.2.3.04&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=2001:db8::1::2&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=[2001:db8::1&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=[1.2.3.4]&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=fe80::1%25eth0&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=a%20b&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=1.2.3.4:443&port=443" S, MTC_ERR_LINK_SERVER},
    {"tg://proxy?server=1.2.3.4&port=0" S, MTC_ERR_LINK_PORT},
    {"tg://proxy?server=1.2.3.4&port=65536" S, MTC_ERR_LINK_PORT},
    {"tg://proxy?server=1.2.3.4&port=44a" S, MTC_ERR_LINK_PORT},
    {"tg://proxy?server=1.2.3.4&port=-1" S, MTC_ERR_LINK_PORT},
    {"tg://proxy?server=1.2.3.4&port=+443" S, MTC_ERR_LINK_PORT},
    {"tg://proxy?server=1.2.3.4&port=0x1bb" S, MTC_ERR_LINK_PORT},
    {"tg://proxy?server=1.2.3.4&port=000443" S, MTC_ERR_LINK_PORT},
    {"tg://proxy?server=1.2.3.4&port=443&secret=zz", MTC_ERR_SECRET_ENCODING},
    {"tg://proxy?server=1.2.3.4&port=443&secret=0123456789abcdef", MTC_ERR_SECRET_LENGTH},
    {"tg://proxy?server=1.2.3.4&port=443&secret=dd" KEY_HEX "00", MTC_ERR_SECRET_LENGTH},
    {"tg://proxy?server=1.2.3.4&port=443&secret=ab" KEY_HEX, MTC_ERR_SECRET_TAG},
    {"tg://proxy?server=1.2.3.4&port=443&secret=ee" KEY_HEX, MTC_ERR_SECRET_DOMAIN_LENGTH},
    {"tg://proxy?server=1.2.3.4&port=443&secret=ee" KEY_HEX "2e636f6d", MTC_ERR_SECRET_DOMAIN},
    {"tg://proxy?server=1.2.3.4&port=443&secret=3fvv%20%20/77/vv++/77/vv++8=",
     MTC_ERR_SECRET_ENCODING},
    {"tg://socks?server=1.2.3.4&port=1080&pass=secret", MTC_ERR_LINK_CREDENTIALS},
};
#undef S

TEST(link_errors) {
  for (size_t i = 0; i < sizeof bad_links / sizeof bad_links[0]; i++) {
    mtci_proxy_link l;
    const char *msg = NULL;
    int rc = parse(bad_links[i].link, &l, &msg);
    if (rc != bad_links[i].code) fprintf(stderr, "  bad link %zu: %s\n", i, bad_links[i].link);
    CHECK_EQ_INT(rc, bad_links[i].code);
    CHECK(msg != NULL && strlen(msg) > 5);
    /* The message never quotes the secret. */
    CHECK(strstr(msg, KEY_HEX) == NULL && strstr(msg, "0123") == NULL);
    static const uint8_t zero[sizeof l] = {0};
    CHECK(memcmp(&l, zero, sizeof l) == 0);
  }
  fprintf(stderr, "  %zu bad links\n", sizeof bad_links / sizeof bad_links[0]);
}

TEST(link_errors_long) {
  mtci_proxy_link l;
  static char link[5000];
  /* Host of 254 characters; a 64-character label. */
  char host[300];
  memset(host, 'a', 254);
  host[63] = host[127] = host[191] = '.';
  host[254] = '\0';
  snprintf(link, sizeof link, "tg://proxy?server=%s&port=443&secret=%s", host, KEY_HEX);
  CHECK_EQ_INT(parse(link, &l, NULL), MTC_ERR_LINK_SERVER);
  memset(host, 'b', 64);
  strcpy(host + 64, ".com");
  snprintf(link, sizeof link, "tg://proxy?server=%s&port=443&secret=%s", host, KEY_HEX);
  CHECK_EQ_INT(parse(link, &l, NULL), MTC_ERR_LINK_SERVER);
  host[63] = '\0';
  snprintf(link, sizeof link, "tg://proxy?server=%s.com&port=443&secret=%s", host, KEY_HEX);
  CHECK_EQ_INT(parse(link, &l, NULL), 0);
  /* User or pass of 256 bytes. */
  char u[300];
  memset(u, 'u', 256);
  u[256] = '\0';
  snprintf(link, sizeof link, "tg://socks?server=h&port=1&user=%s", u);
  CHECK_EQ_INT(parse(link, &l, NULL), MTC_ERR_LINK_CREDENTIALS);
  snprintf(link, sizeof link, "tg://socks?server=h&port=1&user=a&pass=%s", u);
  CHECK_EQ_INT(parse(link, &l, NULL), MTC_ERR_LINK_CREDENTIALS);
  /* Over the length cap. */
  memset(link, 'a', 4200);
  memcpy(link, "tg://proxy?x=", 13);
  link[4200] = '\0';
  CHECK_EQ_INT(parse(link, &l, NULL), MTC_ERR_LINK_SYNTAX);
  /* A NUL byte inside the given length. */
  static const char nul[] = "tg://proxy?server=1.2.3.4\0&port=443&secret=" KEY_HEX;
  CHECK_EQ_INT(mtci_proxy_link_parse(nul, sizeof nul - 1, &l, NULL), MTC_ERR_LINK_CHAR);
  /* Bad secret text longer than the scratch buffer. */
  memset(link, 'a', 1500);
  memcpy(link, "tg://proxy?server=h&port=1&secret=", 34);
  link[1500] = '\0';
  CHECK_EQ_INT(parse(link, &l, NULL), MTC_ERR_SECRET_LENGTH);
}

TEST(error_texts) {
  /* Every code of this module has its own text. */
  for (int c = -340; c >= -354; c--) {
    const char *t = mtc_strerror(c);
    CHECK(t && strcmp(t, "unknown error") != 0);
    for (int d = c + 1; d <= -340; d++) CHECK(strcmp(t, mtc_strerror(d)) != 0);
  }
}

TEST_MAIN("proxy_link", CASE(secret_encodings), CASE(secret_errors), CASE(secret_domain_lengths),
          CASE(secret_binary), CASE(ipv6_parser), CASE(link_mtproxy_forms), CASE(link_socks_forms),
          CASE(link_errors), CASE(link_errors_long), CASE(error_texts))
