/*
 * inode.c: the names of the tree, their inodes and their attributes.
 *
 * An inode is made when the kernel looks a name up and lives until the
 * kernel forgets it. Inode numbers are never reused within a mount. What
 * an inode's path means is decided by its parent's type and its name; the
 * objects themselves are always read from the store, so an inode whose
 * object is gone simply answers ENOENT.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <dirent.h>
#include <errno.h>

static const char readme[] =
	"This is a clusterfs cluster. Every object is a YAML file:\n"
	"\n"
	"  namespaces/NS/KIND/NAME.yaml   a namespaced object (pods, deployments, ...)\n"
	"  nodes/NAME.yaml                a node\n"
	"  namespaces/NS.yaml             a namespace (mkdir namespaces/NS creates one)\n"
	"  namespaces/NS/DEPLOY/NAME/replicas   echo 5 > it to scale\n"
	"  namespaces/NS/pods/NAME/logs/C       what container C printed (cat, tail -f)\n"
	"  apply, namespaces/NS/apply     write several documents; applied in one transaction\n"
	"  events, namespaces/NS/events   what happened, and every rejected write with its reason\n"
	"  watch                          write a filter line (a subtree, optionally 'since "
	"REV'),\n"
	"                                 then read one line per change: REV TYPE PATH\n"
	"\n"
	"Write a file to create or change an object; close() fails when the write is\n"
	"rejected, and the reason is appended to the namespace's events file.\n";

void inodes_init(struct fs *fs)
{
	pthread_mutex_init(&fs->ilock, NULL);
	fs->by_key = strmap_new();
	fs->pending = strmap_new();
	fs->ninodes = 1;
	fs->icap = 1024;
	fs->inodes = xcalloc(fs->icap, sizeof(*fs->inodes));
	struct inode *root = xcalloc(1, sizeof(*root));
	root->ino = FUSE_ROOT_ID;
	root->type = N_ROOT;
	root->ns = xstrdup("");
	root->key = xstrdup("");
	root->nlookup = 1;
	fs->inodes[FUSE_ROOT_ID] = root;
	strmap_put(fs->by_key, "", root);
}

static void inode_free(struct inode *in)
{
	free(in->ns);
	free(in->name);
	free(in->key);
	free(in);
}

void inodes_free(struct fs *fs)
{
	for (size_t i = 0; i <= fs->ninodes; i++)
		if (fs->inodes[i])
			inode_free(fs->inodes[i]);
	free(fs->inodes);
	strmap_free(fs->by_key);
	strmap_free(fs->pending);
}

struct inode *inode_get(struct fs *fs, fuse_ino_t ino)
{
	pthread_mutex_lock(&fs->ilock);
	struct inode *in = ino <= fs->ninodes ? fs->inodes[ino] : NULL;
	pthread_mutex_unlock(&fs->ilock);
	return in;
}

struct inode *inode_make(struct fs *fs, enum ntype t, const struct kind *k, const char *ns,
			 const char *name, const char *key)
{
	pthread_mutex_lock(&fs->ilock);
	struct inode *in = strmap_get(fs->by_key, key);
	if (!in || in->type != t) {
		in = xcalloc(1, sizeof(*in));
		in->ino = ++fs->ninodes;
		if (fs->ninodes >= fs->icap) {
			fs->icap = fs->icap ? fs->icap * 2 : 1024;
			fs->inodes = xrealloc(fs->inodes, fs->icap * sizeof(*fs->inodes));
		}
		in->type = t;
		in->kind = k;
		in->ns = xstrdup(ns);
		in->name = name ? xstrdup(name) : NULL;
		in->key = xstrdup(key);
		fs->inodes[in->ino] = in;
		strmap_put(fs->by_key, key, in);
	}
	in->nlookup++;
	pthread_mutex_unlock(&fs->ilock);
	return in;
}

void inode_rename(struct fs *fs, const char *from, const char *to)
{
	pthread_mutex_lock(&fs->ilock);
	struct inode *in = strmap_del(fs->by_key, from);
	if (in) {
		free(in->key);
		in->key = xstrdup(to);
		strmap_put(fs->by_key, to, in);
	}
	pthread_mutex_unlock(&fs->ilock);
}

void inode_unhash(struct fs *fs, const char *key)
{
	pthread_mutex_lock(&fs->ilock);
	strmap_del(fs->by_key, key);
	pthread_mutex_unlock(&fs->ilock);
}

void inode_forget(struct fs *fs, fuse_ino_t ino, uint64_t n)
{
	pthread_mutex_lock(&fs->ilock);
	struct inode *in = ino <= fs->ninodes ? fs->inodes[ino] : NULL;
	if (in && ino != FUSE_ROOT_ID) {
		in->nlookup -= n < in->nlookup ? n : in->nlookup;
		if (in->nlookup == 0) {
			if (strmap_get(fs->by_key, in->key) == in)
				strmap_del(fs->by_key, in->key);
			fs->inodes[ino] = NULL;
			inode_free(in);
		}
	}
	pthread_mutex_unlock(&fs->ilock);
}

int is_object_name(const char *name)
{
	size_t len = strlen(name);
	return len > 5 && name[0] != '.' && !strcmp(name + len - 5, ".yaml");
}

static bool is_pod(const struct kind *k)
{
	return !strcmp(k->plural, "pods");
}

int kind_has_dir(const struct kind *k)
{
	return k->scalable || is_pod(k);
}

char *child_key(const struct inode *dir, const char *name)
{
	return *dir->key ? xasprintf("%s/%s", dir->key, name) : xstrdup(name);
}

static int pending_create(struct fs *fs, const char *key)
{
	pthread_mutex_lock(&fs->ilock);
	int p = strmap_get(fs->pending, key) != NULL;
	pthread_mutex_unlock(&fs->ilock);
	return p;
}

/* Whether the object file at key exists for this lookup. */
static int object_visible(struct fs *fs, const struct kind *k, const char *ns, const char *name,
			  const char *key, int as_toucher)
{
	int view = as_toucher ? toucher_view(fs->toucher, key) : 0;
	if (view)
		return view == 2;
	return store_exists(fs->store, k, ns, name) || pending_create(fs, key);
}

static int lookup_scratch(struct fs *fs, const char *key, struct inode **out)
{
	if (!scratch_get(fs, key))
		return -ENOENT;
	*out = inode_make(fs, N_SCRATCH, NULL, "", NULL, key);
	return 0;
}

static int lookup_root(struct fs *fs, const char *name, const char *key, struct inode **out)
{
	static const struct {
		const char *name;
		enum ntype type;
	} files[] = {{"README", N_README},
		     {"events", N_EVENTS},
		     {"watch", N_WATCH},
		     {"apply", N_APPLY},
		     {"namespaces", N_NSROOT}};
	const struct kind *k = kind_by_plural(name);

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (!strcmp(name, files[i].name)) {
			*out = inode_make(fs, files[i].type, NULL, "", NULL, key);
			return 0;
		}
	if (k && !k->namespaced) {
		*out = inode_make(fs, N_KINDDIR, k, "", NULL, key);
		return 0;
	}
	return -ENOENT;
}

static int lookup_in_kind(struct fs *fs, const struct kind *k, const char *ns, const char *name,
			  const char *key, struct inode **out, int as_toucher)
{
	if (is_object_name(name)) {
		cleanup_free char *obj = xstrndup(name, strlen(name) - 5);
		if (!object_visible(fs, k, ns, obj, key, as_toucher))
			return -ENOENT;
		*out = inode_make(fs, N_OBJ, k, ns, obj, key);
		return 0;
	}
	if (k == kind_by_name("Namespace") && store_exists(fs->store, k, "", name)) {
		*out = inode_make(fs, N_NSDIR, NULL, name, NULL, key);
		return 0;
	}
	if (kind_has_dir(k) && store_exists(fs->store, k, ns, name)) {
		*out = inode_make(fs, N_OBJDIR, k, ns, name, key);
		return 0;
	}
	return lookup_scratch(fs, key, out);
}

static bool is_deployment(const struct kind *k)
{
	return !strcmp(k->plural, "deployments");
}

static int lookup_in_objdir(struct fs *fs, struct inode *dir, const char *name, const char *key,
			    struct inode **out)
{
	enum ntype t;

	if (!store_exists(fs->store, dir->kind, dir->ns, dir->name))
		return -ENOENT;
	if (!strcmp(name, "replicas") && dir->kind->scalable)
		t = N_REPLICAS;
	else if (!strcmp(name, "revisions") && is_deployment(dir->kind))
		t = N_REVDIR;
	else if (!strcmp(name, "rollback") && is_deployment(dir->kind))
		t = N_ROLLBACK;
	else if (!strcmp(name, "logs") && is_pod(dir->kind))
		t = N_LOGDIR;
	else
		return -ENOENT;
	*out = inode_make(fs, t, dir->kind, dir->ns, dir->name, key);
	return 0;
}

static bool has_revision(struct fs *fs, struct inode *dir, const char *name)
{
	char **names;
	size_t n;
	bool found = false;

	rollout_list(fs, dir, &names, &n);
	for (size_t i = 0; i < n; i++) {
		found |= !strcmp(names[i], name);
		free(names[i]);
	}
	free(names);
	return found;
}

int inode_lookup(struct fs *fs, struct inode *dir, const char *name, struct inode **out,
		 int as_toucher)
{
	cleanup_free char *key = child_key(dir, name);
	const struct kind *k;

	switch (dir->type) {
	case N_ROOT:
		return lookup_root(fs, name, key, out);
	case N_NSROOT:
		return lookup_in_kind(fs, kind_by_name("Namespace"), "", name, key, out,
				      as_toucher);
	case N_NSDIR:
		if (!store_exists(fs->store, kind_by_name("Namespace"), "", dir->ns))
			return -ENOENT;
		if (!strcmp(name, "events") || !strcmp(name, "apply")) {
			*out = inode_make(fs, name[0] == 'e' ? N_EVENTS : N_APPLY, NULL, dir->ns,
					  NULL, key);
			return 0;
		}
		k = kind_by_plural(name);
		if (!k || !k->namespaced)
			return -ENOENT;
		*out = inode_make(fs, N_KINDDIR, k, dir->ns, NULL, key);
		return 0;
	case N_KINDDIR:
		return lookup_in_kind(fs, dir->kind, dir->ns, name, key, out, as_toucher);
	case N_OBJDIR:
		return lookup_in_objdir(fs, dir, name, key, out);
	case N_REVDIR:
		if (!has_revision(fs, dir, name))
			return -ENOENT;
		*out = inode_make(fs, N_REVISION, dir->kind, dir->ns, dir->name, key);
		return 0;
	case N_LOGDIR:
		if (logs_exists(fs, dir, name) < 0)
			return -ENOENT;
		*out = inode_make(fs, N_LOG, dir->kind, dir->ns, dir->name, key);
		return 0;
	default:
		return -ENOTDIR;
	}
}

static void stat_dir(struct fs *fs, struct stat *st)
{
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
}

static int stat_object(struct fs *fs, struct inode *in, struct stat *st)
{
	struct sobj *o = store_get(fs->store, in->kind, in->ns, in->name);

	st->st_mode = S_IFREG | (in->kind->secret ? 0600 : 0644);
	if (o) {
		st->st_size = (off_t)o->len;
		st->st_mtim.tv_sec = o->mtime / 1000000000LL;
		st->st_mtim.tv_nsec = o->mtime % 1000000000LL;
		sobj_unref(o);
		return 0;
	}
	if (pending_create(fs, in->key) || toucher_view(fs->toucher, in->key) == 2)
		return 0;
	return -ENOENT;
}

void inode_stat_base(struct fs *fs, struct inode *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_nlink = 1;
	st->st_mtim.tv_sec = fs->started / 1000000000LL;
	st->st_mode = S_IFREG | 0644;
}

int inode_stat(struct fs *fs, struct inode *in, struct stat *st)
{
	inode_stat_base(fs, in, st);

	switch (in->type) {
	case N_ROOT:
	case N_NSROOT:
	case N_KINDDIR:
		stat_dir(fs, st);
		return 0;
	case N_NSDIR:
		stat_dir(fs, st);
		return store_exists(fs->store, kind_by_name("Namespace"), "", in->ns) ? 0 : -ENOENT;
	case N_OBJDIR:
	case N_REVDIR:
	case N_LOGDIR:
		stat_dir(fs, st);
		return store_exists(fs->store, in->kind, in->ns, in->name) ? 0 : -ENOENT;
	case N_ROLLBACK:
		return store_exists(fs->store, in->kind, in->ns, in->name) ? 0 : -ENOENT;
	case N_REVISION: {
		size_t len;
		cleanup_free char *text = rollout_text(fs, in, &len);
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)len;
		return text ? 0 : -ENOENT;
	}
	case N_README:
		st->st_mode = S_IFREG | 0444;
		st->st_size = sizeof(readme) - 1;
		return 0;
	case N_EVENTS:
		st->st_size = (off_t)store_events_size(fs->store, in->ns);
		return 0;
	case N_WATCH:
	case N_APPLY:
		return 0;
	case N_OBJ:
		return stat_object(fs, in, st);
	case N_REPLICAS: {
		cleanup_free char *text = fs_replicas_text(fs, in);
		if (!text)
			return -ENOENT;
		st->st_size = (off_t)strlen(text);
		return 0;
	}
	case N_SCRATCH:
		return scratch_stat(fs, NULL, in->key, st);
	case N_LOG:
		return logs_stat(fs, in, log_container(in), st);
	}
	return -ENOENT;
}

const char *readme_text(void)
{
	return readme;
}

static void add_name(struct dirent_list *l, const char *name, unsigned char type)
{
	l->names = xrealloc(l->names, (l->n + 1) * sizeof(*l->names));
	l->types = xrealloc(l->types, (l->n + 1) * sizeof(*l->types));
	l->names[l->n] = xstrdup(name);
	l->types[l->n++] = type;
}

static void list_objects(struct fs *fs, const struct kind *k, const char *ns, int dirs,
			 struct dirent_list *l)
{
	size_t n;
	char **names = store_list(fs->store, k, ns, &n);

	for (size_t i = 0; i < n; i++) {
		if (dirs)
			add_name(l, names[i], DT_DIR);
		cleanup_free char *file = xasprintf("%s.yaml", names[i]);
		add_name(l, file, DT_REG);
		free(names[i]);
	}
	free(names);
}

/* Adds n file names (consumed, with the array) to l. */
static void add_files(struct dirent_list *l, char **names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		add_name(l, names[i], DT_REG);
		free(names[i]);
	}
	free(names);
}

static void list_scratch(struct fs *fs, const char *dir, struct dirent_list *l)
{
	char **names;
	size_t n;

	scratch_list(fs, dir, &names, &n);
	add_files(l, names, n);
}

int inode_list(struct fs *fs, struct inode *dir, struct dirent_list *l)
{
	memset(l, 0, sizeof(*l));
	add_name(l, ".", DT_DIR);
	add_name(l, "..", DT_DIR);
	switch (dir->type) {
	case N_ROOT:
		add_name(l, "README", DT_REG);
		add_name(l, "apply", DT_REG);
		add_name(l, "events", DT_REG);
		add_name(l, "namespaces", DT_DIR);
		for (int i = 0; kinds[i]; i++)
			if (!kinds[i]->namespaced && strcmp(kinds[i]->plural, "namespaces"))
				add_name(l, kinds[i]->plural, DT_DIR);
		add_name(l, "watch", DT_REG);
		return 0;
	case N_NSROOT:
		list_objects(fs, kind_by_name("Namespace"), "", 1, l);
		list_scratch(fs, dir->key, l);
		return 0;
	case N_NSDIR:
		add_name(l, "apply", DT_REG);
		add_name(l, "events", DT_REG);
		for (int i = 0; kinds[i]; i++)
			if (kinds[i]->namespaced)
				add_name(l, kinds[i]->plural, DT_DIR);
		return 0;
	case N_KINDDIR:
		list_objects(fs, dir->kind, dir->ns, kind_has_dir(dir->kind), l);
		list_scratch(fs, dir->key, l);
		return 0;
	case N_OBJDIR:
		if (dir->kind->scalable)
			add_name(l, "replicas", DT_REG);
		if (is_deployment(dir->kind)) {
			add_name(l, "revisions", DT_DIR);
			add_name(l, "rollback", DT_REG);
		}
		if (is_pod(dir->kind))
			add_name(l, "logs", DT_DIR);
		return 0;
	case N_REVDIR: {
		char **names;
		size_t n;
		rollout_list(fs, dir, &names, &n);
		add_files(l, names, n);
		return 0;
	}
	case N_LOGDIR: {
		char **names;
		size_t n;
		logs_list(fs, dir, &names, &n);
		add_files(l, names, n);
		return 0;
	}
	default:
		dirent_list_free(l);
		return -ENOTDIR;
	}
}

void dirent_list_free(struct dirent_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->types);
	memset(l, 0, sizeof(*l));
}

void pending_add(struct fs *fs, const char *key, long d)
{
	pthread_mutex_lock(&fs->ilock);
	long n = (long)(intptr_t)strmap_get(fs->pending, key) + d;
	if (n > 0)
		strmap_put(fs->pending, key, (void *)(intptr_t)n);
	else
		strmap_del(fs->pending, key);
	pthread_mutex_unlock(&fs->ilock);
}

/* Where origin names a file for events: relative to its namespace. */
char *dir_origin(const struct inode *dir, const char *name)
{
	if (dir->type == N_KINDDIR && dir->kind->namespaced)
		return xasprintf("%s/%s", dir->kind->plural, name);
	return child_key(dir, name);
}

const struct kind *dir_kind(const struct inode *dir)
{
	if (dir->type == N_KINDDIR)
		return dir->kind;
	if (dir->type == N_NSROOT)
		return kind_by_name("Namespace");
	return NULL;
}

/* Rejects a name that cannot be an object of kind k, with an event. */
int dir_check_name(struct fs *fs, const struct inode *dir, const char *name)
{
	const struct kind *k = dir_kind(dir);
	cleanup_free char *stem = xstrndup(name, strlen(name) - 5);
	cleanup_free char *origin = dir_origin(dir, name);
	struct ynode *doc = y_map();
	struct err e = {0};

	/* The name checks of a real document, on an empty one. */
	int r = obj_normalize(k, dir->ns, stem, doc, &e);
	y_free(doc);
	if (r < 0 && strncmp(e.msg, "metadata.name", 13) == 0)
		return fs_reject(fs, dir->ns, origin, r, &e);
	return 0;
}

/* The object file's name relative to its namespace, for events. */
char *inode_origin(const struct inode *in)
{
	return in->kind->namespaced ? xasprintf("%s/%s.yaml", in->kind->plural, in->name)
				    : xstrdup(in->key);
}
