/*
 * test_selector.c: label selectors in both forms, matched against labels
 * maps, printed canonically, and the messages their errors carry.
 *
 * Labels, LabelSelectors and plain selector maps are written as YAML flow
 * text and parsed with y_parse, so each case reads as a user would write it.
 */
#include "selector.h"
#include "tap.h"

#include <errno.h>

/* Parses one YAML document; the text is the test's own, so failure aborts. */
static struct ynode *yaml(const char *text)
{
	struct ynode **docs;
	size_t n;
	struct err e;

	if (y_parse(text, strlen(text), &docs, &n, &e) < 0 || n != 1) {
		fprintf(stderr, "bad test YAML %s\n", text);
		abort();
	}
	struct ynode *d = docs[0];
	free(docs);
	return d;
}

/* 1 or 0 for whether text matches labels (YAML, or NULL), -1 when text does not parse. */
static int str_matches(const char *text, const char *labels)
{
	struct selector *s;
	struct err e;
	struct ynode *l = labels ? yaml(labels) : NULL;
	int r = -1;

	if (sel_parse(text, &s, &e) == 0)
		r = sel_matches(s, l);
	sel_free(s);
	y_free(l);
	return r;
}

static int doc_matches(const char *sel, const char *labels)
{
	struct selector *s;
	struct err e;
	struct ynode *n = yaml(sel), *l = labels ? yaml(labels) : NULL;
	int r = -1;

	if (sel_from_doc(n, "spec.selector", &s, &e) == 0)
		r = sel_matches(s, l);
	sel_free(s);
	y_free(n);
	y_free(l);
	return r;
}

/* The canonical string of text, or "ERROR: message"; caller frees. */
static char *str_canon(const char *text)
{
	struct selector *s;
	struct err e;

	if (sel_parse(text, &s, &e) < 0)
		return xasprintf("ERROR: %s", e.msg);
	char *out = sel_string(s);
	sel_free(s);
	return out;
}

static char *doc_canon(const char *sel)
{
	struct selector *s;
	struct err e;
	struct ynode *n = yaml(sel);
	char *out;

	if (sel_from_doc(n, "spec.selector", &s, &e) < 0)
		out = xasprintf("ERROR: %s", e.msg);
	else
		out = sel_string(s);
	sel_free(s);
	y_free(n);
	return out;
}

static void is_canon(char *got, const char *want, const char *what)
{
	if (!ok(strcmp(got, want) == 0, "%s prints as %s", what, want))
		printf("#   got: %s\n", got);
	free(got);
}

/* Text must fail with -EINVAL, NULL *out, and a message containing want. */
static void str_fails(const char *text, const char *want)
{
	struct selector *s = (struct selector *)1;
	struct err e = {0};
	int r = sel_parse(text, &s, &e);
	bool good = r == -EINVAL && s == NULL && e.code == EINVAL && strstr(e.msg, want);

	if (!ok(good, "\"%s\" is rejected: %s", text, want))
		printf("#   r=%d msg: %s\n", r, e.msg);
	if (r == 0)
		sel_free(s);
}

static void doc_fails(const char *sel, const char *want)
{
	struct selector *s = (struct selector *)1;
	struct err e = {0};
	struct ynode *n = yaml(sel);
	int r = sel_from_doc(n, "spec.selector", &s, &e);
	bool good = r == -EINVAL && s == NULL && strstr(e.msg, want);

	if (!ok(good, "%s is rejected: %s", sel, want))
		printf("#   r=%d msg: %s\n", r, e.msg);
	if (r == 0)
		sel_free(s);
	y_free(n);
}

static void test_equality(void)
{
	ok(str_matches("app=web", "{app: web, tier: fe}") == 1, "= matches the same value");
	ok(str_matches("app=web", "{app: db}") == 0, "= rejects another value");
	ok(str_matches("app=web", "{tier: fe}") == 0, "= rejects an absent key");
	ok(str_matches("app==web", "{app: web}") == 1, "== matches like =");
	ok(str_matches("app==web", "{app: webx}") == 0, "== compares whole values");
	ok(str_matches("app!=web", "{app: db}") == 1, "!= matches another value");
	ok(str_matches("app!=web", "{app: web}") == 0, "!= rejects the same value");
	ok(str_matches("app!=web", "{tier: fe}") == 1, "!= matches when the key is absent");
	ok(str_matches("app!=web", NULL) == 1, "!= matches no labels at all");
	ok(str_matches("app=", "{app: ''}") == 1, "an empty value matches an empty label");
	ok(str_matches("app=", "{app: web}") == 0, "an empty value rejects a non-empty label");
	ok(str_matches("example.com/app=web", "{example.com/app: web}") == 1,
	   "a prefixed key matches");
}

static void test_sets(void)
{
	ok(str_matches("tier in (fe, be)", "{tier: be}") == 1, "in matches a listed value");
	ok(str_matches("tier in (fe,be)", "{tier: db}") == 0, "in rejects an unlisted value");
	ok(str_matches("tier in (fe)", "{app: x}") == 0, "in rejects an absent key");
	ok(str_matches("tier notin (fe,be)", "{tier: db}") == 1, "notin matches an unlisted value");
	ok(str_matches("tier notin (fe,be)", "{tier: fe}") == 0, "notin rejects a listed value");
	ok(str_matches("tier notin (fe)", "{app: x}") == 1, "notin matches when the key is absent");
	ok(str_matches("tier notin (fe)", NULL) == 1, "notin matches no labels at all");
	ok(str_matches("tier", "{tier: ''}") == 1, "exists matches a key with an empty value");
	ok(str_matches("tier", "{app: x}") == 0, "exists rejects an absent key");
	ok(str_matches("!tier", "{app: x}") == 1, "!key matches an absent key");
	ok(str_matches("!tier", "{tier: fe}") == 0, "!key rejects a present key");
	ok(str_matches("tier in (a,)", "{tier: ''}") == 1, "(a,) also holds the empty value");
	ok(str_matches("in", "{in: x}") == 1, "a key may be the word in");
	ok(str_matches("a=in", "{a: in}") == 1, "a value may be the word in");
}

static void test_and_and_empty(void)
{
	const char *l = "{app: web, tier: fe, env: prod}";
	struct selector *s = NULL;
	struct err e;

	ok(str_matches("app=web,tier in (fe),env!=dev,!canary,env", l) == 1,
	   "every operator at once, all satisfied");
	ok(str_matches("app=web,tier in (fe),env=dev", l) == 0,
	   "one failing requirement fails all");
	ok(str_matches("  app = web ,  tier  in(fe , be)  , ! canary ", l) == 1,
	   "whitespace around tokens is allowed");
	ok(str_matches("app=web,app=db", l) == 0, "contradicting requirements match nothing");
	ok(sel_parse("", &s, &e) == 0 && sel_empty(s) && sel_matches(s, NULL),
	   "the empty string is the empty selector and matches no labels");
	struct ynode *labels = yaml(l);
	ok(s && sel_matches(s, labels), "the empty selector matches any labels");
	y_free(labels);
	sel_free(s);
	ok(sel_parse("  \t ", &s, &e) == 0 && sel_empty(s), "blank text is the empty selector");
	sel_free(s);
	ok(sel_parse("a", &s, &e) == 0 && !sel_empty(s), "one requirement is not empty");
	sel_free(s);
	sel_free(NULL);
	ok(1, "sel_free(NULL) does nothing");
}

static void test_parse_errors(void)
{
	str_fails("app in (a",
		  "column 10: expected ',' or ')' in the values of \"app\", found the end");
	str_fails("app in a", "column 8: expected '(' after 'in', found \"a\"");
	str_fails("app in ()", "'in' needs at least one value");
	str_fails("app notin ()", "'notin' needs at least one value");
	str_fails("app=web,", "column 9: expected a label key or '!key', found the end");
	str_fails(",app", "column 1: expected a label key or '!key', found ','");
	str_fails("app=web tier=fe", "expected ',' or the end of the text, found \"tier\"");
	str_fails("app web", "expected an operator (=, ==, !=, in, notin)");
	str_fails("app>3", "found '>'");
	str_fails("app=(x)", "expected a value after '=', found '('");
	str_fails("!", "expected a label key after '!'");
	str_fails("!=x", "expected a label key or '!key', found '!='");
	str_fails("app===x", "expected a value after '=='");
	str_fails("-app=x", "column 1: invalid key \"-app\"");
	str_fails("app=-x", "column 5: invalid label value \"-x\"");
	str_fails("app in (a, -b)", "invalid label value \"-b\"");
	str_fails("app in (a b)", "expected ',' or ')'");
	str_fails("Bad_Prefix/app=x", "key prefix \"Bad_Prefix\" must be a DNS subdomain");
}

static void test_canonical(void)
{
	is_canon(str_canon(""), "", "the empty selector");
	is_canon(str_canon("tier in (b, a),app==web"), "app=web,tier in (a,b)",
		 "requirements sorted by key, values sorted");
	is_canon(str_canon("a notin (x,x,y),!b,c,a!=z,a=w"), "a=w,a!=z,a notin (x,y),!b,c",
		 "operators ordered = != in notin exists !");
	is_canon(str_canon("app=web,app=web, app == web"), "app=web", "repeated requirements once");
	is_canon(str_canon("app=,t in (,a)"), "app=,t in (,a)", "empty values kept");

	char *once = str_canon("z=1,a in (q,p),!m");
	char *twice = str_canon(once);
	ok(strcmp(once, twice) == 0, "the canonical string parses back to itself (%s)", twice);
	free(once);
	free(twice);
}

static void test_doc_form(void)
{
	const char *both = "{matchLabels: {app: web}, matchExpressions: ["
			   "{key: tier, operator: In, values: [fe, be]},"
			   "{key: env, operator: NotIn, values: [dev]},"
			   "{key: track, operator: Exists},"
			   "{key: canary, operator: DoesNotExist}]}";

	ok(doc_matches(both, "{app: web, tier: be, env: prod, track: x}") == 1,
	   "LabelSelector with every operator matches");
	ok(doc_matches(both, "{app: web, tier: be, track: x}") == 1, "NotIn matches an absent key");
	ok(doc_matches(both, "{app: web, tier: db, track: x}") == 0,
	   "In rejects an unlisted value");
	ok(doc_matches(both, "{app: web, tier: fe, env: dev, track: x}") == 0,
	   "NotIn rejects a listed value");
	ok(doc_matches(both, "{app: web, tier: fe}") == 0, "Exists rejects an absent key");
	ok(doc_matches(both, "{app: web, tier: fe, track: x, canary: y}") == 0,
	   "DoesNotExist rejects a present key");
	ok(doc_matches(both, "{app: db, tier: fe, track: x}") == 0,
	   "matchLabels rejects a mismatch");
	is_canon(doc_canon(both), "app=web,!canary,env notin (dev),tier in (be,fe),track",
		 "a LabelSelector");
	ok(doc_matches("{matchLabels: {app: web}}", "{app: web}") == 1, "matchLabels alone");
	const char *exists = "{matchExpressions: [{key: a, operator: Exists, values: []}]}";
	ok(doc_matches(exists, "{a: x}") == 1, "Exists with an empty values list");
	ok(doc_matches("{app: web, tier: fe}", "{app: web, tier: fe, x: y}") == 1,
	   "a plain map matches");
	ok(doc_matches("{app: web, tier: fe}", "{app: web}") == 0, "a plain map needs every label");
	is_canon(doc_canon("{tier: fe, app: web}"), "app=web,tier=fe", "a plain map");
	is_canon(doc_canon("{}"), "", "an empty map");
	is_canon(doc_canon("{matchLabels: {}}"), "", "an empty LabelSelector");
	is_canon(doc_canon("{matchLabels: , matchExpressions: }"), "",
		 "null matchLabels and matchExpressions");

	struct selector *s = NULL;
	struct err e;
	ok(sel_from_doc(NULL, "spec.selector", &s, &e) == 0 && sel_empty(s) && sel_matches(s, NULL),
	   "a NULL document is the empty selector");
	sel_free(s);
}

static void test_doc_errors(void)
{
	doc_fails("{matchExpressions: [{key: a, operator: Has}]}",
		  "spec.selector.matchExpressions[0].operator: unsupported value \"Has\": must be "
		  "one "
		  "of In, NotIn, Exists, DoesNotExist");
	doc_fails("{matchExpressions: [{key: a, operator: Exists}, {key: b, operator: In}]}",
		  "spec.selector.matchExpressions[1].values: must not be empty for operator In");
	doc_fails("{matchExpressions: [{key: b, operator: NotIn, values: []}]}",
		  "spec.selector.matchExpressions[0].values: must not be empty for operator NotIn");
	doc_fails("{matchExpressions: [{key: a, operator: Exists, values: [x]}]}",
		  "spec.selector.matchExpressions[0].values: must be empty for operator Exists");
	doc_fails("{matchExpressions: [{key: a, operator: DoesNotExist, values: [x]}]}",
		  "values: must be empty for operator DoesNotExist");
	doc_fails("{matchExpressions: [{operator: Exists}]}",
		  "spec.selector.matchExpressions[0].key: required");
	doc_fails("{matchExpressions: [{key: a}]}",
		  "spec.selector.matchExpressions[0].operator: required");
	doc_fails(
		"{matchExpressions: [{key: a, operator: In, values: [x, 3]}]}",
		"spec.selector.matchExpressions[0].values[1]: must be a string, not the integer 3 "
		"(quote it)");
	doc_fails("{matchExpressions: [{key: a, operator: 1}]}",
		  "matchExpressions[0].operator: must be a string, not the integer 1");
	doc_fails("{matchExpressions: [{key: a, operator: In, values: x}]}",
		  "matchExpressions[0].values: must be a list, not the string \"x\"");
	doc_fails("{matchExpressions: [{key: a, operator: Exists, value: x}]}",
		  "spec.selector.matchExpressions[0].value: unknown field");
	doc_fails("{matchExpressions: {key: a}}",
		  "spec.selector.matchExpressions: must be a list, not a map");
	doc_fails("{matchExpressions: [{key: -a, operator: Exists}]}",
		  "spec.selector.matchExpressions[0].key: invalid key \"-a\"");
	doc_fails("{matchLabels: {app: true}}", "spec.selector.matchLabels[app]: must be a string, "
						"not the boolean true (quote it)");
	doc_fails("{matchLabels: [app]}", "spec.selector.matchLabels: must be a map, not a list");
	doc_fails("{matchLabels: {app: web}, extra: x}", "spec.selector.extra: unknown field");
	doc_fails("{app: 3}", "spec.selector[app]: must be a string, not the integer 3 (quote it)");
	doc_fails("{app: -web}", "spec.selector[app]: invalid label value \"-web\"");
	doc_fails("{app: {a: b}}", "spec.selector[app]: must be a string, not a map");
	doc_fails("[a, b]", "spec.selector: must be a map, not a list");
}

int main(void)
{
	test_equality();
	test_sets();
	test_and_and_empty();
	test_parse_errors();
	test_canonical();
	test_doc_form();
	test_doc_errors();
	return done_testing();
}
