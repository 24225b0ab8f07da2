# helpers.bash: start and stop a server on a private mount for one test
# file, and wait for conditions with a bound instead of sleeping.

CLUSTERFS=${CLUSTERFS:-$BATS_TEST_DIRNAME/../../build/clusterfs}

# wait_for SECONDS COMMAND...: runs COMMAND until it succeeds or time runs out.
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	echo "timed out after ${limit}s waiting for: $*" >&2
	return 1
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server: a server on $M with its state in $STATE, pid in $SERVER_PID.
# With CFS_REMOTE=1 the server exports its mount over 9P and $M is a
# `clusterfs mount` of that export instead ($SERVER_M is the server's own),
# so the same tests run through the 9P client.
start_server() {
	export WORK=${WORK:-$(mktemp -d /tmp/clusterfs-test.XXXXXX)}
	chmod 755 "$WORK"
	export M=$WORK/mnt STATE=$WORK/state SERVER_M=$WORK/mnt
	local listen=
	mkdir -p "$M" 2>/dev/null || true # a stale mount is the server's to clear
	if [ "${CFS_REMOTE:-}" = 1 ]; then
		export CFS_PORT=${CFS_PORT:-$(free_port)}
		listen="--listen 127.0.0.1:$CFS_PORT"
	fi
	# shellcheck disable=SC2086
	"$CLUSTERFS" server --mount "$M" --state "$STATE" $listen ${SERVER_ARGS:-} 2>>"$WORK/server.log" &
	export SERVER_PID=$!
	echo "$SERVER_PID" >"$WORK/server.pid"
	wait_for 20 test -e "$M/namespaces/default.yaml"
	if [ "${CFS_REMOTE:-}" = 1 ]; then
		export M=$WORK/remote
		mkdir -p "$M" 2>/dev/null || true
		"$CLUSTERFS" mount "127.0.0.1:$CFS_PORT" "$M" 2>>"$WORK/mount.log" &
		echo $! >"$WORK/mount.pid"
		wait_for 20 test -e "$M/namespaces/default.yaml"
	fi
	export NS=$M/namespaces/default
}

# stop_mount: stops the `clusterfs mount` of a CFS_REMOTE run, if any.
stop_mount() {
	local pid
	pid=$(cat "$WORK/mount.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait_for 20 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	rm -f "$WORK/mount.pid"
	if grep -qs " $WORK/remote " /proc/mounts; then umount -l "$WORK/remote" 2>/dev/null || true; fi
}

# stop_server [SIGNAL]: stops the server by pid and waits for it to go.
stop_server() {
	local sig=${1:-TERM} pid
	stop_mount
	pid=$(cat "$WORK/server.pid" 2>/dev/null) || return 0
	kill -"$sig" "$pid" 2>/dev/null
	wait_for 20 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	rm -f "$WORK/server.pid"
	if grep -qs " $SERVER_M " /proc/mounts; then umount -l "$SERVER_M" 2>/dev/null || true; fi
}

# sanitizer_clean: fails when a sanitized server reported an error.
sanitizer_clean() {
	local log
	for log in "$WORK/server.log" "$WORK/mount.log"; do
		if grep -qsE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log"; then
			echo "sanitizers reported in $log:" >&2
			grep -E -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log" | head -60 >&2
			return 1
		fi
	done
}

# cleanup_server: for teardown_file; leaves nothing behind, and fails when
# a sanitized server reported an error.
cleanup_server() {
	local rc=0
	stop_server TERM
	sanitizer_clean || rc=1
	[ -n "$WORK" ] && rm -rf "$WORK"
	return $rc
}

# events_has NS_DIR TEXT: whether the events file of NS_DIR has TEXT.
events_has() {
	grep -qF -- "$2" "$1/events"
}
