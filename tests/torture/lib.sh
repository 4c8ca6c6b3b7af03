# lib.sh: what the torture families share (sourced, not run).
#
# A family is a bash script in tests/torture/ that sources this file, runs its
# cases, prints ONE summary line on stdout ("family: figures...") and exits 0
# when nothing failed, 1 otherwise. Details go to stderr. Options:
#   --quick        the short pass (tests/torture.bats runs every family so)
#   --seed N       seed $RANDOM (printed on failure, for a replay)
#   --keep         keep the work directory
#   -v             say what each case does
# Environment: ES_BIN (default build/) holds the programs; TMPDIR.
set -u
export LC_ALL=C

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T_DIR=$T_ROOT/tests/torture
ES_BIN=${ES_BIN:-$T_ROOT/build}
case $ES_BIN in /*) ;; *) ES_BIN=$PWD/$ES_BIN ;; esac
export ES_BIN
PATH=$ES_BIN:$PATH
unset ES_STORE ES_FAULT ES_CRASH

T_FAMILY=$(basename "$0")
T_QUICK=${TORTURE_QUICK:-0}
T_KEEP=0
T_VERBOSE=0
T_SEED=${TORTURE_SEED:-$(( $(date +%s%N) % 1000000 ))}
T_FAILS=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) T_QUICK=1 ;;
	--seed) T_SEED=$2; shift ;;
	--keep) T_KEEP=1 ;;
	-v) T_VERBOSE=1 ;;
	*) echo "$T_FAMILY: unknown option '$1'" >&2; exit 2 ;;
	esac
	shift
done
RANDOM=$T_SEED

# The quick pass works in memory when it can; the long one on the disk of
# TMPDIR (or TORTURE_TMPDIR), where fdatasync really waits.
T_BASE=${TORTURE_TMPDIR:-${TMPDIR:-/tmp}}
if [ -z "${TORTURE_TMPDIR:-}" ] && [ "$T_QUICK" = 1 ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	T_BASE=/dev/shm
fi
T_WORK=$(mktemp -d "$T_BASE/es-torture-$T_FAMILY.XXXXXX") || exit 2
T_ON_EXIT=":" # a family's own cleanup (unmount...), run first
t_cleanup() {
	eval "$T_ON_EXIT"
	if [ "$T_KEEP" = 1 ] || [ "$T_FAILS" -gt 0 ]; then
		echo "$T_FAMILY: work directory kept: $T_WORK (seed $T_SEED)" >&2
	else
		rm -rf "$T_WORK"
	fi
}
trap t_cleanup EXIT

# t_fail CASE MESSAGE: count a failure and say what and where.
t_fail() {
	T_FAILS=$((T_FAILS + 1))
	if [ "$T_FAILS" -le 40 ]; then
		echo "$T_FAMILY: FAIL: $*" >&2
	elif [ "$T_FAILS" -eq 41 ]; then
		echo "$T_FAMILY: (more failures not shown)" >&2
	fi
}
t_log() { [ "$T_VERBOSE" = 1 ] && echo "$T_FAMILY: $*" >&2; return 0; }

# t_need PROGRAM...: the programs must be built.
t_need() {
	for p in "$@"; do
		if [ ! -x "$ES_BIN/$p" ]; then
			echo "$T_FAMILY: $ES_BIN/$p is missing (build first, or set ES_BIN)" >&2
			exit 2
		fi
	done
}

# t_finish SUMMARY: print the family's line and exit with its verdict.
t_finish() {
	if [ "$T_FAILS" -gt 0 ]; then
		echo "$T_FAMILY: $*, $T_FAILS FAILED (seed $T_SEED)"
		exit 1
	fi
	echo "$T_FAMILY: $*"
	exit 0
}

# t_batch TAG N [STREAM...]: N input events with ids TAG~K/N (check-store
# checks such batches are whole), over the given streams (default s0..s3),
# with a little random padding in data.
t_batch() {
	local tag=$1 n=$2 k s pad
	shift 2
	local streams=("$@")
	[ ${#streams[@]} -gt 0 ] || streams=(s0 s1 s2 s3)
	for ((k = 1; k <= n; k++)); do
		s=${streams[RANDOM % ${#streams[@]}]}
		printf -v pad '%*s' $((RANDOM % 300)) ''
		pad=${pad// /x}
		printf '{"stream":"%s","type":"T%d","id":"%s~%d/%d","data":{"k":%d,"price":19.99,"pad":"%s"}}\n' \
			"$s" $((k % 3)) "$tag" "$k" "$n" "$k" "$pad"
	done
}

# t_set_segment_size STORE BYTES: make segments roll small (after creation).
t_set_segment_size() {
	local f=$1/store.json
	jq -c --argjson n "$2" '.segment_size = $n' "$f" >"$f.new" && mv "$f.new" "$f"
}

# t_check DIR [check-store options...]: check DIR/store against every ack
# in DIR/acks/*.out and every input in DIR/absent/*. Returns its verdict;
# the figures line is left in T_CHECK.
T_CHECK=""
t_check() {
	local dir=$1 f
	shift
	local args=()
	for f in "$dir"/acks/*.out; do [ -e "$f" ] && args+=(--acks "$f"); done
	for f in "$dir"/absent/*; do [ -e "$f" ] && args+=(--absent "$f"); done
	T_CHECK=$("$T_DIR/check-store" ${args[@]+"${args[@]}"} "$@" "$dir/store" 2>"$dir/check.err")
	local rc=$?
	t_parse_figs
	[ $rc -eq 0 ] || cat "$dir/check.err" >&2
	return $rc
}

# T_FIG[NAME]: the figures of the last t_check, without a subshell.
declare -A T_FIG=()
t_parse_figs() {
	local w
	T_FIG=()
	for w in $T_CHECK; do
		[[ $w == *=* ]] && T_FIG[${w%%=*}]=${w#*=}
	done
	return 0
}

# t_fig NAME: a figure from the last t_check ("records", "missing", ...).
t_fig() {
	if [[ " $T_CHECK " =~ \ $1=([0-9]+)\  ]]; then
		echo "${BASH_REMATCH[1]}"
	else
		echo 0
	fi
}

# t_quarantine_ok BEFORE AFTER: every segment of the log BEFORE recovery is
# either a prefix of its AFTER version, or was cut at some offset with the
# cut bytes, exactly, in AFTER's quarantine/. Prints how many were cut.
t_quarantine_ok() {
	local before=$1 after=$2 f name size cut q ok cuts=0
	for f in "$before"/log/*.ndjson; do
		[ -e "$f" ] || continue
		name=${f##*/}
		size=$(stat -c %s "$f")
		if [ -e "$after/log/$name" ] && cmp -s -n "$size" "$f" "$after/log/$name" &&
		   [ "$(stat -c %s "$after/log/$name")" -ge "$size" ]; then
			continue
		fi
		ok=0
		for q in "$after"/quarantine/"$name".*.torn; do
			[ -e "$q" ] || continue
			cut=${q#"$after/quarantine/$name."}
			cut=${cut%%.*}
			if [ -e "$before/quarantine/${q##*/}" ]; then continue; fi
			if cmp -s -n "$cut" "$f" "$after/log/$name" 2>/dev/null &&
			   cmp -s <(tail -c +$((cut + 1)) "$f") "$q"; then
				ok=1
				break
			fi
		done
		if [ $ok = 0 ]; then
			echo "$name: changed by recovery without its cut bytes in quarantine/" >&2
			return 1
		fi
		cuts=$((cuts + 1))
	done
	echo $cuts
}
