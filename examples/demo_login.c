/*
 * The demo's scenario on one mtc_context (OWN mode, driven here with
 * mtc_context_run): a first login and a file download, the way a client
 * does them.
 *
 *   first run                            run with a saved, authorized state
 *   auth.sendCode on the first main DC   users.getUsers([inputUserSelf]) on
 *     -> PHONE_MIGRATE_X, followed by      the saved main DC
 *        the context
 *   auth.signIn with the code
 *   upload.getFile [0, 512 KiB) on the main DC -> FILE_MIGRATE_X: the context
 *     exports the authorization from the main DC, imports it on X, resends
 *   upload.getFile [512 KiB, 1 MiB) on DC X
 *   every byte checked against the SHA-256 counter stream
 *
 * The library does every migration and transfer itself; this file only
 * issues the calls and notes what came back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "crypto/crypto.h"
#include "demo.h"
#include "mtconn/tl_api.h"

#define ID_VECTOR 0x1cb5c415u
#define ID_RPC_FILE_MIGRATE "FILE_MIGRATE_"

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void demo_file_bytes(int64_t file_id, uint64_t offset, uint8_t *out, size_t len) {
  uint8_t in[16], block[MTCI_SHA256_LEN];
  if (offset >= DEMO_FILE_SIZE) return;
  if (len > DEMO_FILE_SIZE - offset) len = (size_t)(DEMO_FILE_SIZE - offset);
  mtci_put_le64(in, mtci_u64_of(file_id));
  size_t done = 0;
  while (done < len) {
    uint64_t pos = offset + done, i = pos / MTCI_SHA256_LEN;
    size_t skip = (size_t)(pos % MTCI_SHA256_LEN), n = MTCI_SHA256_LEN - skip;
    for (int b = 0; b < 8; b++) in[8 + b] = (uint8_t)(i >> (56 - 8 * b)); /* big-endian */
    mtci_sha256(in, sizeof in, block);
    if (n > len - done) n = len - done;
    memcpy(out + done, block + skip, n);
    done += n;
  }
}

/* ---- one call at a time ------------------------------------------------------------------- */

typedef struct call {
  int done;
  mtc_result_kind kind;
  int dc_id;
  int32_t code;
  char msg[128];
  int error;
  uint8_t *data;
  size_t len;
} call;

static void on_result(void *ud, const mtc_result *r) {
  call *c = ud;
  c->done = 1;
  c->kind = r->kind;
  c->dc_id = r->dc_id;
  c->code = r->rpc_code;
  c->error = r->error;
  if (r->rpc_message) snprintf(c->msg, sizeof c->msg, "%s", r->rpc_message);
  if (r->kind == MTC_RESULT_OK && r->len) {
    c->data = malloc(r->len);
    if (c->data) {
      memcpy(c->data, r->data, r->len);
      c->len = r->len;
    }
  }
}

static void call_clear(call *c) {
  free(c->data);
  memset(c, 0, sizeof *c);
}

typedef struct runner {
  const demo_opts *o;
  demo_result *res;
  mtc_context *ctx;
} runner;

/* Send body (a generated request object) and run the loop until its answer
 * or the timeout; the step is recorded. Returns 0 when an answer of any
 * kind came back. */
static int invoke(runner *rn, demo_step *st, const mtc_invoke_options *opts,
                  const mtc_tl_object *req, call *c) {
  memset(c, 0, sizeof *c);
  double t0 = mono_ms();
  mtc_invoke_options o;
  if (opts) o = *opts;
  else memset(&o, 0, sizeof o);
  o.timeout_ms = rn->o->timeout_ms;
  int rc = mtc_invoke_object(rn->ctx, &o, req, on_result, c, NULL);
  if (rc) {
    snprintf(st->note, sizeof st->note, "mtc_invoke: %s", mtc_strerror(rc));
    return -1;
  }
  /* mtc_invoke's timeout ends every request; this bound only guards the demo */
  double end = t0 + rn->o->timeout_ms + 5000.0;
  while (!c->done && mono_ms() < end) {
    rc = mtc_context_run(rn->ctx, 50);
    if (rc && rc != MTC_ERR_IO_BUSY) {
      snprintf(st->note, sizeof st->note, "mtc_context_run: %s", mtc_strerror(rc));
      return -1;
    }
  }
  st->ms = mono_ms() - t0;
  st->dc_id = c->dc_id;
  if (!c->done) {
    snprintf(st->note, sizeof st->note, "no answer within %d ms", rn->o->timeout_ms);
    return -1;
  }
  if (c->kind == MTC_RESULT_RPC_ERROR)
    snprintf(st->note, sizeof st->note, "rpc_error %d %s", (int)c->code, c->msg);
  else if (c->kind != MTC_RESULT_OK)
    snprintf(st->note, sizeof st->note, "%s", mtc_strerror(c->error));
  return 0;
}

static demo_step *step(runner *rn, const char *fmt, const char *arg) {
  demo_result *r = rn->res;
  demo_step *st = &r->steps[r->n_steps < DEMO_MAX_STEPS ? r->n_steps++ : DEMO_MAX_STEPS - 1];
  memset(st, 0, sizeof *st);
  snprintf(st->name, sizeof st->name, fmt, arg);
  return st;
}

static const mtc_dc_counters *dc_of(const mtc_counters *c, int dc) {
  for (size_t i = 0; i < c->n_dcs; i++)
    if (c->dcs[i].dc_id == dc) return &c->dcs[i];
  return NULL;
}

static uint64_t ctr_of(runner *rn, int dc, size_t off) {
  mtc_counters c;
  memset(&c, 0, sizeof c);
  c.version = MTC_COUNTERS_VERSION;
  if (mtc_context_counters(rn->ctx, &c) != 0) return 0;
  const mtc_dc_counters *d = dc_of(&c, dc);
  uint64_t v = 0;
  if (d) memcpy(&v, (const char *)d + off, sizeof v);
  return v;
}

#define CTR(rn, dc, field) ctr_of(rn, dc, offsetof(mtc_dc_counters, field))

/* ---- the steps ------------------------------------------------------------------------------ */

static int64_t user_id_of(const mtc_tl_object *u) {
  return u && u->id == MTC_TL_ID_user ? ((const mtc_tl_user *)u)->id : 0;
}

static int who_am_i(runner *rn) {
  demo_step *st = step(rn, "users.getUsers(inputUserSelf)%s", "");
  mtc_tl_inputUserSelf self = {{MTC_TL_ID_inputUserSelf}};
  mtc_tl_object *ids[1] = {&self.base};
  mtc_tl_fn_users_getUsers q;
  memset(&q, 0, sizeof q);
  q.base.id = MTC_TL_ID_fn_users_getUsers;
  q.id.n = 1;
  q.id.v = ids;
  call c;
  if (invoke(rn, st, NULL, &q.base, &c) != 0 || c.kind != MTC_RESULT_OK) {
    call_clear(&c);
    return -1;
  }
  /* Vector<User>: the vector header, then one boxed user */
  mtc_tl_object *u = NULL;
  if (c.len > 8 && mtci_le32(c.data) == ID_VECTOR && mtci_le32(c.data + 4) == 1)
    (void)mtc_tl_parse(c.data + 8, c.len - 8, &u);
  rn->res->user_id = user_id_of(u);
  mtc_tl_object_free(u);
  call_clear(&c);
  if (!rn->res->user_id) {
    snprintf(st->note, sizeof st->note, "unexpected answer");
    return -1;
  }
  st->ok = 1;
  snprintf(st->note, sizeof st->note, "signed in already (saved keys), user %lld",
           (long long)rn->res->user_id);
  return 0;
}

static int read_code(const demo_opts *o, char *out, size_t cap) {
  if (o->code) {
    snprintf(out, cap, "%s", o->code);
    return 0;
  }
  if (o->mock) {
    snprintf(out, cap, "%s", DEMO_CODE);
    return 0;
  }
  fprintf(stderr, "mtconn-demo: the login code sent to %s: ", o->phone);
  fflush(stderr);
  if (!fgets(out, (int)cap, stdin)) return -1;
  out[strcspn(out, "\r\n")] = 0;
  return out[0] ? 0 : -1;
}

static int sign_in(runner *rn) {
  const demo_opts *o = rn->o;
  int first_dc = mtc_context_main_dc(rn->ctx);
  demo_step *st = step(rn, "auth.sendCode %s", o->phone);
  mtc_tl_codeSettings cs;
  memset(&cs, 0, sizeof cs);
  cs.base.id = MTC_TL_ID_codeSettings;
  mtc_tl_fn_auth_sendCode sc;
  memset(&sc, 0, sizeof sc);
  sc.base.id = MTC_TL_ID_fn_auth_sendCode;
  sc.phone_number.data = (uint8_t *)(uintptr_t)o->phone;
  sc.phone_number.len = strlen(o->phone);
  sc.api_id = o->api_id;
  sc.api_hash.data = (uint8_t *)(uintptr_t)o->api_hash;
  sc.api_hash.len = strlen(o->api_hash);
  sc.settings = &cs.base;
  call c;
  if (invoke(rn, st, NULL, &sc.base, &c) != 0 || c.kind != MTC_RESULT_OK) {
    call_clear(&c);
    return -1;
  }
  mtc_tl_object *obj = NULL;
  char hash[256] = "";
  if (mtc_tl_parse(c.data, c.len, &obj) == 0 && obj->id == MTC_TL_ID_auth_sentCode) {
    const mtc_tl_auth_sentCode *s = (const mtc_tl_auth_sentCode *)obj;
    if (s->phone_code_hash.len < sizeof hash) {
      memcpy(hash, s->phone_code_hash.data, s->phone_code_hash.len);
      hash[s->phone_code_hash.len] = 0;
    }
  }
  mtc_tl_object_free(obj);
  call_clear(&c);
  if (!hash[0]) {
    snprintf(st->note, sizeof st->note, "no auth.sentCode in the answer");
    return -1;
  }
  st->ok = 1;
  if (st->dc_id != first_dc)
    snprintf(st->note, sizeof st->note, "code sent; DC %d answered PHONE_MIGRATE_%d", first_dc,
             st->dc_id);
  else
    snprintf(st->note, sizeof st->note, "code sent");

  char code[64];
  st = step(rn, "auth.signIn%s", "");
  if (read_code(o, code, sizeof code) != 0) {
    snprintf(st->note, sizeof st->note, "no login code given");
    return -1;
  }
  snprintf(st->name, sizeof st->name, "auth.signIn code %.40s", code);
  mtc_tl_fn_auth_signIn si;
  memset(&si, 0, sizeof si);
  si.base.id = MTC_TL_ID_fn_auth_signIn;
  si.flags = 1u << 0;
  si.phone_number = sc.phone_number;
  si.phone_code_hash.data = (uint8_t *)hash;
  si.phone_code_hash.len = strlen(hash);
  si.phone_code.data = (uint8_t *)code;
  si.phone_code.len = strlen(code);
  if (invoke(rn, st, NULL, &si.base, &c) != 0 || c.kind != MTC_RESULT_OK) {
    if (c.kind == MTC_RESULT_RPC_ERROR && !strcmp(c.msg, "SESSION_PASSWORD_NEEDED"))
      snprintf(st->note, sizeof st->note, "two-step verification: not in this demo");
    call_clear(&c);
    return -1;
  }
  obj = NULL;
  if (mtc_tl_parse(c.data, c.len, &obj) == 0 && obj->id == MTC_TL_ID_auth_authorization)
    rn->res->user_id = user_id_of(((const mtc_tl_auth_authorization *)obj)->user);
  else if (obj && obj->id == MTC_TL_ID_auth_authorizationSignUpRequired)
    snprintf(st->note, sizeof st->note, "sign-up required: the demo does not register accounts");
  mtc_tl_object_free(obj);
  call_clear(&c);
  if (!rn->res->user_id) {
    if (!st->note[0]) snprintf(st->note, sizeof st->note, "unexpected answer");
    return -1;
  }
  st->ok = 1;
  snprintf(st->note, sizeof st->note, "signed in, user %lld", (long long)rn->res->user_id);
  return 0;
}

static int get_part(runner *rn, const mtc_invoke_options *opts, uint32_t offset, uint8_t *file) {
  char name[64];
  snprintf(name, sizeof name, "upload.getFile [%u, %u) KiB", offset / 1024,
           (offset + DEMO_PART) / 1024);
  demo_step *st = step(rn, "%s", name);
  mtc_tl_inputDocumentFileLocation loc;
  memset(&loc, 0, sizeof loc);
  loc.base.id = MTC_TL_ID_inputDocumentFileLocation;
  loc.id = DEMO_FILE_ID; /* access_hash 0, file_reference '', thumb_size '' */
  mtc_tl_fn_upload_getFile q;
  memset(&q, 0, sizeof q);
  q.base.id = MTC_TL_ID_fn_upload_getFile;
  q.location = &loc.base;
  q.offset = offset;
  q.limit = (int32_t)DEMO_PART;
  int main_dc = mtc_context_main_dc(rn->ctx);
  uint64_t imports0 = 0;
  for (int dc = 1; dc <= 5; dc++) imports0 += CTR(rn, dc, auth_imports);
  call c;
  rn->res->download_tried = 1;
  if (invoke(rn, st, opts, &q.base, &c) != 0 || c.kind != MTC_RESULT_OK) {
    call_clear(&c);
    return -1;
  }
  mtc_tl_object *obj = NULL;
  int rc = -1;
  if (mtc_tl_parse(c.data, c.len, &obj) == 0 && obj->id == MTC_TL_ID_upload_file) {
    const mtc_tl_upload_file *f = (const mtc_tl_upload_file *)obj;
    if (f->bytes.len == DEMO_PART) {
      memcpy(file + offset, f->bytes.data, DEMO_PART);
      rn->res->bytes_received += DEMO_PART;
      rc = 0;
    } else {
      snprintf(st->note, sizeof st->note, "%zu bytes, expected %u", f->bytes.len, DEMO_PART);
    }
  } else {
    snprintf(st->note, sizeof st->note, "no upload.file in the answer");
  }
  mtc_tl_object_free(obj);
  call_clear(&c);
  if (rc) return rc;
  uint64_t imports1 = 0;
  for (int dc = 1; dc <= 5; dc++) imports1 += CTR(rn, dc, auth_imports);
  st->ok = 1;
  if (st->dc_id != main_dc && (!opts || opts->target == MTC_TARGET_MAIN))
    snprintf(st->note, sizeof st->note, "%u bytes; FILE_MIGRATE_%d from DC %d%s", DEMO_PART,
             st->dc_id, main_dc,
             imports1 > imports0 ? ", authorization exported and imported" : "");
  else
    snprintf(st->note, sizeof st->note, "%u bytes", DEMO_PART);
  return 0;
}

static int download(runner *rn) {
  uint8_t *file = malloc(DEMO_FILE_SIZE), *want = malloc(DEMO_FILE_SIZE);
  int rc = file && want ? 0 : -1;
  /* the first part goes where a client without the document's DC would ask */
  if (!rc) rc = get_part(rn, NULL, 0, file);
  if (!rc) {
    rn->res->file_dc = rn->res->steps[rn->res->n_steps - 1].dc_id;
    mtc_invoke_options o;
    memset(&o, 0, sizeof o);
    o.target = MTC_TARGET_DC;
    o.dc_id = rn->res->file_dc;
    rc = get_part(rn, &o, DEMO_PART, file);
  }
  if (!rc) {
    demo_step *st = step(rn, "check: SHA-256 counter stream, id %s", "1");
    demo_file_bytes(DEMO_FILE_ID, 0, want, DEMO_FILE_SIZE);
    size_t bad = DEMO_FILE_SIZE;
    for (size_t i = 0; i < DEMO_FILE_SIZE; i++) {
      if (file[i] != want[i]) {
        bad = i;
        break;
      }
    }
    st->dc_id = rn->res->file_dc;
    st->ok = bad == DEMO_FILE_SIZE;
    if (st->ok)
      snprintf(st->note, sizeof st->note, "%u of %u bytes match", DEMO_FILE_SIZE, DEMO_FILE_SIZE);
    else
      snprintf(st->note, sizeof st->note, "first difference at byte %zu", bad);
    rn->res->download_ok = st->ok;
    rc = st->ok ? 0 : -1;
  }
  free(file);
  free(want);
  return rc;
}

/* ---- events and the log ---------------------------------------------------------------------- */

static void on_event(void *ud, const mtc_event *ev) {
  runner *rn = ud;
  if (ev->type == MTC_EVENT_AUTH_KEY_CREATED) rn->res->keys_created++;
  if (ev->type == MTC_EVENT_AUTH_KEY_DROPPED) rn->res->keys_dropped++;
  if (ev->type == MTC_EVENT_MAIN_DC_CHANGED) rn->res->main_dc_changes++;
  if (rn->o->verbose && ev->type == MTC_EVENT_CONN_STATE)
    fprintf(stderr, "  [event] DC %d %s#%d state %d%s%s\n", ev->dc_id, ev->media ? "media" : "main",
            ev->index, (int)ev->state, ev->reason ? " reason " : "",
            ev->reason ? mtc_strerror(ev->reason) : "");
}

static void on_log(void *ud, mtc_log_level level, const char *line) {
  (void)level;
  runner *rn = ud;
  if (rn->o->verbose) fprintf(stderr, "  [log] %s\n", line);
}

int demo_run(const demo_opts *o, const mtc_settings *s, demo_result *res) {
  memset(res, 0, sizeof *res);
  runner rn = {o, res, NULL};
  mtc_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_event = on_event;
  cb.on_log = on_log;
  double t0 = mono_ms();
  int rc = mtc_context_new(&rn.ctx, s, &cb, &rn);
  if (rc) {
    snprintf(res->error, sizeof res->error, "mtc_context_new: %s", mtc_strerror(rc));
    return rc;
  }
  int main_dc = mtc_context_main_dc(rn.ctx);
  res->restart = main_dc > 0 && mtc_context_is_authorized(rn.ctx, main_dc);
  rc = res->restart ? who_am_i(&rn) : sign_in(&rn);
  res->login_ok = rc == 0;
  if (res->login_ok) (void)download(&rn);
  res->wall_ms = mono_ms() - t0;
  res->main_dc = mtc_context_main_dc(rn.ctx);
  for (size_t i = 0; i < res->n_steps && !res->error[0]; i++)
    if (!res->steps[i].ok)
      snprintf(res->error, sizeof res->error, "%s: %s", res->steps[i].name, res->steps[i].note);
  res->ctr.version = MTC_COUNTERS_VERSION;
  (void)mtc_context_counters(rn.ctx, &res->ctr);
  (void)mtc_context_counters_json(rn.ctx, &res->ctr_json);
  mtc_context_free(rn.ctx); /* saves the state when it changed */
  return 0;
}

void demo_result_free(demo_result *res) {
  free(res->ctr_json);
  res->ctr_json = NULL;
}
