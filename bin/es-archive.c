/* es-archive: move old history to compressed, verified, cold segments;
 * retention with anchors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "cli.h"
#include "store.h"

enum { K_BEFORE = ES_K_PROG, K_PURGE, K_TO, K_LEVEL, K_LIST, K_KEEP, K_NO_WAIT, K_VERIFY };

static const struct es_opt opts[] = {
	ES_OPT_STORE,
	{"before", K_BEFORE, 1, "TIME|AGE", "archive the sealed segments whose events are all older"},
	{"purge-before", K_PURGE, 1, "TIME|AGE",
	 "delete archived segments whose events are all older (keeps an anchor)"},
	{"to", K_TO, 1, "DIR", "write new archive files to DIR (a cold tier), not DIR/archive"},
	{"level", K_LEVEL, 1, "N", "zstd level, 1 to 22 (default 17)"},
	{"keep-derived", K_KEEP, 0, NULL, "keep \"seq\" and \"hash\" in archived records"},
	{"dry-run", 'n', 0, NULL, "show what would be done, change nothing"},
	{"list", K_LIST, 0, NULL, "list the segments of every tier, with sizes and ratios"},
	{"json", ES_K_JSON, 0, NULL, "with --list: one JSON object per segment"},
	{"verify", K_VERIFY, 0, NULL, "check the archive: MANIFEST, files, restored chain, log/"},
	{"jobs", ES_K_JOBS, 1, "N", "compress N segments at a time (default 1)"},
	{"no-wait", K_NO_WAIT, 0, NULL, "fail at once when another es-archive is running"},
	ES_OPT_COMMON,
	ES_OPT_END,
};

struct app {
	struct es_common com;
	struct es_archive_opts o;
	int list, verify;
	const char *storedir;
	int progress_shown;        /* the length of the progress line on stderr; 0: none */
	uint64_t totals[3];  /* --list: events, bytes, raw bytes */
};

static int handle(int key, const char *arg, void *p)
{
	struct app *a = p;

	switch (key) {
	case K_BEFORE:
		a->o.before = es_cli_time("before", arg);
		a->o.has_before = 1;
		return 0;
	case K_PURGE:
		a->o.purge_before = es_cli_time("purge-before", arg);
		a->o.has_purge = 1;
		return 0;
	case K_TO:
		a->o.to = arg;
		return 0;
	case K_LEVEL: {
		uint64_t l = es_cli_u64("level", arg);
		if (l < 1 || l > 22)
			es_cli_usage_error("--level: must be between 1 and 22");
		a->o.level = (int)l;
		return 0;
	}
	case K_KEEP:
		a->o.verbatim = 1;
		return 0;
	case 'n':
		a->o.dry_run = 1;
		return 0;
	case K_LIST:
		a->list = 1;
		return 0;
	case K_NO_WAIT:
		a->o.no_wait = 1;
		return 0;
	case K_VERIFY:
		a->verify = 1;
		return 0;
	}
	return ES_USAGE;
}

/* path relative to the store when it is inside it */
static const char *rel(const struct app *a, const char *path)
{
	size_t n = strlen(a->storedir);

	if (strncmp(path, a->storedir, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

/* The progress line ends with the run (a newline). Before a line on
 * stdout it is wiped if stdout is a terminal too (the next update draws it
 * again below that line), and left alone if not: it updates in place. */
static void end_progress(struct app *a, int last)
{
	if (!a->progress_shown)
		return;
	if (last)
		fputc('\n', stderr);
	else if (isatty(1))
		fprintf(stderr, "\r%*s\r", a->progress_shown, "");
	else
		return;
	a->progress_shown = 0;
}

static void on_act(void *arg, enum es_archive_act what, const struct es_archive_seg *e,
		   const char *path)
{
	struct app *a = arg;
	const char *would = a->o.dry_run ? "would " : "";
	char ratio[32] = "";

	if (what == ES_ACT_WAITING) {
		if (!a->com.quiet)
			es_cli_error("waiting for another es-archive (it holds '%s')", path);
		return;
	}
	if (a->com.quiet)
		return;
	end_progress(a, 0);
	switch (what) {
	case ES_ACT_ARCHIVED:
		if (a->o.dry_run) {
			printf("would archive log/%020llu.ndjson (%llu bytes) to %s\n",
			       (unsigned long long)e->first_seq, (unsigned long long)e->raw_bytes,
			       rel(a, path));
			break;
		}
		if (e->bytes)
			snprintf(ratio, sizeof(ratio), "%.2fx", (double)e->raw_bytes / (double)e->bytes);
		printf("archived log/%020llu.ndjson to %s: seq %llu-%llu, %llu events, "
		       "%llu -> %llu bytes (%s)\n",
		       (unsigned long long)e->first_seq, rel(a, path),
		       (unsigned long long)e->first_seq, (unsigned long long)e->last_seq,
		       (unsigned long long)e->events, (unsigned long long)e->raw_bytes,
		       (unsigned long long)e->bytes, ratio);
		break;
	case ES_ACT_ROLLED:
		printf("%sroll %s: the active segment, all its events older than the cutoff\n",
		       a->o.dry_run ? "would " : "", rel(a, path));
		break;
	case ES_ACT_PURGED:
		printf("%spurge %s: seq %llu-%llu, %llu events, last ts %s\n", would, rel(a, path),
		       (unsigned long long)e->first_seq, (unsigned long long)e->last_seq,
		       (unsigned long long)e->events, e->last_ts);
		break;
	case ES_ACT_FINISHED:
		printf("%sremove %s: already archived by an interrupted run\n", would, rel(a, path));
		break;
	case ES_ACT_CLEANED:
		printf("%sremove %s: left by an interrupted run\n", would, rel(a, path));
		break;
	case ES_ACT_WAITING:
		break;
	}
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct app *a = arg;

	if (a->com.quiet || total == 0)
		return;
	int n = fprintf(stderr, "\r%s: %.1f of %.1f MB archived (%.0f%%)", es_progname,
			done / 1e6, total / 1e6, 100.0 * (double)done / (double)total);
	if (n > 1 && n - 1 > a->progress_shown)
		a->progress_shown = n - 1;
}

static int print_item(void *arg, const struct es_archive_item *it)
{
	struct app *a = arg;
	char ratio[32] = "-";

	if (it->bytes && (strcmp(it->tier, "archive") == 0 || strcmp(it->tier, "cold") == 0 ||
			  strcmp(it->tier, "purged") == 0))
		snprintf(ratio, sizeof(ratio), "%.2f", (double)it->raw_bytes / (double)it->bytes);
	if (a->com.json) {
		printf("{\"tier\":\"%s\",\"file\":", it->tier);
		if (strcmp(it->file, "-") == 0) {
			printf("null");
		} else {
			/* a plain path: escape what JSON needs */
			putchar('"');
			for (const char *c = it->file; *c; c++) {
				if (*c == '"' || *c == '\\')
					printf("\\%c", *c);
				else if ((unsigned char)*c < 0x20)
					printf("\\u%04x", *c);
				else
					putchar(*c);
			}
			putchar('"');
		}
		printf(",\"first_seq\":%llu,\"last_seq\":%llu,\"events\":%llu,\"bytes\":%llu,"
		       "\"raw_bytes\":%llu,\"last_ts\":",
		       (unsigned long long)it->first_seq, (unsigned long long)it->last_seq,
		       (unsigned long long)it->events, (unsigned long long)it->bytes,
		       (unsigned long long)it->raw_bytes);
		if (it->last_ts[0])
			printf("\"%s\"}\n", it->last_ts);
		else
			printf("null}\n");
		return 0;
	}
	printf("%-8s %-40s %12llu %12llu %10llu %12llu %12llu %7s  %s\n", it->tier, it->file,
	       (unsigned long long)it->first_seq, (unsigned long long)it->last_seq,
	       (unsigned long long)it->events, (unsigned long long)it->bytes,
	       (unsigned long long)it->raw_bytes, ratio, it->last_ts[0] ? it->last_ts : "-");
	if (strcmp(it->tier, "pending") != 0) {
		a->totals[0] += it->events;
		if (strcmp(it->tier, "purged") != 0)
			a->totals[1] += it->bytes;
		a->totals[2] += it->raw_bytes;
	}
	return 0;
}

static int list(struct app *a, struct es_store *s)
{
	struct es_error err = {0, ""};

	if (!a->com.json)
		printf("%-8s %-40s %12s %12s %10s %12s %12s %7s  %s\n", "tier", "file", "first_seq",
		       "last_seq", "events", "bytes", "raw_bytes", "ratio", "last_ts");
	if (es_archive_list(s, print_item, a, &err))
		return es_cli_report(&err);
	if (!a->com.json)
		printf("%-8s %-40s %12s %12s %10llu %12llu %12llu %7s\n", "total", "", "", "",
		       (unsigned long long)a->totals[0], (unsigned long long)a->totals[1],
		       (unsigned long long)a->totals[2], "");
	return 0;
}

static void on_finding(void *arg, enum es_archive_finding kind, const char *file, uint64_t seq,
		       const char *msg)
{
	struct app *a = arg;
	char where[PATH_MAX + 64] = "";

	if (file && seq)
		snprintf(where, sizeof(where), "%s: seq %llu: ", file, (unsigned long long)seq);
	else if (file)
		snprintf(where, sizeof(where), "%s: ", file);
	if (kind == ES_AV_FAILURE)
		es_cli_error("%s%s", where, msg);
	else if (!a->com.quiet)
		es_cli_error("%s: %s%s", kind == ES_AV_WARNING ? "warning" : "note", where, msg);
}

static int verify(struct app *a, struct es_store *s)
{
	struct es_archive_vstat vs;
	struct es_error err = {0, ""};

	if (es_archive_verify(s, a->o.no_wait, on_finding, a, &vs, &err))
		return es_cli_report(&err);
	if (vs.failures)
		return ES_NOMATCH;
	if (!a->com.quiet)
		es_cli_error("ok: %llu segments, %llu records, %llu bytes (%llu restored); the log "
			     "goes on after seq %llu", (unsigned long long)vs.segments,
			     (unsigned long long)vs.records, (unsigned long long)vs.bytes,
			     (unsigned long long)vs.raw_bytes, (unsigned long long)vs.end.seq);
	return 0;
}

static void summary(const struct app *a, const struct es_archive_stats *st)
{
	if (st->segments == 0 || a->com.quiet || !a->com.verbose)
		return;
	es_cli_error("%llu segments, %llu events, %.1f MB -> %.1f MB (%.2fx) in %.1f s, %.1f MB/s",
		     (unsigned long long)st->segments, (unsigned long long)st->events,
		     st->raw_bytes / 1e6, st->bytes / 1e6,
		     st->bytes ? (double)st->raw_bytes / (double)st->bytes : 0.0, st->seconds,
		     st->seconds > 0 ? st->raw_bytes / 1e6 / st->seconds : 0.0);
}

int main(int argc, char **argv)
{
	struct app a;
	struct es_prog prog = {
		"es-archive", "[options] --before TIME|AGE | --purge-before TIME|AGE | --list | --verify",
		"Move sealed segments older than a cutoff to compressed, verified archive files;\n"
		"delete old archived history on request.",
		opts, handle, &a,
	};
	struct es_store s;
	struct es_archive_stats st;
	struct es_error err = {0, ""};
	int first, rc, opened = 0;

	memset(&a, 0, sizeof(a));
	memset(&s, 0, sizeof(s));
	es_archive_opts_init(&a.o);
	es_cli_init("es-archive");
	first = es_cli_parse(&prog, argc, argv, &a.com);
	if (first < argc)
		es_cli_usage_error("unexpected operand '%s'", argv[first]);
	if (a.list + a.verify > 1 || ((a.list || a.verify) &&
					(a.o.has_before || a.o.has_purge || a.o.dry_run)))
		es_cli_usage_error("--list and --verify go alone");
	if (!a.list && !a.verify && !a.o.has_before && !a.o.has_purge)
		es_cli_usage_error("nothing to do: give --before, --purge-before, --list or --verify");
	if (a.com.json && !a.list)
		es_cli_usage_error("--json goes with --list");
	a.o.jobs = a.com.jobs;
	a.o.act = on_act;
	a.o.arg = &a;
	if (es_cli_progress_enabled() && !a.o.dry_run)
		a.o.progress = on_progress;
	a.storedir = a.com.store;
	rc = es_store_open(&s, a.com.store, a.list || a.verify || a.o.dry_run ? 0 : ES_OPEN_WRITE,
			   &err);
	opened = 1;
	if (rc) {
		es_cli_report(&err);
		goto out;
	}
	if (a.list || a.verify) {
		rc = a.list ? list(&a, &s) : verify(&a, &s);
		goto out;
	}
	rc = es_archive_run(&s, &a.o, &st, &err);
	end_progress(&a, 1);
	if (rc)
		es_cli_report(&err);
	else
		summary(&a, &st);
out:
	if (opened)
		es_store_close(&s);
	{
		int crc = es_cli_close_stdout();
		if (!rc)
			rc = crc;
	}
	return rc;
}
