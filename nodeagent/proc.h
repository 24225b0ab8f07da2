/*
 * proc.h: running the field's tools (crun, conmon, skopeo, umoci, the CNI
 * plugins) from the agent's threads.
 *
 * On a host whose cgroups are hybrid (v1 controllers, and a cgroup2 mount
 * at /sys/fs/cgroup/unified), crun refuses to work. Tools that reach crun
 * therefore run with PROC_PRIVATE_MOUNTS: in a mount namespace of their
 * own where that cgroup2 mount is detached. The host is never changed.
 */
#ifndef CFS_PROC_H
#define CFS_PROC_H

#include "util.h"

#include <stdbool.h>
#include <sys/types.h>

enum {
	PROC_PRIVATE_MOUNTS = 1, /* detach the v2 hierarchy when cgroups are hybrid */
	PROC_DETACH = 2,	 /* new session: the program outlives the agent */
};

struct proc_opts {
	int flags;
	const char *const *env; /* added to the agent's environment; NULL-terminated */
	const char *input;	/* written to stdin; NULL: /dev/null */
	int keep_fd;		/* passed as fd 3 when >= 0 (conmon's sync pipe) */
	int timeout_ms;		/* killed (SIGKILL) after; 0: 60 s */
	const char *cwd;	/* NULL: the agent's */
};

/* Whether cgroups are hybrid here (decided once). */
bool proc_hybrid_cgroups(void);

/*
 * Runs argv (argv[0] a path or a name looked up in PATH) and waits. Its
 * stdout goes to *out when out is not NULL (caller frees), its stderr to
 * e's message on failure. Returns the exit status (0..255), 128+signal, or
 * -errno with e set when it could not run or timed out.
 */
int proc_run(const char *const argv[], const struct proc_opts *o, char **out, struct err *e);

/* The path of program name in PATH; NULL when there is none. Caller frees. */
char *proc_which(const char *name);

/* A pidfd for pid (poll: readable when it exits); -errno when it is gone. */
int proc_pidfd(pid_t pid);

#endif
