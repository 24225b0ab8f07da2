# runtime.bash: a real node agent (crun under conmon, a CNI bridge, images
# from a private registry) on a private mount, for runtime.bats. Load it
# after helpers.bash and images.bash.
#
#   rt_setup_file        server, registry, busybox pushed, agent started,
#                        node Ready; exports RT_NODE RT_BRIDGE RT_STATE RT_RUN
#   rt_teardown_file     leaves nothing behind, even after failures
#   rt_start_agent       starts the agent (again) with the same flags, and
#                        $RT_AGENT_ARGS
#   rt_kill_agent [SIG]  stops it by pid and waits for it to go
#
#   new_pod NAME         the pod document on stdin (@IMAGE@, @REGISTRY@,
#                        @NODE@ replaced) written to pods/NAME.yaml; its uid noted
#   rm_pods NAME...      deletes them and waits until the agent released them
#   pget NAME PATH       a field of pods/NAME.yaml (see yget)
#   cget NAME CTR PATH   a field of CTR's containerStatuses entry
#   iget NAME CTR PATH   a field of CTR's initContainerStatuses entry
#
# Every wait is bounded (wait_for); nothing sleeps a fixed time.

RT_WAIT=${RT_WAIT:-30}

# yget FILE PATH: prints the value at PATH in the YAML FILE, without a YAML
# library (and in awk: python's start-up is slow): the block style the
# server emits (maps, sequences, plain and quoted scalars, literal blocks,
# {} and []). PATH is dotted keys, [N] for an index and [KEY=VALUE] for the
# entry of a list with that field, e.g.
# status.containerStatuses[name=app].state.terminated.exitCode. A map or a
# list prints as SUBPATH=VALUE lines; PATH# prints how many entries it has.
# Fails when PATH is not there.
yget() {
	[ -r "$1" ] || return 1
	awk -v q="$2" "$_RT_YGET" "$1"
}

# The YAML is flattened into val[a.b.0.c] (scalars) and has[...] (every
# node); a stack of frames (column, path, map or seq) tracks where a line
# belongs. A sequence may sit at its key's column, as the server writes it.
read -r -d '' _RT_YGET <<-'EOF' || true
	function push(col, path, kind) { n++; fcol[n] = col; fpath[n] = path; fkind[n] = kind; fcount[n] = 0 }
	function join(a, b) { return a == "" ? b : a "." b }
	function unquote(v) {
		if (v ~ /^".*"$/) {
			v = substr(v, 2, length(v) - 2)
			gsub(/\\"/, "\"", v); gsub(/\\\\/, "\\", v)
		} else if (v ~ /^'.*'$/) {
			v = substr(v, 2, length(v) - 2)
			gsub(/''/, "'", v)
		}
		return v
	}
	function setval(path, v) { val[path] = v; has[path] = 1; order[++nkeys] = path }
	# a "key: value" (or "key:") at column c
	function keyline(c, t,    k, v, i) {
		if (t ~ /^"/) {
			match(t, /^"([^"\\]|\\.)*"/)
			k = unquote(substr(t, 1, RLENGTH)); t = substr(t, RLENGTH + 1)
			i = index(t, ":"); v = substr(t, i + 1)
		} else {
			i = index(t, ": ")
			if (i == 0) { k = substr(t, 1, length(t) - 1); v = "" }
			else { k = substr(t, 1, i - 1); v = substr(t, i + 2) }
		}
		sub(/^ +/, "", v); sub(/ +$/, "", v)
		while (n > 0 && (fcol[n] > c || (fcol[n] == c && fkind[n] == "seq"))) n--
		if (fcol[n] < c) push(c, pending, "map")
		path = join(fpath[n], k)
		has[path] = 1
		if (v == "") { pending = path; return }
		if (v ~ /^[|>]/) { blockpath = path; blockcol = c; blocktext = ""; blockfirst = 1; return }
		setval(path, unquote(v))
	}
	function line(c, t,    p, rest) {
		if (t == "-" || substr(t, 1, 2) == "- ") {
			while (n > 0 && fcol[n] > c) n--
			if (!(fkind[n] == "seq" && fcol[n] == c)) push(c, pending, "seq")
			p = join(fpath[n], fcount[n]++)
			has[p] = 1
			rest = substr(t, 3); sub(/^ +/, "", rest)
			if (rest == "") { pending = p; return }
			if (rest ~ /^[^"'{\[][^:]*:( |$)/ || rest ~ /^"([^"\\]|\\.)*":( |$)/) {
				push(c + 2, p, "map")
				keyline(c + 2, rest)
			} else if (rest ~ /^[|>]/) {
				blockpath = p; blockcol = c; blocktext = ""; blockfirst = 1
			} else
				setval(p, unquote(rest))
			return
		}
		keyline(c, t)
	}
	BEGIN { n = 0; push(-1, "", "map"); fkind[1] = "root"; pending = ""; blockpath = "" }
	{
		raw = $0
		t = raw; sub(/^ +/, "", t)
		c = length(raw) - length(t)
		if (blockpath != "") {
			if (t == "" || c > blockcol) {
				if (blockfirst) { blockind = c; blockfirst = 0 }
				blocktext = blocktext (blocktext == "" && !nbl ? "" : "\n") substr(raw, blockind + 1); nbl++
				next
			}
			setval(blockpath, blocktext); blockpath = ""; nbl = 0
		}
		if (t == "" || substr(t, 1, 1) == "#") next
		line(c, t)
	}
	END {
		if (blockpath != "") setval(blockpath, blocktext)
		count = 0
		if (q ~ /#$/) { count = 1; q = substr(q, 1, length(q) - 1) }
		P = ""
		while (q != "") {
			if (substr(q, 1, 1) == ".") q = substr(q, 2)
			if (substr(q, 1, 1) == "[") {
				e = index(q, "]"); sel = substr(q, 2, e - 2); q = substr(q, e + 1)
				eq = index(sel, "=")
				if (eq == 0) { P = join(P, sel); continue }
				sk = substr(sel, 1, eq - 1); sv = substr(sel, eq + 1)
				found = ""
				for (i = 0; join(P, i) in has; i++)
					if ((join(join(P, i), sk) in val) && val[join(join(P, i), sk)] == sv) { found = i; break }
				if (found == "") exit 1
				P = join(P, found)
			} else {
				match(q, /^[^.\[]+/)
				P = join(P, substr(q, 1, RLENGTH)); q = substr(q, RLENGTH + 1)
			}
		}
		if (!(P in has)) exit 1
		if (count) {
			m = 0
			for (i = 1; i <= nkeys; i++) {
				k = order[i]
				if (index(k, P ".") != 1) continue
				r = substr(k, length(P) + 2); sub(/\..*/, "", r)
				if (!(r in seen)) { seen[r] = 1; m++ }
			}
			print m
			exit 0
		}
		if (P in val) { print val[P]; exit 0 }
		for (i = 1; i <= nkeys; i++)
			if (index(order[i], P ".") == 1) print substr(order[i], length(P) + 2) "=" val[order[i]]
	}
EOF

pget() { yget "$NS/pods/$1.yaml" "$2"; }
cget() { yget "$NS/pods/$1.yaml" "status.containerStatuses[name=$2].$3"; }
iget() { yget "$NS/pods/$1.yaml" "status.initContainerStatuses[name=$2].$3"; }

# pod_is NAME PATH VALUE / ctr_is NAME CTR PATH VALUE: conditions for wait_for.
pod_is() { [ "$(pget "$1" "$2")" = "$3" ]; }
ctr_is() { [ "$(cget "$1" "$2" "$3")" = "$4" ]; }
# log_has_more N PATTERN: the agent's log has more than N lines matching.
log_has_more() { [ "$(grep -c -- "$2" "$WORK/agent.log")" -gt "$1" ]; }
# ctr_says NAME CTR TEXT: CTR is waiting with TEXT in its message.
ctr_says() { [[ "$(cget "$1" "$2" state.waiting.message)" == *"$3"* ]]; }
init_is() { [ "$(iget "$1" "$2" "$3")" = "$4" ]; }
# ctr_at_least NAME CTR PATH N: the field is a number >= N.
ctr_at_least() {
	local v
	v=$(cget "$1" "$2" "$3") || return 1
	[ -n "$v" ] && [ "$v" -ge "$4" ]
}
# condition NAME TYPE: the status of the pod's condition TYPE.
condition() { pget "$1" "status.conditions[type=$2].status"; }
condition_is() { [ "$(condition "$1" "$2")" = "$3" ]; }
phase_is() { pod_is "$1" status.phase "$2"; }

# log_has NAME CTR TEXT: the container's log in the view holds TEXT.
log_has() { grep -qF -- "$3" "$NS/pods/$1/logs/$2" 2>/dev/null; }
log_of() { cat "$NS/pods/$1/logs/$2"; }

# uid_of NAME: the pod's metadata.uid.
uid_of() { pget "$1" metadata.uid; }

# note_uid UID: remembered for the teardown's backstop (netns names).
note_uid() { [ -z "$1" ] || echo "$1" >>"$WORK/uids"; }

# rt_subst: stdin to stdout with @IMAGE@, @REGISTRY@ and @NODE@ replaced.
rt_subst() {
	sed -e "s|@IMAGE@|$IMAGE|g" -e "s|@REGISTRY@|$REGISTRY|g" -e "s|@NODE@|$RT_NODE|g"
}

# new_pod NAME: writes the pod document on stdin (through rt_subst) to
# pods/NAME.yaml with cp, which reports a rejected write; notes the pod for
# this test's teardown and its uid for the file's.
new_pod() {
	local src=$WORK/pods/$1.yaml
	mkdir -p "$WORK/pods"
	rt_subst >"$src"
	echo "$1" >>"$WORK/test-pods"
	cp "$src" "$NS/pods/$1.yaml"
	note_uid "$(uid_of "$1")"
}

# sleeper_pod NAME [IMAGE]: new_pod of a pod whose one container, main,
# sleeps until SIGTERM (IMAGE: @IMAGE@).
sleeper_pod() {
	new_pod "$1" <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: $1
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: ${2:-@IMAGE@}
		    command: [sh, -c, 'trap "exit 0" TERM; sleep 3600 & wait']
	EOF
}

# new_object KIND NAME: like new_pod for any kind of the default namespace.
new_object() {
	local src=$WORK/objects/$1-$2.yaml
	mkdir -p "$WORK/objects"
	rt_subst >"$src"
	cp "$src" "$NS/$1/$2.yaml"
}

# released UID: the agent holds nothing of the pod UID on disk any more.
released() { [ ! -e "$RT_STATE/pods/$1" ]; }

# rm_pods NAME...: deletes the pods and waits until the agent released each.
rm_pods() {
	local name uid uids=()
	for name in "$@"; do
		uid=$(uid_of "$name" 2>/dev/null) || uid=""
		[ -n "$uid" ] && uids+=("$uid")
		rm -f "$NS/pods/$name.yaml"
	done
	for uid in "${uids[@]}"; do
		wait_for "$RT_WAIT" released "$uid" || return 1
	done
}

# ---- the agent ----

rt_agent_pid() { cat "$WORK/agent.pid" 2>/dev/null; }

rt_start_agent() {
	# fd 3 closed: bats waits for whoever holds it open.
	# Not our shell's child (a subshell starts it): no job notice when it is
	# killed with SIGKILL.
	# Its working directory is an empty one of its own, which should stay so.
	local bin
	bin=$(realpath "$CLUSTERFS") || return 1
	mkdir -p "$WORK/cwd"
	(
		cd "$WORK/cwd" || exit 1
		"$bin" agent --view "$M" --node "$RT_NODE" --state-dir "$RT_STATE" \
			--run-dir "$RT_RUN" --bridge "$RT_BRIDGE" --insecure-registry "$REGISTRY" \
			--backoff 1 ${RT_AGENT_ARGS:-} </dev/null >>"$WORK/agent.log" 2>&1 3>&- &
		echo $! >"$WORK/agent.pid"
	)
}

# rt_alive PID: the process runs (a zombie, which whoever adopted it has
# not reaped yet, does not).
rt_alive() {
	local state
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

rt_agent_gone() { ! rt_alive "$1"; }

# rt_kill_agent [SIGNAL]: stops the agent by pid and waits for it to go.
rt_kill_agent() {
	local sig=${1:-TERM} pid
	pid=$(rt_agent_pid) || return 0
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null
	wait_for 20 rt_agent_gone "$pid" || kill -9 "$pid" 2>/dev/null
	rm -f "$WORK/agent.pid"
}

node_ready() {
	[ "$(yget "$M/nodes/$RT_NODE.yaml" "status.conditions[type=Ready].status")" = True ]
}

rt_setup_file() {
	start_server
	export RT_NODE=rt-$$ RT_BRIDGE=cfst$$ RT_STATE=$WORK/agent
	RT_RUN=$(mktemp -d /run/cfst.XXXX)
	export RT_RUN
	echo "$RT_RUN" >"$WORK/run-dir"
	: >"$WORK/uids"
	start_registry
	push_busybox
	rt_start_agent
	wait_for 30 node_ready
}

# ---- per test ----

# rt_test_teardown: removes the pods the test made (when it failed before
# removing them itself) and, after a failure, shows what they said.
rt_test_teardown() {
	local name log left=()
	[ -n "${WORK:-}" ] || return 0
	if [ -s "$WORK/test-pods" ]; then
		while read -r name; do
			[ -e "$NS/pods/$name.yaml" ] && left+=("$name")
		done <"$WORK/test-pods"
	fi
	rm -f "$WORK/test-pods"
	if [ -e "$WORK/not-a-bridge" ]; then # the wiring test's stand-in
		ip link del "$RT_BRIDGE" 2>/dev/null || true
		rm -f "$WORK/not-a-bridge"
	fi
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		touch "$WORK/failed"
		for name in "${left[@]}"; do
			echo "--- pods/$name.yaml status:" >&2
			sed -n '/^status:/,$p' "$NS/pods/$name.yaml" >&2
			for log in "$NS/pods/$name/logs/"*; do
				[ -e "$log" ] || continue
				echo "--- pods/$name/logs/${log##*/}:" >&2
				tail -20 "$log" >&2
			done
		done
		echo "--- agent.log (last 30 lines):" >&2
		tail -30 "$WORK/agent.log" >&2
	fi
	[ ${#left[@]} -eq 0 ] || rm_pods "${left[@]}" || true
}

# ---- the file's teardown ----

# _rt_uids: every pod uid this run may have had.
_rt_uids() {
	{
		cat "$WORK/uids" 2>/dev/null
		ls "$RT_STATE/pods" 2>/dev/null
	} | grep -E '^[0-9a-f-]{24,}$' | sort -u
}

_rt_all_released() {
	local d
	for d in "$RT_STATE"/pods/*; do
		[ -e "$d" ] && return 1
	done
	return 0
}

# _rt_no_pods_left: deletes the pods there are (a controller may still make
# some) and tells whether there were none and the agent released them all.
_rt_no_pods_left() {
	local f none=0
	for f in "$NS"/pods/*.yaml; do
		[ -e "$f" ] || continue
		note_uid "$(yget "$f" metadata.uid)"
		rm -f "$f"
		none=1
	done
	[ $none = 0 ] && _rt_all_released
}

# _rt_crun ARGS...: crun on the agent's state. cgroups may be hybrid here,
# which crun refuses: in a mount namespace of its own, the cgroup2 mount at
# /sys/fs/cgroup/unified is taken away, leaving plain cgroup v1. The inner
# shell checks that its namespace is not its parent's before it unmounts.
_rt_crun() {
	# shellcheck disable=SC2016 # expanded by that sh
	timeout -k 5 30 unshare -m --propagation private sh -c '
		[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/$PPID/ns/mnt)" ] || exit 125
		if grep -qs "^[^ ]* /sys/fs/cgroup/unified cgroup2 " /proc/self/mounts; then
			umount -l /sys/fs/cgroup/unified || exit 125
		fi
		exec crun --root="$0" "$@"' "$RT_RUN/crun" "$@"
}

# _rt_say: stdin to bats' output (fd 3) as comment lines, or to stderr:
# bats shows teardown_file's stderr only when teardown_file fails.
_rt_say() {
	if { true >&3; } 2>/dev/null; then
		sed 's/^/# /' >&3
	else
		cat >&2
	fi
}

# portmap_note: before a test's first host port. The portmap plugin adds
# shared chains to the nat table and jumps to them, and never removes
# them; when they were not there before, the file's teardown does.
portmap_note() {
	[ -e "$WORK/portmap-chains" ] && return 0
	if iptables-save -t nat | grep -q '^:CNI-HOSTPORT-DNAT '; then
		echo host >"$WORK/portmap-chains"
	else
		echo ours >"$WORK/portmap-chains"
	fi
}

_rt_portmap_cleanup() {
	[ "$(cat "$WORK/portmap-chains" 2>/dev/null)" = ours ] || return 0
	iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null
	iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null
	iptables -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" \
		-j CNI-HOSTPORT-MASQ 2>/dev/null
	local chain
	for chain in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do
		iptables -t nat -F "$chain" 2>/dev/null
		iptables -t nat -X "$chain" 2>/dev/null
	done
	if iptables-save -t nat | grep -q CNI-; then
		echo "teardown: portmap's chains could not be removed" | _rt_say
		return 1
	fi
}

rt_teardown_file() {
	local rc=0 f uid id pid mnt
	[ -n "${WORK:-}" ] || return 0
	[ -n "${RT_RUN:-}" ] || RT_RUN=$(cat "$WORK/run-dir" 2>/dev/null)
	if [ -e "$WORK/failed" ]; then
		{ echo "=== agent.log"; cat "$WORK/agent.log"; } | _rt_say
	fi
	# The pods: deleted, and released by the agent while it runs.
	if [ -n "${NS:-}" ] && [ -d "$NS/pods" ]; then
		rm -f "$NS"/deployments/*.yaml "$NS"/replicasets/*.yaml 2>/dev/null
		pid=$(rt_agent_pid)
		if [ -n "$pid" ] && rt_alive "$pid"; then
			wait_for 30 _rt_no_pods_left || rc=1
		else
			_rt_no_pods_left || true
		fi
	fi
	rt_kill_agent TERM
	# The backstop: whatever the agent left.
	if [ -n "$RT_RUN" ] && [ -d "$RT_RUN/crun" ]; then
		for id in $(_rt_crun list -q 2>/dev/null); do
			echo "teardown: container $id was left" | _rt_say
			_rt_crun delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	if [ -n "$RT_RUN" ]; then
		local comm
		for pid in $(pgrep -f -- "$RT_RUN"); do
			comm=$(cat /proc/"$pid"/comm 2>/dev/null)
			case $comm in conmon | dnsmasq) ;; *) continue ;; esac
			echo "teardown: $comm $pid was left" | _rt_say
			kill -9 "$pid" 2>/dev/null || true
		done
	fi
	for mnt in $(awk -v w="$WORK" -v r="${RT_RUN:-/nonexistent}" \
		'index($2, w "/") == 1 && $2 != w "/mnt" || index($2, r "/") == 1 { print $2 }' \
		/proc/mounts | sort -r); do
		echo "teardown: $mnt was left mounted" | _rt_say
		umount -l "$mnt" 2>/dev/null || true
	done
	for uid in $(_rt_uids); do
		if [ -e "/run/netns/cfs-${uid:0:24}" ]; then
			echo "teardown: netns cfs-${uid:0:24} was left" | _rt_say
			ip netns del "cfs-${uid:0:24}" 2>/dev/null || true
		fi
	done
	for uid in $(_rt_uids); do
		if [ -e "/run/netns/cfs-${uid:0:24}" ]; then
			echo "teardown: netns cfs-${uid:0:24} could not be deleted" | _rt_say
			rc=1
		fi
	done
	if [ -n "${RT_BRIDGE:-}" ] && ip link show "$RT_BRIDGE" >/dev/null 2>&1; then
		ip link del "$RT_BRIDGE" 2>/dev/null || true
	fi
	_rt_portmap_cleanup || rc=1
	stop_registry
	cleanup_server || rc=1
	[ -z "$RT_RUN" ] || rm -rf "$RT_RUN"
	return $rc
}
