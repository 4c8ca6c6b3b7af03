/* snapshot.h: snapshots of stream states, so replay stays bounded.
 *
 * A snapshot records a stream's state after version V (seq S, whose event
 * hash is H) under one reducer (its sha256). It is only ever used after
 * checking that the log still holds that event with that hash, that the
 * reducer matches, that its checksum is right and its format is known;
 * otherwise it is ignored (never applied), and a note says why. Layout and
 * format: es-store(5), "Snapshots":
 *
 *   snapshots/<sha256(stream) hex>/<version:020>-<seq:020>-<reducer:16>.snap.zst
 *
 * each one zstd frame (with content checksum) holding one line:
 *
 *   {"format":1,"stream":S,"version":V,"seq":S,"hash":H,"ts":T,
 *    "reducer":R,"taken":T,"state":{..},"sha256":X}
 *
 * where X = sha256 of the line from its '{' up to, not including,
 * ',"sha256":'. The state is stored with 17 significant digits for reals so
 * that folding on from a snapshot gives exactly what a full replay gives.
 */
#ifndef ES_SNAPSHOT_H
#define ES_SNAPSHOT_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "record.h"
#include "reducer.h"
#include "store.h"

#define ES_SNAPSHOT_FORMAT 1

/* The negative answer of es_snapshot_load, es_snapshot_check_log and
 * es_snapshot_take (none usable, not in the log, not due). Apart from
 * every error status: ES_CORRUPT, a damaged log, is 1. */
#define ES_SNAP_NO (-1)

/* Called with a reason for each snapshot that is ignored (for -v). */
typedef void (*es_snapshot_note_cb)(void *arg, const char *note);

/* Load the newest valid snapshot of stream (decoded name) taken at or
 * before max_seq (UINT64_MAX: any) under reducer r into f (state, version,
 * seq, ts, stream). Returns 0 when one was loaded, ES_SNAP_NO when none is
 * usable, or an error status. */
int es_snapshot_load(struct es_store *s, const char *stream, size_t slen,
		     const struct es_reducer *r, uint64_t max_seq, struct es_fold *f,
		     es_snapshot_note_cb note, void *arg, struct es_error *err);

/* One snapshot file. es_snapshot_list() fills the name fields; the rest
 * come from es_snapshot_read(). */
struct es_snapshot {
	char path[PATH_MAX];
	size_t rel;                    /* path + rel: "snapshots/<64 hex>/<name>" */
	uint64_t version, seq, size;   /* size: bytes of the file */
	char reducer[ES_HASH_HEX + 1]; /* first 16 hex from the name until read */
	/* after es_snapshot_read() */
	char *text;                    /* the decompressed record line, NUL-terminated */
	size_t len;
	char *stream;                  /* decoded name (malloc'd) */
	size_t slen;
	char hash[ES_HASH_HEX + 1];
	char ts[ES_TS_LEN + 1], taken[ES_TS_LEN + 1];
	const char *state;             /* the state's JSON text, inside text */
	size_t state_len;
	json_t *json;                  /* the parsed record */
	const char *bad;               /* why es_snapshot_read found it unsound */
};

/* The snapshot files of one stream (stream non-NULL) or of every stream,
 * grouped by stream directory, each group in ascending version order.
 * *v is malloc'd (free with es_snapshot_list_free). */
int es_snapshot_list(struct es_store *s, const char *stream, size_t slen, struct es_snapshot **v,
		     size_t *n, struct es_error *err);
void es_snapshot_list_free(struct es_snapshot *v, size_t n);
/* Whether a and b are in the same stream directory. */
int es_snapshot_same_stream(const struct es_snapshot *a, const struct es_snapshot *b);

/* Read and check a snapshot file on its own (zstd checksum, format, sha256,
 * fields, agreement with its name). 0 when sound, 1 when not (*why and
 * sn->bad say why, e.g. "checksum mismatch"; sn->stream is then NULL), or
 * an error status (out of memory). */
int es_snapshot_read(struct es_snapshot *sn, const char **why, struct es_error *err);
void es_snapshot_release(struct es_snapshot *sn);
/* Check a read snapshot against the log through the index (which must be
 * ready): the event at its version must carry its seq, hash and ts. 0 when
 * it does, ES_SNAP_NO when not (*why), or an error status. */
int es_snapshot_check_log(struct es_store *s, const struct es_snapshot *sn, const char **why,
			  struct es_error *err);

/* Taking. The index must be ready (es_store_index_ready(), or the writer's
 * lock with the index up to date). */
struct es_snapshot_take {
	uint64_t every;    /* take only with >= every events since the last valid
			    * snapshot (0 or 1: whenever there is a newer event) */
	uint64_t max_seq;  /* snapshot at the last version with seq <= max_seq */
	int full;          /* fold from version 1, not from a snapshot */
	struct es_buf *out; /* non-NULL: append the record line here, store nothing */
	es_snapshot_note_cb note;
	void *arg;
	/* results */
	uint64_t version, seq;  /* of the snapshot taken (or the stream's, when none) */
	uint64_t from;          /* version of the snapshot it started from; 0: none */
	int purged;             /* not due: the event at the target was purged (version
				 * is not exact when the index was rebuilt since) */
};
/* Snapshot one stream under r. 0 when taken, ES_SNAP_NO when not due (up
 * to date, fewer than `every` new events, no events, or the event at the
 * target version purged), or an error status. */
int es_snapshot_take(struct es_store *s, const char *stream, size_t slen,
		     const struct es_reducer *r, struct es_snapshot_take *t, struct es_error *err);

/* Auto-snapshots from es-append (store.json "snapshot_every"): for each
 * stream that events [from, from+n) of b stored into, take a snapshot under
 * the default reducer when it has snapshot_every or more events since its
 * last one. Call under the lock, after the batch is durable and indexed.
 * Taken counts the snapshots written. 0 or an error status (the events
 * are stored either way). */
int es_snapshot_auto(struct es_store *s, const struct es_batch *b, size_t from, size_t n,
		     size_t *taken, struct es_error *err);

/* Verify the snapshots v[0..n) of one stream, all taken under r, by one
 * full replay from version 1, comparing each state byte for byte.
 * bad[i] is set to a reason (static string) for each one that is wrong,
 * NULL for the right ones. When the stream's first events were purged
 * (es_snapshot_history_purged) no replay can recompute the states: they
 * are checked against the log only, and *log_only is set. The snapshots
 * must have been read. Returns 0 (even when some are bad) or an error
 * status. */
int es_snapshot_verify(struct es_store *s, const struct es_reducer *r, struct es_snapshot **v,
		       size_t n, const char **bad, int *log_only, struct es_error *err);
/* 1 when the stream's first events were purged by es-archive
 * --purge-before: its version 1 lies at or below the purge anchor, or an
 * index rebuilt since holds no position for it. */
int es_snapshot_history_purged(struct es_store *s, const char *stream, size_t slen);

/* Remove a snapshot file (and its directory once empty), durably. */
int es_snapshot_remove(const struct es_snapshot *sn, struct es_error *err);
/* Remove temp files left in snapshots/ by writers that died. */
int es_snapshot_clean_temps(struct es_store *s, size_t *removed, struct es_error *err);

#endif
