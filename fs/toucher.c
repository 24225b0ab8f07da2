/*
 * toucher.c: makes the kernel see the changes the daemon makes itself.
 *
 * inotify events come only from operations that pass through the VFS of
 * the mount. A write to NAME/replicas, an apply or a mkdir changes objects
 * whose own files the kernel never saw touched, so no watcher would hear
 * of them. The toucher is a thread that repeats each such change as a
 * file operation on the object's file, through the mount:
 *
 *   ADDED     open(O_CREAT) + write + close  -> IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE
 *   MODIFIED  open(O_WRONLY) + write + close -> IN_MODIFY, IN_CLOSE_WRITE
 *   DELETED   unlink                         -> IN_DELETE
 *
 * The FUSE handlers recognise the toucher's requests by the thread id the
 * kernel passes with each request and treat them as no-ops; for its
 * lookups, toucher_view() hides an added file (so the kernel sends a
 * create) or shows a deleted one (so it sends an unlink).
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

struct touch {
	enum change ch;
	char *path;
	struct touch *next;
};

struct toucher {
	struct fs *fs;
	pthread_t thread;
	pid_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct touch *head, *tail; /* protected by lock */
	int stopping;		   /* protected by lock */
	char *view_key;		   /* protected by lock */
	int view;		   /* protected by lock: 1 hide, 2 show */
};

static void set_view(struct toucher *t, const char *key, int view)
{
	pthread_mutex_lock(&t->lock);
	free(t->view_key);
	t->view_key = key ? xstrdup(key) : NULL;
	t->view = view;
	pthread_mutex_unlock(&t->lock);
}

static void touch_one(struct toucher *t, struct touch *tc)
{
	cleanup_free char *full = xasprintf("%s/%s", t->fs->mountpoint, tc->path);
	int fd;

	switch (tc->ch) {
	case CH_ADDED:
	case CH_MODIFIED:
		set_view(t, tc->path, tc->ch == CH_ADDED ? 1 : 0);
		fd = open(full, O_WRONLY | (tc->ch == CH_ADDED ? O_CREAT : 0), 0644);
		if (fd >= 0) {
			if (write(fd, "\n", 1) < 0)
				perror("clusterfs: toucher");
			close(fd);
		}
		break;
	case CH_DELETED:
		set_view(t, tc->path, 2);
		unlink(full);
		break;
	default:
		break;
	}
	set_view(t, NULL, 0);
}

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;

	pthread_mutex_lock(&t->lock);
	t->tid = gettid();
	pthread_cond_broadcast(&t->cond);
	for (;;) {
		while (!t->head && !t->stopping)
			pthread_cond_wait(&t->cond, &t->lock);
		struct touch *tc = t->head;
		if (!tc)
			break;
		t->head = tc->next;
		if (!t->head)
			t->tail = NULL;
		pthread_mutex_unlock(&t->lock);
		touch_one(t, tc);
		free(tc->path);
		free(tc);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

struct toucher *toucher_new(struct fs *fs)
{
	struct toucher *t = xcalloc(1, sizeof(*t));

	t->fs = fs;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	pthread_create(&t->thread, NULL, toucher_main, t);
	pthread_mutex_lock(&t->lock);
	while (!t->tid)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return t;
}

void toucher_stop(struct toucher *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = 1;
	/* Pending touches are dropped: the mount is going away. */
	while (t->head) {
		struct touch *tc = t->head;
		t->head = tc->next;
		free(tc->path);
		free(tc);
	}
	t->tail = NULL;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

void toucher_free(struct toucher *t)
{
	if (!t)
		return;
	toucher_stop(t);
	pthread_join(t->thread, NULL);
	free(t->view_key);
	free(t);
}

void toucher_announce(struct toucher *t, enum change ch, const char *path)
{
	struct touch *tc = xcalloc(1, sizeof(*tc));

	tc->ch = ch;
	tc->path = xstrdup(path);
	pthread_mutex_lock(&t->lock);
	if (t->stopping) {
		pthread_mutex_unlock(&t->lock);
		free(tc->path);
		free(tc);
		return;
	}
	if (t->tail)
		t->tail->next = tc;
	else
		t->head = tc;
	t->tail = tc;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

int toucher_is_me(struct toucher *t, fuse_req_t req)
{
	return t && fuse_req_ctx(req)->pid == t->tid;
}

int toucher_view(struct toucher *t, const char *key)
{
	int v = 0;

	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	if (t->view_key && !strcmp(t->view_key, key))
		v = t->view;
	pthread_mutex_unlock(&t->lock);
	return v;
}
