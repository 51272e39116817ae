/*
 * DoH request URLs, random padding and the HTTP Date header (see
 * doh_request.h). Pure.
 */
#include "discovery/doh_request.h"

#include <string.h>

static const char k_alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

int mtci_doh_random_padding(mtc_random_fn rnd, void *rnd_ud, char out[MTCI_DOH_PADDING_MAX + 1],
                            size_t *len) {
  if (!rnd || !out) return MTC_ERR_INVALID_ARG;
  out[0] = '\0';
  uint8_t b[1 + MTCI_DOH_PADDING_MAX];
  int rc = rnd(rnd_ud, b, 1);
  if (rc) return rc < 0 ? rc : MTC_ERR_RANDOM;
  /* 13 + (0..255 * 116) / 256 = 13..128 */
  size_t n = MTCI_DOH_PADDING_MIN + ((size_t)b[0] * 116u) / 256u;
  rc = rnd(rnd_ud, b + 1, n);
  if (rc) return rc < 0 ? rc : MTC_ERR_RANDOM;
  for (size_t i = 0; i < n; i++)
    out[i] = k_alphabet[b[1 + i] % 62u];
  out[n] = '\0';
  if (len) *len = n;
  return 0;
}

static int is_alnum(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int mtci_doh_name_ok(const char *name) {
  if (!name) return 0;
  size_t n = strlen(name);
  if (n && name[n - 1] == '.') n--;
  if (n == 0 || n > MTCI_DOH_MAX_NAME) return 0;
  size_t label = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)name[i];
    if (c == '.') {
      if (label == 0) return 0;
      label = 0;
      continue;
    }
    if (!is_alnum(c) && c != '-' && c != '_') return 0;
    if (++label > 63) return 0;
  }
  return label > 0;
}

int mtci_doh_build_url(mtci_doh_api api, const char *endpoint, const char *name,
                       const char *padding, char *out, size_t cap) {
  if (!endpoint || !out || cap == 0) return MTC_ERR_INVALID_ARG;
  if (api != MTCI_DOH_API_GOOGLE && api != MTCI_DOH_API_CLOUDFLARE) return MTC_ERR_INVALID_ARG;
  if (!mtci_doh_name_ok(name)) return MTC_ERR_INVALID_ARG;
  size_t el = strlen(endpoint);
  if (el == 0 || el > MTCI_DOH_MAX_ENDPOINT) return MTC_ERR_INVALID_ARG;
  size_t scheme = strncmp(endpoint, "https://", 8) == 0  ? 8
                  : strncmp(endpoint, "http://", 7) == 0 ? 7
                                                         : 0;
  if (scheme == 0) return MTC_ERR_INVALID_ARG;
  for (size_t i = 0; i < el; i++) {
    unsigned char c = (unsigned char)endpoint[i];
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') return MTC_ERR_INVALID_ARG;
  }
  while (el > scheme && endpoint[el - 1] == '/')
    el--;
  if (el == scheme) return MTC_ERR_INVALID_ARG; /* no host */
  size_t pl = padding ? strlen(padding) : 0;
  if (pl > MTCI_DOH_PADDING_MAX) return MTC_ERR_INVALID_ARG;
  for (size_t i = 0; i < pl; i++)
    if (!is_alnum((unsigned char)padding[i])) return MTC_ERR_INVALID_ARG;
  size_t nl = strlen(name);
  if (name[nl - 1] == '.') nl--;

  const char *path = api == MTCI_DOH_API_GOOGLE ? "/resolve?name=" : "/dns-query?name=";
  static const char type[] = "&type=16";
  static const char pad[] = "&random_padding=";
  size_t total = el + strlen(path) + nl + strlen(type) + (pl ? strlen(pad) + pl : 0);
  if (total + 1 > cap) return MTC_ERR_BUFFER_TOO_SMALL;
  size_t o = 0;
  memcpy(out + o, endpoint, el);
  o += el;
  memcpy(out + o, path, strlen(path));
  o += strlen(path);
  memcpy(out + o, name, nl);
  o += nl;
  memcpy(out + o, type, strlen(type));
  o += strlen(type);
  if (pl) {
    memcpy(out + o, pad, strlen(pad));
    o += strlen(pad);
    memcpy(out + o, padding, pl);
    o += pl;
  }
  out[o] = '\0';
  return (int)o;
}

/* ---- Date ---------------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int digits(const char *s, size_t n, int *v) {
  int x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    x = x * 10 + (s[i] - '0');
  }
  *v = x;
  return 1;
}

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int mtci_http_date_parse(const char *s, size_t len, int64_t *unix_s) {
  static const char *const wd[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (!s || !unix_s) return 0;
  while (len && (s[0] == ' ' || s[0] == '\t'))
    s++, len--;
  while (len &&
         (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
    len--;
  /* "Sun, 06 Nov 1994 08:49:37 GMT": exactly 29 bytes */
  if (len != 29) return 0;
  int ok = 0;
  for (int i = 0; i < 7; i++)
    ok |= memcmp(s, wd[i], 3) == 0;
  if (!ok || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
    return 0;
  int day, year, hh, mm, ss, mon = -1;
  for (int i = 0; i < 12; i++)
    if (memcmp(s + 8, mo[i], 3) == 0) mon = i + 1;
  if (mon < 0 || !digits(s + 5, 2, &day) || !digits(s + 12, 4, &year) || !digits(s + 17, 2, &hh) ||
      !digits(s + 20, 2, &mm) || !digits(s + 23, 2, &ss))
    return 0;
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int dim = mdays[mon - 1] + (mon == 2 && leap(year));
  /* second 60: a leap second, counted as the next second's start */
  if (year < 1970 || day < 1 || day > dim || hh > 23 || mm > 59 || ss > 60) return 0;
  *unix_s = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss;
  return 1;
}
