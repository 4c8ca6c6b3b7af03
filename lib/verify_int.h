/* verify_int.h: what verify.c (the log) and verify_index.c (what is
 * derived from it: the index, snapshots) share inside the library: the
 * state of a run and its units, the stream -> version map, and the index
 * checks verify.c calls. Not an interface: see verify.h for that. */
#ifndef ES_VERIFY_INT_H
#define ES_VERIFY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "archive.h"
#include "buf.h"
#include "ilist.h"
#include "index.h"
#include "json.h"
#include "record.h"
#include "strmap.h"
#include "timeq.h"
#include "verify.h"

/* ---- stream -> version map (verify.c fills it) ---- */

struct vent {
	uint64_t h;
	size_t key, klen;          /* decoded stream name in the map's arena */
	uint64_t first_v, last_v;  /* versions of the first and last event seen */
	uint64_t first_seq, first_off;
	struct es_pos last;        /* where the last event seen lies */
	uint64_t batch;            /* first seq of the last event's batch (by place) */
	uint64_t closed_v;         /* the last one before that batch (0: none), */
	struct es_pos closed;      /* and where: see vent_as_of */
	int checked;               /* first_v checked against what precedes it */
	int walked;                /* its position was checked by the index walk */
	int used;
};

struct vmap {
	struct vent *e;
	size_t cap, n;
	struct es_buf keys;
	int complete;              /* holds every stream from seq 1 on */
};

static inline int vent_is(const struct vmap *m, const struct vent *e, const char *k, size_t n,
			  uint64_t h)
{
	return e->h == h && e->klen == n && memcmp(m->keys.p + e->key, k, n) == 0;
}

/* The stream's last version as of head (the last record of a closed
 * batch), and where it lies (*v 0: none then): a batch still open at the
 * tail of the log is not what readers or the index see. */
static inline const struct es_pos *vent_as_of(const struct vent *e, uint64_t head, uint64_t *v)
{
	if (e->batch <= head) {
		*v = e->last_v;
		return &e->last;
	}
	*v = e->closed_v;
	return &e->closed;
}

/* The entry for key, or NULL. */
static inline struct vent *vmap_find(const struct vmap *m, const char *k, size_t n)
{
	uint64_t h = es_strmap_hash(k, n);

	if (!m->cap)
		return NULL;
	for (size_t i = h & (m->cap - 1); m->e[i].used; i = (i + 1) & (m->cap - 1)) {
		struct vent *e = &m->e[i];
		if (vent_is(m, e, k, n, h))
			return e;
	}
	return NULL;
}

static inline const char *vkey(const struct vmap *m, const struct vent *e)
{
	return m->keys.p + e->key;
}

/* The decoded stream name: the literal without quotes when it has no
 * escape (the common case), else decoded into scratch. */
static inline int stream_key(const struct es_rec *r, struct es_buf *scratch, const char **k,
			     size_t *n)
{
	if (!memchr(r->stream, '\\', r->stream_len)) {
		*k = r->stream + 1;
		*n = r->stream_len - 2;
		return 0;
	}
	if (es_json_decode_string(scratch, r->stream, r->stream_len))
		return -1;
	*k = scratch->p;
	*n = scratch->len;
	return 0;
}

/* ---- where events lie: the log's against the index's ---- */

/* splitmix64's finaliser: every input bit moves every output bit */
static inline uint64_t es_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* One event's term of the position digest: its stream (name_h, the
 * es_strmap_hash of the decoded name), version and position, what an "e"
 * key of the index and its value hold (index.h). Both sides add up the
 * terms of every event (mod 2^64: in any order, on any thread); one wrong,
 * missing or extra position changes the sum. */
static inline uint64_t pos_term(uint64_t name_h, uint64_t version, const struct es_pos *p)
{
	/* two rounds, the fields of each spread by odd constants, not one
	 * round per field: this runs once per record in the log's hot loop */
	uint64_t h = es_mix64(name_h + version * 0x9e3779b97f4a7c15ull +
			      p->seq * 0xc2b2ae3d27d4eb4full);

	return es_mix64(h ^ (p->seg * 0x165667b19e3779f9ull + p->off * 0xd6e8feb86659fd93ull +
			     p->len));
}

/* The index's side: the sum of its positions after the purge anchor. */
struct ixsum {
	uint64_t purged;           /* positions at or below: not compared */
	uint64_t sum, n;
	int bad;                   /* an "e" entry of another shape */
	const char *name;          /* the last stream met (in the index's map) */
	size_t nlen;
	uint64_t name_h;           /* ... and its es_strmap_hash */
	const atomic_int *stop;    /* set: walk no further */
};

/* ---- the chain state and one unit of work ---- */

struct pos {                   /* a record that closed a batch: the head */
	uint64_t seq;
	char hash[ES_HASH_HEX + 1];
	uint64_t seg, end;
	uint64_t records, bytes;   /* the unit's counts up to it */
	uint64_t digest;           /* ... and its sum of pos_term */
};

struct vstate {
	int known;                 /* 0: adopt the next record (after damage) */
	uint64_t seq;
	char hash[ES_HASH_HEX + 1];
	char ts[ES_TS_LEN + 1];
	int has_ts;
	int in_batch;              /* the last record had "more" */
	uint64_t batch_off, batch_seq; /* where the open batch started */
	struct pos closed;
};

struct run;

struct unit {
	const struct es_archive_seg *arc; /* an archived segment, read from archive/ */
	struct es_archive_seg moved;  /* arc of a log/ segment archived while the
				       * run went on (file and dir owned) */
	const char *dir;           /* the store, for arc */
	char *path;                /* to open */
	char *name;                /* for messages */
	uint64_t segno;            /* store segment: first seq by its name */
	int store_seg, active, last;
	int gone;                  /* left log/ while log/ was listed */
	uint64_t size;
	uint64_t read_end;         /* where its reading ended */
	int read_eof;              /* and that was the file's end then (no error) */
	uint64_t skip_before;      /* incremental: records below are only skipped */
	struct vmap *map;
	struct vstate st;          /* in: before the first record; out: after the last */
	struct vstate start;       /* a copy of the state it started from */
	uint64_t records, bytes;
	uint64_t digest;           /* sum of its records' pos_term, as records */
	struct es_ilist fail, warn;
	int stopped;               /* stopped at a failure */
	int ran;
	int rc;                    /* an I/O error: status, message in err */
	struct es_error err;
	int anchor_seen;           /* saw record skip_before - 1 */
	int pending, later;        /* active segment: damage seen; records after it */
	struct es_ilist pend;         /* the failures after the damage */
	struct pos pend_closed;    /* the head before the damage */
	int ih_seen;               /* saw the index head's record where it says */
	int ih_differs;            /* ... with another hash */
	int done;                  /* parallel: checked (under the run's plock) */
};

/* The index's streams, walked on a thread of its own while the log is
 * checked on others: each with its version and where the index
 * says its last event is (has_pos 0: nowhere); and, on any run that
 * checks the whole log, the sum of every position it holds. */
struct ixrow {
	size_t name, len;          /* in names */
	uint64_t version;
	struct es_pos pos;
	int has_pos;
};
struct ixahead {
	pthread_t t;
	int started, joined;
	int rows_wanted;
	int rc;                    /* 0: rows are every stream; else walk again */
	struct es_head rows_head;  /* the index's head as the streams' walk saw it */
	int rows_head_rc;
	int pos_rc;                /* 0: sum holds every position; else walk again */
	struct ixsum sum;
	struct es_head head;       /* the index's head as the positions' walk saw it */
	int head_rc;
	atomic_int stop;           /* the result is not wanted any more */
	struct es_index *ix;
	struct es_buf names;
	struct ixrow *rows;
	size_t n, cap;
};

struct run {
	const struct es_verify_opts *o;
	const char *dir;           /* store, or NULL */
	struct es_head ih;         /* the index head */
	int have_ih;
	int ih_damaged;            /* index/ has a head, but it fails its check sum */
	unsigned long alloc0;      /* es_alloc_failures() at the start */
	struct unit *u;
	size_t nu;
	struct vmap gmap;
	atomic_size_t next;        /* parallel: next unit to take */
	atomic_uint_least64_t done;
	uint64_t total, reported;
	pthread_mutex_t plock;
	pthread_cond_t donecv;     /* parallel: a unit is done */
	struct es_ilist fail, warn;   /* not about one unit: before the log */
	struct es_ilist post;         /* ... and after it (head, look-back) */
	struct es_ilist notes;
	struct es_ilist ixissues;     /* index disagreements (failures unless repaired) */
	int index_state;           /* IX_*: see es_verify_index_check() */
	uint64_t head_seq;         /* the index is compared up to here: not a torn tail */
	struct es_archive *arc;    /* archive/MANIFEST, or NULL */
	/* The MANIFEST as it is now, for log/ segments that left log/ since
	 * it was listed (es_archive_refresh on a store that is only that);
	 * under arc_lock: units on threads look in it. */
	struct es_store *live;
	pthread_mutex_t arc_lock;
	int purged;                /* the log begins at a purge anchor */
	int log_failed;            /* the log itself is broken */
	struct ixahead ahead;      /* es_verify_index_ahead() */
};

/* ---- the index and snapshots (verify_index.c) ---- */

/* R->index_state */
enum { IX_NONE, IX_MISSING, IX_UNREADABLE, IX_UNSYNCED, IX_STALE, IX_BAD, IX_OK };

/* Open dir's index read-only: IX_OK (*ix set), IX_MISSING, IX_UNSYNCED
 * or IX_UNREADABLE. */
int es_verify_index_open(const char *dir, struct es_index **ix, struct es_error *err);
/* Walk ix on a thread of its own while the log is checked, for
 * es_verify_index_check: every event position (a run from seq 1 or the
 * purge anchor: 7% of es-verify -j 1 of 1M events otherwise), and with
 * rows its streams (a complete run: the walk was a quarter of es-verify
 * -j 2). Nothing else may use ix until the walk is joined:
 * es_verify_index_check joins it, es_verify_index_ahead_end (on every
 * path, before ix is closed) stops and joins it and frees what it kept. */
void es_verify_index_ahead(struct run *R, struct es_index *ix, int rows);
void es_verify_index_ahead_end(struct run *R);
/* The index against the log's head (and, with from > 1, the streams that
 * continue from before from); sets R->index_state. */
void es_verify_index_check(struct run *R, struct es_index *ix, const struct pos *head,
			   uint64_t from);
/* --repair-index: rebuild it from the log, under the writers' lock. */
int es_verify_index_repair(struct run *R, struct es_error *err);
/* --snapshots: every snapshot checked (an intact log and index first). */
int es_verify_snapshots(struct run *R, struct es_error *err);
/* A note of how many files quarantine/ holds. */
void es_verify_quarantine(struct run *R);

#endif
