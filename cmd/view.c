/*
 * view.c: a node agent's view of a server in a child process (view.h).
 */
#define _GNU_SOURCE
#include "view.h"

#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

pid_t view_spawn(const char *addr, int munge, const char *dir)
{
	pid_t parent = getpid(), pid;

	mkdir_p(dir, 0755);
	if ((pid = fork()) < 0) {
		perror("clusterfs: fork");
		return -1;
	}
	if (pid == 0) {
		const char *argv[8];
		sigset_t none;
		int n = 0;

		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			_exit(1);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		argv[n++] = "clusterfs";
		argv[n++] = "mount";
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
	return pid;
}

int view_wait(pid_t pid, const char *addr, const char *dir)
{
	cleanup_free char *nodes = xasprintf("%s/nodes", dir);
	struct stat st;
	int status;

	for (int i = 0; i < 600; i++) { /* 30 s */
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "clusterfs: the view of %s could not be mounted\n", addr);
			return -1;
		}
		if (stat(nodes, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "clusterfs: %s did not answer within 30 s\n", addr);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

pid_t view_start(const char *addr, int munge, const char *dir)
{
	pid_t pid = view_spawn(addr, munge, dir);

	return pid < 0 || view_wait(pid, addr, dir) < 0 ? -1 : pid;
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

pid_t view_keep(pid_t pid, const char *addr, int munge, const char *dir)
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
	return view_start(addr, munge, dir);
}
