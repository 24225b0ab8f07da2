/*
 * replicaset.c: the ReplicaSet and ReplicationController controller.
 *
 * For each ReplicaSet (or ReplicationController) it keeps spec.replicas
 * active pods made from the template, named OWNER-xxxxx and owned through
 * a controller ownerReference. Matching pods that no controller owns are
 * adopted; owned pods whose labels no longer match are released. Then it
 * writes status: replicas, readyReplicas, availableReplicas,
 * fullyLabeledReplicas, observedGeneration.
 *
 * Keys are "replicasets/NS/NAME" or "replicationcontrollers/NS/NAME". A
 * pod's change queues its controller, and, for a pod no one owns, every
 * set of the namespace that might adopt it.
 */
#define _GNU_SOURCE
#include "controllers.h"

#include <errno.h>
#include <fcntl.h>

#include "owners.h"

static const char *const watched[] = {"replicasets", "replicationcontrollers", "pods", NULL};

static bool is_set_kind(const struct kind *k)
{
	return !strcmp(k->plural, "replicasets") || !strcmp(k->plural, "replicationcontrollers");
}

static void queue_sets(struct ctl *c, const char *ns, const char *name, const struct ynode *obj,
		       void *arg)
{
	cleanup_free char *key = obj_key(arg, ns, name);
	ctl_queue(c, key);
}

static void queue_owner(struct ctl *c, const char *ns, const struct ynode *pod)
{
	const struct ynode *ref = owner_controller(pod);
	const struct kind *k = kind_by_name(y_path_str(ref, "kind") ? y_path_str(ref, "kind") : "");

	if (ref && k && is_set_kind(k)) {
		cleanup_free char *key = obj_key(k, ns, y_path_str(ref, "name"));
		ctl_queue(c, key);
	} else if (!ref && pod) {
		ctl_each(c, kind_by_plural("replicasets"), ns, queue_sets,
			 (void *)kind_by_plural("replicasets"));
		ctl_each(c, kind_by_plural("replicationcontrollers"), ns, queue_sets,
			 (void *)kind_by_plural("replicationcontrollers"));
	}
}

static void rs_changed(struct ctl *c, const struct kind *k, const char *ns, const char *name,
		       const struct ynode *now, const struct ynode *before)
{
	if (is_set_kind(k)) {
		cleanup_free char *key = obj_key(k, ns, name);
		ctl_queue(c, key);
		return;
	}
	if (now)
		queue_owner(c, ns, now);
	if (before)
		queue_owner(c, ns, before);
}

/* What one reconcile of a set sees of its pods. */
struct census {
	const struct ynode *set;
	const char *uid;
	struct selector *sel;
	const char **owned; /* names of the active pods it owns */
	size_t nowned;
	const char **adopt, **release;
	size_t nadopt, nrelease;
	long ready;
};

static void push(const char ***list, size_t *n, const char *name)
{
	*list = xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = name;
}

static void count_pod(struct ctl *c, const char *ns, const char *name, const struct ynode *pod,
		      void *arg)
{
	struct census *cs = arg;
	const struct ynode *ref = owner_controller(pod);
	bool matches = sel_matches(cs->sel, y_path(pod, "metadata.labels"));

	if (ref && !owned_by(pod, cs->uid))
		return; /* another controller's */
	if (ref && !matches) {
		push(&cs->release, &cs->nrelease, name);
		return;
	}
	if (!matches || !pod_active(pod))
		return;
	if (!ref)
		push(&cs->adopt, &cs->nadopt, name);
	push(&cs->owned, &cs->nowned, name);
	cs->ready += pod_ready(pod);
}

/* Adds or removes the set as the pod's controller. */
static int set_owner(struct ctl *c, const char *ns, const char *name, const struct ynode *set)
{
	const struct kind *pods = kind_by_plural("pods");
	const struct ynode *pod = ctl_get(c, pods, ns, name);

	if (!pod)
		return 0;
	struct ynode *doc = y_clone(pod);
	struct ynode *meta = y_submap(doc, "metadata");
	if (set) {
		struct ynode *refs = y_seq();
		y_push(refs, owner_ref(set));
		y_set(meta, "ownerReferences", refs);
	} else {
		y_del(meta, "ownerReferences");
	}
	int r = ctl_put(c, pods, ns, name, doc, 0);
	y_free(doc);
	return r;
}

/* A new pod from the set's template. Caller frees. */
static struct ynode *pod_from_template(const struct ynode *set)
{
	const struct ynode *tmpl = y_path(set, "spec.template");
	struct ynode *pod = y_map();
	struct ynode *meta = y_submap(pod, "metadata");
	struct ynode *refs = y_seq();

	y_set(pod, "apiVersion", y_str("v1"));
	y_set(pod, "kind", y_str("Pod"));
	if (y_path(tmpl, "metadata.labels"))
		y_set(meta, "labels", y_clone(y_path(tmpl, "metadata.labels")));
	if (y_path(tmpl, "metadata.annotations"))
		y_set(meta, "annotations", y_clone(y_path(tmpl, "metadata.annotations")));
	y_push(refs, owner_ref(set));
	y_set(meta, "ownerReferences", refs);
	y_set(pod, "spec", y_clone(y_get(tmpl, "spec")));
	return pod;
}

static int create_pod(struct ctl *c, const char *ns, const char *set_name, const struct ynode *set,
		      const char *object)
{
	struct ynode *pod = pod_from_template(set);
	char suffix[6];
	int r = -EEXIST;

	for (int tries = 0; tries < 5 && r == -EEXIST; tries++) {
		ctl_random_suffix(suffix, 5);
		cleanup_free char *name = xasprintf("%s-%s", set_name, suffix);
		y_set(y_submap(pod, "metadata"), "name", y_str(name));
		r = ctl_put(c, kind_by_plural("pods"), ns, name, pod, O_EXCL);
		if (r == 0)
			ctl_event(c, ns, "Normal", "SuccessfulCreate", object, "Created pod: %s",
				  name);
	}
	y_free(pod);
	return r;
}

/* Deletion order, as Kubernetes: unscheduled, then not running, then not
 * ready, then the newest first. */
static int delete_rank(const struct ynode *pod)
{
	const char *phase = y_path_str(pod, "status.phase");
	if (!y_path_str(pod, "spec.nodeName"))
		return 0;
	if (!phase || strcmp(phase, "Running"))
		return 1;
	return pod_ready(pod) ? 3 : 2;
}

struct rank_ctx {
	struct ctl *c;
	const char *ns;
};

static struct rank_ctx *rank_arg;

static int cmp_victims(const void *a, const void *b)
{
	const struct kind *pods = kind_by_plural("pods");
	const struct ynode *pa = ctl_get(rank_arg->c, pods, rank_arg->ns, *(const char *const *)a);
	const struct ynode *pb = ctl_get(rank_arg->c, pods, rank_arg->ns, *(const char *const *)b);
	int d = delete_rank(pa) - delete_rank(pb);
	if (d)
		return d;
	const char *ta = y_path_str(pa, "metadata.creationTimestamp");
	const char *tb = y_path_str(pb, "metadata.creationTimestamp");
	return -strcmp(ta ? ta : "", tb ? tb : "");
}

static int delete_pods(struct ctl *c, const char *ns, struct census *cs, long n, const char *object)
{
	struct rank_ctx rc = {c, ns};
	int r = 0;

	rank_arg = &rc; /* only this controller's thread sorts */
	qsort(cs->owned, cs->nowned, sizeof(*cs->owned), cmp_victims);
	for (long i = 0; i < n && r == 0; i++) {
		/* the name is the cache's key, which the delete frees */
		cleanup_free char *victim = xstrdup(cs->owned[i]);
		r = ctl_delete(c, kind_by_plural("pods"), ns, victim);
		if (r == 0)
			ctl_event(c, ns, "Normal", "SuccessfulDelete", object, "Deleted pod: %s",
				  victim);
	}
	return r;
}

static int write_status(struct ctl *c, const struct kind *k, const char *ns, const char *name,
			const struct ynode *set, long replicas, long ready)
{
	struct ynode *status = y_map();
	const struct ynode *gen = y_path(set, "metadata.generation");

	y_set(status, "replicas", y_int(replicas));
	y_set(status, "fullyLabeledReplicas", y_int(replicas));
	y_set(status, "readyReplicas", y_int(ready));
	y_set(status, "availableReplicas", y_int(ready));
	y_set(status, "observedGeneration", y_int(gen ? gen->i : 1));
	if (y_equal(status, y_get(set, "status"))) {
		y_free(status);
		return 0;
	}
	struct ynode *doc = y_clone(set);
	y_set(doc, "status", status);
	int r = ctl_put(c, k, ns, name, doc, 0);
	y_free(doc);
	return r;
}

static int manage(struct ctl *c, const struct kind *k, const char *ns, const char *name,
		  const struct ynode *set, struct census *cs)
{
	cleanup_free char *object = xasprintf(
		"%s/%s",
		k == kind_by_plural("replicasets") ? "replicaset" : "replicationcontroller", name);
	const struct ynode *want_n = y_path(set, "spec.replicas");
	long want = want_n ? want_n->i : 1, have = (long)cs->nowned;
	int r = 0;

	for (size_t i = 0; i < cs->nrelease && r == 0; i++)
		r = set_owner(c, ns, cs->release[i], NULL);
	for (size_t i = 0; i < cs->nadopt && r == 0; i++)
		r = set_owner(c, ns, cs->adopt[i], set);
	for (long i = have; i < want && r == 0; i++)
		r = create_pod(c, ns, name, set, object);
	if (r == 0 && have > want)
		r = delete_pods(c, ns, cs, have - want, object);
	if (r < 0)
		return r;
	if (have != want)
		return 0; /* the pods' own events bring the status round */
	return write_status(c, k, ns, name, set, have, cs->ready);
}

static int rs_reconcile(struct ctl *c, const char *key)
{
	char buf[512];
	const struct kind *k;
	const char *ns, *name;
	struct census cs = {0};
	int r;

	if (key_split(key, buf, sizeof(buf), &k, &ns, &name) < 0)
		return 0;
	const struct ynode *set = ctl_get(c, k, ns, name);
	if (!set)
		return 0; /* gone: the garbage collector takes its pods */
	cs.set = set;
	cs.uid = y_path_str(set, "metadata.uid");
	if (sel_from_doc(y_path(set, "spec.selector"), "spec.selector", &cs.sel, NULL) < 0)
		return 0;
	ctl_each(c, kind_by_plural("pods"), ns, count_pod, &cs);
	/* the set may change under our writes: work on a copy */
	struct ynode *copy = y_clone(set);
	r = manage(c, k, ns, name, copy, &cs);
	y_free(copy);
	sel_free(cs.sel);
	free(cs.owned);
	free(cs.adopt);
	free(cs.release);
	return r;
}

static const struct ctl_ops rs_ops = {
	.name = "replicaset-controller",
	.kinds = watched,
	.changed = rs_changed,
	.reconcile = rs_reconcile,
};

struct ctl *replicaset_controller_start(const char *mount)
{
	return ctl_start(mount, &rs_ops, NULL);
}
