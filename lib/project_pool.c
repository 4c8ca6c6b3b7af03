/* project_pool.c: -j N. The reading thread hands out the log in blocks of
 * whole lines (pointers into the mapped segments), or lines copied from
 * files, or records es_log parsed; N workers each own the keys whose hash
 * falls in their partition and apply those events in log order. Events
 * travel in batches through a ring of NBATCH batches. Each batch is first
 * routed by one worker (whichever is free first: it splits and parses the
 * lines, filters them, extracts and hashes every key and sorts the events
 * into per-partition lists), then every worker applies its own partition's
 * list; the slot is reused once all are done with it. */
#include "project.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBATCH 64
#define BATCH_EVENTS 4096
#define CHUNK (1u << 20)

struct pev {
	struct es_rec rec;     /* pointers into the batch's chunks */
	const char *line;
	size_t len, key, klen; /* key: offset into the batch's keys */
	uint64_t hash;
	int raw;               /* not parsed yet: the routing worker parses and filters */
	const char *name;      /* raw: where the line comes from, for messages */
	uint64_t lineno;       /* its line number (files) or byte offset (store blocks) */
};

struct chunk {
	char *p;
	size_t len, cap;
};

struct pbatch {
	struct pev *ev;
	size_t n, cap;
	uint32_t **idx;        /* per partition: indexes into ev */
	size_t *nidx, *capidx;
	struct chunk *ch;
	size_t nch, cur;
	struct es_buf keys;    /* written by the routing worker */
	int routing, routed;   /* under the pool's mutex */
	uint64_t last_seq;     /* raw lines: the last record, found by routing */
	char last_hash[ES_HASH_HEX + 1], last_ts[ES_TS_LEN + 1];
	const char *block;     /* a block of whole lines of a mapped segment, split by */
	size_t blen;           /* routing (blen 0: events pushed one by one) */
	char *own;             /* the block, when it is a copy (es_pscan_copy) */
	const char *block_name;
	uint64_t block_off;
	/* routing stopped at an event: the events before it are routed, and
	 * each worker fails its partition after applying them (so a partition
	 * still applying earlier batches loses nothing of them) */
	int rfail, rfail_code;
	uint64_t rfail_seq;
	char rfail_msg[sizeof(((struct es_ppart *)0)->fail)];
};

struct es_pool {
	struct es_proj *p;
	int jobs;
	pthread_t *th;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t work, done_cv;
	uint64_t published;    /* batches handed to the workers */
	uint64_t waited;       /* published at the last es_pool_wait */
	uint64_t *done;        /* per worker: batches it has finished */
	struct pbatch b[NBATCH];
	struct pbatch *fill;   /* the batch being filled, or NULL */
	int quit;
	int failed;            /* some partition failed (read atomically) */
};

static uint64_t min_done(const struct es_pool *pl)
{
	uint64_t m = pl->done[0];

	for (int i = 1; i < pl->jobs; i++)
		if (pl->done[i] < m)
			m = pl->done[i];
	return m;
}

static int grow_to(void **v, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 256;
	void *nv;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if (!(nv = realloc(*v, ncap * size)))
		return -1;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* A raw line: parse its envelope, note it as the batch's last record, and
 * filter it. 0 keep, 1 filtered out, -1 not a record. */
static int parse_raw(const struct es_proj *p, struct pbatch *b, struct pev *e,
		     struct es_error *err)
{
	const char *why;

	if (es_rec_parse(e->line, e->len, 0, &e->rec, &why)) {
		if (b->blen) {
			es_fail(err, p->raw_code, "%s: offset %llu: %s", e->name,
				(unsigned long long)e->lineno, why);
		} else {
			es_fail(err, p->raw_code, "%s", why);
			es_error_at_line(err, e->name, (unsigned long long)e->lineno);
		}
		return -1;
	}
	b->last_seq = e->rec.seq;
	memcpy(b->last_hash, e->rec.hash, ES_HASH_HEX);
	memcpy(b->last_ts, e->rec.ts, ES_TS_LEN);
	if (!es_sel_match(&p->spec->sel, &e->rec) ||
	    (p->has_since && memcmp(e->rec.ts, p->since, ES_TS_LEN) < 0))
		return 1;
	return 0;
}

/* A block: one raw event per line. */
static int split_block(struct pbatch *b)
{
	const char *s = b->block, *end = s + b->blen;

	b->n = 0;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
		struct pev *e;
		if (grow_to((void **)&b->ev, &b->cap, b->n + 1, sizeof(*b->ev)))
			return -1;
		e = &b->ev[b->n++];
		e->line = s;
		e->len = len;
		e->raw = 1;
		e->name = b->block_name;
		e->lineno = b->block_off + (uint64_t)(s - b->block);
		s += len + 1;
	}
	return 0;
}

/* Routing stops at an event of b. seq: the event's, or UINT64_MAX for a
 * line that is no record (nothing after it is applied, so no alert or dead
 * letter of the events before it is at or past the failure). The feeder
 * stops reading at once. */
static void route_fail(struct es_pool *pl, struct pbatch *b, int code, uint64_t seq,
		       const char *msg)
{
	b->rfail = 1;
	b->rfail_code = code;
	b->rfail_seq = seq;
	snprintf(b->rfail_msg, sizeof(b->rfail_msg), "%s", msg);
	__atomic_store_n(&pl->failed, 1, __ATOMIC_RELAXED);
}

/* Extract every event's key and sort the events into partitions, up to
 * the first failure (route_fail). */
static void route(struct es_pool *pl, struct pbatch *b)
{
	struct es_proj *p = pl->p;
	struct es_error err = {0, ""};

	es_buf_reset(&b->keys);
	for (int i = 0; i < pl->jobs; i++)
		b->nidx[i] = 0;
	if (b->blen && split_block(b)) {
		route_fail(pl, b, ES_IO, UINT64_MAX, "out of memory");
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct pev *e = &b->ev[i];
		size_t at = b->keys.len;
		int part, rc;
		if (e->raw && (rc = parse_raw(p, b, e, &err)) != 0) {
			if (rc < 0) {
				route_fail(pl, b, err.code, UINT64_MAX, err.msg);
				return;
			}
			continue; /* filtered out */
		}
		rc = es_proj_key(p, e->line, &e->rec, &b->keys, &err);
		if (rc > 0)
			continue;
		if (rc < 0) {
			route_fail(pl, b, err.code, e->rec.seq, err.msg);
			return;
		}
		e->key = at;
		e->klen = b->keys.len - at;
		e->hash = es_pkey_hash(b->keys.p + at, e->klen);
		part = es_ppart_of(p, e->hash);
		if (grow_to((void **)&b->idx[part], &b->capidx[part], b->nidx[part] + 1,
			    sizeof(uint32_t))) {
			route_fail(pl, b, ES_IO, e->rec.seq, "out of memory");
			return;
		}
		b->idx[part][b->nidx[part]++] = (uint32_t)i;
	}
}

static void apply_batch(struct es_pool *pl, int w, struct pbatch *b)
{
	struct es_ppart *pt = &pl->p->part[w];

	for (size_t i = 0; i < b->nidx[w]; i++) {
		struct pev *e = &b->ev[b->idx[w][i]];
		es_ppart_apply(pl->p, pt, e->line, e->len, &e->rec, b->keys.p + e->key, e->klen,
			       e->hash);
	}
	if (b->rfail)
		es_ppart_fail(pt, b->rfail_code, b->rfail_seq, b->rfail_msg);
	if (pt->failed)
		__atomic_store_n(&pl->failed, 1, __ATOMIC_RELAXED);
}

struct warg {
	struct es_pool *pl;
	int w;
};

/* Under the mutex: the oldest published batch nobody routes yet. */
static struct pbatch *to_route(struct es_pool *pl, int w)
{
	for (uint64_t k = pl->done[w]; k < pl->published; k++) {
		struct pbatch *b = &pl->b[k % NBATCH];
		if (!b->routing) {
			b->routing = 1;
			return b;
		}
	}
	return NULL;
}

/* A worker applies its partition of every batch in order once that batch
 * is routed, and meanwhile routes any batch nobody routes yet (so parsing
 * runs on all workers at once, and one that is not scheduled holds no one
 * up for long). */
static void *worker(void *arg)
{
	struct es_pool *pl = ((struct warg *)arg)->pl;
	int w = ((struct warg *)arg)->w;
	struct pbatch *b;

	free(arg);
	pthread_mutex_lock(&pl->mu);
	for (;;) {
		/* applying first: a batch just routed here is still in this
		 * core's cache */
		b = &pl->b[pl->done[w] % NBATCH];
		if (pl->done[w] < pl->published && b->routed) {
			pthread_mutex_unlock(&pl->mu);
			apply_batch(pl, w, b);
			pthread_mutex_lock(&pl->mu);
			pl->done[w]++;
			pthread_cond_broadcast(&pl->done_cv);
			continue;
		}
		if ((b = to_route(pl, w))) {
			pthread_mutex_unlock(&pl->mu);
			route(pl, b);
			pthread_mutex_lock(&pl->mu);
			b->routed = 1;
			pthread_cond_broadcast(&pl->work);
			continue;
		}
		if (pl->quit && pl->done[w] == pl->published)
			break;
		pthread_cond_wait(&pl->work, &pl->mu);
	}
	pthread_mutex_unlock(&pl->mu);
	return NULL;
}

static void batch_release(struct pbatch *b, int jobs)
{
	for (int i = 0; b->idx && i < jobs; i++)
		free(b->idx[i]);
	for (size_t i = 0; i < b->nch; i++)
		free(b->ch[i].p);
	free(b->idx);
	free(b->nidx);
	free(b->capidx);
	free(b->ch);
	free(b->ev);
	free(b->own);
	es_buf_release(&b->keys);
}

void es_pool_stop(struct es_proj *p)
{
	struct es_pool *pl = p->pool;

	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	pl->quit = 1;
	pthread_cond_broadcast(&pl->work);
	pthread_mutex_unlock(&pl->mu);
	for (int i = 0; i < pl->started; i++)
		pthread_join(pl->th[i], NULL);
	for (int i = 0; i < NBATCH; i++)
		batch_release(&pl->b[i], pl->jobs);
	pthread_mutex_destroy(&pl->mu);
	pthread_cond_destroy(&pl->work);
	pthread_cond_destroy(&pl->done_cv);
	free(pl->th);
	free(pl->done);
	free(pl);
	p->pool = NULL;
}

int es_pool_start(struct es_proj *p, struct es_error *err)
{
	struct es_pool *pl = calloc(1, sizeof(*pl));

	if (!pl)
		return es_fail(err, ES_IO, "out of memory");
	p->pool = pl;
	pl->p = p;
	pl->jobs = p->jobs;
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->work, NULL);
	pthread_cond_init(&pl->done_cv, NULL);
	pl->th = calloc((size_t)pl->jobs, sizeof(*pl->th));
	pl->done = calloc((size_t)pl->jobs, sizeof(*pl->done));
	if (!pl->th || !pl->done)
		goto nomem;
	for (int i = 0; i < NBATCH; i++) {
		struct pbatch *b = &pl->b[i];
		b->idx = calloc((size_t)pl->jobs, sizeof(*b->idx));
		b->nidx = calloc((size_t)pl->jobs, sizeof(*b->nidx));
		b->capidx = calloc((size_t)pl->jobs, sizeof(*b->capidx));
		if (!b->idx || !b->nidx || !b->capidx)
			goto nomem;
	}
	for (int i = 0; i < pl->jobs; i++) {
		struct warg *a = malloc(sizeof(*a));
		if (!a)
			goto nomem;
		a->pl = pl;
		a->w = i;
		if (pthread_create(&pl->th[i], NULL, worker, a)) {
			free(a);
			es_pool_stop(p);
			return es_fail(err, ES_IO, "cannot start a thread");
		}
		pl->started++;
	}
	return 0;
nomem:
	es_pool_stop(p);
	return es_fail(err, ES_IO, "out of memory");
}

/* Take the next ring slot once every worker is done with its last use. */
static struct pbatch *take_batch(struct es_pool *pl)
{
	struct pbatch *b;

	pthread_mutex_lock(&pl->mu);
	while (pl->published >= NBATCH && min_done(pl) < pl->published - NBATCH + 1)
		pthread_cond_wait(&pl->done_cv, &pl->mu);
	pthread_mutex_unlock(&pl->mu);
	b = &pl->b[pl->published % NBATCH];
	b->n = 0;
	b->cur = 0;
	b->routing = b->routed = 0;
	b->rfail = 0;
	b->last_seq = 0;
	b->blen = 0;
	free(b->own); /* every worker is done with it */
	b->own = NULL;
	for (size_t i = 0; i < b->nch; i++)
		b->ch[i].len = 0;
	return b;
}

static void publish(struct es_pool *pl)
{
	pthread_mutex_lock(&pl->mu);
	pl->published++;
	pthread_cond_broadcast(&pl->work);
	pthread_mutex_unlock(&pl->mu);
	pl->fill = NULL;
}

/* Room for n bytes in the batch's chunks. */
static char *room(struct pbatch *b, size_t n)
{
	while (b->cur < b->nch && b->ch[b->cur].cap - b->ch[b->cur].len < n)
		b->cur++;
	if (b->cur == b->nch) {
		struct chunk *nc = realloc(b->ch, (b->nch + 1) * sizeof(*nc));
		size_t cap = n > CHUNK ? n : CHUNK;
		if (!nc)
			return NULL;
		b->ch = nc;
		if (!(nc[b->nch].p = malloc(cap)))
			return NULL;
		nc[b->nch].cap = cap;
		nc[b->nch].len = 0;
		b->nch++;
	}
	struct chunk *c = &b->ch[b->cur];
	char *at = c->p + c->len;
	c->len += n;
	return at;
}

/* A new event slot in the batch being filled, holding a copy of line. */
static struct pev *add_line(struct es_pool *pl, const char *line, size_t len,
			    struct es_error *err)
{
	struct pbatch *b = pl->fill;
	char *dst;
	struct pev *e;

	if (!b)
		b = pl->fill = take_batch(pl);
	if (grow_to((void **)&b->ev, &b->cap, b->n + 1, sizeof(*b->ev)) || !(dst = room(b, len))) {
		es_fail(err, ES_IO, "out of memory");
		return NULL;
	}
	memcpy(dst, line, len);
	e = &b->ev[b->n++];
	e->line = dst;
	e->len = len;
	return e;
}

/* Once its slot is filled in: hand a full batch to the workers. */
static void added(struct es_pool *pl)
{
	if (pl->fill->n == BATCH_EVENTS)
		publish(pl);
}

#define REBASE(f) (r->f ? e->line + (r->f - line) : NULL)

int es_pool_push(struct es_proj *p, const char *line, size_t len, const struct es_rec *r,
		 struct es_error *err)
{
	struct pev *e = add_line(p->pool, line, len, err);

	if (!e)
		return err->code;
	e->rec = *r;
	e->rec.stream = REBASE(stream);
	e->rec.type = REBASE(type);
	e->rec.ts = REBASE(ts);
	e->rec.id = REBASE(id);
	e->rec.data = REBASE(data);
	e->rec.meta = REBASE(meta);
	e->rec.hash = REBASE(hash);
	e->raw = 0;
	added(p->pool);
	return 0;
}

int es_pool_push_raw(struct es_proj *p, const char *line, size_t len, const char *name,
		     uint64_t lineno, struct es_error *err)
{
	struct pev *e = add_line(p->pool, line, len, err);

	if (!e)
		return err->code;
	e->raw = 1;
	e->name = name;
	e->lineno = lineno;
	added(p->pool);
	return 0;
}

int es_pool_wait(struct es_proj *p, struct es_error *err)
{
	struct es_pool *pl = p->pool;

	(void)err;
	if (pl->fill && (pl->fill->n || pl->fill->blen))
		publish(pl);
	pl->fill = NULL;
	pthread_mutex_lock(&pl->mu);
	while (min_done(pl) < pl->published)
		pthread_cond_wait(&pl->done_cv, &pl->mu);
	pthread_mutex_unlock(&pl->mu);
	/* raw lines: the position is the last record of the last batch, but
	 * only of a batch read since the last wait. An older one stays in its
	 * slot and may hold a read that es_proj_reset undid: a stop-mode fault
	 * rewinds to the checkpoint and may read nothing new up to the failing
	 * event, and that old position would commit the model past it. */
	if (pl->published > pl->waited) {
		struct pbatch *b = &pl->b[(pl->published - 1) % NBATCH];
		if (b->last_seq > p->seq) {
			p->seq = b->last_seq;
			memcpy(p->hash, b->last_hash, ES_HASH_HEX);
			memcpy(p->ts, b->last_ts, ES_TS_LEN);
		}
	}
	pl->waited = pl->published;
	return 0;
}

int es_pool_failed(const struct es_proj *p)
{
	return p->pool && __atomic_load_n(&p->pool->failed, __ATOMIC_RELAXED);
}

void es_pool_clear(struct es_proj *p)
{
	if (p->pool)
		__atomic_store_n(&p->pool->failed, 0, __ATOMIC_RELAXED);
}

int es_pool_feed_blocks(struct es_proj *p, struct es_pscan *sc, struct es_error *err)
{
	struct es_pool *pl = p->pool;
	int copy = es_pscan_copies(pl->jobs);

	while (!(p->stop && *p->stop) && !es_pool_failed(p)) {
		struct pbatch *b = pl->fill ? pl->fill : (pl->fill = take_batch(pl));
		int n;
		if (b->n) {
			publish(pl); /* lines pushed one by one come first */
			continue;
		}
		n = copy ? es_pscan_copy(sc, &b->own, &b->blen, &b->block_name, &b->block_off, err)
			 : es_pscan_fill(sc, &b->block, &b->blen, &b->block_name, &b->block_off, err);
		if (n > 0 && copy)
			b->block = b->own;
		if (n < 0)
			return -n;
		if (n == 0) {
			b->blen = 0;
			break;
		}
		p->read++;
		publish(pl);
	}
	return 0;
}
