/* The raw-JSON scanner, paths and merge patches. */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "unit.h"

static const char *minify(const char *s)
{
	static struct es_buf b;
	es_buf_reset(&b);
	es_json_minify(&b, s, strlen(s));
	return b.p;
}

static const char *find(const char *doc, const char *path)
{
	static char out[256];
	struct es_path p;
	const char *vs;
	size_t n;

	if (es_path_compile(&p, path))
		return "(bad path)";
	if (es_json_find(doc, strlen(doc), &p, 0, &vs, &n)) {
		es_path_release(&p);
		return "(absent)";
	}
	snprintf(out, sizeof(out), "%.*s", (int)n, vs);
	es_path_release(&p);
	return out;
}

static const char *patched(const char *a, const char *p)
{
	static char *out;
	json_t *t = json_loads(a, 0, NULL), *q = json_loads(p, 0, NULL);
	es_merge_patch(&t, q);
	free(out);
	out = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(t);
	json_decref(q);
	return out;
}

/* v (taken) as dump writes it, in b; "(failed)" when v is NULL or dump
 * fails. */
static const char *dumped(struct es_buf *b, json_t *v,
			  int (*dump)(struct es_buf *, const json_t *))
{
	es_buf_reset(b);
	if (!v || dump(b, v))
		es_buf_adds(b, "(failed)");
	json_decref(v);
	return b->p;
}

static const char *exact(struct es_buf *b, double d)
{
	return dumped(b, json_real(d), es_json_dump_exact_add);
}

/* es_json_dump_exact_add: every real reads back as the same double, in
 * jansson's own spelling at the first of 15, 16, 17 digits that does so. */
static void check_exact_reals(struct es_buf *b)
{
	uint64_t x = 88172645463325252u;
	int bad = 0;

	CHECK_STR(exact(b, 1.7976931348623157e308), "1.7976931348623157e308");
	CHECK_STR(exact(b, -1.7976931348623157e308), "-1.7976931348623157e308");
	CHECK_STR(exact(b, 3.141592653589793), "3.141592653589793");
	CHECK_STR(exact(b, 0.1 + 0.2), "0.30000000000000004");
	CHECK_STR(exact(b, 19.99), "19.99");
	CHECK_STR(exact(b, 25.0), "25.0");
	CHECK_STR(exact(b, -0.0), "-0.0");
	CHECK_STR(exact(b, 1e16), "1e16");
	CHECK_STR(exact(b, 1e-5), "1e-5");
	CHECK_STR(exact(b, 9223372036854775808.0), "9.223372036854776e18");
	CHECK_STR(exact(b, 5e-324), "4.94065645841247e-324");
	for (int i = 0; i < 100000; i++) {
		double d;
		json_t *v, *back;
		char *want = NULL;
		/* xorshift: random bit patterns, then sums of cents */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (i % 2) {
			memcpy(&d, &x, sizeof(d));
			if (d != d || d - d != 0)
				continue; /* NaN and infinities are not JSON */
		} else {
			d = (double)(x % 100000) * 0.01 + (double)(x >> 40) * 0.01;
		}
		v = json_real(d);
		for (int prec = 15; prec <= 17 && !want; prec++) {
			json_t *t;
			want = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(prec));
			t = want ? json_loads(want, JSON_DECODE_ANY, NULL) : NULL;
			if (prec < 17 && !(t && json_real_value(t) == d)) {
				free(want);
				want = NULL;
			}
			json_decref(t);
		}
		exact(b, d);
		back = json_loadb(b->p, b->len, JSON_DECODE_ANY, NULL);
		if (!want || strcmp(b->p, want) != 0 || !back || json_real_value(back) != d) {
			if (bad++ < 5)
				fprintf(stderr, "  exact %a: got '%s', want '%s'\n", d, b->p,
					want ? want : "?");
		}
		free(want);
		json_decref(back);
		json_decref(v);
	}
	CHECK(bad == 0);
}

static const char *canon(struct es_buf *b, const char *text)
{
	return dumped(b, json_loads(text, JSON_DECODE_ANY, NULL), es_json_dump_canon_add);
}

/* es_json_dump_canon_add: es-project's grouping keys. Object keys in byte
 * order at every depth, reals exact: two different values never share a
 * text, two spellings of one value always do. */
static void check_canon(struct es_buf *b)
{
	CHECK_STR(canon(b, "1.0000000000000002"), "1.0000000000000002");
	CHECK_STR(canon(b, "1.0"), "1.0");
	CHECK_STR(canon(b, "1.00"), "1.0");
	CHECK_STR(canon(b, "0.1"), "0.1");
	CHECK_STR(canon(b, "3.141592653589793"), "3.141592653589793");
	CHECK_STR(canon(b, "{\"b\":1,\"a\":{\"d\":[{\"y\":1,\"x\":2.50}],\"c\":null}}"),
		  "{\"a\":{\"c\":null,\"d\":[{\"x\":2.5,\"y\":1}]},\"b\":1}");
	/* byte order: a key that is a prefix of another comes first; UTF-8
	 * sorts by code point, an escaped key by its decoded bytes */
	CHECK_STR(canon(b, "{\"ab\":1,\"\\u00e9\":2,\"a\":3,\"B\":4,\"a\\t\":5}"),
		  "{\"B\":4,\"a\":3,\"a\\t\":5,\"ab\":1,\"\u00e9\":2}");
	/* without reals, the text jansson's sorted dump gave keys before */
	{
		const char *t = "{\"z\":[1,{\"b\":\"x\\u0001\",\"a\":true}],\"\\u00e9t\u00e9\":-3,\"A\":{}}";
		json_t *v = json_loads(t, 0, NULL);
		char *old = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		CHECK(old != NULL);
		CHECK_STR(canon(b, t), old ? old : "");
		free(old);
		json_decref(v);
	}
	/* a string key is spelled as es_json_add_string spells it (the
	 * spelling of string keys in models written before) */
	{
		static const char *const strs[] = {"plain", "q\"uote", "back\\slash", "tab\t nl\n",
						   "\x01\x1f\x7f", "/slash", "\xc3\xa9t\xc3\xa9",
						   "\xe2\x80\xa8"};
		struct es_buf want = ES_BUF_INIT;
		for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++) {
			json_t *v = json_string(strs[i]);
			es_buf_reset(&want);
			es_buf_reset(b);
			CHECK(v && es_json_add_string(&want, strs[i], strlen(strs[i])) == 0 &&
			      es_json_dump_canon_add(b, v) == 0);
			CHECK_STR(b->p, want.p ? want.p : "");
			json_decref(v);
		}
		es_buf_release(&want);
	}
	CHECK_STR(canon(b, "{}"), "{}");
	CHECK_STR(canon(b, "[]"), "[]");
	CHECK_STR(canon(b, "-12"), "-12");
}

int main(void)
{
	struct es_buf b = ES_BUF_INIT;

	/* white space goes, strings keep theirs, numbers stay as written */
	CHECK_STR(minify(" { \"a b\" : [ 1 , 19.99 ,\t-0.0e1 ] ,\n \"c\":\"x \\\" y\" } "),
		  "{\"a b\":[1,19.99,-0.0e1],\"c\":\"x \\\" y\"}");
	CHECK(es_json_skip("{\"a\":\"}\"} tail", 14, 0) == 9);
	CHECK(es_json_skip("123,4", 5, 0) == 3);
	CHECK(es_json_skip("\"a\\\\\"x", 6, 0) == 5);
	CHECK(es_json_skip("{\"a\":[1,2", 9, 0) == (size_t)-1);
	CHECK(es_json_depth("[[[\"[[[[\"]]]", 12) == 3);

	/* the 8-bytes-at-a-time string skip against a byte-at-a-time one:
	 * a quote, an escaped quote or an escaped backslash at every place
	 * of a word, high bytes (UTF-8) around them, and strings cut short */
	{
		static const char *marks[] = {"\"", "\\\"", "\\\\", "\xc3\xa9", "\x80\xff"};
		char str[64];
		int bad = 0;
		for (int at = 0; at < 24; at++)
			for (size_t m = 0; m < sizeof(marks) / sizeof(*marks); m++)
				for (int cut = 0; cut < 2; cut++) {
					size_t n = 0, want = (size_t)-1;
					str[n++] = '"';
					for (int k = 0; k < at; k++)
						str[n++] = (char)('a' + k % 26);
					memcpy(str + n, marks[m], strlen(marks[m]));
					n += strlen(marks[m]);
					for (int k = 0; k < 9; k++)
						str[n++] = 'z';
					str[n++] = '"';
					str[n++] = 'x'; /* what follows the string */
					/* the reference: byte by byte */
					for (size_t i = 1; i < n; i++) {
						if (str[i] == '\\') {
							i++;
						} else if (str[i] == '"') {
							want = i + 1;
							break;
						}
					}
					size_t len = cut ? want - 1 : n;
					if (cut)
						want = (size_t)-1;
					bad += es_json_skip_string(str, len, 0) != want;
				}
		CHECK(bad == 0);
	}

	/* paths over raw text: objects, arrays, escaped keys, absent */
	const char *doc = "{\"items\":[{\"sku\":\"A\",\"qty\":2},{\"sku\":\"B\",\"qty\":3}],"
			  "\"n\\u0061me\":\"x\",\"deep\":{\"a\":{\"b\":null}}}";
	CHECK_STR(find(doc, "items.1.qty"), "3");
	CHECK_STR(find(doc, "items.0"), "{\"sku\":\"A\",\"qty\":2}");
	CHECK_STR(find(doc, "name"), "\"x\"");
	CHECK_STR(find(doc, "deep.a.b"), "null");
	CHECK_STR(find(doc, "items.2"), "(absent)");
	CHECK_STR(find(doc, "items.x"), "(absent)");
	CHECK_STR(find(doc, "nope"), "(absent)");
	CHECK_STR(find(doc, "a..b"), "(bad path)");
	/* escaped keys are compared as they are unescaped, without allocating:
	 * a prefix, a longer key, a surrogate pair, an escaped quote */
	const char *esc = "{\"\\u0071t\":1,\"q\\u0074yx\":2,\"\\ud83d\\ude00\":3,\"a\\\"b\":4,"
			  "\"\\u0071ty\":5}";
	CHECK_STR(find(esc, "qty"), "5");
	CHECK_STR(find(esc, "qt"), "1");
	CHECK_STR(find(esc, "qtyx"), "2");
	CHECK_STR(find(esc, "\xf0\x9f\x98\x80"), "3");
	CHECK_STR(find(esc, "a\"b"), "4");
	CHECK_STR(find(esc, "q"), "(absent)");
	CHECK_STR(find(esc, "\xf0\x9f\x98"), "(absent)");

	/* literals compared as they are unescaped, with no allocation */
#define LIT(s) s, sizeof(s) - 1
	CHECK(es_json_lit_eq(LIT("\"qty\""), LIT("\"q\\u0074y\"")));
	CHECK(es_json_lit_eq(LIT("\"\\ud83d\\ude00\""), LIT("\"\xf0\x9f\x98\x80\"")));
	CHECK(es_json_lit_eq(LIT("\"a\\\"b\""), LIT("\"a\\u0022b\"")));
	CHECK(!es_json_lit_eq(LIT("\"qt\""), LIT("\"q\\u0074y\"")));
	CHECK(!es_json_lit_eq(LIT("\"q\\u0074y\""), LIT("\"qt\"")));
	CHECK(!es_json_lit_eq(LIT("\"\\q\""), LIT("\"\\q\"")));
	CHECK(es_json_lit_is(LIT("\"\\u00e9t\\u00e9\""), LIT("\xc3\xa9t\xc3\xa9")));
	CHECK(!es_json_lit_is(LIT("\"\\u00e9t\""), LIT("\xc3\xa9t\xc3\xa9")));
	CHECK(!es_json_lit_is(LIT("\"\\ud800\""), LIT("?")));
	/* ordered as unescaped, by unsigned bytes, a prefix first: as the
	 * index orders names, not as their escaped spellings would sort */
	CHECK(es_json_lit_cmp(LIT("\"a\\n\""), LIT("\"a!\"")) < 0);
	CHECK(es_json_lit_cmp(LIT("\"a\\\"\""), LIT("\"a#\"")) < 0);
	CHECK(es_json_lit_cmp(LIT("\"a[\""), LIT("\"a\\\\\"")) < 0);
	CHECK(es_json_lit_cmp(LIT("\"a\\\\\""), LIT("\"a]\"")) < 0);
	CHECK(es_json_lit_cmp(LIT("\"a]\""), LIT("\"a\\u00e9\"")) < 0);
	CHECK(es_json_lit_cmp(LIT("\"a\xc3\xa9\""), LIT("\"a\\u00e9\"")) == 0);
	CHECK(es_json_lit_cmp(LIT("\"a\""), LIT("\"a\\u0000\"")) < 0);
	CHECK(es_json_lit_cmp(LIT("\"ab\""), LIT("\"a\"")) > 0);
	CHECK(es_json_lit_cmp(LIT("\"a\""), LIT("\"a\"")) == 0);
	CHECK(es_json_lit_cmp(LIT("\"\\ud83d\\ude00\""), LIT("\"\\uffff\"")) > 0);
#undef LIT

	/* decoding string literals, surrogate pairs, bad escapes */
	CHECK(es_json_decode_string(&b, "\"a\\u00e9\\ud83d\\ude00\\n\"", 23) == 0);
	CHECK_STR(b.p, "a\xc3\xa9\xf0\x9f\x98\x80\n");
	CHECK(es_json_decode_string(&b, "\"\\ud800\"", 8) == -1);
	CHECK(es_json_decode_string(&b, "\"\\q\"", 4) == -1);

	/* scalars without the parser */
	json_t *j = es_json_from_raw("12345678901", 11);
	CHECK(json_is_integer(j) && json_integer_value(j) == 12345678901LL);
	json_decref(j);
	j = es_json_from_raw("19.99", 5);
	CHECK(json_is_real(j) && json_real_value(j) == 19.99);
	json_decref(j);
	j = es_json_from_raw("99999999999999999999", 20);
	CHECK(json_is_real(j));
	json_decref(j);

	/* RFC 7386 examples */
	CHECK_STR(patched("{\"a\":\"b\"}", "{\"a\":\"c\"}"), "{\"a\":\"c\"}");
	CHECK_STR(patched("{\"a\":\"b\"}", "{\"b\":\"c\"}"), "{\"a\":\"b\",\"b\":\"c\"}");
	CHECK_STR(patched("{\"a\":\"b\"}", "{\"a\":null}"), "{}");
	CHECK_STR(patched("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}"), "{\"a\":[1]}");
	CHECK_STR(patched("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}"), "{\"a\":{\"b\":\"d\"}}");
	CHECK_STR(patched("[1,2]", "{\"a\":\"b\",\"c\":null}"), "{\"a\":\"b\"}");
	CHECK_STR(patched("{\"e\":null}", "{\"a\":1}"), "{\"e\":null,\"a\":1}");

	/* diff then patch gives the target back */
	json_t *a = json_loads("{\"x\":1,\"y\":{\"z\":2,\"w\":3},\"gone\":true}", 0, NULL);
	json_t *t = json_loads("{\"x\":1,\"y\":{\"z\":5,\"w\":3},\"new\":[1]}", 0, NULL);
	json_t *d = es_merge_diff(a, t);
	char *ds = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(ds, "{\"gone\":null,\"new\":[1],\"y\":{\"z\":5}}");
	es_merge_patch(&a, d);
	CHECK(json_equal(a, t));
	free(ds);
	json_decref(a);
	json_decref(t);
	json_decref(d);
	/* 0.0 and -0.0 are equal to json_equal, but print differently: a change */
	a = json_loads("{\"x\":0.0,\"y\":[0.0],\"z\":{\"r\":-0.0},\"same\":-0.0}", 0, NULL);
	t = json_loads("{\"x\":-0.0,\"y\":[-0.0],\"z\":{\"r\":0.0},\"same\":-0.0}", 0, NULL);
	d = es_merge_diff(a, t);
	ds = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(ds, "{\"x\":-0.0,\"y\":[-0.0],\"z\":{\"r\":0.0}}");
	free(ds);
	json_decref(a);
	json_decref(t);
	json_decref(d);

	/* paths set and unset through objects and arrays */
	struct es_path p;
	json_t *st = json_object();
	es_path_compile(&p, "a.b.c");
	CHECK(es_path_set(st, &p, json_integer(1)) == 0);
	CHECK(json_integer_value(es_path_get(st, &p)) == 1);
	CHECK(es_path_unset(st, &p) == 0 && es_path_get(st, &p) == NULL);
	es_path_release(&p);
	json_decref(st);
	es_buf_release(&b);
	/* es_json_dump_add writes jansson's text itself: the same bytes as
	 * json_dumps for every kind of value, every control character, keys
	 * and strings with NULs, the int64 limits, reals of every shape */
	{
		const size_t flags = ES_JSON_DUMP_FLAGS | JSON_ENCODE_ANY;
		json_t *obj = json_object(), *arr = json_array(), *all[40];
		char cs[40];
		size_t n = 0;
		int bad = 0;
		for (int c = 0; c < 32; c++)
			cs[c] = (char)c;
		memcpy(cs + 32, "\"\\/\x7f\xc3\xa9z", 8);
		all[n++] = json_stringn(cs, 40);
		all[n++] = json_string("");
		all[n++] = json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 </script>");
		all[n++] = json_integer(0);
		all[n++] = json_integer(-1);
		all[n++] = json_integer(INT64_MAX);
		all[n++] = json_integer(INT64_MIN);
		all[n++] = json_real(19.99);
		all[n++] = json_real(-0.0);
		all[n++] = json_real(1e300);
		all[n++] = json_real(0.1 + 0.2);
		all[n++] = json_real(3.0);
		all[n++] = json_true();
		all[n++] = json_false();
		all[n++] = json_null();
		all[n++] = json_object();
		all[n++] = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append(arr, all[i]);
		json_object_setn(obj, "k\0\"\n", 4, arr);
		json_object_set_new(obj, "z", json_integer(1));
		json_object_set_new(obj, "a", json_pack("{s:[{s:[]},{}],s:o}", "x", "y", "n", json_null()));
		all[n++] = json_incref(obj);
		all[n++] = json_incref(arr);
		for (size_t i = 0; i < n; i++) {
			char *want = json_dumps(all[i], flags);
			es_buf_reset(&b);
			es_buf_adds(&b, "<");
			if (!want || es_json_dump_add(&b, all[i]) || b.len != strlen(want) + 1 ||
			    memcmp(b.p + 1, want, b.len - 1) != 0) {
				fprintf(stderr, "  dump %zu: got '%s', want '%s'\n", i, b.p, want ? want : "?");
				bad++;
			}
			free(want);
			json_decref(all[i]);
		}
		CHECK(bad == 0);
		json_decref(obj);
		json_decref(arr);
	}
	check_exact_reals(&b);
	check_canon(&b);
	es_buf_release(&b);
	return unit_done("json");
}
