/*
 * filter.c: filters, scores and the choice of a node (see filter.h).
 *
 * sched_choose() runs every filter over every node, counting the reasons
 * of the nodes that fail; it scores the nodes that pass, normalizes each
 * score over them the way kube-scheduler's plugins do, and returns the
 * best. When none passes, the reasons become kube-scheduler's message:
 * "COUNT REASON" strings sorted as strings, joined with ", ".
 */
#include "filter.h"

#include <errno.h>
#include <stdarg.h>

#define MAX_SCORE  100
#define W_LEAST	   1
#define W_SPREAD   2
#define W_AFFINITY 2
#define W_TAINT	   3

#define MAX_REASONS 3

/* Why a node failed: the reasons of the first filter that rejected it. */
struct verdict {
	int n;
	char reason[MAX_REASONS][512];
};

static bool reject(struct verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool reject(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reason[v->n++], sizeof(v->reason[0]), fmt, ap);
	va_end(ap);
	return false;
}

static const char *scalar(const struct ynode *n)
{
	return n && n->type != Y_MAP && n->type != Y_SEQ && n->type != Y_NULL ? n->str : NULL;
}

/* A label's value; y_get, not y_path, since label keys hold dots. */
static const char *label(const struct ynode *labels, const char *key)
{
	return scalar(y_get(labels, key));
}

static bool toleration_matches(const struct ynode *t, const char *key, const char *value,
			       const char *effect)
{
	const char *tkey = y_path_str(t, "key"), *teffect = y_path_str(t, "effect");
	const char *op = y_path_str(t, "operator"), *tvalue = y_path_str(t, "value");

	if (teffect && *teffect && strcmp(teffect, effect))
		return false;
	if (tkey && *tkey && strcmp(tkey, key))
		return false;
	if (!op || !*op || !strcmp(op, "Equal"))
		return !strcmp(tvalue ? tvalue : "", value);
	return !strcmp(op, "Exists");
}

bool sched_tolerates(const struct ynode *tolerations, const char *key, const char *value,
		     const char *effect)
{
	for (size_t i = 0; tolerations && tolerations->type == Y_SEQ && i < tolerations->n; i++)
		if (toleration_matches(tolerations->v[i], key, value, effect))
			return true;
	return false;
}

static bool filter_unschedulable(const struct sched_pod *p, const struct sched_node *n,
				 struct verdict *v)
{
	if (!n->s.unschedulable ||
	    sched_tolerates(p->tolerations, SCHED_TAINT_UNSCHEDULABLE, "", "NoSchedule"))
		return true;
	return reject(v, "node(s) were unschedulable");
}

static bool filter_node_name(const struct sched_pod *p, const struct sched_node *n,
			     struct verdict *v)
{
	if (!p->node_name || !strcmp(p->node_name, n->name))
		return true;
	return reject(v, "node(s) didn't match the requested node name");
}

static bool filter_taints(const struct sched_pod *p, const struct sched_node *n, struct verdict *v)
{
	for (size_t i = 0; i < n->s.ntaints; i++) {
		const struct sched_taint *t = &n->s.taints[i];
		if (strcmp(t->effect, "NoSchedule") && strcmp(t->effect, "NoExecute"))
			continue;
		if (!sched_tolerates(p->tolerations, t->key, t->value, t->effect))
			return reject(v, "node(s) had untolerated taint {%s: %s}", t->key,
				      t->value);
	}
	return true;
}

static bool in_values(const struct ynode *values, const char *v)
{
	for (size_t i = 0; values && values->type == Y_SEQ && i < values->n; i++)
		if (scalar(values->v[i]) && !strcmp(scalar(values->v[i]), v))
			return true;
	return false;
}

static bool parse_int(const char *s, long long *out)
{
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return !*end && errno == 0;
}

/* Gt and Lt: one value, and both it and the label's value integers. */
static bool compare(const struct ynode *values, const char *v, bool greater)
{
	long long have, want;

	if (!v || !values || values->type != Y_SEQ || values->n != 1 || !parse_int(v, &have) ||
	    !parse_int(scalar(values->v[0]), &want))
		return false;
	return greater ? have > want : have < want;
}

/* One requirement of a NodeSelectorTerm against v, the node's value for
 * its key (NULL when the node has none). */
static bool requirement_matches(const struct ynode *r, const char *v)
{
	const char *op = y_path_str(r, "operator");
	const struct ynode *values = y_get(r, "values");

	if (!op)
		return false;
	if (!strcmp(op, "In"))
		return v && in_values(values, v);
	if (!strcmp(op, "NotIn"))
		return !v || !in_values(values, v);
	if (!strcmp(op, "Exists"))
		return v != NULL;
	if (!strcmp(op, "DoesNotExist"))
		return v == NULL;
	if (!strcmp(op, "Gt") || !strcmp(op, "Lt"))
		return compare(values, v, !strcmp(op, "Gt"));
	return false;
}

/* matchExpressions on labels and matchFields (metadata.name), ANDed; a
 * term with neither matches nothing, as in Kubernetes. */
static bool term_matches(const struct ynode *term, const struct sched_node *n)
{
	const struct ynode *exprs = y_get(term, "matchExpressions");
	const struct ynode *fields = y_get(term, "matchFields");
	size_t ne = exprs && exprs->type == Y_SEQ ? exprs->n : 0;
	size_t nf = fields && fields->type == Y_SEQ ? fields->n : 0;

	if (ne + nf == 0)
		return false;
	for (size_t i = 0; i < ne; i++) {
		const char *key = y_path_str(exprs->v[i], "key");
		if (!key || !requirement_matches(exprs->v[i], label(n->s.labels, key)))
			return false;
	}
	for (size_t i = 0; i < nf; i++) {
		const char *key = y_path_str(fields->v[i], "key");
		const char *v = key && !strcmp(key, "metadata.name") ? n->name : NULL;
		if (!requirement_matches(fields->v[i], v))
			return false;
	}
	return true;
}

static bool selector_matches(const struct ynode *sel, const struct sched_node *n)
{
	for (size_t i = 0; sel && sel->type == Y_MAP && i < sel->n; i++) {
		const char *want = scalar(sel->v[i]), *have = label(n->s.labels, sel->keys[i]);
		if (!want || !have || strcmp(want, have))
			return false;
	}
	return true;
}

/* nodeSelector, and the required nodeSelectorTerms, ORed. */
static bool filter_affinity(const struct sched_pod *p, const struct sched_node *n,
			    struct verdict *v)
{
	const struct ynode *terms = y_get(p->required, "nodeSelectorTerms");
	bool ok = selector_matches(p->node_selector, n);

	if (ok && p->required) {
		ok = false;
		for (size_t i = 0; terms && terms->type == Y_SEQ && i < terms->n && !ok; i++)
			ok = term_matches(terms->v[i], n);
	}
	return ok || reject(v, "node(s) didn't match Pod's node affinity/selector");
}

/* A wildcard address conflicts with every address; others with their own. */
static bool ports_conflict(const struct sched_port *a, const struct sched_port *b)
{
	if (a->port != b->port || strcmp(a->proto, b->proto))
		return false;
	return !strcmp(a->ip, "0.0.0.0") || !strcmp(b->ip, "0.0.0.0") || !strcmp(a->ip, b->ip);
}

static bool filter_ports(const struct sched_pod *p, const struct sched_node *n, struct verdict *v)
{
	for (size_t i = 0; i < p->claim.nports; i++)
		for (size_t j = 0; j < n->nports; j++)
			if (ports_conflict(&p->claim.ports[i], &n->ports[j]))
				goto busy;
	return true;
busy:
	return reject(v, "node(s) didn't have free ports for the requested pod ports");
}

static bool filter_resources(const struct sched_pod *p, const struct sched_node *n,
			     struct verdict *v)
{
	const struct sched_res *want = &p->claim.req;

	if (n->pods + 1 > n->s.alloc_pods)
		reject(v, "Too many pods");
	if (want->cpu > 0 && want->cpu > n->s.alloc.cpu - n->req.cpu)
		reject(v, "Insufficient cpu");
	if (want->mem > 0 && want->mem > n->s.alloc.mem - n->req.mem)
		reject(v, "Insufficient memory");
	return v->n == 0;
}

static bool node_fits(const struct sched_pod *p, const struct sched_node *n, struct verdict *v)
{
	v->n = 0;
	return filter_unschedulable(p, n, v) && filter_node_name(p, n, v) &&
	       filter_taints(p, n, v) && filter_affinity(p, n, v) && filter_ports(p, n, v) &&
	       filter_resources(p, n, v);
}

/* The raw scores of a node that passed, before normalizing. */
struct raw {
	bool fits;
	int64_t least, spread, affinity, taints, total;
};

static int64_t least_requested(int64_t requested, int64_t capacity)
{
	if (capacity <= 0 || requested > capacity)
		return 0;
	return (capacity - requested) * MAX_SCORE / capacity;
}

static int64_t preferred_weight(const struct sched_pod *p, const struct sched_node *n)
{
	const struct ynode *terms = p->preferred;
	int64_t sum = 0;

	for (size_t i = 0; terms && terms->type == Y_SEQ && i < terms->n; i++) {
		const struct ynode *w = y_get(terms->v[i], "weight");
		if (w && w->type == Y_INT && term_matches(y_get(terms->v[i], "preference"), n))
			sum += w->i;
	}
	return sum;
}

static int64_t prefer_no_schedule(const struct sched_pod *p, const struct sched_node *n)
{
	int64_t count = 0;

	for (size_t i = 0; i < n->s.ntaints; i++) {
		const struct sched_taint *t = &n->s.taints[i];
		if (!strcmp(t->effect, "PreferNoSchedule") &&
		    !sched_tolerates(p->tolerations, t->key, t->value, t->effect))
			count++;
	}
	return count;
}

static void score(const struct sched_pod *p, const struct sched_node *n, struct raw *r)
{
	const struct sched_res *want = &p->claim.nonzero;

	r->least = (least_requested(n->nonzero.cpu + want->cpu, n->s.alloc.cpu) +
		    least_requested(n->nonzero.mem + want->mem, n->s.alloc.mem)) /
		   2;
	r->spread = sched_node_owned(n, p->claim.owner);
	r->affinity = preferred_weight(p, n);
	r->taints = prefer_no_schedule(p, n);
}

/* Scales v against the largest value, reversed when fewer is better; all
 * zeros score 0, or MAX_SCORE when reversed (kube's DefaultNormalizeScore). */
static int64_t normalize(int64_t v, int64_t max, bool reverse)
{
	if (max == 0)
		return reverse ? MAX_SCORE : 0;
	return reverse ? MAX_SCORE - v * MAX_SCORE / max : v * MAX_SCORE / max;
}

static int pick_best(struct sched_node *const *nodes, struct raw *raw, size_t n)
{
	int64_t spread = 0, affinity = 0, taints = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		if (!raw[i].fits)
			continue;
		spread = raw[i].spread > spread ? raw[i].spread : spread;
		affinity = raw[i].affinity > affinity ? raw[i].affinity : affinity;
		taints = raw[i].taints > taints ? raw[i].taints : taints;
	}
	for (size_t i = 0; i < n; i++) {
		struct raw *r = &raw[i];
		if (!r->fits)
			continue;
		r->total = W_LEAST * r->least + W_SPREAD * normalize(r->spread, spread, true) +
			   W_AFFINITY * normalize(r->affinity, affinity, false) +
			   W_TAINT * normalize(r->taints, taints, true);
		if (best < 0 || r->total > raw[best].total ||
		    (r->total == raw[best].total && strcmp(nodes[i]->name, nodes[best]->name) < 0))
			best = (int)i;
	}
	return best;
}

static void count_reasons(struct strmap *hist, const struct verdict *v)
{
	for (int i = 0; i < v->n; i++) {
		intptr_t count = (intptr_t)strmap_get(hist, v->reason[i]);
		strmap_put(hist, v->reason[i], (void *)(count + 1));
	}
}

/* kube-scheduler's FitError: "0/N nodes are available: " and the
 * "COUNT REASON" strings sorted as strings. */
static char *fit_error(const struct strmap *hist, size_t present)
{
	struct strbuf sb = {0};
	size_t n;

	if (present == 0)
		return xstrdup("no nodes available to schedule pods");
	char **reasons = strmap_keys(hist, &n);
	for (size_t i = 0; i < n; i++) {
		char *r = xasprintf("%ld %s", (long)(intptr_t)strmap_get(hist, reasons[i]),
				    reasons[i]);
		free(reasons[i]);
		reasons[i] = r;
	}
	qsort(reasons, n, sizeof(*reasons), cmp_strp);
	sb_printf(&sb, "0/%zu nodes are available:", present);
	for (size_t i = 0; i < n; i++) {
		sb_printf(&sb, "%s %s", i ? "," : "", reasons[i]);
		free(reasons[i]);
	}
	sb_puts(&sb, ".");
	free(reasons);
	return sb_steal(&sb, NULL);
}

int sched_choose(const struct sched_pod *p, struct sched_node *const *nodes, size_t n, char **msg)
{
	struct raw *raw = xcalloc(n ? n : 1, sizeof(*raw));
	struct strmap *hist = strmap_new();
	size_t present = 0, feasible = 0;
	struct verdict v;

	for (size_t i = 0; i < n; i++) {
		if (!nodes[i]->s.present)
			continue;
		present++;
		if (node_fits(p, nodes[i], &v)) {
			raw[i].fits = true;
			feasible++;
			score(p, nodes[i], &raw[i]);
		} else {
			count_reasons(hist, &v);
		}
	}
	int best = feasible ? pick_best(nodes, raw, n) : -1;
	if (best < 0)
		*msg = fit_error(hist, present);
	strmap_free(hist);
	free(raw);
	return best;
}

static struct sched_node *find_node(struct sched_node **nodes, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(nodes[i]->name, name))
			return nodes[i];
	return NULL;
}

int sched_pick(const struct ynode *pod, const struct ynode *const *nodes, size_t nnodes,
	       const struct ynode *const *pods, size_t npods, char **msg)
{
	struct sched_node **ns = xcalloc(nnodes ? nnodes : 1, sizeof(*ns));
	struct sched_pod p;

	for (size_t i = 0; i < nnodes; i++) {
		const char *name = y_path_str(nodes[i], "metadata.name");
		ns[i] = sched_node_new(name ? name : "");
		sched_node_update(ns[i], nodes[i]);
	}
	for (size_t i = 0; i < npods; i++) {
		const char *holder = sched_pod_holder(pods[i]);
		struct sched_node *n = holder ? find_node(ns, nnodes, holder) : NULL;
		struct sched_claim cl;
		if (!n)
			continue;
		sched_claim_read(&cl, pods[i]);
		sched_node_add(n, &cl);
		sched_claim_clear(&cl);
	}
	sched_pod_read(&p, pod);
	int r = sched_choose(&p, ns, nnodes, msg);
	sched_pod_clear(&p);
	for (size_t i = 0; i < nnodes; i++)
		sched_node_free(ns[i]);
	free(ns);
	return r;
}
