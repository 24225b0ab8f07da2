/*
 * store-internal.h: what store.c (objects, the index, opening, events)
 * and store-commit.c (the committer and its groups) share.
 */
#ifndef CFS_STORE_INTERNAL_H
#define CFS_STORE_INTERNAL_H

#include "store.h"

#include <pthread.h>
#include <sqlite3.h>

#define CHANGE_LOG_KEEP 100000
#define EVENTS_MAX	(1 << 20)
#define EVENT_MSG_MAX	4096
#define EVENTS_KEEP	20000
#define MAX_SUBSCRIBERS 8
#define STMT_CACHE	16

struct pending_change {
	int64_t rev;
	enum change ch;
	char *path;
};

struct request {
	struct store_op *ops;
	size_t n;
	char *event_ns, *event_line; /* an events line to persist, no waiting */
	int result;
	struct err *err;
	int done;
	struct request *next;
};

/* What one group (one transaction) has done so far. */
struct group {
	struct strmap *overlay; /* path -> struct sobj (a tombstone when deleted) */
	struct pending_change *changes;
	size_t nchanges, cap;
	int64_t rev; /* the last revision handed out */
	int aborted; /* -errno when SQLite rolled the whole transaction back */
};

struct subscriber {
	store_watch_fn fn;
	void *arg;
};

struct store {
	/* The committing thread's (whoever set busy); others use rdb. */
	sqlite3 *db;
	const char *stmt_sql[STMT_CACHE]; /* db's prepared statements */
	sqlite3_stmt *stmts[STMT_CACHE];
	sqlite3 *rdb; /* protected by rdb_lock */
	pthread_mutex_t rdb_lock;
	pthread_rwlock_t lock;
	struct strmap *colls; /* "plural/ns" -> strmap name -> sobj; protected by lock */
	int64_t rev;	      /* protected by lock */
	int64_t log_floor;    /* changes after it are in the log; committing thread only */
	int events_added;     /* since the events table was pruned; committing thread only */

	pthread_mutex_t qlock;
	pthread_cond_t qcond, done_cond, qcond_ckpt;
	struct request *head, *tail; /* protected by qlock */
	int stopping;		     /* protected by qlock */
	int busy;		     /* protected by qlock: a group is being committed */
	pthread_t committer;
	pthread_t checkpointer; /* copies the WAL into the database, off the write path */

	pthread_mutex_t evlock;
	struct strmap *events; /* ns -> struct strbuf *; protected by evlock */

	pthread_mutex_t sublock;
	struct subscriber subs[MAX_SUBSCRIBERS]; /* protected by sublock */
	int nsubs;
};

/* store.c */
/* Builds an object around doc (consumed), rendering it. */
struct sobj *sobj_new(const struct kind *k, const char *ns, const char *name, struct ynode *doc,
		      int64_t mtime);
/* An overlay's record that an object was deleted: no doc, no text. */
struct sobj *sobj_tombstone(const struct kind *k, const char *ns, const char *name);
/* Puts o (reference consumed) in the index or, when o is NULL, removes
 * the entry. Write lock held, or the committing thread before publishing. */
void index_set(struct store *s, const struct kind *k, const char *ns, const char *name,
	       struct sobj *o);
/* The indexed object, not referenced. Lock held, or the committing thread. */
struct sobj *index_get(struct store *s, const struct kind *k, const char *ns, const char *name);
/* The index's key of a (kind, namespace) collection. Caller frees. */
char *coll_key(const struct kind *k, const char *ns);
/* The errno for the last failure on db. */
int sql_errno(sqlite3 *db);

/* store-commit.c */
void *committer_main(void *arg);
/* Queues rq for the committer. qlock held. */
void enqueue(struct store *s, struct request *rq);

#endif
