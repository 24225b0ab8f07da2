#!/usr/bin/env bats
# The server as a process: clean stop, restart, kill -9, stale and busy
# mountpoints.

load helpers

setup() {
	export WORK=$(mktemp -d /tmp/clusterfs-test.XXXXXX)
}

teardown() {
	# what a crashed server left, when no server.pid names it any more
	if grep -qs " $WORK/mnt " /proc/mounts; then umount -l "$WORK/mnt"; fi
	cleanup_server
	[ -n "${OTHER_PID:-}" ] && kill -9 "$OTHER_PID" 2>/dev/null
	true
}

@test "SIGTERM unmounts and closes the store; a restart finds everything" {
	start_server
	printf 'data: {a: "1"}\n' >"$NS/configmaps/keep.yaml"
	mkdir "$M/namespaces/kept"
	rev=$(sed -n 's/^  resourceVersion: "\(.*\)"/\1/p' "$NS/configmaps/keep.yaml")
	stop_server TERM
	! grep -qs " $M " /proc/mounts
	grep -q "unmounting" "$WORK/server.log"
	start_server
	grep -q 'a: "1"' "$NS/configmaps/keep.yaml"
	[ -d "$M/namespaces/kept" ]
	# the revision goes on from where it was
	printf 'data: {a: "2"}\n' >"$NS/configmaps/keep.yaml"
	rev2=$(sed -n 's/^  resourceVersion: "\(.*\)"/\1/p' "$NS/configmaps/keep.yaml")
	[ "$rev2" -gt "$rev" ]
}

@test "kill -9 loses no acknowledged write, and a new server starts over the stale mount" {
	start_server
	# a writer records every create whose close() returned 0
	python3 -c '
import os, sys
d, log = sys.argv[1], sys.argv[2]
with open(log, "w") as out:
    for i in range(100000):
        name = "cm-%05d" % i
        try:
            fd = os.open("%s/%s.yaml" % (d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.write(fd, b"data: {i: \"%d\"}\n" % i)
            os.close(fd)
        except OSError:
            break
        out.write(name + "\n")
        out.flush()
' "$NS/configmaps" "$WORK/acked" 2>/dev/null &
	writer=$!
	wait_for 30 sh -c "[ \$(wc -l <'$WORK/acked') -ge 200 ]"
	kill -9 "$SERVER_PID"
	wait "$writer" || true
	wait "$SERVER_PID" 2>/dev/null || true
	run stat "$M"
	[[ "$output" == *"Transport endpoint is not connected"* ]]
	rm -f "$WORK/server.pid"
	start_server
	grep -q "clearing the stale mount" "$WORK/server.log"
	acked=$(wc -l <"$WORK/acked")
	[ "$acked" -ge 200 ]
	missing=0
	while read -r name; do
		[ -e "$NS/configmaps/$name.yaml" ] || missing=$((missing + 1))
	done <"$WORK/acked"
	echo "acknowledged $acked, missing $missing"
	[ "$missing" -eq 0 ]
}

@test "SIGTERM while the toucher is busy with a large apply still stops cleanly" {
	start_server
	python3 -c "
print('\n---\n'.join('kind: ConfigMap\nmetadata: {name: c%d}\ndata: {a: b}' % i for i in range(3000)))" >"$WORK/many.yaml"
	cp "$WORK/many.yaml" "$NS/apply"
	kill -TERM "$SERVER_PID"
	wait_for 20 sh -c "! kill -0 $SERVER_PID 2>/dev/null"
	grep -q "unmounting" "$WORK/server.log"
	! grep -qs " $M " /proc/mounts
	# everything the apply acknowledged is there after a restart
	rm -f "$WORK/server.pid"
	start_server
	[ "$(ls "$NS/configmaps" | wc -l)" -eq 3000 ]
}

@test "a mountpoint held by a live server is refused with a clear message" {
	start_server
	run "$CLUSTERFS" server --mount "$M" --state "$WORK/other-state"
	[ "$status" -ne 0 ]
	[[ "$output" == *"already mounted"* ]]
	# the first server is unharmed
	[ -e "$NS/../default.yaml" ]
}

@test "a state directory in use by another server is refused" {
	start_server
	mkdir -p "$WORK/mnt2"
	run "$CLUSTERFS" server --mount "$WORK/mnt2" --state "$STATE"
	[ "$status" -ne 0 ]
	[[ "$output" == *"in use by another server"* ]]
}

@test "the default namespace exists from the first start" {
	start_server
	grep -q "name: default" "$M/namespaces/default.yaml"
	[ -d "$M/namespaces/default/pods" ]
}

@test "usage errors exit 2 with a usage line" {
	run "$CLUSTERFS" server --mount
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage:"* ]]
	run "$CLUSTERFS" frobnicate
	[ "$status" -eq 2 ]
}

# free_stuck MOUNT: aborts the FUSE connection of MOUNT, for a server that
# is stuck dying, so that the test can go on and clean up.
free_stuck() {
	local dev
	mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections
	dev=$(awk -v m="$1" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo)
	[ -z "$dev" ] || echo 1 >"/sys/fs/fuse/connections/$dev/abort"
}

@test "a server that crashes or is killed under load ends, and its mount answers ENOTCONN" {
	local i j pid writer
	ulimit -c 0
	for i in ABRT SEGV KILL KILL KILL; do
		start_server
		# The controllers at work through the mount: a crash finds some
		# of their threads waiting for an answer from it.
		(
			for j in $(seq 200); do
				printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d%s\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: d%s}\n  template:\n    metadata:\n      labels: {app: d%s}\n    spec:\n      containers:\n      - {name: c, image: x}\n' \
					"$j" "$j" "$j" >"$NS/deployments/d$j.yaml" 2>/dev/null || break
			done
		) &
		writer=$!
		wait_for 20 sh -c "ls '$NS/replicasets' | grep -q ."
		pid=$SERVER_PID
		kill -"$i" "$pid"
		run wait_for 20 sh -c "! kill -0 $pid 2>/dev/null"
		[ "$status" -eq 0 ] || free_stuck "$SERVER_M"
		kill "$writer" 2>/dev/null || true
		wait "$writer" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "SIG$i: the server ended: $([ "$status" -eq 0 ] && echo yes || echo no)"
		[ "$status" -eq 0 ]
		run stat "$SERVER_M"
		[[ "$output" == *"Transport endpoint is not connected"* ]]
		rm -f "$WORK/server.pid"
		umount -l "$SERVER_M"
		rm -rf "$STATE" # the next server starts afresh
	done
}
