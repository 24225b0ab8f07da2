/*
 * test_kinds.c: the kinds' tables and hooks against manifests written the
 * way people write them for Kubernetes.
 *
 * Each manifest is checked as obj_normalize() checks a whole object:
 * metadata against metadata_fields, the rest (without apiVersion, kind and
 * metadata) against the kind's table, then the kind's hook on the whole
 * object. Valid manifests must pass and gain their defaults; bad ones
 * must fail with a message that names the offending field.
 */
#include "schema.h"
#include "tap.h"

#include <errno.h>

/* Checks doc, a whole object, as the object layer would. */
static int check_object(struct ynode *doc, struct err *e)
{
	const struct kind *k = kind_by_name(y_path_str(doc, "kind"));
	int r = 0;

	if (!k)
		return err_set(e, EINVAL, "kind: unknown");
	struct ynode *av = y_take(doc, "apiVersion");
	struct ynode *kn = y_take(doc, "kind");
	struct ynode *meta = y_take(doc, "metadata");
	if (meta)
		r = schema_check(metadata_fields, meta, "metadata", e);
	if (r == 0)
		r = schema_check(k->fields, doc, "", e);
	y_set(doc, "apiVersion", av);
	y_set(doc, "kind", kn);
	if (meta)
		y_set(doc, "metadata", meta);
	if (r == 0 && k->validate)
		r = k->validate(doc, e);
	return r;
}

/* Parses the one document in text and checks it; *out gets the tree. */
static int check_text(const char *text, struct ynode **out, struct err *e)
{
	struct ynode **docs = NULL;
	size_t n = 0;
	int r = y_parse(text, strlen(text), &docs, &n, e);

	*out = NULL;
	if (r < 0)
		return r;
	for (size_t i = 1; i < n; i++)
		y_free(docs[i]);
	*out = n ? docs[0] : NULL;
	free(docs);
	if (!*out)
		return err_set(e, EINVAL, "no document");
	return check_object(*out, e);
}

/* A valid manifest: returns its checked tree (caller frees), or NULL. */
static struct ynode *accept(const char *what, const char *text)
{
	struct err e = {0};
	struct ynode *doc;
	int r = check_text(text, &doc, &e);

	if (!ok(r == 0, "accepts %s", what)) {
		printf("# error: %s\n", e.msg);
		y_free(doc);
		return NULL;
	}
	return doc;
}

/* A bad manifest: must fail with a message containing want. */
static void reject(const char *what, const char *text, const char *want)
{
	struct err e = {0};
	struct ynode *doc;
	int r = check_text(text, &doc, &e);

	if (!ok(r == -EINVAL && strstr(e.msg, want), "rejects %s", what))
		printf("# returned %d, message \"%s\", wanted \"%s\"\n", r, e.msg, want);
	y_free(doc);
}

/* Follows "a.b[2].c" through maps and lists; NULL when absent. */
static struct ynode *at(struct ynode *n, const char *path)
{
	cleanup_free char *copy = xstrdup(path);
	char *save;

	for (char *seg = strtok_r(copy, ".", &save); seg && n; seg = strtok_r(NULL, ".", &save)) {
		char *br = strchr(seg, '[');
		if (br)
			*br = 0;
		n = y_get(n, seg);
		while (br && n) {
			size_t i = strtoul(br + 1, &br, 10);
			n = n->type == Y_SEQ && i < n->n ? n->v[i] : NULL;
			br = strchr(br, '[');
		}
	}
	return n;
}

static void is_str(struct ynode *doc, const char *path, const char *want)
{
	struct ynode *n = doc ? at(doc, path) : NULL;

	if (!ok(n && n->type == Y_STR && !strcmp(n->str, want), "%s is \"%s\"", path, want))
		printf("# got %s\n", n ? n->str : "nothing");
}

static void is_int(struct ynode *doc, const char *path, long long want)
{
	struct ynode *n = doc ? at(doc, path) : NULL;

	if (!ok(n && n->type == Y_INT && n->i == want, "%s is %lld", path, want))
		printf("# got %s\n", n ? n->str : "nothing");
}

static void is_bool(struct ynode *doc, const char *path, bool want)
{
	struct ynode *n = doc ? at(doc, path) : NULL;

	ok(n && n->type == Y_BOOL && n->i == want, "%s is %s", path, want ? "true" : "false");
}

static void is_absent(struct ynode *doc, const char *path)
{
	ok(doc && !at(doc, path), "%s is absent", path);
}

static void test_lookup(void)
{
	int n = 0;

	for (n = 0; kinds[n]; n++) {
		ok(kind_by_plural(kinds[n]->plural) == kinds[n], "kind_by_plural(%s)",
		   kinds[n]->plural);
		ok(kind_by_name(kinds[n]->name) == kinds[n], "kind_by_name(%s)", kinds[n]->name);
	}
	ok(n == 15, "15 kinds (%d)", n);
	ok(!kind_by_name("Widget") && !kind_by_plural("widgets") && !kind_by_name(NULL),
	   "unknown kinds are NULL");
	ok(!kind_by_name("deployment"), "kind names are case-sensitive, as in manifests");
	ok(!kind_by_name("Namespace")->namespaced && !kind_by_name("Node")->namespaced,
	   "Namespace and Node are cluster-scoped");
	ok(kind_by_name("Pod")->namespaced && kind_by_name("Secret")->namespaced,
	   "Pod and Secret are namespaced");
	ok(kind_by_name("Secret")->secret && !kind_by_name("ConfigMap")->secret,
	   "only Secret is secret");
	ok(kind_by_name("Deployment")->scalable && kind_by_name("ReplicaSet")->scalable &&
		   kind_by_name("ReplicationController")->scalable &&
		   kind_by_name("StatefulSet")->scalable && !kind_by_name("DaemonSet")->scalable &&
		   !kind_by_name("Job")->scalable,
	   "scalable kinds");
	ok(!strcmp(kind_by_name("HorizontalPodAutoscaler")->api_versions[0], "autoscaling/v2") &&
		   !strcmp(kind_by_name("HorizontalPodAutoscaler")->api_versions[1],
			   "autoscaling/v1"),
	   "HPA shows autoscaling/v2 and accepts v1");
	ok(!strcmp(kind_by_plural("deployments")->api_versions[0], "apps/v1") &&
		   !strcmp(kind_by_plural("cronjobs")->api_versions[0], "batch/v1") &&
		   !strcmp(kind_by_plural("services")->api_versions[0], "v1"),
	   "api versions");
}

#define DEPLOYMENT                                                                                 \
	"apiVersion: apps/v1\n"                                                                    \
	"kind: Deployment\n"                                                                       \
	"metadata:\n"                                                                              \
	"  name: web\n"                                                                            \
	"  namespace: default\n"                                                                   \
	"  labels: {app: web}\n"                                                                   \
	"spec:\n"                                                                                  \
	"  selector:\n"                                                                            \
	"    matchLabels:\n"                                                                       \
	"      app: web\n"                                                                         \
	"  template:\n"                                                                            \
	"    metadata:\n"                                                                          \
	"      labels:\n"                                                                          \
	"        app: web\n"                                                                       \
	"        tier: frontend\n"                                                                 \
	"    spec:\n"                                                                              \
	"      containers:\n"                                                                      \
	"      - name: nginx\n"                                                                    \
	"        image: nginx:1.25\n"                                                              \
	"        ports:\n"                                                                         \
	"        - containerPort: 80\n"                                                            \
	"          name: http\n"                                                                   \
	"        resources:\n"                                                                     \
	"          requests: {cpu: 100m, memory: 128Mi}\n"                                         \
	"          limits: {cpu: 1, memory: 256Mi}\n"                                              \
	"        env:\n"                                                                           \
	"        - name: MODE\n"                                                                   \
	"          value: production\n"                                                            \
	"        - name: POD_IP\n"                                                                 \
	"          valueFrom:\n"                                                                   \
	"            fieldRef: {fieldPath: status.podIP}\n"                                        \
	"        - name: DB_PASSWORD\n"                                                            \
	"          valueFrom:\n"                                                                   \
	"            secretKeyRef: {name: db, key: password}\n"                                    \
	"        envFrom:\n"                                                                       \
	"        - configMapRef: {name: web-config}\n"                                             \
	"        livenessProbe:\n"                                                                 \
	"          httpGet: {path: /healthz, port: http}\n"                                        \
	"          initialDelaySeconds: 5\n"                                                       \
	"        readinessProbe:\n"                                                                \
	"          tcpSocket: {port: 80}\n"                                                        \
	"        volumeMounts:\n"                                                                  \
	"        - {name: cache, mountPath: /var/cache/nginx}\n"                                   \
	"        - {name: conf, mountPath: /etc/nginx/conf.d, readOnly: true}\n"                   \
	"      - name: sidecar\n"                                                                  \
	"        image: busybox\n"                                                                 \
	"        command: [sh, -c, 'sleep infinity']\n"                                            \
	"      volumes:\n"                                                                         \
	"      - name: cache\n"                                                                    \
	"        emptyDir: {}\n"                                                                   \
	"      - name: conf\n"                                                                     \
	"        configMap:\n"                                                                     \
	"          name: web-config\n"                                                             \
	"      - name: scratch\n"                                                                  \
	"      nodeSelector: {kubernetes.io/os: linux}\n"                                          \
	"      tolerations:\n"                                                                     \
	"      - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}\n"              \
	"      - {key: spot, operator: Exists}\n"                                                  \
	"      affinity:\n"                                                                        \
	"        nodeAffinity:\n"                                                                  \
	"          requiredDuringSchedulingIgnoredDuringExecution:\n"                              \
	"            nodeSelectorTerms:\n"                                                         \
	"            - matchExpressions:\n"                                                        \
	"              - {key: zone, operator: In, values: [a, b]}\n"                              \
	"          preferredDuringSchedulingIgnoredDuringExecution:\n"                             \
	"          - weight: 10\n"                                                                 \
	"            preference:\n"                                                                \
	"              matchExpressions:\n"                                                        \
	"              - {key: disk, operator: Exists}\n"                                          \
	"        podAntiAffinity:\n"                                                               \
	"          preferredDuringSchedulingIgnoredDuringExecution: []\n"

static void test_deployment(void)
{
	struct ynode *d = accept("a Deployment", DEPLOYMENT);
	const char *c0 = "spec.template.spec.containers[0]";
	char p[128];

	is_int(d, "spec.replicas", 1);
	is_int(d, "spec.revisionHistoryLimit", 10);
	is_int(d, "spec.progressDeadlineSeconds", 600);
	is_str(d, "spec.strategy.type", "RollingUpdate");
	is_str(d, "spec.strategy.rollingUpdate.maxSurge", "25%");
	is_str(d, "spec.strategy.rollingUpdate.maxUnavailable", "25%");
	is_str(d, "spec.template.spec.restartPolicy", "Always");
	is_str(d, "spec.template.spec.dnsPolicy", "ClusterFirst");
	is_str(d, "spec.template.spec.schedulerName", "default-scheduler");
	is_int(d, "spec.template.spec.terminationGracePeriodSeconds", 30);
	snprintf(p, sizeof(p), "%s.imagePullPolicy", c0);
	is_str(d, p, "IfNotPresent");
	is_str(d, "spec.template.spec.containers[1].imagePullPolicy", "Always");
	snprintf(p, sizeof(p), "%s.ports[0].protocol", c0);
	is_str(d, p, "TCP");
	snprintf(p, sizeof(p), "%s.livenessProbe.periodSeconds", c0);
	is_int(d, p, 10);
	snprintf(p, sizeof(p), "%s.livenessProbe.failureThreshold", c0);
	is_int(d, p, 3);
	snprintf(p, sizeof(p), "%s.livenessProbe.httpGet.scheme", c0);
	is_str(d, p, "HTTP");
	snprintf(p, sizeof(p), "%s.terminationMessagePolicy", c0);
	is_str(d, p, "File");
	is_str(d, "spec.template.spec.tolerations[1].operator", "Exists");
	is_str(d, "spec.template.spec.tolerations[0].operator", "Equal");
	ok(d && at(d, "spec.template.spec.volumes[2].emptyDir") &&
		   at(d, "spec.template.spec.volumes[2].emptyDir")->type == Y_MAP,
	   "a volume with no source becomes an emptyDir");
	is_int(d, "spec.template.spec.volumes[1].configMap.defaultMode", 420);
	y_free(d);
}

static void test_pull_policy(void)
{
	static const struct {
		const char *image, *policy;
	} cases[] = {
		{"nginx", "Always"},
		{"nginx:latest", "Always"},
		{"nginx:1.25", "IfNotPresent"},
		{"registry.local:5000/team/app", "Always"},
		{"registry.local:5000/team/app:v2", "IfNotPresent"},
		{"nginx@sha256:0123456789abcdef", "IfNotPresent"},
		{"nginx:latest@sha256:0123456789abcdef", "Always"},
		{"nginx:latest-alpine", "IfNotPresent"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cleanup_free char *text =
			xasprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
				  "spec:\n  containers:\n  - name: c\n    image: "
				  "\"%s\"\n",
				  cases[i].image);
		struct ynode *d = accept(cases[i].image, text);
		is_str(d, "spec.containers[0].imagePullPolicy", cases[i].policy);
		y_free(d);
	}
	struct ynode *d =
		accept("a Pod that sets its pull policy",
		       "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
		       "  containers:\n  - {name: c, image: nginx, imagePullPolicy: Never}\n");
	is_str(d, "spec.containers[0].imagePullPolicy", "Never");
	y_free(d);
}

static void test_workloads(void)
{
	struct ynode *d;

	d = accept("a ReplicaSet",
		   "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\nspec:\n"
		   "  replicas: 3\n"
		   "  selector:\n    matchExpressions:\n"
		   "    - {key: tier, operator: In, values: [frontend, web]}\n"
		   "  template:\n    metadata: {labels: {tier: frontend}}\n"
		   "    spec:\n      containers: [{name: php, image: 'php:8-apache'}]\n");
	is_int(d, "spec.replicas", 3);
	y_free(d);

	d = accept("a ReplicationController without a selector",
		   "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec:\n"
		   "  template:\n    metadata:\n      labels: {app: nginx}\n"
		   "    spec:\n      containers:\n      - {name: nginx, image: nginx}\n");
	is_str(d, "spec.selector.app", "nginx");
	is_str(d, "metadata.labels.app", "nginx");
	is_int(d, "spec.replicas", 1);
	y_free(d);

	d = accept("a DaemonSet",
		   "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: fluentd\n"
		   "  namespace: kube-system\nspec:\n"
		   "  selector: {matchLabels: {name: fluentd}}\n"
		   "  template:\n    metadata: {labels: {name: fluentd}}\n    spec:\n"
		   "      tolerations:\n      - {key: node-role.kubernetes.io/control-plane, "
		   "operator: Exists, effect: NoSchedule}\n"
		   "      containers:\n      - name: fluentd\n        image: "
		   "quay.io/fluentd_elasticsearch/fluentd:v2.5.2\n"
		   "        volumeMounts: [{name: varlog, mountPath: /var/log}]\n"
		   "      volumes:\n      - name: varlog\n        hostPath: {path: /var/log}\n");
	is_str(d, "spec.updateStrategy.type", "RollingUpdate");
	is_int(d, "spec.updateStrategy.rollingUpdate.maxUnavailable", 1);
	is_int(d, "spec.updateStrategy.rollingUpdate.maxSurge", 0);
	y_free(d);

	d = accept("a StatefulSet",
		   "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec:\n"
		   "  serviceName: nginx\n  replicas: 2\n"
		   "  selector: {matchLabels: {app: nginx}}\n"
		   "  template:\n    metadata: {labels: {app: nginx}}\n    spec:\n"
		   "      terminationGracePeriodSeconds: 10\n"
		   "      containers:\n      - name: nginx\n        image: "
		   "registry.k8s.io/nginx-slim:0.8\n"
		   "        ports: [{containerPort: 80, name: web}]\n"
		   "        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]\n"
		   "      volumes: [{name: www, persistentVolumeClaim: {claimName: www}}]\n"
		   "  volumeClaimTemplates:\n  - metadata: {name: www}\n"
		   "    spec:\n      accessModes: [ReadWriteOnce]\n"
		   "      resources: {requests: {storage: 1Gi}}\n");
	is_str(d, "spec.podManagementPolicy", "OrderedReady");
	is_int(d, "spec.updateStrategy.rollingUpdate.partition", 0);
	is_int(d, "spec.template.spec.terminationGracePeriodSeconds", 10);
	y_free(d);

	d = accept("a Job", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: pi}\nspec:\n"
			    "  template:\n    spec:\n"
			    "      containers:\n      - name: pi\n        image: perl:5.34.0\n"
			    "        command: [perl, -Mbignum=bpi, -wle, print bpi(2000)]\n"
			    "      restartPolicy: Never\n");
	is_int(d, "spec.backoffLimit", 6);
	is_int(d, "spec.completions", 1);
	is_int(d, "spec.parallelism", 1);
	is_str(d, "spec.completionMode", "NonIndexed");
	is_bool(d, "spec.suspend", false);
	y_free(d);

	d = accept("a Job with parallelism only",
		   "apiVersion: batch/v1\nkind: Job\nmetadata: {name: q}\nspec:\n"
		   "  parallelism: 4\n  template:\n    spec:\n      restartPolicy: OnFailure\n"
		   "      containers: [{name: w, image: worker}]\n");
	is_int(d, "spec.parallelism", 4);
	is_absent(d, "spec.completions");
	y_free(d);

	d = accept(
		"a CronJob",
		"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: hello}\nspec:\n"
		"  schedule: \"*/5 * * * *\"\n"
		"  jobTemplate:\n    spec:\n      template:\n        spec:\n"
		"          containers:\n          - name: hello\n            image: busybox:1.28\n"
		"            command: [/bin/sh, -c, date; echo Hello]\n"
		"          restartPolicy: OnFailure\n");
	is_str(d, "spec.concurrencyPolicy", "Allow");
	is_bool(d, "spec.suspend", false);
	is_int(d, "spec.successfulJobsHistoryLimit", 3);
	is_int(d, "spec.failedJobsHistoryLimit", 1);
	is_int(d, "spec.jobTemplate.spec.backoffLimit", 6);
	is_str(d, "spec.jobTemplate.spec.template.spec.containers[0].imagePullPolicy",
	       "IfNotPresent");
	y_free(d);

	d = accept("an autoscaling/v2 HPA",
		   "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
		   "metadata: {name: web}\nspec:\n"
		   "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n"
		   "  maxReplicas: 10\n  metrics:\n  - type: Resource\n    resource:\n"
		   "      name: cpu\n      target: {type: Utilization, averageUtilization: 50}\n");
	is_int(d, "spec.minReplicas", 1);
	y_free(d);
	y_free(accept(
		"an autoscaling/v1 HPA",
		"apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\n"
		"metadata: {name: web}\nspec:\n"
		"  scaleTargetRef: {kind: Deployment, name: web}\n"
		"  minReplicas: 2\n  maxReplicas: 5\n  targetCPUUtilizationPercentage: 80\n"));
}

static void test_core(void)
{
	struct ynode *d;

	y_free(accept("a Namespace", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n"
				     "  labels: {team: a}\n"));
	y_free(accept("a Node", "apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\nspec:\n"
				"  podCIDR: 10.244.1.0/24\n  podCIDRs: [10.244.1.0/24]\n"
				"  taints:\n  - {key: dedicated, value: gpu, effect: NoSchedule}\n"
				"status:\n  capacity: {cpu: '4'}\n"));
	y_free(accept("a Pod with probes and init containers",
		      "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n"
		      "  initContainers:\n  - {name: init, image: busybox, command: ['true']}\n"
		      "  containers:\n  - name: app\n    image: app:1\n"
		      "    startupProbe: {exec: {command: [cat, /tmp/ok]}, failureThreshold: 30}\n"
		      "    livenessProbe: {grpc: {port: 9090}}\n"
		      "    securityContext: {runAsNonRoot: true}\n"
		      "  securityContext: {fsGroup: 2000}\n"
		      "  imagePullSecrets: [{name: regcred}]\n"));

	d = accept("a Service", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
				"  selector: {app: web}\n  ports:\n  - port: 80\n");
	is_int(d, "spec.ports[0].targetPort", 80);
	is_str(d, "spec.ports[0].protocol", "TCP");
	is_str(d, "spec.type", "ClusterIP");
	is_str(d, "spec.sessionAffinity", "None");
	is_str(d, "spec.internalTrafficPolicy", "Cluster");
	y_free(d);

	d = accept("a NodePort Service with two named ports",
		   "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
		   "  type: NodePort\n  selector: {app: web}\n  ports:\n"
		   "  - {name: http, port: 80, targetPort: http, nodePort: 30080}\n"
		   "  - {name: metrics, port: 9100, protocol: TCP}\n");
	is_str(d, "spec.ports[0].targetPort", "http");
	is_int(d, "spec.ports[1].targetPort", 9100);
	is_str(d, "spec.externalTrafficPolicy", "Cluster");
	y_free(d);
	y_free(accept("a headless Service without ports",
		      "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n"
		      "  clusterIP: None\n  selector: {app: db}\n"));
	y_free(accept("an ExternalName Service",
		      "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec:\n"
		      "  type: ExternalName\n  externalName: db.example.com\n"));

	d = accept("Endpoints", "apiVersion: v1\nkind: Endpoints\nmetadata: {name: ext}\nsubsets:\n"
				"- addresses: [{ip: 10.0.0.5}, {ip: 10.0.0.6, nodeName: n1}]\n"
				"  ports: [{port: 5432, name: pg}]\n");
	is_str(d, "subsets[0].ports[0].protocol", "TCP");
	y_free(d);

	y_free(accept("a ConfigMap", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"
				     "data:\n  game.properties: |\n    lives=3\n"
				     "  UI_COLOR: blue\n  .hidden: 'yes'\n"
				     "binaryData:\n  logo.png: iVBORw0KGgo=\n"));

	d = accept("a Secret with stringData",
		   "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
		   "data:\n  username: YWRtaW4=\n  password: b2xk\n"
		   "stringData:\n  password: s3cret\n  url: 'postgres://db:5432'\n");
	is_str(d, "type", "Opaque");
	is_str(d, "data.username", "YWRtaW4=");
	is_str(d, "data.password", "czNjcmV0");
	is_str(d, "data.url", "cG9zdGdyZXM6Ly9kYjo1NDMy");
	is_absent(d, "stringData");
	y_free(d);
	y_free(accept("a TLS Secret", "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\n"
				      "type: kubernetes.io/tls\n"
				      "data: {tls.crt: Y2VydA==, tls.key: a2V5}\n"));
}

static void test_cron(void)
{
	static const char *const good[] = {
		"0 0 * * *",  "*/15 9-17 * * mon-fri", "0 0 1 JAN,jul ?",
		"30 2 * * 0", "0-30/10 * 1-15 * 1-5",  "@hourly",
		"@daily",     "@every 1h30m",	       "  5 4 * * sun ",
	};
	static const char *const bad[] = {
		"* * * *",    "* * * * * *", "61 * * * *",  "* 24 * * *",   "* * 0 * *",
		"* * * 13 *", "* * * * 7",   "*/0 * * * *", "5-1 * * * *",  "@fortnightly",
		"@every 5x",  "? * * * *",   "a b c d e",   "1,,2 * * * *", "TZ=UTC 0 0 * * *",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		cleanup_free char *t = xasprintf(
			"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n"
			"  schedule: '%s'\n  jobTemplate:\n    spec:\n      template:\n"
			"        spec:\n          restartPolicy: Never\n"
			"          containers: [{name: c, image: c}]\n",
			good[i]);
		cleanup_free char *what = xasprintf("the schedule \"%s\"", good[i]);
		y_free(accept(what, t));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cleanup_free char *t = xasprintf(
			"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n"
			"  schedule: '%s'\n  jobTemplate:\n    spec:\n      template:\n"
			"        spec:\n          restartPolicy: Never\n"
			"          containers: [{name: c, image: c}]\n",
			bad[i]);
		cleanup_free char *what = xasprintf("the schedule \"%s\"", bad[i]);
		reject(what, t, "spec.schedule: ");
	}
}

#define POD_HEAD "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
#define DEPLOY_HEAD                                                                                \
	"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"                      \
	"  selector: {matchLabels: {app: web}}\n"

static void test_rejects(void)
{
	reject("an unknown container field", POD_HEAD "  containers:\n  - {name: c, imagee: x}\n",
	       "spec.containers[0].imagee: unknown field");
	reject("an unknown top-level field",
	       POD_HEAD "  containers: [{name: c, image: x}]\n"
			"extra: 1\n",
	       "extra: unknown field");
	reject("replicas as a word",
	       DEPLOY_HEAD "  replicas: three\n"
			   "  template:\n    metadata: {labels: {app: web}}\n"
			   "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.replicas: must be an integer");
	reject("negative replicas",
	       DEPLOY_HEAD "  replicas: -1\n"
			   "  template:\n    metadata: {labels: {app: web}}\n"
			   "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.replicas: ");
	reject("a container without an image",
	       DEPLOY_HEAD "  template:\n    metadata: {labels: {app: web}}\n"
			   "    spec:\n      containers:\n      - name: web\n",
	       "spec.template.spec.containers[0].image: required");
	reject("a template without a spec",
	       DEPLOY_HEAD "  template:\n    metadata: "
			   "{labels: {app: web}}\n",
	       "spec.template.spec: required");
	reject("a bad restartPolicy",
	       POD_HEAD "  restartPolicy: Sometimes\n"
			"  containers: [{name: c, image: x}]\n",
	       "spec.restartPolicy: unsupported value \"Sometimes\"");
	reject("a selector that does not match",
	       DEPLOY_HEAD "  template:\n    metadata: {labels: {app: api}}\n"
			   "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.selector: does not match template labels");
	reject("a template without labels",
	       DEPLOY_HEAD "  template:\n"
			   "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.selector: does not match template labels");
	reject("an empty selector",
	       "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n"
	       "  selector: {}\n  template:\n    metadata: {labels: {app: web}}\n"
	       "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.selector: must not be empty");
	reject("a Deployment without a selector",
	       "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n"
	       "  template:\n    metadata: {labels: {app: web}}\n"
	       "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.selector: required");
	reject("a Deployment template with restartPolicy Never",
	       DEPLOY_HEAD "  template:\n    metadata: {labels: {app: web}}\n"
			   "    spec: {restartPolicy: Never, containers: [{name: c, image: x}]}\n",
	       "spec.template.spec.restartPolicy: must be Always");
	reject("a StatefulSet whose selector does not match",
	       "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n"
	       "  selector: {matchExpressions: [{key: app, operator: In, values: [db]}]}\n"
	       "  template:\n    metadata: {labels: {app: web}}\n"
	       "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.selector: does not match template labels");
	reject("a ReplicationController whose selector does not match",
	       "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\nspec:\n"
	       "  selector: {app: db}\n  template:\n    metadata: {labels: {app: web}}\n"
	       "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.selector: does not match template labels");
	reject("bad base64 in Secret data",
	       "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  password: not "
	       "base64!\n",
	       "data[password]: illegal base64");
	reject("a TLS Secret without its key",
	       "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\n"
	       "stringData: {tls.crt: cert}\n",
	       "data[tls.key]: required");
	reject("a bad ConfigMap key",
	       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
	       "data:\n  'bad key': x\n",
	       "data[bad key]: ");
	reject("a ConfigMap value that is a number",
	       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  port: 8080\n",
	       "data[port]: must be a string");
	reject("a Job template without restartPolicy",
	       "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n"
	       "  template:\n    spec:\n      containers: [{name: c, image: x}]\n",
	       "spec.template.spec.restartPolicy: must be OnFailure or Never");
	reject("a Job template with restartPolicy Always",
	       "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n"
	       "  template:\n    spec:\n      restartPolicy: Always\n"
	       "      containers: [{name: c, image: x}]\n",
	       "spec.template.spec.restartPolicy: must be OnFailure or Never");
	reject("an Indexed Job without completions",
	       "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n"
	       "  completionMode: Indexed\n  parallelism: 3\n"
	       "  template:\n    spec:\n      restartPolicy: Never\n"
	       "      containers: [{name: c, image: x}]\n",
	       "spec.completions: required");
	reject("a CronJob's Job template without restartPolicy",
	       "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n"
	       "  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n"
	       "        spec: {containers: [{name: c, image: x}]}\n",
	       "spec.jobTemplate.spec.template.spec.restartPolicy: must be OnFailure or Never");
	reject("a CronJob without a schedule",
	       "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n"
	       "  jobTemplate:\n    spec:\n      template:\n"
	       "        spec: {restartPolicy: Never, containers: [{name: c, image: x}]}\n",
	       "spec.schedule: required");
	reject("a Service with unnamed ports",
	       "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
	       "  ports:\n  - port: 80\n  - port: 443\n",
	       "spec.ports[0].name: required when the service has more than one port");
	reject("a Service with the same port twice",
	       "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
	       "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 80}\n",
	       "spec.ports[1]: duplicate port 80/TCP");
	reject("a Service with a bad protocol",
	       "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
	       "  ports: [{port: 80, protocol: HTTP}]\n",
	       "spec.ports[0].protocol: unsupported value \"HTTP\"");
	reject("a ClusterIP Service with a nodePort",
	       "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
	       "  ports: [{port: 80, nodePort: 30000}]\n",
	       "spec.ports[0].nodePort: may not be set when type is ClusterIP");
	reject("a Service without ports",
	       "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {a: b}\n",
	       "spec.ports: required");
	reject("an ExternalName Service without a name",
	       "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: ExternalName\n",
	       "spec.externalName: required");
	reject("a port out of range",
	       POD_HEAD "  containers:\n  - name: c\n    image: x\n"
			"    ports: [{containerPort: 70000}]\n",
	       "spec.containers[0].ports[0].containerPort: must be a port number");
	reject("a container name with capitals", POD_HEAD "  containers: [{name: Web, image: x}]\n",
	       "spec.containers[0].name: ");
	reject("two containers of one name",
	       POD_HEAD "  containers: [{name: c, image: x}, {name: c, image: y}]\n",
	       "spec.containers[1].name: duplicate name \"c\"");
	reject("an init container named as a container",
	       POD_HEAD "  initContainers: [{name: c, image: x}]\n"
			"  containers: [{name: c, image: y}]\n",
	       "spec.containers[0].name: duplicate name \"c\"");
	reject("no containers", POD_HEAD "  containers: []\n",
	       "spec.containers: must have at least one container");
	reject("a mount of a missing volume",
	       POD_HEAD "  containers:\n  - name: c\n    image: x\n"
			"    volumeMounts: [{name: data, mountPath: /data}]\n",
	       "spec.containers[0].volumeMounts[0].name: no volume named \"data\"");
	reject("two volumes of one name",
	       POD_HEAD
	       "  containers: [{name: c, image: x}]\n"
	       "  volumes: [{name: v, emptyDir: {}}, {name: v, secret: {secretName: s}}]\n",
	       "spec.volumes[1].name: duplicate name \"v\"");
	reject("a volume with two sources",
	       POD_HEAD "  containers: [{name: c, image: x}]\n"
			"  volumes:\n  - name: v\n    emptyDir: {}\n    hostPath: {path: /tmp}\n",
	       "spec.volumes[0]: may have only one volume source");
	reject("a probe with two handlers",
	       POD_HEAD "  containers:\n  - name: c\n    image: x\n    livenessProbe:\n"
			"      exec: {command: ['true']}\n      tcpSocket: {port: 80}\n",
	       "spec.containers[0].livenessProbe: must set exactly one of");
	reject("an httpGet probe without a port",
	       POD_HEAD "  containers:\n  - name: c\n    image: x\n"
			"    readinessProbe: {httpGet: {path: /}}\n",
	       "spec.containers[0].readinessProbe.httpGet.port: required");
	reject("an env entry without a name",
	       POD_HEAD "  containers:\n  - name: c\n    image: x\n    env: [{value: x}]\n",
	       "spec.containers[0].env[0].name: required");
	reject("an env entry with value and valueFrom",
	       POD_HEAD
	       "  containers:\n  - name: c\n    image: x\n    env:\n"
	       "    - {name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n",
	       "spec.containers[0].env[0].valueFrom: may not be set together with value");
	reject("a bad quantity",
	       POD_HEAD "  containers:\n  - name: c\n    image: x\n"
			"    resources: {limits: {cpu: lots}}\n",
	       "spec.containers[0].resources.limits[cpu]: ");
	reject("a bad imagePullPolicy",
	       POD_HEAD "  containers: [{name: c, image: x, imagePullPolicy: Sometimes}]\n",
	       "spec.containers[0].imagePullPolicy: unsupported value");
	reject("a bad toleration operator",
	       POD_HEAD "  containers: [{name: c, image: x}]\n"
			"  tolerations: [{key: a, operator: Maybe}]\n",
	       "spec.tolerations[0].operator: unsupported value");
	reject("a bad node affinity operator",
	       POD_HEAD "  containers: [{name: c, image: x}]\n  affinity:\n    nodeAffinity:\n"
			"      requiredDuringSchedulingIgnoredDuringExecution:\n"
			"        nodeSelectorTerms:\n        - matchExpressions:\n"
			"          - {key: zone, operator: Near}\n",
	       "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
	       "nodeSelectorTerms[0].matchExpressions[0].operator: unsupported value");
	reject("a bad label value",
	       "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n"
	       "  labels: {app: 'not valid!'}\n",
	       "metadata.labels[app]: ");
	reject("a bad taint effect",
	       "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec:\n"
	       "  taints: [{key: a, effect: Sometimes}]\n",
	       "spec.taints[0].effect: unsupported value");
	reject("a Recreate strategy with rollingUpdate",
	       DEPLOY_HEAD "  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n"
			   "  template:\n    metadata: {labels: {app: web}}\n"
			   "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.strategy.rollingUpdate: may not be set when type is Recreate");
	reject("a rolling update that cannot progress",
	       DEPLOY_HEAD "  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: '0%'}}\n"
			   "  template:\n    metadata: {labels: {app: web}}\n"
			   "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.strategy.rollingUpdate.maxUnavailable: may not be 0");
	reject("a bad maxSurge",
	       DEPLOY_HEAD "  strategy: {rollingUpdate: {maxSurge: lots}}\n"
			   "  template:\n    metadata: {labels: {app: web}}\n"
			   "    spec: {containers: [{name: c, image: x}]}\n",
	       "spec.strategy.rollingUpdate.maxSurge: must be an integer or a percentage");
	reject("an HPA whose max is below its min",
	       "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
	       "spec:\n  scaleTargetRef: {kind: Deployment, name: web}\n"
	       "  minReplicas: 5\n  maxReplicas: 2\n",
	       "spec.maxReplicas: must be greater than or equal to minReplicas");
	reject("an HPA without a target name",
	       "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
	       "spec:\n  scaleTargetRef: {kind: Deployment}\n  maxReplicas: 2\n",
	       "spec.scaleTargetRef.name: required");
	reject("metrics in an autoscaling/v1 HPA",
	       "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
	       "spec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 2\n"
	       "  metrics: []\n",
	       "spec.metrics: not a field of autoscaling/v1");
	reject("a bad ownerReference",
	       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
	       "  ownerReferences: [{kind: Deployment, name: d}]\n",
	       "metadata.ownerReferences[0].apiVersion: required");
}

int main(void)
{
	test_lookup();
	test_deployment();
	test_pull_policy();
	test_workloads();
	test_core();
	test_cron();
	test_rejects();
	return done_testing();
}
