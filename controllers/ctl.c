/*
 * ctl.c: the controller framework (see ctl.h for the data flow).
 *
 * The thread's loop: poll the inotify descriptor and a wake-up pipe, with
 * a timeout that is the nearest of the next tick and the next delayed key;
 * turn events into cache updates and queued keys; move delayed keys that
 * are due into the queue; reconcile what is queued.
 */
#define _GNU_SOURCE
#include "ctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "object.h"

#define FILE_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)
#define ROOT_EVENTS (FILE_EVENTS | IN_CREATE)

struct dirwatch {
	int wd;
	const struct kind *kind; /* NULL for namespaces/ itself */
	char *ns;
};

struct cobj {
	struct ynode *doc;
	int64_t rv;
};

struct delayed {
	int64_t due; /* monotonic ms */
	char *key;
};

struct qitem {
	char *key;
	struct qitem *next;
};

struct ctl {
	char *mount;
	const struct ctl_ops *ops;
	void *arg;
	pthread_t thread;
	int ifd, wake[2];
	int stopping; /* atomic */

	/* With the watch stream: its thread and the pipe it forwards lines on. */
	int streaming;
	pthread_t streamer;
	int lines[2];
	struct strbuf partial; /* the ctl thread's unfinished line */

	/* Everything below belongs to the controller's thread. */
	struct dirwatch *watches;
	size_t nwatches;
	struct strmap *colls;	   /* "plural/ns" -> strmap name -> struct cobj */
	struct strmap *namespaces; /* the namespaces watched */
	struct strmap *queued;	   /* keys in the queue */
	struct qitem *head, *tail;
	struct delayed *later;
	size_t nlater;
	int64_t next_tick;
};

void *ctl_arg(struct ctl *c)
{
	return c->arg;
}

void ctl_queue(struct ctl *c, const char *key)
{
	if (strmap_get(c->queued, key))
		return;
	struct qitem *q = xcalloc(1, sizeof(*q));
	q->key = xstrdup(key);
	strmap_put(c->queued, key, q);
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
}

void ctl_queue_after(struct ctl *c, const char *key, int delay_ms)
{
	c->later = xrealloc(c->later, (c->nlater + 1) * sizeof(*c->later));
	c->later[c->nlater++] = (struct delayed){mono_ms() + delay_ms, xstrdup(key)};
}

static char *coll_key(const struct kind *k, const char *ns)
{
	return xasprintf("%s/%s", k->plural, ns);
}

const struct ynode *ctl_get(struct ctl *c, const struct kind *k, const char *ns, const char *name)
{
	cleanup_free char *key = coll_key(k, ns);
	struct strmap *m = strmap_get(c->colls, key);
	struct cobj *o = m ? strmap_get(m, name) : NULL;
	return o ? o->doc : NULL;
}

struct each_ctx {
	struct ctl *c;
	const char *ns;
	void (*fn)(struct ctl *, const char *, const char *, const struct ynode *, void *);
	void *arg;
};

static void each_obj(const char *name, void *val, void *arg)
{
	struct each_ctx *x = arg;
	x->fn(x->c, x->ns, name, ((struct cobj *)val)->doc, x->arg);
}

static void free_keys(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

void ctl_each(struct ctl *c, const struct kind *k, const char *ns,
	      void (*fn)(struct ctl *c, const char *ns, const char *name, const struct ynode *obj,
			 void *arg),
	      void *arg)
{
	struct each_ctx x = {c, ns, fn, arg};
	cleanup_free char *prefix = xasprintf("%s/", k->plural);
	size_t n, plen = strlen(prefix);

	if (ns) {
		cleanup_free char *key = coll_key(k, ns);
		struct strmap *m = strmap_get(c->colls, key);
		if (m)
			strmap_each(m, each_obj, &x);
		return;
	}
	char **keys = strmap_keys(c->colls, &n);
	for (size_t i = 0; i < n; i++) {
		if (strncmp(keys[i], prefix, plen))
			continue;
		x.ns = keys[i] + plen;
		strmap_each(strmap_get(c->colls, keys[i]), each_obj, &x);
	}
	free_keys(keys, n);
}

/* Sets the cache entry (doc consumed; NULL removes) and reports the change. */
static void cache_set(struct ctl *c, const struct kind *k, const char *ns, const char *name,
		      struct ynode *doc)
{
	cleanup_free char *key = coll_key(k, ns);
	struct strmap *m = strmap_get(c->colls, key);
	struct cobj *old = m ? strmap_get(m, name) : NULL;
	int64_t rv = doc ? obj_rv(doc) : 0;

	if (!doc && !old)
		return;
	if (doc && old && old->rv == rv) {
		y_free(doc);
		return;
	}
	if (!m)
		strmap_put(c->colls, key, m = strmap_new());
	struct ynode *before = old ? old->doc : NULL;
	if (doc) {
		struct cobj *o = xcalloc(1, sizeof(*o));
		o->doc = doc;
		o->rv = rv;
		strmap_put(m, name, o);
	} else {
		strmap_del(m, name);
	}
	if (c->ops->changed)
		c->ops->changed(c, k, ns, name, doc, before);
	y_free(before);
	free(old);
}

static char *object_file(struct ctl *c, const struct kind *k, const char *ns, const char *name)
{
	if (k->namespaced)
		return xasprintf("%s/namespaces/%s/%s/%s.yaml", c->mount, ns, k->plural, name);
	return xasprintf("%s/%s/%s.yaml", c->mount, k->plural, name);
}

/* Reads a whole file; caller frees. NULL with errno on failure. */
/* Reads the object's file into the cache; gone means deleted. */
static void refresh(struct ctl *c, const struct kind *k, const char *ns, const char *name)
{
	cleanup_free char *path = object_file(c, k, ns, name);
	struct ynode *doc = NULL;
	struct err e = {0};
	int r = obj_load(path, &doc, &e);

	if (r == 0 || r == -ENOENT)
		cache_set(c, k, ns, name, doc);
}

static int object_name(const char *file, char *name, size_t size)
{
	size_t len = strlen(file);
	if (len <= 5 || file[0] == '.' || strcmp(file + len - 5, ".yaml") || len - 5 >= size)
		return 0;
	memcpy(name, file, len - 5);
	name[len - 5] = 0;
	return 1;
}

/* Watches dir; returns the watch, or NULL when dir cannot be watched. */
static struct dirwatch *add_watch(struct ctl *c, const char *dir, const struct kind *k,
				  const char *ns)
{
	int wd = inotify_add_watch(c->ifd, dir, k ? FILE_EVENTS : ROOT_EVENTS);
	if (wd < 0)
		return NULL;
	for (size_t i = 0; i < c->nwatches; i++)
		if (c->watches[i].wd == wd)
			return &c->watches[i];
	c->watches = xrealloc(c->watches, (c->nwatches + 1) * sizeof(*c->watches));
	c->watches[c->nwatches] = (struct dirwatch){wd, k, xstrdup(ns)};
	return &c->watches[c->nwatches++];
}

static char *watch_dir(struct ctl *c, const struct dirwatch *w)
{
	if (!w->kind)
		return xasprintf("%s/namespaces", c->mount);
	if (w->kind->namespaced)
		return xasprintf("%s/namespaces/%s/%s", c->mount, w->ns, w->kind->plural);
	return xasprintf("%s/%s", c->mount, w->kind->plural);
}

/* Reads every object file in the watched directory w into the cache, and
 * drops what the cache had that is no longer there. */
static void list_dir(struct ctl *c, const struct dirwatch *w, const struct kind *k)
{
	cleanup_free char *dir = watch_dir(c, w);
	const char *ns = w->kind ? w->ns : "";
	DIR *d = opendir(dir);
	struct strmap *seen = strmap_new();
	struct dirent *de;
	char name[256];
	size_t n;

	if (!d && errno != ENOENT) {
		/* Unreadable is not empty (a remote view while the server is
		 * down): keep what the cache has. */
		strmap_free(seen);
		return;
	}
	while (d && (errno = 0, de = readdir(d))) {
		if (!object_name(de->d_name, name, sizeof(name)))
			continue;
		strmap_put(seen, name, (void *)1);
		refresh(c, k, ns, name);
	}
	if (d) {
		int failed = errno != 0;
		closedir(d);
		if (failed) {
			strmap_free(seen);
			return;
		}
	}
	cleanup_free char *key = coll_key(k, ns);
	struct strmap *m = strmap_get(c->colls, key);
	char **names = m ? strmap_keys(m, &n) : NULL;
	for (size_t i = 0; names && i < n; i++)
		if (!strmap_get(seen, names[i]))
			cache_set(c, k, ns, names[i], NULL);
	if (names)
		free_keys(names, n);
	strmap_free(seen);
}

static void add_namespace(struct ctl *c, const char *ns)
{
	if (strmap_get(c->namespaces, ns))
		return;
	strmap_put(c->namespaces, ns, (void *)1);
	for (int i = 0; c->ops->kinds[i]; i++) {
		const struct kind *k = kind_by_plural(c->ops->kinds[i]);
		if (!k->namespaced)
			continue;
		cleanup_free char *dir = xasprintf("%s/namespaces/%s/%s", c->mount, ns, k->plural);
		struct dirwatch *w = add_watch(c, dir, k, ns);
		if (w)
			list_dir(c, w, k);
	}
}

static void remove_watch_at(struct ctl *c, size_t i)
{
	free(c->watches[i].ns);
	c->watches[i] = c->watches[--c->nwatches];
}

/* A namespace went: its watches go, and its objects leave the cache. */
static void remove_namespace(struct ctl *c, const char *ns)
{
	size_t n;

	if (!strmap_del(c->namespaces, ns))
		return;
	for (size_t i = 0; i < c->nwatches;) {
		struct dirwatch *w = &c->watches[i];
		if (w->kind && w->kind->namespaced && !strcmp(w->ns, ns)) {
			inotify_rm_watch(c->ifd, w->wd);
			const struct kind *k = w->kind;
			cleanup_free char *key = coll_key(k, ns);
			struct strmap *m = strmap_get(c->colls, key);
			char **names = m ? strmap_keys(m, &n) : NULL;
			for (size_t j = 0; names && j < n; j++)
				cache_set(c, k, ns, names[j], NULL);
			if (names)
				free_keys(names, n);
			remove_watch_at(c, i);
		} else {
			i++;
		}
	}
}

static int wants(const struct ctl *c, const char *plural)
{
	for (int i = 0; c->ops->kinds[i]; i++)
		if (!strcmp(c->ops->kinds[i], plural))
			return 1;
	return 0;
}

/* Lists the namespaces: new ones are watched, gone ones forgotten. */
static void list_namespaces(struct ctl *c)
{
	cleanup_free char *dir = xasprintf("%s/namespaces", c->mount);
	struct strmap *seen = strmap_new();
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n;

	if (!d) {
		strmap_free(seen); /* unreadable is not empty: see list_dir */
		return;
	}
	while ((errno = 0, de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		strmap_put(seen, de->d_name, (void *)1);
		add_namespace(c, de->d_name);
	}
	if (errno != 0) {
		closedir(d);
		strmap_free(seen);
		return;
	}
	closedir(d);
	char **known = strmap_keys(c->namespaces, &n);
	for (size_t i = 0; i < n; i++)
		if (!strmap_get(seen, known[i]))
			remove_namespace(c, known[i]);
	free_keys(known, n);
	strmap_free(seen);
}

/* At the start and after IN_Q_OVERFLOW: everything read anew. */
static void relist(struct ctl *c)
{
	list_namespaces(c);
	for (size_t i = 0; i < c->nwatches; i++) {
		struct dirwatch *w = &c->watches[i];
		if (w->kind)
			list_dir(c, w, w->kind);
		else if (wants(c, "namespaces"))
			list_dir(c, w, kind_by_name("Namespace"));
	}
}

static void watch_roots(struct ctl *c)
{
	cleanup_free char *nsdir = xasprintf("%s/namespaces", c->mount);

	add_watch(c, nsdir, NULL, "");
	for (int i = 0; c->ops->kinds[i]; i++) {
		const struct kind *k = kind_by_plural(c->ops->kinds[i]);
		if (k->namespaced || !strcmp(k->plural, "namespaces"))
			continue;
		cleanup_free char *dir = xasprintf("%s/%s", c->mount, k->plural);
		add_watch(c, dir, k, "");
	}
}

/* An event in namespaces/: a namespace (NS/ or NS.yaml) came or went. */
static void root_event(struct ctl *c, const struct inotify_event *ev)
{
	char name[256];
	const char *ns = ev->name;

	if (object_name(ev->name, name, sizeof(name))) {
		ns = name;
		if (wants(c, "namespaces"))
			refresh(c, kind_by_name("Namespace"), "", name);
	}
	cleanup_free char *dir = xasprintf("%s/namespaces/%s", c->mount, ns);
	if (access(dir, F_OK) == 0)
		add_namespace(c, ns);
	else
		remove_namespace(c, ns);
}

static void handle_event(struct ctl *c, const struct inotify_event *ev)
{
	char name[256];

	if (ev->mask & IN_Q_OVERFLOW) {
		fprintf(stderr,
			"clusterfs: %s: inotify queue overflowed; listing everything again\n",
			c->ops->name);
		relist(c);
		return;
	}
	for (size_t i = 0; i < c->nwatches; i++) {
		struct dirwatch *w = &c->watches[i];
		if (w->wd != ev->wd)
			continue;
		if (ev->mask & IN_IGNORED)
			remove_watch_at(c, i);
		else if (!ev->len)
			;
		else if (!w->kind)
			root_event(c, ev);
		else if (object_name(ev->name, name, sizeof(name)))
			refresh(c, w->kind, w->ns, name);
		return;
	}
}

static void read_events(struct ctl *c)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(c->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			handle_event(c, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
}

static int poll_timeout(struct ctl *c)
{
	int64_t now = mono_ms(), next = -1;

	if (c->head)
		return 0;
	if (c->next_tick)
		next = c->next_tick;
	for (size_t i = 0; i < c->nlater; i++)
		if (next < 0 || c->later[i].due < next)
			next = c->later[i].due;
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

static void run_timers(struct ctl *c)
{
	int64_t now = mono_ms();

	for (size_t i = 0; i < c->nlater;) {
		if (c->later[i].due <= now) {
			ctl_queue(c, c->later[i].key);
			free(c->later[i].key);
			c->later[i] = c->later[--c->nlater];
		} else {
			i++;
		}
	}
	if (c->next_tick && c->next_tick <= now) {
		c->next_tick = now + c->ops->tick_ms;
		c->ops->tick(c);
	}
}

/* Reconciles up to max queued keys; a failure is retried after a pause. */
static void run_queue(struct ctl *c, int max)
{
	for (int i = 0; i < max && c->head; i++) {
		struct qitem *q = c->head;
		c->head = q->next;
		if (!c->head)
			c->tail = NULL;
		strmap_del(c->queued, q->key);
		int r = c->ops->reconcile(c, q->key);
		if (r < 0)
			ctl_queue_after(c, q->key, r == -ESTALE ? 10 : 1000);
		free(q->key);
		free(q);
	}
}

static int stopping(struct ctl *c)
{
	return __atomic_load_n(&c->stopping, __ATOMIC_ACQUIRE);
}

/* Empties the wake-up pipe, then tells the controller. */
static void woken(struct ctl *c)
{
	char buf[64];

	while (read(c->wake[0], buf, sizeof(buf)) > 0)
		;
	if (c->ops->woken && !stopping(c))
		c->ops->woken(c);
}

void ctl_wake(struct ctl *c)
{
	/* A full pipe already holds a wake-up: nothing is lost. */
	if (write(c->wake[1], "w", 1) < 0 && errno != EAGAIN)
		perror("clusterfs: ctl_wake");
}

/*
 * The watch stream, for a view over 9P where inotify sees only this
 * client's own writes: a thread keeps MOUNT/watch open with the filter
 * "/" (everything) and forwards its lines to the controller's thread
 * through a pipe. After a broken connection it opens watch again with
 * "since" the last revision it saw, so nothing is missed; when that
 * revision is no longer in the server's log (ESTALE), or at the very
 * start, it forwards "RELIST" instead, after the new watch is in place.
 */
static void forward(struct ctl *c, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(c->lines[1], p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void on_stop_signal(int sig)
{
}

static void *stream_main(void *arg)
{
	struct ctl *c = arg;
	cleanup_free char *path = xasprintf("%s/watch", c->mount);
	struct strbuf pending = {0};
	int64_t since = -1;
	int backoff = 100;

	while (!stopping(c)) {
		char filter[64], buf[16384];
		ssize_t n;
		int fd = open(path, O_RDWR | O_CLOEXEC);

		if (since >= 0)
			snprintf(filter, sizeof(filter), "/ since %lld\n", (long long)since);
		else
			snprintf(filter, sizeof(filter), "/\n");
		if (fd < 0 || write(fd, filter, strlen(filter)) < 0) {
			int err = errno;
			if (fd >= 0)
				close(fd);
			if (err == ESTALE) {
				since = -1; /* the log no longer reaches back there */
				continue;
			}
			usleep((useconds_t)backoff * 1000);
			backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
			continue;
		}
		if (since < 0)
			forward(c, "RELIST\n", 7);
		backoff = 100;
		sb_truncate(&pending, 0);
		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			sb_append(&pending, buf, (size_t)n);
			char *end = memrchr(pending.buf, '\n', pending.len);
			if (!end)
				continue;
			size_t whole = (size_t)(end - pending.buf) + 1;
			/* The last whole line's revision is where to resume. */
			char *last = memrchr(pending.buf, '\n', whole - 1);
			since = strtoll(last ? last + 1 : pending.buf, NULL, 10);
			forward(c, pending.buf, whole);
			memmove(pending.buf, pending.buf + whole, pending.len - whole);
			pending.len -= whole;
		}
		if (n < 0 && errno == ESTALE)
			since = -1; /* fell too far behind: list anew */
		close(fd);
	}
	sb_free(&pending);
	return NULL;
}

/* A change the stream reported: "REV ADDED|MODIFIED|DELETED PATH". */
static void stream_line(struct ctl *c, char *line)
{
	char *path = strchr(line, ' '), *parts[5], *save = NULL, name[256];
	const struct kind *k;
	int n = 0;

	if (!strcmp(line, "RELIST")) {
		relist(c);
		return;
	}
	if (!path || !(path = strchr(path + 1, ' ')))
		return;
	for (char *t = strtok_r(path + 1, "/", &save); t && n < 5; t = strtok_r(NULL, "/", &save))
		parts[n++] = t;
	if (n == 2 && !strcmp(parts[0], "namespaces") &&
	    object_name(parts[1], name, sizeof(name))) {
		if (wants(c, "namespaces"))
			refresh(c, kind_by_name("Namespace"), "", name);
		cleanup_free char *dir = xasprintf("%s/namespaces/%s", c->mount, name);
		if (access(dir, F_OK) == 0)
			add_namespace(c, name);
		else if (errno == ENOENT)
			remove_namespace(c, name);
	} else if (n == 4 && !strcmp(parts[0], "namespaces") && (k = kind_by_plural(parts[2])) &&
		   wants(c, k->plural) && object_name(parts[3], name, sizeof(name))) {
		if (!strmap_get(c->namespaces, parts[1]))
			add_namespace(c, parts[1]); /* lists the new namespace */
		else
			refresh(c, k, parts[1], name);
	} else if (n == 2 && (k = kind_by_plural(parts[0])) && !k->namespaced &&
		   wants(c, k->plural) && object_name(parts[1], name, sizeof(name))) {
		refresh(c, k, "", name);
	}
}

static void read_stream(struct ctl *c)
{
	char buf[16384];
	ssize_t n;

	while ((n = read(c->lines[0], buf, sizeof(buf))) > 0)
		sb_append(&c->partial, buf, (size_t)n);
	char *start = c->partial.buf, *nl;
	while (start &&
	       (nl = memchr(start, '\n', c->partial.len - (size_t)(start - c->partial.buf)))) {
		*nl = 0;
		stream_line(c, start);
		start = nl + 1;
	}
	if (start) {
		size_t rest = c->partial.len - (size_t)(start - c->partial.buf);
		memmove(c->partial.buf, start, rest);
		c->partial.len = rest;
	}
}

static void *ctl_main(void *arg)
{
	struct ctl *c = arg;
	struct pollfd fds[3] = {{c->ifd, POLLIN, 0},
				{c->wake[0], POLLIN, 0},
				{c->streaming ? c->lines[0] : -1, POLLIN, 0}};

	watch_roots(c);
	if (!c->streaming)
		relist(c); /* streaming: once the stream says RELIST */
	if (c->ops->tick_ms > 0)
		c->next_tick = mono_ms() + c->ops->tick_ms;
	while (!stopping(c)) {
		if (poll(fds, 3, poll_timeout(c)) < 0 && errno != EINTR)
			break;
		if (fds[0].revents & POLLIN)
			read_events(c);
		if (fds[1].revents & POLLIN)
			woken(c);
		if (fds[2].revents & POLLIN)
			read_stream(c);
		run_timers(c);
		run_queue(c, 256);
	}
	return NULL;
}

static struct ctl *start(const char *mount, const struct ctl_ops *ops, void *arg, int streaming)
{
	struct ctl *c = xcalloc(1, sizeof(*c));

	c->mount = xstrdup(mount);
	c->ops = ops;
	c->arg = arg;
	c->colls = strmap_new();
	c->queued = strmap_new();
	c->namespaces = strmap_new();
	c->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	c->lines[0] = c->lines[1] = -1;
	c->streaming = streaming;
	if (c->ifd < 0 || pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    (streaming && pipe2(c->lines, O_CLOEXEC) < 0)) {
		fprintf(stderr, "clusterfs: %s: %s\n", ops->name, strerror(errno));
		abort();
	}
	if (streaming) {
		/* The ctl thread reads what it can; the streamer blocks. */
		fcntl(c->lines[0], F_SETFL, O_NONBLOCK);
		struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART */
		sigaction(SIGUSR2, &sa, NULL);
		pthread_create(&c->streamer, NULL, stream_main, c);
	}
	pthread_create(&c->thread, NULL, ctl_main, c);
	return c;
}

struct ctl *ctl_start(const char *mount, const struct ctl_ops *ops, void *arg)
{
	return start(mount, ops, arg, 0);
}

struct ctl *ctl_start_streaming(const char *mount, const struct ctl_ops *ops, void *arg)
{
	return start(mount, ops, arg, 1);
}

static void drop_cobj(const char *key, void *val, void *arg)
{
	struct cobj *o = val;
	y_free(o->doc);
	free(o);
}

static void drop_coll(const char *key, void *val, void *arg)
{
	strmap_each(val, drop_cobj, NULL);
	strmap_free(val);
}

void ctl_request_stop(struct ctl *c)
{
	if (!c || __atomic_exchange_n(&c->stopping, 1, __ATOMIC_ACQ_REL))
		return;
	if (write(c->wake[1], "x", 1) < 0)
		perror("clusterfs: ctl_request_stop");
}

void ctl_stop(struct ctl *c)
{
	if (!c)
		return;
	ctl_request_stop(c);
	pthread_join(c->thread, NULL);
	if (c->streaming) {
		/* The streamer may sit in a read of watch that only a change
		 * would end: interrupt it until it sees it must stop. */
		struct timespec ts;
		do {
			pthread_kill(c->streamer, SIGUSR2);
			deadline_ms(&ts, 100);
		} while (pthread_timedjoin_np(c->streamer, NULL, &ts) == ETIMEDOUT);
		close(c->lines[0]);
		close(c->lines[1]);
		sb_free(&c->partial);
	}
	close(c->ifd);
	close(c->wake[0]);
	close(c->wake[1]);
	for (size_t i = 0; i < c->nwatches; i++)
		free(c->watches[i].ns);
	free(c->watches);
	strmap_each(c->colls, drop_coll, NULL);
	strmap_free(c->colls);
	while (c->head) {
		struct qitem *q = c->head;
		c->head = q->next;
		free(q->key);
		free(q);
	}
	strmap_free(c->queued);
	strmap_free(c->namespaces);
	for (size_t i = 0; i < c->nlater; i++)
		free(c->later[i].key);
	free(c->later);
	free(c->mount);
	free(c);
}

const struct ynode *ctl_reload(struct ctl *c, const struct kind *k, const char *ns,
			       const char *name)
{
	refresh(c, k, ns, name);
	return ctl_get(c, k, ns, name);
}

int ctl_put(struct ctl *c, const struct kind *k, const char *ns, const char *name,
	    const struct ynode *doc, int flags)
{
	cleanup_free char *path = object_file(c, k, ns, name);
	struct strbuf sb = {0};
	int r = 0;

	/* A write that carries a resourceVersion updates what exists: without
	 * O_CREAT, an object deleted meanwhile is not brought back (ENOENT). */
	int create = obj_rv(doc) ? 0 : O_CREAT;
	y_emit(doc, &sb);
	int fd = open(path, O_WRONLY | create | O_TRUNC | O_CLOEXEC | (flags & O_EXCL), 0644);
	if (fd < 0) {
		r = -errno;
	} else {
		for (size_t off = 0; off < sb.len && r == 0;) {
			ssize_t n = write(fd, sb.buf + off, sb.len - off);
			if (n < 0)
				r = -errno;
			else
				off += (size_t)n;
		}
		if (close(fd) < 0 && r == 0)
			r = -errno;
	}
	sb_free(&sb);
	if (r != -EEXIST)
		refresh(c, k, ns, name);
	return r;
}

int ctl_delete(struct ctl *c, const struct kind *k, const char *ns, const char *name)
{
	cleanup_free char *path = object_file(c, k, ns, name);
	int r = unlink(path) < 0 ? -errno : 0;

	refresh(c, k, ns, name);
	return r == -ENOENT ? 0 : r;
}

void ctl_event(struct ctl *c, const char *ns, const char *type, const char *reason,
	       const char *object, const char *fmt, ...)
{
	cleanup_free char *path = *ns ? xasprintf("%s/namespaces/%s/events", c->mount, ns)
				      : xasprintf("%s/events", c->mount);
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cleanup_free char *line = xasprintf("%s %s %s: %s\n", type, reason, object, msg);
	cleanup_close int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, line, strlen(line)) < 0)
		fprintf(stderr, "clusterfs: %s: event: %s\n", c->ops->name, strerror(errno));
}

void ctl_random_suffix(char *out, int n)
{
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char rnd[32];

	if (n > 32 || getrandom(rnd, (size_t)n, 0) != n)
		memset(rnd, 3, sizeof(rnd));
	for (int i = 0; i < n; i++)
		out[i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
	out[n] = 0;
}

void ctl_now(char buf[32])
{
	fmt_time(now_ns(), buf);
}
