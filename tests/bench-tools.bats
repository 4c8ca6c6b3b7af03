#!/usr/bin/env bats
# scripts/bench-lib: timeit and fsync-loop, the tools scripts/bench measures
# with. What is checked is their arithmetic and their files, never a time.

bats_require_minimum_version 1.5.0

setup_file() {
	local lib="$BATS_TEST_DIRNAME/../scripts/bench-lib"
	export TOOLS="$BATS_FILE_TMPDIR"
	cc -std=c11 -O2 -Wall -Wextra -Werror -o "$TOOLS/timeit" "$lib/timeit.c" -lm
	cc -std=c11 -O2 -Wall -Wextra -Werror -o "$TOOLS/fsync-loop" "$lib/fsync-loop.c" -lm
}

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	TMP="$BATS_TEST_TMPDIR"
}

@test "timeit -S: runs, median, nearest-rank p50 and p99, min, max" {
	# 1..200 shuffled: median 100.5, printed as 100 (%.0f rounds half to
	# even); p50 is the 100th value, p99 the 198th
	seq 1 200 | shuf --random-source=<(yes) >"$TMP/n"
	run -0 "$TOOLS/timeit" -S <"$TMP/n"
	assert_output "200 100 100 198 1 200"
}

@test "timeit -S of one number" {
	run -0 "$TOOLS/timeit" -S <<<"42"
	assert_output "1 42 42 42 42 42"
}

@test "timeit -t writes every run's time, and -S of them gives its line back" {
	run -0 "$TOOLS/timeit" -n 7 -w 1 -t "$TMP/t" -- true
	line=$output
	assert_equal "$(wc -l <"$TMP/t")" 7
	run -0 "$TOOLS/timeit" -S <"$TMP/t"
	assert_output "$line"
}

@test "timeit: a failing command is an error, not a time" {
	run -1 "$TOOLS/timeit" -n 3 -- false
	assert_output --partial "exit status 1"
}

@test "fsync-loop -t: one time per pair, its file holds the lines it wrote" {
	run -0 "$TOOLS/fsync-loop" -n 5 -w 2 -s 64 -t "$TMP/t" "$TMP/f"
	line=$output
	assert_equal "$(wc -l <"$TMP/t")" 5
	# warm-ups are written too, but not timed
	assert_equal "$(wc -l <"$TMP/f")" 7
	assert_equal "$(wc -c <"$TMP/f")" $((7 * 64))
	run -0 "$TOOLS/timeit" -S <"$TMP/t"
	assert_output "$line"
}

@test "fsync-loop -1: one line, nothing printed; rounds append to the same file" {
	run -0 "$TOOLS/fsync-loop" -1 -s 100 "$TMP/f"
	assert_output ""
	run -0 "$TOOLS/fsync-loop" -1 -s 100 "$TMP/f"
	assert_equal "$(wc -l <"$TMP/f")" 2
	run -0 jq -c .n "$TMP/f"
	assert_output $'0\n0'
}

@test "fsync-loop: a bad size or no file is a usage error" {
	run -2 "$TOOLS/fsync-loop" -s 1 "$TMP/f"
	assert_output --partial "usage: fsync-loop"
	run -2 "$TOOLS/fsync-loop"
	assert_output --partial "usage: fsync-loop"
}
