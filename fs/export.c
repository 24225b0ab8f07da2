/*
 * export.c: the mount served over 9P2000.L by diod, a supervised child.
 *
 * export_start() checks that the address is free, starts a supervisor
 * thread and knocks on the port until diod accepts a connection. The
 * thread forks diod, waits for it to die and, unless the export is
 * stopping, forks it again after a back-off that doubles from 100 ms to
 * 5 s and starts over once diod has stayed up for a while. Only the
 * supervisor forks: PR_SET_PDEATHSIG fires when the thread that forked
 * ends, and this thread outlives every diod it starts.
 *
 * The command line, and why each flag (docs/remote.md has the
 * experiments):
 *
 *   diod -f               foreground, logs to stderr: the server's log
 *        -c /dev/null     no /etc/diod.conf: its auth_required = 0 would
 *                         let anyone in despite --auth munge, its
 *                         allsquash would make the tree read-only
 *        -N               any uid attaches, as itself with gid = uid: the
 *                         tree's own modes decide, not this host's passwd
 *        -l ADDR:PORT -e MOUNT
 *        -e ctl           diod's control tree: its file "exports" names the
 *                         aname to attach, for clients that do not know it
 *        [-n]             --auth none: no munge credential asked
 *
 * Not -S: squashing makes diod drop root for nobody, who may not write
 * the tree (and may not enter a FUSE mount without allow_other at all).
 * Without it diod stays root and takes each client's uid per request
 * with setfsuid.
 */
#define _GNU_SOURCE
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_MS       5000 /* diod accepts connections within this, or start fails */
#define STOP_MS	       2000 /* after SIGTERM, diod gets SIGKILL */
#define KILL_MS	       1000 /* after SIGKILL, diod is left to end with the mount */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS      10000 /* a diod up this long starts the back-off over */
#define MUNGE_SOCKET   "/run/munge/munge.socket.2"

enum state { STARTING, RUNNING, FAILED, STOPPING };

struct export
{
	char *diod, *listen, *mount, *workdir;
	const char *argv[16];
	struct addrinfo *ai; /* where diod listens, to knock on */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* pid, state changed */
	enum state state;    /* protected by lock */
	pid_t pid;	     /* protected by lock: the diod running, 0 between runs */
	int status;	     /* protected by lock: how diod ended, or -errno of fork, when FAILED */
	bool orphaned;	     /* protected by lock: export_stop() gave up; supervise() frees x */
};

extern char **environ;

/* Waits on x->cond until the monotonic deadline; expects x->lock held. */
static int wait_until(struct export *x, int64_t deadline)
{
	struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = deadline % 1000 * 1000000};
	return pthread_cond_timedwait(&x->cond, &x->lock, &ts);
}

char *export_find_diod(void)
{
	const char *path = getenv("PATH");
	cleanup_free char *dirs = xasprintf("%s:/usr/sbin:/usr/local/sbin", path ? path : "");
	char *save = NULL;

	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/diod", d);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

/* Resolves "ADDR:PORT" ("[V6]:PORT" too) into x->ai. */
static int parse_listen(struct export *x, const char *listen, struct err *e)
{
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	int r;

	if (!colon || colon == listen || !colon[1] || *end || port < 1 || port > 65535)
		return err_set(e, EINVAL, "--listen %s: expected ADDR:PORT", listen);
	cleanup_free char *host = xstrndup(listen, (size_t)(colon - listen));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if ((r = getaddrinfo(host, colon + 1, &hints, &x->ai)) != 0)
		return err_set(e, EINVAL, "--listen %s: %s", listen, gai_strerror(r));
	return 0;
}

/* Fails when something listens on the address already: diod would exit
 * at once, and a knock could reach the other listener instead. */
static int check_free(struct export *x, struct err *e)
{
	int one = 1, r = 0;
	cleanup_close int fd = socket(x->ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return err_set(e, errno, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, x->ai->ai_addr, x->ai->ai_addrlen) < 0)
		r = err_set(e, errno, "cannot listen on %s: %s%s", x->listen, strerror(errno),
			    errno == EADDRINUSE ? " (another process has the port)" : "");
	return r;
}

static bool knock(struct export *x)
{
	cleanup_close int fd = socket(x->ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd >= 0 && connect(fd, x->ai->ai_addr, x->ai->ai_addrlen) == 0;
}

/* In the child: only system calls from here to exec. */
static void child(struct export *x, pid_t parent)
{
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigset_t none;
	int fd;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(126);
	/* Its own session: a ^C at the server's terminal is the server's to
	 * handle, and the server stops diod itself. */
	setsid();
	if ((fd = open("/dev/null", O_RDONLY)) < 0 || dup2(fd, 0) < 0 || chdir(x->workdir) < 0)
		_exit(126);
	syscall(SYS_close_range, 3, ~0U, 0);
	/* A client gone mid-reply must not take the others' connections along. */
	sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(x->diod, (char *const *)x->argv, environ);
	_exit(127);
}

/* Forks diod into x->pid; expects x->lock held (the child never takes it). */
static int spawn(struct export *x)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0)
		child(x, parent);
	x->pid = pid;
	return 0;
}

static void describe(int status, char buf[64])
{
	if (WIFSIGNALED(status))
		snprintf(buf, 64, "was killed by signal %d", WTERMSIG(status));
	else if (WEXITSTATUS(status) == 127)
		snprintf(buf, 64, "could not be run (exit status 127)");
	else
		snprintf(buf, 64, "exited with status %d", WEXITSTATUS(status));
}

/* Waits for diod to end and reaps it; expects x->lock held. Reaping under
 * the lock means x->pid always names our child, so export_stop() never
 * signals a pid the system has handed to someone else. */
static int reap(struct export *x)
{
	pid_t pid = x->pid;
	siginfo_t si;
	int status = 0;

	pthread_mutex_unlock(&x->lock);
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&x->lock);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	x->pid = 0;
	pthread_cond_broadcast(&x->cond);
	return status;
}

static void export_free(struct export *x)
{
	if (x->ai)
		freeaddrinfo(x->ai);
	pthread_cond_destroy(&x->cond);
	pthread_mutex_destroy(&x->lock);
	free(x->diod);
	free(x->listen);
	free(x->workdir);
	free(x->mount);
	free(x);
}

static void *supervise(void *arg)
{
	struct export *x = arg;
	int delay = BACKOFF_MIN_MS;
	char how[64];

	pthread_mutex_lock(&x->lock);
	while (x->state != STOPPING) {
		int64_t started = mono_ms();
		int r = spawn(x);
		pid_t pid = x->pid;
		int status = r < 0 ? r : reap(x);
		if (x->state == STOPPING)
			break;
		if (x->state == STARTING) {
			x->state = FAILED;
			x->status = status;
			pthread_cond_broadcast(&x->cond);
			break;
		}
		if (mono_ms() - started >= STABLE_MS)
			delay = BACKOFF_MIN_MS;
		if (r < 0)
			snprintf(how, sizeof(how), "could not be forked: %s", strerror(-r));
		else
			describe(status, how);
		fprintf(stderr, "clusterfs: diod (pid %d) %s; restarting it in %d ms\n", (int)pid,
			how, delay);
		int64_t until = mono_ms() + delay;
		while (x->state != STOPPING && wait_until(x, until) != ETIMEDOUT)
			;
		delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
	}
	bool orphaned = x->orphaned;
	pthread_mutex_unlock(&x->lock);
	if (orphaned)
		export_free(x);
	return NULL;
}

/* Knocks until diod accepts a connection, dies, or time runs out. */
static int wait_accepting(struct export *x, struct err *e)
{
	int64_t deadline = mono_ms() + START_MS;
	char how[64];

	for (;;) {
		bool up = knock(x);
		pthread_mutex_lock(&x->lock);
		int state = x->state, status = x->status;
		if (up && state == STARTING)
			x->state = RUNNING;
		pthread_mutex_unlock(&x->lock);
		if (state == FAILED && status < 0)
			return err_set(e, -status, "cannot fork diod: %s", strerror(-status));
		if (state == FAILED) {
			describe(status, how);
			return err_set(e, EIO, "diod %s before accepting connections%s", how,
				       WIFEXITED(status) && WEXITSTATUS(status) != 127
					       ? " (its messages are above)"
					       : "");
		}
		if (up)
			return 0;
		if (mono_ms() > deadline)
			return err_set(e, ETIMEDOUT,
				       "diod did not accept connections on %s in %d s", x->listen,
				       START_MS / 1000);
		nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
	}
}

static struct export *export_new(const char *mountpoint, const char *listen, bool munge,
				 const char *workdir)
{
	struct export *x = xcalloc(1, sizeof(*x));
	pthread_condattr_t ca;
	int n = 0;

	pthread_mutex_init(&x->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&x->cond, &ca);
	pthread_condattr_destroy(&ca);
	x->listen = xstrdup(listen);
	x->workdir = xstrdup(workdir);
	/* diod wants the export as an absolute path, and clients name it so. */
	x->mount = realpath(mountpoint, NULL);
	x->diod = export_find_diod();
	x->argv[n++] = "diod";
	x->argv[n++] = "-f";
	x->argv[n++] = "-c";
	x->argv[n++] = "/dev/null";
	x->argv[n++] = "-N";
	x->argv[n++] = "-l";
	x->argv[n++] = x->listen;
	x->argv[n++] = "-e";
	x->argv[n++] = x->mount;
	/* diod's control filesystem: its file "exports" tells a client
	 * (clusterfs mount, the agent) which path to attach. */
	x->argv[n++] = "-e";
	x->argv[n++] = "ctl";
	if (!munge)
		x->argv[n++] = "-n";
	return x;
}

struct export *export_start(const char *mountpoint, const char *listen, const char *auth,
			    const char *workdir, struct err *e)
{
	bool munge = !strcmp(auth, "munge");
	struct export *x;
	int r;

	if (!munge && strcmp(auth, "none")) {
		err_set(e, EINVAL, "--auth %s: expected none or munge", auth);
		return NULL;
	}
	x = export_new(mountpoint, listen, munge, workdir);
	if (!x->mount)
		r = err_set(e, errno, "%s: %s", mountpoint, strerror(errno));
	else if (!x->diod)
		r = err_set(e, ENOENT, "diod not found in PATH or /usr/sbin (install diod)");
	else if ((r = parse_listen(x, listen, e)) == 0)
		r = check_free(x, e);
	if (r < 0) {
		export_free(x);
		return NULL;
	}
	if (munge && access(MUNGE_SOCKET, F_OK) < 0)
		fprintf(stderr, "clusterfs: no munged at %s: clients cannot attach until it runs\n",
			MUNGE_SOCKET);
	x->state = STARTING;
	pthread_create(&x->thread, NULL, supervise, x);
	if (wait_accepting(x, e) < 0) {
		export_stop(x);
		return NULL;
	}
	fprintf(stderr, "clusterfs: exporting %s over 9P2000.L on %s (auth %s)\n", x->mount, listen,
		auth);
	return x;
}

/* Waits until diod is reaped or the deadline passes; expects x->lock held. */
static bool reaped_by(struct export *x, int64_t deadline)
{
	while (x->pid > 0 && wait_until(x, deadline) != ETIMEDOUT)
		;
	return x->pid == 0;
}

void export_stop(struct export *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->lock);
	x->state = STOPPING;
	if (x->pid > 0)
		kill(x->pid, SIGTERM);
	pthread_cond_broadcast(&x->cond);
	if (!reaped_by(x, mono_ms() + STOP_MS)) {
		fprintf(stderr, "clusterfs: diod did not stop in %d ms; killing it\n", STOP_MS);
		kill(x->pid, SIGKILL);
	}
	/* A diod thread inside a request to the mount (a 9P client blocked
	 * reading watch) dies only when the request ends, and the server no
	 * longer answers: the unmount that follows ends it. The supervisor
	 * reaps that diod and frees x. */
	if (!reaped_by(x, mono_ms() + KILL_MS)) {
		pthread_t t = x->thread;
		fputs("clusterfs: diod is stuck in a request to the mount; the unmount ends it\n",
		      stderr);
		x->orphaned = true;
		pthread_mutex_unlock(&x->lock);
		pthread_detach(t);
		return;
	}
	pthread_mutex_unlock(&x->lock);
	pthread_join(x->thread, NULL);
	export_free(x);
}
