/*
 * oci.h: the OCI runtime configuration (config.json) of one container.
 *
 * The runtime decides what the container gets (argv, environment, mounts,
 * limits); this module only says it in the OCI runtime specification's
 * terms, with the defaults container engines use: the usual kernel
 * filesystems, Docker's default capabilities, masked and read-only /proc
 * paths, and namespaces of its own but for the pod's network.
 */
#ifndef CFS_OCI_H
#define CFS_OCI_H

#include "doc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct oci_mount {
	const char *dest, *src;
	bool ro;
};

struct oci_spec {
	const char *hostname;	 /* NULL: the host's (no UTS namespace) */
	const char *netns;	 /* the pod's namespace: /run/netns/NAME; NULL: the host's */
	const char *cgroup;	 /* cgroupsPath */
	const char *const *args; /* NULL-terminated */
	const char *const *env;	 /* "NAME=value", NULL-terminated */
	const char *cwd;
	unsigned uid, gid;
	int64_t memory;			/* bytes; 0: no limit */
	int64_t cpu_millis;		/* limits.cpu in thousandths; 0: no limit */
	int64_t cpu_request_millis;	/* requests.cpu: the share */
	int64_t pids;			/* 0: no limit */
	const struct oci_mount *mounts; /* bind mounts */
	size_t nmounts;
};

/* The configuration as a tree (emit it with y_emit_json); caller frees. */
struct ynode *oci_config(const struct oci_spec *s);

#endif
