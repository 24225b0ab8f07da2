/*
 * owners.c: owner references, pod states and keys, for the controllers.
 */
#define _GNU_SOURCE
#include "owners.h"

#include <errno.h>

const struct ynode *owner_controller(const struct ynode *obj)
{
	const struct ynode *refs = y_path(obj, "metadata.ownerReferences");

	for (size_t i = 0; refs && refs->type == Y_SEQ && i < refs->n; i++) {
		const struct ynode *c = y_get(refs->v[i], "controller");
		if (c && c->type == Y_BOOL && c->i)
			return refs->v[i];
	}
	return NULL;
}

bool owned_by(const struct ynode *obj, const char *uid)
{
	const char *owner = y_path_str(owner_controller(obj), "uid");
	return owner && uid && !strcmp(owner, uid);
}

struct ynode *owner_ref(const struct ynode *owner)
{
	struct ynode *r = y_map();

	y_set(r, "apiVersion", y_str(y_path_str(owner, "apiVersion")));
	y_set(r, "kind", y_str(y_path_str(owner, "kind")));
	y_set(r, "name", y_str(y_path_str(owner, "metadata.name")));
	y_set(r, "uid", y_str(y_path_str(owner, "metadata.uid")));
	y_set(r, "controller", y_bool(true));
	y_set(r, "blockOwnerDeletion", y_bool(true));
	return r;
}

long deployment_revision(const struct ynode *rs)
{
	/* y_get, not y_path: the key has dots in it */
	const struct ynode *r =
		y_get(y_path(rs, "metadata.annotations"), "deployment.kubernetes.io/revision");
	return r && r->type == Y_STR ? strtol(r->str, NULL, 10) : 0;
}

bool pod_active(const struct ynode *pod)
{
	const char *phase = y_path_str(pod, "status.phase");

	if (y_path(pod, "metadata.deletionTimestamp"))
		return false;
	return !phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"));
}

bool condition_true(const struct ynode *obj, const char *type)
{
	const struct ynode *conds = y_path(obj, "status.conditions");

	for (size_t i = 0; conds && conds->type == Y_SEQ && i < conds->n; i++) {
		const char *t = y_path_str(conds->v[i], "type");
		const char *s = y_path_str(conds->v[i], "status");
		if (t && s && !strcmp(t, type))
			return !strcmp(s, "True");
	}
	return false;
}

bool pod_ready(const struct ynode *pod)
{
	return condition_true(pod, "Ready");
}

char *obj_key(const struct kind *k, const char *ns, const char *name)
{
	return xasprintf("%s/%s/%s", k->plural, ns, name);
}

int key_split(const char *key, char *buf, size_t size, const struct kind **k, const char **ns,
	      const char **name)
{
	if (strlen(key) >= size)
		return -EINVAL;
	strcpy(buf, key);
	char *a = strchr(buf, '/'), *b = a ? strchr(a + 1, '/') : NULL;
	if (!b)
		return -EINVAL;
	*a = *b = 0;
	*k = kind_by_plural(buf);
	*ns = a + 1;
	*name = b + 1;
	return *k ? 0 : -EINVAL;
}
