/* The DOM-free validator must accept exactly what jansson accepts (for a
 * top-level object within the nesting limit). Seeds, then a few hundred
 * thousand deterministic mutations of them, compared one by one. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "jsonv.h"
#include "unit.h"

static const char *const seeds[] = {
	"{\"stream\":\"order-7\",\"type\":\"ItemAdded\",\"data\":{\"sku\":\"A1\",\"qty\":2,\"price\":19.99}}",
	"{\"a\":[1,-0,0.5e-3,1E+2,true,false,null,\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\"],\"b\":{}}",
	"{\"k\":\"caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80\"}",
	"{\"a\":1,\"\\u0061\":2}",
	"{\"n\":9223372036854775807,\"m\":-9223372036854775808}",
	"{\"n\":9223372036854775808}",
	"{\"r\":1e308,\"s\":1e309,\"t\":1e-400}",
	"{\"x\":\"\\ud800\",\"y\":\"\\udc00\\ud800\"}",
	" {\"s\" : [ { } , [ ] ] } \r\n",
	"{\"a\":{\"a\":{\"a\":1},\"b\":[{\"a\":1,\"a\":2}]}}",
	"{\"bad\":\"\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\"}",
	"{\"z\":01,\"y\":.5,\"w\":-,\"v\":1.}",
	"{\"u\":\"\\u0000\"}",
	"{}",
	"{\"a\":[1,2,],\"b\":2}",
	"{\"long\":\"0123456789012345678901234567890123456789\",\"e\":2.5E-7,\"f\":-12.75e+3}",
};

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char interesting[] = "{}[]\",:\\u0123456789eE+-.tfn \t\r\n\x80\xc3\xa9\xed\xf0\x01";

static size_t mutate(const char *src, char *dst, size_t cap)
{
	size_t n = strlen(src);
	memcpy(dst, src, n);
	int edits = 1 + (int)(next() % 3);
	for (int e = 0; e < edits && n > 0; e++) {
		size_t at = (size_t)(next() % n);
		switch (next() % 4) {
		case 0: dst[at] = interesting[next() % (sizeof(interesting) - 1)]; break;
		case 1: /* delete */
			memmove(dst + at, dst + at + 1, n - at - 1);
			n--;
			break;
		case 2: /* insert */
			if (n + 1 < cap) {
				memmove(dst + at + 1, dst + at, n - at);
				dst[at] = interesting[next() % (sizeof(interesting) - 1)];
				n++;
			}
			break;
		default: n = at; /* truncate */
		}
	}
	return n;
}

static int jansson_ok(const char *s, size_t n)
{
	json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	int ok = j && json_is_object(j);
	json_decref(j);
	return ok;
}

static int ours_ok(const char *s, size_t n)
{
	struct es_jv_member top[16];
	struct es_jv v = {top, 0, 16, 2000, NULL, 0, 0};
	return es_json_validate(&v, s, n) == 0;
}

int main(void)
{
	char buf[512];
	long cases = 0, disagree = 0, accepted = 0;

	for (size_t i = 0; i < sizeof(seeds) / sizeof(*seeds); i++) {
		size_t n = strlen(seeds[i]);
		cases++;
		if (jansson_ok(seeds[i], n) != ours_ok(seeds[i], n)) {
			disagree++;
			fprintf(stderr, "seed %zu: jansson %d, ours %d: %s\n", i,
				jansson_ok(seeds[i], n), ours_ok(seeds[i], n), seeds[i]);
		}
	}
	/* numbers longer than any buffer: 1e600 written out, tiny reals */
	{
		static const char *const heads[] = {"{\"n\":1", "{\"n\":-1", "{\"n\":0.", "{\"n\":1.0"};
		static const char *const tails[] = {".0}", "}", "1}", "e400}", "e-400}", "e0}"};
		static char big[2048];
		for (size_t h = 0; h < 4; h++)
			for (size_t t = 0; t < 6; t++) {
				size_t n = (size_t)snprintf(big, sizeof(big), "%s", heads[h]);
				memset(big + n, '0', 600);
				n += 600;
				n += (size_t)snprintf(big + n, sizeof(big) - n, "%s", tails[t]);
				cases++;
				if (jansson_ok(big, n) != ours_ok(big, n) && disagree++ < 10)
					fprintf(stderr, "long number: jansson %d, ours %d: %s...%s\n",
						jansson_ok(big, n), ours_ok(big, n), heads[h], tails[t]);
			}
	}
	for (int round = 0; round < 1000000; round++) {
		const char *src = seeds[next() % (sizeof(seeds) / sizeof(*seeds))];
		size_t n = mutate(src, buf, sizeof(buf));
		int j = jansson_ok(buf, n), o = ours_ok(buf, n);
		cases++;
		accepted += j;
		if (j != o && disagree++ < 10)
			fprintf(stderr, "mutant: jansson %d, ours %d: %.*s\n", j, o, (int)n, buf);
	}
	CHECK(disagree == 0);
	CHECK(accepted > cases / 20); /* the mutants are not all trivially broken */
	printf("jsonv: %ld cases compared with jansson (%ld valid), %ld disagreements\n", cases,
	       accepted, disagree);
	return unit_done("jsonv");
}
