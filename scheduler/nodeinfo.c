/*
 * nodeinfo.c: reading Node and Pod objects into what the filters and
 * scores look at (see nodeinfo.h), and keeping each node's totals of
 * what its pods take.
 *
 * A pod's requests are computed the way Kubernetes does: a container's
 * request for a resource is its requests entry, else its limits entry
 * (the API server copies limits into unset requests); the pod needs the
 * sum over its containers, or more when an init container needs more
 * (init containers run one at a time, sidecars alongside everything after
 * them); spec.overhead is added on top.
 */
#include "nodeinfo.h"

#include "schema.h"

static const char *str_or(const char *s, const char *def)
{
	return s && *s ? s : def;
}

/* The quantity for res in the map at path, in milli-units; false when
 * there is none (or it is not a quantity). */
static bool qty_at(const struct ynode *n, const char *path, const char *res, int64_t *milli)
{
	const char *q = y_path_str(y_path(n, path), res);
	return q && parse_quantity(q, milli) == 0;
}

/* A container's quantity for res: its request, else its limit. */
static bool container_qty(const struct ynode *c, const char *res, int64_t *milli)
{
	if (y_path_str(y_path(c, "resources.requests"), res))
		return qty_at(c, "resources.requests", res, milli);
	return qty_at(c, "resources.limits", res, milli);
}

static struct sched_res container_res(const struct ynode *c, bool nonzero)
{
	struct sched_res r = {0, 0};
	int64_t v;

	if (container_qty(c, "cpu", &v))
		r.cpu = v;
	else if (nonzero)
		r.cpu = SCHED_DEFAULT_MILLI_CPU;
	if (container_qty(c, "memory", &v))
		r.mem = (v + 999) / 1000;
	else if (nonzero)
		r.mem = SCHED_DEFAULT_MEMORY;
	return r;
}

static void res_add(struct sched_res *a, struct sched_res b)
{
	a->cpu += b.cpu;
	a->mem += b.mem;
}

static void res_max(struct sched_res *a, struct sched_res b)
{
	if (b.cpu > a->cpu)
		a->cpu = b.cpu;
	if (b.mem > a->mem)
		a->mem = b.mem;
}

static bool is_sidecar(const struct ynode *c)
{
	const char *rp = y_path_str(c, "restartPolicy");
	return rp && !strcmp(rp, "Always");
}

static struct sched_res pod_res(const struct ynode *spec, bool nonzero)
{
	const struct ynode *cs = y_get(spec, "containers"), *ics = y_get(spec, "initContainers");
	struct sched_res sum = {0, 0}, init = {0, 0}, sidecars = {0, 0};
	int64_t v;

	for (size_t i = 0; cs && cs->type == Y_SEQ && i < cs->n; i++)
		res_add(&sum, container_res(cs->v[i], nonzero));
	for (size_t i = 0; ics && ics->type == Y_SEQ && i < ics->n; i++) {
		struct sched_res step = container_res(ics->v[i], nonzero);
		if (is_sidecar(ics->v[i])) {
			res_add(&sum, step);
			res_add(&sidecars, step);
			step = sidecars;
		} else {
			res_add(&step, sidecars);
		}
		res_max(&init, step);
	}
	res_max(&sum, init);
	if (qty_at(spec, "overhead", "cpu", &v))
		sum.cpu += v;
	if (qty_at(spec, "overhead", "memory", &v))
		sum.mem += (v + 999) / 1000;
	return sum;
}

static void add_port(struct sched_port **ports, size_t *n, const struct sched_port *p)
{
	*ports = xrealloc(*ports, (*n + 1) * sizeof(**ports));
	(*ports)[(*n)++] = *p;
}

/* The host ports of the pod's containers; with hostNetwork, every
 * containerPort is one (the API server defaults hostPort so). */
static void read_ports(struct sched_claim *cl, const struct ynode *spec)
{
	const struct ynode *cs = y_get(spec, "containers"), *hn = y_get(spec, "hostNetwork");
	bool host_net = hn && hn->type == Y_BOOL && hn->i;

	for (size_t i = 0; cs && cs->type == Y_SEQ && i < cs->n; i++) {
		const struct ynode *ps = y_get(cs->v[i], "ports");
		for (size_t j = 0; ps && ps->type == Y_SEQ && j < ps->n; j++) {
			const struct ynode *hp = y_get(ps->v[j], "hostPort");
			const struct ynode *cp = y_get(ps->v[j], "containerPort");
			const struct ynode *port = hp ? hp : host_net ? cp : NULL;
			struct sched_port p = {0};
			if (!port || port->type != Y_INT || port->i <= 0)
				continue;
			p.port = (int)port->i;
			snprintf(p.proto, sizeof(p.proto), "%s",
				 str_or(y_path_str(ps->v[j], "protocol"), "TCP"));
			snprintf(p.ip, sizeof(p.ip), "%s",
				 str_or(y_path_str(ps->v[j], "hostIP"), "0.0.0.0"));
			add_port(&cl->ports, &cl->nports, &p);
		}
	}
}

static const char *controller_uid(const struct ynode *pod)
{
	const struct ynode *refs = y_path(pod, "metadata.ownerReferences");

	for (size_t i = 0; refs && refs->type == Y_SEQ && i < refs->n; i++) {
		const struct ynode *c = y_get(refs->v[i], "controller");
		if (c && c->type == Y_BOOL && c->i)
			return y_path_str(refs->v[i], "uid");
	}
	return NULL;
}

void sched_claim_read(struct sched_claim *cl, const struct ynode *pod)
{
	const struct ynode *spec = y_get(pod, "spec");
	const char *owner = controller_uid(pod);

	memset(cl, 0, sizeof(*cl));
	cl->req = pod_res(spec, false);
	cl->nonzero = pod_res(spec, true);
	read_ports(cl, spec);
	cl->owner = owner && *owner ? xstrdup(owner) : NULL;
}

void sched_claim_clear(struct sched_claim *cl)
{
	free(cl->ports);
	free(cl->owner);
	memset(cl, 0, sizeof(*cl));
}

void sched_pod_read(struct sched_pod *p, const struct ynode *pod)
{
	const struct ynode *na = y_path(pod, "spec.affinity.nodeAffinity");
	const char *node = y_path_str(pod, "spec.nodeName");

	memset(p, 0, sizeof(*p));
	p->node_name = node && *node ? node : NULL;
	sched_claim_read(&p->claim, pod);
	p->tolerations = y_path(pod, "spec.tolerations");
	p->node_selector = y_path(pod, "spec.nodeSelector");
	p->required = y_get(na, "requiredDuringSchedulingIgnoredDuringExecution");
	p->preferred = y_get(na, "preferredDuringSchedulingIgnoredDuringExecution");
}

void sched_pod_clear(struct sched_pod *p)
{
	sched_claim_clear(&p->claim);
}

static bool finished(const struct ynode *pod)
{
	const char *phase = y_path_str(pod, "status.phase");
	return phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

bool sched_pod_pending(const struct ynode *pod)
{
	const char *node = y_path_str(pod, "spec.nodeName");
	const char *scheduler = y_path_str(pod, "spec.schedulerName");
	const struct ynode *deleting = y_path(pod, "metadata.deletionTimestamp");
	const struct ynode *gates = y_path(pod, "spec.schedulingGates");

	if ((node && *node) || (deleting && deleting->type != Y_NULL) || finished(pod))
		return false;
	if (gates && gates->type == Y_SEQ && gates->n > 0)
		return false;
	return !scheduler || !*scheduler || !strcmp(scheduler, "default-scheduler");
}

const char *sched_pod_holder(const struct ynode *pod)
{
	const char *node = y_path_str(pod, "spec.nodeName");
	return node && *node && !finished(pod) ? node : NULL;
}

struct sched_node *sched_node_new(const char *name)
{
	struct sched_node *n = xcalloc(1, sizeof(*n));

	n->name = xstrdup(name);
	n->owners = strmap_new();
	return n;
}

static void spec_clear(struct sched_nodespec *s)
{
	for (size_t i = 0; i < s->ntaints; i++) {
		free(s->taints[i].key);
		free(s->taints[i].value);
	}
	free(s->taints);
	y_free(s->labels);
	memset(s, 0, sizeof(*s));
}

void sched_node_free(struct sched_node *n)
{
	if (!n)
		return;
	spec_clear(&n->s);
	free(n->ports);
	strmap_free(n->owners);
	free(n->name);
	free(n);
}

static void add_taint(struct sched_nodespec *s, const char *key, const char *value,
		      const char *effect)
{
	s->taints = xrealloc(s->taints, (s->ntaints + 1) * sizeof(*s->taints));
	struct sched_taint *t = &s->taints[s->ntaints++];
	t->key = xstrdup(key);
	t->value = xstrdup(value ? value : "");
	snprintf(t->effect, sizeof(t->effect), "%s", effect ? effect : "");
}

static bool has_taint(const struct sched_nodespec *s, const char *key)
{
	for (size_t i = 0; i < s->ntaints; i++)
		if (!strcmp(s->taints[i].key, key))
			return true;
	return false;
}

/* The status of the node's Ready condition, or NULL when it has none. */
static const char *ready_status(const struct ynode *node)
{
	const struct ynode *conds = y_path(node, "status.conditions");

	for (size_t i = 0; conds && conds->type == Y_SEQ && i < conds->n; i++) {
		const char *type = y_path_str(conds->v[i], "type");
		if (type && !strcmp(type, "Ready"))
			return y_path_str(conds->v[i], "status");
	}
	return NULL;
}

/* The spec's taints, and the one Kubernetes adds to a node that is not
 * Ready (unless the node carries it already). */
static void read_taints(struct sched_nodespec *s, const struct ynode *node)
{
	const struct ynode *taints = y_path(node, "spec.taints");
	const char *ready = ready_status(node);
	const char *implied = NULL;

	for (size_t i = 0; taints && taints->type == Y_SEQ && i < taints->n; i++) {
		const char *key = y_path_str(taints->v[i], "key");
		if (key)
			add_taint(s, key, y_path_str(taints->v[i], "value"),
				  y_path_str(taints->v[i], "effect"));
	}
	if (!ready || strcmp(ready, "True"))
		implied = ready && !strcmp(ready, "Unknown") ? SCHED_TAINT_UNREACHABLE
							     : SCHED_TAINT_NOT_READY;
	if (implied && !has_taint(s, implied))
		add_taint(s, implied, "", "NoSchedule");
}

/* status.allocatable's quantity for res, else status.capacity's; 0 when neither. */
static int64_t node_qty(const struct ynode *node, const char *res)
{
	const char *q = y_path_str(y_path(node, "status.allocatable"), res);
	int64_t milli;

	if (!q)
		q = y_path_str(y_path(node, "status.capacity"), res);
	return q && parse_quantity(q, &milli) == 0 ? milli : 0;
}

static void spec_read(struct sched_nodespec *s, const struct ynode *node)
{
	const struct ynode *u = y_path(node, "spec.unschedulable");
	const struct ynode *labels = y_path(node, "metadata.labels");

	s->present = true;
	s->unschedulable = u && u->type == Y_BOOL && u->i;
	s->labels = labels && labels->type == Y_MAP ? y_clone(labels) : NULL;
	read_taints(s, node);
	s->alloc.cpu = node_qty(node, "cpu");
	s->alloc.mem = node_qty(node, "memory") / 1000;
	s->alloc_pods = node_qty(node, "pods") / 1000;
}

static bool taints_equal(const struct sched_nodespec *a, const struct sched_nodespec *b)
{
	if (a->ntaints != b->ntaints)
		return false;
	for (size_t i = 0; i < a->ntaints; i++) {
		const struct sched_taint *x = &a->taints[i], *y = &b->taints[i];
		if (strcmp(x->key, y->key) || strcmp(x->value, y->value) ||
		    strcmp(x->effect, y->effect))
			return false;
	}
	return true;
}

static bool spec_equal(const struct sched_nodespec *a, const struct sched_nodespec *b)
{
	return a->present == b->present && a->unschedulable == b->unschedulable &&
	       y_equal(a->labels, b->labels) && taints_equal(a, b) &&
	       a->alloc.cpu == b->alloc.cpu && a->alloc.mem == b->alloc.mem &&
	       a->alloc_pods == b->alloc_pods;
}

bool sched_node_update(struct sched_node *n, const struct ynode *node)
{
	struct sched_nodespec s = {0};

	if (node)
		spec_read(&s, node);
	bool same = spec_equal(&n->s, &s);
	spec_clear(&n->s);
	n->s = s;
	return !same;
}

static bool port_equal(const struct sched_port *a, const struct sched_port *b)
{
	return a->port == b->port && !strcmp(a->proto, b->proto) && !strcmp(a->ip, b->ip);
}

static void owner_add(struct sched_node *n, const char *owner, intptr_t delta)
{
	intptr_t count = (intptr_t)strmap_get(n->owners, owner) + delta;

	if (count > 0)
		strmap_put(n->owners, owner, (void *)count);
	else
		strmap_del(n->owners, owner);
}

void sched_node_add(struct sched_node *n, const struct sched_claim *cl)
{
	res_add(&n->req, cl->req);
	res_add(&n->nonzero, cl->nonzero);
	n->pods++;
	for (size_t i = 0; i < cl->nports; i++)
		add_port(&n->ports, &n->nports, &cl->ports[i]);
	if (cl->owner)
		owner_add(n, cl->owner, 1);
}

void sched_node_sub(struct sched_node *n, const struct sched_claim *cl)
{
	n->req.cpu -= cl->req.cpu;
	n->req.mem -= cl->req.mem;
	n->nonzero.cpu -= cl->nonzero.cpu;
	n->nonzero.mem -= cl->nonzero.mem;
	n->pods--;
	for (size_t i = 0; i < cl->nports; i++) {
		for (size_t j = 0; j < n->nports; j++) {
			if (port_equal(&n->ports[j], &cl->ports[i])) {
				n->ports[j] = n->ports[--n->nports];
				break;
			}
		}
	}
	if (cl->owner)
		owner_add(n, cl->owner, -1);
}

int64_t sched_node_owned(const struct sched_node *n, const char *owner)
{
	return owner && strmap_count(n->owners) ? (intptr_t)strmap_get(n->owners, owner) : 0;
}
