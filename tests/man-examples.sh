#!/usr/bin/env bash
# man-examples.sh: run the shell commands that a man page shows in EXAMPLES,
# and compare what they print with what the page shows after them.
#
# Usage: tests/man-examples.sh [-n] PAGE
#   -n   print the commands of each example, preceded by "# example N",
#        and run nothing
#
# The convention, as the reader sees it in the rendered page
# (mandoc -Tutf8):
#   - An example is a display (in mdoc a .Bd -literal block) in the EXAMPLES
#     section. In it, a line whose text starts with "$ " is a command; the
#     lines right after it that start with "> " continue it, like the
#     shell's PS1 and PS2 prompts. Roff escapes (\e for a backslash) are
#     rendered first, so what runs is exactly what the page shows. Text
#     outside displays is prose and never runs.
#   - The other lines of a display after a command, up to the next command
#     or the end of the display (blank lines included), are its output:
#     what the command writes to stdout and stderr, both into one file in
#     the order written, as a terminal would show them. Not being a
#     terminal, that file gets a program's stdout when it ends or fills its
#     buffer, so its stderr may come first, and ls(1) prints one name a
#     line; show what a terminal shows too (ls -1, say). The output must
#     match exactly; a command shown with no output must print nothing.
#     Lines of a display before its first command (a crontab line, say)
#     are not compared.
#   - Where a value varies from run to run (a time, an id, a hash, a
#     compressed size), the page shows "..." in its place, as one would when
#     abbreviating: "..." within a line matches any text (or none) on that
#     line, and a line that is only "..." matches any number of lines (or
#     none). Everything else is compared as shown, so use "..." only for
#     what really varies (in mdoc, write "\&..." at the start of a line,
#     where roff would take the "." for a request).
#   - The examples of a page run in order, in one bash (set -o pipefail) in
#     the current directory, so a later example may use what an earlier one
#     made; every command must exit 0 (write `cmd || echo "exit $?"` to show
#     a failure).
#   - An example that names an es program that is not built (not on PATH) is
#     skipped, with a note. The es programs are the seven of es(7) and every
#     es-*.1 page beside PAGE.
# Standard input is /dev/null. The caller sets ES_STORE and PATH (see
# tests/man-examples.bats).
#
# Exit status: 0 all examples that could run passed (notes on stdout),
# 1 a command failed or its output differs from the page (named on stderr,
# with its output or a diff), 2 usage or no commands in EXAMPLES, 77 every
# example was skipped.
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

# The rendered EXAMPLES section, as lines "E" (end of an example), "C text"
# (a command starts), "K text" (it continues) or "O text" (a line of its
# output, without the display's indent). Marker lines put into each
# display before rendering tell where it starts and ends, and how far it is
# indented.
extract() {
	sed -e '/^\.Bd -literal/a\
@@es-display@@' -e '/^\.Ed/i\
@@es-end@@' "$page" | mandoc -Tutf8 | sed 's/.\x08//g' | awk '
		/^EXAMPLES$/ { on = 1; next }
		on && /^[^ ]/ { on = 0 }
		!on { next }
		{ t = $0; sub(/^ +/, "", t) }
		t == "@@es-display@@" { ind = length($0) - length(t); cmd = 0; open = 0; next }
		t == "@@es-end@@" { print "E"; ind = -1; next }
		ind < 0 { next }
		substr(t, 1, 2) == "$ " { print "C " substr(t, 3); cmd = 1; open = 1; next }
		open && substr(t, 1, 2) == "> " { print "K " substr(t, 3); next }
		{ open = 0 }
		cmd { s = $0; if (substr(s, 1, ind) ~ /^ *$/) s = substr(s, ind + 1); print "O " s }
		BEGIN { ind = -1 }'
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

work=$(mktemp -d "${TMPDIR:-/tmp}/man-examples.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
script=$work/script

# The matcher: does the output (second file) match the shown lines (first
# file), with "..." as the header says? Memoized, so "..." lines cannot
# make it slow.
cat >"$work/match.awk" <<'EOF'
FNR == NR { e[++m] = $0; next }
{ a[++n] = $0 }
END { exit !lines(1, 1) }
function lines(i, j,   k, r) {
	k = i "," j
	if (k in memo)
		return memo[k]
	if (i > m)
		r = j > n
	else if (e[i] ~ /^ *\.\.\. *$/)
		r = lines(i + 1, j) || (j <= n && lines(i, j + 1))
	else
		r = j <= n && line(e[i], a[j]) && lines(i + 1, j + 1)
	return memo[k] = r
}
function line(p, s,   part, k, i, at, last) {
	k = split(p, part, /\.\.\./)
	if (k <= 1)
		return p == s
	if (substr(s, 1, length(part[1])) != part[1])
		return 0
	s = substr(s, length(part[1]) + 1)
	for (i = 2; i < k; i++) {
		if (!(at = index(s, part[i])))
			return 0
		s = substr(s, at + length(part[i]))
	}
	last = part[k]
	return length(s) >= length(last) && substr(s, length(s) - length(last) + 1) == last
}
EOF

cat >"$script" <<'EOF'
set -o pipefail
__fail() {
	printf '%s: example %d: exit %d: %s\n' "$1" "$2" "$3" "$4" >&2
	cat "$__out" >&2
	exit 1
}
__check() {
	printf '%s' "$4" >"$__work/shown"
	awk -f "$__work/match.awk" "$__work/shown" "$__out" && return 0
	printf '%s: example %d: the output differs from the page: %s\n' "$1" "$2" "$3" >&2
	diff -u --label "$1, example $2, as shown" --label "as printed" \
		"$__work/shown" "$__out" >&2
	exit 1
}
EOF
printf '__work=%q\n' "$work" >>"$script"

examples=0 ran=0 skipped=0 commands=0 notes=""
cmds=() outs=() cur="" out=""
flush_cmd() {
	if [ -n "$cur" ]; then
		cmds+=("$cur")
		outs+=("$out")
	fi
	cur="" out=""
}
flush_example() {
	flush_cmd
	[ ${#cmds[@]} -gt 0 ] || return 0
	examples=$((examples + 1))
	local need i
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
		for i in "${!cmds[@]}"; do
			commands=$((commands + 1))
			# braces, not a subshell: cd, export, read and $! carry on;
			# a new file each time, as a job left running keeps the old
			printf '__out=$__work/out.%d\n{ %s\n} >"$__out" 2>&1\n' \
				"$commands" "${cmds[$i]}"
			printf '__rc=$?; [ $__rc -eq 0 ] || __fail %q %d "$__rc" %q\n' \
				"$name" "$examples" "${cmds[$i]}"
			printf '__check %q %d %q %q\n' \
				"$name" "$examples" "${cmds[$i]}" "${outs[$i]}"
		done >>"$script"
	fi
	cmds=() outs=()
}

while IFS= read -r rec; do
	case $rec in
	E) flush_example ;;
	C\ *) flush_cmd; cur=${rec#C } ;;
	K\ *) cur=$cur$'\n'${rec#K } ;;
	O*)
		rec=${rec#O}
		rec=${rec# }
		out=$out$rec$'\n'
		;;
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
