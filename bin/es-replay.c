/* es-replay: rebuild the state of streams by folding their events, or
 * stream the events themselves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "foldpar.h"
#include "json.h"
#include "reader.h"
#include "reducer.h"
#include "snapshot.h"
#include "store.h"

enum { K_EVENTS = ES_K_PROG, K_FOLLOW };

static const struct es_opt opts[] = {
	ES_OPT_STORE,
	ES_OPT_SELECTORS,
	ES_OPT_REDUCER,
	{"events", K_EVENTS, 0, NULL, "print the selected events (stored lines) instead of states"},
	{"follow", K_FOLLOW, 0, NULL, "keep printing as new events are appended (like tail -f)"},
	{"jobs", ES_K_JOBS, 1, "N", "fold a whole store on N threads, by stream (same result)"},
	ES_OPT_COMMON,
	ES_OPT_END,
};

struct app {
	struct es_common com;
	struct es_sel sel;
	struct es_reducer *red;
	struct es_store store;
	int have_store;
	int events, follow;
	uint64_t printed, last_seq;
	struct es_error err;
	struct es_foldset fs;    /* scan and --follow share the states */
	/* collected lines, for --reverse and multi-stream merges */
	struct line { uint64_t seq; char *text; size_t len; } *lines;
	size_t nlines, caplines;
};

static int handle(int key, const char *arg, void *p)
{
	struct app *a = p;

	(void)arg;
	if (key == K_EVENTS)
		a->events = 1;
	else if (key == K_FOLLOW)
		a->follow = 1;
	else
		return ES_USAGE;
	return 0;
}

static void note(void *arg, const char *msg)
{
	struct app *a = arg;

	if (a->com.verbose)
		es_cli_error("%s", msg);
}

/* Print one stored line; returns 1 once --limit is reached. */
static int put_line(struct app *a, const char *line, size_t len, uint64_t seq)
{
	if (a->printed >= a->com.limit)
		return 1;
	fwrite(line, 1, len, stdout);
	putchar('\n');
	a->printed++;
	a->last_seq = seq;
	return a->printed >= a->com.limit;
}

static int collect(struct app *a, const char *line, size_t len, uint64_t seq)
{
	if (a->nlines == a->caplines) {
		size_t cap = a->caplines ? a->caplines * 2 : 256;
		struct line *nl = realloc(a->lines, cap * sizeof(*nl));
		if (!nl)
			return es_fail(&a->err, ES_IO, "out of memory");
		a->lines = nl;
		a->caplines = cap;
	}
	a->lines[a->nlines].text = malloc(len);
	if (!a->lines[a->nlines].text)
		return es_fail(&a->err, ES_IO, "out of memory");
	memcpy(a->lines[a->nlines].text, line, len);
	a->lines[a->nlines].len = len;
	a->lines[a->nlines].seq = seq;
	a->nlines++;
	return 0;
}

static int by_seq(const void *x, const void *y)
{
	const struct line *p = x, *q = y;

	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

static void flush_collected(struct app *a, int sort)
{
	if (sort)
		qsort(a->lines, a->nlines, sizeof(*a->lines), by_seq);
	for (size_t i = 0; i < a->nlines; i++) {
		struct line *l = &a->lines[a->com.reverse ? a->nlines - 1 - i : i];
		if (put_line(a, l->text, l->len, l->seq))
			break;
	}
	for (size_t i = 0; i < a->nlines; i++)
		free(a->lines[i].text);
	a->nlines = 0;
}

/* Print a state: 0, 1 once --limit is reached, -1 (a->err) out of memory. */
static int print_fold(struct app *a, const struct es_fold *f)
{
	struct es_buf b = ES_BUF_INIT;

	if (a->printed >= a->com.limit)
		return 1;
	if (es_fold_print(f, &b)) {
		es_buf_release(&b);
		es_fail(&a->err, ES_IO, "out of memory");
		return -1;
	}
	fwrite(b.p, 1, b.len, stdout);
	es_buf_release(&b);
	a->printed++;
	return 0;
}

/* Whether a fold over the whole stream (no subset selectors) is wanted, so
 * a snapshot may stand in for its first events. */
static int whole_stream(const struct app *a)
{
	return !a->com.no_snapshots && a->com.ntypes == 0 && a->com.from_seq <= 1 &&
	       a->com.since == INT64_MIN && a->com.until == INT64_MAX;
}

/* Sequential pass over a source: files, or the whole store. */
static int scan(struct app *a, struct es_log *lg)
{
	struct es_foldset *fs = &a->fs;
	const char *line;
	size_t len;
	struct es_rec r;
	size_t *order = NULL;
	int n, rc = 0;

	while ((n = es_log_next(lg, &line, &len, &r, ES_REC_BODY, &a->err)) == 1) {
		if (!es_sel_match(&a->sel, &r))
			continue;
		if (a->events) {
			if (a->com.reverse ? collect(a, line, len, r.seq) != 0
					   : put_line(a, line, len, r.seq))
				break;
			continue;
		}
		struct es_fold *f = es_foldset_get(fs, a->red, &r);
		if (!f) {
			rc = es_fail(&a->err, ES_IO, "out of memory");
			break;
		}
		if (es_fold_apply(a->red, f, &r, &a->err)) {
			rc = a->err.code;
			break;
		}
		a->last_seq = r.seq;
	}
	if (n < 0 && rc == 0)
		rc = -n;
	if (a->events) {
		if (rc == 0)
			flush_collected(a, 0);
		return rc;
	}
	/* in the order the index path prints them (by_stream) */
	if (rc == 0 && !(order = malloc((fs->n ? fs->n : 1) * sizeof(*order))))
		rc = es_fail(&a->err, ES_IO, "out of memory");
	for (size_t i = 0; rc == 0 && i < fs->n; i++)
		order[i] = i;
	if (rc == 0)
		es_foldset_order(&a->sel, fs, order, fs->n);
	for (size_t i = 0; rc == 0 && i < fs->n; i++) {
		int p = print_fold(a, &fs->f[order[a->com.reverse ? fs->n - 1 - i : i]]);
		if (p < 0)
			rc = a->err.code;
		if (p)
			break;
	}
	free(order);
	return rc;
}

/* Test builds: ES_REPLAY_SCAN=log folds a whole store through es_log, one
 * event at a time, as --from-seq does: the reference the mapped scan is
 * tested against. */
static int sequential_scan(void)
{
#ifdef ES_TEST_HOOKS
	const char *v = getenv("ES_REPLAY_SCAN");
	return v && strcmp(v, "log") == 0;
#else
	return 0;
#endif
}

/* The whole store on com.jobs threads (foldpar.h), one included: the
 * states scan() would print, in its order. */
static int scan_parallel(struct app *a)
{
	struct es_foldpar fp;
	int rc = es_foldpar_run(&fp, &a->store, a->red, &a->sel, a->com.jobs, &a->err);

	if (a->com.verbose && fp.arc_blocks)
		es_cli_error("archived history: %zu blocks restored (1 MiB each, or one longer "
			     "line), at most %zu held at once", fp.arc_blocks, fp.arc_peak);

	for (size_t i = 0; rc == 0 && i < fp.n && a->printed < a->com.limit; i++) {
		const struct es_foldpar_line *l = &fp.lines[a->com.reverse ? fp.n - 1 - i : i];
		fwrite(l->text, 1, l->len, stdout);
		a->printed++;
	}
	es_foldpar_release(&fp);
	return rc;
}

struct stream_ctx {
	struct app *a;
	struct es_fold fold;
};

static int on_stream_line(void *arg, const char *line, size_t len, const struct es_rec *r)
{
	struct stream_ctx *c = arg;
	struct app *a = c->a;

	if (!es_sel_match(&a->sel, r))
		return r->seq > a->sel.to_seq;
	if (a->events)
		return collect(a, line, len, r->seq) ? -1 : 0;
	if (es_fold_apply(a->red, &c->fold, r, &a->err))
		return -1;
	return 0;
}

/* One stream through the index (and a snapshot when one fits). */
static int one_stream(struct app *a, const char *stream, size_t slen)
{
	struct stream_ctx c = {a, {0}};
	uint64_t from = 1;
	int rc;

	es_fold_init(&c.fold, a->red);
	if (!a->events && whole_stream(a)) {
		rc = es_snapshot_load(&a->store, stream, slen, a->red, a->sel.to_seq, &c.fold, note,
				      a, &a->err);
		if (rc != 0 && rc != ES_SNAP_NO) {
			es_fold_release(&c.fold);
			return rc;
		}
		if (rc == 0)
			from = c.fold.version + 1;
	}
	es_error_clear(&a->err);
	rc = es_store_read_stream(&a->store, stream, slen, from, UINT64_MAX, 0, on_stream_line, &c,
				  &a->err);
	if (rc == 0 && a->err.code)
		rc = a->err.code;
	if (rc == 0 && !a->events && c.fold.version > 0 && print_fold(a, &c.fold) < 0)
		rc = a->err.code;
	if (c.fold.seq > a->last_seq)
		a->last_seq = c.fold.seq;
	es_fold_release(&c.fold);
	return rc;
}

struct names {
	char **v;
	size_t n;
};

static int add_name(void *arg, const char *s, size_t len, uint64_t version)
{
	struct names *nm = arg;
	char **nv = realloc(nm->v, (nm->n + 1) * sizeof(*nv));

	(void)version;
	if (!nv || !(nv[nm->n] = strndup(s, len)))
		return -1;
	nm->v = nv;
	nm->n++;
	return 0;
}

static int by_stream(struct app *a)
{
	struct names nm = {NULL, 0};
	size_t clen = a->com.category ? strlen(a->com.category) : 0;
	int rc = 0;

	if (a->com.nstreams) {
		for (size_t i = 0; i < a->com.nstreams && rc == 0; i++)
			if (!a->com.category || strncmp(a->com.streams[i], a->com.category, clen) == 0)
				rc = add_name(&nm, a->com.streams[i], strlen(a->com.streams[i]), 0);
	} else {
		if (es_index_begin(a->store.index, 0, &a->err))
			return a->err.code;
		rc = es_index_each_stream(a->store.index, a->com.category, clen, add_name, &nm);
		es_index_abort(a->store.index);
	}
	if (rc)
		rc = es_fail(&a->err, ES_IO, "out of memory");
	for (size_t i = 0; i < nm.n && rc == 0; i++) {
		const char *s = nm.v[a->com.reverse ? nm.n - 1 - i : i];
		rc = one_stream(a, s, strlen(s));
		if (!a->events && a->printed >= a->com.limit)
			break;
	}
	if (a->events && rc == 0)
		flush_collected(a, 1);
	for (size_t i = 0; i < nm.n; i++)
		free(nm.v[i]);
	free(nm.v);
	return rc;
}

static void nap(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	nanosleep(&ts, NULL);
}

/* --follow: print what is appended after last_seq, until interrupted. */
static int follow(struct app *a)
{
	struct es_log lg;
	const char *line;
	size_t len;
	struct es_rec r;
	int n;

	if (a->printed >= a->com.limit)
		return 0; /* --limit reached before following */
	if (es_log_open_store(&lg, &a->store, a->last_seq + 1, &a->err))
		return a->err.code;
	for (;;) {
		while ((n = es_log_next(&lg, &line, &len, &r, ES_REC_BODY, &a->err)) == 1) {
			if (r.seq <= a->last_seq || !es_sel_match(&a->sel, &r))
				continue;
			if (a->events) {
				if (put_line(a, line, len, r.seq))
					goto out;
				continue;
			}
			struct es_fold *f = es_foldset_get(&a->fs, a->red, &r);
			if (!f) {
				es_fail(&a->err, ES_IO, "out of memory");
				goto out;
			}
			if (es_fold_apply(a->red, f, &r, &a->err) || print_fold(a, f) < 0 ||
			    a->printed >= a->com.limit)
				goto out; /* (the limit: states did not stop there) */
		}
		if (n < 0)
			break;
		if (fflush(stdout) != 0 || ferror(stdout))
			break;
		if (es_log_refresh(&lg, &a->err) < 0)
			break;
		nap();
	}
out:
	es_log_close(&lg);
	return a->err.code;
}

int main(int argc, char **argv)
{
	struct app a;
	struct es_prog prog = {
		"es-replay", "[options] [FILE...]",
		"Fold the events of the selected streams into their states (or print the events).",
		opts, handle, &a,
	};
	struct es_log lg;
	int first, rc;

	memset(&a, 0, sizeof(a));
	es_cli_init("es-replay");
	if (es_foldset_init(&a.fs)) {
		es_cli_error("out of memory");
		return ES_IO;
	}
	first = es_cli_parse(&prog, argc, argv, &a.com);
	if (a.follow && first < argc)
		es_cli_usage_error("--follow reads a store, not files");
	if (a.follow && a.com.reverse)
		es_cli_usage_error("--follow and --reverse do not go together");
	if (es_sel_init(&a.sel, &a.com, &a.err) || es_reducer_load(&a.red, a.com.reducer, &a.err)) {
		rc = es_cli_report(&a.err);
		goto out;
	}
	if (first == argc && !a.follow && !a.com.store_given && !isatty(0) &&
	    !es_store_exists(a.com.store)) {
		/* no store here, events on stdin: `zstdcat old.zst | es-replay` */
		rc = es_log_open_files(&lg, NULL, 0, &a.err) ? a.err.code : scan(&a, &lg);
		es_log_close(&lg);
	} else if (first < argc) {
		rc = es_log_open_files(&lg, argv + first, argc - first, &a.err) ? a.err.code
										 : scan(&a, &lg);
		es_log_close(&lg);
	} else {
		a.have_store = 1; /* closed at out: even a failed open holds memory */
		if (es_store_open(&a.store, a.com.store, 0, &a.err)) {
			rc = es_cli_report(&a.err);
			goto out;
		}
		rc = es_store_index_ready(&a.store, &a.err);
		if (rc == 0 && (a.com.nstreams || a.com.category) && !a.follow) {
			rc = by_stream(&a);
		} else if ((rc == 0 || rc == 1) && !a.events && !a.follow && a.com.from_seq <= 1 &&
			   !a.com.nstreams && !a.com.category && !sequential_scan()) {
			/* (in log order: the streams named, without the index, go
			 * to scan(), which prints them in their order) */
			rc = scan_parallel(&a);
		} else if (rc == 0 || rc == 1) {
			rc = es_log_open_store(&lg, &a.store, a.com.from_seq, &a.err) ? a.err.code
										       : scan(&a, &lg);
			es_log_close(&lg);
		}
		if (rc == 0 && a.follow)
			rc = follow(&a);
	}
	if (rc) {
		es_cli_report(&a.err);
	} else if (a.printed == 0) {
		if (!a.com.quiet)
			es_cli_error("nothing matched");
		rc = ES_NOMATCH;
	}
out:
	if (a.have_store)
		es_store_close(&a.store);
	for (size_t i = 0; i < a.nlines; i++)
		free(a.lines[i].text);
	free(a.lines);
	es_foldset_release(&a.fs);
	es_reducer_free(a.red);
	es_sel_release(&a.sel);
	free(a.com.streams);
	free(a.com.types);
	{
		int crc = es_cli_close_stdout();
		if (!rc)
			rc = crc;
	}
	return rc;
}
