#include "index.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chain.h"
#include "io.h"
#include "record.h"

/* A held transaction is committed once this many keys were put in it:
 * each may dirty a page, and LMDB refuses more than 128k dirty pages in
 * one transaction (MDB_TXN_FULL). */
#define ES_INDEX_HOLD_PUTS 100000
/* tag + name + 0 + tail: the longest key built */
#define KEY_MAX (ES_NAME_MAX * 2 + 16)

struct es_index {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_txn *parent;
	int writable;
	int hold, held;          /* es_index_hold: commits deferred; one is open */
	size_t held_puts;        /* keys put since the held transaction began */
	char key[KEY_MAX];
};

/* Damage LMDB reports is ES_CORRUPT (the index may be started again);
 * anything else (no memory, no space, EIO) is an I/O error. */
static int lmdb_fail(struct es_error *err, int rc, const char *what)
{
	int damaged = rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
		      rc == MDB_VERSION_MISMATCH;

	return es_fail(err, damaged ? ES_CORRUPT : ES_IO, "index: %s: %s", what, mdb_strerror(rc));
}

/* LMDB maps data.mdb and trusts it: a file shorter than its newest meta
 * page says (cut by damage: no crash does that) kills the process with
 * SIGBUS at the first page past its end. mdb_env_open reads the meta pages
 * with pread, and nothing reads a page of the tree before the first
 * transaction: the check goes between the two, on the same environment
 * (a second one, opened only to check, cost every short-lived program
 * 0.17 ms). 1 when so cut. */
static int cut_short(MDB_env *env, const char *dir)
{
	char f[PATH_MAX + 16];
	struct stat sb;
	MDB_envinfo info;
	MDB_stat st;

	snprintf(f, sizeof(f), "%s/data.mdb", dir);
	return stat(f, &sb) == 0 && mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &st) == 0 &&
	       ((uint64_t)info.me_last_pgno + 1) * st.ms_psize > (uint64_t)sb.st_size;
}

int es_index_open(struct es_index **ixp, const char *dir, int writable, struct es_error *err)
{
	struct es_index *ix = calloc(1, sizeof(*ix));
	MDB_txn *txn;
	int rc;

	*ixp = NULL;
	if (!ix)
		return es_fail(err, ES_IO, "out of memory");
	if (writable && mkdir(dir, 0755) != 0 && errno != EEXIST) {
		free(ix);
		return es_fail_errno(err, ES_IO, "cannot create '%s'", dir);
	}
	/* The map is sparse: ask for 256 GiB, and less where the address
	 * space is limited (ulimit -v: ENOMEM; valgrind: EINVAL). NOMETASYNC: a crash may undo
	 * the last commit, never corrupt it; the head check then finds the
	 * index behind and catches it up. */
	for (int shift = 38;; shift -= 3) {
		rc = mdb_env_create(&ix->env);
		if (rc == 0)
			rc = mdb_env_set_mapsize(ix->env, (size_t)1 << shift);
		if (rc == 0)
			rc = mdb_env_open(ix->env, dir,
					  (writable ? MDB_NOMETASYNC : MDB_RDONLY) | MDB_NOTLS, 0644);
		if ((rc != ENOMEM && rc != EINVAL) || shift <= 29)
			break;
		mdb_env_close(ix->env);
	}
	if (rc == 0 && cut_short(ix->env, dir)) {
		mdb_env_close(ix->env);
		free(ix);
		return es_fail(err, ES_CORRUPT, "index: %s/data.mdb: shorter than its meta page says",
			       dir);
	}
	if (rc == 0)
		rc = mdb_txn_begin(ix->env, NULL, writable ? 0 : MDB_RDONLY, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, NULL, 0, &ix->dbi);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc != 0) {
		lmdb_fail(err, rc, dir);
		mdb_env_close(ix->env);
		free(ix);
		return err->code;
	}
	ix->writable = writable;
	*ixp = ix;
	return 0;
}

void es_index_close(struct es_index *ix)
{
	if (!ix)
		return;
	es_index_discard(ix);
	mdb_env_close(ix->env);
	free(ix);
}

int es_index_set_nosync(struct es_index *ix, int on, struct es_error *err)
{
	int rc = mdb_env_set_flags(ix->env, MDB_NOSYNC, on);

	return rc ? lmdb_fail(err, rc, "set flags") : 0;
}

int es_index_sync(struct es_index *ix, struct es_error *err)
{
	int rc = mdb_env_sync(ix->env, 1);

	return rc ? lmdb_fail(err, rc, "sync") : 0;
}

int es_index_hold(struct es_index *ix, int on, struct es_error *err)
{
	ix->hold = on;
	return on ? 0 : es_index_flush(ix, err);
}

/* Commit the open write transaction now (held or not). */
static int commit_now(struct es_index *ix, struct es_error *err)
{
	int rc = mdb_txn_commit(ix->txn);

	ix->txn = NULL;
	ix->held = 0;
	ix->held_puts = 0;
	return rc ? lmdb_fail(err, rc, "commit") : 0;
}

int es_index_flush(struct es_index *ix, struct es_error *err)
{
	return ix->held ? commit_now(ix, err) : 0;
}

void es_index_discard(struct es_index *ix)
{
	ix->held = 0;
	ix->held_puts = 0;
	es_index_abort(ix);
}

int es_index_begin(struct es_index *ix, int write, struct es_error *err)
{
	int rc;

	if (ix->held)
		return 0; /* the held write transaction serves reads and writes */
	es_index_abort(ix);
	ix->held_puts = 0;
	rc = mdb_txn_begin(ix->env, NULL, write ? 0 : MDB_RDONLY, &ix->txn);
	if (rc != 0) {
		ix->txn = NULL;
		return lmdb_fail(err, rc, "begin");
	}
	return 0;
}

int es_index_commit(struct es_index *ix, struct es_error *err)
{
	if (ix->hold && ix->held_puts < ES_INDEX_HOLD_PUTS) {
		ix->held = 1;
		return 0;
	}
	return commit_now(ix, err);
}

void es_index_abort(struct es_index *ix)
{
	if (ix->held)
		return;
	if (ix->parent) {
		mdb_txn_abort(ix->txn);
		ix->txn = ix->parent;
		ix->parent = NULL;
	}
	if (ix->txn)
		mdb_txn_abort(ix->txn);
	ix->txn = NULL;
}

int es_index_sub_begin(struct es_index *ix, struct es_error *err)
{
	MDB_txn *child;
	int rc = mdb_txn_begin(ix->env, ix->txn, 0, &child);

	if (rc != 0)
		return lmdb_fail(err, rc, "begin");
	ix->parent = ix->txn;
	ix->txn = child;
	return 0;
}

int es_index_sub_end(struct es_index *ix, int commit, struct es_error *err)
{
	int rc = 0;

	if (!ix->parent)
		return 0;
	if (commit)
		rc = mdb_txn_commit(ix->txn);
	else
		mdb_txn_abort(ix->txn);
	ix->txn = ix->parent;
	ix->parent = NULL;
	return rc ? lmdb_fail(err, rc, "commit") : 0;
}

int es_index_clear(struct es_index *ix, struct es_error *err)
{
	int rc = mdb_drop(ix->txn, ix->dbi, 0);

	return rc ? lmdb_fail(err, rc, "clear") : 0;
}

static void put_be(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* A position from its 28 stored bytes. */
static void pos_parse(const unsigned char *p, struct es_pos *pos)
{
	pos->seq = get_be(p);
	pos->seg = get_be(p + 8);
	pos->off = get_be(p + 16);
	pos->len = (uint32_t)p[24] << 24 | (uint32_t)p[25] << 16 | (uint32_t)p[26] << 8 | p[27];
}

/* Build tag + stream [+ 0 + tail] into buf (KEY_MAX bytes). Names longer
 * than any stored one (ES_NAME_MAX) cannot be in the index: they get a key
 * that matches nothing instead of overrunning the buffer. */
static MDB_val keyin(char *buf, char tag, const char *s, size_t len, const void *tail,
		     size_t tlen)
{
	MDB_val k;
	char *p = buf;

	if (len > ES_NAME_MAX || tlen > ES_NAME_MAX) {
		buf[0] = '~'; /* no key starts with it */
		k.mv_data = buf;
		k.mv_size = 1;
		return k;
	}

	*p++ = tag;
	if (len) /* (s may be NULL then) */
		memcpy(p, s, len);
	p += len;
	if (tail) {
		*p++ = '\0';
		memcpy(p, tail, tlen);
		p += tlen;
	}
	k.mv_data = buf;
	k.mv_size = (size_t)(p - buf);
	return k;
}

/* The same in ix->key, the buffer of the thread that uses ix. */
static MDB_val mkkey(struct es_index *ix, char tag, const char *s, size_t len,
		     const void *tail, size_t tlen)
{
	return keyin(ix->key, tag, s, len, tail, tlen);
}

/* The head's value: seq, ts, segment, end (64-bit big-endian), the hash,
 * then the first 16 hex digits of the SHA-256 of all that. The check sum
 * tells damage to the head (derived data: rebuilt) from a log that lost
 * records the head vouches for (refused). Heads written before it (no sum)
 * are still read. */
#define HEAD_FIELDS (32 + ES_HASH_HEX)
#define HEAD_SUM 16

static int head_sum(const unsigned char *p, char sum[ES_HASH_HEX + 1])
{
	return es_sha256_hex(p, HEAD_FIELDS, sum);
}

/* es_index_get_head in txn. */
static int head_in(struct es_index *ix, MDB_txn *txn, struct es_head *h)
{
	MDB_val k = {1, (void *)"H"}, v;
	int rc = mdb_get(txn, ix->dbi, &k, &v);
	char sum[ES_HASH_HEX + 1];
	const unsigned char *p;

	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || (v.mv_size != HEAD_FIELDS && v.mv_size != HEAD_FIELDS + HEAD_SUM))
		return -1;
	p = v.mv_data;
	if (v.mv_size > HEAD_FIELDS &&
	    (head_sum(p, sum) != 0 || memcmp(sum, p + HEAD_FIELDS, HEAD_SUM) != 0))
		return -1;
	h->seq = get_be(p);
	h->ts = (int64_t)get_be(p + 8);
	h->seg = get_be(p + 16);
	h->end = get_be(p + 24);
	memcpy(h->hash, p + 32, ES_HASH_HEX);
	h->hash[ES_HASH_HEX] = '\0';
	return 0;
}

int es_index_get_head(struct es_index *ix, struct es_head *h)
{
	return head_in(ix, ix->txn, h);
}

int es_index_put_head(struct es_index *ix, const struct es_head *h, struct es_error *err)
{
	unsigned char buf[HEAD_FIELDS + HEAD_SUM];
	char sum[ES_HASH_HEX + 1];
	MDB_val k = {1, (void *)"H"}, v = {sizeof(buf), buf};
	int rc;

	put_be(buf, h->seq);
	put_be(buf + 8, (uint64_t)h->ts);
	put_be(buf + 16, h->seg);
	put_be(buf + 24, h->end);
	memcpy(buf + 32, h->hash, ES_HASH_HEX);
	if (head_sum(buf, sum) != 0)
		return es_fail(err, ES_IO, "index: put: out of memory");
	memcpy(buf + HEAD_FIELDS, sum, HEAD_SUM);
	rc = mdb_put(ix->txn, ix->dbi, &k, &v, 0);
	return rc ? lmdb_fail(err, rc, "put") : 0;
}

int es_index_version(struct es_index *ix, const char *stream, size_t len, uint64_t *version)
{
	MDB_val k = mkkey(ix, 's', stream, len, NULL, 0), v;
	int rc = mdb_get(ix->txn, ix->dbi, &k, &v);

	*version = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0 || v.mv_size != 8)
		return -1;
	*version = get_be(v.mv_data);
	return 0;
}

int es_index_find_id(struct es_index *ix, const char *stream, size_t len,
		     const char *id, size_t idlen, uint64_t *version)
{
	MDB_val k = mkkey(ix, 'i', stream, len, id, idlen), v;
	int rc = mdb_get(ix->txn, ix->dbi, &k, &v);

	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || v.mv_size != 8)
		return -1;
	*version = get_be(v.mv_data);
	return 0;
}

static void pos_bytes(const struct es_pos *pos, unsigned char p[28])
{
	put_be(p, pos->seq);
	put_be(p + 8, pos->seg);
	put_be(p + 16, pos->off);
	p[24] = (unsigned char)(pos->len >> 24);
	p[25] = (unsigned char)(pos->len >> 16);
	p[26] = (unsigned char)(pos->len >> 8);
	p[27] = (unsigned char)pos->len;
}

int es_index_put_event(struct es_index *ix, const char *stream, size_t len,
		       uint64_t version, const char *id, size_t idlen,
		       const struct es_pos *pos, struct es_error *err)
{
	unsigned char ver[8], p[28];
	MDB_val k, v;
	int rc;

	put_be(ver, version);
	pos_bytes(pos, p);
	k = mkkey(ix, 'e', stream, len, ver, 8);
	v.mv_data = p;
	v.mv_size = sizeof(p);
	rc = mdb_put(ix->txn, ix->dbi, &k, &v, 0);
	if (rc == 0 && idlen > 0) {
		k = mkkey(ix, 'i', stream, len, id, idlen);
		v.mv_data = ver;
		v.mv_size = 8;
		rc = mdb_put(ix->txn, ix->dbi, &k, &v, 0);
	}
	if (rc == 0) {
		k = mkkey(ix, 's', stream, len, NULL, 0);
		v.mv_data = ver;
		v.mv_size = 8;
		rc = mdb_put(ix->txn, ix->dbi, &k, &v, 0);
	}
	return rc ? lmdb_fail(err, rc, "put") : 0;
}

/* A key of es_index_put_events: its first 16 bytes as two numbers (most
 * comparisons end there: "e" and a stream name), where the rest is in the
 * arena, and its event. */
struct pkey {
	uint64_t h0, h1;
	size_t off, ev;
	uint32_t len;
	unsigned char kind;
};

/* LMDB's default order (memcmp, then the shorter first), then input order. */
static inline int cmp_pkey(const void *a, const void *b, void *arena)
{
	const struct pkey *x = a, *y = b;
	const unsigned char *ar = arena;
	uint32_t m = x->len < y->len ? x->len : y->len;
	int d;

	if (x->h0 != y->h0)
		return x->h0 < y->h0 ? -1 : 1;
	if (x->h1 != y->h1)
		return x->h1 < y->h1 ? -1 : 1;
	d = m > 16 ? memcmp(ar + x->off + 16, ar + y->off + 16, m - 16) : 0;
	if (d == 0 && x->len != y->len)
		d = x->len < y->len ? -1 : 1;
	if (d == 0 && x->ev != y->ev)
		d = x->ev < y->ev ? -1 : 1;
	return d;
}

/* Sort the keys: insertion sort of runs of 16, then merges bottom up,
 * with the comparison inlined (glibc's qsort_r calls through a pointer
 * and copies elements a byte count at a time: 7% of a bulk append). */
static int sort_pkeys(struct pkey *a, size_t n, const unsigned char *ar)
{
	struct pkey *tmp, *src = a, *dst;

	for (size_t lo = 0; lo < n; lo += 16) {
		size_t hi = lo + 16 < n ? lo + 16 : n;
		for (size_t i = lo + 1; i < hi; i++) {
			struct pkey x = a[i];
			size_t j = i;
			for (; j > lo && cmp_pkey(&x, &a[j - 1], (void *)ar) < 0; j--)
				a[j] = a[j - 1];
			a[j] = x;
		}
	}
	if (n <= 16)
		return 0;
	tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return -1;
	dst = tmp;
	for (size_t w = 16; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				dst[k++] = cmp_pkey(&src[j], &src[i], (void *)ar) < 0 ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		struct pkey *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	free(tmp);
	return 0;
}

static size_t add_key(unsigned char *arena, size_t at, char tag, const char *s, size_t len,
		      const void *tail, size_t tlen, struct pkey *k)
{
	unsigned char *p = arena + at;

	*p++ = (unsigned char)tag;
	memcpy(p, s, len);
	p += len;
	if (tail) {
		*p++ = '\0';
		memcpy(p, tail, tlen);
		p += tlen;
	}
	k->off = at;
	k->len = (uint32_t)(p - (arena + at));
	k->h0 = k->h1 = 0;
	for (uint32_t i = 0; i < 8; i++) {
		k->h0 = k->h0 << 8 | (i < k->len ? arena[at + i] : 0);
		k->h1 = k->h1 << 8 | (i + 8 < k->len ? arena[at + i + 8] : 0);
	}
	return at + k->len;
}


int es_index_put_events(struct es_index *ix, const struct es_index_event *ev, size_t n,
			struct es_error *err)
{
	size_t bytes = 0, nk = 0, at = 0;
	unsigned char *arena;
	struct pkey *keys;
	MDB_cursor *cur = NULL;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (ev[i].stream_len > ES_NAME_MAX || ev[i].id_len > ES_NAME_MAX)
			return es_fail(err, ES_IO, "index: name too long");
		bytes += 3 * (ev[i].stream_len + 2) + 8 + ev[i].id_len;
	}
	arena = malloc(bytes ? bytes : 1);
	keys = malloc((3 * n + 1) * sizeof(*keys));
	if (!arena || !keys) {
		free(arena);
		free(keys);
		return es_fail(err, ES_IO, "index: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ver[8];
		put_be(ver, ev[i].version);
		at = add_key(arena, at, 'e', ev[i].stream, ev[i].stream_len, ver, 8, &keys[nk]);
		keys[nk].ev = i;
		keys[nk++].kind = 'e';
		if (ev[i].id_len > 0) {
			at = add_key(arena, at, 'i', ev[i].stream, ev[i].stream_len, ev[i].id,
				     ev[i].id_len, &keys[nk]);
			keys[nk].ev = i;
			keys[nk++].kind = 'i';
		}
		at = add_key(arena, at, 's', ev[i].stream, ev[i].stream_len, NULL, 0, &keys[nk]);
		keys[nk].ev = i;
		keys[nk++].kind = 's';
	}
	if (sort_pkeys(keys, nk, arena)) {
		free(arena);
		free(keys);
		return es_fail(err, ES_IO, "index: out of memory");
	}
	ix->held_puts += nk;
	rc = mdb_cursor_open(ix->txn, ix->dbi, &cur);
	for (size_t i = 0; i < nk && rc == 0; i++) {
		const struct pkey *k = &keys[i];
		unsigned char val[28];
		MDB_val kv, vv;
		/* the same key again later (a stream's version): that one wins */
		if (i + 1 < nk && keys[i + 1].len == k->len &&
		    memcmp(arena + keys[i + 1].off, arena + k->off, k->len) == 0)
			continue;
		kv.mv_data = arena + k->off;
		kv.mv_size = k->len;
		vv.mv_data = val;
		if (k->kind == 'e') {
			pos_bytes(&ev[k->ev].pos, val);
			vv.mv_size = 28;
		} else {
			put_be(val, ev[k->ev].version);
			vv.mv_size = 8;
		}
		rc = mdb_cursor_put(cur, &kv, &vv, 0);
	}
	if (cur)
		mdb_cursor_close(cur);
	free(arena);
	free(keys);
	return rc ? lmdb_fail(err, rc, "put") : 0;
}

int es_index_get_pos(struct es_index *ix, const char *stream, size_t len,
		     uint64_t version, struct es_pos *pos)
{
	unsigned char ver[8];
	MDB_val k, v;
	int rc;

	put_be(ver, version);
	k = mkkey(ix, 'e', stream, len, ver, 8);
	rc = mdb_get(ix->txn, ix->dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 1;
	if (rc != 0 || v.mv_size != 28)
		return -1;
	pos_parse(v.mv_data, pos);
	return 0;
}

/* The streams with prefix in key order; with poscb, also where each one's
 * last event is, from a second cursor that walks along: the next stream's
 * "e" key is a few keys on, mostly on the page it is already on. */
static int walk_streams(struct es_index *ix, MDB_txn *txn, const char *prefix, size_t plen,
			int (*cb)(void *arg, const char *stream, size_t len, uint64_t version),
			int (*poscb)(void *arg, const char *stream, size_t len, uint64_t version,
				     const struct es_pos *pos),
			void *arg)
{
	MDB_cursor *cur, *pc = NULL;
	char skey[KEY_MAX], ekey[KEY_MAX]; /* not ix->key: it is the thread's that uses ix */
	MDB_val k = keyin(skey, 's', prefix, plen, NULL, 0), v;
	int rc, ret = 0;

	if (mdb_cursor_open(txn, ix->dbi, &cur))
		return -1;
	if (poscb && mdb_cursor_open(txn, ix->dbi, &pc)) {
		mdb_cursor_close(cur);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *key = k.mv_data;
		size_t len = k.mv_size - 1;
		struct es_pos pos, *pp = NULL;
		uint64_t version;
		if (k.mv_size < 1 || key[0] != 's' || len < plen ||
		    (plen && memcmp(key + 1, prefix, plen) != 0))
			break;
		if (v.mv_size != 8)
			continue;
		version = get_be(v.mv_data);
		if (!poscb) {
			ret = cb(arg, key + 1, len, version);
		} else {
			unsigned char vb[8];
			MDB_val ek, ev;
			put_be(vb, version);
			ek = keyin(ekey, 'e', key + 1, len, vb, sizeof vb);
			if (mdb_cursor_get(pc, &ek, &ev, MDB_SET_KEY) == 0 && ev.mv_size == 28) {
				pos_parse(ev.mv_data, &pos);
				pp = &pos;
			}
			ret = poscb(arg, key + 1, len, version, pp);
		}
		if (ret)
			break;
	}
	if (pc)
		mdb_cursor_close(pc);
	mdb_cursor_close(cur);
	return ret;
}

int es_index_each_stream_pos(struct es_index *ix,
			     int (*cb)(void *arg, const char *stream, size_t len, uint64_t version,
				       const struct es_pos *pos),
			     void *arg)
{
	return walk_streams(ix, ix->txn, NULL, 0, NULL, cb, arg);
}

int es_index_each_stream_pos_apart(struct es_index *ix, struct es_head *h, int *head_rc,
				   int (*cb)(void *arg, const char *stream, size_t len,
					     uint64_t version, const struct es_pos *pos),
				   void *arg)
{
	MDB_txn *txn;
	int ret;

	/* (MDB_NOTLS: a read transaction is not tied to its thread's slot) */
	if (mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	*head_rc = head_in(ix, txn, h);
	ret = walk_streams(ix, txn, NULL, 0, NULL, cb, arg);
	mdb_txn_abort(txn);
	return ret;
}

int es_index_each_stream(struct es_index *ix, const char *prefix, size_t plen,
			 int (*cb)(void *arg, const char *stream, size_t len, uint64_t version),
			 void *arg)
{
	return walk_streams(ix, ix->txn, prefix, plen, cb, NULL, arg);
}

/* Every "e" key from the first on: one cursor, page after page. */
static int walk_pos(struct es_index *ix, MDB_txn *txn,
		   int (*cb)(void *arg, const char *stream, size_t len, uint64_t version,
			     const struct es_pos *pos),
		   void *arg)
{
	MDB_cursor *cur;
	MDB_val k = {1, (void *)"e"}, v;
	int rc, ret = 0;

	if (mdb_cursor_open(txn, ix->dbi, &cur))
		return -1;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *key = k.mv_data;
		size_t n = k.mv_size;
		struct es_pos pos;
		if (n < 1 || key[0] != 'e')
			break;
		/* "e" stream 0 version: the version is the last 8 bytes (a
		 * name may hold a 0 byte itself) */
		if (n < 10 || key[n - 9] != '\0' || v.mv_size != 28) {
			ret = cb(arg, key + 1, n - 1, 0, NULL);
		} else {
			pos_parse(v.mv_data, &pos);
			ret = cb(arg, key + 1, n - 10, get_be((const unsigned char *)key + n - 8), &pos);
		}
		if (ret)
			break;
	}
	mdb_cursor_close(cur);
	return ret ? ret : rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

int es_index_each_pos(struct es_index *ix,
		      int (*cb)(void *arg, const char *stream, size_t len, uint64_t version,
				const struct es_pos *pos),
		      void *arg)
{
	return walk_pos(ix, ix->txn, cb, arg);
}

int es_index_each_pos_apart(struct es_index *ix, struct es_head *h, int *head_rc,
			    int (*cb)(void *arg, const char *stream, size_t len, uint64_t version,
				      const struct es_pos *pos),
			    void *arg)
{
	MDB_txn *txn;
	int ret;

	if (mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	*head_rc = head_in(ix, txn, h);
	ret = walk_pos(ix, txn, cb, arg);
	mdb_txn_abort(txn);
	return ret;
}
