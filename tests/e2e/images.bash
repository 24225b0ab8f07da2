# images.bash: a private image registry on 127.0.0.1 and a busybox image
# in it, for end-to-end tests that need to pull an image. Load it with
# `load images` (it loads helpers.bash for wait_for when that is missing).
#
#   start_registry          docker-registry on a free port of $REGISTRY_HOST
#                           (127.0.0.1 unless set: an address of this host);
#                           exports REGISTRY (HOST:PORT), REGISTRY_PID
#   stop_registry           stops it; safe to call twice or before a start
#   push_busybox [NAME:TAG] builds busybox once per $WORK and pushes it as
#                           $REGISTRY/NAME:TAG (busybox:1); exports IMAGE
#
# Everything lives under $WORK (made with mktemp -d when unset): the
# registry's storage, config, log and pid file, and the OCI layout the
# image is built into.

if ! declare -F wait_for >/dev/null; then
	# shellcheck source=helpers.bash
	source "$(dirname "${BASH_SOURCE[0]}")/helpers.bash"
fi

IMAGES_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_IMAGE=${BUILD_IMAGE:-$IMAGES_REPO/scripts/build-image}

_images_work() {
	export WORK=${WORK:-$(mktemp -d /tmp/clusterfs-test.XXXXXX)}
	chmod 755 "$WORK"
}

# registry_answers: whether the registry at $REGISTRY answers GET /v2/.
registry_answers() {
	local reply
	if command -v curl >/dev/null; then
		curl -sf --max-time 2 -o /dev/null "http://$REGISTRY/v2/"
	elif command -v busybox >/dev/null; then
		# (no -T: the wget of busybox-static 1.35 crashes with it)
		timeout 2 busybox wget -q -O /dev/null "http://$REGISTRY/v2/" 2>/dev/null
	else
		reply=$(timeout 2 bash -c '
			exec 5<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
			printf "GET /v2/ HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&5
			head -n1 <&5' _ "$REGISTRY" 2>/dev/null) || return 1
		[[ $reply == "HTTP/1."?" 200"* ]]
	fi
}

# _registry_port_free PORT: whether nothing listens on PORT.
_registry_port_free() {
	! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# _registry_up PID: whether the registry PID still runs and answers.
_registry_up() {
	kill -0 "$1" 2>/dev/null && registry_answers
}

# _registry_done PID: whether the registry PID answers or has exited.
_registry_done() {
	! kill -0 "$1" 2>/dev/null || registry_answers
}

# start_registry: starts docker-registry on a free port of $REGISTRY_HOST
# (127.0.0.1 by default) with its storage in $WORK/registry, and waits
# until it answers. Ports are tried from a random point of 5000-5999; one
# taken between the check and the registry's bind is noticed (the registry
# exits) and the next is tried.
start_registry() {
	local port tries starts=0 pid conf host=${REGISTRY_HOST:-127.0.0.1}
	_images_work
	command -v docker-registry >/dev/null || {
		echo "docker-registry is not installed" >&2
		return 1
	}
	if [ -n "${REGISTRY_PID:-}" ] && kill -0 "$REGISTRY_PID" 2>/dev/null; then
		echo "a registry already runs as $REGISTRY_PID at $REGISTRY" >&2
		return 1
	fi
	mkdir -p "$WORK/registry"
	conf=$WORK/registry.yml
	port=$((5000 + RANDOM % 1000))
	for ((tries = 0; tries < 1000; tries++, port = 5000 + (port - 5000 + 1) % 1000)); do
		_registry_port_free "$port" || continue
		((starts++ < 20)) || break
		cat >"$conf" <<-EOF
			version: 0.1
			log:
			  level: warn
			storage:
			  filesystem:
			    rootdirectory: $WORK/registry
			  delete:
			    enabled: true
			http:
			  addr: $host:$port
			  secret: clusterfs-test
		EOF
		export REGISTRY=$host:$port
		# fd 3 closed: bats waits for whoever holds it open.
		docker-registry serve "$conf" </dev/null >>"$WORK/registry.log" 2>&1 3>&- &
		pid=$!
		echo "$pid" >"$WORK/registry.pid"
		export REGISTRY_PID=$pid
		if ! wait_for 20 _registry_done "$pid"; then
			stop_registry
			echo "the registry did not answer at $REGISTRY; its log:" >&2
			tail -20 "$WORK/registry.log" >&2
			return 1
		fi
		_registry_up "$pid" && return 0
		# It exited: the port was taken after all, or it cannot start.
		wait "$pid" 2>/dev/null || true
		rm -f "$WORK/registry.pid"
		unset REGISTRY_PID REGISTRY
		if ! grep -q "address already in use" "$WORK/registry.log"; then
			echo "the registry exited; its log:" >&2
			tail -20 "$WORK/registry.log" >&2
			return 1
		fi
		: >"$WORK/registry.log"
	done
	echo "no free port for a registry in 5000-5999" >&2
	return 1
}

# stop_registry: stops the registry by pid (TERM, then KILL when it has not
# gone within 10s) and forgets it. Does nothing when none was started.
stop_registry() {
	local pid
	pid=${REGISTRY_PID:-}
	[ -n "$pid" ] || pid=$(cat "${WORK:-/nonexistent}/registry.pid" 2>/dev/null) || true
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	[ -z "${WORK:-}" ] || rm -f "$WORK/registry.pid"
	unset REGISTRY_PID
	return 0
}

# skopeo_policy: a signature policy that accepts anything, in $WORK, so that
# no system-wide /etc/containers/policy.json is needed; prints its path.
skopeo_policy() {
	_images_work
	[ -s "$WORK/policy.json" ] ||
		echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
	echo "$WORK/policy.json"
}

# push_busybox [NAME:TAG]: pushes the busybox image to $REGISTRY/NAME:TAG
# (default busybox:1) and exports IMAGE as that reference. The image is
# built with scripts/build-image into the OCI layout $WORK/images (tag
# busybox) the first time only.
push_busybox() {
	local ref=${1:-busybox:1} policy
	[ -n "${REGISTRY:-}" ] || {
		echo "push_busybox: no registry; call start_registry first" >&2
		return 1
	}
	_images_work
	if ! umoci ls --layout "$WORK/images" 2>/dev/null | grep -qx busybox; then
		"$BUILD_IMAGE" "$WORK/images" busybox || return 1
	fi
	policy=$(skopeo_policy)
	skopeo copy --quiet --dest-tls-verify=false --policy "$policy" \
		"oci:$WORK/images:busybox" "docker://$REGISTRY/$ref" >&2 || {
		echo "push_busybox: pushing to $REGISTRY/$ref failed" >&2
		return 1
	}
	export IMAGE=$REGISTRY/$ref
}
