/* The MTContext's rules (see policy.h). */
#include "policy.h"

#include <string.h>

/* ---- back-off ------------------------------------------------------------------ */

int64_t mtci_policy_backoff_ms(int64_t initial_ms, int64_t max_ms, int failures, int flood) {
  if (initial_ms <= 0) initial_ms = 1000;
  if (max_ms < initial_ms) max_ms = initial_ms;
  int64_t d = 0;
  if (failures > 0) {
    d = initial_ms;
    for (int i = 1; i < failures && d < max_ms; i++) d *= 2;
    if (d > max_ms) d = max_ms;
  }
  if (flood) {
    d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
    int64_t cap = max_ms > MTCI_POLICY_FLOOD_MIN_MS ? max_ms : MTCI_POLICY_FLOOD_MIN_MS;
    if (d > cap) d = cap;
    if (d < MTCI_POLICY_FLOOD_MIN_MS) d = MTCI_POLICY_FLOOD_MIN_MS;
  }
  return d;
}

/* ---- connect rate ----------------------------------------------------------------- */

static int clamp_rate(int max) {
  if (max < 1) return 1;
  if (max > MTCI_POLICY_RATE_SLOTS) return MTCI_POLICY_RATE_SLOTS;
  return max;
}

/* i-th most recent entry (0 = newest). */
static int64_t rate_at(const mtci_rate *r, size_t i) {
  size_t idx = (r->head + MTCI_POLICY_RATE_SLOTS - 1 - i) % MTCI_POLICY_RATE_SLOTS;
  return r->t[idx];
}

int64_t mtci_rate_next_allowed(const mtci_rate *r, int max_per_window, int64_t now_ms) {
  size_t max = (size_t)clamp_rate(max_per_window);
  if (r->n < max) return now_ms;
  /* the max-th most recent connect must have left the window */
  int64_t t = rate_at(r, max - 1) + MTCI_POLICY_RATE_WINDOW_MS;
  return t > now_ms ? t : now_ms;
}

void mtci_rate_note(mtci_rate *r, int64_t now_ms) {
  r->t[r->head] = now_ms;
  r->head = (r->head + 1) % MTCI_POLICY_RATE_SLOTS;
  if (r->n < MTCI_POLICY_RATE_SLOTS) r->n++;
}

/* ---- address choice --------------------------------------------------------------- */

enum { CLASS_GOOD = 0, CLASS_UNTRIED = 1, CLASS_FAILING = 2 };

static int addr_class(const mtci_dc_addr *a) {
  if (a->consecutive_failures > 0) return CLASS_FAILING;
  return a->last_success_ms > 0 ? CLASS_GOOD : CLASS_UNTRIED;
}

/* Negative if a ranks before b. */
static int rank_cmp(const mtci_dc_addr *addrs, size_t ia, size_t ib, int prefer_ipv6) {
  const mtci_dc_addr *a = &addrs[ia], *b = &addrs[ib];
  int ca = addr_class(a), cb = addr_class(b);
  if (ca != cb) return ca - cb;
  int fa = ((a->flags & MTC_ADDR_IPV6) != 0) != (prefer_ipv6 != 0); /* 0 = preferred family */
  int fb = ((b->flags & MTC_ADDR_IPV6) != 0) != (prefer_ipv6 != 0);
  if (ca == CLASS_FAILING) {
    if (a->last_failure_ms != b->last_failure_ms) return a->last_failure_ms < b->last_failure_ms ? -1 : 1;
    if (fa != fb) return fa - fb;
  } else {
    if (fa != fb) return fa - fb;
    if (ca == CLASS_GOOD && a->last_success_ms != b->last_success_ms)
      return a->last_success_ms > b->last_success_ms ? -1 : 1;
  }
  return ia < ib ? -1 : (ia > ib ? 1 : 0);
}

size_t mtci_policy_candidates(const mtci_dc_addr *addrs, size_t n, const mtci_choice *c,
                              size_t *order, size_t cap) {
  size_t m = 0;
  int have_media = 0, have_static = 0;
  for (size_t pass = 0; pass < 2; pass++) {
    m = 0;
    for (size_t i = 0; i < n; i++) {
      const mtci_dc_addr *a = &addrs[i];
      if (a->flags & MTC_ADDR_CDN) continue;
      if (a->secret_len && !c->secret_ok) continue;
      if ((a->flags & MTC_ADDR_TCPO_ONLY) && !c->obfuscated && !a->secret_len) continue;
      int media_only = (a->flags & MTC_ADDR_MEDIA_ONLY) != 0;
      if (media_only && !c->media) continue;
      if (pass == 0) {
        if (media_only) have_media = 1;
        if (a->flags & MTC_ADDR_STATIC) have_static = 1;
        continue;
      }
      if (c->media && have_media && !media_only) continue;
      if (c->via_proxy && have_static && !(a->flags & MTC_ADDR_STATIC)) continue;
      if (m < cap) order[m++] = i;
    }
  }
  /* insertion sort: the lists are short (<= 16) */
  for (size_t i = 1; i < m; i++) {
    size_t v = order[i], j = i;
    while (j > 0 && rank_cmp(addrs, v, order[j - 1], c->prefer_ipv6) < 0) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = v;
  }
  return m;
}

/* ---- rpc_error rules --------------------------------------------------------------- */

int mtci_policy_suffix(const char *message, const char *prefix, int32_t *value) {
  size_t pl = strlen(prefix);
  if (strncmp(message, prefix, pl) != 0) return 0;
  const char *p = message + pl;
  int32_t v = 0;
  int digits = 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (++digits > 9) return 0;
    v = v * 10 + (*p - '0');
  }
  if (digits == 0 || *p != 0) return 0;
  *value = v;
  return 1;
}

void mtci_policy_rpc_error(int32_t code, const char *message, const mtci_rpc_rules *r,
                           mtci_rpc_action *out) {
  memset(out, 0, sizeof *out);
  out->kind = MTCI_RPC_DELIVER;
  if (!message) return;
  int32_t x = 0;
  if (code == 303) {
    static const char *const main_prefixes[] = {"PHONE_MIGRATE_", "USER_MIGRATE_",
                                                "NETWORK_MIGRATE_"};
    static const char *const route_prefixes[] = {"FILE_MIGRATE_", "STATS_MIGRATE_"};
    int kind = 0;
    for (size_t i = 0; i < 3 && !kind; i++)
      if (mtci_policy_suffix(message, main_prefixes[i], &x)) kind = MTCI_RPC_MIGRATE_MAIN;
    for (size_t i = 0; i < 2 && !kind; i++)
      if (mtci_policy_suffix(message, route_prefixes[i], &x)) kind = MTCI_RPC_ROUTE_DC;
    if (!kind || !r->allow_migrate || x < 1 || x > MTCI_DC_MAX_ID) return;
    if (kind == MTCI_RPC_MIGRATE_MAIN && !r->target_main) return;
    if (r->migrations >= MTCI_POLICY_MAX_MIGRATIONS) {
      out->loop = 1;
      return;
    }
    out->kind = (mtci_rpc_action_kind)kind;
    out->dc = x;
    return;
  }
  if (code == 420) {
    if (!mtci_policy_suffix(message, "FLOOD_WAIT_", &x) &&
        !mtci_policy_suffix(message, "FLOOD_PREMIUM_WAIT_", &x))
      return;
    if (!r->allow_flood || r->flood_auto_s <= 0 || x > r->flood_auto_s ||
        r->flood_waits >= MTCI_POLICY_MAX_FLOOD_WAITS)
      return;
    out->kind = MTCI_RPC_FLOOD_WAIT;
    out->wait_ms = (int64_t)x * 1000;
    return;
  }
  if (code == 401) {
    out->unauthorized = strcmp(message, "AUTH_KEY_UNREGISTERED") == 0;
    if (r->main_moved) {
      /* the answering DC's authorization is not the one the request needs:
       * it goes to the main DC, never a transfer to the old one */
      if (r->migrations >= MTCI_POLICY_MAX_MIGRATIONS) out->loop = 1;
      else out->kind = MTCI_RPC_RESEND_MAIN;
      return;
    }
    if (out->unauthorized && !r->on_main_dc && r->main_authorized && r->allow_transfer &&
        r->transfers == 0)
      out->kind = MTCI_RPC_AUTH_TRANSFER;
  }
}

/* ---- transport errors --------------------------------------------------------------- */

mtci_terr_action mtci_policy_transport_error(int err, int had_session) {
  switch (err) {
  case MTC_ERR_TRANSPORT_AUTH_KEY: return had_session ? MTCI_TERR_DROP_KEY : MTCI_TERR_RETRY;
  case MTC_ERR_TRANSPORT_FLOOD: return MTCI_TERR_FLOOD;
  case MTC_ERR_TRANSPORT_BAD_DC: return MTCI_TERR_REFRESH;
  default: return MTCI_TERR_RETRY;
  }
}

/* ---- liveness ------------------------------------------------------------------------- */

void mtci_policy_liveness(int64_t rtt_ms, int32_t *probe_after_ms, int32_t *dead_after_ms) {
  int64_t scaled = rtt_ms > 0 ? rtt_ms * MTCI_POLICY_RTT_FACTOR : 0;
  if (scaled > MTCI_POLICY_LIVENESS_MAX_MS) scaled = MTCI_POLICY_LIVENESS_MAX_MS;
  int64_t p = scaled > MTCI_POLICY_PROBE_MIN_MS ? scaled : MTCI_POLICY_PROBE_MIN_MS;
  int64_t d = scaled > MTCI_POLICY_DEAD_MIN_MS ? scaled : MTCI_POLICY_DEAD_MIN_MS;
  *probe_after_ms = (int32_t)p;
  *dead_after_ms = (int32_t)d;
}
