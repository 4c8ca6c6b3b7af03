/* archive.c: the archive MANIFEST and es-archive's protocol: archiving,
 * finishing, purging, the checks es-verify asks for, --list (see archive.h
 * and es-store(5)). Reading archived segments: archive_read.c. */
#include "archive_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "buf.h"
#include "input.h"
#include "io.h"
#include "json.h"
#include "reader.h"
#include "record.h"
#include "store.h"

#define MANIFEST_FORMAT "es-archive"
#define MANIFEST_VERSION 1

/* ---- the MANIFEST ---- */

static void seg_release(struct es_archive_seg *e)
{
	free(e->file);
	free(e->dir);
	e->file = e->dir = NULL;
}

void es_archive_free(struct es_archive *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		seg_release(&a->segs[i]);
	free(a->segs);
	free(a);
}

int es_archive_add(struct es_archive *a, const struct es_archive_seg *e)
{
	struct es_archive_seg c = *e;

	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 16;
		struct es_archive_seg *v = realloc(a->segs, cap * sizeof(*v));
		if (!v)
			return -1;
		a->segs = v;
		a->cap = cap;
	}
	c.file = strdup(e->file);
	c.dir = strdup(e->dir);
	if (!c.file || !c.dir) {
		seg_release(&c);
		return -1;
	}
	a->segs[a->n++] = c;
	return 0;
}

/* Field readers: 0, or -1 with *why set. */
static int get_u64(json_t *o, const char *k, uint64_t *v, const char **why)
{
	json_t *j = json_object_get(o, k);

	if (!json_is_integer(j) || json_integer_value(j) < 0) {
		*why = k;
		return -1;
	}
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

static int get_str(json_t *o, const char *k, char *out, size_t size, size_t exact,
		   const char **why)
{
	json_t *j = json_object_get(o, k);
	size_t len;

	*why = k;
	if (!json_is_string(j))
		return -1;
	len = json_string_length(j);
	if (len >= size || (exact && len != exact))
		return -1;
	memcpy(out, json_string_value(j), len + 1);
	return 0;
}

static int get_hash(json_t *o, const char *k, char out[ES_HASH_HEX + 1], const char **why)
{
	if (get_str(o, k, out, ES_HASH_HEX + 1, ES_HASH_HEX, why) ||
	    !es_is_hash_hex(out, ES_HASH_HEX))
		return -1;
	return 0;
}

static int get_ts(json_t *o, const char *k, char out[ES_TS_LEN + 1], const char **why)
{
	int64_t us;

	if (get_str(o, k, out, ES_TS_LEN + 1, ES_TS_LEN, why) || es_ts_parse(out, ES_TS_LEN, &us))
		return -1;
	return 0;
}

/* The anchor: its fields, and that they agree with each other. A purge
 * deletes the oldest archived segments, whole, so its range starts at seq
 * 1 and holds one event per seq and from 1 to that many segments. */
static int parse_purge(json_t *o, struct es_archive_purge *p, const char **why)
{
	if (!json_is_object(o)) {
		*why = "purged";
		return -1;
	}
	if (get_u64(o, "first_seq", &p->first_seq, why) ||
	    get_u64(o, "last_seq", &p->last_seq, why) ||
	    get_hash(o, "last_hash", p->last_hash, why) ||
	    get_ts(o, "last_ts", p->last_ts, why) || get_u64(o, "events", &p->events, why) ||
	    get_u64(o, "segments", &p->segments, why) ||
	    get_u64(o, "raw_bytes", &p->raw_bytes, why) || get_u64(o, "bytes", &p->bytes, why) ||
	    get_ts(o, "purged_at", p->purged_at, why))
		return -1;
	*why = "first_seq";
	if (p->first_seq != 1)
		return -1;
	*why = "last_seq";
	if (p->last_seq < p->first_seq)
		return -1;
	*why = "events";
	if (p->events != p->last_seq - p->first_seq + 1)
		return -1;
	*why = "segments";
	if (p->segments == 0 || p->segments > p->events)
		return -1;
	return 0;
}

static int parse_seg(json_t *o, struct es_archive_seg *e, const char **why)
{
	char file[64], dir[PATH_MAX], transform[32];
	uint64_t level;

	memset(e, 0, sizeof(*e));
	if (get_str(o, "file", file, sizeof(file), 0, why) ||
	    get_str(o, "dir", dir, sizeof(dir), 0, why) ||
	    get_u64(o, "first_seq", &e->first_seq, why) ||
	    get_u64(o, "last_seq", &e->last_seq, why) ||
	    get_ts(o, "first_ts", e->first_ts, why) || get_ts(o, "last_ts", e->last_ts, why) ||
	    get_hash(o, "prev_hash", e->prev_hash, why) ||
	    get_hash(o, "last_hash", e->last_hash, why) || get_u64(o, "events", &e->events, why) ||
	    get_u64(o, "raw_bytes", &e->raw_bytes, why) || get_u64(o, "bytes", &e->bytes, why) ||
	    get_hash(o, "sha256", e->sha256, why) || get_u64(o, "level", &level, why) ||
	    get_str(o, "transform", transform, sizeof(transform), 0, why) ||
	    get_ts(o, "archived_at", e->archived_at, why))
		return -1;
	*why = "transform";
	if (strcmp(transform, ES_ARCHIVE_DERIVE) == 0)
		e->verbatim = 0;
	else if (strcmp(transform, ES_ARCHIVE_VERBATIM) == 0)
		e->verbatim = 1;
	else
		return -1;
	*why = "file";
	if (strchr(file, '/') || file[0] == '.' || !dir[0])
		return -1;
	*why = "seq range or event count";
	if (e->first_seq == 0 || e->last_seq < e->first_seq ||
	    e->events != e->last_seq - e->first_seq + 1)
		return -1;
	e->level = (int)level;
	e->file = strdup(file);
	e->dir = strdup(dir);
	if (!e->file || !e->dir) {
		seg_release(e);
		*why = "out of memory";
		return -1;
	}
	return 0;
}

/* Check the entries follow each other and the anchor. */
static int check_contiguous(const struct es_archive *a, const char **why, size_t *at)
{
	struct es_head h;

	es_archive_start(a, &h);
	for (size_t i = 0; i < a->n; i++) {
		const struct es_archive_seg *e = &a->segs[i];
		*at = i;
		if (e->first_seq != h.seq + 1) {
			*why = "first_seq does not follow the previous entry";
			return -1;
		}
		if (memcmp(e->prev_hash, h.hash, ES_HASH_HEX) != 0) {
			*why = "prev_hash is not the previous entry's last_hash";
			return -1;
		}
		h.seq = e->last_seq;
		memcpy(h.hash, e->last_hash, ES_HASH_HEX + 1);
	}
	return 0;
}

static int parse_manifest(char *text, size_t len, struct es_archive *a, const char *path,
			  struct es_error *err)
{
	char *p = text, *end = text + len;
	unsigned long lineno = 0;
	const char *why = NULL;
	int header = 0;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_error_t jerr;
		json_t *o;
		int oom;
		lineno++;
		if (!nl)
			return es_fail(err, ES_CORRUPT, "%s: line %lu: no final newline", path, lineno);
		o = es_json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr, &oom);
		p = nl + 1;
		if (oom)
			return es_fail(err, ES_IO, "%s: out of memory", path);
		if (!o)
			return es_fail(err, ES_CORRUPT, "%s: line %lu: %s", path, lineno, jerr.text);
		why = NULL;
		if (!header) {
			json_t *f = json_object_get(o, "format"), *v = json_object_get(o, "version");
			if (!json_is_string(f) || strcmp(json_string_value(f), MANIFEST_FORMAT) != 0 ||
			    !json_is_integer(v) || json_integer_value(v) != MANIFEST_VERSION)
				why = "not an es-archive MANIFEST of version 1";
			header = 1;
		} else if (json_object_get(o, "purged")) {
			if (a->purged || a->n > 0)
				why = "\"purged\" must come once, before the segments";
			else if (parse_purge(json_object_get(o, "purged"), &a->purge, &why) == 0)
				a->purged = 1, why = NULL;
		} else {
			struct es_archive_seg e;
			if (parse_seg(o, &e, &why) == 0) {
				why = es_archive_add(a, &e) != 0 ? "out of memory" : NULL;
				seg_release(&e);
			}
		}
		json_decref(o);
		if (why && strcmp(why, "out of memory") == 0) /* parse_seg, es_archive_add */
			return es_fail(err, ES_IO, "%s: out of memory", path);
		if (why)
			return es_fail(err, ES_CORRUPT, "%s: line %lu: bad or missing \"%s\"", path,
				       lineno, why);
	}
	if (!header)
		return es_fail(err, ES_CORRUPT, "%s: empty", path);
	size_t at = 0;
	if (check_contiguous(a, &why, &at))
		return es_fail(err, ES_CORRUPT, "%s: entry %s: %s", path, a->segs[at].file, why);
	return 0;
}

const char *es_archive_load_reason(const char *storedir, const char *msg)
{
	char path[PATH_MAX];

	es_archive_manifest_path(storedir, path, sizeof(path));
	return es_msg_after(msg, path);
}

int es_archive_load(const char *storedir, struct es_archive **out, struct es_error *err)
{
	char path[PATH_MAX];
	struct stat st;
	struct es_archive *a;
	size_t len;
	char *text;
	int fd, rc;

	*out = NULL;
	es_archive_manifest_path(storedir, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		return es_fail_errno(err, ES_IO, "cannot stat '%s'", path);
	}
	close(fd);
	/* Read by name: a MANIFEST replaced meanwhile is simply newer. */
	text = es_read_file(path, &len);
	if (!text)
		return es_fail_errno(err, ES_IO, "cannot read '%s'", path);
	a = calloc(1, sizeof(*a));
	if (!a) {
		free(text);
		return es_fail(err, ES_IO, "out of memory");
	}
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	a->size = st.st_size;
	a->mtime = st.st_mtim;
	rc = parse_manifest(text, len, a, path, err);
	free(text);
	if (rc) {
		es_archive_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

static int add_line(struct es_buf *b, json_t *o)
{
	char *s = es_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int rc;

	json_decref(o);
	if (!s)
		return -1;
	rc = es_buf_adds(b, s) || es_buf_addc(b, '\n');
	free(s);
	return rc;
}

#define SETI(o, k, v) json_object_set_new(o, k, json_integer((json_int_t)(v)))
#define SETS(o, k, v) json_object_set_new(o, k, json_string(v))

static json_t *seg_json(const struct es_archive_seg *e)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (SETS(o, "file", e->file) || SETS(o, "dir", e->dir) ||
	    SETI(o, "first_seq", e->first_seq) || SETI(o, "last_seq", e->last_seq) ||
	    SETS(o, "first_ts", e->first_ts) || SETS(o, "last_ts", e->last_ts) ||
	    SETS(o, "prev_hash", e->prev_hash) || SETS(o, "last_hash", e->last_hash) ||
	    SETI(o, "events", e->events) || SETI(o, "raw_bytes", e->raw_bytes) ||
	    SETI(o, "bytes", e->bytes) || SETS(o, "sha256", e->sha256) ||
	    SETI(o, "level", e->level) ||
	    SETS(o, "transform", e->verbatim ? ES_ARCHIVE_VERBATIM : ES_ARCHIVE_DERIVE) ||
	    SETS(o, "archived_at", e->archived_at)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *purge_json(const struct es_archive_purge *p)
{
	json_t *o = json_object(), *w = json_object();

	if (!o || !w || SETI(o, "first_seq", p->first_seq) || SETI(o, "last_seq", p->last_seq) ||
	    SETS(o, "last_hash", p->last_hash) || SETS(o, "last_ts", p->last_ts) ||
	    SETI(o, "events", p->events) || SETI(o, "segments", p->segments) ||
	    SETI(o, "raw_bytes", p->raw_bytes) || SETI(o, "bytes", p->bytes) ||
	    SETS(o, "purged_at", p->purged_at) || json_object_set_new(w, "purged", o)) {
		json_decref(o);
		json_decref(w);
		return NULL;
	}
	return w;
}

int es_archive_write(const char *storedir, const struct es_archive *a, struct es_error *err)
{
	struct es_buf b = ES_BUF_INIT;
	char path[PATH_MAX];
	json_t *h = json_object();
	int bad = !h || SETS(h, "format", MANIFEST_FORMAT) || SETI(h, "version", MANIFEST_VERSION) ||
		  add_line(&b, h);

	if (!bad && a->purged)
		bad = add_line(&b, purge_json(&a->purge));
	for (size_t i = 0; !bad && i < a->n; i++)
		bad = add_line(&b, seg_json(&a->segs[i]));
	if (bad) {
		es_buf_release(&b);
		return es_fail(err, ES_IO, "out of memory");
	}
	es_archive_manifest_path(storedir, path, sizeof(path));
	bad = es_write_file_atomic(path, b.p, b.len, 0644);
	es_buf_release(&b);
	if (bad)
		return es_fail_errno(err, ES_IO, "cannot write '%s'", path);
	return 0;
}

/* ---- lookups ---- */

const struct es_archive_seg *es_archive_find_seq(const struct es_archive *a, uint64_t seq)
{
	size_t lo = 0, hi = a ? a->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->segs[mid].last_seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (a && lo < a->n && a->segs[lo].first_seq <= seq)
		return &a->segs[lo];
	return NULL;
}

const struct es_archive_seg *es_archive_find(const struct es_archive *a, uint64_t seg)
{
	const struct es_archive_seg *e = es_archive_find_seq(a, seg);

	return e && e->first_seq == seg ? e : NULL;
}

void es_archive_start(const struct es_archive *a, struct es_head *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->hash, ES_GENESIS, ES_HASH_HEX + 1);
	if (a && a->purged) {
		h->seq = a->purge.last_seq;
		memcpy(h->hash, a->purge.last_hash, ES_HASH_HEX + 1);
		es_ts_parse(a->purge.last_ts, ES_TS_LEN, &h->ts);
	}
}

void es_archive_end(const struct es_archive *a, struct es_head *h)
{
	const struct es_archive_seg *e;

	es_archive_start(a, h);
	if (!a || a->n == 0)
		return;
	e = &a->segs[a->n - 1];
	h->seq = e->last_seq;
	memcpy(h->hash, e->last_hash, ES_HASH_HEX + 1);
	es_ts_parse(e->last_ts, ES_TS_LEN, &h->ts);
	h->seg = e->first_seq;
	h->end = e->raw_bytes;
}

uint64_t es_archive_purged_seq(const struct es_store *s)
{
	return s->archive && s->archive->purged ? s->archive->purge.last_seq : 0;
}

int es_archive_pos_purged(const struct es_store *s, int rc, const struct es_pos *pos)
{
	uint64_t purged = es_archive_purged_seq(s);

	return purged > 0 && (rc == 1 || (rc == 0 && pos->seq <= purged));
}

int es_archive_head_matches(const struct es_store *s, const struct es_head *h)
{
	struct es_head e;

	if (!s->archive)
		return 0;
	es_archive_end(s->archive, &e);
	if (e.seq == 0 || h->seq != e.seq || memcmp(h->hash, e.hash, ES_HASH_HEX) != 0)
		return 0;
	/* Every archived segment purged: the end is the anchor, which keeps
	 * no position (the head's record is gone; its hash names it). */
	return s->archive->n == 0 || (h->seg == e.seg && h->end == e.end);
}

static void dir_path(const char *storedir, const char *dir, char *out, size_t n)
{
	if (dir[0] == '/')
		snprintf(out, n, "%s", dir);
	else
		snprintf(out, n, "%s/%s", storedir, dir);
}

void es_archive_seg_path(const char *storedir, const struct es_archive_seg *e, char *out,
			 size_t n)
{
	char d[PATH_MAX];

	dir_path(storedir, e->dir, d, sizeof(d));
	snprintf(out, n, "%s/%s", d, e->file);
}

/* The name for messages: relative to the store when it is inside. */
/* ---- es-archive: archiving, finishing, purging ---- */

void es_archive_opts_init(struct es_archive_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->level = ES_ARCHIVE_LEVEL_DEFAULT;
	o->jobs = 1;
}

struct run {
	struct es_store *s;
	const struct es_archive_opts *o;
	struct es_archive *a;         /* our copy of the MANIFEST */
	char arcdir[PATH_MAX];        /* DIR/archive */
	char dest[PATH_MAX];          /* where new files go */
	char dest_rec[PATH_MAX];      /* "dir" as the MANIFEST records it */
	int lock_fd;
	struct es_archive_stats *st;
	struct es_error *err;
	struct job *dry;              /* --dry-run: what would be archived */
	size_t ndry;
	struct es_error later;        /* damage met after the segments to archive */
	char *to_pending;             /* what the last run was putting in --to */
};

static void act(struct run *r, enum es_archive_act what, const struct es_archive_seg *e,
		const char *path)
{
	if (r->o->act)
		r->o->act(r->o->arg, what, e, path);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int mkdir_synced(const char *path, struct es_error *err)
{
	char parent[PATH_MAX + 4];

	if (mkdir(path, 0755) == 0) {
		/* the new directory, and its parent, which now names it */
		snprintf(parent, sizeof(parent), "%s/..", path);
		if (es_fsync_dir(path) != 0 || es_fsync_dir(parent) != 0)
			return es_fail_errno(err, ES_IO, "cannot sync '%s'", path);
		return 0;
	}
	if (errno != EEXIST)
		return es_fail_errno(err, ES_IO, "cannot create '%s'", path);
	return 0;
}

/* One es-archive at a time: archive/lock. The writers' lock (es_store_lock)
 * is taken only for the short steps that change log/. */
static int archive_lock(struct run *r)
{
	char path[PATH_MAX + 8];

	if (mkdir_synced(r->arcdir, r->err))
		return r->err->code;
	snprintf(path, sizeof(path), "%s/lock", r->arcdir);
	r->lock_fd = es_open(path, O_RDWR | O_CREAT, 0644);
	if (r->lock_fd < 0)
		return es_fail_errno(r->err, ES_IO, "cannot open '%s'", path);
	if (flock(r->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return es_fail_errno(r->err, ES_IO, "cannot lock '%s'", path);
	if (r->o->no_wait)
		return es_fail(r->err, ES_IO, "another es-archive is running on '%s' (it holds '%s')",
			       r->s->dir, path);
	act(r, ES_ACT_WAITING, NULL, path);
	while (flock(r->lock_fd, LOCK_EX) != 0)
		if (errno != EINTR)
			return es_fail_errno(r->err, ES_IO, "cannot lock '%s'", path);
	return 0;
}

/* The last record of a log segment: seq, hash, ts. *empty when none. */
struct tail {
	int empty;
	uint64_t seq;
	char hash[ES_HASH_HEX + 1];
	int64_t ts;
};

static int log_tail(struct es_store *s, uint64_t seg, uint64_t end, struct tail *t,
		    struct es_error *err)
{
	char path[PATH_MAX], *buf = NULL;
	size_t want = 1 << 16;
	int fd, rc = 0;

	memset(t, 0, sizeof(*t));
	t->empty = 1;
	if (end == 0)
		return 0;
	es_store_seg_path(s, seg, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	for (;;) {
		uint64_t from = end > want ? end - want : 0;
		size_t n = (size_t)(end - from);
		char *nb = realloc(buf, n + 1), *nl;
		struct es_rec r;
		const char *why;
		if (!nb) {
			rc = es_fail(err, ES_IO, "out of memory");
			break;
		}
		buf = nb;
		if (es_pread_full(fd, buf, n, (off_t)from) != (ssize_t)n) {
			rc = es_fail_errno(err, ES_IO, "cannot read '%s'", path);
			break;
		}
		if (buf[n - 1] != '\n') {
			rc = es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: no newline at its end",
				     (unsigned long long)seg);
			break;
		}
		nl = n >= 2 ? memrchr(buf, '\n', n - 1) : NULL;
		if (!nl && from > 0 && want < ((size_t)ES_LINE_MAX_DEFAULT << 1)) {
			want *= 4;
			continue;
		}
		size_t st = nl ? (size_t)(nl + 1 - buf) : 0;
		if (es_rec_parse(buf + st, n - 1 - st, 0, &r, &why) != 0 ||
		    es_ts_parse(r.ts, ES_TS_LEN, &t->ts) != 0) {
			rc = es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: offset %llu: %s",
				     (unsigned long long)seg, (unsigned long long)(from + st), why);
			break;
		}
		t->empty = 0;
		t->seq = r.seq;
		memcpy(t->hash, r.hash, ES_HASH_HEX);
		t->hash[ES_HASH_HEX] = '\0';
		break;
	}
	free(buf);
	close(fd);
	return rc;
}

static uint64_t path_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* One segment to archive. */
struct job {
	struct run *r;
	uint64_t seg;
	char prev[ES_HASH_HEX + 1];
	uint64_t raw_size;
	uint64_t last_seq;            /* of the log segment (select_segments) */
	int64_t last_ts;
	struct es_archive_seg e;
	char file[64];
	char tmp[PATH_MAX + 32], final[PATH_MAX + 64];
	int rc;
	struct es_error err;
};

/* Check the segment (chain from j->prev, seq, ts order, ends on a closed
 * batch), fill j->e, and (unless verbatim) leave out "seq" and "hash". */
static int strip_segment(struct job *j, const char *raw, size_t rawlen, struct es_chain *chain,
			 struct es_buf *out, struct es_error *err)
{
	const char *p = raw, *end = raw + rawlen;
	char prev[ES_HASH_HEX + 1];
	uint64_t seq = j->seg;
	int64_t last_ts = INT64_MIN, t;
	int more = 0, verbatim = j->r->o->verbatim;

	memcpy(prev, j->prev, ES_HASH_HEX + 1);
	if (rawlen == 0)
		return es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: empty", (unsigned long long)j->seg);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *why = NULL;
		size_t n = nl ? (size_t)(nl - p) : 0, pfx;
		struct es_rec r;
		if (!nl)
			why = "the last line has no newline";
		else if (es_rec_parse(p, n, 0, &r, &why) != 0)
			;
		else if (r.seq != seq)
			why = "seq is not the next one";
		else if (!es_rec_check(chain, prev, p, &r))
			why = "hash mismatch";
		else if (es_ts_parse(r.ts, ES_TS_LEN, &t) != 0 || t < last_ts)
			why = "ts out of order";
		else
			why = NULL;
		if (why)
			return es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: offset %llu: seq %llu: "
				       "%s; not archived", (unsigned long long)j->seg,
				       (unsigned long long)(p - raw), (unsigned long long)seq, why);
		if (seq == j->seg)
			memcpy(j->e.first_ts, r.ts, ES_TS_LEN);
		memcpy(j->e.last_ts, r.ts, ES_TS_LEN);
		if (!verbatim) {
			for (pfx = 7; p[pfx] >= '0' && p[pfx] <= '9'; pfx++)
				;
			pfx++; /* the ',' before "stream" */
			if (es_buf_addc(out, '{') || es_buf_add(out, p + pfx, r.body_len - pfx) ||
			    es_buf_add(out, "}\n", 2))
				return es_fail(err, ES_IO, "out of memory");
		}
		memcpy(prev, r.hash, ES_HASH_HEX);
		last_ts = t;
		more = r.more;
		seq++;
		p = nl + 1;
	}
	if (more)
		return es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: ends inside a batch; not archived",
			       (unsigned long long)j->seg);
	j->e.first_seq = j->seg;
	j->e.last_seq = seq - 1;
	j->e.events = seq - j->seg;
	memcpy(j->e.prev_hash, j->prev, ES_HASH_HEX + 1);
	memcpy(j->e.last_hash, prev, ES_HASH_HEX + 1);
	j->e.raw_bytes = rawlen;
	return 0;
}

static int write_temp(struct job *j, const void *data, size_t len, struct es_error *err)
{
	int fd = es_open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot create '%s'", j->tmp);
	if (es_write_all(fd, data, len) != 0 || es_fsync(fd) != 0) {
		es_fail_errno(err, ES_IO, "cannot write '%s'", j->tmp);
		close(fd);
		return err->code;
	}
	/* Drop the pages, so the check below reads what the disk holds. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (close(fd) != 0)
		return es_fail_errno(err, ES_IO, "cannot write '%s'", j->tmp);
	return 0;
}

/* Read the written file back and compare the restored lines with the
 * original segment, byte for byte. */
static int verify_temp(struct job *j, const char *raw, size_t rawlen, struct es_error *err)
{
	struct es_archive_rd *rd;
	const char *line;
	size_t len;
	uint64_t off;
	int rc;

	if (es_archive_rd_open_path(&rd, j->tmp, &j->e, ES_ARD_SHA256, err))
		return err->code;
	while ((rc = es_archive_rd_next(rd, &line, &len, &off, err)) == 1)
		if (off + len >= rawlen || raw[off + len] != '\n' || memcmp(raw + off, line, len)) {
			rc = -es_fail(err, ES_IO, "%s: offset %llu: the restored record differs "
				      "from the original", j->tmp, (unsigned long long)off);
			break;
		}
	es_archive_rd_close(rd);
	if (rc < 0)
		return es_error_prefix(err, "checking the archived copy failed");
	return 0;
}

static int compress_job(struct job *j, struct es_error *err)
{
	const struct es_archive_opts *o = j->r->o;
	char path[PATH_MAX];
	struct es_buf stripped = ES_BUF_INIT;
	struct es_chain *chain = es_chain_new();
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	char *raw = NULL, *comp = NULL;
	size_t rawlen = 0, clen, bound;
	const char *src;
	size_t srclen;
	int rc = 0;

	if (!chain || !cc) {
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	es_store_seg_path(j->r->s, j->seg, path, sizeof(path));
	raw = es_read_file(path, &rawlen);
	if (!raw) {
		rc = es_fail_errno(err, ES_IO, "cannot read '%s'", path);
		goto out;
	}
	if ((rc = strip_segment(j, raw, rawlen, chain, &stripped, err)))
		goto out;
	src = o->verbatim ? raw : stripped.p;
	srclen = o->verbatim ? rawlen : stripped.len;
	bound = ZSTD_compressBound(srclen);
	comp = malloc(bound);
	if (!comp) {
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, o->level);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	clen = ZSTD_compress2(cc, comp, bound, src, srclen);
	if (ZSTD_isError(clen)) {
		rc = es_fail(err, ES_IO, "zstd: %s", ZSTD_getErrorName(clen));
		goto out;
	}
	es_buf_release(&stripped);
	j->e.bytes = clen;
	j->e.level = o->level;
	j->e.verbatim = o->verbatim;
	if (es_sha256_hex(comp, clen, j->e.sha256)) {
		rc = es_fail(err, ES_IO, "sha256 failed");
		goto out;
	}
	if ((rc = write_temp(j, comp, clen, err)))
		goto out;
	free(comp);
	comp = NULL;
	rc = verify_temp(j, raw, rawlen, err);
out:
	if (rc && j->tmp[0])
		unlink(j->tmp);
	es_buf_release(&stripped);
	free(raw);
	free(comp);
	ZSTD_freeCCtx(cc);
	es_chain_free(chain);
	return rc;
}

static void *worker(void *arg)
{
	struct job *j = arg;

	j->rc = compress_job(j, &j->err);
	return NULL;
}

/* Remove log copies of archived segments, under the writers' lock. */
static int remove_log_copies(struct run *r, const uint64_t *segs, size_t n, int verify)
{
	struct es_store *s = r->s;
	char path[PATH_MAX], logdir[PATH_MAX];
	int rc = 0;

	if (es_store_lock(s, r->err))
		return r->err->code;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct es_archive_seg *e = es_archive_find(r->a, segs[i]);
		es_store_seg_path(s, segs[i], path, sizeof(path));
		if (!e) {
			rc = es_fail(r->err, ES_CORRUPT, "log/%020llu.ndjson: overlaps the archive, "
				     "which has no segment starting there; nothing removed",
				     (unsigned long long)segs[i]);
			break;
		}
		if (verify) {
			/* Left by an interrupted run: check before removing. */
			char *orig, *rest = NULL;
			size_t olen, rlen;
			orig = es_read_file(path, &olen);
			if (!orig) {
				if (errno == ENOENT)
					continue;
				rc = es_fail_errno(r->err, ES_IO, "cannot read '%s'", path);
				break;
			}
			rc = es_archive_restore_all(s->dir, e, ES_ARD_SHA256, &rest, &rlen, r->err);
			if (rc == 0 && (rlen != olen || memcmp(orig, rest, olen) != 0))
				rc = es_fail(r->err, ES_CORRUPT, "log/%020llu.ndjson: differs from its "
					     "archived copy; nothing removed",
					     (unsigned long long)segs[i]);
			free(orig);
			free(rest);
			if (rc)
				break;
		}
		es_crash_point("archive-before-unlink");
		if (unlink(path) != 0 && errno != ENOENT) {
			rc = es_fail_errno(r->err, ES_IO, "cannot remove '%s'", path);
			break;
		}
		if (verify)
			act(r, ES_ACT_FINISHED, e, path);
	}
	snprintf(logdir, sizeof(logdir), "%s/log", s->dir);
	if (rc == 0 && es_fsync_dir(logdir) != 0)
		rc = es_fail_errno(r->err, ES_IO, "cannot sync '%s'", logdir);
	es_store_unlock(s);
	return rc;
}

static int is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Whether the temp name n ("...tmp.PID") is of a process still running. */
static int tmp_owner_alive(const char *n, size_t len)
{
	const char *d = n + len;

	while (d > n && d[-1] >= '0' && d[-1] <= '9')
		d--;
	long pid = strtol(d, NULL, 10);
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Leftovers of interrupted runs in an archive directory: temps, and files
 * the MANIFEST does not list whose segment is still in log/ (archiving was
 * cut before the MANIFEST) or was purged (purging was cut after it). A --to
 * directory outside the store may be shared by other stores: there only
 * temps of processes gone are removed, and unlisted files are left alone
 * (check_existing replaces one of this store's own). */
static int clean_dir(struct run *r, const char *dir, const char *rec)
{
	struct es_head start;
	struct dirent **de;
	int changed = 0, rc = 0, nde = scandir(dir, &de, NULL, alphasort);
	int shared = strcmp(rec, ES_ARCHIVE_DIR) != 0;

	if (nde < 0)
		return errno == ENOENT ? 0 : es_fail_errno(r->err, ES_IO, "cannot read '%s'", dir);
	es_archive_start(r->a, &start);
	for (int i = 0; i < nde && rc == 0; i++) {
		const char *n = de[i]->d_name;
		size_t len = strlen(n);
		char path[PATH_MAX + 300], logp[PATH_MAX];
		int drop = 0;
		if (len > 13 && strncmp(n, "MANIFEST.tmp.", 13) == 0 && is_digits(n + 13, len - 13))
			drop = 1;
		else if (len > 35 && is_digits(n, 20) && strncmp(n + 20, ".ndjson.zst.tmp.", 16) == 0)
			drop = !shared || !tmp_owner_alive(n, len);
		else if (shared)
			continue;
		else if (len == 31 && is_digits(n, 20) && strcmp(n + 20, ".ndjson.zst") == 0) {
			uint64_t seq = strtoull(n, NULL, 10);
			const struct es_archive_seg *e = es_archive_find(r->a, seq);
			if (e && strcmp(e->dir, rec) == 0)
				continue;
			es_store_seg_path(r->s, seq, logp, sizeof(logp));
			if (!e && (seq <= start.seq || access(logp, F_OK) == 0))
				drop = 1;
		}
		if (!drop)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, n);
		act(r, ES_ACT_CLEANED, NULL, path);
		if (r->o->dry_run)
			continue;
		if (unlink(path) != 0 && errno != ENOENT)
			rc = es_fail_errno(r->err, ES_IO, "cannot remove '%s'", path);
		changed = 1;
	}
	for (int i = 0; i < nde; i++)
		free(de[i]);
	free(de);
	if (rc == 0 && changed && es_fsync_dir(dir) != 0)
		rc = es_fail_errno(r->err, ES_IO, "cannot sync '%s'", dir);
	return rc;
}

/* What an interrupted run left: finish it first. */
static int finish_pending(struct run *r)
{
	struct es_store *s = r->s;
	struct es_head end;
	uint64_t *copies;
	size_t n = 0;
	int rc = 0;

	es_archive_end(r->a, &end);
	copies = malloc((s->nsegs + 1) * sizeof(*copies));
	if (!copies)
		return es_fail(r->err, ES_IO, "out of memory");
	for (size_t i = 0; i < s->nsegs; i++)
		if (s->segs[i] <= end.seq)
			copies[n++] = s->segs[i];
	if (n > 0 && r->o->dry_run) {
		for (size_t i = 0; i < n; i++) {
			char path[PATH_MAX];
			es_store_seg_path(s, copies[i], path, sizeof(path));
			act(r, ES_ACT_FINISHED, es_archive_find(r->a, copies[i]), path);
		}
	} else if (n > 0) {
		rc = remove_log_copies(r, copies, n, 1);
	}
	free(copies);
	if (rc == 0)
		rc = clean_dir(r, r->arcdir, ES_ARCHIVE_DIR);
	if (rc == 0 && strcmp(r->dest_rec, ES_ARCHIVE_DIR) != 0)
		rc = clean_dir(r, r->dest, r->dest_rec);
	return rc;
}

/* The log segments to archive: sealed, every event older than the cutoff,
 * in order from the end of the archive. Rolls the active segment when it
 * qualifies too. Under the writers' lock (unless dry_run). */
static int select_segments(struct run *r, struct job **jobs, size_t *njobs)
{
	struct es_store *s = r->s;
	struct es_head end;
	char prev[ES_HASH_HEX + 1];
	uint64_t next;
	size_t n = 0;
	int rc = 0;

	*jobs = NULL;
	*njobs = 0;
	if (!r->o->dry_run && es_store_lock(s, r->err))
		return r->err->code;
	es_archive_end(r->a, &end);
	next = end.seq + 1;
	memcpy(prev, end.hash, ES_HASH_HEX + 1);
	*jobs = calloc(s->nsegs + 1, sizeof(**jobs));
	if (!*jobs) {
		rc = es_fail(r->err, ES_IO, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < s->nsegs; i++) {
		uint64_t seg = s->segs[i], size;
		char path[PATH_MAX];
		int active = i + 1 == s->nsegs;
		struct tail t;
		if (seg < next)
			continue; /* a copy of an archived segment (dry run) */
		es_store_seg_path(s, seg, path, sizeof(path));
		size = path_size(path);
		if (active && (rc = es_store_visible_end(s, seg, &size, r->err)))
			break;
		if ((rc = log_tail(s, seg, size, &t, r->err))) {
			/* damaged: what comes before it is archived first, and
			 * then the damage is reported (r->later) */
			if (rc == ES_CORRUPT && n > 0) {
				r->later = *r->err;
				es_error_clear(r->err);
				rc = 0;
			}
			break;
		}
		if (t.empty || t.ts >= r->o->before)
			break;
		if (seg != next) {
			rc = es_fail(r->err, ES_CORRUPT, "log/%020llu.ndjson: starts at seq %llu, but "
				     "the archive ends at seq %llu", (unsigned long long)seg,
				     (unsigned long long)seg, (unsigned long long)next - 1);
			break;
		}
		if (active) {
			act(r, ES_ACT_ROLLED, NULL, path);
			if (!r->o->dry_run &&
			    (rc = es_store_prepare_append(s, (size_t)s->segment_size + 1, r->err)))
				break;
		}
		struct job *j = &(*jobs)[n++];
		j->r = r;
		j->seg = seg;
		j->raw_size = size;
		j->last_seq = t.seq;
		j->last_ts = t.ts;
		memcpy(j->prev, prev, ES_HASH_HEX + 1);
		memcpy(prev, t.hash, ES_HASH_HEX + 1);
		next = t.seq + 1;
		if (active)
			break;
	}
	*njobs = n;
out:
	if (!r->o->dry_run)
		es_store_unlock(s);
	return rc;
}

/* A --to directory may be shared by other stores (clean_dir leaves what
 * it does not list alone there). A file is put in place there without
 * replacing anything, except what this store's own interrupted run left:
 * archive/to-pending names the file a run is about to put there, durably
 * before it does, so the next run knows that one is its own, and no other.
 * A store copied with cp -a holds the same records, so content alone
 * cannot tell. */
#define TO_PENDING "to-pending"

static void to_pending_path(const struct run *r, char *out, size_t n)
{
	snprintf(out, n, "%s/" TO_PENDING, r->arcdir);
}

/* What the last run of this store said it was about to put in place. */
static int to_pending_load(struct run *r)
{
	char path[PATH_MAX + 16], *text;
	size_t len;

	to_pending_path(r, path, sizeof(path));
	if (!(text = es_read_file(path, &len)))
		return errno == ENOENT ? 0 : es_fail_errno(r->err, ES_IO, "cannot read '%s'", path);
	if (len > 0 && text[len - 1] == '\n')
		text[len - 1] = '\0';
	r->to_pending = text;
	return 0;
}

static int to_pending_write(struct run *r, const char *final)
{
	char path[PATH_MAX + 16];
	int fd;

	to_pending_path(r, path, sizeof(path));
	fd = es_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return es_fail_errno(r->err, ES_IO, "cannot write '%s'", path);
	if (es_write_all(fd, final, strlen(final)) != 0 || es_write_all(fd, "\n", 1) != 0 ||
	    es_fsync(fd) != 0) {
		es_fail_errno(r->err, ES_IO, "cannot write '%s'", path);
		close(fd);
		return r->err->code;
	}
	if (close(fd) != 0 || es_fsync_dir(path) != 0)
		return es_fail_errno(r->err, ES_IO, "cannot write '%s'", path);
	return 0;
}

/* Whether the file where j's goes is this store's own leftover: named by
 * the last run's to-pending, and holding j's records. */
static int own_leftover(struct run *r, struct job *j)
{
	struct es_archive_rd *rd;
	struct es_error e2;
	const char *line;
	size_t len;
	uint64_t off;
	int rc;

	if (!r->to_pending || strcmp(r->to_pending, j->final) != 0)
		return 0;
	if (es_archive_rd_open_path(&rd, j->final, &j->e, 0, &e2) != 0)
		return 0;
	while ((rc = es_archive_rd_next(rd, &line, &len, &off, &e2)) == 1)
		;
	es_archive_rd_close(rd);
	return rc == 0;
}

/* Put j's file in place. */
static int put_in_place(struct run *r, struct job *j)
{
	int shared = strcmp(r->dest_rec, ES_ARCHIVE_DIR) != 0, marked = 0, rc;

	if (!shared || (access(j->final, F_OK) == 0 && own_leftover(r, j))) {
		rc = es_rename(j->tmp, j->final);
	} else {
		if ((rc = to_pending_write(r, j->final)) != 0)
			return rc;
		marked = 1;
		rc = es_rename_noreplace(j->tmp, j->final);
	}
	if (rc == 0)
		return 0;
	int e = errno;
	if (marked) { /* nothing of this store's was put there */
		char path[PATH_MAX + 16];
		to_pending_path(r, path, sizeof(path));
		unlink(path);
	}
	errno = e;
	if (errno == EEXIST)
		es_fail(r->err, ES_IO, "'%s' is already there, and not this store's: does another "
			"store archive to '%s'? Give each store a --to directory of its own",
			j->final, r->dest);
	else
		es_fail_errno(r->err, ES_IO, "cannot rename '%s'", j->tmp);
	unlink(j->tmp);
	return r->err->code;
}

/* Rename into place, list in the MANIFEST, then remove the log/ copy. */
static int commit_job(struct run *r, struct job *j)
{
	const struct es_archive_seg *e;

	es_crash_point("archive-after-write");
	if (put_in_place(r, j))
		return r->err->code;
	if (es_fsync_dir(j->final) != 0)
		return es_fail_errno(r->err, ES_IO, "cannot sync '%s'", r->dest);
	es_ts_format(es_now_us(), j->e.archived_at);
	if (es_archive_add(r->a, &j->e) != 0)
		return es_fail(r->err, ES_IO, "out of memory");
	if (es_archive_write(r->s->dir, r->a, r->err)) {
		seg_release(&r->a->segs[--r->a->n]);
		return r->err->code;
	}
	es_crash_point("archive-after-manifest");
	if (remove_log_copies(r, &j->seg, 1, 0))
		return r->err->code;
	e = &r->a->segs[r->a->n - 1];
	act(r, ES_ACT_ARCHIVED, e, j->final);
	r->st->segments++;
	r->st->events += e->events;
	r->st->raw_bytes += e->raw_bytes;
	r->st->bytes += e->bytes;
	return 0;
}

static int archive_segments(struct run *r)
{
	struct job *jobs;
	size_t n, jn = (size_t)(r->o->jobs > 0 ? r->o->jobs : 1);
	uint64_t total = 0, done = 0;
	double t0 = now_s();
	int rc;

	if ((rc = select_segments(r, &jobs, &n)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		snprintf(j->file, sizeof(j->file), "%020llu.ndjson.zst", (unsigned long long)j->seg);
		snprintf(j->final, sizeof(j->final), "%s/%s", r->dest, j->file);
		snprintf(j->tmp, sizeof(j->tmp), "%s.tmp.%ld", j->final, (long)getpid());
		j->e.file = j->file;
		j->e.dir = r->dest_rec;
		total += j->raw_size;
	}
	if (r->o->dry_run) {
		for (size_t i = 0; i < n; i++) {
			struct es_archive_seg *e = &jobs[i].e;
			e->first_seq = jobs[i].seg;
			e->raw_bytes = jobs[i].raw_size;
			e->last_seq = jobs[i].last_seq;
			e->events = jobs[i].last_seq - jobs[i].seg + 1;
			es_ts_format(jobs[i].last_ts, e->last_ts);
			act(r, ES_ACT_ARCHIVED, e, jobs[i].final);
		}
		r->dry = jobs; /* what purge() would find archived */
		r->ndry = n;
		jobs = NULL;
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i += jn) {
		size_t m = n - i < jn ? n - i : jn;
		pthread_t th[256];
		int started[256] = {0};
		for (size_t k = 1; k < m; k++)
			started[k] = pthread_create(&th[k], NULL, worker, &jobs[i + k]) == 0;
		worker(&jobs[i]);
		for (size_t k = 1; k < m; k++) {
			if (started[k])
				pthread_join(th[k], NULL);
			else
				worker(&jobs[i + k]);
		}
		for (size_t k = 0; k < m; k++) {
			struct job *j = &jobs[i + k];
			if (rc == 0 && j->rc) {
				*r->err = j->err;
				rc = j->rc;
			} else if (rc == 0) {
				rc = commit_job(r, j);
				done += j->raw_size;
				if (r->o->progress)
					r->o->progress(r->o->arg, done, total);
			}
			if (rc)
				unlink(j->tmp);
		}
	}
out:
	r->st->seconds = now_s() - t0;
	free(jobs);
	if (rc == 0 && r->later.code) {
		*r->err = r->later;
		rc = r->later.code;
	}
	return rc;
}

static int purge(struct run *r)
{
	struct es_archive *a = r->a;
	struct es_archive_purge p;
	char (*paths)[PATH_MAX] = NULL;
	size_t k = 0;
	int rc = 0;

	while (k < a->n) {
		int64_t t;
		if (es_ts_parse(a->segs[k].last_ts, ES_TS_LEN, &t) || t >= r->o->purge_before)
			break;
		k++;
	}
	if (r->o->dry_run) {
		for (size_t i = 0; i < k; i++) {
			char path[PATH_MAX];
			es_archive_seg_path(r->s->dir, &a->segs[i], path, sizeof(path));
			act(r, ES_ACT_PURGED, &a->segs[i], path);
		}
		/* and what --before would have archived first */
		for (size_t i = 0; k == a->n && i < r->ndry; i++) {
			if (r->dry[i].last_ts >= r->o->purge_before)
				break;
			act(r, ES_ACT_PURGED, &r->dry[i].e, r->dry[i].final);
		}
		return 0;
	}
	if (k == 0)
		return 0;
	paths = malloc(k * sizeof(*paths));
	if (!paths)
		return es_fail(r->err, ES_IO, "out of memory");
	memset(&p, 0, sizeof(p));
	if (a->purged)
		p = a->purge;
	else
		p.first_seq = a->segs[0].first_seq;
	for (size_t i = 0; i < k; i++) {
		const struct es_archive_seg *e = &a->segs[i];
		es_archive_seg_path(r->s->dir, e, paths[i], PATH_MAX);
		p.events += e->events;
		p.raw_bytes += e->raw_bytes;
		p.bytes += e->bytes;
		p.segments++;
	}
	p.last_seq = a->segs[k - 1].last_seq;
	memcpy(p.last_hash, a->segs[k - 1].last_hash, ES_HASH_HEX + 1);
	memcpy(p.last_ts, a->segs[k - 1].last_ts, ES_TS_LEN + 1);
	es_ts_format(es_now_us(), p.purged_at);
	/* The new MANIFEST first: a file it no longer lists is gone for
	 * readers, and the next run deletes it if this one cannot. */
	struct es_archive na = *a;
	na.segs = a->segs + k;
	na.n = a->n - k;
	na.purged = 1;
	na.purge = p;
	if ((rc = es_archive_write(r->s->dir, &na, r->err)))
		goto out;
	es_crash_point("archive-purge-after-manifest");
	for (size_t i = 0; i < k; i++) {
		act(r, ES_ACT_PURGED, &a->segs[i], paths[i]);
		if (unlink(paths[i]) != 0 && errno != ENOENT) {
			rc = es_fail_errno(r->err, ES_IO, "cannot remove '%s'", paths[i]);
			break;
		}
		if (es_fsync_dir(paths[i]) != 0) {
			rc = es_fail_errno(r->err, ES_IO, "cannot sync the directory of '%s'", paths[i]);
			break;
		}
		r->st->purged_segments++;
	}
	for (size_t i = 0; i < k; i++)
		seg_release(&a->segs[i]);
	memmove(a->segs, a->segs + k, (a->n - k) * sizeof(*a->segs));
	a->n -= k;
	a->purged = 1;
	a->purge = p;
out:
	free(paths);
	return rc;
}

static int setup_dest(struct run *r)
{
	const char *to = r->o->to;
	char real[PATH_MAX];

	snprintf(r->arcdir, sizeof(r->arcdir), "%s/" ES_ARCHIVE_DIR, r->s->dir);
	if (!to) {
		snprintf(r->dest, sizeof(r->dest), "%s", r->arcdir);
		snprintf(r->dest_rec, sizeof(r->dest_rec), "%s", ES_ARCHIVE_DIR);
		return 0;
	}
	if (!realpath(to, real))
		return es_fail_errno(r->err, ES_IO, "--to: cannot use '%s'", to);
	snprintf(r->dest, sizeof(r->dest), "%s", real);
	snprintf(r->dest_rec, sizeof(r->dest_rec), "%s", real);
	/* The store's own archive/ is recorded relative, so the store can move. */
	if (realpath(r->arcdir, real) && strcmp(real, r->dest) == 0)
		snprintf(r->dest_rec, sizeof(r->dest_rec), "%s", ES_ARCHIVE_DIR);
	return 0;
}

int es_archive_run(struct es_store *s, const struct es_archive_opts *o,
		   struct es_archive_stats *st, struct es_error *err)
{
	struct run r;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(st, 0, sizeof(*st));
	r.s = s;
	r.o = o;
	r.st = st;
	r.err = err;
	r.lock_fd = -1;
	if (o->level < 1 || o->level > ZSTD_maxCLevel())
		return es_fail(err, ES_USAGE, "--level: must be between 1 and %d", ZSTD_maxCLevel());
	if ((rc = setup_dest(&r)))
		return rc;
	if (!o->dry_run && (rc = archive_lock(&r)))
		goto out;
	es_stop_point("archive-locked");
	if ((rc = to_pending_load(&r)))
		goto out;
	/* Under the archive lock, the MANIFEST is ours to change. */
	if ((rc = es_store_list_segments(s, err)) || (rc = es_archive_load(s->dir, &r.a, err)))
		goto out;
	if (!r.a && !(r.a = calloc(1, sizeof(*r.a)))) {
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	if ((rc = finish_pending(&r)))
		goto out;
	if (o->has_before && (rc = archive_segments(&r)))
		goto out;
	if (o->has_purge)
		rc = purge(&r);
out:
	if (rc == 0 && !o->dry_run) {
		/* every file to-pending named is listed now, or was never put
		 * there (what this run or an interrupted one was putting) */
		char path[PATH_MAX + 16];
		to_pending_path(&r, path, sizeof(path));
		unlink(path);
	}
	free(r.to_pending);
	free(r.dry);
	es_archive_free(r.a);
	if (r.lock_fd >= 0)
		close(r.lock_fd);
	return rc;
}

/* ---- es-verify ---- */

struct vctx {
	es_archive_report_fn report;
	void *arg;
	struct es_archive_vstat *st;
	int lost; /* a segment could not be read through: versions after it unknown */
};

__attribute__((format(printf, 5, 6)))
static void finding(struct vctx *v, enum es_archive_finding kind, const char *file, uint64_t seq,
		    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kind == ES_AV_FAILURE)
		v->st->failures++;
	else if (kind == ES_AV_WARNING)
		v->st->warnings++;
	if (v->report)
		v->report(v->arg, kind, file, seq, msg);
}

/* What a segment not read through held is not known: each stream's
 * version starts anew after it, unchecked (one failure, not one per
 * stream that goes on). */
static void versions_lost(struct vctx *v, json_t *versions)
{
	json_object_clear(versions);
	v->lost = 1;
}

/* Every record of one archived segment, restored. */
static int verify_seg(struct es_store *s, struct vctx *v, const struct es_archive_seg *e,
		      json_t *versions, int purged, int64_t *last_ts, struct es_error *err)
{
	struct es_archive_rd *rd;
	char name[PATH_MAX], path[PATH_MAX];
	struct es_buf key = ES_BUF_INIT;
	const char *line, *why;
	size_t len;
	uint64_t off;
	struct es_rec r;
	int rc, first = 1;
	struct stat sb;

	es_archive_seg_name(e, name, sizeof(name));
	es_archive_seg_path(s->dir, e, path, sizeof(path));
	if (stat(path, &sb) != 0) {
		finding(v, ES_AV_FAILURE, name, e->first_seq, "missing: %s", strerror(errno));
		versions_lost(v, versions);
		return 0;
	}
	if (es_archive_rd_open(&rd, s->dir, e, ES_ARD_SHA256, err))
		return err->code;
	while ((rc = es_archive_rd_next(rd, &line, &len, &off, err)) == 1) {
		int64_t t;
		json_t *jv;
		if (es_rec_parse(line, len, ES_REC_BODY, &r, &why) != 0) {
			finding(v, ES_AV_FAILURE, name, e->first_seq + v->st->records, "%s", why);
			versions_lost(v, versions);
			rc = 0;
			break;
		}
		if (es_ts_parse(r.ts, ES_TS_LEN, &t) != 0 || t < *last_ts)
			finding(v, ES_AV_FAILURE, name, r.seq, "ts out of order");
		if (first && memcmp(r.ts, e->first_ts, ES_TS_LEN) != 0)
			finding(v, ES_AV_FAILURE, name, r.seq, "first ts %.27s, the MANIFEST says %s",
				r.ts, e->first_ts);
		if (r.seq == e->last_seq && memcmp(r.ts, e->last_ts, ES_TS_LEN) != 0)
			finding(v, ES_AV_FAILURE, name, r.seq, "last ts %.27s, the MANIFEST says %s",
				r.ts, e->last_ts);
		first = 0;
		*last_ts = t;
		jv = json_object_getn(versions, r.stream, r.stream_len);
		if (jv && r.version != (uint64_t)json_integer_value(jv) + 1)
			finding(v, ES_AV_FAILURE, name, r.seq, "stream %.*s: version %llu after %llu",
				(int)r.stream_len, r.stream, (unsigned long long)r.version,
				(unsigned long long)json_integer_value(jv));
		else if (!jv && r.version != 1 && !purged && !v->lost)
			finding(v, ES_AV_FAILURE, name, r.seq, "stream %.*s: first version is %llu",
				(int)r.stream_len, r.stream, (unsigned long long)r.version);
		if (json_object_setn_new(versions, r.stream, r.stream_len,
					 json_integer((json_int_t)r.version))) {
			rc = -es_fail(err, ES_IO, "out of memory");
			break;
		}
		v->st->records++;
		v->st->raw_bytes += len + 1;
	}
	es_archive_rd_close(rd);
	es_buf_release(&key);
	if (rc < 0 && err->code == ES_CORRUPT) {
		/* the message names the file already */
		finding(v, ES_AV_FAILURE, name, 0, "%s", es_msg_after(err->msg, name));
		es_error_clear(err);
		versions_lost(v, versions);
		rc = 0;
	}
	if (rc < 0)
		return -rc;
	v->st->segments++;
	v->st->bytes += e->bytes;
	return 0;
}

/* The first line of a file into *buf (malloc'd, without '\n'); 1 when the
 * file is empty. */
static int first_line(const char *path, char **buf, size_t *len, struct es_error *err)
{
	size_t want = 1 << 16;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	for (;;) {
		char *b = malloc(want), *nl;
		ssize_t n;
		if (!b) {
			close(fd);
			return es_fail(err, ES_IO, "out of memory");
		}
		n = es_pread_full(fd, b, want, 0);
		if (n < 0) {
			free(b);
			close(fd);
			return es_fail_errno(err, ES_IO, "cannot read '%s'", path);
		}
		nl = memchr(b, '\n', (size_t)n);
		if (nl || (size_t)n < want) {
			close(fd);
			if (n == 0) {
				free(b);
				return 1;
			}
			*buf = b;
			*len = nl ? (size_t)(nl - b) : (size_t)n;
			return 0;
		}
		free(b);
		want *= 4;
	}
}

/* The log must go on where the archive ends. */
static int verify_log_join(struct es_store *s, struct vctx *v, const struct es_archive *a,
			   struct es_error *err)
{
	const struct es_head *end = &v->st->end;
	char path[PATH_MAX], name[64], *line = NULL;
	size_t len = 0;
	int rc = 0;

	for (size_t i = 0; i < s->nsegs; i++) {
		uint64_t seg = s->segs[i];
		snprintf(name, sizeof(name), "log/%020llu.ndjson", (unsigned long long)seg);
		es_store_seg_path(s, seg, path, sizeof(path));
		if (seg <= end->seq) {
			const struct es_archive_seg *e = es_archive_find(a, seg);
			char *orig = NULL, *rest = NULL;
			size_t olen, rlen;
			finding(v, ES_AV_WARNING, name, seg, "also archived (an es-archive was "
				"interrupted; the next run removes this copy)");
			if (!e) {
				finding(v, ES_AV_FAILURE, name, seg, "overlaps the archive, which has no "
					"segment starting there");
				continue;
			}
			orig = es_read_file(path, &olen);
			if (orig && es_archive_restore_all(s->dir, e, 0, &rest, &rlen, err) == 0 &&
			    (olen != rlen || memcmp(orig, rest, olen) != 0))
				finding(v, ES_AV_FAILURE, name, seg, "differs from its archived copy");
			es_error_clear(err);
			free(orig);
			free(rest);
			continue;
		}
		if (seg != end->seq + 1 && !a) {
			finding(v, ES_AV_FAILURE, name, seg, "the log begins at seq %llu, but "
				ES_ARCHIVE_DIR "/" ES_ARCHIVE_MANIFEST " is missing: nothing "
				"archived or purged holds seq 1 to %llu", (unsigned long long)seg,
				(unsigned long long)(seg - 1));
			return 0;
		}
		if (seg != end->seq + 1) {
			finding(v, ES_AV_FAILURE, name, seg, "the log goes on at seq %llu, but the "
				"archive ends at seq %llu", (unsigned long long)seg,
				(unsigned long long)end->seq);
			return 0;
		}
		rc = first_line(path, &line, &len, err);
		if (rc == 1)
			return 0;
		if (rc)
			return rc;
		struct es_rec r;
		const char *why;
		struct es_chain *c = es_chain_new();
		if (!c)
			rc = es_fail(err, ES_IO, "out of memory");
		else if (es_rec_parse(line, len, 0, &r, &why) != 0 || r.seq != seg)
			finding(v, ES_AV_FAILURE, name, seg, "no record with seq %llu at its start",
				(unsigned long long)seg);
		else if (!es_rec_check(c, end->hash, line, &r))
			finding(v, ES_AV_FAILURE, name, seg, "does not chain on the archive's last "
				"hash %s", end->hash);
		es_chain_free(c);
		free(line);
		return rc;
	}
	return 0;
}

/* Archive files the MANIFEST does not list. */
static void verify_strays(struct es_store *s, struct vctx *v, const struct es_archive *a)
{
	char dir[PATH_MAX];
	struct dirent **de;
	struct es_head start;
	int nde;

	es_archive_start(a, &start);
	snprintf(dir, sizeof(dir), "%s/" ES_ARCHIVE_DIR, s->dir);
	nde = scandir(dir, &de, NULL, alphasort);
	for (int i = 0; i < nde; i++) {
		const char *n = de[i]->d_name;
		const struct es_archive_seg *e;
		char name[300], logp[PATH_MAX];
		uint64_t seq;
		if (strlen(n) != 31 || !is_digits(n, 20) || strcmp(n + 20, ".ndjson.zst") != 0)
			continue;
		seq = strtoull(n, NULL, 10);
		e = es_archive_find(a, seq);
		if (e && strcmp(e->dir, ES_ARCHIVE_DIR) == 0)
			continue;
		snprintf(name, sizeof(name), ES_ARCHIVE_DIR "/%s", n);
		/* what clean_dir() removes: never the only copy of a segment */
		es_store_seg_path(s, seq, logp, sizeof(logp));
		if (e)
			finding(v, ES_AV_WARNING, name, 0, "the MANIFEST lists this segment in "
				"'%s' (es-archive keeps this copy)", e->dir);
		else if (seq <= start.seq || access(logp, F_OK) == 0)
			finding(v, ES_AV_WARNING, name, 0, "not listed in the MANIFEST (left by an "
				"interrupted es-archive; the next run removes it)");
		else
			finding(v, ES_AV_WARNING, name, 0, "not listed in the MANIFEST, and its "
				"segment is not in log/: es-archive keeps it");
	}
	for (int i = 0; i < nde; i++)
		free(de[i]);
	if (nde >= 0)
		free(de);
}

static int verify_locked(struct es_store *s, es_archive_report_fn report, void *arg,
			 struct es_archive_vstat *st, struct es_error *err);

/* Under archive/lock, shared: an archiving run (which holds it alone)
 * moves segments from log/ to archive/ while the check would read them. */
int es_archive_verify(struct es_store *s, int no_wait, es_archive_report_fn report, void *arg,
		      struct es_archive_vstat *st, struct es_error *err)
{
	char path[PATH_MAX + 32];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s/lock", s->dir, ES_ARCHIVE_DIR);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno != ENOENT)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	while (fd >= 0 && flock(fd, LOCK_SH | (no_wait ? LOCK_NB : 0)) != 0)
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK)
				return es_fail(err, ES_IO, "another es-archive is running on '%s' (it holds "
					       "'%s')", s->dir, path);
			errno = e;
			return es_fail_errno(err, ES_IO, "cannot lock '%s'", path);
		}
	rc = verify_locked(s, report, arg, st, err);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int verify_locked(struct es_store *s, es_archive_report_fn report, void *arg,
			 struct es_archive_vstat *st, struct es_error *err)
{
	struct vctx v = {report, arg, st, 0};
	struct es_archive *a = NULL;
	struct es_head h;
	json_t *versions;
	int rc;

	memset(st, 0, sizeof(*st));
	es_archive_start(NULL, &st->end);
	rc = es_archive_load(s->dir, &a, err);
	if (rc == ES_CORRUPT) {
		finding(&v, ES_AV_FAILURE, ES_ARCHIVE_DIR "/" ES_ARCHIVE_MANIFEST, 0, "%s",
			es_archive_load_reason(s->dir, err->msg));
		es_error_clear(err);
		return 0;
	}
	if (rc || (rc = es_store_list_segments(s, err)))
		return rc;
	if (!a) {
		/* nothing archived: then the log must begin at seq 1 */
		if ((rc = verify_log_join(s, &v, NULL, err)) == 0)
			verify_strays(s, &v, NULL);
		return rc;
	}
	if (a->purged) {
		st->purged_seq = a->purge.last_seq;
		memcpy(st->purged_hash, a->purge.last_hash, ES_HASH_HEX + 1);
		finding(&v, ES_AV_NOTE, ES_ARCHIVE_DIR "/" ES_ARCHIVE_MANIFEST, a->purge.last_seq,
			"seq %llu-%llu purged at %s (%llu segments, %llu events, last ts %s): "
			"checked from the anchor, seq %llu hash %s",
			(unsigned long long)a->purge.first_seq, (unsigned long long)a->purge.last_seq,
			a->purge.purged_at, (unsigned long long)a->purge.segments,
			(unsigned long long)a->purge.events, a->purge.last_ts,
			(unsigned long long)a->purge.last_seq, a->purge.last_hash);
	}
	versions = json_object();
	if (!versions) {
		es_archive_free(a);
		return es_fail(err, ES_IO, "out of memory");
	}
	es_archive_start(a, &h);
	for (size_t i = 0; i < a->n && rc == 0; i++)
		rc = verify_seg(s, &v, &a->segs[i], versions, a->purged, &h.ts, err);
	json_decref(versions);
	es_archive_end(a, &st->end);
	if (rc == 0)
		rc = verify_log_join(s, &v, a, err);
	if (rc == 0)
		verify_strays(s, &v, a);
	es_archive_free(a);
	return rc;
}

/* ---- --list ---- */

int es_archive_list(struct es_store *s, int (*cb)(void *arg, const struct es_archive_item *it),
		    void *arg, struct es_error *err)
{
	const struct es_archive *a;
	struct es_archive_item it;
	struct es_head end;
	int rc;

	if ((rc = es_store_list_segments(s, err)))
		return rc;
	a = s->archive;
	es_archive_end(a, &end);
	if (a && a->purged) {
		memset(&it, 0, sizeof(it));
		it.tier = "purged";
		snprintf(it.file, sizeof(it.file), "-");
		it.first_seq = a->purge.first_seq;
		it.last_seq = a->purge.last_seq;
		it.events = a->purge.events;
		it.bytes = a->purge.bytes;
		it.raw_bytes = a->purge.raw_bytes;
		memcpy(it.last_ts, a->purge.last_ts, ES_TS_LEN + 1);
		if (cb(arg, &it))
			return 0;
	}
	for (size_t i = 0; a && i < a->n; i++) {
		const struct es_archive_seg *e = &a->segs[i];
		memset(&it, 0, sizeof(it));
		it.tier = e->dir[0] == '/' ? "cold" : "archive";
		es_archive_seg_name(e, it.file, sizeof(it.file));
		it.first_seq = e->first_seq;
		it.last_seq = e->last_seq;
		it.events = e->events;
		it.bytes = e->bytes;
		it.raw_bytes = e->raw_bytes;
		memcpy(it.last_ts, e->last_ts, ES_TS_LEN + 1);
		if (cb(arg, &it))
			return 0;
	}
	for (size_t i = 0; i < s->nsegs; i++) {
		uint64_t seg = s->segs[i], size;
		char path[PATH_MAX];
		int active = i + 1 == s->nsegs;
		struct tail t;
		memset(&it, 0, sizeof(it));
		es_store_seg_path(s, seg, path, sizeof(path));
		size = path_size(path);
		it.tier = seg <= end.seq ? "pending" : active ? "active" : "log";
		snprintf(it.file, sizeof(it.file), "log/%020llu.ndjson", (unsigned long long)seg);
		it.first_seq = seg;
		it.bytes = it.raw_bytes = size;
		if (active && (rc = es_store_visible_end(s, seg, &size, err)))
			return rc;
		if ((rc = log_tail(s, seg, size, &t, err)))
			return rc;
		if (!t.empty) {
			it.last_seq = t.seq;
			it.events = t.seq - seg + 1;
			es_ts_format(t.ts, it.last_ts);
		}
		if (cb(arg, &it))
			return 0;
	}
	return 0;
}
