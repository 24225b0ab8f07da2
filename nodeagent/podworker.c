/*
 * podworker.c: one thread per pod, making it run as its spec says.
 *
 * The loop: set up the sandbox (namespace, files, volumes; the CNI plugins
 * wire the namespace on a thread of their own meanwhile, and the first
 * container is created but started only once they are done); run the
 * init containers one after another to completion; start the containers;
 * then watch them (a pidfd per conmon, readable when the container has
 * ended and its exit code is written), restart them by the restart policy
 * with Kubernetes' back-off (the first restart at once, then 10 s
 * doubling to 5 min), run their probes, and copy their logs to the view.
 * Asked to stop, it stops the containers gracefully (SIGTERM, the grace
 * period, SIGKILL) and releases everything the pod held.
 *
 * Each container's progress is kept in DIR/ctr/NAME/state, so that a new
 * agent's worker adopts what it finds: a container whose conmon still
 * runs is running, one that ended meanwhile is handled as just ended.
 */
#define _GNU_SOURCE
#include "runtime-crun-internal.h"
#include "object.h"
#include "proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BACKOFF_MS (300 * 1000)
#define LOG_PERIOD_MS  500
/* How often configMap and secret volumes are compared with their objects
 * (kubelet's own delay is up to a minute). */
#define VOLUME_PERIOD_MS 10000

enum worker_order { W_RUN, W_STOP, W_DETACH };

static enum worker_order order(struct crun_pod *p)
{
	enum worker_order o;
	pthread_mutex_lock(&p->rt->lock);
	o = p->rt->detaching ? W_DETACH : p->stop ? W_STOP : W_RUN;
	pthread_mutex_unlock(&p->rt->lock);
	return o;
}

static void now_str(char out[32])
{
	fmt_time(now_ns(), out);
}

/* Sets a container's waiting or terminated reason; called with rt->lock held. */
static void set_reason(struct crun_ctr *c, const char *reason, const char *message)
{
	char *r = reason ? xstrdup(reason) : NULL,
	     *m = message && *message ? xstrdup(message) : NULL;

	free(c->reason);
	free(c->message);
	c->reason = r;
	c->message = m;
}

static void publish_waiting(struct crun_pod *p, struct crun_ctr *c, const char *reason,
			    const char *message)
{
	pthread_mutex_lock(&p->rt->lock);
	c->state = CTR_WAITING;
	set_reason(c, reason, message);
	pthread_mutex_unlock(&p->rt->lock);
	pod_changed(p);
}

static int64_t backoff_ms(struct crun_pod *p, int fails)
{
	int64_t d = p->rt->cfg.backoff_ms;
	if (fails <= 0)
		return 0;
	for (int i = 1; i < fails && d < MAX_BACKOFF_MS; i++)
		d *= 2;
	return d < MAX_BACKOFF_MS ? d : MAX_BACKOFF_MS;
}

/* ---- what survives the agent: DIR/ctr/NAME/state ---- */

static void state_save(struct crun_pod *p, struct crun_ctr *c)
{
	struct ynode *s = y_map();
	struct strbuf sb = {0};
	cleanup_free char *path = xasprintf("%s/state", c->dir);

	pthread_mutex_lock(&p->rt->lock);
	y_set(s, "restarts", y_int(c->restarts));
	y_set(s, "startedAt", y_str(c->started_at));
	y_set(s, "finishedAt", y_str(c->finished_at));
	y_set(s, "logOffset", y_int(c->log_off));
	y_set(s, "fails", y_int(c->fails));
	if (c->image_id)
		y_set(s, "imageID", y_str(c->image_id));
	if (c->state == CTR_TERMINATED) {
		y_set(s, "exitCode", y_int(c->exit_code));
		y_set(s, "reason", y_str(c->reason ? c->reason : "Error"));
	}
	if (c->last)
		y_set(s, "lastState", y_clone(c->last));
	pthread_mutex_unlock(&p->rt->lock);
	y_emit(s, &sb);
	mkdir_p(c->dir, 0700);
	file_put(path, sb.buf, sb.len, 0600);
	sb_free(&sb);
	y_free(s);
}

static int64_t int_of(const struct ynode *m, const char *key)
{
	const struct ynode *v = y_get(m, key);
	return v && v->type == Y_INT ? v->i : 0;
}

/* Reads back what an earlier worker saved; false when there is nothing. */
static bool state_load(struct crun_ctr *c, struct ynode **out)
{
	cleanup_free char *path = xasprintf("%s/state", c->dir);
	struct err e = {0};

	*out = NULL;
	return obj_load(path, out, &e) == 0;
}

/* ---- logs: conmon's k8s-file lines to pods/NAME/logs/CONTAINER ---- */

/* Appends the text of the complete lines in buf to out; returns the bytes used. */
static size_t log_lines(const char *buf, size_t len, struct strbuf *out)
{
	size_t used = 0;

	for (;;) {
		const char *line = buf + used, *nl = memchr(line, '\n', len - used);
		if (!nl)
			return used;
		/* TIME STREAM F|P TEXT */
		const char *p = line;
		for (int field = 0; field < 3 && p < nl; field++) {
			const char *sp = memchr(p, ' ', (size_t)(nl - p));
			if (!sp) {
				p = nl;
				break;
			}
			if (field == 2)
				break;
			p = sp + 1;
		}
		bool partial = p < nl && *p == 'P';
		const char *text = p + 2 <= nl ? p + 2 : nl;
		sb_append(out, text, (size_t)(nl - text));
		if (!partial)
			sb_puts(out, "\n");
		used = (size_t)(nl - buf) + 1;
	}
}

static void ship_logs(struct crun_pod *p, struct crun_ctr *c)
{
	cleanup_free char *path = xasprintf("%s/log", c->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct strbuf out = {0};
	struct stat st;
	char buf[65536];

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size < c->log_off)
		c->log_off = 0; /* conmon rotated it */
	off_t start = c->log_off;
	for (;;) {
		ssize_t r = pread(fd, buf, sizeof(buf), c->log_off);
		if (r <= 0)
			break;
		size_t used = log_lines(buf, (size_t)r, &out);
		if (!used && r == (ssize_t)sizeof(buf))
			used = (size_t)r; /* a line longer than the buffer: cut it */
		if (!used)
			break;
		c->log_off += (off_t)used;
	}
	close(fd);
	if (out.len) {
		cleanup_free char *dst = xasprintf("%s/namespaces/%s/pods/%s/logs/%s",
						   p->rt->cfg.view, p->ns, p->name, c->name);
		int w = open(dst, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (w < 0 || write(w, out.buf, out.len) < 0)
			fprintf(stderr, "clusterfs agent: %s: %s\n", dst, strerror(errno));
		if (w >= 0)
			close(w);
	}
	sb_free(&out);
	if (c->log_off != start)
		state_save(p, c);
}

/* ---- one container's start and end ---- */

static const char *restart_policy(struct crun_pod *p)
{
	const char *r = y_path_str(p->pod, "spec.restartPolicy");
	return r ? r : "Always";
}

static void probes_arm(struct crun_ctr *c)
{
	int64_t now = mono_ms();
	struct probe *all[] = {&c->live, &c->readiness, &c->startup};
	const char *keys[] = {"livenessProbe", "readinessProbe", "startupProbe"};

	for (int i = 0; i < 3; i++) {
		const struct ynode *spec = y_get(c->spec, keys[i]);
		*all[i] = (struct probe){.spec = spec && spec->type == Y_MAP ? spec : NULL};
		all[i]->next = now + int_of(spec, "initialDelaySeconds") * 1000;
	}
}

/* Kills what a failed start left. */
static void ctr_clean(struct crun_pod *p, struct crun_ctr *c)
{
	cleanup_free char *sockets = xasprintf("%s/%s", p->rt->env.sock_dir, c->id);

	ctr_delete(&p->rt->env, c->id);
	ctr_unmount(c->dir);
	rm_rf(sockets); /* conmon's attach socket, which it leaves */
}

static void start_failed(struct crun_pod *p, struct crun_ctr *c, const char *reason,
			 const struct err *e)
{
	c->fails++;
	c->retry_at = mono_ms() + backoff_ms(p, c->fails);
	fprintf(stderr, "clusterfs agent: pods/%s/%s: container %s: %s\n", p->ns, p->name, c->name,
		e->msg);
	publish_waiting(p, c, reason, e->msg);
}

static int write_config(struct crun_pod *p, struct crun_ctr *c, const struct image *img,
			struct err *e)
{
	struct ynode *cfg = ctr_config(p, c, img, e);
	struct strbuf sb = {0};
	cleanup_free char *path = xasprintf("%s/config.json", c->dir);
	int r;

	if (!cfg)
		return -EINVAL;
	y_emit_json(cfg, &sb);
	r = file_put(path, sb.buf, sb.len, 0600);
	sb_free(&sb);
	y_free(cfg);
	return r < 0 ? err_set(e, -r, "%s: %s", path, strerror(-r)) : 0;
}

/* The pod's host ports as CNI port mappings (a JSON array), or NULL when
 * it has none. The object layer checked the ports' ranges; the protocol
 * and hostIP are checked again here because they end up in JSON. */
static char *port_mappings(const struct crun_pod *p)
{
	const struct ynode *ctrs = y_path(p->pod, "spec.containers");
	struct strbuf sb = {0};

	for (size_t i = 0; ctrs && ctrs->type == Y_SEQ && i < ctrs->n; i++) {
		const struct ynode *ports = y_get(ctrs->v[i], "ports");
		for (size_t j = 0; ports && ports->type == Y_SEQ && j < ports->n; j++) {
			const struct ynode *hp = y_get(ports->v[j], "hostPort");
			const struct ynode *cp = y_get(ports->v[j], "containerPort");
			const char *proto = y_path_str(ports->v[j], "protocol");
			const char *host_ip = y_path_str(ports->v[j], "hostIP");
			struct in_addr a;
			if (!hp || hp->type != Y_INT || hp->i <= 0 || !cp || cp->type != Y_INT)
				continue;
			if (!proto || !strcmp(proto, "TCP"))
				proto = "tcp";
			else if (!strcmp(proto, "UDP"))
				proto = "udp";
			else if (!strcmp(proto, "SCTP"))
				proto = "sctp";
			else
				continue;
			if (host_ip && (!*host_ip || inet_pton(AF_INET, host_ip, &a) != 1))
				host_ip = NULL;
			sb_puts(&sb, sb.len ? "," : "[");
			sb_printf(&sb,
				  "{\"hostPort\":%lld,\"containerPort\":%lld,\"protocol\":\"%s\"",
				  (long long)hp->i, (long long)cp->i, proto);
			if (host_ip)
				sb_printf(&sb, ",\"hostIP\":\"%s\"", host_ip);
			sb_puts(&sb, "}");
		}
	}
	if (!sb.len)
		return NULL;
	sb_puts(&sb, "]");
	return sb.buf;
}

static void *net_main(void *arg)
{
	struct crun_pod *p = arg;
	cleanup_free char *ports = port_mappings(p);

	p->net_r = cni_wire(&p->rt->cni, p->netns, p->cidr, p->ip, ports, &p->net_err);
	__atomic_store_n(&p->net_ended, true, __ATOMIC_RELEASE);
	pod_wake(p); /* for net_done() */
	return NULL;
}

/* The wiring has ended (joined, or done by an earlier agent): once it
 * succeeded, the pod's address is reported, as Kubernetes reports a
 * pod's IP only once its sandbox has its network. */
static void net_joined(struct crun_pod *p)
{
	p->net_busy = false;
	if (!p->sandbox || p->net_r < 0 || p->wired)
		return;
	pthread_mutex_lock(&p->rt->lock);
	p->wired = true;
	pthread_mutex_unlock(&p->rt->lock);
	if (!p->host_net) { /* for a later agent: see adopt() */
		cleanup_free char *mark = xasprintf("%s/wired", p->dir);
		file_put(mark, "", 0, 0600);
	}
	pod_changed(p);
}

/* The namespace's wiring is to be undone: a later agent must not take it
 * for done. */
static void net_unmark(struct crun_pod *p)
{
	cleanup_free char *mark = xasprintf("%s/wired", p->dir);
	unlink(mark);
}

/* Waits for the namespace's wiring: 0, or its error in e. */
static int net_wait(struct crun_pod *p, struct err *e)
{
	if (p->net_busy)
		pthread_join(p->net, NULL);
	net_joined(p);
	if (p->net_r < 0)
		*e = p->net_err;
	return p->net_r;
}

/* Joins the wiring once it has ended, without waiting for it; a sandbox
 * with nothing to wire (host networking) is wired at once. */
static void net_done(struct crun_pod *p)
{
	if (p->net_busy && !__atomic_load_n(&p->net_ended, __ATOMIC_ACQUIRE))
		return;
	if (p->net_busy)
		pthread_join(p->net, NULL); /* it is returning */
	net_joined(p);
}

/* The namespace and the pod's files; the wiring is started, not waited
 * for: it takes tens of milliseconds of plugins, which the first
 * container's image, overlay and crun create overlap. */
static int sandbox_up(struct crun_pod *p, struct err *e)
{
	int r;

	if ((r = mkdir_p(p->dir, 0700)) < 0)
		return err_set(e, -r, "%s: %s", p->dir, strerror(-r));
	if ((r = pod_files(p, e)) < 0)
		return r;
	p->net_r = 0;
	if (p->host_net)
		return 0;
	/* Whatever wiring comes now is not done until it says so: a mark
	 * left from before (a namespace gone with a reboot) must not vouch
	 * for it. */
	net_unmark(p);
	if (p->net_stale) { /* DEL (namespace and all) is safe to repeat */
		cleanup_free char *ports = port_mappings(p);
		struct err de = {0};
		cni_del(&p->rt->cni, p->netns, p->cidr, ports, &de);
		p->net_stale = false;
	}
	if ((r = cni_netns_add(p->netns, e)) < 0)
		return r;
	p->net_ended = false;
	if (pthread_create(&p->net, NULL, net_main, p) == 0)
		p->net_busy = true;
	else
		net_main(p);
	return 0;
}

/* The sandbox could not be made: said on every container, tried again in 5 s. */
static void sandbox_failed(struct crun_pod *p, const struct err *e)
{
	fprintf(stderr, "clusterfs agent: pods/%s/%s: sandbox: %s\n", p->ns, p->name, e->msg);
	for (size_t i = 0; i < p->nctrs; i++)
		publish_waiting(p, &p->ctrs[i], p->ctrs[i].reason, e->msg);
	p->sandbox = false;
	p->net_stale = true;
	net_unmark(p);
	p->sandbox_retry = mono_ms() + 5000;
}

static void launch(struct crun_pod *p, struct crun_ctr *c)
{
	struct image img = {0};
	struct err e = {0};
	pid_t conmon = 0;
	int r;

	if (!p->sandbox) /* its wiring failed on an earlier container's start */
		return;
	r = image_get(p->rt->images,
		      y_path_str(c->spec, "image") ? y_path_str(c->spec, "image") : "",
		      y_path_str(c->spec, "imagePullPolicy"), &img, &e);
	if (r < 0) {
		start_failed(p, c, r == -ENOENT ? "ErrImageNeverPull" : "ErrImagePull", &e);
		return;
	}
	cleanup_free char *log = xasprintf("%s/log", c->dir);
	if (access(c->dir, F_OK) == 0) { /* an earlier run's: its last words, then away */
		ship_logs(p, c);
		ctr_clean(p, c);
	}
	unlink(log);
	c->log_off = 0;
	if (mkdir_p(c->dir, 0700) < 0 || write_config(p, c, &img, &e) < 0) {
		start_failed(p, c, "CreateContainerConfigError", &e);
		image_clear(&img);
		return;
	}
	if ((r = ctr_mount(c->dir, img.rootfs, &e)) < 0 ||
	    (r = ctr_create(&p->rt->env, c->dir, c->id, &conmon, &e)) < 0) {
		ctr_clean(p, c);
		start_failed(p, c, conmon ? "RunContainerError" : "CreateContainerError", &e);
		image_clear(&img);
		return;
	}
	/* Created in the pod's namespace; it runs its command only once the
	 * namespace is wired. */
	if (net_wait(p, &e) < 0) {
		ctr_clean(p, c);
		image_clear(&img);
		sandbox_failed(p, &e);
		return;
	}
	if ((r = ctr_start(&p->rt->env, c->id, &e)) < 0) {
		ctr_clean(p, c);
		start_failed(p, c, conmon ? "RunContainerError" : "CreateContainerError", &e);
		image_clear(&img);
		return;
	}
	c->conmon = conmon;
	c->pidfd = proc_pidfd(conmon);
	c->run_since = mono_ms();
	probes_arm(c);
	pthread_mutex_lock(&p->rt->lock);
	if (c->started_at[0])
		c->restarts++;
	c->state = CTR_RUNNING;
	now_str(c->started_at);
	c->finished_at[0] = '\0';
	set_reason(c, NULL, NULL);
	free(c->image_id);
	c->image_id = xstrdup(img.id);
	c->started = !c->startup.spec;
	c->ready = !c->readiness.spec && !c->init;
	pthread_mutex_unlock(&p->rt->lock);
	image_clear(&img);
	state_save(p, c);
	pod_changed(p);
}

/* The container ended (conmon is gone): its exit code, its logs, its record. */
static void ended(struct crun_pod *p, struct crun_ctr *c)
{
	int code = ctr_exit_code(c->dir, c->id);
	bool oom = ctr_oom_killed(c->id);

	if (c->pidfd >= 0)
		close(c->pidfd);
	c->pidfd = -1;
	c->conmon = 0;
	ship_logs(p, c);
	ctr_clean(p, c);
	if (mono_ms() - c->run_since > 2 * MAX_BACKOFF_MS)
		c->fails = 0;
	pthread_mutex_lock(&p->rt->lock);
	c->state = CTR_TERMINATED;
	c->exit_code = code < 0 ? 137 : code;
	set_reason(c,
		   oom	       ? "OOMKilled"
		   : code == 0 ? "Completed"
			       : "Error",
		   code < 0 ? "the exit code was lost" : NULL);
	now_str(c->finished_at);
	c->ready = false;
	c->started = false;
	pthread_mutex_unlock(&p->rt->lock);
	state_save(p, c);
	pod_changed(p);
}

static bool wants_restart(struct crun_pod *p, const struct crun_ctr *c)
{
	const char *policy = restart_policy(p);

	if (!strcmp(policy, "Never"))
		return false;
	return c->exit_code != 0 || (!c->init && !strcmp(policy, "Always"));
}

/* A terminated container that will run again: lastState, then back-off. */
static void plan_restart(struct crun_pod *p, struct crun_ctr *c)
{
	int64_t delay = backoff_ms(p, c->restarts);
	char msg[512];

	c->fails++;
	c->retry_at = mono_ms() + delay;
	snprintf(msg, sizeof(msg), "back-off %llds restarting failed container=%s pod=%s_%s(%s)",
		 (long long)(delay / 1000), c->name, p->name, p->ns, p->uid);
	pthread_mutex_lock(&p->rt->lock);
	y_free(c->last);
	c->last = y_map();
	struct ynode *t = y_map();
	y_set(t, "exitCode", y_int(c->exit_code));
	y_set(t, "reason", y_str(c->reason ? c->reason : "Error"));
	y_set(t, "startedAt", y_str(c->started_at));
	y_set(t, "finishedAt", y_str(c->finished_at));
	char id[32];
	snprintf(id, sizeof(id), "crun://%s", c->id);
	y_set(t, "containerID", y_str(id));
	y_set(c->last, "terminated", t);
	c->state = CTR_WAITING;
	set_reason(c, delay ? "CrashLoopBackOff" : "ContainerCreating", delay ? msg : NULL);
	pthread_mutex_unlock(&p->rt->lock);
	state_save(p, c);
	pod_changed(p);
}

/* Stops c: SIGTERM, up to grace_s seconds, SIGKILL. Blocks the worker. */
static void stop_ctr(struct crun_pod *p, struct crun_ctr *c, int grace_s)
{
	if (c->state != CTR_RUNNING || c->pidfd < 0)
		return;
	struct pollfd pf = {c->pidfd, POLLIN, 0};
	ctr_kill(&p->rt->env, c->id, SIGTERM);
	if (poll(&pf, 1, grace_s * 1000) <= 0) {
		ctr_kill(&p->rt->env, c->id, SIGKILL);
		poll(&pf, 1, 10000);
	}
	ended(p, c);
}

/* ---- probes ---- */

static void probe_step(struct crun_pod *p, struct crun_ctr *c, struct probe *pr, int64_t *next)
{
	int64_t now = mono_ms();

	if (!pr->spec)
		return;
	if (pr->next > now) {
		if (pr->next < *next)
			*next = pr->next;
		return;
	}
	int ok = probe_run(p, c, pr->spec);
	pr->next = now + int_of(pr->spec, "periodSeconds") * 1000;
	if (pr->next <= now)
		pr->next = now + 10000;
	if (pr->next < *next)
		*next = pr->next;
	if (ok) {
		pr->successes++;
		pr->failures = 0;
	} else {
		pr->failures++;
		pr->successes = 0;
	}
	int64_t fthr = int_of(pr->spec, "failureThreshold"),
		sthr = int_of(pr->spec, "successThreshold");
	bool failed = pr->failures >= (fthr > 0 ? fthr : 3);
	bool succeeded = pr->successes >= (sthr > 0 ? sthr : 1);

	if (pr == &c->readiness && (failed || succeeded) && c->ready != succeeded) {
		pthread_mutex_lock(&p->rt->lock);
		c->ready = succeeded;
		pthread_mutex_unlock(&p->rt->lock);
		pod_changed(p);
	} else if (pr == &c->startup && succeeded && !c->started) {
		pthread_mutex_lock(&p->rt->lock);
		c->started = true;
		pthread_mutex_unlock(&p->rt->lock);
		pod_changed(p);
	} else if (pr != &c->readiness && failed) {
		fprintf(stderr, "clusterfs agent: pods/%s/%s: container %s failed its %s probe\n",
			p->ns, p->name, c->name, pr == &c->live ? "liveness" : "startup");
		int64_t g = int_of(pr->spec, "terminationGracePeriodSeconds");
		stop_ctr(p, c, g > 0 ? (int)g : p->grace_s);
	}
}

static void probes_step(struct crun_pod *p, struct crun_ctr *c, int64_t *next)
{
	if (c->state != CTR_RUNNING)
		return;
	if (!c->started) {
		probe_step(p, c, &c->startup, next);
		return;
	}
	probe_step(p, c, &c->live, next);
	if (c->state == CTR_RUNNING)
		probe_step(p, c, &c->readiness, next);
}

/* ---- the pod ---- */

static void reap(struct crun_pod *p)
{
	for (size_t i = 0; i < p->nctrs; i++) {
		struct crun_ctr *c = &p->ctrs[i];
		struct pollfd pf = {c->pidfd, POLLIN, 0};
		if (c->state == CTR_RUNNING && (c->pidfd < 0 || poll(&pf, 1, 0) > 0))
			ended(p, c);
	}
}

/* When the last failed start was: its retry was planned one back-off later. */
static int64_t pull_failed_at(struct crun_pod *p, const struct crun_ctr *c)
{
	return c->retry_at - backoff_ms(p, c->fails);
}

/* Runs, restarts or waits for c; true when it is done for good. */
static bool ctr_step(struct crun_pod *p, struct crun_ctr *c, int64_t *next)
{
	int64_t now = mono_ms();

	if (c->state == CTR_TERMINATED) {
		if (!wants_restart(p, c))
			return true;
		plan_restart(p, c);
	}
	if (c->state == CTR_WAITING) {
		if (c->retry_at <= now)
			launch(p, c);
		else if (c->reason && !strcmp(c->reason, "ErrImagePull") &&
			 now - pull_failed_at(p, c) > 1000) /* as a kubelet's next sync would */
			publish_waiting(p, c, "ImagePullBackOff", c->message);
		if (c->state == CTR_WAITING && c->retry_at < *next)
			*next = c->retry_at > now ? c->retry_at : now + 1000;
	}
	probes_step(p, c, next);
	return false;
}

static const char *phase_of(struct crun_pod *p)
{
	size_t done = 0, failed = 0, never = 0;

	if (!p->initialized) {
		for (size_t i = 0; i < p->ninit; i++)
			if (p->ctrs[i].state == CTR_TERMINATED && p->ctrs[i].exit_code &&
			    !wants_restart(p, &p->ctrs[i]))
				return "Failed";
		return "Pending";
	}
	for (size_t i = p->ninit; i < p->nctrs; i++) {
		struct crun_ctr *c = &p->ctrs[i];
		if (c->state == CTR_TERMINATED && !wants_restart(p, c)) {
			done++;
			failed += c->exit_code != 0;
		} else if (!c->started_at[0])
			never++;
	}
	if (done == p->nctrs - p->ninit)
		return failed ? "Failed" : "Succeeded";
	return never ? "Pending" : "Running";
}

static void set_phase(struct crun_pod *p)
{
	const char *phase = phase_of(p);
	bool changed;

	pthread_mutex_lock(&p->rt->lock);
	changed = strcmp(phase, p->phase) != 0;
	p->phase = phase;
	pthread_mutex_unlock(&p->rt->lock);
	if (changed)
		pod_changed(p);
}

static void init_step(struct crun_pod *p, int64_t *next)
{
	for (size_t i = 0; i < p->ninit; i++) {
		struct crun_ctr *c = &p->ctrs[i];
		if (c->state == CTR_TERMINATED && c->exit_code == 0)
			continue;
		ctr_step(p, c, next);
		return;
	}
	pthread_mutex_lock(&p->rt->lock);
	p->initialized = true;
	for (size_t i = p->ninit; i < p->nctrs; i++)
		if (p->ctrs[i].state == CTR_WAITING && p->ctrs[i].reason &&
		    !strcmp(p->ctrs[i].reason, "PodInitializing"))
			set_reason(&p->ctrs[i], "ContainerCreating", NULL);
	pthread_mutex_unlock(&p->rt->lock);
	pod_changed(p);
}

static void step(struct crun_pod *p, int64_t *next)
{
	int64_t now = mono_ms();

	if (!p->sandbox) {
		struct err e = {0};
		if (p->sandbox_retry > now) {
			*next = p->sandbox_retry;
			return;
		}
		if (sandbox_up(p, &e) < 0) {
			sandbox_failed(p, &e);
			*next = p->sandbox_retry;
			return;
		}
		p->sandbox = true;
	}
	net_done(p);
	reap(p);
	if (!p->initialized)
		init_step(p, next);
	if (p->initialized)
		for (size_t i = p->ninit; i < p->nctrs; i++)
			ctr_step(p, &p->ctrs[i], next);
	if (!p->sandbox && p->sandbox_retry < *next) /* its wiring failed */
		*next = p->sandbox_retry;
	set_phase(p);
}

/* Sleeps until next, a container's end or a wake-up. */
static void wait_events(struct crun_pod *p, int64_t next)
{
	struct pollfd fds[p->nctrs + 1];
	nfds_t n = 0;
	char buf[64];
	int64_t left = next - mono_ms();

	fds[n++] = (struct pollfd){p->wake[0], POLLIN, 0};
	for (size_t i = 0; i < p->nctrs; i++)
		if (p->ctrs[i].state == CTR_RUNNING && p->ctrs[i].pidfd >= 0)
			fds[n++] = (struct pollfd){p->ctrs[i].pidfd, POLLIN, 0};
	poll(fds, n, left > 0 ? (int)left : 0);
	while (read(p->wake[0], buf, sizeof(buf)) > 0)
		;
}

static void stop_all(struct crun_pod *p, int grace_s)
{
	int64_t deadline = mono_ms() + grace_s * 1000LL;

	for (size_t i = 0; i < p->nctrs; i++)
		if (p->ctrs[i].state == CTR_RUNNING)
			ctr_kill(&p->rt->env, p->ctrs[i].id, SIGTERM);
	for (;;) {
		reap(p);
		bool running = false;
		for (size_t i = 0; i < p->nctrs; i++)
			running |= p->ctrs[i].state == CTR_RUNNING;
		int64_t left = deadline - mono_ms();
		if (!running || left <= 0)
			break;
		wait_events(p, mono_ms() + (left < 1000 ? left : 1000));
	}
	for (size_t i = 0; i < p->nctrs; i++)
		stop_ctr(p, &p->ctrs[i], 0);
}

static void teardown(struct crun_pod *p)
{
	struct err e = {0};
	cleanup_free char *ports = port_mappings(p);
	int r;

	net_wait(p, &e);
	net_unmark(p);
	for (size_t i = 0; i < p->nctrs; i++)
		if (access(p->ctrs[i].dir, F_OK) == 0)
			ctr_clean(p, &p->ctrs[i]);
	if (p->cidr[0] && !p->host_net && cni_del(&p->rt->cni, p->netns, p->cidr, ports, &e) < 0)
		fprintf(stderr, "clusterfs agent: pods/%s/%s: %s\n", p->ns, p->name, e.msg);
	if ((r = rm_rf(p->dir)) < 0)
		fprintf(stderr, "clusterfs agent: %s: %s\n", p->dir, strerror(-r));
}

/* Takes over what an earlier agent's worker left. */
static void adopt(struct crun_pod *p)
{
	cleanup_free char *netns = xasprintf("/run/netns/%s", p->netns);

	for (size_t i = 0; i < p->nctrs; i++) {
		struct crun_ctr *c = &p->ctrs[i];
		struct ynode *s;
		if (!state_load(c, &s))
			continue;
		c->restarts = (int)int_of(s, "restarts");
		c->fails = (int)int_of(s, "fails");
		c->log_off = int_of(s, "logOffset");
		snprintf(c->started_at, sizeof(c->started_at), "%s",
			 y_path_str(s, "startedAt") ? y_path_str(s, "startedAt") : "");
		snprintf(c->finished_at, sizeof(c->finished_at), "%s",
			 y_path_str(s, "finishedAt") ? y_path_str(s, "finishedAt") : "");
		if (y_path_str(s, "imageID"))
			c->image_id = xstrdup(y_path_str(s, "imageID"));
		if (y_get(s, "lastState"))
			c->last = y_clone(y_get(s, "lastState"));
		if ((c->conmon = ctr_monitor(c->dir)) > 0) {
			c->pidfd = proc_pidfd(c->conmon);
			c->state = CTR_RUNNING;
			c->run_since = mono_ms();
			probes_arm(c);
			c->started = !c->startup.spec;
			c->ready = !c->readiness.spec && !c->init;
			set_reason(c, NULL, NULL);
		} else if (y_get(s, "exitCode")) {
			c->state = CTR_TERMINATED;
			c->exit_code = (int)int_of(s, "exitCode");
			set_reason(c, y_path_str(s, "reason"), NULL);
		} else if (c->started_at[0]) {
			c->state = CTR_RUNNING; /* ended while no agent watched: reap() sees it */
			c->pidfd = -1;
		}
		y_free(s);
	}
	/* A container ran, or the wiring said it was done (the wired mark):
	 * the namespace is wired, though no container may have started yet
	 * (an image still pulling). Otherwise the earlier agent's wiring
	 * failed or was cut short, and is done again. */
	cleanup_free char *mark = xasprintf("%s/wired", p->dir);
	bool was_wired = access(mark, F_OK) == 0;
	for (size_t i = 0; i < p->nctrs; i++)
		was_wired |= p->ctrs[i].started_at[0] != '\0';
	bool has_netns = !p->host_net && access(netns, F_OK) == 0;
	p->sandbox = was_wired && (p->host_net || has_netns) && access(p->dir, F_OK) == 0;
	p->net_stale = !p->sandbox && has_netns;
	pthread_mutex_lock(&p->rt->lock);
	p->wired = p->sandbox;
	pthread_mutex_unlock(&p->rt->lock);
	bool inits_done = true;
	for (size_t i = 0; i < p->ninit; i++)
		inits_done &= p->ctrs[i].state == CTR_TERMINATED && p->ctrs[i].exit_code == 0;
	p->initialized = inits_done;
}

/* pod.yaml and net: enough for a later agent to find and release the pod. */
static void pod_save(struct crun_pod *p)
{
	cleanup_free char *path = xasprintf("%s/pod.yaml", p->dir);
	cleanup_free char *net_path = xasprintf("%s/net", p->dir);
	cleanup_free char *net = xasprintf("%s %s\n", p->ip, p->cidr);
	struct strbuf sb = {0};

	if (access(path, F_OK) == 0)
		return;
	mkdir_p(p->dir, 0700);
	y_emit(p->pod, &sb);
	file_put(path, sb.buf, sb.len, 0600);
	file_put(net_path, net, strlen(net), 0600);
	sb_free(&sb);
}

void *pod_main(void *arg)
{
	struct crun_pod *p = arg;
	enum worker_order o;
	int64_t last_ship = 0, last_volumes = mono_ms();

	adopt(p);
	pod_save(p);
	pod_changed(p);
	while ((o = order(p)) == W_RUN) {
		int64_t now = mono_ms(), next = now + LOG_PERIOD_MS;
		step(p, &next);
		if (now - last_ship >= LOG_PERIOD_MS) {
			for (size_t i = 0; i < p->nctrs; i++)
				if (p->ctrs[i].state == CTR_RUNNING)
					ship_logs(p, &p->ctrs[i]);
			last_ship = now;
		}
		if (p->sandbox && now - last_volumes >= VOLUME_PERIOD_MS) {
			pod_volumes_refresh(p);
			last_volumes = now;
		}
		if (next > now + LOG_PERIOD_MS)
			next = now + LOG_PERIOD_MS;
		wait_events(p, next);
	}
	if (o == W_DETACH) {
		struct err e;
		net_wait(p, &e); /* the wiring finishes: the pod is the next agent's */
		return NULL;
	}
	pthread_mutex_lock(&p->rt->lock);
	int grace = p->grace_s;
	pthread_mutex_unlock(&p->rt->lock);
	stop_all(p, grace);
	teardown(p);
	pthread_mutex_lock(&p->rt->lock);
	p->gone = true;
	pthread_mutex_unlock(&p->rt->lock);
	pod_changed(p);
	return NULL;
}
