/*
 * scratch.c: files that are not objects, held in memory.
 *
 * Editors and tools write beside the file they change (vim's .swp, 4913
 * and NAME~, sed's sedXXXXXX, cp's and rsync's temporaries) and rename the
 * result over the target. Such names cannot be object files, so they are
 * kept here, keyed by their path, until they are renamed over an object
 * (write.c applies the content then) or removed. They do not survive a
 * restart of the server.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <errno.h>

struct scratch *scratch_get(struct fs *fs, const char *key)
{
	pthread_mutex_lock(&fs->slock);
	struct scratch *sc = strmap_get(fs->scratch, key);
	pthread_mutex_unlock(&fs->slock);
	return sc;
}

struct scratch *scratch_create(struct fs *fs, const char *key, mode_t mode)
{
	pthread_mutex_lock(&fs->slock);
	struct scratch *sc = strmap_get(fs->scratch, key);
	if (!sc) {
		sc = xcalloc(1, sizeof(*sc));
		sc->mode = mode & 07777;
		sc->mtime = now_ns();
		sc->links = 1;
		strmap_put(fs->scratch, key, sc);
	}
	sc->opens++;
	pthread_mutex_unlock(&fs->slock);
	return sc;
}

static void scratch_drop(struct scratch *sc)
{
	if (sc->links == 0 && sc->opens == 0) {
		sb_free(&sc->data);
		free(sc);
	}
}

int scratch_unlink(struct fs *fs, const char *key)
{
	pthread_mutex_lock(&fs->slock);
	struct scratch *sc = strmap_del(fs->scratch, key);
	if (sc) {
		sc->links = 0;
		scratch_drop(sc);
	}
	pthread_mutex_unlock(&fs->slock);
	return sc ? 0 : -ENOENT;
}

int scratch_rename(struct fs *fs, const char *from, const char *to)
{
	pthread_mutex_lock(&fs->slock);
	struct scratch *sc = strmap_del(fs->scratch, from);
	if (sc) {
		struct scratch *old = strmap_put(fs->scratch, to, sc);
		if (old) {
			old->links = 0;
			scratch_drop(old);
		}
	}
	pthread_mutex_unlock(&fs->slock);
	return sc ? 0 : -ENOENT;
}

void scratch_release(struct fs *fs, struct scratch *sc)
{
	pthread_mutex_lock(&fs->slock);
	sc->opens--;
	scratch_drop(sc);
	pthread_mutex_unlock(&fs->slock);
}

int scratch_stat(struct fs *fs, struct scratch *sc, const char *key, struct stat *st)
{
	pthread_mutex_lock(&fs->slock);
	if (!sc)
		sc = strmap_get(fs->scratch, key);
	if (sc) {
		st->st_mode = S_IFREG | (sc->mode & 07777);
		st->st_size = (off_t)sc->data.len;
		st->st_mtim.tv_sec = sc->mtime / 1000000000LL;
		st->st_mtim.tv_nsec = sc->mtime % 1000000000LL;
	}
	pthread_mutex_unlock(&fs->slock);
	return sc ? 0 : -ENOENT;
}

int scratch_setattr(struct fs *fs, struct scratch *sc, const char *key, const struct stat *attr,
		    int to_set)
{
	pthread_mutex_lock(&fs->slock);
	if (!sc)
		sc = strmap_get(fs->scratch, key);
	if (sc && (to_set & FUSE_SET_ATTR_SIZE))
		sb_truncate(&sc->data, (size_t)attr->st_size);
	if (sc && (to_set & FUSE_SET_ATTR_MODE))
		sc->mode = attr->st_mode & 07777;
	pthread_mutex_unlock(&fs->slock);
	return sc ? 0 : -ENOENT;
}

struct scratch_scan {
	const char *dir;
	size_t dlen;
	char **names;
	size_t n;
};

static void scan_one(const char *key, void *val, void *arg)
{
	struct scratch_scan *s = arg;
	const char *rest = key + s->dlen + (s->dlen ? 1 : 0);

	if (strncmp(key, s->dir, s->dlen) || (s->dlen && key[s->dlen] != '/') || strchr(rest, '/'))
		return;
	s->names = xrealloc(s->names, (s->n + 1) * sizeof(char *));
	s->names[s->n++] = xstrdup(rest);
}

void scratch_list(struct fs *fs, const char *dir, char ***names, size_t *n)
{
	struct scratch_scan s = {dir, strlen(dir), NULL, 0};

	pthread_mutex_lock(&fs->slock);
	strmap_each(fs->scratch, scan_one, &s);
	pthread_mutex_unlock(&fs->slock);
	*names = s.names;
	*n = s.n;
}
