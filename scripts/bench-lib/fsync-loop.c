/*
 * fsync-loop: the physical limit of a durable append. Appends COUNT lines
 * of SIZE bytes to FILE, each with write(2) then fdatasync(2), and prints
 * the latency of each write+fdatasync pair as timeit does:
 *   RUNS MEDIAN P50 P99 MIN MAX        (integer microseconds)
 *
 *   fsync-loop [-n COUNT] [-w WARMUP] [-s SIZE] FILE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	long count = 500, warm = 10, size = 400;
	int c, fd;
	double *v;
	char *line;

	while ((c = getopt(argc, argv, "n:w:s:")) != -1) {
		switch (c) {
		case 'n': count = atol(optarg); break;
		case 'w': warm = atol(optarg); break;
		case 's': size = atol(optarg); break;
		default:
			fprintf(stderr, "usage: fsync-loop [-n COUNT] [-w WARMUP] [-s SIZE] FILE\n");
			return 2;
		}
	}
	if (optind != argc - 1 || count < 1 || size < 2) {
		fprintf(stderr, "usage: fsync-loop [-n COUNT] [-w WARMUP] [-s SIZE] FILE\n");
		return 2;
	}
	fd = open(argv[optind], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0) {
		perror(argv[optind]);
		return 1;
	}
	v = malloc((size_t)count * sizeof *v);
	line = malloc((size_t)size);
	if (!v || !line)
		return 1;
	for (long i = 0; i < warm + count; i++) {
		double t0, t1;
		int k = snprintf(line, (size_t)size, "{\"n\":%ld,\"pad\":\"", i);
		memset(line + k, 'x', (size_t)(size - k));
		memcpy(line + size - 3, "\"}\n", 3);
		t0 = now_us();
		if (write(fd, line, (size_t)size) != (ssize_t)size || fdatasync(fd) != 0) {
			perror("fsync-loop: write/fdatasync");
			return 1;
		}
		t1 = now_us();
		if (i >= warm)
			v[i - warm] = t1 - t0;
	}
	close(fd);
	qsort(v, (size_t)count, sizeof *v, cmp_d);
	size_t n = (size_t)count;
	double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	printf("%zu %.0f %.0f %.0f %.0f %.0f\n", n, med, rank(v, n, 50), rank(v, n, 99), v[0],
	       v[n - 1]);
	return 0;
}
