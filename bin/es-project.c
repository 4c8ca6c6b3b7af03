/* es-project: read models from a projection spec, incrementally, with
 * checkpoints; rebuild, status, follow, pause/resume; alerts. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "project.h"
#include "store.h"
#include "timeq.h"

enum {
	K_REBUILD = ES_K_PROG, K_FROM, K_STATUS, K_FOLLOW, K_PAUSE, K_RESUME, K_STDOUT,
	K_ON_ERROR, K_ALERTS_ONLY, K_INTERVAL,
};

enum action { RUN, STATUS, PAUSE, RESUME };

struct ctx {
	struct es_project_opts o;
	enum action act;
	int nact;
	int interval_given;
	int on_error_given;
};

static const struct es_opt opts[] = {
	ES_OPT_STORE,
	{"rebuild", K_REBUILD, 0, NULL, "build from the start beside the live model, then swap it in"},
	{"from", K_FROM, 1, "TIME", "build a fresh model from the first event at or after TIME"},
	{"follow", K_FOLLOW, 0, NULL, "keep applying events as they are appended (until SIGINT/SIGTERM)"},
	{"stdout", K_STDOUT, 0, NULL, "print the model instead of writing it (the store is not changed)"},
	{"on-error", K_ON_ERROR, 1, "stop|skip", "a failing event stops the projection (faulted) or goes to dead.ndjson"},
	{"alerts-only", K_ALERTS_ONLY, 0, NULL, "print alerts but not the model (pipes, --stdout)"},
	{"jobs", ES_K_JOBS, 1, "N", "apply events with N threads, by key partition (same result)"},
	{"interval", K_INTERVAL, 1, "MS", "--follow: look for new events every MS milliseconds (100)"},
	{"status", K_STATUS, 0, NULL, "print checkpoint, head, lag and state; exit 1 unless ok"},
	{"pause", K_PAUSE, 0, NULL, "pause the projection (a running --follow stops applying)"},
	{"resume", K_RESUME, 0, NULL, "resume a paused (or faulted) projection"},
	ES_OPT_COMMON,
	ES_OPT_END,
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int handle(int key, const char *arg, void *p)
{
	struct ctx *c = p;

	switch (key) {
	case K_REBUILD: c->o.rebuild = 1; return 0;
	case K_FROM: c->o.from = es_cli_time("from", arg); return 0;
	case K_FOLLOW: c->o.follow = 1; return 0;
	case K_STDOUT: c->o.to_stdout = 1; return 0;
	case K_ALERTS_ONLY: c->o.alerts_only = 1; return 0;
	case K_STATUS: c->act = STATUS; c->nact++; return 0;
	case K_PAUSE: c->act = PAUSE; c->nact++; return 0;
	case K_RESUME: c->act = RESUME; c->nact++; return 0;
	case K_INTERVAL:
		c->interval_given = 1;
		c->o.interval_ms = (int)es_cli_u64("interval", arg);
		if (c->o.interval_ms < 1 || c->o.interval_ms > 60000)
			es_cli_usage_error("--interval: must be between 1 and 60000 milliseconds");
		return 0;
	case K_ON_ERROR:
		c->on_error_given = 1;
		if (strcmp(arg, "stop") == 0)
			c->o.on_error = ES_ON_ERROR_STOP;
		else if (strcmp(arg, "skip") == 0)
			c->o.on_error = ES_ON_ERROR_SKIP;
		else
			es_cli_usage_error("--on-error: '%s' is not stop or skip", arg);
		return 0;
	}
	return ES_USAGE;
}

static int out_errno; /* why writing to stdout failed, once it did */
/* The run only prints (pipe mode, --stdout): a closed pipe ends it quietly
 * with 0, as it ends every reader. A store run's alerts come with its
 * commit, which their loss undoes, and --status answers with its exit
 * status: for those it stays an error. */
static int pure_output;

static int out(void *arg, const char *s, size_t n)
{
	(void)arg;
	if (fwrite(s, 1, n, stdout) != n || fflush(stdout) != 0) {
		if (!out_errno)
			out_errno = errno ? errno : EIO;
		return -1;
	}
	return 0;
}

/* Report a failed library call: a failed stdout once, with its reason (the
 * library's "cannot write ..." would be a second message for it), quietly
 * for EPIPE. */
static int report(const struct es_error *err)
{
	if (!out_errno)
		return es_cli_report(err);
	if (out_errno == EPIPE && pure_output)
		return 0;
	if (out_errno != EPIPE)
		es_cli_error("write error on standard output: %s", strerror(out_errno));
	es_cli_stdout_reported();
	return ES_IO;
}

static void note(void *arg, const char *msg)
{
	(void)arg;
	es_cli_error("%s", msg);
}

/* Store mode unless FILEs are named: -d or $ES_STORE given, ./es-store
 * there, or stdin a terminal (no events to read there: say "not a store",
 * as es-replay does, rather than wait on the keyboard). */
static int store_mode(const struct es_common *com)
{
	const char *env = getenv("ES_STORE");
	struct stat st;

	if (com->store != es_store_dir(NULL) || (env && *env) || isatty(0))
		return 1;
	return stat(com->store, &st) == 0 && S_ISDIR(st.st_mode);
}

/* For --status/--pause/--resume the operand is a spec file or a name. */
static int name_of(const char *arg, char **name, struct es_error *err)
{
	struct es_pspec *sp;
	struct stat st;

	if (stat(arg, &st) != 0 && es_pname_valid(arg)) {
		*name = strdup(arg);
		return *name ? 0 : es_fail(err, ES_IO, "out of memory");
	}
	if (es_pspec_load(&sp, arg, err))
		return err->code;
	*name = strdup(sp->name);
	es_pspec_free(sp);
	return *name ? 0 : es_fail(err, ES_IO, "out of memory");
}

static int control(struct ctx *c, const char *arg)
{
	struct es_error err = {0, ""};
	char *name = NULL;
	int rc;

	if (arg && name_of(arg, &name, &err))
		return es_cli_report(&err);
	if (c->act == STATUS)
		rc = es_project_status(name, &c->o, &err);
	else
		rc = es_project_set_state(name, c->act == PAUSE ? ES_PSTATE_PAUSED : ES_PSTATE_OK,
					  &c->o, &err);
	free(name);
	return rc && (err.msg[0] || out_errno) ? report(&err) : rc;
}

static void check_usage(const struct ctx *c, int nops, int pipe)
{
	const struct es_project_opts *o = &c->o;

	if (c->nact > 1)
		es_cli_usage_error("--status, --pause and --resume go alone");
	if (c->act != RUN && (o->rebuild || o->follow || o->to_stdout || o->from != INT64_MIN ||
			      c->on_error_given || o->jobs > 1))
		es_cli_usage_error("--status, --pause and --resume take no run options");
	if (c->act != RUN && nops > 1)
		es_cli_usage_error("--status, --pause and --resume take one SPEC or NAME");
	if ((c->act == PAUSE || c->act == RESUME) && nops == 0)
		es_cli_usage_error("--pause and --resume need a SPEC or NAME");
	if (c->act == RUN && nops == 0)
		es_cli_usage_error("a SPEC file is needed");
	if (o->follow && (pipe || o->to_stdout))
		es_cli_usage_error("--follow updates a projection in a store (not with FILEs or --stdout)");
	if (pipe && (o->rebuild || c->act != RUN))
		es_cli_usage_error("--rebuild, --status, --pause and --resume need a store");
	if (o->rebuild && o->from != INT64_MIN)
		es_cli_usage_error("--from already builds a fresh model: drop --rebuild");
	/* both would do nothing elsewhere: say so rather than ignore them */
	if (c->interval_given && !o->follow)
		es_cli_usage_error("--interval goes with --follow");
	if (o->alerts_only && !(c->act == RUN && (pipe || o->to_stdout)))
		es_cli_usage_error("--alerts-only goes with FILEs (pipe mode) or --stdout: "
				   "a store run prints no model");
}

static int run(struct ctx *c, const char *specfile, char **files, int nfiles, int pipe)
{
	struct es_error err = {0, ""};
	struct es_pspec *sp;
	int rc;

	if (es_pspec_load(&sp, specfile, &err))
		return es_cli_report(&err);
	if (c->o.follow) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	if (pipe)
		rc = es_project_files(sp, files, nfiles, &c->o, &err);
	else
		rc = es_project_store(sp, &c->o, &err);
	if (rc)
		rc = report(&err);
	es_pspec_free(sp);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctx c;
	struct es_common com;
	struct es_prog prog = {
		"es-project", "[options] SPEC [FILE...]\n       es-project --status [SPEC|NAME]\n"
		"       es-project --pause|--resume SPEC|NAME",
		"Build the read model a projection SPEC describes: from the store, incrementally\n"
		"with a checkpoint, or from FILEs (or stdin) of stored events.",
		opts, handle, &c,
	};
	int first, nops, pipe, rc;

	memset(&c, 0, sizeof(c));
	c.o.from = INT64_MIN;
	c.o.interval_ms = 100;
	es_cli_init("es-project");
	first = es_cli_parse(&prog, argc, argv, &com);
	nops = argc - first;
	c.o.store_dir = com.store;
	c.o.jobs = com.jobs;
	c.o.quiet = com.quiet;
	c.o.verbose = com.verbose;
	c.o.stop = &stop_flag;
	c.o.out = out;
	c.o.note = note;
	pipe = c.act == RUN && (nops > 1 || (nops == 1 && !store_mode(&com)));
	check_usage(&c, nops, pipe);
	pure_output = c.act == RUN && (pipe || c.o.to_stdout);
	if (c.act != RUN)
		rc = control(&c, nops ? argv[first] : NULL);
	else
		rc = run(&c, argv[first], argv + first + 1, nops - 1, pipe);
	if (pure_output && out_errno == EPIPE)
		return rc; /* (stdout's error flag is that closed pipe) */
	{
		int crc = es_cli_close_stdout();
		if (!rc)
			rc = crc;
	}
	return rc;
}
