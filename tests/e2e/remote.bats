#!/usr/bin/env bats
# The cluster over 9P when the connection breaks: clusterfs mount and an
# agent with --server reconnect on their own, and nothing is lost.
#
# The server exports its mount (CFS_REMOTE=1: $M is a `clusterfs mount`
# of the export, $SERVER_M the server's own). Breaking the connection is
# killing diod: the server starts a new one after a back-off.

load helpers

setup_file() {
	export CFS_REMOTE=1
	start_server
}

teardown_file() {
	local pid
	pid=$(cat "$WORK/diod.stopped" 2>/dev/null) && kill -CONT "$pid" 2>/dev/null
	pid=$(cat "$WORK/agent.pid" 2>/dev/null) && kill "$pid" 2>/dev/null
	[ -z "$pid" ] || wait_for 20 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid"
	if grep -qs " $WORK/view " /proc/mounts; then umount -l "$WORK/view"; fi
	cleanup_server
}

diod_pid() {
	pgrep -P "$(cat "$WORK/server.pid")" -x diod
}

# break_connection: kills diod and waits for the server's next one.
break_connection() {
	local old
	old=$(diod_pid)
	kill -9 "$old"
	wait_for 20 sh -c "p=\$(pgrep -P $(cat "$WORK/server.pid") -x diod) && [ \"\$p\" != $old ]"
}

configmap() {
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  k: "%s"\n' "$1" "$2"
}

@test "the mount comes back after the connection breaks; a file open for reading goes on" {
	configmap before 1 >"$NS/configmaps/before.yaml"
	exec 5<"$NS/configmaps/before.yaml"
	read -r first <&5
	[ "$first" = "apiVersion: v1" ]
	break_connection
	# new operations work again once the client has reconnected
	wait_for 20 test -e "$NS/configmaps/before.yaml"
	configmap after 2 >"$NS/configmaps/after.yaml"
	grep -q 'k: "2"' "$SERVER_M/namespaces/default/configmaps/after.yaml"
	# the open file was opened again on the new connection
	rest=$(cat <&5)
	exec 5<&-
	[[ "$rest" == *"name: before"* ]]
}

# server_down: stops the server (and so diod), leaving $M mounted.
server_down() {
	SERVER_PID=$(cat "$WORK/server.pid") # a test before may have started it anew
	kill "$SERVER_PID"
	wait_for 20 sh -c "! kill -0 $SERVER_PID 2>/dev/null"
}

# server_up: starts the server again on the same state, mount and port.
server_up() {
	"$CLUSTERFS" server --mount "$SERVER_M" --state "$STATE" --listen "127.0.0.1:$CFS_PORT" \
		2>>"$WORK/server.log" 3>&- &
	export SERVER_PID=$!
	echo "$SERVER_PID" >"$WORK/server.pid"
	wait_for 20 test -e "$SERVER_M/namespaces/default.yaml"
}

@test "while the server cannot be reached, operations fail with ENOTCONN, not ENOENT" {
	server_down
	run cat "$NS/configmaps/before.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Transport endpoint is not connected"* ]]
	run ls "$NS/configmaps"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Transport endpoint is not connected"* ]]
	server_up
	wait_for 20 test -e "$NS/configmaps/before.yaml"
}

@test "an agent over 9P sees a pod created while it was cut off (watch since), and keeps its pods" {
	mkdir -p "$WORK/view" "$WORK/run"
	"$CLUSTERFS" agent --server "127.0.0.1:$CFS_PORT" --node far --simulated --heartbeat 1 \
		--run-dir "$WORK/run" --view "$WORK/view" 2>>"$WORK/agent.log" 3>&- &
	echo $! >"$WORK/agent.pid"
	wait_for 20 grep -qs "type: Ready" "$M/nodes/far.yaml"
	printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\nspec:\n  nodeName: far\n  containers:\n  - name: c\n    image: busybox\n' \
		>"$NS/pods/p1.yaml"
	wait_for 20 grep -qs "phase: Running" "$NS/pods/p1.yaml"
	uid1=$(grep -m1 "uid:" "$NS/pods/p1.yaml")
	server_down
	# the agent notices (its heartbeat, every second, fails)
	wait_for 20 grep -q "not connected" "$WORK/agent.log"
	server_up
	# made at once through the server's own mount, while the agent is
	# still backing off before it reconnects
	printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p2\nspec:\n  nodeName: far\n  containers:\n  - name: c\n    image: busybox\n' \
		>"$SERVER_M/namespaces/default/pods/p2.yaml"
	wait_for 30 grep -qs "phase: Running" "$SERVER_M/namespaces/default/pods/p2.yaml"
	# p1 is the same pod, still Running: the agent did not take the
	# unreadable view for an empty one
	grep -q "phase: Running" "$SERVER_M/namespaces/default/pods/p1.yaml"
	[ "$(grep -m1 "uid:" "$SERVER_M/namespaces/default/pods/p1.yaml")" = "$uid1" ]
}

# view_pid: the agent's `clusterfs mount` child.
view_pid() { pgrep -P "$(cat "$WORK/agent.pid")" -f "clusterfs mount"; }

@test "an agent whose view is killed with SIGKILL mounts it again and goes on" {
	local old uid1
	old=$(view_pid)
	[ -n "$old" ]
	uid1=$(grep -m1 "uid:" "$SERVER_M/namespaces/default/pods/p1.yaml")
	kill -9 "$old"
	wait_for 30 sh -c "p=\$(pgrep -P $(cat "$WORK/agent.pid") -f 'clusterfs mount') && [ \"\$p\" != $old ]"
	wait_for 30 test -d "$WORK/view/nodes"
	[ "$(grep -c " $WORK/view " /proc/mounts)" -eq 1 ]
	grep -q "view of 127.0.0.1:$CFS_PORT ended (signal 9): mounting it again" "$WORK/agent.log"
	printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p3\nspec:\n  nodeName: far\n  containers:\n  - name: c\n    image: busybox\n' \
		>"$SERVER_M/namespaces/default/pods/p3.yaml"
	wait_for 30 grep -qs "phase: Running" "$SERVER_M/namespaces/default/pods/p3.yaml"
	[ "$(grep -m1 "uid:" "$SERVER_M/namespaces/default/pods/p1.yaml")" = "$uid1" ]
	grep -q "phase: Running" "$SERVER_M/namespaces/default/pods/p1.yaml"
}

@test "an agent with --server stops cleanly and unmounts its view" {
	pid=$(cat "$WORK/agent.pid")
	kill "$pid"
	wait_for 20 sh -c "! kill -0 $pid 2>/dev/null"
	rm -f "$WORK/agent.pid"
	! grep -qs " $WORK/view " /proc/mounts
	grep -q "stopping" "$WORK/agent.log"
}

@test "an agent told to stop while its view waits for a server that does not answer ends at once" {
	local old d pid
	"$CLUSTERFS" agent --server "127.0.0.1:$CFS_PORT" --node far --simulated --heartbeat 1 \
		--run-dir "$WORK/run" --view "$WORK/view" 2>"$WORK/agent2.log" 3>&- &
	echo $! >"$WORK/agent.pid"
	pid=$!
	wait_for 20 test -d "$WORK/view/nodes"
	old=$(view_pid)
	[ -n "$old" ]
	# diod stopped: a new view connects, and its handshake waits 5 s for
	# an answer that does not come
	d=$(diod_pid)
	echo "$d" >"$WORK/diod.stopped"
	kill -STOP "$d"
	kill -9 "$old"
	run wait_for 10 sh -c "p=\$(pgrep -P $pid -f 'clusterfs mount') && [ \"\$p\" != $old ]"
	if [ "$status" -eq 0 ]; then
		kill "$pid"
		run wait_for 3 sh -c "! kill -0 $pid 2>/dev/null"
	fi
	kill -CONT "$d"
	rm -f "$WORK/diod.stopped"
	[ "$status" -eq 0 ]
	rm -f "$WORK/agent.pid"
	! grep -qs " $WORK/view " /proc/mounts
	grep -q "Terminated: stopping" "$WORK/agent2.log"
}
