#include "io.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#ifdef ES_TEST_HOOKS
/* The hooks' settings, read once: getenv on every malloc would cost. */
static const char *hook_env(const char *name, const char **cache, int *done)
{
	if (!__atomic_load_n(done, __ATOMIC_ACQUIRE)) {
		*cache = getenv(name);
		__atomic_store_n(done, 1, __ATOMIC_RELEASE);
	}
	return *cache;
}

static struct { const char *op; unsigned long n; } calls[16];
static pthread_mutex_t calls_mu = PTHREAD_MUTEX_INITIALIZER;

/* ES_FAULT_COUNT: how many calls of each op the process made. */
static void report_calls(void)
{
	pthread_mutex_lock(&calls_mu);
	for (size_t i = 0; i < 16 && calls[i].op; i++)
		fprintf(stderr, "es-fault: %s: %lu calls\n", calls[i].op, calls[i].n);
	pthread_mutex_unlock(&calls_mu);
}

/* Count calls per op and decide whether this one fails. Threads (input
 * validation, projections) count under one mutex: the Nth call is then
 * the Nth of the process, whichever thread makes it. */
static int fault(const char *op)
{
	static const char *cache;
	static int done;
	const char *spec, *count;
	unsigned long n = 0;
	size_t oplen = strlen(op), i;

	/* without ES_FAULT (the usual case) no lock: done is set once */
	if (__atomic_load_n(&done, __ATOMIC_ACQUIRE) && (!cache || !*cache))
		return 0;
	pthread_mutex_lock(&calls_mu);
	if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE) && (count = getenv("ES_FAULT_COUNT")) &&
	    strcmp(count, "1") == 0)
		atexit(report_calls);
	spec = hook_env("ES_FAULT", &cache, &done);
	if (!spec || !*spec) {
		pthread_mutex_unlock(&calls_mu);
		return 0;
	}
	for (i = 0; i < 16 && calls[i].op; i++)
		if (strcmp(calls[i].op, op) == 0)
			break;
	if (i == 16) {
		pthread_mutex_unlock(&calls_mu);
		return 0;
	}
	calls[i].op = op;
	n = ++calls[i].n;
	pthread_mutex_unlock(&calls_mu);
	for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, op, oplen) == 0 && p[oplen] == ':') {
			char *end;
			unsigned long at = strtoul(p + oplen + 1, &end, 10);
			if (n == at || (*end == '+' && n > at))
				return 1;
		}
	}
	return 0;
}

void es_stop_point(const char *name)
{
	static int stopped; /* once a process: the test lets it go on once */
	const char *v = getenv("ES_STOP");

	if (v && strcmp(v, name) == 0 && !stopped) {
		stopped = 1;
		raise(SIGSTOP);
	}
}

void es_crash_point(const char *name)
{
	static struct { const char *name; unsigned long n; } seen[16];
	static const char *cache;
	static int done;
	const char *spec = hook_env("ES_CRASH", &cache, &done);
	size_t len = strlen(name), i;

	if (!spec || !*spec)
		return;
	for (i = 0; i < 16 && seen[i].name; i++)
		if (strcmp(seen[i].name, name) == 0)
			break;
	if (i == 16)
		return;
	seen[i].name = name;
	seen[i].n++;
	for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, len) == 0 && p[len] == ':' &&
		    strtoul(p + len + 1, NULL, 10) == seen[i].n)
			kill(getpid(), SIGKILL);
}
#define FAULT(op, err) do { if (fault(op)) { errno = (err); return -1; } } while (0)
#else
#define FAULT(op, err) do { } while (0)
#endif

static int write_fault(void)
{
#ifdef ES_TEST_HOOKS
	if (fault("enospc")) {
		errno = ENOSPC;
		return -1;
	}
	if (fault("write")) {
		errno = EIO;
		return -1;
	}
#endif
	return 0;
}

int es_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n;
		if (write_fault())
			return -1;
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int es_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n;
		if (write_fault())
			return -1;
		n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t es_pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int es_fdatasync(int fd)
{
	FAULT("fdatasync", EIO);
	return fdatasync(fd);
}

int es_fsync(int fd)
{
	FAULT("fsync", EIO);
	return fsync(fd);
}

int es_rename(const char *from, const char *to)
{
	int r;

	FAULT("rename", EIO);
	es_crash_point("before-rename");
	r = rename(from, to);
	if (r == 0)
		es_crash_point("after-rename");
	return r;
}

int es_rename_noreplace(const char *from, const char *to)
{
	int r;

	FAULT("rename", EIO);
	es_crash_point("before-rename");
	r = renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
	if (r != 0 && (errno == EINVAL || errno == ENOSYS)) {
		r = link(from, to);
		if (r == 0)
			unlink(from);
	}
	if (r == 0)
		es_crash_point("after-rename");
	return r;
}

int es_open(const char *path, int flags, int mode)
{
	int fd;

	FAULT("open", EIO);
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	return fd;
}

int es_open_listed(const char *path)
{
	FAULT("gone", ENOENT);
	return es_open(path, O_RDONLY, 0);
}

int es_ftruncate(int fd, off_t len)
{
	FAULT("ftruncate", EIO);
	return ftruncate(fd, len);
}

int es_fsync_dir(const char *path)
{
	struct stat st;
	char *copy = NULL;
	const char *dir = path;
	int fd, r, saved;

	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		copy = strdup(path);
		if (!copy)
			return -1;
		dir = dirname(copy);
	}
	fd = es_open(dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0) {
		saved = errno;
		free(copy);
		errno = saved;
		return -1;
	}
	r = es_fsync(fd);
	saved = errno;
	close(fd);
	free(copy);
	errno = saved;
	return r;
}

static unsigned long alloc_failures;

unsigned long es_alloc_failures(void)
{
	return __atomic_load_n(&alloc_failures, __ATOMIC_RELAXED);
}

static void *counted(void *p)
{
	if (!p)
		__atomic_add_fetch(&alloc_failures, 1, __ATOMIC_RELAXED);
	return p;
}

/* A buffer that grows to hundreds of megabytes (es-append's whole input,
 * its events, the id sets) is filled page by page, and each first touch of
 * a 4 KiB page is a fault, dearer on a VM: 139,000 of them in a 1M-event
 * append (25,000 with the hint; 4.76 s -> 4.1 s on the benchmark machine).
 * Transparent huge pages take 512 pages per fault; where THP is "madvise"
 * a mapping must ask for them, as glibc's glibc.malloc.hugetlb=1 does.
 * Only a hint, and on the whole block from its page on: glibc maps a large
 * block on its own, and realloc moves it with mremap, which needs it to
 * stay one mapping (hinting only the 2 MiB-aligned inside split it, and
 * every realloc copied). */
#define HUGE_HINT_MIN ((size_t)8 << 20)

void *es_huge_hint(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	if (p && n >= HUGE_HINT_MIN)
		(void)es_madvise(p, n, MADV_HUGEPAGE);
#endif
	return p;
}

int es_madvise(const void *p, size_t n, int advice)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)p & ~(page - 1);

	return madvise((void *)a, n + ((uintptr_t)p - a), advice);
}

void *es_malloc(size_t n)
{
#ifdef ES_TEST_HOOKS
	if (fault("malloc")) {
		errno = ENOMEM;
		return counted(NULL);
	}
#endif
	return counted(es_huge_hint(malloc(n ? n : 1), n));
}

void *es_realloc(void *p, size_t n)
{
#ifdef ES_TEST_HOOKS
	if (fault("malloc")) {
		errno = ENOMEM;
		return counted(NULL);
	}
#endif
	return counted(es_huge_hint(realloc(p, n ? n : 1), n));
}

void *es_zalloc(size_t n)
{
	void *p;

#ifdef ES_TEST_HOOKS
	if (fault("malloc")) {
		errno = ENOMEM;
		return counted(NULL);
	}
#endif
	p = es_huge_hint(calloc(1, n ? n : 1), n);
#ifdef MADV_POPULATE_WRITE
	if (p && n >= (256u << 10))
		(void)es_madvise(p, n, MADV_POPULATE_WRITE);
#endif
	return counted(p);
}

int es_write_file_atomic(const char *path, const void *data, size_t len, int mode)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 32);
	int fd, saved;

	if (!tmp)
		return -1;
	snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
	fd = es_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		goto fail;
	if (es_write_all(fd, data, len) != 0 || es_fsync(fd) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		goto fail_unlink;
	}
	if (close(fd) != 0)
		goto fail_unlink;
	if (es_rename(tmp, path) != 0)
		goto fail_unlink;
	free(tmp);
	return es_fsync_dir(path);
fail_unlink:
	saved = errno;
	unlink(tmp);
	errno = saved;
fail:
	saved = errno;
	free(tmp);
	errno = saved;
	return -1;
}

char *es_read_file(const char *path, size_t *lenp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, len = 0;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		ssize_t n;
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			free(buf);
			close(fd);
			errno = saved;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!buf) {
		errno = ENOMEM;
		return NULL;
	}
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}
