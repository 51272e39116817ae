/* JSON DoH answers -> TXT strings; see doh_json.h. */
#include "discovery/doh_json.h"

#include <jansson.h>
#include <string.h>

/* Cloudflare-style presentation form: "a" "b" ... -> ab. */
static int unquote(const char *s, size_t n, char *out, size_t cap, size_t *olen) {
  size_t i = 0, o = 0;
  for (;;) {
    if (i >= n || s[i] != '"') return MTC_ERR_DOH_FORMAT;
    i++;
    while (i < n && s[i] != '"') {
      unsigned char c = (unsigned char)s[i++];
      if (c == '\\') {
        if (i >= n) return MTC_ERR_DOH_FORMAT;
        if (s[i] >= '0' && s[i] <= '9') { /* \DDD: exactly three decimal digits */
          unsigned v = 0;
          for (int k = 0; k < 3; k++, i++) {
            if (i >= n || s[i] < '0' || s[i] > '9') return MTC_ERR_DOH_FORMAT;
            v = v * 10 + (unsigned)(s[i] - '0');
          }
          if (v > 255) return MTC_ERR_DOH_FORMAT;
          c = (unsigned char)v;
        } else {
          c = (unsigned char)s[i++]; /* \X stands for X */
        }
      }
      if (o == cap) return MTC_ERR_DOH_TOO_LARGE;
      out[o++] = (char)c;
    }
    if (i >= n) return MTC_ERR_DOH_FORMAT; /* unterminated */
    i++;
    size_t gap = i;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i == n) break;
    if (i == gap) return MTC_ERR_DOH_FORMAT; /* "a""b" or "a"junk */
  }
  *olen = o;
  return 0;
}

static int take_txt(const char *s, size_t n, mtci_doh_txt *out) {
  if (out->count == MTCI_DOH_MAX_PARTS) return MTC_ERR_DOH_TOO_MANY;
  char *dst = out->text[out->count];
  size_t len = 0;
  if (n > 0 && s[0] == '"') {
    int rc = unquote(s, n, dst, MTCI_DOH_MAX_TXT, &len);
    if (rc) return rc;
  } else {
    if (n > MTCI_DOH_MAX_TXT) return MTC_ERR_DOH_TOO_LARGE;
    memcpy(dst, s, n);
    len = n;
  }
  dst[len] = '\0';
  out->len[out->count++] = len;
  return 0;
}

static int parse_root(json_t *root, mtci_doh_txt *out) {
  if (!json_is_object(root)) return MTC_ERR_DOH_FORMAT;
  json_t *status = json_object_get(root, "Status");
  if (!json_is_integer(status)) return MTC_ERR_DOH_FORMAT;
  json_int_t st = json_integer_value(status);
  out->status = (st < 0 || st > 0xffff) ? -1 : (int)st;
  if (st != 0) return MTC_ERR_DOH_STATUS;

  json_t *answer = json_object_get(root, "Answer");
  if (!answer) return MTC_ERR_DOH_NO_TXT;
  if (!json_is_array(answer)) return MTC_ERR_DOH_FORMAT;
  size_t n = json_array_size(answer);
  if (n > MTCI_DOH_MAX_ANSWERS) return MTC_ERR_DOH_TOO_MANY;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(answer, i);
    if (!json_is_object(e)) return MTC_ERR_DOH_FORMAT;
    json_t *type = json_object_get(e, "type");
    if (!json_is_integer(type)) return MTC_ERR_DOH_FORMAT;
    if (json_integer_value(type) != MTCI_DOH_TYPE_TXT) continue; /* CNAME etc. */
    json_t *data = json_object_get(e, "data");
    if (!json_is_string(data)) return MTC_ERR_DOH_FORMAT;
    int rc = take_txt(json_string_value(data), json_string_length(data), out);
    if (rc) return rc;
  }
  return out->count ? 0 : MTC_ERR_DOH_NO_TXT;
}

int mtci_doh_json_parse(const char *body, size_t len, mtci_doh_txt *out) {
  if (!out) return MTC_ERR_INVALID_ARG;
  memset(out, 0, sizeof *out);
  if (!body && len) return MTC_ERR_INVALID_ARG;
  if (len > MTCI_DOH_MAX_BODY) return MTC_ERR_DOH_TOO_LARGE;
  json_error_t jerr;
  json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) return MTC_ERR_DOH_JSON;
  int rc = parse_root(root, out);
  json_decref(root);
  if (rc) {
    int status = out->status;
    memset(out, 0, sizeof *out);
    out->status = status;
  }
  return rc;
}

size_t mtci_doh_txt_parts(const mtci_doh_txt *t, mtci_sconf_part parts[MTCI_DOH_MAX_PARTS]) {
  if (!t || !parts) return 0;
  size_t n = t->count <= MTCI_DOH_MAX_PARTS ? t->count : MTCI_DOH_MAX_PARTS;
  for (size_t i = 0; i < n; i++) {
    parts[i].text = t->text[i];
    parts[i].len = t->len[i];
  }
  return n;
}
