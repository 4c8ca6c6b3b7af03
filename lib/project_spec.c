/* project_spec.c: compiling a projection spec (see es-project(1)). */
#include "project.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

static const char *const field_names[] = {
	"seq", "version", "stream", "type", "ts", "id", "schema", "data", "meta", NULL
};

/* Alert keys es-project fills in itself. */
static const char *const reserved[] = {
	"projection", "window", "key", "count", "window_start", "window_end", "seq", "ts",
	"stream", NULL
};

static int among(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

int es_pname_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 100 || name[0] == '.' || name[0] == '-' || name[0] == '_')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int es_pfield_compile(struct es_pfield *f, const char *text)
{
	int i;

	memset(f, 0, sizeof(*f));
	if (es_path_compile(&f->path, text))
		return -1;
	i = among(field_names, f->path.seg[0]);
	if (i < 0 || (i < ES_PF_DATA && f->path.n > 1)) {
		es_path_release(&f->path);
		return -1;
	}
	f->kind = (enum es_pfield_kind)i;
	return 0;
}

/* Canonical text of one raw JSON value: strings without escapes are
 * already canonical (a raw string cannot hold '"', '\\' or controls);
 * everything else goes through jansson once. */
static int canon_raw(const char *s, size_t n, struct es_buf *out)
{
	json_t *v;
	int rc;

	if (n == 0 || (s[0] == 'n' && n == 4))
		return 1;
	if (s[0] == '"' && !memchr(s, '\\', n))
		return es_buf_add(out, s, n);
	v = es_json_from_raw(s, n);
	if (!v)
		return -1;
	/* (the spelling es-project writes to model.ndjson and finds again
	 * when it loads it: project_rows.c's canon_key) */
	rc = es_json_dump_canon_add(out, v);
	json_decref(v);
	return rc;
}

static int canon_object(const char *s, size_t n, struct es_buf *out)
{
	json_t *v = json_loadb(s, n, 0, NULL);
	int rc;

	if (!v)
		return 1;
	rc = es_json_dump_canon_add(out, v);
	json_decref(v);
	return rc;
}

int es_pfield_get(const struct es_pfield *f, const struct es_rec *r, struct es_buf *out)
{
	const char *body, *vs;
	size_t blen, vlen;

	switch (f->kind) {
	case ES_PF_SEQ: return es_buf_addf(out, "%llu", (unsigned long long)r->seq);
	case ES_PF_VERSION: return es_buf_addf(out, "%llu", (unsigned long long)r->version);
	case ES_PF_SCHEMA: return es_buf_addf(out, "%lld", (long long)(r->schema ? r->schema : 1));
	case ES_PF_STREAM: return canon_raw(r->stream, r->stream_len, out);
	case ES_PF_TYPE: return canon_raw(r->type, r->type_len, out);
	case ES_PF_ID: return canon_raw(r->id, r->id_len, out);
	case ES_PF_TS:
		return es_buf_addc(out, '"') || es_buf_add(out, r->ts, ES_TS_LEN) ||
		       es_buf_addc(out, '"') ? -1 : 0;
	case ES_PF_DATA:
	case ES_PF_META:
		body = f->kind == ES_PF_DATA ? r->data : r->meta;
		blen = f->kind == ES_PF_DATA ? r->data_len : r->meta_len;
		if (!body || blen == 0)
			return 1;
		if (f->path.n == 1)
			return canon_object(body, blen, out);
		if (es_json_find(body, blen, &f->path, 1, &vs, &vlen))
			return 1;
		return canon_raw(vs, vlen, out);
	}
	return 1;
}

static int add_lit(struct es_buf **v, size_t *n, const char *s)
{
	struct es_buf *nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	*v = nv;
	memset(&nv[*n], 0, sizeof(nv[*n]));
	(*n)++;
	return es_json_add_string(&nv[*n - 1], s, strlen(s));
}

/* A string or an array of strings, as literals. */
static int type_list(json_t *j, struct es_buf **v, size_t *n, const char *where,
		     struct es_error *err)
{
	size_t i;
	json_t *t;

	if (json_is_string(j) && json_string_length(j) == 0)
		return es_fail(err, ES_DATA, "spec: %s: must be a non-empty string", where);
	if (json_is_string(j))
		return add_lit(v, n, json_string_value(j)) ? es_fail(err, ES_IO, "out of memory") : 0;
	if (!json_is_array(j) || json_array_size(j) == 0)
		return es_fail(err, ES_DATA, "spec: %s: must be a type or a non-empty array of types",
			       where);
	json_array_foreach(j, i, t) {
		if (!json_is_string(t) || json_string_length(t) == 0)
			return es_fail(err, ES_DATA, "spec: %s[%zu]: must be a non-empty string", where, i);
		if (add_lit(v, n, json_string_value(t)))
			return es_fail(err, ES_IO, "out of memory");
	}
	return 0;
}

/* An absolute time: an age ("90d") would make runs disagree with rebuilds. */
static int abs_time(json_t *j, const char *where, int64_t *us, struct es_error *err)
{
	int64_t a, b;

	if (!json_is_string(j) || es_time_parse(json_string_value(j), 0, &a) ||
	    es_time_parse(json_string_value(j), 86400000000LL, &b))
		return es_fail(err, ES_DATA, "spec: %s: not a time (RFC 3339, a date, or epoch seconds)",
			       where);
	if (a != b)
		return es_fail(err, ES_DATA, "spec: %s: must be an absolute time, not an age", where);
	*us = a;
	return 0;
}

/* filter.types: a type or an array of them, as C strings for es_sel_init. */
static int types_of(json_t *v, struct es_common *c, struct es_error *err)
{
	size_t n = json_is_array(v) ? json_array_size(v) : 1;

	if (!json_is_string(v) && (!json_is_array(v) || n == 0))
		return es_fail(err, ES_DATA, "spec: filter.types: must be a type or a non-empty "
			       "array of types");
	c->types = calloc(n, sizeof(*c->types));
	if (!c->types)
		return es_fail(err, ES_IO, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_is_string(v) ? v : json_array_get(v, i);
		if (!json_is_string(t) || json_string_length(t) == 0)
			return es_fail(err, ES_DATA, "spec: filter.types[%zu]: must be a non-empty string",
				       i);
		c->types[c->ntypes++] = json_string_value(t);
	}
	return 0;
}

static int compile_filter(struct es_pspec *sp, json_t *f, struct es_error *err)
{
	static const char *const keys[] = {"types", "category", "since", "until", NULL};
	struct es_common c;
	const char *key;
	json_t *v, *cat = json_object_get(f, "category");
	int rc;

	memset(&c, 0, sizeof(c));
	c.to_seq = c.limit = UINT64_MAX;
	c.since = INT64_MIN;
	c.until = INT64_MAX;
	if (f && !json_is_object(f))
		return es_fail(err, ES_DATA, "spec: filter: must be an object");
	json_object_foreach(f, key, v)
		if (among(keys, key) < 0)
			return es_fail(err, ES_DATA, "spec: filter: unknown key \"%s\" (expected types, "
				       "category, since, until)", key);
	if (cat && (!json_is_string(cat) || json_string_length(cat) == 0))
		return es_fail(err, ES_DATA, "spec: filter.category: must be a non-empty string");
	c.category = cat ? json_string_value(cat) : NULL;
	if ((v = json_object_get(f, "since")) && abs_time(v, "filter.since", &c.since, err))
		return err->code;
	if ((v = json_object_get(f, "until")) && abs_time(v, "filter.until", &c.until, err))
		return err->code;
	if ((v = json_object_get(f, "types")) && types_of(v, &c, err)) {
		free(c.types);
		return err->code;
	}
	rc = es_sel_init(&sp->sel, &c, err);
	free(c.types);
	return rc;
}

static int compile_alert(struct es_pwin *w, json_t *a, const char *where, struct es_error *err)
{
	const char *key;
	json_t *v;

	if (!a) {
		if (es_buf_adds(&w->prefix, "{\"alert\":") ||
		    es_json_add_string(&w->prefix, w->name, strlen(w->name)))
			return es_fail(err, ES_IO, "out of memory");
		return 0;
	}
	if (!json_is_object(a))
		return es_fail(err, ES_DATA, "spec: %s.alert: must be an object", where);
	json_object_foreach(a, key, v)
		if (among(reserved, key) >= 0)
			return es_fail(err, ES_DATA, "spec: %s.alert: \"%s\" is filled in by es-project",
				       where, key);
	if (es_json_dump_exact_add(&w->prefix, a))
		return es_fail(err, ES_IO, "out of memory");
	w->prefix.len--; /* drop the '}' */
	w->prefix.p[w->prefix.len] = '\0';
	return 0;
}

static int compile_window(struct es_pspec *sp, struct es_pwin *w, json_t *j, const char *where,
			  struct es_error *err)
{
	static const char *const keys[] = {"name", "type", "kind", "size", "threshold", "alert", NULL};
	const char *key, *kind;
	json_t *v, *name = json_object_get(j, "name"), *size = json_object_get(j, "size"),
		   *thr = json_object_get(j, "threshold");

	if (!json_is_object(j))
		return es_fail(err, ES_DATA, "spec: %s: must be an object", where);
	json_object_foreach(j, key, v)
		if (among(keys, key) < 0)
			return es_fail(err, ES_DATA, "spec: %s: unknown key \"%s\" (expected name, type, "
				       "kind, size, threshold, alert)", where, key);
	if (!json_is_string(name) || json_string_length(name) == 0)
		return es_fail(err, ES_DATA, "spec: %s.name: must be a non-empty string", where);
	for (size_t i = 0; i < sp->nwin; i++)
		if (strcmp(sp->win[i].name, json_string_value(name)) == 0)
			return es_fail(err, ES_DATA, "spec: %s.name: \"%s\" is used twice", where,
				       json_string_value(name));
	if (!(w->name = strdup(json_string_value(name))))
		return es_fail(err, ES_IO, "out of memory");
	kind = json_string_value(json_object_get(j, "kind"));
	if (json_object_get(j, "kind") && (!kind || (strcmp(kind, "sliding") && strcmp(kind, "tumbling"))))
		return es_fail(err, ES_DATA, "spec: %s.kind: must be \"sliding\" or \"tumbling\"", where);
	w->kind = kind && strcmp(kind, "tumbling") == 0 ? ES_PWIN_TUMBLING : ES_PWIN_SLIDING;
	if (!json_is_string(size) || es_duration_parse(json_string_value(size), &w->size) ||
	    w->size <= 0)
		return es_fail(err, ES_DATA, "spec: %s.size: must be a duration like \"10m\", \"600s\"",
			       where);
	if (!json_is_integer(thr) || json_integer_value(thr) < 0 ||
	    json_integer_value(thr) > 100000)
		return es_fail(err, ES_DATA, "spec: %s.threshold: must be an integer from 0 to 100000",
			       where);
	w->threshold = (uint64_t)json_integer_value(thr);
	if ((v = json_object_get(j, "type"))) {
		char at[64];
		snprintf(at, sizeof(at), "%s.type", where);
		if (type_list(v, &w->types, &w->ntypes, at, err))
			return err->code;
	}
	return compile_alert(w, json_object_get(j, "alert"), where, err);
}

static int compile_windows(struct es_pspec *sp, json_t *ws, struct es_error *err)
{
	char where[64];

	if (!ws)
		return 0;
	if (!json_is_array(ws))
		return es_fail(err, ES_DATA, "spec: windows: must be an array");
	sp->win = calloc(json_array_size(ws) + 1, sizeof(*sp->win));
	if (!sp->win)
		return es_fail(err, ES_IO, "out of memory");
	for (size_t i = 0; i < json_array_size(ws); i++) {
		snprintf(where, sizeof(where), "windows[%zu]", i);
		if (compile_window(sp, &sp->win[i], json_array_get(ws, i), where, err)) {
			sp->nwin = i + 1;
			return err->code;
		}
		sp->nwin = i + 1;
	}
	return 0;
}

/* What the rules read: 1 when a rule takes a value from meta (else meta is
 * never located), 2 when a rule takes data whole (else data's end is
 * never looked for: paths inside it are found from its start). */
static int reads(json_t *on)
{
	const char *type;
	json_t *rules, *rule;
	size_t i;
	int what = 0;

	json_object_foreach(on, type, rules)
		json_array_foreach(rules, i, rule) {
			const char *from = json_string_value(json_object_get(rule, "from"));
			const char *op = json_string_value(json_object_get(rule, "op"));
			if (from && strncmp(from, "meta", 4) == 0 && (from[4] == '\0' || from[4] == '.'))
				what |= 1;
			if ((from && strcmp(from, "data") == 0) ||
			    (!from && op && strcmp(op, "merge") == 0 && !json_object_get(rule, "value")))
				what |= 2;
		}
	return what;
}

/* Is the spec's top-level key its default, the same as leaving it out? */
static int is_default(const char *key, json_t *v)
{
	if (strcmp(key, "version") == 0)
		return json_is_integer(v) && json_integer_value(v) == 1;
	if (strcmp(key, "key") == 0)
		return json_is_string(v) && strcmp(json_string_value(v), "stream") == 0;
	return 0;
}

/* The spec's identity (es_reducer_spec_hash) without "description" and
 * without the keys at their defaults; written: the identity before (the
 * spec with its defaults, every key sorted); sorted: every key sorted. */
static int spec_hash(const struct es_pspec *sp, int written, int sorted, char out[ES_HASH_HEX + 1])
{
	json_t *copy = json_object(), *v;
	const char *key;
	int rc = -1;

	/* not json_copy(), which drops a key it has no memory for: another
	 * id, and the model looked built from another spec */
	json_object_foreach(sp->json, key, v)
		if (copy && strcmp(key, "description") != 0 && (written || !is_default(key, v)) &&
		    json_object_set(copy, key, v) != 0) {
			json_decref(copy);
			copy = NULL;
		}
	if (copy) {
		rc = es_reducer_spec_hash(copy, written || sorted, out);
		json_decref(copy);
	}
	return rc;
}

/* The identity leaves defaults out, so writing "version": 1 changes
 * nothing. Models built before that was so recorded the hash of the spec
 * with its defaults and every key sorted (sha_written), which es-project
 * still accepts, but only for a spec whose order does not count (its
 * identity is its sorted text): one whose "init" is not sorted would pass
 * for the same spec with it sorted, whatever built the model. */
static int spec_id(struct es_pspec *sp, struct es_error *err)
{
	char sorted[ES_HASH_HEX + 1];

	if (spec_hash(sp, 0, 0, sp->sha) || spec_hash(sp, 0, 1, sorted) ||
	    spec_hash(sp, 1, 1, sp->sha_written))
		return es_fail(err, ES_IO, "out of memory");
	if (strcmp(sorted, sp->sha) != 0)
		sp->sha_written[0] = '\0';
	return 0;
}

static int compile_head(struct es_pspec *sp, json_t *spec, struct es_error *err)
{
	static const char *const keys[] = {"name", "version", "description", "key", "filter",
					   "init", "on", "windows", NULL};
	const char *key;
	json_t *v, *name = json_object_get(spec, "name"), *ver = json_object_get(spec, "version");
	json_t *k = json_object_get(spec, "key");

	if (!json_is_object(spec))
		return es_fail(err, ES_DATA, "spec: must be a JSON object");
	json_object_foreach(spec, key, v)
		if (among(keys, key) < 0)
			return es_fail(err, ES_DATA, "spec: unknown key \"%s\" (expected name, version, "
				       "description, key, filter, init, on, windows)", key);
	if (!json_is_string(name) || !es_pname_valid(json_string_value(name)))
		return es_fail(err, ES_DATA, "spec: name: must be a string of letters, digits, '.', "
			       "'_', '-' (at most 100, not starting with a punctuation mark)");
	if (!(sp->name = strdup(json_string_value(name))))
		return es_fail(err, ES_IO, "out of memory");
	if (ver && (!json_is_integer(ver) || json_integer_value(ver) < 0))
		return es_fail(err, ES_DATA, "spec: version: must be a non-negative integer");
	sp->version = ver ? (int64_t)json_integer_value(ver) : 1;
	if (k && !json_is_string(k))
		return es_fail(err, ES_DATA, "spec: key: must be an event path like \"data.customer\"");
	if (es_pfield_compile(&sp->key, k ? json_string_value(k) : "stream"))
		return es_fail(err, ES_DATA, "spec: key: not an event path (seq, version, stream, "
			       "type, ts, id, schema, data[.x], meta[.x])");
	return 0;
}

int es_pspec_compile(struct es_pspec **spp, json_t *spec, struct es_error *err)
{
	struct es_pspec *sp = calloc(1, sizeof(*sp));
	json_t *on, *empty = NULL;
	int rc;

	*spp = NULL;
	if (!sp)
		return es_fail(err, ES_IO, "out of memory");
	sp->json = json_incref(spec);
	rc = compile_head(sp, spec, err);
	if (!rc)
		rc = compile_filter(sp, json_object_get(spec, "filter"), err);
	if (!rc) {
		on = json_object_get(spec, "on");
		if (!on)
			on = empty = json_object();
		sp->on = json_object_get(spec, "on");
		rc = es_reducer_compile_rules(&sp->red, on, json_object_get(spec, "init"), "on", err);
		sp->need_meta = sp->key.kind == ES_PF_META || (reads(on) & 1);
		sp->need_data_end = sp->need_meta || (reads(on) & 2) ||
				    (sp->key.kind == ES_PF_DATA && sp->key.path.n == 1);
		json_decref(empty);
		if (rc)
			es_error_prefix(err, "spec");
	}
	if (!rc)
		rc = compile_windows(sp, json_object_get(spec, "windows"), err);
	if (!rc)
		rc = spec_id(sp, err);
	if (rc) {
		es_pspec_free(sp);
		return rc;
	}
	*spp = sp;
	return 0;
}

int es_pspec_load(struct es_pspec **spp, const char *path, struct es_error *err)
{
	json_error_t jerr;
	int oom;
	json_t *spec;
	int rc;

	*spp = NULL;
	if (es_json_file_ok(path, err))
		return err->code;
	spec = es_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr, &oom);
	if (!spec) {
		if (oom)
			return es_fail(err, ES_IO, "%s: out of memory", path);
		if (jerr.line < 1)
			return es_fail(err, ES_IO, "%s: %s", path, jerr.text);
		return es_fail(err, ES_DATA, "%s: line %d: %s", path, jerr.line, jerr.text);
	}
	rc = es_pspec_compile(spp, spec, err);
	json_decref(spec);
	if (rc)
		es_error_prefix(err, "%s", path);
	return rc;
}

void es_pspec_free(struct es_pspec *sp)
{
	if (!sp)
		return;
	for (size_t i = 0; i < sp->nwin; i++) {
		struct es_pwin *w = &sp->win[i];
		for (size_t t = 0; t < w->ntypes; t++)
			es_buf_release(&w->types[t]);
		free(w->types);
		free(w->name);
		es_buf_release(&w->prefix);
	}
	free(sp->win);
	es_reducer_free(sp->red);
	es_sel_release(&sp->sel);
	es_path_release(&sp->key.path);
	json_decref(sp->json);
	free(sp->name);
	free(sp);
}
