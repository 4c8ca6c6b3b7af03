#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int es_fail(struct es_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->code = code;
	return code;
}

int es_fail_errno(struct es_error *err, int code, const char *fmt, ...)
{
	int saved = errno;
	size_t n;
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(saved));
	err->code = code;
	errno = saved;
	return code;
}

int es_error_prefix(struct es_error *err, const char *fmt, ...)
{
	char pre[512], old[sizeof(err->msg)], both[sizeof(pre) + sizeof(old) + 2];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(both, sizeof(both), "%s: %s", pre, old);
	memcpy(err->msg, both, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
	return err->code;
}

char *es_line_where(char *buf, unsigned long n, const char *file, unsigned long long lineno)
{
	if (strcmp(file, "-") == 0)
		snprintf(buf, n, "line %llu", lineno);
	else
		snprintf(buf, n, "%s: line %llu", file, lineno);
	return buf;
}

int es_error_at_line(struct es_error *err, const char *file, unsigned long long lineno)
{
	char old[sizeof(err->msg)], where[ES_WHERE_MAX];

	/* (not es_error_prefix, whose prefix is shorter than a long path) */
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s",
		 es_line_where(where, sizeof(where), file, lineno), old);
	return err->code;
}

void es_error_clear(struct es_error *err)
{
	err->code = 0;
	err->msg[0] = '\0';
}

const char *es_msg_after(const char *msg, const char *name)
{
	size_t n = strlen(name);

	return strncmp(msg, name, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}
