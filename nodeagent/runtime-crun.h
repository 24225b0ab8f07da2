/*
 * runtime-crun.h: the real runtime, with crun under conmon, OCI images
 * pulled with skopeo and unpacked with umoci, and a CNI pod network.
 */
#ifndef CFS_RUNTIME_CRUN_H
#define CFS_RUNTIME_CRUN_H

#include "runtime.h"

struct crun_config {
	const char *state_dir;	     /* images, pods, IPAM records */
	const char *run_dir;	     /* crun's and conmon's state */
	const char *view;	     /* the cluster: config maps, secrets, logs */
	const char *bridge;	     /* the node's bridge */
	const char *registry;	     /* for short image names; NULL: docker.io */
	const char *const *insecure; /* plain-HTTP registries, NULL-terminated */
	int64_t pids_limit;	     /* per container; 0: none */
	int backoff_ms;		     /* the first restart back-off: 10000 */
	int image_gc_high;	     /* image GC above this percent of the disk used; 0: 85 */
	int image_gc_low;	     /* ... down to this one; both 0: 80 */
};

/* The runtime (runtime-crun.c); NULL with e set when a tool is missing or
 * a directory cannot be made. Free with agent_runtime_free(). */
struct agent_runtime *agent_runtime_crun_new(const struct crun_config *cfg, struct err *e);

#endif
