/*
 * clusterfs.c: the one binary and its subcommands.
 *
 *   clusterfs server --mount DIR --state DIR   the control plane
 *   clusterfs up                               a whole cluster on this machine
 *
 * The server opens the store, makes sure the default namespace exists,
 * mounts the tree and serves it until SIGINT or SIGTERM, then unmounts
 * and closes the store. `up` also runs a node agent for this machine in
 * the same process, with real containers; the containers outlive it, and
 * the next `up` adopts them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "controllers.h"
#include "export.h"
#include "runtime-crun.h"
#include "scheduler.h"
#include "fs.h"
#include "store.h"

int cmd_agent(int argc, char **argv);
int cmd_mount(int argc, char **argv);

#define DEFAULT_MOUNT "/cluster"
#define DEFAULT_STATE "/var/lib/clusterfs"

static int usage(FILE *out)
{
	fputs("usage: clusterfs server --mount DIR --state DIR [--node-grace S] [--eviction-timeout S]\n"
	      "                        [--log-limit BYTES]\n"
	      "                        [--listen ADDR:PORT [--auth none|munge]]\n"
	      "       clusterfs up [--mount DIR] [--state DIR] [--node NAME] [--bridge NAME]\n"
	      "                    [--registry HOST] [--insecure-registry HOST:PORT]...\n"
	      "                    [--listen ADDR:PORT [--auth none|munge]]\n"
	      "       clusterfs agent --view DIR --node NAME --simulated [--nodes N] [--capacity ...]\n"
	      "       clusterfs help\n"
	      "\n"
	      "server  the control plane: the store in STATE, the cluster mounted at DIR\n"
	      "up      a whole cluster on this machine (default " DEFAULT_MOUNT ", " DEFAULT_STATE
	      ")\n"
	      "        with a node agent running pods as containers (node: the host name)\n"
	      "--listen  also export the mount over 9P2000.L on ADDR:PORT (diod, supervised);\n"
	      "          --auth munge makes clients prove their uid with munged (default none)\n",
	      out);
	return out == stderr ? 2 : 0;
}

/* Holds an exclusive lock on STATE/lock for the life of the process. */
static int lock_state(const char *state, struct err *e)
{
	cleanup_free char *path = xasprintf("%s/lock", state);
	int fd;

	mkdir(state, 0700);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, errno, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return err_set(e, EBUSY, "%s is in use by another server", state);
	}
	return fd; /* kept open: the lock lasts until exit */
}

static int ensure_default_namespace(struct store *s, struct err *e)
{
	const struct kind *nsk = kind_by_name("Namespace");
	struct sobj *o = store_get(s, nsk, "", "default");
	struct store_op op = {.type = OP_CREATE, .kind = nsk, .ns = "", .name = "default"};
	int r;

	if (o) {
		sobj_unref(o);
		return 0;
	}
	op.doc = y_map();
	if ((r = obj_normalize(nsk, "", "default", op.doc, e)) < 0) {
		y_free(op.doc);
		return r;
	}
	return store_write(s, &op, 1, e);
}

#define MAX_INSECURE 16

/* What `up` adds to the server's options. */
struct up_opts {
	const char *node;
	struct crun_config crun;
	const char *insecure[MAX_INSECURE + 1];
	int ninsecure;
};

/* The node agent that `up` runs beside the server, on the mount. */
static struct agent *local_agent(const char *mount, const char *state, struct up_opts *up,
				 struct err *e)
{
	static char node[256];
	struct agent_config cfg = {.view = mount, .node = up->node, .heartbeat_ms = 10000};
	cleanup_free char *agent_state = xasprintf("%s/agent", state);

	if (!cfg.node) {
		gethostname(node, sizeof(node) - 1);
		for (char *p = node; *p; p++)
			*p = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p == '_' ? '-' : *p;
		cfg.node = node;
	}
	up->crun.view = mount;
	up->crun.state_dir = agent_state;
	up->crun.run_dir = "/run/clusterfs";
	up->crun.insecure = up->insecure;
	cleanup_free char *capacity = agent_host_capacity();
	cfg.capacity = capacity;
	struct agent_runtime *rt = agent_runtime_crun_new(&up->crun, e);
	return rt ? agent_new(&cfg, rt, e) : NULL;
}

/* listen is NULL when the mount is not exported over 9P. */
static int run_server(const char *mount, const char *state, const struct controllers_config *cfg,
		      const char *listen, const char *auth, struct up_opts *up)
{
	struct err e = {0};
	struct store *s = NULL;
	struct fs *fs = NULL;
	struct export *x = NULL;
	struct controllers *cs = NULL;
	struct sched *sc = NULL;
	struct agent *a = NULL;
	int r;

	if ((r = lock_state(state, &e)) < 0)
		goto fail;
	if (!(s = store_open(state, &e)) || (r = ensure_default_namespace(s, &e)) < 0)
		goto fail;
	if (!(fs = fs_new(s, mount, &e)))
		goto fail;
	fprintf(stderr, "clusterfs: serving %s (state in %s, revision %lld)\n", mount, state,
		(long long)store_revision(s));
	if (listen && !(x = export_start(mount, listen, auth, &e)))
		goto fail;
	cs = controllers_start(mount, cfg);
	sc = sched_start(mount);
	if (up && !(a = local_agent(mount, state, up, &e)))
		fprintf(stderr, "clusterfs: no node agent: %s\n", e.msg);
	else if (a)
		fprintf(stderr, "clusterfs: node agent for this machine runs pods with crun\n");
	r = fs_loop(fs);
	fprintf(stderr, "clusterfs: unmounting %s\n", mount);
	/* Controllers may be inside a request to the mount: ask them to stop,
	 * end the mount (which fails such requests), then wait for them. */
	controllers_stop(cs);
	sched_request_stop(sc);
	export_stop(x); /* diod holds files open in the mount */
	fs_free(fs);
	agent_free(a); /* its pods keep running */
	controllers_free(cs);
	sched_stop(sc);
	store_close(s);
	return r < 0 ? 1 : 0;
fail:
	fprintf(stderr, "clusterfs: %s\n", e.msg[0] ? e.msg : "cannot start");
	fs_free(fs);
	store_close(s);
	return 1;
}

/* A positive number of seconds, or -1. */
static int seconds(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return *end || v <= 0 || v > 86400 ? -1 : (int)v;
}

/* A byte count from 1 to 1 GiB, or -1. */
static long long byte_count(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	return *end || v <= 0 || v > (1LL << 30) ? -1 : v;
}

static int cmd_server(int argc, char **argv, const char *mount, const char *state,
		      struct up_opts *up)
{
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"bridge", required_argument, NULL, 'B'},
		{"registry", required_argument, NULL, 'r'},
		{"insecure-registry", required_argument, NULL, 'i'},
		{"mount", required_argument, NULL, 'm'},
		{"state", required_argument, NULL, 's'},
		{"node-grace", required_argument, NULL, 'g'},
		{"eviction-timeout", required_argument, NULL, 'e'},
		{"log-limit", required_argument, NULL, 'l'},
		{"listen", required_argument, NULL, 'L'},
		{"auth", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct controllers_config cfg = {.node_grace = 40, .eviction_timeout = 60};
	const char *listen = NULL, *auth = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "m:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mount = optarg;
			break;
		case 's':
			state = optarg;
			break;
		case 'g':
			if ((cfg.node_grace = seconds(optarg)) < 0)
				return usage(stderr);
			break;
		case 'e':
			if ((cfg.eviction_timeout = seconds(optarg)) < 0)
				return usage(stderr);
			break;
		case 'l': {
			long long bytes = byte_count(optarg);
			if (bytes < 0)
				return usage(stderr);
			fs_set_log_limit((size_t)bytes);
			break;
		}
		case 'L':
			listen = optarg;
			break;
		case 'a':
			if (strcmp(optarg, "none") && strcmp(optarg, "munge")) {
				fprintf(stderr, "clusterfs: --auth %s: expected none or munge\n",
					optarg);
				return usage(stderr);
			}
			auth = optarg;
			break;
		case 'h':
			return usage(stdout);
		case 'n':
		case 'B':
		case 'r':
		case 'i':
			if (!up || (c == 'i' && up->ninsecure == MAX_INSECURE))
				return usage(stderr);
			if (c == 'n')
				up->node = optarg;
			else if (c == 'B')
				up->crun.bridge = optarg;
			else if (c == 'r')
				up->crun.registry = optarg;
			else
				up->insecure[up->ninsecure++] = optarg;
			break;
		default:
			return usage(stderr);
		}
	}
	if (!mount || !state || optind != argc)
		return usage(stderr);
	if (auth && !listen) {
		fputs("clusterfs: --auth applies to the 9P export: give --listen too\n", stderr);
		return usage(stderr);
	}
	return run_server(mount, state, &cfg, listen, auth ? auth : "none", up);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "server"))
		return cmd_server(argc - 1, argv + 1, NULL, NULL, NULL);
	if (!strcmp(argv[1], "up")) {
		struct up_opts up = {.crun = {.bridge = "cfs0", .pids_limit = 4096}};
		return cmd_server(argc - 1, argv + 1, DEFAULT_MOUNT, DEFAULT_STATE, &up);
	}
	if (!strcmp(argv[1], "agent"))
		return cmd_agent(argc - 1, argv + 1);
	if (!strcmp(argv[1], "mount"))
		return cmd_mount(argc - 1, argv + 1);
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help"))
		return usage(stdout);
	fprintf(stderr, "clusterfs: unknown command \"%s\"\n", argv[1]);
	return usage(stderr);
}
