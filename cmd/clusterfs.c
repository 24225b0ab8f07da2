/*
 * clusterfs.c: the one binary and its subcommands.
 *
 *   clusterfs server --mount DIR --state DIR   the control plane
 *   clusterfs up                               a whole cluster on this machine
 *
 * The server opens the store, makes sure the default namespace exists,
 * mounts the tree and serves it until SIGINT or SIGTERM, then unmounts
 * and closes the store. `up` also exports the mount over 9P on loopback
 * (127.0.0.1:564 unless --listen says otherwise) and runs a node agent for
 * this machine in the same process, which reaches the server through that
 * export as an agent on another host would, with real containers; the
 * containers outlive it, and the next `up` adopts them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "controllers.h"
#include "export.h"
#include "runtime-crun.h"
#include "scheduler.h"
#include "fs.h"
#include "view.h"
#include "store.h"
#include "svcalloc.h"

int cmd_agent(int argc, char **argv);
int cmd_mount(int argc, char **argv);

#define DEFAULT_MOUNT "/cluster"
#define DEFAULT_STATE "/var/lib/clusterfs"
#define UP_LISTEN     "127.0.0.1:564" /* 9P's own port */

static int usage(FILE *out)
{
	fputs("usage: clusterfs server --mount DIR --state DIR [--node-grace S] "
	      "[--eviction-timeout S]\n"
	      "                        [--log-limit BYTES] [--service-cidr CIDR]\n"
	      "                        [--listen ADDR:PORT [--auth none|munge]]\n"
	      "       clusterfs up [--mount DIR] [--state DIR] [--node NAME] [--bridge NAME]\n"
	      "                    [--run-dir DIR]\n"
	      "                    [--registry HOST] [--insecure-registry HOST:PORT]...\n"
	      "                    [--listen ADDR:PORT [--auth none|munge]]\n"
	      "       clusterfs agent (--view DIR | --server ADDR:PORT) --node NAME ...\n"
	      "       clusterfs mount ADDR:PORT DIR\n"
	      "       clusterfs help\n"
	      "\n"
	      "server  the control plane: the store in STATE, the cluster mounted at DIR\n"
	      "up      a whole cluster on this machine (default " DEFAULT_MOUNT ", " DEFAULT_STATE
	      ")\n"
	      "        with a node agent running pods as containers (node: the host name),\n"
	      "        reaching the server over 9P on " UP_LISTEN " unless --listen says where\n"
	      "agent   a node agent (clusterfs agent --help)\n"
	      "mount   the cluster of a server, mounted at DIR over 9P (clusterfs mount --help)\n"
	      "--service-cidr  Services' cluster IPs come from CIDR (" SVC_CIDR_DEFAULT ")\n"
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

/*
 * The node agent that `up` runs beside the server. It takes the path of an
 * agent on another host: it mounts the server's 9P export (on loopback) at
 * RUN/view and works only through that, so one machine exercises what a
 * real cluster does.
 */
struct local_node {
	const char *listen, *auth, *state;
	struct up_opts *up;
	char *addr, *view_dir;
	pid_t view; /* the view's mount, a child process (cmd/view.h) */
	int ready;  /* the view's pipe that tells it is mounted */
	int stop;   /* an eventfd: the starter stops waiting for the view */
	pthread_t starter;
	struct agent *agent;
};

/* The address the local agent dials: the listen address, or loopback
 * when the server listens on every address. */
static char *dial_address(const char *listen)
{
	const char *port = strrchr(listen, ':');

	if (!strncmp(listen, "0.0.0.0:", 8) || !strncmp(listen, "[::]:", 5))
		return xasprintf("127.0.0.1%s", port);
	return xstrdup(listen);
}

static int local_start(struct local_node *ln, struct err *e)
{
	const char *listen = ln->listen, *state = ln->state;
	struct up_opts *up = ln->up;
	static char node[256];
	struct agent_config cfg = {.node = up->node, .heartbeat_ms = 10000, .remote = 1};
	cleanup_free char *agent_state = xasprintf("%s/agent", state);

	if (!cfg.node) {
		gethostname(node, sizeof(node) - 1);
		for (char *p = node; *p; p++)
			*p = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p == '_' ? '-' : *p;
		cfg.node = node;
	}
	if (ln->view < 0 || view_wait(ln->view, ln->ready, ln->stop, ln->addr) < 0) {
		ln->view = 0;
		return err_set(e, EIO, "the view of %s could not be mounted", listen);
	}
	cfg.view = up->crun.view = ln->view_dir;
	up->crun.state_dir = agent_state;
	up->crun.insecure = up->insecure;
	cleanup_free char *capacity = agent_host_capacity();
	cfg.capacity = capacity;
	char host_ip[16];
	if (agent_host_ip(up->crun.bridge, host_ip) < 0)
		return err_set(e, ENOENT, "this host has no IPv4 address but loopback");
	cfg.node_ip = host_ip;
	struct agent_runtime *rt = agent_runtime_crun_new(&up->crun, e);
	struct agent *a = rt ? agent_new(&cfg, rt, e) : NULL;
	if (!a)
		return -1;
	__atomic_store_n(&ln->agent, a, __ATOMIC_RELEASE); /* see local_keep */
	return 0;
}

static void *local_starter(void *arg)
{
	struct local_node *ln = arg;
	struct err e = {0};

	if (local_start(ln, &e) < 0)
		fprintf(stderr, "clusterfs: no node agent: %s\n", e.msg);
	else
		fprintf(stderr,
			"clusterfs: node agent for this machine runs pods with crun, "
			"through 9P on %s\n",
			ln->listen);
	return NULL;
}

/*
 * Starts the local node's view (from the thread that stays, for its
 * PR_SET_PDEATHSIG), then the agent on a thread of its own: the view
 * comes up only once the server's mount is served, which begins when the
 * caller enters fs_loop().
 */
static void local_begin(struct local_node *ln)
{
	ln->addr = dial_address(ln->listen);
	ln->view_dir = xasprintf("%s/view", ln->up->crun.run_dir);
	ln->stop = eventfd(0, EFD_CLOEXEC);
	ln->view = view_spawn(ln->addr, !strcmp(ln->auth, "munge"), ln->view_dir, &ln->ready);
	pthread_create(&ln->starter, NULL, local_starter, ln);
}

/* Mounts the view again when its child died alone, once the agent runs
 * (the starter no longer touches the view then). */
static void local_keep(struct local_node *ln, int stop)
{
	if (!ln->up || !__atomic_load_n(&ln->agent, __ATOMIC_ACQUIRE))
		return;
	ln->view = view_keep(ln->view, ln->addr, !strcmp(ln->auth, "munge"), ln->view_dir, stop);
}

/* Stops the agent (its pods keep running) and unmounts its view. */
static void local_stop(struct local_node *ln)
{
	if (!ln->up)
		return;
	eventfd_write(ln->stop, 1);
	pthread_join(ln->starter, NULL);
	close(ln->stop);
	view_stop(ln->view);   /* what waits for the server fails at once */
	agent_free(ln->agent); /* NULL when it could not start */
	free(ln->addr);
	free(ln->view_dir);
	memset(ln, 0, sizeof(*ln));
}

/*
 * What a stop signal starts: while the mount is still served, the local
 * node stops, reads parked on watch are answered and diod is stopped
 * (diod's last requests to the mount, closing its files, need the mount
 * served); then the mount's loop ends.
 */
struct stopper {
	sigset_t signals;
	struct fs *fs;
	struct local_node *ln;
	struct export *x;
};

static void *stopper_main(void *arg)
{
	struct stopper *st = arg;
	struct timespec second = {1, 0};
	int stop = signalfd(-1, &st->signals, SFD_CLOEXEC);

	/* Meanwhile, every second, the local node's view is kept mounted;
	 * a stop signal ends a wait for it. */
	while (sigtimedwait(&st->signals, NULL, &second) < 0)
		local_keep(st->ln, stop);
	close(stop);
	local_stop(st->ln);
	fs_end_waits(st->fs);
	export_stop(st->x);
	fs_exit(st->fs);
	return NULL;
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
	struct local_node ln = {0};
	struct stopper st = {0};
	pthread_t stopper;
	int r;

	/* Only the stopper takes the stop signals, whenever they come. */
	sigemptyset(&st.signals);
	sigaddset(&st.signals, SIGINT);
	sigaddset(&st.signals, SIGTERM);
	sigaddset(&st.signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &st.signals, NULL);
	if ((r = lock_state(state, &e)) < 0)
		goto fail;
	if (!(s = store_open(state, &e)) || (r = ensure_default_namespace(s, &e)) < 0)
		goto fail;
	if (!(fs = fs_new(s, mount, &e)))
		goto fail;
	fprintf(stderr, "clusterfs: serving %s (state in %s, revision %lld)\n", mount, state,
		(long long)store_revision(s));
	if (listen && !(x = export_start(mount, listen, auth, state, &e)))
		goto fail;
	cs = controllers_start(mount, cfg);
	sc = sched_start(mount);
	if (up) {
		ln = (struct local_node){.listen = listen, .auth = auth, .state = state, .up = up};
		local_begin(&ln);
	}
	st.fs = fs;
	st.ln = &ln;
	st.x = x;
	pthread_create(&stopper, NULL, stopper_main, &st);
	r = fs_loop(fs);
	/* Ended by the stopper, or by an unmount: then the stopper is woken. */
	pthread_kill(stopper, SIGTERM);
	pthread_join(stopper, NULL);
	fprintf(stderr, "clusterfs: unmounting %s\n", mount);
	/* Controllers may be inside a request to the mount: ask them to stop,
	 * end the mount (which fails such requests), then wait for them. */
	controllers_stop(cs);
	sched_request_stop(sc);
	fs_free(fs);
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
		{"run-dir", required_argument, NULL, 'R'},
		{"registry", required_argument, NULL, 'r'},
		{"insecure-registry", required_argument, NULL, 'i'},
		{"mount", required_argument, NULL, 'm'},
		{"state", required_argument, NULL, 's'},
		{"node-grace", required_argument, NULL, 'g'},
		{"eviction-timeout", required_argument, NULL, 'e'},
		{"log-limit", required_argument, NULL, 'l'},
		{"service-cidr", required_argument, NULL, 'c'},
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
		case 'c': {
			struct err e = {0};
			if (svc_set_cidr(optarg, &e) < 0) {
				fprintf(stderr, "clusterfs: --service-cidr %s\n", e.msg);
				return usage(stderr);
			}
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
		case 'R':
		case 'r':
		case 'i':
			if (!up || (c == 'i' && up->ninsecure == MAX_INSECURE))
				return usage(stderr);
			if (c == 'n')
				up->node = optarg;
			else if (c == 'B')
				up->crun.bridge = optarg;
			else if (c == 'R')
				up->crun.run_dir = optarg;
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
	if (up && !listen)
		listen = UP_LISTEN;
	return run_server(mount, state, &cfg, listen, auth ? auth : "none", up);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "server"))
		return cmd_server(argc - 1, argv + 1, NULL, NULL, NULL);
	if (!strcmp(argv[1], "up")) {
		struct up_opts up = {.crun = {.bridge = "cfs0",
					      .pids_limit = 4096,
					      .run_dir = "/run/clusterfs"}};
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
