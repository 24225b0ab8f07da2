/*
 * p9proto.c: encoding T-messages and decoding R-messages (see p9proto.h).
 */
#include "p9proto.h"

#include <errno.h>
#include <string.h>

#include "util.h"

static void reserve(struct p9msg *m, size_t n)
{
	if (m->len + n <= m->cap)
		return;
	m->cap = m->cap ? m->cap : 256;
	while (m->cap < m->len + n)
		m->cap *= 2;
	m->data = xrealloc(m->data, m->cap);
}

void p9_put8(struct p9msg *m, uint8_t v)
{
	reserve(m, 1);
	m->data[m->len++] = v;
}

void p9_put16(struct p9msg *m, uint16_t v)
{
	p9_put8(m, (uint8_t)v);
	p9_put8(m, (uint8_t)(v >> 8));
}

void p9_put32(struct p9msg *m, uint32_t v)
{
	p9_put16(m, (uint16_t)v);
	p9_put16(m, (uint16_t)(v >> 16));
}

void p9_put64(struct p9msg *m, uint64_t v)
{
	p9_put32(m, (uint32_t)v);
	p9_put32(m, (uint32_t)(v >> 32));
}

void p9_putbytes(struct p9msg *m, const void *p, size_t n)
{
	reserve(m, n);
	memcpy(m->data + m->len, p, n);
	m->len += n;
}

void p9_putstrn(struct p9msg *m, const char *s, size_t n)
{
	if (n > 0xffff)
		n = 0xffff;
	p9_put16(m, (uint16_t)n);
	p9_putbytes(m, s, n);
}

void p9_putstr(struct p9msg *m, const char *s)
{
	p9_putstrn(m, s, strlen(s));
}

void p9_begin(struct p9msg *m, uint8_t type, uint16_t tag)
{
	m->len = 0;
	p9_put32(m, 0);
	p9_put8(m, type);
	p9_put16(m, tag);
}

void p9_settag(struct p9msg *m, uint16_t tag)
{
	m->data[5] = (uint8_t)tag;
	m->data[6] = (uint8_t)(tag >> 8);
}

void p9_end(struct p9msg *m)
{
	uint32_t n = (uint32_t)m->len;
	for (int i = 0; i < 4; i++)
		m->data[i] = (uint8_t)(n >> (8 * i));
}

void p9_msg_free(struct p9msg *m)
{
	free(m->data);
	memset(m, 0, sizeof(*m));
}

uint32_t p9_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A cursor over received bytes; bad is set by any read past the end. */
struct cur {
	const uint8_t *p;
	size_t left;
	int bad;
};

static const uint8_t *take(struct cur *c, size_t n)
{
	const uint8_t *p = c->p;
	if (c->bad || n > c->left) {
		c->bad = 1;
		return NULL;
	}
	c->p += n;
	c->left -= n;
	return p;
}

static uint64_t get(struct cur *c, int bytes)
{
	const uint8_t *p = take(c, (size_t)bytes);
	uint64_t v = 0;
	for (int i = 0; p && i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#define GET8(c)	 ((uint8_t)get(c, 1))
#define GET16(c) ((uint16_t)get(c, 2))
#define GET32(c) ((uint32_t)get(c, 4))
#define GET64(c) get(c, 8)

static void get_str(struct cur *c, struct p9str *s)
{
	s->len = GET16(c);
	s->s = (const char *)take(c, s->len);
	if (!s->s)
		s->len = 0;
}

static void get_qid(struct cur *c, struct p9qid *q)
{
	q->type = GET8(c);
	q->version = GET32(c);
	q->path = GET64(c);
}

static void get_attr(struct cur *c, struct p9attr *a)
{
	a->valid = GET64(c);
	get_qid(c, &a->qid);
	a->mode = GET32(c);
	a->uid = GET32(c);
	a->gid = GET32(c);
	a->nlink = GET64(c);
	a->rdev = GET64(c);
	a->size = GET64(c);
	a->blksize = GET64(c);
	a->blocks = GET64(c);
	a->atime_sec = GET64(c);
	a->atime_nsec = GET64(c);
	a->mtime_sec = GET64(c);
	a->mtime_nsec = GET64(c);
	a->ctime_sec = GET64(c);
	a->ctime_nsec = GET64(c);
	take(c, 4 * 8); /* btime, gen, data_version: unused */
}

static void get_statfs(struct cur *c, struct p9statfs *s)
{
	s->type = GET32(c);
	s->bsize = GET32(c);
	s->blocks = GET64(c);
	s->bfree = GET64(c);
	s->bavail = GET64(c);
	s->files = GET64(c);
	s->ffree = GET64(c);
	s->fsid = GET64(c);
	s->namelen = GET32(c);
}

int p9_decode(const uint8_t *msg, size_t len, struct p9reply *r)
{
	struct cur c = {msg, len, 0};

	memset(r, 0, sizeof(*r));
	if (GET32(&c) != len || len < P9_HDR)
		return -EPROTO;
	r->type = GET8(&c);
	r->tag = GET16(&c);
	switch (r->type) {
	case P9_RVERSION:
		r->u.version.msize = GET32(&c);
		get_str(&c, &r->u.version.version);
		break;
	case P9_RLERROR:
		r->u.ecode = GET32(&c);
		break;
	case P9_RAUTH:
	case P9_RATTACH:
	case P9_RMKDIR:
		get_qid(&c, &r->u.qid);
		break;
	case P9_RLOPEN:
	case P9_RLCREATE:
		get_qid(&c, &r->u.open.qid);
		r->u.open.iounit = GET32(&c);
		break;
	case P9_RWALK:
		r->u.walk.nwqid = GET16(&c);
		if (r->u.walk.nwqid > P9_MAXWELEM)
			return -EPROTO;
		for (int i = 0; i < r->u.walk.nwqid; i++)
			get_qid(&c, &r->u.walk.wqid[i]);
		break;
	case P9_RREAD:
	case P9_RREADDIR:
		r->u.io.count = GET32(&c);
		r->u.io.data = take(&c, r->u.io.count);
		break;
	case P9_RWRITE:
		r->u.io.count = GET32(&c);
		break;
	case P9_RGETATTR:
		get_attr(&c, &r->u.attr);
		break;
	case P9_RSTATFS:
		get_statfs(&c, &r->u.statfs);
		break;
	case P9_RFLUSH:
	case P9_RCLUNK:
	case P9_RREMOVE:
	case P9_RSETATTR:
	case P9_RRENAME:
	case P9_RFSYNC:
		break;
	default:
		return -EPROTO;
	}
	return c.bad || c.left ? -EPROTO : 0;
}

int p9_next_dirent(const uint8_t *data, uint32_t count, uint32_t *pos, struct p9dirent *d)
{
	struct cur c;

	if (*pos >= count)
		return 0;
	c = (struct cur){data + *pos, count - *pos, 0};
	get_qid(&c, &d->qid);
	d->offset = GET64(&c);
	d->type = GET8(&c);
	get_str(&c, &d->name);
	if (c.bad)
		return -EPROTO;
	*pos = count - (uint32_t)c.left;
	return 1;
}
