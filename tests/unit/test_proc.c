/*
 * test_proc.c: proc_run, the agent's way of running crun, conmon and the
 * CNI plugins: what the program gets (arguments, environment, stdin, a
 * kept fd, a working directory, an empty signal mask, no other fd, a
 * session of its own when detached), what comes back (stdout, stderr,
 * exit status, a program that is not there, a deadline), and many
 * threads running programs at once, each getting its own output.
 */
#define _GNU_SOURCE
#include "proc.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int sh(const char *script, const struct proc_opts *o, char **out, struct err *e)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	return proc_run(argv, o, out, e);
}

static void test_output_and_status(void)
{
	struct err e = {0};
	char *out = NULL;

	int r = sh("echo hello; echo", NULL, &out, &e);
	ok(r == 0 && out && !strcmp(out, "hello"),
	   "stdout comes back, its trailing newlines trimmed: \"%s\"", out ? out : "(null)");
	free(out);
	out = NULL;
	ok(sh("echo partial; echo broken >&2; exit 3", NULL, &out, &e) == 3,
	   "the exit status comes back");
	ok(strstr(e.msg, "sh: broken") != NULL, "stderr is the error's message: %s", e.msg);
	ok(out && !strcmp(out, "partial"), "and stdout still comes back");
	free(out);
	ok(sh("kill -KILL $$", NULL, NULL, &e) == 128 + SIGKILL, "a signal is 128 + its number");
	const char *missing[] = {"no-such-program-here", NULL};
	ok(proc_run(missing, NULL, NULL, &e) == 127 && strstr(e.msg, "not found"),
	   "a program that is not there: 127, %s", e.msg);
	/* Given input it never reads: an EPIPE for us, not a SIGPIPE. */
	struct proc_opts in = {.input = "{\"cniVersion\": \"1.0.0\"}", .keep_fd = -1};
	int lost = 0;
	for (int i = 0; i < 50; i++)
		lost += proc_run(missing, &in, NULL, &e) != 127;
	ok(lost == 0, "given input, a program that is not there: 127 each time (%d of 50 not)",
	   lost);
	const char *quits[] = {"true", NULL};
	lost = 0;
	for (int i = 0; i < 50; i++)
		lost += proc_run(quits, &in, NULL, &e) != 0;
	ok(lost == 0, "one that exits without reading it: 0 each time (%d of 50 not)", lost);
}

static void test_input_env_cwd(void)
{
	struct err e = {0};
	char *out = NULL;
	int r;
	const char *cat[] = {"cat", NULL};
	struct proc_opts o = {.input = "line one\nline two\n", .keep_fd = -1};

	ok(proc_run(cat, &o, &out, &e) == 0 && out && !strcmp(out, "line one\nline two"),
	   "input reaches stdin");
	free(out);
	out = NULL;

	/* More input than a pipe holds: written while stdout is read. */
	size_t big = 1 << 20;
	char *text = malloc(big + 1);
	memset(text, 'x', big);
	text[big] = '\0';
	o.input = text;
	ok(proc_run(cat, &o, &out, &e) == 0 && out && strlen(out) == big,
	   "a megabyte of input comes back whole");
	free(out);
	free(text);
	out = NULL;

	ok(sh("cat", NULL, &out, &e) == 0 && out && !*out, "without input, stdin is empty");
	free(out);
	out = NULL;

	setenv("CFS_TEST_VAR", "agent's", 1);
	setenv("CFS_KEPT", "kept", 1);
	const char *env[] = {"CFS_TEST_VAR=given", "CFS_OTHER=2", NULL};
	struct proc_opts eo = {.env = env, .keep_fd = -1};
	r = sh("echo $(env | grep -c CFS_TEST_VAR) $CFS_TEST_VAR $CFS_OTHER $CFS_KEPT", &eo, &out,
	       &e);
	ok(r == 0 && out && !strcmp(out, "1 given 2 kept"),
	   "env overrides the agent's variables of the same name, keeps the rest: %s",
	   out ? out : "(null)");
	free(out);
	out = NULL;

	struct proc_opts co = {.cwd = "/tmp", .keep_fd = -1};
	ok(sh("pwd", &co, &out, &e) == 0 && out && !strcmp(out, "/tmp"), "cwd is where it runs");
	free(out);
	co.cwd = "/nonexistent-dir";
	ok(sh("pwd", &co, NULL, &e) == 126, "a cwd that is not there: 126");
}

static void test_fds_and_signals(void)
{
	struct err e = {0};
	char *out = NULL;
	int fds[2];

	ok(pipe(fds) == 0, "a pipe");
	struct proc_opts o = {.keep_fd = fds[1]};
	ok(sh("echo through-three >&3", &o, NULL, &e) == 0, "keep_fd is fd 3");
	close(fds[1]);
	char buf[64] = {0};
	ok(read(fds[0], buf, sizeof(buf) - 1) > 0 && !strcmp(buf, "through-three\n"),
	   "what it wrote there arrives: %s", buf);
	close(fds[0]);

	int stray = open("/dev/null", O_RDONLY); /* not close-on-exec */
	ok(stray > 2, "an fd without close-on-exec");
	int r = sh("ls /proc/$$/fd | tr '\\n' ' '", NULL, &out, &e);
	ok(r == 0 && out && !strcmp(out, "0 1 2"), "only fds 0-2 reach the program: %s",
	   out ? out : "(null)");
	free(out);
	out = NULL;
	close(stray);

	sigset_t term, now;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	r = sh("grep SigBlk /proc/$$/status", NULL, &out, &e);
	ok(r == 0 && out && strstr(out, "0000000000000000"),
	   "the program starts with no signal blocked: %s", out ? out : "(null)");
	free(out);
	out = NULL;
	pthread_sigmask(SIG_BLOCK, NULL, &now);
	ok(sigismember(&now, SIGTERM) && !sigismember(&now, SIGINT),
	   "the caller's own mask is as it was");
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);

	const char *sid = "read pid comm state ppid pgrp sid rest < /proc/$$/stat; "
			  "[ $pid = $sid ] && echo own || echo shared";
	ok(sh(sid, NULL, &out, &e) == 0 && out && !strcmp(out, "shared"),
	   "by default, the caller's session");
	free(out);
	out = NULL;
	struct proc_opts d = {.flags = PROC_DETACH, .keep_fd = -1};
	ok(sh(sid, &d, &out, &e) == 0 && out && !strcmp(out, "own"),
	   "PROC_DETACH: a session of its own");
	free(out);
}

static void test_deadline(void)
{
	struct err e = {0};
	char path[] = "/tmp/cfs-test-proc-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	cleanup_free char *script = xasprintf("echo $$ > %s; exec sleep 30", path);
	struct proc_opts o = {.timeout_ms = 300, .keep_fd = -1};
	int64_t t0 = mono_ms();

	ok(sh(script, &o, NULL, &e) == -ETIMEDOUT, "past its deadline: -ETIMEDOUT (%s)", e.msg);
	int64_t took = mono_ms() - t0;
	ok(took >= 300 && took < 10000,
	   "it returned after the deadline, not after the program (%lld ms)", (long long)took);
	cleanup_free char *text = file_get(path, 64, NULL);
	int pid = text ? atoi(text) : 0;
	ok(pid > 0 && kill(pid, 0) < 0 && errno == ESRCH,
	   "the program was killed and reaped (pid %d)", pid);
	unlink(path);
}

#define THREADS 8
#define RUNS	25

static void *runner(void *arg)
{
	long id = (long)arg, good = 0;

	for (int i = 0; i < RUNS; i++) {
		char want[32], script[64];
		struct err e = {0};
		char *out = NULL;
		snprintf(want, sizeof(want), "%ld-%d", id, i);
		snprintf(script, sizeof(script), "echo %s", want);
		if (sh(script, NULL, &out, &e) == 0 && out && !strcmp(out, want))
			good++;
		free(out);
	}
	return (void *)good;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	long good = 0;

	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, runner, (void *)i);
	for (int i = 0; i < THREADS; i++) {
		void *g;
		pthread_join(t[i], &g);
		good += (long)g;
	}
	ok(good == THREADS * RUNS,
	   "%d threads running programs at once: %ld of %d got their own output", THREADS, good,
	   THREADS * RUNS);
}

int main(void)
{
	/* SIGPIPE as the agent has it: by default, it would end the process. */
	test_output_and_status();
	test_input_env_cwd();
	test_fds_and_signals();
	test_deadline();
	test_threads();
	return done_testing();
}
