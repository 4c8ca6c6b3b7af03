#!/usr/bin/env bats
# es-verify: a clean store is never reported broken; every tamper is caught
# and located (file, offset, seq).

load helpers
bats_require_minimum_version 1.5.0

ZERO=0000000000000000000000000000000000000000000000000000000000000000

# A store of several segments: one append creates it, then small segments.
local_setup() {
	append "$(ev a T '{"i":0}')" "$(ev b T '{"i":0}')"
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	for i in $(seq 1 30); do
		append "$(ev a T "{\"i\":$i,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}")" \
			"$(ev "c$((i % 3))" T)"
	done
	SEG1=$(ls "$ES_STORE"/log/*.ndjson | sed -n 1p)
	SEG2=$(ls "$ES_STORE"/log/*.ndjson | sed -n 2p)
	N2=$(basename "$SEG2")
}

# hash_of FILE LINE: the stored hash of a line
hash_of() {
	sed -n "${2}p" "$1" | sed 's/.*"hash":"\([0-9a-f]*\)"}$/\1/'
}

# seq_of FILE LINE
seq_of() {
	sed -n "${2}p" "$1" | sed 's/^{"seq":\([0-9]*\),.*/\1/'
}

# offset_of FILE LINE: byte offset of a line
offset_of() {
	head -n $(($2 - 1)) "$1" | wc -c
}

# rechain: recompute every hash of the log after an edit, as a forger would
rechain() {
	local prev=$ZERO f line body h
	for f in "$ES_STORE"/log/*.ndjson; do
		while IFS= read -r line; do
			body=${line%,\"hash\":*}
			h=$(printf '%s%s' "$prev" "$body" | sha256sum | cut -c1-64)
			printf '%s,"hash":"%s"}\n' "$body" "$h"
			prev=$h
		done <"$f" >"$TMP/rechain"
		cat "$TMP/rechain" >"$f"
	done
}

head_hash() {
	tail -n 1 "$(seg)" | sed 's/.*"hash":"\([0-9a-f]*\)"}$/\1/'
}

# before_archive: what the archive tests check after es-archive, in the
# caller's h (the head hash), s (seq of SEG2's line 3), a (hash of line 2)
before_archive() {
	h=$(head_hash)
	s=$(seq_of "$SEG2" 3)
	a=$(hash_of "$SEG2" 2)
}

@test "--help and --version" {
	run -0 --separate-stderr es-verify --help
	assert_output --partial "usage: es-verify"
	assert_output --partial "--anchor"
	run -0 --separate-stderr es-verify --version
	assert_output --regexp '^es-verify [0-9]'
}

@test "a clean store of several segments is intact, stdout stays empty" {
	[ "$(ls "$ES_STORE"/log | wc -l)" -ge 4 ]
	run -0 --separate-stderr es-verify
	assert_output ""
	[ "$stderr" = "es-verify: ok: 62 records, $(cat "$ES_STORE"/log/* | wc -c | awk '{printf "%.1f kB", $1/1000}'), head seq 62 hash $(head_hash)" ]
	run -0 --separate-stderr es-verify -q
	[ "$stderr" = "" ]
}

@test "a clean store is intact with -j 2, --all-errors and as files" {
	run -0 --separate-stderr es-verify -j 2
	assert_output ""
	[[ $stderr == "es-verify: ok: 62 records,"* ]]
	run -0 --separate-stderr es-verify -j 2 --all-errors
	run -0 --separate-stderr es-verify --jobs 8
	run -0 --separate-stderr es-verify "$ES_STORE"/log/*.ndjson
	[[ $stderr == *"head seq 62 hash $(head_hash)" ]]
}

@test "--json: the report on stdout" {
	run -0 --separate-stderr es-verify --json
	echo "$output" | jq -e '.ok == true and .records == 62 and .failures == [] and .warnings == []'
	echo "$output" | jq -e '.checks | index("chain") and index("index") and index("versions")'
	[ "$(echo "$output" | jq -r .head.hash)" = "$(head_hash)" ]
	[ "$(echo "$output" | jq -r .head.seq)" = 62 ]
	[ "$(echo "$output" | jq -r .bytes)" = "$(cat "$ES_STORE"/log/* | wc -c)" ]
}

@test "--from-seq/--anchor: an incremental run from inside a segment and from a segment's start" {
	local h s
	s=$(seq_of "$SEG2" 3)
	h=$(hash_of "$SEG2" 2)
	run -0 --separate-stderr es-verify --from-seq "$s" --anchor "$h"
	[[ $stderr == "es-verify: ok: $((62 - s + 1)) records,"*"head seq 62 hash $(head_hash)" ]]
	run -0 --separate-stderr es-verify --from-seq "$s" --anchor "$h" -j 2
	s=$(seq_of "$SEG2" 1)
	h=$(tail -n 1 "$SEG1" | sed 's/.*"hash":"\([0-9a-f]*\)"}$/\1/')
	run -0 --separate-stderr es-verify --from-seq "$s" --anchor "$h"
	run -0 --separate-stderr es-verify --from-seq "$s" --anchor "$h" -j 2
	# nothing new since the last run
	run -0 --separate-stderr es-verify --from-seq 63 --anchor "$(head_hash)" --json
	echo "$output" | jq -e '.ok and .records == 0 and .head.seq == 62'
}

@test "--from-seq/--anchor: a wrong anchor is a failure, located" {
	local s
	s=$(seq_of "$SEG2" 3)
	run -1 --separate-stderr es-verify --from-seq "$s" --anchor "$ZERO"
	assert_output ""
	[[ $stderr == "es-verify: log/$N2: offset $(offset_of "$SEG2" 2): seq $((s - 1)): hash "*" differs from the --anchor hash" ]]
	run -1 --separate-stderr es-verify --from-seq "$(seq_of "$SEG2" 1)" --anchor "$ZERO"
	[[ $stderr == *"differs from the --anchor hash"* ]]
	run -1 --separate-stderr es-verify --from-seq 100 --anchor "$ZERO"
	[[ $stderr == *"no record with seq 99 to anchor on"* ]]
}

@test "regression: --from-seq: a malformed record before the anchor is itself the finding, with no seq made up" {
	local s h off
	s=$(seq_of "$SEG2" 4)
	h=$(hash_of "$SEG2" 3)
	off=$(offset_of "$SEG2" 1)
	sed -i '1s/"type"/"tYpe"/' "$SEG2"
	for args in "" "--all-errors" "-j 2"; do
		# shellcheck disable=SC2086
		run -1 --separate-stderr es-verify --from-seq "$s" --anchor "$h" $args
		assert_equal "$stderr" "es-verify: log/$N2: offset $off: not a well-formed record: envelope keys missing or out of order"
	done
}

@test "--from-seq and --anchor go together" {
	run -2 --separate-stderr es-verify --from-seq 5
	[[ $stderr == *"--from-seq: needs --anchor HASH"* ]]
	run -2 --separate-stderr es-verify --anchor "$ZERO"
	run -2 --separate-stderr es-verify --from-seq 5 --anchor xyz
	run -2 --separate-stderr es-verify --expect-head 5
	run -2 --separate-stderr es-verify --repair-index "$SEG1"
	run -2 --separate-stderr es-verify --no-such-option
}

@test "--expect-head: the head must be the given record; a deleted tail is noticed" {
	local h
	h=$(head_hash)
	run -0 --separate-stderr es-verify --expect-head "62:$h"
	# The last batch (two records) disappears with its index entry.
	rm -rf "$ES_STORE/index"
	head -n -2 "$(seg)" >"$TMP/cut" && cat "$TMP/cut" >"$(seg)"
	run -1 --separate-stderr es-verify --expect-head "62:$h"
	[[ $stderr == *"seq 60: the head is seq 60 hash "*", expected seq 62 hash $h"* ]]
}

@test "tamper: an edited value is a hash mismatch at its file, offset and seq" {
	local s
	s=$(seq_of "$SEG2" 3)
	sed -i '3s/"i":\([0-9]*\)/"i":9\1/' "$SEG2"
	run -1 --separate-stderr es-verify
	assert_output ""
	[ "$stderr" = "es-verify: log/$N2: offset $(offset_of "$SEG2" 3): seq $s: hash mismatch" ]
	run -1 --separate-stderr es-verify -j 2
	[ "$stderr" = "es-verify: log/$N2: offset $(offset_of "$SEG2" 3): seq $s: hash mismatch" ]
}

@test "tamper: a deleted line is a gap in seq" {
	local s
	s=$(seq_of "$SEG2" 3)
	sed -i '3d' "$SEG2"
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: log/$N2: offset $(offset_of "$SEG2" 3): seq $((s + 1)): seq $((s + 1)) follows $((s - 1)) (1 missing)"* ]]
}

@test "tamper: two swapped lines are out of order" {
	local s
	s=$(seq_of "$SEG2" 3)
	sed -i '3{h;d};4G' "$SEG2"
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: log/$N2: offset $(offset_of "$SEG2" 3): seq $((s + 1)): seq $((s + 1)) follows $((s - 1))"* ]]
	run -1 --separate-stderr es-verify --all-errors
	[[ $stderr == *"seq $s: seq $s follows $((s + 1))"* ]]
}

@test "tamper: a sealed segment truncated mid-line" {
	local n
	n=$(wc -l <"$SEG2")
	truncate -s -20 "$SEG2"
	run -1 --separate-stderr es-verify
	[ "$stderr" = "es-verify: log/$N2: offset $(offset_of "$SEG2" "$n"): seq $(seq_of "$SEG2" "$n"): incomplete last line (no newline)" ]
	run -1 --separate-stderr es-verify -j 2
	[[ $stderr == *"incomplete last line (no newline)"* ]]
}

@test "tamper: the active segment truncated mid-line loses acknowledged records" {
	truncate -s -20 "$(seg)"
	run -1 --separate-stderr es-verify
	[[ $stderr == *"the index covers up to seq 62 but the log ends at seq 60: acknowledged records are missing from the log"* ]]
}

@test "a torn tail from a crash mid-write is a warning: never acknowledged" {
	printf '%s\n%s\n' "$(ev z T)" "$(ev z T)" >"$TMP/in"
	run -137 env ES_CRASH=mid-write:1 es-append -q "$TMP/in"
	run -0 --separate-stderr es-verify
	[[ $stderr == *"es-verify: warning: log/$(basename "$(seg)"): offset "*": seq 63: incomplete batch at the tail (recovered by the next append)"* ]]
	[[ $stderr == *"es-verify: ok: 62 records, "*"head seq 62 "* ]]
	run -0 --separate-stderr es-verify --json
	echo "$output" | jq -e '.ok and (.warnings | length) == 1 and .warnings[0].seq == 63'
}

@test "regression: a torn tail that repeats an earlier record is a warning, and the index is compared as of the head" {
	# a writer killed mid-batch may leave any bytes after the head; these
	# are a complete record of stream a, an old version of it
	sed -n 1p "$(seg)" >>"$(seg)"
	local j
	for j in 1 2; do
		run -0 --separate-stderr es-verify -j $j
		[[ $stderr == *"warning: log/$(basename "$(seg)"): offset "*": seq 63: incomplete batch at the tail (recovered by the next append): "* ]]
		[[ $stderr != *index/* ]]
		[[ $stderr == *"es-verify: ok: 62 records, "*"head seq 62 "* ]]
	done
}

@test "tamper: a forged line with a recomputed hash but a wrong prev" {
	local line body h s
	s=$(seq_of "$SEG2" 3)
	line=$(sed -n 3p "$SEG2")
	body=${line%,\"hash\":*}
	body=${body/\"seq\":$s,/\"seq\":$((s + 1)),}
	h=$(printf '%s%s' "$ZERO" "$body" | sha256sum | cut -c1-64)
	printf '%s,"hash":"%s"}\n' "$body" "$h" >"$TMP/forged"
	sed -i "3r $TMP/forged" "$SEG2"
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: log/$N2: offset $(offset_of "$SEG2" 4): seq $((s + 1)): hash mismatch"* ]]
}

@test "tamper: a renamed segment does not match its first seq" {
	local first
	first=$(seq_of "$SEG2" 1)
	mv "$SEG2" "$ES_STORE/log/$(printf '%020d' $((first + 1))).ndjson"
	run -1 --separate-stderr es-verify
	[ "$stderr" = "es-verify: log/$(printf '%020d' $((first + 1))).ndjson: offset 0: seq $first: first seq $first does not match the segment name" ]
}

@test "tamper: a stray file in log/" {
	cp "$SEG2" "$SEG2.bak"
	run -1 --separate-stderr es-verify
	[ "$stderr" = "es-verify: log/$N2.bak: stray file in log/: not a segment name" ]
	run -1 --separate-stderr es-verify --json
	echo "$output" | jq -e '.ok == false and .failures[0].file == "log/'"$N2"'.bak" and .head == null'
}

@test "a stray file's name with control characters is shown escaped, one line" {
	cp "$SEG2" "$SEG2$(printf '\033[2J\nes-verify: ok')"
	run -1 --separate-stderr es-verify
	assert_equal "$stderr" "es-verify: log/$N2\\x1b[2J\\nes-verify: ok: stray file in log/: not a segment name"
}

@test "tamper: a damaged store.json" {
	echo '{"format":"es-store"' >"$ES_STORE/store.json"
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: store.json: not valid JSON"* ]]
}

@test "a rewritten history with a consistent chain is caught by the index and by --expect-head" {
	local h
	h=$(head_hash)
	sed -i '3s/"i":\([0-9]*\)/"i":9\1/' "$SEG2"
	rechain
	run -1 --separate-stderr es-verify
	[[ $stderr == *"the log was rewritten after it was indexed"* ]]
	rm -rf "$ES_STORE/index"
	run -1 --separate-stderr es-verify --expect-head "62:$h"
	[[ $stderr == *"the head is seq 62 hash "*", expected seq 62 hash $h"* ]]
}

@test "tamper: a version gap across a segment boundary (rechained), with -j 1 and -j 2" {
	local v s
	s=$(seq_of "$SEG2" 1)
	v=$(sed -n 1p "$SEG2" | sed 's/.*"version":\([0-9]*\),.*/\1/')
	sed -i "1s/\"version\":$v,/\"version\":$((v + 1)),/" "$SEG2"
	rechain
	rm -rf "$ES_STORE/index"
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: log/$N2: offset 0: seq $s: stream '"*"': version $((v + 1)) follows $((v - 1))" ]]
	run -1 --separate-stderr es-verify -j 2
	[[ $stderr == "es-verify: log/$N2: offset 0: seq $s: stream '"*"': version $((v + 1)) follows $((v - 1))" ]]
}

@test "tamper: a sealed segment's last record cut off: the same findings, in the same order, with -j 1 and -j 2" {
	local s want
	s=$(seq_of "$SEG2" "$(wc -l <"$SEG2")")
	sed -i '$d' "$SEG2"
	run -1 --separate-stderr es-verify --all-errors -j 1
	want=$stderr
	[[ $want == *"seq $((s + 1)) follows $((s - 1)) (1 missing); hash mismatch"* ]]
	[[ $want == *"version "*" follows "* ]] # the stream of the cut record, one segment on
	[[ $want == *"3 failures in"* ]]
	run -1 --separate-stderr es-verify --all-errors -j 2
	[ "$stderr" = "$want" ]
}

@test "3,000 streams (the version map grows past its first size): intact with -j 1 and -j 2, and a version gap found" {
	sed -i 's/"segment_size":[0-9]*/"segment_size":67108864/' "$ES_STORE/store.json"
	for r in 1 2; do
		for i in $(seq 1 3000); do printf '{"stream":"m-%d","type":"T"}\n' "$i"; done | es-append -q
	done
	append "$(ev last T)"
	run -0 --separate-stderr es-verify -j 1
	run -0 --separate-stderr es-verify -j 2
	run -0 --separate-stderr es-verify --json
	[ "$(jq '.warnings | length' <<<"$output")" = 0 ]
	# m-3000's second event (the last of its batch) made version 3, and
	# the hashes from there on recomputed, as a forger would
	local f n prev body line s
	f=$(seg)
	n=$(grep -n '"stream":"m-3000","version":2,' "$f" | cut -d: -f1)
	s=$(sed -n "${n}p" "$f" | sed 's/^{"seq":\([0-9]*\),.*/\1/')
	prev=$(sed -n "$((n - 1))p" "$f" | sed 's/.*"hash":"\([0-9a-f]*\)"}$/\1/')
	head -n $((n - 1)) "$f" >"$TMP/head"
	tail -n +"$n" "$f" | sed '1s/"version":2,/"version":3,/' | while IFS= read -r line; do
		body=${line%,\"hash\":*}
		prev=$(printf '%s%s' "$prev" "$body" | sha256sum | cut -c1-64)
		printf '%s,"hash":"%s"}\n' "$body" "$prev"
	done >>"$TMP/head"
	[ "$(wc -l <"$TMP/head")" = "$(wc -l <"$f")" ]
	cat "$TMP/head" >"$f"
	rm -rf "$ES_STORE/index"
	run -1 --separate-stderr es-verify -j 1
	[[ $stderr == *"seq $s: stream 'm-3000': version 3 follows 1"* ]]
	run -1 --separate-stderr es-verify -j 2
	[[ $stderr == *"seq $s: stream 'm-3000': version 3 follows 1"* ]]
}

# ix_patch PERL-SUBSTITUTION: the good index ($TMP/good-index) edited in
# place, byte for byte (LMDB keeps no check sums), as damage or a forger
# would; fails unless the pattern matched. A leaf node is: data size
# (u32 LE), flags (u16), key size (u16), the key, the data. Substitute
# with /g: pages the tree left behind (copy on write) hold older copies
# of the same node.
ix_patch() {
	rm -rf "$ES_STORE/index" && cp -a "$TMP/good-index" "$ES_STORE/index"
	perl -0777 -i -pe "$1 or die 'no match'" "$ES_STORE/index/data.mdb"
}

# found_both_ways TEXT: es-verify -j 1 and -j 2 both fail, saying TEXT
found_both_ways() {
	local j
	for j in 1 2; do
		run -1 --separate-stderr es-verify -j "$j" --all-errors
		[[ $stderr == *"$1"* ]] || { echo "-j $j: $stderr"; return 1; }
	done
}

@test "an index whose streams disagree with the log: found by the walk, with -j 1 and -j 2 alike" {
	# (-j 2 walks the index on a thread of its own while the segments
	# are checked on two others)
	[ "$(ls "$ES_STORE"/log | wc -l)" -ge 4 ]
	[ "$(grep -h '"stream":"c0"' "$ES_STORE"/log/*.ndjson | wc -l)" = 10 ]
	cp -a "$ES_STORE/index" "$TMP/good-index"
	# the "s" key of stream c0 (its version, 8 bytes big-endian) says 11
	ix_patch 's/(\x08\x00\x00\x00\x00\x00\x03\x00sc0\x00{7})\x0a/$1\x0b/gs'
	found_both_ways "index/: stream 'c0': the index says version 11, the log 10"
	# the position of c0's version 10 (its "e" key: seq, segment, offset,
	# length) one byte longer
	ix_patch 's/(\x1c\x00\x00\x00\x00\x00\x0c\x00ec0\x00\x00{7}\x0a.{27})(.)/$1.chr(ord($2)+1)/gse'
	found_both_ways "index/: stream 'c0' version 10: the index points elsewhere than log/"
	# a stream the log never had (c0 renamed c9 in its "s" key)
	ix_patch 's/\x08\x00\x00\x00\x00\x00\x03\x00sc0/\x08\x00\x00\x00\x00\x00\x03\x00sc9/gs'
	found_both_ways "index/: stream 'c9' is in the index but not in the log"
	# the good index again: intact both ways
	rm -rf "$ES_STORE/index" && cp -a "$TMP/good-index" "$ES_STORE/index"
	run -0 --separate-stderr es-verify -j 1
	run -0 --separate-stderr es-verify -j 2
}

@test "an index that puts an earlier version elsewhere: found by the sum of positions, with -j 1 and -j 2; --repair-index rebuilds it" {
	# es-verify compared only each stream's last position: an earlier
	# one moved passed (exit 0, nothing rebuilt), and es-replay then
	# stopped at it, exit 1
	cp -a "$ES_STORE/index" "$TMP/good-index"
	# c0's version 2 at version 3's position (the values of their "e"
	# keys: seq, segment, offset, length), as mdb_dump/mdb_load can do
	ix_patch '(($v) = /\x1c\x00\x00\x00\x00\x00\x0c\x00ec0\x00\x00{7}\x03(.{28})/s) && s/(\x1c\x00\x00\x00\x00\x00\x0c\x00ec0\x00\x00{7}\x02).{28}/$1$v/gs'
	found_both_ways "index/: the positions of some events differ from the log"
	run -1 --separate-stderr es-verify
	[ "$stderr" = "es-verify: index/: the positions of some events differ from the log" ]
	run -1 --separate-stderr es-replay --stream c0
	[[ $stderr == *"not the record the index names"* ]]
	run -0 --separate-stderr es-verify --repair-index --json
	echo "$output" | jq -e '.ok and .index_repaired'
	[[ $stderr == *"warning: index/: the positions of some events differ from the log (repaired)"* ]]
	run -0 --separate-stderr es-replay --stream c0
	run -0 --separate-stderr es-verify -j 1
	[[ $stderr != *warning* ]]
	run -0 --separate-stderr es-verify -j 2
	[[ $stderr != *warning* ]]
}

@test "tamper: ts going back in time (rechained)" {
	local s
	s=$(seq_of "$SEG2" 3)
	sed -i '3s/"ts":"[^"]*"/"ts":"2000-01-01T00:00:00.000000Z"/' "$SEG2"
	rechain
	rm -rf "$ES_STORE/index"
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: log/$N2: offset $(offset_of "$SEG2" 3): seq $s: ts 2000-01-01T00:00:00.000000Z is before "* ]]
}

@test "tamper: a sealed segment ending inside a batch (rechained)" {
	local n
	n=$(wc -l <"$SEG2")
	sed -i "${n}s/,\"hash\":/,\"more\":true,\"hash\":/" "$SEG2"
	rechain
	rm -rf "$ES_STORE/index"
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: log/$N2: offset "*": batch without its end in a sealed segment" ]]
}

@test "--all-errors lists every failure; the chain is re-anchored after each" {
	# same length: the index still points at the right offsets
	sed -i '3s/"type":"T"/"type":"U"/' "$SEG2"
	sed -i '2s/"type":"T"/"type":"U"/' "$SEG1"
	run -1 --separate-stderr es-verify
	[ "$(echo "$stderr" | wc -l)" = 1 ]
	run -1 --separate-stderr es-verify --all-errors --json
	echo "$output" | jq -e '(.failures | length) == 2 and all(.failures[]; .reason == "hash mismatch")'
	[ "$(echo "$stderr" | tail -n 1)" = "es-verify: 2 failures in 62 records checked" ]
	run -1 --separate-stderr es-verify --all-errors -j 2 --json
	echo "$output" | jq -e '(.failures | length) == 2'
}

@test "a missing index is a warning; --repair-index rebuilds it" {
	rm -rf "$ES_STORE/index"
	run -0 --separate-stderr es-verify
	[[ $stderr == "es-verify: warning: index/: missing: rebuilt by the next append, or by --repair-index"* ]]
	run -0 --separate-stderr es-verify --repair-index --json
	echo "$output" | jq -e '.ok and .index_repaired'
	[ -f "$ES_STORE/index/data.mdb" ]
	run -0 --separate-stderr es-verify
	[[ $stderr != *warning* ]]
}

@test "a stale index is a warning; --repair-index brings it up to date" {
	cp -a "$ES_STORE/index" "$TMP/old-index"
	append "$(ev a T)"
	rm -rf "$ES_STORE/index" && cp -a "$TMP/old-index" "$ES_STORE/index"
	run -0 --separate-stderr es-verify
	[[ $stderr == *"warning: index/: behind: it covers seq 62 of 63"* ]]
	run -0 --separate-stderr es-verify --repair-index
	run -0 --separate-stderr es-verify
	[[ $stderr != *warning* ]]
}

@test "FILE operands: plain, zstd and stdin, read as one log" {
	cat "$ES_STORE"/log/*.ndjson >"$TMP/all.ndjson"
	zstd -q "$TMP/all.ndjson" -o "$TMP/all.zst"
	run -0 --separate-stderr es-verify "$TMP/all.zst"
	[[ $stderr == "es-verify: ok: 62 records,"* ]]
	run -0 --separate-stderr es-verify - <"$TMP/all.ndjson"
	local segs=("$ES_STORE"/log/*.ndjson)
	run -0 --separate-stderr es-verify "${segs[@]}"
	# a file that does not start at seq 1 needs an anchor
	run -1 --separate-stderr es-verify "$SEG2"
	[[ $stderr == *"seq $(seq_of "$SEG2" 1): seq $(seq_of "$SEG2" 1) follows 0"* ]]
	run -0 --separate-stderr es-verify --from-seq "$(seq_of "$SEG2" 1)" \
		--anchor "$(tail -n 1 "$SEG1" | sed 's/.*"hash":"\([0-9a-f]*\)"}$/\1/')" "$SEG2"
	# ending inside a batch: a warning, and counted up to the head as over a store
	head -n -1 "$TMP/all.ndjson" >"$TMP/torn.ndjson"
	run -0 --separate-stderr es-verify "$TMP/torn.ndjson"
	assert_equal "${stderr_lines[0]}" "es-verify: warning: $TMP/torn.ndjson: offset $(head -n 60 "$TMP/all.ndjson" | wc -c): seq 61: the log ends inside a batch"
	[[ ${stderr_lines[1]} == "es-verify: ok: 60 records, "*"head seq 60 "* ]]
	# ... also when the open batch began in a file before the last, or
	# the last file is empty: the warning names where it began
	local st=$TMP/s5
	echo '{"stream":"a","type":"T"}' | ES_STORE=$st es-append -q
	for i in 1 2 3 4 5; do echo '{"stream":"a","type":"T"}'; done | ES_STORE=$st es-append -q
	cat "$st"/log/*.ndjson | head -n -1 >"$TMP/b"
	head -n 3 "$TMP/b" >"$TMP/b1"
	tail -n +4 "$TMP/b" >"$TMP/b2"
	local at
	at=$(head -n 1 "$TMP/b" | wc -c)
	for files in "$TMP/b" "$TMP/b1 $TMP/b2" "$TMP/b /dev/null"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-verify $files
		assert_equal "${stderr_lines[0]}" "es-verify: warning: ${files%% *}: offset $at: seq 2: the log ends inside a batch"
		[[ ${stderr_lines[1]} == "es-verify: ok: 1 records, $at bytes, head seq 1 "* ]]
	done
}

@test "FILE operands: a damaged or truncated .zst is an integrity failure naming the file" {
	cat "$ES_STORE"/log/*.ndjson | zstd -q >"$TMP/all.zst"
	cp "$TMP/all.zst" "$TMP/bad.zst"
	printf 'XXXXXXXX' | dd of="$TMP/bad.zst" bs=1 seek=200 conv=notrunc 2>/dev/null
	run -1 --separate-stderr es-verify "$TMP/bad.zst"
	[[ $stderr == "es-verify: $TMP/bad.zst: offset "*": corrupt zstd data"* ]]
	head -c 300 "$TMP/all.zst" >"$TMP/cut.zst"
	run -1 --separate-stderr es-verify "$TMP/cut.zst"
	[[ $stderr == "es-verify: $TMP/cut.zst: "* ]]
}

@test "unreadable input and a missing store are I/O errors" {
	run -4 --separate-stderr es-verify "$TMP/nonexistent"
	[ "$stderr" = "es-verify: cannot open '$TMP/nonexistent': No such file or directory" ]
	run -4 --separate-stderr es-verify -d "$TMP/nostore"
	run -4 --separate-stderr es-verify -d "$TMP/nostore" --json
	echo "$output" | jq -e '.ok == false and (.error | length) > 0'
}

@test "--json to a full disk is an error" {
	run -4 --separate-stderr bash -c 'es-verify --json >/dev/full'
	[[ $stderr == *"write error"* ]]
	# a failure found stays the verdict: only its report was lost
	sed -i '2s/"type":"T"/"type":"U"/' "$SEG1"
	run -1 --separate-stderr bash -c 'es-verify --json >/dev/full'
	[[ $stderr == *"write error"* ]]
}

@test "a fresh empty active segment is intact, an empty sealed one is not" {
	touch "$ES_STORE/log/$(printf '%020d' 63).ndjson"
	run -0 --separate-stderr es-verify
	run -0 --separate-stderr es-verify -j 2
	touch "$ES_STORE/log/$(printf '%020d' 70).ndjson"
	run -1 --separate-stderr es-verify
	[[ $stderr == *"empty sealed segment"* ]]
}

@test "--snapshots is accepted and says what it checked" {
	run -0 --separate-stderr es-verify --snapshots
	[[ $stderr == *"note: snapshots"* ]]
}

@test "tamper: damage in the active segment with records after it is a failure" {
	sed -i '1s/"type":"T"/"type":"U"/' "$(seg)"
	run -1 --separate-stderr es-verify
	[ "$stderr" = "es-verify: log/$(basename "$(seg)"): offset 0: seq $(seq_of "$(seg)" 1): hash mismatch" ]
}

@test "damage after the index head in the active segment is a torn tail, as recovery sees it" {
	printf '%s\n%s\n' "$(ev z T)" "$(ev z T)" >"$TMP/in"
	# written, never synced nor indexed nor acknowledged
	run -137 env ES_CRASH=after-write:1 es-append -q "$TMP/in"
	local n
	n=$(wc -l <"$(seg)")
	sed -i "$((n - 1))s/\"type\":\"T\"/\"type\":\"U\"/" "$(seg)"
	run -0 --separate-stderr es-verify
	[[ $stderr == *"warning: log/$(basename "$(seg)"): offset "*": seq 63: incomplete batch at the tail (recovered by the next append): hash mismatch"* ]]
	[[ $stderr == *"ok: 62 records"* ]]
	append "$(ev y T)"
	run -0 --separate-stderr es-verify
	[[ $stderr == *"note: quarantine/ holds 1 file"* ]]
	[[ $stderr == *"ok: 63 records"* ]]
}

@test "an archived store: archived segments are read from archive/ and checked" {
	command -v es-archive >/dev/null || skip "es-archive is not built"
	local h s a
	before_archive
	es-archive -q --before 2100-01-01
	[ -f "$ES_STORE/archive/MANIFEST" ]
	run -0 --separate-stderr es-verify
	[[ $stderr == *"ok: 62 records, "*"head seq 62 hash $h" ]]
	run -0 --separate-stderr es-verify -j 2 --expect-head "62:$h"
	run -0 --separate-stderr es-verify --from-seq "$s" --anchor "$a"
	# every position, into archive/ now, as appended and as rebuilt
	rm -rf "$ES_STORE/index"
	run -0 --separate-stderr es-verify --repair-index
	run -0 --separate-stderr es-verify -j 1
	[[ $stderr != *warning* ]]
	run -0 --separate-stderr es-verify -j 2
	[[ $stderr != *warning* ]]
	local f
	f=$(ls "$ES_STORE"/archive/*.zst | sed -n 2p)
	printf 'XXXXXXXX' | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: archive/$(basename "$f"): offset "*": seq "*": "* ]]
}

@test "tamper: a MANIFEST entry's first_ts or last_ts is not its records' (the times purges go by)" {
	command -v es-archive >/dev/null || skip "es-archive is not built"
	es-archive -q --before 2100-01-01
	cp "$ES_STORE/archive/MANIFEST" "$TMP/M"
	local f2 f3 ts j
	f2=$(jq -r 'select(.file) | .file' "$TMP/M" | sed -n 2p)
	f3=$(jq -r 'select(.file) | .file' "$TMP/M" | sed -n 3p)
	ts=$(jq -r "select(.file == \"$f2\") | .first_ts" "$TMP/M")
	sed "/$f2/s/\"first_ts\":\"[^\"]*\"/\"first_ts\":\"2000-01-01T00:00:00.000000Z\"/" "$TMP/M" \
		>"$ES_STORE/archive/MANIFEST"
	for j in 1 2; do
		run -1 --separate-stderr es-verify -j $j
		assert_equal "$stderr" "es-verify: archive/$f2: offset 0: seq $((10#${f2%%.*})): ts $ts, the MANIFEST's first_ts says 2000-01-01T00:00:00.000000Z"
	done
	ts=$(jq -r "select(.file == \"$f2\") | .last_ts" "$TMP/M")
	sed "/$f2/s/\"last_ts\":\"[^\"]*\"/\"last_ts\":\"2999-01-01T00:00:00.000000Z\"/" "$TMP/M" \
		>"$ES_STORE/archive/MANIFEST"
	for j in 1 2; do
		run -1 --separate-stderr es-verify -j $j
		[[ $stderr == "es-verify: archive/$f2: offset "*": seq $((10#${f3%%.*} - 1)): ts $ts, the MANIFEST's last_ts says 2999-01-01T00:00:00.000000Z" ]]
	done
	cp "$TMP/M" "$ES_STORE/archive/MANIFEST"
	run -0 --separate-stderr es-verify
}

@test "-j 2 words a damaged segment's first line as -j 1 does, with a version gap and after an emptied segment" {
	sed -i 1,2d "$SEG2" # a batch: the next line's stream skips a version
	run -1 --separate-stderr es-verify -j 1
	[[ $stderr == *"does not match the segment name; stream '"*"': version "*" follows "* ]]
	local one=$stderr
	run -1 --separate-stderr es-verify -j 2
	assert_equal "$stderr" "$one"
	run -1 --separate-stderr es-verify -j 1 --all-errors
	one=$stderr
	run -1 --separate-stderr es-verify -j 2 --all-errors
	assert_equal "$stderr" "$one"
	: >"$SEG2"
	run -1 --separate-stderr es-verify -j 1 --all-errors
	[[ $stderr == *"empty sealed segment"$'\n'*"follows"*"missing); hash mismatch"* ]]
	one=$stderr
	run -1 --separate-stderr es-verify -j 2 --all-errors
	assert_equal "$stderr" "$one"
}

@test "regression: -j N after an archive file cut short: the same findings as -j 1, no made-up broken joint" {
	command -v es-archive >/dev/null || skip "es-archive is not built"
	es-archive -q --before 2100-01-01
	local f one j
	f=$(ls "$ES_STORE"/archive/*.zst | sed -n 2p)
	truncate -s -10 "$f"
	run -1 --separate-stderr es-verify -j 1 --all-errors
	[[ $stderr == "es-verify: archive/$(basename "$f"): offset "*": the zstd frame is cut short"* ]]
	one=$stderr
	for j in 2 3; do
		run -1 --separate-stderr es-verify -j $j --all-errors
		assert_equal "$stderr" "$one"
	done
}

@test "a purged store chains on the purge anchor" {
	command -v es-archive >/dev/null || skip "es-archive is not built"
	es-archive -q --before 2100-01-01
	es-archive -q --purge-before 2100-01-01
	run -0 --separate-stderr es-verify
	[[ $stderr == *"note: seq 1 to 62 were purged: the chain starts at the purge anchor"* ]]
	append "$(ev a T)"
	run -0 --separate-stderr es-verify -j 2
	[[ $stderr == *"ok: 1 records, "*"head seq 63 "* ]]
	# the index kept the purged events' positions; one rebuilt has none
	rm -rf "$ES_STORE/index"
	run -0 --separate-stderr es-verify --repair-index
	for j in 1 2; do
		run -0 --separate-stderr es-verify -j "$j"
		[[ $stderr == *"ok: 1 records, "*"head seq 63 "* ]]
		[[ $stderr != *warning* ]]
	done
	echo garbage >>"$ES_STORE/archive/MANIFEST"
	run -1 --separate-stderr es-verify
	[[ $stderr == "es-verify: archive/MANIFEST: "* ]]
}

# verify_under_archive POINT ARGS...: es-verify ARGS stopped at POINT
# (ES_STOP), es-archive of every segment meanwhile, then on; its
# exit status in $status, its stderr in $stderr
verify_under_archive() {
	local point=$1 pid
	shift
	rm -rf "$ES_STORE"
	cp -a "$TMP/base" "$ES_STORE"
	ES_STOP=$point es-verify "$@" 2>"$TMP/v.err" &
	pid=$!
	stopped "$pid"
	es-archive -q --before 2100-01-01
	[ -z "$(ls "$ES_STORE"/log/*.ndjson | grep -v "$(basename "$(seg)")")" ]
	kill -CONT "$pid"
	status=0
	wait "$pid" || status=$?
	stderr=$(cat "$TMP/v.err")
}

@test "regression: segments archived while es-verify runs are read from archive/, never an I/O error or a failure" {
	# es-verify run while es-archive ran said "cannot open 'log/...':
	# No such file or directory" (exit 4) or "log/...: not a regular
	# file" (exit 1): a segment left log/ between the listing and the read.
	command -v es-archive >/dev/null || skip "es-archive is not built"
	local h a s
	before_archive
	cp -a "$ES_STORE" "$TMP/base"
	for j in 1 2; do
		# listed, not yet read: read from the archive (the MANIFEST reloaded)
		verify_under_archive verify-listed -j "$j"
		[ "$status" -eq 0 ] || { echo "-j $j: exit $status: $stderr"; return 1; }
		[[ $stderr == *"ok: 62 records, "*"head seq 62 hash $h" ]]
		# gone between readdir() and stat()
		verify_under_archive verify-listing -j "$j"
		[ "$status" -eq 0 ] || { echo "-j $j: exit $status: $stderr"; return 1; }
		[[ $stderr == *"ok: 62 records, "*"head seq 62 hash $h" ]]
		verify_under_archive verify-listed -j "$j" --from-seq "$s" --anchor "$a"
		[ "$status" -eq 0 ] || { echo "-j $j: exit $status: $stderr"; return 1; }
	done
	# a segment that leaves log/ and is not archived is a failure
	rm -rf "$ES_STORE"
	cp -a "$TMP/base" "$ES_STORE"
	ES_FAULT=gone:2 run -1 --separate-stderr es-verify
	[ "$stderr" = "es-verify: $(basename "$(dirname "$SEG2")")/$N2: seq $(seq_of "$SEG2" 1): removed from log/ while es-verify ran, and not archived" ]
}

# rolled_store: single appends in 4 KiB segments until one rolls the log
# into a new, still empty segment (the append killed before its write)
rolled_store() {
	local n i
	export ES_STORE="$TMP/rolled"
	echo '{"stream":"a","type":"T"}' | es-append -q
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	n=$(ls "$ES_STORE"/log | wc -l)
	for i in $(seq 1 100); do
		echo '{"stream":"a","type":"T"}' | ES_CRASH=before-write:1 es-append -q || true
		[ "$(ls "$ES_STORE"/log | wc -l)" -gt "$n" ] && break
		echo '{"stream":"a","type":"T"}' | es-append -q
	done
	[ ! -s "$(seg)" ]
	N=$(grep -c . "$ES_STORE"/log/*.ndjson | awk -F: '{ s += $2 } END { print s }')
}

# verify_rolled J CRASH: on a fresh rolled_store, es-verify -j J stopped
# after its listing while one event is appended (ES_CRASH=CRASH, or "" for
# none), then on; its exit status in $status, its stderr in $stderr
verify_rolled() {
	local pid
	rm -rf "$TMP/rolled"
	rolled_store
	ES_STOP=verify-listed es-verify -j "$1" 2>"$TMP/v.err" &
	pid=$!
	stopped "$pid"
	echo '{"stream":"a","type":"T"}' | ES_CRASH=$2 es-append -q || true
	[ -s "$(seg)" ]
	kill -CONT "$pid"
	status=0
	wait "$pid" || status=$?
	stderr=$(cat "$TMP/v.err")
}

@test "regression: writers during a run, at a segment roll: no false failure" {
	# es-verify -j 2 read an event appended after the listing into a
	# segment listed empty: "the index holds the positions of N events,
	# the log N+1"; and with the index moved on since its head was read:
	# "stream 'a': the index says version N+1, the log N" (exit 1)
	for j in 1 2; do
		# in the log, durably, after the listing; the index not yet
		verify_rolled "$j" after-sync:1
		[ "$status" -eq 0 ] || { echo "-j $j: exit $status: $stderr"; return 1; }
		[[ "$stderr" == *"ok: $N records, "* ]]
		# an append after the listing: the index moves on during the run
		verify_rolled "$j" ""
		[ "$status" -eq 0 ] || { echo "-j $j: exit $status: $stderr"; return 1; }
		[[ "$stderr" == *"index/: a writer appended while it was checked"* ]]
		[[ "$stderr" == *"ok: $N records, "* ]]
		# once the writers stop, the whole index is compared again
		run -0 --separate-stderr es-verify -j "$j"
		[[ "$stderr" != *"index/"* ]]
	done
}

@test "a batch being written at the tail is left to the next run, not a warning; one a writer left is" {
	# es-verify reported a batch still being written as "incomplete batch
	# at the tail (recovered by the next append)", a crashed writer's mark
	local a
	export ES_STORE="$TMP/inflight"
	printf '%s\n' '{"stream":"a","type":"T"}' | es-append -q
	printf '%s\n' '{"stream":"a","type":"T"}' '{"stream":"b","type":"T"}' |
		ES_STOP=writer-mid-write es-append -q &
	a=$!
	stopped "$a"
	# half the batch is in the log, the writer holds the lock
	run -0 --separate-stderr es-verify -v
	kill -CONT "$a"
	wait "$a"
	[[ "$stderr" != *"incomplete batch"* ]]
	[[ "$stderr" == *"note: "*"a batch was being written at the tail"* ]]
	[[ "$stderr" == *"ok: 1 records"* ]]
	run -0 --separate-stderr es-verify
	[[ "$stderr" == *"ok: 3 records"* ]]
	# a writer killed half way: its tail stays a warning
	printf '%s\n' '{"stream":"a","type":"T"}' '{"stream":"b","type":"T"}' |
		ES_CRASH=mid-write:1 es-append -q || true
	run -0 --separate-stderr es-verify
	[[ "$stderr" == *"incomplete batch at the tail"* ]]
	# a tail too long to read to its end, no writer: a warning too
	rm -rf "$ES_STORE"
	printf '%s\n' '{"stream":"a","type":"T"}' | es-append -q
	head -c 17000000 /dev/zero | tr '\0' a >>"$(seg)"
	run -0 --separate-stderr es-verify
	[[ "$stderr" == *"incomplete batch at the tail"*"longer than"* ]]
}

# purged_store: a store of 80 events over four streams, one a day from
# 2026-01-01, in small segments, archived and purged before 2026-02-15
purged_store() {
	export ES_STORE="$TMP/purged"
	purged_store_events
	es-archive -q --before 2026-03-01
	es-archive -q --purge-before 2026-02-15
	grep -q '"purged"' "$ES_STORE/archive/MANIFEST"
}

# purged_store_events: purged_store's events, not yet archived
@test "regression: an incremental run after a purge does not look back past the purge anchor" {
	# es-verify --from-seq N --anchor HASH, N just after the purge anchor,
	# said "stream 's1': version N: version N-1 is not where the index
	# says" (exit 1) on an intact store: it read the purged record.
	command -v es-archive >/dev/null || skip "es-archive is not built"
	purged_store
	local last hash
	last=$(jq -r 'select(.purged) | .purged.last_seq' "$ES_STORE/archive/MANIFEST")
	hash=$(jq -r 'select(.purged) | .purged.last_hash' "$ES_STORE/archive/MANIFEST")
	run -0 --separate-stderr es-verify --from-seq "$((last + 1))" --anchor "$hash"
	[[ $stderr == *"ok: $((80 - last)) records, "* ]]
	run -0 --separate-stderr es-verify -j 2 --from-seq "$((last + 1))" --anchor "$hash"
	# an index rebuilt from the log has no position for what was purged
	rm -rf "$ES_STORE/index"
	run -0 --separate-stderr es-verify --repair-index
	run -0 --separate-stderr es-verify --from-seq "$((last + 1))" --anchor "$hash"
}

@test "regression: --snapshots after a purge: a snapshot of a purged event is stale, a later one is checked against the log" {
	# es-verify --snapshots exited 4 "cannot open 'log/...'": it read
	# the purged event of the snapshot, and replayed purged versions.
	command -v es-snapshot >/dev/null || skip "es-snapshot is not built"
	command -v es-archive >/dev/null || skip "es-archive is not built"
	export ES_STORE="$TMP/purged"
	purged_store_events
	es-snapshot -q --stream s1 --to-seq 10
	es-snapshot -q --stream s1
	es-archive -q --before 2026-03-01
	es-archive -q --purge-before 2026-02-15
	local old
	old=$(ls "$ES_STORE"/snapshots/*/*.snap.zst | head -n 1)
	run -1 --separate-stderr es-verify --snapshots
	[[ $stderr == "es-verify: snapshots/${old#"$ES_STORE"/snapshots/}: seq 10: snapshot of 's1' at version 3: its event was purged (es-archive --purge-before): stale"* ]]
	rm "$old"
	run -0 --separate-stderr es-verify --snapshots
	[[ $stderr == *"note: snapshots: 1 of streams whose first events were purged checked against the log only"* ]]
}

@test "--snapshots: each snapshot recomputed from the log; a forged or damaged one is a failure" {
	command -v es-snapshot >/dev/null || skip "es-snapshot is not built"
	es-snapshot --stream a
	run -0 --separate-stderr es-verify --snapshots --json
	echo "$output" | jq -e '.ok and (.checks | index("snapshots"))'
	[[ $stderr == *"note: snapshots: 1 recomputed from the log and equal"* ]]
	local f line body sha
	f=$(ls "$ES_STORE"/snapshots/*/*.snap.zst)
	# a forger who knows the format: another state, a right checksum
	line=$(zstdcat "$f")
	body=${line%,\"sha256\":*}
	body=${body/\"pad\":\"x/\"pad\":\"y}
	sha=$(printf '%s' "$body" | sha256sum | cut -c1-64)
	printf '%s,"sha256":"%s"}\n' "$body" "$sha" | zstd -q --check -f -o "$f"
	run -1 --separate-stderr es-verify --snapshots
	[[ $stderr == "es-verify: snapshots/"*".snap.zst: seq "*": snapshot of 'a' at version "*": state differs from a replay of the log"* ]]
	printf 'XXXX' | dd of="$f" bs=1 seek=20 conv=notrunc 2>/dev/null
	run -1 --separate-stderr es-verify --snapshots
	[[ $stderr == "es-verify: snapshots/"*".snap.zst: seq "*": "* ]]
	# without --snapshots they are not looked at
	run -0 --separate-stderr es-verify
}

@test "regression: no memory while reading store.json or archive/MANIFEST is an I/O error, never a finding" {
	# jansson reports a failed allocation as bad JSON: es-verify said
	# "store.json: not valid JSON" (exit 1, an integrity failure for an
	# audit) and es-replay "MANIFEST: line 1: ..." (exit 1).
	command -v es-archive >/dev/null || skip "es-archive is not built"
	export ES_STORE="$TMP/oom"
	gen-events -n 1500 -s 3 > ev.ndjson
	head -n 1 ev.ndjson | es-append -q --import-ts
	sed -i 's/"segment_size":[0-9]*/"segment_size":100000/' "$ES_STORE/store.json"
	tail -n +2 ev.ndjson | es-append -q --import-ts --batch-size 500
	es-archive -q --level 1 --before "$(sed -n 1200p ev.ndjson | jq -r .ts)"
	[ -f "$ES_STORE/archive/MANIFEST" ]
	es-replay > want
	# (every allocation es-verify -j 2 makes here: 236)
	for n in $(seq 1 240); do
		# (-j 2: segments on threads, the index walked on one more)
		for j in 1 2; do
			ES_FAULT=malloc:$n run --separate-stderr es-verify -q -j "$j"
			if [ "$status" -ne 0 ]; then
				[ "$status" -eq 4 ] && [[ "$stderr" == *"out of memory"* ]] ||
					{ echo "es-verify -j $j malloc:$n: exit $status: $stderr"; return 1; }
			fi
		done
		ES_FAULT=malloc:$n run --separate-stderr es-replay
		if [ "$status" -ne 0 ]; then
			[ "$status" -eq 4 ] && [[ "$stderr" == *"out of memory"* ]] ||
				{ echo "es-replay malloc:$n: exit $status: $stderr"; return 1; }
		else
			[ "$output" = "$(cat want)" ] || { echo "es-replay malloc:$n: other states"; return 1; }
		fi
	done
}

@test "regression: a ts out of range is a finding of its record, and --all-errors goes on tracking its stream" {
	# readers refuse such a record; es-verify parsed it the same way, so its
	# stream's next version looked like a gap and one record went uncounted
	export ES_STORE="$TMP/ts-range"
	for i in 1 2 3 4 5 6; do printf '{"stream":"s%d","type":"T","data":{}}\n' $((i % 2)); done | es-append -q
	sed -i '3s/"ts":"\(....-..-\)../"ts":"\196/' "$ES_STORE"/log/*.ndjson
	run -1 --separate-stderr es-verify --all-errors
	[ "${#stderr_lines[@]}" -eq 3 ]
	[[ "${stderr_lines[0]}" == *": seq 3: hash mismatch; \"ts\" is not a valid stored time" ]]
	[[ "${stderr_lines[1]}" == *": seq 4: ts "*" is before "*"-11-96T"* ]]
	assert_equal "${stderr_lines[2]}" "es-verify: 2 failures in 6 records checked"
	run -1 --separate-stderr es-replay
	[[ "$stderr" == *"\"ts\" is not in the stored form"* ]]
}
