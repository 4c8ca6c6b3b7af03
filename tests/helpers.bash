# Shared setup for the bats suites. Programs come from $ES_BIN (set by
# `make check`; defaults to ./build), each test gets a fresh temp dir with
# ES_STORE pointing into it.
bats_load_library bats-support
bats_load_library bats-assert

ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
ES_BIN="${ES_BIN:-$ROOT/build}"
PATH="$ES_BIN:$PATH"
export PATH

setup() {
	TMP="$BATS_TEST_TMPDIR"
	export ES_STORE="$TMP/store"
	cd "$TMP" || return 1
	if declare -F local_setup >/dev/null; then local_setup; fi
}

# ev STREAM TYPE [DATA-JSON]: one input event line
ev() {
	printf '{"stream":"%s","type":"%s","data":%s}\n' "$1" "$2" "${3:-{\}}"
}

# append LINES...: append input lines given as arguments, quietly
append() {
	printf '%s\n' "$@" | es-append -q
}

# quiet_index: the index as a writer finds it when nobody has written for a
# while (data.mdb not written in the last second), so es-append syncs its
# index commit rather than go on under index/unsynced (es-store(5), "The
# index"); for tests that count a single append's writes and syncs.
quiet_index() {
	touch -d "@$(($(date +%s) - 5))" "$ES_STORE/index/data.mdb"
}

# busy_index: the index as a writer finds it in a burst of appends (data.mdb
# written a moment ago), so es-append leaves its index commit unsynced under
# index/unsynced; set just before the run, so that a slow machine cannot
# make the test pass through the other case.
busy_index() {
	touch "$ES_STORE/index/data.mdb"
}

# seg: path of the only (or last) log segment
seg() {
	ls "$ES_STORE"/log/*.ndjson | tail -n 1
}

# chain_ok FILE...: recompute every record's hash with sha256sum alone
chain_ok() {
	local prev=0000000000000000000000000000000000000000000000000000000000000000 line body want got
	while IFS= read -r line; do
		body=${line%,\"hash\":*}
		want=${line##*,\"hash\":\"}
		want=${want%\"\}}
		got=$(printf '%s%s' "$prev" "$body" | sha256sum | cut -d' ' -f1)
		[ "$got" = "$want" ] || { echo "hash mismatch: $line" >&2; return 1; }
		prev=$want
	done < <(cat "$@")
}

# alloc_count CMD [ARG...]: how many allocations a clean run of CMD makes
# (ES_FAULT_COUNT); the run must succeed. Sets $output as run does.
alloc_count() {
	ES_FAULT=malloc:0 ES_FAULT_COUNT=1 run -0 --separate-stderr "$@"
	count=$(sed -n 's/^es-fault: malloc: \([0-9]*\) calls$/\1/p' <<<"$stderr")
	[ -n "$count" ] || { echo "$*: no allocation count: $stderr"; return 1; }
}

# sweep_points COUNT: the allocations a sweep fails, one a line: every one
# of the first 150, then a hundred spread evenly over the rest.
sweep_points() {
	local n step=$((($1 + 99) / 100))
	for ((n = 1; n <= $1; n += (n < 150 ? 1 : step))); do echo "$n"; done
}

# oom_sweep WANT CMD [ARG...]: run CMD with allocations failing one at a
# time (ES_FAULT=malloc:N) at sweep_points of the count a clean run makes.
# Each run prints exactly WANT and exits 0 (that failure was harmless, or
# jansson was served from the spare: json.c), or exits 4 saying "out of
# memory"; never another answer, never a crash; and some run must fail.
oom_sweep() {
	local want=$1 n count failed=0
	shift
	alloc_count "$@" || return 1
	[ "$output" = "$want" ] || { echo "$*: a clean run says: $output"; return 1; }
	for n in $(sweep_points "$count"); do
		ES_FAULT=malloc:$n run --separate-stderr "$@"
		if [ "$status" -eq 0 ]; then
			[ "$output" = "$want" ] || { echo "$*: malloc:$n: another answer: $output"; return 1; }
			continue
		fi
		[ "$status" -eq 4 ] || { echo "$*: malloc:$n: exit $status: $stderr"; return 1; }
		[[ "$stderr" == *"out of memory"* ]] || { echo "$*: malloc:$n: $stderr"; return 1; }
		failed=$((failed + 1))
	done
	[ "$failed" -gt 0 ] || { echo "$*: no run of $count failed: were faults injected?"; return 1; }
}

# The processors this shell may use, counted as es counts them for the
# copy-or-map rule (es_usable_cpus), written again here as the tests'
# oracle: its CPU affinity, lowered to the cgroup v2 quota (cpu.max,
# rounded up) of its cgroup or of one above it.
usable_cpus() {
	local n cg q p
	n=$(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' |
		awk -F- '{ n += NF == 2 ? $2 - $1 + 1 : 1 } END { print n }')
	cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
	while [ -n "$cg" ]; do
		if read -r q p 2>/dev/null <"/sys/fs/cgroup${cg%/}/cpu.max" &&
			[ "$q" != max ] && [ "${p:-0}" -gt 0 ]; then
			q=$(((q + p - 1) / p))
			[ "$q" -lt "$n" ] && n=$q
		fi
		[ "$cg" = / ] && break
		cg=${cg%/*}
		cg=${cg:-/}
	done
	echo "$n"
}

# purged_store_events: 80 events on streams s0-s3, one a day from
# 2026-01-01, in segments of 4 KiB (for es-archive --before/--purge-before)
purged_store_events() {
	local i
	for i in $(seq 0 79); do
		printf '{"stream":"s%d","type":"T","ts":"%s","data":{"i":%d}}\n' $((i % 4)) \
			"$(date -u -d "2026-01-01 + $i days" +%Y-%m-%dT12:00:00Z)" "$i"
	done >ev.ndjson
	head -n 1 ev.ndjson | es-append -q --import-ts
	sed -i 's/"segment_size":[0-9]*/"segment_size":4096/' "$ES_STORE/store.json"
	tail -n +2 ev.ndjson | es-append -q --import-ts --batch-size 3
}

# stopped PID: wait until the process is stopped (SIGSTOP, ES_STOP)
stopped() {
	local i
	for i in $(seq 1 1000); do
		[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = T ] && return 0
		sleep 0.01
	done
	echo "process $1 did not stop" >&2
	return 1
}
