/* json.h: helpers over jansson, and a small scanner for text jansson must not
 * re-serialize.
 *
 * Numbers in events are stored exactly as written, so stored `data` and
 * `meta` are the writer's own bytes with insignificant white space removed
 * (es_json_minify), never jansson's re-serialization. The scanner functions
 * assume text that jansson has already validated, or our own stored lines.
 */
#ifndef ES_JSON_H
#define ES_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

/* Nesting deeper than this is rejected in input events. */
#define ES_JSON_MAX_DEPTH 64

/* jansson flags used to load every input line. */
#define ES_JSON_LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK * 0)
/* jansson flags for what we print through jansson: compact, keys in
 * insertion order, reals with 15 significant digits so 0.1+0.2 prints as
 * 0.3. States are printed by es_json_dump_exact_add instead, which keeps
 * every real exact. */
#define ES_JSON_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

/* Route jansson's allocations through es_malloc (fault hooks, counted
 * failures). A failed one is served from a spare block (the failure still
 * counted); with the spare gone, oom is called (it must not return: the
 * programs' ends the process, exit 4) or, when NULL, jansson gets NULL. */
void es_json_init(void (*oom)(void));

/* Deepest nesting of arrays/objects in s (strings skipped). */
int es_json_depth(const char *s, size_t len);
/* Index just past the JSON value that starts at s[i] (leading white space
 * allowed), or (size_t)-1 when the text ends first. */
size_t es_json_skip(const char *s, size_t len, size_t i);
/* Index past a JSON string starting at s[i] == '"', or (size_t)-1. */
size_t es_json_skip_string(const char *s, size_t len, size_t i);
/* Append s without insignificant white space. 0 or -1 (ENOMEM). */
int es_json_minify(struct es_buf *out, const char *s, size_t len);
/* Append the JSON encoding of a UTF-8 string (with quotes), as jansson
 * encodes it. 0 or -1. */
int es_json_add_string(struct es_buf *out, const char *s, size_t len);
/* Decode the JSON string literal s[0..len) (with quotes) into out (no
 * quotes, NUL-terminated). 0, -1 on a malformed literal, -2 when out of
 * memory (which says nothing about the literal). */
int es_json_decode_string(struct es_buf *out, const char *s, size_t len);
/* Whether the string literal lit[0..len) (with quotes) is text[0..tlen),
 * and whether two literals name the same text: compared as they are
 * unescaped, with no allocation (so no failure to mistake for "not the
 * same"). A malformed literal equals nothing. */
int es_json_lit_is(const char *lit, size_t len, const char *text, size_t tlen);
int es_json_lit_eq(const char *a, size_t alen, const char *b, size_t blen);
/* Order two string literals by their unescaped texts, as unsigned bytes (a
 * prefix first): the order of the names in the stream index. -1, 0 or 1;
 * a malformed literal is ordered by its bytes as they are. */
int es_json_lit_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* A compiled path: "data.items.0.sku" -> ["data","items",0,"sku"]. A numeric
 * segment indexes an array (and is a key in an object). */
struct es_path {
	size_t n;
	char **seg;
	char *text;  /* the path as written, for messages */
	char *buf;   /* the segments' storage */
};
/* 0, or -1 for an empty path or an empty segment. */
int es_path_compile(struct es_path *p, const char *text);
void es_path_release(struct es_path *p);
/* The value at p under root, or NULL. Borrowed reference. */
json_t *es_path_get(json_t *root, const struct es_path *p);
/* Set value (stolen) at p under root, creating objects on the way. 0 or -1
 * when a step is not an object (or an array index out of range). */
int es_path_set(json_t *root, const struct es_path *p, json_t *value);
/* Remove the value at p; 0 whether or not it was there, -1 when a step
 * crosses a non-container. */
int es_path_unset(json_t *root, const struct es_path *p);

/* RFC 7386: apply patch to *target (which may be replaced). 0 or -1. */
int es_merge_patch(json_t **target, json_t *patch);
/* RFC 7386 diff: a patch p with merge(a, p) == b. New reference or NULL. */
json_t *es_merge_diff(json_t *a, json_t *b);

/* json_dumps(), but NULL when one of jansson's allocations failed meanwhile
 * (jansson 2.14 then may return malformed text, a key left out, as a
 * success). Use it for any text that is hashed or stored. */
char *es_json_dumps(const json_t *v, size_t flags);
/* json_loadb and json_load_file, but a failed allocation during the parse
 * (jansson reports it as bad JSON) gives NULL with *oom set, never a value
 * or a parse error. */
json_t *es_json_loadb(const char *s, size_t n, size_t flags, json_error_t *e, int *oom);
json_t *es_json_load_file(const char *path, size_t flags, json_error_t *e, int *oom);
/* Before es_json_load_file of a file the user names (a spec, a reducer):
 * 0 when it opens and is not a directory, else ES_IO "cannot open 'PATH':
 * reason" (jansson would say "unable to open PATH", or read a directory as
 * empty text). */
int es_json_file_ok(const char *path, struct es_error *err);

/* Append json_dumps(v, ES_JSON_DUMP_FLAGS | JSON_ENCODE_ANY). 0 or -1. */
int es_json_dump_add(struct es_buf *out, const json_t *v);
/* The same, but each real in the fewest of 15, 16 or 17 significant digits
 * that read back as the very same double: for states, which must be valid
 * JSON (15 digits can round past DBL_MAX) and keep numbers that no
 * arithmetic touched as they came. 0 or -1. */
int es_json_dump_exact_add(struct es_buf *out, const json_t *v);
/* The same with every object's keys in byte order: the one spelling of a
 * value, for es-project's grouping keys, where two values must never share
 * a text (15 digits gave 1.0 and 1.0000000000000002 one key). 0 or -1. */
int es_json_dump_canon_add(struct es_buf *out, const json_t *v);

/* An object's members in byte order of their keys (keys may hold NUL),
 * as JSON_SORT_KEYS writes them: n of them, in a malloc'd array (borrowed
 * keys and values), or NULL when there is no memory. */
struct es_json_member {
	const char *key;
	size_t len;
	json_t *v;
};
struct es_json_member *es_json_sorted_members(const json_t *obj, size_t *n);



/* Find the value at path segments p->seg[from..] inside the JSON text s (an
 * object or array), without building a DOM. 0 and the raw span, or -1 when
 * absent. */
int es_json_find(const char *s, size_t len, const struct es_path *p, size_t from,
		 const char **vs, size_t *vlen);
/* A json_t for one raw JSON value (scalars without jansson's parser). */
json_t *es_json_from_raw(const char *s, size_t len);

/* Word-at-a-time byte tests for the scanners (8 bytes of w, loaded with
 * memcpy): each sets the high bit of the bytes that match. Only the lowest
 * flagged byte is sure to be a real match (a borrow runs upward from it),
 * which is all es_swar_first needs: the index of the first match on a
 * little-endian machine, 0 elsewhere (the caller then steps bytewise). */
#define ES_SWAR_ONES 0x0101010101010101ull
#define ES_SWAR_HIGHS 0x8080808080808080ull
static inline uint64_t es_swar_eq(uint64_t w, unsigned char c)
{
	uint64_t x = w ^ (ES_SWAR_ONES * c);
	return (x - ES_SWAR_ONES) & ~x & ES_SWAR_HIGHS;
}
static inline uint64_t es_swar_below(uint64_t w, unsigned char n) /* n <= 128 */
{
	return (w - ES_SWAR_ONES * n) & ~w & ES_SWAR_HIGHS;
}
static inline size_t es_swar_first(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (size_t)__builtin_ctzll(m) / 8;
#else
	(void)m;
	return 0;
#endif
}

#endif
