/*
 * tap.h: the Test Anything Protocol for the unit tests, header only.
 * ok(cond, fmt, ...) prints one result; done_testing() prints the plan
 * and returns the exit status (non-zero when anything failed).
 */
#ifndef CFS_TAP_H
#define CFS_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

static inline int ok(int cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

static inline void diag(const char *s)
{
	printf("# %s\n", s);
}

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}

#endif
