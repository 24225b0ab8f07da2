/*
 * object.c: from YAML text and a path to a checked object, and from a
 * checked object and the stored one to what gets stored.
 */
#define _GNU_SOURCE
#include "object.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int obj_parse_one(const char *buf, size_t len, struct ynode **out, struct err *e)
{
	struct ynode **docs = NULL;
	size_t n = 0, real = 0;
	int r;

	if (len > OBJ_MAX_SIZE)
		return err_set(e, EFBIG, "the document is %zu bytes; at most %d are accepted", len,
			       OBJ_MAX_SIZE);
	if ((r = y_parse(buf, len, &docs, &n, e)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		real += docs[i]->type != Y_NULL;
	if (real != 1) {
		for (size_t i = 0; i < n; i++)
			y_free(docs[i]);
		free(docs);
		if (real == 0)
			return err_set(e, EINVAL,
				       "the file is empty: an object file holds one YAML document");
		return err_set(e, EINVAL,
			       "the file holds %zu documents: an object file holds one (write "
			       "several to apply)",
			       real);
	}
	for (size_t i = 0; i < n; i++) {
		if (docs[i]->type != Y_NULL)
			*out = docs[i];
		else
			y_free(docs[i]);
	}
	free(docs);
	return 0;
}

int obj_load(const char *path, struct ynode **out, struct err *e)
{
	size_t len;
	/* One byte over the limit, so that obj_parse_one() says EFBIG. */
	cleanup_free char *text = file_get(path, OBJ_MAX_SIZE + 1, &len);

	if (!text)
		return err_set(e, errno, "%s: %s", path, strerror(errno));
	return obj_parse_one(text, len, out, e);
}

static int check_api_version(const struct kind *k, struct ynode *doc, struct err *e)
{
	struct ynode *av = y_get(doc, "apiVersion");

	if (!av || av->type == Y_NULL) {
		y_set(doc, "apiVersion", y_str(k->api_versions[0]));
		return 0;
	}
	if (av->type != Y_STR)
		return err_set(e, EINVAL, "apiVersion: must be a string");
	for (int i = 0; k->api_versions[i]; i++)
		if (!strcmp(av->str, k->api_versions[i]))
			return 0;
	return err_set(e, EINVAL, "apiVersion: \"%s\" does not serve kind %s (use %s)", av->str,
		       k->name, k->api_versions[0]);
}

static int check_kind(const struct kind *k, struct ynode *doc, struct err *e)
{
	struct ynode *kn = y_get(doc, "kind");

	if (!kn || kn->type == Y_NULL) {
		y_set(doc, "kind", y_str(k->name));
		return 0;
	}
	if (kn->type != Y_STR || strcmp(kn->str, k->name))
		return err_set(e, EINVAL, "kind: \"%s\" does not belong in %s/ (that holds %s)",
			       kn->str ? kn->str : "?", k->plural, k->name);
	return 0;
}

/* Fills or checks one metadata string field against what the path says. */
static int check_meta_str(struct ynode *meta, const char *key, const char *want, const char *what,
			  struct err *e)
{
	struct ynode *v = y_get(meta, key);

	if (!v || v->type == Y_NULL) {
		y_set(meta, key, y_str(want));
		return 0;
	}
	if (v->type != Y_STR)
		return err_set(e, EINVAL, "metadata.%s: must be a string", key);
	if (strcmp(v->str, want))
		return err_set(e, EINVAL, "metadata.%s: \"%s\" does not match %s \"%s\"", key,
			       v->str, what, want);
	return 0;
}

static int check_name(const struct kind *k, const char *name, struct err *e)
{
	if (!strcmp(k->name, "Namespace") || !strcmp(k->name, "Service")) {
		int r = check_dns_label(name, "metadata.name", e);
		if (r == 0 && !strcmp(k->name, "Service") && !(name[0] >= 'a' && name[0] <= 'z'))
			r = err_set(e, EINVAL,
				    "metadata.name: a Service name must start with a letter");
		return r;
	}
	return check_dns_subdomain(name, "metadata.name", e);
}

static void generate_name(struct ynode *meta)
{
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	const char *prefix = y_path_str(meta, "generateName");
	unsigned char rnd[5];
	char suffix[6];

	if (!prefix || y_get(meta, "name"))
		return;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 7, sizeof(rnd));
	for (int i = 0; i < 5; i++)
		suffix[i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
	suffix[5] = 0;
	cleanup_free char *name = xasprintf("%s%s", prefix, suffix);
	y_set(meta, "name", y_str(name));
}

static int check_metadata(const struct kind *k, const char *ns, const char *name, struct ynode *doc,
			  struct err *e)
{
	struct ynode *meta = y_get(doc, "metadata");
	int r;

	if (!meta || meta->type == Y_NULL)
		meta = y_submap(doc, "metadata");
	if (meta->type != Y_MAP)
		return err_set(e, EINVAL, "metadata: must be a map");
	if ((r = schema_check(metadata_fields, meta, "metadata", e)) < 0)
		return r;
	generate_name(meta);
	if (name && (r = check_meta_str(meta, "name", name, "the file name", e)) < 0)
		return r;
	const char *n = y_path_str(meta, "name");
	if (!n)
		return err_set(e, EINVAL, "metadata.name: required");
	if ((r = check_name(k, n, e)) < 0)
		return r;
	if (k->namespaced)
		return check_meta_str(meta, "namespace", ns, "the namespace", e);
	if (y_get(meta, "namespace"))
		return err_set(e, EINVAL, "metadata.namespace: %s is not a namespaced kind",
			       k->name);
	return 0;
}

int obj_normalize(const struct kind *k, const char *ns, const char *name, struct ynode *doc,
		  struct err *e)
{
	int r;

	if (doc->type != Y_MAP)
		return err_set(e, EINVAL, "the document must be a map of fields, not a %s",
			       y_typename(doc->type));
	if ((r = check_api_version(k, doc, e)) < 0 || (r = check_kind(k, doc, e)) < 0 ||
	    (r = check_metadata(k, ns, name, doc, e)) < 0)
		return r;
	struct ynode *av = y_take(doc, "apiVersion");
	struct ynode *kn = y_take(doc, "kind");
	struct ynode *meta = y_take(doc, "metadata");
	r = schema_check(k->fields, doc, "", e);
	y_set(doc, "apiVersion", av);
	y_set(doc, "kind", kn);
	y_set(doc, "metadata", meta);
	if (r == 0 && k->validate)
		r = k->validate(doc, e);
	return r;
}

int obj_identify(struct ynode *doc, const char *default_ns, const struct kind **k, const char **ns,
		 const char **name, struct err *e)
{
	if (doc->type != Y_MAP)
		return err_set(e, EINVAL, "the document must be a map of fields, not a %s",
			       y_typename(doc->type));
	const char *kn = y_path_str(doc, "kind");
	if (!kn)
		return err_set(e, EINVAL,
			       "kind: required (a document applied without a path names its kind)");
	if (!(*k = kind_by_name(kn)))
		return err_set(e, EINVAL, "kind: unknown kind \"%s\"", kn);
	*ns = y_path_str(doc, "metadata.namespace");
	if (!*ns || !(*k)->namespaced)
		*ns = (*k)->namespaced ? default_ns : "";
	*name = y_path_str(doc, "metadata.name");
	return 0;
}

int64_t obj_rv(const struct ynode *obj)
{
	const char *rv = y_path_str(obj, "metadata.resourceVersion");
	char *end;

	if (!rv || !*rv)
		return 0;
	long long v = strtoll(rv, &end, 10);
	return *end || v <= 0 ? -1 : v;
}

static void new_uid(char out[37])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		memset(b, 0, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* Whether a and b differ outside metadata and status: a spec change. */
static bool spec_differs(const struct ynode *a, const struct ynode *b)
{
	for (size_t i = 0; i < a->n; i++) {
		if (!strcmp(a->keys[i], "metadata") || !strcmp(a->keys[i], "status"))
			continue;
		if (!y_equal(a->v[i], y_get(b, a->keys[i])))
			return true;
	}
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->keys[i], "metadata") && strcmp(b->keys[i], "status") &&
		    !y_get(a, b->keys[i]))
			return true;
	return false;
}

static const char *const server_meta[] = {
	"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", NULL};

static void copy_server_meta(struct ynode *meta, const struct ynode *from)
{
	for (int i = 0; server_meta[i]; i++) {
		struct ynode *v = y_get(from, server_meta[i]);
		if (v)
			y_set(meta, server_meta[i], y_clone(v));
		else
			y_del(meta, server_meta[i]);
	}
}

int obj_check_rv(const struct ynode *cur, const struct ynode *doc, struct err *e)
{
	int64_t want = obj_rv(doc);

	if (want < 0)
		return err_set(e, EINVAL,
			       "metadata.resourceVersion: \"%s\" is not a resourceVersion",
			       y_path_str(doc, "metadata.resourceVersion"));
	if (cur && want && want != obj_rv(cur))
		return err_set(e, ESTALE,
			       "metadata.resourceVersion: %lld is stale (the object is at %lld): "
			       "read it again and retry",
			       (long long)want, (long long)obj_rv(cur));
	return 0;
}

int obj_merge(const struct ynode *cur, struct ynode *doc, int64_t rv, int64_t now, bool *changed,
	      struct err *e)
{
	struct ynode *meta = y_submap(doc, "metadata");
	char buf[40];
	int r;

	if ((r = obj_check_rv(cur, doc, e)) < 0)
		return r;
	if (!cur) {
		for (int i = 0; server_meta[i]; i++)
			y_del(meta, server_meta[i]);
		new_uid(buf);
		y_set(meta, "uid", y_str(buf));
		fmt_time(now, buf);
		y_set(meta, "creationTimestamp", y_str(buf));
		y_set(meta, "generation", y_int(1));
		*changed = true;
	} else {
		const struct ynode *cmeta = y_get(cur, "metadata");
		copy_server_meta(meta, cmeta);
		if (!y_get(doc, "status") && y_get(cur, "status"))
			y_set(doc, "status", y_clone(y_get(cur, "status")));
		bool spec = spec_differs(doc, cur);
		int64_t gen = y_get(cmeta, "generation") ? y_get(cmeta, "generation")->i : 1;
		y_set(meta, "generation", y_int(gen + spec));
		*changed = !y_equal(doc, cur);
	}
	if (*changed)
		y_set(meta, "resourceVersion",
		      y_str((snprintf(buf, sizeof(buf), "%lld", (long long)rv), buf)));
	return 0;
}
