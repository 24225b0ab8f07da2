/*
 * dns.h: the node's DNS for Services, one dnsmasq per node.
 *
 * The agent tells dns that services or endpoints changed; on its next
 * tick the names are written from the agent's cache into a hosts file
 * (NAME.NS.svc.cluster.local -> the ClusterIP, or a headless Service's
 * ready endpoint addresses) and dnsmasq re-reads it on SIGHUP. dnsmasq
 * listens only on the node's pod gateway (the first address of its pod
 * CIDR), answers cluster.local from that file alone and asks no one else.
 * The agent supervises it: started once the pod range is known, started
 * again when it dies, stopped by dns_free(). One left by an agent that
 * died is found by its pid file and replaced.
 */
#ifndef CFS_DNS_H
#define CFS_DNS_H

#include "ctl.h"

#include <arpa/inet.h>

struct dns;

/* The DNS of the node named node, its files in dir (made when missing). */
struct dns *dns_new(const char *node, const char *dir);
/* Stops dnsmasq (SIGTERM, then SIGKILL after a second) and frees d. NULL does nothing. */
void dns_free(struct dns *d);
/* Services or endpoints changed: the next dns_tick() rewrites the names. */
void dns_changed(struct dns *d);
/* From the controller's tick: the names written when they changed, and
 * dnsmasq (re)started when it is not running. cidr is the node's pod
 * range, "" while it is not chosen yet (dnsmasq waits for it). */
void dns_tick(struct dns *d, struct ctl *c, const char *cidr);
/* The address pods ask: the first of cidr. -EINVAL for a bad cidr. */
int dns_server_of(const char *cidr, char out[INET_ADDRSTRLEN]);

#endif
