/*
 * fs-internal.h: what the parts of the FUSE server share.
 *
 * The tree is virtual: an inode is a path (its key, relative to the
 * mount) and a type that says what the path means. inode.c resolves names
 * to inodes and inodes to attributes; fs.c holds the FUSE handlers;
 * write.c turns writes into store operations and rejections into events;
 * scratch.c keeps editors' scratch files in memory; logs.c keeps the
 * containers' logs in memory; watch.c serves /cluster/watch; toucher.c
 * makes the kernel see the changes the daemon makes for itself, so that
 * inotify watchers see every change.
 */
#ifndef CFS_FS_INTERNAL_H
#define CFS_FS_INTERNAL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <sys/stat.h>

#include "fs.h"
#include "store.h"

enum ntype {
	N_ROOT,
	N_README,   /* /README */
	N_EVENTS,   /* /events, namespaces/NS/events */
	N_WATCH,    /* /watch */
	N_APPLY,    /* /apply, namespaces/NS/apply */
	N_NSROOT,   /* namespaces/ */
	N_NSDIR,    /* namespaces/NS/ */
	N_KINDDIR,  /* nodes/, namespaces/NS/pods/ */
	N_OBJ,	    /* .../NAME.yaml */
	N_OBJDIR,   /* .../NAME/ */
	N_REPLICAS, /* .../NAME/replicas */
	N_REVDIR,   /* deployments/NAME/revisions/ */
	N_REVISION, /* deployments/NAME/revisions/N */
	N_ROLLBACK, /* deployments/NAME/rollback */
	N_LOGDIR,   /* pods/NAME/logs/ */
	N_LOG,	    /* pods/NAME/logs/CONTAINER */
	N_SCRATCH,  /* an editor's scratch file */
};

struct inode {
	fuse_ino_t ino;
	uint64_t nlookup; /* protected by fs->ilock */
	enum ntype type;
	const struct kind *kind; /* N_KINDDIR, N_OBJ, N_OBJDIR and what is under it */
	char *ns;		 /* "" outside a namespace */
	char *name;		 /* object or namespace name, else NULL */
	char *key;		 /* path relative to the mount, "" for the root */
};

/* A scratch file: bytes held in memory under fs->slock. */
struct scratch {
	struct strbuf data;
	mode_t mode;
	int64_t mtime;
	int links; /* 0 once unlinked; freed when no handle holds it */
	int opens;
};

/* The most a scratch file may hold. */
#define SCRATCH_MAX_SIZE (64 * OBJ_MAX_SIZE)

enum htype {
	H_READ,
	H_OBJ,
	H_APPLY,
	H_EVENTS,
	H_REPLICAS,
	H_ROLLBACK,
	H_SCRATCH,
	H_WATCH,
	H_TOUCH,
	H_LOG,
};

/* An open file. */
struct handle {
	enum htype type;
	struct inode *inode;
	struct strbuf buf; /* H_READ: the snapshot; writers: what was written */
	int dirty;	   /* written since the last apply */
	int emptied;	   /* opened with O_TRUNC or created: nothing to apply yet */
	int applied;	   /* applied at least once */
	int too_big;	   /* a write passed OBJ_MAX_SIZE */
	int created;	   /* H_OBJ: created by this open; pending until applied */
	struct scratch *scratch;
	struct watcher *watcher;
	char *uid; /* H_LOG: the uid of the pod whose log was opened */
	pthread_mutex_t lock;
	struct handle *prev, *next; /* in fs->handles; protected by fs->hlock */
};

struct fs {
	struct store *store;
	struct fuse_session *se;
	char *mountpoint;
	uid_t uid;
	gid_t gid;
	int64_t started;

	pthread_mutex_t ilock;
	struct inode **inodes;	/* by ino; protected by ilock */
	size_t ninodes, icap;	/* the last ino handed out; the array's size */
	struct strmap *by_key;	/* key -> inode; protected by ilock */
	struct strmap *pending; /* key -> (void *)count of creates not yet applied */

	pthread_mutex_t hlock;
	struct handle *handles; /* every open file; protected by hlock */

	pthread_mutex_t slock;
	struct strmap *scratch; /* key -> struct scratch; protected by slock */

	/* Taken before the store's lock, never while holding it (see logs.c). */
	pthread_mutex_t llock;
	struct strmap *logs; /* pod's path -> struct podlogs; protected by llock */
	size_t log_limit;    /* the most bytes one container's log keeps */

	struct toucher *toucher;
	struct watch_hub *watch;
	pthread_t loop_thread; /* the thread in fs_loop(), for fs_exit() */
};

static inline struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* file.c: the handlers of open files, for the operations table */
void file_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void file_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi);
void file_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void file_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi);
void file_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void file_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void file_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Frees a handle and lets go of what it holds (a parked watch read is
 * answered EINTR). */
void handle_free(struct fs *fs, struct handle *h);

/* inode.c */
void inodes_init(struct fs *fs);
void inodes_free(struct fs *fs);
/* The inode for ino, or NULL. Not referenced: valid until its forget. */
struct inode *inode_get(struct fs *fs, fuse_ino_t ino);
/*
 * Resolves name in dir. Returns 0 and the inode (its lookup count raised)
 * or -ENOENT. Called with the request, to let the toucher see names as
 * it needs (see toucher.c).
 */
int inode_lookup(struct fs *fs, struct inode *dir, const char *name, struct inode **out,
		 int as_toucher);
/* The inode for a key of a given shape, its lookup count raised. */
struct inode *inode_make(struct fs *fs, enum ntype t, const struct kind *k, const char *ns,
			 const char *name, const char *key);
void inode_forget(struct fs *fs, fuse_ino_t ino, uint64_t n);
/*
 * Makes the next lookup of key get a new inode; the old one lives on under
 * its number until the kernel forgets it. After an rmdir the kernel holds
 * the removed directory's inode dead (no lookups in it) while anything
 * still refers to it, so a directory looked up again under that name,
 * made anew or always there, must not come back as that inode.
 */
void inode_unhash(struct fs *fs, const char *key);
/* Moves the inode at key from to key to, as the kernel moves its dentry. */
void inode_rename(struct fs *fs, const char *from, const char *to);
/* The attributes every inode shares (owner, inode number). */
void inode_stat_base(struct fs *fs, struct inode *in, struct stat *st);
int inode_stat(struct fs *fs, struct inode *in, struct stat *st);
/* The key (path) of name in dir. Caller frees. */
char *child_key(const struct inode *dir, const char *name);
/* The names in a directory, in order, with their d_type; caller frees. */
struct dirent_list {
	char **names;
	unsigned char *types;
	size_t n;
};
int inode_list(struct fs *fs, struct inode *dir, struct dirent_list *out);
void dirent_list_free(struct dirent_list *l);
/* Whether name may be an object file's name in a kind directory. */
int is_object_name(const char *name);
/* Whether the kind's objects have a NAME/ directory. */
int kind_has_dir(const struct kind *k);
/* Counts an open create of key not yet applied (d = 1) or its end (d = -1). */
void pending_add(struct fs *fs, const char *key, long d);
/* The kind whose objects dir holds (a kind directory, or namespaces/), or NULL. */
const struct kind *dir_kind(const struct inode *dir);
/* How events name the file name in dir: relative to its namespace. Caller frees. */
char *dir_origin(const struct inode *dir, const char *name);
/* How events name an object's file. Caller frees. */
char *inode_origin(const struct inode *in);
/* Rejects, with an event, a NAME.yaml that cannot name an object in dir. */
int dir_check_name(struct fs *fs, const struct inode *dir, const char *name);
const char *readme_text(void);

/* scratch.c */
struct scratch *scratch_get(struct fs *fs, const char *key);
struct scratch *scratch_create(struct fs *fs, const char *key, mode_t mode);
int scratch_unlink(struct fs *fs, const char *key);
/* Moves a scratch file; replaces what was at to. */
int scratch_rename(struct fs *fs, const char *from, const char *to);
void scratch_release(struct fs *fs, struct scratch *sc);
/* Size, mode and mtime of sc, or of the scratch file at key when sc is
 * NULL (an open file's scratch outlives its name). 0 or -ENOENT. */
int scratch_stat(struct fs *fs, struct scratch *sc, const char *key, struct stat *st);
int scratch_setattr(struct fs *fs, struct scratch *sc, const char *key, const struct stat *attr,
		    int to_set);
/* Scratch names in the directory with key dir ("" for the root). */
void scratch_list(struct fs *fs, const char *dir, char ***names, size_t *n);

/*
 * logs.c: pods/NAME/logs/CONTAINER, held in memory, keyed by the pod's uid.
 * pod is any inode under pods/NAME/ (its ns and name are the pod's).
 */
void logs_init(struct fs *fs);
void logs_free(struct fs *fs);
/*
 * Appends n bytes of data to a log held in sb that keeps at most limit (>
 * 0) bytes. When the whole would pass limit, the oldest bytes go: at least
 * half of what sb held, so that moving what is kept costs O(1) a byte over
 * many appends, and up to the end of a line where a line ends among them.
 */
void log_append(struct strbuf *sb, const char *data, size_t n, size_t limit);
/* The container a log's inode (N_LOG) is of: the last part of its key. */
const char *log_container(const struct inode *in);
/* 0 when the pod has a log of container, else -ENOENT. */
int logs_exists(struct fs *fs, const struct inode *pod, const char *container);
/*
 * Opens the log of container, creating it when create is set and the pod
 * has such a container (else -ENOENT, with an events line). O_TRUNC in
 * flags clears it. *uid gets the pod's uid, for the handle; caller frees.
 */
int logs_open(struct fs *fs, const struct inode *pod, const char *container, int flags, int create,
	      char **uid);
/* Appends to a log of the pod with uid; -ENOENT once that pod is gone. */
int logs_append(struct fs *fs, const struct inode *pod, const char *container, const char *uid,
		const char *data, size_t n);
/* Copies at most size bytes at off of a log of the pod with uid into out. */
int logs_read(struct fs *fs, const struct inode *pod, const char *container, const char *uid,
	      size_t size, off_t off, struct strbuf *out);
/* Size and mtime (of the last append) of a log of the pod as it is now. */
int logs_stat(struct fs *fs, const struct inode *pod, const char *container, struct stat *st);
/*
 * Truncates a log: to 0 clears it, to its own size changes nothing, any
 * other size is EINVAL. uid is an open file's, or NULL for the pod's
 * current one.
 */
int logs_truncate(struct fs *fs, const struct inode *pod, const char *container, const char *uid,
		  off_t size);
/* The containers of the pod that have a log, sorted; caller frees. */
void logs_list(struct fs *fs, const struct inode *pod, char ***names, size_t *n);

/* write.c */
/*
 * Applies YAML text as the object at in (N_OBJ), logging a rejection.
 * type is OP_PUT (create or replace) or OP_UPDATE (for a file opened on an
 * existing object: if the object was deleted since, ENOENT, so that a
 * writer's stale copy does not bring it back).
 */
int fs_put_object(struct fs *fs, struct inode *in, const char *buf, size_t len, const char *origin,
		  enum op_type type);
int fs_delete_object(struct fs *fs, const struct kind *k, const char *ns, const char *name,
		     const char *origin, int announce);
/* Applies every document in buf in one transaction; ns is the default. */
int fs_apply(struct fs *fs, const char *ns, const char *buf, size_t len);
int fs_set_replicas(struct fs *fs, struct inode *in, const char *buf, size_t len);
/* Appends lines written to an events file. */
int fs_write_events(struct fs *fs, const char *ns, const char *buf, size_t len);
/* Logs a rejected operation on origin (relative to ns) and returns r. */
int fs_reject(struct fs *fs, const char *ns, const char *origin, int r, struct err *e);
char *fs_replicas_text(struct fs *fs, struct inode *in);

/* rollout.c: a Deployment's revisions/ and rollback */
/* The revision numbers of the deployment dir names, as file names. */
int rollout_list(struct fs *fs, struct inode *dir, char ***names, size_t *n);
/* The pod template of the revision in (N_REVISION), or NULL. Caller frees. */
char *rollout_text(struct fs *fs, struct inode *in, size_t *len);
/* Rolls the deployment back to the revision written ("N" or "previous"). */
int rollout_rollback(struct fs *fs, struct inode *in, const char *buf, size_t len);

/* toucher.c */
struct toucher *toucher_new(struct fs *fs);
/* Drops pending touches and takes no more; the thread may still be busy. */
void toucher_stop(struct toucher *t);
/* Stops and waits for the thread: the mount must be gone or being served. */
void toucher_free(struct toucher *t);
/* Queues a touch of path (relative to the mount) for change ch. */
void toucher_announce(struct toucher *t, enum change ch, const char *path);
/* Whether the request comes from the toucher thread. */
int toucher_is_me(struct toucher *t, fuse_req_t req);
/* For the toucher's lookups: 1 hide, 2 show, 0 as usual. */
int toucher_view(struct toucher *t, const char *key);

/* watch.c */
struct watch_hub *watch_hub_new(struct store *s);
void watch_hub_free(struct watch_hub *h);
/* Answers every parked read with EINTR. */
void watch_hub_end_reads(struct watch_hub *h);
struct watcher *watcher_new(struct watch_hub *h);
void watcher_free(struct watch_hub *h, struct watcher *w);
/* Takes a filter line ("namespaces/default/pods since 5"). */
int watcher_filter(struct watch_hub *h, struct watcher *w, const char *buf, size_t len,
		   struct err *e);
/* Replies to a read now, or later when a change arrives. */
void watcher_read(struct watch_hub *h, struct watcher *w, fuse_req_t req, size_t size);

#endif
