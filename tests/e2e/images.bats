#!/usr/bin/env bats
# Images, offline: a private registry on 127.0.0.1, a busybox image built
# with scripts/build-image and pushed there, pulled back with skopeo, and
# run by crun as a node agent would run it.

load helpers
load images

setup_file() {
	# A fresh directory, never one from the environment: teardown removes it.
	WORK=$(mktemp -d /tmp/clusterfs-images.XXXXXX)
	export WORK
	export CRUN_ID=clusterfs-images-$$
	start_registry
	push_busybox
}

teardown_file() {
	stop_registry
	if [ -d "${WORK:-}/crun" ]; then
		crun_ns delete -f "$CRUN_ID" >/dev/null 2>&1 || true
	fi
	[ -z "${WORK:-}" ] || rm -rf "$WORK"
}

# crun_ns ARGS...: crun with its state in $WORK/crun. cgroups here may be
# hybrid, which crun refuses: a private mount namespace without the cgroup2
# mount at /sys/fs/cgroup/unified leaves it plain cgroup v1.
crun_ns() {
	local unmount=""
	if grep -qs "^[^ ]* /sys/fs/cgroup/unified cgroup2 " /proc/self/mounts; then
		unmount="umount -l /sys/fs/cgroup/unified 2>/dev/null;"
	fi
	timeout -k 5 "${CRUN_TIMEOUT:-60}" unshare -m --propagation private \
		sh -c "$unmount"' exec crun --root="$0" "$@"' "$WORK/crun" "$@"
}

# pull_unpack DIR: pulls $IMAGE into the layout DIR/layout and unpacks it
# into the bundle DIR/bundle.
pull_unpack() {
	mkdir -p "$1"
	skopeo copy --quiet --src-tls-verify=false --policy "$(skopeo_policy)" \
		"docker://$IMAGE" "oci:$1/layout:x"
	umoci unpack --image "$1/layout:x" "$1/bundle" >/dev/null
}

# image_config LAYOUT TAG: the "config" of the image config of LAYOUT:TAG,
# as JSON, read from the layout's index, manifest and config blobs.
image_config() {
	python3 - "$1" "$2" <<-'EOF'
		import json, sys
		layout, tag = sys.argv[1:]
		def blob(digest):
		    algo, hexdigest = digest.split(":")
		    with open(f"{layout}/blobs/{algo}/{hexdigest}") as f:
		        return json.load(f)
		with open(f"{layout}/index.json") as f:
		    index = json.load(f)
		desc = [m for m in index["manifests"]
		        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
		assert len(desc) == 1, f"{len(desc)} manifests tagged {tag}"
		manifest = blob(desc[0]["digest"])
		print(json.dumps(blob(manifest["config"]["digest"])["config"], sort_keys=True))
	EOF
}

@test "the registry runs on 127.0.0.1 and answers /v2/" {
	[[ $REGISTRY =~ ^127\.0\.0\.1:[0-9]+$ ]]
	[ "$(cat "$WORK/registry.pid")" = "$REGISTRY_PID" ]
	kill -0 "$REGISTRY_PID"
	registry_answers
	run curl -sf "http://$REGISTRY/v2/_catalog"
	[ "$status" -eq 0 ]
	[[ $output == *'"busybox"'* ]]
}

@test "build-image makes an image that runs /bin/sh with PATH=/bin:/sbin" {
	[ "$IMAGE" = "$REGISTRY/busybox:1" ]
	run image_config "$WORK/images" busybox
	[ "$status" -eq 0 ]
	[ "$output" = '{"Cmd": ["/bin/sh"], "Env": ["PATH=/bin:/sbin"], "WorkingDir": "/"}' ]
	# Only the finished tag is left, and no temporary directory.
	run umoci ls --layout "$WORK/images"
	[ "$output" = busybox ]
}

@test "build-image refuses a bad tag and leaves the layout as it was" {
	local before
	before=$(cat "$WORK/images/index.json")
	run "$BUILD_IMAGE" "$WORK/images" "no:such"
	[ "$status" -ne 0 ]
	[[ $output == *"bad tag"* ]]
	run env BUSYBOX=/nonexistent "$BUILD_IMAGE" "$WORK/images" other
	[ "$status" -ne 0 ]
	[[ $output == *"/nonexistent is missing"* ]]
	# A failure halfway, after umoci new and unpack, leaves no tag behind.
	printf '#!/bin/sh\nexit 3\n' >"$BATS_TEST_TMPDIR/busybox"
	chmod +x "$BATS_TEST_TMPDIR/busybox"
	run env BUSYBOX="$BATS_TEST_TMPDIR/busybox" "$BUILD_IMAGE" "$WORK/images" other
	[ "$status" -ne 0 ]
	[[ $output == *"--list failed"* ]]
	run umoci ls --layout "$WORK/images"
	[ "$output" = busybox ]
	[ "$(cat "$WORK/images/index.json")" = "$before" ]
}

@test "the image pushed to the registry pulls back whole" {
	pull_unpack "$WORK/pulled"
	local rootfs=$WORK/pulled/bundle/rootfs
	[ -x "$rootfs/bin/busybox" ]
	[ "$(readlink "$rootfs/bin/sh")" = busybox ]
	[ "$(readlink "$rootfs/bin/echo")" = busybox ]
	[ "$(stat -c %a "$rootfs/tmp")" = 1777 ]
	[ -d "$rootfs/etc" ] && [ -d "$rootfs/var/www" ]
	run image_config "$WORK/pulled/layout" x
	[[ $output == *'"Cmd": ["/bin/sh"]'* ]]
}

@test "push_busybox pushes under another name without building again" {
	local built
	built=$(stat -c %Y "$WORK/images/index.json")
	push_busybox other/box:2
	[ "$IMAGE" = "$REGISTRY/other/box:2" ]
	[ "$(stat -c %Y "$WORK/images/index.json")" = "$built" ]
	run curl -sf "http://$REGISTRY/v2/other/box/tags/list"
	[[ $output == *'"2"'* ]]
}

@test "build-image --push builds into a new layout and pushes" {
	run "$BUILD_IMAGE" --push "$REGISTRY/pushed:3" "$BATS_TEST_TMPDIR/layout" t
	[ "$status" -eq 0 ]
	[ -z "$output" ] # quiet on success
	run umoci ls --layout "$BATS_TEST_TMPDIR/layout"
	[ "$output" = t ]
	run curl -sf "http://$REGISTRY/v2/pushed/tags/list"
	[[ $output == *'"3"'* ]]
}

@test "crun runs the pulled image" {
	pull_unpack "$WORK/run"
	python3 - "$WORK/run/bundle/config.json" <<-'EOF'
		import json, sys
		with open(sys.argv[1]) as f:
		    config = json.load(f)
		config["process"]["terminal"] = False
		config["process"]["args"] = ["/bin/echo", "hi"]
		with open(sys.argv[1], "w") as f:
		    json.dump(config, f)
	EOF
	run crun_ns run -b "$WORK/run/bundle" "$CRUN_ID"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = hi ]
}

@test "stop_registry is safe before a start and twice" {
	local outer=$REGISTRY
	(
		WORK=$(mktemp -d /tmp/clusterfs-images.XXXXXX)
		trap 'stop_registry; rm -rf "$WORK"' EXIT
		unset REGISTRY REGISTRY_PID
		stop_registry
		start_registry
		[ "$REGISTRY" != "$outer" ]
		pid=$REGISTRY_PID port=${REGISTRY##*:}
		stop_registry
		stop_registry
		if kill -0 "$pid" 2>/dev/null; then false; fi
		[ ! -e "$WORK/registry.pid" ]
		[ -z "${REGISTRY_PID:-}" ]
		[ -z "$(ss -Hltn "sport = :$port")" ]
	)
	# The file's registry is untouched.
	kill -0 "$REGISTRY_PID"
	registry_answers
}
