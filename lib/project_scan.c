/* project_scan.c: raw lines of a store's log or of NDJSON files, for
 * es_proj_feed_lines (-j N), which parses them on the worker threads. */
#include "project.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

#define BLOCK (512u << 10)

int es_pscan_open(struct es_pscan *sc, struct es_store *s, uint64_t seg, uint64_t off,
		  struct es_error *err)
{
	memset(sc, 0, sizeof(*sc));
	sc->s = s;
	sc->fd = -1;
	if (es_store_list_segments(s, err))
		return err->code;
	if (s->nsegs == 0)
		return 0;
	sc->segs = malloc(s->nsegs * sizeof(*sc->segs));
	if (!sc->segs)
		return es_fail(err, ES_IO, "out of memory");
	memcpy(sc->segs, s->segs, s->nsegs * sizeof(*sc->segs));
	sc->nsegs = s->nsegs;
	if (es_store_visible_end(s, sc->segs[sc->nsegs - 1], &sc->limit, err))
		return err->code;
	while (seg && sc->i < sc->nsegs && sc->segs[sc->i] != seg)
		sc->i++;
	sc->pos = off;
	return 0;
}

static int open_seg(struct es_pscan *sc, struct es_error *err)
{
	char path[PATH_MAX];
	struct stat st;

	es_store_seg_path(sc->s, sc->segs[sc->i], path, sizeof(path));
	snprintf(sc->name, sizeof(sc->name), "log/%020llu.ndjson",
		 (unsigned long long)sc->segs[sc->i]);
	sc->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (sc->fd < 0 || fstat(sc->fd, &st) != 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	sc->end = sc->i + 1 == sc->nsegs ? sc->limit : (uint64_t)st.st_size;
	es_buf_reset(&sc->carry);
	sc->carry_off = sc->pos;
	return 0;
}

static void next_seg(struct es_pscan *sc)
{
	close(sc->fd);
	sc->fd = -1;
	sc->i++;
	sc->pos = 0;
}

int es_pscan_fill(struct es_pscan *sc, struct es_buf *b, const char **name, uint64_t *off,
		  struct es_error *err)
{
	for (;;) {
		ssize_t n;
		char *nl;
		if (sc->fd < 0) {
			if (sc->i >= sc->nsegs)
				return 0;
			if (open_seg(sc, err))
				return -err->code;
		}
		es_buf_reset(b);
		if ((sc->carry.len && es_buf_add(b, sc->carry.p, sc->carry.len)) || es_buf_grow(b, BLOCK))
			return -es_fail(err, ES_IO, "out of memory");
		*off = sc->carry_off;
		*name = sc->name;
		n = sc->pos < sc->end ? es_pread_full(sc->fd, b->p + b->len,
				sc->end - sc->pos < BLOCK ? (size_t)(sc->end - sc->pos) : BLOCK,
				(off_t)sc->pos) : 0;
		if (n < 0)
			return -es_fail_errno(err, ES_IO, "cannot read '%s'", sc->name);
		b->len += (size_t)n;
		sc->pos += (uint64_t)n;
		nl = b->len ? memrchr(b->p, '\n', b->len) : NULL;
		if (n == 0 || sc->pos >= sc->end) {
			/* the segment's end: whatever is left is its last line */
			es_buf_reset(&sc->carry);
			next_seg(sc);
			if (b->len)
				return 1;
			continue;
		}
		if (!nl) {
			/* a line longer than the block: keep reading */
			es_buf_reset(&sc->carry);
			if (es_buf_add(&sc->carry, b->p, b->len))
				return -es_fail(err, ES_IO, "out of memory");
			continue;
		}
		es_buf_reset(&sc->carry);
		if (nl + 1 < b->p + b->len &&
		    es_buf_add(&sc->carry, nl + 1, (size_t)(b->p + b->len - nl - 1)))
			return -es_fail(err, ES_IO, "out of memory");
		sc->carry_off = *off + (uint64_t)(nl + 1 - b->p);
		b->len = (size_t)(nl + 1 - b->p);
		return 1;
	}
}

void es_pscan_close(struct es_pscan *sc)
{
	if (sc->fd >= 0)
		close(sc->fd);
	free(sc->segs);
	es_buf_release(&sc->carry);
	memset(sc, 0, sizeof(*sc));
	sc->fd = -1;
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
