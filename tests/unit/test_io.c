/* io: the huge-page hint on large blocks (es_malloc, es_realloc). The hint
 * must cover the block as one mapping: hinting only its 2 MiB-aligned
 * inside split glibc's mapping, and realloc (mremap) then copied instead of
 * moving it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "unit.h"

/* The mapping of /proc/self/smaps that holds address a: its end, and
 * whether its VmFlags carry "hg" (MADV_HUGEPAGE). 0 when not found. */
static int mapping_of(const void *a, uintptr_t *end, int *hg)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0, found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)a >= lo && (uintptr_t)a < hi;
			if (in) {
				*end = hi;
				*hg = 0;
				found = 1;
			}
		} else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			*hg = strstr(line, " hg") != NULL;
		}
	}
	fclose(f);
	return found;
}

/* Whether the kernel offers THP at all ("never" or no THP: no hg flag). */
static int thp_possible(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char s[128] = "";

	if (!f)
		return 0;
	if (!fgets(s, sizeof(s), f))
		s[0] = '\0';
	fclose(f);
	return strstr(s, "[never]") == NULL && s[0] != '\0';
}

int main(void)
{
	const size_t small = 64u << 10, big = 16u << 20, bigger = 64u << 20;
	uintptr_t end = 0;
	int hg = 0, ok = 1;
	unsigned char *p, *q;

	CHECK(es_huge_hint(NULL, big) == NULL);
	p = malloc(small);
	CHECK(p && es_huge_hint(p, small) == p);
	free(p);

	p = es_malloc(big);
	CHECK(p != NULL);
	if (!p)
		return unit_done("io");
	for (size_t i = 0; i < big; i++)
		p[i] = (unsigned char)(i * 7 + 3);
	CHECK(mapping_of(p, &end, &hg));
	CHECK(end >= (uintptr_t)p + big); /* one mapping holds the whole block */
	if (thp_possible())
		CHECK(hg);

	q = es_realloc(p, bigger);
	CHECK(q != NULL);
	if (!q) {
		free(p);
		return unit_done("io");
	}
	for (size_t i = 0; i < big && ok; i++)
		ok = q[i] == (unsigned char)(i * 7 + 3);
	CHECK(ok); /* what it held moved with it */
	memset(q + big, 0xab, bigger - big);
	CHECK(mapping_of(q, &end, &hg));
	CHECK(end >= (uintptr_t)q + bigger);
	if (thp_possible())
		CHECK(hg);
	free(q);
	return unit_done("io");
}
