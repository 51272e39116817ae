/*
 * The MTContext's endpoint discovery, pure part (see context_discovery.h for
 * the rules). Everything here is bookkeeping on the context's tables; the
 * race runs in the discovery object behind ctx->io.disc_start.
 */
#include "context.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "discovery/doh_request.h"
#include "mtconn/tl_api.h"
#include "policy.h"
#include "tl/tl.h"

#define LOGW(...) mtci_ctx_log(ctx, MTC_LOG_WARN, __VA_ARGS__)
#define LOGI(...) mtci_ctx_log(ctx, MTC_LOG_INFO, __VA_ARGS__)

/* The built-in sources (PROTOCOL.md §1.3, §1.4): the base URLs; the
 * discovery object adds /resolve and /dns-query. */
static const char k_google[] = "https://dns.google";
static const char k_cloudflare[] = "https://mozilla.cloudflare-dns.com";

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int fail_msg(char *msg, size_t msg_len, int rc, const char *text) {
  if (msg && msg_len) snprintf(msg, msg_len, "%s", text);
  return rc;
}

static char *dup_n(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* ---- settings ------------------------------------------------------------------- */

/*
 * Copy one provider's endpoint list into dst. An endpoint may be given with
 * its API path ("https://dns.google/resolve"): the path is cut, since the
 * discovery object appends it. Each is checked by building a query URL.
 */
static int copy_endpoints(char **dst, size_t *n_dst, const char *const *src, size_t n,
                          mtci_doh_api api, const char *name, char *msg, size_t msg_len) {
  const char *path = api == MTCI_DOH_API_GOOGLE ? "/resolve" : "/dns-query";
  if (n > MTCI_DISCOVERY_MAX_ENDPOINTS) {
    if (msg && msg_len) snprintf(msg, msg_len, "settings.%s: more than %d endpoints", name,
                                 MTCI_DISCOVERY_MAX_ENDPOINTS);
    return MTC_ERR_INVALID_ARG;
  }
  for (size_t i = 0; i < n; i++) {
    const char *u = src[i];
    size_t len = u ? strlen(u) : 0;
    int ok = len > 0 && len <= MTCI_CTX_DISC_MAX_URL;
    while (ok && len > 0 && u[len - 1] == '/') len--;
    size_t pl = strlen(path);
    if (ok && len > pl && memcmp(u + len - pl, path, pl) == 0) len -= pl;
    char base[MTCI_CTX_DISC_MAX_URL + 1], url[MTCI_DOH_MAX_URL];
    ok = ok && len > 0;
    if (ok) {
      memcpy(base, u, len);
      base[len] = '\0';
      ok = mtci_doh_build_url(api, base, MTCI_DISCOVERY_DOMAIN, NULL, url, sizeof url) > 0;
    }
    if (!ok) {
      if (msg && msg_len)
        snprintf(msg, msg_len, "settings.%s[%zu]: not an http(s) URL without query", name, i);
      return MTC_ERR_INVALID_ARG;
    }
    dst[i] = dup_n(base, len);
    if (!dst[i]) return MTC_ERR_NOMEM;
    *n_dst = i + 1;
  }
  return 0;
}

static int copy_str(char **dst, const char *src, size_t max, const char *name, char *msg,
                    size_t msg_len) {
  if (!src) return 0;
  size_t n = strlen(src);
  int ok = n > 0 && n <= max;
  for (size_t i = 0; ok && i < n; i++) ok = (unsigned char)src[i] >= 0x20;
  if (!ok) {
    if (msg && msg_len) snprintf(msg, msg_len, "settings.%s: empty, too long or a control byte", name);
    return MTC_ERR_INVALID_ARG;
  }
  *dst = dup_n(src, n);
  return *dst ? 0 : MTC_ERR_NOMEM;
}

static uint32_t pick_u32(int v, uint32_t def) { return v > 0 ? (uint32_t)v : def; }

/* The digits of a phone number into out (MTCI_CTX_DISC_PHONE_MAX + 1).
 * 0, or -1 when text holds anything but digits, spaces and "+-()" or is too
 * long. */
static int phone_digits(const char *text, size_t len, char *out) {
  size_t n = 0;
  if (len > MTCI_CTX_DISC_PHONE_MAX) return -1;
  for (size_t i = 0; i < len; i++) {
    char ch = text[i];
    if (ch >= '0' && ch <= '9') out[n++] = ch;
    else if (ch != ' ' && ch != '+' && ch != '-' && ch != '(' && ch != ')') return -1;
  }
  out[n] = 0;
  return 0;
}

void mtci_ctx_disc_note_request(mtc_context *ctx, const uint8_t *body, size_t len) {
  mtci_ctx_disc_settings *t = &ctx->disc.set;
  if (t->phone_given || len < 8 || mtci_le32(body) != MTC_TL_ID_fn_auth_sendCode) return;
  /* auth.sendCode#a677244f phone_number:string api_id:int ... */
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, body + 4, len - 4);
  size_t n = 0;
  const uint8_t *p = mtci_tl_read_bytes(&r, &n);
  char digits[MTCI_CTX_DISC_PHONE_MAX + 1];
  if (p && phone_digits((const char *)p, n, digits) == 0) memcpy(t->phone, digits, sizeof digits);
}

int mtci_ctx_disc_init(mtc_context *ctx, const mtc_settings *s, int builtin_seeds, char *msg,
                       size_t msg_len) {
  mtci_ctx_disc *d = &ctx->disc;
  mtci_ctx_disc_settings *t = &d->set;
  d->spacing_ms = MTCI_CTX_DISC_SPACING_MS;
  t->test_dcs = ctx->set.test_dcs;
  if (s->doh_connect_timeout_ms < 0 || s->doh_timeout_ms < 0 || s->discovery_timeout_ms < 0 ||
      s->discovery_stagger_ms < 0 || s->discovery_after_failures < 0 || s->discovery_after_ms < 0)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "a discovery timing or limit setting is negative");
  t->connect_timeout_ms = pick_u32(s->doh_connect_timeout_ms, MTCI_DOH_DEFAULT_CONNECT_TIMEOUT_MS);
  t->request_timeout_ms = pick_u32(s->doh_timeout_ms, MTCI_DOH_DEFAULT_REQUEST_TIMEOUT_MS);
  t->total_timeout_ms = pick_u32(s->discovery_timeout_ms, MTCI_DISCOVERY_DEFAULT_TOTAL_TIMEOUT_MS);
  t->stagger_ms = pick_u32(s->discovery_stagger_ms, MTCI_DISCOVERY_DEFAULT_STAGGER_MS);
  t->after_failures = s->discovery_after_failures > 0 ? s->discovery_after_failures
                                                      : MTCI_CTX_DISC_DEFAULT_FAILURES;
  t->after_ms = s->discovery_after_ms > 0 ? s->discovery_after_ms : MTCI_CTX_DISC_DEFAULT_AFTER_MS;

  /* Sources: given ones replace the built-in ones, which serve Telegram's
   * own DCs and so apply with the built-in seeds only. */
  int rc;
  if (s->n_doh_google && !s->doh_google)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.doh_google missing");
  if (s->n_doh_cloudflare && !s->doh_cloudflare)
    return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG, "settings.doh_cloudflare missing");
  if (s->doh_google) {
    rc = copy_endpoints(t->google, &t->n_google, s->doh_google, s->n_doh_google,
                        MTCI_DOH_API_GOOGLE, "doh_google", msg, msg_len);
    if (rc) return rc;
  } else if (builtin_seeds) {
    const char *const b[1] = {k_google};
    rc = copy_endpoints(t->google, &t->n_google, b, 1, MTCI_DOH_API_GOOGLE, "doh_google", msg, msg_len);
    if (rc) return rc;
  }
  if (s->doh_cloudflare) {
    rc = copy_endpoints(t->cloudflare, &t->n_cloudflare, s->doh_cloudflare, s->n_doh_cloudflare,
                        MTCI_DOH_API_CLOUDFLARE, "doh_cloudflare", msg, msg_len);
    if (rc) return rc;
  } else if (builtin_seeds) {
    const char *const b[1] = {k_cloudflare};
    rc = copy_endpoints(t->cloudflare, &t->n_cloudflare, b, 1, MTCI_DOH_API_CLOUDFLARE,
                        "doh_cloudflare", msg, msg_len);
    if (rc) return rc;
  }
  if (s->simple_config_key_pem) {
    t->key = calloc(1, sizeof *t->key);
    if (!t->key) return fail_msg(msg, msg_len, MTC_ERR_NOMEM, "out of memory");
    rc = mtci_rsa_key_from_pem(t->key, s->simple_config_key_pem, strlen(s->simple_config_key_pem));
    if (rc || t->key->n_len != MTCI_SCONF_CIPHER_LEN)
      return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG,
                      "settings.simple_config_key_pem: not a 2048-bit RSA public key");
  }
  if (s->phone_number) {
    if (phone_digits(s->phone_number, strnlen(s->phone_number, MTCI_CTX_DISC_PHONE_MAX + 1),
                     t->phone) != 0)
      return fail_msg(msg, msg_len, MTC_ERR_INVALID_ARG,
                      "settings.phone_number: at most 32 characters of digits, spaces and +-()");
    t->phone_given = 1;
  }
  rc = copy_str(&t->ca_file, s->ca_file, 4096, "ca_file", msg, msg_len);
  if (!rc) rc = copy_str(&t->dns_servers, s->dns_servers, 1024, "dns_servers", msg, msg_len);
  if (rc) return rc;
  t->plain_dns = !s->no_plain_dns && (t->dns_servers || builtin_seeds);
  /* Never with a proxy: the DCs are not dialed then, and a DoH request
   * would leave the network path the user chose (tdesktop does the same). */
  t->enabled = !s->no_discovery && !ctx->set.has_proxy &&
               t->n_google + t->n_cloudflare + (t->plain_dns ? 1u : 0u) > 0;
  return 0;
}

void mtci_ctx_disc_clear(mtc_context *ctx) {
  mtci_ctx_disc_settings *t = &ctx->disc.set;
  for (size_t i = 0; i < MTCI_DISCOVERY_MAX_ENDPOINTS; i++) {
    free(t->google[i]);
    free(t->cloudflare[i]);
  }
  free(t->ca_file);
  free(t->dns_servers);
  free(t->key); /* a public key: the zeroize below is for the rest */
  mtci_zeroize(&ctx->disc, sizeof ctx->disc);
}

/* ---- the DCs' condition ------------------------------------------------------------------ */

static const mtci_slot *slot_c(const mtc_context *ctx, size_t i, int k) {
  const mtci_ctx_dc *x = mtci_ctx_dcx(ctx, i);
  return k == 0 ? &x->main : x->media ? &x->media[k - 1] : NULL;
}

enum { DC_IDLE = -1, DC_DOWN = 0, DC_UP = 1 };

/*
 * DC_UP: some connection of DC i is healthy (the server sent valid data);
 * DC_DOWN: not, while a slot with work tries to connect (*worst = the most
 * consecutive failed attempts among them); DC_IDLE: nothing tries.
 */
static int dc_state(const mtc_context *ctx, size_t i, int *worst) {
  int wanted = 0;
  *worst = 0;
  for (int k = 0; k <= MTCI_CTX_MAX_MEDIA; k++) {
    const mtci_slot *s = slot_c(ctx, i, k);
    if (!s || !s->used) continue;
    if (s->conn && s->conn->healthy) return DC_UP;
    int parked = (ctx->disc.parked[i] >> k) & 1u;
    /* a connection that never got a valid answer counts as trying */
    if (s->gave_up || !(parked || mtci_ctx_slot_wanted(ctx, s))) continue;
    wanted = 1;
    if (s->failures > *worst) *worst = s->failures;
  }
  return wanted ? DC_DOWN : DC_IDLE;
}

static int config_expired(const mtc_context *ctx, int64_t now) {
  const mtci_state_discovered *r = &ctx->discovered;
  return r->present && r->expires_at > 0 && now / 1000 >= r->expires_at;
}

/* Failed attempts after which DC i needs a run. */
static int failure_threshold(const mtc_context *ctx, int64_t now) {
  int n = ctx->disc.set.after_failures;
  if (n > ctx->set.max_attempts) n = ctx->set.max_attempts;
  if (config_expired(ctx, now)) n = 1; /* the saved addresses are stale: do not insist */
  return n < 1 ? 1 : n;
}

/* When DC i (down since down_since) needs a run: 0 = already. */
static int64_t due_at(const mtc_context *ctx, size_t i, int worst, int64_t now) {
  if (worst >= failure_threshold(ctx, now)) return 0;
  return ctx->disc.down_since[i] + ctx->disc.set.after_ms;
}

/* ---- slots --------------------------------------------------------------------------------- */

static int slot_index(const mtci_slot *s) { return s->media ? s->index : 0; }

static void report_state(mtc_context *ctx, mtci_slot *s, mtc_conn_state st, int reason) {
  s->reported = (int)st;
  mtc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = MTC_EVENT_CONN_STATE;
  ev.dc_id = ctx->dcs.dcs[s->dci]->id;
  ev.media = s->media;
  ev.index = s->index;
  ev.state = st;
  ev.reason = reason;
  mtci_ctx_emit(ctx, &ev);
}

/* Stop the slot's attempts until the run ends. */
static void park(mtc_context *ctx, mtci_slot *s, int err) {
  ctx->disc.parked[s->dci] |= 1u << slot_index(s);
  s->retry_at = INT64_MAX;
  mtci_ctx_cands_drop(s);
  ctx->changed = 1;
  LOGI("dc %d (%s %d): %d attempts failed; waiting for endpoint discovery", ctx->dcs.dcs[s->dci]->id,
       s->media ? "media" : "main", s->index, s->failures);
  report_state(ctx, s, MTC_CONN_RECONNECTING, err);
}

/* Parked slots of DC index i: give up with MTC_ERR_UNREACHABLE. */
static void give_up_parked(mtc_context *ctx, size_t i) {
  uint32_t bits = ctx->disc.parked[i];
  ctx->disc.parked[i] = 0;
  for (int k = 0; k <= MTCI_CTX_MAX_MEDIA; k++) {
    if (!((bits >> k) & 1u)) continue;
    mtci_slot *s = mtci_ctx_slot(ctx, i, k);
    if (!s || !s->used || s->conn) continue;
    s->retry_at = 0;
    mtci_ctx_give_up(ctx, s, MTC_ERR_UNREACHABLE);
  }
}

/* ---- runs ---------------------------------------------------------------------------------- */

static void emit_discovery(mtc_context *ctx, int dc_id, int err, const char *source) {
  mtc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = MTC_EVENT_DISCOVERY;
  ev.dc_id = dc_id;
  ev.reason = err;
  if (source) {
    ev.data = (const uint8_t *)source;
    ev.len = strlen(source);
  }
  mtci_ctx_emit(ctx, &ev);
}

/* The run ended (or could not start) without endpoints. */
static void run_failed(mtc_context *ctx, int dc_id, int err, int64_t now) {
  mtci_ctx_disc *d = &ctx->disc;
  d->failures++;
  d->last_err = err;
  d->next_allowed_ms = now + d->spacing_ms;
  LOGW("endpoint discovery for dc %d failed: %s (%d); address sets unchanged; next run in %lld s at "
       "the earliest",
       dc_id, mtc_strerror(err), err, (long long)(d->spacing_ms / 1000));
  d->spacing_ms = min64(d->spacing_ms * 2, MTCI_CTX_DISC_SPACING_MAX_MS);
  for (size_t i = 0; i < ctx->dcs.n && i < MTCI_STATE_MAX_DCS; i++) {
    int worst;
    if (d->parked[i] || dc_state(ctx, i, &worst) == DC_DOWN) d->episode_err[i] = err;
  }
  emit_discovery(ctx, dc_id, err, NULL);
  for (size_t i = 0; i < ctx->dcs.n && i < MTCI_STATE_MAX_DCS; i++)
    if (d->parked[i]) give_up_parked(ctx, i);
  ctx->changed = 1;
}

static void start_run(mtc_context *ctx, size_t i, int worst, int64_t now) {
  mtci_ctx_disc *d = &ctx->disc;
  int dc_id = ctx->dcs.dcs[i]->id;
  int rc = ctx->io.disc_start ? ctx->io.disc_start(ctx->io.ud, now, ctx->time_offset_ms / 1000)
                              : MTC_ERR_UNSUPPORTED;
  if (rc) {
    d->runs++;
    LOGW("endpoint discovery could not start: %s", mtc_strerror(rc));
    run_failed(ctx, dc_id, rc, now);
    return;
  }
  d->running = 1;
  d->trigger_dc = dc_id;
  d->started_ms = now;
  LOGI("dc %d unreachable (%d failed attempts, %lld ms without a connection): starting endpoint "
       "discovery",
       dc_id, worst, (long long)(now - d->down_since[i]));
}

void mtci_ctx_disc_pump(mtc_context *ctx, int64_t now) {
  mtci_ctx_disc *d = &ctx->disc;
  if (!d->set.enabled || ctx->closing) return;
  int need = -1, need_worst = 0;
  for (size_t i = 0; i < ctx->dcs.n && i < MTCI_STATE_MAX_DCS; i++) {
    int worst;
    int st = dc_state(ctx, i, &worst);
    if (st != DC_DOWN) {
      d->down_since[i] = 0;
      if (st == DC_UP) d->episode_err[i] = 0;
      continue;
    }
    if (!d->down_since[i]) d->down_since[i] = now;
    if (need < 0 && now >= due_at(ctx, i, worst, now)) {
      need = (int)i;
      need_worst = worst;
    }
  }
  if (need >= 0 && !d->running && now >= d->next_allowed_ms) start_run(ctx, (size_t)need, need_worst, now);
}

int64_t mtci_ctx_disc_deadline(const mtc_context *ctx) {
  const mtci_ctx_disc *d = &ctx->disc;
  if (!d->set.enabled || d->running || ctx->closing) return INT64_MAX;
  int64_t t = INT64_MAX;
  for (size_t i = 0; i < ctx->dcs.n && i < MTCI_STATE_MAX_DCS; i++) {
    int worst;
    if (!d->down_since[i] || dc_state(ctx, i, &worst) != DC_DOWN) continue;
    /* due_at's "now" only matters for the expired-config threshold: the
     * time the DC went down is close enough */
    t = min64(t, max64(due_at(ctx, i, worst, d->down_since[i]), d->next_allowed_ms));
  }
  return t;
}

int mtci_ctx_disc_hold(mtc_context *ctx, mtci_slot *s, int err, int64_t now) {
  mtci_ctx_disc *d = &ctx->disc;
  size_t i = (size_t)s->dci;
  if (!d->set.enabled || ctx->closing || i >= MTCI_STATE_MAX_DCS) return 0;
  if (!mtci_ctx_slot_wanted(ctx, s)) return 0;
  int worst;
  if (dc_state(ctx, i, &worst) != DC_DOWN) return 0; /* another connection works: not an address problem */
  if (!d->running && now >= d->next_allowed_ms) {
    if (!d->down_since[i]) d->down_since[i] = now;
    start_run(ctx, i, worst, now);
  }
  if (d->running) {
    park(ctx, s, err);
    return 1;
  }
  if (d->episode_err[i]) {
    mtci_ctx_give_up(ctx, s, MTC_ERR_UNREACHABLE);
    return 1;
  }
  return 0;
}

/* ---- results ----------------------------------------------------------------------------- */

/*
 * Put endpoint o first in dc's set: an endpoint already there moves (its
 * health kept, flags and secret from the signed config); a new one drops
 * the last entry when the set is full. It is marked as a seed, so the
 * help.getConfig merge keeps it as a fallback. Returns 1 if the set of
 * (ip, port) changed.
 */
static int put_first(mtci_dc *dc, const mtci_dc_option *o) {
  mtci_dc_addr a;
  int changed = 0;
  int j = mtci_dc_find_addr(dc, o->ip, o->port);
  if (j >= 0) {
    a = dc->addrs[j];
    memmove(&dc->addrs[j], &dc->addrs[j + 1], (dc->n_addrs - (size_t)j - 1) * sizeof a);
    dc->n_addrs--;
  } else {
    /* room for one more (when the array cannot grow, the last entry goes) */
    if (dc->n_addrs == MTCI_DC_MAX_ADDRS || mtci_dc_reserve_addrs(dc, dc->n_addrs + 1) != 0) {
      if (dc->n_addrs == 0) return 0;
      dc->n_addrs--;
    }
    memset(&a, 0, sizeof a);
    memcpy(a.ip, o->ip, o->ip_len);
    a.port = o->port;
    a.origin = MTCI_DC_FROM_CONFIG;
    changed = 1;
  }
  a.flags = o->flags;
  memset(a.secret, 0, sizeof a.secret);
  if (o->secret_len) memcpy(a.secret, o->secret, o->secret_len);
  a.secret_len = o->secret_len;
  a.origin |= MTCI_DC_FROM_SEED;
  memmove(&dc->addrs[1], &dc->addrs[0], dc->n_addrs * sizeof a);
  dc->addrs[0] = a;
  dc->n_addrs++;
  mtci_zeroize(&a, sizeof a);
  mtci_zeroize(&dc->addrs[dc->n_addrs], (dc->cap_addrs - dc->n_addrs) * sizeof a);
  return changed;
}

/* Move (ip, port) of dc to the front, health kept. */
static void move_first(mtci_dc *dc, const char *ip, uint16_t port) {
  int j = mtci_dc_find_addr(dc, ip, port);
  if (j <= 0) return;
  mtci_dc_addr a = dc->addrs[j];
  memmove(&dc->addrs[1], &dc->addrs[0], (size_t)j * sizeof a);
  dc->addrs[0] = a;
  mtci_zeroize(&a, sizeof a);
}

/* An endpoint as an address-set option (obfuscated TCP only). */
static mtci_dc_option ep_option(const mtci_sconf_endpoint *e) {
  mtci_dc_option o = {e->dc_id,   e->ipv4,   strlen(e->ipv4), e->port, MTC_ADDR_TCPO_ONLY,
                      e->secret, e->secret_len};
  return o;
}

/*
 * Add the config's endpoints to the address sets, keeping config order at
 * the front of each set. *dcs gets bit i for every DC index that got one;
 * *changed for every set whose (ip, port) list changed. Returns the count.
 */
static size_t add_endpoints(mtc_context *ctx, const mtci_simple_config *cfg, uint32_t *dcs,
                            uint32_t *changed) {
  mtci_ctx_disc *d = &ctx->disc;
  size_t added = 0;
  *dcs = *changed = 0;
  d->n_eps = 0;
  /* its DCs take the place of DCs only older configs named (the table is 16 long) */
  int ids[MTCI_CTX_CONFIG_IDS] = {0};
  size_t n_ids = 0;
  for (size_t k = 0; k < cfg->count; k++) {
    mtci_dc_option o = ep_option(&cfg->ep[k]);
    if (mtci_dc_option_check(&o) == 0) mtci_ctx_config_id(ids, &n_ids, o.dc_id);
  }
  mtci_ctx_dc_room(ctx, ids, n_ids);
  for (size_t k = cfg->count; k-- > 0;) {
    const mtci_sconf_endpoint *e = &cfg->ep[k];
    mtci_dc_option o = ep_option(e);
    if (mtci_dc_option_check(&o) != 0) {
      LOGW("endpoint discovery: dc %d %s:%u unusable, skipped", (int)e->dc_id, e->ipv4,
           (unsigned)e->port);
      continue;
    }
    mtci_dc *dc = mtci_dc_get(&ctx->dcs, e->dc_id);
    if (!dc) {
      LOGW("endpoint discovery: no room for dc %d, skipped", (int)e->dc_id);
      continue;
    }
    size_t i = (size_t)(dc->index);
    if (put_first(dc, &o)) *changed |= 1u << i;
    *dcs |= 1u << i;
    added++;
    /* a config may list an endpoint twice: remember it once, so the count
     * of a DC's discovered endpoints never exceeds its set (extend_round) */
    int seen = 0;
    for (size_t m = 0; m < d->n_eps && !seen; m++)
      seen = d->eps[m].dc_id == e->dc_id && d->eps[m].port == e->port &&
             strcmp(d->eps[m].ip, e->ipv4) == 0;
    if (!seen && d->n_eps < MTCI_CTX_DISC_MAX_REMEMBERED) {
      mtci_ctx_disc_ep *r = &d->eps[d->n_eps++];
      r->dc_id = e->dc_id;
      memcpy(r->ip, e->ipv4, sizeof r->ip);
      r->port = e->port;
    }
  }
  return added;
}

/* The endpoints at the front of DC index i's set (the first n) that slot s
 * may use, inserted into its running round right after what was dialed. */
static void extend_round(mtc_context *ctx, mtci_slot *s, size_t n, int64_t now) {
  const mtci_dc *dc = ctx->dcs.dcs[s->dci];
  if (n > dc->n_addrs) n = dc->n_addrs; /* never past the set's end */
  mtci_choice ch;
  memset(&ch, 0, sizeof ch);
  ch.media = s->media;
  ch.prefer_ipv6 = ctx->set.prefer_ipv6;
  ch.obfuscated = ctx->set.obfuscate;
  ch.secret_ok = ctx->set.codec != MTCI_CODEC_FULL;
  size_t order[MTCI_DC_MAX_ADDRS];
  size_t m = mtci_policy_candidates(dc->addrs, n, &ch, order, MTCI_DC_MAX_ADDRS);
  for (size_t j = m; j-- > 0;) {
    const mtci_dc_addr *a = &dc->addrs[order[j]];
    int dup = 0;
    for (size_t c = 0; c < s->n_cands && !dup; c++)
      dup = s->cands[c].port == a->port && strcmp(s->cands[c].ip, a->ip) == 0;
    if (dup || s->n_cands >= MTCI_DC_MAX_ADDRS) continue;
    if (mtci_ctx_cands_alloc(s) < 0) break;
    memmove(&s->cands[s->next_cand + 1], &s->cands[s->next_cand],
            (s->n_cands - s->next_cand) * sizeof s->cands[0]);
    s->cands[s->next_cand] = *a;
    s->n_cands++;
  }
  s->next_dial_at = now;
}

/* DC index i got n new endpoints: its waiting slots try them at once, with
 * a fresh attempt budget; a round in progress dials them next; a connection
 * that never got a valid answer (black-holed after the TCP handshake: the
 * time trigger) is cut, and its slot starts over without back-off. Healthy
 * connections are not touched. */
static void wake_dc(mtc_context *ctx, size_t i, size_t n, int64_t now) {
  mtci_ctx_disc *d = &ctx->disc;
  uint32_t parked = d->parked[i];
  d->parked[i] = 0;
  d->episode_err[i] = 0;
  for (int k = 0; k <= MTCI_CTX_MAX_MEDIA; k++) {
    mtci_slot *s = mtci_ctx_slot(ctx, i, k);
    if (!s || !s->used) continue;
    if (s->conn) {
      mtci_conn *c = s->conn;
      if (!c->healthy && (c->phase == MTCI_CONN_DIAL || c->phase == MTCI_CONN_STACK ||
                          c->phase == MTCI_CONN_AUTH)) {
        c->phase_deadline = now; /* the context's expiry drops it */
        s->failures = -1;        /* ... and attempt_failed counts it back to 0: no back-off */
        LOGI("dc %d (%s %d): dropping the silent connection to %s:%u for the new endpoints",
             ctx->dcs.dcs[i]->id, s->media ? "media" : "main", s->index, c->ip, (unsigned)c->port);
      }
      continue;
    }
    int dialing = 0;
    for (int j = 0; j < MTCI_CTX_RACE; j++) dialing |= s->dials[j] != NULL;
    if (dialing) {
      extend_round(ctx, s, n, now);
      continue;
    }
    if (!((parked >> k) & 1u) && !mtci_ctx_slot_wanted(ctx, s)) continue;
    s->failures = 0;
    s->flood = 0;
    s->retry_at = now;
    mtci_ctx_cands_drop(s);
    s->opened_once = 0; /* the next connect is counted under MTC_REASON_DISCOVERY */
    s->open_reason = MTC_REASON_DISCOVERY;
  }
  ctx->changed = 1;
}

void mtci_ctx_disc_result(mtc_context *ctx, const mtci_discovery_result *r, int64_t now) {
  mtci_ctx_disc *d = &ctx->disc;
  if (!d->running) return;
  d->running = 0;
  d->runs++;
  ctx->changed = 1;
  int dc_id = d->trigger_dc;
  if (r->have_clock_offset) {
    int64_t fix = r->clock_offset_s * 1000;
    if (fix != d->clock_fix_ms)
      LOGW("the local clock is %+lld s off (DoH Date header): fake-TLS timestamps use the corrected "
           "time",
           (long long)r->clock_offset_s);
    d->clock_fix_ms = fix;
    if (!ctx->time_synced) { /* no server time yet: start from this one */
      ctx->time_offset_ms = fix;
      ctx->dirty_minor = 1;
    }
  }
  int err = r->err;
  uint32_t dcs = 0, changed = 0;
  size_t added = 0;
  if (!err && r->config) added = add_endpoints(ctx, r->config, &dcs, &changed);
  else if (!err) err = MTC_ERR_INTERNAL;
  if (!err && added == 0) err = MTC_ERR_SCONF_NO_RULES;
  if (err) {
    run_failed(ctx, dc_id, err, now);
    return;
  }
  const char *src = mtci_source_kind_name(r->source);
  snprintf(d->source, sizeof d->source, "%s", src);
  d->spacing_ms = MTCI_CTX_DISC_SPACING_MS;
  d->next_allowed_ms = now + d->spacing_ms;
  /* the record the state keeps: where the addresses came from, until when */
  ctx->discovered.present = 1;
  snprintf(ctx->discovered.source, sizeof ctx->discovered.source, "%s", src);
  ctx->discovered.fetched_at = now / 1000;
  ctx->discovered.expires_at = r->config->expires > 0 ? r->config->expires : 0;
  ctx->dirty = 1;
  size_t n_dcs = 0;
  for (size_t i = 0; i < ctx->dcs.n && i < MTCI_STATE_MAX_DCS; i++) {
    if (!((dcs >> i) & 1u)) continue;
    n_dcs++;
    size_t n = 0;
    for (size_t k = 0; k < d->n_eps; k++) n += d->eps[k].dc_id == ctx->dcs.dcs[i]->id;
    wake_dc(ctx, i, n, now);
  }
  for (size_t i = 0; i < ctx->dcs.n && i < MTCI_STATE_MAX_DCS; i++)
    if (d->parked[i]) give_up_parked(ctx, i); /* the config has nothing for them */
  LOGI("endpoint discovery: %zu endpoints for %zu DCs from %s (%s) after %lld ms; config valid until "
       "%lld",
       added, n_dcs, src, r->endpoint ? r->endpoint : "?", (long long)r->elapsed_ms,
       (long long)r->config->expires);
  if (!ctx->set.no_auto_config) {
    /* confirm over the connection through the new endpoints, and merge the
     * real dcOptions (without touching working connections) */
    ctx->config_wanted = 1;
    ctx->config_done = 0;
    ctx->config_dc = mtci_dc_find(&ctx->dcs, dc_id) ? dc_id : 0;
    d->confirm_pending = 1;
  }
  if (changed) {
    mtc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = MTC_EVENT_CONFIG_UPDATED;
    mtci_ctx_emit(ctx, &ev);
  }
  emit_discovery(ctx, dc_id, 0, src);
}

void mtci_ctx_disc_config_done(mtc_context *ctx, int ok, int64_t now) {
  mtci_ctx_disc *d = &ctx->disc;
  (void)now;
  if (!d->confirm_pending) return;
  d->confirm_pending = 0;
  if (!ok) {
    LOGW("help.getConfig after endpoint discovery failed: the discovered endpoints stay in use");
    return;
  }
  /* The merge listed the config's options first; in a network that blocked
   * the known addresses the discovered ones are the better first try (health
   * still ranks first: policy.h). The record keeps naming the provider. */
  for (size_t k = d->n_eps; k-- > 0;) {
    mtci_dc *dc = mtci_dc_find(&ctx->dcs, d->eps[k].dc_id);
    if (dc) move_first(dc, d->eps[k].ip, d->eps[k].port);
  }
  if (ctx->discovered.present && d->source[0])
    snprintf(ctx->discovered.source, sizeof ctx->discovered.source, "%s", d->source);
  ctx->dirty = 1;
  LOGI("help.getConfig confirmed the endpoints from %s", d->source);
}

/* ---- counters ----------------------------------------------------------------------------- */

void mtci_ctx_disc_counters(const mtc_context *ctx, mtc_counters *out) {
  mtci_discovery_counters c;
  memset(&c, 0, sizeof c);
  if (ctx->io.disc_counters) ctx->io.disc_counters(ctx->io.ud, &c);
  out->http_requests = c.http_requests;
  out->dns_queries = c.dns_queries;
  out->discovery_runs = ctx->disc.runs;
  out->discovery_failures = ctx->disc.failures;
  out->discovery_last_error = ctx->disc.last_err;
  for (int k = 0; k < MTCI_SOURCE_KINDS; k++) {
    for (int o = 0; o < MTCI_OUT_COUNT; o++) {
      uint64_t v = c.race.outcome[k][o];
      switch ((mtci_race_outcome)o) {
      case MTCI_OUT_BAD_HASH:
      case MTCI_OUT_BAD_SIGNATURE: out->discovery_rejected[MTC_DISCOVERY_TAMPERED] += v; break;
      case MTCI_OUT_EXPIRED:
      case MTCI_OUT_FUTURE: out->discovery_rejected[MTC_DISCOVERY_EXPIRED] += v; break;
      case MTCI_OUT_MALFORMED: out->discovery_rejected[MTC_DISCOVERY_MALFORMED] += v; break;
      case MTCI_OUT_OVERSIZED: out->discovery_rejected[MTC_DISCOVERY_OVERSIZED] += v; break;
      case MTCI_OUT_BAD_CONTENT: out->discovery_rejected[MTC_DISCOVERY_UNUSABLE] += v; break;
      case MTCI_OUT_TIMEOUT:
      case MTCI_OUT_NETWORK:
      case MTCI_OUT_HTTP_STATUS:
      case MTCI_OUT_NOT_FOUND: out->discovery_requests_failed += v; break;
      default: break; /* OK, CANCELLED */
      }
    }
  }
}

int mtci_ctx_disc_counters_json(const mtc_counters *c, void *json_root) {
  static const char *const names[MTC_DISCOVERY_REJECT_COUNT] = {"tampered", "expired", "malformed",
                                                                "oversized", "unusable"};
  json_t *o = json_object(), *rej = json_object();
  if (!o || !rej) {
    json_decref(o);
    json_decref(rej);
    return -1;
  }
  int bad = 0;
  for (int k = 0; k < MTC_DISCOVERY_REJECT_COUNT; k++)
    bad |= json_object_set_new(rej, names[k], json_integer((json_int_t)c->discovery_rejected[k]));
  bad |= json_object_set_new(o, "runs", json_integer((json_int_t)c->discovery_runs));
  bad |= json_object_set_new(o, "failures", json_integer((json_int_t)c->discovery_failures));
  bad |= json_object_set_new(o, "rejected", rej);
  bad |= json_object_set_new(o, "requests_failed",
                             json_integer((json_int_t)c->discovery_requests_failed));
  bad |= json_object_set_new(o, "last_error", json_integer(c->discovery_last_error));
  bad |= json_object_set_new((json_t *)json_root, "discovery", o);
  return bad ? -1 : 0;
}
