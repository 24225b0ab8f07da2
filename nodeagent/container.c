/*
 * container.c: the overlay, conmon, crun and the files conmon leaves.
 */
#define _GNU_SOURCE
#include "container.h"
#include "object.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

void ctr_id(const char *uid, const char *name, char out[17])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const char *s = uid; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	h = (h ^ '/') * 0x100000001b3ULL;
	for (const char *s = name; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int rm_rf(const char *path)
{
	/* Depth first, never across a mount point nor through a symlink. */
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int ctr_mount(const char *dir, const char *lower, struct err *e)
{
	cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
	cleanup_free char *upper = xasprintf("%s/upper", dir);
	cleanup_free char *work = xasprintf("%s/work", dir);
	cleanup_free char *opts =
		xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);

	if (mkdir_p(rootfs, 0755) < 0 || mkdir_p(upper, 0755) < 0 || mkdir_p(work, 0700) < 0)
		return err_set(e, errno, "%s: %s", dir, strerror(errno));
	if (mount("overlay", rootfs, "overlay", 0, opts) < 0)
		return err_set(e, errno, "overlay on %s: %s", rootfs, strerror(errno));
	return 0;
}

int ctr_unmount(const char *dir)
{
	cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
	cleanup_free char *upper = xasprintf("%s/upper", dir);
	cleanup_free char *work = xasprintf("%s/work", dir);

	while (umount2(rootfs, MNT_DETACH) == 0)
		;
	rm_rf(upper);
	rm_rf(work);
	return 0;
}

/* Reads conmon's first message on the sync pipe: {"data": PID} or a
 * negative data with a "message". */
static int sync_read(int fd, const char *id, struct err *e)
{
	char buf[4096];
	size_t len = 0;
	struct pollfd p = {fd, POLLIN, 0};

	while (len < sizeof(buf) - 1 && !memchr(buf, '}', len)) {
		if (poll(&p, 1, 60000) <= 0)
			return err_set(e, ETIMEDOUT, "container %s: conmon did not answer", id);
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	struct ynode *msg = NULL;
	struct err pe = {0};
	int pid = -1;
	if (len && obj_parse_one(buf, len, &msg, &pe) == 0) {
		const struct ynode *d = y_get(msg, "data");
		pid = d && d->type == Y_INT ? (int)d->i : -1;
		if (pid <= 0)
			err_set(e, EIO, "container %s: %s", id,
				y_path_str(msg, "message") ? y_path_str(msg, "message")
							   : "create failed");
	} else
		err_set(e, EIO, "container %s: conmon: %s", id, len ? buf : "no answer");
	y_free(msg);
	return pid > 0 ? 0 : -EIO;
}

int ctr_create(const struct ctr_env *env, const char *dir, const char *id, pid_t *conmon,
	       struct err *e)
{
	cleanup_free char *pidfile = xasprintf("%s/pid", dir);
	cleanup_free char *cpidfile = xasprintf("%s/conmon.pid", dir);
	cleanup_free char *log = xasprintf("k8s-file:%s/log", dir);
	cleanup_free char *exits = xasprintf("%s/exit", dir);
	cleanup_free char *root = xasprintf("--root=%s", env->crun_root);
	const char *argv[] = {"conmon",
			      "--api-version",
			      "1",
			      "-c",
			      id,
			      "-u",
			      id,
			      "-r",
			      env->crun,
			      "-b",
			      dir,
			      "-p",
			      pidfile,
			      "--conmon-pidfile",
			      cpidfile,
			      "-l",
			      log,
			      "-n",
			      id,
			      "--exit-dir",
			      exits,
			      "--socket-dir-path",
			      env->sock_dir,
			      "--runtime-arg",
			      root,
			      "--log-size-max",
			      "8388608",
			      "--syslog",
			      NULL};
	const char *senv[] = {"_OCI_SYNCPIPE=3", NULL};
	int fds[2], r;

	if (mkdir_p(exits, 0700) < 0 || mkdir_p(env->sock_dir, 0700) < 0)
		return err_set(e, errno, "%s: %s", dir, strerror(errno));
	if (pipe2(fds, O_CLOEXEC) < 0)
		return err_set(e, errno, "pipe: %s", strerror(errno));
	/* conmon leaves files (an "oom" marker) in its working directory. */
	struct proc_opts o = {.flags = PROC_PRIVATE_MOUNTS | PROC_DETACH,
			      .cwd = dir,
			      .env = senv,
			      .keep_fd = fds[1],
			      .timeout_ms = 60000};
	r = proc_run(argv, &o, NULL, e);
	close(fds[1]);
	if (r == 0)
		r = sync_read(fds[0], id, e);
	else if (r > 0)
		r = -EIO;
	close(fds[0]);
	if (r == 0 && !(*conmon = ctr_monitor(dir)))
		r = err_set(e, EIO, "container %s: conmon is not running", id);
	return r;
}

static int crun(const struct ctr_env *env, const char *const *args, int timeout_ms, struct err *e)
{
	cleanup_free char *root = xasprintf("--root=%s", env->crun_root);
	const char *argv[16] = {"crun", root};
	size_t n = 2;
	struct proc_opts o = {
		.flags = PROC_PRIVATE_MOUNTS, .keep_fd = -1, .timeout_ms = timeout_ms};

	while (*args && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	int r = proc_run(argv, &o, NULL, e);
	return r == 0 ? 0 : r > 0 ? -EIO : r;
}

int ctr_start(const struct ctr_env *env, const char *id, struct err *e)
{
	const char *args[] = {"start", id, NULL};
	return crun(env, args, 30000, e);
}

int ctr_kill(const struct ctr_env *env, const char *id, int sig)
{
	char s[16];
	struct err e = {0};
	snprintf(s, sizeof(s), "%d", sig);
	const char *args[] = {"kill", id, s, NULL};
	return crun(env, args, 10000, &e);
}

int ctr_delete(const struct ctr_env *env, const char *id)
{
	struct err e = {0};
	const char *args[] = {"delete", "--force", id, NULL};
	return crun(env, args, 30000, &e);
}

int ctr_exec(const struct ctr_env *env, const char *id, const char *const *cmd, int timeout_ms,
	     struct err *e)
{
	cleanup_free char *root = xasprintf("--root=%s", env->crun_root);
	const char *argv[64] = {"crun", root, "exec", id};
	size_t n = 4;
	struct proc_opts o = {
		.flags = PROC_PRIVATE_MOUNTS, .keep_fd = -1, .timeout_ms = timeout_ms};

	while (*cmd && n < 63)
		argv[n++] = *cmd++;
	argv[n] = NULL;
	return proc_run(argv, &o, NULL, e);
}

int ctr_exit_code(const char *dir, const char *id)
{
	cleanup_free char *path = xasprintf("%s/exit/%s", dir, id);
	cleanup_free char *text = file_get(path, 64, NULL);
	char *end;

	if (!text || !*text)
		return -ENOENT;
	long code = strtol(text, &end, 10);
	return end == text || code < 0 ? -ENOENT : (int)(code > 255 ? 255 : code);
}

pid_t ctr_monitor(const char *dir)
{
	cleanup_free char *path = xasprintf("%s/conmon.pid", dir);
	cleanup_free char *text = file_get(path, 64, NULL);
	long pid = text ? strtol(text, NULL, 10) : 0;

	return pid > 0 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

/* cgroup v1's memory.oom_control, or v2's memory.events: "oom_kill N". */
static long oom_kills(const char *path)
{
	cleanup_free char *text = file_get(path, 4096, NULL);
	const char *p = text ? strstr(text, "oom_kill ") : NULL;
	return p ? strtol(p + 9, NULL, 10) : 0;
}

bool ctr_oom_killed(const char *id)
{
	cleanup_free char *v1 =
		xasprintf("/sys/fs/cgroup/memory/clusterfs/%s/memory.oom_control", id);
	cleanup_free char *v2 = xasprintf("/sys/fs/cgroup/clusterfs/%s/memory.events", id);
	return oom_kills(v1) > 0 || oom_kills(v2) > 0;
}
