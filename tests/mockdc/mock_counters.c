/*
 * Mock DC counters: per-DC tallies and their JSON form (jansson). TEST CODE.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_dc_int.h"

void mock_ctr_add(mock_dc_name_count *v, size_t *n, const char *name) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp(v[i].name, name) == 0) {
      v[i].count++;
      return;
    }
  }
  /* A full table folds the rest into one bucket, so totals stay right. */
  if (*n >= MOCK_DC_MAX_NAMES) {
    mock_dc_name_count *last = &v[MOCK_DC_MAX_NAMES - 1];
    if (strcmp(last->name, "other") != 0) snprintf(last->name, sizeof last->name, "other");
    last->count++;
    return;
  }
  snprintf(v[*n].name, sizeof v[*n].name, "%s", name);
  v[*n].count = 1;
  (*n)++;
}

void mock_ctr_method(mock_dc *dc, const char *name) {
  dc->ctr.rpcs++;
  mock_ctr_add(dc->ctr.methods, &dc->ctr.n_methods, name);
}

void mock_ctr_error(mock_dc *dc, int32_t code, const char *message) {
  char name[MOCK_DC_NAME_LEN];
  snprintf(name, sizeof name, "%d %s", (int)code, message);
  mock_ctr_add(dc->ctr.errors, &dc->ctr.n_errors, name);
}

void mock_ctr_transport(mock_dc *dc, const char *name) {
  mock_ctr_add(dc->ctr.transports, &dc->ctr.n_transports, name);
}

uint64_t mock_dc_counter_name(const mock_dc_name_count *v, size_t n, const char *name) {
  if (!v || !name) return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0) return v[i].count;
  return 0;
}

/* ---- JSON -------------------------------------------------------------------- */

typedef struct scalar_field {
  const char *name;
  size_t off;
} scalar_field;

#define F(x) {#x, offsetof(mock_dc_counters, x)}
static const scalar_field k_fields[] = {
    F(tcp_accepted),     F(tcp_closed),      F(handshakes_perm),
    F(handshakes_temp),  F(handshake_failures), F(sessions_created),
    F(binds),            F(rpcs),            F(quick_acks),
    F(transport_errors_sent), F(transport_404), F(transport_429),
    F(framing_errors),   F(bad_msgs_sent),   F(answers_dropped), F(init_via_proxy),
    F(bytes_in),         F(bytes_out),
};
#undef F

static uint64_t field(const mock_dc_counters *c, size_t off) {
  uint64_t v;
  memcpy(&v, (const uint8_t *)c + off, sizeof v);
  return v;
}

/* json_integer takes a signed long long; counters stay far below 2^63. */
static json_t *jint(uint64_t v) { return json_integer((json_int_t)(v & 0x7fffffffffffffffull)); }

static json_t *name_map(const mock_dc_name_count *v, size_t n) {
  json_t *o = json_object();
  if (!o) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (json_object_set_new(o, v[i].name, jint(v[i].count)) != 0) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

static void map_merge(json_t *dst, const mock_dc_name_count *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    json_t *old = json_object_get(dst, v[i].name);
    uint64_t base = old ? (uint64_t)json_integer_value(old) : 0;
    json_object_set_new(dst, v[i].name, jint(base + v[i].count));
  }
}

char *mock_ctr_json(const mock_dc_counters *ctrs, int n) {
  json_t *root = json_object();
  json_t *dcs = json_array();
  json_t *tot = json_object();
  json_t *tm = json_object(), *te = json_object(), *tt = json_object();
  char *text = NULL;
  if (!root || !dcs || !tot || !tm || !te || !tt) goto out;
  uint64_t sums[sizeof k_fields / sizeof k_fields[0]] = {0};
  for (int i = 0; i < n; i++) {
    const mock_dc_counters *c = &ctrs[i];
    json_t *d = json_object();
    if (!d) goto out;
    json_object_set_new(d, "id", json_integer(c->dc_id));
    json_object_set_new(d, "port", json_integer(c->port));
    if (c->alt_port) json_object_set_new(d, "alt_port", json_integer(c->alt_port));
    for (size_t f = 0; f < sizeof k_fields / sizeof k_fields[0]; f++) {
      uint64_t v = field(c, k_fields[f].off);
      sums[f] += v;
      json_object_set_new(d, k_fields[f].name, jint(v));
    }
    json_object_set_new(d, "rpcs_by_method", name_map(c->methods, c->n_methods));
    json_object_set_new(d, "errors", name_map(c->errors, c->n_errors));
    json_object_set_new(d, "transports", name_map(c->transports, c->n_transports));
    map_merge(tm, c->methods, c->n_methods);
    map_merge(te, c->errors, c->n_errors);
    map_merge(tt, c->transports, c->n_transports);
    json_array_append_new(dcs, d);
  }
  for (size_t f = 0; f < sizeof k_fields / sizeof k_fields[0]; f++)
    json_object_set_new(tot, k_fields[f].name, jint(sums[f]));
  json_object_set(tot, "rpcs_by_method", tm);
  json_object_set(tot, "errors", te);
  json_object_set(tot, "transports", tt);
  json_object_set(root, "dcs", dcs);
  json_object_set(root, "totals", tot);
  text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
  json_decref(tm);
  json_decref(te);
  json_decref(tt);
  json_decref(tot);
  json_decref(dcs);
  json_decref(root);
  return text;
}
