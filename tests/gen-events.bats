#!/usr/bin/env bats
# scripts/gen-events: the seeded generator of the standard data set.

bats_require_minimum_version 1.5.0

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	GEN="$BATS_TEST_DIRNAME/../scripts/gen-events"
	TMP="$BATS_TEST_TMPDIR"
}

@test "the same seed gives byte-identical output" {
	"$GEN" -n 3000 -s 7 >"$TMP/a"
	"$GEN" -n 3000 -s 7 >"$TMP/b"
	run cmp "$TMP/a" "$TMP/b"
	assert_success
}

@test "another seed gives other output" {
	"$GEN" -n 3000 -s 7 >"$TMP/a"
	"$GEN" -n 3000 -s 8 >"$TMP/b"
	run cmp -s "$TMP/a" "$TMP/b"
	assert_failure
}

@test "-n 1000 writes exactly 1000 lines" {
	run -0 --separate-stderr "$GEN" -n 1000
	assert_equal "${#lines[@]}" 1000
	assert_equal "$stderr" ""
}

@test "-n 0 writes nothing" {
	run -0 --separate-stderr "$GEN" -n 0
	assert_output ""
}

@test "every line is one JSON object with the keys in the documented order" {
	"$GEN" -n 5000 -s 3 >"$TMP/ev"
	run -0 jq -e -n '
		[inputs] as $all | ($all | length) == 5000 and ($all | all(
			type == "object"
			and keys_unsorted == ["stream","type","id","ts","data","meta"]
			and (.meta | keys_unsorted) == ["correlation","causation","user"]
			and (.stream | test("^(order-[0-9]{6}|customer-[0-9]{5}|sku-[0-9]{4})$"))
			and (.data | type) == "object"))' "$TMP/ev"
	# one object per line: as many lines as objects
	run -0 wc -l <"$TMP/ev"
	assert_output 5000
}

@test "ids are UUIDv7-shaped and timestamps RFC 3339 with microseconds" {
	"$GEN" -n 3000 >"$TMP/ev"
	uuid='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
	run -0 jq -e -n --arg u "$uuid" '[inputs | (.id, .meta.correlation,
		.meta.causation | test($u)), (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$"))]
		| all' "$TMP/ev"
}

@test "timestamps never decrease and start at --start" {
	"$GEN" -n 5000 -s 11 --start 2026-03-01T08:00:00Z >"$TMP/ev"
	jq -r .ts "$TMP/ev" >"$TMP/ts"
	run -0 env LC_ALL=C sort -c "$TMP/ts"
	run -0 head -n 1 "$TMP/ts"
	assert_output 2026-03-01T08:00:00.000000Z
}

@test "event ids are unique" {
	"$GEN" -n 20000 -s 5 >"$TMP/ev"
	jq -r .id "$TMP/ev" | LC_ALL=C sort | LC_ALL=C uniq -d >"$TMP/dups"
	run -0 cat "$TMP/dups"
	assert_output ""
}

@test "prices and amounts have exactly two decimals" {
	"$GEN" -n 5000 >"$TMP/ev"
	run -0 grep -c '"price":' "$TMP/ev"
	run grep -Eo '"(price|amount|refund)":[^,}]*' "$TMP/ev"
	assert_success
	run grep -Ev '^"(price|amount|refund)":[0-9]+\.[0-9]{2}$' <<<"$output"
	assert_failure
}

@test "streams start plausibly and every order names its customer" {
	"$GEN" -n 5000 -s 2 >"$TMP/ev"
	run -0 jq -e -s '
		(group_by(.stream) | all(
			(.[0].stream | startswith("order-")) as $o
			| (.[0].stream | startswith("customer-")) as $c
			| if $o then .[0].type == "OrderCreated" and all(.data.customer | test("^customer-[0-9]{5}$"))
			  elif $c then .[0].type == "CustomerRegistered"
			  else true end))
		and (map(.stream | split("-")[0]) | unique) == ["customer","order","sku"]' "$TMP/ev"
}

@test "--streams sets the number of streams" {
	"$GEN" -n 2000 --streams 40 >"$TMP/ev"
	jq -r .stream "$TMP/ev" | sort -u >"$TMP/streams"
	run -0 wc -l <"$TMP/streams"
	assert_output 40
}

@test "output is valid UTF-8 and has some non-ASCII text" {
	"$GEN" -n 20000 >"$TMP/ev"
	run -0 iconv -f UTF-8 -t UTF-8 "$TMP/ev"
	run -0 grep -c -P '[^\x00-\x7f]' "$TMP/ev"
}

@test "a full disk is a write error, exit 4" {
	[ -w /dev/full ] || skip "no /dev/full"
	run -4 --separate-stderr sh -c '"$1" -n 1000 >/dev/full' sh "$GEN"
	assert_equal "$stderr" "gen-events: write error: No space left on device"
}

@test "a closed pipe ends quietly" {
	run -0 --separate-stderr bash -c '"$1" -n 100000 | head -n 1' bash "$GEN"
	assert_equal "$stderr" ""
	assert_equal "${#lines[@]}" 1
}

@test "bad usage exits 2 with a message and the usage" {
	run -2 --separate-stderr "$GEN" --bogus
	assert_output ""
	assert_equal "${stderr_lines[0]}" "gen-events: unknown option '--bogus'"
	assert_equal "${stderr_lines[1]}" "usage: gen-events [-n COUNT] [-s SEED] [--streams K] [--start TIME]"
	run -2 --separate-stderr "$GEN" -n 12x
	run -2 --separate-stderr "$GEN" -n
	run -2 --separate-stderr "$GEN" --streams 0
	run -2 --separate-stderr "$GEN" --start 2026-02-30T00:00:00Z
	run -2 --separate-stderr "$GEN" extra
}

@test "--help prints the usage on stdout" {
	run -0 --separate-stderr "$GEN" --help
	assert_line --index 0 "usage: gen-events [-n COUNT] [-s SEED] [--streams K] [--start TIME]"
	assert_equal "$stderr" ""
}
