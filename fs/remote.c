/*
 * remote.c: the FUSE side of `clusterfs mount` (see remote.h).
 *
 * Built on libfuse's path-based API: each operation walks its path from
 * the session's root fid (one Twalk for up to 16 names), acts, and clunks
 * without waiting. An open file keeps its fid and the session it belongs
 * to. Reads bypass the page cache and a file's attributes are asked for
 * every time, as on the server's own mount, because other clients change
 * files at will. Directories are another matter: the kernel checks every
 * directory of a path on each open (default_permissions), and the tree's
 * directories seldom change, so their attributes are kept for a second
 * (forgotten at once when this mount changes them), as the server's own
 * mount lets the kernel keep namespaces/ and the kind directories.
 *
 * Object files (NAME.yaml) are kept for a second too, but only while a
 * thread reads the server's watch stream: every change of an object is a
 * line there, and the line makes the mount forget the object's attributes.
 * Without the stream (not yet, or broken) nothing but directories is
 * kept, and a broken stream forgets everything.
 *
 * close() flushes: when the file was written, a Tfsync makes the server
 * apply it, so close() returns the server's verdict (a rejected manifest
 * fails close with EINVAL, as on the server's mount).
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312
#include "remote.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

#define KEEP_NS	       1000000000LL
#define KEEP_MAX       4096
#define HANDOFFS       16
#define DIRFIDS	       32
#define HANDOFF_TTL_NS 1000000000LL

/*
 * A fid a getattr walked to a file, kept for the open that usually comes
 * next (the kernel's lookup, then open), which then needs no walk of its
 * own. diod's fids stand for paths, so a kept fid still names whatever the
 * path is when the open comes.
 */
struct handoff {
	char *path; /* NULL: the slot is free */
	struct p9fid fid;
	int64_t at;
};

struct remote {
	struct p9 *p9;
	struct fuse *fuse;
	char *mountpoint;
	int mounted;	 /* still mounted */
	int was_mounted; /* libfuse's unmount frees what its mount kept */
	pthread_mutex_t lock;
	struct strmap *kept; /* path -> struct kept_attr; directories and objects */
	uint64_t watching;   /* the session whose watch stream is read, or 0 */
	uint64_t forgets;    /* how many times anything was forgotten */
	int stopping;
	pthread_t watcher;
	int has_watcher;
	struct rfile *files; /* open files, under lock: freed at the end if never released */
	struct handoff handoffs[HANDOFFS]; /* under lock */
	struct dirfid {
		char *path;
		struct p9fid fid;
		int users;  /* walks from it under way: not to be clunked */
	} dirfids[DIRFIDS]; /* under lock; see walk() */
	unsigned dirfid_next;
};

struct kept_attr {
	struct stat st;
	int64_t expires; /* now_ns() */
};

/* An open file or directory. */
struct rfile {
	struct rfile *prev, *next; /* in remote's files */
	pthread_mutex_t lock;
	char *path;
	uint32_t flags; /* as opened, less creation and truncation */
	struct p9fid fid;
	int written; /* since the last flush */
	/* An object read gets the text the object had at open, whose end is
	 * final: once a read came back short, reads past it need not ask. */
	int snapshot;
	int64_t eof; /* -1 until known */
};

static struct remote *remote_of_ctx(void)
{
	return fuse_get_context()->private_data;
}

static struct p9 *p9_of_ctx(void)
{
	return remote_of_ctx()->p9;
}

static int attr_kept(struct remote *r, const char *path, struct stat *st)
{
	struct kept_attr *d;
	int hit = 0;

	pthread_mutex_lock(&r->lock);
	if ((d = strmap_get(r->kept, path)) && d->expires > now_ns()) {
		*st = d->st;
		hit = 1;
	}
	pthread_mutex_unlock(&r->lock);
	return hit;
}

static void free_kept(const char *key, void *val, void *arg)
{
	free(val);
}

/* The count of forgets to give attr_keep(), taken before asking the server. */
static uint64_t forgets_now(struct remote *r)
{
	pthread_mutex_lock(&r->lock);
	uint64_t n = r->forgets;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/*
 * Keeps what the server said of path, unless something was forgotten since
 * the question was asked (forgets, from forgets_now()): the answer may
 * predate that change.
 */
static void attr_keep(struct remote *r, const char *path, const struct stat *st, uint64_t forgets)
{
	size_t len = strlen(path);
	int object = S_ISREG(st->st_mode) && len > 5 && !strcmp(path + len - 5, ".yaml");
	struct kept_attr *d;

	if (!S_ISDIR(st->st_mode) && !object)
		return;
	pthread_mutex_lock(&r->lock);
	int keep = (!object || (r->watching && r->watching == p9_root(r->p9).gen)) &&
		   r->forgets == forgets;
	pthread_mutex_unlock(&r->lock);
	if (!keep)
		return;
	d = xmalloc(sizeof(*d));
	d->st = *st;
	d->expires = now_ns() + KEEP_NS;
	pthread_mutex_lock(&r->lock);
	if (r->forgets != forgets) {
		pthread_mutex_unlock(&r->lock);
		free(d);
		return;
	}
	if (strmap_count(r->kept) >= KEEP_MAX) {
		strmap_each(r->kept, free_kept, NULL);
		strmap_free(r->kept);
		r->kept = strmap_new();
	}
	free(strmap_put(r->kept, path, d));
	pthread_mutex_unlock(&r->lock);
}

/* path changed: what was kept of it, and under it, goes. */
static void forget(struct remote *r, const char *path)
{
	size_t n, len = strlen(path);

	pthread_mutex_lock(&r->lock);
	r->forgets++;
	char **keys = strmap_keys(r->kept, &n);
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(keys[i], path, len) && (keys[i][len] == 0 || keys[i][len] == '/'))
			free(strmap_del(r->kept, keys[i]));
		free(keys[i]);
	}
	free(keys);
	pthread_mutex_unlock(&r->lock);
}

static void forget_all(struct remote *r)
{
	pthread_mutex_lock(&r->lock);
	r->forgets++;
	strmap_each(r->kept, free_kept, NULL);
	strmap_free(r->kept);
	r->kept = strmap_new();
	pthread_mutex_unlock(&r->lock);
}

/* This mount changed path (NULL: a file unlinked while open, forgotten
 * by the unlink already). */
static void attr_forget(const char *path)
{
	if (path)
		forget(remote_of_ctx(), path);
}

/* Forgets the object named by each whole line "REV TYPE PATH" of buf;
 * returns how many bytes it used. A namespace's object also names its
 * directory. */
static size_t forget_lines(struct remote *r, char *buf, size_t len)
{
	size_t used = 0;
	char *nl;

	while ((nl = memchr(buf + used, '\n', len - used))) {
		*nl = 0;
		char *path = strchr(buf + used, ' ');
		if (path && (path = strchr(path + 1, ' '))) {
			*path = '/'; /* "REV TYPE /PATH" */
			forget(r, path);
			size_t plen = strlen(path);
			if (!strncmp(path, "/namespaces/", 12) && !strchr(path + 12, '/') &&
			    plen > 5) {
				path[plen - 5] = 0; /* /namespaces/NS.yaml -> /namespaces/NS */
				forget(r, path);
			}
		}
		used = (size_t)(nl - buf) + 1;
	}
	return used;
}

/*
 * The watch thread: reads the server's watch stream for as long as the
 * mount lives, so that objects' attributes can be kept (see the top).
 */
static void *watch_main(void *arg)
{
	struct remote *r = arg;
	struct p9 *p = r->p9;
	size_t size = 65536, have = 0;
	char *buf = xmalloc(size);

	for (;;) {
		pthread_mutex_lock(&r->lock);
		int stop = r->stopping;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			break;
		struct p9fid root = p9_root(p), wf;
		if (!root.gen || p9_walk(p, root, "watch", &wf) < 0) {
			usleep(200000);
			continue;
		}
		if (p9_lopen(p, wf, O_RDWR) < 0 || p9_write(p, wf, 0, "/\n", 2) != 2) {
			p9_clunk(p, wf);
			usleep(1000000);
			continue;
		}
		forget_all(r); /* nothing kept from before the stream */
		pthread_mutex_lock(&r->lock);
		r->watching = root.gen;
		pthread_mutex_unlock(&r->lock);
		ssize_t n;
		have = 0;
		while ((n = p9_read(p, wf, 0, buf + have, size - have - 1)) > 0) {
			have += (size_t)n;
			size_t used = forget_lines(r, buf, have);
			memmove(buf, buf + used, have - used);
			have -= used;
			if (have == size - 1)
				have = 0; /* a line longer than the buffer: no path of ours */
		}
		pthread_mutex_lock(&r->lock);
		r->watching = 0;
		pthread_mutex_unlock(&r->lock);
		forget_all(r);
		p9_clunk(p, wf);
	}
	free(buf);
	return NULL;
}

static struct rfile *rfile_of(struct fuse_file_info *fi)
{
	return (struct rfile *)(uintptr_t)fi->fh;
}

/* A fid of directory path ("/a/b"), walked once and kept: a walk from it
 * names one component instead of all of them. diod's fids are paths, so a
 * kept fid means what a walk from the root would, whatever changed since;
 * one of an earlier session is walked again. *slot is the entry to give
 * back with dir_fid_put(), or -1 when the fid is the caller's to clunk
 * (every entry was in use). */
static int dir_fid_get(struct remote *r, struct p9 *p, const char *path, struct p9fid root,
		       struct p9fid *out, int *slot)
{
	struct p9fid fid;
	int rc;

	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < DIRFIDS; i++)
		if (r->dirfids[i].path && r->dirfids[i].fid.gen == root.gen &&
		    !strcmp(r->dirfids[i].path, path)) {
			r->dirfids[i].users++;
			*out = r->dirfids[i].fid;
			*slot = i;
			pthread_mutex_unlock(&r->lock);
			return 0;
		}
	pthread_mutex_unlock(&r->lock);
	if ((rc = p9_walk(p, root, path + 1, &fid)) < 0)
		return rc;
	*out = fid;
	*slot = -1;
	pthread_mutex_lock(&r->lock);
	for (int n = 0; n < DIRFIDS && *slot < 0; n++) {
		int i = (int)(r->dirfid_next++ % DIRFIDS);
		struct dirfid *d = &r->dirfids[i];
		if (d->users)
			continue;
		if (d->path) {
			p9_clunk(p, d->fid);
			free(d->path);
		}
		*d = (struct dirfid){xstrdup(path), fid, 1};
		*slot = i;
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void dir_fid_put(struct remote *r, struct p9 *p, int slot, struct p9fid fid)
{
	if (slot < 0) {
		p9_clunk(p, fid);
		return;
	}
	pthread_mutex_lock(&r->lock);
	r->dirfids[slot].users--;
	pthread_mutex_unlock(&r->lock);
}

/* Walks a FUSE path ("/a/b") from its directory's kept fid. libfuse
 * gives an open file's operations a NULL path once the file was unlinked:
 * that is ENOENT. */
static int walk(struct p9 *p, const char *path, struct p9fid *out)
{
	struct remote *r = remote_of_ctx();
	struct p9fid root = p9_root(p), dir;
	const char *slash = path ? strrchr(path, '/') : NULL;
	int rc, slot;

	if (!path)
		return -ENOENT;
	if (!root.gen)
		return -ENOTCONN;
	if (slash == path)
		return p9_walk(p, root, path + 1, out);
	cleanup_free char *parent = xstrndup(path, (size_t)(slash - path));
	if ((rc = dir_fid_get(r, p, parent, root, &dir, &slot)) < 0)
		return rc;
	rc = p9_walk(p, dir, slash + 1, out);
	dir_fid_put(r, p, slot, dir);
	return rc;
}

/* The kept fid of path's directory (see dir_fid_get), for operations that
 * name an entry in it and leave the fid as it was (mkdir, rename); *name
 * is set to the last component. Give it back with dir_fid_put(). */
static int parent_fid(struct p9 *p, const char *path, struct p9fid *out, int *slot,
		      const char **name)
{
	struct p9fid root = p9_root(p);
	const char *slash = strrchr(path, '/');
	cleanup_free char *parent = xstrndup(path, slash == path ? 1 : (size_t)(slash - path));

	if (!root.gen)
		return -ENOTCONN;
	*name = slash + 1;
	return dir_fid_get(remote_of_ctx(), p, parent, root, out, slot);
}

/* A new fid of path's directory, for an operation that turns it into
 * something else (lcreate): a clone of the kept one, which diod makes
 * without a system call, where a walk would stat the directory and its
 * parent through the mount. */
static int walk_parent(struct p9 *p, const char *path, struct p9fid *out, const char **name)
{
	struct p9fid dir;
	int slot, rc = parent_fid(p, path, &dir, &slot, name);

	if (rc < 0)
		return rc;
	rc = p9_walk(p, dir, "", out);
	dir_fid_put(remote_of_ctx(), p, slot, dir);
	return rc;
}

static void attr_to_stat(const struct p9attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->qid.path;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = (blksize_t)a->blksize;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_atim.tv_sec = (time_t)a->atime_sec;
	st->st_atim.tv_nsec = (long)a->atime_nsec;
	st->st_mtim.tv_sec = (time_t)a->mtime_sec;
	st->st_mtim.tv_nsec = (long)a->mtime_nsec;
	st->st_ctim.tv_sec = (time_t)a->ctime_sec;
	st->st_ctim.tv_nsec = (long)a->ctime_nsec;
}

/*
 * The open file's fid in the current session, opening the file again when
 * the connection was lost since; a writer cannot be: what it wrote went
 * with the old connection.
 */
static int file_fid(struct p9 *p, struct rfile *f, struct p9fid *out)
{
	struct p9fid root = p9_root(p);
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (f->fid.gen != root.gen) {
		struct p9fid nf;
		if (!root.gen)
			rc = -ENOTCONN;
		else if ((f->flags & O_ACCMODE) != O_RDONLY)
			rc = -EIO;
		else if ((rc = p9_walk(p, root, f->path + 1, &nf)) == 0 &&
			 (rc = p9_lopen(p, nf, f->flags)) < 0)
			p9_clunk(p, nf);
		if (rc == 0) {
			p9_clunk(p, f->fid); /* not sent: it names no live fid */
			f->fid = nf;
			f->eof = -1; /* a new snapshot */
		}
	}
	*out = f->fid;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static struct rfile *rfile_new(struct remote *r, const char *path, uint32_t flags, struct p9fid fid)
{
	struct rfile *f = xcalloc(1, sizeof(*f));

	pthread_mutex_init(&f->lock, NULL);
	f->path = xstrdup(path);
	f->flags = flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
	f->fid = fid;
	size_t len = strlen(path);
	f->snapshot =
		(flags & O_ACCMODE) == O_RDONLY && len > 5 && !strcmp(path + len - 5, ".yaml");
	f->eof = -1;
	pthread_mutex_lock(&r->lock);
	f->next = r->files;
	if (r->files)
		r->files->prev = f;
	r->files = f;
	pthread_mutex_unlock(&r->lock);
	return f;
}

static void rfile_free(struct remote *r, struct rfile *f)
{
	pthread_mutex_lock(&r->lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		r->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&r->lock);
	p9_clunk(r->p9, f->fid);
	pthread_mutex_destroy(&f->lock);
	free(f->path);
	free(f);
}

/* Keeps fid for an open of path; the oldest kept one makes room. */
static void handoff_keep(struct remote *r, const char *path, struct p9fid fid)
{
	struct handoff *slot = &r->handoffs[0], old = {0};

	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < HANDOFFS; i++) {
		struct handoff *h = &r->handoffs[i];
		if (!h->path || !strcmp(h->path, path)) {
			slot = h;
			break;
		}
		if (h->at < slot->at)
			slot = h;
	}
	old = *slot;
	*slot = (struct handoff){xstrdup(path), fid, now_ns()};
	pthread_mutex_unlock(&r->lock);
	if (old.path) {
		p9_clunk(r->p9, old.fid);
		free(old.path);
	}
}

/* Takes a fid kept for path, if there is a fresh one. */
static int handoff_take(struct remote *r, const char *path, struct p9fid *fid)
{
	struct handoff got = {0};

	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < HANDOFFS; i++) {
		struct handoff *h = &r->handoffs[i];
		if (h->path && !strcmp(h->path, path)) {
			got = *h;
			h->path = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (!got.path)
		return 0;
	free(got.path);
	if (got.at + HANDOFF_TTL_NS < now_ns() || got.fid.gen != p9_root(r->p9).gen) {
		p9_clunk(r->p9, got.fid);
		return 0;
	}
	*fid = got.fid;
	return 1;
}

static int r_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct remote *r = remote_of_ctx();
	struct p9 *p = r->p9;
	struct p9attr a;
	struct p9fid fid;
	int rc;

	if (path && attr_kept(r, path, st))
		return 0;
	uint64_t forgets = forgets_now(r);
	/* By path even for an open file: diod's fid keeps the path it had
	 * when opened, and answers for that path, whatever was renamed since.
	 * The open file serves when its path is gone (unlinked while open). */
	if ((rc = walk(p, path, &fid)) == 0) {
		rc = p9_getattr(p, fid, &a);
		if (rc == 0 && !fi && S_ISREG(a.mode))
			handoff_keep(r, path, fid);
		else
			p9_clunk(p, fid);
	} else if (rc == -ENOENT && fi && fi->fh && (rc = file_fid(p, rfile_of(fi), &fid)) == 0) {
		rc = p9_getattr(p, fid, &a);
	}
	if (rc == 0)
		attr_to_stat(&a, st);
	if (rc == 0 && path)
		attr_keep(r, path, st, forgets);
	return rc;
}

static int do_open(const char *path, uint32_t flags, struct fuse_file_info *fi)
{
	struct remote *r = remote_of_ctx();
	struct p9 *p = r->p9;
	struct p9fid fid;
	int rc;

	if (handoff_take(r, path, &fid)) {
		if ((rc = p9_lopen(p, fid, flags)) == 0)
			goto opened;
		p9_clunk(p, fid);
	}
	if ((rc = walk(p, path, &fid)) < 0)
		return rc;
	if ((rc = p9_lopen(p, fid, flags)) < 0) {
		p9_clunk(p, fid);
		return rc;
	}
opened:
	fi->fh = (uintptr_t)rfile_new(r, path, flags, fid);
	fi->direct_io = 1;
	/* A reader has nothing to apply: its close() is not a round trip. */
	fi->noflush = (flags & O_ACCMODE) == O_RDONLY && !(flags & O_TRUNC);
	return 0;
}

static int r_open(const char *path, struct fuse_file_info *fi)
{
	return do_open(path, (uint32_t)fi->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_NOCTTY), fi);
}

static int r_opendir(const char *path, struct fuse_file_info *fi)
{
	return do_open(path, O_RDONLY | O_DIRECTORY, fi);
}

static int r_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct p9 *p = p9_of_ctx();
	struct p9fid fid;
	const char *name;
	int rc;

	if ((rc = walk_parent(p, path, &fid, &name)) < 0)
		return rc;
	attr_forget(path);
	rc = p9_lcreate(p, fid, name, (uint32_t)fi->flags & ~(uint32_t)O_NOCTTY, mode,
			fuse_get_context()->gid);
	if (rc < 0) {
		p9_clunk(p, fid);
		return rc;
	}
	fi->fh = (uintptr_t)rfile_new(remote_of_ctx(), path, (uint32_t)fi->flags, fid);
	fi->direct_io = 1;
	return 0;
}

static int r_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct p9 *p = p9_of_ctx();
	struct rfile *f = rfile_of(fi);
	struct p9fid fid;
	int rc = file_fid(p, f, &fid);
	ssize_t n;

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&f->lock);
	int past_end = f->snapshot && f->eof >= 0 && off >= f->eof;
	pthread_mutex_unlock(&f->lock);
	if (past_end)
		return 0;
	n = p9_read(p, fid, (uint64_t)off, buf, size);
	if (n >= 0 && (size_t)n < size && f->snapshot) {
		pthread_mutex_lock(&f->lock);
		f->eof = off + n;
		pthread_mutex_unlock(&f->lock);
	}
	return (int)n;
}

static int r_write(const char *path, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct p9 *p = p9_of_ctx();
	struct rfile *f = rfile_of(fi);
	struct p9fid fid;
	int rc = file_fid(p, f, &fid);

	if (rc < 0)
		return rc;
	f->written = 1;
	attr_forget(path);
	return (int)p9_write(p, fid, (uint64_t)off, buf, size);
}

/* Makes the server apply what was written, and returns its verdict. */
static int r_flush(const char *path, struct fuse_file_info *fi)
{
	struct p9 *p = p9_of_ctx();
	struct rfile *f = rfile_of(fi);
	struct p9fid fid;
	int rc;

	if (!f->written)
		return 0;
	f->written = 0;
	if ((rc = file_fid(p, f, &fid)) < 0)
		return rc;
	rc = p9_fsync(p, fid);
	attr_forget(path);
	return rc;
}

static int r_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct p9 *p = p9_of_ctx();
	struct p9fid fid;
	int rc = file_fid(p, rfile_of(fi), &fid);

	return rc < 0 ? rc : p9_fsync(p, fid);
}

static int r_release(const char *path, struct fuse_file_info *fi)
{
	struct rfile *f = rfile_of(fi);

	if ((f->flags & O_ACCMODE) != O_RDONLY)
		attr_forget(path); /* the server applied it when diod closed it */
	rfile_free(remote_of_ctx(), f);
	return 0;
}

static int r_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		     struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct p9 *p = p9_of_ctx();
	uint32_t size = p9_iosize(p);
	cleanup_free uint8_t *data = xmalloc(size);
	uint64_t next = 0;
	struct p9fid fid;
	int rc = file_fid(p, rfile_of(fi), &fid);
	ssize_t n;

	if (rc < 0)
		return rc;
	while ((n = p9_readdir(p, fid, next, data, size)) > 0) {
		struct p9dirent d;
		uint32_t pos = 0;
		while ((rc = p9_next_dirent(data, (uint32_t)n, &pos, &d)) > 0) {
			char name[256];
			struct stat st = {.st_ino = d.qid.path, .st_mode = (mode_t)DTTOIF(d.type)};
			if (d.name.len >= sizeof(name))
				continue;
			memcpy(name, d.name.s, d.name.len);
			name[d.name.len] = 0;
			fill(buf, name, &st, 0, 0);
			next = d.offset;
		}
		if (rc < 0)
			return -EIO;
	}
	return n < 0 ? (int)n : 0;
}

static int r_mkdir(const char *path, mode_t mode)
{
	struct p9 *p = p9_of_ctx();
	struct p9fid dir;
	const char *name;
	int rc, slot;

	if ((rc = parent_fid(p, path, &dir, &slot, &name)) < 0)
		return rc;
	attr_forget(path);
	rc = p9_mkdir(p, dir, name, mode, fuse_get_context()->gid);
	dir_fid_put(remote_of_ctx(), p, slot, dir);
	return rc;
}

/* unlink and rmdir: the server's remove knows which it is. */
static int r_remove(const char *path)
{
	struct p9 *p = p9_of_ctx();
	struct p9fid fid;
	int rc;

	if ((rc = walk(p, path, &fid)) < 0)
		return rc;
	attr_forget(path);
	return p9_remove(p, fid);
}

static int r_rename(const char *from, const char *to, unsigned int flags)
{
	struct p9 *p = p9_of_ctx();
	struct p9fid fid, dir;
	const char *name;
	int rc, slot;

	if (flags)
		return -EINVAL;
	if ((rc = walk(p, from, &fid)) < 0)
		return rc;
	attr_forget(from);
	attr_forget(to);
	if ((rc = parent_fid(p, to, &dir, &slot, &name)) == 0) {
		rc = p9_rename(p, fid, dir, name);
		dir_fid_put(remote_of_ctx(), p, slot, dir);
	}
	p9_clunk(p, fid);
	return rc;
}

/* Sets attributes by path, or through the open file: see r_getattr. */
static int setattr(const char *path, struct fuse_file_info *fi, const struct p9setattr *sa)
{
	struct p9 *p = p9_of_ctx();
	struct p9fid fid;
	int rc;

	attr_forget(path);
	if ((rc = walk(p, path, &fid)) == 0) {
		rc = p9_setattr(p, fid, sa);
		p9_clunk(p, fid);
	} else if (rc == -ENOENT && fi && fi->fh && (rc = file_fid(p, rfile_of(fi), &fid)) == 0) {
		rc = p9_setattr(p, fid, sa);
	}
	return rc;
}

static int r_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct p9setattr sa = {.valid = P9_SETATTR_SIZE, .size = (uint64_t)size};
	int rc = setattr(path, fi, &sa);

	if (rc == 0 && fi && fi->fh)
		rfile_of(fi)->written = 1;
	return rc;
}

static int r_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct p9setattr sa = {.valid = P9_SETATTR_MODE, .mode = mode};
	return setattr(path, fi, &sa);
}

static int r_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct p9setattr sa = {.uid = uid, .gid = gid};

	sa.valid |= uid != (uid_t)-1 ? P9_SETATTR_UID : 0;
	sa.valid |= gid != (gid_t)-1 ? P9_SETATTR_GID : 0;
	return setattr(path, fi, &sa);
}

static void set_time(const struct timespec *t, uint32_t now, uint32_t set, uint64_t *sec,
		     uint64_t *nsec, uint32_t *valid)
{
	if (t->tv_nsec == UTIME_OMIT)
		return;
	*valid |= now;
	if (t->tv_nsec == UTIME_NOW)
		return;
	*valid |= set;
	*sec = (uint64_t)t->tv_sec;
	*nsec = (uint64_t)t->tv_nsec;
}

static int r_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct p9setattr sa = {0};

	set_time(&tv[0], P9_SETATTR_ATIME, P9_SETATTR_ATIME_SET, &sa.atime_sec, &sa.atime_nsec,
		 &sa.valid);
	set_time(&tv[1], P9_SETATTR_MTIME, P9_SETATTR_MTIME_SET, &sa.mtime_sec, &sa.mtime_nsec,
		 &sa.valid);
	return setattr(path, fi, &sa);
}

static int r_statfs(const char *path, struct statvfs *sv)
{
	struct p9 *p = p9_of_ctx();
	struct p9statfs s;
	struct p9fid fid;
	int rc;

	if ((rc = walk(p, path, &fid)) < 0)
		return rc;
	rc = p9_statfs(p, fid, &s);
	p9_clunk(p, fid);
	if (rc < 0)
		return rc;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = s.bsize;
	sv->f_blocks = s.blocks;
	sv->f_bfree = s.bfree;
	sv->f_bavail = s.bavail;
	sv->f_files = s.files;
	sv->f_ffree = sv->f_favail = s.ffree;
	sv->f_fsid = s.fsid;
	sv->f_namemax = s.namelen;
	return 0;
}

static void *r_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* No name is kept by the kernel: a name it kept after a rejected
	 * create would make the next create an open, failing with ENOENT.
	 * Lookups cost little: directories and objects are kept here. */
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->hard_remove = 1;
	cfg->direct_io = 1;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations ops = {
	.init = r_init,
	.getattr = r_getattr,
	.open = r_open,
	.create = r_create,
	.read = r_read,
	.write = r_write,
	.flush = r_flush,
	.fsync = r_fsync,
	.release = r_release,
	.opendir = r_opendir,
	.readdir = r_readdir,
	.releasedir = r_release,
	.mkdir = r_mkdir,
	.unlink = r_remove,
	.rmdir = r_remove,
	.rename = r_rename,
	.truncate = r_truncate,
	.chmod = r_chmod,
	.chown = r_chown,
	.utimens = r_utimens,
	.statfs = r_statfs,
};

struct remote *remote_mount(const struct p9_config *cfg, const char *mountpoint, struct err *e)
{
	struct remote *r;
	struct p9_config c = *cfg;
	char *argv[] = {(char *)"clusterfs", (char *)"-o", NULL, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	cleanup_free char *opts = NULL;

	if (fs_check_mountpoint(mountpoint, e) < 0)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->mountpoint = realpath(mountpoint, NULL);
	pthread_mutex_init(&r->lock, NULL);
	r->kept = strmap_new();
	c.interrupted = fuse_interrupted;
	if (!(r->p9 = p9_open(&c, e))) {
		remote_free(r);
		return NULL;
	}
	opts = xasprintf("fsname=%s,subtype=clusterfs,default_permissions%s", cfg->addr,
			 getuid() == 0 ? ",allow_other" : "");
	argv[2] = opts;
	r->fuse = fuse_new(&args, &ops, sizeof(ops), r);
	fuse_opt_free_args(&args);
	if (!r->fuse || fuse_mount(r->fuse, r->mountpoint) != 0) {
		err_set(e, EIO, "cannot mount %s (is /dev/fuse there, and fuse3 installed?)",
			mountpoint);
		remote_free(r);
		return NULL;
	}
	r->mounted = r->was_mounted = 1;
	r->has_watcher = pthread_create(&r->watcher, NULL, watch_main, r) == 0;
	return r;
}

int remote_loop(struct remote *r)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int rc;

	/* Each thread waits for its server round trip: many, so that a
	 * blocked read of watch does not hold up the rest. */
	fuse_loop_cfg_set_max_threads(cfg, 64);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	rc = fuse_loop_mt(r->fuse, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc < 0 ? rc : 0;
}

void remote_disconnect(struct remote *r)
{
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_mutex_unlock(&r->lock);
	p9_shutdown(r->p9);
}

void remote_exit(struct remote *r)
{
	/* The loop's threads sit in reads of /dev/fuse, which end with the
	 * connection. Requests still pending fail: hence remote_disconnect()
	 * first, so that the mount's users are not in the middle of one. */
	remote_disconnect(r);
	fuse_exit(r->fuse);
	/* MNT_FORCE: FUSE ends the connection at once, even while another
	 * mount namespace (a container's monitor made its own copy of this
	 * one) keeps the mount alive. */
	if (r->mounted && umount2(r->mountpoint, MNT_FORCE | MNT_DETACH) == 0)
		r->mounted = 0;
}

void remote_free(struct remote *r)
{
	if (!r)
		return;
	if (r->was_mounted)
		fuse_unmount(r->fuse); /* when remote_exit() unmounted already, a no-op */
	if (r->fuse)
		fuse_destroy(r->fuse);
	while (r->files) /* files still open when the connection ended */
		rfile_free(r, r->files);
	if (r->has_watcher) {
		remote_disconnect(r); /* its read fails, and it sees it must stop */
		pthread_join(r->watcher, NULL);
	}
	for (int i = 0; i < HANDOFFS; i++)
		free(r->handoffs[i].path); /* their fids go with the connection */
	for (int i = 0; i < DIRFIDS; i++)
		free(r->dirfids[i].path);
	p9_close(r->p9);
	strmap_each(r->kept, free_kept, NULL);
	strmap_free(r->kept);
	pthread_mutex_destroy(&r->lock);
	free(r->mountpoint);
	free(r);
}
