#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "input.h"
#include "io.h"
#include "json.h"
#include "record.h"
#include "timeq.h"

const char *es_store_dir(const char *opt)
{
	const char *env = getenv("ES_STORE");

	if (opt && *opt)
		return opt;
	if (env && *env)
		return env;
	return ES_STORE_DEFAULT;
}

#define ES_STORE_NAME_ROOM 128

static void path_of(const struct es_store *s, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", s->dir, name);
}

void es_store_seg_path(const struct es_store *s, uint64_t first, char *out, size_t n)
{
	snprintf(out, n, "%s/log/%020llu.ndjson", s->dir, (unsigned long long)first);
}

static int write_config(struct es_store *s, struct es_error *err)
{
	char path[PATH_MAX], ts[ES_TS_LEN + 1];
	struct es_buf b = ES_BUF_INIT;
	int rc;

	es_ts_format(es_now_us(), ts);
	path_of(s, "store.json", path, sizeof(path));
	if (es_buf_addf(&b, "{\"format\":\"es-store\",\"version\":%d,\"created\":\"%s\","
			"\"segment_size\":%llu,\"snapshot_every\":0}\n",
			ES_STORE_FORMAT_VERSION, ts, (unsigned long long)s->segment_size)) {
		es_buf_release(&b);
		return es_fail(err, ES_IO, "out of memory");
	}
	rc = es_write_file_atomic(path, b.p, b.len, 0644);
	es_buf_release(&b);
	if (rc != 0)
		return es_fail_errno(err, ES_IO, "cannot write '%s'", path);
	return 0;
}

static int read_config(struct es_store *s, struct es_error *err)
{
	char path[PATH_MAX];
	json_error_t jerr;
	int oom;
	json_t *conf, *v;

	path_of(s, "store.json", path, sizeof(path));
	conf = es_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr, &oom);
	if (!conf) {
		if (oom)
			return es_fail(err, ES_IO, "%s: out of memory", path);
		if (access(path, F_OK) != 0)
			return es_fail_errno(err, ES_IO, "not a store: '%s'", path);
		return es_fail(err, ES_CORRUPT, "%s: %s", path, jerr.text);
	}
	/* (damage to the store, as es-verify reports it: not bad input) */
	v = json_object_get(conf, "format");
	if (!json_is_string(v) || strcmp(json_string_value(v), "es-store") != 0) {
		json_decref(conf);
		return es_fail(err, ES_CORRUPT, "%s: not an es-store marker", path);
	}
	v = json_object_get(conf, "version");
	if (!json_is_integer(v) || json_integer_value(v) != ES_STORE_FORMAT_VERSION) {
		json_decref(conf);
		return es_fail(err, ES_CORRUPT, "%s: unsupported store version", path);
	}
	v = json_object_get(conf, "segment_size");
	if (json_is_integer(v) && json_integer_value(v) >= 4096)
		s->segment_size = (uint64_t)json_integer_value(v);
	v = json_object_get(conf, "snapshot_every");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		s->snapshot_every = (uint64_t)json_integer_value(v);
	json_decref(conf);
	return 0;
}

static int take_lock(struct es_store *s, struct es_error *err)
{
	char path[PATH_MAX];

	if (s->locked)
		return 0;
	path_of(s, "lock", path, sizeof(path));
	for (;;) {
		struct stat held, named;
		if (s->lock_fd < 0) {
			s->lock_fd = es_open(path, O_RDWR | O_CREAT, 0644);
			if (s->lock_fd < 0)
				return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
		}
		while (flock(s->lock_fd, LOCK_EX) != 0)
			if (errno != EINTR)
				return es_fail_errno(err, ES_IO, "cannot lock '%s/lock'", s->dir);
		/* A lock on a file that is no longer the store's "lock" (removed
		 * or replaced, as a stale-lock clean-up might) is not the one
		 * readers take shared (es_store_visible_end) nor the one older
		 * binaries take: lock the file that is named now. (Writers of
		 * this version also exclude each other by the directory, below.) */
		int named_rc = fstat(s->lock_fd, &held) == 0 ? stat(path, &named) : -1;
		if (named_rc == 0 && named.st_ino == held.st_ino && named.st_dev == held.st_dev)
			break;
		if (named_rc != 0 && errno != ENOENT) {
			es_fail_errno(err, ES_IO, "cannot stat '%s'", path);
			flock(s->lock_fd, LOCK_UN);
			return err->code;
		}
		close(s->lock_fd);
		s->lock_fd = -1;
	}
	/* And the directory itself, which no clean-up removes while it holds
	 * the store: were "lock" removed while this writer holds it, the
	 * next writer would lock a new file, but not the directory. (The
	 * file stays the lock older versions and readers know.) */
	int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), bad = dfd < 0;
	while (!bad && flock(dfd, LOCK_EX) != 0)
		bad = errno != EINTR;
	if (bad) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		flock(s->lock_fd, LOCK_UN);
		errno = e;
		return es_fail_errno(err, ES_IO, "cannot lock '%s'", s->dir);
	}
	s->dirlock = dfd + 1;
	s->locked = 1;
	return 0;
}

static void drop_dirlock(struct es_store *s)
{
	if (s->dirlock)
		close(s->dirlock - 1); /* releases its flock */
	s->dirlock = 0;
}

static int mkdir_p(const char *path, struct es_error *err)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return es_fail_errno(err, ES_IO, "cannot create '%s'", path);
	return 0;
}

static int create_store(struct es_store *s, struct es_error *err)
{
	char path[PATH_MAX];

	if (mkdir_p(s->dir, err))
		return err->code;
	if (take_lock(s, err))
		return err->code;
	path_of(s, "store.json", path, sizeof(path));
	if (access(path, F_OK) == 0)
		return 0; /* somebody else created it first */
	path_of(s, "log", path, sizeof(path));
	if (mkdir_p(path, err))
		return err->code;
	path_of(s, "quarantine", path, sizeof(path));
	if (mkdir_p(path, err))
		return err->code;
	if (write_config(s, err))
		return err->code;
	if (es_fsync_dir(s->dir) != 0)
		return es_fail_errno(err, ES_IO, "cannot sync '%s'", s->dir);
	return 0;
}

/* ---- bulk runs: index/unsynced ---- */

#define UNSYNCED "unsynced"

static int boot_id(char out[64])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, out, 63);
	close(fd);
	if (n < 16)
		return -1;
	out[n] = '\0';
	return 0;
}

int es_store_index_unsynced(const char *index_dir)
{
	char f[PATH_MAX + 16], now[64], *note;
	int same;

	snprintf(f, sizeof(f), "%s/" UNSYNCED, index_dir);
	note = es_read_file(f, NULL);
	if (!note)
		return errno == ENOENT ? 0 : 2;
	same = boot_id(now) == 0 && strcmp(note, now) == 0;
	free(note);
	return same ? 1 : 2;
}

/* A sync of an unsynced index failed: it must never be trusted again,
 * nor the sync retried (after a failed writeback Linux marks the pages
 * clean, so a second fdatasync could lie). A note that is no boot id
 * reads as one from an earlier boot: the next open rebuilds the index.
 * When even the note cannot be written, the index goes. */
static void distrust_index(struct es_store *s)
{
	static const char failed[] = "sync-failed\n";
	char dir[PATH_MAX], f[PATH_MAX + 16];

	path_of(s, "index", dir, sizeof(dir));
	snprintf(f, sizeof(f), "%s/" UNSYNCED, dir);
	if (es_write_file_atomic(f, failed, sizeof(failed) - 1, 0644) == 0)
		return;
	snprintf(f, sizeof(f), "%s/data.mdb", dir);
	unlink(f);
	es_fsync_dir(dir);
}

/* Remove the note, durably. */
static int drop_unsynced(struct es_store *s, struct es_error *err)
{
	char dir[PATH_MAX], f[PATH_MAX + 16];

	path_of(s, "index", dir, sizeof(dir));
	snprintf(f, sizeof(f), "%s/" UNSYNCED, dir);
	if ((unlink(f) != 0 && errno != ENOENT) || es_fsync_dir(dir) != 0)
		return es_fail_errno(err, ES_IO, "cannot remove '%s'", f);
	return 0;
}

/* Write the note, durably, before the first commit it covers: 0, -1 when
 * there is no boot id to record (then every commit stays synced), or an
 * error. */
static int make_note(struct es_store *s, struct es_error *err)
{
	char dir[PATH_MAX], f[PATH_MAX + 16], id[64];

	if (boot_id(id) != 0)
		return -1;
	path_of(s, "index", dir, sizeof(dir));
	snprintf(f, sizeof(f), "%s/" UNSYNCED, dir);
	if (es_write_file_atomic(f, id, strlen(id), 0644) != 0)
		return es_fail_errno(err, ES_IO, "cannot write '%s'", f);
	return 0;
}

int es_store_bulk_begin(struct es_store *s, struct es_error *err)
{
	int rc;

	if (s->bulk || !s->index)
		return 0;
	if ((rc = make_note(s, err)))
		return rc < 0 ? 0 : rc;
	if (es_index_set_nosync(s->index, 1, err) || es_index_hold(s->index, 1, err))
		return err->code;
	s->bulk = 1;
	return 0;
}

int es_store_lazy_begin(struct es_store *s, struct es_error *err)
{
	int rc;

	if (s->lazy || s->bulk || !s->index || !s->index_hot || !s->locked)
		return 0;
	if ((rc = make_note(s, err)))
		return rc < 0 ? 0 : rc;
	if (es_index_set_nosync(s->index, 1, err))
		return err->code;
	s->lazy = 1;
	return 0;
}

int es_store_bulk_end(struct es_store *s, struct es_error *err)
{
	if (!s->bulk)
		return 0;
	s->bulk = s->lazy = 0;
	if (!s->index)
		return 0;
	/* the held commit first: what the sync flushes */
	if (es_index_hold(s->index, 0, err) || es_index_sync(s->index, err)) {
		distrust_index(s);
		return err->code;
	}
	if (es_index_set_nosync(s->index, 0, err))
		return err->code;
	es_crash_point("before-unsynced");
	return drop_unsynced(s, err);
}

/* LMDB sizes index/lock.mdb with ftruncate and writes it through a shared
 * map: on a full disk the first store to a hole kills the process with
 * SIGBUS. Give the file real blocks first, so a full disk is an error.
 * -1 with errno when there is no room; 0 otherwise (or not ours to judge). */
static int index_lock_room(const char *dir, int writable)
{
	char f[PATH_MAX + 16];
	int fd, e;

	if (writable && mkdir(dir, 0755) != 0 && errno != EEXIST)
		return 0; /* es_index_open() tells */
	snprintf(f, sizeof(f), "%s/lock.mdb", dir);
	fd = open(f, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return 0;
	e = posix_fallocate(fd, 0, 16384);
	close(fd);
	if (e == ENOSPC || e == EFBIG || e == EDQUOT) {
		errno = e;
		return -1;
	}
	return 0;
}

int es_store_open_index(struct es_store *s, int writable, struct es_error *err)
{
	char path[PATH_MAX];
	int torn;

	if (s->index)
		es_index_close(s->index);
	s->index = NULL;
	if (writable)
		s->flags |= ES_OPEN_WRITE;

	path_of(s, "index", path, sizeof(path));
	if (writable && !s->hot_known) {
		/* busy: written less than a second ago (es_store_lazy_begin) */
		struct stat st;
		struct timespec now;
		char f[PATH_MAX + 16];
		snprintf(f, sizeof(f), "%s/data.mdb", path);
		if (stat(f, &st) == 0 && clock_gettime(CLOCK_REALTIME, &now) == 0) {
			int64_t ns = ((int64_t)now.tv_sec - st.st_mtim.tv_sec) * 1000000000 +
				     (now.tv_nsec - st.st_mtim.tv_nsec);
			s->index_hot = ns >= 0 && ns < 1000000000;
		}
		s->hot_known = 1;
	}
	if (index_lock_room(path, writable) != 0) {
		if (!writable)
			return 0; /* readers fall back to scanning the log */
		return es_fail_errno(err, ES_IO, "cannot make room for '%s/lock.mdb'", path);
	}
	/* not synced before the machine went down: maybe torn, rebuild it */
	torn = es_store_index_unsynced(path) == 2;
	/* (es_index_open says ES_CORRUPT when data.mdb is cut short) */
	if (!torn && es_index_open(&s->index, path, writable, err) == 0)
		return writable && (s->lazy || s->bulk) ? es_index_set_nosync(s->index, 1, err) : 0;
	if (torn)
		s->index_hot = 0; /* a rebuilt index starts synced */
	if (!writable) {
		s->index = NULL; /* readers fall back to scanning the log */
		es_error_clear(err);
		return 0;
	}
	if (!torn && err->code != ES_CORRUPT)
		return err->code; /* no memory, no space: nothing to throw away */
	/* A damaged index is derived data: start it again, under the lock so
	 * no other process is using it meanwhile. */
	if (take_lock(s, err))
		return err->code;
	if (torn && es_store_index_unsynced(path) != 2) {
		/* another writer rebuilt it while this one waited for the lock */
		es_error_clear(err);
		return es_index_open(&s->index, path, writable, err);
	}
	char f[PATH_MAX + 16];
	snprintf(f, sizeof(f), "%s/data.mdb", path);
	unlink(f);
	snprintf(f, sizeof(f), "%s/lock.mdb", path);
	unlink(f);
	es_error_clear(err);
	if (torn && drop_unsynced(s, err))
		return err->code;
	return es_index_open(&s->index, path, writable, err);
}

int es_store_exists(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/store.json", dir);
	return access(path, F_OK) == 0;
}

int es_store_open(struct es_store *s, const char *dir, int flags, struct es_error *err)
{
	char path[PATH_MAX];

	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
	s->active_fd = -1;
	s->read_fd = -1;
	s->flags = flags;
	s->segment_size = ES_SEGMENT_SIZE_DEFAULT;
	/* Every file of the store is dir and a name of fewer than
	 * ES_STORE_NAME_ROOM bytes: refuse a dir too long for those to fit
	 * in PATH_MAX here, rather than find their names cut short later. */
	if (strlen(dir) >= PATH_MAX - ES_STORE_NAME_ROOM)
		return es_fail(err, ES_IO, "store '%.40s...': path too long (%zu bytes; at most %d)",
			       dir, strlen(dir), PATH_MAX - ES_STORE_NAME_ROOM - 1);
	s->dir = strdup(dir);
	s->chain = es_chain_new();
	if (!s->dir || !s->chain)
		return es_fail(err, ES_IO, "out of memory");
	path_of(s, "store.json", path, sizeof(path));
	if ((flags & ES_OPEN_CREATE) && access(path, F_OK) != 0 && create_store(s, err))
		return err->code;
	if (read_config(s, err))
		return err->code;
	if (es_store_open_index(s, (flags & ES_OPEN_WRITE) != 0, err))
		return err->code;
	return es_store_list_segments(s, err);
}

void es_store_close(struct es_store *s)
{
	if (s->index)
		es_index_close(s->index);
	if (s->active_fd >= 0)
		close(s->active_fd);
	if (s->read_fd >= 0)
		close(s->read_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	drop_dirlock(s);
	es_chain_free(s->chain);
	es_archive_store_release(s);
	free(s->segs);
	free(s->dir);
	memset(s, 0, sizeof(*s));
	s->lock_fd = s->active_fd = s->read_fd = -1;
}

void es_store_unlock(struct es_store *s)
{
	struct es_error err = {0, ""};

	es_store_bulk_end(s, &err); /* its caller ends it and reports; this is a last resort */
	if (s->index)
		es_index_abort(s->index);
	if (s->active_fd >= 0)
		close(s->active_fd);
	s->active_fd = -1;
	if (s->locked)
		flock(s->lock_fd, LOCK_UN);
	drop_dirlock(s);
	s->locked = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int es_store_list_segments(struct es_store *s, struct es_error *err)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t cap = 16;
	DIR *d;

	path_of(s, "log", path, sizeof(path));
	free(s->segs);
	s->nsegs = 0;
	s->segs = malloc(cap * sizeof(*s->segs));
	if (!s->segs)
		return es_fail(err, ES_IO, "out of memory");
	d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return es_fail_errno(err, ES_IO, "cannot read '%s'", path);
	}
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		size_t i;
		if (strlen(n) != 27 || strcmp(n + 20, ".ndjson") != 0)
			continue;
		for (i = 0; i < 20 && n[i] >= '0' && n[i] <= '9'; i++)
			;
		if (i != 20)
			continue;
		if (s->nsegs == cap) {
			uint64_t *ns = realloc(s->segs, 2 * cap * sizeof(*ns));
			if (!ns) {
				closedir(d);
				return es_fail(err, ES_IO, "out of memory");
			}
			s->segs = ns;
			cap *= 2;
		}
		s->segs[s->nsegs++] = strtoull(n, NULL, 10);
	}
	closedir(d);
	qsort(s->segs, s->nsegs, sizeof(*s->segs), cmp_u64);
	/* After log/, never before: a segment archived meanwhile is then
	 * in the MANIFEST, which readers prefer (archive.h). */
	return es_archive_refresh(s, err);
}

/* Read the last line that ends before `end` in fd (with its '\n' excluded).
 * Returns 0 and the line in *buf (malloc'd), 1 when there is none, -1. */
static int read_last_line(int fd, uint64_t end, char **buf, size_t *len, uint64_t *start)
{
	size_t want = 4096;

	if (end == 0)
		return 1;
	for (;;) {
		uint64_t from = end > want ? end - want : 0;
		size_t n = (size_t)(end - from);
		char *b = malloc(n + 1), *nl;
		if (!b || es_pread_full(fd, b, n, (off_t)from) != (ssize_t)n) {
			free(b);
			return -1;
		}
		if (b[n - 1] != '\n') {
			free(b);
			return 1; /* no complete last line */
		}
		b[n - 1] = '\0';
		nl = memrchr(b, '\n', n - 1);
		if (nl || from == 0) {
			size_t off = nl ? (size_t)(nl + 1 - b) : 0;
			*len = n - 1 - off;
			memmove(b, b + off, *len + 1);
			*buf = b;
			*start = from + off;
			return 0;
		}
		free(b);
		if (want > (64u << 20))
			return -1;
		want *= 4;
	}
}

static uint64_t file_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Does the record ending at `end` in segment seg carry seq and hash? */
static int tail_matches(struct es_store *s, uint64_t seg, uint64_t end, const struct es_head *h)
{
	char path[PATH_MAX], *line = NULL;
	size_t len;
	uint64_t start;
	struct es_rec r;
	const char *why;
	int fd, ok = 0;

	es_store_seg_path(s, seg, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (file_size(fd) >= end && read_last_line(fd, end, &line, &len, &start) == 0 &&
	    es_rec_parse(line, len, 0, &r, &why) == 0 && r.seq == h->seq && !r.more &&
	    memcmp(r.hash, h->hash, ES_HASH_HEX) == 0)
		ok = 1;
	free(line);
	close(fd);
	return ok;
}

/* A segment that starts right (its first record is whole and carries the
 * seq of its name) but does not follow the one before: the damage is in the
 * sealed segment before it, never a torn tail. */
static const char gap_before[] = "seq is not the next one: the segment before lost its end";

/* State of a segment scan. */
struct scan {
	struct es_head head;    /* last complete batch */
	struct es_head cur;     /* last valid record, maybe mid-batch */
	int in_batch;           /* a sub-transaction is open */
	uint64_t bad_off;       /* where the scan stopped on bad data */
	const char *why;
	uint64_t bad_seq;
	int bad;
	int later_record;       /* a parseable record follows the bad point */
};

static int index_record(struct es_store *s, struct scan *sc, const char *line, size_t len,
			const struct es_rec *r, uint64_t seg, uint64_t off, struct es_error *err)
{
	struct es_buf stream = ES_BUF_INIT, id = ES_BUF_INIT;
	struct es_pos pos = {r->seq, seg, off, (uint32_t)(len + 1)};
	uint64_t v;
	int rc = 0, d = es_json_decode_string(&stream, r->stream, r->stream_len);

	if (d == 0)
		d = es_json_decode_string(&id, r->id, r->id_len);
	if (d == -2) {
		/* No memory is no damage: taken for it, a whole acknowledged
		 * record would be cut as a torn tail. */
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	if (d) {
		sc->why = "bad stream or id string";
		rc = 1;
		goto out;
	}
	if (es_index_version(s->index, stream.p, stream.len, &v) != 0) {
		rc = es_fail(err, ES_IO, "index: read error");
		goto out;
	}
	/* After a purge (es-archive), a stream's first event left may have any version. */
	if (r->version != v + 1 && !(v == 0 && es_archive_purged_seq(s) > 0)) {
		sc->why = "stream version is not the next one";
		rc = 1;
		goto out;
	}
	if (es_index_put_event(s->index, stream.p, stream.len, r->version, id.p, id.len, &pos, err))
		rc = err->code;
out:
	es_buf_release(&stream);
	es_buf_release(&id);
	(void)line;
	return rc;
}

/* Scan seg from offset `from`, chaining from sc->head; index what is valid.
 * Returns 0 (scan done, sc->bad tells), or an error status. */
static int scan_segment(struct es_store *s, uint64_t seg, uint64_t from, struct scan *sc,
			struct es_error *err)
{
	char path[PATH_MAX];
	struct es_input in;
	const char *line, *why, *pwhy;
	size_t len;
	struct es_rec r;
	int fd, rc, indexing = s->index != NULL;

	es_store_seg_path(s, seg, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	if (lseek(fd, (off_t)from, SEEK_SET) < 0 || es_input_fdopen(&in, fd, path, err)) {
		close(fd);
		return err->code ? err->code : es_fail_errno(err, ES_IO, "%s", path);
	}
	in.magic_checked = 1; /* a log segment is plain text */
	sc->cur = sc->head;
	sc->bad = 0;
	while ((rc = es_input_next(&in, &line, &len, err)) == 1) {
		uint64_t off = from + in.offset;
		int64_t t = 0;
		if (sc->bad) {
			/* After damage: is there a record further on? */
			if (!in.no_eol && es_rec_parse(line, len, 0, &r, &why) == 0)
				sc->later_record = 1;
			continue;
		}
		uint64_t at = sc->cur.seq + 1; /* the record's seq, once parsed */
		why = NULL;
		if (in.no_eol)
			why = "incomplete last line";
		else if (in.had_cr)
			why = "carriage return in record";
		else if (es_rec_parse(line, len, 0, &r, &pwhy) != 0)
			why = pwhy; /* pwhy is also set on success: keep why NULL then */
		else if ((at = r.seq) != sc->cur.seq + 1)
			why = off == 0 && r.seq == seg ? gap_before : "seq is not the next one";
		else if (off == 0 && r.seq != seg)
			why = "first seq does not match the segment name";
		else if (!es_rec_check(s->chain, sc->cur.hash, line, &r))
			why = "hash mismatch";
		else if (es_ts_parse(r.ts, ES_TS_LEN, &t) != 0 || t < sc->cur.ts)
			why = "ts out of order";
		if (!why && indexing) {
			if (!sc->in_batch && r.more) {
				if (es_index_sub_begin(s->index, err))
					goto fail;
				sc->in_batch = 1;
			}
			rc = index_record(s, sc, line, len, &r, seg, off, err);
			if (rc > 1)
				goto fail;
			if (rc == 1)
				why = sc->why;
		}
		if (why) {
			sc->bad = 1;
			sc->why = why;
			sc->bad_off = off;
			sc->bad_seq = at;
			continue;
		}
		sc->cur.seq = r.seq;
		sc->cur.ts = t;
		memcpy(sc->cur.hash, r.hash, ES_HASH_HEX);
		sc->cur.hash[ES_HASH_HEX] = '\0';
		sc->cur.seg = seg;
		sc->cur.end = off + len + 1;
		if (!r.more) {
			if (sc->in_batch && es_index_sub_end(s->index, 1, err))
				goto fail;
			sc->in_batch = 0;
			sc->head = sc->cur;
		}
	}
	es_input_close(&in);
	close(fd);
	if (rc < 0) {
		if (err->code != ES_DATA)
			return err->code;
		/* an over-long line: damage like any other */
		es_error_clear(err);
		if (!sc->bad) {
			sc->bad = 1;
			sc->why = "line too long";
			sc->bad_off = sc->cur.end;
			sc->bad_seq = sc->cur.seq + 1;
		}
	}
	if (!sc->bad && sc->cur.seq != sc->head.seq) {
		sc->bad = 1;
		sc->why = "batch without its end";
		sc->bad_off = sc->head.seg == seg ? sc->head.end : from;
		sc->bad_seq = sc->head.seq + 1;
	}
	if (sc->in_batch) {
		es_index_sub_end(s->index, 0, err);
		sc->in_batch = 0;
	}
	return 0;
fail:
	es_input_close(&in);
	close(fd);
	if (sc->in_batch)
		es_index_sub_end(s->index, 0, NULL);
	sc->in_batch = 0;
	return err->code;
}

static int quarantine(struct es_store *s, uint64_t seg, uint64_t cut, struct es_error *err)
{
	char path[PATH_MAX], qpath[PATH_MAX + 128];
	uint64_t size = file_size(s->active_fd);
	size_t n = (size_t)(size - cut);
	char *bytes = malloc(n ? n : 1);
	int rc;

	if (!bytes)
		return es_fail(err, ES_IO, "out of memory");
	if (es_pread_full(s->active_fd, bytes, n, (off_t)cut) != (ssize_t)n) {
		free(bytes);
		return es_fail_errno(err, ES_IO, "cannot read the torn tail");
	}
	path_of(s, "quarantine", path, sizeof(path));
	mkdir(path, 0755);
	snprintf(qpath, sizeof(qpath), "%s/%020llu.ndjson.%llu.%lld.torn", path,
		 (unsigned long long)seg, (unsigned long long)cut, (long long)es_now_us());
	rc = es_write_file_atomic(qpath, bytes, n, 0644);
	free(bytes);
	if (rc != 0)
		return es_fail_errno(err, ES_IO, "cannot write '%s'", qpath);
	/* Only once the cut bytes are safe is the segment shortened. */
	if (es_ftruncate(s->active_fd, (off_t)cut) != 0 || es_fdatasync(s->active_fd) != 0)
		return es_fail_errno(err, ES_IO, "cannot truncate the torn tail of '%s'",
				     (es_store_seg_path(s, seg, path, sizeof(path)), path));
	s->recovered_bytes += n;
	return 0;
}

static int corrupt(struct es_store *s, uint64_t seg, const struct scan *sc, struct es_error *err)
{
	return es_fail(err, ES_CORRUPT,
		       "log/%020llu.ndjson: offset %llu: seq %llu: %s; not writing past it "
		       "(es-verify tells more)",
		       (unsigned long long)seg, (unsigned long long)sc->bad_off,
		       (unsigned long long)sc->bad_seq, sc->why);
	(void)s;
}

/* Index the archived segments (archive.h), restored, in order from the purge
 * anchor or genesis: the start of a rebuild. Damage there is corruption. */
static int scan_archived(struct es_store *s, struct scan *sc, struct es_error *err)
{
	const struct es_archive *a = s->archive;

	es_archive_start(a, &sc->head);
	for (size_t i = 0; i < a->n; i++) {
		const struct es_archive_seg *e = &a->segs[i];
		struct es_archive_rd *rd;
		const char *line, *why = NULL, *pwhy;
		size_t len;
		uint64_t off = 0;
		struct es_rec r;
		int rc;
		if (es_archive_rd_open(&rd, s->dir, e, 0, err))
			return err->code;
		while ((rc = es_archive_rd_next(rd, &line, &len, &off, err)) == 1) {
			int64_t t = 0;
			if (es_rec_parse(line, len, 0, &r, &pwhy) != 0)
				why = pwhy;
			else if (es_ts_parse(r.ts, ES_TS_LEN, &t) != 0 || t < sc->head.ts)
				why = "ts out of order";
			else if ((rc = index_record(s, sc, line, len, &r, e->first_seq, off, err)) == 1)
				why = sc->why;
			else if (rc)
				break;
			if (why)
				break;
			sc->head.seq = r.seq;
			sc->head.ts = t;
			memcpy(sc->head.hash, r.hash, ES_HASH_HEX);
			sc->head.seg = e->first_seq;
			sc->head.end = off + len + 1;
			s->indexed++;
		}
		es_archive_rd_close(rd);
		if (why)
			return es_fail(err, ES_CORRUPT, "%s/%s: offset %llu: seq %llu: %s; not writing "
				       "past it (es-verify tells more)", e->dir, e->file,
				       (unsigned long long)off, (unsigned long long)sc->head.seq + 1, why);
		if (rc)
			return rc < 0 ? -rc : rc;
	}
	return 0;
}

/* Scan from a trusted point (index head, or the start) to the end. The
 * records up to seq `vouched` were acknowledged (an index head said so):
 * they are never cut as a torn tail. */
static int catch_up(struct es_store *s, size_t first_seg, uint64_t from, struct es_head start,
		    int trusted_end, uint64_t vouched, struct es_error *err)
{
	struct scan sc;

	memset(&sc, 0, sizeof(sc));
	sc.head = start;
	/* From the very start: the archived segments come first, and log/
	 * copies of them (an interrupted es-archive) are skipped. */
	if (first_seg == 0 && from == 0 && start.seq == 0 && s->archive) {
		if (scan_archived(s, &sc, err))
			return err->code;
		start = sc.head;
		while (first_seg < s->nsegs && s->segs[first_seg] <= start.seq)
			first_seg++;
	}
	for (size_t i = first_seg; i < s->nsegs; i++) {
		uint64_t seg = s->segs[i];
		int active = i + 1 == s->nsegs;
		if (scan_segment(s, seg, i == first_seg ? from : 0, &sc, err))
			return err->code;
		s->indexed += sc.head.seq - start.seq;
		start = sc.head;
		if (!sc.bad)
			continue;
		/* Damage in a sealed segment, or before what the index vouched
		 * for, is corruption; after it, in the active segment, a torn
		 * tail (never acknowledged: acks follow the index commit). */
		if (!active || (!trusted_end && sc.later_record) || sc.why == gap_before ||
		    sc.head.seq < vouched)
			return corrupt(s, seg, &sc, err);
		uint64_t cut = sc.head.seg == seg ? sc.head.end : 0;
		if (quarantine(s, seg, cut, err))
			return err->code;
	}
	if (sc.head.seq < vouched)
		return es_fail(err, ES_CORRUPT, "log/: the log ends at seq %llu, but seq %llu was "
			       "stored (the index says so): a segment is missing or cut short; "
			       "not writing (es-verify tells more)",
			       (unsigned long long)sc.head.seq, (unsigned long long)vouched);
	s->head = sc.head;
	if (s->head.seq == 0) {
		memcpy(s->head.hash, ES_GENESIS, ES_HASH_HEX + 1);
		s->head.seg = 0;
		s->head.end = 0;
	}
	return 0;
}

int es_store_note_undo(struct es_store *s, uint64_t seg, uint64_t size)
{
	char path[PATH_MAX], line[64];
	int n = snprintf(line, sizeof(line), "%llu %llu\n", (unsigned long long)seg,
			 (unsigned long long)size);

	path_of(s, "undo", path, sizeof(path));
	return es_write_file_atomic(path, line, (size_t)n, 0644);
}

/* A failed batch that its writer could not cut back (es_store_note_undo):
 * quarantine it before anything else, then drop the note. */
static int apply_undo(struct es_store *s, uint64_t active, struct es_error *err)
{
	char path[PATH_MAX], *text;
	unsigned long long seg, size;
	int ok;

	path_of(s, "undo", path, sizeof(path));
	text = es_read_file(path, NULL);
	if (!text)
		return errno == ENOENT ? 0 : es_fail_errno(err, ES_IO, "cannot read '%s'", path);
	ok = sscanf(text, "%llu %llu", &seg, &size) == 2;
	free(text);
	if (!ok)
		return es_fail(err, ES_CORRUPT, "%s: not a note of a failed batch", path);
	if (seg == active && file_size(s->active_fd) > size && quarantine(s, seg, size, err))
		return err->code;
	if (unlink(path) != 0 || es_fsync_dir(s->dir) != 0)
		return es_fail_errno(err, ES_IO, "cannot remove '%s'", path);
	return 0;
}

static int recover(struct es_store *s, struct es_error *err)
{
	struct es_head ih, genesis;
	uint64_t active, size;
	char path[PATH_MAX];
	int have;

	memset(&genesis, 0, sizeof(genesis));
	memcpy(genesis.hash, ES_GENESIS, ES_HASH_HEX + 1);
	s->recovered_bytes = s->indexed = 0;
	s->index_clean = 0;
	if (!s->bulk && !s->lazy) {
		/* a writer of this boot left its commits unsynced: they are
		 * whole in the page cache. While the index is busy, go on
		 * without syncing (es_store_lazy_begin); else sync them and
		 * drop the note. */
		char dir[PATH_MAX];
		int note;
		path_of(s, "index", dir, sizeof(dir));
		note = es_store_index_unsynced(dir);
		if (note == 1 && s->index_hot) {
			if (es_index_set_nosync(s->index, 1, err))
				return err->code;
			s->lazy = 1;
		} else if (note == 1) {
			if (es_index_sync(s->index, err)) {
				distrust_index(s);
				return err->code;
			}
			if (drop_unsynced(s, err))
				return err->code;
		}
	}
	if (es_store_list_segments(s, err) || es_index_begin(s->index, 1, err))
		return err->code;
	have = es_index_get_head(s->index, &ih) == 0;
	if (s->nsegs == 0 && s->archive) {
		/* Everything is archived: the log goes on after the archive. */
		if (have && es_archive_head_matches(s, &ih)) {
			s->head = ih;
			s->index_clean = 1;
			return 0;
		}
		if (es_index_clear(s->index, err))
			return err->code;
		return catch_up(s, 0, 0, genesis, 0, 0, err);
	}
	if (s->nsegs == 0) {
		s->head = genesis;
		if (have && ih.seq != 0)
			return es_fail(err, ES_CORRUPT, "log/ holds no segment, but seq %llu was "
				       "stored (the index says so); not writing (es-verify tells more)",
				       (unsigned long long)ih.seq);
		return 0;
	}
	active = s->segs[s->nsegs - 1];
	es_store_seg_path(s, active, path, sizeof(path));
	s->active_fd = es_open(path, O_RDWR | O_APPEND, 0);
	if (s->active_fd < 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	if (apply_undo(s, active, err))
		return err->code;
	size = file_size(s->active_fd);
	if (have && ih.seq > 0) {
		size_t ai = s->nsegs - 1;
		/* The usual case: the index ends where the log ends. */
		if (ih.seg == active && ih.end == size && tail_matches(s, active, size, &ih)) {
			s->head = ih;
			s->index_clean = 1;
			return 0;
		}
		/* The index is behind: catch up from its head. */
		if (ih.seg == active && ih.end < size && tail_matches(s, active, ih.end, &ih))
			return catch_up(s, ai, ih.end, ih, 1, 0, err);
		if (ai > 0 && ih.seg == s->segs[ai - 1] && tail_matches(s, ih.seg, ih.end, &ih)) {
			char prev[PATH_MAX];
			struct stat st;
			es_store_seg_path(s, ih.seg, prev, sizeof(prev));
			if (stat(prev, &st) == 0 && (uint64_t)st.st_size == ih.end)
				return catch_up(s, ai, 0, ih, 1, 0, err);
		}
		/* The segment before the active one was archived (archive.h). */
		if (active == ih.seq + 1 && es_archive_head_matches(s, &ih))
			return catch_up(s, ai, 0, ih, 1, 0, err);
	}
	/* Missing or inconsistent: rebuild from the whole log, but never cut
	 * what the old head vouched for. */
	if (es_index_clear(s->index, err))
		return err->code;
	return catch_up(s, 0, 0, genesis, 0, have ? ih.seq : 0, err);
}

int es_store_index_damaged(const struct es_error *err)
{
	static const char *const signs[] = {
		"MDB_CORRUPTED", "MDB_PAGE_NOTFOUND", "MDB_INVALID", "MDB_BAD_TXN",
		"index: read error", "disagrees with the log", NULL,
	};

	if (strncmp(err->msg, "index:", 6) != 0)
		return 0;
	for (size_t i = 0; signs[i]; i++)
		if (strstr(err->msg, signs[i]))
			return 1;
	return 0;
}

/* Start index/ again: close it, remove its files, open it empty. */
static int reopen_empty_index(struct es_store *s, struct es_error *err)
{
	char path[PATH_MAX], f[PATH_MAX + 16];

	if (s->index)
		es_index_close(s->index);
	s->index = NULL;
	path_of(s, "index", path, sizeof(path));
	snprintf(f, sizeof(f), "%s/data.mdb", path);
	unlink(f);
	snprintf(f, sizeof(f), "%s/lock.mdb", path);
	unlink(f);
	return es_store_open_index(s, 1, err);
}

/* Recovery proper, under the lock: bring the log's tail and the index to
 * agreement. 0, or an error with the lock still held. */
static int resync(struct es_store *s, struct es_error *err)
{
	for (int reset = 0;; reset = 1) {
		int rc = recover(s, err);
		if (rc == 0 && s->index_clean) {
			/* nothing changed: no commit, which would cost an fdatasync */
			es_index_abort(s->index);
			return 0;
		}
		if (rc == 0 && es_index_put_head(s->index, &s->head, err) == 0 &&
		    es_index_commit(s->index, err) == 0)
			return 0;
		if (reset || !es_store_index_damaged(err))
			return err->code;
		/* LMDB found index/ damaged: it is derived data, so start it
		 * again, rebuilt from the log (under the lock). */
		if (s->active_fd >= 0)
			close(s->active_fd);
		s->active_fd = -1;
		es_error_clear(err);
		if (reopen_empty_index(s, err))
			return err->code;
	}
}

int es_store_lock(struct es_store *s, struct es_error *err)
{
	if (!s->index)
		return es_fail(err, ES_IO, "index: not open");
	if (take_lock(s, err))
		return err->code;
	s->index_behind = 0;
	if (resync(s, err) == 0) {
		es_stop_point("writer-locked");
		return 0;
	}
	es_store_unlock(s);
	return err->code;
}

int es_store_catch_up_index(struct es_store *s, struct es_error *err)
{
	if (!s->index_behind)
		return 0;
	if (s->active_fd >= 0)
		close(s->active_fd);
	s->active_fd = -1;
	if (resync(s, err))
		return err->code;
	s->index_behind = 0;
	return 0;
}

int es_store_rebuild_index(struct es_store *s, struct es_error *err)
{
	struct es_head genesis;

	memset(&genesis, 0, sizeof(genesis));
	memcpy(genesis.hash, ES_GENESIS, ES_HASH_HEX + 1);
	if (es_index_clear(s->index, err))
		return err->code;
	/* the head found at lock time was acknowledged: never cut it */
	if (catch_up(s, 0, 0, genesis, 0, s->head.seq, err) ||
	    es_index_put_head(s->index, &s->head, err))
		return err->code;
	return 0;
}

int es_store_reset_index(struct es_store *s, struct es_error *err)
{
	uint64_t vouched = s->head.seq;
	struct es_head genesis;

	memset(&genesis, 0, sizeof(genesis));
	memcpy(genesis.hash, ES_GENESIS, ES_HASH_HEX + 1);
	es_error_clear(err);
	if (reopen_empty_index(s, err) || es_index_begin(s->index, 1, err))
		return err->code;
	if (catch_up(s, 0, 0, genesis, 0, vouched, err) ||
	    es_index_put_head(s->index, &s->head, err) || es_index_commit(s->index, err))
		return err->code;
	return 0;
}

int es_store_prepare_append(struct es_store *s, size_t add, struct es_error *err)
{
	char path[PATH_MAX];
	uint64_t size = s->active_fd >= 0 ? file_size(s->active_fd) : 0;
	uint64_t next = s->head.seq + 1;
	int fd;

	if (s->active_fd >= 0 && (size == 0 || size + add <= s->segment_size))
		return 0;
	/* Roll: a new segment named by the next seq; fsync the directory. */
	es_store_seg_path(s, next, path, sizeof(path));
	fd = es_open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot create '%s'", path);
	if (es_fsync_dir(path) != 0) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return es_fail_errno(err, ES_IO, "cannot sync '%s/log'", s->dir);
	}
	if (s->active_fd >= 0)
		close(s->active_fd);
	s->active_fd = fd;
	return es_store_list_segments(s, err);
}

int es_store_read_pos(struct es_store *s, const struct es_pos *pos, char **buf,
		      size_t *cap, struct es_error *err)
{
	char path[PATH_MAX];
	int fd;
	ssize_t n;

	if (*cap < (size_t)pos->len + 1) {
		char *nb = realloc(*buf, (size_t)pos->len + 1);
		if (!nb)
			return es_fail(err, ES_IO, "out of memory");
		*buf = nb;
		*cap = (size_t)pos->len + 1;
	}
	/* Listed in the MANIFEST: read from the archive, even when a copy is
	 * still in log/ (an interrupted es-archive; es-store(5)). */
	if (es_archive_find(s->archive, pos->seg))
		return es_archive_read_pos(s, pos, buf, cap, err);
	if (s->read_fd >= 0 && s->read_seg == pos->seg) {
		fd = s->read_fd;
	} else {
		es_store_seg_path(s, pos->seg, path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno, rc;
			/* Archived since the MANIFEST was read: restored from there. */
			if (e == ENOENT && (rc = es_archive_read_pos(s, pos, buf, cap, err)) != -1)
				return rc;
			if (e == ENOENT) /* neither in log/ nor archived, nor purged */
				return es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: seq %llu: the index "
					       "points into a segment the log lost",
					       (unsigned long long)pos->seg, (unsigned long long)pos->seq);
			errno = e;
			return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
		}
		/* Keep it: a stream's events mostly sit in one segment. */
		if (s->read_fd >= 0)
			close(s->read_fd);
		s->read_fd = fd;
		s->read_seg = pos->seg;
	}
	n = es_pread_full(fd, *buf, pos->len, (off_t)pos->off);
	if (pos->len == 0 || n != (ssize_t)pos->len || (*buf)[pos->len - 1] != '\n')
		return es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: offset %llu: seq %llu: "
			       "record not where the index says",
			       (unsigned long long)pos->seg, (unsigned long long)pos->off,
			       (unsigned long long)pos->seq);
	(*buf)[pos->len] = '\0';
	return 0;
}
