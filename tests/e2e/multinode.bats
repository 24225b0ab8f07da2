#!/usr/bin/env bats
# A cluster of one server and two real node agents, each agent in a
# network namespace of its own as if it were its own host (see
# multinode.bash for the network): both agents reach the server over 9P
# on a bridge and register; a Deployment's pods spread over both nodes and
# a pod on one node fetches a page from a pod on the other, across the
# nodes' routes; a ClusterIP Service over the pods answers a client on
# either node from pods on both nodes; when one agent is killed, its node
# goes NotReady and its pods are replaced on the other node; started
# again, it stops what its evicted pods left; an agent stopped with
# SIGTERM leaves its pods running and adopts them when it starts again.
#
# Needs root, crun, conmon, skopeo, umoci, docker-registry, diod, the CNI
# plugins and busybox-static (scripts/install-deps). The tests run in
# order on one cluster; a test the later ones stand on skips them when it
# fails.

bats_require_minimum_version 1.5.0

load helpers
load images
load runtime
load multinode

setup_file() {
	mn_setup_file
}

teardown_file() {
	mn_teardown_file
}

# A test whose failure leaves the later ones nothing to stand on (the
# nodes, the Deployment) calls needed_by_later first; the later ones then
# skip. Every failure shows the cluster's state and the agents' logs.
setup() {
	if [ -e "$WORK/broken" ]; then
		skip "a test this one builds on failed"
	fi
}

needed_by_later() {
	touch "$WORK/needed"
}

teardown() {
	local f name
	[ -n "${WORK:-}" ] || return 0
	if [ -n "${BATS_TEST_COMPLETED:-}" ] || [ -n "${BATS_TEST_SKIPPED:-}" ]; then
		rm -f "$WORK/needed"
	else
		touch "$WORK/failed"
		[ ! -e "$WORK/needed" ] || mv "$WORK/needed" "$WORK/broken"
		echo "--- nodes:" >&2
		for f in "$M"/nodes/*.yaml; do
			echo "${f##*/}: Ready=$(yget "$f" "status.conditions[type=Ready].status" 2>/dev/null)" >&2
		done
		echo "--- pods (name node phase ip):" >&2
		pods_of >&2 || true
		while read -r name; do
			for f in "$NS/pods/$name/logs"/*; do
				[ -e "$f" ] || continue
				echo "--- pods/$name/logs/${f##*/} (last 5 lines):" >&2
				tail -5 "$f" >&2
			done
		done < <(cat "$WORK/test-pods" 2>/dev/null)
		for f in a b; do
			echo "--- agent-$f.log (last 20 lines):" >&2
			tail -20 "$WORK/agent-$f.log" >&2
		done
		echo "--- default/events (last 20 lines):" >&2
		tail -20 "$NS/events" >&2
	fi
	# The pods the test made itself (new_pod), when it failed before
	# deleting them.
	while read -r name; do
		rm -f "$NS/pods/$name.yaml"
	done < <(cat "$WORK/test-pods" 2>/dev/null)
	rm -f "$WORK/test-pods"
	# The Service a failed test left.
	[ -z "${NS:-}" ] || rm -f "$NS"/services/*.yaml
}

# web_on NODE: how many pods of the Deployment web run on NODE; web_count:
# how many pods web has.
web_on() {
	pods_of web | awk -v n="$1" '$2 == n && $3 == "Running"' | wc -l
}
web_count() {
	pods_of web | wc -l
}

# web_running N: N pods of web, all Running.
web_running() {
	[ "$(web_count)" -eq "$1" ] &&
		[ "$(pods_of web | awk '$3 == "Running"' | wc -l)" -eq "$1" ]
}

# all_web_on NODE N: web has exactly N pods, all Running on NODE.
all_web_on() {
	[ "$(web_count)" -eq "$2" ] && [ "$(web_on "$1")" -eq "$2" ]
}

# released_on N UID: node N's agent holds nothing of pod UID on disk.
released_on() {
	[ ! -e "$(mn_var MN_STATE "$1")/pods/$2" ]
}

# phase_in NAME PHASE...: pod NAME is in one of the PHASEs.
phase_in() {
	local p
	p=$(pget "$1" status.phase 2>/dev/null) || return 1
	shift
	[[ " $* " == *" $p "* ]]
}

# _mn_fetches N IP TEXT: node N's namespace gets TEXT from http://IP:8080/.
_mn_fetches() {
	[ "$(_mn_nsx "$1" timeout 3 busybox wget -q -O- "http://$2:8080/" 2>/dev/null)" = "$3" ]
}

# in_cidr IP CIDR (a /24): whether IP is in CIDR.
in_cidr() {
	[[ $1 == "${2%.0/24}".* ]]
}

# ready_addresses SERVICE N: its Endpoints list N ready addresses.
ready_addresses() {
	[ "$(yget "$NS/endpoints/$1.yaml" 'subsets[0].addresses#' 2>/dev/null)" = "$2" ]
}

# table_gone_on N NODE: node N's namespace holds no nftables table of
# NODE's agent.
table_gone_on() {
	! _mn_nsx "$1" nft list table ip "clusterfs_${2//[^a-zA-Z0-9]/_}" >/dev/null 2>&1
}

# svc_client NAME NODE IP: a pod on NODE that asks http://IP:80/ 40 times
# and prints each answer (busybox's wget crashes in a static build
# without NSS files: nc it is).
svc_client() {
	new_pod "$1" <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: $1
		spec:
		  nodeName: $2
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command:
		    - sh
		    - -c
		    - |
		      for i in \$(seq 40); do
		        r=\$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $3 80 | tail -n 1)
		        echo "\${r:-failed}"
		      done
	EOF
}

# answered_from CLIENT NODE: the answers in CLIENT's log include one from a
# pod of web on NODE.
answered_from() {
	local name node
	while read -r name node _; do
		[ "$node" = "$2" ] && grep -qxF -- "$name" "$NS/pods/$1/logs/main" && return 0
	done <"$WORK/web-now"
	return 1
}

@test "both agents reach the server over 9P from their own namespaces and their nodes become Ready" {
	needed_by_later
	wait_for "$MN_WAIT" node_is "$MN_NODE_A" True
	wait_for "$MN_WAIT" node_is "$MN_NODE_B" True
	# The pod ranges the admin gave are kept.
	[ "$(yget "$M/nodes/$MN_NODE_A.yaml" spec.podCIDR)" = "$MN_CIDR_A" ]
	[ "$(yget "$M/nodes/$MN_NODE_B.yaml" spec.podCIDR)" = "$MN_CIDR_B" ]
	# Each agent runs in its node's network namespace, working through the
	# 9P view it mounted itself.
	local n pid
	for n in a b; do
		pid=$(mn_agent_pid $n)
		[ "$(stat -L -c %i "/proc/$pid/ns/net")" = "$(stat -L -c %i "/run/netns/$(mn_var MN_NS $n)")" ]
		grep -q " $(mn_var MN_RUN $n)/view fuse" "/proc/$pid/mounts"
	done
	# The export answers across the bridge: node B reads node A's file.
	run ip netns exec "$MN_NS_B" diodcat -s "$MN_IP:$MN_PORT" -a "$SERVER_M" "nodes/$MN_NODE_A.yaml"
	[ "$status" -eq 0 ]
	[[ "$output" == *"name: $MN_NODE_A"* ]]
	[[ "$output" == *"podCIDR: $MN_CIDR_A"* ]]
}

@test "a Deployment of 4 replicas spreads over both nodes, each pod with an address of its node's range" {
	needed_by_later
	new_object deployments web <<-'EOF'
		apiVersion: apps/v1
		kind: Deployment
		metadata:
		  name: web
		spec:
		  replicas: 4
		  selector:
		    matchLabels:
		      app: web
		  template:
		    metadata:
		      labels:
		        app: web
		    spec:
		      terminationGracePeriodSeconds: 1
		      containers:
		      - name: httpd
		        image: @IMAGE@
		        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
	EOF
	wait_for "$MN_WAIT" web_running 4
	mn_note_pods
	pods_of web >"$WORK/web-spread"
	local on_a on_b name node ip
	on_a=$(web_on "$MN_NODE_A") on_b=$(web_on "$MN_NODE_B")
	if [ "$on_a" -lt 1 ] || [ "$on_b" -lt 1 ]; then
		echo "the scheduler did not spread web: $on_a on $MN_NODE_A, $on_b on $MN_NODE_B" >&2
		false
	fi
	while read -r name node _ ip; do
		if [ "$node" = "$MN_NODE_A" ]; then
			in_cidr "$ip" "$MN_CIDR_A"
		else
			in_cidr "$ip" "$MN_CIDR_B"
		fi
	done <"$WORK/web-spread"
	# The nodes' containers run in the nodes' pod namespaces: a pod on node
	# B answers node B, through node B's CNI bridge.
	ip=$(pods_of web | awk -v n="$MN_NODE_B" '$2 == n { print $4; exit }')
	name=$(pods_of web | awk -v n="$MN_NODE_B" '$2 == n { print $1; exit }')
	wait_for 20 _mn_fetches b "$ip" "$name"
}

@test "a pod on node A fetches a page by pod IP from a pod on node B" {
	local target target_ip uid
	read -r target _ _ target_ip < <(pods_of web | awk -v n="$MN_NODE_B" '$2 == n && $3 == "Running"')
	[ -n "$target_ip" ]
	new_pod fetch <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: fetch
		spec:
		  nodeName: $MN_NODE_A
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: wget
		    image: @IMAGE@
		    command:
		    - sh
		    - -c
		    - |
		      for i in \$(seq 30); do
		        timeout 2 wget -q -O- http://$target_ip:8080/ && exit 0
		        sleep 0.5
		      done
		      exit 1
	EOF
	wait_for 120 phase_in fetch Succeeded Failed
	in_cidr "$(pget fetch status.podIP)" "$MN_CIDR_A"
	wait_for 10 sh -c "[ -s '$NS/pods/fetch/logs/wget' ]"
	if ! phase_is fetch Succeeded; then
		echo "fetch on $MN_NODE_A could not get http://$target_ip:8080/ of $target on $MN_NODE_B" >&2
		false
	fi
	[ "$(cget fetch wget state.terminated.exitCode)" = 0 ]
	[ "$(log_of fetch wget)" = "$target" ]
	uid=$(uid_of fetch)
	rm -f "$NS/pods/fetch.yaml"
	wait_for 30 released_on a "$uid"
}

@test "a ClusterIP Service over the replicas answers clients on either node from pods on both nodes" {
	local ip addrs want client n uids=()
	pods_of web | awk '$3 == "Running"' >"$WORK/web-now"
	[ "$(wc -l <"$WORK/web-now")" -eq 4 ]
	[ "$(awk -v n="$MN_NODE_A" '$2 == n' "$WORK/web-now" | wc -l)" -ge 1 ]
	[ "$(awk -v n="$MN_NODE_B" '$2 == n' "$WORK/web-now" | wc -l)" -ge 1 ]
	new_object services web <<-'EOF'
		apiVersion: v1
		kind: Service
		metadata:
		  name: web
		spec:
		  type: ClusterIP
		  selector:
		    app: web
		  ports:
		  - port: 80
		    targetPort: 8080
	EOF
	ip=$(yget "$NS/services/web.yaml" spec.clusterIP)
	[ -n "$ip" ]
	wait_for "$MN_WAIT" ready_addresses web 4
	addrs=$(for n in 0 1 2 3; do yget "$NS/endpoints/web.yaml" "subsets[0].addresses[$n].ip"; done | sort)
	want=$(awk '{ print $4 }' "$WORK/web-now" | sort)
	if [ "$addrs" != "$want" ]; then
		echo "endpoints of web: $addrs; pods of web: $want" >&2
		false
	fi

	svc_client client-a "$MN_NODE_A" "$ip"
	svc_client client-b "$MN_NODE_B" "$ip"
	for client in client-a client-b; do
		wait_for 120 phase_in "$client" Succeeded Failed
		wait_for 10 sh -c "[ \$(wc -l <'$NS/pods/$client/logs/main') -ge 40 ]"
		echo "$client on $(pget "$client" spec.nodeName) got:" >&2
		sort "$NS/pods/$client/logs/main" | uniq -c >&2
	done
	for client in client-a client-b; do
		phase_is "$client" Succeeded
		! log_has "$client" main failed
		if ! answered_from "$client" "$MN_NODE_A" || ! answered_from "$client" "$MN_NODE_B"; then
			echo "$client was not answered from pods on both nodes" >&2
			false
		fi
	done

	uids=("$(uid_of client-a)" "$(uid_of client-b)")
	rm -f "$NS/pods/client-a.yaml" "$NS/pods/client-b.yaml"
	rm -f "$NS/services/web.yaml"
	wait_for 30 released_on a "${uids[0]}"
	wait_for 30 released_on b "${uids[1]}"
	# The last Service gone, so is each node's table.
	wait_for 10 table_gone_on a "$MN_NODE_A"
	wait_for 10 table_gone_on b "$MN_NODE_B"
}

@test "an agent killed with SIGKILL: its node goes NotReady and its pods are replaced on the other node" {
	needed_by_later
	local old_b name pid
	old_b=$(pods_of web | awk -v n="$MN_NODE_B" '$2 == n { print $1 }')
	[ -n "$old_b" ]
	pid=$(mn_agent_pid b)
	mn_note_stopping b "$pid"
	kill -9 "$pid"
	wait_for 10 rt_agent_gone "$pid"
	rm -f "$WORK/agent-b.pid"
	# Its containers outlive it, under their conmons.
	[ -n "$(_mn_conmons "$MN_RUN_B")" ]

	wait_for 30 node_is "$MN_NODE_B" Unknown
	[ "$(yget "$M/nodes/$MN_NODE_B.yaml" "status.conditions[type=Ready].reason")" = NodeStatusUnknown ]
	node_is "$MN_NODE_A" True
	wait_for "$MN_WAIT" all_web_on "$MN_NODE_A" 4
	mn_note_pods
	for name in $old_b; do
		[ ! -e "$NS/pods/$name.yaml" ]
		grep -q "TaintManagerEviction pod/$name:" "$NS/events"
	done
	node_is "$MN_NODE_A" True
	node_is "$MN_NODE_B" Unknown
}

@test "the agent killed with SIGKILL, started again: its node is Ready again and it stops what its evicted pods left" {
	local pid conn uids_b uid t
	read -r pid conn <"$WORK/stopping-b"
	# The killed agent is gone, and with it the daemon of its 9P view: the
	# view fails with ENOTCONN, and the next agent mounts over it.
	if ! wait_for 10 _mn_vanished "$pid"; then
		{
			echo "agent b (pid $pid), killed with SIGKILL, has not gone:"
			_mn_stuck "$pid"
			for t in /proc/"$pid"/task/*; do
				echo "  thread ${t##*/} holds: $(ls -l "$t/fd" 2>/dev/null |
					awk '/view|fuse/ { printf "%s ", $NF }')"
			done
			echo "its view's FUSE connection $conn: waiting=$(cat "/sys/fs/fuse/connections/$conn/waiting" 2>/dev/null)"
		} >&2
		false
	fi
	rm -f "$WORK/stopping-b"
	uids_b=$(_mn_uids_of "$MN_STATE_B")
	[ -n "$uids_b" ]
	mn_start_agent b
	wait_for 30 node_is "$MN_NODE_B" True
	wait_for "$MN_WAIT" _mn_released b
	wait_for 20 _mn_no_conmons "$MN_RUN_B"
	[ -z "$(_mn_crun "$MN_RUN_B" list -q)" ]
	for uid in $uids_b; do
		[ ! -e "/run/netns/cfs-${uid:0:24}" ]
	done
	run ! grep -q " $MN_STATE_B/" /proc/mounts
	# The replacements stay where they are.
	all_web_on "$MN_NODE_A" 4
}

@test "an agent stopped with SIGTERM leaves its pods running; started again, it adopts them" {
	local pid names name ids=() conmons f
	names=$(pods_of web | awk -v n="$MN_NODE_A" '$2 == n && $3 == "Running" { print $1 }')
	[ -n "$names" ]
	for name in $names; do
		ids+=("$(cget "$name" httpd containerID)")
	done
	conmons=$(_mn_conmons "$MN_RUN_A" | sort)
	[ -n "$conmons" ]
	pid=$(mn_agent_pid a)
	mn_note_stopping a "$pid"
	kill -TERM "$pid"
	if ! wait_for 15 _mn_vanished "$pid"; then
		{
			echo "agent a (pid $pid) has not gone 15s after SIGTERM:"
			_mn_stuck "$pid"
			echo "its view $MN_RUN_A/view, detached here, is still mounted in the mount namespaces of:"
			for f in /proc/[0-9]*/mountinfo; do
				grep -qs " $MN_RUN_A/view " "$f" || continue
				f=${f%/mountinfo}
				echo "  ${f#/proc/} $(cat "$f/comm" 2>/dev/null)"
			done
		} >&2
		false
	fi
	rm -f "$WORK/stopping-a" "$WORK/agent-a.pid"
	[ "$(_mn_conmons "$MN_RUN_A" | sort)" = "$conmons" ]

	mn_start_agent a
	# A pod started after the restart runs: the new agent is at work, and
	# has taken over what it found before that.
	new_pod after <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: after
		spec:
		  nodeName: $MN_NODE_A
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'trap "exit 0" TERM; sleep 3600 & wait']
	EOF
	wait_for 30 ctr_is after main started true
	local i=0
	for name in $names; do
		[ "$(pget "$name" status.phase)" = Running ]
		[ "$(cget "$name" httpd containerID)" = "${ids[i++]}" ]
		[ "$(cget "$name" httpd restartCount)" = 0 ]
	done
	[ "$(_mn_conmons "$MN_RUN_A" | grep -cvxF "$conmons")" = 1 ]
	node_is "$MN_NODE_A" True
	local uid
	uid=$(uid_of after)
	rm -f "$NS/pods/after.yaml"
	wait_for 30 released_on a "$uid"
}
