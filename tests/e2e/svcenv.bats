#!/usr/bin/env bats
# svcenv.bats: the environment variables a container is given for the
# Services of its namespace, with real containers: kubelet's names and
# values (host, ports, named ports, the Docker-link ones), none for a
# headless or ExternalName Service or one of another namespace, the pod's
# own env winning and its $(VAR)s expanded from them, and none at all with
# enableServiceLinks: false.
#
# Needs what runtime.bats needs (scripts/install-deps).

bats_require_minimum_version 1.5.0

load helpers
load images
load runtime

setup_file() {
	rt_setup_file
	new_object services redis-master <<-'EOF'
		apiVersion: v1
		kind: Service
		metadata:
		  name: redis-master
		spec:
		  selector: {app: redis}
		  ports:
		  - {name: redis, port: 6379, targetPort: 6379}
		  - {name: metrics-http, port: 9121, protocol: UDP}
	EOF
	new_object services web <<-'EOF'
		apiVersion: v1
		kind: Service
		metadata:
		  name: web
		spec:
		  selector: {app: web}
		  ports: [{port: 80}]
	EOF
	new_object services db <<-'EOF'
		apiVersion: v1
		kind: Service
		metadata:
		  name: db
		spec:
		  clusterIP: None
		  selector: {app: db}
		  ports: [{port: 5432}]
	EOF
	new_object services ext <<-'EOF'
		apiVersion: v1
		kind: Service
		metadata:
		  name: ext
		spec:
		  type: ExternalName
		  externalName: db.example.org
	EOF
	mkdir "$M/namespaces/elsewhere"
	cp "$WORK/objects/services-web.yaml" "$M/namespaces/elsewhere/services/web.yaml"
	sed 's/name: web$/name: far/' "$WORK/objects/services-web.yaml" \
		>"$M/namespaces/elsewhere/services/far.yaml"
}

teardown_file() {
	rm -f "$M/namespaces/elsewhere/services/"*.yaml "$NS/services/"*.yaml 2>/dev/null
	rt_teardown_file
}

teardown() {
	rt_test_teardown
}

ip_of() { yget "$NS/services/$1.yaml" spec.clusterIP; }

# svc_lines NAME: the log's lines that the Services or the pod's own env
# and command may have made, sorted: all but the shell's and the image's.
svc_lines() {
	log_of "$1" main | grep -vE '^(HOME|PATH|HOSTNAME|PWD|SHLVL|TERM)=' | sort
}

@test "a container gets kubelet's variables for the Services of its namespace" {
	new_pod links <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: links
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'env; echo "ARG=$(REDIS_MASTER_PORT)"; echo "END=1"']
		    env:
		    - name: REDIS_ADDR
		      value: $(REDIS_MASTER_SERVICE_HOST):$(REDIS_MASTER_SERVICE_PORT_REDIS)
		    - name: WEB_SERVICE_PORT
		      value: "8080"
		    - name: WEB_URL
		      value: http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)/
		    - name: DB_ADDR
		      value: $(DB_SERVICE_HOST)
		    - name: ESCAPED
		      value: $$(WEB_SERVICE_HOST)
	EOF
	wait_for 30 phase_is links Succeeded
	wait_for 5 log_has links main "END=1"
	r=$(ip_of redis-master) w=$(ip_of web)
	[[ "$r" == 10.96.* && "$w" == 10.96.* ]]
	run svc_lines links
	echo "$output"
	expected=$(sort <<-EOF
		ARG=tcp://$r:6379
		DB_ADDR=\$(DB_SERVICE_HOST)
		END=1
		ESCAPED=\$(WEB_SERVICE_HOST)
		REDIS_ADDR=$r:6379
		REDIS_MASTER_PORT=tcp://$r:6379
		REDIS_MASTER_PORT_6379_TCP=tcp://$r:6379
		REDIS_MASTER_PORT_6379_TCP_ADDR=$r
		REDIS_MASTER_PORT_6379_TCP_PORT=6379
		REDIS_MASTER_PORT_6379_TCP_PROTO=tcp
		REDIS_MASTER_PORT_9121_UDP=udp://$r:9121
		REDIS_MASTER_PORT_9121_UDP_ADDR=$r
		REDIS_MASTER_PORT_9121_UDP_PORT=9121
		REDIS_MASTER_PORT_9121_UDP_PROTO=udp
		REDIS_MASTER_SERVICE_HOST=$r
		REDIS_MASTER_SERVICE_PORT=6379
		REDIS_MASTER_SERVICE_PORT_METRICS_HTTP=9121
		REDIS_MASTER_SERVICE_PORT_REDIS=6379
		WEB_PORT=tcp://$w:80
		WEB_PORT_80_TCP=tcp://$w:80
		WEB_PORT_80_TCP_ADDR=$w
		WEB_PORT_80_TCP_PORT=80
		WEB_PORT_80_TCP_PROTO=tcp
		WEB_SERVICE_HOST=$w
		WEB_SERVICE_PORT=8080
		WEB_URL=http://$w:8080/
	EOF
	)
	diff <(echo "$expected") <(echo "$output")
	rm_pods links
}

@test "enableServiceLinks: false gives none of the Services' variables" {
	new_pod nolinks <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: nolinks
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  enableServiceLinks: false
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'env; echo "END=1"']
		    env:
		    - name: WEB_URL
		      value: http://$(WEB_SERVICE_HOST)/
	EOF
	wait_for 30 phase_is nolinks Succeeded
	wait_for 5 log_has nolinks main "END=1"
	run svc_lines nolinks
	echo "$output"
	[ "$output" = $'END=1\nWEB_URL=http://$(WEB_SERVICE_HOST)/' ]
	rm_pods nolinks
}

@test "a Service made after a pod started gives it nothing; the next pod has it" {
	new_pod early <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: early
		spec:
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'env; echo "END=1"; trap "exit 0" TERM; sleep 3600 & wait']
	EOF
	wait_for 30 log_has early main "END=1"
	new_object services late <<-'EOF'
		apiVersion: v1
		kind: Service
		metadata:
		  name: late
		spec:
		  ports: [{port: 7000}]
	EOF
	new_pod after <<-'EOF'
		apiVersion: v1
		kind: Pod
		metadata:
		  name: after
		spec:
		  restartPolicy: Never
		  terminationGracePeriodSeconds: 1
		  containers:
		  - name: main
		    image: @IMAGE@
		    command: [sh, -c, 'env; echo "END=1"']
	EOF
	wait_for 30 log_has after main "END=1"
	log_has after main "LATE_SERVICE_HOST=$(ip_of late)"
	log_has after main "LATE_PORT_7000_TCP=tcp://$(ip_of late):7000"
	! log_has early main LATE_
	log_has early main "WEB_SERVICE_PORT=80"
	rm_pods early after
	rm -f "$NS/services/late.yaml"
}
