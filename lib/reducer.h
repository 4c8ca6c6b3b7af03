/* reducer.h: folding a stream's events into its state.
 *
 * The default reducer applies each event's data to the state as an RFC 7386
 * merge patch. A spec (JSON, see es-replay(1)) declares per-type operations:
 *
 *   {"init": {...},                       initial state (default {})
 *    "on": {"ItemAdded": [{"op": "add", "path": "total", "from": "data.price"}, ...],
 *           "*": [...]}}                  "*": every event, after its type's ops
 *
 * ops: set, unset, merge, add, sub, inc, min, max, push (with "cap"), count.
 * A value comes from an event path ("from": "data.items.0.qty", "ts",
 * "version", "seq", "stream", "type", "id", "meta.user", "data") or is a
 * constant ("value": ...). A spec is data: no code runs. It is validated
 * when compiled; its identity is the sha256 of its canonical form (sorted
 * keys, compact), so a snapshot taken under another reducer is never used.
 *
 * Values named by paths are pulled out of the stored bytes by a scanner:
 * only the default reducer (and "data" as a whole) parses data with jansson.
 */
#ifndef ES_REDUCER_H
#define ES_REDUCER_H

#include <jansson.h>
#include <stdint.h>

#include "buf.h"
#include "chain.h"
#include "error.h"
#include "record.h"
#include "strmap.h"
#include "timeq.h"

struct es_reducer;

/* The default merge-patch reducer. */
int es_reducer_default(struct es_reducer **r, struct es_error *err);
/* Compile a spec object (borrowed). Errors name the JSON path in the spec. */
int es_reducer_compile(struct es_reducer **r, json_t *spec, struct es_error *err);
/* Compile just the "on" rules, for specs that embed them (es-project). */
int es_reducer_compile_rules(struct es_reducer **r, json_t *on, json_t *init,
			     const char *where, struct es_error *err);
/* Load and compile a spec file (NULL path: the default reducer). */
int es_reducer_load(struct es_reducer **r, const char *path, struct es_error *err);
void es_reducer_free(struct es_reducer *r);
/* The identity of a spec that holds rules ("init", "on"; es-project's
 * too): the sha256 of its compact text, the keys of every object sorted
 * but for those in "init", in a rule's "value" and in a window's "alert",
 * which keep the order they were written in, since states (and alerts)
 * take it. For a spec whose objects there are sorted, that is the sorted
 * text. sorted_only: every object sorted (the identity before the order
 * counted). 0, or -1 (no memory). */
int es_reducer_spec_hash(const json_t *spec, int sorted_only, char out[ES_HASH_HEX + 1]);
/* 64 hex digits identifying the reducer ("default" reducer included). */
const char *es_reducer_id(const struct es_reducer *r);
/* A new copy of the initial state. */
json_t *es_reducer_init(const struct es_reducer *r);

/* What r's rules read of a record's body, for es_rec_locate_body:
 * ES_BODY_DATA_END when data is taken whole, ES_BODY_META for meta. */
int es_reducer_reads(const struct es_reducer *r);

/* Apply one stored record (parsed with ES_REC_BODY) to *state. Errors
 * (ES_DATA) say which rule failed and why, e.g. a type mismatch. A failure
 * can leave the changes of the rules before it. */
int es_reducer_apply(const struct es_reducer *r, json_t **state, const struct es_rec *rec,
		     struct es_error *err);
/* The same, all or nothing: after a failure *state is as it was (for
 * es-project --on-error skip). */
int es_reducer_apply_whole(const struct es_reducer *r, json_t **state, const struct es_rec *rec,
			   struct es_error *err);

/* Value of an event path in a record: a new reference, or NULL when the
 * path is absent. Used by filters and group keys too. */
json_t *es_event_get(const struct es_rec *rec, const char *path);

/* At most this many integers make a flat state (see es_foldset). */
#define ES_FOLD_FLAT 8

/* A stream being folded: state plus the position it reflects. */
struct es_fold {
	json_t *state;          /* NULL while the state is flat */
	uint64_t version, seq;
	uint64_t first_seq;     /* in a foldset: of the first event folded */
	char ts[ES_TS_LEN + 1];
	struct es_buf stream;   /* JSON literal of the stream */
	/* flat: the state is {key: integer, ...} held as the reducer's slots,
	 * in the order the keys were first set */
	int is_flat;
	unsigned char nset, order[ES_FOLD_FLAT];
	long long slot[ES_FOLD_FLAT];
	const char *const *keys; /* the reducer's, by slot */
};
void es_fold_init(struct es_fold *f, const struct es_reducer *r);
void es_fold_release(struct es_fold *f);
int es_fold_apply(const struct es_reducer *r, struct es_fold *f, const struct es_rec *rec,
		  struct es_error *err);
/* Append {"stream":..,"version":..,"seq":..,"ts":..,"state":{..}} and '\n'. */
int es_fold_print(const struct es_fold *f, struct es_buf *out);

/* Many streams folded at once (files, stdin, whole-store scans), in order of
 * first appearance.
 *
 * With flat set (before the first fold), a reducer whose every rule is
 * count, inc, add or sub of integers at a one-key path (and no init) keeps
 * each state as a few integers instead of a JSON object: the same states,
 * printed by es_fold_print the same, at a fraction of the lookups. The
 * first value that is not such an integer, or an overflow, turns that
 * state into its JSON object for good, before the event is applied. Only
 * es_fold_apply and es_fold_print know flat states: a caller that reads
 * f->state itself leaves flat unset. */
struct es_foldset {
	struct es_strmap map; /* stream literal -> index */
	struct es_fold *f;
	size_t n, cap;
	int flat;
};
int es_foldset_init(struct es_foldset *fs);
void es_foldset_release(struct es_foldset *fs);
/* The fold of rec's stream, created (with r's initial state) when new. */
struct es_fold *es_foldset_get(struct es_foldset *fs, const struct es_reducer *r,
			       const struct es_rec *rec);
/* The same, given h = es_strmap_hash(rec->stream, rec->stream_len). */
struct es_fold *es_foldset_get_h(struct es_foldset *fs, const struct es_reducer *r,
				 const struct es_rec *rec, uint64_t h);

#endif
