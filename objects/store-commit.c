/*
 * store-commit.c: the write path of the store.
 *
 * store_write() commits in the caller's thread when nobody is committing,
 * and otherwise queues the request for the committer thread, which takes
 * every request waiting as one group. A group is one SQLite transaction;
 * each request runs inside a savepoint against an overlay (the objects the
 * group has written so far, which later requests must see); a request
 * that fails rolls back to its savepoint alone. One COMMIT, one fsync for
 * the group; then the overlay is published to the index under the write
 * lock, the subscribers are told, and the callers woken.
 *
 * Values a kind assigns from its other objects (a Service's clusterIP and
 * nodePorts) are assigned inside the request's savepoint too, against the
 * same view: only one thread commits at a time, so one write after another
 * decides them, and a value taken by an earlier request of the group (or
 * an earlier document of the same apply) is seen as taken.
 */
#define _GNU_SOURCE
#include "store-internal.h"

#include <errno.h>

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

/* What a kind's allocate hook sees: the kind's objects but the one written. */
struct peer_scan {
	struct store *s;
	struct group *g, *req;
	const struct store_op *op;
	void (*fn)(const struct ynode *obj, void *arg);
	void *arg;
};

/* Hands fn the group's view of o, when that is another live object of the kind. */
static void peer_visit(struct peer_scan *c, const struct sobj *o)
{
	if (o->kind != c->op->kind || (!strcmp(o->name, c->op->name) && !strcmp(o->ns, c->op->ns)))
		return;
	/* An object in both the index and an overlay is handed over twice,
	 * at its newest both times: harmless for a set of taken values. */
	struct sobj *now = group_get(c->s, c->g, c->req, o->kind, o->ns, o->name);
	if (now)
		c->fn(now->doc, c->arg);
}

static void peer_entry(const char *key, void *val, void *arg)
{
	peer_visit(arg, val);
}

static void peer_coll(const char *key, void *val, void *arg)
{
	struct peer_scan *c = arg;
	size_t n = strlen(c->op->kind->plural);

	if (!strncmp(key, c->op->kind->plural, n) && key[n] == '/')
		strmap_each(val, peer_entry, c);
}

static void peers_each(const struct kind_peers *p, void (*fn)(const struct ynode *obj, void *arg),
		       void *arg)
{
	struct peer_scan *c = p->ctx;

	c->fn = fn;
	c->arg = arg;
	strmap_each(c->s->colls, peer_coll, c);
	strmap_each(c->g->overlay, peer_entry, c);
	strmap_each(c->req->overlay, peer_entry, c);
}

/* Runs op's kind's allocate hook on op->doc, with the group's view of the kind. */
static int allocate(struct store *s, struct group *g, struct group *req, const struct sobj *cur,
		    struct store_op *op, struct err *e)
{
	struct peer_scan c = {.s = s, .g = g, .req = req, .op = op};
	struct kind_peers peers = {.each = peers_each, .ctx = &c};

	return op->kind->allocate(cur ? cur->doc : NULL, op->doc, &peers, e);
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
	if (op->kind->allocate && ((r = obj_check_rv(cur ? cur->doc : NULL, op->doc, e)) < 0 ||
				   (r = allocate(s, g, req, cur, op, e)) < 0))
		return r;
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
void *committer_main(void *arg)
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

void enqueue(struct store *s, struct request *rq)
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
