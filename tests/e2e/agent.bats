#!/usr/bin/env bats
# The simulated node agent on the server's own mount: it registers its
# node, keeps it Ready, runs the pods bound to it, leaves the others alone,
# keeps an admin's spec, and runs many nodes from one process.

load helpers

setup_file() {
	start_server
	"$CLUSTERFS" agent --view "$M" --node sim1 --simulated --heartbeat 1 2>>"$WORK/agent.log" &
	echo $! >"$WORK/agent.pid"
	wait_for 10 test -e "$M/nodes/sim1.yaml"
}

# stop_agent PIDFILE: stops an agent by pid and waits for it to go.
stop_agent() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
	rm -f "$1"
}

agent_clean() {
	if grep -qsE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$WORK/agent.log"; then
		grep -E -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$WORK/agent.log" | head -60 >&2
		return 1
	fi
}

teardown_file() {
	local rc=0
	stop_agent "$WORK/agent.pid"
	stop_agent "$WORK/agent3.pid"
	agent_clean || rc=1
	cleanup_server || rc=1
	return $rc
}

pod() { # NAME NODE
	cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  nodeName: $2
  containers:
  - name: main
    image: nginx:1.25
  - name: side
    image: busybox
EOF
}

nodefile() { cat "$M/nodes/$1.yaml"; }
ready_since() { grep -B3 'reason: KubeletReady' "$M/nodes/$1.yaml" | sed -n 's/.*lastTransitionTime: //p'; }
not_run() { [ -z "$(sed -n '/^  phase: Running\|containerStatuses:\|^  podIP:/p' "$1")" ]; }
heartbeat() { sed -n 's/^  - lastHeartbeatTime: //p' "$M/nodes/$1.yaml" | tail -1; }
rv() { sed -n 's/^  resourceVersion: "\(.*\)"/\1/p' "$1"; }
running() { grep -q "^  phase: Running" "$1"; }
advanced() { [ "$(heartbeat "$1")" != "$2" ]; }

@test "the node registers with its labels, capacity, addresses and Ready" {
	run nodefile sim1
	[[ "$output" == *"kubernetes.io/hostname: sim1"* ]]
	[[ "$output" == *"kubernetes.io/os: linux"* ]]
	[[ "$output" == *"kubernetes.io/arch: amd64"* ]]
	[[ "$output" == *"clusterfs.io/runtime: simulated"* ]]
	[[ "$output" == *$'capacity:\n    cpu: "4"\n    memory: 8Gi\n    pods: "110"'* ]]
	[[ "$output" == *$'allocatable:\n    cpu: "4"\n    memory: 8Gi\n    pods: "110"'* ]]
	[[ "$output" == *"type: InternalIP"* ]]
	[[ "$output" == *$'- address: sim1\n    type: Hostname'* ]]
	[[ "$output" == *"kubeletVersion: clusterfs"* ]]
	[[ "$output" == *"containerRuntimeVersion: simulated"* ]]
	[[ "$output" == *"podCIDR: 10."* ]]
	[[ "$output" == *$'reason: KubeletReady\n    status: "True"\n    type: Ready'* ]]
	[[ "$output" == *"lastTransitionTime: "* ]]
	events_has "$M" "Normal NodeReady node/sim1:"
}

@test "the heartbeat advances, and the Ready transition time stays" {
	local before moved
	before=$(heartbeat sim1)
	since=$(ready_since sim1)
	[ -n "$since" ]
	wait_for 20 advanced sim1 "$before"
	[ "$(ready_since sim1)" = "$since" ]
}

@test "a pod bound to the node runs, with containerStatuses and a pod IP" {
	pod web sim1 >"$NS/pods/web.yaml"
	wait_for 5 running "$NS/pods/web.yaml"
	run cat "$NS/pods/web.yaml"
	[[ "$output" == *$'status: "True"\n    type: Ready'* ]]
	[[ "$output" == *$'status: "True"\n    type: ContainersReady'* ]]
	[[ "$output" == *$'status: "True"\n    type: Initialized'* ]]
	[[ "$output" == *$'status: "True"\n    type: PodScheduled'* ]]
	[[ "$output" == *"containerID: sim://"* ]]
	[[ "$output" == *"imageID: docker.io/library/nginx@sha256:"* ]]
	[[ "$output" == *$'ready: true\n    restartCount: 0\n    started: true\n    state:\n      running:\n        startedAt: '* ]]
	[ "$(grep -c 'containerID: sim://' "$NS/pods/web.yaml")" -eq 2 ]
	[[ "$output" == *"podIP: 10."* ]]
	[[ "$output" == *"hostIP: 172."* ]]
	[[ "$output" == *"startTime: "* ]]
}

@test "the status is written once: the agent's own write does not loop" {
	local r
	r=$(rv "$NS/pods/web.yaml")
	sleep 2.5 # two heartbeats
	[ "$(rv "$NS/pods/web.yaml")" = "$r" ]
}

@test "each pod gets its own address from the node's range" {
	pod web2 sim1 >"$NS/pods/web2.yaml"
	wait_for 5 running "$NS/pods/web2.yaml"
	a=$(sed -n 's/^  podIP: //p' "$NS/pods/web.yaml")
	b=$(sed -n 's/^  podIP: //p' "$NS/pods/web2.yaml")
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]
	cidr=$(sed -n 's/^  podCIDR: //p' "$M/nodes/sim1.yaml")
	[ "${a%.*}" = "${cidr%.*}" ] || [ "${a%.*.*}" = "${cidr%.*.*}" ]
}

@test "a pod bound to another node, or to none, is left alone" {
	pod away other-node >"$NS/pods/away.yaml"
	# a node selector no node matches, so that a scheduler leaves it unbound
	pod pending "" | sed 's/^  nodeName: $/  nodeSelector: {nowhere: "true"}/' >"$NS/pods/pending.yaml"
	pod mine sim1 >"$NS/pods/mine.yaml"
	wait_for 5 running "$NS/pods/mine.yaml" # the agent has seen all three by now
	not_run "$NS/pods/away.yaml"
	not_run "$NS/pods/pending.yaml"
	rm "$NS/pods/away.yaml" "$NS/pods/pending.yaml"
}

@test "a deleted pod is stopped, and one made again under its name starts anew" {
	old=$(sed -n 's/^  - containerID: //p' "$NS/pods/mine.yaml" | head -1)
	rm "$NS/pods/mine.yaml"
	pod mine sim1 >"$NS/pods/mine.yaml"
	wait_for 5 running "$NS/pods/mine.yaml"
	new=$(sed -n 's/^  - containerID: //p' "$NS/pods/mine.yaml" | head -1)
	[ -n "$new" ] && [ "$new" != "$old" ]
}

@test "an admin's spec.unschedulable survives the heartbeats" {
	local f=$M/nodes/sim1.yaml before i
	# read-modify-write without resourceVersion, so a heartbeat in between
	# cannot make it stale
	for i in 1 2 3 4 5; do
		sed -e 's/^spec:/spec:\n  unschedulable: true/' -e '/^  resourceVersion:/d' "$f" >"$WORK/n.yaml"
		cp "$WORK/n.yaml" "$f" && break
	done
	grep -q "^  unschedulable: true" "$f"
	before=$(heartbeat sim1)
	wait_for 20 advanced sim1 "$before"
	before=$(heartbeat sim1)
	wait_for 20 advanced sim1 "$before"
	grep -q "^  unschedulable: true" "$f"
	grep -q "kubernetes.io/hostname: sim1" "$f"
}

@test "a node file removed is registered again" {
	rm "$M/nodes/sim1.yaml"
	wait_for 5 test -e "$M/nodes/sim1.yaml"
	grep -q 'type: Ready' "$M/nodes/sim1.yaml"
}

@test "a restarted agent adopts its running pods without rewriting them" {
	local r
	r=$(rv "$NS/pods/web.yaml")
	stop_agent "$WORK/agent.pid"
	"$CLUSTERFS" agent --view "$M" --node sim1 --simulated --heartbeat 1 2>>"$WORK/agent.log" &
	echo $! >"$WORK/agent.pid"
	before=$(heartbeat sim1)
	wait_for 20 advanced sim1 "$before"
	pod after sim1 >"$NS/pods/after.yaml"
	wait_for 5 running "$NS/pods/after.yaml"
	[ "$(rv "$NS/pods/web.yaml")" = "$r" ]
	# the adopted addresses are not handed out again
	[ "$(sed -n 's/^  podIP: //p' "$NS/pods"/*.yaml | sort | uniq -d)" = "" ]
}

@test "--nodes 3 runs sim-0, sim-1 and sim-2 from one process, with --capacity" {
	"$CLUSTERFS" agent --view "$M" --node sim --nodes 3 --simulated --heartbeat 1 \
		--capacity cpu=8,nvidia.com/gpu=2 2>>"$WORK/agent.log" &
	echo $! >"$WORK/agent3.pid"
	for n in sim-0 sim-1 sim-2; do
		wait_for 5 test -e "$M/nodes/$n.yaml"
		wait_for 5 grep -q 'reason: KubeletReady' "$M/nodes/$n.yaml"
		grep -q 'cpu: "8"' "$M/nodes/$n.yaml"
		grep -q 'nvidia.com/gpu: "2"' "$M/nodes/$n.yaml"
		grep -q 'memory: 8Gi' "$M/nodes/$n.yaml"
		grep -q "kubernetes.io/hostname: $n" "$M/nodes/$n.yaml"
	done
	[ ! -e "$M/nodes/sim-3.yaml" ]
	[ "$(sed -n 's/^  podCIDR: //p' "$M"/nodes/sim-*.yaml | sort -u | wc -l)" -eq 3 ]
	pod on2 sim-2 >"$NS/pods/on2.yaml"
	wait_for 5 running "$NS/pods/on2.yaml"
	grep -q "hostIP: $(sed -n 's/^  - address: \(172\..*\)/\1/p' "$M/nodes/sim-2.yaml")" "$NS/pods/on2.yaml"
}

@test "bad options are refused with a reason" {
	run "$CLUSTERFS" agent --view "$M" --node x --nodes 2
	[ "$status" -eq 2 ]
	[[ "$output" == *"only simulated nodes share a process"* ]]
	run "$CLUSTERFS" agent --view "$M" --node x --bridge a-bridge-name-too-long
	[ "$status" -eq 2 ]
	[[ "$output" == *"an interface name of 1 to 15 characters"* ]]
	run "$CLUSTERFS" agent --view "$M" --node x --node-ip 10.0.0.300
	[ "$status" -eq 2 ]
	[[ "$output" == *'--node-ip "10.0.0.300": an IPv4 address'* ]]
	run "$CLUSTERFS" agent --view "$M" --node x --simulated --node-ip 10.0.0.3
	[ "$status" -eq 2 ]
	[[ "$output" == *"simulated nodes make their addresses up"* ]]
	run "$CLUSTERFS" agent --view "$M" --node x --image-gc-high-threshold 101
	[ "$status" -eq 2 ]
	[[ "$output" == *'image GC threshold "101": a percent'* ]]
	run "$CLUSTERFS" agent --view "$M" --node x --image-gc-high-threshold 50 \
		--image-gc-low-threshold 60
	[ "$status" -eq 2 ]
	[[ "$output" == *"above the high threshold"* ]]
	run "$CLUSTERFS" agent --view "$M" --node x --backoff never
	[ "$status" -eq 2 ]
	[[ "$output" == *"--backoff \"never\": seconds"* ]]
	run "$CLUSTERFS" agent --server 127.0.0.1:5640 --auth kerberos --node x --simulated
	[ "$status" -eq 2 ]
	[[ "$output" == *'--auth "kerberos": none or munge'* ]]
	run "$CLUSTERFS" agent --server 127.0.0.1:1 --node x --simulated --view "$WORK/view-x"
	[ "$status" -eq 2 ]
	[[ "$output" == *"127.0.0.1:1: Connection refused"* ]]
	run "$CLUSTERFS" agent --view "$WORK" --node x --simulated
	[ "$status" -eq 2 ]
	[[ "$output" == *"not a clusterfs view"* ]]
	run "$CLUSTERFS" agent --view "$M" --node x --simulated --capacity cpu=lots
	[ "$status" -eq 2 ]
	[[ "$output" == *'cpu: "lots" is not a quantity'* ]]
	run "$CLUSTERFS" agent --view "$M" --node Bad_Name --simulated
	[ "$status" -eq 2 ]
	[ ! -e "$M/nodes/x.yaml" ]
}
