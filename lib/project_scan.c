/* project_scan.c: raw lines of a store's log or of NDJSON files, for
 * es_proj_feed_lines (-j N), which parses them on the worker threads. */
#include "project.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "io.h"

#define BLOCK (512u << 10)

int es_pscan_open(struct es_pscan *sc, struct es_store *s, uint64_t seg, uint64_t off,
		  struct es_error *err)
{
	memset(sc, 0, sizeof(*sc));
	sc->s = s;
	if (es_store_list_segments(s, err))
		return err->code;
	if (s->nsegs == 0)
		return 0;
	sc->segs = malloc(s->nsegs * sizeof(*sc->segs));
	sc->maps = calloc(s->nsegs, sizeof(*sc->maps));
	sc->maplens = calloc(s->nsegs, sizeof(*sc->maplens));
	sc->names = calloc(s->nsegs, sizeof(*sc->names));
	if (!sc->segs || !sc->maps || !sc->maplens || !sc->names)
		return es_fail(err, ES_IO, "out of memory");
	memcpy(sc->segs, s->segs, s->nsegs * sizeof(*sc->segs));
	sc->nsegs = s->nsegs;
	for (size_t i = 0; i < sc->nsegs; i++)
		snprintf(sc->names[i], sizeof(sc->names[i]), "log/%020llu.ndjson",
			 (unsigned long long)sc->segs[i]);
	if (es_store_visible_end(s, sc->segs[sc->nsegs - 1], &sc->limit, err))
		return err->code;
	if (seg) {
		while (sc->i < sc->nsegs && sc->segs[sc->i] != seg)
			sc->i++;
		sc->pos = off;
	} else {
		/* from the start of log/, after what the archive holds (a log/
		 * copy of an archived segment is a leftover: the archive wins) */
		uint64_t arc = es_pscan_archive_end(s);
		while (sc->i < sc->nsegs && sc->segs[sc->i] <= arc)
			sc->i++;
	}
	return 0;
}

uint64_t es_pscan_archive_end(struct es_store *s)
{
	struct es_head h;

	if (!s->archive)
		return 0;
	es_archive_end(s->archive, &h);
	return h.seq;
}

/* Map segs[i] up to its end (the visible end for the last one). */
static int map_seg(struct es_pscan *sc, struct es_error *err)
{
	char path[PATH_MAX];
	struct stat st;
	void *m;
	int fd;

	es_store_seg_path(sc->s, sc->segs[sc->i], path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		es_fail_errno(err, ES_IO, "cannot open '%s'", path);
		if (fd >= 0)
			close(fd);
		return err->code;
	}
	sc->end = sc->i + 1 == sc->nsegs ? sc->limit : (uint64_t)st.st_size;
	if (sc->end > (uint64_t)st.st_size)
		sc->end = (uint64_t)st.st_size;
	if (sc->pos >= sc->end) {
		close(fd);
		return 0;
	}
	m = mmap(NULL, (size_t)sc->end, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return es_fail_errno(err, ES_IO, "cannot map '%s'", path);
	madvise(m, (size_t)sc->end, MADV_SEQUENTIAL);
	sc->maps[sc->nmaps] = m;
	sc->maplens[sc->nmaps++] = (size_t)sc->end;
	sc->map = m;
	return 0;
}

int es_pscan_fill(struct es_pscan *sc, const char **block, size_t *len, const char **name,
		  uint64_t *off, struct es_error *err)
{
	for (;;) {
		const char *q, *nl;
		size_t want;
		if (!sc->map) {
			if (sc->i >= sc->nsegs)
				return 0;
			if (map_seg(sc, err))
				return -err->code;
			if (!sc->map) {
				sc->i++;
				sc->pos = 0;
				continue;
			}
		}
		if (sc->pos >= sc->end) {
			sc->map = NULL;
			sc->i++;
			sc->pos = 0;
			continue;
		}
		q = sc->map + sc->pos;
		want = sc->end - sc->pos < BLOCK ? (size_t)(sc->end - sc->pos) : BLOCK;
		if (sc->pos + want < sc->end) {
			/* end the block after its last whole line (or the first line,
			 * when that one is longer than a block) */
			nl = memrchr(q, '\n', want);
			if (!nl)
				nl = memchr(q + want, '\n', (size_t)(sc->end - sc->pos - want));
			if (nl)
				want = (size_t)(nl + 1 - q);
			else
				want = (size_t)(sc->end - sc->pos);
		}
#ifdef MADV_POPULATE_READ
		{
			/* fault the block in here, not in the worker that parses it */
			uintptr_t a = (uintptr_t)q & ~(uintptr_t)4095;
			madvise((void *)a, want + ((uintptr_t)q - a), MADV_POPULATE_READ);
		}
#endif
		*block = q;
		*len = want;
		*name = sc->names[sc->i];
		*off = sc->pos;
		sc->pos += want;
		return 1;
	}
}

void es_pscan_close(struct es_pscan *sc)
{
	for (size_t i = 0; i < sc->nmaps; i++)
		munmap(sc->maps[i], sc->maplens[i]);
	free(sc->maps);
	free(sc->maplens);
	free(sc->names);
	free(sc->segs);
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
