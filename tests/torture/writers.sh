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
#
# After a faulted run the family always: appends a fresh batch with
# es-append (the log's recovery), checks the log with check-store, appends
# with an exact --expect (the index agrees with the log), runs the writer
# again without faults (it must succeed: retries are safe), and checks again.


# ---- es-append ---------------------------------------------------------------

w_append_available() { [ -x "$ES_BIN/es-append" ]; }

w_append_points() {
	printf '%s\n' before-write mid-write after-write after-sync before-rename \
		after-rename after-index
}

# existing   a multi-stream batch onto a store with history
# create     the batch creates the store (store.json via rename)
# torn       a torn tail is waiting: recovery quarantines it (rename, ftruncate)
# roll       the batch rolls to a new segment (open, fsync of log/)
# chunks     --batch-size 2: four commits in one run
# reindex    index/ deleted: recovery rebuilds it from the whole log
# staleindex the index is behind the log: recovery catches it up
# retry      half of the batch is a retry of events already stored
w_append_scenarios() {
	if [ "$T_QUICK" = 1 ]; then
		printf '%s\n' torn chunks # torn has history too
	else
		printf '%s\n' existing create torn roll chunks reindex staleindex retry
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
	else
		t_batch run 6 >"$dir/in/run"
	fi
}

w_append_run() {
	local sc=$1 dir=$2 out=$3 opts=()
	[ "$sc" = chunks ] && opts=(--batch-size 2)
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
	for w in append; do # add new writers here
		if "w_${w}_available"; then
			TORTURE_WRITERS="$TORTURE_WRITERS $w"
		fi
	done
fi
