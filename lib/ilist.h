/* ilist.h: a list of findings (es_verify_issue): what es-verify reports.
 * Adding never fails: when memory runs out the item is lost and oom set,
 * so that the caller can refuse to give a verdict. */
#ifndef ES_ILIST_H
#define ES_ILIST_H

#include <stdarg.h>
#include <stdint.h>

#include "verify.h"

struct es_ilist {
	struct es_verify_issue *v;
	size_t n, cap;
	int oom;
};

void es_ilist_vadd(struct es_ilist *l, const char *file, int has_off, uint64_t off,
		   uint64_t seq, const char *fmt, va_list ap);
void es_ilist_add(struct es_ilist *l, const char *file, int has_off, uint64_t off,
		  uint64_t seq, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* When an item about the same line (file, offset and seq) is there, add
 * msg to its reason after "; " (one line, one finding, as a serial check
 * words it) and return 1; else 0. */
int es_ilist_join(struct es_ilist *l, const char *file, uint64_t off, uint64_t seq,
		  const char *msg);
void es_ilist_release(struct es_ilist *l);
/* Move every item of src to the end of dst. */
void es_ilist_move(struct es_ilist *dst, struct es_ilist *src);
/* Order the findings by offset (stable; lists are short). */
void es_ilist_sort(struct es_ilist *l);

#endif
