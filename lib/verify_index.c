/* verify_index.c: es-verify's checks of what is derived from the log:
 * the index (its head, every stream's version and last position, the
 * look-back of an incremental run), --repair-index, --snapshots, and the
 * note on quarantine/. verify.c checks the log and calls these after it
 * (verify_int.h). */
#include "verify_int.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "reader.h"
#include "reducer.h"
#include "snapshot.h"
#include "store.h"

#define INDEX_FAIL_MAX 100        /* index disagreements listed at most */

int es_verify_index_open(const char *dir, struct es_index **ix, struct es_error *err)
{
	char path[PATH_MAX], f[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/index", dir);
	snprintf(f, sizeof(f), "%s/data.mdb", path);
	if (access(f, F_OK) != 0)
		return IX_MISSING;
	if (es_store_index_unsynced(path) == 2)
		return IX_UNSYNCED; /* maybe torn: not to be judged, nor used */
	if (es_index_open(ix, path, 0, err) != 0)
		return IX_UNREADABLE;
	return IX_OK;
}

struct ixwalk {
	struct run *R;
	struct es_index *ix;
	uint64_t seen;
	int complete;
};

static void ixfail(struct run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ixfail(struct run *R, const char *fmt, ...)
{
	va_list ap;

	if (R->ixissues.n == INDEX_FAIL_MAX)
		es_ilist_add(&R->ixissues, "index/", 0, 0, 0, "more disagreements not listed");
	if (R->ixissues.n > INDEX_FAIL_MAX)
		return;
	va_start(ap, fmt);
	es_ilist_vadd(&R->ixissues, "index/", 0, 0, 0, fmt, ap);
	va_end(ap);
}

static void ix_position(struct run *R, struct vent *e, int rc, const struct es_pos *p);

/* Every stream the index knows: its version and the position of its last
 * event must be what the log says. */
static int ix_stream(void *arg, const char *stream, size_t len, uint64_t version,
		     const struct es_pos *pos)
{
	struct ixwalk *w = arg;
	struct run *R = w->R;
	struct vent *e;

	if (!w->complete)
		return 0;
	w->seen++;
	e = vmap_find(&R->gmap, stream, len);
	if (!e) {
		ixfail(R, "stream '%.*s' is in the index but not in the log", (int)len, stream);
		return 0;
	}
	uint64_t v;
	const struct es_pos *at = vent_as_of(e, R->head_seq, &v);
	if (at->seq > R->head_seq)
		return 0; /* records checked past the head (--all-errors): not comparable */
	if (v != version)
		ixfail(R, "stream '%.*s': the index says version %llu, the log %llu", (int)len,
		       stream, (unsigned long long)version, (unsigned long long)v);
	else
		ix_position(R, e, pos ? 0 : 1, pos);
	return 0;
}

/* The position of e's last event (rc as es_index_get_pos's, p) must be
 * where the index says. */
static void ix_position(struct run *R, struct vent *e, int rc, const struct es_pos *p)
{
	struct vmap *m = &R->gmap;
	uint64_t v;
	const struct es_pos *at = vent_as_of(e, R->head_seq, &v);

	e->walked = 1;
	if (rc == 1)
		ixfail(R, "stream '%.*s' version %llu is not in the index", (int)e->klen,
		       vkey(m, e), (unsigned long long)v);
	else if (rc != 0 || p->seq != at->seq || p->seg != at->seg || p->off != at->off ||
		 p->len != at->len)
		ixfail(R, "stream '%.*s' version %llu: the index points elsewhere than "
		       "log/%020llu.ndjson offset %llu",
		       (int)e->klen, vkey(m, e), (unsigned long long)v,
		       (unsigned long long)at->seg, (unsigned long long)at->off);
}

/* Check the positions of each stream's last event (both complete and
 * incremental runs know those exactly). A complete run checked those of
 * the streams the index has while walking it, in key order (a tenth of
 * es-verify's time in hash order); here are the rest. */
static void ix_positions(struct run *R, struct es_index *ix)
{
	struct vmap *m = &R->gmap;

	for (size_t i = 0; i < m->cap; i++) {
		struct vent *e = &m->e[i];
		uint64_t v = 0, cv;
		if (!e->used || e->walked)
			continue;
		const struct es_pos *at = vent_as_of(e, R->head_seq, &cv);
		if (!cv || at->seq > R->head_seq)
			continue;
		/* Complete runs compared the versions while walking the index
		 * (and count the streams); incremental ones do it here. */
		if (!m->complete &&
		    (es_index_version(ix, vkey(m, e), e->klen, &v) != 0 || v != cv)) {
			ixfail(R, "stream '%.*s': the index says version %llu, the log %llu",
			       (int)e->klen, vkey(m, e), (unsigned long long)v, (unsigned long long)cv);
			continue;
		}
		struct es_pos p;
		int rc = es_index_get_pos(ix, vkey(m, e), e->klen, cv, &p);
		ix_position(R, e, rc, &p);
	}
}

/* Incremental runs: a stream first seen after --from-seq continues from
 * its previous version before it; the index (when it matches the log)
 * says where that one is, and the record there is read and checked. */
static void lookback(struct run *R, struct es_index *ix, uint64_t from)
{
	struct vmap *m = &R->gmap;
	char *buf = NULL;
	size_t cap = 0;
	struct es_buf sk = ES_BUF_INIT;
	struct es_store s;
	uint64_t purged = R->arc && R->arc->purged ? R->arc->purge.last_seq : 0;

	/* Only what es_store_read_pos() needs (the store's index is open
	 * already, and LMDB must not be opened twice in a process). */
	memset(&s, 0, sizeof(s));
	s.dir = (char *)R->dir;
	s.lock_fd = s.active_fd = -1;

	for (size_t i = 0; i < m->cap; i++) {
		struct vent *e = &m->e[i];
		struct es_pos p;
		struct es_rec r;
		const char *why, *k;
		size_t kn;
		if (!e->used || e->checked || e->first_seq > R->head_seq)
			continue;
		e->checked = 1;
		if (e->first_v == 1) {
			if (es_index_get_pos(ix, vkey(m, e), e->klen, 1, &p) == 0 && p.seq < from)
				es_ilist_add(&R->post, NULL, 0, 0, e->first_seq,
					  "stream '%.*s': version 1 again (already at seq %llu)",
					  (int)e->klen, vkey(m, e), (unsigned long long)p.seq);
			continue;
		}
		int rc = es_index_get_pos(ix, vkey(m, e), e->klen, e->first_v - 1, &p);
		struct es_error err = {0, ""};
		/* purged by es-archive --purge-before: gone, on purpose (the
		 * readers' rule, reader.c); the chain from the purge anchor
		 * vouches for what is left */
		if (purged > 0 && (rc == 1 || (rc == 0 && p.seq <= purged)))
			continue;
		if (rc != 0 || p.seq >= from) {
			es_ilist_add(&R->post, NULL, 0, 0, e->first_seq,
				  "stream '%.*s': version %llu, but no version %llu before seq %llu",
				  (int)e->klen, vkey(m, e), (unsigned long long)e->first_v,
				  (unsigned long long)(e->first_v - 1), (unsigned long long)from);
			continue;
		}
		if (p.len < 2 || es_store_read_pos(&s, &p, &buf, &cap, &err) != 0 ||
		    es_rec_parse(buf, p.len - 1, 0, &r, &why) != 0 || r.seq != p.seq ||
		    r.version != e->first_v - 1 || stream_key(&r, &sk, &k, &kn) != 0 ||
		    kn != e->klen || memcmp(k, vkey(m, e), kn) != 0)
			es_ilist_add(&R->post, NULL, 0, 0, e->first_seq,
				  "stream '%.*s': version %llu: version %llu is not where the index "
				  "says (seq %llu)",
				  (int)e->klen, vkey(m, e), (unsigned long long)e->first_v,
				  (unsigned long long)(e->first_v - 1), (unsigned long long)p.seq);
	}
	free(buf);
	es_buf_release(&sk);
	es_archive_store_release(&s);
}

static int ahead_row(void *arg, const char *stream, size_t len, uint64_t version,
		     const struct es_pos *pos)
{
	struct ixahead *a = arg;

	if (atomic_load_explicit(&a->stop, memory_order_relaxed))
		return 1;
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 1024;
		struct ixrow *r = es_realloc(a->rows, cap * sizeof(*r));
		if (!r)
			return 1;
		a->rows = r;
		a->cap = cap;
	}
	a->rows[a->n] = (struct ixrow){a->names.len, len, version, {0}, pos != NULL};
	if (pos)
		a->rows[a->n].pos = *pos;
	if (es_buf_add(&a->names, stream, len))
		return 1;
	a->n++;
	return 0;
}

/* One position of the index into the sum (es_index_each_pos). */
static int sum_pos(void *arg, const char *stream, size_t len, uint64_t version,
		   const struct es_pos *pos)
{
	struct ixsum *s = arg;

	if (s->stop && atomic_load_explicit(s->stop, memory_order_relaxed))
		return 1;
	if (!pos) {
		s->bad = 1;
		return 0;
	}
	/* purged by es-archive --purge-before: the index may still hold it,
	 * or not (rebuilt since); readers skip it either way (reader.c) */
	if (pos->seq <= s->purged)
		return 0;
	/* a stream's positions come one after the other */
	if (!s->name || len != s->nlen || memcmp(stream, s->name, len) != 0) {
		s->name = stream;
		s->nlen = len;
		s->name_h = es_strmap_hash(stream, len);
	}
	s->sum += pos_term(s->name_h, version, pos);
	s->n++;
	return 0;
}

static void *ahead_run(void *arg)
{
	struct ixahead *a = arg;

	if (a->rows_wanted)
		a->rc = es_index_each_stream_pos_apart(a->ix, &a->rows_head, &a->rows_head_rc,
						       ahead_row, a);
	a->pos_rc = es_index_each_pos_apart(a->ix, &a->head, &a->head_rc, sum_pos, &a->sum);
	return NULL;
}

/* The purge anchor: the log the run checks begins after it. */
static uint64_t purged_seq(const struct run *R)
{
	return R->purged && R->arc && R->arc->purged ? R->arc->purge.last_seq : 0;
}

void es_verify_index_ahead(struct run *R, struct es_index *ix, int rows)
{
	struct ixahead *a = &R->ahead;

	memset(a, 0, sizeof(*a));
	a->ix = ix;
	a->rows_wanted = rows;
	a->rc = a->pos_rc = -1;
	atomic_init(&a->stop, 0);
	a->sum.purged = purged_seq(R);
	a->sum.stop = &a->stop;
	a->started = pthread_create(&a->t, NULL, ahead_run, a) == 0;
}

static void ahead_join(struct run *R)
{
	struct ixahead *a = &R->ahead;

	if (a->started && !a->joined) {
		pthread_join(a->t, NULL);
		a->joined = 1;
	}
}

void es_verify_index_ahead_end(struct run *R)
{
	struct ixahead *a = &R->ahead;

	if (a->started)
		atomic_store(&a->stop, 1);
	ahead_join(R);
	es_buf_release(&a->names);
	free(a->rows);
	memset(a, 0, sizeof(*a));
}

/* Whether a read of the index (rc as es_index_get_head's, h) saw the head
 * the run compared with the log's: a writer that appended since moved the
 * index on, and then the index holds more than the log that was checked. */
static int at_ih(const struct run *R, int rc, const struct es_head *h)
{
	return rc == 0 && h->seq == R->ih.seq && memcmp(h->hash, R->ih.hash, ES_HASH_HEX) == 0;
}

/* The streams the index has, against the log: walked ahead (when that
 * walk saw the run's head), or now. */
static void ix_streams(struct run *R, struct es_index *ix, struct ixwalk *w)
{
	struct ixahead *a = &R->ahead;

	ahead_join(R);
	if (a->started && a->ix == ix && a->rc == 0 && at_ih(R, a->rows_head_rc, &a->rows_head)) {
		for (size_t i = 0; i < a->n; i++) {
			const struct ixrow *r = &a->rows[i];
			ix_stream(w, a->names.p + r->name, r->len, r->version,
				  r->has_pos ? &r->pos : NULL);
		}
		return;
	}
	/* (no thread, no memory, or a read error: this walk says which) */
	if (es_index_each_stream_pos(ix, ix_stream, w) < 0)
		es_ilist_add(&R->warn, "index/", 0, 0, 0, "read error while walking the streams");
}

/* Every position the index holds against where the log's events are
 * (a run over the whole log, from seq 1 or the purge anchor): the two
 * sums of pos_term, the index's walked ahead or now. The last event of
 * each stream was compared on its own (ix_position); this finds the
 * others, which readers trust as much (es-replay stops at one). */
static void ix_digest(struct run *R, struct es_index *ix)
{
	struct ixahead *a = &R->ahead;
	struct ixsum s = {.purged = purged_seq(R)};
	struct es_head h;
	uint64_t sum = 0, n = 0;
	int hrc;

	ahead_join(R);
	if (a->started && a->ix == ix && a->pos_rc == 0) {
		s = a->sum;
		h = a->head;
		hrc = a->head_rc;
	} else {
		hrc = es_index_get_head(ix, &h);
		if (es_index_each_pos(ix, sum_pos, &s) != 0) {
			es_ilist_add(&R->warn, "index/", 0, 0, 0,
				  "read error while walking the positions");
			return;
		}
	}
	/* a writer moved the index on since its head was read: the walk saw
	 * more than the log that was checked */
	if (!at_ih(R, hrc, &h))
		return;
	for (size_t i = 0; i < R->nu; i++) {
		sum += R->u[i].digest;
		n += R->u[i].records;
	}
	if (s.n != n)
		ixfail(R, "the index holds the positions of %llu events, the log %llu",
		       (unsigned long long)s.n, (unsigned long long)n);
	else if (s.bad || s.sum != sum)
		ixfail(R, "the positions of some events differ from the log");
}

/* The index against the log's head. */
void es_verify_index_check(struct run *R, struct es_index *ix, const struct pos *head,
			   uint64_t from)
{
	struct es_head *ih = &R->ih;
	int differs = 0;

	R->head_seq = head->seq;
	for (size_t i = 0; i < R->nu; i++)
		differs |= R->u[i].ih_differs;
	if (R->index_state == IX_MISSING) {
		es_ilist_add(&R->warn, "index/", 0, 0, 0,
			  "missing: rebuilt by the next append, or by --repair-index");
		return;
	}
	if (R->index_state == IX_UNSYNCED) {
		es_ilist_add(&R->warn, "index/", 0, 0, 0,
			  "not synced before the machine went down (index/unsynced is from an "
			  "earlier boot): rebuilt by the next append or read, or by --repair-index");
		return;
	}
	if (R->index_state == IX_UNREADABLE) {
		es_ilist_add(&R->warn, "index/", 0, 0, 0,
			  "unreadable: rebuilt by the next append, or by --repair-index");
		return;
	}
	if (R->ih_damaged) {
		R->index_state = IX_STALE;
		es_ilist_add(&R->warn, "index/", 0, 0, 0,
			  "its head is damaged (unreadable, or its check sum does not match): "
			  "rebuilt by the next append, or by --repair-index");
		return;
	}
	if (!R->have_ih) {
		if (head->seq > 0) {
			R->index_state = IX_STALE;
			es_ilist_add(&R->warn, "index/", 0, 0, 0,
				  "empty: rebuilt by the next append, or by --repair-index");
		}
		return;
	}
	if (ih->seq > head->seq) {
		R->index_state = IX_BAD;
		ixfail(R, "the index covers up to seq %llu but the log ends at seq %llu: "
		       "acknowledged records are missing from the log",
		       (unsigned long long)ih->seq, (unsigned long long)head->seq);
		return;
	}
	if (differs) {
		R->index_state = IX_BAD;
		ixfail(R, "the index head (seq %llu hash %.64s) is not the log's record at that "
		       "seq: the log was rewritten after it was indexed",
		       (unsigned long long)ih->seq, ih->hash);
		return;
	}
	if (ih->seq < head->seq) {
		R->index_state = IX_STALE;
		es_ilist_add(&R->warn, "index/", 0, 0, 0,
			  "behind: it covers seq %llu of %llu (caught up by the next append or "
			  "read, or by --repair-index)",
			  (unsigned long long)ih->seq, (unsigned long long)head->seq);
		return;
	}
	/* The index claims to match the log: readers trust it, so it must. */
	/* (a purge anchor as the head has no position left to compare) */
	if (head->seq > 0 && ((head->seg && (ih->seg != head->seg || ih->end != head->end)) ||
			      memcmp(ih->hash, head->hash, ES_HASH_HEX) != 0)) {
		R->index_state = IX_BAD;
		ixfail(R, "the index head (log/%020llu.ndjson offset %llu) is not where the "
		       "log's head is (log/%020llu.ndjson offset %llu)",
		       (unsigned long long)ih->seg, (unsigned long long)ih->end,
		       (unsigned long long)head->seg, (unsigned long long)head->end);
		return;
	}
	struct es_error err = {0, ""};
	if (es_index_begin(ix, 0, &err)) {
		R->index_state = IX_UNREADABLE;
		es_ilist_add(&R->warn, "index/", 0, 0, 0, "unreadable: %s", err.msg);
		return;
	}
	struct ixwalk w = {R, ix, 0, R->gmap.complete};
	struct es_head now;
	int nrc = es_index_get_head(ix, &now);
	/* The positions of versions before the head do not move: the
	 * look-back holds even if a writer appended since. */
	if (from > 1 && !R->purged)
		lookback(R, ix, from);
	if (!at_ih(R, nrc, &now)) {
		/* not known to be wrong, and readers may use it: snapshots are
		 * checked through it, --repair-index leaves it */
		es_index_abort(ix);
		R->index_state = IX_OK;
		es_ilist_add(&R->warn, "index/", 0, 0, 0,
			  "a writer appended while it was checked (its head moved from seq %llu "
			  "to %llu): compared with the log at its head only",
			  (unsigned long long)ih->seq, (unsigned long long)(nrc == 0 ? now.seq : 0));
		return;
	}
	ix_streams(R, ix, &w);
	ix_positions(R, ix);
	if (!(from > 1 && !R->purged) && w.complete && R->ixissues.n == 0) {
		uint64_t n = 0;
		for (size_t i = 0; i < R->gmap.cap; i++)
			n += R->gmap.e[i].used && R->gmap.e[i].first_seq <= R->head_seq;
		if (w.seen != n)
			ixfail(R, "the index has %llu streams, the log %llu",
			       (unsigned long long)w.seen, (unsigned long long)n);
	}
	if (from <= 1 && !R->log_failed && R->ixissues.n == 0)
		ix_digest(R, ix);
	es_index_abort(ix);
	R->index_state = R->ixissues.n ? IX_BAD : IX_OK;
}

int es_verify_index_repair(struct run *R, struct es_error *err)
{
	struct es_store s;

	if (es_store_open(&s, R->dir, ES_OPEN_WRITE, err) || es_store_lock(&s, err)) {
		es_store_close(&s);
		return err->code;
	}
	if (es_index_begin(s.index, 1, err) || es_store_rebuild_index(&s, err) ||
	    es_index_commit(s.index, err)) {
		es_store_unlock(&s);
		es_store_close(&s);
		return err->code;
	}
	es_store_unlock(&s);
	es_store_close(&s);
	return 0;
}

/* Snapshots of one stream directory, v[0..n): each read and checked on its
 * own; those under the default reducer recomputed by one replay; the
 * others (their reducer spec is not at hand) checked against the log. */
static int snap_stream(struct run *R, struct es_store *s, const struct es_reducer *red,
		       struct es_snapshot *v, size_t n, size_t *counts, struct es_error *err)
{
	struct es_snapshot **mine = calloc(n, sizeof(*mine));
	const char **bad = calloc(n, sizeof(*bad));
	size_t m = 0;
	int rc = 0;

	if (!mine || !bad) {
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	uint64_t purged = es_archive_purged_seq(s);
	int part = n > 0 && !v[0].bad && es_snapshot_history_purged(s, v[0].stream, v[0].slen);
	for (size_t i = 0; i < n && !rc; i++) {
		const char *why = NULL;
		if (v[i].bad) {
			es_ilist_add(&R->post, v[i].path + v[i].rel, 0, 0, v[i].seq, "%s", v[i].bad);
		} else if (v[i].seq <= purged) {
			/* stale, as a snapshot the log no longer holds is (es-snapshot(1)):
			 * readers ignore it */
			es_ilist_add(&R->post, v[i].path + v[i].rel, 0, 0, v[i].seq,
				  "snapshot of '%s' at version %llu: its event was purged "
				  "(es-archive --purge-before): stale", v[i].stream,
				  (unsigned long long)v[i].version);
		} else if (!part && strcmp(v[i].reducer, es_reducer_id(red)) == 0) {
			mine[m++] = &v[i];
		} else if ((rc = es_snapshot_check_log(s, &v[i], &why, err)) == ES_SNAP_NO) {
			es_ilist_add(&R->post, v[i].path + v[i].rel, 0, 0, v[i].seq,
				  "snapshot of '%s' at version %llu: %s", v[i].stream,
				  (unsigned long long)v[i].version, why);
			rc = 0;
		} else if (rc == 0) {
			counts[part ? 2 : 1]++;
		}
	}
	int log_only; /* 0 here: a part-purged stream's are not in mine */
	if (!rc && m)
		rc = es_snapshot_verify(s, red, mine, m, bad, &log_only, err);
	for (size_t i = 0; i < m && !rc; i++) {
		if (bad[i])
			es_ilist_add(&R->post, mine[i]->path + mine[i]->rel, 0, 0, mine[i]->seq,
				  "snapshot of '%s' at version %llu: %s", mine[i]->stream,
				  (unsigned long long)mine[i]->version, bad[i]);
		else
			counts[0]++;
	}
out:
	free(mine);
	free(bad);
	return rc;
}

/* --snapshots: only over an intact log and an index that matches it (the
 * replays read streams through it, and es-verify changes nothing). */
int es_verify_snapshots(struct run *R, struct es_error *err)
{
	struct es_store s;
	struct es_reducer *red = NULL;
	struct es_snapshot *v = NULL;
	size_t n = 0, counts[3] = {0, 0, 0};
	int rc;

	if (R->index_state != IX_OK) {
		es_ilist_add(&R->notes, NULL, 0, 0, 0, "snapshots: not checked: they are replayed "
			  "through the index, which is not up to date (--repair-index)");
		return 0;
	}
	if ((rc = es_store_open(&s, R->dir, 0, err)) != 0) {
		es_store_close(&s);
		return rc;
	}
	rc = es_store_index_ready(&s, err);
	if (rc == 1 || (rc == 0 && !s.index)) {
		es_ilist_add(&R->notes, NULL, 0, 0, 0, "snapshots: not checked: the index cannot be used");
		rc = 0;
		goto out;
	}
	if (rc || (rc = es_reducer_default(&red, err)) != 0 ||
	    (rc = es_snapshot_list(&s, NULL, 0, &v, &n, err)) != 0)
		goto out;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *why;
		rc = es_snapshot_read(&v[i], &why, err) > 1 ? err->code : 0;
	}
	for (size_t i = 0, j; i < n && !rc; i = j) {
		for (j = i + 1; j < n && es_snapshot_same_stream(&v[i], &v[j]); j++)
			;
		rc = snap_stream(R, &s, red, v + i, j - i, counts, err);
	}
	if (!rc)
		es_ilist_add(&R->notes, NULL, 0, 0, 0,
			  "snapshots: %zu recomputed from the log and equal; %zu under other "
			  "reducers checked against the log only", counts[0], counts[1]);
	if (!rc && counts[2])
		es_ilist_add(&R->notes, NULL, 0, 0, 0,
			  "snapshots: %zu of streams whose first events were purged checked "
			  "against the log only (they cannot be recomputed)", counts[2]);
out:
	es_snapshot_list_free(v, n);
	es_reducer_free(red);
	es_store_close(&s);
	return rc;
}

void es_verify_quarantine(struct run *R)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/quarantine", R->dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	if (n)
		es_ilist_add(&R->notes, NULL, 0, 0, 0,
			  "quarantine/ holds %zu file%s of bytes cut from torn tails", n,
			  n == 1 ? "" : "s");
}
