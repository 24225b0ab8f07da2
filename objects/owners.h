/*
 * owners.h: what controllers (and the tree's rollout files) ask of objects: owner references, a
 * pod's state, and keys.
 */
#ifndef CFS_OWNERS_H
#define CFS_OWNERS_H

#include "schema.h"

/* The ownerReference with controller: true, or NULL. Borrowed. */
const struct ynode *owner_controller(const struct ynode *obj);
/* Whether obj's controller is the object with this uid. */
bool owned_by(const struct ynode *obj, const char *uid);
/* A new ownerReference (controller, blockOwnerDeletion) to owner. */
struct ynode *owner_ref(const struct ynode *owner);

/* A ReplicaSet's deployment.kubernetes.io/revision annotation, or 0. */
long deployment_revision(const struct ynode *rs);

/* A pod not being deleted and not finished (Succeeded or Failed). */
bool pod_active(const struct ynode *pod);
/* A pod whose Ready condition is True. */
bool pod_ready(const struct ynode *pod);
/* Whether the condition of this type in obj's status.conditions is True. */
bool condition_true(const struct ynode *obj, const char *type);

/* "plural/ns/name"; caller frees. */
char *obj_key(const struct kind *k, const char *ns, const char *name);
/* Splits a key from obj_key into its parts (pointing into buf). */
int key_split(const char *key, char *buf, size_t size, const struct kind **k, const char **ns,
	      const char **name);

#endif
