/*
 * test_p9.c: the 9P2000.L client against a real diod: attaching and what
 * fails to; walk, getattr, lopen, read, lcreate, write, fsync, mkdir,
 * readdir, rename, remove, setattr and statfs, checked on disk, and the
 * errnos they give; reads and writes of many messages; more threads than
 * tags, with fid numbers reused and never shared; a server stopped for
 * 6.5 s; interrupted requests
 * and their flushes; the server killed and started again; p9_shutdown.
 *
 * The test starts diod on a free port of 127.0.0.1, exporting a fresh
 * directory under /tmp and diod's ctl tree: there a client without an
 * aname finds the export, and the test reads how many requests the server
 * holds (the file "tpools" has a line per export: its name, then the
 * requests queued or at work). Files are made and checked on disk beside
 * what the client does through the server.
 *
 * Slow requests are opens of a FIFO for reading, which wait in the server
 * until a writer comes (a read of a FIFO does not wait: diod reads with
 * pread, which fails on it). The test lets them through by opening the
 * FIFO itself.
 *
 * Whatever happens, diod is stopped and the directory removed: at exit,
 * or from the watchdog thread, which takes SIGINT, SIGTERM and the SIGALRM
 * that each phase arms, so that a hang fails the test rather than blocking
 * it. diod also dies with the test (PR_SET_PDEATHSIG) if it is killed.
 */
#define _GNU_SOURCE
#include "export.h"
#include "p9.h"
#include "tap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAGS	 64    /* the client's requests in flight at once (fs/p9.c) */
#define START_MS 10000 /* diod accepts connections within this */
#define STOP_MS	 3000  /* after SIGTERM, diod gets SIGKILL */
#define THREADS	 100
#define CYCLES	 200
#define MAX_FID	 4096 /* fid numbers the thread test tracks */

static const char hello[] = "hello over 9P\n";
static const char made[] = "made through 9P\n";

static char dir[] = "/tmp/cfs-test-p9-XXXXXX";
static int made_dir;
static char *diod_path;
static pid_t diod_pid; /* the diod running, 0 when none */
static int port;
static char addr[32];
static _Atomic(const char *) phase = "setting up";
static sigset_t watched;
static pthread_t watchdog_thread;

/* ---- diod, the directory, the watchdog ---- */

static void msleep(int ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L}, NULL);
}

/* A path in the exported directory; caller frees. */
static char *in_dir(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static struct sockaddr_in loopback(int p)
{
	return (struct sockaddr_in){.sin_family = AF_INET,
				    .sin_port = htons((uint16_t)p),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

/* A port of 127.0.0.1 that nothing listens on: one the kernel picks. */
static int free_port(void)
{
	struct sockaddr_in sa = loopback(0);
	socklen_t len = sizeof(sa);
	cleanup_close int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	return ntohs(sa.sin_port);
}

static int knock(void)
{
	struct sockaddr_in sa = loopback(port);
	cleanup_close int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	return fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
}

/* In the child: only system calls from here to exec. */
static void diod_child(const char *const argv[], pid_t parent)
{
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigset_t none;
	int null = open("/dev/null", O_RDWR);

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || null < 0)
		_exit(126);
	/* diod raises its core limit and may crash when stopped while it
	 * serves: a core file goes with the directory, not into the caller's. */
	if (chdir(dir) < 0)
		_exit(126);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	syscall(SYS_close_range, 3, ~0U, 0);
	/* A client gone mid-reply (the test shuts some down) must not end diod. */
	sigaction(SIGPIPE, &ign, NULL);
	/* The test blocks the signals its watchdog takes; diod must get them. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

/* Starts diod on port and waits until it accepts connections. */
static int start_diod(struct err *e)
{
	cleanup_free char *listen = xasprintf("127.0.0.1:%d", port);
	const char *argv[] = {diod_path, "-f", "-c", "/dev/null", "-n",	 "-N", "-l",
			      listen,	 "-e", dir,  "-e",	  "ctl", NULL};
	int64_t deadline = mono_ms() + START_MS;
	pid_t parent = getpid(), pid = fork();
	int status;

	if (pid < 0)
		return err_set(e, errno, "fork: %s", strerror(errno));
	if (pid == 0)
		diod_child(argv, parent);
	diod_pid = pid;
	while (!knock()) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			diod_pid = 0;
			return err_set(e, EIO, "diod ended before accepting connections (%s %d)",
				       WIFEXITED(status) ? "exit status" : "signal",
				       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		}
		if (mono_ms() > deadline)
			return err_set(e, ETIMEDOUT,
				       "diod did not accept connections on %s in %d s", listen,
				       START_MS / 1000);
		msleep(10);
	}
	return 0;
}

/* Sends diod sig and reaps it; SIGKILL when it has not ended in STOP_MS. */
static void stop_diod(int sig)
{
	int64_t deadline = mono_ms() + STOP_MS;
	pid_t r;

	if (!diod_pid)
		return;
	kill(diod_pid, sig);
	while ((r = waitpid(diod_pid, NULL, WNOHANG)) == 0 && mono_ms() < deadline)
		msleep(10);
	if (r == 0) {
		kill(diod_pid, SIGKILL);
		waitpid(diod_pid, NULL, 0);
	}
	diod_pid = 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void cleanup(void)
{
	stop_diod(SIGTERM);
	if (made_dir)
		nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void bail_out(const char *why)
{
	printf("Bail out! %s\n", why);
	exit(1);
}

/*
 * Takes the signals every other thread blocks; SIGUSR1 is the test saying
 * it is done. On any other, it keeps stdout locked, so that the test
 * stops at its next line of output, and ends the process once it has
 * cleaned up.
 */
static void *watchdog(void *arg)
{
	int sig = 0;

	sigwait(&watched, &sig);
	if (sig == SIGUSR1)
		return NULL;
	flockfile(stdout);
	if (sig == SIGALRM)
		printf("Bail out! %s: not done in time, something hangs\n", atomic_load(&phase));
	else
		printf("Bail out! %s, during %s\n", strsignal(sig), atomic_load(&phase));
	fflush(stdout);
	stop_diod(SIGKILL);
	cleanup();
	_exit(1);
}

static void start_watchdog(void)
{
	sigemptyset(&watched);
	sigaddset(&watched, SIGALRM);
	sigaddset(&watched, SIGINT);
	sigaddset(&watched, SIGTERM);
	sigaddset(&watched, SIGHUP);
	sigaddset(&watched, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &watched, NULL);
	if (pthread_create(&watchdog_thread, NULL, watchdog, NULL) != 0)
		bail_out("cannot start the watchdog thread");
}

static void stop_watchdog(void)
{
	alarm(0);
	pthread_kill(watchdog_thread, SIGUSR1);
	pthread_join(watchdog_thread, NULL);
}

/* Names what runs now and gives it seconds to end. */
static void begin(const char *name, unsigned seconds)
{
	atomic_store(&phase, name);
	alarm(seconds);
}

/* ---- helpers over the client ---- */

static int interrupted(void);

static struct p9 *open_at(const char *where, const char *aname, uint32_t msize, int intr,
			  struct err *e)
{
	struct p9_config cfg = {.addr = where,
				.aname = aname,
				.msize = msize,
				.interrupted = intr ? interrupted : NULL};
	return p9_open(&cfg, e);
}

/*
 * How many requests for the export diod holds, queued or at work: the
 * second field of the export's line in ctl's "tpools"; -1 when unknown.
 */
static int server_reqs(struct p9 *c)
{
	size_t len = strlen(dir);
	char buf[8192];
	struct p9fid f;
	ssize_t n = -1;
	int reqs = -1;

	if (p9_walk(c, p9_root(c), "tpools", &f) < 0)
		return -1;
	if (p9_lopen(c, f, O_RDONLY) == 0)
		n = p9_read(c, f, 0, buf, sizeof(buf) - 1);
	p9_clunk(c, f);
	buf[n > 0 ? n : 0] = 0;
	for (char *line = buf; line < buf + n; line = strchrnul(line, '\n') + 1)
		if (!strncmp(line, dir, len) && line[len] == ' ')
			reqs = atoi(line + len + 1);
	return reqs;
}

/* Polls until diod holds want requests for the export; returns the last count. */
static int wait_reqs(struct p9 *c, int want, int ms)
{
	int64_t deadline = mono_ms() + ms;
	int n;

	while ((n = server_reqs(c)) != want && mono_ms() < deadline)
		msleep(10);
	return n;
}

/* A request made on a thread of its own, so that a hang is seen, not suffered. */
enum bg_op { BG_LOPEN, BG_GETATTR };

struct bg {
	struct p9 *p;
	struct p9fid f;
	enum bg_op op;
	pthread_t thread;
	atomic_int done; /* rc is set before it */
	int rc;
};

static void *bg_main(void *arg)
{
	struct bg *b = arg;
	struct p9attr a;

	b->rc = b->op == BG_LOPEN ? p9_lopen(b->p, b->f, O_RDONLY) : p9_getattr(b->p, b->f, &a);
	atomic_store(&b->done, 1);
	return NULL;
}

static void bg_start(struct bg *b, struct p9 *p, struct p9fid f, enum bg_op op)
{
	b->p = p;
	b->f = f;
	b->op = op;
	atomic_store(&b->done, 0);
	if (pthread_create(&b->thread, NULL, bg_main, b) != 0)
		bail_out("cannot start a thread");
}

/* Waits up to ms for all n requests to end; returns how many have. */
static int bg_wait(struct bg *b, int n, int ms)
{
	int64_t deadline = mono_ms() + ms;

	for (;;) {
		int done = 0;
		for (int i = 0; i < n; i++)
			done += atomic_load(&b[i].done);
		if (done == n || mono_ms() >= deadline)
			return done;
		msleep(5);
	}
}

/* Opens the FIFO for reading and writing, which never waits: every open
 * for reading that waits in the server goes through while it is open. */
static int fifo_writer(void)
{
	cleanup_free char *path = in_dir("fifo");
	return open(path, O_RDWR | O_CLOEXEC);
}

/* ---- attach ---- */

static void test_open(void)
{
	struct err e = {0};
	struct p9 *p = open_at(addr, dir, 0, 0, &e);

	ok(p != NULL, "p9_open attaches to the exported directory%s%s", p ? "" : ": ",
	   p ? "" : e.msg);
	if (p) {
		ok(p9_root(p).gen != 0 && !strcmp(p9_aname(p), dir),
		   "a session (generation %llu), its aname the directory",
		   (unsigned long long)p9_root(p).gen);
		ok(p9_iosize(p) >= 4096 - P9_IOHDR && p9_iosize(p) <= 256 * 1024,
		   "iosize within what was asked: %u", p9_iosize(p));
	}
	p9_close(p);

	p = open_at(addr, NULL, 0, 0, &e);
	ok(p && !strcmp(p9_aname(p), dir), "without an aname: the first export in diod's ctl (%s)",
	   p ? p9_aname(p) : e.msg);
	p9_close(p);

	p = open_at(addr, NULL, 8192, 0, &e);
	ok(p && p9_iosize(p) == 8192 - P9_IOHDR, "msize 8192 asked: iosize %u",
	   p ? p9_iosize(p) : 0);
	p9_close(p);

	p = open_at(addr, "/no-such-export", 0, 0, &e);
	ok(!p && e.code && strstr(e.msg, "/no-such-export"),
	   "an aname diod does not export: fails, naming it: %s", e.msg);
	p9_close(p);
}

static void test_open_fails(void)
{
	char nobody[32];
	struct err e = {0};
	struct p9 *p;

	snprintf(nobody, sizeof(nobody), "127.0.0.1:%d", free_port());
	p = open_at(nobody, dir, 0, 0, &e);
	ok(!p && e.code == ECONNREFUSED && strstr(e.msg, nobody),
	   "a port nobody listens on: ECONNREFUSED, naming the address: %s", e.msg);
	p9_close(p);

	const char *bad[] = {"nocolon", "127.0.0.1:", ":564"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		p = open_at(bad[i], dir, 0, 0, &e);
		ok(!p && e.code == EINVAL && strstr(e.msg, bad[i]), "address \"%s\": EINVAL: %s",
		   bad[i], e.msg);
		p9_close(p);
	}
}

/* ---- files ---- */

static void test_read(struct p9 *p)
{
	cleanup_free char *path = in_dir("hello.txt");
	size_t len = strlen(hello);
	struct p9attr a = {0};
	struct p9fid f;
	struct stat st;
	char buf[64];
	ssize_t n;

	ok(stat(path, &st) == 0 && p9_walk(p, p9_root(p), "hello.txt", &f) == 0,
	   "walk to a file written on disk");
	int rc = p9_getattr(p, f, &a);
	ok(rc == 0 && a.size == len && S_ISREG(a.mode) && (a.mode & 07777) == 0644 &&
		   a.qid.path == st.st_ino,
	   "getattr: size %llu, mode %o, qid.path the inode (%d)", (unsigned long long)a.size,
	   a.mode, rc);
	ok(p9_lopen(p, f, O_RDONLY) == 0, "lopen for reading");
	n = p9_read(p, f, 0, buf, sizeof(buf));
	ok(n == (ssize_t)len && !memcmp(buf, hello, len), "read: the file's bytes (%zd)", n);
	n = p9_read(p, f, 6, buf, 4);
	ok(n == 4 && !memcmp(buf, "over", 4), "read at an offset: %.*s", n > 0 ? (int)n : 0, buf);
	ok(p9_read(p, f, len, buf, sizeof(buf)) == 0, "read at the end: 0");
	p9_clunk(p, f);
}

static void test_walks(struct p9 *p)
{
	cleanup_free char *deep = xstrdup(dir);
	struct p9fid f, d;
	struct p9attr a = {0};
	struct stat st;

	ok(p9_walk(p, p9_root(p), "missing", &f) == -ENOENT, "walk to a missing name: -ENOENT");
	ok(p9_walk(p, p9_root(p), "", &d) == 0 && stat(dir, &st) == 0 &&
		   p9_getattr(p, d, &a) == 0 && a.qid.path == st.st_ino && S_ISDIR(a.mode),
	   "walk \"\" clones the root");
	ok(p9_walk(p, d, "hello.txt", &f) == 0 && p9_getattr(p, f, &a) == 0 &&
		   a.size == strlen(hello),
	   "a walk from the clone");
	p9_clunk(p, f);
	p9_clunk(p, d);

	/* More names than one Twalk carries (16): the client walks in steps. */
	for (int i = 0; i < 20; i++) {
		char *next = xasprintf("%s/d%d", deep, i);
		free(deep);
		deep = next;
		mkdir(deep, 0755);
	}
	cleanup_free char *leaf = xasprintf("%s/leaf", deep);
	cleanup_free char *rel = xstrdup(deep + strlen(dir) + 1);
	cleanup_free char *path = xasprintf("%s/leaf", rel);
	file_put(leaf, hello, strlen(hello), 0644);
	ok(stat(leaf, &st) == 0 && p9_walk(p, p9_root(p), path, &f) == 0 &&
		   p9_getattr(p, f, &a) == 0 && a.qid.path == st.st_ino,
	   "a walk of 21 names reaches the file");
	p9_clunk(p, f);
	*strstr(path, "d18") = 'x';
	ok(p9_walk(p, p9_root(p), path, &f) == -ENOENT,
	   "a walk of 21 names whose 19th is missing: -ENOENT");
}

static void test_create(struct p9 *p)
{
	cleanup_free char *path = in_dir("made.txt");
	cleanup_free char *text = NULL;
	size_t len = strlen(made);
	struct p9fid d;
	struct stat st;
	ssize_t n;

	ok(p9_walk(p, p9_root(p), "", &d) == 0 &&
		   p9_lcreate(p, d, "made.txt", O_WRONLY | O_CREAT | O_EXCL, 0640, 0) == 0,
	   "lcreate made.txt");
	n = p9_write(p, d, 0, made, len);
	ok(n == (ssize_t)len, "write: %zd of %zu", n, len);
	ok(p9_fsync(p, d) == 0, "fsync");
	p9_clunk(p, d);
	text = file_get(path, 4096, NULL);
	int rc = stat(path, &st);
	ok(text && !strcmp(text, made) && rc == 0 && (st.st_mode & 07777) == 0640,
	   "on disk: the bytes written, mode %o", (unsigned)(st.st_mode & 07777));

	ok(p9_walk(p, p9_root(p), "", &d) == 0 &&
		   p9_lcreate(p, d, "made.txt", O_WRONLY | O_CREAT | O_EXCL, 0640, 0) == -EEXIST,
	   "lcreate with O_EXCL of a name that is there: -EEXIST");
	p9_clunk(p, d);
}

/* Lists the directory f in steps of a small buffer; counts calls. */
static int list_dir(struct p9 *p, struct p9fid f, int seen[40], int *dots, int *others, int *calls)
{
	uint8_t buf[256];
	uint64_t off = 0;
	ssize_t n;

	while ((n = p9_readdir(p, f, off, buf, sizeof(buf))) > 0 && ++*calls < 1000) {
		struct p9dirent de;
		uint32_t pos = 0;
		int r, i;
		while ((r = p9_next_dirent(buf, (uint32_t)n, &pos, &de)) == 1) {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", de.name.len, de.name.s);
			if (sscanf(name, "entry-%d", &i) == 1 && i >= 0 && i < 40)
				seen[i]++;
			else if (!strcmp(name, ".") || !strcmp(name, ".."))
				++*dots;
			else
				++*others;
			off = de.offset;
		}
		if (r < 0)
			return r;
	}
	return (int)n;
}

static void test_dirs(struct p9 *p)
{
	cleanup_free char *sub = in_dir("sub");
	int seen[40] = {0}, dots = 0, others = 0, calls = 0, once = 0, rc;
	struct p9fid f;
	struct stat st;

	ok(p9_mkdir(p, p9_root(p), "sub", 0755, 0) == 0 && stat(sub, &st) == 0 &&
		   S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755,
	   "mkdir: a directory on disk");
	ok(p9_mkdir(p, p9_root(p), "sub", 0755, 0) == -EEXIST,
	   "mkdir of a name that is there: -EEXIST");
	for (int i = 0; i < 40; i++) {
		cleanup_free char *e = xasprintf("%s/entry-%02d", sub, i);
		file_put(e, "x", 1, 0644);
	}
	ok(p9_walk(p, p9_root(p), "sub", &f) == 0 && p9_lopen(p, f, O_RDONLY) == 0,
	   "walk to it and open it");
	rc = list_dir(p, f, seen, &dots, &others, &calls);
	for (int i = 0; i < 40; i++)
		once += seen[i] == 1;
	ok(rc == 0 && once == 40 && dots <= 2 && others == 0 && calls > 1,
	   "readdir: each of 40 names once, nothing else (%d once, %d others, %d calls, rc %d)",
	   once, others, calls, rc);
	p9_clunk(p, f);
}

static void test_rename_remove(struct p9 *p)
{
	cleanup_free char *from = in_dir("made.txt");
	cleanup_free char *to = in_dir("sub/moved.txt");
	cleanup_free char *sub = in_dir("sub");
	cleanup_free char *text = NULL;
	struct p9attr a = {0};
	struct p9fid f, d;
	struct stat st;

	ok(p9_walk(p, p9_root(p), "made.txt", &f) == 0 && p9_walk(p, p9_root(p), "sub", &d) == 0,
	   "walk to a file and a directory");
	ok(p9_rename(p, f, d, "moved.txt") == 0 && access(from, F_OK) < 0 &&
		   (text = file_get(to, 4096, NULL)) && !strcmp(text, made),
	   "rename into the directory: moved on disk");
	ok(p9_getattr(p, f, &a) == 0 && a.size == strlen(made), "the fid follows the file");
	ok(p9_remove(p, f) == 0 && access(to, F_OK) < 0 && errno == ENOENT,
	   "remove: gone from disk");
	ok(p9_remove(p, d) == -ENOTEMPTY && stat(sub, &st) == 0,
	   "remove of a directory with entries: -ENOTEMPTY, and it stays");
}

static void test_setattr_statfs(struct p9 *p)
{
	cleanup_free char *path = in_dir("trunc.txt");
	struct p9setattr sa = {.valid = P9_SETATTR_SIZE | P9_SETATTR_MODE, .size = 4, .mode = 0600};
	struct p9statfs s = {0};
	struct statvfs vfs;
	struct p9fid f;
	struct stat st;
	int rc;

	file_put(path, "0123456789", 10, 0644);
	ok(p9_walk(p, p9_root(p), "trunc.txt", &f) == 0, "walk to a file");
	rc = p9_setattr(p, f, &sa);
	ok(rc == 0 && stat(path, &st) == 0 && st.st_size == 4 && (st.st_mode & 07777) == 0600,
	   "setattr: size 4 and mode 600 on disk (%d)", rc);
	p9_clunk(p, f);
	rc = p9_statfs(p, p9_root(p), &s);
	ok(rc == 0 && statvfs(dir, &vfs) == 0 && s.bsize == vfs.f_bsize &&
		   s.blocks == vfs.f_blocks && s.namelen > 0,
	   "statfs: the directory's filesystem (bsize %u, %llu blocks)", s.bsize,
	   (unsigned long long)s.blocks);
	ok(p9_walk(p, p9_root(p), "sub", &f) == 0 && p9_lopen(p, f, O_WRONLY) == -EISDIR,
	   "lopen of a directory for writing: -EISDIR");
	p9_clunk(p, f);
}

/* ---- reads and writes of many messages ---- */

static void fill(uint8_t *b, size_t n, uint32_t x)
{
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
}

static void test_big_io(struct p9 *p, const char *name, size_t n, uint32_t seed)
{
	size_t io = p9_iosize(p), got = 0, off = io - 7;
	cleanup_free char *path = in_dir(name);
	cleanup_free uint8_t *buf = xmalloc(n);
	cleanup_free uint8_t *back = xmalloc(n + 4096);
	cleanup_free char *disk = NULL;
	struct p9fid d;
	ssize_t r;

	fill(buf, n, seed);
	ok(p9_walk(p, p9_root(p), "", &d) == 0 &&
		   p9_lcreate(p, d, name, O_RDWR | O_CREAT | O_EXCL, 0644, 0) == 0,
	   "lcreate %s", name);
	r = p9_write(p, d, 0, buf, n);
	disk = file_get(path, n + 1, &got);
	ok(r == (ssize_t)n && disk && got == n && !memcmp(disk, buf, n),
	   "a write of %zu bytes, %zu messages of %zu: whole and in order on disk (%zd)", n,
	   (n + io - 1) / io, io, r);
	r = p9_read(p, d, 0, back, n + 4096);
	ok(r == (ssize_t)n && !memcmp(back, buf, n), "read back whole: %zd bytes", r);
	r = p9_read(p, d, off, back, 2 * io);
	ok(r == (ssize_t)(2 * io) && !memcmp(back, buf + off, 2 * io),
	   "a read of 2 x iosize at offset iosize - 7: %zd bytes, the right ones", r);
	r = p9_read(p, d, n - 100, back, 4096);
	ok(r == 100 && !memcmp(back, buf + n - 100, 100), "a read past the end: the last %zd", r);
	p9_clunk(p, d);
}

/* ---- a server that stops reading ---- */

#define STALL_WRITERS TAGS
#define STALL_BYTES   (512 * 1024) /* each writer's, in msize chunks */

struct stall_writer {
	struct p9 *p;
	struct p9fid f;
	int id;
	pthread_t thread;
	atomic_int done;
	ssize_t rc;
};

static void *stall_write(void *arg)
{
	struct stall_writer *w = arg;
	cleanup_free uint8_t *buf = xmalloc(STALL_BYTES);

	fill(buf, STALL_BYTES, (uint32_t)w->id + 100);
	w->rc = p9_write(w->p, w->f, (uint64_t)w->id * STALL_BYTES, buf, STALL_BYTES);
	atomic_store(&w->done, 1);
	return NULL;
}

/* Whether every thread of pid has stopped (SIGSTOP takes each thread at
 * its next return to user space: until then diod may still answer). */
static int all_stopped(pid_t pid)
{
	char dir[64];
	DIR *d;
	struct dirent *de;
	int all = 1;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	if (!(d = opendir(dir)))
		return 0;
	while (all && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *path = xasprintf("%s/%s/stat", dir, de->d_name);
		cleanup_free char *stat = file_get(path, 4096, NULL);
		char *end = stat ? strrchr(stat, ')') : NULL;
		all = end && end[1] == ' ' && end[2] == 'T';
	}
	closedir(d);
	return all;
}

static int stall_ended(struct stall_writer *w)
{
	int n = 0;

	for (int i = 0; i < STALL_WRITERS; i++)
		n += atomic_load(&w[i].done);
	return n;
}

/* The most bytes sent on a connection to diod's port and not yet taken
 * by diod, from /proc/net/tcp: nonzero once diod's socket buffer is full. */
static long unread_by_diod(void)
{
	FILE *f = fopen("/proc/net/tcp", "re");
	char line[256];
	long most = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned rport;
		unsigned long tx;
		if (sscanf(line, " %*d: %*x:%*x %*x:%x %*x %lx:%*x", &rport, &tx) == 2 &&
		    (int)rport == port && (long)tx > most)
			most = (long)tx;
	}
	fclose(f);
	return most;
}

/*
 * diod stopped for 6.5 s while 64 writers each send 512 KiB: nothing
 * fails, and everything completes once it goes on. The handshake's 5 s
 * limits must not outlive it: a limit on answers left on fails all 64
 * writes here. (A limit on sends could not be seen here: with diod's msize
 * of 64 KiB the 64 tags hold at most 4 MiB in flight, which loopback's
 * socket buffers take whole, so no send blocks.) Past 25 s of a receive
 * window shut, TCP_USER_TIMEOUT drops the connection: that is not waited
 * for here.
 */
static void test_stall(struct p9 *p)
{
	static struct stall_writer w[STALL_WRITERS];
	cleanup_free char *path = in_dir("stall.bin");
	cleanup_free uint8_t *want = xmalloc(STALL_BYTES);
	cleanup_free char *disk = NULL;
	struct p9fid d;
	int ended, whole = 0, same = 1;
	size_t got = 0;
	long unread = 0;

	ok(p9_walk(p, p9_root(p), "", &d) == 0 &&
		   p9_lcreate(p, d, "stall.bin", O_WRONLY | O_CREAT | O_EXCL, 0644, 0) == 0,
	   "lcreate stall.bin");
	kill(diod_pid, SIGSTOP);
	int64_t t0 = mono_ms();
	while (!all_stopped(diod_pid) && mono_ms() - t0 < 5000)
		msleep(5);
	for (int i = 0; i < STALL_WRITERS; i++) {
		w[i] = (struct stall_writer){.p = p, .f = d, .id = i};
		if (pthread_create(&w[i].thread, NULL, stall_write, &w[i]) != 0)
			bail_out("cannot start a thread");
	}
	/* The writes are out once diod's socket takes no more (on most
	 * hosts at once; a receive buffer grown large may take them all). */
	t0 = mono_ms();
	while ((unread = unread_by_diod()) == 0 && mono_ms() - t0 < 2000)
		msleep(10);
	msleep(6500);
	ended = stall_ended(w);
	ok(ended == 0,
	   "diod stopped for 6.5 s: no write has ended, nor failed (%d have; %ld bytes "
	   "were left unread)",
	   ended, unread);
	kill(diod_pid, SIGCONT);
	t0 = mono_ms();
	while ((ended = stall_ended(w)) < STALL_WRITERS && mono_ms() - t0 < 30000)
		msleep(10);
	for (int i = 0; i < STALL_WRITERS && ended == STALL_WRITERS; i++) {
		pthread_join(w[i].thread, NULL);
		whole += w[i].rc == STALL_BYTES;
	}
	ok(ended == STALL_WRITERS && whole == STALL_WRITERS,
	   "diod goes on: all %d writes complete, whole (%d ended, %d whole)", STALL_WRITERS, ended,
	   whole);
	disk = file_get(path, (size_t)STALL_WRITERS * STALL_BYTES + 1, &got);
	for (int i = 0; disk && i < STALL_WRITERS; i++) {
		fill(want, STALL_BYTES, (uint32_t)i + 100);
		same = same && !memcmp(disk + (size_t)i * STALL_BYTES, want, STALL_BYTES);
	}
	ok(disk && got == (size_t)STALL_WRITERS * STALL_BYTES && same,
	   "on disk: %zu bytes, each writer's where it wrote them", got);
	if (ended < STALL_WRITERS)
		bail_out("writers still wait on a stalled server");
	p9_clunk(p, d);
}

/* ---- more threads than tags ---- */

static atomic_int fid_holder[MAX_FID]; /* thread id + 1 while a thread holds the fid */

struct worker {
	struct p9 *p;
	int id;
	pthread_barrier_t *start;
	int failed, first_rc, first_cycle, shared;
	const char *first_op;
	uint32_t max_fid;
};

static void failed(struct worker *w, const char *op, int rc, int cycle)
{
	if (!w->failed++) {
		w->first_op = op;
		w->first_rc = rc;
		w->first_cycle = cycle;
	}
}

/* Walks to its file, checks it is its file, clunks; CYCLES times. */
static void *work(void *arg)
{
	struct worker *w = arg;
	const char *name = w->id % 2 ? "odd.txt" : "even.txt";
	uint64_t size = w->id % 2 ? 3 : 4;

	pthread_barrier_wait(w->start);
	for (int i = 0; i < CYCLES; i++) {
		struct p9attr a;
		struct p9fid f;
		int rc = p9_walk(w->p, p9_root(w->p), name, &f), none = 0;
		if (rc < 0) {
			failed(w, "walk", rc, i);
			continue;
		}
		if (f.num > w->max_fid)
			w->max_fid = f.num;
		if (f.num < MAX_FID &&
		    !atomic_compare_exchange_strong(&fid_holder[f.num], &none, w->id + 1))
			w->shared++;
		rc = p9_getattr(w->p, f, &a);
		if (rc == 0 && a.size != size)
			rc = -EXDEV; /* another thread's file */
		if (rc < 0)
			failed(w, "getattr", rc, i);
		if (f.num < MAX_FID)
			atomic_compare_exchange_strong(&fid_holder[f.num], &(int){w->id + 1}, 0);
		p9_clunk(w->p, f);
	}
	return NULL;
}

static void test_threads(struct p9 *p)
{
	cleanup_free char *odd = in_dir("odd.txt");
	cleanup_free char *even = in_dir("even.txt");
	struct worker w[THREADS], *first = NULL;
	pthread_t t[THREADS];
	pthread_barrier_t start;
	int nfailed = 0, shared = 0;
	uint32_t max_fid = 0;
	struct p9attr a;
	char why[96] = "none failed";

	file_put(odd, "odd", 3, 0644);
	file_put(even, "even", 4, 0644);
	pthread_barrier_init(&start, NULL, THREADS);
	int64_t t0 = mono_ms();
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.p = p, .id = i, .start = &start};
		if (pthread_create(&t[i], NULL, work, &w[i]) != 0)
			bail_out("cannot start a thread");
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		nfailed += w[i].failed;
		shared += w[i].shared;
		max_fid = w[i].max_fid > max_fid ? w[i].max_fid : max_fid;
		if (w[i].failed && !first)
			first = &w[i];
	}
	int64_t took = mono_ms() - t0;
	pthread_barrier_destroy(&start);
	if (first)
		snprintf(why, sizeof(why), "%d failed, the first a %s: %d at cycle %d", nfailed,
			 first->first_op, first->first_rc, first->first_cycle);
	ok(nfailed == 0,
	   "%d threads x %d walk + getattr + clunk: all succeed, each on its own file, in %lld ms "
	   "(%s)",
	   THREADS, CYCLES, (long long)took, why);
	ok(shared == 0, "no fid number was handed to two threads at once (%d times)", shared);
	/* Without reuse the numbers would reach THREADS * CYCLES; with it, no
	 * more than the fids held at once: one per thread, one per tag. */
	ok(max_fid < 2 + THREADS + TAGS + 64, "fid numbers are reused: the highest was %u",
	   max_fid);
	ok(p9_getattr(p, p9_root(p), &a) == 0, "the client still answers");
}

/* ---- interrupted requests ---- */

static atomic_llong interrupt_at; /* from this mono_ms(), interrupted() says yes; 0: never */

static int interrupted(void)
{
	long long at = atomic_load(&interrupt_at);
	return at && mono_ms() >= at;
}

static void test_interrupt_one(struct p9 *q, struct p9 *c)
{
	struct p9attr a;
	struct p9fid f;
	int rc, w;

	ok(p9_walk(q, p9_root(q), "fifo", &f) == 0, "walk to a FIFO");
	/* The client polls interrupted() every 200 ms of waiting. */
	int64_t t0 = mono_ms();
	atomic_store(&interrupt_at, t0 + 300);
	rc = p9_lopen(q, f, O_RDONLY);
	int64_t took = mono_ms() - t0;
	atomic_store(&interrupt_at, 0);
	ok(rc == -EINTR && took >= 300 && took < 1500,
	   "an open that waits for a writer, interrupted after 300 ms: %d (-EINTR) in %lld ms", rc,
	   (long long)took);
	ok(server_reqs(c) == 1, "the server still holds the open it was asked to flush");
	ok(p9_getattr(q, p9_root(q), &a) == 0, "meanwhile the client answers other requests");
	w = fifo_writer();
	ok(w >= 0 && wait_reqs(c, 0, 5000) == 0,
	   "a writer comes: the server ends the open and answers the flush");
	close(w);
	p9_clunk(q, f);
}

/*
 * Every tag taken by an open that waits: they all reach the server only
 * if the tag of the flushed open above came back. Then all are
 * interrupted at once.
 */
static void test_interrupt_all(struct p9 *q, struct p9 *c)
{
	struct bg b[TAGS];
	struct p9fid f[TAGS];
	struct bg probe;
	int walked = 0, ended, eintr = 0, held, w;

	for (int i = 0; i < TAGS; i++)
		walked += p9_walk(q, p9_root(q), "fifo", &f[i]) == 0;
	ok(walked == TAGS, "%d fids on the FIFO", walked);
	for (int i = 0; i < TAGS; i++)
		bg_start(&b[i], q, f[i], BG_LOPEN);
	held = wait_reqs(c, TAGS, 5000);
	ok(held == TAGS, "%d opens wait in the server at once: every tag is free again (%d do)",
	   TAGS, held);

	int64_t t0 = mono_ms();
	atomic_store(&interrupt_at, t0);
	ended = bg_wait(b, TAGS, 2000);
	for (int i = 0; i < TAGS; i++)
		eintr += atomic_load(&b[i].done) && b[i].rc == -EINTR;
	ok(ended == TAGS && eintr == TAGS,
	   "all %d interrupted at once, with no tag free for a Tflush: each returns -EINTR "
	   "within 2 s (%d returned, %d with -EINTR)",
	   TAGS, ended, eintr);
	atomic_store(&interrupt_at, 0);

	w = fifo_writer();
	held = wait_reqs(c, 0, 5000);
	bg_start(&probe, q, p9_root(q), BG_GETATTR);
	ok(bg_wait(&probe, 1, 2000) == 1 && probe.rc == 0,
	   "once the server has ended them all (%d left), the client answers again", held);
	/* A client stuck for good is freed only by failing what waits. */
	if (ended < TAGS || !atomic_load(&probe.done))
		p9_shutdown(q);
	for (int i = 0; i < TAGS; i++)
		pthread_join(b[i].thread, NULL);
	pthread_join(probe.thread, NULL);
	wait_reqs(c, 0, 5000);
	close(w);
	for (int i = 0; i < TAGS; i++)
		p9_clunk(q, f[i]);
}

static void test_interrupt(struct p9 *c)
{
	struct err e = {0};
	struct p9 *q = open_at(addr, dir, 0, 1, &e);

	ok(q != NULL, "a client with an interrupted() callback%s%s", q ? "" : ": ", q ? "" : e.msg);
	if (!q)
		return;
	test_interrupt_one(q, c);
	test_interrupt_all(q, c);
	p9_close(q);
	/* diod sees the closed connection and clunks its fids a moment later:
	 * the next test counts requests once none has been there for 300 ms. */
	int64_t quiet = mono_ms(), deadline = quiet + 10000;
	while (mono_ms() - quiet < 300 && mono_ms() < deadline) {
		if (server_reqs(c) != 0)
			quiet = mono_ms();
		msleep(10);
	}
}

/* ---- the server dies and comes back ---- */

static void test_reconnect(struct p9 *p, struct p9 *c)
{
	struct p9fid root = p9_root(p), old, ff, f, x;
	struct p9attr a = {0};
	struct err e = {0};
	struct bg b;

	ok(p9_walk(p, root, "hello.txt", &old) == 0 && p9_walk(p, root, "fifo", &ff) == 0,
	   "fids of the first session");
	bg_start(&b, p, ff, BG_LOPEN);
	int held = wait_reqs(c, 1, 5000);
	ok(held == 1, "an open waits in the server (%d requests there)", held);
	stop_diod(SIGKILL);
	int ended = bg_wait(&b, 1, 5000);
	ok(ended && b.rc == -ENOTCONN,
	   "diod killed: the request in flight fails with -ENOTCONN (%d)", ended ? b.rc : 0);
	pthread_join(b.thread, NULL);
	ok(p9_getattr(p, old, &a) == -ENOTCONN && p9_root(p).gen == 0,
	   "while it is down: -ENOTCONN, and the root has generation 0");

	int rc = start_diod(&e);
	ok(rc == 0, "a new diod on the same port%s%s", rc ? ": " : "", rc ? e.msg : "");
	int64_t t0 = mono_ms();
	while (p9_root(p).gen == 0 && mono_ms() - t0 < 20000)
		msleep(10);
	struct p9fid now = p9_root(p);
	ok(now.gen > root.gen, "the client attaches again by itself: generation %llu, in %lld ms",
	   (unsigned long long)now.gen, (long long)(mono_ms() - t0));
	ok(p9_walk(p, now, "hello.txt", &f) == 0 && p9_getattr(p, f, &a) == 0 &&
		   a.size == strlen(hello),
	   "a walk from the new root works");
	p9_clunk(p, f);
	ok(p9_getattr(p, old, &a) == -ESTALE, "a fid of the old session: -ESTALE");
	ok(p9_walk(p, root, "hello.txt", &x) == -ESTALE, "a walk from the old root: -ESTALE");
	p9_clunk(p, old);
	p9_clunk(p, ff);
}

static void test_shutdown(struct p9 *p, struct p9 *c)
{
	struct p9fid ff, x;
	struct p9attr a;
	struct bg b;
	int w;

	ok(p9_walk(p, p9_root(p), "fifo", &ff) == 0, "walk to the FIFO");
	bg_start(&b, p, ff, BG_LOPEN);
	ok(wait_reqs(c, 1, 20000) == 1, "an open waits in the server");
	p9_shutdown(p);
	int ended = bg_wait(&b, 1, 5000);
	ok(ended && b.rc == -ENOTCONN,
	   "p9_shutdown: the request in flight fails with -ENOTCONN (%d)", ended ? b.rc : 0);
	pthread_join(b.thread, NULL);
	ok(p9_getattr(p, p9_root(p), &a) == -ENOTCONN &&
		   p9_walk(p, p9_root(p), "hello.txt", &x) == -ENOTCONN,
	   "and so does every later request");
	w = fifo_writer();
	wait_reqs(c, 0, 5000);
	close(w);
	p9_clunk(p, ff);
	int64_t t0 = mono_ms();
	p9_close(p);
	int64_t took = mono_ms() - t0;
	ok(took < 2000, "p9_close returns (%lld ms)", (long long)took);
}

int main(void)
{
	cleanup_free char *hello_path = NULL, *fifo_path = NULL;
	struct err e = {0};
	struct p9 *p, *c;

	if (geteuid() != 0) {
		printf("1..0 # SKIP diod serves clients as any uid only when run as root\n");
		return 0;
	}
	if (!(diod_path = export_find_diod())) {
		printf("1..0 # SKIP diod is not installed\n");
		return 0;
	}
	umask(022);
	start_watchdog();
	if (!mkdtemp(dir))
		bail_out("mkdtemp failed");
	made_dir = 1;
	atexit(cleanup);
	hello_path = in_dir("hello.txt");
	fifo_path = in_dir("fifo");
	if (file_put(hello_path, hello, strlen(hello), 0644) < 0 || mkfifo(fifo_path, 0644) < 0)
		bail_out("cannot write the files to export");
	if ((port = free_port()) < 0)
		bail_out("no free port on 127.0.0.1");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);

	begin("starting diod", 30);
	if (start_diod(&e) < 0)
		bail_out(e.msg);
	begin("p9_open", 30);
	test_open();
	test_open_fails();
	p = open_at(addr, dir, 0, 0, &e);
	c = open_at(addr, "ctl", 0, 0, &e);
	if (!p || !c)
		bail_out(e.msg);

	begin("files", 30);
	test_read(p);
	test_walks(p);
	test_create(p);
	test_dirs(p);
	test_rename_remove(p);
	test_setattr_statfs(p);
	begin("large reads and writes", 30);
	test_big_io(p, "big.bin", 3 * p9_iosize(p) + 1000, 1);
	struct p9 *small = open_at(addr, dir, 8192, 0, &e);
	ok(small != NULL, "a client with msize 8192%s%s", small ? "" : ": ", small ? "" : e.msg);
	if (small)
		test_big_io(small, "small.bin", 100000, 2);
	p9_close(small);
	begin("a server that stops reading", 60);
	test_stall(p);
	/* Generous: under valgrind this phase takes about a minute. */
	begin("many threads", 180);
	test_threads(p);
	begin("interrupted requests", 60);
	test_interrupt(c);
	begin("reconnection", 60);
	test_reconnect(p, c);
	begin("p9_shutdown", 60);
	test_shutdown(p, c);
	p9_close(c);
	stop_watchdog();
	return done_testing();
}
