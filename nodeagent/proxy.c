/*
 * proxy.c: Services on the node, in one nftables table of its own.
 *
 *   services or endpoints event -> proxy_changed(): dirty
 *   the agent's tick (100 ms)   -> proxy_tick(): when dirty, the script
 *       is built from the cache (table_script) and, when it differs from
 *       the last one applied, run as `nft -f -`
 *
 * The script creates the table (so that the delete cannot fail), deletes
 * it and writes it whole: nft applies a file in one transaction, so no
 * packet sees half a table. Without a service port to serve, the table
 * is only deleted: a node without Services holds nothing of ours. The table, for each service port
 * with ready endpoints:
 *
 *   prerouting (nat, dstnat)  traffic arriving, pods' included: the CNI
 *                             bridge is their gateway, so their packets to
 *                             a ClusterIP are routed, and pass here
 *   output (nat, dstnat)      the host's own traffic
 *       -> services: ClusterIP:port -> svcN; a local address (not
 *          127/8) with a nodePort -> mark, then svcN
 *   svcN: with sessionAffinity ClientIP, a client in set affN_I goes
 *         back to epN_I; then numgen random mod K vmap to epN_0 .. epN_K-1
 *   epN_I: with affinity, remember the client in affN_I (timeout
 *          timeoutSeconds, renewed by each new connection); from the
 *          endpoint itself (a pod reaching itself through its service,
 *          hairpin): mark; then dnat to the endpoint
 *   postrouting (nat, srcnat): marked -> masquerade
 *
 * Inputs come from files anyone with write access to the cluster can
 * write: every address is parsed with inet_pton and printed again, ports
 * are numbers, protocols one of three words, and names appear only in
 * comments, after a check of their characters.
 */
#define _GNU_SOURCE
#include "proxy.h"
#include "proc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The mark bit our rules set for traffic to masquerade. */
#define PROXY_MARK "0x00004000"

#define PROXY_RETRY_MS 1000

/* sessionAffinityConfig.clientIP.timeoutSeconds: Kubernetes' default and
 * bound. */
#define PROXY_AFFINITY_DEFAULT 10800
#define PROXY_AFFINITY_MAX     86400

struct proxy {
	char *table;
	bool dirty;
	int64_t retry_at; /* monotonic ms: after a failed sync */
	char *applied;	  /* the last script nft accepted; NULL: none yet */
	char *last_error; /* not to log the same failure every second */
};

struct proxy *proxy_new(const char *node)
{
	struct proxy *p = xcalloc(1, sizeof(*p));

	p->table = xasprintf("clusterfs_%s", node);
	for (char *s = p->table + strlen("clusterfs_"); *s; s++)
		if (!isalnum((unsigned char)*s))
			*s = '_';
	p->dirty = true; /* the first tick writes the table, services or not */
	return p;
}

void proxy_free(struct proxy *p)
{
	if (!p)
		return;
	free(p->table);
	free(p->applied);
	free(p->last_error);
	free(p);
}

void proxy_changed(struct proxy *p)
{
	p->dirty = true;
}

const char *proxy_table(const struct proxy *p)
{
	return p->table;
}

/* ---- the script ---- */

struct script {
	struct strbuf rules;  /* of chain services */
	struct strbuf chains; /* svcN and epN_I */
	unsigned nsvc;
	struct ctl *ctl;
	const struct kind *ep_kind;
};

/* An IPv4 address as inet_ntop prints it, into out; false when s is none. */
static bool ip_clean(const char *s, char out[INET_ADDRSTRLEN])
{
	struct in_addr in;
	return s && inet_pton(AF_INET, s, &in) == 1 &&
	       inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN);
}

static int port_of(const struct ynode *n, const char *key)
{
	const struct ynode *v = y_get(n, key);
	return v && v->type == Y_INT && v->i > 0 && v->i < 65536 ? (int)v->i : 0;
}

/* nft's name for a protocol field, or NULL. */
static const char *proto_of(const struct ynode *port)
{
	const char *p = y_path_str(port, "protocol");

	if (!p || !strcmp(p, "TCP"))
		return "tcp";
	if (!strcmp(p, "UDP"))
		return "udp";
	if (!strcmp(p, "SCTP"))
		return "sctp";
	return NULL;
}

static bool same_name(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

/* Whether s is safe inside a quoted nft comment. */
static bool comment_safe(const char *s)
{
	return s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") == strlen(s);
}

/* Appends to list the ready endpoints of the service port named pname
 * with protocol proto: "IP:PORT" entries, one per line. */
static unsigned ready_endpoints(const struct ynode *eps, const char *pname, const char *proto,
				struct strbuf *list)
{
	const struct ynode *subsets = y_get(eps, "subsets");
	unsigned n = 0;

	for (size_t i = 0; subsets && subsets->type == Y_SEQ && i < subsets->n; i++) {
		const struct ynode *ports = y_get(subsets->v[i], "ports");
		const struct ynode *addrs = y_get(subsets->v[i], "addresses");
		int port = 0;
		for (size_t j = 0; ports && ports->type == Y_SEQ && j < ports->n; j++) {
			const char *pp = proto_of(ports->v[j]);
			if (same_name(y_path_str(ports->v[j], "name"), pname) && pp &&
			    !strcmp(pp, proto))
				port = port_of(ports->v[j], "port");
		}
		for (size_t j = 0; port && addrs && addrs->type == Y_SEQ && j < addrs->n; j++) {
			char ip[INET_ADDRSTRLEN];
			if (!ip_clean(y_path_str(addrs->v[j], "ip"), ip))
				continue;
			sb_printf(list, "%s %d\n", ip, port);
			n++;
		}
	}
	return n;
}

/* The chains of one service port: svcN over its n endpoints (list). With
 * affinity seconds, as kube-proxy's nftables mode: one set of clients per
 * endpoint, filled by the endpoint's chain, looked up first by svcN. */
static void service_chains(struct script *s, unsigned svc, const char *proto, const char *list,
			   unsigned n, int affinity)
{
	char ip[INET_ADDRSTRLEN];
	int port;
	unsigned i = 0;

	sb_printf(&s->chains, "\tchain svc%u {\n", svc);
	for (i = 0; affinity && i < n; i++)
		sb_printf(&s->chains, "\t\tip saddr @aff%u_%u goto ep%u_%u\n", svc, i, svc, i);
	sb_printf(&s->chains, "\t\tnumgen random mod %u vmap { ", n);
	for (i = 0; i < n; i++)
		sb_printf(&s->chains, "%s%u : goto ep%u_%u", i ? ", " : "", i, svc, i);
	sb_puts(&s->chains, " }\n\t}\n");
	for (i = 0; *list && sscanf(list, "%15s %d", ip, &port) == 2; i++) {
		if (affinity)
			sb_printf(&s->chains,
				  "\tset aff%u_%u {\n"
				  "\t\ttype ipv4_addr\n"
				  "\t\tflags dynamic,timeout\n"
				  "\t\ttimeout %ds\n"
				  "\t}\n",
				  svc, i, affinity);
		sb_printf(&s->chains, "\tchain ep%u_%u {\n", svc, i);
		if (affinity)
			sb_printf(&s->chains, "\t\tupdate @aff%u_%u { ip saddr }\n", svc, i);
		sb_printf(&s->chains,
			  "\t\tip saddr %s meta mark set meta mark | " PROXY_MARK "\n"
			  "\t\tmeta l4proto %s dnat to %s:%d\n"
			  "\t}\n",
			  ip, proto, ip, port);
		list = strchr(list, '\n') + 1;
	}
}

/* The rules of one port of a service. */
static void service_port(struct script *s, const char *ns, const char *name, const char *cluster_ip,
			 int affinity, const struct ynode *eps, const struct ynode *sp)
{
	const char *pname = y_path_str(sp, "name");
	const char *proto = proto_of(sp);
	int port = port_of(sp, "port"), node_port = port_of(sp, "nodePort");
	struct strbuf list = {0};
	unsigned svc = s->nsvc, n;

	if (!proto || !port || (pname && !comment_safe(pname)))
		return;
	n = ready_endpoints(eps, pname, proto, &list);
	if (n) {
		s->nsvc++;
		service_chains(s, svc, proto, list.buf, n, affinity);
		sb_printf(&s->rules,
			  "\t\tip daddr %s %s dport %d goto svc%u comment \"%s/%s:%s\"\n",
			  cluster_ip, proto, port, svc, ns, name, pname ? pname : "");
		if (node_port)
			sb_printf(&s->rules,
				  "\t\tfib daddr type local ip daddr != 127.0.0.0/8 %s dport %d "
				  "meta mark set meta mark | " PROXY_MARK
				  " goto svc%u comment \"%s/%s:%s nodePort\"\n",
				  proto, node_port, svc, ns, name, pname ? pname : "");
	}
	sb_free(&list);
}

/* The affinity timeout in seconds of svc; 0: none. */
static int affinity_of(const struct ynode *svc)
{
	const char *aff = y_path_str(svc, "spec.sessionAffinity");
	const struct ynode *t = y_path(svc, "spec.sessionAffinityConfig.clientIP.timeoutSeconds");

	if (!aff || strcmp(aff, "ClientIP"))
		return 0;
	if (t && t->type == Y_INT && t->i > 0 && t->i <= PROXY_AFFINITY_MAX)
		return (int)t->i;
	return PROXY_AFFINITY_DEFAULT;
}

static void service_rules(struct ctl *c, const char *ns, const char *name, const struct ynode *svc,
			  void *arg)
{
	struct script *s = arg;
	const struct ynode *ports = y_path(svc, "spec.ports");
	const char *type = y_path_str(svc, "spec.type");
	char ip[INET_ADDRSTRLEN];

	/* Headless ("None") and ExternalName services have no address to serve. */
	if ((type && !strcmp(type, "ExternalName")) ||
	    !ip_clean(y_path_str(svc, "spec.clusterIP"), ip) || !comment_safe(ns) ||
	    !comment_safe(name))
		return;
	const struct ynode *eps = ctl_get(c, s->ep_kind, ns, name);
	for (size_t i = 0; ports && ports->type == Y_SEQ && i < ports->n; i++)
		service_port(s, ns, name, ip, affinity_of(svc), eps, ports->v[i]);
}

/* The whole script for the services in c's cache; caller frees. */
static char *table_script(struct proxy *p, struct ctl *c)
{
	struct script s = {.ctl = c, .ep_kind = kind_by_plural("endpoints")};
	struct strbuf out = {0};

	ctl_each(c, kind_by_plural("services"), NULL, service_rules, &s);
	if (!s.nsvc) /* nothing to serve: nothing of ours on the node */
		return xasprintf("table ip %s\ndelete table ip %s\n", p->table, p->table);
	sb_printf(&out,
		  "table ip %s\n"
		  "delete table ip %s\n"
		  "table ip %s {\n"
		  "\tchain prerouting {\n"
		  "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
		  "\t\tjump services\n"
		  "\t}\n"
		  "\tchain output {\n"
		  "\t\ttype nat hook output priority -100; policy accept;\n"
		  "\t\tjump services\n"
		  "\t}\n"
		  "\tchain postrouting {\n"
		  "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		  "\t\tmeta mark & " PROXY_MARK " == " PROXY_MARK " masquerade\n"
		  "\t}\n"
		  "\tchain services {\n%s\t}\n%s}\n",
		  p->table, p->table, p->table, s.rules.buf ? s.rules.buf : "",
		  s.chains.buf ? s.chains.buf : "");
	sb_free(&s.rules);
	sb_free(&s.chains);
	return sb_steal(&out, NULL);
}

/* ---- applying it ---- */

static int nft_apply(const char *script, struct err *e)
{
	const char *argv[] = {"nft", "-f", "-", NULL};
	struct proc_opts o = {.input = script, .keep_fd = -1, .timeout_ms = 10000};
	int r = proc_run(argv, &o, NULL, e);

	if (r > 0) {
		cleanup_free char *msg = xstrdup(e->msg);
		return err_set(e, EIO, "nft exited with %d: %s", r, msg);
	}
	return r;
}

void proxy_tick(struct proxy *p, struct ctl *c)
{
	int64_t now = mono_ms();
	struct err e = {0};

	if (!p->dirty || now < p->retry_at)
		return;
	p->dirty = false;
	cleanup_free char *script = table_script(p, c);
	if (p->applied && !strcmp(p->applied, script))
		return;
	if (nft_apply(script, &e) < 0) {
		if (!p->last_error || strcmp(p->last_error, e.msg))
			fprintf(stderr, "clusterfs agent: nftables table %s: %s\n", p->table,
				e.msg);
		free(p->last_error);
		p->last_error = xstrdup(e.msg);
		p->dirty = true;
		p->retry_at = now + PROXY_RETRY_MS;
		return;
	}
	free(p->last_error);
	p->last_error = NULL;
	free(p->applied);
	p->applied = xstrdup(script);
}
