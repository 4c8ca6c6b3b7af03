/* jsonv.h: validate JSON text without building a document.
 *
 * es_json_validate accepts exactly what jansson's json_loadb accepts with
 * JSON_REJECT_DUPLICATES (RFC 8259 grammar, strict UTF-8, no lone
 * surrogates, no \u0000, integers within 64 bits, no real overflow,
 * duplicate keys compared after unescaping), plus a nesting limit, and
 * hands back the members of the top-level object as raw spans. It is the
 * fast path of es-append's input validation; tests/unit/test_jsonv.c checks
 * it against jansson on generated and mutated inputs.
 */
#ifndef ES_JSONV_H
#define ES_JSONV_H

#include <stddef.h>

struct es_jv_member {
	const char *key; size_t klen;   /* the key's literal, with quotes */
	const char *val; size_t vlen;   /* the value's text */
};

struct es_jv {
	struct es_jv_member *top;       /* caller's array for top-level members */
	size_t ntop, maxtop;            /* members found; room in top */
	int max_depth;
	const char *why;                /* on failure: the reason */
	size_t at;                      /* on failure: byte offset */
	int too_many;                   /* an object too wide for the quick
					 * duplicate check: ask jansson */
};

/* 0 when s is one valid JSON object (with white space around it), -1 with
 * why/at set otherwise. */
int es_json_validate(struct es_jv *v, const char *s, size_t len);

#endif
