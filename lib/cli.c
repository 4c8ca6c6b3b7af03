#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "store.h"
#include "timeq.h"

const char *es_progname = "es";
static int stdout_was_closed, stdout_reported;

int es_cli_stdout_closed(void)
{
	return stdout_was_closed;
}

void es_cli_stdout_reported(void)
{
	stdout_reported = 1;
}

/* jansson ran out of memory twice (see es_json_init): nothing can go on
 * safely, and a writer's store is as safe as after a crash. No stdio: other
 * threads may hold its locks. */
static void out_of_memory(void)
{
	static const char msg[] = ": out of memory\n";
	char line[128];
	size_t n = strlen(es_progname);
	ssize_t r;

	if (n > sizeof(line) - sizeof(msg))
		n = sizeof(line) - sizeof(msg);
	memcpy(line, es_progname, n);
	memcpy(line + n, msg, sizeof(msg) - 1);
	r = write(2, line, n + sizeof(msg) - 1);
	(void)r;
	_exit(ES_IO);
}

void es_cli_init(const char *name)
{
	es_progname = name;
	/* Past a file size limit (ulimit -f), a write fails with EFBIG, which
	 * is handled as a full disk is, rather than the signal killing the
	 * program in the middle of a batch. */
	signal(SIGXFSZ, SIG_IGN);
	/* Keep fds 0-2 taken so no store file is ever opened as one of them. */
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (nfd >= 0 && nfd != fd) {
			dup2(nfd, fd);
			close(nfd);
		}
		if (fd == 1)
			stdout_was_closed = 1;
	}
	es_json_init(out_of_memory);
}

/* Control characters come from names the user chose (a stream called
 * "a\033[2J", a file name with a newline): shown raw they would move the
 * cursor, clear the screen or forge a line of their own. They are written as
 * C escapes instead, so one message stays one line of plain text. */
void es_cli_put_text(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) /* C1: U+0080..U+009F */
			fprintf(f, "\\u%04x", *++p);
		else if (*p >= 0x20 && *p != 0x7f)
			putc(*p, f);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p == '\r')
			fputs("\\r", f);
		else
			fprintf(f, "\\x%02x", *p);
	}
}

static void verror(const char *fmt, va_list ap)
{
	char small[1024], *msg = small;
	va_list ap2;

	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n >= (int)sizeof(small)) {
		char *big = malloc((size_t)n + 1);
		if (big) {
			vsnprintf(big, (size_t)n + 1, fmt, ap2);
			msg = big;
		}
	}
	va_end(ap2);
	fprintf(stderr, "%s: ", es_progname);
	es_cli_put_text(stderr, n < 0 ? fmt : msg);
	fputc('\n', stderr);
	if (msg != small)
		free(msg);
}

void es_cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
}

_Noreturn void es_cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(fmt, ap);
	va_end(ap);
	es_cli_hint();
	exit(ES_USAGE);
}

void es_cli_hint(void)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", es_progname);
}

int es_cli_report(const struct es_error *err)
{
	if (err->msg[0])
		es_cli_error("%s", err->msg);
	if (err->code == ES_USAGE)
		es_cli_hint();
	return err->code ? err->code : ES_IO;
}

void es_cli_usage(const struct es_prog *p, FILE *f)
{
	fprintf(f, "usage: %s %s\n%s\n\noptions:\n", p->name, p->synopsis, p->summary);
	for (const struct es_opt *o = p->opts; o->name; o++) {
		char left[64];
		int n = 0;
		if (o->key < 256)
			n = snprintf(left, sizeof(left), "-%c, ", o->key);
		else
			n = snprintf(left, sizeof(left), "    ");
		snprintf(left + n, sizeof(left) - (size_t)n, "--%s%s%s", o->name,
			 o->arg ? " " : "", o->arg ? o->argname : "");
		fprintf(f, "  %-26s %s\n", left, o->help);
	}
	fprintf(f, "\nExit status: 0 ok, 1 negative answer or integrity failure, 2 usage,\n"
		   "3 bad input data, 4 I/O or system error, 5 conflict. See %s(1).\n", p->name);
}

uint64_t es_cli_u64(const char *opt, const char *arg)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!arg || *arg < '0' || *arg > '9')
		es_cli_usage_error("--%s: '%s' is not a non-negative integer", opt, arg ? arg : "");
	v = strtoull(arg, &end, 10);
	if (*end || errno)
		es_cli_usage_error("--%s: '%s' is not a non-negative integer", opt, arg);
	return v;
}

int64_t es_cli_time(const char *opt, const char *arg)
{
	int64_t us;

	if (es_time_parse(arg, es_now_us(), &us) != 0)
		es_cli_usage_error("--%s: cannot parse time '%s'; accepted forms: %s", opt, arg,
				   es_time_forms);
	return us;
}

static int push(const char ***v, size_t *n, const char *s)
{
	const char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

/* --stream: a name given twice is one stream, read once */
static int push_stream(struct es_common *c, const char *s)
{
	for (size_t i = 0; i < c->nstreams; i++)
		if (strcmp(c->streams[i], s) == 0)
			return 0;
	return push(&c->streams, &c->nstreams, s);
}

static int shared(int key, const char *name, const char *arg, struct es_common *c)
{
	switch (key) {
	case ES_K_STORE:
		if (!*arg) /* (an unset variable: never another store by default) */
			es_cli_usage_error("--store: empty directory name");
		c->store = arg;
		return 1;
	case ES_K_STREAM: return push_stream(c, arg) ? -1 : 1;
	case ES_K_TYPE: return push(&c->types, &c->ntypes, arg) ? -1 : 1;
	case ES_K_CATEGORY: c->category = arg; return 1;
	case ES_K_FROM_SEQ: c->from_seq = es_cli_u64(name, arg); return 1;
	case ES_K_TO_SEQ: c->to_seq = es_cli_u64(name, arg); return 1;
	case ES_K_LIMIT: c->limit = es_cli_u64(name, arg); return 1;
	case ES_K_SINCE: c->since = es_cli_time(name, arg); return 1;
	case ES_K_UNTIL: c->until = es_cli_time(name, arg); return 1;
	case ES_K_REVERSE: c->reverse = 1; return 1;
	case ES_K_REDUCER: c->reducer = arg; return 1;
	case ES_K_NO_SNAPSHOTS: c->no_snapshots = 1; return 1;
	case ES_K_QUIET: c->quiet = 1; return 1;
	case ES_K_VERBOSE: c->verbose++; return 1;
	case ES_K_JSON: c->json = 1; return 1;
	case ES_K_JOBS:
		c->jobs = (int)es_cli_u64(name, arg);
		if (c->jobs < 1 || c->jobs > 256)
			es_cli_usage_error("--jobs: must be between 1 and 256");
		return 1;
	default: return 0;
	}
}

int es_cli_parse(const struct es_prog *p, int argc, char **argv, struct es_common *c)
{
	struct option lo[96];
	char so[200];
	size_t n = 0, sn = 0;

	memset(c, 0, sizeof(*c));
	c->to_seq = c->limit = UINT64_MAX;
	c->since = INT64_MIN;
	c->until = INT64_MAX;
	c->jobs = 1;
	/* No '+': options may follow the operands, as in git and jq
	 * (`es-replay part.ndjson --stream S`); "--" ends them. */
	so[sn++] = ':';
	for (const struct es_opt *o = p->opts; o->name && n < 95; o++) {
		lo[n].name = o->name;
		lo[n].has_arg = o->arg ? required_argument : no_argument;
		lo[n].flag = NULL;
		lo[n].val = o->key;
		n++;
		if (o->key < 256 && sn < sizeof(so) - 3) {
			so[sn++] = (char)o->key;
			if (o->arg)
				so[sn++] = ':';
		}
	}
	memset(&lo[n], 0, sizeof(lo[n]));
	so[sn] = '\0';
	opterr = 0;
	for (;;) {
		int li = -1, key = getopt_long(argc, argv, so, lo, &li);
		const char *name = NULL;
		if (key == -1)
			break;
		if (key == '?') {
			/* getopt_long puts a known option's key in optopt
			 * when it was given a value it does not take */
			for (const struct es_opt *o = p->opts; optopt && o->name; o++)
				if (o->key == optopt)
					es_cli_usage_error("option '--%s' takes no value", o->name);
			if (optopt)
				es_cli_usage_error("unknown option '-%c'", optopt);
			es_cli_usage_error("unknown option '%s'", argv[optind - 1]);
		}
		if (key == ':')
			es_cli_usage_error("option '%s' needs a value", argv[optind - 1]);
		for (const struct es_opt *o = p->opts; o->name; o++)
			if (o->key == key)
				name = o->name;
		if (key == ES_K_HELP) {
			es_cli_usage(p, stdout);
			exit(es_cli_close_stdout());
		}
		if (key == ES_K_VERSION) {
			printf("%s %s\n", p->name, ES_VERSION);
			exit(es_cli_close_stdout());
		}
		int r = shared(key, name ? name : "?", optarg, c);
		if (r < 0) {
			es_cli_error("out of memory");
			exit(ES_IO);
		}
		if (r == 0 && (!p->handle || p->handle(key, optarg, p->ctx) != 0))
			exit(ES_USAGE);
	}
	c->store_given = c->store != NULL || (getenv("ES_STORE") && *getenv("ES_STORE"));
	c->store = es_store_dir(c->store);
	return optind;
}

int es_cli_close_stdout(void)
{
	int bad = ferror(stdout);
	long wrote = stdout_was_closed ? ftell(stdout) : 0;

	if (fflush(stdout) != 0)
		bad = 1;
	if (fclose(stdout) != 0 && errno != EBADF)
		bad = 1;
	if (stdout_reported)
		return ES_IO;
	if (stdout_was_closed && wrote != 0) {
		es_cli_error("write error: standard output is closed");
		return ES_IO;
	}
	if (bad) {
		if (errno == EPIPE)
			return 0;
		es_cli_error("write error on standard output: %s", strerror(errno ? errno : EIO));
		return ES_IO;
	}
	return 0;
}

int es_cli_progress_enabled(void)
{
	return isatty(2);
}
