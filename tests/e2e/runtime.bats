#!/usr/bin/env bats
# The node agent with real containers, end to end through the mount, as a
# user would use it: pods run by crun under conmon, with busybox pulled
# from a private registry, on a CNI bridge. Their logs, statuses, exit
# codes, restarts, environment, volumes, networking, init containers,
# limits and probes; what a deleted pod leaves (nothing); an agent killed
# and started again adopts its containers; a Deployment of ten replicas;
# a bad image reference; host ports; volumes that follow their objects;
# image garbage collection.
#
# Needs root, crun, conmon, skopeo, umoci, docker-registry, the CNI
# plugins and busybox-static (scripts/install-deps).

bats_require_minimum_version 1.5.0

load helpers
load images
load runtime

setup_file() {
	rt_setup_file
}

teardown_file() {
	rt_teardown_file
}

teardown() {
	rt_test_teardown
}

# Containers that run until stopped use `trap "exit 0" TERM; sleep 3600 &
# wait`: PID 1 ignores a SIGTERM it has no handler for, and a pod's delete
# would wait out its grace period.

@test "a pod that prints and exits 0: its log, phase Succeeded, exit code 0, Completed" {
	new_pod hello <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: hello
		spec:
		  nodeName: @NODE@
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'echo hello from a container; echo second line']
	EOF
	wait_for 30 phase_is hello Succeeded
	wait_for 5 log_has hello main "second line"
	[ "$(log_of hello main)" = $'hello from a container\nsecond line' ]
	[ "$(cget hello main state.terminated.exitCode)" = 0 ]
	[ "$(cget hello main state.terminated.reason)" = Completed ]
	[ "$(cget hello main restartCount)" = 0 ]
	[[ "$(cget hello main containerID)" == crun://* ]]
	[[ "$(cget hello main imageID)" == *busybox@sha256:* ]]
	[[ "$(pget hello status.podIP)" == 10.* ]]
	rm_pods hello
}

@test "a failing container: Never gives Failed with exit code 3; OnFailure restarts it into CrashLoopBackOff" {
	new_pod fail-never <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: fail-never
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'echo failing now; exit 3']
	EOF
	new_pod fail-retry <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: fail-retry
		spec:
		  restartPolicy: OnFailure
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'echo failing again; exit 3']
	EOF
	wait_for 30 phase_is fail-never Failed
	[ "$(cget fail-never main state.terminated.exitCode)" = 3 ]
	[ "$(cget fail-never main state.terminated.reason)" = Error ]
	[ "$(cget fail-never main restartCount)" = 0 ]
	wait_for 5 log_has fail-never main "failing now"

	wait_for 30 ctr_at_least fail-retry main restartCount 2
	wait_for 30 ctr_is fail-retry main state.waiting.reason CrashLoopBackOff
	[ "$(cget fail-retry main lastState.terminated.exitCode)" = 3 ]
	[ "$(cget fail-retry main lastState.terminated.reason)" = Error ]
	[ "$(pget fail-retry status.phase)" = Running ]
	[ "$(grep -c "failing again" "$NS/pods/fail-retry/logs/main")" -ge 2 ]
	rm_pods fail-never fail-retry
}

@test "env from a ConfigMap, a Secret, values, fieldRefs and envFrom" {
	new_object configmaps env-cm <<-'EOF'
		apiVersion: v1
		kind: ConfigMap
		metadata:
		  name: env-cm
		data:
		  color: blue
		  size: large
	EOF
	new_object secrets env-secret <<-EOF
		apiVersion: v1
		kind: Secret
		metadata:
		  name: env-secret
		data:
		  password: $(printf hunter2 | base64)
		  user: $(printf admin | base64)
	EOF
	new_pod envpod <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: envpod
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
		      echo "COLOR=$COLOR"
		      echo "PASSWORD=$PASSWORD"
		      echo "PLAIN=$PLAIN"
		      echo "POD_NAME=$POD_NAME"
		      echo "POD_NAMESPACE=$POD_NAMESPACE"
		      echo "POD_IP=$POD_IP"
		      echo "NODE_NAME=$NODE_NAME"
		      echo "size=$size"
		      echo "S_user=$S_user"
		      echo "S_password=$S_password"
		      echo "EXPANDED=$(PLAIN)"
		    env:
		    - name: COLOR
		      valueFrom:
		        configMapKeyRef:
		          name: env-cm
		          key: color
		    - name: PASSWORD
		      valueFrom:
		        secretKeyRef:
		          name: env-secret
		          key: password
		    - name: PLAIN
		      value: just a value
		    - name: POD_NAME
		      valueFrom:
		        fieldRef:
		          fieldPath: metadata.name
		    - name: POD_NAMESPACE
		      valueFrom:
		        fieldRef:
		          fieldPath: metadata.namespace
		    - name: POD_IP
		      valueFrom:
		        fieldRef:
		          fieldPath: status.podIP
		    - name: NODE_NAME
		      valueFrom:
		        fieldRef:
		          fieldPath: spec.nodeName
		    envFrom:
		    - configMapRef:
		        name: env-cm
		    - secretRef:
		        name: env-secret
		      prefix: S_
	EOF
	wait_for 30 phase_is envpod Succeeded
	wait_for 5 log_has envpod main "EXPANDED="
	run log_of envpod main
	echo "$output"
	[[ "$output" == *$'\nCOLOR=blue\n'* || "$output" == COLOR=blue$'\n'* ]]
	[[ "$output" == *$'\nPASSWORD=hunter2\n'* ]]
	[[ "$output" == *$'\nPLAIN=just a value\n'* ]]
	[[ "$output" == *$'\nPOD_NAME=envpod\n'* ]]
	[[ "$output" == *$'\nPOD_NAMESPACE=default\n'* ]]
	[[ "$output" == *$'\nPOD_IP='"$(pget envpod status.podIP)"$'\n'* ]]
	[[ "$output" == *$'\nNODE_NAME='"$RT_NODE"$'\n'* ]]
	[[ "$output" == *$'\nsize=large\n'* ]]
	[[ "$output" == *$'\nS_user=admin\n'* ]]
	[[ "$output" == *$'\nS_password=hunter2\n'* ]]
	[[ "$output" == *$'\nEXPANDED=just a value'* ]]
	rm_pods envpod
	rm -f "$NS/configmaps/env-cm.yaml" "$NS/secrets/env-secret.yaml"
}

@test "configMap, secret (defaultMode) and emptyDir volumes; an emptyDir shared by two containers" {
	new_object configmaps vol-cm <<-'EOF'
		apiVersion: v1
		kind: ConfigMap
		metadata:
		  name: vol-cm
		data:
		  greeting: hello-volume
		  other: second-key
	EOF
	new_object secrets vol-secret <<-EOF
		apiVersion: v1
		kind: Secret
		metadata:
		  name: vol-secret
		data:
		  token: $(printf tok-123 | base64)
	EOF
	new_pod volpod <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: volpod
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  volumes:
		  - name: cfg
		    configMap:
		      name: vol-cm
		  - name: sec
		    secret:
		      secretName: vol-secret
		      defaultMode: 0400
		  - name: sec-decimal
		    secret:
		      secretName: vol-secret
		      defaultMode: 256
		  - name: shared
		    emptyDir: {}
		  containers:
		  - name: writer
		    image: @IMAGE@
		    command:
		    - sh
		    - -c
		    - |
		      echo "greeting=$(cat /etc/cfg/greeting)"
		      echo "other=$(cat /etc/cfg/other)"
		      echo "token=$(cat /etc/sec/token)"
		      echo "decimal-mode=$(stat -L -c %a /etc/sec-decimal/token)"
		      echo "octal-mode=$(stat -L -c %a /etc/sec/token)"
		      echo from-the-writer > /shared/.tmp && mv /shared/.tmp /shared/note
		    volumeMounts:
		    - name: cfg
		      mountPath: /etc/cfg
		    - name: sec
		      mountPath: /etc/sec
		    - name: sec-decimal
		      mountPath: /etc/sec-decimal
		    - name: shared
		      mountPath: /shared
		  - name: reader
		    image: @IMAGE@
		    command:
		    - sh
		    - -c
		    - |
		      i=0
		      while [ ! -e /data/note ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
		      echo "read=$(cat /data/note)"
		    volumeMounts:
		    - name: shared
		      mountPath: /data
	EOF
	wait_for 30 phase_is volpod Succeeded
	wait_for 5 log_has volpod writer "octal-mode="
	wait_for 5 log_has volpod reader "read="
	log_of volpod writer
	log_of volpod reader
	log_has volpod writer "greeting=hello-volume"
	log_has volpod writer "other=second-key"
	log_has volpod writer "token=tok-123"
	log_has volpod reader "read=from-the-writer"
	log_has volpod writer "decimal-mode=400"
	# defaultMode: 0400 is octal to kubectl (YAML 1.1), as in every example.
	# The key is a link into ..data, as in Kubernetes: stat -L for its mode.
	log_has volpod writer "octal-mode=400"
	rm_pods volpod
	rm -f "$NS/configmaps/vol-cm.yaml" "$NS/secrets/vol-secret.yaml"
}

@test "a running pod's configMap and secret volumes follow their objects' changes, whole" {
	new_object configmaps live-cm <<-'EOF'
		apiVersion: v1
		kind: ConfigMap
		metadata:
		  name: live-cm
		data:
		  greeting: first
		  gone-later: here
	EOF
	new_object secrets live-secret <<-EOF
		apiVersion: v1
		kind: Secret
		metadata:
		  name: live-secret
		data:
		  token: $(printf tok-1 | base64)
	EOF
	new_pod live <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: live
		spec:
		  terminationGracePeriodSeconds: 1
		  volumes:
		  - name: cfg
		    configMap:
		      name: live-cm
		  - name: sec
		    secret:
		      secretName: live-secret
		  containers:
		  - name: main
		    image: @IMAGE@
		    command:
		    - sh
		    - -c
		    - |
		      trap "exit 0" TERM
		      while true; do
		        d=/etc/cfg/$(readlink /etc/cfg/..data)
		        echo "seen=$(cat $d/greeting):$(cat $d/added 2>/dev/null):$(ls /etc/cfg | tr '\n' ,):$(cat /etc/sec/token)"
		        sleep 0.5
		      done
		    volumeMounts:
		    - name: cfg
		      mountPath: /etc/cfg
		    - name: sec
		      mountPath: /etc/sec
	EOF
	wait_for 30 log_has live main "seen=first::gone-later,greeting,:tok-1"
	# kubelet's layout: KEY -> ..data/KEY, ..data -> a timestamped directory
	local uid
	uid=$(uid_of live)
	[ "$(readlink "$RT_STATE/pods/$uid/volumes/cfg/greeting")" = ..data/greeting ]
	[[ "$(readlink "$RT_STATE/pods/$uid/volumes/cfg/..data")" == ..20* ]]
	cat >"$WORK/live-cm.yaml" <<-'EOF'
		apiVersion: v1
		kind: ConfigMap
		metadata:
		  name: live-cm
		data:
		  greeting: second
		  added: new-key
	EOF
	cp "$WORK/live-cm.yaml" "$NS/configmaps/live-cm.yaml"
	printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: live-secret\ndata:\n  token: %s\n' \
		"$(printf tok-2 | base64)" >"$NS/secrets/live-secret.yaml"
	wait_for 60 log_has live main "seen=second:new-key:added,greeting,:tok-2"
	# read through one ..data, never a mix of the old set and the new
	! log_has live main "seen=second::"
	! log_has live main "seen=first:new-key"
	# a deleted object leaves the files as they were
	rm -f "$NS/configmaps/live-cm.yaml"
	local lines
	lines=$(log_of live main | wc -l)
	wait_for 30 sh -c "[ \$(wc -l <'$NS/pods/live/logs/main') -ge $((lines + 25)) ]"
	[ "$(log_of live main | tail -1)" = "seen=second:new-key:added,greeting,:tok-2" ]
	rm_pods live
	rm -f "$NS/secrets/live-secret.yaml"
}

@test "two containers of a pod talk over localhost" {
	new_pod localhost <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: localhost
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: server
		    image: @IMAGE@
		    command: [sh, -c, 'mkdir -p /www && echo hello-over-localhost > /www/index.html && exec httpd -f -p 8080 -h /www']
		  - name: client
		    image: @IMAGE@
		    command:
		    - sh
		    - -c
		    - |
		      for i in $(seq 100); do
		        wget -q -O- http://localhost:8080/index.html && exit 0
		        sleep 0.1
		      done
		      exit 1
	EOF
	wait_for 30 ctr_is localhost client state.terminated.reason Completed
	[ "$(cget localhost client state.terminated.exitCode)" = 0 ]
	wait_for 5 log_has localhost client hello-over-localhost
	[ "$(cget localhost server state.running)" != "" ]
	rm_pods localhost
}

# nat_rules_of NETNS: the host's iptables nat rules portmap wrote for the
# pod whose namespace is NETNS (its comments name the container id).
nat_rules_of() { iptables-save -t nat | grep -F -- "$1" || true; }

@test "a hostPort reaches the pod from the host's addresses and loopback; its rules go with the pod" {
	local port uid netns host
	port=$(free_port)
	portmap_note
	new_pod hostport <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: hostport
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: web
		    image: @IMAGE@
		    command: [sh, -c, 'mkdir -p /www && echo served-by-hostport > /www/index.html && exec httpd -f -p 8080 -h /www']
		    ports:
		    - containerPort: 8080
		      hostPort: $port
	EOF
	wait_for 30 ctr_is hostport web started true
	uid=$(uid_of hostport)
	netns=cfs-${uid:0:24}
	host=$(pget hostport status.hostIP)
	# A real node's InternalIP, and so the pod's hostIP, is this host's.
	ip -4 -o addr show | grep -q " inet $host/"
	grep -q "address: $host\$" "$M/nodes/$RT_NODE.yaml"
	[ -n "$(nat_rules_of "$netns")" ]
	wait_for 10 curl -sf -m 2 -o "$WORK/hostport.out" "http://$host:$port/index.html"
	grep -qx served-by-hostport "$WORK/hostport.out"
	run curl -sf -m 2 "http://127.0.0.1:$port/index.html"
	[ "$status" -eq 0 ]
	[ "$output" = served-by-hostport ]

	rm_pods hostport
	[ -z "$(nat_rules_of "$netns")" ]
	run curl -sf -m 2 "http://$host:$port/index.html"
	[ "$status" -ne 0 ]
}

@test "a hostNetwork pod shares the node's network and name: the node's address, no namespace of its own, its port on the host" {
	local port uid host page
	port=$(free_port)
	new_pod hostnet <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: hostnet
		spec:
		  hostNetwork: true
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: web
		    image: @IMAGE@
		    command: [sh, -c, 'mkdir -p /www && { hostname; ls /sys/class/net; cat /etc/resolv.conf; } > /www/index.html && exec httpd -f -p $port -h /www']
		    readinessProbe:
		      httpGet: {path: /index.html, port: $port}
		      periodSeconds: 1
	EOF
	wait_for 30 ctr_is hostnet web ready true
	uid=$(uid_of hostnet)
	host=$(pget hostnet status.hostIP)
	[ "$(pget hostnet status.podIP)" = "$host" ]
	run ip netns list
	[[ "$output" != *"cfs-${uid:0:24}"* ]]
	curl -sf -m 2 -o "$WORK/hostnet.out" "http://127.0.0.1:$port/index.html"
	# The node's hostname, the node's interfaces (the one of its address
	# among them) and, without ClusterFirstWithHostNet, no cluster search
	# list.
	[ "$(head -1 "$WORK/hostnet.out")" = "$(hostname)" ]
	local dev
	dev=$(ip -4 -o addr show | awk -v h="$host" 'index($4, h "/") == 1 { print $2; exit }')
	[ -n "$dev" ]
	grep -qx "$dev" "$WORK/hostnet.out"
	grep -qx lo "$WORK/hostnet.out"
	run grep -q "svc.cluster.local" "$WORK/hostnet.out"
	[ "$status" -ne 0 ]
	# The host's resolv.conf as it is, loopback servers and all.
	local line
	while read -r line; do
		grep -qxF -- "$line" "$WORK/hostnet.out"
	done < <(grep '^nameserver' /etc/resolv.conf)

	rm_pods hostnet
	run curl -sf -m 2 "http://127.0.0.1:$port/index.html"
	[ "$status" -ne 0 ]
	[ ! -e "$RT_STATE/pods/$uid" ]
}

@test "an init container prepares an emptyDir for the app container" {
	new_pod initpod <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: initpod
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  volumes:
		  - name: work
		    emptyDir: {}
		  initContainers:
		  - name: prepare
		    image: @IMAGE@
		    command: [sh, -c, 'echo prepared-by-init > /work/note; echo init done']
		    volumeMounts:
		    - name: work
		      mountPath: /work
		  containers:
		  - name: app
		    image: @IMAGE@
		    command: [sh, -c, 'echo "app read: $(cat /work/note)"']
		    volumeMounts:
		    - name: work
		      mountPath: /work
	EOF
	wait_for 30 phase_is initpod Succeeded
	wait_for 5 log_has initpod app "app read: prepared-by-init"
	wait_for 5 log_has initpod prepare "init done"
	[ "$(iget initpod prepare state.terminated.reason)" = Completed ]
	[ "$(iget initpod prepare state.terminated.exitCode)" = 0 ]
	[ "$(condition initpod Initialized)" = True ]
	[ "$(cget initpod app state.terminated.reason)" = Completed ]
	rm_pods initpod
}

@test "a container over its memory limit is OOMKilled with exit code 137" {
	new_pod hungry <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: hungry
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'head -c 200m /dev/zero | tail']
		    resources:
		      limits:
		        memory: 32Mi
	EOF
	wait_for 30 phase_is hungry Failed
	[ "$(cget hungry main state.terminated.reason)" = OOMKilled ]
	[ "$(cget hungry main state.terminated.exitCode)" = 137 ]
	rm_pods hungry
	# Nothing of it lands in the agent's working directory.
	run ls -A "$WORK/cwd"
	echo "$output"
	[ -z "$output" ]
}

@test "probes: readiness httpGet and exec set Ready; failing tcpSocket, exec and httpGet liveness probes restart" {
	new_pod ready-http <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: ready-http
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: web
		    image: @IMAGE@
		    command: [sh, -c, 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www']
		    readinessProbe:
		      httpGet:
		        path: /index.html
		        port: 8080
		      periodSeconds: 1
		    livenessProbe:
		      httpGet:
		        path: /index.html
		        port: 8080
		      periodSeconds: 1
		      failureThreshold: 3
	EOF
	new_pod ready-exec <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: ready-exec
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'trap "exit 0" TERM; sleep 5; touch /tmp/ready; sleep 5; rm /tmp/ready; sleep 3600 & wait']
		    readinessProbe:
		      exec:
		        command: [test, -e, /tmp/ready]
		      periodSeconds: 1
		      failureThreshold: 1
	EOF
	new_pod live <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: live
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: tcp
		    image: @IMAGE@
		    command: [sh, -c, 'trap "exit 0" TERM; sleep 3600 & wait']
		    livenessProbe:
		      tcpSocket:
		        port: 9999
		      periodSeconds: 1
		      failureThreshold: 2
		  - name: exec
		    image: @IMAGE@
		    command: [sh, -c, 'trap "exit 0" TERM; sleep 3600 & wait']
		    livenessProbe:
		      exec:
		        command: [sh, -c, 'exit 1']
		      periodSeconds: 1
		      failureThreshold: 2
		  - name: http
		    image: @IMAGE@
		    command: [sh, -c, 'mkdir -p /www && exec httpd -f -p 8081 -h /www']
		    livenessProbe:
		      httpGet:
		        path: /no-such-page
		        port: 8081
		      periodSeconds: 1
		      failureThreshold: 2
	EOF
	# readiness by exec: False, True once the file is there, False again.
	wait_for 30 phase_is ready-exec Running
	echo "Running seen at $(date -u +%T)"
	[ "$(condition ready-exec Ready)" = False ]
	wait_for 20 condition_is ready-exec Ready True
	[ "$(cget ready-exec main ready)" = true ]
	wait_for 20 condition_is ready-exec Ready False
	[ "$(cget ready-exec main ready)" = false ]
	[ "$(cget ready-exec main restartCount)" = 0 ]

	# readiness by httpGet.
	wait_for 20 condition_is ready-http Ready True
	[ "$(condition ready-http ContainersReady)" = True ]
	[ "$(cget ready-http web ready)" = true ]

	# liveness: each failing probe restarts its container.
	wait_for 30 ctr_at_least live tcp restartCount 1
	wait_for 30 ctr_at_least live exec restartCount 1
	wait_for 30 ctr_at_least live http restartCount 1
	[ -n "$(cget live tcp lastState.terminated.finishedAt)" ]
	[ -n "$(cget live exec lastState.terminated.finishedAt)" ]
	[ -n "$(cget live http lastState.terminated.finishedAt)" ]
	# A passing liveness probe restarts nothing.
	[ "$(cget ready-http web restartCount)" = 0 ]
	rm_pods ready-http ready-exec live
}

@test "a startup probe holds liveness and readiness back until it passes; one that never passes restarts" {
	new_pod slow-start <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: slow-start
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: app
		    image: @IMAGE@
		    command: [sh, -c, 'trap "exit 0" TERM; sleep 6; touch /tmp/started; sleep 3600 & wait']
		    startupProbe:
		      exec:
		        command: [test, -e, /tmp/started]
		      periodSeconds: 1
		      failureThreshold: 20
		    livenessProbe:
		      exec:
		        command: [test, -e, /tmp/started]
		      periodSeconds: 1
		      failureThreshold: 1
		    readinessProbe:
		      exec:
		        command: [test, -e, /tmp/started]
		      periodSeconds: 1
		  - name: never
		    image: @IMAGE@
		    command: [sh, -c, 'trap "exit 0" TERM; sleep 3600 & wait']
		    startupProbe:
		      exec:
		        command: [sh, -c, 'exit 1']
		      periodSeconds: 1
		      failureThreshold: 2
	EOF
	wait_for 30 phase_is slow-start Running
	# before the file is there: not started, not ready, and the failing
	# liveness probe is not run yet (no restart)
	[ "$(cget slow-start app started)" = false ]
	[ "$(cget slow-start app ready)" = false ]
	wait_for 30 ctr_is slow-start app started true
	wait_for 20 ctr_is slow-start app ready true
	[ "$(cget slow-start app restartCount)" = 0 ]
	# a startup probe that keeps failing restarts its container
	wait_for 30 ctr_at_least slow-start never restartCount 1
	[ "$(cget slow-start never started)" != true ]
	rm_pods slow-start
}

@test "a deleted pod leaves nothing: no netns, container, mount, process, cgroup or address" {
	new_pod gone <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: gone
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'trap "exit 0" TERM; sleep 3600 & wait', gone-marker-@NODE@]
	EOF
	wait_for 30 ctr_is gone main started true
	local uid netns ip id f marker=gone-marker-$RT_NODE
	uid=$(uid_of gone)
	netns=cfs-${uid:0:24}
	ip=$(pget gone status.podIP)
	id=$(cget gone main containerID)
	id=${id#crun://}
	[ -n "$uid" ]
	[ -n "$ip" ]
	[ -n "$id" ]
	# While it runs, all of it is there.
	ip netns list | awk '{ print $1 }' | grep -qx -- "$netns"
	_rt_crun list -q | grep -qx "$id"
	grep -q " $RT_STATE/pods/$uid/" /proc/mounts
	pgrep -f -- "$marker" >/dev/null
	[ -e "$RT_STATE/ipam/clusterfs/$ip" ]
	local cgroups
	cgroups=$(ls -d /sys/fs/cgroup/*/clusterfs/"$id" /sys/fs/cgroup/clusterfs/"$id" 2>/dev/null || true)
	[ -n "$cgroups" ]

	rm_pods gone
	run ip netns list
	[[ "$output" != *"$netns"* ]]
	run _rt_crun list -q
	[[ "$output" != *"$id"* ]]
	run ! grep -q "$RT_STATE/pods/$uid" /proc/mounts
	run ! grep -q "$RT_STATE/pods/$uid" "/proc/$(rt_agent_pid)/mounts"
	run ! pgrep -f -- "$marker"
	run ! pgrep -f -- "-c $id "
	[ ! -e "$RT_STATE/ipam/clusterfs/$ip" ]
	[ ! -e "$RT_STATE/pods/$uid" ]
	for f in $cgroups; do
		[ ! -e "$f" ]
	done
}

@test "a pod whose network cannot be wired waits with the plugin's error, holds nothing, and starts once the cause is gone, across an agent restart" {
	# A device of the bridge's name that is not a bridge (one end of a veth
	# pair): the bridge plugin refuses it. rt_test_teardown removes it if
	# the test fails.
	ip link del "$RT_BRIDGE" 2>/dev/null || true
	ip link add "$RT_BRIDGE" type veth peer name "${RT_BRIDGE}p"
	touch "$WORK/not-a-bridge"
	sleeper_pod unwired
	wait_for 30 ctr_says unwired main "not a bridge"
	# The plugin's JSON error, said as one line.
	[ "$(cget unwired main state.waiting.message)" = \
		"CNI bridge ADD: failed to create bridge \"$RT_BRIDGE\": \"$RT_BRIDGE\" already exists but is not a bridge" ]
	[ "$(pget unwired status.phase)" = Pending ]
	[ "$(cget unwired main state.waiting.reason)" = ContainerCreating ]
	run cget unwired main started
	[ "$output" != true ]
	# The container made meanwhile was removed; no address is held.
	local uid
	uid=$(uid_of unwired)
	run _rt_crun list -q
	[[ "$output" != *"$uid"* ]]
	# No address is reported until the network is up.
	run pget unwired status.podIP
	[ "$status" -ne 0 ]
	run grep -rl "cfs-${uid:0:24}" "$RT_STATE/ipam/clusterfs"
	[ "$status" -ne 0 ]

	# An agent killed meanwhile: the next one finds the namespace never
	# wired and wires it again, rather than start the container unwired.
	local tries
	rt_kill_agent KILL
	tries=$(grep -c "pods/default/unwired: sandbox: .*not a bridge" "$WORK/agent.log")
	rt_start_agent
	wait_for 30 log_has_more "$tries" "pods/default/unwired: sandbox: .*not a bridge"
	run cget unwired main started
	[ "$output" != true ]

	# The cause gone, the next try (every 5 s) wires it and it runs.
	ip link del "$RT_BRIDGE"
	rm -f "$WORK/not-a-bridge"
	wait_for 30 ctr_is unwired main started true
	[ "$(pget unwired status.phase)" = Running ]
	[ -n "$(pget unwired status.podIP)" ]
	ip -d link show "$RT_BRIDGE" | grep -q bridge
	rm_pods unwired
}

@test "an agent killed with SIGKILL leaves its containers running; a new agent adopts them" {
	local marker=adopt-marker-$RT_NODE id started pid old lines
	new_pod adopt <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: adopt
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'trap "exit 0" TERM; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done', adopt-marker-@NODE@]
	EOF
	wait_for 30 ctr_is adopt main started true
	id=$(cget adopt main containerID)
	started=$(cget adopt main state.running.startedAt)
	[ -n "$id" ]
	[ -n "$started" ]
	pid=$(pgrep -f -- "$marker")
	[ "$(echo "$pid" | wc -w)" = 1 ]

	old=$(rt_agent_pid)
	rt_kill_agent KILL
	run ! rt_alive "$old"
	rt_alive "$pid"
	rt_start_agent
	# A pod started after the restart runs: the new agent is at work, and has
	# taken over what it found before that.
	sleeper_pod adopt-after
	wait_for 30 ctr_is adopt-after main started true
	rt_alive "$pid"
	[ "$(pgrep -f -- "$marker")" = "$pid" ]
	[ "$(cget adopt main restartCount)" = 0 ]
	[ "$(cget adopt main containerID)" = "$id" ]
	[ "$(cget adopt main state.running.startedAt)" = "$started" ]
	[ "$(pget adopt status.phase)" = Running ]
	# Its log is still shipped.
	lines=$(wc -l <"$NS/pods/adopt/logs/main")
	wait_for 10 sh -c "[ \$(wc -l <'$NS/pods/adopt/logs/main') -gt $((lines + 5)) ]"
	rm_pods adopt adopt-after
	run ! pgrep -f -- "$marker"
}

# no_pod_ip: stdin to stdout, a pod's document without status.podIP and
# status.podIPs, nor metadata.resourceVersion (the write replaces).
no_pod_ip() {
	awk 'skip && /^ *- ip: / { next }
		{ skip = 0 }
		/^  podIPs:/ { skip = 1; next }
		/^  podIP: / || /^  resourceVersion: / { next }
		{ print }'
}

@test "an agent killed before it wrote a pod's address: the next one claims the address the pod is wired with" {
	local name a b c
	for name in addr-a addr-b; do
		sleeper_pod "$name"
		wait_for 30 ctr_is "$name" main started true
		wait_for 10 sh -c "grep -q '^  podIP: ' '$NS/pods/$name.yaml'"
	done
	a=$(pget addr-a status.podIP)
	b=$(pget addr-b status.podIP)
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]

	# As if the agent had died after wiring addr-a and starting its
	# container, before its status said its address.
	rt_kill_agent KILL
	no_pod_ip <"$NS/pods/addr-a.yaml" >"$WORK/addr-a.yaml"
	cat "$WORK/addr-a.yaml" >"$NS/pods/addr-a.yaml"
	[ -z "$(pget addr-a status.podIP)" ]
	[ "$(pget addr-a status.phase)" = Running ]

	rt_start_agent
	wait_for 30 sh -c "grep -q '^  podIP: ' '$NS/pods/addr-a.yaml'"
	[ "$(pget addr-a status.podIP)" = "$a" ]
	[ "$(cget addr-a main restartCount)" = 0 ]
	sleeper_pod addr-c
	wait_for 30 ctr_is addr-c main started true
	wait_for 10 sh -c "grep -q '^  podIP: ' '$NS/pods/addr-c.yaml'"
	c=$(pget addr-c status.podIP)
	[ "$c" != "$a" ] && [ "$c" != "$b" ]
	rm_pods addr-a addr-b addr-c
}

# many_running N: N pods of the Deployment many are Running.
many_running() {
	local n
	n=$(grep -l '^  phase: Running' "$NS"/pods/many-*.yaml 2>/dev/null | wc -l)
	[ "$n" -eq "$1" ]
}

many_gone() {
	! ls "$NS"/pods/many-*.yaml >/dev/null 2>&1
}

@test "a restarted agent keeps the wiring of a pod none of whose containers started yet" {
	local uid netns ino ip n
	sleeper_pod nopull @REGISTRY@/busybox:no-such-tag
	wait_for 30 ctr_is nopull main state.waiting.reason ErrImagePull
	wait_for 10 sh -c "grep -q '^  podIP: ' '$NS/pods/nopull.yaml'"
	ip=$(pget nopull status.podIP)
	uid=$(uid_of nopull)
	netns=/run/netns/cfs-${uid:0:24}
	ino=$(stat -c %i "$netns")
	n=$(grep -c "pods/default/nopull: container main" "$WORK/agent.log")
	rt_kill_agent KILL
	rt_start_agent
	# The new agent has taken the pod on once it tries the pull again.
	wait_for 30 log_has_more "$n" "pods/default/nopull: container main"
	# The same namespace: not deleted and wired again.
	[ "$(stat -c %i "$netns")" = "$ino" ]
	[ "$(pget nopull status.podIP)" = "$ip" ]
	rm_pods nopull
}

@test "a Deployment of 10 replicas: 10 pods Running with distinct IPs and 10 processes" {
	local marker=many-marker-$RT_NODE f uid uids=()
	new_object deployments many <<-'EOF'
		apiVersion: apps/v1
		kind: Deployment
		metadata:
		  name: many
		spec:
		  replicas: 10
		  selector:
		    matchLabels:
		      app: many
		  template:
		    metadata:
		      labels:
		        app: many
		    spec:
		      terminationGracePeriodSeconds: 1
		      containers:
		      - name: main
		        image: @IMAGE@
		        command: [sh, -c, 'trap "exit 0" TERM; sleep 3600 & wait', many-marker-@NODE@]
	EOF
	wait_for 60 many_running 10
	for f in "$NS"/pods/many-*.yaml; do
		uid=$(yget "$f" metadata.uid)
		note_uid "$uid"
		uids+=("$uid")
	done
	[ "${#uids[@]}" -eq 10 ]
	[ "$(sed -n 's/^  podIP: //p' "$NS"/pods/many-*.yaml | sort -u | wc -l)" -eq 10 ]
	[ "$(pgrep -fc -- "$marker")" -eq 10 ]

	rm "$NS/deployments/many.yaml"
	wait_for 60 many_gone
	for uid in "${uids[@]}"; do
		wait_for 30 released "$uid"
	done
	run ! pgrep -f -- "$marker"
}

@test "an image tag missing from the registry: ErrImagePull, then ImagePullBackOff" {
	sleeper_pod badimage @REGISTRY@/busybox:no-such-tag
	wait_for 30 ctr_is badimage main state.waiting.reason ErrImagePull
	[ -n "$(cget badimage main state.waiting.message)" ]
	wait_for 30 ctr_is badimage main state.waiting.reason ImagePullBackOff
	[ "$(pget badimage status.phase)" = Pending ]
	rm_pods badimage
}

# push_variant NAME: busybox with one more environment variable (so another
# manifest digest), pushed as $REGISTRY/NAME:1.
push_variant() {
	umoci config --image "$WORK/images:busybox" --tag "$1" --config.env "VARIANT=$1" >&2 &&
		skopeo copy --quiet --dest-tls-verify=false --policy "$(skopeo_policy)" \
			"oci:$WORK/images:$1" "docker://$REGISTRY/$1:1" >&2
}

# layout_of NAME: where the agent's store keeps the layout of NAME:1.
layout_of() { echo "$RT_STATE/images/layouts/${REGISTRY//:/_}_$1_1"; }

# variant_pod NAME IMAGE: a sleeper_pod of IMAGE, once it runs.
variant_pod() {
	sleeper_pod "$1" "$2"
	wait_for 60 ctr_is "$1" main started true
}

@test "image GC over its threshold removes the images no pod uses and keeps those in use" {
	push_variant gc-a
	push_variant gc-b
	# an agent whose disk is always "full": every pull collects
	rt_kill_agent TERM
	RT_AGENT_ARGS="--image-gc-high-threshold 1 --image-gc-low-threshold 0" rt_start_agent
	wait_for 30 node_ready
	variant_pod gca "$REGISTRY/gc-a:1"
	[ -e "$(layout_of gc-a)" ]
	rm_pods gca
	variant_pod gcb "$REGISTRY/gc-b:1"
	# gc-a is used by no pod now: gone, layout and unpacked rootfs
	[ ! -e "$(layout_of gc-a)" ]
	grep -q "image gc: removed sha256:" "$WORK/agent.log"
	local n_unpacked
	n_unpacked=$(ls "$RT_STATE/images/unpacked" | grep -vc '^\.' || true)
	# gc-b runs, so a pull of gc-a again keeps it
	variant_pod gca2 "$REGISTRY/gc-a:1"
	[ -e "$(layout_of gc-b)" ]
	ctr_is gcb main started true
	[ "$(ls "$RT_STATE/images/unpacked" | grep -vc '^\.')" -eq 2 ]
	[ "$n_unpacked" -eq 1 ]
	rm_pods gca2 gcb
	# back to the file's agent
	rt_kill_agent TERM
	rt_start_agent
	wait_for 30 node_ready
}
