/*
 * util.h: the small things every module uses.
 *
 * Allocation that aborts on failure (so daemon code has no malloc-failure
 * branches), `struct err` for errors that carry a message up the stack,
 * cleanup attributes, a growable string buffer, a string-keyed hash map,
 * and time helpers.
 */
#ifndef CFS_UTIL_H
#define CFS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An error: a positive errno and a message that names what failed. */
struct err {
	int code;
	char msg[1024];
};

/* Sets e (which may be NULL) and returns -code. */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepends "PREFIX: " to e's message, keeping its code. */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}
void cleanup_closep(int *fd);
void cleanup_fclosep(FILE **f);
#define cleanup_free   __attribute__((cleanup(cleanup_freep)))
#define cleanup_close  __attribute__((cleanup(cleanup_closep)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclosep)))

/* A growable byte buffer, always NUL-terminated after len. */
struct strbuf {
	char *buf;
	size_t len, cap;
};
void sb_grow(struct strbuf *sb, size_t extra);
void sb_append(struct strbuf *sb, const void *p, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the length to size, zero-filling what it adds. */
void sb_truncate(struct strbuf *sb, size_t size);
/* Hands the buffer to the caller (who frees it) and resets sb. */
char *sb_steal(struct strbuf *sb, size_t *len);
void sb_free(struct strbuf *sb);

/* A hash map from strings (copied) to pointers (not owned). */
struct strmap;
struct strmap *strmap_new(void);
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Returns the value it replaced, or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *val);
/* Returns the value it removed, or NULL. */
void *strmap_del(struct strmap *m, const char *key);
size_t strmap_count(const struct strmap *m);
/* Calls fn for each entry in no particular order; fn must not change m. */
void strmap_each(const struct strmap *m, void (*fn)(const char *key, void *val, void *arg),
		 void *arg);

/* The keys of m, sorted, NULL-terminated (*n of them). Caller frees each
 * and the array. */
char **strmap_keys(const struct strmap *m, size_t *n);

int64_t now_ns(void);
/* The monotonic clock in milliseconds: for intervals and deadlines. */
int64_t mono_ms(void);
/* *ts = the realtime clock ms milliseconds from now: a deadline for
 * pthread_cond_timedwait() and its kind. */
void deadline_ms(struct timespec *ts, int ms);

/* Creates path and its missing parents (mkdir -p). 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);
/* Replaces path with len bytes of data: a temporary file renamed over it. 0 or -errno. */
int file_put(const char *path, const void *data, size_t len, unsigned mode);
/* The whole of path, NUL-terminated (*len without the NUL; len may be NULL),
 * at most max bytes; caller frees. NULL with errno set. */
char *file_get(const char *path, size_t max, size_t *len);
/* Formats t (ns since the epoch) as RFC 3339 UTC into buf[32]. */
void fmt_time(int64_t t, char buf[32]);

int cmp_strp(const void *a, const void *b);

#endif
