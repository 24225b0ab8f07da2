/*
 * p9proto.h: the 9P2000.L messages a client sends and receives.
 *
 * Encoding builds a T-message into a growable buffer; decoding checks an
 * R-message from the wire (any bytes at all: the fuzz target feeds it
 * garbage) and fills a struct p9reply whose strings and data point into
 * the message. Only the messages the client uses are known.
 *
 * Every message is size[4] type[1] tag[2] then its fields, little-endian;
 * a string is len[2] bytes; a qid is type[1] version[4] path[8].
 */
#ifndef CFS_P9PROTO_H
#define CFS_P9PROTO_H

#include <stddef.h>
#include <stdint.h>

#define P9_NOTAG    0xffff
#define P9_NOFID    0xffffffffu
#define P9_HDR	    7  /* size, type, tag */
#define P9_IOHDR    24 /* the most a Tread/Twrite header may take of msize */
#define P9_MAXWELEM 16 /* names in one Twalk */

enum p9type {
	P9_RLERROR = 7,
	P9_TSTATFS = 8,
	P9_RSTATFS,
	P9_TLOPEN = 12,
	P9_RLOPEN,
	P9_TLCREATE = 14,
	P9_RLCREATE,
	P9_TRENAME = 20,
	P9_RRENAME,
	P9_TGETATTR = 24,
	P9_RGETATTR,
	P9_TSETATTR = 26,
	P9_RSETATTR,
	P9_TREADDIR = 40,
	P9_RREADDIR,
	P9_TFSYNC = 50,
	P9_RFSYNC,
	P9_TMKDIR = 72,
	P9_RMKDIR,
	P9_TVERSION = 100,
	P9_RVERSION,
	P9_TAUTH = 102,
	P9_RAUTH,
	P9_TATTACH = 104,
	P9_RATTACH,
	P9_TFLUSH = 108,
	P9_RFLUSH,
	P9_TWALK = 110,
	P9_RWALK,
	P9_TREAD = 116,
	P9_RREAD,
	P9_TWRITE = 118,
	P9_RWRITE,
	P9_TCLUNK = 120,
	P9_RCLUNK,
	P9_TREMOVE = 122,
	P9_RREMOVE,
};

/* Tgetattr's request mask and Rgetattr's valid bits. */
#define P9_GETATTR_BASIC 0x7ffull

/* Tsetattr's valid bits. */
enum {
	P9_SETATTR_MODE = 1 << 0,
	P9_SETATTR_UID = 1 << 1,
	P9_SETATTR_GID = 1 << 2,
	P9_SETATTR_SIZE = 1 << 3,
	P9_SETATTR_ATIME = 1 << 4,
	P9_SETATTR_MTIME = 1 << 5,
	P9_SETATTR_CTIME = 1 << 6,
	P9_SETATTR_ATIME_SET = 1 << 7,
	P9_SETATTR_MTIME_SET = 1 << 8,
};

struct p9qid {
	uint8_t type;
	uint32_t version;
	uint64_t path;
};

struct p9str {
	const char *s; /* not terminated */
	uint16_t len;
};

struct p9attr {
	uint64_t valid;
	struct p9qid qid;
	uint32_t mode, uid, gid;
	uint64_t nlink, rdev, size, blksize, blocks;
	uint64_t atime_sec, atime_nsec, mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
};

struct p9setattr {
	uint32_t valid, mode, uid, gid;
	uint64_t size, atime_sec, atime_nsec, mtime_sec, mtime_nsec;
};

struct p9statfs {
	uint32_t type, bsize;
	uint64_t blocks, bfree, bavail, files, ffree, fsid;
	uint32_t namelen;
};

/* A decoded R-message. */
struct p9reply {
	uint8_t type;
	uint16_t tag;
	union {
		struct {
			uint32_t msize;
			struct p9str version;
		} version;
		uint32_t ecode;	  /* Rlerror */
		struct p9qid qid; /* Rauth, Rattach, Rmkdir */
		struct {
			struct p9qid qid;
			uint32_t iounit;
		} open; /* Rlopen, Rlcreate */
		struct {
			uint16_t nwqid;
			struct p9qid wqid[P9_MAXWELEM];
		} walk;
		struct {
			uint32_t count;
			const uint8_t *data;
		} io; /* Rread, Rreaddir's raw entries; Rwrite's count */
		struct p9attr attr;
		struct p9statfs statfs;
	} u;
};

/* A T-message being built. */
struct p9msg {
	uint8_t *data;
	size_t len, cap;
};

/*
 * p9_begin() starts a message of a type with a tag; the put functions add
 * fields; p9_end() writes the size. The buffer grows as needed.
 */
void p9_begin(struct p9msg *m, uint8_t type, uint16_t tag);
void p9_put8(struct p9msg *m, uint8_t v);
void p9_put16(struct p9msg *m, uint16_t v);
void p9_put32(struct p9msg *m, uint32_t v);
void p9_put64(struct p9msg *m, uint64_t v);
void p9_putstr(struct p9msg *m, const char *s);
void p9_putstrn(struct p9msg *m, const char *s, size_t n);
void p9_putbytes(struct p9msg *m, const void *p, size_t n);
void p9_end(struct p9msg *m);
/* Rewrites the tag of a built message. */
void p9_settag(struct p9msg *m, uint16_t tag);
void p9_msg_free(struct p9msg *m);

/*
 * Decodes one whole R-message of len bytes (its size field included).
 * Returns 0, or -EPROTO when it is malformed: short, long, a size field
 * that disagrees with len, an unknown type, a count past the end.
 */
int p9_decode(const uint8_t *msg, size_t len, struct p9reply *r);

/* One entry of an Rreaddir's data. */
struct p9dirent {
	struct p9qid qid;
	uint64_t offset;
	uint8_t type;
	struct p9str name;
};

/*
 * Takes the next entry from Rreaddir data at *pos; returns 1 with an entry,
 * 0 at the end, -EPROTO when the data is malformed.
 */
int p9_next_dirent(const uint8_t *data, uint32_t count, uint32_t *pos, struct p9dirent *d);

/* Reads a little-endian u32, for the framing of a stream. */
uint32_t p9_get32(const uint8_t *p);

#endif
