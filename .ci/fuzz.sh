#!/usr/bin/env bash
# fuzz.sh DURATION: runs every Go fuzz target of the module for DURATION
# each (go test -fuzz takes one target at a time). Exits non-zero on the
# first failure; the failing input is kept under testdata/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for t in $targets; do
		echo "fuzz: $pkg $t for $dur"
		go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$dur" >/tmp/berth-fuzz.log 2>&1 || {
			cat /tmp/berth-fuzz.log
			echo "fuzz: $pkg $t FAILED"
			exit 1
		}
		tail -n 1 /tmp/berth-fuzz.log
	done
done
