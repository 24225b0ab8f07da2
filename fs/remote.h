/*
 * remote.h: the cluster mounted from a server over 9P (`clusterfs mount`).
 *
 * A FUSE filesystem whose every operation is a 9P request to the server's
 * export, so the mount behaves as the server's own: the same files, the
 * same errors (a rejected write fails close() with the server's errno).
 * When the connection breaks, operations fail with ENOTCONN until the
 * client has reconnected; files opened for reading are opened again on the
 * new connection, files opened for writing fail with EIO.
 */
#ifndef CFS_REMOTE_H
#define CFS_REMOTE_H

#include "p9.h"

struct remote;

/* Connects to the server and mounts its export at mountpoint. */
struct remote *remote_mount(const struct p9_config *cfg, const char *mountpoint, struct err *e);
/* Serves the mount until remote_exit() or an unmount. */
int remote_loop(struct remote *r);
/*
 * Fails every request waiting for the server, and every later one, at
 * once: call it before stopping the threads that use the mount, so that
 * none of them waits for ever (a read of watch may), while the mount is
 * still served to answer them.
 */
void remote_disconnect(struct remote *r);
/*
 * Disconnects, ends the mount's connection (requests still pending on it
 * fail) and so makes remote_loop() return: from any thread, not from a
 * signal handler.
 */
void remote_exit(struct remote *r);
/* Unmounts and disconnects. */
void remote_free(struct remote *r);

#endif
