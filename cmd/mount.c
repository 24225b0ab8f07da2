/*
 * mount.c: `clusterfs mount ADDR:PORT DIR`, the cluster of a remote server
 * mounted on this machine over 9P.
 *
 * Stays in the foreground and serves the mount until it is unmounted
 * (umount DIR, fusermount3 -u DIR) or the process gets SIGINT, SIGTERM or
 * SIGHUP. The signals are blocked before the mount's threads start, so
 * only this thread takes them, in sigwait().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote.h"

int cmd_mount(int argc, char **argv);

static int usage(FILE *out)
{
	fputs("usage: clusterfs mount [--aname PATH] [--auth none|munge] [--munge-socket PATH]\n"
	      "                       [--ready-fd FD] ADDR:PORT DIR\n"
	      "\n"
	      "Mounts the cluster a server exports (clusterfs server --listen ADDR:PORT) at DIR\n"
	      "and serves it until DIR is unmounted. --aname names the export when the server\n"
	      "has several (default: its first). --ready-fd: a line is written to FD, which is\n"
	      "then closed, once DIR is mounted.\n",
	      out);
	return out == stderr ? 2 : 0;
}

struct serving {
	struct remote *r;
	int rc;
};

/* The mount's loop; when it ends by an unmount, it wakes the main thread. */
static void *serve(void *arg)
{
	struct serving *s = arg;

	s->rc = remote_loop(s->r);
	kill(getpid(), SIGTERM);
	return NULL;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option opts[] = {
		{"aname", required_argument, NULL, 'a'},
		{"auth", required_argument, NULL, 'A'},
		{"munge-socket", required_argument, NULL, 'S'},
		{"ready-fd", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct p9_config cfg = {0};
	struct serving s = {0};
	struct err e = {0};
	pthread_t thread;
	sigset_t set;
	int c, sig, ready = -1;
	char *end;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			cfg.aname = optarg;
			break;
		case 'A':
			if (strcmp(optarg, "none") && strcmp(optarg, "munge")) {
				fprintf(stderr,
					"clusterfs mount: --auth is none or munge, not \"%s\"\n",
					optarg);
				return 2;
			}
			cfg.munge = !strcmp(optarg, "munge");
			break;
		case 'S':
			cfg.munge_socket = optarg;
			break;
		case 'r':
			errno = 0;
			long fd = strtol(optarg, &end, 10);
			ready = errno || end == optarg || *end || fd < 0 || fd > INT_MAX ? -1
											 : (int)fd;
			if (ready < 0 || fcntl(ready, F_SETFD, FD_CLOEXEC) < 0) {
				fprintf(stderr,
					"clusterfs mount: --ready-fd %s: not an open file\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			return usage(stdout);
		default:
			return usage(stderr);
		}
	}
	if (argc - optind != 2)
		return usage(stderr);
	cfg.addr = argv[optind];
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (!(s.r = remote_mount(&cfg, argv[optind + 1], &e))) {
		fprintf(stderr, "clusterfs mount: %s\n", e.msg);
		return 1;
	}
	fprintf(stderr, "clusterfs: %s mounted at %s\n", cfg.addr, argv[optind + 1]);
	if (ready >= 0) {
		ssize_t w = write(ready, "mounted\n", 8);
		(void)w; /* whoever waited may be gone: the mount is served anyway */
		close(ready);
	}
	pthread_create(&thread, NULL, serve, &s);
	sigwait(&set, &sig);
	remote_exit(s.r);
	pthread_join(thread, NULL);
	remote_free(s.r);
	return s.rc < 0 ? 1 : 0;
}
