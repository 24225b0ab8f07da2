#!/usr/bin/env bats
# The file layout as a user meets it: create, read, change, scale, apply,
# edit with real editors, delete, namespaces, secrets, grep -r.

load helpers

setup_file() {
	start_server
}

teardown_file() {
	cleanup_server
}

deployment() { # NAME REPLICAS IMAGE
	cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
  labels: {app: $1}
spec:
  replicas: $2
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      labels: {app: $1}
    spec:
      containers:
      - name: main
        image: $3
EOF
}

@test "the tree: root files, namespaces, every kind directory" {
	run ls "$M"
	[ "$output" = "$(printf 'README\napply\nevents\nnamespaces\nnodes\nwatch')" ]
	for k in pods deployments replicasets replicationcontrollers services endpoints \
		configmaps secrets jobs cronjobs daemonsets statefulsets horizontalpodautoscalers; do
		[ -d "$NS/$k" ]
	done
	grep -q "clusterfs" "$M/README"
	grep -q "^kind: Namespace" "$M/namespaces/default.yaml"
}

@test "cp of a Deployment creates it with the server's fields and defaults" {
	deployment web 3 nginx:1.25 >"$WORK/web.yaml"
	cp "$WORK/web.yaml" "$NS/deployments/web.yaml"
	run cat "$NS/deployments/web.yaml"
	[[ "$output" == *"kind: Deployment"* ]]
	[[ "$output" == *"uid: "* ]]
	[[ "$output" == *"resourceVersion: \""* ]]
	[[ "$output" == *"generation: 1"* ]]
	[[ "$output" == *"creationTimestamp: "* ]]
	[[ "$output" == *"imagePullPolicy: IfNotPresent"* ]]
	[[ "$output" == *"maxSurge: 25%"* ]]
	# keys in a stable order: apiVersion, kind, metadata, spec
	keys=$(grep -oE '^[a-zA-Z]+:' "$NS/deployments/web.yaml" | tr '\n' ' ')
	[ "$keys" = "apiVersion: kind: metadata: spec: " ] || [ "$keys" = "apiVersion: kind: metadata: spec: status: " ]
}

@test "ls -l shows the exact size, and the mtime of the last change" {
	size=$(stat -c %s "$NS/deployments/web.yaml")
	[ "$size" -eq "$(cat "$NS/deployments/web.yaml" | wc -c)" ]
	before=$(stat -c %Y "$NS/deployments/web.yaml")
	sleep 1.1 # mtime has one-second resolution in stat -c %Y
	sed -i 's/nginx:1.25/nginx:1.26/' "$NS/deployments/web.yaml"
	after=$(stat -c %Y "$NS/deployments/web.yaml")
	[ "$after" -gt "$before" ]
	[ "$(stat -c %s "$NS/deployments/web.yaml")" -eq "$(cat "$NS/deployments/web.yaml" | wc -c)" ]
}

@test "a spec change bumps generation; a label change does not" {
	gen() { sed -n 's/^  generation: //p' "$NS/deployments/web.yaml"; }
	g1=$(gen)
	sed -i 's/nginx:1.26/nginx:1.27/' "$NS/deployments/web.yaml"
	[ "$(gen)" -eq $((g1 + 1)) ]
	sed -i '0,/    app: web/s//    app: web\n    tier: front/' "$NS/deployments/web.yaml"
	grep -q "tier: front" "$NS/deployments/web.yaml"
	[ "$(gen)" -eq $((g1 + 1)) ]
}

@test "the document may leave out what its path says" {
	printf 'data:\n  key: value\n' >"$NS/configmaps/short.yaml"
	grep -q "^kind: ConfigMap" "$NS/configmaps/short.yaml"
	grep -q "^apiVersion: v1" "$NS/configmaps/short.yaml"
	grep -q "  name: short" "$NS/configmaps/short.yaml"
	grep -q "  namespace: default" "$NS/configmaps/short.yaml"
}

@test "replicas: read it, echo a number into it" {
	[ "$(cat "$NS/deployments/web/replicas")" = 3 ]
	echo 5 >"$NS/deployments/web/replicas"
	grep -q "  replicas: 5" "$NS/deployments/web.yaml"
	[ "$(cat "$NS/deployments/web/replicas")" = 5 ]
	echo 1 >"$NS/deployments/web/replicas"
	grep -q "  replicas: 1" "$NS/deployments/web.yaml"
}

@test "status is kept when a write carries none" {
	# a Node: no controller writes the status of a node without an agent
	printf 'spec:\n  podCIDR: 10.244.9.0/24\nstatus:\n  capacity: {cpu: "2"}\n' >"$M/nodes/keep.yaml"
	grep -q 'cpu: "2"' "$M/nodes/keep.yaml"
	printf 'metadata:\n  labels: {zone: b}\nspec:\n  podCIDR: 10.244.9.0/24\n' >"$M/nodes/keep.yaml"
	grep -q "zone: b" "$M/nodes/keep.yaml"
	grep -q 'cpu: "2"' "$M/nodes/keep.yaml"
}

@test "vim edits an object (swap file, backup and rename included)" {
	vim -u NONE -i NONE -N -es -c 'set backup writebackup' -c '%s/nginx:1.27/nginx:1.28/' -c 'wq' \
		"$NS/deployments/web.yaml"
	grep -q "image: nginx:1.28" "$NS/deployments/web.yaml"
	vim -u NONE -i NONE -N -es -c 'set nobackup nowritebackup backupcopy=no' \
		-c '%s/nginx:1.28/nginx:1.29/' -c 'wq' "$NS/deployments/web.yaml"
	grep -q "image: nginx:1.29" "$NS/deployments/web.yaml"
	# vim with a swap file in the directory, then gone
	vim -u NONE -i NONE -N -es -c 'set swapfile directory=.' -c '%s/nginx:1.29/nginx:1.30/' -c 'wq' \
		"$NS/deployments/web.yaml"
	grep -q "image: nginx:1.30" "$NS/deployments/web.yaml"
}

@test "sed -i, tee and python write objects; scratch files vanish after rename" {
	sed -i 's/value/changed/' "$NS/configmaps/short.yaml"
	grep -q "key: changed" "$NS/configmaps/short.yaml"
	printf 'data:\n  key: teed\n' | tee "$NS/configmaps/short.yaml" >/dev/null
	grep -q "key: teed" "$NS/configmaps/short.yaml"
	python3 -c "open('$NS/configmaps/py.yaml','w').write('data:\n  a: \"1\"\n')"
	grep -q 'a: "1"' "$NS/configmaps/py.yaml"
	# nothing but objects is left in the directory
	run ls -A "$NS/configmaps"
	[ "$output" = "$(printf 'py.yaml\nshort.yaml')" ]
}

@test "scratch files behave as files until they are renamed over an object" {
	printf 'data:\n  k: from-scratch\n' >"$NS/configmaps/.tmp123"
	[ "$(cat "$NS/configmaps/.tmp123")" = "$(printf 'data:\n  k: from-scratch')" ]
	ls -A "$NS/configmaps" | grep -qx .tmp123
	mv "$NS/configmaps/.tmp123" "$NS/configmaps/fromtmp.yaml"
	grep -q "k: from-scratch" "$NS/configmaps/fromtmp.yaml"
	! ls -A "$NS/configmaps" | grep -qx .tmp123
	echo junk >"$NS/configmaps/4913"
	rm "$NS/configmaps/4913"
	[ ! -e "$NS/configmaps/4913" ]
}

@test "a scratch file keeps every byte; renaming more than 1 MiB onto an object fails EFBIG" {
	python3 -c "
import sys
sys.stdout.write('data:\n' + ''.join('  k%06d: \"%s\"\n' % (i, 'v' * 60) for i in range(20000)))
" >"$WORK/big.yaml"
	cp "$WORK/big.yaml" "$NS/configmaps/tmpBIG"
	[ "$(stat -c %s "$NS/configmaps/tmpBIG")" -eq "$(stat -c %s "$WORK/big.yaml")" ]
	cmp "$WORK/big.yaml" "$NS/configmaps/tmpBIG"
	run mv "$NS/configmaps/tmpBIG" "$NS/configmaps/big.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"File too large"* ]]
	[ ! -e "$NS/configmaps/big.yaml" ]
	rm "$NS/configmaps/tmpBIG"
}

@test "an open scratch file keeps its attributes after it is renamed" {
	run python3 -c "
import os
d = '$NS/configmaps'
fd = os.open(d + '/.swp1', os.O_CREAT | os.O_RDWR)
os.write(fd, b'data: {k: v}\n')
os.rename(d + '/.swp1', d + '/.swp2')
os.ftruncate(fd, 5)
print(os.fstat(fd).st_size)
os.close(fd)
os.unlink(d + '/.swp2')
"
	[ "$status" -eq 0 ]
	[ "$output" = 5 ]
}

@test "truncate -s 0 of an object applies nothing and says so" {
	before=$(cat "$NS/configmaps/py.yaml")
	truncate -s 0 "$NS/configmaps/py.yaml"
	[ "$(cat "$NS/configmaps/py.yaml")" = "$before" ]
	grep -q "Warning Ignored configmaps/py.yaml" "$NS/events"
}

@test "rm deletes an object" {
	rm "$NS/configmaps/fromtmp.yaml"
	[ ! -e "$NS/configmaps/fromtmp.yaml" ]
	! ls "$NS/configmaps" | grep -q fromtmp
}

@test "apply creates and updates several objects in one transaction" {
	cat >"$NS/apply" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {mode: prod}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
EOF
	grep -q "mode: prod" "$NS/configmaps/app-config.yaml"
	grep -q "targetPort: 80" "$NS/services/web.yaml"
	[ -d "$M/namespaces/team-a" ]
	# one bad document: nothing of the batch is applied
	run python3 -c "
import os
fd = os.open('$NS/apply', os.O_WRONLY | os.O_TRUNC)
os.write(fd, b'kind: ConfigMap\nmetadata: {name: batch-a}\ndata: {a: b}\n---\nkind: Service\nmetadata: {name: Bad_Name}\n')
try:
    os.close(fd)
except OSError as e:
    print(e.errno)
"
	[ "$output" = 22 ]
	[ ! -e "$NS/configmaps/batch-a.yaml" ]
	grep -q "apply: document 2" "$NS/events"
}

@test "several writers sharing one open apply file are applied together" {
	printf 'kind: ConfigMap\nmetadata: {name: shared-a}\ndata: {a: b}\n---\n' >"$WORK/a.yaml"
	printf 'kind: ConfigMap\nmetadata: {name: shared-b}\ndata: {a: b}\n' >"$WORK/b.yaml"
	before=$(grep -c "Rejected apply" "$NS/events" || true)
	{ cat "$WORK/a.yaml"; cat "$WORK/b.yaml"; } >"$NS/apply"
	[ -e "$NS/configmaps/shared-a.yaml" ]
	[ -e "$NS/configmaps/shared-b.yaml" ]
	[ "$(grep -c "Rejected apply" "$NS/events" || true)" -eq "$before" ]
}

@test "the root apply takes documents for any namespace" {
	printf 'kind: ConfigMap\nmetadata: {name: x, namespace: team-a}\ndata: {a: b}\n' >"$M/apply"
	grep -q "a: b" "$M/namespaces/team-a/configmaps/x.yaml"
}

@test "mkdir and rmdir make and remove namespaces; a namespace in use stays" {
	mkdir "$M/namespaces/scratch-ns"
	grep -q "name: scratch-ns" "$M/namespaces/scratch-ns.yaml"
	[ -d "$M/namespaces/scratch-ns/pods" ]
	rmdir "$M/namespaces/scratch-ns"
	[ ! -e "$M/namespaces/scratch-ns" ]
	run rmdir "$M/namespaces/team-a"
	[ "$status" -ne 0 ]
	[[ "$output" == *"not empty"* ]]
	rm "$M/namespaces/team-a/configmaps/x.yaml"
	rm -r "$M/namespaces/team-a"
	[ ! -e "$M/namespaces/team-a" ]
}

@test "secrets are readable by their owner only, stringData is folded into data" {
	printf 'stringData:\n  password: hunter2\n' >"$NS/secrets/db.yaml"
	[ "$(stat -c %a "$NS/secrets/db.yaml")" = 600 ]
	grep -q "password: aHVudGVyMg==" "$NS/secrets/db.yaml"
	! grep -q stringData "$NS/secrets/db.yaml"
	# another user cannot read it
	run setpriv --reuid=65534 --regid=65534 --clear-groups cat "$NS/secrets/db.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Permission denied"* ]]
	run setpriv --reuid=65534 --regid=65534 --clear-groups cat "$NS/configmaps/short.yaml"
	[ "$status" -eq 0 ]
}

@test "nodes are cluster-scoped objects at the root" {
	printf 'metadata:\n  labels: {zone: a}\nspec:\n  podCIDR: 10.244.1.0/24\n' >"$M/nodes/n1.yaml"
	grep -q "^kind: Node" "$M/nodes/n1.yaml"
	! grep -q "namespace:" "$M/nodes/n1.yaml"
}

@test "an events line can be written, and is read back with a timestamp" {
	echo "Normal Tested deployment/web: hello from a test" >>"$NS/events"
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z Normal Tested deployment/web: hello from a test$' "$NS/events"
}

@test "grep -r over the whole mount finishes" {
	run timeout 30 grep -r "nginx:1.30" "$M"
	[ "$status" -eq 0 ]
	[[ "$output" == *"deployments/web.yaml"* ]]
}
