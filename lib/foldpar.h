/* foldpar.h: the whole-store fold on N threads (es-replay -j N).
 *
 * Every thread reads every line of the log, as far as its stream: the
 * streams are shared out by a hash of their name, and a thread parses and
 * folds only the lines of its own streams, in log order. So each state sees
 * exactly the events, in exactly the order, a single pass would give it,
 * whatever the reducer: nothing is merged but the lists of states.
 *
 * Each thread then prints its states (es_fold_print), and frees them while
 * the caller writes the lines out in order; es_foldpar_release waits for
 * that and unmaps the log.
 *
 * The log/ segments are mapped (project_scan.c) and their blocks handed to
 * every thread as they are found; archived history is restored through
 * es_log first and handed out the same way, as copied blocks of 1 MiB, at
 * most 4 per thread at once: a copy is freed when every thread is past it.
 * The result and the errors are those of the sequential scan: the states in order of
 * their streams' first selected event; on a bad line or a failed rule, the
 * error of the earliest one in the log. A record's envelope is read as
 * strictly as es_log reads it, its body only as far as the reducer needs
 * (es_reducer_reads, es_rec_locate_body), as es-project reads it.
 */
#ifndef ES_FOLDPAR_H
#define ES_FOLDPAR_H

#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "reader.h"
#include "reducer.h"
#include "store.h"

/* One state's line, as es_fold_print writes it. */
struct es_foldpar_line {
	uint64_t first_seq;       /* of the stream's first selected event */
	const char *text;         /* with its '\n' */
	size_t len;
};

struct es_foldpar {
	struct es_foldpar_run *run; /* the threads and the mapped log */
	struct es_buf *out;       /* the lines, one buffer per thread */
	int jobs;
	struct es_foldpar_line *lines; /* every state, by first selected event */
	size_t n;
	/* archived history: blocks restored, and the most held at once (the
	 * reading waits for the threads, so the archive's size is not) */
	size_t arc_blocks, arc_peak;
};

/* Fold every stream of the store whose events pass sel, on jobs threads.
 * On success fp->lines holds the states' lines; release fp in any case. */
int es_foldpar_run(struct es_foldpar *fp, struct es_store *s, const struct es_reducer *r,
		   const struct es_sel *sel, int jobs, struct es_error *err);
void es_foldpar_release(struct es_foldpar *fp);

#endif
