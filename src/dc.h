/*
 * Per-DC records of the MTContext: the address set with what we learnt about
 * each endpoint's health, and the DC's auth key and authorization. Pure
 * data and logic (DESIGN.md rule 1): times are parameters (unix ms).
 *
 * Address sets
 *   - An endpoint is (ip, port); the first occurrence wins (tdesktop
 *     ApplyOneOption): a later duplicate's flags and secret are dropped.
 *   - Seeds (settings or built-in) come first. help.getConfig replaces a
 *     DC's set with the config's options (in config order), keeping the
 *     health of endpoints that stay, and then appends the seed endpoints the
 *     config did not list (they remain a fallback, like tdlib's static
 *     options). DCs the config does not mention keep their set.
 *   - Changing a set never touches connections: the context keeps a healthy
 *     connection even when its endpoint left the set (a copy of the endpoint
 *     lives in the connection), so new address sets never reset it.
 *   - Health: last success, last failure, consecutive failures since the
 *     last success (the store persists them). policy.h orders candidates.
 *
 * Capacities are the store's: MTCI_DC_MAX_ADDRS endpoints per DC,
 * MTCI_DC_MAX_DCS DCs. Memory is taken as it is needed (an idle context
 * holds a few DCs of one or two endpoints): each DC record is allocated when
 * the DC is first seen and never moves (pointers to it stay valid while the
 * table lives; a keyless record may be given to another DC id in place:
 * mtci_dc_table_reuse), and its address array grows on demand.
 */
#ifndef MTCI_DC_H
#define MTCI_DC_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "mtconn/mtconn.h"
#include "store.h"

#define MTCI_DC_MAX_DCS MTCI_STATE_MAX_DCS     /* 16 */
#define MTCI_DC_MAX_ADDRS MTCI_STATE_MAX_ADDRS /* 16 */
#define MTCI_DC_IP_LEN MTCI_STATE_IP_LEN       /* 46 */
#define MTCI_DC_SECRET_MAX MTCI_STATE_SECRET_MAX
#define MTCI_DC_MAX_ID MTCI_STATE_MAX_DC_ID    /* 999 */

/* Address flag bits: the dcOption flags (= MTC_ADDR_*, MTCI_STATE_ADDR_*). */
#define MTCI_DC_ADDR_ALL 0x3fu

/* Where an endpoint came from (not persisted; a loaded one counts as config). */
enum { MTCI_DC_FROM_SEED = 1u, MTCI_DC_FROM_CONFIG = 2u };

typedef struct mtci_dc_addr {
  char ip[MTCI_DC_IP_LEN]; /* literal, NUL-terminated, rest zero */
  uint16_t port;
  unsigned flags;          /* MTC_ADDR_* */
  uint8_t secret[MTCI_DC_SECRET_MAX];
  size_t secret_len;
  unsigned origin;         /* MTCI_DC_FROM_* bits */
  int64_t last_success_ms, last_failure_ms;
  uint32_t consecutive_failures;
} mtci_dc_addr;

typedef struct mtci_dc {
  int id;                  /* 1..999 */
  size_t index;            /* position in the table (stable) */
  void *ext;               /* the table owner's per-DC data (ext_size bytes, zeroed), or NULL */
  size_t n_addrs, cap_addrs;
  mtci_dc_addr *addrs;     /* heap, cap_addrs entries (<= MTCI_DC_MAX_ADDRS); NULL when empty */
  /* the keys' bytes: one heap block of 2 x MTCI_AUTH_KEY_LEN taken with the
   * first key (most DCs of a context never get one), wiped and freed with
   * the record; perm_key / temp_key point into it (NULL before) */
  uint8_t *key_block;
  /* permanent auth key */
  int has_perm;
  uint8_t *perm_key;
  uint64_t perm_key_id;    /* SHA1(key)[12:20] little-endian */
  int64_t perm_created;    /* unix s */
  int authorized;          /* the user is logged in on this key */
  int64_t salt;            /* last server salt of the key in use (the temp key's with PFS) */
  /* temporary auth key (PFS, PROTOCOL.md §6.8), bound to the perm key */
  int has_temp;
  uint8_t *temp_key;
  uint64_t temp_key_id;    /* SHA1(key)[12:20] little-endian */
  int64_t temp_expires_at; /* server unix s */
  int temp_bound;          /* auth.bindTempAuthKey succeeded */
  int seed;                /* a seed DC (settings or built-in): set by the table's owner */
} mtci_dc;

/* Called once for each DC record the table creates, with its ext area. */
typedef void (*mtci_dc_ext_init_fn)(void *ud, mtci_dc *dc);

typedef struct mtci_dc_table {
  size_t n;
  mtci_dc *dcs[MTCI_DC_MAX_DCS]; /* heap records, dcs[0..n) */
  size_t ext_size;
  mtci_dc_ext_init_fn ext_init;
  void *ext_ud;
} mtci_dc_table;

/* An endpoint as given by a seed or a dcOption (strings not necessarily
 * NUL-terminated). */
typedef struct mtci_dc_option {
  int dc_id;
  const char *ip;
  size_t ip_len;
  uint16_t port;
  unsigned flags;
  const uint8_t *secret;
  size_t secret_len;
} mtci_dc_option;

void mtci_dc_table_init(mtci_dc_table *t);
/* The same, and every DC record gets ext_size bytes of the owner's data
 * (zeroed, then passed to ext_init if not NULL) in the same allocation. */
void mtci_dc_table_init_ext(mtci_dc_table *t, size_t ext_size, mtci_dc_ext_init_fn ext_init,
                            void *ext_ud);
/* Zeroize every key and secret and free every record (the table is empty
 * and reusable afterwards; the ext areas are freed too: release what they
 * own first). */
void mtci_dc_table_clear(mtci_dc_table *t);

/*
 * Give the record at index i to dc_id in place (no other record moves): the
 * old DC's addresses are wiped, the record is emptied and its ext area
 * zeroed and ext_init'ed again (release what it owns first). A record with
 * a key is never given away. Returns 0, or MTC_ERR_INVALID_ARG (i out of
 * range, the record has a key, dc_id outside 1..999 or in the table).
 */
int mtci_dc_table_reuse(mtci_dc_table *t, size_t i, int dc_id);

/* The DC with this id, or NULL. */
mtci_dc *mtci_dc_find(mtci_dc_table *t, int dc_id);
const mtci_dc *mtci_dc_find_const(const mtci_dc_table *t, int dc_id);
/* The DC, appended (empty) if missing. NULL: id outside 1..999, table full,
 * or out of memory. */
mtci_dc *mtci_dc_get(mtci_dc_table *t, int dc_id);

/*
 * Check an option: IP literal (IPv6 flag must match it), port 1..65535,
 * flags within MTCI_DC_ADDR_ALL, secret empty or a valid MTProxy secret,
 * dc_id 1..999. Returns 0 or MTC_ERR_INVALID_ARG.
 */
int mtci_dc_option_check(const mtci_dc_option *o);

/*
 * Append an endpoint unless (ip, port) is there already (then only origin
 * bits are added). Returns 1 added, 0 duplicate, MTC_ERR_INVALID_ARG (bad
 * option), MTC_ERR_NOMEM (set full: the endpoint is dropped).
 */
int mtci_dc_add_addr(mtci_dc *dc, const mtci_dc_option *o, unsigned origin);

/* Room for n endpoints in dc->addrs (n <= MTCI_DC_MAX_ADDRS): 0 or
 * MTC_ERR_NOMEM. Growing copies the set and wipes the old array (secrets). */
int mtci_dc_reserve_addrs(mtci_dc *dc, size_t n);

/* Wipe and free the address array (a stand-alone record's, e.g. in tests). */
void mtci_dc_clear_addrs(mtci_dc *dc);

/* Index of (ip, port) in the set, or -1. */
int mtci_dc_find_addr(const mtci_dc *dc, const char *ip, uint16_t port);

/*
 * Apply a config's option list (help.getConfig) as described at the top.
 * Invalid options and DC ids outside 1..999 are skipped (counted in
 * *skipped, may be NULL). *changed_mask (may be NULL) gets bit i set when
 * table->dcs[i]'s set of (ip, port) changed (DCs appended to the table are
 * changed too). Returns 0, or MTC_ERR_NOMEM when the table had no room for a
 * new DC (the rest is applied).
 */
int mtci_dc_apply_config(mtci_dc_table *t, const mtci_dc_option *opts, size_t n,
                         uint32_t *changed_mask, size_t *skipped);

/* Health bookkeeping for (ip, port) of dc (ignored if not in the set). */
void mtci_dc_note_success(mtci_dc *dc, const char *ip, uint16_t port, int64_t now_ms);
void mtci_dc_note_failure(mtci_dc *dc, const char *ip, uint16_t port, int64_t now_ms);

/* Install / drop the permanent key (drop zeroizes and clears authorized).
 * The setters return 0, or MTC_ERR_NOMEM (the DC's key block could not be
 * allocated: nothing changed). */
int mtci_dc_set_perm_key(mtci_dc *dc, const uint8_t key[MTCI_AUTH_KEY_LEN], int64_t created_s,
                          int64_t salt);
void mtci_dc_drop_perm_key(mtci_dc *dc);
/* Install a new (unbound) temp key / drop it (zeroized). Dropping the perm
 * key drops the temp key too. */
int mtci_dc_set_temp_key(mtci_dc *dc, const uint8_t key[MTCI_AUTH_KEY_LEN], int64_t expires_at,
                          int64_t salt);
void mtci_dc_drop_temp_key(mtci_dc *dc);

/*
 * Persisted state <-> table. to_state fills dcs, keys, salts, addresses and
 * health (main_dc, time offset and discovery are the caller's). from_state
 * merges a loaded state into a table that holds the seeds only (no keys,
 * and ext areas that own nothing yet): the stored endpoints go first (with
 * health), the seeds not stored follow.
 * When the table's DCs and the state's together exceed MTCI_DC_MAX_DCS
 * (the seeds changed since the save), DCs are kept in this order until the
 * table is full: the state's DCs with an auth key (all fit: the state holds
 * at most MTCI_DC_MAX_DCS), main_id (0: none), the table's seed DCs in
 * order, the state's other DCs; so an auth key is never dropped. The
 * seed-only records that give way are freed; records that move get their
 * ext area zeroed and ext_init'ed again for the new index. The ids left
 * out go to left_out[0..*n_left_out) (room for MTCI_DC_MAX_DCS; both may
 * be NULL; *n_left_out is 0 when everything fit). Returns 0, or
 * MTC_ERR_NOMEM (allocation failed: the table is incomplete, never save it).
 */
void mtci_dc_table_to_state(const mtci_dc_table *t, mtci_state *st);
int mtci_dc_table_from_state(mtci_dc_table *t, const mtci_state *st, int main_id, int *left_out,
                             size_t *n_left_out);

#endif /* MTCI_DC_H */
