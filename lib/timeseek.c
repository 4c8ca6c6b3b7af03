#include "timeseek.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "input.h"
#include "io.h"
#include "reader.h"
#include "record.h"

#define BLOCK (16u << 10)  /* bytes read per pread */
#define LINEAR (4u << 10)  /* below this, lines are read in order */

/* What is sought: the first record for which a monotonic predicate holds. */
enum kind { TS_GE, TS_GT, SEQ_GE };
struct key {
	enum kind kind;
	const char *ts;
	uint64_t seq;
};

static int holds(const struct key *key, const struct es_rec *r)
{
	switch (key->kind) {
	case TS_GE: return memcmp(r->ts, key->ts, ES_TS_LEN) >= 0;
	case TS_GT: return memcmp(r->ts, key->ts, ES_TS_LEN) > 0;
	default: return r->seq >= key->seq;
	}
}

int es_seek_init(struct es_seek *k, struct es_store *s, struct es_error *err)
{
	memset(k, 0, sizeof(*k));
	k->store = s;
	k->fd = -1;
	if (es_store_list_tail(s, &k->last_end, err))
		return err->code;
	es_stop_point("seek-listed");
	k->segs = malloc((s->nsegs ? s->nsegs : 1) * sizeof(*k->segs));
	if (!k->segs)
		return es_fail(err, ES_IO, "out of memory");
	memcpy(k->segs, s->segs, s->nsegs * sizeof(*k->segs));
	k->nsegs = s->nsegs;
	return 0;
}

void es_seek_release(struct es_seek *k)
{
	if (k->fd >= 0)
		close(k->fd);
	free(k->segs);
	free(k->buf);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}

static int last_seq(struct es_seek *k, uint64_t *seq, struct es_error *err);

static int bad(const struct es_seek *k, size_t i, uint64_t off, const char *why,
	       struct es_error *err)
{
	return es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: offset %llu: %s",
		       (unsigned long long)k->segs[i], (unsigned long long)off, why);
}

static int open_seg(struct es_seek *k, size_t i, struct es_error *err)
{
	char path[PATH_MAX];
	struct stat st;

	if (k->fd >= 0 && k->fd_i == i)
		return 0;
	if (k->fd >= 0)
		close(k->fd);
	k->blen = 0;
	es_store_seg_path(k->store, k->segs[i], path, sizeof(path));
	k->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (k->fd < 0) {
		k->gone = errno == ENOENT;
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	}
	if (fstat(k->fd, &st) != 0)
		return es_fail_errno(err, ES_IO, "cannot stat '%s'", path);
	k->fd_i = i;
	k->fd_end = i + 1 == k->nsegs ? k->last_end : (uint64_t)st.st_size;
	return 0;
}

/* Point *p at byte off of segment i, with *avail bytes after it in memory:
 * at least want of them, unless the segment ends first. */
static int load(struct es_seek *k, size_t i, uint64_t off, size_t want, const char **p,
		size_t *avail, struct es_error *err)
{
	size_t n;

	if (open_seg(k, i, err))
		return err->code;
	if (off >= k->fd_end) {
		*avail = 0;
		return 0;
	}
	if (want > k->fd_end - off)
		want = (size_t)(k->fd_end - off);
	if (off < k->boff || off + want > k->boff + k->blen) {
		n = want < BLOCK ? BLOCK : want;
		if (n > k->fd_end - off)
			n = (size_t)(k->fd_end - off);
		if (n > k->cap) {
			char *nb = realloc(k->buf, n);
			if (!nb)
				return es_fail(err, ES_IO, "out of memory");
			k->buf = nb;
			k->cap = n;
		}
		k->blen = 0;
		if (es_pread_full(k->fd, k->buf, n, (off_t)off) != (ssize_t)n)
			return es_fail_errno(err, ES_IO, "cannot read 'log/%020llu.ndjson'",
					     (unsigned long long)k->segs[i]);
		k->boff = off;
		k->blen = n;
	}
	*p = k->buf + (off - k->boff);
	*avail = (size_t)(k->boff + k->blen - off);
	return 0;
}

/* The line starting at off in segment i, without its '\n'. */
static int line_at(struct es_seek *k, size_t i, uint64_t off, const char **line, size_t *len,
		   struct es_error *err)
{
	size_t want = BLOCK, avail;
	const char *p, *nl;

	for (;;) {
		if (load(k, i, off, want, &p, &avail, err))
			return err->code;
		nl = memchr(p, '\n', avail);
		if (nl) {
			*line = p;
			*len = (size_t)(nl - p);
			return 0;
		}
		if (off + avail >= k->fd_end)
			return bad(k, i, off, "record without a final newline", err);
		if (want > ES_LINE_MAX_DEFAULT)
			return bad(k, i, off, "line too long", err);
		want *= 4;
	}
}

/* The envelope of the record whose line starts at off; *len its length. */
static int rec_at(struct es_seek *k, size_t i, uint64_t off, struct es_rec *r, size_t *len,
		  struct es_error *err)
{
	const char *line, *why;

	if (line_at(k, i, off, &line, len, err))
		return err->code;
	k->probes++;
	if (es_rec_parse(line, *len, 0, r, &why) != 0)
		return bad(k, i, off, why, err);
	return 0;
}

/* The first line start at or after mid, or lim when none is below lim. */
static int line_start_from(struct es_seek *k, size_t i, uint64_t mid, uint64_t lim,
			   uint64_t *s, struct es_error *err)
{
	uint64_t at = mid ? mid - 1 : 0;
	const char *p, *nl;
	size_t avail;

	if (mid == 0) {
		*s = 0;
		return 0;
	}
	while (at < lim) {
		if (load(k, i, at, BLOCK, &p, &avail, err))
			return err->code;
		if (avail == 0)
			break;
		if (avail > lim - at)
			avail = (size_t)(lim - at);
		nl = memchr(p, '\n', avail);
		if (nl) {
			*s = at + (uint64_t)(nl - p) + 1;
			return 0;
		}
		at += avail;
	}
	*s = lim;
	return 0;
}

/* In segment i, whose first record does not satisfy key: the offset of the
 * first record that does, or the segment's end. See timeseek.h. */
static int bisect(struct es_seek *k, size_t i, const struct key *key, uint64_t *found,
		  struct es_error *err)
{
	uint64_t lo = 0, hi, top, s = 0, off;
	struct es_rec r;
	size_t len;

	if (open_seg(k, i, err))
		return err->code;
	hi = top = k->fd_end;
	if (hi == 0) {
		*found = 0;
		return 0;
	}
	while (top - lo > LINEAR) {
		uint64_t mid = lo + (top - lo) / 2;
		if (line_start_from(k, i, mid, hi, &s, err))
			return err->code;
		if (s >= hi) {
			top = mid; /* no line starts in [mid, hi) */
			continue;
		}
		if (rec_at(k, i, s, &r, &len, err))
			return err->code;
		if (holds(key, &r))
			hi = top = s;
		else
			lo = s;
	}
	for (off = lo;;) {
		const char *line;
		if (line_at(k, i, off, &line, &len, err))
			return err->code;
		off += len + 1;
		if (off >= hi)
			break;
		if (rec_at(k, i, off, &r, &len, err))
			return err->code;
		if (holds(key, &r))
			break;
	}
	*found = off < hi ? off : hi;
	return 0;
}

/* Whether segment i's first record satisfies key (an empty segment counts
 * as satisfying it: nothing in it comes before the answer). */
static int first_holds(struct es_seek *k, size_t i, const struct key *key, int *h,
		       struct es_error *err)
{
	struct es_rec r;
	size_t len;

	if (key->kind == SEQ_GE) {
		*h = k->segs[i] >= key->seq; /* segments are named by their first seq */
		return 0;
	}
	if (open_seg(k, i, err))
		return err->code;
	if (k->fd_end == 0) {
		*h = 1;
		return 0;
	}
	if (rec_at(k, i, 0, &r, &len, err))
		return err->code;
	*h = holds(key, &r);
	return 0;
}

static int fill_pos(struct es_seek *k, size_t i, uint64_t off, struct es_seek_pos *pos,
		    struct es_error *err)
{
	struct es_rec r;
	size_t len;

	if (rec_at(k, i, off, &r, &len, err))
		return err->code;
	pos->seg = k->segs[i];
	pos->off = off;
	pos->seq = r.seq;
	pos->prev_seq = r.seq - 1; /* seq is gapless */
	pos->at_end = 0;
	return 0;
}

static int seek_log(struct es_seek *k, const struct key *key, struct es_seek_pos *pos,
		    struct es_error *err)
{
	size_t l = 0, h = k->nsegs;
	uint64_t found = 0;
	int hold = 0;

	memset(pos, 0, sizeof(*pos));
	/* The first segment whose first record satisfies key. */
	while (l < h) {
		size_t m = l + (h - l) / 2;
		if (first_holds(k, m, key, &hold, err))
			return err->code;
		if (hold)
			h = m;
		else
			l = m + 1;
	}
	if (l > 0) {
		if (bisect(k, l - 1, key, &found, err))
			return err->code;
		if (found < k->fd_end)
			return fill_pos(k, l - 1, found, pos, err);
	}
	/* The answer is the first record of segment l, if it has one. */
	for (; l < k->nsegs; l++) {
		if (open_seg(k, l, err))
			return err->code;
		if (k->fd_end > 0)
			return fill_pos(k, l, 0, pos, err);
	}
	pos->at_end = 1;
	/* (not es_seek_last_seq: a segment gone is seek_again's to retry,
	 * from a new listing, the whole search and its `older` with it) */
	return last_seq(k, &pos->prev_seq, err);
}

/* Whether no record before log/'s first segment satisfies key: the
 * archive, as the MANIFEST read with the listing has it, ends right
 * before that segment with an archived segment (not a purge anchor,
 * whose record is gone: readers position on the record before the
 * answer), and its last record does not satisfy key (seq and ts only
 * grow, so no earlier one does). */
static int archive_below(const struct es_seek *k, const struct key *key, uint64_t first)
{
	const struct es_archive *a = k->store->archive;
	struct es_rec last;

	if (!a || a->n == 0 || a->segs[a->n - 1].last_seq != first - 1)
		return 0;
	memset(&last, 0, sizeof(last));
	last.seq = a->segs[a->n - 1].last_seq;
	last.ts = a->segs[a->n - 1].last_ts;
	return !holds(key, &last);
}

static int seek(struct es_seek *k, const struct key *key, struct es_seek_pos *pos,
		struct es_error *err)
{
	uint64_t first = k->nsegs ? k->segs[0] : 1;

	if (seek_log(k, key, pos, err))
		return err->code;
	/* Nothing of log/ comes before the answer, and log/ does not hold the
	 * start of the log: what came before it is not searched here, unless
	 * the MANIFEST says it holds no answer. */
	pos->older = first > 1 && pos->prev_seq < first && !archive_below(k, key, first);
	return 0;
}

/* The last seq with ts <= ts, by reading the log from its start. */
static int scan_seq_at(struct es_seek *k, const char ts[ES_TS_LEN + 1], uint64_t *seq,
		       struct es_error *err)
{
	struct es_log lg;
	const char *line;
	size_t len;
	struct es_rec r;
	int n = 0;

	*seq = 0;
	if (es_log_open_store(&lg, k->store, 0, err) == 0) {
		while ((n = es_log_next(&lg, &line, &len, &r, 0, err)) == 1 &&
		       memcmp(r.ts, ts, ES_TS_LEN) <= 0)
			*seq = r.seq;
	} else {
		n = -err->code;
	}
	es_log_close(&lg);
	return n < 0 ? -n : 0;
}

/* Readers take no lock: a segment listed may be archived before it is
 * read. Then list again (the archive's MANIFEST names it by then) and
 * search again; a few times at most. */
static int relist(struct es_seek *k, int *tries, struct es_error *err)
{
	struct es_store *s = k->store;

	if (!k->gone || ++*tries > 8)
		return 0;
	es_error_clear(err);
	es_seek_release(k);
	return es_seek_init(k, s, err) == 0;
}

/* rc of the last try; err->code once relisting failed */
static int seek_again(struct es_seek *k, const struct key *key, struct es_seek_pos *pos,
		      struct es_error *err)
{
	int rc, tries = 0;

	while ((rc = seek(k, key, pos, err)) != 0 && relist(k, &tries, err))
		;
	return rc && err->code ? err->code : rc;
}

int es_seek_time(struct es_seek *k, const char ts[ES_TS_LEN + 1], int strict,
		 struct es_seek_pos *pos, struct es_error *err)
{
	struct key key = {strict ? TS_GT : TS_GE, ts, 0};

	return seek_again(k, &key, pos, err);
}

int es_seek_seq(struct es_seek *k, uint64_t seq, struct es_seek_pos *pos,
		struct es_error *err)
{
	struct key key = {SEQ_GE, NULL, seq};

	return seek_again(k, &key, pos, err);
}

int es_seek_seq_at(struct es_seek *k, const char ts[ES_TS_LEN + 1], uint64_t *seq,
		   struct es_error *err)
{
	struct es_seek_pos pos;

	if (es_seek_time(k, ts, 1, &pos, err))
		return err->code;
	if (pos.older)
		return scan_seq_at(k, ts, seq, err);
	*seq = pos.prev_seq;
	return 0;
}

int es_seek_last_seq(struct es_seek *k, uint64_t *seq, struct es_error *err)
{
	int rc, tries = 0;

	while ((rc = last_seq(k, seq, err)) != 0 && relist(k, &tries, err))
		;
	return rc && err->code ? err->code : rc;
}

static int last_seq(struct es_seek *k, uint64_t *seq, struct es_error *err)
{
	*seq = 0;
	for (size_t i = k->nsegs; i-- > 0;) {
		uint64_t start;
		size_t want = BLOCK, avail;
		const char *p, *nl;
		struct es_rec r;
		size_t len;
		if (open_seg(k, i, err))
			return err->code;
		if (k->fd_end == 0)
			continue;
		/* The last line: after the last '\n' before the final one. */
		for (;;) {
			start = k->fd_end > want ? k->fd_end - want : 0;
			if (load(k, i, start, want, &p, &avail, err))
				return err->code;
			nl = avail >= 2 ? memrchr(p, '\n', avail - 1) : NULL;
			if (nl || start == 0)
				break;
			if (want > ES_LINE_MAX_DEFAULT)
				return bad(k, i, start, "line too long", err);
			want *= 4;
		}
		start = nl ? start + (uint64_t)(nl - p) + 1 : 0;
		if (rec_at(k, i, start, &r, &len, err))
			return err->code;
		*seq = r.seq;
		return 0;
	}
	/* No record in log/: all of it before its first segment, named by its
	 * first seq, is archived (or purged). */
	if (k->nsegs > 0)
		*seq = k->segs[0] - 1;
	return 0;
}
