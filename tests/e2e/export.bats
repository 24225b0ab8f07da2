#!/usr/bin/env bats
# The 9P export: `server --listen` serves the mount with diod, a child
# that is restarted when it dies and goes when the server goes; with
# --auth munge only clients holding a munge credential attach. diodls and
# diodcat are the 9P peers; a small Python client writes and watches.

load helpers

DIODLS=/usr/sbin/diodls
DIODCAT=/usr/sbin/diodcat

setup() {
	unset CFS_REMOTE # these tests are about the server's own side of the export
	export WORK=$(mktemp -d /tmp/clusterfs-test.XXXXXX)
	chmod 755 "$WORK" # munged wants every directory above its socket searchable
}

teardown() {
	local pid mnt
	for pid in ${OTHER_PIDS:-}; do
		pkill -9 -P "$pid" 2>/dev/null # a shell function's python
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# a diod the server failed to take along (only ever one of this test's)
	for pid in $(cat "$WORK/diod.pids" 2>/dev/null); do
		grep -qsF "$WORK/" "/proc/$pid/cmdline" && kill -9 "$pid"
	done
	# a clusterfs mount killed above leaves its mount point dead
	for mnt in "$WORK/remote" "$WORK/remote2"; do
		if grep -qs " $mnt " /proc/mounts; then umount -l "$mnt" 2>/dev/null || true; fi
	done
	stop_munged "$WORK/munge"
	stop_munged "$WORK/munge2"
	cleanup_server
}

# free_port: a TCP port of 127.0.0.1 that nothing listens on now (unless
# helpers.bash has one).
declare -F free_port >/dev/null || free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_export: start_server with the export on a free port ($PORT).
start_export() {
	export PORT=$(free_port)
	SERVER_ARGS="--listen 127.0.0.1:$PORT" start_server
	wait_for 10 grep -q "exporting .* on 127.0.0.1:$PORT" "$WORK/server.log"
}

# listening_on PORT: whether something listens on PORT.
listening_on() {
	[ -n "$(ss -Hltn "sport = :$1")" ]
}

# not_mounted DIR: whether nothing is mounted on DIR.
not_mounted() {
	! grep -qs " $1 " /proc/mounts
}

# diod_of PID: the pid of PID's diod child, noted for teardown.
diod_of() {
	local pid
	pid=$(pgrep -P "$1" -x diod) || return 1
	echo "$pid" >>"$WORK/diod.pids"
	echo "$pid"
}

# new_diod OLD: the server has a diod child, and it is not OLD.
new_diod() {
	local pid
	pid=$(diod_of "$SERVER_PID") && [ "$pid" != "$1" ]
}

# gone PID: the process has ended (a zombie waiting for init counts).
gone() {
	[ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# p9 ADDR ANAME put PATH: writes stdin to PATH over 9P2000.L as root
# (Tlcreate, Twrite, Tclunk); fails with the errno's name when the server
# answers Rlerror, as a close() of the file through the mount would.
# p9 ADDR ANAME watch PATH: opens the watch file PATH, writes stdin as the
# filter and prints "reading", then blocks in a read until a change.
p9() {
	python3 -c '
import errno, os, socket, struct, sys
addr, aname, op, path = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
c = socket.create_connection((host, int(port)), timeout=60)
def s(x):
    return struct.pack("<H", len(x.encode())) + x.encode()
def recv(n):
    b = b""
    while len(b) < n:
        b += c.recv(n - len(b)) or sys.exit("9P: connection closed")
    return b
def rpc(t, body):
    c.sendall(struct.pack("<IBH", 7 + len(body), t, 1) + body)
    size, rt, _ = struct.unpack("<IBH", recv(7))
    r = recv(size - 7)
    if rt == 7:
        sys.exit("9P: " + errno.errorcode[struct.unpack("<I", r[:4])[0]])
    return r
def walk(names):
    rpc(110, struct.pack("<IIH", 1, 2, len(names)) + b"".join(s(n) for n in names))
data = sys.stdin.buffer.read()
rpc(100, struct.pack("<I", 65536) + s("9P2000.L"))
rpc(104, struct.pack("<II", 1, 0xFFFFFFFF) + s("root") + s(aname) + struct.pack("<I", 0))
if op == "put":
    d, name = path.rsplit("/", 1)
    walk(d.split("/"))
    rpc(14, struct.pack("<I", 2) + s(name) + struct.pack("<III", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, 0))
else:
    walk(path.split("/"))
    rpc(12, struct.pack("<II", 2, os.O_RDWR))
rpc(118, struct.pack("<IQI", 2, 0, len(data)) + data)
if op == "watch":
    print("reading", flush=True)
    rpc(116, struct.pack("<IQI", 2, 0, 4096))
rpc(120, struct.pack("<I", 2))
' "$@"
}

@test "diodls lists the tree and diodcat reads an object exactly as the mount shows it" {
	start_export
	printf 'data: {greeting: "hello over 9P"}\n' >"$NS/configmaps/hello.yaml"
	run "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" /
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sort)" = "$(ls -A "$M" | sort)" ]
	run "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" namespaces/default/configmaps
	[ "$status" -eq 0 ]
	[[ "$output" == *hello.yaml* ]]
	"$DIODCAT" -s "127.0.0.1:$PORT" -a "$M" namespaces/default/configmaps/hello.yaml >"$WORK/hello.9p"
	grep -q 'greeting: hello over 9P' "$WORK/hello.9p"
	cmp "$WORK/hello.9p" "$NS/configmaps/hello.yaml"
	# diod's control tree names the aname for clients not told it
	run "$DIODCAT" -s "127.0.0.1:$PORT" -a ctl exports
	[ "$status" -eq 0 ]
	[[ "$output" == "$M "* ]]
}

@test "a write over 9P is applied through the mount, raises inotify there, and a bad one fails at close" {
	start_export
	inotifywait -m -e close_write --format '%e %f' "$NS/configmaps" >"$WORK/inotify.log" \
		2>"$WORK/inotify.err" &
	OTHER_PIDS=$!
	wait_for 10 grep -q "Watches established" "$WORK/inotify.err"
	printf 'data: {from: remote}\n' | p9 "127.0.0.1:$PORT" "$M" put namespaces/default/configmaps/remote.yaml
	grep -q 'from: remote' "$NS/configmaps/remote.yaml"
	wait_for 10 grep -q "CLOSE_WRITE,CLOSE remote.yaml" "$WORK/inotify.log"
	run p9 "127.0.0.1:$PORT" "$M" put namespaces/default/configmaps/bad.yaml <<<'data: [unclosed'
	[ "$status" -ne 0 ]
	[[ "$output" == *EINVAL* ]]
	events_has "$NS" "configmaps/bad.yaml: invalid YAML"
	[ ! -e "$NS/configmaps/bad.yaml" ]
}

@test "a diod killed with -9 is replaced, with back-off, and serves again" {
	start_export
	old=$(diod_of "$SERVER_PID")
	[ -n "$old" ]
	kill -9 "$old"
	wait_for 10 grep -q "diod (pid $old) was killed by signal 9; restarting it in 100 ms" "$WORK/server.log"
	wait_for 10 new_diod "$old"
	wait_for 10 "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" namespaces
	# dying again at once doubles the wait
	second=$(diod_of "$SERVER_PID")
	kill -9 "$second"
	wait_for 10 grep -q "diod (pid $second) was killed by signal 9; restarting it in 200 ms" "$WORK/server.log"
	wait_for 10 "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" namespaces
	run "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" /
	[ "$status" -eq 0 ]
	[[ "$output" == *namespaces* ]]
}

@test "stopping the server stops diod and frees the port; kill -9 of the server takes diod along" {
	start_export
	pid=$(diod_of "$SERVER_PID")
	[ -n "$pid" ]
	stop_server TERM
	[ ! -e "/proc/$pid" ] # reaped by the server, not left to init
	grep -q "diod: caught SIGTERM" "$WORK/server.log"
	run listening_on "$PORT"
	[ "$status" -ne 0 ]
	not_mounted "$M"

	start_export
	pid=$(diod_of "$SERVER_PID")
	kill -9 "$SERVER_PID"
	wait_for 10 gone "$pid"
	wait_for 10 sh -c "[ -z \"\$(ss -Hltn 'sport = :$PORT')\" ]"
}

@test "a diod inside a client's blocked read of watch is replaced at once, and the server still stops at once" {
	start_export
	echo namespaces/default | p9 "127.0.0.1:$PORT" "$M" watch watch >"$WORK/watch.out" 2>&1 &
	OTHER_PIDS=$!
	wait_for 10 grep -q reading "$WORK/watch.out"
	# the kernel interrupts the read, the watch handler answers EINTR
	old=$(diod_of "$SERVER_PID")
	kill -9 "$old"
	wait_for 5 new_diod "$old"
	wait_for 10 "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" namespaces
	echo namespaces/default | p9 "127.0.0.1:$PORT" "$M" watch watch >"$WORK/watch2.out" 2>&1 &
	OTHER_PIDS="$OTHER_PIDS $!"
	wait_for 10 grep -q reading "$WORK/watch2.out"
	pid=$(diod_of "$SERVER_PID")
	# diod cannot die inside the read: the stopping server answers the
	# read first (EINTR), then diod stops at once, then the mount goes
	kill -TERM "$SERVER_PID"
	wait_for 15 sh -c "! kill -0 $SERVER_PID 2>/dev/null"
	! grep -q "diod did not stop" "$WORK/server.log"
	wait_for 10 gone "$pid"
	not_mounted "$M"
}

@test "a bad --auth, --auth without --listen, and a malformed --listen are refused" {
	run "$CLUSTERFS" server --mount "$WORK/mnt" --state "$WORK/state" --listen 127.0.0.1:5640 --auth kerberos
	[ "$status" -eq 2 ]
	[[ "$output" == *"--auth kerberos: expected none or munge"* ]]
	run "$CLUSTERFS" server --mount "$WORK/mnt" --state "$WORK/state" --auth munge
	[ "$status" -eq 2 ]
	[[ "$output" == *"give --listen too"* ]]
	run timeout 20 "$CLUSTERFS" server --mount "$WORK/mnt" --state "$WORK/state" --listen 5640
	[ "$status" -eq 1 ]
	[[ "$output" == *"--listen 5640: expected ADDR:PORT"* ]]
	not_mounted "$WORK/mnt"
}

@test "clusterfs mount --ready-fd writes a line once mounted; a descriptor that is not open is refused" {
	local fd pid
	start_export
	for bad in 9 x -1 3x; do
		run "$CLUSTERFS" mount --ready-fd "$bad" "127.0.0.1:$PORT" "$WORK/remote"
		[ "$status" -eq 2 ]
		[[ "$output" == *"--ready-fd $bad: not an open file"* ]]
	done
	not_mounted "$WORK/remote"
	mkdir -p "$WORK/remote"
	exec {fd}>"$WORK/ready"
	"$CLUSTERFS" mount --ready-fd "$fd" "127.0.0.1:$PORT" "$WORK/remote" 2>"$WORK/mount.log" &
	pid=$!
	OTHER_PIDS=$pid
	exec {fd}>&-
	wait_for 20 grep -qx mounted "$WORK/ready"
	grep -qs " $WORK/remote " /proc/mounts
	test -d "$WORK/remote/nodes"
	kill "$pid"
	wait_for 10 gone "$pid"
	not_mounted "$WORK/remote"
}

@test "a port in use is a clear error, and the server unmounts and exits 1" {
	port=$(free_port)
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$port" &
	OTHER_PIDS=$!
	wait_for 10 listening_on "$port"
	run timeout 20 "$CLUSTERFS" server --mount "$WORK/mnt" --state "$WORK/state" --listen "127.0.0.1:$port"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot listen on 127.0.0.1:$port: Address already in use"* ]]
	not_mounted "$WORK/mnt"
}

@test "without diod the server says so and exits 1" {
	mkdir "$WORK/empty"
	run timeout 20 unshare -m sh -c 'mount --bind "$1" /usr/sbin &&
		{ [ ! -d /usr/local/sbin ] || mount --bind "$1" /usr/local/sbin; } &&
		shift && PATH=/usr/bin:/bin exec "$@"' sh "$WORK/empty" \
		"$CLUSTERFS" server --mount "$WORK/mnt" --state "$WORK/state" --listen "127.0.0.1:$(free_port)"
	[ "$status" -eq 1 ]
	[[ "$output" == *"diod not found"* ]]
}

@test "a diod that exits at once is reported with its status, and the server exits 1" {
	mkdir "$WORK/bin"
	printf '#!/bin/sh\necho "diod: cannot serve today" >&2\nexit 3\n' >"$WORK/bin/diod"
	chmod 755 "$WORK/bin/diod"
	PATH=$WORK/bin:$PATH run timeout 20 "$CLUSTERFS" server --mount "$WORK/mnt" --state "$WORK/state" \
		--listen "127.0.0.1:$(free_port)"
	[ "$status" -eq 1 ]
	[[ "$output" == *"diod: cannot serve today"* ]]
	[[ "$output" == *"diod exited with status 3 before accepting connections"* ]]
	not_mounted "$WORK/mnt"
}

# libmunge has no setting or environment variable for its socket: diod and
# its clients always use /run/munge/munge.socket.2. A test's munged puts
# its socket under DIR/run/munge, and what should reach it runs in a mount
# namespace of its own where DIR/run is bind-mounted over /run.

# start_munged DIR: a munged with its own key, socket, pid, log and seed under DIR.
start_munged() {
	local d=$1
	mkdir -p "$d/run/munge" "$d/etc"
	chmod 755 "$d" "$d/run" "$d/run/munge"
	chmod 700 "$d/etc"
	dd if=/dev/urandom of="$d/etc/munge.key" bs=1024 count=1 status=none
	chmod 600 "$d/etc/munge.key"
	munged -F --socket="$d/run/munge/munge.socket.2" --key-file="$d/etc/munge.key" \
		--pid-file="$d/run/munge/munged.pid" --log-file="$d/etc/munged.log" \
		--seed-file="$d/etc/munged.seed" 2>"$d/etc/munged.err" &
	echo $! >"$d/pid"
	wait_for 10 test -S "$d/run/munge/munge.socket.2"
}

# stop_munged DIR: stops the munged start_munged left there, if any.
stop_munged() {
	local pid
	pid=$(cat "$1/pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$1/pid"
}

# with_run DIR COMMAND...: COMMAND in a mount namespace where /run is DIR.
with_run() {
	unshare -m sh -c 'mount --bind "$1" /run && shift && exec "$@"' sh "$@"
}

@test "--auth munge: a client with a credential lists the tree, others are refused" {
	start_munged "$WORK/munge"
	export PORT=$(free_port) M=$WORK/mnt STATE=$WORK/state
	mkdir -p "$M"
	# The server, and so diod, see the test's munged; their mount stays in
	# that namespace. Not with_run: $! must be the server itself.
	unshare -m sh -c 'mount --bind "$1" /run && shift && exec "$@"' sh "$WORK/munge/run" \
		"$CLUSTERFS" server --mount "$M" --state "$STATE" --listen "127.0.0.1:$PORT" \
		--auth munge 2>>"$WORK/server.log" &
	export SERVER_PID=$!
	echo "$SERVER_PID" >"$WORK/server.pid"
	wait_for 20 grep -q "exporting .* (auth munge)" "$WORK/server.log"
	diod_of "$SERVER_PID" >/dev/null
	run grep "no munged" "$WORK/server.log"
	[ "$status" -eq 1 ]

	run with_run "$WORK/munge/run" "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" /
	[ "$status" -eq 0 ]
	[[ "$output" == *README* && "$output" == *namespaces* ]]
	run with_run "$WORK/munge/run" "$DIODCAT" -s "127.0.0.1:$PORT" -a "$M" namespaces/default.yaml
	[ "$status" -eq 0 ]
	[[ "$output" == *"name: default"* ]]

	# clusterfs mount asks the munge program for its credential, which
	# takes the socket as an option
	mkdir -p "$WORK/remote"
	"$CLUSTERFS" mount --auth munge --munge-socket "$WORK/munge/run/munge/munge.socket.2" \
		"127.0.0.1:$PORT" "$WORK/remote" 2>>"$WORK/mount.log" &
	OTHER_PIDS="${OTHER_PIDS:-} $!"
	wait_for 20 test -e "$WORK/remote/namespaces/default.yaml"
	grep -q "name: default" "$WORK/remote/namespaces/default.yaml"
	# without --auth munge it sends no credential, and is refused
	run "$CLUSTERFS" mount "127.0.0.1:$PORT" "$WORK/remote2"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Operation not permitted"* ]]

	# no munged to ask for a credential
	mkdir "$WORK/norun"
	run with_run "$WORK/norun" "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" /
	[ "$status" -ne 0 ]
	[[ "$output" == *"Operation not permitted"* && "$output" != *README* ]]
	# a credential from a munged with another key
	start_munged "$WORK/munge2"
	run with_run "$WORK/munge2/run" "$DIODLS" -s "127.0.0.1:$PORT" -a "$M" /
	[ "$status" -ne 0 ]
	[[ "$output" != *README* ]]
	grep -q "munge cred decode: Invalid credential" "$WORK/server.log"
	# a valid credential for root does not let it attach as another uid
	run with_run "$WORK/munge/run" "$DIODLS" -u 1000 -s "127.0.0.1:$PORT" -a "$M" /
	[ "$status" -ne 0 ]
	grep -q "does not authenticate uid=1000" "$WORK/server.log"
	# a 9P client that sends no credential at all
	run p9 "127.0.0.1:$PORT" "$M" put namespaces/default/configmaps/x.yaml <<<'data: {a: b}'
	[ "$status" -ne 0 ]
	[[ "$output" == *EPERM* ]]
}
