#include "record.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "input.h"
#include "io.h"
#include "json.h"
#include "jsonv.h"
#include "timeq.h"

void es_batch_init(struct es_batch *b)
{
	memset(b, 0, sizeof(*b));
}

char *es_event_where(const struct es_batch *b, const struct es_event *ev, char *buf, size_t n)
{
	return es_line_where(buf, n, b->files ? b->files[ev->file] : "-",
			     (unsigned long long)ev->lineno);
}

void es_batch_release(struct es_batch *b)
{
	es_buf_release(&b->text);
	free(b->ev);
	memset(b, 0, sizeof(*b));
}

static const char *const known_keys[] = {
	"stream", "type", "id", "schema", "expect", "data", "meta", "ts", NULL
};
enum { K_STREAM, K_TYPE, K_ID, K_SCHEMA, K_EXPECT, K_DATA, K_META, K_TS, K_NKEYS };
static const char *const reserved_keys[] = {"seq", "version", "hash", "more", NULL};

static int in_list(const char *k, size_t n, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strlen(list[i]) == n && memcmp(k, list[i], n) == 0)
			return i;
	return -1;
}

/* A validated string literal's text, decoded into tmp. */
static int decode(struct es_buf *tmp, const struct es_jv_member *m)
{
	if (memchr(m->val, '\\', m->vlen) == NULL) {
		es_buf_reset(tmp);
		return es_buf_add(tmp, m->val + 1, m->vlen - 2);
	}
	return es_json_decode_string(tmp, m->val, m->vlen);
}

static int name_field(const struct es_jv_member *m, const char *key, int required,
		      struct es_buf *tmp, struct es_error *err)
{
	if (!m)
		return required ? es_fail(err, ES_DATA, "\"%s\" is missing", key) : 0;
	if (m->val[0] != '"' || m->vlen == 2)
		return es_fail(err, ES_DATA, "\"%s\" must be a non-empty string", key);
	if (decode(tmp, m))
		return es_fail(err, ES_IO, "out of memory");
	if (tmp->len > ES_NAME_MAX)
		return es_fail(err, ES_DATA, "\"%s\" is longer than %d bytes", key, ES_NAME_MAX);
	return 0;
}

/* Add a name to the arena decoded (NUL-terminated) and as canonical JSON:
 * a literal without escapes already is what jansson would print. */
static int add_name(struct es_batch *b, const struct es_jv_member *m, struct es_buf *tmp,
		    size_t *off, size_t *len, size_t *js, size_t *js_len)
{
	if (decode(tmp, m))
		return -1;
	if (off) {
		*off = b->text.len;
		*len = tmp->len;
		if (es_buf_add(&b->text, tmp->p ? tmp->p : "", tmp->len) || es_buf_addc(&b->text, '\0'))
			return -1;
	}
	*js = b->text.len;
	if (memchr(m->val, '\\', m->vlen) == NULL ? es_buf_add(&b->text, m->val, m->vlen)
						  : es_json_add_string(&b->text, tmp->p, tmp->len))
		return -1;
	*js_len = b->text.len - *js;
	return es_buf_addc(&b->text, '\0');
}

/* A non-negative integer literal up to INT64_MAX, or -1. */
static int64_t small_int(const struct es_jv_member *m)
{
	int64_t v = 0;

	if (m->vlen == 0 || m->vlen > 19)
		return -1;
	for (size_t i = 0; i < m->vlen; i++) {
		int d = m->val[i] - '0';
		if (d < 0 || d > 9 || v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	return v;
}

static int parse_expect(const struct es_jv_member *m, struct es_event *ev, struct es_buf *tmp,
			struct es_error *err)
{
	int64_t v;

	if (!m) {
		ev->expect = ES_EXPECT_UNSET;
		return 0;
	}
	if ((v = small_int(m)) >= 0) {
		ev->expect = ES_EXPECT_EXACT;
		ev->expect_version = (uint64_t)v;
		return 0;
	}
	if (m->val[0] == '"' && decode(tmp, m) == 0) {
		es_buf_addc(tmp, '\0');
		tmp->len--;
		if (strcmp(tmp->p, "any") == 0) { ev->expect = ES_EXPECT_ANY; return 0; }
		if (strcmp(tmp->p, "none") == 0) { ev->expect = ES_EXPECT_NONE; return 0; }
		if (strcmp(tmp->p, "exists") == 0) { ev->expect = ES_EXPECT_EXISTS; return 0; }
	}
	return es_fail(err, ES_DATA,
		       "\"expect\" must be \"any\", \"none\", \"exists\" or a version >= 0");
}

/* Which known member each top-level key is; errors for the others. */
static int sort_members(const struct es_jv *jv, const struct es_jv_member **f, int flags,
			struct es_buf *tmp, struct es_error *err)
{
	for (size_t i = 0; i < jv->ntop; i++) {
		const struct es_jv_member *m = &jv->top[i];
		const char *k = m->key + 1;
		size_t kn = m->klen - 2;
		int which;
		if (memchr(m->key, '\\', m->klen)) {
			if (es_json_decode_string(tmp, m->key, m->klen))
				return es_fail(err, ES_IO, "out of memory");
			k = tmp->p ? tmp->p : "";
			kn = tmp->len;
		}
		if (in_list(k, kn, reserved_keys) >= 0 ||
		    (in_list(k, kn, known_keys) == K_TS && !(flags & ES_PARSE_TS)))
			return es_fail(err, ES_DATA, "\"%.*s\" is assigned by the store and must not be given",
				       (int)kn, k);
		which = in_list(k, kn, known_keys);
		if (which < 0)
			return es_fail(err, ES_DATA, "unknown field \"%.*s\"", (int)(kn > 100 ? 100 : kn), k);
		f[which] = m;
	}
	return 0;
}

static int check_fields(const struct es_jv_member **f, struct es_event *ev, int flags,
			struct es_buf *tmp, struct es_error *err)
{
	int64_t v;

	if (name_field(f[K_STREAM], "stream", 1, tmp, err) ||
	    name_field(f[K_TYPE], "type", 1, tmp, err) || name_field(f[K_ID], "id", 0, tmp, err))
		return err->code;
	if (f[K_DATA] && f[K_DATA]->val[0] != '{')
		return es_fail(err, ES_DATA, "\"data\" must be an object");
	if (f[K_META] && f[K_META]->val[0] != '{')
		return es_fail(err, ES_DATA, "\"meta\" must be an object");
	if (f[K_SCHEMA] && (v = small_int(f[K_SCHEMA])) < 1)
		return es_fail(err, ES_DATA, "\"schema\" must be an integer >= 1");
	ev->schema = f[K_SCHEMA] ? small_int(f[K_SCHEMA]) : 0;
	if (parse_expect(f[K_EXPECT], ev, tmp, err))
		return err->code;
	if (flags & ES_PARSE_TS) {
		if (!f[K_TS])
			return es_fail(err, ES_DATA, "\"ts\" is missing (--import-ts)");
		if (f[K_TS]->val[0] != '"' || decode(tmp, f[K_TS]) ||
		    es_ts_parse(tmp->p ? tmp->p : "", tmp->len, &ev->ts))
			return es_fail(err, ES_DATA, "\"ts\" must be an RFC 3339 time");
		/* refused here, with the input, and not when the batch is
		 * stored: by then a store that did not exist has been created */
		if (ev->ts < 0)
			return es_fail(err, ES_DATA, "\"ts\" is before 1970-01-01T00:00:00Z, "
				       "the earliest time a store holds");
	}
	return 0;
}

static int grow_events(struct es_batch *b)
{
	if (b->n < b->cap)
		return 0;
	size_t cap = b->cap ? b->cap * 2 : 64;
	struct es_event *ev = es_realloc(b->ev, cap * sizeof(*ev));
	if (!ev)
		return -1;
	b->ev = ev;
	b->cap = cap;
	return 0;
}

int es_batch_move(struct es_batch *dst, struct es_batch *src)
{
	size_t base = dst->text.len;

	if (src->n == 0)
		return 0;
	{
		size_t cap = dst->cap;
		while (cap < dst->n + src->n)
			cap = cap ? cap * 2 : 64;
		if (cap != dst->cap) {
			struct es_event *ev = es_realloc(dst->ev, cap * sizeof(*ev));
			if (!ev)
				return -1;
			dst->ev = ev;
			dst->cap = cap;
		}
	}
	if (es_buf_add(&dst->text, src->text.p, src->text.len))
		return -1;
	for (size_t i = 0; i < src->n; i++) {
		struct es_event *e = &dst->ev[dst->n + i];
		*e = src->ev[i];
		e->stream += base;
		e->stream_js += base;
		e->type_js += base;
		e->id += base;
		e->id_js += base;
		e->data += base;
		e->meta += base;
	}
	dst->n += src->n;
	src->n = 0;
	es_buf_reset(&src->text);
	return 0;
}

/* Objects too wide for the validator's duplicate check go to jansson. */
static int wide_check(const char *line, size_t len, struct es_error *err)
{
	json_error_t jerr;
	int oom;
	json_t *root = es_json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr, &oom);

	if (root) {
		json_decref(root);
		return 0;
	}
	if (oom)
		return es_fail(err, ES_IO, "out of memory");
	return es_fail(err, ES_DATA, "invalid JSON: %s (column %d)", jerr.text, jerr.column);
}

static int add_uuid(struct es_batch *b, struct es_event *ev)
{
	char uuid[37];

	if (es_uuid7(es_now_us(), uuid))
		return -1;
	ev->id = b->text.len;
	ev->id_len = 36;
	if (es_buf_add(&b->text, uuid, 37))
		return -1;
	ev->id_js = b->text.len;
	ev->id_js_len = 38;
	return es_buf_addf(&b->text, "\"%s\"", uuid) || es_buf_addc(&b->text, '\0');
}

/* The longest the stored line of ev can be, with seq, version and schema at
 * their widest: what es_record_build() adds to the event's own pieces. */
static size_t stored_max(const struct es_event *ev)
{
	static const char keys[] = "{\"seq\":,\"stream\":,\"version\":,\"type\":,\"ts\":\"\","
				   "\"id\":,\"schema\":,\"data\":,\"meta\":,\"more\":true,"
				   "\"hash\":\"\"}";

	return sizeof(keys) - 1 + 3 * 20 + ES_TS_LEN + ES_HASH_HEX + ev->stream_js_len +
	       ev->type_js_len + ev->id_js_len + ev->data_len + ev->meta_len;
}

int es_batch_add_line(struct es_batch *b, const char *line, size_t len,
		      uint64_t lineno, int flags, struct es_error *err)
{
	struct es_jv_member top[16];
	const struct es_jv_member *f[K_NKEYS] = {0};
	struct es_jv jv = {top, 0, 16, ES_JSON_MAX_DEPTH, NULL, 0, 0};
	struct es_buf tmp = ES_BUF_INIT;
	struct es_event ev;
	size_t mark = b->text.len;

	memset(&ev, 0, sizeof(ev));
	ev.lineno = lineno;
	/* (a byte order mark at the start of a file is the reader's: ingest.c) */
	if (len == 0)
		return es_fail(err, ES_DATA, "empty line");
	if (memchr(line, '\0', len))
		return es_fail(err, ES_DATA, "NUL byte in line");
	if (es_json_validate(&jv, line, len) != 0) {
		if (strcmp(jv.why, "nesting too deep") == 0)
			return es_fail(err, ES_DATA, "nesting deeper than %d levels", ES_JSON_MAX_DEPTH);
		if (strcmp(jv.why, "an event must be a JSON object") == 0)
			return es_fail(err, ES_DATA, "%s", jv.why);
		return es_fail(err, ES_DATA, "invalid JSON: %s (column %zu)", jv.why, jv.at + 1);
	}
	if (jv.too_many && wide_check(line, len, err))
		return err->code;
	if (sort_members(&jv, f, flags, &tmp, err) || check_fields(f, &ev, flags, &tmp, err))
		goto fail;
	ev.id_given = f[K_ID] != NULL;
	if (grow_events(b) ||
	    add_name(b, f[K_STREAM], &tmp, &ev.stream, &ev.stream_len, &ev.stream_js,
		     &ev.stream_js_len) ||
	    add_name(b, f[K_TYPE], &tmp, NULL, NULL, &ev.type_js, &ev.type_js_len) ||
	    (ev.id_given ? add_name(b, f[K_ID], &tmp, &ev.id, &ev.id_len, &ev.id_js, &ev.id_js_len)
			 : add_uuid(b, &ev)))
		goto nomem;
	ev.data = b->text.len;
	if (f[K_DATA] ? es_json_minify(&b->text, f[K_DATA]->val, f[K_DATA]->vlen)
		      : es_buf_adds(&b->text, "{}"))
		goto nomem;
	ev.data_len = b->text.len - ev.data;
	if (f[K_META]) {
		ev.meta = b->text.len;
		if (es_json_minify(&b->text, f[K_META]->val, f[K_META]->vlen))
			goto nomem;
		ev.meta_len = b->text.len - ev.meta;
	}
	if (stored_max(&ev) > ES_LINE_MAX_DEFAULT) {
		/* every reader of the log stops at that length */
		es_fail(err, ES_DATA, "the stored event would be longer than %u bytes: "
			"its data and meta must leave room for the envelope", ES_LINE_MAX_DEFAULT);
		goto fail;
	}
	es_buf_release(&tmp);
	b->ev[b->n++] = ev;
	return 0;
nomem:
	es_fail(err, ES_IO, "out of memory");
fail:
	es_buf_release(&tmp);
	b->text.len = mark;
	return err->code;
}

int es_uuid7(int64_t us, char out[37])
{
	/* per thread: input lines are validated on several */
	static _Thread_local unsigned char pool[4096];
	static _Thread_local size_t left;
	static const char hex[] = "0123456789abcdef";
	unsigned char u[16];
	uint64_t ms = (uint64_t)(us / 1000);

	if (left < 10) {
		ssize_t n = getrandom(pool, sizeof(pool), 0);
		if (n != (ssize_t)sizeof(pool))
			return -1;
		left = sizeof(pool);
	}
	for (int i = 0; i < 6; i++)
		u[i] = (unsigned char)(ms >> (40 - 8 * i));
	memcpy(u + 6, pool + sizeof(pool) - left, 10);
	left -= 10;
	u[6] = (unsigned char)(0x70 | (u[6] & 0x0F));
	u[8] = (unsigned char)(0x80 | (u[8] & 0x3F));
	for (int i = 0, o = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[36] = '\0';
	return 0;
}

#define PUT(lit) (memcpy(p, lit, sizeof(lit) - 1), p += sizeof(lit) - 1)

int es_record_build(struct es_buf *out, struct es_chain *chain,
		    const char prev[ES_HASH_HEX], const struct es_batch *b,
		    const struct es_event *ev, uint64_t seq, uint64_t version,
		    const char ts[], int more, char hash_out[ES_HASH_HEX + 1])
{
	size_t need = 200 + ev->stream_js_len + ev->type_js_len + ev->id_js_len +
		      ev->data_len + ev->meta_len + ES_HASH_HEX;
	char *start, *p;

	if (es_buf_grow(out, need))
		return -1;
	start = p = out->p + out->len;
	PUT("{\"seq\":");
	p = es_put_u64(p, seq);
	PUT(",\"stream\":");
	memcpy(p, b->text.p + ev->stream_js, ev->stream_js_len);
	p += ev->stream_js_len;
	PUT(",\"version\":");
	p = es_put_u64(p, version);
	PUT(",\"type\":");
	memcpy(p, b->text.p + ev->type_js, ev->type_js_len);
	p += ev->type_js_len;
	PUT(",\"ts\":\"");
	memcpy(p, ts, ES_TS_LEN);
	p += ES_TS_LEN;
	PUT("\",\"id\":");
	memcpy(p, b->text.p + ev->id_js, ev->id_js_len);
	p += ev->id_js_len;
	if (ev->schema > 0) {
		PUT(",\"schema\":");
		p = es_put_u64(p, (uint64_t)ev->schema);
	}
	PUT(",\"data\":");
	memcpy(p, b->text.p + ev->data, ev->data_len);
	p += ev->data_len;
	if (ev->meta_len) {
		PUT(",\"meta\":");
		memcpy(p, b->text.p + ev->meta, ev->meta_len);
		p += ev->meta_len;
	}
	if (more)
		PUT(",\"more\":true");
	if (es_chain_hash(chain, prev, start, (size_t)(p - start), hash_out))
		return -1;
	PUT(",\"hash\":\"");
	memcpy(p, hash_out, ES_HASH_HEX);
	p += ES_HASH_HEX;
	PUT("\"}\n");
	out->len = (size_t)(p - out->p);
	out->p[out->len] = '\0';
	return 0;
}

/* Strict reader of our own format. */
struct cur {
	const char *s, *end;
};

static int lit(struct cur *c, const char *l, size_t n)
{
	if ((size_t)(c->end - c->s) < n || memcmp(c->s, l, n) != 0)
		return -1;
	c->s += n;
	return 0;
}
#define LIT(c, l) lit(c, l, sizeof(l) - 1)

/* A damaged ts must not pass for a late or an early one in a time search. */
int es_ts_stored_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
#define F2(i) ((s[i] - '0') * 10 + (s[i + 1] - '0'))

	for (int i = 0; i < ES_TS_LEN; i++)
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
			return 0;
	return F2(5) >= 1 && F2(5) <= 12 && F2(8) >= 1 && F2(8) <= 31 && F2(11) <= 23 &&
	       F2(14) <= 59 && F2(17) <= 60;
#undef F2
}

static int num(struct cur *c, uint64_t *v)
{
	const char *start = c->s;
	uint64_t x = 0;

	if (c->s < c->end && *c->s == '0')
		return -1; /* no leading zeros; seq and version start at 1 */
	while (c->s < c->end && *c->s >= '0' && *c->s <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*c->s++ - '0');
	}
	*v = x;
	return c->s > start ? 0 : -1;
}

static int str(struct cur *c, const char **p, size_t *n)
{
	size_t e;

	if (c->s >= c->end || *c->s != '"')
		return -1;
	e = es_json_skip_string(c->s, (size_t)(c->end - c->s), 0);
	if (e == (size_t)-1 || e < 3)
		return -1;
	*p = c->s;
	*n = e;
	c->s += e;
	return 0;
}

static int obj(struct cur *c, const char **p, size_t *n)
{
	size_t e;

	if (c->s >= c->end || *c->s != '{')
		return -1;
	e = es_json_skip(c->s, (size_t)(c->end - c->s), 0);
	if (e == (size_t)-1)
		return -1;
	*p = c->s;
	*n = e;
	c->s += e;
	return 0;
}

int es_rec_start(const char *line, size_t len, struct es_rec_start *st)
{
	struct cur c = {line, line + len};

	return LIT(&c, "{\"seq\":") || num(&c, &st->seq) || LIT(&c, ",\"stream\":") ||
			       str(&c, &st->stream, &st->stream_len)
		       ? -1
		       : 0;
}

int es_rec_parse(const char *line, size_t len, int flags, struct es_rec *r,
		 const char **why)
{
	return es_rec_parse_rest(line, len, flags, NULL, r, why);
}

/* (st NULL: the start is read here) */
int es_rec_parse_rest(const char *line, size_t len, int flags, const struct es_rec_start *st,
		      struct es_rec *r, const char **why)
{
	struct cur c = {line, line + len};
	const char *tail;
	uint64_t schema;

	memset(r, 0, sizeof(*r));
	*why = "not a stored record";
	/* The hash sits at a fixed place from the end. */
	if (len < 80)
		return -1;
	tail = line + len - (9 + ES_HASH_HEX + 2);
	if (memcmp(tail, ",\"hash\":\"", 9) != 0 || memcmp(line + len - 2, "\"}", 2) != 0) {
		*why = "no \"hash\" at the end of the record";
		return -1;
	}
	r->hash = tail + 9;
	if (!(flags & ES_REC_HEX_LATER) && !es_is_hash_hex(r->hash, ES_HASH_HEX)) {
		*why = "\"hash\" is not 64 lowercase hex digits";
		return -1;
	}
	r->body_len = (size_t)(tail - line);
	c.end = tail;
	if (c.end - c.s >= 12 && memcmp(c.end - 12, ",\"more\":true", 12) == 0) {
		r->more = 1;
		c.end -= 12;
	}
	*why = "envelope keys missing or out of order";
	if (st) {
		/* read up to the line's end: as read up to the tail, or not at all */
		if (st->stream + st->stream_len > c.end)
			return -1;
		r->seq = st->seq;
		r->stream = st->stream;
		r->stream_len = st->stream_len;
		c.s = st->stream + st->stream_len;
	} else if (LIT(&c, "{\"seq\":") || num(&c, &r->seq) || LIT(&c, ",\"stream\":") ||
		   str(&c, &r->stream, &r->stream_len)) {
		return -1;
	}
	if (LIT(&c, ",\"version\":") ||
	    num(&c, &r->version) || LIT(&c, ",\"type\":") || str(&c, &r->type, &r->type_len) ||
	    LIT(&c, ",\"ts\":\""))
		return -1;
	if (c.end - c.s < ES_TS_LEN + 1 || c.s[ES_TS_LEN] != '"' ||
	    (flags & ES_REC_ANY_TS ? c.s[ES_TS_LEN - 1] != 'Z' : !es_ts_stored_ok(c.s))) {
		*why = "\"ts\" is not in the stored form";
		return -1;
	}
	r->ts = c.s;
	c.s += ES_TS_LEN + 1;
	if (LIT(&c, ",\"id\":") || str(&c, &r->id, &r->id_len))
		return -1;
	if (LIT(&c, ",\"schema\":") == 0) {
		if (num(&c, &schema))
			return -1;
		r->schema = (int64_t)schema;
	}
	if (LIT(&c, ",\"data\":"))
		return -1;
	if (!(flags & ES_REC_BODY))
		return 0;
	if (obj(&c, &r->data, &r->data_len))
		return -1;
	if (LIT(&c, ",\"meta\":") == 0 && obj(&c, &r->meta, &r->meta_len))
		return -1;
	if (c.s != c.end) {
		*why = "unexpected text after \"data\"";
		return -1;
	}
	return 0;
}

int es_rec_locate_body(const char *line, struct es_rec *r, int need)
{
	const char *p = r->id + r->id_len, *end = line + r->body_len;
	size_t e;

	if (end - p > 10 && memcmp(p, ",\"schema\":", 10) == 0)
		for (p += 10; p < end && *p >= '0' && *p <= '9'; p++)
			;
	if (end - p < 10 || memcmp(p, ",\"data\":{", 9) != 0)
		return -1;
	p += 8;
	r->data = p;
	r->data_len = (size_t)(end - p);
	if (!(need & (ES_BODY_DATA_END | ES_BODY_META)))
		return 0;
	e = es_json_skip(p, (size_t)(end - p), 0);
	if (e == (size_t)-1)
		return -1;
	r->data_len = e;
	p += e;
	if ((need & ES_BODY_META) && end - p > 8 && memcmp(p, ",\"meta\":", 8) == 0) {
		p += 8;
		e = es_json_skip(p, (size_t)(end - p), 0);
		if (e == (size_t)-1)
			return -1;
		r->meta = p;
		r->meta_len = e;
	}
	return 0;
}

int es_rec_check(struct es_chain *chain, const char prev[ES_HASH_HEX],
		 const char *line, const struct es_rec *r)
{
	return es_chain_check(chain, prev, line, r->body_len, r->hash) == 1;
}
