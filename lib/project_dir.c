/* project_dir.c: projections/NAME/ in a store: generations swapped in by
 * one rename, the checkpoint, the locks, recovery after a crash.
 *
 * Crash points (ES_CRASH, see io.h), in the order a commit reaches them:
 *   project-after-model    the new generation's model.ndjson is written
 *   project-after-alerts   alerts and dead letters are appended, not yet covered
 *   project-before-swap    the new generation is complete and synced
 *   (before-rename, after-rename: the swap of `current` itself)
 *   project-after-swap     swapped and the directory synced; old generation still there
 */
#include "project.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

static const char *const state_names[] = {"ok", "faulted", "paused"};

const char *es_pstate_name(enum es_pstate s)
{
	return state_names[s];
}

static void path_in(const struct es_pdir *pd, const char *name, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s", pd->dir, name);
}

static void gen_name(uint64_t gen, char out[32])
{
	snprintf(out, 32, "gen-%020llu", (unsigned long long)gen);
}

/* mkdir that is durable: the parent is synced when the directory is new. */
static int make_dir_synced(const char *path, struct es_error *err)
{
	char parent[PATH_MAX];
	char *slash;

	if (mkdir(path, 0777) != 0) {
		if (errno == EEXIST)
			return 0;
		return es_fail_errno(err, ES_IO, "cannot create '%s'", path);
	}
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	if (es_fsync_dir(slash ? parent : ".") != 0)
		return es_fail_errno(err, ES_IO, "cannot sync '%s'", slash ? parent : ".");
	return 0;
}

/* ---- the checkpoint ---- */

int es_pckpt_format(const struct es_pckpt *cp, const char *name, struct es_buf *b)
{
	int rc = es_buf_adds(b, "{\"name\":") || es_json_add_string(b, name, strlen(name)) ||
		 es_buf_addf(b, ",\"seq\":%llu,\"hash\":\"%s\",\"ts\":", (unsigned long long)cp->seq,
			     cp->hash);
	if (!rc)
		rc = cp->ts[0] ? es_buf_addf(b, "\"%s\"", cp->ts) : es_buf_adds(b, "null");
	if (!rc)
		rc = es_buf_addf(b, ",\"state\":\"%s\",\"spec_version\":%lld,\"spec_sha256\":\"%s\","
				 "\"generation\":%llu,\"keys\":%llu,\"events\":%llu,\"alerts\":%llu,"
				 "\"alerts_size\":%llu,\"dead\":%llu,\"dead_size\":%llu,\"built\":\"%s\","
				 "\"updated\":\"%s\"", es_pstate_name(cp->state),
				 (long long)cp->spec_version, cp->spec_sha, (unsigned long long)cp->gen,
				 (unsigned long long)cp->keys, (unsigned long long)cp->events,
				 (unsigned long long)cp->alerts, (unsigned long long)cp->alerts_size,
				 (unsigned long long)cp->dead, (unsigned long long)cp->dead_size,
				 cp->built, cp->updated);
	if (!rc && cp->from[0])
		rc = es_buf_addf(b, ",\"from\":\"%s\"", cp->from);
	if (!rc && cp->state == ES_PSTATE_FAULTED)
		rc = es_buf_addf(b, ",\"fault\":{\"seq\":%llu,\"reason\":",
				 (unsigned long long)cp->fault_seq) ||
		     es_json_add_string(b, cp->fault, strlen(cp->fault)) || es_buf_addc(b, '}');
	return rc || es_buf_addc(b, '}') ? -1 : 0;
}

static void get_str(json_t *o, const char *key, char *out, size_t n)
{
	const char *s = json_string_value(json_object_get(o, key));

	snprintf(out, n, "%s", s ? s : "");
}

static uint64_t get_u64(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

int es_pckpt_parse(struct es_pckpt *cp, const char *text, size_t len, struct es_error *err)
{
	json_t *j = json_loadb(text, len, 0, NULL), *fault;
	const char *st;
	int i;

	memset(cp, 0, sizeof(*cp));
	st = json_string_value(json_object_get(j, "state"));
	for (i = 0; st && i < 3 && strcmp(st, state_names[i]); i++)
		;
	if (!json_is_object(j) || !st || i == 3 ||
	    !json_is_integer(json_object_get(j, "seq")) ||
	    !json_is_string(json_object_get(j, "hash"))) {
		json_decref(j);
		return es_fail(err, ES_CORRUPT, "checkpoint.json: not a checkpoint");
	}
	cp->state = (enum es_pstate)i;
	cp->seq = get_u64(j, "seq");
	get_str(j, "hash", cp->hash, sizeof(cp->hash));
	get_str(j, "ts", cp->ts, sizeof(cp->ts));
	cp->spec_version = json_integer_value(json_object_get(j, "spec_version"));
	get_str(j, "spec_sha256", cp->spec_sha, sizeof(cp->spec_sha));
	cp->gen = get_u64(j, "generation");
	cp->keys = get_u64(j, "keys");
	cp->events = get_u64(j, "events");
	cp->alerts = get_u64(j, "alerts");
	cp->alerts_size = get_u64(j, "alerts_size");
	cp->dead = get_u64(j, "dead");
	cp->dead_size = get_u64(j, "dead_size");
	get_str(j, "built", cp->built, sizeof(cp->built));
	get_str(j, "updated", cp->updated, sizeof(cp->updated));
	get_str(j, "from", cp->from, sizeof(cp->from));
	if ((fault = json_object_get(j, "fault"))) {
		cp->fault_seq = get_u64(fault, "seq");
		get_str(fault, "reason", cp->fault, sizeof(cp->fault));
	}
	json_decref(j);
	if (!es_is_hash_hex(cp->hash, strlen(cp->hash)) || cp->gen == 0)
		return es_fail(err, ES_CORRUPT, "checkpoint.json: not a checkpoint");
	return 0;
}

/* ---- reading the current generation ---- */

static char *read_at(int dfd, const char *name, size_t *len, int *missing)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, n = 0;
	char *buf = NULL;

	*missing = 0;
	if (fd < 0) {
		*missing = errno == ENOENT;
		return NULL;
	}
	for (;;) {
		ssize_t r;
		if (n + 1 >= cap || !buf) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				break;
			buf = nb;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0) {
				close(fd);
				buf[n] = '\0';
				*len = n;
				return buf;
			}
			break;
		}
		n += (size_t)r;
	}
	free(buf);
	close(fd);
	return NULL;
}

/* Open the current generation and read what is asked from it; a writer
 * may swap generations meanwhile, so a file gone missing means "again". */
static int read_current(struct es_pdir *pd, struct es_pckpt *cp, char **model, size_t *mlen,
			char **win, size_t *wlen, struct es_error *err)
{
	char cur[PATH_MAX];

	path_in(pd, "current", cur);
	for (int tries = 0; tries < 100; tries++) {
		int dfd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC), miss = 0;
		char *ck = NULL;
		size_t cklen;
		if (dfd < 0 && errno == ENOENT)
			return 1;
		if (dfd < 0)
			return es_fail_errno(err, ES_IO, "cannot open '%s'", cur);
		ck = read_at(dfd, "checkpoint.json", &cklen, &miss);
		if (ck && model)
			*model = read_at(dfd, "model.ndjson", mlen, &miss);
		if (ck && win && (!model || *model)) {
			*win = read_at(dfd, "windows.ndjson", wlen, &miss);
			if (!*win && miss) {
				miss = 0; /* optional: no windows in the spec */
				*wlen = 0;
			}
		}
		close(dfd);
		if (ck && (!model || *model) && (miss == 0)) {
			int rc = es_pckpt_parse(cp, ck, cklen, err);
			free(ck);
			return rc;
		}
		free(ck);
		if (model) {
			free(*model);
			*model = NULL;
		}
		if (win) {
			free(*win);
			*win = NULL;
		}
		if (!miss)
			return es_fail_errno(err, ES_IO, "cannot read '%s'", cur);
	}
	return es_fail(err, ES_IO, "'%s' keeps changing", cur);
}

int es_pdir_reload(struct es_pdir *pd, struct es_error *err)
{
	int rc = read_current(pd, &pd->cp, NULL, NULL, NULL, NULL, err);

	if (rc > 1)
		return rc;
	pd->have = rc == 0;
	if (rc == 1)
		memset(&pd->cp, 0, sizeof(pd->cp));
	return 0;
}

int es_pdir_read_model(struct es_pdir *pd, char **model, size_t *mlen, char **windows,
		       size_t *wlen, struct es_error *err)
{
	int rc;

	*model = *windows = NULL;
	*mlen = *wlen = 0;
	rc = read_current(pd, &pd->cp, model, mlen, windows, wlen, err);
	if (rc == 1)
		return es_fail(err, ES_IO, "%s: no current generation", pd->dir);
	return rc;
}

int es_pdir_open(struct es_pdir *pd, const char *store_dir, const char *name, int create,
		 struct es_error *err)
{
	char path[PATH_MAX];
	struct stat st;

	memset(pd, 0, sizeof(*pd));
	pd->lock_fd = -1;
	if (asprintf(&pd->dir, "%s/projections/%s", store_dir, name) < 0 ||
	    !(pd->name = strdup(name))) {
		pd->dir = NULL;
		return es_fail(err, ES_IO, "out of memory");
	}
	if (create) {
		snprintf(path, sizeof(path), "%s/projections", store_dir);
		if (make_dir_synced(path, err) || make_dir_synced(pd->dir, err))
			return err->code;
	} else if (stat(pd->dir, &st) != 0) {
		return 0; /* no such projection: have stays 0 */
	}
	return es_pdir_reload(pd, err);
}

void es_pdir_close(struct es_pdir *pd)
{
	if (pd->lock_fd >= 0)
		close(pd->lock_fd);
	free(pd->dir);
	free(pd->name);
	memset(pd, 0, sizeof(*pd));
	pd->lock_fd = -1;
}

/* ---- locks and recovery ---- */

static int lock_file(const struct es_pdir *pd, const char *name, int how, struct es_error *err)
{
	char path[PATH_MAX];
	int fd;

	path_in(pd, name, path);
	fd = es_open(path, O_RDWR | O_CREAT, 0666);
	if (fd < 0)
		return -es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	while (flock(fd, how) != 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK)
			es_fail(err, ES_CONFLICT, "projection '%s' is being updated by another "
				"es-project (%s is locked)", pd->name, path);
		else
			es_fail_errno(err, ES_IO, "cannot lock '%s'", path);
		close(fd);
		return -err->code;
	}
	return fd;
}

int es_pdir_busy(const struct es_pdir *pd)
{
	char path[PATH_MAX];
	int fd, busy;

	path_in(pd, "lock", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while ((busy = flock(fd, LOCK_SH | LOCK_NB)) != 0 && errno == EINTR)
		;
	busy = busy != 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

static int remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int cut_file(const struct es_pdir *pd, const char *name, uint64_t size, struct es_error *err)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/current/%s", pd->dir, name);
	if (stat(path, &st) != 0 || (uint64_t)st.st_size <= size)
		return 0;
	fd = es_open(path, O_WRONLY, 0);
	if (fd < 0 || es_ftruncate(fd, (off_t)size) || es_fsync(fd)) {
		es_fail_errno(err, ES_IO, "cannot cut '%s' back to %llu bytes", path,
			      (unsigned long long)size);
		if (fd >= 0)
			close(fd);
		return err->code;
	}
	close(fd);
	return 0;
}

static int ensure_links(const struct es_pdir *pd, struct es_error *err)
{
	static const char *const names[] = {"model.ndjson", "checkpoint.json", "alerts.ndjson",
					    "dead.ndjson", NULL};
	char path[PATH_MAX], target[64];
	int made = 0;

	for (int i = 0; names[i]; i++) {
		path_in(pd, names[i], path);
		snprintf(target, sizeof(target), "current/%s", names[i]);
		if (symlink(target, path) == 0)
			made = 1;
		else if (errno != EEXIST)
			return es_fail_errno(err, ES_IO, "cannot create '%s'", path);
	}
	if (made && es_fsync_dir(pd->dir))
		return es_fail_errno(err, ES_IO, "cannot sync '%s'", pd->dir);
	return 0;
}

/* Under the writer lock: whatever a crashed commit left behind goes. */
static int recover(struct es_pdir *pd, struct es_error *err)
{
	char cur[PATH_MAX], path[PATH_MAX], now[64] = "";
	DIR *d;
	struct dirent *e;
	ssize_t n;

	path_in(pd, "current", cur);
	n = readlink(cur, now, sizeof(now) - 1);
	now[n > 0 ? n : 0] = '\0';
	if (!(d = opendir(pd->dir)))
		return es_fail_errno(err, ES_IO, "cannot open '%s'", pd->dir);
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "gen-", 4) == 0 && strcmp(e->d_name, now) != 0) {
			path_in(pd, e->d_name, path);
			remove_tree(path);
		} else if (strcmp(e->d_name, "current.tmp") == 0) {
			unlinkat(dirfd(d), e->d_name, 0);
		}
	}
	closedir(d);
	if ((d = opendir(cur))) {
		while ((e = readdir(d)))
			if (strstr(e->d_name, ".tmp."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	if (es_pdir_reload(pd, err))
		return err->code;
	if (pd->have && (cut_file(pd, "alerts.ndjson", pd->cp.alerts_size, err) ||
			 cut_file(pd, "dead.ndjson", pd->cp.dead_size, err)))
		return err->code;
	return ensure_links(pd, err);
}

int es_pdir_lock(struct es_pdir *pd, struct es_error *err)
{
	int fd = lock_file(pd, "lock", LOCK_EX | LOCK_NB, err);

	if (fd < 0)
		return -fd;
	pd->lock_fd = fd;
	return recover(pd, err);
}

/* ---- commit ---- */

struct fdout {
	int fd;
	int werrno; /* why a write failed, for the message */
	uint64_t bytes;
};

static int write_fd(void *arg, const char *s, size_t n)
{
	struct fdout *o = arg;

	o->bytes += n;
	if (es_write_all(o->fd, s, n) == 0)
		return 0;
	o->werrno = errno;
	return -1;
}

/* Write one file of the new generation with what es_proj_write gives. */
static int write_rows(const char *gdir, const char *name, struct es_proj *p, int what,
		      struct es_error *err)
{
	char path[PATH_MAX];
	struct fdout o = {-1, 0, 0};

	snprintf(path, sizeof(path), "%s/%s", gdir, name);
	o.fd = es_open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
	if (o.fd < 0)
		return es_fail_errno(err, ES_IO, "cannot create '%s'", path);
	if (es_proj_write(p, what, write_fd, &o, err)) {
		close(o.fd);
		if (!o.werrno)
			return es_error_prefix(err, "%s", path);
		errno = o.werrno;
		return es_fail_errno(err, ES_IO, "cannot write '%s'", path);
	}
	if (es_fsync(o.fd) || close(o.fd))
		return es_fail_errno(err, ES_IO, "cannot write '%s'", path);
	return 0;
}

static int write_small(const char *gdir, const char *name, const char *s, size_t n,
		       struct es_error *err)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", gdir, name);
	fd = es_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd < 0 || es_write_all(fd, s, n) || es_fsync(fd)) {
		es_fail_errno(err, ES_IO, "cannot write '%s'", path);
		if (fd >= 0)
			close(fd);
		return err->code;
	}
	close(fd);
	return 0;
}

/* Append m to NAME in the new generation: a hard link of the old one (the
 * same file grows; the old checkpoint's size still bounds it), or a new
 * file. Returns the new committed size in *size. */
static int append_log(const struct es_pdir *pd, const char *gdir, const char *name,
		      const struct es_pmsgs *m, int fresh, uint64_t *size, struct es_error *err)
{
	char old[PATH_MAX], path[PATH_MAX];
	uint64_t at = fresh ? 0 : *size;
	int fd, bad = 0;

	snprintf(path, sizeof(path), "%s/%s", gdir, name);
	snprintf(old, sizeof(old), "%s/current/%s", pd->dir, name);
	if (fresh || !pd->have || link(old, path) != 0) {
		if (!fresh && pd->have && errno != ENOENT)
			return es_fail_errno(err, ES_IO, "cannot link '%s'", path);
		at = 0;
	}
	fd = es_open(path, O_WRONLY | O_CREAT, 0666);
	if (fd < 0)
		return es_fail_errno(err, ES_IO, "cannot open '%s'", path);
	for (size_t i = 0; i < m->n && !bad; i++) {
		bad = es_pwrite_all(fd, m->text.p + m->v[i].off, m->v[i].len, (off_t)at);
		at += m->v[i].len;
	}
	if (bad || es_ftruncate(fd, (off_t)at) || es_fdatasync(fd)) {
		es_fail_errno(err, ES_IO, "cannot write '%s'", path);
		close(fd);
		return err->code;
	}
	close(fd);
	*size = at;
	return 0;
}

/* Under ctl.lock: keep a pause or resume made while we were working. */
static void carry_state(struct es_pdir *pd, struct es_pckpt *cp)
{
	struct es_pckpt now;
	struct es_error err = {0, ""};

	if (cp->state == ES_PSTATE_FAULTED || !pd->have)
		return;
	if (read_current(pd, &now, NULL, NULL, NULL, NULL, &err) == 0)
		cp->state = now.state == ES_PSTATE_PAUSED ? ES_PSTATE_PAUSED : ES_PSTATE_OK;
}

static int swap_in(struct es_pdir *pd, const char *gname, const char *gdir, struct es_pckpt *cp,
		   struct es_error *err)
{
	char tmp[PATH_MAX], cur[PATH_MAX];
	struct es_buf b = ES_BUF_INIT;
	int lfd = lock_file(pd, "ctl.lock", LOCK_EX, err), rc = 0;

	if (lfd < 0)
		return -lfd;
	carry_state(pd, cp);
	es_ts_format(es_now_us(), cp->updated);
	if (es_pckpt_format(cp, pd->name, &b) || es_buf_addc(&b, '\n'))
		rc = es_fail(err, ES_IO, "out of memory");
	if (!rc)
		rc = write_small(gdir, "checkpoint.json", b.p, b.len, err);
	if (!rc && es_fsync_dir(gdir))
		rc = es_fail_errno(err, ES_IO, "cannot sync '%s'", gdir);
	es_crash_point("project-before-swap");
	path_in(pd, "current.tmp", tmp);
	path_in(pd, "current", cur);
	unlink(tmp);
	if (!rc && (symlink(gname, tmp) || es_rename(tmp, cur)))
		rc = es_fail_errno(err, ES_IO, "cannot swap '%s'", cur);
	if (!rc && es_fsync_dir(pd->dir))
		rc = es_fail_errno(err, ES_IO, "cannot sync '%s'", pd->dir);
	if (!rc)
		es_crash_point("project-after-swap");
	close(lfd);
	es_buf_release(&b);
	return rc;
}

int es_pdir_commit(struct es_pdir *pd, struct es_proj *p, struct es_pckpt *cp, int fresh,
		   struct es_error *err)
{
	char gname[32], gdir[PATH_MAX], old[PATH_MAX];
	uint64_t prev = pd->have ? pd->cp.gen : 0;

	cp->gen = prev + 1;
	cp->keys = es_proj_keys(p);
	cp->alerts_size = fresh ? 0 : pd->cp.alerts_size;
	cp->dead_size = fresh ? 0 : pd->cp.dead_size;
	cp->alerts = (fresh ? 0 : pd->cp.alerts) + p->alerts.n;
	cp->dead = (fresh ? 0 : pd->cp.dead) + p->dead.n;
	gen_name(cp->gen, gname);
	path_in(pd, gname, gdir);
	remove_tree(gdir);
	if (mkdir(gdir, 0777) != 0)
		return es_fail_errno(err, ES_IO, "cannot create '%s'", gdir);
	if (write_rows(gdir, "model.ndjson", p, 1, err))
		return err->code;
	es_crash_point("project-after-model");
	if (p->spec->nwin && write_rows(gdir, "windows.ndjson", p, 2, err))
		return err->code;
	if (append_log(pd, gdir, "alerts.ndjson", &p->alerts, fresh, &cp->alerts_size, err) ||
	    append_log(pd, gdir, "dead.ndjson", &p->dead, fresh, &cp->dead_size, err))
		return err->code;
	es_crash_point("project-after-alerts");
	if (swap_in(pd, gname, gdir, cp, err))
		return err->code;
	if (prev) {
		gen_name(prev, gname);
		path_in(pd, gname, old);
		remove_tree(old);
	}
	pd->cp = *cp;
	pd->have = 1;
	return ensure_links(pd, err);
}

int es_pdir_set_state(struct es_pdir *pd, enum es_pstate state, struct es_error *err)
{
	char path[PATH_MAX];
	struct es_buf b = ES_BUF_INIT;
	int lfd = lock_file(pd, "ctl.lock", LOCK_EX, err), rc;

	if (lfd < 0)
		return -lfd;
	rc = es_pdir_reload(pd, err);
	if (!rc && !pd->have)
		rc = es_fail(err, ES_NOMATCH, "no projection '%s' in this store yet", pd->name);
	if (!rc) {
		pd->cp.state = state;
		if (state != ES_PSTATE_FAULTED) {
			pd->cp.fault_seq = 0;
			pd->cp.fault[0] = '\0';
		}
		es_ts_format(es_now_us(), pd->cp.updated);
		snprintf(path, sizeof(path), "%s/current/checkpoint.json", pd->dir);
		if (es_pckpt_format(&pd->cp, pd->name, &b) || es_buf_addc(&b, '\n'))
			rc = es_fail(err, ES_IO, "out of memory");
		else if (es_write_file_atomic(path, b.p, b.len, 0666))
			rc = es_fail_errno(err, ES_IO, "cannot write '%s'", path);
	}
	close(lfd);
	es_buf_release(&b);
	return rc;
}
