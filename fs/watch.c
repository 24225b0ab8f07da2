/*
 * watch.c: /cluster/watch, the event stream for clients without inotify.
 *
 * A client opens watch, writes a filter line ("namespaces/default/pods",
 * optionally followed by "since REV"), then reads one line per change:
 * "REV ADDED|MODIFIED|DELETED PATH". Each open file is a watcher with a
 * queue of lines. The store calls watch_change() after every commit;
 * lines that pass a watcher's filter are queued, and a read parked on the
 * watcher is answered. Reads never hold a FUSE worker thread: a read that
 * finds the queue empty keeps its request and returns, and the reply goes
 * out later from the committer's thread (or EINTR on an interrupt).
 *
 * "since REV" replays the store's change log. While it replays, live
 * changes are held aside and merged after, so nothing is lost or doubled.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <errno.h>

#define WATCH_QUEUE_MAX (8 << 20)

struct held {
	int64_t rev;
	char *line;
};

struct watcher {
	char *filter; /* NULL until written; "" watches everything */
	int64_t last; /* the last revision queued */
	int replaying;
	struct held *held;
	size_t nheld;
	struct strbuf queue; /* lines not yet read */
	int overflow;	     /* the reader fell too far behind */
	fuse_req_t req;	     /* a parked read */
	size_t req_size;
	struct watcher *next;
};

struct watch_hub {
	pthread_mutex_t lock;
	struct watcher *list; /* protected by lock, as is every watcher */
	struct store *store;
};

static int filter_matches(const char *filter, const char *path)
{
	size_t n = strlen(filter);
	if (n == 0)
		return 1;
	if (strncmp(path, filter, n))
		return 0;
	return path[n] == 0 || path[n] == '/' || !strcmp(path + n, ".yaml");
}

/* Answers w's parked read if there is something to say. Hub locked. */
static void answer(struct watcher *w)
{
	if (!w->req || (!w->queue.len && !w->overflow))
		return;
	fuse_req_t req = w->req;
	w->req = NULL;
	if (w->overflow) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	size_t n = w->queue.len < w->req_size ? w->queue.len : w->req_size;
	if (n < w->queue.len) { /* whole lines only, unless one line is too long */
		char *nl = memrchr(w->queue.buf, '\n', n);
		if (nl)
			n = (size_t)(nl - w->queue.buf) + 1;
	}
	fuse_reply_buf(req, w->queue.buf, n);
	memmove(w->queue.buf, w->queue.buf + n, w->queue.len - n);
	w->queue.len -= n;
}

/*
 * A reader that falls WATCH_QUEUE_MAX behind has lost its place: rather
 * than skip changes silently, the queue is dropped and every read from
 * then on fails with ESTALE, so the client lists again and watches anew.
 */
static void queue_line(struct watcher *w, int64_t rev, const char *line)
{
	if (rev <= w->last || w->overflow)
		return;
	w->last = rev;
	if (w->queue.len > WATCH_QUEUE_MAX) {
		w->overflow = 1;
		sb_free(&w->queue);
		return;
	}
	sb_puts(&w->queue, line);
}

static void watch_change(void *arg, int64_t rev, enum change ch, const char *path)
{
	struct watch_hub *h = arg;
	cleanup_free char *line = xasprintf("%lld %s %s\n", (long long)rev, change_names[ch], path);

	pthread_mutex_lock(&h->lock);
	for (struct watcher *w = h->list; w; w = w->next) {
		if (!w->filter || !filter_matches(w->filter, path))
			continue;
		if (w->replaying) {
			w->held = xrealloc(w->held, (w->nheld + 1) * sizeof(*w->held));
			w->held[w->nheld++] = (struct held){rev, xstrdup(line)};
			continue;
		}
		queue_line(w, rev, line);
		answer(w);
	}
	pthread_mutex_unlock(&h->lock);
}

struct watch_hub *watch_hub_new(struct store *s)
{
	struct watch_hub *h = xcalloc(1, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->store = s;
	store_subscribe(s, watch_change, h);
	return h;
}

void watch_hub_free(struct watch_hub *h)
{
	if (!h)
		return;
	store_unsubscribe(h->store, watch_change, h);
	free(h);
}

struct watcher *watcher_new(struct watch_hub *h)
{
	struct watcher *w = xcalloc(1, sizeof(*w));
	pthread_mutex_lock(&h->lock);
	w->next = h->list;
	h->list = w;
	pthread_mutex_unlock(&h->lock);
	return w;
}

void watcher_free(struct watch_hub *h, struct watcher *w)
{
	pthread_mutex_lock(&h->lock);
	for (struct watcher **p = &h->list; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	if (w->req)
		fuse_reply_err(w->req, EINTR);
	pthread_mutex_unlock(&h->lock);
	for (size_t i = 0; i < w->nheld; i++)
		free(w->held[i].line);
	free(w->held);
	free(w->filter);
	sb_free(&w->queue);
	free(w);
}

struct replay_ctx {
	struct watch_hub *h;
	struct watcher *w;
};

static void replay_one(void *arg, int64_t rev, enum change ch, const char *path)
{
	struct replay_ctx *c = arg;
	if (!filter_matches(c->w->filter, path))
		return;
	cleanup_free char *line = xasprintf("%lld %s %s\n", (long long)rev, change_names[ch], path);
	pthread_mutex_lock(&c->h->lock);
	queue_line(c->w, rev, line);
	pthread_mutex_unlock(&c->h->lock);
}

/* Parses "PATH [since REV]"; PATH may carry a leading slash. */
static int parse_filter(const char *buf, size_t len, char **path, int64_t *since, struct err *e)
{
	cleanup_free char *text = xstrndup(buf, len);
	char p[1024] = "", word[16] = "", extra[2];
	long long rev = -1;

	text[strcspn(text, "\n")] = 0;
	int n = sscanf(text, "%1023s %15s %lld %1s", p, word, &rev, extra);
	if (n == 2 || n == 4 || (n == 3 && strcmp(word, "since")) || (n == 3 && rev < 0))
		return err_set(e, EINVAL, "watch: expected \"PATH [since REV]\", got \"%s\"", text);
	char *s = p;
	while (*s == '/')
		s++;
	size_t l = strlen(s);
	while (l && s[l - 1] == '/')
		s[--l] = 0;
	*path = xstrdup(s);
	*since = n == 3 ? rev : -1;
	return 0;
}

int watcher_filter(struct watch_hub *h, struct watcher *w, const char *buf, size_t len,
		   struct err *e)
{
	char *path;
	int64_t since;
	int r;

	if ((r = parse_filter(buf, len, &path, &since, e)) < 0)
		return r;
	pthread_mutex_lock(&h->lock);
	if (w->filter) {
		pthread_mutex_unlock(&h->lock);
		free(path);
		return err_set(e, EBUSY, "watch: this open file has a filter already");
	}
	w->filter = path;
	w->replaying = since >= 0;
	w->last = since >= 0 ? since : store_revision(h->store);
	pthread_mutex_unlock(&h->lock);
	if (since < 0)
		return 0;

	struct replay_ctx c = {h, w};
	r = store_replay(h->store, since, replay_one, &c);
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < w->nheld; i++) {
		queue_line(w, w->held[i].rev, w->held[i].line);
		free(w->held[i].line);
	}
	w->nheld = 0;
	w->replaying = 0;
	if (r < 0) {
		free(w->filter);
		w->filter = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (r < 0)
		return err_set(e, ESTALE,
			       "watch: changes since %lld are no longer kept: list again",
			       (long long)since);
	return 0;
}

/* The watcher is looked up, not taken from the callback's argument:
 * libfuse calls this after letting its own lock go, by which time the
 * read may have been answered by a change, the file closed and the
 * watcher freed. The request itself is still held for the call. */
static void on_interrupt(fuse_req_t req, void *arg)
{
	struct fs *fs = fuse_req_userdata(req);
	struct watch_hub *h = fs->watch;

	pthread_mutex_lock(&h->lock);
	for (struct watcher *w = h->list; w; w = w->next)
		if (w->req == req) {
			w->req = NULL;
			fuse_reply_err(req, EINTR);
			break;
		}
	pthread_mutex_unlock(&h->lock);
}

void watch_hub_end_reads(struct watch_hub *h)
{
	pthread_mutex_lock(&h->lock);
	for (struct watcher *w = h->list; w; w = w->next)
		if (w->req) {
			fuse_reply_err(w->req, EINTR);
			w->req = NULL;
		}
	pthread_mutex_unlock(&h->lock);
}

void watcher_read(struct watch_hub *h, struct watcher *w, fuse_req_t req, size_t size)
{
	/* Registered first: if the read was interrupted already, the
	 * callback runs now, finds nothing parked, and the check below
	 * answers it. */
	fuse_req_interrupt_func(req, on_interrupt, NULL);
	pthread_mutex_lock(&h->lock);
	if (!w->filter || w->req) {
		pthread_mutex_unlock(&h->lock);
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (fuse_req_interrupted(req)) {
		pthread_mutex_unlock(&h->lock);
		fuse_reply_err(req, EINTR);
		return;
	}
	w->req = req;
	w->req_size = size;
	answer(w);
	pthread_mutex_unlock(&h->lock);
}
