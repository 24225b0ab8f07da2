/*
 * gc.c: the garbage collector.
 *
 * An object whose every owner (metadata.ownerReferences) is gone is
 * deleted: background cascading deletion, as Kubernetes does by default.
 * Deleting a Deployment so takes its ReplicaSets, and they their pods.
 *
 * Keys are the dependents: "plural/NS/NAME". A dependent is queued when it
 * changes; when an owner goes, every cached object of its namespace that
 * names it is queued. Before deleting, the owner's file is read again, so
 * an owner the cache has not seen yet is never taken for gone.
 */
#define _GNU_SOURCE
#include "controllers.h"

#include <errno.h>
#include <unistd.h>

#include "owners.h"

static const char *const watched[] = {"pods",
				      "replicasets",
				      "deployments",
				      "replicationcontrollers",
				      "statefulsets",
				      "daemonsets",
				      "jobs",
				      "cronjobs",
				      NULL};

struct dependents {
	const char *uid;
	const struct kind *k;
};

static void queue_if_owned(struct ctl *c, const char *ns, const char *name, const struct ynode *obj,
			   void *arg)
{
	struct dependents *d = arg;
	const struct ynode *refs = y_path(obj, "metadata.ownerReferences");

	for (size_t i = 0; refs && refs->type == Y_SEQ && i < refs->n; i++) {
		const char *uid = y_path_str(refs->v[i], "uid");
		if (uid && !strcmp(uid, d->uid)) {
			cleanup_free char *key = obj_key(d->k, ns, name);
			ctl_queue(c, key);
			return;
		}
	}
}

static void gc_changed(struct ctl *c, const struct kind *k, const char *ns, const char *name,
		       const struct ynode *now, const struct ynode *before)
{
	if (now && y_path(now, "metadata.ownerReferences")) {
		cleanup_free char *key = obj_key(k, ns, name);
		ctl_queue(c, key);
	}
	if (!now && before) {
		struct dependents d = {y_path_str(before, "metadata.uid"), NULL};
		for (int i = 0; watched[i] && d.uid; i++) {
			d.k = kind_by_plural(watched[i]);
			ctl_each(c, d.k, ns, queue_if_owned, &d);
		}
	}
}

/* Whether the owner a reference names still exists, with that uid. */
static bool owner_exists(struct ctl *c, const char *ns, const struct ynode *ref)
{
	const char *kind = y_path_str(ref, "kind"), *name = y_path_str(ref, "name");
	const char *uid = y_path_str(ref, "uid");
	const struct kind *k = kind ? kind_by_name(kind) : NULL;

	if (!k || !name || !uid)
		return true; /* a reference we cannot judge is left alone */
	const struct ynode *owner = ctl_reload(c, k, k->namespaced ? ns : "", name);
	const char *have = y_path_str(owner, "metadata.uid");
	return have && !strcmp(have, uid);
}

static int gc_reconcile(struct ctl *c, const char *key)
{
	char buf[512];
	const struct kind *k;
	const char *ns, *name;

	if (key_split(key, buf, sizeof(buf), &k, &ns, &name) < 0)
		return 0;
	const struct ynode *obj = ctl_get(c, k, ns, name);
	const struct ynode *refs = y_path(obj, "metadata.ownerReferences");
	if (!refs || refs->type != Y_SEQ || refs->n == 0)
		return 0;
	/* ctl_reload may change the cache: keep a copy of the references */
	struct ynode *copy = y_clone(refs);
	bool orphan = true;
	for (size_t i = 0; i < copy->n && orphan; i++)
		orphan = !owner_exists(c, ns, copy->v[i]);
	y_free(copy);
	if (!orphan)
		return 0;
	int r = ctl_delete(c, k, ns, name);
	if (r == 0)
		ctl_event(c, ns, "Normal", "GarbageCollected", key, "deleted: its owner is gone");
	return r;
}

static const struct ctl_ops gc_ops = {
	.name = "garbage-collector",
	.kinds = watched,
	.changed = gc_changed,
	.reconcile = gc_reconcile,
};

struct ctl *gc_start(const char *mount)
{
	return ctl_start(mount, &gc_ops, NULL);
}
