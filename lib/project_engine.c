/* project_engine.c: folding events into one state per key, windows and
 * alerts, collecting dead letters; the model's rows in and out. */
#include "project.h"

#include <stdlib.h>
#include <string.h>

#include "io.h"

/* One window of one key. Sliding: the ts of the last threshold+1 counted
 * events, oldest at head; tumbling: the current window and its count. */
struct wstate {
	int64_t *ring;
	uint32_t cap, n, head;
	int64_t start;
	uint64_t count;
	int used;
};

struct es_prow {
	uint64_t hash;
	json_t *state;
	struct wstate *w;       /* spec->nwin of them, or NULL */
	char *row;              /* the model line as last written (--follow commits */
	size_t rlen;            /* rewrite only the rows that changed) */
	int dirty;              /* applied to since row was made */
	size_t klen;
	char key[];             /* canonical JSON text, NUL-terminated */
};

uint64_t es_pkey_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static void row_free(const struct es_pspec *sp, struct es_prow *row)
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

static struct es_prow *row_new(const char *key, size_t klen, uint64_t hash, json_t *state)
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

static struct es_prow **find_slot(struct es_ppart *pt, const char *key, size_t klen, uint64_t hash)
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
			*find_slot(pt, old[i]->key, old[i]->klen, old[i]->hash) = old[i];
	free(old);
	return 0;
}

/* Add a row (its key must not be there yet). 0 or -1. */
static int insert(struct es_ppart *pt, struct es_prow *row)
{
	if ((pt->n + 1) * 2 > pt->cap && grow(pt))
		return -1;
	*find_slot(pt, row->key, row->klen, row->hash) = row;
	pt->n++;
	return 0;
}

static struct es_prow *lookup(struct es_ppart *pt, const char *key, size_t klen, uint64_t hash)
{
	return pt->cap ? *find_slot(pt, key, klen, hash) : NULL;
}

/* ---- messages (alerts, dead letters) ---- */

static int msg_begin(struct es_pmsgs *m, uint64_t seq, uint32_t sub)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct es_pmsg *nv = realloc(m->v, cap * sizeof(*nv));
		if (!nv)
			return -1;
		m->v = nv;
		m->cap = cap;
	}
	m->v[m->n].seq = seq;
	m->v[m->n].sub = sub;
	m->v[m->n].off = m->text.len;
	return 0;
}

static void msg_end(struct es_pmsgs *m)
{
	m->v[m->n].len = m->text.len - m->v[m->n].off;
	m->n++;
}

static void msgs_clear(struct es_pmsgs *m)
{
	m->n = 0;
	es_buf_reset(&m->text);
}

static void msgs_release(struct es_pmsgs *m)
{
	free(m->v);
	es_buf_release(&m->text);
	memset(m, 0, sizeof(*m));
}

static int msgs_move(struct es_pmsgs *to, struct es_pmsgs *from)
{
	for (size_t i = 0; i < from->n; i++) {
		struct es_pmsg *x = &from->v[i];
		if (msg_begin(to, x->seq, x->sub) ||
		    es_buf_add(&to->text, from->text.p + x->off, x->len))
			return -1;
		msg_end(to);
	}
	msgs_clear(from);
	return 0;
}

static int msg_cmp(const void *a, const void *b)
{
	const struct es_pmsg *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->sub < y->sub ? -1 : x->sub > y->sub;
}

/* ---- windows ---- */

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
	if (msg_begin(&pt->alerts, r->seq, (uint32_t)wi) || es_buf_add(b, w->prefix.p, w->prefix.len) ||
	    es_buf_adds(b, w->prefix.len > 1 ? ",\"projection\":" : "\"projection\":") ||
	    es_json_add_string(b, sp->name, strlen(sp->name)) || es_buf_adds(b, ",\"window\":") ||
	    es_json_add_string(b, w->name, strlen(w->name)) || es_buf_adds(b, ",\"key\":") ||
	    es_buf_add(b, row->key, row->klen) ||
	    es_buf_addf(b, ",\"count\":%llu,\"window_start\":\"%s\",\"window_end\":\"%s\",\"seq\":%llu,"
			"\"ts\":\"%.*s\",\"stream\":", (unsigned long long)count, ws, we,
			(unsigned long long)r->seq, ES_TS_LEN, r->ts) ||
	    es_buf_add(b, r->stream, r->stream_len) || es_buf_adds(b, "}\n"))
		return -1;
	msg_end(&pt->alerts);
	return 0;
}

/* The (threshold+1)-th newest counted event is still inside the window
 * that ends at t: the count is above the threshold. */
static int sliding_over(const struct wstate *ws, const struct es_pwin *w, int64_t t)
{
	return ws->n == ws->cap && ws->ring[ws->head] > t - w->size;
}

static int sliding_push(struct wstate *ws, int64_t t)
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
static int window_count(struct wstate *ws, const struct es_pwin *w, int64_t t, uint64_t *count,
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

static int apply_windows(const struct es_pspec *sp, struct es_ppart *pt, struct es_prow *row,
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

/* ---- applying ---- */

void es_ppart_fail(struct es_ppart *pt, int code, uint64_t seq, const char *msg)
{
	if (pt->failed)
		return;
	pt->failed = 1;
	pt->fail_code = code;
	pt->fail_seq = seq;
	snprintf(pt->fail, sizeof(pt->fail), "%s", msg);
}

/* How many rules an event of this type runs: with more than one, a
 * failure may leave some applied, so skip mode works on a copy. */
static size_t rules_for(const struct es_pspec *sp, const struct es_rec *r)
{
	json_t *t;
	size_t n;

	if (!sp->on)
		return 0;
	n = json_array_size(json_object_get(sp->on, "*"));
	if (r->type_len >= 2 && (t = json_object_getn(sp->on, r->type + 1, r->type_len - 2)))
		n += json_array_size(t);
	return n;
}

static int dead_letter(struct es_ppart *pt, const char *line, size_t len, const struct es_rec *r,
		       const char *why)
{
	struct es_buf *b = &pt->dead.text;

	if (msg_begin(&pt->dead, r->seq, 0) ||
	    es_buf_addf(b, "{\"seq\":%llu,\"reason\":", (unsigned long long)r->seq) ||
	    es_json_add_string(b, why, strlen(why)) || es_buf_adds(b, ",\"event\":") ||
	    es_buf_add(b, line, len) || es_buf_adds(b, "}\n"))
		return -1;
	msg_end(&pt->dead);
	return 0;
}

/* Run the reducer on *state; in skip mode a failure leaves *state as it was. */
static int reduce(struct es_proj *p, struct es_ppart *pt, json_t **state, const char *line,
		  size_t len, const struct es_rec *r)
{
	const struct es_pspec *sp = p->spec;
	struct es_error err = {0, ""};
	json_t *backup = NULL;

	if (p->on_error == ES_ON_ERROR_SKIP && rules_for(sp, r) > 1 &&
	    !(backup = json_deep_copy(*state))) {
		es_ppart_fail(pt, ES_IO, r->seq, "out of memory");
		return -1;
	}
	if (es_reducer_apply(sp->red, state, r, &err) == 0) {
		json_decref(backup);
		return 0;
	}
	if (p->on_error == ES_ON_ERROR_STOP || err.code != ES_DATA) {
		json_decref(backup);
		es_ppart_fail(pt, err.code == ES_DATA ? ES_DATA : ES_IO, r->seq, err.msg);
		return -1;
	}
	if (backup) {
		json_decref(*state);
		*state = backup;
	}
	if (dead_letter(pt, line, len, r, err.msg))
		es_ppart_fail(pt, ES_IO, r->seq, "out of memory");
	return 1;
}

void es_ppart_apply(struct es_proj *p, struct es_ppart *pt, const char *line, size_t len,
		    const struct es_rec *r, const char *key, size_t klen, uint64_t hash)
{
	const struct es_pspec *sp = p->spec;
	struct es_prow *row;
	json_t *state;
	int rc;

	if (pt->failed)
		return;
	row = lookup(pt, key, klen, hash);
	if (row) {
		rc = reduce(p, pt, &row->state, line, len, r);
	} else {
		/* a new key exists only once an event applied to it */
		if (!(state = es_reducer_init(sp->red))) {
			es_ppart_fail(pt, ES_IO, r->seq, "out of memory");
			return;
		}
		rc = reduce(p, pt, &state, line, len, r);
		if (rc == 0 && (!(row = row_new(key, klen, hash, state)) || insert(pt, row))) {
			row_free(sp, row);
			es_ppart_fail(pt, ES_IO, r->seq, "out of memory");
			return;
		}
		if (rc)
			json_decref(state);
	}
	if (rc)
		return;
	row->dirty = 1;
	if (sp->nwin && apply_windows(sp, pt, row, r))
		es_ppart_fail(pt, ES_IO, r->seq, "out of memory");
	pt->applied++;
}

/* ---- the engine ---- */

int es_proj_init(struct es_proj *p, const struct es_pspec *spec, int jobs,
		 enum es_on_error on_error, struct es_error *err)
{
	memset(p, 0, sizeof(*p));
	p->spec = spec;
	p->jobs = jobs < 1 ? 1 : jobs;
	p->on_error = on_error;
	memcpy(p->hash, ES_GENESIS, ES_HASH_HEX + 1);
	p->part = aligned_alloc(_Alignof(struct es_ppart), (size_t)p->jobs * sizeof(*p->part));
	if (!p->part)
		return es_fail(err, ES_IO, "out of memory");
	memset(p->part, 0, (size_t)p->jobs * sizeof(*p->part));
	if (p->jobs > 1 && es_pool_start(p, err)) {
		free(p->part);
		p->part = NULL;
		return err->code;
	}
	return 0;
}

static void part_clear(const struct es_pspec *sp, struct es_ppart *pt)
{
	for (size_t i = 0; i < pt->cap; i++)
		row_free(sp, pt->slot[i]);
	free(pt->slot);
	pt->slot = NULL;
	pt->cap = pt->n = 0;
	msgs_clear(&pt->alerts);
	msgs_clear(&pt->dead);
	pt->failed = 0;
	pt->applied = 0;
}

void es_proj_reset(struct es_proj *p)
{
	for (int i = 0; i < p->jobs; i++)
		part_clear(p->spec, &p->part[i]);
	msgs_clear(&p->alerts);
	msgs_clear(&p->dead);
	p->failed = 0;
	es_pool_clear(p);
	p->seq = 0;
	p->read = 0;
	memcpy(p->hash, ES_GENESIS, ES_HASH_HEX + 1);
	p->ts[0] = '\0';
}

void es_proj_release(struct es_proj *p)
{
	if (!p->part)
		return;
	if (p->pool)
		es_pool_stop(p);
	for (int i = 0; i < p->jobs; i++) {
		part_clear(p->spec, &p->part[i]);
		msgs_release(&p->part[i].alerts);
		msgs_release(&p->part[i].dead);
		es_buf_release(&p->part[i].tmp);
	}
	free(p->part);
	msgs_release(&p->alerts);
	msgs_release(&p->dead);
	es_buf_release(&p->key);
	es_buf_release(&p->line);
	memset(p, 0, sizeof(*p));
}

size_t es_proj_keys(const struct es_proj *p)
{
	size_t n = 0;

	for (int i = 0; i < p->jobs; i++)
		n += p->part[i].n;
	return n;
}

uint64_t es_proj_applied(const struct es_proj *p)
{
	uint64_t n = 0;

	for (int i = 0; i < p->jobs; i++)
		n += p->part[i].applied;
	return n;
}

static int emit_alerts(struct es_proj *p, struct es_pmsgs *m, struct es_error *err)
{
	for (size_t i = 0; i < m->n; i++)
		if (p->alert_sink(p->sink_arg, m->text.p + m->v[i].off, m->v[i].len))
			return es_fail(err, ES_IO, "cannot write alerts");
	msgs_clear(m);
	return 0;
}

/* Locate data (and meta when the spec reads it) in a record whose envelope
 * is parsed: cheaper than ES_REC_BODY, which also scans meta. When nothing
 * takes data whole, data's span runs on to the end of the body: a path
 * search stops at data's closing brace anyway, and finding it costs a scan. */
static int locate_body(const char *line, struct es_rec *r, const struct es_pspec *sp)
{
	const char *p = r->id + r->id_len, *end = line + r->body_len;
	size_t e;

	if (end - p > 10 && memcmp(p, ",\"schema\":", 10) == 0)
		for (p += 10; p < end && *p >= '0' && *p <= '9'; p++)
			;
	if (end - p < 10 || memcmp(p, ",\"data\":{", 9) != 0)
		return -1;
	p += 8;
	r->data = p;
	r->data_len = (size_t)(end - p);
	if (!sp->need_data_end)
		return 0;
	e = es_json_skip(p, (size_t)(end - p), 0);
	if (e == (size_t)-1)
		return -1;
	r->data_len = e;
	p += e;
	if (sp->need_meta && end - p > 8 && memcmp(p, ",\"meta\":", 8) == 0) {
		p += 8;
		e = es_json_skip(p, (size_t)(end - p), 0);
		if (e == (size_t)-1)
			return -1;
		r->meta = p;
		r->meta_len = e;
	}
	return 0;
}

int es_proj_key(const struct es_proj *p, const char *line, struct es_rec *r, struct es_buf *key,
		struct es_error *err)
{
	int rc;

	if (!r->data && locate_body(line, r, p->spec)) {
		es_fail(err, ES_CORRUPT, "seq %llu: data is not a JSON object",
			(unsigned long long)r->seq);
		return -1;
	}
	rc = es_pfield_get(&p->spec->key, r, key);
	if (rc < 0)
		es_fail(err, ES_IO, "out of memory");
	return rc;
}

int es_proj_apply_one(struct es_proj *p, const char *line, size_t len, const struct es_rec *env,
		      struct es_error *err)
{
	struct es_rec r;
	uint64_t hash;
	int rc;

	if (!es_sel_match(&p->spec->sel, env) ||
	    (p->has_since && memcmp(env->ts, p->since, ES_TS_LEN) < 0))
		return 0;
	if (p->jobs > 1)
		return es_pool_push(p, line, len, env, err);
	r = *env;
	es_buf_reset(&p->key);
	rc = es_proj_key(p, line, &r, &p->key, err);
	if (rc)
		return rc < 0 ? err->code : 0; /* no key: not part of this projection */
	hash = es_pkey_hash(p->key.p, p->key.len);
	es_ppart_apply(p, &p->part[0], line, len, &r, p->key.p, p->key.len, hash);
	if (p->alert_sink && p->part[0].alerts.n && !p->part[0].failed)
		return emit_alerts(p, &p->part[0].alerts, err);
	return 0;
}

static int stop_now(const struct es_proj *p)
{
	if (p->stop && *p->stop)
		return 1;
	/* stop mode: nothing after a failed event will be kept */
	return p->jobs == 1 ? p->part[0].failed : es_pool_failed(p);
}

int es_proj_feed(struct es_proj *p, struct es_log *lg, uint64_t limit, struct es_error *err)
{
	const char *line;
	size_t len;
	struct es_rec r;
	int n;

	while (!stop_now(p)) {
		n = es_log_next(lg, &line, &len, &r, 0, err);
		if (n < 0)
			return -n;
		if (n == 0 || r.seq > limit)
			break;
		p->seq = r.seq;
		memcpy(p->hash, r.hash, ES_HASH_HEX);
		memcpy(p->ts, r.ts, ES_TS_LEN);
		p->ts[ES_TS_LEN] = '\0';
		p->read++;
		if (es_proj_apply_one(p, line, len, &r, err))
			return err->code;
		if (r.seq == limit)
			break;
		if (p->sync_every && p->read % p->sync_every == 0 && es_proj_sync(p, err))
			return err->code;
	}
	return 0;
}

int es_proj_feed_lines(struct es_proj *p, es_pline_fn next, void *src, struct es_error *err)
{
	const char *line, *name;
	size_t len;
	uint64_t lineno;
	int n;

	while (!stop_now(p)) {
		n = next(src, &line, &len, &name, &lineno, err);
		if (n < 0)
			return -n;
		if (n == 0)
			break;
		p->read++;
		if (es_pool_push_raw(p, line, len, name, lineno, err))
			return err->code;
		if (p->sync_every && p->read % p->sync_every == 0 && es_proj_sync(p, err))
			return err->code;
	}
	return 0;
}

int es_proj_feed_scan(struct es_proj *p, struct es_pscan *sc, struct es_error *err)
{
	const char *block, *name, *why;
	size_t blen;
	uint64_t off;
	int n;

	if (p->pool)
		return es_pool_feed_blocks(p, sc, err);
	while (!stop_now(p) && (n = es_pscan_fill(sc, &block, &blen, &name, &off, err)) != 0) {
		if (n < 0)
			return -n;
		for (const char *s = block, *end = block + blen; s < end && !stop_now(p);) {
			const char *nl = memchr(s, '\n', (size_t)(end - s));
			size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
			struct es_rec r;
			if (es_rec_parse(s, len, 0, &r, &why))
				return es_fail(err, ES_CORRUPT, "%s: offset %llu: %s", name,
					       (unsigned long long)(off + (uint64_t)(s - block)), why);
			p->seq = r.seq;
			memcpy(p->hash, r.hash, ES_HASH_HEX);
			memcpy(p->ts, r.ts, ES_TS_LEN);
			p->read++;
			if (es_proj_apply_one(p, s, len, &r, err))
				return err->code;
			s += len + 1;
		}
	}
	return 0;
}

void es_proj_cut_msgs(struct es_proj *p, uint64_t seq)
{
	while (p->alerts.n && p->alerts.v[p->alerts.n - 1].seq >= seq)
		p->alerts.n--;
	while (p->dead.n && p->dead.v[p->dead.n - 1].seq >= seq)
		p->dead.n--;
}

int es_proj_sync(struct es_proj *p, struct es_error *err)
{
	if (p->pool && es_pool_wait(p, err))
		return err->code;
	for (int i = 0; i < p->jobs; i++) {
		struct es_ppart *pt = &p->part[i];
		if (msgs_move(&p->alerts, &pt->alerts) || msgs_move(&p->dead, &pt->dead))
			return es_fail(err, ES_IO, "out of memory");
		if (pt->failed && (!p->failed || pt->fail_seq < p->fail_seq)) {
			p->failed = 1;
			p->fail_code = pt->fail_code;
			p->fail_seq = pt->fail_seq;
			memcpy(p->fail, pt->fail, sizeof(p->fail));
		}
	}
	if (p->jobs > 1 && p->alerts.n > 1)
		qsort(p->alerts.v, p->alerts.n, sizeof(*p->alerts.v), msg_cmp);
	if (p->jobs > 1 && p->dead.n > 1)
		qsort(p->dead.v, p->dead.n, sizeof(*p->dead.v), msg_cmp);
	if (p->failed)
		es_proj_cut_msgs(p, p->fail_seq);
	if (p->alert_sink)
		return emit_alerts(p, &p->alerts, err);
	return 0;
}

/* ---- rows in and out ---- */

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
		const struct wstate *ws = &row->w[i];
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
	    es_buf_adds(b, ",\"state\":") || es_json_dump_add(b, row->state) ||
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

static int canon_key(json_t *k, struct es_buf *out)
{
	char *d;
	int rc;

	if (json_is_string(k))
		return es_json_add_string(out, json_string_value(k), json_string_length(k));
	d = json_dumps(k, ES_JSON_DUMP_FLAGS | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!d)
		return -1;
	rc = es_buf_adds(out, d);
	free(d);
	return rc;
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
		if (!k || !v || canon_key(k, &p->key)) {
			json_decref(row);
			return es_fail(err, ES_CORRUPT, "line %zu: not a model row", lineno);
		}
		uint64_t h = es_pkey_hash(p->key.p, p->key.len);
		struct es_ppart *pt = &p->part[es_ppart_of(p, h)];
		struct es_prow **slot = pt->cap ? find_slot(pt, p->key.p, p->key.len, h) : NULL;
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
	if (!(row = row_new(p->key.p, p->key.len, h, json_incref(v))))
		return -1;
	/* the line as written last time: rewritten only once the key changes */
	if ((row->row = malloc(len + 1))) {
		memcpy(row->row, line, len);
		row->row[len] = '\n';
		row->rlen = len + 1;
		row->dirty = 0;
	}
	if (insert(pt, row)) {
		row_free(p->spec, row);
		return -1;
	}
	return 0;
}

static int load_window(const struct es_pwin *w, struct wstate *ws, json_t *j)
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
