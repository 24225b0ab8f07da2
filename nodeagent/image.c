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
#include <sys/stat.h>
#include <unistd.h>

struct image_store {
	char *dir, *registry, *policy;
	char **insecure;
	pthread_mutex_t lock; /* held across a pull and an unpack */
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

/* Reads what the pulled layout holds into img; called with s->lock held. */
static int image_load(struct image_store *s, const struct ref *r, const char *layout,
		      struct image *img, struct err *e)
{
	cleanup_free char *index_path = xasprintf("%s/index.json", layout);
	struct ynode *index = read_json(index_path, e), *manifest = NULL, *config = NULL;
	const char *digest = y_path_str(y_get(index, "manifests") && y_get(index, "manifests")->n
						? y_get(index, "manifests")->v[0]
						: NULL,
					"digest");
	int rc = -EIO;

	if (!digest || !strchr(digest, ':')) {
		if (index)
			err_set(e, EIO, "%s: no manifest", layout);
		goto out;
	}
	if (!(manifest = read_blob(layout, digest, e)) ||
	    !(config = read_blob(layout, y_path_str(manifest, "config.digest"), e)))
		goto out;
	if (unpack(s, layout, strchr(digest, ':') + 1, &img->rootfs, e) < 0)
		goto out;
	img->id = xasprintf("%s/%s@%s", r->registry, r->repo, digest);
	img->config = y_take(config, "config");
	if (!img->config)
		img->config = y_map();
	rc = 0;
out:
	y_free(index);
	y_free(manifest);
	y_free(config);
	return rc;
}

int image_get(struct image_store *s, const char *text, const char *policy, struct image *img,
	      struct err *e)
{
	struct ref r;
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
		rc = pull(s, &r, layout, e);
	if (rc == 0)
		rc = image_load(s, &r, layout, img, e);
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		image_clear(img);
	return rc;
}
