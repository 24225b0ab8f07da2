/*
 * deployment.c: the Deployment controller.
 *
 * A Deployment owns one ReplicaSet per pod template, named
 * DEPLOYMENT-HASH, where HASH (also the pods' pod-template-hash label) is
 * a hash of the template. The ReplicaSet of the current template is the
 * new one; the others are old. A rollout moves replicas from the old to
 * the new:
 *   Recreate       old scaled to 0; once their pods are gone, new to spec.replicas
 *   RollingUpdate  new scaled up while all replicas stay within
 *                  spec.replicas + maxSurge; old scaled down while the
 *                  available replicas stay at least spec.replicas - maxUnavailable
 * Each ReplicaSet carries its revision in the deployment.kubernetes.io/revision
 * annotation; a template that comes back (a rollback) gets a new number.
 * Old ReplicaSets at 0 beyond revisionHistoryLimit are deleted. spec.paused
 * stops rollouts; scaling goes on.
 *
 * Keys are "deployments/NS/NAME"; a ReplicaSet's change queues its owner.
 */
#define _GNU_SOURCE
#include "controllers.h"

#include <errno.h>
#include <fcntl.h>

#include "owners.h"

#define REVISION   "deployment.kubernetes.io/revision"
#define HASH_LABEL "pod-template-hash"

static const char *const watched[] = {"deployments", "replicasets", NULL};

static void dep_changed(struct ctl *c, const struct kind *k, const char *ns, const char *name,
			const struct ynode *now, const struct ynode *before)
{
	const struct ynode *obj = now ? now : before;
	const char *owner = name;

	if (!strcmp(k->plural, "replicasets")) {
		const struct ynode *ref = owner_controller(obj);
		const char *kind = y_path_str(ref, "kind");
		if (!kind || strcmp(kind, "Deployment"))
			return;
		owner = y_path_str(ref, "name");
	}
	cleanup_free char *key = obj_key(kind_by_plural("deployments"), ns, owner);
	ctl_queue(c, key);
}

/* The template's hash, in Kubernetes' alphabet: stable for equal templates. */
static void template_hash(const struct ynode *tmpl, char out[16])
{
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	struct strbuf sb = {0};
	uint32_t h = 2166136261u;

	y_emit(tmpl, &sb);
	for (size_t i = 0; i < sb.len; i++)
		h = (h ^ (unsigned char)sb.buf[i]) * 16777619u;
	sb_free(&sb);
	int n = 0;
	do {
		out[n++] = alnum[h % 27];
		h /= 27;
	} while (h && n < 10);
	out[n] = 0;
}

static long int_at(const struct ynode *obj, const char *path, long def)
{
	const struct ynode *n = y_path(obj, path);
	return n && n->type == Y_INT ? (long)n->i : def;
}

/* The ReplicaSets a Deployment owns, new (its template's) and old. */
struct family {
	const struct ynode *d;
	const char *uid;
	char hash[16];
	char *new_name; /* the new set's name, if it exists */
	char **old;	/* old sets' names, oldest revision first */
	size_t nold;
	long max_revision;  /* over every set */
	const char *object; /* "deployment/NAME", for events */
};

static void gather(struct ctl *c, const char *ns, const char *name, const struct ynode *rs,
		   void *arg)
{
	struct family *f = arg;
	const char *hash = y_path_str(y_path(rs, "metadata.labels"), HASH_LABEL);

	if (!owned_by(rs, f->uid))
		return;
	if (deployment_revision(rs) > f->max_revision)
		f->max_revision = deployment_revision(rs);
	if (hash && !strcmp(hash, f->hash)) {
		f->new_name = xstrdup(name);
		return;
	}
	f->old = xrealloc(f->old, (f->nold + 1) * sizeof(*f->old));
	f->old[f->nold++] = xstrdup(name);
}

static struct ctl *sort_ctl;
static const char *sort_ns;

static int cmp_revision(const void *a, const void *b)
{
	const struct kind *rsk = kind_by_plural("replicasets");
	long ra = deployment_revision(ctl_get(sort_ctl, rsk, sort_ns, *(char *const *)a));
	long rb = deployment_revision(ctl_get(sort_ctl, rsk, sort_ns, *(char *const *)b));
	return ra < rb ? -1 : ra > rb;
}

static void family_free(struct family *f)
{
	free(f->new_name);
	for (size_t i = 0; i < f->nold; i++)
		free(f->old[i]);
	free(f->old);
}

static const struct ynode *rs_get(struct ctl *c, const char *ns, const char *name)
{
	return name ? ctl_get(c, kind_by_plural("replicasets"), ns, name) : NULL;
}

/* Writes a copy of the set with spec.replicas n (and the revision, if > 0),
 * and says so in events as the Deployment's (object) doing. */
static int scale_set(struct ctl *c, const char *ns, const char *name, long n, long revision,
		     const char *object)
{
	const struct ynode *rs = rs_get(c, ns, name);
	if (!rs)
		return 0;
	long was = int_at(rs, "spec.replicas", 1);
	if (was == n && (revision <= 0 || deployment_revision(rs) == revision))
		return 0;
	if (was != n)
		ctl_event(c, ns, "Normal", "ScalingReplicaSet", object,
			  "Scaled %s replica set %s to %ld", n > was ? "up" : "down", name, n);
	struct ynode *doc = y_clone(rs);
	y_set(y_submap(doc, "spec"), "replicas", y_int(n));
	if (revision > 0) {
		cleanup_free char *rev = xasprintf("%ld", revision);
		y_set(y_submap(y_submap(doc, "metadata"), "annotations"), REVISION, y_str(rev));
	}
	int r = ctl_put(c, kind_by_plural("replicasets"), ns, name, doc, 0);
	y_free(doc);
	return r;
}

/* The new ReplicaSet for the Deployment's template, at replicas n. */
static struct ynode *new_set(const struct family *f, const char *name, long n)
{
	const struct ynode *d = f->d;
	struct ynode *rs = y_map(), *meta = y_submap(rs, "metadata"), *spec = y_submap(rs, "spec");
	struct ynode *tmpl = y_clone(y_path(d, "spec.template"));
	struct ynode *sel = y_clone(y_path(d, "spec.selector"));
	struct ynode *refs = y_seq();
	cleanup_free char *rev = xasprintf("%ld", f->max_revision + 1);

	y_set(y_submap(y_submap(tmpl, "metadata"), "labels"), HASH_LABEL, y_str(f->hash));
	y_set(y_submap(sel, "matchLabels"), HASH_LABEL, y_str(f->hash));
	y_set(rs, "apiVersion", y_str("apps/v1"));
	y_set(rs, "kind", y_str("ReplicaSet"));
	y_set(meta, "name", y_str(name));
	y_set(meta, "labels", y_clone(y_path(tmpl, "metadata.labels")));
	y_set(y_submap(meta, "annotations"), REVISION, y_str(rev));
	y_push(refs, owner_ref(d));
	y_set(meta, "ownerReferences", refs);
	y_set(spec, "replicas", y_int(n));
	y_set(spec, "selector", sel);
	y_set(spec, "template", tmpl);
	y_set(spec, "minReadySeconds", y_int(int_at(d, "spec.minReadySeconds", 0)));
	return rs;
}

/* An int-or-percent of total; percents round up when up, else down. */
static long resolve(const struct ynode *v, long total, bool up, long def)
{
	if (!v)
		return def;
	if (v->type == Y_INT)
		return (long)v->i;
	long pct = strtol(v->str, NULL, 10);
	return up ? (pct * total + 99) / 100 : pct * total / 100;
}

struct counts {
	long spec;	/* sum of spec.replicas */
	long available; /* sum of status.availableReplicas */
	long ready, current, updated;
};

static struct counts count_sets(struct ctl *c, const char *ns, const struct family *f)
{
	struct counts n = {0};
	const struct ynode *nrs = rs_get(c, ns, f->new_name);

	for (size_t i = 0; i <= f->nold; i++) {
		const struct ynode *rs = i < f->nold ? rs_get(c, ns, f->old[i]) : nrs;
		if (!rs)
			continue;
		n.spec += int_at(rs, "spec.replicas", 1);
		n.available += int_at(rs, "status.availableReplicas", 0);
		n.ready += int_at(rs, "status.readyReplicas", 0);
		n.current += int_at(rs, "status.replicas", 0);
	}
	n.updated = int_at(nrs, "status.replicas", 0);
	return n;
}

static int recreate(struct ctl *c, const char *ns, struct family *f, long replicas)
{
	int r = 0;
	bool old_pods = false;

	for (size_t i = 0; i < f->nold && r == 0; i++) {
		r = scale_set(c, ns, f->old[i], 0, 0, f->object);
		old_pods |= int_at(rs_get(c, ns, f->old[i]), "status.replicas", 0) > 0;
	}
	if (r < 0 || old_pods)
		return r;
	return scale_set(c, ns, f->new_name, replicas, 0, f->object);
}

static int rolling(struct ctl *c, const char *ns, struct family *f, long replicas)
{
	const struct ynode *ru = y_path(f->d, "spec.strategy.rollingUpdate");
	long surge = resolve(y_get(ru, "maxSurge"), replicas, true, (replicas + 3) / 4);
	long unavail = resolve(y_get(ru, "maxUnavailable"), replicas, false, replicas / 4);
	struct counts n = count_sets(c, ns, f);
	long new_spec = int_at(rs_get(c, ns, f->new_name), "spec.replicas", 0);
	int r = 0;

	if (surge == 0 && unavail == 0)
		unavail = 1;
	if (new_spec < replicas) {
		long room = replicas + surge - n.spec;
		long to = new_spec + (room > 0 ? room : 0);
		r = scale_set(c, ns, f->new_name, to < replicas ? to : replicas, 0, f->object);
	} else if (new_spec > replicas) {
		r = scale_set(c, ns, f->new_name, replicas, 0, f->object);
	}
	/* Old sets go down, oldest first, as far as availability allows. */
	long can = n.available - (replicas - unavail);
	for (size_t i = 0; i < f->nold && r == 0 && can > 0; i++) {
		long have = int_at(rs_get(c, ns, f->old[i]), "spec.replicas", 0);
		long cut = have < can ? have : can;
		if (cut > 0)
			r = scale_set(c, ns, f->old[i], have - cut, 0, f->object);
		can -= cut;
	}
	return r;
}

static int prune_history(struct ctl *c, const char *ns, struct family *f)
{
	long limit = int_at(f->d, "spec.revisionHistoryLimit", 10);
	long idle = 0;
	int r = 0;

	for (size_t i = 0; i < f->nold; i++) {
		const struct ynode *rs = rs_get(c, ns, f->old[i]);
		idle += rs && int_at(rs, "spec.replicas", 1) == 0 &&
			int_at(rs, "status.replicas", 0) == 0;
	}
	for (size_t i = 0; i < f->nold && idle > limit && r == 0; i++) {
		const struct ynode *rs = rs_get(c, ns, f->old[i]);
		if (!rs || int_at(rs, "spec.replicas", 1) || int_at(rs, "status.replicas", 0))
			continue;
		r = ctl_delete(c, kind_by_plural("replicasets"), ns, f->old[i]);
		idle--;
	}
	return r;
}

static struct ynode *condition(const char *type, bool ok, const char *reason, const char *msg,
			       const struct ynode *old)
{
	struct ynode *cnd = y_map();
	char now[32];
	const char *was = NULL, *since = NULL;

	for (size_t i = 0; old && old->type == Y_SEQ && i < old->n; i++)
		if (!strcmp(y_path_str(old->v[i], "type") ? y_path_str(old->v[i], "type") : "",
			    type)) {
			was = y_path_str(old->v[i], "status");
			since = y_path_str(old->v[i], "lastTransitionTime");
		}
	ctl_now(now);
	y_set(cnd, "type", y_str(type));
	y_set(cnd, "status", y_str(ok ? "True" : "False"));
	y_set(cnd, "reason", y_str(reason));
	y_set(cnd, "message", y_str(msg));
	y_set(cnd, "lastTransitionTime",
	      y_str(was && since && !strcmp(was, ok ? "True" : "False") ? since : now));
	return cnd;
}

static int write_status(struct ctl *c, const char *ns, const char *name, struct family *f,
			long replicas)
{
	struct counts n = count_sets(c, ns, f);
	const struct ynode *ru = y_path(f->d, "spec.strategy.rollingUpdate");
	long unavail = resolve(y_get(ru, "maxUnavailable"), replicas, false, replicas / 4);
	bool complete = n.updated == replicas && n.current == replicas && n.available >= replicas;
	struct ynode *st = y_map(), *conds = y_seq();
	const struct ynode *old = y_path(f->d, "status.conditions");

	y_set(st, "observedGeneration", y_int(int_at(f->d, "metadata.generation", 1)));
	y_set(st, "replicas", y_int(n.current));
	y_set(st, "updatedReplicas", y_int(n.updated));
	y_set(st, "readyReplicas", y_int(n.ready));
	y_set(st, "availableReplicas", y_int(n.available));
	y_set(st, "unavailableReplicas",
	      y_int(replicas > n.available ? replicas - n.available : 0));
	y_push(conds, condition("Available", n.available >= replicas - unavail,
				n.available >= replicas - unavail ? "MinimumReplicasAvailable"
								  : "MinimumReplicasUnavailable",
				"Deployment has minimum availability.", old));
	y_push(conds, condition("Progressing", true,
				complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
				complete ? "ReplicaSet has successfully progressed."
					 : "ReplicaSet is progressing.",
				old));
	y_set(st, "conditions", conds);
	if (y_equal(st, y_get(f->d, "status"))) {
		y_free(st);
		return 0;
	}
	struct ynode *doc = y_clone(f->d);
	y_set(doc, "status", st);
	int r = ctl_put(c, kind_by_plural("deployments"), ns, name, doc, 0);
	y_free(doc);
	return r;
}

static int ensure_new(struct ctl *c, const char *ns, const char *name, struct family *f)
{
	cleanup_free char *rs_name = xasprintf("%s-%s", name, f->hash);
	long revision = f->max_revision;

	if (f->new_name) {
		/* a template that comes back is the newest revision again */
		if (deployment_revision(rs_get(c, ns, f->new_name)) < revision)
			return scale_set(c, ns, f->new_name,
					 int_at(rs_get(c, ns, f->new_name), "spec.replicas", 0),
					 revision + 1, f->object);
		return 0;
	}
	struct ynode *rs = new_set(f, rs_name, f->nold ? 0 : int_at(f->d, "spec.replicas", 1));
	int r = ctl_put(c, kind_by_plural("replicasets"), ns, rs_name, rs, O_EXCL);
	y_free(rs);
	if (r < 0 && r != -EEXIST)
		return r;
	f->new_name = xstrdup(rs_name);
	ctl_event(c, ns, "Normal", "ScalingReplicaSet", f->object,
		  "Created new replica set %s (revision %ld)", rs_name, revision + 1);
	return 0;
}

static int dep_reconcile(struct ctl *c, const char *key)
{
	char buf[512];
	const struct kind *k;
	const char *ns, *name;
	struct family f = {0};
	int r;

	if (key_split(key, buf, sizeof(buf), &k, &ns, &name) < 0)
		return 0;
	const struct ynode *d = ctl_get(c, k, ns, name);
	if (!d)
		return 0;
	struct ynode *copy = y_clone(d); /* our own writes change the cache */
	cleanup_free char *object = xasprintf("deployment/%s", name);
	f.d = copy;
	f.object = object;
	f.uid = y_path_str(copy, "metadata.uid");
	template_hash(y_path(copy, "spec.template"), f.hash);
	ctl_each(c, kind_by_plural("replicasets"), ns, gather, &f);
	sort_ctl = c, sort_ns = ns;
	if (f.nold)
		qsort(f.old, f.nold, sizeof(*f.old), cmp_revision);
	long replicas = int_at(copy, "spec.replicas", 1);
	bool paused = y_path(copy, "spec.paused") && y_path(copy, "spec.paused")->i;
	const char *strategy = y_path_str(copy, "spec.strategy.type");

	r = paused && f.nold ? 0 : ensure_new(c, ns, name, &f);
	if (r == 0 && f.new_name && !paused)
		r = strategy && !strcmp(strategy, "Recreate") ? recreate(c, ns, &f, replicas)
							      : rolling(c, ns, &f, replicas);
	if (r == 0)
		r = prune_history(c, ns, &f);
	if (r == 0)
		r = write_status(c, ns, name, &f, replicas);
	family_free(&f);
	y_free(copy);
	return r;
}

static const struct ctl_ops dep_ops = {
	.name = "deployment-controller",
	.kinds = watched,
	.changed = dep_changed,
	.reconcile = dep_reconcile,
};

struct ctl *deployment_controller_start(const char *mount)
{
	return ctl_start(mount, &dep_ops, NULL);
}
