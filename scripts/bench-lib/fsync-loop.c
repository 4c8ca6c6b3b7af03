/*
 * fsync-loop: the physical limit of a durable append. Appends COUNT lines
 * of SIZE bytes to FILE, each with write(2) then fdatasync(2), and prints
 * the latency of each write+fdatasync pair as timeit does:
 *   RUNS MEDIAN P50 P99 MIN MAX        (integer microseconds)
 *
 *   fsync-loop [-n COUNT] [-w WARMUP] [-s SIZE] [-t TIMES] FILE
 *   fsync-loop -1 [-s SIZE] FILE
 *
 * -1: one write+fdatasync and exit, printing nothing: timeit runs it once
 * per operation, the floor of a durable append by one process per event
 * (process start included, as es-append pays it). -t writes every pair's
 * time to TIMES, one a line, as timeit -t does.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

#define USAGE "usage: fsync-loop [-1] [-n COUNT] [-w WARMUP] [-s SIZE] [-t TIMES] FILE\n"

int main(int argc, char **argv)
{
	long count = 500, warm = 10, size = 400;
	int c, fd, once = 0;
	double *v;
	char *line;
	const char *times = NULL;

	while ((c = getopt(argc, argv, "1n:w:s:t:")) != -1) {
		switch (c) {
		case '1': once = 1; break;
		case 'n': count = atol(optarg); break;
		case 'w': warm = atol(optarg); break;
		case 's': size = atol(optarg); break;
		case 't': times = optarg; break;
		default:
			fputs(USAGE, stderr);
			return 2;
		}
	}
	if (once) {
		count = 1;
		warm = 0;
	}
	if (optind != argc - 1 || count < 1 || size < 2) {
		fputs(USAGE, stderr);
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
	if (close(fd) != 0) {
		perror("fsync-loop: close");
		return 1;
	}
	if (times && !once && write_times(times, v, (size_t)count))
		return 1;
	if (!once)
		stats(v, (size_t)count);
	free(v);
	free(line);
	return 0;
}
