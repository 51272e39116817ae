/* SOCKS5 client handshake state machine; message layouts in socks5.h. */
#include "transport/socks5.h"

#include <string.h>

#include "crypto/crypto.h"

enum {
  ST_METHOD = 1, /* greeting out, waiting for 05 METHOD */
  ST_AUTH,       /* auth request out, waiting for 01 STATUS */
  ST_REPLY,      /* CONNECT request out, waiting for the reply */
  ST_DONE,
  ST_FAILED
};

static int set_error(mtci_socks5 *s, int code) {
  s->err = code;
  s->state = ST_FAILED;
  /* Nothing more goes out, and no credential may linger. */
  mtci_zeroize(s->out, sizeof s->out);
  s->out_len = s->out_pos = 0;
  mtci_zeroize(s->user, sizeof s->user);
  mtci_zeroize(s->pass, sizeof s->pass);
  return code;
}

int mtci_socks5_init(mtci_socks5 *s, uint8_t atyp, const uint8_t *addr, size_t addr_len,
                     uint16_t port, const uint8_t *user, size_t user_len, const uint8_t *pass,
                     size_t pass_len) {
  if (!s) return MTC_ERR_INVALID_ARG;
  memset(s, 0, sizeof *s);
  if (!addr || port == 0) return MTC_ERR_SOCKS_PARAMS;
  switch (atyp) {
  case MTCI_SOCKS5_ATYP_IPV4:
    if (addr_len != 4) return MTC_ERR_SOCKS_PARAMS;
    break;
  case MTCI_SOCKS5_ATYP_IPV6:
    if (addr_len != 16) return MTC_ERR_SOCKS_PARAMS;
    break;
  case MTCI_SOCKS5_ATYP_DOMAIN:
    if (addr_len < 1 || addr_len > 255) return MTC_ERR_SOCKS_PARAMS; /* one length byte */
    break;
  default: return MTC_ERR_SOCKS_PARAMS;
  }
  if (user && user_len > 0) {
    if (user_len > 255 || pass_len > 255 || (!pass && pass_len)) return MTC_ERR_SOCKS_PARAMS;
    s->use_auth = 1;
    memcpy(s->user, user, user_len);
    s->user_len = user_len;
    if (pass_len) memcpy(s->pass, pass, pass_len);
    s->pass_len = pass_len;
  } else if (pass && pass_len) {
    return MTC_ERR_SOCKS_PARAMS; /* a password without a user name */
  }
  s->atyp = atyp;
  memcpy(s->addr, addr, addr_len);
  s->addr_len = addr_len;
  s->port = port;

  /* Greeting: VER 05, NMETHODS, METHODS (00 = none, 02 = user/pass). */
  s->out[0] = 0x05;
  if (s->use_auth) {
    s->out[1] = 2;
    s->out[2] = 0x00;
    s->out[3] = 0x02;
    s->out_len = 4;
  } else {
    s->out[1] = 1;
    s->out[2] = 0x00;
    s->out_len = 3;
  }
  s->state = ST_METHOD;
  return 0;
}

size_t mtci_socks5_pending(const mtci_socks5 *s, const uint8_t **data) {
  if (!s || s->state == ST_FAILED || s->out_pos >= s->out_len) {
    if (data) *data = NULL;
    return 0;
  }
  if (data) *data = s->out + s->out_pos;
  return s->out_len - s->out_pos;
}

int mtci_socks5_sent(mtci_socks5 *s, size_t n) {
  if (!s) return MTC_ERR_INVALID_ARG;
  if (s->state == ST_FAILED) return s->err;
  if (n > s->out_len - s->out_pos) return MTC_ERR_INVALID_ARG;
  s->out_pos += n;
  if (s->out_pos == s->out_len) {
    /* The auth message holds the password: wipe it once it is out. */
    if (s->state == ST_AUTH) {
      mtci_zeroize(s->user, sizeof s->user);
      mtci_zeroize(s->pass, sizeof s->pass);
    }
    mtci_zeroize(s->out, s->out_len);
    s->out_len = s->out_pos = 0;
  }
  return 0;
}

static void queue_auth(mtci_socks5 *s) {
  /* RFC 1929: VER 01 | ULEN | UNAME | PLEN | PASSWD */
  size_t o = 0;
  s->out[o++] = 0x01;
  s->out[o++] = (uint8_t)s->user_len;
  memcpy(s->out + o, s->user, s->user_len);
  o += s->user_len;
  s->out[o++] = (uint8_t)s->pass_len;
  memcpy(s->out + o, s->pass, s->pass_len);
  o += s->pass_len;
  s->out_len = o;
  s->out_pos = 0;
}

static void queue_connect(mtci_socks5 *s) {
  /* VER 05 | CMD 01 CONNECT | RSV 00 | ATYP | DST.ADDR | DST.PORT */
  size_t o = 0;
  s->out[o++] = 0x05;
  s->out[o++] = 0x01;
  s->out[o++] = 0x00;
  s->out[o++] = s->atyp;
  if (s->atyp == MTCI_SOCKS5_ATYP_DOMAIN) s->out[o++] = (uint8_t)s->addr_len;
  memcpy(s->out + o, s->addr, s->addr_len);
  o += s->addr_len;
  s->out[o++] = (uint8_t)(s->port >> 8);
  s->out[o++] = (uint8_t)s->port;
  s->out_len = o;
  s->out_pos = 0;
}

/* Error for a non-zero REP: 01..08 are named, others generic. */
static int rep_error(uint8_t rep) {
  return rep >= 0x01 && rep <= 0x08 ? MTC_ERR_SOCKS_REPLY - (int)rep : MTC_ERR_SOCKS_REPLY;
}

/* Total reply length once enough of it is known; 0 while undetermined. */
static size_t reply_len(const mtci_socks5 *s) {
  if (s->in_len < 4) return 0;
  switch (s->in[3]) {
  case MTCI_SOCKS5_ATYP_IPV4: return 4 + 4 + 2;
  case MTCI_SOCKS5_ATYP_IPV6: return 4 + 16 + 2;
  default: return s->in_len < 5 ? 0 : 4 + 1 + (size_t)s->in[4] + 2;
  }
}

/* Take one server byte; returns 0, DONE or an error. */
static int take(mtci_socks5 *s, uint8_t b) {
  s->in[s->in_len++] = b;
  switch (s->state) {
  case ST_METHOD:
    if (s->in_len == 1) return b == 0x05 ? 0 : set_error(s, MTC_ERR_SOCKS_VERSION);
    s->method = b;
    s->in_len = 0;
    if (b == 0xff) return set_error(s, MTC_ERR_SOCKS_NO_METHOD);
    if (b == 0x02 && s->use_auth) {
      s->state = ST_AUTH;
      queue_auth(s);
      return 0;
    }
    if (b != 0x00) return set_error(s, MTC_ERR_SOCKS_METHOD);
    /* No authentication: the credentials are not needed any more. */
    mtci_zeroize(s->user, sizeof s->user);
    mtci_zeroize(s->pass, sizeof s->pass);
    s->state = ST_REPLY;
    queue_connect(s);
    return 0;
  case ST_AUTH:
    if (s->in_len == 1) return b == 0x01 ? 0 : set_error(s, MTC_ERR_SOCKS_VERSION);
    s->in_len = 0;
    if (b != 0x00) return set_error(s, MTC_ERR_SOCKS_AUTH_FAILED);
    s->state = ST_REPLY;
    queue_connect(s);
    return 0;
  case ST_REPLY:
    switch (s->in_len) {
    case 1: return b == 0x05 ? 0 : set_error(s, MTC_ERR_SOCKS_VERSION);
    case 2: return b == 0x00 ? 0 : set_error(s, rep_error(b));
    case 3: return b == 0x00 ? 0 : set_error(s, MTC_ERR_SOCKS_PROTOCOL);
    case 4:
      if (b != MTCI_SOCKS5_ATYP_IPV4 && b != MTCI_SOCKS5_ATYP_IPV6 && b != MTCI_SOCKS5_ATYP_DOMAIN)
        return set_error(s, MTC_ERR_SOCKS_ATYP);
      return 0;
    case 5:
      if (s->in[3] == MTCI_SOCKS5_ATYP_DOMAIN && b == 0)
        return set_error(s, MTC_ERR_SOCKS_PROTOCOL); /* empty BND name */
      break;
    default: break;
    }
    {
      size_t need = reply_len(s);
      if (need == 0 || s->in_len < need) return 0;
    }
    {
      size_t off = s->in[3] == MTCI_SOCKS5_ATYP_DOMAIN ? 5 : 4;
      size_t alen = s->in_len - off - 2;
      s->bnd_atyp = s->in[3];
      memcpy(s->bnd_addr, s->in + off, alen);
      s->bnd_addr_len = alen;
      s->bnd_port = (uint16_t)(s->in[s->in_len - 2] << 8 | s->in[s->in_len - 1]);
    }
    s->in_len = 0;
    s->state = ST_DONE;
    return MTCI_SOCKS5_DONE;
  default: return set_error(s, MTC_ERR_INTERNAL);
  }
}

int mtci_socks5_feed(mtci_socks5 *s, const uint8_t *data, size_t len, size_t *consumed) {
  size_t used = 0;
  int rc = 0;
  if (consumed) *consumed = 0;
  if (!s || (!data && len)) return MTC_ERR_INVALID_ARG;
  if (s->state == ST_FAILED) return s->err;
  if (s->state == ST_DONE) return MTCI_SOCKS5_DONE;
  if (s->state < ST_METHOD || s->state > ST_REPLY) return MTC_ERR_INVALID_ARG; /* not initialized */
  while (used < len) {
    /* The server cannot answer a message it has not been sent yet. */
    if (s->out_pos < s->out_len) {
      rc = set_error(s, MTC_ERR_SOCKS_PROTOCOL);
      break;
    }
    rc = take(s, data[used++]);
    if (rc != 0) break;
  }
  if (consumed) *consumed = used;
  return rc;
}

int mtci_socks5_done(const mtci_socks5 *s) { return s && s->state == ST_DONE; }

void mtci_socks5_free(mtci_socks5 *s) {
  if (s) mtci_zeroize(s, sizeof *s);
}
