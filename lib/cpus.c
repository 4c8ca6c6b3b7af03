/* cpus.c: the processors this process may use (affinity and cgroup v2
 * quota). */
#include "cpus.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

int es_cgroup_cpu_quota(const char *root, const char *path)
{
	char dir[PATH_MAX], f[PATH_MAX + 16], *cut;
	size_t rootlen = strlen(root), len;
	int best = 0;

	if (snprintf(dir, sizeof(dir), "%s%s", root, path) >= (int)sizeof(dir))
		return 0;
	/* "/" (the root cgroup) or a trailing '/': the same cgroup, read once */
	for (len = strlen(dir); len > rootlen && dir[len - 1] == '/'; len--)
		dir[len - 1] = '\0';
	for (;;) {
		char *text;
		long long quota, period;
		snprintf(f, sizeof(f), "%s/cpu.max", dir);
		if ((text = es_read_file(f, NULL))) {
			/* "max 100000" (no limit) or "<quota> <period>", in us */
			if (sscanf(text, "%lld %lld", &quota, &period) == 2 && quota > 0 &&
			    period > 0) {
				long long n = (quota + period - 1) / period;
				if (n > 0 && n < 1 << 20 && (best == 0 || n < best))
					best = (int)n;
			}
			free(text);
		}
		if (strlen(dir) <= rootlen || !(cut = strrchr(dir + rootlen, '/')))
			break;
		*cut = '\0'; /* the cgroup above */
	}
	return best;
}

int es_usable_cpus(void)
{
	cpu_set_t set;
	char *text, *p, *nl;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	int q;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		n = CPU_COUNT(&set);
	/* cgroup v2: the line "0::/its/path" */
	if ((text = es_read_file("/proc/self/cgroup", NULL))) {
		for (p = text; p; p = nl ? nl + 1 : NULL) {
			if ((nl = strchr(p, '\n')))
				*nl = '\0';
			if (strncmp(p, "0::/", 4) == 0) {
				if ((q = es_cgroup_cpu_quota("/sys/fs/cgroup", p + 3)) > 0 && q < n)
					n = q;
				break;
			}
		}
		free(text);
	}
	return n > 0 ? (int)n : 1;
}
