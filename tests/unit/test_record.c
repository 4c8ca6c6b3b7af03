/* Input validation, the stored line, and the envelope reader. */
#include <jansson.h>
#include <stdlib.h>

#include "json.h"
#include "record.h"
#include "unit.h"

static int add(struct es_batch *b, const char *line, int flags, struct es_error *err)
{
	return es_batch_add_line(b, line, strlen(line), 1, flags, err);
}

static int rejects(const char *line, const char *why)
{
	struct es_batch b;
	struct es_error err = {0, ""};
	int rc;

	es_batch_init(&b);
	rc = add(&b, line, 0, &err);
	es_batch_release(&b);
	if (rc != ES_DATA || !strstr(err.msg, why)) {
		fprintf(stderr, "  '%s' -> %d '%s' (want '%s')\n", line, rc, err.msg, why);
		return 0;
	}
	return 1;
}

/* es_rec_start + es_rec_parse_rest give what es_rec_parse gives: the
 * answer, the reason, every field. */
static int same_parse(const char *line, size_t len, int flags)
{
	struct es_rec a, b;
	struct es_rec_start st;
	const char *wa = NULL, *wb = NULL;
	int ra = es_rec_parse(line, len, flags, &a, &wa), rb;

	if (es_rec_start(line, len, &st) != 0)
		return 1; /* a line without its start is parsed whole */
	rb = es_rec_parse_rest(line, len, flags, &st, &b, &wb);
	if (ra != rb || (ra != 0 && strcmp(wa, wb) != 0)) {
		fprintf(stderr, "  '%.*s': %d '%s' vs %d '%s'\n", (int)len, line, ra, wa, rb, wb);
		return 0;
	}
	return ra != 0 || (a.seq == b.seq && a.stream == b.stream && a.stream_len == b.stream_len &&
			   a.version == b.version && a.type == b.type && a.ts == b.ts &&
			   a.id == b.id && a.data == b.data && a.data_len == b.data_len &&
			   a.meta == b.meta && a.more == b.more && a.hash == b.hash &&
			   a.body_len == b.body_len);
}

/* Every byte of a stored line changed to each of a few telling ones. */
static int parse_rest_differential(void)
{
	static const char *const lines[] = {
		"{\"seq\":12,\"stream\":\"order-1\",\"version\":3,\"type\":\"T\",\"ts\":"
		"\"2026-01-01T00:00:00.000000Z\",\"id\":\"x\",\"data\":{\"a\":1},\"hash\":\""
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
		"{\"seq\":7,\"stream\":\"s\\\"q\",\"version\":1,\"type\":\"T\",\"ts\":"
		"\"2026-01-01T00:00:00.000000Z\",\"id\":\"x\",\"schema\":2,\"data\":{},\"meta\":{},"
		"\"more\":true,\"hash\":\""
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
		/* a stream that would run into the tail */
		"{\"seq\":1,\"stream\":\"abc,\"hash\":\""
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
	};
	static const char subst[] = "\"\\0,x}9 \n";
	char buf[512];
	int ok = 1, n = 0;

	for (size_t k = 0; k < sizeof(lines) / sizeof(*lines); k++) {
		size_t len = strlen(lines[k]);
		ok &= same_parse(lines[k], len, 0) && same_parse(lines[k], len, ES_REC_BODY);
		for (size_t i = 0; i < len; i++)
			for (size_t j = 0; j < sizeof(subst) - 1; j++) {
				memcpy(buf, lines[k], len);
				buf[i] = subst[j];
				ok &= same_parse(buf, len, 0) && same_parse(buf, len, ES_REC_BODY);
				n++;
				/* and cut there */
				ok &= same_parse(buf, i + 1, 0);
			}
	}
	return ok && n > 1000;
}

int main(void)
{
	struct es_batch b;
	struct es_error err = {0, ""};
	struct es_buf out = ES_BUF_INIT;
	struct es_chain *c = es_chain_new();
	char hash[ES_HASH_HEX + 1], hash2[ES_HASH_HEX + 1];
	struct es_rec r;
	const char *why;

	es_json_init(NULL);
	es_batch_init(&b);
	CHECK(add(&b, "{ \"stream\" : \"order-7\", \"type\":\"ItemAdded\", \"id\":\"e1\", "
		      "\"data\": {\"price\": 19.99, \"big\": 1e300, \"s\": \"caf\\u00e9\"}, "
		      "\"meta\":{\"u\":\"ann\"}, \"schema\": 2}", 0, &err) == 0);
	CHECK(b.n == 1);
	CHECK(es_record_build(&out, c, ES_GENESIS, &b, &b.ev[0], 41, 3,
			      "2026-11-26T08:00:00.123456Z", 0, hash) == 0);
	const char *want = "{\"seq\":41,\"stream\":\"order-7\",\"version\":3,\"type\":\"ItemAdded\","
			 "\"ts\":\"2026-11-26T08:00:00.123456Z\",\"id\":\"e1\",\"schema\":2,"
			 "\"data\":{\"price\":19.99,\"big\":1e300,\"s\":\"caf\\u00e9\"},"
			 "\"meta\":{\"u\":\"ann\"},\"hash\":\"";
	CHECK(strncmp(out.p, want, strlen(want)) == 0);
	CHECK(out.len == strlen(want) + ES_HASH_HEX + 3 && out.p[out.len - 1] == '\n');
	CHECK(memcmp(out.p + strlen(want), hash, ES_HASH_HEX) == 0);
	{
		/* the rule, spelled out: sha256(prev_hex || bytes before ,"hash":) */
		struct es_buf pre = ES_BUF_INIT;
		char h[ES_HASH_HEX + 1];
		es_buf_adds(&pre, ES_GENESIS);
		es_buf_add(&pre, out.p, strlen(want) - strlen(",\"hash\":\""));
		es_sha256_hex(pre.p, pre.len, h);
		CHECK_STR(h, hash);
		es_buf_release(&pre);
	}

	/* the envelope reader takes it apart again and the hash checks */
	CHECK(es_rec_parse(out.p, out.len - 1, ES_REC_BODY, &r, &why) == 0);
	CHECK(r.seq == 41 && r.version == 3 && r.schema == 2 && !r.more);
	CHECK(r.stream_len == 9 && memcmp(r.stream, "\"order-7\"", 9) == 0);
	CHECK(r.data_len == strlen("{\"price\":19.99,\"big\":1e300,\"s\":\"caf\\u00e9\"}"));
	CHECK(es_rec_check(c, ES_GENESIS, out.p, &r) == 1);
	es_sha256_hex("x", 1, hash2);
	CHECK(es_rec_check(c, hash2, out.p, &r) == 0);

	/* the body located lazily: data's start, its end only when asked, meta
	 * only when asked; a record without data where it belongs is refused */
	{
		static const char dj[] = "{\"price\":19.99,\"big\":1e300,\"s\":\"caf\\u00e9\"}";
		struct es_rec lz;
		CHECK(es_rec_parse(out.p, out.len - 1, 0, &lz, &why) == 0 && lz.data == NULL);
		CHECK(es_rec_locate_body(out.p, &lz, 0) == 0 && lz.data == r.data && lz.meta == NULL);
		CHECK(lz.data_len == (size_t)(out.p + lz.body_len - lz.data)); /* on to the body's end */
		CHECK(es_rec_locate_body(out.p, &lz, ES_BODY_DATA_END) == 0);
		CHECK(lz.data_len == strlen(dj) && lz.meta == NULL);
		CHECK(es_rec_locate_body(out.p, &lz, ES_BODY_META) == 0 && lz.data_len == strlen(dj));
		CHECK(lz.meta == r.meta && lz.meta_len == r.meta_len && lz.meta_len == 11);
		char *bad = strdup(out.p);
		memcpy(strstr(bad, ",\"data\":{"), ",\"data\":[", 9);
		CHECK(es_rec_parse(bad, out.len - 1, 0, &lz, &why) == 0);
		CHECK(es_rec_locate_body(bad, &lz, 0) == -1);
		free(bad);
	}

	/* "more" marks a batch's records but the last; the hash covers it */
	es_buf_reset(&out);
	CHECK(es_record_build(&out, c, hash, &b, &b.ev[0], 42, 4,
			      "2026-11-26T08:00:00.123456Z", 1, hash2) == 0);
	CHECK(strstr(out.p, ",\"more\":true,\"hash\":") != NULL);
	CHECK(es_rec_parse(out.p, out.len - 1, 0, &r, &why) == 0 && r.more == 1);
	CHECK(es_rec_check(c, hash, out.p, &r) == 1);

	/* a ts out of its stored form or out of range is no record: a time
	 * search must not take it for a late or an early one */
	{
		static const char *const bad[] = {"2026-11-96T08", "2026-13-26T08", "2026-00-26T08",
						  "2026-11-26T24", "2026-11-2xT08", "2026/11/26T08"};
		char *ts = strstr(out.p, "2026-11-26T08:00:00.123456Z");
		char keep[14];
		CHECK(ts != NULL);
		memcpy(keep, ts, 13);
		for (size_t i = 0; ts && i < sizeof(bad) / sizeof(*bad); i++) {
			memcpy(ts, bad[i], 13);
			CHECK(es_rec_parse(out.p, out.len - 1, 0, &r, &why) != 0);
			CHECK_STR(why, "\"ts\" is not in the stored form");
			/* es-verify's: parsed, the ts left to it */
			CHECK(es_rec_parse(out.p, out.len - 1, ES_REC_ANY_TS, &r, &why) == 0);
			CHECK(!es_ts_stored_ok(r.ts));
		}
		if (ts) {
			memcpy(ts + 14, "59:60", 5); /* a leap second parses */
			memcpy(ts, keep, 13);
			CHECK(es_rec_parse(out.p, out.len - 1, 0, &r, &why) == 0);
			memcpy(ts + 14, "00:00", 5);
		}
	}

	/* a flipped byte is found */
	out.p[20] ^= 1;
	CHECK(es_rec_parse(out.p, out.len - 1, 0, &r, &why) != 0 || es_rec_check(c, hash, out.p, &r) == 0);

	/* canonical stream names: an escaped dash is the same stream */
	CHECK(add(&b, "{\"stream\":\"order\\u002d7\",\"type\":\"X\"}", 0, &err) == 0);
	CHECK(strcmp(es_batch_str(&b, b.ev[1].stream), "order-7") == 0);
	CHECK(b.ev[1].id_len == 36 && !b.ev[1].id_given); /* a UUIDv7 */
	CHECK(es_batch_str(&b, b.ev[1].id)[14] == '7');
	CHECK(strcmp(es_batch_str(&b, b.ev[1].data), "{}") == 0);

	/* rejections, each with its reason */
	CHECK(rejects("[1]", "must be a JSON object"));
	CHECK(rejects("{\"stream\":\"a\"}", "\"type\" is missing"));
	CHECK(rejects("{\"stream\":\"\",\"type\":\"T\"}", "\"stream\" must be a non-empty string"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"seq\":1}", "\"seq\" is assigned by the store"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"ts\":\"x\"}", "\"ts\" is assigned"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"more\":true}", "\"more\" is assigned"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"dat\":{}}", "unknown field \"dat\""));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"data\":[]}", "\"data\" must be an object"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"a\":1,\"a\":2}", "duplicate"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"data\":{\"n\":123456789012345678901}}", "too big"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"data\":{\"n\":1e999}}", "overflow"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"data\":{\"s\":\"\\ud800\"}}", "invalid"));
	CHECK(rejects("{\"stream\":\"a\xff\",\"type\":\"T\"}", "invalid"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"expect\":\"some\"}", "\"expect\" must be"));
	CHECK(rejects("{\"stream\":\"a\",\"type\":\"T\",\"schema\":0}", "\"schema\" must be"));
	char deep[300];
	strcpy(deep, "{\"stream\":\"a\",\"type\":\"T\",\"data\":");
	for (int i = 0; i < 70; i++)
		strcat(deep, "[");
	CHECK(rejects(deep, "nesting deeper than 64"));
	/* an object wider than the quick duplicate check (64 keys) goes to
	 * jansson: a duplicate past the 64th key is still found */
	char wide[1200];
	size_t wl = (size_t)snprintf(wide, sizeof(wide), "{\"stream\":\"a\",\"type\":\"T\",\"data\":{");
	for (int i = 0; i < 70; i++)
		wl += (size_t)snprintf(wide + wl, sizeof(wide) - wl, "\"k%d\":%d,", i, i);
	snprintf(wide + wl, sizeof(wide) - wl, "\"k69\":0}}");
	CHECK(rejects(wide, "duplicate object key"));
	snprintf(wide + wl, sizeof(wide) - wl, "\"k70\":0}}");
	CHECK(add(&b, wide, 0, &err) == 0);

	/* --import-ts takes a ts */
	CHECK(add(&b, "{\"stream\":\"a\",\"type\":\"T\",\"ts\":\"2026-01-01T01:00:00+01:00\"}",
		  ES_PARSE_TS, &err) == 0);
	CHECK(b.ev[b.n - 1].ts == 1767225600LL * 1000000);
	/* before 1970 is refused with the input, before any store exists */
	{
		size_t n = b.n;
		CHECK(add(&b, "{\"stream\":\"a\",\"type\":\"T\",\"ts\":\"1969-12-31T23:59:59.999999Z\"}",
			  ES_PARSE_TS, &err) == ES_DATA);
		CHECK(strstr(err.msg, "before 1970-01-01T00:00:00Z") != NULL && b.n == n);
		CHECK(add(&b, "{\"stream\":\"a\",\"type\":\"T\",\"ts\":\"1970-01-01T00:00:00Z\"}",
			  ES_PARSE_TS, &err) == 0);
	}

	/* where an event's line is: standard input has no name */
	{
		char where[512], *names[] = {(char *)"-", (char *)"in.ndjson"};
		struct es_event ev = b.ev[b.n - 1];
		CHECK_STR(es_event_where(&b, &ev, where, sizeof(where)), "line 1");
		b.files = names;
		ev.file = 1;
		ev.lineno = 42;
		CHECK_STR(es_event_where(&b, &ev, where, sizeof(where)), "in.ndjson: line 42");
		ev.file = 0;
		CHECK_STR(es_event_where(&b, &ev, where, sizeof(where)), "line 42");
		b.files = NULL;
	}

	CHECK(parse_rest_differential());

	es_batch_release(&b);
	es_buf_release(&out);
	es_chain_free(c);
	return unit_done("record");
}
