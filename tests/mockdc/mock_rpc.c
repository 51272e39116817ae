/*
 * Mock DC: API method handlers. TEST CODE (see mock_dc.h).
 *
 * Results use the exact layer-198 constructors of schema/api.tl. A client
 * that announced layer 144 in invokeWithLayer (Telethon 1.25) gets that
 * layer's layouts for the constructors that differ (config, user,
 * auth.authorization), taken from Telethon's generated types; any other
 * layer is refused at the wrapper with 400 INPUT_LAYER_INVALID, because the
 * mock cannot know that layer's layouts.
 *
 * Order of checks for a method, as the real API front end does it:
 *   1. wrappers (invokeWithLayer, initConnection, invokeWithoutUpdates,
 *      invokeAfterMsg(s)) are unwrapped; the layer is remembered per
 *      session and per auth key;
 *   2. no layer known for the session or key -> 400 CONNECTION_NOT_INITED
 *      (auth.bindTempAuthKey is exempt: PFS binds before initConnection);
 *   3. a temp key that is not bound may only call auth.bindTempAuthKey,
 *      help.getConfig, help.getNearestDc -> else 401 AUTH_KEY_PERM_EMPTY;
 *   4. methods that need a logged-in key -> 401 AUTH_KEY_UNREGISTERED;
 *   5. the method's own checks (MIGRATE, argument errors).
 * Malformed arguments answer 400 INPUT_FETCH_ERROR, unknown methods
 * 400 INPUT_METHOD_INVALID.
 */
#include <stdio.h>
#include <string.h>

#include "auth/bind.h"
#include "bytes.h"
#include "mock_dc_int.h"
#include "tl/special.h"

/* ---- constructor ids --------------------------------------------------------- */

/* wrappers */
#define ID_INVOKE_WITH_LAYER 0xda9b0d0du
#define ID_INIT_CONNECTION 0xc1cd5ea9u
#define ID_INVOKE_WITHOUT_UPDATES 0xbf9459b7u
#define ID_INVOKE_AFTER_MSG 0xcb9f372du
#define ID_INVOKE_AFTER_MSGS 0x3dc4b4f0u
/* methods */
#define ID_HELP_GET_CONFIG 0xc4f9186bu
#define ID_HELP_GET_NEAREST_DC 0x1fb33026u
#define ID_AUTH_SEND_CODE 0xa677244fu
#define ID_AUTH_SIGN_IN 0x8d52a951u     /* layer 198: flags, phone_code flags.0 */
#define ID_AUTH_SIGN_IN_144 0xbcd51581u /* layer 144: phone, hash, code */
#define ID_AUTH_LOG_OUT 0x3e72ba19u
#define ID_AUTH_EXPORT_AUTHORIZATION 0xe5bfffcdu
#define ID_AUTH_IMPORT_AUTHORIZATION 0xa57a7dadu
#define ID_AUTH_BIND_TEMP_AUTH_KEY 0xcdd42a05u
#define ID_USERS_GET_USERS 0x0d91a548u
#define ID_UPDATES_GET_STATE 0xedd4882au
#define ID_UPLOAD_GET_FILE 0xbe5335beu
#define ID_UPLOAD_SAVE_FILE_PART 0xb304a621u
/* service methods (answered by mock_session; named here for the counters) */
#define ID_PING 0x7abe77ecu
#define ID_PING_DELAY_DISCONNECT 0xf3427b8cu
#define ID_GET_FUTURE_SALTS 0xb921bd04u
#define ID_DESTROY_SESSION 0xe7512126u
#define ID_DESTROY_AUTH_KEY 0xd1435160u
#define ID_RPC_DROP_ANSWER 0x58e4a740u
#define ID_MSGS_ACK 0x62d6b459u
#define ID_MSGS_STATE_REQ 0xda69fb52u
#define ID_MSG_RESEND_REQ 0x7d861a08u
#define ID_HTTP_WAIT 0x9299359fu
/* argument types */
#define ID_INPUT_CLIENT_PROXY 0x75588b3fu
#define ID_JSON_OBJECT_VALUE 0xc0de1bd9u
#define ID_JSON_NULL 0x3f6d7b68u
#define ID_JSON_BOOL 0xc7345e6au
#define ID_JSON_NUMBER 0x2be0dfa4u
#define ID_JSON_STRING 0xb71e767au
#define ID_JSON_ARRAY 0xf7444763u
#define ID_JSON_OBJECT 0x99c1d49du
#define ID_INPUT_USER_EMPTY 0xb98886cfu
#define ID_INPUT_USER_SELF 0xf7c1b13fu
#define ID_INPUT_USER 0xf21158c6u
#define ID_INPUT_DOCUMENT_FILE_LOCATION 0xbad07584u
/* results */
#define ID_CONFIG 0xcc1a241eu
#define ID_CONFIG_144 0x330b4067u
#define ID_DC_OPTION 0x18b7a10du
#define ID_NEAREST_DC 0x8e1a1775u
#define ID_AUTH_SENT_CODE 0x5e002502u
#define ID_AUTH_SENT_CODE_TYPE_APP 0x3dbb5986u
#define ID_AUTH_AUTHORIZATION 0x2ea2c0d4u
#define ID_AUTH_AUTHORIZATION_144 0x33fb7bb8u
#define ID_AUTH_LOGGED_OUT 0xc3a2835fu
#define ID_AUTH_EXPORTED_AUTHORIZATION 0xb434e2b8u
#define ID_USER 0x4b46c37eu
#define ID_USER_144 0x3ff6ecb0u
#define ID_UPDATES_STATE 0xa56c2a3eu
#define ID_UPLOAD_FILE 0x096a18d5u
#define ID_STORAGE_FILE_PARTIAL 0x40bc6f52u

#define MAX_WRAP_DEPTH 8
#define MAX_JSON_DEPTH 16
#define PHONE_HASH_HEX 18
#define EXPORT_TOKEN_LEN 32
#define FILE_MTIME 1700000000
#define MAX_GET_USERS 200

static const struct {
  uint32_t id;
  const char *name;
} k_names[] = {
    {ID_INVOKE_WITH_LAYER, "invokeWithLayer"},
    {ID_INIT_CONNECTION, "initConnection"},
    {ID_INVOKE_WITHOUT_UPDATES, "invokeWithoutUpdates"},
    {ID_INVOKE_AFTER_MSG, "invokeAfterMsg"},
    {ID_INVOKE_AFTER_MSGS, "invokeAfterMsgs"},
    {ID_HELP_GET_CONFIG, "help.getConfig"},
    {ID_HELP_GET_NEAREST_DC, "help.getNearestDc"},
    {ID_AUTH_SEND_CODE, "auth.sendCode"},
    {ID_AUTH_SIGN_IN, "auth.signIn"},
    {ID_AUTH_SIGN_IN_144, "auth.signIn"},
    {ID_AUTH_LOG_OUT, "auth.logOut"},
    {ID_AUTH_EXPORT_AUTHORIZATION, "auth.exportAuthorization"},
    {ID_AUTH_IMPORT_AUTHORIZATION, "auth.importAuthorization"},
    {ID_AUTH_BIND_TEMP_AUTH_KEY, "auth.bindTempAuthKey"},
    {ID_USERS_GET_USERS, "users.getUsers"},
    {ID_UPDATES_GET_STATE, "updates.getState"},
    {ID_UPLOAD_GET_FILE, "upload.getFile"},
    {ID_UPLOAD_SAVE_FILE_PART, "upload.saveFilePart"},
    {ID_PING, "ping"},
    {ID_PING_DELAY_DISCONNECT, "ping_delay_disconnect"},
    {ID_GET_FUTURE_SALTS, "get_future_salts"},
    {ID_DESTROY_SESSION, "destroy_session"},
    {ID_DESTROY_AUTH_KEY, "destroy_auth_key"},
    {ID_RPC_DROP_ANSWER, "rpc_drop_answer"},
    {ID_MSGS_ACK, "msgs_ack"},
    {ID_MSGS_STATE_REQ, "msgs_state_req"},
    {ID_MSG_RESEND_REQ, "msg_resend_req"},
    {ID_HTTP_WAIT, "http_wait"},
};

void mock_rpc_method_name(uint32_t id, char out[MOCK_DC_NAME_LEN]) {
  for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++) {
    if (k_names[i].id == id) {
      snprintf(out, MOCK_DC_NAME_LEN, "%s", k_names[i].name);
      return;
    }
  }
  snprintf(out, MOCK_DC_NAME_LEN, "0x%08x", (unsigned)id);
}

/* ---- answer helpers ------------------------------------------------------------ */

static void rpc_error(mock_rpc_ctx *ctx, mtci_tl_writer *out, int32_t code, const char *msg) {
  mtci_tl_writer_reset(out);
  mtci_tl_write_u32(out, MTCI_TL_RPC_ERROR_ID);
  mtci_tl_write_int(out, code);
  mtci_tl_write_bytes(out, msg, strlen(msg));
  mock_ctr_error(ctx->dc, code, msg);
  mock_dc_logf(ctx->dc, "rpc %s -> %d %s", ctx->method, (int)code, msg);
}

/* Answer an rpc_error and leave the handler. */
#define FAIL(w, code, msg)                                                                         \
  do {                                                                                             \
    rpc_error(ctx, (w), (code), (msg));                                                            \
    return;                                                                                        \
  } while (0)

static void write_string(mtci_tl_writer *w, const char *s) { mtci_tl_write_bytes(w, s, strlen(s)); }

static int32_t ctx_layer(const mock_rpc_ctx *ctx) {
  if (ctx->sess && ctx->sess->layer) return ctx->sess->layer;
  return ctx->key ? ctx->key->layer : 0;
}

/* The phone's digits ("+1 555..." -> "1555..."): 1 if it is a plausible
 * number (5..15 digits, an optional leading +, spaces and dashes allowed). */
static int phone_digits(const uint8_t *p, size_t n, char out[16]) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t ch = p[i];
    if (ch == '+' && i == 0) continue;
    if (ch == ' ' || ch == '-') continue;
    if (ch < '0' || ch > '9' || k >= 15) return 0;
    out[k++] = (char)ch;
  }
  out[k] = 0;
  return k >= 5;
}

static int64_t user_id_of(const char *digits) {
  int64_t v = 0;
  for (const char *p = digits; *p; p++) v = v * 10 + (*p - '0'); /* <= 15 digits */
  return v;
}

static void hmac_tag(const mock_dc_cluster *cl, const char *label, const void *a, size_t a_len,
                     uint8_t out[32]) {
  mtci_hmac_sha256_ctx h;
  mtci_hmac_sha256_init(&h, cl->secret, sizeof cl->secret);
  mtci_hmac_sha256_update(&h, label, strlen(label));
  mtci_hmac_sha256_update(&h, a, a_len);
  mtci_hmac_sha256_final(&h, out);
}

static int64_t access_hash_of(const mock_dc_cluster *cl, int64_t user_id) {
  uint8_t b[8], t[32];
  mtci_put_le64(b, mtci_u64_of(user_id));
  hmac_tag(cl, "access_hash", b, sizeof b, t);
  return mtci_i64_of(mtci_le64(t));
}

static void phone_code_hash(const mock_dc_cluster *cl, const char *digits,
                            char out[PHONE_HASH_HEX + 1]) {
  uint8_t t[32];
  hmac_tag(cl, "phone_code_hash", digits, strlen(digits), t);
  for (int i = 0; i < PHONE_HASH_HEX; i++)
    out[i] = "0123456789abcdef"[(t[i / 2] >> (i % 2 ? 0 : 4)) & 15];
  out[PHONE_HASH_HEX] = 0;
}

/* Exported authorization for (target dc, user): nonce (8) || HMAC tag (24). */
static void export_token(const mock_dc_cluster *cl, int32_t dc_id, int64_t user_id,
                         const uint8_t nonce[8], uint8_t out[EXPORT_TOKEN_LEN]) {
  uint8_t m[20], t[32];
  mtci_put_le32(m, (uint32_t)dc_id);
  mtci_put_le64(m + 4, mtci_u64_of(user_id));
  memcpy(m + 12, nonce, 8);
  hmac_tag(cl, "export_authorization", m, sizeof m, t);
  memcpy(out, nonce, 8);
  memcpy(out + 8, t, EXPORT_TOKEN_LEN - 8);
}

/* user (self): flags self | access_hash | first_name | last_name | phone. */
static void write_user(mock_rpc_ctx *ctx, mtci_tl_writer *w, int64_t user_id) {
  char phone[24];
  snprintf(phone, sizeof phone, "%lld", (long long)user_id);
  uint32_t flags = 1u << 10 | 1u << 0 | 1u << 1 | 1u << 2 | 1u << 4;
  if (ctx_layer(ctx) == MOCK_LAYER_TELETHON) {
    mtci_tl_write_u32(w, ID_USER_144);
    mtci_tl_write_u32(w, flags);
  } else {
    mtci_tl_write_u32(w, ID_USER);
    mtci_tl_write_u32(w, flags);
    mtci_tl_write_u32(w, 0); /* flags2 */
  }
  mtci_tl_write_long(w, user_id);
  mtci_tl_write_long(w, access_hash_of(ctx->dc->cl, user_id));
  write_string(w, "Mock");
  write_string(w, "User");
  write_string(w, phone);
}

static void write_authorization(mock_rpc_ctx *ctx, mtci_tl_writer *w, int64_t user_id) {
  mtci_tl_write_u32(w, ctx_layer(ctx) == MOCK_LAYER_TELETHON ? ID_AUTH_AUTHORIZATION_144
                                                              : ID_AUTH_AUTHORIZATION);
  mtci_tl_write_u32(w, 0); /* flags: no optional fields */
  write_user(ctx, w, user_id);
}

/* ---- argument skipping ------------------------------------------------------------ */

static void skip_string(mtci_tl_reader *r) {
  size_t n;
  (void)mtci_tl_read_bytes(r, &n);
}

static void skip_json(mtci_tl_reader *r, int depth) {
  if (depth > MAX_JSON_DEPTH) {
    mtci_tl_fail(r, MTC_ERR_TL_DEPTH);
    return;
  }
  uint32_t id = mtci_tl_read_u32(r);
  switch (id) {
  case ID_JSON_NULL: break;
  case ID_JSON_BOOL: (void)mtci_tl_read_bool(r); break;
  case ID_JSON_NUMBER: (void)mtci_tl_read_double(r); break;
  case ID_JSON_STRING: skip_string(r); break;
  case ID_JSON_ARRAY: {
    uint32_t n = mtci_tl_read_vector(r, 4);
    for (uint32_t i = 0; i < n && !r->err; i++) skip_json(r, depth + 1);
    break;
  }
  case ID_JSON_OBJECT: {
    uint32_t n = mtci_tl_read_vector(r, 12);
    for (uint32_t i = 0; i < n && !r->err; i++) {
      mtci_tl_expect(r, ID_JSON_OBJECT_VALUE);
      skip_string(r);
      skip_json(r, depth + 1);
    }
    break;
  }
  default: mtci_tl_fail(r, MTC_ERR_TL_CONSTRUCTOR); break;
  }
}

/* ---- methods ------------------------------------------------------------------------ */

/* dcOption list: every DC's main port, then its alternative port if any;
 * then the config_extra_* DCs of the answering DC's faults. */
static void write_dc_options(mock_rpc_ctx *ctx, mtci_tl_writer *w) {
  const mock_dc_cluster *cl = ctx->dc->cl;
  const mock_dc_faults *f = &ctx->dc->faults;
  uint32_t extra = f->config_extra_count;
  if (f->config_extra_first < 1 || f->config_extra_first > 999) extra = 0;
  else if (extra > 1000 - f->config_extra_first) extra = 1000 - f->config_extra_first;
  uint32_t count = extra;
  for (int i = 0; i < cl->n; i++) count += 1u + (cl->dcs[i].alt_port ? 1u : 0u);
  mtci_tl_write_vector(w, count);
  for (int i = 0; i < cl->n; i++) {
    uint16_t ports[2] = {cl->dcs[i].port, cl->dcs[i].alt_port};
    for (int j = 0; j < 2; j++) {
      if (j == 1 && !ports[1]) continue;
      mtci_tl_write_u32(w, ID_DC_OPTION);
      mtci_tl_write_u32(w, 0); /* flags: plain IPv4 option */
      mtci_tl_write_int(w, cl->dcs[i].id);
      write_string(w, "127.0.0.1");
      mtci_tl_write_int(w, ports[j]);
    }
  }
  uint16_t port = f->config_extra_port ? (uint16_t)f->config_extra_port : ctx->dc->port;
  for (uint32_t k = 0; k < extra; k++) {
    mtci_tl_write_u32(w, ID_DC_OPTION);
    mtci_tl_write_u32(w, 0);
    mtci_tl_write_int(w, (int32_t)(f->config_extra_first + k));
    write_string(w, "127.0.0.1");
    mtci_tl_write_int(w, port);
  }
}

/*
 * config, layer 198 (config#cc1a241e, schema/api.tl) or layer 144
 * (config#330b4067, Telethon 1.25 types.Config): same prefix up to
 * push_chat_limit; 144 has saved_gifs_limit, stickers_faved_limit,
 * pinned_dialogs_count_max and pinned_infolder_count_max besides.
 * Values are the ones the production DCs sent in 2022-2024.
 */
static void m_get_config(mock_rpc_ctx *ctx, mtci_tl_writer *w) {
  int l144 = ctx_layer(ctx) == MOCK_LAYER_TELETHON;
  mtci_tl_write_u32(w, l144 ? ID_CONFIG_144 : ID_CONFIG);
  mtci_tl_write_u32(w, 0);                 /* flags: no optional fields */
  mtci_tl_write_int(w, ctx->now);          /* date */
  mtci_tl_write_int(w, ctx->now + 3600);   /* expires */
  mtci_tl_write_bool(w, 0);                /* test_mode */
  mtci_tl_write_int(w, ctx->dc->id);       /* this_dc */
  write_dc_options(ctx, w);
  write_string(w, "apv3.mockdc.invalid"); /* dc_txt_domain_name */
  mtci_tl_write_int(w, 200);               /* chat_size_max */
  mtci_tl_write_int(w, 200000);            /* megagroup_size_max */
  mtci_tl_write_int(w, 100);               /* forwarded_count_max */
  mtci_tl_write_int(w, 210000);            /* online_update_period_ms */
  mtci_tl_write_int(w, 5000);              /* offline_blur_timeout_ms */
  mtci_tl_write_int(w, 30000);             /* offline_idle_timeout_ms */
  mtci_tl_write_int(w, 300000);            /* online_cloud_timeout_ms */
  mtci_tl_write_int(w, 30000);             /* notify_cloud_delay_ms */
  mtci_tl_write_int(w, 1500);              /* notify_default_delay_ms */
  mtci_tl_write_int(w, 60000);             /* push_chat_period_ms */
  mtci_tl_write_int(w, 2);                 /* push_chat_limit */
  if (l144) mtci_tl_write_int(w, 200);     /* saved_gifs_limit */
  mtci_tl_write_int(w, 172800);            /* edit_time_limit */
  mtci_tl_write_int(w, 2147483647);        /* revoke_time_limit */
  mtci_tl_write_int(w, 2147483647);        /* revoke_pm_time_limit */
  mtci_tl_write_int(w, 2419200);           /* rating_e_decay */
  mtci_tl_write_int(w, 200);               /* stickers_recent_limit */
  if (l144) mtci_tl_write_int(w, 5);       /* stickers_faved_limit */
  mtci_tl_write_int(w, 604800);            /* channels_read_media_period */
  if (l144) {
    mtci_tl_write_int(w, 5);               /* pinned_dialogs_count_max */
    mtci_tl_write_int(w, 100);             /* pinned_infolder_count_max */
  }
  mtci_tl_write_int(w, 20000);             /* call_receive_timeout_ms */
  mtci_tl_write_int(w, 90000);             /* call_ring_timeout_ms */
  mtci_tl_write_int(w, 30000);             /* call_connect_timeout_ms */
  mtci_tl_write_int(w, 10000);             /* call_packet_timeout_ms */
  write_string(w, "https://t.me/");       /* me_url_prefix */
  mtci_tl_write_int(w, 1024);              /* caption_length_max */
  mtci_tl_write_int(w, 4096);              /* message_length_max */
  mtci_tl_write_int(w, ctx->dc->cl->n < 4 ? ctx->dc->cl->n : 4); /* webfile_dc_id */
}

static void m_get_nearest_dc(mock_rpc_ctx *ctx, mtci_tl_writer *w) {
  int nearest = ctx->dc->cl->cfg.nearest_dc;
  if (nearest < 1 || nearest > ctx->dc->cl->n) nearest = ctx->dc->id;
  mtci_tl_write_u32(w, ID_NEAREST_DC);
  write_string(w, "ZZ");
  mtci_tl_write_int(w, ctx->dc->id);
  mtci_tl_write_int(w, nearest);
}

static int home_dc(const mock_rpc_ctx *ctx) { return ctx->dc->cl->cfg.home_dc; }

/* The key whose login state the call reads or writes (see mock_dc_auth_key). */
static mock_key *login_key(mock_rpc_ctx *ctx) { return mock_dc_auth_key(ctx->dc, ctx->key); }

static int64_t logged_in_user(mock_rpc_ctx *ctx) {
  mock_key *k = login_key(ctx);
  return k ? k->user_id : 0;
}

static void m_send_code(mock_rpc_ctx *ctx, mtci_tl_reader *r, mtci_tl_writer *w) {
  size_t pn, hn;
  const uint8_t *phone = mtci_tl_read_bytes(r, &pn);
  int32_t api_id = mtci_tl_read_int(r);
  (void)mtci_tl_read_bytes(r, &hn); /* api_hash */
  /* settings:CodeSettings follows; its layout differs by layer and no
   * field of it matters here. */
  char digits[16];
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  if (!phone_digits(phone, pn, digits)) FAIL(w, 400, "PHONE_NUMBER_INVALID");
  if (api_id <= 0) FAIL(w, 400, "API_ID_INVALID");
  if (ctx->dc->id != home_dc(ctx)) {
    char m[32];
    snprintf(m, sizeof m, "PHONE_MIGRATE_%d", home_dc(ctx));
    FAIL(w, 303, m);
  }
  char hash[PHONE_HASH_HEX + 1];
  phone_code_hash(ctx->dc->cl, digits, hash);
  mtci_tl_write_u32(w, ID_AUTH_SENT_CODE);
  mtci_tl_write_u32(w, 0); /* flags: no next_type, no timeout */
  mtci_tl_write_u32(w, ID_AUTH_SENT_CODE_TYPE_APP);
  mtci_tl_write_int(w, (int32_t)strlen(MOCK_DC_LOGIN_CODE));
  write_string(w, hash);
}

static void m_sign_in(mock_rpc_ctx *ctx, mtci_tl_reader *r, uint32_t id, mtci_tl_writer *w) {
  uint32_t flags = id == ID_AUTH_SIGN_IN ? mtci_tl_read_u32(r) : 1u;
  size_t pn, hn, cn = 0;
  const uint8_t *phone = mtci_tl_read_bytes(r, &pn);
  const uint8_t *hash = mtci_tl_read_bytes(r, &hn);
  const uint8_t *code = (flags & 1u) ? mtci_tl_read_bytes(r, &cn) : NULL;
  /* email_verification (flags.1) would follow; it is not used here. */
  char digits[16];
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  if (!phone_digits(phone, pn, digits)) FAIL(w, 400, "PHONE_NUMBER_INVALID");
  if (ctx->dc->id != home_dc(ctx)) {
    char m[32];
    snprintf(m, sizeof m, "PHONE_MIGRATE_%d", home_dc(ctx));
    FAIL(w, 303, m);
  }
  if (hn == 0) FAIL(w, 400, "PHONE_CODE_HASH_EMPTY");
  char want[PHONE_HASH_HEX + 1];
  phone_code_hash(ctx->dc->cl, digits, want);
  if (hn != PHONE_HASH_HEX || memcmp(hash, want, hn) != 0)
    FAIL(w, 400, "PHONE_CODE_EXPIRED");
  if (!code || cn == 0) FAIL(w, 400, "PHONE_CODE_EMPTY");
  if (cn != strlen(MOCK_DC_LOGIN_CODE) || memcmp(code, MOCK_DC_LOGIN_CODE, cn) != 0)
    FAIL(w, 400, "PHONE_CODE_INVALID");
  mock_key *k = login_key(ctx);
  int64_t uid = user_id_of(digits);
  k->user_id = uid;
  mock_dc_logf(ctx->dc, "signIn: user %lld authorized", (long long)uid);
  write_authorization(ctx, w, uid);
}

static void m_log_out(mock_rpc_ctx *ctx, mtci_tl_writer *w) {
  mock_key *k = login_key(ctx);
  k->user_id = 0;
  mtci_tl_write_u32(w, ID_AUTH_LOGGED_OUT);
  mtci_tl_write_u32(w, 0);
}

static void m_export_authorization(mock_rpc_ctx *ctx, mtci_tl_reader *r, mtci_tl_writer *w) {
  int32_t dc_id = mtci_tl_read_int(r);
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  if (dc_id < 1 || dc_id > ctx->dc->cl->n || dc_id == ctx->dc->id)
    FAIL(w, 400, "DC_ID_INVALID");
  int64_t uid = logged_in_user(ctx);
  uint8_t nonce[8], token[EXPORT_TOKEN_LEN];
  if (mock_dc_random(ctx->dc->cl, nonce, sizeof nonce) != 0)
    FAIL(w, 500, "INTERNAL");
  export_token(ctx->dc->cl, dc_id, uid, nonce, token);
  mtci_tl_write_u32(w, ID_AUTH_EXPORTED_AUTHORIZATION);
  mtci_tl_write_long(w, uid);
  mtci_tl_write_bytes(w, token, sizeof token);
}

static void m_import_authorization(mock_rpc_ctx *ctx, mtci_tl_reader *r, mtci_tl_writer *w) {
  int64_t uid = mtci_tl_read_long(r);
  size_t n;
  const uint8_t *bytes = mtci_tl_read_bytes(r, &n);
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  uint8_t want[EXPORT_TOKEN_LEN];
  if (n != EXPORT_TOKEN_LEN || uid <= 0) FAIL(w, 400, "AUTH_BYTES_INVALID");
  export_token(ctx->dc->cl, ctx->dc->id, uid, bytes, want);
  if (!mtci_ct_equal(want, bytes, n)) FAIL(w, 400, "AUTH_BYTES_INVALID");
  mock_key *k = login_key(ctx);
  k->user_id = uid;
  mock_dc_logf(ctx->dc, "importAuthorization: user %lld authorized", (long long)uid);
  write_authorization(ctx, w, uid);
}

/* auth.bindTempAuthKey (PROTOCOL.md §6.8): checked with mtci_bind_decrypt
 * under the perm key, then every inner field against the call and the
 * message it came in. */
static void m_bind_temp_auth_key(mock_rpc_ctx *ctx, mtci_tl_reader *r, mtci_tl_writer *w) {
  int64_t perm_id = mtci_tl_read_long(r);
  int64_t nonce = mtci_tl_read_long(r);
  int32_t expires_at = mtci_tl_read_int(r);
  size_t n;
  const uint8_t *enc = mtci_tl_read_bytes(r, &n);
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  if (!ctx->key->temp) FAIL(w, 400, "TEMP_AUTH_KEY_EMPTY");
  uint8_t pid[8];
  mtci_put_le64(pid, mtci_u64_of(perm_id));
  mock_key *perm = mock_dc_find_key(ctx->dc, pid);
  if (!perm || perm->temp) FAIL(w, 400, "ENCRYPTED_MESSAGE_INVALID");
  mtci_bind_inner in;
  int64_t inner_msg_id;
  int rc = mtci_bind_decrypt(perm->key, enc, n, &in, &inner_msg_id);
  if (rc != 0 || in.nonce != nonce || in.expires_at != expires_at ||
      inner_msg_id != ctx->msg_id || memcmp(in.temp_auth_key_id, ctx->key->id, 8) != 0 ||
      memcmp(in.perm_auth_key_id, pid, 8) != 0 || in.temp_session_id != ctx->session_id) {
    mock_dc_logf(ctx->dc, "bindTempAuthKey: rejected (rc %d)", rc);
    FAIL(w, 400, "ENCRYPTED_MESSAGE_INVALID");
  }
  if (ctx->key->bound && memcmp(ctx->key->bound_perm_id, pid, 8) != 0)
    FAIL(w, 400, "TEMP_AUTH_KEY_ALREADY_BOUND");
  /* One temp key per perm key: a new binding replaces the old one. */
  for (size_t i = 0; i < MOCK_DC_MAX_KEYS; i++) {
    mock_key *k = &ctx->dc->keys[i];
    if (k->used && k != ctx->key && k->temp && k->bound && memcmp(k->bound_perm_id, pid, 8) == 0)
      k->bound = 0;
  }
  ctx->key->bound = 1;
  memcpy(ctx->key->bound_perm_id, pid, 8);
  ctx->key->expires_at = expires_at;
  ctx->dc->ctr.binds++;
  mtci_tl_write_bool(w, 1);
}

static void m_get_users(mock_rpc_ctx *ctx, mtci_tl_reader *r, mtci_tl_writer *w) {
  uint32_t n = mtci_tl_read_vector(r, 4);
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  if (n > MAX_GET_USERS) FAIL(w, 400, "LIMIT_INVALID");
  int64_t self = logged_in_user(ctx);
  uint32_t found = 0;
  for (uint32_t i = 0; i < n && !r->err; i++) {
    uint32_t id = mtci_tl_read_u32(r);
    if (id == ID_INPUT_USER_SELF) {
      found++;
    } else if (id == ID_INPUT_USER) {
      int64_t uid = mtci_tl_read_long(r);
      (void)mtci_tl_read_long(r);
      if (uid == self) found++;
    } else if (id != ID_INPUT_USER_EMPTY) {
      FAIL(w, 400, "USER_ID_INVALID"); /* e.g. inputUserFromMessage */
    }
  }
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  mtci_tl_write_vector(w, found);
  for (uint32_t i = 0; i < found; i++) write_user(ctx, w, self);
}

static void m_get_state(mock_rpc_ctx *ctx, mtci_tl_writer *w) {
  mtci_tl_write_u32(w, ID_UPDATES_STATE);
  mtci_tl_write_int(w, 1);         /* pts */
  mtci_tl_write_int(w, 0);         /* qts */
  mtci_tl_write_int(w, ctx->now);  /* date */
  mtci_tl_write_int(w, 1);         /* seq */
  mtci_tl_write_int(w, 0);         /* unread_count */
}

size_t mock_dc_file_content(int64_t file_id, uint64_t offset, uint8_t *out, size_t len) {
  if (offset >= MOCK_DC_FILE_SIZE) return 0;
  if (len > MOCK_DC_FILE_SIZE - offset) len = (size_t)(MOCK_DC_FILE_SIZE - offset);
  size_t done = 0;
  while (done < len) {
    uint64_t pos = offset + done, block = pos / 32;
    uint8_t in[16], h[32];
    mtci_put_le64(in, mtci_u64_of(file_id));
    for (int i = 0; i < 8; i++) in[8 + i] = (uint8_t)(block >> (56 - 8 * i));
    mtci_sha256(in, sizeof in, h);
    size_t from = (size_t)(pos % 32), take = 32 - from;
    if (take > len - done) take = len - done;
    memcpy(out + done, h + from, take);
    done += take;
  }
  return len;
}

/*
 * upload.getFile, the production rules for offset and limit:
 *   precise (flags.0): offset and limit multiples of 1 KiB, limit <= 1 MiB;
 *   else: offset and limit multiples of 4 KiB, 1 MiB divisible by limit,
 *   and the part must not cross a 1 MiB boundary.
 * The document must be inputDocumentFileLocation; it lives on files_dc.
 */
static void m_get_file(mock_rpc_ctx *ctx, mtci_tl_reader *r, mtci_tl_writer *w) {
  uint32_t flags = mtci_tl_read_u32(r);
  uint32_t loc = mtci_tl_read_u32(r);
  if (!r->err && loc != ID_INPUT_DOCUMENT_FILE_LOCATION)
    FAIL(w, 400, "LOCATION_INVALID");
  int64_t file_id = mtci_tl_read_long(r);
  (void)mtci_tl_read_long(r); /* access_hash */
  skip_string(r);             /* file_reference */
  skip_string(r);             /* thumb_size */
  int64_t offset = mtci_tl_read_long(r);
  int32_t limit = mtci_tl_read_int(r);
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  int files_dc = ctx->dc->cl->cfg.files_dc;
  if (ctx->dc->id != files_dc) {
    char m[32];
    snprintf(m, sizeof m, "FILE_MIGRATE_%d", files_dc);
    FAIL(w, 303, m);
  }
  if (file_id <= 0) FAIL(w, 400, "FILE_ID_INVALID");
  const int64_t mib = 1 << 20;
  int precise = (flags & 1u) != 0;
  int64_t align = precise ? 1024 : 4096;
  if (offset < 0 || offset % align) FAIL(w, 400, "OFFSET_INVALID");
  if (limit <= 0 || limit > mib || limit % align ||
      (!precise && (mib % limit || offset / mib != (offset + limit - 1) / mib)))
    FAIL(w, 400, "LIMIT_INVALID");
  size_t avail = offset >= MOCK_DC_FILE_SIZE ? 0 : (size_t)(MOCK_DC_FILE_SIZE - offset);
  size_t n = (size_t)limit < avail ? (size_t)limit : avail;
  mtci_tl_write_u32(w, ID_UPLOAD_FILE);
  mtci_tl_write_u32(w, ID_STORAGE_FILE_PARTIAL);
  mtci_tl_write_int(w, FILE_MTIME);
  uint8_t *dst = mtci_tl_write_bytes_reserve(w, n);
  if (dst && n) mock_dc_file_content(file_id, (uint64_t)offset, dst, n);
}

/* upload.saveFilePart: the part is checked for shape (production: at most
 * 512 KiB, a multiple of 1 KiB, last part excepted) and dropped; boolTrue. */
static void m_save_file_part(mtci_tl_reader *r, mock_rpc_ctx *ctx, mtci_tl_writer *w) {
  int64_t file_id = mtci_tl_read_long(r);
  int32_t part = mtci_tl_read_int(r);
  size_t n;
  (void)mtci_tl_read_bytes(r, &n);
  if (r->err) FAIL(w, 400, "INPUT_FETCH_ERROR");
  if (file_id == 0) FAIL(w, 400, "FILE_ID_INVALID");
  if (part < 0) FAIL(w, 400, "FILE_PART_INVALID");
  if (n == 0 || n > 512 * 1024) FAIL(w, 400, "FILE_PART_SIZE_INVALID");
  mtci_tl_write_bool(w, 1);
}

/* ---- dispatch ------------------------------------------------------------------- */

static int needs_login(uint32_t id) {
  switch (id) {
  case ID_AUTH_LOG_OUT:
  case ID_AUTH_EXPORT_AUTHORIZATION:
  case ID_USERS_GET_USERS:
  case ID_UPDATES_GET_STATE:
  case ID_UPLOAD_GET_FILE:
  case ID_UPLOAD_SAVE_FILE_PART: return 1;
  default: return 0;
  }
}

static int allowed_unbound(uint32_t id) {
  return id == ID_AUTH_BIND_TEMP_AUTH_KEY || id == ID_HELP_GET_CONFIG ||
         id == ID_HELP_GET_NEAREST_DC;
}

static int known_method(uint32_t id) {
  switch (id) {
  case ID_HELP_GET_CONFIG:
  case ID_HELP_GET_NEAREST_DC:
  case ID_AUTH_SEND_CODE:
  case ID_AUTH_SIGN_IN:
  case ID_AUTH_SIGN_IN_144:
  case ID_AUTH_LOG_OUT:
  case ID_AUTH_EXPORT_AUTHORIZATION:
  case ID_AUTH_IMPORT_AUTHORIZATION:
  case ID_AUTH_BIND_TEMP_AUTH_KEY:
  case ID_USERS_GET_USERS:
  case ID_UPDATES_GET_STATE:
  case ID_UPLOAD_GET_FILE:
  case ID_UPLOAD_SAVE_FILE_PART: return 1;
  default: return 0;
  }
}

static void set_layer(mock_rpc_ctx *ctx, int32_t layer) {
  if (ctx->sess) ctx->sess->layer = layer;
  if (ctx->key) ctx->key->layer = layer;
}

void mock_rpc_call(mock_rpc_ctx *ctx, const uint8_t *q, size_t len, mtci_tl_writer *out) {
  mtci_tl_reader r;
  mtci_tl_reader_init(&r, q, len);
  snprintf(ctx->method, sizeof ctx->method, "?");
  uint32_t id = 0;
  if (ctx->layer_in) { /* invokeWithLayer already taken off by mock_session */
    if (ctx->layer_in != MOCK_LAYER_CURRENT && ctx->layer_in != MOCK_LAYER_TELETHON) {
      mock_rpc_method_name(len >= 4 ? mtci_le32(q) : 0, ctx->method);
      FAIL(out, 400, "INPUT_LAYER_INVALID");
    }
    set_layer(ctx, ctx->layer_in);
  }
  /* Wrappers: each prefixes the query with its own arguments. */
  for (int depth = 0;; depth++) {
    id = mtci_tl_read_u32(&r);
    mock_rpc_method_name(id, ctx->method);
    if (r.err) FAIL(out, 400, "INPUT_FETCH_ERROR");
    if (depth >= MAX_WRAP_DEPTH) FAIL(out, 400, "INPUT_FETCH_ERROR");
    if (id == ID_INVOKE_WITH_LAYER) {
      int32_t layer = mtci_tl_read_int(&r);
      if (r.err) FAIL(out, 400, "INPUT_FETCH_ERROR");
      if (layer != MOCK_LAYER_CURRENT && layer != MOCK_LAYER_TELETHON)
        FAIL(out, 400, "INPUT_LAYER_INVALID");
      set_layer(ctx, layer);
    } else if (id == ID_INIT_CONNECTION) {
      uint32_t flags = mtci_tl_read_u32(&r);
      (void)mtci_tl_read_int(&r); /* api_id */
      for (int i = 0; i < 6; i++) skip_string(&r);
      if (flags & 1u) {
        mtci_tl_expect(&r, ID_INPUT_CLIENT_PROXY);
        skip_string(&r);
        (void)mtci_tl_read_int(&r);
      }
      if (flags & 2u) skip_json(&r, 0);
      if (r.err) FAIL(out, 400, "INPUT_FETCH_ERROR");
    } else if (id == ID_INVOKE_WITHOUT_UPDATES) {
      /* nothing to skip */
    } else if (id == ID_INVOKE_AFTER_MSG) {
      (void)mtci_tl_read_long(&r);
    } else if (id == ID_INVOKE_AFTER_MSGS) {
      uint32_t n = mtci_tl_read_vector(&r, 8);
      for (uint32_t i = 0; i < n && !r.err; i++) (void)mtci_tl_read_long(&r);
    } else {
      break;
    }
  }

  if (!known_method(id)) FAIL(out, 400, "INPUT_METHOD_INVALID");
  if (id != ID_AUTH_BIND_TEMP_AUTH_KEY && ctx_layer(ctx) == 0)
    FAIL(out, 400, "CONNECTION_NOT_INITED");
  if (!allowed_unbound(id) && !mock_dc_auth_key(ctx->dc, ctx->key))
    FAIL(out, 401, "AUTH_KEY_PERM_EMPTY");
  if (needs_login(id) && logged_in_user(ctx) == 0)
    FAIL(out, 401, "AUTH_KEY_UNREGISTERED");

  switch (id) {
  case ID_HELP_GET_CONFIG: m_get_config(ctx, out); break;
  case ID_HELP_GET_NEAREST_DC: m_get_nearest_dc(ctx, out); break;
  case ID_AUTH_SEND_CODE: m_send_code(ctx, &r, out); break;
  case ID_AUTH_SIGN_IN:
  case ID_AUTH_SIGN_IN_144: m_sign_in(ctx, &r, id, out); break;
  case ID_AUTH_LOG_OUT: m_log_out(ctx, out); break;
  case ID_AUTH_EXPORT_AUTHORIZATION: m_export_authorization(ctx, &r, out); break;
  case ID_AUTH_IMPORT_AUTHORIZATION: m_import_authorization(ctx, &r, out); break;
  case ID_AUTH_BIND_TEMP_AUTH_KEY: m_bind_temp_auth_key(ctx, &r, out); break;
  case ID_USERS_GET_USERS: m_get_users(ctx, &r, out); break;
  case ID_UPDATES_GET_STATE: m_get_state(ctx, out); break;
  case ID_UPLOAD_GET_FILE: m_get_file(ctx, &r, out); break;
  case ID_UPLOAD_SAVE_FILE_PART: m_save_file_part(&r, ctx, out); break;
  default: rpc_error(ctx, out, 400, "INPUT_METHOD_INVALID"); break;
  }
}
