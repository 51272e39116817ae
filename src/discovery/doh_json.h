/*
 * JSON DNS-over-HTTPS answers (PROTOCOL.md §1.3, §1.4): the body of a
 * Google "/resolve" or Cloudflare/Mozilla "/dns-query" (application/dns-json)
 * reply in, the TXT strings out. Pure (jansson only).
 *
 *   {"Status":0, "TC":false, ...,
 *    "Question":[{"name":"apv3.stel.com.","type":16}],
 *    "Answer":[{"name":"apv3.stel.com.","type":16,"TTL":300,"data":"..."}, ...]}
 *
 * Rules:
 *   - body over MTCI_DOH_MAX_BODY bytes                       MTC_ERR_DOH_TOO_LARGE
 *   - not JSON (trailing bytes, NUL in a string, duplicate keys included)
 *                                                             MTC_ERR_DOH_JSON
 *   - root not an object, "Status" missing or not an integer  MTC_ERR_DOH_FORMAT
 *   - Status != 0 (2 SERVFAIL, 3 NXDOMAIN, ...)               MTC_ERR_DOH_STATUS
 *     (the value is still reported in out->status)
 *   - "Answer" absent: no records; present but not an array, an entry not an
 *     object or its "type" not an integer                     MTC_ERR_DOH_FORMAT
 *   - more than MTCI_DOH_MAX_ANSWERS entries                   MTC_ERR_DOH_TOO_MANY
 *   - entries whose type is not 16 (CNAME 5, ...) are skipped; a type-16
 *     entry without a string "data"                           MTC_ERR_DOH_FORMAT
 *   - more than MTCI_DOH_MAX_PARTS TXT entries                 MTC_ERR_DOH_TOO_MANY
 *   - a TXT string over MTCI_DOH_MAX_TXT bytes after unquoting MTC_ERR_DOH_TOO_LARGE
 *   - no TXT entry at all                                      MTC_ERR_DOH_NO_TXT
 *
 * Quoting: Cloudflare gives TXT data in DNS presentation form, each
 * character-string in double quotes ("\"abc\"", or "\"abc\" \"def\"" when
 * one record holds several strings). Google gives the bare text. A data
 * string that starts with '"' is read as one or more quoted strings
 * separated by spaces, with \" \\ and \DDD (decimal byte) escapes, and the
 * strings are concatenated; an unterminated quote, a bad escape or other
 * text between the strings is MTC_ERR_DOH_FORMAT. Anything else is taken
 * verbatim. (The simple-config decoder drops non-base64 characters anyway.)
 */
#ifndef MTCI_DISCOVERY_DOH_JSON_H
#define MTCI_DISCOVERY_DOH_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "discovery/simple_config.h"
#include "mtconn/mtconn.h"

#define MTCI_DOH_MAX_BODY (64u * 1024u)
#define MTCI_DOH_MAX_ANSWERS 64
#define MTCI_DOH_MAX_PARTS MTCI_SCONF_MAX_PARTS  /* 8 */
#define MTCI_DOH_MAX_TXT MTCI_SCONF_MAX_PART_LEN /* 1024 */
#define MTCI_DOH_TYPE_TXT 16

typedef struct mtci_doh_txt {
  int status;   /* DNS RCODE from "Status" (0 when it parsed as NOERROR) */
  size_t count; /* TXT strings, in answer order */
  size_t len[MTCI_DOH_MAX_PARTS];
  char text[MTCI_DOH_MAX_PARTS][MTCI_DOH_MAX_TXT + 1]; /* NUL-terminated (may hold NULs via \000) */
} mtci_doh_txt;

/* Parse body[0..len). Returns 0 with out->count >= 1, or a code above
 * (out is zeroed except status). */
int mtci_doh_json_parse(const char *body, size_t len, mtci_doh_txt *out);

/* Point parts[0..count) at the strings of t (borrowed); returns count. */
size_t mtci_doh_txt_parts(const mtci_doh_txt *t, mtci_sconf_part parts[MTCI_DOH_MAX_PARTS]);

#endif /* MTCI_DISCOVERY_DOH_JSON_H */
