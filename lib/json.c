#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

/* jansson allocates through es_malloc, which counts every failure
 * (es_alloc_failures, io.h). jansson 2.14, out of memory while dumping an
 * object's key to a growing buffer (json_dumps, json_dump_callback), leaves
 * the key out and returns the malformed text as a success; out of memory
 * while parsing, it reports a parse error: the count tells both. */
char *es_json_dumps(const json_t *v, size_t flags)
{
	unsigned long before = es_alloc_failures();
	char *s = json_dumps(v, flags);

	if (s && es_alloc_failures() != before) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

static json_t *load_checked(json_t *v, unsigned long before, int *oom)
{
	*oom = es_alloc_failures() != before;
	if (*oom) {
		json_decref(v);
		errno = ENOMEM;
		return NULL;
	}
	return v;
}

json_t *es_json_loadb(const char *s, size_t n, size_t flags, json_error_t *e, int *oom)
{
	unsigned long before = es_alloc_failures();

	return load_checked(json_loadb(s, n, flags, e), before, oom);
}

int es_json_file_ok(const char *path, struct es_error *err)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC), dir;

	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	dir = fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode);
	close(fd);
	if (dir) {
		errno = EISDIR;
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	}
	return 0;
}

json_t *es_json_load_file(const char *path, size_t flags, json_error_t *e, int *oom)
{
	unsigned long before = es_alloc_failures();

	return load_checked(json_load_file(path, flags, e), before, oom);
}

/* jansson (2.14) must never see an allocation fail while it reads text:
 * its lexer ignores a failure to grow the buffer it saves a token into,
 * drops the byte and then decodes past the end of what it saved: a heap
 * overflow, or assert(0). So a failure is counted (es_alloc_failures:
 * the callers that check say "out of memory" afterwards), and jansson gets
 * the memory anyway from a spare block freed for it (and put back by the
 * next allocation that succeeds); with no spare to give, the program's
 * handler ends the process. The spare is small enough to come from the
 * heap, so freeing it leaves it there for the retry. */
#define SPARE_BYTES (64u << 10)

static void *spare;
static void (*out_of_memory)(void);

static void *json_alloc(size_t n)
{
	void *p = es_malloc(n), *s;

	if (p) {
		/* a spare used up earlier: put one back while there is room */
		if (!__atomic_load_n(&spare, __ATOMIC_RELAXED) && (s = malloc(SPARE_BYTES)) &&
		    !__atomic_compare_exchange_n(&spare, &(void *){NULL}, s, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			free(s);
		return p;
	}
	/* (a spare smaller than the request cannot help it) */
	if (n <= SPARE_BYTES && (s = __atomic_exchange_n(&spare, NULL, __ATOMIC_ACQ_REL)) != NULL) {
		free(s);
		if ((p = malloc(n ? n : 1)) != NULL)
			return p;
	}
	if (out_of_memory)
		out_of_memory();
	return NULL;
}

void es_json_init(void (*oom)(void))
{
	if (!spare)
		spare = malloc(SPARE_BYTES);
	out_of_memory = oom;
	json_set_alloc_funcs(json_alloc, free);
}

size_t es_json_skip_string(const char *s, size_t len, size_t i)
{
	const char *p = s + i + 1, *end = s + len;

	for (;;) {
		const char *q = p;
		/* Jump to the next quote or backslash, 8 bytes at a time while
		 * there are 8 (names and ids are tens of bytes long). */
		while (end - q >= 8) {
			uint64_t w, m;
			memcpy(&w, q, 8);
			if ((m = es_swar_eq(w, '"') | es_swar_eq(w, '\\')) != 0) {
				q += es_swar_first(m);
				break;
			}
			q += 8;
		}
		while (q < end && *q != '"' && *q != '\\')
			q++;
		if (q >= end)
			return (size_t)-1;
		if (*q == '"')
			return (size_t)(q - s) + 1;
		p = q + 2;
		if (p > end)
			return (size_t)-1;
	}
}

int es_json_depth(const char *s, size_t len)
{
	int depth = 0, max = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '"') {
			i = es_json_skip_string(s, len, i);
			if (i == (size_t)-1)
				return max;
			i--;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return max;
}

size_t es_json_skip(const char *s, size_t len, size_t i)
{
	int depth = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	if (i >= len)
		return (size_t)-1;
	for (; i < len; i++) {
		char c = s[i];
		if (c == '"') {
			i = es_json_skip_string(s, len, i);
			if (i == (size_t)-1)
				return i;
			if (depth == 0)
				return i;
			i--;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				return i + 1;
			if (depth < 0)
				return i; /* end of an enclosing container */
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' ||
					  c == '\n' || c == '\r')) {
			return i; /* end of a scalar */
		}
	}
	return depth == 0 ? len : (size_t)-1;
}

int es_json_minify(struct es_buf *out, const char *s, size_t len)
{
	size_t i = 0, run = 0;

	if (es_buf_grow(out, len))
		return -1;
	while (i < len) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (es_buf_add(out, s + run, i - run))
				return -1;
			while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
				i++;
			run = i;
		} else if (c == '"') {
			size_t e = es_json_skip_string(s, len, i);
			i = e == (size_t)-1 ? len : e;
		} else {
			i++;
		}
	}
	return es_buf_add(out, s + run, len - run);
}

int es_json_add_string(struct es_buf *out, const char *s, size_t len)
{
	json_t *j = json_stringn_nocheck(s, len);
	size_t n;

	if (!j)
		return -1;
	n = json_dumpb(j, NULL, 0, JSON_ENCODE_ANY);
	if (n == 0 || es_buf_grow(out, n)) {
		json_decref(j);
		return -1;
	}
	/* it allocates too: unchecked, a failure left garbage in out */
	if (json_dumpb(j, out->p + out->len, n, JSON_ENCODE_ANY) != n) {
		json_decref(j);
		return -1;
	}
	out->len += n;
	out->p[out->len] = '\0';
	json_decref(j);
	return 0;
}

static int hexval(const char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9') *v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f') *v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') *v |= (unsigned)(c - 'A' + 10);
		else return -1;
	}
	return 0;
}

/* cp as UTF-8 into b: its length */
static int utf8(unsigned cp, char b[4])
{
	if (cp < 0x80) { b[0] = (char)cp; return 1; }
	if (cp < 0x800) { b[0] = (char)(0xC0 | cp >> 6); b[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
	if (cp < 0x10000) { b[0] = (char)(0xE0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[2] = (char)(0x80 | (cp & 0x3F)); return 3; }
	b[0] = (char)(0xF0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The escape at s[*i] (a backslash; the string's closing quote at s[end])
 * as UTF-8 into b, *i moved past it: its length, or -1 when malformed. */
static int unescape(const char *s, size_t end, size_t *i, char b[4])
{
	size_t at = *i;
	unsigned cp, lo;

	if (at + 1 >= end)
		return -1;
	*i = at + 2;
	switch (s[at + 1]) {
	case '"': b[0] = '"'; return 1;
	case '\\': b[0] = '\\'; return 1;
	case '/': b[0] = '/'; return 1;
	case 'b': b[0] = '\b'; return 1;
	case 'f': b[0] = '\f'; return 1;
	case 'n': b[0] = '\n'; return 1;
	case 'r': b[0] = '\r'; return 1;
	case 't': b[0] = '\t'; return 1;
	case 'u': break;
	default: return -1;
	}
	if (at + 6 > end || hexval(s + at + 2, &cp))
		return -1;
	at += 6;
	if (cp >= 0xD800 && cp < 0xDC00) {
		if (at + 6 > end || s[at] != '\\' || s[at + 1] != 'u' || hexval(s + at + 2, &lo) ||
		    lo < 0xDC00 || lo > 0xDFFF)
			return -1;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		at += 6;
	} else if (cp >= 0xDC00 && cp < 0xE000) {
		return -1;
	}
	*i = at;
	return utf8(cp, b);
}

/* The next unit of the literal s (its closing quote at s[end]) from s[*i]:
 * a byte as it is, or an escape as UTF-8. Its length, 0 at the end, -1
 * when malformed. */
static int next_unit(const char *s, size_t end, size_t *i, char b[4])
{
	if (*i >= end)
		return 0;
	if (s[*i] != '\\') {
		b[0] = s[(*i)++];
		return 1;
	}
	return unescape(s, end, i, b);
}

int es_json_lit_is(const char *lit, size_t len, const char *text, size_t tlen)
{
	size_t i = 1, j = 0;
	char u[4];
	int n;

	if (len < 2)
		return 0;
	if (!memchr(lit, '\\', len))
		return len == tlen + 2 && memcmp(lit + 1, text, tlen) == 0;
	while ((n = next_unit(lit, len - 1, &i, u)) > 0) {
		if (j + (size_t)n > tlen || memcmp(u, text + j, (size_t)n) != 0)
			return 0;
		j += (size_t)n;
	}
	return n == 0 && j == tlen;
}

/* Order the texts of two literals as unescaped (by unsigned bytes, a
 * prefix first): 0 and *c, or -1 when one is malformed. Stops at the first
 * difference, so what follows it is not checked. */
static int lit_order(const char *a, size_t alen, const char *b, size_t blen, int *c)
{
	size_t i = 1, j = 1;
	char ua[4], ub[4];
	int na = 0, nb = 0, pa = 0, pb = 0;

	if (alen < 2 || blen < 2)
		return -1;
	for (;;) {
		if (pa == na && (pa = 0, na = next_unit(a, alen - 1, &i, ua)) < 0)
			return -1;
		if (pb == nb && (pb = 0, nb = next_unit(b, blen - 1, &j, ub)) < 0)
			return -1;
		if (na == 0 || nb == 0) {
			*c = (na != 0) - (nb != 0);
			return 0;
		}
		if (ua[pa] != ub[pb]) {
			*c = (unsigned char)ua[pa] < (unsigned char)ub[pb] ? -1 : 1;
			return 0;
		}
		pa++, pb++;
	}
}

static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c < 0 ? -1 : 1;
	return (alen > blen) - (alen < blen);
}

int es_json_lit_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	int c;

	if (alen < 2 || blen < 2)
		return 0;
	if (!memchr(a, '\\', alen) && !memchr(b, '\\', blen))
		return alen == blen && memcmp(a, b, alen) == 0;
	return lit_order(a, alen, b, blen, &c) == 0 && c == 0;
}

int es_json_lit_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c;

	if (alen >= 2 && blen >= 2 && !memchr(a, '\\', alen) && !memchr(b, '\\', blen))
		return bytes_cmp(a + 1, alen - 2, b + 1, blen - 2);
	if (lit_order(a, alen, b, blen, &c) == 0)
		return c;
	return bytes_cmp(a, alen, b, blen); /* malformed: still a total order */
}

int es_json_decode_string(struct es_buf *out, const char *s, size_t len)
{
	size_t i = 1;

	es_buf_reset(out);
	if (len < 2 || s[0] != '"' || s[len - 1] != '"')
		return -1;
	/* the text never grows in decoding: this is the only allocation */
	if (es_buf_grow(out, len))
		return -2;
	while (i < len - 1) {
		size_t run = i;
		char b[4];
		int n;
		while (i < len - 1 && s[i] != '\\')
			i++;
		if (es_buf_add(out, s + run, i - run))
			return -2;
		if (i >= len - 1)
			break;
		if ((n = unescape(s, len - 1, &i, b)) < 0)
			return -1;
		if (es_buf_add(out, b, (size_t)n))
			return -2;
	}
	return 0;
}

int es_path_compile(struct es_path *p, const char *text)
{
	size_t n = 1;
	char *t;

	memset(p, 0, sizeof(*p));
	if (!text || !*text)
		return -1;
	for (const char *c = text; *c; c++)
		n += *c == '.';
	p->text = strdup(text);
	p->buf = strdup(text);
	p->seg = calloc(n, sizeof(*p->seg));
	if (!p->text || !p->buf || !p->seg) {
		es_path_release(p);
		return -1;
	}
	t = p->buf;
	for (size_t i = 0; i < n; i++) {
		char *dot = strchr(t, '.');
		if (dot)
			*dot = '\0';
		if (!*t) {
			es_path_release(p);
			return -1;
		}
		p->seg[i] = t;
		t = dot ? dot + 1 : t + strlen(t);
	}
	p->n = n;
	return 0;
}

void es_path_release(struct es_path *p)
{
	free(p->seg);
	free(p->text);
	free(p->buf);
	memset(p, 0, sizeof(*p));
}

static int seg_index(const char *seg, size_t *idx)
{
	char *end;
	unsigned long v;

	if (*seg < '0' || *seg > '9')
		return -1;
	v = strtoul(seg, &end, 10);
	if (*end)
		return -1;
	*idx = v;
	return 0;
}

static json_t *step(json_t *v, const char *seg)
{
	size_t idx;

	if (json_is_object(v))
		return json_object_get(v, seg);
	if (json_is_array(v) && seg_index(seg, &idx) == 0)
		return json_array_get(v, idx);
	return NULL;
}

json_t *es_path_get(json_t *root, const struct es_path *p)
{
	json_t *v = root;

	for (size_t i = 0; v && i < p->n; i++)
		v = step(v, p->seg[i]);
	return v;
}

int es_path_set(json_t *root, const struct es_path *p, json_t *value)
{
	json_t *v = root;
	size_t idx;

	for (size_t i = 0; i + 1 < p->n; i++) {
		json_t *next = step(v, p->seg[i]);
		if (!next) {
			if (!json_is_object(v))
				goto fail;
			next = json_object();
			if (json_object_set_new(v, p->seg[i], next))
				goto fail;
		}
		v = next;
	}
	if (json_is_object(v))
		return json_object_set_new(v, p->seg[p->n - 1], value);
	if (json_is_array(v) && seg_index(p->seg[p->n - 1], &idx) == 0) {
		if (idx == json_array_size(v))
			return json_array_append_new(v, value);
		return json_array_set_new(v, idx, value);
	}
fail:
	json_decref(value);
	return -1;
}

int es_path_unset(json_t *root, const struct es_path *p)
{
	json_t *v = root;
	size_t idx;

	for (size_t i = 0; v && i + 1 < p->n; i++)
		v = step(v, p->seg[i]);
	if (!v)
		return 0;
	if (json_is_object(v)) {
		json_object_del(v, p->seg[p->n - 1]);
		return 0;
	}
	if (json_is_array(v) && seg_index(p->seg[p->n - 1], &idx) == 0) {
		json_array_remove(v, idx);
		return 0;
	}
	return -1;
}

int es_merge_patch(json_t **target, json_t *patch)
{
	const char *key;
	json_t *val;

	if (!json_is_object(patch)) {
		json_decref(*target);
		*target = json_deep_copy(patch);
		return *target ? 0 : -1;
	}
	if (!json_is_object(*target)) {
		json_decref(*target);
		*target = json_object();
		if (!*target)
			return -1;
	}
	json_object_foreach(patch, key, val) {
		if (json_is_null(val)) {
			json_object_del(*target, key);
			continue;
		}
		json_t *cur = json_object_get(*target, key);
		json_t *sub = cur ? json_incref(cur) : NULL;
		if (es_merge_patch(&sub, val) || json_object_set_new(*target, key, sub))
			return -1;
	}
	return 0;
}

/* json_equal, but 0.0 and -0.0 differ (they print differently). */
static int identical(json_t *a, json_t *b)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach(a, key, v) {
			json_t *w = json_object_get(b, key);
			if (!w || !identical(v, w))
				return 0;
		}
		return 1;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		json_array_foreach(a, i, v)
			if (!identical(v, json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_REAL:
		return json_real_value(a) == json_real_value(b) &&
		       signbit(json_real_value(a)) == signbit(json_real_value(b));
	default:
		return json_equal(a, b);
	}
}

json_t *es_merge_diff(json_t *a, json_t *b)
{
	const char *key;
	json_t *val, *out;

	if (!json_is_object(a) || !json_is_object(b))
		return json_deep_copy(b ? b : json_null());
	out = json_object();
	if (!out)
		return NULL;
	json_object_foreach(a, key, val) {
		if (!json_object_get(b, key))
			json_object_set_new(out, key, json_null());
	}
	json_object_foreach(b, key, val) {
		json_t *old = json_object_get(a, key);
		if (old && identical(old, val))
			continue;
		if (old && json_is_object(old) && json_is_object(val))
			json_object_set_new(out, key, es_merge_diff(old, val));
		else
			json_object_set_new(out, key, json_deep_copy(val));
	}
	return out;
}

static int add_cb(const char *buf, size_t size, void *data)
{
	return es_buf_add(data, buf, size);
}

/* A string as jansson dumps it without JSON_ENSURE_ASCII or
 * JSON_ESCAPE_SLASH: '"', '\\' and control characters escaped (\b \f \n \r
 * \t, else \u00XX in capitals), everything else as it is (jansson's
 * strings are valid UTF-8). */
static int add_string(struct es_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t run = 0;

	if (es_buf_addc(out, '"'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 0, '0', '0', 0, 0};
		size_t elen = 2;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		if (es_buf_add(out, s + run, i - run) || es_buf_add(out, esc, elen))
			return -1;
		run = i + 1;
	}
	return es_buf_add(out, s + run, n - run) || es_buf_addc(out, '"') ? -1 : 0;
}

/* d as jansson writes a real at precision prec: "%.*g", ".0" added when the
 * text would read back as an integer, the exponent without '+' or leading
 * zeros. Its length. */
static size_t real_text(char *buf, size_t size, double d, int prec)
{
	size_t n = (size_t)snprintf(buf, size, "%.*g", prec, d);
	char *e = strchr(buf, 'e'), *z;

	if (!e && !strchr(buf, '.')) {
		memcpy(buf + n, ".0", 3);
		return n + 2;
	}
	if (!e)
		return n;
	e += e[1] == '-' ? 2 : 1; /* the sign stays when it is '-' */
	for (z = e; *z == '+' || *z == '0'; z++)
		;
	memmove(e, z, (size_t)(buf + n + 1 - z));
	return n - (size_t)(z - e);
}

/* A real in the fewest of 15, 16, 17 significant digits that read back as
 * the same double (17 always do): 19.99 and 0.1 stay as written, where 15
 * alone turned 1.7976931348623157e308 into 1.79769313486232e308, which
 * overflows, and 3.141592653589793 into a different number. */
static int add_real(struct es_buf *out, double d)
{
	char buf[40];
	size_t n = 0;

	for (int prec = 15; prec <= 17; prec++) {
		n = real_text(buf, sizeof(buf), d, prec);
		if (prec == 17 || strtod(buf, NULL) == d)
			break;
	}
	return es_buf_add(out, buf, n);
}

#define DUMP_EXACT 1  /* reals by add_real, not at jansson's precision */
#define DUMP_SORTED 2 /* object keys in byte order, not insertion order */

static int member_cmp(const void *a, const void *b)
{
	const struct es_json_member *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

struct es_json_member *es_json_sorted_members(const json_t *obj, size_t *n)
{
	size_t cap = json_object_size(obj), i = 0;
	struct es_json_member *m = es_malloc((cap ? cap : 1) * sizeof(*m));

	*n = 0;
	if (!m)
		return NULL;
	for (void *it = json_object_iter((json_t *)obj); it && i < cap;
	     it = json_object_iter_next((json_t *)obj, it), i++)
		m[i] = (struct es_json_member){json_object_iter_key(it), json_object_iter_key_len(it),
					       json_object_iter_value(it)};
	qsort(m, i, sizeof(*m), member_cmp);
	*n = i;
	return m;
}

static int dump_fast(struct es_buf *out, const json_t *v, int depth, int how);

/* An object's members in byte order of their keys. */
static int dump_sorted_object(struct es_buf *out, const json_t *v, int depth, int how)
{
	size_t i;
	struct es_json_member *m = es_json_sorted_members(v, &i);
	int rc;

	if (!m)
		return -1;
	rc = es_buf_addc(out, '{');
	for (size_t j = 0; rc == 0 && j < i; j++)
		rc = (j && es_buf_addc(out, ',')) || add_string(out, m[j].key, m[j].len) ||
		     es_buf_addc(out, ':') || dump_fast(out, m[j].v, depth + 1, how);
	free(m);
	return rc || es_buf_addc(out, '}') ? -1 : 0;
}

static int dump_fast(struct es_buf *out, const json_t *v, int depth, int how)
{
	char num[24], *p;
	size_t i = 0;

	if (depth > 2048)
		return -1; /* (jansson's own limit is lower; states are never this deep) */
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		if (how & DUMP_SORTED)
			return dump_sorted_object(out, v, depth, how);
		void *it = json_object_iter((json_t *)v);
		if (es_buf_addc(out, '{'))
			return -1;
		for (; it; it = json_object_iter_next((json_t *)v, it), i++)
			if ((i && es_buf_addc(out, ',')) ||
			    add_string(out, json_object_iter_key(it), json_object_iter_key_len(it)) ||
			    es_buf_addc(out, ':') || dump_fast(out, json_object_iter_value(it), depth + 1, how))
				return -1;
		return es_buf_addc(out, '}');
	}
	case JSON_ARRAY:
		if (es_buf_addc(out, '['))
			return -1;
		for (; i < json_array_size(v); i++)
			if ((i && es_buf_addc(out, ',')) || dump_fast(out, json_array_get(v, i), depth + 1, how))
				return -1;
		return es_buf_addc(out, ']');
	case JSON_STRING:
		return add_string(out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER: {
		json_int_t x = json_integer_value(v);
		p = num;
		if (x < 0)
			*p++ = '-';
		/* (the magnitude as unsigned: -INT64_MIN does not fit) */
		p = es_put_u64(p, x < 0 ? 0 - (uint64_t)x : (uint64_t)x);
		return es_buf_add(out, num, (size_t)(p - num));
	}
	case JSON_TRUE: return es_buf_add(out, "true", 4);
	case JSON_FALSE: return es_buf_add(out, "false", 5);
	case JSON_NULL: return es_buf_add(out, "null", 4);
	default:
		if (how & DUMP_EXACT)
			return add_real(out, json_real_value(v));
		/* jansson's own text, REAL_PRECISION and all */
		return json_dump_callback(v, add_cb, out, ES_JSON_DUMP_FLAGS | JSON_ENCODE_ANY);
	}
}

static int dump_add(struct es_buf *out, const json_t *v, int how)
{
	size_t start = out->len;
	unsigned long failures = es_alloc_failures(); /* see es_json_dumps() */

	/* jansson's text, written here: its dumper formats every integer with
	 * snprintf and was most of the time of printing 50,000 states */
	if (dump_fast(out, v, 0, how) != 0 || es_alloc_failures() != failures) {
		out->len = start;
		if (out->p)
			out->p[start] = '\0';
		return -1;
	}
	return 0;
}

int es_json_dump_add(struct es_buf *out, const json_t *v)
{
	return dump_add(out, v, 0);
}

int es_json_dump_exact_add(struct es_buf *out, const json_t *v)
{
	return dump_add(out, v, DUMP_EXACT);
}

int es_json_dump_canon_add(struct es_buf *out, const json_t *v)
{
	return dump_add(out, v, DUMP_EXACT | DUMP_SORTED);
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

int es_json_find(const char *s, size_t len, const struct es_path *p, size_t from,
		 const char **vs, size_t *vlen)
{
	size_t i = skip_ws(s, len, 0), end = len;

	for (size_t k = from; k < p->n; k++) {
		const char *seg = p->seg[k];
		size_t seglen = strlen(seg);
		int found = 0;
		if (i >= end)
			return -1;
		if (s[i] == '{') {
			i = skip_ws(s, end, i + 1);
			while (i < end && s[i] == '"') {
				size_t ke = es_json_skip_string(s, end, i), ve;
				if (ke == (size_t)-1)
					return -1;
				size_t v = skip_ws(s, end, ke);
				if (v >= end || s[v] != ':')
					return -1;
				v = skip_ws(s, end, v + 1);
				ve = es_json_skip(s, end, v);
				if (ve == (size_t)-1)
					return -1;
				if (es_json_lit_is(s + i, ke - i, seg, seglen)) {
					i = v;
					end = ve;
					found = 1;
					break;
				}
				i = skip_ws(s, end, ve);
				if (i < end && s[i] == ',')
					i = skip_ws(s, end, i + 1);
			}
		} else if (s[i] == '[') {
			char *e;
			unsigned long want = strtoul(seg, &e, 10), at = 0;
			if (*e || *seg < '0' || *seg > '9')
				return -1;
			i = skip_ws(s, end, i + 1);
			while (i < end && s[i] != ']') {
				size_t ve = es_json_skip(s, end, i);
				if (ve == (size_t)-1)
					return -1;
				if (at++ == want) {
					end = ve;
					found = 1;
					break;
				}
				i = skip_ws(s, end, ve);
				if (i < end && s[i] == ',')
					i = skip_ws(s, end, i + 1);
			}
		}
		if (!found)
			return -1;
	}
	*vs = s + i;
	*vlen = end - i;
	return 0;
}

json_t *es_json_from_raw(const char *s, size_t len)
{
	if (len == 0)
		return NULL;
	switch (s[0]) {
	case '"': {
		struct es_buf b = ES_BUF_INIT;
		json_t *j = NULL;
		if (es_json_decode_string(&b, s, len) == 0)
			j = json_stringn(b.p ? b.p : "", b.len);
		es_buf_release(&b);
		return j;
	}
	case 't': return json_true();
	case 'f': return json_false();
	case 'n': return json_null();
	case '{':
	case '[':
		return json_loadb(s, len, JSON_DECODE_ANY, NULL);
	default: {
		char tmp[64], *e;
		if (len >= sizeof(tmp))
			return json_loadb(s, len, JSON_DECODE_ANY, NULL);
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		if (!strpbrk(tmp, ".eE")) {
			errno = 0;
			long long v = strtoll(tmp, &e, 10);
			if (!*e && errno == 0)
				return json_integer(v);
		}
		double d = strtod(tmp, &e);
		return *e ? NULL : json_real(d);
	}
	}
}
