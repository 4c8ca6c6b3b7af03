#!/usr/bin/env bats
# The torture harness, quick pass (the long one is `make torture`): every
# family of tests/torture/ once, plus a regression test for each bug the
# harness found. See tests/torture/lib.sh for how a family is written.

bats_require_minimum_version 1.5.0
load helpers

T="$ROOT/tests/torture"
export ES_BIN

MNT=""
teardown() {
	if [ -n "$MNT" ]; then umount "$MNT" 2>/dev/null || true; fi
}

# family NAME: run the quick pass of a family; show its summary line
family() {
	run --separate-stderr "$T/$1" --quick
	echo "# $output" >&3
	if [ "$status" -ne 0 ]; then
		echo "$stderr" | tail -n 40
	fi
	[ "$status" -eq 0 ]
}

# three events with given ids in streams a and b
three() {
	printf '{"stream":"a","type":"T","id":"%s1"}\n{"stream":"b","type":"T","id":"%s2"}\n{"stream":"a","type":"T","id":"%s3"}\n' "$1" "$1" "$1"
}

@test "check-store: passes a good store, finds a flipped byte, a lost ack, a partial batch" {
	three x | es-append >acks
	run "$T/check-store" --acks acks "$ES_STORE"
	assert_success
	assert_output --partial "records=3 "
	cp -a "$ES_STORE" bad
	sed -i '2s/"b"/"c"/' bad/log/*.ndjson
	run "$T/check-store" bad
	assert_failure
	assert_output --partial "chain=1"
	head -n 2 "$(seg)" >"$TMP/short" && cp "$TMP/short" bad/log/00000000000000000001.ndjson
	run "$T/check-store" --acks acks bad
	assert_failure
	assert_output --partial "missing=1"
	assert_output --partial "partial=1"
}

@test "check-store: reads the archive on its own; finds a changed archived record, a purge is no loss" {
	three x | es-append >acks
	jq -c '.segment_size = 4096' "$ES_STORE/store.json" >sj && mv sj "$ES_STORE/store.json"
	for i in $(seq 1 12); do
		printf '{"stream":"a","type":"T","data":{"pad":"%0600d"}}\n' "$i" | es-append >>acks
	done
	es-archive -q --before 2100-01-01
	[ -n "$(ls "$ES_STORE"/archive/*.zst)" ]
	three late | es-append >>acks
	run "$T/check-store" --acks acks "$ES_STORE"
	assert_success
	assert_output --partial "records=18 "
	# a record changed inside an archived segment (and the MANIFEST's sha256
	# made to agree): the chain restored on its own breaks
	cp -a "$ES_STORE" bad
	f=$(ls bad/archive/*.zst | head -n 1)
	old=$(sha256sum <"$f" | cut -c 1-64)
	zstdcat -q "$f" | sed '1s/"a"/"c"/' | zstd -q -c >new.zst
	new=$(sha256sum <new.zst | cut -c 1-64)
	cp new.zst "$f" && sed -i "s/$old/$new/" bad/archive/MANIFEST
	ES_TORTURE_VERIFY=0 run "$T/check-store" --acks acks bad
	assert_failure
	assert_output --partial "bad=1 "
	# purged history is not missing; what comes after it is checked
	es-archive -q --purge-before 2100-01-01
	run "$T/check-store" --acks acks "$ES_STORE"
	assert_success
	assert_output --partial "records=3 "
}

# ---- the families, quick --------------------------------------------------------

@test "torture: crash family (quick)" {
	family crash
}

@test "torture: I/O error family (quick)" {
	family ioerr
}

@test "torture: disk full family (quick)" {
	family diskfull
}

@test "torture: concurrency family (quick)" {
	family concurrency
}

@test "torture: corruption family (quick)" {
	family corruption
}

@test "torture: hostile input and pipelines family (quick)" {
	family hostile
}

@test "fuzz targets replay their seed corpus and every regression input (no clang needed)" {
	local cflags="" t
	# a sanitizer build's library needs the sanitizers at link time too
	if nm "$ES_BIN/libes.a" 2>/dev/null | grep -q __asan_init; then
		cflags="-fsanitize=address,undefined"
	fi
	for t in batch_add_line rec_parse; do
		cc -std=c11 -D_GNU_SOURCE $cflags -I"$ROOT/lib" $(pkg-config --cflags jansson 2>/dev/null) \
			-o "$TMP/fuzz_$t" "$ROOT/tests/fuzz/fuzz_$t.c" "$ROOT/tests/fuzz/standalone.c" \
			"$ES_BIN/libes.a" $(pkg-config --libs jansson libzstd lmdb libcrypto 2>/dev/null ||
				echo -ljansson -lzstd -llmdb -lcrypto) -lpthread -lm
		run "$TMP/fuzz_$t" "$ROOT"/tests/fuzz/corpus/$t/* $(ls "$ROOT"/tests/fuzz/regress/$t.* 2>/dev/null)
		assert_success
	done
}

# ---- regressions: one per bug the harness found --------------------------------

@test "regression: deleting index/ loses nothing; the next append rebuilds it" {
	# scan_segment took es_rec_parse's reason, which it also sets on
	# success, for a failure: every record looked damaged, so a rebuild
	# refused the store and a lagging index cut valid records.
	three x | es-append -q
	rm -rf "$ES_STORE/index"
	run es-append --expect 2 <<<'{"stream":"a","type":"T"}'
	assert_success
	assert_output --partial '"seq":4,"stream":"a","version":3'
	ES_CRASH=after-write:1 es-append -q <<<'{"stream":"b","type":"T","id":"late"}' || true
	run es-append <<<'{"stream":"a","type":"T"}'
	assert_success
	assert_output --partial '"seq":6,"stream":"a","version":4'
	run "$T/check-store" "$ES_STORE"
	assert_success
	[ -z "$(ls "$ES_STORE/quarantine")" ]
}

@test "regression: a batch whose fdatasync and undo both fail never shows up" {
	# The undo after a failed fdatasync could itself fail, leaving whole,
	# valid records that the next writer's recovery kept: "not stored",
	# then stored. Now the writer leaves DIR/undo and recovery cuts them.
	three x | es-append -q
	three y >y.in
	ES_FAULT=fdatasync:1,ftruncate:1 run -4 es-append <y.in
	assert_output --partial "not stored: fdatasync failed"
	[ -f "$ES_STORE/undo" ]
	run es-append <<<'{"stream":"a","type":"T"}'
	assert_success
	assert_output --partial '"seq":4,'
	[ ! -e "$ES_STORE/undo" ]
	ls "$ES_STORE"/quarantine/*.torn
	run "$T/check-store" --absent y.in "$ES_STORE"
	assert_success
	# when even the note cannot be written, the message does not say "not stored"
	ES_FAULT=fdatasync:1,ftruncate:1,rename:1 run -4 es-append <y.in
	assert_output --partial "not acknowledged: fdatasync failed"
	refute_output --partial "not stored"
}

@test "regression: every I/O failure of es-append says \"not stored\"" {
	three x | es-append -q
	for spec in malloc:1 malloc:2 open:1 open:2; do
		ES_FAULT=$spec run -4 es-append <<<'{"stream":"a","type":"T"}'
		assert_output --partial "es-append: not stored: "
	done
	run "$T/check-store" "$ES_STORE"
	assert_success
	assert_output --partial "records=3 "
}

@test "regression: a flipped version in index/ does not make es-append reuse a version" {
	# es-append took the stream's version from the index unchecked, so a
	# damaged entry wrote a second "version 7" into the log for good. Now
	# the index's answer is checked against the log and, when they
	# disagree, the index is rebuilt (it is derived data).
	for i in 1 2 3 4 5 6 7; do echo '{"stream":"s1","type":"T"}'; done | es-append -q
	command -v python3 >/dev/null || skip "python3 is missing"
	python3 - "$ES_STORE/index/data.mdb" <<'PY'
import sys
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
i = d.find(b'ss1\x00\x00\x00\x00\x00\x00\x00\x07')
assert i >= 0
d[i + 10] = 5
open(p, 'wb').write(d)
PY
	run es-append --expect 7 <<<'{"stream":"s1","type":"T"}'
	assert_success
	assert_output --partial '"version":8,'
	run "$T/check-store" "$ES_STORE"
	assert_success
}

@test "regression: recovery never cuts what the index vouched for, nor the active segment for a sealed one's loss" {
	# Damage at or before the index head in the active segment was cut
	# into quarantine/ as if torn (acknowledged events gone, exit 0), a lost
	# active segment or log/ was not noticed, and a sealed segment that
	# lost its end made recovery cut the whole (valid) active segment.
	for i in 1 2 3; do echo '{"stream":"a","type":"T","data":{"pad":"'"$(printf '%*s' 1500 '' | tr ' ' x)"'"}}'; done | es-append -q
	jq -c '.segment_size = 4096' "$ES_STORE/store.json" >s.json && mv s.json "$ES_STORE/store.json"
	for i in 1 2 3 4 5; do echo '{"stream":"a","type":"T","data":{"pad":"'"$(printf '%*s' 1500 '' | tr ' ' x)"'"}}' | es-append -q; done
	echo '{"stream":"a","type":"T"}' | es-append -q # the active segment: two records
	cp -a "$ES_STORE" "$TMP/pristine"
	last=$(seg)
	truncate -s -20 "$last"
	run -1 es-append <<<'{"stream":"a","type":"T"}'
	assert_output --regexp 'log/[0-9]{20}\.ndjson: offset [0-9]+: seq [0-9]+: '
	head -n 1 "$TMP/pristine/log/${last##*/}" >"$last"
	run -1 es-append <<<'{"stream":"a","type":"T"}'
	assert_output --partial "a segment is missing or cut short"
	rm -f "$last"
	run -1 es-append <<<'{"stream":"a","type":"T"}'
	rm -f "$ES_STORE"/log/*.ndjson
	run -1 es-append <<<'{"stream":"a","type":"T"}'
	assert_output --partial "log/ holds no segment"
	# a sealed segment loses its last line; the active one holds one record
	rm -rf "$ES_STORE" && cp -a "$TMP/pristine" "$ES_STORE"
	echo '{"stream":"b","type":"T","data":{"pad":"'"$(printf '%*s' 5000 '' | tr ' ' x)"'"}}' | es-append -q
	sealed=$(ls "$ES_STORE"/log/*.ndjson | tail -n 2 | head -n 1)
	sed -i '$d' "$sealed"
	rm -rf "$ES_STORE/index"
	sum=$(cat "$ES_STORE"/log/*.ndjson | sha256sum)
	run -1 es-append <<<'{"stream":"a","type":"T"}'
	assert_output --partial "the segment before lost its end"
	[ "$(cat "$ES_STORE"/log/*.ndjson | sha256sum)" = "$sum" ]
	[ -z "$(ls "$ES_STORE/quarantine")" ]
}

@test "regression: a damaged index head is rebuilt, not taken for a lost segment" {
	# A flipped byte in the seq of index/'s head (seq 83 read as
	# 25051272927248467) stopped every append with "the log ends at seq 83,
	# but seq 25051272927248467 was stored": damage to derived data taken
	# for lost events. The head now carries a check sum.
	for i in $(seq 1 83); do echo '{"stream":"s'$((i % 7))'","type":"T"}'; done | es-append -q
	command -v python3 >/dev/null || skip "python3 is missing"
	hash=$(tail -n 1 "$(seg)" | jq -r .hash)
	python3 - "$ES_STORE/index/data.mdb" "$hash" <<'PY2'
import sys
p, h = sys.argv[1], sys.argv[2].encode()
d = bytearray(open(p, 'rb').read())
i, n = d.find(h), 0
while i >= 0:
    if d[i - 32:i - 24] == (83).to_bytes(8, 'big'):
        d[i - 31] = 0x59
        n += 1
    i = d.find(h, i + 1)
assert n > 0
open(p, 'wb').write(d)
PY2
	run es-verify
	assert_success
	assert_output --partial "its head is damaged"
	run es-append --expect 11 <<<'{"stream":"s0","type":"T"}'
	assert_success
	assert_output --partial '"seq":84,'
	run "$T/check-store" "$ES_STORE"
	assert_success
	assert_output --partial "records=84 "
	run es-verify
	assert_success
	refute_output --partial "index/"
}

@test "regression: a cut index/data.mdb does not kill es-append with SIGBUS" {
	# LMDB maps the file and trusts its meta page: pages past a cut end
	# raised SIGBUS. Such an index is now dropped and rebuilt.
	for i in $(seq 1 200); do echo '{"stream":"s'$((i % 50))'","type":"T"}'; done | es-append -q
	truncate -s 12288 "$ES_STORE/index/data.mdb"
	run es-append --expect 4 <<<'{"stream":"s1","type":"T"}'
	assert_success
	assert_output --partial '"version":5,'
	run "$T/check-store" "$ES_STORE"
	assert_success
}

@test "regression: a cut index/data.mdb does not kill es-verify or a reader with SIGBUS" {
	# es-verify opened the index without the check es-append made, and
	# died of SIGBUS (exit 135) where an audit wants its verdict. The
	# check is now part of opening the index, for every program.
	for i in $(seq 1 200); do echo '{"stream":"s'$((i % 50))'","type":"T"}'; done | es-append -q
	es-replay --stream s1 > want
	truncate -s 12288 "$ES_STORE/index/data.mdb"
	run --separate-stderr es-verify
	assert_success
	[[ "$stderr" == *"warning: index/: unreadable"* ]]
	run --separate-stderr es-verify --json
	assert_success
	[ "$(jq -r '.warnings[0].reason' <<<"$output")" = "unreadable: rebuilt by the next append, or by --repair-index" ]
	# a reader falls back to the log (or rebuilds the index): same state
	run es-replay --stream s1
	assert_success
	[ "$output" = "$(cat want)" ]
	truncate -s 12288 "$ES_STORE/index/data.mdb"
	run es-verify --repair-index
	assert_success
	run --separate-stderr es-verify
	assert_success
	[[ "$stderr" != *"warning"* ]]
}

@test "regression: a full disk does not kill es-append with SIGBUS (LMDB's lock file)" {
	# LMDB grows index/lock.mdb with ftruncate and writes it through a map:
	# on a full disk that was SIGBUS, not "not stored". The lock file now
	# gets real blocks first.
	mkdir mnt
	mount -t tmpfs -o size=1m tmpfs mnt 2>/dev/null || skip "cannot mount a tmpfs here"
	MNT=$TMP/mnt
	mkdir mnt/store
	dd if=/dev/zero of=mnt/fill bs=4096 2>/dev/null || true
	truncate -s -4096 mnt/fill
	run -4 es-append -d mnt/store <<<'{"stream":"a","type":"T"}'
	assert_output --partial "not stored"
	rm mnt/fill
	run es-append -d mnt/store <<<'{"stream":"a","type":"T"}'
	assert_success
	run "$T/check-store" mnt/store
	assert_success
}

@test "regression: no memory while reading store.json is an I/O error, not bad data" {
	# jansson reports a failed allocation as a parse error: es-append said
	# "store.json: string or '}' expected" and exited 3 (bad input).
	three x | es-append -q
	for n in $(seq 1 40); do
		ES_FAULT=malloc:$n run es-append -q <<<'{"stream":"a","type":"T","id":"m'$n'"}'
		if [ "$status" -ne 0 ]; then
			echo "malloc:$n: $output"
			[ "$status" -eq 4 ]
			assert_output --partial "not stored"
		fi
	done
	run "$T/check-store" "$ES_STORE"
	assert_success
}

@test "regression: an index/ page LMDB finds damaged is rebuilt, not a dead end" {
	# A zeroed page of data.mdb made every append fail with
	# "index: clear: MDB_BAD_TXN" or "put: MDB_CORRUPTED" until somebody
	# deleted index/ by hand. The writer now starts the index again.
	for i in $(seq 1 300); do echo '{"stream":"s'$((i % 60))'","type":"T","id":"e'$i'"}'; done | es-append -q
	cp -a "$ES_STORE" pristine
	pages=$(($(stat -c %s pristine/index/data.mdb) / 4096))
	for ((pg = 2; pg < pages; pg++)); do
		rm -rf "$ES_STORE" && cp -a pristine "$ES_STORE"
		dd if=/dev/zero of="$ES_STORE/index/data.mdb" bs=4096 seek=$pg count=1 conv=notrunc 2>/dev/null
		run es-append -q <<<'{"stream":"s1","type":"T","id":"new"}'
		echo "page $pg: $output"
		assert_success
		ES_TORTURE_VERIFY=0 run "$T/check-store" "$ES_STORE"
		assert_success
		assert_output --partial "records=301 "
	done
}

@test "regression: a damaged last record found through the index is refused, not cut" {
	# The index's answer is checked against the log; when the record it
	# points to was damaged, the index was rebuilt and the damaged (but
	# acknowledged) last record cut into quarantine/ without a word.
	three x | es-append -q
	echo '{"stream":"a","type":"T","data":{"k":"vvvvvvvv"}}' | es-append -q
	sed -i '$s/"version":3,/"version":7,/' "$(seg)"
	sum=$(sha256sum <"$(seg)")
	run -1 es-append <<<'{"stream":"a","type":"T"}'
	assert_output --regexp 'log/[0-9]{20}\.ndjson: offset [0-9]+: seq 4: '
	[ "$(sha256sum <"$(seg)")" = "$sum" ]
	[ -z "$(ls "$ES_STORE/quarantine")" ]
}

@test "regression: no memory while indexing the log is an I/O error, never damage that is cut" {
	# Recovery decodes each record's stream and id to index it; a failed
	# allocation there was taken for a bad string: es-append exited 1
	# ("bad stream or id string; not writing past it") and, at the log's
	# last batch, cut acknowledged records into quarantine/ as a torn tail
	# (found by the full ioerr family: append/reindex, append/staleindex).
	three x | es-append -q
	three y | es-append -q
	cp -a "$ES_STORE" "$TMP/base"
	local before n
	before=$(cat "$ES_STORE"/log/*.ndjson | sha256sum)
	for n in $(seq 1 80); do
		rm -rf "$ES_STORE" && cp -a "$TMP/base" "$ES_STORE" && rm -rf "$ES_STORE/index"
		ES_FAULT=malloc:$n run es-append -q <<<'{"stream":"a","type":"T","id":"m'$n'"}'
		if [ "$status" -ne 0 ]; then
			echo "malloc:$n: $output"
			[ "$status" -eq 4 ]
			assert_output --partial "not stored"
			[ "$(cat "$ES_STORE"/log/*.ndjson | sha256sum)" = "$before" ]
		fi
		[ -z "$(ls "$ES_STORE/quarantine")" ]
		run "$T/check-store" "$ES_STORE"
		assert_success
	done
}
