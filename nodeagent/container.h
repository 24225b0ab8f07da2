/*
 * container.h: one container under crun and conmon.
 *
 * A container lives in a directory of its own (the bundle):
 *
 *   DIR/config.json    the OCI runtime configuration (oci.c builds it)
 *   DIR/rootfs         an overlay: the image's rootfs below, DIR/upper above
 *   DIR/log            conmon's log, "k8s-file" lines: TIME STREAM F|P TEXT
 *   DIR/exit/ID        conmon writes the exit code here when it ends
 *   DIR/conmon.pid     the monitor, which outlives the agent
 *
 * conmon runs `crun create`, reports the container's pid on a sync pipe,
 * then waits for the container and writes its exit code; we `crun start`
 * it. Every crun and conmon invocation runs with PROC_PRIVATE_MOUNTS.
 */
#ifndef CFS_CONTAINER_H
#define CFS_CONTAINER_H

#include "util.h"

#include <stdbool.h>
#include <sys/types.h>

/* Where crun keeps its state and conmon its sockets. */
struct ctr_env {
	const char *crun;      /* crun's path, for conmon */
	const char *crun_root; /* crun --root */
	const char *sock_dir;  /* conmon --socket-dir-path */
};

/* Mounts DIR/rootfs as an overlay over lower (a fresh, empty upper). 0 or -errno with e set. */
int ctr_mount(const char *dir, const char *lower, struct err *e);
/* Unmounts DIR/rootfs and removes the upper layer; 0 when nothing is mounted. */
int ctr_unmount(const char *dir);

/* Creates the container id from DIR/config.json under conmon; *conmon gets
 * the monitor's pid. 0 or -errno with e set. */
int ctr_create(const struct ctr_env *env, const char *dir, const char *id, pid_t *conmon,
	       struct err *e);
int ctr_start(const struct ctr_env *env, const char *id, struct err *e);
/* Sends sig to the container's process. */
int ctr_kill(const struct ctr_env *env, const char *id, int sig);
/* Removes crun's record of the container (and its cgroup), whatever its state. */
int ctr_delete(const struct ctr_env *env, const char *id);
/* Runs argv in the container; the exit status, or -errno (ETIMEDOUT) with e set. */
int ctr_exec(const struct ctr_env *env, const char *id, const char *const *argv, int timeout_ms,
	     struct err *e);

/* The exit code conmon wrote, or -ENOENT when it has not. */
int ctr_exit_code(const char *dir, const char *id);
/* The monitor's pid from DIR/conmon.pid, when it still runs; 0 otherwise. */
pid_t ctr_monitor(const char *dir);
/* Whether the kernel's OOM killer killed a process of the container's cgroup. */
bool ctr_oom_killed(const char *id);

/* rm -rf path, without crossing into mounts. 0 or -errno. */
int rm_rf(const char *path);

/* The id of container name of pod uid: 16 hex digits. */
void ctr_id(const char *uid, const char *name, char out[17]);

#endif
