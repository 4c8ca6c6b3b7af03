# writers.sh: the writers that the crash and I/O-error families drive
# (sourced after lib.sh).
#
# Each writer W is a set of shell functions; a family runs, for every writer
# in $TORTURE_WRITERS (default: every writer whose programs are built), every
# scenario, with ES_CRASH or ES_FAULT set for one run of the writer, then
# checks that the store recovers. To plug in a new writer (es-archive,
# es-snapshot, es-project...), define:
#
#   w_W_available        status 0 when its programs are in ES_BIN
#   w_W_points           the ES_CRASH points it can reach (one per line)
#   w_W_scenarios        the situations to run it in (one per line)
#   w_W_prepare SC DIR   build DIR/store (and DIR/in/*) for scenario SC;
#                        DIR is a template, copied for every case
#   w_W_run SC DIR OUT   run it once on DIR/store: stdout to DIR/acks/OUT.out
#                        (what it acknowledged), stderr to DIR/acks/OUT.err;
#                        return its exit status
#   w_W_absent SC DIR OUT  print the name of a file of input events that a
#                        failed run OUT must not have stored (nothing for
#                        writers that add no events)
#   w_W_check SC DIR     its own checks of its own files (beyond check-store,
#                        which the family runs on the log); status 0 = ok
#   w_W_failmsg          (optional) an ERE that the stderr of a run failed by
#                        an I/O error must match (default: "not stored", for
#                        writers of events)
#
# After a faulted run the family always: appends a fresh batch with
# es-append (the log's recovery), checks the log with check-store, appends
# with an exact --expect (the index agrees with the log), runs the writer
# again without faults (it must succeed: retries are safe), and checks again.


# ---- es-append ---------------------------------------------------------------

w_append_available() { [ -x "$ES_BIN/es-append" ]; }

w_append_points() {
	# before-unsynced: only runs of several chunks (the chunks scenario)
	printf '%s\n' before-write mid-write after-write after-sync before-rename \
		after-rename after-index before-unsynced
}

# existing   a multi-stream batch onto a store with history
# create     the batch creates the store (store.json via rename)
# torn       a torn tail is waiting: recovery quarantines it (rename, ftruncate)
# roll       the batch rolls to a new segment (open, fsync of log/)
# chunks     --batch-size 2: four commits in one run
# bigchunks  --batch-size 1000, two chunks of over 256 KiB: each written and
#            synced by a helper thread while the index is filled
# reindex    index/ deleted: recovery rebuilds it from the whole log
# staleindex the index is behind the log: recovery catches it up
# retry      half of the batch is a retry of events already stored
w_append_scenarios() {
	if [ "$T_QUICK" = 1 ]; then
		printf '%s\n' torn chunks bigchunks # torn has history too
	else
		printf '%s\n' existing create torn roll chunks bigchunks reindex staleindex retry
	fi
}

w_append_prepare() {
	local sc=$1 dir=$2 st=$2/store
	mkdir -p "$dir/acks" "$dir/in" "$dir/absent"
	if [ "$sc" != create ]; then
		for i in 1 2 3; do
			t_batch "h$i" $((RANDOM % 5 + 1)) >"$dir/in/h$i"
			es-append -d "$st" <"$dir/in/h$i" >"$dir/acks/h$i.out" || return 1
		done
	fi
	case $sc in
	torn)
		t_batch torn 5 >"$dir/in/torn"
		ES_CRASH=mid-write:1 es-append -d "$st" <"$dir/in/torn" >/dev/null 2>&1
		cp "$dir/in/torn" "$dir/absent/torn" # cut by recovery, never acknowledged
		;;
	roll)
		t_set_segment_size "$st" 4096
		while [ "$(stat -c %s "$(ls "$st"/log/*.ndjson | tail -n 1)")" -lt 3000 ]; do
			t_batch "f$RANDOM" 2 >"$dir/in/fill"
			es-append -d "$st" <"$dir/in/fill" >>"$dir/acks/fill.out" || return 1
		done
		;;
	reindex)
		rm -rf "$st/index"
		;;
	staleindex)
		cp -a "$st/index" "$dir/index.old"
		t_batch h4 3 >"$dir/in/h4"
		es-append -d "$st" <"$dir/in/h4" >"$dir/acks/h4.out" || return 1
		rm -rf "$st/index" && mv "$dir/index.old" "$st/index"
		;;
	esac
	if [ "$sc" = retry ]; then
		t_batch run 4 >"$dir/in/new"
		cat "$dir/in/h2" "$dir/in/new" >"$dir/in/run"
	elif [ "$sc" = chunks ]; then
		# chunks of 2 events: each chunk its own atomic batch
		for c in 1 2 3 4; do t_batch "run$c" 2; done >"$dir/in/run"
	elif [ "$sc" = bigchunks ]; then
		for c in 1 2; do t_batch "run$c" 1000; done >"$dir/in/run"
	else
		t_batch run 6 >"$dir/in/run"
	fi
}

w_append_run() {
	local sc=$1 dir=$2 out=$3 opts=()
	[ "$sc" = chunks ] && opts=(--batch-size 2)
	[ "$sc" = bigchunks ] && opts=(--batch-size 1000)
	es-append -d "$dir/store" "${opts[@]}" <"$dir/in/run" >"$dir/acks/$out.out" 2>"$dir/acks/$out.err"
}

# The events a failed run must not have stored: all that it did not
# acknowledge (with --batch-size, the chunks from the failed one on).
w_append_absent() {
	local sc=$1 dir=$2 out=$3 done
	if [ "$sc" = retry ]; then
		echo "$dir/in/new"
		return
	fi
	# "stored before line L: N events" (older: "N events before line L were stored")
	done=$(sed -n -e 's/.*: stored before line [0-9]*: \([0-9]*\) events\{0,1\}$/\1/p' \
		-e 's/.*: \([0-9]*\) events before line [0-9]* were stored$/\1/p' "$dir/acks/$out.err")
	tail -n +$((${done:-0} + 1)) "$dir/in/run" >"$dir/in/$out.unstored"
	echo "$dir/in/$out.unstored"
}

w_append_check() { return 0; } # check-store covers the log

# t_failmsg W: what a run of W failed by an I/O error must say.
t_failmsg() {
	if declare -F "w_$1_failmsg" >/dev/null; then "w_$1_failmsg"; else echo "not stored"; fi
}

# ---- helpers for the writers that add no events ---------------------------------

# t_history DIR N [SEGSIZE]: N acknowledged batches into DIR/store (acks in
# DIR/acks/hK.out), with segments rolled at SEGSIZE bytes when given.
t_history() {
	local dir=$1 n=$2 size=${3:-} i
	mkdir -p "$dir/acks" "$dir/in"
	for ((i = 1; i <= n; i++)); do
		t_batch "h$i" $((RANDOM % 4 + 3)) >"$dir/in/h$i"
		es-append -d "$dir/store" <"$dir/in/h$i" >"$dir/acks/h$i.out" || return 1
		if [ "$i" = 1 ] && [ -n "$size" ]; then t_set_segment_size "$dir/store" "$size"; fi
	done
}

# t_more DIR TAG: one more acknowledged batch.
t_more() {
	t_batch "$2" $((RANDOM % 4 + 3)) >"$1/in/$2"
	es-append -d "$1/store" <"$1/in/$2" >"$1/acks/$2.out"
}

# t_quiet_run DIR OUT CMD...: run a writer that acknowledges no events: an
# empty DIR/acks/OUT.out (nothing for check-store to find), its stdout in
# DIR/out/OUT, its stderr in DIR/acks/OUT.err.
t_quiet_run() {
	local dir=$1 out=$2
	shift 2
	mkdir -p "$dir/out"
	: >"$dir/acks/$out.out"
	"$@" >"$dir/out/$out" 2>"$dir/acks/$out.err"
}

# t_own_fail DIR WHAT: say why a writer's own check failed (the family adds
# the case's label).
t_own_fail() { echo "$T_FAMILY: $1: $2" >&2; return 1; }

# t_all_acked DIR: every acknowledged line (acks/*.out) once, in seq order,
# past seq FROM ($2, default 0): what the whole log must read.
t_all_acked() {
	local f
	for f in "$1"/acks/*.out; do
		[ -s "$f" ] || continue
		if tail -c 1 "$f" | cmp -s - <(echo); then cat "$f"; else sed '$d' "$f"; fi
	done | awk -v from="${2:-0}" 'substr($0, 8) + 0 > from + 0' |
		sort -u | sort -t : -k 2,2n
}

# ---- es-archive ----------------------------------------------------------------

w_archive_available() { [ -x "$ES_BIN/es-archive" ] && command -v zstdcat >/dev/null; }

w_archive_points() {
	printf '%s\n' archive-after-write archive-after-manifest archive-before-unlink \
		archive-purge-after-manifest before-rename after-rename
}

# first    the first archiving: three sealed segments and the active one
#          (rolled, since every event is older than the cutoff)
# again    archive after an earlier archive: more history since
# torn     a torn tail waits in the active segment when it is rolled
# verbatim --keep-derived, into a cold tier (--to DIR)
# purge    --purge-before: archived segments deleted, an anchor left
w_archive_scenarios() {
	if [ "$T_QUICK" = 1 ]; then
		printf '%s\n' again
	else
		printf '%s\n' first again torn verbatim purge
	fi
}

w_archive_prepare() {
	local sc=$1 dir=$2 st=$2/store
	mkdir -p "$dir/acks" "$dir/in" "$dir/absent"
	t_history "$dir" 8 4096 || return 1
	case $sc in
	again|purge)
		es-archive -q -d "$st" --level 3 --before 2100-01-01 >/dev/null || return 1
		t_more "$dir" m1 && t_more "$dir" m2 && t_more "$dir" m3 || return 1
		;;
	torn)
		t_batch torn 2 >"$dir/in/torn"
		ES_CRASH=mid-write:1 es-append -d "$st" <"$dir/in/torn" >/dev/null 2>&1
		cp "$dir/in/torn" "$dir/absent/torn" # cut by recovery, never acknowledged
		;;
	esac
	[ "$sc" = purge ] && { es-archive -q -d "$st" --level 3 --before 2100-01-01 >/dev/null || return 1; }
	return 0
}

w_archive_run() {
	local sc=$1 dir=$2 out=$3 opts=(--before 2100-01-01 --level 3)
	case $sc in
	verbatim) mkdir -p "$dir/cold"; opts+=(--keep-derived --to "$dir/cold") ;;
	purge) opts=(--purge-before 2100-01-01) ;;
	esac
	t_quiet_run "$dir" "$out" es-archive -d "$dir/store" "${opts[@]}"
}

w_archive_absent() { :; }
w_archive_failmsg() { echo '^es-archive: .+'; }

# After the retry: es-archive --verify passes; the archive and log/ read
# back exactly the acknowledged events, once each, in order (es-replay
# --events; check-store has restored the archive on its own); no log/ copy
# of an archived segment, no temp and no file the MANIFEST does not list.
w_archive_check() {
	local sc=$1 dir=$2 st=$2/store from=0 f n last
	es-archive -d "$st" --verify >"$dir/out/verify" 2>&1 ||
		t_own_fail "$dir" "es-archive --verify: $(head -c 300 "$dir/out/verify")" || return 1
	[ "$sc" = purge ] && from=$(jq -r 'select(.purged) | .purged.last_seq' "$st/archive/MANIFEST")
	es-replay -d "$st" --events >"$dir/out/events" 2>"$dir/out/events.err"
	if ! cmp -s "$dir/out/events" <(t_all_acked "$dir" "${from:-0}"); then
		t_own_fail "$dir" "es-replay --events is not the acknowledged events, once each, in order: $(head -c 200 "$dir/out/events.err")"
		return 1
	fi
	last=$(jq -r 'select(.file) | .last_seq' "$st/archive/MANIFEST" | tail -n 1)
	for f in "$st"/log/*.ndjson; do
		[ -e "$f" ] || continue
		n=${f##*/}
		[ $((10#${n%.ndjson})) -le "${last:-0}" ] && { t_own_fail "$dir" "log/$n: archived, still in log/"; return 1; }
	done
	for f in "$st"/archive/* "$dir"/cold/*; do
		[ -e "$f" ] || continue
		n=${f##*/}
		case $n in MANIFEST|lock) continue ;; esac
		grep -q "\"file\":\"$n\"" "$st/archive/MANIFEST" || { t_own_fail "$dir" "archive: $n: not in the MANIFEST"; return 1; }
	done
	return 0
}

# ---- es-snapshot ---------------------------------------------------------------

w_snapshot_available() { [ -x "$ES_BIN/es-snapshot" ] && [ -x "$ES_BIN/es-replay" ]; }

w_snapshot_points() { printf '%s\n' before-rename after-rename; }

# take    the first snapshots of every stream
# again   snapshots exist, more events since: newer ones beside them
# prune   three snapshots per stream and a temp: --prune --keep 1
w_snapshot_scenarios() {
	if [ "$T_QUICK" = 1 ]; then
		printf '%s\n' again
	else
		printf '%s\n' take again prune
	fi
}

w_snapshot_prepare() {
	local sc=$1 dir=$2 st=$2/store
	mkdir -p "$dir/acks" "$dir/in"
	t_history "$dir" 3 || return 1
	case $sc in
	again)
		es-snapshot -q -d "$st" >/dev/null && t_more "$dir" m1 ;;
	prune)
		es-snapshot -q -d "$st" >/dev/null && t_more "$dir" m1 &&
			es-snapshot -q -d "$st" >/dev/null && t_more "$dir" m2 &&
			es-snapshot -q -d "$st" >/dev/null || return 1
		# and the temp of a take killed before its rename: --prune removes it
		t_more "$dir" m3 && { ES_CRASH=before-rename:1 es-snapshot -q -d "$st"; } 2>/dev/null
		[ -n "$(find "$st/snapshots" -name '*.tmp.*')" ] ;;
	esac
}

w_snapshot_run() {
	local sc=$1 dir=$2 out=$3 opts=()
	[ "$sc" = prune ] && opts=(--prune --keep 1)
	t_quiet_run "$dir" "$out" es-snapshot -d "$dir/store" "${opts[@]}"
}

w_snapshot_absent() { :; }
w_snapshot_failmsg() { echo '^es-snapshot: .+'; }

# After the retry: every snapshot verifies (es-verify --snapshots,
# es-snapshot --verify); a replay that uses them gives exactly the state of
# a full replay; no temp is left; after a prune, one snapshot per stream.
w_snapshot_check() {
	local sc=$1 dir=$2 st=$2/store
	es-verify -d "$st" --snapshots >"$dir/out/verify" 2>&1 ||
		t_own_fail "$dir" "es-verify --snapshots: $(head -c 300 "$dir/out/verify")" || return 1
	es-snapshot -d "$st" --verify >"$dir/out/sverify" 2>&1 ||
		t_own_fail "$dir" "es-snapshot --verify: $(head -c 300 "$dir/out/sverify")" || return 1
	es-replay -d "$st" >"$dir/out/with" 2>&1 && es-replay -d "$st" --no-snapshots >"$dir/out/without" 2>&1 ||
		t_own_fail "$dir" "es-replay failed: $(head -c 300 "$dir/out/with" "$dir/out/without")" || return 1
	cmp -s "$dir/out/with" "$dir/out/without" ||
		t_own_fail "$dir" "es-replay with snapshots differs from a full replay" || return 1
	# a killed take leaves a temp, which readers ignore and --prune removes
	if [ "$sc" = prune ] && [ -n "$(find "$st/snapshots" -name '*.tmp.*' 2>/dev/null)" ]; then
		t_own_fail "$dir" "snapshots/: temps left: $(find "$st/snapshots" -name '*.tmp.*' | head -n 3)"
		return 1
	fi
	es-snapshot -d "$st" --list >"$dir/out/list" 2>&1 ||
		t_own_fail "$dir" "es-snapshot --list: $(head -c 300 "$dir/out/list")" || return 1
	if [ "$sc" = prune ] && [ -n "$(jq -r .stream "$dir/out/list" | sort | uniq -d)" ]; then
		t_own_fail "$dir" "after --prune --keep 1, streams with more snapshots: $(jq -r .stream "$dir/out/list" | sort | uniq -d | head -n 3)"
		return 1
	fi
	# every stream of the log has a snapshot after a take
	if [ "$sc" != prune ] && [ "$(jq -r .stream "$dir/out/list" | sort -u | wc -l)" -ne "$(wc -l <"$dir/out/without")" ]; then
		t_own_fail "$dir" "not every stream has a snapshot after a clean run"
		return 1
	fi
	return 0
}

# ---- es-project ----------------------------------------------------------------

w_project_available() { [ -x "$ES_BIN/es-project" ]; }

w_project_points() {
	printf '%s\n' project-after-model project-after-alerts project-before-swap \
		before-rename after-rename project-after-swap
}

# first    the first build of the projection
# incr     built before; new events since: an incremental run
# rebuild  --rebuild beside the live model, then the swap
# jobs     incremental with -j 2
w_project_scenarios() {
	if [ "$T_QUICK" = 1 ]; then
		printf '%s\n' incr
	else
		printf '%s\n' first incr rebuild jobs
	fi
}

# keys data.k (1..6), a model with count, add, max and set, and a tumbling
# window whose alerts land in alerts.ndjson
t_project_spec() {
	cat <<-'EOF'
	{"name":"tort","version":1,"key":"data.k",
	 "on":{"T0":[{"op":"count","path":"n0"}],
	       "T1":[{"op":"add","path":"sum","from":"data.k"},{"op":"max","path":"last","from":"ts"}],
	       "T2":[{"op":"set","path":"s","from":"stream"},{"op":"push","path":"ids","from":"id","cap":3}]},
	 "windows":[{"name":"burst","type":"T1","kind":"tumbling","size":"1s","threshold":1}]}
	EOF
}

w_project_prepare() {
	local sc=$1 dir=$2 st=$2/store
	mkdir -p "$dir/acks" "$dir/in"
	t_project_spec >"$dir/spec.json"
	t_history "$dir" 3 || return 1
	if [ "$sc" != first ]; then
		es-project -q -d "$st" "$dir/spec.json" >/dev/null || return 1
		t_more "$dir" m1 && t_more "$dir" m2
	fi
}

w_project_run() {
	local sc=$1 dir=$2 out=$3 opts=()
	case $sc in
	rebuild) opts=(--rebuild) ;;
	jobs) opts=(-j 2) ;;
	esac
	t_quiet_run "$dir" "$out" es-project -q -d "$dir/store" "${opts[@]}" "$dir/spec.json"
}

w_project_absent() { :; }
w_project_failmsg() { echo '^es-project: .+'; }

# After the retry: the model and the alerts are, byte for byte, those of a
# build from scratch (--stdout --rebuild: the store is not changed); the
# checkpoint covers the whole log; --status says ok; one generation left.
w_project_check() {
	local sc=$1 dir=$2 st=$2/store p=$2/store/projections/tort head cp g
	es-project -d "$st" --stdout --rebuild -q "$dir/spec.json" >"$dir/out/model" 2>"$dir/out/model.err" ||
		t_own_fail "$dir" "es-project --stdout --rebuild: $(head -c 300 "$dir/out/model.err")" || return 1
	es-project -d "$st" --stdout --rebuild --alerts-only "$dir/spec.json" >"$dir/out/alerts" 2>"$dir/out/alerts.err" ||
		t_own_fail "$dir" "es-project --stdout --rebuild --alerts-only: $(head -c 300 "$dir/out/alerts.err")" || return 1
	cmp -s "$dir/out/model" "$p/model.ndjson" ||
		t_own_fail "$dir" "model.ndjson differs from a build from scratch" || return 1
	cmp -s "$dir/out/alerts" "$p/alerts.ndjson" ||
		t_own_fail "$dir" "alerts.ndjson differs from a build from scratch ($(wc -l <"$p/alerts.ndjson") vs $(wc -l <"$dir/out/alerts") alerts)" || return 1
	head=$(es-replay -d "$st" --events --reverse --limit 1 | jq -r .seq)
	cp=$(jq -r .seq "$p/checkpoint.json")
	[ "$cp" = "$head" ] || t_own_fail "$dir" "checkpoint at seq $cp, the log's head is $head" || return 1
	es-project -d "$st" --status "$dir/spec.json" >"$dir/out/status" 2>&1 ||
		t_own_fail "$dir" "es-project --status: $(head -c 300 "$dir/out/status")" || return 1
	g=$(find "$p" -mindepth 1 -maxdepth 1 -name 'gen-*' | wc -l)
	[ "$g" -eq 1 ] || t_own_fail "$dir" "$g generations left after a clean run" || return 1
	return 0
}

# ---- what every family does after a crash or a fault -------------------------

T_CUTS=0 T_MISSING=0 T_PARTIAL=0 T_BREAKS=0 T_RECOVERED=0 T_ABSENT=0

# t_tally: add the last check's figures to the family's totals.
t_tally() {
	T_MISSING=$((T_MISSING + ${T_FIG[missing]:-0}))
	T_PARTIAL=$((T_PARTIAL + ${T_FIG[partial]:-0}))
	T_ABSENT=$((T_ABSENT + ${T_FIG[absent]:-0}))
	T_BREAKS=$((T_BREAKS + ${T_FIG[chain]:-0} + ${T_FIG[seq]:-0} + ${T_FIG[version]:-0} + \
		${T_FIG[bad]:-0} + ${T_FIG[ts]:-0} + ${T_FIG[dupid]:-0}))
}

# t_after_fault W SC DIR LABEL: DIR/store just lived through a crash or a
# fault of writer W in scenario SC. Recover it and check everything.
# Status 0 when all held.
t_after_fault() {
	local w=$1 sc=$2 c=$3 label=$4 st=$3/store rc v expect cuts
	mkdir -p "$c/acks" "$c/in"
	rm -rf "$c/before"
	if [ -d "$st" ]; then cp -a "$st" "$c/before"; else mkdir -p "$c/before/log"; fi
	# 1. The next append recovers the log and succeeds.
	t_batch fresh 3 >"$c/in/fresh"
	es-append -d "$st" <"$c/in/fresh" >"$c/acks/fresh.out" 2>"$c/acks/fresh.err"
	rc=$?
	if [ $rc -ne 0 ]; then
		t_fail "$label: the next append failed (exit $rc): $(head -c 300 "$c/acks/fresh.err")"
		return 1
	fi
	# 2. Whatever recovery cut from the log is, byte for byte, in quarantine/.
	if ! cuts=$(t_quarantine_ok "$c/before" "$st"); then
		t_fail "$label: recovery changed the log without quarantining the cut"
		return 1
	fi
	T_CUTS=$((T_CUTS + cuts))
	# 3. The log holds: acknowledged events, whole batches, chain, continuity.
	if ! t_check "$c" --versions "$c/versions"; then
		t_tally
		t_fail "$label: after recovery: $T_CHECK"
		return 1
	fi
	# 4. The index agrees with the log: an exact --expect succeeds.
	v=$(awk -F'\t' '$1 == "s0" { print $2 }' "$c/versions")
	expect=${v:-none}
	t_batch expect 2 s0 >"$c/in/expect"
	es-append -d "$st" --expect "$expect" <"$c/in/expect" >"$c/acks/expect.out" 2>"$c/acks/expect.err"
	rc=$?
	if [ $rc -ne 0 ]; then
		t_fail "$label: --expect $expect (the log's version of s0) failed (exit $rc): $(head -c 300 "$c/acks/expect.err")"
		return 1
	fi
	# 5. The writer run again without faults succeeds (retries are safe);
	# what the failed run did not store may now be stored.
	rm -rf "$c/absent"
	local sum
	sum=$(cat "$st"/log/*.ndjson | cksum)
	"w_${w}_run" "$sc" "$c" retry
	rc=$?
	if [ $rc -ne 0 ]; then
		t_fail "$label: the retry failed (exit $rc): $(head -c 300 "$c/acks/retry.err")"
		return 1
	fi
	if [ "$(cat "$st"/log/*.ndjson | cksum)" = "$sum" ]; then
		# a no-op retry: what it printed must already be in the log
		if [ -n "$(comm -23 <(sort -u "$c/acks/retry.out") <(cat "$st"/log/*.ndjson | sort))" ]; then
			T_MISSING=$((T_MISSING + 1))
			t_fail "$label: the retry printed events that are not in the log"
			return 1
		fi
	elif ! t_check "$c"; then
		t_tally
		t_fail "$label: after the retry: $T_CHECK"
		return 1
	else
		t_tally
	fi
	if ! "w_${w}_check" "$sc" "$c"; then
		t_fail "$label: $w's own check failed"
		return 1
	fi
	T_RECOVERED=$((T_RECOVERED + 1))
	return 0
}

# ---- the writers to drive ------------------------------------------------------

TORTURE_WRITERS=${TORTURE_WRITERS:-}
if [ -z "$TORTURE_WRITERS" ]; then
	for w in append archive snapshot project; do # add new writers here
		if "w_${w}_available"; then
			TORTURE_WRITERS="$TORTURE_WRITERS $w"
		fi
	done
fi
