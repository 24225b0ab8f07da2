/*
 * fs.h: the cluster as a FUSE filesystem.
 *
 * fs_new() mounts the tree over a store at a mountpoint (clearing a stale
 * mount a crashed server left behind, refusing one a live server holds);
 * fs_loop() serves requests on several threads until fs_exit() or an
 * unmount; fs_free() unmounts.
 */
#ifndef CFS_FS_H
#define CFS_FS_H

#include "store.h"

struct fs;

/* The most bytes a container's log keeps unless the server says otherwise. */
#define FS_LOG_LIMIT_DEFAULT (1 << 20)

/*
 * Sets how many bytes each container's log keeps (> 0) in the filesystems
 * made after the call. A process-wide setting: the server reads its
 * options before it has a filesystem to give them to.
 */
void fs_set_log_limit(size_t bytes);

/*
 * Makes mountpoint ready for a mount: creates it when missing, clears a
 * mount a crashed process left behind, refuses one a live process holds.
 */
int fs_check_mountpoint(const char *mountpoint, struct err *e);

/* Returns NULL with e on failure. The store stays the caller's. */
struct fs *fs_new(struct store *s, const char *mountpoint, struct err *e);
int fs_loop(struct fs *fs);
/*
 * Answers the reads parked on watch files (with EINTR), which nothing else
 * would answer once fs_loop() has returned: for a stopping server, so that
 * diod, blocked in such a read for a remote client, can exit.
 */
void fs_end_waits(struct fs *fs);
/*
 * Asks fs_loop to return, from any thread. fs_loop handles no signals
 * itself but SIGUSR1, which fs_exit uses to wake it: the caller decides
 * what a stop signal does.
 */
void fs_exit(struct fs *fs);
void fs_free(struct fs *fs);

#endif
