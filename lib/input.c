#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "io.h"

static const unsigned char zstd_magic[4] = {0x28, 0xB5, 0x2F, 0xFD};

static int init(struct es_input *in, int fd, const char *name, int owns, struct es_error *err)
{
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->owns_fd = owns;
	in->name = name;
	in->line_max = ES_LINE_MAX_DEFAULT;
	in->cap = 1 << 16;
	in->buf = es_malloc(in->cap);
	if (!in->buf) /* (name may be "": a segment es_log names itself) */
		return es_fail(err, ES_IO, "out of memory");
	return 0;
}

int es_input_fdopen(struct es_input *in, int fd, const char *name, struct es_error *err)
{
	return init(in, fd, name, 0, err);
}

int es_input_open(struct es_input *in, const char *path, struct es_error *err)
{
	int fd;

	if (strcmp(path, "-") == 0)
		return init(in, 0, "-", 0, err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	if (init(in, fd, path, 1, err) != 0) {
		close(fd);
		return err->code;
	}
	return 0;
}

void es_input_close(struct es_input *in)
{
	if (in->owns_fd && in->fd >= 0)
		close(in->fd);
	in->fd = -1;
	free(in->buf);
	free(in->zin);
	ZSTD_freeDCtx(in->zd);
	in->buf = in->zin = NULL;
	in->zd = NULL;
}

static ssize_t raw_read(struct es_input *in, void *dst, size_t n)
{
	ssize_t r;

	do
		r = read(in->fd, dst, n);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Fill dst with up to n decompressed bytes; 0 at end; -1 with err. */
static ssize_t zread(struct es_input *in, char *dst, size_t n, struct es_error *err)
{
	for (;;) {
		ZSTD_outBuffer out = {dst, n, 0};
		ZSTD_inBuffer zi = {in->zin, in->zin_len, in->zin_pos};
		size_t ret;

		if (in->zin_pos == in->zin_len && !in->zin_eof) {
			ssize_t r = raw_read(in, in->zin, in->zin_cap);
			if (r < 0) {
				es_fail_errno(err, ES_IO, "%s: read error", in->name);
				return -1;
			}
			in->zin_len = (size_t)r;
			in->zin_pos = 0;
			if (r == 0)
				in->zin_eof = 1;
			zi.size = in->zin_len;
			zi.pos = 0;
		}
		if (in->zin_eof && in->zin_pos == in->zin_len) {
			if (in->zpending) {
				es_fail(err, ES_DATA, "%s: truncated zstd data", in->name);
				return -1;
			}
			return 0;
		}
		ret = ZSTD_decompressStream(in->zd, &out, &zi);
		in->zpending = !ZSTD_isError(ret) && ret != 0;
		in->zin_pos = zi.pos;
		if (ZSTD_isError(ret)) {
			es_fail(err, ES_DATA, "%s: corrupt zstd data: %s", in->name,
				ZSTD_getErrorName(ret));
			return -1;
		}
		if (out.pos > 0)
			return (ssize_t)out.pos;
		if (in->zin_eof && in->zin_pos == in->zin_len) {
			if (ret != 0) {
				es_fail(err, ES_DATA, "%s: truncated zstd data", in->name);
				return -1;
			}
			return 0;
		}
	}
}

/* Detect the magic on the first bytes; switch to zstd when present. */
static int check_magic(struct es_input *in, struct es_error *err)
{
	size_t got = 0;

	in->magic_checked = 1;
	while (got < 4) {
		ssize_t r = raw_read(in, in->buf + got, 4 - got);
		if (r < 0)
			return es_fail_errno(err, ES_IO, "%s: read error", in->name);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got == 4 && memcmp(in->buf, zstd_magic, 4) == 0) {
		in->compressed = 1;
		in->zd = ZSTD_createDCtx();
		in->zin_cap = ZSTD_DStreamInSize();
		in->zin = es_malloc(in->zin_cap);
		if (!in->zd || !in->zin)
			return es_fail(err, ES_IO, "%s: out of memory", in->name);
		memcpy(in->zin, zstd_magic, 4);
		in->zin_len = 4;
		return 0;
	}
	in->end = got;
	if (got < 4)
		in->eof = 1;
	return 0;
}

/* Read more into buf after end. Returns bytes added, 0 at EOF, -1 on error. */
static ssize_t fill(struct es_input *in, struct es_error *err)
{
	ssize_t r;

	if (in->start > 0 && (in->start > in->cap / 2 || in->end == in->cap)) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	if (in->end == in->cap) {
		size_t ncap = in->cap * 2;
		char *nb;
		if (in->cap > in->line_max + 1) {
			ncap = in->cap; /* cannot happen: callers stop at line_max */
		}
		nb = es_realloc(in->buf, ncap);
		if (!nb) {
			es_fail(err, ES_IO, "%s: out of memory", in->name);
			return -1;
		}
		in->buf = nb;
		in->cap = ncap;
	}
	if (in->compressed)
		r = zread(in, in->buf + in->end, in->cap - in->end, err);
	else {
		r = raw_read(in, in->buf + in->end, in->cap - in->end);
		if (r < 0)
			es_fail_errno(err, ES_IO, "%s: read error", in->name);
	}
	if (r > 0)
		in->end += (size_t)r;
	return r;
}

/* Standard input has no name in messages: "line N: ...", as elsewhere. */
static void too_long(const struct es_input *in, struct es_error *err)
{
	es_fail(err, ES_DATA, "longer than %zu bytes", in->line_max);
	es_error_at_line(err, in->name, (unsigned long long)in->lineno + 1);
}

int es_input_next(struct es_input *in, const char **line, size_t *len, struct es_error *err)
{
	size_t scanned = 0;

	if (!in->magic_checked && check_magic(in, err) != 0)
		return -err->code;
	for (;;) {
		char *base = in->buf + in->start;
		size_t avail = in->end - in->start;
		char *nl = memchr(base + scanned, '\n', avail - scanned);
		size_t n;

		if (!nl && avail > in->line_max) {
			too_long(in, err);
			return -ES_DATA;
		}
		if (nl || (in->eof && avail > 0)) {
			n = nl ? (size_t)(nl - base) : avail;
			if (n > in->line_max) {
				too_long(in, err);
				return -ES_DATA;
			}
			in->lineno++;
			in->offset = in->consumed;
			in->no_eol = !nl;
			in->start += nl ? n + 1 : n;
			in->consumed += nl ? n + 1 : n;
			in->had_cr = n > 0 && base[n - 1] == '\r';
			if (in->had_cr)
				n--;
			*line = base;
			*len = n;
			return 1;
		}
		if (in->eof)
			return 0;
		scanned = avail;
		ssize_t r = fill(in, err);
		if (r < 0)
			return -err->code;
		if (r == 0)
			in->eof = 1;
	}
}
