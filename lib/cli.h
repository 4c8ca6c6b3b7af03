/* cli.h: what every program shares with the user: options, usage, messages,
 * exit codes, and a checked stdout.
 *
 * A program lists its options as an array of struct es_opt, mixing the
 * shared ones (ES_OPT_* macros, parsed here into struct es_common so every
 * program spells them alike) with its own (keys >= ES_K_PROG, handed to the
 * program's callback). --help is generated from the same table.
 */
#ifndef ES_CLI_H
#define ES_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

enum es_key {
	ES_K_HELP = 'h', ES_K_STORE = 'd', ES_K_QUIET = 'q', ES_K_VERBOSE = 'v',
	ES_K_JOBS = 'j',
	ES_K_VERSION = 256, ES_K_STREAM, ES_K_CATEGORY, ES_K_TYPE, ES_K_FROM_SEQ,
	ES_K_TO_SEQ, ES_K_SINCE, ES_K_UNTIL, ES_K_LIMIT, ES_K_REVERSE, ES_K_REDUCER,
	ES_K_NO_SNAPSHOTS, ES_K_JSON,
	ES_K_PROG = 512, /* program-specific keys start here */
};

struct es_opt {
	const char *name;    /* long name, NULL ends the table */
	int key;             /* short option letter, or an es_key >= 256 */
	int arg;             /* 0 none, 1 required */
	const char *argname; /* for --help */
	const char *help;
};

#define ES_OPT_STORE \
	{"store", ES_K_STORE, 1, "DIR", "the store (default $ES_STORE, else ./es-store)"}
#define ES_OPT_SELECTORS \
	{"stream", ES_K_STREAM, 1, "S", "only stream S (repeatable)"}, \
	{"category", ES_K_CATEGORY, 1, "PREFIX", "only streams starting with PREFIX"}, \
	{"type", ES_K_TYPE, 1, "T", "only events of type T (repeatable)"}, \
	{"from-seq", ES_K_FROM_SEQ, 1, "N", "only events with seq >= N"}, \
	{"to-seq", ES_K_TO_SEQ, 1, "N", "only events with seq <= N"}, \
	{"since", ES_K_SINCE, 1, "TIME", "only events with ts >= TIME"}, \
	{"until", ES_K_UNTIL, 1, "TIME", "only events with ts <= TIME"}, \
	{"limit", ES_K_LIMIT, 1, "N", "at most N records out"}, \
	{"reverse", ES_K_REVERSE, 0, NULL, "newest first"}
#define ES_OPT_REDUCER \
	{"reducer", ES_K_REDUCER, 1, "FILE", "fold with the reducer spec in FILE"}, \
	{"no-snapshots", ES_K_NO_SNAPSHOTS, 0, NULL, "ignore snapshots: full replay"}
#define ES_OPT_COMMON \
	{"quiet", ES_K_QUIET, 0, NULL, "print less"}, \
	{"verbose", ES_K_VERBOSE, 0, NULL, "print more on stderr"}, \
	{"help", ES_K_HELP, 0, NULL, "show this help and exit"}, \
	{"version", ES_K_VERSION, 0, NULL, "show the version and exit"}
#define ES_OPT_END {NULL, 0, 0, NULL, NULL}

/* What the shared options say. */
struct es_common {
	const char *store;
	int store_given;                    /* by -d or $ES_STORE, not the default */
	const char **streams; size_t nstreams; /* each name once, in the order first given */
	const char **types; size_t ntypes;
	const char *category;
	uint64_t from_seq, to_seq, limit;   /* to_seq, limit: UINT64_MAX when unset */
	int64_t since, until;               /* INT64_MIN / INT64_MAX when unset */
	int reverse;
	const char *reducer;
	int no_snapshots;
	int quiet, verbose, json;
	int jobs;
};

struct es_prog {
	const char *name;      /* "es-append" */
	const char *synopsis;  /* "[options] [FILE...]" */
	const char *summary;   /* one line */
	const struct es_opt *opts;
	/* called for keys the shared parser does not own; return 0 or
	 * ES_USAGE after es_cli_error() */
	int (*handle)(int key, const char *arg, void *ctx);
	void *ctx;
};

/* Set the program name, make sure fds 0-2 are open, route jansson's
 * allocations. Call first. */
void es_cli_init(const char *name);
/* Parse argv; returns the index of the first operand. Exits 0 for --help /
 * --version, 2 on usage errors. */
int es_cli_parse(const struct es_prog *p, int argc, char **argv, struct es_common *c);
void es_cli_usage(const struct es_prog *p, FILE *f);
/* "prog: message" on stderr, control characters escaped (es_cli_put_text). */
void es_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* s on f with control characters written as C escapes (\n, \t, \r,
 * \xNN; the C1 ones, U+0080..U+009F in UTF-8, as \u00NN): text from names
 * the user chose cannot drive the terminal. */
void es_cli_put_text(FILE *f, const char *s);
/* Usage error: message, a hint to --help, exit 2. */
_Noreturn void es_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The hint that follows a usage error: "Try 'prog --help' ...". */
void es_cli_hint(void);
/* Report err ("prog: msg") and return its code. */
int es_cli_report(const struct es_error *err);
/* Whether stdout was closed when the program started (it is /dev/null now). */
int es_cli_stdout_closed(void);
/* The program reported a stdout failure itself: es_cli_close_stdout stays
 * quiet about it (and still returns ES_IO). */
void es_cli_stdout_reported(void);
/* Flush and close stdout; on failure report it and return ES_IO. */
int es_cli_close_stdout(void);
/* Whether stderr is a terminal (progress is shown only then). */
int es_cli_progress_enabled(void);
/* Parsers for option values; exit 2 with a clear message when malformed. */
uint64_t es_cli_u64(const char *opt, const char *arg);
int64_t es_cli_time(const char *opt, const char *arg);
extern const char *es_progname;

#endif
