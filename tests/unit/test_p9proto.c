/*
 * test_p9proto.c: the 9P2000.L codec against the byte layouts of the spec.
 *
 * T-messages are built with p9_begin/p9_put and compared byte for byte with
 * bytes written out by hand. R-messages are written by hand too (the long
 * ones, Rgetattr, Rstatfs, Rwalk and Rreaddir, are built with the encoder
 * once it has been checked) and decoded field by field. Each valid reply is
 * kept as a sample, and every sample is then broken the ways a peer or the
 * wire could break it: a wrong size field, cut at every byte, bytes after
 * the end. The decoder must refuse all of them with -EPROTO.
 *
 * Given a directory, the binary also writes the samples there, one file
 * each: that is the fuzz target's seed corpus (tests/fuzz/corpus-p9).
 */
#include "p9proto.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LE16(v)			 (uint8_t)(v), (uint8_t)((v) >> 8)
#define LE32(v)			 LE16((v)&0xffff), LE16(((v) >> 16) & 0xffff)
#define LE64(v)			 LE32((uint64_t)(v)&0xffffffff), LE32((uint64_t)(v) >> 32)
#define QID(type, version, path) type, LE32(version), LE64(path)

/* Valid replies, kept for the malformed-input tests and the corpus. */
struct sample {
	char name[32];
	uint8_t *data;
	size_t len;
};
static struct sample samples[64];
static int nsamples;

static void keep(const char *name, const uint8_t *data, size_t len)
{
	struct sample *s = &samples[nsamples++];

	snprintf(s->name, sizeof(s->name), "%s", name);
	s->data = malloc(len);
	memcpy(s->data, data, len);
	s->len = len;
}

/* 1 when m holds exactly want; otherwise prints both in hex. */
static int same(const struct p9msg *m, const uint8_t *want, size_t n)
{
	if (m->len == n && memcmp(m->data, want, n) == 0)
		return 1;
	printf("# got  ");
	for (size_t i = 0; i < m->len; i++)
		printf(" %02x", m->data[i]);
	printf("\n# want ");
	for (size_t i = 0; i < n; i++)
		printf(" %02x", want[i]);
	printf("\n");
	return 0;
}

/* Decodes a copy of exactly n bytes, so a sanitizer sees any read past them. */
static int decode_copy(const uint8_t *msg, size_t n, struct p9reply *r)
{
	uint8_t *copy = malloc(n ? n : 1);
	int rc;

	memcpy(copy, msg, n);
	rc = p9_decode(copy, n, r);
	free(copy);
	return rc;
}

static int refused(const uint8_t *msg, size_t n)
{
	struct p9reply r;
	return decode_copy(msg, n, &r) == -EPROTO;
}

static void set_size(uint8_t *msg, uint32_t size)
{
	for (int i = 0; i < 4; i++)
		msg[i] = (uint8_t)(size >> (8 * i));
}

static void put_qid(struct p9msg *m, uint8_t type, uint32_t version, uint64_t path)
{
	p9_put8(m, type);
	p9_put32(m, version);
	p9_put64(m, path);
}

static int qid_is(const struct p9qid *q, uint8_t type, uint32_t version, uint64_t path)
{
	return q->type == type && q->version == version && q->path == path;
}

/* ---- encoding ---- */

static void test_tversion(void)
{
	static const uint8_t want[] = {
		0x15, 0x00, 0x00, 0x00,			    /* size 21 */
		0x64,					    /* Tversion */
		0xff, 0xff,				    /* NOTAG */
		0x00, 0x20, 0x00, 0x00,			    /* msize 8192 */
		0x08, 0x00,				    /* version[s]: len 8 */
		'9',  'P',  '2',  '0',	'0', '0', '.', 'L', /* "9P2000.L" */
	};
	struct p9msg m = {0};

	p9_begin(&m, P9_TVERSION, P9_NOTAG);
	p9_put32(&m, 8192);
	p9_putstr(&m, "9P2000.L");
	p9_end(&m);
	ok(same(&m, want, sizeof(want)), "Tversion: size type tag msize version[s]");
	p9_msg_free(&m);
}

static void test_twalk(void)
{
	static const uint8_t want[] = {
		0x1b, 0x00, 0x00, 0x00,	     /* size 27 */
		0x6e,			     /* Twalk */
		0x01, 0x00,		     /* tag 1 */
		0x01, 0x00, 0x00, 0x00,	     /* fid 1 */
		0x02, 0x00, 0x00, 0x00,	     /* newfid 2 */
		0x02, 0x00,		     /* nwname 2 */
		0x03, 0x00, 'u',  's',	'r', /* wname "usr" */
		0x03, 0x00, 'l',  'i',	'b', /* wname "lib" */
	};
	static const uint8_t clone[] = {
		0x11, 0x00, 0x00, 0x00, /* size 17 */
		0x6e,			/* Twalk */
		0x02, 0x00,		/* tag 2 */
		0x01, 0x00, 0x00, 0x00, /* fid 1 */
		0x03, 0x00, 0x00, 0x00, /* newfid 3 */
		0x00, 0x00,		/* nwname 0 */
	};
	struct p9msg m = {0};

	p9_begin(&m, P9_TWALK, 1);
	p9_put32(&m, 1);
	p9_put32(&m, 2);
	p9_put16(&m, 2);
	p9_putstr(&m, "usr");
	p9_putstrn(&m, "library", 3);
	p9_end(&m);
	ok(same(&m, want, sizeof(want)), "Twalk: fid newfid nwname wname[s]...");

	p9_begin(&m, P9_TWALK, 2);
	p9_put32(&m, 1);
	p9_put32(&m, 3);
	p9_put16(&m, 0);
	p9_end(&m);
	ok(same(&m, clone, sizeof(clone)), "Twalk with no names (a clone), in a reused buffer");
	p9_msg_free(&m);
}

static void test_twrite(void)
{
	static const uint8_t want[] = {
		0x1c, 0x00, 0x00, 0x00,				/* size 28 */
		0x76,						/* Twrite */
		0x03, 0x00,					/* tag 3 */
		0x05, 0x00, 0x00, 0x00,				/* fid 5 */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* offset */
		0x05, 0x00, 0x00, 0x00,				/* count 5 */
		'h',  'e',  'l',  'l',	'o',			/* data */
	};
	struct p9msg m = {0};

	p9_begin(&m, P9_TWRITE, 3);
	p9_put32(&m, 5);
	p9_put64(&m, 0x0102030405060708ull);
	p9_put32(&m, 5);
	p9_putbytes(&m, "hello", 5);
	p9_end(&m);
	ok(same(&m, want, sizeof(want)), "Twrite: fid offset[8] count data");
	p9_msg_free(&m);
	ok(m.data == NULL && m.len == 0 && m.cap == 0, "p9_msg_free leaves an empty message");
}

/* A write far past the first allocation: the buffer grows, nothing is lost. */
static void test_big_twrite(void)
{
	enum { N = 100000 };
	uint8_t *data = malloc(N);
	struct p9msg m = {0};

	for (size_t i = 0; i < N; i++)
		data[i] = (uint8_t)(i * 7 + 1);
	p9_begin(&m, P9_TWRITE, 4);
	p9_put32(&m, 1);
	p9_put64(&m, 0);
	p9_put32(&m, N);
	p9_putbytes(&m, data, N);
	p9_end(&m);
	ok(m.len == 23 + N && p9_get32(m.data) == 23 + N && m.data[4] == P9_TWRITE &&
		   p9_get32(m.data + 19) == N && memcmp(m.data + 23, data, N) == 0,
	   "a Twrite of %d bytes: size, header and data intact", N);
	p9_msg_free(&m);
	free(data);
}

static void test_settag(void)
{
	static const uint8_t want[] = {
		0x0b, 0x00, 0x00, 0x00, 0x78, 0xef, 0xbe, 0x2a, 0x00, 0x00, 0x00,
	};
	struct p9msg m = {0};

	p9_begin(&m, P9_TCLUNK, 1);
	p9_put32(&m, 42);
	p9_end(&m);
	p9_settag(&m, 0xbeef);
	ok(same(&m, want, sizeof(want)), "p9_settag rewrites the tag, little-endian, and only it");
	p9_settag(&m, P9_NOTAG);
	ok(m.data[5] == 0xff && m.data[6] == 0xff && p9_get32(m.data) == 11 && m.len == 11,
	   "p9_settag to NOTAG");
	p9_msg_free(&m);
}

static void test_get32(void)
{
	static const uint8_t b[] = {0x78, 0x56, 0x34, 0xf2};
	ok(p9_get32(b) == 0xf2345678, "p9_get32 reads little-endian, high bit included");
}

/* ---- decoding ---- */

static void test_rversion(void)
{
	static const uint8_t msg[] = {
		LE32(21),   P9_RVERSION, LE16(0xffff), /* size type tag */
		LE32(8192), LE16(8),		       /* msize, version's len */
		'9',	    'P',	 '2',	       '0', '0', '0', '.', 'L', /* version */
	};
	struct p9reply r;
	int rc = p9_decode(msg, sizeof(msg), &r);

	ok(rc == 0 && r.type == P9_RVERSION && r.tag == P9_NOTAG && r.u.version.msize == 8192,
	   "Rversion: type, tag, msize");
	ok(rc == 0 && r.u.version.version.len == 8 &&
		   r.u.version.version.s == (const char *)msg + 13 &&
		   memcmp(r.u.version.version.s, "9P2000.L", 8) == 0,
	   "Rversion: the version string points into the message");
	keep("rversion", msg, sizeof(msg));

	static const uint8_t empty[] = {LE32(13), P9_RVERSION, LE16(0xffff), LE32(4096), LE16(0)};
	rc = p9_decode(empty, sizeof(empty), &r);
	ok(rc == 0 && r.u.version.msize == 4096 && r.u.version.version.len == 0,
	   "Rversion with an empty version (the server's \"unknown\")");
}

static void test_rlerror(void)
{
	static const uint8_t msg[] = {LE32(11), P9_RLERROR, LE16(5), LE32(ENOENT)};
	struct p9reply r;

	ok(p9_decode(msg, sizeof(msg), &r) == 0 && r.type == P9_RLERROR && r.tag == 5 &&
		   r.u.ecode == ENOENT,
	   "Rlerror: ecode");
	keep("rlerror", msg, sizeof(msg));
}

/* Rattach, and Rauth and Rmkdir, which are laid out the same: one qid. */
static void test_rattach(void)
{
	static const uint8_t types[] = {P9_RATTACH, P9_RAUTH, P9_RMKDIR};
	static const char *const names[] = {"rattach", "rauth", "rmkdir"};

	for (int i = 0; i < 3; i++) {
		uint8_t msg[] = {LE32(20), types[i], LE16(0x1234),
				 QID(0x80, 0xdeadbeef, 0x0123456789abcdefull)};
		struct p9reply r;
		ok(p9_decode(msg, sizeof(msg), &r) == 0 && r.type == types[i] && r.tag == 0x1234 &&
			   qid_is(&r.u.qid, 0x80, 0xdeadbeef, 0x0123456789abcdefull),
		   "%s: qid type, version, path", names[i]);
		keep(names[i], msg, sizeof(msg));
	}
}

/* Rlopen, and Rlcreate, which is laid out the same. */
static void test_rlopen(void)
{
	static const uint8_t types[] = {P9_RLOPEN, P9_RLCREATE};
	static const char *const names[] = {"rlopen", "rlcreate"};

	for (int i = 0; i < 2; i++) {
		uint8_t msg[] = {LE32(24), types[i], LE16(7), QID(0, 3, 0x42), LE32(65512)};
		struct p9reply r;
		ok(p9_decode(msg, sizeof(msg), &r) == 0 && r.type == types[i] && r.tag == 7 &&
			   qid_is(&r.u.open.qid, 0, 3, 0x42) && r.u.open.iounit == 65512,
		   "%s: qid and iounit", names[i]);
		keep(names[i], msg, sizeof(msg));
	}
}

static void build_rwalk(struct p9msg *m, uint16_t nwqid)
{
	p9_begin(m, P9_RWALK, 9);
	p9_put16(m, nwqid);
	for (uint16_t i = 0; i < nwqid; i++)
		put_qid(m, i % 2 ? 0 : 0x80, i, 1000 + i);
	p9_end(m);
}

static void test_rwalk(void)
{
	struct p9msg m = {0};
	int bad = 0;

	for (uint16_t n = 0; n <= P9_MAXWELEM; n++) {
		struct p9reply r;
		build_rwalk(&m, n);
		if (p9_decode(m.data, m.len, &r) != 0 || r.type != P9_RWALK || r.tag != 9 ||
		    r.u.walk.nwqid != n || m.len != 9u + 13u * n)
			bad++;
		for (uint16_t i = 0; i < n; i++)
			bad += !qid_is(&r.u.walk.wqid[i], i % 2 ? 0 : 0x80, i, 1000 + i);
		if (n == 0 || n == 1 || n == P9_MAXWELEM) {
			char name[32];
			snprintf(name, sizeof(name), "rwalk-%d", n);
			keep(name, m.data, m.len);
		}
	}
	ok(bad == 0, "Rwalk with 0 to 16 qids: nwqid and every qid in order");
	p9_msg_free(&m);
}

static void test_rread(void)
{
	static const uint8_t msg[] = {
		LE32(23), P9_RREAD, LE16(3), LE32(12), /* size type tag count */
		'h',	  'e',	    'l',     'l',      'o', ',',
		' ',	  'w',	    'o',     'r',      'l', 'd', /* data */
	};
	static const uint8_t eof[] = {LE32(11), P9_RREAD, LE16(3), LE32(0)};
	struct p9reply r;
	int rc = p9_decode(msg, sizeof(msg), &r);

	ok(rc == 0 && r.type == P9_RREAD && r.tag == 3 && r.u.io.count == 12 &&
		   r.u.io.data == msg + 11 && memcmp(r.u.io.data, "hello, world", 12) == 0,
	   "Rread: count, and data pointing into the message");
	keep("rread", msg, sizeof(msg));
	ok(p9_decode(eof, sizeof(eof), &r) == 0 && r.u.io.count == 0,
	   "Rread of nothing (end of file)");
	keep("rread-eof", eof, sizeof(eof));
}

static void test_rwrite(void)
{
	static const uint8_t msg[] = {LE32(11), P9_RWRITE, LE16(0x0102), LE32(0x00abcdef)};
	struct p9reply r;

	ok(p9_decode(msg, sizeof(msg), &r) == 0 && r.type == P9_RWRITE && r.tag == 0x0102 &&
		   r.u.io.count == 0x00abcdef,
	   "Rwrite: count");
	keep("rwrite", msg, sizeof(msg));
}

/* Every field a different value, most of them wider than 32 bits. */
static void test_rgetattr(void)
{
	struct p9msg m = {0};
	struct p9reply r;
	uint64_t wide[11];

	for (int i = 0; i < 11; i++)
		wide[i] = 0x1000000000ull * (uint64_t)(i + 1) + (uint64_t)i;
	p9_begin(&m, P9_RGETATTR, 11);
	p9_put64(&m, 0x3fff);
	put_qid(&m, 0x80, 77, 0xa1a2a3a4a5a6a7a8ull);
	p9_put32(&m, 040755);
	p9_put32(&m, 1000);
	p9_put32(&m, 1001);
	for (int i = 0; i < 11; i++)
		p9_put64(&m, wide[i]);
	for (int i = 0; i < 4; i++) /* btime_sec, btime_nsec, gen, data_version */
		p9_put64(&m, 0xeeeeeeeeeeeeeeeeull);
	p9_end(&m);
	ok(m.len == 160, "Rgetattr is 160 bytes (7 + 153)");

	int rc = p9_decode(m.data, m.len, &r);
	struct p9attr *a = &r.u.attr;
	ok(rc == 0 && r.type == P9_RGETATTR && r.tag == 11 && a->valid == 0x3fff &&
		   qid_is(&a->qid, 0x80, 77, 0xa1a2a3a4a5a6a7a8ull) && a->mode == 040755 &&
		   a->uid == 1000 && a->gid == 1001,
	   "Rgetattr: valid, qid, mode, uid, gid");
	ok(rc == 0 && a->nlink == wide[0] && a->rdev == wide[1] && a->size == wide[2] &&
		   a->blksize == wide[3] && a->blocks == wide[4],
	   "Rgetattr: nlink, rdev, size, blksize, blocks");
	ok(rc == 0 && a->atime_sec == wide[5] && a->atime_nsec == wide[6] &&
		   a->mtime_sec == wide[7] && a->mtime_nsec == wide[8] && a->ctime_sec == wide[9] &&
		   a->ctime_nsec == wide[10],
	   "Rgetattr: atime, mtime, ctime (sec and nsec)");
	keep("rgetattr", m.data, m.len);
	p9_msg_free(&m);
}

static void test_rstatfs(void)
{
	struct p9msg m = {0};
	struct p9reply r;

	p9_begin(&m, P9_RSTATFS, 12);
	p9_put32(&m, 0x01021994);
	p9_put32(&m, 4096);
	p9_put64(&m, 0x100000001ull);
	p9_put64(&m, 0x200000002ull);
	p9_put64(&m, 0x300000003ull);
	p9_put64(&m, 0x400000004ull);
	p9_put64(&m, 0x500000005ull);
	p9_put64(&m, 0xfeedface12345678ull);
	p9_put32(&m, 255);
	p9_end(&m);

	int rc = p9_decode(m.data, m.len, &r);
	struct p9statfs *s = &r.u.statfs;
	ok(m.len == 67 && rc == 0 && r.type == P9_RSTATFS && r.tag == 12 && s->type == 0x01021994 &&
		   s->bsize == 4096 && s->blocks == 0x100000001ull && s->bfree == 0x200000002ull &&
		   s->bavail == 0x300000003ull && s->files == 0x400000004ull &&
		   s->ffree == 0x500000005ull && s->fsid == 0xfeedface12345678ull &&
		   s->namelen == 255,
	   "Rstatfs: every field");
	keep("rstatfs", m.data, m.len);
	p9_msg_free(&m);
}

static const struct {
	uint8_t qtype;
	uint64_t path, offset;
	uint8_t type;
	const char *name;
} dirents[] = {
	{0x80, 1, 1, 4, "."},
	{0x80, 2, 2, 4, ".."},
	{0, 0x1122334455667788ull, 0xffffffffffffff00ull, 8, "hello.txt"},
	{0, 4, 4, 8, ""},
};
#define NDIRENTS (int)(sizeof(dirents) / sizeof(dirents[0]))

static void put_dirent(struct p9msg *m, int i)
{
	put_qid(m, dirents[i].qtype, (uint32_t)i, dirents[i].path);
	p9_put64(m, dirents[i].offset);
	p9_put8(m, dirents[i].type);
	p9_putstr(m, dirents[i].name);
}

static void test_rreaddir(void)
{
	struct p9msg m = {0};
	struct p9reply r;
	struct p9dirent d;
	uint32_t pos = 0;
	int n = 0, bad = 0, rc;

	p9_begin(&m, P9_RREADDIR, 13);
	p9_put32(&m, 0);
	for (int i = 0; i < NDIRENTS; i++)
		put_dirent(&m, i);
	set_size(m.data + 7, (uint32_t)m.len - 11);
	p9_end(&m);
	ok(p9_decode(m.data, m.len, &r) == 0 && r.type == P9_RREADDIR && r.tag == 13 &&
		   r.u.io.count == m.len - 11 && r.u.io.data == m.data + 11,
	   "Rreaddir: count and data");
	while ((rc = p9_next_dirent(r.u.io.data, r.u.io.count, &pos, &d)) == 1 && n < NDIRENTS) {
		size_t len = strlen(dirents[n].name);
		bad += !qid_is(&d.qid, dirents[n].qtype, (uint32_t)n, dirents[n].path) ||
		       d.offset != dirents[n].offset || d.type != dirents[n].type ||
		       d.name.len != len || memcmp(d.name.s, dirents[n].name, len) != 0;
		n++;
	}
	ok(rc == 0 && n == NDIRENTS && bad == 0 && pos == r.u.io.count,
	   "Rreaddir: p9_next_dirent gives %d entries, every field, then the end", NDIRENTS);
	ok(p9_next_dirent(r.u.io.data, r.u.io.count, &pos, &d) == 0,
	   "p9_next_dirent stays at the end");
	keep("rreaddir", m.data, m.len);

	p9_begin(&m, P9_RREADDIR, 13);
	p9_put32(&m, 0);
	p9_end(&m);
	pos = 0;
	ok(p9_decode(m.data, m.len, &r) == 0 && r.u.io.count == 0 &&
		   p9_next_dirent(r.u.io.data, r.u.io.count, &pos, &d) == 0,
	   "an empty Rreaddir has no entries");
	keep("rreaddir-empty", m.data, m.len);
	p9_msg_free(&m);
}

/* Rclunk, and the other replies with nothing after the header. */
static void test_empty_replies(void)
{
	static const uint8_t types[] = {P9_RCLUNK,   P9_RFLUSH,	 P9_RREMOVE,
					P9_RSETATTR, P9_RRENAME, P9_RFSYNC};
	static const char *const names[] = {"rclunk",	"rflush",  "rremove",
					    "rsetattr", "rrename", "rfsync"};

	for (int i = 0; i < 6; i++) {
		uint8_t msg[] = {LE32(7), types[i], LE16(0x00ff)};
		struct p9reply r;
		ok(p9_decode(msg, sizeof(msg), &r) == 0 && r.type == types[i] && r.tag == 0x00ff,
		   "%s: the header alone", names[i]);
		keep(names[i], msg, sizeof(msg));
	}
}

/* ---- malformed input ---- */

static void test_size_disagrees(void)
{
	static const uint32_t delta[] = {1, (uint32_t)-1, 0x10000, 0x80000000u};
	int bad = 0, tries = 0;

	for (int i = 0; i < nsamples; i++) {
		struct sample *s = &samples[i];
		uint8_t *msg = malloc(s->len);
		memcpy(msg, s->data, s->len);
		for (int j = 0; j < 4; j++) {
			set_size(msg, (uint32_t)s->len + delta[j]);
			bad += !refused(msg, s->len);
			tries++;
		}
		set_size(msg, 0);
		bad += !refused(msg, s->len);
		tries++;
		free(msg);
	}
	ok(bad == 0, "a size field that disagrees with the length is refused (%d tries)", tries);
}

/*
 * Each sample cut at every byte, once with its size field as it was and
 * once with the size rewritten to match, so the cut reaches the fields.
 */
static void test_truncated(void)
{
	for (int i = 0; i < nsamples; i++) {
		struct sample *s = &samples[i];
		uint8_t *msg = malloc(s->len);
		int bad = 0;
		for (size_t n = 0; n < s->len; n++) {
			memcpy(msg, s->data, s->len);
			bad += !refused(msg, n);
			if (n >= 4) {
				set_size(msg, (uint32_t)n);
				bad += !refused(msg, n);
			}
		}
		ok(bad == 0, "%s cut at each of its %zu bytes is refused", s->name, s->len);
		free(msg);
	}
}

static void test_trailing(void)
{
	int bad = 0;

	for (int i = 0; i < nsamples; i++) {
		struct sample *s = &samples[i];
		uint8_t *msg = calloc(1, s->len + 4);
		memcpy(msg, s->data, s->len);
		for (size_t extra = 1; extra <= 4; extra++) {
			set_size(msg, (uint32_t)s->len);
			bad += !refused(msg, s->len + extra);
			set_size(msg, (uint32_t)(s->len + extra));
			bad += !refused(msg, s->len + extra);
		}
		free(msg);
	}
	ok(bad == 0, "1 to 4 bytes after any valid reply are refused, whatever the size says");
}

static int known_type(int t)
{
	static const uint8_t known[] = {
		P9_RLERROR,  P9_RSTATFS,  P9_RLOPEN,   P9_RLCREATE, P9_RRENAME,
		P9_RGETATTR, P9_RSETATTR, P9_RREADDIR, P9_RFSYNC,   P9_RMKDIR,
		P9_RVERSION, P9_RAUTH,	  P9_RATTACH,  P9_RFLUSH,   P9_RWALK,
		P9_RREAD,    P9_RWRITE,	  P9_RCLUNK,   P9_RREMOVE,
	};
	for (size_t i = 0; i < sizeof(known); i++)
		if (known[i] == t)
			return 1;
	return 0;
}

static void test_unknown_type(void)
{
	uint8_t msg[7 + 200] = {0};
	int bad = 0, unknown = 0;

	for (int t = 0; t < 256; t++) {
		if (known_type(t))
			continue;
		unknown++;
		msg[4] = (uint8_t)t;
		for (size_t n = 7; n <= sizeof(msg); n++) {
			set_size(msg, (uint32_t)n);
			bad += !refused(msg, n);
		}
	}
	ok(unknown == 256 - 19 && bad == 0,
	   "the %d types the decoder does not know are refused, with bodies of 0 to 200 bytes",
	   unknown);

	static const uint8_t tversion[] = {LE32(13), P9_TVERSION, LE16(0xffff), LE32(8192),
					   LE16(0)};
	ok(refused(tversion, sizeof(tversion)), "a T-message (Tversion) is no reply");
}

static void test_rwalk_too_many(void)
{
	struct p9msg m = {0};

	build_rwalk(&m, P9_MAXWELEM + 1);
	ok(refused(m.data, m.len), "Rwalk with 17 qids (all present) is refused");
	build_rwalk(&m, 0);
	m.data[7] = 0xff;
	m.data[8] = 0xff;
	ok(refused(m.data, m.len), "Rwalk with nwqid 65535 is refused");
	p9_msg_free(&m);
}

static void test_count_past_end(void)
{
	uint8_t msg[] = {LE32(16), P9_RREAD, LE16(1), LE32(6), 'a', 'b', 'c', 'd', 'e'};

	ok(refused(msg, sizeof(msg)), "Rread with count one past the end is refused");
	msg[7] = msg[8] = msg[9] = msg[10] = 0xff;
	ok(refused(msg, sizeof(msg)), "Rread with count 2^32-1 is refused");
	msg[4] = P9_RREADDIR;
	ok(refused(msg, sizeof(msg)), "Rreaddir with count past the end is refused");
	msg[7] = 4;
	msg[8] = msg[9] = msg[10] = 0;
	ok(refused(msg, sizeof(msg)), "Rread with count short of the end is refused");
}

/* One whole entry, then one whose name runs past the data. */
static void test_dirent_past_end(void)
{
	struct p9msg m = {0};
	struct p9reply r;
	struct p9dirent d;
	uint32_t pos = 0;

	p9_begin(&m, P9_RREADDIR, 1);
	p9_put32(&m, 0);
	put_dirent(&m, 2);
	put_qid(&m, 0, 0, 5);
	p9_put64(&m, 5);
	p9_put8(&m, 8);
	p9_put16(&m, 10);
	p9_putbytes(&m, "abcd", 4);
	set_size(m.data + 7, (uint32_t)m.len - 11);
	p9_end(&m);

	ok(p9_decode(m.data, m.len, &r) == 0, "the Rreaddir itself is well framed");
	ok(p9_next_dirent(r.u.io.data, r.u.io.count, &pos, &d) == 1 && d.name.len == 9,
	   "its first entry is read");
	uint32_t before = pos;
	ok(p9_next_dirent(r.u.io.data, r.u.io.count, &pos, &d) == -EPROTO && pos == before,
	   "a name past the end of the data is refused, and the position is kept");
	p9_msg_free(&m);
}

/* One entry cut at every byte, each cut in a buffer of exactly that size. */
static void test_dirent_truncated(void)
{
	struct p9msg m = {0};
	int bad = 0;

	put_dirent(&m, 2);
	for (uint32_t n = 1; n < m.len; n++) {
		uint8_t *data = malloc(n);
		struct p9dirent d;
		uint32_t pos = 0;
		memcpy(data, m.data, n);
		bad += p9_next_dirent(data, n, &pos, &d) != -EPROTO || pos != 0;
		free(data);
	}
	ok(bad == 0, "a dirent cut at each of its %zu bytes is refused", m.len);
	p9_msg_free(&m);
}

/* Writes every sample into dir, for the fuzz target's corpus. */
static int write_corpus(const char *dir)
{
	for (int i = 0; i < nsamples; i++) {
		char path[4096];
		FILE *f;
		snprintf(path, sizeof(path), "%s/%s", dir, samples[i].name);
		if (!(f = fopen(path, "wb")) ||
		    fwrite(samples[i].data, 1, samples[i].len, f) != samples[i].len ||
		    fclose(f) != 0) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 0;

	test_tversion();
	test_twalk();
	test_twrite();
	test_big_twrite();
	test_settag();
	test_get32();

	test_rversion();
	test_rlerror();
	test_rattach();
	test_rlopen();
	test_rwalk();
	test_rread();
	test_rwrite();
	test_rgetattr();
	test_rstatfs();
	test_rreaddir();
	test_empty_replies();

	test_size_disagrees();
	test_truncated();
	test_trailing();
	test_unknown_type();
	test_rwalk_too_many();
	test_count_past_end();
	test_dirent_past_end();
	test_dirent_truncated();

	if (argc > 1)
		rc = write_corpus(argv[1]);
	for (int i = 0; i < nsamples; i++)
		free(samples[i].data);
	return done_testing() || rc;
}
