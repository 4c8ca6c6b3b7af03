/*
 * timeit: run a command several times and print its wall-clock times.
 * Part of scripts/bench; built by it into its temp directory.
 *
 *   timeit [-n RUNS] [-w WARMUP] [-b BUDGET_S] [-i IN] [-o OUT] [-e ERR]
 *          [-p PREPARE] [-x CODES] [-t TIMES] -- CMD [ARG...]
 *   timeit -S < numbers          stats of numbers (microseconds), one a line
 *
 * Each run spawns CMD directly (no shell) with stdin from IN (default
 * /dev/null), stdout to OUT (default /dev/null, truncated each run) and
 * stderr to ERR (appended; default inherited). PREPARE, if given, runs
 * through /bin/sh before every run (warm-ups included) and is not timed.
 * Runs stop at RUNS, or earlier once BUDGET_S seconds of timed runs have
 * passed (at least one run is always made). A run exiting with a status
 * not in CODES (comma list, default 0) or killed by a signal is an error:
 * "timeit: ..." on stderr, exit 1.
 *
 * Output, one line on stdout, integer microseconds:
 *   RUNS MEDIAN P50 P99 MIN MAX
 * MEDIAN averages the two middle values of an even count; P50 and P99 are
 * nearest-rank percentiles. -t writes every run's time, one a line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#include "stats.h"

static int code_ok(const char *codes, int rc)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof buf, "%s", codes);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (atoi(t) == rc)
			return 1;
	return 0;
}

static int push(double **v, size_t *n, size_t *cap, double x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		double *p = realloc(*v, c * sizeof *p);
		if (!p)
			return -1;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

/* One run: the child's wall time in microseconds, or a negative value. */
static double run_once(char **cmd, const char *in, const char *out, const char *err,
		       const char *codes)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, rc;
	double t0, t1;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
					 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (err)
		posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_APPEND,
						 0644);
	t0 = now_us();
	rc = posix_spawnp(&pid, cmd[0], &fa, NULL, cmd, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "timeit: %s: %s\n", cmd[0], strerror(rc));
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			perror("timeit: waitpid");
			return -1;
		}
	t1 = now_us();
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "timeit: %s: killed by signal %d\n", cmd[0], WTERMSIG(st));
		return -1;
	}
	if (!code_ok(codes, WEXITSTATUS(st))) {
		fprintf(stderr, "timeit: %s: exit status %d\n", cmd[0], WEXITSTATUS(st));
		return -1;
	}
	return t1 - t0;
}

int main(int argc, char **argv)
{
	long runs = 10, warm = 0;
	double budget = 0, total = 0, *v = NULL;
	const char *in = NULL, *out = NULL, *err = NULL, *prep = NULL, *codes = "0",
		   *times = NULL;
	size_t n = 0, cap = 0;
	int c, stat_mode = 0;

	while ((c = getopt(argc, argv, "+n:w:b:i:o:e:p:x:t:S")) != -1) {
		switch (c) {
		case 'n': runs = atol(optarg); break;
		case 'w': warm = atol(optarg); break;
		case 'b': budget = atof(optarg); break;
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 'e': err = optarg; break;
		case 'p': prep = optarg; break;
		case 'x': codes = optarg; break;
		case 't': times = optarg; break;
		case 'S': stat_mode = 1; break;
		default:
			fprintf(stderr, "usage: timeit [-n RUNS] [-w WARMUP] [-b BUDGET_S] [-i IN] "
					"[-o OUT] [-e ERR] [-p PREPARE] [-x CODES] [-t TIMES] "
					"-- CMD [ARG...]\n       timeit -S < numbers\n");
			return 2;
		}
	}
	if (stat_mode) {
		double x;
		while (scanf("%lf", &x) == 1)
			if (push(&v, &n, &cap, x))
				return 1;
		stats(v, n);
		return 0;
	}
	if (optind >= argc || runs < 1) {
		fprintf(stderr, "timeit: no command\n");
		return 2;
	}
	for (long i = 0; i < warm + runs; i++) {
		double t;
		if (prep && system(prep) != 0) {
			fprintf(stderr, "timeit: prepare failed: %s\n", prep);
			return 1;
		}
		t = run_once(argv + optind, in, out, err, codes);
		if (t < 0)
			return 1;
		if (i < warm)
			continue;
		if (push(&v, &n, &cap, t))
			return 1;
		total += t;
		if (budget > 0 && total >= budget * 1e6)
			break;
	}
	if (times && write_times(times, v, n))
		return 1;
	stats(v, n);
	return 0;
}
