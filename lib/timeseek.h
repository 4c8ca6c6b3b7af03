/* timeseek.h: from a time or a seq to a position in a store's log, by
 * binary search, without reading the log in between.
 *
 * Two facts of the log make this possible (es-store(5)): ts never decreases
 * along the log, and seq is gapless and names each segment by its first
 * record. So "the first record with ts >= T" (or ts > T, or seq >= N) is
 * the first record of the log for which a monotonic predicate holds, and is
 * found in two steps:
 *
 *  1. Over segments. For a seq, the segment is the last one whose name
 *     (first seq) is <= N: no file is read. For a time, a binary search
 *     over the segments reads only the first line of each segment it
 *     probes (one pread) and keeps the last segment whose first record
 *     does not satisfy the predicate: the answer lies in it, or is the
 *     first record of the next segment.
 *
 *  2. Within the segment, bisection over byte offsets. The invariant is a
 *     line start `lo` whose record does not satisfy the predicate and a
 *     bound `hi` (a line start or the segment's end) from which every
 *     record does. A probe at the middle byte snaps forward to the next line
 *     start (the byte after the first '\n' at or after mid - 1), reads that
 *     one line and parses only its envelope, then moves lo or hi there.
 *     When no line starts between mid and hi, probes are kept below mid.
 *     Once fewer than 4 KiB remain, the lines from lo are read in order
 *     (from the 16 KiB block read last, usually).
 *
 * A lookup costs O(log segments + log segment bytes) preads of one block
 * each: about 25 for a 64 MiB segment of 350-byte records, whatever the
 * size of the store. Only what is visible is searched: the last segment
 * ends after the last record that closes a batch (es_store_visible_end).
 *
 * Only log/ is searched. When the answer is the first record of log/ and
 * log/ does not start at seq 1 (older history moved to archive/ by
 * es-archive), the answer may lie in that older history: the position says
 * so (older), and es_seek_seq_at() then finds the seq by reading the log
 * from its start with es_log_open_store(), which reads archived segments.
 */
#ifndef ES_TIMESEEK_H
#define ES_TIMESEEK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"
#include "timeq.h"

/* A position in the log: the first record satisfying what was sought. */
struct es_seek_pos {
	uint64_t seg;      /* the segment (its first seq); 0 when at_end */
	uint64_t off;      /* byte offset of the record's line in the segment */
	uint64_t seq;      /* the record's seq; 0 when at_end */
	uint64_t prev_seq; /* seq of the last visible record before it; 0: none */
	int at_end;        /* no visible record satisfies it: the end of the log */
	int older;         /* it may lie before log/'s first record (archived
			    * history): read with es_log_open_store() instead */
};

/* A search context over one view of the log (the segments and the visible
 * end as they were at es_seek_init; appends made later are not seen). */
struct es_seek {
	struct es_store *store;
	uint64_t *segs;    /* copy of the segment list */
	size_t nsegs;
	uint64_t last_end; /* visible end of the last segment */
	unsigned probes;   /* lines read so far, for -v and tests */
	/* private: one open segment and one cached block of it */
	int fd;
	size_t fd_i;       /* index into segs of fd */
	uint64_t fd_end;   /* searchable end of that segment */
	char *buf;
	size_t cap, blen;
	uint64_t boff;     /* file offset of buf[0] */
	int gone;          /* a listed segment was not there (es-archive moved it) */
};

int es_seek_init(struct es_seek *k, struct es_store *s, struct es_error *err);
void es_seek_release(struct es_seek *k);

/* The first visible record with ts >= ts (strict: ts > ts). ts is a stored
 * form (es_ts_format), compared as bytes. */
int es_seek_time(struct es_seek *k, const char ts[ES_TS_LEN + 1], int strict,
		 struct es_seek_pos *pos, struct es_error *err);
/* The first visible record with seq >= seq. */
int es_seek_seq(struct es_seek *k, uint64_t seq, struct es_seek_pos *pos,
		struct es_error *err);
/* Seq of the last record with ts <= ts: 0 when there is none (ts is before
 * the first event, or the log is empty). Exact even when the position is
 * older (see above), by a sequential read. */
int es_seek_seq_at(struct es_seek *k, const char ts[ES_TS_LEN + 1], uint64_t *seq,
		   struct es_error *err);
/* Seq of the last visible record (0: empty log), from the archive too. */
int es_seek_last_seq(struct es_seek *k, uint64_t *seq, struct es_error *err);

#endif
