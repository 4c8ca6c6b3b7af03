/* libFuzzer target: the input-event parser, es_batch_add_line().
 *
 * Any bytes as one input line, with and without ES_PARSE_TS. The parser
 * must either refuse (ES_DATA with a reason, or ES_IO) or accept; what it
 * accepts must become a stored record that our own reader parses back with
 * the same seq, version, stream, type and id, whose hash checks, and which
 * jansson reads as JSON whose stream, type and data equal the input's. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chain.h"
#include "json.h"
#include "record.h"
#include "timeq.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz_batch_add_line: %s\n", #c); abort(); } } while (0)

static struct es_chain *chain;

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

static int same_member(json_t *a, json_t *b, const char *key)
{
	json_t *x = json_object_get(a, key), *y = json_object_get(b, key);

	if (!x && strcmp(key, "data") == 0)
		return json_is_object(y) && json_object_size(y) == 0;
	return x && y && json_equal(x, y);
}

static void accepted(const struct es_batch *b, const char *line, size_t len)
{
	const struct es_event *ev = &b->ev[b->n - 1];
	static const char ts[] = "2026-01-02T03:04:05.678901Z";
	char hash[ES_HASH_HEX + 1];
	struct es_buf out = ES_BUF_INIT;
	struct es_rec r;
	const char *why;
	json_t *in, *stored;

	CHECK(es_record_build(&out, chain, ES_GENESIS, b, ev, 7, 3, ts, 0, hash) == 0);
	CHECK(out.len > 1 && out.p[out.len - 1] == '\n');
	CHECK(memchr(out.p, '\n', out.len - 1) == NULL);
	CHECK(es_rec_parse(out.p, out.len - 1, ES_REC_BODY, &r, &why) == 0);
	CHECK(r.seq == 7 && r.version == 3 && !r.more);
	CHECK(r.stream_len == ev->stream_js_len &&
	      memcmp(r.stream, es_batch_str(b, ev->stream_js), r.stream_len) == 0);
	CHECK(r.type_len == ev->type_js_len &&
	      memcmp(r.type, es_batch_str(b, ev->type_js), r.type_len) == 0);
	CHECK(r.id_len == ev->id_js_len && memcmp(r.id, es_batch_str(b, ev->id_js), r.id_len) == 0);
	CHECK(memcmp(r.hash, hash, ES_HASH_HEX) == 0);
	CHECK(es_rec_check(chain, ES_GENESIS, out.p, &r) == 1);
	/* jansson agrees: the stored line is JSON, and it says what the input said */
	stored = json_loadb(out.p, out.len - 1, JSON_REJECT_DUPLICATES, NULL);
	CHECK(stored != NULL);
	if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;
		len -= 3;
	}
	in = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	CHECK(in != NULL);
	CHECK(same_member(in, stored, "stream"));
	CHECK(same_member(in, stored, "type"));
	CHECK(same_member(in, stored, "data"));
	if (json_object_get(in, "meta"))
		CHECK(same_member(in, stored, "meta"));
	if (json_object_get(in, "id"))
		CHECK(same_member(in, stored, "id"));
	json_decref(in);
	json_decref(stored);
	es_buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so that any read past the line is caught */
	char *line = malloc(size ? size : 1);
	static const int flags[] = {0, ES_PARSE_TS};

	if (!line)
		return 0;
	memcpy(line, data, size);
	for (size_t f = 0; f < 2; f++) {
		struct es_batch b;
		struct es_error err = {0, ""};
		int rc;

		es_batch_init(&b);
		rc = es_batch_add_line(&b, line, size, 1, flags[f], &err);
		if (rc == 0) {
			CHECK(b.n == 1);
			accepted(&b, line, size);
		} else {
			CHECK(rc == ES_DATA || rc == ES_IO);
			CHECK(err.code == rc && err.msg[0] != '\0');
			CHECK(b.n == 0);
		}
		es_batch_release(&b);
	}
	free(line);
	return 0;
}
