/* cpus.h: how many processors this process may use.
 *
 * Work split over threads asks this, not how many are online: a container
 * or a taskset may give the process fewer than the machine has, and a
 * thread per missing processor only waits its turn (es_pscan_copies).
 */
#ifndef ES_CPUS_H
#define ES_CPUS_H

/* The processors this process may use: its CPU affinity (taskset,
 * cpusets), lowered to its cgroup's CPU quota (cgroup v2 cpu.max, of its
 * cgroup and those above it) rounded up; at least 1. cgroup v1 quotas are
 * not read. */
int es_usable_cpus(void);
/* The smallest cpu.max quota, in whole processors rounded up, of the
 * cgroup at path (as /proc/self/cgroup names it) and of each above it,
 * under the cgroup tree mounted at root; 0 when none sets one. */
int es_cgroup_cpu_quota(const char *root, const char *path);

#endif
