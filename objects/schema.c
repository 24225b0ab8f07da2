/*
 * schema.c: the engine that checks a document against a kind's table,
 * and the syntax checks Kubernetes applies to names, labels, quantities
 * and base64.
 *
 * schema_check() walks the document and the table side by side. The path
 * of the field being checked is built in a buffer as it descends, so every
 * message names exactly one field: "spec.template.spec.containers[1].image:
 * required".
 */
#define _GNU_SOURCE
#include "schema.h"

#include <ctype.h>
#include <errno.h>

static int check_value(const struct field *f, enum ftype type, const struct field *sub,
		       struct ynode *n, const char *path, struct err *e);

static bool is_scalar(const struct ynode *n)
{
	return n->type != Y_MAP && n->type != Y_SEQ;
}

static int type_error(const struct ynode *n, const char *path, const char *want, struct err *e)
{
	if (n->type == Y_STR && strcmp(want, "a string"))
		return err_set(e, EINVAL, "%s: must be %s, not the string \"%s\"", path, want,
			       n->str);
	if (n->type == Y_INT || n->type == Y_BOOL || n->type == Y_FLOAT)
		return err_set(e, EINVAL, "%s: must be %s, not the %s %s%s", path, want,
			       y_typename(n->type), n->str,
			       strcmp(want, "a string") ? "" : " (quote it)");
	return err_set(e, EINVAL, "%s: must be %s, not a %s", path, want, y_typename(n->type));
}

static int check_enum(const struct field *f, const struct ynode *n, const char *path, struct err *e)
{
	struct strbuf sb = {0};

	for (int i = 0; f->enums[i]; i++)
		if (!strcmp(n->str, f->enums[i]))
			return 0;
	for (int i = 0; f->enums[i]; i++)
		sb_printf(&sb, "%s%s", i ? ", " : "", f->enums[i]);
	int r = err_set(e, EINVAL, "%s: unsupported value \"%s\": must be one of %s", path, n->str,
			sb.buf);
	sb_free(&sb);
	return r;
}

static int check_string(const struct field *f, const struct ynode *n, const char *path,
			struct err *e)
{
	if (n->type != Y_STR)
		return type_error(n, path, "a string", e);
	if ((f->flags & F_REQUIRED) && !*n->str)
		return err_set(e, EINVAL, "%s: required", path);
	if (f->enums)
		return check_enum(f, n, path, e);
	if (f->flags & F_DNS_LABEL)
		return check_dns_label(n->str, path, e);
	if (f->flags & F_DNS_SUBDOMAIN)
		return check_dns_subdomain(n->str, path, e);
	return 0;
}

static int check_port_name(const char *s, const char *path, struct err *e)
{
	size_t len = strlen(s);
	bool letter = false;

	if (len == 0 || len > 15)
		return err_set(e, EINVAL, "%s: a port name must be 1-15 characters", path);
	for (const char *p = s; *p; p++) {
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
			return err_set(e, EINVAL,
				       "%s: a port name may contain only a-z, 0-9 and '-'", path);
		letter |= islower((unsigned char)*p) != 0;
	}
	if (!letter || s[0] == '-' || s[len - 1] == '-' || strstr(s, "--"))
		return err_set(e, EINVAL, "%s: invalid port name \"%s\"", path, s);
	return 0;
}

static int check_scalar(const struct field *f, enum ftype type, const struct ynode *n,
			const char *path, struct err *e)
{
	int64_t milli;
	unsigned flags = f ? f->flags : 0;

	switch (type) {
	case T_STR:
		return f ? check_string(f, n, path, e)
			 : (n->type == Y_STR ? 0 : type_error(n, path, "a string", e));
	case T_BOOL:
		return n->type == Y_BOOL ? 0 : type_error(n, path, "a boolean", e);
	case T_NUM:
		return n->type == Y_INT || n->type == Y_FLOAT ? 0
							      : type_error(n, path, "a number", e);
	case T_INT:
		if (n->type != Y_INT)
			return type_error(n, path, "an integer", e);
		if ((flags & F_NONNEG) && n->i < 0)
			return err_set(e, EINVAL,
				       "%s: must be greater than or equal to 0, not %lld", path,
				       (long long)n->i);
		if ((flags & F_POSITIVE) && n->i <= 0)
			return err_set(e, EINVAL, "%s: must be greater than 0, not %lld", path,
				       (long long)n->i);
		if ((flags & F_PORT) && (n->i < 1 || n->i > 65535))
			return err_set(e, EINVAL,
				       "%s: must be a port number between 1 and 65535, not %lld",
				       path, (long long)n->i);
		return 0;
	case T_INTSTR:
		if (n->type == Y_INT)
			return (flags & F_PORT) && (n->i < 1 || n->i > 65535)
				       ? err_set(e, EINVAL,
						 "%s: must be a port number between 1 and 65535",
						 path)
				       : 0;
		if (n->type != Y_STR)
			return type_error(n, path, "an integer or a string", e);
		return (flags & F_PORT) ? check_port_name(n->str, path, e) : 0;
	case T_QTY:
		if (n->type != Y_STR && n->type != Y_INT && n->type != Y_FLOAT)
			return type_error(n, path, "a quantity (such as 500m, 2 or 128Mi)", e);
		if (parse_quantity(n->str, &milli) < 0)
			return err_set(e, EINVAL,
				       "%s: \"%s\" is not a quantity (such as 500m, 2 or 128Mi)",
				       path, n->str);
		return 0;
	case T_BYTES:
		if (n->type != Y_STR)
			return type_error(n, path, "a base64 string", e);
		if (base64_decode(n->str, NULL) < 0)
			return err_set(e, EINVAL, "%s: illegal base64 data", path);
		return 0;
	default:
		return 0;
	}
}

static int check_list(const struct field *f, struct ynode *n, const char *path, struct err *e)
{
	if (n->type != Y_SEQ)
		return type_error(n, path, "a list", e);
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *p = xasprintf("%s[%zu]", path, i);
		int r = check_value(NULL, f->elem, f->sub, n->v[i], p, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_map(const struct field *f, struct ynode *n, const char *path, struct err *e)
{
	if (n->type != Y_MAP)
		return type_error(n, path, "a map", e);
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *p = xasprintf("%s[%s]", path, n->keys[i]);
		int r = 0;
		if (f->flags & (F_LABELS | F_ANNOTATIONS))
			r = check_label_key(n->keys[i], p, e);
		if (r == 0)
			r = check_value(NULL, f->elem, f->sub, n->v[i], p, e);
		if (r == 0 && (f->flags & F_LABELS))
			r = check_label_value(n->v[i]->str, p, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Checks n, which the table calls f (NULL for list and map elements). */
static int check_value(const struct field *f, enum ftype type, const struct field *sub,
		       struct ynode *n, const char *path, struct err *e)
{
	switch (type) {
	case T_ANY:
		return 0;
	case T_OBJ:
		if (n->type != Y_MAP)
			return type_error(n, path, "a map", e);
		return schema_check(sub, n, path, e);
	case T_LIST:
		return check_list(f, n, path, e);
	case T_MAP:
		return check_map(f, n, path, e);
	default:
		if (!is_scalar(n))
			return type_error(n, path, type == T_STR ? "a string" : "a scalar", e);
		return check_scalar(f, type, n, path, e);
	}
}

static struct ynode *parse_default(const char *text)
{
	struct ynode **docs = NULL;
	size_t n = 0;

	if (y_parse(text, strlen(text), &docs, &n, NULL) < 0 || n != 1) {
		fprintf(stderr, "clusterfs: bad default \"%s\" in a schema table\n", text);
		abort();
	}
	struct ynode *d = docs[0];
	free(docs);
	return d;
}

static const struct field *find_field(const struct field *fields, const char *name)
{
	for (const struct field *f = fields; f->name; f++)
		if (!strcmp(f->name, name))
			return f;
	return NULL;
}

int schema_check(const struct field *fields, struct ynode *n, const char *path, struct err *e)
{
	const char *dot = *path ? "." : "";
	int r;

	if (n->type != Y_MAP)
		return type_error(n, *path ? path : "the document", "a map", e);
	for (size_t i = 0; i < n->n; i++) {
		const struct field *f = find_field(fields, n->keys[i]);
		cleanup_free char *p = xasprintf("%s%s%s", path, dot, n->keys[i]);
		if (!f)
			return err_set(e, EINVAL, "%s: unknown field", p);
		if (n->v[i]->type == Y_NULL && !(f->flags & F_REQUIRED))
			continue; /* "key:" with no value means absent */
		if ((r = check_value(f, f->type, f->sub, n->v[i], p, e)) < 0)
			return r;
		if (f->check && (r = f->check(n->v[i], p, e)) < 0)
			return r;
	}
	for (size_t i = 0; i < n->n;) {
		if (n->v[i]->type == Y_NULL && find_field(fields, n->keys[i])->type != T_ANY)
			y_del(n, n->keys[i]);
		else
			i++;
	}
	for (const struct field *f = fields; f->name; f++) {
		if (y_get(n, f->name))
			continue;
		if (f->flags & F_REQUIRED)
			return err_set(e, EINVAL, "%s%s%s: required", path, dot, f->name);
		if (f->def)
			y_set(n, f->name, parse_default(f->def));
	}
	return 0;
}

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int check_dns_label(const char *s, const char *path, struct err *e)
{
	size_t len = strlen(s);

	if (len == 0 || len > 63)
		return err_set(e, EINVAL, "%s: \"%s\" must be 1 to 63 characters", path, s);
	for (size_t i = 0; i < len; i++) {
		if (!is_alnum_lower(s[i]) && !(s[i] == '-' && i > 0 && i < len - 1))
			return err_set(e, EINVAL,
				       "%s: \"%s\" is not a valid name: lower case letters, digits "
				       "and '-', "
				       "starting and ending with a letter or digit (RFC 1123)",
				       path, s);
	}
	return 0;
}

int check_dns_subdomain(const char *s, const char *path, struct err *e)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253)
		return err_set(e, EINVAL, "%s: \"%s\" must be 1 to 253 characters", path, s);
	for (size_t i = 0; i < len; i++) {
		bool edge = i == 0 || i == len - 1 || s[i - 1] == '.' || s[i + 1] == '.';
		if (is_alnum_lower(s[i]) || ((s[i] == '-' || s[i] == '.') && !edge))
			continue;
		return err_set(
			e, EINVAL,
			"%s: \"%s\" is not a valid name: lower case letters, digits, '-' and '.', "
			"starting and ending with a letter or digit (RFC 1123)",
			path, s);
	}
	return 0;
}

/* A label value or the name part of a key: [A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])? */
static bool label_token_ok(const char *s, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool alnum = isalnum((unsigned char)s[i]) != 0;
		bool inner = s[i] == '-' || s[i] == '_' || s[i] == '.';
		if (!alnum && !(inner && i > 0 && i < len - 1))
			return false;
	}
	return true;
}

int check_label_key(const char *s, const char *path, struct err *e)
{
	const char *slash = strchr(s, '/');
	const char *name = slash ? slash + 1 : s;

	if (slash) {
		cleanup_free char *prefix = xstrndup(s, slash - s);
		struct err ignored;
		if (check_dns_subdomain(prefix, path, &ignored) < 0)
			return err_set(e, EINVAL, "%s: key prefix \"%s\" must be a DNS subdomain",
				       path, prefix);
	}
	if (!label_token_ok(name, strlen(name)))
		return err_set(e, EINVAL,
			       "%s: invalid key \"%s\": the name part must be 1-63 characters of "
			       "letters, digits, '-', '_' and '.', starting and ending with a "
			       "letter or digit",
			       path, s);
	return 0;
}

int check_label_value(const char *s, const char *path, struct err *e)
{
	if (*s && !label_token_ok(s, strlen(s)))
		return err_set(
			e, EINVAL,
			"%s: invalid label value \"%s\": at most 63 characters of letters, digits, "
			"'-', '_' and '.', starting and ending with a letter or digit",
			path, s);
	return 0;
}

int parse_quantity(const char *s, int64_t *milli)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {{"m", 1e-3},
		     {"k", 1e3},
		     {"M", 1e6},
		     {"G", 1e9},
		     {"T", 1e12},
		     {"P", 1e15},
		     {"E", 1e18},
		     {"Ki", 1024.0},
		     {"Mi", 1048576.0},
		     {"Gi", 1073741824.0},
		     {"Ti", 1099511627776.0},
		     {"Pi", 1125899906842624.0},
		     {"Ei", 1152921504606846976.0},
		     {"", 1}};
	char *end;

	if (!*s || isspace((unsigned char)*s))
		return -EINVAL;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		double m = v * units[i].mult * 1000.0;
		if (m > 9.2e18)
			return -EINVAL;
		*milli = (int64_t)(m + 0.5);
		return 0;
	}
	return -EINVAL;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long base64_decode(const char *s, unsigned char *out)
{
	size_t len = strlen(s), n = 0;
	unsigned acc = 0;
	int bits = 0, pad = 0;

	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=') {
			if (i < len - 2)
				return -1;
			pad++;
			continue;
		}
		int v = b64val((unsigned char)s[i]);
		if (v < 0 || pad)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (out)
				out[n] = (unsigned char)(acc >> bits);
			n++;
		}
	}
	return (long)n;
}

char *base64_encode(const unsigned char *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = 0;
	return out;
}
