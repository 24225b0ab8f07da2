/*
 * export.h: the mount served over 9P2000.L by diod, a child process the
 * server supervises.
 *
 * export_start() runs `diod -f ... -l ADDR:PORT -e MOUNT` and returns once
 * diod accepts connections; a thread restarts diod with back-off whenever
 * it dies. export_stop() ends diod and the thread. Remote operations go
 * through diod into the mount, so they pass the kernel's VFS and raise
 * inotify events like local ones.
 */
#ifndef CFS_EXPORT_H
#define CFS_EXPORT_H

#include "util.h"

struct export;

/*
 * Exports mountpoint (already mounted) on listen, "ADDR:PORT"; auth is
 * "none" (any client attaches as any uid) or "munge" (clients prove their
 * uid with a credential from munged). Returns NULL with e set when diod is
 * missing, the address is malformed or in use, or diod does not start
 * accepting connections within a few seconds. The caller stops the export
 * with export_stop() before unmounting: diod holds files open in the mount.
 * diod runs in workdir (the server's state directory): diod 1.0.24 can
 * crash in its own shutdown, and its core file lands there, not in
 * whatever directory the server was started from.
 */
struct export *export_start(const char *mountpoint, const char *listen, const char *auth,
			    const char *workdir, struct err *e);

/*
 * Stops diod (SIGTERM, then SIGKILL after a bound) and frees x; NULL does
 * nothing. A diod held inside a request to the mount cannot die until the
 * request ends: after a further bound it is left to go with the unmount
 * that follows, and its supervisor thread frees x then.
 */
void export_stop(struct export *x);

/* diod's path: PATH first, then the sbin directories a user's PATH may lack.
 * NULL when there is none; caller frees. */
char *export_find_diod(void);

#endif
