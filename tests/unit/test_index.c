/* The index: a batch put (sorted, through a cursor) against a put at a time;
 * held (deferred) commits as another process sees them; the head's check
 * sum. */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "index.h"
#include "unit.h"

#define NEV 3000
#define NSTREAMS 40

static char names[NSTREAMS][40];

static int open_ix(const char *dir, struct es_index **ix)
{
	struct es_error err = {0, ""};
	return es_index_open(ix, dir, 1, &err) || es_index_begin(*ix, 1, &err);
}


/* What another process (a reader) finds in dir: the version of stream, or
 * 0 when it has none. (LMDB must not open one environment twice in a
 * process, hence the fork.) */
static uint64_t seen_by_other(const char *dir, const char *stream)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct es_index *r = NULL;
		struct es_error err = {0, ""};
		uint64_t v = 0;
		if (es_index_open(&r, dir, 0, &err) || es_index_begin(r, 0, &err) ||
		    es_index_version(r, stream, strlen(stream), &v) != 0)
			v = 0;
		_exit(v > 250 ? 250 : (int)v);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return 255;
	return (uint64_t)WEXITSTATUS(st);
}

/* Put raw bytes as index/'s head, behind es_index's back. 0 or -1. */
static int raw_put_head(const char *dir, const void *val, size_t len)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = {1, (void *)"H"}, v = {len, (void *)val};
	int rc = mdb_env_create(&env);

	if (rc == 0)
		rc = mdb_env_set_mapsize(env, (size_t)1 << 30);
	if (rc == 0)
		rc = mdb_env_open(env, dir, 0, 0644);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, NULL, 0, &dbi);
	if (rc == 0)
		rc = mdb_put(txn, dbi, &k, &v, 0);
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc ? -1 : 0;
}

/* The raw bytes of the head, or 0 when there is none. */
static size_t raw_get_head(const char *dir, unsigned char *out, size_t cap)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = {1, (void *)"H"}, v = {0, NULL};
	size_t n = 0;

	if (mdb_env_create(&env) == 0 && mdb_env_set_mapsize(env, (size_t)1 << 30) == 0 &&
	    mdb_env_open(env, dir, MDB_RDONLY, 0644) == 0 &&
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 &&
	    mdb_dbi_open(txn, NULL, 0, &dbi) == 0 && mdb_get(txn, dbi, &k, &v) == 0 &&
	    v.mv_size <= cap) {
		memcpy(out, v.mv_data, v.mv_size);
		n = v.mv_size;
	}
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return n;
}

/* 0 and *h filled, or es_index_get_head's other answers; -2 when the
 * index would not open. */
static int head_of(const char *dir, struct es_head *h)
{
	struct es_index *ix = NULL;
	struct es_error err = {0, ""};
	int rc = -2;

	if (es_index_open(&ix, dir, 0, &err) == 0 && es_index_begin(ix, 0, &err) == 0) {
		rc = es_index_get_head(ix, h);
		es_index_abort(ix);
	}
	es_index_close(ix);
	return rc;
}

/* The head: what is put is got back; damage to any byte of it (a flip the
 * log would read as "records lost") is told as damage, never as another
 * head; a head written before the check sum (96 bytes) still reads. */
static void test_head(const char *dir)
{
	struct es_index *ix = NULL;
	struct es_error err = {0, ""};
	struct es_head h, g;
	unsigned char raw[256], bad[256];
	size_t n;
	int all = 1;

	memset(&h, 0, sizeof(h));
	h.seq = 83;
	h.ts = 1700000000123456;
	h.seg = 81;
	h.end = 4321;
	memcpy(h.hash, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	       ES_HASH_HEX + 1);
	CHECK(head_of(dir, &g) == -2); /* no index yet */
	CHECK(es_index_open(&ix, dir, 1, &err) == 0 && es_index_begin(ix, 1, &err) == 0);
	CHECK(es_index_get_head(ix, &g) == 1);
	CHECK(es_index_put_head(ix, &h, &err) == 0 && es_index_commit(ix, &err) == 0);
	es_index_close(ix);
	memset(&g, 0, sizeof(g));
	CHECK(head_of(dir, &g) == 0 && g.seq == 83 && g.ts == h.ts && g.seg == 81 &&
	      g.end == 4321 && strcmp(g.hash, h.hash) == 0);
	n = raw_get_head(dir, raw, sizeof(raw));
	CHECK(n == 32 + ES_HASH_HEX + 16);
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(bad, raw, n);
			bad[i] ^= (unsigned char)(1u << bit);
			all &= raw_put_head(dir, bad, n) == 0 && head_of(dir, &g) == -1;
		}
	}
	CHECK(all);
	CHECK(raw_put_head(dir, raw, n - 1) == 0 && head_of(dir, &g) == -1);
	/* the old head, without its sum */
	CHECK(raw_put_head(dir, raw, 32 + ES_HASH_HEX) == 0);
	memset(&g, 0, sizeof(g));
	CHECK(head_of(dir, &g) == 0 && g.seq == 83 && g.end == 4321 &&
	      strcmp(g.hash, h.hash) == 0);
}

static int put_one(struct es_index *ix, const char *stream, uint64_t version)
{
	struct es_error err = {0, ""};
	struct es_index_event e;

	memset(&e, 0, sizeof(e));
	e.stream = stream;
	e.stream_len = strlen(stream);
	e.version = version;
	e.pos.seq = e.pos.seg = 1;
	e.pos.len = 10;
	return es_index_begin(ix, 1, &err) || es_index_put_events(ix, &e, 1, &err) ||
	       es_index_commit(ix, &err);
}

int main(void)
{
	char tmpl[] = "/tmp/es-test-index-XXXXXX", a[64], b[64];
	static char ids[NEV][40];
	static struct es_index_event ev[NEV];
	uint64_t ver[NSTREAMS] = {0};
	struct es_index *ia = NULL, *ib = NULL;
	struct es_error err = {0, ""};
	int bad = 0;

	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(a, sizeof(a), "%s/a", tmpl);
	snprintf(b, sizeof(b), "%s/b", tmpl);
	/* names that share long prefixes, are prefixes of one another, and
	 * straddle the 16 bytes the sort compares as numbers */
	for (int s = 0; s < NSTREAMS; s++)
		snprintf(names[s], sizeof(names[s]), s % 3 == 0 ? "order-%d" : s % 3 == 1 ?
			 "customer-0000000%d" : "order-%d-x", s * 7 % 23);
	srand(7);
	for (int i = 0; i < NEV; i++) {
		int s = rand() % NSTREAMS;
		ev[i].stream = names[s];
		ev[i].stream_len = strlen(names[s]);
		ev[i].version = ++ver[s];
		snprintf(ids[i], sizeof(ids[i]), "id-%d", rand() % 100000);
		ev[i].id = ids[i];
		ev[i].id_len = i % 5 ? strlen(ids[i]) : 0;
		ev[i].pos.seq = (uint64_t)i + 1;
		ev[i].pos.seg = 1;
		ev[i].pos.off = (uint64_t)i * 100;
		ev[i].pos.len = 100;
	}
	CHECK(open_ix(a, &ia) == 0 && open_ix(b, &ib) == 0);
	/* a: one put at a time; b: the same events as three batches */
	for (int i = 0; i < NEV; i++)
		bad += es_index_put_event(ia, ev[i].stream, ev[i].stream_len, ev[i].version, ev[i].id,
					  ev[i].id_len, &ev[i].pos, &err) != 0;
	CHECK(bad == 0);
	CHECK(es_index_put_events(ib, ev, 1000, &err) == 0);
	CHECK(es_index_put_events(ib, ev + 1000, 1, &err) == 0);
	CHECK(es_index_put_events(ib, ev + 1001, NEV - 1001, &err) == 0);
	CHECK(es_index_put_events(ib, ev, 0, &err) == 0);
	for (int s = 0; s < NSTREAMS; s++) {
		uint64_t va = 99, vb = 98;
		size_t n = strlen(names[s]);
		bad += es_index_version(ia, names[s], n, &va) != 0 ||
		       es_index_version(ib, names[s], n, &vb) != 0 || va != vb;
		for (uint64_t v = 1; v <= va + 1; v++) {
			struct es_pos pa = {0, 0, 0, 0}, pb = {1, 1, 1, 1};
			int ra = es_index_get_pos(ia, names[s], n, v, &pa);
			int rb = es_index_get_pos(ib, names[s], n, v, &pb);
			bad += ra != rb || (ra == 0 && (pa.seq != pb.seq || pa.seg != pb.seg ||
							 pa.off != pb.off || pa.len != pb.len));
		}
	}
	for (int i = 0; i < NEV; i++) {
		uint64_t va = 0, vb = 1;
		int ra = es_index_find_id(ia, ev[i].stream, ev[i].stream_len, ids[i], strlen(ids[i]), &va);
		int rb = es_index_find_id(ib, ev[i].stream, ev[i].stream_len, ids[i], strlen(ids[i]), &vb);
		bad += ra != rb || (ra == 0 && va != vb);
	}
	CHECK(bad == 0);
	/* a name no stored one can have is refused, not overrun */
	{
		static char longname[4096];
		struct es_index_event e = ev[0];
		memset(longname, 'x', sizeof(longname) - 1);
		e.stream = longname;
		e.stream_len = strlen(longname);
		CHECK(es_index_put_events(ib, &e, 1, &err) != 0);
	}
	es_index_abort(ia);
	es_index_abort(ib);
	es_index_close(ia);
	es_index_close(ib);
	/* held commits (a bulk run): not committed, so not seen by another
	 * process, yet seen through the held transaction; committed once
	 * enough keys were put; thrown away by a discard; flushed by the end
	 * of the hold */
	{
		char c[64];
		struct es_index *ic = NULL;
		uint64_t v = 0;
		int k, seen = 0;
		snprintf(c, sizeof(c), "%s/c", tmpl);
		CHECK(es_index_open(&ic, c, 1, &err) == 0);
		CHECK(es_index_hold(ic, 1, &err) == 0);
		CHECK(put_one(ic, "held", 7) == 0);
		CHECK(seen_by_other(c, "held") == 0);
		es_index_abort(ic); /* leaves a held transaction alone */
		CHECK(es_index_begin(ic, 0, &err) == 0 &&
		      es_index_version(ic, "held", 4, &v) == 0 && v == 7);
		es_index_abort(ic);
		/* NEV events, about 2.6 keys each, per commit: the held
		 * transaction is committed within 100 commits, not at the first */
		for (k = 1; k <= 100 && !seen; k++) {
			CHECK(es_index_begin(ic, 1, &err) == 0 &&
			      es_index_put_events(ic, ev, NEV, &err) == 0 &&
			      es_index_commit(ic, &err) == 0);
			seen = seen_by_other(c, "held") == 7;
		}
		CHECK(seen && k > 3);
		CHECK(put_one(ic, "gone", 3) == 0);
		es_index_discard(ic);
		CHECK(es_index_begin(ic, 0, &err) == 0 &&
		      es_index_version(ic, "gone", 4, &v) == 0 && v == 0);
		es_index_abort(ic);
		CHECK(put_one(ic, "kept", 5) == 0);
		CHECK(seen_by_other(c, "kept") == 0);
		CHECK(es_index_hold(ic, 0, &err) == 0);
		CHECK(seen_by_other(c, "kept") == 5);
		CHECK(es_index_flush(ic, &err) == 0); /* nothing held: nothing to do */
		es_index_close(ic);
	}
	{
		char d[64];
		snprintf(d, sizeof(d), "%s/d", tmpl);
		CHECK(mkdir(d, 0755) == 0);
		test_head(d);
	}
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		CHECK(system(cmd) == 0);
	}
	return unit_done("index");
}
