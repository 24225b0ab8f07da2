/*
 * util.c: allocation, errors, string buffers, a string hash map, time.
 *
 * The hash map is open addressing with linear probing and tombstones; it
 * grows at 70% load. Keys are copied, values are the caller's.
 */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int err_set(struct err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		e->code = code;
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	char pre[512], old[sizeof(e->msg)];
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%.400s: %.600s", pre, old);
}

static void oom(void)
{
	fputs("clusterfs: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

void cleanup_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

void cleanup_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

void sb_grow(struct strbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	sb->buf = xrealloc(sb->buf, cap);
	sb->cap = cap;
}

void sb_append(struct strbuf *sb, const void *p, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->buf + sb->len, p, n);
	sb->len += n;
	sb->buf[sb->len] = 0;
}

void sb_puts(struct strbuf *sb, const char *s)
{
	sb_append(sb, s, strlen(s));
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	sb_grow(sb, n);
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, n + 1, fmt, ap);
	va_end(ap);
	sb->len += n;
}

void sb_truncate(struct strbuf *sb, size_t size)
{
	if (size > sb->len) {
		sb_grow(sb, size - sb->len);
		memset(sb->buf + sb->len, 0, size - sb->len);
	}
	sb->len = size;
	if (sb->buf)
		sb->buf[size] = 0;
}

char *sb_steal(struct strbuf *sb, size_t *len)
{
	if (!sb->buf)
		sb_grow(sb, 0), sb->buf[0] = 0;
	char *p = sb->buf;
	if (len)
		*len = sb->len;
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return p;
}

void sb_free(struct strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

#define TOMB ((char *)1)

struct strmap {
	char **keys;
	void **vals;
	size_t cap, count, used; /* used counts live entries and tombstones */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

struct strmap *strmap_new(void)
{
	struct strmap *m = xcalloc(1, sizeof(*m));
	m->cap = 16;
	m->keys = xcalloc(m->cap, sizeof(char *));
	m->vals = xcalloc(m->cap, sizeof(void *));
	return m;
}

void strmap_free(struct strmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] && m->keys[i] != TOMB)
			free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	free(m);
}

/* Returns the slot holding key, or -1. */
static long find_slot(const struct strmap *m, const char *key)
{
	size_t i = hash_str(key) & (m->cap - 1);
	for (size_t n = 0; n < m->cap; n++, i = (i + 1) & (m->cap - 1)) {
		if (!m->keys[i])
			return -1;
		if (m->keys[i] != TOMB && strcmp(m->keys[i], key) == 0)
			return (long)i;
	}
	return -1;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	long i = find_slot(m, key);
	return i < 0 ? NULL : m->vals[i];
}

static void rehash(struct strmap *m, size_t cap)
{
	char **keys = m->keys;
	void **vals = m->vals;
	size_t old = m->cap;

	m->cap = cap;
	m->keys = xcalloc(cap, sizeof(char *));
	m->vals = xcalloc(cap, sizeof(void *));
	m->used = m->count;
	for (size_t i = 0; i < old; i++) {
		if (!keys[i] || keys[i] == TOMB)
			continue;
		size_t j = hash_str(keys[i]) & (cap - 1);
		while (m->keys[j])
			j = (j + 1) & (cap - 1);
		m->keys[j] = keys[i];
		m->vals[j] = vals[i];
	}
	free(keys);
	free(vals);
}

void *strmap_put(struct strmap *m, const char *key, void *val)
{
	long i = find_slot(m, key);
	if (i >= 0) {
		void *old = m->vals[i];
		m->vals[i] = val;
		return old;
	}
	if ((m->used + 1) * 10 > m->cap * 7)
		rehash(m, m->count * 2 + 1 > m->cap / 2 ? m->cap * 2 : m->cap);
	size_t j = hash_str(key) & (m->cap - 1);
	while (m->keys[j] && m->keys[j] != TOMB)
		j = (j + 1) & (m->cap - 1);
	if (!m->keys[j])
		m->used++;
	m->keys[j] = xstrdup(key);
	m->vals[j] = val;
	m->count++;
	return NULL;
}

void *strmap_del(struct strmap *m, const char *key)
{
	long i = find_slot(m, key);
	if (i < 0)
		return NULL;
	void *old = m->vals[i];
	free(m->keys[i]);
	m->keys[i] = TOMB;
	m->vals[i] = NULL;
	m->count--;
	return old;
}

size_t strmap_count(const struct strmap *m)
{
	return m->count;
}

void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *val, void *arg),
		 void *arg)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] && m->keys[i] != TOMB)
			fn(m->keys[i], m->vals[i], arg);
}

struct key_acc {
	char **keys;
	size_t n;
};

static void add_key(const char *key, void *val, void *arg)
{
	struct key_acc *a = arg;
	a->keys[a->n++] = xstrdup(key);
}

char **strmap_keys(const struct strmap *m, size_t *n)
{
	struct key_acc a = {xmalloc((m->count + 1) * sizeof(char *)), 0};

	strmap_each(m, add_key, &a);
	qsort(a.keys, a.n, sizeof(char *), cmp_strp);
	a.keys[a.n] = NULL;
	*n = a.n;
	return a.keys;
}

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void deadline_ms(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

void fmt_time(int64_t t, char buf[32])
{
	time_t s = (time_t)(t / 1000000000LL);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int mkdir_p(const char *path, unsigned mode)
{
	cleanup_free char *p = xstrdup(path);

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, mode) < 0 && errno != EEXIST ? -errno : 0;
}

int file_put(const char *path, const void *data, size_t len, unsigned mode)
{
	cleanup_free char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const char *p = data;

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int r = -errno;
			close(fd);
			unlink(tmp);
			return r;
		}
		p += w, len -= (size_t)w;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

char *file_get(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct strbuf sb = {0};
	char buf[8192];
	ssize_t r;

	if (fd < 0)
		return NULL;
	sb_grow(&sb, 1);
	while (sb.len < max && (r = read(fd, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int saved = errno;
			close(fd);
			sb_free(&sb);
			errno = saved;
			return NULL;
		}
		sb_append(&sb, buf, (size_t)r);
	}
	close(fd);
	if (len)
		*len = sb.len;
	return sb_steal(&sb, NULL);
}
