/*
 * svcalloc.c: a Service's clusterIP and nodePorts.
 *
 * The store calls svc_allocate() inside the transaction that writes a
 * Service, after the checks that need no other object (service_validate
 * in kinds-core.c), with every other Service in view as that transaction
 * sees them. What is taken is computed from those Services at each write
 * rather than kept in a table of its own: the store commits one write at
 * a time, each seeing the ones before it, so two creates can never both
 * find an address free, an address is free again as soon as the deletion
 * of its Service commits, and there is no second record to fall out of
 * step with the objects.
 *
 * Addresses come from the service CIDR (--service-cidr, 10.96.0.0/16 by
 * default) without its network and broadcast addresses and its first
 * address, which Kubernetes gives default/kubernetes; node ports from
 * 30000-32767, one owner per number whatever the protocol. A value the
 * user asks for is checked; otherwise one is picked at random, from the
 * upper part of the range first, so that the lower part is left to those
 * picked by hand (Kubernetes' static subrange).
 */
#define _GNU_SOURCE
#include "svcalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/random.h>

#define NODEPORT_COUNT (SVC_NODEPORT_MAX - SVC_NODEPORT_MIN + 1)

static struct svc_cidr service_cidr = {0x0a600000, 16}; /* SVC_CIDR_DEFAULT */

int svc_parse_ip(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

void svc_format_ip(uint32_t ip, char buf[16])
{
	snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

uint32_t svc_cidr_size(const struct svc_cidr *c)
{
	return (uint32_t)1 << (32 - c->bits);
}

void svc_cidr_format(const struct svc_cidr *c, char buf[24])
{
	char ip[16];

	svc_format_ip(c->net, ip);
	snprintf(buf, 24, "%s/%d", ip, c->bits);
}

int svc_cidr_parse(const char *s, struct svc_cidr *c, struct err *e)
{
	const char *slash = strchr(s, '/');
	char ip[16], *end;
	uint32_t addr;

	if (!slash || slash - s >= (long)sizeof(ip))
		return err_set(e, EINVAL, "\"%s\" is not a CIDR such as %s", s, SVC_CIDR_DEFAULT);
	memcpy(ip, s, slash - s);
	ip[slash - s] = 0;
	long bits = strtol(slash + 1, &end, 10);
	if (svc_parse_ip(ip, &addr) < 0 || !slash[1] || *end || slash[1] == '+' ||
	    slash[1] == '-' || bits < 0 || bits > 32)
		return err_set(e, EINVAL, "\"%s\" is not a CIDR such as %s", s, SVC_CIDR_DEFAULT);
	if (bits < 12 || bits > 30)
		return err_set(e, EINVAL,
			       "%s: the prefix must be from /12 (%u addresses) to /30 (one "
			       "address to hand out)",
			       s, 1u << 20);
	c->bits = (int)bits;
	c->net = addr & ~(svc_cidr_size(c) - 1);
	if (c->net != addr) {
		char want[24];
		svc_cidr_format(c, want);
		return err_set(e, EINVAL, "%s: the address has host bits set (the network is %s)",
			       s, want);
	}
	return 0;
}

int svc_set_cidr(const char *s, struct err *e)
{
	struct svc_cidr c;
	int r = svc_cidr_parse(s, &c, e);

	if (r == 0)
		service_cidr = c;
	return r;
}

const struct svc_cidr *svc_get_cidr(void)
{
	return &service_cidr;
}

long svc_cidr_offset(const struct svc_cidr *c, uint32_t ip)
{
	uint32_t size = svc_cidr_size(c);

	return (ip & ~(size - 1)) == c->net ? (long)(ip - c->net) : -1;
}

static bool bit_get(const uint8_t *bits, size_t i)
{
	return bits[i / 8] & (1u << (i % 8));
}

static void bit_set(uint8_t *bits, size_t i)
{
	bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

long svc_next_free(const uint8_t *bits, size_t lo, size_t hi, size_t start)
{
	for (size_t i = start; i < hi; i++)
		if (!bit_get(bits, i))
			return (long)i;
	for (size_t i = lo; i < start; i++)
		if (!bit_get(bits, i))
			return (long)i;
	return -1;
}

size_t svc_band(size_t size, size_t step, size_t max)
{
	size_t band = size / step;

	if (size < 16)
		return 0;
	return band < 16 ? 16 : band > max ? max : band;
}

long svc_pick(const uint8_t *bits, size_t size, size_t band, uint64_t rnd)
{
	long r = -1;

	if (band < size)
		r = svc_next_free(bits, band, size, band + rnd % (size - band));
	if (r < 0 && band > 0)
		r = svc_next_free(bits, 0, band, rnd % band);
	return r;
}

static uint64_t random64(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint64_t)now_ns();
	return v;
}

/* "NS/NAME" of a stored Service, for messages. */
static char *owner_name(const struct ynode *obj)
{
	const char *ns = y_path_str(obj, "metadata.namespace");
	const char *name = y_path_str(obj, "metadata.name");

	return xasprintf("%s/%s", ns ? ns : "?", name ? name : "?");
}

static bool is_external(const char *type)
{
	return !strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer");
}

/* ClusterIP ---------------------------------------------------------------- */

/*
 * The address doc asks for, from spec.clusterIP or spec.clusterIPs[0]
 * (which must agree); NULL when it asks for none. Caller frees.
 */
static int requested_ip(const struct ynode *spec, char **want, struct err *e)
{
	const struct ynode *ips = y_get(spec, "clusterIPs");
	const char *ip = y_path_str(spec, "clusterIP");
	const char *first = NULL;

	if (ips && ips->type == Y_SEQ && ips->n > 1)
		return err_set(e, EINVAL,
			       "spec.clusterIPs: at most one address: this cluster serves IPv4 "
			       "only (single-stack)");
	if (ips && ips->type == Y_SEQ && ips->n == 1 && ips->v[0]->str && *ips->v[0]->str)
		first = ips->v[0]->str;
	if (ip && *ip && first && strcmp(ip, first))
		return err_set(e, EINVAL,
			       "spec.clusterIPs[0]: \"%s\" must match spec.clusterIP \"%s\"", first,
			       ip);
	*want = ip && *ip ? xstrdup(ip) : first ? xstrdup(first) : NULL;
	return 0;
}

/* Only IPv4 is served: ipFamilies says so, and defaults to it. */
static int check_families(struct ynode *spec, struct err *e)
{
	const struct ynode *fam = y_get(spec, "ipFamilies");
	const char *policy = y_path_str(spec, "ipFamilyPolicy");

	for (size_t i = 0; fam && fam->type == Y_SEQ && i < fam->n; i++)
		if (!fam->v[i]->str || strcmp(fam->v[i]->str, "IPv4"))
			return err_set(e, EINVAL,
				       "spec.ipFamilies[%zu]: \"%s\" is not served: this cluster "
				       "serves IPv4 only",
				       i, fam->v[i]->str ? fam->v[i]->str : "");
	if (policy && !strcmp(policy, "RequireDualStack"))
		return err_set(e, EINVAL,
			       "spec.ipFamilyPolicy: RequireDualStack cannot be met: this cluster "
			       "serves IPv4 only");
	if (!fam || fam->type != Y_SEQ || fam->n == 0) {
		struct ynode *v4 = y_seq();
		y_push(v4, y_str("IPv4"));
		y_set(spec, "ipFamilies", v4);
	}
	if (!policy)
		y_set(spec, "ipFamilyPolicy", y_str("SingleStack"));
	return 0;
}

struct ip_scan {
	const struct svc_cidr *cidr;
	uint32_t ip;		 /* the address looked for */
	const struct ynode *own; /* its holder, when found */
	uint8_t *bits;		 /* the addresses taken, when building the map */
};

static void scan_ip(const struct ynode *obj, void *arg)
{
	struct ip_scan *sc = arg;
	uint32_t ip;
	long off;

	if (svc_parse_ip(y_path_str(obj, "spec.clusterIP"), &ip) < 0)
		return;
	if (sc->bits && (off = svc_cidr_offset(sc->cidr, ip)) >= 0)
		bit_set(sc->bits, (size_t)off);
	if (!sc->bits && ip == sc->ip)
		sc->own = obj;
}

/* Checks an address the user asked for; the first is only kubernetes'. */
static int check_requested_ip(const char *want, const struct ynode *doc,
			      const struct kind_peers *peers, struct err *e)
{
	const struct svc_cidr *c = svc_get_cidr();
	struct ip_scan sc = {.cidr = c};
	char range[24];
	long off;

	svc_cidr_format(c, range);
	if (svc_parse_ip(want, &sc.ip) < 0)
		return err_set(e, EINVAL,
			       "spec.clusterIP: \"%s\" is not an IPv4 address (nor None, for a "
			       "headless service)",
			       want);
	if ((off = svc_cidr_offset(c, sc.ip)) < 0)
		return err_set(e, EINVAL, "spec.clusterIP: %s is not in the service CIDR %s", want,
			       range);
	if (off == 0 || off == (long)svc_cidr_size(c) - 1)
		return err_set(e, EINVAL, "spec.clusterIP: %s is the %s address of %s", want,
			       off ? "broadcast" : "network", range);
	const char *ns = y_path_str(doc, "metadata.namespace");
	const char *name = y_path_str(doc, "metadata.name");
	if (off == 1 && !(ns && name && !strcmp(ns, "default") && !strcmp(name, "kubernetes")))
		return err_set(e, EINVAL,
			       "spec.clusterIP: %s is reserved for the service default/kubernetes",
			       want);
	peers->each(peers, scan_ip, &sc);
	if (sc.own) {
		cleanup_free char *who = owner_name(sc.own);
		return err_set(e, EEXIST, "spec.clusterIP: %s is already allocated to service %s",
			       want, who);
	}
	return 0;
}

/* A free address of the service CIDR into buf. */
static int pick_ip(const struct kind_peers *peers, char buf[16], struct err *e)
{
	const struct svc_cidr *c = svc_get_cidr();
	uint32_t size = svc_cidr_size(c);
	cleanup_free uint8_t *bits = xcalloc(size / 8 + 1, 1);
	struct ip_scan sc = {.cidr = c, .bits = bits};

	bit_set(bits, 0);
	bit_set(bits, 1);
	bit_set(bits, size - 1);
	peers->each(peers, scan_ip, &sc);
	long off = svc_pick(bits, size, svc_band(size, 16, 256), random64());
	if (off < 0) {
		char range[24];
		svc_cidr_format(c, range);
		return err_set(e, ENOSPC,
			       "spec.clusterIP: no free address is left in the service "
			       "CIDR %s",
			       range);
	}
	svc_format_ip(c->net + (uint32_t)off, buf);
	return 0;
}

/* The address for doc: cur's when it has one, the one asked for, or a new one. */
static int choose_ip(const struct ynode *cur, const char *want, const struct ynode *doc,
		     const struct kind_peers *peers, char **ip, struct err *e)
{
	const char *old = cur ? y_path_str(cur, "spec.clusterIP") : NULL;
	char buf[16];
	int r;

	if (old && *old) {
		if (want && strcmp(want, old))
			return err_set(e, EINVAL,
				       "spec.clusterIP: may not change once set (it is %s): delete "
				       "the service and create it again to change it",
				       old);
		*ip = xstrdup(old);
		return 0;
	}
	if (want && strcmp(want, "None") && (r = check_requested_ip(want, doc, peers, e)) < 0)
		return r;
	if (!want && (r = pick_ip(peers, buf, e)) < 0)
		return r;
	*ip = xstrdup(want ? want : buf);
	return 0;
}

static int assign_cluster_ip(const struct ynode *cur, struct ynode *doc, struct ynode *spec,
			     const char *type, const struct kind_peers *peers, struct err *e)
{
	cleanup_free char *want = NULL, *ip = NULL;
	const char *old = cur ? y_path_str(cur, "spec.clusterIP") : NULL;
	int r;

	if ((r = requested_ip(spec, &want, e)) < 0)
		return r;
	if (!strcmp(type, "ExternalName")) {
		/* The address of a service that turns ExternalName is released. */
		if (want && !(old && !strcmp(want, old)))
			return err_set(e, EINVAL,
				       "spec.clusterIP: may not be set when type is ExternalName");
		y_del(spec, "clusterIP");
		y_del(spec, "clusterIPs");
		return 0;
	}
	if ((r = check_families(spec, e)) < 0 || (r = choose_ip(cur, want, doc, peers, &ip, e)) < 0)
		return r;
	if (!strcmp(ip, "None") && is_external(type))
		return err_set(e, EINVAL,
			       "spec.clusterIP: None (headless) may not be used when type is %s",
			       type);
	struct ynode *ips = y_seq();
	y_push(ips, y_str(ip));
	y_set(spec, "clusterIPs", ips);
	y_set(spec, "clusterIP", y_str(ip));
	return 0;
}

/* NodePorts ---------------------------------------------------------------- */

/* Which protocols a service of ours uses a node port for: one bit each. */
static unsigned proto_bit(const struct ynode *port)
{
	const char *p = y_path_str(port, "protocol");

	return !p || !strcmp(p, "TCP") ? 1 : !strcmp(p, "UDP") ? 2 : 4;
}

static int64_t node_port(const struct ynode *port)
{
	const struct ynode *np = y_get(port, "nodePort");

	return np && np->type == Y_INT ? np->i : 0;
}

struct port_map {
	const struct ynode *owner[NODEPORT_COUNT]; /* other services' node ports */
	unsigned mine[NODEPORT_COUNT];		   /* this service's: protocol bits */
};

static void scan_ports(const struct ynode *obj, void *arg)
{
	struct port_map *m = arg;
	const struct ynode *ports = y_path(obj, "spec.ports");

	for (size_t i = 0; ports && ports->type == Y_SEQ && i < ports->n; i++) {
		int64_t np = node_port(ports->v[i]);
		if (np >= SVC_NODEPORT_MIN && np <= SVC_NODEPORT_MAX)
			m->owner[np - SVC_NODEPORT_MIN] = obj;
	}
}

/* A node port the user asked for: in the range, and not another's. */
static int claim_port(struct port_map *m, const struct ynode *port, const char *path, struct err *e)
{
	int64_t np = node_port(port);
	unsigned bit = proto_bit(port);

	if (np < SVC_NODEPORT_MIN || np > SVC_NODEPORT_MAX)
		return err_set(e, EINVAL, "%s.nodePort: %lld is outside the node port range %d-%d",
			       path, (long long)np, SVC_NODEPORT_MIN, SVC_NODEPORT_MAX);
	size_t i = (size_t)(np - SVC_NODEPORT_MIN);
	if (m->owner[i]) {
		cleanup_free char *who = owner_name(m->owner[i]);
		return err_set(e, EEXIST, "%s.nodePort: %lld is already allocated to service %s",
			       path, (long long)np, who);
	}
	if (m->mine[i] & bit)
		return err_set(e, EINVAL, "%s.nodePort: %lld is used twice for one protocol", path,
			       (long long)np);
	m->mine[i] |= bit;
	return 0;
}

/* The nodePort cur gave the port of the same name, if it is still usable. */
static int64_t kept_port(const struct ynode *cur, struct port_map *m, const struct ynode *port)
{
	const struct ynode *old = cur ? y_path(cur, "spec.ports") : NULL;
	const char *type = cur ? y_path_str(cur, "spec.type") : NULL;
	const char *name = y_path_str(port, "name");

	if (!type || !is_external(type))
		return 0;
	for (size_t i = 0; old && old->type == Y_SEQ && i < old->n; i++) {
		const char *oname = y_path_str(old->v[i], "name");
		int64_t np = node_port(old->v[i]);
		if (strcmp(oname ? oname : "", name ? name : "") || np < SVC_NODEPORT_MIN ||
		    np > SVC_NODEPORT_MAX)
			continue;
		size_t at = (size_t)(np - SVC_NODEPORT_MIN);
		return m->owner[at] || (m->mine[at] & proto_bit(port)) ? 0 : np;
	}
	return 0;
}

/* The node port of another of doc's ports with the same number, other protocol. */
static int64_t sibling_port(const struct ynode *ports, const struct ynode *port, struct port_map *m)
{
	const struct ynode *num = y_get(port, "port");

	for (size_t i = 0; num && i < ports->n; i++) {
		const struct ynode *p = ports->v[i];
		const struct ynode *pnum = y_get(p, "port");
		int64_t np = node_port(p);
		if (p == port || !np || !pnum || pnum->i != num->i || np < SVC_NODEPORT_MIN ||
		    np > SVC_NODEPORT_MAX)
			continue;
		if (!(m->mine[np - SVC_NODEPORT_MIN] & proto_bit(port)))
			return np;
	}
	return 0;
}

static int64_t pick_port(struct port_map *m)
{
	uint8_t bits[NODEPORT_COUNT / 8 + 1] = {0};

	for (size_t i = 0; i < NODEPORT_COUNT; i++)
		if (m->owner[i] || m->mine[i])
			bit_set(bits, i);
	long at = svc_pick(bits, NODEPORT_COUNT, svc_band(NODEPORT_COUNT, 32, 128), random64());
	return at < 0 ? 0 : SVC_NODEPORT_MIN + at;
}

/*
 * Ports that ask for a node port get it checked first; then the others
 * keep their old one, share their number's across protocols, or get a
 * free one (unless a LoadBalancer says not to allocate them).
 */
static int assign_node_ports(const struct ynode *cur, struct ynode *spec, const char *type,
			     const struct kind_peers *peers, struct err *e)
{
	struct ynode *ports = y_get(spec, "ports");
	const struct ynode *alloc = y_get(spec, "allocateLoadBalancerNodePorts");
	bool pick = strcmp(type, "LoadBalancer") || !alloc || alloc->i;
	cleanup_free struct port_map *m = xcalloc(1, sizeof(*m));
	int r;

	if (!ports || ports->type != Y_SEQ)
		return 0;
	peers->each(peers, scan_ports, m);
	for (size_t i = 0; i < ports->n; i++) {
		cleanup_free char *path = xasprintf("spec.ports[%zu]", i);
		if (node_port(ports->v[i]) && (r = claim_port(m, ports->v[i], path, e)) < 0)
			return r;
	}
	for (size_t i = 0; i < ports->n; i++) {
		struct ynode *port = ports->v[i];
		int64_t np;
		if (node_port(port))
			continue;
		if (!(np = kept_port(cur, m, port)) && !(np = sibling_port(ports, port, m)) &&
		    pick && !(np = pick_port(m)))
			return err_set(e, ENOSPC,
				       "spec.ports[%zu].nodePort: no free node port is left in "
				       "%d-%d",
				       i, SVC_NODEPORT_MIN, SVC_NODEPORT_MAX);
		if (!np)
			continue;
		m->mine[np - SVC_NODEPORT_MIN] |= proto_bit(port);
		y_set(port, "nodePort", y_int(np));
	}
	return 0;
}

int svc_allocate(const struct ynode *cur, struct ynode *doc, const struct kind_peers *peers,
		 struct err *e)
{
	struct ynode *spec = y_get(doc, "spec");
	const char *type = y_path_str(spec, "type");
	int r;

	if (!spec || spec->type != Y_MAP)
		return 0; /* service_validate has said so */
	if (!type)
		type = "ClusterIP";
	if ((r = assign_cluster_ip(cur, doc, spec, type, peers, e)) < 0)
		return r;
	return is_external(type) ? assign_node_ports(cur, spec, type, peers, e) : 0;
}
