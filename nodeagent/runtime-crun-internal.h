/*
 * runtime-crun-internal.h: what runtime-crun.c (the table of pods and
 * what the agent sees), podworker.c (one thread per pod that makes it run)
 * and podspec.c (the pod spec turned into files and config.json) share.
 *
 * Each pod has a worker thread. The agent's calls only read and flag
 * under rt->lock; everything slow (pulls, CNI, crun, probes, grace
 * periods) happens on the pod's thread, which takes the lock only to
 * publish what it did, then marks the pod changed and wakes the agent.
 */
#ifndef CFS_RUNTIME_CRUN_INTERNAL_H
#define CFS_RUNTIME_CRUN_INTERNAL_H

#include "cni.h"
#include "container.h"
#include "image.h"
#include "runtime-crun.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

enum ctr_state { CTR_WAITING, CTR_RUNNING, CTR_TERMINATED };

struct probe {
	const struct ynode *spec; /* NULL: no such probe */
	int64_t next;		  /* monotonic ms of the next run */
	int successes, failures;
};

struct crun_ctr {
	char *name;
	const struct ynode *spec; /* in the pod's copy */
	bool init;
	char id[17];
	char *dir;
	/* Below: written by the worker under rt->lock, read by the agent. */
	enum ctr_state state;
	char *reason, *message; /* of the waiting or terminated state */
	int exit_code;
	char started_at[32], finished_at[32];
	struct ynode *last; /* lastState */
	int restarts;
	bool ready, started;
	char *image_id;
	/* The worker's own. */
	pid_t conmon;
	int pidfd;
	int64_t retry_at;  /* monotonic ms: start again no sooner */
	int64_t run_since; /* monotonic ms it last started */
	int fails;	   /* consecutive failed starts or exits, for back-off */
	off_t log_off;	   /* how much of conmon's log went to the view */
	struct probe live, readiness, startup;
};

struct crun_pod {
	struct crun_rt *rt;
	char *uid, *ns, *name, *dir;
	struct ynode *pod; /* the object as first handed to us */
	char ip[16], cidr[32], netns[40];
	bool host_net;	       /* spec.hostNetwork: the node's network, names and address */
	struct crun_ctr *ctrs; /* init containers first */
	size_t nctrs, ninit;
	pthread_t thread;
	int wake[2];
	/* Protected by rt->lock. */
	bool stop; /* asked to stop */
	int grace_s;
	bool gone;	   /* stopped and released: the worker has ended */
	bool initialized;  /* every init container completed */
	bool wired;	   /* the namespace's network is up */
	const char *phase; /* static */
	/* The worker's own. */
	bool sandbox;	/* network namespace and files ready; its wiring may go on */
	bool net_stale; /* a wiring failed or was cut short: undo it before the next */
	int64_t sandbox_retry;
	pthread_t net; /* wiring the namespace (CNI) while net_busy */
	bool net_busy;
	bool net_ended; /* set by the wiring thread as it ends (atomic) */
	int net_r;	/* the wiring's result, once joined */
	struct err net_err;
};

struct crun_rt {
	struct agent_runtime rt; /* first: the handle is the runtime */
	struct crun_config cfg;
	char *pods_dir;
	struct ctr_env env;
	struct cni_config cni;
	struct image_store *images;
	pthread_mutex_t lock;
	struct strmap *pods;	   /* uid -> struct crun_pod; protected by lock */
	struct strmap *dirty;	   /* uids whose status changed; protected by lock */
	void (*notify)(void *arg); /* protected by lock */
	void *notify_arg;
	bool detaching; /* the agent stops: workers end, containers stay; protected by lock */
	char *version;	/* "crun://1.8.1" */
	char *state_dir, *run_dir, *view; /* cfg's, absolute */
};

/* The worker (podworker.c). */
void *pod_main(void *arg);
/* Marks p changed and wakes the agent; takes rt->lock. */
void pod_changed(struct crun_pod *p);
/* Wakes p's worker. Any thread. */
void pod_wake(struct crun_pod *p);

/* The pod spec, made concrete (podspec.c). */
int pod_files(struct crun_pod *p, struct err *e);
/* Rewrites the configMap and secret volumes whose objects changed; an
 * object gone or unreadable leaves them as they were. */
void pod_volumes_refresh(struct crun_pod *p);
struct ynode *ctr_config(struct crun_pod *p, struct crun_ctr *c, const struct image *img,
			 struct err *e);

/* Probes (probe.c): 1 success, 0 failure. */
int probe_run(struct crun_pod *p, struct crun_ctr *c, const struct ynode *spec);

#endif
