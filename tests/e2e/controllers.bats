#!/usr/bin/env bats
# The ReplicaSet/ReplicationController controller and the garbage
# collector, through the mount, as a user sees them.

load helpers

setup_file() {
	start_server
}

teardown_file() {
	cleanup_server
}

pods_of() { # OWNER: names of the pods whose controller is OWNER
	grep -l "^    name: $1$" "$NS"/pods/*.yaml 2>/dev/null | xargs -r -n1 basename | sed 's/\.yaml$//'
}

count_pods() { # OWNER N
	[ "$(pods_of "$1" | wc -l)" -eq "$2" ]
}

replicaset() { # NAME REPLICAS APP
	cat <<EOF2
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: $1
spec:
  replicas: $2
  selector:
    matchLabels: {app: $3}
  template:
    metadata:
      labels: {app: $3}
    spec:
      containers:
      - name: main
        image: busybox:1
EOF2
}

@test "a ReplicaSet of 3 gets 3 pods named after it, owned by it" {
	replicaset rs1 3 one >"$NS/replicasets/rs1.yaml"
	wait_for 10 count_pods rs1 3
	for p in $(pods_of rs1); do
		[[ "$p" =~ ^rs1-[a-z0-9]{5}$ ]]
		grep -q "kind: ReplicaSet" "$NS/pods/$p.yaml"
		grep -q "controller: true" "$NS/pods/$p.yaml"
		grep -q "app: one" "$NS/pods/$p.yaml"
	done
	grep -q "SuccessfulCreate replicaset/rs1: Created pod: rs1-" "$NS/events"
}

@test "echo 5 > replicas adds two pods; echo 1 leaves one" {
	echo 5 >"$NS/replicasets/rs1/replicas"
	wait_for 10 count_pods rs1 5
	echo 1 >"$NS/replicasets/rs1/replicas"
	wait_for 10 count_pods rs1 1
	grep -q "SuccessfulDelete replicaset/rs1: Deleted pod: rs1-" "$NS/events"
}

@test "status counts the pods and the generation it saw" {
	wait_for 10 grep -q "^  replicas: 1$" "$NS/replicasets/rs1.yaml"
	gen=$(sed -n 's/^  generation: //p' "$NS/replicasets/rs1.yaml")
	wait_for 10 grep -q "^  observedGeneration: $gen$" "$NS/replicasets/rs1.yaml"
}

@test "rm of a pod is replaced" {
	victim=$(pods_of rs1)
	rm "$NS/pods/$victim.yaml"
	wait_for 10 sh -c "[ -n \"\$(grep -l '^    name: rs1$' $NS/pods/*.yaml | grep -v $victim)\" ]"
	wait_for 10 count_pods rs1 1
}

@test "a matching pod nobody owns is adopted; one whose labels change is released" {
	printf 'metadata:\n  labels: {app: adopt}\nspec:\n  containers: [{name: c, image: busybox}]\n' \
		>"$NS/pods/stray.yaml"
	replicaset rs2 1 adopt >"$NS/replicasets/rs2.yaml"
	# the stray is adopted, and no pod is made
	wait_for 10 grep -q "^    name: rs2$" "$NS/pods/stray.yaml"
	wait_for 10 count_pods rs2 1
	[ "$(pods_of rs2)" = stray ]
	sed -i 's/app: adopt/app: elsewhere/' "$NS/pods/stray.yaml"
	wait_for 10 sh -c "! grep -q 'ownerReferences' $NS/pods/stray.yaml"
	wait_for 10 count_pods rs2 1
	[ "$(pods_of rs2)" != stray ]
	rm "$NS/pods/stray.yaml" "$NS/replicasets/rs2.yaml"
	wait_for 10 count_pods rs2 0
}

@test "a ReplicationController keeps its pods, with its map selector" {
	cat >"$NS/replicationcontrollers/rc1.yaml" <<'EOF2'
apiVersion: v1
kind: ReplicationController
metadata: {name: rc1}
spec:
  replicas: 2
  selector: {app: rc}
  template:
    metadata:
      labels: {app: rc}
    spec:
      containers: [{name: c, image: busybox}]
EOF2
	wait_for 10 count_pods rc1 2
	grep -q "kind: ReplicationController" "$NS/pods/$(pods_of rc1 | head -1).yaml"
}

@test "deleting a ReplicaSet takes its pods (garbage collection)" {
	rm "$NS/replicasets/rs1.yaml"
	wait_for 10 count_pods rs1 0
	grep -q "GarbageCollected" "$NS/events"
	rm "$NS/replicationcontrollers/rc1.yaml"
	wait_for 10 count_pods rc1 0
}

@test "an object whose owner does not exist is collected" {
	cat >"$NS/pods/orphaned.yaml" <<'EOF2'
metadata:
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: never, uid: 00000000-0000-4000-8000-000000000000, controller: true}
spec:
  containers: [{name: c, image: busybox}]
EOF2
	wait_for 10 sh -c "[ ! -e $NS/pods/orphaned.yaml ]"
}

@test "rm -r of a namespace removes what it holds, and the namespace" {
	mkdir "$M/namespaces/doomed"
	replicaset d1 2 d | sed 's/^metadata:/metadata:\n  namespace: doomed/' >"$M/namespaces/doomed/replicasets/d1.yaml"
	printf 'data: {a: b}\n' >"$M/namespaces/doomed/configmaps/c.yaml"
	wait_for 10 sh -c "[ \$(ls $M/namespaces/doomed/pods | grep -c '\.yaml\$') -eq 2 ]"
	# a live ReplicaSet makes pods again while rm walks the tree (there is
	# no namespace controller yet to stop it): its owner goes first
	rm "$M/namespaces/doomed/replicasets/d1.yaml"
	wait_for 20 sh -c "[ \$(ls $M/namespaces/doomed/pods | wc -l) -eq 0 ]"
	printf 'spec:\n  containers: [{name: c, image: busybox}]\n' >"$M/namespaces/doomed/pods/bare.yaml"
	rm -r "$M/namespaces/doomed"
	[ ! -e "$M/namespaces/doomed" ]
	[ ! -e "$M/namespaces/doomed.yaml" ]
}

@test "a node that stops heartbeating turns Unknown, and then loses its pods" {
	stop_server
	SERVER_ARGS="--node-grace 2 --eviction-timeout 2" start_server
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	cat >"$M/nodes/quiet.yaml" <<EOF2
status:
  conditions:
  - {type: Ready, status: "True", reason: KubeletReady, lastHeartbeatTime: "$now", lastTransitionTime: "$now"}
EOF2
	printf 'spec:\n  nodeName: quiet\n  containers: [{name: c, image: busybox}]\n' >"$NS/pods/onquiet.yaml"
	wait_for 10 grep -q 'status: Unknown' "$M/nodes/quiet.yaml"
	grep -q "NodeNotReady node/quiet" "$M/events"
	[ -e "$NS/pods/onquiet.yaml" ] # not yet: the eviction timeout runs
	wait_for 10 sh -c "[ ! -e $NS/pods/onquiet.yaml ]"
	grep -q "TaintManagerEviction pod/onquiet" "$NS/events"
}

@test "controllers re-list after an inotify queue overflow and miss nothing" {
	stop_server
	# a queue of 16 events for the inotify instances the server makes now;
	# the limit is set back as soon as the server has started them
	old=$(cat /proc/sys/fs/inotify/max_queued_events)
	echo 16 >/proc/sys/fs/inotify/max_queued_events
	rc=0
	start_server || rc=1
	sleep 1 # the controllers' threads call inotify_init at their start
	echo "$old" >/proc/sys/fs/inotify/max_queued_events
	[ "$rc" -eq 0 ]
	replicaset flood 40 flood >"$NS/replicasets/flood.yaml"
	wait_for 60 count_pods flood 40
	grep -q "inotify queue overflowed; listing everything again" "$WORK/server.log"
	rm "$NS/replicasets/flood.yaml"
	wait_for 60 count_pods flood 0
}
