/*
 * probe.c: one run of a container probe, as a kubelet makes it.
 *
 * exec runs the command in the container (crun exec) and succeeds on exit
 * code 0; tcpSocket succeeds when a connection to the pod's address opens;
 * httpGet sends a GET and succeeds on a status from 200 to 399. Each is
 * bounded by timeoutSeconds. A named port is looked up in the container's
 * ports.
 */
#define _GNU_SOURCE
#include "runtime-crun-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int port_of(const struct crun_ctr *c, const struct ynode *port)
{
	const struct ynode *ports = y_get(c->spec, "ports");

	if (port && port->type == Y_INT)
		return (int)port->i;
	for (size_t i = 0; port && port->str && ports && ports->type == Y_SEQ && i < ports->n;
	     i++) {
		const struct ynode *cp = y_get(ports->v[i], "containerPort");
		if (y_path_str(ports->v[i], "name") &&
		    !strcmp(y_path_str(ports->v[i], "name"), port->str) && cp && cp->type == Y_INT)
			return (int)cp->i;
	}
	return port && port->str ? atoi(port->str) : 0;
}

/* A connected socket to host:port within timeout_ms, or -1. */
static int dial(const char *host, int port, int timeout_ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, err = 0;
	socklen_t len = sizeof(err);

	if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		goto fail;
	struct pollfd p = {fd, POLLOUT, 0};
	if (poll(&p, 1, timeout_ms) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
	    err)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static int http_get(const char *host, int port, const char *path, int timeout_ms)
{
	int fd = dial(host, port, timeout_ms);
	char buf[512];
	size_t got = 0;
	int code = 0;

	if (fd < 0)
		return 0;
	cleanup_free char *req = xasprintf("GET %s HTTP/1.1\r\nHost: %s:%d\r\n"
					   "User-Agent: kube-probe/clusterfs\r\nAccept: */*\r\n"
					   "Connection: close\r\n\r\n",
					   path && *path ? path : "/", host, port);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		goto out;
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	sscanf(buf, "HTTP/%*s %d", &code);
out:
	close(fd);
	return code >= 200 && code < 400;
}

int probe_run(struct crun_pod *p, struct crun_ctr *c, const struct ynode *spec)
{
	const struct ynode *t = y_get(spec, "timeoutSeconds"), *h;
	int timeout_ms = (t && t->type == Y_INT && t->i > 0 ? (int)t->i : 1) * 1000;

	if ((h = y_get(spec, "exec"))) {
		const struct ynode *cmd = y_get(h, "command");
		const char *argv[64];
		size_t n = 0;
		struct err e = {0};
		for (size_t i = 0; cmd && cmd->type == Y_SEQ && i < cmd->n && n < 63; i++)
			if (cmd->v[i]->str)
				argv[n++] = cmd->v[i]->str;
		argv[n] = NULL;
		return n && ctr_exec(&p->rt->env, c->id, argv, timeout_ms, &e) == 0;
	}
	if ((h = y_get(spec, "tcpSocket"))) {
		int fd = dial(y_path_str(h, "host") ? y_path_str(h, "host") : p->ip,
			      port_of(c, y_get(h, "port")), timeout_ms);
		if (fd >= 0)
			close(fd);
		return fd >= 0;
	}
	if ((h = y_get(spec, "httpGet")))
		return http_get(y_path_str(h, "host") ? y_path_str(h, "host") : p->ip,
				port_of(c, y_get(h, "port")), y_path_str(h, "path"), timeout_ms);
	return 1;
}
