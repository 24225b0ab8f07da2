/*
 * proxy.h: the node's Service proxy, as kube-proxy's nftables mode does it.
 *
 * The agent tells the proxy that services or endpoints changed; on its
 * next tick the proxy builds the whole nftables table of the node from the
 * agent's cache and hands it to `nft -f -`, which replaces the table in
 * one transaction. Only that table (ip clusterfs_NODE) is ever touched.
 * The rules outlive the agent, as kube-proxy's do: traffic keeps flowing
 * while the agent restarts.
 */
#ifndef CFS_PROXY_H
#define CFS_PROXY_H

#include "ctl.h"

struct proxy;

/* A proxy for the node named node (the table's name derives from it). */
struct proxy *proxy_new(const char *node);
/* Frees the proxy; the table stays. NULL does nothing. */
void proxy_free(struct proxy *p);
/* Services or endpoints changed: the next proxy_tick() syncs. */
void proxy_changed(struct proxy *p);
/* From the controller's tick: writes the table when something changed
 * since the last sync (or the last one failed, a second ago). */
void proxy_tick(struct proxy *p, struct ctl *c);
/* The table's name: "clusterfs_" and the node's name with characters other
 * than letters and digits as '_'. Borrowed from p. */
const char *proxy_table(const struct proxy *p);

#endif
