/*
 * The session's duplicate window of received msg_ids (session_impl.h): a
 * sorted ring that grows, wraps, forgets its lowest id when full and, once
 * the clock is synced, ids older than MTCI_SESS_SEEN_KEEP_MS.
 *
 * The property every case checks in the end: an id that was added is
 * rejected by every later add, whether it is still in the window or was
 * forgotten (then it is below the lowest id kept). Beside it, a
 * differential check against the plain sorted-array window of the rules
 * (the lowest forgotten when full, ids below a full or forgetful window
 * rejected) over random inserts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session_impl.h"
#include "test.h"

#define W MTCI_SESSION_SEEN_WINDOW
#define NOW_MS 1700000000000ll /* local clock of every case; time offset 0 */

static int rng_fn(void *ud, uint8_t *out, size_t len) {
  uint64_t *st = ud;
  for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(test_rand64(st) >> 24);
  return 0;
}

static int open_session(mtci_session *s, uint64_t *rng) {
  mtci_session_config c;
  memset(&c, 0, sizeof c);
  for (int i = 0; i < MTCI_AUTH_KEY_LEN; i++) c.auth_key[i] = (uint8_t)(i * 5 + 1);
  c.server_salt = 1;
  c.session_id = 0x1122334455667788ll;
  c.time_synced = 1;
  c.no_future_salts = 1;
  c.rnd = rng_fn;
  c.rnd_ud = rng;
  return mtci_session_init(s, &c, NOW_MS);
}

/* A server msg_id for server time ms, plus k * 4 (distinct ids, same time). */
static int64_t id_at(int64_t ms, int64_t k) {
  uint64_t sec = (uint64_t)ms / 1000u, frac = ((uint64_t)ms % 1000u << 32) / 1000u;
  return (int64_t)((sec << 32 | (frac & ~(uint64_t)3)) + 4u * (uint64_t)k + 1u);
}

/* Reference: the rules on a plain sorted array (the window as it was
 * before the ring, plus `forgot`). */
typedef struct model {
  int64_t v[W];
  size_t n;
  int forgot;
} model;

static size_t model_lower(const model *m, int64_t id) {
  size_t i = 0;
  while (i < m->n && m->v[i] < id) i++;
  return i;
}

static int model_state(const model *m, int64_t id) {
  if (m->n == 0) return 0;
  if ((m->forgot || m->n == W) && id < m->v[0]) return -1;
  size_t i = model_lower(m, id);
  return i < m->n && m->v[i] == id;
}

static int model_add(model *m, int64_t id) {
  if (model_state(m, id) != 0) return MTC_ERR_SESSION_DUPLICATE;
  if (m->n == W) {
    memmove(m->v, m->v + 1, (W - 1) * sizeof m->v[0]);
    m->n--;
    m->forgot = 1;
  }
  size_t i = model_lower(m, id);
  memmove(m->v + i + 1, m->v + i, (m->n - i) * sizeof m->v[0]);
  m->v[i] = id;
  m->n++;
  return 0;
}

/* Ids increasing past the capacity: the ring's head wraps several times. */
TEST(wrap_around) {
  uint64_t rng = 1;
  mtci_session s;
  CHECK_EQ_INT(open_session(&s, &rng), 0);
  CHECK_EQ_INT(s.n_seen, 0);
  const int total = W + 3 * W / 2 + 7;
  for (int i = 0; i < total; i++) CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS, i)), 0);
  CHECK_EQ_INT(s.n_seen, W);
  CHECK_EQ_INT(mtci_sess_seen_max(&s), id_at(NOW_MS, total - 1));
  for (int i = 0; i < total; i++) {
    int want = i < total - W ? -1 : 1; /* forgotten (below the window) / kept */
    CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, i)), want);
    CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS, i)), MTC_ERR_SESSION_DUPLICATE);
  }
  CHECK_EQ_INT(s.n_seen, W);
  /* in between two kept ids and above them all: new */
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, total - 5) + 2), 0);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, total)), 0);
  mtci_session_free(&s);
}

/* A full window: a new id (anywhere above the lowest) evicts the lowest;
 * one below the lowest is rejected and changes nothing, even never seen. */
TEST(eviction_and_min_bound) {
  uint64_t rng = 2;
  mtci_session s;
  CHECK_EQ_INT(open_session(&s, &rng), 0);
  /* even k only: room for odd ones in between; W + 5 of them wraps the ring */
  for (int i = 0; i < W + 5; i++) CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS, 2 * i)), 0);
  int64_t lowest = id_at(NOW_MS, 2 * 5);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, lowest), 1);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, 2 * 4)), -1);
  /* below the lowest, never seen: rejected, nothing forgotten */
  CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS, 2 * 5 - 1)), MTC_ERR_SESSION_DUPLICATE);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, lowest), 1);
  CHECK_EQ_INT(s.n_seen, W);
  /* in the middle: accepted, the lowest goes */
  int64_t mid = id_at(NOW_MS, 2 * (W / 2) + 1);
  CHECK_EQ_INT(mtci_sess_seen_add(&s, mid), 0);
  CHECK_EQ_INT(s.n_seen, W);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, lowest), -1);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, 2 * 6)), 1);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, mid), 1);
  CHECK_EQ_INT(mtci_sess_seen_add(&s, mid), MTC_ERR_SESSION_DUPLICATE);
  /* just above the new lowest: accepted; it is then the lowest itself */
  int64_t low2 = id_at(NOW_MS, 2 * 6 + 1);
  CHECK_EQ_INT(mtci_sess_seen_add(&s, low2), 0);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, 2 * 6)), -1);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, low2), 1);
  CHECK_EQ_INT(mtci_sess_seen_max(&s), id_at(NOW_MS, 2 * (W + 4)));
  mtci_session_free(&s);
}

/* A window filled exactly, nothing forgotten yet: below its lowest is
 * already "below the window" (a full window keeps no room for it). */
TEST(full_without_forgetting) {
  uint64_t rng = 3;
  mtci_session s;
  CHECK_EQ_INT(open_session(&s, &rng), 0);
  for (int i = 1; i <= W; i++) CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS, i)), 0);
  CHECK_EQ_INT(s.n_seen, W);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, 0)), -1);
  CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS, 0)), MTC_ERR_SESSION_DUPLICATE);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, 1)), 1);
  mtci_session_free(&s);
}

/* Random inserts (duplicates and out of order included) against the model;
 * every id ever added stays rejected. */
TEST(random_against_model) {
  static model m;
  static int64_t added[4 * W];
  uint64_t rng = 4, r = 0x1234567;
  mtci_session s;
  CHECK_EQ_INT(open_session(&s, &rng), 0);
  memset(&m, 0, sizeof m);
  size_t n_added = 0;
  int64_t base = id_at(NOW_MS, 0);
  for (int step = 0; step < 4 * W; step++) {
    /* mostly rising ids, some from anywhere in the recent past */
    uint64_t x = test_rand64(&r);
    int64_t k = (int64_t)(step * 3) - (int64_t)(x % 4 == 0 ? x % (6u * W) : x % 8);
    int64_t id = base + 4 * (k < 0 ? -k : k);
    int want = model_add(&m, id);
    CHECK_EQ_INT(mtci_sess_seen_add(&s, id), want);
    if (want == 0) added[n_added++] = id;
    CHECK_EQ_INT(s.n_seen, m.n);
    CHECK_EQ_INT(mtci_sess_seen_max(&s), m.v[m.n - 1]);
    int64_t probe = base + 4 * (int64_t)(test_rand64(&r) % (3u * 4 * W));
    CHECK_EQ_INT(mtci_sess_seen_state(&s, probe), model_state(&m, probe));
  }
  CHECK(n_added > W); /* the window was full and forgot */
  for (size_t i = 0; i < n_added; i++) {
    CHECK(mtci_sess_seen_state(&s, added[i]) != 0);
    CHECK_EQ_INT(mtci_sess_seen_add(&s, added[i]), MTC_ERR_SESSION_DUPLICATE);
  }
  for (size_t i = 0; i < m.n; i++) CHECK_EQ_INT(mtci_sess_seen_state(&s, m.v[i]), 1);
  mtci_session_free(&s);
}

/* Synced clock: ids older than MTCI_SESS_SEEN_KEEP_MS are forgotten (the
 * newest never), below the lowest kept is rejected, the ring shrinks. */
TEST(time_expiry_and_shrink) {
  uint64_t rng = 5;
  mtci_session s;
  CHECK_EQ_INT(open_session(&s, &rng), 0);
  const int64_t keep = MTCI_SESS_SEEN_KEEP_MS;
  size_t empty_bytes = mtci_sess_seen_bytes(&s);
  CHECK_EQ_INT(empty_bytes, sizeof(mtci_sess_seen) + MTCI_SESS_SEEN_MIN_CAP * sizeof(int64_t));
  for (int i = 0; i < 1000; i++)
    CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS - keep - 60000, i)), 0);
  int64_t recent = id_at(NOW_MS - keep / 2, 0), newest = id_at(NOW_MS, 0);
  CHECK_EQ_INT(mtci_sess_seen_add(&s, recent), 0);
  CHECK_EQ_INT(mtci_sess_seen_add(&s, newest), 0);
  CHECK_EQ_INT(s.n_seen, 1002);
  CHECK(mtci_sess_seen_bytes(&s) >= 1002 * sizeof(int64_t));

  /* unsynced: nothing is forgotten by time */
  mtci_session_resync_time(&s);
  mtci_sess_seen_expire(&s, NOW_MS);
  CHECK_EQ_INT(s.n_seen, 1002);
  s.time_synced = 1;

  mtci_sess_seen_expire(&s, NOW_MS);
  CHECK_EQ_INT(s.n_seen, 2);
  CHECK_EQ_INT(mtci_sess_seen_bytes(&s), empty_bytes);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS - keep - 60000, 999)), -1);
  CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS - keep - 60000, 7)), MTC_ERR_SESSION_DUPLICATE);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, recent), 1);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, recent - 4), -1); /* below the lowest kept */
  CHECK_EQ_INT(mtci_sess_seen_state(&s, recent + 4), 0);  /* in the window, new */
  CHECK_EQ_INT(mtci_sess_seen_add(&s, recent + 4), 0);

  /* much later: all are old, the newest stays (the window keeps a bound) */
  mtci_sess_seen_expire(&s, NOW_MS + 10 * keep);
  CHECK_EQ_INT(s.n_seen, 1);
  CHECK_EQ_INT(mtci_sess_seen_max(&s), newest);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, newest), 1);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, recent + 4), -1);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, newest + 4), 0);
  mtci_session_free(&s);
}

/* The highest id (msgs_state_req's "too high" bound) of an empty window. */
TEST(max_of_empty_and_freed) {
  uint64_t rng = 6;
  mtci_session s;
  CHECK_EQ_INT(open_session(&s, &rng), 0);
  CHECK_EQ_INT(mtci_sess_seen_max(&s), 0);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, 0)), 0);
  mtci_session_free(&s);
  /* a freed (zeroed) session: no window, nothing seen, nothing added */
  CHECK_EQ_INT(mtci_sess_seen_bytes(&s), 0);
  CHECK_EQ_INT(mtci_sess_seen_state(&s, id_at(NOW_MS, 0)), 0);
  CHECK_EQ_INT(mtci_sess_seen_add(&s, id_at(NOW_MS, 0)), MTC_ERR_SESSION_DUPLICATE);
}

TEST_MAIN("session_seen", CASE(wrap_around), CASE(eviction_and_min_bound),
          CASE(full_without_forgetting), CASE(random_against_model), CASE(time_expiry_and_shrink),
          CASE(max_of_empty_and_freed))
