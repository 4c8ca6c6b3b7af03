/* error.h: status codes and the error record every library call fills.
 *
 * The library never prints or exits. A failing call returns one of the codes
 * below (they are also the programs' exit codes, see es(7)) and leaves a
 * human-readable message, without the program name, in struct es_error.
 */
#ifndef ES_ERROR_H
#define ES_ERROR_H

enum es_status {
	ES_OK = 0,
	ES_NOMATCH = 1,  /* negative answer; also: integrity failure found */
	ES_USAGE = 2,    /* bad options or arguments */
	ES_DATA = 3,     /* bad input data */
	ES_IO = 4,       /* I/O or system error */
	ES_CONFLICT = 5, /* expected version mismatch */
};
#define ES_CORRUPT ES_NOMATCH

struct es_error {
	int code;
	char msg[1024];
};

/* Record an error and return its code. */
int es_fail(struct es_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Record code with "what: strerror(errno)". */
int es_fail_errno(struct es_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix an existing message ("prefix: old message"). Returns err->code. */
int es_error_prefix(struct es_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Where a line of input is, for messages, in buf (n bytes; ES_WHERE_MAX
 * hold any that fits in a message): "FILE: line N", or "line N" for
 * standard input (file "-", which has no name in messages). Returns buf. */
#define ES_WHERE_MAX 1024
char *es_line_where(char *buf, unsigned long n, const char *file, unsigned long long lineno);
/* Prefix err's message with es_line_where. Returns err->code. */
int es_error_at_line(struct es_error *err, const char *file, unsigned long long lineno);
void es_error_clear(struct es_error *err);
/* msg without a leading "name: ", for a finding that names the file itself. */
const char *es_msg_after(const char *msg, const char *name);

#endif
