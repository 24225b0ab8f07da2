/*
 * scheduler.c: the scheduler's thread (see scheduler.h for what it does).
 *
 * Its state follows the ctl cache through changed(): a struct sched_node
 * per node name, holding the Node object's spec part and the totals of
 * the pods bound there; for each pod that holds resources, what it was
 * counted as on which node (so that it is taken back exactly, whatever
 * the pod looks like later); and the set of pods waiting for a node.
 * Keys in the work queue are "NS/NAME" of pods.
 */
#define _GNU_SOURCE
#include "scheduler.h"

#include <errno.h>

#include "ctl.h"
#include "filter.h"

static const char *const watched[] = {"pods", "nodes", NULL};

/* A pod that holds resources on a node, as it was counted there. */
struct held {
	char *node;
	struct sched_claim claim;
};

struct sched {
	struct ctl *c;
	/* Everything below belongs to the scheduler's thread. */
	struct strmap *nodes;	  /* name -> struct sched_node: a Node object, or pods bound */
	struct sched_node **list; /* the nodes with a Node object, sorted by name */
	size_t nlist;
	bool list_stale;
	struct strmap *held;	/* "NS/NAME" -> struct held */
	struct strmap *pending; /* "NS/NAME" of the pods waiting for a node */
};

static struct sched_node *node_get(struct sched *s, const char *name)
{
	struct sched_node *n = strmap_get(s->nodes, name);

	if (!n)
		strmap_put(s->nodes, name, n = sched_node_new(name));
	return n;
}

/* A name with neither a Node object nor pods is forgotten. */
static void node_maybe_free(struct sched *s, struct sched_node *n)
{
	if (n->s.present || n->pods > 0)
		return;
	strmap_del(s->nodes, n->name);
	sched_node_free(n);
}

static void queue_one(const char *key, void *val, void *arg)
{
	ctl_queue(arg, key);
}

static void requeue_pending(struct sched *s, struct ctl *c)
{
	strmap_each(s->pending, queue_one, c);
}

static struct held *hold(struct sched *s, const struct ynode *pod, const char *node)
{
	struct held *h = xcalloc(1, sizeof(*h));

	h->node = xstrdup(node);
	sched_claim_read(&h->claim, pod);
	sched_node_add(node_get(s, node), &h->claim);
	return h;
}

static void release(struct sched *s, struct held *h)
{
	struct sched_node *n = strmap_get(s->nodes, h->node);

	if (n) {
		sched_node_sub(n, &h->claim);
		node_maybe_free(s, n);
	}
	sched_claim_clear(&h->claim);
	free(h->node);
	free(h);
}

/* The pod's share of its node follows the pod; when it leaves a node,
 * the waiting pods may fit now. */
static void pod_account(struct sched *s, struct ctl *c, const char *key, const struct ynode *now)
{
	const char *node = now ? sched_pod_holder(now) : NULL;
	struct held *old = strmap_del(s->held, key);
	bool freed = old && (!node || strcmp(old->node, node));

	if (node)
		strmap_put(s->held, key, hold(s, now, node));
	if (old)
		release(s, old);
	if (freed)
		requeue_pending(s, c);
}

static void pod_changed(struct sched *s, struct ctl *c, const char *ns, const char *name,
			const struct ynode *now, const struct ynode *before)
{
	cleanup_free char *key = xasprintf("%s/%s", ns, name);

	pod_account(s, c, key, now);
	if (!now || !sched_pod_pending(now)) {
		strmap_del(s->pending, key);
		return;
	}
	strmap_put(s->pending, key, (void *)1);
	/* Our own status write changes nothing the decision reads. */
	if (!before || !sched_pod_pending(before) ||
	    !y_equal(y_get(before, "spec"), y_get(now, "spec")))
		ctl_queue(c, key);
}

static void node_changed(struct sched *s, struct ctl *c, const char *name, const struct ynode *now)
{
	struct sched_node *n = node_get(s, name);
	bool was = n->s.present;
	bool relevant = sched_node_update(n, now);

	if (was != n->s.present)
		s->list_stale = true;
	if (now && relevant)
		requeue_pending(s, c);
	node_maybe_free(s, n);
}

static void sched_changed(struct ctl *c, const struct kind *k, const char *ns, const char *name,
			  const struct ynode *now, const struct ynode *before)
{
	struct sched *s = ctl_arg(c);

	if (!strcmp(k->plural, "pods"))
		pod_changed(s, c, ns, name, now, before);
	else if (!strcmp(k->plural, "nodes"))
		node_changed(s, c, name, now);
}

static void collect_present(const char *name, void *val, void *arg)
{
	struct sched *s = arg;
	struct sched_node *n = val;

	if (n->s.present)
		s->list[s->nlist++] = n;
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp((*(struct sched_node *const *)a)->name,
		      (*(struct sched_node *const *)b)->name);
}

static void refresh_list(struct sched *s)
{
	if (!s->list_stale)
		return;
	s->list = xrealloc(s->list, (strmap_count(s->nodes) + 1) * sizeof(*s->list));
	s->nlist = 0;
	strmap_each(s->nodes, collect_present, s);
	qsort(s->list, s->nlist, sizeof(*s->list), cmp_node);
	s->list_stale = false;
}

static struct ynode *pod_scheduled(struct ynode *pod)
{
	struct ynode *status = y_submap(pod, "status");
	struct ynode *conds = y_get(status, "conditions");

	if (!conds || conds->type != Y_SEQ)
		y_set(status, "conditions", conds = y_seq());
	for (size_t i = 0; i < conds->n; i++) {
		const char *type = y_path_str(conds->v[i], "type");
		if (type && !strcmp(type, "PodScheduled"))
			return conds->v[i];
	}
	struct ynode *cond = y_map();
	y_set(cond, "type", y_str("PodScheduled"));
	y_push(conds, cond);
	return cond;
}

/* Sets condition PodScheduled (reason and msg may be NULL). */
static void set_condition(struct ynode *pod, const char *status, const char *reason,
			  const char *msg)
{
	struct ynode *cond = pod_scheduled(pod);
	const char *was = y_path_str(cond, "status");
	char now[32];

	if (!was || strcmp(was, status)) {
		ctl_now(now);
		y_set(cond, "lastTransitionTime", y_str(now));
	}
	y_set(cond, "lastProbeTime", y_null());
	y_set(cond, "status", y_str(status));
	if (reason)
		y_set(cond, "reason", y_str(reason));
	else
		y_del(cond, "reason");
	if (msg)
		y_set(cond, "message", y_str(msg));
	else
		y_del(cond, "message");
	if (!y_path(pod, "status.phase"))
		y_set(y_get(pod, "status"), "phase", y_str("Pending"));
}

static bool says_unschedulable(const struct ynode *pod, const char *msg)
{
	const struct ynode *conds = y_path(pod, "status.conditions");

	for (size_t i = 0; conds && conds->type == Y_SEQ && i < conds->n; i++) {
		const struct ynode *c = conds->v[i];
		const char *type = y_path_str(c, "type"), *status = y_path_str(c, "status");
		const char *reason = y_path_str(c, "reason"), *m = y_path_str(c, "message");
		if (type && !strcmp(type, "PodScheduled"))
			return status && !strcmp(status, "False") && reason &&
			       !strcmp(reason, "Unschedulable") && m && !strcmp(m, msg);
	}
	return false;
}

/* Writes doc over the pod, with the resourceVersion it carries. A pod
 * that went meanwhile needs nothing more; -ESTALE is retried by ctl. */
static int put_pod(struct ctl *c, const char *ns, const char *name, struct ynode *doc)
{
	int r = ctl_put(c, kind_by_plural("pods"), ns, name, doc, 0);

	y_free(doc);
	if (r < 0 && r != -ESTALE && r != -ENOENT)
		fprintf(stderr, "clusterfs: default-scheduler: write pods %s/%s: %s\n", ns, name,
			strerror(-r));
	return r;
}

static int bind_pod(struct ctl *c, const char *ns, const char *name, const struct ynode *pod,
		    const char *node)
{
	cleanup_free char *target = xstrdup(node);
	cleanup_free char *object = xasprintf("pod/%s", name);
	struct ynode *doc = y_clone(pod);

	y_set(y_submap(doc, "spec"), "nodeName", y_str(target));
	set_condition(doc, "True", NULL, NULL);
	int r = put_pod(c, ns, name, doc);
	if (r == 0)
		ctl_event(c, ns, "Normal", "Scheduled", object, "Successfully assigned %s/%s to %s",
			  ns, name, target);
	return r == -ENOENT ? 0 : r;
}

static int unschedulable(struct ctl *c, const char *ns, const char *name, const struct ynode *pod,
			 const char *msg)
{
	cleanup_free char *object = xasprintf("pod/%s", name);

	if (says_unschedulable(pod, msg))
		return 0;
	struct ynode *doc = y_clone(pod);
	set_condition(doc, "False", "Unschedulable", msg);
	int r = put_pod(c, ns, name, doc);
	if (r == 0)
		ctl_event(c, ns, "Warning", "FailedScheduling", object, "%s", msg);
	return r == -ENOENT ? 0 : r;
}

static int sched_reconcile(struct ctl *c, const char *key)
{
	struct sched *s = ctl_arg(c);
	cleanup_free char *ns = xstrdup(key);
	char *name = strchr(ns, '/');
	struct sched_pod p;
	char *msg = NULL;

	if (!name)
		return 0;
	*name++ = 0;
	const struct ynode *pod = ctl_get(c, kind_by_plural("pods"), ns, name);
	if (!pod || !sched_pod_pending(pod))
		return 0;
	refresh_list(s);
	sched_pod_read(&p, pod);
	int best = sched_choose(&p, s->list, s->nlist, &msg);
	sched_pod_clear(&p);
	int r = best >= 0 ? bind_pod(c, ns, name, pod, s->list[best]->name)
			  : unschedulable(c, ns, name, pod, msg);
	free(msg);
	return r;
}

struct sched *sched_start(const char *mount)
{
	static const struct ctl_ops ops = {
		.name = "default-scheduler",
		.kinds = watched,
		.changed = sched_changed,
		.reconcile = sched_reconcile,
	};
	struct sched *s = xcalloc(1, sizeof(*s));

	s->nodes = strmap_new();
	s->held = strmap_new();
	s->pending = strmap_new();
	s->list_stale = true;
	s->c = ctl_start(mount, &ops, s);
	return s;
}

void sched_request_stop(struct sched *s)
{
	if (s)
		ctl_request_stop(s->c);
}

static void free_node(const char *key, void *val, void *arg)
{
	sched_node_free(val);
}

static void free_held(const char *key, void *val, void *arg)
{
	struct held *h = val;

	sched_claim_clear(&h->claim);
	free(h->node);
	free(h);
}

void sched_stop(struct sched *s)
{
	if (!s)
		return;
	ctl_stop(s->c);
	strmap_each(s->held, free_held, NULL);
	strmap_free(s->held);
	strmap_each(s->nodes, free_node, NULL);
	strmap_free(s->nodes);
	strmap_free(s->pending);
	free(s->list);
	free(s);
}
