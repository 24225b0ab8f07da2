/*
 * doc.h: the generic document tree that every object is held in.
 *
 * YAML text is parsed with libyaml into a tree of maps, sequences and
 * typed scalars; the schema (schema.h) checks a tree against a kind's
 * table; the tree is emitted back as YAML with map keys sorted, which is
 * the stable order `kubectl get -o yaml` shows.
 *
 * A plain scalar is typed the way YAML 1.2's core schema resolves it
 * (null, bool, int, float, else string); a quoted one is always a string.
 * The emitter quotes a string whenever plain text would read back as
 * another type, so a round trip keeps every type.
 */
#ifndef CFS_DOC_H
#define CFS_DOC_H

#include "util.h"
#include <stdbool.h>

enum ytype { Y_NULL, Y_BOOL, Y_INT, Y_FLOAT, Y_STR, Y_MAP, Y_SEQ };

struct ynode {
	enum ytype type;
	char *str;	  /* scalar text; for Y_INT/Y_BOOL canonical form */
	int64_t i;	  /* Y_INT value, Y_BOOL 0/1 */
	size_t n, cap;	  /* children */
	char **keys;	  /* Y_MAP keys */
	struct ynode **v; /* Y_MAP values or Y_SEQ items */
	int line;	  /* 1-based source line, 0 if built in code */
};

/* Limits on what a parse accepts, against hostile input. */
#define Y_MAX_DEPTH 64
#define Y_MAX_NODES 200000

struct ynode *y_map(void);
struct ynode *y_seq(void);
struct ynode *y_str(const char *s);
struct ynode *y_int(int64_t i);
struct ynode *y_bool(bool b);
struct ynode *y_null(void);
void y_free(struct ynode *n);
struct ynode *y_clone(const struct ynode *n);
bool y_equal(const struct ynode *a, const struct ynode *b);
const char *y_typename(enum ytype t);

/* Map access. y_get returns NULL when key is absent (or m is not a map). */
struct ynode *y_get(const struct ynode *m, const char *key);
/* Follows a dotted path of map keys ("spec.template.metadata"). */
struct ynode *y_path(const struct ynode *m, const char *path);
/* Scalar text at a dotted path, or NULL when absent or not a scalar. */
const char *y_path_str(const struct ynode *m, const char *path);
/* Sets key to val (consumed), replacing and freeing an old value. */
void y_set(struct ynode *m, const char *key, struct ynode *val);
/* Returns the map at key, creating an empty one if absent. */
struct ynode *y_submap(struct ynode *m, const char *key);
/* Removes key; returns whether it was there. */
bool y_del(struct ynode *m, const char *key);
/* Detaches and returns the value at key (caller frees), or NULL. */
struct ynode *y_take(struct ynode *m, const char *key);
/* Appends val (consumed) to sequence s. */
void y_push(struct ynode *s, struct ynode *val);

/*
 * Parses every document in buf. On success returns 0 and sets *docs (an
 * array of trees, caller frees each and the array) and *ndocs. An empty
 * or comment-only document is returned as Y_NULL. On failure returns
 * -EINVAL with a message that names the line.
 */
int y_parse(const char *buf, size_t len, struct ynode ***docs, size_t *ndocs, struct err *e);
/* Appends n as a YAML document (block style, sorted keys) to out. */
void y_emit(const struct ynode *n, struct strbuf *out);
/* Appends n as JSON (json.c): one line, map keys in the tree's order. */
void y_emit_json(const struct ynode *n, struct strbuf *out);

#endif
