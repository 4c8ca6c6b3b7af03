/* es-at-time: temporal queries. The state of streams as of a time or a seq,
 * the events between two times or after a seq, and what changed in each
 * stream between two times. On a store, positions are found by binary
 * search (timeseek.h) and single streams are read through the index. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "cli.h"
#include "json.h"
#include "reader.h"
#include "reducer.h"
#include "snapshot.h"
#include "store.h"
#include "timeq.h"
#include "timeseek.h"

enum { K_SEQ = ES_K_PROG, K_BETWEEN, K_AFTER, K_DIFF };
enum mode { M_STATE, M_SEQ, M_BETWEEN, M_AFTER, M_DIFF };

static const struct es_opt opts[] = {
	ES_OPT_STORE,
	{"seq", K_SEQ, 1, "N", "the state as of seq N instead of a TIME"},
	{"between", K_BETWEEN, 0, NULL, "print the events with T1 <= ts <= T2 (operands T1 T2)"},
	{"after", K_AFTER, 1, "SEQ", "print the events with seq > SEQ (catch-up)"},
	{"diff", K_DIFF, 0, NULL, "per stream, what changed after T1 up to T2 (operands T1 T2)"},
	ES_OPT_SELECTORS,
	ES_OPT_REDUCER,
	ES_OPT_COMMON,
	ES_OPT_END,
};

static const char synopsis[] =
	"[options] TIME [FILE...]\n"
	"   or: es-at-time [options] --seq N [FILE...]\n"
	"   or: es-at-time [options] --between T1 T2 [FILE...]\n"
	"   or: es-at-time [options] --after SEQ [FILE...]\n"
	"   or: es-at-time [options] --diff T1 T2 [FILE...]";

/* One stream's change after T1 (--diff). */
struct change {
	json_t *from;          /* state at T1; NULL until an event after T1 */
	uint64_t version, seq; /* at T1 (0, 0: the stream did not exist yet) */
	struct es_buf events;  /* the stored lines after T1, comma-separated */
};

/* Stored lines held for --reverse: the last `max` of them, as a ring. */
struct ring {
	struct es_buf *v;
	size_t n, cap, head;
};

struct app {
	struct es_common com;
	enum mode mode;
	const char *mode_opt;
	uint64_t seq_arg, after;
	int64_t t1, t2;
	char ts1[ES_TS_LEN + 1];  /* TIME, T1 (or the later --since) */
	/* the end of what is read: seq <= seq_lim and ts <= ts_lim */
	uint64_t seq_lim;
	char ts_lim[ES_TS_LEN + 1];
	int has_ts_lim;
	struct es_sel sel;
	struct es_reducer *red;
	struct es_store store;
	int have_store;
	struct es_seek seek;
	int have_seek;
	uint64_t printed;
	struct es_error err;
	struct es_buf out;
	struct ring ring;
};

static void set_mode(struct app *a, enum mode m, const char *name)
{
	if (a->mode_opt && strcmp(a->mode_opt, name) != 0)
		es_cli_usage_error("--%s and --%s do not go together", a->mode_opt, name);
	a->mode = m;
	a->mode_opt = name;
}

static int handle(int key, const char *arg, void *p)
{
	struct app *a = p;

	switch (key) {
	case K_SEQ:
		set_mode(a, M_SEQ, "seq");
		a->seq_arg = es_cli_u64("seq", arg);
		return 0;
	case K_BETWEEN:
		set_mode(a, M_BETWEEN, "between");
		return 0;
	case K_AFTER:
		set_mode(a, M_AFTER, "after");
		a->after = es_cli_u64("after", arg);
		return 0;
	case K_DIFF:
		set_mode(a, M_DIFF, "diff");
		return 0;
	}
	return ES_USAGE;
}

static int64_t operand_time(const char *what, const char *arg)
{
	int64_t us;

	if (es_time_parse(arg, es_now_us(), &us) != 0)
		es_cli_usage_error("%s: cannot parse time '%s'; accepted forms: %s", what, arg,
				   es_time_forms);
	return us;
}

static void lower_ts(struct app *a, int64_t us)
{
	char ts[ES_TS_LEN + 1];

	es_ts_format(us, ts);
	if (!a->has_ts_lim || memcmp(ts, a->ts_lim, ES_TS_LEN) < 0)
		memcpy(a->ts_lim, ts, sizeof(ts));
	a->has_ts_lim = 1;
}

/* Take the time operands of the mode and set the bounds of what is read.
 * Returns the number of operands used. */
static int setup(struct app *a, int nops, char **ops)
{
	int used = 0;

	if (a->mode == M_STATE) {
		if (nops < 1)
			es_cli_usage_error("missing TIME (or --seq N, --between, --after, --diff)");
		a->t1 = operand_time("TIME", ops[0]);
		used = 1;
	} else if (a->mode == M_BETWEEN || a->mode == M_DIFF) {
		if (nops < 2)
			es_cli_usage_error("--%s needs two times: T1 T2", a->mode_opt);
		a->t1 = operand_time("T1", ops[0]);
		a->t2 = operand_time("T2", ops[1]);
		if (a->t1 > a->t2)
			es_cli_usage_error("--%s: T1 '%s' is after T2 '%s'", a->mode_opt, ops[0], ops[1]);
		used = 2;
	} else if (nops > 0 && access(ops[0], F_OK) != 0 && errno == ENOENT) {
		/* --seq 5 2026-01-01: the time would be opened as a FILE */
		int64_t us;
		if (es_time_parse(ops[0], es_now_us(), &us) == 0)
			es_cli_usage_error("'%s' is a time, not a FILE: --%s takes the place of TIME",
					   ops[0], a->mode_opt);
	}
	a->seq_lim = a->com.to_seq;
	if (a->mode == M_SEQ && a->seq_arg < a->seq_lim)
		a->seq_lim = a->seq_arg;
	if (a->mode == M_STATE)
		lower_ts(a, a->t1);
	if (a->mode == M_BETWEEN || a->mode == M_DIFF)
		lower_ts(a, a->t2);
	if (a->com.until != INT64_MAX)
		lower_ts(a, a->com.until);
	es_ts_format(a->mode == M_BETWEEN && a->com.since > a->t1 ? a->com.since : a->t1, a->ts1);
	return used;
}

static void note(void *arg, const char *msg)
{
	struct app *a = arg;

	if (a->com.verbose)
		es_cli_error("%s", msg);
}

/* Past the end of what is read (seq and ts only grow along a log). */
static int past(const struct app *a, const struct es_rec *r)
{
	return r->seq > a->seq_lim || (a->has_ts_lim && memcmp(r->ts, a->ts_lim, ES_TS_LEN) > 0);
}

/* Write one output record (p, n, then a newline when nl); 1 once no more
 * should be written (--limit reached, or a write error, which
 * es_cli_close_stdout reports). */
static int emit(struct app *a, const char *p, size_t n, int nl)
{
	if (a->printed >= a->com.limit)
		return 1;
	if (fwrite(p, 1, n, stdout) != n || (nl && putchar('\n') == EOF))
		return 1;
	a->printed++;
	return a->printed >= a->com.limit || ferror(stdout);
}

/* Keep a line for --reverse: only the last --limit of them are kept. */
static int ring_add(struct app *a, const char *line, size_t len)
{
	struct ring *g = &a->ring;
	struct es_buf *slot;

	if (a->com.limit == 0)
		return 0;
	if (g->n == a->com.limit) {
		slot = &g->v[g->head];
		g->head = (g->head + 1) % g->n;
	} else {
		if (g->n == g->cap) {
			size_t cap = g->cap ? g->cap * 2 : 64;
			struct es_buf *nv = realloc(g->v, cap * sizeof(*nv));
			if (!nv)
				return es_fail(&a->err, ES_IO, "out of memory");
			memset(nv + g->cap, 0, (cap - g->cap) * sizeof(*nv));
			g->v = nv;
			g->cap = cap;
		}
		slot = &g->v[g->n++];
	}
	es_buf_reset(slot);
	if (es_buf_add(slot, line, len) || es_buf_addc(slot, '\n'))
		return es_fail(&a->err, ES_IO, "out of memory");
	return 0;
}

static void ring_flush(struct app *a)
{
	struct ring *g = &a->ring;

	for (size_t i = g->n; i-- > 0;) {
		struct es_buf *b = &g->v[(g->head + i) % g->n];
		if (emit(a, b->p, b->len, 0))
			break;
	}
	for (size_t i = 0; i < g->cap; i++)
		es_buf_release(&g->v[i]);
	free(g->v);
	memset(g, 0, sizeof(*g));
}

static int print_fold(struct app *a, const struct es_fold *f)
{
	es_buf_reset(&a->out);
	if (es_fold_print(f, &a->out))
		return -es_fail(&a->err, ES_IO, "out of memory");
	return emit(a, a->out.p, a->out.len, 0);
}

static int print_change(struct app *a, const struct es_fold *f, const struct change *c)
{
	json_t *patch = es_merge_diff(c->from, f->state);
	struct es_buf *o = &a->out;
	int bad;

	es_buf_reset(o);
	bad = !patch || es_buf_adds(o, "{\"stream\":") || es_buf_add(o, f->stream.p, f->stream.len) ||
	      es_buf_addf(o, ",\"from\":{\"version\":%llu,\"seq\":%llu}", (unsigned long long)c->version,
			  (unsigned long long)c->seq) ||
	      es_buf_addf(o, ",\"to\":{\"version\":%llu,\"seq\":%llu},\"patch\":",
			  (unsigned long long)f->version, (unsigned long long)f->seq) ||
	      es_json_dump_exact_add(o, patch) || es_buf_adds(o, ",\"events\":[") ||
	      es_buf_add(o, c->events.p, c->events.len) || es_buf_adds(o, "]}\n");
	json_decref(patch);
	if (bad)
		return -es_fail(&a->err, ES_IO, "out of memory");
	return emit(a, o->p, o->len, 0);
}

/* The first event of a stream after T1: remember the state before it. */
static int change_event(struct app *a, struct change *c, const struct es_fold *f,
			const char *line, size_t len)
{
	if (!c->from) {
		c->from = json_deep_copy(f->state);
		c->version = f->version;
		c->seq = f->seq;
		if (!c->from)
			return es_fail(&a->err, ES_IO, "out of memory");
	} else if (es_buf_addc(&c->events, ',')) {
		return es_fail(&a->err, ES_IO, "out of memory");
	}
	if (es_buf_add(&c->events, line, len))
		return es_fail(&a->err, ES_IO, "out of memory");
	return 0;
}

static void change_release(struct change *c)
{
	json_decref(c->from);
	es_buf_release(&c->events);
	memset(c, 0, sizeof(*c));
}

/* ---- sequential passes: files, or a store without a per-stream path ---- */

/* Next selected record up to the end, parsed with its body. 1, 0 or -status. */
static int next_selected(struct app *a, struct es_log *lg, const char **line, size_t *len,
			 struct es_rec *r)
{
	const char *why;
	int n;

	while ((n = es_log_next(lg, line, len, r, 0, &a->err)) == 1) {
		if (past(a, r))
			return 0;
		if (!es_sel_match(&a->sel, r))
			continue;
		if (es_rec_parse(*line, *len, ES_REC_BODY, r, &why) != 0)
			return -es_fail(&a->err, ES_DATA, "seq %llu: %s", (unsigned long long)r->seq, why);
		return 1;
	}
	return n;
}

static int state_scan(struct app *a, struct es_log *lg)
{
	struct es_foldset fs;
	const char *line;
	size_t len, *order = NULL;
	struct es_rec r;
	int n, rc = 0;

	if (es_foldset_init(&fs))
		return es_fail(&a->err, ES_IO, "out of memory");
	while ((n = next_selected(a, lg, &line, &len, &r)) == 1) {
		struct es_fold *f;
		/* Streams beyond --limit will not be printed: do not fold them
		 * (when they print in the order they come). */
		if (!a->com.reverse && !a->sel.nstreams && !a->sel.has_category &&
		    fs.n >= a->com.limit &&
		    !es_strmap_get(&fs.map, r.stream, r.stream_len))
			continue;
		if (!(f = es_foldset_get(&fs, a->red, &r))) {
			rc = es_fail(&a->err, ES_IO, "out of memory");
			break;
		}
		if ((rc = es_fold_apply(a->red, f, &r, &a->err)) != 0)
			break;
	}
	if (n < 0)
		rc = -n;
	if (rc == 0 && !(order = malloc((fs.n ? fs.n : 1) * sizeof(*order))))
		rc = es_fail(&a->err, ES_IO, "out of memory");
	for (size_t i = 0; rc == 0 && i < fs.n; i++)
		order[i] = i;
	if (rc == 0)
		es_foldset_order(&a->sel, &fs, order, fs.n);
	for (size_t i = 0; rc == 0 && i < fs.n; i++) {
		int e = print_fold(a, &fs.f[order[a->com.reverse ? fs.n - 1 - i : i]]);
		if (e) {
			rc = e < 0 ? -e : 0; /* an error, or the end of the output */
			break;
		}
	}
	free(order);
	es_foldset_release(&fs);
	return rc;
}

static int diff_scan(struct app *a, struct es_log *lg)
{
	struct es_foldset fs;
	struct change *ch = NULL;
	size_t *order = NULL, norder = 0, cap = 0;
	const char *line;
	size_t len;
	struct es_rec r;
	int n, rc = 0;

	if (es_foldset_init(&fs))
		return es_fail(&a->err, ES_IO, "out of memory");
	while ((n = next_selected(a, lg, &line, &len, &r)) == 1) {
		struct es_fold *f = es_foldset_get(&fs, a->red, &r);
		size_t i = f ? (size_t)(f - fs.f) : 0;
		if (f && fs.n > cap) {
			size_t nc = fs.cap;
			struct change *nch = realloc(ch, nc * sizeof(*nch));
			size_t *no = nch ? realloc(order, nc * sizeof(*no)) : NULL;
			if (nch)
				ch = nch;
			if (no)
				order = no;
			if (!nch || !no) {
				f = NULL;
			} else {
				memset(ch + cap, 0, (nc - cap) * sizeof(*ch));
				cap = nc;
			}
		}
		if (!f) {
			rc = es_fail(&a->err, ES_IO, "out of memory");
			break;
		}
		if (memcmp(r.ts, a->ts1, ES_TS_LEN) > 0) {
			if (!ch[i].from)
				order[norder++] = i;
			if ((rc = change_event(a, &ch[i], f, line, len)) != 0)
				break;
		}
		if ((rc = es_fold_apply(a->red, f, &r, &a->err)) != 0)
			break;
	}
	if (n < 0)
		rc = -n;
	if (rc == 0)
		es_foldset_order(&a->sel, &fs, order, norder);
	for (size_t k = 0; rc == 0 && k < norder; k++) {
		size_t i = order[a->com.reverse ? norder - 1 - k : k];
		int e = print_change(a, &fs.f[i], &ch[i]);
		if (e) {
			rc = e < 0 ? -e : 0;
			break;
		}
	}
	for (size_t i = 0; i < cap; i++)
		change_release(&ch[i]);
	free(ch);
	free(order);
	es_foldset_release(&fs);
	return rc;
}

/* --between, --after: the stored lines, untouched. */
static int lines_scan(struct app *a, struct es_log *lg)
{
	const char *line;
	size_t len;
	struct es_rec r;
	int n;

	while ((n = es_log_next(lg, &line, &len, &r, 0, &a->err)) == 1) {
		if (past(a, &r))
			break;
		if (a->mode == M_BETWEEN ? memcmp(r.ts, a->ts1, ES_TS_LEN) < 0 : r.seq <= a->after)
			continue;
		if (!es_sel_match(&a->sel, &r))
			continue;
		if (a->com.reverse) {
			if (ring_add(a, line, len))
				return a->err.code;
		} else if (emit(a, line, len, 1)) {
			return 0;
		}
	}
	return n < 0 ? -n : 0;
}

static int run_scan(struct app *a, struct es_log *lg)
{
	switch (a->mode) {
	case M_STATE:
	case M_SEQ: return state_scan(a, lg);
	case M_DIFF: return diff_scan(a, lg);
	default: return lines_scan(a, lg);
	}
}

/* ---- a store ---- */

/* --between, --after on a store: start where the binary search says. */
static int store_lines(struct app *a)
{
	struct es_seek_pos pos;
	struct es_log lg;
	int rc;

	if (a->mode == M_BETWEEN) {
		rc = es_seek_time(&a->seek, a->ts1, 0, &pos, &a->err);
	} else {
		uint64_t from = a->after == UINT64_MAX ? UINT64_MAX : a->after + 1;
		rc = es_seek_seq(&a->seek, from > a->com.from_seq ? from : a->com.from_seq, &pos,
				 &a->err);
	}
	if (rc)
		return rc;
	if (a->com.verbose && pos.older && a->mode == M_AFTER)
		es_cli_error("start: before log/ (older history): reading from the archived segment "
			     "that holds seq %llu", (unsigned long long)a->after);
	else if (a->com.verbose && pos.older)
		es_cli_error("start: before log/ (older history): reading the log from its start");
	else if (a->com.verbose && pos.at_end)
		es_cli_error("start: the end of the log (%u lines read to find it)", a->seek.probes);
	else if (a->com.verbose)
		es_cli_error("start: seq %llu, log/%020llu.ndjson offset %llu (%u lines read to find it)",
			     (unsigned long long)pos.seq, (unsigned long long)pos.seg,
			     (unsigned long long)pos.off, a->seek.probes);
	if (pos.older) /* history before log/ (archived): read it in order */
		rc = es_log_open_store(&lg, &a->store, a->mode == M_AFTER ? a->after : 0, &a->err);
	else if (pos.at_end)
		return 0;
	else
		rc = es_log_open_store_at(&lg, &a->store, pos.seg, pos.off, &a->err);
	rc = rc ? a->err.code : lines_scan(a, &lg);
	es_log_close(&lg);
	return rc;
}

/* The last seq within the bounds, by binary search. */
static int store_max_seq(struct app *a, uint64_t *seq)
{
	uint64_t s;

	if (a->has_ts_lim ? es_seek_seq_at(&a->seek, a->ts_lim, &s, &a->err)
			  : es_seek_last_seq(&a->seek, &s, &a->err))
		return a->err.code;
	*seq = s < a->seq_lim ? s : a->seq_lim;
	if (a->com.verbose)
		es_cli_error("as of seq %llu (%u lines read to find it)", (unsigned long long)*seq,
			     a->seek.probes);
	return 0;
}

/* Folding one stream through the index, up to seq s2; events after s1 make
 * up the change (--diff). */
struct fold_ctx {
	struct app *a;
	struct es_fold *f;
	uint64_t s1, s2;
	struct change *c;
	int failed;
};

static int on_line(void *arg, const char *line, size_t len, const struct es_rec *r)
{
	struct fold_ctx *x = arg;
	struct app *a = x->a;

	if (r->seq > x->s2)
		return 1;
	if (!es_sel_match(&a->sel, r))
		return 0;
	if (x->c && r->seq > x->s1 && change_event(a, x->c, x->f, line, len))
		return x->failed = 1;
	if (es_fold_apply(a->red, x->f, r, &a->err))
		return x->failed = 1;
	return 0;
}

/* Whether a snapshot may stand in for a stream's first events: only when
 * every event up to the point is folded. */
static int snapshots_usable(const struct app *a)
{
	return !a->com.no_snapshots && a->com.ntypes == 0 && a->com.from_seq <= 1 &&
	       a->com.since == INT64_MIN;
}

static int fold_stream(struct app *a, const char *stream, size_t slen, struct fold_ctx *x)
{
	uint64_t from = 1;
	int rc;

	es_fold_init(x->f, a->red);
	if (snapshots_usable(a)) {
		rc = es_snapshot_load(&a->store, stream, slen, a->red, x->s1, x->f, note, a, &a->err);
		if (rc != 0 && rc != ES_SNAP_NO)
			return rc;
		if (rc == 0) {
			from = x->f->version + 1;
			if (a->com.verbose)
				es_cli_error("%s: from the snapshot at version %llu", stream,
					     (unsigned long long)x->f->version);
		} else {
			es_fold_release(x->f);
			es_fold_init(x->f, a->red);
		}
	}
	a->err.code = 0;
	rc = es_store_read_stream(&a->store, stream, slen, from, UINT64_MAX, 0, on_line, x, &a->err);
	if (rc == 0 && x->failed)
		rc = a->err.code ? a->err.code : ES_IO;
	return rc;
}

/* State or diff of one stream: 0, an error status, or -2 once no more
 * should be printed. */
static int one_stream(struct app *a, const char *stream, uint64_t s1, uint64_t s2)
{
	struct es_fold f;
	struct change c;
	struct fold_ctx x = {a, &f, s1, s2, a->mode == M_DIFF ? &c : NULL, 0};
	int rc, e = 0;

	memset(&c, 0, sizeof(c));
	rc = fold_stream(a, stream, strlen(stream), &x);
	if (rc == 0 && a->mode == M_DIFF && c.from)
		e = print_change(a, &f, &c);
	else if (rc == 0 && a->mode != M_DIFF && f.version > 0)
		e = print_fold(a, &f);
	change_release(&c);
	es_fold_release(&f);
	if (rc)
		return rc;
	if (e < 0)
		return -e;
	return e ? -2 : 0;
}

struct names {
	char **v;
	size_t n;
};

static int add_name(void *arg, const char *s, size_t len, uint64_t version)
{
	struct names *nm = arg;
	char **nv;

	(void)version;
	nv = realloc(nm->v, (nm->n + 1) * sizeof(*nv));
	if (!nv)
		return -1;
	nm->v = nv;
	if (!(nv[nm->n] = strndup(s, len)))
		return -1;
	nm->n++;
	return 0;
}

/* The streams named by --stream (and --category), or the category's
 * streams from the index. */
static int stream_names(struct app *a, struct names *nm)
{
	size_t clen = a->com.category ? strlen(a->com.category) : 0;
	int rc = 0;

	if (a->com.nstreams) {
		for (size_t i = 0; i < a->com.nstreams && rc == 0; i++) {
			const char *st = a->com.streams[i]; /* each once (es_cli_parse) */
			if (!clen || strncmp(st, a->com.category, clen) == 0)
				rc = add_name(nm, st, strlen(st), 0);
		}
	} else {
		if (es_index_begin(a->store.index, 0, &a->err))
			return a->err.code;
		rc = es_index_each_stream(a->store.index, a->com.category, clen, add_name, nm);
		es_index_abort(a->store.index);
	}
	return rc ? es_fail(&a->err, ES_IO, "out of memory") : 0;
}

static int by_stream(struct app *a)
{
	struct names nm = {NULL, 0};
	uint64_t s1 = 0, s2 = 0;
	int rc;

	rc = store_max_seq(a, &s2);
	s1 = s2;
	if (rc == 0 && a->mode == M_DIFF && es_seek_seq_at(&a->seek, a->ts1, &s1, &a->err))
		rc = a->err.code;
	else if (rc == 0 && a->mode == M_DIFF && a->com.verbose)
		es_cli_error("T1 as of seq %llu", (unsigned long long)s1);
	if (rc == 0)
		rc = stream_names(a, &nm);
	for (size_t i = 0; rc == 0 && s2 > 0 && i < nm.n; i++)
		rc = one_stream(a, nm.v[a->com.reverse ? nm.n - 1 - i : i], s1 < s2 ? s1 : s2, s2);
	for (size_t i = 0; i < nm.n; i++)
		free(nm.v[i]);
	free(nm.v);
	return rc < 0 ? 0 : rc;
}

static int run_store(struct app *a)
{
	struct es_log lg;
	int idx, rc;

	a->have_store = 1; /* es_store_close() also undoes a failed open */
	if (es_store_open(&a->store, a->com.store, 0, &a->err))
		return a->err.code;
	idx = es_store_index_ready(&a->store, &a->err);
	if (idx != 0 && idx != 1)
		return idx;
	if (es_seek_init(&a->seek, &a->store, &a->err))
		return a->err.code;
	a->have_seek = 1;
	if (a->mode == M_BETWEEN || a->mode == M_AFTER)
		return store_lines(a);
	if (idx == 0 && (a->com.nstreams || a->com.category))
		return by_stream(a);
	if (a->com.verbose) {
		char from[40] = "its start";
		if (a->com.from_seq > 1)
			snprintf(from, sizeof(from), "seq %llu", (unsigned long long)a->com.from_seq);
		es_cli_error("reading the log from %s: %s", from,
			     idx ? "the index cannot be used" : "every stream (no --stream or --category)");
	}
	if (es_log_open_store(&lg, &a->store, a->com.from_seq, &a->err))
		return a->err.code;
	rc = run_scan(a, &lg);
	es_log_close(&lg);
	return rc;
}

/* "nothing matched", and why when what was asked for ends where es-archive
 * --purge-before deleted the history. */
static void nothing_matched(const struct app *a)
{
	const struct es_archive *arc = a->have_store ? a->store.archive : NULL;

	if (arc && arc->purged &&
	    (a->seq_lim <= arc->purge.last_seq ||
	     (a->has_ts_lim && memcmp(a->ts_lim, arc->purge.last_ts, ES_TS_LEN) <= 0)))
		es_cli_error("nothing matched: seq 1 to %llu (ts up to %s) were deleted by "
			     "es-archive --purge-before",
			     (unsigned long long)arc->purge.last_seq, arc->purge.last_ts);
	else
		es_cli_error("nothing matched");
}

static void release(struct app *a)
{
	if (a->have_seek)
		es_seek_release(&a->seek);
	if (a->have_store)
		es_store_close(&a->store);
	es_buf_release(&a->out);
	es_reducer_free(a->red);
	es_sel_release(&a->sel);
	free(a->com.streams);
	free(a->com.types);
}

int main(int argc, char **argv)
{
	struct app a;
	struct es_prog prog = {
		"es-at-time", synopsis,
		"The state of streams as of a time or a seq, the events between two times or after\n"
		"a seq, or what changed between two times; from the store or NDJSON FILEs ('-': stdin).",
		opts, handle, &a,
	};
	int first, used, rc;

	memset(&a, 0, sizeof(a));
	es_cli_init("es-at-time");
	first = es_cli_parse(&prog, argc, argv, &a.com);
	used = setup(&a, argc - first, argv + first);
	first += used;
	/* (--between and --after fold nothing, but a bad --reducer is an
	 * error there too, as with es-replay --events) */
	if (es_sel_init(&a.sel, &a.com, &a.err) || es_reducer_load(&a.red, a.com.reducer, &a.err)) {
		rc = es_cli_report(&a.err);
		goto out;
	}
	if (first < argc) {
		struct es_log lg;
		rc = es_log_open_files(&lg, argv + first, argc - first, &a.err) ? a.err.code
									       : run_scan(&a, &lg);
		es_log_close(&lg);
	} else {
		rc = run_store(&a);
	}
	if (rc == 0 && a.com.reverse)
		ring_flush(&a);
	if (rc) {
		es_cli_report(&a.err);
	} else if (a.printed == 0 && !ferror(stdout)) {
		if (!a.com.quiet)
			nothing_matched(&a);
		rc = ES_NOMATCH;
	}
out:
	release(&a);
	{
		int crc = es_cli_close_stdout();
		if (!rc)
			rc = crc;
	}
	return rc;
}
