/* io.h: the system calls that touch the store, with fault and crash hooks.
 *
 * Every write, sync, rename, open and truncate of store files goes through
 * these wrappers. In test builds (ES_TEST_HOOKS) two environment variables
 * drive them:
 *
 *   ES_FAULT=op:N[+][,op:N...]  the Nth call of op fails (with '+', the Nth
 *                               and every later one). op is one of write,
 *                               fdatasync, fsync, rename, open, ftruncate,
 *                               malloc. The call fails with EIO (write: ENOSPC
 *                               when op is spelled "enospc"), malloc with NULL.
 *                               With ES_FAULT set, ES_FAULT_COUNT=1 prints
 *                               "es-fault: malloc: N calls" (per op) on
 *                               stderr at exit: how far a sweep must go.
 *   ES_CRASH=point:N            SIGKILL the process the Nth time the named
 *                               crash point is reached (see es_crash_point()).
 *
 * Release builds compile the hooks out.
 */
#ifndef ES_IO_H
#define ES_IO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all of buf, retrying short writes and EINTR. 0 or -1 with errno. */
int es_write_all(int fd, const void *buf, size_t len);
/* pwrite all of buf at off. 0 or -1 with errno. */
int es_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Read exactly len bytes at off unless EOF: returns bytes read or -1. */
ssize_t es_pread_full(int fd, void *buf, size_t len, off_t off);
int es_fdatasync(int fd);
int es_fsync(int fd);
int es_rename(const char *from, const char *to);
/* es_rename, but never over an existing file: -1 with EEXIST then
 * (renameat2 RENAME_NOREPLACE; link and unlink where the file system
 * cannot). */
int es_rename_noreplace(const char *from, const char *to);
int es_open(const char *path, int flags, int mode);
/* es_open for reading a file that another process may have removed since
 * it was listed (ENOENT is then an answer, not an error). Test builds:
 * ES_FAULT op "gone" makes it ENOENT. */
int es_open_listed(const char *path);
int es_ftruncate(int fd, off_t len);
/* fsync the directory holding path (or path itself when it is a directory). */
int es_fsync_dir(const char *dir);
/* malloc/realloc that honour ES_FAULT=malloc:N. Blocks of 8 MiB and more
 * are hinted as es_huge_hint does. */
void *es_malloc(size_t n);
void *es_realloc(void *p, size_t n);
/* Ask for transparent huge pages on the malloc'd block p of n bytes when
 * n >= 8 MiB (fewer page faults filling it). Returns p. */
void *es_huge_hint(void *p, size_t n);
/* madvise(advice) over the pages that hold [p, p + n), from p's page on:
 * 0, or -1 with errno. */
int es_madvise(const void *p, size_t n, int advice);
/* Zeroed memory (calloc) whose pages are mapped writable at once. A large
 * calloc is fresh mmap'd memory; read first (a hash table's probe finds
 * empty slots) each page maps the shared zero page, and the first write
 * to it then costs a fault, a copy and, with threads, a TLB shootdown on
 * every core; in a virtual machine every first touch is dear. From
 * 256 KiB on, one madvise(MADV_POPULATE_WRITE) maps them all; from 8 MiB
 * on, in huge pages where the kernel gives them (es_huge_hint). (A plain
 * memset after malloc becomes calloc in the compiler's hands.) Honours
 * ES_FAULT=malloc:N as es_malloc does. */
void *es_zalloc(size_t n);
/* How many es_malloc/es_realloc calls (jansson's included) failed so far,
 * in every thread: code that cannot tell a failed allocation from an
 * answer (a value "absent", a path "not settable") compares it before and
 * after. */
unsigned long es_alloc_failures(void);
/* Write data to path atomically: temp file in the same directory, fsync,
 * rename, fsync the directory. 0 or -1 with errno. */
int es_write_file_atomic(const char *path, const void *data, size_t len, int mode);
/* Read a whole file into a malloc'd NUL-terminated buffer. NULL with errno. */
char *es_read_file(const char *path, size_t *len);

/* Named crash points, documented where they are called:
 *   before-write   the batch is built, nothing written yet
 *   mid-write      half of the batch's bytes are written
 *   after-write    all written, not yet fdatasync'ed
 *   after-sync     durable, index not yet updated, not acknowledged
 *   before-rename  a temp file is complete and synced, not yet renamed
 *   after-rename   renamed, directory not yet fsync'ed
 *   after-index    the index is updated, nothing printed yet
 *   before-unsynced  a bulk run synced the index, index/unsynced is
 *                  not yet removed (store.c, es_store_bulk_end)
 * es-archive (archive.c), once per segment:
 *   archive-after-write     the compressed segment is written, synced and
 *                           checked under its temp name, not yet renamed
 *   archive-after-manifest  the MANIFEST lists the segment; its log/ copy
 *                           is still there
 *   archive-before-unlink   the writers' lock is held, the log/ copy is
 *                           about to be removed
 *   archive-purge-after-manifest  the MANIFEST no longer lists the purged
 *                           segments; their files are not yet deleted
 * es-project (project_dir.c), once per commit of a projection:
 *   project-after-model     the new generation's model.ndjson is written
 *                           and synced; no checkpoint yet
 *   project-after-alerts    alerts and dead letters are appended and
 *                           synced, beyond the sizes the live checkpoint
 *                           covers
 *   project-before-swap     the new generation is complete and synced;
 *                           `current` still names the old one (the swap
 *                           itself is before-rename / after-rename)
 *   project-after-swap      swapped and the directory synced; the old
 *                           generation is not yet removed
 */
#ifdef ES_TEST_HOOKS
void es_crash_point(const char *name);
#else
static inline void es_crash_point(const char *name) { (void)name; }
#endif

/* Test builds: ES_STOP=POINT stops the process (SIGSTOP) at the named
 * point, the first time it is reached, so that a test can run a writer or
 * es-archive under a reader that takes no lock, and then let it go on
 * (SIGCONT). The points:
 *   verify-listing   es-verify read the first segment name from log/
 *   verify-listed    es-verify read log/ and the MANIFEST, no segment yet
 *   reader-listed    es_log_open_store listed the segments, read none
 *   seek-listed      es_seek_init listed them, searched none
 *   writer-locked    es_store_lock holds the writers' lock, recovered
 *   writer-mid-write es-append wrote half of a batch (test builds write
 *                    it in two halves)
 */
#ifdef ES_TEST_HOOKS
void es_stop_point(const char *name);
#else
static inline void es_stop_point(const char *name) { (void)name; }
#endif

#endif
