/*
 * logs.c: containers' output, as files under pods/NAME/logs/.
 *
 * The node agent appends what a container prints to
 * pods/NAME/logs/CONTAINER; users read it with cat and tail -f. The logs
 * are held in memory only: fs->logs maps a pod's path to its podlogs,
 * which is stamped with the pod's uid and holds one buffer per container.
 * Every operation names the uid it means (an open file's, or the pod's
 * current one) and finds nothing when the stamp differs, so a pod deleted
 * and created again under its name starts with no logs. The store tells
 * us of each deletion after its commit (on_change), and the pod's logs are
 * freed then.
 *
 * Locking: fs->llock protects fs->logs and everything in it. A log is
 * created with llock held across the check that its pod exists, and the
 * store takes llock (in on_change) after it has published a deletion, so
 * a log is never created for a pod whose deletion has already been
 * announced. llock is therefore taken before the store's lock, never while
 * holding it.
 *
 * Each log keeps at most fs->log_limit bytes; log_append drops the oldest.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <errno.h>
#include <fcntl.h>

/* One container's log. */
struct clog {
	struct strbuf data;
	int64_t mtime; /* of the last append or clear */
};

/* The logs of one pod: a container's name -> struct clog. */
struct podlogs {
	char *uid;
	struct strmap *containers;
};

static size_t default_limit = FS_LOG_LIMIT_DEFAULT;

void fs_set_log_limit(size_t bytes)
{
	if (bytes > 0)
		default_limit = bytes;
}

/* Where the first line that starts at or after cut in old + data starts;
 * cut itself when no line ends there before the last byte. */
static size_t line_start(const char *old, size_t oldlen, const char *data, size_t n, size_t cut)
{
	size_t from = cut - 1; /* the newline that ends the line before cut */
	const char *nl = NULL;
	size_t at = 0;

	if (from < oldlen && (nl = memchr(old + from, '\n', oldlen - from)))
		at = (size_t)(nl - old);
	else if ((from = from < oldlen ? 0 : from - oldlen) < n &&
		 (nl = memchr(data + from, '\n', n - from)))
		at = oldlen + (size_t)(nl - data);
	return nl && at + 1 < oldlen + n ? at + 1 : cut;
}

void log_append(struct strbuf *sb, const char *data, size_t n, size_t limit)
{
	size_t old = sb->len, total = old + n, cut;

	if (total <= limit) {
		sb_append(sb, data, n);
		return;
	}
	cut = total - limit > old / 2 ? total - limit : old / 2;
	cut = line_start(sb->buf, old, data, n, cut);
	if (cut >= old) {
		sb_truncate(sb, 0);
		sb_append(sb, data + (cut - old), n - (cut - old));
		return;
	}
	memmove(sb->buf, sb->buf + cut, old - cut);
	sb_truncate(sb, old - cut);
	sb_append(sb, data, n);
}

const char *log_container(const struct inode *in)
{
	return strrchr(in->key, '/') + 1;
}

static void clog_free(const char *key, void *val, void *arg)
{
	struct clog *l = val;
	sb_free(&l->data);
	free(l);
}

static void podlogs_free(struct podlogs *pl)
{
	if (!pl)
		return;
	strmap_each(pl->containers, clog_free, NULL);
	strmap_free(pl->containers);
	free(pl->uid);
	free(pl);
}

static void podlogs_free_each(const char *key, void *val, void *arg)
{
	podlogs_free(val);
}

/* The store's notice of a committed change: a deleted pod's logs go. */
static void on_change(void *arg, int64_t rev, enum change ch, const char *path)
{
	struct fs *fs = arg;

	if (ch != CH_DELETED)
		return;
	pthread_mutex_lock(&fs->llock);
	struct podlogs *pl = strmap_del(fs->logs, path);
	pthread_mutex_unlock(&fs->llock);
	podlogs_free(pl);
}

void logs_init(struct fs *fs)
{
	pthread_mutex_init(&fs->llock, NULL);
	fs->logs = strmap_new();
	fs->log_limit = default_limit;
	store_subscribe(fs->store, on_change, fs);
}

void logs_free(struct fs *fs)
{
	store_unsubscribe(fs->store, on_change, fs);
	strmap_each(fs->logs, podlogs_free_each, NULL);
	strmap_free(fs->logs);
	pthread_mutex_destroy(&fs->llock);
}

static char *pod_path(const struct inode *pod)
{
	return obj_path(pod->kind, pod->ns, pod->name);
}

/* The pod's uid now (caller frees), or NULL when it is gone. */
static char *pod_uid(struct fs *fs, const struct inode *pod)
{
	struct sobj *o = store_get(fs->store, pod->kind, pod->ns, pod->name);
	const char *uid = o ? y_path_str(o->doc, "metadata.uid") : NULL;
	char *copy = uid ? xstrdup(uid) : NULL;

	sobj_unref(o);
	return copy;
}

/* The pod's logs if they are those of the pod with uid. llock held. */
static struct podlogs *find_pod(struct fs *fs, const struct inode *pod, const char *uid)
{
	cleanup_free char *path = pod_path(pod);
	struct podlogs *pl = strmap_get(fs->logs, path);

	return pl && uid && !strcmp(pl->uid, uid) ? pl : NULL;
}

/* A log of the pod with uid, or NULL. llock held. */
static struct clog *find_log(struct fs *fs, const struct inode *pod, const char *container,
			     const char *uid)
{
	struct podlogs *pl = find_pod(fs, pod, uid);
	return pl ? strmap_get(pl->containers, container) : NULL;
}

/* Whether the pod's spec names container among its containers or
 * initContainers. */
static bool has_container(const struct ynode *doc, const char *container)
{
	static const char *const lists[] = {"spec.containers", "spec.initContainers"};

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		const struct ynode *l = y_path(doc, lists[i]);
		for (size_t j = 0; l && l->type == Y_SEQ && j < l->n; j++) {
			const char *name = y_path_str(l->v[j], "name");
			if (name && !strcmp(name, container))
				return true;
		}
	}
	return false;
}

/* Makes an empty log of container for the pod o. llock held. */
static struct clog *create_log(struct fs *fs, const struct sobj *o, const char *uid,
			       const char *container)
{
	struct podlogs *pl = strmap_get(fs->logs, o->path);
	struct clog *l;

	if (pl && strcmp(pl->uid, uid)) {
		podlogs_free(strmap_del(fs->logs, o->path)); /* an earlier pod's */
		pl = NULL;
	}
	if (!pl) {
		pl = xcalloc(1, sizeof(*pl));
		pl->uid = xstrdup(uid);
		pl->containers = strmap_new();
		strmap_put(fs->logs, o->path, pl);
	}
	if (!(l = strmap_get(pl->containers, container))) {
		l = xcalloc(1, sizeof(*l));
		l->mtime = now_ns();
		strmap_put(pl->containers, container, l);
	}
	return l;
}

/* Finds, or when asked creates, a log of the pod as it is now. llock held. */
static int open_locked(struct fs *fs, const struct inode *pod, const char *container, int create,
		       char **uid, struct clog **out)
{
	struct sobj *o = store_get(fs->store, pod->kind, pod->ns, pod->name);
	const char *u = o ? y_path_str(o->doc, "metadata.uid") : NULL;
	int r = 0;

	if (!u)
		r = -ENOENT;
	else if ((*out = find_log(fs, pod, container, u)))
		*uid = xstrdup(u);
	else if (!create)
		r = -ENOENT;
	else if (!has_container(o->doc, container))
		r = -ENODEV; /* told apart from a missing pod, for the events line */
	else {
		*out = create_log(fs, o, u, container);
		*uid = xstrdup(u);
	}
	sobj_unref(o);
	return r;
}

int logs_open(struct fs *fs, const struct inode *pod, const char *container, int flags, int create,
	      char **uid)
{
	struct clog *l = NULL;
	struct err e = {0};

	pthread_mutex_lock(&fs->llock);
	int r = open_locked(fs, pod, container, create, uid, &l);
	if (r == 0 && (flags & O_TRUNC)) {
		sb_truncate(&l->data, 0);
		l->mtime = now_ns();
	}
	pthread_mutex_unlock(&fs->llock);
	if (r != -ENODEV)
		return r;
	cleanup_free char *origin = xasprintf("pods/%s/logs/%s", pod->name, container);
	err_set(&e, ENOENT, "pod %s has no container named \"%s\" to keep a log of", pod->name,
		container);
	return fs_reject(fs, pod->ns, origin, -ENOENT, &e);
}

int logs_exists(struct fs *fs, const struct inode *pod, const char *container)
{
	cleanup_free char *uid = pod_uid(fs, pod);

	pthread_mutex_lock(&fs->llock);
	struct clog *l = find_log(fs, pod, container, uid);
	pthread_mutex_unlock(&fs->llock);
	return l ? 0 : -ENOENT;
}

int logs_append(struct fs *fs, const struct inode *pod, const char *container, const char *uid,
		const char *data, size_t n)
{
	pthread_mutex_lock(&fs->llock);
	struct clog *l = find_log(fs, pod, container, uid);
	if (l) {
		log_append(&l->data, data, n, fs->log_limit);
		l->mtime = now_ns();
	}
	pthread_mutex_unlock(&fs->llock);
	return l ? 0 : -ENOENT;
}

int logs_read(struct fs *fs, const struct inode *pod, const char *container, const char *uid,
	      size_t size, off_t off, struct strbuf *out)
{
	pthread_mutex_lock(&fs->llock);
	struct clog *l = find_log(fs, pod, container, uid);
	size_t from = (size_t)off, left = l && from < l->data.len ? l->data.len - from : 0;
	if (left)
		sb_append(out, l->data.buf + from, left < size ? left : size);
	pthread_mutex_unlock(&fs->llock);
	return l ? 0 : -ENOENT;
}

int logs_stat(struct fs *fs, const struct inode *pod, const char *container, struct stat *st)
{
	cleanup_free char *uid = pod_uid(fs, pod);

	pthread_mutex_lock(&fs->llock);
	struct clog *l = find_log(fs, pod, container, uid);
	if (l) {
		st->st_mode = S_IFREG | 0644;
		st->st_size = (off_t)l->data.len;
		st->st_mtim.tv_sec = l->mtime / 1000000000LL;
		st->st_mtim.tv_nsec = l->mtime % 1000000000LL;
	}
	pthread_mutex_unlock(&fs->llock);
	return l ? 0 : -ENOENT;
}

int logs_truncate(struct fs *fs, const struct inode *pod, const char *container, const char *uid,
		  off_t size)
{
	cleanup_free char *now = uid ? NULL : pod_uid(fs, pod);
	int r = 0;

	pthread_mutex_lock(&fs->llock);
	struct clog *l = find_log(fs, pod, container, uid ? uid : now);
	if (!l)
		r = -ENOENT;
	else if (size == 0 && l->data.len) {
		sb_truncate(&l->data, 0);
		l->mtime = now_ns();
	} else if ((size_t)size != l->data.len)
		r = -EINVAL; /* a log is cleared, not cut */
	pthread_mutex_unlock(&fs->llock);
	return r;
}

void logs_list(struct fs *fs, const struct inode *pod, char ***names, size_t *n)
{
	cleanup_free char *uid = pod_uid(fs, pod);

	pthread_mutex_lock(&fs->llock);
	struct podlogs *pl = find_pod(fs, pod, uid);
	*names = pl ? strmap_keys(pl->containers, n) : NULL;
	if (!pl)
		*n = 0;
	pthread_mutex_unlock(&fs->llock);
}
