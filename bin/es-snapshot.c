/* es-snapshot: take, list, verify and prune snapshots of stream states. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "index.h"
#include "json.h"
#include "reader.h"
#include "reducer.h"
#include "snapshot.h"
#include "store.h"

enum { K_EVERY = ES_K_PROG, K_LIST, K_VERIFY, K_PRUNE, K_KEEP, K_STDOUT };
enum mode { TAKE, LIST, VERIFY, PRUNE };

struct app {
	enum mode mode;
	int mode_set, stdout_set, keep_set;
	uint64_t every, keep;
	struct es_common com;
	struct es_store store;
	struct es_reducer *red;
	struct es_error err;
};

static const struct es_opt opts[] = {
	ES_OPT_STORE,
	{"stream", ES_K_STREAM, 1, "S", "only stream S (repeatable)"},
	{"category", ES_K_CATEGORY, 1, "PREFIX", "only streams starting with PREFIX"},
	{"to-seq", ES_K_TO_SEQ, 1, "N", "take each snapshot at the stream's last event with seq <= N"},
	ES_OPT_REDUCER,
	{"every", K_EVERY, 1, "N", "only streams with N or more events since their last snapshot"},
	{"stdout", K_STDOUT, 0, NULL, "print the snapshot records instead of storing them"},
	{"list", K_LIST, 0, NULL, "list the snapshots, one JSON line each"},
	{"verify", K_VERIFY, 0, NULL, "recompute each snapshot from the log and compare"},
	{"prune", K_PRUNE, 0, NULL, "remove all but the newest --keep K per stream and reducer"},
	{"keep", K_KEEP, 1, "K", "with --prune: how many to keep"},
	ES_OPT_COMMON,
	ES_OPT_END,
};

static int handle(int key, const char *arg, void *p)
{
	struct app *a = p;
	enum mode m;

	switch (key) {
	case K_EVERY: a->every = es_cli_u64("every", arg); return 0;
	case K_KEEP: a->keep = es_cli_u64("keep", arg); a->keep_set = 1; return 0;
	case K_STDOUT: a->stdout_set = 1; return 0;
	case K_LIST: m = LIST; break;
	case K_VERIFY: m = VERIFY; break;
	case K_PRUNE: m = PRUNE; break;
	default: return ES_USAGE;
	}
	if (a->mode_set && a->mode != m)
		es_cli_usage_error("--list, --verify and --prune exclude each other");
	a->mode = m;
	a->mode_set = 1;
	return 0;
}

static void check_usage(const struct app *a)
{
	const struct es_common *c = &a->com;

	if (a->mode != TAKE && (a->every || a->stdout_set || c->to_seq != UINT64_MAX ||
				c->no_snapshots))
		es_cli_usage_error("--every, --stdout, --to-seq and --no-snapshots are for taking "
				   "snapshots, not with --list, --verify or --prune");
	if (a->mode == PRUNE && !a->keep_set)
		es_cli_usage_error("--prune needs --keep K");
	if (a->mode != PRUNE && a->keep_set)
		es_cli_usage_error("--keep goes with --prune");
}

static void note(void *arg, const char *msg)
{
	const struct app *a = arg;

	if (a->com.verbose)
		es_cli_error("%s", msg);
}

static int wanted(const struct app *a, const char *stream, size_t slen)
{
	size_t clen = a->com.category ? strlen(a->com.category) : 0;

	return !a->com.category || (slen >= clen && memcmp(stream, a->com.category, clen) == 0);
}

/* ---- taking ------------------------------------------------------------- */

struct names {
	char **v;
	size_t *len, n;
};

static int add_name(void *arg, const char *s, size_t len, uint64_t version)
{
	struct names *nm = arg;
	char **nv = realloc(nm->v, (nm->n + 1) * sizeof(*nv));
	size_t *nl;

	(void)version;
	if (!nv)
		return -1;
	nm->v = nv;
	nl = realloc(nm->len, (nm->n + 1) * sizeof(*nl));
	if (!nl)
		return -1;
	nm->len = nl;
	if (!(nm->v[nm->n] = malloc(len + 1)))
		return -1;
	memcpy(nm->v[nm->n], s, len);
	nm->v[nm->n][len] = '\0';
	nm->len[nm->n++] = len;
	return 0;
}

static void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	free(nm->len);
}

/* The streams to snapshot: --stream, else the index's (with --category). */
static int streams(struct app *a, struct names *nm)
{
	const char *cat = a->com.category;
	int rc;

	for (size_t i = 0; i < a->com.nstreams; i++)
		if (wanted(a, a->com.streams[i], strlen(a->com.streams[i])) &&
		    add_name(nm, a->com.streams[i], strlen(a->com.streams[i]), 0))
			return es_fail(&a->err, ES_IO, "out of memory");
	if (a->com.nstreams)
		return 0;
	if (es_index_begin(a->store.index, 0, &a->err))
		return a->err.code;
	rc = es_index_each_stream(a->store.index, cat, cat ? strlen(cat) : 0, add_name, nm);
	es_index_abort(a->store.index);
	return rc ? es_fail(&a->err, ES_IO, "out of memory") : 0;
}

/* The index is behind the log and recovery could not catch it up: say why
 * (damage in the log is an integrity failure, exit 1, as every reader
 * reports it; a store this user cannot write is an I/O error). */
static int index_unusable(struct app *a)
{
	const struct es_error *why = &a->store.index_why;

	if (!why->code)
		return es_fail(&a->err, ES_IO, "the index of '%s' cannot be used", a->store.dir);
	return es_fail(&a->err, why->code, "the index of '%s' cannot be brought up to date: %s",
		       a->store.dir, why->msg);
}

static int take(struct app *a)
{
	struct es_buf out = ES_BUF_INIT;
	struct names nm = {NULL, NULL, 0};
	size_t taken = 0, skipped = 0;
	int rc, worst = 0;

	rc = es_store_index_ready(&a->store, &a->err);
	if (rc == 1 || (rc == 0 && !a->store.index))
		rc = index_unusable(a);
	if (rc || (rc = streams(a, &nm))) {
		names_free(&nm);
		return es_cli_report(&a->err);
	}
	for (size_t i = 0; i < nm.n && rc == 0; i++) {
		struct es_snapshot_take t = {a->every, a->com.to_seq, a->com.no_snapshots,
					     a->stdout_set ? &out : NULL, note, a, 0, 0, 0, 0};
		es_buf_reset(&out);
		rc = es_snapshot_take(&a->store, nm.v[i], nm.len[i], a->red, &t, &a->err);
		if (rc == ES_SNAP_NO && t.version == 0 && a->com.nstreams == 0) {
			/* created after --to-seq: skipped */
		} else if (rc == ES_SNAP_NO && t.version == 0) {
			if (a->com.to_seq == UINT64_MAX)
				es_cli_error("no stream '%s'", nm.v[i]);
			else
				es_cli_error("stream '%s' has no events at or before seq %llu", nm.v[i],
					     (unsigned long long)a->com.to_seq);
			worst = ES_NOMATCH;
		} else if (rc == ES_SNAP_NO && t.purged && (a->com.verbose || a->com.nstreams)) {
			/* (t.version is not exact: an index rebuilt since holds
			 * no position for purged events. Named, the stream has no
			 * events left to take, as when it has none: exit 1, also
			 * when such an index no longer knows it) */
			char upto[48] = "";
			if (a->com.to_seq != UINT64_MAX)
				snprintf(upto, sizeof(upto), " at or before seq %llu",
					 (unsigned long long)a->com.to_seq);
			es_cli_error("%s'%s'%s: its last event%s was purged (es-archive --purge-before)",
				     a->com.nstreams ? "stream " : "", nm.v[i],
				     a->com.nstreams ? "" : ": not taken", upto);
			if (a->com.nstreams)
				worst = ES_NOMATCH;
		} else if (rc == ES_SNAP_NO && a->com.verbose && !t.from) {
			es_cli_error("'%s': not due (version %llu, %s)", nm.v[i],
				     (unsigned long long)t.version,
				     a->com.no_snapshots ? "counted from its first event: --no-snapshots"
							 : "no snapshot");
		} else if (rc == ES_SNAP_NO && a->com.verbose) {
			es_cli_error("'%s': not due (version %llu, last snapshot at %llu)", nm.v[i],
				     (unsigned long long)t.version, (unsigned long long)t.from);
		} else if (rc == 0 && a->com.verbose && !t.from &&
			   es_snapshot_history_purged(&a->store, nm.v[i], nm.len[i])) {
			es_cli_error("'%s': snapshot at version %llu (seq %llu), folded from the events "
				     "left after es-archive --purge-before", nm.v[i],
				     (unsigned long long)t.version, (unsigned long long)t.seq);
		} else if (rc == 0 && a->com.verbose) {
			es_cli_error("'%s': snapshot at version %llu (seq %llu), folded from %s%llu",
				     nm.v[i], (unsigned long long)t.version, (unsigned long long)t.seq,
				     t.from ? "the snapshot at " : "version ",
				     (unsigned long long)(t.from ? t.from : 1));
		}
		if (rc == 0) {
			taken++;
			if (out.len && fwrite(out.p, 1, out.len, stdout) != out.len)
				break; /* reported by es_cli_close_stdout */
		} else if (rc == ES_SNAP_NO) {
			skipped++;
			rc = 0;
		}
	}
	if (rc)
		es_cli_report(&a->err);
	else if (a->com.verbose)
		es_cli_error("%zu snapshots taken, %zu streams skipped", taken, skipped);
	names_free(&nm);
	es_buf_release(&out);
	es_error_clear(&a->err);
	return rc ? rc : worst;
}

/* ---- list, verify, prune ------------------------------------------------ */

/* The snapshot files the selectors name, read (and checked on their own)
 * when `read`; --category needs them read. */
static int gather(struct app *a, int read, struct es_snapshot **v, size_t *n)
{
	struct es_snapshot *all = NULL;
	size_t na = 0, k = 0;
	int rc = 0;

	read = read || a->com.category;
	if (a->com.nstreams == 0)
		rc = es_snapshot_list(&a->store, NULL, 0, &all, &na, &a->err);
	for (size_t i = 0; i < a->com.nstreams && rc == 0; i++) {
		struct es_snapshot *one, *nv;
		size_t n1;
		const char *s = a->com.streams[i];
		if ((rc = es_snapshot_list(&a->store, s, strlen(s), &one, &n1, &a->err)))
			break;
		nv = realloc(all, (na + n1 + 1) * sizeof(*nv));
		if (!nv) {
			es_snapshot_list_free(one, n1);
			rc = es_fail(&a->err, ES_IO, "out of memory");
			break;
		}
		all = nv;
		if (n1) /* a stream without snapshots: one may be NULL */
			memcpy(all + na, one, n1 * sizeof(*one));
		na += n1;
		free(one);
	}
	for (size_t i = 0; i < na && rc == 0 && read; i++) {
		const char *why;
		rc = es_snapshot_read(&all[i], &why, &a->err) > 1 ? a->err.code : 0;
	}
	if (rc) {
		es_snapshot_list_free(all, na);
		return rc;
	}
	/* --category: the sound ones of matching streams. */
	for (size_t i = 0; i < na; i++) {
		if (a->com.category && (all[i].bad || !wanted(a, all[i].stream, all[i].slen))) {
			es_snapshot_release(&all[i]);
			continue;
		}
		all[k++] = all[i];
	}
	*v = all;
	*n = k;
	return 0;
}

/* Order for --list: by stream name, reducer, version; unsound ones last. */
static int cmp_listed(const void *x, const void *y)
{
	const struct es_snapshot *a = x, *b = y;
	size_t m;
	int d;

	if (!a->stream || !b->stream)
		return a->stream ? -1 : b->stream ? 1 : strcmp(a->path, b->path);
	m = a->slen < b->slen ? a->slen : b->slen;
	if ((d = memcmp(a->stream, b->stream, m)) != 0 || a->slen != b->slen)
		return d ? d : a->slen < b->slen ? -1 : 1;
	if ((d = strcmp(a->reducer, b->reducer)) != 0)
		return d;
	return a->version < b->version ? -1 : a->version > b->version;
}

static int print_entry(const struct es_snapshot *sn)
{
	struct es_buf b = ES_BUF_INIT;
	const char *rel = sn->path + sn->rel;
	int rc;

	rc = es_buf_adds(&b, "{\"stream\":");
	if (!sn->bad)
		rc = rc || es_json_add_string(&b, sn->stream, sn->slen);
	else
		rc = rc || es_buf_adds(&b, "null");
	rc = rc || es_buf_addf(&b, ",\"version\":%llu,\"seq\":%llu,\"reducer\":\"%s\",\"size\":%llu,",
			       (unsigned long long)sn->version, (unsigned long long)sn->seq,
			       sn->reducer, (unsigned long long)sn->size);
	if (!sn->bad)
		rc = rc || es_buf_addf(&b, "\"ts\":\"%s\",\"taken\":\"%s\",", sn->ts, sn->taken);
	rc = rc || es_buf_adds(&b, "\"file\":") || es_json_add_string(&b, rel, strlen(rel));
	if (sn->bad)
		rc = rc || es_buf_adds(&b, ",\"error\":") ||
		     es_json_add_string(&b, sn->bad, strlen(sn->bad));
	rc = rc || es_buf_adds(&b, "}\n");
	if (!rc)
		fwrite(b.p, 1, b.len, stdout);
	es_buf_release(&b);
	return rc ? ES_IO : 0;
}

/* Without --reducer: every reducer. The name holds 16 hex digits of it
 * until the record is read. */
static int reducer_selected(const struct app *a, const struct es_snapshot *sn)
{
	return !a->com.reducer ||
	       strncmp(sn->reducer, es_reducer_id(a->red), strlen(sn->reducer)) == 0;
}

static int list(struct app *a)
{
	struct es_snapshot *v;
	size_t n;
	int rc = gather(a, 1, &v, &n);

	if (rc)
		return es_cli_report(&a->err);
	if (n)
		qsort(v, n, sizeof(*v), cmp_listed);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (reducer_selected(a, &v[i]))
			rc = print_entry(&v[i]);
	if (rc)
		es_cli_error("out of memory");
	es_snapshot_list_free(v, n);
	return rc;
}

static void report_bad(const struct es_snapshot *sn, const char *why)
{
	if (sn->stream)
		es_cli_error("%s: snapshot of '%s' at version %llu: %s", sn->path + sn->rel, sn->stream,
			     (unsigned long long)sn->version, why);
	else
		es_cli_error("%s: %s", sn->path + sn->rel, why);
}

/* Verify v[0..n) (one stream directory): those under a->red by a replay. */
static int verify_stream(struct app *a, struct es_snapshot *v, size_t n, size_t *nbad,
			 size_t *nok)
{
	struct es_snapshot **mine = calloc(n, sizeof(*mine));
	const char **bad = calloc(n, sizeof(*bad));
	const char *rid = es_reducer_id(a->red);
	size_t m = 0;
	int rc = 0, log_only = 0;

	if (!mine || !bad) {
		free(mine);
		free(bad);
		return es_fail(&a->err, ES_IO, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].bad) {
			report_bad(&v[i], v[i].bad);
			(*nbad)++;
		} else if (strcmp(v[i].reducer, rid) != 0) {
			if (!a->com.quiet)
				es_cli_error("%s: snapshot of '%s' at version %llu: not verifiable: taken "
					     "under another reducer (%.16s...); name it with --reducer",
					     v[i].path + v[i].rel, v[i].stream,
					     (unsigned long long)v[i].version, v[i].reducer);
		} else {
			mine[m++] = &v[i];
		}
	}
	if (m > 0)
		rc = es_snapshot_verify(&a->store, a->red, mine, m, bad, &log_only, &a->err);
	for (size_t i = 0; i < m && rc == 0; i++) {
		if (bad[i]) {
			report_bad(mine[i], bad[i]);
			(*nbad)++;
		} else {
			(*nok)++;
			if (a->com.verbose)
				report_bad(mine[i], log_only ? "ok (checked against the log only: the "
						   "stream's first events were purged)" : "ok");
		}
	}
	free(mine);
	free(bad);
	return rc;
}

static int verify(struct app *a)
{
	struct es_snapshot *v;
	size_t n, nbad = 0, nok = 0;
	int rc;

	rc = es_store_index_ready(&a->store, &a->err);
	if (rc == 1 || (rc == 0 && !a->store.index))
		rc = index_unusable(a);
	if (rc || (rc = gather(a, 1, &v, &n)))
		return es_cli_report(&a->err);
	for (size_t i = 0, j; i < n && rc == 0; i = j) {
		for (j = i + 1; j < n && es_snapshot_same_stream(&v[i], &v[j]); j++)
			;
		rc = verify_stream(a, v + i, j - i, &nbad, &nok);
	}
	if (rc)
		es_cli_report(&a->err);
	else if (a->com.verbose)
		es_cli_error("%zu snapshots right, %zu wrong", nok, nbad);
	es_snapshot_list_free(v, n);
	return rc ? rc : nbad ? ES_NOMATCH : 0;
}

static int prune(struct app *a)
{
	struct es_snapshot *v;
	size_t n, removed = 0, temps = 0;
	int rc = gather(a, 0, &v, &n);

	if (rc)
		return es_cli_report(&a->err);
	/* v is grouped by stream directory in ascending versions: per reducer,
	 * all but the last `keep` go. */
	for (size_t i = 0, j; i < n && rc == 0; i = j) {
		for (j = i + 1; j < n && es_snapshot_same_stream(&v[i], &v[j]); j++)
			;
		for (size_t k = i; k < j && rc == 0; k++) {
			uint64_t newer = 0;
			if (!reducer_selected(a, &v[k]))
				continue;
			for (size_t l = k + 1; l < j; l++)
				newer += strncmp(v[l].reducer, v[k].reducer, 16) == 0;
			if (newer < a->keep)
				continue;
			rc = es_snapshot_remove(&v[k], &a->err);
			if (rc == 0 && a->com.verbose)
				es_cli_error("removed %s", v[k].path + v[k].rel);
			removed += rc == 0;
		}
	}
	if (rc == 0)
		rc = es_snapshot_clean_temps(&a->store, &temps, &a->err);
	if (rc)
		es_cli_report(&a->err);
	else if (a->com.verbose)
		es_cli_error("%zu snapshots removed, %zu stale temporary files", removed, temps);
	es_snapshot_list_free(v, n);
	return rc;
}

int main(int argc, char **argv)
{
	struct app a;
	struct es_prog prog = {
		"es-snapshot", "[options]",
		"Take (by default), list, verify or prune snapshots of stream states.",
		opts, handle, &a,
	};
	int first, rc = 0;

	memset(&a, 0, sizeof(a));
	es_cli_init("es-snapshot");
	first = es_cli_parse(&prog, argc, argv, &a.com);
	if (first < argc)
		es_cli_usage_error("unexpected operand '%s'", argv[first]);
	check_usage(&a);
	if ((a.mode != LIST && a.mode != PRUNE) || a.com.reducer) {
		if (es_reducer_load(&a.red, a.com.reducer, &a.err)) {
			rc = es_cli_report(&a.err);
			goto out;
		}
	}
	if (es_store_open(&a.store, a.com.store, 0, &a.err)) {
		rc = es_cli_report(&a.err);
		es_store_close(&a.store);
		goto out;
	}
	switch (a.mode) {
	case TAKE: rc = take(&a); break;
	case LIST: rc = list(&a); break;
	case VERIFY: rc = verify(&a); break;
	case PRUNE: rc = prune(&a); break;
	}
	es_store_close(&a.store);
out:
	es_reducer_free(a.red);
	free(a.com.streams);
	{
		int crc = es_cli_close_stdout();
		if (!rc)
			rc = crc;
	}
	return rc;
}
