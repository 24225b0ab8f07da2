#!/usr/bin/env bats
# Services on a real node: the agent's nftables table sends a ClusterIP's
# traffic, from pods and from the host, and a nodePort's, to the ready
# endpoints at random, or with sessionAffinity ClientIP one per client; a
# deleted Service leaves no rule behind; a Deployment's backend that turns
# unready leaves the rotation and returns, and scaling adds backends.
#
# Three busybox httpd pods serve their hostname; a client pod fetches the
# ClusterIP many times and prints what it got. Needs what runtime.bats
# needs, and nft.

bats_require_minimum_version 1.5.0

load helpers
load images
load runtime

setup_file() {
	rt_setup_file
	export TABLE=clusterfs_${RT_NODE//[^a-zA-Z0-9]/_}
}

teardown_file() {
	local rc=0
	rt_teardown_file || rc=1
	# The rules outlive the agent, as kube-proxy's do: ours to remove.
	nft delete table ip "$TABLE" 2>/dev/null || true
	return $rc
}

teardown() {
	rt_test_teardown
}

web_pod() { # NAME: an httpd on port 8080 serving the pod's hostname
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
		    command: [sh, -c, 'mkdir -p /www && hostname >/www/index.html && exec httpd -f -p 8080 -h /www']
		    ports:
		    - {name: http, containerPort: 8080}
	EOF
}

new_service() { # NAME TYPE
	new_object services "$1" <<-EOF
		apiVersion: v1
		kind: Service
		metadata:
		  name: $1
		spec:
		  type: $2
		  selector: {app: web}
		  ports:
		  - {name: http, port: 80, targetPort: http}
	EOF
}

ready_addresses() { # SERVICE N: its endpoints list N ready addresses
	[ "$(yget "$NS/endpoints/$1.yaml" 'subsets[0].addresses#')" = "$2" ]
}

table_has() { nft list table ip "$TABLE" 2>/dev/null | grep -qF -- "$1"; }
table_gone() { ! nft list table ip "$TABLE" >/dev/null 2>&1; }

# gateway: the bridge's address, the first of the node's pod range.
gateway() {
	local cidr net
	cidr=$(yget "$M/nodes/$RT_NODE.yaml" spec.podCIDR) || return 1
	net=${cidr%/*}
	echo "${net%.*}.$((${net##*.} + 1))"
}

# fetch_all URL: from the host, until each of the three pods answered.
fetch_all() {
	local i out seen=""
	for i in $(seq 60); do
		out=$(curl -s -m 2 "$1") || continue
		case " $seen " in *" $out "*) ;; *) seen="$seen $out" ;; esac
	done
	echo "host saw:$seen" >&2
	[[ "$seen" == *web-0* && "$seen" == *web-1* && "$seen" == *web-2* ]]
}

@test "a ClusterIP reaches all three endpoints from a pod and from the host; deleting the Service removes its rules" {
	web_pod web-0
	web_pod web-1
	web_pod web-2
	new_service web ClusterIP
	wait_for 60 ready_addresses web 3
	ip=$(yget "$NS/services/web.yaml" spec.clusterIP)
	[[ "$ip" == 10.96.* ]]
	wait_for 10 table_has "ip daddr $ip tcp dport 80"

	# busybox's wget crashes in a static build without NSS files: nc it is.
	new_pod client <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: client
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
		      for i in \$(seq 60); do
		        r=\$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $ip 80 | tail -n 1)
		        echo "\${r:-failed}"
		      done
	EOF
	wait_for 120 phase_is client Succeeded
	log_of client main | sort | uniq -c >&2
	log_has client main web-0
	log_has client main web-1
	log_has client main web-2
	! log_has client main failed

	fetch_all "http://$ip:80/"

	rm -f "$NS/services/web.yaml"
	# The last Service gone, so is the table.
	wait_for 10 table_gone
	rm_pods client web-0 web-1 web-2
}

@test "a pod reaches itself through its Service (hairpin); a nodePort on the node's address reaches it from the host" {
	new_object services solo <<-EOF
		apiVersion: v1
		kind: Service
		metadata:
		  name: solo
		spec:
		  type: NodePort
		  selector: {app: solo}
		  ports:
		  - {port: 80, targetPort: 8080}
	EOF
	ip=$(yget "$NS/services/solo.yaml" spec.clusterIP)
	node_port=$(yget "$NS/services/solo.yaml" 'spec.ports[0].nodePort')
	[ -n "$node_port" ]
	new_pod solo <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: solo
		  labels: {app: solo}
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command:
		    - sh
		    - -c
		    - |
		      mkdir -p /www && hostname >/www/index.html && httpd -p 8080 -h /www
		      get() { printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $ip 80 | tail -n 1; }
		      for i in \$(seq 100); do [ "\$(get)" = solo ] && break; sleep 0.2; done
		      for i in 1 2 3; do r=\$(get); echo "hairpin \${r:-failed}"; done
		      trap "exit 0" TERM; sleep 3600 & wait
	EOF
	wait_for 60 phase_is solo Running
	wait_for 60 ready_addresses solo 1
	wait_for 30 log_has solo main "hairpin"
	wait_for 10 sh -c "[ \$(grep -c hairpin '$NS/pods/solo/logs/main') -ge 3 ]"
	log_of solo main >&2
	[ "$(grep -c '^hairpin solo$' "$NS/pods/solo/logs/main")" = 3 ]

	wait_for 10 table_has "dport $node_port"
	[ "$(curl -s -m 5 "http://$(gateway):$node_port/")" = solo ]

	rm -f "$NS/services/solo.yaml"
	wait_for 10 table_gone
	rm_pods solo
}

@test "sessionAffinity ClientIP keeps a client on one endpoint; without it the same client is spread" {
	web_pod web-0
	web_pod web-1
	web_pod web-2
	new_service web ClusterIP
	new_object services sticky <<-EOF
		apiVersion: v1
		kind: Service
		metadata:
		  name: sticky
		spec:
		  selector: {app: web}
		  sessionAffinity: ClientIP
		  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
		  ports:
		  - {name: http, port: 80, targetPort: http}
	EOF
	wait_for 60 ready_addresses web 3
	wait_for 60 ready_addresses sticky 3
	ip=$(yget "$NS/services/web.yaml" spec.clusterIP)
	sticky=$(yget "$NS/services/sticky.yaml" spec.clusterIP)
	wait_for 10 table_has "ip daddr $sticky tcp dport 80"
	table_has "timeout 10m"

	new_pod client <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: client
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
		      get() { printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 \$1 80 | tail -n 1; }
		      for i in \$(seq 20); do r=\$(get $ip); echo "plain \${r:-failed}"; done
		      for i in \$(seq 20); do r=\$(get $sticky); echo "sticky \${r:-failed}"; done
	EOF
	wait_for 120 phase_is client Succeeded
	log_of client main | sort | uniq -c >&2
	! log_has client main failed
	# 20 random picks among 3 landing on one: a chance of 3 in 3^20.
	[ "$(grep '^plain ' "$NS/pods/client/logs/main" | sort -u | wc -l)" -gt 1 ]
	[ "$(grep -c '^sticky web-' "$NS/pods/client/logs/main")" = 20 ]
	[ "$(grep '^sticky ' "$NS/pods/client/logs/main" | sort -u | wc -l)" = 1 ]

	rm -f "$NS/services/web.yaml" "$NS/services/sticky.yaml"
	wait_for 10 table_gone
	rm_pods client web-0 web-1 web-2
}

# dweb_pods: the Deployment dweb's pods, one name a line.
dweb_pods() {
	local f
	for f in "$NS"/pods/dweb-*.yaml; do
		[ -e "$f" ] || continue
		f=${f##*/}
		echo "${f%.yaml}"
	done
}

dweb_gone() { [ -z "$(dweb_pods)" ]; }

# dweb_root NAME: /proc/PID/root of NAME's httpd, found by its home, which
# holds the pod's name: the test reaches into the container from there.
dweb_root() {
	local pid
	for pid in $(pgrep -f -- "httpd -f -p 8080 -h /srv/$RT_NODE"); do
		if [ "$(cat "/proc/$pid/root/srv/$RT_NODE/index.html" 2>/dev/null)" = "$1" ]; then
			echo "/proc/$pid/root"
			return 0
		fi
	done
	return 1
}

# fetch_seen URL N NAME...: N requests from the host, until each NAME
# answered; prints what answered, one a line, to $WORK/seen.
fetch_seen() {
	local url=$1 n=$2 i out name
	shift 2
	: >"$WORK/seen"
	for i in $(seq "$n"); do
		out=$(curl -s -m 2 "$url") || out=failed
		echo "${out:-failed}" >>"$WORK/seen"
		for name in "$@"; do
			grep -qxF -- "$name" "$WORK/seen" || continue 2
		done
		return 0
	done
	sort "$WORK/seen" | uniq -c >&2
	return 1
}

@test "a Deployment's Service: an unready backend leaves the rotation and returns; scaling to 5 adds backends" {
	new_object deployments dweb <<-'EOF'
		apiVersion: apps/v1
		kind: Deployment
		metadata:
		  name: dweb
		spec:
		  replicas: 3
		  selector:
		    matchLabels:
		      app: dweb
		  template:
		    metadata:
		      labels:
		        app: dweb
		    spec:
		      terminationGracePeriodSeconds: 1
		      containers:
		      - name: httpd
		        image: @IMAGE@
		        command: [sh, -c, 'mkdir -p /srv/@NODE@ && hostname >/srv/@NODE@/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /srv/@NODE@']
		        ports:
		        - {name: http, containerPort: 8080}
		        readinessProbe:
		          exec:
		            command: [test, -e, /tmp/ready]
		          periodSeconds: 1
		          failureThreshold: 1
	EOF
	new_object services dweb <<-'EOF'
		apiVersion: v1
		kind: Service
		metadata:
		  name: dweb
		spec:
		  selector: {app: dweb}
		  ports:
		  - {name: http, port: 80, targetPort: http}
	EOF
	wait_for 60 ready_addresses dweb 3
	ip=$(yget "$NS/services/dweb.yaml" spec.clusterIP)
	wait_for 10 table_has "ip daddr $ip tcp dport 80"
	mapfile -t pods < <(dweb_pods)
	[ "${#pods[@]}" -eq 3 ]
	for p in "${pods[@]}"; do note_uid "$(uid_of "$p")"; done
	fetch_seen "http://$ip:80/" 60 "${pods[@]}"

	# One backend unready: out of the Endpoints and of the table.
	victim=${pods[0]}
	victim_ip=$(pget "$victim" status.podIP)
	root=$(dweb_root "$victim")
	table_has "dnat to $victim_ip:"
	rm "$root/tmp/ready"
	wait_for 20 condition_is "$victim" Ready False
	wait_for 20 ready_addresses dweb 2
	wait_for 10 eval '! table_has "dnat to $victim_ip:"'
	# 30 requests, none to it: a chance of (2/3)^30 if it were still in.
	fetch_seen "http://$ip:80/" 30 no-such-pod || true
	! grep -qxF -- "$victim" "$WORK/seen"
	! grep -qx failed "$WORK/seen"
	grep -qxF -- "${pods[1]}" "$WORK/seen"
	grep -qxF -- "${pods[2]}" "$WORK/seen"

	# Ready again: back in the rotation.
	touch "$root/tmp/ready"
	wait_for 20 condition_is "$victim" Ready True
	wait_for 20 ready_addresses dweb 3
	fetch_seen "http://$ip:80/" 60 "${pods[@]}"

	# Scaled to 5: five backends answer.
	echo 5 >"$NS/deployments/dweb/replicas"
	wait_for 60 ready_addresses dweb 5
	mapfile -t pods < <(dweb_pods)
	[ "${#pods[@]}" -eq 5 ]
	for p in "${pods[@]}"; do note_uid "$(uid_of "$p")"; done
	fetch_seen "http://$ip:80/" 100 "${pods[@]}"

	rm -f "$NS/deployments/dweb.yaml"
	wait_for 60 dweb_gone
	rm -f "$NS/services/dweb.yaml"
	wait_for 10 table_gone
	wait_for 30 _rt_all_released
}
