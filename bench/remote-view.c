/*
 * remote-view.c: one timed pass of object file creates or reads in one
 * directory, for bench/remote-view, which runs it through the server's
 * own mount and through a `clusterfs mount` of its 9P export.
 *
 *   write  N creates of PREFIX-000000.yaml ...: open(O_CREAT) + write +
 *          close(), which returns once the object is stored (a rejected
 *          one fails close); then the files named PREFIX* are counted
 *   read   N reads of the same names: open + read to EOF + close; each
 *          must hold its "name: NAME" line
 *
 * A C loop rather than a shell's, so that the figure is the filesystem's
 * and not fork/exec's. One process, one operation at a time: each is a
 * full round trip through the view, as a script's would be. It prints one
 * line, "OPS/S P50_MS P99_MS" (ops/s over the pass's wall time, monotonic
 * clock; percentiles of single operations), and exits 1 when an operation
 * fails or the count is wrong, saying why on stderr.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int fail(const char *step, const char *path, int err)
{
	fprintf(stderr, "remote-view: %s %s: %s\n", step, path, strerror(err));
	return -err;
}

/* A valid ConfigMap named name, about 140 bytes. Caller frees. */
static char *object_doc(const char *name, size_t *len)
{
	char *doc = xasprintf("apiVersion: v1\n"
			      "kind: ConfigMap\n"
			      "metadata:\n"
			      "  name: %s\n"
			      "data:\n"
			      "  owner: bench-remote-view\n"
			      "  value: payload-of-%s\n",
			      name, name);
	*len = strlen(doc);
	return doc;
}

static int create_one(const char *path, const char *name)
{
	size_t len;
	cleanup_free char *doc = object_doc(name, &len);
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return fail("open", path, errno);
	ssize_t done = write(fd, doc, len);
	if (done != (ssize_t)len) {
		int err = done < 0 ? errno : EIO;
		close(fd);
		return fail(done < 0 ? "write" : "short write", path, err);
	}
	if (close(fd) < 0)
		return fail("close", path, errno);
	return 0;
}

static int read_one(const char *path, const char *name)
{
	char buf[65536], want[128];
	size_t got = 0;
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail("open", path, errno);
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	int err = n < 0 ? errno : 0;
	if (close(fd) < 0 && !err)
		err = errno;
	if (err)
		return fail("read", path, err);
	buf[got] = 0;
	snprintf(want, sizeof(want), "  name: %s\n", name);
	if (!strstr(buf, want))
		return fail("read (no name line in it)", path, EIO);
	return 0;
}

static long count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	long n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
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
	return sorted[(rank < 1 ? 1 : rank) - 1] / 1e6;
}

/* Runs n operations; fills lat (n entries, ns) and *wall. Returns 0 or -errno. */
static int run(const char *dir, const char *prefix, long n, int writing, int64_t *lat,
	       int64_t *wall)
{
	char path[4096], name[128];
	int64_t start = mono_ns();

	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%06ld", prefix, i);
		snprintf(path, sizeof(path), "%s/%s.yaml", dir, name);
		int64_t t0 = mono_ns();
		int rc = writing ? create_one(path, name) : read_one(path, name);
		lat[i] = mono_ns() - t0;
		if (rc < 0)
			return rc;
	}
	*wall = mono_ns() - start;
	return 0;
}

static int usage(FILE *out)
{
	fputs("usage: remote-view --dir DIR --mode write|read --prefix PREFIX [-n N]\n"
	      "\n"
	      "Creates (write) or reads (read) N object files PREFIX000000.yaml ... in DIR,\n"
	      "one at a time, and prints \"OPS/S P50_MS P99_MS\". Reads need the files a\n"
	      "write pass with the same PREFIX made. Exits 1 when an operation fails.\n",
	      out);
	return out == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"mode", required_argument, NULL, 'm'},
		{"prefix", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *dir = NULL, *mode = NULL, *prefix = NULL;
	long n = 1000;
	int c;

	while ((c = getopt_long(argc, argv, "d:m:p:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'p':
			prefix = optarg;
			break;
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 'h':
			return usage(stdout);
		default:
			return usage(stderr);
		}
	}
	if (!dir || !mode || !prefix || optind != argc || n < 1 || n > 999999 ||
	    (strcmp(mode, "write") && strcmp(mode, "read")))
		return usage(stderr);

	int writing = !strcmp(mode, "write");
	cleanup_free int64_t *lat = xcalloc((size_t)n, sizeof(*lat));
	int64_t wall;
	if (run(dir, prefix, n, writing, lat, &wall) < 0)
		return 1;
	if (writing) {
		long found = count_prefix(dir, prefix);
		if (found != n) {
			if (found < 0)
				fail("list", dir, (int)-found);
			else
				fprintf(stderr, "remote-view: %ld files %s* in %s, %ld expected\n",
					found, prefix, dir, n);
			return 1;
		}
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
	printf("%.1f %.3f %.3f\n", n / (wall / 1e9), percentile_ms(lat, n, 0.50),
	       percentile_ms(lat, n, 0.99));
	return 0;
}
