/*
 * runtime-crun.c: the table of pods and the agent's side of the runtime.
 *
 * start_pod() makes a record and a worker thread (podworker.c); stop_pod()
 * flags it and answers -EINPROGRESS until the worker has released
 * everything; pod_status() reads what the worker published. Pods live on
 * disk under STATE/pods/UID (pod.yaml, the containers' bundles), so a new
 * agent finds them again: start_pod() of a pod already there adopts it,
 * and sweep() stops those whose pod object is gone.
 */
#define _GNU_SOURCE
#include "runtime-crun-internal.h"
#include "object.h"
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void pod_changed(struct crun_pod *p)
{
	struct crun_rt *rt = p->rt;

	/* Under the lock, so that set_notify(NULL) leaves no call in flight. */
	pthread_mutex_lock(&rt->lock);
	strmap_put(rt->dirty, p->uid, rt);
	if (rt->notify)
		rt->notify(rt->notify_arg);
	pthread_mutex_unlock(&rt->lock);
}

static void add_ctrs(struct crun_pod *p, const char *list, bool init)
{
	const struct ynode *cs = y_path(p->pod, list);

	for (size_t i = 0; cs && cs->type == Y_SEQ && i < cs->n; i++) {
		const char *name = y_path_str(cs->v[i], "name");
		if (!name)
			continue;
		struct crun_ctr *c = &p->ctrs[p->nctrs++];
		c->name = xstrdup(name);
		c->spec = cs->v[i];
		c->init = init;
		ctr_id(p->uid, name, c->id);
		c->dir = xasprintf("%s/ctr/%s", p->dir, name);
		c->pidfd = -1;
		c->reason =
			xstrdup(init || !y_path(p->pod, "spec.initContainers") ? "ContainerCreating"
									       : "PodInitializing");
	}
	if (init)
		p->ninit = p->nctrs;
}

static size_t seq_len(const struct ynode *pod, const char *path)
{
	const struct ynode *s = y_path(pod, path);
	return s && s->type == Y_SEQ ? s->n : 0;
}

static struct crun_pod *pod_new(struct crun_rt *rt, const struct ynode *pod, const char *ip,
				const char *cidr)
{
	struct crun_pod *p = xcalloc(1, sizeof(*p));
	const struct ynode *grace = y_path(pod, "spec.terminationGracePeriodSeconds");

	p->rt = rt;
	p->pod = y_clone(pod);
	p->uid = xstrdup(y_path_str(pod, "metadata.uid"));
	p->ns = xstrdup(y_path_str(pod, "metadata.namespace")
				? y_path_str(pod, "metadata.namespace")
				: "default");
	p->name = xstrdup(y_path_str(pod, "metadata.name") ? y_path_str(pod, "metadata.name") : "");
	p->dir = xasprintf("%s/%s", rt->pods_dir, p->uid);
	snprintf(p->ip, sizeof(p->ip), "%s", ip ? ip : "");
	snprintf(p->cidr, sizeof(p->cidr), "%s", cidr ? cidr : "");
	cni_netns_name(p->uid, p->netns);
	const struct ynode *hn = y_path(pod, "spec.hostNetwork");
	p->host_net = hn && hn->type == Y_BOOL && hn->i;
	p->grace_s = grace && grace->type == Y_INT ? (int)grace->i : 30;
	p->ctrs = xcalloc(seq_len(pod, "spec.initContainers") + seq_len(pod, "spec.containers") + 1,
			  sizeof(*p->ctrs));
	add_ctrs(p, "spec.initContainers", true);
	add_ctrs(p, "spec.containers", false);
	p->phase = "Pending";
	p->wake[0] = p->wake[1] = -1;
	return p;
}

static void pod_free(struct crun_pod *p)
{
	for (size_t i = 0; i < p->nctrs; i++) {
		struct crun_ctr *c = &p->ctrs[i];
		free(c->name);
		free(c->dir);
		free(c->reason);
		free(c->message);
		free(c->image_id);
		y_free(c->last);
		if (c->pidfd >= 0)
			close(c->pidfd);
	}
	free(p->ctrs);
	y_free(p->pod);
	free(p->uid);
	free(p->ns);
	free(p->name);
	free(p->dir);
	if (p->wake[0] >= 0)
		close(p->wake[0]), close(p->wake[1]);
	free(p);
}

/* Starts p's worker and enters it in the table; called with rt->lock held. */
static int pod_launch(struct crun_rt *rt, struct crun_pod *p, struct err *e)
{
	if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		int r = err_set(e, errno, "pipe: %s", strerror(errno));
		pod_free(p);
		return r;
	}
	strmap_put(rt->pods, p->uid, p);
	pthread_create(&p->thread, NULL, pod_main, p);
	return 0;
}

static int crun_start_pod(struct agent_runtime *art, const struct ynode *pod, const char *ip,
			  const char *cidr, struct err *e)
{
	struct crun_rt *rt = (struct crun_rt *)art;
	const char *uid = y_path_str(pod, "metadata.uid");
	int r = 0;

	if (!uid)
		return err_set(e, EINVAL, "the pod has no metadata.uid");
	if (!ip || !*ip)
		return err_set(e, EINVAL, "the pod has no address");
	pthread_mutex_lock(&rt->lock);
	if (!strmap_get(rt->pods, uid))
		r = pod_launch(rt, pod_new(rt, pod, ip, cidr), e);
	pthread_mutex_unlock(&rt->lock);
	return r;
}

void pod_wake(struct crun_pod *p)
{
	if (write(p->wake[1], "w", 1) < 0 && errno != EAGAIN)
		perror("clusterfs agent: wake");
}

static int crun_stop_pod(struct agent_runtime *art, const char *uid, int grace_s, struct err *e)
{
	struct crun_rt *rt = (struct crun_rt *)art;
	struct crun_pod *p;

	pthread_mutex_lock(&rt->lock);
	p = strmap_get(rt->pods, uid);
	if (p && p->gone) {
		strmap_del(rt->pods, uid);
		pthread_mutex_unlock(&rt->lock);
		pthread_join(p->thread, NULL);
		pod_free(p);
		return 0;
	}
	if (p) {
		if (!p->stop || grace_s < p->grace_s)
			p->grace_s = grace_s;
		p->stop = true;
		pod_wake(p);
	}
	pthread_mutex_unlock(&rt->lock);
	return p ? -EINPROGRESS : 0;
}

static struct ynode *state_doc(const struct crun_ctr *c, enum ctr_state state)
{
	struct ynode *s = y_map(), *in = y_map();

	switch (state) {
	case CTR_WAITING:
		if (c->reason)
			y_set(in, "reason", y_str(c->reason));
		if (c->message)
			y_set(in, "message", y_str(c->message));
		y_set(s, "waiting", in);
		break;
	case CTR_RUNNING:
		y_set(in, "startedAt", y_str(c->started_at));
		y_set(s, "running", in);
		break;
	case CTR_TERMINATED:
		y_set(in, "exitCode", y_int(c->exit_code));
		y_set(in, "reason", y_str(c->reason ? c->reason : "Error"));
		if (c->message)
			y_set(in, "message", y_str(c->message));
		y_set(in, "startedAt", y_str(c->started_at));
		y_set(in, "finishedAt", y_str(c->finished_at));
		char id[32];
		snprintf(id, sizeof(id), "crun://%s", c->id);
		y_set(in, "containerID", y_str(id));
		y_set(s, "terminated", in);
		break;
	}
	return s;
}

static struct ynode *ctr_status(const struct crun_ctr *c)
{
	struct ynode *s = y_map();
	const char *image = y_path_str(c->spec, "image");

	y_set(s, "name", y_str(c->name));
	y_set(s, "image", y_str(image ? image : ""));
	y_set(s, "imageID", y_str(c->image_id ? c->image_id : ""));
	if (c->started_at[0]) {
		char id[32];
		snprintf(id, sizeof(id), "crun://%s", c->id);
		y_set(s, "containerID", y_str(id));
	}
	y_set(s, "ready", y_bool(c->ready));
	y_set(s, "started", y_bool(c->state == CTR_RUNNING && c->started));
	y_set(s, "restartCount", y_int(c->restarts));
	y_set(s, "state", state_doc(c, c->state));
	y_set(s, "lastState", c->last ? y_clone(c->last) : y_map());
	return s;
}

static int crun_pod_status(struct agent_runtime *art, const char *uid, struct agent_pod_status *st)
{
	struct crun_rt *rt = (struct crun_rt *)art;
	struct crun_pod *p;

	pthread_mutex_lock(&rt->lock);
	p = strmap_get(rt->pods, uid);
	if (!p) {
		pthread_mutex_unlock(&rt->lock);
		return -ENOENT;
	}
	st->phase = p->phase;
	st->initialized = p->initialized;
	st->network = p->wired;
	st->ready = p->nctrs > p->ninit;
	st->containers = y_seq();
	st->init_containers = p->ninit ? y_seq() : NULL;
	for (size_t i = 0; i < p->nctrs; i++) {
		struct crun_ctr *c = &p->ctrs[i];
		y_push(c->init ? st->init_containers : st->containers, ctr_status(c));
		if (!c->init && !c->ready)
			st->ready = false;
	}
	pthread_mutex_unlock(&rt->lock);
	return 0;
}

static void crun_set_notify(struct agent_runtime *art, void (*notify)(void *), void *arg)
{
	struct crun_rt *rt = (struct crun_rt *)art;

	pthread_mutex_lock(&rt->lock);
	rt->notify = notify;
	rt->notify_arg = arg;
	pthread_mutex_unlock(&rt->lock);
}

static char **crun_changed(struct agent_runtime *art)
{
	struct crun_rt *rt = (struct crun_rt *)art;
	size_t n;

	pthread_mutex_lock(&rt->lock);
	char **keys = strmap_keys(rt->dirty, &n);
	strmap_free(rt->dirty);
	rt->dirty = strmap_new();
	pthread_mutex_unlock(&rt->lock);
	return keys;
}

static bool kept(char *const *keep, const char *uid)
{
	for (; keep && *keep; keep++)
		if (!strcmp(*keep, uid))
			return true;
	return false;
}

/* A pod left on disk: pod.yaml for its containers, net for its address. */
static struct crun_pod *pod_from_disk(struct crun_rt *rt, const char *uid)
{
	cleanup_free char *path = xasprintf("%s/%s/pod.yaml", rt->pods_dir, uid);
	cleanup_free char *net_path = xasprintf("%s/%s/net", rt->pods_dir, uid);
	cleanup_free char *net = file_get(net_path, 256, NULL);
	char ip[64] = "", cidr[64] = "";
	struct ynode *pod = NULL;
	struct err e = {0};
	struct crun_pod *p = NULL;

	if (net)
		sscanf(net, "%63s %63s", ip, cidr);
	if (obj_load(path, &pod, &e) == 0 && y_path_str(pod, "metadata.uid") &&
	    !strcmp(y_path_str(pod, "metadata.uid"), uid))
		p = pod_new(rt, pod, ip, cidr);
	y_free(pod);
	return p;
}

static int crun_pod_address(struct agent_runtime *art, const char *uid, char ip[64])
{
	struct crun_rt *rt = (struct crun_rt *)art;

	if (!uid[0] || uid[0] == '.' || strchr(uid, '/'))
		return -ENOENT;
	cleanup_free char *path = xasprintf("%s/%s/net", rt->pods_dir, uid);
	cleanup_free char *net = file_get(path, 256, NULL);
	return net && sscanf(net, "%63s", ip) == 1 ? 0 : -ENOENT;
}

static void crun_sweep(struct agent_runtime *art, char *const *keep)
{
	struct crun_rt *rt = (struct crun_rt *)art;
	DIR *d = opendir(rt->pods_dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || kept(keep, de->d_name))
			continue;
		pthread_mutex_lock(&rt->lock);
		struct crun_pod *p =
			strmap_get(rt->pods, de->d_name) ? NULL : pod_from_disk(rt, de->d_name);
		struct err e = {0};
		if (p) {
			p->stop = true;
			p->grace_s = 0;
			pod_launch(rt, p, &e);
		} else if (!strmap_get(rt->pods, de->d_name)) {
			fprintf(stderr, "clusterfs agent: %s/%s: no pod.yaml, left alone\n",
				rt->pods_dir, de->d_name);
		}
		pthread_mutex_unlock(&rt->lock);
	}
	if (d)
		closedir(d);
}

static void detach_pod(const char *key, void *val, void *arg)
{
	struct crun_pod *p = val;
	pod_wake(p);
}

static void join_pod(const char *key, void *val, void *arg)
{
	struct crun_pod *p = val;
	pthread_join(p->thread, NULL);
	pod_free(p);
}

/* The workers end without stopping their containers: a new agent adopts them. */
static void crun_free(struct agent_runtime *art)
{
	struct crun_rt *rt = (struct crun_rt *)art;

	pthread_mutex_lock(&rt->lock);
	rt->notify = NULL;
	rt->detaching = true;
	strmap_each(rt->pods, detach_pod, NULL);
	pthread_mutex_unlock(&rt->lock);
	strmap_each(rt->pods, join_pod, NULL);
	strmap_free(rt->pods);
	strmap_free(rt->dirty);
	image_store_free(rt->images);
	pthread_mutex_destroy(&rt->lock);
	free(rt->pods_dir);
	free((char *)rt->env.crun);
	free((char *)rt->env.crun_root);
	free((char *)rt->env.sock_dir);
	free((char *)rt->cni.data_dir);
	free(rt->version);
	free(rt->state_dir);
	free(rt->run_dir);
	free(rt->view);
	free(rt);
}

static int check_tools(struct err *e)
{
	static const char *const tools[] = {"crun", "conmon", "skopeo", "umoci", "ip", NULL};
	for (const char *const *t = tools; *t; t++) {
		cleanup_free char *path = proc_which(*t);
		if (!path)
			return err_set(e, ENOENT,
				       "%s: not found in PATH (scripts/install-deps installs it)",
				       *t);
	}
	if (access("/usr/lib/cni/bridge", X_OK) < 0)
		return err_set(e, ENOENT, "/usr/lib/cni/bridge: the CNI plugins are not installed");
	return 0;
}

/* The path made (with mkdir) and made absolute: crun, conmon and the CNI
 * plugins resolve paths from directories of their own. Caller frees. */
static char *absolute_dir(const char *path, bool make, struct err *e)
{
	char *abs = NULL;

	if ((make && mkdir_p(path, 0700) < 0) || !(abs = realpath(path, NULL)))
		err_set(e, errno, "%s: %s", path, strerror(errno));
	return abs;
}

struct refs {
	char **v;
	size_t n;
};

static void add_refs(const char *uid, void *val, void *arg)
{
	struct crun_pod *p = val;
	struct refs *r = arg;

	for (size_t i = 0; i < p->nctrs; i++) {
		const char *image = y_path_str(p->ctrs[i].spec, "image");
		if (!image)
			continue;
		r->v = xrealloc(r->v, (r->n + 2) * sizeof(char *));
		r->v[r->n++] = xstrdup(image);
		r->v[r->n] = NULL;
	}
}

/* The images the node's pods name: the image collector keeps them. */
static char **images_in_use(void *arg)
{
	struct crun_rt *rt = arg;
	struct refs r = {0};

	pthread_mutex_lock(&rt->lock);
	strmap_each(rt->pods, add_refs, &r);
	pthread_mutex_unlock(&rt->lock);
	return r.v ? r.v : xcalloc(1, sizeof(char *));
}

struct agent_runtime *agent_runtime_crun_new(const struct crun_config *cfg, struct err *e)
{
	cleanup_free char *state = NULL, *run = NULL, *view = NULL;

	if (check_tools(e) < 0 || !(state = absolute_dir(cfg->state_dir, true, e)) ||
	    !(run = absolute_dir(cfg->run_dir, true, e)) ||
	    !(view = absolute_dir(cfg->view, false, e)))
		return NULL;
	struct crun_rt *rt = xcalloc(1, sizeof(*rt));
	const char *ver[] = {"crun", "--version", NULL};
	cleanup_free char *out = NULL;

	rt->cfg = *cfg;
	rt->cfg.state_dir = rt->state_dir = state, state = NULL;
	rt->cfg.run_dir = rt->run_dir = run, run = NULL;
	rt->cfg.view = rt->view = view, view = NULL;
	cfg = &rt->cfg;
	if (!rt->cfg.backoff_ms)
		rt->cfg.backoff_ms = 10000;
	rt->pods_dir = xasprintf("%s/pods", cfg->state_dir);
	rt->env.crun = proc_which("crun");
	rt->env.crun_root = xasprintf("%s/crun", cfg->run_dir);
	rt->env.sock_dir = xasprintf("%s/conmon", cfg->run_dir);
	rt->cni = (struct cni_config){.bridge = cfg->bridge,
				      .bin_dir = "/usr/lib/cni",
				      .data_dir = xasprintf("%s/ipam", cfg->state_dir)};
	cleanup_free char *images = xasprintf("%s/images", cfg->state_dir);
	rt->images = image_store_new(images, cfg->registry, cfg->insecure);
	/* kubelet's defaults */
	image_store_gc(rt->images, cfg->image_gc_high ? cfg->image_gc_high : 85,
		       cfg->image_gc_high || cfg->image_gc_low ? cfg->image_gc_low : 80,
		       images_in_use, rt);
	mkdir_p(rt->pods_dir, 0700);
	mkdir_p(rt->env.crun_root, 0700);
	pthread_mutex_init(&rt->lock, NULL);
	rt->pods = strmap_new();
	rt->dirty = strmap_new();
	struct err pe = {0};
	rt->version = proc_run(ver, NULL, &out, &pe) == 0 && out
			      ? xasprintf("crun://%.*s",
					  (int)strcspn(out + strcspn(out, "0123456789"), "\n"),
					  out + strcspn(out, "0123456789"))
			      : xstrdup("crun://unknown");
	rt->rt = (struct agent_runtime){
		.name = "crun",
		.version = rt->version,
		.run_dir = rt->run_dir,
		.start_pod = crun_start_pod,
		.stop_pod = crun_stop_pod,
		.pod_status = crun_pod_status,
		.set_notify = crun_set_notify,
		.changed = crun_changed,
		.pod_address = crun_pod_address,
		.sweep = crun_sweep,
		.free = crun_free,
	};
	return &rt->rt;
}
