/* append.h: the writer's protocol (see es-store(5), "Appending").
 *
 * Under the store lock: check each event's id (an id already in its stream
 * is a no-op success) and expectation, assign seq, version and ts, build the
 * chained lines with "more" marking all but the batch's last, write them in
 * one go, fdatasync, then commit the index (whose keys a big batch puts
 * while a helper thread writes and syncs). Anything that fails before the
 * fdatasync returned 0 leaves the segment truncated back to its old size.
 */
#ifndef ES_APPEND_H
#define ES_APPEND_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "record.h"
#include "store.h"

struct es_append_opts {
	enum es_expect expect;   /* --expect: the stream's version before the batch */
	uint64_t expect_version;
	int import_ts;           /* take ts from the input (non-decreasing) */
};

/* What became of each input event: stored; or not, its id being stored in
 * its stream already, as a record that can be printed or (only told when
 * out is given) as one es-archive --purge-before deleted since. */
enum es_fate { ES_STORED = 0, ES_DUPLICATE = 1, ES_DUPLICATE_PURGED = 2 };

/* What a run of batches under one lock has learnt: each stream's version
 * (once the index's answer was checked against the log, or once the run
 * stored it), and (hashed) the ids of streams that had no event before
 * the run, so that only a hash hit sends such an id to the index. A
 * later batch of the run asks the index neither again: in a bulk import of
 * 10,000-event chunks those lookups and checks were a sixth of the time.
 * Make one after es_store_lock and free it before es_store_unlock. */
struct es_append_run;
struct es_append_run *es_append_run_new(void); /* NULL: out of memory */
void es_append_run_free(struct es_append_run *run);

/* On a store that does not exist yet every stream is at version 0 and no
 * id is stored: do events [0, n) of b meet their expectations there, as
 * es_append_batch would plan them? 0, or ES_CONFLICT with the message
 * es_append_batch would give, so that a conflict can be refused before
 * the store is created (a conflict changes nothing). */
int es_append_check_empty(const struct es_batch *b, size_t n, const struct es_append_opts *o,
			  struct es_error *err);

/* Append events [from, from+n) of b as one atomic batch. The store must be
 * locked; run is NULL or what earlier batches under the same lock learnt.
 * On success out holds, in input order, the stored line of every event
 * (for a duplicate, the line already in the log) and fate[i] tells which
 * (fate has n entries); out NULL: no lines wanted (es-append -q), only
 * fate. On failure nothing is stored. */
int es_append_batch(struct es_store *s, struct es_append_run *run, const struct es_batch *b,
		    size_t from, size_t n, const struct es_append_opts *o, struct es_buf *out,
		    unsigned char *fate, struct es_error *err);

#endif
