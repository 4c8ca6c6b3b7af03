/* archive_int.h: what archive.c (the MANIFEST, archiving) and
 * archive_read.c (reading archived segments, the store's cache of them)
 * share inside the library. Not an interface: see archive.h for that. */
#ifndef ES_ARCHIVE_INT_H
#define ES_ARCHIVE_INT_H

#include <stdio.h>

#include "archive.h"

/* The path of storedir's archive MANIFEST. */
static inline void es_archive_manifest_path(const char *storedir, char *out, size_t n)
{
	snprintf(out, n, "%s/" ES_ARCHIVE_DIR "/" ES_ARCHIVE_MANIFEST, storedir);
}

/* An archived segment for messages: dir/file. */
static inline void es_archive_seg_name(const struct es_archive_seg *e, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", e->dir, e->file);
}

/* Restore a whole segment into *buf (malloc'd; *blen bytes); flags as
 * es_archive_rd_open's. */
int es_archive_restore_all(const char *storedir, const struct es_archive_seg *e, int flags,
			   char **buf, size_t *blen, struct es_error *err);

#endif
