/* reader.h: the read path every reading program shares.
 *
 * Selectors (--stream, --category, --type, --from-seq, --to-seq, --since,
 * --until) are compiled once and matched against the envelope of a stored
 * line, without parsing data. A log source yields stored lines in seq order
 * from a store (its segments, up to the end of the last complete batch) or
 * from NDJSON files / stdin (plain or zstd). One stream is read through the
 * index: O(its events), not O(store).
 */
#ifndef ES_READER_H
#define ES_READER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cli.h"
#include "input.h"
#include "record.h"
#include "store.h"
#include "timeq.h"

struct es_sel {
	struct es_buf *streams; size_t nstreams;  /* canonical JSON literals */
	struct es_buf *types; size_t ntypes;
	struct es_buf category;  /* literal prefix: '"' + encoded prefix, no closing quote */
	int has_category;
	uint64_t from_seq, to_seq;
	char since[ES_TS_LEN + 1], until[ES_TS_LEN + 1];
	int has_since, has_until;
};

/* The selectors of the common options; on failure sel holds nothing. */
int es_sel_init(struct es_sel *sel, const struct es_common *c, struct es_error *err);
void es_sel_release(struct es_sel *sel);
/* Whether the record passes every selector. */
int es_sel_match(const struct es_sel *sel, const struct es_rec *r);
/* Whether the record's stream passes --stream/--category (the other
 * selectors ignored). */
int es_sel_match_stream(const struct es_sel *sel, const struct es_rec *r);
/* Put the folds idx[0..n) of fs (in order of appearance) in the order the
 * index path prints them, so that files and the store answer alike: the
 * order of --stream, else stream-name order with --category (names
 * compared decoded, as the index keys them), else unchanged. Out of memory
 * leaves the order of appearance. */
struct es_foldset;
void es_foldset_order(const struct es_sel *sel, const struct es_foldset *fs, size_t *idx,
		      size_t n);

/* A sequential source of stored lines. */
struct es_log {
	struct es_store *store;   /* NULL: files */
	char **files; int nfiles, fi;
	size_t seg_i;             /* store: index into store->segs */
	uint64_t seg, limit;      /* current segment and where its visible part ends */
	uint64_t seg_start;       /* offset the current es_input started at */
	struct es_input in;
	int in_open;
	uint64_t from_seq;
	uint64_t last_seq;        /* seq of the last line returned */
	const char *name;         /* current file, for messages */
	uint64_t off;             /* byte offset of the last line in its file */
	uint64_t bytes;           /* bytes returned so far (for progress) */
	/* archived segments (archive.h) come first, restored on the fly */
	struct es_archive_rd *ard; /* the one being read, or NULL */
	uint64_t arc_seq;         /* first seq of the next one to read; 0: none */
};

/* Read a store from from_seq (0 or 1: from the start). */
int es_log_open_store(struct es_log *lg, struct es_store *s, uint64_t from_seq,
		      struct es_error *err);
/* Read a store from byte offset off of segment seg, which must be the start
 * of a line (found by es_seek_*, timeseek.h): what lies before it is not
 * read at all. When seg is read from the archive instead (its log/ copy is
 * left over from an interrupted es-archive), reading starts at the
 * segment's first record: the caller skips what comes before its point. */
int es_log_open_store_at(struct es_log *lg, struct es_store *s, uint64_t seg, uint64_t off,
			 struct es_error *err);
/* Read NDJSON files (none: stdin). */
int es_log_open_files(struct es_log *lg, char **files, int nfiles, struct es_error *err);
/* Next stored line: 1, 0 at the end, or -(status). flags: ES_REC_BODY.
 * A line that is not a stored record is ES_DATA ("FILE: line N: reason"). */
int es_log_next(struct es_log *lg, const char **line, size_t *len, struct es_rec *r,
		int flags, struct es_error *err);
/* For --follow: look again for records appended since the end was reached.
 * Returns 1 when there may be more, 0 when not. */
int es_log_refresh(struct es_log *lg, struct es_error *err);
void es_log_close(struct es_log *lg);

/* Where the visible part of a segment ends: after the last record that
 * closes a batch. */
int es_store_visible_end(struct es_store *s, uint64_t seg, uint64_t *end, struct es_error *err);
/* List the segments (es_store_list_segments) and find where the last one's
 * visible part ends (*end; 0 when there is none). Readers take no lock: if
 * es-archive seals and archives that segment in between, the listing is
 * taken again, so the last segment is always one that was there. */
int es_store_list_tail(struct es_store *s, uint64_t *end, struct es_error *err);

/* Make the index usable for reading: if it does not match the log, take
 * the lock and let recovery catch it up. 0 with s->index usable, 1 when the
 * index cannot be used (read-only store, or damage recovery refuses to
 * pass: callers scan; s->index_why says why), or an error. */
int es_store_index_ready(struct es_store *s, struct es_error *err);

/* Call cb for each stored line of one stream with version in [from, to],
 * in version order (reverse: descending). cb returns non-zero to stop. */
typedef int (*es_line_cb)(void *arg, const char *line, size_t len, const struct es_rec *r);
int es_store_read_stream(struct es_store *s, const char *stream, size_t slen, uint64_t from,
			 uint64_t to, int reverse, es_line_cb cb, void *arg, struct es_error *err);

#endif
