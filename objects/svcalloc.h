/*
 * svcalloc.h: a Service's clusterIP and nodePorts, assigned by the server
 * as the Kubernetes API server assigns them.
 *
 * The store runs svc_allocate() (the Service kind's allocate hook) inside
 * the transaction that writes a Service, with every other Service in view
 * as that transaction sees them. The rest is the pieces it is built from,
 * public so that they can be tested alone: the service CIDR, IPv4
 * addresses, and picking a free slot from a bitmap.
 */
#ifndef CFS_SVCALLOC_H
#define CFS_SVCALLOC_H

#include "schema.h"

#include <stdbool.h>
#include <stdint.h>

#define SVC_CIDR_DEFAULT "10.96.0.0/16"
#define SVC_NODEPORT_MIN 30000
#define SVC_NODEPORT_MAX 32767

/* An IPv4 network: the address (host order, no host bits) and prefix. */
struct svc_cidr {
	uint32_t net;
	int bits;
};

/*
 * Parses "A.B.C.D/N" with N from 12 (a million addresses, Kubernetes'
 * limit) to 30 (one usable address). Returns 0 or -EINVAL with e.
 */
int svc_cidr_parse(const char *s, struct svc_cidr *c, struct err *e);
/* How many addresses c spans, network and broadcast included. */
uint32_t svc_cidr_size(const struct svc_cidr *c);
/* Formats c as "A.B.C.D/N" into buf. */
void svc_cidr_format(const struct svc_cidr *c, char buf[24]);

/*
 * Sets the process's service CIDR (--service-cidr), SVC_CIDR_DEFAULT until
 * then. Call it before the store opens: the committer reads it unlocked.
 * Returns 0 or -EINVAL with e.
 */
int svc_set_cidr(const char *s, struct err *e);
/* The process's service CIDR. */
const struct svc_cidr *svc_get_cidr(void);

/* Parses a dotted-quad IPv4 address into host order. 0 or -EINVAL. */
int svc_parse_ip(const char *s, uint32_t *ip);
/* Formats ip (host order) into buf. */
void svc_format_ip(uint32_t ip, char buf[16]);
/*
 * Where ip sits in c: its offset from the network address, or -1 when
 * outside. Offsets 0 (network), 1 (the kubernetes service's own) and
 * size-1 (broadcast) are never handed out.
 */
long svc_cidr_offset(const struct svc_cidr *c, uint32_t ip);

/*
 * The first clear bit of bits in [lo, hi), looking from start (lo <= start
 * < hi) up to hi, then from lo up to start. -1 when all are set.
 */
long svc_next_free(const uint8_t *bits, size_t lo, size_t hi, size_t start);
/*
 * The size of the lower band of a range of size slots that dynamic picks
 * leave to requests made by hand, as Kubernetes sizes it: none below 16
 * slots, else size/step kept between 16 and max.
 */
size_t svc_band(size_t size, size_t step, size_t max);
/*
 * A free slot of bits[0, size): from a point that rnd chooses in the upper
 * part (above band) first, then in the lower band. -1 when none is free.
 */
long svc_pick(const uint8_t *bits, size_t size, size_t band, uint64_t rnd);

/*
 * The Service kind's allocate hook (see struct kind): checks the clusterIP
 * and nodePorts doc asks for against the other Services in peers, or
 * assigns free ones; an update keeps cur's clusterIP (which may not
 * change) and the nodePorts of its ports, matched by name. Returns 0,
 * -EINVAL (malformed, out of range, a changed clusterIP), -EEXIST (taken)
 * or -ENOSPC (nothing free), with e naming the field.
 */
int svc_allocate(const struct ynode *cur, struct ynode *doc, const struct kind_peers *peers,
		 struct err *e);

#endif
