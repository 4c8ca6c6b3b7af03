/* project_scan.c: raw lines of a store's log or of NDJSON files, for
 * es_proj_feed_lines (-j N), which parses them on the worker threads. */
#include "project.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "cpus.h"
#include "io.h"

#define BLOCK (512u << 10)

/* Map segs[i] up to its end (the visible end for the last one): 0, 1 when
 * it is gone (archived meanwhile), or an error. */
static int map_seg(struct es_pscan *sc, size_t i, struct es_error *err)
{
	char path[PATH_MAX];
	struct stat st;
	uint64_t end;
	void *m;
	int fd;

	es_store_seg_path(sc->s, sc->segs[i], path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 1;
	if (fd < 0 || fstat(fd, &st) != 0) {
		es_fail_errno(err, ES_IO, "cannot open '%s'", path);
		if (fd >= 0)
			close(fd);
		return err->code;
	}
	end = i + 1 == sc->nsegs ? sc->limit : (uint64_t)st.st_size;
	if (end > (uint64_t)st.st_size)
		end = (uint64_t)st.st_size;
	sc->ends[i] = end;
	if (end == 0) {
		close(fd);
		return 0;
	}
	m = mmap(NULL, (size_t)end, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return es_fail_errno(err, ES_IO, "cannot map '%s'", path);
	madvise(m, (size_t)end, MADV_SEQUENTIAL);
	sc->maps[i] = m;
	return 0;
}

static void unmap_all(struct es_pscan *sc)
{
	for (size_t i = 0; i < sc->nsegs; i++)
		if (sc->maps && sc->maps[i])
			munmap(sc->maps[i], (size_t)sc->ends[i]);
	free(sc->maps);
	free(sc->ends);
	free(sc->names);
	free(sc->segs);
}

/* List the segments and map, at once, every one from the start on: what
 * is mapped stays readable even if es-archive removes it afterwards. */
static int open_once(struct es_pscan *sc, uint64_t seg, uint64_t off, struct es_error *err)
{
	struct es_store *s = sc->s;
	uint64_t limit;
	int rc;

	if (es_store_list_tail(s, &limit, err))
		return err->code;
	if (s->nsegs == 0)
		return 0;
	sc->segs = malloc(s->nsegs * sizeof(*sc->segs));
	sc->maps = calloc(s->nsegs, sizeof(*sc->maps));
	sc->ends = calloc(s->nsegs, sizeof(*sc->ends));
	sc->names = calloc(s->nsegs, sizeof(*sc->names));
	if (!sc->segs || !sc->maps || !sc->ends || !sc->names)
		return es_fail(err, ES_IO, "out of memory");
	memcpy(sc->segs, s->segs, s->nsegs * sizeof(*sc->segs));
	sc->nsegs = s->nsegs;
	for (size_t i = 0; i < sc->nsegs; i++)
		snprintf(sc->names[i], sizeof(sc->names[i]), "log/%020llu.ndjson",
			 (unsigned long long)sc->segs[i]);
	sc->limit = limit;
	if (seg) {
		while (sc->i < sc->nsegs && sc->segs[sc->i] != seg)
			sc->i++;
		if (sc->i == sc->nsegs && seg != UINT64_MAX)
			return 1; /* archived meanwhile */
		sc->pos = off;
	} else {
		/* from the start of log/, after what the archive holds (a log/
		 * copy of an archived segment is a leftover: the archive wins) */
		uint64_t arc = es_pscan_archive_end(s);
		while (sc->i < sc->nsegs && sc->segs[sc->i] <= arc)
			sc->i++;
	}
	for (size_t i = sc->i; i < sc->nsegs; i++)
		if ((rc = map_seg(sc, i, err)) != 0)
			return rc;
	return 0;
}

int es_pscan_open(struct es_pscan *sc, struct es_store *s, uint64_t seg, uint64_t off,
		  struct es_error *err)
{
	for (int tries = 0; tries < 3; tries++) {
		int rc;
		memset(sc, 0, sizeof(*sc));
		sc->s = s;
		rc = open_once(sc, seg, off, err);
		if (rc != 1)
			return rc;
		unmap_all(sc);
		memset(sc, 0, sizeof(*sc));
	}
	return es_fail(err, ES_IO, "log/ keeps changing (es-archive is running?): run again");
}

uint64_t es_pscan_archive_end(struct es_store *s)
{
	struct es_head h;

	if (!s->archive)
		return 0;
	es_archive_end(s->archive, &h);
	return h.seq;
}

/* A block of a scan ends after its last whole line: the length of p[0..n)
 * up to and including its last newline, 0 when it has none (a line longer
 * than a block, which both readers then take whole). */
static size_t whole_lines(const char *p, size_t n)
{
	const char *nl = memrchr(p, '\n', n);
	return nl ? (size_t)(nl + 1 - p) : 0;
}

int es_pscan_fill(struct es_pscan *sc, const char **block, size_t *len, const char **name,
		  uint64_t *off, struct es_error *err)
{
	(void)err;
	for (; sc->i < sc->nsegs; sc->i++, sc->pos = 0) {
		const char *map = sc->maps[sc->i], *q, *nl;
		uint64_t end = sc->ends[sc->i];
		size_t want;
		if (!map || sc->pos >= end)
			continue;
		q = map + sc->pos;
		want = end - sc->pos < BLOCK ? (size_t)(end - sc->pos) : BLOCK;
		if (sc->pos + want < end && !(want = whole_lines(q, want))) {
			/* a line longer than a block is taken whole */
			nl = memchr(q + BLOCK, '\n', (size_t)(end - sc->pos - BLOCK));
			want = nl ? (size_t)(nl + 1 - q) : (size_t)(end - sc->pos);
		}
		/* fault the block in here, not in the worker that parses it */
		if (!sc->lazy)
			es_pscan_populate(q, want);
		*block = q;
		*len = want;
		*name = sc->names[sc->i];
		*off = sc->pos;
		sc->pos += want;
		return 1;
	}
	return 0;
}

/* n bytes at pos of segs[i] into b: from its file, or from its mapping. */
static int copy_at(struct es_pscan *sc, char *b, size_t n, uint64_t pos, struct es_error *err)
{
	if (sc->fd1 == 0) {
		char path[PATH_MAX];
		int fd;
		es_store_seg_path(sc->s, sc->segs[sc->i], path, sizeof(path));
		fd = es_open_listed(path);
		if (fd < 0 && errno != ENOENT)
			return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
		sc->fd1 = fd < 0 ? -1 : fd + 1; /* gone: archived since it was mapped */
	}
	if (sc->fd1 < 0) {
		memcpy(b, (const char *)sc->maps[sc->i] + pos, n);
		return 0;
	}
	ssize_t got = es_pread_full(sc->fd1 - 1, b, n, (off_t)pos);
	if (got < 0)
		return es_fail_errno(err, ES_IO, "cannot read '%s'", sc->names[sc->i]);
	if ((size_t)got != n) /* (a sealed segment never shrinks; nor the log below its visible end) */
		return es_fail(err, ES_IO, "'%s' is shorter than when it was opened", sc->names[sc->i]);
	return 0;
}

static void copy_done(struct es_pscan *sc)
{
	if (sc->fd1 > 0)
		close(sc->fd1 - 1);
	sc->fd1 = 0;
}

int es_pscan_copy(struct es_pscan *sc, char **buf, size_t *len, const char **name,
		  uint64_t *off, struct es_error *err)
{
	for (; sc->i < sc->nsegs; copy_done(sc), sc->i++, sc->pos = 0) {
		uint64_t end = sc->ends[sc->i], left;
		size_t want, got = 0;
		char *b = NULL;
		if (!sc->maps[sc->i] || sc->pos >= end)
			continue;
		left = end - sc->pos;
		want = left < BLOCK ? (size_t)left : BLOCK;
		for (;;) {
			char *nb = es_realloc(b, want);
			size_t n;
			if (!nb) {
				free(b);
				return -es_fail(err, ES_IO, "out of memory");
			}
			b = nb;
			if (copy_at(sc, b + got, want - got, sc->pos + got, err)) {
				free(b);
				return -err->code;
			}
			got = want;
			if (got == left)
				break; /* the rest of the segment */
			if ((n = whole_lines(b, got))) {
				got = n;
				break;
			}
			/* a line longer than the block: read on until it ends */
			want = left - got < got ? (size_t)left : 2 * got;
		}
		*buf = b;
		*len = got;
		*name = sc->names[sc->i];
		*off = sc->pos;
		sc->pos += got;
		return 1;
	}
	copy_done(sc);
	return 0;
}

/* A copy is filled through the kernel's own mapping of the page cache and
 * then read from the cache, where the first touch of each page of a user
 * mapping costs a page-table walk, and these are dear in a virtual machine:
 * 1M events (416 MB) read by memchr from the mapping took 175-200 ms,
 * read(2) into a 256 KiB buffer and memchr 57 ms. A thread that reads its
 * own blocks gains from it (es-project -j 1: 0.57-0.60 s -> 0.25-0.30 s),
 * and so do threads fed by a reading thread with a core to itself
 * (es-replay -j 1: 0.55 -> 0.35 s). With a thread on every core the
 * reading thread competes with them, and the mapping is faster (es-replay
 * -j 2 on 2 cores, where each thread reads every line: 0.40 s mapped,
 * 0.43-0.55 s copied). */
int es_pscan_copies(int threads)
{
#ifdef ES_TEST_HOOKS
	const char *v = getenv("ES_SCAN_READ");
	if (v && strcmp(v, "copy") == 0)
		return 1;
	if (v && strcmp(v, "map") == 0)
		return 0;
#endif
	return threads == 0 || es_usable_cpus() > threads;
}

void es_pscan_populate(const char *block, size_t len)
{
#ifdef MADV_POPULATE_READ
	(void)es_madvise(block, len, MADV_POPULATE_READ);
#else
	(void)block;
	(void)len;
#endif
}

void es_pscan_close(struct es_pscan *sc)
{
	copy_done(sc);
	unmap_all(sc);
	memset(sc, 0, sizeof(*sc));
}

void es_pfiles_open(struct es_pfiles *pf, char **files, int nfiles)
{
	static char *dash[] = {(char *)"-"};

	memset(pf, 0, sizeof(*pf));
	pf->files = nfiles ? files : dash;
	pf->nfiles = nfiles ? nfiles : 1;
}

int es_pfiles_next(void *arg, const char **line, size_t *len, const char **name,
		   uint64_t *lineno, struct es_error *err)
{
	struct es_pfiles *pf = arg;

	for (;;) {
		int rc;
		if (!pf->open) {
			if (pf->fi >= pf->nfiles)
				return 0;
			if (es_input_open(&pf->in, pf->files[pf->fi++], err))
				return -err->code;
			pf->open = 1;
		}
		rc = es_input_next(&pf->in, line, len, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			es_input_close(&pf->in);
			pf->open = 0;
			continue;
		}
		if (*len == 0)
			continue;
		*name = pf->files[pf->fi - 1];
		*lineno = pf->in.lineno;
		return 1;
	}
}

void es_pfiles_close(struct es_pfiles *pf)
{
	if (pf->open)
		es_input_close(&pf->in);
	pf->open = 0;
}
