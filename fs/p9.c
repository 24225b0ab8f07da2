/*
 * p9.c: the 9P2000.L client (see p9.h).
 *
 * A thread per connection owns the socket's reading side: it connects,
 * negotiates the version and attaches (blocking, with nothing else in
 * flight), then reads replies and hands each to the slot of its tag. A
 * caller takes a free slot, sends under the write lock and waits on the
 * slot's own condition, which only its reply signals: each wakeup costs a
 * context switch, dear on these virtual machines, so a reply wakes its one
 * caller and not every thread that waits (a watch's long read always
 * does). When the socket fails, every waiting slot fails with -ENOTCONN and
 * the thread starts over with back-off.
 *
 * A slot whose caller gave up (interrupted, or a clunk nobody waits for)
 * is abandoned: the reader frees it when its reply comes. A fid is given
 * back to the free list only when its Rclunk or Rremove arrives, so that a
 * new walk never names a fid the server may still hold.
 */
#define _GNU_SOURCE
#include "p9.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NTAGS	      64
#define ROOT_FID      0
#define AUTH_FID      1
#define FIRST_FID     2
#define DEFAULT_MSIZE (256 * 1024 + P9_IOHDR)

/*
 * S_ABANDONED: nobody waits; freed by its reply. S_FLUSHING: a Tflush was
 * sent for it; its tag stays taken until the Rflush comes.
 */
enum slot_state { S_FREE, S_WAIT, S_DONE, S_ABANDONED, S_FLUSHING };

struct slot {
	enum slot_state state;
	uint8_t *reply; /* the whole message, when done */
	size_t len;
	int err;	     /* -ENOTCONN when the connection broke */
	uint32_t free_fid;   /* a fid to give back when the reply comes */
	uint16_t flushes;    /* for a Tflush: the tag it flushes, else P9_NOTAG */
	pthread_cond_t done; /* signalled when state leaves S_WAIT */
};

struct p9 {
	struct p9_config cfg;
	char *host, *port, *aname, *uname;
	uid_t uid;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a slot freed, or stopping */
	int want_slot;	     /* callers waiting for a free slot */
	pthread_mutex_t wlock;
	int fd;	      /* -1 while down; protected by lock */
	uint64_t gen; /* of the current session; 0 while down */
	uint64_t last_gen;
	uint32_t msize;
	int stopping;
	struct slot slots[NTAGS];
	uint32_t *free_fids;
	size_t nfree, cap_free;
	uint32_t next_fid;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Reads one message, at most max bytes; NULL when the stream fails. */
static uint8_t *read_msg(int fd, uint32_t max, size_t *len)
{
	uint8_t hdr[4], *m;
	uint32_t size;

	if (read_all(fd, hdr, 4) < 0)
		return NULL;
	size = p9_get32(hdr);
	if (size < P9_HDR || size > max)
		return NULL;
	m = xmalloc(size);
	memcpy(m, hdr, 4);
	if (read_all(fd, m + 4, size - 4) < 0) {
		free(m);
		return NULL;
	}
	*len = size;
	return m;
}

/* An Rlerror's errno, negated; EIO for one no errno could be. */
static int lerror(const struct p9reply *r)
{
	return r->u.ecode > 0 && r->u.ecode < 4096 ? -(int)r->u.ecode : -EIO;
}

/* ---- the handshake, on a socket nobody else uses yet ---- */

/* The msize Tversion asks for; no reply of the session is longer. */
static uint32_t asked_msize(const struct p9 *p)
{
	return p->cfg.msize ? p->cfg.msize : DEFAULT_MSIZE;
}

/* Sends m and reads its reply into r (buf keeps the bytes). */
static int sync_rpc(struct p9 *p, int fd, struct p9msg *m, uint8_t expect, uint8_t **buf,
		    struct p9reply *r)
{
	size_t len;

	p9_end(m);
	free(*buf);
	*buf = NULL;
	if (write_all(fd, m->data, m->len) < 0 || !(*buf = read_msg(fd, asked_msize(p), &len)))
		return -ENOTCONN;
	if (p9_decode(*buf, len, r) < 0)
		return -EPROTO;
	if (r->type == P9_RLERROR)
		return lerror(r);
	return r->type == expect ? 0 : -EPROTO;
}

/* A munge credential from the munge program, or NULL. */
static char *munge_credential(const char *socket)
{
	int pipefd[2], status;
	char buf[4096];
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return NULL;
	if ((pid = fork()) == 0) {
		dup2(pipefd[1], 1);
		if (socket)
			execlp("munge", "munge", "-n", "-S", socket, (char *)NULL);
		else
			execlp("munge", "munge", "-n", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	while (pid > 0 && n < sizeof(buf) - 1 &&
	       ((r = read(pipefd[0], buf + n, sizeof(buf) - 1 - n)) > 0 ||
		(r < 0 && errno == EINTR)))
		n += r > 0 ? (size_t)r : 0;
	close(pipefd[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return NULL;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return n ? xstrdup(buf) : NULL;
}

/* Attaches fid to aname, authenticating with munge when asked. */
static int attach(struct p9 *p, int fd, uint32_t fid, const char *aname, uint8_t **buf)
{
	struct p9msg m = {0};
	struct p9reply r;
	uint32_t afid = P9_NOFID;
	int rc = 0;

	if (p->cfg.munge) {
		cleanup_free char *cred = munge_credential(p->cfg.munge_socket);
		if (!cred) {
			rc = -EACCES;
			goto out;
		}
		p9_begin(&m, P9_TAUTH, 0);
		p9_put32(&m, AUTH_FID);
		p9_putstr(&m, p->uname);
		p9_putstr(&m, aname);
		p9_put32(&m, p->uid);
		if ((rc = sync_rpc(p, fd, &m, P9_RAUTH, buf, &r)) < 0)
			goto out;
		p9_begin(&m, P9_TWRITE, 0);
		p9_put32(&m, AUTH_FID);
		p9_put64(&m, 0);
		p9_put32(&m, (uint32_t)strlen(cred));
		p9_putbytes(&m, cred, strlen(cred));
		if ((rc = sync_rpc(p, fd, &m, P9_RWRITE, buf, &r)) < 0)
			goto out;
		afid = AUTH_FID;
	}
	p9_begin(&m, P9_TATTACH, 0);
	p9_put32(&m, fid);
	p9_put32(&m, afid);
	p9_putstr(&m, p->uname);
	p9_putstr(&m, aname);
	p9_put32(&m, p->uid);
	rc = sync_rpc(p, fd, &m, P9_RATTACH, buf, &r);
	if (afid != P9_NOFID) {
		p9_begin(&m, P9_TCLUNK, 0);
		p9_put32(&m, afid);
		int c = sync_rpc(p, fd, &m, P9_RCLUNK, buf, &r);
		rc = rc < 0 ? rc : c;
	}
out:
	p9_msg_free(&m);
	return rc;
}

/*
 * Finds the server's first export in diod's control filesystem ("ctl",
 * which diod serves when started with -e ctl; its file "exports" has one
 * export per line, its path first).
 */
static int find_export(struct p9 *p, int fd, uint8_t **buf)
{
	struct p9msg m = {0};
	struct p9reply r;
	int rc;

	if ((rc = attach(p, fd, FIRST_FID, "ctl", buf)) < 0)
		return rc;
	p9_begin(&m, P9_TWALK, 0);
	p9_put32(&m, FIRST_FID);
	p9_put32(&m, FIRST_FID + 1);
	p9_put16(&m, 1);
	p9_putstr(&m, "exports");
	if ((rc = sync_rpc(p, fd, &m, P9_RWALK, buf, &r)) < 0 || r.u.walk.nwqid != 1)
		goto out;
	p9_begin(&m, P9_TLOPEN, 0);
	p9_put32(&m, FIRST_FID + 1);
	p9_put32(&m, O_RDONLY);
	if ((rc = sync_rpc(p, fd, &m, P9_RLOPEN, buf, &r)) < 0)
		goto out;
	p9_begin(&m, P9_TREAD, 0);
	p9_put32(&m, FIRST_FID + 1);
	p9_put64(&m, 0);
	p9_put32(&m, 4096);
	if ((rc = sync_rpc(p, fd, &m, P9_RREAD, buf, &r)) < 0)
		goto out;
	/* Lines "PATH OPTIONS...": the first that is a path (not "ctl"). */
	for (size_t i = 0; i < r.u.io.count && !p->aname;) {
		size_t n = 0;
		while (i + n < r.u.io.count && r.u.io.data[i + n] != ' ' &&
		       r.u.io.data[i + n] != '\n')
			n++;
		if (n && r.u.io.data[i] == '/')
			p->aname = xstrndup((const char *)r.u.io.data + i, n);
		while (i < r.u.io.count && r.u.io.data[i++] != '\n')
			;
	}
out:
	for (uint32_t fid = FIRST_FID; fid <= FIRST_FID + 1; fid++) {
		p9_begin(&m, P9_TCLUNK, 0);
		p9_put32(&m, fid);
		sync_rpc(p, fd, &m, P9_RCLUNK, buf, &r);
	}
	p9_msg_free(&m);
	return rc < 0 ? rc : p->aname ? 0 : -ENOENT;
}

static int dial(struct p9 *p, struct err *e)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai, *a;
	struct timeval tv = {.tv_sec = 5};
	int fd = -1, one = 1, idle = 10, intvl = 5, cnt = 3, r;
	unsigned int unacked_ms = (unsigned int)(idle + cnt * intvl) * 1000;

	if ((r = getaddrinfo(p->host, p->port, &hints, &ai)) != 0) {
		err_set(e, ENOENT, "%s: %s", p->cfg.addr, gai_strerror(r));
		return -1;
	}
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		err_set(e, errno, "%s: %s", p->cfg.addr, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &unacked_ms, sizeof(unacked_ms));
	return fd;
}

/* Connects, negotiates and attaches; returns the socket or -1 with e. */
static int handshake(struct p9 *p, struct err *e)
{
	struct p9msg m = {0};
	struct p9reply r;
	uint8_t *buf = NULL;
	struct timeval none = {0};
	int fd, rc;

	if ((fd = dial(p, e)) < 0)
		return -1;
	p9_begin(&m, P9_TVERSION, P9_NOTAG);
	p9_put32(&m, asked_msize(p));
	p9_putstr(&m, "9P2000.L");
	if ((rc = sync_rpc(p, fd, &m, P9_RVERSION, &buf, &r)) < 0)
		goto fail;
	if (r.u.version.version.len != 8 || memcmp(r.u.version.version.s, "9P2000.L", 8) != 0 ||
	    r.u.version.msize < 4096) {
		rc = -EPROTONOSUPPORT;
		goto fail;
	}
	/* One store: callers size their chunks by it at any time. */
	uint32_t msize = r.u.version.msize < asked_msize(p) ? r.u.version.msize : asked_msize(p);
	__atomic_store_n(&p->msize, msize, __ATOMIC_RELAXED);
	if (!p->aname && (rc = find_export(p, fd, &buf)) < 0)
		goto fail;
	if ((rc = attach(p, fd, ROOT_FID, p->aname, &buf)) < 0)
		goto fail;
	/* From here no request has a time limit: a server that is slow to
	 * answer is waited for, however long. The connection is dropped only
	 * when the server's host is silent for 25 s: keepalive finds that
	 * while the connection is idle; TCP_USER_TIMEOUT while what was sent
	 * waits, unacknowledged or not taken (a receive window shut for 25 s,
	 * as when diod is stopped). */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
	p9_msg_free(&m);
	free(buf);
	return fd;
fail:
	if (rc == -ENOTCONN)
		err_set(e, ECONNRESET, "%s: the server closed the connection", p->cfg.addr);
	else if (rc == -EPROTO || rc == -EPROTONOSUPPORT)
		err_set(e, EPROTO, "%s: does not speak 9P2000.L", p->cfg.addr);
	else
		err_set(e, -rc, "%s: attach %s: %s", p->cfg.addr, p->aname ? p->aname : "(exports)",
			strerror(-rc));
	p9_msg_free(&m);
	free(buf);
	close(fd);
	return -1;
}

/* ---- the session thread ---- */

static void give_fid(struct p9 *p, uint32_t fid)
{
	if (p->nfree == p->cap_free) {
		p->cap_free = p->cap_free ? 2 * p->cap_free : 64;
		p->free_fids = xrealloc(p->free_fids, p->cap_free * sizeof(*p->free_fids));
	}
	p->free_fids[p->nfree++] = fid;
}

static void release_slot(struct p9 *p, struct slot *s)
{
	if (s->free_fid != P9_NOFID)
		give_fid(p, s->free_fid);
	free(s->reply);
	s->reply = NULL;
	s->len = 0;
	s->err = 0;
	s->state = S_FREE;
	s->free_fid = P9_NOFID;
	s->flushes = P9_NOTAG;
	if (p->want_slot)
		pthread_cond_signal(&p->cond);
}

/* With the lock held: a reply for a slot. */
static void settle(struct p9 *p, struct slot *s, uint8_t *reply, size_t len, int err)
{
	if (s->state == S_FLUSHING) {
		free(reply); /* the flushed request's answer: the tag waits for Rflush */
		return;
	}
	if (s->flushes < NTAGS && p->slots[s->flushes].state == S_FLUSHING)
		release_slot(p, &p->slots[s->flushes]);
	if (s->state == S_WAIT) {
		s->reply = reply;
		s->len = len;
		s->err = err;
		s->state = S_DONE;
		pthread_cond_signal(&s->done);
		return;
	}
	free(reply);
	if (s->state == S_ABANDONED)
		release_slot(p, s);
}

/* The connection broke: waiting requests fail, the rest is forgotten. */
static void session_down(struct p9 *p)
{
	pthread_mutex_lock(&p->lock);
	shutdown(p->fd, SHUT_RDWR);    /* a send blocked on it returns */
	pthread_mutex_lock(&p->wlock); /* no send is using the socket */
	close(p->fd);
	p->fd = -1;
	p->gen = 0;
	pthread_mutex_unlock(&p->wlock);
	for (int i = 0; i < NTAGS; i++) {
		struct slot *s = &p->slots[i];
		if (s->state == S_WAIT)
			settle(p, s, NULL, 0, -ENOTCONN);
		else if (s->state == S_ABANDONED || s->state == S_FLUSHING)
			release_slot(p, s);
	}
	pthread_cond_broadcast(&p->cond); /* who waits for a slot sees fd -1 */
	pthread_mutex_unlock(&p->lock);
}

static void read_replies(struct p9 *p, int fd)
{
	uint8_t *m;
	size_t len;

	while ((m = read_msg(fd, p->msize, &len))) {
		uint16_t tag = (uint16_t)(m[5] | m[6] << 8);
		pthread_mutex_lock(&p->lock);
		if (tag < NTAGS)
			settle(p, &p->slots[tag], m, len, 0);
		else
			free(m);
		pthread_mutex_unlock(&p->lock);
	}
}

/* Sleeps ms unless the client is stopping; returns nonzero when it is. */
static int pause_ms(struct p9 *p, int ms)
{
	struct timespec ts;
	int stop;

	deadline_ms(&ts, ms);
	pthread_mutex_lock(&p->lock);
	while (!p->stopping && pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
		;
	stop = p->stopping;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

static void *session_main(void *arg)
{
	struct p9 *p = arg;
	int backoff = 100;

	for (;;) {
		int fd = p->fd;
		if (fd >= 0) {
			int64_t up = mono_ms();
			read_replies(p, fd);
			session_down(p);
			if (mono_ms() - up > 10000)
				backoff = 100;
		}
		if (pause_ms(p, backoff))
			break;
		backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
		struct err e = {0};
		if ((fd = handshake(p, &e)) < 0)
			continue;
		pthread_mutex_lock(&p->lock);
		if (p->stopping) {
			pthread_mutex_unlock(&p->lock);
			close(fd);
			break;
		}
		p->fd = fd;
		p->gen = ++p->last_gen;
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

struct p9 *p9_open(const struct p9_config *cfg, struct err *e)
{
	struct p9 *p = xcalloc(1, sizeof(*p));
	const char *colon = strrchr(cfg->addr, ':');
	struct passwd *pw;

	if (!colon || colon == cfg->addr || !colon[1]) {
		err_set(e, EINVAL, "%s: expected HOST:PORT", cfg->addr);
		free(p);
		return NULL;
	}
	p->cfg = *cfg;
	p->cfg.addr = xstrdup(cfg->addr);
	p->host = xstrndup(cfg->addr, (size_t)(colon - cfg->addr));
	if (p->host[0] == '[' && p->host[strlen(p->host) - 1] == ']') {
		memmove(p->host, p->host + 1, strlen(p->host));
		p->host[strlen(p->host) - 1] = 0;
	}
	p->port = xstrdup(colon + 1);
	p->aname = cfg->aname ? xstrdup(cfg->aname) : NULL;
	p->uid = getuid();
	pw = getpwuid(p->uid);
	p->uname = xstrdup(cfg->uname ? cfg->uname : pw ? pw->pw_name : "root");
	p->next_fid = FIRST_FID;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_mutex_init(&p->wlock, NULL);
	for (int i = 0; i < NTAGS; i++) {
		p->slots[i].free_fid = P9_NOFID;
		p->slots[i].flushes = P9_NOTAG;
		pthread_cond_init(&p->slots[i].done, NULL);
	}
	if ((p->fd = handshake(p, e)) < 0) {
		p->fd = -1;
		p9_close(p);
		return NULL;
	}
	p->gen = p->last_gen = 1;
	if (pthread_create(&p->thread, NULL, session_main, p) != 0) {
		err_set(e, EAGAIN, "cannot start a thread");
		close(p->fd);
		p->fd = -1;
		p9_close(p);
		return NULL;
	}
	return p;
}

void p9_shutdown(struct p9 *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	if (p->fd >= 0)
		shutdown(p->fd, SHUT_RDWR); /* the reader fails what waits */
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void p9_close(struct p9 *p)
{
	if (!p)
		return;
	p9_shutdown(p);
	if (p->thread)
		pthread_join(p->thread, NULL);
	if (p->fd >= 0)
		close(p->fd);
	for (int i = 0; i < NTAGS; i++) {
		free(p->slots[i].reply);
		pthread_cond_destroy(&p->slots[i].done);
	}
	free(p->free_fids);
	free((char *)p->cfg.addr);
	free(p->host);
	free(p->port);
	free(p->aname);
	free(p->uname);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->wlock);
	free(p);
}

struct p9fid p9_root(struct p9 *p)
{
	pthread_mutex_lock(&p->lock);
	struct p9fid f = {ROOT_FID, p->gen};
	pthread_mutex_unlock(&p->lock);
	return f;
}

uint32_t p9_iosize(struct p9 *p)
{
	return __atomic_load_n(&p->msize, __ATOMIC_RELAXED) - P9_IOHDR;
}

const char *p9_aname(struct p9 *p)
{
	return p->aname;
}

/* ---- requests ---- */

static uint32_t new_fid(struct p9 *p)
{
	uint32_t fid;

	pthread_mutex_lock(&p->lock);
	fid = p->nfree ? p->free_fids[--p->nfree] : p->next_fid++;
	pthread_mutex_unlock(&p->lock);
	return fid;
}

/*
 * With the lock held: a free tag. A caller that will wait for the reply
 * (interruptible) also waits for a tag, polling interrupted(); one that
 * will not gets -EAGAIN when none is free. -ENOTCONN while down or
 * stopping, -ESTALE for a fid of an earlier session (gen; 0: any).
 */
static int take_tag(struct p9 *p, uint64_t gen, int interruptible)
{
	for (;;) {
		if (p->stopping || p->fd < 0)
			return -ENOTCONN;
		if (gen && gen != p->gen)
			return -ESTALE;
		for (int i = 0; i < NTAGS; i++)
			if (p->slots[i].state == S_FREE)
				return i;
		if (!interruptible)
			return -EAGAIN;
		if (p->cfg.interrupted && p->cfg.interrupted())
			return -EINTR;
		struct timespec ts;
		deadline_ms(&ts, 200);
		p->want_slot++;
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		p->want_slot--;
	}
}

/* With the lock held and tag taken: sends m on it. The lock is let go
 * during the send and held again on return. */
static void send_on(struct p9 *p, int tag, struct p9msg *m)
{
	int fd = p->fd;

	p9_settag(m, (uint16_t)tag);
	pthread_mutex_lock(&p->wlock); /* session_down waits for it to close fd */
	pthread_mutex_unlock(&p->lock);
	if (write_all(fd, m->data, m->len) < 0)
		shutdown(fd, SHUT_RDWR); /* the reader fails the slot */
	pthread_mutex_unlock(&p->wlock);
	pthread_mutex_lock(&p->lock);
}

/*
 * Sends m in session gen (0: any). With wait, returns its tag with the lock
 * held, for the caller to wait on; without, the slot is abandoned and 0 is
 * returned (a tag it waits for is not interruptible: a clunk is not lost).
 * free_fid is given back when the reply comes. Returns -errno when nothing
 * was sent.
 */
static int send_req(struct p9 *p, struct p9msg *m, uint64_t gen, uint32_t free_fid, int wait)
{
	p9_end(m);
	pthread_mutex_lock(&p->lock);
	int tag;
	while ((tag = take_tag(p, gen, wait)) == -EAGAIN) {
		p->want_slot++;
		pthread_cond_wait(&p->cond, &p->lock);
		p->want_slot--;
	}
	if (tag < 0) {
		pthread_mutex_unlock(&p->lock);
		return tag;
	}
	struct slot *s = &p->slots[tag];
	s->state = wait ? S_WAIT : S_ABANDONED;
	s->free_fid = free_fid;
	send_on(p, tag, m);
	if (!wait) {
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	return tag;
}

/*
 * With the lock held: the caller of tag gives up waiting. A Tflush asks
 * the server to drop the request, and the tag stays taken until the Rflush
 * comes. With no tag free for the Tflush, waiting for one could last for
 * ever (every tag may be held by a caller giving up, as after a ^C of many
 * reads), so the request is abandoned instead: its own reply frees the
 * tag. Lets the lock go.
 */
static void give_up(struct p9 *p, int tag)
{
	struct p9msg m = {0};
	int ftag = take_tag(p, 0, 0);

	if (ftag < 0) {
		p->slots[tag].state = S_ABANDONED;
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->slots[tag].state = S_FLUSHING;
	p->slots[ftag].state = S_ABANDONED;
	p->slots[ftag].flushes = (uint16_t)tag;
	p9_begin(&m, P9_TFLUSH, 0);
	p9_put16(&m, (uint16_t)tag);
	p9_end(&m);
	send_on(p, ftag, &m);
	pthread_mutex_unlock(&p->lock);
	p9_msg_free(&m);
}

/*
 * Sends m, waits for its reply, decodes it into r; the reply's bytes are
 * returned in *buf (the caller frees them) so that r may point into them.
 */
static int rpc(struct p9 *p, struct p9msg *m, uint64_t gen, uint8_t expect, struct p9reply *r,
	       uint8_t **buf)
{
	int tag = send_req(p, m, gen, P9_NOFID, 1);
	struct slot *s;
	int rc;

	*buf = NULL;
	if (tag < 0)
		return tag;
	s = &p->slots[tag];
	while (s->state == S_WAIT) {
		if (!p->cfg.interrupted) {
			pthread_cond_wait(&s->done, &p->lock);
			continue;
		}
		struct timespec ts;
		deadline_ms(&ts, 200);
		if (pthread_cond_timedwait(&s->done, &p->lock, &ts) == ETIMEDOUT &&
		    s->state == S_WAIT && p->cfg.interrupted()) {
			give_up(p, tag);
			return -EINTR;
		}
	}
	rc = s->err;
	*buf = s->reply;
	s->reply = NULL;
	size_t len = s->len;
	release_slot(p, s);
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		return rc;
	if (p9_decode(*buf, len, r) < 0)
		return -EIO;
	if (r->type == P9_RLERROR)
		return lerror(r);
	return r->type == expect ? 0 : -EIO;
}

/* rpc() for replies whose bytes nobody keeps. */
static int call(struct p9 *p, struct p9msg *m, uint64_t gen, uint8_t expect, struct p9reply *r)
{
	uint8_t *buf;
	int rc = rpc(p, m, gen, expect, r, &buf);
	free(buf);
	p9_msg_free(m);
	return rc;
}

void p9_clunk(struct p9 *p, struct p9fid f)
{
	struct p9msg m = {0};

	p9_begin(&m, P9_TCLUNK, 0);
	p9_put32(&m, f.num);
	if (send_req(p, &m, f.gen, f.num, 0) < 0) {
		/* Not sent: the fid is unknown to any live session. */
		pthread_mutex_lock(&p->lock);
		give_fid(p, f.num);
		pthread_mutex_unlock(&p->lock);
	}
	p9_msg_free(&m);
}

/* Splits path into at most P9_MAXWELEM names starting at *pos. */
static int next_names(const char *path, size_t *pos, const char **names, size_t *lens)
{
	int n = 0;
	const char *s = path + *pos;

	while (*s && n < P9_MAXWELEM) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *end = strchrnul(s, '/');
		names[n] = s;
		lens[n++] = (size_t)(end - s);
		s = end;
	}
	while (*s == '/')
		s++;
	*pos = (size_t)(s - path);
	return n;
}

int p9_walk(struct p9 *p, struct p9fid from, const char *path, struct p9fid *out)
{
	struct p9fid nf = {new_fid(p), from.gen};
	size_t pos = 0;
	int first = 1;

	do {
		const char *names[P9_MAXWELEM];
		size_t lens[P9_MAXWELEM];
		int n = next_names(path, &pos, names, lens), rc;
		struct p9msg m = {0};
		struct p9reply r;

		if (n == 0 && !first)
			break;
		p9_begin(&m, P9_TWALK, 0);
		p9_put32(&m, first ? from.num : nf.num);
		p9_put32(&m, nf.num);
		p9_put16(&m, (uint16_t)n);
		for (int i = 0; i < n; i++)
			p9_putstrn(&m, names[i], lens[i]);
		rc = call(p, &m, from.gen, P9_RWALK, &r);
		if (rc == 0 && r.u.walk.nwqid != n) {
			/* A partial walk: diod makes newfid all the same. */
			p9_clunk(p, nf);
			return -ENOENT;
		}
		if (rc < 0) {
			if (rc == -EINTR) {
				/* The server may hold nf or not: the number is left unused. */
			} else if (first) {
				pthread_mutex_lock(&p->lock);
				give_fid(p, nf.num);
				pthread_mutex_unlock(&p->lock);
			} else {
				p9_clunk(p, nf);
			}
			return rc;
		}
		first = 0;
	} while (path[pos]);
	*out = nf;
	return 0;
}

int p9_getattr(struct p9 *p, struct p9fid f, struct p9attr *a)
{
	struct p9msg m = {0};
	struct p9reply r;
	int rc;

	p9_begin(&m, P9_TGETATTR, 0);
	p9_put32(&m, f.num);
	p9_put64(&m, P9_GETATTR_BASIC);
	if ((rc = call(p, &m, f.gen, P9_RGETATTR, &r)) == 0)
		*a = r.u.attr;
	return rc;
}

int p9_setattr(struct p9 *p, struct p9fid f, const struct p9setattr *sa)
{
	struct p9msg m = {0};
	struct p9reply r;

	p9_begin(&m, P9_TSETATTR, 0);
	p9_put32(&m, f.num);
	p9_put32(&m, sa->valid);
	p9_put32(&m, sa->mode);
	p9_put32(&m, sa->uid);
	p9_put32(&m, sa->gid);
	p9_put64(&m, sa->size);
	p9_put64(&m, sa->atime_sec);
	p9_put64(&m, sa->atime_nsec);
	p9_put64(&m, sa->mtime_sec);
	p9_put64(&m, sa->mtime_nsec);
	return call(p, &m, f.gen, P9_RSETATTR, &r);
}

int p9_lopen(struct p9 *p, struct p9fid f, uint32_t flags)
{
	struct p9msg m = {0};
	struct p9reply r;

	p9_begin(&m, P9_TLOPEN, 0);
	p9_put32(&m, f.num);
	p9_put32(&m, flags);
	return call(p, &m, f.gen, P9_RLOPEN, &r);
}

int p9_lcreate(struct p9 *p, struct p9fid f, const char *name, uint32_t flags, uint32_t mode,
	       uint32_t gid)
{
	struct p9msg m = {0};
	struct p9reply r;

	p9_begin(&m, P9_TLCREATE, 0);
	p9_put32(&m, f.num);
	p9_putstr(&m, name);
	p9_put32(&m, flags);
	p9_put32(&m, mode);
	p9_put32(&m, gid);
	return call(p, &m, f.gen, P9_RLCREATE, &r);
}

int p9_mkdir(struct p9 *p, struct p9fid dir, const char *name, uint32_t mode, uint32_t gid)
{
	struct p9msg m = {0};
	struct p9reply r;

	p9_begin(&m, P9_TMKDIR, 0);
	p9_put32(&m, dir.num);
	p9_putstr(&m, name);
	p9_put32(&m, mode);
	p9_put32(&m, gid);
	return call(p, &m, dir.gen, P9_RMKDIR, &r);
}

ssize_t p9_read(struct p9 *p, struct p9fid f, uint64_t off, void *buf, size_t n)
{
	size_t done = 0, chunk = p9_iosize(p);

	while (done < n) {
		struct p9msg m = {0};
		struct p9reply r;
		uint8_t *reply;
		uint32_t ask = (uint32_t)(n - done < chunk ? n - done : chunk);
		int rc;

		p9_begin(&m, P9_TREAD, 0);
		p9_put32(&m, f.num);
		p9_put64(&m, off + done);
		p9_put32(&m, ask);
		rc = rpc(p, &m, f.gen, P9_RREAD, &r, &reply);
		p9_msg_free(&m);
		if (rc == 0 && r.u.io.count > ask)
			rc = -EIO;
		if (rc < 0) {
			free(reply);
			return done ? (ssize_t)done : rc;
		}
		memcpy((uint8_t *)buf + done, r.u.io.data, r.u.io.count);
		done += r.u.io.count;
		free(reply);
		if (r.u.io.count < ask)
			break;
	}
	return (ssize_t)done;
}

ssize_t p9_write(struct p9 *p, struct p9fid f, uint64_t off, const void *buf, size_t n)
{
	size_t done = 0, chunk = p9_iosize(p);

	do {
		struct p9msg m = {0};
		struct p9reply r;
		uint32_t give = (uint32_t)(n - done < chunk ? n - done : chunk);
		int rc;

		p9_begin(&m, P9_TWRITE, 0);
		p9_put32(&m, f.num);
		p9_put64(&m, off + done);
		p9_put32(&m, give);
		p9_putbytes(&m, (const uint8_t *)buf + done, give);
		rc = call(p, &m, f.gen, P9_RWRITE, &r);
		if (rc == 0 && (r.u.io.count > give || (r.u.io.count == 0 && give)))
			rc = -EIO;
		if (rc < 0)
			return done ? (ssize_t)done : rc;
		done += r.u.io.count;
	} while (done < n);
	return (ssize_t)done;
}

ssize_t p9_readdir(struct p9 *p, struct p9fid f, uint64_t off, void *buf, uint32_t n)
{
	struct p9msg m = {0};
	struct p9reply r;
	uint8_t *reply;
	int rc;

	if (n > p9_iosize(p))
		n = p9_iosize(p);
	p9_begin(&m, P9_TREADDIR, 0);
	p9_put32(&m, f.num);
	p9_put64(&m, off);
	p9_put32(&m, n);
	rc = rpc(p, &m, f.gen, P9_RREADDIR, &r, &reply);
	p9_msg_free(&m);
	if (rc == 0 && r.u.io.count > n)
		rc = -EIO;
	if (rc == 0)
		memcpy(buf, r.u.io.data, r.u.io.count);
	free(reply);
	return rc < 0 ? rc : (ssize_t)r.u.io.count;
}

int p9_rename(struct p9 *p, struct p9fid f, struct p9fid dir, const char *name)
{
	struct p9msg m = {0};
	struct p9reply r;

	if (f.gen != dir.gen)
		return -ESTALE;
	p9_begin(&m, P9_TRENAME, 0);
	p9_put32(&m, f.num);
	p9_put32(&m, dir.num);
	p9_putstr(&m, name);
	return call(p, &m, f.gen, P9_RRENAME, &r);
}

int p9_statfs(struct p9 *p, struct p9fid f, struct p9statfs *s)
{
	struct p9msg m = {0};
	struct p9reply r;
	int rc;

	p9_begin(&m, P9_TSTATFS, 0);
	p9_put32(&m, f.num);
	if ((rc = call(p, &m, f.gen, P9_RSTATFS, &r)) == 0)
		*s = r.u.statfs;
	return rc;
}

int p9_fsync(struct p9 *p, struct p9fid f)
{
	struct p9msg m = {0};
	struct p9reply r;

	p9_begin(&m, P9_TFSYNC, 0);
	p9_put32(&m, f.num);
	p9_put32(&m, 0); /* datasync */
	return call(p, &m, f.gen, P9_RFSYNC, &r);
}

int p9_remove(struct p9 *p, struct p9fid f)
{
	struct p9msg m = {0};
	struct p9reply r;
	uint8_t *buf;
	int rc;

	/* The server clunks the fid even when the remove fails. */
	p9_begin(&m, P9_TREMOVE, 0);
	p9_put32(&m, f.num);
	rc = rpc(p, &m, f.gen, P9_RREMOVE, &r, &buf);
	free(buf);
	p9_msg_free(&m);
	if (rc != -EINTR) {
		pthread_mutex_lock(&p->lock);
		give_fid(p, f.num);
		pthread_mutex_unlock(&p->lock);
	}
	return rc;
}
