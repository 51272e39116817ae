/*
 * Persistent state of the MTContext (issue "The MTContext", Persistence):
 * auth keys, salts, time offset, address sets with health, main DC,
 * authorized DCs, and the last endpoint discovery.
 *
 * Two halves:
 *   - src/store.c (pure): mtci_state <-> JSON text. Every field is validated
 *     on load AND before save, so the library never writes a file it would
 *     later refuse.
 *   - src/store_os.c (shell): atomic file write (temp file in the same
 *     directory, 0600, fsync, rename, fsync of the directory) and a careful
 *     read (size cap, permission check).
 *
 * The state is plain data of fixed capacity (no hidden allocations): it can
 * be copied with memcpy, and mtci_state_clear() zeroizes it.
 *
 * ---- JSON form, version 1 ----------------------------------------------
 *
 *   {
 *     "format": "mtconn-state",            marker: anything else is refused
 *     "version": 1,                         other values: MTC_ERR_STORE_VERSION
 *     "test_dcs": false,
 *     "main_dc": 2,                         0 = not known yet
 *     "time_offset_ms": -1500,
 *     "discovered": {                       optional
 *       "source": "getConfig", "fetched_at": 1700000000, "expires_at": 1700003600 },
 *     "dcs": [ {
 *       "dc_id": 2,
 *       "authorized": true,
 *       "perm_key": {                       optional: absent = no perm key
 *         "key": "<base64, 344 chars>", "key_id": "<u64 decimal>", "created": 1700000000 },
 *       "temp_key": {                       optional: absent = no temp key
 *         "key": "...", "key_id": "...", "expires_at": 1700086400, "bound": true },
 *       "salt": "<i64 decimal>",
 *       "salt_valid_until": 1700001800,
 *       "future_salts": [ { "valid_since": 1, "valid_until": 2, "salt": "<i64 decimal>" } ],
 *       "addrs": [ {
 *         "ip": "149.154.167.51", "port": 443, "flags": 16,
 *         "secret": "<hex>",                optional: absent = none
 *         "last_success_ms": 0, "last_failure_ms": 0, "consecutive_failures": 0 } ]
 *     } ]
 *   }
 *
 * Encoding rules:
 *   - auth keys: standard base64 with '=' padding, canonical, exactly 256
 *     bytes after decoding;
 *   - key ids and salts: decimal STRINGS (a JSON number past 2^53 loses
 *     precision in many readers); key ids unsigned, salts signed; no '+',
 *     no leading zeros, no "-0";
 *   - MTProxy secrets: hex (written lowercase, read in either case);
 *   - every other integer is a JSON number within +-(2^53 - 1), so any JSON
 *     reader keeps it exact; booleans are JSON true/false.
 *
 * Validation on load (each failure names the field, e.g.
 * "dcs[1].addrs[3].port: must be 1..65535", and never prints key material):
 *   - the text: at most MTCI_STATE_MAX_JSON bytes (else TOO_LARGE), one JSON
 *     object, nothing after it but whitespace, no duplicate keys, valid UTF-8;
 *   - every field listed above is required except perm_key, temp_key,
 *     secret and discovered; wrong JSON types are refused; unknown fields
 *     anywhere are ignored (forward compatibility within version 1), an
 *     unknown version is refused;
 *   - dc_id 1..999, unique (ids >= 1000 are temporary simple-config DCs,
 *     never persisted; test DCs keep their plain ids, test_dcs says which
 *     cluster); main_dc 0 or 1..999;
 *   - key_id must equal SHA1(key)[12:20] read little-endian: this catches a
 *     truncated or edited key; a temp key needs expires_at > 0; "bound"
 *     needs a perm key; "authorized" needs a perm key;
 *   - counts within capacity (16 DCs, 16 addresses, 8 future salts);
 *     future salt valid_since <= valid_until;
 *   - ip: an IPv4 dotted quad or an IPv6 literal (no brackets, no zone),
 *     and the ipv6 flag set exactly for IPv6 literals; port 1..65535; flags
 *     only the six dcOption bits below; secret a valid MTProxy secret (16
 *     bytes, 0xdd + 16, or 0xee + 16 + domain, at most 199 bytes);
 *   - times (unix s or ms) 0..2^53-1; time_offset_ms within +-(2^53-1);
 *     consecutive_failures 0..2^32-1; discovered.source 1..31 characters of
 *     [A-Za-z0-9._-].
 *
 * Policy for the context (tested in tests/test_store.c): a load that fails
 * with anything other than MTC_ERR_STORE_NOT_FOUND leaves the file exactly
 * as it was, and the context must then refuse to start (or run without
 * persistence) rather than save over it: a corrupt file is the user's data
 * until the user decides. MTC_ERR_STORE_NOT_FOUND means a fresh start.
 */
#ifndef MTCI_STORE_H
#define MTCI_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "mtconn/mtconn.h"

#define MTCI_STATE_VERSION 1
#define MTCI_STATE_FORMAT "mtconn-state"
#define MTCI_STATE_MAX_DCS 16
#define MTCI_STATE_MAX_ADDRS 16
#define MTCI_STATE_MAX_FUTURE_SALTS 8
#define MTCI_STATE_KEY_LEN 256        /* = MTCI_AUTH_KEY_LEN */
#define MTCI_STATE_IP_LEN 46          /* INET6_ADDRSTRLEN: 45 characters + NUL */
#define MTCI_STATE_SECRET_MAX 199     /* = MTCI_PROXY_SECRET_MAX */
#define MTCI_STATE_SOURCE_LEN 32      /* discovered.source: 31 characters + NUL */
#define MTCI_STATE_MAX_DC_ID 999      /* persisted DC ids are 1..999 */
#define MTCI_STATE_MAX_JSON (1u << 20) /* 1 MiB: larger text is refused */
#define MTCI_STATE_SAFE_INT INT64_C(9007199254740991) /* 2^53 - 1 */

/* mtci_state_addr.flags: the dcOption flag bits (PROTOCOL.md §2.2). */
enum {
  MTCI_STATE_ADDR_IPV6 = 1u << 0,           /* the ip is an IPv6 literal */
  MTCI_STATE_ADDR_MEDIA_ONLY = 1u << 1,     /* for file upload/download only */
  MTCI_STATE_ADDR_TCPO_ONLY = 1u << 2,      /* obfuscated TCP only */
  MTCI_STATE_ADDR_CDN = 1u << 3,            /* CDN DC */
  MTCI_STATE_ADDR_STATIC = 1u << 4,         /* use when connecting through a proxy */
  MTCI_STATE_ADDR_THIS_PORT_ONLY = 1u << 5, /* connect using only this port */
  MTCI_STATE_ADDR_ALL = (1u << 6) - 1
};

/* One endpoint of a DC, with what we learnt about its health. */
typedef struct mtci_state_addr {
  char ip[MTCI_STATE_IP_LEN];   /* IPv4 or IPv6 literal, NUL-terminated, rest zero */
  uint16_t port;                /* 1..65535 */
  unsigned flags;               /* MTCI_STATE_ADDR_* */
  uint8_t secret[MTCI_STATE_SECRET_MAX]; /* MTProxy-style secret (dcOption.secret) */
  size_t secret_len;            /* 0 = none */
  int64_t last_success_ms;      /* unix ms of the last successful connect, 0 = never */
  int64_t last_failure_ms;      /* unix ms of the last failed connect, 0 = never */
  uint32_t consecutive_failures; /* failed connects since the last success */
} mtci_state_addr;

/* A server salt announced in future_salts. */
typedef struct mtci_state_future_salt {
  int64_t valid_since;          /* unix s */
  int64_t valid_until;          /* unix s, >= valid_since */
  int64_t salt;
} mtci_state_future_salt;

/* Everything persisted about one DC. */
typedef struct mtci_state_dc {
  int dc_id;                    /* 1..999 (test DCs too: see mtci_state.test_dcs) */
  int authorized;               /* 1: the user is authorized with this DC's perm key
                                   (signIn on the home DC, importAuthorization elsewhere) */
  /* Permanent auth key. */
  int has_perm;
  uint8_t perm_key[MTCI_STATE_KEY_LEN];
  uint64_t perm_key_id;         /* SHA1(perm_key)[12:20] as a little-endian u64 */
  int64_t perm_created;         /* unix s when the key was made, 0 unknown */
  /* Temporary auth key (PFS). */
  int has_temp;
  uint8_t temp_key[MTCI_STATE_KEY_LEN];
  uint64_t temp_key_id;         /* SHA1(temp_key)[12:20] as a little-endian u64 */
  int64_t temp_expires_at;      /* unix s (expires_at sent in bind), > 0 */
  int temp_bound;               /* 1: bound to the perm key (auth.bindTempAuthKey done) */
  /* Server salt of the key in use (the temp key if there is one). */
  int64_t salt;
  int64_t salt_valid_until;     /* unix s, 0 unknown */
  int n_future_salts;           /* 0..MTCI_STATE_MAX_FUTURE_SALTS */
  mtci_state_future_salt future_salts[MTCI_STATE_MAX_FUTURE_SALTS];
  /* Address set, in the context's preference order. */
  int n_addrs;                  /* 0..MTCI_STATE_MAX_ADDRS */
  mtci_state_addr addrs[MTCI_STATE_MAX_ADDRS];
} mtci_state_dc;

/* Where the current address sets came from (endpoint discovery). */
typedef struct mtci_state_discovered {
  int present;                  /* 0: no discovery recorded (the block is omitted) */
  char source[MTCI_STATE_SOURCE_LEN]; /* e.g. "google", "cloudflare", "getConfig" */
  int64_t fetched_at;           /* unix s */
  int64_t expires_at;           /* unix s (config.expires), 0 unknown */
} mtci_state_discovered;

typedef struct mtci_state {
  int version;                  /* MTCI_STATE_VERSION */
  int test_dcs;                 /* 1: these DCs are the test cluster */
  int main_dc;                  /* home DC, 0 = not known yet */
  int64_t time_offset_ms;       /* server time - local time */
  mtci_state_discovered discovered;
  int n_dcs;                    /* 0..MTCI_STATE_MAX_DCS */
  mtci_state_dc dcs[MTCI_STATE_MAX_DCS];
} mtci_state;

/* An empty state: everything zero, version = MTCI_STATE_VERSION. */
void mtci_state_init(mtci_state *st);
/* Zeroize the whole state (keys included). NULL-safe. */
void mtci_state_clear(mtci_state *st);

/* The entry for dc_id, or NULL. */
mtci_state_dc *mtci_state_find_dc(mtci_state *st, int dc_id);
/* The entry for dc_id, appended (zeroed, dc_id set) if missing. NULL when
 * dc_id is outside 1..999 or the state already holds MTCI_STATE_MAX_DCS. */
mtci_state_dc *mtci_state_add_dc(mtci_state *st, int dc_id);

/*
 * Check every rule listed at the top of this file on a state in memory.
 * Returns 0 or MTC_ERR_STORE_CORRUPT with msg (if msg_len > 0) naming the
 * field. msg may be NULL.
 */
int mtci_state_validate(const mtci_state *st, char *msg, size_t msg_len);

/*
 * Serialize st (validated first: an invalid state gives MTC_ERR_INVALID_ARG
 * and the message, and no text). On success *out is a malloc'ed,
 * NUL-terminated JSON text of *out_len bytes (2-space indentation, fixed
 * field order, final newline); free it with
 * mtci_state_json_free(*out, *out_len + 1), which zeroizes it (it holds the
 * keys). MTC_ERR_NOMEM if allocation fails.
 */
int mtci_state_to_json(const mtci_state *st, char **out, size_t *out_len, char *msg,
                       size_t msg_len);
/* Zeroize and free a text from mtci_state_to_json (or any key-bearing
 * heap buffer of len bytes). NULL-safe. */
void mtci_state_json_free(char *text, size_t len);

/*
 * Parse and validate text[0..len) (need not be NUL-terminated). Returns 0
 * and fills *st, or one of
 *   MTC_ERR_STORE_TOO_LARGE  len > MTCI_STATE_MAX_JSON
 *   MTC_ERR_STORE_VERSION    the format marker is right but version is not 1
 *   MTC_ERR_STORE_CORRUPT    anything else: malformed JSON, a missing field,
 *                            a wrong type or a value that fails validation
 *   MTC_ERR_NOMEM            the JSON parser ran out of memory
 * with msg naming the reason; then *st is zeroized. Strings of the parse
 * tree are zeroized before it is freed. (jansson's lexer keeps partial
 * copies of strings in scratch buffers it frees without wiping; jansson's
 * allocator hooks are process-global, so the library does not replace them.
 * A host that wants those wiped too can install zeroizing functions with
 * json_set_alloc_funcs.)
 */
int mtci_state_from_json(const char *text, size_t len, mtci_state *st, char *msg,
                         size_t msg_len);

/* ---- files (src/store_os.c, shell) --------------------------------------- */

/*
 * Atomically replace the file at path with data[0..len):
 *   1. mkstemp "<path>.tmp.XXXXXX" in the same directory (so rename stays on
 *      one file system), close-on-exec;
 *   2. fchmod 0600 before any byte is written;
 *   3. write everything (EINTR and short writes retried), fsync, close;
 *   4. rename over path, then fsync the directory so the rename is durable.
 * On any failure before the rename the temporary file is removed and the old
 * file is untouched; returns MTC_ERR_STORE_IO with msg naming the step and
 * the errno text (e.g. "rename to the state file failed: Is a directory").
 * A failing directory fsync after the rename is also MTC_ERR_STORE_IO (the
 * new content is in place but may not survive a power loss); EINVAL from
 * file systems that cannot sync directories counts as success.
 * A symlink at path is replaced by the file, not followed.
 */
int mtci_store_save_file(const char *path, const char *data, size_t len, char *msg,
                         size_t msg_len);

/*
 * Read the whole file at path into a malloc'ed buffer (*data, NUL-terminated,
 * *len bytes without the NUL; free with mtci_state_json_free(*data, *len + 1)).
 * Returns 0 or
 *   MTC_ERR_STORE_NOT_FOUND    no file (ENOENT): a fresh start;
 *   MTC_ERR_STORE_PERMISSIONS  the file is readable or writable by group or
 *                              others (mode & 077), like ssh with private
 *                              keys: the auth keys in it grant full account
 *                              access; fix with chmod 600;
 *   MTC_ERR_STORE_TOO_LARGE    over MTCI_STATE_MAX_JSON bytes;
 *   MTC_ERR_STORE_IO           any other failure (not a regular file, a
 *                              symlink to a missing file, EACCES, read
 *                              error), msg says which;
 *   MTC_ERR_NOMEM.
 * Never writes to the file.
 */
int mtci_store_load_file(const char *path, char **data, size_t *len, char *msg, size_t msg_len);

/* Format a message into msg (may be NULL / 0) and return code: the error
 * helper of store.c and store_os.c. */
int mtci_store_failf(int code, char *msg, size_t msg_len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* mtci_state_to_json + mtci_store_save_file; the text is zeroized after. */
int mtci_store_save(const char *path, const mtci_state *st, char *msg, size_t msg_len);
/* mtci_store_load_file + mtci_state_from_json; the text is zeroized after.
 * On failure *st is zeroized (after MTC_ERR_STORE_NOT_FOUND, start from
 * mtci_state_init) and the file is left exactly as it was. */
int mtci_store_load(const char *path, mtci_state *st, char *msg, size_t msg_len);

/*
 * Fault injection for tests only: when set to one of these steps, the next
 * mtci_store_save_file fails at that step as if the system call had failed
 * with EIO, then resets it to MTCI_STORE_FAULT_NONE. Not thread-safe.
 */
enum {
  MTCI_STORE_FAULT_NONE = 0,
  MTCI_STORE_FAULT_WRITE,
  MTCI_STORE_FAULT_FSYNC,
  MTCI_STORE_FAULT_CLOSE,
  MTCI_STORE_FAULT_RENAME,
  MTCI_STORE_FAULT_DIR_FSYNC
};
extern int mtci_store_fault_step;

#endif /* MTCI_STORE_H */
