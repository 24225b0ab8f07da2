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

/* Starts the mount of addr at dir and returns its pid at once, or -1.
 * *ready is a pipe's end for view_wait(): the child writes a line to it
 * once dir is mounted, and it closes when the child ends. */
pid_t view_spawn(const char *addr, int munge, const char *dir, int *ready);
/* Waits until the child's dir is mounted: 0; or -1 when the child ended,
 * 30 s went by, or stop turned readable (a signalfd of the stop signals, an
 * eventfd; -1: none), which it leaves so; the child is then killed and
 * reaped. Closes ready. Nothing is read through the view: a server that
 * hangs cannot hold the caller. */
int view_wait(pid_t pid, int ready, int stop, const char *addr);
/* view_spawn() and view_wait(). */
pid_t view_start(const char *addr, int munge, const char *dir, int stop);
/* Keeps a view mounted: when the child pid has ended (killed: it ends
 * of itself only when told to), or pid is -1 (an earlier try failed),
 * unmounts what is left and starts another. Returns the pid of the view
 * that runs, or -1 when starting one failed (try again later). */
pid_t view_keep(pid_t pid, const char *addr, int munge, const char *dir, int stop);
/* Unmounts the view: what waits for the server fails at once. pid <= 0 does
 * nothing. */
void view_stop(pid_t pid);

#endif
