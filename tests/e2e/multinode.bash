# multinode.bash: one server and two real node agents, each in a network
# namespace of its own as if it were its own host, for multinode.bats.
# Load it after helpers.bash, images.bash and runtime.bash (for yget).
#
#   mn_setup_file        the network, the server and registry on the
#                        bridge's address, busybox pushed, nodes pre-created
#                        with their pod ranges, both agents started
#   mn_teardown_file     leaves nothing behind, even after failures
#   mn_start_agent N     starts node N's agent (N is a or b)
#   mn_kill_agent N [SIG]  stops it by pid and waits for it to go; one that
#                        does not go has its view's FUSE connection aborted
#   mn_sweep_node N      what node N's dead agent left: its containers,
#                        conmons, mounts and pod namespaces, gone
#
# The network (SUF is this shell's pid in hex, so names are unique and
# short; interface names stay under 16 bytes):
#
#   root namespace: bridge mnbrSUF, MN_NET.1/24 ── server (9P), registry
#     ├─ veth mnhaSUF ── netns mnaSUF: mnpaSUF MN_NET.2, pods MN_CIDR_A
#     └─ veth mnhbSUF ── netns mnbSUF: mnpbSUF MN_NET.3, pods MN_CIDR_B
#
# Each node namespace forwards, and routes the other node's pod range via
# the other node's address; each agent makes its CNI bridge (cfsaSUF,
# cfsbSUF) inside its own namespace, which takes it along when it goes.
# Addresses: MN_NET is 198.18.R (RFC 2544's benchmark range), pod ranges
# 10.R2.R3.0/24 and the next /24, none in use on this host.
#
# Every wait is bounded (wait_for); nothing sleeps a fixed time.

MN_WAIT=${MN_WAIT:-60}

# ---- names and addresses ----

# _mn_free PREFIX: whether no address or route of this host is in PREFIX
# (given as the dotted start of an address, e.g. "198.18.7.").
_mn_free() {
	! { ip -4 -o addr show; ip -4 route show table all; } | sed 's/^/ /' | grep -qF " $1"
}

_mn_names() {
	local suf r i
	suf=$(printf %x $$)
	export MN_SUF=$suf
	export MN_BR=mnbr$suf MN_NS_A=mna$suf MN_NS_B=mnb$suf
	export MN_HVETH_A=mnha$suf MN_HVETH_B=mnhb$suf
	export MN_PVETH_A=mnpa$suf MN_PVETH_B=mnpb$suf
	export MN_CNI_A=cfsa$suf MN_CNI_B=cfsb$suf
	for ((i = 0; i < 50; i++)); do
		r=$((RANDOM % 256))
		_mn_free "198.18.$r." && break
	done
	_mn_free "198.18.$r." || { echo "no free /24 in 198.18.0.0/16" >&2; return 1; }
	export MN_NET=198.18.$r
	export MN_IP=$MN_NET.1 MN_IP_A=$MN_NET.2 MN_IP_B=$MN_NET.3
	for ((i = 0; i < 50; i++)); do
		r=$((10 + RANDOM % 240)).$((RANDOM % 127 * 2))
		_mn_free "10.$r." && _mn_free "10.${r%.*}.$((${r#*.} + 1))." && break
	done
	export MN_CIDR_A=10.$r.0/24 MN_CIDR_B=10.${r%.*}.$((${r#*.} + 1)).0/24
	export MN_NODE_A=node-a MN_NODE_B=node-b
	# Saved for teardown_file, which may run after a setup_file that failed
	# half way.
	declare -p MN_SUF MN_BR MN_NS_A MN_NS_B MN_HVETH_A MN_HVETH_B MN_PVETH_A \
		MN_PVETH_B MN_CNI_A MN_CNI_B MN_NET MN_IP MN_IP_A MN_IP_B MN_CIDR_A \
		MN_CIDR_B MN_NODE_A MN_NODE_B | sed 's/^declare -x/declare -gx/' >"$WORK/names"
}

# mn_var NAME N: the value of NAME_A or NAME_B for node a or b.
mn_var() {
	local v=${1}_${2^^}
	echo "${!v}"
}

# ---- the network ----

# _mn_nsx N CMD...: CMD inside node N's network namespace.
_mn_nsx() {
	local ns
	ns=$(mn_var MN_NS "$1")
	shift
	ip netns exec "$ns" "$@"
}

_mn_network() {
	ip link add "$MN_BR" type bridge || return 1
	ip addr add "$MN_IP/24" dev "$MN_BR" || return 1
	ip link set "$MN_BR" up || return 1
	local n ns hv pv ip other_ip other_cidr
	for n in a b; do
		ns=$(mn_var MN_NS $n) hv=$(mn_var MN_HVETH $n) pv=$(mn_var MN_PVETH $n)
		ip=$(mn_var MN_IP $n)
		if [ $n = a ]; then other_ip=$MN_IP_B other_cidr=$MN_CIDR_B; else other_ip=$MN_IP_A other_cidr=$MN_CIDR_A; fi
		ip netns add "$ns" || return 1
		ip link add "$hv" type veth peer name "$pv" netns "$ns" || return 1
		ip link set "$hv" master "$MN_BR" up || return 1
		_mn_nsx $n ip link set lo up || return 1
		_mn_nsx $n ip addr add "$ip/24" dev "$pv" || return 1
		_mn_nsx $n ip link set "$pv" up || return 1
		_mn_nsx $n sysctl -qw net.ipv4.ip_forward=1 || return 1
		_mn_nsx $n ip route add "$other_cidr" via "$other_ip" dev "$pv" || return 1
	done
}

# _mn_reaches N IP: node N's namespace reaches IP.
_mn_reaches() {
	_mn_nsx "$1" busybox ping -c1 -W1 "$2" >/dev/null 2>&1
}

# ---- the agents ----

mn_agent_pid() { cat "$WORK/agent-$1.pid" 2>/dev/null; }

# mn_start_agent N: node N's agent in node N's network namespace, through
# the server's 9P export on the bridge. Not our shell's child (a subshell
# starts it), fd 3 closed (bats waits for whoever holds it), its working
# directory an empty one of its own.
#
# `ip netns exec` also gives the command a mount namespace of its own with
# a fresh /sys for the network namespace, and that /sys has no cgroup
# mounts: crun then fails every container ("invalid file system type on
# '/sys/fs/cgroup'"). So the agent goes back to this shell's mount
# namespace (nsenter --mount), as an agent on its own host shares that
# host's mounts: its 9P view, its pods' network namespaces under
# /run/netns and its containers' mounts are visible here, and an agent
# started again finds them.
mn_start_agent() {
	local n=$1 bin
	bin=$(realpath "$CLUSTERFS") || return 1
	mkdir -p "$WORK/cwd-$n"
	(
		ip netns exec "$(mn_var MN_NS "$n")" \
			nsenter --mount="/proc/$$/ns/mnt" --wd="$WORK/cwd-$n" -- \
			"$bin" agent --server "$MN_IP:$MN_PORT" \
			--node "$(mn_var MN_NODE "$n")" --state-dir "$(mn_var MN_STATE "$n")" \
			--run-dir "$(mn_var MN_RUN "$n")" --bridge "$(mn_var MN_CNI "$n")" \
			--insecure-registry "$REGISTRY" --backoff 1 --heartbeat 1 \
			</dev/null >>"$WORK/agent-$n.log" 2>&1 3>&- &
		echo $! >"$WORK/agent-$n.pid"
	)
}

# _mn_vanished PID: the process is gone, or a zombie with no thread left
# (an agent's parent is init, which reaps it).
_mn_vanished() {
	[ ! -e "/proc/$1" ] ||
		{ ! rt_alive "$1" && [ "$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" -le 1 ]; }
}

# _mn_view_conn N: the FUSE connection (its number under
# /sys/fs/fuse/connections) of node N's 9P view as mounted now, if it is.
_mn_view_conn() {
	awk -v m="$(mn_var MN_RUN "$1")/view" \
		'$5 == m { split($3, d, ":"); c = d[2] } END { if (c != "") print c }' /proc/self/mountinfo
}

# _mn_abort_conn N CONN: aborts FUSE connection CONN, when it is still node
# N's view's: mounted at its place here, or in the mount namespace of one
# of the test's conmons, which copied it (a number is reused once its
# connection is gone, and another may belong to somebody else). Every
# request in it then fails with ENOTCONN, and whoever waited returns.
_mn_abort_conn() {
	local view pid f ours=
	view=$(mn_var MN_RUN "$1")/view
	[ -n "$2" ] && [ -e "/sys/fs/fuse/connections/$2/abort" ] || return 0
	for f in /proc/self/mountinfo $(for pid in $(_mn_conmons "$MN_RUN_A") $(_mn_conmons "$MN_RUN_B"); do
		echo "/proc/$pid/mountinfo"; done); do
		if awk -v m="$view" -v d="0:$2" '$5 == m && $3 == d { f = 1 } END { exit !f }' "$f" 2>/dev/null; then
			ours=1
			break
		fi
	done
	[ -n "$ours" ] || return 0
	echo 1 >"/sys/fs/fuse/connections/$2/abort" 2>/dev/null || true
}

# _mn_stuck PID: what the threads of a process that does not go wait in,
# for a failure's message.
_mn_stuck() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "  thread ${t##*/}: state $(awk '{ print $3 }' "$t/stat" 2>/dev/null)," \
			"waiting in $(cat "$t/wchan" 2>/dev/null)"
	done
}

# mn_kill_agent N [SIGNAL]: stops node N's agent by pid (SIGTERM unless
# told) and waits for it to go. One that has not gone after 10 seconds has
# its view's FUSE connection aborted (what holds it up is a request to
# that view), then SIGKILL.
mn_kill_agent() {
	local n=$1 sig=${2:-TERM} pid conn
	pid=$(mn_agent_pid "$n") || return 0
	[ -n "$pid" ] || return 0
	conn=$(_mn_view_conn "$n")
	kill -"$sig" "$pid" 2>/dev/null
	if ! wait_for 10 _mn_vanished "$pid" 2>/dev/null; then
		{
			echo "agent $n (pid $pid) has not gone 10s after SIG$sig:"
			_mn_stuck "$pid"
			echo "  aborting its view's FUSE connection ${conn:-(none)}"
		} | _rt_say
		_mn_abort_conn "$n" "$conn"
		if ! wait_for 10 _mn_vanished "$pid" 2>/dev/null; then
			kill -9 "$pid" 2>/dev/null
			_mn_abort_conn "$n" "$conn"
			wait_for 10 _mn_vanished "$pid"
		fi
	fi
	rm -f "$WORK/agent-$n.pid"
}

mn_agent_alive() {
	local pid
	pid=$(mn_agent_pid "$1") && [ -n "$pid" ] && rt_alive "$pid"
}

# mn_note_stopping N PID: notes that the test signalled node N's agent PID
# itself (to see what it does), so that the teardown, when it has not
# gone, ends it as mn_kill_agent would (its view's connection aborted).
mn_note_stopping() {
	echo "$2 $(_mn_view_conn "$1")" >"$WORK/stopping-$1"
}

# _mn_end_stopping N: that, for the teardown.
_mn_end_stopping() {
	local pid conn
	read -r pid conn <"$WORK/stopping-$1" 2>/dev/null || return 0
	rm -f "$WORK/stopping-$1"
	[ -n "$pid" ] && ! _mn_vanished "$pid" || return 0
	{
		echo "agent $1 (pid $pid), signalled by a test, has not gone:"
		_mn_stuck "$pid"
		echo "  aborting its view's FUSE connection ${conn:-(none)}"
	} | _rt_say
	_mn_abort_conn "$1" "$conn"
	if ! wait_for 10 _mn_vanished "$pid"; then
		kill -9 "$pid" 2>/dev/null
		wait_for 10 _mn_vanished "$pid"
	fi
	[ "$(mn_agent_pid "$1")" != "$pid" ] || rm -f "$WORK/agent-$1.pid"
}

# node_is NODE STATUS: the Ready condition of NODE has STATUS.
node_is() {
	[ "$(yget "$M/nodes/$1.yaml" "status.conditions[type=Ready].status")" = "$2" ]
}

# ---- pods ----

# mn_note_uid UID: remembered for the teardown's backstop (netns names).
mn_note_uid() { [ -z "$1" ] || echo "$1" >>"$WORK/uids"; }

# mn_note_pods: the uids of every pod there is now, noted.
mn_note_pods() {
	local f
	for f in "$NS"/pods/*.yaml; do
		[ -e "$f" ] && mn_note_uid "$(yget "$f" metadata.uid 2>/dev/null)"
	done
	return 0
}

# pods_of [PREFIX]: one line per pod named PREFIX-* (every pod without
# PREFIX): NAME NODE PHASE IP, with - for what is not there (yet).
pods_of() {
	local f name
	for f in "$NS/pods/${1:+$1-}"*.yaml; do
		[ -e "$f" ] || continue
		name=${f##*/}
		name=${name%.yaml}
		echo "$name $(yget "$f" spec.nodeName 2>/dev/null || echo -)" \
			"$(yget "$f" status.phase 2>/dev/null || echo -)" \
			"$(yget "$f" status.podIP 2>/dev/null || echo -)"
	done
}

# ---- setup ----

mn_setup_file() {
	export WORK=${WORK:-$(mktemp -d /tmp/clusterfs-test.XXXXXX)}
	chmod 755 "$WORK"
	: >"$WORK/uids"
	_mn_names || return 1
	echo "$MN_SUF" >"$WORK/network" # from here on the teardown takes the network down
	_mn_network || return 1
	wait_for 10 _mn_reaches a "$MN_IP_B" || return 1

	export MN_STATE_A=$WORK/agent-a MN_STATE_B=$WORK/agent-b
	MN_RUN_A=$(mktemp -d /run/cfsmn.XXXX) && echo "$MN_RUN_A" >"$WORK/run-a" || return 1
	MN_RUN_B=$(mktemp -d /run/cfsmn.XXXX) && echo "$MN_RUN_B" >"$WORK/run-b" || return 1
	export MN_RUN_A MN_RUN_B

	MN_PORT=$(free_port) || return 1
	export MN_PORT
	SERVER_ARGS="--listen $MN_IP:$MN_PORT --node-grace 5 --eviction-timeout 3" start_server ||
		return 1
	REGISTRY_HOST=$MN_IP start_registry || return 1
	push_busybox || return 1

	local n node cidr
	for n in a b; do
		node=$(mn_var MN_NODE $n) cidr=$(mn_var MN_CIDR $n)
		mkdir -p "$WORK/objects"
		cat >"$WORK/objects/$node.yaml" <<-EOF
			apiVersion: v1
			kind: Node
			metadata:
			  name: $node
			spec:
			  podCIDR: $cidr
			  podCIDRs:
			  - $cidr
		EOF
		cp "$WORK/objects/$node.yaml" "$M/nodes/$node.yaml" || return 1
	done
	mn_start_agent a
	mn_start_agent b
}

# ---- after a kill -9 ----

# _mn_crun RUN ARGS...: crun on the state under RUN; see runtime.bash's
# _rt_crun (hybrid cgroups).
_mn_crun() {
	local run=$1
	shift
	# shellcheck disable=SC2016 # expanded by that sh
	timeout -k 5 30 unshare -m --propagation private sh -c '
		[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/$PPID/ns/mnt)" ] || exit 125
		if grep -qs "^[^ ]* /sys/fs/cgroup/unified cgroup2 " /proc/self/mounts; then
			umount -l /sys/fs/cgroup/unified || exit 125
		fi
		exec crun --root="$0" "$@"' "$run/crun" "$@"
}

# _mn_conmons RUN: the pids of the conmons working under RUN.
_mn_conmons() {
	local pid
	[ -n "$1" ] || return 0
	for pid in $(pgrep -f -- "$1/"); do
		[ "$(cat /proc/"$pid"/comm 2>/dev/null)" = conmon ] && echo "$pid"
	done
	return 0
}

_mn_no_conmons() { [ -z "$(_mn_conmons "$1")" ]; }

# _mn_uids_of STATE: the pod uids an agent holds state for.
_mn_uids_of() {
	local d
	for d in "$1"/pods/*; do
		[[ ${d##*/} =~ ^[0-9a-f-]{24,}$ ]] && echo "${d##*/}"
	done
	return 0
}

# _mn_umount_under DIR N [QUIET]: unmounts what is mounted below DIR.
_mn_umount_under() {
	local mnt
	[ -n "$1" ] || return 0
	for mnt in $(awk -v d="$1" 'index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r); do
		[ -n "${3:-}" ] || echo "node $2: $mnt was left mounted" | _rt_say
		umount -l "$mnt" 2>/dev/null || true
	done
}

# mn_sweep_node N [QUIET]: with node N's agent gone, stops what it left:
# its containers (crun delete -f), its conmons (SIGKILL), its view and its
# containers' overlays (unmounted), and the network namespaces of its
# pods. Says what it found unless QUIET.
mn_sweep_node() {
	local n=$1 quiet=${2:-} run state id pid uid mnt
	run=$(mn_var MN_RUN "$n") state=$(mn_var MN_STATE "$n")
	[ -n "$run" ] || run=$(cat "$WORK/run-$n" 2>/dev/null)
	[ -n "$state" ] || state=$WORK/agent-$n
	if [ -n "$run" ] && [ -d "$run/crun" ]; then
		for id in $(_mn_crun "$run" list -q 2>/dev/null); do
			[ -n "$quiet" ] || echo "node $n: container $id was left" | _rt_say
			_mn_crun "$run" delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	for pid in $(_mn_conmons "$run"); do
		[ -n "$quiet" ] || echo "node $n: conmon $pid was left" | _rt_say
		kill -9 "$pid" 2>/dev/null || true
	done
	[ -z "$run" ] || wait_for 10 _mn_no_conmons "$run" || true
	# Its view (a 9P mount whose daemon is gone) and its pods' overlays.
	_mn_umount_under "$run" "$n" "$quiet"
	_mn_umount_under "$state" "$n" "$quiet"
	for uid in $(_mn_uids_of "$state"); do
		mn_note_uid "$uid"
		if [ -e "/run/netns/cfs-${uid:0:24}" ]; then
			[ -n "$quiet" ] || echo "node $n: netns cfs-${uid:0:24} was left" | _rt_say
			ip netns del "cfs-${uid:0:24}" 2>/dev/null || true
		fi
	done
}

# ---- the file's teardown ----

_mn_all_uids() {
	{
		cat "$WORK/uids" 2>/dev/null
		_mn_uids_of "$WORK/agent-a"
		_mn_uids_of "$WORK/agent-b"
	} | grep -E '^[0-9a-f-]{24,}$' | sort -u
}

# _mn_released N: node N's agent holds no pod on disk any more.
_mn_released() {
	[ -z "$(_mn_uids_of "$WORK/agent-$1")" ]
}

# _mn_no_pods_left: deletes the pods there are (a controller may still
# make some) and tells whether there were none and every running agent
# released its own.
_mn_no_pods_left() {
	local f none=0 n
	for f in "$NS"/pods/*.yaml; do
		[ -e "$f" ] || continue
		mn_note_uid "$(yget "$f" metadata.uid 2>/dev/null)"
		rm -f "$f"
		none=1
	done
	[ $none = 0 ] || return 1
	for n in a b; do
		if mn_agent_alive $n; then _mn_released $n || return 1; fi
	done
}

# _mn_gone_link NAME: no link NAME in this namespace.
_mn_gone_link() { ! ip link show "$1" >/dev/null 2>&1; }

mn_teardown_file() {
	local rc=0 n uid ns mnt run log
	[ -n "${WORK:-}" ] || return 0
	# shellcheck disable=SC1091
	[ -s "$WORK/names" ] && source "$WORK/names"
	MN_RUN_A=${MN_RUN_A:-$(cat "$WORK/run-a" 2>/dev/null)}
	MN_RUN_B=${MN_RUN_B:-$(cat "$WORK/run-b" 2>/dev/null)}
	MN_STATE_A=${MN_STATE_A:-$WORK/agent-a} MN_STATE_B=${MN_STATE_B:-$WORK/agent-b}
	if [ -e "$WORK/failed" ]; then
		for log in "$WORK"/agent-?.log "$WORK/server.log"; do
			[ -e "$log" ] && { echo "=== ${log##*/} (last 60 lines)"; tail -60 "$log"; } | _rt_say
		done
	fi
	# An agent a test signalled itself and that has not gone is ended
	# first: it no longer does an agent's work.
	_mn_end_stopping a
	_mn_end_stopping b
	# The pods: deleted, and released by the agents that still run.
	if [ -n "${NS:-}" ] && [ -d "$NS/pods" ]; then
		rm -f "$NS"/deployments/*.yaml "$NS"/replicasets/*.yaml 2>/dev/null
		if mn_agent_alive a || mn_agent_alive b; then
			wait_for 30 _mn_no_pods_left || rc=1
		else
			_mn_no_pods_left || true
		fi
	fi
	mn_kill_agent a TERM
	mn_kill_agent b TERM
	# The backstop: whatever the agents left.
	mn_sweep_node a
	mn_sweep_node b
	for mnt in $(awk -v w="$WORK" 'index($2, w "/") == 1 && $2 != w "/mnt" { print $2 }' \
		/proc/mounts | sort -r); do
		echo "teardown: $mnt was left mounted" | _rt_say
		umount -l "$mnt" 2>/dev/null || true
	done
	for uid in $(_mn_all_uids); do
		if [ -e "/run/netns/cfs-${uid:0:24}" ]; then
			echo "teardown: netns cfs-${uid:0:24} was left" | _rt_say
			ip netns del "cfs-${uid:0:24}" 2>/dev/null || true
		fi
	done
	# The network: the node namespaces (their CNI bridges and pods' veths
	# go with them), the veths' ends on the bridge, the bridge.
	if [ -s "$WORK/network" ]; then
		for ns in "${MN_NS_A:-}" "${MN_NS_B:-}"; do
			[ -n "$ns" ] && [ -e "/run/netns/$ns" ] && { ip netns del "$ns" || rc=1; }
		done
		for n in "${MN_HVETH_A:-}" "${MN_HVETH_B:-}" "${MN_BR:-}"; do
			[ -n "$n" ] || continue
			ip link del "$n" 2>/dev/null || true
			wait_for 10 _mn_gone_link "$n" || rc=1
		done
	fi
	stop_registry
	cleanup_server || rc=1
	for run in "$MN_RUN_A" "$MN_RUN_B"; do
		[ -n "$run" ] && rm -rf "$run"
	done
	return $rc
}
