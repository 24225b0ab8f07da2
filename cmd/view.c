/*
 * view.c: a node agent's view of a server in a child process (view.h).
 */
#define _GNU_SOURCE
#include "view.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

pid_t view_spawn(const char *addr, int munge, const char *dir, int *ready)
{
	pid_t parent = getpid(), pid;
	int fds[2];

	mkdir_p(dir, 0755);
	/* Close-on-exec: no other child of this process holds the end that
	 * tells, by closing, that the view's child is gone. */
	if (pipe2(fds, O_CLOEXEC) < 0) {
		perror("clusterfs: pipe");
		return -1;
	}
	if ((pid = fork()) < 0) {
		perror("clusterfs: fork");
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		const char *argv[10];
		char fd[16];
		sigset_t none;
		int n = 0;

		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent ||
		    fcntl(fds[1], F_SETFD, 0) < 0)
			_exit(1);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		snprintf(fd, sizeof(fd), "%d", fds[1]);
		argv[n++] = "clusterfs";
		argv[n++] = "mount";
		argv[n++] = "--ready-fd";
		argv[n++] = fd;
		if (munge) {
			argv[n++] = "--auth";
			argv[n++] = "munge";
		}
		argv[n++] = addr;
		argv[n++] = dir;
		argv[n] = NULL;
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	*ready = fds[0];
	return pid;
}

int view_wait(pid_t pid, int ready, int stop, const char *addr)
{
	struct pollfd p[2] = {{.fd = ready, .events = POLLIN}, {.fd = stop, .events = POLLIN}};
	int64_t deadline = mono_ms() + 30000;
	char c;
	int rc = -1;

	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			fprintf(stderr, "clusterfs: %s did not answer within 30 s\n", addr);
			break;
		}
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			break;
		if (p[1].revents) /* told to stop */
			break;
		if (p[0].revents) {
			/* A line once mounted; the end of the pipe when the
			 * child ended first. */
			if ((rc = read(ready, &c, 1) == 1 ? 0 : -1) < 0)
				fprintf(stderr, "clusterfs: the view of %s could not be mounted\n",
					addr);
			break;
		}
	}
	close(ready);
	if (rc < 0) {
		/* Not unmounted here: dir may be another process's live view
		 * (the child ended finding it mounted). A mount the killed
		 * child made just now answers ENOTCONN, and the next start
		 * clears it (view_keep, fs_check_mountpoint). */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return rc;
}

pid_t view_start(const char *addr, int munge, const char *dir, int stop)
{
	int ready;
	pid_t pid = view_spawn(addr, munge, dir, &ready);

	return pid < 0 || view_wait(pid, ready, stop, addr) < 0 ? -1 : pid;
}

void view_stop(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) { /* 10 s */
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

pid_t view_keep(pid_t pid, const char *addr, int munge, const char *dir, int stop)
{
	int status;

	if (pid > 0 && waitpid(pid, &status, WNOHANG) != pid)
		return pid;
	if (pid > 0)
		fprintf(stderr, "clusterfs: the view of %s ended (%s %d): mounting it again\n",
			addr, WIFSIGNALED(status) ? "signal" : "exit code",
			WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	/* What a killed child leaves answers ENOTCONN until it is unmounted;
	 * conmon's mount namespaces may hold copies, hence the force. */
	umount2(dir, MNT_FORCE | MNT_DETACH);
	return view_start(addr, munge, dir, stop);
}
