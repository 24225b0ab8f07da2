/*
 * controllers.c: starts and stops the control plane's controllers.
 */
#define _GNU_SOURCE
#include "controllers.h"

#define MAX_CONTROLLERS 16

struct controllers {
	struct ctl *c[MAX_CONTROLLERS];
	int n;
};

struct controllers *controllers_start(const char *mount, const struct controllers_config *cfg)
{
	struct controllers *cs = xcalloc(1, sizeof(*cs));

	cs->c[cs->n++] = replicaset_controller_start(mount);
	cs->c[cs->n++] = gc_start(mount);
	cs->c[cs->n++] = deployment_controller_start(mount);
	cs->c[cs->n++] = endpoints_controller_start(mount);
	cs->c[cs->n++] = nodelifecycle_start(mount, cfg->node_grace, cfg->eviction_timeout);
	return cs;
}

void controllers_stop(struct controllers *cs)
{
	for (int i = 0; cs && i < cs->n; i++)
		ctl_request_stop(cs->c[i]);
}

void controllers_free(struct controllers *cs)
{
	if (!cs)
		return;
	for (int i = 0; i < cs->n; i++)
		ctl_stop(cs->c[i]);
	free(cs);
}
