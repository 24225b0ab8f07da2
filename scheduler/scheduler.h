/*
 * scheduler.h: the scheduler, a thread on the controller framework (ctl.h)
 * that does only what a user's script could do through the mount.
 *
 *   inotify on nodes/ and namespaces/NS/pods/
 *     -> a node's totals (nodeinfo.h) follow the pods bound to it
 *     -> each pod without spec.nodeName (and not being deleted) is queued
 *     -> filter and score (filter.h) pick a node
 *     -> the pod is written back with spec.nodeName, its resourceVersion
 *        and condition PodScheduled=True, and "Normal Scheduled" goes to
 *        the namespace's events; or, when no node fits, PodScheduled=False
 *        reason Unschedulable with kube-scheduler's message, written only
 *        when it changes, and "Warning FailedScheduling" goes to events.
 *
 * An unschedulable pod waits until something could change the answer: a
 * node that appears or changes what the filters read (labels, taints,
 * cordon, allocatable, Ready; not a heartbeat), or a bound pod that goes
 * or finishes. Then every waiting pod is queued again.
 *
 * Only pods whose spec.schedulerName is unset or default-scheduler are
 * scheduled.
 */
#ifndef CFS_SCHED_H
#define CFS_SCHED_H

struct sched;

/* Starts the scheduler on the mount. */
struct sched *sched_start(const char *mount);
/* Asks the thread to stop and returns at once: it may be inside a request
 * to the mount that only the FUSE loop can answer. */
void sched_request_stop(struct sched *s);
/* Stops the thread, waits for it and frees everything; sched_stop(NULL)
 * does nothing. The mount must still be served, or gone. */
void sched_stop(struct sched *s);

#endif
