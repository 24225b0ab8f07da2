/*
 * controllers.h: the controllers that run inside `clusterfs server`, each
 * a thread on the ctl framework, acting only through the mount.
 */
#ifndef CFS_CONTROLLERS_H
#define CFS_CONTROLLERS_H

#include "ctl.h"

struct ctl *replicaset_controller_start(const char *mount);
struct ctl *gc_start(const char *mount);
struct ctl *deployment_controller_start(const char *mount);
struct ctl *endpoints_controller_start(const char *mount);
/* grace: seconds without a heartbeat before a node is Unknown; eviction:
 * seconds more before its pods are deleted. */
struct ctl *nodelifecycle_start(const char *mount, int grace, int eviction);

struct controllers_config {
	int node_grace;	      /* seconds; default 40 */
	int eviction_timeout; /* seconds; default 60 */
};

/* Every controller of the control plane, started and stopped together. */
struct controllers;
struct controllers *controllers_start(const char *mount, const struct controllers_config *cfg);
/* Asks every thread to stop; returns at once (their requests to the
 * mount may need the FUSE loop, which may be gone already). */
void controllers_stop(struct controllers *cs);
/* Waits for the threads and frees them. The mount must be served or gone. */
void controllers_free(struct controllers *cs);

#endif
