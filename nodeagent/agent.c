/*
 * agent.c: the node agent: nodes registered and kept Ready, pods bound to
 * them run by the runtime and their status written back.
 *
 * Everything happens on one controller thread (controllers/ctl.h) that
 * watches pods and nodes through the view, however many nodes the process
 * runs, so a thousand simulated nodes cost one inotify descriptor and one
 * cache. Keys are the framework's ("nodes//NAME", "pods/NS/NAME"):
 *
 *   tick, every node in turn (spread over the heartbeat period),
 *   or our nodes/NAME.yaml deleted      -> node_sync(): the node read from
 *       the cache, our labels and status set over it (an admin's spec and
 *       other labels kept), written back with its resourceVersion
 *   a pod bound to one of our nodes      -> pod_sync(): an address from the
 *       node's range, started in the runtime, its status (phase,
 *       conditions, containerStatuses, IPs) written with the pod's
 *       resourceVersion when it differs; deletionTimestamp set: stopped,
 *       and the file removed; gone or bound elsewhere: stopped, forgotten
 *   a service or its endpoints changed  -> with the crun runtime only,
 *       proxy.c rewrites the node's nftables table on the next tick, and
 *       dns.c the names its dnsmasq answers
 *
 * A stale resourceVersion fails the write with -ESTALE; the framework has
 * already re-read the object and queues the key again. Our own writes come
 * back as inotify events; they reconcile to "nothing to write", so there
 * is no loop.
 *
 * Each node has a pod range: its spec.podCIDR when an admin (or an earlier
 * run) set one, else a /20 in 10.0.0.0/8 picked by the node's slot, which
 * is then written to spec.podCIDR. The slot (a hash of the name, plus the
 * index with --nodes) also gives a simulated node's made-up InternalIP in
 * 172.16.0.0/12; a real node has the host's address (cfg->node_ip). Slots
 * are unique within one process; across processes they are only likely to
 * differ.
 */
#define _GNU_SOURCE
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "dns.h"
#include "owners.h"
#include "proxy.h"

#if defined(__x86_64__)
#define AGENT_ARCH "amd64"
#elif defined(__aarch64__)
#define AGENT_ARCH "arm64"
#else
#define AGENT_ARCH "unknown"
#endif

/* A node's pod addresses: base .. base+size-1, without the network, the
 * gateway (.1) and the broadcast address. */
struct agent_range {
	uint32_t base, size; /* host byte order */
	uint8_t *used;	     /* one bit per address */
	uint32_t next;	     /* where the next search starts: freed addresses rest */
	char cidr[32];
};

struct agent_node {
	char *name;
	unsigned slot;
	char ip[INET_ADDRSTRLEN]; /* InternalIP */
	int64_t next_beat;	  /* monotonic ms; 0: not yet registered */
	bool prepared;		  /* range chosen */
	struct agent_range range;
	int failing; /* the errno its last heartbeat failed with, said once */
};

/* A pod the agent has taken on. */
struct agent_pod {
	char *uid;
	struct agent_node *node;
	uint32_t ip;  /* 0 with host networking */
	int grace_s;  /* spec.terminationGracePeriodSeconds */
	bool started; /* the runtime accepted it */
};

struct agent {
	struct ctl_ops ops;
	struct ctl *ctl;
	/* Everything below is the controller thread's once ctl_start() ran. */
	struct agent_runtime *rt;
	const struct kind *pod_kind, *node_kind;
	struct ynode *capacity;	 /* status.capacity and allocatable */
	struct ynode *node_info; /* status.nodeInfo */
	int heartbeat_ms;
	struct agent_node *nodes;
	size_t nnodes;
	struct strmap *by_name; /* node name -> struct agent_node */
	struct strmap *pods;	/* "pods/NS/NAME" -> struct agent_pod */
	struct strmap *by_uid;	/* uid -> its key in pods (a copy) */
	bool adopted;		/* the pods found running at start are claimed */
	struct proxy *proxy;	/* NULL: the runtime runs no real network */
	struct dns *dns;	/* the same */
	const struct kind *svc_kind, *ep_kind;
};

static const char *const agent_kinds[] = {"pods", "nodes", NULL};
/* With real pod networking, Services are the node's too (proxy.c). */
static const char *const agent_kinds_proxy[] = {"pods", "nodes", "services", "endpoints", NULL};

static void agent_ip_str(uint32_t ip, char out[INET_ADDRSTRLEN])
{
	struct in_addr in = {htonl(ip)};
	inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN);
}

/* ---- capacity ---- */

static int capacity_entry(struct ynode *cap, const char *item, struct err *e)
{
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz"
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/";
	const char *eq = strchr(item, '=');
	int64_t milli;

	if (!eq || eq == item || !eq[1])
		return err_set(e, EINVAL, "--capacity: \"%s\" is not NAME=QUANTITY", item);
	cleanup_free char *name = xstrndup(item, (size_t)(eq - item));
	if (strspn(name, name_chars) != strlen(name))
		return err_set(e, EINVAL, "--capacity: \"%s\" is not a resource name", name);
	if (parse_quantity(eq + 1, &milli) < 0)
		return err_set(e, EINVAL, "--capacity: %s: \"%s\" is not a quantity", name, eq + 1);
	y_set(cap, name, y_str(eq + 1));
	return 0;
}

struct ynode *agent_parse_capacity(const char *spec, struct err *e)
{
	struct ynode *cap = y_map();
	cleanup_free char *copy = xstrdup(spec ? spec : "");
	char *save = NULL;

	y_set(cap, "cpu", y_str("4"));
	y_set(cap, "memory", y_str("8Gi"));
	y_set(cap, "pods", y_str("110"));
	for (char *it = strtok_r(copy, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
		if (capacity_entry(cap, it, e) < 0) {
			y_free(cap);
			return NULL;
		}
	}
	return cap;
}

char *agent_host_capacity(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long long kib = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / 1024;

	return xasprintf("cpu=%ld,memory=%lldKi", cpus > 0 ? cpus : 1, kib > 0 ? kib : 1);
}

/* The interface of the default IPv4 route, from /proc/net/route. */
static bool default_route_if(char ifname[IF_NAMESIZE])
{
	FILE *f = fopen("/proc/net/route", "re");
	char line[256], name[IF_NAMESIZE + 1];
	unsigned dest, mask;
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%16s %x %*x %*x %*d %*d %*d %x", name, &dest, &mask) == 3 &&
		    dest == 0 && mask == 0) {
			found = strlen(name) < IF_NAMESIZE;
			if (found)
				memcpy(ifname, name, strlen(name) + 1);
		}
	fclose(f);
	return found;
}

int agent_host_ip(const char *skip_if, char out[16])
{
	char def[IF_NAMESIZE] = "";
	struct ifaddrs *all;
	int r = -ENOENT;

	if (getifaddrs(&all) < 0)
		return -errno;
	default_route_if(def);
	for (int pass = *def ? 0 : 1; pass < 2 && r < 0; pass++)
		for (struct ifaddrs *i = all; i && r < 0; i = i->ifa_next) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
			    !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
				continue;
			if (pass == 0 ? strcmp(i->ifa_name, def) != 0
				      : skip_if && !strcmp(i->ifa_name, skip_if))
				continue;
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, 16);
			r = 0;
		}
	freeifaddrs(all);
	return r;
}

/* ---- pod address ranges ---- */

static int range_parse(struct agent_range *r, const char *cidr)
{
	char addr[INET_ADDRSTRLEN], *end;
	const char *slash = strchr(cidr, '/');
	struct in_addr in;

	if (!slash || (size_t)(slash - cidr) >= sizeof(addr) || strlen(cidr) >= sizeof(r->cidr))
		return -EINVAL;
	memcpy(addr, cidr, (size_t)(slash - cidr));
	addr[slash - cidr] = 0;
	long len = strtol(slash + 1, &end, 10);
	if (*end || end == slash + 1 || len < 8 || len > 30 || inet_pton(AF_INET, addr, &in) != 1)
		return -EINVAL;
	r->base = ntohl(in.s_addr) & (~0u << (32 - len));
	r->size = len < 16 ? 1u << 16 : 1u << (32 - len); /* a wide range: its first /16 */
	r->used = xcalloc((r->size + 7) / 8, 1);
	r->next = 2;
	strcpy(r->cidr, cidr);
	return 0;
}

static bool range_usable(const struct agent_range *r, uint32_t off)
{
	return off >= 2 && off < r->size - 1 && !(r->used[off / 8] & (1u << (off % 8)));
}

/* A free address, or 0 when the range is full. */
static uint32_t range_alloc(struct agent_range *r)
{
	for (uint32_t i = 0; i < r->size; i++) {
		uint32_t off = (r->next + i) % r->size;
		if (!range_usable(r, off))
			continue;
		r->used[off / 8] |= (uint8_t)(1u << (off % 8));
		r->next = off + 1;
		return r->base + off;
	}
	return 0;
}

/* Claims ip when it is in the range and free. */
static bool range_reserve(struct agent_range *r, uint32_t ip)
{
	uint32_t off = ip - r->base;

	if (ip < r->base || !range_usable(r, off))
		return false;
	r->used[off / 8] |= (uint8_t)(1u << (off % 8));
	if (off >= r->next)
		r->next = off + 1;
	return true;
}

static void range_release(struct agent_range *r, uint32_t ip)
{
	uint32_t off = ip - r->base;

	if (ip >= r->base && off < r->size)
		r->used[off / 8] &= (uint8_t) ~(1u << (off % 8));
}

/* ---- nodes ---- */

static bool valid_node_name(const char *s)
{
	size_t len = strlen(s);

	if (!len || len > 240 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") != len)
		return false;
	return s[0] != '-' && s[0] != '.' && s[len - 1] != '-' && s[len - 1] != '.';
}

static uint32_t fnv32(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void nodes_init(struct agent *a, const struct agent_config *cfg)
{
	uint32_t base = fnv32(cfg->node);

	a->nnodes = cfg->nodes > 0 ? (size_t)cfg->nodes : 1;
	a->nodes = xcalloc(a->nnodes, sizeof(*a->nodes));
	a->by_name = strmap_new();
	for (size_t i = 0; i < a->nnodes; i++) {
		struct agent_node *n = &a->nodes[i];
		n->name = cfg->nodes > 0 ? xasprintf("%s-%zu", cfg->node, i) : xstrdup(cfg->node);
		n->slot = (base + (uint32_t)i) % AGENT_MAX_NODES;
		if (cfg->node_ip)
			snprintf(n->ip, sizeof(n->ip), "%s", cfg->node_ip);
		else
			snprintf(n->ip, sizeof(n->ip), "172.%u.%u.1", 16 + n->slot / 256,
				 n->slot % 256);
		strmap_put(a->by_name, n->name, n);
	}
}

/* Picks the node's pod range, once: its spec.podCIDR, else its slot's /20. */
static void node_prepare(struct ctl *c, struct agent *a, struct agent_node *n)
{
	const struct ynode *node = ctl_get(c, a->node_kind, "", n->name);
	const char *cidr = y_path_str(node, "spec.podCIDR");
	char def[32];

	if (n->prepared)
		return;
	n->prepared = true;
	if (cidr && range_parse(&n->range, cidr) == 0)
		return;
	if (cidr)
		fprintf(stderr, "clusterfs agent: %s: spec.podCIDR \"%s\" is not usable here\n",
			n->name, cidr);
	snprintf(def, sizeof(def), "10.%u.%u.0/20", n->slot >> 4, (n->slot & 15) << 4);
	range_parse(&n->range, def);
}

/* The agent's node a pod is bound to, or NULL. */
static struct agent_node *node_of(struct agent *a, const struct ynode *pod)
{
	const char *name = y_path_str(pod, "spec.nodeName");
	return name ? strmap_get(a->by_name, name) : NULL;
}

static const struct ynode *find_condition(const struct ynode *list, const char *type)
{
	for (size_t i = 0; list && list->type == Y_SEQ && i < list->n; i++) {
		const char *t = y_path_str(list->v[i], "type");
		if (t && !strcmp(t, type))
			return list->v[i];
	}
	return NULL;
}

/* The condition type=status: the old one kept whole while its status holds,
 * so lastTransitionTime says when it last changed. */
static struct ynode *condition(const struct ynode *old, const char *type, const char *status,
			       const char *now)
{
	const struct ynode *o = find_condition(old, type);
	const char *was = y_path_str(o, "status");
	struct ynode *c;

	if (o && o->type == Y_MAP && was && !strcmp(was, status))
		return y_clone(o);
	c = y_map();
	y_set(c, "type", y_str(type));
	y_set(c, "status", y_str(status));
	y_set(c, "lastTransitionTime", y_str(now));
	return c;
}

/* Appends to list the old conditions of types that list lacks. */
static void keep_other_conditions(const struct ynode *old, struct ynode *list)
{
	for (size_t i = 0; old && old->type == Y_SEQ && i < old->n; i++) {
		const char *t = y_path_str(old->v[i], "type");
		if (t && !find_condition(list, t))
			y_push(list, y_clone(old->v[i]));
	}
}

static struct ynode *node_conditions(const struct ynode *old, const char *now)
{
	static const struct {
		const char *type, *status, *reason, *message;
	} conds[] = {
		{"MemoryPressure", "False", "KubeletHasSufficientMemory",
		 "kubelet has sufficient memory available"},
		{"DiskPressure", "False", "KubeletHasNoDiskPressure",
		 "kubelet has no disk pressure"},
		{"PIDPressure", "False", "KubeletHasSufficientPID",
		 "kubelet has sufficient PID available"},
		{"Ready", "True", "KubeletReady", "kubelet is posting ready status"},
	};
	struct ynode *list = y_seq();

	for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
		struct ynode *c = condition(old, conds[i].type, conds[i].status, now);
		y_set(c, "reason", y_str(conds[i].reason));
		y_set(c, "message", y_str(conds[i].message));
		y_set(c, "lastHeartbeatTime", y_str(now));
		y_push(list, c);
	}
	keep_other_conditions(old, list);
	return list;
}

static struct ynode *node_addresses(const struct agent_node *n)
{
	struct ynode *list = y_seq(), *ip = y_map(), *host = y_map();

	y_set(ip, "type", y_str("InternalIP"));
	y_set(ip, "address", y_str(n->ip));
	y_set(host, "type", y_str("Hostname"));
	y_set(host, "address", y_str(n->name));
	y_push(list, ip);
	y_push(list, host);
	return list;
}

static struct ynode *node_info_new(const struct agent_runtime *rt)
{
	struct ynode *info = y_map();
	struct utsname u;

	y_set(info, "architecture", y_str(AGENT_ARCH));
	y_set(info, "operatingSystem", y_str("linux"));
	y_set(info, "kubeletVersion", y_str("clusterfs"));
	y_set(info, "containerRuntimeVersion", y_str(rt->version));
	if (uname(&u) == 0)
		y_set(info, "kernelVersion", y_str(u.release));
	return info;
}

/* Sets what the agent owns in the node document: labels, podCIDR when
 * absent, and status; the rest is the admin's and stays. */
static void node_fill(struct agent *a, const struct agent_node *n, struct ynode *doc,
		      const char *now)
{
	struct ynode *labels = y_submap(y_submap(doc, "metadata"), "labels");
	struct ynode *spec = y_submap(doc, "spec");
	const struct ynode *old = y_get(doc, "status");
	struct ynode *status = old && old->type == Y_MAP ? y_clone(old) : y_map();

	y_set(labels, "kubernetes.io/hostname", y_str(n->name));
	y_set(labels, "kubernetes.io/os", y_str("linux"));
	y_set(labels, "kubernetes.io/arch", y_str(AGENT_ARCH));
	y_set(labels, "clusterfs.io/runtime", y_str(a->rt->name));
	if (!y_get(spec, "podCIDR")) {
		struct ynode *cidrs = y_seq();
		y_push(cidrs, y_str(n->range.cidr));
		y_set(spec, "podCIDR", y_str(n->range.cidr));
		y_set(spec, "podCIDRs", cidrs);
	}
	y_set(status, "capacity", y_clone(a->capacity));
	y_set(status, "allocatable", y_clone(a->capacity));
	y_set(status, "addresses", node_addresses(n));
	y_set(status, "nodeInfo", y_clone(a->node_info));
	y_set(status, "conditions", node_conditions(y_get(old, "conditions"), now));
	y_set(doc, "status", status);
}

/* Registers the node, or renews its heartbeat: one write either way. */
static int node_sync(struct ctl *c, struct agent *a, struct agent_node *n)
{
	const struct ynode *cur = ctl_get(c, a->node_kind, "", n->name);
	bool was_ready = cur && condition_true(cur, "Ready");
	struct ynode *doc = cur ? y_clone(cur) : y_map();
	char now[32];
	int r;

	node_prepare(c, a, n);
	ctl_now(now);
	node_fill(a, n, doc, now);
	r = ctl_put(c, a->node_kind, "", n->name, doc, cur ? 0 : O_EXCL);
	y_free(doc);
	if (r == -EEXIST) /* someone created it first: its event brings it into the cache */
		return -ESTALE;
	if (r < 0 && r != -ESTALE && -r != n->failing) {
		/* Once per cause: a server away fails every heartbeat alike. */
		fprintf(stderr, "clusterfs agent: nodes/%s.yaml: %s\n", n->name, strerror(-r));
		n->failing = -r;
	} else if (r == 0 && n->failing) {
		fprintf(stderr, "clusterfs agent: nodes/%s.yaml: written again\n", n->name);
		n->failing = 0;
	}
	if (r == 0 && !was_ready) {
		cleanup_free char *obj = xasprintf("node/%s", n->name);
		ctl_event(c, "", "Normal", "NodeReady", obj, "Node %s status is now: NodeReady",
			  n->name);
	}
	return r;
}

static void node_queue(struct ctl *c, struct agent *a, const struct agent_node *n)
{
	cleanup_free char *key = obj_key(a->node_kind, "", n->name);
	ctl_queue(c, key);
}

/* ---- pods ---- */

static struct agent_pod *pod_track(struct agent *a, const char *key, const struct ynode *pod,
				   struct agent_node *n, uint32_t ip)
{
	struct agent_pod *p = xcalloc(1, sizeof(*p));
	const struct ynode *grace = y_path(pod, "spec.terminationGracePeriodSeconds");

	p->uid = xstrdup(y_path_str(pod, "metadata.uid"));
	p->node = n;
	p->ip = ip;
	p->grace_s = grace && grace->type == Y_INT ? (int)grace->i : 30;
	strmap_put(a->pods, key, p);
	free(strmap_put(a->by_uid, p->uid, xstrdup(key)));
	return p;
}

static void pod_untrack(struct agent *a, const char *key, struct agent_pod *p)
{
	if (p->ip)
		range_release(&p->node->range, p->ip);
	strmap_del(a->pods, key);
	free(strmap_del(a->by_uid, p->uid));
	free(p->uid);
	free(p);
}

static bool host_network(const struct ynode *pod)
{
	const struct ynode *h = y_path(pod, "spec.hostNetwork");
	return h && h->type == Y_BOOL && h->i;
}

/* Claims the address of a pod that was running here before the agent
 * started, so no new pod is given it: the one the runtime kept for it
 * (what it is wired with), else its status.podIP. */
static void adopt_pod(struct ctl *c, const char *ns, const char *name, const struct ynode *pod,
		      void *arg)
{
	struct agent *a = arg;
	struct agent_node *n = node_of(a, pod);
	const char *uid = y_path_str(pod, "metadata.uid");
	const char *ip = y_path_str(pod, "status.podIP");
	char kept[64];
	struct in_addr in;

	if (!n || !uid || host_network(pod))
		return;
	if (a->rt->pod_address && a->rt->pod_address(a->rt, uid, kept) == 0)
		ip = kept;
	if (!ip || inet_pton(AF_INET, ip, &in) != 1)
		return;
	node_prepare(c, a, n);
	if (!range_reserve(&n->range, ntohl(in.s_addr)))
		return;
	cleanup_free char *key = obj_key(a->pod_kind, ns, name);
	pod_track(a, key, pod, n, ntohl(in.s_addr));
}

struct uids {
	struct agent *a;
	char **v;
	size_t n;
};

static void collect_uid(struct ctl *c, const char *ns, const char *name, const struct ynode *pod,
			void *arg)
{
	struct uids *u = arg;
	const char *uid = y_path_str(pod, "metadata.uid");

	if (!uid || !node_of(u->a, pod))
		return;
	u->v = xrealloc(u->v, (u->n + 2) * sizeof(char *));
	u->v[u->n++] = xstrdup(uid);
	u->v[u->n] = NULL;
}

/* Claims the pods found at start, and has the runtime release the ones it
 * still holds whose pod objects are gone. */
static void agent_adopt(struct ctl *c, struct agent *a)
{
	struct uids u = {.a = a};

	if (a->adopted)
		return;
	a->adopted = true;
	ctl_each(c, a->pod_kind, NULL, adopt_pod, a);
	if (!a->rt->sweep)
		return;
	ctl_each(c, a->pod_kind, NULL, collect_uid, &u);
	a->rt->sweep(a->rt, u.v);
	for (size_t i = 0; i < u.n; i++)
		free(u.v[i]);
	free(u.v);
}

static int runtime_stop(struct agent *a, const char *uid, int grace_s)
{
	struct err e = {0};
	int r = a->rt->stop_pod(a->rt, uid, grace_s, &e);

	if (r < 0 && r != -EINPROGRESS)
		fprintf(stderr, "clusterfs agent: stop pod %s: %s\n", uid,
			e.msg[0] ? e.msg : strerror(-r));
	return r;
}

/* Stops a pod that left (deleted, or bound elsewhere) and forgets it. */
static int pod_forget(struct agent *a, const char *key, struct agent_pod *p, int grace_s)
{
	int r = runtime_stop(a, p->uid, grace_s);

	if (r == 0)
		pod_untrack(a, key, p);
	return r;
}

/* Completes a deletion: the pod is stopped, then its file removed. */
static int pod_finish(struct ctl *c, struct agent *a, const char *key, const char *ns,
		      const char *name, const struct ynode *pod)
{
	struct agent_pod *p = strmap_get(a->pods, key);
	const struct ynode *g = y_path(pod, "metadata.deletionGracePeriodSeconds");
	int grace = g && g->type == Y_INT ? (int)g->i : p ? p->grace_s : 30;
	int r = p ? pod_forget(a, key, p, grace)
		  : runtime_stop(a, y_path_str(pod, "metadata.uid"), grace);

	return r < 0 ? r : ctl_delete(c, a->pod_kind, ns, name);
}

/* Takes the pod on (an address) and hands it to the runtime. */
static int pod_start(struct agent *a, const char *key, const struct ynode *pod,
		     struct agent_node *n, struct agent_pod **out)
{
	struct agent_pod *p = strmap_get(a->pods, key);
	char ip[INET_ADDRSTRLEN] = "";
	struct err e = {0};
	uint32_t addr = 0;
	int r;

	if (!p && !host_network(pod) && !(addr = range_alloc(&n->range))) {
		fprintf(stderr, "clusterfs agent: %s: no pod address left in %s\n", key,
			n->range.cidr);
		return -ENOSPC;
	}
	*out = p = p ? p : pod_track(a, key, pod, n, addr);
	if (p->started)
		return 0;
	if (p->ip)
		agent_ip_str(p->ip, ip);
	else /* host networking: the node's own */
		snprintf(ip, sizeof(ip), "%s", n->ip);
	r = a->rt->start_pod(a->rt, pod, ip, n->range.cidr, &e);
	if (r == 0)
		p->started = true;
	else if (r != -EINPROGRESS)
		fprintf(stderr, "clusterfs agent: start %s: %s\n", key,
			e.msg[0] ? e.msg : strerror(-r));
	return r;
}

static struct ynode *ip_list(const char *ip)
{
	struct ynode *list = y_seq(), *item = y_map();

	y_set(item, "ip", y_str(ip));
	y_push(list, item);
	return list;
}

static struct ynode *pod_conditions(const struct ynode *old, const struct agent_pod_status *st,
				    const char *now)
{
	static const char *const types[] = {"Initialized", "Ready", "ContainersReady",
					    "PodScheduled"};
	const bool values[] = {st->initialized, st->ready, st->ready, true};
	struct ynode *list = y_seq();

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct ynode *c = condition(old, types[i], values[i] ? "True" : "False", now);
		if (!y_get(c, "lastProbeTime"))
			y_set(c, "lastProbeTime", y_null());
		y_push(list, c);
	}
	keep_other_conditions(old, list);
	return list;
}

/* The pod's status as the runtime reports it (st's lists are consumed),
 * over the old one: fields the agent does not own stay. */
static struct ynode *pod_status_doc(const struct agent_pod *p, const struct ynode *pod,
				    struct agent_pod_status *st)
{
	const struct ynode *old = y_get(pod, "status");
	struct ynode *s = old && old->type == Y_MAP ? y_clone(old) : y_map();
	char ip[INET_ADDRSTRLEN], now[32];

	ctl_now(now);
	if (p->ip)
		agent_ip_str(p->ip, ip);
	else
		strcpy(ip, p->node->ip);
	y_set(s, "phase", y_str(st->phase));
	y_set(s, "conditions", pod_conditions(y_get(old, "conditions"), st, now));
	y_set(s, "containerStatuses", st->containers);
	if (st->init_containers)
		y_set(s, "initContainerStatuses", st->init_containers);
	st->containers = st->init_containers = NULL;
	y_set(s, "hostIP", y_str(p->node->ip));
	y_set(s, "hostIPs", ip_list(p->node->ip));
	if (st->network) {
		y_set(s, "podIP", y_str(ip));
		y_set(s, "podIPs", ip_list(ip));
	} else {
		y_del(s, "podIP");
		y_del(s, "podIPs");
	}
	if (!y_get(s, "startTime"))
		y_set(s, "startTime", y_str(now));
	return s;
}

/*
 * ctl_put() opens with O_CREAT, and the server ignores resourceVersion on
 * create: a pod deleted between our read and our write comes back as a new
 * object. A new uid after our write can only mean that; undo it.
 */
static int pod_unresurrect(struct ctl *c, struct agent *a, const struct agent_pod *p,
			   const char *ns, const char *name)
{
	const char *uid = y_path_str(ctl_get(c, a->pod_kind, ns, name), "metadata.uid");

	if (!uid || !strcmp(uid, p->uid))
		return 0;
	fprintf(stderr, "clusterfs agent: pods/%s/%s: deleted while its status was written\n", ns,
		name);
	return ctl_delete(c, a->pod_kind, ns, name);
}

/* Writes the pod's status when it differs from what the file shows.
 * The cached pod is freed by the write: nothing may use it after. */
static int pod_report(struct ctl *c, struct agent *a, struct agent_pod *p, const char *ns,
		      const char *name, const struct ynode *pod)
{
	struct agent_pod_status st = {0};
	int r = a->rt->pod_status(a->rt, p->uid, &st);

	if (r == -ENOENT) { /* the runtime lost it: start it again */
		p->started = false;
		return -EAGAIN;
	}
	if (r < 0)
		return r;
	struct ynode *status = pod_status_doc(p, pod, &st);
	agent_pod_status_clear(&st);
	if (y_equal(status, y_get(pod, "status"))) {
		y_free(status);
		return 0;
	}
	struct ynode *doc = y_clone(pod);
	y_set(doc, "status", status);
	r = ctl_put(c, a->pod_kind, ns, name, doc, 0);
	y_free(doc);
	if (r < 0 && r != -ESTALE)
		fprintf(stderr, "clusterfs agent: pods/%s/%s: status: %s\n", ns, name,
			strerror(-r));
	return r == 0 ? pod_unresurrect(c, a, p, ns, name) : r;
}

static bool pod_done(const struct ynode *pod)
{
	const char *phase = y_path_str(pod, "status.phase");
	return phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

static int pod_sync(struct ctl *c, struct agent *a, const char *key, const char *ns,
		    const char *name)
{
	const struct ynode *pod = ctl_get(c, a->pod_kind, ns, name);
	struct agent_node *n = node_of(a, pod);
	struct agent_pod *p = strmap_get(a->pods, key);
	const char *uid = y_path_str(pod, "metadata.uid");
	int r;

	if (p && (p->node != n || !uid || strcmp(p->uid, uid)) &&
	    (r = pod_forget(a, key, p, p->grace_s)) < 0)
		return r;
	if (!n || !uid)
		return 0;
	if (y_path(pod, "metadata.deletionTimestamp"))
		return pod_finish(c, a, key, ns, name, pod);
	if (pod_done(pod) && !strmap_get(a->pods, key))
		return 0;
	node_prepare(c, a, n);
	bool was_started = p && p->started;
	r = pod_start(a, key, pod, n, &p);
	if (r < 0 && r != -EINPROGRESS)
		return r;
	/* A status write is a commit; the first one waits behind the pods
	 * queued meanwhile, so that pods bound together all start before any
	 * is reported, and a pod already running by then is written once. */
	if (r == 0 && !was_started) {
		ctl_queue(c, key);
		return 0;
	}
	int w = pod_report(c, a, p, ns, name, pod);
	return w < 0 ? w : r;
}

/* ---- the controller's callbacks ---- */

static void agent_changed(struct ctl *c, const struct kind *k, const char *ns, const char *name,
			  const struct ynode *now, const struct ynode *before)
{
	struct agent *a = ctl_arg(c);

	if (k == a->svc_kind || k == a->ep_kind) {
		proxy_changed(a->proxy);
		dns_changed(a->dns);
		return;
	}
	if (k == a->node_kind) {
		struct agent_node *n = strmap_get(a->by_name, name);
		if (n && !now && n->next_beat) /* deleted: register again */
			node_queue(c, a, n);
		return;
	}
	if (node_of(a, now) || node_of(a, before)) {
		cleanup_free char *key = obj_key(k, ns, name);
		ctl_queue(c, key);
	}
}

static int agent_reconcile(struct ctl *c, const char *key)
{
	struct agent *a = ctl_arg(c);
	const struct kind *k;
	const char *ns, *name;
	char buf[600];

	agent_adopt(c, a);
	if (key_split(key, buf, sizeof(buf), &k, &ns, &name) < 0)
		return 0;
	if (k == a->node_kind) {
		struct agent_node *n = strmap_get(a->by_name, name);
		return n ? node_sync(c, a, n) : 0;
	}
	return pod_sync(c, a, key, ns, name);
}

/* The runtime says pods changed: queue them, to write their status. */
static void agent_woken(struct ctl *c)
{
	struct agent *a = ctl_arg(c);
	char **uids = a->rt->changed ? a->rt->changed(a->rt) : NULL;

	for (size_t i = 0; uids && uids[i]; i++) {
		const char *key = strmap_get(a->by_uid, uids[i]);
		if (key)
			ctl_queue(c, key);
		free(uids[i]);
	}
	free(uids);
}

/* From the runtime's threads. */
static void agent_notify(void *arg)
{
	struct agent *a = arg;
	struct ctl *c = __atomic_load_n(&a->ctl, __ATOMIC_ACQUIRE);

	if (c)
		ctl_wake(c);
}

/* Queues the nodes whose heartbeat is due. The first tick registers every
 * node; after it node i beats at (i+1)/N of the period, then every period,
 * so N nodes spread their writes evenly. */
static void agent_tick(struct ctl *c)
{
	struct agent *a = ctl_arg(c);
	int64_t now = mono_ms(), period = a->heartbeat_ms;

	agent_adopt(c, a);
	if (a->proxy)
		proxy_tick(a->proxy, c);
	if (a->dns)
		dns_tick(a->dns, c, a->nodes[0].prepared ? a->nodes[0].range.cidr : "");
	for (size_t i = 0; i < a->nnodes; i++) {
		struct agent_node *n = &a->nodes[i];
		if (n->next_beat > now)
			continue;
		if (n->next_beat)
			n->next_beat += period;
		else
			n->next_beat = now + period * (int64_t)(i + 1) / (int64_t)a->nnodes;
		if (n->next_beat <= now) /* fell behind: start the rhythm again */
			n->next_beat = now + period;
		node_queue(c, a, n);
	}
}

/* ---- life ---- */

static int agent_check(const struct agent_config *cfg, struct err *e)
{
	if (!cfg->node || !valid_node_name(cfg->node))
		return err_set(e, EINVAL,
			       "node name \"%s\": lower case letters, digits, '-' and '.', "
			       "starting and ending with a letter or digit",
			       cfg->node ? cfg->node : "");
	if (cfg->nodes < 0 || cfg->nodes > AGENT_MAX_NODES)
		return err_set(e, EINVAL, "--nodes: from 1 to %d", AGENT_MAX_NODES);
	if (cfg->heartbeat_ms <= 0)
		return err_set(e, EINVAL, "--heartbeat: must be positive");
	return 0;
}

struct agent *agent_new(const struct agent_config *cfg, struct agent_runtime *rt, struct err *e)
{
	struct ynode *cap = agent_check(cfg, e) < 0 ? NULL : agent_parse_capacity(cfg->capacity, e);
	struct agent *a;

	if (!cap) {
		agent_runtime_free(rt);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->rt = rt;
	a->capacity = cap;
	a->node_info = node_info_new(rt);
	a->heartbeat_ms = cfg->heartbeat_ms;
	a->pod_kind = kind_by_plural("pods");
	a->node_kind = kind_by_plural("nodes");
	a->pods = strmap_new();
	a->by_uid = strmap_new();
	nodes_init(a, cfg);
	if (rt->run_dir) {
		a->proxy = proxy_new(a->nodes[0].name);
		cleanup_free char *dir = xasprintf("%s/dns", rt->run_dir);
		a->dns = dns_new(a->nodes[0].name, dir);
		a->svc_kind = kind_by_plural("services");
		a->ep_kind = kind_by_plural("endpoints");
	}
	a->ops = (struct ctl_ops){
		.name = "node-agent",
		.kinds = a->proxy ? agent_kinds_proxy : agent_kinds,
		.changed = agent_changed,
		.reconcile = agent_reconcile,
		.tick = agent_tick,
		.woken = agent_woken,
		.tick_ms = a->heartbeat_ms < 100 ? a->heartbeat_ms : 100,
	};
	if (rt->set_notify)
		rt->set_notify(rt, agent_notify, a);
	__atomic_store_n(&a->ctl,
			 cfg->remote ? ctl_start_streaming(cfg->view, &a->ops, a)
				     : ctl_start(cfg->view, &a->ops, a),
			 __ATOMIC_RELEASE);
	return a;
}

static void free_value(const char *key, void *val, void *arg)
{
	free(val);
}

static void drop_pod(const char *key, void *val, void *arg)
{
	struct agent_pod *p = val;
	free(p->uid);
	free(p);
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	if (a->rt->set_notify)
		a->rt->set_notify(a->rt, NULL, NULL);
	ctl_stop(a->ctl);
	proxy_free(a->proxy);
	dns_free(a->dns);
	strmap_each(a->pods, drop_pod, NULL);
	strmap_free(a->pods);
	strmap_each(a->by_uid, free_value, NULL);
	strmap_free(a->by_uid);
	for (size_t i = 0; i < a->nnodes; i++) {
		free(a->nodes[i].name);
		free(a->nodes[i].range.used);
	}
	free(a->nodes);
	strmap_free(a->by_name);
	y_free(a->capacity);
	y_free(a->node_info);
	agent_runtime_free(a->rt);
	free(a);
}
