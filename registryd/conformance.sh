#!/usr/bin/env bash
# conformance.sh runs the OCI distribution-spec conformance suite against a
# freshly built registryd on 127.0.0.1, once without authentication and
# once with basic authentication, every optional feature on, and both
# sha256 and sha512 content (OCI_DATA_SHA512=true). It prints one summary
# line per run and exits non-zero on any failure, error, skip or disabled
# test. Install the suite with .ci/install-tools.sh. REGISTRYD_FLAGS adds
# flags to both runs, with {run} replaced by the run's name (noauth, auth):
# --blob-store s3://HOST/BUCKET/{run} gives each run's store a prefix of
# its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GOBIN_DIR="$(go env GOPATH)/bin"
CONFORMANCE="${CONFORMANCE:-$GOBIN_DIR/conformance}"
if [ ! -x "$CONFORMANCE" ]; then
	echo "conformance.sh: $CONFORMANCE not found: run .ci/install-tools.sh" >&2
	exit 1
fi

WORK="$(mktemp -d)"
PID=""
cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -INT "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "conformance.sh: building registryd"
(cd "$ROOT" && go build -o "$WORK/registryd" ./registryd)

# start_registryd LOG [flags...]: starts registryd on a free loopback port
# and sets ADDR and PID.
start_registryd() {
	local log="$1"
	shift
	local label extra
	label="$(basename "$log" .log)"
	extra="${REGISTRYD_FLAGS:-}"
	extra="${extra//\{run\}/$label}"
	# shellcheck disable=SC2086 # REGISTRYD_FLAGS is a list of flags
	"$WORK/registryd" serve --addr 127.0.0.1:0 --access-log=false "$@" $extra >"$log" 2>&1 &
	PID=$!
	ADDR=""
	for _ in $(seq 1 300); do
		ADDR="$(sed -n 's/.*registryd listening.* addr=\([0-9.:]*\).*/\1/p' "$log" | head -n1)"
		[ -n "$ADDR" ] && return 0
		if ! kill -0 "$PID" 2>/dev/null; then
			echo "conformance.sh: registryd exited:" >&2
			cat "$log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "conformance.sh: registryd did not start" >&2
	cat "$log" >&2
	return 1
}

stop_registryd() {
	kill -INT "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=""
}

# count NAME FILE: a count from the suite's "OCI Conformance Result" block.
count() {
	awk -v k="$1" '/OCI Conformance Result/ {on=1; next} on && $1 ~ "^"k"\\.+:$" {print $2; exit}' "$2"
}

STATUS=0
# run_suite LABEL USER PASSWORD
run_suite() {
	local label="$1" user="$2" pass="$3"
	local dir="$WORK/$label"
	mkdir -p "$dir"
	(
		cd "$dir"
		env OCI_REGISTRY="$ADDR" OCI_TLS=disabled OCI_VERSION=1.1 \
			OCI_REPO1=conformance/repo1 OCI_REPO2=conformance/repo2 \
			OCI_USERNAME="$user" OCI_PASSWORD="$pass" \
			OCI_API_PULL=true OCI_API_PUSH=true OCI_API_TAGS_LIST=true OCI_API_REFERRER=true \
			OCI_API_BLOBS_DELETE=true OCI_API_MANIFESTS_DELETE=true OCI_API_TAGS_DELETE=true \
			OCI_API_BLOBS_UPLOAD_CANCEL=true OCI_API_MANIFESTS_TAG_PARAM=true \
			OCI_API_BLOBS_DIGEST_HEADER=true OCI_API_MANIFESTS_DIGEST_HEADER=true \
			OCI_API_BLOBS_MOUNT_ANONYMOUS=true \
			OCI_DATA_SPARSE=true OCI_DATA_SHA512=true \
			OCI_RESULTS_DIR="$dir/results" \
			timeout 600 "$CONFORMANCE" >"$dir/out.txt" 2>&1
	) || true
	local pass_n fail_n err_n skip_n dis_n total
	pass_n="$(count Pass "$dir/out.txt")"
	fail_n="$(count FAIL "$dir/out.txt")"
	err_n="$(count Error "$dir/out.txt")"
	skip_n="$(count Skip "$dir/out.txt")"
	dis_n="$(count Disabled "$dir/out.txt")"
	total="$(count Total "$dir/out.txt")"
	if [ -z "$pass_n" ] || [ -z "$total" ]; then
		echo "conformance.sh: [$label] the suite printed no result:" >&2
		tail -n 50 "$dir/out.txt" >&2
		STATUS=1
		return
	fi
	# A disabled test counts as skipped: every option is on.
	local failed=$((fail_n + err_n)) skipped=$((skip_n + dis_n))
	echo "conformance-$label: $pass_n passed, $failed failed, $skipped skipped"
	if [ "$failed" -ne 0 ] || [ "$skipped" -ne 0 ] || [ "$pass_n" -eq 0 ]; then
		grep -E ': (FAIL|Skip|Error|Disabled)$' -A3 "$dir/out.txt" | head -n 80 >&2 || true
		STATUS=1
	fi
}

# Run 1: no authentication.
start_registryd "$WORK/noauth.log" --data "$WORK/store-noauth" --allow-sparse
run_suite noauth "" ""
stop_registryd

# Run 2: basic authentication from a temporary htpasswd (bcrypt).
PASSWORD="conf-$RANDOM$RANDOM"
echo "$PASSWORD" | "$WORK/registryd" htpasswd --cost 4 conformance >"$WORK/htpasswd"
start_registryd "$WORK/auth.log" --data "$WORK/store-auth" --allow-sparse --htpasswd "$WORK/htpasswd"
# Unauthenticated requests must be challenged.
code="$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/v2/" 2>/dev/null || echo none)"
if [ "$code" != "401" ] && [ "$code" != "none" ]; then
	echo "conformance.sh: [auth] unauthenticated /v2/ answered $code, want 401" >&2
	STATUS=1
fi
run_suite auth conformance "$PASSWORD"
stop_registryd

exit "$STATUS"
