#!/usr/bin/env bash
# install-tools.sh installs the external tools that the tests and the
# conformance run need. It is idempotent: a tool already present is left
# alone. Go tools go to $(go env GOPATH)/bin; Debian packages through apt.
set -euo pipefail

GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"

# Pinned versions (see docs/registryd.md).
CONFORMANCE_VERSION="v0.0.0-20260831232431-97274622c111"
CRANE_VERSION="v0.22.1"
ORAS_VERSION="v1.3.6"
REGCTL_VERSION="v0.11.7"
# The S3-compatible server the object-store backend's tests start
# (internal/miniotest); about four minutes to build on two cores, then
# cached in GOBIN.
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
fi

apt_missing=()
command -v skopeo >/dev/null 2>&1 || apt_missing+=(skopeo)
command -v fusermount3 >/dev/null 2>&1 || apt_missing+=(fuse3)
command -v softhsm2-util >/dev/null 2>&1 || apt_missing+=(softhsm2)
# The aws CLI (registryd/e2e drives the ECR API with it): machines here
# come with aws-cli v1 from pip; Debian's awscli where it is missing.
command -v aws >/dev/null 2>&1 || apt_missing+=(awscli)
# objcopy writes the cargo-auditable section of the scanning tests' Rust
# binary fixture (internal/scanfixture).
command -v objcopy >/dev/null 2>&1 || apt_missing+=(binutils)
# Headless Chromium: the console's browser tests (registryd/e2e) drive it
# through chromedp.
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
# PostgreSQL 15, the shared metadata database the scale-out tests start
# (internal/pgtest runs initdb and pg_ctl from /usr/lib/postgresql/*/bin).
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || apt_missing+=(postgresql)
if [ "${#apt_missing[@]}" -gt 0 ]; then
	echo "install-tools: apt-get install ${apt_missing[*]}"
	$SUDO apt-get update
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${apt_missing[@]}"
fi

# The OCI distribution-spec conformance suite. Its binary is named
# "conformance"; we keep that name and also link it as oci-conformance.
if [ ! -x "$GOBIN_DIR/conformance" ]; then
	echo "install-tools: go install conformance@$CONFORMANCE_VERSION"
	go install "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION"
fi

if [ ! -x "$GOBIN_DIR/crane" ]; then
	echo "install-tools: go install crane@$CRANE_VERSION"
	go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
fi

# The oras and regctl CLIs, which registryd/e2e drives as real clients.
if [ ! -x "$GOBIN_DIR/oras" ]; then
	echo "install-tools: go install oras@$ORAS_VERSION"
	(cd /tmp && go install "oras.land/oras/cmd/oras@$ORAS_VERSION")
fi
if [ ! -x "$GOBIN_DIR/regctl" ]; then
	echo "install-tools: go install regctl@$REGCTL_VERSION"
	(cd /tmp && go install "github.com/regclient/regclient/cmd/regctl@$REGCTL_VERSION")
fi

if [ ! -x "$GOBIN_DIR/minio" ]; then
	echo "install-tools: go install minio@$MINIO_VERSION"
	(cd /tmp && go install "github.com/minio/minio@$MINIO_VERSION")
fi

# The CNCF distribution registry, the peer `go run ./bench` measures
# Berth against (the harness installs the newest v3 itself when missing).
DISTRIBUTION_VERSION="v3.1.2"
if ! go version -m "$GOBIN_DIR/registry" 2>/dev/null | grep -q "distribution/distribution/v3.$DISTRIBUTION_VERSION"; then
	echo "install-tools: go install distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
	(cd /tmp && go install "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION")
fi

# zot, the other peer of `go run ./bench`, is not installed here: the Go
# module proxy this project uses does not serve its module
# (zotregistry.dev/zot/v2), and a CI machine cannot fetch its source. The
# quick run in CI measures distribution only and says zot was absent;
# README.md, "Running zot as a peer", builds it by hand for a full run.

echo "install-tools: done (skopeo: $(command -v skopeo || echo missing), aws: $(command -v aws || echo missing), conformance: $GOBIN_DIR/conformance, crane, oras, regctl: $GOBIN_DIR)"
