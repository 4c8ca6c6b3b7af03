/* project_window.c: windows per key (sliding, tumbling) and the alerts
 * they fire. */
#include "project.h"

#include <stdlib.h>
#include <string.h>

static int type_in(const struct es_pwin *w, const struct es_rec *r)
{
	if (w->ntypes == 0)
		return 1;
	for (size_t i = 0; i < w->ntypes; i++)
		if (w->types[i].len == r->type_len && memcmp(w->types[i].p, r->type, r->type_len) == 0)
			return 1;
	return 0;
}

static int add_alert(const struct es_pspec *sp, struct es_ppart *pt, size_t wi,
		     const struct es_prow *row, const struct es_rec *r, uint64_t count,
		     int64_t start, int64_t end)
{
	const struct es_pwin *w = &sp->win[wi];
	struct es_buf *b = &pt->alerts.text;
	char ws[ES_TS_LEN + 1], we[ES_TS_LEN + 1];

	es_ts_format(start, ws);
	es_ts_format(end, we);
	if (es_pmsgs_begin(&pt->alerts, r->seq, (uint32_t)wi) || es_buf_add(b, w->prefix.p, w->prefix.len) ||
	    es_buf_adds(b, w->prefix.len > 1 ? ",\"projection\":" : "\"projection\":") ||
	    es_json_add_string(b, sp->name, strlen(sp->name)) || es_buf_adds(b, ",\"window\":") ||
	    es_json_add_string(b, w->name, strlen(w->name)) || es_buf_adds(b, ",\"key\":") ||
	    es_buf_add(b, row->key, row->klen) ||
	    es_buf_addf(b, ",\"count\":%llu,\"window_start\":\"%s\",\"window_end\":\"%s\",\"seq\":%llu,"
			"\"ts\":\"%.*s\",\"stream\":", (unsigned long long)count, ws, we,
			(unsigned long long)r->seq, ES_TS_LEN, r->ts) ||
	    es_buf_add(b, r->stream, r->stream_len) || es_buf_adds(b, "}\n"))
		return -1;
	es_pmsgs_end(&pt->alerts);
	return 0;
}

/* The (threshold+1)-th newest counted event is still inside the window
 * that ends at t: the count is above the threshold. */
static int sliding_over(const struct es_pwstate *ws, const struct es_pwin *w, int64_t t)
{
	return ws->n == ws->cap && ws->ring[ws->head] > t - w->size;
}

static int sliding_push(struct es_pwstate *ws, int64_t t)
{
	if (ws->n < ws->cap) {
		ws->ring[(ws->head + ws->n) % ws->cap] = t;
		ws->n++;
	} else {
		ws->ring[ws->head] = t;
		ws->head = (ws->head + 1) % ws->cap;
	}
	return 0;
}

/* Count one event; 1 when it crosses the threshold (fires). */
static int window_count(struct es_pwstate *ws, const struct es_pwin *w, int64_t t, uint64_t *count,
			int64_t *start, int64_t *end)
{
	if (w->kind == ES_PWIN_TUMBLING) {
		int64_t st = t >= 0 ? t / w->size * w->size : -((-t + w->size - 1) / w->size) * w->size;
		if (!ws->used || st != ws->start) {
			ws->start = st;
			ws->count = 0;
			ws->used = 1;
		}
		*count = ++ws->count;
		*start = st;
		*end = st + w->size;
		return ws->count == w->threshold + 1;
	}
	if (!ws->ring) {
		ws->cap = (uint32_t)w->threshold + 1;
		if (!(ws->ring = malloc(ws->cap * sizeof(*ws->ring))))
			return -1;
	}
	int before = sliding_over(ws, w, t);
	sliding_push(ws, t);
	ws->used = 1;
	*count = w->threshold + 1;
	*start = t - w->size;
	*end = t;
	return !before && sliding_over(ws, w, t);
}

int es_pwin_apply(const struct es_pspec *sp, struct es_ppart *pt, struct es_prow *row,
			 const struct es_rec *r)
{
	int64_t t = 0, start, end;
	uint64_t count;
	int have_t = 0;

	for (size_t i = 0; i < sp->nwin; i++) {
		int fire;
		if (!type_in(&sp->win[i], r))
			continue;
		if (!row->w && !(row->w = calloc(sp->nwin, sizeof(*row->w))))
			return -1;
		if (!have_t && es_ts_parse(r->ts, ES_TS_LEN, &t) == 0)
			have_t = 1;
		fire = window_count(&row->w[i], &sp->win[i], t, &count, &start, &end);
		if (fire < 0 || (fire && add_alert(sp, pt, i, row, r, count, start, end)))
			return -1;
	}
	return 0;
}

