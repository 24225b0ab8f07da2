/*
 * selector.h: Kubernetes label selectors.
 *
 * Equality-based (`a=b`, `a==b`, `a!=b`) and set-based (`a in (x,y)`,
 * `a notin (x)`, `a`, `!a`) requirements, ANDed. A selector comes from the
 * string form (`app=web,tier!=db`) or from a document: a LabelSelector
 * (matchLabels, matchExpressions with operators In, NotIn, Exists,
 * DoesNotExist) or a plain map (a Service's or ReplicationController's
 * selector).
 */
#ifndef CFS_SELECTOR_H
#define CFS_SELECTOR_H

#include "doc.h"

struct selector;

/* Parses the string form. *out is NULL on failure; caller frees. */
int sel_parse(const char *text, struct selector **out, struct err *e);
/*
 * Builds a selector from a LabelSelector map (matchLabels and/or
 * matchExpressions) or, when n has neither key, from a plain map of
 * label -> value. path names n in messages. Caller frees *out.
 */
int sel_from_doc(const struct ynode *n, const char *path, struct selector **out, struct err *e);
/* Whether the labels map (may be NULL: no labels) satisfies s. */
bool sel_matches(const struct selector *s, const struct ynode *labels);
/* Whether s has no requirements (and so matches everything). */
bool sel_empty(const struct selector *s);
/* The string form, requirements in a canonical order; caller frees. */
char *sel_string(const struct selector *s);
void sel_free(struct selector *s);

#endif
