#!/usr/bin/env bash
# man-examples.sh: run the shell commands that a man page shows in EXAMPLES.
#
# Usage: tests/man-examples.sh [-n] PAGE
#   -n   print the examples as they would be run, one command per paragraph
#        preceded by "# example N", and run nothing
#
# The convention, as the reader sees it in the rendered page
# (mandoc -Tutf8):
#   - In the EXAMPLES section, a line whose text starts with "$ " is a
#     command; the lines right after it that start with "> " continue it,
#     like the shell's PS1 and PS2 prompts. In mdoc source these are
#     .Bd -literal blocks; roff escapes (\e for a backslash) are rendered
#     first, so what runs is exactly what the page shows.
#   - Any other line is output or prose, shown to the reader, not run.
#   - An example is a paragraph: a run of non-blank lines. The examples of a
#     page run in order, in one bash (set -o pipefail) in the current
#     directory, so a later example may use what an earlier one made; every
#     command must exit 0 (write `cmd || echo "exit $?"` to show a failure).
#   - An example that names an es program that is not built (not on PATH) is
#     skipped, with a note. The es programs are the seven of es(7) and every
#     es-*.1 page beside PAGE.
# Standard input is /dev/null. The caller sets ES_STORE and PATH (see
# tests/man-examples.bats).
#
# Exit status: 0 all examples that could run passed (notes on stdout),
# 1 a command failed (named on stderr), 2 usage or no commands in EXAMPLES,
# 77 every example was skipped.
set -u

dry=0
if [ "${1:-}" = "-n" ]; then
	dry=1
	shift
fi
if [ $# -ne 1 ] || [ ! -r "$1" ]; then
	echo "usage: man-examples.sh [-n] PAGE" >&2
	exit 2
fi
page=$1
name=${page##*/}

# The rendered EXAMPLES section, as lines "E" (blank: end of an example),
# "C text" (a command starts) or "K text" (it continues).
extract() {
	mandoc -Tutf8 "$page" | sed 's/.\x08//g' | awk '
		/^EXAMPLES$/ { on = 1; next }
		on && /^[^ ]/ { on = 0 }
		!on { next }
		{ t = $0; sub(/^ +/, "", t) }
		t == "" { print "E"; open = 0; next }
		substr(t, 1, 2) == "$ " { print "C " substr(t, 3); open = 1; next }
		open && substr(t, 1, 2) == "> " { print "K " substr(t, 3); next }
		{ open = 0 }
		END { print "E" }'
}

programs="es-append es-replay es-snapshot es-project es-at-time es-verify es-archive"
for p in "$(dirname "$page")"/es-*.1; do
	[ -e "$p" ] || continue
	p=${p##*/}
	p=${p%.1}
	case " $programs " in *" $p "*) ;; *) programs="$programs $p" ;; esac
done

# missing TEXT: the es programs TEXT names that are not on PATH
missing() {
	local p out=""
	for p in $programs; do
		if grep -Eq "(^|[^A-Za-z0-9_./-])$p([^A-Za-z0-9_-]|\$)" <<<"$1" &&
			! command -v "$p" >/dev/null 2>&1; then
			out="$out $p"
		fi
	done
	echo "${out# }"
}

script=$(mktemp "${TMPDIR:-/tmp}/man-examples.XXXXXX") || exit 2
trap 'rm -f "$script"' EXIT
{
	echo "set -o pipefail"
	echo "__fail() { printf '%s: example %d: exit %d: %s\n' \"\$1\" \"\$2\" \"\$3\" \"\$4\" >&2; exit 1; }"
} >"$script"

examples=0 ran=0 skipped=0 commands=0 notes=""
cmds=() cur=""
flush_cmd() {
	if [ -n "$cur" ]; then
		cmds+=("$cur")
		cur=""
	fi
}
flush_example() {
	flush_cmd
	[ ${#cmds[@]} -gt 0 ] || return 0
	examples=$((examples + 1))
	local need c
	need=$(missing "$(printf '%s\n' "${cmds[@]}")")
	if [ $dry -eq 1 ]; then
		echo "# example $examples${need:+ (needs $need)}"
		printf '%s\n' "${cmds[@]}"
		echo
	elif [ -n "$need" ]; then
		skipped=$((skipped + 1))
		notes="$notes$name: example $examples skipped: needs $need (not built)"$'\n'
	else
		ran=$((ran + 1))
		for c in "${cmds[@]}"; do
			commands=$((commands + 1))
			printf '%s\n' "$c"
			printf '__rc=$?; [ $__rc -eq 0 ] || __fail %q %d "$__rc" %q\n' \
				"$name" "$examples" "$c"
		done >>"$script"
	fi
	cmds=()
}

while IFS= read -r rec; do
	case $rec in
	E) flush_example ;;
	C\ *) flush_cmd; cur=${rec#C } ;;
	K\ *) cur=$cur$'\n'${rec#K } ;;
	esac
done < <(extract)

if [ $examples -eq 0 ]; then
	echo "man-examples.sh: $page: no commands (\"\$ \" lines) in EXAMPLES" >&2
	exit 2
fi
[ $dry -eq 1 ] && exit 0
printf '%s' "$notes"
if [ $ran -eq 0 ]; then
	echo "$name: every example needs a program that is not built"
	exit 77
fi
bash "$script" </dev/null || exit 1
echo "$name: $commands commands in $ran examples passed"
