/*
 * test_sched.c: the scheduler's filters, scores and messages, without a
 * mount: Node and Pod objects written as YAML flow text, the pods already
 * bound among them, and the node sched_pick() chooses or the message
 * kube-scheduler would give.
 */
#include "filter.h"
#include "tap.h"

#define READY "conditions: [{type: Ready, status: 'True'}]"
#define ALLOC "cpu: '4', memory: 8Gi, pods: '110'"
/* One container with requests, as a pod spec's entry. */
#define REQ(cpu, mem)                                                                              \
	"containers: [{name: c, image: x, resources: {requests: {cpu: '" cpu "', memory: " mem     \
	"}}}]"
#define NOREQ	  "containers: [{name: c, image: x}]"
#define POD(spec) "{metadata: {name: p, namespace: default}, spec: {" spec "}}"
#define BOUND(name, node, spec)                                                                    \
	"{metadata: {name: " name ", namespace: default}, spec: {nodeName: " node ", " spec "}}"
#define OWNED(uid, spec)                                                                           \
	"{metadata: {name: p, namespace: default, ownerReferences: [{apiVersion: apps/v1, "        \
	"kind: ReplicaSet, name: rs, uid: " uid ", controller: true}]}, spec: {" spec "}}"

static struct ynode *yaml(const char *text)
{
	struct ynode **docs;
	size_t n;
	struct err e;

	if (y_parse(text, strlen(text), &docs, &n, &e) < 0 || n != 1) {
		fprintf(stderr, "bad test YAML %s: %s\n", text, e.msg);
		abort();
	}
	struct ynode *d = docs[0];
	free(docs);
	return d;
}

/* The nodes and the bound pods of one case. */
struct cluster {
	struct ynode *nodes[16], *pods[32];
	size_t nn, np;
};

static void raw_node(struct cluster *cl, const char *text)
{
	cl->nodes[cl->nn++] = yaml(text);
}

/* A Ready node; labels and spec are flow map entries, alloc its allocatable. */
static void node(struct cluster *cl, const char *name, const char *labels, const char *spec,
		 const char *alloc)
{
	cleanup_free char *t =
		xasprintf("{metadata: {name: %s, labels: {%s}}, spec: {%s}, "
			  "status: {allocatable: {%s}, " READY "}}",
			  name, labels ? labels : "", spec ? spec : "", alloc ? alloc : ALLOC);
	raw_node(cl, t);
}

static void bound(struct cluster *cl, const char *text)
{
	cl->pods[cl->np++] = yaml(text);
}

static void cluster_free(struct cluster *cl)
{
	for (size_t i = 0; i < cl->nn; i++)
		y_free(cl->nodes[i]);
	for (size_t i = 0; i < cl->np; i++)
		y_free(cl->pods[i]);
	memset(cl, 0, sizeof(*cl));
}

/* The chosen node's name, or the message; caller frees. */
static char *decide(struct cluster *cl, const char *pod_text)
{
	struct ynode *pod = yaml(pod_text);
	char *msg = NULL;
	int i = sched_pick(pod, (const struct ynode *const *)cl->nodes, cl->nn,
			   (const struct ynode *const *)cl->pods, cl->np, &msg);
	char *out = i >= 0 ? xstrdup(y_path_str(cl->nodes[i], "metadata.name")) : msg;

	y_free(pod);
	return out;
}

static void is(struct cluster *cl, const char *pod_text, const char *want, const char *what)
{
	char *got = decide(cl, pod_text);

	if (!ok(strcmp(got, want) == 0, "%s: %s", what, want))
		printf("#   got: %s\n", got);
	free(got);
}

static void test_choice(void)
{
	struct cluster cl = {0};

	is(&cl, POD(NOREQ), "no nodes available to schedule pods", "no nodes at all");
	node(&cl, "n2", NULL, NULL, NULL);
	node(&cl, "n1", NULL, NULL, NULL);
	node(&cl, "n3", NULL, NULL, NULL);
	is(&cl, POD(REQ("1", "1Gi")), "n1", "equal nodes: the first name wins");
	bound(&cl, BOUND("a", "n1", REQ("2", "1Gi")));
	is(&cl, POD(REQ("1", "1Gi")), "n2", "least allocated: the emptier node");
	bound(&cl, BOUND("b", "n2", NOREQ));
	is(&cl, POD(NOREQ), "n3", "a pod without requests still weighs in scores");
	cluster_free(&cl);
}

static void test_resources(void)
{
	struct cluster cl = {0};

	node(&cl, "n1", NULL, NULL, "cpu: '1', memory: 1Gi, pods: '110'");
	node(&cl, "n2", NULL, NULL, "cpu: 1000m, memory: 1Gi, pods: '110'");
	is(&cl, POD(REQ("2", "100Mi")), "0/2 nodes are available: 2 Insufficient cpu.",
	   "cpu request over allocatable");
	is(&cl, POD(REQ("500m", "2Gi")), "0/2 nodes are available: 2 Insufficient memory.",
	   "memory request over allocatable");
	is(&cl, POD(REQ("2", "2Gi")),
	   "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory.",
	   "both, counted each");
	is(&cl, POD(REQ("1", "1Gi")), "n1", "exactly the allocatable fits");
	cluster_free(&cl);

	node(&cl, "n1", NULL, NULL, NULL);
	bound(&cl, BOUND("a", "n1", REQ("3", "1Gi")));
	is(&cl, POD(REQ("2", "1Gi")), "0/1 nodes are available: 1 Insufficient cpu.",
	   "bound pods take their requests");
	y_set(y_submap(cl.pods[0], "metadata"), "deletionTimestamp", y_str("2026-01-01T00:00:00Z"));
	is(&cl, POD(REQ("2", "1Gi")), "0/1 nodes are available: 1 Insufficient cpu.",
	   "a terminating pod still holds them");
	y_set(y_submap(cl.pods[0], "status"), "phase", y_str("Succeeded"));
	is(&cl, POD(REQ("2", "1Gi")), "n1", "a Succeeded pod holds nothing");
	y_set(y_submap(cl.pods[0], "status"), "phase", y_str("Failed"));
	is(&cl, POD(REQ("2", "1Gi")), "n1", "nor a Failed one");
	bound(&cl, BOUND("b", "elsewhere", REQ("3", "1Gi")));
	is(&cl, POD(REQ("2", "1Gi")), "n1", "pods of other nodes do not count");
	cluster_free(&cl);
}

static void test_pod_count_and_forms(void)
{
	struct cluster cl = {0};

	node(&cl, "n1", NULL, NULL, "cpu: '4', memory: 8Gi, pods: '2'");
	bound(&cl, BOUND("a", "n1", NOREQ));
	is(&cl, POD(NOREQ), "n1", "room for one more pod");
	bound(&cl, BOUND("b", "n1", NOREQ));
	is(&cl, POD(NOREQ), "0/1 nodes are available: 1 Too many pods.",
	   "pods without requests count as pods");
	is(&cl, POD(REQ("8", "1Gi")),
	   "0/1 nodes are available: 1 Insufficient cpu, 1 Too many pods.",
	   "too many pods and cpu together");
	cluster_free(&cl);

	raw_node(&cl, "{metadata: {name: n1}, status: {capacity: {cpu: '2', memory: 2Gi, pods: "
		      "'5'}, " READY "}}");
	is(&cl, POD(REQ("2", "2Gi")), "n1", "capacity stands in for a missing allocatable");
	is(&cl, POD("containers: [{name: c, image: x, resources: {limits: {cpu: '3'}}}]"),
	   "0/1 nodes are available: 1 Insufficient cpu.", "limits stand in for missing requests");
	is(&cl,
	   POD("initContainers: [{name: i, image: x, resources: {requests: {cpu: '3'}}}], " REQ(
		   "1", "1Gi")),
	   "0/1 nodes are available: 1 Insufficient cpu.",
	   "an init container asking more than the containers sets the request");
	is(&cl,
	   POD("initContainers: [{name: i, image: x, resources: {requests: {cpu: '2'}}}], " REQ(
		   "1", "1Gi")),
	   "n1", "init containers are not added to the containers");
	is(&cl,
	   POD("initContainers: [{name: s, image: x, restartPolicy: Always, resources: {requests: "
	       "{cpu: '1500m'}}}], " REQ("1", "1Gi")),
	   "0/1 nodes are available: 1 Insufficient cpu.", "a sidecar runs alongside: added");
	is(&cl, POD("overhead: {cpu: 1500m}, " REQ("1", "1Gi")),
	   "0/1 nodes are available: 1 Insufficient cpu.", "overhead is added");
	cluster_free(&cl);
}

static void test_unschedulable_and_order(void)
{
	struct cluster cl = {0};

	node(&cl, "n1", NULL, "unschedulable: true", NULL);
	node(&cl, "n2", NULL, "unschedulable: true, taints: [{key: a, effect: NoSchedule}]", NULL);
	is(&cl, POD(NOREQ), "0/2 nodes are available: 2 node(s) were unschedulable.",
	   "cordoned nodes, first filter wins over a taint");
	is(&cl,
	   POD("tolerations: [{key: node.kubernetes.io/unschedulable, operator: Exists, effect: "
	       "NoSchedule}], " NOREQ),
	   "n1", "a toleration of node.kubernetes.io/unschedulable passes a cordon");
	cluster_free(&cl);

	node(&cl, "n1", NULL, NULL, "cpu: '1', memory: 1Gi, pods: '110'");
	node(&cl, "n2", NULL, NULL, "cpu: '1', memory: 1Gi, pods: '110'");
	node(&cl, "n3", NULL, "taints: [{key: dedicated, value: gpu, effect: NoSchedule}]", NULL);
	is(&cl, POD(REQ("2", "100Mi")),
	   "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 "
	   "Insufficient cpu.",
	   "reasons counted and sorted as kube-scheduler sorts them");
	cluster_free(&cl);

	for (int i = 0; i < 10; i++) {
		char name[16];
		snprintf(name, sizeof(name), "m%d", i);
		node(&cl, name, NULL, NULL, "cpu: '1', memory: 1Gi, pods: '110'");
	}
	node(&cl, "c1", NULL, "unschedulable: true", NULL);
	node(&cl, "c2", NULL, "unschedulable: true", NULL);
	is(&cl, POD(REQ("2", "100Mi")),
	   "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable.",
	   "sorted as strings: 10 before 2");
	cluster_free(&cl);
}

/* Whether a pod with these tolerations fits a node with this one taint. */
static bool tolerated(const char *taint, const char *tolerations)
{
	struct cluster cl = {0};
	cleanup_free char *spec = xasprintf("taints: [%s]", taint);
	cleanup_free char *pod = xasprintf(POD("tolerations: [%s], " NOREQ), tolerations);

	node(&cl, "n1", NULL, spec, NULL);
	char *got = decide(&cl, pod);
	bool fits = !strcmp(got, "n1");
	free(got);
	cluster_free(&cl);
	return fits;
}

static void test_taints(void)
{
	const char *gpu = "{key: dedicated, value: gpu, effect: NoSchedule}";

	ok(!tolerated(gpu, ""), "no toleration: rejected");
	ok(tolerated(gpu, "{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}"),
	   "Equal with the value");
	ok(tolerated(gpu, "{key: dedicated, value: gpu}"), "Equal by default, any effect");
	ok(!tolerated(gpu, "{key: dedicated, operator: Equal, value: cpu}"), "Equal, other value");
	ok(tolerated(gpu, "{key: dedicated, operator: Exists}"), "Exists: any value");
	ok(tolerated(gpu, "{operator: Exists}"), "empty key with Exists: everything");
	ok(!tolerated(gpu, "{key: other, operator: Exists}"), "Exists, other key");
	ok(!tolerated(gpu, "{key: dedicated, operator: Exists, effect: NoExecute}"),
	   "another effect does not tolerate");
	ok(!tolerated("{key: k, effect: NoExecute}", ""), "NoExecute needs a toleration");
	ok(tolerated("{key: k, effect: NoExecute}",
		     "{key: k, operator: Exists, effect: NoExecute}"),
	   "NoExecute tolerated");
	ok(tolerated("{key: k, effect: PreferNoSchedule}", ""), "PreferNoSchedule does not filter");
	ok(sched_tolerates(NULL, "k", "", "NoSchedule") == false, "no tolerations at all");

	struct cluster cl = {0};
	node(&cl, "n1", NULL, "taints: [{key: dedicated, value: gpu, effect: NoSchedule}]", NULL);
	is(&cl, POD(NOREQ),
	   "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.",
	   "the taint's message");
	cluster_free(&cl);
}

static void test_not_ready(void)
{
	struct cluster cl = {0};
	const char *not_ready = "0/1 nodes are available: 1 node(s) had untolerated taint "
				"{node.kubernetes.io/not-ready: }.";

	raw_node(&cl, "{metadata: {name: n1}, status: {allocatable: {" ALLOC "}, conditions: "
		      "[{type: Ready, status: 'False'}]}}");
	is(&cl, POD(NOREQ), not_ready, "Ready False: the not-ready taint");
	is(&cl, POD("tolerations: [{key: node.kubernetes.io/not-ready, operator: Exists}], " NOREQ),
	   "n1", "which a toleration lets through");
	cluster_free(&cl);
	raw_node(&cl, "{metadata: {name: n1}, status: {allocatable: {" ALLOC "}}}");
	is(&cl, POD(NOREQ), not_ready, "no Ready condition: not ready either");
	cluster_free(&cl);
	raw_node(&cl, "{metadata: {name: n1}, status: {allocatable: {" ALLOC "}, conditions: "
		      "[{type: Ready, status: Unknown}]}}");
	is(&cl, POD(NOREQ),
	   "0/1 nodes are available: 1 node(s) had untolerated taint "
	   "{node.kubernetes.io/unreachable: }.",
	   "Ready Unknown: unreachable");
	cluster_free(&cl);
}

/* Whether a pod with this spec entry fits a node with these labels. */
static bool matches(const char *labels, const char *spec)
{
	struct cluster cl = {0};
	cleanup_free char *pod = xasprintf(POD("%s, " NOREQ), spec);

	node(&cl, "n1", labels, NULL, NULL);
	char *got = decide(&cl, pod);
	bool fits = !strcmp(got, "n1");
	if (!fits && strcmp(got, "0/1 nodes are available: 1 node(s) didn't match Pod's node "
				 "affinity/selector."))
		printf("#   unexpected: %s\n", got);
	free(got);
	cluster_free(&cl);
	return fits;
}

#define REQUIRED(terms)                                                                            \
	"affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "               \
	"{nodeSelectorTerms: [" terms "]}}}"
#define EXPR(key, op, values) "{key: " key ", operator: " op ", values: [" values "]}"
#define TERM(exprs)	      "{matchExpressions: [" exprs "]}"

static void test_affinity(void)
{
	const char *l = "disk: ssd, zone: a, cores: '8', kubernetes.io/hostname: n1";

	ok(matches(l, "nodeSelector: {disk: ssd}"), "nodeSelector matches");
	ok(matches(l, "nodeSelector: {disk: ssd, kubernetes.io/hostname: n1}"),
	   "nodeSelector with a dotted key");
	ok(!matches(l, "nodeSelector: {disk: hdd}"), "nodeSelector, other value");
	ok(!matches(l, "nodeSelector: {gpu: 'true'}"), "nodeSelector, missing label");
	ok(matches(l, REQUIRED(TERM(EXPR("zone", "In", "a, b")))), "In");
	ok(!matches(l, REQUIRED(TERM(EXPR("zone", "In", "b")))), "In, not there");
	ok(matches(l, REQUIRED(TERM(EXPR("zone", "NotIn", "b")))), "NotIn");
	ok(matches(l, REQUIRED(TERM(EXPR("rack", "NotIn", "b")))), "NotIn, label missing");
	ok(!matches(l, REQUIRED(TERM(EXPR("zone", "NotIn", "a")))), "NotIn, there");
	ok(matches(l, REQUIRED(TERM("{key: disk, operator: Exists}"))), "Exists");
	ok(!matches(l, REQUIRED(TERM("{key: gpu, operator: Exists}"))), "Exists, missing");
	ok(matches(l, REQUIRED(TERM("{key: gpu, operator: DoesNotExist}"))), "DoesNotExist");
	ok(!matches(l, REQUIRED(TERM("{key: disk, operator: DoesNotExist}"))),
	   "DoesNotExist, there");
	ok(matches(l, REQUIRED(TERM(EXPR("cores", "Gt", "'4'")))), "Gt");
	ok(!matches(l, REQUIRED(TERM(EXPR("cores", "Gt", "'8'")))), "Gt is strict");
	ok(matches(l, REQUIRED(TERM(EXPR("cores", "Lt", "'16'")))), "Lt");
	ok(!matches(l, REQUIRED(TERM(EXPR("zone", "Lt", "'16'")))), "Lt on a non-number");
	ok(!matches(l, REQUIRED(TERM(EXPR("cores", "Gt", "'4', '5'")))), "Gt needs one value");
	ok(matches(l, REQUIRED(TERM(EXPR("zone", "In", "a")) ", " TERM(EXPR("zone", "In", "b")))),
	   "terms are ORed");
	ok(matches(l, REQUIRED(TERM(EXPR("zone", "In", "b")) ", " TERM(EXPR("zone", "In", "a")))),
	   "terms are ORed, either order");
	ok(!matches(l, REQUIRED(TERM(EXPR("zone", "In", "a") ", " EXPR("disk", "In", "hdd")))),
	   "expressions are ANDed");
	ok(matches(l, REQUIRED(TERM(EXPR("zone", "In", "a") ", " EXPR("disk", "In", "ssd")))),
	   "expressions are ANDed, all true");
	ok(!matches(l, REQUIRED("{}")), "an empty term matches nothing");
	ok(!matches(l, REQUIRED("")), "no terms match nothing");
	ok(matches(l, REQUIRED("{matchFields: [" EXPR("metadata.name", "In", "n1") "]}")),
	   "matchFields on metadata.name");
	ok(!matches(l, REQUIRED("{matchFields: [" EXPR("metadata.name", "NotIn", "n1") "]}")),
	   "matchFields NotIn");
	ok(!matches(l, "nodeSelector: {disk: hdd}, " REQUIRED(TERM(EXPR("zone", "In", "a")))),
	   "nodeSelector and affinity must both match");
}

static void test_node_name(void)
{
	struct cluster cl = {0};

	node(&cl, "n1", NULL, NULL, NULL);
	node(&cl, "n2", NULL, NULL, NULL);
	is(&cl, POD("nodeName: n2, " NOREQ), "n2", "NodeName picks its node");
	is(&cl, POD("nodeName: n9, " NOREQ),
	   "0/2 nodes are available: 2 node(s) didn't match the requested node name.",
	   "NodeName of no node");
	cluster_free(&cl);
}

#define PORT(spec) "containers: [{name: c, image: x, ports: [" spec "]}]"

static void test_ports(void)
{
	struct cluster cl = {0};
	const char *busy = "0/1 nodes are available: 1 node(s) didn't have free ports for the "
			   "requested pod ports.";

	node(&cl, "n1", NULL, NULL, NULL);
	bound(&cl, BOUND("a", "n1", PORT("{containerPort: 80, hostPort: 8080}")));
	is(&cl, POD(PORT("{containerPort: 80, hostPort: 8080}")), busy, "the same host port");
	is(&cl, POD(PORT("{containerPort: 80, hostPort: 8081}")), "n1", "another host port");
	is(&cl, POD(PORT("{containerPort: 8080}")), "n1", "a container port only");
	is(&cl, POD(PORT("{containerPort: 80, hostPort: 8080, protocol: UDP}")), "n1",
	   "another protocol");
	is(&cl, POD(PORT("{containerPort: 80, hostPort: 8080, hostIP: 10.0.0.1}")), busy,
	   "an address against the wildcard");
	is(&cl, POD("hostNetwork: true, " PORT("{containerPort: 8080}")), busy,
	   "hostNetwork: the container port is a host port");
	cluster_free(&cl);

	node(&cl, "n1", NULL, NULL, NULL);
	bound(&cl, BOUND("a", "n1", PORT("{containerPort: 80, hostPort: 80, hostIP: 10.0.0.1}")));
	is(&cl, POD(PORT("{containerPort: 80, hostPort: 80, hostIP: 10.0.0.2}")), "n1",
	   "two addresses do not conflict");
	is(&cl, POD(PORT("{containerPort: 80, hostPort: 80}")), busy,
	   "the wildcard against an address");
	node(&cl, "n2", NULL, NULL, NULL);
	is(&cl, POD(PORT("{containerPort: 80, hostPort: 80}")), "n2", "another node is free");
	cluster_free(&cl);
}

static void test_scores(void)
{
	struct cluster cl = {0};

	node(&cl, "big", NULL, NULL, "cpu: '64', memory: 256Gi, pods: '110'");
	node(&cl, "small", NULL, NULL, NULL);
	bound(&cl, "{metadata: {name: a, namespace: default, ownerReferences: [{apiVersion: "
		   "apps/v1, kind: ReplicaSet, name: rs, uid: u1, controller: true}]}, "
		   "spec: {nodeName: big, " NOREQ "}}");
	is(&cl, POD(NOREQ), "big", "least allocated prefers the big node");
	is(&cl, OWNED("u1", NOREQ), "small", "spreading: away from the owner's pods");
	is(&cl, OWNED("u2", NOREQ), "big", "another owner has nothing to spread from");
	cluster_free(&cl);

	node(&cl, "n1", "zone: a", NULL, NULL);
	node(&cl, "n2", "zone: b", NULL, NULL);
	is(&cl,
	   POD("affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: "
	       "[{weight: 10, preference: " TERM(EXPR("zone", "In", "b")) "}]}}, " NOREQ),
	   "n2", "preferred affinity");
	is(&cl,
	   POD("affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: "
	       "[{weight: 30, preference: " TERM(
		       EXPR("zone", "In", "a")) "}, {weight: 20, "
						"preference: " TERM(
							EXPR("zone", "In", "b")) "}]}}, " NOREQ),
	   "n1", "preferred affinity: the heavier term");
	cluster_free(&cl);

	node(&cl, "n1", NULL, "taints: [{key: spot, value: 'yes', effect: PreferNoSchedule}]",
	     NULL);
	node(&cl, "n2", NULL, NULL, NULL);
	is(&cl, POD(NOREQ), "n2", "PreferNoSchedule: avoided");
	is(&cl, POD("tolerations: [{key: spot, operator: Exists}], " NOREQ), "n1",
	   "PreferNoSchedule tolerated: back to name order");
	cluster_free(&cl);
}

static void test_node_update(void)
{
	struct sched_node *n = sched_node_new("n1");
	struct ynode *doc = yaml("{metadata: {name: n1, labels: {a: b}}, status: {allocatable: "
				 "{" ALLOC "}, conditions: [{type: Ready, status: 'True', "
				 "lastHeartbeatTime: t1}]}}");

	ok(sched_node_update(n, doc), "a new node is a change");
	ok(n->s.present && n->s.alloc.cpu == 4000 && n->s.alloc.mem == 8LL << 30 &&
		   n->s.alloc_pods == 110,
	   "allocatable read: 4000m, 8Gi, 110 pods");
	y_set(y_path(doc, "status.conditions")->v[0], "lastHeartbeatTime", y_str("t2"));
	ok(!sched_node_update(n, doc), "a heartbeat is not");
	y_set(y_path(doc, "metadata.labels"), "a", y_str("c"));
	ok(sched_node_update(n, doc), "a label is");
	y_set(y_path(doc, "status.conditions")->v[0], "status", y_str("False"));
	ok(sched_node_update(n, doc) && n->s.ntaints == 1, "Ready False is, with a taint");
	ok(sched_node_update(n, NULL) && !n->s.present, "deletion is");

	struct ynode *pod =
		yaml(OWNED("u1", "nodeName: n1, " PORT("{containerPort: 1, hostPort: 1}")));
	struct sched_claim cl;
	sched_claim_read(&cl, pod);
	sched_node_add(n, &cl);
	ok(n->pods == 1 && n->nports == 1 && sched_node_owned(n, "u1") == 1 &&
		   n->nonzero.cpu == SCHED_DEFAULT_MILLI_CPU && n->req.cpu == 0,
	   "a claim adds a pod, its port, its owner, non-zero defaults for scoring");
	sched_node_sub(n, &cl);
	ok(n->pods == 0 && n->nports == 0 && sched_node_owned(n, "u1") == 0 &&
		   n->nonzero.cpu == 0 && n->nonzero.mem == 0,
	   "and taking it back leaves nothing");
	sched_claim_clear(&cl);
	y_free(pod);
	y_free(doc);
	sched_node_free(n);
	sched_node_free(NULL);
}

static void pending_is(const char *text, bool want, const char *what)
{
	struct ynode *pod = yaml(text);
	ok(sched_pod_pending(pod) == want, "%s", what);
	y_free(pod);
}

static void test_pending(void)
{
	pending_is(POD(NOREQ), true, "a pod without a node waits");
	pending_is(POD("nodeName: n1, " NOREQ), false, "a bound pod does not");
	pending_is("{metadata: {name: p, deletionTimestamp: '2026-01-01T00:00:00Z'}, spec: "
		   "{" NOREQ "}}",
		   false, "a pod being deleted does not");
	pending_is(POD("schedulerName: other, " NOREQ), false, "another scheduler's pod does not");
	pending_is(POD("schedulerName: default-scheduler, " NOREQ), true,
		   "default-scheduler's does");
	pending_is("{metadata: {name: p}, spec: {" NOREQ "}, status: {phase: Failed}}", false,
		   "a finished pod does not");
	pending_is(POD("schedulingGates: [{name: wait}], " NOREQ), false, "a gated pod does not");
	pending_is(POD("schedulingGates: [], " NOREQ), true, "an empty gate list holds nothing");
}

int main(void)
{
	test_choice();
	test_resources();
	test_pod_count_and_forms();
	test_unschedulable_and_order();
	test_taints();
	test_not_ready();
	test_affinity();
	test_node_name();
	test_ports();
	test_scores();
	test_node_update();
	test_pending();
	return done_testing();
}
