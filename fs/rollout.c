/*
 * rollout.c: a Deployment's rollout history and rollback, as files.
 *
 *   deployments/NAME/revisions/N   the pod template of revision N (read-only)
 *   deployments/NAME/rollback      write N, or "previous": that template again
 *
 * The revisions are the ReplicaSets the Deployment owns, numbered by their
 * deployment.kubernetes.io/revision annotation. A rollback writes the old
 * template back into the Deployment (without its pod-template-hash label);
 * the Deployment controller then rolls it out as the newest revision.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <errno.h>

#include "owners.h"

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

/* The revisions of deployment ns/name, ascending; caller frees. With want
 * > 0, *found gets a reference to that revision's ReplicaSet. */
static long *revisions(struct fs *fs, const char *ns, const char *name, size_t *n, long want,
		       struct sobj **found)
{
	const struct kind *rsk = kind_by_plural("replicasets");
	struct sobj *d = store_get(fs->store, kind_by_plural("deployments"), ns, name);
	const char *uid = d ? y_path_str(d->doc, "metadata.uid") : NULL;
	size_t count;
	char **names = store_list(fs->store, rsk, ns, &count);
	long *revs = xcalloc(count + 1, sizeof(long));

	*n = 0;
	for (size_t i = 0; i < count; i++) {
		struct sobj *rs = store_get(fs->store, rsk, ns, names[i]);
		long rev = rs ? deployment_revision(rs->doc) : 0;
		if (rs && rev > 0 && owned_by(rs->doc, uid)) {
			revs[(*n)++] = rev;
			if (found && rev == want && !*found)
				*found = sobj_ref(rs);
		}
		sobj_unref(rs);
		free(names[i]);
	}
	free(names);
	sobj_unref(d);
	qsort(revs, *n, sizeof(long), cmp_long);
	return revs;
}

int rollout_list(struct fs *fs, struct inode *dir, char ***names, size_t *n)
{
	long *revs = revisions(fs, dir->ns, dir->name, n, 0, NULL);

	*names = xcalloc(*n + 1, sizeof(char *));
	for (size_t i = 0; i < *n; i++)
		(*names)[i] = xasprintf("%ld", revs[i]);
	free(revs);
	return 0;
}

/* The template of revision rev of a deployment, without the hash label. */
static struct ynode *template_of(struct fs *fs, const char *ns, const char *name, long rev)
{
	struct sobj *rs = NULL;
	size_t n;
	free(revisions(fs, ns, name, &n, rev, &rs));
	if (!rs)
		return NULL;
	struct ynode *t = y_clone(y_path(rs->doc, "spec.template"));
	sobj_unref(rs);
	y_del(y_path(t, "metadata.labels"), "pod-template-hash");
	return t;
}

char *rollout_text(struct fs *fs, struct inode *in, size_t *len)
{
	const char *slash = strrchr(in->key, '/');
	struct ynode *t = template_of(fs, in->ns, in->name, strtol(slash + 1, NULL, 10));
	struct strbuf sb = {0};

	if (!t)
		return NULL;
	y_emit(t, &sb);
	y_free(t);
	return sb_steal(&sb, len);
}

/* "previous" is the revision before the newest; a number is itself. */
static long pick_revision(struct fs *fs, struct inode *in, const char *text)
{
	size_t n;
	char *end;

	if (!strcmp(text, "previous")) {
		long *revs = revisions(fs, in->ns, in->name, &n, 0, NULL);
		long r = n >= 2 ? revs[n - 2] : -1;
		free(revs);
		return r;
	}
	long r = strtol(text, &end, 10);
	return *end || r <= 0 ? -1 : r;
}

int rollout_rollback(struct fs *fs, struct inode *in, const char *buf, size_t len)
{
	cleanup_free char *text = xstrndup(buf, len);
	cleanup_free char *origin = xasprintf("deployments/%s/rollback", in->name);
	struct err e = {0};
	int r;

	text[strcspn(text, " \t\n")] = 0;
	long rev = pick_revision(fs, in, text);
	struct ynode *t = rev > 0 ? template_of(fs, in->ns, in->name, rev) : NULL;
	if (!t) {
		err_set(&e, EINVAL,
			"rollback: \"%s\" names no revision of deployment %s (see revisions/)",
			text, in->name);
		return fs_reject(fs, in->ns, origin, -EINVAL, &e);
	}
	struct sobj *d = store_get(fs->store, in->kind, in->ns, in->name);
	if (!d) {
		y_free(t);
		return -ENOENT;
	}
	struct store_op op = {.type = OP_UPDATE,
			      .kind = in->kind,
			      .ns = in->ns,
			      .name = in->name,
			      .doc = y_clone(d->doc)};
	sobj_unref(d);
	y_set(y_submap(op.doc, "spec"), "template", t);
	if ((r = store_write(fs->store, &op, 1, &e)) < 0)
		return fs_reject(fs, in->ns, origin, r, &e);
	if (op.change != CH_NONE) {
		cleanup_free char *path = obj_path(in->kind, in->ns, in->name);
		toucher_announce(fs->toucher, op.change, path);
	}
	cleanup_free char *object = xasprintf("deployment/%s", in->name);
	cleanup_free char *msg =
		xasprintf("Rolled back deployment %s to revision %ld", in->name, rev);
	store_event(fs->store, in->ns, "Normal", "DeploymentRollback", object, msg);
	return 0;
}
