/* project.h: projections (read models) over the log, for es-project(1).
 *
 * A projection spec (JSON, see es-project(1)) names a group key, filters,
 * per-type reducer rules (the language of reducer.h) and optional windows
 * that emit alert records. Four parts:
 *
 *   spec    es_pspec_*: compile and identify a spec (project_spec.c)
 *   engine  es_proj_*: fold events into one state per key (project_engine.c,
 *           the key table and the model's rows in project_rows.c), count
 *           windows and fire alerts (project_window.c), collect dead
 *           letters; -j N partitions the keys over N worker threads
 *           (project_pool.c); the log read in mapped blocks (project_scan.c)
 *   dir     es_pdir_*: projections/NAME/ in a store: generations, the
 *           checkpoint, the writer lock, crash recovery (project_dir.c)
 *   runs    es_project_*: incremental runs, rebuilds, follow, status,
 *           pause/resume, pipes (project.c)
 *
 * On disk (projections/NAME/):
 *
 *   lock               flock(2): one writer (es-project run) at a time
 *   ctl.lock           flock(2): held around a commit's swap and by --pause/--resume
 *   current            symlink to the live generation, e.g. gen-00000000000000000007
 *   gen-N/             model.ndjson, windows.ndjson, checkpoint.json,
 *                      alerts.ndjson, dead.ndjson
 *   model.ndjson, checkpoint.json, alerts.ndjson, dead.ndjson
 *                      symlinks into current/
 *
 * A commit writes a whole new generation beside the live one, then swaps
 * `current` with one rename(2): the model and the checkpoint it agrees with
 * change together or not at all. alerts.ndjson and dead.ndjson are append
 * logs hard-linked from one generation to the next; the checkpoint records
 * their committed sizes and recovery cuts anything beyond.
 */
#ifndef ES_PROJECT_H
#define ES_PROJECT_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "chain.h"
#include "error.h"
#include "input.h"
#include "json.h"
#include "store.h"
#include "reader.h"
#include "reducer.h"
#include "timeq.h"

/* ---- spec ---------------------------------------------------------- */

enum es_pwin_kind { ES_PWIN_SLIDING, ES_PWIN_TUMBLING };

struct es_pwin {
	char *name;
	enum es_pwin_kind kind;
	int64_t size;                  /* microseconds */
	uint64_t threshold;            /* fires when the count becomes > threshold */
	struct es_buf *types;          /* JSON literals; ntypes 0: every event */
	size_t ntypes;
	struct es_buf prefix;          /* the alert object's text minus its '}' */
};

/* Where an event path starts (stored envelope field or inside data/meta). */
enum es_pfield_kind {
	ES_PF_SEQ, ES_PF_VERSION, ES_PF_STREAM, ES_PF_TYPE, ES_PF_TS, ES_PF_ID,
	ES_PF_SCHEMA, ES_PF_DATA, ES_PF_META,
};

struct es_pfield {
	enum es_pfield_kind kind;
	struct es_path path;           /* full path; segments after the first go inside */
};

struct es_pspec {
	char *name;
	int64_t version;
	char sha[ES_HASH_HEX + 1];     /* its identity: sha256 of the canonical spec (es_pspec_compile) */
	char sha_written[ES_HASH_HEX + 1]; /* the identity before (spec_id); "": none */
	json_t *json;                  /* the spec itself */
	json_t *on;                    /* rules by type (borrowed from json; may be NULL) */
	struct es_pfield key;
	struct es_sel sel;             /* the filter, as selectors */
	struct es_reducer *red;
	struct es_pwin *win;
	size_t nwin;
	int need_meta;                 /* a rule or the key reads meta: locate it too */
	int need_data_end;             /* a rule or the key takes data whole: find its end */
};

/* Compile a spec object (borrowed). ES_DATA with the spec path on errors. */
int es_pspec_compile(struct es_pspec **sp, json_t *spec, struct es_error *err);
/* Load and compile a spec file. */
int es_pspec_load(struct es_pspec **sp, const char *path, struct es_error *err);
void es_pspec_free(struct es_pspec *sp);
/* Whether name is a valid projection name: [A-Za-z0-9][A-Za-z0-9._-]*, at
 * most 100 bytes. */
int es_pname_valid(const char *name);
/* Compile an event path for es_pfield_get ("stream", "data.customer"). 0 or -1. */
int es_pfield_compile(struct es_pfield *f, const char *text);
/* Append the canonical JSON text of the value at f in rec to out: strings
 * as jansson encodes them, other values dumped with sorted keys. 0 found,
 * 1 absent or null, -1 out of memory. No DOM is built for strings. */
int es_pfield_get(const struct es_pfield *f, const struct es_rec *rec, struct es_buf *out);

/* ---- engine -------------------------------------------------------- */

/* Records produced while applying (alerts, dead letters), kept in seq
 * order: sub orders records of the same event. */
struct es_pmsg {
	uint64_t seq;
	uint32_t sub;
	size_t off, len;               /* into text, with the '\n' */
};
struct es_pmsgs {
	struct es_pmsg *v;
	size_t n, cap;
	struct es_buf text;
};

/* One window of one key. Sliding: the ts of the last threshold+1 counted
 * events, oldest at head; tumbling: the current window and its count. */
struct es_pwstate {
	int64_t *ring;
	uint32_t cap, n, head;
	int64_t start;
	uint64_t count;
	int used;
};

/* One key of the model. */
struct es_prow {
	uint64_t hash;
	json_t *state;
	struct es_pwstate *w;           /* spec->nwin of them, or NULL */
	char *row;                      /* the model line as last written (a commit */
	size_t rlen;                    /* rewrites only the rows that changed) */
	int dirty;                      /* applied to since row was made */
	size_t klen;
	char key[];                     /* canonical JSON text, NUL-terminated */
};

/* The keys of one partition (a worker's share with -j N). Aligned to a
 * cache line: each is written by its own worker at every event. */
struct es_ppart {
	_Alignas(64) struct es_prow **slot;
	size_t cap, n;
	struct es_pmsgs alerts, dead;
	int failed;                     /* the first failing event (stop mode), or no memory */
	int fail_code;                  /* ES_DATA: the event; ES_IO: no memory */
	uint64_t fail_seq;
	char fail[512];
	uint64_t applied;               /* events applied */
	struct es_buf tmp;
};

enum es_on_error { ES_ON_ERROR_STOP, ES_ON_ERROR_SKIP };

struct es_pool;

struct es_proj {
	const struct es_pspec *spec;
	int jobs;
	enum es_on_error on_error;
	struct es_ppart *part;          /* jobs of them */
	struct es_pool *pool;           /* jobs > 1 */
	/* the log position covered: the last record read */
	uint64_t seq;
	char hash[ES_HASH_HEX + 1];
	char ts[ES_TS_LEN + 1];
	uint64_t read;                  /* records read by es_proj_feed */
	/* collected from the partitions by es_proj_sync, in seq order */
	struct es_pmsgs alerts, dead;
	int failed, fail_code;
	uint64_t fail_seq;
	char fail[512];
	volatile sig_atomic_t *stop;    /* set: es_proj_feed returns at a record boundary */
	char since[ES_TS_LEN + 1];      /* --from: events before it are read, not applied */
	int has_since;
	/* When set, alerts go here as soon as their order is final (-j 1:
	 * at once; -j N: at each sync) instead of being kept in alerts. */
	int (*alert_sink)(void *arg, const char *s, size_t n);
	void *sink_arg;
	uint64_t sync_every;            /* -j N with alert_sink: sync every this many records read */
	int raw_code;                   /* es_proj_feed_lines: code of a line that is no record */
	struct es_buf key, line;
};

int es_proj_init(struct es_proj *p, const struct es_pspec *spec, int jobs,
		 enum es_on_error on_error, struct es_error *err);
void es_proj_release(struct es_proj *p);
/* Drop every key and collected record (a fresh model); keeps the threads. */
void es_proj_reset(struct es_proj *p);
/* Read records from lg until its end, a record with seq > limit, or *stop,
 * and apply them. A failing event is not an error here: stop mode records
 * it (see es_proj_sync) and stops reading soon after, skip mode keeps a
 * dead letter. Returns 0 or an es_status for the log itself (ES_CORRUPT,
 * ES_IO, ES_DATA for a line that is not a stored record). */
int es_proj_feed(struct es_proj *p, struct es_log *lg, uint64_t limit, struct es_error *err);
/* -j N: hand lines to the workers unparsed, so that parsing runs on N
 * threads too; next gives a line (1), the end (0) or -(status), and where
 * the line comes from for messages. The position (seq, hash, ts) is known
 * after es_proj_sync. With -j 1 use es_proj_feed. */
typedef int (*es_pline_fn)(void *src, const char **line, size_t *len, const char **name,
			   uint64_t *lineno, struct es_error *err);
int es_proj_feed_lines(struct es_proj *p, es_pline_fn next, void *src, struct es_error *err);
/* Apply one record read elsewhere (parsed without ES_REC_BODY is fine). */
int es_proj_apply_one(struct es_proj *p, const char *line, size_t len, const struct es_rec *r,
		      struct es_error *err);
/* Wait until every event read is applied, then gather alerts, dead letters
 * and the first failure (failed, fail_seq, fail) in seq order. */
int es_proj_sync(struct es_proj *p, struct es_error *err);
/* Drop collected alerts and dead letters with seq >= seq. */
void es_proj_cut_msgs(struct es_proj *p, uint64_t seq);
size_t es_proj_keys(const struct es_proj *p);
uint64_t es_proj_applied(const struct es_proj *p);
/* Load model rows ({"key":..,"state":..}) and window rows, as written by
 * es_proj_write. */
int es_proj_load(struct es_proj *p, const char *model, size_t mlen, const char *windows,
		 size_t wlen, struct es_error *err);
/* Write the model (what 1: model rows, 2: window rows) sorted by key.
 * When out fails, err says only "cannot write the model": out keeps errno
 * if the caller is to say why. */
int es_proj_write(struct es_proj *p, int what, int (*out)(void *arg, const char *s, size_t n),
		  void *arg, struct es_error *err);

/* The worker pool behind -j N (project_pool.c). */
int es_pool_start(struct es_proj *p, struct es_error *err);
void es_pool_stop(struct es_proj *p);
/* Hand one stored line that passed the filter (its envelope parsed) to the
 * workers. */
int es_pool_push(struct es_proj *p, const char *line, size_t len, const struct es_rec *r,
		 struct es_error *err);
/* The same for a line not parsed yet. */
int es_pool_push_raw(struct es_proj *p, const char *line, size_t len, const char *name,
		     uint64_t lineno, struct es_error *err);
/* Wait until every pushed event is applied; raw lines read since the last
 * wait move the position (seq, hash, ts) to the last of them. */
int es_pool_wait(struct es_proj *p, struct es_error *err);
/* Whether a worker's partition has failed (the reader stops early); clear it. */
int es_pool_failed(const struct es_proj *p);
void es_pool_clear(struct es_proj *p);
/* Apply one event to partition part (used by the workers and by -j 1). */
void es_ppart_apply(struct es_proj *p, struct es_ppart *part, const char *line, size_t len,
		    const struct es_rec *r, const char *key, size_t klen, uint64_t hash);
/* Locate r's data (and meta when needed) and append its key to key: 0,
 * 1 when the event has no key, or -1 with err (ES_CORRUPT, ES_IO). */
int es_proj_key(const struct es_proj *p, const char *line, struct es_rec *r, struct es_buf *key,
		struct es_error *err);
/* Record a partition's first failure. */
void es_ppart_fail(struct es_ppart *pt, int code, uint64_t seq, const char *msg);
/* The key table (project_rows.c). */
struct es_prow *es_prow_new(const char *key, size_t klen, uint64_t hash, json_t *state);
void es_prow_free(const struct es_pspec *sp, struct es_prow *row);
/* The slot of key in pt (empty when absent); pt must have room. */
struct es_prow **es_ppart_slot(struct es_ppart *pt, const char *key, size_t klen, uint64_t hash);
int es_ppart_insert(struct es_ppart *pt, struct es_prow *row);
struct es_prow *es_ppart_lookup(struct es_ppart *pt, const char *key, size_t klen, uint64_t hash);
/* Alerts and dead letters: begin a record, append its text, end it. */
int es_pmsgs_begin(struct es_pmsgs *m, uint64_t seq, uint32_t sub);
void es_pmsgs_end(struct es_pmsgs *m);
/* Count r in row's windows, adding the alerts that fire to pt
 * (project_window.c). 0 or -1 (no memory). */
int es_pwin_apply(const struct es_pspec *sp, struct es_ppart *pt, struct es_prow *row,
		  const struct es_rec *r);
/* Which partition a key hash belongs to. */
static inline int es_ppart_of(const struct es_proj *p, uint64_t hash)
{
	return p->jobs > 1 ? (int)((hash >> 40) % (uint64_t)p->jobs) : 0;
}
uint64_t es_pkey_hash(const char *key, size_t len);

/* A store's log read in blocks of whole lines, from a segment and byte
 * offset on, up to its visible end as it was at open. The segments are all
 * mapped at open (read-only, shared) and stay mapped until es_pscan_close,
 * so blocks are pointers into them (nothing is copied) and es-archive may
 * remove them meanwhile (project_scan.c). */
struct es_pscan {
	struct es_store *s;
	uint64_t *segs;
	size_t nsegs, i;
	uint64_t limit;                 /* visible end of the last segment */
	uint64_t pos;                   /* next byte in segs[i] */
	void **maps;                    /* per segment: its mapping (or NULL) */
	uint64_t *ends;                 /* and the length mapped */
	char (*names)[40];              /* "log/<20 digits>.ndjson" per segment */
	int lazy;                       /* set after open: fill does not fault
					 * blocks in (the reader calls
					 * es_pscan_populate) */
	int fd1;                        /* es_pscan_copy: segs[i]'s file + 1
					 * (0: not open; -1: gone, copy from
					 * the mapping) */
};
/* Open at byte off of segment seg (its first seq; 0: the first log/
 * segment after the archive; UINT64_MAX: the end). Archived segments are
 * not read here: es_log reads them (es_pscan_archive_end tells how far). */
int es_pscan_open(struct es_pscan *sc, struct es_store *s, uint64_t seg, uint64_t off,
		  struct es_error *err);
/* The last seq held by the archive (after es_store_list_segments), or 0. */
uint64_t es_pscan_archive_end(struct es_store *s);
/* The next block of whole lines of one segment: 1 (with the segment's
 * name and the block's offset in it), 0 at the end, or -(status). */
int es_pscan_fill(struct es_pscan *sc, const char **block, size_t *len, const char **name,
		  uint64_t *off, struct es_error *err);
/* es_pscan_fill's next block, copied into *buf (es_malloc'd, the
 * caller's to free): read(2) from the segment's file, which costs a few
 * times less than the first touch of the mapping where page-table misses
 * are dear (virtual machines); from the mapping when the file is gone
 * (archived since open). A line longer than a block is read whole. */
int es_pscan_copy(struct es_pscan *sc, char **buf, size_t *len, const char **name,
		  uint64_t *off, struct es_error *err);
/* Whether a reader should take es_pscan_copy's blocks rather than
 * es_pscan_fill's, when `threads` other threads read what it hands out
 * (0: it reads them itself). Test builds: ES_SCAN_READ=copy or =map. */
int es_pscan_copies(int threads);
void es_pscan_close(struct es_pscan *sc);
/* Fault a block in at once (one call for its pages, not one fault each). */
void es_pscan_populate(const char *block, size_t len);
/* Apply the records of sc's blocks: parsed here (-j 1) or by the workers. */
int es_proj_feed_scan(struct es_proj *p, struct es_pscan *sc, struct es_error *err);
/* -j N: hand sc's blocks to the workers. */
int es_pool_feed_blocks(struct es_proj *p, struct es_pscan *sc, struct es_error *err);
/* The same over NDJSON files (none: stdin), blank lines skipped. */
struct es_pfiles {
	char **files;
	int nfiles, fi, open;
	struct es_input in;
};
void es_pfiles_open(struct es_pfiles *pf, char **files, int nfiles);
int es_pfiles_next(void *pf, const char **line, size_t *len, const char **name, uint64_t *lineno,
		   struct es_error *err);
void es_pfiles_close(struct es_pfiles *pf);

/* ---- projections/NAME/ -------------------------------------------- */

enum es_pstate { ES_PSTATE_OK, ES_PSTATE_FAULTED, ES_PSTATE_PAUSED };

struct es_pckpt {
	uint64_t seq;                   /* the last record the model covers (0: none) */
	char hash[ES_HASH_HEX + 1];     /* its hash (ES_GENESIS for seq 0) */
	char ts[ES_TS_LEN + 1];         /* its ts ("" for seq 0) */
	int64_t spec_version;
	char spec_sha[ES_HASH_HEX + 1];
	enum es_pstate state;
	char updated[ES_TS_LEN + 1];    /* wall clock of the commit */
	uint64_t gen;                   /* generation number */
	uint64_t keys, events;          /* rows in the model; events applied since the build */
	uint64_t alerts_size, dead_size; /* committed bytes of alerts.ndjson, dead.ndjson */
	uint64_t alerts, dead;          /* committed records in them */
	char from[ES_TS_LEN + 1];       /* --from of the build ("" when none) */
	char built[ES_TS_LEN + 1];      /* wall clock of the build */
	uint64_t fault_seq;             /* state faulted: the failing event */
	char fault[512];
};

struct es_pdir {
	char *dir;                      /* STORE/projections/NAME */
	char *name;
	int lock_fd;                    /* the writer lock, -1 */
	int have;                       /* a current generation exists */
	struct es_pckpt cp;             /* its checkpoint */
};

const char *es_pstate_name(enum es_pstate s);
/* Open projections/NAME under the store dir (create: make the
 * directories). Reads the current checkpoint when there is one. */
int es_pdir_open(struct es_pdir *pd, const char *store_dir, const char *name, int create,
		 struct es_error *err);
void es_pdir_close(struct es_pdir *pd);
/* Take the writer lock without waiting: ES_CONFLICT when another process
 * holds it. Then recover: drop unfinished generations, cut alerts and dead
 * letters back to the checkpoint, restore the symlinks. */
int es_pdir_lock(struct es_pdir *pd, struct es_error *err);
/* Whether some process holds the writer lock (a running --follow). */
int es_pdir_busy(const struct es_pdir *pd);
/* Re-read the current checkpoint into pd->cp. */
int es_pdir_reload(struct es_pdir *pd, struct es_error *err);
/* Read the current generation's model and window rows (malloc'd). */
int es_pdir_read_model(struct es_pdir *pd, char **model, size_t *mlen, char **windows,
		       size_t *wlen, struct es_error *err);
/* Commit: write p's model as a new generation with checkpoint cp (seq,
 * hash, ts, state, ...; gen and sizes are filled in), append p's alerts
 * and dead letters (fresh: start new files, for rebuilds), swap it in.
 * The state written is cp->state, except that a pause or resume made
 * meanwhile (by es_pdir_set_state) is kept. Updates pd->cp. */
int es_pdir_commit(struct es_pdir *pd, struct es_proj *p, struct es_pckpt *cp, int fresh,
		   struct es_error *err);
/* --pause / --resume: set the state in the current checkpoint. */
int es_pdir_set_state(struct es_pdir *pd, enum es_pstate state, struct es_error *err);
/* The checkpoint as one JSON object (no newline). */
int es_pckpt_format(const struct es_pckpt *cp, const char *name, struct es_buf *out);
int es_pckpt_parse(struct es_pckpt *cp, const char *text, size_t len, struct es_error *err);

/* ---- runs ---------------------------------------------------------- */

struct es_project_opts {
	const char *store_dir;
	int jobs;
	enum es_on_error on_error;
	int rebuild;
	int64_t from;                   /* --from: INT64_MIN when not given */
	int follow;
	int to_stdout;                  /* print the model, write nothing */
	int alerts_only;                /* print alerts, not the model */
	int quiet;                      /* no alerts on stdout */
	int verbose;                    /* a note per commit */
	int interval_ms;                /* --follow poll interval */
	volatile sig_atomic_t *stop;
	/* output (stdout) and notes (stderr), supplied by the program */
	int (*out)(void *arg, const char *s, size_t n);
	void (*note)(void *arg, const char *msg);
	void *arg;
};

/* Store mode: an incremental run, --rebuild, --from, --stdout, --follow.
 * ES_NOMATCH when the projection cannot go on as asked (spec version
 * changed, log changed under it, paused), ES_CONFLICT when another writer
 * holds it, ES_DATA when an event failed in stop mode (then faulted). */
int es_project_store(const struct es_pspec *spec, const struct es_project_opts *o,
		     struct es_error *err);
/* Pipe mode: project stored lines from files (none: stdin), print alerts
 * as they fire and then the model. */
int es_project_files(const struct es_pspec *spec, char **files, int nfiles,
		     const struct es_project_opts *o, struct es_error *err);
/* --status for one projection (name) or all of them (NULL): one JSON line
 * each. 0, ES_NOMATCH when one is faulted, paused or missing, or an error. */
int es_project_status(const char *name, const struct es_project_opts *o, struct es_error *err);
/* --pause / --resume (ES_PSTATE_OK; also clears a fault). */
int es_project_set_state(const char *name, enum es_pstate state, const struct es_project_opts *o,
			 struct es_error *err);

#endif
