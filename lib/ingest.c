#include "ingest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "input.h"
#include "timeq.h"

#define BLOCK_BYTES (8u << 20) /* a block of lines to share out */
#define MIN_SHARE 2048         /* fewer lines than this: one thread */

struct line {
	size_t off, len;
	uint64_t lineno;
	int file;
};

/* One half of a block: lines [from, to) into b. */
struct half {
	const struct es_buf *text;
	const struct line *lines;
	size_t from, to;
	int flags;
	struct es_batch *b;
	struct es_error err;
	size_t bad;             /* index of the line that failed */
	int rc;
	pthread_t t;
};

static void *run_half(void *arg)
{
	struct half *h = arg;

	for (size_t i = h->from; i < h->to; i++) {
		const struct line *l = &h->lines[i];
		if (es_batch_add_line(h->b, h->text->p + l->off, l->len, l->lineno, h->flags,
				      &h->err)) {
			h->rc = h->err.code;
			h->bad = i;
			break;
		}
		h->b->ev[h->b->n - 1].file = l->file;
	}
	return NULL;
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

struct block {
	struct es_buf text;
	struct line *lines;
	size_t n, cap;
};

static int block_add(struct block *k, const char *line, size_t len, uint64_t lineno, int file)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 4096;
		struct line *l = realloc(k->lines, cap * sizeof(*l));
		if (!l)
			return -1;
		k->lines = l;
		k->cap = cap;
	}
	k->lines[k->n].off = k->text.len;
	k->lines[k->n].len = len;
	k->lines[k->n].lineno = lineno;
	k->lines[k->n].file = file;
	k->n++;
	return es_buf_add(&k->text, line, len);
}

static void name_line(struct es_error *err, char **files, const struct line *l)
{
	es_error_at_line(err, files[l->file], (unsigned long long)l->lineno);
}

/* With --import-ts the input gives the times, and the log's ts never
 * decreases: input that goes back is bad input, found before any chunk of
 * it is stored. Events [from, b->n) came from the block's lines. */
static int check_order(const struct es_batch *b, size_t from, const struct line *lines,
		       char **files, struct es_error *err)
{
	for (size_t i = from ? from : 1; i < b->n; i++) {
		if (b->ev[i].ts < b->ev[i - 1].ts) {
			char prev[ES_TS_LEN + 1];
			es_ts_format(b->ev[i - 1].ts, prev);
			es_fail(err, ES_DATA, "\"ts\" is before the previous event's %s", prev);
			name_line(err, files, &lines[i - from]);
			return err->code;
		}
	}
	return 0;
}

/* Validate the block's lines into b: halves on two threads when big. */
static int flush(struct block *k, struct es_batch *b, struct es_batch *spare, char **files,
		 int flags, struct es_error *err)
{
	struct half h[2];
	size_t from = b->n;
	int two = k->n >= MIN_SHARE, started = 0;
	size_t mid = two ? k->n / 2 : k->n;

	memset(h, 0, sizeof(h));
	h[0] = (struct half){&k->text, k->lines, 0, mid, flags, b, {0, ""}, 0, 0, 0};
	h[1] = (struct half){&k->text, k->lines, mid, k->n, flags, spare, {0, ""}, 0, 0, 0};
	if (two)
		started = pthread_create(&h[1].t, NULL, run_half, &h[1]) == 0;
	run_half(&h[0]);
	if (two) {
		if (started)
			pthread_join(h[1].t, NULL);
		else if (h[0].rc == 0)
			run_half(&h[1]); /* no thread: do it here */
	}
	k->n = 0;
	es_buf_reset(&k->text);
	for (int i = 0; i < 2; i++) {
		if (h[i].rc) {
			*err = h[i].err;
			name_line(err, files, &k->lines[h[i].bad]);
			spare->n = 0;
			es_buf_reset(&spare->text);
			return err->code;
		}
	}
	if (es_batch_move(b, spare))
		return es_fail(err, ES_IO, "out of memory");
	return flags & ES_PARSE_TS ? check_order(b, from, k->lines, files, err) : 0;
}

int es_ingest(struct es_batch *b, char **files, int nfiles, int flags, struct es_error *err)
{
	static char *dash[] = {(char *)"-"};
	struct block k = {ES_BUF_INIT, NULL, 0, 0};
	struct es_batch spare;
	int rc = 0;

	es_batch_init(&spare);
	if (nfiles == 0) {
		files = dash;
		nfiles = 1;
	}
	b->files = files;
	for (int f = 0; f < nfiles && rc == 0; f++) {
		struct es_input in;
		const char *line;
		size_t len;
		int r;
		if ((rc = es_input_open(&in, files[f], err)) != 0) {
			/* lines already read come first */
			struct es_error oerr = *err;
			if ((rc = flush(&k, b, &spare, files, flags, err)) == 0) {
				*err = oerr;
				rc = oerr.code;
			}
			break;
		}
		while ((r = es_input_next(&in, &line, &len, err)) == 1) {
			if (in.lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
				line += 3; /* a byte order mark, tolerated at the start */
				len -= 3;
			}
			if (blank(line, len))
				continue;
			if (block_add(&k, line, len, in.lineno, f)) {
				rc = es_fail(err, ES_IO, "out of memory");
				break;
			}
			if (k.text.len >= BLOCK_BYTES && (rc = flush(&k, b, &spare, files, flags, err)))
				break;
		}
		if (r < 0 && rc == 0) {
			/* lines before the bad read come first */
			struct es_error rerr = *err;
			if ((rc = flush(&k, b, &spare, files, flags, err)) == 0) {
				*err = rerr;
				rc = rerr.code;
			}
		}
		es_input_close(&in);
	}
	if (rc == 0 && k.n > 0)
		rc = flush(&k, b, &spare, files, flags, err);
	es_buf_release(&k.text);
	free(k.lines);
	es_batch_release(&spare);
	return rc;
}
