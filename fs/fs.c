/*
 * fs.c: the FUSE low-level handlers, and mounting.
 *
 * Each handler finds its inode, delegates to a function that returns 0 or
 * a negative errno, and replies exactly once. Open files are handles
 * (fs-internal.h): a reader gets a snapshot of the object taken at open;
 * a writer collects bytes, and the object is applied when the file is
 * flushed (close) or fsynced, so close() returns only once the change is
 * durable, or with the errno of its rejection.
 *
 * Every reply carries zero entry and attribute timeouts: the kernel asks
 * again each time, so sizes are exact and a change is seen at once.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <errno.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/*
 * Objects and scratch files are never cached: sizes must be exact and
 * changes seen at once. The directories above them change only by mkdir
 * and rmdir, which pass through the kernel, so their names may be cached
 * for a second; that spares a lookup per path component of every open.
 */
static void set_timeouts(const struct inode *in, struct fuse_entry_param *e)
{
	switch (in->type) {
	case N_NSROOT:
	case N_NSDIR:
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
static void reply_attr(fuse_req_t req, struct fs *fs, struct inode *in,
		       struct fuse_file_info *fi, int r)
{
	struct stat st;

	if (r == 0)
		r = inode_stat(fs, in, &st);
	if (r == 0 && fi && handle_of(fi)->type == H_OBJ && handle_of(fi)->created)
		st.st_size = (off_t)handle_of(fi)->buf.len;
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

static void buf_truncate(struct strbuf *sb, size_t size)
{
	if (size > sb->len) {
		sb_grow(sb, size - sb->len);
		memset(sb->buf + sb->len, 0, size - sb->len);
	}
	sb->len = size;
	if (sb->buf)
		sb->buf[size] = 0;
}

static int do_setattr(struct fs *fs, fuse_req_t req, struct inode *in,
		      struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct handle *h = fi ? handle_of(fi) : NULL;

	if (toucher_is_me(fs->toucher, req) || !(to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE)))
		return 0;
	if (in->type == N_SCRATCH) {
		pthread_mutex_lock(&fs->slock);
		struct scratch *sc = strmap_get(fs->scratch, in->key);
		if (sc && (to_set & FUSE_SET_ATTR_SIZE))
			buf_truncate(&sc->data, (size_t)attr->st_size);
		if (sc && (to_set & FUSE_SET_ATTR_MODE))
			sc->mode = attr->st_mode & 07777;
		pthread_mutex_unlock(&fs->slock);
		return sc ? 0 : -ENOENT;
	}
	if (!(to_set & FUSE_SET_ATTR_SIZE))
		return 0; /* modes are the tree's to decide */
	if (h && h->type != H_READ && h->type != H_WATCH && h->type != H_TOUCH) {
		pthread_mutex_lock(&h->lock);
		buf_truncate(&h->buf, (size_t)attr->st_size);
		h->dirty = 1;
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	if (in->type == N_APPLY || in->type == N_EVENTS || in->type == N_WATCH)
		return 0;
	return -EINVAL;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct inode *in = inode_get(fs, ino);

	reply_attr(req, fs, in, fi, in ? do_setattr(fs, req, in, attr, to_set, fi) : -ENOENT);
}

static struct handle *handle_new(enum htype t, struct inode *in)
{
	struct handle *h = xcalloc(1, sizeof(*h));
	h->type = t;
	h->inode = in;
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

static void pending_add(struct fs *fs, const char *key, long d)
{
	pthread_mutex_lock(&fs->ilock);
	long n = (long)(intptr_t)strmap_get(fs->pending, key) + d;
	if (n > 0)
		strmap_put(fs->pending, key, (void *)(intptr_t)n);
	else
		strmap_del(fs->pending, key);
	pthread_mutex_unlock(&fs->ilock);
}

/* Opens an object file: a snapshot to read, or a buffer to write. */
static int open_object(struct fs *fs, struct inode *in, int flags, struct handle **out)
{
	struct sobj *o = store_get(fs->store, in->kind, in->ns, in->name);
	int writing = (flags & O_ACCMODE) != O_RDONLY;
	struct handle *h = handle_new(writing ? H_OBJ : H_READ, in);

	if (!o) {
		free(h);
		return -ENOENT;
	}
	if (!(writing && (flags & O_TRUNC)))
		sb_append(&h->buf, o->yaml, o->len);
	h->emptied = writing && (flags & O_TRUNC);
	sobj_unref(o);
	*out = h;
	return 0;
}

static int do_open(struct fs *fs, fuse_req_t req, struct inode *in, int flags,
		   struct handle **out)
{
	struct handle *h;

	if (toucher_is_me(fs->toucher, req)) {
		*out = handle_new(H_TOUCH, in);
		return 0;
	}
	switch (in->type) {
	case N_OBJ:
		return open_object(fs, in, flags, out);
	case N_README:
		if ((flags & O_ACCMODE) != O_RDONLY)
			return -EACCES;
		h = handle_new(H_READ, in);
		sb_puts(&h->buf, readme_text());
		break;
	case N_EVENTS:
		h = handle_new(H_EVENTS, in);
		break;
	case N_APPLY:
		h = handle_new(H_APPLY, in);
		break;
	case N_WATCH:
		h = handle_new(H_WATCH, in);
		h->watcher = watcher_new(fs->watch);
		break;
	case N_REPLICAS: {
		cleanup_free char *text = fs_replicas_text(fs, in);
		if (!text)
			return -ENOENT;
		h = handle_new(H_REPLICAS, in);
		if (!(flags & O_TRUNC))
			sb_puts(&h->buf, text);
		break;
	}
	case N_SCRATCH:
		h = handle_new(H_SCRATCH, in);
		h->scratch = scratch_create(fs, in->key, 0644);
		if (flags & O_TRUNC) {
			pthread_mutex_lock(&fs->slock);
			buf_truncate(&h->scratch->data, 0);
			pthread_mutex_unlock(&fs->slock);
		}
		break;
	default:
		return -EISDIR;
	}
	*out = h;
	return 0;
}

static void reply_open(fuse_req_t req, struct handle *h, struct fuse_file_info *fi)
{
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fi->nonseekable = h->type == H_WATCH;
	if (fuse_reply_open(req, fi) != 0) {
		free(h);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct inode *in = inode_get(fs, ino);
	struct handle *h = NULL;
	int r = in ? do_open(fs, req, in, fi->flags, &h) : -ENOENT;

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_open(req, h, fi);
}

/* Where origin names a file for events: relative to its namespace. */
static char *origin_of(const struct inode *dir, const char *name)
{
	if (dir->type == N_KINDDIR && dir->kind->namespaced)
		return xasprintf("%s/%s", dir->kind->plural, name);
	return *dir->key ? xasprintf("%s/%s", dir->key, name) : xstrdup(name);
}

static const struct kind *kind_of_dir(const struct inode *dir)
{
	if (dir->type == N_KINDDIR)
		return dir->kind;
	if (dir->type == N_NSROOT)
		return kind_by_name("Namespace");
	return NULL;
}

/* Rejects a name that cannot be an object of kind k, with an event. */
static int check_object_name(struct fs *fs, const struct inode *dir,
			     const char *name)
{
	const struct kind *k = kind_of_dir(dir);
	cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
	cleanup_free char *origin = origin_of(dir, name);
	struct ynode *doc = y_map();
	struct err e = {0};

	/* The name checks of a real document, on an empty one. */
	int r = obj_normalize(k, dir->ns, stem, doc, &e);
	y_free(doc);
	if (r < 0 && strncmp(e.msg, "metadata.name", 13) == 0)
		return fs_reject(fs, dir->ns, origin, r, &e);
	return 0;
}

static int do_create(struct fs *fs, fuse_req_t req, struct inode *dir,
		     const char *name, mode_t mode, struct inode **in,
		     struct handle **out)
{
	const struct kind *k = kind_of_dir(dir);
	cleanup_free char *origin = origin_of(dir, name);
	cleanup_free char *key = *dir->key ? xasprintf("%s/%s", dir->key, name) : xstrdup(name);
	struct err e = {0};
	int r;

	if (!k) {
		err_set(&e, EINVAL, "files cannot be created here: object files go in a kind directory such as pods/ or deployments/");
		return fs_reject(fs, dir->ns, origin, -EINVAL, &e);
	}
	if (!is_object_name(name)) {
		*in = inode_make(fs, N_SCRATCH, NULL, "", NULL, key);
		*out = handle_new(H_SCRATCH, *in);
		(*out)->scratch = scratch_create(fs, key, mode);
		return 0;
	}
	cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
	*in = inode_make(fs, N_OBJ, k, dir->ns, stem, key);
	if (toucher_is_me(fs->toucher, req)) {
		*out = handle_new(H_TOUCH, *in);
		return 0;
	}
	if ((r = check_object_name(fs, dir, name)) < 0) {
		inode_forget(fs, (*in)->ino, 1);
		return r;
	}
	*out = handle_new(H_OBJ, *in);
	(*out)->created = 1;
	(*out)->emptied = 1;
	pending_add(fs, key, 1);
	return 0;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct inode *dir = inode_get(fs, parent), *in = NULL;
	struct handle *h = NULL;
	struct fuse_entry_param e = {0};
	int r = dir ? do_create(fs, req, dir, name, mode, &in, &h) : -ENOENT;

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	inode_stat(fs, in, &e.attr);
	e.attr.st_ino = in->ino;
	e.ino = in->ino;
	e.generation = 1;
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	if (fuse_reply_create(req, &e, fi) != 0)
		inode_forget(fs, in->ino, 1);
}

/* The object file's name relative to its namespace, for events. */
static char *object_origin(const struct inode *in)
{
	return in->kind->namespaced ? xasprintf("%s/%s.yaml", in->kind->plural, in->name)
				    : xstrdup(in->key);
}

/* What a handle's writes are to, for events. */
static char *handle_origin(const struct handle *h)
{
	if (h->type == H_OBJ)
		return object_origin(h->inode);
	if (h->type == H_REPLICAS)
		return xasprintf("%s/%s/replicas", h->inode->kind->plural, h->inode->name);
	return xstrdup(h->type == H_APPLY ? "apply" : "events");
}

static int buf_write(struct strbuf *sb, const char *data, size_t size, off_t off)
{
	if ((size_t)off + size > OBJ_MAX_SIZE)
		return -EFBIG;
	if ((size_t)off > sb->len)
		buf_truncate(sb, (size_t)off);
	if ((size_t)off + size > sb->len)
		buf_truncate(sb, (size_t)off + size);
	memcpy(sb->buf + off, data, size);
	return 0;
}

static int do_write(struct fs *fs, struct handle *h, const char *data, size_t size, off_t off)
{
	struct err e = {0};
	int r = 0;

	switch (h->type) {
	case H_TOUCH:
		return 0;
	case H_WATCH:
		return watcher_filter(fs->watch, h->watcher, data, size, &e);
	case H_SCRATCH:
		pthread_mutex_lock(&fs->slock);
		if ((size_t)off + size > 64 * OBJ_MAX_SIZE)
			r = -EFBIG;
		else
			r = buf_write(&h->scratch->data, data, size, off), r = 0;
		h->scratch->mtime = now_ns();
		pthread_mutex_unlock(&fs->slock);
		return r;
	case H_READ:
		return -EBADF;
	default:
		break;
	}
	pthread_mutex_lock(&h->lock);
	if (h->type == H_EVENTS)
		off = (off_t)h->buf.len; /* lines are appended, wherever written */
	r = buf_write(&h->buf, data, size, off);
	h->dirty = 1;
	if (r < 0 && !h->too_big) {
		cleanup_free char *origin = handle_origin(h);
		h->too_big = 1;
		err_set(&e, EFBIG, "the document passes %d bytes, the most a write may carry", OBJ_MAX_SIZE);
		fs_reject(fs, h->inode->ns, origin, r, &e);
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	int r = do_write(fs_of(req), handle_of(fi), buf, size, off);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, size);
}

static void reply_slice(fuse_req_t req, const char *data, size_t len, size_t size, off_t off)
{
	if ((size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, data + off, len - off < size ? len - off : size);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct handle *h = handle_of(fi);

	switch (h->type) {
	case H_WATCH:
		watcher_read(fs->watch, h->watcher, req, size);
		return;
	case H_EVENTS: {
		size_t len;
		cleanup_free char *text = store_events(fs->store, h->inode->ns, &len);
		reply_slice(req, text, len, size, off);
		return;
	}
	case H_SCRATCH:
		pthread_mutex_lock(&fs->slock);
		reply_slice(req, h->scratch->data.buf, h->scratch->data.len, size, off);
		pthread_mutex_unlock(&fs->slock);
		return;
	case H_APPLY:
	case H_TOUCH:
		fuse_reply_buf(req, NULL, 0);
		return;
	default:
		pthread_mutex_lock(&h->lock);
		reply_slice(req, h->buf.buf, h->buf.len, size, off);
		pthread_mutex_unlock(&h->lock);
	}
}

/* Applies what a writer wrote. Returns 0 or the rejection's errno. */
static int handle_commit(struct fs *fs, struct handle *h)
{
	cleanup_free char *origin = NULL;
	int r = 0;

	pthread_mutex_lock(&h->lock);
	if (!h->dirty) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	h->dirty = 0;
	h->applied = 1;
	switch (h->type) {
	case H_OBJ:
		origin = object_origin(h->inode);
		r = h->too_big ? -EFBIG : fs_put_object(fs, h->inode, h->buf.buf, h->buf.len, origin, 0);
		break;
	case H_APPLY:
		r = h->too_big ? -EFBIG : fs_apply(fs, h->inode->ns, h->buf.buf ? h->buf.buf : "", h->buf.len);
		h->buf.len = 0;
		break;
	case H_REPLICAS:
		r = fs_set_replicas(fs, h->inode, h->buf.buf ? h->buf.buf : "", h->buf.len);
		break;
	case H_EVENTS:
		r = h->too_big ? -EFBIG : fs_write_events(fs, h->inode->ns, h->buf.buf ? h->buf.buf : "", h->buf.len);
		h->buf.len = 0;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -handle_commit(fs_of(req), handle_of(fi)));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -handle_commit(fs_of(req), handle_of(fi)));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct handle *h = handle_of(fi);

	if (h->created)
		pending_add(fs, h->inode->key, -1);
	if (h->type == H_OBJ && h->emptied && !h->applied) {
		/* close() cannot fail here: shells flush a file before they
		 * write to it, so an empty flush is no error. Say so instead. */
		cleanup_free char *origin = object_origin(h->inode);
		store_event(fs->store, h->inode->ns, "Warning", "Ignored", origin,
			    "the file was emptied and nothing was written to it: nothing was applied");
	}
	if (h->scratch)
		scratch_release(fs, h->scratch);
	if (h->watcher)
		watcher_free(fs->watch, h->watcher);
	sb_free(&h->buf);
	pthread_mutex_destroy(&h->lock);
	free(h);
	fuse_reply_err(req, 0);
}

static int do_unlink(struct fs *fs, fuse_req_t req, struct inode *dir, const char *name)
{
	cleanup_free char *key = *dir->key ? xasprintf("%s/%s", dir->key, name) : xstrdup(name);
	const struct kind *k = kind_of_dir(dir);

	if (k && is_object_name(name)) {
		if (toucher_is_me(fs->toucher, req))
			return 0;
		cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
		cleanup_free char *origin = origin_of(dir, name);
		return fs_delete_object(fs, k, dir->ns, stem, origin, 0);
	}
	if (k)
		return scratch_unlink(fs, key);
	if (dir->type == N_NSDIR && (!strcmp(name, "events") || !strcmp(name, "apply")))
		return 0; /* always there; lets `rm -r` of a namespace go on */
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
	cleanup_free char *origin = xasprintf("namespaces/%s", name);
	struct store_op op = {.type = OP_CREATE, .kind = nsk, .ns = "", .name = name, .doc = y_map()};
	struct err e = {0};
	int r;

	if (dir->type != N_NSROOT)
		return -EPERM;
	if ((r = obj_normalize(nsk, "", name, op.doc, &e)) < 0) {
		y_free(op.doc);
		return fs_reject(fs, "", origin, r, &e);
	}
	if ((r = store_write(fs->store, &op, 1, &e)) < 0)
		return r == -EEXIST ? r : fs_reject(fs, "", origin, r, &e);
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
	size_t n;

	if (dir->type == N_NSROOT) {
		cleanup_free char *origin = xasprintf("namespaces/%s", name);
		return fs_delete_object(fs, kind_by_name("Namespace"), "", name, origin, 1);
	}
	if (dir->type == N_NSDIR) {
		const struct kind *k = kind_by_plural(name);
		if (!k || !k->namespaced)
			return -ENOENT;
		char **names = store_list(fs->store, k, dir->ns, &n);
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return n ? -ENOTEMPTY : 0; /* kind directories are always there */
	}
	return -EPERM;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct inode *dir = inode_get(fs, parent);
	fuse_reply_err(req, dir ? -do_rmdir(fs, dir, name) : ENOENT);
}

/* Renames a scratch file over an object file: applies its content. */
static int rename_onto_object(struct fs *fs, const char *from_key, struct inode *ndir,
			      const char *newname)
{
	cleanup_free char *stem = xstrndup(newname, strlen(newname) - 5);
	cleanup_free char *origin = origin_of(ndir, newname);
	struct inode target = {.type = N_OBJ, .kind = kind_of_dir(ndir), .ns = ndir->ns, .name = stem};
	struct strbuf copy = {0};
	int r;

	pthread_mutex_lock(&fs->slock);
	struct scratch *sc = strmap_get(fs->scratch, from_key);
	if (sc)
		sb_append(&copy, sc->data.buf ? sc->data.buf : "", sc->data.len);
	pthread_mutex_unlock(&fs->slock);
	if (!sc)
		return -ENOENT;
	if ((r = check_object_name(fs, ndir, newname)) == 0)
		r = fs_put_object(fs, &target, copy.buf, copy.len, origin, 0);
	sb_free(&copy);
	if (r == 0)
		scratch_unlink(fs, from_key);
	return r;
}

/* Copies an object's text to a scratch file (editors' backups). */
static int copy_object_to_scratch(struct fs *fs, struct inode *dir, const char *name,
				  const char *to_key)
{
	const struct kind *k = kind_of_dir(dir);
	cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
	struct sobj *o = store_get(fs->store, k, dir->ns, stem);

	if (!o)
		return -ENOENT;
	struct scratch *sc = scratch_create(fs, to_key, k->secret ? 0600 : 0644);
	pthread_mutex_lock(&fs->slock);
	buf_truncate(&sc->data, 0);
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
	struct sobj *o = store_get(fs->store, kind_of_dir(dir), dir->ns, stem);
	sobj_unref(o);
	return o != NULL;
}

static int do_rename(struct fs *fs, struct inode *dir, const char *name,
		     struct inode *ndir, const char *newname, unsigned flags)
{
	cleanup_free char *from = *dir->key ? xasprintf("%s/%s", dir->key, name) : xstrdup(name);
	cleanup_free char *to = *ndir->key ? xasprintf("%s/%s", ndir->key, newname) : xstrdup(newname);
	int from_obj = kind_of_dir(dir) && is_object_name(name);
	int to_obj = kind_of_dir(ndir) && is_object_name(newname);
	struct err e = {0};

	if (!kind_of_dir(dir) || !kind_of_dir(ndir) || (flags & RENAME_EXCHANGE))
		return -EPERM;
	if ((flags & RENAME_NOREPLACE) && (scratch_get(fs, to) || (to_obj && object_at(fs, ndir, newname))))
		return -EEXIST;
	if (!from_obj && to_obj)
		return rename_onto_object(fs, from, ndir, newname);
	if (!from_obj)
		return scratch_rename(fs, from, to);
	if (!to_obj)
		return copy_object_to_scratch(fs, dir, name, to);
	cleanup_free char *origin = origin_of(dir, name);
	err_set(&e, EINVAL, "objects cannot be renamed: copy the file to the new name, then remove the old one");
	return fs_reject(fs, dir->ns, origin, -EINVAL, &e);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
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
		size_t n = fuse_add_direntry(req, buf + used, size - used, l->names[i], &st, (off_t)i + 1);
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
	struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255,
			     .f_blocks = 1 << 20, .f_bfree = 1 << 19, .f_bavail = 1 << 19,
			     .f_files = 1 << 20, .f_ffree = 1 << 19};
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
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
static int check_mountpoint(const char *mountpoint, struct err *e)
{
	struct stat st;

	if (stat(mountpoint, &st) == 0) {
		if (is_mounted(mountpoint) && st.st_dev != 0) {
			struct stat parent;
			cleanup_free char *up = xasprintf("%s/..", mountpoint);
			if (stat(up, &parent) == 0 && parent.st_dev != st.st_dev)
				return err_set(e, EBUSY, "%s is already mounted (is another server running?)",
					       mountpoint);
		}
		return S_ISDIR(st.st_mode) ? 0 : err_set(e, ENOTDIR, "%s is not a directory", mountpoint);
	}
	if (errno == ENOTCONN) {
		fprintf(stderr, "clusterfs: clearing the stale mount at %s\n", mountpoint);
		if (umount2(mountpoint, MNT_DETACH) < 0)
			return err_set(e, errno, "cannot clear the stale mount at %s: %s", mountpoint,
				       strerror(errno));
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

	if (check_mountpoint(mountpoint, e) < 0)
		return NULL;
	fs = xcalloc(1, sizeof(*fs));
	fs->store = s;
	fs->mountpoint = realpath(mountpoint, NULL);
	fs->uid = getuid();
	fs->gid = getgid();
	fs->started = now_ns();
	fs->scratch = strmap_new();
	pthread_mutex_init(&fs->slock, NULL);
	inodes_init(fs);
	fs->watch = watch_hub_new(s);
	argv[2] = getuid() == 0 ? (char *)"fsname=clusterfs,subtype=clusterfs,default_permissions,allow_other"
				: (char *)"fsname=clusterfs,subtype=clusterfs,default_permissions";
	fs->se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	if (!fs->se || fuse_session_mount(fs->se, fs->mountpoint) != 0) {
		err_set(e, EIO, "cannot mount %s (is /dev/fuse there, and fuse3 installed?)", mountpoint);
		fs_free(fs);
		return NULL;
	}
	return fs;
}

static struct fs *signal_fs;

static void on_signal(int sig)
{
	if (signal_fs)
		fuse_session_exit(signal_fs->se);
}

int fs_loop(struct fs *fs)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	struct sigaction sa = {.sa_handler = on_signal};
	int r;

	signal_fs = fs;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Writers wait in flush for their commit, a worker each: room for
	 * many concurrent writers, and for the toucher besides. */
	fuse_loop_cfg_set_max_threads(cfg, 64);
	fuse_loop_cfg_set_idle_threads(cfg, 16);
	fs->toucher = toucher_new(fs);
	r = fuse_session_loop_mt(fs->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	toucher_free(fs->toucher);
	fs->toucher = NULL;
	return r < 0 ? r : 0;
}

void fs_exit(struct fs *fs)
{
	fuse_session_exit(fs->se);
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
	if (fs->se) {
		fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	watch_hub_free(fs->watch);
	strmap_each(fs->scratch, free_scratch, NULL);
	strmap_free(fs->scratch);
	inodes_free(fs);
	free(fs->mountpoint);
	free(fs);
}
