#!/usr/bin/env bats
# es-at-time: state as of a time or seq, --between, --after, --diff; time
# forms and boundaries; the binary search over many segments; files, stdin,
# pipes; snapshots absent and present.
bats_require_minimum_version 1.5.0
load helpers

# Times are fixed (--import-ts) and in the past, so that ages ("0s") see all.
local_setup() {
	printf '%s\n' \
		'{"stream":"acct-1","type":"Opened","ts":"2025-11-26T08:00:00Z","data":{"owner":"ann","balance":0}}' \
		'{"stream":"acct-2","type":"Opened","ts":"2025-11-26T09:00:00Z","data":{"owner":"bob","balance":5}}' \
		'{"stream":"acct-1","type":"Deposited","ts":"2025-11-26T10:00:00.000001Z","data":{"balance":100}}' \
		'{"stream":"acct-1","type":"Withdrawn","ts":"2025-11-26T10:00:00.000001Z","data":{"balance":60}}' \
		'{"stream":"acct-2","type":"Frozen","ts":"2025-11-26T12:00:00Z","data":{"frozen":true,"balance":null}}' \
		'{"stream":"acct-3","type":"Opened","ts":"2025-11-26T14:05:00Z","data":{"owner":"cy","balance":1}}' \
		| es-append -q --import-ts
}

# brief: each state record as stream@version:state
brief() {
	jq -r '"\(.stream)@\(.version):\(.state|tojson)"' <<<"$output" | tr '\n' ' '
}

# seqs: the seq of each output line
seqs() {
	jq -r .seq <<<"$output" | tr '\n' ' '
}

@test "the state as of a time includes the last event with ts <= TIME" {
	run -0 --separate-stderr es-at-time 2025-11-26T09:00:00Z
	assert_equal "$(brief)" 'acct-1@1:{"owner":"ann","balance":0} acct-2@1:{"owner":"bob","balance":5} '
	assert_equal "$stderr" ""
	run -0 --separate-stderr es-at-time 2025-11-26T08:59:59.999999Z
	assert_equal "$(brief)" 'acct-1@1:{"owner":"ann","balance":0} '
	assert_equal "${lines[0]}" '{"stream":"acct-1","version":1,"seq":1,"ts":"2025-11-26T08:00:00.000000Z","state":{"owner":"ann","balance":0}}'
}

@test "two events in the same microsecond are both in, or both out" {
	run -0 --separate-stderr es-at-time --stream acct-1 2025-11-26T10:00:00.000001Z
	assert_equal "$(brief)" 'acct-1@3:{"owner":"ann","balance":60} '
	run -0 --separate-stderr es-at-time --stream acct-1 2025-11-26T10:00:00Z
	assert_equal "$(brief)" 'acct-1@1:{"owner":"ann","balance":0} '
	run -0 --separate-stderr es-at-time --between 2025-11-26T10:00:00.000001Z 2025-11-26T10:00:00.000001Z
	assert_equal "$(seqs)" "3 4 "
}

@test "before the first event: nothing, exit 1; after the last: the final states" {
	run -1 --separate-stderr es-at-time 2025-11-26T07:59:59Z
	assert_output ""
	assert_equal "$stderr" "es-at-time: nothing matched"
	run -1 --separate-stderr es-at-time -q 2025-11-26
	assert_output ""
	assert_equal "$stderr" ""
	run -0 --separate-stderr es-at-time 2030-01-01
	assert_equal "$(brief)" 'acct-1@3:{"owner":"ann","balance":60} acct-2@2:{"owner":"bob","frozen":true} acct-3@1:{"owner":"cy","balance":1} '
	run -0 --separate-stderr es-at-time 0s
	assert_equal "${#lines[@]}" 3
}

@test "time zones and forms: offsets, dates, epoch seconds, ages" {
	# 11:00+01:00 is 10:00Z, a microsecond before the deposit
	run -0 --separate-stderr es-at-time --stream acct-1 2025-11-26T11:00:00+01:00
	assert_equal "$(brief)" 'acct-1@1:{"owner":"ann","balance":0} '
	run -0 --separate-stderr es-at-time --stream acct-1 2025-11-26T05:00:00.000001-05:00
	assert_equal "$(brief)" 'acct-1@3:{"owner":"ann","balance":60} '
	run -0 --separate-stderr es-at-time --stream acct-1 "2025-11-26 10:30:00Z"
	assert_equal "$(brief)" 'acct-1@3:{"owner":"ann","balance":60} '
	local epoch
	epoch=$(date -u -d 2025-11-26T09:00:00Z +%s)
	run -0 --separate-stderr es-at-time "$epoch"
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr es-at-time "@$((epoch - 1)).999999"
	assert_equal "${#lines[@]}" 1
	run -0 --separate-stderr es-at-time 2025-11-27
	assert_equal "${#lines[@]}" 3
	run -0 --separate-stderr es-at-time now
	assert_output "$(es-at-time 0s)"
	assert_equal "${#lines[@]}" 3
	run -1 --separate-stderr es-at-time 1000w
	assert_equal "$stderr" "es-at-time: nothing matched"
}

@test "an unparseable time is a usage error that shows the accepted forms" {
	local bad
	for bad in yesterday 2025-13-01 2025-11-26T25:00:00Z 12x ""; do
		run -2 --separate-stderr es-at-time "$bad"
		assert_output ""
		[[ "$stderr" == "es-at-time: TIME: cannot parse time '$bad'; accepted forms: RFC 3339"* ]] ||
			{ echo "$bad: $stderr"; return 1; }
	done
	run -2 --separate-stderr es-at-time --between 2025-11-26 soon
	[[ "$stderr" == *"T2: cannot parse time 'soon'"*"epoch seconds"* ]]
}

@test "--seq N: the state as of a position" {
	run -0 --separate-stderr es-at-time --seq 3
	assert_equal "$(brief)" 'acct-1@2:{"owner":"ann","balance":100} acct-2@1:{"owner":"bob","balance":5} '
	run -0 --separate-stderr es-at-time --seq 3 --stream acct-2 --stream acct-1
	assert_equal "$(brief)" 'acct-2@1:{"owner":"bob","balance":5} acct-1@2:{"owner":"ann","balance":100} '
	run -0 --separate-stderr es-at-time --seq 99
	assert_equal "${#lines[@]}" 3
	run -1 --separate-stderr es-at-time --seq 0
	run -2 --separate-stderr es-at-time --seq x
}

@test "selectors: --stream through the index equals the scan; --category, --type, --limit, --reverse" {
	run -0 --separate-stderr es-at-time 2025-11-26T13:00:00Z
	all=$output
	run -0 --separate-stderr es-at-time 2025-11-26T13:00:00Z --stream acct-1 --stream acct-2
	assert_equal "$output" "$all"
	run -0 --separate-stderr es-at-time 2025-11-26T13:00:00Z --category acct-
	assert_equal "$output" "$all"
	run -1 --separate-stderr es-at-time 2025-11-26T13:00:00Z --stream acct-3
	run -1 --separate-stderr es-at-time 2025-11-26T13:00:00Z --stream nope
	run -0 --separate-stderr es-at-time 2030-01-01 --type Opened
	assert_equal "$(brief)" 'acct-1@1:{"owner":"ann","balance":0} acct-2@1:{"owner":"bob","balance":5} acct-3@1:{"owner":"cy","balance":1} '
	run -0 --separate-stderr es-at-time 2030-01-01 --limit 1 --reverse
	assert_equal "$(jq -r .stream <<<"$output")" acct-3
	run -0 --separate-stderr es-at-time 2030-01-01 --limit 2
	assert_equal "$(jq -r .stream <<<"$output" | tr '\n' ' ')" "acct-1 acct-2 "
}

@test "--reducer folds with a spec" {
	echo '{"init":{"n":0},"on":{"*":[{"op":"count","path":"n"},{"op":"set","path":"last","from":"type"}]}}' > spec.json
	run -0 --separate-stderr es-at-time --reducer spec.json --stream acct-1 2025-11-26T10:00:00.000001Z
	assert_equal "$(brief)" 'acct-1@3:{"n":3,"last":"Withdrawn"} '
	# the forms that fold nothing still check it, as es-replay --events does
	# (they exited 0 with a missing or an invalid spec)
	run -4 --separate-stderr es-at-time --reducer missing.json --after 0
	assert_equal "$stderr" "es-at-time: cannot open 'missing.json': No such file or directory"
	echo '{"on":{"X":[{"op":"bogus"}]}}' > bad.json
	run -3 --separate-stderr es-at-time --reducer bad.json --between 2025-11-26 2025-11-27
	[[ "$stderr" == "es-at-time: bad.json: reducer: on.X[0].op: unknown op \"bogus\""* ]]
}

@test "--between T1 T2: the stored lines, untouched, with T1 <= ts <= T2" {
	run -0 --separate-stderr es-at-time --between 2025-11-26T09:00:00Z 2025-11-26T12:00:00Z
	assert_equal "$(seqs)" "2 3 4 5 "
	diff <(printf '%s\n' "${lines[@]}") <(sed -n 2,5p "$(seg)")
	run -0 --separate-stderr es-at-time --between 2025-11-26T09:00:00.000001Z 2025-11-26T11:59:59.999999Z
	assert_equal "$(seqs)" "3 4 "
	run -0 --separate-stderr es-at-time --between 2025-11-26 2025-11-27 --stream acct-2
	assert_equal "$(seqs)" "2 5 "
	run -0 --separate-stderr es-at-time --between 2025-11-26 2025-11-27 --limit 2 --reverse
	assert_equal "$(seqs)" "6 5 "
	run -0 --separate-stderr es-at-time --between 2025-11-26 2025-11-27 --type Opened --limit 2
	assert_equal "$(seqs)" "1 2 "
	run -1 --separate-stderr es-at-time --between 2025-11-27 2025-11-28
	assert_equal "$stderr" "es-at-time: nothing matched"
	run -2 --separate-stderr es-at-time --between 2025-11-27 2025-11-26
	assert_equal "$stderr" "es-at-time: --between: T1 '2025-11-27' is after T2 '2025-11-26'
Try 'es-at-time --help' for more information."
}

@test "--after SEQ: the stored lines with seq > SEQ (catch-up)" {
	run -0 --separate-stderr es-at-time --after 4
	assert_equal "$(seqs)" "5 6 "
	diff <(printf '%s\n' "${lines[@]}") <(sed -n 5,6p "$(seg)")
	run -0 --separate-stderr es-at-time --after 0 --limit 3
	assert_equal "$(seqs)" "1 2 3 "
	run -0 --separate-stderr es-at-time --after 1 --stream acct-1 --reverse
	assert_equal "$(seqs)" "4 3 "
	run -1 --separate-stderr es-at-time --after 6
	run -1 --separate-stderr es-at-time --after 18446744073709551615
	# the catch-up loop: remember the last seq seen, ask for what came after
	last=$(es-at-time --after 0 | tail -n 1 | jq .seq)
	append "$(ev acct-9 Opened)"
	run -0 --separate-stderr es-at-time --after "$last"
	assert_equal "$(seqs)" "7 "
}

@test "--diff T1 T2: per changed stream, a merge patch and the events after T1 up to T2" {
	run -0 --separate-stderr es-at-time --diff 2025-11-26T09:00:00Z 2025-11-26T12:00:00Z
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -c '[.stream,.from,.to,.patch,[.events[].seq]]' <<<"${lines[0]}")" \
		'["acct-1",{"version":1,"seq":1},{"version":3,"seq":4},{"balance":60},[3,4]]'
	assert_equal "$(jq -c '[.stream,.from,.to,.patch,[.events[].seq]]' <<<"${lines[1]}")" \
		'["acct-2",{"version":1,"seq":2},{"version":2,"seq":5},{"balance":null,"frozen":true},[5]]'
	# the events are the stored records, byte for byte
	diff <(jq -c '.events[]' <<<"${lines[0]}") <(sed -n 3,4p "$(seg)")
	# through the index, -v says where both times fall (it said only T2's)
	run -0 --separate-stderr es-at-time -v --diff 2025-11-26T09:00:00Z 2025-11-26T12:00:00Z --stream acct-1
	[[ "$stderr" == *"as of seq 5 ("*"lines read to find it)"$'\n'"es-at-time: T1 as of seq 2" ]]
	# a stream born in the window starts from version 0 and the empty state
	run -0 --separate-stderr es-at-time --diff 2025-11-26T12:00:00Z 2030-01-01
	assert_equal "$(jq -c '[.stream,.from,.patch]' <<<"$output")" \
		'["acct-3",{"version":0,"seq":0},{"owner":"cy","balance":1}]'
	# through the index: the same records
	run -0 --separate-stderr es-at-time --diff 2025-11-26T09:00:00Z 2025-11-26T12:00:00Z
	all=$output
	run -0 --separate-stderr es-at-time --diff 2025-11-26T09:00:00Z 2025-11-26T12:00:00Z \
		--stream acct-1 --stream acct-2 --stream acct-3
	assert_equal "$output" "$all"
	run -1 --separate-stderr es-at-time --diff 2025-11-26T12:00:00Z 2025-11-26T14:00:00Z
	run -1 --separate-stderr es-at-time --diff 2025-11-26T12:00:00Z 2025-11-26T12:00:00Z
	run -2 --separate-stderr es-at-time --diff 2025-11-26T12:00:00Z
}

@test "--diff: events that leave the state as it was give an empty patch" {
	append "$(ev acct-1 Audited '{"balance":60}')"
	run -0 --separate-stderr es-at-time --diff 2025-11-27 2099-01-01 --stream acct-1
	assert_equal "$(jq -c '[.patch,.from.version,.to.version]' <<<"$output")" '[{},3,4]'
}

@test "--diff: reals in the patch read back as the same double" {
	append "$(ev acct-1 Rated '{"rate":3.141592653589793,"cap":1.7976931348623157e308}')"
	for src in "" "$(seg)"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time --diff 2025-11-27 2099-01-01 --stream acct-1 $src
		[[ "$output" == *'"patch":{"rate":3.141592653589793,"cap":1.7976931348623157e308},'* ]]
	done
	run -0 --separate-stderr es-at-time 2099-01-01 --stream acct-1
	[[ "$output" == *'"rate":3.141592653589793,"cap":1.7976931348623157e308}}' ]]
}

@test "--category: names with quotes, backslashes and control characters in index order, from files too" {
	export ES_STORE="$TMP/names"
	for n in 'a]' 'a\\' 'a[' 'a#' 'a\"' 'a!' 'a\n'; do
		printf '{"stream":"%s","type":"T","data":{"n":1}}\n' "$n"
	done | es-append -q
	# by the decoded bytes: \n (0x0a) ! " # [ \ ]
	want='"a\n" "a!" "a\"" "a#" "a[" "a\\" "a]" '
	for src in "" "$(seg)"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time 2099-01-01 --category a $src
		[ "$(jq -c .stream <<<"$output" | tr '\n' ' ')" = "$want" ]
	done
}

@test "many small segments: the binary search agrees with a scan at every boundary" {
	export ES_STORE="$TMP/many"
	printf '%s\n' '{"stream":"s-0","type":"Init","ts":"2025-01-01T00:00:00Z"}' | es-append -q --import-ts
	jq -c '.segment_size=4096' "$ES_STORE/store.json" > s.json && mv s.json "$ES_STORE/store.json"
	# 240 events, bursts of equal timestamps, in batches of 3
	awk 'BEGIN { t = 0; for (i = 1; i <= 240; i++) { if (i % 4 == 0) t += 1 + i % 3;
		printf "{\"stream\":\"s-%d\",\"type\":\"T\",\"ts\":\"2025-01-01T00:%02d:%02dZ\",\"data\":{\"n\":%d,\"pad\":\"%0100d\"}}\n",
		i % 5, int(t / 60), t % 60, i, 0 } }' | es-append -q --import-ts --batch-size 3
	[ "$(ls "$ES_STORE/log" | wc -l)" -gt 15 ]
	cat "$ES_STORE"/log/*.ndjson > all.ndjson
	local t n want
	for t in $(jq -r .ts all.ndjson | uniq); do
		run -0 --separate-stderr es-at-time -q "$t"
		want=$(es-at-time -q "$t" all.ndjson)
		assert_equal "$output" "$want"
		run -0 --separate-stderr es-at-time --between "$t" "$t"
		want=$(jq -r --arg t "$t" 'select(.ts == $t) | .seq' all.ndjson | tr '\n' ' ')
		assert_equal "$(seqs)" "$want"
	done
	run -0 --separate-stderr es-at-time 2025-01-01T00:59:59Z
	assert_equal "$output" "$(es-at-time 2025-01-01T00:59:59Z all.ndjson)"
	run -1 --separate-stderr es-at-time --between 2025-01-01T00:59:59Z 2025-01-02
	for n in 0 1 2 3 99 100 101 239 240; do
		run -0 --separate-stderr es-at-time --after "$n" --limit 1
		assert_equal "$(seqs)" "$((n + 1)) "
	done
	# a binary search: few lines read, not hundreds
	run -0 --separate-stderr es-at-time -v --stream s-1 2025-01-01T00:05:00Z
	[[ "$stderr" =~ "as of seq "[0-9]+" ("([0-9]+)" lines read" ]]
	[ "${BASH_REMATCH[1]}" -lt 40 ]
	run -0 --separate-stderr es-at-time -v --after 150 --limit 1
	[[ "$stderr" =~ "start: seq 151, log/"[0-9]+".ndjson offset "[0-9]+" ("([0-9]+)" lines read" ]]
	[ "${BASH_REMATCH[1]}" -lt 40 ]
	# every stream's state: a scan, which -v says too (it said nothing)
	run -0 --separate-stderr es-at-time -v 2025-01-01T00:05:00Z
	assert_equal "$stderr" "es-at-time: reading the log from its start: every stream (no --stream or --category)"
	run -0 --separate-stderr es-at-time -v --from-seq 7 2025-01-01T00:05:00Z
	assert_equal "$stderr" "es-at-time: reading the log from seq 7: every stream (no --stream or --category)"
}

@test "archived history (es-archive) answers the same as the whole log" {
	command -v es-archive >/dev/null || skip "es-archive is not built yet"
	jq -c '.segment_size=4096' "$ES_STORE/store.json" > s.json && mv s.json "$ES_STORE/store.json"
	awk 'BEGIN { for (i = 1; i <= 150; i++)
		printf "{\"stream\":\"acct-%d\",\"type\":\"T\",\"ts\":\"2025-11-27T00:%02d:%02dZ\",\"data\":{\"n\":%d,\"pad\":\"%080d\"}}\n",
		i % 4, int(i / 2 / 60), int(i / 2) % 60, i, 0 }' | es-append -q --import-ts --batch-size 2
	cat "$ES_STORE"/log/*.ndjson > all.ndjson
	es-archive -q --before 2025-11-27T00:00:40Z
	[ -n "$(ls "$ES_STORE/archive/"*.zst)" ]
	[ "$(ls "$ES_STORE/log" | head -n 1)" != 00000000000000000001.ndjson ]
	local args
	for args in "2025-11-26T12:00:00Z" "2025-11-27T00:00:20Z" "2025-11-27T00:00:20Z --stream acct-1 --stream acct-2" \
		"--between 2025-11-26T09:00:00Z 2025-11-27T00:00:10Z" "--between 2025-11-27T00:00:30Z 2025-11-27T00:00:50Z" \
		"--after 3 --limit 5" "--after 60 --limit 5" "--diff 2025-11-26T10:00:00Z 2025-11-27T00:00:30Z" \
		"--diff 2025-11-26T10:00:00Z 2025-11-27T00:00:30Z --stream acct-2 --stream acct-1"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time $args all.ndjson
		want=$output
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time $args
		assert_equal "$output" "$want"
	done
	# a log/ copy left by an interrupted es-archive: the search finds the
	# position in it, the events are read from the archive
	local arc first next
	arc=$(ls "$ES_STORE/archive" | grep '\.zst$')
	first=$(sed -n 3p <<<"$arc")
	next=$(sed -n 4p <<<"$arc")
	awk -v f="$((10#${first%%.*}))" -v n="$((10#${next%%.*}))" \
		'{ s = substr($0, 8) + 0 } s >= f && s < n' all.ndjson > "$ES_STORE/log/${first%.zst}"
	[ "$(wc -l < "$ES_STORE/log/${first%.zst}")" -ge 3 ]
	for args in "--after $((10#${first%%.*} + 1)) --limit 2" \
		"--between $(sed -n "$((10#${first%%.*} + 2))p" all.ndjson | jq -r .ts) 2099-01-01"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time $args all.ndjson
		want=$output
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time -v $args
		assert_equal "$output" "$want"
		[[ "$stderr" == *"log/${first%.zst} offset "* ]]
	done
}

@test "files: plain, .zst and stdin give what the store gives, without a store" {
	cat "$ES_STORE"/log/*.ndjson > all.ndjson
	zstd -q all.ndjson -o all.ndjson.zst
	local args
	for args in "2025-11-26T10:00:00.000001Z" "--seq 4" "--between 2025-11-26T09:00:00Z 2025-11-26T12:00:00Z" \
		"--after 2" "--diff 2025-11-26T09:00:00Z 2025-11-26T12:00:00Z"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time $args
		want=$output
		# shellcheck disable=SC2086
		run -0 --separate-stderr env -u ES_STORE es-at-time -d "$TMP/nowhere" $args all.ndjson
		assert_equal "$output" "$want"
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time $args all.ndjson.zst
		assert_equal "$output" "$want"
		run -0 --separate-stderr bash -c "zstdcat all.ndjson.zst | es-at-time $args -"
		assert_equal "$output" "$want"
	done
	[ ! -e "$TMP/nowhere" ]
}

@test "streams print in the same order from the index, a scan and files" {
	cat "$ES_STORE"/log/*.ndjson > all.ndjson
	local args
	for args in "--stream acct-3 --stream acct-1" "--stream acct-2 --stream acct-1 --limit 1" \
		"--category acct- --reverse" "--category acct- --limit 2" "--reverse"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time 2099-01-01 $args
		want=$output
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time 2099-01-01 $args all.ndjson
		assert_equal "$output" "$want"
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time --diff 2025-11-26T08:30:00Z 2099-01-01 $args
		want=$output
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time --diff 2025-11-26T08:30:00Z 2099-01-01 $args all.ndjson
		assert_equal "$output" "$want"
	done
	run -0 --separate-stderr es-at-time 2099-01-01 --stream acct-3 --stream acct-1 --stream acct-3
	assert_equal "$(jq -r .stream <<<"$output" | tr '\n' ' ')" "acct-3 acct-1 "
}

@test "options may follow the operands; -- ends the options" {
	run -0 --separate-stderr es-at-time --stream acct-1 2025-11-26T09:00:00Z
	want=$output
	run -0 --separate-stderr es-at-time 2025-11-26T09:00:00Z --stream acct-1
	assert_equal "$output" "$want"
	run -0 --separate-stderr es-at-time 2025-11-26T09:00:00Z --str=acct-1
	assert_equal "$output" "$want"
	cat "$ES_STORE"/log/*.ndjson > ./-odd.ndjson
	run -0 --separate-stderr es-at-time --stream acct-1 -- 2025-11-26T09:00:00Z -odd.ndjson
	assert_equal "$output" "$want"
	run -0 --separate-stderr es-at-time --between 2025-11-26 2025-11-27 -d "$ES_STORE" --limit 1
	assert_equal "$(seqs)" "1 "
}

@test "a file line that is not a stored record is bad input with its line number" {
	cat "$ES_STORE"/log/*.ndjson > all.ndjson
	echo '{"stream":"x","type":"y"}' >> all.ndjson
	run -3 --separate-stderr es-at-time 2030-01-01 all.ndjson
	[[ "$stderr" == "es-at-time: all.ndjson: line 7: "* ]]
	run -3 --separate-stderr es-at-time 2030-01-01 - <all.ndjson
	assert_equal "$stderr" "es-at-time: line 7: not a stored record"
	# a scan that stops before it never sees it
	run -0 --separate-stderr es-at-time 2025-11-26T09:00:00Z all.ndjson
}

@test "a closed pipe ends quietly" {
	for i in $(seq 3000); do ev "s$i" X '{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'; done | es-append -q --batch-size 500
	run -0 --separate-stderr bash -c 'set -o pipefail; es-at-time --after 0 | head -1; echo "${PIPESTATUS[0]}"'
	assert_equal "$(jq -r .seq <<<"${lines[0]}")" 1
	[ "${lines[1]}" = 141 ] || [ "${lines[1]}" = 0 ]
	assert_equal "$stderr" ""
	run -0 --separate-stderr bash -c 'set -o pipefail; es-at-time 2099-01-01 | head -1; echo "${PIPESTATUS[0]}"'
	assert_equal "$(jq -r .stream <<<"${lines[0]}")" acct-1
	[ "${lines[1]}" = 141 ] || [ "${lines[1]}" = 0 ]
	assert_equal "$stderr" ""
}

@test "write errors on stdout exit 4" {
	run -4 --separate-stderr bash -c 'es-at-time --after 0 > /dev/full'
	[[ "$stderr" == *"write error"* ]]
	run -4 --separate-stderr bash -c 'es-at-time 2099-01-01 --stream acct-1 > /dev/full'
	run -4 --separate-stderr bash -c 'es-at-time --diff 2025-11-26 2099-01-01 > /dev/full'
}

@test "no store is an I/O error that names it" {
	run -4 --separate-stderr es-at-time -d "$TMP/nowhere" 2099-01-01
	[[ "$stderr" == *"nowhere"* ]]
	assert_output ""
}

@test "snapshots absent: --no-snapshots and the default agree" {
	local t
	for t in 2025-11-26T09:00:00Z 2025-11-26T10:00:00.000001Z 2099-01-01; do
		run -0 --separate-stderr es-at-time -v --stream acct-1 --stream acct-2 "$t"
		want=$output
		[[ "$stderr" != *snapshot* ]]
		run -0 --separate-stderr es-at-time --no-snapshots --stream acct-1 --stream acct-2 "$t"
		assert_equal "$output" "$want"
	done
}

@test "snapshots present: used at or after them, never before, same answers" {
	command -v es-snapshot >/dev/null || skip "es-snapshot is not built yet"
	# a snapshot of acct-1 at version 2 (seq 3)
	es-snapshot --stream acct-1 --to-seq 3
	[ -n "$(find "$ES_STORE/snapshots" -type f)" ]
	local t
	for t in 2025-11-26T09:00:00Z 2025-11-26T10:00:00.000001Z 2099-01-01; do
		run -0 --separate-stderr es-at-time --no-snapshots --stream acct-1 "$t"
		want=$output
		run -0 --separate-stderr es-at-time -v --stream acct-1 "$t"
		assert_equal "$output" "$want"
		case $t in
		2025-11-26T09*) [[ "$stderr" != *"from the snapshot"* ]] ;;
		*) [[ "$stderr" == *"acct-1: from the snapshot at version 2"* ]] ;;
		esac
		run -0 --separate-stderr es-at-time -v --no-snapshots --stream acct-1 "$t"
		[[ "$stderr" != *"from the snapshot"* ]]
	done
	# --diff from before the snapshot to after it
	run -0 --separate-stderr es-at-time --diff 2025-11-26T09:00:00Z 2099-01-01 --stream acct-1
	want=$output
	run -0 --separate-stderr es-at-time --no-snapshots --diff 2025-11-26T09:00:00Z 2099-01-01 --stream acct-1
	assert_equal "$output" "$want"
	# a snapshot under another reducer is never applied
	echo '{"on":{"*":[{"op":"count","path":"n"}]}}' > spec.json
	run -0 --separate-stderr es-at-time --reducer spec.json --stream acct-1 2099-01-01
	assert_equal "$(brief)" 'acct-1@3:{"n":3} '
}

@test "no memory while reading a snapshot is an I/O error, never another state" {
	command -v es-snapshot >/dev/null || skip "es-snapshot is not built yet"
	es-snapshot --stream acct-1 --to-seq 3
	for args in "--stream acct-1 2099-01-01" "--stream acct-1 --seq 4" \
		"--diff 2025-11-26T09:00:00Z 2099-01-01 --stream acct-1"; do
		# shellcheck disable=SC2086 # the options are words on purpose
		run -0 --separate-stderr es-at-time -v $args
		[[ "$stderr" == *"from the snapshot"* ]] || [[ "$args" == --diff* ]]
		# shellcheck disable=SC2086
		oom_sweep "$output" es-at-time $args
	done
}

@test "--help, --version, usage errors" {
	run -0 --separate-stderr es-at-time --help
	assert_line --index 0 "usage: es-at-time [options] TIME [FILE...]"
	assert_output --partial "--between"
	assert_output --partial "--diff"
	run -0 --separate-stderr es-at-time --version
	assert_output --regexp '^es-at-time [0-9]+\.[0-9]+\.[0-9]+$'
	local bad
	for bad in "" "--bogus 2025-11-26" "--seq" "--seq 1 --after 2" "--between 2025-11-26" \
		"--diff --between 2025-11-26 2025-11-27" "--limit x 2025-11-26" "--seq -1"; do
		# shellcheck disable=SC2086
		run -2 --separate-stderr es-at-time $bad
		assert_output ""
		[[ "$stderr" == es-at-time:* ]] || { echo "$bad: $stderr"; return 1; }
	done
	run -2 --separate-stderr es-at-time
	[[ "$stderr" == "es-at-time: missing TIME (or --seq N, --between, --after, --diff)"$'\n'* ]]
	run -2 --separate-stderr es-at-time --seq 1 --after 2
	[[ "$stderr" == "es-at-time: --seq and --after do not go together"$'\n'* ]]
}

@test "a TIME given with --seq or --after is refused, not opened as a FILE" {
	run -2 --separate-stderr es-at-time --seq 2 2025-11-26
	assert_output ""
	[[ "$stderr" == "es-at-time: '2025-11-26' is a time, not a FILE: --seq takes the place of TIME"$'\n'* ]]
	run -2 --separate-stderr es-at-time --after 1 30d
	[[ "$stderr" == "es-at-time: '30d' is a time, not a FILE: --after takes the place of TIME"$'\n'* ]]
	# a FILE that exists is read, whatever its name
	es-at-time --after 0 >"$TMP/30d"
	run -0 --separate-stderr es-at-time --after 1 "$TMP/30d"
	assert_equal "$output" "$(es-at-time --after 1)"
	run -4 --separate-stderr es-at-time --after 1 "$TMP/nofile"
	assert_equal "$stderr" "es-at-time: cannot open '$TMP/nofile': No such file or directory"
}

@test "regression: --seq with --stream or --category when all history is archived" {
	# the last seq came from log/ alone: with only an empty active segment
	# there, "nothing matched" and exit 1
	export ES_STORE="$TMP/all-archived"
	printf '%s\n' '{"stream":"acct-7","type":"Opened","ts":"2026-11-26T08:00:00Z","data":{"balance":0}}' \
		'{"stream":"acct-7","type":"Deposited","ts":"2026-11-26T09:00:00Z","data":{"balance":250}}' |
		es-append -q --import-ts
	es-archive -q --before 2026-12-01
	[ -z "$(cat "$ES_STORE"/log/*.ndjson)" ]
	run -0 --separate-stderr es-at-time --seq 2
	local want=$output
	run -0 --separate-stderr es-at-time --seq 2 --stream acct-7
	assert_equal "$output" "$want"
	run -0 --separate-stderr es-at-time --seq 9 --category acct-
	assert_equal "$output" "$want"
	run -0 --separate-stderr es-at-time --seq 1 --stream acct-7
	[ "$(jq -c .state <<<"$output")" = '{"balance":0}' ]
}

@test "regression: a time or seq after the archive's end starts in log/, without reading the archive" {
	# the search saw only log/: an answer at log/'s first record might have
	# been archived, so the whole archive was read from its start
	command -v es-archive >/dev/null || skip "es-archive is not built yet"
	export ES_STORE="$TMP/archived"
	echo '{"stream":"seed","type":"T","ts":"2025-11-26T23:00:00Z"}' | es-append -q --import-ts
	jq -c '.segment_size=4096' "$ES_STORE/store.json" > s.json && mv s.json "$ES_STORE/store.json"
	awk 'BEGIN { for (i = 1; i <= 150; i++)
		printf "{\"stream\":\"acct-%d\",\"type\":\"T\",\"ts\":\"2025-11-27T00:%02d:%02dZ\",\"data\":{\"n\":%d,\"pad\":\"%080d\"}}\n",
		i % 4, int(i / 60), i % 60, i, 0 }' | es-append -q --import-ts --batch-size 2
	cat "$ES_STORE"/log/*.ndjson > all.ndjson
	es-archive -q --before 2025-11-27T00:01:20Z
	local first fseq t tarc args
	first=$(ls "$ES_STORE/log" | head -n 1)
	fseq=$((10#${first%.ndjson}))
	[ "$fseq" -gt 1 ]
	t=$(head -n 1 "$ES_STORE/log/$first" | jq -r .ts)
	tarc=$(sed -n "$((fseq - 1))p" all.ndjson | jq -r .ts)
	[[ "$tarc" < "$t" ]]
	for args in "--between $t 2099-01-01" "--after $((fseq - 1)) --limit 3"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time -v $args
		[[ "$stderr" == "es-at-time: start: seq $fseq, log/$first offset 0 ("* ]]
		local got=$output
		# shellcheck disable=SC2086
		run -0 --separate-stderr es-at-time $args all.ndjson
		assert_equal "$got" "$output"
	done
	# at the archive's last time, or a seq in it: read from the archive
	run -0 --separate-stderr es-at-time -v --between "$tarc" 2099-01-01
	[[ "$stderr" == "es-at-time: start: before log/ (older history): reading the log from its start"* ]]
	run -0 --separate-stderr es-at-time -v --after $((fseq - 2)) --limit 1
	[[ "$stderr" == "es-at-time: start: before log/ (older history): reading from the archived segment that holds seq $((fseq - 2))"* ]]
	assert_equal "$output" "$(sed -n "$((fseq - 1))p" all.ndjson)"
}
