/* record.h: input events and stored records.
 *
 * An input event is one NDJSON object with "stream", "type" and optionally
 * "id", "schema", "expect", "data", "meta" (and "ts" when importing). It is
 * validated whole by jansson (duplicate keys, UTF-8, number ranges) and its
 * data and meta are kept as the writer's bytes minus white space, so
 * numbers are stored exactly as written.
 *
 * A stored record is one line with the keys in this order:
 *   {"seq":N,"stream":S,"version":N,"type":S,"ts":"...Z","id":S,
 *    ["schema":N,]"data":{...}[,"meta":{...}][,"more":true],"hash":"<64 hex>"}
 * "more":true marks every record of a batch but its last, so the log itself
 * shows where each batch ends (recovery cuts a batch whose end is missing).
 */
#ifndef ES_RECORD_H
#define ES_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "chain.h"
#include "error.h"

#define ES_NAME_MAX 200 /* bytes in a stream name, type or id (LMDB keys stay < 511) */

enum es_expect {
	ES_EXPECT_UNSET = 0, /* nothing given: same as any */
	ES_EXPECT_ANY,
	ES_EXPECT_NONE,      /* the stream must not exist */
	ES_EXPECT_EXISTS,    /* the stream must exist */
	ES_EXPECT_EXACT,     /* the stream's version must be exactly N */
};

/* One validated input event. Offsets point into the owning batch's text. */
struct es_event {
	uint64_t lineno;
	int file;                      /* of the line: index in es_batch.files */
	size_t stream, stream_len;     /* decoded UTF-8 */
	size_t stream_js, stream_js_len; /* canonical JSON literal */
	size_t type_js, type_js_len;
	size_t id, id_len;             /* decoded (generated when absent) */
	int id_given;                  /* the writer gave the id */
	size_t id_js, id_js_len;
	size_t data, data_len;         /* minified JSON */
	size_t meta, meta_len;         /* meta_len 0 when absent */
	int64_t schema;                /* 0 when absent */
	int64_t ts;                    /* with ES_PARSE_TS; else 0 */
	enum es_expect expect;
	uint64_t expect_version;
};

/* A batch of input events sharing one text arena. */
struct es_batch {
	struct es_buf text;
	struct es_event *ev;
	size_t n, cap;
	char *const *files;  /* input names by es_event.file ("-": standard
			      * input), for messages; NULL: no names */
};
/* Where ev's line is, for messages (es_line_where): "FILE: line N" or
 * "line N", in buf of n bytes (ES_WHERE_MAX). Returns buf. */
char *es_event_where(const struct es_batch *b, const struct es_event *ev, char *buf, size_t n);

#define ES_PARSE_TS 1 /* accept an input "ts" (imports) */

void es_batch_init(struct es_batch *b);
void es_batch_release(struct es_batch *b);
static inline const char *es_batch_str(const struct es_batch *b, size_t off)
{
	return b->text.p + off;
}
/* Move src's events to the end of dst (src is left empty). 0 or -1. */
int es_batch_move(struct es_batch *dst, struct es_batch *src);
/* Validate one input line and add it to the batch. ES_DATA with a reason
 * (without the line number) in err for bad input, ES_IO for no memory. */
int es_batch_add_line(struct es_batch *b, const char *line, size_t len,
		      uint64_t lineno, int flags, struct es_error *err);

/* A new UUIDv7 (RFC 9562) for time us: 36 chars and a NUL. 0 or -1. */
int es_uuid7(int64_t us, char out[37]);

/* Append the stored line for ev (seq, version, ts, more assigned by the
 * caller) to out, chained on prev; the new hash is written to hash_out.
 * Returns 0 or -1 (no memory / digest failure). */
int es_record_build(struct es_buf *out, struct es_chain *chain,
		    const char prev[ES_HASH_HEX], const struct es_batch *b,
		    const struct es_event *ev, uint64_t seq, uint64_t version,
		    const char ts[], int more, char hash_out[ES_HASH_HEX + 1]);

/* The envelope of a stored line; spans point into the line. */
struct es_rec {
	uint64_t seq, version;
	const char *stream; size_t stream_len; /* JSON literal, with quotes */
	const char *type; size_t type_len;     /* JSON literal, with quotes */
	const char *ts;                         /* ES_TS_LEN bytes */
	const char *id; size_t id_len;         /* JSON literal, with quotes */
	int64_t schema;                         /* 0 when absent */
	const char *data; size_t data_len;     /* with ES_REC_BODY */
	const char *meta; size_t meta_len;     /* with ES_REC_BODY; 0 if absent */
	int more;
	const char *hash;                       /* 64 hex */
	size_t body_len;                        /* bytes covered by the hash */
};

#define ES_REC_BODY 1 /* also locate data and meta (costs a scan of data) */
/* Leave the check that "hash" is 64 lowercase hex digits to the caller:
 * for one that compares it with a computed hash (es_rec_check), a match
 * proves it, so only a mismatch needs es_is_hash_hex. */
#define ES_REC_HEX_LATER 2
/* Leave the check of "ts" beyond its length and final 'Z' to the caller
 * (es-verify, which reports a bad one beside its other findings, and goes
 * on tracking the record's stream); without it, a ts that is not of the
 * stored form with its fields in range (es_ts_stored_ok) is refused. */
#define ES_REC_ANY_TS 4

/* Is t (ES_TS_LEN bytes) of the stored form, YYYY-MM-DDTHH:MM:SS.ffffffZ,
 * its fields in range? (A day past its month's end is not checked.) */
int es_ts_stored_ok(const char *t);

/* Parse a stored line (without its '\n'). 0, or -1 with a reason in *why. */
int es_rec_parse(const char *line, size_t len, int flags, struct es_rec *r,
		 const char **why);
/* A stored line's fixed start, {"seq":N,"stream":"..." : enough to route
 * a line (foldpar.c) before parsing the rest. 0, or -1 when the line does
 * not start so (es_rec_parse then says why). */
struct es_rec_start {
	uint64_t seq;
	const char *stream;     /* the literal, quotes included */
	size_t stream_len;
};
int es_rec_start(const char *line, size_t len, struct es_rec_start *st);
/* es_rec_parse of a line whose start es_rec_start read: the same result,
 * without reading the start again. */
int es_rec_parse_rest(const char *line, size_t len, int flags, const struct es_rec_start *st,
		      struct es_rec *r, const char **why);
/* After a parse without ES_REC_BODY, locate the body only as far as a
 * reader needs it: data's start always, and with ES_BODY_DATA_END its end
 * (else data's span runs on to the end of the body: a path search stops at
 * data's closing brace anyway, and finding it costs a scan), with
 * ES_BODY_META meta too. The body is not checked further. 0 or -1 (no
 * "data" object where it belongs). */
#define ES_BODY_DATA_END 1
#define ES_BODY_META 2
int es_rec_locate_body(const char *line, struct es_rec *r, int need);
/* Check r's hash against prev: 1 when it matches. */
int es_rec_check(struct es_chain *chain, const char prev[ES_HASH_HEX],
		 const char *line, const struct es_rec *r);

#endif
