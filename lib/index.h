/* index.h: the stream index, in LMDB under index/.
 *
 * Derived data: deleting index/ loses nothing. For every stream it keeps
 * the current version and, per version, where the event lies in the log
 * (segment, byte offset, length, seq); per stream and event id, the version
 * that holds it (idempotent retries). Its head records the log position it
 * covers (seq, hash, segment, end offset): es_store_recover() compares that
 * with the log before the index is used, catches it up, or rebuilds it.
 *
 * Keys (one LMDB database):
 *   "H"                      head (struct es_head, fixed layout)
 *   "s" stream               current version (u64 BE)
 *   "e" stream 0 version     struct es_pos (u64 BE version key)
 *   "i" stream 0 id          version (u64 BE)
 */
#ifndef ES_INDEX_H
#define ES_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "error.h"

/* A position in the log. */
struct es_pos {
	uint64_t seq;
	uint64_t seg;   /* first seq of the segment (its name) */
	uint64_t off;   /* byte offset of the line in the segment */
	uint32_t len;   /* line length including '\n' */
};

/* The end of the log as far as some derived data knows it. */
struct es_head {
	uint64_t seq;            /* 0 for an empty log */
	char hash[ES_HASH_HEX + 1];
	int64_t ts;              /* us; 0 for an empty log */
	uint64_t seg;            /* segment holding the last record (0: none) */
	uint64_t end;            /* byte size of that segment up to the head */
};

struct es_index;

/* Open (creating when writable) the index in dir. */
int es_index_open(struct es_index **ix, const char *dir, int writable, struct es_error *err);
void es_index_close(struct es_index *ix);

/* Commit without fdatasync (on = 1) or with it (0, the default); see
 * es_store_bulk_begin for when that is safe. es_index_sync flushes every
 * commit so far to disk. */
int es_index_set_nosync(struct es_index *ix, int on, struct es_error *err);
int es_index_sync(struct es_index *ix, struct es_error *err);

/* Transactions: one write transaction at a time, or a read snapshot. */
int es_index_begin(struct es_index *ix, int write, struct es_error *err);
int es_index_commit(struct es_index *ix, struct es_error *err);
void es_index_abort(struct es_index *ix);

/* Deferred commits, for a bulk run (es_store_bulk_begin): with hold on,
 * es_index_commit keeps the write transaction open ("held") instead of
 * committing it, so a page the next batch touches again is copied once,
 * not once per batch; es_index_begin then hands out the held transaction
 * (its reads see what it wrote) and es_index_abort leaves it alone.
 * es_index_flush commits a held transaction; es_index_discard throws it
 * away with whatever it holds (after a failed put, which leaves an LMDB
 * transaction unusable: the caller must know the index is now behind).
 * es_index_hold(ix, 0) flushes. */
int es_index_hold(struct es_index *ix, int on, struct es_error *err);
int es_index_flush(struct es_index *ix, struct es_error *err);
void es_index_discard(struct es_index *ix);
/* A nested write transaction inside the current one (a batch being read
 * during recovery): end it with commit 1 to keep, 0 to drop its changes. */
int es_index_sub_begin(struct es_index *ix, struct es_error *err);
int es_index_sub_end(struct es_index *ix, int commit, struct es_error *err);
/* Drop everything (inside a write transaction). */
int es_index_clear(struct es_index *ix, struct es_error *err);

/* 0 and *h filled, 1 when there is no head (empty or new index), or -1
 * (unreadable, or damaged: its check sum does not match). */
int es_index_get_head(struct es_index *ix, struct es_head *h);
int es_index_put_head(struct es_index *ix, const struct es_head *h, struct es_error *err);

/* Current version of a stream: 0 when it does not exist. -1 on error. */
int es_index_version(struct es_index *ix, const char *stream, size_t len, uint64_t *version);
/* Version holding an event id in a stream: 0 found, 1 not found, -1 error. */
int es_index_find_id(struct es_index *ix, const char *stream, size_t len,
		     const char *id, size_t idlen, uint64_t *version);
/* Record one event (its position, its id) and the stream's new version. */
int es_index_put_event(struct es_index *ix, const char *stream, size_t len,
		       uint64_t version, const char *id, size_t idlen,
		       const struct es_pos *pos, struct es_error *err);
/* One event of a batch for es_index_put_events. */
struct es_index_event {
	const char *stream, *id;
	size_t stream_len, id_len;   /* id_len 0: no id to remember */
	uint64_t version;
	struct es_pos pos;
};
/* es_index_put_event for a whole batch, in key order through one cursor,
 * so that neighbouring keys meet the pages of their path still in cache
 * (and LMDB skips the search when a key falls on its current page): bulk
 * appends of 10,000-event chunks spend ~6% less CPU than a put at a time.
 * Later events of a stream win, as with single puts. */
int es_index_put_events(struct es_index *ix, const struct es_index_event *ev, size_t n,
			struct es_error *err);
/* Position of (stream, version): 0 found, 1 not found, -1 error. */
int es_index_get_pos(struct es_index *ix, const char *stream, size_t len,
		     uint64_t version, struct es_pos *pos);

/* Every stream in key order with its version and where its last event
 * is (pos NULL when the index has no position for it); cb returns
 * non-zero to stop (that value is returned), -1 when a cursor fails. The
 * positions come through a second cursor that walks along: a lookup at a
 * time in another order costs a search from the root each. */
int es_index_each_stream_pos(struct es_index *ix,
			     int (*cb)(void *arg, const char *stream, size_t len, uint64_t version,
				       const struct es_pos *pos),
			     void *arg);
/* es_index_each_stream_pos in a read transaction of its own, begun and
 * ended here: for another thread while the one that owns ix does not use
 * it (es-verify walks the index while its threads check the log). *h and
 * *head_rc (es_index_get_head's return) are the head that transaction
 * sees: what the rows cover. */
int es_index_each_stream_pos_apart(struct es_index *ix, struct es_head *h, int *head_rc,
				   int (*cb)(void *arg, const char *stream, size_t len,
					     uint64_t version, const struct es_pos *pos),
				   void *arg);
/* Every event position the index holds ("e" keys), in key order: stream,
 * version, position; pos NULL (and version 0) for a key or value of
 * another shape (damage). cb returns non-zero to stop (that value is
 * returned); -1 when a cursor fails. One cursor walks the keys in the
 * order they lie on the pages (es-verify: 1M events in 60 ms). */
int es_index_each_pos(struct es_index *ix,
		      int (*cb)(void *arg, const char *stream, size_t len, uint64_t version,
				const struct es_pos *pos),
		      void *arg);
/* es_index_each_pos in a read transaction of its own, as
 * es_index_each_stream_pos_apart; *h and *head_rc (es_index_get_head's
 * return) are the head that transaction sees: what the positions cover. */
int es_index_each_pos_apart(struct es_index *ix, struct es_head *h, int *head_rc,
			    int (*cb)(void *arg, const char *stream, size_t len, uint64_t version,
				      const struct es_pos *pos),
			    void *arg);
/* Iterate the streams in key order; cb returns non-zero to stop (that value
 * is returned). prefix may be NULL. */
int es_index_each_stream(struct es_index *ix, const char *prefix, size_t plen,
			 int (*cb)(void *arg, const char *stream, size_t len, uint64_t version),
			 void *arg);

#endif
