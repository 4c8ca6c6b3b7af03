#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "archive.h"
#include "chain.h"
#include "index.h"
#include "io.h"
#include "json.h"
#include "reader.h"
#include "timeq.h"

#define SUFFIX ".snap.zst"
#define NAME_LEN (20 + 1 + 20 + 1 + 16 + 9)
#define SHA_KEY ",\"sha256\":\""
#define SHA_TAIL (11 + ES_HASH_HEX + 3) /* ,"sha256":"<64 hex>"}\n */
#define SNAP_MAX ((size_t)1 << 30)       /* largest record we decompress */
#define ZSTD_LEVEL 3
#define STATE_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)

/* ---- names and paths ---------------------------------------------------- */

static int stream_dir(const struct es_store *s, const char *stream, size_t slen, char *out,
		      size_t n)
{
	char h[ES_HASH_HEX + 1];

	if (es_sha256_hex(stream, slen, h))
		return -1;
	snprintf(out, n, "%s/snapshots/%s", s->dir, h);
	return 0;
}

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* <version:020>-<seq:020>-<reducer:16>.snap.zst */
static int parse_name(const char *n, uint64_t *version, uint64_t *seq, char red[17])
{
	if (strlen(n) != NAME_LEN || n[20] != '-' || n[41] != '-' || !all_digits(n, 20) ||
	    !all_digits(n + 21, 20) || !all_hex(n + 42, 16) || strcmp(n + 58, SUFFIX) != 0)
		return -1;
	*version = strtoull(n, NULL, 10);
	*seq = strtoull(n + 21, NULL, 10);
	memcpy(red, n + 42, 16);
	red[16] = '\0';
	return 0;
}

/* The caller makes the new entry durable by syncing the parent. */
static int make_dir(const char *dir, struct es_error *err)
{
	if (mkdir(dir, 0755) == 0 || errno == EEXIST)
		return 0;
	return es_fail_errno(err, ES_IO, "cannot create '%s'", dir);
}

/* Create snapshots/ and snapshots/<h>/, each made durable in its parent. */
static int make_dirs(const struct es_store *s, const char *dir, struct es_error *err)
{
	char top[PATH_MAX];
	struct stat st;

	if (stat(dir, &st) == 0)
		return 0;
	snprintf(top, sizeof(top), "%s/snapshots", s->dir);
	if (stat(top, &st) != 0) {
		if (make_dir(top, err))
			return err->code;
		if (es_fsync_dir(s->dir) != 0)
			return es_fail_errno(err, ES_IO, "cannot sync '%s'", s->dir);
	}
	if (make_dir(dir, err))
		return err->code;
	if (es_fsync_dir(top) != 0)
		return es_fail_errno(err, ES_IO, "cannot sync '%s'", top);
	return 0;
}

/* ---- listing ------------------------------------------------------------ */

static int cmp_snap(const void *a, const void *b)
{
	const struct es_snapshot *x = a, *y = b;
	int d = strncmp(x->path + x->rel, y->path + y->rel, 10 + ES_HASH_HEX);

	if (d)
		return d;
	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->reducer, y->reducer);
}

struct list {
	struct es_snapshot *v;
	size_t n, cap;
};

static int list_dir(struct list *l, const char *dir, size_t rel, struct es_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return es_fail_errno(err, ES_IO, "cannot read '%s'", dir);
	}
	while ((de = readdir(d)) != NULL) {
		struct es_snapshot *sn;
		struct stat st;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			struct es_snapshot *nv = realloc(l->v, cap * sizeof(*nv));
			if (!nv) {
				closedir(d);
				return es_fail(err, ES_IO, "out of memory");
			}
			l->v = nv;
			l->cap = cap;
		}
		sn = &l->v[l->n];
		memset(sn, 0, sizeof(*sn));
		if (parse_name(de->d_name, &sn->version, &sn->seq, sn->reducer))
			continue;
		snprintf(sn->path, sizeof(sn->path), "%s/%s", dir, de->d_name);
		sn->rel = rel;
		if (stat(sn->path, &st) != 0 || !S_ISREG(st.st_mode))
			continue; /* removed meanwhile, or not a file */
		sn->size = (uint64_t)st.st_size;
		l->n++;
	}
	closedir(d);
	return 0;
}

int es_snapshot_list(struct es_store *s, const char *stream, size_t slen, struct es_snapshot **v,
		     size_t *n, struct es_error *err)
{
	struct list l = {NULL, 0, 0};
	char dir[PATH_MAX];
	size_t rel = strlen(s->dir) + 1;
	int rc = 0;

	*v = NULL;
	*n = 0;
	if (stream) {
		if (stream_dir(s, stream, slen, dir, sizeof(dir)))
			return es_fail(err, ES_IO, "out of memory");
		rc = list_dir(&l, dir, rel, err);
	} else {
		DIR *d;
		struct dirent *de;
		snprintf(dir, sizeof(dir), "%s/snapshots", s->dir);
		d = opendir(dir);
		if (!d && errno != ENOENT)
			return es_fail_errno(err, ES_IO, "cannot read '%s'", dir);
		while (d && rc == 0 && (de = readdir(d)) != NULL) {
			char sub[PATH_MAX];
			if (strlen(de->d_name) != ES_HASH_HEX || !all_hex(de->d_name, ES_HASH_HEX))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			rc = list_dir(&l, sub, rel, err);
		}
		if (d)
			closedir(d);
	}
	if (rc) {
		free(l.v);
		return rc;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), cmp_snap);
	*v = l.v;
	*n = l.n;
	return 0;
}

void es_snapshot_list_free(struct es_snapshot *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		es_snapshot_release(&v[i]);
	free(v);
}

int es_snapshot_same_stream(const struct es_snapshot *a, const struct es_snapshot *b)
{
	return strncmp(a->path + a->rel, b->path + b->rel, 10 + ES_HASH_HEX) == 0;
}

/* ---- reading a record --------------------------------------------------- */

void es_snapshot_release(struct es_snapshot *sn)
{
	free(sn->text);
	free(sn->stream);
	json_decref(sn->json);
	sn->text = sn->stream = NULL;
	sn->json = NULL;
	sn->state = NULL;
	sn->len = sn->slen = sn->state_len = 0;
	sn->bad = NULL;
}

/* One zstd frame with a content checksum, nothing after it. */
static int decompress(const char *in, size_t inlen, struct es_buf *out, const char **why,
		      struct es_error *err)
{
	static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
	ZSTD_inBuffer ib = {in, inlen, 0};
	ZSTD_DCtx *d;
	size_t ret = 1;
	int rc = 0;

	if (inlen < 5 || memcmp(in, magic, 4) != 0) {
		*why = "checksum mismatch (not a zstd frame)";
		return 1;
	}
	/* Frame_Header_Descriptor, bit 2: Content_Checksum_flag (RFC 8878). */
	if (!((unsigned char)in[4] & 4)) {
		*why = "checksum mismatch (the frame has no content checksum)";
		return 1;
	}
	d = ZSTD_createDCtx();
	if (!d)
		return es_fail(err, ES_IO, "out of memory");
	while (ret != 0) {
		ZSTD_outBuffer ob;
		if (es_buf_grow(out, 1 << 16)) {
			rc = es_fail(err, ES_IO, "out of memory");
			break;
		}
		ob.dst = out->p + out->len;
		ob.size = out->cap - out->len - 1;
		ob.pos = 0;
		ret = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(ret)) {
			*why = "checksum mismatch";
			rc = 1;
			break;
		}
		out->len += ob.pos;
		if (out->len > SNAP_MAX) {
			*why = "record too large";
			rc = 1;
			break;
		}
		if (ret != 0 && ib.pos == ib.size && ob.pos < ob.size) {
			*why = "checksum mismatch (truncated)";
			rc = 1;
			break;
		}
	}
	if (rc == 0 && ib.pos != ib.size) {
		*why = "checksum mismatch (data after the frame)";
		rc = 1;
	}
	if (out->p)
		out->p[out->len] = '\0';
	ZSTD_freeDCtx(d);
	return rc;
}

static int get_u64(json_t *o, const char *k, uint64_t *v)
{
	json_t *j = json_object_get(o, k);

	if (!json_is_integer(j) || json_integer_value(j) < 1)
		return -1;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

static int get_str(json_t *o, const char *k, char *out, size_t want, int hex)
{
	json_t *j = json_object_get(o, k);

	if (!json_is_string(j) || json_string_length(j) != want ||
	    (hex && !all_hex(json_string_value(j), want)))
		return -1;
	memcpy(out, json_string_value(j), want + 1);
	return 0;
}

/* The fields of a parsed record of format 1, checked against the name. */
static int fields(struct es_snapshot *sn, const char **why)
{
	json_t *o = sn->json, *st = json_object_get(o, "stream");
	uint64_t version, seq;
	char dirhash[ES_HASH_HEX + 1];
	const char *p;

	if (!json_is_string(st) || get_u64(o, "version", &version) || get_u64(o, "seq", &seq) ||
	    get_str(o, "hash", sn->hash, ES_HASH_HEX, 1) || get_str(o, "ts", sn->ts, ES_TS_LEN, 0) ||
	    get_str(o, "taken", sn->taken, ES_TS_LEN, 0) || !json_object_get(o, "state")) {
		*why = "not a snapshot record (missing or malformed fields)";
		return 1;
	}
	if (get_str(o, "reducer", dirhash, ES_HASH_HEX, 1)) {
		*why = "not a snapshot record (malformed reducer)";
		return 1;
	}
	if (version != sn->version || seq != sn->seq || memcmp(dirhash, sn->reducer, 16) != 0) {
		*why = "its name does not match its record";
		return 1;
	}
	memcpy(sn->reducer, dirhash, sizeof(dirhash));
	sn->slen = json_string_length(st);
	sn->stream = malloc(sn->slen + 1);
	if (!sn->stream)
		return -1;
	memcpy(sn->stream, json_string_value(st), sn->slen + 1);
	if (es_sha256_hex(sn->stream, sn->slen, dirhash))
		return -1;
	if (memcmp(sn->path + sn->rel + 10, dirhash, ES_HASH_HEX) != 0) {
		*why = "its stream does not match its directory";
		return 1;
	}
	/* The state is the last member before the sha256; a quote inside a
	 * string is always escaped, so the first ,"state": is the key. */
	p = strstr(sn->text, ",\"state\":");
	if (!p || (size_t)(p - sn->text) + 9 > sn->len - SHA_TAIL) {
		*why = "not a snapshot record (state is not last)";
		return 1;
	}
	sn->state = p + 9;
	sn->state_len = sn->len - SHA_TAIL - (size_t)(sn->state - sn->text);
	return 0;
}

static int read_record(struct es_snapshot *sn, const char **why, struct es_error *err)
{
	struct es_buf out = ES_BUF_INIT;
	char sha[ES_HASH_HEX + 1];
	json_t *fmt;
	size_t flen;
	char *raw;
	int rc, oom = 0;

	es_snapshot_release(sn);
	raw = es_read_file(sn->path, &flen);
	if (!raw) {
		if (errno == ENOMEM)
			return es_fail(err, ES_IO, "out of memory");
		*why = "cannot be read";
		return 1;
	}
	rc = decompress(raw, flen, &out, why, err);
	free(raw);
	if (rc) {
		es_buf_release(&out);
		return rc;
	}
	sn->text = out.p;
	sn->len = out.len;
	if (sn->len < SHA_TAIL + 2 || sn->text[sn->len - 1] != '\n' ||
	    memchr(sn->text, '\n', sn->len - 1) ||
	    !(sn->json = es_json_loadb(sn->text, sn->len - 1,
				       JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL, &oom)) ||
	    !json_is_object(sn->json)) {
		if (oom) /* no memory says nothing of the file */
			return es_fail(err, ES_IO, "out of memory");
		*why = "not a snapshot record";
		return 1;
	}
	fmt = json_object_get(sn->json, "format");
	if (!json_is_integer(fmt) || json_integer_value(fmt) != ES_SNAPSHOT_FORMAT) {
		*why = "unknown format";
		return 1;
	}
	if (memcmp(sn->text + sn->len - SHA_TAIL, SHA_KEY, 11) != 0 ||
	    memcmp(sn->text + sn->len - 3, "\"}\n", 3) != 0) {
		*why = "not a snapshot record (no sha256 at its end)";
		return 1;
	}
	if (es_sha256_hex(sn->text, sn->len - SHA_TAIL, sha))
		return es_fail(err, ES_IO, "out of memory");
	if (memcmp(sha, sn->text + sn->len - SHA_TAIL + 11, ES_HASH_HEX) != 0) {
		*why = "sha256 mismatch";
		return 1;
	}
	rc = fields(sn, why);
	if (rc < 0)
		return es_fail(err, ES_IO, "out of memory");
	return rc;
}

int es_snapshot_read(struct es_snapshot *sn, const char **why, struct es_error *err)
{
	int rc = read_record(sn, why, err);

	sn->bad = rc == 1 ? *why : NULL;
	if (rc == 1) {
		free(sn->stream);
		sn->stream = NULL;
		sn->slen = 0;
	}
	return rc;
}

/* ---- the log ------------------------------------------------------------ */

/* Stored lines by position, keeping the segment open between reads. */
struct reader {
	struct es_store *s;
	uint64_t seg;
	int fd;
	char *buf;
	size_t cap;
};

static void reader_close(struct reader *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
	free(rd->buf);
	rd->fd = -1;
	rd->buf = NULL;
}

/* The stored line at pos, through the store (which keeps the segment open
 * and restores archived segments). */
static int read_at(struct reader *rd, const struct es_pos *pos, struct es_rec *r, int flags,
		   struct es_error *err)
{
	const char *why;
	int rc = es_store_read_pos(rd->s, pos, &rd->buf, &rd->cap, err);

	if (rc)
		return rc;
	if (pos->len < 2 || es_rec_parse(rd->buf, pos->len - 1, flags, r, &why) != 0 ||
	    r->seq != pos->seq)
		return es_fail(err, ES_CORRUPT,
			       "log/%020llu.ndjson: offset %llu: seq %llu: not the record the index names",
			       (unsigned long long)pos->seg, (unsigned long long)pos->off,
			       (unsigned long long)pos->seq);
	return 0;
}

/* Check sn against the log; on success copy the record's stream literal and
 * ts into f (when non-NULL). 0, 1 (*why) or an error status. */
static int check_log(struct es_store *s, const struct es_snapshot *sn, struct es_fold *f,
		     const char **why, struct es_error *err)
{
	struct reader rd = {s, 0, -1, NULL, 0};
	struct es_pos pos;
	struct es_rec r;
	int rc;

	if (!s->index) {
		*why = "no index to check it against the log";
		return ES_SNAP_NO;
	}
	if (es_index_begin(s->index, 0, err))
		return err->code;
	rc = es_index_get_pos(s->index, sn->stream, sn->slen, sn->version, &pos);
	if (rc < 0) {
		rc = es_fail(err, ES_IO, "index: read error");
	} else if (rc == 1 || pos.seq != sn->seq) {
		*why = "seq/hash not in the log";
		rc = ES_SNAP_NO;
	} else if (pos.seq <= es_archive_purged_seq(s)) {
		/* nothing left to check it against; folds start after the anchor */
		*why = "its event was purged (es-archive --purge-before)";
		rc = ES_SNAP_NO;
	} else if ((rc = read_at(&rd, &pos, &r, 0, err)) == 0) {
		if (r.version != sn->version || memcmp(r.hash, sn->hash, ES_HASH_HEX) != 0 ||
		    memcmp(r.ts, sn->ts, ES_TS_LEN) != 0 ||
		    !es_json_lit_is(r.stream, r.stream_len, sn->stream, sn->slen)) {
			*why = "seq/hash not in the log";
			rc = ES_SNAP_NO;
		} else if (f) {
			es_buf_reset(&f->stream);
			if (es_buf_add(&f->stream, r.stream, r.stream_len))
				rc = es_fail(err, ES_IO, "out of memory");
			memcpy(f->ts, r.ts, ES_TS_LEN);
			f->ts[ES_TS_LEN] = '\0';
		}
	}
	es_index_abort(s->index);
	reader_close(&rd);
	return rc;
}

int es_snapshot_check_log(struct es_store *s, const struct es_snapshot *sn, const char **why,
			  struct es_error *err)
{
	return check_log(s, sn, NULL, why, err);
}

/* Called after each event folded; non-zero stops (an error status). */
typedef int (*at_cb)(void *arg, const struct es_fold *f, const char *hash, struct es_error *err);

/* Fold versions [from, to] of stream into f through the index, leaving out
 * those es-archive --purge-before deleted (the fold goes on from the events
 * left, as readers do). hash gets the hash of the last event folded. */
static int fold_range(struct es_store *s, const char *stream, size_t slen,
		      const struct es_reducer *r, struct es_fold *f, uint64_t from, uint64_t to,
		      char hash[ES_HASH_HEX + 1], at_cb cb, void *arg, struct es_error *err)
{
	struct reader rd = {s, 0, -1, NULL, 0};
	int rc = 0;

	if (from > to)
		return 0;
	if (!s->index)
		return es_fail(err, ES_IO, "the index cannot be opened");
	if (es_index_begin(s->index, 0, err))
		return err->code;
	for (uint64_t v = from; v <= to && rc == 0; v++) {
		struct es_pos pos;
		struct es_rec rec;
		int g = es_index_get_pos(s->index, stream, slen, v, &pos);
		if (es_archive_pos_purged(s, g, &pos))
			continue;
		if (g != 0) {
			rc = es_fail(err, g < 0 ? ES_IO : ES_CORRUPT, "index: no position for version %llu",
				     (unsigned long long)v);
			break;
		}
		if ((rc = read_at(&rd, &pos, &rec, ES_REC_BODY, err)) != 0)
			break;
		if (rec.version != v) {
			rc = es_fail(err, ES_CORRUPT, "log/%020llu.ndjson: seq %llu: not version %llu",
				     (unsigned long long)pos.seg, (unsigned long long)pos.seq,
				     (unsigned long long)v);
			break;
		}
		if ((rc = es_fold_apply(r, f, &rec, err)) != 0)
			break;
		memcpy(hash, rec.hash, ES_HASH_HEX);
		hash[ES_HASH_HEX] = '\0';
		if (cb)
			rc = cb(arg, f, hash, err);
	}
	es_index_abort(s->index);
	reader_close(&rd);
	return rc;
}

/* ---- loading ------------------------------------------------------------ */

static void note_ignored(es_snapshot_note_cb note, void *arg, const char *stream, size_t slen,
			 uint64_t version, const char *why)
{
	char msg[512];

	if (!note)
		return;
	snprintf(msg, sizeof(msg), "snapshot of '%.*s' at version %llu ignored: %s",
		 (int)(slen > 200 ? 200 : slen), stream, (unsigned long long)version, why);
	note(arg, msg);
}

/* es_snapshot_load without making the index ready; hash (when non-NULL)
 * gets the hash of the snapshot's event. */
static int load(struct es_store *s, const char *stream, size_t slen, const struct es_reducer *r,
		uint64_t max_seq, struct es_fold *f, char *hash, es_snapshot_note_cb note,
		void *arg, struct es_error *err)
{
	const char *rid = es_reducer_id(r);
	struct es_snapshot *v;
	size_t n;
	int rc = ES_SNAP_NO;

	if (es_snapshot_list(s, stream, slen, &v, &n, err))
		return err->code;
	for (size_t i = n; i-- > 0 && rc == ES_SNAP_NO;) {
		struct es_snapshot *sn = &v[i];
		const char *why = NULL;
		if (sn->seq > max_seq)
			continue; /* too new for this question: not invalid */
		if (memcmp(sn->reducer, rid, 16) != 0) {
			note_ignored(note, arg, stream, slen, sn->version, "reducer differs");
			continue;
		}
		rc = es_snapshot_read(sn, &why, err);
		if (rc == 1)
			rc = ES_SNAP_NO; /* not sound */
		if (rc == 0 && strcmp(sn->reducer, rid) != 0) {
			why = "reducer differs";
			rc = ES_SNAP_NO;
		}
		if (rc == 0 && (sn->slen != slen || memcmp(sn->stream, stream, slen) != 0)) {
			why = "its stream does not match its directory";
			rc = ES_SNAP_NO;
		}
		if (rc == 0)
			rc = check_log(s, sn, f, &why, err);
		if (rc == ES_SNAP_NO) {
			note_ignored(note, arg, stream, slen, sn->version, why);
			es_snapshot_release(sn);
			continue;
		}
		if (rc == 0) {
			json_decref(f->state);
			f->state = json_incref(json_object_get(sn->json, "state"));
			f->version = sn->version;
			f->seq = sn->seq;
			if (hash)
				memcpy(hash, sn->hash, ES_HASH_HEX + 1);
		}
	}
	es_snapshot_list_free(v, n);
	return rc;
}

int es_snapshot_load(struct es_store *s, const char *stream, size_t slen,
		     const struct es_reducer *r, uint64_t max_seq, struct es_fold *f,
		     es_snapshot_note_cb note, void *arg, struct es_error *err)
{
	char dir[PATH_MAX];
	struct stat st;
	int rc;

	/* Most streams have no snapshot: answer that without touching the index. */
	if (stream_dir(s, stream, slen, dir, sizeof(dir)))
		return es_fail(err, ES_IO, "out of memory");
	if (stat(dir, &st) != 0)
		return ES_SNAP_NO;
	rc = es_store_index_ready(s, err);
	if (rc > 1)
		return rc;
	return load(s, stream, slen, r, max_seq, f, NULL, note, arg, err);
}

/* ---- taking ------------------------------------------------------------- */

static int dump_cb(const char *buf, size_t size, void *data)
{
	return es_buf_add(data, buf, size);
}

/* The state's text. A fold that goes on from a snapshot must compute
 * exactly what a full replay computes, so every real must read back as the
 * very same double: 15 significant digits when they do (19.99 stays
 * 19.99), else 17, which always do. Deterministic, so --verify can compare
 * the bytes. */
static int dump_state(const json_t *state, struct es_buf *out)
{
	size_t start = out->len;
	unsigned long failures = es_alloc_failures(); /* see es_json_dumps() */
	json_t *back;
	int same;

	if (json_dump_callback(state, dump_cb, out, STATE_FLAGS | JSON_REAL_PRECISION(15)) != 0 ||
	    es_alloc_failures() != failures)
		return -1;
	back = json_loadb(out->p + start, out->len - start, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	same = back && json_equal(back, state);
	json_decref(back);
	if (same)
		return 0;
	out->len = start;
	if (json_dump_callback(state, dump_cb, out, STATE_FLAGS | JSON_REAL_PRECISION(17)) != 0 ||
	    es_alloc_failures() != failures)
		return -1;
	return 0;
}

/* The record line for f (stream literal, version, seq, ts, state). */
static int build_record(struct es_buf *out, const struct es_fold *f, const char *hash,
			const struct es_reducer *r)
{
	char taken[ES_TS_LEN + 1], sha[ES_HASH_HEX + 1];
	size_t start = out->len;

	es_ts_format(es_now_us(), taken);
	if (es_buf_addf(out, "{\"format\":%d,\"stream\":", ES_SNAPSHOT_FORMAT) ||
	    es_buf_add(out, f->stream.p, f->stream.len) ||
	    es_buf_addf(out, ",\"version\":%llu,\"seq\":%llu,\"hash\":\"%s\",\"ts\":\"%s\","
			"\"reducer\":\"%s\",\"taken\":\"%s\",\"state\":",
			(unsigned long long)f->version, (unsigned long long)f->seq, hash, f->ts,
			es_reducer_id(r), taken) ||
	    dump_state(f->state, out) != 0 ||
	    es_sha256_hex(out->p + start, out->len - start, sha) ||
	    es_buf_addf(out, SHA_KEY "%s\"}\n", sha))
		return -1;
	return 0;
}

static int store_record(struct es_store *s, const char *stream, size_t slen,
			const struct es_fold *f, const struct es_reducer *r, const struct es_buf *rec,
			struct es_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX + NAME_LEN + 2];
	size_t bound = ZSTD_compressBound(rec->len), zlen;
	ZSTD_CCtx *c = ZSTD_createCCtx();
	char *z = malloc(bound);
	int rc = 0;

	if (!c || !z || stream_dir(s, stream, slen, dir, sizeof(dir))) {
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, ZSTD_LEVEL);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	zlen = ZSTD_compress2(c, z, bound, rec->p, rec->len);
	if (ZSTD_isError(zlen)) {
		rc = es_fail(err, ES_IO, "zstd: %s", ZSTD_getErrorName(zlen));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%020llu-%020llu-%.16s" SUFFIX, dir,
		 (unsigned long long)f->version, (unsigned long long)f->seq, es_reducer_id(r));
	/* es-snapshot --prune removes a stream's directory once it empties it
	 * (es_snapshot_remove): made again, a few times at most */
	for (int tries = 0;; tries++) {
		if ((rc = make_dirs(s, dir, err)) != 0)
			break;
		es_stop_point("snapshot-dir-made");
		if (es_write_file_atomic(path, z, zlen, 0644) == 0)
			break;
		if (errno != ENOENT || tries == 8) {
			rc = es_fail_errno(err, ES_IO, "cannot write '%s'", path);
			break;
		}
	}
out:
	ZSTD_freeCCtx(c);
	free(z);
	return rc;
}

/* The seq of version v of stream. An index rebuilt since es-archive
 * --purge-before holds no position for the purged versions: 0 for those
 * (they come before every event left, and nothing can be taken at them). */
static int seq_of(struct es_store *s, const char *stream, size_t slen, uint64_t v, uint64_t *seq,
		  struct es_error *err)
{
	struct es_pos pos;
	int g = es_index_get_pos(s->index, stream, slen, v, &pos);

	if (g != 0 && !es_archive_pos_purged(s, g, &pos))
		return es_fail(err, g < 0 ? ES_IO : ES_CORRUPT, "index: no position for version %llu",
			       (unsigned long long)v);
	*seq = g == 0 ? pos.seq : 0;
	return 0;
}

/* The stream's current version, or with max_seq the last version whose seq
 * is <= max_seq (binary search: seq grows with version). */
static int target_version(struct es_store *s, const char *stream, size_t slen, uint64_t max_seq,
			  uint64_t *version, uint64_t *seq, struct es_error *err)
{
	uint64_t cur, lo, hi, at;
	int rc = 0;

	*version = *seq = 0;
	if (!s->index)
		return es_fail(err, ES_IO, "the index cannot be opened");
	if (es_index_begin(s->index, 0, err))
		return err->code;
	if (es_index_version(s->index, stream, slen, &cur) != 0) {
		es_index_abort(s->index);
		return es_fail(err, ES_IO, "index: read error");
	}
	lo = 0; /* invariant: version lo qualifies (0: none), hi + 1 does not */
	hi = cur;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;
		if ((rc = seq_of(s, stream, slen, mid, &at, err)) != 0)
			break;
		if (at <= max_seq)
			lo = mid;
		else
			hi = mid - 1;
	}
	if (rc == 0 && lo > 0 && (rc = seq_of(s, stream, slen, lo, seq, err)) == 0)
		*version = lo;
	es_index_abort(s->index);
	return rc;
}

int es_snapshot_take(struct es_store *s, const char *stream, size_t slen,
		     const struct es_reducer *r, struct es_snapshot_take *t, struct es_error *err)
{
	struct es_buf rec = ES_BUF_INIT;
	char hash[ES_HASH_HEX + 1] = "";
	uint64_t target, tseq;
	struct es_fold f;
	int rc;

	t->version = t->seq = t->from = 0;
	t->purged = 0;
	if ((rc = target_version(s, stream, slen, t->max_seq, &target, &tseq, err)) != 0)
		return rc;
	t->version = target;
	t->seq = tseq;
	/* (its event purged: no snapshot of it could be checked, or used) */
	t->purged = target > 0 && tseq <= es_archive_purged_seq(s);
	if (target == 0 || t->purged)
		return ES_SNAP_NO;
	es_fold_init(&f, r);
	if (!f.state)
		return es_fail(err, ES_IO, "out of memory");
	if (!t->full) {
		rc = load(s, stream, slen, r, tseq, &f, hash, t->note, t->arg, err);
		if (rc > 0)
			goto out;
		if (rc == 0)
			t->from = f.version;
	}
	rc = ES_SNAP_NO;
	if (target <= t->from || target - t->from < (t->every ? t->every : 1))
		goto out; /* up to date, or not due */
	if ((rc = fold_range(s, stream, slen, r, &f, t->from + 1, target, hash, NULL, NULL, err)))
		goto out;
	if (build_record(t->out ? t->out : &rec, &f, hash, r)) {
		rc = es_fail(err, ES_IO, "out of memory");
		goto out;
	}
	if (!t->out)
		rc = store_record(s, stream, slen, &f, r, &rec, err);
out:
	es_fold_release(&f);
	es_buf_release(&rec);
	return rc;
}

/* The newest snapshot version of a stream under a reducer, by name alone. */
static int newest_by_name(struct es_store *s, const char *stream, size_t slen, const char *rid,
			  uint64_t *version, struct es_error *err)
{
	struct es_snapshot *v;
	size_t n;

	*version = 0;
	if (es_snapshot_list(s, stream, slen, &v, &n, err))
		return err->code;
	for (size_t i = n; i-- > 0;)
		if (memcmp(v[i].reducer, rid, 16) == 0) {
			*version = v[i].version;
			break;
		}
	es_snapshot_list_free(v, n);
	return 0;
}

int es_snapshot_auto(struct es_store *s, const struct es_batch *b, size_t from, size_t n,
		     size_t *taken, struct es_error *err)
{
	struct es_reducer *r = NULL;
	json_t *seen;
	int rc = 0;

	*taken = 0;
	if (!s->snapshot_every || !s->index || n == 0)
		return 0;
	if (es_reducer_default(&r, err))
		return err->code;
	seen = json_object();
	if (!seen) {
		es_reducer_free(r);
		return es_fail(err, ES_IO, "out of memory");
	}
	for (size_t i = from; i < from + n && rc == 0; i++) {
		const struct es_event *ev = &b->ev[i];
		const char *name = es_batch_str(b, ev->stream);
		struct es_snapshot_take t;
		uint64_t cur, last;
		if (json_object_getn(seen, name, ev->stream_len))
			continue;
		if (json_object_setn_new(seen, name, ev->stream_len, json_true())) {
			rc = es_fail(err, ES_IO, "out of memory");
			break;
		}
		if ((rc = es_index_begin(s->index, 0, err)) != 0)
			break;
		if (es_index_version(s->index, name, ev->stream_len, &cur) != 0)
			rc = es_fail(err, ES_IO, "index: read error");
		es_index_abort(s->index);
		if (rc || cur < s->snapshot_every)
			continue;
		/* Decide by the names first: most batches make nothing due. */
		if ((rc = newest_by_name(s, name, ev->stream_len, es_reducer_id(r), &last, err)) ||
		    (last <= cur && cur - last < s->snapshot_every))
			continue;
		memset(&t, 0, sizeof(t));
		t.every = s->snapshot_every;
		t.max_seq = UINT64_MAX;
		rc = es_snapshot_take(s, name, ev->stream_len, r, &t, err);
		if (rc == 0)
			(*taken)++;
		else if (rc == ES_SNAP_NO)
			rc = 0;
		else
			es_error_prefix(err, "auto-snapshot of '%s'", name);
	}
	json_decref(seen);
	es_reducer_free(r);
	return rc;
}

/* ---- verifying ---------------------------------------------------------- */

struct verify {
	struct es_snapshot **v;
	size_t n, j;
	const char **bad;
	struct es_buf dump;
};

static int verify_at(void *arg, const struct es_fold *f, const char *hash, struct es_error *err)
{
	struct verify *vf = arg;

	(void)hash;
	while (vf->j < vf->n && vf->v[vf->j]->version < f->version)
		vf->j++;
	for (; vf->j < vf->n && vf->v[vf->j]->version == f->version; vf->j++) {
		struct es_snapshot *sn = vf->v[vf->j];
		if (vf->bad[vf->j])
			continue;
		es_buf_reset(&vf->dump);
		if (dump_state(f->state, &vf->dump) != 0)
			return es_fail(err, ES_IO, "out of memory");
		if (vf->dump.len != sn->state_len || memcmp(vf->dump.p, sn->state, sn->state_len) != 0)
			vf->bad[vf->j] = "state differs from a replay of the log";
	}
	return 0;
}

int es_snapshot_history_purged(struct es_store *s, const char *stream, size_t slen)
{
	struct es_error e = {0, ""};
	struct es_pos p;
	int rc;

	if (es_archive_purged_seq(s) == 0 || !s->index || es_index_begin(s->index, 0, &e))
		return 0;
	rc = es_index_get_pos(s->index, stream, slen, 1, &p);
	es_index_abort(s->index);
	return es_archive_pos_purged(s, rc, &p);
}

int es_snapshot_verify(struct es_store *s, const struct es_reducer *r, struct es_snapshot **v,
		       size_t n, const char **bad, int *log_only, struct es_error *err)
{
	struct verify vf = {v, n, 0, bad, ES_BUF_INIT};
	char hash[ES_HASH_HEX + 1];
	uint64_t upto = 0;
	struct es_fold f;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		bad[i] = NULL;
		rc = check_log(s, v[i], NULL, &bad[i], err);
		if (rc > 0)
			return rc;
		if (rc == 0 && v[i]->version > upto)
			upto = v[i]->version;
	}
	/* a replay from version 1 would read purged events */
	*log_only = upto > 0 && es_snapshot_history_purged(s, v[0]->stream, v[0]->slen);
	if (upto == 0 || *log_only)
		return 0;
	es_fold_init(&f, r);
	if (!f.state)
		return es_fail(err, ES_IO, "out of memory");
	rc = fold_range(s, v[0]->stream, v[0]->slen, r, &f, 1, upto, hash, verify_at, &vf, err);
	es_fold_release(&f);
	es_buf_release(&vf.dump);
	return rc;
}

/* ---- removing ----------------------------------------------------------- */

int es_snapshot_remove(const struct es_snapshot *sn, struct es_error *err)
{
	char dir[PATH_MAX], *slash;

	snprintf(dir, sizeof(dir), "%s", sn->path);
	slash = strrchr(dir, '/');
	if (!slash)
		return es_fail(err, ES_USAGE, "bad snapshot path '%s'", sn->path);
	*slash = '\0';
	if (unlink(sn->path) != 0 && errno != ENOENT)
		return es_fail_errno(err, ES_IO, "cannot remove '%s'", sn->path);
	if (rmdir(dir) == 0) {
		slash = strrchr(dir, '/');
		*slash = '\0';
	}
	if (es_fsync_dir(dir) != 0)
		return es_fail_errno(err, ES_IO, "cannot sync '%s'", dir);
	return 0;
}

/* es_write_file_atomic's temps are "<name>.tmp.<pid>". */
static int clean_dir(const char *dir, size_t *removed, struct es_error *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0, any = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		const char *t = strstr(de->d_name, SUFFIX ".tmp.");
		char path[PATH_MAX];
		long pid;
		if (!t || t[14] == '\0' || !all_digits(t + 14, strlen(t + 14)))
			continue;
		pid = strtol(t + 14, NULL, 10);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* its writer may still be at work */
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0 && errno != ENOENT) {
			rc = es_fail_errno(err, ES_IO, "cannot remove '%s'", path);
			break;
		}
		(*removed)++;
		any = 1;
	}
	closedir(d);
	if (rc == 0 && any && es_fsync_dir(dir) != 0)
		rc = es_fail_errno(err, ES_IO, "cannot sync '%s'", dir);
	return rc;
}

int es_snapshot_clean_temps(struct es_store *s, size_t *removed, struct es_error *err)
{
	char top[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	*removed = 0;
	snprintf(top, sizeof(top), "%s/snapshots", s->dir);
	d = opendir(top);
	if (!d)
		return 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char sub[PATH_MAX];
		if (strlen(de->d_name) != ES_HASH_HEX || !all_hex(de->d_name, ES_HASH_HEX))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", top, de->d_name);
		rc = clean_dir(sub, removed, err);
	}
	closedir(d);
	return rc;
}
