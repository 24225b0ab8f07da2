#!/usr/bin/env bats
# A full disk under the store: writes fail with ENOSPC and say so in
# events; nothing acknowledged is lost, and the server goes on.

load helpers

setup() {
	export WORK=$(mktemp -d /tmp/clusterfs-test.XXXXXX)
	mkdir -p "$WORK/state"
	mount -t tmpfs -o size=3m tmpfs "$WORK/state"
}

teardown() {
	local rc=0
	stop_server TERM
	sanitizer_clean || rc=1
	umount "$WORK/state" 2>/dev/null || umount -l "$WORK/state"
	rm -rf "$WORK"
	return $rc
}

@test "a full disk: ENOSPC from close, an events line, nothing acknowledged lost" {
	start_server
	run python3 -c '
import os, errno, sys
d = sys.argv[1]
big = "x" * 50000
for i in range(1000):
    try:
        fd = os.open("%s/c%d.yaml" % (d, i), os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
        os.write(fd, ("data: {a: \"%s\"}\n" % big).encode())
        os.close(fd)
    except OSError as e:
        print(i, errno.errorcode[e.errno])
        break
' "$NS/configmaps"
	acked=${output%% *}
	[ "${output#* }" = ENOSPC ]
	[ "$acked" -gt 5 ]
	grep -q "Rejected configmaps/c$acked.yaml: .*(No space left on device)" "$NS/events"
	# reads go on; every acknowledged object is whole
	[ "$(ls "$NS/configmaps" | wc -l)" -eq "$acked" ]
	grep -q "xxxxx" "$NS/configmaps/c0.yaml"
	# and all of it survives a restart
	stop_server TERM
	start_server
	[ "$(ls "$NS/configmaps" | wc -l)" -eq "$acked" ]
	[ ! -e "$NS/configmaps/c$acked.yaml" ]
}
