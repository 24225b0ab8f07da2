/*
 * kinds-workloads.c: the kinds that run pods from a template (Deployment,
 * ReplicaSet, ReplicationController, DaemonSet, StatefulSet, Job,
 * CronJob) and the HorizontalPodAutoscaler that scales them.
 *
 * The tables say each spec's fields; the hooks then complete what depends
 * on other fields (an update strategy's rolling bounds, a Job's
 * completions, a ReplicationController's selector taken from its
 * template's labels) and check what crosses fields: a selector must
 * select the pods its template makes, and the template's restartPolicy
 * must suit the owner (Always for a controller that keeps pods running,
 * OnFailure or Never for a Job).
 */
#include "kinds-internal.h"
#include "selector.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>

static const char *const restart_always[] = {"Always", NULL};
static const char *const restart_job[] = {"OnFailure", "Never", NULL};

static const struct field label_req_fields[] = {
	FSTR("key", .flags = F_REQUIRED),
	FSTR("operator", .flags = F_REQUIRED, ENUM("In", "NotIn", "Exists", "DoesNotExist")),
	FSTRLIST("values"),
	{0},
};

static const struct field label_selector_fields[] = {
	FSTRMAP("matchLabels", .flags = F_LABELS),
	FLIST("matchExpressions", label_req_fields),
	{0},
};

/* The selector in spec must be non-empty and select the template's pods. */
static int check_selector(const struct ynode *spec, const char *path, struct err *e)
{
	cleanup_free char *sp = xasprintf("%s.selector", path);
	const struct ynode *labels = y_path(spec, "template.metadata.labels");
	const struct ynode *doc = y_get(spec, "selector");
	struct selector *s = NULL;
	int r;

	if (!doc)
		return err_set(e, EINVAL, "%s: required", sp);
	if ((r = sel_from_doc(doc, sp, &s, e)) < 0)
		return r;
	if (sel_empty(s))
		r = err_set(e, EINVAL, "%s: must not be empty", sp);
	else if (!sel_matches(s, labels))
		r = err_set(e, EINVAL, "%s: does not match template labels", sp);
	sel_free(s);
	return r;
}

/* A Deployment, ReplicaSet, DaemonSet or StatefulSet: pods kept running. */
static int check_controller(struct ynode *spec, struct err *e)
{
	int r;

	if (!spec || spec->type != Y_MAP)
		return err_set(e, EINVAL, "spec: required");
	if ((r = kind_check_template(y_get(spec, "template"), "spec.template", restart_always, e)))
		return r;
	return check_selector(spec, "spec", e);
}

/*
 * A rolling update's bound: a count, or a percentage of the replicas
 * ("25%"). Sets *zero when it allows nothing.
 */
static int check_bound(const struct ynode *n, const char *path, bool max100, bool *zero,
		       struct err *e)
{
	char *end;

	*zero = false;
	if (!n)
		return 0;
	if (n->type == Y_INT) {
		if (n->i < 0)
			return err_set(e, EINVAL, "%s: must be greater than or equal to 0", path);
		*zero = n->i == 0;
		return 0;
	}
	long pct = strtol(n->str, &end, 10);
	if (!isdigit((unsigned char)n->str[0]) || strcmp(end, "%"))
		return err_set(e, EINVAL,
			       "%s: must be an integer or a percentage such as 25%%, "
			       "not \"%s\"",
			       path, n->str);
	if (max100 && pct > 100)
		return err_set(e, EINVAL, "%s: must not be greater than 100%%", path);
	*zero = pct == 0;
	return 0;
}

/* maxSurge and maxUnavailable at path (Deployment and DaemonSet). */
static int check_rolling(const struct ynode *ru, const char *path, struct err *e)
{
	cleanup_free char *surge = xasprintf("%s.maxSurge", path);
	cleanup_free char *unavail = xasprintf("%s.maxUnavailable", path);
	bool surge0, unavail0;
	int r;

	if ((r = check_bound(y_get(ru, "maxSurge"), surge, false, &surge0, e)) ||
	    (r = check_bound(y_get(ru, "maxUnavailable"), unavail, true, &unavail0, e)))
		return r;
	if (surge0 && unavail0)
		return err_set(e, EINVAL, "%s: may not be 0 when maxSurge is 0", unavail);
	return 0;
}

/*
 * Fills spec.KEY (an update strategy) with type RollingUpdate when absent,
 * and returns its rollingUpdate map when the type is RollingUpdate (created
 * if absent), else NULL. A rollingUpdate under another type is an error.
 */
static int strategy_rolling(struct ynode *spec, const char *key, struct ynode **ru, struct err *e)
{
	struct ynode *st = y_submap(spec, key);
	const char *type = y_path_str(st, "type");

	*ru = NULL;
	if (!type)
		y_set(st, "type", y_str("RollingUpdate"));
	else if (strcmp(type, "RollingUpdate") && y_get(st, "rollingUpdate"))
		return err_set(e, EINVAL, "spec.%s.rollingUpdate: may not be set when type is %s",
			       key, type);
	else if (strcmp(type, "RollingUpdate"))
		return 0;
	*ru = y_submap(st, "rollingUpdate");
	return 0;
}

static void set_default(struct ynode *m, const char *key, struct ynode *val)
{
	if (y_get(m, key))
		y_free(val);
	else
		y_set(m, key, val);
}

/* A rollingUpdate of a Deployment or DaemonSet. */
static const struct field rolling_fields[] = {
	FINTSTR("maxSurge"),
	FINTSTR("maxUnavailable"),
	{0},
};

static const struct field deployment_strategy_fields[] = {
	FSTR("type", ENUM("RollingUpdate", "Recreate"), .def = "RollingUpdate"),
	FOBJ("rollingUpdate", rolling_fields),
	{0},
};

static const struct field deployment_spec_fields[] = {
	FINT("replicas", .flags = F_NONNEG, .def = "1"),
	FOBJ("selector", label_selector_fields, .flags = F_REQUIRED),
	FOBJ("template", pod_template_fields, .flags = F_REQUIRED),
	FOBJ("strategy", deployment_strategy_fields),
	FINT("minReadySeconds", .flags = F_NONNEG),
	FINT("revisionHistoryLimit", .flags = F_NONNEG, .def = "10"),
	FINT("progressDeadlineSeconds", .flags = F_NONNEG, .def = "600"),
	FBOOL("paused"),
	{0},
};

static int deployment_validate(struct ynode *obj, struct err *e)
{
	struct ynode *spec = y_get(obj, "spec"), *ru;
	const struct ynode *pds, *mrs;
	int r;

	if ((r = check_controller(spec, e)) || (r = strategy_rolling(spec, "strategy", &ru, e)))
		return r;
	if (ru) {
		set_default(ru, "maxSurge", y_str("25%"));
		set_default(ru, "maxUnavailable", y_str("25%"));
		if ((r = check_rolling(ru, "spec.strategy.rollingUpdate", e)))
			return r;
	}
	pds = y_get(spec, "progressDeadlineSeconds");
	mrs = y_get(spec, "minReadySeconds");
	if (pds && mrs && pds->type == Y_INT && mrs->type == Y_INT && pds->i <= mrs->i)
		return err_set(e, EINVAL,
			       "spec.progressDeadlineSeconds: must be greater than "
			       "minReadySeconds");
	return 0;
}

static const struct field deployment_fields[] = {
	FOBJ("spec", deployment_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_deployment = {
	.name = "Deployment",
	.plural = "deployments",
	.api_versions = (const char *const[]){"apps/v1", NULL},
	.namespaced = 1,
	.scalable = 1,
	.fields = deployment_fields,
	.validate = deployment_validate,
};

static const struct field replicaset_spec_fields[] = {
	FINT("replicas", .flags = F_NONNEG, .def = "1"),
	FOBJ("selector", label_selector_fields, .flags = F_REQUIRED),
	FOBJ("template", pod_template_fields, .flags = F_REQUIRED),
	FINT("minReadySeconds", .flags = F_NONNEG),
	{0},
};

static int replicaset_validate(struct ynode *obj, struct err *e)
{
	return check_controller(y_get(obj, "spec"), e);
}

static const struct field replicaset_fields[] = {
	FOBJ("spec", replicaset_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_replicaset = {
	.name = "ReplicaSet",
	.plural = "replicasets",
	.api_versions = (const char *const[]){"apps/v1", NULL},
	.namespaced = 1,
	.scalable = 1,
	.fields = replicaset_fields,
	.validate = replicaset_validate,
};

static const struct field rc_spec_fields[] = {
	FINT("replicas", .flags = F_NONNEG, .def = "1"),
	/* A plain map; defaults to the template's labels. */
	FSTRMAP("selector", .flags = F_LABELS),
	FOBJ("template", pod_template_fields, .flags = F_REQUIRED),
	FINT("minReadySeconds", .flags = F_NONNEG),
	{0},
};

/* As Kubernetes does, the selector and the RC's own labels default to the template's. */
static int rc_validate(struct ynode *obj, struct err *e)
{
	struct ynode *spec = y_get(obj, "spec");
	const struct ynode *labels = y_path(spec, "template.metadata.labels");
	const struct ynode *sel = y_get(spec, "selector");
	struct ynode *meta = y_get(obj, "metadata");

	if (!spec || spec->type != Y_MAP)
		return err_set(e, EINVAL, "spec: required");
	if (!sel || (sel->type == Y_MAP && sel->n == 0)) {
		if (!labels || labels->type != Y_MAP || labels->n == 0)
			return err_set(e, EINVAL,
				       "spec.selector: required when the template has "
				       "no labels");
		y_set(spec, "selector", y_clone(labels));
	}
	if (meta && meta->type == Y_MAP && labels && !y_get(meta, "labels"))
		y_set(meta, "labels", y_clone(labels));
	return check_controller(spec, e);
}

static const struct field rc_fields[] = {
	FOBJ("spec", rc_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_replicationcontroller = {
	.name = "ReplicationController",
	.plural = "replicationcontrollers",
	.api_versions = (const char *const[]){"v1", NULL},
	.namespaced = 1,
	.scalable = 1,
	.fields = rc_fields,
	.validate = rc_validate,
};

static const struct field daemonset_strategy_fields[] = {
	FSTR("type", ENUM("RollingUpdate", "OnDelete"), .def = "RollingUpdate"),
	FOBJ("rollingUpdate", rolling_fields),
	{0},
};

static const struct field daemonset_spec_fields[] = {
	FOBJ("selector", label_selector_fields, .flags = F_REQUIRED),
	FOBJ("template", pod_template_fields, .flags = F_REQUIRED),
	FOBJ("updateStrategy", daemonset_strategy_fields),
	FINT("minReadySeconds", .flags = F_NONNEG),
	FINT("revisionHistoryLimit", .flags = F_NONNEG, .def = "10"),
	{0},
};

static int daemonset_validate(struct ynode *obj, struct err *e)
{
	struct ynode *spec = y_get(obj, "spec"), *ru;
	int r;

	if ((r = check_controller(spec, e)) ||
	    (r = strategy_rolling(spec, "updateStrategy", &ru, e)) || !ru)
		return r;
	set_default(ru, "maxUnavailable", y_int(1));
	set_default(ru, "maxSurge", y_int(0));
	return check_rolling(ru, "spec.updateStrategy.rollingUpdate", e);
}

static const struct field daemonset_fields[] = {
	FOBJ("spec", daemonset_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_daemonset = {
	.name = "DaemonSet",
	.plural = "daemonsets",
	.api_versions = (const char *const[]){"apps/v1", NULL},
	.namespaced = 1,
	.fields = daemonset_fields,
	.validate = daemonset_validate,
};

static const struct field statefulset_rolling_fields[] = {
	FINT("partition", .flags = F_NONNEG),
	FINTSTR("maxUnavailable"),
	{0},
};

static const struct field statefulset_strategy_fields[] = {
	FSTR("type", ENUM("RollingUpdate", "OnDelete"), .def = "RollingUpdate"),
	FOBJ("rollingUpdate", statefulset_rolling_fields),
	{0},
};

static const struct field statefulset_spec_fields[] = {
	FINT("replicas", .flags = F_NONNEG, .def = "1"),
	FOBJ("selector", label_selector_fields, .flags = F_REQUIRED),
	FOBJ("template", pod_template_fields, .flags = F_REQUIRED),
	FSTR("serviceName"),
	{.name = "volumeClaimTemplates", .type = T_LIST, .elem = T_ANY},
	FSTR("podManagementPolicy", ENUM("OrderedReady", "Parallel"), .def = "OrderedReady"),
	FOBJ("updateStrategy", statefulset_strategy_fields),
	FINT("revisionHistoryLimit", .flags = F_NONNEG, .def = "10"),
	FINT("minReadySeconds", .flags = F_NONNEG),
	FANY("persistentVolumeClaimRetentionPolicy"),
	FANY("ordinals"),
	{0},
};

static int statefulset_validate(struct ynode *obj, struct err *e)
{
	struct ynode *spec = y_get(obj, "spec"), *ru;
	bool zero;
	int r;

	if ((r = check_controller(spec, e)) ||
	    (r = strategy_rolling(spec, "updateStrategy", &ru, e)) || !ru)
		return r;
	set_default(ru, "partition", y_int(0));
	if ((r = check_bound(y_get(ru, "maxUnavailable"),
			     "spec.updateStrategy.rollingUpdate.maxUnavailable", true, &zero, e)))
		return r;
	if (zero)
		return err_set(e, EINVAL,
			       "spec.updateStrategy.rollingUpdate.maxUnavailable: "
			       "must be greater than 0");
	return 0;
}

static const struct field statefulset_fields[] = {
	FOBJ("spec", statefulset_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_statefulset = {
	.name = "StatefulSet",
	.plural = "statefulsets",
	.api_versions = (const char *const[]){"apps/v1", NULL},
	.namespaced = 1,
	.scalable = 1,
	.fields = statefulset_fields,
	.validate = statefulset_validate,
};

/*
 * parallelism and completions have no table defaults: which is filled
 * depends on which the user gave (see check_job_spec()).
 */
static const struct field job_spec_fields[] = {
	FINT("parallelism", .flags = F_NONNEG),
	FINT("completions", .flags = F_NONNEG),
	FINT("activeDeadlineSeconds", .flags = F_POSITIVE),
	FINT("backoffLimit", .flags = F_NONNEG, .def = "6"),
	FINT("backoffLimitPerIndex", .flags = F_NONNEG),
	FINT("maxFailedIndexes", .flags = F_NONNEG),
	FINT("ttlSecondsAfterFinished", .flags = F_NONNEG),
	FSTR("completionMode", ENUM("NonIndexed", "Indexed"), .def = "NonIndexed"),
	FBOOL("suspend", .def = "false"),
	FOBJ("selector", label_selector_fields),
	FBOOL("manualSelector"),
	FOBJ("template", pod_template_fields, .flags = F_REQUIRED),
	FANY("podFailurePolicy"),
	FANY("successPolicy"),
	FSTR("podReplacementPolicy", ENUM("TerminatingOrFailed", "Failed")),
	FSTR("managedBy"),
	{0},
};

/*
 * A Job's pods run to completion, so the pod spec's own default of
 * restartPolicy Always is refused, as Kubernetes refuses it.
 */
static int check_job_spec(struct ynode *spec, const char *path, struct err *e)
{
	cleanup_free char *tp = xasprintf("%s.template", path);
	const char *mode = y_path_str(spec, "completionMode");
	int r;

	if (!spec || spec->type != Y_MAP)
		return err_set(e, EINVAL, "%s: required", path);
	if ((r = kind_check_template(y_get(spec, "template"), tp, restart_job, e)))
		return r;
	if (y_get(spec, "selector") && (r = check_selector(spec, path, e)))
		return r;
	if (!y_get(spec, "parallelism")) {
		if (!y_get(spec, "completions"))
			y_set(spec, "completions", y_int(1));
		y_set(spec, "parallelism", y_int(1));
	}
	if (mode && !strcmp(mode, "Indexed") && !y_get(spec, "completions"))
		return err_set(e, EINVAL, "%s.completions: required when completionMode is Indexed",
			       path);
	return 0;
}

static int job_validate(struct ynode *obj, struct err *e)
{
	return check_job_spec(y_get(obj, "spec"), "spec", e);
}

static const struct field job_fields[] = {
	FOBJ("spec", job_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_job = {
	.name = "Job",
	.plural = "jobs",
	.api_versions = (const char *const[]){"batch/v1", NULL},
	.namespaced = 1,
	.fields = job_fields,
	.validate = job_validate,
};

struct cron_field {
	const char *what;
	int lo, hi;
	const char *const *names; /* three-letter names for lo, lo+1, ... */
};

static const char *const cron_months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
					  "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const cron_days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct cron_field cron_fields[5] = {
	{"minute", 0, 59, NULL},	  {"hour", 0, 23, NULL},
	{"day of month", 1, 31, NULL},	  {"month", 1, 12, cron_months},
	{"day of week", 0, 6, cron_days},
};

/* Reads one value of f at *s (a number or a name), advancing *s. */
static bool cron_value(const struct cron_field *f, const char **s, long *v)
{
	char *end;

	if (isdigit((unsigned char)**s)) {
		*v = strtol(*s, &end, 10);
		*s = end;
		return *v >= f->lo && *v <= f->hi;
	}
	for (int i = 0; f->names && f->names[i]; i++) {
		if (!strncasecmp(*s, f->names[i], 3)) {
			*s += 3;
			*v = f->lo + i;
			return true;
		}
	}
	return false;
}

/* One comma-separated item: "*", "?", "5", "1-5", "mon-fri", each with an optional "/step". */
static bool cron_item(const struct cron_field *f, const char *s, bool question)
{
	long a, b;
	char *end;

	if (*s == '*' || (*s == '?' && question)) {
		s++;
	} else {
		if (!cron_value(f, &s, &a))
			return false;
		if (*s == '-' && (s++, !cron_value(f, &s, &b) || b < a))
			return false;
	}
	if (*s == '/') {
		s++;
		long step = strtol(s, &end, 10);
		if (!isdigit((unsigned char)*s) || step <= 0)
			return false;
		s = end;
	}
	return *s == 0;
}

static bool cron_field_ok(const struct cron_field *f, char *text, bool question)
{
	char *save, *item;

	if (*text == ',' || text[strlen(text) - 1] == ',' || strstr(text, ",,"))
		return false;
	for (item = strtok_r(text, ",", &save); item; item = strtok_r(NULL, ",", &save))
		if (!cron_item(f, item, question))
			return false;
	return true;
}

/* A Go duration as time.ParseDuration reads it: "90s", "1h30m", "1.5h". */
static bool go_duration(const char *s)
{
	static const char *const units[] = {"ns", "us", "\u00b5s", "\u03bcs", "ms",
					    "s",  "m",	"h",	   NULL};
	if (!*s)
		return false;
	while (*s) {
		const char *start = s;
		int u;
		s += strspn(s, "0123456789");
		if (*s == '.')
			s += 1 + strspn(s + 1, "0123456789");
		if (s == start || (s == start + 1 && *start == '.'))
			return false;
		for (u = 0; units[u] && strncmp(s, units[u], strlen(units[u])); u++)
			;
		if (!units[u])
			return false;
		s += strlen(units[u]);
	}
	return true;
}

static const char cron_forms[] = "5 fields (minute hour day-of-month month day-of-week) or "
				 "one of @yearly, @annually, @monthly, @weekly, @daily, "
				 "@midnight, @hourly, @every DURATION";

static int check_cron_descriptor(const char *s, const char *path, struct err *e)
{
	static const char *const forms[] = {"@yearly", "@annually", "@monthly", "@weekly",
					    "@daily",  "@midnight", "@hourly",	NULL};

	for (int i = 0; forms[i]; i++)
		if (!strcmp(s, forms[i]))
			return 0;
	if (!strncmp(s, "@every ", 7) && go_duration(s + 7 + strspn(s + 7, " ")))
		return 0;
	return err_set(e, EINVAL, "%s: \"%s\" must be %s", path, s, cron_forms);
}

static int check_schedule(const struct ynode *n, const char *path, struct err *e)
{
	const char *s = n->type == Y_STR ? n->str : "";
	cleanup_free char *copy = NULL;
	char *fields[6], *save;
	int count = 0;

	s += strspn(s, " \t");
	if (*s == '@')
		return check_cron_descriptor(s, path, e);
	if (!strncmp(s, "TZ=", 3) || !strncmp(s, "CRON_TZ=", 8))
		return err_set(e, EINVAL,
			       "%s: set the time zone in spec.timeZone, not in the schedule", path);
	copy = xstrdup(s);
	for (char *f = strtok_r(copy, " \t", &save); f && count < 6;
	     f = strtok_r(NULL, " \t", &save))
		fields[count++] = f;
	if (count != 5)
		return err_set(e, EINVAL, "%s: \"%s\" must be %s", path, n->str, cron_forms);
	for (int i = 0; i < 5; i++) {
		cleanup_free char *text = xstrdup(fields[i]);
		if (!cron_field_ok(&cron_fields[i], fields[i], i == 2 || i == 4))
			return err_set(e, EINVAL, "%s: \"%s\": invalid %s \"%s\" (%d-%d)", path,
				       n->str, cron_fields[i].what, text, cron_fields[i].lo,
				       cron_fields[i].hi);
	}
	return 0;
}

static const struct field job_template_fields[] = {
	FOBJ("metadata", metadata_fields),
	FOBJ("spec", job_spec_fields, .flags = F_REQUIRED),
	{0},
};

static const struct field cronjob_spec_fields[] = {
	FSTR("schedule", .flags = F_REQUIRED, .check = check_schedule),
	FSTR("timeZone"),
	FINT("startingDeadlineSeconds", .flags = F_NONNEG),
	FSTR("concurrencyPolicy", ENUM("Allow", "Forbid", "Replace"), .def = "Allow"),
	FBOOL("suspend", .def = "false"),
	FOBJ("jobTemplate", job_template_fields, .flags = F_REQUIRED),
	FINT("successfulJobsHistoryLimit", .flags = F_NONNEG, .def = "3"),
	FINT("failedJobsHistoryLimit", .flags = F_NONNEG, .def = "1"),
	{0},
};

static int cronjob_validate(struct ynode *obj, struct err *e)
{
	return check_job_spec(y_path(obj, "spec.jobTemplate.spec"), "spec.jobTemplate.spec", e);
}

static const struct field cronjob_fields[] = {
	FOBJ("spec", cronjob_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_cronjob = {
	.name = "CronJob",
	.plural = "cronjobs",
	.api_versions = (const char *const[]){"batch/v1", NULL},
	.namespaced = 1,
	.fields = cronjob_fields,
	.validate = cronjob_validate,
};

static const struct field scale_target_fields[] = {
	FSTR("apiVersion"),
	FSTR("kind", .flags = F_REQUIRED),
	FSTR("name", .flags = F_REQUIRED),
	{0},
};

/* One table for both versions; the hook refuses the other version's fields. */
static const struct field hpa_spec_fields[] = {
	FOBJ("scaleTargetRef", scale_target_fields, .flags = F_REQUIRED),
	FINT("minReplicas", .flags = F_POSITIVE, .def = "1"),
	FINT("maxReplicas", .flags = F_REQUIRED | F_POSITIVE),
	FINT("targetCPUUtilizationPercentage", .flags = F_POSITIVE),
	{.name = "metrics", .type = T_LIST, .elem = T_ANY},
	FANY("behavior"),
	{0},
};

static int hpa_validate(struct ynode *obj, struct err *e)
{
	const char *version = y_path_str(obj, "apiVersion");
	struct ynode *spec = y_get(obj, "spec");
	const struct ynode *min = y_get(spec, "minReplicas"), *max = y_get(spec, "maxReplicas");
	bool v1 = version && !strcmp(version, "autoscaling/v1");

	if (!spec || spec->type != Y_MAP)
		return err_set(e, EINVAL, "spec: required");
	if (v1 && y_get(spec, "metrics"))
		return err_set(e, EINVAL,
			       "spec.metrics: not a field of autoscaling/v1 "
			       "(use autoscaling/v2)");
	if (v1 && y_get(spec, "behavior"))
		return err_set(e, EINVAL,
			       "spec.behavior: not a field of autoscaling/v1 "
			       "(use autoscaling/v2)");
	if (!v1 && y_get(spec, "targetCPUUtilizationPercentage"))
		return err_set(e, EINVAL,
			       "spec.targetCPUUtilizationPercentage: not a field of %s "
			       "(use metrics)",
			       version ? version : "autoscaling/v2");
	if (min && max && min->type == Y_INT && max->type == Y_INT && max->i < min->i)
		return err_set(e, EINVAL,
			       "spec.maxReplicas: must be greater than or equal to "
			       "minReplicas (%lld)",
			       (long long)min->i);
	return 0;
}

static const struct field hpa_fields[] = {
	FOBJ("spec", hpa_spec_fields, .flags = F_REQUIRED),
	FANY("status"),
	{0},
};

const struct kind kind_hpa = {
	.name = "HorizontalPodAutoscaler",
	.plural = "horizontalpodautoscalers",
	.api_versions = (const char *const[]){"autoscaling/v2", "autoscaling/v1", NULL},
	.namespaced = 1,
	.fields = hpa_fields,
	.validate = hpa_validate,
};
