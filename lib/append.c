#include "append.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "io.h"
#include "strmap.h"
#include "timeq.h"

/* Per batch: each stream's version so far, each (stream, id) seen (the
 * value: the event's index in the batch). */
struct state {
	struct es_strmap versions;
	struct es_strmap ids;
	struct es_buf key;
};

/* What a run of batches under one lock knows for sure (see append.h). */
struct es_append_run {
	/* stream -> 2 * version + 1 when the stream had no event before the
	 * run ("fresh"): every id it has is then in ids below */
	struct es_strmap versions;
	/* hashes of stream "\0" id of the fresh streams' events */
	struct es_hashset ids;
};

struct es_append_run *es_append_run_new(void)
{
	return calloc(1, sizeof(struct es_append_run));
}

void es_append_run_free(struct es_append_run *run)
{
	if (!run)
		return;
	es_strmap_release(&run->versions);
	es_hashset_release(&run->ids);
	free(run);
}

static void run_forget(struct es_append_run *run)
{
	if (run) {
		es_strmap_clear(&run->versions);
		es_hashset_clear(&run->ids);
	}
}

/* st->key = stream "\0" id */
static int id_key(struct state *st, const struct es_batch *b, const struct es_event *ev)
{
	es_buf_reset(&st->key);
	return es_buf_add(&st->key, es_batch_str(b, ev->stream), ev->stream_len + 1) ||
	       es_buf_add(&st->key, es_batch_str(b, ev->id), ev->id_len);
}

/* The index is derived data: check what it says against the log before it
 * decides a version or a duplicate. 1 when it disagrees: (stream, version)
 * must be in the log where the index puts it (with the event's id when
 * want_id) and, for a stream's current version, no later version may be
 * indexed. */
static int index_disagrees(struct es_store *s, const struct es_batch *b,
			   const struct es_event *ev, uint64_t version, int current, int want_id)
{
	const char *stream = es_batch_str(b, ev->stream);
	struct es_error e = {0, ""};
	struct es_pos pos;
	struct es_rec r;
	const char *why;
	char *line = NULL;
	size_t cap = 0;
	int bad = 0, rc;

	if (current && es_index_get_pos(s->index, stream, ev->stream_len, version + 1, &pos) != 1)
		return 1;
	if (version == 0)
		return 0;
	if (es_index_get_pos(s->index, stream, ev->stream_len, version, &pos) != 0)
		return 1;
	if (es_archive_pos_purged(s, 0, &pos))
		return 0; /* purged by es-archive: nothing to check by */
	rc = es_store_read_pos(s, &pos, &line, &cap, &e);
	if (rc == ES_CORRUPT)
		bad = 1;
	else if (rc == 0)
		bad = es_rec_parse(line, pos.len - 1, 0, &r, &why) != 0 || r.seq != pos.seq ||
		      r.version != version || r.stream_len != ev->stream_js_len ||
		      memcmp(r.stream, es_batch_str(b, ev->stream_js), r.stream_len) != 0 ||
		      (want_id && (r.id_len != ev->id_js_len ||
				   memcmp(r.id, es_batch_str(b, ev->id_js), r.id_len) != 0));
	/* else the segment cannot be read here: nothing to check by */
	free(line);
	return bad;
}

/* The version of a stream before its first event of the batch: 0, -1
 * (read error) or 1 (the index disagrees with the log); *fresh tells
 * whether the stream had no event before the run (see fresh below). What
 * the index says (checked against the log) is kept in run, so the next
 * batch of the run asks neither again. */
static int first_version(struct es_store *s, struct es_append_run *run,
			 const struct es_batch *b, const struct es_event *ev, uint64_t *v,
			 int *fresh)
{
	const char *stream = es_batch_str(b, ev->stream);
	const uint64_t *known;
	uint64_t *rv;
	int added;

	*fresh = 0;
	if (!s) { /* a store not created yet (es_append_check_empty) */
		*v = 0;
		*fresh = 1;
		return 0;
	}
	if (run && (known = es_strmap_get(&run->versions, stream, ev->stream_len))) {
		*v = *known >> 1;
		*fresh = (int)(*known & 1);
		return 0;
	}
	if (es_index_version(s->index, stream, ev->stream_len, v) != 0)
		return -1;
	if (index_disagrees(s, b, ev, *v, 1, 0))
		return 1;
	if (run) {
		if (!(rv = es_strmap_put(&run->versions, stream, ev->stream_len, &added)))
			return -1;
		*rv = 2 * *v + (*v == 0);
		*fresh = *v == 0;
	}
	return 0;
}

/* After a batch is durable: its streams' versions and (fresh streams') ids;
 * idh[i] is the hash of a given id's key (plan's), reused. */
static int run_learn(struct es_append_run *run, struct state *st, const struct es_batch *b,
		     size_t from, size_t n, const unsigned char *fate, const uint64_t *ver,
		     const uint64_t *idh)
{
	int added;

	if (!run)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct es_event *ev = &b->ev[from + i];
		uint64_t *rv;
		int fresh;
		if (fate[i] != ES_STORED)
			continue;
		/* one lookup: plan put every stream of the batch in (an entry
		 * new here was not known, so it counts as not fresh) */
		rv = es_strmap_put(&run->versions, es_batch_str(b, ev->stream), ev->stream_len,
				   &added);
		if (!rv)
			return -1;
		fresh = !added && (*rv & 1);
		*rv = 2 * ver[i] + (unsigned)fresh;
		if (fresh) {
			uint64_t h = idh[i];
			if (!ev->id_given) {
				if (id_key(st, b, ev))
					return -1;
				h = es_strmap_hash(st->key.p, st->key.len);
			}
			if (es_hashset_add(&run->ids, h))
				return -1;
		}
	}
	return 0;
}

static const char *expect_name(enum es_expect e, uint64_t v, char *buf, size_t n)
{
	switch (e) {
	case ES_EXPECT_NONE: return "none";
	case ES_EXPECT_EXISTS: return "exists";
	case ES_EXPECT_EXACT: snprintf(buf, n, "%llu", (unsigned long long)v); return buf;
	default: return "any";
	}
}

static int expect_ok(enum es_expect e, uint64_t want, uint64_t cur)
{
	switch (e) {
	case ES_EXPECT_NONE: return cur == 0;
	case ES_EXPECT_EXISTS: return cur > 0;
	case ES_EXPECT_EXACT: return cur == want;
	default: return 1;
	}
}

/* Decide fate, version and expectation of every event; s NULL: a store
 * that does not exist yet (every stream at version 0, no id stored). */
static int plan(struct es_store *s, struct es_append_run *run, struct state *st,
		const struct es_batch *b, size_t from, size_t n, const struct es_append_opts *o,
		unsigned char *fate, uint64_t *ver, size_t *dup_of, uint64_t *idh,
		struct es_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct es_event *ev = &b->ev[from + i];
		const char *stream = es_batch_str(b, ev->stream);
		/* 2 * version so far + fresh: the stream had no event before
		 * the run, so every id it has is in run->ids */
		uint64_t *sv = es_strmap_get(&st->versions, stream, ev->stream_len);
		int first_of_stream = sv == NULL, fresh, added;
		uint64_t cur, found;

		if (sv) {
			cur = *sv >> 1;
			fresh = (int)(*sv & 1);
		} else {
			int cv = first_version(s, run, b, ev, &cur, &fresh);
			if (cv < 0)
				return es_fail(err, ES_IO, "index: read error");
			if (cv > 0)
				return es_fail(err, ES_CORRUPT,
					       "index: stream '%s' disagrees with the log", stream);
		}
		fate[i] = ES_STORED;
		dup_of[i] = (size_t)-1;
		if (ev->id_given) {
			uint64_t *slot;
			if (id_key(st, b, ev))
				return es_fail(err, ES_IO, "out of memory");
			/* one hash of the key for the batch's ids, the run's and
			 * (idh) run_learn's */
			idh[i] = es_strmap_hash(st->key.p, st->key.len);
			if (!(slot = es_strmap_put_h(&st->ids, st->key.p, st->key.len, idh[i],
						     &added)))
				return es_fail(err, ES_IO, "out of memory");
			if (!added) {
				/* twice in this batch: the first one decides */
				fate[i] = ES_DUPLICATE;
				dup_of[i] = (size_t)*slot;
				ver[i] = ver[dup_of[i]];
				continue;
			}
			/* (a later copy of this id in the batch follows this
			 * event, stored or found in the index below) */
			*slot = i;
			/* A stream new in this run has only ids the run stored:
			 * ask the index only when the run's set may hold it. */
			if (s && (!fresh || es_hashset_has(&run->ids, idh[i]))) {
				int r = es_index_find_id(s->index, stream, ev->stream_len,
							 es_batch_str(b, ev->id), ev->id_len, &found);
				if (r < 0)
					return es_fail(err, ES_IO, "index: read error");
				if (r == 0) {
					if (index_disagrees(s, b, ev, found, 0, 1))
						return es_fail(err, ES_CORRUPT,
							       "index: stream '%s': an event id "
							       "disagrees with the log", stream);
					fate[i] = ES_DUPLICATE;
					ver[i] = found;
					continue;
				}
			}
		}
		enum es_expect e = ev->expect;
		uint64_t want = ev->expect_version;
		if (e == ES_EXPECT_UNSET && first_of_stream) {
			e = o->expect;
			want = o->expect_version;
		}
		if (!expect_ok(e, want, cur)) {
			char buf[32], where[ES_WHERE_MAX];
			return es_fail(err, ES_CONFLICT,
				       "%s: stream '%s': expected version %s, actual %llu",
				       es_event_where(b, ev, where, sizeof(where)), stream,
				       expect_name(e, want, buf, sizeof(buf)),
				       (unsigned long long)cur);
		}
		ver[i] = cur + 1;
		if (!sv && !(sv = es_strmap_put(&st->versions, stream, ev->stream_len, &added)))
			return es_fail(err, ES_IO, "out of memory");
		*sv = 2 * (cur + 1) + (uint64_t)fresh;
	}
	return 0;
}

int es_append_check_empty(const struct es_batch *b, size_t n, const struct es_append_opts *o,
			  struct es_error *err)
{
	struct state st = {ES_STRMAP_INIT, ES_STRMAP_INIT, ES_BUF_INIT};
	unsigned char *fate = malloc(n ? n : 1);
	uint64_t *ver = calloc(n ? n : 1, sizeof(*ver));
	size_t *dup_of = calloc(n ? n : 1, sizeof(*dup_of));
	uint64_t *idh = calloc(n ? n : 1, sizeof(*idh));
	int rc = !fate || !ver || !dup_of || !idh
			 ? es_fail(err, ES_IO, "out of memory")
			 : plan(NULL, NULL, &st, b, 0, n, o, fate, ver, dup_of, idh, err);

	es_strmap_release(&st.versions);
	es_strmap_release(&st.ids);
	es_buf_release(&st.key);
	free(fate);
	free(ver);
	free(dup_of);
	free(idh);
	return rc;
}

/* Build the lines of the stored events; offsets of each line in lines. */
static int build(struct es_store *s, const struct es_batch *b, size_t from, size_t n,
		 const struct es_append_opts *o, const unsigned char *fate, const uint64_t *ver,
		 struct es_buf *lines, size_t *loff, struct es_head *h, struct es_error *err)
{
	size_t last = n;
	int64_t now = es_now_us();
	char ts[ES_TS_LEN + 1];

	for (size_t i = 0; i < n; i++)
		if (fate[i] == ES_STORED)
			last = i;
	if (now < h->ts)
		now = h->ts; /* ts never decreases along the log */
	es_ts_format(now, ts);
	for (size_t i = 0; i < n; i++) {
		const struct es_event *ev = &b->ev[from + i];
		char hash[ES_HASH_HEX + 1];
		if (fate[i] != ES_STORED)
			continue;
		if (o->import_ts) {
			if (ev->ts < h->ts) {
				char prev[ES_TS_LEN + 1], where[ES_WHERE_MAX];
				es_ts_format(h->ts, prev);
				return es_fail(err, ES_DATA,
					       "%s: \"ts\" is before the last stored ts %s",
					       es_event_where(b, ev, where, sizeof(where)), prev);
			}
			h->ts = ev->ts;
			es_ts_format(ev->ts, ts);
		} else {
			h->ts = now;
		}
		loff[i] = lines->len;
		if (es_record_build(lines, s->chain, h->hash, b, ev, h->seq + 1, ver[i], ts,
				    i != last, hash))
			return es_fail(err, ES_IO, "out of memory");
		h->seq++;
		memcpy(h->hash, hash, ES_HASH_HEX + 1);
	}
	return 0;
}

/* The batch failed before it was durable: cut the segment back to size.
 * When that fails too, the bytes may be whole, valid records that the next
 * writer's recovery would keep, so leave it a note to cut them
 * (es_store_note_undo). Only if the note fails as well can the batch still
 * show up: then the message does not say "not stored". */
static int undo(struct es_store *s, uint64_t size, struct es_error *err)
{
	char why[sizeof(err->msg)];

	if ((es_ftruncate(s->active_fd, (off_t)size) == 0 && es_fdatasync(s->active_fd) == 0) ||
	    es_store_note_undo(s, s->segs[s->nsegs - 1], size) == 0)
		return err->code;
	snprintf(why, sizeof(why), "%s", err->msg + strlen("not stored: "));
	return es_fail(err, ES_IO, "not acknowledged: %s; cutting the batch back failed too, "
		       "so it may still be in the log", why);
}

static int write_batch(struct es_store *s, const struct es_buf *lines, struct es_error *err)
{
	struct stat st;
	uint64_t size;
#ifdef ES_TEST_HOOKS
	/* in two halves, so that a test can crash between them (ES_CRASH=mid-write) */
	size_t half = lines->len / 2;
#else
	size_t half = 0; /* one write(2): no torn tail of our own making */
#endif

	if (fstat(s->active_fd, &st) != 0)
		return es_fail_errno(err, ES_IO, "not stored: stat");
	size = (uint64_t)st.st_size;
	es_crash_point("before-write");
	if (es_write_all(s->active_fd, lines->p, half) != 0)
		goto fail;
	es_crash_point("mid-write");
	es_stop_point("writer-mid-write");
	if (es_write_all(s->active_fd, lines->p + half, lines->len - half) != 0)
		goto fail;
	es_crash_point("after-write");
	if (es_fdatasync(s->active_fd) != 0) {
		/* Never retried: after a failed writeback the pages may be
		 * marked clean, so a second fdatasync could lie. */
		es_fail_errno(err, ES_IO, "not stored: fdatasync failed");
		return undo(s, size, err);
	}
	es_crash_point("after-sync");
	return 0;
fail:
	es_fail_errno(err, ES_IO, "not stored: write failed");
	return undo(s, size, err);
}

/* Put the batch's keys and the new head into the index transaction; the
 * caller commits it once the batch is durable. */
static int index_batch(struct es_store *s, const struct es_batch *b, size_t from, size_t n,
		       const unsigned char *fate, const uint64_t *ver, const size_t *loff,
		       const struct es_buf *lines, uint64_t seg, uint64_t base,
		       const struct es_head *h, struct es_error *err)
{
	uint64_t seq = s->head.seq;
	struct es_index_event *ie = malloc((n ? n : 1) * sizeof(*ie));
	size_t m = 0;
	int rc;

	if (!ie)
		return es_fail(err, ES_IO, "index: out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct es_event *ev = &b->ev[from + i];
		const char *nl;
		if (fate[i] != ES_STORED)
			continue;
		nl = memchr(lines->p + loff[i], '\n', lines->len - loff[i]);
		ie[m].stream = es_batch_str(b, ev->stream);
		ie[m].stream_len = ev->stream_len;
		ie[m].id = es_batch_str(b, ev->id);
		ie[m].id_len = ev->id_len;
		ie[m].version = ver[i];
		ie[m].pos.seq = ++seq;
		ie[m].pos.seg = seg;
		ie[m].pos.off = base + loff[i];
		ie[m].pos.len = (uint32_t)(nl - (lines->p + loff[i]) + 1);
		m++;
	}
	rc = es_index_put_events(s->index, ie, m, err);
	free(ie);
	return rc ? rc : es_index_put_head(s->index, h, err);
}

/* A batch of at least this many bytes is written and synced by a helper
 * thread while this one fills the index transaction (see log_and_index);
 * below it, as for a single event, a thread would cost more than it saves. */
#define OVERLAP_BYTES (256u << 10)

struct log_job {
	struct es_store *s;
	const struct es_buf *lines;
	/* what the run learns once the batch is durable (run_learn) */
	struct es_append_run *run;
	struct state *st;
	const struct es_batch *b;
	size_t from, n;
	const unsigned char *fate;
	const uint64_t *ver, *idh;
	struct es_error err;
	int rc;
};

/* Write and sync the batch; once it is durable, the run learns it. */
static void *log_job_run(void *arg)
{
	struct log_job *j = arg;

	j->rc = write_batch(j->s, j->lines, &j->err);
	if (j->rc == 0 && run_learn(j->run, j->st, j->b, j->from, j->n, j->fate, j->ver,
					  j->idh))
		run_forget(j->run); /* no memory to remember: ask the index again */
	return NULL;
}

/* Write the batch, make it durable, then commit its index keys. A big
 * batch's keys go into the (uncommitted) index transaction while a helper
 * thread writes and syncs the log, then updates what the run knows: the
 * index is committed only after the fdatasync returned, so it is never
 * ahead of the log; the index is this thread's alone, the run and st the
 * helper's until it is joined. An index failure after the batch is durable
 * only leaves the index behind: the next batch of the run (or the next
 * writer) catches it up. */
static int log_and_index(struct es_store *s, struct es_append_run *run, struct state *st,
			 const struct es_batch *b, size_t from, size_t n,
			 const unsigned char *fate, const uint64_t *ver, const uint64_t *idh,
			 const size_t *loff, const struct es_buf *lines, uint64_t base,
			 const struct es_head *h, struct es_error *err)
{
	struct log_job job = {s, lines, run, st, b, from, n, fate, ver, idh, {0, ""}, 0};
	pthread_t t;
	int helper = lines->len >= OVERLAP_BYTES && pthread_create(&t, NULL, log_job_run, &job) == 0;
	int irc;

	if (!helper && (job.rc = write_batch(s, lines, &job.err))) {
		*err = job.err;
		return job.rc;
	}
	irc = index_batch(s, b, from, n, fate, ver, loff, lines, h->seg, base, h, err);
	if (helper) {
		pthread_join(t, NULL);
		if (job.rc) {
			/* not stored: drop its keys (with those the held
			 * transaction had of earlier, durable batches: the
			 * index is then behind, as below) */
			es_index_discard(s->index);
			s->index_behind = 1;
			*err = job.err;
			return job.rc;
		}
	} else if (run_learn(run, st, b, from, n, fate, ver, idh)) {
		run_forget(run);
	}
	if (irc || es_index_commit(s->index, err)) {
		/* The events are stored; only the index is behind (with
		 * every batch its held transaction had, in a bulk run). */
		es_index_discard(s->index);
		s->index_behind = 1;
		es_error_clear(err);
	}
	return 0;
}

/* The batch's acknowledgement (each event's stored line, in input order)
 * into out, before anything is written: once the batch is durable nothing
 * may fail that would make it "not stored". Events already in the log are
 * read through the open (write) index transaction. */
static int emit(struct es_store *s, const struct es_batch *b, size_t from, size_t n,
		unsigned char *fate, const uint64_t *ver, const size_t *loff,
		const size_t *dup_of, const struct es_buf *lines, struct es_buf *out,
		struct es_error *err)
{
	char *buf = NULL;
	size_t cap = 0;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t src = fate[i] == ES_STORED ? i : dup_of[i];
		if (src != (size_t)-1 && fate[src] == ES_STORED) {
			const char *l = lines->p + loff[src];
			const char *nl = memchr(l, '\n', lines->len - loff[src]);
			if (es_buf_add(out, l, (size_t)(nl - l) + 1))
				rc = es_fail(err, ES_IO, "out of memory");
			continue;
		}
		/* Already in the log before this batch. */
		const struct es_event *ev = &b->ev[from + i];
		struct es_pos pos;
		if (es_index_get_pos(s->index, es_batch_str(b, ev->stream), ev->stream_len, ver[i],
				     &pos) != 0)
			rc = es_fail(err, ES_IO, "index: lost the position of a stored event");
		else if (es_archive_pos_purged(s, 0, &pos))
			fate[i] = ES_DUPLICATE_PURGED; /* no line left to print */
		else if ((rc = es_store_read_pos(s, &pos, &buf, &cap, err)) == 0 &&
			 es_buf_add(out, buf, pos.len))
			rc = es_fail(err, ES_IO, "out of memory");
	}
	free(buf);
	return rc;
}

int es_append_batch(struct es_store *s, struct es_append_run *run, const struct es_batch *b,
		    size_t from, size_t n, const struct es_append_opts *o, struct es_buf *out,
		    unsigned char *fate, struct es_error *err)
{
	struct state st = {ES_STRMAP_INIT, ES_STRMAP_INIT, ES_BUF_INIT};
	struct es_buf lines = ES_BUF_INIT;
	uint64_t *ver = calloc(n ? n : 1, sizeof(*ver));
	size_t *loff = calloc(n ? n : 1, sizeof(*loff));
	size_t *dup_of = calloc(n ? n : 1, sizeof(*dup_of));
	uint64_t *idh = calloc(n ? n : 1, sizeof(*idh));
	struct es_head h = s->head;
	struct stat sb;
	size_t stored = 0;
	int rc;

	if (!ver || !loff || !dup_of || !idh) {
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	if ((rc = es_store_catch_up_index(s, err)))
		goto out;
	for (int rebuilt = 0;; rebuilt = 1) {
		if ((rc = es_index_begin(s->index, 1, err)) == 0)
			rc = plan(s, run, &st, b, from, n, o, fate, ver, dup_of, idh, err);
		if (rc == 0 || rebuilt || (rc != ES_CORRUPT && !es_store_index_damaged(err)))
			break;
		/* The index disagrees with the log, or LMDB found it damaged:
		 * it is derived data, so start it again from the log (under the
		 * lock) and plan again. */
		es_strmap_clear(&st.versions);
		es_strmap_clear(&st.ids);
		run_forget(run);
		if ((rc = es_store_reset_index(s, err)))
			goto out;
	}
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++)
		stored += fate[i] == ES_STORED;
	if (stored > 0 && (rc = build(s, b, from, n, o, fate, ver, &lines, loff, &h, err)))
		goto out;
	if (out && (rc = emit(s, b, from, n, fate, ver, loff, dup_of, &lines, out, err)))
		goto out;
	if (stored > 0) {
		if ((rc = es_store_prepare_append(s, lines.len, err)))
			goto out;
		if (fstat(s->active_fd, &sb) != 0) {
			rc = es_fail_errno(err, ES_IO, "not stored: stat");
			goto out;
		}
		h.seg = s->segs[s->nsegs - 1];
		h.end = (uint64_t)sb.st_size + lines.len;
		if ((rc = log_and_index(s, run, &st, b, from, n, fate, ver, idh, loff, &lines,
					(uint64_t)sb.st_size, &h, err)))
			goto out;
		/* Durable from here on; the index may lag and is caught up by
		 * the next batch of the run, or the next writer's recovery if
		 * this process dies now. */
		s->head = h;
		es_crash_point("after-index");
	} else {
		es_index_abort(s->index);
	}
out:
	if (rc && s->index)
		es_index_abort(s->index);
	es_strmap_release(&st.versions);
	es_strmap_release(&st.ids);
	es_buf_release(&st.key);
	es_buf_release(&lines);
	free(ver);
	free(loff);
	free(dup_of);
	free(idh);
	return rc;
}
