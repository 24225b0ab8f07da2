/*
 * agent.c: `clusterfs agent`, the node agent's command line.
 *
 *   clusterfs agent --view DIR --node NAME [--simulated [--nodes N]]
 *                   [--capacity LIST] [--heartbeat SECONDS] [runtime options]
 *   clusterfs agent --server ADDR:PORT --node NAME ...
 *
 * Checks the options and the view, starts the agent (nodeagent/agent.h)
 * with the runtime the options pick, and runs until SIGINT or SIGTERM.
 * With --server the agent first mounts the server's 9P export itself (at
 * RUN_DIR/view unless --view says where) and then works only through that
 * mount, learning of changes from its watch file.
 * The signals are blocked before the agent's thread starts, so only this
 * thread takes them, in sigwait(). Pods are left running at exit: an
 * agent that starts again adopts them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "view.h"
#include "runtime-crun.h"

int cmd_agent(int argc, char **argv);

#define AGENT_STATE  "/var/lib/clusterfs/agent"
#define AGENT_RUN    "/run/clusterfs"
#define MAX_INSECURE 16

static int agent_usage(FILE *out)
{
	fputs("usage: clusterfs agent --view DIR --node NAME [--simulated [--nodes N]]\n"
	      "       clusterfs agent --server ADDR:PORT [--auth none|munge] --node NAME ...\n"
	      "                       [--capacity cpu=4,memory=8Gi,pods=110] [--heartbeat "
	      "SECONDS]\n"
	      "                       [--state-dir DIR] [--run-dir DIR] [--bridge NAME]\n"
	      "                       [--registry HOST] [--insecure-registry HOST:PORT]...\n"
	      "                       [--pids-limit N] [--backoff SECONDS] [--node-ip ADDR]\n"
	      "                       [--image-gc-high-threshold PCT] [--image-gc-low-threshold "
	      "PCT]\n"
	      "\n"
	      "Runs node NAME on the cluster mounted at DIR: registers nodes/NAME.yaml,\n"
	      "renews its Ready heartbeat every SECONDS (10), runs the pods bound to it\n"
	      "as containers with crun under conmon.\n"
	      "  --server      mount the cluster a server exports over 9P (at --view DIR,\n"
	      "                or RUN_DIR/view) and work through it\n"
	      "  --auth        how to authenticate to the server: none or munge (none)\n"
	      "  --simulated   pods run at once without containers (a hollow node)\n"
	      "  --nodes N     N simulated nodes NAME-0 .. NAME-(N-1) from this process\n"
	      "  --capacity    status.capacity; named entries replace the defaults\n"
	      "                (the host's CPUs and memory, or 4 and 8Gi when simulated)\n"
	      "  --state-dir   images and pods (" AGENT_STATE ")\n"
	      "  --run-dir     crun's and conmon's state (" AGENT_RUN ")\n"
	      "  --bridge      the pod network's bridge (cfs0)\n"
	      "  --registry    the registry of short image names (docker.io)\n"
	      "  --insecure-registry  a registry reached over plain HTTP; repeatable\n"
	      "  --pids-limit  the most processes of one container (4096; 0: no limit)\n"
	      "  --backoff     the first restart back-off, doubling to 5 minutes (10)\n"
	      "  --image-gc-high-threshold, --image-gc-low-threshold  after a pull, with\n"
	      "                more than HIGH percent of the disk used, unused images go\n"
	      "                until LOW percent is (85, 80; HIGH 100: never)\n"
	      "  --node-ip     the node's InternalIP (the default route's address, else\n"
	      "                the first other one; simulated nodes make one up)\n",
	      out);
	return out == stderr ? 2 : 0;
}

struct agent_opts {
	struct agent_config cfg;
	const char *server;
	int munge;
	struct crun_config crun;
	const char *insecure[MAX_INSECURE + 1];
	int ninsecure;
	int simulated;
	int help;
};

static int agent_bad(const char *fmt, const char *arg)
{
	fputs("clusterfs agent: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return 2;
}

static int parse_nodes(const char *s, int *out)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*end || end == s || n < 1 || n > AGENT_MAX_NODES)
		return -EINVAL;
	*out = (int)n;
	return 0;
}

static int parse_seconds(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || end == s || !isfinite(v) || v < 0.1 || v > 3600)
		return -EINVAL;
	*ms = (int)(v * 1000 + 0.5);
	return 0;
}

/* Fills o from the command line; 0, or the exit code to return. */
static int agent_parse(int argc, char **argv, struct agent_opts *o)
{
	static const struct option opts[] = {
		{"view", required_argument, NULL, 'v'},
		{"node", required_argument, NULL, 'n'},
		{"simulated", no_argument, NULL, 'S'},
		{"capacity", required_argument, NULL, 'c'},
		{"nodes", required_argument, NULL, 'N'},
		{"heartbeat", required_argument, NULL, 'b'},
		{"server", required_argument, NULL, 's'},
		{"auth", required_argument, NULL, 'A'},
		{"state-dir", required_argument, NULL, 'D'},
		{"run-dir", required_argument, NULL, 'R'},
		{"bridge", required_argument, NULL, 'B'},
		{"registry", required_argument, NULL, 'r'},
		{"insecure-registry", required_argument, NULL, 'i'},
		{"pids-limit", required_argument, NULL, 'P'},
		{"backoff", required_argument, NULL, 'k'},
		{"node-ip", required_argument, NULL, 'I'},
		{"image-gc-high-threshold", required_argument, NULL, 'G'},
		{"image-gc-low-threshold", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			o->cfg.view = optarg;
			break;
		case 'n':
			o->cfg.node = optarg;
			break;
		case 'S':
			o->simulated = 1;
			break;
		case 'G':
		case 'g': {
			char *end;
			long pct = strtol(optarg, &end, 10);
			if (*end || end == optarg || pct < (c == 'G') || pct > 100)
				return agent_bad(
					"image GC threshold \"%s\": a percent, 1 to 100 for "
					"the high one, 0 to 100 for the low",
					optarg);
			*(c == 'G' ? &o->crun.image_gc_high : &o->crun.image_gc_low) = (int)pct;
			break;
		}
		case 'I': {
			struct in_addr a;
			if (inet_pton(AF_INET, optarg, &a) != 1)
				return agent_bad("--node-ip \"%s\": an IPv4 address", optarg);
			o->cfg.node_ip = optarg;
			break;
		}
		case 'c':
			o->cfg.capacity = optarg;
			break;
		case 's':
			o->server = optarg;
			break;
		case 'A':
			if (strcmp(optarg, "none") && strcmp(optarg, "munge"))
				return agent_bad("--auth \"%s\": none or munge", optarg);
			o->munge = !strcmp(optarg, "munge");
			break;
		case 'h':
			o->help = 1;
			break;
		case 'D':
			o->crun.state_dir = optarg;
			break;
		case 'R':
			o->crun.run_dir = optarg;
			break;
		case 'B':
			if (!*optarg || strlen(optarg) > 15 || strpbrk(optarg, "/ \t"))
				return agent_bad(
					"--bridge \"%s\": an interface name of 1 to 15 characters",
					optarg);
			o->crun.bridge = optarg;
			break;
		case 'r':
			o->crun.registry = optarg;
			break;
		case 'i':
			if (o->ninsecure == MAX_INSECURE)
				return agent_bad("--insecure-registry %s: too many", optarg);
			o->insecure[o->ninsecure++] = optarg;
			break;
		case 'P': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || end == optarg || n < 0 || n > 1 << 22)
				return agent_bad("--pids-limit \"%s\": a number, 0 for none",
						 optarg);
			o->crun.pids_limit = n;
			break;
		}
		case 'k':
			if (parse_seconds(optarg, &o->crun.backoff_ms) < 0)
				return agent_bad("--backoff \"%s\": seconds, from 0.1 to 3600",
						 optarg);
			break;
		case 'N':
			if (parse_nodes(optarg, &o->cfg.nodes) < 0)
				return agent_bad("--nodes \"%s\": a number from 1 to 4096", optarg);
			break;
		case 'b':
			if (parse_seconds(optarg, &o->cfg.heartbeat_ms) < 0)
				return agent_bad("--heartbeat \"%s\": seconds, from 0.1 to 3600",
						 optarg);
			break;
		default:
			return agent_usage(stderr);
		}
	}
	return optind == argc ? 0 : agent_usage(stderr);
}

/* Says what is wrong with the options, or returns 0. */
static int agent_validate(const struct agent_opts *o)
{
	struct stat st;

	if (!o->cfg.view || !o->cfg.node)
		return agent_usage(stderr);
	if (o->cfg.nodes && !o->simulated)
		return agent_bad("--nodes %s: only simulated nodes share a process", "N");
	cleanup_free char *nodes = xasprintf("%s/nodes", o->cfg.view);
	cleanup_free char *nsdir = xasprintf("%s/namespaces", o->cfg.view);
	if (stat(nodes, &st) < 0 || !S_ISDIR(st.st_mode) || stat(nsdir, &st) < 0 ||
	    !S_ISDIR(st.st_mode))
		return agent_bad("%s: not a clusterfs view (no nodes/ and namespaces/ in it)",
				 o->cfg.view);
	return 0;
}

static int agent_run(struct agent_opts *o)
{
	struct err e = {0};
	pid_t view = 0;
	sigset_t stop, set;
	int sig = 0, rc = 0, stopfd;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	set = stop;
	sigaddset(&set, SIGCHLD); /* the view's end, see below */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* Readable while a stop signal is pending: a view being mounted is
	 * not waited for then. */
	stopfd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (o->server) {
		if ((view = view_start(o->server, o->munge, o->cfg.view, stopfd)) < 0) {
			sigset_t pending;
			rc = sigpending(&pending) == 0 && (sigismember(&pending, SIGINT) ||
							   sigismember(&pending, SIGTERM) ||
							   sigismember(&pending, SIGHUP))
				     ? 0
				     : 2;
			if (rc == 0)
				fprintf(stderr,
					"clusterfs agent: stopping before the view of %s "
					"was mounted\n",
					o->server);
			close(stopfd);
			return rc;
		}
		if ((rc = agent_validate(o)) != 0)
			goto out;
	}
	struct agent_runtime *rt =
		o->simulated ? agent_runtime_sim_new() : agent_runtime_crun_new(&o->crun, &e);
	struct agent *a = rt ? agent_new(&o->cfg, rt, &e) : NULL;
	if (!a) {
		fprintf(stderr, "clusterfs agent: %s\n", e.msg);
		rc = 2;
		goto out;
	}
	if (o->cfg.nodes)
		fprintf(stderr, "clusterfs agent: nodes %s-0 .. %s-%d (simulated) on %s\n",
			o->cfg.node, o->cfg.node, o->cfg.nodes - 1, o->cfg.view);
	else
		fprintf(stderr, "clusterfs agent: node %s (%s) on %s%s%s\n", o->cfg.node,
			rt->version, o->server ? o->server : o->cfg.view,
			o->server ? ", mounted at " : "", o->server ? o->cfg.view : "");
	/* Until told to stop: a view that died alone (kill -9 of the child)
	 * is mounted again, tried every second while the server is away (a
	 * failed try's SIGCHLD, and other children's, come sooner). */
	int64_t retry_at = 0;
	do {
		struct timespec second = {1, 0};
		sig = sigtimedwait(&set, NULL, &second);
		if (!o->server || sig == SIGINT || sig == SIGTERM || sig == SIGHUP ||
		    (view < 0 && mono_ms() < retry_at))
			continue;
		if ((view = view_keep(view, o->server, o->munge, o->cfg.view, stopfd)) < 0)
			retry_at = mono_ms() + 1000;
	} while (sig != SIGINT && sig != SIGTERM && sig != SIGHUP);
	fprintf(stderr, "clusterfs agent: %s: stopping\n", strsignal(sig));
	view_stop(view); /* nothing of the agent waits for the server */
	view = 0;
	agent_free(a);
out:
	view_stop(view);
	close(stopfd);
	return rc;
}

int cmd_agent(int argc, char **argv)
{
	struct agent_opts o = {.cfg.heartbeat_ms = 10000,
			       .crun = {.state_dir = AGENT_STATE,
					.run_dir = AGENT_RUN,
					.bridge = "cfs0",
					.pids_limit = 4096}};
	int r;

	if ((r = agent_parse(argc, argv, &o)) != 0)
		return r;
	cleanup_free char *view = NULL;
	if (o.server && !o.cfg.view)
		o.cfg.view = view = xasprintf("%s/view", o.crun.run_dir);
	o.cfg.remote = o.server != NULL;
	o.crun.view = o.cfg.view;
	o.crun.insecure = o.insecure;
	cleanup_free char *host = o.simulated || o.cfg.capacity ? NULL : agent_host_capacity();
	char host_ip[16];
	if (host)
		o.cfg.capacity = host;
	if (o.help)
		return agent_usage(stdout);
	if (o.crun.image_gc_low > (o.crun.image_gc_high ? o.crun.image_gc_high : 85))
		return agent_bad("--image-gc-low-threshold %s: above the high threshold", "PCT");
	if (o.simulated && o.cfg.node_ip)
		return agent_bad("--node-ip %s: simulated nodes make their addresses up",
				 o.cfg.node_ip);
	if (!o.simulated && !o.cfg.node_ip) {
		if (agent_host_ip(o.crun.bridge, host_ip) < 0) {
			fputs("clusterfs agent: this host has no IPv4 address but loopback: give "
			      "--node-ip\n",
			      stderr);
			return 2;
		}
		o.cfg.node_ip = host_ip;
	}
	if (!o.server && (r = agent_validate(&o)) != 0)
		return r;
	if (o.server && (!o.cfg.node || (o.cfg.nodes && !o.simulated)))
		return agent_usage(stderr);
	return agent_run(&o);
}
