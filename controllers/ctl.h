/*
 * ctl.h: the framework every controller and the scheduler are built on.
 *
 * A controller is a thread that does only what a user's script could do:
 * it watches kind directories of the mount with inotify, keeps a cache of
 * the objects it read there, queues the keys of what changed, and
 * reconciles each key by reading its cache and writing files.
 *
 *   inotify event on namespaces/NS/KIND/NAME.yaml
 *     -> the file is read and parsed into the cache (or dropped, if gone)
 *     -> ops->changed() maps the change to keys, queued without duplicates
 *     -> ops->reconcile(key), on the same thread
 *
 * Watches follow namespaces as they come and go; IN_Q_OVERFLOW, and the
 * start, re-list every watched directory. One thread does everything, so
 * the cache needs no lock: pointers from ctl_get() and ctl_each() are
 * valid until the controller next handles events or writes.
 *
 * Writes go through the mount (ctl_put, ctl_delete) and the result is read
 * back into the cache at once, so a reconcile never acts twice on a stale
 * view while its own inotify event is on its way. A write that carries the
 * object's resourceVersion fails with -ESTALE when someone else changed it
 * first: reconcile returns that, and the key is queued again.
 */
#ifndef CFS_CTL_H
#define CFS_CTL_H

#include "schema.h"
#include "selector.h"

struct ctl;

struct ctl_ops {
	const char *name; /* for events and logs: "replicaset-controller" */
	/* The kinds (plural) whose directories this controller watches. */
	const char *const *kinds;
	/*
	 * Called for each change seen, with the object as it is now (NULL
	 * when it was deleted) and as the cache had it before (NULL when it
	 * is new). Queue keys with ctl_queue().
	 */
	void (*changed)(struct ctl *c, const struct kind *k, const char *ns, const char *name,
			const struct ynode *now, const struct ynode *before);
	/* Brings the world in line for one key. 0, or -errno to retry. */
	int (*reconcile)(struct ctl *c, const char *key);
	/* Called every tick_ms milliseconds when tick_ms > 0. */
	void (*tick)(struct ctl *c);
	int tick_ms;
	/* Called on the thread after another thread's ctl_wake(). */
	void (*woken)(struct ctl *c);
};

/* Starts a controller on the mount. arg is the controller's own state. */
struct ctl *ctl_start(const char *mount, const struct ctl_ops *ops, void *arg);
/*
 * The same for a view over 9P, where inotify sees only this client's own
 * writes: changes also come from the stream of MOUNT/watch, resumed with
 * "since" after the connection breaks. While the view cannot be read, the
 * cache keeps what it has: an unreadable directory is not an empty one.
 */
struct ctl *ctl_start_streaming(const char *mount, const struct ctl_ops *ops, void *arg);
/* Asks the thread to stop, and returns at once. */
void ctl_request_stop(struct ctl *c);
/* From any thread: has the controller's thread call ops->woken() soon. */
void ctl_wake(struct ctl *c);
/* Stops the thread, waits for it and frees everything; ctl_stop(NULL) does
 * nothing. The mount must still be served, or gone, for the thread to end. */
void ctl_stop(struct ctl *c);
void *ctl_arg(struct ctl *c);

/* Queues key for reconcile (once, however often it is queued). */
void ctl_queue(struct ctl *c, const char *key);
/* Queues key again after delay_ms (for retries and timed work). */
void ctl_queue_after(struct ctl *c, const char *key, int delay_ms);

/* The cached object, or NULL. Borrowed: see above. */
const struct ynode *ctl_get(struct ctl *c, const struct kind *k, const char *ns, const char *name);
/* Reads the object's file again into the cache and returns it, or NULL. */
const struct ynode *ctl_reload(struct ctl *c, const struct kind *k, const char *ns,
			       const char *name);
/* Calls fn for every cached object of kind k in ns ("" for cluster-scoped,
 * NULL for every namespace). fn must not write. */
void ctl_each(struct ctl *c, const struct kind *k, const char *ns,
	      void (*fn)(struct ctl *c, const char *ns, const char *name, const struct ynode *obj,
			 void *arg),
	      void *arg);

/*
 * Writes doc as the object's file. With O_EXCL in flags, fails with
 * -EEXIST when the object exists (for names picked at random). Returns 0
 * or -errno (ESTALE: someone changed it first). The cache is updated.
 */
int ctl_put(struct ctl *c, const struct kind *k, const char *ns, const char *name,
	    const struct ynode *doc, int flags);
/* Removes the object's file. Returns 0 or -errno. The cache is updated. */
int ctl_delete(struct ctl *c, const struct kind *k, const char *ns, const char *name);
/* Appends "TYPE REASON OBJECT: MESSAGE" to ns's events ("" for the cluster's). */
void ctl_event(struct ctl *c, const char *ns, const char *type, const char *reason,
	       const char *object, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A random suffix of n characters from Kubernetes' alphabet for names. */
void ctl_random_suffix(char *out, int n);
/* The current time as RFC 3339. */
void ctl_now(char buf[32]);

#endif
