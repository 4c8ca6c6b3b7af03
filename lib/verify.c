/* verify.c: the checks behind es-verify (see verify.h and es-verify(1)).
 *
 * The log is checked in units: one unit per store segment, or one per
 * input file. A unit is read sequentially (es_input) and every line goes
 * through check_record(). Serially, the chain state flows from one unit to
 * the next. With jobs > 1 the units of a store run on threads: each starts
 * from the stored hash of the previous segment's last record (read first),
 * and keeps its own stream -> version map, which is stitched onto the
 * global one in log order afterwards, so a version gap across a segment
 * boundary is still found and located at the record that shows it.
 */
#include "verify_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "buf.h"
#include "index.h"
#include "input.h"
#include "io.h"
#include "json.h"
#include "reader.h"
#include "record.h"
#include "reducer.h"
#include "strmap.h"
#include "snapshot.h"
#include "store.h"
#include "timeq.h"

#define PROGRESS_STEP (8u << 20)  /* bytes between progress calls */

/* ---- stream -> version map (its types: verify_int.h) ---- */

static int vmap_grow(struct vmap *m)
{
	size_t ncap = m->cap ? 2 * m->cap : 1024;
	/* (es_zalloc: calloc's fresh pages faulted one at a time were 4% of a
	 * whole-store verify of 50k streams) */
	struct vent *ne = es_zalloc(ncap * sizeof(*ne));

	if (!ne)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;
		if (!m->e[i].used)
			continue;
		for (j = m->e[i].h & (ncap - 1); ne[j].used; j = (j + 1) & (ncap - 1))
			;
		ne[j] = m->e[i];
	}
	free(m->e);
	m->e = ne;
	m->cap = ncap;
	return 0;
}

/* The entry for key, created (zeroed) when new. NULL when out of memory.
 * The pointer is valid until the next call. */
static struct vent *vmap_get_h(struct vmap *m, const char *k, size_t n, uint64_t h, int *isnew)
{
	size_t i;

	if ((m->n + 1) * 4 > m->cap * 3 && vmap_grow(m))
		return NULL;
	for (i = h & (m->cap - 1); m->e[i].used; i = (i + 1) & (m->cap - 1)) {
		struct vent *e = &m->e[i];
		if (vent_is(m, e, k, n, h)) {
			*isnew = 0;
			return e;
		}
	}
	size_t off = m->keys.len;
	if (es_buf_add(&m->keys, k, n))
		return NULL;
	memset(&m->e[i], 0, sizeof(m->e[i]));
	m->e[i].h = h;
	m->e[i].key = off;
	m->e[i].klen = n;
	m->e[i].used = 1;
	m->n++;
	*isnew = 1;
	return &m->e[i];
}

static struct vent *vmap_get(struct vmap *m, const char *k, size_t n, int *isnew)
{
	return vmap_get_h(m, k, n, es_strmap_hash(k, n), isnew);
}

/* Start loading the slot of key hash h: hidden behind the record's hash. */
static void vmap_prefetch(const struct vmap *m, uint64_t h)
{
	if (m->cap)
		__builtin_prefetch(&m->e[h & (m->cap - 1)]);
}

static void vmap_release(struct vmap *m)
{
	free(m->e);
	es_buf_release(&m->keys);
	memset(m, 0, sizeof(*m));
}

static void progress(struct run *R, uint64_t add)
{
	uint64_t d = atomic_fetch_add(&R->done, add) + add;

	if (!R->o->progress)
		return;
	pthread_mutex_lock(&R->plock);
	if (d >= R->reported + PROGRESS_STEP || (R->total && d >= R->total)) {
		R->reported = d;
		R->o->progress(R->o->progress_arg, d, R->total);
	}
	pthread_mutex_unlock(&R->plock);
}

/* A failure's reasons, joined with "; ". */
struct why {
	char s[900];
	size_t n;
};

static void __attribute__((format(printf, 2, 3))) why_add(struct why *w, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (w->n >= sizeof(w->s) - 3)
		return;
	if (w->n) {
		memcpy(w->s + w->n, "; ", 3);
		w->n += 2;
	}
	va_start(ap, fmt);
	k = vsnprintf(w->s + w->n, sizeof(w->s) - w->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		w->n += (size_t)k < sizeof(w->s) - w->n ? (size_t)k : sizeof(w->s) - w->n - 1;
}

static void check_version(struct unit *u, const struct es_rec *r, uint64_t off, size_t len,
			  const char *k, size_t n, uint64_t h, struct why *w)
{
	/* The batch of this line, by its place in the log (not by the seq it
	 * claims: a torn tail may repeat an old record). */
	const struct vstate *st = &u->st;
	uint64_t batch = st->in_batch ? st->batch_seq : st->seq + 1;
	int isnew;
	struct vent *e;

	e = vmap_get_h(u->map, k, n, h, &isnew);
	if (!e) {
		u->fail.oom = 1;
		return;
	}
	if (!isnew && e->batch != batch) {
		/* the stream's first event in this batch: what it had is what
		 * the index has, until this batch closes */
		e->closed_v = e->last_v;
		e->closed = e->last;
	}
	e->batch = batch;
	if (isnew) {
		e->first_v = r->version;
		e->first_seq = r->seq;
		e->first_off = off;
		e->checked = u->map->complete;
		if (e->checked && r->version != 1)
			why_add(w, "stream '%.*s': version %llu is its first event (expected 1)",
				(int)n, k, (unsigned long long)r->version);
	} else if (r->version != e->last_v + 1) {
		why_add(w, "stream '%.*s': version %llu follows %llu", (int)n, k,
			(unsigned long long)r->version, (unsigned long long)e->last_v);
	}
	e->last_v = r->version;
	e->last.seq = r->seq;
	e->last.seg = u->segno;
	e->last.off = off;
	e->last.len = (uint32_t)(len + 1);
	u->digest += pos_term(h, r->version, &e->last);
}

/* The cheap part of well-formedness for what follows the envelope:
 * "data": starts an object and the body before the hash (and "more")
 * closes one. */
static int body_ends_ok(const char *line, const struct es_rec *r)
{
	const char *p = r->id + r->id_len, *end = line + r->body_len - (r->more ? 12 : 0);

	if (r->schema || (end - p > 10 && memcmp(p, ",\"schema\":", 10) == 0))
		for (p += 10; p < end && *p >= '0' && *p <= '9'; p++)
			;
	p += 8; /* ,"data": (checked by es_rec_parse) */
	return end - p >= 2 && *p == '{' && end[-1] == '}';
}

/* Check one line; findings go to out. Returns 1 when it failed. */
static int check_record(struct run *R, struct unit *u, struct es_chain *chain, const char *line,
			size_t len, uint64_t off, int no_eol, int had_cr, struct es_ilist *out,
			struct es_buf *scratch)
{
	struct vstate *st = &u->st;
	struct why w;
	struct es_rec r;
	const char *why;

	w.n = 0; /* not the whole buffer: this runs a million times */
	w.s[0] = '\0';
	if (no_eol && u->store_seg) {
		es_ilist_add(out, u->name, 1, off, st->seq + 1, "incomplete last line (no newline)");
		st->known = 0;
		return 1;
	}
	/* A stored hash that matches the computed one is 64 hex digits: the
	 * separate check is only needed when there is nothing to compare. */
	int hash_ok = -1, key_rc = -1;
	const char *k = NULL;
	size_t kn = 0;
	uint64_t kh = 0;
	if (es_rec_parse(line, len, ES_REC_HEX_LATER | ES_REC_ANY_TS, &r, &why) == 0) {
		/* Start loading the stream's slot: hidden behind the hash. */
		key_rc = stream_key(&r, scratch, &k, &kn);
		if (key_rc == 0) {
			kh = es_strmap_hash(k, kn);
			vmap_prefetch(u->map, kh);
		}
		if (st->known && !u->skip_before)
			hash_ok = es_rec_check(chain, st->hash, line, &r);
		if (hash_ok != 1 && !es_is_hash_hex(r.hash, ES_HASH_HEX)) {
			why = "\"hash\" is not 64 lowercase hex digits";
			hash_ok = -2;
		}
	} else {
		hash_ok = -2;
	}
	if (hash_ok == -2) {
		/* before --from-seq the seqs are not followed: unknown, but
		 * right after the anchor */
		uint64_t at = !u->skip_before ? st->seq + 1 : u->anchor_seen ? u->skip_before : 0;
		es_ilist_add(out, u->name, 1, off, at, "not a well-formed record: %s", why);
		st->known = 0;
		return 1;
	}
	if (u->skip_before) {
		if (r.seq < u->skip_before) {
			/* Before the trusted point: only the anchor's own record counts. */
			int differs = 0;
			if (r.seq + 1 == u->skip_before) {
				u->anchor_seen = 1;
				differs = memcmp(r.hash, R->o->anchor, ES_HASH_HEX) != 0;
				if (differs)
					es_ilist_add(out, u->name, 1, off, r.seq,
						  "hash %.64s differs from the --anchor hash", r.hash);
				memcpy(st->ts, r.ts, ES_TS_LEN);
				st->has_ts = 1;
				st->in_batch = r.more;
				if (!r.more) {
					st->closed.seq = r.seq;
					memcpy(st->closed.hash, R->o->anchor, ES_HASH_HEX + 1);
					st->closed.seg = u->segno;
					st->closed.end = off + len + 1;
				} else {
					st->batch_off = off;
					st->batch_seq = r.seq;
				}
			}
			return differs;
		}
		u->skip_before = 0; /* from here on every record is checked */
	}
	if (had_cr)
		why_add(&w, "carriage return before the newline");
	/* data and meta are not scanned (see es-verify(1)): only where they
	 * start and end; the hash proves the bytes are the writer's. */
	if (!body_ends_ok(line, &r))
		why_add(&w, "\"data\" is not an object");
	if (key_rc != 0) {
		k = NULL;
		why_add(&w, "\"stream\" is not a valid string");
	}
	if (st->known) {
		if (r.seq != st->seq + 1) {
			if (r.seq > st->seq + 1)
				why_add(&w, "seq %llu follows %llu (%llu missing)",
					(unsigned long long)r.seq, (unsigned long long)st->seq,
					(unsigned long long)(r.seq - st->seq - 1));
			else
				why_add(&w, "seq %llu follows %llu", (unsigned long long)r.seq,
					(unsigned long long)st->seq);
		}
		if (hash_ok < 0)
			hash_ok = es_rec_check(chain, st->hash, line, &r);
		if (!hash_ok)
			why_add(&w, "hash mismatch");
	}
	if (u->store_seg && off == 0 && r.seq != u->segno)
		why_add(&w, "first seq %llu does not match the segment name",
			(unsigned long long)r.seq);
	if (!es_ts_stored_ok(r.ts))
		why_add(&w, "\"ts\" is not a valid stored time");
	else if (st->has_ts && memcmp(r.ts, st->ts, ES_TS_LEN) < 0)
		why_add(&w, "ts %.27s is before %.27s", r.ts, st->ts);
	/* The MANIFEST's times are what --purge-before and time seeks go by. */
	if (u->arc && r.seq == u->arc->first_seq && memcmp(r.ts, u->arc->first_ts, ES_TS_LEN) != 0)
		why_add(&w, "ts %.27s, the MANIFEST's first_ts says %s", r.ts, u->arc->first_ts);
	if (u->arc && r.seq == u->arc->last_seq && memcmp(r.ts, u->arc->last_ts, ES_TS_LEN) != 0)
		why_add(&w, "ts %.27s, the MANIFEST's last_ts says %s", r.ts, u->arc->last_ts);
	if (k)
		check_version(u, &r, off, len, k, kn, kh, &w);
	if (R->have_ih && r.seq == R->ih.seq) {
		if (memcmp(r.hash, R->ih.hash, ES_HASH_HEX) != 0)
			u->ih_differs = 1;
		else if (u->segno == R->ih.seg && off + len + 1 == R->ih.end)
			u->ih_seen = 1;
	}
	/* Move on from this record even when it failed: with --all-errors the
	 * next one is checked against its stored hash (re-anchored). */
	st->known = 1;
	st->seq = r.seq;
	memcpy(st->hash, r.hash, ES_HASH_HEX);
	st->hash[ES_HASH_HEX] = '\0';
	memcpy(st->ts, r.ts, ES_TS_LEN);
	st->has_ts = 1;
	if (!st->in_batch) {
		st->batch_off = off;
		st->batch_seq = r.seq;
	}
	st->in_batch = r.more;
	u->records++;
	u->bytes += len + 1;
	if (!r.more) {
		st->closed.seq = r.seq;
		memcpy(st->closed.hash, r.hash, ES_HASH_HEX + 1);
		st->closed.hash[ES_HASH_HEX] = '\0';
		st->closed.seg = u->segno;
		st->closed.end = off + len + 1;
		st->closed.records = u->records;
		st->closed.bytes = u->bytes;
		st->closed.digest = u->digest;
	}
	if (w.n) {
		es_ilist_add(out, u->name, 1, off, r.seq, "%s", w.s);
		return 1;
	}
	return 0;
}

/* Would the next writer's recovery treat damage after `closed` in the
 * active segment as a torn tail although records follow it? Only when
 * the index vouches for a point at or before it (store.c's rule: nothing
 * after the index head was ever acknowledged). */
static int index_vouches(const struct run *R, const struct unit *u, const struct pos *closed)
{
	if (!R->have_ih || R->ih.seq == 0 || R->ih.seq > closed->seq)
		return 0;
	for (size_t i = 0; i < R->nu; i++) {
		const struct unit *x = &R->u[i];
		if (!x->ih_seen)
			continue;
		if (x == u)
			return 1;
		if (i + 1 < R->nu && &R->u[i + 1] == u && R->ih.end == x->size)
			return 1;
	}
	return 0;
}

/* Lines of a unit, read (read(2), through es_input) rather than mapped:
 * on a virtual machine the first touch of each mapped page costs a
 * page-table walk, and es-verify -j 1 of 1M events (416 MB) took 0.85 s
 * with sealed segments mapped (MAP_POPULATE), 0.72 s read; -j 2 0.63 s,
 * 0.54 s. */
struct lines {
	struct es_input in;
	struct es_archive_rd *rd;  /* an archived segment (else in) */
	uint64_t pos;           /* archived: the byte after the last line */
	uint64_t off;           /* offset of the last line returned */
	int no_eol, had_cr;
};

/* u, listed in log/ or in the MANIFEST read at the start, is gone: readers
 * take no lock, and es-archive removes a log/ copy once the MANIFEST lists
 * the archived one, and deletes what it purges once the MANIFEST no longer
 * lists it. Look u up in the MANIFEST as it is now (es_archive_refresh,
 * as readers do in reader.c) and, when it was archived, read it from
 * there. 0 when u now reads the archived copy; -1 when the MANIFEST does
 * not list it (so the log lost it); or a status in err. */
static int relocate(struct run *R, struct unit *u, struct es_error *err)
{
	const struct es_archive_seg *e;
	char name[PATH_MAX + 32], *nn;
	int rc = 0;

	pthread_mutex_lock(&R->arc_lock);
	if (!R->live && !(R->live = calloc(1, sizeof(*R->live)))) {
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	R->live->dir = (char *)R->dir;
	R->live->lock_fd = R->live->active_fd = R->live->read_fd = -1;
	if ((rc = es_archive_refresh(R->live, err)) != 0)
		goto out;
	e = es_archive_find(R->live->archive, u->segno);
	if (!e || u->arc) {
		/* purged meanwhile: what it held cannot be checked any more */
		if (u->segno <= es_archive_purged_seq(R->live))
			rc = es_fail(err, ES_IO, "%s: purged by es-archive while es-verify ran: "
				     "run es-verify again", u->name);
		else
			rc = -1;
		goto out;
	}
	snprintf(name, sizeof(name), "%s/%s", e->dir ? e->dir : ES_ARCHIVE_DIR, e->file);
	u->moved = *e;
	u->moved.file = strdup(e->file);
	u->moved.dir = e->dir ? strdup(e->dir) : NULL;
	nn = strdup(name);
	if (!u->moved.file || (e->dir && !u->moved.dir) || !nn) {
		free(nn);
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	/* (R->u is not moved once the units run: the pointer holds) */
	u->arc = &u->moved;
	u->dir = R->dir;
	free(u->name);
	u->name = nn;
out:
	pthread_mutex_unlock(&R->arc_lock);
	return rc;
}

/* 0, a status in u->err, or -1 when u left log/ unarchived or its
 * archive file is missing (a finding in u->fail). */
static int lines_open(struct run *R, struct unit *u, struct lines *L)
{
	int fd, rc;

	memset(L, 0, sizeof(*L));
	if (u->arc) {
		char path[PATH_MAX];
		struct stat sb;
		rc = es_archive_rd_open(&L->rd, u->dir, u->arc, ES_ARD_SHA256, &u->err);
		es_archive_seg_path(u->dir, u->arc, path, sizeof(path));
		if (rc && stat(path, &sb) != 0 && errno == ENOENT) {
			rc = relocate(R, u, &u->err);
			if (rc < 0) /* still listed: the store lost it */
				es_ilist_add(&u->fail, u->name, 0, 0, u->arc->first_seq, "missing: %s",
					     strerror(ENOENT));
		}
		return rc;
	}
	if (!u->store_seg)
		return es_input_open(&L->in, u->path, &u->err);
	fd = es_open_listed(u->path);
	if (fd < 0) {
		if (errno != ENOENT)
			return es_fail_errno(&u->err, ES_IO, "cannot open '%s'", u->path);
		rc = relocate(R, u, &u->err);
		if (rc < 0) {
			es_ilist_add(&u->fail, u->name, 0, 0, u->segno,
				  "removed from log/ while es-verify ran, and not archived");
			return -1;
		}
		return rc ? rc : lines_open(R, u, L);
	}
	if (es_input_fdopen(&L->in, fd, u->name, &u->err)) {
		close(fd);
		return u->err.code;
	}
	L->in.owns_fd = 1;
	L->in.magic_checked = 1; /* a log segment is plain text */
	return 0;
}

/* 1 with a line, 0 at the end, -(status) on error (in err). */
static int lines_next(struct lines *L, const char **line, size_t *len, struct es_error *err)
{
	int rc;

	if (L->rd) {
		rc = es_archive_rd_next(L->rd, line, len, &L->off, err);
		if (rc == 1)
			L->pos = L->off + *len + 1;
		L->no_eol = L->had_cr = 0;
		return rc;
	}
	rc = es_input_next(&L->in, line, len, err);
	L->off = L->in.offset;
	L->no_eol = L->in.no_eol;
	L->had_cr = L->in.had_cr;
	return rc;
}

/* Where reading stopped (for a read error's offset). */
static uint64_t lines_consumed(const struct lines *L)
{
	return L->rd ? L->pos : L->in.consumed;
}

static void lines_close(struct lines *L)
{
	if (L->rd)
		es_archive_rd_close(L->rd);
	else
		es_input_close(&L->in);
}

/* Whether the incomplete batch at the end of active segment u is a
 * writer's business (es-verify takes no lock, and writers append while it
 * runs): a writer holds the lock now (it is writing, or its recovery is
 * about to cut the tail), or the segment has grown past where the reading
 * ended. A tail a writer left when it died stays as it was, unlocked.
 * Never waits for the lock. */
static int tail_in_progress(const struct run *R, const struct unit *u)
{
	char path[PATH_MAX];
	struct stat sb;
	int fd, busy;

	if (!R->dir || !u->store_seg || !u->read_eof)
		return 0; /* (stopped by damage, such as an over-long line) */
	snprintf(path, sizeof(path), "%s/lock", R->dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	busy = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy || (stat(u->path, &sb) == 0 && (uint64_t)sb.st_size > u->read_end);
}

/* An incomplete batch at the tail of active unit u, from offset off (the
 * batch's first seq): a note when a writer may be at it (live, and
 * tail_in_progress), else a warning, with why when there is one. */
static void incomplete_tail(struct run *R, struct unit *u, int live, uint64_t off, uint64_t seq,
			    const char *why)
{
	if (live && tail_in_progress(R, u))
		es_ilist_add(&R->notes, u->name, 1, off, seq,
			  "a batch was being written at the tail: left to the next run");
	else
		es_ilist_add(&u->warn, u->name, 1, off, seq,
			  "incomplete batch at the tail (recovered by the next append)%s%s",
			  why ? ": " : "", why ? why : "");
}

/* The end of a unit, once every unit ran: batches and tails. */
/* What readers see of u: its records up to closed (the head), none when
 * no batch closed in it. 1 when one did. */
static int count_to(struct unit *u, const struct pos *closed)
{
	int here = closed->seq != u->start.closed.seq;

	u->records = here ? closed->records : 0;
	u->bytes = here ? closed->bytes : 0;
	u->digest = here ? closed->digest : 0;
	return here;
}

static void finish_unit(struct run *R, struct unit *u)
{
	struct vstate *st = &u->st;
	struct es_ilist *pend = &u->pend;
	const struct pos *pend_closed = &u->pend_closed;

	if (u->active && u->pending) {
		if (!u->later || index_vouches(R, u, pend_closed)) {
			incomplete_tail(R, u, !u->later,
					pend_closed->seg == u->segno ? pend_closed->end : 0,
					pend_closed->seq + 1, pend->v[0].reason);
			st->closed = *pend_closed;
			st->in_batch = 0;
			count_to(u, pend_closed);
			es_ilist_release(pend);
		} else {
			es_ilist_move(&u->fail, pend);
			u->stopped = !R->o->all_errors;
		}
		return;
	}
	if (u->stopped || !st->in_batch)
		return;
	if (u->active) {
		incomplete_tail(R, u, 1, st->batch_off, st->batch_seq, NULL);
		count_to(u, &st->closed);
		st->in_batch = 0;
	}
	else if (u->store_seg)
		es_ilist_add(&u->fail, u->name, 1, st->batch_off, st->batch_seq,
			  "batch without its end in a sealed segment");
	else if (u->last) {
		/* counted up to the head, as over a store: the batch may have
		 * begun in a file before (units run in order here), which the
		 * warning names */
		struct unit *x = u;
		for (;; x--) {
			int began = !x->start.in_batch && x->records > 0;
			if (count_to(x, &x->st.closed) || began || x == R->u)
				break;
		}
		es_ilist_add(&u->warn, x->name, 1, st->batch_off, st->batch_seq,
			  "the log ends inside a batch");
	}
}

/* Check one unit from u->st on. */
static void run_unit(struct run *R, struct unit *u, struct es_chain *chain)
{
	struct lines in;
	struct es_buf scratch = ES_BUF_INIT;
	const char *line;
	size_t len;
	uint64_t unreported = 0;
	int rc;

	u->ran = 1;
	u->start = u->st;
	if ((rc = lines_open(R, u, &in)) != 0) {
		if (rc < 0)
			u->stopped = !R->o->all_errors; /* the finding is made */
		else
			u->rc = u->err.code;
		return;
	}
	while ((rc = lines_next(&in, &line, &len, &u->err)) == 1) {
		uint64_t off = in.off;
		struct pos before;
		int bad;
		if (u->active)
			before = u->st.closed;
		if (u->pending) {
			struct es_rec r;
			const char *why;
			if (!in.no_eol && es_rec_parse(line, len, ES_REC_ANY_TS, &r, &why) == 0)
				u->later = 1;
			if (!R->o->all_errors)
				continue;
		}
		bad = check_record(R, u, chain, line, len, off, in.no_eol, in.had_cr,
				   u->active ? &u->pend : &u->fail, &scratch);
		if (!u->store_seg && in.no_eol && !bad)
			es_ilist_add(&u->warn, u->name, 1, off, u->st.seq, "no newline at the end");
		if (bad && u->active && !u->pending) {
			u->pending = 1;
			u->pend_closed = before;
		}
		if (bad && !u->active && !R->o->all_errors) {
			u->stopped = 1;
			break;
		}
		unreported += len + 1;
		if (unreported >= (1u << 20)) {
			progress(R, unreported);
			unreported = 0;
		}
	}
	if (rc < 0) {
		if (u->err.code != ES_DATA && u->err.code != ES_CORRUPT) {
			u->rc = u->err.code;
			goto out;
		}
		/* An over-long line or a damaged zstd frame: damage in the data. */
		const char *msg = es_msg_after(u->err.msg, u->name); /* the file is named once */
		uint64_t at = lines_consumed(&in), seq = u->st.seq + 1;
		unsigned long long o1, s1;
		int k = 0;
		/* the archive reader locates what it finds: keep its place */
		if (sscanf(msg, "offset %llu: seq %llu: %n", &o1, &s1, &k) == 2 && k > 0) {
			at = o1;
			seq = s1;
			msg += k;
		}
		es_ilist_add(u->active ? &u->pend : &u->fail, u->name, 1, at, seq, "%s", msg);
		if (u->active && !u->pending) {
			u->pending = 1;
			u->pend_closed = u->st.closed;
		}
		if (!u->active)
			u->stopped = !R->o->all_errors;
		u->st.known = 0;
		es_error_clear(&u->err);
	}
	u->read_eof = rc == 0;
out:
	u->read_end = lines_consumed(&in);
	progress(R, unreported);
	lines_close(&in);
	es_buf_release(&scratch);
}

/* ---- reading the last record of a segment (parallel starts, anchors) ---- */

/* The state after the last line of a file of size `size`: 0, or 1 when
 * its last line is not a complete record, or -1 on a read error. */
static int last_record(const char *path, uint64_t size, uint64_t segno, struct vstate *st)
{
	size_t want = 1 << 16;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 1;

	if (fd < 0)
		return -1;
	while (size > 0) {
		uint64_t from = size > want ? size - want : 0;
		size_t n = (size_t)(size - from);
		char *b = malloc(n);
		const char *nl, *why;
		struct es_rec r;
		if (!b || es_pread_full(fd, b, n, (off_t)from) != (ssize_t)n) {
			free(b);
			rc = -1;
			break;
		}
		if (b[n - 1] != '\n') {
			free(b);
			break;
		}
		nl = n >= 2 ? memrchr(b, '\n', n - 1) : NULL;
		if (!nl && from > 0 && want < (64u << 20)) {
			free(b);
			want *= 4;
			continue;
		}
		size_t s = nl ? (size_t)(nl - b) + 1 : 0;
		if (es_rec_parse(b + s, n - 1 - s, ES_REC_ANY_TS, &r, &why) == 0) {
			memset(st, 0, sizeof(*st));
			st->known = 1;
			st->seq = r.seq;
			memcpy(st->hash, r.hash, ES_HASH_HEX);
			memcpy(st->ts, r.ts, ES_TS_LEN);
			st->has_ts = 1;
			st->in_batch = r.more;
			if (!r.more) {
				st->closed.seq = r.seq;
				memcpy(st->closed.hash, r.hash, ES_HASH_HEX);
				st->closed.seg = segno;
				st->closed.end = size;
			}
			rc = 0;
		}
		free(b);
		break;
	}
	close(fd);
	return rc;
}

/* The state after unit p, as stored: its last record (from the archive
 * when p left log/ since it was listed). 0; 1 when its end is not a
 * complete record, or p left log/ unarchived; -1 on a read error (errno);
 * -2 with the status in p->err. */
static int prev_state(struct run *R, struct unit *p, struct vstate *st)
{
	const struct es_archive_seg *e = p->arc;

	if (!e) {
		int rc = last_record(p->path, p->size, p->segno, st);
		if (rc >= 0 || errno != ENOENT)
			return rc;
		rc = relocate(R, p, &p->err);
		if (rc)
			return rc < 0 ? 1 : -2;
		e = p->arc;
	}
	memset(st, 0, sizeof(*st));
	st->known = 1;
	st->seq = e->last_seq;
	memcpy(st->hash, e->last_hash, ES_HASH_HEX + 1);
	memcpy(st->ts, e->last_ts, ES_TS_LEN + 1);
	st->has_ts = 1;
	st->closed.seq = e->last_seq;
	memcpy(st->closed.hash, e->last_hash, ES_HASH_HEX + 1);
	st->closed.seg = e->first_seq;
	st->closed.end = e->raw_bytes;
	return 0;
}

/* ---- parallel ---- */

struct worker {
	struct run *R;
	struct es_chain *chain;
	pthread_t t;
	int started;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct run *R = w->R;
	size_t i;

	while ((i = atomic_fetch_add(&R->next, 1)) < R->nu) {
		/* Empty when listed: checked as such afterwards (run_units), as
		 * the serial run does. A writer may have filled it since; what
		 * it wrote is past the head this run checks. */
		if (R->u[i].store_seg && R->u[i].size == 0)
			R->u[i].ran = 1;
		else
			run_unit(R, &R->u[i], w->chain);
		pthread_mutex_lock(&R->plock);
		R->u[i].done = 1;
		pthread_cond_broadcast(&R->donecv);
		pthread_mutex_unlock(&R->plock);
	}
	return NULL;
}

static void wait_done(struct run *R, struct unit *u)
{
	pthread_mutex_lock(&R->plock);
	while (!u->done)
		pthread_cond_wait(&R->donecv, &R->plock);
	pthread_mutex_unlock(&R->plock);
}

/* A finding at a joint, about u's line at off: part of what was found on
 * that line already, if anything was (as a serial run says it), else a
 * failure of its own. */
__attribute__((format(printf, 4, 5))) static void joint_finding(struct unit *u, uint64_t off,
								uint64_t seq, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!es_ilist_join(&u->pend, u->name, off, seq, msg) &&
	    !es_ilist_join(&u->fail, u->name, off, seq, msg))
		es_ilist_add(&u->fail, u->name, 1, off, seq, "%s", msg);
}

/* Merge unit u's map onto the global one, checking each stream's first
 * version in u against the last one before it. */
static void stitch(struct run *R, struct unit *u)
{
	struct vmap *m = u->map;

	for (size_t i = 0; i < m->cap; i++) {
		struct vent *e = &m->e[i], *g;
		int isnew;
		if (!e->used)
			continue;
		g = vmap_get(&R->gmap, vkey(m, e), e->klen, &isnew);
		if (!g) {
			u->fail.oom = 1;
			return;
		}
		if (isnew) {
			size_t key = g->key;
			uint64_t h = g->h;
			*g = *e;
			g->key = key;
			g->h = h;
			g->checked = R->gmap.complete;
			if (g->checked && e->first_v != 1)
				joint_finding(u, e->first_off, e->first_seq,
					  "stream '%.*s': version %llu is its first event (expected 1)",
					  (int)e->klen, vkey(m, e), (unsigned long long)e->first_v);
			continue;
		}
		if (e->first_v != g->last_v + 1)
			joint_finding(u, e->first_off, e->first_seq,
				  "stream '%.*s': version %llu follows %llu", (int)e->klen,
				  vkey(m, e), (unsigned long long)e->first_v,
				  (unsigned long long)g->last_v);
		if (e->closed_v) { /* the stream had a batch before in u */
			g->closed_v = e->closed_v;
			g->closed = e->closed;
		} else {
			g->closed_v = g->last_v;
			g->closed = g->last;
		}
		g->batch = e->batch;
		g->last_v = e->last_v;
		g->last = e->last;
	}
	es_ilist_sort(&u->fail);
}

static int run_parallel(struct run *R, size_t first, int jobs, struct es_error *err)
{
	struct worker *w = calloc((size_t)jobs, sizeof(*w));
	int rc = 0;

	if (!w)
		return es_fail(err, ES_IO, "out of memory");
	/* Each segment after the first starts from the previous one's last
	 * record as stored; the check of that segment vouches for it. */
	for (size_t i = first + 1; i < R->nu; i++) {
		struct unit *p = &R->u[i - 1], *u = &R->u[i];
		u->map = calloc(1, sizeof(*u->map));
		if (!u->map) {
			rc = es_fail(err, ES_IO, "out of memory");
			goto out;
		}
		if (p->store_seg && p->size == 0) {
			/* empty (a failure of its own): u goes on from before it,
			 * as in a serial run */
			u->st = p->st;
			continue;
		}
		int lr = prev_state(R, p, &u->st);
		if (lr == -2) {
			*err = p->err;
			rc = err->code;
			goto out;
		}
		if (lr < 0) {
			rc = es_fail_errno(err, ES_IO, "cannot read '%s'", p->name);
			goto out;
		}
		if (lr > 0)
			u->st.known = 0; /* its end is damaged: reported by p's check */
	}
	atomic_store(&R->next, first);
	for (int j = 0; j < jobs; j++) {
		w[j].R = R;
		w[j].chain = es_chain_new();
		if (!w[j].chain) {
			rc = es_fail(err, ES_IO, "out of memory");
			break;
		}
		if (pthread_create(&w[j].t, NULL, work, &w[j]) != 0) {
			rc = es_fail(err, ES_IO, "cannot start a thread");
			break;
		}
		w[j].started = 1;
	}
	if (rc)
		atomic_store(&R->next, R->nu); /* let started workers finish */
	else
		/* Each unit is stitched on as soon as it and those before it
		 * are done (the first unit fills the global map itself), while
		 * the workers go on: afterwards, the stitches were a tenth of
		 * es-verify -j 2. Every unit is run, since every worker started. */
		for (size_t i = first + 1; i < R->nu; i++) {
			struct unit *p = &R->u[i - 1], *u = &R->u[i];
			wait_done(R, p);
			wait_done(R, u);
			/* The joint: what u started from is what p ended with. */
			/* (p lost track after damage: so does a serial run, no joint) */
			if (p->ran && !p->stopped && !p->rc && p->st.known && u->start.known &&
			    (p->st.seq != u->start.seq ||
			     memcmp(p->st.hash, u->start.hash, ES_HASH_HEX)))
				es_ilist_add(&u->fail, u->name, 1, 0, u->start.seq + 1,
					  "the chain does not continue from the previous segment");
			stitch(R, u);
		}
	for (int j = 0; j < jobs; j++) {
		if (w[j].started)
			pthread_join(w[j].t, NULL);
		es_chain_free(w[j].chain);
	}
out:
	free(w);
	return rc;
}

/* ---- store-level checks ---- */

static void check_store_json(struct run *R)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *conf, *v;

	snprintf(path, sizeof(path), "%s/store.json", R->dir);
	conf = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!conf) {
		if (access(path, F_OK) != 0)
			es_ilist_add(&R->fail, "store.json", 0, 0, 0, "missing: %s", strerror(errno));
		else
			es_ilist_add(&R->fail, "store.json", 0, 0, 0, "not valid JSON: line %d: %s",
				  jerr.line, jerr.text);
		return;
	}
	if (!json_is_object(conf)) {
		es_ilist_add(&R->fail, "store.json", 0, 0, 0, "not a JSON object");
		json_decref(conf);
		return;
	}
	v = json_object_get(conf, "format");
	if (!json_is_string(v) || strcmp(json_string_value(v), "es-store") != 0)
		es_ilist_add(&R->fail, "store.json", 0, 0, 0, "\"format\" is not \"es-store\"");
	v = json_object_get(conf, "version");
	if (!json_is_integer(v) || json_integer_value(v) != ES_STORE_FORMAT_VERSION)
		es_ilist_add(&R->fail, "store.json", 0, 0, 0, "\"version\" is not %d",
			  ES_STORE_FORMAT_VERSION);
	/* (a setting, not history: writers ignore what is out of range) */
	v = json_object_get(conf, "segment_size");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 4096))
		es_ilist_add(&R->warn, "store.json", 0, 0, 0,
			  "\"segment_size\" is not an integer of at least 4096: ignored, "
			  "segments are sealed at the default 64 MiB");
	v = json_object_get(conf, "snapshot_every");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
		es_ilist_add(&R->fail, "store.json", 0, 0, 0,
			  "\"snapshot_every\" is not a non-negative integer");
	json_decref(conf);
}

static int is_segment_name(const char *n)
{
	if (strlen(n) != 27 || strcmp(n + 20, ".ndjson") != 0)
		return 0;
	for (int i = 0; i < 20; i++)
		if (n[i] < '0' || n[i] > '9')
			return 0;
	return 1;
}

static int cmp_unit(const void *a, const void *b)
{
	const struct unit *x = a, *y = b;

	return x->segno < y->segno ? -1 : x->segno > y->segno;
}

static void free_units(struct run *R)
{
	for (size_t i = 0; i < R->nu; i++) {
		struct unit *u = &R->u[i];
		if (u->map && u->map != &R->gmap) {
			vmap_release(u->map);
			free(u->map);
		}
		free(u->path);
		free(u->name);
		free(u->moved.file);
		free(u->moved.dir);
		es_ilist_release(&u->fail);
		es_ilist_release(&u->warn);
		es_ilist_release(&u->pend);
	}
	free(R->u);
	R->u = NULL;
	R->nu = 0;
}

static int add_unit(struct run *R, size_t *cap, struct es_error *err)
{
	if (R->nu == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		struct unit *nu = realloc(R->u, ncap * sizeof(*nu));
		if (!nu)
			return es_fail(err, ES_IO, "out of memory");
		R->u = nu;
		*cap = ncap;
	}
	memset(&R->u[R->nu], 0, sizeof(R->u[R->nu]));
	R->nu++;
	return 0;
}

/* Read log/: one unit per segment; anything else there is a failure. */
static int list_log(struct run *R, struct es_error *err)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t cap = 0;
	int listing = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/log", R->dir);
	d = opendir(path);
	if (!d) {
		if (errno == ENOENT) {
			es_ilist_add(&R->fail, "log/", 0, 0, 0, "missing");
			return 0;
		}
		return es_fail_errno(err, ES_IO, "cannot read '%s'", path);
	}
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		char rel[300], full[PATH_MAX + 300];
		struct stat sb;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		snprintf(rel, sizeof(rel), "log/%s", n);
		snprintf(full, sizeof(full), "%s/%s", R->dir, rel);
		if (!is_segment_name(n)) {
			es_ilist_add(&R->fail, rel, 0, 0, 0, "stray file in log/: not a segment name");
			continue;
		}
		if (!listing++)
			es_stop_point("verify-listing");
		/* Gone since readdir(): es-archive removed it (readers take no
		 * lock), or something else did; add_archive() tells which. A
		 * dangling symlink is there, and no regular file. */
		struct stat lsb;
		int missing = stat(full, &sb) != 0;
		int gone = missing && errno == ENOENT && lstat(full, &lsb) != 0 && errno == ENOENT;
		if (!gone && (missing || !S_ISREG(sb.st_mode))) {
			es_ilist_add(&R->fail, rel, 0, 0, 0, "not a regular file");
			continue;
		}
		if (add_unit(R, &cap, err))
			break;
		struct unit *u = &R->u[R->nu - 1];
		u->path = strdup(full);
		u->name = strdup(rel);
		u->segno = strtoull(n, NULL, 10);
		u->size = gone ? 0 : (uint64_t)sb.st_size;
		u->gone = gone; /* archived meanwhile? add_archive() knows */
		u->store_seg = 1;
		if (!u->path || !u->name) {
			es_fail(err, ES_IO, "out of memory");
			break;
		}
	}
	closedir(d);
	if (err->code)
		return err->code;
	if (R->nu)
		qsort(R->u, R->nu, sizeof(*R->u), cmp_unit);
	if (R->nu) {
		R->u[R->nu - 1].active = 1;
		R->u[R->nu - 1].last = 1;
	}
	return 0;
}

/* Archived segments (archive.h) come first, read from archive/; a log/
 * copy of one (an interrupted es-archive) is skipped, as readers do. */
static int add_archive(struct run *R, struct vstate *init, struct es_error *err)
{
	struct es_archive *a = NULL;
	size_t n = 0, k = 0;

	if (es_archive_load(R->dir, &a, err) != 0) {
		if (err->code != ES_CORRUPT)
			return err->code;
		es_ilist_add(&R->fail, "archive/MANIFEST", 0, 0, 0, "%s",
			     es_archive_load_reason(R->dir, err->msg));
		es_error_clear(err);
		return 0;
	}
	R->arc = a;
	for (size_t i = 0; i < R->nu; i++) {
		struct unit *u = &R->u[i];
		int archived = es_archive_find(a, u->segno) != NULL;
		if (!archived && !u->gone) {
			R->u[k++] = *u;
			continue;
		}
		/* A segment gone from log/ since readdir() was archived (and
		 * maybe purged) before this MANIFEST was read: es-archive lists
		 * it there first. */
		if (!u->gone)
			es_ilist_add(&R->notes, NULL, 0, 0, 0,
				  "%s: a copy of an archived segment, not read", u->name);
		else if (!archived && !(a && a->purged && u->segno <= a->purge.last_seq))
			es_ilist_add(&R->fail, u->name, 0, 0, u->segno,
				  "removed from log/ while es-verify ran, and not archived");
		free(u->path);
		free(u->name);
	}
	R->nu = k;
	if (!a)
		return 0;
	n = a->n;
	if (n) {
		struct unit *nu = realloc(R->u, (R->nu + n) * sizeof(*nu));
		if (!nu)
			return es_fail(err, ES_IO, "out of memory");
		R->u = nu;
		memmove(R->u + n, R->u, R->nu * sizeof(*R->u));
		memset(R->u, 0, n * sizeof(*R->u));
		for (size_t i = 0; i < n; i++) {
			struct unit *u = &R->u[i];
			const struct es_archive_seg *e = &a->segs[i];
			char name[PATH_MAX + 32];
			snprintf(name, sizeof(name), "%s/%s", e->dir ? e->dir : ES_ARCHIVE_DIR, e->file);
			u->arc = e;
			u->dir = R->dir;
			u->name = strdup(name);
			u->segno = e->first_seq;
			u->size = e->raw_bytes;
			u->store_seg = 1;
			if (!u->name)
				return es_fail(err, ES_IO, "out of memory");
		}
		R->nu += n;
	}
	if (a->purged && R->o->from_seq <= 1) {
		struct es_head h;
		es_archive_start(a, &h);
		R->purged = 1;
		R->gmap.complete = 0;
		init->seq = h.seq;
		memcpy(init->hash, h.hash, ES_HASH_HEX + 1);
		init->closed.seq = h.seq;
		memcpy(init->closed.hash, h.hash, ES_HASH_HEX + 1);
		init->closed.seg = h.seg;
		init->closed.end = h.end;
		if (h.ts) {
			es_ts_format(h.ts, init->ts);
			init->has_ts = 1;
		}
		es_ilist_add(&R->notes, NULL, 0, 0, 0,
			  "seq 1 to %llu were purged: the chain starts at the purge anchor",
			  (unsigned long long)h.seq);
	}
	return 0;
}

/* Empty segments: only a fresh active one, named by the next seq. */
static void check_empty(struct unit *u)
{
	if (!u->active)
		es_ilist_add(&u->fail, u->name, 1, 0, u->segno, "empty sealed segment");
	else if (u->st.known && u->segno != u->st.seq + 1)
		es_ilist_add(&u->fail, u->name, 1, 0, u->segno,
			  "empty active segment: its name does not match the next seq %llu",
			  (unsigned long long)(u->st.seq + 1));
}

/* ---- putting it together ---- */

void es_verify_opts_init(struct es_verify_opts *o)
{
	memset(o, 0, sizeof(*o));
	memcpy(o->anchor, ES_GENESIS, ES_HASH_HEX + 1);
	o->jobs = 1;
}

void es_verify_report_init(struct es_verify_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	memcpy(rep->head_hash, ES_GENESIS, ES_HASH_HEX + 1);
}

static void release_issues(struct es_verify_issue *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].file);
		free(v[i].reason);
	}
	free(v);
}

void es_verify_report_release(struct es_verify_report *rep)
{
	release_issues(rep->failures, rep->nfailures);
	release_issues(rep->warnings, rep->nwarnings);
	for (size_t i = 0; i < rep->nnotes; i++)
		free(rep->notes[i]);
	free(rep->notes);
	es_verify_report_init(rep);
}

int es_verify_parse_head(const char *s, uint64_t *seq, char hash[ES_HASH_HEX + 1])
{
	const char *colon = strchr(s, ':');
	char *end;

	if (!colon || colon == s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*seq = strtoull(s, &end, 10);
	if (end != colon || errno || !es_is_hash_hex(colon + 1, strlen(colon + 1)))
		return -1;
	memcpy(hash, colon + 1, ES_HASH_HEX + 1);
	return 0;
}

static void add_check(struct es_verify_report *rep, const char *name)
{
	if (rep->nchecks < ES_VERIFY_MAX_CHECKS)
		rep->checks[rep->nchecks++] = name;
}

/* Run the units from `first` on: serially, the state flows on. */
static int run_units(struct run *R, size_t first, struct es_error *err)
{
	const struct es_verify_opts *o = R->o;
	int jobs = o->jobs > 1 ? o->jobs : 1;
	size_t nonempty = 0;

	for (size_t i = first; i < R->nu; i++)
		R->total += R->u[i].size;
	for (size_t i = first; i < R->nu; i++)
		nonempty += R->u[i].size > 0;
	for (size_t i = first; i < R->nu; i++)
		R->u[i].map = &R->gmap;
	if (jobs > 1 && R->dir && nonempty > 1) {
		size_t n = R->nu - first;
		if (run_parallel(R, first, (size_t)jobs < n ? jobs : (int)n, err))
			return err->code;
		for (size_t i = first; i < R->nu; i++)
			if (R->u[i].size == 0 && !R->u[i].rc) {
				if (i > first)
					R->u[i].st = R->u[i - 1].st;
				check_empty(&R->u[i]);
			}
		return 0;
	}
	struct es_chain *chain = es_chain_new();
	if (!chain)
		return es_fail(err, ES_IO, "out of memory");
	for (size_t i = first; i < R->nu; i++) {
		struct unit *u = &R->u[i];
		if (i > first) {
			struct unit *p = &R->u[i - 1];
			if (p->rc || (p->stopped && !o->all_errors))
				break;
			u->st = p->st;
			u->skip_before = 0;
		}
		if (u->store_seg && u->size == 0) {
			u->ran = 1;
			check_empty(u);
			if (u->fail.n && !o->all_errors) {
				u->stopped = 1;
				break;
			}
			continue;
		}
		run_unit(R, u, chain);
		if (u->rc)
			break;
	}
	es_chain_free(chain);
	return 0;
}

/* After every unit ran: settle the ends of units, report I/O errors. */
static int finish_units(struct run *R, size_t first, struct es_error *err)
{
	for (size_t i = first; i < R->nu; i++)
		if (R->u[i].rc) {
			*err = R->u[i].err;
			return R->u[i].rc;
		}
	for (size_t i = first; i < R->nu; i++)
		if (R->u[i].ran) {
			finish_unit(R, &R->u[i]);
			es_ilist_sort(&R->u[i].fail);
		}
	return 0;
}

/* The state the run ends in: the last unit that ran. */
static const struct vstate *end_state(const struct run *R, size_t first,
				      const struct vstate *init)
{
	const struct vstate *st = init;

	for (size_t i = first; i < R->nu; i++)
		if (R->u[i].ran)
			st = &R->u[i].st;
	return st;
}

/* Collect findings in log order into the report; stop at the first
 * failure unless all_errors. */
static int fill_report(struct run *R, struct es_verify_report *rep, struct es_error *err)
{
	struct es_ilist fail = {0}, warn = {0};
	int oom = R->fail.oom | R->warn.oom | R->notes.oom | R->ixissues.oom | R->post.oom;

	/* A failed allocation anywhere (jansson says "not valid JSON" for one)
	 * may have made a finding or hidden one: no verdict then. */
	oom |= es_alloc_failures() != R->alloc0;

	es_ilist_move(&fail, &R->fail);
	es_ilist_move(&warn, &R->warn);
	for (size_t i = 0; i < R->nu; i++) {
		struct unit *u = &R->u[i];
		oom |= u->fail.oom | u->warn.oom;
		es_ilist_move(&fail, &u->fail);
		es_ilist_move(&warn, &u->warn);
		rep->records += u->records;
		rep->bytes += u->bytes;
	}
	es_ilist_move(&fail, &R->post);
	es_ilist_move(&fail, &R->ixissues);
	if (!R->o->all_errors)
		while (fail.n > 1) {
			fail.n--;
			free(fail.v[fail.n].file);
			free(fail.v[fail.n].reason);
		}
	oom |= fail.oom | warn.oom;
	rep->failures = fail.v;
	rep->nfailures = fail.n;
	rep->warnings = warn.v;
	rep->nwarnings = warn.n;
	rep->ok = fail.n == 0;
	if (R->notes.n) {
		rep->notes = calloc(R->notes.n, sizeof(*rep->notes));
		if (!rep->notes)
			oom = 1;
		for (size_t i = 0; rep->notes && i < R->notes.n; i++) {
			rep->notes[i] = R->notes.v[i].reason;
			R->notes.v[i].reason = NULL;
		}
		rep->nnotes = rep->notes ? R->notes.n : 0;
	}
	es_ilist_release(&R->notes);
	return oom ? es_fail(err, ES_IO, "out of memory") : 0;
}

static void run_release(struct run *R)
{
	free_units(R);
	vmap_release(&R->gmap);
	es_archive_free(R->arc);
	es_ilist_release(&R->fail);
	es_ilist_release(&R->post);
	es_ilist_release(&R->warn);
	es_ilist_release(&R->notes);
	es_ilist_release(&R->ixissues);
	if (R->live) {
		es_archive_store_release(R->live);
		free(R->live);
	}
	pthread_mutex_destroy(&R->arc_lock);
	pthread_mutex_destroy(&R->plock);
	pthread_cond_destroy(&R->donecv);
}

static void run_init(struct run *R, const struct es_verify_opts *o, const char *dir)
{
	memset(R, 0, sizeof(*R));
	R->o = o;
	R->dir = dir;
	R->gmap.complete = o->from_seq <= 1;
	atomic_init(&R->next, 0);
	R->alloc0 = es_alloc_failures();
	atomic_init(&R->done, 0);
	pthread_mutex_init(&R->plock, NULL);
	pthread_mutex_init(&R->arc_lock, NULL);
	pthread_cond_init(&R->donecv, NULL);
}

static void initial_state(const struct es_verify_opts *o, struct vstate *st)
{
	memset(st, 0, sizeof(*st));
	st->known = 1;
	if (o->from_seq > 1) {
		st->seq = o->from_seq - 1;
		memcpy(st->hash, o->anchor, ES_HASH_HEX + 1);
		st->closed.seq = st->seq;
		memcpy(st->closed.hash, o->anchor, ES_HASH_HEX + 1);
	} else {
		memcpy(st->hash, ES_GENESIS, ES_HASH_HEX + 1);
		memcpy(st->closed.hash, ES_GENESIS, ES_HASH_HEX + 1);
	}
}

/* Where an incremental run starts: the unit holding from_seq, and the
 * anchor check when from_seq opens that unit. */
static int incremental_start(struct run *R, size_t *first, struct es_error *err)
{
	const struct es_verify_opts *o = R->o;
	size_t k = 0;

	while (k + 1 < R->nu && R->u[k + 1].segno <= o->from_seq)
		k++;
	*first = k;
	if (R->nu == 0)
		return 0;
	struct unit *u = &R->u[k];
	initial_state(o, &u->st);
	if (u->segno < o->from_seq) {
		u->skip_before = o->from_seq;
		return 0;
	}
	if (k == 0) {
		/* The log begins at from_seq (older history archived or purged). */
		es_ilist_add(&R->notes, NULL, 0, 0, 0,
			  "the log begins at seq %llu: the anchor is taken on trust",
			  (unsigned long long)u->segno);
		u->anchor_seen = 1;
		return 0;
	}
	struct unit *p = &R->u[k - 1];
	struct vstate prev;
	int lr = prev_state(R, p, &prev);
	if (lr == -2) {
		*err = p->err;
		return err->code;
	}
	if (lr < 0)
		return es_fail_errno(err, ES_IO, "cannot read '%s'", p->name);
	u->anchor_seen = 1;
	if (lr > 0 || prev.seq + 1 != o->from_seq) {
		es_ilist_add(&R->fail, p->name, 0, 0, o->from_seq - 1,
			  "no complete record with seq %llu at its end to anchor on",
			  (unsigned long long)(o->from_seq - 1));
		return 0;
	}
	if (memcmp(prev.hash, o->anchor, ES_HASH_HEX) != 0)
		es_ilist_add(&R->fail, p->name, 0, 0, prev.seq,
			  "hash %.64s differs from the --anchor hash", prev.hash);
	memcpy(u->st.ts, prev.ts, ES_TS_LEN);
	u->st.has_ts = 1;
	u->st.in_batch = prev.in_batch;
	u->st.closed = prev.closed;
	memcpy(u->st.closed.hash, o->anchor, ES_HASH_HEX + 1);
	return 0;
}

static void check_head(struct run *R, const struct pos *head)
{
	const struct es_verify_opts *o = R->o;

	if (!o->expect_head)
		return;
	if (head->seq != o->expect_seq || memcmp(head->hash, o->expect_hash, ES_HASH_HEX) != 0)
		es_ilist_add(&R->post, NULL, 0, 0, head->seq,
			  "the head is seq %llu hash %.64s, expected seq %llu hash %.64s",
			  (unsigned long long)head->seq, head->hash,
			  (unsigned long long)o->expect_seq, o->expect_hash);
}

static void set_head(struct es_verify_report *rep, const struct pos *head)
{
	rep->head_seq = head->seq;
	memcpy(rep->head_hash, head->hash, ES_HASH_HEX);
	rep->head_hash[ES_HASH_HEX] = '\0';
}

int es_verify_store(const char *dir, const struct es_verify_opts *o,
		    struct es_verify_report *rep, struct es_error *err)
{
	struct run R;
	struct es_index *ix = NULL;
	struct vstate init;
	struct pos head;
	struct stat sb;
	size_t first = 0;
	int rc = 0;

	es_verify_report_init(rep);
	if (stat(dir, &sb) != 0)
		return es_fail_errno(err, ES_IO, "cannot open store '%s'", dir);
	if (!S_ISDIR(sb.st_mode))
		return es_fail(err, ES_IO, "cannot open store '%s': not a directory", dir);
	run_init(&R, o, dir);
	add_check(rep, "store.json");
	check_store_json(&R);
	R.index_state = es_verify_index_open(dir, &ix, err);
	if (R.index_state == IX_UNREADABLE)
		es_error_clear(err);
	if (ix && es_index_begin(ix, 0, err) == 0) {
		int h = es_index_get_head(ix, &R.ih);
		R.have_ih = h == 0;
		R.ih_damaged = h < 0;
		es_index_abort(ix);
	}
	es_error_clear(err);
	add_check(rep, "segments");
	if ((rc = list_log(&R, err)) != 0)
		goto out;
	initial_state(o, &init);
	if ((rc = add_archive(&R, &init, err)) != 0)
		goto out;
	es_stop_point("verify-listed");
	if (o->from_seq > 1) {
		add_check(rep, "anchor");
		if ((rc = incremental_start(&R, &first, err)) != 0)
			goto out;
	} else if (R.nu) {
		R.u[0].st = init;
	}
	add_check(rep, "records");
	add_check(rep, "chain");
	add_check(rep, "seq");
	add_check(rep, "ts");
	add_check(rep, "versions");
	add_check(rep, "batches");
	if (R.fail.n == 0 || o->all_errors) {
		/* a run over the whole log: the index is walked meanwhile */
		if (ix && R.have_ih && o->from_seq <= 1 && R.nu > 0)
			es_verify_index_ahead(&R, ix, R.gmap.complete);
		if ((rc = run_units(&R, first, err)) != 0 || (rc = finish_units(&R, first, err)) != 0)
			goto out;
		if (o->from_seq > 1 &&
		    (R.nu == 0 || (R.u[first].ran && !R.u[first].anchor_seen && !R.u[first].stopped)))
			es_ilist_add(&R.fail, R.nu ? R.u[first].name : NULL, 0, 0, o->from_seq - 1,
				  "no record with seq %llu to anchor on",
				  (unsigned long long)(o->from_seq - 1));
	}
	head = end_state(&R, first, &init)->closed;
	if (o->expect_head)
		add_check(rep, "head");
	check_head(&R, &head);
	add_check(rep, "index");
	{
		int log_failed = R.fail.n > 0;
		for (size_t i = 0; i < R.nu; i++)
			log_failed |= R.u[i].fail.n > 0;
		R.log_failed = log_failed;
		if (!log_failed || o->all_errors)
			es_verify_index_check(&R, ix, &head, o->from_seq);
		es_verify_index_ahead_end(&R);
		if (ix)
			es_index_close(ix);
		ix = NULL;
		es_verify_quarantine(&R);
		if (o->repair_index && R.index_state != IX_OK) {
			if (log_failed)
				es_ilist_add(&R.notes, NULL, 0, 0, 0,
					  "index not repaired: the log itself is broken");
			else if (es_verify_index_repair(&R, err) != 0) {
				rc = err->code;
				goto out;
			} else {
				rep->index_repaired = 1;
				es_ilist_add(&R.notes, NULL, 0, 0, 0, "index rebuilt from the log");
				/* what was wrong with it is now history */
				for (size_t i = 0; i < R.ixissues.n; i++)
					es_ilist_add(&R.warn, "index/", 0, 0, 0, "%s (repaired)",
						  R.ixissues.v[i].reason);
				es_ilist_release(&R.ixissues);
				R.index_state = IX_OK;
			}
		}
		if (o->snapshots) {
			add_check(rep, "snapshots");
			if (log_failed)
				es_ilist_add(&R.notes, NULL, 0, 0, 0,
					  "snapshots: not checked: the log itself is broken");
			else if ((rc = es_verify_snapshots(&R, err)) != 0)
				goto out;
		}
	}
	set_head(rep, &head);
	rc = fill_report(&R, rep, err);
out:
	es_verify_index_ahead_end(&R);
	if (ix)
		es_index_close(ix);
	run_release(&R);
	return rc;
}

int es_verify_files(char **files, int nfiles, const struct es_verify_opts *o,
		    struct es_verify_report *rep, struct es_error *err)
{
	static char *dash[] = {(char *)"-"};
	struct run R;
	struct vstate init;
	size_t cap = 0;
	int rc = 0;

	es_verify_report_init(rep);
	if (nfiles == 0) {
		files = dash;
		nfiles = 1;
	}
	run_init(&R, o, NULL);
	for (int i = 0; i < nfiles; i++) {
		struct stat sb;
		if ((rc = add_unit(&R, &cap, err)) != 0)
			goto out;
		struct unit *u = &R.u[R.nu - 1];
		u->path = strdup(files[i]);
		u->name = strdup(files[i]);
		if (!u->path || !u->name) {
			rc = es_fail(err, ES_IO, "out of memory");
			goto out;
		}
		if (strcmp(files[i], "-") != 0 && stat(files[i], &sb) == 0 && S_ISREG(sb.st_mode))
			u->size = (uint64_t)sb.st_size;
	}
	R.u[R.nu - 1].last = 1;
	initial_state(o, &init);
	R.u[0].st = init;
	if (o->from_seq > 1) {
		add_check(rep, "anchor");
		R.u[0].skip_before = o->from_seq;
	}
	add_check(rep, "records");
	add_check(rep, "chain");
	add_check(rep, "seq");
	add_check(rep, "ts");
	add_check(rep, "versions");
	add_check(rep, "batches");
	if ((rc = run_units(&R, 0, err)) != 0 || (rc = finish_units(&R, 0, err)) != 0)
		goto out;
	{
		/* A file may start at from_seq itself (an exported tail): then its
		 * first record chains on the anchor; but some record must be there. */
		uint64_t n = 0;
		int anchored = 0, stopped = 0;
		for (size_t i = 0; i < R.nu; i++) {
			anchored |= R.u[i].anchor_seen;
			stopped |= R.u[i].stopped;
			n += R.u[i].records;
		}
		if (o->from_seq > 1 && !anchored && !stopped && n == 0)
			es_ilist_add(&R.post, NULL, 0, 0, o->from_seq - 1,
				  "no record with seq %llu or later",
				  (unsigned long long)(o->from_seq - 1));
	}
	struct pos head = end_state(&R, 0, &init)->closed;
	if (o->expect_head)
		add_check(rep, "head");
	check_head(&R, &head);
	set_head(rep, &head);
	rc = fill_report(&R, rep, err);
out:
	run_release(&R);
	return rc;
}
