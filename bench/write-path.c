/*
 * write-path.c: how fast ConfigMaps are created through the mount, set
 * beside what the disk and SQLite do with the same durability.
 *
 * bench/write-path starts a server and runs this driver. For one writer
 * and then for W concurrent writers (threads), N creates are made on each
 * of three targets:
 *
 *   mount   open(O_CREAT) + write + close() of NAME.yaml in the mount's
 *           configmaps directory; close() returns once the commit is durable
 *   fsync   the same file written + fsync()ed + closed in a plain directory
 *           on the state dir's filesystem
 *   sqlite  one INSERT per transaction into a WAL database with
 *           synchronous=FULL, one connection per writer
 *
 * The references run just before the mount at each concurrency, so every
 * row is printed as soon as it is measured and the mount's rows carry
 * their ratios. Each create is timed on its own (monotonic clock) for the
 * percentiles; creates/s is N over the wall time from the moment all
 * writers are released to the moment the last one is done. After each
 * run what it wrote is counted (files listed, rows selected): a run that
 * did not leave exactly N new objects fails the benchmark.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define TARGET_RATE_1 2000.0
#define TARGET_RATE_W 5000.0
#define TARGET_P99_MS 20.0

struct worker;

/* What a run creates objects in; open and close (either may be NULL) run
 * in each writer outside the timing. */
struct target {
	const char *label;
	int (*open)(struct worker *w);
	int (*create)(struct worker *w, const char *name, const char *doc, size_t len);
	void (*close)(struct worker *w);
	/* Returns how many objects whose names start with prefix exist, or -errno. */
	long (*count)(const char *where, const char *prefix);
};

struct worker {
	const struct target *t;
	const char *where; /* a directory, or the database file */
	int writers;	   /* in the names: cm-1-..., cm-8-... */
	long first, n;	   /* creates first .. first + n - 1 */
	int64_t *lat;	   /* n latencies in ns, into the run's array */
	pthread_barrier_t *start;
	sqlite3 *db;
	sqlite3_stmt *insert;
	int err;	/* 0, or the errno of the create that stopped this writer */
	char what[512]; /* what failed, when err is set */
};

struct result {
	int failed;		    /* the figures below are meaningless then */
	double rate, p50, p99, max; /* creates/s, then ms */
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void object_name(char buf[32], int writers, long i)
{
	snprintf(buf, 32, "cm-%d-%06ld", writers, i);
}

/* About 150 bytes, a valid ConfigMap named name. Caller frees. */
static char *object_doc(const char *name, size_t *len)
{
	char *doc = xasprintf("apiVersion: v1\n"
			      "kind: ConfigMap\n"
			      "metadata:\n"
			      "  name: %s\n"
			      "  namespace: default\n"
			      "data:\n"
			      "  owner: bench-write-path\n"
			      "  value: payload-of-%s\n",
			      name, name);
	*len = strlen(doc);
	return doc;
}

static int fail(struct worker *w, int err, const char *step, const char *name)
{
	w->err = err;
	snprintf(w->what, sizeof(w->what), "%s %s/%s.yaml: %s", step, w->where, name,
		 strerror(err));
	return -err;
}

/* One file: open, write it all, optionally fsync, close; close() must say 0. */
static int create_file(struct worker *w, const char *name, const char *doc, size_t len, int sync)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s.yaml", w->where, name);
	if ((fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return fail(w, errno, "open", name);
	ssize_t done = write(fd, doc, len);
	if (done != (ssize_t)len) {
		int err = done < 0 ? errno : EIO;
		close(fd);
		return fail(w, err, done < 0 ? "write" : "short write", name);
	}
	if (sync && fsync(fd) < 0) {
		int err = errno;
		close(fd);
		return fail(w, err, "fsync", name);
	}
	if (close(fd) < 0)
		return fail(w, errno, "close", name);
	return 0;
}

static int mount_create(struct worker *w, const char *name, const char *doc, size_t len)
{
	return create_file(w, name, doc, len, 0);
}

static int fsync_create(struct worker *w, const char *name, const char *doc, size_t len)
{
	return create_file(w, name, doc, len, 1);
}

static long file_count(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	long n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (!strncmp(de->d_name, prefix, strlen(prefix)) && len > 5 &&
		    !strcmp(de->d_name + len - 5, ".yaml"))
			n++;
	}
	closedir(d);
	return n;
}

static sqlite3 *db_open(const char *path, char *msg, size_t size)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
		    SQLITE_OK ||
	    sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "CREATE TABLE IF NOT EXISTS objects(path TEXT PRIMARY KEY,"
			 " yaml TEXT NOT NULL);",
			 NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(msg, size, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static int sqlite_open(struct worker *w)
{
	if (!(w->db = db_open(w->where, w->what, sizeof(w->what))))
		return -(w->err = EIO);
	if (sqlite3_prepare_v2(w->db, "INSERT INTO objects(path, yaml) VALUES(?, ?)", -1,
			       &w->insert, NULL) != SQLITE_OK) {
		snprintf(w->what, sizeof(w->what), "prepare: %s", sqlite3_errmsg(w->db));
		return -(w->err = EIO);
	}
	return 0;
}

static void sqlite_close(struct worker *w)
{
	sqlite3_finalize(w->insert);
	sqlite3_close(w->db);
}

/* Autocommit: the INSERT is its own transaction, committed durably. */
static int sqlite_create(struct worker *w, const char *name, const char *doc, size_t len)
{
	int rc;

	sqlite3_bind_text(w->insert, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(w->insert, 2, doc, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(w->insert);
	sqlite3_reset(w->insert);
	if (rc != SQLITE_DONE) {
		w->err = EIO;
		snprintf(w->what, sizeof(w->what), "insert %s into %s: %s", name, w->where,
			 sqlite3_errstr(rc));
		return -EIO;
	}
	return 0;
}

static long sqlite_count(const char *path, const char *prefix)
{
	char msg[512];
	sqlite3 *db = db_open(path, msg, sizeof(msg));
	sqlite3_stmt *st = NULL;
	long n = -EIO;

	if (!db) {
		fprintf(stderr, "write-path: %s\n", msg);
		return -EIO;
	}
	cleanup_free char *like = xasprintf("%s%%", prefix);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM objects WHERE path LIKE ?", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, like, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static const struct target mount_target = {"mount (close)", NULL, mount_create, NULL, file_count};
static const struct target fsync_target = {"plain write+fsync", NULL, fsync_create, NULL,
					   file_count};
static const struct target sqlite_target = {"sqlite WAL FULL", sqlite_open, sqlite_create,
					    sqlite_close, sqlite_count};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32];
	size_t len;

	int r = w->t->open ? w->t->open(w) : 0;
	pthread_barrier_wait(w->start);
	for (long i = 0; r == 0 && i < w->n; i++) {
		object_name(name, w->writers, w->first + i);
		cleanup_free char *doc = object_doc(name, &len);
		int64_t t0 = mono_ns();
		r = w->t->create(w, name, doc, len);
		w->lat[i] = mono_ns() - t0;
	}
	if (w->t->close)
		w->t->close(w);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The nearest-rank percentile p (0..1] of n sorted latencies, in ms. */
static double percentile_ms(const int64_t *sorted, long n, double p)
{
	long rank = (long)(p * n + 0.999999);
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1] / 1e6;
}

/* Returns 0, or -1 after saying why on stderr. */
static int check_run(const struct target *t, const char *where, struct worker *ws, int writers,
		     long n)
{
	char prefix[16];
	int bad = 0;

	for (int i = 0; i < writers; i++)
		if (ws[i].err) {
			fprintf(stderr, "write-path: %s, %d writer(s): %s\n", t->label, writers,
				ws[i].what);
			bad = 1;
		}
	snprintf(prefix, sizeof(prefix), "cm-%d-", writers);
	long found = t->count(where, prefix);
	if (found != n) {
		fprintf(stderr,
			"write-path: %s, %d writer(s): %ld objects named %s* expected in %s, ",
			t->label, writers, n, prefix, where);
		if (found < 0)
			fprintf(stderr, "cannot count them: %s\n", strerror((int)-found));
		else
			fprintf(stderr, "%ld found\n", found);
		bad = 1;
	}
	return bad ? -1 : 0;
}

/* Makes n creates on t with writers threads. Returns 0, or -1 after saying why. */
static int run(const struct target *t, const char *where, int writers, long n, struct result *res)
{
	struct worker *ws = xcalloc(writers, sizeof(*ws));
	pthread_t *tids = xcalloc(writers, sizeof(*tids));
	int64_t *lat = xcalloc(n, sizeof(*lat));
	pthread_barrier_t start;
	long first = 0;

	pthread_barrier_init(&start, NULL, writers + 1);
	for (int i = 0; i < writers; i++) {
		long share = n / writers + (i < n % writers);
		ws[i] = (struct worker){.t = t,
					.where = where,
					.writers = writers,
					.first = first,
					.n = share,
					.lat = lat + first,
					.start = &start};
		first += share;
		pthread_create(&tids[i], NULL, worker_main, &ws[i]);
	}
	pthread_barrier_wait(&start);
	int64_t t0 = mono_ns();
	for (int i = 0; i < writers; i++)
		pthread_join(tids[i], NULL);
	int64_t wall = mono_ns() - t0;
	pthread_barrier_destroy(&start);

	int r = check_run(t, where, ws, writers, n);
	qsort(lat, n, sizeof(*lat), cmp_i64);
	*res = (struct result){.failed = r < 0,
			       .rate = n / (wall / 1e9),
			       .p50 = percentile_ms(lat, n, 0.50),
			       .p99 = percentile_ms(lat, n, 0.99),
			       .max = lat[n - 1] / 1e6};
	free(lat);
	free(tids);
	free(ws);
	return r;
}

static void print_row(const char *label, int writers, const struct result *r,
		      const struct result *vs_fsync, const struct result *vs_sqlite)
{
	if (r->failed) {
		printf("%-18s %7d  FAILED (see the errors above)\n", label, writers);
		fflush(stdout);
		return;
	}
	printf("%-18s %7d %11.1f %9.3f %9.3f %9.3f", label, writers, r->rate, r->p50, r->p99,
	       r->max);
	if (vs_fsync)
		printf(" %9.2fx %9.2fx", r->rate / vs_fsync->rate, r->rate / vs_sqlite->rate);
	putchar('\n');
	fflush(stdout);
}

struct paths {
	const char *configmaps, *plain, *db;
};

/* The three runs at one concurrency, mount last. Returns 0 or -1. */
static int run_level(const struct paths *p, int writers, long n, struct result *mount)
{
	struct result fs, sq;

	int r = run(&fsync_target, p->plain, writers, n, &fs);
	print_row(fsync_target.label, writers, &fs, NULL, NULL);
	if (r < 0)
		return -1;
	r = run(&sqlite_target, p->db, writers, n, &sq);
	print_row(sqlite_target.label, writers, &sq, NULL, NULL);
	if (r < 0)
		return -1;
	r = run(&mount_target, p->configmaps, writers, n, mount);
	print_row(mount_target.label, writers, mount, &fs, &sq);
	return r;
}

static int verdict(const char *what, double value, const char *unit, int ok)
{
	printf("  %-34s %10.*f %-9s %s\n", what, strcmp(unit, "ms") ? 1 : 3, value, unit,
	       ok ? "met" : "MISSED");
	return ok;
}

/* Returns whether every target is met. */
static int print_targets(const struct result *one, const struct result *many, int writers)
{
	char what[64];
	int ok = 1;

	printf("\ntargets (mount):\n");
	ok &= verdict("1 writer: >= 2000 creates/s", one->rate, "creates/s",
		      one->rate >= TARGET_RATE_1);
	snprintf(what, sizeof(what), "%d writers: >= 5000 creates/s", writers);
	ok &= verdict(what, many->rate, "creates/s", many->rate >= TARGET_RATE_W);
	ok &= verdict("1 writer: p99 < 20 ms", one->p99, "ms", one->p99 < TARGET_P99_MS);
	snprintf(what, sizeof(what), "%d writers: p99 < 20 ms", writers);
	ok &= verdict(what, many->p99, "ms", many->p99 < TARGET_P99_MS);
	printf("all targets %s\n", ok ? "met" : "NOT met");
	return ok;
}

static int usage(FILE *out)
{
	fputs("usage: write-path --mount DIR --scratch DIR [-n CREATES] [-j WRITERS] [--strict]\n"
	      "\n"
	      "DIR for --mount is a running server's mount; --scratch is an empty directory\n"
	      "on the state dir's filesystem, for the fsync and sqlite references.\n"
	      "Exits 1 when a create fails or a run leaves the wrong count of objects,\n"
	      "3 with --strict when a target is missed.\n",
	      out);
	return out == stderr ? 2 : 0;
}

static void print_header(long n, int writers)
{
	char name[32];
	size_t len;

	object_name(name, writers, 0);
	free(object_doc(name, &len));
	printf("write-path: %ld creates per run, 1 then %d writers, documents of %zu bytes\n"
	       "(creates/s over the run's wall time; p50/p99/max: one create, in ms;\n"
	       " ratios: the mount's creates/s over the reference's at the same concurrency)\n\n",
	       n, writers, len);
	printf("%-18s %7s %11s %9s %9s %9s %10s %10s\n", "run", "writers", "creates/s", "p50 ms",
	       "p99 ms", "max ms", "vs fsync", "vs sqlite");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mount", required_argument, NULL, 'm'},
		{"scratch", required_argument, NULL, 's'},
		{"strict", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *mount = NULL, *scratch = NULL;
	long n = 10000, writers = 8;
	int c, strict = 0;

	while ((c = getopt_long(argc, argv, "m:s:n:j:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mount = optarg;
			break;
		case 's':
			scratch = optarg;
			break;
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 'j':
			writers = strtol(optarg, NULL, 10);
			break;
		case 'S':
			strict = 1;
			break;
		case 'h':
			return usage(stdout);
		default:
			return usage(stderr);
		}
	}
	if (!mount || !scratch || optind != argc || n < 1 || n > 999999 || writers < 2 ||
	    writers > 64)
		return usage(stderr);

	cleanup_free char *configmaps = xasprintf("%s/namespaces/default/configmaps", mount);
	cleanup_free char *plain = xasprintf("%s/plain", scratch);
	cleanup_free char *db = xasprintf("%s/reference.db", scratch);
	struct paths p = {configmaps, plain, db};
	struct result one, many;

	if (mkdir(plain, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "write-path: %s: %s\n", plain, strerror(errno));
		return 1;
	}
	print_header(n, (int)writers);
	if (run_level(&p, 1, n, &one) < 0 || run_level(&p, (int)writers, n, &many) < 0)
		return 1;
	printf("\nverified: %ld files cm-1-* and %ld files cm-%ld-* listed in %s\n", n, n, writers,
	       configmaps);
	return print_targets(&one, &many, (int)writers) || !strict ? 0 : 3;
}
