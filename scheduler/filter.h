/*
 * filter.h: choosing a node for a pod the way kube-scheduler's default
 * plugins do. No I/O: the scheduler's thread and the unit tests call it
 * alike.
 *
 * Filters, in kube-scheduler's order; a node fails at the first one that
 * rejects it, with that plugin's reasons:
 *   NodeUnschedulable  "node(s) were unschedulable"
 *   NodeName           "node(s) didn't match the requested node name"
 *   TaintToleration    "node(s) had untolerated taint {KEY: VALUE}" (NoSchedule,
 *                      NoExecute; a node that is not Ready has the not-ready
 *                      taint, as Kubernetes' node lifecycle controller puts it)
 *   NodeAffinity       "node(s) didn't match Pod's node affinity/selector"
 *   NodePorts          "node(s) didn't have free ports for the requested pod ports"
 *   NodeResourcesFit   "Too many pods", "Insufficient cpu", "Insufficient memory"
 *
 * Scores, each 0..100 over the nodes that passed, then weighted and
 * summed (the weights are kube-scheduler's defaults for the plugin that
 * does the same job):
 *   least allocated cpu and memory (NodeResourcesFit)        weight 1
 *   fewer pods of the pod's controller owner (spreading)     weight 2
 *   preferred node affinity weights (NodeAffinity)           weight 2
 *   fewer untolerated PreferNoSchedule taints                weight 3
 * The highest total wins; ties go to the first node name in byte order,
 * so a decision is deterministic.
 */
#ifndef CFS_SCHED_FILTER_H
#define CFS_SCHED_FILTER_H

#include "nodeinfo.h"

/*
 * Picks a node for p among nodes (those without a Node object are not
 * counted). Returns the index of the node in nodes, or -1 with *msg set
 * to kube-scheduler's explanation ("0/3 nodes are available: 1 node(s)
 * were unschedulable, 2 Insufficient cpu."); caller frees *msg.
 */
int sched_choose(const struct sched_pod *p, struct sched_node *const *nodes, size_t n, char **msg);

/*
 * The same from plain objects: the pod, the Node objects, and the pods
 * already in the cluster (those bound to one of the nodes and not
 * finished take their share). Returns an index into nodes, or -1 with
 * *msg set; caller frees *msg.
 */
int sched_pick(const struct ynode *pod, const struct ynode *const *nodes, size_t nnodes,
	       const struct ynode *const *pods, size_t npods, char **msg);

/* Whether the tolerations (a list, or NULL) tolerate the taint. */
bool sched_tolerates(const struct ynode *tolerations, const char *key, const char *value,
		     const char *effect);

#endif
