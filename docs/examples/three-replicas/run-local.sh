#!/usr/bin/env bash
# run-local.sh runs a registry of three registryd replicas on this
# machine, everything on 127.0.0.1: a MinIO server (the S3 API the blobs
# go to), a PostgreSQL server (the metadata), and three `registryd serve`
# sharing both, each with its own data directory and copies of the
# store's keyring and login token key (the first replica makes the
# store: its identity, recorded in the database, and both keys). It prints the replicas' addresses and runs until interrupted
# (Ctrl-C), then stops everything and removes what it made.
#
# Needs what `make tools` installs: minio (in $(go env GOPATH)/bin),
# PostgreSQL (initdb and pg_ctl: on PATH or Debian's
# /usr/lib/postgresql/*/bin) and the aws CLI (to make the bucket).
#
# Environment (all optional):
#   REGISTRYD      a built registryd (default: go build ./registryd)
#   WORKDIR        where the servers keep their data (default: a new
#                  temporary directory, removed at exit)
#   REPLICA_PORTS  the replicas' ports (default "5001 5002 5003")
#   MINIO_PORT     MinIO's S3 port (default 9100; its console: +1)
#   PG_PORT        PostgreSQL's port (default 5433)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
REPLICA_PORTS="${REPLICA_PORTS:-5001 5002 5003}"
MINIO_PORT="${MINIO_PORT:-9100}"
PG_PORT="${PG_PORT:-5433}"
GOBIN_DIR="$(go env GOPATH)/bin"

say() { echo "run-local.sh: $*"; }
die() { echo "run-local.sh: $*" >&2; exit 1; }

MINIO="$(command -v minio || echo "$GOBIN_DIR/minio")"
[ -x "$MINIO" ] || die "minio not found: make tools (or go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c)"
PGBIN=""
if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
	PGBIN="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
else
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/pg_ctl" ] && PGBIN="$d" && break
	done
fi
[ -n "$PGBIN" ] || die "PostgreSQL not found: make tools (or apt-get install postgresql)"
command -v aws >/dev/null || die "the aws CLI not found: make tools (or apt-get install awscli)"

OWN_WORKDIR=""
if [ -z "${WORKDIR:-}" ]; then
	WORKDIR="$(mktemp -d)"
	OWN_WORKDIR=1
fi
mkdir -p "$WORKDIR"
WORKDIR="$(cd "$WORKDIR" && pwd)"

# PostgreSQL refuses to run as root: as root, run it as postgres.
AS_PG=()
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || die "running as root needs the postgres user (apt-get install postgresql makes it)"
	AS_PG=(runuser -u postgres --)
fi

PIDS=()
MINIO_PID=""
PGDIR=""
cleanup() {
	trap - EXIT INT TERM
	say "stopping"
	for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ -n "$MINIO_PID" ]; then
		kill "$MINIO_PID" 2>/dev/null || true
		wait "$MINIO_PID" 2>/dev/null || true
	fi
	if [ -n "$PGDIR" ] && [ -f "$PGDIR/data/postmaster.pid" ]; then
		"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ -n "$PGDIR" ]; then rm -rf "$PGDIR"; fi
	if [ -n "$OWN_WORKDIR" ]; then rm -rf "$WORKDIR"; fi
	say "stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if [ -z "${REGISTRYD:-}" ]; then
	say "building registryd"
	(cd "$ROOT" && go build -o "$WORKDIR/registryd" ./registryd)
	REGISTRYD="$WORKDIR/registryd"
fi

# wait_for WHAT CMD...: runs CMD until it succeeds, up to 30 s.
wait_for() {
	local what="$1"
	shift
	for _ in $(seq 1 300); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	die "$what did not come up (logs in $WORKDIR)"
}

# The object store: MinIO over $WORKDIR/minio, and the bucket.
export AWS_ACCESS_KEY_ID=berthlocal AWS_SECRET_ACCESS_KEY=berthlocal-secret AWS_DEFAULT_REGION=us-east-1
mkdir -p "$WORKDIR/minio"
MINIO_ROOT_USER="$AWS_ACCESS_KEY_ID" MINIO_ROOT_PASSWORD="$AWS_SECRET_ACCESS_KEY" MINIO_BROWSER=off MINIO_UPDATE=off \
	HOME="$WORKDIR/minio" "$MINIO" server "$WORKDIR/minio/data" --quiet \
	--address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$((MINIO_PORT + 1))" >"$WORKDIR/minio.log" 2>&1 &
MINIO_PID=$!
wait_for MinIO curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/ready"
aws --endpoint-url "http://127.0.0.1:$MINIO_PORT" s3 mb s3://registry >/dev/null
say "MinIO on 127.0.0.1:$MINIO_PORT, bucket registry"

# The database: a PostgreSQL cluster in a directory of its own (as root,
# the postgres user's: it may not be able to enter WORKDIR).
PGDIR="$(mktemp -d "${TMPDIR:-/tmp}/berth-run-local-pg.XXXXXX")"
[ ${#AS_PG[@]} -eq 0 ] || chown postgres "$PGDIR"
"${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U berth -E UTF8 --locale=C >"$WORKDIR/initdb.log" 2>&1 ||
	die "initdb failed: $(cat "$WORKDIR/initdb.log")"
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
	-o "-p $PG_PORT -k $PGDIR -c listen_addresses=127.0.0.1" start >/dev/null
"$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U berth berth
DB="postgres://berth@127.0.0.1:$PG_PORT/berth?sslmode=disable"
say "PostgreSQL on 127.0.0.1:$PG_PORT, database berth"

# The replicas. The first makes the store (its identity goes into the
# database, which the others adopt it from), its keyring and the key of
# the ECR API's login tokens, which the others start with copies of.
n=0
ADDRS=()
for port in $REPLICA_PORTS; do
	n=$((n + 1))
	data="$WORKDIR/replica$n"
	mkdir -p "$data"
	if [ "$n" -gt 1 ]; then
		cp "$WORKDIR/replica1/keyring.json" "$WORKDIR/replica1/ecr-login-token.key" "$data/"
	fi
	"$REGISTRYD" serve --addr "127.0.0.1:$port" --data "$data" \
		--blob-store "s3://127.0.0.1:$MINIO_PORT/registry/berth?tls=false" --metadata "$DB" \
		>"$WORKDIR/replica$n.log" 2>&1 &
	PIDS+=($!)
	wait_for "replica $n" curl -fsS "http://127.0.0.1:$port/v2/"
	ADDRS+=("127.0.0.1:$port")
done

say "ready: replicas ${ADDRS[*]} (logs in $WORKDIR); Ctrl-C stops them"
say "put a load balancer in front of them (docs/examples/three-replicas/nginx.conf), or try: crane copy --insecure ... ${ADDRS[0]}/app:v1, then crane ls --insecure ${ADDRS[1]}/app"
wait
