/*
 * podspec.c: the pod spec made concrete for one node.
 *
 * pod_files() writes what every container of the pod shares: /etc/hosts,
 * /etc/hostname, /etc/resolv.conf, and the volumes (emptyDir, hostPath,
 * configMap and secret, the last two one file per key with defaultMode,
 * which pod_volumes_refresh() brings up to date while the pod runs).
 * ctr_config() turns a container's spec and its image's config into
 * config.json by Kubernetes' rules: command replaces the entrypoint and
 * drops the image's cmd, args replace the cmd; env entries override the
 * image's, with values from config maps, secrets and the pod's fields;
 * limits become cgroup limits. Config maps, secrets and Services are read
 * from the view, as any client would.
 *
 * A container's environment is built as kubelet builds it: the image's
 * env, then the variables of the namespace's Services (service_env(), left
 * out with enableServiceLinks: false), then envFrom and env, which win on a
 * clash. An env value's $(VAR) may name an earlier envFrom or env entry or
 * a Service's variable, never the image's; command and args see the lot.
 */
#define _GNU_SOURCE
#include "dns.h"
#include "object.h"
#include "oci.h"
#include "runtime-crun-internal.h"
#include "schema.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *str_or(const struct ynode *m, const char *path, const char *def)
{
	const char *s = y_path_str(m, path);
	return s ? s : def;
}

static char node_hostname[HOST_NAME_MAX + 1];

static void read_node_hostname(void)
{
	if (gethostname(node_hostname, sizeof(node_hostname) - 1) < 0)
		strcpy(node_hostname, "localhost");
}

/* A pod's hostname; with hostNetwork, the node's. */
static const char *hostname_of(struct crun_pod *p)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (p->host_net) {
		pthread_once(&once, read_node_hostname);
		return node_hostname;
	}
	return str_or(p->pod, "spec.hostname", p->name);
}

/* The object KIND/NAME of the pod's namespace, from the view; caller frees. */
static struct ynode *view_get(struct crun_pod *p, const char *kind, const char *name, struct err *e)
{
	cleanup_free char *path =
		xasprintf("%s/namespaces/%s/%s/%s.yaml", p->rt->cfg.view, p->ns, kind, name);
	struct ynode *doc = NULL;
	int r = obj_load(path, &doc, e);

	if (r == -ENOENT)
		err_set(e, ENOENT, "%s \"%s\" not found", kind, name);
	return r == 0 ? doc : NULL;
}

/* A config map's or secret's value for key (secret values decoded); caller frees. */
static char *value_of(const struct ynode *obj, bool secret, const char *key, size_t *len)
{
	const char *v = y_path_str(y_get(obj, "data"), key);
	char *out;

	if (!v && !secret)
		v = y_path_str(y_get(obj, "binaryData"), key);
	if (!v)
		return NULL;
	if (!secret) {
		*len = strlen(v);
		return xstrdup(v);
	}
	out = xmalloc(strlen(v) + 1);
	long n = base64_decode(v, (unsigned char *)out);
	if (n < 0) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*len = (size_t)n;
	return out;
}

/* ---- the pod's files ---- */

static int put(const char *dir, const char *name, const char *text, unsigned mode, struct err *e)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, name);
	int r = file_put(path, text, strlen(text), mode);
	return r < 0 ? err_set(e, -r, "%s: %s", path, strerror(-r)) : 0;
}

/* The host's servers, but for loopback ones, which a pod cannot reach. */
static void host_servers(struct strbuf *sb)
{
	cleanup_free char *host = file_get("/etc/resolv.conf", 65536, NULL);
	char *save = NULL;

	for (char *l = host ? strtok_r(host, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		char addr[64];
		if (sscanf(l, "nameserver %63s", addr) == 1 && strncmp(addr, "127.", 4) &&
		    strcmp(addr, "::1"))
			sb_printf(sb, "nameserver %s\n", addr);
	}
}

/* As kubelet writes it: with dnsPolicy ClusterFirst (the default) the
 * node's DNS (dns.c, on the pod gateway) and the cluster's search list;
 * with Default the host's servers and no search list. A hostNetwork pod
 * gets the cluster's DNS only with ClusterFirstWithHostNet. */
static char *resolv_conf(struct crun_pod *p)
{
	const char *policy = str_or(p->pod, "spec.dnsPolicy", "ClusterFirst");
	struct strbuf sb = {0};
	char gw[INET_ADDRSTRLEN];

	if (p->host_net && strcmp(policy, "ClusterFirstWithHostNet")) {
		/* The host's file as it is: its loopback servers serve the host's
		 * network, which this pod shares. */
		char *host = file_get("/etc/resolv.conf", 65536, NULL);
		return host ? host : xstrdup("\n");
	}
	if (!strcmp(policy, "Default")) {
		host_servers(&sb);
		if (!sb.len)
			sb_puts(&sb, "\n");
		return sb_steal(&sb, NULL);
	}
	if (dns_server_of(p->cidr, gw) == 0)
		sb_printf(&sb, "nameserver %s\n", gw);
	sb_printf(&sb, "search %s.svc.cluster.local svc.cluster.local cluster.local\n", p->ns);
	sb_puts(&sb, "options ndots:5\n");
	return sb_steal(&sb, NULL);
}

/*
 * configMap and secret volumes are laid out as kubelet's atomic writer
 * lays them out, so that a change reaches running containers whole:
 *
 *   ..2026_12_05_07_50_01.123456789/   the files
 *   ..data -> ..2026_12_05_07_50_01.123456789
 *   KEY -> ..data/KEY                  one link per top-level name
 *
 * An update writes a new timestamped directory, renames a new ..data link
 * over the old one (one atomic step: a reader sees the old set or the new
 * one), mends the KEY links and removes the old directory. Nothing is
 * written when the files are already what they should be.
 */
struct proj_file {
	char *path; /* relative: KEY, or an item's path */
	char *data;
	size_t len;
	unsigned mode;
};

struct projection {
	struct proj_file *v;
	size_t n;
};

static void projection_free(struct projection *pr)
{
	for (size_t i = 0; i < pr->n; i++)
		free(pr->v[i].path), free(pr->v[i].data);
	free(pr->v);
}

/* The regular files under dir, counted (nested ones too). */
static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	while (d && (de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cleanup_free char *path = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0)
			continue;
		n += S_ISDIR(st.st_mode) ? count_files(path) : S_ISREG(st.st_mode) ? 1 : 0;
	}
	if (d)
		closedir(d);
	return n;
}

/* Whether dir/..data holds exactly pr's files, contents and modes. */
static bool projection_current(const char *dir, const struct projection *pr)
{
	cleanup_free char *data = xasprintf("%s/..data", dir);

	if (count_files(data) != pr->n)
		return false;
	for (size_t i = 0; i < pr->n; i++) {
		cleanup_free char *path = xasprintf("%s/%s", data, pr->v[i].path);
		struct stat st;
		size_t len;
		cleanup_free char *now = file_get(path, pr->v[i].len + 1, &len);
		if (!now || len != pr->v[i].len || memcmp(now, pr->v[i].data, len) ||
		    stat(path, &st) < 0 || (st.st_mode & 0777) != pr->v[i].mode)
			return false;
	}
	return true;
}

/* Points dir/name at ..data/name, through a link renamed into place. */
static int top_link(const char *dir, const char *name)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, name);
	cleanup_free char *target = xasprintf("..data/%s", name);
	cleanup_free char *tmp = xasprintf("%s/..link_tmp", dir);
	char now[PATH_MAX];
	ssize_t n = readlink(path, now, sizeof(now) - 1);
	struct stat st;

	if (n > 0 && (now[n] = '\0', !strcmp(now, target)))
		return 0;
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		rm_rf(path); /* an older layout's directory */
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static bool top_name_of(const struct projection *pr, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < pr->n; i++)
		if (!strncmp(pr->v[i].path, name, len) &&
		    (pr->v[i].path[len] == '\0' || pr->v[i].path[len] == '/'))
			return true;
	return false;
}

static int projection_write(const char *dir, const struct projection *pr, struct err *e)
{
	cleanup_free char *data = xasprintf("%s/..data", dir);
	cleanup_free char *tmp = xasprintf("%s/..data_tmp", dir);
	char old[PATH_MAX] = "", stamp[64];
	struct timespec ts;
	struct tm tm;
	ssize_t n = readlink(data, old, sizeof(old) - 1);
	int r = 0;

	old[n > 0 ? n : 0] = '\0';
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "..%Y_%m_%d_%H_%M_%S", &tm);
	cleanup_free char *name = xasprintf("%s.%09ld", stamp, ts.tv_nsec);
	cleanup_free char *fresh = xasprintf("%s/%s", dir, name);
	if (mkdir(fresh, 0755) < 0)
		return err_set(e, errno, "%s: %s", fresh, strerror(errno));
	for (size_t i = 0; i < pr->n && r == 0; i++) {
		cleanup_free char *file = xasprintf("%s/%s", fresh, pr->v[i].path);
		char *slash = strrchr(file, '/');
		*slash = '\0';
		mkdir_p(file, 0755);
		*slash = '/';
		if ((r = file_put(file, pr->v[i].data, pr->v[i].len, pr->v[i].mode)) == 0)
			chmod(file, pr->v[i].mode);
		else
			err_set(e, -r, "%s: %s", file, strerror(-r));
	}
	unlink(tmp);
	if (r == 0 && (symlink(name, tmp) < 0 || rename(tmp, data) < 0))
		r = err_set(e, errno, "%s: %s", data, strerror(errno));
	if (r < 0) {
		rm_rf(fresh);
		return r;
	}
	for (size_t i = 0; i < pr->n; i++) {
		char top[NAME_MAX + 1];
		snprintf(top, sizeof(top), "%.*s", (int)strcspn(pr->v[i].path, "/"), pr->v[i].path);
		if ((r = top_link(dir, top)) < 0)
			return err_set(e, -r, "%s/%s: %s", dir, top, strerror(-r));
	}
	/* Names no longer there, and the files the old ..data held. */
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strncmp(de->d_name, "..", 2) && strcmp(de->d_name, ".") &&
		    !top_name_of(pr, de->d_name)) {
			cleanup_free char *gone = xasprintf("%s/%s", dir, de->d_name);
			rm_rf(gone);
		}
	if (d)
		closedir(d);
	if (old[0] && strcmp(old, name)) {
		cleanup_free char *stale = xasprintf("%s/%s", dir, old);
		rm_rf(stale);
	}
	return 0;
}

/* Writes a config map's or secret's keys (or the chosen items) into dir,
 * or leaves dir as it is when they are already there. */
static int key_files(struct crun_pod *p, const struct ynode *src, bool secret, const char *dir,
		     struct err *e)
{
	const char *name = str_or(src, secret ? "secretName" : "name", "");
	const struct ynode *mode = y_get(src, "defaultMode"), *items = y_get(src, "items");
	const struct ynode *opt = y_get(src, "optional");
	struct ynode *obj = view_get(p, secret ? "secrets" : "configmaps", name, e);
	const struct ynode *data = obj ? y_get(obj, "data") : NULL;
	unsigned m = mode && mode->type == Y_INT ? (unsigned)mode->i & 0777 : 0644;
	struct projection pr = {0};
	int r = 0;

	if (!obj)
		return opt && opt->type == Y_BOOL && opt->i ? 0 : -ENOENT;
	for (size_t i = 0; data && data->type == Y_MAP && i < data->n; i++) {
		const char *key = data->keys[i], *path = key;
		unsigned fm = m;
		bool wanted = !items || items->type != Y_SEQ;
		for (size_t j = 0; !wanted && j < items->n; j++)
			if (!strcmp(str_or(items->v[j], "key", ""), key)) {
				wanted = true;
				path = str_or(items->v[j], "path", key);
				const struct ynode *im = y_get(items->v[j], "mode");
				if (im && im->type == Y_INT)
					fm = (unsigned)im->i & 0777;
			}
		size_t len = 0;
		char *v = wanted ? value_of(obj, secret, key, &len) : NULL;
		if (!v || strstr(path, "..") || path[0] == '/' || !path[0]) {
			free(v);
			continue;
		}
		pr.v = xrealloc(pr.v, (pr.n + 1) * sizeof(*pr.v));
		pr.v[pr.n++] = (struct proj_file){xstrdup(path), v, len, fm};
	}
	if (!projection_current(dir, &pr))
		r = projection_write(dir, &pr, e);
	projection_free(&pr);
	y_free(obj);
	return r;
}

static int volume(struct crun_pod *p, const struct ynode *v, struct err *e)
{
	const char *name = str_or(v, "name", "");
	cleanup_free char *dir = xasprintf("%s/volumes/%s", p->dir, name);
	const struct ynode *src;

	if (y_get(v, "hostPath")) {
		const char *path = str_or(v, "hostPath.path", "");
		const char *type = str_or(v, "hostPath.type", "");
		if (!strcmp(type, "DirectoryOrCreate"))
			mkdir_p(path, 0755);
		if (access(path, F_OK) < 0)
			return err_set(e, ENOENT, "volume %s: hostPath %s: %s", name, path,
				       strerror(errno));
		return 0;
	}
	if (mkdir_p(dir, 0755) < 0)
		return err_set(e, errno, "%s: %s", dir, strerror(errno));
	chmod(dir, y_get(v, "emptyDir") ? 0777 : 0755);
	if ((src = y_get(v, "configMap")) && key_files(p, src, false, dir, e) < 0)
		return err_prefix(e, "volume %s: ", name), -ENOENT;
	if ((src = y_get(v, "secret")) && key_files(p, src, true, dir, e) < 0)
		return err_prefix(e, "volume %s: ", name), -ENOENT;
	return 0;
}

void pod_volumes_refresh(struct crun_pod *p)
{
	const struct ynode *vols = y_path(p->pod, "spec.volumes");

	for (size_t i = 0; vols && vols->type == Y_SEQ && i < vols->n; i++) {
		const struct ynode *v = vols->v[i], *src;
		cleanup_free char *dir = xasprintf("%s/volumes/%s", p->dir, str_or(v, "name", ""));
		struct err e = {0};
		/* An object gone or unreadable leaves the files as they were. */
		if ((src = y_get(v, "configMap")))
			key_files(p, src, false, dir, &e);
		else if ((src = y_get(v, "secret")))
			key_files(p, src, true, dir, &e);
	}
}

int pod_files(struct crun_pod *p, struct err *e)
{
	/* With hostNetwork, the node's own hosts file, as kubelet gives it. */
	cleanup_free char *hosts =
		p->host_net ? file_get("/etc/hosts", 1 << 20, NULL)
			    : xasprintf("# Kubernetes-managed hosts file (clusterfs).\n"
					"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
					"%s\t%s\n",
					p->ip, hostname_of(p));
	cleanup_free char *hostname = xasprintf("%s\n", hostname_of(p));
	cleanup_free char *resolv = resolv_conf(p);
	const struct ynode *vols = y_path(p->pod, "spec.volumes");
	int r;

	if ((r = put(p->dir, "hosts", hosts ? hosts : "", 0644, e)) < 0 ||
	    (r = put(p->dir, "hostname", hostname, 0644, e)) < 0 ||
	    (r = put(p->dir, "resolv.conf", resolv, 0644, e)) < 0)
		return r;
	for (size_t i = 0; vols && vols->type == Y_SEQ && i < vols->n; i++)
		if ((r = volume(p, vols->v[i], e)) < 0)
			return r;
	return 0;
}

/* ---- one container's config.json ---- */

struct strv {
	char **v;
	size_t n;
};

static void strv_add(struct strv *s, char *str)
{
	s->v = xrealloc(s->v, (s->n + 2) * sizeof(char *));
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

static void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static void strv_seq(struct strv *s, const struct ynode *seq)
{
	for (size_t i = 0; seq && seq->type == Y_SEQ && i < seq->n; i++)
		if (seq->v[i]->str)
			strv_add(s, xstrdup(seq->v[i]->str));
}

/* Sets NAME=value, replacing an earlier NAME. */
static void env_set(struct strv *env, const char *name, const char *value)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->v[i], name, len) && env->v[i][len] == '=') {
			free(env->v[i]);
			env->v[i] = xasprintf("%s=%s", name, value);
			return;
		}
	strv_add(env, xasprintf("%s=%s", name, value));
}

/* Sets every NAME=value of from in env. */
static void env_merge(struct strv *env, const struct strv *from)
{
	for (size_t i = 0; i < from->n; i++) {
		char *eq = strchr(from->v[i], '=');
		*eq = '\0';
		env_set(env, from->v[i], eq + 1);
		*eq = '=';
	}
}

/* NAME's value in env, or NULL; name need not end at len. */
static const char *env_get(const struct strv *env, const char *name, size_t len)
{
	for (size_t i = 0; env && i < env->n; i++)
		if (!strncmp(env->v[i], name, len) && env->v[i][len] == '=')
			return env->v[i] + len + 1;
	return NULL;
}

/* ---- the Services' variables (kubelet's envvars.go) ---- */

/* s upper-cased, '-' made '_'; caller frees. */
static char *env_name(const char *s)
{
	char *out = xstrdup(s);

	for (char *c = out; *c; c++)
		*c = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
	return out;
}

/* The Docker-link variables of one port: PREFIX_PORT_80_TCP and its parts. */
static void link_vars(struct strv *out, const char *prefix, const char *ip, const char *port,
		      const char *proto, bool first)
{
	cleanup_free char *lower = xstrdup(proto), *upper = env_name(proto);
	cleanup_free char *host =
		strchr(ip, ':') ? xasprintf("[%s]:%s", ip, port) : xasprintf("%s:%s", ip, port);
	cleanup_free char *pp = xasprintf("%s_PORT_%s_%s", prefix, port, upper);

	for (char *c = lower; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (first)
		strv_add(out, xasprintf("%s_PORT=%s://%s", prefix, lower, host));
	strv_add(out, xasprintf("%s=%s://%s", pp, lower, host));
	strv_add(out, xasprintf("%s_PROTO=%s", pp, lower));
	strv_add(out, xasprintf("%s_PORT=%s", pp, port));
	strv_add(out, xasprintf("%s_ADDR=%s", pp, ip));
}

/* One Service's variables, added to out; none for a Service without a
 * cluster IP (headless, ExternalName) or without ports. */
static void service_vars(const struct ynode *svc, struct strv *out)
{
	const char *ip = y_path_str(svc, "spec.clusterIP");
	const struct ynode *ports = y_path(svc, "spec.ports");
	const char *first =
		ports && ports->type == Y_SEQ && ports->n ? y_path_str(ports->v[0], "port") : NULL;
	cleanup_free char *prefix = env_name(str_or(svc, "metadata.name", ""));

	if (!ip || !*ip || !strcmp(ip, "None") || !first || !*prefix)
		return;
	strv_add(out, xasprintf("%s_SERVICE_HOST=%s", prefix, ip));
	strv_add(out, xasprintf("%s_SERVICE_PORT=%s", prefix, first));
	for (size_t i = 0; i < ports->n; i++) {
		const char *name = y_path_str(ports->v[i], "name");
		const char *port = y_path_str(ports->v[i], "port");
		if (port && name && *name) {
			cleanup_free char *pn = env_name(name);
			strv_add(out, xasprintf("%s_SERVICE_PORT_%s=%s", prefix, pn, port));
		}
	}
	for (size_t i = 0; i < ports->n; i++) {
		const char *port = y_path_str(ports->v[i], "port");
		if (port)
			link_vars(out, prefix, ip, port, str_or(ports->v[i], "protocol", "TCP"),
				  i == 0);
	}
}

/* The variables of the Services of the pod's namespace as they are now,
 * in the order of their names; none with enableServiceLinks: false (the
 * kubernetes Service's, which Kubernetes keeps then, we do not have). A
 * Service that cannot be read is passed over. */
static void service_env(struct crun_pod *p, struct strv *out)
{
	const struct ynode *links = y_path(p->pod, "spec.enableServiceLinks");
	cleanup_free char *dir = xasprintf("%s/namespaces/%s/services", p->rt->cfg.view, p->ns);
	struct dirent **names = NULL;
	int n;

	if (links && links->type == Y_BOOL && !links->i)
		return;
	if ((n = scandir(dir, &names, NULL, alphasort)) < 0)
		return;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		if (len > 5 && !strcmp(names[i]->d_name + len - 5, ".yaml") &&
		    names[i]->d_name[0] != '.') {
			cleanup_free char *path = xasprintf("%s/%s", dir, names[i]->d_name);
			struct ynode *svc = NULL;
			struct err e = {0};
			if (obj_load(path, &svc, &e) == 0)
				service_vars(svc, out);
			y_free(svc);
		}
		free(names[i]);
	}
	free(names);
}

static const char *field_of(struct crun_pod *p, const char *path)
{
	if (!strcmp(path, "metadata.name"))
		return p->name;
	if (!strcmp(path, "metadata.namespace"))
		return p->ns;
	if (!strcmp(path, "metadata.uid"))
		return p->uid;
	if (!strcmp(path, "status.podIP"))
		return p->ip;
	if (!strcmp(path, "spec.nodeName"))
		return str_or(p->pod, "spec.nodeName", "");
	if (!strcmp(path, "spec.serviceAccountName"))
		return str_or(p->pod, "spec.serviceAccountName", "default");
	return y_path_str(p->pod, path);
}

/* One env entry's value; caller frees. NULL with e set, or NULL and no
 * error for an optional reference that is missing. */
static char *env_value(struct crun_pod *p, const struct ynode *ent, struct err *e)
{
	const struct ynode *from = y_get(ent, "valueFrom"), *ref;
	const char *name = str_or(ent, "name", "");

	if (!from)
		return xstrdup(str_or(ent, "value", ""));
	if ((ref = y_get(from, "fieldRef"))) {
		const char *v = field_of(p, str_or(ref, "fieldPath", ""));
		if (!v)
			err_set(e, EINVAL, "env %s: fieldPath %s is not supported", name,
				str_or(ref, "fieldPath", ""));
		return v ? xstrdup(v) : NULL;
	}
	bool secret = (ref = y_get(from, "secretKeyRef")) != NULL;
	if (!ref && !(ref = y_get(from, "configMapKeyRef")))
		return xstrdup("");
	const struct ynode *opt = y_get(ref, "optional");
	bool optional = opt && opt->type == Y_BOOL && opt->i;
	const char *key = str_or(ref, "key", "");
	struct err ge = {0};
	struct ynode *obj =
		view_get(p, secret ? "secrets" : "configmaps", str_or(ref, "name", ""), &ge);
	size_t len;
	char *v = obj ? value_of(obj, secret, key, &len) : NULL;
	y_free(obj);
	if (!v && !optional)
		err_set(e, ENOENT, "env %s: %s", name,
			obj ? "the key is not in the object" : ge.msg);
	return v;
}

/* $(VAR) references expanded from env, then from more; $$ escapes and an
 * unknown VAR stays as written, as in Kubernetes. */
static char *expand(const char *s, const struct strv *env, const struct strv *more)
{
	struct strbuf sb = {0};

	while (*s) {
		const char *close;
		if (s[0] == '$' && s[1] == '$') {
			sb_puts(&sb, "$");
			s += 2;
		} else if (s[0] == '$' && s[1] == '(' && (close = strchr(s, ')'))) {
			size_t len = (size_t)(close - s - 2);
			const char *val = env_get(env, s + 2, len);
			if (!val)
				val = env_get(more, s + 2, len);
			if (val)
				sb_puts(&sb, val);
			else
				sb_append(&sb, s, (size_t)(close - s) + 1);
			s = close + 1;
		} else
			sb_append(&sb, s++, 1);
	}
	return sb.buf ? sb_steal(&sb, NULL) : xstrdup("");
}

/* envFrom's entries, set in own. */
static int env_from(struct crun_pod *p, struct crun_ctr *c, struct strv *own, struct err *e)
{
	const struct ynode *from = y_get(c->spec, "envFrom");

	for (size_t i = 0; from && from->type == Y_SEQ && i < from->n; i++) {
		const struct ynode *ref = y_get(from->v[i], "configMapRef");
		bool secret = !ref && (ref = y_get(from->v[i], "secretRef"));
		const char *prefix = str_or(from->v[i], "prefix", "");
		if (!ref)
			continue;
		struct ynode *obj =
			view_get(p, secret ? "secrets" : "configmaps", str_or(ref, "name", ""), e);
		const struct ynode *opt = y_get(ref, "optional");
		if (!obj) {
			if (opt && opt->type == Y_BOOL && opt->i)
				continue;
			return -ENOENT;
		}
		const struct ynode *data = y_get(obj, "data");
		for (size_t k = 0; data && data->type == Y_MAP && k < data->n; k++) {
			size_t len;
			cleanup_free char *v = value_of(obj, secret, data->keys[k], &len);
			cleanup_free char *n = xasprintf("%s%s", prefix, data->keys[k]);
			if (v)
				env_set(own, n, v);
		}
		y_free(obj);
	}
	return 0;
}

/* The container's environment, as the file's opening describes. */
static int envs(struct crun_pod *p, struct crun_ctr *c, const struct image *img, struct strv *env,
		struct err *e)
{
	const struct ynode *list = y_get(c->spec, "env");
	struct strv svc = {0}, own = {0};
	int r = 0;

	strv_seq(env, y_get(img->config, "Env"));
	env_set(env, "HOSTNAME", hostname_of(p));
	service_env(p, &svc);
	if ((r = env_from(p, c, &own, e)) < 0)
		goto out;
	for (size_t i = 0; list && list->type == Y_SEQ && i < list->n; i++) {
		e->msg[0] = '\0';
		cleanup_free char *v = env_value(p, list->v[i], e);
		if (!v && e->msg[0]) {
			r = -ENOENT;
			goto out;
		}
		if (v && !y_get(list->v[i], "valueFrom")) {
			char *x = expand(v, &own, &svc);
			free(v);
			v = x;
		}
		if (v)
			env_set(&own, str_or(list->v[i], "name", ""), v);
	}
	env_merge(env, &svc);
	env_merge(env, &own);
out:
	strv_free(&svc);
	strv_free(&own);
	return r;
}

static void argv_of(struct crun_ctr *c, const struct image *img, const struct strv *env,
		    struct strv *argv)
{
	const struct ynode *cmd = y_get(c->spec, "command"), *args = y_get(c->spec, "args");
	struct strv raw = {0};

	if (cmd && cmd->type == Y_SEQ && cmd->n) {
		strv_seq(&raw, cmd);
		strv_seq(&raw, args);
	} else {
		strv_seq(&raw, y_get(img->config, "Entrypoint"));
		strv_seq(&raw,
			 args && args->type == Y_SEQ && args->n ? args : y_get(img->config, "Cmd"));
	}
	for (size_t i = 0; i < raw.n; i++)
		strv_add(argv, expand(raw.v[i], env, NULL));
	strv_free(&raw);
}

static int64_t quantity(const struct ynode *c, const char *path, bool milli)
{
	const struct ynode *q = y_path(c, path);
	int64_t m = 0;

	if (!q || !q->str || parse_quantity(q->str, &m) < 0)
		return 0;
	return milli ? m : m / 1000;
}

/* The host path that volume name is, or NULL. */
static char *volume_path(struct crun_pod *p, const char *name)
{
	const struct ynode *vols = y_path(p->pod, "spec.volumes");

	for (size_t i = 0; vols && vols->type == Y_SEQ && i < vols->n; i++) {
		if (strcmp(str_or(vols->v[i], "name", ""), name))
			continue;
		if (y_get(vols->v[i], "hostPath"))
			return xstrdup(str_or(vols->v[i], "hostPath.path", "/nonexistent"));
		return xasprintf("%s/volumes/%s", p->dir, name);
	}
	return NULL;
}

/* The bind mounts of c into m (at most max); the strings they point to
 * are added to owned. */
static int mounts_of(struct crun_pod *p, struct crun_ctr *c, struct oci_mount *m, size_t max,
		     size_t *n, struct strv *owned, struct err *e)
{
	static const char *const files[] = {"hosts", "hostname", "resolv.conf"};
	const struct ynode *vm = y_get(c->spec, "volumeMounts");

	for (size_t i = 0; i < 3; i++) {
		strv_add(owned, xasprintf("%s/%s", p->dir, files[i]));
		strv_add(owned, xasprintf("/etc/%s", files[i]));
		m[(*n)++] = (struct oci_mount){.src = owned->v[owned->n - 2],
					       .dest = owned->v[owned->n - 1]};
	}
	for (size_t i = 0; vm && vm->type == Y_SEQ && i < vm->n; i++) {
		const char *name = str_or(vm->v[i], "name", ""),
			   *sub = str_or(vm->v[i], "subPath", "");
		cleanup_free char *src = volume_path(p, name);
		const struct ynode *ro = y_get(vm->v[i], "readOnly");
		if (!src)
			return err_set(e, EINVAL, "volumeMount %s: no volume of that name", name);
		if (*n == max)
			return err_set(e, EINVAL, "more than %zu volumeMounts", max - 3);
		strv_add(owned, *sub ? xasprintf("%s/%s", src, sub) : xstrdup(src));
		if (*sub)
			mkdir_p(owned->v[owned->n - 1], 0755);
		strv_add(owned, xstrdup(str_or(vm->v[i], "mountPath", "/")));
		m[(*n)++] = (struct oci_mount){.src = owned->v[owned->n - 2],
					       .dest = owned->v[owned->n - 1],
					       .ro = ro && ro->type == Y_BOOL && ro->i};
	}
	return 0;
}

static void user_of(struct crun_pod *p, struct crun_ctr *c, const struct image *img,
		    struct oci_spec *s)
{
	const char *u = y_path_str(img->config, "User");
	const struct ynode *ru = y_path(c->spec, "securityContext.runAsUser");
	const struct ynode *rg = y_path(c->spec, "securityContext.runAsGroup");

	if (u && *u)
		sscanf(u, "%u:%u", &s->uid, &s->gid);
	if (!ru)
		ru = y_path(p->pod, "spec.securityContext.runAsUser");
	if (!rg)
		rg = y_path(p->pod, "spec.securityContext.runAsGroup");
	if (ru && ru->type == Y_INT)
		s->uid = (unsigned)ru->i;
	if (rg && rg->type == Y_INT)
		s->gid = (unsigned)rg->i;
}

#define MAX_MOUNTS 64

struct ynode *ctr_config(struct crun_pod *p, struct crun_ctr *c, const struct image *img,
			 struct err *e)
{
	struct strv env = {0}, argv = {0}, owned = {0};
	struct oci_mount mounts[MAX_MOUNTS];
	size_t nm = 0;
	struct ynode *cfg = NULL;
	cleanup_free char *netns = xasprintf("/run/netns/%s", p->netns);
	cleanup_free char *cgroup = xasprintf("/clusterfs/%s", c->id);

	if (envs(p, c, img, &env, e) < 0 || mounts_of(p, c, mounts, MAX_MOUNTS, &nm, &owned, e) < 0)
		goto out;
	argv_of(c, img, &env, &argv);
	if (!argv.n) {
		err_set(e, EINVAL,
			"no command: the image has no entrypoint or cmd, and the "
			"container no command");
		goto out;
	}
	struct oci_spec s = {
		.hostname = p->host_net ? NULL : hostname_of(p),
		.netns = p->host_net ? NULL : netns,
		.cgroup = cgroup,
		.args = (const char *const *)argv.v,
		.env = (const char *const *)env.v,
		.cwd = str_or(c->spec, "workingDir", str_or(img->config, "WorkingDir", "/")),
		.memory = quantity(c->spec, "resources.limits.memory", false),
		.cpu_millis = quantity(c->spec, "resources.limits.cpu", true),
		.cpu_request_millis = quantity(c->spec, "resources.requests.cpu", true),
		.pids = p->rt->cfg.pids_limit,
		.mounts = mounts,
		.nmounts = nm,
	};
	user_of(p, c, img, &s);
	cfg = oci_config(&s);
out:
	strv_free(&owned);
	strv_free(&env);
	strv_free(&argv);
	return cfg;
}
