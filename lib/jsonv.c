#include "jsonv.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

#define WIDE 64 /* keys per object checked here for duplicates */

struct cur {
	const char *s, *p, *end;
	struct es_jv *v;
	int depth;
};

static int fail(struct cur *c, const char *why)
{
	c->v->why = why;
	c->v->at = (size_t)(c->p - c->s);
	return -1;
}

static void ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
		else return -1;
	}
	*out = v;
	return 0;
}

/* One UTF-8 sequence starting at c->p (first byte >= 0x80). */
static int utf8(struct cur *c)
{
	const unsigned char *u = (const unsigned char *)c->p;
	size_t left = (size_t)(c->end - c->p), n;
	unsigned lo = 0x80, hi = 0xBF;

	if (u[0] >= 0xC2 && u[0] <= 0xDF) n = 2;
	else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
		n = 3;
		if (u[0] == 0xE0) lo = 0xA0;
		if (u[0] == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
	} else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
		n = 4;
		if (u[0] == 0xF0) lo = 0x90;
		if (u[0] == 0xF4) hi = 0x8F;
	} else
		return fail(c, "invalid UTF-8");
	if (left < n || u[1] < lo || u[1] > hi)
		return fail(c, "invalid UTF-8");
	for (size_t i = 2; i < n; i++)
		if (u[i] < 0x80 || u[i] > 0xBF)
			return fail(c, "invalid UTF-8");
	c->p += n;
	return 0;
}

static int string(struct cur *c, int *escaped)
{
	*escaped = 0;
	c->p++; /* the opening quote */
	for (;;) {
		/* the plain run first: the common case, 8 bytes at a time */
		while (c->end - c->p >= 8) {
			uint64_t w, m;
			memcpy(&w, c->p, 8);
			/* a quote, a backslash, a control or a non-ASCII byte */
			m = (w & ES_SWAR_HIGHS) | es_swar_below(w, 0x20) | es_swar_eq(w, '"') |
			    es_swar_eq(w, '\\');
			if (m != 0) {
				c->p += es_swar_first(m);
				break;
			}
			c->p += 8;
		}
		while (c->p < c->end && (unsigned char)*c->p >= 0x20 && *c->p != '"' &&
		       *c->p != '\\' && (unsigned char)*c->p < 0x80)
			c->p++;
		if (c->p >= c->end)
			return fail(c, "premature end of input in a string");
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			return 0;
		}
		if (ch < 0x20)
			return fail(c, "control character in a string");
		if (ch >= 0x80) {
			if (utf8(c))
				return -1;
			continue;
		}
		/* a backslash */
		*escaped = 1;
		if (c->end - c->p < 2)
			return fail(c, "premature end of input in a string");
		switch (c->p[1]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			c->p += 2;
			continue;
		case 'u': {
			unsigned cp, lo;
			if (c->end - c->p < 6 || hex4(c->p + 2, &cp))
				return fail(c, "invalid \\u escape");
			if (cp == 0)
				return fail(c, "\\u0000 is not allowed");
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return fail(c, "invalid Unicode escape: a lone low surrogate");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (c->end - c->p < 12 || c->p[6] != '\\' || c->p[7] != 'u' ||
				    hex4(c->p + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
					return fail(c, "invalid Unicode escape: a lone high surrogate");
				c->p += 12;
			} else {
				c->p += 6;
			}
			continue;
		}
		default:
			return fail(c, "invalid escape");
		}
	}
}

static int digits(struct cur *c)
{
	const char *start = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > start ? 0 : -1;
}

static int number(struct cur *c)
{
	const char *start = c->p;
	int real = 0;

	if (*c->p == '-')
		c->p++;
	if (c->p < c->end && *c->p == '0') {
		c->p++;
		if (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			return fail(c, "invalid number: a leading zero");
	} else if (digits(c)) {
		return fail(c, "invalid token");
	}
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		real = 1;
		if (digits(c))
			return fail(c, "invalid number");
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		real = 2;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (digits(c))
			return fail(c, "invalid number");
	}
	size_t n = (size_t)(c->p - start);
	if (!real) {
		/* within 64 bits, as strtoll would say */
		const char *d = start + (*start == '-');
		size_t nd = (size_t)(c->p - d);
		if (nd > 19 || (nd == 19 && strncmp(d, *start == '-' ? "9223372036854775808"
								   : "9223372036854775807", 19) > 0)) {
			c->p = start;
			return fail(c, "too big integer");
		}
		return 0;
	}
	if (real == 2 || n > 300) {
		/* strtod decides overflow, as jansson's parser does */
		char small[512], *buf = n < sizeof(small) ? small : malloc(n + 1), *e;
		double d;
		if (!buf)
			return fail(c, "out of memory");
		memcpy(buf, start, n);
		buf[n] = '\0';
		errno = 0;
		d = strtod(buf, &e);
		int over = errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL);
		if (buf != small)
			free(buf);
		if (over) {
			c->p = start;
			return fail(c, "real number overflow");
		}
	}
	return 0;
}

static int literal(struct cur *c, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return fail(c, "invalid token");
	c->p += n;
	return 0;
}

static int value(struct cur *c);

static int object(struct cur *c)
{
	struct { const char *k; size_t n; int esc; } keys[WIDE];
	size_t nkeys = 0;
	int top = c->depth == 1;

	c->p++;
	ws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		const char *k = c->p, *vs;
		int esc;
		if (c->p >= c->end || *c->p != '"')
			return fail(c, "string or '}' expected");
		if (string(c, &esc))
			return -1;
		size_t kn = (size_t)(c->p - k);
		for (size_t i = 0; i < nkeys && i < WIDE; i++)
			if (keys[i].esc || esc ? es_json_lit_eq(keys[i].k, keys[i].n, k, kn)
					       : keys[i].n == kn && memcmp(keys[i].k, k, kn) == 0) {
				c->p = k;
				return fail(c, "duplicate object key");
			}
		if (nkeys < WIDE) {
			keys[nkeys].k = k;
			keys[nkeys].n = kn;
			keys[nkeys].esc = esc;
		} else {
			c->v->too_many = 1;
		}
		nkeys++;
		ws(c);
		if (c->p >= c->end || *c->p != ':')
			return fail(c, "':' expected");
		c->p++;
		ws(c);
		vs = c->p;
		if (value(c))
			return -1;
		if (top && c->v->ntop < c->v->maxtop) {
			struct es_jv_member *m = &c->v->top[c->v->ntop++];
			m->key = k;
			m->klen = kn;
			m->val = vs;
			m->vlen = (size_t)(c->p - vs);
		} else if (top) {
			c->v->too_many = 1;
		}
		ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			ws(c);
			continue;
		}
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			return 0;
		}
		return fail(c, "',' or '}' expected");
	}
}

static int array(struct cur *c)
{
	c->p++;
	ws(c);
	if (c->p < c->end && *c->p == ']') {
		c->p++;
		return 0;
	}
	for (;;) {
		if (value(c))
			return -1;
		ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			ws(c);
			continue;
		}
		if (c->p < c->end && *c->p == ']') {
			c->p++;
			return 0;
		}
		return fail(c, "',' or ']' expected");
	}
}

static int value(struct cur *c)
{
	int esc, rc;

	if (c->p >= c->end)
		return fail(c, "premature end of input");
	switch (*c->p) {
	case '{':
	case '[':
		if (++c->depth > c->v->max_depth)
			return fail(c, "nesting too deep");
		rc = *c->p == '{' ? object(c) : array(c);
		c->depth--;
		return rc;
	case '"': return string(c, &esc);
	case 't': return literal(c, "true");
	case 'f': return literal(c, "false");
	case 'n': return literal(c, "null");
	default:
		if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))
			return number(c);
		return fail(c, "invalid token");
	}
}

int es_json_validate(struct es_jv *v, const char *s, size_t len)
{
	struct cur c = {s, s, s + len, v, 0};

	v->ntop = 0;
	v->too_many = 0;
	v->why = NULL;
	ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return fail(&c, c.p >= c.end ? "no JSON here" : "an event must be a JSON object");
	if (value(&c))
		return -1;
	ws(&c);
	if (c.p != c.end)
		return fail(&c, "end of input expected");
	return 0;
}
