/*
 * JSON DoH answers (src/discovery/doh_json.*): Google and Cloudflare
 * shaped samples (the TXT strings of KAT-DNS-1, PROTOCOL.md §7.1) through
 * to the decoded simple config, type filtering, quoting, and each rejection
 * with its exact code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/rsa_keys.h"
#include "discovery/doh_json.h"
#include "test.h"

static const char k_a[] =
    "oiVvQMgmCSOQvenEo/Ug1a+IzF4Q/13++Cq2zwvy0z75GVRblmruH6SBuEaPsfEz"
    "pAdJw/1QoMphLuQx9bzCU2LgCMLNZ+4awO+Is8p4k0r4FgerDwWBFabdMBUl2sZM"
    "OKI4c4soNa6LXal7q7kuVTZjFNSC6p9dcYTYtG1GnQPf5W7kD6hPZDr1PF5+Wga3"
    "yp6hErN0iff2BMxmmmxAAbWOQ2TbaDlY36ViLkf9RUXcxAABU4Vg9d9mW0";
static const char k_b[] =
    "35arl4mB8+LFXX7F4rGWpyGpsclPI6jq4L7OvFpmAAJtUp7pD8BSBtCJa7rgojCj"
    "kjnYxGPQA/3MHeBCrT22Y5V+Y0KA==";

static int parse(const char *json, mtci_doh_txt *t) {
  return mtci_doh_json_parse(json, strlen(json), t);
}

static int decode_kat1(const mtci_doh_txt *t, mtci_simple_config *c) {
  mtci_rsa_key key;
  const char *pem = mtci_rsa_builtin_pem(MTCI_RSA_BUILTIN_SIMPLE_CONFIG);
  if (mtci_rsa_key_from_pem(&key, pem, strlen(pem)) != 0) return -9999;
  mtci_sconf_part parts[MTCI_DOH_MAX_PARTS];
  size_t n = mtci_doh_txt_parts(t, parts);
  return mtci_simple_config_decode(&key, parts, n, 1780000000, NULL, 0, c);
}

TEST(google_sample) {
  /* Google's shape: bare data, short part first (as captured). */
  char json[2048];
  snprintf(json, sizeof json,
           "{\"Status\":0,\"TC\":false,\"RD\":true,\"RA\":true,\"AD\":false,\"CD\":false,"
           "\"Question\":[{\"name\":\"apv3.stel.com.\",\"type\":16}],"
           "\"Answer\":[{\"name\":\"apv3.stel.com.\",\"type\":16,\"TTL\":1799,\"data\":\"%s\"},"
           "{\"name\":\"apv3.stel.com.\",\"type\":16,\"TTL\":1799,\"data\":\"%s\"}],"
           "\"Comment\":\"Response from 2001:db8::1.\"}",
           k_b, k_a);
  mtci_doh_txt t;
  CHECK_EQ_INT(parse(json, &t), 0);
  CHECK_EQ_INT(t.status, 0);
  CHECK_EQ_INT(t.count, 2);
  CHECK_EQ_INT(t.len[0], 94);
  CHECK(strcmp(t.text[0], k_b) == 0);
  CHECK_EQ_INT(t.len[1], 250);
  CHECK(strcmp(t.text[1], k_a) == 0);
  mtci_simple_config c;
  CHECK_EQ_INT(decode_kat1(&t, &c), 0);
  CHECK_EQ_INT(c.count, 1);
  CHECK(strcmp(c.ep[0].ipv4, "194.221.250.50") == 0);
  CHECK_EQ_INT(c.ep[0].port, 443);
  CHECK_EQ_INT(c.ep[0].dc_id, 4);
}

TEST(cloudflare_sample) {
  /* Cloudflare's shape: data in literal double quotes, no trailing dot. */
  char json[2048];
  snprintf(json, sizeof json,
           "{\"Status\":0,\"TC\":false,\"RD\":true,\"RA\":true,\"AD\":false,\"CD\":false,"
           "\"Question\":[{\"name\":\"apv3.stel.com\",\"type\":16}],"
           "\"Answer\":[{\"name\":\"apv3.stel.com\",\"type\":16,\"TTL\":300,"
           "\"data\":\"\\\"%s\\\"\"},"
           "{\"name\":\"apv3.stel.com\",\"type\":16,\"TTL\":300,\"data\":\"\\\"%s\\\"\"}]}",
           k_a, k_b);
  mtci_doh_txt t;
  CHECK_EQ_INT(parse(json, &t), 0);
  CHECK_EQ_INT(t.count, 2);
  CHECK(strcmp(t.text[0], k_a) == 0); /* quotes removed */
  CHECK(strcmp(t.text[1], k_b) == 0);
  mtci_simple_config c;
  CHECK_EQ_INT(decode_kat1(&t, &c), 0);
  CHECK_EQ_INT(c.ep[0].port, 443);
  /* One record holding both strings: "A" "B". */
  snprintf(json, sizeof json,
           "{\"Status\":0,\"Answer\":[{\"name\":\"apv3.stel.com\",\"type\":16,\"TTL\":300,"
           "\"data\":\"\\\"%s\\\" \\\"%s\\\"\"}]}",
           k_a, k_b);
  CHECK_EQ_INT(parse(json, &t), 0);
  CHECK_EQ_INT(t.count, 1);
  CHECK_EQ_INT(t.len[0], 344);
  CHECK(memcmp(t.text[0], k_a, 250) == 0 && strcmp(t.text[0] + 250, k_b) == 0);
  CHECK_EQ_INT(decode_kat1(&t, &c), 0);
}

TEST(quoting) {
  mtci_doh_txt t;
  /* Escapes of the DNS presentation form: \" \\ \DDD. JSON-escaped here. */
  CHECK_EQ_INT(parse("{\"Status\":0,\"Answer\":[{\"type\":16,\"data\":"
                     "\"\\\"a\\\\\\\"b\\\\\\\\c\\\\065\\\" \\\"d\\\"\"}]}",
                     &t),
               0);
  CHECK_EQ_INT(t.len[0], 7);
  CHECK(strcmp(t.text[0], "a\"b\\cAd") == 0);
  /* Bare data is verbatim, quotes inside included. */
  CHECK_EQ_INT(parse("{\"Status\":0,\"Answer\":[{\"type\":16,\"data\":\"ab\\\"c\"}]}", &t), 0);
  CHECK(strcmp(t.text[0], "ab\"c") == 0);
  CHECK_EQ_INT(parse("{\"Status\":0,\"Answer\":[{\"type\":16,\"data\":\"\"}]}", &t), 0);
  CHECK_EQ_INT(t.len[0], 0);
  CHECK_EQ_INT(parse("{\"Status\":0,\"Answer\":[{\"type\":16,\"data\":\"\\\"\\\"\"}]}", &t), 0);
  CHECK_EQ_INT(t.len[0], 0);
  static const char *const bad[] = {
      "\\\"abc",               /* unterminated */
      "\\\"a\\\"\\\"b\\\"",    /* "a""b": no space between strings */
      "\\\"a\\\" x",           /* junk after a string */
      "\\\"a\\\\12\\\"",       /* \12 + quote: not three digits */
      "\\\"\\\\256\\\"",       /* \256 > 255 */
      "\\\"a\\\\",             /* escape at the end */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char json[256];
    snprintf(json, sizeof json, "{\"Status\":0,\"Answer\":[{\"type\":16,\"data\":\"%s\"}]}",
             bad[i]);
    int rc = parse(json, &t);
    if (rc != MTC_ERR_DOH_FORMAT) fprintf(stderr, "  case %zu: %s\n", i, json);
    CHECK_EQ_INT(rc, MTC_ERR_DOH_FORMAT);
  }
}

TEST(type_filtering) {
  mtci_doh_txt t;
  CHECK_EQ_INT(parse("{\"Status\":0,\"Answer\":["
                     "{\"name\":\"apv3.stel.com.\",\"type\":5,\"TTL\":60,\"data\":\"x.example.\"},"
                     "{\"name\":\"x.example.\",\"type\":16,\"TTL\":60,\"data\":\"one\"},"
                     "{\"name\":\"x.example.\",\"type\":46,\"TTL\":60,\"data\":\"16 8 2 ...\"},"
                     "{\"name\":\"x.example.\",\"type\":1,\"TTL\":60},"
                     "{\"name\":\"x.example.\",\"type\":16,\"TTL\":60,\"data\":\"two\"}]}",
                     &t),
               0);
  CHECK_EQ_INT(t.count, 2);
  CHECK(strcmp(t.text[0], "one") == 0);
  CHECK(strcmp(t.text[1], "two") == 0);
  /* Only a CNAME: no TXT. No Answer at all: no TXT. */
  CHECK_EQ_INT(parse("{\"Status\":0,\"Answer\":[{\"type\":5,\"data\":\"x.\"}]}", &t),
               MTC_ERR_DOH_NO_TXT);
  CHECK_EQ_INT(parse("{\"Status\":0,\"Question\":[{\"name\":\"a.\",\"type\":16}]}", &t),
               MTC_ERR_DOH_NO_TXT);
  CHECK_EQ_INT(parse("{\"Status\":0,\"Answer\":[]}", &t), MTC_ERR_DOH_NO_TXT);
}

TEST(status) {
  mtci_doh_txt t;
  CHECK_EQ_INT(parse("{\"Status\":3,\"TC\":false,\"RD\":true,\"RA\":true,\"AD\":false,\"CD\":false,"
                     "\"Question\":[{\"name\":\"nope.stel.com.\",\"type\":16}],"
                     "\"Authority\":[{\"name\":\"stel.com.\",\"type\":6,\"TTL\":1800,"
                     "\"data\":\"ns1.example. h.example. 1 7200 1800 1209600 1800\"}]}",
                     &t),
               MTC_ERR_DOH_STATUS);
  CHECK_EQ_INT(t.status, 3);
  CHECK_EQ_INT(t.count, 0);
  CHECK_EQ_INT(parse("{\"Status\":2,\"Answer\":[{\"type\":16,\"data\":\"x\"}]}", &t),
               MTC_ERR_DOH_STATUS);
  CHECK_EQ_INT(t.status, 2);
  CHECK_EQ_INT(t.count, 0);
}

TEST(malformed) {
  mtci_doh_txt t;
  static const struct {
    const char *json;
    int want;
  } cases[] = {
      {"", MTC_ERR_DOH_JSON},
      {"{", MTC_ERR_DOH_JSON},
      {"{\"Status\":0} x", MTC_ERR_DOH_JSON},                       /* trailing bytes */
      {"{\"Status\":0,\"Status\":0}", MTC_ERR_DOH_JSON},            /* duplicate key */
      {"{\"Status\":0,\"Answer\":[{\"type\":16,\"data\":\"a\\u0000b\"}]}", MTC_ERR_DOH_JSON},
      {"<html>404</html>", MTC_ERR_DOH_JSON},
      {"[]", MTC_ERR_DOH_FORMAT},
      {"{}", MTC_ERR_DOH_FORMAT},                                  /* no Status */
      {"{\"Status\":\"0\"}", MTC_ERR_DOH_FORMAT},
      {"{\"Status\":0.0}", MTC_ERR_DOH_FORMAT},
      {"{\"Status\":0,\"Answer\":{}}", MTC_ERR_DOH_FORMAT},
      {"{\"Status\":0,\"Answer\":[16]}", MTC_ERR_DOH_FORMAT},
      {"{\"Status\":0,\"Answer\":[{\"data\":\"x\"}]}", MTC_ERR_DOH_FORMAT},  /* no type */
      {"{\"Status\":0,\"Answer\":[{\"type\":\"16\",\"data\":\"x\"}]}", MTC_ERR_DOH_FORMAT},
      {"{\"Status\":0,\"Answer\":[{\"type\":16}]}", MTC_ERR_DOH_FORMAT},     /* no data */
      {"{\"Status\":0,\"Answer\":[{\"type\":16,\"data\":7}]}", MTC_ERR_DOH_FORMAT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = parse(cases[i].json, &t);
    if (rc != cases[i].want) fprintf(stderr, "  case %zu: %s\n", i, cases[i].json);
    CHECK_EQ_INT(rc, cases[i].want);
    CHECK_EQ_INT(t.count, 0);
  }
  CHECK_EQ_INT(mtci_doh_json_parse(NULL, 0, &t), MTC_ERR_DOH_JSON);
  CHECK_EQ_INT(mtci_doh_json_parse(NULL, 5, &t), MTC_ERR_INVALID_ARG);
  CHECK_EQ_INT(mtci_doh_json_parse("{}", 2, NULL), MTC_ERR_INVALID_ARG);
}

/* A body with n answers of type `type`, each data = `data`. */
static char *answers(int n, int type, const char *data) {
  size_t cap = 128 + (size_t)n * (64 + strlen(data));
  char *s = malloc(cap);
  if (!s) return NULL;
  size_t o = (size_t)snprintf(s, cap, "{\"Status\":0,\"Answer\":[");
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(s + o, cap - o, "%s{\"type\":%d,\"data\":\"%s\"}", i ? "," : "", type,
                          data);
  snprintf(s + o, cap - o, "]}");
  return s;
}

TEST(limits) {
  mtci_doh_txt t;
  char *j = answers(8, 16, "x");
  CHECK(j);
  CHECK_EQ_INT(parse(j, &t), 0);
  CHECK_EQ_INT(t.count, 8);
  free(j);
  j = answers(9, 16, "x");
  CHECK_EQ_INT(parse(j, &t), MTC_ERR_DOH_TOO_MANY);
  free(j);
  j = answers(64, 5, "x.");
  CHECK_EQ_INT(parse(j, &t), MTC_ERR_DOH_NO_TXT);
  free(j);
  j = answers(65, 5, "x.");
  CHECK_EQ_INT(parse(j, &t), MTC_ERR_DOH_TOO_MANY);
  free(j);
  /* TXT strings: 1024 bytes fit, 1025 do not (bare or quoted). */
  char big[1100];
  memset(big, 'A', 1025);
  big[1024] = 0;
  j = answers(1, 16, big);
  CHECK_EQ_INT(parse(j, &t), 0);
  CHECK_EQ_INT(t.len[0], 1024);
  free(j);
  big[1024] = 'A';
  big[1025] = 0;
  j = answers(1, 16, big);
  CHECK_EQ_INT(parse(j, &t), MTC_ERR_DOH_TOO_LARGE);
  free(j);
  char q[1100];
  snprintf(q, sizeof q, "\\\"%.1025s\\\"", big);
  j = answers(1, 16, q);
  CHECK_EQ_INT(parse(j, &t), MTC_ERR_DOH_TOO_LARGE);
  free(j);
  memcpy(q + 2 + 1024, "\\\"", 3); /* \" + 1024 chars + \" */
  j = answers(1, 16, q);
  CHECK_EQ_INT(parse(j, &t), 0);
  CHECK_EQ_INT(t.len[0], 1024);
  free(j);
  /* A huge body is refused before parsing, even if valid JSON. */
  size_t hn = MTCI_DOH_MAX_BODY + 1;
  char *huge = malloc(hn + 1);
  CHECK(huge);
  memset(huge, ' ', hn);
  memcpy(huge, "{\"Status\":0}", 12);
  huge[hn] = 0;
  CHECK_EQ_INT(mtci_doh_json_parse(huge, hn, &t), MTC_ERR_DOH_TOO_LARGE);
  CHECK_EQ_INT(mtci_doh_json_parse(huge, hn - 1, &t), MTC_ERR_DOH_NO_TXT);
  free(huge);
}

TEST_MAIN("doh_json", CASE(google_sample), CASE(cloudflare_sample), CASE(quoting),
          CASE(type_filtering), CASE(status), CASE(malformed), CASE(limits))
