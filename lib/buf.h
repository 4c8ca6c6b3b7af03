/* buf.h: a growable byte buffer (git's strbuf, small). */
#ifndef ES_BUF_H
#define ES_BUF_H

#include <stddef.h>
#include <stdint.h>

struct es_buf {
	char *p;
	size_t len, cap;
};
#define ES_BUF_INIT {NULL, 0, 0}

/* Make room for n more bytes. 0 or -1 (ENOMEM). */
int es_buf_grow(struct es_buf *b, size_t n);
int es_buf_add(struct es_buf *b, const void *data, size_t n);
int es_buf_adds(struct es_buf *b, const char *s);
int es_buf_addf(struct es_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int es_buf_addc(struct es_buf *b, char c);
/* Write v in decimal at p (no NUL); returns the end. */
char *es_put_u64(char *p, uint64_t v);
static inline void es_buf_reset(struct es_buf *b) { b->len = 0; }
void es_buf_release(struct es_buf *b);

#endif
