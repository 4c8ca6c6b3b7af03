#!/usr/bin/env bats
# es-append: appending events to a store. The contracts tested here are
# written down in man/es-append.1 and man/es-store.5.

bats_require_minimum_version 1.5.0
load helpers

ZEROS=0000000000000000000000000000000000000000000000000000000000000000
SEG1=00000000000000000001.ndjson

# log_sum: the name and sha256 of every segment, to prove a log unchanged
log_sum() {
	(cd "$ES_STORE/log" && sha256sum -- *.ndjson)
}

# log_all: every record of the log, in order
log_all() {
	cat "$ES_STORE"/log/*.ndjson
}

# envelope: "seq stream version" of each record on stdin
envelope() {
	sed -E 's/^\{"seq":([0-9]+),"stream":"([^"]*)","version":([0-9]+),.*/\1 \2 \3/'
}

# field NAME: the value of the string field NAME of each record on stdin
field() {
	sed -E "s/.*,\"$1\":\"([^\"]*)\".*/\\1/"
}

# gapless: seq 1, 2, ... and every stream's version 1, 2, ... (stdin: envelope)
gapless() {
	awk '$1 != NR { print "seq " $1 " at line " NR; bad = 1; exit }
	     $3 != ++v[$2] { print "stream " $2 " version " $3 " at seq " $1; bad = 1; exit }
	     END { exit bad }'
}

# chain_fast FILE...: chain_ok for long logs, with one sha256sum for all
chain_fast() {
	local d="$TMP/chain"
	rm -rf "$d" && mkdir "$d"
	cat "$@" | awk -v d="$d" -v prev="$ZEROS" '{
		n = length($0)
		f = sprintf("%s/r%08d", d, NR)
		printf "%s%s", prev, substr($0, 1, n - 75) > f
		close(f)
		prev = substr($0, n - 65, 64)
		print prev > (d "/want")
	}'
	sha256sum "$d"/r* | cut -c1-64 >"$d/got"
	cmp "$d/want" "$d/got"
}

# rejected REASON: es-append refuses $TMP/in (a valid line, then the bad
# one): exit 3, "es-append: line 2: REASON" on stderr (REASON is a glob
# pattern: the JSON syntax errors say where, in words of their own),
# nothing on stdout, the log unchanged.
rejected() {
	local before
	[ -d "$ES_STORE/log" ] || append "$(ev seed Created)"
	before=$(log_sum)
	run -3 --separate-stderr es-append <"$TMP/in"
	assert_output ""
	# shellcheck disable=SC2053
	[[ $stderr == "es-append: line 2: "$1 ]] || assert_equal "$stderr" "es-append: line 2: $1"
	assert_equal "$(log_sum)" "$before"
}

# reject_line REASON LINE: rejected, with LINE as the second input line
reject_line() {
	printf '%s\n%s\n' "$(ev a T)" "$2" >"$TMP/in"
	rejected "$1"
}

# --- the command line -------------------------------------------------------

@test "--help prints the usage on stdout and exits 0" {
	run -0 --separate-stderr es-append --help
	assert_line --index 0 "usage: es-append [options] [FILE...]"
	assert_output --partial "--expect V"
	assert_output --partial "--batch-size N"
	assert_output --partial "--import-ts"
	assert_equal "$stderr" ""
	run -0 --separate-stderr es-append -h
	assert_line --index 0 "usage: es-append [options] [FILE...]"
}

@test "--version prints the version and exits 0" {
	run -0 --separate-stderr es-append --version
	assert_output --regexp '^es-append [0-9]+\.[0-9]+\.[0-9]+$'
	assert_equal "$stderr" ""
}

@test "an unknown option exits 2 with a hint, and stores nothing" {
	run -2 --separate-stderr es-append --bogus
	assert_output ""
	assert_equal "$stderr" "es-append: unknown option '--bogus'
Try 'es-append --help' for more information."
	run -2 --separate-stderr es-append -x
	assert_equal "${stderr%%$'\n'*}" "es-append: unknown option '-x'"
	[ ! -e "$ES_STORE" ]
}

@test "an option without its value exits 2" {
	run -2 --separate-stderr es-append --expect
	assert_equal "${stderr%%$'\n'*}" "es-append: option '--expect' needs a value"
}

@test "regression: an empty --store is a usage error, not the default store" {
	append "$(ev a T)"
	ev a T >"$TMP/in"
	local before
	before=$(log_sum)
	for args in "-d" "--store" "--store="; do
		if [ "$args" = "--store=" ]; then
			run -2 --separate-stderr es-append --store= "$TMP/in"
		else
			run -2 --separate-stderr es-append "$args" "" "$TMP/in"
		fi
		assert_equal "${stderr%%$'\n'*}" "es-append: --store: empty directory name"
	done
	assert_equal "$(log_sum)" "$before"
	run -2 --separate-stderr es-verify -d ""
}

@test "a value given to an option that takes none exits 2 and says so" {
	run -2 --separate-stderr es-append --import-ts=1
	assert_equal "${stderr%%$'\n'*}" "es-append: option '--import-ts' takes no value"
	run -2 --separate-stderr es-append --quiet=yes
	assert_equal "${stderr%%$'\n'*}" "es-append: option '--quiet' takes no value"
	run -2 --separate-stderr es-append -q -x
	assert_equal "${stderr%%$'\n'*}" "es-append: unknown option '-x'"
	[ ! -e "$ES_STORE" ]
}

@test "bad values of --expect and --batch-size exit 2" {
	ev a T >"$TMP/in"
	for v in foo -1 1.5 ""; do
		run -2 --separate-stderr es-append --expect "$v" "$TMP/in"
		assert_equal "$stderr" "es-append: --expect: '$v' is not any, none, exists or a version (a non-negative integer)
Try 'es-append --help' for more information."
	done
	run -2 --separate-stderr es-append --batch-size 0 "$TMP/in"
	assert_equal "${stderr%%$'\n'*}" "es-append: --batch-size: must be at least 1"
	run -2 --separate-stderr es-append --batch-size x "$TMP/in"
	[ ! -e "$ES_STORE" ]
}

@test "-d and --store choose the store over ES_STORE, which beats ./es-store" {
	ev a T >"$TMP/in"
	run -0 --separate-stderr es-append -q -d "$TMP/one" "$TMP/in"
	run -0 --separate-stderr es-append -q --store "$TMP/two" "$TMP/in"
	run -0 --separate-stderr es-append -q "$TMP/in"
	run -0 --separate-stderr env -u ES_STORE es-append -q "$TMP/in"
	for d in "$TMP/one" "$TMP/two" "$ES_STORE" "$TMP/es-store"; do
		run -0 cat "$d/log/$SEG1"
		assert_equal "${#lines[@]}" 1
	done
}

# --- input ------------------------------------------------------------------

@test "empty input stores nothing, creates no store, and exits 0" {
	run -0 --separate-stderr es-append </dev/null
	assert_output ""
	assert_equal "$stderr" ""
	[ ! -e "$ES_STORE" ]
}

@test "blank lines are skipped; input of blank lines only stores nothing" {
	printf '\n  \n\t\n\r\n' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_output ""
	[ ! -e "$ES_STORE" ]
	printf '\n%s\n\n   \n%s\n' "$(ev a T)" "$(ev a T)" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "${#lines[@]}" 2
}

@test "closed stdin reads as empty input" {
	run -0 --separate-stderr bash -c 'es-append <&-'
	assert_output ""
	assert_equal "$stderr" ""
	[ ! -e "$ES_STORE" ]
}

@test "a missing input file exits 4 and stores nothing" {
	ev a T >"$TMP/a"
	run -4 --separate-stderr es-append "$TMP/a" "$TMP/nope"
	assert_output ""
	assert_equal "$stderr" "es-append: not stored: cannot open '$TMP/nope': No such file or directory"
	[ ! -e "$ES_STORE/log/$SEG1" ]
}

@test "several files, and - for stdin, form one batch in order" {
	ev a One >"$TMP/a"
	ev b Two >"$TMP/b"
	run -0 --separate-stderr es-append "$TMP/a" - "$TMP/a" <"$TMP/b"
	assert_equal "$(envelope <<<"$output")" "1 a 1
2 b 1
3 a 2"
	assert_equal "$(grep -c '"more":true' "$ES_STORE/log/$SEG1")" 2
}

@test "an error in a named file names the file and its line" {
	printf '%s\n' "$(ev a T)" >"$TMP/a"
	printf '%s\n' "$(ev b T)" '{"stream":"b"}' >"$TMP/b"
	run -3 --separate-stderr es-append "$TMP/a" "$TMP/b"
	assert_output ""
	assert_equal "$stderr" "es-append: $TMP/b: line 2: \"type\" is missing"
	[ ! -e "$ES_STORE" ]
}

@test "zstd-compressed input is read from a file and from stdin" {
	printf '%s\n' "$(ev z One)" "$(ev z Two)" | zstd -q >"$TMP/in.zst"
	run -0 --separate-stderr es-append "$TMP/in.zst"
	assert_equal "$(envelope <<<"$output")" "1 z 1
2 z 2"
	run -0 --separate-stderr es-append <"$TMP/in.zst"
	assert_equal "$(envelope <<<"$output")" "3 z 3
4 z 4"
	ev z Plain >"$TMP/plain"
	run -0 --separate-stderr es-append "$TMP/plain" "$TMP/in.zst"
	assert_equal "${#lines[@]}" 3
}

@test "corrupt zstd input exits 3 and stores nothing" {
	printf '%s\n' "$(ev z One)" | zstd -q >"$TMP/in.zst"
	head -c 12 "$TMP/in.zst" >"$TMP/cut.zst"
	run --separate-stderr es-append "$TMP/cut.zst"
	assert_equal "$status" 3
	assert_output ""
	[[ $stderr == "es-append: $TMP/cut.zst: "* ]]
	[ ! -e "$ES_STORE" ]
}

@test "a UTF-8 BOM at the very start is tolerated, not on a later line" {
	printf '\xef\xbb\xbf%s\n' "$(ev a T)" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$(envelope <<<"$output")" "1 a 1"
	printf '%s\n\xef\xbb\xbf%s\n' "$(ev a T)" "$(ev a T)" >"$TMP/in"
	rejected "*"
	# one: a second is not JSON whitespace
	printf '\xef\xbb\xbf\xef\xbb\xbf%s\n' "$(ev a T)" >"$TMP/in"
	run -3 --separate-stderr es-append <"$TMP/in"
	assert_output ""
	[[ $stderr == "es-append: line 1: "* ]]
}

@test "a first line that holds only a UTF-8 BOM is a blank line" {
	printf '\xef\xbb\xbf\n%s\n' "$(ev a T)" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$(envelope <<<"$output")" "1 a 1"
}

@test "CRLF line ends are tolerated" {
	printf '%s\r\n%s\r\n' "$(ev a T '{"x":"y"}')" "$(ev a T)" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "${#lines[@]}" 2
	[[ ${lines[0]} == *'"data":{"x":"y"}'* ]]
	run -1 grep -c $'\r' "$ES_STORE/log/$SEG1"
}

@test "a last line without a newline is accepted" {
	printf '%s\n%s' "$(ev a T)" "$(ev a U)" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$(envelope <<<"$output")" "1 a 1
2 a 2"
}

# --- the stored record ------------------------------------------------------

@test "the first append creates store.json, lock, log/, index/ and quarantine/" {
	append "$(ev a T)"
	run -0 ls "$ES_STORE"
	assert_output "index
lock
log
quarantine
store.json"
	run -0 ls "$ES_STORE/log"
	assert_output "$SEG1"
	run -0 cat "$ES_STORE/store.json"
	assert_output --regexp '^\{"format":"es-store","version":1,"created":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z","segment_size":67108864,"snapshot_every":0\}$'
}

@test "the stored lines are printed on stdout, exactly as in the log" {
	printf '%s\n' "$(ev a T '{"n":1}')" "$(ev b U)" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$stderr" ""
	assert_equal "$output" "$(cat "$ES_STORE/log/$SEG1")"
}

@test "-q prints nothing and still stores" {
	ev a T >"$TMP/in"
	run -0 --separate-stderr es-append -q <"$TMP/in"
	assert_output ""
	assert_equal "$stderr" ""
	assert_equal "$(envelope <"$ES_STORE/log/$SEG1")" "1 a 1"
}

@test "records have the documented keys in the documented order" {
	printf '%s\n' '{"meta":{"u":"ann"},"data":{"k":1},"schema":2,"id":"e1","type":"T","stream":"s"}' \
		"$(ev s U)" '{"stream":"s","type":"V","meta":{}}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	local re='^\{"seq":[1-9][0-9]*,"stream":"[^"]+","version":[1-9][0-9]*,"type":"[^"]+","ts":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z","id":"[^"]+",("schema":[1-9][0-9]*,)?"data":\{.*\}(,"meta":\{.*\})?(,"more":true)?,"hash":"[0-9a-f]{64}"\}$'
	for l in "${lines[@]}"; do
		[[ $l =~ $re ]] || { echo "bad record: $l"; false; }
	done
	[[ ${lines[0]} == '{"seq":1,"stream":"s","version":1,"type":"T","ts":"'*'","id":"e1","schema":2,"data":{"k":1},"meta":{"u":"ann"},"more":true,"hash":"'* ]]
	[[ ${lines[1]} == *'"data":{},"more":true,"hash":"'* ]]
	[[ ${lines[2]} == *'"data":{},"meta":{},"hash":"'* ]]
}

@test "seq is global and version per stream, both from 1 and gapless" {
	append "$(ev a T)" "$(ev b T)" "$(ev a T)"
	append "$(ev b T)"
	append "$(ev c T)" "$(ev a T)"
	assert_equal "$(log_all | envelope)" "1 a 1
2 b 1
3 a 2
4 b 2
5 c 1
6 a 3"
}

@test "every record of a batch but its last carries \"more\":true" {
	append "$(ev a T)" "$(ev a T)" "$(ev a T)"
	append "$(ev a T)"
	append "$(ev b T)" "$(ev a T)"
	run -0 grep -n -o '"more":true' "$ES_STORE/log/$SEG1"
	assert_output "1:\"more\":true
2:\"more\":true
5:\"more\":true"
}

@test "ts is the time of the append, in UTC with microseconds, one per batch, never decreasing" {
	local before after prev=""
	before=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
	append "$(ev a T)" "$(ev b T)"
	append "$(ev a T)"
	after=$(date -u +%Y-%m-%dT%H:%M:%S.999999Z)
	while IFS= read -r ts; do
		[[ $ts =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$ ]]
		[[ ! $ts < $before && ! $ts > $after ]]
		[[ -z $prev || ! $ts < $prev ]]
		prev=$ts
	done < <(log_all | field ts)
	# the events of one batch share one time
	assert_equal "$(head -n 1 "$ES_STORE/log/$SEG1" | field ts)" "$(sed -n 2p "$ES_STORE/log/$SEG1" | field ts)"
}

@test "an id is generated as a UUIDv7 of the append time when none is given" {
	append "$(ev a T)" "$(ev a T)"
	local id ts ms sec
	run -0 field id <"$ES_STORE/log/$SEG1"
	assert_equal "${#lines[@]}" 2
	[ "${lines[0]}" != "${lines[1]}" ]
	for id in "${lines[@]}"; do
		[[ $id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]
	done
	ts=$(head -n 1 "$ES_STORE/log/$SEG1" | field ts)
	ms=$((16#${id:0:8}${id:9:4}))
	sec=$(date -u -d "${ts:0:19}Z" +%s)
	[ $((ms / 1000 - sec)) -ge -5 ] && [ $((ms / 1000 - sec)) -le 5 ]
}

@test "a given id, schema and meta are stored; data defaults to {}" {
	append '{"stream":"s","type":"T","id":"order-7/1","schema":3,"meta":{"user":"ann"}}'
	run -0 cat "$ES_STORE/log/$SEG1"
	[[ $output == *'"id":"order-7/1","schema":3,"data":{},"meta":{"user":"ann"},"hash":'* ]]
}

@test "numbers are stored exactly as written" {
	local data='{"p":19.99,"e":1e2,"E":1E+2,"z":-0,"f":-0.0,"g":0.1e-5,"max":9223372036854775807,"min":-9223372036854775808,"r":100000000000000000000000.5,"a":[1.10,2.50,0]}'
	ev a T "$data" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	[[ $output == *",\"data\":$data,\"hash\":"* ]]
	printf '%s\n' '{"stream":"a","type":"T","meta":{"price":0.30000000000000004}}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	[[ $output == *',"meta":{"price":0.30000000000000004},'* ]]
}

@test "white space between tokens is removed, white space in strings kept" {
	printf '%s\n' '{ "stream" : "a" , "type" : "T" , "data" : { "s" : "x  y" , "a" : [ 1 , { } , [ ] ] } , "meta" : {	"t" :	true } }' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	[[ $output == *',"data":{"s":"x  y","a":[1,{},[]]},"meta":{"t":true},"hash":'* ]]
}

@test "unicode and string escapes in data and meta are kept byte for byte" {
	local data='{"u":"é😀中","esc":"\u00e9\ud83d\ude00","q":"a\"b\\c\/d\n"}'
	printf '{"stream":"a","type":"T","data":%s,"meta":%s}\n' "$data" "$data" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	[[ $output == *",\"data\":$data,\"meta\":$data,\"hash\":"* ]]
}

@test "stream, type and id are stored in one canonical spelling" {
	printf '%s\n' '{"stream":"str\u00e9am\/x","type":"a\"b\\c\u001f\t","id":"\ud83d\ude00"}' \
		'{"stream":"stréam/x","type":"T"}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	[[ ${lines[0]} == '{"seq":1,"stream":"stréam/x","version":1,"type":"a\"b\\c\u001F\t","ts":"'*'","id":"😀",'* ]]
	[[ ${lines[1]} == '{"seq":2,"stream":"stréam/x","version":2,'* ]]
}

@test "names of 200 bytes are accepted, 201 bytes rejected" {
	local n200 n201
	n200=$(printf 'é%.0s' $(seq 100))
	n201=${n200}x
	printf '{"stream":"%s","type":"%s","id":"%s"}\n' "$n200" "$n200" "$n200" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	for k in stream type id; do
		printf '%s\n' '{"stream":"a","type":"T","id":"i"}' \
			"$(printf '{"stream":"a","type":"T","id":"i"}' | sed "s/\"$k\":\"[^\"]*\"/\"$k\":\"$n201\"/")" >"$TMP/in"
		rejected "\"$k\" is longer than 200 bytes"
	done
}

@test "the sha256sum recipe of es-store(5) verifies the chain es-append wrote" {
	append "$(ev a T '{"price":19.99}')" "$(ev b T '{"s":"é\"x"}')"
	append '{"stream":"a","type":"T","meta":{"k":[1,2]},"schema":2}'
	append "$(ev c T)" "$(ev a T)" "$(ev b T)"
	chain_ok "$ES_STORE/log/$SEG1"
	chain_fast "$ES_STORE/log/$SEG1"
}

@test "the first hash is sha256 of 64 zeros and the bytes up to ,\"hash\":" {
	append "$(ev a T)"
	local line body
	line=$(cat "$ES_STORE/log/$SEG1")
	body=${line%,\"hash\":*}
	[[ $body == '{"seq":1,'*'"data":{}' ]]
	assert_equal "${line#"$body"}" ",\"hash\":\"$(printf '%s%s' "$ZEROS" "$body" | sha256sum | cut -c1-64)\"}"
}

@test "a changed byte breaks the chain for the recipe" {
	append "$(ev a T '{"n":1}')" "$(ev a T '{"n":2}')"
	sed -i '1s/"n":1/"n":3/' "$ES_STORE/log/$SEG1"
	run -1 chain_ok "$ES_STORE/log/$SEG1"
}

# --- rejected input ---------------------------------------------------------

@test "invalid JSON is rejected with the line number" {
	reject_line "invalid JSON: *" '{"stream":"a",'
	reject_line "invalid JSON: *" '{"stream":"a","type":"T"} {}'
	reject_line "invalid JSON: *" "{'stream':'a','type':'T'}"
}

@test "a line that is not an object is rejected" {
	reject_line "an event must be a JSON object" '[1]'
	reject_line "an event must be a JSON object" '"x"'
	reject_line "an event must be a JSON object" '42'
	reject_line "an event must be a JSON object" 'null'
}

@test "duplicate keys are rejected" {
	reject_line "invalid JSON: duplicate object key*" '{"stream":"a","type":"T","data":{"n":1,"n":2}}'
	reject_line "invalid JSON: duplicate object key*" '{"stream":"a","type":"T","stream":"b"}'
}

@test "no memory to compare escaped keys never lets a duplicate key through" {
	# Keys with escapes are unescaped before they are compared; a failed
	# allocation there once counted as "different keys", and the event
	# was stored. Every allocation fails in turn: exit 3 (the duplicate)
	# or 4 (no memory), the log unchanged.
	append "$(ev a T)"
	cp "$ES_STORE/log/$SEG1" "$TMP/before"
	line='{"stream":"a","type":"T","data":{"n":1,"\u006e":2}}'
	oom=0
	for n in $(seq 1 60); do
		ES_FAULT=malloc:$n run --separate-stderr es-append <<<"$line"
		case $status in
		3) [[ "$stderr" == *"duplicate object key"* ]] ||
			{ echo "malloc:$n: $stderr"; return 1; } ;;
		4) [[ "$stderr" == *"out of memory"* ]] || { echo "malloc:$n: $stderr"; return 1; }
		   oom=$((oom + 1)) ;;
		*) echo "malloc:$n: exit $status: $stderr"; return 1 ;;
		esac
		cmp -s "$TMP/before" "$ES_STORE/log/$SEG1" || { echo "malloc:$n: the log changed"; return 1; }
	done
	[ "$oom" -gt 0 ] # (the sweep reached allocations)
}

@test "a failure that says \"not stored\" stored nothing: every allocation of a batch with retries" {
	# Found by torture ioerr once it swept every allocation: the batch's
	# acknowledgement was built after its fdatasync, and no memory for it
	# said "not stored" about events that were stored. It is built first now.
	for i in 1 2 3; do echo '{"stream":"s'$i'","type":"T","id":"old'$i'"}'; done | es-append -q
	printf '%s\n' '{"stream":"s1","type":"T","id":"old1"}' '{"stream":"s2","type":"T","id":"new1"}' \
		'{"stream":"s3","type":"T","id":"old3"}' '{"stream":"s4","type":"T","id":"new2"}' >batch
	cp -a "$ES_STORE" pristine
	alloc_count es-append batch
	local n failed=0
	for ((n = 1; n <= count; n++)); do
		rm -rf "$ES_STORE" && cp -a pristine "$ES_STORE"
		ES_FAULT=malloc:$n run --separate-stderr es-append batch
		if [ "$status" -eq 0 ]; then
			[ "$(wc -l <"$ES_STORE/log/$SEG1")" -eq 5 ] || { echo "malloc:$n: exit 0, not all stored"; return 1; }
			continue
		fi
		[ "$status" -eq 4 ] || { echo "malloc:$n: exit $status: $stderr"; return 1; }
		[[ "$stderr" == *"not stored"* ]] || { echo "malloc:$n: $stderr"; return 1; }
		cmp -s "pristine/log/$SEG1" "$ES_STORE/log/$SEG1" ||
			{ echo "malloc:$n: \"not stored\", yet the log changed: $stderr"; return 1; }
		failed=$((failed + 1))
	done
	[ "$failed" -gt 0 ]
}

@test "invalid UTF-8 is rejected" {
	printf '%s\n{"stream":"a","type":"T","data":{"s":"\xff"}}\n' "$(ev a T)" >"$TMP/in"
	rejected "invalid JSON: *"
	printf '%s\n{"stream":"a","type":"T","data":{"s":"\xc3("}}\n' "$(ev a T)" >"$TMP/in"
	rejected "invalid JSON: *"
	printf '%s\n{"stream":"a","type":"T","data":{"s":"\xed\xa0\x80"}}\n' "$(ev a T)" >"$TMP/in"
	rejected "invalid JSON: *"
}

@test "an integer beyond 64 bits is rejected" {
	reject_line "invalid JSON: too big integer*" "$(ev a T '{"n":12345678901234567890}')"
	reject_line "invalid JSON: too big integer*" "$(ev a T '{"n":9223372036854775808}')"
	reject_line "invalid JSON: too big*integer*" "$(ev a T '{"n":-9223372036854775809}')"
}

@test "a number that overflows a double (1e999) is rejected" {
	reject_line "invalid JSON: real number overflow*" "$(ev a T '{"n":1e999}')"
}

@test "nesting of 64 levels is accepted, 65 rejected" {
	local open close
	open=$(printf '[%.0s' $(seq 62))
	close=$(printf ']%.0s' $(seq 62))
	ev a T "{\"x\":$open$close}" >"$TMP/in"
	run -0 --separate-stderr es-append -q <"$TMP/in"
	reject_line "nesting deeper than 64 levels" "$(ev a T "{\"x\":[$open$close]}")"
}

@test "a NUL byte is rejected" {
	printf '%s\n{"stream":"a","type":"T","data":{"s":"a\0b"}}\n' "$(ev a T)" >"$TMP/in"
	rejected "NUL byte in line"
}

# A stored record is at most 16 MiB, as every reader of the log reads it; the
# envelope es-append adds (seq, version, ts, id, hash) must fit in it too.
big_line() { # big_line N: an event line of exactly N bytes, newline not counted
	printf '{"stream":"a","type":"T","data":{"s":"'
	head -c $(($1 - 41)) /dev/zero | tr '\0' a
	printf '"}}\n'
}

@test "a line of 16 MiB is rejected when its stored event would pass 16 MiB" {
	append "$(ev seed T)"
	local before
	before=$(log_sum)
	big_line 16777216 >"$TMP/in"
	[ "$(wc -c <"$TMP/in")" -eq 16777217 ]
	run -3 --separate-stderr es-append -q <"$TMP/in"
	assert_equal "$stderr" "es-append: line 1: the stored event would be longer than 16777216 bytes: its data and meta must leave room for the envelope"
	assert_equal "$(log_sum)" "$before"
}

@test "an event just under 16 MiB is stored and reads back, index or not" {
	big_line $((16777216 - 512)) >"$TMP/in"
	run -0 --separate-stderr es-append -q <"$TMP/in"
	run -0 --separate-stderr es-verify
	rm -rf "$ES_STORE/index"
	run -0 --separate-stderr es-verify
	es-replay --events --stream a >"$TMP/out"
	[ "$(jq -r '.data.s | length' "$TMP/out")" -eq $((16777216 - 512 - 41)) ]
	append "$(ev b T)"
	[ ! -e "$ES_STORE/quarantine" ] || [ -z "$(ls -A "$ES_STORE/quarantine")" ]
	assert_equal "$(es-replay --events | wc -l)" 2
}

@test "a line longer than 16 MiB in a file is rejected with its file and number" {
	append "$(ev seed T)"
	local before
	before=$(log_sum)
	{
		ev a T
		printf '{"stream":"a","type":"T","data":{"s":"'
		head -c 16777216 /dev/zero | tr '\0' a
		printf '"}}\n'
	} >"$TMP/big"
	run -3 --separate-stderr es-append "$TMP/big"
	assert_output ""
	assert_equal "$stderr" "es-append: $TMP/big: line 2: longer than 16777216 bytes"
	assert_equal "$(log_sum)" "$before"
}

@test "a line longer than 16 MiB on stdin is rejected as 'line N: reason'" {
	{
		ev a T
		printf '{"stream":"a","type":"T","data":{"s":"'
		head -c 16777216 /dev/zero | tr '\0' a
		printf '"}}\n'
	} >"$TMP/in"
	rejected "longer than 16777216 bytes"
}

@test "missing, empty and non-string stream and type are rejected" {
	reject_line '"stream" is missing' '{"type":"T"}'
	reject_line '"type" is missing' '{"stream":"a"}'
	reject_line '"stream" must be a non-empty string' '{"stream":"","type":"T"}'
	reject_line '"stream" must be a non-empty string' '{"stream":7,"type":"T"}'
	reject_line '"type" must be a non-empty string' '{"stream":"a","type":null}'
	reject_line '"id" must be a non-empty string' '{"stream":"a","type":"T","id":""}'
	reject_line '"id" must be a non-empty string' '{"stream":"a","type":"T","id":42}'
}

@test "data and meta must be objects" {
	reject_line '"data" must be an object' '{"stream":"a","type":"T","data":[1]}'
	reject_line '"data" must be an object' '{"stream":"a","type":"T","data":null}'
	reject_line '"data" must be an object' '{"stream":"a","type":"T","data":"x"}'
	reject_line '"meta" must be an object' '{"stream":"a","type":"T","meta":1}'
}

@test "schema must be an integer of at least 1" {
	reject_line '"schema" must be an integer >= 1' '{"stream":"a","type":"T","schema":0}'
	reject_line '"schema" must be an integer >= 1' '{"stream":"a","type":"T","schema":"2"}'
	reject_line '"schema" must be an integer >= 1' '{"stream":"a","type":"T","schema":1.5}'
}

@test "expect must be any, none, exists or a version >= 0" {
	local why='"expect" must be "any", "none", "exists" or a version >= 0'
	reject_line "$why" '{"stream":"a","type":"T","expect":"some"}'
	reject_line "$why" '{"stream":"a","type":"T","expect":-1}'
	reject_line "$why" '{"stream":"a","type":"T","expect":1.0}'
	reject_line "$why" '{"stream":"a","type":"T","expect":null}'
}

@test "expect and schema take any integer up to 2^63-1" {
	append '{"stream":"a","type":"T","schema":9223372036854775807}'
	run -5 --separate-stderr es-append <<<'{"stream":"a","type":"T","expect":9223372036854775807}'
	assert_equal "$stderr" "es-append: line 1: stream 'a': expected version 9223372036854775807, actual 1"
	reject_line 'invalid JSON: too big integer (column 35)' \
		'{"stream":"a","type":"T","expect":9223372036854775808}'
	reject_line 'invalid JSON: too big integer (column 35)' \
		'{"stream":"a","type":"T","schema":9223372036854775808}'
}

@test "unknown fields are rejected" {
	reject_line 'unknown field "foo"' '{"stream":"a","type":"T","foo":1}'
	reject_line 'unknown field "Stream"' '{"stream":"a","type":"T","Stream":"b"}'
}

@test "fields the store assigns are rejected: seq, version, hash, more, ts" {
	for k in seq version hash more; do
		reject_line "\"$k\" is assigned by the store and must not be given" \
			"{\"stream\":\"a\",\"type\":\"T\",\"$k\":1}"
	done
	reject_line '"ts" is assigned by the store and must not be given' \
		'{"stream":"a","type":"T","ts":"2026-01-01T00:00:00Z"}'
}

@test "one bad line stores nothing of the whole input, even with --batch-size" {
	printf '%s\n' "$(ev a T)" "$(ev a T)" "$(ev a T)" "$(ev a T)" '{"stream":"a"}' >"$TMP/in"
	run -3 --separate-stderr es-append --batch-size 2 <"$TMP/in"
	assert_output ""
	assert_equal "$stderr" 'es-append: line 5: "type" is missing'
	[ ! -e "$ES_STORE" ]
}

@test "a large input (validated on two threads) keeps its order and names its first bad line" {
	for i in $(seq 5000); do ev "s$i" T; done >"$TMP/big"
	sed '4000s/.*/{"stream":"x"}/' "$TMP/big" >"$TMP/late"
	sed '1500s/.*/{"type":"T"}/' "$TMP/late" >"$TMP/both"
	run -3 --separate-stderr es-append <"$TMP/late"
	assert_equal "$stderr" 'es-append: line 4000: "type" is missing'
	run -3 --separate-stderr es-append <"$TMP/both"
	assert_equal "$stderr" 'es-append: line 1500: "stream" is missing'
	# over several files: the file is named, and a later file's bad line
	# stops the whole input
	run -3 --separate-stderr es-append "$TMP/big" "$TMP/late"
	assert_equal "$stderr" "es-append: $TMP/late: line 4000: \"type\" is missing"
	[ ! -e "$ES_STORE" ]
	# lines read before a file that cannot be opened are judged first
	run -3 --separate-stderr es-append "$TMP/late" "$TMP/missing"
	assert_equal "$stderr" "es-append: $TMP/late: line 4000: \"type\" is missing"
	run -0 --separate-stderr es-append -q --batch-size 1000 "$TMP/big" "$TMP/big"
	log_all | envelope >"$TMP/env"
	assert_equal "$(wc -l <"$TMP/env")" 10000
	# seq order is input order: s1..s5000 at version 1, then again at 2
	assert_equal "$(awk '{ print $2 }' "$TMP/env" | head -n 5000)" "$(seq -f 's%g' 5000)"
	assert_equal "$(awk '$3 == 2 { print $2 }' "$TMP/env")" "$(seq -f 's%g' 5000)"
}

# --- --import-ts --------------------------------------------------------------

@test "--import-ts stores the given times in UTC with microseconds" {
	printf '%s\n' '{"stream":"a","type":"T","ts":"2020-01-01T09:00:00+01:00"}' \
		'{"stream":"a","type":"T","ts":"2020-01-01T08:00:00.5Z"}' \
		'{"stream":"b","type":"T","ts":"2020-01-01 08:00:01.123456789Z"}' >"$TMP/in"
	run -0 --separate-stderr es-append --import-ts <"$TMP/in"
	assert_equal "$(field ts <<<"$output")" "2020-01-01T08:00:00.000000Z
2020-01-01T08:00:00.500000Z
2020-01-01T08:00:01.123456Z"
}

@test "--import-ts needs a valid ts on every line" {
	append "$(ev seed T)"
	printf '%s\n' '{"stream":"a","type":"T","ts":"2999-01-01T00:00:00Z"}' '{"stream":"a","type":"T"}' >"$TMP/in"
	run -3 --separate-stderr es-append --import-ts <"$TMP/in"
	assert_equal "$stderr" 'es-append: line 2: "ts" is missing (--import-ts)'
	for ts in '"yesterday"' '"2020-13-01T00:00:00Z"' '"2020-01-01T00:00:00"' 1577836800; do
		printf '%s\n' '{"stream":"a","type":"T","ts":"2999-01-01T00:00:00Z"}' \
			"{\"stream\":\"a\",\"type\":\"T\",\"ts\":$ts}" >"$TMP/in"
		run -3 --separate-stderr es-append --import-ts <"$TMP/in"
		assert_equal "$stderr" 'es-append: line 2: "ts" must be an RFC 3339 time'
	done
	assert_equal "$(log_all | wc -l)" 1
}

@test "--import-ts refuses times that go back, in the store or in the batch" {
	printf '%s\n' '{"stream":"a","type":"T","ts":"2020-01-02T00:00:00Z"}' >"$TMP/in"
	run -0 --separate-stderr es-append -q --import-ts <"$TMP/in"
	local before
	before=$(log_sum)
	printf '%s\n' '{"stream":"a","type":"T","ts":"2020-01-01T23:59:59.999999Z"}' >"$TMP/in"
	run -3 --separate-stderr es-append --import-ts <"$TMP/in"
	assert_output ""
	assert_equal "$stderr" 'es-append: line 1: "ts" is before the last stored ts 2020-01-02T00:00:00.000000Z'
	printf '%s\n' '{"stream":"a","type":"T","ts":"2020-01-03T00:00:00Z"}' \
		'{"stream":"b","type":"T","ts":"2020-01-02T12:00:00Z"}' >"$TMP/in"
	run -3 --separate-stderr es-append --import-ts <"$TMP/in"
	assert_equal "$stderr" 'es-append: line 2: "ts" is before the previous event'"'"'s 2020-01-03T00:00:00.000000Z'
	assert_equal "$(log_sum)" "$before"
	# the same time again is not going back
	printf '%s\n' '{"stream":"a","type":"T","ts":"2020-01-02T00:00:00Z"}' >"$TMP/in"
	run -0 --separate-stderr es-append -q --import-ts <"$TMP/in"
}

@test "--import-ts: a leap second is stored as the second before it; 1969 is refused" {
	[ ! -e "$ES_STORE" ]
	run -3 --separate-stderr es-append --import-ts <<<'{"stream":"a","type":"T","ts":"1969-12-31T23:59:59Z"}'
	assert_equal "$stderr" 'es-append: line 1: "ts" is before 1970-01-01T00:00:00Z, the earliest time a store holds'
	# regression: refused with the input, before a store is created (it
	# left an empty store behind)
	[ ! -e "$ES_STORE" ]
	printf '%s\n' '{"stream":"a","type":"T","ts":"2020-01-01T00:00:00Z"}' \
		'{"stream":"b","type":"T","ts":"1969-12-31T23:59:59Z"}' >"$TMP/in"
	run -3 --separate-stderr es-append --import-ts "$TMP/in"
	assert_equal "$stderr" "es-append: $TMP/in: line 2: \"ts\" is before 1970-01-01T00:00:00Z, the earliest time a store holds"
	[ ! -e "$ES_STORE" ]
	run -0 --separate-stderr es-append --import-ts <<<'{"stream":"a","type":"T","ts":"2016-12-31T23:59:60.5Z"}'
	assert_equal "$(field ts <<<"$output")" "2016-12-31T23:59:59.500000Z"
}

@test "--import-ts with --batch-size: input that goes back stores no chunk" {
	printf '%s\n' '{"stream":"a","type":"T","ts":"2020-01-01T00:00:02Z"}' \
		'{"stream":"b","type":"T","ts":"2020-01-01T00:00:03Z"}' >"$TMP/one"
	printf '%s\n' '{"stream":"a","type":"T","ts":"2020-01-01T00:00:01Z"}' >"$TMP/two"
	run -3 --separate-stderr es-append --import-ts --batch-size 1 "$TMP/one" "$TMP/two"
	assert_output ""
	assert_equal "$stderr" "es-append: $TMP/two: line 1: \"ts\" is before the previous event's 2020-01-01T00:00:03.000000Z"
	[ ! -e "$ES_STORE/log/$SEG1" ] || [ ! -s "$ES_STORE/log/$SEG1" ]
}

@test "after an import from the future, ts stays at the last time" {
	printf '%s\n' '{"stream":"a","type":"T","ts":"2999-01-01T00:00:00Z"}' >"$TMP/in"
	run -0 --separate-stderr es-append -q --import-ts <"$TMP/in"
	append "$(ev a T)"
	assert_equal "$(log_all | field ts)" "2999-01-01T00:00:00.000000Z
2999-01-01T00:00:00.000000Z"
}

# --- expectations -------------------------------------------------------------

@test "--expect none: the stream must not exist" {
	ev a T >"$TMP/in"
	run -0 --separate-stderr es-append -q --expect none "$TMP/in"
	local before
	before=$(log_sum)
	run -5 --separate-stderr es-append --expect none "$TMP/in"
	assert_output ""
	assert_equal "$stderr" "es-append: $TMP/in: line 1: stream 'a': expected version none, actual 1"
	assert_equal "$(log_sum)" "$before"
}

@test "--expect exists: the stream must have events" {
	ev a T >"$TMP/in"
	run -5 --separate-stderr es-append --expect exists "$TMP/in"
	assert_equal "$stderr" "es-append: $TMP/in: line 1: stream 'a': expected version exists, actual 0"
	[ ! -s "$ES_STORE/log/$SEG1" ]
	append "$(ev a T)"
	run -0 --separate-stderr es-append --expect exists "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "2 a 2"
}

@test "control characters in a stream or file name are escaped in messages" {
	printf '{"stream":"a\\u001b[31m\\u0007\\u007f\\u009b2J\\u00e9","type":"T","data":{}}\n' >"$TMP/in"
	run -0 --separate-stderr es-append -q "$TMP/in"
	run -5 --separate-stderr es-append --expect 0 "$TMP/in"
	assert_equal "$stderr" "es-append: $TMP/in: line 1: stream 'a\\x1b[31m\\x07\\x7f\\u009b2Jé': expected version 0, actual 1"
	f="$TMP/$(printf 'two\nlines\tand\r')"
	echo '[]' >"$f"
	run -3 --separate-stderr es-append "$f"
	assert_equal "$stderr" "es-append: $TMP/two\\nlines\\tand\\r: line 1: an event must be a JSON object"
}

@test "--expect N: the stream's version before the batch must be N" {
	ev a T >"$TMP/in"
	run -0 --separate-stderr es-append -q --expect 0 "$TMP/in"
	run -5 --separate-stderr es-append --expect 0 "$TMP/in"
	assert_equal "$stderr" "es-append: $TMP/in: line 1: stream 'a': expected version 0, actual 1"
	run -5 --separate-stderr es-append --expect 2 "$TMP/in"
	assert_equal "$stderr" "es-append: $TMP/in: line 1: stream 'a': expected version 2, actual 1"
	printf '%s\n' "$(ev a T)" "$(ev a T)" "$(ev a T)" >"$TMP/in3"
	run -0 --separate-stderr es-append --expect 1 "$TMP/in3"
	assert_equal "$(envelope <<<"$output")" "2 a 2
3 a 3
4 a 4"
	run -0 --separate-stderr es-append -q --expect 4 "$TMP/in"
}

@test "--expect any always holds" {
	ev a T >"$TMP/in"
	run -0 --separate-stderr es-append -q --expect any "$TMP/in"
	run -0 --separate-stderr es-append -q --expect any "$TMP/in"
	assert_equal "$(log_all | envelope)" "1 a 1
2 a 2"
}

@test "--expect needs a single-stream batch, else exit 2 and nothing stored" {
	printf '%s\n' "$(ev a T)" "$(ev b T)" >"$TMP/in"
	run -2 --separate-stderr es-append --expect any "$TMP/in"
	assert_output ""
	assert_equal "$stderr" 'es-append: --expect needs a single-stream batch; use "expect" per line
Try '"'es-append --help'"' for more information.'
	[ ! -e "$ES_STORE" ]
}

@test "a conflict leaves the store byte-identical and names the line" {
	append "$(ev a T)" "$(ev b T)"
	local before
	before=$(tar -C "$ES_STORE" -cf - log quarantine store.json | sha256sum)
	printf '%s\n' "$(ev c T)" "$(ev c T)" '{"stream":"b","type":"T","expect":5}' "$(ev a T)" >"$TMP/in"
	run -5 --separate-stderr es-append <"$TMP/in"
	assert_output ""
	assert_equal "$stderr" "es-append: line 3: stream 'b': expected version 5, actual 1"
	assert_equal "$(tar -C "$ES_STORE" -cf - log quarantine store.json | sha256sum)" "$before"
	# and the versions it would have taken are still free
	append "$(ev c T)"
	assert_equal "$(log_all | envelope | tail -n 1)" "3 c 1"
}

@test "regression: a conflict on a store that does not exist yet creates no store" {
	# it created store.json, log/, index/ and then refused (exit 5)
	[ ! -e "$ES_STORE" ]
	printf '%s\n' "$(ev a T)" '{"stream":"a","type":"T","expect":1}' \
		'{"stream":"b","type":"T","expect":"exists"}' >"$TMP/in"
	run -5 --separate-stderr es-append <"$TMP/in"
	assert_equal "$stderr" "es-append: line 3: stream 'b': expected version exists, actual 0"
	[ ! -e "$ES_STORE" ]
	printf '%s\n' "$(ev a T)" "$(ev a T)" >"$TMP/in"
	run -5 --separate-stderr es-append --expect 3 <"$TMP/in"
	assert_equal "$stderr" "es-append: line 1: stream 'a': expected version 3, actual 0"
	[ ! -e "$ES_STORE" ]
	# an id met twice: the first one decides, the second is not checked
	printf '%s\n' '{"stream":"a","type":"T","id":"x"}' \
		'{"stream":"a","type":"T","id":"x","expect":0}' \
		'{"stream":"a","type":"T","expect":1}' >"$TMP/in"
	run -0 --separate-stderr es-append -q <"$TMP/in"
	[ "$(log_all | envelope | tr '\n' ' ')" = "1 a 1 2 a 2 " ]
	# a later chunk's conflict comes after the first chunk is stored
	rm -rf "$ES_STORE"
	printf '%s\n' "$(ev a T)" '{"stream":"a","type":"T","expect":5}' >"$TMP/in"
	run -5 --separate-stderr es-append -q --batch-size 1 <"$TMP/in"
	[[ "$stderr" == *"stored before line 2: 1 event"* ]]
	[ "$(log_all | envelope)" = "1 a 1" ]
}

@test "a per-line expect counts the events before it in the batch" {
	printf '%s\n' '{"stream":"a","type":"T","expect":"none"}' \
		'{"stream":"a","type":"T","expect":1}' \
		'{"stream":"b","type":"T","expect":0}' \
		'{"stream":"a","type":"T","expect":"exists"}' \
		'{"stream":"b","type":"T","expect":1}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$(envelope <<<"$output")" "1 a 1
2 a 2
3 b 1
4 a 3
5 b 2"
	printf '%s\n' '{"stream":"a","type":"T","expect":3}' '{"stream":"a","type":"T","expect":3}' >"$TMP/in"
	run -5 --separate-stderr es-append <"$TMP/in"
	assert_equal "$stderr" "es-append: line 2: stream 'a': expected version 3, actual 4"
	assert_equal "$(log_all | wc -l)" 5
}

@test "a per-line expect takes precedence over --expect" {
	append "$(ev a T)"
	printf '%s\n' '{"stream":"a","type":"T","expect":1}' >"$TMP/in"
	run -0 --separate-stderr es-append --expect none <"$TMP/in"
	assert_equal "$(envelope <<<"$output")" "2 a 2"
}

@test "concurrent writers expecting the same version: exactly one wins" {
	append "$(ev a T)"
	ev a T >"$TMP/in"
	for i in 1 2 3 4 5 6; do
		(
			set +e # the losers exit 5
			es-append -q --expect 1 "$TMP/in" 2>/dev/null
			echo $? >"$TMP/rc.$i"
		) &
	done
	wait
	assert_equal "$(cat "$TMP"/rc.* | sort | tr '\n' ' ')" "0 5 5 5 5 5 "
	assert_equal "$(log_all | envelope)" "1 a 1
2 a 2"
}

# --- idempotent retries -------------------------------------------------------

@test "re-appending a stored id stores nothing, prints the stored line, exits 0" {
	printf '%s\n' '{"stream":"a","type":"T","id":"x1","data":{"n":1}}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	local first=$output before
	before=$(log_sum)
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$output" "$first"
	assert_equal "$stderr" "es-append: line 1: event id 'x1' already stored in stream 'a'"
	assert_equal "$(log_sum)" "$before"
	run -0 --separate-stderr es-append -q <"$TMP/in"
	assert_output ""
	assert_equal "$stderr" ""
}

@test "a retry of a batch whose expectation now fails still succeeds" {
	printf '%s\n' '{"stream":"a","type":"T","id":"x1","expect":"none"}' \
		'{"stream":"a","type":"T","id":"x2","expect":1}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	local first=$output
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$output" "$first"
	assert_equal "$(log_all | wc -l)" 2
	ev a T | sed 's/}$/,"id":"x1"}/' >"$TMP/in1"
	run -0 --separate-stderr es-append --expect none <"$TMP/in1"
	assert_equal "$output" "${first%%$'\n'*}"
}

@test "an id repeated in one batch is stored once and printed twice" {
	printf '%s\n' '{"stream":"a","type":"T","id":"x"}' '{"stream":"a","type":"U","id":"x"}' "$(ev a V)" >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "${#lines[@]}" 3
	assert_equal "${lines[1]}" "${lines[0]}"
	assert_equal "$stderr" "es-append: line 2: event id 'x' already stored in stream 'a'"
	assert_equal "$(log_all | envelope)" "1 a 1
2 a 2"
}

@test "ids are scoped by stream" {
	printf '%s\n' '{"stream":"a","type":"T","id":"x"}' '{"stream":"b","type":"T","id":"x"}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$stderr" ""
	assert_equal "$(log_all | envelope)" "1 a 1
2 b 1"
}

@test "a batch of old and new ids stores the new ones; its last stored record ends it" {
	printf '%s\n' '{"stream":"a","type":"T","id":"x"}' >"$TMP/in"
	run -0 --separate-stderr es-append -q <"$TMP/in"
	printf '%s\n' '{"stream":"a","type":"T","id":"y"}' '{"stream":"a","type":"T","id":"x"}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$(envelope <<<"$output")" "2 a 2
1 a 1"
	assert_equal "$stderr" "es-append: line 2: event id 'x' already stored in stream 'a'"
	run -1 grep -c '"more":true' "$ES_STORE/log/$SEG1"
}

# --- --batch-size -------------------------------------------------------------

@test "--batch-size N commits chunks of N, each marked as a batch of its own" {
	printf '%s\n' "$(ev a T)" "$(ev b T)" "$(ev a T)" "$(ev b T)" "$(ev a T)" >"$TMP/in"
	run -0 --separate-stderr es-append --batch-size 2 <"$TMP/in"
	assert_equal "${#lines[@]}" 5
	assert_equal "$output" "$(cat "$ES_STORE/log/$SEG1")"
	run -0 grep -n -o '"more":true' "$ES_STORE/log/$SEG1"
	assert_output '1:"more":true
3:"more":true'
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "a conflict in a later chunk keeps the chunks before it and says so" {
	printf '%s\n' "$(ev a T)" "$(ev a T)" '{"stream":"a","type":"T","expect":0}' "$(ev a T)" >"$TMP/in"
	run -5 --separate-stderr es-append --batch-size 2 <"$TMP/in"
	assert_equal "$(envelope <<<"$output")" "1 a 1
2 a 2"
	assert_equal "$stderr" "es-append: line 3: stream 'a': expected version 0, actual 2
es-append: stored before line 3: 2 events"
	assert_equal "$output" "$(cat "$ES_STORE/log/$SEG1")"
}

@test "'stored before line N' counts the events stored, not the retries" {
	append '{"stream":"m","type":"T","id":"pre"}'
	printf '%s\n' '{"stream":"m","type":"T","id":"k"}' '{"stream":"m","type":"T","id":"pre"}' \
		'{"stream":"m","type":"T","id":"z","expect":0}' >"$TMP/in"
	run -5 --separate-stderr es-append -q --batch-size 2 <"$TMP/in"
	assert_equal "$stderr" "es-append: line 3: stream 'm': expected version 0, actual 2
es-append: stored before line 3: 1 event (the others were stored already)"
	assert_equal "$(log_all | wc -l)" 2
}

@test "a --batch-size far above the input's size is one batch" {
	run -0 --separate-stderr es-append --batch-size 100000000000 <<<"$(ev a T)"
	assert_equal "$(envelope <<<"$output")" "1 a 1"
}

@test "--expect with --batch-size is checked once, before the first chunk" {
	printf '%s\n' "$(ev a T)" "$(ev a T)" "$(ev a T)" >"$TMP/in"
	run -0 --separate-stderr es-append -q --expect none --batch-size 1 <"$TMP/in"
	assert_equal "$stderr" ""
	assert_equal "$(log_all | envelope)" "1 a 1
2 a 2
3 a 3"
}

@test "--batch-size: a later chunk knows the ids and versions of earlier ones and of the store" {
	# "old" has history with id o1; "new" is created by this run
	printf '%s\n' '{"stream":"old","type":"T","id":"o1"}' | es-append -q
	printf '%s\n' '{"stream":"new","type":"T","id":"n1"}' \
		'{"stream":"old","type":"T","id":"o2"}' \
		'{"stream":"new","type":"T","id":"n1"}' \
		'{"stream":"old","type":"T","id":"o1"}' \
		'{"stream":"new","type":"T","id":"n2","expect":1}' \
		'{"stream":"old","type":"T","id":"o2","expect":2}' \
		'{"stream":"new","type":"T","expect":2}' >"$TMP/in"
	local first6="2 new 1
3 old 2
2 new 1
1 old 1
4 new 2
3 old 2"
	run -0 --separate-stderr es-append --batch-size 2 <"$TMP/in"
	# each duplicate prints the line stored first, and stores nothing
	assert_equal "$(envelope <<<"$output")" "$first6
5 new 3"
	assert_equal "$stderr" "es-append: line 3: event id 'n1' already stored in stream 'new'
es-append: line 4: event id 'o1' already stored in stream 'old'
es-append: line 6: event id 'o2' already stored in stream 'old'"
	assert_equal "$(log_all | envelope)" "1 old 1
2 new 1
3 old 2
4 new 2
5 new 3"
	# and a later run still finds them (through the index): every line
	# with an id is a duplicate, expectations and all
	head -n 6 "$TMP/in" >"$TMP/retry"
	run -0 --separate-stderr es-append --batch-size 1 <"$TMP/retry"
	assert_equal "$(envelope <<<"$output")" "$first6"
	assert_equal "$(log_all | wc -l)" 5
}

# --- output and I/O errors ----------------------------------------------------

@test "stdout on a full disk (/dev/full) exits 4 with a write error" {
	ev a T >"$TMP/in"
	run -4 --separate-stderr bash -c 'es-append "$1" >/dev/full' _ "$TMP/in"
	assert_equal "$stderr" "es-append: write error on standard output: No space left on device"
}

@test "closed stdout exits 4 when there is something to print, 0 with -q" {
	ev a T >"$TMP/in"
	run -4 --separate-stderr bash -c 'es-append "$1" >&-' _ "$TMP/in"
	assert_equal "$stderr" "es-append: write error on standard output: Bad file descriptor"
	run -0 --separate-stderr bash -c 'es-append -q "$1" >&-' _ "$TMP/in"
	assert_equal "$stderr" ""
	assert_equal "$(log_all | envelope)" "1 a 1
2 a 2"
}

# closed_pipe CMD...: run CMD with its stdout a pipe that nobody reads
closed_pipe() {
	perl -e 'pipe(R, W) or die; close R; open(STDOUT, ">&W") or die; exec @ARGV' "$@"
}

@test "a reader gone between chunks ends the run quietly after the first chunk (SIGPIPE)" {
	for i in $(seq 1 30); do ev a T; done >"$TMP/in"
	run -141 --separate-stderr closed_pipe es-append --batch-size 10 "$TMP/in"
	assert_equal "$stderr" ""
	assert_equal "$(log_all | wc -l)" 10
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "a failing write stores nothing: 'not stored', exit 4, log unchanged" {
	append "$(ev a T)"
	local before
	before=$(log_sum)
	printf '%s\n' "$(ev a T)" "$(ev a T)" >"$TMP/in"
	for fault in write:1 write:2; do
		quiet_index
		ES_FAULT=$fault run -4 --separate-stderr es-append "$TMP/in"
		assert_output ""
		assert_equal "$stderr" "es-append: not stored: write failed: Input/output error"
		assert_equal "$(log_sum)" "$before"
	done
	quiet_index
	ES_FAULT=enospc:1 run -4 --separate-stderr es-append "$TMP/in"
	assert_equal "$stderr" "es-append: not stored: write failed: No space left on device"
	assert_equal "$(log_sum)" "$before"
	run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "2 a 2
3 a 3"
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "regression: past a file size limit (ulimit -f) nothing is stored, exit 4, not killed by SIGXFSZ" {
	append "$(ev a T)"
	local before
	before=$(log_sum)
	for i in $(seq 3000); do ev a T '{"x":"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}'; done >"$TMP/in"
	run -4 --separate-stderr bash -c 'ulimit -f 100 && es-append "$1"' _ "$TMP/in"
	assert_output ""
	assert_equal "$stderr" "es-append: not stored: write failed: File too large"
	assert_equal "$(log_sum)" "$before"
	run -0 --separate-stderr es-verify
}

@test "regression: a store path too long for its files' names is refused before anything is written" {
	local d=$TMP/p
	while [ ${#d} -lt 4000 ]; do d=$d/$(printf 'a%.0s' $(seq 200)); done
	mkdir -p "$d"
	ev a T >"$TMP/in"
	run -4 --separate-stderr es-append -d "$d/s" "$TMP/in"
	assert_output ""
	[[ $stderr == "es-append: not stored: store '$TMP/"*"...': path too long ("*" bytes; at most 3967)" ]]
	[ ! -e "$d/s" ]
}

@test "a failing fdatasync stores nothing and is not retried" {
	append "$(ev a T)"
	local before
	before=$(log_sum)
	ev a T >"$TMP/in"
	ES_FAULT=fdatasync:1 run -4 --separate-stderr es-append "$TMP/in"
	assert_output ""
	assert_equal "$stderr" "es-append: not stored: fdatasync failed: Input/output error"
	assert_equal "$(log_sum)" "$before"
	run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "2 a 2"
}

@test "when the cut-back after a failed write fails too, the next append cuts the rest" {
	append "$(ev a T)"
	printf '%s\n' "$(ev a T)" "$(ev a T)" "$(ev a T)" >"$TMP/in"
	quiet_index
	ES_FAULT=write:2,ftruncate:1 run -4 --separate-stderr es-append "$TMP/in"
	assert_output ""
	assert_equal "$stderr" "es-append: not stored: write failed: Input/output error"
	append "$(ev b T)"
	assert_equal "$(log_all | envelope)" "1 a 1
2 b 1"
	[ "$(ls "$ES_STORE/quarantine" | wc -l)" -eq 1 ]
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "events reported 'not stored' never appear later, even when the cut-back fails" {
	append "$(ev a T)"
	printf '%s\n' "$(ev a T)" "$(ev a T)" >"$TMP/in"
	ES_FAULT=fdatasync:1,ftruncate:1 run -4 --separate-stderr es-append "$TMP/in"
	assert_output ""
	assert_equal "$stderr" "es-append: not stored: fdatasync failed: Input/output error"
	run -0 cat "$ES_STORE/undo"
	assert_output "1 $(head -n 1 "$ES_STORE/log/$SEG1" | wc -c)"
	ev b T >"$TMP/in"
	run -0 --separate-stderr es-append "$TMP/in"
	[[ $stderr == "es-append: recovered a torn tail: "*" bytes moved to $ES_STORE/quarantine/" ]]
	[ ! -e "$ES_STORE/undo" ]
	assert_equal "$(log_all | envelope)" "1 a 1
2 b 1"
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "when even the note of a failed batch fails, es-append says it may be in the log" {
	append "$(ev a T)"
	printf '%s\n' "$(ev a T)" "$(ev a T)" >"$TMP/in"
	# write 3 is the note's, after the batch's two halves
	quiet_index
	ES_FAULT=fdatasync:1,ftruncate:1,write:3 run -4 --separate-stderr es-append "$TMP/in"
	assert_output ""
	assert_equal "$stderr" "es-append: not acknowledged: fdatasync failed: Input/output error; cutting the batch back failed too, so it may still be in the log"
	[ ! -e "$ES_STORE/undo" ]
	append "$(ev b T)"
	log_all | envelope | gapless
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "a big chunk that fails while its keys go into the index: earlier chunks kept, index right" {
	# chunks of 1,000 events of ~400 bytes: each over the size from which
	# a helper thread writes and syncs the log while the index is filled
	local pad i before
	pad=$(printf '%0300d' 0)
	for i in $(seq 1 3000); do
		printf '{"stream":"s%d","type":"T","id":"e%d","data":{"i":%d,"pad":"%s"}}\n' \
			$((i % 7)) "$i" "$i" "$pad"
	done >"$TMP/in"
	# the second chunk's fdatasync, and its halves' writes (writes 1 and 2
	# make the store)
	for fault in fdatasync:2 write:5 enospc:6; do
		rm -rf "$ES_STORE"
		ES_FAULT=$fault run -4 --separate-stderr es-append -q --batch-size 1000 "$TMP/in"
		[[ $stderr == "es-append: not stored: "*"
es-append: stored before $TMP/in: line 1001: 1000 events" ]]
		assert_equal "$(log_all | wc -l)" 1000
		run -0 es-verify -q
		# the whole input again: the first chunk's events are already
		# stored (their ids), the rest goes on where it ended
		run -0 --separate-stderr es-append --batch-size 1000 "$TMP/in"
		assert_equal "$(wc -l <<<"$output")" 3000
		assert_equal "$(grep -c 'already stored' <<<"$stderr")" 1000
		assert_equal "$(log_all | wc -l)" 3000
		# and again: every event a duplicate (the run's ids learnt)
		es-append -q --batch-size 1000 "$TMP/in" 2>/dev/null
		assert_equal "$(log_all | wc -l)" 3000
		log_all | envelope | gapless
		run -0 es-verify -q
		run -0 es-replay --stream s3 --events
		assert_equal "$(wc -l <<<"$output")" 429
	done
	chain_fast "$ES_STORE"/log/*.ndjson
}

@test "the writers' lock is held for the whole append" {
	append "$(ev a T)"
	ev a T >"$TMP/in"
	exec 9>"$ES_STORE/lock"
	flock 9
	(
		es-append -q "$TMP/in"
		echo $? >"$TMP/done"
	) &
	sleep 0.5
	[ ! -e "$TMP/done" ]
	assert_equal "$(log_all | wc -l)" 1
	flock -u 9
	exec 9>&-
	wait
	assert_equal "$(cat "$TMP/done")" 0
	assert_equal "$(log_all | envelope)" "1 a 1
2 a 2"
}

# --- segments -----------------------------------------------------------------

@test "segments roll at segment_size, are named by their first seq, never split a batch" {
	append "$(ev a T)"
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	for i in $(seq 30); do
		append "$(ev a T)" "$(ev b T '{"i":'$i'}')" "$(ev a T)"
	done
	local segs f first
	segs=$(ls "$ES_STORE/log" | wc -l)
	[ "$segs" -ge 4 ]
	for f in "$ES_STORE"/log/*.ndjson; do
		[[ ${f##*/} =~ ^[0-9]{20}\.ndjson$ ]]
		first=$(head -n 1 "$f" | envelope | cut -d' ' -f1)
		assert_equal "${f##*/}" "$(printf '%020d.ndjson' "$first")"
		[ "$(wc -c <"$f")" -le 4096 ]
		run -1 grep -q '"more":true,"hash":"[0-9a-f]*"}$' <(tail -n 1 "$f")
	done
	log_all | envelope | gapless
	assert_equal "$(log_all | wc -l)" 91
	chain_ok "$ES_STORE"/log/*.ndjson
}

@test "a batch larger than segment_size fills a new segment of its own" {
	append "$(ev a T)"
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	for i in $(seq 40); do ev big T; done >"$TMP/in"
	run -0 --separate-stderr es-append -q "$TMP/in"
	run -0 ls "$ES_STORE/log"
	assert_output "$SEG1
00000000000000000002.ndjson"
	[ "$(wc -c <"$ES_STORE/log/00000000000000000002.ndjson")" -gt 4096 ]
	append "$(ev a T)"
	run -0 ls "$ES_STORE/log"
	assert_line --index 2 "00000000000000000042.ndjson"
	chain_ok "$ES_STORE"/log/*.ndjson
}

@test "segment_size below 4096 is ignored" {
	append "$(ev a T)"
	sed -i 's/"segment_size":[0-9]*/"segment_size":100/' "$ES_STORE/store.json"
	append "$(ev a T)" "$(ev a T)"
	append "$(ev a T)"
	run -0 ls "$ES_STORE/log"
	assert_output "$SEG1"
	# es-verify agrees: a setting out of range, not damage
	run -0 --separate-stderr es-verify
	[[ $stderr == "es-verify: warning: store.json: \"segment_size\" is not an integer of at least 4096: ignored, segments are sealed at the default 64 MiB"$'\n'"es-verify: ok: 4 records, "* ]]
}

# --- the index and recovery ---------------------------------------------------

@test "deleting index/ loses nothing: versions and ids carry on" {
	printf '%s\n' '{"stream":"a","type":"T","id":"x"}' "$(ev b T)" "$(ev a T)" >"$TMP/in"
	run -0 --separate-stderr es-append -q <"$TMP/in"
	rm -rf "$ES_STORE/index"
	append "$(ev a T)" "$(ev c T)" "$(ev b T)"
	assert_equal "$(log_all | envelope)" "1 a 1
2 b 1
3 a 2
4 a 3
5 c 1
6 b 2"
	rm -rf "$ES_STORE/index"
	printf '%s\n' '{"stream":"a","type":"T","id":"x"}' >"$TMP/in"
	run -0 --separate-stderr es-append <"$TMP/in"
	assert_equal "$(envelope <<<"$output")" "1 a 1"
	assert_equal "$stderr" "es-append: line 1: event id 'x' already stored in stream 'a'"
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "deleting index/ across several segments loses nothing" {
	append "$(ev a T)"
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	for i in $(seq 25); do append "$(ev a T)" "$(ev b T)"; done
	rm -rf "$ES_STORE/index"
	append "$(ev a T)" "$(ev b T)"
	[ "$(ls "$ES_STORE/log" | wc -l)" -ge 3 ]
	log_all | envelope | gapless
	assert_equal "$(log_all | envelope | tail -n 2)" "52 a 27
53 b 26"
}

@test "a torn last line is cut into quarantine/ on the next append" {
	append "$(ev a T)" "$(ev a T)"
	local size
	size=$(wc -c <"$ES_STORE/log/$SEG1")
	printf '{"seq":3,"stream":"a","ver' >>"$ES_STORE/log/$SEG1"
	ev a T >"$TMP/in"
	run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "3 a 3"
	assert_equal "$stderr" "es-append: recovered a torn tail: 26 bytes moved to $ES_STORE/quarantine/"
	run -0 ls "$ES_STORE/quarantine"
	[[ $output =~ ^00000000000000000001\.ndjson\.$size\.[0-9]{16}\.torn$ ]]
	run -0 cat "$ES_STORE/quarantine/$output"
	assert_output '{"seq":3,"stream":"a","ver'
	log_all | envelope | gapless
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "a batch without its last record is cut whole into quarantine/" {
	append "$(ev a T)"
	cp -a "$ES_STORE" "$TMP/twin"
	printf '%s\n' "$(ev a T)" "$(ev b T)" "$(ev a T)" >"$TMP/in"
	ES_STORE="$TMP/twin" run -0 --separate-stderr es-append "$TMP/in"
	local partial size
	partial=$(printf '%s\n' "${lines[0]}" "${lines[1]}")
	size=$(wc -c <"$ES_STORE/log/$SEG1")
	printf '%s\n' "$partial" >>"$ES_STORE/log/$SEG1"
	ev c T >"$TMP/in"
	run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "2 c 1"
	[[ $stderr == "es-append: recovered a torn tail: $((${#partial} + 1)) bytes moved to "* ]]
	run -0 cat "$ES_STORE"/quarantine/00000000000000000001.ndjson.$size.*.torn
	assert_output "$partial"
	log_all | envelope | gapless
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "garbage lines after the last batch are cut, even with records after them" {
	append "$(ev a T)"
	cp -a "$ES_STORE" "$TMP/twin"
	ES_STORE="$TMP/twin" append "$(ev a T)"
	printf 'garbage\n' >>"$ES_STORE/log/$SEG1"
	tail -n 1 "$TMP/twin/log/$SEG1" >>"$ES_STORE/log/$SEG1"
	append "$(ev b T)"
	assert_equal "$(log_all | envelope)" "1 a 1
2 b 1"
	[ "$(cat "$ES_STORE"/quarantine/*.torn | wc -l)" -eq 2 ]
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "a crash in the middle of a write is cut on the next append" {
	append "$(ev a T)"
	printf '%s\n' "$(ev a T)" "$(ev a T)" "$(ev a T)" >"$TMP/in"
	ES_CRASH=mid-write:1 run -137 --separate-stderr es-append "$TMP/in"
	assert_output ""
	[ "$(wc -c <"$ES_STORE/log/$SEG1")" -gt "$(head -n 1 "$ES_STORE/log/$SEG1" | wc -c)" ]
	append "$(ev b T)"
	assert_equal "$(log_all | envelope)" "1 a 1
2 b 1"
	[ "$(ls "$ES_STORE/quarantine" | wc -l)" -eq 1 ]
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "records synced but not indexed before a crash are indexed, not cut" {
	append "$(ev a T)"
	printf '%s\n' '{"stream":"a","type":"T","id":"r1"}' '{"stream":"b","type":"T","id":"r2"}' >"$TMP/in"
	ES_CRASH=after-sync:1 run -137 --separate-stderr es-append "$TMP/in"
	assert_output ""
	# the retry finds both events stored: exactly once
	run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "2 a 2
3 b 1"
	assert_equal "$(ls "$ES_STORE/quarantine" | wc -l)" 0
	append "$(ev a T)"
	assert_equal "$(log_all | envelope)" "1 a 1
2 a 2
3 b 1
4 a 3"
	chain_ok "$ES_STORE/log/$SEG1"
}

# --- bulk runs: the index synced once (es-store(5), "The index") -----------

@test "a run of several chunks syncs the index once, at the end, and leaves no note" {
	for i in $(seq 6); do ev "s$((i % 3))" T; done >"$TMP/in"
	run -0 --separate-stderr es-append -q --batch-size 2 "$TMP/in"
	[ ! -e "$ES_STORE/index/unsynced" ]
	run -0 --separate-stderr es-verify
	assert_equal "${#stderr_lines[@]}" 1
	[[ "$stderr" == "es-verify: ok: 6 records, "* ]]
	command -v strace >/dev/null || skip "strace is not installed: the sync count is not checked"
	# index/data.mdb: one fdatasync for three chunks (the log: one each)
	ev s9 T >>"$TMP/in"
	# (LeakSanitizer cannot run under ptrace: off for sanitizer builds)
	ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=fdatasync,openat -o "$TMP/trace" \
		es-append -q --batch-size 3 "$TMP/in"
	fd=$(sed -n 's/.*openat(.*index\/data\.mdb", O_RDWR.* = \([0-9]*\)$/\1/p' "$TMP/trace")
	[ -n "$fd" ]
	# after the note is written: the one sync at the end
	assert_equal "$(sed -n '/index\/unsynced/,$p' "$TMP/trace" | grep -c "fdatasync($fd)")" 1
}

@test "a bulk run killed before its sync leaves a note the next writer settles" {
	for i in $(seq 6); do ev "s$((i % 3))" T; done >"$TMP/in"
	ES_CRASH=after-index:2 run -137 --separate-stderr es-append --batch-size 2 "$TMP/in"
	assert_equal "${#lines[@]}" 2 # the first chunk was acknowledged
	[ -e "$ES_STORE/index/unsynced" ]
	# the second chunk was durable and indexed, only not acknowledged; a
	# reader of this boot uses the index as it is (whole in the page cache)
	run -0 es-replay --events --stream s1
	assert_equal "$(envelope <<<"$output")" "1 s1 1
4 s1 2"
	quiet_index
	append "$(ev s1 T)"
	[ ! -e "$ES_STORE/index/unsynced" ]
	assert_equal "$(log_all | envelope)" "1 s1 1
2 s2 1
3 s0 1
4 s1 2
5 s1 3"
	run -0 --separate-stderr es-verify
	ES_CRASH=before-unsynced:1 run -137 --separate-stderr es-append --batch-size 1 "$TMP/in"
	[ -e "$ES_STORE/index/unsynced" ]
	quiet_index
	append "$(ev s1 T)"
	[ ! -e "$ES_STORE/index/unsynced" ]
	run -0 --separate-stderr es-verify
	assert_equal "$(log_all | wc -l)" 12
}

@test "a bulk run whose final index sync fails never retries it: the index is rebuilt" {
	command -v strace >/dev/null || skip "strace is not installed: no way to fail LMDB's fdatasync"
	for i in $(seq 6); do ev "s$((i % 3))" T; done >"$TMP/in"
	append "$(ev s0 T)"
	# fdatasync calls: the note (file), each chunk's log (3), then the index
	ASAN_OPTIONS=detect_leaks=0 run -0 --separate-stderr strace -f -o /dev/null \
		-e trace=fdatasync -e inject=fdatasync:error=EIO:when=4 \
		es-append -q --batch-size 2 "$TMP/in"
	[[ "$stderr" == *"warning: "*"(the events are stored; the index will be rebuilt)"* ]]
	assert_equal "$(cat "$ES_STORE/index/unsynced")" "sync-failed"
	# it reads as an earlier boot: not used, rebuilt by the next writer
	run -0 --separate-stderr es-verify
	[[ "$stderr" == *"not synced before the machine went down"* ]]
	append "$(ev s1 T)"
	[ ! -e "$ES_STORE/index/unsynced" ]
	run -0 --separate-stderr es-verify
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "$(log_all | envelope | tail -n 1)" "8 s1 3"
}

@test "a bulk run commits its index once, at the end; when that commit fails the index is rebuilt" {
	command -v strace >/dev/null || skip "strace is not installed: no way to fail LMDB's writes"
	for i in $(seq 6); do ev "s$((i % 3))" T; done >"$TMP/in"
	append "$(ev s0 T)"
	# the chunks' index writes wait in one held transaction, committed
	# once at the end: one write of LMDB's meta page (pages 0 and 1)
	ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=pwrite64,openat -o "$TMP/trace" \
		es-append -q --batch-size 2 "$TMP/in"
	fd=$(sed -n 's/.*openat(.*index\/data\.mdb", O_RDWR.* = \([0-9]*\)$/\1/p' "$TMP/trace")
	[ -n "$fd" ]
	assert_equal "$(grep "pwrite64($fd," "$TMP/trace" | sed 's/.*, \([0-9]*\)) *= .*/\1/' |
		awk '$1 < 8192' | wc -l)" 1
	run -0 --separate-stderr es-verify
	assert_equal "${#stderr_lines[@]}" 1
	# that one commit fails: the events are stored, the index is not
	# trusted and the next writer rebuilds it
	ASAN_OPTIONS=detect_leaks=0 run -0 --separate-stderr strace -f -o /dev/null \
		-e trace=pwrite64,writev -e inject=pwrite64,writev:error=EIO:when=1 \
		es-append -q --batch-size 2 "$TMP/in"
	[[ "$stderr" == *"warning: "*"(the events are stored; the index will be rebuilt)"* ]]
	assert_equal "$(cat "$ES_STORE/index/unsynced")" "sync-failed"
	append "$(ev s1 T)"
	[ ! -e "$ES_STORE/index/unsynced" ]
	run -0 --separate-stderr es-verify
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "$(log_all | wc -l)" 14
	run -0 es-replay --events --stream s1
	assert_equal "$(envelope <<<"$output" | wc -l)" 5
}

@test "a note from an earlier boot: the index may be torn, so nobody trusts it and the next writer rebuilds it" {
	for i in $(seq 6); do ev "s$((i % 3))" T; done >"$TMP/in"
	es-append -q --batch-size 2 "$TMP/in"
	cp -a "$ES_STORE/index" "$TMP/index.good"
	# as a power loss may leave it: a note from another boot, and pages
	# that do not match (here: a stream's version made up)
	printf 'not-this-boot\n' >"$ES_STORE/index/unsynced"
	printf 'garbage' | dd of="$ES_STORE/index/data.mdb" bs=1 seek=20000 conv=notrunc 2>/dev/null
	run -0 --separate-stderr es-verify
	assert_equal "$(grep -c 'not synced before the machine went down' <<<"$stderr")" 1
	# a reader does not use it: it rebuilds it under the lock, or scans
	run -0 es-replay --events --stream s2
	assert_equal "$(envelope <<<"$output")" "2 s2 1
5 s2 2"
	[ ! -e "$ES_STORE/index/unsynced" ]
	printf 'not-this-boot\n' >"$ES_STORE/index/unsynced"
	append "$(ev s2 T)"
	[ ! -e "$ES_STORE/index/unsynced" ]
	assert_equal "$(log_all | envelope | tail -n 1)" "7 s2 3"
	run -0 --separate-stderr es-verify
	assert_equal "${#stderr_lines[@]}" 1
	[[ "$stderr" == "es-verify: ok: 7 records, "* ]]
}

@test "a torn batch at the start of a new segment is cut and the segment reused" {
	append "$(ev a T)"
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	for i in $(seq 20); do ev a T; done >"$TMP/in"
	run -0 --separate-stderr es-append -q "$TMP/in"
	printf '%s\n' "$(ev b T)" "$(ev b T)" "$(ev b T)" >"$TMP/in"
	ES_CRASH=mid-write:1 run -137 --separate-stderr es-append "$TMP/in"
	[ -s "$ES_STORE/log/00000000000000000022.ndjson" ]
	append "$(ev c T)"
	run -0 ls "$ES_STORE/log"
	assert_output "$SEG1
00000000000000000002.ndjson
00000000000000000022.ndjson"
	run -0 ls "$ES_STORE/quarantine"
	[[ $output =~ ^00000000000000000022\.ndjson\.0\.[0-9]+\.torn$ ]]
	assert_equal "$(envelope <"$ES_STORE/log/00000000000000000022.ndjson")" "22 c 1"
	log_all | envelope | gapless
	chain_ok "$ES_STORE"/log/*.ndjson
}

@test "a torn tail found while rebuilding a deleted index is cut too" {
	append "$(ev a T)" "$(ev a T)"
	printf '{"seq":3,"str' >>"$ES_STORE/log/$SEG1"
	rm -rf "$ES_STORE/index"
	ev a T >"$TMP/in"
	run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "3 a 3"
	assert_equal "$stderr" "es-append: recovered a torn tail: 13 bytes moved to $ES_STORE/quarantine/"
	chain_ok "$ES_STORE/log/$SEG1"
}

@test "damage in a sealed segment stops the writer with exit 1 and changes nothing" {
	append "$(ev a T)"
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	for i in $(seq 25); do append "$(ev a T)" "$(ev b T)"; done
	[ "$(ls "$ES_STORE/log" | wc -l)" -ge 2 ]
	sed -i '3s/"type":"T"/"type":"X"/' "$ES_STORE/log/$SEG1"
	local off before
	off=$(head -n 2 "$ES_STORE/log/$SEG1" | wc -c)
	rm -rf "$ES_STORE/index"
	before=$(log_sum)
	ev a T >"$TMP/in"
	run -1 --separate-stderr es-append "$TMP/in"
	assert_output ""
	assert_equal "$stderr" "es-append: log/$SEG1: offset $off: seq 3: hash mismatch; not writing past it (es-verify tells more)"
	assert_equal "$(log_sum)" "$before"
	assert_equal "$(ls "$ES_STORE/quarantine" | wc -l)" 0
}

@test "regression: a sealed segment gone from log/ is damage: a retry of an event it held is not 'already stored'" {
	append "$(ev a T)"
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	for i in $(seq 40); do
		append "{\"stream\":\"s\",\"type\":\"T\",\"id\":\"id$i\",\"data\":{\"pad\":\"$(printf '%0200d' 0)\"}}"
	done
	local gone before
	gone=$(ls "$ES_STORE/log" | sed -n 2p)
	grep -q '"id":"id15"' "$ES_STORE/log/$gone"
	rm "$ES_STORE/log/$gone"
	before=$(log_sum)
	echo '{"stream":"s","type":"T","id":"id15"}' >"$TMP/in"
	for q in -q ""; do
		run -1 --separate-stderr es-append $q "$TMP/in"
		assert_output ""
		[[ $stderr == "es-append: log/"*": offset 0: seq "*": seq is not the next one: the segment before lost its end; not writing past it (es-verify tells more)" ]]
	done
	ev m T >"$TMP/in"
	run -1 --separate-stderr es-append -q "$TMP/in"
	assert_equal "$(log_sum)" "$before"
}

@test "regression: a damaged store.json is damage (exit 1), not bad input, and nothing is written" {
	append "$(ev a T)"
	local before
	before=$(log_sum)
	ev a T >"$TMP/in"
	for bad in '{"format":"es-store"' '{"format":"other","version":1}' '{"format":"es-store","version":99}'; do
		echo "$bad" >"$ES_STORE/store.json"
		run -1 --separate-stderr es-append "$TMP/in"
		assert_output ""
		[[ $stderr == "es-append: $ES_STORE/store.json: "* ]]
		assert_equal "$(log_sum)" "$before"
	done
}

@test "damage followed by valid records in the active segment is corruption, not a torn tail" {
	append "$(ev a T)" "$(ev a T)"
	append "$(ev a T)"
	append "$(ev a T)"
	sed -i '2s/"type":"T"/"type":"X"/' "$ES_STORE/log/$SEG1"
	rm -rf "$ES_STORE/index"
	local before off
	before=$(log_sum)
	off=$(head -n 1 "$ES_STORE/log/$SEG1" | wc -c)
	ev a T >"$TMP/in"
	run -1 --separate-stderr es-append "$TMP/in"
	assert_equal "$stderr" "es-append: log/$SEG1: offset $off: seq 2: hash mismatch; not writing past it (es-verify tells more)"
	assert_equal "$(log_sum)" "$before"
}

# --- single appends in quick succession (es-store(5), "The index") ---------

# verify_ok N: es-verify passes the store, N records, and says nothing else
verify_ok() {
	run -0 --separate-stderr es-verify
	assert_equal "${#stderr_lines[@]}" 1
	[[ "$stderr" == "es-verify: ok: $1 records, "* ]]
}

# sync_trace FILE: the fdatasync and fsync calls of an es-append traced into
# FILE (openat too), in order, one word each: "log" (the active segment),
# "index" (data.mdb) or "other" (the note, a directory)
sync_trace() {
	awk '
		/openat\(/ && / = [0-9]+$/ {
			fd = $NF
			if ($0 ~ /index\/data\.mdb", O_RDWR/) what[fd] = "index"
			else if ($0 ~ /log\/[0-9]+\.ndjson", O_RDWR\|O_APPEND/) what[fd] = "log"
			else what[fd] = "other"
		}
		/f(data)?sync\([0-9]+\)/ {
			match($0, /sync\([0-9]+\)/)
			fd = substr($0, RSTART + 5, RLENGTH - 6)
			printf "%s%s", (n++ ? " " : ""), (fd in what ? what[fd] : "other")
		}
		END { print "" }' "$1"
}

@test "single appends while the index is busy sync only the log; the note says so and readers trust the index" {
	command -v strace >/dev/null || skip "strace is not installed: the syncs are not counted"
	append "$(ev a T)"
	# data.mdb was written a moment ago: this writer makes the note first
	# (the note file and its directory), then syncs the log only
	ev a T >"$TMP/in"
	busy_index
	ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=fdatasync,fsync,openat -o "$TMP/trace" \
		es-append -q "$TMP/in"
	assert_equal "$(sync_trace "$TMP/trace")" "other other log"
	assert_equal "$(cat "$ES_STORE/index/unsynced")" "$(cat /proc/sys/kernel/random/boot_id)"
	# the next ones find the note: one sync each, the log's
	for s in b a c; do
		ev "$s" T >"$TMP/in"
		busy_index
		ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=fdatasync,fsync,openat -o "$TMP/trace" \
			es-append -q "$TMP/in"
		assert_equal "$(sync_trace "$TMP/trace")" "log"
	done
	[ -e "$ES_STORE/index/unsynced" ]
	# what the index says is right, and used: whole in the page cache
	run -0 es-replay --events --stream a
	assert_equal "$(envelope <<<"$output")" "1 a 1
2 a 2
4 a 3"
	verify_ok 5
}

@test "a writer that finds the index quiet syncs it and removes the note" {
	command -v strace >/dev/null || skip "strace is not installed: the syncs are not counted"
	append "$(ev a T)"
	busy_index
	append "$(ev a T)"
	[ -e "$ES_STORE/index/unsynced" ]
	quiet_index
	ev b T >"$TMP/in"
	ASAN_OPTIONS=detect_leaks=0 strace -f -e trace=fdatasync,fsync,openat -o "$TMP/trace" \
		es-append -q "$TMP/in"
	# the busy writers' commits, then the note's removal (the directory),
	# then this append as usual: the log, then its own index commit
	assert_equal "$(sync_trace "$TMP/trace")" "index other log index"
	[ ! -e "$ES_STORE/index/unsynced" ]
	verify_ok 3
}

@test "a busy single append killed after its index commit loses nothing" {
	append "$(ev a T)"
	busy_index
	append "$(ev a T)"
	[ -e "$ES_STORE/index/unsynced" ]
	ev a T >"$TMP/in"
	busy_index
	# killed once the batch is durable and indexed, before it is acknowledged
	ES_CRASH=after-index:1 run -137 --separate-stderr es-append "$TMP/in"
	assert_output ""
	busy_index
	append "$(ev a T)"
	[ -e "$ES_STORE/index/unsynced" ]
	assert_equal "$(log_all | envelope)" "1 a 1
2 a 2
3 a 3
4 a 4"
	run -0 --separate-stderr es-verify
	assert_equal "${#stderr_lines[@]}" 1
	quiet_index
	append "$(ev b T)"
	[ ! -e "$ES_STORE/index/unsynced" ]
	verify_ok 5
}

@test "busy single appends, then the machine goes down: the index is rebuilt, the log is whole" {
	append "$(ev a T)"
	for s in b a b a; do busy_index && append "$(ev "$s" T)"; done
	[ -e "$ES_STORE/index/unsynced" ]
	# as a power loss may leave it: the note from another boot, and pages
	# that were never written (here: garbage in the middle of data.mdb)
	printf 'not-this-boot\n' >"$ES_STORE/index/unsynced"
	printf 'garbage' | dd of="$ES_STORE/index/data.mdb" bs=1 seek=9000 conv=notrunc 2>/dev/null
	run -0 --separate-stderr es-verify
	assert_equal "$(grep -c 'not synced before the machine went down' <<<"$stderr")" 1
	ev a T >"$TMP/in"
	run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "6 a 4"
	# the rebuilt index starts synced: no note until it is busy again
	[ ! -e "$ES_STORE/index/unsynced" ]
	run -0 es-replay --events --stream b
	assert_equal "$(envelope <<<"$output")" "2 b 1
4 b 2"
	verify_ok 6
}

@test "when the note cannot be written, a busy single append syncs the index as usual" {
	append "$(ev a T)"
	ev a T >"$TMP/in"
	busy_index
	# write 1 is the note's (the batch's halves are writes 2 and 3)
	ES_FAULT=write:1 run -0 --separate-stderr es-append "$TMP/in"
	assert_equal "$(envelope <<<"$output")" "2 a 2"
	assert_equal "$stderr" ""
	[ ! -e "$ES_STORE/index/unsynced" ]
	run -0 ls -A "$ES_STORE/index"
	assert_output "data.mdb
lock.mdb"
	verify_ok 2
}

# --- concurrency --------------------------------------------------------------

teardown() {
	if [ -n "${SHM_DIR:-}" ]; then rm -rf "$SHM_DIR"; fi
}

@test "8 concurrent appenders x 200 batches lose nothing; seq and versions gapless" {
	local w b n=200
	# a sanitizer build starts each process several times slower: there the
	# point is memory errors, and 50 batches each will do
	if grep -q __asan_init "$(command -v es-append)"; then n=50; fi
	# on tmpfs when there is one: this is about the lock, not the disk
	if SHM_DIR=$(mktemp -d /dev/shm/es-append-bats.XXXXXX 2>/dev/null); then
		export ES_STORE="$SHM_DIR/store"
	fi
	for w in 1 2 3 4 5 6 7 8; do
		(
			for b in $(seq $n); do
				printf '{"stream":"w%d","type":"T","id":"w%d-%d-a"}\n{"stream":"shared","type":"T","id":"w%d-%d-b"}\n' \
					$w $w $b $w $b >"$TMP/in.$w"
				es-append "$TMP/in.$w" >>"$TMP/ack.$w" 2>>"$TMP/err.$w" ||
					echo "w$w batch $b: exit $?" >>"$TMP/fail"
			done
		) &
	done
	wait
	if [ -e "$TMP/fail" ]; then
		cat "$TMP/fail" "$TMP"/err.*
		false
	fi
	assert_equal "$(cat "$TMP"/err.*)" ""
	# every acknowledged line is in the log, and nothing else is
	assert_equal "$(log_all | wc -l)" $((16 * n))
	cmp <(sort "$TMP"/ack.*) <(log_all | sort)
	log_all | envelope | gapless
	assert_equal "$(log_all | envelope | grep -c ' shared ')" $((8 * n))
	# each batch is contiguous: its "-a" record is followed by its "-b"
	log_all | sed -E 's/.*"id":"(w[0-9]+-[0-9]+)-([ab])".*/\1 \2/' |
		awk '$2 == "a" { want = $1; next } $1 != want { print "split batch at " NR; exit 1 } { want = "" }'
	chain_fast "$ES_STORE"/log/*.ndjson
}

@test "regression: 'lock' removed while a writer holds it: the next writer still waits" {
	# A stale-lock clean-up (rm lock) while a writer held it let the next
	# writer lock a new file and append beside it: two events with one seq
	local a b
	echo '{"stream":"a","type":"T"}' | es-append -q
	echo '{"stream":"a","type":"T"}' | ES_STOP=writer-locked es-append -q &
	a=$!
	stopped "$a"
	rm "$ES_STORE/lock"
	echo '{"stream":"b","type":"T"}' | es-append -q &
	b=$!
	sleep 0.5
	# still waiting: nothing appended beside the writer that holds it
	kill -0 "$b"
	[ "$(cat "$ES_STORE"/log/*.ndjson | wc -l)" -eq 1 ]
	kill -CONT "$a"
	wait "$a"
	wait "$b"
	run -0 --separate-stderr es-verify
	[[ "$stderr" == *"ok: 3 records"* ]]
	run -0 --separate-stderr es-replay --events
	[ "$(jq -r .seq <<<"$output" | tr '\n' ' ')" = "1 2 3 " ]
	[ "$(jq -r .stream <<<"$output" | tr '\n' ' ')" = "a a b " ]
}

@test "regression: with several input files, messages about a line name its file" {
	# they said "line N" alone, which line 2 of which file?
	printf '%s\n' "$(ev a T)" >"$TMP/one"
	printf '%s\n' "$(ev b T)" '{"stream":"a","type":"T","expect":5}' >"$TMP/two"
	run -5 --separate-stderr es-append "$TMP/one" "$TMP/two"
	assert_equal "$stderr" "es-append: $TMP/two: line 2: stream 'a': expected version 5, actual 1"
	[ ! -e "$ES_STORE" ]
	# standard input among files is "line N", as when it is alone
	run -5 --separate-stderr es-append "$TMP/one" - <"$TMP/two"
	assert_equal "$stderr" "es-append: line 2: stream 'a': expected version 5, actual 1"
	# a later chunk's conflict, and what was stored before it
	run -5 --separate-stderr es-append -q --batch-size 2 "$TMP/one" "$TMP/two"
	assert_equal "$stderr" "es-append: $TMP/two: line 2: stream 'a': expected version 5, actual 1
es-append: stored before $TMP/two: line 2: 2 events"
	# a retried id
	printf '%s\n' '{"stream":"a","type":"T","id":"x"}' >"$TMP/three"
	run -0 es-append -q "$TMP/three"
	run -0 --separate-stderr es-append "$TMP/one" "$TMP/three"
	assert_equal "$stderr" "es-append: $TMP/three: line 1: event id 'x' already stored in stream 'a'"
	# --import-ts behind the store's last time
	printf '%s\n' '{"stream":"a","type":"T","ts":"2000-01-01T00:00:00Z"}' >"$TMP/four"
	run -3 --separate-stderr es-append --import-ts "$TMP/four"
	assert_equal "$stderr" "es-append: $TMP/four: line 1: \"ts\" is before the last stored ts $(log_all | tail -n 1 | jq -r .ts)"
}
