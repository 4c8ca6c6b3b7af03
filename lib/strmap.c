#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

/* FNV-1a, 8 bytes at a time, folded: names and ids are short. */
uint64_t es_strmap_hash(const char *s, size_t n)
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
	i = find(m, k, n, es_strmap_hash(k, n));
	return m->slot[i].used ? &m->slot[i].val : NULL;
}

/* Keep at most half the slots used. */
static int grow(struct es_strmap *m)
{
	size_t ns = m->nslots ? m->nslots * 2 : 64;
	struct es_strmap_slot *sl;

	if (2 * (m->n + 1) <= m->nslots)
		return 0;
	sl = es_zalloc(ns * sizeof(*sl));
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
	return es_strmap_put_h(m, k, n, es_strmap_hash(k, n), added);
}

uint64_t *es_strmap_put_h(struct es_strmap *m, const char *k, size_t n, uint64_t h, int *added)
{
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

/* ---- es_hashset: 0 marks an empty slot, so a hash of 0 is stored as 1 */

void es_hashset_release(struct es_hashset *s)
{
	free(s->h);
	memset(s, 0, sizeof(*s));
}

void es_hashset_clear(struct es_hashset *s)
{
	if (s->h)
		memset(s->h, 0, s->nslots * sizeof(*s->h));
	s->n = 0;
}

int es_hashset_has(const struct es_hashset *s, uint64_t h)
{
	size_t mask = s->nslots - 1;

	if (!s->nslots)
		return 0;
	h = h ? h : 1;
	for (size_t i = h & mask; s->h[i]; i = (i + 1) & mask)
		if (s->h[i] == h)
			return 1;
	return 0;
}

static void hs_put(uint64_t *slots, size_t nslots, uint64_t h)
{
	size_t i;

	for (i = h & (nslots - 1); slots[i] && slots[i] != h; i = (i + 1) & (nslots - 1))
		;
	slots[i] = h;
}

int es_hashset_add(struct es_hashset *s, uint64_t h)
{
	h = h ? h : 1;
	if (2 * (s->n + 1) > s->nslots) {
		size_t ns = s->nslots ? 2 * s->nslots : 1024;
		uint64_t *nh = es_zalloc(ns * sizeof(*nh));
		if (!nh)
			return -1;
		for (size_t i = 0; i < s->nslots; i++)
			if (s->h[i])
				hs_put(nh, ns, s->h[i]);
		free(s->h);
		s->h = nh;
		s->nslots = ns;
	}
	if (es_hashset_has(s, h))
		return 0;
	hs_put(s->h, s->nslots, h);
	s->n++;
	return 0;
}
