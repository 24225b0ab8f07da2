#!/usr/bin/env bats
# clusterfs up, as `make run` starts it: the server on its mount, its 9P
# export on loopback, and a real node agent that reaches it through a
# `clusterfs mount` child of its own. A Deployment copied into the mount
# runs real containers; the node is this host, at its address; the
# agent's view killed alone comes back; a stop unmounts everything.
#
# Each run has its own mount, state, run dir, bridge, port and node name;
# busybox comes from a registry the file starts on loopback. Needs what
# runtime.bats needs.

bats_require_minimum_version 1.5.0

load helpers
load images
load runtime

setup_file() {
	export WORK
	WORK=$(mktemp -d /tmp/clusterfs-test.XXXXXX)
	chmod 755 "$WORK"
	export M=$WORK/mnt STATE=$WORK/state SERVER_M=$WORK/mnt
	export NS=$M/namespaces/default
	export RT_NODE=up-$$ RT_BRIDGE=cfsu$$ RT_STATE=$WORK/state/agent
	RT_RUN=$(mktemp -d /run/cfsu.XXXX)
	export RT_RUN UP_PORT
	UP_PORT=$(free_port)
	echo "$RT_RUN" >"$WORK/run-dir"
	: >"$WORK/uids"
	mkdir -p "$M"
	start_registry
	push_busybox
	(
		"$CLUSTERFS" up --mount "$M" --state "$STATE" --node "$RT_NODE" \
			--bridge "$RT_BRIDGE" --run-dir "$RT_RUN" --listen "127.0.0.1:$UP_PORT" \
			--insecure-registry "$REGISTRY" </dev/null >>"$WORK/agent.log" 2>&1 3>&- &
		echo $! >"$WORK/agent.pid"
	)
	# up is the server and the agent both: the runtime teardown stops it as
	# the agent, and the server's teardown then finds nothing left to stop.
	cp "$WORK/agent.pid" "$WORK/server.pid"
	wait_for 60 node_ready
}

teardown_file() {
	rt_teardown_file
}

teardown() {
	rt_test_teardown
}

view_pid() { pgrep -P "$(rt_agent_pid)" -f "clusterfs mount"; }

# no_port_process: nothing runs that names the up's port (zombies aside).
no_port_process() {
	local pid
	for pid in $(pgrep -f -- "127.0.0.1:$UP_PORT"); do
		rt_alive "$pid" && return 1
	done
	return 0
}

# web_running N: exactly N pods of the Deployment web are Running.
web_running() {
	[ "$(grep -l '^  phase: Running' "$NS"/pods/web-*.yaml 2>/dev/null | wc -l)" -eq "$1" ]
}

@test "up: the node is this host, Ready, with its address, reached over 9P through a view" {
	local ip
	ip=$(yget "$M/nodes/$RT_NODE.yaml" "status.addresses[type=InternalIP].address")
	ip -4 -o addr show | grep -q " inet $ip/"
	[ -n "$(view_pid)" ]
	grep -qs " $RT_RUN/view " /proc/mounts
	grep -q "node agent for this machine runs pods with crun, through 9P on 127.0.0.1:$UP_PORT" \
		"$WORK/agent.log"
}

@test "up: a Deployment copied into the mount runs real containers" {
	mkdir -p "$WORK/src"
	rt_subst >"$WORK/src/web.yaml" <<-'EOF'
		apiVersion: apps/v1
		kind: Deployment
		metadata:
		  name: web
		spec:
		  replicas: 2
		  selector:
		    matchLabels: {app: web}
		  template:
		    metadata:
		      labels: {app: web}
		    spec:
		      terminationGracePeriodSeconds: 1
		      containers:
		      - name: main
		        image: @IMAGE@
		        command: [sh, -c, 'echo up-$(hostname); trap "exit 0" TERM; sleep 3600 & wait']
	EOF
	cp "$WORK/src/web.yaml" "$NS/deployments/"
	wait_for 60 web_running 2
	local pod
	for pod in $(ls "$NS/pods" | sed -n 's/^\(web-.*\)\.yaml$/\1/p'); do
		echo "$pod" >>"$WORK/test-pods"
		note_uid "$(uid_of "$pod")"
		wait_for 20 log_has "$pod" main "up-$pod"
	done
}

@test "up: the agent's view killed with SIGKILL is mounted again, and the agent goes on" {
	local old
	old=$(view_pid)
	[ -n "$old" ]
	kill -9 "$old"
	wait_for 30 sh -c "p=\$(pgrep -P $(rt_agent_pid) -f 'clusterfs mount') && [ \"\$p\" != $old ]"
	wait_for 30 test -d "$RT_RUN/view/nodes"
	[ "$(grep -c " $RT_RUN/view " /proc/mounts)" -eq 1 ]
	# the agent works through the new view: a scale-up runs
	sed -i 's/replicas: 2/replicas: 3/' "$NS/deployments/web.yaml"
	wait_for 60 web_running 3
	local pod
	for pod in $(ls "$NS/pods" | sed -n 's/^\(web-.*\)\.yaml$/\1/p'); do
		note_uid "$(uid_of "$pod")"
	done
}

@test "up: a stop leaves no mount and no process of its own; the pods were deleted first" {
	rm -f "$NS/deployments/web.yaml"
	wait_for 60 _rt_no_pods_left
	local pid
	pid=$(rt_agent_pid)
	kill "$pid"
	wait_for 30 rt_agent_gone "$pid"
	rm -f "$WORK/agent.pid" "$WORK/server.pid"
	run ! grep -qs " $M " /proc/mounts
	run ! grep -qs " $RT_RUN/view " /proc/mounts
	# nothing that served or reached the port (diod, the view) runs on
	wait_for 20 no_port_process || {
		ps -o pid=,stat=,args= -p "$(pgrep -d, -f -- "127.0.0.1:$UP_PORT")" >&2
		false
	}
}
