/*
 * endpoints.c: the Endpoints controller.
 *
 * For each Service with a selector it keeps endpoints/NAME.yaml, as
 * Kubernetes' endpoints controller does: the pods the selector matches
 * that have a podIP, are not finished and are not being deleted, ready
 * ones (condition Ready True) in `addresses` and the rest in
 * `notReadyAddresses`, each with the ports of the service resolved
 * against that pod (a number as is, a name looked up in the pod's
 * containers' ports with the same protocol; a pod without the named port
 * is left out for that port). Pods with the same resolved ports share a
 * subset. The Endpoints carry the service's labels and an ownerReference
 * to it, and are deleted with it.
 *
 *   service, pod or endpoints event
 *     -> changed(): the services it concerns are queued ("services/NS/NAME")
 *     -> reconcile: the wanted Endpoints are built from the cache and
 *        compared with the file; it is written only when they differ
 *
 * A Service without a selector (or of type ExternalName) is left alone:
 * its Endpoints are the user's. Pods' status changes often, so a pod's
 * change queues nothing unless what the Endpoints show of it changed.
 */
#define _GNU_SOURCE
#include "controllers.h"

#include <errno.h>
#include <fcntl.h>

#include "owners.h"

static const char *const watched[] = {"services", "pods", "endpoints", NULL};

#define HEADLESS_LABEL "service.kubernetes.io/headless"

static void queue_service(struct ctl *c, const char *ns, const char *name)
{
	cleanup_free char *key = obj_key(kind_by_plural("services"), ns, name);
	ctl_queue(c, key);
}

/* Whether the parts of a pod its Endpoints show, or that decide whether it
 * is shown, are the same in a and b. */
static bool pod_same_for_endpoints(const struct ynode *a, const struct ynode *b)
{
	static const char *const paths[] = {"metadata.labels",
					    "metadata.deletionTimestamp",
					    "spec",
					    "status.podIP",
					    "status.phase",
					    NULL};

	for (int i = 0; paths[i]; i++)
		if (!y_equal(y_path(a, paths[i]), y_path(b, paths[i])))
			return false;
	return pod_ready(a) == pod_ready(b);
}

struct pod_change {
	const struct ynode *now, *before;
};

static void queue_if_selects(struct ctl *c, const char *ns, const char *name,
			     const struct ynode *svc, void *arg)
{
	struct pod_change *pc = arg;
	const struct ynode *map = y_path(svc, "spec.selector");
	struct selector *sel = NULL;

	if (!map || map->type != Y_MAP || map->n == 0 ||
	    sel_from_doc(map, "spec.selector", &sel, NULL) < 0)
		return;
	if ((pc->now && sel_matches(sel, y_path(pc->now, "metadata.labels"))) ||
	    (pc->before && sel_matches(sel, y_path(pc->before, "metadata.labels"))))
		queue_service(c, ns, name);
	sel_free(sel);
}

static void ep_changed(struct ctl *c, const struct kind *k, const char *ns, const char *name,
		       const struct ynode *now, const struct ynode *before)
{
	struct pod_change pc = {now, before};

	if (strcmp(k->plural, "pods")) {
		/* a service, or the Endpoints of the service of that name */
		queue_service(c, ns, name);
		return;
	}
	if (now && before && pod_same_for_endpoints(now, before))
		return;
	ctl_each(c, kind_by_plural("services"), ns, queue_if_selects, &pc);
}

/* One pod's place in the Endpoints: its address and its resolved ports. */
struct member {
	struct ynode *addr;
	bool ready;
	struct ynode *ports; /* a list of EndpointPorts */
	char *group;	     /* the ports as text: members with equal ones share a subset */
};

/* What one reconcile builds. */
struct wanted {
	const char *svc_name;
	const struct ynode *ports; /* the service's spec.ports, or NULL */
	struct selector *sel;
	bool publish_not_ready;
	bool headless;
	struct member *m;
	size_t n;
};

/* The container port a service port's targetPort names in pod, or 0. */
static int64_t resolve_port(const struct ynode *pod, const struct ynode *svc_port)
{
	const struct ynode *target = y_get(svc_port, "targetPort");
	const char *proto = y_path_str(svc_port, "protocol");
	const struct ynode *containers = y_path(pod, "spec.containers");

	if (!target)
		target = y_get(svc_port, "port");
	if (target && target->type == Y_INT)
		return target->i;
	if (!target || target->type != Y_STR)
		return 0;
	for (size_t i = 0; containers && containers->type == Y_SEQ && i < containers->n; i++) {
		const struct ynode *ports = y_get(containers->v[i], "ports");
		for (size_t j = 0; ports && ports->type == Y_SEQ && j < ports->n; j++) {
			const char *name = y_path_str(ports->v[j], "name");
			const char *p = y_path_str(ports->v[j], "protocol");
			const struct ynode *num = y_get(ports->v[j], "containerPort");
			if (name && !strcmp(name, target->str) && num && num->type == Y_INT &&
			    !strcmp(p ? p : "TCP", proto ? proto : "TCP"))
				return num->i;
		}
	}
	return 0;
}

static struct ynode *endpoint_port(const struct ynode *svc_port, int64_t port)
{
	struct ynode *ep = y_map();
	const char *name = y_path_str(svc_port, "name");
	const char *proto = y_path_str(svc_port, "protocol");
	const char *app = y_path_str(svc_port, "appProtocol");

	if (name && *name)
		y_set(ep, "name", y_str(name));
	y_set(ep, "port", y_int(port));
	y_set(ep, "protocol", y_str(proto ? proto : "TCP"));
	if (app)
		y_set(ep, "appProtocol", y_str(app));
	return ep;
}

static struct ynode *pod_address(const char *ns, const char *name, const struct ynode *pod,
				 const char *svc_name)
{
	struct ynode *addr = y_map(), *ref = y_map();
	const char *node = y_path_str(pod, "spec.nodeName");
	const char *host = y_path_str(pod, "spec.hostname");
	const char *sub = y_path_str(pod, "spec.subdomain");

	y_set(addr, "ip", y_str(y_path_str(pod, "status.podIP")));
	if (host && *host && sub && !strcmp(sub, svc_name))
		y_set(addr, "hostname", y_str(host));
	if (node && *node)
		y_set(addr, "nodeName", y_str(node));
	y_set(ref, "kind", y_str("Pod"));
	y_set(ref, "namespace", y_str(ns));
	y_set(ref, "name", y_str(name));
	y_set(ref, "uid", y_str(y_path_str(pod, "metadata.uid")));
	y_set(addr, "targetRef", ref);
	return addr;
}

/* Whether the pod belongs in the Endpoints at all, as Kubernetes' ShouldPodBeInEndpoints. */
static bool pod_listed(const struct ynode *pod, bool publish_not_ready)
{
	const char *ip = y_path_str(pod, "status.podIP");
	const char *phase = y_path_str(pod, "status.phase");

	if (!ip || !*ip)
		return false;
	if (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")))
		return false;
	return publish_not_ready || !y_path(pod, "metadata.deletionTimestamp");
}

static void add_pod(struct ctl *c, const char *ns, const char *name, const struct ynode *pod,
		    void *arg)
{
	struct wanted *w = arg;
	struct strbuf group = {0};
	struct ynode *ports = y_seq();

	if (!sel_matches(w->sel, y_path(pod, "metadata.labels")) ||
	    !pod_listed(pod, w->publish_not_ready)) {
		y_free(ports);
		return;
	}
	for (size_t i = 0; w->ports && w->ports->type == Y_SEQ && i < w->ports->n; i++) {
		int64_t port = resolve_port(pod, w->ports->v[i]);
		if (port <= 0)
			continue; /* the pod lacks the named port */
		y_push(ports, endpoint_port(w->ports->v[i], port));
		sb_printf(&group, "%zu:%lld,", i, (long long)port);
	}
	/* A headless service without ports lists bare addresses. */
	if (ports->n == 0 && !(w->headless && (!w->ports || w->ports->n == 0))) {
		y_free(ports);
		sb_free(&group);
		return;
	}
	w->m = xrealloc(w->m, (w->n + 1) * sizeof(*w->m));
	w->m[w->n++] = (struct member){
		.addr = pod_address(ns, name, pod, w->svc_name),
		.ready = w->publish_not_ready || pod_ready(pod),
		.ports = ports,
		.group = sb_steal(&group, NULL),
	};
}

/* Subsets in the order of their ports, addresses by IP (then by pod name). */
static int cmp_members(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int d = strcmp(x->group, y->group);

	if (d)
		return d;
	d = strverscmp(y_path_str(x->addr, "ip"), y_path_str(y->addr, "ip"));
	return d ? d
		 : strcmp(y_path_str(x->addr, "targetRef.name"),
			  y_path_str(y->addr, "targetRef.name"));
}

/* Moves the members into subsets (they are consumed); NULL when there are none. */
static struct ynode *subsets_of(struct wanted *w)
{
	struct ynode *subsets = y_seq();

	if (w->n == 0) {
		y_free(subsets);
		return NULL;
	}
	qsort(w->m, w->n, sizeof(*w->m), cmp_members);
	for (size_t i = 0; i < w->n;) {
		struct ynode *s = y_map(), *ready = y_seq(), *not_ready = y_seq();
		size_t j = i;
		for (; j < w->n && !strcmp(w->m[j].group, w->m[i].group); j++) {
			y_push(w->m[j].ready ? ready : not_ready, w->m[j].addr);
			w->m[j].addr = NULL;
		}
		if (ready->n)
			y_set(s, "addresses", ready);
		else
			y_free(ready);
		if (not_ready->n)
			y_set(s, "notReadyAddresses", not_ready);
		else
			y_free(not_ready);
		if (w->m[i].ports->n)
			y_set(s, "ports", y_clone(w->m[i].ports));
		y_push(subsets, s);
		i = j;
	}
	return subsets;
}

static void wanted_free(struct wanted *w)
{
	for (size_t i = 0; i < w->n; i++) {
		y_free(w->m[i].addr);
		y_free(w->m[i].ports);
		free(w->m[i].group);
	}
	free(w->m);
	sel_free(w->sel);
}

/* The service's labels, with the headless mark Kubernetes adds; NULL when none. */
static struct ynode *labels_of(const struct ynode *svc, bool headless)
{
	const struct ynode *have = y_path(svc, "metadata.labels");
	struct ynode *labels = have && have->type == Y_MAP ? y_clone(have) : y_map();

	y_del(labels, HEADLESS_LABEL);
	if (headless)
		y_set(labels, HEADLESS_LABEL, y_str(""));
	if (labels->n == 0) {
		y_free(labels);
		return NULL;
	}
	return labels;
}

/* An absent list or map reads the same as an empty one. */
static bool same(const struct ynode *want, const struct ynode *have)
{
	if (have && (have->type == Y_SEQ || have->type == Y_MAP) && have->n == 0)
		have = NULL;
	return y_equal(want, have);
}

/* Whether the Endpoints of name were made for a Service of that name. */
static bool managed(const struct ynode *ep, const char *name)
{
	const struct ynode *refs = y_path(ep, "metadata.ownerReferences");

	for (size_t i = 0; refs && refs->type == Y_SEQ && i < refs->n; i++) {
		const char *kind = y_path_str(refs->v[i], "kind");
		const char *owner = y_path_str(refs->v[i], "name");
		if (kind && owner && !strcmp(kind, "Service") && !strcmp(owner, name))
			return true;
	}
	return false;
}

/* Writes the Endpoints (labels, refs and subsets consumed) when they differ
 * from the file. */
static int put_endpoints(struct ctl *c, const char *ns, const char *name, struct ynode *labels,
			 struct ynode *refs, struct ynode *subsets)
{
	const struct kind *k = kind_by_plural("endpoints");
	const struct ynode *ep = ctl_get(c, k, ns, name);
	struct ynode *doc;
	int r = 0;

	if (ep && same(labels, y_path(ep, "metadata.labels")) &&
	    same(refs, y_path(ep, "metadata.ownerReferences")) &&
	    same(subsets, y_get(ep, "subsets"))) {
		y_free(labels);
		y_free(refs);
		y_free(subsets);
		return 0;
	}
	/* a copy keeps the user's annotations, and the resourceVersion guard */
	doc = ep ? y_clone(ep) : y_map();
	struct ynode *meta = y_submap(doc, "metadata");
	y_set(meta, "name", y_str(name));
	y_del(meta, "labels");
	if (labels)
		y_set(meta, "labels", labels);
	y_set(meta, "ownerReferences", refs);
	y_del(doc, "subsets");
	if (subsets)
		y_set(doc, "subsets", subsets);
	y_set(doc, "apiVersion", y_str("v1"));
	y_set(doc, "kind", y_str("Endpoints"));
	r = ctl_put(c, k, ns, name, doc, ep ? 0 : O_EXCL);
	y_free(doc);
	if (r == -EEXIST) {
		/* someone made it since the cache last heard: read it, go again */
		ctl_reload(c, k, ns, name);
		return -ESTALE;
	}
	return r;
}

/* The service is gone: so go the Endpoints made for it, and only those. */
static int service_gone(struct ctl *c, const char *ns, const char *name)
{
	const struct kind *k = kind_by_plural("endpoints");

	if (!managed(ctl_get(c, k, ns, name), name))
		return 0;
	/* a service the cache has not seen yet is not gone: its event comes */
	if (ctl_reload(c, kind_by_plural("services"), ns, name))
		return 0;
	return ctl_delete(c, k, ns, name);
}

static int sync_service(struct ctl *c, const char *ns, const char *name, const struct ynode *svc)
{
	const struct ynode *spec = y_get(svc, "spec");
	const struct ynode *map = y_get(spec, "selector");
	const struct ynode *publish = y_get(spec, "publishNotReadyAddresses");
	const char *type = y_path_str(spec, "type"), *ip = y_path_str(spec, "clusterIP");
	struct wanted w = {
		.svc_name = name,
		.ports = y_get(spec, "ports"),
		.publish_not_ready = publish && publish->type == Y_BOOL && publish->i,
		.headless = ip && !strcmp(ip, "None"),
	};

	if (!map || map->type != Y_MAP || map->n == 0 || (type && !strcmp(type, "ExternalName")))
		return 0; /* the user's to write */
	if (sel_from_doc(map, "spec.selector", &w.sel, NULL) < 0)
		return 0;
	ctl_each(c, kind_by_plural("pods"), ns, add_pod, &w);
	/* everything is taken from svc before the write, which may change the cache */
	struct ynode *subsets = subsets_of(&w);
	struct ynode *refs = y_seq();
	y_push(refs, owner_ref(svc));
	struct ynode *labels = labels_of(svc, w.headless);
	wanted_free(&w);
	return put_endpoints(c, ns, name, labels, refs, subsets);
}

static int ep_reconcile(struct ctl *c, const char *key)
{
	char buf[512];
	const struct kind *k;
	const char *ns, *name;

	if (key_split(key, buf, sizeof(buf), &k, &ns, &name) < 0)
		return 0;
	const struct ynode *svc = ctl_get(c, k, ns, name);
	return svc ? sync_service(c, ns, name, svc) : service_gone(c, ns, name);
}

static const struct ctl_ops ep_ops = {
	.name = "endpoints-controller",
	.kinds = watched,
	.changed = ep_changed,
	.reconcile = ep_reconcile,
};

struct ctl *endpoints_controller_start(const char *mount)
{
	return ctl_start(mount, &ep_ops, NULL);
}
