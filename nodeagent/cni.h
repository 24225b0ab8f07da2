/*
 * cni.h: a pod's network namespace, wired by the CNI plugins.
 *
 * Each pod gets /run/netns/NAME (ip netns), its loopback up (ip link),
 * and eth0 on the node's bridge from the bridge plugin
 * with host-local IPAM over the node's pod CIDR. The agent picks the
 * address (CNI_ARGS IP=...), so host-local's records and the agent's
 * agree; the bridge holds the CIDR's first address as the pods' gateway.
 */
#ifndef CFS_CNI_H
#define CFS_CNI_H

#include "util.h"

struct cni_config {
	const char *bridge;   /* the node's bridge, e.g. "cfs0" */
	const char *bin_dir;  /* the plugins: /usr/lib/cni */
	const char *data_dir; /* host-local's records */
};

/* /run/netns/ plus the name; the name is "cfs-" and the first 24 characters of the uid. */
void cni_netns_name(const char *uid, char out[40]);

/* Creates the namespace netns (/run/netns/NAME, as `ip netns add`); one
 * that exists is kept. 0 or -errno with e set. */
int cni_netns_add(const char *netns, struct err *e);
/* Wires the namespace netns: lo up, eth0 on the bridge with address ip in
 * cidr, and, when ports is not NULL, the pod's host ports (a JSON array
 * of CNI port mappings) through portmap. 0 or -errno with e set. */
int cni_wire(const struct cni_config *c, const char *netns, const char *cidr, const char *ip,
	     const char *ports, struct err *e);
/* Releases the host ports (ports as for cni_wire), the address and the
 * namespace; a missing one is fine. 0 or -errno. */
int cni_del(const struct cni_config *c, const char *netns, const char *cidr, const char *ports,
	    struct err *e);

#endif
