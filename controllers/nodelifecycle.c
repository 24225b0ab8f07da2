/*
 * nodelifecycle.c: the node lifecycle controller.
 *
 * Every second it looks at each node's Ready heartbeat
 * (status.conditions[type=Ready].lastHeartbeatTime). A node silent for
 * longer than the grace period gets Ready=Unknown; one silent for the
 * grace period plus the eviction timeout loses its pods, which their
 * owners then replace elsewhere.
 */
#define _GNU_SOURCE
#include "controllers.h"

#include <time.h>

#include "owners.h"

static const char *const watched[] = {"nodes", "pods", NULL};

struct lifecycle {
	int grace, eviction; /* seconds */
};

/* Parses RFC 3339 UTC ("2026-11-22T05:05:29Z") into seconds, or -1. */
static time_t parse_time(const char *s)
{
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	return end ? timegm(&tm) : -1;
}

static struct ynode *ready_condition(struct ynode *node)
{
	struct ynode *conds = y_path(node, "status.conditions");

	for (size_t i = 0; conds && conds->type == Y_SEQ && i < conds->n; i++) {
		const char *t = y_path_str(conds->v[i], "type");
		if (t && !strcmp(t, "Ready"))
			return conds->v[i];
	}
	return NULL;
}

static void nl_changed(struct ctl *c, const struct kind *k, const char *ns, const char *name,
		       const struct ynode *now, const struct ynode *before)
{
	/* Everything happens on the tick. */
}

static int nl_reconcile(struct ctl *c, const char *key)
{
	return 0;
}

static void mark_unknown(struct ctl *c, const char *name, const struct ynode *node)
{
	struct ynode *doc = y_clone(node);
	struct ynode *ready = ready_condition(doc);
	char now[32];

	ctl_now(now);
	y_set(ready, "status", y_str("Unknown"));
	y_set(ready, "reason", y_str("NodeStatusUnknown"));
	y_set(ready, "message", y_str("Kubelet stopped posting node status."));
	y_set(ready, "lastTransitionTime", y_str(now));
	cleanup_free char *object = xasprintf("node/%s", name);
	if (ctl_put(c, kind_by_plural("nodes"), "", name, doc, 0) == 0)
		ctl_event(c, "", "Normal", "NodeNotReady", object,
			  "Node %s status is now: NodeNotReady", name);
	y_free(doc);
}

struct eviction {
	const char *node;
	char **pods; /* "ns/name" */
	size_t n;
};

static void pick_pod(struct ctl *c, const char *ns, const char *name, const struct ynode *pod,
		     void *arg)
{
	struct eviction *ev = arg;
	const char *bound = y_path_str(pod, "spec.nodeName");

	if (!bound || strcmp(bound, ev->node))
		return;
	ev->pods = xrealloc(ev->pods, (ev->n + 1) * sizeof(*ev->pods));
	ev->pods[ev->n++] = xasprintf("%s/%s", ns, name);
}

static void evict_pods(struct ctl *c, const char *node)
{
	struct eviction ev = {node, NULL, 0};

	ctl_each(c, kind_by_plural("pods"), NULL, pick_pod, &ev);
	for (size_t i = 0; i < ev.n; i++) {
		char *slash = strchr(ev.pods[i], '/');
		*slash = 0;
		cleanup_free char *object = xasprintf("pod/%s", slash + 1);
		if (ctl_delete(c, kind_by_plural("pods"), ev.pods[i], slash + 1) == 0)
			ctl_event(c, ev.pods[i], "Normal", "TaintManagerEviction", object,
				  "Deleting pod: node %s is not ready", node);
		free(ev.pods[i]);
	}
	free(ev.pods);
}

struct node_list {
	char **names;
	size_t n;
};

static void list_node(struct ctl *c, const char *ns, const char *name, const struct ynode *node,
		      void *arg)
{
	struct node_list *l = arg;
	l->names = xrealloc(l->names, (l->n + 1) * sizeof(*l->names));
	l->names[l->n++] = xstrdup(name);
}

static void check_node(struct ctl *c, struct lifecycle *lc, const char *name, time_t now)
{
	const struct ynode *node = ctl_get(c, kind_by_plural("nodes"), "", name);
	struct ynode *ready = node ? ready_condition((struct ynode *)node) : NULL;
	time_t beat = parse_time(y_path_str(ready, "lastHeartbeatTime"));

	if (!ready || beat < 0 || now - beat <= lc->grace)
		return;
	const char *status = y_path_str(ready, "status");
	if (status && !strcmp(status, "True"))
		mark_unknown(c, name, node);
	if (now - beat > lc->grace + lc->eviction)
		evict_pods(c, name);
}

static void nl_tick(struct ctl *c)
{
	struct lifecycle *lc = ctl_arg(c);
	struct node_list l = {0};
	time_t now = time(NULL);

	/* Names first: the checks write, and writes change the cache. */
	ctl_each(c, kind_by_plural("nodes"), "", list_node, &l);
	for (size_t i = 0; i < l.n; i++) {
		check_node(c, lc, l.names[i], now);
		free(l.names[i]);
	}
	free(l.names);
}

static const struct ctl_ops nl_ops = {
	.name = "node-lifecycle-controller",
	.kinds = watched,
	.changed = nl_changed,
	.reconcile = nl_reconcile,
	.tick = nl_tick,
	.tick_ms = 1000,
};

struct ctl *nodelifecycle_start(const char *mount, int grace, int eviction)
{
	static struct lifecycle lc;

	lc.grace = grace;
	lc.eviction = eviction;
	return ctl_start(mount, &nl_ops, &lc);
}
