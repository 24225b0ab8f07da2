/*
 * selector.c: Kubernetes label selectors, read from text or from a
 * document, and matched against a labels map.
 *
 * sel_parse() and sel_from_doc() both reduce what they read to one list of
 * requirements (a key, an operator, a sorted set of values); sel_finish()
 * then sorts the list by key, operator and values and drops exact repeats,
 * so two selectors that say the same thing print the same sel_string().
 * sel_matches() ANDs the requirements over the labels map.
 *
 * The text form is read by a small lexer (words, and the operators
 * `,` `(` `)` `=` `==` `!=` `!`) and a parser with one token of lookahead;
 * its messages name the 1-based column in the text. The document form's
 * messages name the field path, the way schema.c does
 * ("spec.selector.matchExpressions[0].operator: ...").
 */
#define _GNU_SOURCE
#include "selector.h"
#include "schema.h"

#include <ctype.h>
#include <errno.h>

/* The order requirements on one key are printed in. */
enum sel_op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT_EXISTS };

struct strvec {
	char **v;
	size_t n, cap;
};

struct req {
	char *key;
	enum sel_op op;
	struct strvec vals; /* a set: sorted, no repeats; one value for = and != */
};

struct selector {
	struct req *reqs;
	size_t n, cap;
};

/* Appends s, which is consumed. */
static void sv_push(struct strvec *sv, char *s)
{
	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? 2 * sv->cap : 4;
		sv->v = xrealloc(sv->v, sv->cap * sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
}

static void sv_free(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	*sv = (struct strvec){0};
}

/* Sorts sv and drops repeats, so it can be searched and compared. */
static void sv_make_set(struct strvec *sv)
{
	size_t j = 0;

	if (sv->n > 1)
		qsort(sv->v, sv->n, sizeof(*sv->v), cmp_strp);
	for (size_t i = 0; i < sv->n; i++) {
		if (j > 0 && strcmp(sv->v[j - 1], sv->v[i]) == 0)
			free(sv->v[i]);
		else
			sv->v[j++] = sv->v[i];
	}
	sv->n = j;
}

static bool sv_has(const struct strvec *sv, const char *s)
{
	return sv->n && bsearch(&s, sv->v, sv->n, sizeof(*sv->v), cmp_strp);
}

/* Adds a requirement. key and the strings in vals (may be NULL) are consumed. */
static void sel_add(struct selector *s, char *key, enum sel_op op, struct strvec *vals)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4;
		s->reqs = xrealloc(s->reqs, s->cap * sizeof(*s->reqs));
	}
	struct req *r = &s->reqs[s->n++];
	r->key = key;
	r->op = op;
	r->vals = (struct strvec){0};
	if (vals) {
		r->vals = *vals;
		*vals = (struct strvec){0};
		sv_make_set(&r->vals);
	}
}

static int req_cmp(const void *a, const void *b)
{
	const struct req *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	if (x->op != y->op)
		return x->op < y->op ? -1 : 1;
	for (size_t i = 0; i < x->vals.n && i < y->vals.n; i++) {
		c = strcmp(x->vals.v[i], y->vals.v[i]);
		if (c != 0)
			return c;
	}
	return (x->vals.n > y->vals.n) - (x->vals.n < y->vals.n);
}

/* Puts the requirements in canonical order and drops exact repeats. */
static void sel_finish(struct selector *s)
{
	size_t j = 0;

	if (s->n > 1)
		qsort(s->reqs, s->n, sizeof(*s->reqs), req_cmp);
	for (size_t i = 0; i < s->n; i++) {
		if (j > 0 && req_cmp(&s->reqs[j - 1], &s->reqs[i]) == 0) {
			free(s->reqs[i].key);
			sv_free(&s->reqs[i].vals);
		} else {
			s->reqs[j++] = s->reqs[i];
		}
	}
	s->n = j;
}

void sel_free(struct selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->reqs[i].key);
		sv_free(&s->reqs[i].vals);
	}
	free(s->reqs);
	free(s);
}

/* ---- The text form ---- */

enum tok_kind {
	TOK_END,
	TOK_WORD,
	TOK_COMMA,
	TOK_OPEN,
	TOK_CLOSE,
	TOK_EQ,
	TOK_EQEQ,
	TOK_NE,
	TOK_NOT,
	TOK_BAD, /* '<' or '>': Kubernetes' Gt and Lt, which selectors here do not have */
};

struct tok {
	enum tok_kind kind;
	const char *s; /* into the text */
	size_t len;
	size_t col; /* 1-based */
};

struct lexer {
	const char *text, *p;
	struct tok ahead;
	bool peeked;
};

static bool is_special(char c)
{
	return c != 0 && strchr(",()=!<>", c) != NULL;
}

static struct tok lex(struct lexer *lx)
{
	while (isspace((unsigned char)*lx->p))
		lx->p++;
	struct tok t = {.s = lx->p, .len = 1, .col = (size_t)(lx->p - lx->text) + 1};
	switch (*lx->p) {
	case 0:
		t.kind = TOK_END;
		t.len = 0;
		break;
	case ',':
		t.kind = TOK_COMMA;
		break;
	case '(':
		t.kind = TOK_OPEN;
		break;
	case ')':
		t.kind = TOK_CLOSE;
		break;
	case '=':
		t.kind = lx->p[1] == '=' ? TOK_EQEQ : TOK_EQ;
		break;
	case '!':
		t.kind = lx->p[1] == '=' ? TOK_NE : TOK_NOT;
		break;
	case '<':
	case '>':
		t.kind = TOK_BAD;
		break;
	default:
		t.kind = TOK_WORD;
		t.len = 0;
		while (t.s[t.len] && !isspace((unsigned char)t.s[t.len]) && !is_special(t.s[t.len]))
			t.len++;
	}
	if (t.kind == TOK_EQEQ || t.kind == TOK_NE)
		t.len = 2;
	lx->p += t.len;
	return t;
}

static struct tok peek(struct lexer *lx)
{
	if (!lx->peeked) {
		lx->ahead = lex(lx);
		lx->peeked = true;
	}
	return lx->ahead;
}

static struct tok next(struct lexer *lx)
{
	struct tok t = peek(lx);
	lx->peeked = false;
	return t;
}

static bool is_word(struct tok t, const char *w)
{
	return t.kind == TOK_WORD && t.len == strlen(w) && memcmp(t.s, w, t.len) == 0;
}

/* "column 7: expected WANT, found 'x'"; returns -EINVAL. */
static int syntax_error(struct err *e, struct tok t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int syntax_error(struct err *e, struct tok t, const char *fmt, ...)
{
	char want[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	if (t.kind == TOK_END)
		return err_set(e, EINVAL, "column %zu: expected %s, found the end of the text",
			       t.col, want);
	return err_set(e, EINVAL, "column %zu: expected %s, found %s%.*s%s", t.col, want,
		       t.kind == TOK_WORD ? "\"" : "'", (int)t.len, t.s,
		       t.kind == TOK_WORD ? "\"" : "'");
}

typedef int (*label_check_fn)(const char *s, const char *path, struct err *e);

/* Copies t's text into *out (caller frees) once check accepts it. */
static int take(struct tok t, label_check_fn check, char **out, struct err *e)
{
	cleanup_free char *where = xasprintf("column %zu", t.col);
	char *s = xstrndup(t.s, t.len);
	int r = check(s, where, e);

	if (r < 0) {
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

/* The value after = == or !=; nothing there is the empty value, as in Kubernetes. */
static int parse_exact_value(struct lexer *lx, struct tok op, struct strvec *vals, struct err *e)
{
	struct tok t = peek(lx);
	char *v;
	int r;

	if (t.kind == TOK_END || t.kind == TOK_COMMA) {
		sv_push(vals, xstrdup(""));
		return 0;
	}
	if (t.kind != TOK_WORD)
		return syntax_error(e, t, "a value after '%.*s'", (int)op.len, op.s);
	next(lx);
	r = take(t, check_label_value, &v, e);
	if (r < 0)
		return r;
	sv_push(vals, v);
	return 0;
}

/*
 * The "(a, b)" after in or notin. A missing item ("(a,)", "(,a)") is the
 * empty value, as in Kubernetes; "()" is an error.
 */
static int parse_set(struct lexer *lx, struct tok op, const char *key, struct strvec *vals,
		     struct err *e)
{
	struct tok t = next(lx);
	char *v;
	int r;

	if (t.kind != TOK_OPEN)
		return syntax_error(e, t, "'(' after '%.*s'", (int)op.len, op.s);
	if (peek(lx).kind == TOK_CLOSE)
		return err_set(e, EINVAL, "column %zu: '%.*s' needs at least one value for \"%s\"",
			       peek(lx).col, (int)op.len, op.s, key);
	for (;;) {
		t = next(lx);
		if (t.kind == TOK_WORD) {
			r = take(t, check_label_value, &v, e);
			if (r < 0)
				return r;
			sv_push(vals, v);
			t = next(lx);
		} else if (t.kind == TOK_COMMA || t.kind == TOK_CLOSE) {
			sv_push(vals, xstrdup(""));
		} else {
			return syntax_error(e, t, "a value, ',' or ')' in the values of \"%s\"",
					    key);
		}
		if (t.kind == TOK_CLOSE)
			return 0;
		if (t.kind != TOK_COMMA)
			return syntax_error(e, t, "',' or ')' in the values of \"%s\"", key);
	}
}

/* What follows a key: an operator and its values, or nothing (exists). key is consumed. */
static int parse_operator(struct lexer *lx, struct selector *s, char *key, struct err *e)
{
	struct tok t = peek(lx);
	struct strvec vals = {0};
	enum sel_op op = OP_EXISTS;
	int r;

	if (t.kind == TOK_END || t.kind == TOK_COMMA) {
		sel_add(s, key, OP_EXISTS, NULL);
		return 0;
	}
	if (t.kind == TOK_EQ || t.kind == TOK_EQEQ || t.kind == TOK_NE) {
		next(lx);
		op = t.kind == TOK_NE ? OP_NE : OP_EQ;
		r = parse_exact_value(lx, t, &vals, e);
	} else if (is_word(t, "in") || is_word(t, "notin")) {
		next(lx);
		op = is_word(t, "in") ? OP_IN : OP_NOTIN;
		r = parse_set(lx, t, key, &vals, e);
	} else {
		r = syntax_error(e, t,
				 "an operator (=, ==, !=, in, notin), ',' or the end after \"%s\"",
				 key);
	}
	if (r < 0) {
		free(key);
		sv_free(&vals);
		return r;
	}
	sel_add(s, key, op, &vals);
	return 0;
}

static int parse_requirement(struct lexer *lx, struct selector *s, struct err *e)
{
	struct tok t = next(lx);
	char *key;
	int r;

	if (t.kind == TOK_NOT) {
		t = next(lx);
		if (t.kind != TOK_WORD)
			return syntax_error(e, t, "a label key after '!'");
		r = take(t, check_label_key, &key, e);
		if (r < 0)
			return r;
		sel_add(s, key, OP_NOT_EXISTS, NULL);
		return 0;
	}
	if (t.kind != TOK_WORD)
		return syntax_error(e, t, "a label key or '!key'");
	r = take(t, check_label_key, &key, e);
	if (r < 0)
		return r;
	return parse_operator(lx, s, key, e);
}

int sel_parse(const char *text, struct selector **out, struct err *e)
{
	struct lexer lx = {.text = text ? text : ""};
	struct selector *s = xcalloc(1, sizeof(*s));
	int r = 0;

	*out = NULL;
	lx.p = lx.text;
	if (peek(&lx).kind != TOK_END) {
		for (;;) {
			r = parse_requirement(&lx, s, e);
			if (r < 0)
				break;
			struct tok t = next(&lx);
			if (t.kind == TOK_END)
				break;
			if (t.kind != TOK_COMMA) {
				r = syntax_error(e, t, "',' or the end of the text");
				break;
			}
		}
	}
	if (r < 0) {
		sel_free(s);
		return r;
	}
	sel_finish(s);
	*out = s;
	return 0;
}

/* ---- The document form ---- */

/* "path.name", or "name" at the top. Caller frees. */
static char *field_path(const char *path, const char *name)
{
	return xasprintf("%s%s%s", path, *path ? "." : "", name);
}

/* "path[key]", the way schema.c names a map's entries. Caller frees. */
static char *entry_path(const char *path, const char *key)
{
	return *path ? xasprintf("%s[%s]", path, key) : xstrdup(key);
}

static int want_type(const struct ynode *n, enum ytype t, const char *path, struct err *e)
{
	const char *want = t == Y_MAP ? "a map" : t == Y_SEQ ? "a list" : "a string";

	if (n->type == t)
		return 0;
	if (n->type == Y_STR)
		return err_set(e, EINVAL, "%s: must be %s, not the string \"%s\"", path, want,
			       n->str);
	if (n->type == Y_INT || n->type == Y_BOOL || n->type == Y_FLOAT)
		return err_set(e, EINVAL, "%s: must be %s, not the %s %s%s", path, want,
			       y_typename(n->type), n->str, t == Y_STR ? " (quote it)" : "");
	return err_set(e, EINVAL, "%s: must be %s, not %s%s", path, want,
		       n->type == Y_NULL ? "" : "a ", y_typename(n->type));
}

/* Fails on a key of map m that is not in names (NULL-terminated). */
static int only_fields(const struct ynode *m, const char *const *names, const char *path,
		       struct err *e)
{
	for (size_t i = 0; i < m->n; i++) {
		size_t j = 0;
		while (names[j] && strcmp(names[j], m->keys[i]) != 0)
			j++;
		if (!names[j]) {
			cleanup_free char *p = field_path(path, m->keys[i]);
			return err_set(e, EINVAL, "%s: unknown field", p);
		}
	}
	return 0;
}

/* Adds key=value for each entry of m (matchLabels, or a plain selector map). */
static int from_label_map(struct selector *s, const struct ynode *m, const char *path,
			  struct err *e)
{
	int r = want_type(m, Y_MAP, path, e);

	for (size_t i = 0; r == 0 && i < m->n; i++) {
		cleanup_free char *p = entry_path(path, m->keys[i]);
		struct strvec v = {0};
		r = check_label_key(m->keys[i], p, e);
		if (r == 0)
			r = want_type(m->v[i], Y_STR, p, e);
		if (r == 0)
			r = check_label_value(m->v[i]->str, p, e);
		if (r == 0) {
			sv_push(&v, xstrdup(m->v[i]->str));
			sel_add(s, xstrdup(m->keys[i]), OP_EQ, &v);
		}
	}
	return r;
}

/* Reads an expression's values (a list of strings, absent or null for none). */
static int read_values(const struct ynode *n, const char *path, struct strvec *vals, struct err *e)
{
	int r;

	if (!n || n->type == Y_NULL)
		return 0;
	r = want_type(n, Y_SEQ, path, e);
	for (size_t i = 0; r == 0 && i < n->n; i++) {
		cleanup_free char *p = xasprintf("%s[%zu]", path, i);
		r = want_type(n->v[i], Y_STR, p, e);
		if (r == 0)
			r = check_label_value(n->v[i]->str, p, e);
		if (r == 0)
			sv_push(vals, xstrdup(n->v[i]->str));
	}
	return r;
}

static const struct {
	const char *name;
	enum sel_op op;
	bool has_values;
} doc_ops[] = {
	{"In", OP_IN, true},
	{"NotIn", OP_NOTIN, true},
	{"Exists", OP_EXISTS, false},
	{"DoesNotExist", OP_NOT_EXISTS, false},
};

/* Finds the operator of an expression; *i indexes doc_ops. */
static int read_operator(const struct ynode *n, const char *path, size_t *i, struct err *e)
{
	int r;

	if (!n)
		return err_set(e, EINVAL, "%s: required", path);
	r = want_type(n, Y_STR, path, e);
	if (r < 0)
		return r;
	for (*i = 0; *i < sizeof(doc_ops) / sizeof(doc_ops[0]); (*i)++)
		if (strcmp(n->str, doc_ops[*i].name) == 0)
			return 0;
	return err_set(
		e, EINVAL,
		"%s: unsupported value \"%s\": must be one of In, NotIn, Exists, DoesNotExist",
		path, n->str);
}

/* One item of matchExpressions: {key, operator, values}. */
static int from_expression(struct selector *s, const struct ynode *x, const char *path,
			   struct err *e)
{
	static const char *const fields[] = {"key", "operator", "values", NULL};
	cleanup_free char *kpath = field_path(path, "key");
	cleanup_free char *opath = field_path(path, "operator");
	cleanup_free char *vpath = field_path(path, "values");
	const struct ynode *key = y_get(x, "key");
	struct strvec vals = {0};
	size_t op = 0;
	int r = want_type(x, Y_MAP, path, e);

	if (r == 0)
		r = only_fields(x, fields, path, e);
	if (r == 0 && !key)
		r = err_set(e, EINVAL, "%s: required", kpath);
	if (r == 0)
		r = want_type(key, Y_STR, kpath, e);
	if (r == 0)
		r = check_label_key(key->str, kpath, e);
	if (r == 0)
		r = read_operator(y_get(x, "operator"), opath, &op, e);
	if (r == 0)
		r = read_values(y_get(x, "values"), vpath, &vals, e);
	if (r == 0 && doc_ops[op].has_values && vals.n == 0)
		r = err_set(e, EINVAL, "%s: must not be empty for operator %s", vpath,
			    doc_ops[op].name);
	if (r == 0 && !doc_ops[op].has_values && vals.n > 0)
		r = err_set(e, EINVAL, "%s: must be empty for operator %s", vpath,
			    doc_ops[op].name);
	if (r < 0) {
		sv_free(&vals);
		return r;
	}
	sel_add(s, xstrdup(key->str), doc_ops[op].op, &vals);
	return 0;
}

/* A LabelSelector: {matchLabels, matchExpressions}; a null one of either is empty. */
static int from_label_selector(struct selector *s, const struct ynode *n, const char *path,
			       struct err *e)
{
	static const char *const fields[] = {"matchLabels", "matchExpressions", NULL};
	cleanup_free char *lpath = field_path(path, "matchLabels");
	cleanup_free char *xpath = field_path(path, "matchExpressions");
	const struct ynode *labels = y_get(n, "matchLabels");
	const struct ynode *exprs = y_get(n, "matchExpressions");
	int r = only_fields(n, fields, path, e);

	if (r == 0 && labels && labels->type != Y_NULL)
		r = from_label_map(s, labels, lpath, e);
	if (r < 0 || !exprs || exprs->type == Y_NULL)
		return r;
	r = want_type(exprs, Y_SEQ, xpath, e);
	for (size_t i = 0; r == 0 && i < exprs->n; i++) {
		cleanup_free char *p = xasprintf("%s[%zu]", xpath, i);
		r = from_expression(s, exprs->v[i], p, e);
	}
	return r;
}

/*
 * A null n (YAML "selector:" with nothing after it) is read as absent: the
 * empty selector.
 */
int sel_from_doc(const struct ynode *n, const char *path, struct selector **out, struct err *e)
{
	struct selector *s = xcalloc(1, sizeof(*s));
	int r = 0;

	*out = NULL;
	if (!path)
		path = "";
	if (n && n->type != Y_NULL) {
		r = want_type(n, Y_MAP, *path ? path : "selector", e);
		if (r == 0 && (y_get(n, "matchLabels") || y_get(n, "matchExpressions")))
			r = from_label_selector(s, n, path, e);
		else if (r == 0)
			r = from_label_map(s, n, path, e);
	}
	if (r < 0) {
		sel_free(s);
		return r;
	}
	sel_finish(s);
	*out = s;
	return 0;
}

/* ---- Using a selector ---- */

static bool req_matches(const struct req *r, const struct ynode *labels)
{
	const struct ynode *v = y_get(labels, r->key);
	/* A label that is null or not a scalar has no value a requirement can name. */
	bool scalar = v && v->type != Y_NULL && v->type != Y_MAP && v->type != Y_SEQ;
	const char *text = scalar ? v->str : NULL;

	switch (r->op) {
	case OP_EQ:
	case OP_IN:
		return text && sv_has(&r->vals, text);
	case OP_NE:
	case OP_NOTIN:
		return !text || !sv_has(&r->vals, text);
	case OP_EXISTS:
		return v != NULL;
	case OP_NOT_EXISTS:
		return v == NULL;
	}
	return false;
}

bool sel_matches(const struct selector *s, const struct ynode *labels)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!req_matches(&s->reqs[i], labels))
			return false;
	return true;
}

bool sel_empty(const struct selector *s)
{
	return !s || s->n == 0;
}

static void req_string(struct strbuf *sb, const struct req *r)
{
	switch (r->op) {
	case OP_EQ:
	case OP_NE:
		sb_printf(sb, "%s%s%s", r->key, r->op == OP_EQ ? "=" : "!=", r->vals.v[0]);
		return;
	case OP_IN:
	case OP_NOTIN:
		sb_printf(sb, "%s %s (", r->key, r->op == OP_IN ? "in" : "notin");
		for (size_t i = 0; i < r->vals.n; i++)
			sb_printf(sb, "%s%s", i ? "," : "", r->vals.v[i]);
		sb_puts(sb, ")");
		return;
	case OP_EXISTS:
		sb_puts(sb, r->key);
		return;
	case OP_NOT_EXISTS:
		sb_printf(sb, "!%s", r->key);
		return;
	}
}

char *sel_string(const struct selector *s)
{
	struct strbuf sb = {0};

	for (size_t i = 0; s && i < s->n; i++) {
		if (i > 0)
			sb_puts(&sb, ",");
		req_string(&sb, &s->reqs[i]);
	}
	return sb_steal(&sb, NULL);
}
