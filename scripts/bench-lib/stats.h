/*
 * stats.h: what timeit and fsync-loop share (part of scripts/bench): the
 * clock, every time written to a file, and the one line of figures they
 * print for a set of times:
 *   RUNS MEDIAN P50 P99 MIN MAX        (integer microseconds)
 * MEDIAN averages the two middle values of an even count; P50 and P99 are
 * nearest-rank percentiles.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double rank(const double *v, size_t n, double p)
{
	size_t k = (size_t)ceil(p / 100.0 * (double)n);
	return v[k ? k - 1 : 0];
}

static void stats(double *v, size_t n)
{
	double med;
	if (n == 0) {
		printf("0 0 0 0 0 0\n");
		return;
	}
	qsort(v, n, sizeof *v, cmp_d);
	med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	printf("%zu %.0f %.0f %.0f %.0f %.0f\n", n, med, rank(v, n, 50), rank(v, n, 99),
	       v[0], v[n - 1]);
}

/* Every time, one a line (timeit -t, fsync-loop -t): 0, or 1 after perror. */
static int write_times(const char *path, const double *v, size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%.0f\n", v[i]);
	if (fclose(f) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

#endif
