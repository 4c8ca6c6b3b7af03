/* The line reader: plain and zstd, CRLF, no final newline, the length limit. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zstd.h>

#include "input.h"
#include "unit.h"

static char path[64];

static void put(const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	fwrite(data, 1, n, f);
	fclose(f);
}

static int lines(size_t max, char out[][64], int *nout, struct es_input *keep)
{
	struct es_input in;
	struct es_error err = {0, ""};
	const char *l;
	size_t len;
	int r;

	*nout = 0;
	if (es_input_open(&in, path, &err))
		return -1;
	if (max)
		in.line_max = max;
	while ((r = es_input_next(&in, &l, &len, &err)) == 1)
		snprintf(out[(*nout)++], 64, "%.*s", (int)len, l);
	*keep = in;
	es_input_close(&in);
	return r;
}

int main(void)
{
	char out[16][64];
	struct es_input in;
	int n;
	const char text[] = "one\r\ntwo\n\nthree";

	snprintf(path, sizeof(path), "/tmp/es-unit-input.%d", (int)getpid());
	put(text, sizeof(text) - 1);
	CHECK(lines(0, out, &n, &in) == 0);
	CHECK(n == 4);
	CHECK_STR(out[0], "one");
	CHECK_STR(out[1], "two");
	CHECK_STR(out[2], "");
	CHECK_STR(out[3], "three");
	CHECK(in.no_eol == 1 && in.lineno == 4 && in.compressed == 0);

	/* the same through zstd, detected by its magic */
	char z[256];
	size_t zn = ZSTD_compress(z, sizeof(z), text, sizeof(text) - 1, 3);
	put(z, zn);
	CHECK(lines(0, out, &n, &in) == 0);
	CHECK(n == 4 && in.compressed == 1);
	CHECK_STR(out[3], "three");

	/* a damaged frame is an error, not silence */
	z[zn / 2] ^= 0x55;
	z[zn - 1] ^= 0x55;
	put(z, zn - 2);
	CHECK(lines(0, out, &n, &in) < 0);

	/* the line limit names the line */
	put("short\nthis line is too long\nok\n", 30);
	CHECK(lines(10, out, &n, &in) == -ES_DATA);
	CHECK(n == 1);

	/* an empty file, a file of one newline */
	put("", 0);
	CHECK(lines(0, out, &n, &in) == 0 && n == 0);
	put("\n", 1);
	CHECK(lines(0, out, &n, &in) == 0 && n == 1);
	unlink(path);
	return unit_done("input");
}
