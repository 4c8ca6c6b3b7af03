#!/usr/bin/env bats
# The man pages: lint, sections, and the commands of their EXAMPLES, which
# are run so that the documentation cannot drift from the programs.
#
# Convention (tests/man-examples.sh has the details): an example is a
# display in the rendered EXAMPLES section (in mdoc a `.Bd -literal -offset
# indent` block); in it, a line starting with "$ " is a command and the "> "
# lines right after it continue it, as the shell's prompts show them; the
# other lines after a command are its output (stdout and stderr together),
# which must match what it prints, "..." standing for text that varies from
# run to run. The examples of a page run in order in one fresh temp dir,
# with ES_STORE pointing into it and the built programs on PATH; every
# command must exit 0. An example that names an es program that is not
# built yet is skipped with a note, and a page whose examples are all
# skipped is reported as skipped.

bats_require_minimum_version 1.5.0
load helpers

MAN="$ROOT/man"
RUNNER="$ROOT/tests/man-examples.sh"

# run_examples PAGE: run PAGE's examples here; skip when nothing could run
run_examples() {
	run --separate-stderr "$RUNNER" "$1"
	if [ "$status" -eq 77 ]; then
		skip "$output"
	fi
	if [ "$status" -ne 0 ]; then
		echo "$output"
		echo "$stderr"
		return 1
	fi
	local line
	while IFS= read -r line; do
		case $line in *" skipped: "*) echo "# $line" >&3 ;; esac
	done <<<"$output"
}

# page FILE SECTION-TEXT: a tiny mdoc page with SECTION-TEXT as EXAMPLES
fixture() {
	mkdir -p "$TMP/man"
	cat >"$TMP/man/$1" <<EOF
.Dd November 26, 2026
.Dt FIXTURE 1
.Os
.Sh NAME
.Nm fixture
.Nd a page for testing the examples runner
.Sh EXAMPLES
$2
EOF
}

@test "every man page passes mandoc -Tlint -Wwarning" {
	run -0 --separate-stderr mandoc -Tlint -Wwarning "$MAN"/*.[157]
	assert_output ""
	assert_equal "$stderr" ""
}

# style.md's sections, in the order mdoc(7) wants (mandoc -Tlint warns
# when ENVIRONMENT or FILES come after EXIT STATUS)
@test "every man page has the sections style.md asks for, in mdoc's order" {
	local page want got s
	for page in "$MAN"/*.[157]; do
		want="NAME SYNOPSIS DESCRIPTION"
		case $page in *.1) want="$want OPTIONS" ;; esac
		want="$want ENVIRONMENT FILES EXIT_STATUS EXAMPLES SEE_ALSO"
		got=""
		while IFS= read -r s; do
			s=${s#.Sh }
			s=${s//\"/}
			case " $want " in *" ${s// /_} "*) got="$got ${s// /_}" ;; esac
		done < <(grep '^\.Sh ' "$page")
		assert_equal "${page##*/}:${got# }" "${page##*/}:$want"
	done
}

@test "every man page shows at least one command in EXAMPLES" {
	local page
	for page in "$MAN"/*.[157]; do
		run -0 "$RUNNER" -n "$page"
		assert_output --partial "# example 1"
	done
}

@test "the runner reads commands and their continuations as the page renders them" {
	fixture fixture.1 '.Bd -literal -offset indent
$ printf '"'"'%s\en'"'"' a \e
>   b | sort
b
not a command
> not a continuation either
$ echo "\(aqq\(aq"
.Ed
Prose that mentions $ signs is not run,
$ nor prose that starts like a command.
.Bd -literal -offset indent
$ true
.Ed'
	run -0 --separate-stderr "$RUNNER" -n "$TMP/man/fixture.1"
	assert_equal "$output" "$(printf '%s\n' '# example 1' \
		"printf '%s\\n' a \\" '  b | sort' "echo \"'q'\"" '' '# example 2' 'true')"
}

@test "the runner fails on the first failing command and names it" {
	fixture fixture.1 '.Bd -literal -offset indent
$ true
$ false
$ touch should-not-exist
.Ed'
	run -1 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
	assert_equal "$stderr" "fixture.1: example 1: exit 1: false"
	[ ! -e should-not-exist ]
}

@test "the runner runs with pipefail and without standard input" {
	fixture fixture.1 '.Bd -literal -offset indent
$ false | cat
.Ed'
	run -1 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
	assert_equal "$stderr" "fixture.1: example 1: exit 1: false | cat"
	fixture fixture.1 '.Bd -literal -offset indent
$ test "$(cat)" = ""
.Ed'
	run -0 "$RUNNER" "$TMP/man/fixture.1" <<<"some input"
}

@test "the runner skips examples that need a program that is not built" {
	fixture es-notyet.1 '.Bd -literal -offset indent
$ es-notyet --frobnicate > out
.Ed
.Bd -literal -offset indent
$ echo es-notyet-like words and ./es-notyet paths do not count > out2
.Ed'
	run -0 --separate-stderr "$RUNNER" "$TMP/man/es-notyet.1"
	assert_line "es-notyet.1: example 1 skipped: needs es-notyet (not built)"
	[ ! -e out ] && [ -e out2 ]
	fixture es-notyet.1 '.Bd -literal -offset indent
$ es-notyet
.Ed'
	run -77 --separate-stderr "$RUNNER" "$TMP/man/es-notyet.1"
}

@test "the runner fails when a command prints other than the page shows, with a diff" {
	fixture fixture.1 '.Bd -literal -offset indent
$ echo one
one
.Ed
.Bd -literal -offset indent
$ printf '"'"'%s\en'"'"' 61 62
61
61
$ touch should-not-exist
.Ed'
	run -1 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
	assert_equal "$stderr" "$(printf '%s\n' \
		"fixture.1: example 2: the output differs from the page: printf '%s\\n' 61 62" \
		'--- fixture.1, example 2, as shown' '+++ as printed' '@@ -1,2 +1,2 @@' \
		' 61' '-61' '+62')"
	[ ! -e should-not-exist ]
}

@test "the runner passes when every command prints what the page shows" {
	fixture fixture.1 '.Bd -literal -offset indent
$ echo one
one
$ printf '"'"'%s\en'"'"' 61 62
61
62
$ true
.Ed'
	run -0 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
	assert_output "fixture.1: 3 commands in 1 examples passed"
}

@test "the runner compares stderr too, and a command shown without output must print nothing" {
	fixture fixture.1 '.Bd -literal -offset indent
$ echo oops >&2; echo "exit 1"
oops
exit 1
.Ed'
	run -0 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
	fixture fixture.1 '.Bd -literal -offset indent
$ echo oops >&2
.Ed'
	run -1 "$RUNNER" "$TMP/man/fixture.1"
	assert_line --index 0 "fixture.1: example 1: the output differs from the page: echo oops >&2"
	assert_line "+oops"
}

@test "the runner: ... matches any text within a line, and a line of ... any lines" {
	fixture fixture.1 '.Bd -literal -offset indent
$ echo "id 4f2a, took 12 ms"; seq 5; echo end
id ..., took ... ms
1
\&...
5
end
$ echo "empty wildcards"; echo last
empty wildcards...
\&...
last
.Ed'
	run -0 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
	fixture fixture.1 '.Bd -literal -offset indent
$ echo "id 4f2a, took 12 s"
id ..., took ... ms
.Ed'
	run -1 "$RUNNER" "$TMP/man/fixture.1"
	assert_line "-id ..., took ... ms"
}

@test "the runner: output runs to the end of the display, blank lines included; text before the first command is not output" {
	fixture fixture.1 '.Bd -literal -offset indent
10 3 * * * not a command, not compared
$ printf '"'"'a\en\enb\en'"'"'
a

b
.Ed
.Bd -literal -offset indent
a line shown without a command
.Ed'
	run -0 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
	fixture fixture.1 '.Bd -literal -offset indent
$ printf '"'"'a\en\enb\en'"'"'
a
.Ed
.Bd -literal -offset indent
b
.Ed'
	run -1 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
}

@test "the runner refuses a page without commands in EXAMPLES" {
	fixture fixture.1 'Nothing to run here.'
	run -2 --separate-stderr "$RUNNER" "$TMP/man/fixture.1"
	assert_equal "$stderr" "man-examples.sh: $TMP/man/fixture.1: no commands (\"\$ \" lines) in EXAMPLES"
}

@test "es-append(1): the EXAMPLES run" {
	run_examples "$MAN/es-append.1"
}

@test "es-store(5): the EXAMPLES run, the sha256sum recipe included" {
	run_examples "$MAN/es-store.5"
	# the runner compared the recipe's output with this line of the page
	grep -qx 'chain ok' "$MAN/es-store.5"
}

@test "es(7): the EXAMPLES run" {
	run_examples "$MAN/es.7"
}

@test "every other man page: the EXAMPLES run, or are skipped until built" {
	local page ran=0 notes=""
	for page in "$MAN"/*.[157]; do
		case ${page##*/} in es-append.1 | es-store.5 | es.7) continue ;; esac
		mkdir -p "$TMP/${page##*/}"
		pushd "$TMP/${page##*/}" >/dev/null
		ES_STORE="$PWD/store" run --separate-stderr "$RUNNER" "$page"
		popd >/dev/null
		case $status in
		0) ran=$((ran + 1)) ;;
		77) notes="$notes ${page##*/}" ;;
		*)
			echo "$output"
			echo "$stderr"
			return 1
			;;
		esac
	done
	if [ $ran -eq 0 ]; then
		skip "no other page could run yet:${notes:- none}"
	fi
}
