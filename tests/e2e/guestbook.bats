#!/usr/bin/env bats
# The guestbook example (examples/guestbook) on a real node: a Redis
# leader, two followers that replicate from it through its Service, and a
# busybox httpd frontend whose CGI script writes to the leader and reads
# from the followers. Its images are built here (Redis from the host's
# redis-server with its libraries) and pushed to the test's registry; a
# message written through the frontend's ClusterIP is read back.
#
# Needs what proxy.bats needs, and redis-server.

bats_require_minimum_version 1.5.0

load helpers
load images
load runtime

EXAMPLE=$BATS_TEST_DIRNAME/../../examples/guestbook
BUILD_ROOTFS_IMAGE=$BATS_TEST_DIRNAME/../../scripts/build-rootfs-image

setup_file() {
	# make deps installs it: missing is a failure, not a skip
	command -v redis-server >/dev/null || {
		echo "redis-server is not installed (make deps installs it)" >&2
		return 1
	}
	rt_setup_file
	export TABLE=clusterfs_${RT_NODE//[^a-zA-Z0-9]/_}
	"$BUILD_ROOTFS_IMAGE" --push "$REGISTRY/guestbook/redis:1" \
		--bin "$(command -v redis-server)" --cmd redis-server "$WORK/images" redis
	"$BUILD_ROOTFS_IMAGE" --push "$REGISTRY/guestbook/frontend:1" \
		--file "$EXAMPLE/guestbook.cgi:/var/www/cgi-bin/guestbook" \
		--cmd httpd "$WORK/images" frontend
}

teardown_file() {
	local rc=0
	rt_teardown_file || rc=1
	nft delete table ip "$TABLE" 2>/dev/null || true
	return $rc
}

teardown() {
	rm -f "${NS:-/nonexistent}"/services/{redis-master,redis-replica,frontend}.yaml 2>/dev/null || true
	rm -f "${NS:-/nonexistent}"/deployments/*.yaml 2>/dev/null || true
	rt_test_teardown
}

# running SELECTOR N: exactly N pods with all the labels (k=v,...), Running.
running() {
	local n=0 f l ok
	for f in "$NS"/pods/*.yaml; do
		[ -e "$f" ] || continue
		ok=1
		for l in ${1//,/ }; do
			grep -q "^    ${l%%=*}: ${l#*=}$" "$f" || ok=0
		done
		[ $ok = 1 ] || continue
		grep -q "^  phase: Running" "$f" || return 1
		n=$((n + 1))
	done
	[ "$n" -eq "$2" ]
}

ready_addresses() { # SERVICE N
	[ "$(yget "$NS/endpoints/$1.yaml" 'subsets[0].addresses#')" = "$2" ]
}

no_pods() { ! ls "$NS"/pods/*.yaml >/dev/null 2>&1; }
table_gone() { ! nft list table ip "$TABLE" >/dev/null 2>&1; }

# get URL: the body, from the host.
get() { curl -s -m 5 "$1"; }
reads_back() { [[ "$(get "$1")" == *"$2"* ]]; }

@test "the guestbook: a message written through the frontend is read back from the followers" {
	# The example as is, its images from the test's registry.
	cat "$EXAMPLE"/redis-leader.yaml <(echo ---) "$EXAMPLE"/redis-replica.yaml \
		<(echo ---) "$EXAMPLE"/frontend.yaml |
		sed "s|image: guestbook/|image: $REGISTRY/guestbook/|" >"$WORK/guestbook.yaml"
	cp "$WORK/guestbook.yaml" "$NS/apply"

	wait_for 120 running app=redis,role=leader 1
	wait_for 120 running app=redis,role=replica 2
	wait_for 120 running app=guestbook,tier=frontend 1
	wait_for 60 ready_addresses redis-master 1
	wait_for 60 ready_addresses redis-replica 2
	wait_for 60 ready_addresses frontend 1
	ip=$(yget "$NS/services/frontend.yaml" spec.clusterIP)
	[[ "$ip" == 10.96.* ]]

	url=http://$ip:80/cgi-bin/guestbook
	msg=hello-$$-$RANDOM
	wait_for 30 sh -c "curl -s -m 5 '$url?cmd=set&value=$msg' | grep -qx ok"
	# Replication is asynchronous, and a follower may still be syncing.
	wait_for 30 reads_back "$url?cmd=get" "$msg"
	# Every read through the Service, whichever follower answers, has it.
	for _ in $(seq 10); do
		wait_for 10 reads_back "$url?cmd=get" "$msg"
	done
	get "$url?cmd=get" >&2

	rm -f "$NS"/services/{redis-master,redis-replica,frontend}.yaml
	rm -f "$NS"/deployments/{redis-leader,redis-replica,frontend}.yaml
	wait_for 60 no_pods
	wait_for 10 table_gone
}
