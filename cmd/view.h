/*
 * view.h: a node agent's view of a server, `clusterfs mount ADDR:PORT DIR`
 * in a child process of the agent's.
 *
 * Not in the agent's own process: a thread of a process that is killed
 * while it waits for an answer from a FUSE mount the same process serves
 * waits for ever (the kernel waits uninterruptibly for a request already
 * read, and the reader is gone), and the process with it; a read of watch
 * always waits. The child gets SIGTERM when the thread that started it
 * ends (PR_SET_PDEATHSIG), answers what is pending, and unmounts.
 */
#ifndef CFS_VIEW_H
#define CFS_VIEW_H

#include <sys/types.h>

/* Starts the mount of addr at dir and returns its pid at once, or -1. */
pid_t view_spawn(const char *addr, int munge, const char *dir);
/* Waits until dir is mounted: 0, or -1 when the child ended or 30 s went by
 * (the child is then stopped). */
int view_wait(pid_t pid, const char *addr, const char *dir);
/* view_spawn() and view_wait(). */
pid_t view_start(const char *addr, int munge, const char *dir);
/* Keeps a view mounted: when the child pid has ended (killed: it ends
 * of itself only when told to), or pid is -1 (an earlier try failed),
 * unmounts what is left and starts another. Returns the pid of the view
 * that runs, or -1 when starting one failed (try again later). */
pid_t view_keep(pid_t pid, const char *addr, int munge, const char *dir);
/* Unmounts the view: what waits for the server fails at once. pid <= 0 does
 * nothing. */
void view_stop(pid_t pid);

#endif
