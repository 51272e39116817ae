/*
 * Schema reader: one combinator per `;`-terminated statement.
 *
 *   name#id {X:Type} field:type ... = Result;
 *
 * Sections switch with `---functions---` / `---types---` (each file starts
 * in types). `//` starts a comment. Built-in lines are skipped: primitive
 * declarations (`int ? = Int;`) and `vector {t:Type} # [ t ] = Vector t;`.
 * Lines without `#id` get the CRC32 of their canonical text (see canon_crc).
 * The same line (same id and text) in two files is accepted once; the same
 * id or name with a different definition is an error.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlgen.h"

#define TG_INF 1000000

/* Member names that would clash with C or C++ keywords, common object-like
 * macros, or the struct's own first member. They get a trailing '_'. */
static const char *const reserved[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool", "true", "false", "class",
    "private", "public", "protected", "new", "delete", "this", "template", "namespace",
    "operator", "friend", "virtual", "catch", "try", "throw", "explicit", "export", "mutable",
    "typename", "using", "and", "or", "not", "xor", "compl", "bitand", "bitor", "and_eq",
    "or_eq", "xor_eq", "not_eq", "asm", "typeid", "wchar_t", "char16_t", "char32_t", "nullptr",
    "constexpr", "decltype", "noexcept", "static_assert", "thread_local", "alignas", "alignof",
    "concept", "requires", "module", "import", "final", "override", "unix", "linux", "errno",
    "stdin", "stdout", "stderr", "NULL", "EOF", "complex", "imaginary", "noreturn", "base", NULL};

static int is_reserved(const char *n) {
  for (int i = 0; reserved[i]; i++)
    if (!strcmp(reserved[i], n)) return 1;
  return 0;
}

static int is_ident(const char *s, size_t n, int allow_dot) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(isalnum(c) || c == '_' || (allow_dot && c == '.'))) return 0;
  }
  return 1;
}

/* ---- growable arrays (memory from tg_alloc) -------------------------------- */

static void *grow(void *p, int *cap, int n, size_t elem) {
  if (n < *cap) return p;
  int ncap = *cap ? *cap * 2 : 64;
  void *q = tg_alloc((size_t)ncap * elem);
  if (p) memcpy(q, p, (size_t)*cap * elem);
  *cap = ncap;
  return q; /* the old block stays on the free-at-exit list */
}

int tg_find_comb(const tg_schema *s, const char *name) {
  for (int i = 0; i < s->ncombs; i++)
    if (!s->combs[i].is_method && !strcmp(s->combs[i].name, name)) return i;
  return -1;
}

int tg_find_group(const tg_schema *s, const char *name) {
  for (int i = 0; i < s->ngroups; i++)
    if (!strcmp(s->groups[i].name, name)) return i;
  return -1;
}

/* ---- canonical text and id -------------------------------------------------- */

/* Replace every occurrence of `from` by `to` in a heap string (tg_alloc). */
static char *replace_all(const char *src, const char *from, const char *to) {
  size_t fl = strlen(from), tl = strlen(to), n = 0;
  for (const char *p = strstr(src, from); p; p = strstr(p + fl, from)) n++;
  char *out = tg_alloc(strlen(src) + n * (tl > fl ? tl - fl : 0) + 1), *o = out;
  const char *p = src, *q;
  while ((q = strstr(p, from))) {
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, to, tl);
    o += tl;
    p = q + fl;
  }
  strcpy(o, p);
  return out;
}

/*
 * The id of a combinator written without #id: CRC32 of its canonical text,
 * the rule of the TL documentation as every generator implements it:
 * "name args = Result" with single spaces, `bytes` spelled `string`, `<`
 * replaced by a space, `>` `{` `}` dropped, and flags.N?true arguments left
 * out. tlgen also checks the rule against every explicit id (see the count
 * it prints).
 */
static uint32_t canon_crc(const char *text) {
  char *t = replace_all(text, ":bytes ", ":string ");
  t = replace_all(t, "?bytes ", "?string ");
  char *o = t;
  for (const char *p = t; *p; p++) {
    if (*p == '<') *o++ = ' ';
    else if (*p != '>' && *p != '{' && *p != '}') *o++ = *p;
  }
  *o = 0;
  /* drop " name:flagsN.K?true" */
  char *out = tg_alloc(strlen(t) + 1);
  o = out;
  const char *p = t;
  while (*p) {
    if (*p == ' ') {
      const char *q = p + 1, *tok_end = q;
      while (*tok_end && *tok_end != ' ') tok_end++;
      const char *colon = memchr(q, ':', (size_t)(tok_end - q));
      size_t tl = (size_t)(tok_end - q);
      if (colon && tl > 5 && !memcmp(tok_end - 5, "?true", 5) &&
          !strncmp(colon + 1, "flags", 5)) {
        p = tok_end;
        continue;
      }
    }
    *o++ = *p++;
  }
  *o = 0;
  return tg_crc32(out, strlen(out));
}

/* ---- statements ---------------------------------------------------------- */

typedef struct stmt_ctx {
  tg_schema *s;
  const char *file;
  int line;
  int methods;
} stmt_ctx;

#define MAXTOK 256

static void add_comb(stmt_ctx *c, tg_comb *nc) {
  tg_schema *s = c->s;
  for (int i = 0; i < s->ncombs; i++) {
    tg_comb *o = &s->combs[i];
    if (o->id == nc->id) {
      if (!strcmp(o->canon, nc->canon) && o->is_method == nc->is_method) {
        s->duplicates++;
        return;
      }
      tg_die("%s:%d: id %08x of %s already used by %s (%s:%d) with a different definition",
             c->file, c->line, nc->id, nc->name, o->name, o->file, o->line);
    }
    if (o->is_method == nc->is_method && !strcmp(o->name, nc->name))
      tg_die("%s:%d: %s redefined with another id (first at %s:%d)", c->file, c->line, nc->name,
             o->file, o->line);
  }
  s->combs = grow(s->combs, &s->capcombs, s->ncombs, sizeof *s->combs);
  s->combs[s->ncombs++] = *nc;
}

static void parse_stmt(stmt_ctx *c, char *text) {
  char *tok[MAXTOK];
  int nt = 0;
  for (char *p = strtok(text, " \t\r\n"); p; p = strtok(NULL, " \t\r\n")) {
    if (nt == MAXTOK) tg_die("%s:%d: too many tokens", c->file, c->line);
    tok[nt++] = p;
  }
  if (nt == 0) return;
  int eq = -1;
  for (int i = 0; i < nt; i++)
    if (!strcmp(tok[i], "=")) {
      eq = i;
      break;
    }
  if (eq < 1 || eq == nt - 1) tg_die("%s:%d: expected `name ... = Type;`", c->file, c->line);
  for (int i = 1; i < eq; i++) /* built-in primitive: int ? = Int; */
    if (!strcmp(tok[i], "?")) return;

  tg_comb nc;
  memset(&nc, 0, sizeof nc);
  nc.file = c->file;
  nc.line = c->line;
  nc.is_method = c->methods;
  char *hash = strchr(tok[0], '#');
  size_t nl = hash ? (size_t)(hash - tok[0]) : strlen(tok[0]);
  if (!is_ident(tok[0], nl, 1) || !isalpha((unsigned char)tok[0][0]) ||
      tok[0][nl - 1] == '.')
    tg_die("%s:%d: bad combinator name `%s`", c->file, c->line, tok[0]);
  nc.name = tg_strndup(tok[0], nl);
  if (!strcmp(nc.name, "vector")) return; /* built-in Vector t */
  if (hash) {
    char *end;
    unsigned long v = strtoul(hash + 1, &end, 16);
    if (*end || end - (hash + 1) < 1 || end - (hash + 1) > 8)
      tg_die("%s:%d: bad id in `%s`", c->file, c->line, tok[0]);
    nc.id = (uint32_t)v;
    nc.explicit_id = 1;
  }
  nc.cname = tg_strdup(nc.name);
  for (char *p = nc.cname; *p; p++)
    if (*p == '.') *p = '_';

  /* result: the tokens after '=' joined by one space */
  size_t rl = 0;
  for (int i = eq + 1; i < nt; i++) rl += strlen(tok[i]) + 1;
  nc.result = tg_alloc(rl + 1);
  for (int i = eq + 1; i < nt; i++) {
    if (i > eq + 1) strcat(nc.result, " ");
    strcat(nc.result, tok[i]);
  }
  if (!is_ident(nc.result, strlen(nc.result), 1)) {
    /* Vector<T> results of methods are allowed; everything else must be a name */
    if (!nc.is_method || strncmp(nc.result, "Vector<", 7) ||
        nc.result[strlen(nc.result) - 1] != '>')
      tg_die("%s:%d: unsupported result type `%s`", c->file, c->line, nc.result);
  }

  /* fields */
  char *generics[8];
  int ng = 0;
  nc.fields = tg_alloc(sizeof(tg_field) * (size_t)(eq > 1 ? eq : 1));
  for (int i = 1; i < eq; i++) {
    char *t = tok[i];
    size_t tl = strlen(t);
    if (t[0] == '{') {
      char *colon = strchr(t, ':');
      if (t[tl - 1] != '}' || !colon || strcmp(colon, ":Type}") || colon == t + 1 || ng == 8)
        tg_die("%s:%d: unsupported generic parameter `%s`", c->file, c->line, t);
      generics[ng++] = tg_strndup(t + 1, (size_t)(colon - t - 1));
      nc.generic = 1;
      continue;
    }
    char *colon = strchr(t, ':');
    if (!colon || colon == t || !colon[1] || !is_ident(t, (size_t)(colon - t), 0))
      tg_die("%s:%d: cannot parse argument `%s`", c->file, c->line, t);
    tg_field *f = &nc.fields[nc.nfields++];
    f->name = tg_strndup(t, (size_t)(colon - t));
    f->flag_field = -1;
    f->flag_ord = -1;
    f->type = -1;
    char *ty = colon + 1;
    char *q = strchr(ty, '?');
    if (q) {
      char *dot = memchr(ty, '.', (size_t)(q - ty));
      if (!dot || !is_ident(ty, (size_t)(dot - ty), 0) || q == dot + 1)
        tg_die("%s:%d: bad conditional `%s`", c->file, c->line, t);
      char *fname = tg_strndup(ty, (size_t)(dot - ty));
      char *end;
      long bit = strtol(dot + 1, &end, 10);
      if (end != q || bit < 0 || bit > 31) tg_die("%s:%d: bad flag bit in `%s`", c->file, c->line, t);
      int ff = -1;
      for (int k = 0; k < nc.nfields - 1; k++)
        if (!strcmp(nc.fields[k].name, fname)) ff = k;
      if (ff < 0 || strcmp(nc.fields[ff].type_text, "#"))
        tg_die("%s:%d: `%s` is not an earlier # field", c->file, c->line, fname);
      f->cond = 1;
      f->flag_field = ff;
      f->bit = (int)bit;
      ty = q + 1;
    }
    if (!*ty) tg_die("%s:%d: missing type in `%s`", c->file, c->line, t);
    if (ty[0] == '!') {
      int found = 0;
      for (int k = 0; k < ng; k++)
        if (!strcmp(generics[k], ty + 1)) found = 1;
      if (!found) tg_die("%s:%d: `%s` names no {X:Type} parameter", c->file, c->line, ty);
      f->type_text = tg_strdup("!");
    } else {
      for (int k = 0; k < ng; k++)
        if (!strcmp(generics[k], ty))
          tg_die("%s:%d: a bare generic argument `%s` is not supported", c->file, c->line, t);
      f->type_text = tg_strdup(ty);
    }
    if (!strcmp(f->type_text, "#")) {
      if (f->cond) tg_die("%s:%d: conditional # field", c->file, c->line);
      int ord = 0;
      for (int k = 0; k < nc.nfields - 1; k++) ord += nc.fields[k].flag_ord >= 0;
      if (ord >= 4) tg_die("%s:%d: more than 4 # fields", c->file, c->line);
      f->flag_ord = ord;
    }
    /* C member name */
    f->cname = is_reserved(f->name) ? tg_alloc(strlen(f->name) + 2) : tg_strdup(f->name);
    if (is_reserved(f->name)) sprintf(f->cname, "%s_", f->name);
    for (int k = 0; k < nc.nfields - 1; k++)
      if (!strcmp(nc.fields[k].cname, f->cname))
        tg_die("%s:%d: duplicate argument name `%s`", c->file, c->line, f->name);
  }

  /* normalized text: name#id args = Result (canon), and the CRC input */
  size_t tl = strlen(nc.name) + 16 + strlen(nc.result) + 8;
  for (int i = 1; i < eq; i++) tl += strlen(tok[i]) + 1;
  char *crc_text = tg_alloc(tl);
  strcpy(crc_text, nc.name);
  for (int i = 1; i < eq; i++) {
    strcat(crc_text, " ");
    strcat(crc_text, tok[i]);
  }
  strcat(crc_text, " = ");
  strcat(crc_text, nc.result);
  uint32_t crc = canon_crc(crc_text);
  nc.crc = crc;
  if (!nc.explicit_id) {
    nc.id = crc;
    c->s->computed_ids++;
  } else if (nc.id != crc) {
    c->s->crc_mismatch++;
  }
  nc.canon = tg_alloc(tl + 10);
  sprintf(nc.canon, "%08x %s", nc.id, crc_text);
  add_comb(c, &nc);
}

int tg_parse_file(tg_schema *s, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) tg_die("%s: cannot open", path);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  if (!buf) tg_die("tlgen: out of memory");
  for (;;) {
    if (n + 4096 > cap) {
      cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        tg_die("tlgen: out of memory");
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  int ferr = ferror(f);
  fclose(f);
  if (ferr) {
    free(buf);
    tg_die("%s: read error", path);
  }
  buf[n] = 0;
  char *text = tg_strndup(buf, n);
  free(buf);

  stmt_ctx c = {s, tg_strdup(path), 0, 0};
  char *stmt = tg_alloc(n + 1); /* accumulates one statement */
  size_t sl = 0;
  int stmt_line = 0, line = 0;
  for (char *p = text; *p;) {
    char *e = strchr(p, '\n');
    size_t ll = e ? (size_t)(e - p) : strlen(p);
    line++;
    char *l = tg_strndup(p, ll);
    p += ll + (e ? 1 : 0);
    char *cm = strstr(l, "//");
    if (cm) *cm = 0;
    char *b = l;
    while (*b == ' ' || *b == '\t' || *b == '\r') b++;
    size_t bl = strlen(b);
    while (bl && (b[bl - 1] == ' ' || b[bl - 1] == '\t' || b[bl - 1] == '\r')) b[--bl] = 0;
    if (!bl) continue;
    if (!strncmp(b, "---", 3)) {
      if (sl) tg_die("%s:%d: section marker inside a statement", path, line);
      if (!strcmp(b, "---functions---")) c.methods = 1;
      else if (!strcmp(b, "---types---")) c.methods = 0;
      else tg_die("%s:%d: unknown section `%s`", path, line, b);
      continue;
    }
    if (!sl) stmt_line = line;
    for (char *q = b; *q; q++) {
      if (*q == ';') {
        stmt[sl] = 0;
        c.line = stmt_line;
        parse_stmt(&c, stmt);
        sl = 0;
        stmt_line = line;
        continue;
      }
      if (sl == 0 && (*q == ' ' || *q == '\t')) continue;
      stmt[sl++] = *q;
    }
    if (sl) stmt[sl++] = ' ';
  }
  for (size_t i = 0; i < sl; i++)
    if (stmt[i] != ' ') tg_die("%s:%d: statement without `;`", path, stmt_line);
  return 0;
}

/* ---- resolution -------------------------------------------------------------- */

static int intern(tg_schema *s, int kind, int elem, int arg) {
  for (int i = 0; i < s->ntypes; i++)
    if (s->types[i].kind == kind && s->types[i].elem == elem && s->types[i].arg == arg) return i;
  s->types = grow(s->types, &s->captypes, s->ntypes, sizeof *s->types);
  tg_type *t = &s->types[s->ntypes];
  t->kind = kind;
  t->elem = elem;
  t->arg = arg;
  t->index = s->ntypes;
  return s->ntypes++;
}

static int resolve_type(tg_schema *s, const tg_comb *c, const char *t) {
  static const struct {
    const char *name;
    int kind;
  } prim[] = {{"int", TK_INT},       {"long", TK_LONG},     {"double", TK_DOUBLE},
              {"int128", TK_INT128}, {"int256", TK_INT256}, {"string", TK_BYTES},
              {"bytes", TK_BYTES},   {"Bool", TK_BOOL},     {"true", TK_TRUE},
              {"#", TK_FLAGS},       {"!", TK_RAW}};
  for (size_t i = 0; i < sizeof prim / sizeof prim[0]; i++)
    if (!strcmp(t, prim[i].name)) return intern(s, prim[i].kind, -1, prim[i].kind == TK_RAW ? TG_ANY : -1);
  size_t n = strlen(t);
  if ((!strncmp(t, "Vector<", 7) || !strncmp(t, "vector<", 7)) && t[n - 1] == '>') {
    char *inner = tg_strndup(t + 7, n - 8);
    int e = resolve_type(s, c, inner);
    int ek = s->types[e].kind;
    if (ek == TK_TRUE || ek == TK_FLAGS || ek == TK_RAW)
      tg_die("%s:%d: vector of `%s` is not supported", c->file, c->line, inner);
    return intern(s, t[0] == 'V' ? TK_VEC : TK_BVEC, e, -1);
  }
  if (!strcmp(t, "Object")) return intern(s, TK_OBJ, -1, TG_ANY);
  if (t[0] == '%') {
    int g = tg_find_group(s, t + 1);
    if (g < 0 || s->groups[g].n != 1)
      tg_die("%s:%d: bare type `%s` needs a type with exactly one constructor", c->file, c->line, t);
    return intern(s, TK_BARE, -1, s->groups[g].ctors[0]);
  }
  if (!is_ident(t, n, 1)) tg_die("%s:%d: cannot parse type `%s`", c->file, c->line, t);
  const char *last = strrchr(t, '.');
  last = last ? last + 1 : t;
  if (islower((unsigned char)*last)) { /* bare constructor reference */
    int k = tg_find_comb(s, t);
    if (k < 0) tg_die("%s:%d: unknown constructor `%s`", c->file, c->line, t);
    return intern(s, TK_BARE, -1, k);
  }
  int g = tg_find_group(s, t);
  if (g < 0) tg_die("%s:%d: unknown type `%s`", c->file, c->line, t);
  return intern(s, TK_OBJ, -1, g);
}

static int type_min_size(const tg_schema *s, int t) {
  switch (s->types[t].kind) {
  case TK_LONG: case TK_DOUBLE: case TK_VEC: return 8;
  case TK_INT128: return 16;
  case TK_INT256: return 32;
  case TK_TRUE: return 0;
  case TK_BARE: return s->combs[s->types[t].arg].min_size;
  default: return 4;
  }
}

static int type_depth(const tg_schema *s, int t, const int *cdepth, const int *gdepth) {
  switch (s->types[t].kind) {
  case TK_OBJ: return s->types[t].arg == TG_ANY ? 1 : gdepth[s->types[t].arg];
  case TK_BARE: return cdepth[s->types[t].arg];
  case TK_RAW: return 1;
  default: return 0; /* vectors may be empty */
  }
}

int tg_resolve(tg_schema *s) {
  /* groups from constructor results */
  for (int i = 0; i < s->ncombs; i++) {
    tg_comb *c = &s->combs[i];
    if (c->is_method) {
      s->nmethods++;
      c->group = -1;
      continue;
    }
    s->nconstructors++;
    if (c->generic) tg_die("%s:%d: generic constructors are not supported", c->file, c->line);
    if (!is_ident(c->result, strlen(c->result), 1))
      tg_die("%s:%d: constructor result must be a type name", c->file, c->line);
    int g = tg_find_group(s, c->result);
    if (g < 0) {
      s->groups = grow(s->groups, &s->capgroups, s->ngroups, sizeof *s->groups);
      g = s->ngroups++;
      memset(&s->groups[g], 0, sizeof s->groups[g]);
      s->groups[g].name = c->result;
    }
    tg_group *gr = &s->groups[g];
    gr->ctors = grow(gr->ctors, &gr->cap, gr->n, sizeof(int));
    gr->ctors[gr->n++] = i;
    c->group = g;
  }
  if (s->ngroups >= TG_ANY) tg_die("tlgen: too many types");
  /* field types */
  for (int i = 0; i < s->ncombs; i++) {
    tg_comb *c = &s->combs[i];
    for (int k = 0; k < c->nfields; k++) c->fields[k].type = resolve_type(s, c, c->fields[k].type_text);
  }
  /* the C names must be unique across everything the header declares */
  for (int i = 0; i < s->ncombs; i++)
    for (int j = i + 1; j < s->ncombs; j++)
      if (s->combs[i].is_method == s->combs[j].is_method &&
          !strcmp(s->combs[i].cname, s->combs[j].cname))
        tg_die("%s:%d: %s and %s map to the same C name", s->combs[j].file, s->combs[j].line,
               s->combs[i].name, s->combs[j].name);
  /* minimal encoded body sizes: lower bounds, grown by iteration */
  for (int it = 0; it < 16; it++) {
    for (int i = 0; i < s->ncombs; i++) {
      tg_comb *c = &s->combs[i];
      int sz = 0;
      for (int k = 0; k < c->nfields; k++)
        if (!c->fields[k].cond) sz += type_min_size(s, c->fields[k].type);
      c->min_size = sz > (1 << 20) ? (1 << 20) : sz;
    }
  }
  /* smallest nesting depth per constructor and group (test value builder) */
  int *cdepth = tg_alloc(sizeof(int) * (size_t)(s->ncombs + 1));
  int *gdepth = tg_alloc(sizeof(int) * (size_t)(s->ngroups + 1));
  for (int i = 0; i < s->ncombs; i++) cdepth[i] = TG_INF;
  for (int g = 0; g < s->ngroups; g++) gdepth[g] = TG_INF;
  for (int changed = 1; changed;) {
    changed = 0;
    for (int i = 0; i < s->ncombs; i++) {
      tg_comb *c = &s->combs[i];
      int d = 1;
      for (int k = 0; k < c->nfields; k++) {
        if (c->fields[k].cond) continue;
        int fd = type_depth(s, c->fields[k].type, cdepth, gdepth);
        if (fd >= TG_INF) {
          d = TG_INF;
          break;
        }
        if (fd + 1 > d) d = fd + 1;
      }
      if (d < cdepth[i]) {
        cdepth[i] = d;
        changed = 1;
        if (c->group >= 0 && d < gdepth[c->group]) gdepth[c->group] = d;
      }
    }
  }
  for (int g = 0; g < s->ngroups; g++) {
    s->groups[g].min_ctor = -1;
    for (int k = 0; k < s->groups[g].n; k++)
      if (cdepth[s->groups[g].ctors[k]] == gdepth[g]) {
        s->groups[g].min_ctor = s->groups[g].ctors[k];
        break;
      }
  }
  return 0;
}
