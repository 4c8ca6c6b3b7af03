/* project_engine.c: folding events into one state per key (skip mode
 * keeps a failing event out whole), collecting alerts and dead letters,
 * feeding records from es_log, files or blocks, and gathering the
 * partitions' results in seq order. */
#include "project.h"

#include <stdlib.h>
#include <string.h>

#include "io.h"

/* ---- messages (alerts, dead letters) ---- */

int es_pmsgs_begin(struct es_pmsgs *m, uint64_t seq, uint32_t sub)
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

void es_pmsgs_end(struct es_pmsgs *m)
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
		if (es_pmsgs_begin(to, x->seq, x->sub) ||
		    es_buf_add(&to->text, from->text.p + x->off, x->len))
			return -1;
		es_pmsgs_end(to);
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

static int dead_letter(struct es_ppart *pt, const char *line, size_t len, const struct es_rec *r,
		       const char *why)
{
	struct es_buf *b = &pt->dead.text;

	if (es_pmsgs_begin(&pt->dead, r->seq, 0) ||
	    es_buf_addf(b, "{\"seq\":%llu,\"reason\":", (unsigned long long)r->seq) ||
	    es_json_add_string(b, why, strlen(why)) || es_buf_adds(b, ",\"event\":") ||
	    es_buf_add(b, line, len) || es_buf_adds(b, "}\n"))
		return -1;
	es_pmsgs_end(&pt->dead);
	return 0;
}

/* Run the reducer on *state; in skip mode a failure leaves *state as it was. */
static int reduce(struct es_proj *p, struct es_ppart *pt, json_t **state, const char *line,
		  size_t len, const struct es_rec *r)
{
	const struct es_pspec *sp = p->spec;
	struct es_error err = {0, ""};
	int skip = p->on_error == ES_ON_ERROR_SKIP;

	if ((skip ? es_reducer_apply_whole(sp->red, state, r, &err)
		  : es_reducer_apply(sp->red, state, r, &err)) == 0)
		return 0;
	if (!skip || err.code != ES_DATA) {
		es_ppart_fail(pt, err.code == ES_DATA ? ES_DATA : ES_IO, r->seq, err.msg);
		return -1;
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
	row = es_ppart_lookup(pt, key, klen, hash);
	if (row) {
		rc = reduce(p, pt, &row->state, line, len, r);
	} else {
		/* a new key exists only once an event applied to it */
		if (!(state = es_reducer_init(sp->red))) {
			es_ppart_fail(pt, ES_IO, r->seq, "out of memory");
			return;
		}
		rc = reduce(p, pt, &state, line, len, r);
		if (rc == 0 && (!(row = es_prow_new(key, klen, hash, state)) || es_ppart_insert(pt, row))) {
			es_prow_free(sp, row);
			es_ppart_fail(pt, ES_IO, r->seq, "out of memory");
			return;
		}
		if (rc)
			json_decref(state);
	}
	if (rc)
		return;
	row->dirty = 1;
	if (sp->nwin && es_pwin_apply(sp, pt, row, r))
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
		es_prow_free(sp, pt->slot[i]);
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

static int locate_body(const char *line, struct es_rec *r, const struct es_pspec *sp)
{
	return es_rec_locate_body(line, r, (sp->need_data_end ? ES_BODY_DATA_END : 0) |
					   (sp->need_meta ? ES_BODY_META : 0));
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

/* The records of a block of whole lines at offset off of segment name. */
static int feed_block(struct es_proj *p, const char *block, size_t blen, const char *name,
		      uint64_t off, struct es_error *err)
{
	const char *why;

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
	return 0;
}

int es_proj_feed_scan(struct es_proj *p, struct es_pscan *sc, struct es_error *err)
{
	const char *block, *name;
	char *own = NULL;
	size_t blen;
	uint64_t off;
	int n, rc = 0, copy;

	if (p->pool)
		return es_pool_feed_blocks(p, sc, err);
	copy = es_pscan_copies(0);
	while (!rc && !stop_now(p)) {
		free(own);
		own = NULL;
		n = copy ? es_pscan_copy(sc, &own, &blen, &name, &off, err)
			 : es_pscan_fill(sc, &block, &blen, &name, &off, err);
		if (n <= 0) {
			rc = -n;
			break;
		}
		rc = feed_block(p, own ? own : block, blen, name, off, err);
	}
	free(own);
	return rc;
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
