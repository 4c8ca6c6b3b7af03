/* store.h: the store directory (see es-store(5)).
 *
 *   store.json   format marker and settings     lock   flock(2) of writers
 *   log/         segments named by first seq    index/ LMDB (index.h)
 *   quarantine/  bytes cut from a torn tail     archive/, snapshots/, projections/
 *
 * Writers: es_store_open(ES_OPEN_WRITE[|ES_OPEN_CREATE]), es_store_lock(),
 * which recovers a torn tail and brings the index up to date, then append
 * (append.h), then es_store_unlock(). Readers open without ES_OPEN_WRITE.
 */
#ifndef ES_STORE_H
#define ES_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "error.h"
#include "index.h"

#define ES_STORE_DEFAULT "es-store"
#define ES_SEGMENT_SIZE_DEFAULT (64ull << 20)
#define ES_STORE_FORMAT_VERSION 1

enum {
	ES_OPEN_WRITE = 1,  /* will append: needs the lock */
	ES_OPEN_CREATE = 2, /* create the store when missing */
};

struct es_store {
	char *dir;
	uint64_t segment_size;
	uint64_t snapshot_every;   /* store.json "snapshot_every"; 0 = off */
	int flags;
	int lock_fd, locked;
	int dirlock;               /* fd + 1 of the store directory, locked with
				    * lock_fd; 0 when not held */
	struct es_head head;       /* valid after es_store_lock() */
	int active_fd;             /* open for append when locked; -1 */
	struct es_chain *chain;
	struct es_index *index;    /* NULL when it cannot be opened */
	uint64_t *segs;            /* log segments, ascending first seq */
	size_t nsegs;
	/* progress of recovery, for messages */
	uint64_t recovered_bytes;  /* bytes moved to quarantine/ by the last lock */
	uint64_t indexed;          /* records the last lock had to (re)index */
	int read_fd;               /* es_store_read_pos keeps one segment open */
	uint64_t read_seg;
	int index_behind;          /* an index commit failed after a durable batch */
	int bulk;                  /* es_store_bulk_begin: index commits not synced */
	int lazy;                  /* es_store_lazy_begin: the same, one batch a process */
	int hot_known;             /* index_hot was looked at */
	int index_hot;             /* index/data.mdb was written less than a second
				    * before this writer opened it */
	int index_clean;           /* the last recovery found the index current */
	int index_state;           /* es_store_index_ready's answer, once known:
				    * 0 not asked yet, 1 ready, 2 unusable */
	struct es_error index_why;  /* when unusable: why it could not be caught up */
	/* archive/MANIFEST (archive.h), re-read by es_store_list_segments();
	 * NULL when nothing is archived */
	struct es_archive *archive;
	struct es_archive_cache *arc_cache; /* restored archived segments */
};

/* The store directory from -d / ES_STORE / default. */
const char *es_store_dir(const char *opt);
/* Whether dir holds a store (its store.json). */
int es_store_exists(const char *dir);
int es_store_open(struct es_store *s, const char *dir, int flags, struct es_error *err);
void es_store_close(struct es_store *s);
/* Take the writers' lock, then recover: cut a torn tail of the active
 * segment into quarantine/, check the head and bring the index up to it.
 * Corruption that is not a torn tail is ES_CORRUPT and nothing is changed. */
int es_store_lock(struct es_store *s, struct es_error *err);
void es_store_unlock(struct es_store *s);
/* A run of many batches under one lock (es-append --batch-size) need not
 * sync the index after every batch: the log holds every acknowledged event
 * and a crash of the process leaves the page cache, and so the index,
 * whole. Only a crash of the machine can tear an index whose commits were
 * not synced. So, under the lock: es_store_bulk_begin makes a note,
 * index/unsynced, holding the boot id (durably), turns the index's syncs
 * off and holds its commits (es_index_hold: a commit every ~100k keys, so
 * pages later batches touch again are copied once; an index behind the
 * log is what recovery catches up anyway); es_store_bulk_end commits and
 * syncs the index once and removes the note.
 * A note from this boot (its writer died) is settled by the next recovery
 * (sync, remove); one from an earlier boot means the machine went down
 * before the sync, so the index is rebuilt from the log and readers do not
 * use it meanwhile. A sync that fails is never retried: the note is
 * rewritten so that it reads as an earlier boot's (rule 3 of
 * reliability.md). es_store_unlock ends a bulk run that is still on. */
int es_store_bulk_begin(struct es_store *s, struct es_error *err);
int es_store_bulk_end(struct es_store *s, struct es_error *err);
/* Single appends in quick succession (one process each) need not sync the
 * index either, for the same reason: under the lock, when index/data.mdb
 * was written less than a second before (s->index_hot), es_store_lazy_begin
 * makes the same note and turns the index's syncs off for this process.
 * The next writer that finds the note keeps it while the index stays that
 * busy, and otherwise syncs the index and removes it (recovery). 0, or an
 * error after which the commits are synced as usual. */
int es_store_lazy_begin(struct es_store *s, struct es_error *err);
/* The note in the index directory: 0 none, 1 from this boot, 2 from an
 * earlier boot (or the boot id cannot be read: treated as earlier). */
int es_store_index_unsynced(const char *index_dir);
/* Under the lock, after an index commit failed (s->index_behind): run
 * recovery again so the index covers every durable batch before the next
 * one is planned. */
int es_store_catch_up_index(struct es_store *s, struct es_error *err);
/* Re-read log/ into s->segs. */
int es_store_list_segments(struct es_store *s, struct es_error *err);
/* "DIR/log/<20 digits>.ndjson" into out (PATH_MAX). */
void es_store_seg_path(const struct es_store *s, uint64_t first, char *out, size_t n);
/* Open the active segment for appending, rolling to a new one first when
 * adding `add` bytes would pass segment_size. Under the lock. */
int es_store_prepare_append(struct es_store *s, size_t add, struct es_error *err);
/* (Re)open s->index, writable or not. Readers get s->index NULL when it
 * cannot be opened. */
int es_store_open_index(struct es_store *s, int writable, struct es_error *err);
/* A batch failed and could not be cut back from segment seg: note in
 * DIR/undo that seg must be cut back to size; the next es_store_lock()
 * moves those bytes to quarantine/ first. 0, or -1 with errno. */
int es_store_note_undo(struct es_store *s, uint64_t seg, uint64_t size);
/* Rebuild the index from the whole log (under the lock). */
int es_store_rebuild_index(struct es_store *s, struct es_error *err);
/* Under the lock: remove index/ and rebuild it from the log, for an index
 * that LMDB finds damaged or that disagrees with the log. What the head
 * found by es_store_lock() covers is never cut. */
int es_store_reset_index(struct es_store *s, struct es_error *err);
/* 1 when err says that index/ is damaged (LMDB's own checks, a failed
 * read, or an answer the log contradicts): es_store_reset_index() helps. */
int es_store_index_damaged(const struct es_error *err);
/* Read one line at pos into buf (with its '\n'), from the archive when
 * the MANIFEST lists its segment. 0 or es_status: ES_CORRUPT when it is not
 * where the index says, its segment is gone unarchived, or the archive is
 * damaged; ES_NOMATCH when it was purged. */
int es_store_read_pos(struct es_store *s, const struct es_pos *pos, char **buf,
		      size_t *cap, struct es_error *err);

#endif
