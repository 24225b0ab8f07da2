/*
 * kinds.c: the list of kinds clusterfs serves and the metadata every
 * object carries.
 *
 * A kind's own tables and hooks live by concept in kinds-pod.c (the pod
 * spec and Pod), kinds-core.c (the rest of the core group) and
 * kinds-workloads.c (apps, batch, autoscaling); this file only lists
 * them, so adding a kind is a table there and a line here.
 */
#include "kinds-internal.h"

static const struct field owner_ref_fields[] = {
	FSTR("apiVersion", .flags = F_REQUIRED),
	FSTR("kind", .flags = F_REQUIRED),
	FSTR("name", .flags = F_REQUIRED),
	FSTR("uid", .flags = F_REQUIRED),
	FBOOL("controller"),
	FBOOL("blockOwnerDeletion"),
	{0},
};

/*
 * The name's syntax differs by kind (a Service's must be a DNS label, most
 * others a DNS subdomain); the table checks the looser rule, which no
 * valid name breaks, and leaves the stricter ones to the object layer.
 */
const struct field metadata_fields[] = {
	FSTR("name", .flags = F_DNS_SUBDOMAIN),
	FSTR("generateName"),
	FSTR("namespace", .flags = F_DNS_LABEL),
	FSTRMAP("labels", .flags = F_LABELS),
	FSTRMAP("annotations", .flags = F_ANNOTATIONS),
	FSTR("uid"),
	FSTR("resourceVersion"),
	FINT("generation"),
	FSTR("creationTimestamp"),
	FSTR("deletionTimestamp"),
	FINT("deletionGracePeriodSeconds"),
	FLIST("ownerReferences", owner_ref_fields),
	FSTRLIST("finalizers"),
	FANY("managedFields"),
	{0},
};

/* One kind a line, kept by hand in the order of their plurals. */
/* clang-format off */
const struct kind *const kinds[] = {
	&kind_configmap,
	&kind_cronjob,
	&kind_daemonset,
	&kind_deployment,
	&kind_endpoints,
	&kind_hpa,
	&kind_job,
	&kind_namespace,
	&kind_node,
	&kind_pod,
	&kind_replicaset,
	&kind_replicationcontroller,
	&kind_secret,
	&kind_service,
	&kind_statefulset,
	NULL,
};
/* clang-format on */

const struct kind *kind_by_plural(const char *plural)
{
	for (int i = 0; plural && kinds[i]; i++)
		if (!strcmp(kinds[i]->plural, plural))
			return kinds[i];
	return NULL;
}

const struct kind *kind_by_name(const char *name)
{
	for (int i = 0; name && kinds[i]; i++)
		if (!strcmp(kinds[i]->name, name))
			return kinds[i];
	return NULL;
}

int kind_count_keys(const struct ynode *n, const char *const *keys)
{
	int count = 0;

	for (int i = 0; keys[i]; i++)
		count += y_get(n, keys[i]) != NULL;
	return count;
}
