/* Base64 decoding and encoding (RFC 4648), see base64.h. */
#include "base64.h"

static const char k_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char k_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_val(unsigned char c, int url) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == (url ? '-' : '+')) return 62;
  if (c == (url ? '_' : '/')) return 63;
  return -1;
}

int mtci_base64_decode(const char *in, size_t n, unsigned flags, uint8_t *out, size_t cap,
                       size_t *out_len) {
  if ((!in && n) || (!out && cap) || !out_len) return MTC_ERR_INVALID_ARG;
  *out_len = 0;
  unsigned alpha = flags & (MTCI_B64_STD | MTCI_B64_URL);
  if (!alpha) return MTC_ERR_INVALID_ARG;
  int url = alpha == MTCI_B64_URL;
  if (alpha == (MTCI_B64_STD | MTCI_B64_URL)) {
    int has_url = 0, has_std = 0;
    for (size_t i = 0; i < n; i++) {
      if (in[i] == '-' || in[i] == '_') has_url = 1;
      if (in[i] == '+' || in[i] == '/') has_std = 1;
    }
    if (has_url && has_std) return MTC_ERR_INVALID_ARG; /* mixed alphabets */
    url = has_url;
  }
  size_t pad = 0;
  while (pad < n && in[n - 1 - pad] == '=') pad++;
  if (pad > 2 || (pad > 0 && n % 4 != 0)) return MTC_ERR_INVALID_ARG;
  if ((flags & MTCI_B64_PAD_REQUIRED) && n % 4 != 0) return MTC_ERR_INVALID_ARG;
  if ((flags & MTCI_B64_PAD_FORBIDDEN) && pad > 0) return MTC_ERR_INVALID_ARG;
  size_t m = n - pad;
  if (m % 4 == 1) return MTC_ERR_INVALID_ARG; /* 6 bits cannot end a byte */
  size_t need = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0);
  if (need > cap) return MTC_ERR_BUFFER_TOO_SMALL;

  uint32_t acc = 0;
  size_t o = 0;
  int bits = 0, last = 0;
  for (size_t i = 0; i < m; i++) {
    int v = b64_val((unsigned char)in[i], url);
    if (v < 0) return MTC_ERR_INVALID_ARG;
    last = v;
    acc = (acc << 6 | (uint32_t)v) & 0xffffffu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  /* Canonical form only: unused low bits of the last character are zero. */
  if ((m % 4 == 2 && (last & 0x0f)) || (m % 4 == 3 && (last & 0x03))) return MTC_ERR_INVALID_ARG;
  *out_len = o;
  return 0;
}

int mtci_base64_encode(const uint8_t *in, size_t n, unsigned flags, char *out, size_t cap,
                       size_t *out_len) {
  if ((!in && n) || !out || !out_len) return MTC_ERR_INVALID_ARG;
  *out_len = 0;
  int padded = !(flags & MTCI_B64_PAD_FORBIDDEN);
  const char *a = (flags & (MTCI_B64_STD | MTCI_B64_URL)) == MTCI_B64_URL ? k_url : k_std;
  if (n / 3 >= ((size_t)-1) / 4 - 1) return MTC_ERR_BUFFER_TOO_SMALL; /* length overflow */
  size_t want = MTCI_BASE64_ENCODED_LEN(n, padded);
  if (want >= cap) return MTC_ERR_BUFFER_TOO_SMALL;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    size_t left = n - i;
    uint32_t v = (uint32_t)in[i] << 16;
    if (left > 1) v |= (uint32_t)in[i + 1] << 8;
    if (left > 2) v |= in[i + 2];
    out[o++] = a[v >> 18 & 63];
    out[o++] = a[v >> 12 & 63];
    if (left > 1) out[o++] = a[v >> 6 & 63];
    else if (padded) out[o++] = '=';
    if (left > 2) out[o++] = a[v & 63];
    else if (padded) out[o++] = '=';
  }
  out[o] = '\0';
  *out_len = o;
  return 0;
}
