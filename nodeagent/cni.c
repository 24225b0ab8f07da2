/*
 * cni.c: runs the CNI plugins by the CNI specification's contract: the
 * network configuration on stdin, the operation and the namespace in
 * CNI_* variables, the result on stdout. The plugins run in a chain of
 * our own (bridge, then portmap for a pod with host ports, fed the
 * bridge's result as prevResult); DEL runs them in reverse. The loopback
 * is brought up with iproute2 (see cni_wire).
 */
#define _GNU_SOURCE
#include "cni.h"
#include "doc.h"
#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cni_netns_name(const char *uid, char out[40])
{
	snprintf(out, 40, "cfs-%.24s", uid);
}

/* The gateway of cidr: its first address. */
static int cidr_gateway(const char *cidr, char out[INET_ADDRSTRLEN])
{
	char net[INET_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	struct in_addr in;

	if (!slash || (size_t)(slash - cidr) >= sizeof(net))
		return -EINVAL;
	snprintf(net, sizeof(net), "%.*s", (int)(slash - cidr), cidr);
	if (inet_pton(AF_INET, net, &in) != 1)
		return -EINVAL;
	in.s_addr = htonl(ntohl(in.s_addr) + 1);
	inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN);
	return 0;
}

/* A plugin's error, which the specification makes a JSON object on
 * stdout ({"code": N, "msg": "...", "details": "..."}), as one line:
 * "msg: details", or the output as it is when it is not such an object. */
static char *plugin_error(const char *out)
{
	struct ynode **docs = NULL;
	size_t n = 0;
	char *msg = NULL;

	if (y_parse(out, strlen(out), &docs, &n, NULL) == 0 && n == 1) {
		const char *m = y_path_str(docs[0], "msg"), *d = y_path_str(docs[0], "details");
		if (m && *m)
			msg = d && *d ? xasprintf("%s: %s", m, d) : xstrdup(m);
	}
	for (size_t i = 0; i < n; i++)
		y_free(docs[i]);
	free(docs);
	if (!msg)
		msg = xstrdup(out);
	for (char *c = msg; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	return msg;
}

/* Runs one plugin; its result (stdout) goes to *result when wanted. */
static int plugin(const struct cni_config *c, const char *type, const char *cmd, const char *netns,
		  const char *ifname, const char *args, const char *conf, char **result,
		  struct err *e)
{
	cleanup_free char *path = xasprintf("%s/%s", c->bin_dir, type);
	cleanup_free char *e_cmd = xasprintf("CNI_COMMAND=%s", cmd);
	cleanup_free char *e_id = xasprintf("CNI_CONTAINERID=%s", netns);
	cleanup_free char *e_ns = xasprintf("CNI_NETNS=/run/netns/%s", netns);
	cleanup_free char *e_if = xasprintf("CNI_IFNAME=%s", ifname);
	cleanup_free char *e_path = xasprintf("CNI_PATH=%s", c->bin_dir);
	cleanup_free char *e_args = xasprintf("CNI_ARGS=%s", args ? args : "");
	const char *env[] = {e_cmd, e_id, e_ns, e_if, e_path, e_args, NULL};
	const char *argv[] = {path, NULL};
	struct proc_opts o = {.env = env, .input = conf, .keep_fd = -1, .timeout_ms = 30000};
	cleanup_free char *out = NULL;
	struct err pe = {0};
	int r = proc_run(argv, &o, &out, &pe);

	if (r == 0) {
		if (result) {
			*result = out;
			out = NULL;
		}
		return 0;
	}
	if (!out || !*out)
		return err_set(e, EIO, "CNI %s %s: %s", type, cmd, pe.msg);
	cleanup_free char *msg = plugin_error(out);
	return err_set(e, EIO, "CNI %s %s: %s", type, cmd, msg);
}

/* The bridge is the pods' default gateway: pods on other nodes are
 * reached through the node's routes to their ranges. */
static char *bridge_conf(const struct cni_config *c, const char *cidr, const char *gw)
{
	return xasprintf("{\"cniVersion\":\"1.0.0\",\"name\":\"clusterfs\",\"type\":\"bridge\","
			 "\"bridge\":\"%s\",\"isGateway\":true,\"isDefaultGateway\":true,"
			 "\"ipMasq\":false,"
			 "\"hairpinMode\":true,\"ipam\":{\"type\":\"host-local\","
			 "\"ranges\":[[{\"subnet\":\"%s\",\"gateway\":\"%s\"}]],"
			 "\"dataDir\":\"%s\"}}",
			 c->bridge, cidr, gw, c->data_dir);
}

/* portmap's configuration: the mappings as runtimeConfig (what a runtime
 * passes for the portMappings capability), the chain's previous result
 * when adding. snat lets the host reach a host port on 127.0.0.1. */
static char *portmap_conf(const char *mappings, const char *prev)
{
	return xasprintf("{\"cniVersion\":\"1.0.0\",\"name\":\"clusterfs\",\"type\":\"portmap\","
			 "\"capabilities\":{\"portMappings\":true},\"snat\":true,"
			 "\"runtimeConfig\":{\"portMappings\":%s}%s%s}",
			 mappings, prev ? ",\"prevResult\":" : "", prev ? prev : "");
}

int cni_netns_add(const char *netns, struct err *e)
{
	cleanup_free char *path = xasprintf("/run/netns/%s", netns);
	const char *add[] = {"ip", "netns", "add", netns, NULL};

	if (access(path, F_OK) < 0 && proc_run(add, NULL, NULL, e) != 0)
		return -EIO;
	return 0;
}

int cni_wire(const struct cni_config *c, const char *netns, const char *cidr, const char *ip,
	     const char *ports, struct err *e)
{
	char gw[INET_ADDRSTRLEN];
	int r;

	if (cidr_gateway(cidr, gw) < 0)
		return err_set(e, EINVAL, "pod CIDR \"%s\": not an IPv4 CIDR", cidr);
	cleanup_free char *conf = bridge_conf(c, cidr, gw);
	cleanup_free char *args = xasprintf("IgnoreUnknown=1;IP=%s", ip);
	cleanup_free char *result = NULL;
	/* lo by iproute2 rather than the loopback plugin: the same one ioctl,
	 * for a millisecond of CPU instead of twenty (a Go program's start),
	 * which counts when many pods start at once. */
	const char *lo[] = {"ip", "-n", netns, "link", "set", "lo", "up", NULL};
	if (proc_run(lo, NULL, NULL, e) != 0)
		return -EIO;
	if ((r = plugin(c, "bridge", "ADD", netns, "eth0", args, conf, &result, e)) < 0)
		return r;
	if (ports) {
		cleanup_free char *pm = portmap_conf(ports, result);
		if ((r = plugin(c, "portmap", "ADD", netns, "eth0", NULL, pm, NULL, e)) < 0)
			return r;
	}
	return 0;
}

int cni_del(const struct cni_config *c, const char *netns, const char *cidr, const char *ports,
	    struct err *e)
{
	char gw[INET_ADDRSTRLEN];
	cleanup_free char *path = xasprintf("/run/netns/%s", netns);
	const char *del[] = {"ip", "netns", "delete", netns, NULL};
	int r = 0;

	if (cidr_gateway(cidr, gw) < 0)
		return err_set(e, EINVAL, "pod CIDR \"%s\": not an IPv4 CIDR", cidr);
	cleanup_free char *conf = bridge_conf(c, cidr, gw);
	/* DEL must succeed on what is half gone: the plugins are idempotent. */
	if (ports) {
		cleanup_free char *pm = portmap_conf(ports, NULL);
		r = plugin(c, "portmap", "DEL", netns, "eth0", NULL, pm, NULL, e);
	}
	if (plugin(c, "bridge", "DEL", netns, "eth0", NULL, conf, NULL, e) < 0)
		r = -EIO;
	if (access(path, F_OK) == 0 && proc_run(del, NULL, NULL, e) != 0)
		r = -EIO;
	return r;
}
