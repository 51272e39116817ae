/*
 * Plain DNS lookups over c-ares + the poller (see dns.h).
 */
#include "discovery/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/time.h>

/* after sys/select.h: ares.h uses fd_set without including it */
#include <ares.h>

#include "discovery/doh_request.h"
#include "io/clock.h"

#define MAX_FDS 32
#define T_A 1
#define T_TXT 16
#define T_AAAA 28
#define C_IN 1

enum { KIND_TXT = 1, KIND_HOST = 2 };

struct dreq;
struct sub { /* one c-ares query of a lookup */
  struct dreq *r;
  int type;
  int err; /* its outcome, once back */
};

struct dreq {
  mtci_dns *d;
  uint32_t id;
  int kind;
  int pending;   /* c-ares queries not yet called back */
  int reported;  /* the user's callback ran, or was cancelled: no more calls */
  int in_submit; /* inside ares_query: hold results */
  int64_t deadline;
  struct sub sub[2];
  mtci_dns_addrs addrs;
  mtci_doh_txt *txt; /* TXT result, allocated when it arrives */
  int txt_err;
  void *fn;
  void *ud;
  struct dreq *next;
};

/* What a channel was built from: resolv.conf's identity. A rewrite in place
 * changes size or mtime, an atomic replace the inode. */
struct file_id {
  int missing; /* 0: present; else the errno of stat */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtim;
};

struct mtci_dns {
  mtci_poller *poller;
  int64_t (*now_ms)(void *);
  void *now_ud;
  ares_channel ch;
  int have_ch;
  int64_t timeout_ms;
  /* system configuration: watch resolv.conf (NULL path: explicit servers) */
  char *resolv_path;
  unsigned short system_port;
  struct file_id built_from;
  int64_t next_check; /* no stat before this (now_ms clock) */
  int stale;          /* the file changed: rebuild when no lookup is waiting */
  int busy;           /* inside c-ares or our callback loops: no rebuild now */
  uint64_t reloads;
  int deadline_id;
  int64_t deadline;
  int destroying;
  struct dreq *reqs;
  size_t n_reqs, active;
  uint32_t next_id;
  uint64_t queries;
  int fds[MAX_FDS];
  size_t n_fds;
};

/* ---- global init -------------------------------------------------------------------- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc = MTC_ERR_UNSUPPORTED;
static int g_inited;

static void global_init_once(void) {
  if (ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS) {
    g_init_rc = 0;
    g_inited = 1;
  }
}

int mtci_dns_global_init(void) {
  pthread_once(&g_once, global_init_once);
  return g_init_rc;
}

void mtci_dns_global_cleanup(void) {
  if (g_inited) ares_library_cleanup();
  g_inited = 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

static void file_id_get(const char *path, struct file_id *f) {
  struct stat st;
  memset(f, 0, sizeof *f);
  if (stat(path, &st) != 0) {
    f->missing = errno ? errno : -1;
    return;
  }
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->size = st.st_size;
  f->mtim = st.st_mtim;
}

static int file_id_same(const struct file_id *a, const struct file_id *b) {
  return a->missing == b->missing && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec;
}

static int64_t now_of(const mtci_dns *d) {
  return d->now_ms ? d->now_ms(d->now_ud) : mtci_clock_realtime_ms();
}

static int fd_index(const mtci_dns *d, int fd) {
  for (size_t i = 0; i < d->n_fds; i++)
    if (d->fds[i] == fd) return (int)i;
  return -1;
}

static void fd_forget(mtci_dns *d, int fd) {
  int i = fd_index(d, fd);
  if (i < 0) return;
  d->fds[i] = d->fds[--d->n_fds];
  (void)mtci_poller_remove(d->poller, fd);
}

static int map_status(int status) {
  switch (status) {
  case ARES_SUCCESS: return 0;
  case ARES_ENODATA: return MTC_ERR_DNS_NO_DATA;
  case ARES_ENOTFOUND: return MTC_ERR_DNS_NOT_FOUND;
  case ARES_ETIMEOUT: return MTC_ERR_DISCOVERY_TIMEOUT;
  case ARES_ENOMEM: return MTC_ERR_NOMEM;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION: return MTC_ERR_DISCOVERY_CANCELLED;
  default: return MTC_ERR_DNS_FAILED;
  }
}

/* Earliest of c-ares' own timer and the pending lookups' deadlines. */
static void update_deadline(mtci_dns *d, int64_t now) {
  int64_t t = -1;
  struct timeval tv;
  if (d->have_ch && ares_timeout(d->ch, NULL, &tv)) {
    t = now + (int64_t)tv.tv_sec * 1000 + ((int64_t)tv.tv_usec + 999) / 1000;
    /* c-ares 1.18 reports a retry due in under a millisecond as 0 and then
     * does nothing until its own clock passes it: a deadline of "now" would
     * spin the loop for that while. One millisecond later costs nothing. */
    if (t <= now) t = now + 1;
  }
  for (struct dreq *r = d->reqs; r; r = r->next)
    if (!r->reported && (t < 0 || r->deadline < t)) t = r->deadline;
  d->deadline = t;
  (void)mtci_poller_deadline_set(d->poller, d->deadline_id, t, now);
}

static void req_unlink_free(mtci_dns *d, struct dreq *r) {
  for (struct dreq **pp = &d->reqs; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  d->n_reqs--;
  free(r->txt);
  free(r);
}

/* Run the user's callback once (reported is set first, so a cancel of this
 * id from inside the callback is a no-op). */
static void deliver(struct dreq *r, int err) {
  r->reported = 1;
  r->d->active--;
  if (r->kind == KIND_TXT) {
    mtci_dns_txt_fn fn = (mtci_dns_txt_fn)r->fn;
    fn(r->ud, r->id, err, err ? NULL : r->txt);
  } else {
    mtci_dns_host_fn fn = (mtci_dns_host_fn)r->fn;
    fn(r->ud, r->id, err, err ? NULL : &r->addrs);
  }
}

/* ---- parsing ---------------------------------------------------------------------- */

static int parse_txt(const unsigned char *abuf, int alen, mtci_doh_txt **out) {
  struct ares_txt_ext *list = NULL;
  int st = ares_parse_txt_reply_ext(abuf, alen, &list);
  if (st != ARES_SUCCESS) return st == ARES_ENODATA ? MTC_ERR_DNS_NO_DATA : map_status(st);
  mtci_doh_txt *t = calloc(1, sizeof *t);
  int rc = t ? 0 : MTC_ERR_NOMEM;
  int have = 0;
  for (struct ares_txt_ext *p = list; p && rc == 0; p = p->next) {
    if (p->record_start || !have) {
      if (t->count >= MTCI_DOH_MAX_PARTS) {
        rc = MTC_ERR_DNS_TOO_MANY;
        break;
      }
      t->count++;
      have = 1;
    }
    size_t k = t->count - 1;
    if (p->length > MTCI_DOH_MAX_TXT - t->len[k]) {
      rc = MTC_ERR_DNS_TOO_MANY;
      break;
    }
    memcpy(t->text[k] + t->len[k], p->txt, p->length);
    t->len[k] += p->length;
    t->text[k][t->len[k]] = '\0';
  }
  ares_free_data(list);
  if (rc == 0 && t->count == 0) rc = MTC_ERR_DNS_NO_DATA;
  if (rc) {
    free(t);
    return rc;
  }
  *out = t;
  return 0;
}

static int parse_host(int type, const unsigned char *abuf, int alen, mtci_dns_addrs *a) {
  if (type == T_A) {
    struct ares_addrttl ttl[MTCI_DNS_MAX_ADDRS];
    int n = MTCI_DNS_MAX_ADDRS;
    int st = ares_parse_a_reply(abuf, alen, NULL, ttl, &n);
    if (st != ARES_SUCCESS) return map_status(st);
    for (int i = 0; i < n && a->n4 < MTCI_DNS_MAX_ADDRS; i++)
      if (inet_ntop(AF_INET, &ttl[i].ipaddr, a->v4[a->n4], sizeof a->v4[0])) a->n4++;
    return n > 0 ? 0 : MTC_ERR_DNS_NO_DATA;
  }
  struct ares_addr6ttl ttl[MTCI_DNS_MAX_ADDRS];
  int n = MTCI_DNS_MAX_ADDRS;
  int st = ares_parse_aaaa_reply(abuf, alen, NULL, ttl, &n);
  if (st != ARES_SUCCESS) return map_status(st);
  for (int i = 0; i < n && a->n6 < MTCI_DNS_MAX_ADDRS; i++)
    if (inet_ntop(AF_INET6, &ttl[i].ip6addr, a->v6[a->n6], sizeof a->v6[0])) a->n6++;
  return n > 0 ? 0 : MTC_ERR_DNS_NO_DATA;
}

static int host_error(const struct dreq *r) {
  if (r->addrs.n4 + r->addrs.n6 > 0) return 0;
  int e4 = r->sub[0].err, e6 = r->sub[1].err;
  if (e4 == MTC_ERR_DNS_NOT_FOUND || e6 == MTC_ERR_DNS_NOT_FOUND) return MTC_ERR_DNS_NOT_FOUND;
  if (e4 == MTC_ERR_DNS_NO_DATA && e6 == MTC_ERR_DNS_NO_DATA) return MTC_ERR_DNS_NO_DATA;
  return e4 ? e4 : (e6 ? e6 : MTC_ERR_DNS_NO_DATA);
}

/* ---- c-ares callbacks ----------------------------------------------------------------- */

static void on_fd(void *ud, int fd, unsigned revents);

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
  (void)timeouts;
  struct sub *s = arg;
  struct dreq *r = s->r;
  mtci_dns *d = r->d;
  r->pending--;
  if (!r->reported && !d->destroying) {
    int err = map_status(status);
    if (err == 0) {
      if (r->kind == KIND_TXT)
        err = parse_txt(abuf, alen, &r->txt);
      else
        err = parse_host(s->type, abuf, alen, &r->addrs);
    }
    s->err = err;
    if (r->kind == KIND_TXT) r->txt_err = err;
    if (!r->in_submit && r->pending == 0)
      deliver(r, r->kind == KIND_TXT ? r->txt_err : host_error(r));
  }
  if (r->pending == 0 && r->reported) req_unlink_free(d, r);
}

static void sock_state_cb(void *data, ares_socket_t s, int readable, int writable) {
  mtci_dns *d = data;
  int fd = (int)s;
  unsigned ev = (readable ? MTCI_IO_READ : 0u) | (writable ? MTCI_IO_WRITE : 0u);
  if (ev == 0) {
    fd_forget(d, fd);
    return;
  }
  if (fd_index(d, fd) >= 0) {
    (void)mtci_poller_modify(d->poller, fd, ev);
    return;
  }
  if (d->n_fds >= MAX_FDS) return; /* the lookup then times out */
  int rc = mtci_poller_add(d->poller, fd, ev, on_fd, d);
  if (rc == MTC_ERR_IO_FD_EXISTS) { /* stale entry: c-ares owns this fd number now */
    (void)mtci_poller_remove(d->poller, fd);
    rc = mtci_poller_add(d->poller, fd, ev, on_fd, d);
  }
  if (rc == 0) d->fds[d->n_fds++] = fd;
}

static void settle(mtci_dns *d);

static void on_fd(void *ud, int fd, unsigned revents) {
  mtci_dns *d = ud;
  ares_socket_t rd = (revents & MTCI_IO_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD;
  ares_socket_t wr = (revents & MTCI_IO_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD;
  d->busy++;
  ares_process_fd(d->ch, rd, wr);
  d->busy--;
  update_deadline(d, now_of(d));
  settle(d); /* the last lookup on a stale channel may just have called back */
}

/* ---- the channel ---------------------------------------------------------------------- */

static int channel_new(mtci_dns *d, ares_channel *out) {
  struct ares_options o;
  memset(&o, 0, sizeof o);
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  o.sock_state_cb = sock_state_cb;
  o.sock_state_cb_data = d;
  int try_ms = (int)(d->timeout_ms / 2);
  o.timeout = try_ms < 50 ? 50 : try_ms;
  o.tries = 2;
  if (d->resolv_path) {
    o.resolvconf_path = d->resolv_path; /* c-ares copies it */
    mask |= ARES_OPT_RESOLVCONF;
    if (d->system_port) {
      o.udp_port = d->system_port;
      o.tcp_port = d->system_port;
      mask |= ARES_OPT_UDP_PORT | ARES_OPT_TCP_PORT;
    }
  }
  int st = ares_init_options(out, &o, mask);
  if (st == ARES_SUCCESS) return 0;
  return st == ARES_ENOMEM ? MTC_ERR_NOMEM : MTC_ERR_UNSUPPORTED;
}

/* Replace the channel with one built from resolv.conf as it is now. Only
 * when no lookup awaits its callback and no c-ares call is on the stack:
 * destroying the old channel then calls back lingering queries only, whose
 * lookups already reported (query_cb frees them silently). */
static void rebuild(mtci_dns *d) {
  struct file_id f;
  file_id_get(d->resolv_path, &f); /* before c-ares reads it: a later change is seen */
  d->stale = 0;
  ares_channel ch;
  if (channel_new(d, &ch) != 0) return; /* keep the old one; the next check retries */
  ares_channel old = d->ch;
  d->ch = ch;
  d->built_from = f;
  d->reloads++;
  d->busy++;
  ares_destroy(old); /* its sockets leave the poller through sock_state_cb */
  d->busy--;
  update_deadline(d, now_of(d));
}

/* A stale channel is rebuilt once nothing holds it. */
static void settle(mtci_dns *d) {
  if (d->stale && d->active == 0 && d->busy == 0 && d->have_ch) rebuild(d);
}

/* Before a lookup: has resolv.conf changed since the channel was built?
 * One stat per MTCI_DNS_RECHECK_MS at most (and again if the clock went
 * back). */
static void check_resolv_conf(mtci_dns *d, int64_t now) {
  if (!d->resolv_path) return;
  if (!d->stale) {
    if (now < d->next_check && now > d->next_check - 2 * MTCI_DNS_RECHECK_MS) return;
    d->next_check = now + MTCI_DNS_RECHECK_MS;
    struct file_id f;
    file_id_get(d->resolv_path, &f);
    if (file_id_same(&f, &d->built_from)) return;
    d->stale = 1;
  }
  settle(d);
}

/* ---- API ------------------------------------------------------------------------------ */

int mtci_dns_new(const mtci_dns_config *cfg, mtci_dns **out) {
  if (!out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  if (!cfg || !cfg->poller) return MTC_ERR_INVALID_ARG;
  int rc = mtci_dns_global_init();
  if (rc) return rc;
  mtci_dns *d = calloc(1, sizeof *d);
  if (!d) return MTC_ERR_NOMEM;
  d->poller = cfg->poller;
  d->now_ms = cfg->now_ms;
  d->now_ud = cfg->now_ud;
  d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : MTCI_DNS_DEFAULT_TIMEOUT_MS;
  d->deadline = -1;
  d->deadline_id = mtci_poller_deadline_new(d->poller);
  if (d->deadline_id < 0) {
    rc = d->deadline_id;
    free(d);
    return rc;
  }
  if (!cfg->servers) {
    d->resolv_path = strdup(cfg->resolv_conf ? cfg->resolv_conf : MTCI_DNS_RESOLV_CONF);
    if (!d->resolv_path) {
      mtci_dns_free(d);
      return MTC_ERR_NOMEM;
    }
    d->system_port = cfg->system_port;
    file_id_get(d->resolv_path, &d->built_from); /* before c-ares reads it */
    d->next_check = now_of(d) + MTCI_DNS_RECHECK_MS;
  }
  rc = channel_new(d, &d->ch);
  if (rc) {
    mtci_dns_free(d);
    return rc;
  }
  d->have_ch = 1;
  if (cfg->servers && ares_set_servers_ports_csv(d->ch, cfg->servers) != ARES_SUCCESS) {
    mtci_dns_free(d);
    return MTC_ERR_INVALID_ARG;
  }
  *out = d;
  return 0;
}

void mtci_dns_free(mtci_dns *d) {
  if (!d) return;
  d->destroying = 1;
  if (d->have_ch) ares_destroy(d->ch); /* every query calls back with EDESTRUCTION */
  d->have_ch = 0;
  while (d->reqs)
    req_unlink_free(d, d->reqs);
  while (d->n_fds)
    fd_forget(d, d->fds[d->n_fds - 1]);
  if (d->deadline_id >= 0) (void)mtci_poller_deadline_free(d->poller, d->deadline_id, now_of(d));
  free(d->resolv_path);
  free(d);
}

static int submit(mtci_dns *d, const char *name, int kind, void *fn, void *ud, uint32_t *id) {
  if (id) *id = 0;
  if (!d || !fn || !mtci_doh_name_ok(name)) return MTC_ERR_INVALID_ARG;
  int64_t now = now_of(d);
  check_resolv_conf(d, now); /* may free lingering requests: before the count */
  if (d->n_reqs >= MTCI_DNS_MAX_REQUESTS) return MTC_ERR_IO_TABLE_FULL;
  struct dreq *r = calloc(1, sizeof *r);
  if (!r) return MTC_ERR_NOMEM;
  r->d = d;
  r->kind = kind;
  r->fn = fn;
  r->ud = ud;
  r->deadline = now + d->timeout_ms;
  r->id = ++d->next_id ? d->next_id : ++d->next_id;
  r->next = d->reqs;
  d->reqs = r;
  d->n_reqs++;
  d->active++;
  int nq = kind == KIND_TXT ? 1 : 2;
  r->sub[0].r = r->sub[1].r = r;
  r->sub[0].type = kind == KIND_TXT ? T_TXT : T_A;
  r->sub[1].type = T_AAAA;
  r->in_submit = 1;
  d->busy++;
  for (int i = 0; i < nq; i++) {
    r->pending++;
    d->queries++;
    ares_query(d->ch, name, C_IN, r->sub[i].type, query_cb, &r->sub[i]);
  }
  d->busy--;
  r->in_submit = 0;
  if (r->pending == 0) { /* c-ares answered at once: only errors do that */
    int err = kind == KIND_TXT ? r->txt_err : host_error(r);
    d->active--;
    req_unlink_free(d, r);
    update_deadline(d, now);
    return err ? err : MTC_ERR_DNS_FAILED;
  }
  if (id) *id = r->id;
  update_deadline(d, now);
  return 0;
}

int mtci_dns_query_txt(mtci_dns *d, const char *name, mtci_dns_txt_fn fn, void *ud, uint32_t *id) {
  return submit(d, name, KIND_TXT, (void *)fn, ud, id);
}

int mtci_dns_lookup_host(mtci_dns *d, const char *name, mtci_dns_host_fn fn, void *ud,
                         uint32_t *id) {
  return submit(d, name, KIND_HOST, (void *)fn, ud, id);
}

int mtci_dns_cancel(mtci_dns *d, uint32_t id) {
  if (!d || id == 0) return MTC_ERR_INVALID_ARG;
  for (struct dreq *r = d->reqs; r; r = r->next)
    if (r->id == id && !r->reported) {
      r->reported = 1; /* lingers until c-ares calls back */
      d->active--;
      if (r->pending == 0) req_unlink_free(d, r);
      update_deadline(d, now_of(d));
      settle(d);
      return 0;
    }
  return MTC_ERR_INVALID_ARG;
}

void mtci_dns_on_timeout(mtci_dns *d, int64_t now_ms) {
  if (!d || d->deadline < 0 || now_ms < d->deadline) return;
  d->busy++; /* r must outlive its callback: no rebuild before the loop is done */
  /* Our hard deadlines first (a callback may change the list: rescan). */
  for (;;) {
    struct dreq *r = d->reqs;
    while (r && (r->reported || r->deadline > now_ms))
      r = r->next;
    if (!r) break;
    deliver(r, MTC_ERR_DISCOVERY_TIMEOUT);
    if (r->pending == 0) req_unlink_free(d, r);
  }
  ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* c-ares' retries and timeouts */
  d->busy--;
  update_deadline(d, now_of(d));
  settle(d);
}

size_t mtci_dns_active(const mtci_dns *d) { return d ? d->active : 0; }
uint64_t mtci_dns_queries(const mtci_dns *d) { return d ? d->queries : 0; }
uint64_t mtci_dns_reloads(const mtci_dns *d) { return d ? d->reloads : 0; }
