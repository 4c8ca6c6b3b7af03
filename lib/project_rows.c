/* project_rows.c: the keys of a partition (an open-addressing table of
 * rows), and the model's rows out (sorted by key) and back in. */
#include "project.h"

#include <stdlib.h>
#include <string.h>

uint64_t es_pkey_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

void es_prow_free(const struct es_pspec *sp, struct es_prow *row)
{
	if (!row)
		return;
	for (size_t i = 0; row->w && i < sp->nwin; i++)
		free(row->w[i].ring);
	free(row->w);
	free(row->row);
	json_decref(row->state);
	free(row);
}

struct es_prow *es_prow_new(const char *key, size_t klen, uint64_t hash, json_t *state)
{
	struct es_prow *row = malloc(sizeof(*row) + klen + 1);

	if (!row)
		return NULL;
	row->hash = hash;
	row->state = state;
	row->w = NULL;
	row->row = NULL;
	row->rlen = 0;
	row->dirty = 1;
	row->klen = klen;
	memcpy(row->key, key, klen);
	row->key[klen] = '\0';
	return row;
}

struct es_prow **es_ppart_slot(struct es_ppart *pt, const char *key, size_t klen, uint64_t hash)
{
	size_t mask = pt->cap - 1, i = (size_t)hash & mask;

	for (;; i = (i + 1) & mask) {
		struct es_prow *row = pt->slot[i];
		if (!row || (row->hash == hash && row->klen == klen && memcmp(row->key, key, klen) == 0))
			return &pt->slot[i];
	}
}

static int grow(struct es_ppart *pt)
{
	size_t ncap = pt->cap ? pt->cap * 2 : 1024;
	struct es_prow **old = pt->slot, **ns = calloc(ncap, sizeof(*ns));
	size_t ocap = pt->cap;

	if (!ns)
		return -1;
	pt->slot = ns;
	pt->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i])
			*es_ppart_slot(pt, old[i]->key, old[i]->klen, old[i]->hash) = old[i];
	free(old);
	return 0;
}

/* Add a row (its key must not be there yet). 0 or -1. */
int es_ppart_insert(struct es_ppart *pt, struct es_prow *row)
{
	if ((pt->n + 1) * 2 > pt->cap && grow(pt))
		return -1;
	*es_ppart_slot(pt, row->key, row->klen, row->hash) = row;
	pt->n++;
	return 0;
}

struct es_prow *es_ppart_lookup(struct es_ppart *pt, const char *key, size_t klen, uint64_t hash)
{
	return pt->cap ? *es_ppart_slot(pt, key, klen, hash) : NULL;
}

static int row_cmp(const void *a, const void *b)
{
	const struct es_prow *x = *(const struct es_prow *const *)a;
	const struct es_prow *y = *(const struct es_prow *const *)b;
	int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);

	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static struct es_prow **sorted_rows(struct es_proj *p, size_t *n)
{
	struct es_prow **v = malloc((es_proj_keys(p) + 1) * sizeof(*v));

	*n = 0;
	if (!v)
		return NULL;
	for (int i = 0; i < p->jobs; i++)
		for (size_t s = 0; s < p->part[i].cap; s++)
			if (p->part[i].slot[s])
				v[(*n)++] = p->part[i].slot[s];
	if (*n > 1)
		qsort(v, *n, sizeof(*v), row_cmp);
	return v;
}

static int window_row(const struct es_pspec *sp, const struct es_prow *row, struct es_buf *b)
{
	if (es_buf_adds(b, "{\"key\":") || es_buf_add(b, row->key, row->klen) ||
	    es_buf_adds(b, ",\"w\":["))
		return -1;
	for (size_t i = 0; i < sp->nwin; i++) {
		const struct es_pwstate *ws = &row->w[i];
		if (i && es_buf_addc(b, ','))
			return -1;
		if (!ws->used) {
			if (es_buf_adds(b, "null"))
				return -1;
		} else if (sp->win[i].kind == ES_PWIN_TUMBLING) {
			if (es_buf_addf(b, "{\"start\":%lld,\"count\":%llu}", (long long)ws->start,
					(unsigned long long)ws->count))
				return -1;
		} else {
			if (es_buf_adds(b, "{\"ts\":["))
				return -1;
			for (uint32_t k = 0; k < ws->n; k++)
				if (es_buf_addf(b, "%s%lld", k ? "," : "",
						(long long)ws->ring[(ws->head + k) % ws->cap]))
					return -1;
			if (es_buf_adds(b, "]}"))
				return -1;
		}
	}
	return es_buf_adds(b, "]}\n");
}

static int model_row(struct es_prow *row, struct es_buf *b)
{
	size_t at = b->len;

	if (!row->dirty)
		return es_buf_add(b, row->row, row->rlen);
	if (es_buf_adds(b, "{\"key\":") || es_buf_add(b, row->key, row->klen) ||
	    es_buf_adds(b, ",\"state\":") || es_json_dump_exact_add(b, row->state) ||
	    es_buf_adds(b, "}\n"))
		return -1;
	free(row->row);
	row->rlen = b->len - at;
	if ((row->row = malloc(row->rlen)))
		memcpy(row->row, b->p + at, row->rlen);
	row->dirty = row->row == NULL;
	return 0;
}

int es_proj_write(struct es_proj *p, int what, int (*out)(void *arg, const char *s, size_t n),
		  void *arg, struct es_error *err)
{
	struct es_buf b = ES_BUF_INIT;
	size_t n;
	struct es_prow **v = sorted_rows(p, &n);
	int rc = 0;

	if (!v)
		return es_fail(err, ES_IO, "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		if (what == 2 && !v[i]->w)
			continue;
		if (what == 2 ? window_row(p->spec, v[i], &b) : model_row(v[i], &b))
			rc = es_fail(err, ES_IO, "out of memory");
		else if (b.len >= (1 << 20) || i + 1 == n) {
			if (out(arg, b.p, b.len))
				rc = es_fail(err, ES_IO, "cannot write the model");
			es_buf_reset(&b);
		}
	}
	if (!rc && b.len && out(arg, b.p, b.len))
		rc = es_fail(err, ES_IO, "cannot write the model");
	es_buf_release(&b);
	free(v);
	return rc;
}

/* The spelling of a key that project_spec.c's canon_raw gives it. */
static int canon_key(json_t *k, struct es_buf *out)
{
	return es_json_dump_canon_add(out, k);
}

/* Each line of text: parse it and hand the key's row to cb. */
static int each_row(struct es_proj *p, const char *text, size_t len, const char *field,
		    int (*cb)(struct es_proj *, struct es_ppart *, struct es_prow **, json_t *, uint64_t,
			      const char *, size_t),
		    struct es_error *err)
{
	size_t lineno = 0;

	for (const char *s = text, *end = text + len; s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		json_t *row = json_loadb(s, n, 0, NULL), *k = json_object_get(row, "key");
		json_t *v = json_object_get(row, field);
		lineno++;
		s += n + 1;
		es_buf_reset(&p->key);
		if (!k || !v) {
			json_decref(row);
			return es_fail(err, ES_CORRUPT, "line %zu: not a model row", lineno);
		}
		if (canon_key(k, &p->key)) { /* a key of a parsed row: no memory */
			json_decref(row);
			return es_fail(err, ES_IO, "out of memory");
		}
		uint64_t h = es_pkey_hash(p->key.p, p->key.len);
		struct es_ppart *pt = &p->part[es_ppart_of(p, h)];
		struct es_prow **slot = pt->cap ? es_ppart_slot(pt, p->key.p, p->key.len, h) : NULL;
		int rc = cb(p, pt, slot, v, h, s - n - 1, n);
		json_decref(row);
		if (rc)
			return es_fail(err, rc < 0 ? ES_IO : ES_CORRUPT, rc < 0 ? "out of memory" :
				       "line %zu: not a model row", lineno);
	}
	return 0;
}

static int load_state(struct es_proj *p, struct es_ppart *pt, struct es_prow **slot, json_t *v,
		      uint64_t h, const char *line, size_t len)
{
	struct es_prow *row;

	if (slot && *slot)
		return 1; /* the same key twice */
	if (!(row = es_prow_new(p->key.p, p->key.len, h, json_incref(v))))
		return -1;
	/* the line as written last time: rewritten only once the key changes */
	if ((row->row = malloc(len + 1))) {
		memcpy(row->row, line, len);
		row->row[len] = '\n';
		row->rlen = len + 1;
		row->dirty = 0;
	}
	if (es_ppart_insert(pt, row)) {
		es_prow_free(p->spec, row);
		return -1;
	}
	return 0;
}

static int load_window(const struct es_pwin *w, struct es_pwstate *ws, json_t *j)
{
	json_t *ts = json_object_get(j, "ts"), *t;
	size_t i;

	if (json_is_null(j))
		return 0;
	ws->used = 1;
	if (w->kind == ES_PWIN_TUMBLING) {
		ws->start = json_integer_value(json_object_get(j, "start"));
		ws->count = (uint64_t)json_integer_value(json_object_get(j, "count"));
		return 0;
	}
	ws->cap = (uint32_t)w->threshold + 1;
	if (!json_is_array(ts) || json_array_size(ts) > ws->cap)
		return 1;
	if (!(ws->ring = malloc(ws->cap * sizeof(*ws->ring))))
		return -1;
	json_array_foreach(ts, i, t)
		ws->ring[ws->n++] = json_integer_value(t);
	return 0;
}

static int load_windows(struct es_proj *p, struct es_ppart *pt, struct es_prow **slot, json_t *v,
			uint64_t h, const char *line, size_t len)
{
	const struct es_pspec *sp = p->spec;
	struct es_prow *row = slot ? *slot : NULL;

	(void)pt;
	(void)h;
	(void)line;
	(void)len;
	if (!row || !json_is_array(v) || json_array_size(v) != sp->nwin || row->w)
		return 1;
	if (!(row->w = calloc(sp->nwin, sizeof(*row->w))))
		return -1;
	for (size_t i = 0; i < sp->nwin; i++) {
		int rc = load_window(&sp->win[i], &row->w[i], json_array_get(v, i));
		if (rc)
			return rc;
	}
	return 0;
}

int es_proj_load(struct es_proj *p, const char *model, size_t mlen, const char *windows,
		 size_t wlen, struct es_error *err)
{
	if (each_row(p, model, mlen, "state", load_state, err))
		return es_error_prefix(err, "model.ndjson");
	if (windows && each_row(p, windows, wlen, "w", load_windows, err))
		return es_error_prefix(err, "windows.ndjson");
	return 0;
}
