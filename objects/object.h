/*
 * object.h: what makes a document an object of a kind.
 *
 * A write arrives as YAML text for a path (an object file names its kind,
 * namespace and name) or as a document that names them itself (apply).
 * obj_normalize() fills what the path supplies, rejects what contradicts
 * it, and checks the document against the kind's schema. obj_merge() then
 * joins the user's document with the stored object: the server's fields
 * (uid, resourceVersion, generation, creationTimestamp) come from the
 * server, status is kept when the document has none.
 */
#ifndef CFS_OBJECT_H
#define CFS_OBJECT_H

#include "schema.h"

/* The largest document an object file or apply accepts. */
#define OBJ_MAX_SIZE (1 << 20)

/*
 * Parses buf as the one document of an object file. Returns 0 with *out
 * (caller frees), or -EINVAL (bad YAML, no document, several documents).
 */
int obj_parse_one(const char *buf, size_t len, struct ynode **out, struct err *e);
/* obj_parse_one() of the file at path: -ENOENT (e set) when there is none. */
int obj_load(const char *path, struct ynode **out, struct err *e);

/*
 * Makes doc an object of kind k named ns/name (ns is "" for cluster-scoped
 * kinds; name may be NULL when the document must name itself): fills
 * apiVersion, kind, metadata.name and metadata.namespace, rejects what
 * contradicts them, checks names, schema and the kind's own rules.
 */
int obj_normalize(const struct kind *k, const char *ns, const char *name, struct ynode *doc,
		  struct err *e);

/*
 * For a document that names itself (apply): finds its kind and namespace
 * (defaulting to default_ns), and returns them. *ns and *name point into
 * doc or default_ns. Returns -EINVAL when the kind is unknown.
 */
int obj_identify(struct ynode *doc, const char *default_ns, const struct kind **k, const char **ns,
		 const char **name, struct err *e);

/*
 * Turns the user's normalized doc into the object to store, given the
 * current object (NULL on create). rv is the revision this change gets.
 * Returns -ESTALE when doc carries a resourceVersion that is not cur's;
 * on create the server's fields in doc are ignored.
 * Sets *changed to whether anything but server fields differs from cur.
 */
int obj_merge(const struct ynode *cur, struct ynode *doc, int64_t rv, int64_t now, bool *changed,
	      struct err *e);

/*
 * The resourceVersion check of obj_merge() alone: -EINVAL when doc's is
 * not a number, -ESTALE when it is not cur's (cur NULL on create).
 */
int obj_check_rv(const struct ynode *cur, const struct ynode *doc, struct err *e);

/* metadata.resourceVersion of an object, 0 when absent, -1 when not a number. */
int64_t obj_rv(const struct ynode *obj);

#endif
