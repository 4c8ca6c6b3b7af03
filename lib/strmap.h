/* strmap.h: a map from byte strings to numbers, for the writer's per-batch
 * and per-run bookkeeping (stream -> version, stream+id -> version).
 *
 * Open addressing with the keys in one arena: a million ids cost a few
 * dozen bytes each and a lookup is one probe that usually hits, where a
 * jansson object costs an allocation per entry and a chained bucket.
 */
#ifndef ES_STRMAP_H
#define ES_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct es_strmap_slot {
	uint64_t h, val;
	size_t key;        /* offset in the arena */
	uint32_t klen, used;
};

struct es_strmap {
	struct es_strmap_slot *slot;
	size_t nslots, n;
	struct es_buf keys;
};
#define ES_STRMAP_INIT {NULL, 0, 0, ES_BUF_INIT}

void es_strmap_release(struct es_strmap *m);
void es_strmap_clear(struct es_strmap *m);
/* Start the slot where a key of hash h would be on its way to the cache. */
static inline void es_strmap_prefetch(const struct es_strmap *m, uint64_t h)
{
	if (m->nslots)
		__builtin_prefetch(&m->slot[h & (m->nslots - 1)]);
}
/* The value of key k, or NULL when absent. */
uint64_t *es_strmap_get(const struct es_strmap *m, const char *k, size_t n);
/* The value of key k, added (as 0, *added = 1) when absent; NULL when out
 * of memory. The pointer is good until the next es_strmap_put. */
uint64_t *es_strmap_put(struct es_strmap *m, const char *k, size_t n, int *added);
/* The same, for a caller that has h = es_strmap_hash(k, n) already. */
uint64_t *es_strmap_put_h(struct es_strmap *m, const char *k, size_t n, uint64_t h, int *added);
/* Walk the entries: start with *i = 0; 1 with an entry, 0 at the end. */
int es_strmap_next(const struct es_strmap *m, size_t *i, const char **k, size_t *n,
		   uint64_t *val);

/* A set of 64-bit hashes of byte strings: membership may be a false
 * positive (two strings, one hash), never a false negative; for a caller
 * that has a slower exact answer to ask on a hit. 8 bytes an entry. */
struct es_hashset {
	uint64_t *h;
	size_t nslots, n;
};
#define ES_HASHSET_INIT {NULL, 0, 0}

uint64_t es_strmap_hash(const char *k, size_t n);
void es_hashset_release(struct es_hashset *s);
void es_hashset_clear(struct es_hashset *s);
int es_hashset_has(const struct es_hashset *s, uint64_t h);
/* 0, or -1 when out of memory. */
int es_hashset_add(struct es_hashset *s, uint64_t h);

#endif
