/*
 * store.c: the objects in memory, and the store's life: opening SQLite
 * and loading what it holds, the events logs, subscriptions, the replay
 * of the change log, and the checkpointer. The write path is
 * store-commit.c's.
 *
 * Every object is held in memory, parsed and rendered, in a hash map per
 * (kind, namespace), so reads never touch SQLite. Only the committing
 * thread (the one that set s->busy) writes the index, so it reads it
 * without the lock; everybody else takes s->lock for reading. Objects are
 * immutable and reference counted: a reader keeps its snapshot without
 * holding a lock.
 */
#define _GNU_SOURCE
#include "store-internal.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

const char *const change_names[] = {"NONE", "ADDED", "MODIFIED", "DELETED"};

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
struct sobj *sobj_tombstone(const struct kind *k, const char *ns, const char *name)
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
struct sobj *sobj_new(const struct kind *k, const char *ns, const char *name, struct ynode *doc,
		      int64_t mtime)
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

char *coll_key(const struct kind *k, const char *ns)
{
	return xasprintf("%s/%s", k->plural, ns);
}

/* Puts o (reference consumed) or, when o is NULL, removes path's entry. */
void index_set(struct store *s, const struct kind *k, const char *ns, const char *name,
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

struct sobj *index_get(struct store *s, const struct kind *k, const char *ns, const char *name)
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

int sql_errno(sqlite3 *db)
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
