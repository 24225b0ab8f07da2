/*
 * nodeinfo.h: what the scheduler knows about nodes and pods.
 *
 * A Node object is read, when it changes, into the spec part of a struct
 * sched_node: its labels, its taints (plus the taint Kubernetes' node
 * lifecycle controller would add when the node is not Ready), whether it
 * is cordoned, and its allocatable cpu, memory and pod count. Each pod
 * bound to the node adds its claim (requests, host ports, owner) to the
 * node's totals, and takes it back when the pod finishes or goes, so a
 * scheduling decision reads totals and never walks the pods.
 *
 * A pod waiting for a node is read into a struct sched_pod for one
 * decision: its claim, and pointers into its spec for the filters.
 */
#ifndef CFS_SCHED_NODEINFO_H
#define CFS_SCHED_NODEINFO_H

#include "doc.h"

#include <stdbool.h>

/* kube-scheduler's defaults for a container without requests, used in
 * scoring only, so that pods without requests still spread. */
#define SCHED_DEFAULT_MILLI_CPU 100
#define SCHED_DEFAULT_MEMORY	(200LL * 1024 * 1024)

/* The taints Kubernetes puts on a node whose Ready condition is False or
 * missing, and Unknown. */
#define SCHED_TAINT_NOT_READY	  "node.kubernetes.io/not-ready"
#define SCHED_TAINT_UNREACHABLE	  "node.kubernetes.io/unreachable"
#define SCHED_TAINT_UNSCHEDULABLE "node.kubernetes.io/unschedulable"

struct sched_res {
	int64_t cpu; /* millicores */
	int64_t mem; /* bytes */
};

/* A host port a pod's container asks for. */
struct sched_port {
	int port;
	char proto[8]; /* TCP, UDP, SCTP */
	char ip[48];   /* 0.0.0.0 when unset */
};

/* What a pod takes from the node it is bound to. */
struct sched_claim {
	struct sched_res req;	  /* requests, as NodeResourcesFit counts them */
	struct sched_res nonzero; /* the same with defaults for what is unset: for scoring */
	struct sched_port *ports; /* host ports; owned */
	size_t nports;
	char *owner; /* uid of the controller ownerReference, or NULL; owned */
};

/* Reads what pod would take from a node into cl; clear it with sched_claim_clear. */
void sched_claim_read(struct sched_claim *cl, const struct ynode *pod);
void sched_claim_clear(struct sched_claim *cl);

/* A pod to place. The ynode pointers are borrowed from the pod's object,
 * and the struct must not outlive it. */
struct sched_pod {
	const char *node_name; /* spec.nodeName, or NULL */
	struct sched_claim claim;
	const struct ynode *tolerations;   /* spec.tolerations, or NULL */
	const struct ynode *node_selector; /* spec.nodeSelector, or NULL */
	const struct ynode *required;	   /* nodeAffinity's required NodeSelector, or NULL */
	const struct ynode *preferred;	   /* nodeAffinity's preferred terms, or NULL */
};

void sched_pod_read(struct sched_pod *p, const struct ynode *pod);
void sched_pod_clear(struct sched_pod *p);

/* Whether pod waits for this scheduler: no node, not being deleted, not
 * finished, no schedulingGates, and schedulerName unset or
 * default-scheduler. */
bool sched_pod_pending(const struct ynode *pod);
/* The node whose resources pod holds (bound, not Succeeded or Failed;
 * a terminating pod still holds them), or NULL. Borrowed from pod. */
const char *sched_pod_holder(const struct ynode *pod);

struct sched_taint {
	char *key, *value; /* owned; value "" when unset */
	char effect[20];   /* NoSchedule, PreferNoSchedule, NoExecute */
};

/* What the Node object says. */
struct sched_nodespec {
	bool present;	      /* a Node object exists */
	bool unschedulable;   /* spec.unschedulable: cordoned */
	struct ynode *labels; /* metadata.labels (a copy), or NULL */
	struct sched_taint *taints;
	size_t ntaints;
	struct sched_res alloc; /* status.allocatable, or status.capacity */
	int64_t alloc_pods;
};

struct sched_node {
	char *name;
	struct sched_nodespec s;
	/* The sum of the claims of the pods bound here. */
	struct sched_res req, nonzero;
	int64_t pods;
	struct sched_port *ports;
	size_t nports;
	struct strmap *owners; /* owner uid -> its pods here, as an intptr_t */
};

/* A node that nothing is known of yet; sched_node_free(NULL) does nothing. */
struct sched_node *sched_node_new(const char *name);
void sched_node_free(struct sched_node *n);
/*
 * Reads the Node object (NULL: it is gone) into n->s, keeping what is
 * bound. Returns whether anything the filters or scores read changed
 * (a heartbeat alone changes nothing).
 */
bool sched_node_update(struct sched_node *n, const struct ynode *node);
/* Adds or takes back a bound pod's claim. */
void sched_node_add(struct sched_node *n, const struct sched_claim *cl);
void sched_node_sub(struct sched_node *n, const struct sched_claim *cl);
/* How many pods of this owner are bound here. */
int64_t sched_node_owned(const struct sched_node *n, const char *owner);

#endif
