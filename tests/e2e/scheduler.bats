#!/usr/bin/env bats
# The scheduler, driven through the mount as a user would: Node objects
# written by hand (Ready, with allocatable), pods written, and what the
# scheduler writes back read from the pod files and the events files.

load helpers

setup() {
	start_server
}

teardown() {
	cleanup_server
}

# node NAME CPU [LABELS] [SPEC] [READY]: a Node with 8Gi and 110 pods;
# LABELS and SPEC are YAML flow maps, READY the Ready condition's status;
# with BEAT set, the condition's lastHeartbeatTime.
node() {
	local labels=${3:-"{}"} spec=${4:-"{}"}
	cat >"$M/nodes/$1.yaml" <<EOF
metadata:
  name: $1
  labels: $labels
spec: $spec
status:
  allocatable: {cpu: "$2", memory: 8Gi, pods: "110"}
  conditions:
  - {type: Ready, status: "${5:-True}"${BEAT:+, lastHeartbeatTime: "$BEAT"}}
EOF
}

# pod NAME CPU [LINES]: a pod of one container requesting CPU; LINES
# indented by 4 extend the container, by 2 the spec.
pod() {
	cat >"$NS/pods/$1.yaml" <<EOF
metadata: {name: $1}
spec:
  containers:
  - name: main
    image: nginx
    resources: {requests: {cpu: "$2"}}
${3:-}
EOF
}

node_of() {
	sed -n 's/^  nodeName: //p' "$NS/pods/$1.yaml"
}

# message_of POD: the PodScheduled condition's message, unquoted.
message_of() {
	sed -n 's/^    message: //p' "$NS/pods/$1.yaml" |
		sed -e "s/^'\(.*\)'\$/\1/" -e "s/''/'/g" -e 's/^"\(.*\)"$/\1/'
}

bound_to() { [ "$(node_of "$1")" = "$2" ]; }
says() { [ "$(message_of "$1")" = "$2" ]; }
rv_of() { sed -n 's/^  resourceVersion: "\(.*\)"/\1/p' "$NS/pods/$1.yaml"; }

@test "a pod is bound to a Ready node, with PodScheduled=True and a Scheduled event" {
	node n1 4
	pod web 1
	wait_for 10 bound_to web n1
	grep -q 'type: PodScheduled' "$NS/pods/web.yaml"
	grep -B3 'type: PodScheduled' "$NS/pods/web.yaml" | grep -q 'status: "True"'
	wait_for 5 events_has "$NS" "Normal Scheduled pod/web: Successfully assigned default/web to n1"
}

@test "a pod of another scheduler, or already bound, is left alone" {
	node n1 4
	pod other 1 "  schedulerName: my-scheduler"
	pod pinned 1 "  nodeName: elsewhere"
	pod web 1
	wait_for 10 bound_to web n1
	[ -z "$(node_of other)" ]
	! grep -q PodScheduled "$NS/pods/other.yaml"
	[ "$(node_of pinned)" = elsewhere ]
	! grep -q PodScheduled "$NS/pods/pinned.yaml"
}

@test "insufficient cpu and a taint: the exact message, then a fitting node appears" {
	node n1 1
	node n2 1
	node n3 4 '{}' '{taints: [{key: dedicated, value: gpu, effect: NoSchedule}]}'
	pod big 2
	msg="0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
	wait_for 10 says big "$msg"
	grep -B3 'type: PodScheduled' "$NS/pods/big.yaml" | grep -q 'status: "False"'
	grep -q 'reason: Unschedulable' "$NS/pods/big.yaml"
	wait_for 5 events_has "$NS" "Warning FailedScheduling pod/big: $msg"
	[ -z "$(node_of big)" ]
	node n4 4
	wait_for 10 bound_to big n4
	grep -B3 'type: PodScheduled' "$NS/pods/big.yaml" | grep -q 'status: "True"'
	! grep -q 'reason: Unschedulable' "$NS/pods/big.yaml"
}

@test "an unschedulable pod is written once: no write loop, no event flood, heartbeats ignored" {
	node n1 1
	pod big 2
	wait_for 10 says big "0/1 nodes are available: 1 Insufficient cpu."
	rv=$(rv_of big)
	# a node change the filters do not read (a heartbeat) changes nothing
	beat=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	BEAT=$beat node n1 1
	grep -qF "$beat" "$M/nodes/n1.yaml"
	sleep 1
	[ "$(rv_of big)" = "$rv" ]
	[ "$(grep -c 'FailedScheduling pod/big:' "$NS/events")" -eq 1 ]
}

@test "nodeSelector: no matching node, then the node is labelled" {
	node n1 4 '{disk: hdd}'
	pod web 1 "  nodeSelector: {disk: ssd}"
	wait_for 10 says web "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
	wait_for 5 events_has "$NS" "FailedScheduling pod/web: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
	node n1 4 '{disk: ssd}'
	wait_for 10 bound_to web n1
}

@test "required node affinity picks among nodes" {
	node n1 4 '{zone: a}'
	node n2 4 '{zone: b}'
	pod web 1 "  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: zone, operator: In, values: [b, c]}"
	wait_for 10 bound_to web n2
}

@test "a cordoned node: unschedulable until uncordoned" {
	node n1 4 '{}' '{unschedulable: true}'
	pod web 1
	wait_for 10 says web "0/1 nodes are available: 1 node(s) were unschedulable."
	sed -i 's/unschedulable: true/unschedulable: false/' "$M/nodes/n1.yaml"
	wait_for 10 bound_to web n1
}

@test "a node that is not Ready is not used until it is" {
	node n1 4 '{}' '{}' False
	pod web 1
	wait_for 10 says web "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
	node n1 4 '{}' '{}' True
	wait_for 10 bound_to web n1
}

@test "pods bound by anyone take their share; a deleted pod frees it for a waiting one" {
	node n1 2
	pod first 1 "  nodeName: n1"
	pod second 1
	wait_for 10 bound_to second n1
	pod third 1
	wait_for 10 says third "0/1 nodes are available: 1 Insufficient cpu."
	rm "$NS/pods/first.yaml"
	wait_for 10 bound_to third n1
}

@test "a finished pod frees its share" {
	node n1 1
	pod first 1
	wait_for 10 bound_to first n1
	pod second 1
	wait_for 10 says second "0/1 nodes are available: 1 Insufficient cpu."
	sed -i 's/^  phase: Pending/  phase: Succeeded/' "$NS/pods/first.yaml"
	grep -q 'phase: Succeeded' "$NS/pods/first.yaml"
	wait_for 10 bound_to second n1
}

@test "host ports: a second pod with the same hostPort goes to another node" {
	node n1 4
	pod a 1 "    ports: [{containerPort: 80, hostPort: 8080}]"
	wait_for 10 bound_to a n1
	pod b 1 "    ports: [{containerPort: 80, hostPort: 8080}]"
	wait_for 10 says b "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."
	node n2 4
	wait_for 10 bound_to b n2
}

@test "the pods of a ReplicaSet spread over the nodes" {
	node big 64
	node small 4
	cat >"$NS/replicasets/web.yaml" <<EOF
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: nginx}]
EOF
	all_bound() { [ "$(grep -l '^  nodeName: ' "$NS"/pods/web-*.yaml 2>/dev/null | wc -l)" -eq 4 ]; }
	wait_for 20 all_bound
	[ "$(grep -l '^  nodeName: big$' "$NS"/pods/web-*.yaml | wc -l)" -eq 2 ]
	[ "$(grep -l '^  nodeName: small$' "$NS"/pods/web-*.yaml | wc -l)" -eq 2 ]
}

@test "no nodes at all: kube-scheduler's message" {
	pod web 1
	wait_for 10 says web "no nodes available to schedule pods"
	node n1 4
	wait_for 10 bound_to web n1
}
