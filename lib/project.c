/* project.c: es-project's runs: incremental, rebuild, --from, --stdout,
 * --follow over a store; pipes; --status; --pause and --resume. */
#include "project.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "io.h"
#include "store.h"
#include "timeseek.h"

struct run {
	const struct es_pspec *spec;
	const struct es_project_opts *o;
	struct es_store s;
	struct es_pdir pd;
	struct es_proj p;
	struct es_log lg;
	struct es_pscan sc;      /* the bulk of a run: blocks of the mapped log */
	uint64_t next_seg, next_off; /* where the line after the base starts */
	uint64_t arc_until;      /* read the archive through es_log up to this seq first */
	int store_open, lg_open, proj_open, raw;
	int fresh;               /* building from nothing (no checkpoint, --rebuild, --from) */
	struct es_pckpt base;    /* the checkpoint the engine's model started from */
	uint64_t applied_base;   /* es_proj_applied() at that checkpoint */
};

static int stopped(const struct run *r)
{
	return r->o->stop && *r->o->stop;
}

static void note(const struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const struct run *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!r->o->note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->o->note(r->o->arg, msg);
}

static int out_msgs(const struct run *r, const struct es_pmsgs *m, struct es_error *err)
{
	for (size_t i = 0; i < m->n; i++)
		if (r->o->out(r->o->arg, m->text.p + m->v[i].off, m->v[i].len))
			return es_fail(err, ES_IO, "cannot write to standard output");
	return 0;
}

/* Dead letters as notes, for runs that have no dead.ndjson to keep them. */
static void note_dead(const struct run *r)
{
	for (size_t i = 0; i < r->p.dead.n; i++) {
		const struct es_pmsg *m = &r->p.dead.v[i];
		json_t *j = json_loadb(r->p.dead.text.p + m->off, m->len, 0, NULL);
		note(r, "skipped: %s", json_string_value(json_object_get(j, "reason")));
		json_decref(j);
	}
}

static int check_spec(const struct run *r, struct es_error *err)
{
	const struct es_pckpt *cp = &r->pd.cp;

	if (cp->spec_version != r->spec->version)
		return es_fail(err, ES_NOMATCH, "projection '%s': the spec's version is %lld but the "
			       "model was built by version %lld: run with --rebuild",
			       r->spec->name, (long long)r->spec->version, (long long)cp->spec_version);
	if (strcmp(cp->spec_sha, r->spec->sha) != 0 &&
	    (!r->spec->sha_written[0] || strcmp(cp->spec_sha, r->spec->sha_written) != 0))
		return es_fail(err, ES_NOMATCH, "projection '%s': the spec changed since the model was "
			       "built, but its version (%lld) did not: bump \"version\" and run with "
			       "--rebuild", r->spec->name, (long long)r->spec->version);
	return 0;
}

/* The first record read must be the checkpoint's own: same seq, same hash. */
static int verify_base(struct run *r, struct es_error *err)
{
	const char *line;
	size_t len;
	struct es_rec rec;
	int n = es_log_next(&r->lg, &line, &len, &rec, 0, err);

	if (n < 0)
		return -n;
	if (n == 0 || rec.seq != r->base.seq)
		return es_fail(err, ES_NOMATCH, "projection '%s': the log has no seq %llu, where the "
			       "checkpoint is: the log changed under the projection; run with --rebuild",
			       r->spec->name, (unsigned long long)r->base.seq);
	if (memcmp(rec.hash, r->base.hash, ES_HASH_HEX) != 0)
		return es_fail(err, ES_NOMATCH, "projection '%s': seq %llu: the log's hash is not the "
			       "checkpoint's: the log changed under the projection; run with --rebuild",
			       r->spec->name, (unsigned long long)r->base.seq);
	r->next_seg = r->lg.seg;
	r->next_off = r->lg.off + len + 1;
	return 0;
}

/* The checkpoint's record was purged: the purge anchor (the last purged
 * record's seq and hash) stands for it when it is that record. A
 * checkpoint before the anchor lacks purged events it never applied. */
static int purged_base(struct run *r, struct es_error *err)
{
	const struct es_archive_purge *pg = &r->s.archive->purge;

	if (r->base.seq < pg->last_seq)
		return es_fail(err, ES_NOMATCH, "projection '%s': its checkpoint (seq %llu) is "
			       "before the history es-archive purged (up to seq %llu): the events "
			       "between were never applied; run with --rebuild (a rebuild covers "
			       "what is left)", r->spec->name, (unsigned long long)r->base.seq,
			       (unsigned long long)pg->last_seq);
	if (memcmp(pg->last_hash, r->base.hash, ES_HASH_HEX) != 0)
		return es_fail(err, ES_NOMATCH, "projection '%s': seq %llu: the purge anchor's hash "
			       "is not the checkpoint's: the log changed under the projection; run "
			       "with --rebuild", r->spec->name, (unsigned long long)r->base.seq);
	return 0;
}

static void close_source(struct run *r)
{
	if (r->lg_open)
		es_log_close(&r->lg);
	if (r->raw)
		es_pscan_close(&r->sc);
	r->lg_open = r->raw = 0;
}

static int open_scan(struct run *r, uint64_t seg, uint64_t off, struct es_error *err)
{
	close_source(r);
	if (es_pscan_open(&r->sc, &r->s, seg, off, err)) {
		es_pscan_close(&r->sc);
		return err->code;
	}
	r->raw = 1;
	return 0;
}

/* Open the log at the base: verify the base record, then go on in blocks
 * of the mapped log (raw), or through es_log (reruns after a fault, and
 * following). Archived history is read through es_log first, up to
 * arc_until, and the blocks begin after it. */
static int open_source(struct run *r, int raw, struct es_error *err)
{
	uint64_t arc, purged = es_archive_purged_seq(&r->s);
	/* es-archive --purge-before deleted the checkpoint's record (a
	 * checkpoint at seq 0, of a model built on an empty store, is before
	 * it too; a fresh build reads what is left): the anchor stands for it */
	int anchored = purged && r->base.seq <= purged && (r->base.seq || !r->fresh);

	close_source(r);
	r->next_seg = r->next_off = 0;
	r->arc_until = 0;
	if (anchored && purged_base(r, err))
		return err->code;
	/* the checkpoint's record is read again, and checked, when it is there */
	if (es_log_open_store(&r->lg, &r->s, anchored ? r->base.seq + 1 : r->base.seq ? r->base.seq : 1,
			      err))
		return err->code;
	r->lg_open = 1;
	if (!anchored && r->base.seq && verify_base(r, err))
		return err->code;
	if (!raw)
		return 0;
	arc = es_pscan_archive_end(&r->s);
	if (r->base.seq < arc) {
		r->arc_until = arc; /* es_log first; open_scan(0) after it */
		return 0;
	}
	return open_scan(r, r->base.seq && r->base.seq == arc ? 0 : r->next_seg,
			 r->base.seq && r->base.seq == arc ? 0 : r->next_off, err);
}

static int load_base(struct run *r, struct es_error *err)
{
	char *m, *w;
	size_t ml, wl;
	int rc;

	if (es_pdir_read_model(&r->pd, &m, &ml, &w, &wl, err))
		return err->code;
	rc = es_proj_load(&r->p, m, ml, w, wl, err);
	free(m);
	free(w);
	if (rc)
		return es_error_prefix(err, "%s", r->pd.dir);
	if (!r->fresh && check_spec(r, err))
		return err->code;
	r->base = r->pd.cp;
	return 0;
}

/* --from: find the first record at or after the time by binary search and
 * start there; the records before it count as read (filtered out), so the
 * base is the last of them. */
static int seek_from(struct run *r, struct es_error *err)
{
	struct es_seek k;
	struct es_seek_pos pos;
	const char *line;
	size_t len;
	struct es_rec rec;
	int rc;

	if (es_seek_init(&k, &r->s, err))
		return err->code;
	rc = es_seek_time(&k, r->p.since, 0, &pos, err);
	es_seek_release(&k);
	if (rc)
		return rc;
	if (pos.older || (!pos.at_end && pos.seq <= es_pscan_archive_end(&r->s)))
		return 0; /* in the archive: read from the start, filtered by time */
	close_source(r);
	if (pos.prev_seq) {
		if (es_log_open_store(&r->lg, &r->s, pos.prev_seq, err))
			return err->code;
		r->lg_open = 1;
		rc = es_log_next(&r->lg, &line, &len, &rec, 0, err);
		if (rc < 0)
			return -rc;
		if (rc == 0 || rec.seq != pos.prev_seq)
			return es_fail(err, ES_CORRUPT, "seq %llu: not found where the time search "
				       "put it", (unsigned long long)pos.prev_seq);
		r->p.seq = rec.seq;
		memcpy(r->p.hash, rec.hash, ES_HASH_HEX);
		memcpy(r->p.ts, rec.ts, ES_TS_LEN);
		close_source(r);
	}
	r->arc_until = 0;
	return open_scan(r, pos.at_end ? UINT64_MAX : pos.seg, pos.off, err);
}

/* Reset the engine to the base checkpoint and open the log right after it. */
static int start(struct run *r, int raw, struct es_error *err)
{
	es_proj_reset(&r->p);
	r->applied_base = 0;
	if (!r->fresh && load_base(r, err))
		return err->code;
	if (r->fresh)
		memset(&r->base, 0, sizeof(r->base));
	if (open_source(r, raw, err))
		return err->code;
	r->p.seq = r->base.seq;
	memcpy(r->p.hash, r->base.seq ? r->base.hash : ES_GENESIS, ES_HASH_HEX + 1);
	memcpy(r->p.ts, r->base.ts, sizeof(r->p.ts));
	if (raw && r->fresh && r->p.has_since)
		return seek_from(r, err);
	return 0;
}

static int commit(struct run *r, int faulted, struct es_error *err)
{
	struct es_pckpt cp;
	uint64_t applied = es_proj_applied(&r->p);

	memset(&cp, 0, sizeof(cp));
	cp.seq = r->p.seq;
	memcpy(cp.hash, r->p.hash, sizeof(cp.hash));
	memcpy(cp.ts, r->p.ts, sizeof(cp.ts));
	cp.spec_version = r->spec->version;
	memcpy(cp.spec_sha, r->spec->sha, sizeof(cp.spec_sha));
	cp.state = faulted ? ES_PSTATE_FAULTED : ES_PSTATE_OK;
	cp.events = r->base.events + applied - r->applied_base;
	if (r->fresh) {
		es_ts_format(es_now_us(), cp.built);
		if (r->p.has_since)
			memcpy(cp.from, r->p.since, sizeof(cp.from));
	} else {
		memcpy(cp.built, r->base.built, sizeof(cp.built));
		memcpy(cp.from, r->base.from, sizeof(cp.from));
	}
	if (faulted) {
		cp.fault_seq = r->p.fail_seq;
		memcpy(cp.fault, r->p.fail, sizeof(cp.fault));
	}
	/* alerts go out before the commit covers them: at least once on
	 * stdout, exactly once in alerts.ndjson */
	if (!r->o->quiet && out_msgs(r, &r->p.alerts, err))
		return err->code;
	if (es_pdir_commit(&r->pd, &r->p, &cp, r->fresh, err))
		return err->code;
	if (r->o->verbose)
		note(r, "%s: committed generation %llu: seq %llu..%llu, %llu events applied, %llu keys, "
		     "%zu alerts, %zu dead letters%s", r->spec->name, (unsigned long long)cp.gen,
		     (unsigned long long)r->base.seq, (unsigned long long)cp.seq,
		     (unsigned long long)(applied - r->applied_base), (unsigned long long)cp.keys,
		     r->p.alerts.n, r->p.dead.n, faulted ? ", faulted" : "");
	es_proj_cut_msgs(&r->p, 0);
	r->fresh = 0;
	r->base = r->pd.cp;
	r->applied_base = applied;
	return 0;
}

/* Stop mode, event S failed: the model must stop at S-1. Partitions may
 * have gone past S, so build again from the base up to S-1 and commit that
 * as faulted. */
static int fault(struct run *r, struct es_error *err)
{
	uint64_t s = r->p.fail_seq;
	char why[512];

	memcpy(why, r->p.fail, sizeof(why));
	if (r->p.fail_code != ES_DATA)
		return es_fail(err, r->p.fail_code, "%s", why);
	if (r->o->to_stdout)
		return es_fail(err, ES_DATA, "projection '%s': %s", r->spec->name, why);
	if (start(r, 0, err) || (s > 1 && es_proj_feed(&r->p, &r->lg, s - 1, err)) ||
	    es_proj_sync(&r->p, err))
		return err->code;
	if (r->p.failed)
		return es_fail(err, ES_IO, "projection '%s': seq %llu failed again on the way back: %s",
			       r->spec->name, (unsigned long long)r->p.fail_seq, r->p.fail);
	r->p.failed = 1;
	r->p.fail_seq = s;
	memcpy(r->p.fail, why, sizeof(r->p.fail));
	if (commit(r, 1, err))
		return err->code;
	return es_fail(err, ES_DATA, "projection '%s': %s; the model stays at seq %llu, state "
		       "faulted", r->spec->name, why, (unsigned long long)r->p.seq);
}

/* Read whatever the log has now, then commit it (when anything was read). */
static int step(struct run *r, struct es_error *err)
{
	uint64_t before = r->p.seq;
	int rc = 0;

	if (r->arc_until) {
		rc = es_proj_feed(&r->p, &r->lg, r->arc_until, err);
		if (!rc && !stopped(r)) {
			r->arc_until = 0;
			rc = open_scan(r, 0, 0, err);
		}
	}
	if (!rc && !r->arc_until)
		rc = r->raw ? es_proj_feed_scan(&r->p, &r->sc, err)
			    : es_proj_feed(&r->p, &r->lg, UINT64_MAX, err);

	if (rc || es_proj_sync(&r->p, err))
		return err->code;
	if (r->p.failed)
		return fault(r, err);
	if (r->o->to_stdout)
		return 0;
	if (r->fresh || r->p.seq != before)
		return commit(r, 0, err);
	return 0;
}

static void nap(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL); /* a signal cuts it short: that is fine */
}

static int follow(struct run *r, struct es_error *err)
{
	/* new events come a few at a time: through es_log, which follows */
	if (r->raw || r->arc_until) {
		close_source(r);
		r->arc_until = 0;
		if (es_log_open_store(&r->lg, &r->s, r->p.seq + 1, err))
			return err->code;
		r->lg_open = 1;
	}
	while (!stopped(r)) {
		int more;
		uint64_t before = r->p.read;
		if (es_pdir_reload(&r->pd, err))
			return err->code;
		if (r->pd.cp.state == ES_PSTATE_PAUSED) {
			nap(r->o->interval_ms);
			continue;
		}
		more = es_log_refresh(&r->lg, err);
		if (more < 0)
			return -more;
		if (step(r, err))
			return err->code;
		if (r->p.read == before)
			nap(r->o->interval_ms);
	}
	return 0;
}

static int run_store(struct run *r, struct es_error *err)
{
	const struct es_project_opts *o = r->o;
	int rc = es_store_open(&r->s, o->store_dir, 0, err);

	r->store_open = 1; /* closed even when the open failed: it may hold memory */
	if (rc)
		return err->code;
	if (es_pdir_open(&r->pd, o->store_dir, r->spec->name, !o->to_stdout, err))
		return err->code;
	if (!o->to_stdout && es_pdir_lock(&r->pd, err))
		return err->code;
	r->fresh = o->rebuild || o->from != INT64_MIN || !r->pd.have;
	if (!r->fresh && check_spec(r, err))
		return err->code;
	if (es_proj_init(&r->p, r->spec, o->jobs, o->on_error, err))
		return err->code;
	r->proj_open = 1;
	r->p.stop = o->stop;
	r->p.raw_code = ES_CORRUPT;
	if (o->from != INT64_MIN) {
		es_ts_format(o->from, r->p.since);
		r->p.has_since = 1;
	} else if (!r->fresh && r->pd.cp.from[0]) {
		/* a model built --from goes on with the same from: an event
		 * appended later with an earlier ts (--import-ts) stays out */
		memcpy(r->p.since, r->pd.cp.from, sizeof(r->p.since));
		r->p.has_since = 1;
	}
	if (o->to_stdout && !o->quiet) {
		r->p.alert_sink = o->out;
		r->p.sink_arg = o->arg;
		r->p.sync_every = o->jobs > 1 ? 65536 : 0;
	}
	if (start(r, 1, err))
		return err->code;
	if (!r->fresh && r->pd.cp.state == ES_PSTATE_PAUSED && !o->to_stdout) {
		if (!o->follow)
			return es_fail(err, ES_NOMATCH, "projection '%s' is paused: nothing applied "
				       "(es-project --resume)", r->spec->name);
	} else if (step(r, err)) {
		return err->code;
	}
	if (o->to_stdout) {
		note_dead(r);
		return o->alerts_only ? 0 : es_proj_write(&r->p, 1, o->out, o->arg, err);
	}
	return o->follow ? follow(r, err) : 0;
}

int es_project_store(const struct es_pspec *spec, const struct es_project_opts *o,
		     struct es_error *err)
{
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.spec = spec;
	r.o = o;
	r.pd.lock_fd = -1;
	rc = run_store(&r, err);
	close_source(&r);
	if (r.proj_open)
		es_proj_release(&r.p);
	es_pdir_close(&r.pd);
	if (r.store_open)
		es_store_close(&r.s);
	return rc;
}

int es_project_files(const struct es_pspec *spec, char **files, int nfiles,
		     const struct es_project_opts *o, struct es_error *err)
{
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.spec = spec;
	r.o = o;
	if (es_proj_init(&r.p, spec, o->jobs, o->on_error, err))
		return err->code;
	r.p.stop = o->stop;
	if (o->from != INT64_MIN) {
		es_ts_format(o->from, r.p.since);
		r.p.has_since = 1;
	}
	if (!o->quiet) {
		r.p.alert_sink = o->out;
		r.p.sink_arg = o->arg;
		r.p.sync_every = o->jobs > 1 ? 65536 : 0;
	}
	r.p.raw_code = ES_DATA;
	if (o->jobs > 1) {
		struct es_pfiles pf;
		es_pfiles_open(&pf, files, nfiles);
		rc = es_proj_feed_lines(&r.p, es_pfiles_next, &pf, err);
		es_pfiles_close(&pf);
	} else {
		rc = es_log_open_files(&r.lg, files, nfiles, err);
		if (!rc)
			rc = es_proj_feed(&r.p, &r.lg, UINT64_MAX, err);
		es_log_close(&r.lg);
	}
	if (!rc)
		rc = es_proj_sync(&r.p, err);
	if (!rc && r.p.failed)
		rc = r.p.fail_code == ES_DATA
			     ? es_fail(err, ES_DATA, "%s", r.p.fail)
			     : es_fail(err, r.p.fail_code, "%s", r.p.fail);
	if (!rc) {
		note_dead(&r);
		if (!o->alerts_only)
			rc = es_proj_write(&r.p, 1, o->out, o->arg, err);
	}
	es_proj_release(&r.p);
	return rc;
}

/* ---- status, pause, resume ---- */

/* Seq and ts of the last visible record of the log. */
static int head_of(struct es_store *s, uint64_t *seq, char ts[ES_TS_LEN + 1], struct es_error *err)
{
	char path[PATH_MAX];

	*seq = 0;
	ts[0] = '\0';
	if (es_store_list_segments(s, err))
		return err->code;
	for (size_t i = s->nsegs; i-- > 0;) {
		uint64_t end;
		int fd;
		es_store_seg_path(s, s->segs[i], path, sizeof(path));
		if (es_store_visible_end(s, s->segs[i], &end, err))
			return err->code;
		if (end == 0)
			continue;
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
		for (size_t want = 4096;; want *= 2) {
			size_t n = end < want ? (size_t)end : want;
			char *buf = malloc(n), *st;
			struct es_rec rec;
			const char *why;
			if (!buf || es_pread_full(fd, buf, n, (off_t)(end - n)) != (ssize_t)n) {
				free(buf);
				close(fd);
				return es_fail_errno(err, ES_IO, "cannot read '%s'", path);
			}
			st = n >= 2 ? memrchr(buf, '\n', n - 1) : NULL;
			if (!st && n < end) {
				free(buf);
				continue; /* a line longer than the block */
			}
			st = st ? st + 1 : buf;
			int ok = es_rec_parse(st, (size_t)(buf + n - 1 - st), 0, &rec, &why) == 0;
			if (ok) {
				*seq = rec.seq;
				memcpy(ts, rec.ts, ES_TS_LEN);
				ts[ES_TS_LEN] = '\0';
			}
			free(buf);
			close(fd);
			return ok ? 0 : es_fail(err, ES_CORRUPT, "%s: the last record: %s", path, why);
		}
	}
	if (s->archive) {
		/* everything is archived */
		struct es_head h;
		es_archive_end(s->archive, &h);
		*seq = h.seq;
		if (h.seq)
			es_ts_format(h.ts, ts);
	}
	return 0;
}

static int status_one(struct es_store *s, const char *name, const struct es_project_opts *o,
		      uint64_t head, const char *head_ts, struct es_error *err)
{
	struct es_pdir pd;
	struct es_buf b = ES_BUF_INIT;
	int64_t a, z;
	int rc;

	if (es_pdir_open(&pd, s->dir, name, 0, err)) {
		es_pdir_close(&pd);
		return err->code;
	}
	if (!pd.have) {
		es_pdir_close(&pd);
		return es_fail(err, ES_NOMATCH, "no projection '%s' in '%s'", name, s->dir);
	}
	rc = es_pckpt_format(&pd.cp, name, &b);
	if (!rc) {
		b.len--; /* reopen the object */
		rc = es_buf_addf(&b, ",\"head\":%llu,\"head_ts\":", (unsigned long long)head) ||
		     (head_ts[0] ? es_buf_addf(&b, "\"%s\"", head_ts) : es_buf_adds(&b, "null")) ||
		     es_buf_addf(&b, ",\"lag_events\":%llu,\"lag_seconds\":",
				 (unsigned long long)(head > pd.cp.seq ? head - pd.cp.seq : 0));
	}
	if (!rc) {
		if (head <= pd.cp.seq)
			rc = es_buf_adds(&b, "0");
		else if (pd.cp.ts[0] && es_ts_parse(pd.cp.ts, ES_TS_LEN, &a) == 0 &&
			 es_ts_parse(head_ts, ES_TS_LEN, &z) == 0)
			rc = es_buf_addf(&b, "%.3f", (double)(z - a) / 1e6);
		else
			rc = es_buf_adds(&b, "null");
	}
	if (!rc)
		rc = es_buf_addf(&b, ",\"running\":%s}\n", es_pdir_busy(&pd) ? "true" : "false");
	if (rc)
		rc = es_fail(err, ES_IO, "out of memory");
	else if (o->out(o->arg, b.p, b.len))
		rc = es_fail(err, ES_IO, "cannot write to standard output");
	else
		rc = pd.cp.state == ES_PSTATE_OK ? 0 : ES_NOMATCH;
	es_buf_release(&b);
	es_pdir_close(&pd);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The projections of a store, sorted. */
static int list_names(const char *store_dir, char ***names, size_t *n, struct es_error *err)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;

	*names = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/projections", store_dir);
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	while ((e = readdir(d))) {
		char **nv;
		if (!es_pname_valid(e->d_name))
			continue;
		if (!(nv = realloc(*names, (*n + 1) * sizeof(*nv))) || !(nv[*n] = strdup(e->d_name))) {
			*names = nv ? nv : *names;
			closedir(d);
			return es_fail(err, ES_IO, "out of memory");
		}
		*names = nv;
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(*names, *n, sizeof(**names), name_cmp);
	return 0;
}

int es_project_status(const char *name, const struct es_project_opts *o, struct es_error *err)
{
	struct es_store s;
	char head_ts[ES_TS_LEN + 1], **names = NULL;
	uint64_t head;
	size_t n = 0;
	int rc, worst = 0;

	if (es_store_open(&s, o->store_dir, 0, err)) {
		es_store_close(&s); /* a failed open may hold memory */
		return err->code;
	}
	rc = head_of(&s, &head, head_ts, err);
	if (!rc && !name)
		rc = list_names(s.dir, &names, &n, err);
	if (!rc && name)
		rc = status_one(&s, name, o, head, head_ts, err);
	for (size_t i = 0; !rc && i < n; i++) {
		struct es_error e1 = {0, ""};
		struct es_pdir pd;
		int r1 = es_pdir_open(&pd, s.dir, names[i], 0, &e1), have = pd.have;
		es_pdir_close(&pd);
		if (r1 == 0 && !have)
			continue; /* not committed yet */
		r1 = status_one(&s, names[i], o, head, head_ts, &e1);
		if (r1 > ES_NOMATCH) {
			*err = e1;
			rc = r1;
		} else if (r1 == ES_NOMATCH) {
			worst = ES_NOMATCH;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	es_store_close(&s);
	return rc ? rc : worst;
}

int es_project_set_state(const char *name, enum es_pstate state, const struct es_project_opts *o,
			 struct es_error *err)
{
	struct es_pdir pd;
	struct es_store s;
	int rc;

	if (es_store_open(&s, o->store_dir, 0, err)) {
		es_store_close(&s); /* a failed open may hold memory */
		return err->code;
	}
	rc = es_pdir_open(&pd, o->store_dir, name, 0, err);
	if (!rc && !pd.have)
		rc = es_fail(err, ES_NOMATCH, "no projection '%s' in '%s'", name, o->store_dir);
	if (!rc)
		rc = es_pdir_set_state(&pd, state, err);
	es_pdir_close(&pd);
	es_store_close(&s);
	return rc;
}
