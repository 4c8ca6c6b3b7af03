/*
 * cpuid: what one CPUID instruction costs here, in nanoseconds (x86 only).
 * Part of scripts/bench, built by it into its temp directory. glibc runs
 * dozens at every process start (its CPU feature and cache detection, in
 * init_cpu_features): a few microseconds on bare metal all told, but on a
 * virtual machine every CPUID traps to the hypervisor. This is the part of
 * the "process start" rows no program can remove.
 *
 *   cpuid            prints the median of 21 rounds of 200, in ns
 */
#define _POSIX_C_SOURCE 200809L
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	static volatile unsigned sink;
	double round[21];
	unsigned a, b, c, d;

	for (int r = 0; r < 21; r++) {
		double t0 = now_ns();
		for (unsigned i = 0; i < 200; i++) {
			/* leaf 4 (cache parameters): what glibc asks most */
			__cpuid_count(4, i & 3, a, b, c, d);
			sink = a ^ b ^ c ^ d;
		}
		round[r] = (now_ns() - t0) / 200;
	}
	(void)sink; /* written only to keep the loop: gcc 12 warns otherwise */
	qsort(round, 21, sizeof(*round), cmp);
	printf("%.0f\n", round[10]);
	return 0;
}
