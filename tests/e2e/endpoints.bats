#!/usr/bin/env bats
# The Endpoints controller through the mount: a server, the scheduler and
# one simulated node agent, whose pods run at once with a pod IP and
# Ready True.

load helpers

bats_require_minimum_version 1.5.0

setup_file() {
	start_server
	start_agent
	wait_for 20 test -e "$M/nodes/node-a.yaml"
}

teardown_file() {
	stop_watcher
	stop_agent
	cleanup_server
}

start_agent() {
	"$CLUSTERFS" agent --view "$M" --node node-a --simulated --heartbeat 1 2>>"$WORK/agent.log" 3>&- &
	echo $! >"$WORK/agent.pid"
}

stop_agent() {
	local pid
	pid=$(cat "$WORK/agent.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
	rm -f "$WORK/agent.pid"
}

stop_watcher() { # the inotifywait of a test, if it runs
	local pid
	pid=$(cat "$WORK/watcher.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	rm -f "$WORK/watcher.pid"
}

deployment() { # NAME REPLICAS: pods labelled app=NAME, tier=back, with port http 8080
	cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
spec:
  replicas: $2
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      labels: {app: $1, tier: back}
    spec:
      containers:
      - name: main
        image: busybox:1
        ports:
        - {name: http, containerPort: 8080}
EOF
}

service() { # NAME SELECTOR PORTS, the last two as YAML flow ("{app: web}", "[{port: 80}]")
	cat <<EOF
metadata:
  name: $1
  labels: {team: shop}
spec:
  selector: $2
  ports: $3
EOF
}

# subsets NAME: one line per subset of endpoints/NAME.yaml,
# "ports P1,P2 ready N notready M".
subsets() {
	awk '
		function flush() { if (seen) printf "ports %s ready %d notready %d\n", ports, r, nr }
		/^subsets:/ { in_subsets = 1; next }
		/^[^ -]/ { in_subsets = 0 }
		!in_subsets { next }
		/^- / { flush(); seen = 1; ports = ""; r = nr = 0 }
		/^[- ] [a-zA-Z]+:$/ { section = $NF; sub(/:$/, "", section) }
		/^(  - |    )ip: / { if (section == "addresses") r++; else nr++ }
		/^(  - |    )port: / { ports = ports (ports == "" ? "" : ",") $NF }
		END { flush() }
	' "$NS/endpoints/$1.yaml" 2>/dev/null
}

subsets_are() { # NAME EXPECTED (lines joined by "; ")
	[ "$(subsets "$1" | paste -sd';' | sed 's/;/; /g')" = "$2" ]
}

# ips NAME SECTION: the IPs in SECTION (addresses, notReadyAddresses), sorted.
ips() {
	awk -v want="$2" '
		/^[^ -]/ { section = "" }
		/^[- ] [a-zA-Z]+:$/ { section = $NF; sub(/:$/, "", section) }
		section == want && /^(  - |    )ip: / { print $NF }
	' "$NS/endpoints/$1.yaml" | sort
}

pods_of() { # APP: the names of its pods
	grep -l "^    app: $1$" "$NS"/pods/*.yaml 2>/dev/null | xargs -r -n1 basename | sed 's/\.yaml$//'
}

pod_ips() { # APP: its pods' IPs, sorted
	grep -l "^    app: $1$" "$NS"/pods/*.yaml | xargs grep -h "^  podIP:" | awk '{print $2}' | sort
}

rv() { # FILE: its metadata.resourceVersion
	sed -n 's/^  resourceVersion: "\(.*\)"$/\1/p' "$1"
}

# sync_point: returns once the controller has handled every change made
# before it (its queue is first in, first out): a throwaway Service's
# Endpoints appear.
sync_point() {
	SYNC=$((${SYNC:-0} + 1))
	service "sync-$SYNC" "{app: nothing}" "[{port: 80}]" >"$NS/services/sync-$SYNC.yaml"
	wait_for 10 test -e "$NS/endpoints/sync-$SYNC.yaml"
	rm "$NS/services/sync-$SYNC.yaml"
}

@test "a Service over a 3-replica Deployment gets its 3 ready pods and the target port" {
	deployment web 3 >"$NS/deployments/web.yaml"
	service web "{app: web}" "[{port: 80, targetPort: 8080}]" >"$NS/services/web.yaml"
	wait_for 20 subsets_are web "ports 8080 ready 3 notready 0"
	[ "$(ips web addresses)" = "$(pod_ips web)" ]
	f=$NS/endpoints/web.yaml
	grep -q "^kind: Endpoints$" "$f"
	grep -q "^    team: shop$" "$f" # the service's labels
	uid=$(sed -n 's/^  uid: //p' "$NS/services/web.yaml")
	grep -A6 "^  ownerReferences:" "$f" | grep -q "kind: Service"
	grep -A6 "^  ownerReferences:" "$f" | grep -q "uid: $uid"
	grep -q "^    nodeName: node-a$" "$f"
	grep -q "^      kind: Pod$" "$f"
	for p in $(pods_of web); do grep -q "^      name: $p$" "$f"; done
}

@test "a named targetPort resolves per pod; a pod without that port is left out of it" {
	printf 'metadata:\n  labels: {tier: back}\nspec:\n  containers: [{name: c, image: busybox}]\n' \
		>"$NS/pods/noport.yaml"
	service named "{tier: back}" "[{name: http, port: 80, targetPort: http}, {name: metrics, port: 9090}]" \
		>"$NS/services/named.yaml"
	wait_for 20 subsets_are named "ports 8080,9090 ready 3 notready 0; ports 9090 ready 1 notready 0"
	ip=$(sed -n 's/^  podIP: //p' "$NS/pods/noport.yaml")
	[ "$(awk '/^- /{n++} n == 2 && /ip: /{print $NF}' "$NS/endpoints/named.yaml")" = "$ip" ]
	rm "$NS/pods/noport.yaml" "$NS/services/named.yaml"
	wait_for 20 test ! -e "$NS/endpoints/named.yaml"
}

@test "scaling the Deployment to 5 lists 5 pods" {
	echo 5 >"$NS/deployments/web/replicas"
	wait_for 20 subsets_are web "ports 8080 ready 5 notready 0"
	[ "$(ips web addresses)" = "$(pod_ips web)" ]
}

@test "a pod whose Ready turns False moves to notReadyAddresses, and back when ready" {
	# The simulated agent reports every pod Ready: stopped, it lets the
	# pod's status be edited through the mount as a failing probe would.
	stop_agent
	victim=$(pods_of web | head -1)
	ip=$(sed -n 's/^  podIP: //p' "$NS/pods/$victim.yaml")
	sed -i '/status: "True"/{N;s/status: "True"\n    type: Ready$/status: "False"\n    type: Ready/}' \
		"$NS/pods/$victim.yaml"
	grep -B1 '^    type: Ready$' "$NS/pods/$victim.yaml" | grep -q 'status: "False"'
	wait_for 20 subsets_are web "ports 8080 ready 4 notready 1"
	[ "$(ips web notReadyAddresses)" = "$ip" ]
	start_agent # it reports the pod Ready again
	wait_for 20 subsets_are web "ports 8080 ready 5 notready 0"
}

@test "nothing is written while nothing the Endpoints show changed" {
	# The server makes an unchanged write a no-op, so the resourceVersion
	# cannot tell: inotify sees every write that reaches the mount.
	inotifywait -m -e modify,close_write "$NS/endpoints" >"$WORK/writes" 2>"$WORK/inotifywait.log" 3>&- &
	echo $! >"$WORK/watcher.pid"
	wait_for 10 grep -q "Watches established" "$WORK/inotifywait.log"
	# a change to the service that the Endpoints do not show
	service web "{app: web}" "[{port: 80, targetPort: 8080}]" |
		sed 's/^  labels:/  annotations: {note: hello}\n  labels:/' >"$NS/services/web.yaml"
	grep -q "note: hello" "$NS/services/web.yaml"
	sync_point
	stop_watcher
	grep -q "sync-$SYNC.yaml" "$WORK/writes" # the watch saw the sync point's write
	run ! grep -q " web.yaml$" "$WORK/writes"
}

@test "a hand edit of managed Endpoints is undone, and rm brings them back" {
	printf 'subsets:\n- addresses: [{ip: 192.0.2.1}]\n  ports: [{port: 1}]\n' >"$NS/endpoints/web.yaml"
	wait_for 20 subsets_are web "ports 8080 ready 5 notready 0"
	run ! grep -q 192.0.2.1 "$NS/endpoints/web.yaml"
	rm "$NS/endpoints/web.yaml"
	wait_for 20 subsets_are web "ports 8080 ready 5 notready 0"
}

@test "changing the selector changes the set" {
	deployment other 2 >"$NS/deployments/other.yaml"
	sed -i 's/^    app: web$/    app: other/' "$NS/services/web.yaml"
	grep -q "app: other" "$NS/services/web.yaml"
	wait_for 20 subsets_are web "ports 8080 ready 2 notready 0"
	[ "$(ips web addresses)" = "$(pod_ips other)" ]
}

@test "a Service without a selector keeps the Endpoints its user writes" {
	printf 'spec:\n  ports: [{port: 80}]\n' >"$NS/services/ext.yaml"
	printf 'subsets:\n- addresses: [{ip: 192.0.2.10}]\n  ports: [{port: 80}]\n' >"$NS/endpoints/ext.yaml"
	printf 'spec:\n  ports: [{port: 80}]\n' >"$NS/services/bare.yaml"
	before=$(cat "$NS/endpoints/ext.yaml")
	printf 'metadata:\n  labels: {x: y}\nspec:\n  ports: [{port: 80}]\n' >"$NS/services/ext.yaml"
	sync_point
	[ "$(cat "$NS/endpoints/ext.yaml")" = "$before" ]
	[ ! -e "$NS/endpoints/bare.yaml" ] # and none is made for it
	# Not made by the controller, they stay when the service goes.
	rm "$NS/services/ext.yaml" "$NS/services/bare.yaml"
	sync_point
	[ "$(cat "$NS/endpoints/ext.yaml")" = "$before" ]
	rm "$NS/endpoints/ext.yaml"
}

@test "deleting the Service removes its Endpoints" {
	rm "$NS/services/web.yaml"
	wait_for 20 test ! -e "$NS/endpoints/web.yaml"
}
