/*
 * store.h: the durable object store.
 *
 * Every object lives in SQLite (WAL mode, synchronous=FULL) and, parsed
 * and rendered, in memory, where reads are served without touching the
 * database. Writes go through one committer thread: callers queue a
 * request of one or more operations and sleep; the committer takes every
 * request that is waiting, applies each inside a savepoint of one
 * transaction, commits once (one fsync for the whole group), publishes the
 * new objects to memory and wakes the callers. So a write is acknowledged
 * only once it is durable, and concurrent writers share the cost of the
 * sync (group commit).
 *
 * A global revision increases with every change, as in etcd; an object's
 * resourceVersion is the revision of its last change. Each change is also
 * appended to a change log kept for `watch ... since REV`, and handed to
 * the subscribers once it is committed.
 */
#ifndef CFS_STORE_H
#define CFS_STORE_H

#include "object.h"

/* A stored object: immutable, shared by reference. */
struct sobj {
	int refs; /* atomic */
	const struct kind *kind;
	char *ns; /* "" for cluster-scoped kinds */
	char *name;
	char *path; /* "namespaces/NS/PLURAL/NAME.yaml" or "PLURAL/NAME.yaml" */
	int64_t rv;
	int64_t mtime;	   /* ns since the epoch of the last change */
	struct ynode *doc; /* NULL only in the store's record of a deletion */
	char *yaml;	   /* doc rendered */
	size_t len;
};
struct sobj *sobj_ref(struct sobj *o);
void sobj_unref(struct sobj *o);

/* The path of an object's file, relative to the mount; caller frees. */
char *obj_path(const struct kind *k, const char *ns, const char *name);

enum change { CH_NONE, CH_ADDED, CH_MODIFIED, CH_DELETED };
extern const char *const change_names[];

enum op_type {
	OP_PUT,	   /* create or replace with doc */
	OP_CREATE, /* create; EEXIST when it exists */
	OP_UPDATE, /* replace; ENOENT when it does not exist */
	OP_DELETE, /* delete; ENOENT when it does not exist */
};

struct store_op {
	enum op_type type;
	const struct kind *kind;
	const char *ns, *name;
	struct ynode *doc; /* OP_PUT, OP_CREATE: normalized; consumed */
	/* Filled in by store_write: */
	enum change change;
	int64_t rv;
};

struct store;

/* Opens (creating) the store in dir. Returns NULL with e on failure. */
struct store *store_open(const char *dir, struct err *e);
void store_close(struct store *s);

/* A reference to the object, or NULL. Caller drops it with sobj_unref. */
struct sobj *store_get(struct store *s, const struct kind *k, const char *ns, const char *name);
/* Whether the object exists. */
bool store_exists(struct store *s, const struct kind *k, const char *ns, const char *name);
/* How many objects of k are in ns. */
size_t store_count(struct store *s, const struct kind *k, const char *ns);
/* Names of the objects of k in ns, sorted. Caller frees each and the array. */
char **store_list(struct store *s, const struct kind *k, const char *ns, size_t *n);
int64_t store_revision(struct store *s);

/*
 * Applies ops atomically and durably: all of them or none. Returns 0, or
 * -errno with e naming the failing operation's problem (EEXIST, ENOENT,
 * ESTALE for a stale resourceVersion, ENOTEMPTY, ENOSPC, EIO...).
 * Every op's doc is consumed, whatever the result.
 */
int store_write(struct store *s, struct store_op *ops, size_t n, struct err *e);

/* Events: ns is "" for the cluster's log. Lines are kept and persisted. */
void store_event(struct store *s, const char *ns, const char *type, const char *reason,
		 const char *object, const char *msg);
/* A copy of ns's events text; caller frees. */
char *store_events(struct store *s, const char *ns, size_t *len);
size_t store_events_size(struct store *s, const char *ns);

/* Called after each committed change, in revision order, unlocked. */
typedef void (*store_watch_fn)(void *arg, int64_t rev, enum change ch, const char *path);
void store_subscribe(struct store *s, store_watch_fn fn, void *arg);
void store_unsubscribe(struct store *s, store_watch_fn fn, void *arg);
/*
 * Replays the logged changes after rev through fn. Returns 0, or -ESTALE
 * when changes after rev are no longer kept.
 */
int store_replay(struct store *s, int64_t rev, store_watch_fn fn, void *arg);

#endif
