/*
 * agent.h: the node agent, working on a mounted view of the cluster.
 *
 * An agent runs one node, or N nodes from one process (NAME-0 ..
 * NAME-N-1, for scale tests), on ONE controller thread (controllers/ctl.h)
 * that watches pods and nodes through the view. It registers each node's
 * nodes/NAME.yaml and renews its Ready heartbeat; it hands the pods bound
 * to its nodes to a runtime (runtime.h), writes their status back, and
 * completes their deletion.
 */
#ifndef CFS_AGENT_H
#define CFS_AGENT_H

#include "runtime.h"

struct agent;

struct agent_config {
	const char *view;     /* the mounted tree: /cluster, or a 9P mount of it */
	const char *node;     /* the node's name; with nodes > 0, the names' prefix */
	int nodes;	      /* 0: one node named node; N: node-0 .. node-(N-1) */
	int heartbeat_ms;     /* between two renewals of a node's Ready condition */
	const char *capacity; /* "cpu=4,memory=8Gi,pods=110"; NULL for that default */
	int remote;	      /* the view is a 9P mount: changes come from its watch file */
	const char *node_ip;  /* a real node's InternalIP; NULL for simulated nodes' made-up ones */
};

/* The most nodes one process runs (their default pod ranges must not overlap). */
#define AGENT_MAX_NODES 4096

/*
 * Starts the agent with the runtime rt (consumed, even on failure).
 * Returns NULL with e set when the configuration is wrong. The agent works
 * on its own thread until agent_free().
 */
struct agent *agent_new(const struct agent_config *cfg, struct agent_runtime *rt, struct err *e);
/* Stops the agent's thread and frees it; its pods keep running. NULL does nothing. */
void agent_free(struct agent *a);

/*
 * Parses "cpu=4,memory=8Gi,pods=110" over the defaults (cpu 4, memory
 * 8Gi, pods 110) into a map of quantity strings, as status.capacity
 * shows them. Returns NULL with e set on a bad entry; caller frees.
 */
struct ynode *agent_parse_capacity(const char *spec, struct err *e);
/* This machine's CPUs and memory, as a --capacity list; caller frees. */
char *agent_host_capacity(void);
/*
 * This machine's address as a node's InternalIP, as kubelet picks it
 * without --node-ip: the IPv4 address of the default route's interface,
 * else the first global one on an interface that is up, skipping skip_if
 * (the pod bridge) and loopback. 0, or -ENOENT when there is none.
 */
int agent_host_ip(const char *skip_if, char out[16]);

#endif
