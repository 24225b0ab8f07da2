#!/usr/bin/env bats
# Containers' logs: pods/NAME/logs/CONTAINER, appended to by the node agent
# and read with cat and tail -f; bounded by the server's --log-limit.

load helpers

LIMIT=4096

setup_file() {
	SERVER_ARGS="--log-limit $LIMIT" start_server
}

teardown_file() {
	cleanup_server
}

pod() { # NAME [NS]: a pod with containers app and side, and initContainer setup
	printf 'spec:\n  initContainers:\n  - name: setup\n    image: busybox\n  containers:\n  - name: app\n    image: busybox\n  - name: side\n    image: busybox\n' \
		>"$M/namespaces/${2:-default}/pods/$1.yaml"
}

# append_errno FILE: opens FILE as the node agent does and appends a line;
# prints OK or the errno's name.
append_errno() {
	python3 -c '
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, b"x\n")
    os.close(fd)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1"
}

size() {
	stat -c %s "$1"
}

@test "a pod has a directory with logs/, empty until something is written" {
	pod empty
	[ -d "$NS/pods/empty" ]
	[ -d "$NS/pods/empty/logs" ]
	[ "$(ls "$NS/pods/empty")" = "logs" ]
	[ -z "$(ls "$NS/pods/empty/logs")" ]
	[ ! -e "$NS/pods/empty/logs/app" ]
}

@test "appending to a container's log: cat shows it, ls lists it, stat gives its size" {
	pod p
	echo hello >>"$NS/pods/p/logs/app"
	[ "$(cat "$NS/pods/p/logs/app")" = "hello" ]
	[ "$(ls "$NS/pods/p/logs")" = "app" ]
	echo world >>"$NS/pods/p/logs/app"
	[ "$(cat "$NS/pods/p/logs/app")" = "$(printf 'hello\nworld')" ]
	[ "$(size "$NS/pods/p/logs/app")" -eq 12 ]
	echo starting >>"$NS/pods/p/logs/setup"
	[ "$(ls "$NS/pods/p/logs" | tr '\n' ' ')" = "app setup " ]
}

@test "a write lands at the end whatever the offset, and mtime follows the last append" {
	pod off
	printf 'one\n' >>"$NS/pods/off/logs/app"
	touch -d '2001-01-01' "$WORK/old"
	python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"two\n", 0)
os.close(fd)' "$NS/pods/off/logs/app"
	[ "$(cat "$NS/pods/off/logs/app")" = "$(printf 'one\ntwo')" ]
	[ "$NS/pods/off/logs/app" -nt "$WORK/old" ]
	before=$(stat -c %y "$NS/pods/off/logs/app")
	echo three >>"$NS/pods/off/logs/app"
	[ "$(stat -c %y "$NS/pods/off/logs/app")" != "$before" ]
}

@test "a writer that keeps the file open is read at once, between its writes" {
	pod held
	python3 -c '
import os, sys
path = sys.argv[1]
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(50):
    os.write(fd, b"line %d\n" % i)
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[-1] == "line %d" % i, lines[-3:]
    assert os.stat(path).st_size == sum(len(l) + 1 for l in lines)
os.close(fd)' "$NS/pods/held/logs/side"
	[ "$(wc -l <"$NS/pods/held/logs/side")" -eq 50 ]
}

@test "a container the pod does not have: ENOENT, an events line, the pod unchanged" {
	pod q
	rv=$(grep resourceVersion "$NS/pods/q.yaml")
	[ "$(append_errno "$NS/pods/q/logs/nope")" = ENOENT ]
	[ ! -e "$NS/pods/q/logs/nope" ]
	[ -z "$(ls "$NS/pods/q/logs")" ]
	[ "$(grep resourceVersion "$NS/pods/q.yaml")" = "$rv" ]
	events_has "$NS" 'Rejected pods/q/logs/nope: pod q has no container named "nope"'
	[ "$(append_errno "$NS/pods/nosuchpod/logs/app")" = ENOENT ]
}

tail_has() { # FILE TEXT
	grep -qx -- "$2" "$1"
}

@test "tail -f sees a later append" {
	pod t
	echo first >>"$NS/pods/t/logs/app"
	tail -f "$NS/pods/t/logs/app" >"$WORK/tail.out" 2>&1 3>&- &
	tail_pid=$!
	wait_for 10 tail_has "$WORK/tail.out" first
	echo second >>"$NS/pods/t/logs/app"
	wait_for 10 tail_has "$WORK/tail.out" second
	kill "$tail_pid"
	wait "$tail_pid" || true
	[ "$(cat "$WORK/tail.out")" = "$(printf 'first\nsecond')" ]
}

@test "the log keeps at most --log-limit bytes, the newest, from a line's start" {
	pod big
	for i in $(seq 1 2000); do echo "line $i"; done >"$WORK/lines"
	[ "$(size "$WORK/lines")" -gt "$LIMIT" ]
	# one write per line, as a container prints, then the rest at once
	while read -r l; do echo "$l"; done <"$WORK/lines" >>"$NS/pods/big/logs/app"
	cat "$WORK/lines" >>"$NS/pods/big/logs/side"
	for c in app side; do
		f=$NS/pods/big/logs/$c
		[ "$(size "$f")" -le "$LIMIT" ]
		[ "$(size "$f")" -gt 0 ]
		[ "$(tail -1 "$f")" = "line 2000" ]
		[ "$(head -1 "$f" | cut -d' ' -f1)" = "line" ]
		# what is kept is the end of what was written, byte for byte
		cmp "$f" <(tail -c "$(size "$f")" "$WORK/lines")
	done
}

@test "truncating clears a log; rm clears it too; the log stays listed" {
	pod c
	echo a >>"$NS/pods/c/logs/app"
	truncate -s 0 "$NS/pods/c/logs/app"
	[ "$(size "$NS/pods/c/logs/app")" -eq 0 ]
	echo b >>"$NS/pods/c/logs/app"
	echo c >"$NS/pods/c/logs/app" # O_TRUNC clears, then appends
	[ "$(cat "$NS/pods/c/logs/app")" = "c" ]
	run truncate -s 1 "$NS/pods/c/logs/app"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Invalid argument"* ]]
	rm "$NS/pods/c/logs/app"
	[ "$(size "$NS/pods/c/logs/app")" -eq 0 ]
	[ "$(ls "$NS/pods/c/logs")" = "app" ]
}

@test "logs/ takes no directories, renames or links" {
	pod v
	echo a >>"$NS/pods/v/logs/app"
	run mkdir "$NS/pods/v/logs/d"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	run mv "$NS/pods/v/logs/app" "$NS/pods/v/logs/side"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Operation not permitted"* ]]
	run ln "$NS/pods/v/logs/app" "$NS/pods/v/logs/side"
	[ "$status" -ne 0 ]
	[ "$(cat "$NS/pods/v/logs/app")" = "a" ]
}

@test "rmdir of logs/ is a no-op, and the directory still works while a writer holds a log" {
	pod r
	exec 5>>"$NS/pods/r/logs/app"
	echo one >&5
	rmdir "$NS/pods/r/logs"
	echo two >&5
	echo side >>"$NS/pods/r/logs/side"
	exec 5>&-
	[ "$(cat "$NS/pods/r/logs/app")" = "$(printf 'one\ntwo')" ]
	[ "$(ls "$NS/pods/r/logs" | tr '\n' ' ')" = "app side " ]
}

@test "deleting a pod frees its logs: a new pod of that name starts with none" {
	pod d
	echo old >>"$NS/pods/d/logs/app"
	exec 5>>"$NS/pods/d/logs/side"
	rm "$NS/pods/d.yaml"
	[ ! -e "$NS/pods/d" ]
	# the writer that still holds the old pod's log cannot reach the new one
	pod d
	run sh -c 'echo stale >&5'
	[ "$status" -ne 0 ]
	exec 5>&-
	[ -z "$(ls "$NS/pods/d/logs")" ]
	[ ! -e "$NS/pods/d/logs/app" ]
	echo new >>"$NS/pods/d/logs/app"
	[ "$(cat "$NS/pods/d/logs/app")" = "new" ]
}

@test "rm -r of a namespace with pods that have logs" {
	mkdir "$M/namespaces/gone"
	pod x gone
	echo a >>"$M/namespaces/gone/pods/x/logs/app"
	rm -r "$M/namespaces/gone"
	[ ! -e "$M/namespaces/gone" ]
}

@test "no sanitizer reports" {
	sanitizer_clean
}
