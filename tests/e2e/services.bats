#!/usr/bin/env bats
# services.bats: Services' cluster IPs and node ports, assigned by the
# server when it writes a Service, through the real mount: what a create
# is given, what it may ask for, what an update keeps, what a delete
# frees, many creates at once, and --service-cidr.
#
# Each test uses Services of its own, so the tests do not depend on each
# other's order, except the last, which restarts the server.

load helpers

setup_file() {
	start_server
	PY=$(python3 -c 'import sys; print(sys.executable)')
	export PY
}

teardown_file() {
	cleanup_server
}

# pywrite PATH: writes stdin to PATH (open with O_CREAT|O_TRUNC, write,
# close) and prints OK or the failing call and errno, e.g. "close EEXIST".
pywrite() {
	"$PY" -I -S -c '
import errno, os, sys
data = sys.stdin.buffer.read()
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
except OSError as e:
    print("write", errno.errorcode[e.errno])
    sys.exit(0)
try:
    os.close(fd)
except OSError as e:
    print("close", errno.errorcode[e.errno])
    sys.exit(0)
print("OK")
' "$1"
}

# service NAME [EXTRA SPEC LINES...]: a Service with one port, on stdout.
service() {
	local name=$1 line
	shift
	printf 'apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n' "$name"
	printf '  selector: {app: %s}\n' "$name"
	for line in "$@"; do printf '  %s\n' "$line"; done
	printf '  ports: [{port: 80}]\n'
}

# ip_of NAME: the Service's spec.clusterIP.
ip_of() {
	sed -n 's/^  clusterIP: //p' "$NS/services/$1.yaml"
}

# node_ports_of NAME: the Service's node ports, one a line.
node_ports_of() {
	sed -nE 's/^  [- ] nodePort: //p' "$NS/services/$1.yaml"
}

# in_cidr IP NET/BITS: whether IP is in the network.
in_cidr() {
	"$PY" -I -S -c 'import ipaddress, sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2]))' "$1" "$2"
}

@test "a created Service is given a cluster IP of 10.96.0.0/16" {
	service web >"$NS/services/web.yaml"
	ip=$(ip_of web)
	in_cidr "$ip" 10.96.0.0/16
	[ "$ip" != 10.96.0.0 ] && [ "$ip" != 10.96.0.1 ] && [ "$ip" != 10.96.255.255 ]
	grep -qxF -- "  - $ip" "$NS/services/web.yaml" # clusterIPs
	grep -qx "  type: ClusterIP" "$NS/services/web.yaml"
	grep -qx "  ipFamilyPolicy: SingleStack" "$NS/services/web.yaml"
}

@test "20 Services created at once get 20 different addresses" {
	for i in $(seq 1 20); do
		service "many-$i" | cp /dev/stdin "$NS/services/many-$i.yaml" &
	done
	wait
	for i in $(seq 1 20); do
		ip=$(ip_of "many-$i")
		in_cidr "$ip" 10.96.0.0/16
		echo "$ip"
	done >"$BATS_TEST_TMPDIR/ips"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/ips")" = 20 ]
	[ "$(sort -u "$BATS_TEST_TMPDIR/ips" | wc -l)" = 20 ]
}

@test "an address asked for is given when it is free" {
	service asked "clusterIP: 10.96.0.50" >"$NS/services/asked.yaml"
	[ "$(ip_of asked)" = 10.96.0.50 ]
}

@test "an address that is taken is refused: close() fails and events says why" {
	service holder "clusterIP: 10.96.0.60" >"$NS/services/holder.yaml"
	run pywrite "$NS/services/thief.yaml" < <(service thief "clusterIP: 10.96.0.60")
	[ "$output" = "close EEXIST" ]
	[ ! -e "$NS/services/thief.yaml" ]
	events_has "$NS" "Rejected services/thief.yaml: spec.clusterIP: 10.96.0.60 is already allocated to service default/holder (File exists)"
	# cp reports it too
	run cp <(service thief "clusterIP: 10.96.0.60") "$NS/services/thief.yaml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"File exists"* ]]
}

@test "addresses outside the CIDR, reserved or malformed are refused" {
	run pywrite "$NS/services/outside.yaml" < <(service outside "clusterIP: 10.97.0.5")
	[ "$output" = "close EINVAL" ]
	events_has "$NS" "spec.clusterIP: 10.97.0.5 is not in the service CIDR 10.96.0.0/16"
	run pywrite "$NS/services/first.yaml" < <(service first "clusterIP: 10.96.0.1")
	[ "$output" = "close EINVAL" ]
	events_has "$NS" "spec.clusterIP: 10.96.0.1 is reserved"
	run pywrite "$NS/services/word.yaml" < <(service word "clusterIP: web")
	[ "$output" = "close EINVAL" ]
	events_has "$NS" "spec.clusterIP: \"web\" is not an IPv4 address"
	[ ! -e "$NS/services/outside.yaml" ] && [ ! -e "$NS/services/first.yaml" ] &&
		[ ! -e "$NS/services/word.yaml" ]
}

@test "clusterIP: None makes a headless Service, and stays None" {
	service db "clusterIP: None" >"$NS/services/db.yaml"
	[ "$(ip_of db)" = None ]
	grep -qx "  - None" "$NS/services/db.yaml"
	sed -i 's/app: db/app: db2/' "$NS/services/db.yaml"
	grep -q "app: db2" "$NS/services/db.yaml"
	[ "$(ip_of db)" = None ]
	service db >"$NS/services/db.yaml" # omits it
	[ "$(ip_of db)" = None ]
}

@test "a deleted Service's address is free again" {
	service gone "clusterIP: 10.96.0.70" >"$NS/services/gone.yaml"
	run pywrite "$NS/services/next.yaml" < <(service next "clusterIP: 10.96.0.70")
	[ "$output" = "close EEXIST" ]
	rm "$NS/services/gone.yaml"
	run pywrite "$NS/services/next.yaml" < <(service next "clusterIP: 10.96.0.70")
	[ "$output" = OK ]
	[ "$(ip_of next)" = 10.96.0.70 ]
}

@test "an update keeps the address; one that changes it is refused" {
	service keep >"$NS/services/keep.yaml"
	ip=$(ip_of keep)
	# a whole new document without clusterIP
	printf 'spec:\n  selector: {app: other}\n  ports: [{port: 8080}]\n' >"$NS/services/keep.yaml"
	grep -q "port: 8080" "$NS/services/keep.yaml"
	[ "$(ip_of keep)" = "$ip" ]
	grep -qx "  generation: 2" "$NS/services/keep.yaml"
	# an edit that leaves it as it is
	sed -i 's/app: other/app: third/' "$NS/services/keep.yaml"
	[ "$(ip_of keep)" = "$ip" ]
	cp "$NS/services/keep.yaml" "$BATS_TEST_TMPDIR/before"
	run pywrite "$NS/services/keep.yaml" < <(service keep "clusterIP: 10.96.0.80")
	[ "$output" = "close EINVAL" ]
	events_has "$NS" "Rejected services/keep.yaml: spec.clusterIP: may not change once set (it is $ip)"
	cmp "$NS/services/keep.yaml" "$BATS_TEST_TMPDIR/before"
}

@test "type NodePort: each port is given a node port from 30000-32767" {
	cat >"$NS/services/np.yaml" <<'EOF'
spec:
  type: NodePort
  selector: {app: np}
  ports:
  - {name: http, port: 80}
  - {name: https, port: 443}
EOF
	mapfile -t ports < <(node_ports_of np)
	[ "${#ports[@]}" = 2 ]
	[ "${ports[0]}" != "${ports[1]}" ]
	for p in "${ports[@]}"; do [ "$p" -ge 30000 ] && [ "$p" -le 32767 ]; done
	# an update without them keeps them
	sed -i '/nodePort:/d; s/app: np/app: np2/' "$NS/services/np.yaml"
	grep -q "app: np2" "$NS/services/np.yaml"
	[ "$(node_ports_of np | tr '\n' ' ')" = "${ports[0]} ${ports[1]} " ]
	# LoadBalancer is given them too
	printf 'spec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n' >"$NS/services/lb.yaml"
	p=$(node_ports_of lb)
	[ "$p" -ge 30000 ] && [ "$p" -le 32767 ]
}

@test "a node port asked for is given when free, refused when taken or out of range" {
	printf 'spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n' >"$NS/services/np-a.yaml"
	[ "$(node_ports_of np-a)" = 30080 ]
	run pywrite "$NS/services/np-b.yaml" < <(printf 'spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n')
	[ "$output" = "close EEXIST" ]
	events_has "$NS" "Rejected services/np-b.yaml: spec.ports[0].nodePort: 30080 is already allocated to service default/np-a (File exists)"
	run pywrite "$NS/services/np-b.yaml" < <(printf 'spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n')
	[ "$output" = "close EINVAL" ]
	events_has "$NS" "Rejected services/np-b.yaml: spec.ports[0].nodePort: 8080 is outside the node port range 30000-32767"
	[ ! -e "$NS/services/np-b.yaml" ]
	rm "$NS/services/np-a.yaml"
	run pywrite "$NS/services/np-b.yaml" < <(printf 'spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n')
	[ "$output" = OK ]
}

@test "apply: the Services of one apply get different addresses, all or none" {
	cat >"$NS/apply" <<'EOF'
kind: Service
metadata: {name: ap-1}
spec: {ports: [{port: 80}]}
---
kind: Service
metadata: {name: ap-2}
spec: {ports: [{port: 80}]}
EOF
	[ -n "$(ip_of ap-1)" ] && [ "$(ip_of ap-1)" != "$(ip_of ap-2)" ]
	run pywrite "$NS/apply" <<'EOF'
kind: Service
metadata: {name: ap-3}
spec: {clusterIP: 10.96.0.90, ports: [{port: 80}]}
---
kind: Service
metadata: {name: ap-4}
spec: {clusterIP: 10.96.0.90, ports: [{port: 80}]}
EOF
	[ "$output" = "close EEXIST" ]
	events_has "$NS" "document 2 (Service ap-4): spec.clusterIP: 10.96.0.90 is already allocated to service default/ap-3"
	[ ! -e "$NS/services/ap-3.yaml" ]
}

@test "--service-cidr sets the range; existing Services keep their addresses" {
	run "$CLUSTERFS" server --mount "$WORK/none" --state "$WORK/none" --service-cidr 10.96.0.0/8
	[ "$status" = 2 ]
	[[ "$output" == *"--service-cidr 10.96.0.0/8: the prefix must be from /12"* ]]
	old=$(ip_of asked)
	stop_server
	SERVER_ARGS="--service-cidr 10.100.0.0/24" start_server
	service fresh >"$NS/services/fresh.yaml"
	in_cidr "$(ip_of fresh)" 10.100.0.0/24
	[ "$(ip_of asked)" = "$old" ]
	sed -i 's/app: asked/app: asked2/' "$NS/services/asked.yaml"
	[ "$(ip_of asked)" = "$old" ]
	run pywrite "$NS/services/old-range.yaml" < <(service old-range "clusterIP: 10.96.0.91")
	[ "$output" = "close EINVAL" ]
	events_has "$NS" "spec.clusterIP: 10.96.0.91 is not in the service CIDR 10.100.0.0/24"
}
