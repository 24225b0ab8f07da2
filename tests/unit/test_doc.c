/*
 * test_doc.c: the document tree, its YAML parser and emitter, and the
 * object layer on top of them (obj_parse_one, obj_normalize, obj_merge).
 *
 * Scalars must be typed as YAML 1.2's core schema types them, and a tree
 * emitted and parsed again must come back equal, types included: that is
 * what lets the store keep objects as text. The object tests drive the
 * path a write takes: text, one document, normalized against its kind
 * and path, merged with the stored object.
 */
#include "object.h"
#include "tap.h"

#include <errno.h>
#include <stdint.h>

/* Parses text, which must hold one document; NULL (reported) otherwise. */
static struct ynode *parse1(const char *text)
{
	struct ynode **docs = NULL;
	size_t n = 0;
	struct err e = {0};

	if (y_parse(text, strlen(text), &docs, &n, &e) < 0) {
		printf("# parse failed: %s\n", e.msg);
		return NULL;
	}
	struct ynode *d = n == 1 ? docs[0] : NULL;
	for (size_t i = d ? 1 : 0; i < n; i++)
		y_free(docs[i]);
	free(docs);
	if (!d)
		printf("# %zu documents, wanted 1\n", n);
	return d;
}

/* Parses text expecting failure; returns the code and fills e. */
static int parse_fails(const char *text, size_t len, struct err *e)
{
	struct ynode **docs = NULL;
	size_t n = 0;
	int r = y_parse(text, len, &docs, &n, e);

	if (r == 0) {
		for (size_t i = 0; i < n; i++)
			y_free(docs[i]);
		free(docs);
	}
	return r;
}

/* Emits n into a new string; caller frees. */
static char *emit(const struct ynode *n)
{
	struct strbuf sb = {0};

	y_emit(n, &sb);
	return sb_steal(&sb, NULL);
}

static const char *type_of(const struct ynode *n)
{
	return n ? y_typename(n->type) : "nothing";
}

/* The value of "v: TEXT", as the parser types it; caller frees the doc. */
static struct ynode *scalar_doc(const char *text, struct ynode **v)
{
	cleanup_free char *doc = xasprintf("v: %s\n", text);
	struct ynode *d = parse1(doc);

	*v = y_get(d, "v");
	return d;
}

static void is_type(const char *text, enum ytype want)
{
	struct ynode *v, *d = scalar_doc(text, &v);

	ok(v && v->type == want, "'%s' is %s (got %s)", text, y_typename(want), type_of(v));
	y_free(d);
}

static void is_int_text(const char *text, int64_t want)
{
	struct ynode *v, *d = scalar_doc(text, &v);

	if (!ok(v && v->type == Y_INT && v->i == want, "'%s' is the integer %lld", text,
		(long long)want))
		printf("# got %s %s\n", type_of(v), v ? v->str : "");
	y_free(d);
}

/* s with control characters shown as '_', for test names; caller frees. */
static char *shown(const char *s)
{
	char *c = xstrdup(s);

	for (char *p = c; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = '_';
	return c;
}

static void is_str_text(const char *text, const char *want)
{
	struct ynode *v, *d = scalar_doc(text, &v);
	cleanup_free char *t = shown(text), *w = shown(want);

	if (!ok(v && v->type == Y_STR && !strcmp(v->str, want), "'%s' is the string \"%s\"", t, w))
		printf("# got %s %s\n", type_of(v), v ? v->str : "");
	y_free(d);
}

static void test_scalars(void)
{
	static const char *const nulls[] = {"~", "", "null", "Null", "NULL"};
	static const char *const floats[] = {"1.5",  "-0.25", "+2.5", "1e3",   "6.02e+23", "1.5E-3",
					     ".5",   "1.",    ".inf", "-.inf", "+.inf",	   ".Inf",
					     ".INF", "-.Inf", ".nan", ".NaN",  ".NAN"};
	static const char *const strings[] = {"hello", "yes",	"no",	 "on",	  "off",
					      "y",     "n",	"nan",	 "inf",	  "infinity",
					      "0x",    "0o",	"0o8",	 "0xg",	  "1e",
					      "12:30", "1.2.3", "1_000", "0b101", "0X1F",
					      "-0x10", "+0o7",	"0x1p3", "0x1.8", "true_",
					      "nulls", "~x",	"1 2",	 "v1.2",  "localhost:5000"};

	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		is_type(nulls[i], Y_NULL);
	is_type("true", Y_BOOL);
	is_type("True", Y_BOOL);
	is_type("TRUE", Y_BOOL);
	is_type("false", Y_BOOL);
	is_type("False", Y_BOOL);
	is_type("FALSE", Y_BOOL);
	struct ynode *v, *d = scalar_doc("True", &v);
	ok(v && v->i == 1 && !strcmp(v->str, "true"), "True is 1, shown as true");
	y_free(d);
	d = scalar_doc("FALSE", &v);
	ok(v && v->i == 0 && !strcmp(v->str, "false"), "FALSE is 0, shown as false");
	y_free(d);

	is_int_text("0", 0);
	is_int_text("42", 42);
	is_int_text("-17", -17);
	is_int_text("+5", 5);
	is_int_text("-0", 0);
	is_int_text("007", 7);
	is_int_text("0400", 256); /* YAML 1.1 octal, as Kubernetes reads it */
	is_int_text("-010", -8);
	is_int_text("09", 9);
	is_int_text("0x1F", 31);
	is_int_text("0xff", 255);
	is_int_text("0o17", 15);
	is_int_text("0o0", 0);
	is_int_text("9223372036854775807", INT64_MAX);
	is_int_text("-9223372036854775807", -INT64_MAX);
	is_int_text("-9223372036854775808", INT64_MIN);
	d = scalar_doc("0x1F", &v);
	ok(v && !strcmp(v->str, "31"), "an integer's text is canonical (0x1F is \"31\")");
	y_free(d);
	is_type("99999999999999999999", Y_FLOAT);

	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++)
		is_type(floats[i], Y_FLOAT);
	d = scalar_doc("1.50", &v);
	ok(v && !strcmp(v->str, "1.50"), "a float keeps its text");
	y_free(d);

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		is_str_text(strings[i], strings[i]);

	is_str_text("\"3\"", "3");
	is_str_text("'3'", "3");
	is_str_text("\"true\"", "true");
	is_str_text("'null'", "null");
	is_str_text("\"\"", "");
	is_str_text("''", "");
	is_str_text("\"~\"", "~");
	is_str_text("\"0x10\"", "0x10");
	is_str_text("!!str 3", "3");
	is_str_text("|\n  two\n  lines\n", "two\nlines\n");
	is_str_text(">-\n  folded\n  text\n", "folded text");
}

static void test_keys_and_lines(void)
{
	struct ynode *d = parse1("a: 1\nb:\n  c: [x, 2]\n  d: {e: null}\n");

	ok(d && d->type == Y_MAP && d->n == 2, "a map of two keys");
	ok(y_get(d, "a") && y_get(d, "a")->line == 1, "a node knows its line (1)");
	ok(y_path(d, "b.c") && y_path(d, "b.c")->line == 3, "a node knows its line (3)");
	struct ynode *c = y_path(d, "b.c");
	ok(c && c->type == Y_SEQ && c->n == 2 && c->v[0]->type == Y_STR && c->v[1]->type == Y_INT,
	   "a flow sequence of a string and an integer");
	ok(y_path(d, "b.d.e") && y_path(d, "b.d.e")->type == Y_NULL, "null in a flow map");
	y_free(d);

	d = parse1("0x10: hex\ntrue: yes\n");
	ok(d && y_get(d, "16") && y_get(d, "true"), "plain keys are resolved, then used as text");
	y_free(d);
}

static void test_streams(void)
{
	const char *text = "a: 1\n---\n# only a comment\n---\nb: 2\n...\n---\n- x\n";
	struct ynode **docs = NULL;
	size_t n = 0;
	struct err e = {0};

	int r = y_parse(text, strlen(text), &docs, &n, &e);
	ok(r == 0 && n == 4, "four documents in a stream (%zu)", n);
	if (r == 0 && n == 4) {
		ok(y_get(docs[0], "a") && y_get(docs[0], "a")->i == 1, "the first is a: 1");
		ok(docs[1]->type == Y_NULL, "a comment-only document is null");
		ok(y_get(docs[2], "b") && y_get(docs[2], "b")->i == 2, "the third is b: 2");
		ok(docs[3]->type == Y_SEQ && docs[3]->n == 1, "the fourth is a list");
	}
	for (size_t i = 0; i < n; i++)
		y_free(docs[i]);
	free(docs);

	docs = NULL;
	n = 99;
	r = y_parse("", 0, &docs, &n, &e);
	ok(r == 0 && n == 0, "an empty buffer has no documents");
	free(docs);
	docs = NULL;
	r = y_parse(NULL, 0, &docs, &n, &e);
	ok(r == 0 && n == 0, "a NULL buffer has no documents");
	free(docs);
	docs = NULL;
	r = y_parse("# nothing\n", 10, &docs, &n, &e);
	ok(r == 0 && n == 0, "a comment-only stream has no documents");
	free(docs);

	const char *two = "a: 1\n---\nb: 2\n";
	docs = NULL;
	r = y_parse(two, 5, &docs, &n, &e);
	ok(r == 0 && n == 1, "len bounds what is parsed");
	for (size_t i = 0; r == 0 && i < n; i++)
		y_free(docs[i]);
	free(docs);
}

static void rejects(const char *what, const char *text, const char *want)
{
	struct err e = {0};
	int r = parse_fails(text, strlen(text), &e);

	if (!ok(r == -EINVAL && strstr(e.msg, want), "rejects %s", what))
		printf("# returned %d, message \"%s\", wanted \"%s\"\n", r, e.msg, want);
}

static void test_rejects(void)
{
	struct err e = {0};

	rejects("a duplicate key", "a: 1\nb: 2\na: 3\n", "line 3");
	rejects("a duplicate key (named)", "a: 1\nb: 2\na: 3\n", "duplicate key \"a\"");
	rejects("a duplicate key in a nested map", "top:\n  x: 1\n  y: 2\n  x: 3\n", "line 4");
	rejects("keys equal once resolved", "16: a\n0x10: b\n", "duplicate");
	rejects("an alias", "a: &anchor 1\nb: *anchor\n", "alias");
	rejects("an alias (line)", "a: &anchor 1\nb: *anchor\n", "line 2");
	rejects("a merge key with an alias", "base: &b {x: 1}\nd:\n  <<: *b\n", "line 3");
	rejects("a map as a key", "? {a: 1}\n: x\n", "key");
	rejects("bad indentation", "a:\n  b: 1\n c: 2\n", "line 3");
	rejects("an unclosed flow list", "a: 1\nb: [1, 2\nc: 3\n", "line");
	rejects("an unclosed quote", "a: 1\nb: \"abc\n", "line");
	rejects("a tab as indentation", "a:\n\tb: 1\n", "line 2");

	const char nul[] = "a: 1\nb: x\0y\n";
	int r = parse_fails(nul, sizeof(nul) - 1, &e);
	ok(r == -EINVAL && strstr(e.msg, "NUL"), "rejects NUL bytes (%s)", e.msg);

	struct strbuf deep = {0}, ok_deep = {0};
	for (int i = 0; i < 200; i++)
		sb_puts(&deep, "[");
	for (int i = 0; i < 200; i++)
		sb_puts(&deep, "]");
	r = parse_fails(deep.buf, deep.len, &e);
	ok(r == -EINVAL && strstr(e.msg, "deeply nested") && strstr(e.msg, "line 1"),
	   "rejects 200 levels of nesting (%s)", e.msg);
	for (int i = 0; i < Y_MAX_DEPTH; i++)
		sb_printf(&ok_deep, "%*sk:\n", 2 * i, "");
	sb_printf(&ok_deep, "%*sleaf\n", 2 * Y_MAX_DEPTH, "");
	struct ynode *d = parse1(ok_deep.buf);
	ok(d != NULL, "accepts %d levels of nesting", Y_MAX_DEPTH);
	y_free(d);
	sb_free(&deep);
	sb_free(&ok_deep);

	struct strbuf wide = {0};
	sb_puts(&wide, "[");
	for (int i = 0; i <= Y_MAX_NODES; i++)
		sb_puts(&wide, "0,");
	sb_puts(&wide, "0]");
	r = parse_fails(wide.buf, wide.len, &e);
	ok(r == -EINVAL && strstr(e.msg, "too large"), "rejects more than %d nodes (%s)",
	   Y_MAX_NODES, e.msg);
	sb_free(&wide);
}

/* A Deployment as people write one, with the awkward scalars they use. */
#define DEPLOYMENT                                                                                 \
	"apiVersion: apps/v1\n"                                                                    \
	"kind: Deployment\n"                                                                       \
	"metadata:\n"                                                                              \
	"  name: web\n"                                                                            \
	"  namespace: default\n"                                                                   \
	"  labels: {app: web, version: \"2\", canary: \"false\"}\n"                                \
	"  annotations:\n"                                                                         \
	"    description: |\n"                                                                     \
	"      The web front end.\n"                                                               \
	"      Serves / and /api.\n"                                                               \
	"    empty: \"\"\n"                                                                        \
	"    enabled: \"yes\"\n"                                                                   \
	"    ratio: \"0.5\"\n"                                                                     \
	"spec:\n"                                                                                  \
	"  replicas: 3\n"                                                                          \
	"  selector:\n"                                                                            \
	"    matchLabels:\n"                                                                       \
	"      app: web\n"                                                                         \
	"  strategy:\n"                                                                            \
	"    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}\n"                                  \
	"  template:\n"                                                                            \
	"    metadata:\n"                                                                          \
	"      labels:\n"                                                                          \
	"        app: web\n"                                                                       \
	"    spec:\n"                                                                              \
	"      containers:\n"                                                                      \
	"      - name: nginx\n"                                                                    \
	"        image: nginx:1.25\n"                                                              \
	"        args: [\"--port\", \"8080\", --verbose, \"true\", \"null\", \"~\", \"\"]\n"       \
	"        ports:\n"                                                                         \
	"        - containerPort: 8080\n"                                                          \
	"          name: http\n"                                                                   \
	"        resources:\n"                                                                     \
	"          requests: {cpu: 100m, memory: 128Mi}\n"                                         \
	"          limits: {cpu: 1.5, memory: 256Mi}\n"                                            \
	"        env:\n"                                                                           \
	"        - name: MODE\n"                                                                   \
	"          value: \"production\"\n"                                                        \
	"        - name: WORKERS\n"                                                                \
	"          value: \"4\"\n"                                                                 \
	"        - name: SCRIPT\n"                                                                 \
	"          value: |-\n"                                                                    \
	"            set -e\n"                                                                     \
	"            echo \"a: b\" # not a comment\n"                                              \
	"              indented\n"                                                                 \
	"        command: [sh, -c, 'echo \"it''s\" && sleep infinity']\n"                          \
	"      nodeSelector: {kubernetes.io/os: linux}\n"                                          \
	"      tolerations:\n"                                                                     \
	"      - {key: spot, operator: Exists}\n"                                                  \
	"      volumes: []\n"                                                                      \
	"      securityContext: {}\n"                                                              \
	"      hostname: ~\n"

static void test_emit(void)
{
	struct ynode *m = y_map();
	y_set(m, "zeta", y_int(1));
	y_set(m, "alpha", y_str("a"));
	y_set(m, "mid", y_map());
	y_set(y_get(m, "mid"), "z", y_bool(true));
	y_set(y_get(m, "mid"), "b", y_null());
	cleanup_free char *out = emit(m);
	char *a = strstr(out, "alpha"), *mid = strstr(out, "mid"), *z = strstr(out, "zeta");
	char *b = strstr(out, "  b:"), *zz = strstr(out, "  z:");
	ok(a && mid && z && a < mid && mid < z, "top-level keys are sorted");
	ok(b && zz && b < zz, "nested keys are sorted");
	ok(out[strlen(out) - 1] == '\n', "the output ends with a newline");
	ok(strstr(out, "zeta: 1\n") && strstr(out, "  z: true\n"), "ints and bools are plain");
	y_free(m);

	static const struct {
		const char *s, *want;
	} quoted[] = {
		{"3", "v: \"3\"\n"},	     {"true", "v: \"true\"\n"}, {"yes", "v: \"yes\"\n"},
		{"No", "v: \"No\"\n"},	     {"null", "v: \"null\"\n"}, {"", "v: \"\"\n"},
		{"~", "v: \"~\"\n"},	     {"0x10", "v: \"0x10\"\n"}, {"1.5", "v: \"1.5\"\n"},
		{"-.inf", "v: \"-.inf\"\n"}, {".Inf", "v: \".Inf\"\n"}, {"+.inf", "v: \"+.inf\"\n"},
		{".NaN", "v: \".NaN\"\n"},   {"plain", "v: plain\n"},
	};
	for (size_t i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++) {
		struct ynode *d = y_map();
		y_set(d, "v", y_str(quoted[i].s));
		cleanup_free char *text = emit(d);
		if (!ok(!strcmp(text, quoted[i].want), "the string \"%s\" is written %s",
			quoted[i].s,
			quoted[i].s[0] && strcmp(quoted[i].s, "plain") ? "quoted" : "as needed"))
			printf("# got: %s", text);
		y_free(d);
	}

	struct ynode *keys = y_map();
	y_set(keys, "3", y_str("three"));
	y_set(keys, "true", y_str("t"));
	cleanup_free char *kt = emit(keys);
	struct ynode *kb = parse1(kt);
	ok(kb && y_equal(keys, kb), "keys that look like other types round-trip");
	y_free(keys);
	y_free(kb);

	struct ynode *e = y_map();
	cleanup_free char *et = emit(e);
	ok(!strcmp(et, "{}\n"), "an empty map is {} and a newline");
	y_free(e);
	e = y_seq();
	cleanup_free char *st = emit(e);
	ok(st[strlen(st) - 1] == '\n', "an empty list ends with a newline");
	y_free(e);
	e = y_str("x");
	cleanup_free char *xt = emit(e);
	struct ynode *xb = parse1(xt);
	ok(xt[strlen(xt) - 1] == '\n' && xb && y_equal(e, xb), "a scalar document round-trips");
	y_free(e);
	y_free(xb);
}

static void test_string_round_trip(void)
{
	static const char *const strings[] = {
		"a\nb",	      "a\nb\n",	  "a\n\n",     "\n",	  "\n\nlead", "  indented\nx",
		"trail \nx",  "x\n  y\n", "tab\there", "a\r\nb",  "#not\nb",  "key: v\n- item\n",
		"- a",	      ": x",	  "a: b",      "#x",	  "x #y",     " lead",
		"trail ",     "@at",	  "`b",	       "{x}",	  "[x]",      "*a",
		"&a",	      "!t",	  "%p",	       "|",	  ">",	      "'",
		"\"",	      "\\",	  "é ünïcödé", "-",	  "---",      "...",
		"? q",	      "a,b",	  "null",      "~",	  "True",     "0o17",
		"1e3",	      "+1",	  ".5",	       "OFF",	  "N",	      "",
		"line\n\n\n", "\ttab\n",  "bell\a",    "a\n \nb", "end\\\n",  "   ",
	};

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		struct ynode *d = y_map();
		y_set(d, "s", y_str(strings[i]));
		struct ynode *seq = y_submap(d, "m");
		y_set(seq, "in", y_seq());
		y_push(y_get(seq, "in"), y_str(strings[i]));
		y_set(d, strings[i], y_str("as a key"));
		cleanup_free char *text = emit(d);
		struct ynode *back = parse1(text);
		cleanup_free char *name = shown(strings[i]);
		if (!ok(back && y_equal(d, back),
			"the string \"%s\" round-trips, as a value and as a key", name))
			printf("# emitted:\n%s", text);
		y_free(d);
		y_free(back);
	}
}

static void test_round_trip(void)
{
	struct ynode *d = parse1(DEPLOYMENT);
	ok(d != NULL, "the Deployment parses");
	if (!d)
		return;
	ok(y_path(d, "spec.replicas")->type == Y_INT, "replicas is an integer");
	ok(y_path(d, "metadata.labels.version")->type == Y_STR, "a quoted \"2\" is a string");
	ok(y_path(d, "spec.template.spec.hostname")->type == Y_NULL, "~ is null");
	ok(y_path(d, "spec.template.spec.containers") &&
		   y_path(d, "spec.template.spec.containers")->v[0]->type == Y_MAP,
	   "containers hold maps");

	cleanup_free char *text = emit(d);
	struct ynode *back = parse1(text);
	ok(back && y_equal(d, back), "parse -> emit -> parse gives an equal tree");
	if (back && !y_equal(d, back))
		printf("# emitted:\n%s", text);
	cleanup_free char *again = back ? emit(back) : NULL;
	ok(again && !strcmp(text, again), "emitting again gives the same text");
	ok(text[strlen(text) - 1] == '\n', "the document ends with a newline");
	ok(text[0] == 'a' && strstr(text, "apiVersion") < strstr(text, "kind") &&
		   strstr(text, "kind") < strstr(text, "metadata") &&
		   strstr(text, "metadata") < strstr(text, "spec"),
	   "top-level fields appear sorted");
	ok(!strncmp(text, "apiVersion: apps/v1\n", 20), "no document marker before the map");
	y_free(back);
	y_free(d);
}

static void test_tree(void)
{
	struct ynode *m = y_map();

	ok(!y_get(m, "a") && !y_get(NULL, "a"), "y_get of a missing key is NULL");
	y_set(m, "a", y_int(1));
	y_set(m, "b", y_str("two"));
	y_set(m, "a", y_int(10));
	ok(m->n == 2 && y_get(m, "a")->i == 10, "y_set replaces a value in place");
	struct ynode *s = y_str("x");
	ok(!y_get(s, "a") && !y_take(s, "a") && !y_path(s, "a"), "a scalar has no keys");
	y_free(s);

	struct ynode *sub = y_submap(m, "c");
	ok(sub && sub->type == Y_MAP && y_get(m, "c") == sub, "y_submap creates a map");
	ok(y_submap(m, "c") == sub, "y_submap returns the existing map");
	y_set(sub, "d", y_bool(false));
	ok(y_path(m, "c.d") && y_path(m, "c.d")->type == Y_BOOL, "y_path follows keys");
	ok(y_path(m, "") == m, "an empty path is the node itself");
	ok(!y_path(m, "c.x") && !y_path(m, "a.b") && !y_path(m, "x.y.z"),
	   "y_path of missing is NULL");
	ok(y_path_str(m, "b") && !strcmp(y_path_str(m, "b"), "two"), "y_path_str of a string");
	ok(y_path_str(m, "a") && !strcmp(y_path_str(m, "a"), "10"), "y_path_str of an integer");
	ok(y_path_str(m, "c.d") && !strcmp(y_path_str(m, "c.d"), "false"), "y_path_str of a bool");
	ok(!y_path_str(m, "c") && !y_path_str(m, "nope"), "y_path_str of a map or nothing is NULL");
	y_set(m, "n", y_null());
	ok(!y_path_str(m, "n"), "y_path_str of null is NULL");

	struct ynode *c = y_clone(m);
	ok(c && c != m && y_equal(c, m), "a clone is equal");
	y_set(y_get(c, "c"), "d", y_bool(true));
	ok(!y_equal(c, m) && y_path(m, "c.d")->i == 0, "changing a clone leaves the original");
	ok(!y_clone(NULL), "y_clone(NULL) is NULL");

	struct ynode *t = y_take(m, "b");
	ok(t && t->type == Y_STR && !strcmp(t->str, "two"), "y_take returns the value");
	ok(!y_get(m, "b") && m->n == 3 && y_get(m, "a") && y_get(m, "c") && y_get(m, "n"),
	   "y_take removes the key and keeps the others");
	ok(!y_take(m, "b"), "y_take of a missing key is NULL");
	y_free(t);
	ok(y_del(m, "n") && !y_del(m, "n"), "y_del says whether the key was there");

	struct ynode *a = parse1("x: 1\ny: [a, b]\nz: {p: true}\n");
	struct ynode *b = parse1("z: {p: true}\ny: [a, b]\nx: 1\n");
	struct ynode *b2 = parse1("z: {p: true}\ny: [b, a]\nx: 1\n");
	struct ynode *b3 = parse1("z: {p: true}\ny: [a, b]\nx: \"1\"\n");
	struct ynode *b4 = parse1("z: {p: true}\ny: [a, b]\nx: 1\nw: 0\n");
	ok(a && b && y_equal(a, b), "map order does not matter to y_equal");
	ok(b2 && !y_equal(a, b2), "list order does");
	ok(b3 && !y_equal(a, b3), "the integer 1 is not the string \"1\"");
	ok(b4 && !y_equal(a, b4) && !y_equal(b4, a), "an extra key makes maps differ");
	ok(y_equal(NULL, NULL) && !y_equal(a, NULL) && !y_equal(NULL, a), "y_equal and NULL");
	y_free(a);
	y_free(b);
	y_free(b2);
	y_free(b3);
	y_free(b4);

	struct ynode *seq = y_seq();
	for (int i = 0; i < 10; i++)
		y_push(seq, y_int(i));
	ok(seq->n == 10 && seq->v[9]->i == 9, "y_push appends");
	y_free(seq);
	y_free(c);
	y_free(m);
	y_free(NULL);
}

static void test_parse_one(void)
{
	struct ynode *d = NULL;
	struct err e = {0};
	const char *one = "---\ndata: {a: b}\n---\n";

	ok(obj_parse_one(one, strlen(one), &d, &e) == 0 && d && d->type == Y_MAP,
	   "one document (and an empty one) is an object");
	y_free(d);
	d = NULL;
	ok(obj_parse_one("", 0, &d, &e) == -EINVAL && strstr(e.msg, "empty"), "no document: %s",
	   e.msg);
	ok(obj_parse_one("a: 1\n---\nb: 2\n", 14, &d, &e) == -EINVAL &&
		   strstr(e.msg, "2 documents"),
	   "two documents: %s", e.msg);
	ok(obj_parse_one("a: [\n", 5, &d, &e) == -EINVAL && strstr(e.msg, "line"), "bad YAML: %s",
	   e.msg);
	cleanup_free char *big = xmalloc(OBJ_MAX_SIZE + 2);
	memset(big, '#', OBJ_MAX_SIZE + 1);
	big[OBJ_MAX_SIZE + 1] = 0;
	ok(obj_parse_one(big, OBJ_MAX_SIZE + 1, &d, &e) == -EFBIG, "too large: %s", e.msg);
}

/* Parses and normalizes text as kind k at ns/name; NULL (reported) on failure. */
static struct ynode *normalized(const struct kind *k, const char *ns, const char *name,
				const char *text)
{
	struct ynode *d = NULL;
	struct err e = {0};

	if (obj_parse_one(text, strlen(text), &d, &e) < 0 ||
	    obj_normalize(k, ns, name, d, &e) < 0) {
		printf("# %s\n", e.msg);
		y_free(d);
		return NULL;
	}
	return d;
}

static void normalize_rejects(const struct kind *k, const char *ns, const char *name,
			      const char *text, const char *want)
{
	struct ynode *d = NULL;
	struct err e = {0};
	int r = obj_parse_one(text, strlen(text), &d, &e);

	if (r == 0)
		r = obj_normalize(k, ns, name, d, &e);
	if (!ok(r == -EINVAL && strstr(e.msg, want), "rejects a contradiction in %s", want))
		printf("# returned %d, message \"%s\"\n", r, e.msg);
	y_free(d);
}

static void test_normalize(void)
{
	const struct kind *cm = kind_by_plural("configmaps");
	const struct kind *dep = kind_by_plural("deployments");
	const struct kind *ns = kind_by_name("Namespace");
	struct ynode *d;

	ok(cm && dep && ns, "the kinds exist");
	d = normalized(cm, "default", "cfg", "data: {a: b}\n");
	ok(d != NULL, "a ConfigMap with data only");
	ok(y_path_str(d, "apiVersion") && !strcmp(y_path_str(d, "apiVersion"), "v1"),
	   "the path fills apiVersion");
	ok(y_path_str(d, "kind") && !strcmp(y_path_str(d, "kind"), "ConfigMap"),
	   "the path fills kind");
	ok(y_path_str(d, "metadata.name") && !strcmp(y_path_str(d, "metadata.name"), "cfg"),
	   "the path fills metadata.name");
	ok(y_path_str(d, "metadata.namespace") &&
		   !strcmp(y_path_str(d, "metadata.namespace"), "default"),
	   "the path fills metadata.namespace");
	y_free(d);

	d = normalized(
		cm, "default", "cfg",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: default}\n"
		"data: {a: b}\n");
	ok(d != NULL, "a ConfigMap that agrees with its path");
	y_free(d);
	d = normalized(cm, "default", "cfg", "kind:\napiVersion: ~\nmetadata:\ndata: {a: b}\n");
	ok(d && y_path_str(d, "kind") && y_path_str(d, "metadata.name"),
	   "null fields are filled like absent ones");
	y_free(d);

	normalize_rejects(cm, "default", "cfg", "kind: Secret\ndata: {a: Yg==}\n", "kind");
	normalize_rejects(cm, "default", "cfg", "apiVersion: apps/v1\ndata: {a: b}\n",
			  "apiVersion");
	normalize_rejects(cm, "default", "cfg", "metadata: {name: other}\n", "metadata.name");
	normalize_rejects(cm, "default", "cfg", "metadata: {namespace: prod}\n",
			  "metadata.namespace");
	normalize_rejects(ns, "", "team", "metadata: {name: team, namespace: default}\n",
			  "metadata.namespace");
	normalize_rejects(cm, "default", "cfg", "spec: {}\n", "spec");
	normalize_rejects(cm, "default", NULL, "data: {a: b}\n", "metadata.name");
	normalize_rejects(cm, "default", "Bad_Name", "data: {a: b}\n", "metadata.name");
	normalize_rejects(cm, "default", "cfg", "data: {a: 1}\n", "data[a]");

	struct err e = {0};
	struct ynode *seq = y_seq();
	ok(obj_normalize(cm, "default", "cfg", seq, &e) == -EINVAL && strstr(e.msg, "map"),
	   "a list is not an object: %s", e.msg);
	y_free(seq);

	d = normalized(cm, "default", NULL, "metadata: {name: self}\ndata: {a: b}\n");
	ok(d && !strcmp(y_path_str(d, "metadata.name"), "self"), "a document may name itself");
	y_free(d);

	d = normalized(dep, "default", "web", DEPLOYMENT);
	ok(d != NULL, "a Deployment normalizes");
	ok(d && y_path_str(d, "apiVersion") && !strcmp(y_path_str(d, "apiVersion"), "apps/v1"),
	   "a Deployment is apps/v1");
	ok(d && y_path(d, "spec.revisionHistoryLimit"), "the schema filled defaults");
	y_free(d);
	normalize_rejects(dep, "default", "api", DEPLOYMENT, "metadata.name");
	normalize_rejects(dep, "prod", "web", DEPLOYMENT, "metadata.namespace");

	d = normalized(ns, "", "team", "metadata: {labels: {a: b}}\n");
	ok(d && !y_path(d, "metadata.namespace") && !strcmp(y_path_str(d, "kind"), "Namespace"),
	   "a Namespace gets no namespace");
	y_free(d);
}

static struct ynode *deployment(const char *extra)
{
	cleanup_free char *text = xasprintf("%s%s", DEPLOYMENT, extra);
	return normalized(kind_by_plural("deployments"), "default", "web", text);
}

static void test_merge(void)
{
	struct err e = {0};
	bool changed = false;
	int64_t t0 = 1700000000LL * 1000000000LL;

	struct ynode *cur = deployment("");
	if (!ok(cur != NULL, "the Deployment normalizes for merging"))
		return;
	y_set(y_submap(cur, "metadata"), "uid", y_str("forged"));
	y_set(y_submap(cur, "metadata"), "generation", y_int(42));
	ok(obj_merge(NULL, cur, 7, t0, &changed, &e) == 0 && changed, "a create merges (changed)");
	const char *uid = y_path_str(cur, "metadata.uid");
	ok(uid && strlen(uid) == 36 && strcmp(uid, "forged"), "create sets a fresh uid (%s)",
	   uid ? uid : "none");
	ok(y_path_str(cur, "metadata.creationTimestamp") &&
		   !strcmp(y_path_str(cur, "metadata.creationTimestamp"), "2023-11-14T22:13:20Z"),
	   "create sets creationTimestamp from now");
	ok(y_path(cur, "metadata.generation") &&
		   y_path(cur, "metadata.generation")->type == Y_INT &&
		   y_path(cur, "metadata.generation")->i == 1,
	   "create sets generation 1");
	ok(obj_rv(cur) == 7 && y_path(cur, "metadata.resourceVersion")->type == Y_STR,
	   "create sets resourceVersion (a string) to rv");
	cleanup_free char *uid0 = xstrdup(uid ? uid : "");

	/* The same document again. */
	struct ynode *doc = deployment("");
	ok(obj_merge(cur, doc, 8, t0 + 5000000000LL, &changed, &e) == 0 && !changed,
	   "an identical document is no change");
	ok(obj_rv(doc) == 7 && y_equal(doc, cur), "and merges to the stored object");
	y_free(doc);

	/* A label only. */
	doc = deployment("");
	y_set(y_path(doc, "metadata.labels"), "team", y_str("blue"));
	ok(obj_merge(cur, doc, 8, t0 + 5000000000LL, &changed, &e) == 0 && changed,
	   "a label change is a change");
	ok(y_path(doc, "metadata.generation")->i == 1, "a label change keeps generation");
	ok(obj_rv(doc) == 8, "and takes the new resourceVersion");
	ok(!strcmp(y_path_str(doc, "metadata.uid"), uid0), "update keeps uid");
	ok(!strcmp(y_path_str(doc, "metadata.creationTimestamp"), "2023-11-14T22:13:20Z"),
	   "update keeps creationTimestamp");
	y_free(cur);
	cur = doc;

	/* The spec. */
	doc = deployment("");
	y_set(y_path(doc, "metadata.labels"), "team", y_str("blue"));
	y_set(y_get(doc, "spec"), "replicas", y_int(5));
	y_set(y_submap(doc, "metadata"), "uid", y_str("forged"));
	y_set(y_submap(doc, "metadata"), "creationTimestamp", y_str("1999-01-01T00:00:00Z"));
	ok(obj_merge(cur, doc, 9, t0 + 9000000000LL, &changed, &e) == 0 && changed,
	   "a spec change is a change");
	ok(y_path(doc, "metadata.generation")->i == 2, "a spec change bumps generation");
	ok(obj_rv(doc) == 9, "resourceVersion 9");
	ok(!strcmp(y_path_str(doc, "metadata.uid"), uid0) &&
		   !strcmp(y_path_str(doc, "metadata.creationTimestamp"), "2023-11-14T22:13:20Z"),
	   "the document cannot set uid or creationTimestamp");
	y_free(cur);
	cur = doc;

	/* Status is the server's: kept when the new document has none. */
	y_set(cur, "status", parse1("{replicas: 5, readyReplicas: 3}"));
	doc = deployment("");
	y_set(y_path(doc, "metadata.labels"), "team", y_str("blue"));
	y_set(y_get(doc, "spec"), "replicas", y_int(5));
	ok(obj_merge(cur, doc, 10, t0, &changed, &e) == 0 && !changed,
	   "the same spec without status is no change");
	ok(y_path(doc, "status.readyReplicas") && y_path(doc, "status.readyReplicas")->i == 3,
	   "status is kept");
	ok(y_path(doc, "metadata.generation")->i == 2 && obj_rv(doc) == 9,
	   "no change keeps generation and resourceVersion");
	y_free(doc);

	doc = deployment("");
	y_set(y_path(doc, "metadata.labels"), "team", y_str("blue"));
	y_set(y_get(doc, "spec"), "replicas", y_int(5));
	y_set(doc, "status", parse1("{replicas: 5, readyReplicas: 5}"));
	ok(obj_merge(cur, doc, 10, t0, &changed, &e) == 0 && changed,
	   "a status change is a change");
	ok(y_path(doc, "metadata.generation")->i == 2, "a status change keeps generation");
	y_free(doc);

	/* Optimistic concurrency. */
	doc = deployment("");
	y_set(y_submap(doc, "metadata"), "resourceVersion", y_str("7"));
	ok(obj_merge(cur, doc, 10, t0, &changed, &e) == -ESTALE && strstr(e.msg, "resourceVersion"),
	   "a stale resourceVersion is rejected: %s", e.msg);
	y_free(doc);
	doc = deployment("");
	y_set(y_submap(doc, "metadata"), "resourceVersion", y_str("9"));
	y_set(y_get(doc, "spec"), "replicas", y_int(2));
	ok(obj_merge(cur, doc, 10, t0, &changed, &e) == 0 && changed && obj_rv(doc) == 10 &&
		   y_path(doc, "metadata.generation")->i == 3,
	   "the current resourceVersion is accepted");
	y_free(doc);

	y_free(cur);
}

/* JSON out, and back in through the YAML parser unchanged. */
static void test_json(void)
{
	struct ynode *d =
		parse1("a: [1, -2.5e3, true, null, \"x\\\"y\\\\z\\n\\u0001\"]\nb: {c: .inf}\n");
	struct strbuf sb = {0};

	y_emit_json(d, &sb);
	ok(!strcmp(sb.buf,
		   "{\"a\":[1,-2.5e3,true,null,\"x\\\"y\\\\z\\n\\u0001\"],\"b\":{\"c\":null}}"),
	   "JSON: %s", sb.buf);
	struct ynode *back = parse1(sb.buf);
	ok(back && y_equal(y_get(back, "a"), y_get(d, "a")), "JSON reads back as the same tree");
	y_free(back);
	y_free(d);
	sb_free(&sb);
}

int main(void)
{
	test_scalars();
	test_keys_and_lines();
	test_streams();
	test_rejects();
	test_emit();
	test_string_round_trip();
	test_round_trip();
	test_tree();
	test_parse_one();
	test_json();
	test_normalize();
	test_merge();
	return done_testing();
}
