/*
 * runtime.h: what the node agent asks of a container runtime.
 *
 * The agent decides which pods belong on its nodes (it reads the pod
 * files); a runtime makes them run and says what it sees. As with crun's
 * cgroup managers, each runtime is one struct of function pointers picked
 * at start, and the agent never knows which one it holds:
 *
 *   runtime-sim.c    --simulated: pods "run" at once, without processes
 *   (crun)           the real one: CNI, images, crun under a monitor
 *
 * Pods are known to a runtime by their metadata.uid, so a pod deleted and
 * created again under the same name is a new pod. Every call comes from
 * the agent's one thread, and none may block for long: that thread serves
 * every pod of every node the process runs. A runtime that needs time
 * (pulling an image, a grace period) answers -EINPROGRESS and the agent
 * asks again later, or works on threads of its own and says when a pod's
 * status changed (set_notify, changed).
 */
#ifndef CFS_RUNTIME_H
#define CFS_RUNTIME_H

#include "doc.h"

#include <stdbool.h>

/* What a runtime reports about one pod. */
struct agent_pod_status {
	const char *phase;	       /* "Pending", "Running", "Succeeded", "Failed"; static */
	bool ready;		       /* every container is ready */
	bool initialized;	       /* every init container completed */
	bool network;		       /* wired: the pod's address is reported */
	struct ynode *containers;      /* containerStatuses (a list), owned; never NULL */
	struct ynode *init_containers; /* initContainerStatuses, owned; NULL when none */
};

struct agent_runtime {
	/* The node's label clusterfs.io/runtime: "crun", "simulated". */
	const char *name;
	/* The node's status.nodeInfo.containerRuntimeVersion: "crun://1.8.1". */
	const char *version;
	/*
	 * Where the runtime keeps the node's state that lives until reboot;
	 * the agent's node services (dnsmasq) keep theirs beside it. NULL for
	 * a runtime that runs nothing on the node (simulated): no services.
	 */
	const char *run_dir;
	/*
	 * Makes pod (the object as the agent read it) run with the address
	 * ip in the node's pod range cidr; with spec.hostNetwork, ip is the
	 * node's own and the pod shares its network. A pod the runtime already runs,
	 * or finds still running after an agent restart, is adopted: 0, nothing restarted. Returns
	 * 0, -EINPROGRESS while still starting, or -errno with e set.
	 */
	int (*start_pod)(struct agent_runtime *rt, const struct ynode *pod, const char *ip,
			 const char *cidr, struct err *e);
	/*
	 * Stops the pod uid (SIGTERM, grace_s seconds, SIGKILL) and forgets
	 * it. 0 once it is gone (an unknown uid is gone), -EINPROGRESS while
	 * the grace period runs, or -errno with e set.
	 */
	int (*stop_pod)(struct agent_runtime *rt, const char *uid, int grace_s, struct err *e);
	/* Fills st (clear it with agent_pod_status_clear); -ENOENT for an unknown uid. */
	int (*pod_status)(struct agent_runtime *rt, const char *uid, struct agent_pod_status *st);
	/*
	 * Optional (NULL in a runtime that changes only when called): notify
	 * is called from any thread when a pod's status changed; changed()
	 * then returns the uids of those pods (a NULL-terminated array, caller
	 * frees it and them) and forgets them.
	 */
	void (*set_notify)(struct agent_runtime *rt, void (*notify)(void *arg), void *arg);
	char **(*changed)(struct agent_runtime *rt);
	/*
	 * Optional: the address pod uid was given by an earlier agent, as the
	 * runtime keeps it (what the pod may be wired with), into ip; 0, or
	 * -ENOENT when it keeps none. The agent claims it before it trusts
	 * the pod's status.podIP, which an agent killed between wiring the
	 * pod and writing its status never wrote.
	 */
	int (*pod_address)(struct agent_runtime *rt, const char *uid, char ip[64]);
	/* Optional: stops and releases the pods the runtime holds but for those in keep. */
	void (*sweep)(struct agent_runtime *rt, char *const *keep);
	/* Frees the runtime; the pods it runs keep running. */
	void (*free)(struct agent_runtime *rt);
};

static inline void agent_pod_status_clear(struct agent_pod_status *st)
{
	y_free(st->containers);
	y_free(st->init_containers);
	st->containers = st->init_containers = NULL;
}

/* agent_runtime_free(NULL) does nothing. */
static inline void agent_runtime_free(struct agent_runtime *rt)
{
	if (rt)
		rt->free(rt);
}

/* The simulated runtime (runtime-sim.c). Free with agent_runtime_free(). */
struct agent_runtime *agent_runtime_sim_new(void);

#endif
