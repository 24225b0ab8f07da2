/*
 * scheduler.c: how fast the control plane turns Deployments into bound
 * and Running pods, and how fast a controller reacts to a write.
 *
 * bench/scheduler starts a server and a simulated agent of N nodes and
 * runs this driver against the mount. Two phases:
 *
 *   throughput  D Deployments totalling P pods are written into namespace
 *               `bench`, one file each. A thread reads /cluster/watch
 *               (filter namespaces/bench/pods) and stamps every line with
 *               the monotonic clock as it arrives: a pod's ADDED is its
 *               creation by the ReplicaSet controller, its first MODIFIED
 *               its binding by the scheduler, its second MODIFIED the
 *               agent marking it Running. Nothing is read during the run,
 *               so the driver adds no load but one read per batch of lines.
 *               Once every pod has changed twice, each pod file is read
 *               once and must say spec.nodeName set, status.phase Running
 *               and the resourceVersion of the last line seen for it (so
 *               no change went unseen); pods that do not yet are read
 *               again as their lines arrive, until the deadline.
 *   reaction    in namespace `react`: T times, N+1 is written to
 *               replicasets/ra/replicas and the time to the first new pod
 *               file (inotify IN_CREATE in pods/) is taken; then T times
 *               to deployments/da/replicas, timed to the Deployment
 *               controller's write of its ReplicaSet (checked to carry
 *               the new count) and to the first new pod.
 *
 * The first MODIFIED is the binding because nothing else writes a pod
 * between its creation and its binding: the agent only takes bound pods,
 * and the scheduler's other write (PodScheduled=False) leaves a
 * FailedScheduling line in events, which are counted and reported.
 *
 * Pods and nodes are scheduler_perf's defaults: requests of 100m cpu and
 * 500Mi memory, one containerPort; nodes of 4 cpu, 32Gi, 110 pods (the
 * script passes that to the agent).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "doc.h"

#define TARGET_RATE	  1000.0
#define TARGET_REACT_P99  50.0
#define ANCHOR_RATE	  680.0
#define TRIAL_TIMEOUT_MS  5000
#define QUIET_MS	  150
#define REACTION_BUDGET_S 120
#define INW_BUF		  65536

struct opts {
	const char *mount;
	long pods, deployments, trials;
	int deadline_s;
	pid_t server, agent;
	int strict;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double ms(int64_t ns)
{
	return ns / 1e6;
}

/* ---- small file helpers ---- */

/* Writes text to path (created or truncated) and closes it; 0 or -errno,
 * after saying what failed. close() is where the mount applies a write. */
static int put_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err = 0;

	if (fd < 0) {
		err = errno;
	} else {
		ssize_t n = write(fd, text, len);
		if (n != (ssize_t)len)
			err = n < 0 ? errno : EIO;
		if (close(fd) < 0 && !err)
			err = errno;
	}
	if (err)
		fprintf(stderr, "scheduler: write %s: %s\n", path, strerror(err));
	return -err;
}

/* The whole file, or NULL (errno set). Caller frees. */
static char *slurp(const char *path, size_t *len)
{
	struct strbuf sb = {0};
	char buf[16384];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sb_append(&sb, buf, n);
	int err = n < 0 ? errno : 0;
	close(fd);
	if (err) {
		sb_free(&sb);
		errno = err;
		return NULL;
	}
	sb_grow(&sb, 1);
	return sb_steal(&sb, len);
}

/* The first document of the file at path, or NULL. Caller frees. */
static struct ynode *read_doc(const char *path)
{
	size_t len, n = 0;
	cleanup_free char *text = slurp(path, &len);
	struct ynode **docs = NULL, *doc = NULL;

	if (!text || y_parse(text, len, &docs, &n, NULL) < 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (i == 0)
			doc = docs[i];
		else
			y_free(docs[i]);
	free(docs);
	return doc;
}

/* Creates namespace ns and waits (up to 10 s) until its pods/ is there. */
static int make_namespace(const char *mount, const char *ns)
{
	cleanup_free char *dir = xasprintf("%s/namespaces/%s", mount, ns);
	cleanup_free char *pods = xasprintf("%s/pods", dir);
	struct stat st;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "scheduler: mkdir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < 200; i++) {
		if (stat(pods, &st) == 0)
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "scheduler: %s did not appear within 10 s\n", pods);
	return -1;
}

/* scheduler_perf's pod-default.yaml as a template, kind is "Deployment"
 * or "ReplicaSet". Caller frees. */
static char *workload_doc(const char *kind, const char *name, long replicas)
{
	return xasprintf("apiVersion: apps/v1\n"
			 "kind: %s\n"
			 "metadata:\n"
			 "  name: %s\n"
			 "spec:\n"
			 "  replicas: %ld\n"
			 "  selector:\n"
			 "    matchLabels: {app: %s}\n"
			 "  template:\n"
			 "    metadata:\n"
			 "      labels: {app: %s}\n"
			 "    spec:\n"
			 "      containers:\n"
			 "      - name: pause\n"
			 "        image: registry.k8s.io/pause:3.10.1\n"
			 "        ports:\n"
			 "        - containerPort: 80\n"
			 "        resources:\n"
			 "          limits: {cpu: 100m, memory: 500Mi}\n"
			 "          requests: {cpu: 100m, memory: 500Mi}\n",
			 kind, name, replicas, name, name);
}

/* ---- CPU time of the processes involved ---- */

/* utime + stime of pid (0: this process) in seconds, or -1. */
static double cpu_seconds(pid_t pid)
{
	char path[64];
	size_t len;

	snprintf(path, sizeof(path), pid ? "/proc/%d/stat" : "/proc/self/stat", (int)pid);
	cleanup_free char *stat = slurp(path, &len);
	char *p = stat ? strrchr(stat, ')') : NULL;
	unsigned long long ut, st;

	/* After "pid (comm)": state, then 10 fields before utime and stime. */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

struct cpu {
	double server, agent, self;
	int64_t wall;
};

static void cpu_take(const struct opts *o, struct cpu *c)
{
	c->server = o->server ? cpu_seconds(o->server) : -1;
	c->agent = o->agent ? cpu_seconds(o->agent) : -1;
	c->self = cpu_seconds(0);
	c->wall = mono_ns();
}

static void cpu_print(const struct cpu *a, const struct cpu *b)
{
	double wall = (b->wall - a->wall) / 1e9;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	printf("  cpu over those %.1f s (%ld cores = %.1f cpu-s):", wall, cores, wall * cores);
	if (a->server >= 0 && b->server >= 0)
		printf(" server %.1f s,", b->server - a->server);
	if (a->agent >= 0 && b->agent >= 0)
		printf(" agent %.1f s,", b->agent - a->agent);
	printf(" this driver %.1f s\n", b->self - a->self);
}

/* ---- the watch stream: each pod's life, stamped on arrival ---- */

struct life {
	int64_t added, bound, last; /* mono ns; 0 until seen */
	int64_t rev;		    /* of the last line */
	int changes;		    /* MODIFIED lines */
	bool deleted, verified;
};

struct tracker {
	int fd;
	const char *prefix; /* "namespaces/bench/pods/" */
	pthread_t thread;
	volatile sig_atomic_t stop;
	volatile sig_atomic_t done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Everything below is protected by lock. */
	struct strmap *pods; /* name -> struct life */
	long added, bound, twice, deleted, odd;
	int64_t first_added, last_added, last_bound;
	int err; /* the errno that ended the stream, 0 while it runs */
};

static void on_line(struct tracker *t, const char *line, int64_t at)
{
	char type[16], path[512];
	long long rev;

	if (sscanf(line, "%lld %15s %511s", &rev, type, path) != 3 ||
	    strncmp(path, t->prefix, strlen(t->prefix))) {
		t->odd++;
		return;
	}
	char *name = path + strlen(t->prefix), *dot = strrchr(name, '.');
	if (dot)
		*dot = 0;
	struct life *l = strmap_get(t->pods, name);
	if (!l)
		strmap_put(t->pods, name, l = xcalloc(1, sizeof(*l)));
	l->rev = rev;
	l->last = at;
	if (!strcmp(type, "ADDED") && !l->added) {
		l->added = at;
		if (t->added++ == 0)
			t->first_added = at;
		t->last_added = at;
	} else if (!strcmp(type, "MODIFIED")) {
		if (++l->changes == 1) {
			l->bound = at;
			t->bound++;
			t->last_bound = at;
		} else if (l->changes == 2) {
			t->twice++;
		}
	} else if (!strcmp(type, "DELETED")) {
		l->deleted = true;
		t->deleted++;
	} else {
		t->odd++;
	}
}

static void on_batch(struct tracker *t, struct strbuf *carry, const char *buf, size_t n, int64_t at)
{
	char *line, *nl;

	sb_append(carry, buf, n);
	pthread_mutex_lock(&t->lock);
	for (line = carry->buf; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = 0;
		on_line(t, line, at);
	}
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	size_t rest = carry->len - (line - carry->buf);
	memmove(carry->buf, line, rest);
	sb_truncate(carry, rest);
}

static void *tracker_main(void *arg)
{
	struct tracker *t = arg;
	struct strbuf carry = {0};
	cleanup_free char *buf = xmalloc(1 << 16);
	ssize_t n;

	while (!t->stop) {
		n = read(t->fd, buf, 1 << 16);
		int64_t at = mono_ns();
		if (n > 0) {
			on_batch(t, &carry, buf, n, at);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&t->lock);
		t->err = n < 0 ? errno : EPIPE;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		break;
	}
	sb_free(&carry);
	t->done = 1;
	return NULL;
}

static void on_sigusr1(int sig)
{
}

/* Opens the watch on ns's pods and starts the thread; 0 or -1. */
static int tracker_start(struct tracker *t, const char *mount, const char *ns)
{
	cleanup_free char *path = xasprintf("%s/watch", mount);
	cleanup_free char *filter = xasprintf("namespaces/%s/pods\n", ns);
	struct sigaction sa = {.sa_handler = on_sigusr1}; /* no SA_RESTART: read ends */

	sigaction(SIGUSR1, &sa, NULL);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->pods = strmap_new();
	t->fd = open(path, O_RDWR | O_CLOEXEC);
	if (t->fd < 0 || write(t->fd, filter, strlen(filter)) != (ssize_t)strlen(filter)) {
		fprintf(stderr, "scheduler: %s: %s\n", path, strerror(errno));
		return -1;
	}
	pthread_create(&t->thread, NULL, tracker_main, t);
	return 0;
}

static void free_life(const char *key, void *val, void *arg)
{
	free(val);
}

/* A read parked in the mount ends with EINTR on a signal; it is sent
 * again until the thread is out, in case it arrived between two reads. */
static void tracker_stop(struct tracker *t)
{
	t->stop = 1;
	while (!t->done) {
		pthread_kill(t->thread, SIGUSR1);
		usleep(10000);
	}
	pthread_join(t->thread, NULL);
	close(t->fd);
	strmap_each(t->pods, free_life, NULL);
	strmap_free(t->pods);
}

/* ---- throughput ---- */

struct throughput {
	int64_t first_write, last_write, all_running;
	long pods, verified, not_running, unseen, extra_changes, failed_scheduling;
	double bind_p50, bind_p99; /* ms from ADDED to bound */
};

/* Writes the Deployments; 0 or -1. */
static int write_deployments(const struct opts *o, struct throughput *r)
{
	r->first_write = mono_ns();
	for (long i = 0; i < o->deployments; i++) {
		char name[32];
		long replicas = o->pods / o->deployments + (i < o->pods % o->deployments);
		snprintf(name, sizeof(name), "d-%03ld", i);
		cleanup_free char *path =
			xasprintf("%s/namespaces/bench/deployments/%s.yaml", o->mount, name);
		cleanup_free char *doc = workload_doc("Deployment", name, replicas);
		if (put_file(path, doc) < 0)
			return -1;
	}
	r->last_write = mono_ns();
	return 0;
}

static void progress(const struct tracker *t, int64_t since)
{
	printf("  %6.1f s: %ld created, %ld bound, %ld changed twice\n", (mono_ns() - since) / 1e9,
	       t->added, t->bound, t->twice);
	fflush(stdout);
}

/* Waits, lock held, until every pod has changed twice, the stream ends
 * or the deadline; returns whether the pods got there. */
static bool wait_changed_twice(const struct opts *o, struct tracker *t, int64_t start,
			       int64_t deadline)
{
	int64_t next_report = start + 10 * 1000000000LL;

	while (!(t->added >= o->pods && t->twice >= o->pods) && !t->err) {
		int64_t now = mono_ns();
		if (now >= deadline)
			return false;
		if (now >= next_report) {
			progress(t, start);
			next_report += 10 * 1000000000LL;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	return !t->err;
}

/* Reads one pod and marks it verified when its file says bound and
 * Running at the revision of the last line seen. Lock held. */
static void verify_pod(const struct opts *o, struct tracker *t, const char *name, struct life *l)
{
	cleanup_free char *path = xasprintf("%s/namespaces/bench/pods/%s.yaml", o->mount, name);
	struct ynode *pod = read_doc(path);
	const char *node = y_path_str(pod, "spec.nodeName");
	const char *phase = y_path_str(pod, "status.phase");
	const char *rv = y_path_str(pod, "metadata.resourceVersion");

	l->verified = pod && node && *node && phase && !strcmp(phase, "Running") && rv &&
		      strtoll(rv, NULL, 10) == l->rev && !l->deleted;
	y_free(pod);
}

struct verify_ctx {
	const struct opts *o;
	struct tracker *t;
	long left;
};

static void verify_one(const char *name, void *val, void *arg)
{
	struct verify_ctx *v = arg;
	struct life *l = val;

	if (!l->verified)
		verify_pod(v->o, v->t, name, l);
	v->left += !l->verified;
}

/* Verifies every pod, again and again as lines come, until all pass or
 * the deadline. Lock held; returns how many did not pass. */
static long verify_all(const struct opts *o, struct tracker *t, int64_t deadline)
{
	struct verify_ctx v = {o, t, 0};

	for (;;) {
		v.left = 0;
		strmap_each(t->pods, verify_one, &v);
		if (v.left == 0 || mono_ns() >= deadline || t->err)
			return v.left;
		pthread_mutex_unlock(&t->lock);
		usleep(200000);
		pthread_mutex_lock(&t->lock);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The nearest-rank percentile p (0..1] of n sorted values. */
static int64_t percentile(const int64_t *sorted, long n, double p)
{
	long rank = (long)(p * n + 0.999999);
	return sorted[(rank < 1 ? 1 : rank) - 1];
}

struct sum_ctx {
	struct throughput *r;
	int64_t *bind;
	long n;
};

static void sum_one(const char *name, void *val, void *arg)
{
	struct sum_ctx *s = arg;
	struct life *l = val;

	s->r->verified += l->verified;
	s->r->extra_changes += l->changes > 2;
	if (l->last > s->r->all_running)
		s->r->all_running = l->last;
	if (l->added && l->bound)
		s->bind[s->n++] = l->bound - l->added;
}

/* The figures, from the lives recorded. Lock held. */
static void summarize(struct tracker *t, struct throughput *r)
{
	struct sum_ctx s = {r, xcalloc(strmap_count(t->pods) + 1, sizeof(int64_t)), 0};

	r->pods = strmap_count(t->pods);
	strmap_each(t->pods, sum_one, &s);
	r->not_running = r->pods - r->verified;
	if (s.n) {
		qsort(s.bind, s.n, sizeof(int64_t), cmp_i64);
		r->bind_p50 = ms(percentile(s.bind, s.n, 0.50));
		r->bind_p99 = ms(percentile(s.bind, s.n, 0.99));
	}
	free(s.bind);
}

/* Lines "... Warning FailedScheduling ..." in ns's events, or -1. */
static long count_failed_scheduling(const char *mount, const char *ns)
{
	cleanup_free char *path = xasprintf("%s/namespaces/%s/events", mount, ns);
	size_t len;
	cleanup_free char *text = slurp(path, &len);
	long n = 0;

	if (!text)
		return -1;
	for (const char *p = text; (p = strstr(p, " FailedScheduling ")); p++)
		n++;
	return n;
}

static void print_throughput(const struct opts *o, const struct tracker *t,
			     const struct throughput *r)
{
	int64_t w0 = r->first_write;

	printf("  %ld Deployments written in %.1f ms\n", o->deployments, ms(r->last_write - w0));
	printf("  first pod created   %9.1f ms after the first write\n", ms(t->first_added - w0));
	printf("  last pod created    %9.1f ms   (%.1f pods created/s)\n", ms(t->last_added - w0),
	       t->added / ((t->last_added - t->first_added) / 1e9));
	if (t->bound < o->pods)
		printf("  partial: %ld of %ld pods bound, the last of them at %.1f ms\n", t->bound,
		       o->pods, ms(t->last_bound - w0));
	else
		printf("  last pod bound      %9.1f ms\n", ms(t->last_bound - w0));
	if (r->not_running == 0)
		printf("  all pods Running    %9.1f ms   (%.1f ms after the last write)\n",
		       ms(r->all_running - w0), ms(r->all_running - r->last_write));
	printf("  created -> bound, one pod: p50 %.1f ms, p99 %.1f ms\n", r->bind_p50, r->bind_p99);
	printf("  bound/s from the first pod created: %.1f; from the first write: %.1f\n",
	       t->bound / ((t->last_bound - t->first_added) / 1e9),
	       t->bound / ((t->last_bound - w0) / 1e9));
}

/* Prints what went wrong, if anything; returns 0 when the run is sound. */
static int check_throughput(const struct opts *o, const struct tracker *t,
			    const struct throughput *r)
{
	int bad = 0;

	if (t->err) {
		printf("  the watch stream ended: %s\n", strerror(t->err));
		bad = 1;
	}
	if (r->pods != o->pods || t->added != o->pods) {
		printf("  %ld pods seen (%ld ADDED lines), %ld expected\n", r->pods, t->added,
		       o->pods);
		bad = 1;
	}
	if (r->not_running) {
		printf("  %ld pods not verified bound and Running at their last line\n",
		       r->not_running);
		bad = 1;
	}
	if (t->deleted || t->odd) {
		printf("  %ld DELETED and %ld unexpected lines in the stream\n", t->deleted,
		       t->odd);
		bad = 1;
	}
	if (r->failed_scheduling) {
		printf("  %ld FailedScheduling events (-1: events unreadable): a pod's first "
		       "change may not be its binding\n",
		       r->failed_scheduling);
		bad = 1;
	}
	if (r->extra_changes)
		printf("  note: %ld pods changed more than twice; their Running time is that of "
		       "their last change (later, not earlier)\n",
		       r->extra_changes);
	return bad ? -1 : 0;
}

/* The throughput phase. Returns 0, or -1 when it could not be measured
 * (what it did measure is printed either way); sets *rate. */
static int run_throughput(const struct opts *o, double *rate, int64_t *to_running)
{
	struct tracker t = {.prefix = "namespaces/bench/pods/"};
	struct throughput r = {0};
	struct cpu c0, c1;

	if (make_namespace(o->mount, "bench") < 0 || tracker_start(&t, o->mount, "bench") < 0)
		return -1;
	printf("throughput: %ld pods in %ld Deployments, namespace bench\n", o->pods,
	       o->deployments);
	fflush(stdout);
	cpu_take(o, &c0);
	int r0 = write_deployments(o, &r);
	int64_t deadline = mono_ns() + (int64_t)o->deadline_s * 1000000000LL;
	pthread_mutex_lock(&t.lock);
	bool got = r0 == 0 && wait_changed_twice(o, &t, r.first_write, deadline);
	cpu_take(o, &c1);
	if (!got)
		progress(&t, r.first_write);
	verify_all(o, &t, deadline);
	summarize(&t, &r);
	pthread_mutex_unlock(&t.lock);
	tracker_stop(&t);
	r.failed_scheduling = count_failed_scheduling(o->mount, "bench");
	int rc = check_throughput(o, &t, &r) < 0 || r0 < 0 || !got ? -1 : 0;
	if (t.bound > 0 && r.pods > 0)
		print_throughput(o, &t, &r);
	cpu_print(&c0, &c1);
	*rate = t.bound / ((t.last_bound - t.first_added) / 1e9);
	*to_running = r.all_running - r.last_write;
	return rc;
}

/* ---- reaction ---- */

/* inotify on a namespace's pods/ and replicasets/, with what was read
 * and not yet handed out. */
struct inw {
	int fd, pods_wd, rs_wd;
	char *rs_dir;
	char *buf; /* malloc's alignment suits struct inotify_event */
	size_t len, off;
	int64_t read_at; /* when buf was read */
};

struct event {
	int64_t at;
	bool pods; /* in pods/, else in replicasets/ */
	uint32_t mask;
	char name[256];
};

/* The next event within timeout_ms (-1: none, 0: one, -errno). */
static int inw_next(struct inw *w, int timeout_ms, struct event *ev)
{
	struct pollfd p = {w->fd, POLLIN, 0};

	if (w->off >= w->len) {
		int r = poll(&p, 1, timeout_ms);
		if (r <= 0)
			return r < 0 ? -errno : -1;
		ssize_t n = read(w->fd, w->buf, INW_BUF);
		w->read_at = mono_ns();
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		w->len = n;
		w->off = 0;
	}
	const struct inotify_event *ie = (const struct inotify_event *)(w->buf + w->off);
	w->off += sizeof(*ie) + ie->len;
	ev->at = w->read_at;
	ev->pods = ie->wd == w->pods_wd;
	ev->mask = ie->mask;
	snprintf(ev->name, sizeof(ev->name), "%s", ie->len ? ie->name : "");
	return 0;
}

/* Reads events until none came for QUIET_MS (at most 3 s). */
static void inw_drain(struct inw *w)
{
	struct event ev;
	int64_t until = mono_ns() + 3000000000LL;

	while (mono_ns() < until && inw_next(w, QUIET_MS, &ev) == 0)
		;
}

static int starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* Whether the ReplicaSet file name (in replicasets/) says replicas n. */
static bool rs_says(struct inw *w, const char *name, long n)
{
	cleanup_free char *path = xasprintf("%s/%s", w->rs_dir, name);
	struct ynode *rs = read_doc(path);
	const char *r = y_path_str(rs, "spec.replicas");
	bool ok = r && strtol(r, NULL, 10) == n;

	y_free(rs);
	return ok;
}

struct trial {
	int64_t write, action, pod; /* ns from the start of the write; -1: not seen */
};

/* One trial: owner's replicas set to n, then the awaited events. For a
 * Deployment (rs_prefix set) the action is its ReplicaSet's update. */
static int trial(struct inw *w, const char *replicas_path, long n, const char *pod_prefix,
		 const char *rs_prefix, struct trial *t)
{
	char text[32];
	struct event ev;

	snprintf(text, sizeof(text), "%ld\n", n);
	*t = (struct trial){-1, -1, -1};
	int64_t t0 = mono_ns(), end = t0 + TRIAL_TIMEOUT_MS * 1000000LL;
	if (put_file(replicas_path, text) < 0)
		return -1;
	t->write = mono_ns() - t0;
	while (t->pod < 0 || (rs_prefix && t->action < 0)) {
		int left = (int)((end - mono_ns()) / 1000000);
		if (left <= 0 || inw_next(w, left, &ev) < 0)
			break;
		if (ev.pods && (ev.mask & IN_CREATE) && starts_with(ev.name, pod_prefix) &&
		    t->pod < 0)
			t->pod = ev.at - t0;
		else if (!ev.pods && rs_prefix && t->action < 0 &&
			 (ev.mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) &&
			 starts_with(ev.name, rs_prefix) && rs_says(w, ev.name, n))
			t->action = ev.at - t0;
	}
	if (!rs_prefix)
		t->action = t->pod;
	return 0;
}

static int inw_open(struct inw *w, const char *ns_dir)
{
	cleanup_free char *pods = xasprintf("%s/pods", ns_dir);

	w->rs_dir = xasprintf("%s/replicasets", ns_dir);
	w->buf = xmalloc(INW_BUF);
	w->fd = inotify_init1(IN_CLOEXEC);
	if (w->fd < 0 ||
	    (w->pods_wd = inotify_add_watch(w->fd, pods, IN_CREATE | IN_CLOSE_WRITE)) < 0 ||
	    (w->rs_wd = inotify_add_watch(w->fd, w->rs_dir,
					  IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO)) < 0) {
		fprintf(stderr, "scheduler: inotify on %s: %s\n", ns_dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether a ReplicaSet file named prefix* exists in w's replicasets/. */
static bool rs_exists(struct inw *w, const char *prefix)
{
	DIR *d = opendir(w->rs_dir);
	struct dirent *de;
	bool found = false;

	while (d && !found && (de = readdir(d)))
		found = starts_with(de->d_name, prefix);
	if (d)
		closedir(d);
	return found;
}

/* ra (a ReplicaSet) and da (a Deployment, with its ReplicaSet), at 0. */
static int reaction_setup(const struct opts *o, const char *ns_dir, struct inw *w)
{
	cleanup_free char *ra = xasprintf("%s/replicasets/ra.yaml", ns_dir);
	cleanup_free char *da = xasprintf("%s/deployments/da.yaml", ns_dir);
	cleanup_free char *ra_doc = workload_doc("ReplicaSet", "ra", 0);
	cleanup_free char *da_doc = workload_doc("Deployment", "da", 0);

	if (make_namespace(o->mount, "react") < 0 || inw_open(w, ns_dir) < 0 ||
	    put_file(ra, ra_doc) < 0 || put_file(da, da_doc) < 0)
		return -1;
	for (int i = 0; i < 200 && !rs_exists(w, "da-"); i++)
		usleep(50000);
	if (!rs_exists(w, "da-")) {
		fprintf(stderr, "scheduler: no ReplicaSet for deployment da within 10 s\n");
		return -1;
	}
	inw_drain(w);
	return 0;
}

struct series {
	int64_t *v;
	long n, missed;
};

static void series_add(struct series *s, int64_t v)
{
	if (v < 0)
		s->missed++;
	else
		s->v[s->n++] = v;
}

/* p99 in ms, or +inf when a trial was missed (it counts as slowest). */
static double series_p99(struct series *s)
{
	long total = s->n + s->missed;
	long rank = (long)(0.99 * total + 0.999999);

	if (rank > s->n)
		return 1.0 / 0.0;
	return ms(s->v[rank - 1]);
}

static void series_print(const char *label, struct series *s)
{
	qsort(s->v, s->n, sizeof(int64_t), cmp_i64);
	printf("  %-46s", label);
	if (s->n == 0) {
		printf(" none seen in %ld trials\n", s->missed);
		return;
	}
	double p99 = series_p99(s);
	printf(" p50 %7.2f  p99 ", ms(percentile(s->v, s->n, 0.50)));
	if (p99 == 1.0 / 0.0)
		printf("  > %d", TRIAL_TIMEOUT_MS);
	else
		printf("%7.2f", p99);
	printf("  max %7.2f ms", ms(s->v[s->n - 1]));
	if (s->missed)
		printf("  (%ld of %ld not seen within %d ms)", s->missed, s->n + s->missed,
		       TRIAL_TIMEOUT_MS);
	putchar('\n');
}

struct reaction {
	struct series write, rs_pod, dep_write, dep_rs, dep_pod;
};

/* T trials of each kind, within REACTION_BUDGET_S; -1 when one fails. */
static int reaction_trials(const struct opts *o, const char *ns_dir, struct inw *w,
			   struct reaction *re)
{
	cleanup_free char *ra = xasprintf("%s/replicasets/ra/replicas", ns_dir);
	cleanup_free char *da = xasprintf("%s/deployments/da/replicas", ns_dir);
	int64_t end = mono_ns() + REACTION_BUDGET_S * 1000000000LL;
	struct trial t;

	for (long i = 0; i < 2 * o->trials && mono_ns() < end; i++) {
		bool dep = i >= o->trials;
		long n = (dep ? i - o->trials : i) + 1;
		if (trial(w, dep ? da : ra, n, dep ? "da-" : "ra-", dep ? "da-" : NULL, &t) < 0)
			return -1;
		series_add(&re->write, t.write);
		series_add(dep ? &re->dep_rs : &re->rs_pod, t.action);
		if (dep)
			series_add(&re->dep_pod, t.pod);
		inw_drain(w);
	}
	return 0;
}

/* The reaction phase; sets *p99 (ms) of the ReplicaSet trials. */
static int run_reaction(const struct opts *o, double *p99)
{
	cleanup_free char *ns_dir = xasprintf("%s/namespaces/react", o->mount);
	struct inw w = {.fd = -1};
	struct reaction re = {0};
	struct series *all[] = {&re.write, &re.rs_pod, &re.dep_rs, &re.dep_pod};

	for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
		all[i]->v = xcalloc(2 * o->trials + 1, sizeof(int64_t));
	printf("\nreaction: %ld trials each, one at a time after %d ms of quiet, with the "
	       "benchmark's pods in place\n(ms from the start of the write to the event seen "
	       "by inotify; under 100 trials, p99 is the slowest)\n",
	       o->trials, QUIET_MS);
	int r = reaction_setup(o, ns_dir, &w);
	if (r == 0)
		r = reaction_trials(o, ns_dir, &w, &re);
	series_print("the write itself (open, write, close)", &re.write);
	series_print("replicasets/ra/replicas -> first pod created", &re.rs_pod);
	series_print("deployments/da/replicas -> ReplicaSet written", &re.dep_rs);
	series_print("deployments/da/replicas -> first pod created", &re.dep_pod);
	*p99 = re.rs_pod.n ? series_p99(&re.rs_pod) : 1.0 / 0.0;
	for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
		free(all[i]->v);
	if (w.fd >= 0)
		close(w.fd);
	free(w.rs_dir);
	free(w.buf);
	return r;
}

/* ---- the verdict ---- */

static int verdict(const char *what, double value, const char *unit, int ok)
{
	printf("  %-46s %10.1f %-6s %s\n", what, value, unit, ok ? "met" : "MISSED");
	return ok;
}

static int print_targets(const struct opts *o, double rate, int64_t to_running, double p99)
{
	int ok = 1;

	printf("\nanchor: kube-scheduler scheduler_perf SchedulingBasic, 5000 nodes / 10000 "
	       "pods: %.0f pods/s\n  ours: %.1f pods/s (%.2fx the anchor), %ld pods from %ld "
	       "Deployments;\n  last write to all pods Running: %.1f ms\n",
	       ANCHOR_RATE, rate, rate / ANCHOR_RATE, o->pods, o->deployments, ms(to_running));
	printf("\ntargets:\n");
	ok &= verdict("pods bound/s >= 1000", rate, "pods/s", rate >= TARGET_RATE);
	if (o->trials > 0) {
		char what[80];
		snprintf(what, sizeof(what), "reaction p99 < 50 ms (%ld trials)", o->trials);
		ok &= verdict(what, p99, "ms", p99 < TARGET_REACT_P99);
	}
	printf("all targets %s\n", ok ? "met" : "NOT met");
	return ok;
}

static int usage(FILE *out)
{
	fputs("usage: scheduler --mount DIR [-p PODS] [-d DEPLOYMENTS] [-t TRIALS]\n"
	      "                 [--deadline SECONDS] [--server-pid PID] [--agent-pid PID]\n"
	      "                 [--strict]\n"
	      "\n"
	      "DIR is a running server's mount with simulated nodes registered. PODS\n"
	      "(10000) in DEPLOYMENTS (100) are created in namespace bench; --deadline\n"
	      "(420) bounds that phase. TRIALS (50) of each reaction, 0 for none. The\n"
	      "pids are for the cpu accounting. Exits 1 when a phase could not be\n"
	      "measured, 3 with --strict when a target is missed.\n",
	      out);
	return out == stderr ? 2 : 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{"mount", required_argument, NULL, 'm'},
		{"deadline", required_argument, NULL, 'D'},
		{"server-pid", required_argument, NULL, 'S'},
		{"agent-pid", required_argument, NULL, 'A'},
		{"strict", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	*o = (struct opts){.pods = 10000, .deployments = 100, .trials = 50, .deadline_s = 420};
	while ((c = getopt_long(argc, argv, "m:p:d:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->mount = optarg;
			break;
		case 'p':
			o->pods = strtol(optarg, NULL, 10);
			break;
		case 'd':
			o->deployments = strtol(optarg, NULL, 10);
			break;
		case 't':
			o->trials = strtol(optarg, NULL, 10);
			break;
		case 'D':
			o->deadline_s = (int)strtol(optarg, NULL, 10);
			break;
		case 'S':
			o->server = (pid_t)strtol(optarg, NULL, 10);
			break;
		case 'A':
			o->agent = (pid_t)strtol(optarg, NULL, 10);
			break;
		case 's':
			o->strict = 1;
			break;
		case 'h':
			exit(usage(stdout));
		default:
			return usage(stderr);
		}
	}
	if (!o->mount || optind != argc || o->pods < 1 || o->deployments < 1 ||
	    o->deployments > o->pods || o->deployments > 1000 || o->trials < 0 ||
	    o->trials > 10000 || o->deadline_s < 1)
		return usage(stderr);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	double rate = 0, p99 = 0;
	int64_t to_running = 0;
	int r;

	if ((r = parse_opts(argc, argv, &o)) != 0)
		return r;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int bad = run_throughput(&o, &rate, &to_running) < 0;
	if (o.trials > 0)
		bad |= run_reaction(&o, &p99) < 0;
	if (bad) {
		printf("\nscheduler: a phase could not be measured in full (see above); no "
		       "verdict\n");
		return 1;
	}
	return print_targets(&o, rate, to_running, p99) || !o.strict ? 0 : 3;
}
