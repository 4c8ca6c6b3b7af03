/* archive.h: cold segments (es-archive(1); the format is in
 * es-store(5), "Archive").
 *
 * Sealed log segments move to archive/ (or to a cold-tier directory) as one
 * zstd frame each, with a content checksum, listed in archive/MANIFEST. The
 * archived segments are always a prefix of the log: the first log/ segment
 * that is not archived starts right after the last archived seq. A purge
 * (--purge-before) deletes the oldest archived segments and leaves an anchor
 * in the MANIFEST: the last seq, hash and ts of what is gone.
 *
 * Archived records may leave out what the chain derives ("seq", "hash");
 * every reader gets the original lines back, byte for byte, through
 * es_archive_rd_*: readers (reader.c, store.c) never see the difference.
 *
 * A segment listed in the MANIFEST is read from the archive even when a copy
 * is still in log/ (an interrupted es-archive, finished by the next run): the
 * MANIFEST lists it only once the archive file is durable and verified.
 */
#ifndef ES_ARCHIVE_H
#define ES_ARCHIVE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "chain.h"
#include "error.h"
#include "index.h"
#include "timeq.h"

struct es_store;

#define ES_ARCHIVE_DIR "archive"
#define ES_ARCHIVE_MANIFEST "MANIFEST"
#define ES_ARCHIVE_LEVEL_DEFAULT 17
/* Transforms of the archived lines. */
#define ES_ARCHIVE_DERIVE "derive-seq-hash" /* "seq" and "hash" left out */
#define ES_ARCHIVE_VERBATIM "none"          /* the stored lines as they are */

/* One archived segment: a MANIFEST entry. */
struct es_archive_seg {
	char *file;                  /* "<20 digits>.ndjson.zst" */
	char *dir;                   /* "archive" (in the store) or an absolute path */
	uint64_t first_seq, last_seq, events;
	char first_ts[ES_TS_LEN + 1], last_ts[ES_TS_LEN + 1];
	char prev_hash[ES_HASH_HEX + 1];   /* hash of record first_seq - 1 */
	char last_hash[ES_HASH_HEX + 1];
	uint64_t raw_bytes;          /* the original segment's size */
	uint64_t bytes;              /* the compressed file's size */
	char sha256[ES_HASH_HEX + 1];/* of the compressed file */
	int level;
	int verbatim;                /* transform "none" */
	char archived_at[ES_TS_LEN + 1];
};

/* What --purge-before deleted: seq first_seq..last_seq, always a prefix. */
struct es_archive_purge {
	uint64_t first_seq, last_seq, events, segments, raw_bytes, bytes;
	char last_hash[ES_HASH_HEX + 1];
	char last_ts[ES_TS_LEN + 1];
	char purged_at[ES_TS_LEN + 1];
};

/* A loaded MANIFEST. */
struct es_archive {
	struct es_archive_seg *segs; /* ascending, contiguous */
	size_t n, cap;
	int purged;                  /* purge is valid */
	struct es_archive_purge purge;
	/* identity of the file it was read from (es_archive_refresh) */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* Load DIR/archive/MANIFEST. *out is NULL when there is none. 0, or
 * ES_CORRUPT naming the line and the reason, or ES_IO. */
int es_archive_load(const char *storedir, struct es_archive **out, struct es_error *err);
/* A load's message without the MANIFEST's path in front, for a finding
 * that names "archive/MANIFEST" itself. */
const char *es_archive_load_reason(const char *storedir, const char *msg);
void es_archive_free(struct es_archive *a);
/* Rewrite DIR/archive/MANIFEST atomically (temp, fsync, rename, fsync). */
int es_archive_write(const char *storedir, const struct es_archive *a, struct es_error *err);
/* Append a copy of e to a. 0 or -1 (no memory). */
int es_archive_add(struct es_archive *a, const struct es_archive_seg *e);

/* (Re)load s->archive when the MANIFEST changed since it was read.
 * Called by es_store_list_segments() after it listed log/. */
int es_archive_refresh(struct es_store *s, struct es_error *err);
/* Free s->archive and the restored-segment cache (es_store_close). */
void es_archive_store_release(struct es_store *s);

/* The entry whose first seq is seg, or NULL. */
const struct es_archive_seg *es_archive_find(const struct es_archive *a, uint64_t seg);
/* The entry holding seq, or NULL. */
const struct es_archive_seg *es_archive_find_seq(const struct es_archive *a, uint64_t seq);
/* Where the archive ends: the last archived (or purged) seq, its hash, ts,
 * segment and end offset; seq 0 and the genesis hash when there is nothing. */
void es_archive_end(const struct es_archive *a, struct es_head *h);
/* Where the archive begins: the purge anchor (or genesis, seq 0). */
void es_archive_start(const struct es_archive *a, struct es_head *h);
/* The last purged seq; 0 when nothing was purged. */
uint64_t es_archive_purged_seq(const struct es_store *s);
/* Whether a version's index lookup (rc of es_index_get_pos: 0 found, 1
 * none; pos when found) names an event es-archive --purge-before deleted:
 * at or before the anchor, or with no position in an index rebuilt since.
 * Readers leave those out, on purpose. */
int es_archive_pos_purged(const struct es_store *s, int rc, const struct es_pos *pos);
/* Whether h (an index head) is exactly the end of the archive. */
int es_archive_head_matches(const struct es_store *s, const struct es_head *h);
/* The path of an archived file. */
void es_archive_seg_path(const char *storedir, const struct es_archive_seg *e, char *out,
			 size_t n);

/* A streaming reader of one archived segment: decompresses and restores the
 * original lines. At its end it checks the frame, the event count, the
 * size and the restored chain against the entry (ES_CORRUPT otherwise). */
struct es_archive_rd;
#define ES_ARD_SHA256 1 /* also check the file's size and sha256 */
int es_archive_rd_open(struct es_archive_rd **rd, const char *storedir,
		       const struct es_archive_seg *e, int flags, struct es_error *err);
/* Open the file at path instead of the entry's own (a temp being checked). */
int es_archive_rd_open_path(struct es_archive_rd **rd, const char *path,
			    const struct es_archive_seg *e, int flags, struct es_error *err);
/* Next original line (without '\n') and its byte offset in the original
 * segment: 1, 0 at the (checked) end, or -(status). */
int es_archive_rd_next(struct es_archive_rd *rd, const char **line, size_t *len,
		       uint64_t *off, struct es_error *err);
void es_archive_rd_close(struct es_archive_rd *rd);

/* es_store_read_pos() for a segment that left log/: restores the segment
 * once (kept in a small cache on s, ES_ARCHIVE_CACHE_MB, default 256) and
 * copies the line. 0; -1 when pos is in no archived segment; ES_NOMATCH
 * when it was purged; or another status (ES_CORRUPT: the archive is
 * damaged). */
int es_archive_read_pos(struct es_store *s, const struct es_pos *pos, char **buf,
			size_t *cap, struct es_error *err);

/* The whole restored archived segment named seg (the original bytes of
 * log/<seg>), for readers that work on blocks of a segment rather than on
 * lines. *buf stays valid until the next call on s. 0, 1 when seg is not
 * archived, or a status. */
int es_archive_segment(struct es_store *s, uint64_t seg, const char **buf, size_t *len,
		       struct es_error *err);

/* ---- es-archive ---- */

/* What a run did or would do, one call per action, for the front end. */
enum es_archive_act {
	ES_ACT_ARCHIVED,   /* log segment -> archive file */
	ES_ACT_ROLLED,     /* the active segment was sealed (all events older) */
	ES_ACT_PURGED,     /* an archived segment deleted */
	ES_ACT_FINISHED,   /* a log/ copy of an archived segment removed */
	ES_ACT_CLEANED,    /* a leftover temp or orphan file removed */
	ES_ACT_WAITING,    /* another es-archive holds the lock */
};

struct es_archive_opts {
	int64_t before;           /* archive segments whose last ts < before */
	int has_before;
	int64_t purge_before;     /* purge archived segments whose last ts < this */
	int has_purge;
	const char *to;           /* cold-tier directory; NULL: DIR/archive */
	int level;                /* zstd level */
	int verbatim;             /* keep "seq" and "hash" */
	int dry_run;
	int jobs;                 /* segments compressed at once */
	int no_wait;              /* fail instead of waiting for the archive lock */
	/* act: what happened (or, with dry_run, would); e is the segment
	 * concerned (NULL for ES_ACT_WAITING), path the file acted on. */
	void (*act)(void *arg, enum es_archive_act what, const struct es_archive_seg *e,
		    const char *path);
	/* progress: raw bytes archived so far of total */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *arg;
};

struct es_archive_stats {
	uint64_t segments, events, raw_bytes, bytes;
	double seconds;           /* wall time of the archiving part */
	uint64_t purged_segments;
};

void es_archive_opts_init(struct es_archive_opts *o);
/* Run es-archive on s (opened with ES_OPEN_WRITE unless dry_run): finish
 * what an interrupted run left, archive, purge. 0 or a status. */
int es_archive_run(struct es_store *s, const struct es_archive_opts *o,
		   struct es_archive_stats *st, struct es_error *err);

/* One line of --list: a segment of a tier. */
struct es_archive_item {
	const char *tier;         /* "purged", "archive", "cold", "pending" (a log/ copy
				   * of an archived segment), "log", "active" */
	char file[PATH_MAX];      /* relative to the store when inside it */
	uint64_t first_seq, last_seq, events;
	uint64_t bytes, raw_bytes;
	char last_ts[ES_TS_LEN + 1]; /* "" when the segment is empty */
};
/* Call cb for every segment, oldest first; cb returns non-zero to stop. */
int es_archive_list(struct es_store *s, int (*cb)(void *arg, const struct es_archive_item *it),
		    void *arg, struct es_error *err);

/* ---- es-verify ---- */

enum es_archive_finding { ES_AV_FAILURE, ES_AV_WARNING, ES_AV_NOTE };
/* file is relative to the store ("archive/0000...1.ndjson.zst",
 * "archive/MANIFEST", "log/...") or absolute for a cold tier; seq 0 when
 * the finding concerns no single record. */
typedef void (*es_archive_report_fn)(void *arg, enum es_archive_finding kind, const char *file,
				     uint64_t seq, const char *msg);

struct es_archive_vstat {
	uint64_t segments, records, bytes, raw_bytes;
	uint64_t failures, warnings;
	/* Where the log/ part must continue: verify log/ from end.seq + 1
	 * anchored on end.hash. end.seq is 0 when nothing is archived. */
	struct es_head end;
	uint64_t purged_seq;      /* 0: nothing purged */
	char purged_hash[ES_HASH_HEX + 1];
};

/* Check the archive of s: the MANIFEST (well-formed, contiguous, chained
 * from the purge anchor or genesis), every file (present, size, sha256, a
 * complete zstd frame with a valid checksum), every restored record (well
 * formed, seq, ts order, per-stream versions within the archive, the chain
 * from prev_hash to last_hash), the first/last seq and ts, event count and
 * raw size of each entry, continuity with the first log/ segment, and any
 * log/ copy of an archived segment (a warning; it must be identical).
 * A purge is reported as a note. Waits while an archiving run holds
 * archive/lock (ES_IO at once with no_wait). Returns 0 when the checks ran
 * (failures counted in st), or a status when they could not. */
int es_archive_verify(struct es_store *s, int no_wait, es_archive_report_fn report, void *arg,
		      struct es_archive_vstat *st, struct es_error *err);

#endif
