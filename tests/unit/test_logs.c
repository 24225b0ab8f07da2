/*
 * test_logs.c: log_append, the bound on a container's log: what it keeps
 * is never over the limit, always ends with the newest bytes, starts at a
 * line where one starts, and is moved rarely (at least half goes at once).
 */
#include "fs-internal.h"
#include "tap.h"

/* Appends text to sb under limit and returns what sb holds, for comparing. */
static const char *append(struct strbuf *sb, const char *text, size_t limit)
{
	log_append(sb, text, strlen(text), limit);
	return sb->buf ? sb->buf : "";
}

static void test_under_limit(void)
{
	struct strbuf sb = {0};

	ok(!strcmp(append(&sb, "hello\n", 100), "hello\n"), "an append under the limit is kept");
	ok(!strcmp(append(&sb, "world\n", 100), "hello\nworld\n"), "a second one follows it");
	ok(!strcmp(append(&sb, "", 12), "hello\nworld\n"), "exactly at the limit, nothing goes");
	sb_free(&sb);
}

static void test_whole_lines(void)
{
	struct strbuf sb = {0};

	append(&sb, "aaaa\nbbbb\ncccc\n", 16);
	ok(!strcmp(append(&sb, "dd\n", 16), "cccc\ndd\n"),
	   "over the limit, at least half goes, up to a line's end");
	sb_free(&sb);

	append(&sb, "0123456789", 12);
	ok(!strcmp(append(&sb, "abc", 12), "56789abc"),
	   "without a line's end, the cut is where it must be");
	sb_free(&sb);
}

static void test_big_append(void)
{
	struct strbuf sb = {0};

	append(&sb, "old\n", 10);
	ok(!strcmp(append(&sb, "0123456789ABC\n", 10), "456789ABC\n"),
	   "one line longer than the limit keeps its newest bytes");
	sb_free(&sb);

	append(&sb, "old\n", 10);
	ok(!strcmp(append(&sb, "xx\n0123\nyy\nzz\n", 10), "yy\nzz\n"),
	   "an append over the limit keeps its last whole lines");
	sb_free(&sb);

	ok(!strcmp(append(&sb, "hello\n", 1), "\n"), "a limit of one byte keeps the last");
	ok(!strcmp(append(&sb, "x", 1), "x"), "and then the next");
	sb_free(&sb);
}

/* Many short lines through a small bound: the invariants after each. */
static void test_stream(void)
{
	struct strbuf sb = {0};
	size_t limit = 1000, moves = 0, prev = 0, total = 0, bad_size = 0, bad_tail = 0,
	       bad_start = 0;
	char line[32];

	for (int i = 0; i < 10000; i++) {
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		log_append(&sb, line, (size_t)n, limit);
		total += (size_t)n;
		if (sb.len < prev + (size_t)n)
			moves++;
		prev = sb.len;
		bad_size += sb.len > limit;
		bad_tail += sb.len < (size_t)n || memcmp(sb.buf + sb.len - n, line, (size_t)n);
		bad_start += strncmp(sb.buf, "line ", 5) != 0;
	}
	ok(bad_size == 0, "never over the limit");
	ok(bad_tail == 0, "always ends with the newest line");
	ok(bad_start == 0, "always starts at a line's start");
	/* each move drops at least half of a buffer near the limit, less a line */
	ok(moves > 0 && moves <= total / (limit / 2 - sizeof(line)) + 1,
	   "the kept bytes are moved once per half a limit appended (%zu times for %zu bytes)",
	   moves, total);
	sb_free(&sb);
}

int main(void)
{
	test_under_limit();
	test_whole_lines();
	test_big_append();
	test_stream();
	return done_testing();
}
