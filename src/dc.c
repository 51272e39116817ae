/* Per-DC address sets, health and keys (see dc.h). */
#include "dc.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "transport/proxy_link.h"

/* The record and its owner's area share one allocation: [mtci_dc][pad][ext]. */
#define EXT_ALIGN 16
#define EXT_OFFSET ((sizeof(mtci_dc) + EXT_ALIGN - 1) / EXT_ALIGN * EXT_ALIGN)

void mtci_dc_table_init(mtci_dc_table *t) { memset(t, 0, sizeof *t); }

void mtci_dc_table_init_ext(mtci_dc_table *t, size_t ext_size, mtci_dc_ext_init_fn ext_init,
                            void *ext_ud) {
  memset(t, 0, sizeof *t);
  t->ext_size = ext_size;
  t->ext_init = ext_init;
  t->ext_ud = ext_ud;
}

void mtci_dc_clear_addrs(mtci_dc *dc) {
  if (dc->addrs) mtci_zeroize(dc->addrs, dc->cap_addrs * sizeof *dc->addrs);
  free(dc->addrs);
  dc->addrs = NULL;
  dc->n_addrs = dc->cap_addrs = 0;
}

void mtci_dc_table_clear(mtci_dc_table *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) {
    mtci_dc *dc = t->dcs[i];
    if (!dc) continue;
    mtci_dc_clear_addrs(dc);
    if (dc->key_block) mtci_zeroize(dc->key_block, 2 * MTCI_AUTH_KEY_LEN);
    free(dc->key_block);
    mtci_zeroize(dc, EXT_OFFSET + t->ext_size);
    free(dc);
    t->dcs[i] = NULL;
  }
  t->n = 0;
}

mtci_dc *mtci_dc_find(mtci_dc_table *t, int dc_id) {
  for (size_t i = 0; i < t->n; i++)
    if (t->dcs[i]->id == dc_id) return t->dcs[i];
  return NULL;
}

const mtci_dc *mtci_dc_find_const(const mtci_dc_table *t, int dc_id) {
  for (size_t i = 0; i < t->n; i++)
    if (t->dcs[i]->id == dc_id) return t->dcs[i];
  return NULL;
}

mtci_dc *mtci_dc_get(mtci_dc_table *t, int dc_id) {
  if (dc_id < 1 || dc_id > MTCI_DC_MAX_ID) return NULL;
  mtci_dc *dc = mtci_dc_find(t, dc_id);
  if (dc) return dc;
  if (t->n >= MTCI_DC_MAX_DCS) return NULL;
  dc = calloc(1, EXT_OFFSET + t->ext_size);
  if (!dc) return NULL;
  dc->id = dc_id;
  dc->index = t->n;
  if (t->ext_size) dc->ext = (uint8_t *)dc + EXT_OFFSET;
  t->dcs[t->n++] = dc;
  if (t->ext_init) t->ext_init(t->ext_ud, dc);
  return dc;
}

int mtci_dc_table_reuse(mtci_dc_table *t, size_t i, int dc_id) {
  if (i >= t->n || dc_id < 1 || dc_id > MTCI_DC_MAX_ID || mtci_dc_find(t, dc_id))
    return MTC_ERR_INVALID_ARG;
  mtci_dc *dc = t->dcs[i];
  if (dc->has_perm || dc->has_temp) return MTC_ERR_INVALID_ARG; /* a key is never dropped */
  mtci_dc_clear_addrs(dc);
  if (dc->key_block) mtci_zeroize(dc->key_block, 2 * MTCI_AUTH_KEY_LEN); /* a dropped key's block */
  free(dc->key_block);
  void *ext = dc->ext;
  memset(dc, 0, sizeof *dc);
  dc->id = dc_id;
  dc->index = i;
  dc->ext = ext;
  if (ext) memset(ext, 0, t->ext_size);
  if (t->ext_init) t->ext_init(t->ext_ud, dc);
  return 0;
}

int mtci_dc_reserve_addrs(mtci_dc *dc, size_t n) {
  if (n > MTCI_DC_MAX_ADDRS) return MTC_ERR_NOMEM;
  if (n <= dc->cap_addrs) return 0;
  /* 1, 2, 4 ...: most DCs hold one or two endpoints */
  size_t cap = dc->cap_addrs ? dc->cap_addrs * 2 : 1;
  while (cap < n) cap *= 2;
  if (cap > MTCI_DC_MAX_ADDRS) cap = MTCI_DC_MAX_ADDRS;
  mtci_dc_addr *a = calloc(cap, sizeof *a);
  if (!a) return MTC_ERR_NOMEM;
  if (dc->n_addrs) memcpy(a, dc->addrs, dc->n_addrs * sizeof *a);
  size_t keep = dc->n_addrs;
  mtci_dc_clear_addrs(dc);
  dc->addrs = a;
  dc->cap_addrs = cap;
  dc->n_addrs = keep;
  return 0;
}

int mtci_dc_option_check(const mtci_dc_option *o) {
  if (!o || !o->ip || o->ip_len == 0 || o->ip_len >= MTCI_DC_IP_LEN) return MTC_ERR_INVALID_ARG;
  if (o->dc_id < 1 || o->dc_id > MTCI_DC_MAX_ID || o->port == 0) return MTC_ERR_INVALID_ARG;
  if (o->flags & ~MTCI_DC_ADDR_ALL) return MTC_ERR_INVALID_ARG;
  uint8_t bin[16];
  int v6 = (o->flags & MTC_ADDR_IPV6) != 0;
  if (v6 ? mtci_parse_ipv6(o->ip, o->ip_len, bin) != 0 : mtci_parse_ipv4(o->ip, o->ip_len, bin) != 0)
    return MTC_ERR_INVALID_ARG;
  if (o->secret_len) {
    if (!o->secret || o->secret_len > MTCI_DC_SECRET_MAX) return MTC_ERR_INVALID_ARG;
    if (mtci_proxy_secret_from_binary(o->secret, o->secret_len, NULL, NULL) != 0)
      return MTC_ERR_INVALID_ARG;
  }
  return 0;
}

static int same_endpoint(const mtci_dc_addr *a, const char *ip, size_t ip_len, uint16_t port) {
  return a->port == port && strlen(a->ip) == ip_len && memcmp(a->ip, ip, ip_len) == 0;
}

int mtci_dc_find_addr(const mtci_dc *dc, const char *ip, uint16_t port) {
  if (!ip) return -1;
  size_t len = strlen(ip);
  for (size_t i = 0; i < dc->n_addrs; i++)
    if (same_endpoint(&dc->addrs[i], ip, len, port)) return (int)i;
  return -1;
}

static void fill_addr(mtci_dc_addr *a, const mtci_dc_option *o, unsigned origin) {
  memset(a, 0, sizeof *a);
  memcpy(a->ip, o->ip, o->ip_len);
  a->port = o->port;
  a->flags = o->flags;
  if (o->secret_len) memcpy(a->secret, o->secret, o->secret_len);
  a->secret_len = o->secret_len;
  a->origin = origin;
}

int mtci_dc_add_addr(mtci_dc *dc, const mtci_dc_option *o, unsigned origin) {
  if (mtci_dc_option_check(o) != 0) return MTC_ERR_INVALID_ARG;
  for (size_t i = 0; i < dc->n_addrs; i++) {
    if (same_endpoint(&dc->addrs[i], o->ip, o->ip_len, o->port)) {
      dc->addrs[i].origin |= origin;
      return 0;
    }
  }
  if (dc->n_addrs >= MTCI_DC_MAX_ADDRS || mtci_dc_reserve_addrs(dc, dc->n_addrs + 1) != 0)
    return MTC_ERR_NOMEM;
  fill_addr(&dc->addrs[dc->n_addrs++], o, origin);
  return 1;
}

/* 1 if the two sets hold the same (ip, port) pairs (order ignored). */
static int same_set(const mtci_dc_addr *a, size_t na, const mtci_dc_addr *b, size_t nb) {
  if (na != nb) return 0;
  for (size_t i = 0; i < na; i++) {
    int found = 0;
    for (size_t j = 0; j < nb && !found; j++)
      found = same_endpoint(&b[j], a[i].ip, strlen(a[i].ip), a[i].port);
    if (!found) return 0;
  }
  return 1;
}

int mtci_dc_apply_config(mtci_dc_table *t, const mtci_dc_option *opts, size_t n,
                         uint32_t *changed_mask, size_t *skipped) {
  uint32_t changed = 0;
  size_t skip = 0;
  int rc = 0;
  /* the DCs the config mentions, in first-mention order */
  int ids[MTCI_DC_MAX_DCS * 4];
  size_t n_ids = 0;
  for (size_t i = 0; i < n; i++) {
    if (mtci_dc_option_check(&opts[i]) != 0) {
      skip++;
      continue;
    }
    int seen = 0;
    for (size_t k = 0; k < n_ids && !seen; k++) seen = ids[k] == opts[i].dc_id;
    if (!seen && n_ids < sizeof ids / sizeof ids[0]) ids[n_ids++] = opts[i].dc_id;
  }
  for (size_t k = 0; k < n_ids; k++) {
    size_t before = t->n;
    mtci_dc *dc = mtci_dc_get(t, ids[k]);
    if (!dc) {
      rc = MTC_ERR_NOMEM;
      continue;
    }
    mtci_dc_addr old[MTCI_DC_MAX_ADDRS];
    size_t n_old = dc->n_addrs;
    if (n_old) memcpy(old, dc->addrs, n_old * sizeof old[0]);
    dc->n_addrs = 0;
    if (dc->addrs) memset(dc->addrs, 0, dc->cap_addrs * sizeof dc->addrs[0]);
    for (size_t i = 0; i < n; i++) {
      if (opts[i].dc_id != ids[k] || mtci_dc_option_check(&opts[i]) != 0) continue;
      int r = mtci_dc_add_addr(dc, &opts[i], MTCI_DC_FROM_CONFIG);
      if (r == MTC_ERR_NOMEM) skip++;
      if (r != 1) continue;
      /* keep what we knew about an endpoint that stays */
      mtci_dc_addr *a = &dc->addrs[dc->n_addrs - 1];
      for (size_t j = 0; j < n_old; j++) {
        if (same_endpoint(&old[j], a->ip, strlen(a->ip), a->port)) {
          a->last_success_ms = old[j].last_success_ms;
          a->last_failure_ms = old[j].last_failure_ms;
          a->consecutive_failures = old[j].consecutive_failures;
          a->origin |= old[j].origin & MTCI_DC_FROM_SEED;
          break;
        }
      }
    }
    /* seeds stay as a fallback */
    for (size_t j = 0; j < n_old; j++) {
      if (!(old[j].origin & MTCI_DC_FROM_SEED)) continue;
      if (mtci_dc_find_addr(dc, old[j].ip, old[j].port) >= 0) continue;
      if (dc->n_addrs >= MTCI_DC_MAX_ADDRS || mtci_dc_reserve_addrs(dc, dc->n_addrs + 1) != 0)
        break;
      dc->addrs[dc->n_addrs++] = old[j];
    }
    size_t idx = dc->index;
    if (t->n != before || !same_set(old, n_old, dc->addrs, dc->n_addrs))
      changed |= (uint32_t)1 << idx;
    mtci_zeroize(old, sizeof old);
  }
  if (changed_mask) *changed_mask = changed;
  if (skipped) *skipped = skip;
  return rc;
}

void mtci_dc_note_success(mtci_dc *dc, const char *ip, uint16_t port, int64_t now_ms) {
  int i = mtci_dc_find_addr(dc, ip, port);
  if (i < 0) return;
  dc->addrs[i].last_success_ms = now_ms;
  dc->addrs[i].consecutive_failures = 0;
}

void mtci_dc_note_failure(mtci_dc *dc, const char *ip, uint16_t port, int64_t now_ms) {
  int i = mtci_dc_find_addr(dc, ip, port);
  if (i < 0) return;
  dc->addrs[i].last_failure_ms = now_ms;
  if (dc->addrs[i].consecutive_failures < UINT32_MAX) dc->addrs[i].consecutive_failures++;
}

static int key_block(mtci_dc *dc) {
  if (dc->key_block) return 0;
  dc->key_block = calloc(2, MTCI_AUTH_KEY_LEN);
  if (!dc->key_block) return MTC_ERR_NOMEM;
  dc->perm_key = dc->key_block;
  dc->temp_key = dc->key_block + MTCI_AUTH_KEY_LEN;
  return 0;
}

/* Copy a key into its slot; its auth_key_id (SHA1(key)[12:20], little-endian). */
static uint64_t put_key(uint8_t *dst, const uint8_t key[MTCI_AUTH_KEY_LEN]) {
  uint8_t id[8];
  memcpy(dst, key, MTCI_AUTH_KEY_LEN);
  mtci_auth_key_id(dst, id);
  return mtci_le64(id);
}

int mtci_dc_set_perm_key(mtci_dc *dc, const uint8_t key[MTCI_AUTH_KEY_LEN], int64_t created_s,
                         int64_t salt) {
  if (key_block(dc) != 0) return MTC_ERR_NOMEM;
  dc->perm_key_id = put_key(dc->perm_key, key);
  dc->perm_created = created_s;
  dc->has_perm = 1;
  dc->authorized = 0;
  dc->salt = salt;
  return 0;
}

int mtci_dc_set_temp_key(mtci_dc *dc, const uint8_t key[MTCI_AUTH_KEY_LEN], int64_t expires_at,
                         int64_t salt) {
  if (key_block(dc) != 0) return MTC_ERR_NOMEM;
  dc->temp_key_id = put_key(dc->temp_key, key);
  dc->temp_expires_at = expires_at;
  dc->has_temp = 1;
  dc->temp_bound = 0;
  dc->salt = salt;
  return 0;
}

void mtci_dc_drop_temp_key(mtci_dc *dc) {
  if (dc->temp_key) mtci_zeroize(dc->temp_key, MTCI_AUTH_KEY_LEN);
  dc->has_temp = 0;
  dc->temp_key_id = 0;
  dc->temp_expires_at = 0;
  dc->temp_bound = 0;
}

void mtci_dc_drop_perm_key(mtci_dc *dc) {
  mtci_dc_drop_temp_key(dc);
  if (dc->perm_key) mtci_zeroize(dc->perm_key, MTCI_AUTH_KEY_LEN);
  dc->has_perm = 0;
  dc->perm_key_id = 0;
  dc->perm_created = 0;
  dc->authorized = 0;
  dc->salt = 0;
}

void mtci_dc_table_to_state(const mtci_dc_table *t, mtci_state *st) {
  st->n_dcs = 0;
  for (size_t i = 0; i < t->n && st->n_dcs < MTCI_STATE_MAX_DCS; i++) {
    const mtci_dc *dc = t->dcs[i];
    mtci_state_dc *s = &st->dcs[st->n_dcs++];
    memset(s, 0, sizeof *s);
    s->dc_id = dc->id;
    if (dc->has_perm) {
      s->has_perm = 1;
      memcpy(s->perm_key, dc->perm_key, MTCI_STATE_KEY_LEN);
      s->perm_key_id = dc->perm_key_id;
      s->perm_created = dc->perm_created > 0 ? dc->perm_created : 0;
      s->authorized = dc->authorized;
      s->salt = dc->salt;
      if (dc->has_temp && dc->temp_expires_at > 0) {
        s->has_temp = 1;
        memcpy(s->temp_key, dc->temp_key, MTCI_STATE_KEY_LEN);
        s->temp_key_id = dc->temp_key_id;
        s->temp_expires_at = dc->temp_expires_at;
        s->temp_bound = dc->temp_bound;
      }
    }
    for (size_t j = 0; j < dc->n_addrs && s->n_addrs < MTCI_STATE_MAX_ADDRS; j++) {
      const mtci_dc_addr *a = &dc->addrs[j];
      mtci_state_addr *o = &s->addrs[s->n_addrs++];
      memset(o, 0, sizeof *o);
      memcpy(o->ip, a->ip, sizeof o->ip);
      o->port = a->port;
      o->flags = a->flags;
      memcpy(o->secret, a->secret, a->secret_len);
      o->secret_len = a->secret_len;
      o->last_success_ms = a->last_success_ms > 0 ? a->last_success_ms : 0;
      o->last_failure_ms = a->last_failure_ms > 0 ? a->last_failure_ms : 0;
      o->consecutive_failures = a->consecutive_failures;
    }
  }
}

static int id_in(const int *ids, size_t n, int id) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] == id) return 1;
  return 0;
}

static void keep_id(int *ids, size_t *n, int id) {
  if (id >= 1 && id <= MTCI_DC_MAX_ID && *n < MTCI_DC_MAX_DCS && !id_in(ids, *n, id)) ids[(*n)++] = id;
}

/*
 * When the table and the state together hold more DCs than fit, choose the
 * ones to keep (order in dc.h) into keep[0..*n_keep), name the others in
 * left_out, and remove the table's records that are not kept (seed-only:
 * no key). The records that stay are compacted in order and their ext
 * areas set up again for a new index. Returns 1 if it trimmed, else 0.
 */
static int make_room(mtci_dc_table *t, const mtci_state *st, int main_id, int *keep,
                     size_t *n_keep, int *left_out, size_t *n_left_out) {
  int n_st = st->n_dcs < MTCI_STATE_MAX_DCS ? st->n_dcs : MTCI_STATE_MAX_DCS;
  size_t n_union = t->n;
  for (int i = 0; i < n_st; i++)
    if (!mtci_dc_find(t, st->dcs[i].dc_id)) n_union++;
  if (n_union <= MTCI_DC_MAX_DCS) return 0;
  /* keys first (at most MTCI_STATE_MAX_DCS = MTCI_DC_MAX_DCS of them: all fit) */
  for (int i = 0; i < n_st; i++)
    if (st->dcs[i].has_perm) keep_id(keep, n_keep, st->dcs[i].dc_id);
  for (size_t i = 0; i < t->n; i++)
    if (t->dcs[i]->has_perm) keep_id(keep, n_keep, t->dcs[i]->id); /* not expected before a load */
  keep_id(keep, n_keep, main_id);
  for (size_t i = 0; i < t->n; i++) keep_id(keep, n_keep, t->dcs[i]->id);
  for (int i = 0; i < n_st; i++) keep_id(keep, n_keep, st->dcs[i].dc_id);
  size_t n_out = 0;
  for (size_t i = 0; i < t->n; i++)
    if (!id_in(keep, *n_keep, t->dcs[i]->id) && left_out && n_out < MTCI_DC_MAX_DCS)
      left_out[n_out++] = t->dcs[i]->id;
  for (int i = 0; i < n_st; i++)
    if (!id_in(keep, *n_keep, st->dcs[i].dc_id) && !mtci_dc_find(t, st->dcs[i].dc_id) && left_out &&
        n_out < MTCI_DC_MAX_DCS)
      left_out[n_out++] = st->dcs[i].dc_id;
  if (n_left_out) *n_left_out = n_out;
  size_t m = 0;
  for (size_t i = 0; i < t->n; i++) {
    mtci_dc *dc = t->dcs[i];
    t->dcs[i] = NULL;
    if (!id_in(keep, *n_keep, dc->id) && !dc->has_perm) {
      mtci_dc_clear_addrs(dc); /* seed secrets */
      mtci_zeroize(dc, EXT_OFFSET + t->ext_size);
      free(dc);
      continue;
    }
    if (dc->index != m) {
      dc->index = m;
      if (dc->ext) {
        memset(dc->ext, 0, t->ext_size);
        if (t->ext_init) t->ext_init(t->ext_ud, dc);
      }
    }
    t->dcs[m++] = dc;
  }
  t->n = m;
  return 1;
}

int mtci_dc_table_from_state(mtci_dc_table *t, const mtci_state *st, int main_id, int *left_out,
                             size_t *n_left_out) {
  int keep[MTCI_DC_MAX_DCS];
  size_t n_keep = 0;
  if (n_left_out) *n_left_out = 0;
  int trimmed = make_room(t, st, main_id, keep, &n_keep, left_out, n_left_out);
  for (int i = 0; i < st->n_dcs && i < MTCI_STATE_MAX_DCS; i++) {
    const mtci_state_dc *s = &st->dcs[i];
    if (trimmed && !id_in(keep, n_keep, s->dc_id)) continue; /* left out: holds no key */
    mtci_dc *dc = mtci_dc_get(t, s->dc_id); /* room: kept DCs fit */
    if (!dc) return MTC_ERR_NOMEM;
    if (s->has_perm) {
      if (mtci_dc_set_perm_key(dc, s->perm_key, s->perm_created, s->salt) != 0) {
        return MTC_ERR_NOMEM;
      } else {
        dc->authorized = s->authorized;
        if (s->has_temp && s->temp_expires_at > 0) {
          mtci_dc_set_temp_key(dc, s->temp_key, s->temp_expires_at, s->salt); /* block exists */
          dc->temp_bound = s->temp_bound;
        }
      }
    }
    mtci_dc_addr seeds[MTCI_DC_MAX_ADDRS];
    size_t n_seeds = dc->n_addrs;
    if (n_seeds) memcpy(seeds, dc->addrs, n_seeds * sizeof seeds[0]);
    dc->n_addrs = 0;
    if (dc->addrs) memset(dc->addrs, 0, dc->cap_addrs * sizeof dc->addrs[0]);
    for (int j = 0; j < s->n_addrs; j++) {
      const mtci_state_addr *a = &s->addrs[j];
      mtci_dc_option o = {s->dc_id, a->ip, strlen(a->ip), a->port, a->flags, a->secret,
                          a->secret_len};
      int r = mtci_dc_add_addr(dc, &o, MTCI_DC_FROM_CONFIG);
      if (r == MTC_ERR_NOMEM) {
        mtci_zeroize(seeds, sizeof seeds);
        return MTC_ERR_NOMEM; /* the set holds <= MTCI_DC_MAX_ADDRS: out of memory */
      }
      if (r != 1) continue;
      mtci_dc_addr *d = &dc->addrs[dc->n_addrs - 1];
      d->last_success_ms = a->last_success_ms;
      d->last_failure_ms = a->last_failure_ms;
      d->consecutive_failures = a->consecutive_failures;
    }
    for (size_t j = 0; j < n_seeds; j++) {
      int k = mtci_dc_find_addr(dc, seeds[j].ip, seeds[j].port);
      if (k >= 0) {
        dc->addrs[k].origin |= seeds[j].origin;
      } else if (dc->n_addrs < MTCI_DC_MAX_ADDRS) {
        if (mtci_dc_reserve_addrs(dc, dc->n_addrs + 1) != 0) {
          mtci_zeroize(seeds, sizeof seeds);
          return MTC_ERR_NOMEM;
        }
        dc->addrs[dc->n_addrs++] = seeds[j];
      } /* else: the set is full of stored endpoints; this seed is left out */
    }
    mtci_zeroize(seeds, sizeof seeds); /* secrets */
  }
  return 0;
}
