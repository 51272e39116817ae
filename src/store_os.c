/* State file IO (shell): atomic save and careful load. The rules are in
 * store.h; the pure JSON half is store.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "store.h"

int mtci_store_fault_step = MTCI_STORE_FAULT_NONE;


/* The injected fault for this step, as an errno (0 = none). */
static int fault(int step) {
  if (mtci_store_fault_step != step) return 0;
  mtci_store_fault_step = MTCI_STORE_FAULT_NONE;
  return EIO;
}

/* Directory part of path ("." when there is none, "/" for "/x"). */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  size_t n = (size_t)(slash - path);
  if (n == 0) n = 1; /* "/x" -> "/" */
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, path, n);
  d[n] = '\0';
  return d;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int mtci_store_save_file(const char *path, const char *data, size_t len, char *msg,
                         size_t msg_len) {
  if (msg && msg_len) msg[0] = '\0';
  if (!path || !path[0] || (!data && len))
    return mtci_store_failf(MTC_ERR_INVALID_ARG, msg, msg_len, "no path or no data");
  size_t plen = strlen(path);
  if (path[plen - 1] == '/')
    return mtci_store_failf(MTC_ERR_STORE_IO, msg, msg_len, "state path names a directory");
  char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
  char *dir = dir_of(path);
  if (!tmp || !dir) {
    free(tmp);
    free(dir);
    return mtci_store_failf(MTC_ERR_NOMEM, msg, msg_len, "out of memory");
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");

  int rc = MTC_ERR_STORE_IO, e;
  int fd = mkstemp(tmp); /* creates with O_EXCL, mode 0600 */
  if (fd < 0) {
    e = errno;
    mtci_store_failf(rc, msg, msg_len, "cannot create a temporary file next to the state file: %s",
            strerror(e));
    goto out_nofile;
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  /* 0600 whatever the umask, before any key byte reaches the disk. */
  if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
    e = errno;
    mtci_store_failf(rc, msg, msg_len, "chmod 600 of the temporary file failed: %s", strerror(e));
    goto out_fd;
  }
  if ((e = fault(MTCI_STORE_FAULT_WRITE)) != 0 || write_all(fd, data, len) != 0) {
    if (!e) e = errno;
    mtci_store_failf(rc, msg, msg_len, "write of the temporary file failed: %s", strerror(e));
    goto out_fd;
  }
  if ((e = fault(MTCI_STORE_FAULT_FSYNC)) != 0 || fsync(fd) != 0) {
    if (!e) e = errno;
    mtci_store_failf(rc, msg, msg_len, "fsync of the temporary file failed: %s", strerror(e));
    goto out_fd;
  }
  e = fault(MTCI_STORE_FAULT_CLOSE);
  if (close(fd) != 0 && !e) e = errno;
  fd = -1;
  if (e) {
    mtci_store_failf(rc, msg, msg_len, "close of the temporary file failed: %s", strerror(e));
    goto out_fd;
  }
  if ((e = fault(MTCI_STORE_FAULT_RENAME)) != 0 || rename(tmp, path) != 0) {
    if (!e) e = errno;
    mtci_store_failf(rc, msg, msg_len, "rename to the state file failed: %s", strerror(e));
    goto out_fd;
  }
  /* The new name is in place; make the directory entry durable. */
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    e = errno;
    mtci_store_failf(rc, msg, msg_len, "state file replaced, but opening its directory to fsync failed: %s",
            strerror(e));
    goto out_nofile;
  }
  e = fault(MTCI_STORE_FAULT_DIR_FSYNC);
  if (!e && fsync(dfd) != 0 && errno != EINVAL) e = errno; /* EINVAL: fs cannot sync dirs */
  close(dfd);
  if (e) {
    mtci_store_failf(rc, msg, msg_len, "state file replaced, but fsync of its directory failed: %s",
            strerror(e));
    goto out_nofile;
  }
  rc = 0;
  goto out_nofile;

out_fd:
  if (fd >= 0) close(fd);
  unlink(tmp);
out_nofile:
  free(tmp);
  free(dir);
  return rc;
}

int mtci_store_load_file(const char *path, char **data, size_t *len, char *msg, size_t msg_len) {
  if (msg && msg_len) msg[0] = '\0';
  if (!data || !len) return mtci_store_failf(MTC_ERR_INVALID_ARG, msg, msg_len, "no output");
  *data = NULL;
  *len = 0;
  if (!path || !path[0]) return mtci_store_failf(MTC_ERR_INVALID_ARG, msg, msg_len, "no path");
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    struct stat lsb;
    /* A dangling symlink is somebody's state elsewhere (an unmounted
     * volume): not a fresh start, whose first save would replace the link. */
    if (e == ENOENT && lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode))
      return mtci_store_failf(MTC_ERR_STORE_IO, msg, msg_len,
                              "the state path is a symlink to a missing file");
    if (e == ENOENT)
      return mtci_store_failf(MTC_ERR_STORE_NOT_FOUND, msg, msg_len, "no state file (a fresh start)");
    return mtci_store_failf(MTC_ERR_STORE_IO, msg, msg_len, "cannot open the state file: %s",
                   strerror(e));
  }
  struct stat sb;
  int rc = 0;
  char *buf = NULL;
  size_t cap = 0, n = 0;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    rc = mtci_store_failf(MTC_ERR_STORE_IO, msg, msg_len, "fstat of the state file failed: %s",
                 strerror(e));
    goto out;
  }
  if (!S_ISREG(sb.st_mode)) {
    rc = mtci_store_failf(MTC_ERR_STORE_IO, msg, msg_len, "the state path is not a regular file");
    goto out;
  }
  if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
    rc = mtci_store_failf(MTC_ERR_STORE_PERMISSIONS, msg, msg_len,
                 "the state file holds auth keys but its mode is %03o; run chmod 600 on it",
                 (unsigned)(sb.st_mode & 0777));
    goto out;
  }
  if (sb.st_size > (off_t)MTCI_STATE_MAX_JSON) {
    rc = mtci_store_failf(MTC_ERR_STORE_TOO_LARGE, msg, msg_len,
                 "the state file is %lld bytes, over the %u-byte limit", (long long)sb.st_size,
                 MTCI_STATE_MAX_JSON);
    goto out;
  }
  /* Read up to the cap + 1 even if the size changes under us. */
  cap = MTCI_STATE_MAX_JSON + 1;
  if ((size_t)sb.st_size + 1 < cap) cap = (size_t)sb.st_size + 1;
  buf = malloc(cap + 1);
  if (!buf) {
    rc = mtci_store_failf(MTC_ERR_NOMEM, msg, msg_len, "out of memory");
    goto out;
  }
  for (;;) {
    if (n == cap) {
      if (cap > MTCI_STATE_MAX_JSON) break; /* read one byte past the cap: too large */
      size_t ncap = cap * 2 > MTCI_STATE_MAX_JSON + 1 ? MTCI_STATE_MAX_JSON + 1 : cap * 2;
      char *nb = malloc(ncap + 1);
      if (!nb) {
        rc = mtci_store_failf(MTC_ERR_NOMEM, msg, msg_len, "out of memory");
        goto out;
      }
      memcpy(nb, buf, n);
      mtci_state_json_free(buf, cap + 1); /* no stale copies of the keys */
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      rc = mtci_store_failf(MTC_ERR_STORE_IO, msg, msg_len, "read of the state file failed: %s",
                   strerror(e));
      goto out;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  if (n > MTCI_STATE_MAX_JSON) {
    rc = mtci_store_failf(MTC_ERR_STORE_TOO_LARGE, msg, msg_len,
                 "the state file is over the %u-byte limit", MTCI_STATE_MAX_JSON);
    goto out;
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  buf = NULL;
out:
  if (buf) mtci_state_json_free(buf, cap + 1);
  close(fd);
  return rc;
}

int mtci_store_save(const char *path, const mtci_state *st, char *msg, size_t msg_len) {
  char *text = NULL;
  size_t n = 0;
  int rc = mtci_state_to_json(st, &text, &n, msg, msg_len);
  if (rc) return rc;
  rc = mtci_store_save_file(path, text, n, msg, msg_len);
  mtci_state_json_free(text, n + 1);
  return rc;
}

int mtci_store_load(const char *path, mtci_state *st, char *msg, size_t msg_len) {
  if (!st) return mtci_store_failf(MTC_ERR_INVALID_ARG, msg, msg_len, "no state");
  mtci_state_clear(st);
  char *text = NULL;
  size_t n = 0;
  int rc = mtci_store_load_file(path, &text, &n, msg, msg_len);
  if (rc) return rc;
  rc = mtci_state_from_json(text, n, st, msg, msg_len);
  mtci_state_json_free(text, n + 1);
  return rc;
}
