/* The index: a batch put (sorted, through a cursor) against a put at a time. */
#include <stdlib.h>
#include <unistd.h>

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
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		CHECK(system(cmd) == 0);
	}
	return unit_done("index");
}
