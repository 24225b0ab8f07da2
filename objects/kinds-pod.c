/*
 * kinds-pod.c: the pod spec, the pod template every workload embeds, and
 * the Pod kind.
 *
 * The tables say the fields Kubernetes users write in a pod spec, with
 * the defaults the API server fills in. What a table cannot say is done
 * by kind_check_pod_spec() after it: the imagePullPolicy default, which
 * depends on the image's tag; a volume with no source becoming an
 * emptyDir; names that must be unique; mounts that must name a volume;
 * the restartPolicy a workload allows its pods.
 */
#include "kinds-internal.h"

#include <errno.h>

/* configMapKeyRef and secretKeyRef. */
static const struct field key_ref_fields[] = {
	FSTR("name", .flags = F_REQUIRED),
	FSTR("key", .flags = F_REQUIRED),
	FBOOL("optional"),
	{0},
};

static const struct field field_ref_fields[] = {
	FSTR("apiVersion"),
	FSTR("fieldPath", .flags = F_REQUIRED),
	{0},
};

static const struct field resource_ref_fields[] = {
	FSTR("containerName"),
	FSTR("resource", .flags = F_REQUIRED),
	FQTY("divisor"),
	{0},
};

static const char *const value_sources[] = {"configMapKeyRef", "secretKeyRef", "fieldRef",
					    "resourceFieldRef", NULL};

static const struct field env_source_fields[] = {
	FOBJ("configMapKeyRef", key_ref_fields),
	FOBJ("secretKeyRef", key_ref_fields),
	FOBJ("fieldRef", field_ref_fields),
	FOBJ("resourceFieldRef", resource_ref_fields),
	{0},
};

static const struct field env_fields[] = {
	FSTR("name", .flags = F_REQUIRED),
	FSTR("value"),
	FOBJ("valueFrom", env_source_fields),
	{0},
};

/* configMapRef and secretRef. */
static const struct field ref_fields[] = {
	FSTR("name", .flags = F_REQUIRED),
	FBOOL("optional"),
	{0},
};

static const char *const env_from_sources[] = {"configMapRef", "secretRef", NULL};

static const struct field env_from_fields[] = {
	FOBJ("configMapRef", ref_fields),
	FOBJ("secretRef", ref_fields),
	FSTR("prefix"),
	{0},
};

#define PROTOCOL(...) FSTR("protocol", ENUM("TCP", "UDP", "SCTP"), .def = "TCP", __VA_ARGS__)

static const struct field container_port_fields[] = {
	FSTR("name", .flags = F_DNS_LABEL),
	FINT("containerPort", .flags = F_REQUIRED | F_PORT),
	FINT("hostPort", .flags = F_PORT),
	FSTR("hostIP"),
	PROTOCOL(),
	{0},
};

static const struct field resources_fields[] = {
	FQTYMAP("requests"),
	FQTYMAP("limits"),
	FANY("claims"),
	{0},
};

static const struct field mount_fields[] = {
	FSTR("name", .flags = F_REQUIRED),
	FSTR("mountPath", .flags = F_REQUIRED),
	FBOOL("readOnly"),
	FSTR("subPath"),
	FSTR("subPathExpr"),
	FSTR("mountPropagation", ENUM("None", "HostToContainer", "Bidirectional")),
	{0},
};

static const struct field exec_fields[] = {
	FSTRLIST("command"),
	{0},
};

static const struct field header_fields[] = {
	FSTR("name", .flags = F_REQUIRED),
	FSTR("value"),
	{0},
};

static const struct field http_get_fields[] = {
	FSTR("path", .def = "/"),
	FINTSTR("port", .flags = F_REQUIRED | F_PORT),
	FSTR("host"),
	FSTR("scheme", ENUM("HTTP", "HTTPS"), .def = "HTTP"),
	FLIST("httpHeaders", header_fields),
	{0},
};

static const struct field tcp_socket_fields[] = {
	FINTSTR("port", .flags = F_REQUIRED | F_PORT),
	FSTR("host"),
	{0},
};

static const struct field grpc_fields[] = {
	FINT("port", .flags = F_REQUIRED | F_PORT),
	FSTR("service"),
	{0},
};

static const char *const probe_handlers[] = {"exec", "httpGet", "tcpSocket", "grpc", NULL};

static const struct field probe_fields[] = {
	FOBJ("exec", exec_fields),
	FOBJ("httpGet", http_get_fields),
	FOBJ("tcpSocket", tcp_socket_fields),
	FOBJ("grpc", grpc_fields),
	FINT("initialDelaySeconds", .flags = F_NONNEG),
	FINT("periodSeconds", .flags = F_POSITIVE, .def = "10"),
	FINT("timeoutSeconds", .flags = F_POSITIVE, .def = "1"),
	FINT("successThreshold", .flags = F_POSITIVE, .def = "1"),
	FINT("failureThreshold", .flags = F_POSITIVE, .def = "3"),
	FINT("terminationGracePeriodSeconds", .flags = F_POSITIVE),
	{0},
};

static const struct field container_fields[] = {
	FSTR("name", .flags = F_REQUIRED | F_DNS_LABEL),
	FSTR("image", .flags = F_REQUIRED),
	FSTRLIST("command"),
	FSTRLIST("args"),
	FSTR("workingDir"),
	FLIST("env", env_fields),
	FLIST("envFrom", env_from_fields),
	FLIST("ports", container_port_fields),
	FOBJ("resources", resources_fields),
	FANY("resizePolicy"),
	FLIST("volumeMounts", mount_fields),
	FANY("volumeDevices"),
	FOBJ("livenessProbe", probe_fields),
	FOBJ("readinessProbe", probe_fields),
	FOBJ("startupProbe", probe_fields),
	FANY("lifecycle"),
	/* The default depends on the image's tag: see pull_policy_for(). */
	FSTR("imagePullPolicy", ENUM("Always", "IfNotPresent", "Never")),
	/* Only an init container may say Always: a sidecar. */
	FSTR("restartPolicy", ENUM("Always")),
	FANY("securityContext"),
	FBOOL("stdin"),
	FBOOL("stdinOnce"),
	FBOOL("tty"),
	FSTR("terminationMessagePath", .def = "/dev/termination-log"),
	FSTR("terminationMessagePolicy", ENUM("File", "FallbackToLogsOnError"), .def = "File"),
	{0},
};

/* The items of a configMap or secret volume. */
static const struct field key_path_fields[] = {
	FSTR("key", .flags = F_REQUIRED),
	FSTR("path", .flags = F_REQUIRED),
	FINT("mode", .flags = F_NONNEG),
	{0},
};

static const struct field empty_dir_fields[] = {
	FSTR("medium"),
	FQTY("sizeLimit"),
	{0},
};

static const struct field host_path_fields[] = {
	FSTR("path", .flags = F_REQUIRED),
	FSTR("type", ENUM("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
			  "CharDevice", "BlockDevice")),
	{0},
};

/* 420 is 0644, which is how the API server shows the default mode. */
static const struct field configmap_vol_fields[] = {
	FSTR("name", .flags = F_REQUIRED),
	FLIST("items", key_path_fields),
	FINT("defaultMode", .flags = F_NONNEG, .def = "420"),
	FBOOL("optional"),
	{0},
};

static const struct field secret_vol_fields[] = {
	FSTR("secretName", .flags = F_REQUIRED),
	FLIST("items", key_path_fields),
	FINT("defaultMode", .flags = F_NONNEG, .def = "420"),
	FBOOL("optional"),
	{0},
};

static const struct field pvc_vol_fields[] = {
	FSTR("claimName", .flags = F_REQUIRED),
	FBOOL("readOnly"),
	{0},
};

static const char *const volume_sources[] = {
	"emptyDir",    "hostPath",  "configMap", "secret", "persistentVolumeClaim",
	"downwardAPI", "projected", "nfs",	 "csi",	   "ephemeral",
	NULL,
};

static const struct field volume_fields[] = {
	FSTR("name", .flags = F_REQUIRED | F_DNS_LABEL),
	FOBJ("emptyDir", empty_dir_fields),
	FOBJ("hostPath", host_path_fields),
	FOBJ("configMap", configmap_vol_fields),
	FOBJ("secret", secret_vol_fields),
	FOBJ("persistentVolumeClaim", pvc_vol_fields),
	FANY("downwardAPI"),
	FANY("projected"),
	FANY("nfs"),
	FANY("csi"),
	FANY("ephemeral"),
	{0},
};

static const struct field node_selector_req_fields[] = {
	FSTR("key", .flags = F_REQUIRED),
	FSTR("operator", .flags = F_REQUIRED,
	     ENUM("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")),
	FSTRLIST("values"),
	{0},
};

static const struct field node_selector_term_fields[] = {
	FLIST("matchExpressions", node_selector_req_fields),
	FLIST("matchFields", node_selector_req_fields),
	{0},
};

static const struct field node_selector_fields[] = {
	FLIST("nodeSelectorTerms", node_selector_term_fields, .flags = F_REQUIRED),
	{0},
};

static const struct field preferred_term_fields[] = {
	FINT("weight", .flags = F_REQUIRED | F_POSITIVE),
	FOBJ("preference", node_selector_term_fields, .flags = F_REQUIRED),
	{0},
};

static const struct field node_affinity_fields[] = {
	FOBJ("requiredDuringSchedulingIgnoredDuringExecution", node_selector_fields),
	FLIST("preferredDuringSchedulingIgnoredDuringExecution", preferred_term_fields),
	{0},
};

static const struct field affinity_fields[] = {
	FOBJ("nodeAffinity", node_affinity_fields),
	FANY("podAffinity"),
	FANY("podAntiAffinity"),
	{0},
};

static const struct field toleration_fields[] = {
	FSTR("key"),
	FSTR("operator", ENUM("Exists", "Equal"), .def = "Equal"),
	FSTR("value"),
	FSTR("effect", ENUM("NoSchedule", "PreferNoSchedule", "NoExecute")),
	FINT("tolerationSeconds"),
	{0},
};

/* A LocalObjectReference. */
static const struct field name_fields[] = {
	FSTR("name", .flags = F_REQUIRED),
	{0},
};

static const struct field pod_spec_fields[] = {
	FLIST("containers", container_fields, .flags = F_REQUIRED),
	FLIST("initContainers", container_fields),
	FANY("ephemeralContainers"),
	FLIST("volumes", volume_fields),
	FSTR("restartPolicy", ENUM("Always", "OnFailure", "Never"), .def = "Always"),
	FSTR("nodeName"),
	FSTRMAP("nodeSelector", .flags = F_LABELS),
	FOBJ("affinity", affinity_fields),
	FLIST("tolerations", toleration_fields),
	FINT("priority"),
	FSTR("priorityClassName"),
	FSTR("preemptionPolicy", ENUM("PreemptLowerPriority", "Never")),
	FINT("terminationGracePeriodSeconds", .flags = F_NONNEG, .def = "30"),
	FINT("activeDeadlineSeconds", .flags = F_POSITIVE),
	FBOOL("hostNetwork"),
	FBOOL("hostPID"),
	FBOOL("hostIPC"),
	FANY("hostAliases"),
	FSTR("hostname", .flags = F_DNS_LABEL),
	FSTR("subdomain", .flags = F_DNS_LABEL),
	FBOOL("setHostnameAsFQDN"),
	FSTR("dnsPolicy", ENUM("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
	     .def = "ClusterFirst"),
	FANY("dnsConfig"),
	FSTR("serviceAccountName"),
	FSTR("serviceAccount"),
	FBOOL("automountServiceAccountToken"),
	FSTR("schedulerName", .def = "default-scheduler"),
	FANY("securityContext"),
	FLIST("imagePullSecrets", name_fields),
	FBOOL("shareProcessNamespace"),
	FBOOL("enableServiceLinks"),
	FANY("readinessGates"),
	FANY("topologySpreadConstraints"),
	FSTR("runtimeClassName"),
	FANY("overhead"),
	FANY("os"),
	FANY("schedulingGates"),
	FANY("resourceClaims"),
	{0},
};

const struct field pod_template_fields[] = {
	FOBJ("metadata", metadata_fields),
	FOBJ("spec", pod_spec_fields, .flags = F_REQUIRED),
	{0},
};

/*
 * Kubernetes pulls an image on every start only when it may have changed
 * under the same name: no tag (which means :latest) or :latest itself. A
 * digest pins the image, so a digest without a tag never needs a pull.
 */
static const char *pull_policy_for(const char *image)
{
	const char *slash = strrchr(image, '/');
	const char *name = slash ? slash + 1 : image;
	const char *at = strchr(name, '@');
	const char *colon = strchr(name, ':');

	if (colon && (!at || colon < at)) {
		size_t len = at ? (size_t)(at - colon - 1) : strlen(colon + 1);
		return len == 6 && !strncmp(colon + 1, "latest", 6) ? "Always" : "IfNotPresent";
	}
	return at ? "IfNotPresent" : "Always";
}

/* Records name in seen; fails when it is already there. */
static int check_unique(struct strmap *seen, const char *name, const char *path, struct err *e)
{
	if (strmap_get(seen, name))
		return err_set(e, EINVAL, "%s.name: duplicate name \"%s\"", path, name);
	strmap_put(seen, name, (void *)name);
	return 0;
}

/* "must set exactly one of a, b, c" for the keys of n. */
static int one_of(const struct ynode *n, const char *const *keys, const char *path, struct err *e)
{
	struct strbuf sb = {0};

	if (kind_count_keys(n, keys) == 1)
		return 0;
	for (int i = 0; keys[i]; i++)
		sb_printf(&sb, "%s%s", i ? ", " : "", keys[i]);
	int r = err_set(e, EINVAL, "%s: must set exactly one of %s", path, sb.buf);
	sb_free(&sb);
	return r;
}

static int check_env(const struct ynode *c, const char *path, struct err *e)
{
	const struct ynode *env = y_get(c, "env"), *from = y_get(c, "envFrom");
	int r;

	for (size_t i = 0; env && env->type == Y_SEQ && i < env->n; i++) {
		const struct ynode *src = y_get(env->v[i], "valueFrom");
		if (!src)
			continue;
		cleanup_free char *p = xasprintf("%s.env[%zu].valueFrom", path, i);
		if (y_get(env->v[i], "value"))
			return err_set(e, EINVAL, "%s: may not be set together with value", p);
		if ((r = one_of(src, value_sources, p, e)) < 0)
			return r;
	}
	for (size_t i = 0; from && from->type == Y_SEQ && i < from->n; i++) {
		cleanup_free char *p = xasprintf("%s.envFrom[%zu]", path, i);
		if ((r = one_of(from->v[i], env_from_sources, p, e)) < 0)
			return r;
	}
	return 0;
}

static int check_probes(const struct ynode *c, const char *path, struct err *e)
{
	static const char *const probes[] = {"livenessProbe", "readinessProbe", "startupProbe"};
	int r;

	for (int i = 0; i < 3; i++) {
		const struct ynode *probe = y_get(c, probes[i]);
		if (!probe)
			continue;
		cleanup_free char *p = xasprintf("%s.%s", path, probes[i]);
		if ((r = one_of(probe, probe_handlers, p, e)) < 0)
			return r;
		const struct ynode *st = y_get(probe, "successThreshold");
		if (i != 1 && st && st->type == Y_INT && st->i != 1)
			return err_set(e, EINVAL, "%s.successThreshold: must be 1", p);
	}
	return 0;
}

static int check_mounts(const struct ynode *c, const char *path, struct strmap *volumes,
			struct err *e)
{
	const struct ynode *mounts = y_get(c, "volumeMounts");
	struct strmap *paths = strmap_new();
	int r = 0;

	for (size_t i = 0; mounts && mounts->type == Y_SEQ && i < mounts->n && !r; i++) {
		const char *name = y_path_str(mounts->v[i], "name");
		const char *mp = y_path_str(mounts->v[i], "mountPath");
		cleanup_free char *p = xasprintf("%s.volumeMounts[%zu]", path, i);
		if (name && !strmap_get(volumes, name))
			r = err_set(e, EINVAL, "%s.name: no volume named \"%s\" in the pod", p,
				    name);
		else if (mp && strmap_get(paths, mp))
			r = err_set(e, EINVAL, "%s.mountPath: \"%s\" is mounted twice", p, mp);
		else if (mp)
			strmap_put(paths, mp, (void *)mp);
	}
	strmap_free(paths);
	return r;
}

static int check_container(struct ynode *c, const char *path, bool init, struct strmap *names,
			   struct strmap *volumes, struct err *e)
{
	const char *name = y_path_str(c, "name");
	const char *image = y_path_str(c, "image");
	int r;

	if (name && (r = check_unique(names, name, path, e)) < 0)
		return r;
	if (image && !y_get(c, "imagePullPolicy"))
		y_set(c, "imagePullPolicy", y_str(pull_policy_for(image)));
	if (!init && y_get(c, "restartPolicy"))
		return err_set(e, EINVAL, "%s.restartPolicy: only an init container may set it",
			       path);
	if ((r = check_env(c, path, e)) < 0 || (r = check_probes(c, path, e)) < 0)
		return r;
	return check_mounts(c, path, volumes, e);
}

static int check_containers(struct ynode *spec, const char *path, struct strmap *volumes,
			    struct err *e)
{
	static const char *const lists[] = {"initContainers", "containers"};
	struct strmap *names = strmap_new();
	int r = 0;

	for (int l = 0; l < 2 && !r; l++) {
		struct ynode *cs = y_get(spec, lists[l]);
		if (l == 1 && (!cs || cs->type != Y_SEQ || cs->n == 0)) {
			r = err_set(e, EINVAL, "%s.containers: must have at least one container",
				    path);
			break;
		}
		for (size_t i = 0; cs && cs->type == Y_SEQ && i < cs->n && !r; i++) {
			cleanup_free char *p = xasprintf("%s.%s[%zu]", path, lists[l], i);
			r = check_container(cs->v[i], p, l == 0, names, volumes, e);
		}
	}
	strmap_free(names);
	return r;
}

/* Names each volume in volumes; a volume that names no source is an emptyDir. */
static int check_volumes(struct ynode *spec, const char *path, struct strmap *volumes,
			 struct err *e)
{
	struct ynode *vols = y_get(spec, "volumes");
	int r;

	for (size_t i = 0; vols && vols->type == Y_SEQ && i < vols->n; i++) {
		struct ynode *v = vols->v[i];
		const char *name = y_path_str(v, "name");
		cleanup_free char *p = xasprintf("%s.volumes[%zu]", path, i);
		if (name && (r = check_unique(volumes, name, p, e)) < 0)
			return r;
		int sources = kind_count_keys(v, volume_sources);
		if (sources == 0)
			y_set(v, "emptyDir", y_map());
		else if (sources > 1)
			return err_set(e, EINVAL, "%s: may have only one volume source", p);
	}
	return 0;
}

static int check_restart(const struct ynode *spec, const char *path, const char *const *allowed,
			 struct err *e)
{
	const char *rp = y_path_str(spec, "restartPolicy");
	struct strbuf sb = {0};

	for (int i = 0; allowed && allowed[i]; i++)
		if (rp && !strcmp(rp, allowed[i]))
			return 0;
	if (!allowed)
		return 0;
	for (int i = 0; allowed[i]; i++)
		sb_printf(&sb, "%s%s", i == 0 ? "" : allowed[i + 1] ? ", " : " or ", allowed[i]);
	int r = err_set(e, EINVAL, "%s.restartPolicy: must be %s", path, sb.buf);
	sb_free(&sb);
	return r;
}

int kind_check_pod_spec(struct ynode *spec, const char *path, const char *const *restart,
			struct err *e)
{
	struct strmap *volumes = strmap_new();
	int r;

	if (!spec || spec->type != Y_MAP)
		r = err_set(e, EINVAL, "%s: required", path);
	else if ((r = check_volumes(spec, path, volumes, e)) == 0 &&
		 (r = check_containers(spec, path, volumes, e)) == 0)
		r = check_restart(spec, path, restart, e);
	strmap_free(volumes);
	return r;
}

int kind_check_template(struct ynode *tmpl, const char *path, const char *const *restart,
			struct err *e)
{
	cleanup_free char *p = xasprintf("%s.spec", path);

	if (!tmpl || tmpl->type != Y_MAP)
		return err_set(e, EINVAL, "%s: required", path);
	return kind_check_pod_spec(y_get(tmpl, "spec"), p, restart, e);
}

static int pod_validate(struct ynode *obj, struct err *e)
{
	return kind_check_pod_spec(y_get(obj, "spec"), "spec", NULL, e);
}

static const struct field pod_fields[] = {
	FOBJ("spec", pod_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_pod = {
	.name = "Pod",
	.plural = "pods",
	.api_versions = (const char *const[]){"v1", NULL},
	.namespaced = 1,
	.fields = pod_fields,
	.validate = pod_validate,
};
