/*
 * test_store.c: the durable object store, each test in a fresh directory.
 *
 * The store promises that a write is all-or-nothing, that it is durable
 * once acknowledged, that every change gets the next revision, and that
 * the change log, the subscribers and the events agree with what was
 * written. The tests write through store_write() as the server does and
 * check what store_get(), store_list(), store_replay() and a reopened
 * store see; the last one kills a writing process with SIGKILL and checks
 * that nothing it was told had been written is lost.
 */
#define _GNU_SOURCE
#include "store.h"
#include "tap.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const struct kind *k_ns, *k_cm;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* A new empty directory under /tmp: dir is at least 64 bytes. */
static void make_dir(char *dir)
{
	strcpy(dir, "/tmp/cfs-store-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(2);
	}
}

static void remove_dir(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_store(const char *dir)
{
	struct err e = {0};
	struct store *s = store_open(dir, &e);

	if (!s)
		printf("# store_open %s: %s\n", dir, e.msg);
	return s;
}

/* Runs body in a fresh directory with a store opened there; body closes it. */
static void with_store(const char *what, void (*body)(struct store *s, const char *dir))
{
	char dir[64];

	make_dir(dir);
	diag(what);
	struct store *s = open_store(dir);
	if (ok(s != NULL, "a fresh store in %s", dir))
		body(s, dir);
	remove_dir(dir);
}

/* A normalized Namespace document; caller frees (or a write consumes it). */
static struct ynode *ns_doc(const char *name)
{
	struct ynode *d = y_map();
	struct err e = {0};

	if (obj_normalize(k_ns, "", name, d, &e) < 0)
		printf("# Namespace %s: %s\n", name, e.msg);
	return d;
}

/* A normalized ConfigMap ns/name holding key: val. */
static struct ynode *cm_doc(const char *ns, const char *name, const char *val)
{
	struct ynode *d = y_map();
	struct err e = {0};

	y_set(y_submap(d, "data"), "key", y_str(val));
	if (obj_normalize(k_cm, ns, name, d, &e) < 0)
		printf("# ConfigMap %s/%s: %s\n", ns, name, e.msg);
	return d;
}

/* One operation as its own write; *done (when given) gets what it did. */
static int write1(struct store *s, enum op_type t, const struct kind *k, const char *ns,
		  const char *name, struct ynode *doc, struct store_op *done, struct err *e)
{
	struct store_op op = {.type = t, .kind = k, .ns = ns, .name = name, .doc = doc};
	struct err ignored;
	int r = store_write(s, &op, 1, e ? e : &ignored);

	if (done)
		*done = op;
	return r;
}

static int create_ns(struct store *s, const char *name)
{
	return write1(s, OP_CREATE, k_ns, "", name, ns_doc(name), NULL, NULL);
}

static int create_cm(struct store *s, const char *ns, const char *name, const char *val)
{
	return write1(s, OP_CREATE, k_cm, ns, name, cm_doc(ns, name, val), NULL, NULL);
}

static bool has(struct store *s, const struct kind *k, const char *ns, const char *name)
{
	struct sobj *o = store_get(s, k, ns, name);

	sobj_unref(o);
	return o != NULL;
}

/* The data.key of ns/name's ConfigMap, copied (caller frees), or NULL. */
static char *cm_value(struct store *s, const char *ns, const char *name)
{
	struct sobj *o = store_get(s, k_cm, ns, name);
	const char *v = o ? y_path_str(o->doc, "data.key") : NULL;
	char *c = v ? xstrdup(v) : NULL;

	sobj_unref(o);
	return c;
}

/* A record of changes, filled by a subscriber or a replay. */
struct rec {
	pthread_mutex_t lock;
	size_t n, cap;
	int64_t *rev;
	enum change *ch;
	char **path;
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

static void rec_fn(void *arg, int64_t rev, enum change ch, const char *path)
{
	struct rec *r = arg;

	pthread_mutex_lock(&r->lock);
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->rev = xrealloc(r->rev, r->cap * sizeof(*r->rev));
		r->ch = xrealloc(r->ch, r->cap * sizeof(*r->ch));
		r->path = xrealloc(r->path, r->cap * sizeof(*r->path));
	}
	r->rev[r->n] = rev;
	r->ch[r->n] = ch;
	r->path[r->n++] = xstrdup(path);
	pthread_mutex_unlock(&r->lock);
}

static size_t rec_count(struct rec *r)
{
	pthread_mutex_lock(&r->lock);
	size_t n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Waits up to 5 s for r to hold n changes; subscribers run on another thread. */
static bool rec_wait(struct rec *r, size_t n)
{
	for (int i = 0; i < 500 && rec_count(r) < n; i++)
		usleep(10000);
	return rec_count(r) >= n;
}

static void rec_clear(struct rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->path[i]);
	r->n = 0;
}

static void rec_free(struct rec *r)
{
	rec_clear(r);
	free(r->rev);
	free(r->ch);
	free(r->path);
	pthread_mutex_destroy(&r->lock);
}

struct want {
	int64_t rev;
	enum change ch;
	const char *path;
};

/* Whether r holds exactly the changes in w, in order. */
static bool rec_is(struct rec *r, const struct want *w, size_t n)
{
	bool same = r->n == n;

	for (size_t i = 0; same && i < n; i++)
		same = r->rev[i] == w[i].rev && r->ch[i] == w[i].ch &&
		       !strcmp(r->path[i], w[i].path);
	if (!same) {
		printf("# got %zu changes:", r->n);
		for (size_t i = 0; i < r->n; i++)
			printf(" %lld %s %s;", (long long)r->rev[i], change_names[r->ch[i]],
			       r->path[i]);
		printf("\n");
	}
	return same;
}

static void open_close(struct store *s, const char *dir)
{
	struct err e = {0};

	ok(store_revision(s) == 0, "a new store is at revision 0");
	ok(!store_get(s, k_cm, "default", "x"), "a new store holds nothing");
	size_t n = 99;
	char **names = store_list(s, k_cm, "default", &n);
	ok(names && n == 0, "store_list of an empty collection is empty");
	free(names);
	size_t len = 99;
	char *ev = store_events(s, "", &len);
	ok(ev && len == 0 && !*ev && store_events_size(s, "") == 0, "no events yet");
	free(ev);
	store_close(s);
	store_close(NULL);
	s = open_store(dir);
	ok(s && store_revision(s) == 0, "an empty store reopens");
	store_close(s);

	cleanup_free char *sub = xasprintf("%s/new", dir);
	s = open_store(sub);
	ok(s != NULL, "store_open creates its directory");
	store_close(s);
	s = store_open("/proc/self/cfs-no-such-dir", &e);
	ok(!s && e.code && *e.msg, "store_open of an unusable directory fails: %s", e.msg);
	store_close(s);
}

static void create_get(struct store *s, const char *dir)
{
	struct err e = {0};
	struct store_op op;
	int r;

	r = write1(s, OP_CREATE, k_ns, "", "default", ns_doc("default"), &op, &e);
	ok(r == 0 && op.change == CH_ADDED && op.rv == 1 && store_revision(s) == 1,
	   "creating Namespace default is revision 1 (%d %s)", r, r ? e.msg : "");
	ok(has(s, k_ns, "", "default"), "the Namespace is there");

	r = write1(s, OP_CREATE, k_cm, "default", "cfg", cm_doc("default", "cfg", "one"), &op, &e);
	ok(r == 0 && op.change == CH_ADDED && op.rv == 2 && store_revision(s) == 2,
	   "creating a ConfigMap is revision 2");
	ok(op.doc == NULL, "store_write consumed the document");

	struct sobj *o = store_get(s, k_cm, "default", "cfg");
	ok(o != NULL, "store_get finds it");
	if (o) {
		ok(o->rv == 2 && obj_rv(o->doc) == 2, "its rv is 2");
		ok(o->kind == k_cm && !strcmp(o->ns, "default") && !strcmp(o->name, "cfg"),
		   "its kind, namespace and name");
		ok(!strcmp(o->path, "namespaces/default/configmaps/cfg.yaml"), "its path (%s)",
		   o->path);
		ok(o->yaml && o->len == strlen(o->yaml) && strstr(o->yaml, "  name: cfg\n") &&
			   strstr(o->yaml, "  key: one\n") &&
			   strstr(o->yaml, "resourceVersion: \"2\"\n") &&
			   strstr(o->yaml, "kind: ConfigMap\n"),
		   "its yaml text");
		struct ynode *back = NULL;
		ok(obj_parse_one(o->yaml, o->len, &back, &e) == 0 && y_equal(back, o->doc),
		   "its yaml parses back to its doc");
		y_free(back);
		ok(y_path_str(o->doc, "metadata.uid") &&
			   y_path_str(o->doc, "metadata.creationTimestamp"),
		   "the server filled uid and creationTimestamp");
		ok(o->mtime > 0, "it has an mtime");
	}
	sobj_unref(o);

	cleanup_free char *p = obj_path(k_cm, "default", "cfg");
	cleanup_free char *np = obj_path(k_ns, "", "default");
	ok(!strcmp(p, "namespaces/default/configmaps/cfg.yaml") &&
		   !strcmp(np, "namespaces/default.yaml"),
	   "obj_path of namespaced and cluster-scoped objects");

	r = write1(s, OP_CREATE, k_cm, "default", "cfg", cm_doc("default", "cfg", "two"), &op, &e);
	ok(r == -EEXIST && strstr(e.msg, "cfg"), "creating it again is EEXIST: %s", e.msg);
	cleanup_free char *v = cm_value(s, "default", "cfg");
	ok(store_revision(s) == 2 && v && !strcmp(v, "one"), "and changes nothing");

	r = write1(s, OP_PUT, k_cm, "default", "cfg", cm_doc("default", "cfg", "one"), &op, &e);
	ok(r == 0 && op.change == CH_NONE && op.rv == 2 && store_revision(s) == 2,
	   "putting the same document is no change");

	r = write1(s, OP_PUT, k_cm, "default", "cfg", cm_doc("default", "cfg", "two"), &op, &e);
	ok(r == 0 && op.change == CH_MODIFIED && op.rv == 3 && store_revision(s) == 3,
	   "putting a new value is revision 3");
	cleanup_free char *v2 = cm_value(s, "default", "cfg");
	ok(v2 && !strcmp(v2, "two"), "store_get shows the new value");

	struct ynode *stale = cm_doc("default", "cfg", "three");
	y_set(y_submap(stale, "metadata"), "resourceVersion", y_str("2"));
	r = write1(s, OP_PUT, k_cm, "default", "cfg", stale, &op, &e);
	ok(r == -ESTALE && store_revision(s) == 3, "a stale resourceVersion is ESTALE: %s", e.msg);
	struct ynode *fresh = cm_doc("default", "cfg", "three");
	y_set(y_submap(fresh, "metadata"), "resourceVersion", y_str("3"));
	r = write1(s, OP_PUT, k_cm, "default", "cfg", fresh, &op, &e);
	ok(r == 0 && op.rv == 4, "the current resourceVersion is accepted");

	r = write1(s, OP_PUT, k_cm, "default", "other", cm_doc("default", "other", "x"), &op, &e);
	ok(r == 0 && op.change == CH_ADDED && op.rv == 5, "OP_PUT of a new object adds it");

	r = write1(s, OP_DELETE, k_cm, "default", "cfg", NULL, &op, &e);
	ok(r == 0 && op.change == CH_DELETED && op.rv == 6 && store_revision(s) == 6,
	   "deleting is revision 6");
	ok(!has(s, k_cm, "default", "cfg"), "a deleted object is gone");
	r = write1(s, OP_DELETE, k_cm, "default", "cfg", NULL, &op, &e);
	ok(r == -ENOENT && store_revision(s) == 6, "deleting it again is ENOENT: %s", e.msg);
	r = write1(s, OP_DELETE, k_cm, "default", "never", NULL, &op, &e);
	ok(r == -ENOENT, "deleting what never was is ENOENT");

	r = write1(s, OP_CREATE, k_cm, "nowhere", "cfg", cm_doc("nowhere", "cfg", "x"), &op, &e);
	ok(r == -ENOENT && strstr(e.msg, "nowhere") && store_revision(s) == 6,
	   "creating in a missing namespace is ENOENT: %s", e.msg);
	r = write1(s, OP_PUT, k_cm, "nowhere", "cfg", cm_doc("nowhere", "cfg", "x"), &op, &e);
	ok(r == -ENOENT, "so is putting there");
	ok(!has(s, k_cm, "nowhere", "cfg"), "and nothing is stored");

	r = write1(s, OP_DELETE, k_ns, "", "default", NULL, &op, &e);
	ok(r == -ENOTEMPTY && has(s, k_ns, "", "default") && store_revision(s) == 6,
	   "deleting a namespace that holds objects is ENOTEMPTY: %s", e.msg);
	r = write1(s, OP_CREATE, k_cm, "default", "my.dotted.name",
		   cm_doc("default", "my.dotted.name", "d"), &op, &e);
	ok(r == 0 && has(s, k_cm, "default", "my.dotted.name"), "a dotted name");
	r = write1(s, OP_DELETE, k_cm, "default", "my.dotted.name", NULL, &op, &e);
	ok(r == 0 && !has(s, k_cm, "default", "my.dotted.name"), "a dotted name is deleted");
	char longest[254];
	memset(longest, 'n', 253);
	longest[253] = 0;
	r = write1(s, OP_CREATE, k_cm, "default", longest, cm_doc("default", longest, "l"), &op,
		   &e);
	ok(r == 0 && has(s, k_cm, "default", longest), "a 253-character name (%s)", r ? e.msg : "");
	r = write1(s, OP_DELETE, k_cm, "default", longest, NULL, &op, &e);
	size_t n;
	char **names = store_list(s, k_cm, "default", &n);
	ok(r == 0 && !has(s, k_cm, "default", longest) && n == 1,
	   "a 253-character name is deleted from the index too");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	r = write1(s, OP_DELETE, k_cm, "default", "other", NULL, &op, &e);
	ok(r == 0, "emptying the namespace");
	r = write1(s, OP_DELETE, k_ns, "", "default", NULL, &op, &e);
	ok(r == 0 && !has(s, k_ns, "", "default") && op.rv == 12 && store_revision(s) == 12,
	   "an empty namespace is deleted (%d %s)", r, r ? e.msg : "");
	store_close(s);
}

static void atomic(struct store *s, const char *dir)
{
	struct err e = {0};
	struct rec seen;
	int r;

	rec_init(&seen);
	create_ns(s, "default");
	create_cm(s, "default", "a", "a");
	store_subscribe(s, rec_fn, &seen);

	struct store_op two[] = {
		{.type = OP_CREATE,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "x",
		 .doc = cm_doc("default", "x", "x")},
		{.type = OP_CREATE,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "a",
		 .doc = cm_doc("default", "a", "b")},
	};
	r = store_write(s, two, 2, &e);
	ok(r == -EEXIST && strstr(e.msg, "document 2"), "a failing second op fails the write: %s",
	   e.msg);
	ok(!has(s, k_cm, "default", "x"), "the first op is not applied");
	cleanup_free char *v = cm_value(s, "default", "a");
	ok(v && !strcmp(v, "a") && store_revision(s) == 2, "nothing changed (revision 2)");
	ok(!two[0].doc && !two[1].doc, "the documents are consumed anyway");

	struct store_op dels[] = {
		{.type = OP_DELETE, .kind = k_cm, .ns = "default", .name = "a"},
		{.type = OP_DELETE, .kind = k_cm, .ns = "default", .name = "missing"},
	};
	ok(store_write(s, NULL, 0, &e) == 0 && store_revision(s) == 2,
	   "a write of no ops is no change");
	r = store_write(s, dels, 2, &e);
	ok(r == -ENOENT && has(s, k_cm, "default", "a") && store_revision(s) == 2,
	   "a delete followed by a failing delete leaves the object: %s", e.msg);

	struct store_op dup[] = {
		{.type = OP_CREATE,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "y",
		 .doc = cm_doc("default", "y", "1")},
		{.type = OP_CREATE,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "y",
		 .doc = cm_doc("default", "y", "2")},
	};
	r = store_write(s, dup, 2, &e);
	ok(r == -EEXIST && !has(s, k_cm, "default", "y"), "a write sees its own earlier ops");

	struct store_op team[] = {
		{.type = OP_CREATE, .kind = k_ns, .ns = "", .name = "team", .doc = ns_doc("team")},
		{.type = OP_CREATE,
		 .kind = k_cm,
		 .ns = "team",
		 .name = "c",
		 .doc = cm_doc("team", "c", "1")},
		{.type = OP_PUT,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "a",
		 .doc = cm_doc("default", "a", "2")},
	};
	r = store_write(s, team, 3, &e);
	ok(r == 0 && has(s, k_ns, "", "team") && has(s, k_cm, "team", "c"),
	   "a namespace and an object in it in one write (%s)", r ? e.msg : "");
	ok(team[0].rv == 3 && team[1].rv == 4 && team[2].rv == 5 && store_revision(s) == 5,
	   "the ops take consecutive revisions");
	ok(team[0].change == CH_ADDED && team[1].change == CH_ADDED &&
		   team[2].change == CH_MODIFIED,
	   "and report their changes");

	struct store_op drop[] = {
		{.type = OP_DELETE, .kind = k_cm, .ns = "team", .name = "c"},
		{.type = OP_DELETE, .kind = k_ns, .ns = "", .name = "team"},
	};
	r = store_write(s, drop, 2, &e);
	ok(r == 0 && !has(s, k_ns, "", "team") && !has(s, k_cm, "team", "c") &&
		   store_revision(s) == 7,
	   "emptying and deleting a namespace in one write (%s)", r ? e.msg : "");

	struct store_op twice[] = {
		{.type = OP_CREATE,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "t",
		 .doc = cm_doc("default", "t", "1")},
		{.type = OP_PUT,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "t",
		 .doc = cm_doc("default", "t", "2")},
		{.type = OP_CREATE,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "u",
		 .doc = cm_doc("default", "u", "1")},
		{.type = OP_DELETE, .kind = k_cm, .ns = "default", .name = "u"},
	};
	r = store_write(s, twice, 4, &e);
	cleanup_free char *tv = cm_value(s, "default", "t");
	ok(r == 0 && tv && !strcmp(tv, "2") && !has(s, k_cm, "default", "u") && twice[1].rv == 9 &&
		   twice[3].rv == 11 && store_revision(s) == 11,
	   "a write may change one object twice (%s)", r ? e.msg : "");

	struct store_op bad_ns[] = {
		{.type = OP_DELETE, .kind = k_ns, .ns = "", .name = "default"},
		{.type = OP_CREATE,
		 .kind = k_cm,
		 .ns = "default",
		 .name = "z",
		 .doc = cm_doc("default", "z", "1")},
	};
	r = store_write(s, bad_ns, 2, &e);
	ok(r == -ENOTEMPTY && has(s, k_ns, "", "default"), "ENOTEMPTY inside a write: %s", e.msg);

	struct want w[] = {
		{3, CH_ADDED, "namespaces/team.yaml"},
		{4, CH_ADDED, "namespaces/team/configmaps/c.yaml"},
		{5, CH_MODIFIED, "namespaces/default/configmaps/a.yaml"},
		{6, CH_DELETED, "namespaces/team/configmaps/c.yaml"},
		{7, CH_DELETED, "namespaces/team.yaml"},
		{8, CH_ADDED, "namespaces/default/configmaps/t.yaml"},
		{9, CH_MODIFIED, "namespaces/default/configmaps/t.yaml"},
		{10, CH_ADDED, "namespaces/default/configmaps/u.yaml"},
		{11, CH_DELETED, "namespaces/default/configmaps/u.yaml"},
	};
	rec_wait(&seen, 9);
	ok(rec_is(&seen, w, 9), "subscribers saw only the writes that succeeded");
	store_close(s);
	rec_free(&seen);
}

static void reopen(struct store *s, const char *dir)
{
	struct err e = {0};
	char *yaml[3] = {0};
	const char *names[] = {"alpha", "beta", "gamma"};

	create_ns(s, "default");
	create_ns(s, "prod");
	for (int i = 0; i < 3; i++)
		create_cm(s, "default", names[i], names[i]);
	write1(s, OP_PUT, k_cm, "default", "beta", cm_doc("default", "beta", "changed"), NULL,
	       NULL);
	create_cm(s, "prod", "gone", "x");
	write1(s, OP_DELETE, k_cm, "prod", "gone", NULL, NULL, NULL);
	for (int i = 0; i < 3; i++) {
		struct sobj *o = store_get(s, k_cm, "default", names[i]);
		yaml[i] = o ? xstrdup(o->yaml) : NULL;
		sobj_unref(o);
	}
	int64_t rev = store_revision(s);
	ok(rev == 8, "eight changes (%lld)", (long long)rev);
	store_close(s);

	s = open_store(dir);
	if (!ok(s != NULL, "the store reopens"))
		goto out;
	ok(store_revision(s) == rev, "the revision survives a reopen");
	bool same = true;
	for (int i = 0; i < 3; i++) {
		struct sobj *o = store_get(s, k_cm, "default", names[i]);
		same = same && o && yaml[i] && !strcmp(o->yaml, yaml[i]);
		sobj_unref(o);
	}
	ok(same, "every object survives, byte for byte");
	ok(has(s, k_ns, "", "default") && has(s, k_ns, "", "prod"), "the namespaces survive");
	ok(!has(s, k_cm, "prod", "gone"), "a deleted object stays deleted");
	char *v = cm_value(s, "default", "beta");
	ok(v && !strcmp(v, "changed"), "the last value survives");
	free(v);
	struct sobj *o = store_get(s, k_cm, "default", "beta");
	ok(o && o->rv == 6, "its rv survives");
	sobj_unref(o);

	struct store_op op;
	int r = write1(s, OP_CREATE, k_cm, "default", "delta", cm_doc("default", "delta", "d"), &op,
		       &e);
	ok(r == 0 && op.rv == rev + 1 && store_revision(s) == rev + 1,
	   "writing after a reopen continues the revisions");
	r = write1(s, OP_CREATE, k_cm, "default", "alpha", cm_doc("default", "alpha", "a"), &op,
		   &e);
	ok(r == -EEXIST, "a reloaded object still exists for OP_CREATE");
	r = write1(s, OP_DELETE, k_ns, "", "default", NULL, &op, &e);
	ok(r == -ENOTEMPTY, "and for a namespace's emptiness");
	store_close(s);
out:
	for (int i = 0; i < 3; i++)
		free(yaml[i]);
}

static bool names_are(char **names, size_t n, const char *const *want, size_t nwant)
{
	bool same = n == nwant;

	for (size_t i = 0; same && i < n; i++)
		same = !strcmp(names[i], want[i]);
	return same;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void list(struct store *s, const char *dir)
{
	size_t n;
	char **names;

	create_ns(s, "default");
	create_ns(s, "other");
	const char *order[] = {"web", "api", "zeta", "a-b", "a", "db.main", "b"};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		create_cm(s, "default", order[i], "v");
	create_cm(s, "other", "elsewhere", "v");

	const char *sorted[] = {"a", "a-b", "api", "b", "db.main", "web", "zeta"};
	names = store_list(s, k_cm, "default", &n);
	ok(names_are(names, n, sorted, 7), "store_list is sorted (%zu names)", n);
	free_names(names, n);
	const char *other[] = {"elsewhere"};
	names = store_list(s, k_cm, "other", &n);
	ok(names_are(names, n, other, 1), "store_list holds one namespace only");
	free_names(names, n);
	const char *nss[] = {"default", "other"};
	names = store_list(s, k_ns, "", &n);
	ok(names_are(names, n, nss, 2), "store_list of cluster-scoped objects");
	free_names(names, n);
	names = store_list(s, kind_by_plural("secrets"), "default", &n);
	ok(n == 0, "store_list holds one kind only");
	free_names(names, n);

	write1(s, OP_DELETE, k_cm, "other", "elsewhere", NULL, NULL, NULL);
	names = store_list(s, k_cm, "other", &n);
	ok(n == 0, "a collection emptied by deletes lists nothing");
	free_names(names, n);
	write1(s, OP_DELETE, k_cm, "default", "api", NULL, NULL, NULL);
	const char *less[] = {"a", "a-b", "b", "db.main", "web", "zeta"};
	names = store_list(s, k_cm, "default", &n);
	ok(names_are(names, n, less, 6), "store_list after a delete");
	free_names(names, n);
	store_close(s);
}

static void replay(struct store *s, const char *dir)
{
	struct rec r;
	struct rec sub;

	rec_init(&r);
	rec_init(&sub);
	store_subscribe(s, rec_fn, &sub);
	create_ns(s, "default");
	create_cm(s, "default", "a", "1");
	create_cm(s, "default", "b", "1");
	write1(s, OP_PUT, k_cm, "default", "a", cm_doc("default", "a", "2"), NULL, NULL);
	write1(s, OP_PUT, k_cm, "default", "a", cm_doc("default", "a", "2"), NULL, NULL);
	write1(s, OP_DELETE, k_cm, "default", "b", NULL, NULL, NULL);
	create_cm(s, "default", "b", "again");

	const struct want all[] = {
		{1, CH_ADDED, "namespaces/default.yaml"},
		{2, CH_ADDED, "namespaces/default/configmaps/a.yaml"},
		{3, CH_ADDED, "namespaces/default/configmaps/b.yaml"},
		{4, CH_MODIFIED, "namespaces/default/configmaps/a.yaml"},
		{5, CH_DELETED, "namespaces/default/configmaps/b.yaml"},
		{6, CH_ADDED, "namespaces/default/configmaps/b.yaml"},
	};
	ok(store_revision(s) == 6, "six changes (a no-op put is none)");
	ok(rec_wait(&sub, 6) && rec_is(&sub, all, 6), "the subscriber saw each change in order");
	ok(store_replay(s, 0, rec_fn, &r) == 0 && rec_is(&r, all, 6),
	   "replay since 0 gives every change in order");
	rec_clear(&r);
	ok(store_replay(s, 3, rec_fn, &r) == 0 && rec_is(&r, all + 3, 3),
	   "replay since 3 gives changes 4, 5 and 6");
	rec_clear(&r);
	ok(store_replay(s, 6, rec_fn, &r) == 0 && r.n == 0, "replay since now gives nothing");
	rec_clear(&r);
	ok(store_replay(s, 100, rec_fn, &r) == 0 && r.n == 0,
	   "replay since the future gives nothing");
	rec_clear(&r);
	store_close(s);

	s = open_store(dir);
	if (!ok(s != NULL, "the store reopens"))
		goto out;
	ok(store_replay(s, 1, rec_fn, &r) == 0 && rec_is(&r, all + 1, 5),
	   "the change log survives a reopen");
	rec_clear(&r);
	write1(s, OP_DELETE, k_cm, "default", "a", NULL, NULL, NULL);
	ok(store_replay(s, 6, rec_fn, &r) == 0 && r.n == 1 && r.rev[0] == 7 &&
		   r.ch[0] == CH_DELETED,
	   "and goes on after it");
	store_close(s);
out:
	rec_free(&r);
	rec_free(&sub);
}

static void events(struct store *s, const char *dir)
{
	size_t len, len2;

	store_event(s, "default", "Normal", "Created", "configmap/cfg", "first\nsecond");
	store_event(s, "", "Warning", "NodeNotReady", "node/n1", "kubelet stopped");
	store_event(s, "default", "Normal", "Updated", "configmap/cfg", "again");
	create_ns(s, "default");

	char *ev = store_events(s, "default", &len);
	ok(ev && strlen(ev) == len && len == store_events_size(s, "default"),
	   "store_events and store_events_size agree");
	ok(ev && strstr(ev, " Normal Created configmap/cfg: first second\n"),
	   "an event is one line (newlines in the message become spaces)");
	char *upd = ev ? strstr(ev, " Normal Updated configmap/cfg: again\n") : NULL;
	ok(upd && upd > strstr(ev, "Created") && ev[len - 1] == '\n', "events are kept in order");
	int lines = 0;
	for (size_t i = 0; ev && i < len; i++)
		lines += ev[i] == '\n';
	ok(lines == 2, "two lines in default's events");
	char *cl = store_events(s, "", &len2);
	ok(cl && strstr(cl, "Warning NodeNotReady node/n1: kubelet stopped\n") &&
		   !strstr(cl, "configmap"),
	   "the cluster's log is separate");
	ok(!strncmp(ev ? ev : "", "20", 2) && (ev ? ev[4] == '-' : 0),
	   "lines start with a timestamp");
	char *none = store_events(s, "nowhere", &len2);
	ok(none && len2 == 0, "a namespace without events has none");
	free(none);
	store_close(s);

	s = open_store(dir);
	if (!ok(s != NULL, "the store reopens"))
		goto out;
	size_t len3, len4;
	char *ev2 = store_events(s, "default", &len3);
	char *cl2 = store_events(s, "", &len4);
	ok(ev && ev2 && len3 == len && !strcmp(ev, ev2), "default's events survive a reopen");
	ok(cl && cl2 && !strcmp(cl, cl2), "the cluster's events survive a reopen");
	store_event(s, "default", "Normal", "Third", "configmap/cfg", "after");
	free(ev2);
	ev2 = store_events(s, "default", &len3);
	ok(ev && ev2 && len3 > len && !strncmp(ev2, ev, len) && strstr(ev2 + len, " Normal Third "),
	   "new events append to reloaded ones");
	free(ev2);
	free(cl2);
	store_close(s);
out:
	free(ev);
	free(cl);
}

#define THREADS	   8
#define PER_THREAD 40

struct writer {
	pthread_t t;
	struct store *s;
	int id;
	int failures;
	int64_t revs[2 * PER_THREAD];
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char name[32];
	struct store_op op;
	struct err e;

	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(name, sizeof(name), "t%d-%d", w->id, i);
		if (write1(w->s, OP_CREATE, k_cm, "default", name, cm_doc("default", name, "1"),
			   &op, &e))
			w->failures++;
		w->revs[2 * i] = op.rv;
		/* A write failing in the middle of a group must leave nothing behind. */
		char ghost[48];
		snprintf(ghost, sizeof(ghost), "%s-ghost", name);
		struct store_op two[] = {
			{.type = OP_CREATE,
			 .kind = k_cm,
			 .ns = "default",
			 .name = ghost,
			 .doc = cm_doc("default", ghost, "g")},
			{.type = OP_CREATE,
			 .kind = k_cm,
			 .ns = "default",
			 .name = name,
			 .doc = cm_doc("default", name, "g")},
		};
		if (store_write(w->s, two, 2, &e) != -EEXIST)
			w->failures++;
	}
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(name, sizeof(name), "t%d-%d", w->id, i);
		if (write1(w->s, OP_PUT, k_cm, "default", name, cm_doc("default", name, "2"), &op,
			   &e) ||
		    op.change != CH_MODIFIED)
			w->failures++;
		w->revs[2 * i + 1] = op.rv;
	}
	return NULL;
}

/* A subscriber that checks a change is visible to readers when it hears of it. */
struct visible {
	struct store *s;
	int unseen;
};

static void visible_fn(void *arg, int64_t rev, enum change ch, const char *path)
{
	struct visible *v = arg;

	if (store_revision(v->s) < rev)
		__atomic_add_fetch(&v->unseen, 1, __ATOMIC_RELAXED);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void concurrent(struct store *s, const char *dir)
{
	static struct writer w[THREADS];
	struct rec sub, rep;
	const int64_t total = 1 + 2 * THREADS * PER_THREAD;

	rec_init(&sub);
	rec_init(&rep);
	create_ns(s, "default");
	store_subscribe(s, rec_fn, &sub);
	struct visible vis = {.s = s};
	store_subscribe(s, visible_fn, &vis);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){.s = s, .id = i};
		pthread_create(&w[i].t, NULL, writer_main, &w[i]);
	}
	int failures = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(w[i].t, NULL);
		failures += w[i].failures;
	}
	ok(failures == 0, "%d threads' writes all succeed, and their bad ones fail (%d wrong)",
	   THREADS, failures);
	ok(store_revision(s) == total, "the revision is the number of changes (%lld, want %lld)",
	   (long long)store_revision(s), (long long)total);

	int64_t all[2 * THREADS * PER_THREAD];
	for (int i = 0; i < THREADS; i++)
		memcpy(all + i * 2 * PER_THREAD, w[i].revs, sizeof(w[i].revs));
	qsort(all, 2 * THREADS * PER_THREAD, sizeof(all[0]), cmp_i64);
	bool each = true;
	for (int i = 0; i < 2 * THREADS * PER_THREAD; i++)
		each = each && all[i] == i + 2;
	ok(each, "every change got its own revision, 2 to %lld", (long long)total);
	bool ordered = true;
	for (int i = 0; i < THREADS; i++)
		for (int j = 1; j < 2 * PER_THREAD; j++)
			ordered = ordered && (j % 2 ? w[i].revs[j] > w[i].revs[j - 1]
						    : w[i].revs[j] > w[i].revs[j - 2]);
	ok(ordered, "each thread's own writes are ordered");

	size_t n;
	char **names = store_list(s, k_cm, "default", &n);
	ok(n == THREADS * PER_THREAD, "every object is there, and no ghost (%zu)", n);
	free_names(names, n);
	bool values = true;
	for (int i = 0; i < THREADS; i++) {
		for (int j = 0; j < PER_THREAD; j++) {
			char name[32];
			snprintf(name, sizeof(name), "t%d-%d", i, j);
			struct sobj *o = store_get(s, k_cm, "default", name);
			const char *v = o ? y_path_str(o->doc, "data.key") : NULL;
			values = values && v && !strcmp(v, "2") && o->rv == w[i].revs[2 * j + 1];
			sobj_unref(o);
		}
	}
	ok(values, "every object holds its last value and rv");

	rec_wait(&sub, (size_t)total - 1);
	bool seq = sub.n == (size_t)total - 1;
	for (size_t i = 0; seq && i < sub.n; i++)
		seq = sub.rev[i] == (int64_t)i + 2;
	ok(seq, "the subscriber saw %lld changes in revision order (%zu)", (long long)total - 1,
	   sub.n);
	ok(vis.unseen == 0, "each change was visible when subscribers heard of it (%d not)",
	   vis.unseen);
	store_close(s);

	s = open_store(dir);
	if (!ok(s != NULL, "the store reopens"))
		goto out;
	ok(store_revision(s) == total, "the revision survives a reopen");
	names = store_list(s, k_cm, "default", &n);
	ok(n == THREADS * PER_THREAD, "and so does every object");
	free_names(names, n);
	store_replay(s, 0, rec_fn, &rep);
	seq = rep.n == (size_t)total;
	for (size_t i = 0; seq && i < rep.n; i++)
		seq = rep.rev[i] == (int64_t)i + 1;
	ok(seq, "the change log holds revisions 1 to %lld without a gap", (long long)total);
	store_close(s);
out:
	rec_free(&sub);
	rec_free(&rep);
}

#define CRASH_WRITERS	 4
#define CRASH_PER_WRITER 100000
#define CRASH_KILL_AT	 50

struct crash_writer {
	pthread_t t;
	struct store *s;
	int id, fd;
};

static void *crash_writer_main(void *arg)
{
	struct crash_writer *w = arg;
	char name[32];

	for (uint32_t i = 0; i < CRASH_PER_WRITER; i++) {
		snprintf(name, sizeof(name), "w%d-%u", w->id, i);
		if (create_cm(w->s, "default", name, name) != 0)
			_exit(3);
		uint32_t ack = (uint32_t)w->id << 24 | i;
		if (write(w->fd, &ack, sizeof(ack)) != sizeof(ack))
			_exit(4);
	}
	return NULL;
}

/* The child: writes until it is killed, reporting each acknowledged write. */
static void crash_child(const char *dir, int fd)
{
	struct store *s = open_store(dir);
	struct crash_writer w[CRASH_WRITERS];

	if (!s)
		_exit(2);
	for (int i = 0; i < CRASH_WRITERS; i++) {
		w[i] = (struct crash_writer){.s = s, .id = i, .fd = fd};
		pthread_create(&w[i].t, NULL, crash_writer_main, &w[i]);
	}
	for (int i = 0; i < CRASH_WRITERS; i++)
		pthread_join(w[i].t, NULL);
	_exit(0);
}

static void crash(struct store *s, const char *dir)
{
	int fds[2];
	static uint32_t acked[CRASH_WRITERS]; /* acknowledged writes 0..acked-1 */
	uint32_t ack;
	int count = 0, bad = 0, status = 0;

	create_ns(s, "default");
	store_close(s);

	if (pipe(fds) < 0) {
		perror("pipe");
		exit(2);
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		crash_child(dir, fds[1]);
	}
	close(fds[1]);
	while (read(fds[0], &ack, sizeof(ack)) == sizeof(ack)) {
		uint32_t id = ack >> 24, i = ack & 0xffffff;
		if (id >= CRASH_WRITERS || i != acked[id])
			bad++; /* each writer acknowledges in order */
		else
			acked[id]++;
		if (++count == CRASH_KILL_AT)
			kill(pid, SIGKILL);
	}
	close(fds[0]);
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	   "the writer was killed mid-way (status %#x)", status);
	ok(count >= CRASH_KILL_AT && bad == 0, "%d writes were acknowledged, in order", count);

	s = open_store(dir);
	if (!ok(s != NULL, "the store opens after the crash"))
		return;
	int lost = 0, stored = 0;
	bool prefix = true;
	for (int id = 0; id < CRASH_WRITERS; id++) {
		bool gap = false;
		for (uint32_t i = 0; i < acked[id] + 1000; i++) {
			char name[32];
			snprintf(name, sizeof(name), "w%d-%u", id, i);
			bool there = has(s, k_cm, "default", name);
			if (i < acked[id] && !there)
				lost++;
			if (there && gap)
				prefix = false;
			gap |= !there;
			stored += there;
		}
	}
	ok(lost == 0, "every acknowledged write is there (%d lost)", lost);
	ok(prefix, "each writer's objects are a prefix of what it wrote");
	ok(store_revision(s) == 1 + stored, "the revision counts what is stored (%lld, %d objects)",
	   (long long)store_revision(s), stored);
	struct rec r;
	rec_init(&r);
	store_replay(s, 0, rec_fn, &r);
	ok((int)r.n == 1 + stored, "the change log agrees (%zu changes)", r.n);
	rec_free(&r);
	int rc = create_cm(s, "default", "after-crash", "x");
	ok(rc == 0 && store_revision(s) == 2 + stored, "the store takes writes after the crash");
	store_close(s);
}

int main(void)
{
	k_ns = kind_by_name("Namespace");
	k_cm = kind_by_plural("configmaps");
	if (!ok(k_ns && k_cm, "the Namespace and ConfigMap kinds exist"))
		return done_testing();
	with_store("open and close", open_close);
	with_store("create, get, put, delete", create_get);
	with_store("atomic writes", atomic);
	with_store("reopen", reopen);
	with_store("list", list);
	with_store("replay and subscribe", replay);
	with_store("events", events);
	with_store("concurrent writers", concurrent);
	with_store("a writer killed mid-way", crash);
	return done_testing();
}
