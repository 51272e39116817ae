/*
 * Racing of discovery sources (see race.h). Pure: time is a parameter.
 */
#include "discovery/race.h"

#include <string.h>

mtci_race_outcome mtci_race_outcome_of(int err) {
  switch (err) {
  case 0: return MTCI_OUT_OK;
  case MTC_ERR_DISCOVERY_CANCELLED: return MTCI_OUT_CANCELLED;
  case MTC_ERR_DISCOVERY_TIMEOUT:
  case MTC_ERR_IO_TIMED_OUT: return MTCI_OUT_TIMEOUT;
  case MTC_ERR_DOH_HTTP_STATUS: return MTCI_OUT_HTTP_STATUS;
  case MTC_ERR_DOH_STATUS:
  case MTC_ERR_DOH_NO_TXT:
  case MTC_ERR_DNS_NOT_FOUND:
  case MTC_ERR_DNS_NO_DATA: return MTCI_OUT_NOT_FOUND;
  case MTC_ERR_DOH_TOO_LARGE:
  case MTC_ERR_DOH_TOO_MANY:
  case MTC_ERR_DNS_TOO_MANY:
  case MTC_ERR_SCONF_PARTS: return MTCI_OUT_OVERSIZED;
  case MTC_ERR_DOH_JSON:
  case MTC_ERR_DOH_FORMAT:
  case MTC_ERR_SCONF_LENGTH:
  case MTC_ERR_SCONF_BASE64:
  case MTC_ERR_SCONF_INNER_LENGTH:
  case MTC_ERR_SCONF_CONSTRUCTOR:
  case MTC_ERR_SCONF_TRAILING:
  case MTC_ERR_SCONF_VECTOR:
  case MTC_ERR_SCONF_MALFORMED: return MTCI_OUT_MALFORMED;
  case MTC_ERR_SCONF_RSA: return MTCI_OUT_BAD_SIGNATURE;
  case MTC_ERR_SCONF_HASH: return MTCI_OUT_BAD_HASH;
  case MTC_ERR_SCONF_EXPIRED: return MTCI_OUT_EXPIRED;
  case MTC_ERR_SCONF_FUTURE: return MTCI_OUT_FUTURE;
  case MTC_ERR_SCONF_NO_RULES:
  case MTC_ERR_SCONF_BAD_DC:
  case MTC_ERR_SCONF_BAD_IP:
  case MTC_ERR_SCONF_BAD_PORT:
  case MTC_ERR_SCONF_BAD_SECRET: return MTCI_OUT_BAD_CONTENT;
  default: return MTCI_OUT_NETWORK; /* connect, TLS, HTTP, DNS server, NOMEM... */
  }
}

const char *mtci_race_outcome_name(mtci_race_outcome o) {
  switch (o) {
  case MTCI_OUT_OK: return "ok";
  case MTCI_OUT_CANCELLED: return "cancelled";
  case MTCI_OUT_TIMEOUT: return "timeout";
  case MTCI_OUT_NETWORK: return "network error";
  case MTCI_OUT_HTTP_STATUS: return "http status";
  case MTCI_OUT_NOT_FOUND: return "not found";
  case MTCI_OUT_OVERSIZED: return "oversized";
  case MTCI_OUT_MALFORMED: return "malformed";
  case MTCI_OUT_BAD_SIGNATURE: return "bad signature";
  case MTCI_OUT_BAD_HASH: return "bad hash";
  case MTCI_OUT_EXPIRED: return "expired";
  case MTCI_OUT_FUTURE: return "future";
  case MTCI_OUT_BAD_CONTENT: return "bad content";
  case MTCI_OUT_COUNT: break;
  }
  return "?";
}

mtci_race_class mtci_race_outcome_class(mtci_race_outcome o) {
  switch (o) {
  case MTCI_OUT_OK: return MTCI_CLASS_OK;
  case MTCI_OUT_CANCELLED: return MTCI_CLASS_CANCELLED;
  case MTCI_OUT_TIMEOUT:
  case MTCI_OUT_NETWORK:
  case MTCI_OUT_HTTP_STATUS:
  case MTCI_OUT_NOT_FOUND: return MTCI_CLASS_FAIL;
  default: return MTCI_CLASS_INVALID;
  }
}

const char *mtci_source_kind_name(mtci_source_kind k) {
  switch (k) {
  case MTCI_SOURCE_GOOGLE: return "google";
  case MTCI_SOURCE_CLOUDFLARE: return "cloudflare";
  case MTCI_SOURCE_DNS: return "dns";
  case MTCI_SOURCE_KINDS: break;
  }
  return "?";
}

uint64_t mtci_race_counters_class(const mtci_race_counters *c, mtci_source_kind k,
                                  mtci_race_class cls) {
  if (!c || (unsigned)k >= MTCI_SOURCE_KINDS) return 0;
  uint64_t sum = 0;
  for (int o = 0; o < MTCI_OUT_COUNT; o++)
    if (mtci_race_outcome_class((mtci_race_outcome)o) == cls) sum += c->outcome[k][o];
  return sum;
}

/* How far a source got (see race.h): higher = more telling. */
static int rank(mtci_race_outcome o) {
  switch (o) {
  case MTCI_OUT_EXPIRED:
  case MTCI_OUT_FUTURE:
  case MTCI_OUT_BAD_CONTENT: return 7;
  case MTCI_OUT_BAD_HASH:
  case MTCI_OUT_BAD_SIGNATURE: return 6;
  case MTCI_OUT_MALFORMED:
  case MTCI_OUT_OVERSIZED: return 5;
  case MTCI_OUT_NOT_FOUND: return 4;
  case MTCI_OUT_HTTP_STATUS: return 3;
  case MTCI_OUT_NETWORK: return 2;
  case MTCI_OUT_TIMEOUT: return 1;
  default: return 0;
  }
}

static void count(mtci_race *r, size_t i, mtci_race_outcome o) {
  if (r->ctr) r->ctr->outcome[r->src[i].kind][o]++;
}

void mtci_race_free(mtci_race *r) {
  if (!r) return;
  mtci_simple_config_free(&r->result);
  mtci_zeroize(r, sizeof *r);
}

int mtci_race_begin(mtci_race *r, const mtci_race_config *cfg, mtci_race_counters *ctr,
                    int64_t now_ms) {
  if (!r || !cfg) return MTC_ERR_INVALID_ARG;
  mtci_race_free(r);
  r->winner = -1;
  if (!cfg->key || !cfg->kinds || cfg->n == 0 || cfg->n > MTCI_RACE_MAX_SOURCES ||
      cfg->stagger_ms < 0 || cfg->total_timeout_ms <= 0 || cfg->phone_len > MTCI_RACE_MAX_PHONE ||
      (cfg->phone_len && !cfg->phone))
    return MTC_ERR_INVALID_ARG;
  for (size_t i = 0; i < cfg->n; i++)
    if ((unsigned)cfg->kinds[i] >= MTCI_SOURCE_KINDS) return MTC_ERR_INVALID_ARG;
  r->n = cfg->n;
  for (size_t i = 0; i < cfg->n; i++)
    r->src[i].kind = cfg->kinds[i];
  r->key = *cfg->key;
  if (cfg->phone_len) memcpy(r->phone, cfg->phone, cfg->phone_len);
  r->phone_len = cfg->phone_len;
  r->stagger_ms = cfg->stagger_ms;
  r->next = 0;
  r->next_start_ms = now_ms;
  r->deadline_ms = now_ms + cfg->total_timeout_ms;
  r->ctr = ctr;
  r->state = MTCI_RACE_RUNNING;
  return 0;
}

/* End the race: the running sources stop with outcome o (counted), and the
 * caller is told to abort them. err: the final error (0 if someone won). */
static void finish(mtci_race *r, int err, mtci_race_outcome stop_outcome, int stop_err) {
  for (size_t i = 0; i < r->n; i++) {
    mtci_race_source *s = &r->src[i];
    if (s->state != MTCI_RSRC_RUNNING) continue;
    s->state = MTCI_RSRC_STOPPED;
    s->outcome = stop_outcome;
    s->err = stop_err;
    s->need_abort = 1;
    count(r, i, stop_outcome);
  }
  r->state = MTCI_RACE_DONE;
  r->err = err;
}

/* The most telling error of the failed/stopped sources (ties: lowest index,
 * which is the first started), or fallback. */
static int best_error(const mtci_race *r, int fallback) {
  int best = -1, err = fallback;
  for (size_t i = 0; i < r->n; i++) {
    const mtci_race_source *s = &r->src[i];
    if (s->state != MTCI_RSRC_FAILED && s->state != MTCI_RSRC_STOPPED) continue;
    int k = rank(s->outcome);
    if (k > best && s->err) {
      best = k;
      err = s->err;
    }
  }
  return err;
}

/* After a failure: start the next source now; end if nothing is left. */
static void after_failure(mtci_race *r, int64_t now_ms) {
  if (r->next < r->n) {
    if (r->next_start_ms > now_ms) r->next_start_ms = now_ms;
    return;
  }
  for (size_t i = 0; i < r->n; i++)
    if (r->src[i].state == MTCI_RSRC_RUNNING) return;
  finish(r, best_error(r, MTC_ERR_DISCOVERY_TIMEOUT), MTCI_OUT_CANCELLED, 0);
}

int mtci_race_take_start(mtci_race *r, int64_t now_ms) {
  if (!r || r->state != MTCI_RACE_RUNNING || r->next >= r->n || now_ms < r->next_start_ms)
    return -1;
  size_t i = r->next++;
  r->src[i].state = MTCI_RSRC_RUNNING;
  if (r->ctr) r->ctr->started[r->src[i].kind]++;
  r->next_start_ms = now_ms + r->stagger_ms;
  return (int)i;
}

static int fail_source(mtci_race *r, size_t i, int err, int64_t now_ms) {
  mtci_race_outcome o = mtci_race_outcome_of(err);
  if (o == MTCI_OUT_OK || o == MTCI_OUT_CANCELLED) {
    o = MTCI_OUT_NETWORK; /* a failure must not count as success or as our own cancel */
    err = MTC_ERR_INTERNAL;
  }
  mtci_race_source *s = &r->src[i];
  s->state = MTCI_RSRC_FAILED;
  s->outcome = o;
  s->err = err;
  count(r, i, o);
  after_failure(r, now_ms);
  return (int)o;
}

int mtci_race_on_failure(mtci_race *r, size_t i, int err, int64_t now_ms) {
  if (!r || r->state != MTCI_RACE_RUNNING || i >= r->n || r->src[i].state != MTCI_RSRC_RUNNING)
    return MTC_ERR_INVALID_ARG;
  return fail_source(r, i, err, now_ms);
}

int mtci_race_on_answer(mtci_race *r, size_t i, const mtci_sconf_part *parts, size_t n_parts,
                        int64_t now_unix_s, int64_t now_ms) {
  if (!r || r->state != MTCI_RACE_RUNNING || i >= r->n || r->src[i].state != MTCI_RSRC_RUNNING)
    return MTC_ERR_INVALID_ARG;
  int rc = mtci_simple_config_decode(&r->key, parts, n_parts, now_unix_s, r->phone, r->phone_len,
                                     &r->result);
  if (rc != 0) {
    mtci_simple_config_free(&r->result); /* nothing of a rejected answer stays */
    return fail_source(r, i, rc, now_ms);
  }
  mtci_race_source *s = &r->src[i];
  s->state = MTCI_RSRC_WON;
  s->outcome = MTCI_OUT_OK;
  s->err = 0;
  count(r, i, MTCI_OUT_OK);
  r->winner = (int)i;
  finish(r, 0, MTCI_OUT_CANCELLED, 0);
  return MTCI_OUT_OK;
}

void mtci_race_on_timeout(mtci_race *r, int64_t now_ms) {
  if (!r || r->state != MTCI_RACE_RUNNING || now_ms < r->deadline_ms) return;
  /* Running sources are cut: they count as timeouts and compete for the
   * final error like any failure. */
  for (size_t i = 0; i < r->n; i++) {
    mtci_race_source *s = &r->src[i];
    if (s->state != MTCI_RSRC_RUNNING) continue;
    s->state = MTCI_RSRC_STOPPED;
    s->outcome = MTCI_OUT_TIMEOUT;
    s->err = MTC_ERR_DISCOVERY_TIMEOUT;
    s->need_abort = 1;
    count(r, i, MTCI_OUT_TIMEOUT);
  }
  finish(r, best_error(r, MTC_ERR_DISCOVERY_TIMEOUT), MTCI_OUT_TIMEOUT, MTC_ERR_DISCOVERY_TIMEOUT);
}

void mtci_race_cancel(mtci_race *r) {
  if (!r || r->state != MTCI_RACE_RUNNING) return;
  finish(r, MTC_ERR_DISCOVERY_CANCELLED, MTCI_OUT_CANCELLED, 0);
}

int mtci_race_take_abort(mtci_race *r) {
  if (!r || r->state != MTCI_RACE_DONE) return -1;
  for (size_t i = 0; i < r->n; i++)
    if (r->src[i].need_abort) {
      r->src[i].need_abort = 0;
      return (int)i;
    }
  return -1;
}

int64_t mtci_race_expiry(const mtci_race *r) {
  if (!r || r->state != MTCI_RACE_RUNNING) return -1;
  int64_t t = r->deadline_ms;
  if (r->next < r->n && r->next_start_ms < t) t = r->next_start_ms;
  return t;
}

int mtci_race_done(const mtci_race *r) { return r && r->state == MTCI_RACE_DONE; }

int mtci_race_error(const mtci_race *r) {
  if (!r) return MTC_ERR_INVALID_ARG;
  return r->state == MTCI_RACE_DONE ? r->err : MTC_ERR_DISCOVERY_BUSY;
}

const mtci_simple_config *mtci_race_result(const mtci_race *r) {
  return r && r->state == MTCI_RACE_DONE && r->winner >= 0 ? &r->result : NULL;
}
