/*
 * The request side of JSON DNS-over-HTTPS (PROTOCOL.md §1.3-§1.5, §1.13),
 * pure: building the query URL with its random padding, and reading the
 * HTTP Date header of the answer. The HTTP transfer itself is in
 * doh_fetch_os.c.
 *
 *   Google      <endpoint>/resolve?name=<name>&type=16&random_padding=<pad>
 *   Cloudflare  <endpoint>/dns-query?name=<name>&type=16&random_padding=<pad>
 *               (sent with "accept: application/dns-json")
 *
 * <endpoint> is a base URL, "https://dns.google" or "http://127.0.0.1:8053"
 * (a trailing '/' is dropped). The padding is also sent to Cloudflare, as
 * tdesktop does (§1.4); both servers ignore it. It only makes the URL
 * length vary, so that the request size does not give the name away.
 */
#ifndef MTCI_DISCOVERY_DOH_REQUEST_H
#define MTCI_DISCOVERY_DOH_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

typedef enum mtci_doh_api {
  MTCI_DOH_API_GOOGLE = 0,    /* GET /resolve (Google JSON API) */
  MTCI_DOH_API_CLOUDFLARE = 1 /* GET /dns-query + accept: application/dns-json */
} mtci_doh_api;

#define MTCI_DOH_PADDING_MIN 13
#define MTCI_DOH_PADDING_MAX 128
#define MTCI_DOH_MAX_NAME 253     /* DNS name, without a trailing dot */
#define MTCI_DOH_MAX_ENDPOINT 512 /* base URL */
#define MTCI_DOH_MAX_URL (MTCI_DOH_MAX_ENDPOINT + MTCI_DOH_MAX_NAME + MTCI_DOH_PADDING_MAX + 64)

/*
 * Random padding (§1.5): length 13 + (r * 116) / 256 for one random byte r
 * (13..128), then each character alphabet[b % 62] of one more random byte,
 * alphabet "a-zA-Z0-9". out gets the characters and a NUL; *len (may be
 * NULL) the length. Returns 0 or the random source's error.
 */
int mtci_doh_random_padding(mtc_random_fn rnd, void *rnd_ud, char out[MTCI_DOH_PADDING_MAX + 1],
                            size_t *len);

/*
 * 1 if name is a host name this module sends unescaped: 1..253 bytes of
 * [A-Za-z0-9-_.], no empty label (a single trailing dot is allowed), labels
 * of at most 63 bytes.
 */
int mtci_doh_name_ok(const char *name);

/*
 * The URL for api at endpoint (see the top). padding may be NULL or "" (no
 * random_padding parameter); it must be [A-Za-z0-9] only. Returns the
 * length written to out (NUL-terminated), MTC_ERR_INVALID_ARG (endpoint not
 * http(s)://, empty, over MTCI_DOH_MAX_ENDPOINT bytes or with a '?', '#',
 * space or control byte; bad name or padding), MTC_ERR_BUFFER_TOO_SMALL.
 */
int mtci_doh_build_url(mtci_doh_api api, const char *endpoint, const char *name,
                       const char *padding, char *out, size_t cap);

/*
 * An HTTP Date value in the IMF-fixdate form of RFC 7231 §7.1.1.1 (the form
 * of RFC 1123): "Sun, 06 Nov 1994 08:49:37 GMT". Leading and trailing
 * spaces/tabs and a trailing CR LF are ignored; the weekday name must be a
 * real one but is not checked against the date. Obsolete forms (RFC 850,
 * asctime) are not accepted: every current server sends IMF-fixdate.
 * Returns 1 and *unix_s (seconds since 1970, UTC; years 1970..9999), or 0.
 */
int mtci_http_date_parse(const char *s, size_t len, int64_t *unix_s);

#endif /* MTCI_DISCOVERY_DOH_REQUEST_H */
