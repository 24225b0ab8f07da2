/*
 * schema.h: table-driven schemas for the kinds, and the checks they use.
 *
 * A kind is a `struct kind` whose `fields` table lists its top-level
 * fields besides apiVersion, kind and metadata (which every kind shares).
 * A field names its type; objects and lists of objects point at the table
 * of their own fields. schema_check() walks a document against a table:
 * it rejects unknown fields and wrong types, naming the field's path
 * ("spec.template.spec.containers[0].image"), enforces required fields and
 * allowed values, and fills in defaults. A kind's `validate` hook adds the
 * checks a table cannot say (a selector that must match the template).
 *
 * Adding a kind is adding a table and a line in kinds[] (kinds.c).
 */
#ifndef CFS_SCHEMA_H
#define CFS_SCHEMA_H

#include "doc.h"

enum ftype {
	T_STR,	  /* string */
	T_INT,	  /* integer */
	T_BOOL,	  /* boolean */
	T_NUM,	  /* integer or float */
	T_QTY,	  /* resource quantity: 500m, 1.5, 128Mi, 2 (string or number) */
	T_INTSTR, /* int-or-string: 8080, "http", "25%" */
	T_BYTES,  /* base64 string (Secret data values) */
	T_OBJ,	  /* map with the fields in sub */
	T_LIST,	  /* list of elem (sub when elem is T_OBJ) */
	T_MAP,	  /* map from any string key to elem (sub when elem is T_OBJ) */
	T_ANY,	  /* anything; not checked */
};

enum {
	F_REQUIRED = 1 << 0,	  /* must be present (and, for strings, non-empty) */
	F_NONNEG = 1 << 1,	  /* T_INT: >= 0 */
	F_POSITIVE = 1 << 2,	  /* T_INT: > 0 */
	F_DNS_LABEL = 1 << 3,	  /* T_STR: RFC 1123 label (a container name) */
	F_DNS_SUBDOMAIN = 1 << 4, /* T_STR: RFC 1123 subdomain */
	F_LABELS = 1 << 5,	  /* T_MAP of T_STR: label keys and values */
	F_ANNOTATIONS = 1 << 6,	  /* T_MAP of T_STR: annotation keys */
	F_PORT = 1 << 7,	  /* T_INT: 1..65535; T_INTSTR: that or an IANA name */
};

struct field;
/* An extra check for one field's value; path names it for messages. */
typedef int (*field_check_fn)(const struct ynode *n, const char *path, struct err *e);

struct field {
	const char *name;
	enum ftype type;
	enum ftype elem;	 /* T_LIST, T_MAP: element type */
	const struct field *sub; /* T_OBJ, or elem T_OBJ: its fields */
	unsigned flags;
	const char *def;	  /* default, as YAML scalar text */
	const char *const *enums; /* allowed string values, NULL-terminated */
	field_check_fn check;
};

/* Shorthands for tables. Every table ends with {0}. */
#define FSTR(n, ...)                                                                               \
	{                                                                                          \
		.name = n, .type = T_STR, __VA_ARGS__                                              \
	}
#define FINT(n, ...)                                                                               \
	{                                                                                          \
		.name = n, .type = T_INT, __VA_ARGS__                                              \
	}
#define FBOOL(n, ...)                                                                              \
	{                                                                                          \
		.name = n, .type = T_BOOL, __VA_ARGS__                                             \
	}
#define FNUM(n, ...)                                                                               \
	{                                                                                          \
		.name = n, .type = T_NUM, __VA_ARGS__                                              \
	}
#define FQTY(n, ...)                                                                               \
	{                                                                                          \
		.name = n, .type = T_QTY, __VA_ARGS__                                              \
	}
#define FINTSTR(n, ...)                                                                            \
	{                                                                                          \
		.name = n, .type = T_INTSTR, __VA_ARGS__                                           \
	}
#define FANY(n, ...)                                                                               \
	{                                                                                          \
		.name = n, .type = T_ANY, __VA_ARGS__                                              \
	}
#define FOBJ(n, s, ...)                                                                            \
	{                                                                                          \
		.name = n, .type = T_OBJ, .sub = s, __VA_ARGS__                                    \
	}
#define FLIST(n, s, ...)                                                                           \
	{                                                                                          \
		.name = n, .type = T_LIST, .elem = T_OBJ, .sub = s, __VA_ARGS__                    \
	}
#define FSTRLIST(n, ...)                                                                           \
	{                                                                                          \
		.name = n, .type = T_LIST, .elem = T_STR, __VA_ARGS__                              \
	}
#define FSTRMAP(n, ...)                                                                            \
	{                                                                                          \
		.name = n, .type = T_MAP, .elem = T_STR, __VA_ARGS__                               \
	}
#define FQTYMAP(n, ...)                                                                            \
	{                                                                                          \
		.name = n, .type = T_MAP, .elem = T_QTY, __VA_ARGS__                               \
	}
#define ENUM(...)                                                                                  \
	.enums = (const char *const[])                                                             \
	{                                                                                          \
		__VA_ARGS__, NULL                                                                  \
	}

/*
 * What the store shows a kind's allocate hook: every other object of the
 * kind, in every namespace, as the writing transaction sees it (the
 * group's earlier writes included, the object being written left out).
 */
struct kind_peers {
	void (*each)(const struct kind_peers *p, void (*fn)(const struct ynode *obj, void *arg),
		     void *arg);
	void *ctx; /* the store's */
};

struct kind {
	const char *name;		 /* "Deployment" */
	const char *plural;		 /* "deployments": its directory */
	const char *const *api_versions; /* accepted; the first is shown */
	int namespaced;
	int scalable;		    /* spec.replicas, and NAME/replicas */
	int secret;		    /* files readable by the owner only */
	const struct field *fields; /* besides apiVersion, kind, metadata */
	/* Cross-field checks and defaults, after the table's; may be NULL. */
	int (*validate)(struct ynode *obj, struct err *e);
	/*
	 * Fields the server assigns from what the kind's other objects hold
	 * (a Service's clusterIP and nodePorts). The store runs it inside the
	 * transaction that writes doc, one write at a time, so no two objects
	 * are ever given the same value. cur is the stored object, NULL on
	 * create. May be NULL.
	 */
	int (*allocate)(const struct ynode *cur, struct ynode *doc, const struct kind_peers *peers,
			struct err *e);
};

/* Every kind, NULL-terminated, in the order directories are listed. */
extern const struct kind *const kinds[];
const struct kind *kind_by_plural(const char *plural);
const struct kind *kind_by_name(const char *name);

/* The fields of metadata, shared by every kind. */
extern const struct field metadata_fields[];

/*
 * Checks map n against fields (table ends with {0}); path is the name of
 * n for messages ("" at the top). Fills defaults into n. Returns 0, or
 * -EINVAL with e naming the first bad field.
 */
int schema_check(const struct field *fields, struct ynode *n, const char *path, struct err *e);

/* Name and label syntax, as Kubernetes defines it. Return 0 or -EINVAL. */
int check_dns_label(const char *s, const char *path, struct err *e);
int check_dns_subdomain(const char *s, const char *path, struct err *e);
int check_label_key(const char *s, const char *path, struct err *e);
int check_label_value(const char *s, const char *path, struct err *e);
/* Parses a quantity ("500m", "1Gi", "2") into milli-units; 0 or -EINVAL. */
int parse_quantity(const char *s, int64_t *milli);
/* Decodes standard base64; returns the length or -1 when s is not base64. */
long base64_decode(const char *s, unsigned char *out);
/* Encodes n bytes as base64; caller frees. */
char *base64_encode(const unsigned char *p, size_t n);

#endif
