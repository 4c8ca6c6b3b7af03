#include "reducer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "json.h"

enum op { OP_SET, OP_UNSET, OP_MERGE, OP_ADD, OP_SUB, OP_INC, OP_MIN, OP_MAX, OP_PUSH, OP_COUNT };
static const char *const op_names[] = {
	"set", "unset", "merge", "add", "sub", "inc", "min", "max", "push", "count", NULL
};

/* Where an event path starts. */
enum field { F_SEQ, F_VERSION, F_STREAM, F_TYPE, F_TS, F_ID, F_SCHEMA, F_DATA, F_META };
static const char *const field_names[] = {
	"seq", "version", "stream", "type", "ts", "id", "schema", "data", "meta", NULL
};

struct evpath {
	enum field field;
	struct es_path path; /* full path; segments after the first go inside */
};

struct rule {
	enum op op;
	struct es_path path; /* n == 0: the state's root (merge) */
	int has_from;
	struct evpath from;
	json_t *value;       /* constant, or NULL */
	size_t cap;
	int slot;            /* in a flat state (es_foldset), when the reducer has them */
	char where[96];
};

struct ruleset {
	struct rule *r;
	size_t n;
};

struct es_reducer {
	int is_default;
	json_t *init;
	struct es_strmap types; /* type (decoded) -> index into sets */
	struct ruleset *sets;
	size_t nsets;
	struct ruleset star;
	char id[ES_HASH_HEX + 1];
	int nflat;              /* > 0: states can be flat; their keys: */
	const char *flat_key[ES_FOLD_FLAT];
};

static int evpath_compile(struct evpath *e, const char *text)
{
	if (es_path_compile(&e->path, text))
		return -1;
	for (int i = 0; field_names[i]; i++)
		if (strcmp(e->path.seg[0], field_names[i]) == 0) {
			e->field = (enum field)i;
			if (i < F_DATA && e->path.n > 1)
				break; /* scalars have no inside */
			return 0;
		}
	es_path_release(&e->path);
	return -1;
}

static json_t *lit_string(const char *s, size_t len)
{
	return es_json_from_raw(s, len);
}

static json_t *evpath_get(const struct es_rec *r, const struct evpath *e)
{
	const char *vs, *body;
	size_t vlen, blen;

	switch (e->field) {
	case F_SEQ: return json_integer((json_int_t)r->seq);
	case F_VERSION: return json_integer((json_int_t)r->version);
	case F_STREAM: return lit_string(r->stream, r->stream_len);
	case F_TYPE: return lit_string(r->type, r->type_len);
	case F_ID: return lit_string(r->id, r->id_len);
	case F_TS: return json_stringn(r->ts, ES_TS_LEN);
	case F_SCHEMA: return json_integer(r->schema ? r->schema : 1);
	case F_DATA:
	case F_META:
		body = e->field == F_DATA ? r->data : r->meta;
		blen = e->field == F_DATA ? r->data_len : r->meta_len;
		if (!body || blen == 0)
			return NULL;
		if (e->path.n == 1)
			return json_loadb(body, blen, 0, NULL);
		if (es_json_find(body, blen, &e->path, 1, &vs, &vlen))
			return NULL;
		return es_json_from_raw(vs, vlen);
	}
	return NULL;
}

json_t *es_event_get(const struct es_rec *rec, const char *path)
{
	struct evpath e;
	json_t *v;

	if (evpath_compile(&e, path))
		return NULL;
	v = evpath_get(rec, &e);
	es_path_release(&e.path);
	return v;
}

static void ruleset_release(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		es_path_release(&rs->r[i].path);
		es_path_release(&rs->r[i].from.path);
		json_decref(rs->r[i].value);
	}
	free(rs->r);
	rs->r = NULL;
	rs->n = 0;
}

void es_reducer_free(struct es_reducer *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nsets; i++)
		ruleset_release(&r->sets[i]);
	ruleset_release(&r->star);
	free(r->sets);
	es_strmap_release(&r->types);
	json_decref(r->init);
	free(r);
}

/* Where a spec's objects keep the order their keys were written in: those
 * in "init", in a rule's "value" and (es-project) in a window's "alert"
 * make objects whose keys come in that order. */
enum role { R_ANY, R_TOP, R_ON, R_RULES, R_RULE, R_WINDOWS, R_WINDOW, R_KEEP };

static enum role child(enum role r, const char *key)
{
	switch (r) {
	case R_TOP:
		if (!key)
			return R_ANY;
		return strcmp(key, "init") == 0 ? R_KEEP
		       : strcmp(key, "on") == 0 ? R_ON
		       : strcmp(key, "windows") == 0 ? R_WINDOWS : R_ANY;
	case R_ON: return R_RULES;
	case R_RULES: return R_RULE;
	case R_RULE: return key && strcmp(key, "value") == 0 ? R_KEEP : R_ANY;
	case R_WINDOWS: return R_WINDOW;
	case R_WINDOW: return key && strcmp(key, "alert") == 0 ? R_KEEP : R_ANY;
	default: return R_ANY;
	}
}

/* A copy of v (in role r) with the keys of every object sorted, but for
 * the objects kept as written. NULL: no memory. */
static json_t *canon(json_t *v, enum role r)
{
	struct es_json_member *m;
	json_t *out, *e;
	size_t i, n;

	if (r == R_KEEP || (!json_is_object(v) && !json_is_array(v)))
		return json_incref(v);
	if (json_is_array(v)) {
		if (!(out = json_array()))
			return NULL;
		json_array_foreach(v, i, e)
			if (json_array_append_new(out, canon(e, child(r, NULL)))) {
				json_decref(out);
				return NULL;
			}
		return out;
	}
	m = es_json_sorted_members(v, &n);
	out = m ? json_object() : NULL;
	for (i = 0; out && i < n; i++)
		if (json_object_setn_new(out, m[i].key, m[i].len, canon(m[i].v, child(r, m[i].key)))) {
			json_decref(out);
			out = NULL;
		}
	free(m);
	return out;
}

int es_reducer_spec_hash(const json_t *spec, int sorted_only, char out[ES_HASH_HEX + 1])
{
	const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	json_t *c = sorted_only ? NULL : canon((json_t *)spec, R_TOP);
	char *text = sorted_only ? es_json_dumps(spec, JSON_SORT_KEYS | flags)
				 : c ? es_json_dumps(c, flags) : NULL;
	int rc = text ? es_sha256_hex(text, strlen(text), out) : -1;

	free(text);
	json_decref(c);
	return rc;
}

int es_reducer_default(struct es_reducer **rp, struct es_error *err)
{
	struct es_reducer *r = calloc(1, sizeof(*r));
	static const char tag[] = "es-reducer:default:merge-patch";

	*rp = NULL;
	if (!r || !(r->init = json_object()) || es_sha256_hex(tag, sizeof(tag) - 1, r->id)) {
		es_reducer_free(r);
		return es_fail(err, ES_IO, "out of memory");
	}
	r->is_default = 1;
	*rp = r;
	return 0;
}

static int lookup(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

static int compile_rule(struct rule *ru, json_t *j, const char *where, struct es_error *err)
{
	static const char *const keys[] = {"op", "path", "from", "value", "cap", "by", NULL};
	const char *key;
	json_t *v, *op = json_object_get(j, "op"), *path, *from, *value, *cap, *by;
	int o;

	snprintf(ru->where, sizeof(ru->where), "%s", where);
	if (!json_is_object(j))
		return es_fail(err, ES_DATA, "reducer: %s: a rule must be an object", where);
	json_object_foreach(j, key, v)
		if (lookup(keys, key) < 0)
			return es_fail(err, ES_DATA, "reducer: %s: unknown key \"%s\"", where, key);
	if (!json_is_string(op) || (o = lookup(op_names, json_string_value(op))) < 0)
		return es_fail(err, ES_DATA, "reducer: %s.op: unknown op %s%s%s (one of set, unset, "
			       "merge, add, sub, inc, min, max, push, count)", where,
			       json_is_string(op) ? "\"" : "", json_is_string(op) ? json_string_value(op) : "(missing)",
			       json_is_string(op) ? "\"" : "");
	ru->op = (enum op)o;
	path = json_object_get(j, "path");
	from = json_object_get(j, "from");
	value = json_object_get(j, "value");
	cap = json_object_get(j, "cap");
	by = json_object_get(j, "by");
	if (path && (!json_is_string(path) || es_path_compile(&ru->path, json_string_value(path))))
		return es_fail(err, ES_DATA, "reducer: %s.path: must be a dotted path like \"a.b.0\"", where);
	if (!path && ru->op != OP_MERGE)
		return es_fail(err, ES_DATA, "reducer: %s.path: missing", where);
	if (from && value)
		return es_fail(err, ES_DATA, "reducer: %s: give \"from\" or \"value\", not both", where);
	if (from) {
		if (!json_is_string(from) || evpath_compile(&ru->from, json_string_value(from)))
			return es_fail(err, ES_DATA, "reducer: %s.from: not an event path (seq, version, "
				       "stream, type, ts, id, schema, data[.x], meta[.x])", where);
		ru->has_from = 1;
	}
	if (value)
		ru->value = json_incref(value);
	switch (ru->op) {
	case OP_UNSET:
	case OP_COUNT:
		if (from || value)
			return es_fail(err, ES_DATA, "reducer: %s: %s takes no value", where, op_names[o]);
		break;
	case OP_INC:
		if (from || value)
			return es_fail(err, ES_DATA, "reducer: %s: inc takes \"by\", a constant number", where);
		if (by && !json_is_number(by))
			return es_fail(err, ES_DATA, "reducer: %s.by: must be a number", where);
		ru->value = by ? json_incref(by) : json_integer(1);
		break;
	case OP_MERGE:
		if (value && !json_is_object(value))
			return es_fail(err, ES_DATA, "reducer: %s.value: merge needs an object", where);
		if (!from && !value) {
			evpath_compile(&ru->from, "data");
			ru->has_from = 1;
		}
		break;
	default:
		if (!from && !value)
			return es_fail(err, ES_DATA, "reducer: %s: %s needs \"from\" or \"value\"", where,
				       op_names[o]);
		if ((ru->op == OP_ADD || ru->op == OP_SUB) && value && !json_is_number(value))
			return es_fail(err, ES_DATA, "reducer: %s.value: %s needs a number", where,
				       op_names[o]);
	}
	if (cap) {
		if (ru->op != OP_PUSH || !json_is_integer(cap) || json_integer_value(cap) < 1)
			return es_fail(err, ES_DATA, "reducer: %s.cap: only push takes a cap, an integer >= 1",
				       where);
		ru->cap = (size_t)json_integer_value(cap);
	}
	if (by && ru->op != OP_INC)
		return es_fail(err, ES_DATA, "reducer: %s.by: only inc takes \"by\"", where);
	return 0;
}

static int compile_set(struct ruleset *rs, json_t *arr, const char *where, struct es_error *err)
{
	char w[96];

	if (!json_is_array(arr))
		return es_fail(err, ES_DATA, "reducer: %s: must be an array of rules", where);
	rs->r = calloc(json_array_size(arr) + 1, sizeof(*rs->r));
	if (!rs->r)
		return es_fail(err, ES_IO, "out of memory");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		snprintf(w, sizeof(w), "%.80s[%zu]", where, i);
		rs->n = i + 1;
		if (compile_rule(&rs->r[i], json_array_get(arr, i), w, err))
			return err->code;
	}
	return 0;
}

static int compile_rules(struct es_reducer **rp, json_t *on, json_t *init, const char *where,
			 struct es_error *err);

/* ---- flat states (es_foldset.flat) ---- */

/* Whether a rule can change a flat state: count, inc or add/sub of an
 * integer at a one-key path. */
static int flat_rule(const struct rule *ru)
{
	if (ru->path.n != 1)
		return 0;
	switch (ru->op) {
	case OP_COUNT:
		return 1;
	case OP_INC:
		return json_is_integer(ru->value);
	case OP_ADD:
	case OP_SUB:
		if (ru->has_from)
			return (ru->from.field == F_DATA || ru->from.field == F_META) &&
			       ru->from.path.n >= 2;
		return json_is_integer(ru->value);
	default:
		return 0;
	}
}

static int flat_set(struct es_reducer *r, struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		struct rule *ru = &rs->r[i];
		int k = 0;
		if (!flat_rule(ru))
			return -1;
		while (k < r->nflat && strcmp(r->flat_key[k], ru->path.seg[0]) != 0)
			k++;
		if (k == r->nflat) {
			if (k == ES_FOLD_FLAT)
				return -1;
			r->flat_key[r->nflat++] = ru->path.seg[0];
		}
		ru->slot = k;
	}
	return 0;
}

/* Give r flat states when all its rules allow (test builds: not with
 * ES_REDUCER_FLAT=0, the reference the flat states are tested against). */
static void flat_plan(struct es_reducer *r)
{
	json_t *probe;
	int ok;

#ifdef ES_TEST_HOOKS
	const char *env = getenv("ES_REDUCER_FLAT");
	if (env && strcmp(env, "0") == 0)
		return;
#endif
	if (r->is_default || !json_is_object(r->init) || json_object_size(r->init) != 0)
		return;
	ok = flat_set(r, &r->star) == 0;
	for (size_t i = 0; ok && i < r->nsets; i++)
		ok = flat_set(r, &r->sets[i]) == 0;
	/* a key the object would refuse (not UTF-8) is refused there, as ever */
	probe = ok ? json_object() : NULL;
	for (int k = 0; probe && ok && k < r->nflat; k++)
		ok = json_object_set_new(probe, r->flat_key[k], json_integer(0)) == 0;
	if (!ok || !probe)
		r->nflat = 0;
	json_decref(probe);
}

/* A failed allocation while compiling looks like a spec error or, worse,
 * like success (a rule's constant left NULL): the count of failures tells. */
int es_reducer_compile_rules(struct es_reducer **rp, json_t *on, json_t *init,
			     const char *where, struct es_error *err)
{
	unsigned long failures = es_alloc_failures();
	int rc = compile_rules(rp, on, init, where, err);

	if (es_alloc_failures() != failures) {
		es_reducer_free(*rp);
		*rp = NULL;
		return es_fail(err, ES_IO, "out of memory");
	}
	return rc;
}

static int compile_rules(struct es_reducer **rp, json_t *on, json_t *init, const char *where,
			 struct es_error *err)
{
	struct es_reducer *r = calloc(1, sizeof(*r));
	const char *type;
	json_t *rules;
	char w[96];

	*rp = NULL;
	if (!r) {
		return es_fail(err, ES_IO, "out of memory");
	}
	if (!json_is_object(on)) {
		es_reducer_free(r);
		return es_fail(err, ES_DATA, "reducer: %s: must be an object of type -> rules", where);
	}
	if (init && !json_is_object(init)) {
		es_reducer_free(r);
		return es_fail(err, ES_DATA, "reducer: init: must be an object");
	}
	r->init = init ? json_deep_copy(init) : json_object();
	r->sets = calloc(json_object_size(on) + 1, sizeof(*r->sets));
	if (!r->sets || !r->init) {
		es_reducer_free(r);
		return es_fail(err, ES_IO, "out of memory");
	}
	json_object_foreach(on, type, rules) {
		snprintf(w, sizeof(w), "%s.%.60s", where, type);
		if (strcmp(type, "*") == 0) {
			if (compile_set(&r->star, rules, w, err))
				goto fail;
			continue;
		}
		if (compile_set(&r->sets[r->nsets], rules, w, err)) {
			r->nsets++;
			goto fail;
		}
		/* unchecked, a failed allocation left the type out: its events
		 * were silently not applied */
		{
			size_t set = r->nsets++; /* compiled: freed with the rest */
			int added;
			uint64_t *ix = es_strmap_put(&r->types, type, strlen(type), &added);
			if (!ix) {
				es_fail(err, ES_IO, "out of memory");
				goto fail;
			}
			*ix = set;
		}
	}
	flat_plan(r);
	*rp = r;
	return 0;
fail:
	es_reducer_free(r);
	return err->code;
}

int es_reducer_compile(struct es_reducer **rp, json_t *spec, struct es_error *err)
{
	static const char *const keys[] = {"on", "init", "description", "name", "version", NULL};
	const char *key;
	json_t *v;

	*rp = NULL;
	if (!json_is_object(spec))
		return es_fail(err, ES_DATA, "reducer: the spec must be a JSON object");
	json_object_foreach(spec, key, v)
		if (lookup(keys, key) < 0)
			return es_fail(err, ES_DATA, "reducer: unknown key \"%s\" (expected on, init, description)", key);
	if (!json_object_get(spec, "on"))
		return es_fail(err, ES_DATA, "reducer: \"on\" is missing");
	if (es_reducer_compile_rules(rp, json_object_get(spec, "on"), json_object_get(spec, "init"),
				     "on", err))
		return err->code;
	if (es_reducer_spec_hash(spec, 0, (*rp)->id)) {
		es_reducer_free(*rp);
		*rp = NULL;
		return es_fail(err, ES_IO, "out of memory");
	}
	return 0;
}

int es_reducer_load(struct es_reducer **rp, const char *path, struct es_error *err)
{
	json_error_t jerr;
	int oom;
	json_t *spec;
	int rc;

	if (!path)
		return es_reducer_default(rp, err);
	if (es_json_file_ok(path, err))
		return err->code;
	spec = es_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr, &oom);
	if (oom)
		return es_fail(err, ES_IO, "%s: out of memory", path);
	if (!spec)
		return es_fail(err, jerr.line < 1 ? ES_IO : ES_DATA, "%s: %s%s", path, jerr.text,
			       jerr.line < 1 ? "" : "");
	rc = es_reducer_compile(rp, spec, err);
	json_decref(spec);
	if (rc)
		es_error_prefix(err, "%s", path);
	return rc;
}

const char *es_reducer_id(const struct es_reducer *r)
{
	return r->id;
}

json_t *es_reducer_init(const struct es_reducer *r)
{
	return json_deep_copy(r->init);
}

static const char *kind(const json_t *v)
{
	if (!v)
		return "nothing"; /* (only after a failed allocation) */
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

static double num(const json_t *v)
{
	return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* a op b for add/sub; integers stay integers unless they overflow. */
static json_t *arith(const json_t *a, const json_t *b, int sub)
{
	if (json_is_integer(a) && json_is_integer(b)) {
		long long x = json_integer_value(a), y = json_integer_value(b), z;
		if (!(sub ? __builtin_sub_overflow(x, y, &z) : __builtin_add_overflow(x, y, &z)))
			return json_integer(z);
	}
	return json_real(sub ? num(a) - num(b) : num(a) + num(b));
}

/* add/sub/inc/count on an integer the state alone holds: change it where it
 * is (no new json_t, no second path lookup). 1 when done; 0 when the
 * general path must run (not integers, shared, or the result overflows). */
static int arith_in_place(json_t *cur, const json_t *v, enum op op)
{
	long long x, y, z;

	if (!cur || cur->refcount != 1 || !json_is_integer(cur))
		return 0;
	if (op == OP_COUNT)
		y = 1;
	else if (json_is_integer(v))
		y = json_integer_value(v);
	else
		return 0;
	x = json_integer_value(cur);
	if (op == OP_SUB ? __builtin_sub_overflow(x, y, &z) : __builtin_add_overflow(x, y, &z))
		return 0;
	return json_integer_set(cur, z) == 0;
}

/* A JSON integer literal of at most 18 digits (so it fits): 0 and *v. */
static int int_literal(const char *s, size_t n, long long *v)
{
	size_t i = s[0] == '-';
	long long x = 0;

	if (n <= i || n - i > 18 || (s[i] == '0' && n - i > 1))
		return -1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	*v = s[0] == '-' ? -x : x;
	return 0;
}

/* A rule's "from" inside the event's data or meta (from.path.n >= 2), read
 * from the stored bytes as an integer literal: 1 and *y; 0 when absent; -1
 * when it is there but not such an integer. */
static int from_int(const struct rule *ru, const struct es_rec *rec, long long *y)
{
	const char *body = ru->from.field == F_DATA ? rec->data : rec->meta, *vs;
	size_t blen = ru->from.field == F_DATA ? rec->data_len : rec->meta_len, vlen;

	if (!body || blen == 0 || es_json_find(body, blen, &ru->from.path, 1, &vs, &vlen))
		return 0;
	return int_literal(vs, vlen, y) ? -1 : 1;
}

/* add/sub "from" an integer in the event's data or meta to an integer the
 * state alone holds: the number is read from the stored bytes, no json_t
 * made for it. 1 when done; 0 when the general path must run (the value
 * absent or not such an integer, the state's not, or an overflow). */
static int add_raw_in_place(const struct rule *ru, json_t *state, const struct es_rec *rec)
{
	long long x, y, z;
	json_t *cur;

	if ((ru->op != OP_ADD && ru->op != OP_SUB) || !ru->has_from || ru->path.n == 0 ||
	    (ru->from.field != F_DATA && ru->from.field != F_META) || ru->from.path.n < 2 ||
	    from_int(ru, rec, &y) != 1)
		return 0;
	cur = es_path_get(state, &ru->path);
	if (!cur || cur->refcount != 1 || !json_is_integer(cur))
		return 0;
	x = json_integer_value(cur);
	if (ru->op == OP_SUB ? __builtin_sub_overflow(x, y, &z) : __builtin_add_overflow(x, y, &z))
		return 0;
	return json_integer_set(cur, z) == 0;
}

/* Integer i against real d, exactly: converting i to a double rounds
 * above 2^53 (2^53 + 1 would equal 2^53.0), so d is cut to an integer
 * instead, which fits whenever it lies in [-2^63, 2^63), and its fraction
 * breaks a tie. -1, 0 or 1 as i is below, equal to or above d. */
static int cmp_int_real(long long i, double d)
{
	long long t;

	if (d >= 0x1p63)
		return -1;
	if (d < -0x1p63)
		return 1;
	t = (long long)d; /* toward zero; t is exact as a double again */
	if (i != t)
		return i < t ? -1 : 1;
	return d > (double)t ? -1 : d < (double)t;
}

static int cmp(const json_t *a, const json_t *b, int *out)
{
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a), y = json_integer_value(b);
		*out = x < y ? -1 : x > y;
		return 0;
	}
	if (json_is_integer(a) && json_is_real(b)) {
		*out = cmp_int_real(json_integer_value(a), json_real_value(b));
		return 0;
	}
	if (json_is_real(a) && json_is_integer(b)) {
		*out = -cmp_int_real(json_integer_value(b), json_real_value(a));
		return 0;
	}
	if (json_is_real(a) && json_is_real(b)) {
		double x = json_real_value(a), y = json_real_value(b);
		*out = x < y ? -1 : x > y;
		return 0;
	}
	if (json_is_string(a) && json_is_string(b)) {
		*out = strcmp(json_string_value(a), json_string_value(b));
		return 0;
	}
	return -1;
}

static int mismatch(const struct rule *ru, const struct es_rec *rec, const char *what,
		    const json_t *v, const char *want, struct es_error *err)
{
	return es_fail(err, ES_DATA, "reducer: %s (%s %s): seq %llu: %s is %s, not %s", ru->where,
		       op_names[ru->op], ru->path.n ? ru->path.text : "(root)",
		       (unsigned long long)rec->seq, what, kind(v), want);
}

static int apply_rule(const struct rule *ru, json_t **state, const struct es_rec *rec,
		      struct es_error *err)
{
	json_t *v = NULL, *cur, *nv;
	int rc = 0, c;

	if (add_raw_in_place(ru, *state, rec))
		return 0;
	if (ru->has_from) {
		v = evpath_get(rec, &ru->from);
		if (!v)
			return 0; /* absent in this event: the rule does nothing */
	} else if (ru->value) {
		/* a copy: set and push must never change the rule's constant */
		if (!(v = json_deep_copy(ru->value)))
			return -1; /* no memory: apply_set says so */
	}
	cur = ru->path.n ? es_path_get(*state, &ru->path) : *state;
	const char *what = ru->has_from ? ru->from.path.text : "value";
	switch (ru->op) {
	case OP_SET:
		rc = es_path_set(*state, &ru->path, json_incref(v));
		break;
	case OP_UNSET:
		rc = es_path_unset(*state, &ru->path);
		break;
	case OP_MERGE:
		if (!json_is_object(v)) {
			rc = mismatch(ru, rec, what, v, "an object", err);
			break;
		}
		if (ru->path.n == 0) {
			rc = es_merge_patch(state, v);
		} else {
			json_t *sub = cur ? json_incref(cur) : json_object();
			rc = es_merge_patch(&sub, v);
			if (rc == 0)
				rc = es_path_set(*state, &ru->path, sub);
			else
				json_decref(sub);
		}
		break;
	case OP_ADD:
	case OP_SUB:
	case OP_INC:
	case OP_COUNT:
		if (arith_in_place(cur, v, ru->op))
			break;
		if (ru->op == OP_COUNT) {
			json_decref(v);
			if (!(v = json_integer(1))) {
				rc = -1;
				break;
			}
		}
		if (!json_is_number(v)) {
			rc = mismatch(ru, rec, what, v, "a number", err);
			break;
		}
		if (cur && !json_is_number(cur)) {
			rc = mismatch(ru, rec, ru->path.text, cur, "a number", err);
			break;
		}
		if (cur) {
			nv = arith(cur, v, ru->op == OP_SUB);
			/* (JSON has no infinity: jansson makes no such real) */
			if (!nv && !isfinite(ru->op == OP_SUB ? num(cur) - num(v) : num(cur) + num(v))) {
				rc = es_fail(err, ES_DATA, "reducer: %s (%s %s): seq %llu: the result is "
					     "out of range (beyond +/-1.7976931348623157e308)",
					     ru->where, op_names[ru->op],
					     ru->path.n ? ru->path.text : "(root)",
					     (unsigned long long)rec->seq);
				break;
			}
		} else if (ru->op == OP_SUB) {
			json_t *zero = json_integer(0);
			nv = arith(zero, v, 1);
			json_decref(zero);
		} else {
			nv = json_incref(v);
		}
		rc = es_path_set(*state, &ru->path, nv);
		break;
	case OP_MIN:
	case OP_MAX:
		if (!cur) {
			rc = es_path_set(*state, &ru->path, json_incref(v));
			break;
		}
		if (cmp(v, cur, &c)) {
			rc = mismatch(ru, rec, what, v, kind(cur), err);
			break;
		}
		if ((ru->op == OP_MIN && c < 0) || (ru->op == OP_MAX && c > 0))
			rc = es_path_set(*state, &ru->path, json_incref(v));
		break;
	case OP_PUSH:
		if (!cur) {
			cur = json_array();
			if (es_path_set(*state, &ru->path, cur)) {
				rc = -1;
				break;
			}
		}
		if (!json_is_array(cur)) {
			rc = mismatch(ru, rec, ru->path.text, cur, "an array", err);
			break;
		}
		rc = json_array_append(cur, v);
		while (rc == 0 && ru->cap && json_array_size(cur) > ru->cap)
			rc = json_array_remove(cur, 0);
		break;
	}
	json_decref(v);
	if (rc < 0)
		return es_fail(err, ES_DATA, "reducer: %s (%s %s): seq %llu: cannot apply at this path",
			       ru->where, op_names[ru->op], ru->path.n ? ru->path.text : "(root)",
			       (unsigned long long)rec->seq);
	return rc;
}

/* A failed allocation inside a rule looks like an answer there (a value
 * "absent", a path that "cannot" be set): the count of failures tells. */
static int apply_set(const struct ruleset *rs, json_t **state, const struct es_rec *rec,
		     struct es_error *err)
{
	unsigned long failures = es_alloc_failures();

	for (size_t i = 0; i < rs->n; i++) {
		int rc = apply_rule(&rs->r[i], state, rec, err);
		if (es_alloc_failures() != failures)
			return es_fail(err, ES_IO, "out of memory");
		if (rc)
			return err->code;
	}
	return 0;
}

/* The rules for rec's type (NULL: none). 0, or -1 when out of memory. */
static int typed_set(const struct es_reducer *r, const struct es_rec *rec,
		     const struct ruleset **rs)
{
	const uint64_t *ix;

	*rs = NULL;
	if (rec->type_len < 2)
		return 0;
	if (!memchr(rec->type, '\\', rec->type_len)) {
		ix = es_strmap_get(&r->types, rec->type + 1, rec->type_len - 2);
	} else {
		json_t *t = es_json_from_raw(rec->type, rec->type_len);
		if (!t) /* a stored type is a valid literal: no memory */
			return -1;
		ix = es_strmap_get(&r->types, json_string_value(t), json_string_length(t));
		json_decref(t);
	}
	if (ix)
		*rs = &r->sets[*ix];
	return 0;
}

int es_reducer_apply(const struct es_reducer *r, json_t **state, const struct es_rec *rec,
		     struct es_error *err)
{
	if (r->is_default) {
		unsigned long failures = es_alloc_failures();
		json_t *data = json_loadb(rec->data, rec->data_len, 0, NULL);
		int rc;
		if (!data && es_alloc_failures() != failures)
			return es_fail(err, ES_IO, "out of memory");
		if (!data)
			return es_fail(err, ES_DATA, "seq %llu: data is not valid JSON",
				       (unsigned long long)rec->seq);
		rc = es_merge_patch(state, data);
		json_decref(data);
		return rc ? es_fail(err, ES_IO, "out of memory") : 0;
	}
	const struct ruleset *typed;

	if (typed_set(r, rec, &typed))
		return es_fail(err, ES_IO, "out of memory");
	if (typed && apply_set(typed, state, rec, err))
		return err->code;
	return apply_set(&r->star, state, rec, err);
}

int es_reducer_apply_whole(const struct es_reducer *r, json_t **state, const struct es_rec *rec,
			   struct es_error *err)
{
	const struct ruleset *typed;
	json_t *backup = NULL;
	int rc;

	if (r->is_default) /* (bad data fails before the merge changes anything) */
		return es_reducer_apply(r, state, rec, err);
	if (typed_set(r, rec, &typed))
		return es_fail(err, ES_IO, "out of memory");
	/* one rule that fails changes nothing: a copy only for more */
	if (r->star.n + (typed ? typed->n : 0) > 1 && !(backup = json_deep_copy(*state)))
		return es_fail(err, ES_IO, "out of memory");
	rc = typed && apply_set(typed, state, rec, err) ? err->code
							: apply_set(&r->star, state, rec, err);
	if (rc && backup) {
		json_decref(*state);
		*state = backup;
	} else {
		json_decref(backup);
	}
	return rc;
}

static int set_reads(const struct ruleset *rs)
{
	int need = 0;

	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *ru = &rs->r[i];
		if (ru->has_from && ru->from.field == F_META)
			need |= ES_BODY_META;
		if (ru->has_from && ru->from.field == F_DATA && ru->from.path.n == 1)
			need |= ES_BODY_DATA_END;
	}
	return need;
}

int es_reducer_reads(const struct es_reducer *r)
{
	int need = r->is_default ? ES_BODY_DATA_END : set_reads(&r->star);

	for (size_t i = 0; i < r->nsets; i++)
		need |= set_reads(&r->sets[i]);
	return need;
}

void es_fold_init(struct es_fold *f, const struct es_reducer *r)
{
	memset(f, 0, sizeof(*f));
	f->state = es_reducer_init(r);
}

void es_fold_release(struct es_fold *f)
{
	json_decref(f->state);
	es_buf_release(&f->stream);
	memset(f, 0, sizeof(*f));
}

/* One event on a flat state, all or nothing: 1 when applied; 0 when the
 * state must become its object first (a value that is not an integer
 * literal, an overflow); -1 when out of memory. As apply_rule: a value
 * absent from the event does nothing; a key set for the first time takes
 * the value (sub: its negation) and comes last in the object. */
static int flat_apply(const struct es_reducer *r, struct es_fold *f, const struct es_rec *rec)
{
	const struct ruleset *sets[2];
	long long slot[ES_FOLD_FLAT];
	unsigned char order[ES_FOLD_FLAT], nset = f->nset, have[ES_FOLD_FLAT] = {0};

	if (typed_set(r, rec, &sets[0]))
		return -1;
	sets[1] = &r->star;
	memcpy(slot, f->slot, sizeof(slot));
	memcpy(order, f->order, sizeof(order));
	for (unsigned i = 0; i < nset; i++)
		have[order[i]] = 1;
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; sets[s] && i < sets[s]->n; i++) {
			const struct rule *ru = &sets[s]->r[i];
			int k = ru->slot;
			long long y, z;
			if (ru->op == OP_COUNT) {
				y = 1;
			} else if (!ru->has_from) {
				y = json_integer_value(ru->value);
			} else {
				int got = from_int(ru, rec, &y);
				if (got == 0)
					continue; /* absent */
				if (got < 0)
					return 0;
			}
			if (have[k]) {
				if (ru->op == OP_SUB ? __builtin_sub_overflow(slot[k], y, &z)
						     : __builtin_add_overflow(slot[k], y, &z))
					return 0;
			} else if (ru->op == OP_SUB) {
				if (__builtin_sub_overflow(0LL, y, &z))
					return 0;
				have[k] = 1;
				order[nset++] = (unsigned char)k;
			} else {
				z = y;
				have[k] = 1;
				order[nset++] = (unsigned char)k;
			}
			slot[k] = z;
		}
	}
	memcpy(f->slot, slot, sizeof(slot));
	memcpy(f->order, order, sizeof(order));
	f->nset = nset;
	return 1;
}

/* The flat state as its object (new), or NULL when out of memory. */
static json_t *flat_object(const struct es_fold *f)
{
	json_t *o = json_object();

	for (unsigned i = 0; o && i < f->nset; i++) {
		int k = f->order[i];
		if (json_object_set_new(o, f->keys[k], json_integer(f->slot[k]))) {
			json_decref(o);
			o = NULL;
		}
	}
	return o;
}

int es_fold_apply(const struct es_reducer *r, struct es_fold *f, const struct es_rec *rec,
		  struct es_error *err)
{
	int flat;

	/* A store's versions only grow; FILEs in another order, or given
	 * twice, would fold a stale state */
	if (rec->version <= f->version)
		return es_fail(err, ES_DATA, "seq %llu: stream %.*s: version %llu after version %llu: "
			       "the records are not in log order (FILEs in another order, or twice?)",
			       (unsigned long long)rec->seq, (int)rec->stream_len, rec->stream,
			       (unsigned long long)rec->version, (unsigned long long)f->version);
	flat = f->is_flat ? flat_apply(r, f, rec) : 0;
	if (flat < 0)
		return es_fail(err, ES_IO, "out of memory");
	if (flat == 0 && f->is_flat) {
		/* from now on the state is its object */
		if (!(f->state = flat_object(f)))
			return es_fail(err, ES_IO, "out of memory");
		f->is_flat = 0;
	}
	if (flat == 0 && es_reducer_apply(r, &f->state, rec, err))
		return err->code;
	if (f->stream.len == 0 && es_buf_add(&f->stream, rec->stream, rec->stream_len))
		return es_fail(err, ES_IO, "out of memory");
	f->version = rec->version;
	f->seq = rec->seq;
	memcpy(f->ts, rec->ts, ES_TS_LEN);
	f->ts[ES_TS_LEN] = '\0';
	return 0;
}

int es_fold_print(const struct es_fold *f, struct es_buf *out)
{
	char num[64], *p = num;

	/* (no printf: 50,000 states of a whole-store fold print in a blink) */
	memcpy(p, ",\"version\":", 11);
	p = es_put_u64(p + 11, f->version);
	memcpy(p, ",\"seq\":", 7);
	p = es_put_u64(p + 7, f->seq);
	json_t *flat = f->is_flat ? flat_object(f) : NULL;
	int rc;

	if (f->is_flat && !flat)
		return -1;
	rc = es_buf_adds(out, "{\"stream\":") || es_buf_add(out, f->stream.p, f->stream.len) ||
	     es_buf_add(out, num, (size_t)(p - num)) || es_buf_adds(out, ",\"ts\":\"") ||
	     es_buf_add(out, f->ts, strlen(f->ts)) || es_buf_adds(out, "\",\"state\":") ||
	     es_json_dump_exact_add(out, f->is_flat ? flat : f->state) || es_buf_adds(out, "}\n");
	json_decref(flat);
	return rc ? -1 : 0;
}

int es_foldset_init(struct es_foldset *fs)
{
	memset(fs, 0, sizeof(*fs));
	return 0;
}

void es_foldset_release(struct es_foldset *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		es_fold_release(&fs->f[i]);
	free(fs->f);
	es_strmap_release(&fs->map);
	memset(fs, 0, sizeof(*fs));
}

struct es_fold *es_foldset_get(struct es_foldset *fs, const struct es_reducer *r,
			       const struct es_rec *rec)
{
	return es_foldset_get_h(fs, r, rec, es_strmap_hash(rec->stream, rec->stream_len));
}

struct es_fold *es_foldset_get_h(struct es_foldset *fs, const struct es_reducer *r,
				 const struct es_rec *rec, uint64_t h)
{
	int added;
	uint64_t *ix = es_strmap_put_h(&fs->map, rec->stream, rec->stream_len, h, &added);
	struct es_fold *f;

	if (!ix)
		return NULL;
	if (!added)
		return &fs->f[*ix];
	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 64;
		struct es_fold *nf = es_realloc(fs->f, cap * sizeof(*nf));
		if (!nf)
			return NULL;
		fs->f = nf;
		fs->cap = cap;
	}
	f = &fs->f[fs->n];
	if (fs->flat && r->nflat) {
		memset(f, 0, sizeof(*f));
		f->is_flat = 1;
		f->keys = r->flat_key;
	} else {
		es_fold_init(f, r);
	}
	f->first_seq = rec->seq;
	*ix = fs->n;
	/* sized to fit: tens of thousands of streams, each a few bytes */
	if ((f->stream.p = es_malloc(rec->stream_len + 1)))
		f->stream.cap = rec->stream_len + 1;
	if ((!f->state && !f->is_flat) || es_buf_add(&f->stream, rec->stream, rec->stream_len)) {
		es_fold_release(f);
		return NULL;
	}
	return &fs->f[fs->n++];
}
