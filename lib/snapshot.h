/* snapshot.h: snapshots of stream states, so replay stays bounded.
 *
 * A snapshot records a stream's state after version V (seq S, whose event
 * hash is H) under one reducer (its sha256). It is only ever used after
 * checking that the log still holds that event with that hash, that the
 * reducer matches, that its checksum is right and its format is known;
 * otherwise it is ignored (never applied), and a note says why. Layout and
 * format: es-store(5).
 */
#ifndef ES_SNAPSHOT_H
#define ES_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "reducer.h"
#include "store.h"

/* Called with a reason for each snapshot that is ignored (for -v). */
typedef void (*es_snapshot_note_cb)(void *arg, const char *note);

/* Load the newest valid snapshot of stream (decoded name) taken at or
 * before max_seq (UINT64_MAX: any) under reducer r into f (state, version,
 * seq, ts, stream). Returns 0 when one was loaded, 1 when none is usable,
 * or an error status. */
int es_snapshot_load(struct es_store *s, const char *stream, size_t slen,
		     const struct es_reducer *r, uint64_t max_seq, struct es_fold *f,
		     es_snapshot_note_cb note, void *arg, struct es_error *err);

#endif
