/* libFuzzer target: the stored-record reader, es_rec_parse().
 *
 * Any bytes as one stored line, with and without ES_REC_BODY. The reader
 * must refuse with a reason or accept; every span it hands back must lie
 * inside the line (each byte is read, so ASan sees a stray one), the hash
 * span must be 64 lowercase hex digits ending the body, and the spans must
 * survive what recovery does with them: the chain check and decoding the
 * stream and id strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chain.h"
#include "json.h"
#include "record.h"
#include "timeq.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_rec_parse: %s\n", #c); abort(); } } while (0)

static struct es_chain *chain;
static volatile unsigned sink;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	es_json_init(NULL);
	chain = es_chain_new();
	return 0;
}

static void inside(const char *line, size_t size, const char *p, size_t n)
{
	CHECK(p >= line && n <= size && p + n <= line + size);
	for (size_t i = 0; i < n; i++)
		sink += (unsigned char)p[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1);
	static const int flags[] = {0, ES_REC_BODY};

	if (!line)
		return 0;
	memcpy(line, data, size);
	for (size_t f = 0; f < 2; f++) {
		struct es_rec r;
		struct es_buf s = ES_BUF_INIT;
		const char *why = NULL;

		if (es_rec_parse(line, size, flags[f], &r, &why) != 0) {
			CHECK(why != NULL && why[0] != '\0');
			continue;
		}
		inside(line, size, r.hash, ES_HASH_HEX);
		CHECK(r.body_len < size && r.hash > line + r.body_len);
		for (size_t i = 0; i < ES_HASH_HEX; i++)
			CHECK((r.hash[i] >= '0' && r.hash[i] <= '9') || (r.hash[i] >= 'a' && r.hash[i] <= 'f'));
		inside(line, size, r.stream, r.stream_len);
		inside(line, size, r.type, r.type_len);
		inside(line, size, r.id, r.id_len);
		inside(line, size, r.ts, ES_TS_LEN);
		CHECK(r.seq > 0 && r.version > 0);
		if (flags[f] & ES_REC_BODY) {
			inside(line, size, r.data, r.data_len);
			CHECK(r.data_len >= 2 && r.data[0] == '{');
			if (r.meta)
				inside(line, size, r.meta, r.meta_len);
		}
		sink += (unsigned)es_rec_check(chain, ES_GENESIS, line, &r);
		if (es_json_decode_string(&s, r.stream, r.stream_len) == 0)
			sink += (unsigned)s.len;
		es_buf_reset(&s);
		if (es_json_decode_string(&s, r.id, r.id_len) == 0)
			sink += (unsigned)s.len;
		es_buf_release(&s);
	}
	free(line);
	return 0;
}
