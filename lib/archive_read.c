/* archive_read.c: reading archived segments back (a zstd stream of the
 * segment's lines, each checked as it comes), and the store's view of its
 * archive: the MANIFEST reloaded when it changed, and a bounded cache of
 * restored segments for reads by position (see archive.h). */
#include "archive_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "buf.h"
#include "chain.h"
#include "input.h"
#include "io.h"
#include "record.h"
#include "store.h"

/* ---- the store's view ---- */

struct cache_ent {
	uint64_t seg;
	char *buf;
	size_t len;
	uint64_t used;
};

struct es_archive_cache {
	struct cache_ent *v;
	size_t n;
	uint64_t tick, total, budget;
};

static void cache_free(struct es_archive_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].buf);
	free(c->v);
	free(c);
}

void es_archive_store_release(struct es_store *s)
{
	es_archive_free(s->archive);
	cache_free(s->arc_cache);
	s->archive = NULL;
	s->arc_cache = NULL;
}

int es_archive_refresh(struct es_store *s, struct es_error *err)
{
	char path[PATH_MAX];
	struct es_archive *a;
	struct stat st;
	int rc;

	es_archive_manifest_path(s->dir, path, sizeof(path));
	if (stat(path, &st) != 0) {
		if (errno != ENOENT)
			return es_fail_errno(err, ES_IO, "cannot stat '%s'", path);
		es_archive_free(s->archive);
		s->archive = NULL;
		return 0;
	}
	a = s->archive;
	if (a && a->dev == st.st_dev && a->ino == st.st_ino && a->size == st.st_size &&
	    a->mtime.tv_sec == st.st_mtim.tv_sec && a->mtime.tv_nsec == st.st_mtim.tv_nsec)
		return 0;
	if ((rc = es_archive_load(s->dir, &a, err)) != 0)
		return rc;
	es_archive_free(s->archive);
	s->archive = a;
	return 0;
}

/* ---- reading an archived segment ---- */

struct es_archive_rd {
	int fd;
	char name[PATH_MAX];       /* for messages */
	struct es_archive_seg e;   /* file and dir not owned */
	int flags;
	ZSTD_DCtx *dctx;
	char *zin;
	size_t zin_cap, zin_pos, zin_len;
	int zin_eof, frame_done, out_eof, done;
	char *out;
	size_t out_cap, out_start, out_end, scanned;
	struct es_buf line;
	struct es_chain *chain;
	char prev[ES_HASH_HEX + 1];
	uint64_t seq, off, events, file_bytes;
	struct es_sha256 *md;
};

void es_archive_rd_close(struct es_archive_rd *rd)
{
	if (!rd)
		return;
	if (rd->fd >= 0)
		close(rd->fd);
	ZSTD_freeDCtx(rd->dctx);
	free(rd->zin);
	free(rd->out);
	es_buf_release(&rd->line);
	es_chain_free(rd->chain);
	es_sha256_free(rd->md);
	free(rd);
}

int es_archive_rd_open_path(struct es_archive_rd **out, const char *path,
			    const struct es_archive_seg *e, int flags, struct es_error *err)
{
	struct es_archive_rd *rd = calloc(1, sizeof(*rd));

	*out = NULL;
	if (!rd)
		return es_fail(err, ES_IO, "out of memory");
	rd->fd = -1;
	rd->e = *e;
	rd->e.file = rd->e.dir = NULL;
	rd->flags = flags;
	if (e->dir)
		es_archive_seg_name(e, rd->name, sizeof(rd->name));
	else
		snprintf(rd->name, sizeof(rd->name), "%s", path);
	rd->seq = e->first_seq;
	memcpy(rd->prev, e->prev_hash, ES_HASH_HEX + 1);
	rd->zin_cap = ZSTD_DStreamInSize();
	rd->out_cap = 1 << 20;
	rd->dctx = ZSTD_createDCtx();
	rd->zin = malloc(rd->zin_cap);
	rd->out = malloc(rd->out_cap);
	rd->chain = es_chain_new();
	if ((flags & ES_ARD_SHA256) &&
	    !(rd->md = es_sha256_begin())) {
		es_archive_rd_close(rd);
		return es_fail(err, ES_IO, "out of memory");
	}
	if (!rd->dctx || !rd->zin || !rd->out || !rd->chain) {
		es_archive_rd_close(rd);
		return es_fail(err, ES_IO, "out of memory");
	}
	rd->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (rd->fd < 0) {
		es_fail_errno(err, ES_IO, "cannot open '%s'", path);
		es_archive_rd_close(rd);
		return err->code;
	}
	posix_fadvise(rd->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	*out = rd;
	return 0;
}

int es_archive_rd_open(struct es_archive_rd **rd, const char *storedir,
		       const struct es_archive_seg *e, int flags, struct es_error *err)
{
	char path[PATH_MAX];

	es_archive_seg_path(storedir, e, path, sizeof(path));
	return es_archive_rd_open_path(rd, path, e, flags, err);
}

static int rd_corrupt(struct es_archive_rd *rd, struct es_error *err, const char *fmt,
		      const char *what)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, what);
	return es_fail(err, ES_CORRUPT, "%s: offset %llu: seq %llu: %s", rd->name,
		       (unsigned long long)rd->off, (unsigned long long)rd->seq, msg);
}

/* Decompress more into out. 1 when bytes were added, 0 at the end of the
 * file, -1 with err. */
static int rd_fill(struct es_archive_rd *rd, struct es_error *err)
{
	if (rd->out_start > 0) {
		memmove(rd->out, rd->out + rd->out_start, rd->out_end - rd->out_start);
		rd->out_end -= rd->out_start;
		rd->scanned -= rd->out_start;
		rd->out_start = 0;
	}
	if (rd->out_end == rd->out_cap) {
		char *nb;
		if (rd->out_cap > 2 * (size_t)ES_LINE_MAX_DEFAULT) {
			rd_corrupt(rd, err, "%s", "line longer than 16 MiB");
			return -1;
		}
		nb = realloc(rd->out, rd->out_cap * 2);
		if (!nb) {
			es_fail(err, ES_IO, "out of memory");
			return -1;
		}
		rd->out = nb;
		rd->out_cap *= 2;
	}
	for (;;) {
		if (rd->zin_pos == rd->zin_len && !rd->zin_eof) {
			ssize_t r;
			do
				r = read(rd->fd, rd->zin, rd->zin_cap);
			while (r < 0 && errno == EINTR);
			if (r < 0) {
				es_fail_errno(err, ES_IO, "cannot read '%s'", rd->name);
				return -1;
			}
			if (r == 0)
				rd->zin_eof = 1;
			if (rd->md && r > 0)
				es_sha256_add(rd->md, rd->zin, (size_t)r);
			rd->file_bytes += (uint64_t)r;
			rd->zin_len = (size_t)r;
			rd->zin_pos = 0;
		}
		if (rd->zin_pos == rd->zin_len) {
			if (!rd->frame_done) {
				rd_corrupt(rd, err, "%s", "the zstd frame is cut short");
				return -1;
			}
			return 0;
		}
		if (rd->frame_done) {
			rd_corrupt(rd, err, "%s", "bytes after the zstd frame");
			return -1;
		}
		ZSTD_outBuffer ob = {rd->out, rd->out_cap, rd->out_end};
		ZSTD_inBuffer ib = {rd->zin, rd->zin_len, rd->zin_pos};
		size_t ret = ZSTD_decompressStream(rd->dctx, &ob, &ib);
		rd->zin_pos = ib.pos;
		if (ZSTD_isError(ret)) {
			rd_corrupt(rd, err, "corrupt zstd data: %s", ZSTD_getErrorName(ret));
			return -1;
		}
		if (ret == 0)
			rd->frame_done = 1;
		if (ob.pos > rd->out_end) {
			rd->out_end = ob.pos;
			return 1;
		}
	}
}

/* Give an archived line its "seq" and "hash" back. */
static int restore(struct es_archive_rd *rd, const char *s, size_t n, struct es_error *err)
{
	char hash[ES_HASH_HEX + 1], *p;
	size_t body;

	if (n < 3 || s[0] != '{' || s[1] != '"' || s[n - 1] != '}')
		return rd_corrupt(rd, err, "%s", "not an archived record");
	es_buf_reset(&rd->line);
	if (es_buf_grow(&rd->line, n + 32 + ES_HASH_HEX + 16))
		return es_fail(err, ES_IO, "out of memory");
	p = rd->line.p;
	memcpy(p, "{\"seq\":", 7);
	p = es_put_u64(p + 7, rd->seq);
	*p++ = ',';
	memcpy(p, s + 1, n - 2);
	p += n - 2;
	body = (size_t)(p - rd->line.p);
	if (es_chain_hash(rd->chain, rd->prev, rd->line.p, body, hash))
		return es_fail(err, ES_IO, "sha256 failed");
	memcpy(p, ",\"hash\":\"", 9);
	memcpy(p + 9, hash, ES_HASH_HEX);
	memcpy(p + 9 + ES_HASH_HEX, "\"}", 2);
	rd->line.len = body + 9 + ES_HASH_HEX + 2;
	memcpy(rd->prev, hash, ES_HASH_HEX + 1);
	return 0;
}

/* A verbatim line: check it is the next record of the chain. */
static int check_verbatim(struct es_archive_rd *rd, const char *s, size_t n, struct es_error *err)
{
	struct es_rec r;
	const char *why;

	if (es_rec_parse(s, n, 0, &r, &why) != 0)
		return rd_corrupt(rd, err, "%s", why);
	if (r.seq != rd->seq)
		return rd_corrupt(rd, err, "%s", "seq is not the next one");
	if (!es_rec_check(rd->chain, rd->prev, s, &r))
		return rd_corrupt(rd, err, "%s", "hash mismatch");
	memcpy(rd->prev, r.hash, ES_HASH_HEX);
	return 0;
}

static int rd_finish(struct es_archive_rd *rd, struct es_error *err)
{
	char msg[256];

	rd->done = 1;
	if (rd->events != rd->e.events || rd->seq != rd->e.last_seq + 1)
		snprintf(msg, sizeof(msg), "%llu events restored, the MANIFEST says %llu",
			 (unsigned long long)rd->events, (unsigned long long)rd->e.events);
	else if (memcmp(rd->prev, rd->e.last_hash, ES_HASH_HEX) != 0)
		snprintf(msg, sizeof(msg), "the restored chain ends at %.64s, the MANIFEST says %.64s",
			 rd->prev, rd->e.last_hash);
	else if (rd->off != rd->e.raw_bytes)
		snprintf(msg, sizeof(msg), "%llu bytes restored, the MANIFEST says %llu",
			 (unsigned long long)rd->off, (unsigned long long)rd->e.raw_bytes);
	else if (rd->md && rd->file_bytes != rd->e.bytes)
		snprintf(msg, sizeof(msg), "the file has %llu bytes, the MANIFEST says %llu",
			 (unsigned long long)rd->file_bytes, (unsigned long long)rd->e.bytes);
	else if (rd->md) {
		char hex[ES_HASH_HEX + 1];
		if (es_sha256_end(rd->md, hex))
			return es_fail(err, ES_IO, "sha256 failed");
		if (memcmp(hex, rd->e.sha256, ES_HASH_HEX) == 0)
			return 0;
		snprintf(msg, sizeof(msg), "sha256 of the file is %s, the MANIFEST says %s", hex,
			 rd->e.sha256);
	} else
		return 0;
	return es_fail(err, ES_CORRUPT, "%s: %s", rd->name, msg);
}

int es_archive_rd_next(struct es_archive_rd *rd, const char **line, size_t *len,
		       uint64_t *off, struct es_error *err)
{
	if (rd->done)
		return 0;
	for (;;) {
		char *b = rd->out + rd->out_start;
		size_t avail = rd->out_end - rd->out_start;
		char *nl = memchr(rd->out + rd->scanned, '\n', rd->out_end - rd->scanned);
		if (nl) {
			size_t n = (size_t)(nl - b);
			int rc;
			if (rd->seq > rd->e.last_seq)
				return -rd_corrupt(rd, err, "%s", "more records than the MANIFEST says");
			rd->out_start += n + 1;
			rd->scanned = rd->out_start;
			rc = rd->e.verbatim ? check_verbatim(rd, b, n, err) : restore(rd, b, n, err);
			if (rc)
				return -rc;
			*line = rd->e.verbatim ? b : rd->line.p;
			*len = rd->e.verbatim ? n : rd->line.len;
			*off = rd->off;
			rd->off += *len + 1;
			rd->seq++;
			rd->events++;
			return 1;
		}
		rd->scanned = rd->out_end;
		if (rd->out_eof) {
			if (avail > 0)
				return -rd_corrupt(rd, err, "%s", "the last line has no newline");
			return rd_finish(rd, err) ? -err->code : 0;
		}
		int r = rd_fill(rd, err);
		if (r < 0)
			return -err->code;
		if (r == 0)
			rd->out_eof = 1;
	}
}

/* Restore a whole segment into *buf (malloc'd). */
int es_archive_restore_all(const char *storedir, const struct es_archive_seg *e, int flags,
			   char **buf, size_t *blen, struct es_error *err)
{
	struct es_archive_rd *rd;
	struct es_buf b = ES_BUF_INIT;
	const char *line;
	size_t len;
	uint64_t off;
	int rc;

	if (es_archive_rd_open(&rd, storedir, e, flags, err))
		return err->code;
	/* The MANIFEST's size, to grow once; but no more than 64 MiB on its
	 * word: a damaged entry is found at the end (rd_finish), not by a
	 * huge allocation failing first. */
	uint64_t want = e->raw_bytes < ((uint64_t)64 << 20) ? e->raw_bytes : (uint64_t)64 << 20;
	if (es_buf_grow(&b, (size_t)want + 1)) {
		es_archive_rd_close(rd);
		return es_fail(err, ES_IO, "out of memory");
	}
	while ((rc = es_archive_rd_next(rd, &line, &len, &off, err)) == 1)
		if (es_buf_add(&b, line, len) || es_buf_addc(&b, '\n')) {
			rc = -es_fail(err, ES_IO, "out of memory");
			break;
		}
	es_archive_rd_close(rd);
	if (rc < 0) {
		es_buf_release(&b);
		return -rc;
	}
	*buf = b.p;
	*blen = b.len;
	return 0;
}

static uint64_t cache_budget(void)
{
	const char *v = getenv("ES_ARCHIVE_CACHE_MB");
	char *end;
	unsigned long long mb = 256;

	if (v && *v) {
		unsigned long long x = strtoull(v, &end, 10);
		if (*end == '\0')
			mb = x;
	}
	return (uint64_t)mb << 20;
}

/* The restored segment e, from the cache or restored now. */
static int cache_get(struct es_store *s, const struct es_archive_seg *e, struct cache_ent **out,
		     struct es_error *err)
{
	struct es_archive_cache *c = s->arc_cache;
	struct cache_ent ne = {e->first_seq, NULL, 0, 0};

	if (!c) {
		c = s->arc_cache = calloc(1, sizeof(*c));
		if (!c)
			return es_fail(err, ES_IO, "out of memory");
		c->budget = cache_budget();
	}
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].seg == e->first_seq) {
			c->v[i].used = ++c->tick;
			*out = &c->v[i];
			return 0;
		}
	if (es_archive_restore_all(s->dir, e, 0, &ne.buf, &ne.len, err))
		return err->code;
	/* Evict the most recently used until the new one fits. Readers go
	 * through a stream's events in seq order, then the next stream's: a
	 * cyclic scan over the segments, which defeats LRU (every access a
	 * miss) while MRU keeps all but one of the cached segments useful. */
	while (c->n > 0 && c->total + ne.len > c->budget) {
		size_t mru = 0;
		for (size_t i = 1; i < c->n; i++)
			if (c->v[i].used > c->v[mru].used)
				mru = i;
		c->total -= c->v[mru].len;
		free(c->v[mru].buf);
		c->v[mru] = c->v[--c->n];
	}
	struct cache_ent *nv = realloc(c->v, (c->n + 1) * sizeof(*nv));
	if (!nv) {
		free(ne.buf);
		return es_fail(err, ES_IO, "out of memory");
	}
	c->v = nv;
	ne.used = ++c->tick;
	c->v[c->n] = ne;
	c->total += ne.len;
	*out = &c->v[c->n++];
	return 0;
}

int es_archive_read_pos(struct es_store *s, const struct es_pos *pos, char **buf, size_t *cap,
			struct es_error *err)
{
	const struct es_archive_seg *e = es_archive_find(s->archive, pos->seg);
	struct cache_ent *ce = NULL;
	char name[PATH_MAX];

	if (!e) {
		/* It may have been archived since s->archive was read. */
		if (es_archive_refresh(s, err))
			return err->code;
		e = es_archive_find(s->archive, pos->seg);
	}
	if (!e) {
		if (pos->seq <= es_archive_purged_seq(s))
			return es_fail(err, ES_NOMATCH, "seq %llu was purged by es-archive "
				       "--purge-before", (unsigned long long)pos->seq);
		return -1;
	}
	if (cache_get(s, e, &ce, err))
		return err->code;
	if (*cap < (size_t)pos->len + 1) {
		char *nb = realloc(*buf, (size_t)pos->len + 1);
		if (!nb)
			return es_fail(err, ES_IO, "out of memory");
		*buf = nb;
		*cap = (size_t)pos->len + 1;
	}
	es_archive_seg_name(e, name, sizeof(name));
	if (pos->len == 0 || pos->off + pos->len > ce->len || ce->buf[pos->off + pos->len - 1] != '\n' ||
	    (pos->off > 0 && ce->buf[pos->off - 1] != '\n'))
		return es_fail(err, ES_CORRUPT, "%s: offset %llu: seq %llu: record not where the "
			       "index says", name, (unsigned long long)pos->off,
			       (unsigned long long)pos->seq);
	memcpy(*buf, ce->buf + pos->off, pos->len);
	(*buf)[pos->len] = '\0';
	return 0;
}

int es_archive_segment(struct es_store *s, uint64_t seg, const char **buf, size_t *len,
		       struct es_error *err)
{
	const struct es_archive_seg *e = es_archive_find(s->archive, seg);
	struct cache_ent *ce = NULL;

	if (!e) {
		if (es_archive_refresh(s, err))
			return err->code;
		if (!(e = es_archive_find(s->archive, seg)))
			return 1;
	}
	if (cache_get(s, e, &ce, err))
		return err->code;
	*buf = ce->buf;
	*len = ce->len;
	return 0;
}
