/*
 * proc.c: spawn, optionally unshare the mount namespace and detach the
 * cgroup2 hierarchy, exec; collect stdout and stderr through pipes with a
 * deadline.
 *
 * The child shares the agent's memory until it execs (clone with CLONE_VM
 * and CLONE_VFORK, as posix_spawn does), on a stack of its own: a fork
 * would copy the page tables of the whole agent only for the exec to
 * throw them away, and the agent spawns crun, conmon and the CNI plugins
 * for every pod (measured under a 100-pod start: fork was the agent's
 * largest cost). So the child runs only system calls (no allocation, no
 * lock; what it writes besides its stack is the calling thread's errno,
 * which the parent reads only when the clone failed), and resets every
 * signal handler before it unblocks signals: a handler of the agent's
 * must not run in it. This is safe from any of the agent's threads.
 */
#define _GNU_SOURCE
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define UNIFIED "/sys/fs/cgroup/unified"

static bool hybrid;
static pthread_once_t hybrid_once = PTHREAD_ONCE_INIT;

static void hybrid_check(void)
{
	struct statfs root, uni;

	hybrid = statfs("/sys/fs/cgroup", &root) == 0 && root.f_type == TMPFS_MAGIC &&
		 statfs(UNIFIED, &uni) == 0 && uni.f_type == CGROUP2_SUPER_MAGIC;
}

bool proc_hybrid_cgroups(void)
{
	pthread_once(&hybrid_once, hybrid_check);
	return hybrid;
}

extern char **environ;

/* True when the NAME=VALUE string sets a name that one in env also sets. */
static bool overridden(const char *var, const char *const *env)
{
	size_t len = strcspn(var, "=");
	for (; env && *env; env++)
		if (!strncmp(*env, var, len) && (*env)[len] == '=')
			return true;
	return false;
}

/* The caller's variables, then the agent's that they do not set (a name
 * twice in an environment is read as the first by some programs and the
 * last by others, dash); caller frees the array. */
static char **proc_env(const struct proc_opts *o)
{
	size_t n = 0, m = 0;
	while (environ[n])
		n++;
	while (o->env && o->env[m])
		m++;
	char **env = xcalloc(n + m + 1, sizeof(char *));
	if (m)
		memcpy(env, o->env, m * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		if (!overridden(environ[i], o->env))
			env[m++] = environ[i];
	return env;
}

struct spawn {
	const char *const *argv;
	const struct proc_opts *o;
	char **env;
	int in, out, err;
};

#define CHILD_STACK (256 * 1024) /* execvpe builds PATH candidates on it */

/* In the child, on its own stack, every signal blocked: only system calls
 * from here to exec. Not instrumented by AddressSanitizer, which takes a
 * stack it does not know for a corrupt one. */
__attribute__((no_sanitize_address)) static int child(void *arg)
{
	const struct spawn *sp = arg;
	const struct proc_opts *o = sp->o;
	int in = sp->in, out = sp->out, err = sp->err;

	for (int sig = 1; sig < _NSIG; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
		    sa.sa_handler != SIG_IGN) {
			sa.sa_handler = SIG_DFL;
			sa.sa_flags = 0;
			sigaction(sig, &sa, NULL);
		}
	}
	if (o->flags & PROC_DETACH)
		setsid();
	if ((o->flags & PROC_PRIVATE_MOUNTS) && hybrid &&
	    (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	     umount2(UNIFIED, MNT_DETACH) < 0))
		_exit(126);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	if (o->cwd && chdir(o->cwd) < 0)
		_exit(126);
	/* dup2() onto itself would leave close-on-exec set. */
	if (o->keep_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : o->keep_fd >= 0 && dup2(o->keep_fd, 3) < 0)
		_exit(126);
	syscall(SYS_close_range, o->keep_fd >= 0 ? 4 : 3, ~0U, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(sp->argv[0], (char *const *)sp->argv, sp->env);
	_exit(127);
}

/* Starts the child; its pid, or -errno. Returns once it exec'd or died. */
static pid_t spawn(struct spawn *sp)
{
	sigset_t all, old;
	void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

	if (stack == MAP_FAILED)
		return -errno;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(child, (char *)stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, sp);
	int r = pid < 0 ? -errno : pid;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	munmap(stack, CHILD_STACK);
	return r;
}

/* Feeds the input to the child and reads both pipes to their end, or until
 * the deadline; false on timeout. Closes all three descriptors either way.
 * The input side is non-blocking: a blocking write of more than a pipe's
 * worth would wait for a child that is itself waiting for us to read. */
static bool collect(int outfd, int errfd, struct strbuf *out, struct strbuf *err, int64_t deadline,
		    int writefd, const char *input)
{
	struct pollfd fds[3] = {{outfd, POLLIN, 0}, {errfd, POLLIN, 0}, {writefd, POLLOUT, 0}};
	size_t inlen = input ? strlen(input) : 0, done = 0;
	bool in_time = true;
	char buf[4096];
	sigset_t pipe, old;

	/* A child that exits without reading its input (one that could not be
	 * executed) must cost us an EPIPE, not the SIGPIPE that would end the
	 * agent: blocked here, and taken back if a write raised it. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);

	if (writefd >= 0)
		fcntl(writefd, F_SETFL, O_NONBLOCK);
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		int64_t left = deadline - mono_ms();
		if (left <= 0 || (poll(fds, 3, (int)left) < 0 && errno != EINTR)) {
			in_time = false;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			ssize_t r = read(fds[i].fd, buf, sizeof(buf));
			if (r > 0)
				sb_append(i ? err : out, buf, (size_t)r);
			else if (r == 0 || errno != EINTR) {
				close(fds[i].fd);
				fds[i].fd = -1;
			}
		}
		if (fds[2].fd >= 0 && fds[2].revents) {
			ssize_t w = write(fds[2].fd, input + done, inlen - done);
			if (w > 0)
				done += (size_t)w;
			if (w < 0 && errno == EPIPE)
				sigtimedwait(&pipe, NULL, &(struct timespec){0});
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || done == inlen) {
				close(fds[2].fd);
				fds[2].fd = -1;
			}
		}
	}
	for (int i = 0; i < 3; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return in_time;
}

static void trim(struct strbuf *sb)
{
	while (sb->len && (sb->buf[sb->len - 1] == '\n' || sb->buf[sb->len - 1] == ' '))
		sb->buf[--sb->len] = '\0';
}

int proc_run(const char *const argv[], const struct proc_opts *o, char **out, struct err *e)
{
	static const struct proc_opts none = {.keep_fd = -1};
	int pin[2] = {-1, -1}, pout[2], perr[2], status;
	struct strbuf sout = {0}, serr = {0};

	o = o ? o : &none;
	proc_hybrid_cgroups();
	if (pipe2(pout, O_CLOEXEC) < 0)
		return err_set(e, errno, "%s: pipe: %s", argv[0], strerror(errno));
	if (pipe2(perr, O_CLOEXEC) < 0 || pipe2(pin, O_CLOEXEC) < 0) {
		int r = errno;
		close(pout[0]), close(pout[1]), close(perr[0]), close(perr[1]);
		return err_set(e, r, "%s: pipe: %s", argv[0], strerror(r));
	}
	if (!o->input) {
		close(pin[1]);
		pin[1] = -1;
	}
	struct spawn sp = {argv, o, proc_env(o), pin[0], pout[1], perr[1]};
	pid_t pid = spawn(&sp);
	free(sp.env);
	close(pin[0]), close(pout[1]), close(perr[1]);
	if (pid < 0) {
		close(pout[0]), close(perr[0]);
		if (pin[1] >= 0)
			close(pin[1]);
		return err_set(e, -pid, "%s: clone: %s", argv[0], strerror(-pid));
	}
	int64_t deadline = mono_ms() + (o->timeout_ms > 0 ? o->timeout_ms : 60000);
	bool in_time = collect(pout[0], perr[0], &sout, &serr, deadline, pin[1], o->input);
	if (!in_time)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	trim(&serr);
	int r = !in_time	    ? err_set(e, ETIMEDOUT, "%s: timed out", argv[0])
		: WIFEXITED(status) ? WEXITSTATUS(status)
				    : 128 + WTERMSIG(status);
	if (r > 0)
		err_set(e, EIO, "%s: %s", argv[0],
			serr.len   ? serr.buf
			: r == 127 ? "not found"
				   : "failed");
	sb_free(&serr);
	if (out && r >= 0) {
		trim(&sout);
		*out = sout.buf ? sb_steal(&sout, NULL) : xstrdup("");
	}
	sb_free(&sout);
	return r;
}

int proc_pidfd(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : fd;
}

char *proc_which(const char *name)
{
	const char *path = getenv("PATH");
	cleanup_free char *dirs = xstrdup(path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;

	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *full = xasprintf("%s/%s", d, name);
		if (access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}
