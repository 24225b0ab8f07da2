#!/usr/bin/env bats
# /cluster/watch: the event stream for clients that cannot use inotify.

load helpers

setup_file() {
	start_server
}

teardown_file() {
	cleanup_server
}

# watch_read FILTER COUNT [TIMEOUT]: opens watch, writes FILTER, prints COUNT lines.
watch_read() {
	timeout "${3:-20}" python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, (sys.argv[2] + "\n").encode())
got = ""
while got.count("\n") < int(sys.argv[3]):
    chunk = os.read(fd, 65536).decode()
    if not chunk:
        break
    got += chunk
sys.stdout.write(got)
' "$M/watch" "$1" "$2"
}

# current_rev: the cluster's revision now, from a change made for the purpose.
current_rev() {
	printf 'data: {n: "%s"}\n' "$RANDOM" >"$NS/configmaps/rev-probe.yaml"
	rv_of "$NS/configmaps/rev-probe.yaml"
}

rv_of() {
	sed -n 's/^  resourceVersion: "\(.*\)"/\1/p' "$1"
}

@test "reading watch before a filter is written gives end-of-file at once" {
	run timeout 5 cat "$M/watch"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "since REV replays the changes after REV, in order" {
	rev0=$(rv_of "$M/namespaces/default.yaml")
	printf 'data: {a: "1"}\n' >"$NS/configmaps/w1.yaml"
	printf 'data: {a: "2"}\n' >"$NS/configmaps/w1.yaml"
	rm "$NS/configmaps/w1.yaml"
	run watch_read "namespaces/default/configmaps since $rev0" 3
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^[0-9]+\ ADDED\ namespaces/default/configmaps/w1.yaml$ ]]
	[[ "${lines[1]}" =~ ^[0-9]+\ MODIFIED\ namespaces/default/configmaps/w1.yaml$ ]]
	[[ "${lines[2]}" =~ ^[0-9]+\ DELETED\ namespaces/default/configmaps/w1.yaml$ ]]
	r0=${lines[0]%% *} r1=${lines[1]%% *} r2=${lines[2]%% *}
	[ "$r0" -lt "$r1" ] && [ "$r1" -lt "$r2" ]
}

@test "a read blocks until a change arrives, then returns it" {
	watch_read "namespaces/default/configmaps since $(current_rev)" 1 >"$WORK/w.out" &
	reader=$!
	sleep 0.5 # the reader is parked: still running, and it has said nothing
	kill -0 "$reader"
	[ ! -s "$WORK/w.out" ]
	printf 'data: {a: "1"}\n' >"$NS/configmaps/live.yaml"
	wait "$reader"
	grep -Eq '^[0-9]+ ADDED namespaces/default/configmaps/live.yaml$' "$WORK/w.out"
}

@test "the filter is a subtree: other directories and namespaces are not shown" {
	watch_read "namespaces/default/secrets since $(current_rev)" 1 >"$WORK/w2.out" &
	reader=$!
	printf 'data: {a: "1"}\n' >"$NS/configmaps/other.yaml"
	mkdir "$M/namespaces/elsewhere"
	printf 'data: {a: "MQ=="}\n' >"$M/namespaces/elsewhere/secrets/s.yaml"
	printf 'data: {a: "MQ=="}\n' >"$NS/secrets/mine.yaml"
	wait "$reader"
	[ "$(wc -l <"$WORK/w2.out")" -eq 1 ]
	grep -q "namespaces/default/secrets/mine.yaml" "$WORK/w2.out"
}

@test "a filter naming one object follows that object only" {
	printf 'data: {a: "1"}\n' >"$NS/configmaps/one.yaml"
	rev=$(rv_of "$NS/configmaps/one.yaml")
	printf 'data: {a: "1"}\n' >"$NS/configmaps/one-more.yaml"
	printf 'data: {a: "2"}\n' >"$NS/configmaps/one-more.yaml"
	printf 'data: {a: "2"}\n' >"$NS/configmaps/one.yaml"
	run watch_read "namespaces/default/configmaps/one since $((rev - 1))" 2
	[[ "${lines[0]}" == *" ADDED namespaces/default/configmaps/one.yaml" ]]
	[[ "${lines[1]}" == *" MODIFIED namespaces/default/configmaps/one.yaml" ]]
	[ "${#lines[@]}" -eq 2 ]
}

@test "a blocked reader can be interrupted" {
	watch_read "nodes" 1 60 &
	reader=$!
	sleep 0.5
	kill -0 "$reader"
	kill -TERM "$reader"
	wait_for 10 sh -c "! kill -0 $reader 2>/dev/null"
}

@test "a signal a reader handles interrupts its blocked read (EINTR from the server)" {
	timeout 30 python3 -c '
import os, signal, sys
def stop(sig, frame):
    raise SystemExit(7)
signal.signal(signal.SIGUSR1, stop)
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b"nodes/none\n")
print("parked", flush=True)
os.read(fd, 4096)
' "$M/watch" >"$WORK/intr.out" &
	reader=$!
	wait_for 10 grep -q parked "$WORK/intr.out"
	sleep 0.3
	kill -USR1 "$(pgrep -P "$reader" python3 || echo "$reader")"
	rc=0
	wait "$reader" || rc=$?
	[ "$rc" -eq 7 ]
}

@test "a bad filter line is refused with EINVAL" {
	run python3 -c "
import os
fd = os.open('$M/watch', os.O_RDWR)
try:
    os.write(fd, b'namespaces since banana\n')
except OSError as e:
    print(e.errno)
"
	[ "$output" = 22 ]
}

@test "grep -r over the mount does not hang on watch" {
	run timeout 20 grep -rl "kind: ConfigMap" "$M"
	[ "$status" -eq 0 ]
}
