#!/usr/bin/env bats
# DNS for Services on a real node: the agent's dnsmasq, on the pod
# gateway, answers NAME.NS.svc.cluster.local with a Service's ClusterIP,
# and a headless Service's name with its ready pods' addresses; pods ask
# it through their resolv.conf. A deleted Service's name is NXDOMAIN. The
# agent restarts a dnsmasq that dies, and replaces one left running.
#
# Needs what runtime.bats needs, and dnsmasq.

bats_require_minimum_version 1.5.0

load helpers
load images
load runtime

setup_file() {
	rt_setup_file
}

dnsmasq_pid() { cat "$RT_RUN/dns/dnsmasq.pid" 2>/dev/null; }

# is_dnsmasq PID: PID runs dnsmasq (not a zombie).
is_dnsmasq() { rt_alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dnsmasq ]; }

teardown_file() {
	local rc=0 pid
	pid=$(dnsmasq_pid)
	rt_teardown_file || rc=1
	# The agent stops its dnsmasq when it stops; one it left is ours to stop.
	if [ -n "$pid" ] && is_dnsmasq "$pid"; then
		echo "teardown: dnsmasq $pid was left" | _rt_say
		kill "$pid" 2>/dev/null || true
	fi
	return $rc
}

teardown() {
	rt_test_teardown
}

web_pod() { # NAME
	new_pod "$1" <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: $1
		  labels: {app: web}
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'mkdir -p /www && exec httpd -f -p 8080 -h /www']
		    ports:
		    - {name: http, containerPort: 8080}
	EOF
}

new_service() { # NAME CLUSTER_IP ("" for one allocated)
	new_object services "$1" <<-EOF
		apiVersion: v1
		kind: Service
		metadata:
		  name: $1
		spec:
		  ${2:+clusterIP: $2}
		  selector: {app: web}
		  ports:
		  - {name: http, port: 80, targetPort: http}
	EOF
}

# client_pod NAME NAME-TO-LOOK-UP...: a pod printing nslookup's answers.
# busybox's nslookup applies the search list to dotless names only, so a
# name with a dot is also resolved by the C library (ping prints the
# address it resolved; no reply is needed), which applies ndots:5 as any
# program would.
client_pod() {
	local pod=$1 script="cat /etc/resolv.conf"
	shift
	for n in "$@"; do
		script="$script; echo '== $n'; nslookup -type=a $n; echo rc=\$?"
		case $n in *.*) script="$script; echo '== libc $n'; ping -c 1 -W 1 $n 2>&1 | head -1" ;; esac
	done
	new_pod "$pod" <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: $pod
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command:
		    - sh
		    - -c
		    - |
		      $script
	EOF
}

ready_addresses() { # SERVICE N
	[ "$(yget "$NS/endpoints/$1.yaml" 'subsets[0].addresses#')" = "$2" ]
}

gateway() {
	local cidr net
	cidr=$(yget "$M/nodes/$RT_NODE.yaml" spec.podCIDR) || return 1
	net=${cidr%/*}
	echo "${net%.*}.$((${net##*.} + 1))"
}

# answer NAME: what the node's DNS answers for NAME, asked from the host.
answer() { busybox nslookup -type=a "$1" "$(gateway)" 2>&1; }
answers() { answer "$1" | grep -qF -- "$2"; }

@test "pods resolve a Service to its ClusterIP, a headless one to its ready pods; a deleted Service is NXDOMAIN" {
	web_pod web-0
	web_pod web-1
	new_service web ""
	new_service web-headless None
	wait_for 60 ready_addresses web 2
	wait_for 60 ready_addresses web-headless 2
	ip=$(yget "$NS/services/web.yaml" spec.clusterIP)
	[[ "$ip" == 10.96.* ]]
	ip0=$(pget web-0 status.podIP)
	ip1=$(pget web-1 status.podIP)

	client_pod client web web.default web.default.svc.cluster.local web-headless
	wait_for 120 phase_is client Succeeded
	log_of client main >&2
	gw=$(gateway)
	log_has client main "nameserver $gw"
	log_has client main "search default.svc.cluster.local svc.cluster.local cluster.local"
	log_has client main "options ndots:5"
	# Each name answered with the ClusterIP (busybox goes on through the
	# search list, so a short name also prints NXDOMAIN for the others).
	for n in web web.default.svc.cluster.local; do
		sed -n "/^== $n\$/,/^rc=/p" "$NS/pods/client/logs/main" >"$WORK/answer"
		grep -qF "Address: $ip" "$WORK/answer"
		grep -qF "web.default.svc.cluster.local" "$WORK/answer"
	done
	for n in web.default web.default.svc.cluster.local; do
		log_has client main "PING $n ($ip)"
	done
	sed -n '/^== web-headless$/,/^rc=/p' "$NS/pods/client/logs/main" >"$WORK/headless"
	grep -qF "Address: $ip0" "$WORK/headless"
	grep -qF "Address: $ip1" "$WORK/headless"
	run ! grep -qF "Address: $ip" "$WORK/headless"

	# dnsmasq listens on the gateway alone.
	pid=$(dnsmasq_pid)
	is_dnsmasq "$pid"
	ss -Hlntup | grep "pid=$pid," >&2
	[ "$(ss -Hlntup | grep "pid=$pid," | awk '{print $5}' | sort -u)" = "$gw:53" ]

	rm -f "$NS/services/web.yaml"
	wait_for 10 answers web.default.svc.cluster.local NXDOMAIN
	client_pod client2 web.default.svc.cluster.local
	wait_for 120 phase_is client2 Succeeded
	log_of client2 main >&2
	log_has client2 main NXDOMAIN
	run ! log_has client2 main "Address: $ip"
	run ! log_has client2 main "rc=0"

	rm -f "$NS/services/web-headless.yaml"
	wait_for 10 answers web-headless.default.svc.cluster.local NXDOMAIN
	rm_pods client client2 web-0 web-1
}

@test "a dnsmasq that dies is started again; a new agent replaces the one left running" {
	new_object services dnsweb <<-EOF
		apiVersion: v1
		kind: Service
		metadata:
		  name: dnsweb
		spec:
		  ports:
		  - {port: 80}
	EOF
	ip=$(yget "$NS/services/dnsweb.yaml" spec.clusterIP)
	wait_for 10 answers dnsweb.default.svc.cluster.local "Address: $ip"
	first=$(dnsmasq_pid)
	kill -9 "$first"
	wait_for 10 sh -c "[ -n \"\$(cat '$RT_RUN/dns/dnsmasq.pid' 2>/dev/null)\" ] && [ \"\$(cat '$RT_RUN/dns/dnsmasq.pid')\" != $first ]"
	wait_for 10 answers dnsweb.default.svc.cluster.local "Address: $ip"
	second=$(dnsmasq_pid)
	is_dnsmasq "$second"

	rt_kill_agent KILL
	is_dnsmasq "$second"
	rt_start_agent
	wait_for 30 sh -c "[ \"\$(cat '$RT_RUN/dns/dnsmasq.pid' 2>/dev/null)\" != $second ]"
	wait_for 10 answers dnsweb.default.svc.cluster.local "Address: $ip"
	wait_for 10 rt_agent_gone "$second"

	rm -f "$NS/services/dnsweb.yaml"
	wait_for 10 answers dnsweb.default.svc.cluster.local NXDOMAIN
	# A clean stop stops dnsmasq too.
	third=$(dnsmasq_pid)
	rt_kill_agent TERM
	wait_for 10 rt_agent_gone "$third"
	rt_start_agent
	wait_for 30 node_ready
}
