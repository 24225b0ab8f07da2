/*
 * fuzz_p9.c: libFuzzer entry point for the decoder of what a 9P server
 * sends: bytes -> struct p9reply -> (for Rreaddir) directory entries.
 *
 * Whatever p9_decode accepts is encoded again, field by field, with the
 * encoder, and must give back the same bytes (the Rgetattr fields the
 * decoder skips are copied over), so a field read from the wrong place or
 * a byte left unread shows. Every Rreaddir is walked to its end with
 * p9_next_dirent, and each entry, encoded again, must be the bytes the
 * position stepped over. The seed corpus is tests/fuzz/corpus-p9, written
 * by tests/unit/test_p9proto given a directory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "p9proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_qid(struct p9msg *m, const struct p9qid *q)
{
	p9_put8(m, q->type);
	p9_put32(m, q->version);
	p9_put64(m, q->path);
}

static void put_attr(struct p9msg *m, const struct p9attr *a)
{
	const uint64_t wide[] = {a->nlink,	a->rdev,      a->size,	     a->blksize,
				 a->blocks,	a->atime_sec, a->atime_nsec, a->mtime_sec,
				 a->mtime_nsec, a->ctime_sec, a->ctime_nsec};

	p9_put64(m, a->valid);
	put_qid(m, &a->qid);
	p9_put32(m, a->mode);
	p9_put32(m, a->uid);
	p9_put32(m, a->gid);
	for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
		p9_put64(m, wide[i]);
}

static void put_statfs(struct p9msg *m, const struct p9statfs *s)
{
	p9_put32(m, s->type);
	p9_put32(m, s->bsize);
	p9_put64(m, s->blocks);
	p9_put64(m, s->bfree);
	p9_put64(m, s->bavail);
	p9_put64(m, s->files);
	p9_put64(m, s->ffree);
	p9_put64(m, s->fsid);
	p9_put32(m, s->namelen);
}

/* The body of r as the encoder writes it, from msg of len bytes that r was decoded from. */
static void put_body(struct p9msg *m, const struct p9reply *r, const uint8_t *msg, size_t len)
{
	switch (r->type) {
	case P9_RVERSION:
		p9_put32(m, r->u.version.msize);
		p9_putstrn(m, r->u.version.version.s, r->u.version.version.len);
		break;
	case P9_RLERROR:
		p9_put32(m, r->u.ecode);
		break;
	case P9_RAUTH:
	case P9_RATTACH:
	case P9_RMKDIR:
		put_qid(m, &r->u.qid);
		break;
	case P9_RLOPEN:
	case P9_RLCREATE:
		put_qid(m, &r->u.open.qid);
		p9_put32(m, r->u.open.iounit);
		break;
	case P9_RWALK:
		p9_put16(m, r->u.walk.nwqid);
		for (int i = 0; i < r->u.walk.nwqid; i++)
			put_qid(m, &r->u.walk.wqid[i]);
		break;
	case P9_RREAD:
	case P9_RREADDIR:
		p9_put32(m, r->u.io.count);
		p9_putbytes(m, r->u.io.data, r->u.io.count);
		break;
	case P9_RWRITE:
		p9_put32(m, r->u.io.count);
		break;
	case P9_RGETATTR:
		put_attr(m, &r->u.attr);
		p9_putbytes(m, msg + len - 4 * 8, 4 * 8); /* btime, gen, data_version: skipped */
		break;
	case P9_RSTATFS:
		put_statfs(m, &r->u.statfs);
		break;
	}
}

/* Walks every entry; each must be exactly the bytes it was read from. */
static void walk_dirents(const uint8_t *data, uint32_t count)
{
	struct p9msg m = {0};
	struct p9dirent d;
	uint32_t pos = 0, prev = 0;
	int rc;

	while ((rc = p9_next_dirent(data, count, &pos, &d)) == 1) {
		if (pos <= prev || pos > count)
			abort();
		m.len = 0;
		put_qid(&m, &d.qid);
		p9_put64(&m, d.offset);
		p9_put8(&m, d.type);
		p9_putstrn(&m, d.name.s, d.name.len);
		if (m.len != pos - prev || memcmp(m.data, data + prev, m.len) != 0 ||
		    d.name.s + d.name.len != (const char *)data + pos)
			abort();
		prev = pos;
	}
	/* the end is all the data read; the position stays on a bad entry */
	if (rc != (pos == count ? 0 : -EPROTO) || pos != prev)
		abort();
	p9_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p9reply r;
	struct p9msg m = {0};

	if (p9_decode(data, size, &r) < 0)
		return 0;
	p9_begin(&m, r.type, r.tag);
	put_body(&m, &r, data, size);
	p9_end(&m);
	if (m.len != size || memcmp(m.data, data, size) != 0)
		abort(); /* what was accepted must encode back to the same bytes */
	p9_msg_free(&m);
	if (r.type == P9_RREADDIR)
		walk_dirents(r.u.io.data, r.u.io.count);
	return 0;
}
