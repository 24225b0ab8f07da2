/*
 * kinds-core.c: the core group's kinds besides Pod: Namespace, Node,
 * Service, Endpoints, ConfigMap and Secret.
 *
 * Each is a table and, where the table cannot say everything, a hook
 * that runs after it: a Service's ports get their targetPort and must be
 * named when there are several; a Secret's stringData is folded into its
 * base64 data, the form it is stored and shown in. A Service's clusterIP
 * and nodePorts depend on the other Services: svcalloc.c assigns them
 * when the store writes it.
 */
#include "kinds-internal.h"
#include "svcalloc.h"

#include <ctype.h>
#include <errno.h>

static const struct field namespace_spec_fields[] = {
	FSTRLIST("finalizers"),
	{0},
};

static const struct field namespace_fields[] = {
	FOBJ("spec", namespace_spec_fields),
	FANY("status"),
	{0},
};

const struct kind kind_namespace = {
	.name = "Namespace",
	.plural = "namespaces",
	.api_versions = (const char *const[]){"v1", NULL},
	.fields = namespace_fields,
};

static const struct field taint_fields[] = {
	FSTR("key", .flags = F_REQUIRED),
	FSTR("value"),
	FSTR("effect", .flags = F_REQUIRED, ENUM("NoSchedule", "PreferNoSchedule", "NoExecute")),
	FSTR("timeAdded"),
	{0},
};

static const struct field node_spec_fields[] = {
	FSTR("podCIDR"),	FSTRLIST("podCIDRs"),
	FBOOL("unschedulable"), FLIST("taints", taint_fields),
	FSTR("providerID"),	FANY("configSource"),
	FSTR("externalID"),	{0},
};

static const struct field node_fields[] = {
	FOBJ("spec", node_spec_fields),
	FANY("status"),
	{0},
};

const struct kind kind_node = {
	.name = "Node",
	.plural = "nodes",
	.api_versions = (const char *const[]){"v1", NULL},
	.fields = node_fields,
};

static const struct field service_port_fields[] = {
	FSTR("name", .flags = F_DNS_LABEL),
	FSTR("protocol", ENUM("TCP", "UDP", "SCTP"), .def = "TCP"),
	FINT("port", .flags = F_REQUIRED | F_PORT),
	/* Defaults to port: see check_service_ports(). */
	FINTSTR("targetPort", .flags = F_PORT),
	FINT("nodePort", .flags = F_PORT),
	FSTR("appProtocol"),
	{0},
};

#define TRAFFIC_POLICY(n) FSTR(n, ENUM("Cluster", "Local"))

static const struct field service_spec_fields[] = {
	FSTR("type", ENUM("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
	     .def = "ClusterIP"),
	FSTRMAP("selector", .flags = F_LABELS),
	FLIST("ports", service_port_fields),
	FSTR("clusterIP"),
	FSTRLIST("clusterIPs"),
	FSTRLIST("externalIPs"),
	FSTR("sessionAffinity", ENUM("None", "ClientIP"), .def = "None"),
	FANY("sessionAffinityConfig"),
	FSTR("externalName"),
	TRAFFIC_POLICY("externalTrafficPolicy"),
	TRAFFIC_POLICY("internalTrafficPolicy"),
	FINT("healthCheckNodePort", .flags = F_PORT),
	FSTR("loadBalancerIP"),
	FSTRLIST("loadBalancerSourceRanges"),
	FSTR("loadBalancerClass"),
	FBOOL("allocateLoadBalancerNodePorts"),
	FBOOL("publishNotReadyAddresses"),
	FSTRLIST("ipFamilies"),
	FSTR("ipFamilyPolicy", ENUM("SingleStack", "PreferDualStack", "RequireDualStack")),
	FSTR("trafficDistribution"),
	{0},
};

static int check_service_port(struct ynode *port, const char *path, bool several,
			      struct strmap *names, struct strmap *ports, const char *type,
			      struct err *e)
{
	const char *name = y_path_str(port, "name");
	const char *proto = y_path_str(port, "protocol");
	struct ynode *num = y_get(port, "port");
	char key[32];

	if (several && (!name || !*name))
		return err_set(e, EINVAL,
			       "%s.name: required when the service has more than one port", path);
	if (name && strmap_get(names, name))
		return err_set(e, EINVAL, "%s.name: duplicate name \"%s\"", path, name);
	if (name)
		strmap_put(names, name, port);
	if (!num || num->type != Y_INT)
		return 0;
	snprintf(key, sizeof(key), "%lld/%s", (long long)num->i, proto ? proto : "TCP");
	if (strmap_get(ports, key))
		return err_set(e, EINVAL, "%s: duplicate port %s", path, key);
	strmap_put(ports, key, port);
	if (!y_get(port, "targetPort"))
		y_set(port, "targetPort", y_int(num->i));
	if (y_get(port, "nodePort") && strcmp(type, "NodePort") && strcmp(type, "LoadBalancer"))
		return err_set(e, EINVAL, "%s.nodePort: may not be set when type is %s", path,
			       type);
	return 0;
}

static int check_service_ports(struct ynode *spec, const char *type, struct err *e)
{
	struct ynode *ports = y_get(spec, "ports");
	struct strmap *names = strmap_new(), *seen = strmap_new();
	int r = 0;

	for (size_t i = 0; ports && ports->type == Y_SEQ && i < ports->n && !r; i++) {
		cleanup_free char *p = xasprintf("spec.ports[%zu]", i);
		r = check_service_port(ports->v[i], p, ports->n > 1, names, seen, type, e);
	}
	strmap_free(names);
	strmap_free(seen);
	return r;
}

static int service_validate(struct ynode *obj, struct err *e)
{
	struct ynode *spec = y_get(obj, "spec");
	const char *type = y_path_str(spec, "type");
	const char *ip = y_path_str(spec, "clusterIP");
	struct ynode *ports = y_get(spec, "ports");
	bool external;

	if (!spec || spec->type != Y_MAP)
		return err_set(e, EINVAL, "spec: required");
	type = type ? type : "ClusterIP";
	external = !strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer");
	if (!strcmp(type, "ExternalName")) {
		const char *name = y_path_str(spec, "externalName");
		if (!name || !*name)
			return err_set(e, EINVAL,
				       "spec.externalName: required when type is ExternalName");
		return check_dns_subdomain(name, "spec.externalName", e);
	}
	if ((!ports || ports->type != Y_SEQ || ports->n == 0) && !(ip && !strcmp(ip, "None")))
		return err_set(e, EINVAL, "spec.ports: required");
	if (!external && y_get(spec, "externalTrafficPolicy"))
		return err_set(e, EINVAL,
			       "spec.externalTrafficPolicy: may only be set when type is "
			       "NodePort or LoadBalancer");
	if (external && !y_get(spec, "externalTrafficPolicy"))
		y_set(spec, "externalTrafficPolicy", y_str("Cluster"));
	if (!y_get(spec, "internalTrafficPolicy"))
		y_set(spec, "internalTrafficPolicy", y_str("Cluster"));
	return check_service_ports(spec, type, e);
}

static const struct field service_fields[] = {
	FOBJ("spec", service_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_service = {
	.name = "Service",
	.plural = "services",
	.api_versions = (const char *const[]){"v1", NULL},
	.namespaced = 1,
	.fields = service_fields,
	.validate = service_validate,
	.allocate = svc_allocate,
};

static const struct field endpoint_address_fields[] = {
	FSTR("ip", .flags = F_REQUIRED),
	FSTR("hostname", .flags = F_DNS_LABEL),
	FSTR("nodeName"),
	FANY("targetRef"),
	{0},
};

static const struct field endpoint_port_fields[] = {
	FSTR("name", .flags = F_DNS_LABEL),
	FINT("port", .flags = F_REQUIRED | F_PORT),
	FSTR("protocol", ENUM("TCP", "UDP", "SCTP"), .def = "TCP"),
	FSTR("appProtocol"),
	{0},
};

static const struct field endpoint_subset_fields[] = {
	FLIST("addresses", endpoint_address_fields),
	FLIST("notReadyAddresses", endpoint_address_fields),
	FLIST("ports", endpoint_port_fields),
	{0},
};

static const struct field endpoints_fields[] = {
	FLIST("subsets", endpoint_subset_fields),
	{0},
};

const struct kind kind_endpoints = {
	.name = "Endpoints",
	.plural = "endpoints",
	.api_versions = (const char *const[]){"v1", NULL},
	.namespaced = 1,
	.fields = endpoints_fields,
};

/* A ConfigMap's or Secret's key becomes a file name: [-._a-zA-Z0-9]+, not . or .. */
static int check_data_keys(const struct ynode *n, const char *path, struct err *e)
{
	for (size_t i = 0; n->type == Y_MAP && i < n->n; i++) {
		const char *k = n->keys[i];
		size_t len = strspn(k, "-._abcdefghijklmnopqrstuvwxyz"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
		if (len == 0 || k[len] || len > 253)
			return err_set(e, EINVAL,
				       "%s[%s]: a key must be 1-253 characters of "
				       "letters, digits, '-', '_' and '.'",
				       path, k);
		if (!strncmp(k, "..", 2) || !strcmp(k, "."))
			return err_set(e, EINVAL, "%s[%s]: a key may not be '.' or start with '..'",
				       path, k);
	}
	return 0;
}

static const struct field configmap_fields[] = {
	FSTRMAP("data", .check = check_data_keys),
	{.name = "binaryData", .type = T_MAP, .elem = T_BYTES, .check = check_data_keys},
	FBOOL("immutable"),
	{0},
};

static int configmap_validate(struct ynode *obj, struct err *e)
{
	const struct ynode *data = y_get(obj, "data"), *bin = y_get(obj, "binaryData");

	for (size_t i = 0; bin && bin->type == Y_MAP && i < bin->n; i++)
		if (y_get(data, bin->keys[i]))
			return err_set(e, EINVAL, "binaryData[%s]: the key is also in data",
				       bin->keys[i]);
	return 0;
}

const struct kind kind_configmap = {
	.name = "ConfigMap",
	.plural = "configmaps",
	.api_versions = (const char *const[]){"v1", NULL},
	.namespaced = 1,
	.fields = configmap_fields,
	.validate = configmap_validate,
};

static const struct field secret_fields[] = {
	FSTR("type", .def = "Opaque"),
	{.name = "data", .type = T_MAP, .elem = T_BYTES, .check = check_data_keys},
	FSTRMAP("stringData", .check = check_data_keys),
	FBOOL("immutable"),
	{0},
};

/* The keys a Secret of a well-known type must hold. */
static const struct {
	const char *type;
	const char *keys[3];
} secret_types[] = {
	{"kubernetes.io/tls", {"tls.crt", "tls.key"}},
	{"kubernetes.io/dockerconfigjson", {".dockerconfigjson"}},
	{"kubernetes.io/dockercfg", {".dockercfg"}},
	{"kubernetes.io/ssh-auth", {"ssh-privatekey"}},
};

static int check_secret_type(const struct ynode *obj, struct err *e)
{
	const char *type = y_path_str(obj, "type");
	const struct ynode *data = y_get(obj, "data");

	for (size_t i = 0; type && i < sizeof(secret_types) / sizeof(secret_types[0]); i++) {
		if (strcmp(type, secret_types[i].type))
			continue;
		for (int k = 0; secret_types[i].keys[k]; k++)
			if (!y_get(data, secret_types[i].keys[k]))
				return err_set(e, EINVAL,
					       "data[%s]: required for a secret of type %s",
					       secret_types[i].keys[k], type);
	}
	if (type && !strcmp(type, "kubernetes.io/basic-auth") && !y_get(data, "username") &&
	    !y_get(data, "password"))
		return err_set(e, EINVAL, "data: a secret of type %s needs username or password",
			       type);
	return 0;
}

/*
 * stringData is write-only in Kubernetes: it is merged into data (winning
 * over a data key of the same name) and never shown back.
 */
static int secret_validate(struct ynode *obj, struct err *e)
{
	struct ynode *sd = y_take(obj, "stringData");

	if (sd && sd->type == Y_MAP && sd->n > 0) {
		struct ynode *data = y_submap(obj, "data");
		for (size_t i = 0; i < sd->n; i++) {
			const char *s = sd->v[i]->str ? sd->v[i]->str : "";
			cleanup_free char *b64 = base64_encode((const unsigned char *)s, strlen(s));
			y_set(data, sd->keys[i], y_str(b64));
		}
	}
	y_free(sd);
	return check_secret_type(obj, e);
}

const struct kind kind_secret = {
	.name = "Secret",
	.plural = "secrets",
	.api_versions = (const char *const[]){"v1", NULL},
	.namespaced = 1,
	.secret = 1,
	.fields = secret_fields,
	.validate = secret_validate,
};
