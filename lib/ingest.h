/* ingest.h: read input files of events into a batch, validating every
 * line, on two threads where there is enough to share.
 *
 * Lines are gathered in blocks of a few MiB; each block's lines are split
 * in two halves, validated at once (es_batch_add_line) into two batches,
 * and joined in input order. Validation is most of what a bulk import
 * costs before it can write, and it needs nothing from other lines.
 */
#ifndef ES_INGEST_H
#define ES_INGEST_H

#include "error.h"
#include "record.h"

/* Read files (stdin for "-"; none: stdin) into b. Blank lines are skipped.
 * On a bad line: ES_DATA with "line N: why" (stdin) or "FILE: line N: why",
 * that of the first bad line in the input; other errors as es_input's. */
int es_ingest(struct es_batch *b, char **files, int nfiles, int flags, struct es_error *err);

#endif
