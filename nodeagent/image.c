/*
 * image.c: pull with skopeo, unpack with umoci, read the OCI config.
 *
 *   ref --normalize--> REGISTRY/REPO:TAG
 *       --skopeo copy docker://... oci:layouts/NAME:img-->  an OCI layout
 *       --index.json--> manifest digest --umoci unpack--> unpacked/DIGEST
 *       --manifest--> config blob --> Entrypoint, Cmd, Env, WorkingDir
 *
 * One lock serializes pulls and unpacks: skopeo and umoci are not safe to
 * run twice on one layout, and a second pod of the same image then finds
 * the work done.
 *
 * After a pull, image_gc() frees space as kubelet's image garbage
 * collector does: when the store's filesystem is more than gc_high
 * percent used, the unpacked images that no container of the node's pods
 * uses go, least recently used first (an unpacked directory's mtime is
 * touched at each use), each with the layouts that hold it, until the
 * filesystem is at most gc_low percent used. In use: an overlay mounted
 * over it (/proc/self/mountinfo), or a reference one of the node's pods
 * names (a container between two restarts has no overlay).
 */
#define _GNU_SOURCE
#include "image.h"
#include "container.h"
#include "object.h"
#include "proc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct image_store {
	char *dir, *registry, *policy;
	char **insecure;
	pthread_mutex_t lock; /* held across a pull and an unpack */
	int gc_high, gc_low;  /* percent of the filesystem used; high 100: never */
	char **(*in_use)(void *arg);
	void *in_use_arg;
};

struct image_store *image_store_new(const char *dir, const char *default_registry,
				    const char *const *insecure)
{
	struct image_store *s = xcalloc(1, sizeof(*s));
	size_t n = 0;

	s->dir = xstrdup(dir);
	s->registry = xstrdup(default_registry ? default_registry : "docker.io");
	s->policy = xasprintf("%s/policy.json", dir);
	while (insecure && insecure[n])
		n++;
	s->insecure = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		s->insecure[i] = xstrdup(insecure[i]);
	pthread_mutex_init(&s->lock, NULL);
	s->gc_high = 100;
	cleanup_free char *layouts = xasprintf("%s/layouts", dir);
	cleanup_free char *unpacked = xasprintf("%s/unpacked", dir);
	mkdir_p(layouts, 0700);
	mkdir_p(unpacked, 0700);
	return s;
}

void image_store_free(struct image_store *s)
{
	if (!s)
		return;
	for (char **p = s->insecure; *p; p++)
		free(*p);
	free(s->insecure);
	free(s->dir);
	free(s->registry);
	free(s->policy);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void image_clear(struct image *img)
{
	free(img->rootfs);
	free(img->id);
	y_free(img->config);
	memset(img, 0, sizeof(*img));
}

/* A normalized reference: registry, repository, and ":tag" or "@digest". */
struct ref {
	char registry[256], repo[512], suffix[160];
};

static int ref_parse(const struct image_store *s, const char *text, struct ref *r, struct err *e)
{
	const char *slash = strchr(text, '/'), *rest = text;

	memset(r, 0, sizeof(*r));
	if (!*text || strlen(text) >= sizeof(r->repo) || strpbrk(text, " \t\n\"'\\"))
		return err_set(e, EINVAL, "image \"%s\": not a valid reference", text);
	if (slash &&
	    (memchr(text, '.', (size_t)(slash - text)) ||
	     memchr(text, ':', (size_t)(slash - text)) || !strncmp(text, "localhost/", 10))) {
		snprintf(r->registry, sizeof(r->registry), "%.*s", (int)(slash - text), text);
		rest = slash + 1;
	} else
		snprintf(r->registry, sizeof(r->registry), "%s", s->registry);
	const char *at = strchr(rest, '@'), *colon = strrchr(rest, ':');
	size_t len = at ? (size_t)(at - rest) : colon ? (size_t)(colon - rest) : strlen(rest);
	bool library = !strchr(rest, '/') && !strcmp(r->registry, "docker.io");
	snprintf(r->repo, sizeof(r->repo), "%s%.*s", library ? "library/" : "", (int)len, rest);
	snprintf(r->suffix, sizeof(r->suffix), "%s", at ? at : colon ? colon : ":latest");
	if (!len)
		return err_set(e, EINVAL, "image \"%s\": no repository", text);
	return 0;
}

/* As Docker does, a registry on loopback speaks plain HTTP. */
static bool ref_insecure(const struct image_store *s, const struct ref *r)
{
	if (!strncmp(r->registry, "127.", 4) || !strncmp(r->registry, "localhost", 9))
		return true;
	for (char **p = s->insecure; *p; p++)
		if (!strcmp(*p, r->registry))
			return true;
	return false;
}

/* The layout directory of a reference: its text with '/', ':' and '@' made '_'. */
static char *ref_layout(const struct image_store *s, const struct ref *r)
{
	char *name = xasprintf("%s/%s%s", r->registry, r->repo, r->suffix);
	for (char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p == '@')
			*p = '_';
	char *path = xasprintf("%s/layouts/%s", s->dir, name);
	free(name);
	return path;
}

static struct ynode *read_json(const char *path, struct err *e)
{
	struct ynode *doc = NULL;
	return obj_load(path, &doc, e) == 0 ? doc : NULL;
}

static struct ynode *read_blob(const char *layout, const char *digest, struct err *e)
{
	const char *colon = digest ? strchr(digest, ':') : NULL;
	if (!colon || strchr(colon, '/')) {
		err_set(e, EINVAL, "%s: bad digest", layout);
		return NULL;
	}
	cleanup_free char *path =
		xasprintf("%s/blobs/%.*s/%s", layout, (int)(colon - digest), digest, colon + 1);
	return read_json(path, e);
}

static int write_policy(const struct image_store *s)
{
	if (access(s->policy, R_OK) == 0)
		return 0;
	FILE *f = fopen(s->policy, "we");
	if (!f)
		return -errno;
	fputs("{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}\n", f);
	return fclose(f) == 0 ? 0 : -errno;
}

static int pull(struct image_store *s, const struct ref *r, const char *layout, struct err *e)
{
	cleanup_free char *src = xasprintf("docker://%s/%s%s", r->registry, r->repo, r->suffix);
	cleanup_free char *dst = xasprintf("oci:%s:img", layout);
	const char *tls = ref_insecure(s, r) ? "--src-tls-verify=false" : "--src-tls-verify=true";
	const char *argv[] = {"skopeo", "--policy", s->policy, "copy", "--quiet",
			      tls,	src,	    dst,       NULL};
	struct proc_opts o = {.keep_fd = -1, .timeout_ms = 300000};
	struct err pe = {0};
	int r2;

	if ((r2 = write_policy(s)) < 0)
		return err_set(e, -r2, "%s: %s", s->policy, strerror(-r2));
	r2 = proc_run(argv, &o, NULL, &pe);
	if (r2 != 0)
		return err_set(e, EIO, "pull %s: %s", src, pe.msg);
	return 0;
}

/* Unpacks the layout's image as unpacked/HEX unless that is there. */
static int unpack(struct image_store *s, const char *layout, const char *hex, char **rootfs,
		  struct err *e)
{
	cleanup_free char *dir = xasprintf("%s/unpacked/%s", s->dir, hex);
	cleanup_free char *tmp = xasprintf("%s/unpacked/.tmp-%s", s->dir, hex);
	cleanup_free char *image = xasprintf("%s:img", layout);
	const char *argv[] = {"umoci", "unpack", "--image", image, tmp, NULL};
	struct proc_opts o = {.keep_fd = -1, .timeout_ms = 300000};
	struct err pe = {0};

	*rootfs = xasprintf("%s/rootfs", dir);
	if (access(*rootfs, F_OK) == 0)
		return 0;
	rm_rf(tmp);
	if (proc_run(argv, &o, NULL, &pe) != 0 || rename(tmp, dir) < 0) {
		err_set(e, EIO, "unpack %s: %s", layout, pe.msg[0] ? pe.msg : strerror(errno));
		rm_rf(tmp);
		return -EIO;
	}
	return 0;
}

static const char *effective_policy(const char *policy, const struct ref *r)
{
	if (policy && *policy)
		return policy;
	return !strcmp(r->suffix, ":latest") ? "Always" : "IfNotPresent";
}

/* The manifest digest ("sha256:...") the layout's index names; caller frees. */
static char *index_digest(const char *layout, struct err *e)
{
	cleanup_free char *index_path = xasprintf("%s/index.json", layout);
	struct ynode *index = read_json(index_path, e);
	const struct ynode *m = y_get(index, "manifests");
	const char *digest = y_path_str(m && m->type == Y_SEQ && m->n ? m->v[0] : NULL, "digest");
	char *d = digest && strchr(digest, ':') && !strchr(digest, '/') ? xstrdup(digest) : NULL;

	if (index && !d)
		err_set(e, EIO, "%s: no manifest", layout);
	y_free(index);
	return d;
}

/* Reads what the pulled layout holds into img; called with s->lock held. */
static int image_load(struct image_store *s, const struct ref *r, const char *layout,
		      struct image *img, struct err *e)
{
	cleanup_free char *digest = index_digest(layout, e);
	cleanup_free char *dir = NULL;
	struct ynode *manifest = NULL, *config = NULL;
	int rc = -EIO;

	if (!digest)
		goto out;
	if (!(manifest = read_blob(layout, digest, e)) ||
	    !(config = read_blob(layout, y_path_str(manifest, "config.digest"), e)))
		goto out;
	if (unpack(s, layout, strchr(digest, ':') + 1, &img->rootfs, e) < 0)
		goto out;
	dir = xasprintf("%s/unpacked/%s", s->dir, strchr(digest, ':') + 1);
	utimensat(AT_FDCWD, dir, NULL, 0); /* used now: the collector's order */
	img->id = xasprintf("%s/%s@%s", r->registry, r->repo, digest);
	img->config = y_take(config, "config");
	if (!img->config)
		img->config = y_map();
	rc = 0;
out:
	y_free(manifest);
	y_free(config);
	return rc;
}

void image_store_gc(struct image_store *s, int high, int low, char **(*in_use)(void *arg),
		    void *arg)
{
	s->gc_high = high;
	s->gc_low = low;
	s->in_use = in_use;
	s->in_use_arg = arg;
}

/* The filesystem's used share, in percent rounded up, as df shows it. */
static int used_pct(const char *dir)
{
	struct statvfs v;

	if (statvfs(dir, &v) < 0 || !v.f_blocks)
		return -1;
	unsigned long long used = v.f_blocks - v.f_bfree, all = used + v.f_bavail;
	return all ? (int)((used * 100 + all - 1) / all) : 0;
}

struct unpacked {
	char hex[72];
	struct timespec used;
};

static int by_use(const void *a, const void *b)
{
	const struct unpacked *x = a, *y = b;
	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	return x->used.tv_nsec < y->used.tv_nsec ? -1 : x->used.tv_nsec > y->used.tv_nsec;
}

/* Whether HEX is in use: mounted under, or named by a reference in use. */
static bool hex_in_use(const char *mounts, char *const *used_digests, const char *dir,
		       const char *hex)
{
	cleanup_free char *lower = xasprintf("%s/unpacked/%s/", dir, hex);

	if (mounts && strstr(mounts, lower))
		return true;
	for (size_t i = 0; used_digests && used_digests[i]; i++)
		if (!strcmp(strchr(used_digests[i], ':') + 1, hex))
			return true;
	return false;
}

/* Called with s->lock held, after a pull. */
static void image_gc(struct image_store *s)
{
	int pct = used_pct(s->dir);
	struct err e = {0};

	if (pct < 0 || pct <= s->gc_high || s->gc_high >= 100)
		return;
	/* What is in use: mounted overlays, and the digests of referenced images. */
	cleanup_free char *mounts = file_get("/proc/self/mountinfo", 16 << 20, NULL);
	char **refs = s->in_use ? s->in_use(s->in_use_arg) : NULL;
	size_t nd = 0;
	char **digests = NULL;
	for (size_t i = 0; refs && refs[i]; i++) {
		struct ref r;
		if (ref_parse(s, refs[i], &r, &e) == 0) {
			cleanup_free char *layout = ref_layout(s, &r);
			char *d = index_digest(layout, &e);
			if (d) {
				digests = xrealloc(digests, (nd + 2) * sizeof(char *));
				digests[nd++] = d;
				digests[nd] = NULL;
			}
		}
		free(refs[i]);
	}
	free(refs);
	/* The rest, least recently used first. */
	cleanup_free char *unpacked_dir = xasprintf("%s/unpacked", s->dir);
	struct unpacked *v = NULL;
	size_t n = 0;
	DIR *d = opendir(unpacked_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		struct stat st;
		cleanup_free char *path = xasprintf("%s/%s", unpacked_dir, de->d_name);
		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(v->hex) ||
		    stat(path, &st) < 0 || hex_in_use(mounts, digests, s->dir, de->d_name))
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		snprintf(v[n].hex, sizeof(v[n].hex), "%s", de->d_name);
		v[n++].used = st.st_mtim;
	}
	if (d)
		closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), by_use);
	cleanup_free char *layouts_dir = xasprintf("%s/layouts", s->dir);
	for (size_t i = 0; i < n && used_pct(s->dir) > s->gc_low; i++) {
		cleanup_free char *path = xasprintf("%s/%s", unpacked_dir, v[i].hex);
		rm_rf(path);
		/* and every layout that holds it */
		DIR *ld = opendir(layouts_dir);
		while (ld && (de = readdir(ld))) {
			if (de->d_name[0] == '.')
				continue;
			cleanup_free char *layout = xasprintf("%s/%s", layouts_dir, de->d_name);
			cleanup_free char *digest = index_digest(layout, &e);
			if (digest && !strcmp(strchr(digest, ':') + 1, v[i].hex))
				rm_rf(layout);
		}
		if (ld)
			closedir(ld);
		fprintf(stderr,
			"clusterfs agent: image gc: removed sha256:%s (%d%% used, over %d%%)\n",
			v[i].hex, pct, s->gc_high);
	}
	free(v);
	for (size_t i = 0; i < nd; i++)
		free(digests[i]);
	free(digests);
}

int image_get(struct image_store *s, const char *text, const char *policy, struct image *img,
	      struct err *e)
{
	struct ref r;
	bool pulled = false;
	int rc;

	memset(img, 0, sizeof(*img));
	if ((rc = ref_parse(s, text, &r, e)) < 0)
		return rc;
	policy = effective_policy(policy, &r);
	cleanup_free char *layout = ref_layout(s, &r);
	cleanup_free char *index = xasprintf("%s/index.json", layout);
	pthread_mutex_lock(&s->lock);
	bool present = access(index, R_OK) == 0;
	if (!present && !strcmp(policy, "Never"))
		rc = err_set(e, ENOENT, "image \"%s\" is not present with pull policy \"Never\"",
			     text);
	else if (!present || !strcmp(policy, "Always"))
		pulled = (rc = pull(s, &r, layout, e)) == 0;
	if (rc == 0)
		rc = image_load(s, &r, layout, img, e);
	if (pulled && rc == 0)
		image_gc(s); /* the one just loaded is in use: a reference of a pod */
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		image_clear(img);
	return rc;
}
