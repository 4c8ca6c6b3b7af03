/* foldpar.c: the whole-store fold on N threads (see foldpar.h). */
#include "foldpar.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "json.h"
#include "project.h"
#include "strmap.h"

#define ARC_BLOCK (1u << 20)
/* Copied blocks held at once, per thread: the reading waits for the
 * threads rather than restore a whole archive (or copy the log) into
 * memory. */
#define HELD_PER_JOB 4

/* A block of whole lines, each ended by '\n'. */
struct blk {
	const char *p;
	size_t len;
	const char *name;  /* "log/<seg>.ndjson"; NULL: restored from the archive */
	uint64_t off;      /* of p in that segment */
	char *own;         /* the copy of archived lines, freed at the end */
	atomic_int *mapped; /* a mapped block: whether a thread faulted it in */
};

struct shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct blk *b;
	size_t nb, cap;
	int done;              /* every block is published */
	int abandon;           /* and the reading failed: print nothing */
	int printed;           /* threads done with their lines */
	atomic_size_t stop_at; /* the earliest block a thread failed in */
	struct worker *w;      /* the threads, how far each is (worker.next) */
	int nw;
	size_t freed;          /* blocks before this one: their copies freed */
	size_t held, held_max, held_peak; /* copied blocks */
	size_t copies;         /* of archived history */
};

struct worker {
	pthread_t t;
	int id, jobs;
	struct shared *sh;
	uint64_t last_seq;  /* of the last line read, whoever's it was */
	const struct es_reducer *red;
	const struct es_sel *sel;
	int need;           /* es_reducer_reads */
	struct es_foldset fs;
	struct es_buf *out;
	struct wline { uint64_t first_seq; size_t off, len; } *lines; /* in out */
	size_t nlines;
	int failed;
	size_t fail_blk, fail_off;
	struct es_error err;
	size_t next;        /* blocks done with (SIZE_MAX: all); under sh->mu */
};

/* What lives from es_foldpar_run to es_foldpar_release. */
struct es_foldpar_run {
	struct shared sh;
	struct worker *w;
	int started;
	struct es_pscan sc;
};

/* Which thread folds a stream of hash h (es_strmap_hash: the same hash
 * then finds its fold, by its low bits). */
static int owner(uint64_t h, int jobs)
{
	return (int)((h >> 32) % (uint64_t)jobs);
}

static int fail_at(struct worker *w, size_t bi, size_t off)
{
	size_t cur = atomic_load(&w->sh->stop_at);

	w->failed = 1;
	w->fail_blk = bi;
	w->fail_off = off;
	while (bi < cur && !atomic_compare_exchange_weak(&w->sh->stop_at, &cur, bi))
		;
	return -1;
}

/* Parse, select and fold one line of this thread's streams; st is its
 * start when es_rec_start read it (else NULL, and h 0). */
static int fold_line(struct worker *w, const struct blk *b, size_t bi, const char *line,
		     size_t len, uint64_t prev_seq, const struct es_rec_start *st, uint64_t h)
{
	struct es_rec r;
	struct es_fold *f;
	const char *why;
	size_t off = (size_t)(line - b->p);

	if (es_rec_parse_rest(line, len, 0, st, &r, &why) != 0 ||
	    (es_rec_locate_body(line, &r, w->need) != 0 && (why = "\"data\" is not an object"))) {
		if (b->name)
			es_fail(&w->err, ES_CORRUPT, "%s: offset %llu: after seq %llu: %s", b->name,
				(unsigned long long)(b->off + off), (unsigned long long)prev_seq, why);
		else
			es_fail(&w->err, ES_CORRUPT, "archive: after seq %llu: %s",
				(unsigned long long)prev_seq, why);
		return fail_at(w, bi, off);
	}
	if (r.seq <= prev_seq || !es_sel_match(w->sel, &r))
		return 0; /* (a segment met twice is read once, as es_log does) */
	if (h == 0) /* its start was not read (es_rec_start); or the hash is 0 */
		h = es_strmap_hash(r.stream, r.stream_len);
	if (!(f = es_foldset_get_h(&w->fs, w->red, &r, h))) {
		es_fail(&w->err, ES_IO, "out of memory");
		return fail_at(w, bi, off);
	}
	if (es_fold_apply(w->red, f, &r, &w->err))
		return fail_at(w, bi, off);
	return 0;
}

/* A line read as far as its stream, waiting its turn to be folded. */
struct pend {
	const char *p;
	size_t len;
	uint64_t prev, h; /* the last seq before it; its stream's hash (0: not known) */
	int mine, known;
	struct es_rec_start st;
};

static const char *look(struct worker *w, const char *p, const char *end, struct pend *x)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	x->p = p;
	x->len = nl ? (size_t)(nl - p) : (size_t)(end - p);
	x->prev = w->last_seq;
	x->h = 0;
	x->mine = w->id == 0; /* a line without its start: thread 0 says why */
	x->known = es_rec_start(p, x->len, &x->st) == 0;
	if (x->known) {
		x->h = es_strmap_hash(x->st.stream, x->st.stream_len);
		x->mine = owner(x->h, w->jobs) == w->id;
		if (x->st.seq > w->last_seq)
			w->last_seq = x->st.seq;
		if (x->mine)
			es_strmap_prefetch(&w->fs.map, x->h);
	}
	return p + x->len + 1;
}

/* Every thread reads every line as far as its stream (and seq), from the
 * same block at about the same time: splitting the lines once and handing
 * them round was slower, as the lines then reach the folding thread's
 * cache from another core's. A line's start is read one line ahead of its
 * fold, so that its stream's slot in the hash table is on its way to the
 * cache meanwhile: a miss there was most of the lookup's time. (Two lines
 * ahead, to prefetch the fold itself from the slot, gained nothing more.) */
static int fold_block(struct worker *w, const struct blk *b, size_t bi)
{
	const char *p = b->p, *end = b->p + b->len;
	struct pend x[2];
	int cur = 0;

	if (p >= end)
		return 0;
	p = look(w, p, end, &x[cur]);
	for (;;) {
		const struct pend *a = &x[cur];
		int more = p < end;
		if (more)
			p = look(w, p, end, &x[!cur]);
		if (a->mine && fold_line(w, b, bi, a->p, a->len, a->prev, a->known ? &a->st : NULL, a->h))
			return -1;
		if (!more)
			return 0;
		cur = !cur;
	}
}

/* The lines of this thread's states, before they are freed. */
static void print_states(struct worker *w)
{
	size_t n = w->fs.n;

	if (n && !(w->lines = es_malloc(n * sizeof(*w->lines)))) {
		es_fail(&w->err, ES_IO, "out of memory");
		fail_at(w, SIZE_MAX - 1, 0);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t start = w->out->len;
		if (es_fold_print(&w->fs.f[i], w->out)) {
			es_fail(&w->err, ES_IO, "out of memory");
			fail_at(w, SIZE_MAX - 1, 0);
			return;
		}
		w->lines[w->nlines++] = (struct wline){w->fs.f[i].first_seq, start,
						       w->out->len - start};
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;

	int abandon = 0;

	for (size_t i = 0;; i++) {
		struct blk b;
		int have;
		pthread_mutex_lock(&sh->mu);
		while (i >= sh->nb && !sh->done)
			pthread_cond_wait(&sh->cv, &sh->mu);
		have = i < sh->nb;
		if (have)
			b = sh->b[i];
		abandon = sh->abandon;
		pthread_mutex_unlock(&sh->mu);
		/* blocks after an earlier failure cannot change the outcome */
		if (!have || i > atomic_load(&sh->stop_at))
			break;
		/* The first thread to reach a block faults it in: the one ahead
		 * pays, which evens the threads out (the reading thread did it
		 * before, and the thread that shared its core fell behind). */
		if (b.mapped && !atomic_exchange(b.mapped, 1))
			es_pscan_populate(b.p, b.len);
		if (fold_block(w, &b, i))
			break;
		if (b.own) { /* a copy the reading may be waiting to free */
			pthread_mutex_lock(&sh->mu);
			w->next = i + 1;
			pthread_cond_broadcast(&sh->cv);
			pthread_mutex_unlock(&sh->mu);
		}
	}
	if (!w->failed && !abandon && atomic_load(&sh->stop_at) == SIZE_MAX)
		print_states(w);
	pthread_mutex_lock(&sh->mu);
	w->next = SIZE_MAX;
	sh->printed++;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	/* (while the caller writes the lines out) */
	es_foldset_release(&w->fs);
	return NULL;
}

/* Free the copies every thread is done with (under sh->mu). */
static void reclaim(struct shared *sh)
{
	size_t low = SIZE_MAX;

	for (int j = 0; j < sh->nw; j++)
		if (sh->w[j].next < low)
			low = sh->w[j].next;
	for (; sh->freed < low && sh->freed < sh->nb; sh->freed++)
		if (sh->b[sh->freed].own) {
			free(sh->b[sh->freed].own);
			sh->b[sh->freed].own = NULL;
			sh->held--;
		}
}

static int publish(struct shared *sh, const char *p, size_t len, const char *name, uint64_t off,
		   char *own)
{
	struct blk b = {p, len, name, off, own, NULL};
	int rc = 0;

	if (!own && !(b.mapped = es_malloc(sizeof(*b.mapped))))
		return -1;
	if (b.mapped)
		atomic_init(b.mapped, 0);
	pthread_mutex_lock(&sh->mu);
	/* a copy waits until there is room for it (or a thread failed:
	 * then nothing after it is read anyway) */
	while (own && (reclaim(sh), sh->held >= sh->held_max) &&
	       atomic_load(&sh->stop_at) == SIZE_MAX)
		pthread_cond_wait(&sh->cv, &sh->mu);
	if (sh->nb == sh->cap) {
		size_t cap = sh->cap ? sh->cap * 2 : 1024;
		struct blk *nb = es_realloc(sh->b, cap * sizeof(*nb));
		if (nb) {
			sh->b = nb;
			sh->cap = cap;
		}
	}
	if (sh->nb < sh->cap) {
		sh->b[sh->nb++] = b;
		pthread_cond_broadcast(&sh->cv);
		if (own) {
			sh->copies += name == NULL;
			if (++sh->held > sh->held_peak)
				sh->held_peak = sh->held;
		}
	} else {
		rc = -1;
	}
	pthread_mutex_unlock(&sh->mu);
	if (rc) {
		free(own);
		free(b.mapped);
	}
	return rc;
}

/* Archived history, up to seq arc, in copied blocks. */
static int feed_archive(struct shared *sh, struct es_store *s, uint64_t arc, struct es_error *err)
{
	struct es_log lg;
	const char *line;
	size_t len, used = 0, cap = 0;
	struct es_rec r;
	char *buf = NULL;
	int n = 0, oom = 0;

	if (es_log_open_store(&lg, s, 0, err))
		return err->code;
	/* (after a thread's failure nothing later can matter: stop reading) */
	while (atomic_load(&sh->stop_at) == SIZE_MAX &&
	       (n = es_log_next(&lg, &line, &len, &r, ES_REC_BODY, err)) == 1 && r.seq <= arc) {
		if (used + len + 1 > cap) {
			if (buf && (oom = publish(sh, buf, used, NULL, 0, buf)) != 0)
				buf = NULL;
			cap = len + 1 > ARC_BLOCK ? len + 1 : ARC_BLOCK;
			used = 0;
			if (oom || !(buf = es_malloc(cap))) {
				oom = 1;
				break;
			}
		}
		memcpy(buf + used, line, len);
		buf[used + len] = '\n';
		used += len + 1;
	}
	es_log_close(&lg);
	/* what was read before a bad line still goes first */
	if (!oom && buf && used)
		oom = publish(sh, buf, used, NULL, 0, buf);
	else if (buf)
		free(buf);
	if (oom)
		return es_fail(err, ES_IO, "out of memory");
	return n < 0 ? -n : 0;
}

static int by_first(const void *x, const void *y)
{
	const struct es_foldpar_line *a = x, *b = y;

	return a->first_seq < b->first_seq ? -1 : a->first_seq > b->first_seq;
}

/* Every thread's lines, in order of first appearance. */
static int gather(struct es_foldpar *fp, struct worker *w, struct es_error *err)
{
	size_t n = 0;

	for (int j = 0; j < fp->jobs; j++)
		n += w[j].nlines;
	if (n && !(fp->lines = es_malloc(n * sizeof(*fp->lines))))
		return es_fail(err, ES_IO, "out of memory");
	for (int j = 0; j < fp->jobs; j++)
		for (size_t i = 0; i < w[j].nlines; i++) {
			const struct wline *l = &w[j].lines[i];
			fp->lines[fp->n++] = (struct es_foldpar_line){l->first_seq,
								      w[j].out->p + l->off, l->len};
		}
	if (fp->n)
		qsort(fp->lines, fp->n, sizeof(*fp->lines), by_first);
	return 0;
}

int es_foldpar_run(struct es_foldpar *fp, struct es_store *s, const struct es_reducer *r,
		   const struct es_sel *sel, int jobs, struct es_error *err)
{
	struct es_foldpar_run *run;
	struct shared *sh;
	struct worker *w;
	int rc;
	size_t fail_blk = SIZE_MAX, fail_off = 0;
	const struct es_error *first = NULL;

	memset(fp, 0, sizeof(*fp));
	fp->out = calloc((size_t)jobs, sizeof(*fp->out));
	run = calloc(1, sizeof(*run));
	w = calloc((size_t)jobs, sizeof(*w));
	if (!fp->out || !run || !w) {
		free(run);
		free(w);
		return es_fail(err, ES_IO, "out of memory");
	}
	fp->run = run;
	fp->jobs = jobs;
	run->w = w;
	sh = &run->sh;
	pthread_mutex_init(&sh->mu, NULL);
	pthread_cond_init(&sh->cv, NULL);
	atomic_init(&sh->stop_at, SIZE_MAX);
	/* Map log/ first: the archive is then read up to where the mapped
	 * segments begin, even if es-archive moves more meanwhile. */
	rc = es_pscan_open(&run->sc, s, 0, 0, err); /* closed at release even if it failed */
	run->sc.lazy = 1;
	for (int j = 0; j < jobs && rc == 0; j++) {
		w[j] = (struct worker){.id = j, .jobs = jobs, .sh = sh, .red = r, .sel = sel,
				       .need = es_reducer_reads(r), .out = &fp->out[j],
				       .fs = {.flat = 1}};
		if (pthread_create(&w[j].t, NULL, work, &w[j]) != 0)
			rc = es_fail(err, ES_IO, "cannot start a thread");
		else
			run->started++;
	}
	sh->w = w;
	sh->nw = run->started;
	sh->held_max = (size_t)HELD_PER_JOB * (size_t)jobs;
	if (rc == 0) {
		uint64_t arc = es_pscan_archive_end(s);
		const char *p, *name;
		size_t len;
		uint64_t off;
		int copy = es_pscan_copies(jobs); /* (the reading thread is this one) */
		if (arc)
			rc = feed_archive(sh, s, arc, err);
		pthread_mutex_lock(&sh->mu);
		fp->arc_peak = sh->held_peak;
		pthread_mutex_unlock(&sh->mu);
		while (rc == 0 && atomic_load(&sh->stop_at) == SIZE_MAX) {
			char *own = NULL;
			rc = copy ? es_pscan_copy(&run->sc, &own, &len, &name, &off, err)
				  : es_pscan_fill(&run->sc, &p, &len, &name, &off, err);
			if (rc != 1)
				break;
			rc = publish(sh, own ? own : p, len, name, off, own)
				     ? es_fail(err, ES_IO, "out of memory") : 0;
		}
		if (rc < 0)
			rc = -rc;
	}
	/* every block is out: wait for the threads' lines (they free their
	 * states after, while the caller writes; es_foldpar_release joins) */
	pthread_mutex_lock(&sh->mu);
	sh->done = 1;
	sh->abandon = rc != 0;
	pthread_cond_broadcast(&sh->cv);
	while (sh->printed < run->started)
		pthread_cond_wait(&sh->cv, &sh->mu);
	pthread_mutex_unlock(&sh->mu);
	fp->arc_blocks = sh->copies;
	/* the earliest failure in the log is the one a single pass meets */
	for (int j = 0; j < run->started; j++)
		if (w[j].failed && (w[j].fail_blk < fail_blk ||
				    (w[j].fail_blk == fail_blk && w[j].fail_off < fail_off))) {
			fail_blk = w[j].fail_blk;
			fail_off = w[j].fail_off;
			first = &w[j].err;
		}
	if (first) {
		*err = *first;
		rc = err->code;
	}
	return rc == 0 ? gather(fp, w, err) : rc;
}

void es_foldpar_release(struct es_foldpar *fp)
{
	struct es_foldpar_run *run = fp->run;

	if (run) {
		for (int j = 0; j < run->started; j++)
			pthread_join(run->w[j].t, NULL);
		es_pscan_close(&run->sc);
		for (size_t i = 0; i < run->sh.nb; i++) {
			free(run->sh.b[i].own);
			free(run->sh.b[i].mapped);
		}
		free(run->sh.b);
		for (int j = 0; j < fp->jobs; j++)
			free(run->w[j].lines);
		free(run->w);
		pthread_cond_destroy(&run->sh.cv);
		pthread_mutex_destroy(&run->sh.mu);
		free(run);
	}
	for (int j = 0; fp->out && j < fp->jobs; j++)
		es_buf_release(&fp->out[j]);
	free(fp->out);
	free(fp->lines);
	memset(fp, 0, sizeof(*fp));
}
