#!/usr/bin/env bats
# Deployments end to end on simulated nodes: the Deployment and ReplicaSet
# controllers, the scheduler and two simulated node agents, through the mount.

load helpers

setup_file() {
	export SERVER_ARGS="--node-grace 3 --eviction-timeout 2"
	start_server
	"$CLUSTERFS" agent --view "$M" --node node-a --simulated --heartbeat 1 2>"$WORK/agent-a.log" &
	echo $! >"$WORK/agent-a.pid"
	"$CLUSTERFS" agent --view "$M" --node node-b --simulated --heartbeat 1 2>"$WORK/agent-b.log" &
	echo $! >"$WORK/agent-b.pid"
	wait_for 20 test -e "$M/nodes/node-a.yaml"
	wait_for 20 test -e "$M/nodes/node-b.yaml"
}

teardown_file() {
	local pid
	for a in a b; do
		pid=$(cat "$WORK/agent-$a.pid" 2>/dev/null) || continue
		kill "$pid" 2>/dev/null
		wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
	done
	cleanup_server
}

deployment() { # NAME REPLICAS IMAGE [STRATEGY]
	cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
spec:
  replicas: $2
  strategy:
    type: ${4:-RollingUpdate}
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

# running APP N [IMAGE]: exactly N pods of APP, all Running and Ready (with IMAGE).
running() {
	local n=0 f
	for f in "$NS"/pods/*.yaml; do
		[ -e "$f" ] || continue
		grep -q "^    app: $1$" "$f" || continue
		grep -q "^  phase: Running" "$f" || return 1
		[ -z "${3:-}" ] || grep -q "image: $3$" "$f" || return 1
		n=$((n + 1))
	done
	[ "$n" -eq "$2" ]
}

nodes_of() { # APP: the distinct nodes its pods run on
	grep -l "^    app: $1$" "$NS"/pods/*.yaml | xargs grep -h "^  nodeName:" | sort -u | wc -l
}

@test "a Deployment of 3 runs on both nodes" {
	deployment web 3 busybox:1 >"$NS/deployments/web.yaml"
	wait_for 20 running web 3
	[ "$(nodes_of web)" -eq 2 ]
	wait_for 10 grep -q "^  availableReplicas: 3$" "$NS/deployments/web.yaml"
	grep -q "Scheduled pod/web-" "$NS/events"
}

@test "echo 5 > replicas, then 1" {
	echo 5 >"$NS/deployments/web/replicas"
	wait_for 20 running web 5
	echo 1 >"$NS/deployments/web/replicas"
	wait_for 20 running web 1
	echo 4 >"$NS/deployments/web/replicas"
	wait_for 20 running web 4
}

@test "rm of a pod is replaced" {
	victim=$(grep -l "^    app: web$" "$NS"/pods/*.yaml | head -1)
	rm "$victim"
	wait_for 20 running web 4
	[ ! -e "$victim" ]
}

# Follows the pods of app web through /cluster/watch from revision $1 until
# every pod runs IMAGE $2, and prints the fewest ready pods seen.
follow_rollout() {
	timeout 60 python3 -c '
import os, sys
mount, since, image = sys.argv[1], sys.argv[2], sys.argv[3]
fd = os.open(mount + "/watch", os.O_RDWR)
os.write(fd, ("namespaces/default/pods since %s\n" % since).encode())
ready, done, least, buf = {}, False, None, ""
def state(path):
    try:
        text = open(mount + "/" + path).read()
    except FileNotFoundError:
        return None
    if "\n    app: web\n" not in text:
        return None
    ok = "type: Ready" in text and "phase: Running" in text and "deletionTimestamp" not in text
    return (ok, ("image: " + image + "\n") in text)
for f in os.listdir(mount + "/namespaces/default/pods"):
    p = "namespaces/default/pods/" + f
    if f.endswith(".yaml") and state(p) is not None:
        ready[p] = state(p)
while not done:
    buf += os.read(fd, 65536).decode()
    while "\n" in buf:
        line, buf = buf.split("\n", 1)
        rev, change, path = line.split(" ")
        s = state(path)
        if s is None:
            ready.pop(path, None)
        else:
            ready[path] = s
        n = sum(1 for ok, _ in ready.values() if ok)
        least = n if least is None else min(least, n)
        if len(ready) == 4 and all(ok and new for ok, new in ready.values()):
            done = True
print(least)
' "$M" "$1" "$2"
}

@test "an image change rolls out, never below replicas - maxUnavailable ready" {
	# replicas 4: maxSurge 1 and maxUnavailable 1 (25%)
	wait_for 20 running web 4
	rev=$(sed -n 's/^  resourceVersion: "\(.*\)"/\1/p' "$NS/deployments/web.yaml")
	# the watch starts at the deployment's revision: it sees the whole rollout
	for f in "$NS"/pods/*.yaml; do
		r=$(sed -n 's/^  resourceVersion: "\(.*\)"/\1/p' "$f")
		[ "$r" -gt "$rev" ] && rev=$r
	done
	follow_rollout "$rev" busybox:2 >"$WORK/least" &
	follower=$!
	sed -i 's/image: busybox:1/image: busybox:2/' "$NS/deployments/web.yaml"
	wait "$follower"
	least=$(cat "$WORK/least")
	echo "fewest ready pods during the rollout: $least"
	[ "$least" -ge 3 ]
	wait_for 20 running web 4 busybox:2
	[ "$(ls "$NS/deployments/web/revisions" | tr '\n' ' ')" = "1 2 " ]
	grep -q "Scaled down replica set web-" "$NS/events"
}

@test "rollback to the previous revision" {
	echo previous >"$NS/deployments/web/rollback"
	wait_for 10 grep -q "image: busybox:1$" "$NS/deployments/web.yaml"
	wait_for 30 running web 4 busybox:1
	[ "$(ls "$NS/deployments/web/revisions" | tr '\n' ' ')" = "2 3 " ]
	grep -q "DeploymentRollback deployment/web" "$NS/events"
}

@test "Recreate stops every old pod before a new one starts" {
	deployment rec 2 busybox:1 Recreate >"$NS/deployments/rec.yaml"
	wait_for 20 running rec 2 busybox:1
	sed -i 's/image: busybox:1/image: busybox:2/' "$NS/deployments/rec.yaml"
	wait_for 30 running rec 2 busybox:2
	# from the events: every old pod went before the new set was scaled up
	old_gone=$(grep -n "SuccessfulDelete replicaset/rec-" "$NS/events" | tail -1 | cut -d: -f1)
	new_up=$(grep -n "Scaled up replica set rec-" "$NS/events" | tail -1 | cut -d: -f1)
	[ "$old_gone" -lt "$new_up" ]
}

@test "a paused Deployment does not roll out until it is resumed" {
	deployment pz 2 busybox:1 >"$NS/deployments/pz.yaml"
	wait_for 20 running pz 2 busybox:1
	sed -i 's/^  replicas: 2$/  paused: true\n  replicas: 2/' "$NS/deployments/pz.yaml"
	grep -q "paused: true" "$NS/deployments/pz.yaml"
	sed -i 's/image: busybox:1/image: busybox:2/' "$NS/deployments/pz.yaml"
	# a template change while paused makes no new ReplicaSet
	sleep 1
	[ "$(ls "$NS/replicasets" | grep -c '^pz-.*\.yaml$')" -eq 1 ]
	running pz 2 busybox:1
	sed -i '/^  paused: true$/d' "$NS/deployments/pz.yaml"
	wait_for 30 running pz 2 busybox:2
}

@test "revisionHistoryLimit keeps that many old ReplicaSets" {
	sed -i 's/revisionHistoryLimit: 10$/revisionHistoryLimit: 1/' "$NS/deployments/pz.yaml"
	grep -q 'revisionHistoryLimit: 1$' "$NS/deployments/pz.yaml"
	for v in 3 4 5; do
		sed -i "s/image: busybox:[0-9]*$/image: busybox:$v/" "$NS/deployments/pz.yaml"
		wait_for 30 running pz 2 "busybox:$v"
	done
	# the current one and one old one
	wait_for 20 sh -c "[ \$(ls $NS/replicasets | grep -c '^pz-.*\.yaml\$') -eq 2 ]"
	rm "$NS/deployments/pz.yaml"
	wait_for 20 running pz 0
}

@test "deleting a Deployment removes its ReplicaSets and pods" {
	rm "$NS/deployments/rec.yaml"
	wait_for 20 sh -c "! ls $NS/replicasets | grep -q '^rec-'"
	wait_for 20 running rec 0
}

@test "a node that stops heartbeating turns Unknown; its pods come back on the other" {
	wait_for 20 running web 4
	kill "$(cat "$WORK/agent-b.pid")"
	wait_for 20 grep -q "status: Unknown" "$M/nodes/node-b.yaml"
	wait_for 30 sh -c "! grep -l '^    app: web$' $NS/pods/*.yaml | xargs grep -q 'nodeName: node-b'"
	wait_for 30 running web 4
	[ "$(grep -l "^    app: web$" "$NS"/pods/*.yaml | xargs grep -h "^  nodeName:" | sort -u)" = "  nodeName: node-a" ]
}
