#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "io.h"
#include "json.h"
#include "reducer.h"

/* A name given on the command line must be one that could be stored. */
static int check_name(const char *what, const char *s, struct es_error *err)
{
	json_t *j;

	if (strlen(s) > ES_NAME_MAX)
		return es_fail(err, ES_USAGE, "--%s: longer than %d bytes, so in no store", what,
			       ES_NAME_MAX);
	errno = 0;
	j = json_string(s);
	if (!j && errno == ENOMEM) /* not a bad name: no memory to check it */
		return es_fail(err, ES_IO, "out of memory");
	if (!j)
		return es_fail(err, ES_USAGE, "--%s: '%s' is not valid UTF-8", what, s);
	json_decref(j);
	return 0;
}

static int add_lit(struct es_buf **v, size_t *n, const char *what, const char *s,
		   struct es_error *err)
{
	struct es_buf *nv;

	if (check_name(what, s, err))
		return err->code;
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return es_fail(err, ES_IO, "out of memory");
	*v = nv;
	memset(&nv[*n], 0, sizeof(nv[*n]));
	if (es_json_add_string(&nv[*n], s, strlen(s))) {
		es_buf_release(&nv[*n]); /* (not counted in *n yet) */
		return es_fail(err, ES_IO, "out of memory");
	}
	(*n)++;
	return 0;
}

static int sel_init(struct es_sel *sel, const struct es_common *c, struct es_error *err)
{
	memset(sel, 0, sizeof(*sel));
	for (size_t i = 0; i < c->nstreams; i++)
		if (add_lit(&sel->streams, &sel->nstreams, "stream", c->streams[i], err))
			return err->code;
	for (size_t i = 0; i < c->ntypes; i++)
		if (add_lit(&sel->types, &sel->ntypes, "type", c->types[i], err))
			return err->code;
	if (c->category) {
		if (check_name("category", c->category, err))
			return err->code;
		if (es_json_add_string(&sel->category, c->category, strlen(c->category)))
			return es_fail(err, ES_IO, "out of memory");
		sel->category.len--; /* drop the closing quote: a prefix */
		sel->has_category = 1;
	}
	sel->from_seq = c->from_seq;
	sel->to_seq = c->to_seq;
	if (c->since != INT64_MIN) {
		es_ts_format(c->since, sel->since);
		sel->has_since = 1;
	}
	if (c->until != INT64_MAX) {
		es_ts_format(c->until, sel->until);
		sel->has_until = 1;
	}
	return 0;
}

int es_sel_init(struct es_sel *sel, const struct es_common *c, struct es_error *err)
{
	int rc = sel_init(sel, c, err);

	if (rc)
		es_sel_release(sel);
	return rc;
}

void es_sel_release(struct es_sel *sel)
{
	for (size_t i = 0; i < sel->nstreams; i++)
		es_buf_release(&sel->streams[i]);
	for (size_t i = 0; i < sel->ntypes; i++)
		es_buf_release(&sel->types[i]);
	free(sel->streams);
	free(sel->types);
	es_buf_release(&sel->category);
	memset(sel, 0, sizeof(*sel));
}

static int in_lits(const struct es_buf *v, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].len == len && memcmp(v[i].p, s, len) == 0)
			return 1;
	return 0;
}

int es_sel_match_stream(const struct es_sel *sel, const struct es_rec *r)
{
	if (sel->nstreams && !in_lits(sel->streams, sel->nstreams, r->stream, r->stream_len))
		return 0;
	if (sel->has_category && (r->stream_len < sel->category.len ||
				  memcmp(r->stream, sel->category.p, sel->category.len) != 0))
		return 0;
	return 1;
}

int es_sel_match(const struct es_sel *sel, const struct es_rec *r)
{
	if (r->seq < sel->from_seq || r->seq > sel->to_seq)
		return 0;
	if (!es_sel_match_stream(sel, r))
		return 0;
	if (sel->ntypes && !in_lits(sel->types, sel->ntypes, r->type, r->type_len))
		return 0;
	if (sel->has_since && memcmp(r->ts, sel->since, ES_TS_LEN) < 0)
		return 0;
	if (sel->has_until && memcmp(r->ts, sel->until, ES_TS_LEN) > 0)
		return 0;
	return 1;
}

static uint64_t fsize(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int visible_end(struct es_store *s, uint64_t seg, uint64_t *end, struct es_error *err);

/* Writers hold the lock from their write to their fdatasync (or to cutting
 * a failed batch back), so a shared lock while the end is found keeps
 * readers from seeing a batch that is not durable yet. A reader that cannot
 * open the lock file (a read-only copy of a store) goes without. */
int es_store_visible_end(struct es_store *s, uint64_t seg, uint64_t *end, struct es_error *err)
{
	char path[PATH_MAX];
	int fd = -1, rc;

	if (!s->locked) {
		snprintf(path, sizeof(path), "%s/lock", s->dir);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		while (fd >= 0 && flock(fd, LOCK_SH) != 0 && errno == EINTR)
			;
	}
	rc = visible_end(s, seg, end, err);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Whether segment seg has left log/ (es-archive moved it). */
static int seg_gone(struct es_store *s, uint64_t seg)
{
	char path[PATH_MAX];
	struct stat sb;

	es_store_seg_path(s, seg, path, sizeof(path));
	return stat(path, &sb) != 0 && errno == ENOENT;
}

int es_store_list_tail(struct es_store *s, uint64_t *end, struct es_error *err)
{
	for (int tries = 0;; tries++) {
		*end = 0;
		if (es_store_list_segments(s, err))
			return err->code;
		if (s->nsegs == 0 || es_store_visible_end(s, s->segs[s->nsegs - 1], end, err) == 0)
			return 0;
		/* archived since the listing (sealed first: a new one follows) */
		if (tries == 16 || !seg_gone(s, s->segs[s->nsegs - 1]))
			return err->code;
		es_error_clear(err);
	}
}

static int visible_end(struct es_store *s, uint64_t seg, uint64_t *end, struct es_error *err)
{
	char path[PATH_MAX], *buf = NULL;
	size_t block = 1 << 16;
	uint64_t hi;
	int fd, rc = 0;

	es_store_seg_path(s, seg, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	*end = 0;
	hi = fsize(fd);
	/* Walk back line by line to the last record that closes a batch. */
	while (hi > 0) {
		uint64_t lo = hi > block ? hi - block : 0;
		size_t n = (size_t)(hi - lo), e;
		char *nb = realloc(buf, n + 1);
		if (!nb) {
			rc = es_fail(err, ES_IO, "out of memory");
			break;
		}
		buf = nb;
		if (es_pread_full(fd, buf, n, (off_t)lo) != (ssize_t)n) {
			rc = es_fail_errno(err, ES_IO, "cannot read '%s'", path);
			break;
		}
		e = n;
		while (e > 0 && buf[e - 1] != '\n')
			e--; /* a torn last line is not part of the log */
		while (e > 0) {
			char *nl = e >= 2 ? memrchr(buf, '\n', e - 1) : NULL;
			size_t st = nl ? (size_t)(nl - buf) + 1 : 0;
			struct es_rec r;
			const char *why;
			if (!nl && lo > 0)
				break; /* this line starts before the block */
			if (es_rec_parse(buf + st, e - 1 - st, 0, &r, &why) == 0 && !r.more) {
				*end = lo + e;
				goto out;
			}
			e = st;
		}
		if (lo == 0)
			break;
		if (lo + e == hi)
			block *= 2; /* one line longer than the block */
		hi = lo + e;
	}
out:
	free(buf);
	close(fd);
	return rc;
}

static void close_input(struct es_log *lg)
{
	if (lg->in_open) {
		es_input_close(&lg->in);
		lg->in_open = 0;
	}
}

/* Open the archived segment named seq, from byte `start` of the original:
 * 1 opened, 0 when no archived segment starts there, or -(status). */
static int open_archived(struct es_log *lg, uint64_t seq, uint64_t start, struct es_error *err)
{
	const struct es_archive_seg *e = es_archive_find(lg->store->archive, seq);
	const char *line;
	size_t len;
	uint64_t off;
	int rc;

	if (!e)
		return 0;
	if (es_archive_rd_open(&lg->ard, lg->store->dir, e, 0, err))
		return -err->code;
	lg->seg = seq;
	lg->limit = UINT64_MAX;
	lg->arc_seq = e->last_seq + 1; /* where to go on from its end */
	while (start > 0 && (rc = es_archive_rd_next(lg->ard, &line, &len, &off, err)) != 0) {
		if (rc < 0)
			return rc;
		if (off + len + 1 >= start)
			break;
	}
	return 1;
}

/* The archived segment to read first for from_seq; 0: none. */
static uint64_t first_archived(const struct es_archive *a, uint64_t from_seq)
{
	const struct es_archive_seg *e = es_archive_find_seq(a, from_seq);

	if (!e && a && a->n > 0 && from_seq < a->segs[0].first_seq)
		e = &a->segs[0];
	return e ? e->first_seq : 0;
}

/* Open store segment seg_i at byte offset start. */
static int open_segment(struct es_log *lg, uint64_t start, struct es_error *err)
{
	struct es_store *s = lg->store;
	char path[PATH_MAX];
	int fd;

	lg->seg = s->segs[lg->seg_i];
	lg->limit = UINT64_MAX;
	es_store_seg_path(s, lg->seg, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	/* The last listed segment is read up to its visible end; if it was
	 * archived meanwhile it was sealed first, and all of it is visible
	 * (from the open file, or from the archive below). */
	if (fd >= 0 && lg->seg_i + 1 == s->nsegs &&
	    es_store_visible_end(s, lg->seg, &lg->limit, err)) {
		if (!seg_gone(s, lg->seg)) {
			close(fd);
			return err->code;
		}
		es_error_clear(err);
		lg->limit = UINT64_MAX;
	}
	if (fd < 0) {
		int e = errno, rc;
		/* Archived since log/ was listed: read it from the archive. */
		if (e == ENOENT && es_archive_refresh(s, err) == 0 &&
		    (rc = open_archived(lg, lg->seg, start, err)) != 0)
			return rc < 0 ? -rc : 0;
		errno = e;
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	}
	if (lseek(fd, (off_t)start, SEEK_SET) < 0 || es_input_fdopen(&lg->in, fd, "", err)) {
		close(fd);
		return err->code ? err->code : es_fail_errno(err, ES_IO, "%s", path);
	}
	lg->in.owns_fd = 1;
	lg->in.magic_checked = 1;
	lg->in_open = 1;
	lg->seg_start = start;
	lg->off = start;
	return 0;
}

int es_log_open_store(struct es_log *lg, struct es_store *s, uint64_t from_seq,
		      struct es_error *err)
{
	memset(lg, 0, sizeof(*lg));
	lg->store = s;
	lg->from_seq = from_seq;
	if (es_store_list_segments(s, err))
		return err->code;
	es_stop_point("reader-listed");
	/* Archived segments first (archive.h); log/ copies of them are skipped. */
	lg->arc_seq = first_archived(s->archive, from_seq);
	if (s->archive) {
		struct es_head end;
		es_archive_end(s->archive, &end);
		while (lg->seg_i < s->nsegs && s->segs[lg->seg_i] <= end.seq)
			lg->seg_i++;
	}
	/* The segment holding from_seq: the last one named <= from_seq. */
	while (lg->seg_i + 1 < s->nsegs && s->segs[lg->seg_i + 1] <= from_seq)
		lg->seg_i++;
	return 0;
}

int es_log_open_store_at(struct es_log *lg, struct es_store *s, uint64_t seg, uint64_t off,
			 struct es_error *err)
{
	if (es_log_open_store(lg, s, seg, err))
		return err->code;
	if (lg->arc_seq)
		return 0; /* read from the archive, from the segment's start */
	if (lg->seg_i >= s->nsegs || s->segs[lg->seg_i] != seg)
		return es_fail(err, ES_IO, "log/%020llu.ndjson: no such segment",
			       (unsigned long long)seg);
	return open_segment(lg, off, err);
}

int es_log_open_files(struct es_log *lg, char **files, int nfiles, struct es_error *err)
{
	static char *dash[] = {(char *)"-"};

	memset(lg, 0, sizeof(*lg));
	lg->files = nfiles ? files : dash;
	lg->nfiles = nfiles ? nfiles : 1;
	(void)err;
	return 0;
}

void es_log_close(struct es_log *lg)
{
	close_input(lg);
	es_archive_rd_close(lg->ard);
	lg->ard = NULL;
}

static int bad_line(struct es_log *lg, const char *why, struct es_error *err)
{
	if (lg->store)
		return es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: offset %llu: after seq %llu: %s",
			       (unsigned long long)lg->seg, (unsigned long long)lg->off,
			       (unsigned long long)lg->last_seq, why);
	es_fail(err, ES_DATA, "%s", why);
	return es_error_at_line(err, lg->name, (unsigned long long)lg->in.lineno);
}

int es_log_next(struct es_log *lg, const char **line, size_t *len, struct es_rec *r,
		int flags, struct es_error *err)
{
	const char *why;

	for (;;) {
		int rc;
		if (!lg->in_open && !lg->ard) {
			if (lg->store) {
				if (lg->arc_seq) {
					rc = open_archived(lg, lg->arc_seq, 0, err);
					if (rc < 0)
						return rc;
					if (rc == 0)
						lg->arc_seq = 0; /* the archive ends here */
					continue;
				}
				if (lg->seg_i >= lg->store->nsegs)
					return 0;
				if (open_segment(lg, 0, err))
					return -err->code;
			} else {
				if (lg->fi >= lg->nfiles)
					return 0;
				lg->name = lg->files[lg->fi++];
				if (es_input_open(&lg->in, lg->name, err))
					return -err->code;
				lg->in_open = 1;
			}
		}
		if (lg->ard) {
			rc = es_archive_rd_next(lg->ard, line, len, &lg->off, err);
			if (rc < 0)
				return rc;
			if (rc > 0)
				goto got_line;
			/* Go on after it: the next archived segment, or log/. */
			es_archive_rd_close(lg->ard);
			lg->ard = NULL;
			while (lg->seg_i < lg->store->nsegs && lg->store->segs[lg->seg_i] < lg->arc_seq)
				lg->seg_i++;
			continue;
		}
		rc = es_input_next(&lg->in, line, len, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			if (lg->store && lg->seg_i + 1 >= lg->store->nsegs) {
				/* stay on the active segment, for es_log_refresh */
				return 0;
			}
			close_input(lg);
			lg->seg_i++;
			continue;
		}
		if (lg->store) {
			lg->off = lg->seg_start + lg->in.offset;
			if (lg->off >= lg->limit) {
				/* past the last complete batch: not visible (yet) */
				return 0;
			}
		}
got_line:
		if (*len == 0 && !lg->store)
			continue;
		if (es_rec_parse(*line, *len, flags, r, &why) != 0)
			return -bad_line(lg, why, err);
		/* (in a store, seq only grows: a segment met twice, in log/ and
		 * in the archive, is not read twice) */
		if (r->seq < lg->from_seq || (lg->store && r->seq <= lg->last_seq))
			continue;
		lg->last_seq = r->seq;
		lg->bytes += *len + 1;
		return 1;
	}
}

int es_log_refresh(struct es_log *lg, struct es_error *err)
{
	struct es_store *s = lg->store;
	uint64_t at;

	if (!s)
		return 0;
	/* Where the next unread line starts in the current segment. */
	at = lg->in_open ? lg->seg_start + lg->in.consumed : 0;
	if (lg->in_open && lg->off >= lg->limit)
		at = lg->off; /* the line we stopped at was not visible */
	if (es_store_list_segments(s, err))
		return -err->code;
	/* Segments archived meanwhile left log/: find ours again by name, or
	 * in the archive. */
	for (lg->seg_i = 0; lg->seg_i < s->nsegs && s->segs[lg->seg_i] < lg->seg; lg->seg_i++)
		;
	if (lg->in_open && (lg->seg_i == s->nsegs || s->segs[lg->seg_i] != lg->seg)) {
		int rc;
		close_input(lg);
		rc = open_archived(lg, lg->seg, at, err);
		return rc < 0 ? rc : 1;
	}
	close_input(lg);
	if (lg->seg_i < s->nsegs && s->segs[lg->seg_i] == lg->seg) {
		uint64_t end;
		if (lg->seg_i + 1 < s->nsegs) {
			/* rolled: finish this segment, then go on */
			return open_segment(lg, at, err) ? -err->code : 1;
		}
		if (es_store_visible_end(s, lg->seg, &end, err))
			return -err->code;
		if (open_segment(lg, at, err))
			return -err->code;
		return end > at;
	}
	return lg->seg_i < s->nsegs;
}

static int index_check(struct es_store *s, struct es_error *err);

/* Asked once per handle: a reader looks at one moment of the log, and
 * checking the tail again for every stream of a category would cost. */
int es_store_index_ready(struct es_store *s, struct es_error *err)
{
	int rc;

	if (s->index_state)
		return s->index_state == 1 ? 0 : 1;
	rc = index_check(s, err);
	if (rc == 0 || rc == 1)
		s->index_state = rc == 0 ? 1 : 2;
	return rc;
}

static int index_check(struct es_store *s, struct es_error *err)
{
	struct es_head ih;
	uint64_t end = 0, last = 0;
	int have = 0;

	if (es_store_list_tail(s, &end, err))
		return err->code;
	if (s->nsegs > 0)
		last = s->segs[s->nsegs - 1];
	if (s->index && es_index_begin(s->index, 0, err) == 0) {
		have = es_index_get_head(s->index, &ih) == 0;
		es_index_abort(s->index);
		if (have && ((s->nsegs == 0 && ih.seq == 0) ||
			     (ih.seg == last && ih.end == end && ih.seq > 0)))
			return 0;
		/* everything archived, the active segment empty (archive.h) */
		if (have && end == 0 && (s->nsegs == 0 || last == ih.seq + 1) &&
		    es_archive_head_matches(s, &ih))
			return 0;
		if (have && end == 0 && s->nsegs >= 2 && ih.seg == s->segs[s->nsegs - 2]) {
			/* a fresh empty segment after a roll */
			char path[PATH_MAX];
			struct stat st;
			es_store_seg_path(s, ih.seg, path, sizeof(path));
			if (stat(path, &st) == 0 && (uint64_t)st.st_size == ih.end)
				return 0;
		}
	}
	/* Behind or missing: let a writer's recovery bring it up to date. */
	if (es_store_open_index(s, 1, err) || es_store_lock(s, err)) {
		s->index_why = *err;
		es_error_clear(err);
		es_store_open_index(s, 0, err);
		es_error_clear(err);
		return 1;
	}
	es_store_unlock(s);
	return 0;
}

struct scan_stream {
	struct es_buf lit;
	uint64_t from, to;
};

int es_store_read_stream(struct es_store *s, const char *stream, size_t slen, uint64_t from,
			 uint64_t to, int reverse, es_line_cb cb, void *arg, struct es_error *err)
{
	char *buf = NULL;
	size_t cap = 0;
	uint64_t cur;
	int rc, stop = 0;

	rc = es_store_index_ready(s, err);
	if (rc < 0 || rc > 1)
		return rc;
	if (rc == 1) {
		/* No usable index: scan the log. */
		struct es_buf lit = ES_BUF_INIT;
		struct es_log lg;
		const char *line;
		size_t len;
		struct es_rec r;
		int n;
		if (reverse)
			return es_fail(err, ES_IO, "--reverse needs the index, which cannot be opened");
		if (es_json_add_string(&lit, stream, slen))
			return es_fail(err, ES_IO, "out of memory");
		rc = es_log_open_store(&lg, s, 0, err);
		while (rc == 0 && (n = es_log_next(&lg, &line, &len, &r, ES_REC_BODY, err)) == 1) {
			if (r.stream_len != lit.len || memcmp(r.stream, lit.p, lit.len) != 0 ||
			    r.version < from || r.version > to)
				continue;
			if (cb(arg, line, len, &r))
				break;
		}
		if (rc == 0 && n < 0)
			rc = -n;
		es_log_close(&lg);
		es_buf_release(&lit);
		return rc;
	}
	if (es_index_begin(s->index, 0, err))
		return err->code;
	if (es_index_version(s->index, stream, slen, &cur) != 0) {
		es_index_abort(s->index);
		return es_fail(err, ES_IO, "index: read error");
	}
	if (to > cur)
		to = cur;
	if (from < 1)
		from = 1;
	for (uint64_t i = 0; from <= to && i <= to - from && !stop; i++) {
		uint64_t v = reverse ? to - i : from + i;
		struct es_pos pos;
		struct es_rec r;
		const char *why;
		int gp = es_index_get_pos(s->index, stream, slen, v, &pos);
		if (es_archive_pos_purged(s, gp, &pos))
			continue;
		if (gp != 0) {
			rc = es_fail(err, ES_CORRUPT, "index: no position for version %llu",
				     (unsigned long long)v);
			break;
		}
		if ((rc = es_store_read_pos(s, &pos, &buf, &cap, err)) != 0)
			break;
		if (es_rec_parse(buf, pos.len - 1, ES_REC_BODY, &r, &why) != 0 || r.seq != pos.seq ||
		    r.version != v) {
			rc = es_fail(err, ES_CORRUPT,
				     "log/%020llu.ndjson: offset %llu: seq %llu: not the record the index names",
				     (unsigned long long)pos.seg, (unsigned long long)pos.off,
				     (unsigned long long)pos.seq);
			break;
		}
		stop = cb(arg, buf, pos.len - 1, &r);
	}
	es_index_abort(s->index);
	free(buf);
	return rc;
}

/* A stream to print, with what orders it. */
struct slot {
	const struct es_buf *stream;
	size_t rank, i;
};

/* Names compare as the index orders them, by their decoded bytes: the
 * escaped literals would put "a\n" after "a[" (the '\\' is 0x5c). */
static int by_slot(const void *x, const void *y)
{
	const struct slot *p = x, *q = y;

	if (p->rank != q->rank)
		return p->rank < q->rank ? -1 : 1;
	return es_json_lit_cmp(p->stream->p, p->stream->len, q->stream->p, q->stream->len);
}

void es_foldset_order(const struct es_sel *sel, const struct es_foldset *fs, size_t *idx, size_t n)
{
	struct slot *v;

	if (!sel->nstreams && !sel->has_category)
		return;
	if (!(v = malloc((n ? n : 1) * sizeof(*v))))
		return; /* out of memory: keep the order of appearance */
	for (size_t k = 0; k < n; k++) {
		const struct es_fold *f = &fs->f[idx[k]];
		v[k].stream = &f->stream;
		v[k].i = idx[k];
		v[k].rank = 0;
		for (size_t r = 0; r < sel->nstreams; r++)
			if (sel->streams[r].len == f->stream.len &&
			    memcmp(sel->streams[r].p, f->stream.p, f->stream.len) == 0)
				v[k].rank = r;
	}
	qsort(v, n, sizeof(*v), by_slot);
	for (size_t k = 0; k < n; k++)
		idx[k] = v[k].i;
	free(v);
}
