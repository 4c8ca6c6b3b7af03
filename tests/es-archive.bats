#!/usr/bin/env bats
# es-archive: sealed segments to verified zstd archive files; every reader
# reads them back, byte for byte; crashes at every step are finished by a
# rerun; retention with an anchor; --list, --dry-run, --level, --to, locks.

bats_require_minimum_version 1.5.0
load helpers

CUT=2026-03-01 # about half of the generated events are older

# A store of 600 generated events (2026-01-01 .. about 2026-05-01) in
# segments of 16 KiB, batches of 10, and what every reader said before.
local_setup() {
	gen-events -n 600 -s 3 >"$TMP/ev"
	head -n 1 "$TMP/ev" | es-append --import-ts -q
	sed -i 's/"segment_size":[0-9]*/"segment_size":16384/' "$ES_STORE/store.json"
	tail -n +2 "$TMP/ev" | es-append --import-ts --batch-size 10 -q
	snap before
}

# snap NAME: what the readers say, into $TMP/NAME.*
snap() {
	es-replay >"$TMP/$1.states"
	es-replay --events >"$TMP/$1.events"
	es-replay --category order- --events >"$TMP/$1.orders"
	es-replay --stream order-000001 >"$TMP/$1.one"
	es-replay --stream order-000001 --events --reverse >"$TMP/$1.rev"
}

# same: every reader gives byte-identical output to before
same() {
	snap after
	local f
	for f in states events orders one rev; do
		cmp "$TMP/before.$f" "$TMP/after.$f"
	done
}

nlog() { ls "$ES_STORE"/log | wc -l; }
narc() { ls "$ES_STORE"/archive 2>/dev/null | grep -c '\.zst$' || true; }

# tree: every file of the store but the index and the lock, with its checksum
tree() {
	(cd "$ES_STORE" && find . -type f ! -path './index/*' ! -name lock -print0 |
		sort -z | xargs -0 md5sum)
}

@test "--help and --version" {
	run -0 --separate-stderr es-archive --help
	assert_line --partial "usage: es-archive"
	assert_line --partial "--purge-before"
	run -0 --separate-stderr es-archive --version
	assert_output "es-archive 0.1.0"
}

@test "usage errors exit 2" {
	run -2 --separate-stderr es-archive
	assert_equal "${stderr_lines[0]}" "es-archive: nothing to do: give --before, --purge-before, --list or --verify"
	run -2 --separate-stderr es-archive --list --before 1d
	run -2 --separate-stderr es-archive --before yesterday-ish
	[[ $stderr == *"--before: cannot parse time 'yesterday-ish'"* ]]
	run -2 --separate-stderr es-archive --before 1d --level 23
	assert_equal "${stderr_lines[0]}" "es-archive: --level: must be between 1 and 22"
	run -2 --separate-stderr es-archive --before 1d extra
}

@test "archiving moves the old sealed segments and every reader reads them back byte for byte" {
	local n0
	n0=$(nlog)
	run -0 --separate-stderr es-archive --before $CUT
	assert_equal "$stderr" ""
	[ "$(narc)" -gt 3 ]
	[ "$(nlog)" -eq $((n0 - $(narc))) ]
	assert_line --regexp '^archived log/00000000000000000001\.ndjson to archive/00000000000000000001\.ndjson\.zst: seq 1-[0-9]+, [0-9]+ events, [0-9]+ -> [0-9]+ bytes \([0-9.]+x\)$'
	# nothing left in log/ is older than the cutoff, nothing archived is newer
	first=$(ls "$ES_STORE"/log | head -n 1)
	[[ $(head -n 1 "$ES_STORE/log/$first") == *'"ts":"2026-0'[2-5]* ]]
	run -0 jq -r .last_ts "$ES_STORE"/archive/MANIFEST
	same
}

@test "the MANIFEST lists each archived segment with its seqs, ts, hashes, sizes and sha256" {
	es-archive -q --before $CUT
	run -0 jq -c 'select(.file) | keys_unsorted' "$ES_STORE/archive/MANIFEST"
	assert_line --index 0 '["file","dir","first_seq","last_seq","first_ts","last_ts","prev_hash","last_hash","events","raw_bytes","bytes","sha256","level","transform","archived_at"]'
	run -0 head -n 1 "$ES_STORE/archive/MANIFEST"
	assert_output '{"format":"es-archive","version":1}'
	# sha256 and size of every file, and the chain across entries
	local prev=$(printf '%064d' 0) next=1
	while IFS=' ' read -r file first last ph lh bytes sum; do
		[ "$first" -eq "$next" ]
		[ "$ph" = "$prev" ]
		[ "$(stat -c %s "$ES_STORE/archive/$file")" -eq "$bytes" ]
		[ "$(sha256sum <"$ES_STORE/archive/$file" | cut -c1-64)" = "$sum" ]
		prev=$lh
		next=$((last + 1))
	done < <(jq -r 'select(.file) | "\(.file) \(.first_seq) \(.last_seq) \(.prev_hash) \(.last_hash) \(.bytes) \(.sha256)"' "$ES_STORE/archive/MANIFEST")
	# the log goes on right after the archive
	[ -e "$ES_STORE/log/$(printf '%020d' "$next").ndjson" ]
}

@test "zstdcat gives readable NDJSON without the derived seq and hash; the chain recomputes them" {
	es-archive -q --before $CUT
	zstdcat "$ES_STORE"/archive/*.zst >"$TMP/cold"
	run -0 jq -c 'has("seq"), has("hash")' "$TMP/cold"
	refute_line true
	# put seq and hash back with sha256sum alone: the original lines
	local seq=1 prev=$(printf '%064d' 0) body line hash
	: >"$TMP/restored"
	while IFS= read -r line; do
		body="{\"seq\":$seq,${line#\{}"
		body=${body%\}}
		hash=$(printf '%s%s' "$prev" "$body" | sha256sum | cut -c1-64)
		printf '%s,"hash":"%s"}\n' "$body" "$hash" >>"$TMP/restored"
		prev=$hash
		seq=$((seq + 1))
	done <"$TMP/cold"
	head -n "$(wc -l <"$TMP/restored")" "$TMP/before.events" >"$TMP/want"
	cmp "$TMP/want" "$TMP/restored"
}

@test "--keep-derived archives the records as they are: zstdcat gives the log itself" {
	es-archive -q --keep-derived --before $CUT
	zstdcat "$ES_STORE"/archive/*.zst >"$TMP/cold"
	head -n "$(wc -l <"$TMP/cold")" "$TMP/before.events" >"$TMP/want"
	cmp "$TMP/want" "$TMP/cold"
	run -0 jq -r .transform "$ES_STORE/archive/MANIFEST"
	assert_line none
	same
}

@test "leaving seq and hash out makes the archive smaller than zstd of the same bytes" {
	es-archive -q --before $CUT
	local raw ours split_plain off s rb
	raw=$(jq -s '[.[] | select(.file) | .raw_bytes] | add' "$ES_STORE/archive/MANIFEST")
	ours=$(jq -s '[.[] | select(.file) | .bytes] | add' "$ES_STORE/archive/MANIFEST")
	head -c "$raw" "$TMP/before.events" >"$TMP/orig"
	# the same segments, plain zstd at the same level, one frame each
	split_plain=0
	off=0
	while read -r rb; do
		s=$(tail -c +$((off + 1)) "$TMP/orig" | head -c "$rb" | zstd -q -17 -c | wc -c)
		split_plain=$((split_plain + s))
		off=$((off + rb))
	done < <(jq -r 'select(.file) | .raw_bytes' "$ES_STORE/archive/MANIFEST")
	echo "raw $raw plain-zstd-17 $split_plain ours $ours" >&3
	[ $((ours * 13)) -lt $((split_plain * 10)) ] # at least 1.3x better
}

@test "reading through the index is the same after the index is deleted and rebuilt from archive and log" {
	es-archive -q --before $CUT
	rm -r "$ES_STORE/index"
	same
	[ -e "$ES_STORE/index/data.mdb" ]
}

@test "appending goes on after archiving: versions and the chain continue" {
	es-archive -q --before $CUT
	rm -r "$ES_STORE/index"
	local v
	v=$(grep -c '"stream":"order-000001"' "$TMP/before.events")
	run -0 --separate-stderr es-append <<<"$(ev order-000001 Noted)"
	[[ $output == '{"seq":601,"stream":"order-000001","version":'$((v + 1))',"type":"Noted"'* ]]
	run -0 --separate-stderr es-archive --verify
	[[ $stderr == *"ok: "*" segments"* ]]
}

@test "an active segment whose events are all older is rolled, then archived" {
	run -0 --separate-stderr es-archive --before 2027-01-01
	assert_line --regexp '^roll log/[0-9]{20}\.ndjson: the active segment, all its events older than the cutoff$'
	# log/ keeps only a fresh, empty active segment named by the next seq
	run -0 ls "$ES_STORE/log"
	assert_output "00000000000000000601.ndjson"
	[ ! -s "$ES_STORE/log/00000000000000000601.ndjson" ]
	same
	rm -r "$ES_STORE/index"
	same
	append "$(ev new-stream T)"
	run -0 es-replay --events --from-seq 601
	[[ $output == '{"seq":601,'* ]]
	run -0 --separate-stderr es-archive --verify
}

@test "--dry-run shows what would be archived and rolled, and changes nothing" {
	tree >"$TMP/tree.before"
	run -0 --separate-stderr es-archive --dry-run --before 2027-01-01
	assert_line --index 0 --regexp '^would roll log/'
	assert_line --regexp '^would archive log/00000000000000000001\.ndjson \([0-9]+ bytes\) to archive/00000000000000000001\.ndjson\.zst$'
	[ ! -e "$ES_STORE/archive" ]
	tree >"$TMP/tree.after"
	cmp "$TMP/tree.before" "$TMP/tree.after"
}

@test "nothing older than the cutoff: nothing to do, exit 0" {
	run -0 --separate-stderr es-archive --before 2025-01-01
	assert_output ""
	assert_equal "$(narc)" 0
}

@test "a second run archives only what became old since, and keeps the archive contiguous" {
	es-archive -q --before 2026-02-01
	local n1
	n1=$(narc)
	es-archive -q --before $CUT
	[ "$(narc)" -gt "$n1" ]
	run -0 --separate-stderr es-archive --verify
	same
}

@test "a crash at any step of the protocol is finished by the next run; readers never see a gap or a double" {
	cp -a "$ES_STORE" "$TMP/pristine"
	es-archive -q --before $CUT
	es-archive --list >"$TMP/list.want"
	local point n
	for point in archive-after-write:1 archive-after-write:3 before-rename:1 after-rename:1 \
		before-rename:2 after-rename:2 archive-after-manifest:1 archive-after-manifest:2 \
		archive-before-unlink:1 archive-before-unlink:3; do
		rm -rf "$ES_STORE"
		cp -a "$TMP/pristine" "$ES_STORE"
		run -137 env ES_CRASH=$point es-archive -q --before $CUT
		# as it was left: the readers see the whole log, once
		same
		run -0 --separate-stderr es-archive --before $CUT
		es-archive --list >"$TMP/list.got"
		diff -u "$TMP/list.want" "$TMP/list.got"
		run -0 ls "$ES_STORE/archive"
		refute_output --partial .tmp.
		run -0 --separate-stderr es-archive --verify
		[[ $stderr != *warning* ]]
		same
		echo "# $point ok" >&3
	done
}

@test "a crash after the MANIFEST: the log/ copy is checked against the archive, then removed" {
	run -137 env ES_CRASH=archive-after-manifest:1 es-archive -q --before $CUT
	[ -e "$ES_STORE/log/00000000000000000001.ndjson" ]
	run -0 --separate-stderr es-archive --verify
	[[ $stderr == *"warning: log/00000000000000000001.ndjson: seq 1: also archived"* ]]
	run -0 --separate-stderr es-archive --dry-run --before $CUT
	assert_line "would remove log/00000000000000000001.ndjson: already archived by an interrupted run"
	run -0 --separate-stderr es-archive --before $CUT
	assert_line --index 0 "remove log/00000000000000000001.ndjson: already archived by an interrupted run"
	[ ! -e "$ES_STORE/log/00000000000000000001.ndjson" ]
}

@test "a log/ copy that differs from its archived copy is not removed" {
	run -137 env ES_CRASH=archive-after-manifest:1 es-archive -q --before $CUT
	sed -i '1s/"type":"[A-Za-z]*"/"type":"Forged"/' "$ES_STORE/log/00000000000000000001.ndjson"
	run -1 --separate-stderr es-archive --before $CUT
	assert_equal "$stderr" "es-archive: log/00000000000000000001.ndjson: differs from its archived copy; nothing removed"
	[ -e "$ES_STORE/log/00000000000000000001.ndjson" ]
}

@test "regression: a forged log/ copy of an archived segment is never read: the archive is, by every reader" {
	run -137 env ES_CRASH=archive-after-manifest:1 es-archive -q --before $CUT
	local stream
	stream=$(head -n 1 "$ES_STORE/log/00000000000000000001.ndjson" | jq -r .stream)
	es-replay --stream "$stream" >"$TMP/one.before"
	es-replay --stream "$stream" --events >"$TMP/ev.before"
	sed -i '1s/"data":{/"data":{"forged":1,/' "$ES_STORE/log/00000000000000000001.ndjson"
	run -0 --separate-stderr es-replay --stream "$stream" --events
	assert_output "$(cat "$TMP/ev.before")"
	run -0 --separate-stderr es-replay --stream "$stream"
	assert_output "$(cat "$TMP/one.before")"
	run -0 --separate-stderr es-replay --events
	refute_output --partial forged
}

@test "regression: a damaged archive read through the index is exit 1, naming the archive file" {
	es-archive -q --before $CUT
	local f stream
	f=$(ls "$ES_STORE"/archive/*.zst | head -n 1)
	stream=$(es-replay --events --to-seq 1 | jq -r .stream)
	truncate -s -10 "$f"
	run -1 --separate-stderr es-replay --stream "$stream"
	assert_equal "$stderr" "es-replay: archive/$(basename "$f"): offset 0: seq 1: the zstd frame is cut short"
	run -1 --separate-stderr es-replay --events
	assert_equal "$stderr" "es-replay: archive/$(basename "$f"): offset 0: seq 1: the zstd frame is cut short"
}

@test "regression: purging every archived segment keeps the index: versions go on, a purged id is not stored again" {
	local stream v id
	stream=$(es-replay --events --to-seq 1 | jq -r .stream)
	id=$(es-replay --events --to-seq 1 | jq -r .id)
	v=$(es-replay --stream "$stream" | jq .version)
	es-archive -q --before 2100-01-01
	[ "$(ls "$ES_STORE"/log)" = "$(printf '%020d.ndjson' 601)" ]
	es-archive -q --purge-before 2100-01-01
	[ "$(narc)" -eq 0 ]
	printf '{"stream":"%s","type":"T","id":"again"}\n{"stream":"%s","type":"T","id":"%s"}\n' \
		"$stream" "$stream" "$id" >"$TMP/in"
	run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(jq -r '"\(.seq) \(.version)"' <<<"$output")" "601 $((v + 1))"
	assert_equal "$stderr" "es-append: $TMP/in: line 2: event id '$id' already stored in stream '$stream', since deleted by es-archive --purge-before: no line printed for it"
	run -0 --separate-stderr es-append -q "$TMP/in"
	assert_equal "$stderr" ""
	run -0 --separate-stderr es-replay --events
	assert_equal "$(wc -l <<<"$output")" 1
	run -0 --separate-stderr es-verify
}

@test "regression: --verify waits while an archiving run holds archive/lock, then checks what it left" {
	ES_STOP=archive-locked es-archive -q --before $CUT &
	local apid=$! vpid st=0
	stopped "$apid"
	run -4 --separate-stderr es-archive --verify --no-wait
	assert_equal "$stderr" "es-archive: another es-archive is running on '$ES_STORE' (it holds '$ES_STORE/archive/lock')"
	es-archive --verify 2>"$TMP/verify.err" &
	vpid=$!
	sleep 0.3
	kill -0 "$vpid" # still waiting for the lock
	kill -CONT "$apid"
	wait "$apid"
	wait "$vpid" || st=$?
	[ "$st" -eq 0 ] || { cat "$TMP/verify.err"; return 1; }
	[ "$(narc)" -gt 0 ]
}

@test "regression: a MANIFEST entry with a huge raw_bytes is damage (exit 1), not a huge allocation" {
	es-archive -q --before $CUT
	local stream
	stream=$(es-replay --events --to-seq 1 | jq -r .stream)
	sed -i '2s/"raw_bytes":[0-9]*/"raw_bytes":999999999999/' "$ES_STORE/archive/MANIFEST"
	run -1 --separate-stderr es-replay --stream "$stream"
	[[ $stderr == "es-replay: archive/00000000000000000001.ndjson.zst: "*" bytes restored, the MANIFEST says 999999999999" ]]
	run -1 --separate-stderr es-verify
}

@test "regression: --verify: a damaged archive file is one failure, not one more per stream that goes on after it" {
	es-archive -q --before $CUT
	local f
	f=$(ls "$ES_STORE"/archive/*.zst | sed -n 2p)
	truncate -s -10 "$f"
	run -1 --separate-stderr es-archive --verify
	assert_equal "$stderr" "es-archive: archive/$(basename "$f"): offset 0: seq $((10#$(basename "$f" .ndjson.zst))): the zstd frame is cut short"
}

@test "regression: a damaged sealed segment: those before it are archived, then exit 1 naming it" {
	local bad
	bad=$(ls "$ES_STORE/log" | sed -n 3p)
	truncate -s -1 "$ES_STORE/log/$bad"
	run -1 --separate-stderr es-archive --before $CUT
	assert_equal "$stderr" "es-archive: log/$bad: no newline at its end"
	assert_equal "$(grep -c '^archived ' <<<"$output")" 2
	[ "$(ls "$ES_STORE/log" | head -n 1)" = "$bad" ]
	[ "$(narc)" -eq 2 ]
}

@test "--to DIR writes the cold tier elsewhere; the MANIFEST records where" {
	mkdir "$TMP/cold"
	run -0 --separate-stderr es-archive --to "$TMP/cold" --before $CUT
	assert_line --partial "to $TMP/cold/00000000000000000001.ndjson.zst:"
	[ "$(ls "$TMP/cold" | grep -c zst)" -gt 3 ]
	[ "$(narc)" -eq 0 ]
	run -0 jq -r 'select(.file) | .dir' "$ES_STORE/archive/MANIFEST"
	assert_line "$TMP/cold"
	same
	run -0 --separate-stderr es-archive --list
	assert_line --regexp "^cold +$TMP/cold/00000000000000000001\.ndjson\.zst "
	run -0 --separate-stderr es-archive --verify
}

@test "--to a directory shared with another store: its files are never removed or replaced" {
	mkdir "$TMP/cold"
	local other="$TMP/other"
	# the same layout, so the same file names, but other records
	gen-events -n 600 -s 4 >"$TMP/ev4"
	head -n 1 "$TMP/ev4" | ES_STORE=$other es-append --import-ts -q
	sed -i 's/"segment_size":[0-9]*/"segment_size":16384/' "$other/store.json"
	tail -n +2 "$TMP/ev4" | ES_STORE=$other es-append --import-ts --batch-size 10 -q
	ES_STORE=$other es-archive -q --to "$TMP/cold" --before $CUT
	(cd "$TMP/cold" && md5sum -- *) >"$TMP/cold.sums"
	tree >"$TMP/tree.before"
	run -4 --separate-stderr es-archive --to "$TMP/cold" --before $CUT
	assert_equal "$stderr" "es-archive: '$TMP/cold/00000000000000000001.ndjson.zst' is already there, and not this store's: does another store archive to '$TMP/cold'? Give each store a --to directory of its own"
	(cd "$TMP/cold" && md5sum -c --quiet "$TMP/cold.sums")
	[ "$(ls "$TMP/cold" | wc -l)" -eq "$(wc -l <"$TMP/cold.sums")" ]
	tree >"$TMP/tree.after"
	cmp "$TMP/tree.before" "$TMP/tree.after"
	ES_STORE=$other run -0 --separate-stderr es-verify
	run -0 --separate-stderr es-verify
	same
}

@test "regression: --to shared by a copy of the store (cp -a): the same records are still the other store's" {
	mkdir "$TMP/cold"
	cp -a "$ES_STORE" "$TMP/copy"
	ES_STORE=$TMP/copy es-archive -q --to "$TMP/cold" --before $CUT
	run -4 --separate-stderr es-archive --to "$TMP/cold" --before $CUT
	[[ $stderr == *"is already there, and not this store's: "* ]]
	[ "$(narc)" -eq 0 ]
	# the copy's purge deletes its files: this store lost nothing
	ES_STORE=$TMP/copy es-archive -q --purge-before $CUT
	run -0 --separate-stderr es-verify
	same
}

@test "--to: a file this store's interrupted run left is replaced; temps of live processes stay" {
	mkdir "$TMP/cold"
	run -137 env ES_CRASH=after-rename:1 es-archive -q --to "$TMP/cold" --before $CUT
	[ -e "$TMP/cold/00000000000000000001.ndjson.zst" ]
	[ ! -e "$ES_STORE/archive/MANIFEST" ]
	: >"$TMP/cold/00000000000000000099.ndjson.zst.tmp.1"      # pid 1 runs
	: >"$TMP/cold/00000000000000000099.ndjson.zst.tmp.999999999" # no such pid
	run -0 --separate-stderr es-archive --to "$TMP/cold" --before $CUT
	assert_line "remove $TMP/cold/00000000000000000099.ndjson.zst.tmp.999999999: left by an interrupted run"
	refute_line --partial "tmp.1:"
	assert_line --partial "archived log/00000000000000000001.ndjson to $TMP/cold/00000000000000000001.ndjson.zst:"
	[ -e "$TMP/cold/00000000000000000099.ndjson.zst.tmp.1" ]
	run -0 --separate-stderr es-verify
	run -0 --separate-stderr es-archive --verify
	same
}

@test "--to a directory that does not exist is an error and changes nothing" {
	run -4 --separate-stderr es-archive --to "$TMP/nope" --before $CUT
	assert_equal "$stderr" "es-archive: --to: cannot use '$TMP/nope': No such file or directory"
	[ "$(narc)" -eq 0 ]
}

@test "regression: --dry-run with --before and --purge-before shows the purges the real run makes" {
	tree >"$TMP/tree.before"
	run -0 --separate-stderr es-archive --dry-run --before $CUT --purge-before 2026-02-01
	grep '^would purge ' <<<"$output" | sed 's/^would //' >"$TMP/dry"
	[ -s "$TMP/dry" ]
	tree >"$TMP/tree.after"
	cmp "$TMP/tree.before" "$TMP/tree.after"
	run -0 --separate-stderr es-archive --before $CUT --purge-before 2026-02-01
	grep '^purge ' <<<"$output" >"$TMP/real"
	cmp "$TMP/dry" "$TMP/real"
}

@test "es-at-time into purged history says it was purged, not just 'nothing matched'" {
	es-archive -q --before $CUT --purge-before 2026-02-01
	local last ts
	last=$(jq -r 'select(.purged) | .purged.last_seq' "$ES_STORE/archive/MANIFEST")
	ts=$(jq -r 'select(.purged) | .purged.last_ts' "$ES_STORE/archive/MANIFEST")
	local want="es-at-time: nothing matched: seq 1 to $last (ts up to $ts) were deleted by es-archive --purge-before"
	run -1 --separate-stderr es-at-time 2026-01-01T00:00:01Z
	assert_equal "$stderr" "$want"
	run -1 --separate-stderr es-at-time --seq 1
	assert_equal "$stderr" "$want"
	run -1 --separate-stderr es-at-time --after 600
	assert_equal "$stderr" "es-at-time: nothing matched"
}

@test "--purge-before: --dry-run shows, the real run deletes and leaves an anchor" {
	es-archive -q --before $CUT
	local n
	n=$(narc)
	tree >"$TMP/tree.before"
	run -0 --separate-stderr es-archive --dry-run --purge-before 2026-02-01
	assert_line --index 0 --regexp '^would purge archive/00000000000000000001\.ndjson\.zst: seq 1-[0-9]+, [0-9]+ events, last ts 2026-01-'
	tree >"$TMP/tree.after"
	cmp "$TMP/tree.before" "$TMP/tree.after"
	run -0 --separate-stderr es-archive --purge-before 2026-02-01
	assert_line --index 0 --regexp '^purge archive/00000000000000000001\.ndjson\.zst: '
	local purged last
	purged=${#lines[@]}
	[ "$(narc)" -eq $((n - purged)) ]
	run -0 jq -c 'select(.purged) | .purged | [.first_seq, .segments]' "$ES_STORE/archive/MANIFEST"
	assert_output "[1,$purged]"
	last=$(jq -r 'select(.purged) | .purged.last_seq' "$ES_STORE/archive/MANIFEST")
	# what is left reads as before, from the anchor on
	run -0 --separate-stderr es-replay --events
	assert_equal "$output" "$(tail -n +$((last + 1)) "$TMP/before.events")"
	run -0 --separate-stderr es-archive --verify
	[[ $stderr == *"note: archive/MANIFEST: seq $last: seq 1-$last purged at "*"checked from the anchor, seq $last hash "* ]]
	# a stream that began before the anchor: its events after it, through
	# the old index and through one rebuilt after the purge
	local s
	s=$(tail -n +$((last + 1)) "$TMP/before.events" | jq -r 'select(.version > 1) | .stream' | head -n 1)
	tail -n +$((last + 1)) "$TMP/before.events" | grep -F "\"stream\":\"$s\"," >"$TMP/want"
	es-replay --stream "$s" --events >"$TMP/got"
	cmp "$TMP/want" "$TMP/got"
	rm -r "$ES_STORE/index"
	es-replay --stream "$s" --events >"$TMP/got"
	cmp "$TMP/want" "$TMP/got"
	# and appends go on at the right version
	v=$(tail -n 1 "$TMP/want" | jq .version)
	run -0 --separate-stderr es-append <<<"$(ev "$s" Late)"
	[[ $output == '{"seq":601,"stream":"'$s'","version":'$((v + 1))',"type":"Late"'* ]]
	run -0 --separate-stderr es-archive --verify
}

@test "purging only ever deletes archived segments, never the log" {
	run -0 --separate-stderr es-archive --purge-before 2027-01-01
	assert_output ""
	same
}

@test "--list shows every tier with sizes and ratios; --json one object per segment" {
	es-archive -q --before $CUT
	run -0 --separate-stderr es-archive --list
	assert_line --index 0 --regexp '^tier +file +first_seq +last_seq +events +bytes +raw_bytes +ratio +last_ts$'
	assert_line --regexp '^archive +archive/00000000000000000001\.ndjson\.zst +1 +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+\.[0-9]{2} +2026-01-'
	assert_line --regexp '^log +log/[0-9]{20}\.ndjson '
	assert_line --regexp '^active +log/[0-9]{20}\.ndjson '
	assert_line --regexp '^total +600 '
	local all=$output
	run -0 --separate-stderr es-archive --list -q # what it is asked for
	assert_output "$all"
	run -0 --separate-stderr es-archive --list --json
	run -0 jq -s -c 'map(.events) | add' <<<"$output"
	assert_output 600
	run -0 --separate-stderr es-archive --list --json
	run -0 jq -r '.tier' <<<"$output"
	assert_line archive
	assert_line active
}

@test "--level is recorded and changes the size" {
	cp -a "$ES_STORE" "$TMP/other"
	es-archive -q --level 1 --before $CUT
	es-archive -q -d "$TMP/other" --level 19 --before $CUT
	run -0 jq -r 'select(.file) | .level' "$ES_STORE/archive/MANIFEST"
	assert_line 1
	refute_line 19
	a=$(jq -s '[.[] | select(.file) | .bytes] | add' "$ES_STORE/archive/MANIFEST")
	b=$(jq -s '[.[] | select(.file) | .bytes] | add' "$TMP/other/archive/MANIFEST")
	[ "$b" -lt "$a" ]
	same
}

@test "--jobs 2 gives the same archive as one job" {
	cp -a "$ES_STORE" "$TMP/other"
	es-archive -q --before $CUT
	es-archive -q -d "$TMP/other" --jobs 2 --before $CUT
	diff <(es-archive --list) <(es-archive -d "$TMP/other" --list)
}

@test "a second es-archive waits for the first, or with --no-wait exits 4 and says why" {
	mkdir -p "$ES_STORE/archive"
	flock "$ES_STORE/archive/lock" sleep 2 &
	sleep 0.5
	run -4 --separate-stderr es-archive --no-wait --before $CUT
	assert_equal "$stderr" "es-archive: another es-archive is running on '$ES_STORE' (it holds '$ES_STORE/archive/lock')"
	[ "$(narc)" -eq 0 ]
	run -0 --separate-stderr es-archive --before $CUT
	assert_equal "${stderr_lines[0]}" "es-archive: waiting for another es-archive (it holds '$ES_STORE/archive/lock')"
	[ "$(narc)" -gt 0 ]
	wait
}

@test "two es-archive at once: one archives, the other finds nothing left; no event lost or doubled" {
	es-archive -q --before $CUT &
	es-archive -q --before $CUT &
	wait
	run -0 --separate-stderr es-archive --verify
	same
}

@test "appends while archiving lose nothing" {
	(for i in $(seq 1 20); do append "$(ev live-$i T)"; done) &
	es-archive -q --before 2027-01-01
	wait
	run -0 es-replay --events
	assert_equal "${#lines[@]}" 620
	run -0 jq -s -c '[.[].seq] == [range(1; 621)]' <<<"$output"
	assert_output true
	run -0 --separate-stderr es-archive --verify
}

@test "a damaged archive file is found by --verify and by every reader, never read silently" {
	es-archive -q --before $CUT
	local f="$ES_STORE/archive/00000000000000000001.ndjson.zst"
	printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
	run -1 --separate-stderr es-archive --verify
	[[ $stderr == "es-archive: archive/00000000000000000001.ndjson.zst: "* ]]
	run -1 --separate-stderr es-replay --events
	[[ $stderr == *"archive/00000000000000000001.ndjson.zst"* ]]
}

@test "a missing archive file is a failure of --verify and of readers" {
	es-archive -q --before $CUT
	rm "$ES_STORE/archive/00000000000000000001.ndjson.zst"
	run -1 --separate-stderr es-archive --verify
	[[ $stderr == *"archive/00000000000000000001.ndjson.zst: seq 1: missing: No such file or directory"* ]]
	run -4 --separate-stderr es-replay --events
	# an audit's verdict, not "cannot open" and exit 4 (I/O), as es-verify said before
	run -1 --separate-stderr es-verify
	assert_equal "${stderr%%$'\n'*}" "es-verify: archive/00000000000000000001.ndjson.zst: seq 1: missing: No such file or directory"
	run -1 --separate-stderr es-verify --json -j 2
	assert_equal "$(jq -c '.failures[0]' <<<"$output")" \
		'{"file":"archive/00000000000000000001.ndjson.zst","offset":null,"seq":1,"reason":"missing: No such file or directory"}'
}

@test "regression: --verify fails when the MANIFEST or archive/ is gone and log/ does not start at seq 1" {
	# es-archive --verify exited 0: without a MANIFEST it checked nothing,
	# not even that log/ begins at seq 1, and called the orphaned archive
	# files leftovers "the next run removes" (it keeps them).
	es-archive -q --before $CUT
	local first
	first=$(ls "$ES_STORE"/log | head -n 1)
	rm "$ES_STORE/archive/MANIFEST"
	run -1 --separate-stderr es-archive --verify
	[[ $stderr == *"es-archive: log/$first: seq $((10#${first%.ndjson})): the log begins at seq $((10#${first%.ndjson})), but archive/MANIFEST is missing"* ]]
	[[ $stderr == *"warning: archive/00000000000000000001.ndjson.zst: not listed in the MANIFEST, and its segment is not in log/: es-archive keeps it"* ]]
	[[ $stderr != *"the next run removes it"* ]]
	es-archive -q --before 2000-01-01
	[ -f "$ES_STORE/archive/00000000000000000001.ndjson.zst" ]
	rm -rf "$ES_STORE/archive"
	run -1 --separate-stderr es-archive --verify
	[[ $stderr == "es-archive: log/$first: seq "*"archive/MANIFEST is missing"* ]]
}

@test "regression: a purge anchor whose fields disagree is a corrupt MANIFEST" {
	# With "first_seq":2 es-verify and es-archive --verify exited 0 and the
	# note said "seq 2-N purged", seq 1 accounted for nowhere; "events":5
	# for a range of N seqs, or "segments":0, passed as well.
	es-archive -q --before $CUT
	es-archive -q --purge-before 2026-02-01
	local m="$ES_STORE/archive/MANIFEST" last forge field
	cp "$m" "$TMP/MANIFEST"
	last=$(jq -r 'select(.purged) | .purged.last_seq' "$m")
	[ "$last" -gt 5 ]
	for forge in first_seq=2 first_seq=0 events=5 events=$((last + 1)) \
		last_seq=0 segments=0 segments=$((last + 1)); do
		field=${forge%=*}
		jq -c "if .purged then .purged.$field = ${forge#*=} else . end" "$TMP/MANIFEST" >"$m"
		run -1 --separate-stderr es-verify
		assert_equal "$stderr" "es-verify: archive/MANIFEST: line 2: bad or missing \"$field\""
		run -1 --separate-stderr es-archive --verify
		assert_equal "$stderr" "es-archive: $m: line 2: bad or missing \"$field\""
		run -1 --separate-stderr es-replay --events
		[[ $stderr == *"$m: line 2: bad or missing \"$field\""* ]]
	done
	cp "$TMP/MANIFEST" "$m"
	run -0 --separate-stderr es-verify
	run -0 --separate-stderr es-archive --verify
	[[ $stderr == *"seq 1-$last purged at "* ]]
}

@test "--verify passes on a store that was never archived" {
	run -0 --separate-stderr es-archive --verify
	[ "$stderr" = "es-archive: ok: 0 segments, 0 records, 0 bytes (0 restored); the log goes on after seq 0" ]
}

@test "a damaged sealed segment is not archived" {
	sed -i '2s/"type":"[A-Za-z]*"/"type":"Forged"/' "$ES_STORE/log/00000000000000000001.ndjson"
	run -1 --separate-stderr es-archive --before $CUT
	[[ $stderr == *"log/00000000000000000001.ndjson: offset "*": seq 2: hash mismatch"* ]]
	[ "$(narc)" -eq 0 ]
	[ -e "$ES_STORE/log/00000000000000000001.ndjson" ]
}

@test "a failing write leaves nothing behind and the store as it was" {
	tree >"$TMP/tree.before"
	run -4 --separate-stderr env ES_FAULT=write:1 es-archive --before $CUT
	[[ $stderr == *"cannot write"* ]]
	run -0 ls "$ES_STORE/archive"
	refute_output --partial .zst
	same
	run -0 --separate-stderr es-archive --before $CUT
	same
}

@test "es-verify passes on an archived store, after a purge, and after a crash" {
	grep -q es_archive "$ROOT/lib/verify.c" ||
		skip "es-verify does not read archives yet"
	cp -a "$ES_STORE" "$TMP/pristine"
	es-archive -q --before $CUT
	run -0 --separate-stderr es-verify
	[[ $stderr == *"ok: 600 records"* ]]
	es-archive -q --purge-before 2026-02-01
	run -0 --separate-stderr es-verify
	rm -rf "$ES_STORE"
	cp -a "$TMP/pristine" "$ES_STORE"
	run -137 env ES_CRASH=archive-after-manifest:2 es-archive -q --before $CUT
	run -0 --separate-stderr es-verify
	# a forged archived record is caught
	es-archive -q --before $CUT
	f=$(ls "$ES_STORE"/archive/*.zst | head -n 1)
	zstdcat "$f" | sed '1s/"type":"[A-Za-z]*"/"type":"Forged"/' | zstd -q -c >"$TMP/forged"
	mv "$TMP/forged" "$f"
	run -1 --separate-stderr es-verify
	run -1 --separate-stderr es-archive --verify
	[[ $stderr == *"${f#$ES_STORE/}"* ]]
}

@test "--list to a full disk exits 4" {
	run -4 --separate-stderr bash -c 'es-archive --list >/dev/full'
	[[ $stderr == *"write error"* ]]
}

@test "a crash in the middle of a purge is finished by the next run" {
	es-archive -q --before $CUT
	run -137 env ES_CRASH=archive-purge-after-manifest:1 es-archive -q --purge-before 2026-02-01
	# the MANIFEST no longer lists them: gone for readers already
	last=$(jq -r 'select(.purged) | .purged.last_seq' "$ES_STORE/archive/MANIFEST")
	run -0 --separate-stderr es-replay --events
	assert_equal "$output" "$(tail -n +$((last + 1)) "$TMP/before.events")"
	[ -e "$ES_STORE/archive/00000000000000000001.ndjson.zst" ]
	run -0 --separate-stderr es-archive --verify
	[[ $stderr == *"warning: archive/00000000000000000001.ndjson.zst: not listed in the MANIFEST"* ]]
	run -0 --separate-stderr es-archive --purge-before 2026-02-01
	assert_line --index 0 "remove archive/00000000000000000001.ndjson.zst: left by an interrupted run"
	[ ! -e "$ES_STORE/archive/00000000000000000001.ndjson.zst" ]
	run -0 --separate-stderr es-archive --verify
	[[ $stderr != *warning* ]]
}

@test "progress: on stderr only when it is a terminal; updated in place, never between stdout lines" {
	command -v script >/dev/null || skip "script(1) is not installed"
	cp -a "$ES_STORE" "$TMP/base"
	# stderr not a terminal: no progress
	run -0 --separate-stderr es-archive --before "$CUT"
	[ -z "$stderr" ]
	[[ "$output" == "archived log/"* ]]
	# stderr a terminal, stdout a file: one line, redrawn with \r, one
	# newline at the end (it used to end every update with a newline)
	rm -rf "$ES_STORE"
	cp -a "$TMP/base" "$ES_STORE"
	script -qec "es-archive --before $CUT >'$TMP/out'" /dev/null >"$TMP/tty"
	grep -q 'MB archived (100%)' "$TMP/tty"
	[ "$(tr -cd '\n' <"$TMP/tty" | wc -c)" -eq 1 ]
	[ "$(grep -c '^archived log/' "$TMP/out")" -eq "$(narc)" ]
	# both on one terminal: each stdout line starts clean (the progress
	# line wiped first), no progress text inside it
	rm -rf "$ES_STORE"
	cp -a "$TMP/base" "$ES_STORE"
	script -qec "es-archive --before $CUT" /dev/null >"$TMP/tty"
	tr '\r' '\n' <"$TMP/tty" | grep 'archived log/' >"$TMP/lines"
	[ "$(wc -l <"$TMP/lines")" -eq "$(narc)" ]
	if grep -q 'MB archived.*archived log/' "$TMP/lines"; then return 1; fi
	if grep -q 'archived log/.*MB archived' "$TMP/lines"; then return 1; fi
}
