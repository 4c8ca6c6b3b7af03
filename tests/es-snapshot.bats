#!/usr/bin/env bats
# es-snapshot: taking, listing, verifying and pruning snapshots; every case
# in which a reader must ignore one; replay with snapshots equals replay
# without, on randomized histories.
bats_require_minimum_version 1.5.0
load helpers

SPEC='{"init":{"n":0},"on":{
 "ItemAdded":[{"op":"add","path":"total","from":"data.price"},
              {"op":"push","path":"skus","from":"data.sku","cap":3},
              {"op":"max","path":"top","from":"data.price"},
              {"op":"min","path":"low","from":"data.qty"}],
 "ItemRemoved":[{"op":"sub","path":"total","from":"data.price"}],
 "ItemReceived":[{"op":"add","path":"stock","from":"data.qty"}],
 "ItemSold":[{"op":"sub","path":"stock","from":"data.qty"}],
 "AddressChanged":[{"op":"merge","path":"address","from":"data"}],
 "*":[{"op":"count","path":"n"},{"op":"set","path":"last","from":"ts"},
      {"op":"inc","path":"w","by":0.1}]}}'

local_setup() {
	printf '%s\n' "$SPEC" > spec.json
	printf '%s\n' \
		'{"stream":"order-1","type":"OrderCreated","data":{"customer":"ann"}}' \
		'{"stream":"order-2","type":"OrderCreated","data":{"customer":"bob"}}' \
		'{"stream":"order-1","type":"ItemAdded","data":{"sku":"A1","price":19.99,"qty":2}}' \
		'{"stream":"cust-ann","type":"Registered","data":{"name":"Ann","city":"Zürich"}}' \
		'{"stream":"order-1","type":"ItemAdded","data":{"sku":"B2","price":5.01,"qty":1}}' \
		| es-append -q
}

# snapdir STREAM: the stream's directory under snapshots/
snapdir() {
	printf '%s/snapshots/%s' "$ES_STORE" "$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"
}

# snap STREAM: the newest snapshot file of STREAM (any reducer)
snap() {
	ls "$(snapdir "$1")"/*.snap.zst | tail -n 1
}

# reseal FILE SED: edit the record with SED, then recompute its sha256 and
# compress it again: a snapshot that is sound on its own
reseal() {
	local body
	body=$(zstd -dcq "$1" | sed "$2" | head -c -78)
	printf '%s,"sha256":"%s"}\n' "$body" "$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)" |
		zstd -qf -o "$1"
}

# err_line [-n N] [--partial] TEXT: stderr has the line TEXT (line N, or
# any line; with --partial, a line holding TEXT)
err_line() {
	local n="" partial=0 l
	while :; do
		case $1 in
		-n) n=$2; shift 2 ;;
		--partial) partial=1; shift ;;
		*) break ;;
		esac
	done
	mapfile -t l <<<"$stderr"
	local i
	for i in "${!l[@]}"; do
		[ -n "$n" ] && [ "$i" != "$n" ] && continue
		if [ $partial = 1 ] && [[ "${l[$i]}" == *"$1"* ]]; then return 0; fi
		if [ "${l[$i]}" = "$1" ]; then return 0; fi
	done
	printf 'stderr has no line%s %s
-- stderr --
%s
' "${n:+ $n}" "'$1'" "$stderr" >&2
	return 1
}

# need_replay: es-replay is built (it lands with issue 5)
need_replay() {
	command -v es-replay >/dev/null || skip "es-replay is not built yet"
}

# same_replay ARGS...: es-replay ARGS with snapshots prints exactly what a
# full replay prints; the -v notes of the first are left in $notes
same_replay() {
	run -0 --separate-stderr es-replay -v "$@"
	local with=$output
	notes=$stderr
	run -0 --separate-stderr es-replay --no-snapshots "$@"
	assert_equal "$with" "$output"
	assert_equal "$stderr" ""
}

@test "--help and --version" {
	run -0 --separate-stderr es-snapshot --help
	assert_line --partial "usage: es-snapshot [options]"
	assert_line --partial "--prune"
	run -0 --separate-stderr es-snapshot --version
	assert_output --regexp '^es-snapshot [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors exit 2" {
	local bad
	for bad in "--frobnicate" "operand" "--list --verify" "--list --prune --keep 1" \
		"--prune" "--keep 2" "--list --every 3" "--verify --stdout" "--list --to-seq 3" \
		"--every x" "--prune --keep -1"; do
		# shellcheck disable=SC2086
		run -2 --separate-stderr es-snapshot $bad
		assert_output ""
		[[ "$stderr" == es-snapshot:* ]] || { echo "$bad: $stderr"; return 1; }
	done
}

@test "takes a snapshot of every stream by default, in the documented layout" {
	run -0 --separate-stderr es-snapshot
	assert_output ""
	assert_equal "$stderr" ""
	run -0 find "$ES_STORE/snapshots" -type f
	assert_equal "${#lines[@]}" 3
	local f
	f=$(snap order-1)
	[[ "${f##*/}" =~ ^00000000000000000003-00000000000000000005-[0-9a-f]{16}\.snap\.zst$ ]]
	run -0 zstd -dcq "$f"
	assert_equal "${#lines[@]}" 1
	run -0 jq -c 'keys_unsorted' <<<"$output"
	assert_output '["format","stream","version","seq","hash","ts","reducer","taken","state","sha256"]'
	run -0 jq -c '[.format,.stream,.version,.seq,.state]' < <(zstd -dcq "$f")
	assert_output '[1,"order-1",3,5,{"customer":"ann","sku":"B2","price":5.01,"qty":1}]'
}

@test "the record names the event's hash and ts, and its sha256 checks with sha256sum" {
	es-snapshot --stream order-1
	local f rec
	f=$(snap order-1)
	rec=$(zstd -dcq "$f")
	assert_equal "$(jq -r .hash <<<"$rec")" "$(sed -n 5p "$(seg)" | jq -r .hash)"
	assert_equal "$(jq -r .ts <<<"$rec")" "$(sed -n 5p "$(seg)" | jq -r .ts)"
	assert_equal "$(zstd -dcq "$f" | head -c -78 | sha256sum | cut -d' ' -f1)" \
		"$(jq -r .sha256 <<<"$rec")"
	# one zstd frame with a content checksum
	run -0 zstd -lv "$f"
	assert_output --partial "XXH64"
}

@test "the reducer id in the name and the record is the spec's sha256 id" {
	es-snapshot --stream order-1
	es-snapshot --stream order-1 --reducer spec.json
	run -0 ls "$(snapdir order-1)"
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr es-snapshot --list --stream order-1
	assert_equal "${#lines[@]}" 2
	local a b
	a=$(jq -r .reducer <<<"${lines[0]}")
	b=$(jq -r .reducer <<<"${lines[1]}")
	[ "$a" != "$b" ]
	[[ "$a" =~ ^[0-9a-f]{64}$ && "$b" =~ ^[0-9a-f]{64}$ ]]
	ls "$(snapdir order-1)" | grep -q -- "-${a:0:16}.snap.zst"
	ls "$(snapdir order-1)" | grep -q -- "-${b:0:16}.snap.zst"
}

@test "--stream and --category select; an unknown --stream exits 1" {
	run -0 --separate-stderr es-snapshot --stream order-2 --stream cust-ann
	run -0 find "$ES_STORE/snapshots" -type f
	assert_equal "${#lines[@]}" 2
	rm -r "$ES_STORE/snapshots"
	run -0 --separate-stderr es-snapshot --category order-
	[ -d "$(snapdir order-1)" ] && [ -d "$(snapdir order-2)" ] && [ ! -d "$(snapdir cust-ann)" ]
	run -1 --separate-stderr es-snapshot --stream nope
	assert_equal "$stderr" "es-snapshot: no stream 'nope'"
}

@test "taking is incremental: from the newest valid snapshot, and only when there is news" {
	es-snapshot --stream order-1
	run -0 --separate-stderr es-snapshot --stream order-1 -v
	assert_equal "$stderr" "$(printf '%s\n' \
		"es-snapshot: 'order-1': not due (version 3, last snapshot at 3)" \
		"es-snapshot: 0 snapshots taken, 1 streams skipped")"
	append "$(ev order-1 ItemRemoved '{"sku":"A1"}')"
	run -0 --separate-stderr es-snapshot --stream order-1 -v
	err_line -n 0 "es-snapshot: 'order-1': snapshot at version 4 (seq 6), folded from the snapshot at 3"
	run -0 ls "$(snapdir order-1)"
	assert_equal "${#lines[@]}" 2
	# the same state as a fold from version 1
	run -0 --separate-stderr es-snapshot --stream order-1 --no-snapshots --stdout
	assert_equal "$(jq -c .state <<<"$output")" "$(zstd -dcq "$(snap order-1)" | jq -c .state)"
}

@test "--no-snapshots takes from version 1 even when a snapshot exists" {
	es-snapshot --stream order-1 --to-seq 3
	append "$(ev order-1 X)"
	run -0 --separate-stderr es-snapshot --stream order-1 --no-snapshots -v
	err_line -n 0 "es-snapshot: 'order-1': snapshot at version 4 (seq 6), folded from version 1"
	# and counts what is due from the first event
	run -0 --separate-stderr es-snapshot --stream order-1 --no-snapshots --every 5 -v
	err_line -n 0 "es-snapshot: 'order-1': not due (version 4, counted from its first event: --no-snapshots)"
}

@test "--every N: only streams with N or more events since their last snapshot" {
	run -0 --separate-stderr es-snapshot --every 2
	[ -d "$(snapdir order-1)" ] && [ ! -d "$(snapdir order-2)" ] && [ ! -d "$(snapdir cust-ann)" ]
	append "$(ev order-1 X)" "$(ev order-2 X)"
	run -0 --separate-stderr es-snapshot --every 2 -v
	err_line "es-snapshot: 'order-1': not due (version 4, last snapshot at 3)"
	err_line "es-snapshot: 'order-2': snapshot at version 2 (seq 7), folded from version 1"
	err_line "es-snapshot: 'cust-ann': not due (version 1, no snapshot)"
	append "$(ev order-1 X)"
	run -0 --separate-stderr es-snapshot --every 2 --stream order-1 -v
	err_line "es-snapshot: 'order-1': snapshot at version 5 (seq 8), folded from the snapshot at 3"
}

@test "--to-seq N: the snapshot is taken at the last event with seq <= N" {
	run -0 --separate-stderr es-snapshot --to-seq 4
	run -0 --separate-stderr es-snapshot --list
	assert_equal "$(jq -c '[.stream,.version,.seq]' <<<"$output" | tr '\n' ' ')" \
		'["cust-ann",1,4] ["order-1",2,3] ["order-2",1,2] '
	# streams named with --stream must have events by then; the others are skipped
	run -1 --separate-stderr es-snapshot --to-seq 1 --stream order-2
	assert_equal "$stderr" "es-snapshot: stream 'order-2' has no events at or before seq 1"
	rm -r "$ES_STORE/snapshots"
	run -0 --separate-stderr es-snapshot --to-seq 1
	run -0 --separate-stderr es-snapshot --list
	assert_equal "$(jq -c '[.stream,.version,.seq]' <<<"$output")" '["order-1",1,1]'
}

@test "--stdout prints the records and stores nothing" {
	run -0 --separate-stderr es-snapshot --stdout
	assert_equal "${#lines[@]}" 3
	[ ! -e "$ES_STORE/snapshots" ]
	run -0 jq -r '.stream' <<<"$output"
	assert_output "$(printf '%s\n' cust-ann order-1 order-2)"
	# byte for byte what would be stored, but for the time it was taken
	es-snapshot --stream order-2
	run -0 --separate-stderr es-snapshot --stdout --stream order-2 --no-snapshots
	assert_equal "$(jq -c 'del(.taken,.sha256)' <<<"$output")" \
		"$(zstd -dcq "$(snap order-2)" | jq -c 'del(.taken,.sha256)')"
}

@test "reals are stored so that they read back exactly" {
	printf '%s\n' '{"stream":"r","type":"ItemAdded","data":{"price":0.1,"qty":1}}' \
		'{"stream":"r","type":"ItemAdded","data":{"price":0.2,"qty":1}}' | es-append -q
	es-snapshot --stream r --reducer spec.json
	run -0 --separate-stderr es-snapshot --stdout --stream r --reducer spec.json --no-snapshots
	# 0.1 + 0.2 is 0.30000000000000004: 15 digits would lose it
	assert_output --partial '"total":0.30000000000000004'
	append '{"stream":"r","type":"ItemAdded","data":{"price":0.7,"qty":1}}'
	need_replay
	same_replay --stream r --reducer spec.json
	assert_equal "$notes" ""
}

@test "--list prints one JSON line per snapshot, sorted by stream" {
	run -0 --separate-stderr es-snapshot --list
	assert_output ""
	es-snapshot
	es-snapshot --reducer spec.json --stream order-1
	run -0 --separate-stderr es-snapshot --list
	assert_equal "${#lines[@]}" 4
	run -0 jq -c '[.stream,.version,.seq,(.size>0),(.file|test("^snapshots/[0-9a-f]{64}/")),
		(.taken|test("Z$")),(.ts|test("Z$"))]' <<<"$output"
	assert_line -n 0 '["cust-ann",1,4,true,true,true,true]'
	assert_line -n 3 '["order-2",1,2,true,true,true,true]'
	run -0 --separate-stderr es-snapshot --list --reducer spec.json
	assert_equal "${#lines[@]}" 1
	run -0 --separate-stderr es-snapshot --list --category order- --stream order-2
	assert_equal "${#lines[@]}" 1
	run -0 --separate-stderr es-snapshot --list --category order-
	assert_equal "${#lines[@]}" 3
}

@test "--list shows a damaged snapshot with its error" {
	es-snapshot --stream order-1
	printf 'garbage' | dd of="$(snap order-1)" bs=1 seek=20 conv=notrunc 2>/dev/null
	run -0 --separate-stderr es-snapshot --list
	run -0 jq -c '[.stream,.version,.error]' <<<"$output"
	assert_output '[null,3,"checksum mismatch"]'
}

@test "--list ends quietly on a closed pipe and fails on a full disk" {
	for i in $(seq 1 30); do ev "s-$i" X; done | es-append -q
	es-snapshot
	run -0 --separate-stderr bash -c 'es-snapshot --list | head -1'
	assert_equal "${#lines[@]}" 1
	assert_equal "$stderr" ""
	run -4 --separate-stderr bash -c 'es-snapshot --list >/dev/full'
	assert_equal "$stderr" "es-snapshot: write error on standard output: No space left on device"
	run -4 --separate-stderr bash -c 'es-snapshot --stdout --no-snapshots >/dev/full'
	assert_equal "$stderr" "es-snapshot: write error on standard output: No space left on device"
}

@test "--verify recomputes each from the log and compares byte for byte" {
	es-snapshot
	es-snapshot --reducer spec.json
	run -0 --separate-stderr es-snapshot --verify -v
	assert_output ""
	err_line --partial "snapshot of 'order-1' at version 3: ok"
	err_line --partial "not verifiable: taken under another reducer"
	err_line "es-snapshot: 3 snapshots right, 0 wrong"
	run -0 --separate-stderr es-snapshot --verify -q
	assert_equal "$stderr" ""
	run -0 --separate-stderr es-snapshot --verify --reducer spec.json --category order-
	err_line --partial "not verifiable"
}

@test "--verify out of memory is an I/O error, never a wrong snapshot" {
	# A failed allocation while reading a snapshot (its JSON) or checking
	# it against the log (the record's stream name) made a sound snapshot
	# "not a snapshot record" or "seq/hash not in the log": exit 1.
	es-snapshot
	es-snapshot --reducer spec.json
	run -0 --separate-stderr es-snapshot --verify -q
	oom_sweep "$output" es-snapshot --verify -q
}

@test "--verify finds a wrong state even when its sha256 is right" {
	es-snapshot
	# sound on its own, wrong against the log
	reseal "$(snap order-2)" 's/"customer":"bob"/"customer":"eve"/'
	run -1 --separate-stderr es-snapshot --verify -q
	local rel
	rel=$(cd "$ES_STORE" && ls snapshots/"$(basename "$(snapdir order-2)")"/*)
	assert_equal "$stderr" "es-snapshot: $rel: snapshot of 'order-2' at version 1: state differs from a replay of the log"
}

@test "--verify exits 1 for a damaged, a stale and an unknown-format snapshot" {
	es-snapshot
	printf 'xx' | dd of="$(snap order-2)" bs=1 seek=30 conv=notrunc 2>/dev/null
	run -1 --separate-stderr es-snapshot --verify --stream order-2
	assert_output ""
	[[ "$stderr" == *": checksum mismatch"* ]]
	run -0 --separate-stderr es-snapshot --verify --stream order-1
	reseal "$(snap order-1)" 's/"format":1/"format":2/'
	run -1 --separate-stderr es-snapshot --verify --stream order-1
	[[ "$stderr" == *": unknown format" ]]
	reseal "$(snap cust-ann)" 's/"hash":"[0-9a-f]*"/"hash":"'"$(printf '%064d' 0)"'"/'
	run -1 --separate-stderr es-snapshot --verify --stream cust-ann
	[[ "$stderr" == *"snapshot of 'cust-ann' at version 1: seq/hash not in the log" ]]
}

@test "--verify checks many snapshots of a stream with one replay" {
	for i in 1 2 3 4 5 6; do append "$(ev order-1 X "{\"i\":$i}")"; es-snapshot --stream order-1; done
	run -0 --separate-stderr es-snapshot --verify --stream order-1 -v
	err_line "es-snapshot: 6 snapshots right, 0 wrong"
	reseal "$(ls "$(snapdir order-1)"/* | sed -n 3p)" 's/"i":3/"i":33/'
	run -1 --separate-stderr es-snapshot --verify --stream order-1 -v
	err_line "es-snapshot: 5 snapshots right, 1 wrong"
	err_line --partial "at version 6: state differs from a replay of the log"
}

@test "--prune --keep K keeps the newest K per stream and reducer" {
	for i in 1 2 3 4; do
		append "$(ev order-1 X "{\"i\":$i}")"
		es-snapshot --stream order-1
		es-snapshot --stream order-1 --reducer spec.json
	done
	es-snapshot --stream order-2
	run -0 ls "$(snapdir order-1)"
	assert_equal "${#lines[@]}" 8
	run -0 --separate-stderr es-snapshot --prune --keep 2 -v
	err_line "es-snapshot: 4 snapshots removed, 0 stale temporary files"
	run -0 --separate-stderr es-snapshot --list --stream order-1
	run -0 jq -c '[.version,.reducer[:6]]' <<<"$output"
	assert_equal "${#lines[@]}" 4
	run -0 --separate-stderr es-snapshot --list --stream order-1 --reducer spec.json
	assert_equal "$(jq -r .version <<<"$output" | tr '\n' ' ')" "6 7 "
	# --reducer: only that reducer's
	run -0 --separate-stderr es-snapshot --prune --keep 0 --reducer spec.json
	run -0 --separate-stderr es-snapshot --list --stream order-1
	assert_equal "$(jq -r .version <<<"$output" | tr '\n' ' ')" "6 7 "
	# --keep 0 removes them all, and the stream's directory with them
	run -0 --separate-stderr es-snapshot --prune --keep 0 --stream order-1
	[ ! -e "$(snapdir order-1)" ]
	[ -e "$(snapdir order-2)" ]
}

@test "a stream named twice: listed, verified and pruned once" {
	for i in 1 2 3 4; do append "$(ev order-1 X "{\"i\":$i}")"; es-snapshot --stream order-1; done
	run -0 --separate-stderr es-snapshot --list --stream order-1 --stream order-2 --stream order-1
	assert_equal "$(jq -r .version <<<"$output" | tr '\n' ' ')" "4 5 6 7 "
	run -0 --separate-stderr es-snapshot --verify --stream order-1 --stream order-1 -v
	err_line "es-snapshot: 4 snapshots right, 0 wrong"
	# a file listed twice counted its copy as a newer snapshot: --keep 2 removed all
	run -0 --separate-stderr es-snapshot --prune --keep 2 --stream order-1 --stream order-1 -v
	err_line "es-snapshot: 2 snapshots removed, 0 stale temporary files"
	run -0 --separate-stderr es-snapshot --list --stream order-1
	assert_equal "$(jq -r .version <<<"$output" | tr '\n' ' ')" "6 7 "
}

@test "a writer killed before its rename leaves no snapshot; --prune removes its temp" {
	run -137 --separate-stderr env ES_CRASH=before-rename:1 es-snapshot --stream order-1
	run -0 --separate-stderr es-snapshot --list
	assert_output ""
	run -0 bash -c "ls '$(snapdir order-1)'"
	assert_output --regexp '\.snap\.zst\.tmp\.[0-9]+$'
	run -0 --separate-stderr es-snapshot --prune --keep 1 -v
	err_line "es-snapshot: 0 snapshots removed, 1 stale temporary files"
	run -0 find "$(snapdir order-1)" -type f
	assert_output ""
}

@test "a failed write or rename is exit 4 and leaves nothing" {
	run -4 --separate-stderr env ES_FAULT=rename:1 es-snapshot --stream order-1
	[[ "$stderr" == "es-snapshot: cannot write '"*"': Input/output error" ]]
	run -4 --separate-stderr env ES_FAULT=fsync:1 es-snapshot --stream order-1
	run -0 find "$ES_STORE/snapshots" -type f
	assert_output ""
	es-snapshot --stream order-1
	run -0 find "$ES_STORE/snapshots" -type f
	assert_equal "${#lines[@]}" 1
}

@test "stream names with any characters" {
	printf '%s\n' '{"stream":"a/b","type":"X","data":{"v":1}}' \
		'{"stream":"q\"uo\\te","type":"X","data":{"v":2}}' \
		'{"stream":"../x","type":"X","data":{"v":3}}' \
		'{"stream":"日本","type":"X","data":{"v":4}}' | es-append -q
	run -0 --separate-stderr es-snapshot
	run -0 --separate-stderr es-snapshot --list
	assert_line --partial '"stream":"q\"uo\\te","version":1'
	assert_line --partial '"stream":"日本","version":1'
	run -0 --separate-stderr es-snapshot --verify
	[ ! -e "$ES_STORE/x" ] && [ ! -e "$ES_STORE/snapshots/x" ]
	need_replay
	same_replay --stream 'q"uo\te' --stream a/b --stream 日本
	assert_equal "$notes" ""
}

@test "es-replay folds on from the snapshot, not from version 1" {
	need_replay
	es-snapshot --stream order-1
	# Change an old event in place (same length): only a full replay sees it.
	sed -i '1s/"customer":"ann"/"customer":"amy"/' "$(seg)"
	run -0 --separate-stderr es-replay --stream order-1 -v
	assert_equal "$(jq -r .state.customer <<<"$output")" ann
	assert_equal "$stderr" ""
	run -0 --separate-stderr es-replay --stream order-1 --no-snapshots
	assert_equal "$(jq -r .state.customer <<<"$output")" amy
}

@test "no memory while replaying from a snapshot, or taking one from it, never gives another state" {
	need_replay
	es-snapshot --stream order-1
	run -0 --separate-stderr es-replay --stream order-1 -v
	oom_sweep "$output" es-replay --stream order-1
	# taking the next snapshot starts from this one: a failed allocation
	# leaves no snapshot, or the right one
	append "$(ev order-1 ItemAdded '{"sku":"Z","qty":1}')"
	cp -a "$ES_STORE" pristine
	es-snapshot --stream order-1
	run -0 es-replay --stream order-1 --no-snapshots
	want=$output
	rm -rf "$ES_STORE" && cp -a pristine "$ES_STORE"
	alloc_count es-snapshot --stream order-1 -q
	local n failed=0
	for ((n = 1; n <= count; n++)); do
		rm -rf "$ES_STORE" && cp -a pristine "$ES_STORE"
		ES_FAULT=malloc:$n run --separate-stderr es-snapshot --stream order-1 -q
		if [ "$status" -ne 0 ]; then
			[ "$status" -eq 4 ] || { echo "malloc:$n: exit $status: $stderr"; return 1; }
			failed=$((failed + 1))
		fi
		run -0 --separate-stderr es-snapshot --verify -q
		run -0 es-replay --stream order-1
		[ "$output" = "$want" ] || { echo "malloc:$n: another state after taking: $output"; return 1; }
	done
	[ "$failed" -gt 0 ]
}

@test "es-replay --to-seq uses the newest snapshot at or before it" {
	need_replay
	es-snapshot --stream order-1 --to-seq 3
	es-snapshot --stream order-1
	same_replay --stream order-1 --to-seq 4
	same_replay --stream order-1 --to-seq 1
	same_replay --stream order-1
	assert_equal "$notes" ""
}

# ---- every case in which a snapshot is ignored -----------------------------

# ignored REASON: the replay of order-1 equals a full replay, and -v says
# why its snapshot was ignored
ignored() {
	same_replay --stream order-1 "${@:2}"
	assert_equal "$notes" "es-replay: snapshot of 'order-1' at version 3 ignored: $1"
}

@test "ignored: the zstd frame is damaged (checksum)" {
	need_replay
	es-snapshot --stream order-1
	local f
	f=$(snap order-1)
	printf '\xff\xff\xff\xff' | dd of="$f" bs=1 seek=$(($(stat -c %s "$f") - 6)) conv=notrunc 2>/dev/null
	ignored "checksum mismatch"
}

@test "ignored: the file is cut short (checksum)" {
	need_replay
	es-snapshot --stream order-1
	truncate -s -10 "$(snap order-1)"
	ignored "checksum mismatch (truncated)"
}

@test "ignored: a zstd frame without a content checksum" {
	need_replay
	es-snapshot --stream order-1
	local f
	f=$(snap order-1)
	zstd -dcq "$f" > rec
	zstd -q --no-check -f -o "$f" rec
	ignored "checksum mismatch (the frame has no content checksum)"
}

@test "ignored: the state was edited, the zstd frame is sound (sha256)" {
	need_replay
	es-snapshot --stream order-1
	local f
	f=$(snap order-1)
	zstd -dcq "$f" | sed 's/"sku":"B2"/"sku":"Z9"/' > rec
	zstd -qf -o "$f" rec
	ignored "sha256 mismatch"
}

@test "ignored: taken under another reducer" {
	need_replay
	es-snapshot --stream order-1 --reducer spec.json
	ignored "reducer differs"
	# and the other way round
	run -0 --separate-stderr es-snapshot --prune --keep 0
	es-snapshot --stream order-1
	ignored "reducer differs" --reducer spec.json
}

@test "ignored: the reducer in the record differs from the one in its name" {
	need_replay
	es-snapshot --stream order-1
	reseal "$(snap order-1)" 's/\("reducer":"[0-9a-f]\{60\}\)[0-9a-f]\{4\}/\1beef/'
	ignored "reducer differs"
}

@test "ignored: its seq/hash is not in the log (a snapshot from another store)" {
	need_replay
	# the same stream and versions, other events
	ES_STORE="$TMP/other" es-append -q < <(printf '%s\n' \
		'{"stream":"order-1","type":"OrderCreated","data":{"customer":"zed"}}' \
		'{"stream":"x","type":"X"}' \
		'{"stream":"order-1","type":"ItemAdded","data":{"sku":"Q","price":1,"qty":1}}' \
		'{"stream":"x","type":"X"}' \
		'{"stream":"order-1","type":"ItemAdded","data":{"sku":"R","price":1,"qty":1}}')
	ES_STORE="$TMP/other" es-snapshot --stream order-1
	mkdir -p "$(snapdir order-1)"
	cp "$(ES_STORE="$TMP/other" snap order-1)" "$(snapdir order-1)/"
	ignored "seq/hash not in the log"
	run -1 --separate-stderr es-snapshot --verify
	[[ "$stderr" == *"snapshot of 'order-1' at version 3: seq/hash not in the log" ]]
}

@test "ignored: its version is beyond the stream's" {
	need_replay
	es-snapshot --stream order-1
	local f
	f=$(snap order-1)
	reseal "$f" 's/"version":3/"version":9/'
	mv "$f" "$(dirname "$f")/00000000000000000009${f##*/00000000000000000003}"
	same_replay --stream order-1
	assert_equal "$notes" "es-replay: snapshot of 'order-1' at version 9 ignored: seq/hash not in the log"
}

@test "ignored: an unknown format version" {
	need_replay
	es-snapshot --stream order-1
	reseal "$(snap order-1)" 's/"format":1/"format":2/'
	ignored "unknown format"
}

@test "ignored: not a snapshot record at all" {
	need_replay
	es-snapshot --stream order-1
	printf '{"hello":"world"}\n' | zstd -qf -o "$(snap order-1)"
	ignored "not a snapshot record"
	printf 'not json\n' | zstd -qf -o "$(snap order-1)"
	ignored "not a snapshot record"
}

@test "ignored: its name does not match its record, or its directory its stream" {
	need_replay
	es-snapshot --stream order-1
	local f
	f=$(snap order-1)
	mv "$f" "${f/00000000000000000005-/00000000000000000004-}"
	ignored "its name does not match its record"
	rm -r "$(snapdir order-1)"
	es-snapshot --stream order-2
	mkdir -p "$(snapdir order-1)"
	cp "$(snap order-2)" "$(snapdir order-1)/00000000000000000003-00000000000000000002-$(ls "$(snapdir order-2)" | cut -c43-)"
	reseal "$(snap order-1)" 's/"version":1,"seq":2/"version":3,"seq":2/'
	ignored "its stream does not match its directory"
}

@test "an invalid newest snapshot falls back to the next older valid one" {
	need_replay
	es-snapshot --stream order-1 --to-seq 3
	es-snapshot --stream order-1
	printf 'xxxx' | dd of="$(snap order-1)" bs=1 seek=40 conv=notrunc 2>/dev/null
	same_replay --stream order-1
	assert_equal "$notes" "es-replay: snapshot of 'order-1' at version 3 ignored: checksum mismatch"
	# and taking again starts from the older one and replaces the damaged one
	run -0 --separate-stderr es-snapshot --stream order-1 -v
	err_line "es-snapshot: 'order-1': snapshot at version 3 (seq 5), folded from the snapshot at 2"
	run -0 --separate-stderr es-snapshot --verify
}

# ---- randomized histories --------------------------------------------------

@test "replay with snapshots equals replay without, on randomized histories and reducers" {
	need_replay
	local seed n i r red
	for seed in $RANDOM $RANDOM $RANDOM; do
		export ES_STORE="$TMP/rand-$seed"
		gen-events -n 5000 -s "$seed" > "ev-$seed"
		es-append --import-ts -q < "ev-$seed"
		for red in "" spec.json; do
			# snapshots at random points, some incremental, some not
			for i in 1 2 3; do
				r=$((RANDOM % 5000 + 1))
				# shellcheck disable=SC2046
				es-snapshot ${red:+--reducer "$red"} --to-seq "$r" $([ "$i" = 3 ] && echo --no-snapshots)
			done
			es-snapshot ${red:+--reducer "$red"} --every $((RANDOM % 20 + 1))
			same_replay --category '' ${red:+--reducer "$red"}
			assert_equal "$(grep -c 'ignored' <<<"$notes")" \
				"$(grep -c 'reducer differs' <<<"$notes")"
			r=$((RANDOM % 5000 + 1))
			same_replay --category '' ${red:+--reducer "$red"} --to-seq "$r"
			run -0 --separate-stderr es-snapshot ${red:+--reducer "$red"} --verify -q
		done
		# a full scan of the whole store folds the same states
		run -0 --separate-stderr es-replay
		assert_equal "$(sort <<<"$output")" \
			"$(es-replay --category '' | sort)"
	done
}

@test "replay with snapshots equals replay without when rules set constant containers" {
	need_replay
	# A full replay must not let one event's state leak into the next through
	# a constant the reducer holds: "set" of [] then "push" into it.
	printf '%s\n' '{"on":{"Reset":[{"op":"set","path":"l","value":[]},{"op":"set","path":"o","value":{}}],
		"Add":[{"op":"push","path":"l","from":"data.x"},{"op":"set","path":"o.x","from":"data.x"}]}}' > const.json
	printf '%s\n' '{"stream":"k1","type":"Reset"}' '{"stream":"k1","type":"Add","data":{"x":1}}' \
		'{"stream":"k2","type":"Reset"}' '{"stream":"k2","type":"Add","data":{"x":2}}' \
		'{"stream":"k1","type":"Reset"}' '{"stream":"k1","type":"Add","data":{"x":3}}' | es-append -q
	es-snapshot --reducer const.json --to-seq 9
	same_replay --category k --reducer const.json
	assert_equal "$(jq -c .state <<<"$output" | tr '\n' ' ')" '{"l":[3],"o":{"x":3}} {"l":[2],"o":{"x":2}} '
}

# ---- auto-snapshots from es-append (store.json "snapshot_every") -----------

@test "store.json snapshot_every makes es-append snapshot every N events" {
	grep -q es_snapshot_auto "$ROOT/bin/es-append.c" "$ROOT/lib/append.c" ||
		skip "es-append does not call es_snapshot_auto yet"
	sed -i 's/"snapshot_every":0/"snapshot_every":3/' "$ES_STORE/store.json"
	for i in 1 2 3 4 5 6 7; do append "$(ev auto X "{\"i\":$i}")"; done
	run -0 --separate-stderr es-snapshot --list --stream auto
	assert_equal "$(jq -r .version <<<"$output" | tr '\n' ' ')" "3 6 "
	printf '%s\n' "$(ev auto X)" "$(ev auto X)" "$(ev auto X)" "$(ev auto X)" | es-append -q
	run -0 --separate-stderr es-snapshot --list --stream auto
	assert_equal "$(jq -r .version <<<"$output" | tr '\n' ' ')" "3 6 11 "
	run -0 --separate-stderr es-snapshot --verify
	[ ! -d "$(snapdir order-1)" ]
	# a snapshot that cannot be written does not undo the stored events
	sed -i 's/"snapshot_every":3/"snapshot_every":1/' "$ES_STORE/store.json"
	run -0 --separate-stderr env ES_FAULT=rename:1 es-append <<<"$(ev auto X)"
	assert_equal "$(jq -r .version <<<"$output")" 12
	[[ "$stderr" == *"warning"*"the events are stored"* ]]
	run -0 --separate-stderr es-replay --stream auto --no-snapshots
	assert_equal "$(jq -r .version <<<"$output")" 12
}

@test "snapshot_every in a bulk run of several chunks (the index held between them)" {
	grep -q es_snapshot_auto "$ROOT/bin/es-append.c" "$ROOT/lib/append.c" ||
		skip "es-append does not call es_snapshot_auto yet"
	sed -i 's/"snapshot_every":0/"snapshot_every":4/' "$ES_STORE/store.json"
	for i in $(seq 10); do ev "bulk-$((i % 2))" X "{\"i\":$i}"; done >"$TMP/in"
	run -0 --separate-stderr es-append -q --batch-size 3 "$TMP/in"
	assert_equal "$stderr" ""
	# each stream gets 5 events and one snapshot, at the end of the chunk
	# where it reached version 4 (bulk-1: 4 and 5 came in the same chunk),
	# taken while the index entries of the earlier chunks were not
	# committed yet
	for s in bulk-0:4 bulk-1:5; do
		run -0 --separate-stderr es-snapshot --list --stream "${s%:*}"
		assert_equal "$(jq -r .version <<<"$output")" "${s#*:}"
		s=${s%:*}
		assert_equal "$(es-replay --stream "$s")" "$(es-replay --stream "$s" --no-snapshots)"
	done
	run -0 --separate-stderr es-snapshot --verify
	run -0 --separate-stderr es-verify --snapshots
	[ ! -e "$ES_STORE/index/unsynced" ]
}

@test "snapshots are taken and used on a store whose history is archived" {
	command -v es-archive >/dev/null || skip "es-archive is not built"
	export ES_STORE="$TMP/archived-store"
	echo '{"stream":"seed","type":"T","ts":"2026-01-01T00:00:00Z"}' | es-append -q --import-ts
	jq -c '.segment_size=4096' "$ES_STORE/store.json" > s.json && mv s.json "$ES_STORE/store.json"
	for i in $(seq 1 120); do
		printf '{"stream":"arc-%d","type":"T","ts":"2026-01-01T%02d:%02d:00Z","data":{"n":%d}}\n' \
			$((i % 3)) $((i / 60)) $((i % 60)) "$i"
	done | es-append -q --import-ts --batch-size 7
	run -0 --separate-stderr es-archive --before 2026-06-01
	[ -n "$(ls "$ES_STORE/archive/"*.zst)" ]
	run -0 --separate-stderr es-snapshot --category arc-
	run -0 --separate-stderr es-replay --category arc-
	with=$output
	run -0 --separate-stderr es-replay --category arc- --no-snapshots
	[ "$output" = "$with" ]
	run -0 --separate-stderr es-verify --snapshots
}

@test "a snapshot of a purged event is stale: readers fold the events left" {
	# es-replay, es-at-time and --verify exited 4 "cannot open 'log/...'"
	# reading the snapshot's purged event
	export ES_STORE="$TMP/purged"
	purged_store_events
	es-snapshot -q --stream s1 --to-seq 10
	es-archive -q --before 2026-03-01
	es-archive -q --purge-before 2026-02-15
	run -0 --separate-stderr es-replay --stream s1 --no-snapshots
	local want=$output
	run -0 --separate-stderr es-replay --stream s1
	assert_equal "$output" "$want"
	run -0 --separate-stderr es-at-time --stream s1 2027-01-01
	assert_equal "$output" "$want"
	run -1 --separate-stderr es-snapshot --verify
	[[ $stderr == *": snapshot of 's1' at version 3: its event was purged (es-archive --purge-before)" ]]
}

@test "--verify after a purge: a later snapshot of a part-purged stream is checked against the log" {
	# a replay from version 1 read purged events: exit 4 "cannot open 'log/...'"
	export ES_STORE="$TMP/purged"
	purged_store_events
	es-snapshot -q --stream s1
	es-archive -q --before 2026-03-01
	es-archive -q --purge-before 2026-02-15
	run -0 --separate-stderr es-snapshot --verify -v
	[[ $stderr == *": snapshot of 's1' at version 20: ok (checked against the log only: the stream's first events were purged)"* ]]
	err_line "es-snapshot: 1 snapshots right, 0 wrong"
}

@test "damage in the log: taking and --verify name it and exit 1, as readers do" {
	# one byte fewer in event 4: the index is behind the log, and
	# recovery refuses to pass the damaged record
	sed -i '4s/"type":/"tpe":/' "$ES_STORE"/log/*.ndjson
	run -1 --separate-stderr es-replay --stream order-1
	[[ "$stderr" == *"envelope keys missing or out of order"* ]]
	run -1 --separate-stderr es-snapshot
	[[ "$stderr" == *"cannot be brought up to date: log/"*"seq 4: envelope keys missing"* ]]
	run -1 --separate-stderr es-snapshot --verify
	[[ "$stderr" == *"seq 4: envelope keys missing"* ]]
	[ ! -d "$ES_STORE/snapshots" ] || [ -z "$(find "$ES_STORE/snapshots" -type f)" ]
}

@test "regression: damage only a read finds: taking names it and exits 1, never \"not due\"" {
	# ES_CORRUPT is 1, which also meant "not due": es-snapshot exited 0 and
	# took nothing, silently. The line keeps its length, so the index
	# still matches the log.
	sed -i '3s/^{"seq"/X"seq"/' "$ES_STORE"/log/*.ndjson
	run -1 --separate-stderr es-snapshot --stream order-1 -v
	err_line -n 0 --partial "offset $(head -n 2 "$ES_STORE"/log/*.ndjson | wc -c): seq 3: not the record the index names"
	[ ! -d "$(snapdir order-1)" ]
	run -1 --separate-stderr es-replay --stream order-1
	[[ "$stderr" == *"seq 3: not the record the index names"* ]]
}

@test "regression: a stream whose first events were purged is snapshotted from the events left" {
	# the fold started at version 1, in a purged segment: exit 4 "cannot
	# open 'log/...'", and the streams after it went without; with an index
	# rebuilt since the purge, "not due" and exit 0; es-append's
	# snapshot_every warned on every append
	export ES_STORE="$TMP/purged"
	purged_store_events
	es-archive -q --before 2026-03-01
	es-archive -q --purge-before 2026-02-15
	run -0 --separate-stderr es-snapshot -v
	err_line "es-snapshot: 4 snapshots taken, 0 streams skipped"
	err_line --partial "'s1': snapshot at version 20 (seq 78), folded from the events left after es-archive --purge-before"
	for s in s0 s1 s2 s3; do
		same_replay --stream $s
		[[ "$notes" != *ignored* ]]
	done
	run -0 --separate-stderr es-snapshot --verify
	# an index rebuilt since the purge holds no position for the purged versions
	es-snapshot -q --prune --keep 0
	rm -rf "$ES_STORE/index"
	run -0 --separate-stderr es-snapshot -v
	err_line "es-snapshot: 4 snapshots taken, 0 streams skipped"
	same_replay --stream s2
	# at a version whose event was purged there is nothing to take
	# (named, that is a stream with no events to take: exit 1)
	run -0 --separate-stderr es-snapshot --to-seq 10 -v
	err_line "es-snapshot: 's1': not taken: its last event at or before seq 10 was purged (es-archive --purge-before)"
	run -1 --separate-stderr es-snapshot --stream s1 --to-seq 10
	assert_equal "$stderr" "es-snapshot: stream 's1': its last event at or before seq 10 was purged (es-archive --purge-before)"
	# es-append's snapshot_every
	es-snapshot -q --prune --keep 0
	jq -c '.snapshot_every = 2' "$ES_STORE/store.json" > s.json && mv s.json "$ES_STORE/store.json"
	run -0 --separate-stderr es-append <<<'{"stream":"s3","type":"T","data":{"i":80}}'
	assert_equal "$stderr" ""
	[ -n "$(ls "$(snapdir s3)")" ]
	same_replay --stream s3
}

@test "regression: the order of a reducer's init keys is part of its identity (states take it)" {
	# the id hashed the spec with its keys sorted, so a snapshot under
	# init {"a":0,"b":0} was used for init {"b":0,"a":0}: other bytes than a
	# full replay, and --verify called the right snapshot wrong
	append "$(ev o1 A '{"x":1}')" "$(ev o2 A '{"x":1}')" "$(ev o3 A '{"x":1}')" "$(ev o4 A '{"x":1}')"
	echo '{"init":{"a":0,"b":0},"on":{"A":[{"op":"add","path":"a","from":"data.x"}]}}' > ab.json
	echo '{"init":{"b":0,"a":0},"on":{"A":[{"op":"add","path":"a","from":"data.x"}]}}' > ba.json
	es-snapshot -q --stream o1 --reducer ab.json
	same_replay --stream o1 --reducer ba.json
	assert_equal "$notes" "es-replay: snapshot of 'o1' at version 1 ignored: reducer differs"
	run -0 --separate-stderr es-snapshot --verify --reducer ba.json
	# a constant's order counts too
	echo '{"on":{"A":[{"value":{"y":1,"x":2},"path":"c","op":"set"}]},"init":{"a":0,"b":0}}' > v1.json
	echo '{"on":{"A":[{"value":{"x":2,"y":1},"path":"c","op":"set"}]},"init":{"a":0,"b":0}}' > v2.json
	es-snapshot -q --stream o2 --reducer v1.json
	same_replay --stream o2 --reducer v2.json
	assert_equal "$notes" "es-replay: snapshot of 'o2' at version 1 ignored: reducer differs"
	# other keys' order does not: the same reducer, its snapshot used
	echo '{"on":{"A":[{"from":"data.x","path":"a","op":"add"}]},"init":{"a":0,"b":0}}' > ab2.json
	es-snapshot -q --stream o3 --reducer ab.json
	same_replay --stream o3 --reducer ab2.json
	assert_equal "$notes" ""
	echo '{"on":{"A":[{"from":"data.x","path":"a","op":"add"}]},"init":{"b":0,"a":0}}' > ba2.json
	es-snapshot -q --stream o4 --reducer ba.json
	same_replay --stream o4 --reducer ba2.json
	assert_equal "$notes" ""
	run -0 --separate-stderr es-snapshot --stream o4 --reducer ba2.json -v
	err_line "es-snapshot: 'o4': not due (version 1, last snapshot at 1)"
}

@test "regression: --prune removing a stream's directory under a writer: the writer makes it again" {
	# the writer had made the directory; --prune emptied and removed it
	# before the writer's temp file: "cannot write ...", exit 4
	es-snapshot -q --stream order-1 --to-seq 3
	append "$(ev order-1 X)"
	local w
	ES_STOP=snapshot-dir-made es-snapshot --stream order-1 2>"$TMP/w.err" &
	w=$!
	stopped "$w"
	run -0 --separate-stderr es-snapshot --prune --keep 0 --stream order-1
	[ ! -d "$(snapdir order-1)" ]
	kill -CONT "$w"
	local st=0
	wait "$w" || st=$?
	assert_equal "$st" 0
	assert_equal "$(cat "$TMP/w.err")" ""
	run -0 --separate-stderr es-snapshot --list --stream order-1
	[ "$(jq -r .version <<<"$output")" = 4 ]
	run -0 --separate-stderr es-snapshot --verify
}
