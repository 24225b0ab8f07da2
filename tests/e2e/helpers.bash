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

# start_server: a server on $M with its state in $STATE, pid in $SERVER_PID.
start_server() {
	export WORK=${WORK:-$(mktemp -d /tmp/clusterfs-test.XXXXXX)}
	chmod 755 "$WORK"
	export M=$WORK/mnt STATE=$WORK/state
	mkdir -p "$M" 2>/dev/null || true # a stale mount is the server's to clear
	"$CLUSTERFS" server --mount "$M" --state "$STATE" ${SERVER_ARGS:-} 2>>"$WORK/server.log" &
	export SERVER_PID=$!
	echo "$SERVER_PID" >"$WORK/server.pid"
	wait_for 20 test -e "$M/namespaces/default.yaml"
	export NS=$M/namespaces/default
}

# stop_server [SIGNAL]: stops the server by pid and waits for it to go.
stop_server() {
	local sig=${1:-TERM} pid
	pid=$(cat "$WORK/server.pid" 2>/dev/null) || return 0
	kill -"$sig" "$pid" 2>/dev/null
	wait_for 20 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	rm -f "$WORK/server.pid"
	if grep -qs " $M " /proc/mounts; then umount -l "$M" 2>/dev/null || true; fi
}

# sanitizer_clean: fails when a sanitized server reported an error.
sanitizer_clean() {
	if grep -qsE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$WORK/server.log"; then
		echo "the server's sanitizers reported:" >&2
		grep -E -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$WORK/server.log" | head -60 >&2
		return 1
	fi
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
