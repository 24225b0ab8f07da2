#!/usr/bin/env bats
# The server as a process: clean stop, restart, kill -9, stale and busy
# mountpoints.

load helpers

setup() {
	export WORK=$(mktemp -d /tmp/clusterfs-test.XXXXXX)
}

teardown() {
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
