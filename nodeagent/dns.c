/*
 * dns.c: the node's DNS for Services, with one dnsmasq of our own.
 *
 *   services or endpoints event -> dns_changed(): dirty
 *   the agent's tick (100 ms)   -> dns_tick():
 *       dirty: the names built from the cache (hosts_text) and, when
 *           they differ from the file's, written (temporary file, rename)
 *           and dnsmasq sent SIGHUP, which makes it read the file again
 *       dnsmasq gone (or never started): reaped, started again after a
 *           back-off that doubles while it keeps dying young
 *
 * dnsmasq runs as our child in a session of its own, with no
 * configuration file, no /etc/hosts, no upstream servers: cluster.local
 * is answered from our file alone (a name missing there is NXDOMAIN),
 * anything else is refused. It binds only the pod gateway, which appears
 * on the bridge with the node's first pod (--bind-dynamic follows it).
 * It keeps root: the agent's run dir, where the file lives, is root's
 * alone, and SIGHUP re-reads it.
 *
 * Names come from files anyone with write access to the cluster can
 * write: a name or namespace that is not a DNS label is skipped, and
 * every address is parsed with inet_pton and printed again.
 */
#define _GNU_SOURCE
#include "dns.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

#define DNS_DOMAIN	   "svc.cluster.local"
#define DNS_BACKOFF_MIN_MS 1000
#define DNS_BACKOFF_MAX_MS 60000
#define DNS_HEALTHY_MS	   10000 /* alive this long: the back-off starts again */

struct dns {
	char *node, *dir, *hosts, *pid_file, *log_file;
	bool dirty;
	char *written;		      /* the hosts file as last written; NULL: not yet */
	char server[INET_ADDRSTRLEN]; /* what dnsmasq listens on; "" before the range */
	pid_t pid;		      /* our dnsmasq; 0: none */
	bool leftover_checked;
	int64_t started_at, retry_at; /* monotonic ms */
	int backoff_ms;
};

int dns_server_of(const char *cidr, char out[INET_ADDRSTRLEN])
{
	char net[INET_ADDRSTRLEN];
	unsigned bits;
	struct in_addr in;

	if (!cidr || sscanf(cidr, "%15[0-9.]/%u", net, &bits) != 2 || bits > 30 ||
	    inet_pton(AF_INET, net, &in) != 1)
		return -EINVAL;
	uint32_t mask = bits ? ~0u << (32 - bits) : 0;
	in.s_addr = htonl((ntohl(in.s_addr) & mask) + 1);
	return inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN) ? 0 : -EINVAL;
}

struct dns *dns_new(const char *node, const char *dir)
{
	struct dns *d = xcalloc(1, sizeof(*d));

	d->node = xstrdup(node);
	d->dir = xstrdup(dir);
	d->hosts = xasprintf("%s/hosts", dir);
	d->pid_file = xasprintf("%s/dnsmasq.pid", dir);
	d->log_file = xasprintf("%s/dnsmasq.log", dir);
	d->dirty = true;
	d->backoff_ms = DNS_BACKOFF_MIN_MS;
	if (mkdir_p(dir, 0700) < 0)
		fprintf(stderr, "clusterfs agent: %s: %s\n", dir, strerror(errno));
	return d;
}

void dns_changed(struct dns *d)
{
	d->dirty = true;
}

/* ---- the names ---- */

/* Whether s is a DNS label as Kubernetes names are: [a-z0-9-], at most 63. */
static bool dns_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n && n <= 63 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n &&
	       s[0] != '-' && s[n - 1] != '-';
}

static bool ip_clean(const char *s, char out[INET_ADDRSTRLEN])
{
	struct in_addr in;
	return s && inet_pton(AF_INET, s, &in) == 1 &&
	       inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN);
}

struct names {
	struct strbuf out;
	const struct kind *ep_kind;
};

/* A headless Service's names: its ready endpoint addresses, each once. */
static void headless_names(struct names *s, const char *fqdn, const struct ynode *eps)
{
	const struct ynode *subsets = y_get(eps, "subsets");
	struct strbuf seen = {0};

	for (size_t i = 0; subsets && subsets->type == Y_SEQ && i < subsets->n; i++) {
		const struct ynode *addrs = y_get(subsets->v[i], "addresses");
		for (size_t j = 0; addrs && addrs->type == Y_SEQ && j < addrs->n; j++) {
			char ip[INET_ADDRSTRLEN], tag[INET_ADDRSTRLEN + 2];
			if (!ip_clean(y_path_str(addrs->v[j], "ip"), ip))
				continue;
			snprintf(tag, sizeof(tag), " %s ", ip);
			if (seen.buf && strstr(seen.buf, tag))
				continue;
			sb_puts(&seen, tag);
			sb_printf(&s->out, "%s\t%s\n", ip, fqdn);
		}
	}
	sb_free(&seen);
}

static void service_names(struct ctl *c, const char *ns, const char *name, const struct ynode *svc,
			  void *arg)
{
	struct names *s = arg;
	const char *type = y_path_str(svc, "spec.type");
	const char *cip = y_path_str(svc, "spec.clusterIP");
	char ip[INET_ADDRSTRLEN];

	if ((type && !strcmp(type, "ExternalName")) || !dns_label(ns) || !dns_label(name))
		return;
	cleanup_free char *fqdn = xasprintf("%s.%s." DNS_DOMAIN, name, ns);
	if (cip && !strcmp(cip, "None"))
		headless_names(s, fqdn, ctl_get(c, s->ep_kind, ns, name));
	else if (ip_clean(cip, ip))
		sb_printf(&s->out, "%s\t%s\n", ip, fqdn);
}

/* The hosts file for the services in c's cache; caller frees. */
static char *hosts_text(struct ctl *c)
{
	struct names s = {.ep_kind = kind_by_plural("endpoints")};

	sb_puts(&s.out, "# Services of the cluster (clusterfs agent); rewritten on change.\n");
	ctl_each(c, kind_by_plural("services"), NULL, service_names, &s);
	return sb_steal(&s.out, NULL);
}

/* ---- dnsmasq ---- */

/* Waits up to ms for pid (not our child) to end; true when it did. */
static bool wait_gone(pid_t pid, int ms)
{
	int fd = proc_pidfd(pid);
	struct pollfd p = {fd, POLLIN, 0};
	bool gone = fd < 0 || poll(&p, 1, ms) > 0;

	if (fd >= 0)
		close(fd);
	return gone;
}

/* A dnsmasq left by an agent before us (its pid file, its command line
 * naming that file) is stopped: we start ours. */
static void replace_leftover(struct dns *d)
{
	cleanup_free char *pid_text = file_get(d->pid_file, 64, NULL);
	pid_t pid = pid_text ? (pid_t)atoi(pid_text) : 0;
	size_t len = 0;

	if (pid <= 0)
		return;
	cleanup_free char *cmd_path = xasprintf("/proc/%d/cmdline", (int)pid);
	cleanup_free char *cmd = file_get(cmd_path, 65536, &len);
	for (size_t i = 0; cmd && i < len; i++)
		if (!cmd[i])
			cmd[i] = ' ';
	if (!cmd || !strstr(cmd, "dnsmasq") || !strstr(cmd, d->pid_file))
		return;
	fprintf(stderr, "clusterfs agent: dns: replacing the dnsmasq left running (pid %d)\n",
		(int)pid);
	kill(pid, SIGTERM);
	if (!wait_gone(pid, 1000)) {
		kill(pid, SIGKILL);
		wait_gone(pid, 1000);
	}
}

/* In the child: nothing allocated after fork (other threads may have
 * held the allocator's lock), the signal mask the agent's thread had
 * cleared, no descriptor of the agent's kept. */
static void dns_exec(const char *const argv[])
{
	sigset_t none;
	int null = open("/dev/null", O_RDWR);

	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (null >= 0)
		dup2(null, 0);
	close_range(3, ~0u, 0);
	execvp(argv[0], (char *const *)argv);
	dprintf(2, "clusterfs agent: dns: dnsmasq: %s\n", strerror(errno));
	_exit(127);
}

static void dns_start(struct dns *d, int64_t now)
{
	cleanup_free char *listen = xasprintf("--listen-address=%s", d->server);
	cleanup_free char *hosts = xasprintf("--addn-hosts=%s", d->hosts);
	cleanup_free char *pid_file = xasprintf("--pid-file=%s", d->pid_file);
	cleanup_free char *log = xasprintf("--log-facility=%s", d->log_file);
	const char *argv[] = {"dnsmasq",
			      "--keep-in-foreground",
			      "--conf-file=/dev/null",
			      listen,
			      "--bind-dynamic",
			      "--port=53",
			      "--no-resolv",
			      "--no-hosts",
			      "--no-poll",
			      hosts,
			      "--local=/cluster.local/",
			      "--no-negcache",
			      "--user=root",
			      pid_file,
			      log,
			      NULL};

	if (!d->leftover_checked) {
		replace_leftover(d);
		d->leftover_checked = true;
	}
	pid_t pid = fork();
	if (pid == 0)
		dns_exec(argv);
	if (pid < 0) {
		fprintf(stderr, "clusterfs agent: dns: fork: %s\n", strerror(errno));
		d->retry_at = now + d->backoff_ms;
		return;
	}
	d->pid = pid;
	d->started_at = now;
}

/* Reaps our dnsmasq when it ended; true when it still runs. */
static bool dns_running(struct dns *d, int64_t now)
{
	int status;

	if (!d->pid)
		return false;
	if (waitpid(d->pid, &status, WNOHANG) != d->pid)
		return true;
	if (now - d->started_at >= DNS_HEALTHY_MS)
		d->backoff_ms = DNS_BACKOFF_MIN_MS;
	fprintf(stderr, "clusterfs agent: dns: dnsmasq (pid %d) %s %d; again in %d ms (see %s)\n",
		(int)d->pid, WIFEXITED(status) ? "exited with" : "was killed by signal",
		WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), d->backoff_ms,
		d->log_file);
	d->pid = 0;
	d->retry_at = now + d->backoff_ms;
	d->backoff_ms =
		d->backoff_ms * 2 > DNS_BACKOFF_MAX_MS ? DNS_BACKOFF_MAX_MS : d->backoff_ms * 2;
	return false;
}

static void dns_stop(struct dns *d)
{
	int status;

	if (!d->pid)
		return;
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid)
			goto gone;
		usleep(10000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
gone:
	unlink(d->pid_file);
	d->pid = 0;
}

static void dns_write(struct dns *d, struct ctl *c)
{
	cleanup_free char *text = hosts_text(c);
	int r;

	d->dirty = false;
	if (d->written && !strcmp(d->written, text))
		return;
	if ((r = file_put(d->hosts, text, strlen(text), 0644)) < 0) {
		fprintf(stderr, "clusterfs agent: dns: %s: %s\n", d->hosts, strerror(-r));
		d->dirty = true;
		return;
	}
	free(d->written);
	d->written = xstrdup(text);
	if (d->pid)
		kill(d->pid, SIGHUP);
}

void dns_tick(struct dns *d, struct ctl *c, const char *cidr)
{
	int64_t now = mono_ms();
	char server[INET_ADDRSTRLEN] = "";
	bool running = dns_running(d, now);

	if (d->dirty)
		dns_write(d, c);
	if (cidr && *cidr && dns_server_of(cidr, server) < 0)
		return;
	if (running && strcmp(server, d->server)) {
		dns_stop(d);
		running = false;
	}
	snprintf(d->server, sizeof(d->server), "%s", server);
	if (!running && *server && d->written && now >= d->retry_at)
		dns_start(d, now);
}

void dns_free(struct dns *d)
{
	if (!d)
		return;
	dns_stop(d);
	free(d->node);
	free(d->dir);
	free(d->hosts);
	free(d->pid_file);
	free(d->log_file);
	free(d->written);
	free(d);
}
