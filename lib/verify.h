/* verify.h: integrity checks over a store or over NDJSON logs (es-verify).
 *
 * Record by record: a well-formed stored line (envelope keys in order, an
 * object for data; data and meta are not parsed: the hash covers their
 * bytes), the hash chain (chain.h), seq gapless and
 * increasing, ts never decreasing, per-stream version gapless. Over a store
 * also: store.json, segment names against their first seq, no stray files
 * in log/, sealed segments that end on a closed batch, the tail of the
 * active segment (an incomplete batch there is a warning: it was never
 * acknowledged and the next append moves it to quarantine/), archived
 * segments (archive.h) as part of the log, the index against the log, and
 * with opts.snapshots the snapshots (snapshot.h).
 *
 * The library never prints: findings go into struct es_verify_report. A
 * call returns 0 when the checks ran (rep->ok tells whether everything is
 * intact) or an es_status (ES_IO, ...) when they could not.
 */
#ifndef ES_VERIFY_H
#define ES_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "error.h"

struct es_verify_opts {
	uint64_t from_seq;                 /* > 1: start at this seq, trusting anchor */
	char anchor[ES_HASH_HEX + 1];      /* hash of record from_seq - 1 */
	int expect_head;                   /* check the head against: */
	uint64_t expect_seq;
	char expect_hash[ES_HASH_HEX + 1];
	int all_errors;                    /* list every failure, do not stop */
	int repair_index;                  /* rebuild a missing/stale/wrong index */
	int snapshots;                     /* also verify snapshots/ */
	int jobs;                          /* threads for sealed segments (>= 1) */
	/* Called now and then from the reading thread(s), never concurrently:
	 * bytes checked so far and the total (0 when unknown). */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
};

/* One finding. file is relative to the store ("log/000...1.ndjson") or the
 * operand as given; NULL when it is about no single file. */
struct es_verify_issue {
	char *file;
	uint64_t offset;   /* byte offset of the line (decompressed, for .zst) */
	int has_offset;
	uint64_t seq;      /* 0 when unknown */
	char *reason;
};

#define ES_VERIFY_MAX_CHECKS 16

struct es_verify_report {
	int ok;                             /* no failure */
	const char *checks[ES_VERIFY_MAX_CHECKS]; /* names of the checks run */
	size_t nchecks;
	uint64_t records, bytes;            /* records and bytes checked */
	uint64_t head_seq;                  /* the log's head: last closed batch */
	char head_hash[ES_HASH_HEX + 1];
	struct es_verify_issue *failures, *warnings;
	size_t nfailures, nwarnings;
	char **notes;                       /* things worth knowing, not wrong */
	size_t nnotes;
	int index_repaired;
};

void es_verify_opts_init(struct es_verify_opts *o);
void es_verify_report_init(struct es_verify_report *rep);
void es_verify_report_release(struct es_verify_report *rep);

/* Verify the store in dir. */
int es_verify_store(const char *dir, const struct es_verify_opts *o,
		    struct es_verify_report *rep, struct es_error *err);
/* Verify NDJSON files (plain or zstd; "-" is stdin) read as one log. */
int es_verify_files(char **files, int nfiles, const struct es_verify_opts *o,
		    struct es_verify_report *rep, struct es_error *err);

/* Parse "SEQ:HASH" (for --expect-head). 0 or -1. */
int es_verify_parse_head(const char *s, uint64_t *seq, char hash[ES_HASH_HEX + 1]);

#endif
