/*
 * test_svcalloc.c: Services' clusterIPs and nodePorts.
 *
 * First the pieces on their own (the service CIDR, where an address sits
 * in it, picking a free slot from a bitmap, the bands that dynamic picks
 * leave to requests made by hand); then through the store, as the server
 * writes Services: what a create is given, what it may ask for, what an
 * update keeps, what a delete frees, a full range, a restart, and many
 * writers creating at once, which must never be given the same address.
 */
#define _GNU_SOURCE
#include "store.h"
#include "svcalloc.h"
#include "tap.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <unistd.h>

static const struct kind *k_svc, *k_ns;

static void test_cidr_parse(void)
{
	struct svc_cidr c;
	struct err e = {0};
	char buf[24];

	ok(svc_cidr_parse("10.96.0.0/16", &c, &e) == 0 && c.net == 0x0a600000 && c.bits == 16 &&
		   svc_cidr_size(&c) == 65536,
	   "10.96.0.0/16 parses: 65536 addresses");
	svc_cidr_format(&c, buf);
	ok(!strcmp(buf, "10.96.0.0/16"), "and formats back (%s)", buf);
	ok(svc_cidr_parse("172.16.0.0/12", &c, &e) == 0 && svc_cidr_size(&c) == 1u << 20,
	   "a /12 is the largest accepted");
	ok(svc_cidr_parse("192.168.7.4/30", &c, &e) == 0 && svc_cidr_size(&c) == 4,
	   "a /30 is the smallest accepted");
	ok(svc_cidr_parse("10.0.0.0/8", &c, &e) == -EINVAL && strstr(e.msg, "/12"),
	   "a /8 is too large: %s", e.msg);
	ok(svc_cidr_parse("10.0.0.0/31", &c, &e) == -EINVAL, "a /31 leaves nothing to hand out");
	ok(svc_cidr_parse("10.96.0.5/16", &c, &e) == -EINVAL && strstr(e.msg, "10.96.0.0/16"),
	   "host bits set are refused, naming the network: %s", e.msg);
	const char *bad[] = {"10.96.0.0",
			     "10.96.0.0/",
			     "/16",
			     "10.96.0/16",
			     "10.96.0.0/x",
			     "10.96.0.0/16x",
			     "300.0.0.0/16",
			     "10.96.0.0/+16",
			     " 10.96.0.0/16",
			     "10.96.0.0/-16",
			     "",
			     "fd00::/108"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(svc_cidr_parse(bad[i], &c, &e) == -EINVAL, "\"%s\" is not a CIDR", bad[i]);
}

static void test_addresses(void)
{
	struct svc_cidr c;
	uint32_t ip;
	char buf[16];

	svc_cidr_parse("10.96.0.0/16", &c, NULL);
	ok(svc_parse_ip("10.96.3.4", &ip) == 0 && ip == 0x0a600304, "an address parses");
	svc_format_ip(ip, buf);
	ok(!strcmp(buf, "10.96.3.4"), "and formats back");
	ok(svc_parse_ip("10.96.3", &ip) < 0 && svc_parse_ip("10.96.3.4.5", &ip) < 0 &&
		   svc_parse_ip("None", &ip) < 0 && svc_parse_ip(NULL, &ip) < 0 &&
		   svc_parse_ip("10.96.3.256", &ip) < 0,
	   "what is not a dotted quad does not");
	ok(svc_cidr_offset(&c, 0x0a600000) == 0, "the network address is offset 0");
	ok(svc_cidr_offset(&c, 0x0a60ffff) == 65535, "the broadcast is the last offset");
	ok(svc_cidr_offset(&c, 0x0a610000) == -1 && svc_cidr_offset(&c, 0x0a5fffff) == -1,
	   "the neighbours of the range are outside it");
}

static void set_bits(uint8_t *bits, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

static void test_pick(void)
{
	uint8_t bits[64] = {0};

	ok(svc_next_free(bits, 0, 100, 40) == 40, "the start itself when free");
	set_bits(bits, 40, 100);
	ok(svc_next_free(bits, 0, 100, 40) == 0, "wraps to the low end past a full top");
	set_bits(bits, 0, 39);
	ok(svc_next_free(bits, 0, 100, 40) == 39, "finds the one free slot");
	ok(svc_next_free(bits, 40, 100, 50) == -1, "-1 when the span is full");
	ok(svc_next_free(bits, 0, 39, 10) == -1, "the span's bounds are kept");

	ok(svc_band(8, 16, 256) == 0, "no band below 16 slots");
	ok(svc_band(256, 16, 256) == 16, "a /24 keeps 16 addresses for requests");
	ok(svc_band(65536, 16, 256) == 256, "a /16 keeps 256");
	ok(svc_band(1u << 20, 16, 256) == 256, "never more than the max");
	ok(svc_band(SVC_NODEPORT_MAX - SVC_NODEPORT_MIN + 1, 32, 128) == 86,
	   "the node port range keeps 86 for requests");

	memset(bits, 0, sizeof(bits));
	bool upper = true;
	for (uint64_t rnd = 0; rnd < 2000; rnd += 7)
		upper &= svc_pick(bits, 500, 64, rnd) >= 64;
	ok(upper, "dynamic picks come from above the band while it has room");
	set_bits(bits, 64, 500);
	long r = svc_pick(bits, 500, 64, 12345);
	ok(r >= 0 && r < 64, "then from the band (%ld)", r);
	set_bits(bits, 0, 64);
	ok(svc_pick(bits, 500, 64, 1) == -1, "-1 when all are taken");
	memset(bits, 0, sizeof(bits));
	set_bits(bits, 0, 3);
	ok(svc_pick(bits, 4, 0, 99) == 3, "a range without a band");
}

/* The store ---------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct store *fresh_store(char *dir)
{
	struct err e = {0};

	strcpy(dir, "/tmp/cfs-svcalloc-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(2);
	}
	struct store *s = store_open(dir, &e);
	struct store_op op = {.type = OP_CREATE, .kind = k_ns, .ns = "", .name = "default"};
	if (!s) {
		printf("# store_open: %s\n", e.msg);
		exit(2);
	}
	op.doc = y_map();
	obj_normalize(k_ns, "", "default", op.doc, &e);
	store_write(s, &op, 1, &e);
	return s;
}

static void drop_store(struct store *s, const char *dir)
{
	store_close(s);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes the Service default/name from YAML; e (may be NULL) says why not. */
static int put_svc(struct store *s, enum op_type t, const char *name, const char *yaml,
		   struct err *e)
{
	struct store_op op = {.type = t, .kind = k_svc, .ns = "default", .name = name};
	struct err ignored;
	int r;

	e = e ? e : &ignored;
	if ((r = obj_parse_one(yaml, strlen(yaml), &op.doc, e)) < 0 ||
	    (r = obj_normalize(k_svc, "default", name, op.doc, e)) < 0) {
		y_free(op.doc);
		return r;
	}
	return store_write(s, &op, 1, e);
}

static int del_svc(struct store *s, const char *name)
{
	struct store_op op = {.type = OP_DELETE, .kind = k_svc, .ns = "default", .name = name};
	struct err e;

	return store_write(s, &op, 1, &e);
}

/* A field of the stored Service (a dotted path), copied; "" when absent. */
static char *svc_field(struct store *s, const char *name, const char *path)
{
	struct sobj *o = store_get(s, k_svc, "default", name);
	const char *v = o ? y_path_str(o->doc, path) : NULL;
	char *c = xstrdup(v ? v : "");

	sobj_unref(o);
	return c;
}

/* nodePort of the Service's i-th port, 0 when it has none. */
static int64_t node_port_of(struct store *s, const char *name, size_t i)
{
	struct sobj *o = store_get(s, k_svc, "default", name);
	const struct ynode *ports = o ? y_path(o->doc, "spec.ports") : NULL;
	const struct ynode *np = ports && i < ports->n ? y_get(ports->v[i], "nodePort") : NULL;
	int64_t v = np ? np->i : 0;

	sobj_unref(o);
	return v;
}

static bool in_default_cidr(const char *ip)
{
	uint32_t a;
	long off = svc_parse_ip(ip, &a) == 0 ? svc_cidr_offset(svc_get_cidr(), a) : -1;

	return off > 1 && off < 65535;
}

#define PORT80 "spec:\n  ports: [{port: 80}]\n"

static void test_cluster_ip(void)
{
	char dir[64];
	struct store *s = fresh_store(dir);
	struct err e = {0};

	diag("clusterIP through the store");
	ok(put_svc(s, OP_CREATE, "a", PORT80, &e) == 0, "a Service is created");
	cleanup_free char *ip = svc_field(s, "a", "spec.clusterIP");
	cleanup_free char *ips0 = NULL;
	{
		struct sobj *o = store_get(s, k_svc, "default", "a");
		const struct ynode *ips = y_path(o->doc, "spec.clusterIPs");
		ips0 = xstrdup(ips && ips->n == 1 ? ips->v[0]->str : "");
		sobj_unref(o);
	}
	ok(in_default_cidr(ip), "it is given an address of 10.96.0.0/16 (%s)", ip);
	ok(!strcmp(ip, ips0), "clusterIPs holds the same one");

	ok(put_svc(s, OP_CREATE, "b", "spec:\n  clusterIP: 10.96.0.50\n  ports: [{port: 80}]\n",
		   &e) == 0,
	   "a free address asked for is given");
	cleanup_free char *ipb = svc_field(s, "b", "spec.clusterIP");
	ok(!strcmp(ipb, "10.96.0.50"), "it is the one asked for");
	ok(put_svc(s, OP_CREATE, "c", "spec:\n  clusterIPs: [10.96.0.51]\n  ports: [{port: 80}]\n",
		   &e) == 0,
	   "clusterIPs alone asks too");
	cleanup_free char *ipc = svc_field(s, "c", "spec.clusterIP");
	ok(!strcmp(ipc, "10.96.0.51"), "and sets clusterIP");

	int r = put_svc(s, OP_CREATE, "d",
			"spec:\n  clusterIP: 10.96.0.50\n  ports: [{port: 80}]\n", &e);
	ok(r == -EEXIST && strstr(e.msg, "spec.clusterIP: 10.96.0.50 is already allocated to "
					 "service default/b"),
	   "a taken address is refused, naming its holder: %s", e.msg);
	ok(!store_exists(s, k_svc, "default", "d"), "and nothing is created");
	r = put_svc(s, OP_CREATE, "d", "spec:\n  clusterIP: 10.97.0.5\n  ports: [{port: 80}]\n",
		    &e);
	ok(r == -EINVAL && strstr(e.msg, "not in the service CIDR 10.96.0.0/16"),
	   "an address outside the CIDR is refused: %s", e.msg);
	r = put_svc(s, OP_CREATE, "d", "spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 80}]\n",
		    &e);
	ok(r == -EINVAL && strstr(e.msg, "reserved"), "the first address is reserved: %s", e.msg);
	r = put_svc(s, OP_CREATE, "d", "spec:\n  clusterIP: 10.96.255.255\n  ports: [{port: 80}]\n",
		    &e);
	ok(r == -EINVAL && strstr(e.msg, "broadcast"), "so is the broadcast: %s", e.msg);
	r = put_svc(s, OP_CREATE, "d", "spec:\n  clusterIP: 10.96.0.0\n  ports: [{port: 80}]\n",
		    &e);
	ok(r == -EINVAL && strstr(e.msg, "network"), "and the network address: %s", e.msg);
	r = put_svc(s, OP_CREATE, "d", "spec:\n  clusterIP: web\n  ports: [{port: 80}]\n", &e);
	ok(r == -EINVAL && strstr(e.msg, "not an IPv4 address"), "a name is not an address: %s",
	   e.msg);
	r = put_svc(s, OP_CREATE, "d",
		    "spec:\n  clusterIP: 10.96.0.60\n  clusterIPs: [10.96.0.61]\n"
		    "  ports: [{port: 80}]\n",
		    &e);
	ok(r == -EINVAL && strstr(e.msg, "clusterIPs[0]"), "clusterIPs must agree: %s", e.msg);
	r = put_svc(s, OP_CREATE, "d",
		    "spec:\n  clusterIPs: [10.96.0.60, 'fd00::1']\n  ports: [{port: 80}]\n", &e);
	ok(r == -EINVAL && strstr(e.msg, "IPv4 only"), "dual-stack is refused: %s", e.msg);
	r = put_svc(s, OP_CREATE, "d", "spec:\n  ipFamilies: [IPv6]\n  ports: [{port: 80}]\n", &e);
	ok(r == -EINVAL && strstr(e.msg, "spec.ipFamilies[0]"), "so is IPv6: %s", e.msg);
	ok(put_svc(s, OP_CREATE, "kubernetes",
		   "spec:\n  clusterIP: 10.96.0.1\n  ports: [{name: https, port: 443}]\n", &e) == 0,
	   "default/kubernetes may have the first address");

	ok(put_svc(s, OP_CREATE, "h", "spec:\n  clusterIP: None\n  selector: {app: db}\n", &e) == 0,
	   "a headless Service is created");
	cleanup_free char *iph = svc_field(s, "h", "spec.clusterIP");
	ok(!strcmp(iph, "None"), "and stays None");
	r = put_svc(s, OP_CREATE, "hn",
		    "spec:\n  type: NodePort\n  clusterIP: None\n  ports: [{port: 80}]\n", &e);
	ok(r == -EINVAL && strstr(e.msg, "headless"), "a headless NodePort is refused: %s", e.msg);
	ok(put_svc(s, OP_CREATE, "x", "spec:\n  type: ExternalName\n  externalName: db.example\n",
		   &e) == 0,
	   "an ExternalName Service is created");
	cleanup_free char *ipx = svc_field(s, "x", "spec.clusterIP");
	ok(!*ipx, "without an address");

	/* Updates */
	ok(put_svc(s, OP_PUT, "a", "spec:\n  selector: {app: other}\n  ports: [{port: 80}]\n",
		   &e) == 0,
	   "an update that omits clusterIP is taken");
	cleanup_free char *ip2 = svc_field(s, "a", "spec.clusterIP");
	ok(!strcmp(ip, ip2), "and keeps the address (%s)", ip2);
	cleanup_free char *gen = svc_field(s, "a", "metadata.generation");
	ok(!strcmp(gen, "2"), "a spec change bumps the generation as usual");
	ok(put_svc(s, OP_PUT, "a", "spec:\n  selector: {app: other}\n  ports: [{port: 80}]\n",
		   &e) == 0,
	   "the same write again");
	cleanup_free char *gen2 = svc_field(s, "a", "metadata.generation");
	ok(!strcmp(gen2, "2"), "changes nothing");
	r = put_svc(s, OP_PUT, "a", "spec:\n  clusterIP: 10.96.0.99\n  ports: [{port: 80}]\n", &e);
	ok(r == -EINVAL && strstr(e.msg, "may not change"), "changing the address is refused: %s",
	   e.msg);
	r = put_svc(s, OP_PUT, "h", "spec:\n  clusterIP: 10.96.0.98\n  ports: [{port: 80}]\n", &e);
	ok(r == -EINVAL, "a headless Service cannot be given an address");
	ok(put_svc(s, OP_PUT, "x", PORT80, &e) == 0, "ExternalName turned ClusterIP");
	cleanup_free char *ipx2 = svc_field(s, "x", "spec.clusterIP");
	ok(in_default_cidr(ipx2), "is given an address (%s)", ipx2);
	ok(put_svc(s, OP_PUT, "b", "spec:\n  type: ExternalName\n  externalName: db.example\n",
		   &e) == 0,
	   "ClusterIP turned ExternalName");
	cleanup_free char *ipb2 = svc_field(s, "b", "spec.clusterIP");
	ok(!*ipb2, "loses its address");
	ok(put_svc(s, OP_CREATE, "d", "spec:\n  clusterIP: 10.96.0.50\n  ports: [{port: 80}]\n",
		   &e) == 0,
	   "which another may then have");

	/* Delete */
	ok(del_svc(s, "d") == 0, "a Service is deleted");
	ok(put_svc(s, OP_CREATE, "e", "spec:\n  clusterIP: 10.96.0.50\n  ports: [{port: 80}]\n",
		   &e) == 0,
	   "its address is free again");
	drop_store(s, dir);
}

static void test_node_ports(void)
{
	char dir[64];
	struct store *s = fresh_store(dir);
	struct err e = {0};
	int r;

	diag("nodePorts through the store");
	ok(put_svc(s, OP_CREATE, "n1",
		   "spec:\n  type: NodePort\n  ports: [{name: a, port: 80}, {name: b, port: 81}]\n",
		   &e) == 0,
	   "a NodePort Service is created");
	int64_t a = node_port_of(s, "n1", 0), b = node_port_of(s, "n1", 1);
	ok(a >= SVC_NODEPORT_MIN && a <= SVC_NODEPORT_MAX && b >= SVC_NODEPORT_MIN &&
		   b <= SVC_NODEPORT_MAX && a != b,
	   "each port is given its own node port (%lld, %lld)", (long long)a, (long long)b);
	ok(put_svc(s, OP_CREATE, "n2",
		   "spec:\n  type: LoadBalancer\n  ports: [{port: 80, nodePort: 30007}]\n",
		   &e) == 0,
	   "a node port asked for is given (LoadBalancer)");
	ok(node_port_of(s, "n2", 0) == 30007, "it is the one asked for");
	r = put_svc(s, OP_CREATE, "n3",
		    "spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30007}]\n", &e);
	ok(r == -EEXIST && strstr(e.msg, "spec.ports[0].nodePort: 30007 is already allocated to "
					 "service default/n2"),
	   "a taken one is refused: %s", e.msg);
	r = put_svc(s, OP_CREATE, "n3",
		    "spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n", &e);
	ok(r == -EINVAL && strstr(e.msg, "outside the node port range 30000-32767"),
	   "one outside the range is refused: %s", e.msg);
	r = put_svc(s, OP_CREATE, "n3",
		    "spec:\n  type: NodePort\n  ports: [{name: a, port: 80, nodePort: 30100},"
		    " {name: b, port: 81, nodePort: 30100}]\n",
		    &e);
	ok(r == -EINVAL && strstr(e.msg, "twice"), "one twice for one protocol is refused: %s",
	   e.msg);
	ok(put_svc(s, OP_CREATE, "dns",
		   "spec:\n  type: NodePort\n  ports: [{name: u, port: 53, protocol: UDP},"
		   " {name: t, port: 53, protocol: TCP}]\n",
		   &e) == 0,
	   "a port number served over two protocols");
	ok(node_port_of(s, "dns", 0) == node_port_of(s, "dns", 1),
	   "gets one node port for both (%lld)", (long long)node_port_of(s, "dns", 0));
	ok(put_svc(s, OP_CREATE, "lb",
		   "spec:\n  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n"
		   "  ports: [{port: 80}]\n",
		   &e) == 0 &&
		   node_port_of(s, "lb", 0) == 0,
	   "allocateLoadBalancerNodePorts: false allocates none");

	ok(put_svc(s, OP_PUT, "n1",
		   "spec:\n  type: NodePort\n  ports: [{name: b, port: 91}, {name: a, port: 90},"
		   " {name: c, port: 92}]\n",
		   &e) == 0,
	   "an update that omits the node ports");
	ok(node_port_of(s, "n1", 0) == b && node_port_of(s, "n1", 1) == a,
	   "keeps each port's by its name");
	int64_t c = node_port_of(s, "n1", 2);
	ok(c && c != a && c != b, "a new port gets a new one (%lld)", (long long)c);
	ok(put_svc(s, OP_PUT, "n1",
		   "spec:\n  type: NodePort\n  ports: [{name: b, port: 91, nodePort: 30500}]\n",
		   &e) == 0 &&
		   node_port_of(s, "n1", 0) == 30500,
	   "an update may move a port to a free node port");
	cleanup_free char *yaml = xasprintf(
		"spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: %lld}]\n", (long long)b);
	ok(put_svc(s, OP_CREATE, "n4", yaml, &e) == 0, "and the one it left is free again");
	ok(del_svc(s, "n2") == 0, "a Service is deleted");
	ok(put_svc(s, OP_CREATE, "n5",
		   "spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30007}]\n", &e) == 0,
	   "its node port is free again");
	drop_store(s, dir);
}

/* Writes Services p and q (both from yaml) in one store_write(), as apply does. */
static int put_pair(struct store *s, const char *yaml, struct err *e)
{
	struct store_op ops[2] = {0};
	const char *names[2] = {"p", "q"};

	for (int i = 0; i < 2; i++) {
		ops[i] = (struct store_op){
			.type = OP_CREATE, .kind = k_svc, .ns = "default", .name = names[i]};
		obj_parse_one(yaml, strlen(yaml), &ops[i].doc, e);
		obj_normalize(k_svc, "default", names[i], ops[i].doc, e);
	}
	return store_write(s, ops, 2, e);
}

static void test_one_write(void)
{
	char dir[64];
	struct store *s = fresh_store(dir);
	struct err e = {0};

	diag("several Services in one write");
	svc_set_cidr("10.1.0.0/30", NULL); /* one address to hand out */
	int r = put_pair(s, PORT80, &e);
	ok(r == -ENOSPC && strstr(e.msg, "document 2"),
	   "the second sees the address the first took: %s", e.msg);
	svc_set_cidr("10.1.0.0/29", NULL);
	r = put_pair(s, "spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 31000}]\n", &e);
	ok(r == -EEXIST && strstr(e.msg, "document 2"), "and the node port the first asked for: %s",
	   e.msg);
	ok(!store_exists(s, k_svc, "default", "p"), "and neither is created");
	svc_set_cidr("10.1.0.0/30", NULL);
	ok(put_svc(s, OP_CREATE, "p", PORT80, &e) == 0, "the one address is handed out");
	cleanup_free char *ip = svc_field(s, "p", "spec.clusterIP");
	ok(!strcmp(ip, "10.1.0.2"), "it is 10.1.0.2");
	r = put_svc(s, OP_CREATE, "q", PORT80, &e);
	ok(r == -ENOSPC && strstr(e.msg, "no free address"), "then the range is full: %s", e.msg);
	ok(del_svc(s, "p") == 0 && put_svc(s, OP_CREATE, "q", PORT80, &e) == 0,
	   "until a Service is deleted");

	/* A restart finds the addresses in the stored objects. */
	svc_set_cidr("10.1.0.0/29", NULL);
	ok(put_svc(s, OP_CREATE, "r", "spec:\n  clusterIP: 10.1.0.3\n  ports: [{port: 80}]\n",
		   &e) == 0,
	   "a larger range");
	store_close(s);
	s = store_open(dir, &e);
	r = put_svc(s, OP_CREATE, "t", "spec:\n  clusterIP: 10.1.0.3\n  ports: [{port: 80}]\n", &e);
	ok(r == -EEXIST, "after a restart a taken address is still taken");
	svc_set_cidr("10.2.0.0/24", NULL);
	ok(put_svc(s, OP_PUT, "r", "spec:\n  selector: {a: b}\n  ports: [{port: 80}]\n", &e) == 0,
	   "under another CIDR a Service is updated");
	cleanup_free char *ipr = svc_field(s, "r", "spec.clusterIP");
	ok(!strcmp(ipr, "10.1.0.3"), "and keeps its address from the old one");
	svc_set_cidr(SVC_CIDR_DEFAULT, NULL);
	drop_store(s, dir);
}

#define WRITERS	   8
#define PER_WRITER 25

struct writer {
	struct store *s;
	int id, failed;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char name[32];

	for (int i = 0; i < PER_WRITER; i++) {
		snprintf(name, sizeof(name), "w%d-%d", w->id, i);
		w->failed += put_svc(w->s, OP_CREATE, name,
				     "spec:\n  type: NodePort\n  ports: [{port: 80}]\n", NULL) != 0;
	}
	return NULL;
}

static void test_concurrent(void)
{
	char dir[64];
	struct store *s = fresh_store(dir);
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	int failed = 0;

	diag("many writers at once");
	svc_set_cidr("10.3.0.0/24", NULL); /* 253 addresses for 200 Services */
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.s = s, .id = i};
		pthread_create(&t[i], NULL, writer_main, &w[i]);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		failed += w[i].failed;
	}
	ok(failed == 0, "%d Services created by %d writers at once", WRITERS * PER_WRITER, WRITERS);
	size_t n;
	char **names = store_list(s, k_svc, "default", &n);
	struct strmap *ips = strmap_new(), *ports = strmap_new();
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *ip = svc_field(s, names[i], "spec.clusterIP");
		char port[16];
		snprintf(port, sizeof(port), "%lld", (long long)node_port_of(s, names[i], 0));
		strmap_put(ips, ip, names[i]);
		strmap_put(ports, port, names[i]);
	}
	ok(n == WRITERS * PER_WRITER && strmap_count(ips) == n,
	   "every one has an address of its own (%zu of %zu)", strmap_count(ips), n);
	ok(strmap_count(ports) == n, "and a node port of its own (%zu)", strmap_count(ports));
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	strmap_free(ips);
	strmap_free(ports);
	svc_set_cidr(SVC_CIDR_DEFAULT, NULL);
	drop_store(s, dir);
}

int main(void)
{
	k_svc = kind_by_name("Service");
	k_ns = kind_by_name("Namespace");
	test_cidr_parse();
	test_addresses();
	test_pick();
	test_cluster_ip();
	test_node_ports();
	test_one_write();
	test_concurrent();
	return done_testing();
}
