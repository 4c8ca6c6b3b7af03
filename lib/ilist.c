#include "ilist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void es_ilist_vadd(struct es_ilist *l, const char *file, int has_off, uint64_t off,
		       uint64_t seq, const char *fmt, va_list ap)
{
	char msg[1024];
	struct es_verify_issue *is;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 8;
		struct es_verify_issue *nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv) {
			l->oom = 1;
			return;
		}
		l->v = nv;
		l->cap = ncap;
	}
	is = &l->v[l->n];
	is->file = file ? strdup(file) : NULL;
	is->reason = strdup(msg);
	if ((file && !is->file) || !is->reason) {
		free(is->file);
		free(is->reason);
		l->oom = 1;
		return;
	}
	is->offset = off;
	is->has_offset = has_off;
	is->seq = seq;
	l->n++;
}

void es_ilist_add(struct es_ilist *l, const char *file, int has_off, uint64_t off, uint64_t seq,
	  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	es_ilist_vadd(l, file, has_off, off, seq, fmt, ap);
	va_end(ap);
}

int es_ilist_join(struct es_ilist *l, const char *file, uint64_t off, uint64_t seq,
		  const char *msg)
{
	for (size_t i = 0; i < l->n; i++) {
		struct es_verify_issue *is = &l->v[i];
		if (!is->has_offset || is->offset != off || is->seq != seq || !is->file || !file ||
		    strcmp(is->file, file) != 0)
			continue;
		size_t a = strlen(is->reason), b = strlen(msg);
		char *nr = realloc(is->reason, a + 2 + b + 1);
		if (!nr) {
			l->oom = 1;
			return 1;
		}
		memcpy(nr + a, "; ", 2);
		memcpy(nr + a + 2, msg, b + 1);
		is->reason = nr;
		return 1;
	}
	return 0;
}

void es_ilist_release(struct es_ilist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].file);
		free(l->v[i].reason);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void es_ilist_move(struct es_ilist *dst, struct es_ilist *src)
{
	if (dst->n + src->n > dst->cap) {
		size_t ncap = dst->n + src->n;
		struct es_verify_issue *nv = realloc(dst->v, ncap * sizeof(*nv));
		if (!nv) {
			dst->oom = 1;
			es_ilist_release(src);
			return;
		}
		dst->v = nv;
		dst->cap = ncap;
	}
	if (src->n)
		memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
	dst->n += src->n;
	dst->oom |= src->oom;
	free(src->v);
	memset(src, 0, sizeof(*src));
}

void es_ilist_sort(struct es_ilist *l)
{
	for (size_t i = 1; i < l->n; i++) {
		struct es_verify_issue t = l->v[i];
		size_t j = i;
		while (j > 0 && l->v[j - 1].offset > t.offset) {
			l->v[j] = l->v[j - 1];
			j--;
		}
		l->v[j] = t;
	}
}
