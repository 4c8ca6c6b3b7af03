/* strmap against a plain array: put, get, overwrite, walk, clear. */
#include <stdio.h>
#include <stdlib.h>

#include "strmap.h"
#include "unit.h"

#define N 20000

int main(void)
{
	struct es_strmap m = ES_STRMAP_INIT;
	static char key[N][32];
	static size_t klen[N];
	static uint64_t want[N];
	static unsigned char seen[N];
	int bad = 0, added;

	CHECK(es_strmap_get(&m, "x", 1) == NULL);
	/* keys that differ only at the end, keys that are prefixes of others,
	 * keys with NUL bytes inside, the empty key */
	for (int i = 0; i < N; i++) {
		klen[i] = (size_t)snprintf(key[i], sizeof(key[i]), "stream-%d", i / 3);
		if (i % 3 == 1)
			key[i][klen[i]++] = '\0'; /* "stream-7" and "stream-7\0" */
		if (i % 3 == 2)
			klen[i] += (size_t)snprintf(key[i] + klen[i], sizeof(key[i]) - klen[i], "%cid", 0);
	}
	klen[0] = 0;
	for (int i = 0; i < N; i++) {
		uint64_t *v = es_strmap_put(&m, key[i], klen[i], &added);
		bad += !v || !added || *v != 0;
		if (v)
			*v = want[i] = (uint64_t)i * 7 + 1;
	}
	CHECK(bad == 0);
	CHECK(m.n == N);
	for (int i = 0; i < N; i += 2) { /* overwrite half */
		uint64_t *v = es_strmap_put(&m, key[i], klen[i], &added);
		bad += !v || added || *v != want[i];
		if (v)
			*v = want[i] = want[i] + 1000000;
	}
	CHECK(bad == 0);
	CHECK(m.n == N);
	for (int i = 0; i < N; i++) {
		uint64_t *v = es_strmap_get(&m, key[i], klen[i]);
		bad += !v || *v != want[i];
	}
	CHECK(bad == 0);
	for (int i = 1; i < N; i += 3) { /* given the hash: the same entries */
		uint64_t *v = es_strmap_put_h(&m, key[i], klen[i], es_strmap_hash(key[i], klen[i]), &added);
		bad += !v || added || *v != want[i];
	}
	CHECK(bad == 0);
	CHECK(m.n == N);
	CHECK(es_strmap_get(&m, "stream-1x", 9) == NULL);
	CHECK(es_strmap_get(&m, "stream-", 7) == NULL);
	{
		size_t it = 0, n, count = 0;
		const char *k;
		uint64_t v;
		while (es_strmap_next(&m, &it, &k, &n, &v)) {
			int found = 0;
			count++;
			/* find which key it is (keys are unique by construction) */
			for (int i = 0; i < N && !found; i++)
				if (klen[i] == n && memcmp(key[i], k, n) == 0) {
					found = 1;
					bad += seen[i]++ || v != want[i];
				}
			bad += !found;
			if (count > N)
				break;
		}
		CHECK(count == N);
		CHECK(bad == 0);
	}
	es_strmap_clear(&m);
	CHECK(m.n == 0 && es_strmap_get(&m, key[5], klen[5]) == NULL);
	CHECK(es_strmap_put(&m, key[5], klen[5], &added) != NULL && added);
	es_strmap_release(&m);

	/* the hash set: no false negatives; 0 is a hash like any other */
	{
		struct es_hashset hs = ES_HASHSET_INIT;
		CHECK(!es_hashset_has(&hs, 42));
		for (uint64_t h = 0; h < 50000; h += 2)
			bad += es_hashset_add(&hs, h * 0x9e3779b97f4a7c15ull) != 0;
		bad += es_hashset_add(&hs, 2 * 0x9e3779b97f4a7c15ull) != 0; /* again */
		CHECK(hs.n == 25000);
		for (uint64_t h = 0; h < 50000; h++)
			bad += es_hashset_has(&hs, h * 0x9e3779b97f4a7c15ull) != (h % 2 == 0);
		CHECK(bad == 0);
		CHECK(es_strmap_hash("a", 1) != es_strmap_hash("b", 1));
		es_hashset_clear(&hs);
		CHECK(!es_hashset_has(&hs, 0));
		es_hashset_release(&hs);
	}
	return unit_done("strmap");
}
