/*
 * fs.c: the FUSE low-level handlers of names and directories (lookup,
 * attributes, unlink, mkdir, rmdir, rename, readdir), the operations
 * table, and mounting. Open files are file.c's.
 *
 * Each handler finds its inode, delegates to a function that returns 0 or
 * a negative errno, and replies exactly once.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <unistd.h>

/*
 * Objects, scratch files and namespace directories are never cached:
 * sizes must be exact and changes seen at once (a namespace also goes
 * when namespaces/NS.yaml is removed or applied away). namespaces/ and the
 * kind directories never change, so their names may be cached for a
 * second; that spares a lookup per path component of every open.
 */
static void set_timeouts(const struct inode *in, struct fuse_entry_param *e)
{
	switch (in->type) {
	case N_NSROOT:
	case N_KINDDIR:
		e->entry_timeout = e->attr_timeout = 1.0;
		break;
	case N_README:
	case N_EVENTS:
	case N_WATCH:
	case N_APPLY:
		e->entry_timeout = 1.0;
		break;
	default:
		break;
	}
}

static void reply_entry(fuse_req_t req, struct fs *fs, struct inode *in)
{
	struct fuse_entry_param e = {0};
	int r = inode_stat(fs, in, &e.attr);

	if (r < 0) {
		fuse_reply_err(req, -r);
		inode_forget(fs, in->ino, 1);
		return;
	}
	e.ino = in->ino;
	e.generation = 1;
	set_timeouts(in, &e);
	if (fuse_reply_entry(req, &e) != 0)
		inode_forget(fs, in->ino, 1);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct inode *dir = inode_get(fs, parent), *in = NULL;
	int r = dir ? inode_lookup(fs, dir, name, &in, toucher_is_me(fs->toucher, req)) : -ENOENT;

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, fs, in);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	inode_forget(fs_of(req), ino, n);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		inode_forget(fs_of(req), f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

/* Replies with in's attributes, or with the error r. A file created by
 * this open and not yet applied has the size of what was written. */
static void reply_attr(fuse_req_t req, struct fs *fs, struct inode *in, struct fuse_file_info *fi,
		       int r)
{
	struct handle *h = fi ? handle_of(fi) : NULL;
	struct stat st;

	if (r == 0 && h && h->scratch) {
		inode_stat_base(fs, in, &st);
		r = scratch_stat(fs, h->scratch, NULL, &st);
	} else if (r == 0) {
		r = inode_stat(fs, in, &st);
	}
	if (r == 0 && h && h->type == H_OBJ && h->created)
		st.st_size = (off_t)h->buf.len;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, 0);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct inode *in = inode_get(fs, ino);

	reply_attr(req, fs, in, fi, in ? 0 : -ENOENT);
}

/*
 * truncate(2) of an object file, without an open file: to its own size
 * changes nothing; to 0 is the empty write that applies nothing, as for an
 * open file; to any other size would cut the document, and is refused.
 */
static int truncate_object(struct fs *fs, struct inode *in, size_t size)
{
	cleanup_free char *origin = inode_origin(in);
	struct sobj *o = store_get(fs->store, in->kind, in->ns, in->name);
	size_t len = o ? o->len : 0;
	struct err e = {0};

	sobj_unref(o);
	if (!o)
		return -ENOENT;
	if (size == len)
		return 0;
	if (size == 0) {
		store_event(fs->store, in->ns, "Warning", "Ignored", origin,
			    "the file was truncated to nothing: nothing was applied");
		return 0;
	}
	err_set(&e, EINVAL,
		"truncating an object file to %zu bytes would cut its document: write a whole "
		"document instead",
		size);
	return fs_reject(fs, in->ns, origin, -EINVAL, &e);
}

static int do_setattr(struct fs *fs, fuse_req_t req, struct inode *in, struct stat *attr,
		      int to_set, struct fuse_file_info *fi)
{
	struct handle *h = fi ? handle_of(fi) : NULL;

	if (toucher_is_me(fs->toucher, req) ||
	    !(to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE)))
		return 0;
	if (in->type == N_SCRATCH)
		return scratch_setattr(fs, h ? h->scratch : NULL, in->key, attr, to_set);
	if (!(to_set & FUSE_SET_ATTR_SIZE))
		return 0; /* modes are the tree's to decide */
	if (in->type == N_LOG)
		return logs_truncate(fs, in, log_container(in), h ? h->uid : NULL, attr->st_size);
	if (h && h->type != H_READ && h->type != H_WATCH && h->type != H_TOUCH) {
		pthread_mutex_lock(&h->lock);
		sb_truncate(&h->buf, (size_t)attr->st_size);
		h->dirty = 1;
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	if (in->type == N_OBJ)
		return truncate_object(fs, in, (size_t)attr->st_size);
	return 0; /* apply, events, watch: nothing kept to cut */
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct inode *in = inode_get(fs, ino);

	reply_attr(req, fs, in, fi, in ? do_setattr(fs, req, in, attr, to_set, fi) : -ENOENT);
}

static int do_unlink(struct fs *fs, fuse_req_t req, struct inode *dir, const char *name)
{
	cleanup_free char *key = child_key(dir, name);
	const struct kind *k = dir_kind(dir);

	if (k && is_object_name(name)) {
		if (toucher_is_me(fs->toucher, req))
			return 0;
		cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
		cleanup_free char *origin = dir_origin(dir, name);
		return fs_delete_object(fs, k, dir->ns, stem, origin, 0);
	}
	if (k)
		return scratch_unlink(fs, key);
	/* Files that are views (a namespace's events and apply, an object's
	 * replicas, rollback and revisions) are always there: removing one is
	 * a no-op, which lets `rm -r` of a namespace or a kind go on. */
	if (dir->type == N_NSDIR && (!strcmp(name, "events") || !strcmp(name, "apply")))
		return 0;
	if (dir->type == N_OBJDIR || dir->type == N_REVDIR)
		return 0;
	/* A log is the container's as long as the pod lives: rm clears it. */
	if (dir->type == N_LOGDIR)
		return logs_truncate(fs, dir, name, NULL, 0);
	return -EPERM;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct inode *dir = inode_get(fs, parent);
	fuse_reply_err(req, dir ? -do_unlink(fs, req, dir, name) : ENOENT);
}

static int do_mkdir(struct fs *fs, struct inode *dir, const char *name, struct inode **out)
{
	const struct kind *nsk = kind_by_name("Namespace");
	cleanup_free char *key = xasprintf("namespaces/%s", name);
	struct store_op op = {.type = OP_CREATE, .kind = nsk, .ns = "", .name = name};
	struct err e = {0};
	int r;

	if (dir->type != N_NSROOT)
		return -EPERM;
	op.doc = y_map();
	if ((r = obj_normalize(nsk, "", name, op.doc, &e)) < 0) {
		y_free(op.doc);
		return fs_reject(fs, "", key, r, &e);
	}
	if ((r = store_write(fs->store, &op, 1, &e)) < 0)
		return fs_reject(fs, "", key, r, &e);
	cleanup_free char *path = obj_path(nsk, "", name);
	toucher_announce(fs->toucher, CH_ADDED, path);
	*out = inode_make(fs, N_NSDIR, NULL, name, NULL, key);
	return 0;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs *fs = fs_of(req);
	struct inode *dir = inode_get(fs, parent), *in = NULL;
	int r = dir ? do_mkdir(fs, dir, name, &in) : -ENOENT;

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, fs, in);
}

static int do_rmdir(struct fs *fs, struct inode *dir, const char *name)
{
	if (dir->type == N_NSROOT) {
		cleanup_free char *origin = xasprintf("namespaces/%s", name);
		return fs_delete_object(fs, kind_by_name("Namespace"), "", name, origin, 1);
	}
	if (dir->type == N_NSDIR) {
		const struct kind *k = kind_by_plural(name);
		if (!k || !k->namespaced)
			return -ENOENT;
		/* kind directories are always there: removing an empty one is
		 * a no-op, which lets `rm -r` of a namespace go on */
		return store_count(fs->store, k, dir->ns) ? -ENOTEMPTY : 0;
	}
	if (dir->type == N_KINDDIR || dir->type == N_OBJDIR)
		return 0; /* an object's NAME/ and revisions/: views, as above */
	return -EPERM;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct inode *dir = inode_get(fs, parent);
	int r = dir ? do_rmdir(fs, dir, name) : -ENOENT;

	if (r == 0) {
		cleanup_free char *key = child_key(dir, name);
		inode_unhash(fs, key);
	}
	fuse_reply_err(req, -r);
}

/* Renames a scratch file over an object file: applies its content. */
static int rename_onto_object(struct fs *fs, const char *from_key, struct inode *ndir,
			      const char *newname)
{
	cleanup_free char *stem = xstrndup(newname, strlen(newname) - 5);
	cleanup_free char *origin = dir_origin(ndir, newname);
	struct inode target = {.type = N_OBJ, .kind = dir_kind(ndir), .ns = ndir->ns, .name = stem};
	struct strbuf copy = {0};
	int r;

	pthread_mutex_lock(&fs->slock);
	struct scratch *sc = strmap_get(fs->scratch, from_key);
	if (sc)
		sb_append(&copy, sc->data.buf ? sc->data.buf : "", sc->data.len);
	pthread_mutex_unlock(&fs->slock);
	if (!sc)
		return -ENOENT;
	if ((r = dir_check_name(fs, ndir, newname)) == 0)
		r = fs_put_object(fs, &target, copy.buf, copy.len, origin, OP_PUT);
	sb_free(&copy);
	if (r == 0)
		scratch_unlink(fs, from_key);
	return r;
}

/* Copies an object's text to a scratch file (editors' backups). */
static int copy_object_to_scratch(struct fs *fs, struct inode *dir, const char *name,
				  const char *to_key)
{
	const struct kind *k = dir_kind(dir);
	cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
	struct sobj *o = store_get(fs->store, k, dir->ns, stem);

	if (!o)
		return -ENOENT;
	struct scratch *sc = scratch_create(fs, to_key, k->secret ? 0600 : 0644);
	pthread_mutex_lock(&fs->slock);
	sb_truncate(&sc->data, 0);
	sb_append(&sc->data, o->yaml, o->len);
	pthread_mutex_unlock(&fs->slock);
	scratch_release(fs, sc);
	sobj_unref(o);
	return 0;
}

/* Whether the object file name in dir exists. */
static int object_at(struct fs *fs, struct inode *dir, const char *name)
{
	cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
	return store_exists(fs->store, dir_kind(dir), dir->ns, stem);
}

static int do_rename(struct fs *fs, struct inode *dir, const char *name, struct inode *ndir,
		     const char *newname, unsigned flags)
{
	cleanup_free char *from = child_key(dir, name);
	cleanup_free char *to = child_key(ndir, newname);
	int from_obj = dir_kind(dir) && is_object_name(name);
	int to_obj = dir_kind(ndir) && is_object_name(newname);
	struct err e = {0};

	if (!dir_kind(dir) || !dir_kind(ndir) || (flags & RENAME_EXCHANGE))
		return -EPERM;
	if ((flags & RENAME_NOREPLACE) &&
	    (scratch_get(fs, to) || (to_obj && object_at(fs, ndir, newname))))
		return -EEXIST;
	if (!from_obj && to_obj)
		return rename_onto_object(fs, from, ndir, newname);
	if (!from_obj) {
		int r = scratch_rename(fs, from, to);
		if (r == 0)
			inode_rename(fs, from, to);
		return r;
	}
	if (!to_obj)
		return copy_object_to_scratch(fs, dir, name, to);
	cleanup_free char *origin = dir_origin(dir, name);
	err_set(&e, EINVAL,
		"objects cannot be renamed: copy the file to the new name, then remove the old "
		"one");
	return fs_reject(fs, dir->ns, origin, -EINVAL, &e);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct fs *fs = fs_of(req);
	struct inode *dir = inode_get(fs, parent), *ndir = inode_get(fs, newparent);
	fuse_reply_err(req, dir && ndir ? -do_rename(fs, dir, name, ndir, newname, flags) : ENOENT);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct inode *in = inode_get(fs, ino);
	struct dirent_list *l = xcalloc(1, sizeof(*l));
	struct stat st;
	int r = in ? inode_stat(fs, in, &st) : -ENOENT;

	if (r == 0)
		r = inode_list(fs, in, l);
	if (r < 0) {
		free(l);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)l;
	if (fuse_reply_open(req, fi) != 0) {
		dirent_list_free(l);
		free(l);
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dirent_list *l = (struct dirent_list *)(uintptr_t)fi->fh;
	char *buf = xmalloc(size);
	size_t used = 0;

	for (size_t i = (size_t)off; i < l->n; i++) {
		struct stat st = {.st_ino = 0xffffffff, .st_mode = (mode_t)l->types[i] << 12};
		size_t n = fuse_add_direntry(req, buf + used, size - used, l->names[i], &st,
					     (off_t)i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirent_list *l = (struct dirent_list *)(uintptr_t)fi->fh;
	dirent_list_free(l);
	free(l);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = {.f_bsize = 4096,
			     .f_frsize = 4096,
			     .f_namemax = 255,
			     .f_blocks = 1 << 20,
			     .f_bfree = 1 << 19,
			     .f_bavail = 1 << 19,
			     .f_files = 1 << 20,
			     .f_ffree = 1 << 19};
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.open = file_open,
	.create = file_create,
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.fsync = file_fsync,
	.release = file_release,
	.unlink = op_unlink,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
};

/* Whether mountpoint is a FUSE mount of ours, in /proc/self/mountinfo. */
static int is_mounted(const char *mountpoint)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096], mp[4096];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, mountpoint))
			return 1;
	return 0;
}

/* Clears a mount left by a crashed server; refuses one a live server holds. */
int fs_check_mountpoint(const char *mountpoint, struct err *e)
{
	struct stat st;

	if (stat(mountpoint, &st) == 0) {
		if (is_mounted(mountpoint) && st.st_dev != 0) {
			struct stat parent;
			cleanup_free char *up = xasprintf("%s/..", mountpoint);
			if (stat(up, &parent) == 0 && parent.st_dev != st.st_dev)
				return err_set(e, EBUSY,
					       "%s is already mounted (is another clusterfs "
					       "running there?)",
					       mountpoint);
		}
		return S_ISDIR(st.st_mode)
			       ? 0
			       : err_set(e, ENOTDIR, "%s is not a directory", mountpoint);
	}
	if (errno == ENOTCONN) {
		fprintf(stderr, "clusterfs: clearing the stale mount at %s\n", mountpoint);
		if (umount2(mountpoint, MNT_DETACH) < 0)
			return err_set(e, errno, "cannot clear the stale mount at %s: %s",
				       mountpoint, strerror(errno));
		return 0;
	}
	if (errno == ENOENT && mkdir(mountpoint, 0755) == 0)
		return 0;
	return err_set(e, errno, "%s: %s", mountpoint, strerror(errno));
}

struct fs *fs_new(struct store *s, const char *mountpoint, struct err *e)
{
	char *argv[] = {(char *)"clusterfs", (char *)"-o", NULL, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct fs *fs;

	if (fs_check_mountpoint(mountpoint, e) < 0)
		return NULL;
	fs = xcalloc(1, sizeof(*fs));
	fs->store = s;
	fs->mountpoint = realpath(mountpoint, NULL);
	fs->uid = getuid();
	fs->gid = getgid();
	fs->started = now_ns();
	fs->scratch = strmap_new();
	pthread_mutex_init(&fs->slock, NULL);
	pthread_mutex_init(&fs->hlock, NULL);
	inodes_init(fs);
	logs_init(fs);
	fs->watch = watch_hub_new(s);
	argv[2] = getuid() == 0 ? (char *)"fsname=clusterfs,subtype=clusterfs,default_permissions,"
					  "allow_other"
				: (char *)"fsname=clusterfs,subtype=clusterfs,default_permissions";
	fs->se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args);
	if (!fs->se || fuse_session_mount(fs->se, fs->mountpoint) != 0) {
		err_set(e, EIO, "cannot mount %s (is /dev/fuse there, and fuse3 installed?)",
			mountpoint);
		fs_free(fs);
		return NULL;
	}
	return fs;
}

static void on_wake(int sig)
{
}

/*
 * A crash of the server. Its own threads use its mount (controllers, the
 * toucher); one that waits for an answer there cannot be stopped, and the
 * kernel ends the process (or dumps its core) only once every thread has
 * stopped, while the threads that would answer are gone: the process, and
 * every client of the mount, would wait for ever (seen: 6 crashes of 8
 * under load). The device's descriptor is closed first: once the workers'
 * reads of it end, which the dying process's SIGKILL does, the connection
 * is aborted, those waits fail, and the process can end.
 */
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static volatile sig_atomic_t crash_fd = -1;
static struct sigaction crash_was[NSIG];

static void on_crash(int sig, siginfo_t *si, void *ctx)
{
	struct sigaction *was = &crash_was[sig];

	if (crash_fd >= 0)
		close(crash_fd);
	crash_fd = -1;
	/* A handler there before (a sanitizer's) says its piece first. */
	if ((was->sa_flags & SA_SIGINFO) && was->sa_sigaction)
		was->sa_sigaction(sig, si, ctx);
	else if (!(was->sa_flags & SA_SIGINFO) && was->sa_handler != SIG_DFL &&
		 was->sa_handler != SIG_IGN)
		was->sa_handler(sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void abort_on_crash(struct fs *fs)
{
	struct sigaction sa = {.sa_sigaction = on_crash, .sa_flags = SA_SIGINFO | SA_NODEFER};

	crash_fd = fuse_session_fd(fs->se);
	for (size_t i = 0; i < sizeof(crash_signals) / sizeof(*crash_signals); i++)
		sigaction(crash_signals[i], &sa, &crash_was[crash_signals[i]]);
}

/* The FUSE connection's number (its device's minor) of the mount at dir,
 * from /proc/self/mountinfo; 0 when it is not found. */
static unsigned conn_of(const char *dir)
{
	cleanup_free char *info = file_get("/proc/self/mountinfo", 16 << 20, NULL);
	unsigned found = 0;

	for (char *line = info, *next; line && *line && !found; line = next) {
		char point[4096];
		unsigned minor;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (sscanf(line, "%*u %*u %*u:%u %*s %4095s", &minor, point) == 2 &&
		    !strcmp(point, dir))
			found = minor;
	}
	return found;
}

/*
 * A SIGKILL cannot be caught, and leaves the server hung as a crash did
 * (8 of 8 under load). A child of the loop's thread, told by the kernel
 * when that thread ends however it ends (PR_SET_PDEATHSIG), aborts the
 * connection through fusectl. After a clean stop the mount is gone first
 * and the abort finds nothing. Best effort: fusectl needs root.
 */
static void abort_on_death(struct fs *fs)
{
	unsigned conn = conn_of(fs->mountpoint);
	char path[64];
	sigset_t usr2, was;
	pid_t parent = getpid(), pid;

	if (!conn)
		return;
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", conn);
	if (access(path, W_OK) < 0 &&
	    (mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) < 0 ||
	     access(path, W_OK) < 0))
		return;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, &was);
	if ((pid = fork()) == 0) {
		int sig, fd;
		syscall(SYS_close_range, 3, ~0U, 0); /* the device's descriptor first */
		if (prctl(PR_SET_PDEATHSIG, SIGUSR2) < 0)
			_exit(1);
		if (getppid() == parent)
			sigwait(&usr2, &sig);
		if ((fd = open(path, O_WRONLY)) >= 0 && write(fd, "1", 1) < 0)
			_exit(1);
		_exit(0);
	}
	pthread_sigmask(SIG_SETMASK, &was, NULL);
}

int fs_loop(struct fs *fs)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	struct sigaction sa = {.sa_handler = on_wake}; /* no SA_RESTART: see fs_exit */
	int r;

	fs->loop_thread = pthread_self();
	abort_on_crash(fs);
	abort_on_death(fs);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Writers wait in flush for their commit, a worker each: room for
	 * many concurrent writers, and for the toucher besides. */
	fuse_loop_cfg_set_max_threads(cfg, 64);
	fuse_loop_cfg_set_idle_threads(cfg, 16);
	fs->toucher = toucher_new(fs);
	r = fuse_session_loop_mt(fs->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return r < 0 ? r : 0;
}

void fs_end_waits(struct fs *fs)
{
	watch_hub_end_reads(fs->watch);
}

void fs_exit(struct fs *fs)
{
	/* The loop's thread waits on a semaphore that only a worker which
	 * takes a request, or a signal, ends: the signal, so that the loop
	 * returns now and not at the next request. */
	fuse_session_exit(fs->se);
	pthread_kill(fs->loop_thread, SIGUSR1);
}

static void free_scratch(const char *key, void *val, void *arg)
{
	struct scratch *sc = val;
	sb_free(&sc->data);
	free(sc);
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	/* The toucher may be inside a request nobody will serve now: stop
	 * its queue, and let the end of the session abort that request
	 * before waiting for the thread. */
	toucher_stop(fs->toucher);
	/* Files still open when the loop ended get no release. */
	while (fs->handles)
		handle_free(fs, fs->handles);
	if (fs->se) {
		fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	toucher_free(fs->toucher);
	watch_hub_free(fs->watch);
	strmap_each(fs->scratch, free_scratch, NULL);
	strmap_free(fs->scratch);
	logs_free(fs);
	inodes_free(fs);
	free(fs->mountpoint);
	free(fs);
}
