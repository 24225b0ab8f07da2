#!/usr/bin/env bats
# bad-input.bats: every kind of bad input a user can hand the cluster
# through the mount, driven through the real binary and the real mount.
#
# For each one we check the three things DESIGN.md section 2 promises:
#   1. the errno the tool sees (python3 for the exact call and errno;
#      `cp`, which reports close() errors, in a few cases);
#   2. the reason, with the field path, appended to the events file of the
#      namespace ($NS/events), or of the cluster ($M/events) for
#      cluster-scoped and root-level things, before close() returns;
#   3. the stored state is unchanged: the object file byte for byte as
#      saved before, or still absent.
#
# Each test uses objects of its own, so the tests do not depend on each
# other's order or outcome.

load helpers

setup_file() {
	start_server
	export NS
	# The interpreter itself, not a version manager's shim: it starts in a
	# tenth of the time, and this file runs python3 a few hundred times.
	PY=$(python3 -c 'import sys; print(sys.executable)')
	export PY
}

teardown_file() {
	cleanup_server
}

setup() {
	mark "$NS" "$M"
}

# --- helpers -------------------------------------------------------------

# pywrite PATH [append]: writes stdin to PATH by open(O_WRONLY|O_CREAT|
# O_TRUNC, or O_APPEND), write() and close(). Prints OK, or "open ERRNO",
# or each failing call among write and close, e.g. "close EINVAL" or
# "write EFBIG close EFBIG".
pywrite() {
	"$PY" -I -S -c '
import errno, os, sys
data = sys.stdin.buffer.read()
flags = os.O_WRONLY | os.O_CREAT
flags |= os.O_APPEND if sys.argv[2:] == ["append"] else os.O_TRUNC
try:
    fd = os.open(sys.argv[1], flags, 0o644)
except OSError as e:
    print("open", errno.errorcode[e.errno])
    sys.exit(0)
failed = []
try:
    off = 0
    while off < len(data):
        off += os.write(fd, data[off:off + 65536])
except OSError as e:
    failed.append("write " + errno.errorcode[e.errno])
try:
    os.close(fd)
except OSError as e:
    failed.append("close " + errno.errorcode[e.errno])
print(" ".join(failed) or "OK")
' "$@"
}

# pyop FUNC ARGS...: calls os.FUNC(ARGS...) (rename, unlink, mkdir, rmdir)
# and prints OK or the errno's name.
pyop() {
	"$PY" -I -S -c '
import errno, os, sys
try:
    getattr(os, sys.argv[1])(*sys.argv[2:])
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
' "$@"
}

# mark DIR...: remembers where each DIR/events ends, for new_events.
mark() {
	declare -gA MARK
	local d
	for d in "$@"; do
		MARK[$d]=$(stat -c %s "$d/events")
	done
}

# new_events DIR: the lines appended to DIR/events since `mark`.
new_events() {
	cat "$1/events" | tail -c +$((${MARK[$1]:-0} + 1))
}

strerror() {
	case $1 in
	EINVAL) echo "Invalid argument" ;;
	EFBIG) echo "File too large" ;;
	ESTALE) echo "Stale file handle" ;;
	ENOENT) echo "No such file or directory" ;;
	ENOTEMPTY) echo "Directory not empty" ;;
	*) echo "$1" ;;
	esac
}

# has_event DIR ORIGIN TEXT...: a line appended to DIR/events since `mark`
# reads "TIME Warning Rejected ORIGIN: ..." and contains every TEXT.
has_event() {
	local dir=$1 origin=$2 lines t
	shift 2
	lines=$(new_events "$dir" | grep -F -- " Warning Rejected $origin: ") || {
		echo "no 'Warning Rejected $origin:' line was added to $dir/events; new lines:"
		new_events "$dir"
		return 1
	}
	for t in "$@"; do
		lines=$(grep -F -- "$t" <<<"$lines") || {
			echo "no 'Warning Rejected $origin:' line in $dir/events has: $t; new lines:"
			new_events "$dir"
			return 1
		}
	done
}

# no_new_event DIR GREP-ARGS...: no line added to DIR/events since `mark`
# matches (a bare `! cmd` would not fail a bats test).
no_new_event() {
	local dir=$1 hits
	shift
	if hits=$(new_events "$dir" | grep "$@"); then
		echo "unexpected lines in $dir/events:"
		echo "$hits"
		return 1
	fi
}

# rejected EXPECTED DIR ORIGIN TEXT...: the last `run` printed EXPECTED
# (e.g. "close EINVAL"), and DIR/events got the rejection: ORIGIN, every
# TEXT (the field path and the reason), and the errno's text at the end.
rejected() {
	local want=$1
	shift
	if [ "$output" != "$want" ]; then
		echo "expected '$want', got '$output'"
		return 1
	fi
	has_event "$@" "($(strerror "${want##* }"))"
}

# new_object PATH: writes stdin to PATH, which must be accepted, and saves
# what the file then reads for `unchanged`.
new_object() {
	local out
	out=$(pywrite "$1")
	if [ "$out" != OK ]; then
		echo "fixture $1 was not accepted: $out"
		tail -n 3 "$NS/events"
		return 1
	fi
	save "$1"
}

save() {
	cp "$1" "$BATS_TEST_TMPDIR/saved.${1##*/}"
}

# user_part FILE: the object without what controllers may change meanwhile
# (status, and the resourceVersion their status writes move on).
user_part() {
	sed -e '/^status:/,$d' -e '/^  resourceVersion: /d' "$1"
}

# unchanged PATH: the object file reads, byte for byte, what `save` saw,
# but for the status the controllers keep writing.
unchanged() {
	cmp <(user_part "$BATS_TEST_TMPDIR/saved.${1##*/}") <(user_part "$1") || {
		echo "$1 changed; it now reads:"
		cat "$1"
		return 1
	}
}

# absent PATH: no such object.
absent() {
	if [ -e "$1" ]; then
		echo "$1 exists:"
		cat "$1"
		return 1
	fi
}

# deployment NAME: a valid Deployment document; the path supplies the rest.
deployment() {
	cat <<EOF
spec:
  replicas: 2
  selector:
    matchLabels:
      app: $1
  template:
    metadata:
      labels:
        app: $1
    spec:
      restartPolicy: Always
      containers:
      - name: main
        image: nginx:1.25
        ports:
        - containerPort: 80
EOF
}

# bad_deployment NAME SED-SCRIPT: tries the valid Deployment NAME with the
# edit made, as a user would after creating it; sets $output and $D.
bad_deployment() {
	D=$NS/deployments/$1.yaml
	deployment "$1" | new_object "$D"
	deployment "$1" | sed "$2" >"$BATS_TEST_TMPDIR/bad.yaml"
	run pywrite "$D" <"$BATS_TEST_TMPDIR/bad.yaml"
}

configmap() {
	printf 'data:\n  greeting: hello\n'
}

# --- not YAML, or not one object -----------------------------------------

@test "invalid YAML syntax is rejected with EINVAL (python and cp)" {
	F=$NS/configmaps/syntax.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<'data: {greeting: [unclosed'
	rejected "close EINVAL" "$NS" configmaps/syntax.yaml "invalid YAML at line"
	unchanged "$F"

	printf 'data:\n  a: b\n c: d\n' >"$BATS_TEST_TMPDIR/bad.yaml"
	mark "$NS"
	run cp "$BATS_TEST_TMPDIR/bad.yaml" "$F"
	[ "$status" -ne 0 ]
	[[ $output == *"failed to close"*"Invalid argument"* ]]
	has_event "$NS" configmaps/syntax.yaml "invalid YAML"
	unchanged "$F"
}

@test "a YAML list instead of a map is rejected" {
	F=$NS/configmaps/list.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'- data\n- greeting\n'
	rejected "close EINVAL" "$NS" configmaps/list.yaml "must be a map" "list"
	unchanged "$F"
}

@test "a bare scalar instead of a map is rejected" {
	F=$NS/configmaps/scalar.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<'hello world'
	rejected "close EINVAL" "$NS" configmaps/scalar.yaml "must be a map" "string"
	unchanged "$F"
}

@test "binary garbage with NUL bytes is rejected" {
	F=$NS/configmaps/nul.yaml
	configmap | new_object "$F"
	printf 'data:\n  a: b\0\0\1\2garbage\0' >"$BATS_TEST_TMPDIR/bin"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/bin"
	rejected "close EINVAL" "$NS" configmaps/nul.yaml "NUL"
	unchanged "$F"
}

@test "binary garbage without NULs but invalid UTF-8 is rejected" {
	F=$NS/configmaps/utf8.yaml
	configmap | new_object "$F"
	printf 'data:\n  greeting: h\xff\xfe\xc3llo\x80\n' >"$BATS_TEST_TMPDIR/bin"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/bin"
	rejected "close EINVAL" "$NS" configmaps/utf8.yaml "invalid YAML" "UTF-8"
	unchanged "$F"
}

@test "an empty document (--- only) is rejected" {
	F=$NS/configmaps/dashes.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<'---'
	rejected "close EINVAL" "$NS" configmaps/dashes.yaml "empty"
	unchanged "$F"
}

@test "a file emptied with O_TRUNC and closed unwritten is ignored, not applied" {
	F=$NS/configmaps/emptied.yaml
	configmap | new_object "$F"
	# not an error: shells open with O_TRUNC and flush before they write
	run pywrite "$F" </dev/null
	[ "$output" = OK ]
	wait_for 5 has_event_ignored configmaps/emptied.yaml
	unchanged "$F"

	# the same through the shell, and for a file that did not exist
	mark "$NS"
	: >"$F"
	: >"$NS/configmaps/never.yaml"
	wait_for 5 has_event_ignored configmaps/emptied.yaml
	wait_for 5 has_event_ignored configmaps/never.yaml
	unchanged "$F"
	absent "$NS/configmaps/never.yaml"
	# it is a notice, not a rejection
	no_new_event "$NS" -F "Rejected configmaps/emptied.yaml"
}

has_event_ignored() {
	new_events "$NS" | grep -qF " Warning Ignored $1: "
}

@test "several documents in one object file are rejected" {
	F=$NS/configmaps/multi.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'data:\n  a: "1"\n---\ndata:\n  a: "2"\n'
	rejected "close EINVAL" "$NS" configmaps/multi.yaml "2 documents"
	unchanged "$F"
}

@test "a 2 MiB document fails with EFBIG at write and at close (python and cp)" {
	F=$NS/configmaps/huge.yaml
	configmap | new_object "$F"
	"$PY" -I -S -c 'print("data:\n  big: " + "x" * (2 << 20))' >"$BATS_TEST_TMPDIR/huge"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/huge"
	rejected "write EFBIG close EFBIG" "$NS" configmaps/huge.yaml "1048576 bytes"
	unchanged "$F"

	mark "$NS"
	run cp "$BATS_TEST_TMPDIR/huge" "$F"
	[ "$status" -ne 0 ]
	[[ $output == *"File too large"* ]]
	has_event "$NS" configmaps/huge.yaml "(File too large)"
	unchanged "$F"
	absent "$NS/configmaps/huge2.yaml"
	run pywrite "$NS/configmaps/huge2.yaml" <"$BATS_TEST_TMPDIR/huge"
	[ "$output" = "write EFBIG close EFBIG" ]
	absent "$NS/configmaps/huge2.yaml"
}

@test "a deeply nested document is rejected and the server lives on" {
	F=$NS/configmaps/deep.yaml
	configmap | new_object "$F"
	"$PY" -I -S -c 'print("data: " + "[" * 100000 + "]" * 100000)' >"$BATS_TEST_TMPDIR/deep"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/deep"
	rejected "close EINVAL" "$NS" configmaps/deep.yaml "nested"
	unchanged "$F"
}

@test "a YAML alias is rejected: not supported" {
	F=$NS/configmaps/alias.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'metadata:\n  labels: &l {a: b}\n  annotations: *l\ndata: {a: b}\n'
	rejected "close EINVAL" "$NS" configmaps/alias.yaml "alias"
	unchanged "$F"
}

@test "a duplicate key is rejected" {
	F=$NS/configmaps/dupkey.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'data:\n  a: "1"\n  a: "2"\n'
	rejected "close EINVAL" "$NS" configmaps/dupkey.yaml 'duplicate key "a"'
	unchanged "$F"
}

@test "appending to an object file (>>) makes a duplicate key: rejected" {
	F=$NS/configmaps/append.yaml
	configmap | new_object "$F"
	run pywrite "$F" append <<<$'data:\n  other: x\n'
	rejected "close EINVAL" "$NS" configmaps/append.yaml 'duplicate key "data"'
	unchanged "$F"
	# bash's >> ignores the close() error: the events line is the trace
	mark "$NS"
	echo 'data: {other: x}' >>"$F"
	has_event "$NS" configmaps/append.yaml 'duplicate key "data"'
	unchanged "$F"
}

@test "truncating an object file to a stub is rejected" {
	F=$NS/configmaps/trunc.yaml
	configmap | new_object "$F"
	run truncate -s 5 "$F"
	[ "$status" -ne 0 ]
	[[ $output == *"Invalid argument"* ]]
	has_event "$NS" configmaps/trunc.yaml "(Invalid argument)"
	unchanged "$F"
}

# --- a document that contradicts its path ---------------------------------

@test "a kind that does not match its directory is rejected" {
	F=$NS/configmaps/kindless.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'kind: Secret\ndata: {a: eA==}\n'
	rejected "close EINVAL" "$NS" configmaps/kindless.yaml "kind:" "Secret" "configmaps/"
	unchanged "$F"
}

@test "an unknown apiVersion for the kind is rejected" {
	bad_deployment apiver '1i apiVersion: apps/v2'
	rejected "close EINVAL" "$NS" deployments/apiver.yaml "apiVersion:" "apps/v2"
	unchanged "$D"
}

@test "metadata.name that does not match the file name is rejected" {
	F=$NS/configmaps/named.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'metadata:\n  name: other-name\ndata: {a: b}\n'
	rejected "close EINVAL" "$NS" configmaps/named.yaml "metadata.name:" "other-name"
	unchanged "$F"
	absent "$NS/configmaps/other-name.yaml"
}

@test "metadata.namespace that does not match the directory is rejected" {
	F=$NS/configmaps/nsmis.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'metadata:\n  namespace: kube-system\ndata: {a: b}\n'
	rejected "close EINVAL" "$NS" configmaps/nsmis.yaml "metadata.namespace:" "kube-system"
	unchanged "$F"
}

@test "a namespace on a cluster-scoped Node is rejected in the cluster's events" {
	F=$M/nodes/badnode.yaml
	echo 'spec: {unschedulable: false}' | new_object "$F"
	run pywrite "$F" <<<$'metadata:\n  namespace: default\n'
	rejected "close EINVAL" "$M" nodes/badnode.yaml "metadata.namespace:"
	unchanged "$F"
	run pywrite "$F" <<<$'spec:\n  unschedulable: "yes"\n'
	rejected "close EINVAL" "$M" nodes/badnode.yaml "spec.unschedulable:" "boolean"
	unchanged "$F"
	no_new_event "$NS" -F nodes/badnode.yaml
}

@test "a path through .. into the namespace directory is rejected at open" {
	run pywrite "$NS/configmaps/../dotdot.yaml" <<<'data: {a: b}'
	rejected "open EINVAL" "$NS" namespaces/default/dotdot.yaml "files cannot be created here"
	absent "$NS/dotdot.yaml"
	absent "$NS/configmaps/dotdot.yaml"
	run pywrite "$M/nodes/../rootfile.yaml" <<<'data: {a: b}'
	rejected "open EINVAL" "$M" rootfile.yaml "files cannot be created here"
	absent "$M/rootfile.yaml"
}

# --- names, labels, annotations -------------------------------------------

@test "an object name with uppercase or underscore fails at open" {
	run pywrite "$NS/configmaps/Bad_Name.yaml" <<<'data: {a: b}'
	rejected "open EINVAL" "$NS" configmaps/Bad_Name.yaml "metadata.name:" '"Bad_Name"' "RFC 1123"
	absent "$NS/configmaps/Bad_Name.yaml"
	run pywrite "$NS/configmaps/Upper.yaml" <<<'data: {a: b}'
	rejected "open EINVAL" "$NS" configmaps/Upper.yaml "metadata.name:" '"Upper"'
	absent "$NS/configmaps/Upper.yaml"
	run pywrite "$NS/configmaps/trailing-.yaml" <<<'data: {a: b}'
	rejected "open EINVAL" "$NS" configmaps/trailing-.yaml "metadata.name:"
	absent "$NS/configmaps/trailing-.yaml"
}

@test "an object name longer than 253 characters fails at open" {
	long=$(printf 'a%.0s' {1..254})
	run pywrite "$NS/configmaps/$long.yaml" <<<'data: {a: b}'
	rejected "open EINVAL" "$NS" "configmaps/$long.yaml" "metadata.name:" "253"
	absent "$NS/configmaps/$long.yaml"
}

@test "a Service name with a dot (not a DNS label) fails at open" {
	run pywrite "$NS/services/web.v1.yaml" <<<'spec: {ports: [{port: 80}]}'
	rejected "open EINVAL" "$NS" services/web.v1.yaml "metadata.name:" '"web.v1"'
	absent "$NS/services/web.v1.yaml"
}

@test "a bad label key is rejected with its path" {
	F=$NS/configmaps/labelkey.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'metadata:\n  labels:\n    "bad key!": x\ndata: {a: b}\n'
	rejected "close EINVAL" "$NS" configmaps/labelkey.yaml "metadata.labels[bad key!]:" "invalid key"
	unchanged "$F"
}

@test "a bad label value is rejected with its path" {
	F=$NS/configmaps/labelval.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'metadata:\n  labels:\n    tier: "front end!"\ndata: {a: b}\n'
	rejected "close EINVAL" "$NS" configmaps/labelval.yaml "metadata.labels[tier]:" "label value"
	unchanged "$F"
	long=$(printf 'v%.0s' {1..64})
	run pywrite "$F" <<<"metadata: {labels: {tier: $long}}"
	rejected "close EINVAL" "$NS" configmaps/labelval.yaml "metadata.labels[tier]:" "63"
	unchanged "$F"
}

@test "a bad annotation key is rejected with its path" {
	F=$NS/configmaps/annot.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'metadata:\n  annotations:\n    "-bad.example/note": x\ndata: {a: b}\n'
	rejected "close EINVAL" "$NS" configmaps/annot.yaml "metadata.annotations[-bad.example/note]:"
	unchanged "$F"
}

# --- schema ------------------------------------------------------------------

@test "an unknown top-level field is rejected with its path" {
	F=$NS/configmaps/unknown.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'data: {a: b}\nbogus: 1\n'
	rejected "close EINVAL" "$NS" configmaps/unknown.yaml "bogus: unknown field"
	unchanged "$F"
}

@test "an unknown nested field is rejected with its full path" {
	bad_deployment imagee 's/image:/imagee:/'
	rejected "close EINVAL" "$NS" deployments/imagee.yaml \
		"spec.template.spec.containers[0].imagee: unknown field"
	unchanged "$D"
}

@test "a quoted string for spec.replicas is rejected" {
	bad_deployment strreplicas 's/replicas: 2/replicas: "3"/'
	rejected "close EINVAL" "$NS" deployments/strreplicas.yaml "spec.replicas:" "integer"
	unchanged "$D"
}

@test "an integer for a ConfigMap data value is rejected" {
	F=$NS/configmaps/intdata.yaml
	configmap | new_object "$F"
	run pywrite "$F" <<<$'data:\n  port: 8080\n'
	rejected "close EINVAL" "$NS" configmaps/intdata.yaml "data[port]:" "must be a string"
	unchanged "$F"
}

@test "an unquoted number where a string is required is rejected" {
	bad_deployment envnum 's/        ports:/        env: [{name: PORT, value: 8080}]\n&/'
	rejected "close EINVAL" "$NS" deployments/envnum.yaml \
		"spec.template.spec.containers[0].env[0].value:" "must be a string"
	unchanged "$D"
}

@test "a map where a list is expected is rejected" {
	bad_deployment portmap 's/        - containerPort: 80/          containerPort: 80/'
	rejected "close EINVAL" "$NS" deployments/portmap.yaml \
		"spec.template.spec.containers[0].ports:" "must be a list"
	unchanged "$D"
}

@test "a negative replica count is rejected" {
	bad_deployment negative 's/replicas: 2/replicas: -1/'
	rejected "close EINVAL" "$NS" deployments/negative.yaml "spec.replicas:" "-1"
	unchanged "$D"
}

@test "a selector that does not match the template labels is rejected" {
	bad_deployment selmis '0,/app: selmis/s//app: other/'
	rejected "close EINVAL" "$NS" deployments/selmis.yaml "spec.selector:" "does not match"
	unchanged "$D"
}

@test "a missing container image is rejected" {
	bad_deployment noimage '/image:/d'
	rejected "close EINVAL" "$NS" deployments/noimage.yaml \
		"spec.template.spec.containers[0].image: required"
	unchanged "$D"
}

@test "a Deployment without a selector is rejected" {
	bad_deployment nosel '/selector:/,/app: nosel/d'
	rejected "close EINVAL" "$NS" deployments/nosel.yaml "spec.selector: required"
	unchanged "$D"
}

@test "a bad enum (restartPolicy: Sometimes) is rejected" {
	bad_deployment enum 's/restartPolicy: Always/restartPolicy: Sometimes/'
	rejected "close EINVAL" "$NS" deployments/enum.yaml \
		"spec.template.spec.restartPolicy:" '"Sometimes"'
	unchanged "$D"
}

@test "a bad quantity (cpu: lots) is rejected" {
	bad_deployment quantity 's/        ports:/        resources: {requests: {cpu: lots}}\n&/'
	rejected "close EINVAL" "$NS" deployments/quantity.yaml \
		"spec.template.spec.containers[0].resources.requests[cpu]:" '"lots"'
	unchanged "$D"
}

@test "a bad port (containerPort: 70000) is rejected" {
	bad_deployment port 's/containerPort: 80/containerPort: 70000/'
	rejected "close EINVAL" "$NS" deployments/port.yaml \
		"spec.template.spec.containers[0].ports[0].containerPort:" "70000"
	unchanged "$D"
}

@test "Secret data that is not base64 is rejected" {
	F=$NS/secrets/creds.yaml
	echo 'data: {password: c2VjcmV0}' | new_object "$F"
	run pywrite "$F" <<<$'data:\n  password: "not base64!!"\n'
	rejected "close EINVAL" "$NS" secrets/creds.yaml "data[password]:" "base64"
	unchanged "$F"
	run pywrite "$NS/secrets/newcreds.yaml" <<<$'data:\n  password: "%%%"\n'
	rejected "close EINVAL" "$NS" secrets/newcreds.yaml "data[password]:" "base64"
	absent "$NS/secrets/newcreds.yaml"
}

@test "a Job template with restartPolicy Always is rejected" {
	F=$NS/jobs/once.yaml
	cat >"$BATS_TEST_TMPDIR/job" <<'EOF'
spec:
  template:
    spec:
      restartPolicy: Always
      containers:
      - name: main
        image: busybox
EOF
	run pywrite "$F" <"$BATS_TEST_TMPDIR/job"
	rejected "close EINVAL" "$NS" jobs/once.yaml "spec.template.spec.restartPolicy:"
	absent "$F"
}

@test "a bad CronJob schedule is rejected" {
	F=$NS/cronjobs/nightly.yaml
	cronjob() {
		cat <<EOF
spec:
  schedule: "$1"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox
EOF
	}
	cronjob '0 3 * * *' | new_object "$F"
	cronjob 'every tuesday' >"$BATS_TEST_TMPDIR/cj"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/cj"
	rejected "close EINVAL" "$NS" cronjobs/nightly.yaml "spec.schedule:" "every tuesday"
	unchanged "$F"
	cronjob '61 * * * *' >"$BATS_TEST_TMPDIR/cj"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/cj"
	rejected "close EINVAL" "$NS" cronjobs/nightly.yaml "spec.schedule:" "61"
	unchanged "$F"
}

# --- read-modify-write ---------------------------------------------------------

@test "a stale metadata.resourceVersion fails with ESTALE (python and cp)" {
	F=$NS/configmaps/rmw.yaml
	echo 'data: {a: "1"}' | new_object "$F"
	cp "$F" "$BATS_TEST_TMPDIR/old"
	# someone else changes it once
	sed 's/a: "1"/a: "2"/' "$BATS_TEST_TMPDIR/old" >"$BATS_TEST_TMPDIR/new"
	[ "$(pywrite "$F" <"$BATS_TEST_TMPDIR/new")" = OK ]
	save "$F"
	# then we write our old copy back with a change
	sed 's/a: "1"/a: "3"/' "$BATS_TEST_TMPDIR/old" >"$BATS_TEST_TMPDIR/mine"
	mark "$NS"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/mine"
	rejected "close ESTALE" "$NS" configmaps/rmw.yaml "metadata.resourceVersion:" "stale"
	unchanged "$F"
	grep -q 'a: "2"' "$F"

	mark "$NS"
	run cp "$BATS_TEST_TMPDIR/mine" "$F"
	[ "$status" -ne 0 ]
	[[ $output == *"failed to close"*"Stale file handle"* ]]
	has_event "$NS" configmaps/rmw.yaml "metadata.resourceVersion:"
	unchanged "$F"
}

@test "a file open for writing whose object is deleted meanwhile does not re-create it" {
	F=$NS/configmaps/deleted.yaml
	echo 'data: {a: "1"}' | new_object "$F"
	mark "$NS"
	# open the existing object, delete it from elsewhere, then write and close
	run "$PY" -I -S -c '
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.unlink(sys.argv[1])
os.write(fd, b"data: {a: \"2\"}\n")
try:
    os.close(fd)
    print("OK")
except OSError as e:
    print("close", errno.errorcode[e.errno])
' "$F"
	[ "$output" = "close ENOENT" ]
	has_event "$NS" configmaps/deleted.yaml "was deleted while it was open"
	absent "$F"
}

@test "an old copy written to a new file creates it: the server's fields are ignored on create" {
	F=$NS/configmaps/recreated.yaml
	echo 'data: {a: "1"}' | new_object "$F"
	cp "$F" "$BATS_TEST_TMPDIR/old"
	uid=$(sed -n 's/^  uid: //p' "$F")
	rm "$F"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/old"
	[ "$output" = OK ]
	# a new object: a new uid, generation 1
	[ "$(sed -n 's/^  uid: //p' "$F")" != "$uid" ]
	grep -q "^  generation: 1$" "$F"
}

@test "a resourceVersion that is not a version at all is rejected" {
	F=$NS/configmaps/rvjunk.yaml
	echo 'data: {a: "1"}' | new_object "$F"
	sed 's/^  resourceVersion: .*/  resourceVersion: "abc"/; s/a: "1"/a: "2"/' "$F" >"$BATS_TEST_TMPDIR/mine"
	run pywrite "$F" <"$BATS_TEST_TMPDIR/mine"
	# "abc" is not the current version: EINVAL (malformed) or ESTALE (not current)
	[[ $output == "close EINVAL" || $output == "close ESTALE" ]] || {
		echo "expected close EINVAL or ESTALE, got '$output'"
		false
	}
	has_event "$NS" configmaps/rvjunk.yaml "metadata.resourceVersion"
	unchanged "$F"
}

# --- apply -------------------------------------------------------------------

@test "apply is one transaction: a good ConfigMap with a bad Deployment applies neither" {
	cat >"$BATS_TEST_TMPDIR/docs" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: txn-config
data:
  a: b
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: txn-web
spec:
  replicas: lots
  selector:
    matchLabels: {app: txn}
  template:
    metadata:
      labels: {app: txn}
    spec:
      containers:
      - name: main
        image: nginx
EOF
	run pywrite "$NS/apply" <"$BATS_TEST_TMPDIR/docs"
	rejected "close EINVAL" "$NS" apply "document 2 (Deployment txn-web)" "spec.replicas:"
	absent "$NS/configmaps/txn-config.yaml"
	absent "$NS/deployments/txn-web.yaml"
}

@test "apply into a namespace that does not exist fails with ENOENT, applying nothing" {
	# $M/namespaces/nope/... would fail in the kernel's lookup; apply
	# reaches the server
	cat >"$BATS_TEST_TMPDIR/docs" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: nope-first
data: {a: b}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: nope-second
  namespace: nope
data: {a: b}
EOF
	run pywrite "$NS/apply" <"$BATS_TEST_TMPDIR/docs"
	rejected "close ENOENT" "$NS" apply "document 2 (ConfigMap nope-second)" "nope"
	absent "$NS/configmaps/nope-first.yaml"
	absent "$M/namespaces/nope"

	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: nope}\n' >"$BATS_TEST_TMPDIR/one"
	run pywrite "$M/apply" <"$BATS_TEST_TMPDIR/one"
	rejected "close ENOENT" "$M" apply "namespace nope does not exist"
	absent "$M/namespaces/nope"
}

@test "apply of an unknown kind is rejected naming the document" {
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unk-a}\n---\napiVersion: v1\nkind: Widget\nmetadata: {name: w}\n' >"$BATS_TEST_TMPDIR/docs"
	run pywrite "$NS/apply" <"$BATS_TEST_TMPDIR/docs"
	rejected "close EINVAL" "$NS" apply "document 2" "kind:" "Widget"
	absent "$NS/configmaps/unk-a.yaml"
}

@test "apply of nothing but --- is rejected" {
	run pywrite "$NS/apply" <<<'---'
	rejected "close EINVAL" "$NS" apply "no documents"
}

@test "apply of 2 MiB fails with EFBIG" {
	"$PY" -I -S -c 'print("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big-apply}\ndata:\n  big: " + "x" * (2 << 20))' >"$BATS_TEST_TMPDIR/huge"
	run pywrite "$NS/apply" <"$BATS_TEST_TMPDIR/huge"
	rejected "write EFBIG close EFBIG" "$NS" apply "1048576"
	absent "$NS/configmaps/big-apply.yaml"
}

# --- renames, deletes, directories ------------------------------------------

@test "renaming one object file onto another name is rejected" {
	A=$NS/configmaps/ren-a.yaml B=$NS/configmaps/ren-b.yaml
	echo 'data: {who: a}' | new_object "$A"
	echo 'data: {who: b}' | new_object "$B"
	run pyop rename "$A" "$B"
	rejected "EINVAL" "$NS" configmaps/ren-a.yaml "cannot be renamed"
	unchanged "$A"
	unchanged "$B"
	run pyop rename "$A" "$NS/configmaps/ren-c.yaml"
	rejected "EINVAL" "$NS" configmaps/ren-a.yaml "cannot be renamed"
	unchanged "$A"
	absent "$NS/configmaps/ren-c.yaml"
	# mv as a user types it
	mark "$NS"
	run mv "$A" "$B"
	[ "$status" -ne 0 ]
	has_event "$NS" configmaps/ren-a.yaml "cannot be renamed"
	unchanged "$A"
	unchanged "$B"
}

@test "renaming an object file into another kind's directory is rejected" {
	D=$NS/deployments/crosskind.yaml
	deployment crosskind | new_object "$D"
	run pyop rename "$D" "$NS/configmaps/crosskind.yaml"
	rejected "EINVAL" "$NS" deployments/crosskind.yaml "cannot be renamed"
	unchanged "$D"
	absent "$NS/configmaps/crosskind.yaml"
}

@test "a scratch file with bad content renamed over an object (sed -i) is rejected" {
	F=$NS/configmaps/edited.yaml
	configmap | new_object "$F"
	S=$NS/configmaps/sedAbC123
	printf 'data:\n  greeting: 42\n' >"$S"
	run pyop rename "$S" "$F"
	rejected "EINVAL" "$NS" configmaps/edited.yaml "data[greeting]:" "must be a string"
	unchanged "$F"
	# and onto a name that cannot be an object
	run pyop rename "$S" "$NS/configmaps/Edited_Copy.yaml"
	rejected "EINVAL" "$NS" configmaps/Edited_Copy.yaml "metadata.name:"
	absent "$NS/configmaps/Edited_Copy.yaml"
	rm -f "$S"
}

@test "deleting an object that does not exist fails with ENOENT" {
	# The kernel's lookup fails before the server is asked, so there is
	# no events line for this one: the errno is all there is to check.
	run pyop unlink "$NS/configmaps/no-such-thing.yaml"
	[ "$output" = ENOENT ]
	run rm "$NS/configmaps/no-such-thing.yaml"
	[ "$status" -ne 0 ]
	[[ $output == *"No such file or directory"* ]]
	run pyop unlink "$M/nodes/no-such-node.yaml"
	[ "$output" = ENOENT ]
	absent "$NS/configmaps/no-such-thing.yaml"
}

@test "rmdir of a non-empty namespace fails with ENOTEMPTY" {
	mkdir "$M/namespaces/full"
	F=$M/namespaces/full/configmaps/keep.yaml
	configmap | new_object "$F"
	save "$M/namespaces/full.yaml"
	mark "$M"
	run pyop rmdir "$M/namespaces/full"
	rejected "ENOTEMPTY" "$M" namespaces/full "not empty"
	unchanged "$F"
	unchanged "$M/namespaces/full.yaml"
	[ -d "$M/namespaces/full" ]
}

@test "mkdir of a namespace with a bad name fails with EINVAL" {
	run pyop mkdir "$M/namespaces/Bad_NS"
	rejected "EINVAL" "$M" namespaces/Bad_NS "metadata.name:" '"Bad_NS"'
	absent "$M/namespaces/Bad_NS"
	absent "$M/namespaces/Bad_NS.yaml"
	long=$(printf 'n%.0s' {1..64})
	run pyop mkdir "$M/namespaces/$long"
	rejected "EINVAL" "$M" "namespaces/$long" "metadata.name:" "63"
	absent "$M/namespaces/$long"
	run mkdir "$M/namespaces/with.dot"
	[ "$status" -ne 0 ]
	has_event "$M" namespaces/with.dot "metadata.name:"
	absent "$M/namespaces/with.dot"
}

@test "mkdir of a namespace that exists fails with EEXIST" {
	# the kernel's lookup finds it: no events line
	run pyop mkdir "$M/namespaces/default"
	[ "$output" = EEXIST ]
}

# --- replicas and events files ---------------------------------------------------

@test "garbage written to replicas is rejected" {
	D=$NS/deployments/scaled.yaml
	deployment scaled | new_object "$D"
	R=$NS/deployments/scaled/replicas
	[ "$(cat "$R")" = 2 ]
	for bad in -1 abc 1.5 '5 6' 99999999999999999999; do
		mark "$NS"
		run pywrite "$R" <<<"$bad"
		rejected "close EINVAL" "$NS" deployments/scaled/replicas "spec.replicas:" "$bad"
		unchanged "$D"
		[ "$(cat "$R")" = 2 ]
	done
}

@test "an events line that is not 'Normal|Warning REASON OBJECT: MESSAGE' is rejected" {
	for bad in 'this is not an event' 'Info Started pods/x: hi' 'Warning NoColon pods/x hi' 'Normal'; do
		mark "$NS"
		run pywrite "$NS/events" append <<<"$bad"
		rejected "close EINVAL" "$NS" events
		# nothing but the rejection was added
		no_new_event "$NS" -v -F " Warning Rejected events: "
	done
	run pywrite "$M/events" append <<<'Bogus Reason nodes/n1: hi'
	rejected "close EINVAL" "$M" events
}

@test "an events write with one bad line among good ones appends none of them" {
	printf 'Normal BatchMarker pods/x: the first line is fine\nthis line is garbage\n' >"$BATS_TEST_TMPDIR/lines"
	run pywrite "$NS/events" append <"$BATS_TEST_TMPDIR/lines"
	rejected "close EINVAL" "$NS" events
	no_new_event "$NS" -E '^[^ ]+ Normal BatchMarker '
}

@test "an events write over 1 MiB fails with EFBIG and keeps the log" {
	mkdir "$M/namespaces/evbig"
	E=$M/namespaces/evbig
	run pywrite "$E/events" append <<<'Normal Before pods/x: written before'
	[ "$output" = OK ]
	grep -q 'Normal Before pods/x: written before' "$E/events"
	mark "$E"
	"$PY" -I -S -c 'print("Normal Huge pods/x: " + "y" * (2 << 20))' >"$BATS_TEST_TMPDIR/huge"
	run pywrite "$E/events" append <"$BATS_TEST_TMPDIR/huge"
	result=$output
	# the worst first: a rejected write must not cost the log what it held
	grep -q 'Normal Before pods/x: written before' "$E/events" || {
		echo "the earlier events of namespace evbig are gone (the write got '$result');"
		echo "the events file now has $(stat -c %s "$E/events") bytes"
		false
	}
	run grep -c ' Normal Huge ' "$E/events"
	[ "$output" = 0 ]
	[ "$result" = "write EFBIG close EFBIG" ] || {
		echo "expected 'write EFBIG close EFBIG', got '$result'"
		false
	}
	has_event "$E" events "(File too large)"
}
