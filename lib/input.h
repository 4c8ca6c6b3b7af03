/* input.h: a line reader over files and stdin, plain or zstd-compressed.
 *
 * Compression is detected by the zstd magic (28 B5 2F FD) at the start of
 * each input, so `es-replay old.zst` and `zstdcat old.zst | es-replay` read
 * the same. Lines are returned without their '\n' and without one trailing
 * '\r'. A line longer than the limit is an error that names its number; a
 * last line without a newline is returned like any other (es_input.no_eol
 * tells).
 */
#ifndef ES_INPUT_H
#define ES_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ES_LINE_MAX_DEFAULT (16u << 20) /* 16 MiB */

struct es_input {
	const char *name;   /* for messages: the path or "-" */
	uint64_t lineno;    /* number of the line last returned, 1-based */
	uint64_t offset;    /* decompressed byte offset of that line's start */
	int no_eol;         /* the last line returned had no final newline */
	int had_cr;         /* a '\r' before its newline was dropped */
	int compressed;     /* zstd detected */
	size_t line_max;
	/* private */
	int fd, owns_fd, eof;
	char *buf;
	size_t cap, start, end;
	uint64_t consumed;
	void *zd;           /* ZSTD_DCtx */
	char *zin;
	size_t zin_cap, zin_pos, zin_len;
	int zin_eof, magic_checked;
	int zpending;       /* the last zstd frame is not complete yet */
};

/* Open path ("-" is stdin). Returns 0 or an es_status with err filled. */
int es_input_open(struct es_input *in, const char *path, struct es_error *err);
/* Read from an already open fd (not closed by es_input_close). */
int es_input_fdopen(struct es_input *in, int fd, const char *name, struct es_error *err);
/* Next line: 1 with line and len set, 0 at end, or -(status) on error. The line
 * stays valid until the next call. */
int es_input_next(struct es_input *in, const char **line, size_t *len, struct es_error *err);
void es_input_close(struct es_input *in);

#endif
