/*
 * p9.h: a 9P2000.L client over TCP.
 *
 * One connection carries many requests at once: each waits on its own tag
 * while a reader thread hands replies out. When the connection breaks,
 * every waiting request fails with -ENOTCONN and the reader reconnects with
 * back-off (100 ms doubling to 5 s), attaching anew; each successful
 * attach is a new session with a new generation number.
 *
 * A fid belongs to the session it was made in. Operations on a fid of an
 * earlier session fail with -ESTALE without reaching the server; the caller
 * walks again from the root (p9_root()) to get a fresh one.
 *
 * Every operation returns 0 (or a count) or -errno: the server's errno
 * from Rlerror, -ENOTCONN while there is no connection, -EINTR when the
 * interrupted() callback said so while waiting (the request is flushed,
 * or left to end on the server when no tag is free for the Tflush).
 */
#ifndef CFS_P9_H
#define CFS_P9_H

#include <stdint.h>
#include <sys/types.h>

#include "p9proto.h"
#include "util.h"

struct p9;

struct p9fid {
	uint32_t num;
	uint64_t gen;
};

struct p9_config {
	const char *addr;  /* HOST:PORT */
	const char *aname; /* the export to attach; NULL: the server's first export */
	const char *uname; /* NULL: the name of the calling user */
	uint32_t msize;	   /* asked for; 0: 256 KiB + header */
	/* munge credentials for Tauth; munge_socket NULL for munged's default */
	int munge;
	const char *munge_socket;
	/* Polled while a request waits; nonzero flushes it and fails with -EINTR. */
	int (*interrupted)(void);
};

/* Connects and attaches once (failing with e if it cannot), then keeps the
 * connection up until p9_close(). */
struct p9 *p9_open(const struct p9_config *cfg, struct err *e);
void p9_close(struct p9 *p);
/* Fails every request in flight and every later one with -ENOTCONN, for
 * good: for a client that is shutting down. Any thread. */
void p9_shutdown(struct p9 *p);

/* The attach fid of the current session; gen 0 when not connected. */
struct p9fid p9_root(struct p9 *p);
/* The largest count one read or write carries. */
uint32_t p9_iosize(struct p9 *p);
/* The export attached, for messages. */
const char *p9_aname(struct p9 *p);

/* Walks path ("a/b/c"; "" clones) from a fid to a new fid. */
int p9_walk(struct p9 *p, struct p9fid from, const char *path, struct p9fid *out);
int p9_getattr(struct p9 *p, struct p9fid f, struct p9attr *a);
int p9_setattr(struct p9 *p, struct p9fid f, const struct p9setattr *sa);
int p9_lopen(struct p9 *p, struct p9fid f, uint32_t flags);
/* Creates name in the directory f, which becomes the open new file. */
int p9_lcreate(struct p9 *p, struct p9fid f, const char *name, uint32_t flags, uint32_t mode,
	       uint32_t gid);
int p9_mkdir(struct p9 *p, struct p9fid dir, const char *name, uint32_t mode, uint32_t gid);
/* Reads up to n bytes; returns fewer only at the end or when the file gave fewer. */
ssize_t p9_read(struct p9 *p, struct p9fid f, uint64_t off, void *buf, size_t n);
ssize_t p9_write(struct p9 *p, struct p9fid f, uint64_t off, const void *buf, size_t n);
/* Copies raw Rreaddir entries (see p9_next_dirent) into buf; 0 at the end. */
ssize_t p9_readdir(struct p9 *p, struct p9fid f, uint64_t off, void *buf, uint32_t n);
int p9_rename(struct p9 *p, struct p9fid f, struct p9fid dir, const char *name);
int p9_statfs(struct p9 *p, struct p9fid f, struct p9statfs *s);
int p9_fsync(struct p9 *p, struct p9fid f);
/* Removes the file and releases the fid, whatever the outcome. */
int p9_remove(struct p9 *p, struct p9fid f);
/* Releases the fid without waiting for the server. */
void p9_clunk(struct p9 *p, struct p9fid f);

#endif
