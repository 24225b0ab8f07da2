/*
 * runtime-sim.c: the simulated runtime behind `clusterfs agent --simulated`.
 *
 * A hollow node for scale tests: a pod "runs" the moment it is started and
 * stops the moment it is stopped, without a process. The runtime keeps, per
 * pod uid, its containers' names and images and when each started, and
 * reports containerStatuses as a kubelet would for containers that came up
 * at once and never restarted.
 *
 * Container ids are derived from the pod's uid and the container's name
 * ("sim://" and 64 hex digits), so after an agent restart a pod whose
 * status already carries those ids is adopted with its start times rather
 * than "restarted": the simulation's version of finding conmon still there.
 */
#define _GNU_SOURCE
#include "runtime.h"

#include <errno.h>

struct sim_container {
	char *name, *image;
	char *started_at; /* RFC 3339 */
	bool init;	  /* an init container: it ran and completed */
};

struct sim_pod {
	struct sim_container *c;
	size_t n;
};

struct sim {
	struct agent_runtime rt; /* first, so the handle is the runtime */
	struct strmap *pods;	 /* uid -> struct sim_pod */
};

static uint64_t fnv1a(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* 64 hex digits derived from a and b; out has room for 65. */
static void sim_digest(const char *a, const char *b, char out[65])
{
	uint64_t h = fnv1a(b, fnv1a("/", fnv1a(a, 0xcbf29ce484222325ULL)));

	for (int i = 0; i < 4; i++) {
		h = (h ^ (uint64_t)i) * 0x100000001b3ULL;
		h ^= h >> 29;
		snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)h);
	}
}

static char *sim_container_id(const char *uid, const char *name)
{
	char hex[65];
	sim_digest(uid, name, hex);
	return xasprintf("sim://%s", hex);
}

/* The startedAt the pod's status already shows for this container, when
 * it shows the container this runtime would have started: adoption. */
static const char *sim_adopted_start(const struct ynode *pod, const char *list, const char *uid,
				     const char *name)
{
	const struct ynode *st = y_path(pod, list);
	cleanup_free char *id = sim_container_id(uid, name);

	for (size_t i = 0; st && st->type == Y_SEQ && i < st->n; i++) {
		const char *n = y_path_str(st->v[i], "name");
		const char *cid = y_path_str(st->v[i], "containerID");
		if (!n || strcmp(n, name) || !cid || strcmp(cid, id))
			continue;
		const char *t = y_path_str(st->v[i], "state.running.startedAt");
		return t ? t : y_path_str(st->v[i], "state.terminated.startedAt");
	}
	return NULL;
}

static void sim_add_containers(struct sim_pod *sp, const struct ynode *pod, const char *uid,
			       bool init, const char *now)
{
	const struct ynode *list = y_path(pod, init ? "spec.initContainers" : "spec.containers");
	const char *status = init ? "status.initContainerStatuses" : "status.containerStatuses";

	for (size_t i = 0; list && list->type == Y_SEQ && i < list->n; i++) {
		const char *name = y_path_str(list->v[i], "name");
		const char *image = y_path_str(list->v[i], "image");
		const char *was = name ? sim_adopted_start(pod, status, uid, name) : NULL;
		sp->c = xrealloc(sp->c, (sp->n + 1) * sizeof(*sp->c));
		sp->c[sp->n++] = (struct sim_container){
			.name = xstrdup(name ? name : ""),
			.image = xstrdup(image ? image : ""),
			.started_at = xstrdup(was ? was : now),
			.init = init,
		};
	}
}

static int sim_start_pod(struct agent_runtime *rt, const struct ynode *pod, const char *ip,
			 const char *cidr, struct err *e)
{
	struct sim *s = (struct sim *)rt;
	const char *uid = y_path_str(pod, "metadata.uid");
	char now[32];

	if (!uid)
		return err_set(e, EINVAL, "the pod has no metadata.uid");
	if (strmap_get(s->pods, uid))
		return 0;
	fmt_time(now_ns(), now);
	struct sim_pod *sp = xcalloc(1, sizeof(*sp));
	sim_add_containers(sp, pod, uid, true, now);
	sim_add_containers(sp, pod, uid, false, now);
	strmap_put(s->pods, uid, sp);
	return 0;
}

static void sim_pod_free(struct sim_pod *sp)
{
	for (size_t i = 0; sp && i < sp->n; i++) {
		free(sp->c[i].name);
		free(sp->c[i].image);
		free(sp->c[i].started_at);
	}
	if (sp)
		free(sp->c);
	free(sp);
}

static int sim_stop_pod(struct agent_runtime *rt, const char *uid, int grace_s, struct err *e)
{
	struct sim *s = (struct sim *)rt;

	sim_pod_free(strmap_del(s->pods, uid));
	return 0;
}

/* "nginx:1.25" -> "docker.io/library/nginx@sha256:...", as a kubelet shows it. */
static char *sim_image_id(const char *image)
{
	const char *slash = strchr(image, '/'), *last = strrchr(image, '/');
	const char *base = last ? last + 1 : image;
	size_t len = (size_t)(base - image) + strcspn(base, "@:");
	const char *prefix = "docker.io/library/";
	char hex[65];

	if (slash) {
		size_t host = (size_t)(slash - image);
		bool registry = memchr(image, '.', host) || memchr(image, ':', host) ||
				!strncmp(image, "localhost/", 10);
		prefix = registry ? "" : "docker.io/";
	}
	sim_digest("image", image, hex);
	return xasprintf("%s%.*s@sha256:%s", prefix, (int)len, image, hex);
}

static struct ynode *sim_state(const struct sim_container *c, const char *cid)
{
	struct ynode *state = y_map(), *s = y_submap(state, c->init ? "terminated" : "running");

	y_set(s, "startedAt", y_str(c->started_at));
	if (c->init) {
		y_set(s, "containerID", y_str(cid));
		y_set(s, "exitCode", y_int(0));
		y_set(s, "reason", y_str("Completed"));
		y_set(s, "finishedAt", y_str(c->started_at));
	}
	return state;
}

static struct ynode *sim_container_status(const struct sim_container *c, const char *uid)
{
	struct ynode *cs = y_map();
	cleanup_free char *cid = sim_container_id(uid, c->name);
	cleanup_free char *image_id = sim_image_id(c->image);

	y_set(cs, "name", y_str(c->name));
	y_set(cs, "image", y_str(c->image));
	y_set(cs, "imageID", y_str(image_id));
	y_set(cs, "containerID", y_str(cid));
	y_set(cs, "ready", y_bool(true));
	y_set(cs, "started", y_bool(!c->init));
	y_set(cs, "restartCount", y_int(0));
	y_set(cs, "state", sim_state(c, cid));
	y_set(cs, "lastState", y_map());
	return cs;
}

static int sim_pod_status(struct agent_runtime *rt, const char *uid, struct agent_pod_status *st)
{
	struct sim *s = (struct sim *)rt;
	struct sim_pod *sp = strmap_get(s->pods, uid);

	if (!sp)
		return -ENOENT;
	st->phase = "Running";
	st->ready = true;
	st->initialized = true;
	st->network = true;
	st->containers = y_seq();
	st->init_containers = NULL;
	for (size_t i = 0; i < sp->n; i++) {
		struct ynode **list = sp->c[i].init ? &st->init_containers : &st->containers;
		if (!*list)
			*list = y_seq();
		y_push(*list, sim_container_status(&sp->c[i], uid));
	}
	return 0;
}

static void sim_drop(const char *uid, void *val, void *arg)
{
	sim_pod_free(val);
}

static void sim_free(struct agent_runtime *rt)
{
	struct sim *s = (struct sim *)rt;

	strmap_each(s->pods, sim_drop, NULL);
	strmap_free(s->pods);
	free(s);
}

struct agent_runtime *agent_runtime_sim_new(void)
{
	struct sim *s = xcalloc(1, sizeof(*s));

	s->rt = (struct agent_runtime){
		.name = "simulated",
		.version = "simulated",
		.start_pod = sim_start_pod,
		.stop_pod = sim_stop_pod,
		.pod_status = sim_pod_status,
		.free = sim_free,
	};
	s->pods = strmap_new();
	return &s->rt;
}
