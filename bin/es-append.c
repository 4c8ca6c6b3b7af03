/* es-append: append events to a store, durably, with optimistic concurrency. */
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "append.h"
#include "ingest.h"
#include "cli.h"
#include "record.h"
#include "snapshot.h"
#include "store.h"

enum { K_EXPECT = ES_K_PROG, K_BATCH, K_IMPORT_TS };

struct ctx {
	struct es_append_opts ao;
	uint64_t batch_size;
};

static const struct es_opt opts[] = {
	ES_OPT_STORE,
	{"expect", K_EXPECT, 1, "V", "any, none, exists, or the stream's version N before the batch"},
	{"batch-size", K_BATCH, 1, "N", "commit every N events (each chunk atomic)"},
	{"import-ts", K_IMPORT_TS, 0, NULL, "take \"ts\" from the input (imports; non-decreasing)"},
	ES_OPT_COMMON,
	ES_OPT_END,
};

static int handle(int key, const char *arg, void *p)
{
	struct ctx *c = p;

	switch (key) {
	case K_EXPECT:
		if (strcmp(arg, "any") == 0)
			c->ao.expect = ES_EXPECT_ANY;
		else if (strcmp(arg, "none") == 0)
			c->ao.expect = ES_EXPECT_NONE;
		else if (strcmp(arg, "exists") == 0)
			c->ao.expect = ES_EXPECT_EXISTS;
		else if (!*arg || arg[strspn(arg, "0123456789")] != '\0')
			es_cli_usage_error("--expect: '%s' is not any, none, exists or a version "
					   "(a non-negative integer)", arg);
		else {
			c->ao.expect = ES_EXPECT_EXACT;
			c->ao.expect_version = es_cli_u64("expect", arg);
		}
		return 0;
	case K_BATCH:
		c->batch_size = es_cli_u64("batch-size", arg);
		if (c->batch_size == 0)
			es_cli_usage_error("--batch-size: must be at least 1");
		return 0;
	case K_IMPORT_TS:
		c->ao.import_ts = 1;
		return 0;
	}
	return ES_USAGE;
}

/* Report a failure. An I/O or system error always says that the events
 * were not stored (the library's own messages may not), unless the message
 * already tells what became of them. */
static int report(struct es_error *err)
{
	if (err->code == ES_IO && strncmp(err->msg, "not stored", 10) != 0 &&
	    strncmp(err->msg, "not acknowledged", 16) != 0)
		es_error_prefix(err, "not stored");
	return es_cli_report(err);
}

static int single_stream(const struct es_batch *b)
{
	for (size_t i = 1; i < b->n; i++)
		if (b->ev[i].stream_len != b->ev[0].stream_len ||
		    memcmp(es_batch_str(b, b->ev[i].stream), es_batch_str(b, b->ev[0].stream),
			   b->ev[0].stream_len) != 0)
			return 0;
	return 1;
}

static int run(struct es_store *s, const struct es_batch *b, const struct ctx *c,
	       const struct es_common *com)
{
	struct es_error err = {0, ""};
	struct es_buf out = ES_BUF_INIT;
	size_t chunk = c->batch_size && c->batch_size < b->n ? (size_t)c->batch_size : b->n;
	size_t done = 0, stored = 0;
	struct es_append_opts ao = c->ao;
	unsigned char *fate = malloc(chunk ? chunk : 1);
	struct es_append_run *run = es_append_run_new();
	char where[ES_WHERE_MAX];
	int rc = 0;

	if (!fate || !run) {
		free(fate);
		es_append_run_free(run);
		es_cli_error("out of memory");
		return ES_IO;
	}
	/* Several chunks: sync the index once at the end, not per chunk
	 * (es_store_bulk_begin says why that is safe). */
	if (chunk < b->n ? es_store_bulk_begin(s, &err) : es_store_lazy_begin(s, &err))
		es_error_clear(&err); /* then every chunk syncs the index, as usual */
	while (done < b->n) {
		size_t n = b->n - done < chunk ? b->n - done : chunk;
		es_buf_reset(&out);
		rc = es_append_batch(s, run, b, done, n, &ao, com->quiet ? NULL : &out, fate, &err);
		if (rc) {
			report(&err);
			if (done > 0)
				es_cli_error("stored before %s: %zu event%s%s",
					     es_event_where(b, &b->ev[done], where, sizeof(where)), stored,
					     stored == 1 ? "" : "s",
					     stored < done ? " (the others were stored already)" : "");
			break;
		}
		for (size_t i = 0; i < n; i++)
			stored += fate[i] == ES_STORED;
		for (size_t i = 0; i < n && !com->quiet; i++)
			if (fate[i] != ES_STORED)
				es_cli_error("%s: event id '%s' already stored in stream '%s'%s",
					     es_event_where(b, &b->ev[done + i], where, sizeof(where)),
					     es_batch_str(b, b->ev[done + i].id),
					     es_batch_str(b, b->ev[done + i].stream),
					     fate[i] == ES_DUPLICATE_PURGED
						     ? ", since deleted by es-archive --purge-before: "
						       "no line printed for it"
						     : "");
		if (!com->quiet && (es_cli_stdout_closed() ? (errno = EBADF, 1)
				    : fwrite(out.p, 1, out.len, stdout) != out.len ||
				      fflush(stdout) != 0)) {
			/* The chunk is durable; only its acknowledgement is lost.
			 * Say so, and store nothing more that could not be told. */
			es_cli_error("write error on standard output: %s%s", strerror(errno),
				     done + n < b->n ? "; later events were not stored" : "");
			es_cli_stdout_reported();
			rc = ES_IO;
			break;
		}
		if (s->snapshot_every) {
			/* store.json asks for snapshots every N events: the
			 * batch is durable already, so a failure only warns */
			size_t snaps;
			if (es_snapshot_auto(s, b, done, n, &snaps, &err)) {
				es_cli_error("warning: no auto-snapshot: %s (the events are stored)",
					     err.msg);
				es_error_clear(&err);
			}
		}
		done += n;
		/* --expect is the stream's version before the whole input, so
		 * only the first chunk is checked against it. */
		ao.expect = ES_EXPECT_UNSET;
	}
	if (es_store_bulk_end(s, &err)) {
		/* the events are stored; the next writer rebuilds the index */
		es_cli_error("warning: %s (the events are stored; the index will be rebuilt)",
			     err.msg);
		es_error_clear(&err);
	}
	es_buf_release(&out);
	free(fate);
	es_append_run_free(run);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctx c;
	struct es_common com;
	struct es_prog prog = {
		"es-append", "[options] [FILE...]",
		"Append NDJSON events from FILEs (or stdin) to the store as one atomic batch.",
		opts, handle, &c,
	};
	struct es_batch b;
	struct es_store s;
	struct es_error err = {0, ""};
	int first, rc = 0;

	memset(&c, 0, sizeof(c));
	es_cli_init("es-append");
	first = es_cli_parse(&prog, argc, argv, &com);
	es_batch_init(&b);
	/* every input line is read and validated before anything is stored */
	if (es_ingest(&b, argv + first, argc - first, c.ao.import_ts ? ES_PARSE_TS : 0, &err)) {
		rc = report(&err);
		goto out_batch;
	}
	if (c.ao.expect != ES_EXPECT_UNSET && b.n > 0 && !single_stream(&b)) {
		es_cli_error("--expect needs a single-stream batch; use \"expect\" per line");
		es_cli_hint();
		rc = ES_USAGE;
		goto out_batch;
	}
	if (b.n == 0)
		goto out_batch; /* nothing to do: not even a store is created */
	if (!es_store_exists(com.store) &&
	    es_append_check_empty(&b, c.batch_size && c.batch_size < b.n ? (size_t)c.batch_size : b.n,
				  &c.ao, &err)) {
		rc = report(&err); /* a conflict creates no store either */
		goto out_batch;
	}
	if (es_store_open(&s, com.store, ES_OPEN_WRITE | ES_OPEN_CREATE, &err) ||
	    es_store_lock(&s, &err)) {
		rc = report(&err);
		es_store_close(&s);
		goto out_batch;
	}
	if (s.recovered_bytes)
		es_cli_error("recovered a torn tail: %llu bytes moved to %s/quarantine/",
			     (unsigned long long)s.recovered_bytes, s.dir);
	rc = run(&s, &b, &c, &com);
	es_store_unlock(&s);
	es_store_close(&s);
out_batch:
	es_batch_release(&b);
	{
		int crc = es_cli_close_stdout();
		if (!rc)
			rc = crc;
	}
	return rc;
}
