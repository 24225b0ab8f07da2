/*
 * write.c: every way a write through the mount becomes a store operation.
 *
 * An object file's content, an apply file's documents, a number written
 * to NAME/replicas, a line written to events: each is parsed and checked
 * here, then handed to the store in one store_write() call. A rejection is
 * appended to the namespace's events file before the error goes back to
 * close() or rename(), so tools that ignore close() errors (bash's `>`)
 * still leave a trace. Changes the kernel did not see happen on the
 * object's own file (apply, replicas, mkdir) are announced to the toucher.
 */
#define _GNU_SOURCE
#include "fs-internal.h"

#include <ctype.h>
#include <errno.h>

int fs_reject(struct fs *fs, const char *ns, const char *origin, int r, struct err *e)
{
	cleanup_free char *msg = xasprintf("%s (%s)", e->msg, strerror(-r));
	store_event(fs->store, ns, "Warning", "Rejected", origin, msg);
	return r;
}

static void announce(struct fs *fs, struct store_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ops[i].change == CH_NONE)
			continue;
		cleanup_free char *path = obj_path(ops[i].kind, ops[i].ns, ops[i].name);
		toucher_announce(fs->toucher, ops[i].change, path);
	}
}

int fs_put_object(struct fs *fs, struct inode *in, const char *buf, size_t len, const char *origin,
		  enum op_type type)
{
	struct store_op op = {.type = type, .kind = in->kind, .ns = in->ns, .name = in->name};
	struct err e = {0};
	int r;

	if ((r = obj_parse_one(buf, len, &op.doc, &e)) < 0 ||
	    (r = obj_normalize(in->kind, in->ns, in->name, op.doc, &e)) < 0) {
		y_free(op.doc);
		return fs_reject(fs, in->ns, origin, r, &e);
	}
	if ((r = store_write(fs->store, &op, 1, &e)) < 0)
		return fs_reject(fs, in->ns, origin, r, &e);
	return 0;
}

int fs_delete_object(struct fs *fs, const struct kind *k, const char *ns, const char *name,
		     const char *origin, int do_announce)
{
	struct store_op op = {.type = OP_DELETE, .kind = k, .ns = ns, .name = name};
	struct err e = {0};
	int r = store_write(fs->store, &op, 1, &e);

	if (r < 0)
		return fs_reject(fs, k->namespaced ? ns : "", origin, r, &e);
	if (do_announce)
		announce(fs, &op, 1);
	return 0;
}

struct apply_set {
	struct ynode **docs;
	size_t ndocs;
	struct store_op *ops;
	char **names;
	size_t n;
};

static void apply_set_free(struct apply_set *a)
{
	for (size_t i = 0; i < a->ndocs; i++)
		y_free(a->docs[i]);
	for (size_t i = 0; i < a->n; i++) {
		y_free(a->ops[i].doc);
		free(a->names[i * 2]);
		free(a->names[i * 2 + 1]);
	}
	free(a->docs);
	free(a->ops);
	free(a->names);
}

/* Turns each document into a checked operation; documents are consumed. */
static int apply_prepare(struct apply_set *a, const char *default_ns, struct err *e)
{
	a->ops = xcalloc(a->ndocs, sizeof(*a->ops));
	a->names = xcalloc(a->ndocs * 2, sizeof(*a->names));
	for (size_t i = 0; i < a->ndocs; i++) {
		struct ynode *doc = a->docs[i];
		const struct kind *k;
		const char *ns, *name;
		int r;

		if (doc->type == Y_NULL)
			continue;
		if ((r = obj_identify(doc, default_ns, &k, &ns, &name, e)) < 0) {
			err_prefix(e, "document %zu", i + 1);
			return r;
		}
		cleanup_free char *nscopy = xstrdup(ns);
		if ((r = obj_normalize(k, nscopy, NULL, doc, e)) < 0) {
			err_prefix(e, "document %zu (%s %s)", i + 1, k->name, name ? name : "");
			return r;
		}
		size_t j = a->n++;
		a->names[j * 2] = xstrdup(nscopy);
		a->names[j * 2 + 1] = xstrdup(y_path_str(doc, "metadata.name"));
		a->ops[j] = (struct store_op){.type = OP_PUT,
					      .kind = k,
					      .doc = doc,
					      .ns = a->names[j * 2],
					      .name = a->names[j * 2 + 1]};
		a->docs[i] = NULL;
	}
	return a->n ? 0 : err_set(e, EINVAL, "nothing to apply: no documents");
}

int fs_apply(struct fs *fs, const char *ns, const char *buf, size_t len)
{
	struct apply_set a = {0};
	struct err e = {0};
	int r;

	if (len > OBJ_MAX_SIZE)
		r = err_set(&e, EFBIG, "%zu bytes: at most %d are accepted", len, OBJ_MAX_SIZE);
	else if ((r = y_parse(buf, len, &a.docs, &a.ndocs, &e)) == 0 &&
		 (r = apply_prepare(&a, *ns ? ns : "default", &e)) == 0)
		r = store_write(fs->store, a.ops, a.n, &e);
	if (r == 0)
		announce(fs, a.ops, a.n);
	apply_set_free(&a);
	return r < 0 ? fs_reject(fs, ns, "apply", r, &e) : 0;
}

char *fs_replicas_text(struct fs *fs, struct inode *in)
{
	struct sobj *o = store_get(fs->store, in->kind, in->ns, in->name);
	if (!o)
		return NULL;
	const char *r = y_path_str(o->doc, "spec.replicas");
	char *text = xasprintf("%s\n", r ? r : "1");
	sobj_unref(o);
	return text;
}

static int parse_count(const char *buf, size_t len, int64_t *out)
{
	char text[32], *end;

	while (len && isspace((unsigned char)buf[len - 1]))
		len--;
	while (len && isspace((unsigned char)*buf))
		buf++, len--;
	if (len == 0 || len >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, len);
	text[len] = 0;
	long long v = strtoll(text, &end, 10);
	if (*end || v < 0 || v > 1000000)
		return -EINVAL;
	*out = v;
	return 0;
}

int fs_set_replicas(struct fs *fs, struct inode *in, const char *buf, size_t len)
{
	cleanup_free char *origin = xasprintf("%s/%s/replicas", in->kind->plural, in->name);
	struct err e = {0};
	int64_t n;
	int r;

	if (parse_count(buf, len, &n) < 0) {
		int shown = (int)strcspn(buf, "\n");
		err_set(&e, EINVAL, "spec.replicas: \"%.*s\" is not a count (a whole number >= 0)",
			shown > 40 ? 40 : shown, buf);
		return fs_reject(fs, in->ns, origin, -EINVAL, &e);
	}
	for (int tries = 0; tries < 10; tries++) {
		struct sobj *o = store_get(fs->store, in->kind, in->ns, in->name);
		if (!o)
			return -ENOENT;
		struct store_op op = {.type = OP_PUT,
				      .kind = in->kind,
				      .ns = in->ns,
				      .name = in->name,
				      .doc = y_clone(o->doc)};
		y_set(y_submap(op.doc, "spec"), "replicas", y_int(n));
		sobj_unref(o);
		r = store_write(fs->store, &op, 1, &e);
		if (r == 0)
			announce(fs, &op, 1);
		if (r != -ESTALE)
			break;
	}
	return r < 0 ? fs_reject(fs, in->ns, origin, r, &e) : 0;
}

/* Splits one events line "TYPE REASON OBJECT: MESSAGE" in place. */
static int parse_event_line(char *line, char **type, char **reason, char **object, char **msg)
{
	char *save = NULL;

	*type = strtok_r(line, " ", &save);
	*reason = strtok_r(NULL, " ", &save);
	*object = strtok_r(NULL, " ", &save);
	*msg = save ? save + strspn(save, " ") : NULL;
	if (!*type || !*reason || !*object || !*msg || !**msg)
		return -EINVAL;
	size_t n = strlen(*object);
	if ((*object)[n - 1] != ':' || n < 2 ||
	    (strcmp(*type, "Normal") && strcmp(*type, "Warning")))
		return -EINVAL;
	(*object)[n - 1] = 0;
	return 0;
}

int fs_write_events(struct fs *fs, const char *ns, const char *buf, size_t len)
{
	cleanup_free char *text = xstrndup(buf, len);
	char *lines[256], *save = NULL;
	size_t n = 0;
	struct err e = {0};

	if (memchr(buf, 0, len))
		return fs_reject(fs, ns, "events",
				 err_set(&e, EINVAL, "events: the text contains NUL bytes"), &e);
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (n == sizeof(lines) / sizeof(lines[0]))
			return fs_reject(
				fs, ns, "events",
				err_set(&e, EINVAL, "events: at most %zu lines at once", n), &e);
		if (*l)
			lines[n++] = l;
	}
	/* Every line is checked before any is appended: all or none. */
	char *type[256], *reason[256], *object[256], *msg[256];
	for (size_t i = 0; i < n; i++)
		if (parse_event_line(lines[i], &type[i], &reason[i], &object[i], &msg[i]) < 0)
			return fs_reject(fs, ns, "events",
					 err_set(&e, EINVAL,
						 "events: line %zu: expected \"Normal|Warning "
						 "REASON OBJECT: MESSAGE\"",
						 i + 1),
					 &e);
	for (size_t i = 0; i < n; i++)
		store_event(fs->store, ns, type[i], reason[i], object[i], msg[i]);
	return 0;
}
