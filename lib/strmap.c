#include "strmap.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 8 bytes at a time, folded: names and ids are short. */
static uint64_t hash_key(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 1099511628211ull;
		h ^= h >> 32;
	}
	for (; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	h ^= h >> 29;
	return h * 0x9e3779b97f4a7c15ull;
}

void es_strmap_release(struct es_strmap *m)
{
	free(m->slot);
	es_buf_release(&m->keys);
	memset(m, 0, sizeof(*m));
}

void es_strmap_clear(struct es_strmap *m)
{
	if (m->slot)
		memset(m->slot, 0, m->nslots * sizeof(*m->slot));
	m->n = 0;
	es_buf_reset(&m->keys);
}

static size_t find(const struct es_strmap *m, const char *k, size_t n, uint64_t h)
{
	size_t mask = m->nslots - 1, i;

	for (i = h & mask; m->slot[i].used; i = (i + 1) & mask) {
		const struct es_strmap_slot *s = &m->slot[i];
		if (s->h == h && s->klen == n && memcmp(m->keys.p + s->key, k, n) == 0)
			break;
	}
	return i;
}

uint64_t *es_strmap_get(const struct es_strmap *m, const char *k, size_t n)
{
	size_t i;

	if (!m->nslots)
		return NULL;
	i = find(m, k, n, hash_key(k, n));
	return m->slot[i].used ? &m->slot[i].val : NULL;
}

/* Keep at most half the slots used. */
static int grow(struct es_strmap *m)
{
	size_t ns = m->nslots ? m->nslots * 2 : 64;
	struct es_strmap_slot *sl;

	if (2 * (m->n + 1) <= m->nslots)
		return 0;
	sl = calloc(ns, sizeof(*sl));
	if (!sl)
		return -1;
	for (size_t i = 0; i < m->nslots; i++) {
		size_t j;
		if (!m->slot[i].used)
			continue;
		for (j = m->slot[i].h & (ns - 1); sl[j].used; j = (j + 1) & (ns - 1))
			;
		sl[j] = m->slot[i];
	}
	free(m->slot);
	m->slot = sl;
	m->nslots = ns;
	return 0;
}

uint64_t *es_strmap_put(struct es_strmap *m, const char *k, size_t n, int *added)
{
	uint64_t h = hash_key(k, n);
	size_t i;

	*added = 0;
	if (n > UINT32_MAX || grow(m))
		return NULL;
	i = find(m, k, n, h);
	if (!m->slot[i].used) {
		size_t off = m->keys.len;
		if (es_buf_add(&m->keys, k, n))
			return NULL;
		m->slot[i].h = h;
		m->slot[i].key = off;
		m->slot[i].klen = (uint32_t)n;
		m->slot[i].used = 1;
		m->slot[i].val = 0;
		m->n++;
		*added = 1;
	}
	return &m->slot[i].val;
}

int es_strmap_next(const struct es_strmap *m, size_t *i, const char **k, size_t *n,
		   uint64_t *val)
{
	for (; *i < m->nslots; (*i)++) {
		const struct es_strmap_slot *s = &m->slot[*i];
		if (!s->used)
			continue;
		*k = m->keys.p + s->key;
		*n = s->klen;
		*val = s->val;
		(*i)++;
		return 1;
	}
	return 0;
}
