#include "record.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "io.h"
#include "json.h"
#include "timeq.h"

void es_batch_init(struct es_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void es_batch_release(struct es_batch *b)
{
	es_buf_release(&b->text);
	free(b->ev);
	memset(b, 0, sizeof(*b));
}

/* Raw spans of the top-level members we copy byte for byte. */
struct spans {
	const char *data, *meta;
	size_t data_len, meta_len;
};

static int key_is(const char *s, size_t len, const char *want, struct es_buf *tmp)
{
	size_t wl = strlen(want);

	if (memchr(s, '\\', len) == NULL)
		return len == wl + 2 && memcmp(s + 1, want, wl) == 0;
	if (es_json_decode_string(tmp, s, len))
		return 0;
	return tmp->len == wl && memcmp(tmp->p, want, wl) == 0;
}

/* Walk the top-level object (already validated by jansson). */
static int find_spans(const char *s, size_t len, struct spans *sp)
{
	struct es_buf tmp = ES_BUF_INIT;
	size_t i = 0;

	memset(sp, 0, sizeof(*sp));
	while (i < len && s[i] != '{')
		i++;
	for (i++; i < len;) {
		size_t k, ke, v, ve;
		while (i < len && s[i] != '"' && s[i] != '}')
			i++;
		if (i >= len || s[i] == '}')
			break;
		k = i;
		ke = es_json_skip_string(s, len, k);
		if (ke == (size_t)-1)
			break;
		i = ke;
		while (i < len && s[i] != ':')
			i++;
		v = i + 1;
		while (v < len && (s[v] == ' ' || s[v] == '\t' || s[v] == '\n' || s[v] == '\r'))
			v++;
		ve = es_json_skip(s, len, v);
		if (ve == (size_t)-1)
			break;
		if (key_is(s + k, ke - k, "data", &tmp)) {
			sp->data = s + v;
			sp->data_len = ve - v;
		} else if (key_is(s + k, ke - k, "meta", &tmp)) {
			sp->meta = s + v;
			sp->meta_len = ve - v;
		}
		i = ve;
	}
	es_buf_release(&tmp);
	return 0;
}

static const char *const known_keys[] = {
	"stream", "type", "id", "schema", "expect", "data", "meta", "ts", NULL
};
static const char *const reserved_keys[] = {"seq", "version", "hash", "more", NULL};

static int in_list(const char *k, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(k, *list) == 0)
			return 1;
	return 0;
}

static int name_field(json_t *obj, const char *key, int required, struct es_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return required ? es_fail(err, ES_DATA, "\"%s\" is missing", key) : 0;
	if (!json_is_string(v) || json_string_length(v) == 0)
		return es_fail(err, ES_DATA, "\"%s\" must be a non-empty string", key);
	if (json_string_length(v) > ES_NAME_MAX)
		return es_fail(err, ES_DATA, "\"%s\" is longer than %d bytes", key, ES_NAME_MAX);
	return 0;
}

/* Add s to the arena as decoded text (NUL-terminated) and as canonical JSON. */
static int add_name(struct es_batch *b, json_t *v, size_t *off, size_t *len,
		    size_t *js, size_t *js_len)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (off) {
		*off = b->text.len;
		*len = n;
		if (es_buf_add(&b->text, s, n) || es_buf_addc(&b->text, '\0'))
			return -1;
	}
	*js = b->text.len;
	if (es_json_add_string(&b->text, s, n))
		return -1;
	*js_len = b->text.len - *js;
	return es_buf_addc(&b->text, '\0');
}

static int parse_expect(json_t *v, struct es_event *ev, struct es_error *err)
{
	if (!v) {
		ev->expect = ES_EXPECT_UNSET;
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		ev->expect = ES_EXPECT_EXACT;
		ev->expect_version = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strcmp(s, "any") == 0) { ev->expect = ES_EXPECT_ANY; return 0; }
		if (strcmp(s, "none") == 0) { ev->expect = ES_EXPECT_NONE; return 0; }
		if (strcmp(s, "exists") == 0) { ev->expect = ES_EXPECT_EXISTS; return 0; }
	}
	return es_fail(err, ES_DATA,
		       "\"expect\" must be \"any\", \"none\", \"exists\" or a version >= 0");
}

static int validate(json_t *root, struct es_event *ev, int flags, struct es_error *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(root))
		return es_fail(err, ES_DATA, "an event must be a JSON object");
	json_object_foreach(root, key, v) {
		if (in_list(key, reserved_keys) || (strcmp(key, "ts") == 0 && !(flags & ES_PARSE_TS)))
			return es_fail(err, ES_DATA, "\"%s\" is assigned by the store and must not be given", key);
		if (!in_list(key, known_keys))
			return es_fail(err, ES_DATA, "unknown field \"%s\"", key);
	}
	if (name_field(root, "stream", 1, err) || name_field(root, "type", 1, err) ||
	    name_field(root, "id", 0, err))
		return err->code;
	v = json_object_get(root, "data");
	if (v && !json_is_object(v))
		return es_fail(err, ES_DATA, "\"data\" must be an object");
	v = json_object_get(root, "meta");
	if (v && !json_is_object(v))
		return es_fail(err, ES_DATA, "\"meta\" must be an object");
	v = json_object_get(root, "schema");
	if (v && !(json_is_integer(v) && json_integer_value(v) >= 1))
		return es_fail(err, ES_DATA, "\"schema\" must be an integer >= 1");
	ev->schema = v ? json_integer_value(v) : 0;
	if (parse_expect(json_object_get(root, "expect"), ev, err))
		return err->code;
	v = json_object_get(root, "ts");
	if (flags & ES_PARSE_TS) {
		if (!v)
			return es_fail(err, ES_DATA, "\"ts\" is missing (--import-ts)");
		if (!json_is_string(v) ||
		    es_ts_parse(json_string_value(v), json_string_length(v), &ev->ts))
			return es_fail(err, ES_DATA, "\"ts\" must be an RFC 3339 time");
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

int es_batch_add_line(struct es_batch *b, const char *line, size_t len,
		      uint64_t lineno, int flags, struct es_error *err)
{
	struct es_event ev;
	json_error_t jerr;
	json_t *root;
	struct spans sp;
	size_t mark = b->text.len;
	int depth;

	memset(&ev, 0, sizeof(ev));
	ev.lineno = lineno;
	if (lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3; /* a UTF-8 byte order mark at the very start is tolerated */
		len -= 3;
	}
	if (len == 0)
		return es_fail(err, ES_DATA, "empty line");
	if (memchr(line, '\0', len))
		return es_fail(err, ES_DATA, "NUL byte in line");
	depth = es_json_depth(line, len);
	if (depth > ES_JSON_MAX_DEPTH)
		return es_fail(err, ES_DATA, "nesting deeper than %d levels", ES_JSON_MAX_DEPTH);
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (errno == ENOMEM)
			return es_fail(err, ES_IO, "out of memory");
		return es_fail(err, ES_DATA, "invalid JSON: %s (column %d)", jerr.text, jerr.column);
	}
	if (validate(root, &ev, flags, err)) {
		json_decref(root);
		return err->code;
	}
	find_spans(line, len, &sp);
	if (grow_events(b) ||
	    add_name(b, json_object_get(root, "stream"), &ev.stream, &ev.stream_len,
		     &ev.stream_js, &ev.stream_js_len) ||
	    add_name(b, json_object_get(root, "type"), NULL, NULL, &ev.type_js, &ev.type_js_len) ||
	    (json_object_get(root, "id") &&
	     add_name(b, json_object_get(root, "id"), &ev.id, &ev.id_len, &ev.id_js, &ev.id_js_len)))
		goto nomem;
	ev.id_given = json_object_get(root, "id") != NULL;
	if (!ev.id_given) {
		char uuid[37];
		if (es_uuid7(es_now_us(), uuid))
			goto nomem;
		ev.id = b->text.len;
		ev.id_len = 36;
		if (es_buf_add(&b->text, uuid, 37))
			goto nomem;
		ev.id_js = b->text.len;
		ev.id_js_len = 38;
		if (es_buf_addf(&b->text, "\"%s\"", uuid) || es_buf_addc(&b->text, '\0'))
			goto nomem;
	}
	ev.data = b->text.len;
	if (sp.data ? es_json_minify(&b->text, sp.data, sp.data_len) : es_buf_adds(&b->text, "{}"))
		goto nomem;
	ev.data_len = b->text.len - ev.data;
	if (sp.meta) {
		ev.meta = b->text.len;
		if (es_json_minify(&b->text, sp.meta, sp.meta_len))
			goto nomem;
		ev.meta_len = b->text.len - ev.meta;
	}
	json_decref(root);
	b->ev[b->n++] = ev;
	return 0;
nomem:
	json_decref(root);
	b->text.len = mark;
	return es_fail(err, ES_IO, "out of memory");
}

int es_uuid7(int64_t us, char out[37])
{
	static unsigned char pool[4096];
	static size_t left;
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

static char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
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
	p = put_u64(p, seq);
	PUT(",\"stream\":");
	memcpy(p, b->text.p + ev->stream_js, ev->stream_js_len);
	p += ev->stream_js_len;
	PUT(",\"version\":");
	p = put_u64(p, version);
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
		p = put_u64(p, (uint64_t)ev->schema);
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

int es_rec_parse(const char *line, size_t len, int flags, struct es_rec *r,
		 const char **why)
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
	if (!es_is_hash_hex(r->hash, ES_HASH_HEX)) {
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
	if (LIT(&c, "{\"seq\":") || num(&c, &r->seq) || LIT(&c, ",\"stream\":") ||
	    str(&c, &r->stream, &r->stream_len) || LIT(&c, ",\"version\":") ||
	    num(&c, &r->version) || LIT(&c, ",\"type\":") || str(&c, &r->type, &r->type_len) ||
	    LIT(&c, ",\"ts\":\""))
		return -1;
	if (c.end - c.s < ES_TS_LEN + 1 || c.s[ES_TS_LEN] != '"' || c.s[ES_TS_LEN - 1] != 'Z') {
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

int es_rec_check(struct es_chain *chain, const char prev[ES_HASH_HEX],
		 const char *line, const struct es_rec *r)
{
	char h[ES_HASH_HEX + 1];

	if (es_chain_hash(chain, prev, line, r->body_len, h))
		return 0;
	return memcmp(h, r->hash, ES_HASH_HEX) == 0;
}
