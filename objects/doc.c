/*
 * doc.c: the document tree, its YAML parser (libyaml events folded into
 * a tree) and its emitter (the tree walked into libyaml events).
 */
#define _GNU_SOURCE
#include "doc.h"

#include <errno.h>
#include <ctype.h>
#include <strings.h>
#include <yaml.h>

static struct ynode *y_new(enum ytype t)
{
	struct ynode *n = xcalloc(1, sizeof(*n));
	n->type = t;
	return n;
}

struct ynode *y_map(void)
{
	return y_new(Y_MAP);
}

struct ynode *y_seq(void)
{
	return y_new(Y_SEQ);
}

struct ynode *y_str(const char *s)
{
	struct ynode *n = y_new(Y_STR);
	n->str = xstrdup(s);
	return n;
}

struct ynode *y_int(int64_t i)
{
	struct ynode *n = y_new(Y_INT);
	n->i = i;
	n->str = xasprintf("%lld", (long long)i);
	return n;
}

struct ynode *y_bool(bool b)
{
	struct ynode *n = y_new(Y_BOOL);
	n->i = b;
	n->str = xstrdup(b ? "true" : "false");
	return n;
}

struct ynode *y_null(void)
{
	struct ynode *n = y_new(Y_NULL);
	n->str = xstrdup("null");
	return n;
}

void y_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys)
			free(n->keys[i]);
		y_free(n->v[i]);
	}
	free(n->keys);
	free(n->v);
	free(n->str);
	free(n);
}

struct ynode *y_clone(const struct ynode *n)
{
	if (!n)
		return NULL;
	struct ynode *c = y_new(n->type);
	c->i = n->i;
	c->line = n->line;
	c->str = n->str ? xstrdup(n->str) : NULL;
	c->n = c->cap = n->n;
	if (n->n) {
		c->v = xcalloc(n->n, sizeof(*c->v));
		if (n->keys)
			c->keys = xcalloc(n->n, sizeof(*c->keys));
	}
	for (size_t i = 0; i < n->n; i++) {
		c->v[i] = y_clone(n->v[i]);
		if (n->keys)
			c->keys[i] = xstrdup(n->keys[i]);
	}
	return c;
}

bool y_equal(const struct ynode *a, const struct ynode *b)
{
	if (!a || !b)
		return a == b;
	if (a->type != b->type || a->n != b->n)
		return false;
	switch (a->type) {
	case Y_MAP:
		for (size_t i = 0; i < a->n; i++)
			if (!y_equal(a->v[i], y_get(b, a->keys[i])))
				return false;
		return true;
	case Y_SEQ:
		for (size_t i = 0; i < a->n; i++)
			if (!y_equal(a->v[i], b->v[i]))
				return false;
		return true;
	case Y_NULL:
		return true;
	default:
		return strcmp(a->str, b->str) == 0;
	}
}

const char *y_typename(enum ytype t)
{
	static const char *names[] = {"null",	"boolean", "integer", "number",
				      "string", "map",	   "list"};
	return names[t];
}

struct ynode *y_get(const struct ynode *m, const char *key)
{
	if (!m || m->type != Y_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->keys[i], key) == 0)
			return m->v[i];
	return NULL;
}

struct ynode *y_path(const struct ynode *m, const char *path)
{
	char key[256];
	while (m && *path) {
		const char *dot = strchr(path, '.');
		size_t len = dot ? (size_t)(dot - path) : strlen(path);
		if (len >= sizeof(key))
			return NULL;
		memcpy(key, path, len);
		key[len] = 0;
		m = y_get(m, key);
		path += len + (dot ? 1 : 0);
	}
	return (struct ynode *)m;
}

const char *y_path_str(const struct ynode *m, const char *path)
{
	struct ynode *n = y_path(m, path);
	if (!n || n->type == Y_MAP || n->type == Y_SEQ || n->type == Y_NULL)
		return NULL;
	return n->str;
}

static void y_grow(struct ynode *n)
{
	if (n->n < n->cap)
		return;
	n->cap = n->cap ? n->cap * 2 : 4;
	n->v = xrealloc(n->v, n->cap * sizeof(*n->v));
	if (n->type == Y_MAP)
		n->keys = xrealloc(n->keys, n->cap * sizeof(*n->keys));
}

void y_set(struct ynode *m, const char *key, struct ynode *val)
{
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->keys[i], key) == 0) {
			y_free(m->v[i]);
			m->v[i] = val;
			return;
		}
	}
	y_grow(m);
	m->keys[m->n] = xstrdup(key);
	m->v[m->n++] = val;
}

struct ynode *y_submap(struct ynode *m, const char *key)
{
	struct ynode *s = y_get(m, key);
	if (s && s->type == Y_MAP)
		return s;
	s = y_map();
	y_set(m, key, s);
	return s;
}

struct ynode *y_take(struct ynode *m, const char *key)
{
	if (!m || m->type != Y_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->keys[i], key) != 0)
			continue;
		struct ynode *v = m->v[i];
		free(m->keys[i]);
		memmove(m->keys + i, m->keys + i + 1, (m->n - i - 1) * sizeof(*m->keys));
		memmove(m->v + i, m->v + i + 1, (m->n - i - 1) * sizeof(*m->v));
		m->n--;
		return v;
	}
	return NULL;
}

bool y_del(struct ynode *m, const char *key)
{
	struct ynode *v = y_take(m, key);
	y_free(v);
	return v != NULL;
}

void y_push(struct ynode *s, struct ynode *val)
{
	y_grow(s);
	s->v[s->n++] = val;
}

static bool is_special_float(const char *s)
{
	static const char *const names[] = {".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN", NULL};
	const char *p = s + ((*s == '-' || *s == '+') && s[1] == '.' &&
			     tolower((unsigned char)s[2]) == 'i');
	for (int i = 0; names[i]; i++)
		if (!strcmp(p, names[i]))
			return true;
	return false;
}

/* Whether s is a decimal number YAML 1.2 reads as a float. */
static bool is_decimal_float(const char *s)
{
	const char *p = s + (*s == '-' || *s == '+');
	bool digits = false;

	while (isdigit((unsigned char)*p))
		p++, digits = true;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			digits = true;
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		p += (*p == '-' || *p == '+');
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == 0;
}

/*
 * Parses YAML 1.2 core integers: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+;
 * and, as Kubernetes reads manifests with YAML 1.1's rules, 0[0-7]+ as
 * octal: `defaultMode: 0400` is 256, as kubectl reads it.
 */
static int parse_int(const char *s, int64_t *out)
{
	int base = 10;
	const char *digits = s + (*s == '-' || *s == '+'), *text = s;
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o'))
		base = s[1] == 'x' ? 16 : 8, digits = text = s + 2;
	else if (digits[0] == '0' && digits[1] && !digits[strspn(digits, "01234567")])
		base = 8; /* signed, so text stays s */
	if (!*digits)
		return -1;
	for (const char *q = digits; *q; q++)
		if (base == 16 ? !isxdigit((unsigned char)*q)
			       : (*q < '0' || *q > (base == 8 ? '7' : '9')))
			return -1;
	errno = 0;
	long long v = strtoll(text, &end, base);
	if (errno || *end)
		return -2; /* an integer too large for int64 */
	*out = v;
	return 0;
}

/* Resolves plain scalar text as YAML 1.2's core schema does. */
static void resolve_plain(struct ynode *n)
{
	const char *s = n->str;
	int64_t v;
	int r;

	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL")) {
		n->type = Y_NULL;
		free(n->str);
		n->str = xstrdup("null");
		return;
	}
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") || !strcmp(s, "false") ||
	    !strcmp(s, "False") || !strcmp(s, "FALSE")) {
		n->type = Y_BOOL;
		n->i = (s[0] == 't' || s[0] == 'T');
		free(n->str);
		n->str = xstrdup(n->i ? "true" : "false");
		return;
	}
	if ((r = parse_int(s, &v)) == 0) {
		n->type = Y_INT;
		n->i = v;
		free(n->str);
		n->str = xasprintf("%lld", (long long)v);
		return;
	}
	if (r == -2 || is_special_float(s) || is_decimal_float(s))
		n->type = Y_FLOAT;
}

struct parser {
	yaml_parser_t yp;
	size_t nodes;
	struct err *e;
};

static int parse_node(struct parser *p, yaml_event_t *ev, int depth, struct ynode **out);

static int next_event(struct parser *p, yaml_event_t *ev)
{
	if (yaml_parser_parse(&p->yp, ev))
		return 0;
	return err_set(p->e, EINVAL, "invalid YAML at line %zu column %zu: %s%s%s",
		       p->yp.problem_mark.line + 1, p->yp.problem_mark.column + 1,
		       p->yp.problem ? p->yp.problem : "syntax error", p->yp.context ? " " : "",
		       p->yp.context ? p->yp.context : "");
}

static int parse_children(struct parser *p, struct ynode *n, int depth)
{
	yaml_event_type_t end = n->type == Y_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
	for (;;) {
		yaml_event_t ev;
		struct ynode *key = NULL, *val = NULL;
		int r = next_event(p, &ev);
		if (r < 0)
			return r;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return 0;
		}
		r = parse_node(p, &ev, depth + 1, n->type == Y_MAP ? &key : &val);
		if (r < 0)
			return r;
		if (n->type == Y_SEQ) {
			y_push(n, val);
			continue;
		}
		int line = key->line;
		if (key->type == Y_MAP || key->type == Y_SEQ) {
			y_free(key);
			return err_set(p->e, EINVAL, "line %d: a map key must be a scalar", line);
		}
		if ((r = next_event(p, &ev)) < 0 || (r = parse_node(p, &ev, depth + 1, &val)) < 0) {
			y_free(key);
			return r;
		}
		if (y_get(n, key->str)) {
			r = err_set(p->e, EINVAL, "line %d: duplicate key \"%s\"", line, key->str);
			y_free(key);
			y_free(val);
			return r;
		}
		y_set(n, key->str, val);
		y_free(key);
	}
}

/* Builds the node that starts with ev (consumed) into *out. */
static int parse_node(struct parser *p, yaml_event_t *ev, int depth, struct ynode **out)
{
	int line = (int)ev->start_mark.line + 1;
	struct ynode *n;
	int r = 0;

	if (++p->nodes > Y_MAX_NODES || depth > Y_MAX_DEPTH) {
		yaml_event_delete(ev);
		return err_set(p->e, EINVAL, "line %d: document too large or too deeply nested",
			       line);
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n = y_new(Y_STR);
		n->str = xstrndup((char *)ev->data.scalar.value, ev->data.scalar.length);
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag)
			resolve_plain(n);
		break;
	case YAML_MAPPING_START_EVENT:
		n = y_new(Y_MAP);
		break;
	case YAML_SEQUENCE_START_EVENT:
		n = y_new(Y_SEQ);
		break;
	case YAML_ALIAS_EVENT:
		yaml_event_delete(ev);
		return err_set(p->e, EINVAL, "line %d: YAML aliases (*name) are not supported",
			       line);
	default:
		yaml_event_delete(ev);
		return err_set(p->e, EINVAL, "line %d: unexpected YAML event", line);
	}
	yaml_event_delete(ev);
	n->line = line;
	if (n->type == Y_MAP || n->type == Y_SEQ)
		r = parse_children(p, n, depth);
	if (r < 0) {
		y_free(n);
		return r;
	}
	*out = n;
	return 0;
}

static void free_docs(struct ynode **docs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y_free(docs[i]);
	free(docs);
}

static int parse_stream(struct parser *p, struct ynode ***docs, size_t *ndocs)
{
	size_t n = 0, cap = 0;
	struct ynode **d = NULL;
	yaml_event_t ev;
	int r;

	for (;;) {
		if ((r = next_event(p, &ev)) < 0)
			goto fail;
		yaml_event_type_t t = ev.type;
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT)
			break;
		if (t != YAML_DOCUMENT_START_EVENT)
			continue;
		struct ynode *root = NULL;
		if ((r = next_event(p, &ev)) < 0)
			goto fail;
		if (ev.type == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			root = y_null();
		} else if ((r = parse_node(p, &ev, 0, &root)) < 0) {
			goto fail;
		}
		if (n == cap)
			d = xrealloc(d, (cap = cap ? cap * 2 : 4) * sizeof(*d));
		d[n++] = root;
	}
	*docs = d;
	*ndocs = n;
	return 0;
fail:
	free_docs(d, n);
	return r;
}

int y_parse(const char *buf, size_t len, struct ynode ***docs, size_t *ndocs, struct err *e)
{
	struct parser p = {.e = e};

	if (!buf)
		buf = "";
	if (memchr(buf, 0, len))
		return err_set(e, EINVAL, "not YAML text: the data contains NUL bytes");
	if (!yaml_parser_initialize(&p.yp))
		return err_set(e, ENOMEM, "cannot start the YAML parser");
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)buf, len);
	yaml_parser_set_encoding(&p.yp, YAML_UTF8_ENCODING);
	int r = parse_stream(&p, docs, ndocs);
	yaml_parser_delete(&p.yp);
	return r;
}

/* Whether s, written plain, would read back as something but a string. */
static bool needs_quotes(const char *s)
{
	static const char *yaml11[] = {"y", "n", "yes", "no", "on", "off", NULL};
	struct ynode t = {.type = Y_STR, .str = xstrdup(s)};

	resolve_plain(&t);
	free(t.str);
	if (t.type != Y_STR)
		return true;
	for (int i = 0; yaml11[i]; i++)
		if (!strcasecmp(s, yaml11[i]))
			return true;
	return false;
}

static int write_sb(void *data, unsigned char *buf, size_t size)
{
	sb_append(data, buf, size);
	return 1;
}

static void emit_scalar(yaml_emitter_t *em, const char *s, enum ytype t)
{
	yaml_event_t ev;
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;

	if (t != Y_STR)
		style = YAML_PLAIN_SCALAR_STYLE;
	else if (needs_quotes(s))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	else if (strchr(s, '\n'))
		style = YAML_LITERAL_SCALAR_STYLE;
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
				     style);
	yaml_emitter_emit(em, &ev);
}

static void emit_node(yaml_emitter_t *em, const struct ynode *n)
{
	yaml_event_t ev;

	if (n->type == Y_SEQ) {
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
		yaml_emitter_emit(em, &ev);
		for (size_t i = 0; i < n->n; i++)
			emit_node(em, n->v[i]);
		yaml_sequence_end_event_initialize(&ev);
		yaml_emitter_emit(em, &ev);
		return;
	}
	if (n->type != Y_MAP) {
		emit_scalar(em, n->str, n->type);
		return;
	}
	const char **keys = xmalloc(n->n * sizeof(*keys));
	for (size_t i = 0; i < n->n; i++)
		keys[i] = n->keys[i];
	qsort(keys, n->n, sizeof(*keys), cmp_strp);
	yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
	yaml_emitter_emit(em, &ev);
	for (size_t i = 0; i < n->n; i++) {
		emit_scalar(em, keys[i], Y_STR);
		emit_node(em, y_get(n, keys[i]));
	}
	yaml_mapping_end_event_initialize(&ev);
	yaml_emitter_emit(em, &ev);
	free(keys);
}

void y_emit(const struct ynode *n, struct strbuf *out)
{
	yaml_emitter_t em;
	yaml_event_t ev;

	yaml_emitter_initialize(&em);
	yaml_emitter_set_output(&em, write_sb, out);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	yaml_emitter_emit(&em, &ev);
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	yaml_emitter_emit(&em, &ev);
	emit_node(&em, n);
	yaml_document_end_event_initialize(&ev, 1);
	yaml_emitter_emit(&em, &ev);
	yaml_stream_end_event_initialize(&ev);
	yaml_emitter_emit(&em, &ev);
	yaml_emitter_flush(&em);
	yaml_emitter_delete(&em);
	if (out->len && out->buf[out->len - 1] != '\n')
		sb_puts(out, "\n");
}
