/* cpus: the processors a process may use, for the choice between copying
 * the log and reading its mapping (es_pscan_copies): the cgroup v2 quota
 * (cpu.max) of a cgroup and of those above it, over a made-up tree. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpus.h"
#include "unit.h"

static char root[64];

static void put(const char *dir, const char *text)
{
	char f[256];
	FILE *fp;

	snprintf(f, sizeof(f), "%s%s/cpu.max", root, dir);
	if ((fp = fopen(f, "w"))) {
		fputs(text, fp);
		fclose(fp);
	}
}

static void drop(const char *dir)
{
	char f[256];

	snprintf(f, sizeof(f), "%s%s/cpu.max", root, dir);
	unlink(f);
}

int main(void)
{
	char d[256];

	snprintf(root, sizeof(root), "/tmp/es-unit-cpus.XXXXXX");
	if (!mkdtemp(root))
		return unit_done("cpus");
	snprintf(d, sizeof(d), "%s/a", root);
	mkdir(d, 0755);
	snprintf(d, sizeof(d), "%s/a/b", root);
	mkdir(d, 0755);

	/* no cpu.max anywhere (a v1 or hybrid host): no quota */
	CHECK(es_cgroup_cpu_quota(root, "/a/b") == 0);
	CHECK(es_cgroup_cpu_quota(root, "/") == 0);
	/* "max": no limit, at every level */
	put("", "max 100000\n");
	put("/a", "max 100000\n");
	put("/a/b", "max 100000\n");
	CHECK(es_cgroup_cpu_quota(root, "/a/b") == 0);
	/* a quota of 2.5 processors is 3 */
	put("/a/b", "250000 100000\n");
	CHECK(es_cgroup_cpu_quota(root, "/a/b") == 3);
	/* the one above is smaller: it rules */
	put("/a", "150000 100000\n");
	CHECK(es_cgroup_cpu_quota(root, "/a/b") == 2);
	/* and the root's own, as a container's namespace shows it */
	put("", "50000 100000\n");
	CHECK(es_cgroup_cpu_quota(root, "/a/b") == 1);
	CHECK(es_cgroup_cpu_quota(root, "/") == 1);
	/* a cgroup without the file: the ones above it still count */
	drop("");
	drop("/a/b");
	CHECK(es_cgroup_cpu_quota(root, "/a/b") == 2);
	/* a trailing '/' names the same cgroup */
	CHECK(es_cgroup_cpu_quota(root, "/a/b/") == 2);
	CHECK(es_cgroup_cpu_quota(root, "/a/") == 2);
	/* one that does not exist here (another mount namespace): its parents */
	CHECK(es_cgroup_cpu_quota(root, "/a/nowhere") == 2);
	/* nonsense is no quota */
	put("/a", "lots 100000\n");
	CHECK(es_cgroup_cpu_quota(root, "/a/b") == 0);
	put("/a", "100000 0\n");
	CHECK(es_cgroup_cpu_quota(root, "/a/b") == 0);
	drop("/a");

	/* whatever the machine: at least one, at most what is online */
	CHECK(es_usable_cpus() >= 1);
	CHECK(es_usable_cpus() <= sysconf(_SC_NPROCESSORS_ONLN));
	/* pinned to one processor (taskset -c N): one */
	cpu_set_t set, one;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		CPU_ZERO(&one);
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set)) {
				CPU_SET(c, &one);
				break;
			}
		CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
		CHECK(es_usable_cpus() == 1);
		sched_setaffinity(0, sizeof(set), &set);
	}

	snprintf(d, sizeof(d), "%s/a/b", root);
	rmdir(d);
	snprintf(d, sizeof(d), "%s/a", root);
	rmdir(d);
	rmdir(root);
	return unit_done("cpus");
}
