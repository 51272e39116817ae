/*
 * DoH transfers over libcurl multi + the poller (see doh_fetch.h).
 */
#include "discovery/doh_fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "io/clock.h"

#define MAX_FDS 64 /* curl sockets registered at once (a few per transfer) */
#define DATE_CAP 64

struct req {
  mtci_doh_fetch *f;
  uint32_t id;
  CURL *easy;
  struct curl_slist *headers;
  char *body;
  size_t len, cap;
  int oversized;
  int done; /* CURLMSG_DONE seen, not yet reported */
  CURLcode result;
  char date[DATE_CAP];
  char errbuf[CURL_ERROR_SIZE];
  mtci_doh_done_fn fn;
  void *ud;
  struct req *next;
};

struct mtci_doh_fetch {
  mtci_poller *poller;
  int64_t (*now_ms)(void *);
  void *now_ud;
  CURLM *multi;
  char *ca_file;
  char *user_agent;
  long connect_timeout_ms, request_timeout_ms;
  size_t max_body;
  int deadline_id;
  int64_t deadline; /* curl's timer, absolute; -1 none */
  struct req *reqs; /* in flight (and done, not yet reported) */
  size_t active;
  uint32_t next_id;
  uint64_t started;
  int fds[MAX_FDS]; /* curl sockets we registered */
  size_t n_fds;
};

/* ---- global init -------------------------------------------------------------------- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc = MTC_ERR_UNSUPPORTED;
static int g_inited;

static void global_init_once(void) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {
    g_init_rc = 0;
    g_inited = 1;
  }
}

int mtci_doh_global_init(void) {
  pthread_once(&g_once, global_init_once);
  return g_init_rc;
}

void mtci_doh_global_cleanup(void) {
  if (g_inited) curl_global_cleanup();
  g_inited = 0;
}

/* ---- helpers ----------------------------------------------------------------------- */

static int64_t now_of(const mtci_doh_fetch *f) {
  return f->now_ms ? f->now_ms(f->now_ud) : mtci_clock_realtime_ms();
}

static char *dup_str(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

static int fd_index(const mtci_doh_fetch *f, int fd) {
  for (size_t i = 0; i < f->n_fds; i++)
    if (f->fds[i] == fd) return (int)i;
  return -1;
}

static void fd_forget(mtci_doh_fetch *f, int fd) {
  int i = fd_index(f, fd);
  if (i < 0) return;
  f->fds[i] = f->fds[--f->n_fds];
  (void)mtci_poller_remove(f->poller, fd);
}

/* ---- curl -> poller ----------------------------------------------------------------- */

static void drain(mtci_doh_fetch *f);

static void on_fd(void *ud, int fd, unsigned revents) {
  mtci_doh_fetch *f = ud;
  int mask = 0;
  if (revents & MTCI_IO_READ) mask |= CURL_CSELECT_IN;
  if (revents & MTCI_IO_WRITE) mask |= CURL_CSELECT_OUT;
  int running = 0;
  (void)curl_multi_socket_action(f->multi, (curl_socket_t)fd, mask, &running);
  drain(f);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)easy;
  (void)socketp;
  mtci_doh_fetch *f = userp;
  int fd = (int)s;
  if (what == CURL_POLL_REMOVE) {
    fd_forget(f, fd);
    return 0;
  }
  unsigned ev = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= MTCI_IO_READ;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= MTCI_IO_WRITE;
  if (fd_index(f, fd) >= 0) {
    (void)mtci_poller_modify(f->poller, fd, ev);
    return 0;
  }
  if (f->n_fds >= MAX_FDS) return 0; /* the transfer then times out */
  int rc = mtci_poller_add(f->poller, fd, ev, on_fd, f);
  if (rc == MTC_ERR_IO_FD_EXISTS) {
    /* Only one open file can have this number, and curl owns it now: the
     * old registration is stale (its owner closed without removing). */
    (void)mtci_poller_remove(f->poller, fd);
    rc = mtci_poller_add(f->poller, fd, ev, on_fd, f);
  }
  if (rc == 0) f->fds[f->n_fds++] = fd;
  return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  mtci_doh_fetch *f = userp;
  int64_t now = now_of(f);
  f->deadline = timeout_ms < 0 ? -1 : now + timeout_ms;
  (void)mtci_poller_deadline_set(f->poller, f->deadline_id, f->deadline, now);
  return 0;
}

/* ---- per transfer ------------------------------------------------------------------- */

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud) {
  struct req *q = ud;
  size_t n = size * nmemb;
  if (n > q->f->max_body - q->len) {
    q->oversized = 1;
    return 0; /* abort: CURLE_WRITE_ERROR */
  }
  if (q->len + n + 1 > q->cap) {
    size_t cap = q->cap ? q->cap : 1024;
    while (cap < q->len + n + 1)
      cap *= 2;
    if (cap > q->f->max_body + 1) cap = q->f->max_body + 1;
    char *b = realloc(q->body, cap);
    if (!b) return 0;
    q->body = b;
    q->cap = cap;
  }
  memcpy(q->body + q->len, p, n);
  q->len += n;
  q->body[q->len] = '\0';
  return n;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static size_t header_cb(char *p, size_t size, size_t nmemb, void *ud) {
  struct req *q = ud;
  size_t n = size * nmemb;
  static const char k[] = "date:";
  if (n > 5) {
    size_t i = 0;
    while (i < 5 && lower((unsigned char)p[i]) == k[i])
      i++;
    if (i == 5) {
      size_t vl = n - 5;
      if (vl >= DATE_CAP) vl = DATE_CAP - 1;
      memcpy(q->date, p + 5, vl);
      q->date[vl] = '\0';
    }
  }
  return n;
}

static void req_free(struct req *q) {
  if (!q) return;
  if (q->easy) curl_easy_cleanup(q->easy);
  curl_slist_free_all(q->headers);
  free(q->body);
  free(q);
}

/* Take q out of the multi and the list (no callback). */
static void req_detach(mtci_doh_fetch *f, struct req *q) {
  for (struct req **pp = &f->reqs; *pp; pp = &(*pp)->next)
    if (*pp == q) {
      *pp = q->next;
      break;
    }
  if (q->easy) curl_multi_remove_handle(f->multi, q->easy);
  f->active--;
}

static int map_error(const struct req *q, long status) {
  if (q->oversized || q->result == CURLE_FILESIZE_EXCEEDED) return MTC_ERR_DOH_TOO_LARGE;
  switch (q->result) {
  case CURLE_OK: return status == 200 ? 0 : MTC_ERR_DOH_HTTP_STATUS;
  case CURLE_OPERATION_TIMEDOUT: return MTC_ERR_DISCOVERY_TIMEOUT;
  case CURLE_OUT_OF_MEMORY: return MTC_ERR_NOMEM;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CLIENTCERT: return MTC_ERR_DOH_TLS;
  case CURLE_WRITE_ERROR: return MTC_ERR_NOMEM; /* write_cb could not grow the buffer */
  default: return MTC_ERR_DOH_HTTP;
  }
}

static void report(mtci_doh_fetch *f, struct req *q) {
  long status = 0;
  if (q->easy) curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
  req_detach(f, q);
  mtci_doh_response r;
  memset(&r, 0, sizeof r);
  r.http_status = status;
  r.err = map_error(q, status);
  r.body = q->body && !q->oversized ? q->body : "";
  r.body_len = q->body && !q->oversized ? q->len : 0;
  r.have_date = q->date[0] && mtci_http_date_parse(q->date, strlen(q->date), &r.date_unix);
  r.received_ms = now_of(f);
  r.detail = q->errbuf[0] ? q->errbuf : q->result != CURLE_OK ? curl_easy_strerror(q->result) : "";
  q->fn(q->ud, q->id, &r);
  req_free(q);
}

/* Collect finished transfers, then report them one at a time (a callback
 * may cancel or start others, so the list is searched again each time). */
static void drain(mtci_doh_fetch *f) {
  CURLMsg *m;
  int left = 0;
  while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    char *priv = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
    struct req *q = (struct req *)(void *)priv;
    if (!q) continue;
    q->done = 1;
    q->result = m->data.result;
  }
  for (;;) {
    struct req *q = f->reqs;
    while (q && !q->done)
      q = q->next;
    if (!q) break;
    report(f, q);
  }
}

/* ---- API ----------------------------------------------------------------------------- */

int mtci_doh_fetch_new(const mtci_doh_fetch_config *cfg, mtci_doh_fetch **out) {
  if (!out) return MTC_ERR_INVALID_ARG;
  *out = NULL;
  if (!cfg || !cfg->poller) return MTC_ERR_INVALID_ARG;
  int rc = mtci_doh_global_init();
  if (rc) return rc;
  mtci_doh_fetch *f = calloc(1, sizeof *f);
  if (!f) return MTC_ERR_NOMEM;
  f->poller = cfg->poller;
  f->now_ms = cfg->now_ms;
  f->now_ud = cfg->now_ud;
  f->deadline = -1;
  f->deadline_id = -1;
  f->connect_timeout_ms =
      cfg->connect_timeout_ms ? (long)cfg->connect_timeout_ms : MTCI_DOH_DEFAULT_CONNECT_TIMEOUT_MS;
  f->request_timeout_ms =
      cfg->request_timeout_ms ? (long)cfg->request_timeout_ms : MTCI_DOH_DEFAULT_REQUEST_TIMEOUT_MS;
  f->max_body =
      cfg->max_body && cfg->max_body < MTCI_DOH_BODY_CAP ? cfg->max_body : MTCI_DOH_BODY_CAP;
  f->ca_file = dup_str(cfg->ca_file);
  f->user_agent = dup_str(cfg->user_agent ? cfg->user_agent : MTCI_DOH_DEFAULT_USER_AGENT);
  f->multi = curl_multi_init();
  if (!f->user_agent || (cfg->ca_file && !f->ca_file) || !f->multi) {
    mtci_doh_fetch_free(f);
    return MTC_ERR_NOMEM;
  }
  f->deadline_id = mtci_poller_deadline_new(f->poller);
  if (f->deadline_id < 0) {
    rc = f->deadline_id;
    mtci_doh_fetch_free(f);
    return rc;
  }
  curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
  curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
  *out = f;
  return 0;
}

void mtci_doh_fetch_free(mtci_doh_fetch *f) {
  if (!f) return;
  while (f->reqs) {
    struct req *q = f->reqs;
    req_detach(f, q);
    req_free(q);
  }
  if (f->multi) curl_multi_cleanup(f->multi);
  while (f->n_fds)
    fd_forget(f, f->fds[f->n_fds - 1]); /* sockets curl did not report removed */
  if (f->deadline_id >= 0) (void)mtci_poller_deadline_free(f->poller, f->deadline_id, now_of(f));
  free(f->ca_file);
  free(f->user_agent);
  free(f);
}

int mtci_doh_fetch_start(mtci_doh_fetch *f, const mtci_doh_request *req, mtci_doh_done_fn done,
                         void *ud, uint32_t *id) {
  if (id) *id = 0;
  if (!f || !req || !req->url || !done) return MTC_ERR_INVALID_ARG;
  if (f->active >= MTCI_DOH_MAX_REQUESTS) return MTC_ERR_IO_TABLE_FULL;
  struct req *q = calloc(1, sizeof *q);
  if (!q) return MTC_ERR_NOMEM;
  q->f = f;
  q->fn = done;
  q->ud = ud;
  q->easy = curl_easy_init();
  int ok = q->easy != NULL;
  if (ok && req->api == MTCI_DOH_API_CLOUDFLARE) {
    struct curl_slist *h = curl_slist_append(q->headers, "accept: application/dns-json");
    ok = h != NULL;
    if (ok) q->headers = h;
  }
  if (ok && req->host) {
    char line[300];
    size_t hl = strlen(req->host);
    if (hl == 0 || hl >= sizeof line - 8 || strpbrk(req->host, "\r\n")) {
      req_free(q); /* a bad Host value is the caller's error */
      return MTC_ERR_INVALID_ARG;
    }
    memcpy(line, "Host: ", 6);
    memcpy(line + 6, req->host, hl + 1);
    struct curl_slist *h = curl_slist_append(q->headers, line);
    ok = h != NULL;
    if (ok) q->headers = h;
  }
  CURL *e = q->easy;
  if (ok) {
    CURLcode c = CURLE_OK;
#define SET(opt, val)                                                                              \
  if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_FORBID_REUSE, 1L); /* no idle sockets left between races */
    SET(CURLOPT_PROXY, "");        /* direct, whatever http_proxy says */
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (f->ca_file) SET(CURLOPT_CAINFO, f->ca_file);
    SET(CURLOPT_USERAGENT, f->user_agent);
    SET(CURLOPT_CONNECTTIMEOUT_MS, f->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, f->request_timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->max_body);
    if (q->headers) SET(CURLOPT_HTTPHEADER, q->headers);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, q);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, q);
    SET(CURLOPT_ERRORBUFFER, q->errbuf);
    SET(CURLOPT_PRIVATE, (void *)q);
#undef SET
    if (c == CURLE_UNKNOWN_OPTION || c == CURLE_NOT_BUILT_IN) {
      req_free(q);
      return MTC_ERR_UNSUPPORTED;
    }
    if (c != CURLE_OK) {
      req_free(q);
      return c == CURLE_OUT_OF_MEMORY ? MTC_ERR_NOMEM : MTC_ERR_INVALID_ARG; /* e.g. a bad URL */
    }
  }
  if (!ok) {
    req_free(q);
    return MTC_ERR_NOMEM;
  }
  q->id = ++f->next_id ? f->next_id : ++f->next_id; /* never 0 */
  q->next = f->reqs;
  f->reqs = q;
  f->active++;
  if (curl_multi_add_handle(f->multi, e) != CURLM_OK) {
    f->reqs = q->next;
    f->active--;
    req_free(q);
    return MTC_ERR_NOMEM;
  }
  f->started++;
  if (id) *id = q->id;
  return 0;
}

int mtci_doh_fetch_cancel(mtci_doh_fetch *f, uint32_t id) {
  if (!f || id == 0) return MTC_ERR_INVALID_ARG;
  for (struct req *q = f->reqs; q; q = q->next)
    if (q->id == id) {
      req_detach(f, q);
      req_free(q);
      return 0;
    }
  return MTC_ERR_INVALID_ARG;
}

void mtci_doh_fetch_on_timeout(mtci_doh_fetch *f, int64_t now_ms) {
  if (!f || f->deadline < 0 || now_ms < f->deadline) return;
  f->deadline = -1; /* curl sets a new one from inside socket_action */
  (void)mtci_poller_deadline_set(f->poller, f->deadline_id, -1, now_ms);
  int running = 0;
  (void)curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain(f);
}

size_t mtci_doh_fetch_active(const mtci_doh_fetch *f) { return f ? f->active : 0; }
uint64_t mtci_doh_fetch_started(const mtci_doh_fetch *f) { return f ? f->started : 0; }
