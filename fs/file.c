/*
 * file.c: the handlers of open files.
 *
 * A reader of an object gets a snapshot of its text taken at open. A
 * writer gets a buffer: writes fill it, and flush (close) or fsync
 * applies it through write.c, so close() returns once the change is
 * durable, or with the errno of its rejection. The other files (events,
 * apply, replicas, watch, scratch files, containers' logs) are handles of
 * their own types; a log's writes go to logs.c at once, not at close.
 * The toucher's opens get a handle whose every operation is a no-op.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <errno.h>
#include <fcntl.h>

/* Frees a handle and lets go of what it holds. */
void handle_free(struct fs *fs, struct handle *h)
{
	pthread_mutex_lock(&fs->hlock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->hlock);
	if (h->created)
		pending_add(fs, h->inode->key, -1);
	if (h->scratch)
		scratch_release(fs, h->scratch);
	if (h->watcher)
		watcher_free(fs->watch, h->watcher);
	free(h->uid);
	sb_free(&h->buf);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static struct handle *handle_new(struct fs *fs, enum htype t, struct inode *in)
{
	struct handle *h = xcalloc(1, sizeof(*h));
	h->type = t;
	h->inode = in;
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_lock(&fs->hlock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->hlock);
	return h;
}

/* Opens an object file: a snapshot to read, or a buffer to write. */
static int open_object(struct fs *fs, struct inode *in, int flags, struct handle **out)
{
	struct sobj *o = store_get(fs->store, in->kind, in->ns, in->name);
	int writing = (flags & O_ACCMODE) != O_RDONLY;

	if (!o)
		return -ENOENT;
	struct handle *h = handle_new(fs, writing ? H_OBJ : H_READ, in);
	if (!(writing && (flags & O_TRUNC)))
		sb_append(&h->buf, o->yaml, o->len);
	h->emptied = writing && (flags & O_TRUNC);
	sobj_unref(o);
	*out = h;
	return 0;
}

static int do_open(struct fs *fs, fuse_req_t req, struct inode *in, int flags, struct handle **out)
{
	struct handle *h;

	if (toucher_is_me(fs->toucher, req)) {
		*out = handle_new(fs, H_TOUCH, in);
		return 0;
	}
	switch (in->type) {
	case N_OBJ:
		return open_object(fs, in, flags, out);
	case N_README:
		if ((flags & O_ACCMODE) != O_RDONLY)
			return -EACCES;
		h = handle_new(fs, H_READ, in);
		sb_puts(&h->buf, readme_text());
		break;
	case N_EVENTS:
		h = handle_new(fs, H_EVENTS, in);
		break;
	case N_APPLY:
		h = handle_new(fs, H_APPLY, in);
		break;
	case N_WATCH:
		h = handle_new(fs, H_WATCH, in);
		h->watcher = watcher_new(fs->watch);
		break;
	case N_REPLICAS: {
		cleanup_free char *text = fs_replicas_text(fs, in);
		if (!text)
			return -ENOENT;
		h = handle_new(fs, H_REPLICAS, in);
		if (!(flags & O_TRUNC))
			sb_puts(&h->buf, text);
		break;
	}
	case N_REVISION: {
		size_t len;
		cleanup_free char *text = rollout_text(fs, in, &len);
		if (!text)
			return -ENOENT;
		if ((flags & O_ACCMODE) != O_RDONLY)
			return -EACCES;
		h = handle_new(fs, H_READ, in);
		sb_append(&h->buf, text, len);
		break;
	}
	case N_ROLLBACK:
		h = handle_new(fs, H_ROLLBACK, in);
		break;
	case N_LOG: {
		char *uid;
		int r = logs_open(fs, in, log_container(in), flags, 0, &uid);
		if (r < 0)
			return r;
		h = handle_new(fs, H_LOG, in);
		h->uid = uid;
		break;
	}
	case N_SCRATCH:
		h = handle_new(fs, H_SCRATCH, in);
		h->scratch = scratch_create(fs, in->key, 0644);
		if (flags & O_TRUNC) {
			pthread_mutex_lock(&fs->slock);
			sb_truncate(&h->scratch->data, 0);
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
	struct fs *fs = fs_of(req); /* req is gone once answered, even when that fails */

	fi->fh = (uintptr_t)h;
	/* watch is a stream, but it ignores offsets rather than refusing
	 * them: diod serves a 9P read or write with pread and pwrite. */
	fi->direct_io = 1;
	/* A reader has nothing to apply: its close() is not a round trip. */
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC);
	if (fuse_reply_open(req, fi) != 0)
		handle_free(fs, h);
}

void file_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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

static int do_create(struct fs *fs, fuse_req_t req, struct inode *dir, const char *name,
		     mode_t mode, int flags, struct inode **in, struct handle **out)
{
	const struct kind *k = dir_kind(dir);
	cleanup_free char *origin = dir_origin(dir, name);
	cleanup_free char *key = child_key(dir, name);
	struct err e = {0};
	int r;

	if (dir->type == N_LOGDIR) {
		char *uid;
		if ((r = logs_open(fs, dir, name, flags, 1, &uid)) < 0)
			return r;
		*in = inode_make(fs, N_LOG, dir->kind, dir->ns, dir->name, key);
		*out = handle_new(fs, H_LOG, *in);
		(*out)->uid = uid;
		return 0;
	}
	if (!k) {
		err_set(&e, EINVAL,
			"files cannot be created here: object files go in a kind directory such as "
			"pods/ or deployments/");
		return fs_reject(fs, dir->ns, origin, -EINVAL, &e);
	}
	if (!is_object_name(name)) {
		*in = inode_make(fs, N_SCRATCH, NULL, "", NULL, key);
		*out = handle_new(fs, H_SCRATCH, *in);
		(*out)->scratch = scratch_create(fs, key, mode);
		return 0;
	}
	cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
	*in = inode_make(fs, N_OBJ, k, dir->ns, stem, key);
	if (toucher_is_me(fs->toucher, req)) {
		*out = handle_new(fs, H_TOUCH, *in);
		return 0;
	}
	if ((r = dir_check_name(fs, dir, name)) < 0) {
		inode_forget(fs, (*in)->ino, 1);
		return r;
	}
	*out = handle_new(fs, H_OBJ, *in);
	(*out)->created = 1;
	(*out)->emptied = 1;
	pending_add(fs, key, 1);
	return 0;
}

void file_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct inode *dir = inode_get(fs, parent), *in = NULL;
	struct handle *h = NULL;
	struct fuse_entry_param e = {0};
	int r = dir ? do_create(fs, req, dir, name, mode, fi->flags, &in, &h) : -ENOENT;

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
	if (fuse_reply_create(req, &e, fi) != 0) {
		handle_free(fs, h);
		inode_forget(fs, in->ino, 1);
	}
}

/* What a handle's writes are to, for events. */
static char *handle_origin(const struct handle *h)
{
	if (h->type == H_OBJ)
		return inode_origin(h->inode);
	if (h->type == H_ROLLBACK)
		return xasprintf("deployments/%s/rollback", h->inode->name);
	if (h->type == H_REPLICAS)
		return xasprintf("%s/%s/replicas", h->inode->kind->plural, h->inode->name);
	return xstrdup(h->type == H_APPLY ? "apply" : "events");
}

/* Writes size bytes at off into sb, which may hold at most limit bytes. */
static int buf_write(struct strbuf *sb, const char *data, size_t size, off_t off, size_t limit)
{
	if ((size_t)off + size > limit)
		return -EFBIG;
	if ((size_t)off + size > sb->len)
		sb_truncate(sb, (size_t)off + size);
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
		r = buf_write(&h->scratch->data, data, size, off, SCRATCH_MAX_SIZE);
		h->scratch->mtime = now_ns();
		pthread_mutex_unlock(&fs->slock);
		return r;
	case H_READ:
		return -EBADF;
	case H_LOG: /* appended, wherever written: O_APPEND or not */
		return logs_append(fs, h->inode, log_container(h->inode), h->uid, data, size);
	default:
		break;
	}
	pthread_mutex_lock(&h->lock);
	if (h->type == H_EVENTS)
		off = (off_t)h->buf.len; /* lines are appended, wherever written */
	r = buf_write(&h->buf, data, size, off, OBJ_MAX_SIZE);
	h->dirty = 1;
	if (r < 0 && !h->too_big) {
		cleanup_free char *origin = handle_origin(h);
		h->too_big = 1;
		err_set(&e, EFBIG, "the document passes %d bytes, the most a write may carry",
			OBJ_MAX_SIZE);
		fs_reject(fs, h->inode->ns, origin, r, &e);
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

void file_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi)
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

void file_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
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
	case H_LOG: {
		struct strbuf sb = {0};
		int r = logs_read(fs, h->inode, log_container(h->inode), h->uid, size, off, &sb);
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			fuse_reply_buf(req, sb.buf, sb.len);
		sb_free(&sb);
		return;
	}
	case H_APPLY:
	case H_TOUCH:
		fuse_reply_buf(req, NULL, 0);
		return;
	default: {
		/* Copied out, and answered with h let go: the answer may be the
		 * reader's last, its close() then releases h at once (a
		 * read-only open sends no FLUSH first), and another thread
		 * frees it while this one would still be unlocking it. */
		pthread_mutex_lock(&h->lock);
		size_t len = h->buf.len;
		cleanup_free char *copy = xmalloc(len + 1);
		if (len)
			memcpy(copy, h->buf.buf, len);
		pthread_mutex_unlock(&h->lock);
		reply_slice(req, copy, len, size, off);
	}
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
	switch (h->type) {
	case H_OBJ:
		if (h->buf.len == 0 && !h->too_big) {
			h->emptied = 1; /* nothing to apply: see file_release */
			break;
		}
		h->applied = 1;
		origin = inode_origin(h->inode);
		r = h->too_big ? -EFBIG
			       : fs_put_object(fs, h->inode, h->buf.buf, h->buf.len, origin,
					       h->created ? OP_PUT : OP_UPDATE);
		break;
	case H_APPLY:
		/* Everything written through this open file so far, again:
		 * writers that share it ({ cat a; cat b; } > apply) flush
		 * between their writes, and re-applying is a no-op. */
		r = h->too_big
			    ? -EFBIG
			    : fs_apply(fs, h->inode->ns, h->buf.buf ? h->buf.buf : "", h->buf.len);
		break;
	case H_ROLLBACK:
		r = rollout_rollback(fs, h->inode, h->buf.buf ? h->buf.buf : "", h->buf.len);
		break;
	case H_REPLICAS:
		r = fs_set_replicas(fs, h->inode, h->buf.buf ? h->buf.buf : "", h->buf.len);
		break;
	case H_EVENTS:
		r = h->too_big ? -EFBIG
			       : fs_write_events(fs, h->inode->ns, h->buf.buf ? h->buf.buf : "",
						 h->buf.len);
		h->buf.len = 0;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

void file_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -handle_commit(fs_of(req), handle_of(fi)));
}

void file_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -handle_commit(fs_of(req), handle_of(fi)));
}

void file_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct handle *h = handle_of(fi);

	if (h->type == H_OBJ && h->emptied && !h->applied) {
		/* close() cannot fail here: shells flush a file before they
		 * write to it, so an empty flush is no error. Say so instead. */
		cleanup_free char *origin = inode_origin(h->inode);
		store_event(
			fs->store, h->inode->ns, "Warning", "Ignored", origin,
			"the file was emptied and nothing was written to it: nothing was applied");
	}
	handle_free(fs, h);
	fuse_reply_err(req, 0);
}
