/*
 * image.h: the node's image store.
 *
 * References are normalized as Docker does ("busybox" is
 * docker.io/library/busybox:latest, with the default registry
 * configurable). Each reference is pulled with skopeo into an OCI layout
 * of its own under DIR/layouts, unpacked with umoci once per manifest
 * digest under DIR/unpacked/DIGEST (rootfs/ and config.json), and read
 * back for the image's entrypoint, cmd, env and working directory.
 * Containers get an overlay over that rootfs (container.c).
 */
#ifndef CFS_IMAGE_H
#define CFS_IMAGE_H

#include "doc.h"

struct image_store;

/* Where the store lives, which registry short names mean, and which
 * registries speak plain HTTP ("HOST:PORT", NULL-terminated). */
struct image_store *image_store_new(const char *dir, const char *default_registry,
				    const char *const *insecure);
void image_store_free(struct image_store *s);
/*
 * Image garbage collection after each pull (image.c): when the store's
 * filesystem is more than high percent used, images no container uses
 * and no reference from in_use() names (a NULL-terminated list the store
 * frees) are removed, least recently used first, down to low percent.
 * high 100 (the default) never collects.
 */
void image_store_gc(struct image_store *s, int high, int low, char **(*in_use)(void *arg),
		    void *arg);

struct image {
	char *rootfs;	      /* the unpacked image's rootfs (read-only lower dir) */
	char *id;	      /* imageID: REGISTRY/REPO@sha256:... */
	struct ynode *config; /* the OCI image config's "config": Entrypoint, Cmd, Env, ... */
};

void image_clear(struct image *img);

/*
 * Makes ref available under the pull policy ("Always", "IfNotPresent",
 * "Never"; NULL: Always for :latest or no tag, else IfNotPresent) and fills
 * img. Safe from any thread: pulls are serialized. Returns 0, or -errno
 * with e set: -ENOENT when the policy forbids the pull it needs
 * (ErrImageNeverPull), -EIO when the pull failed (ErrImagePull).
 */
int image_get(struct image_store *s, const char *ref, const char *policy, struct image *img,
	      struct err *e);

#endif
