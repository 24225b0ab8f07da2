#!/usr/bin/env bats
# The inotify invariant: every change to an object, whatever path it came
# by, raises an inotify event on the object's NAME.yaml in its kind
# directory. One test per path a change can take.

load helpers

setup_file() {
	start_server
	printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: busybox}]}\n' \
		>"$NS/deployments/web.yaml"
}

teardown_file() {
	cleanup_server
}

teardown() {
	[ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
	wait 2>/dev/null || true
}

# watch_dir DIR: inotifywait on DIR in the background, into $WORK/inotify.log.
watch_dir() {
	: >"$WORK/inotify.log"
	inotifywait -m -e create,modify,close_write,delete,moved_to --format '%e %f' "$1" \
		>"$WORK/inotify.log" 2>"$WORK/inotify.err" &
	WATCH_PID=$!
	wait_for 10 grep -q "Watches established" "$WORK/inotify.err"
}

# saw EVENT FILE: waits until inotifywait reported EVENT on FILE.
saw() {
	wait_for 10 grep -Eq "^([A-Z_]+,)*$1(,[A-Z_]+)* $2\$" "$WORK/inotify.log"
}

@test "a write to NAME.yaml" {
	watch_dir "$NS/deployments"
	sed -n '1,$p' "$NS/deployments/web.yaml" | sed 's/busybox/busybox:1/' >"$WORK/w.yaml"
	cat "$WORK/w.yaml" >"$NS/deployments/web.yaml"
	saw MODIFY web.yaml
	saw CLOSE_WRITE web.yaml
}

@test "a create (cp of a new file)" {
	watch_dir "$NS/configmaps"
	printf 'data: {a: b}\n' >"$WORK/c.yaml"
	cp "$WORK/c.yaml" "$NS/configmaps/created.yaml"
	saw CREATE created.yaml
	saw CLOSE_WRITE created.yaml
}

@test "a rename over NAME.yaml (sed -i)" {
	watch_dir "$NS/configmaps"
	sed -i 's/a: b/a: c/' "$NS/configmaps/created.yaml"
	saw MOVED_TO created.yaml
	grep -q "a: c" "$NS/configmaps/created.yaml"
}

@test "rm of NAME.yaml" {
	watch_dir "$NS/configmaps"
	rm "$NS/configmaps/created.yaml"
	saw DELETE created.yaml
}

@test "a write to NAME/replicas raises MODIFY on NAME.yaml" {
	watch_dir "$NS/deployments"
	echo 4 >"$NS/deployments/web/replicas"
	saw MODIFY web.yaml
	saw CLOSE_WRITE web.yaml
	grep -q "replicas: 4" "$NS/deployments/web.yaml"
}

@test "apply raises CREATE on new objects and MODIFY on changed ones" {
	watch_dir "$NS/configmaps"
	printf 'data: {v: "1"}\n' >"$NS/configmaps/existing.yaml"
	saw CLOSE_WRITE existing.yaml
	: >"$WORK/inotify.log"
	printf 'kind: ConfigMap\nmetadata: {name: fresh}\ndata: {v: "1"}\n---\nkind: ConfigMap\nmetadata: {name: existing}\ndata: {v: "2"}\n' >"$NS/apply"
	saw CREATE fresh.yaml
	saw CLOSE_WRITE fresh.yaml
	saw MODIFY existing.yaml
	# the apply file itself is not an object; only the objects matter
	grep -q 'v: "2"' "$NS/configmaps/existing.yaml"
}

@test "the root apply raises events in the namespace it names" {
	watch_dir "$NS/configmaps"
	printf 'kind: ConfigMap\nmetadata: {name: rootapplied, namespace: default}\ndata: {v: "1"}\n' >"$M/apply"
	saw CREATE rootapplied.yaml
}

@test "mkdir and rmdir of a namespace raise CREATE and DELETE on NS.yaml" {
	watch_dir "$M/namespaces"
	mkdir "$M/namespaces/inotify-ns"
	saw CREATE inotify-ns.yaml
	rmdir "$M/namespaces/inotify-ns"
	saw DELETE inotify-ns.yaml
}

@test "a rejected write changes nothing and raises no event from the server" {
	# a StatefulSet: no controller of this tree writes to one, so every
	# MODIFY on its file comes from the writes below
	printf 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: c, image: busybox}]}\n' \
		>"$NS/statefulsets/db.yaml"
	watch_dir "$NS/statefulsets"
	before=$(cat "$NS/statefulsets/db.yaml")
	echo "abc" >"$NS/statefulsets/db/replicas" || true
	[ "$before" = "$(cat "$NS/statefulsets/db.yaml")" ]
	echo 3 >"$NS/statefulsets/db/replicas"
	saw MODIFY db.yaml
	[ "$(grep -c 'MODIFY db.yaml' "$WORK/inotify.log")" -eq 1 ]
	grep -q "replicas: 3" "$NS/statefulsets/db.yaml"
}
