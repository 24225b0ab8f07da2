/*
 * oci.c: builds config.json as a document tree.
 */
#include "oci.h"

static struct ynode *strs(const char *const *v)
{
	struct ynode *seq = y_seq();
	for (; v && *v; v++)
		y_push(seq, y_str(*v));
	return seq;
}

static void kernel_mount(struct ynode *list, const char *dest, const char *type, const char *src,
			 const char *const *opts)
{
	struct ynode *m = y_map();
	y_set(m, "destination", y_str(dest));
	y_set(m, "type", y_str(type));
	y_set(m, "source", y_str(src));
	y_set(m, "options", strs(opts));
	y_push(list, m);
}

static struct ynode *mounts(const struct oci_spec *s)
{
	static const char *const proc[] = {"nosuid", "noexec", "nodev", NULL};
	static const char *const dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k", NULL};
	static const char *const pts[] = {"nosuid",	   "noexec",	"newinstance",
					  "ptmxmode=0666", "mode=0620", NULL};
	static const char *const shm[] = {"nosuid",    "noexec",      "nodev",
					  "mode=1777", "size=65536k", NULL};
	static const char *const sys[] = {"nosuid", "noexec", "nodev", "ro", NULL};
	static const char *const rw[] = {"rbind", "rprivate", NULL};
	static const char *const ro[] = {"rbind", "rprivate", "ro", NULL};
	struct ynode *list = y_seq();

	kernel_mount(list, "/proc", "proc", "proc", proc);
	kernel_mount(list, "/dev", "tmpfs", "tmpfs", dev);
	kernel_mount(list, "/dev/pts", "devpts", "devpts", pts);
	kernel_mount(list, "/dev/shm", "tmpfs", "shm", shm);
	kernel_mount(list, "/dev/mqueue", "mqueue", "mqueue", proc);
	kernel_mount(list, "/sys", "sysfs", "sysfs", sys);
	for (size_t i = 0; i < s->nmounts; i++)
		kernel_mount(list, s->mounts[i].dest, "bind", s->mounts[i].src,
			     s->mounts[i].ro ? ro : rw);
	return list;
}

static struct ynode *capabilities(void)
{
	static const char *const caps[] = {"CAP_CHOWN",
					   "CAP_DAC_OVERRIDE",
					   "CAP_FSETID",
					   "CAP_FOWNER",
					   "CAP_MKNOD",
					   "CAP_NET_RAW",
					   "CAP_SETGID",
					   "CAP_SETUID",
					   "CAP_SETFCAP",
					   "CAP_SETPCAP",
					   "CAP_NET_BIND_SERVICE",
					   "CAP_SYS_CHROOT",
					   "CAP_KILL",
					   "CAP_AUDIT_WRITE",
					   NULL};
	struct ynode *c = y_map();
	y_set(c, "bounding", strs(caps));
	y_set(c, "effective", strs(caps));
	y_set(c, "permitted", strs(caps));
	return c;
}

static struct ynode *process(const struct oci_spec *s)
{
	struct ynode *p = y_map(), *user = y_map();

	y_set(p, "terminal", y_bool(false));
	y_set(user, "uid", y_int(s->uid));
	y_set(user, "gid", y_int(s->gid));
	y_set(p, "user", user);
	y_set(p, "args", strs(s->args));
	y_set(p, "env", strs(s->env));
	y_set(p, "cwd", y_str(s->cwd && *s->cwd ? s->cwd : "/"));
	y_set(p, "capabilities", capabilities());
	y_set(p, "noNewPrivileges", y_bool(false));
	return p;
}

static struct ynode *resources(const struct oci_spec *s)
{
	struct ynode *r = y_map(), *dev = y_map(), *devs = y_seq();

	y_set(dev, "allow", y_bool(false));
	y_set(dev, "access", y_str("rwm"));
	y_push(devs, dev);
	y_set(r, "devices", devs);
	if (s->memory > 0) {
		struct ynode *m = y_map();
		y_set(m, "limit", y_int(s->memory));
		y_set(m, "swap", y_int(s->memory));
		y_set(r, "memory", m);
	}
	struct ynode *cpu = y_map();
	if (s->cpu_millis > 0) {
		y_set(cpu, "period", y_int(100000));
		y_set(cpu, "quota", y_int(s->cpu_millis * 100));
	}
	/* Kubernetes' shares: 1024 per CPU requested, at least 2. */
	int64_t shares = s->cpu_request_millis * 1024 / 1000;
	y_set(cpu, "shares", y_int(shares < 2 ? 2 : shares));
	y_set(r, "cpu", cpu);
	if (s->pids > 0) {
		struct ynode *p = y_map();
		y_set(p, "limit", y_int(s->pids));
		y_set(r, "pids", p);
	}
	return r;
}

static struct ynode *namespaces(const struct oci_spec *s)
{
	static const char *const own[] = {"pid", "ipc", "mount", NULL};
	struct ynode *list = y_seq();

	for (const char *const *t = own; *t; t++) {
		struct ynode *ns = y_map();
		y_set(ns, "type", y_str(*t));
		y_push(list, ns);
	}
	if (s->hostname) {
		struct ynode *uts = y_map();
		y_set(uts, "type", y_str("uts"));
		y_push(list, uts);
	}
	if (s->netns) {
		struct ynode *net = y_map();
		y_set(net, "type", y_str("network"));
		y_set(net, "path", y_str(s->netns));
		y_push(list, net);
	}
	return list;
}

struct ynode *oci_config(const struct oci_spec *s)
{
	static const char *const masked[] = {"/proc/acpi",	  "/proc/kcore",
					     "/proc/keys",	  "/proc/latency_stats",
					     "/proc/timer_list",  "/proc/timer_stats",
					     "/proc/sched_debug", "/proc/scsi",
					     "/sys/firmware",	  NULL};
	static const char *const readonly[] = {
		"/proc/asound", "/proc/bus",	       "/proc/fs", "/proc/irq",
		"/proc/sys",	"/proc/sysrq-trigger", NULL};
	struct ynode *c = y_map(), *root = y_map(), *lx = y_map();

	y_set(c, "ociVersion", y_str("1.0.2"));
	y_set(c, "process", process(s));
	y_set(root, "path", y_str("rootfs"));
	y_set(c, "root", root);
	if (s->hostname)
		y_set(c, "hostname", y_str(s->hostname));
	y_set(c, "mounts", mounts(s));
	y_set(lx, "cgroupsPath", y_str(s->cgroup));
	y_set(lx, "resources", resources(s));
	y_set(lx, "namespaces", namespaces(s));
	y_set(lx, "maskedPaths", strs(masked));
	y_set(lx, "readonlyPaths", strs(readonly));
	y_set(c, "linux", lx);
	return c;
}
