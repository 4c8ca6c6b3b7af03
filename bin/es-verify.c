/* es-verify: check the integrity of a store, or of NDJSON logs. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "cli.h"
#include "json.h"
#include "verify.h"

enum { K_ALL = ES_K_PROG, K_ANCHOR, K_EXPECT_HEAD, K_REPAIR, K_SNAPSHOTS };

struct ctx {
	struct es_verify_opts vo;
	int anchor_given;
};

static const struct es_opt opts[] = {
	ES_OPT_STORE,
	{"json", ES_K_JSON, 0, NULL, "write a machine-readable report on stdout"},
	{"all-errors", K_ALL, 0, NULL, "list every failure instead of stopping at the first"},
	{"from-seq", ES_K_FROM_SEQ, 1, "N", "verify from seq N on (needs --anchor)"},
	{"anchor", K_ANCHOR, 1, "HASH", "the trusted hash of record N-1, for --from-seq"},
	{"expect-head", K_EXPECT_HEAD, 1, "SEQ:HASH", "fail unless the log's head is this record"},
	{"repair-index", K_REPAIR, 0, NULL, "rebuild a missing, stale or wrong index"},
	{"snapshots", K_SNAPSHOTS, 0, NULL, "also verify snapshots"},
	{"jobs", ES_K_JOBS, 1, "N", "verify sealed segments on N threads"},
	ES_OPT_COMMON,
	ES_OPT_END,
};

static int handle(int key, const char *arg, void *p)
{
	struct ctx *c = p;

	switch (key) {
	case K_ALL:
		c->vo.all_errors = 1;
		return 0;
	case K_ANCHOR:
		if (!es_is_hash_hex(arg, strlen(arg)))
			es_cli_usage_error("--anchor: '%s' is not 64 lowercase hex digits", arg);
		memcpy(c->vo.anchor, arg, ES_HASH_HEX + 1);
		c->anchor_given = 1;
		return 0;
	case K_EXPECT_HEAD:
		if (es_verify_parse_head(arg, &c->vo.expect_seq, c->vo.expect_hash))
			es_cli_usage_error("--expect-head: '%s' is not SEQ:HASH", arg);
		c->vo.expect_head = 1;
		return 0;
	case K_REPAIR:
		c->vo.repair_index = 1;
		return 0;
	case K_SNAPSHOTS:
		c->vo.snapshots = 1;
		return 0;
	}
	return ES_USAGE;
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	if (total)
		fprintf(stderr, "\r%s: %3d%%", es_progname, (int)(done * 100 / total));
	else
		fprintf(stderr, "\r%s: %llu MB", es_progname, (unsigned long long)(done >> 20));
}

static const char *human_bytes(uint64_t n, char *out, size_t len)
{
	static const char *unit[] = {"kB", "MB", "GB", "TB"};
	double v = (double)n;
	int u = -1;

	if (n < 1000) {
		snprintf(out, len, "%llu bytes", (unsigned long long)n);
		return out;
	}
	while (v >= 1000 && u < 3) {
		v /= 1000;
		u++;
	}
	snprintf(out, len, v < 100 ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return out;
}

static void print_issue(const char *kind, const struct es_verify_issue *is)
{
	char off[48] = "", seq[48] = "";

	if (is->has_offset)
		snprintf(off, sizeof(off), "offset %llu: ", (unsigned long long)is->offset);
	if (is->seq)
		snprintf(seq, sizeof(seq), "seq %llu: ", (unsigned long long)is->seq);
	es_cli_error("%s%s%s%s%s%s", kind, is->file ? is->file : "", is->file ? ": " : "", off,
		     seq, is->reason);
}

static void print_human(const struct es_verify_report *rep, const struct es_common *com)
{
	char b[32];

	for (size_t i = 0; i < rep->nfailures; i++)
		print_issue("", &rep->failures[i]);
	if (com->quiet)
		return;
	for (size_t i = 0; i < rep->nwarnings; i++)
		print_issue("warning: ", &rep->warnings[i]);
	for (size_t i = 0; i < rep->nnotes; i++)
		es_cli_error("note: %s", rep->notes[i]);
	if (com->verbose) {
		fprintf(stderr, "%s: checks:", es_progname);
		for (size_t i = 0; i < rep->nchecks; i++)
			fprintf(stderr, " %s", rep->checks[i]);
		fputc('\n', stderr);
	}
	if (rep->ok)
		es_cli_error("ok: %llu records, %s, head seq %llu hash %s",
			     (unsigned long long)rep->records,
			     human_bytes(rep->bytes, b, sizeof(b)),
			     (unsigned long long)rep->head_seq, rep->head_hash);
	else if (rep->nfailures > 1)
		es_cli_error("%zu failures in %llu records checked", rep->nfailures,
			     (unsigned long long)rep->records);
}

static json_t *issues_json(const struct es_verify_issue *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_object();
		if (!o || json_array_append_new(a, o)) {
			json_decref(a);
			return NULL;
		}
		json_object_set_new(o, "file", v[i].file ? json_string(v[i].file) : json_null());
		json_object_set_new(o, "offset", v[i].has_offset ?
				    json_integer((json_int_t)v[i].offset) : json_null());
		json_object_set_new(o, "seq", v[i].seq ? json_integer((json_int_t)v[i].seq) :
				    json_null());
		json_object_set_new(o, "reason", json_string(v[i].reason));
	}
	return a;
}

/* The machine report; error is the message of an error that stopped the
 * checks (NULL when they ran). */
static int print_json(const struct es_verify_report *rep, const char *error)
{
	json_t *r = json_object(), *checks = json_array(), *notes = json_array(), *head;
	int rc = 0;

	if (!r || !checks || !notes)
		rc = -1;
	for (size_t i = 0; !rc && i < rep->nchecks; i++)
		json_array_append_new(checks, json_string(rep->checks[i]));
	for (size_t i = 0; !rc && i < rep->nnotes; i++)
		json_array_append_new(notes, json_string(rep->notes[i]));
	if (rep->ok && !error)
		head = json_pack("{s:I,s:s}", "seq", (json_int_t)rep->head_seq, "hash",
				 rep->head_hash);
	else
		head = json_null();
	if (!rc) {
		json_object_set_new(r, "ok", json_boolean(rep->ok && !error));
		json_object_set(r, "checks", checks);
		json_object_set_new(r, "records", json_integer((json_int_t)rep->records));
		json_object_set_new(r, "bytes", json_integer((json_int_t)rep->bytes));
		json_object_set_new(r, "head", head);
		json_object_set_new(r, "failures", issues_json(rep->failures, rep->nfailures));
		json_object_set_new(r, "warnings", issues_json(rep->warnings, rep->nwarnings));
		json_object_set(r, "notes", notes);
		json_object_set_new(r, "index_repaired", json_boolean(rep->index_repaired));
		if (error)
			json_object_set_new(r, "error", json_string(error));
		rc = json_dumpf(r, stdout, ES_JSON_DUMP_FLAGS) != 0 || putchar('\n') == EOF;
	} else {
		json_decref(head);
	}
	json_decref(checks);
	json_decref(notes);
	json_decref(r);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctx c;
	struct es_common com;
	struct es_prog prog = {
		"es-verify", "[options] [FILE...]",
		"Verify the integrity of the store, or of the NDJSON logs in FILEs (- for stdin).",
		opts, handle, &c,
	};
	struct es_verify_report rep;
	struct es_error err = {0, ""};
	int first, rc;

	memset(&c, 0, sizeof(c));
	es_verify_opts_init(&c.vo);
	es_cli_init("es-verify");
	first = es_cli_parse(&prog, argc, argv, &com);
	c.vo.from_seq = com.from_seq;
	c.vo.jobs = com.jobs;
	if (c.vo.from_seq > 1 && !c.anchor_given)
		es_cli_usage_error("--from-seq: needs --anchor HASH, the hash of record %llu",
				   (unsigned long long)(c.vo.from_seq - 1));
	if (c.anchor_given && c.vo.from_seq == 0)
		es_cli_usage_error("--anchor: needs --from-seq N");
	if (c.anchor_given && c.vo.from_seq == 1 && strcmp(c.vo.anchor, ES_GENESIS) != 0)
		es_cli_usage_error("--anchor: seq 1 chains on 64 zeros");
	if (first < argc && c.vo.repair_index)
		es_cli_usage_error("--repair-index: needs a store, not FILEs");
	if (es_cli_progress_enabled() && !com.quiet && !com.json) {
		c.vo.progress = progress;
		c.vo.progress_arg = NULL;
	}
	if (first < argc)
		rc = es_verify_files(argv + first, argc - first, &c.vo, &rep, &err);
	else
		rc = es_verify_store(com.store, &c.vo, &rep, &err);
	if (c.vo.progress)
		fprintf(stderr, "\r\033[K");
	if (rc) {
		es_cli_report(&err);
		if (com.json)
			print_json(&rep, err.msg);
	} else {
		print_human(&rep, &com);
		if (com.json)
			print_json(&rep, NULL);
		rc = rep.ok ? 0 : ES_NOMATCH;
	}
	es_verify_report_release(&rep);
	{
		int crc = es_cli_close_stdout();
		if (!rc)
			rc = crc;
	}
	return rc;
}
