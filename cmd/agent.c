/*
 * agent.c: `clusterfs agent`, the node agent's command line.
 *
 *   clusterfs agent --view DIR --node NAME --simulated [--capacity LIST]
 *                   [--nodes N] [--heartbeat SECONDS]
 *
 * Checks the options and the view, starts the agent (nodeagent/agent.h)
 * with the runtime the options pick, and runs until SIGINT or SIGTERM.
 * The signals are blocked before the agent's thread starts, so only this
 * thread takes them, in sigwait(). Pods are left running at exit: an
 * agent that starts again adopts them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

#include "agent.h"

int cmd_agent(int argc, char **argv);

static int agent_usage(FILE *out)
{
	fputs("usage: clusterfs agent --view DIR --node NAME --simulated\n"
	      "                       [--capacity cpu=4,memory=8Gi,pods=110] [--nodes N]\n"
	      "                       [--heartbeat SECONDS]\n"
	      "\n"
	      "Runs node NAME on the cluster mounted at DIR: registers nodes/NAME.yaml,\n"
	      "renews its Ready heartbeat every SECONDS (10), runs the pods bound to it.\n"
	      "  --simulated   pods run at once without containers (a hollow node)\n"
	      "  --nodes N     N simulated nodes NAME-0 .. NAME-(N-1) from this process\n"
	      "  --capacity    status.capacity; named entries replace the defaults\n",
	      out);
	return out == stderr ? 2 : 0;
}

struct agent_opts {
	struct agent_config cfg;
	const char *server;
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
		case 'c':
			o->cfg.capacity = optarg;
			break;
		case 's':
			o->server = optarg;
			break;
		case 'h':
			o->help = 1;
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

	if (o->server)
		return agent_bad("--server %s: not supported yet: the 9P view comes with the "
				 "remote-view issue; mount the view and use --view DIR",
				 o->server);
	if (!o->cfg.view || !o->cfg.node)
		return agent_usage(stderr);
	if (!o->simulated)
		return agent_bad("%s: the real container runtime (crun) is not there yet: "
				 "run with --simulated",
				 o->cfg.node);
	cleanup_free char *nodes = xasprintf("%s/nodes", o->cfg.view);
	cleanup_free char *nsdir = xasprintf("%s/namespaces", o->cfg.view);
	if (stat(nodes, &st) < 0 || !S_ISDIR(st.st_mode) || stat(nsdir, &st) < 0 ||
	    !S_ISDIR(st.st_mode))
		return agent_bad("%s: not a clusterfs view (no nodes/ and namespaces/ in it)",
				 o->cfg.view);
	return 0;
}

static int agent_run(const struct agent_opts *o)
{
	struct err e = {0};
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct agent *a = agent_new(&o->cfg, agent_runtime_sim_new(), &e);
	if (!a) {
		fprintf(stderr, "clusterfs agent: %s\n", e.msg);
		return 2;
	}
	if (o->cfg.nodes)
		fprintf(stderr, "clusterfs agent: nodes %s-0 .. %s-%d (simulated) on %s\n",
			o->cfg.node, o->cfg.node, o->cfg.nodes - 1, o->cfg.view);
	else
		fprintf(stderr, "clusterfs agent: node %s (simulated) on %s\n", o->cfg.node,
			o->cfg.view);
	sigwait(&set, &sig);
	fprintf(stderr, "clusterfs agent: %s: stopping\n", strsignal(sig));
	agent_free(a);
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	struct agent_opts o = {.cfg.heartbeat_ms = 10000};
	int r;

	if ((r = agent_parse(argc, argv, &o)) != 0)
		return r;
	if (o.help)
		return agent_usage(stdout);
	if ((r = agent_validate(&o)) != 0)
		return r;
	return agent_run(&o);
}
