/*
 * The racing policy of endpoint discovery (DESIGN.md §4 "the DoH providers
 * are raced and the loser is cancelled"; PROTOCOL.md §1.12 scheduling).
 * Pure: the caller (discovery_os.c) does the requests and reports what came
 * back; the race decides what starts when, who wins, what is cancelled, and
 * counts every request by source and outcome.
 *
 * Sources are an ordered list (e.g. google#0, cloudflare#0, dns). The race:
 *
 *   t0            source 0 starts
 *   t0 + stagger  source 1 starts if nothing has won yet, and so on: each
 *                 start schedules the next one stagger_ms later (stagger 0:
 *                 all start together)
 *   a source fails or its answer is invalid
 *                 -> the next pending source starts at once (fall-through)
 *                    instead of waiting for its stagger slot
 *   a source's answer decodes and validates (simple_config.h)
 *                 -> it wins; every other running source is cancelled; no
 *                    pending source starts
 *   every started source has failed and none is pending
 *                 -> the race ends with the most telling error (below)
 *   t0 + total_timeout
 *                 -> running sources are stopped (outcome TIMEOUT) and the
 *                    race ends with the most telling error seen, which is
 *                    MTC_ERR_DISCOVERY_TIMEOUT if nothing else went wrong
 *
 * An invalid answer (tampered, expired, malformed, oversized, wrong key...)
 * changes nothing but its counter: the result only ever holds the winning
 * answer's decoded config, and an invalid answer never stops or delays the
 * other sources.
 *
 * The final error when nothing won is the one of the source that got
 * furthest, by outcome rank (ties: the first seen):
 *   EXPIRED / FUTURE / BAD_CONTENT (authentic but unusable)
 *   > BAD_HASH / BAD_SIGNATURE > MALFORMED / OVERSIZED > NOT_FOUND
 *   > HTTP_STATUS > NETWORK > TIMEOUT.
 * So two expired answers end with MTC_ERR_SCONF_EXPIRED, two hung servers
 * with MTC_ERR_DISCOVERY_TIMEOUT.
 *
 * Budget: with one good source, at most two requests are made as long as
 * the good source answers within one stagger period of its start (the
 * source before it may be running too, and is then cancelled).
 */
#ifndef MTCI_DISCOVERY_RACE_H
#define MTCI_DISCOVERY_RACE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "discovery/simple_config.h"
#include "mtconn/mtconn.h"

#define MTCI_RACE_MAX_SOURCES 16
#define MTCI_RACE_MAX_PHONE 64

typedef enum mtci_source_kind {
  MTCI_SOURCE_GOOGLE = 0,     /* Google JSON DoH */
  MTCI_SOURCE_CLOUDFLARE = 1, /* Cloudflare (Mozilla) JSON DoH */
  MTCI_SOURCE_DNS = 2,        /* plain DNS TXT over c-ares */
  MTCI_SOURCE_KINDS = 3
} mtci_source_kind;

/* What became of one request. */
typedef enum mtci_race_outcome {
  MTCI_OUT_OK = 0,        /* valid config: this source won */
  MTCI_OUT_CANCELLED,     /* stopped because another source won, or by the caller */
  MTCI_OUT_TIMEOUT,       /* no answer in time (request or whole race) */
  MTCI_OUT_NETWORK,       /* connect, TLS, HTTP protocol or DNS server failure */
  MTCI_OUT_HTTP_STATUS,   /* HTTP status other than 200 */
  MTCI_OUT_NOT_FOUND,     /* NXDOMAIN / DNS status != 0 / no TXT record */
  MTCI_OUT_OVERSIZED,     /* body over 64 KiB, too many TXT records, a record too long */
  MTCI_OUT_MALFORMED,     /* JSON, TXT text, base64 or TL layout wrong */
  MTCI_OUT_BAD_SIGNATURE, /* ciphertext not below the RSA modulus (wrong key) */
  MTCI_OUT_BAD_HASH,      /* SHA-256 check failed: tampered or wrong key */
  MTCI_OUT_EXPIRED,       /* authentic, but expired */
  MTCI_OUT_FUTURE,        /* authentic, but dated in the future */
  MTCI_OUT_BAD_CONTENT,   /* authentic, but no usable rule/address (dc, ip, port, secret) */
  MTCI_OUT_COUNT
} mtci_race_outcome;

/* Coarse classes for counters: ok / fail (no usable answer arrived) /
 * invalid (an answer arrived and was rejected) / cancelled. */
typedef enum mtci_race_class {
  MTCI_CLASS_OK = 0,
  MTCI_CLASS_FAIL = 1,
  MTCI_CLASS_INVALID = 2,
  MTCI_CLASS_CANCELLED = 3
} mtci_race_class;

/* Cumulative over races (the caller owns it and may reset it). */
typedef struct mtci_race_counters {
  uint64_t started[MTCI_SOURCE_KINDS];                 /* requests made */
  uint64_t outcome[MTCI_SOURCE_KINDS][MTCI_OUT_COUNT]; /* how they ended */
} mtci_race_counters;

typedef enum mtci_race_src_state {
  MTCI_RSRC_PENDING = 0,
  MTCI_RSRC_RUNNING,
  MTCI_RSRC_FAILED,
  MTCI_RSRC_WON,
  MTCI_RSRC_STOPPED /* cancelled or cut by the race's deadline */
} mtci_race_src_state;

typedef struct mtci_race_source {
  mtci_source_kind kind;
  mtci_race_src_state state;
  mtci_race_outcome outcome; /* valid once not PENDING/RUNNING */
  int err;                   /* the error behind the outcome (0 for OK/CANCELLED) */
  int need_abort;            /* stopped while running: the caller must abort its request */
} mtci_race_source;

typedef enum mtci_race_state {
  MTCI_RACE_IDLE = 0,
  MTCI_RACE_RUNNING,
  MTCI_RACE_DONE
} mtci_race_state;

typedef struct mtci_race_config {
  const mtci_source_kind *kinds; /* in start order */
  size_t n;                      /* 1..MTCI_RACE_MAX_SOURCES */
  int64_t stagger_ms;            /* >= 0 */
  int64_t total_timeout_ms;      /* > 0 */
  const mtci_rsa_key *key;       /* simple-config key (copied) */
  const char *phone;             /* may be NULL; copied (digits are picked by the decoder) */
  size_t phone_len;              /* <= MTCI_RACE_MAX_PHONE */
} mtci_race_config;

typedef struct mtci_race {
  mtci_race_state state;
  mtci_race_source src[MTCI_RACE_MAX_SOURCES];
  size_t n;
  size_t next;           /* next source to start */
  int64_t next_start_ms; /* when src[next] may start */
  int64_t deadline_ms;   /* end of the whole race */
  int64_t stagger_ms;
  int err;                   /* final error (0 when a source won) */
  int winner;                /* index, or -1 */
  mtci_simple_config result; /* the winner's config (zeroized otherwise) */
  mtci_rsa_key key;
  char phone[MTCI_RACE_MAX_PHONE];
  size_t phone_len;
  mtci_race_counters *ctr; /* may be NULL */
} mtci_race;

/*
 * Start a race at now_ms (zeroizes whatever r held). ctr (may be NULL)
 * receives the counts. Returns 0, MTC_ERR_INVALID_ARG (no key, n out of
 * range, a bad kind, negative stagger, timeout <= 0, phone too long).
 * Nothing starts yet: call mtci_race_take_start.
 */
int mtci_race_begin(mtci_race *r, const mtci_race_config *cfg, mtci_race_counters *ctr,
                    int64_t now_ms);

/* Zeroize (the result carries proxy secrets). NULL-safe. */
void mtci_race_free(mtci_race *r);

/*
 * The next source due at now_ms: returns its index (now RUNNING, counted
 * as started) or -1 if none is due. Call in a loop until -1.
 */
int mtci_race_take_start(mtci_race *r, int64_t now_ms);

/*
 * Source i (RUNNING) answered with TXT parts: decode and validate them
 * with the race's key, at now_unix_s (seconds, the corrected wall clock),
 * for the race's phone. Returns the outcome (MTCI_OUT_OK: i won, the race
 * is DONE), or MTC_ERR_INVALID_ARG if i is not running (the answer is
 * ignored: it came too late).
 */
int mtci_race_on_answer(mtci_race *r, size_t i, const mtci_sconf_part *parts, size_t n_parts,
                        int64_t now_unix_s, int64_t now_ms);

/*
 * Source i (RUNNING) failed with err (an MTC_ERR_* code: transport, HTTP,
 * DNS, JSON...). Returns its outcome, or MTC_ERR_INVALID_ARG if i is not
 * running.
 */
int mtci_race_on_failure(mtci_race *r, size_t i, int err, int64_t now_ms);

/* Handle the race's deadline if now_ms has reached it (no-op otherwise). */
void mtci_race_on_timeout(mtci_race *r, int64_t now_ms);

/* Stop the race (running sources: CANCELLED); err becomes
 * MTC_ERR_DISCOVERY_CANCELLED. No-op unless running. */
void mtci_race_cancel(mtci_race *r);

/*
 * After the race ends: the index of a source whose request is still in
 * flight and must be aborted (each returned once), or -1.
 */
int mtci_race_take_abort(mtci_race *r);

/* Earliest time the race wants mtci_race_take_start / mtci_race_on_timeout
 * (absolute ms), or -1 when it is not running. */
int64_t mtci_race_expiry(const mtci_race *r);

int mtci_race_done(const mtci_race *r);
/* 0 when a source won, else the final error (valid once done). */
int mtci_race_error(const mtci_race *r);
/* The winner's config, or NULL. Borrowed until the next begin/free. */
const mtci_simple_config *mtci_race_result(const mtci_race *r);

/* The outcome an error code stands for (0 -> MTCI_OUT_OK). */
mtci_race_outcome mtci_race_outcome_of(int err);
/* Short lower-case name for log lines and JSON ("bad hash", "expired"...). */
const char *mtci_race_outcome_name(mtci_race_outcome o);
mtci_race_class mtci_race_outcome_class(mtci_race_outcome o);
/* "google", "cloudflare", "dns". */
const char *mtci_source_kind_name(mtci_source_kind k);

/* Sum of kind's outcomes in class c. */
uint64_t mtci_race_counters_class(const mtci_race_counters *c, mtci_source_kind k,
                                  mtci_race_class cls);

#endif /* MTCI_DISCOVERY_RACE_H */
