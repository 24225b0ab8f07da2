/*
 * kinds-internal.h: what the files that define the kinds share.
 *
 * kinds.c holds the list of kinds and metadata's table; kinds-pod.c the
 * pod spec (used by every workload's template) and the Pod kind;
 * kinds-core.c the other kinds of the core group; kinds-workloads.c the
 * apps, batch and autoscaling kinds. Each kind is a `struct kind` defined
 * in its file and listed in kinds[].
 */
#ifndef CFS_KINDS_INTERNAL_H
#define CFS_KINDS_INTERNAL_H

#include "schema.h"

extern const struct kind kind_namespace, kind_node, kind_pod, kind_service, kind_endpoints,
	kind_configmap, kind_secret;
extern const struct kind kind_deployment, kind_replicaset, kind_replicationcontroller,
	kind_daemonset, kind_statefulset, kind_job, kind_cronjob, kind_hpa;

/* A pod template: {metadata, spec}, spec required. */
extern const struct field pod_template_fields[];

/*
 * Completes and checks the pod template at path ("spec.template") after
 * its table: the defaults that depend on other fields (imagePullPolicy,
 * a volume's source) and the rules a table cannot say (unique names,
 * mounts that name a volume). restart lists the restartPolicy values the
 * owner allows, NULL-terminated, or is NULL for a bare pod.
 */
int kind_check_template(struct ynode *tmpl, const char *path, const char *const *restart,
			struct err *e);
/* The same for a pod spec at path ("spec" of a Pod). */
int kind_check_pod_spec(struct ynode *spec, const char *path, const char *const *restart,
			struct err *e);

/* How many of the keys (NULL-terminated) map n holds. */
int kind_count_keys(const struct ynode *n, const char *const *keys);

#endif
