/*
 * store.c: SQLite underneath, an in-memory index on top, one committer
 * thread in between.
 *
 * Data flow of a write: store_write() queues a request and sleeps on
 * s->done_cond (or, when nobody is committing, commits it at once in the
 * caller's thread). The committer takes the whole queue, opens one
 * transaction, and runs each request inside a savepoint against an
 * overlay (the objects this group has written so far, which later
 * requests of the group must see). A request that fails rolls back to its
 * savepoint and its overlay is dropped. Then one COMMIT; on success the
 * overlay is published to the index under the write lock and every
 * caller is woken; on failure every request of the group fails.
 *
 * Only the committing thread (the one that set s->busy) writes the index,
 * so it reads it without the lock; everybody else takes s->lock for
 * reading.
 */
#define _GNU_SOURCE
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#define CHANGE_LOG_KEEP 100000
#define EVENTS_MAX	(1 << 20)
#define EVENT_MSG_MAX	4096
#define EVENTS_KEEP	20000
#define MAX_SUBSCRIBERS 8
#define STMT_CACHE	16

const char *const change_names[] = {"NONE", "ADDED", "MODIFIED", "DELETED"};

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

struct sobj *sobj_ref(struct sobj *o)
{
	if (o)
		__atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
	return o;
}

void sobj_unref(struct sobj *o)
{
	if (!o || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL))
		return;
	free(o->ns);
	free(o->name);
	free(o->path);
	y_free(o->doc);
	free(o->yaml);
	free(o);
}

char *obj_path(const struct kind *k, const char *ns, const char *name)
{
	if (k->namespaced)
		return xasprintf("namespaces/%s/%s/%s.yaml", ns, k->plural, name);
	return xasprintf("%s/%s.yaml", k->plural, name);
}

/* An overlay's record that an object was deleted: no doc, no text. */
static struct sobj *sobj_tombstone(const struct kind *k, const char *ns, const char *name)
{
	struct sobj *o = xcalloc(1, sizeof(*o));

	o->refs = 1;
	o->kind = k;
	o->ns = xstrdup(ns);
	o->name = xstrdup(name);
	o->path = obj_path(k, ns, name);
	return o;
}

/* Builds an object around doc (consumed), rendering it. */
static struct sobj *sobj_new(const struct kind *k, const char *ns, const char *name,
			     struct ynode *doc, int64_t mtime)
{
	struct sobj *o = xcalloc(1, sizeof(*o));
	struct strbuf sb = {0};

	o->refs = 1;
	o->kind = k;
	o->ns = xstrdup(ns);
	o->name = xstrdup(name);
	o->path = obj_path(k, ns, name);
	o->doc = doc;
	o->rv = obj_rv(doc);
	o->mtime = mtime;
	y_emit(doc, &sb);
	o->yaml = sb_steal(&sb, &o->len);
	return o;
}

static char *coll_key(const struct kind *k, const char *ns)
{
	return xasprintf("%s/%s", k->plural, ns);
}

/* Puts o (reference consumed) or, when o is NULL, removes path's entry. */
static void index_set(struct store *s, const struct kind *k, const char *ns, const char *name,
		      struct sobj *o)
{
	cleanup_free char *key = coll_key(k, ns);
	struct strmap *c = strmap_get(s->colls, key);

	if (!c && !o)
		return;
	if (!c)
		strmap_put(s->colls, key, c = strmap_new());
	sobj_unref(o ? strmap_put(c, name, o) : strmap_del(c, name));
	if (strmap_count(c) == 0)
		strmap_free(strmap_del(s->colls, key));
}

static struct sobj *index_get(struct store *s, const struct kind *k, const char *ns,
			      const char *name)
{
	cleanup_free char *key = coll_key(k, ns);
	struct strmap *c = strmap_get(s->colls, key);
	return c ? strmap_get(c, name) : NULL;
}

struct sobj *store_get(struct store *s, const struct kind *k, const char *ns, const char *name)
{
	pthread_rwlock_rdlock(&s->lock);
	struct sobj *o = sobj_ref(index_get(s, k, ns, name));
	pthread_rwlock_unlock(&s->lock);
	return o;
}

bool store_exists(struct store *s, const struct kind *k, const char *ns, const char *name)
{
	pthread_rwlock_rdlock(&s->lock);
	bool found = index_get(s, k, ns, name) != NULL;
	pthread_rwlock_unlock(&s->lock);
	return found;
}

size_t store_count(struct store *s, const struct kind *k, const char *ns)
{
	cleanup_free char *key = coll_key(k, ns);

	pthread_rwlock_rdlock(&s->lock);
	struct strmap *c = strmap_get(s->colls, key);
	size_t n = c ? strmap_count(c) : 0;
	pthread_rwlock_unlock(&s->lock);
	return n;
}

struct name_list {
	char **names;
	size_t n;
};

static void collect_name(const char *key, void *val, void *arg)
{
	struct name_list *l = arg;
	l->names[l->n++] = xstrdup(key);
}

char **store_list(struct store *s, const struct kind *k, const char *ns, size_t *n)
{
	cleanup_free char *key = coll_key(k, ns);
	struct name_list l = {0};

	pthread_rwlock_rdlock(&s->lock);
	struct strmap *c = strmap_get(s->colls, key);
	l.names = xmalloc(((c ? strmap_count(c) : 0) + 1) * sizeof(char *));
	if (c)
		strmap_each(c, collect_name, &l);
	pthread_rwlock_unlock(&s->lock);
	qsort(l.names, l.n, sizeof(char *), cmp_strp);
	*n = l.n;
	return l.names;
}

int64_t store_revision(struct store *s)
{
	pthread_rwlock_rdlock(&s->lock);
	int64_t r = s->rev;
	pthread_rwlock_unlock(&s->lock);
	return r;
}

static int sql_errno(sqlite3 *db)
{
	int c = sqlite3_errcode(db);
	if (c == SQLITE_FULL)
		return ENOSPC;
	if (c == SQLITE_READONLY || c == SQLITE_CANTOPEN)
		return EROFS;
	return EIO;
}

static int sql_exec(sqlite3 *db, const char *sql, struct err *e)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	int r = err_set(e, sql_errno(db), "store: %s", msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return r;
}

static void cleanup_stmtp(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}
#define cleanup_stmt __attribute__((cleanup(cleanup_stmtp)))

/* The committer's prepared statements, by the address of their SQL text
 * (always a literal), so that each is compiled once. */
static sqlite3_stmt *cached_stmt(struct store *s, const char *sql)
{
	int i;

	for (i = 0; i < STMT_CACHE && s->stmt_sql[i]; i++)
		if (s->stmt_sql[i] == sql)
			return s->stmts[i];
	if (i == STMT_CACHE) {
		fprintf(stderr, "clusterfs: store: statement cache full\n");
		abort();
	}
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[i], NULL) !=
	    SQLITE_OK)
		return NULL;
	s->stmt_sql[i] = sql;
	return s->stmts[i];
}

/*
 * Runs a statement of the committer with text ('t') and int64 ('i')
 * arguments. Returns 0 or -errno; sqlite3_errmsg(s->db) says why.
 */
static int sql_run(struct store *s, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = cached_stmt(s, sql);
	va_list ap;

	if (!st)
		return -sql_errno(s->db);
	va_start(ap, types);
	for (int i = 0; types[i]; i++) {
		if (types[i] == 't')
			sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	int rc = sqlite3_step(st);
	int r = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -sql_errno(s->db);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static const char schema_sql[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"PRAGMA wal_autocheckpoint=0;"
	"CREATE TABLE IF NOT EXISTS objects(path TEXT PRIMARY KEY, kind TEXT NOT NULL,"
	" ns TEXT NOT NULL, name TEXT NOT NULL, mtime INTEGER NOT NULL, yaml TEXT NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS changes(rev INTEGER PRIMARY KEY, type INTEGER NOT NULL,"
	" path TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, ns TEXT NOT NULL,"
	" line TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES('rev', 0), ('log_floor', 0);";

static int open_db(const char *path, sqlite3 **db, struct err *e)
{
	if (sqlite3_open_v2(path, db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		return err_set(e, EIO, "store: cannot open %s: %s", path, sqlite3_errmsg(*db));
	sqlite3_busy_timeout(*db, 10000);
	return sql_exec(*db, schema_sql, e);
}

static int64_t meta_get(sqlite3 *db, const char *key)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key=?", -1, &st, NULL);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

static int64_t newest_change(sqlite3 *db)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(db, "SELECT IFNULL(MAX(rev), 0) FROM changes", -1, &st, NULL);
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

static int load_objects(struct store *s, struct err *e)
{
	cleanup_stmt sqlite3_stmt *st = NULL;

	sqlite3_prepare_v2(s->db, "SELECT kind, ns, name, mtime, yaml FROM objects", -1, &st, NULL);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *plural = (const char *)sqlite3_column_text(st, 0);
		const char *ns = (const char *)sqlite3_column_text(st, 1);
		const char *name = (const char *)sqlite3_column_text(st, 2);
		const char *yaml = (const char *)sqlite3_column_text(st, 4);
		const struct kind *k = kind_by_plural(plural);
		struct ynode *doc = NULL;
		if (!k || obj_parse_one(yaml, strlen(yaml), &doc, e) < 0) {
			err_prefix(e, "store: stored object %s/%s/%s", plural, ns, name);
			return -EIO;
		}
		index_set(s, k, ns, name, sobj_new(k, ns, name, doc, sqlite3_column_int64(st, 3)));
	}
	return 0;
}

static struct strbuf *events_buf(struct store *s, const char *ns)
{
	struct strbuf *sb = strmap_get(s->events, ns);
	if (!sb)
		strmap_put(s->events, ns, sb = xcalloc(1, sizeof(*sb)));
	return sb;
}

/* Appends a line; drops the older half of the log past EVENTS_MAX. */
static void events_append(struct store *s, const char *ns, const char *line)
{
	struct strbuf *sb = events_buf(s, ns);
	sb_puts(sb, line);
	if (sb->len <= EVENTS_MAX)
		return;
	char *cut = memchr(sb->buf + sb->len / 2, '\n', sb->len - sb->len / 2);
	size_t keep = cut ? sb->len - (size_t)(cut + 1 - sb->buf) : 0;
	memmove(sb->buf, sb->buf + sb->len - keep, keep);
	sb->len = keep;
	sb->buf[keep] = 0;
}

static void load_events(struct store *s)
{
	cleanup_stmt sqlite3_stmt *st = NULL;

	sqlite3_prepare_v2(s->db, "SELECT ns, line FROM events ORDER BY id", -1, &st, NULL);
	while (sqlite3_step(st) == SQLITE_ROW)
		events_append(s, (const char *)sqlite3_column_text(st, 0),
			      (const char *)sqlite3_column_text(st, 1));
}

static void *committer_main(void *arg);

/*
 * Checkpoints run here, on the reading connection, once a second, rather
 * than inside a writer's commit (wal_autocheckpoint is off): a writer then
 * never waits for the database file to be written and synced.
 */
static void *checkpointer_main(void *arg)
{
	struct store *s = arg;
	struct timespec until;

	pthread_mutex_lock(&s->qlock);
	while (!s->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&s->qcond_ckpt, &s->qlock, &until);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->qlock);
		pthread_mutex_lock(&s->rdb_lock);
		sqlite3_wal_checkpoint_v2(s->rdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_unlock(&s->rdb_lock);
		pthread_mutex_lock(&s->qlock);
	}
	pthread_mutex_unlock(&s->qlock);
	return NULL;
}

struct store *store_open(const char *dir, struct err *e)
{
	struct store *s = xcalloc(1, sizeof(*s));
	cleanup_free char *path = xasprintf("%s/clusterfs.db", dir);

	mkdir(dir, 0700);
	s->colls = strmap_new();
	s->events = strmap_new();
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_mutex_init(&s->evlock, NULL);
	pthread_mutex_init(&s->sublock, NULL);
	pthread_mutex_init(&s->rdb_lock, NULL);
	pthread_cond_init(&s->qcond, NULL);
	pthread_cond_init(&s->done_cond, NULL);
	pthread_cond_init(&s->qcond_ckpt, NULL);
	if (open_db(path, &s->db, e) < 0 || open_db(path, &s->rdb, e) < 0 ||
	    load_objects(s, e) < 0) {
		store_close(s);
		return NULL;
	}
	load_events(s);
	s->rev = meta_get(s->db, "rev");
	int64_t newest = newest_change(s->db);
	if (newest > s->rev)
		s->rev = newest;
	s->log_floor = meta_get(s->db, "log_floor");
	pthread_create(&s->committer, NULL, committer_main, s);
	pthread_create(&s->checkpointer, NULL, checkpointer_main, s);
	return s;
}

static void unref_obj(const char *key, void *val, void *arg)
{
	sobj_unref(val);
}

static void drop_coll(const char *key, void *val, void *arg)
{
	strmap_each(val, unref_obj, NULL);
	strmap_free(val);
}

static void drop_events(const char *key, void *val, void *arg)
{
	sb_free(val);
	free(val);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->committer) {
		pthread_mutex_lock(&s->qlock);
		s->stopping = 1;
		pthread_cond_broadcast(&s->qcond);
		pthread_cond_broadcast(&s->qcond_ckpt);
		pthread_mutex_unlock(&s->qlock);
		pthread_join(s->committer, NULL);
		pthread_join(s->checkpointer, NULL);
	}
	strmap_each(s->colls, drop_coll, NULL);
	strmap_free(s->colls);
	strmap_each(s->events, drop_events, NULL);
	strmap_free(s->events);
	for (int i = 0; i < STMT_CACHE; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close_v2(s->rdb);
	sqlite3_close_v2(s->db);
	free(s);
}

/* The object at path as this group sees it, or NULL. Not referenced. */
static struct sobj *group_get(struct store *s, struct group *g, struct group *req,
			      const struct kind *k, const char *ns, const char *name)
{
	cleanup_free char *path = obj_path(k, ns, name);
	struct sobj *o = strmap_get(req->overlay, path);
	if (!o)
		o = strmap_get(g->overlay, path);
	if (!o)
		o = index_get(s, k, ns, name);
	return o && o->doc ? o : NULL;
}

struct ns_scan {
	struct store *s;
	struct group *g, *req;
	const char *prefix;
	size_t prefix_len;
	bool found;
};

static void scan_overlay(const char *path, void *val, void *arg)
{
	struct ns_scan *c = arg;
	if (((struct sobj *)val)->doc && strncmp(path, c->prefix, c->prefix_len) == 0)
		c->found = true;
}

static void scan_index(const char *name, void *val, void *arg)
{
	struct ns_scan *c = arg;
	struct sobj *o = val;
	if (group_get(c->s, c->g, c->req, o->kind, o->ns, o->name))
		c->found = true;
}

/* Whether namespace ns holds no objects, as this group sees it. */
static bool ns_empty(struct store *s, struct group *g, struct group *req, const char *ns)
{
	cleanup_free char *prefix = xasprintf("namespaces/%s/", ns);
	struct ns_scan c = {s, g, req, prefix, strlen(prefix), false};

	for (int i = 0; kinds[i] && !c.found; i++) {
		cleanup_free char *key = coll_key(kinds[i], ns);
		struct strmap *m = kinds[i]->namespaced ? strmap_get(s->colls, key) : NULL;
		if (m)
			strmap_each(m, scan_index, &c);
	}
	strmap_each(g->overlay, scan_overlay, &c);
	strmap_each(req->overlay, scan_overlay, &c);
	return !c.found;
}

static void group_note(struct group *g, int64_t rev, enum change ch, const char *path)
{
	if (g->nchanges == g->cap)
		g->changes = xrealloc(g->changes,
				      (g->cap = g->cap ? g->cap * 2 : 16) * sizeof(*g->changes));
	g->changes[g->nchanges++] = (struct pending_change){rev, ch, xstrdup(path)};
}

static int log_change(struct store *s, struct group *req, enum change ch, const char *path)
{
	int64_t rev = ++req->rev;
	group_note(req, rev, ch, path);
	return sql_run(s, "INSERT INTO changes(rev, type, path) VALUES(?, ?, ?)", "iit", rev,
		       (int64_t)ch, path);
}

static int op_delete(struct store *s, struct group *g, struct group *req, struct store_op *op,
		     struct err *e)
{
	struct sobj *cur = group_get(s, g, req, op->kind, op->ns, op->name);
	cleanup_free char *path = obj_path(op->kind, op->ns, op->name);
	int r;

	if (!cur)
		return err_set(e, ENOENT, "%s does not exist", path);
	if (!strcmp(op->kind->name, "Namespace") && !ns_empty(s, g, req, op->name))
		return err_set(e, ENOTEMPTY,
			       "namespace %s is not empty: delete what it holds first", op->name);
	if ((r = sql_run(s, "DELETE FROM objects WHERE path=?", "t", path)) < 0 ||
	    (r = log_change(s, req, CH_DELETED, path)) < 0)
		return err_set(e, -r, "store: %s", sqlite3_errmsg(s->db));
	sobj_unref(strmap_put(req->overlay, path, sobj_tombstone(op->kind, op->ns, op->name)));
	op->change = CH_DELETED;
	op->rv = req->rev;
	return 0;
}

static int op_put(struct store *s, struct group *g, struct group *req, struct store_op *op,
		  struct err *e)
{
	struct sobj *cur = group_get(s, g, req, op->kind, op->ns, op->name);
	cleanup_free char *path = obj_path(op->kind, op->ns, op->name);
	const struct kind *nsk = kind_by_name("Namespace");
	int64_t now = now_ns();
	bool changed;
	int r;

	if (op->type == OP_CREATE && cur)
		return err_set(e, EEXIST, "%s already exists", path);
	if (op->type == OP_UPDATE && !cur)
		return err_set(e, ENOENT, "%s was deleted while it was open for writing", path);
	if (op->kind->namespaced && !group_get(s, g, req, nsk, "", op->ns))
		return err_set(e, ENOENT, "namespace %s does not exist", op->ns);
	if ((r = obj_merge(cur ? cur->doc : NULL, op->doc, req->rev + 1, now, &changed, e)) < 0)
		return r;
	if (!changed) {
		op->change = CH_NONE;
		op->rv = cur->rv;
		return 0;
	}
	struct sobj *o = sobj_new(op->kind, op->ns, op->name, op->doc, now);
	op->doc = NULL;
	sobj_unref(strmap_put(req->overlay, path, o));
	op->change = cur ? CH_MODIFIED : CH_ADDED;
	if ((r = sql_run(s, "INSERT OR REPLACE INTO objects VALUES(?, ?, ?, ?, ?, ?)", "ttttit",
			 path, op->kind->plural, op->ns, op->name, now, o->yaml)) < 0 ||
	    (r = log_change(s, req, op->change, path)) < 0)
		return err_set(e, -r, "store: %s", sqlite3_errmsg(s->db));
	op->rv = req->rev;
	return 0;
}

static void move_entry(const char *key, void *val, void *arg)
{
	sobj_unref(strmap_put(arg, key, val));
}

static void drop_entry(const char *key, void *val, void *arg)
{
	sobj_unref(val);
}

static void group_clear(struct group *g)
{
	for (size_t i = 0; i < g->nchanges; i++)
		free(g->changes[i].path);
	g->nchanges = 0;
}

/* Runs one request inside a savepoint; on success folds it into g. */
static void run_request(struct store *s, struct group *g, struct request *rq)
{
	struct group req = {.overlay = strmap_new(), .rev = g->rev};
	int r;

	r = sql_run(s, "SAVEPOINT req", "");
	for (size_t i = 0; i < rq->n && r == 0; i++) {
		struct store_op *op = &rq->ops[i];
		r = op->type == OP_DELETE ? op_delete(s, g, &req, op, rq->err)
					  : op_put(s, g, &req, op, rq->err);
		if (r < 0 && rq->n > 1)
			err_prefix(rq->err, "document %zu (%s %s)", i + 1, op->kind->name,
				   op->name);
	}
	if (rq->event_line) {
		r = sql_run(s, "INSERT INTO events(ns, line) VALUES(?, ?)", "tt", rq->event_ns,
			    rq->event_line);
		s->events_added++;
	}
	if (r < 0) {
		/* A full disk or an I/O error makes SQLite roll back the whole
		 * transaction, not just this savepoint: then the group is lost. */
		if (sqlite3_get_autocommit(s->db))
			g->aborted = r;
		else
			sql_run(s, "ROLLBACK TO req", "");
		strmap_each(req.overlay, drop_entry, NULL);
	} else {
		strmap_each(req.overlay, move_entry, g->overlay);
		for (size_t i = 0; i < req.nchanges; i++)
			group_note(g, req.changes[i].rev, req.changes[i].ch, req.changes[i].path);
		g->rev = req.rev;
	}
	if (!g->aborted)
		sql_run(s, "RELEASE req", "");
	strmap_free(req.overlay);
	group_clear(&req);
	free(req.changes);
	rq->result = r;
}

static void publish_entry(const char *path, void *val, void *arg)
{
	struct store *s = arg;
	struct sobj *o = val;

	if (o->doc) {
		index_set(s, o->kind, o->ns, o->name, o);
		return;
	}
	index_set(s, o->kind, o->ns, o->name, NULL);
	sobj_unref(o);
}

static void notify(struct store *s, struct group *g)
{
	pthread_mutex_lock(&s->sublock);
	for (size_t i = 0; i < g->nchanges; i++)
		for (int j = 0; j < s->nsubs; j++)
			s->subs[j].fn(s->subs[j].arg, g->changes[i].rev, g->changes[i].ch,
				      g->changes[i].path);
	pthread_mutex_unlock(&s->sublock);
}

static void prune_log(struct store *s, struct group *g)
{
	if (g->rev - s->log_floor < CHANGE_LOG_KEEP + CHANGE_LOG_KEEP / 10)
		return;
	int64_t floor = g->rev - CHANGE_LOG_KEEP;
	/* The revision is the newest change's; once older changes go, the
	 * meta row keeps it too, in case the log is ever empty. */
	if (sql_run(s, "UPDATE meta SET value=? WHERE key='rev'", "i", g->rev) == 0 &&
	    sql_run(s, "DELETE FROM changes WHERE rev <= ?", "i", floor) == 0 &&
	    sql_run(s, "UPDATE meta SET value=? WHERE key='log_floor'", "i", floor) == 0)
		s->log_floor = floor;
}

/* Keeps the events table to its last EVENTS_KEEP lines. */
static void prune_events(struct store *s)
{
	if (s->events_added < EVENTS_KEEP / 10)
		return;
	s->events_added = 0;
	sql_run(s, "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?", "i",
		(int64_t)EVENTS_KEEP);
}

/* Commits a group of requests; returns 0 or -errno for all of them. */
static int commit_group(struct store *s, struct request *list, struct err *e)
{
	struct group g = {.overlay = strmap_new(), .rev = s->rev};
	int r;

	if ((r = sql_run(s, "BEGIN IMMEDIATE", "")) < 0) {
		err_set(e, -r, "store: %s", sqlite3_errmsg(s->db));
	} else {
		for (struct request *rq = list; rq && !g.aborted; rq = rq->next)
			run_request(s, &g, rq);
		if (!g.aborted) {
			prune_log(s, &g);
			prune_events(s);
		}
		r = g.aborted ? g.aborted : sql_run(s, "COMMIT", "");
		if (r < 0) {
			err_set(e, -r, "store: cannot commit: %s", sqlite3_errmsg(s->db));
			if (!sqlite3_get_autocommit(s->db))
				sql_run(s, "ROLLBACK", "");
		}
	}
	if (r == 0) {
		pthread_rwlock_wrlock(&s->lock);
		strmap_each(g.overlay, publish_entry, s);
		s->rev = g.rev;
		pthread_rwlock_unlock(&s->lock);
		notify(s, &g);
	} else {
		strmap_each(g.overlay, drop_entry, NULL);
	}
	strmap_free(g.overlay);
	group_clear(&g);
	free(g.changes);
	return r;
}

/* Settles the requests of a group that committed with result r. qlock held. */
static void finish_group(struct store *s, struct request *list, int r, struct err *e)
{
	for (struct request *rq = list, *next; rq; rq = next) {
		next = rq->next;
		if (r < 0 && rq->result == 0) {
			rq->result = r;
			if (rq->err)
				*rq->err = *e;
		}
		if (rq->event_line) { /* nobody waits for these */
			free(rq->event_ns);
			free(rq->event_line);
			free(rq);
			continue;
		}
		rq->done = 1;
	}
	s->busy = 0;
	pthread_cond_broadcast(&s->done_cond);
	pthread_cond_signal(&s->qcond);
}

/* Takes and commits the queue whenever no writer is committing. */
static void *committer_main(void *arg)
{
	struct store *s = arg;

	pthread_mutex_lock(&s->qlock);
	for (;;) {
		while (s->busy || (!s->head && !s->stopping))
			pthread_cond_wait(&s->qcond, &s->qlock);
		if (!s->head)
			break;
		struct request *list = s->head;
		s->head = s->tail = NULL;
		s->busy = 1;
		pthread_mutex_unlock(&s->qlock);

		struct err e;
		int r = commit_group(s, list, &e);

		pthread_mutex_lock(&s->qlock);
		finish_group(s, list, r, &e);
	}
	pthread_mutex_unlock(&s->qlock);
	return NULL;
}

static void enqueue(struct store *s, struct request *rq)
{
	if (s->tail)
		s->tail->next = rq;
	else
		s->head = rq;
	s->tail = rq;
	pthread_cond_signal(&s->qcond);
}

int store_write(struct store *s, struct store_op *ops, size_t n, struct err *e)
{
	struct request rq = {.ops = ops, .n = n, .err = e};

	for (size_t i = 0; i < n; i++)
		ops[i].change = CH_NONE;
	pthread_mutex_lock(&s->qlock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->qlock);
		return err_set(e, ESHUTDOWN, "the server is shutting down");
	}
	if (!s->busy && !s->head) {
		/* Nobody is committing: commit here, and spare the hand-over
		 * to the committer thread and back. Writers arriving meanwhile
		 * queue, and the committer takes them as one group. */
		struct err ge;
		s->busy = 1;
		pthread_mutex_unlock(&s->qlock);
		int r = commit_group(s, &rq, &ge);
		pthread_mutex_lock(&s->qlock);
		finish_group(s, &rq, r, &ge);
	} else {
		enqueue(s, &rq);
		while (!rq.done)
			pthread_cond_wait(&s->done_cond, &s->qlock);
	}
	pthread_mutex_unlock(&s->qlock);
	for (size_t i = 0; i < n; i++) {
		y_free(ops[i].doc);
		ops[i].doc = NULL;
	}
	return rq.result;
}

void store_event(struct store *s, const char *ns, const char *type, const char *reason,
		 const char *object, const char *msg)
{
	char ts[32];
	struct request *rq = xcalloc(1, sizeof(*rq));

	fmt_time(now_ns(), ts);
	rq->event_ns = xstrdup(ns);
	rq->event_line = xasprintf("%s %s %s %s: %.*s%s\n", ts, type, reason, object, EVENT_MSG_MAX,
				   msg, strlen(msg) > EVENT_MSG_MAX ? "..." : "");
	for (char *p = rq->event_line; p[1]; p++)
		if (*p == '\n')
			*p = ' ';
	pthread_mutex_lock(&s->evlock);
	events_append(s, ns, rq->event_line);
	pthread_mutex_unlock(&s->evlock);
	pthread_mutex_lock(&s->qlock);
	if (s->stopping) {
		free(rq->event_ns);
		free(rq->event_line);
		free(rq);
	} else {
		enqueue(s, rq);
	}
	pthread_mutex_unlock(&s->qlock);
}

char *store_events(struct store *s, const char *ns, size_t *len)
{
	pthread_mutex_lock(&s->evlock);
	struct strbuf *sb = strmap_get(s->events, ns);
	char *copy = xstrndup(sb && sb->buf ? sb->buf : "", sb ? sb->len : 0);
	*len = sb ? sb->len : 0;
	pthread_mutex_unlock(&s->evlock);
	return copy;
}

size_t store_events_size(struct store *s, const char *ns)
{
	pthread_mutex_lock(&s->evlock);
	struct strbuf *sb = strmap_get(s->events, ns);
	size_t n = sb ? sb->len : 0;
	pthread_mutex_unlock(&s->evlock);
	return n;
}

void store_subscribe(struct store *s, store_watch_fn fn, void *arg)
{
	pthread_mutex_lock(&s->sublock);
	if (s->nsubs < MAX_SUBSCRIBERS)
		s->subs[s->nsubs++] = (struct subscriber){fn, arg};
	pthread_mutex_unlock(&s->sublock);
}

void store_unsubscribe(struct store *s, store_watch_fn fn, void *arg)
{
	pthread_mutex_lock(&s->sublock);
	for (int i = 0; i < s->nsubs; i++) {
		if (s->subs[i].fn == fn && s->subs[i].arg == arg) {
			s->subs[i] = s->subs[--s->nsubs];
			break;
		}
	}
	pthread_mutex_unlock(&s->sublock);
}

int store_replay(struct store *s, int64_t rev, store_watch_fn fn, void *arg)
{
	cleanup_stmt sqlite3_stmt *st = NULL;
	int r = 0;

	pthread_mutex_lock(&s->rdb_lock);
	if (rev < meta_get(s->rdb, "log_floor")) {
		r = -ESTALE;
	} else {
		sqlite3_prepare_v2(s->rdb,
				   "SELECT rev, type, path FROM changes WHERE rev > ? ORDER BY rev",
				   -1, &st, NULL);
		sqlite3_bind_int64(st, 1, rev);
		while (sqlite3_step(st) == SQLITE_ROW)
			fn(arg, sqlite3_column_int64(st, 0), (enum change)sqlite3_column_int(st, 1),
			   (const char *)sqlite3_column_text(st, 2));
	}
	pthread_mutex_unlock(&s->rdb_lock);
	return r;
}
