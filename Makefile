# Berth: `make test` installs what the tests need and runs every test.
# See README.md. Targets are small so each can be run alone.

GOBIN := $(shell go env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

# Seconds each fuzz target runs in `make test` (`make fuzz` runs them 60 s).
FUZZTIME ?= 10s

.PHONY: test tools check unit engine-backends conformance conformance-replicas fuzz-smoke fuzz bench bench-smoke bench-quick

## test: everything CI runs.
test: tools check unit engine-backends bench-smoke bench-quick fuzz-smoke conformance

## tools: fuse3, skopeo, softhsm2, binutils, chromium, postgresql, awscli if missing (apt) and the OCI conformance tool, crane, oras, regctl, registry, MinIO (go install).
tools:
	bash .ci/install-tools.sh

## check: gofmt and go vet.
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...

## unit: every package's tests, against real servers on 127.0.0.1 and real mounts;
## then the key tests again with the PKCS#11 provider built in, against a SoftHSM2 token.
## BERTH_REQUIRE_ALL=1 (internal/testenv): a test whose prerequisite is missing (root,
## /dev/fuse, a tool, SoftHSM2) fails instead of skipping; `make tools` installs them first.
## Never -short here (nor in GOFLAGS): it would skip the long tests CI is meant to run.
unit: export BERTH_REQUIRE_ALL := 1
unit:
	@case " $$GOFLAGS " in *" -short "*|*" -test.short "*) echo "unit: GOFLAGS has -short, which skips tests CI must run" >&2; exit 1;; esac
	go test -timeout 25m ./...
	go test -tags pkcs11 -timeout 10m ./crypt/...
	go test -tags pkcs11 -timeout 10m -run 'HSM|PKCS11' ./engine/

## engine-backends: the engine's tests that open their engine through openTestEngine again,
## with the metadata in PostgreSQL and the blobs in MinIO (.ci/engine-backends.sh says which
## long ones it leaves out).
engine-backends:
	bash .ci/engine-backends.sh postgres-s3

## bench-smoke: each benchmark once on small data (the figures come from `make bench`).
bench-smoke:
	BERTH_BENCH_MIB=8 BERTH_GC_BENCH_BLOBS=20000 go test -run '^$$' -bench . -benchtime 1x -timeout 10m ./blob ./engine

## bench: the store benchmarks at full size (256 MiB blobs); see bench/RESULTS.md.
bench:
	go test -run '^$$' -bench . -benchtime 3x -timeout 60m ./blob ./engine

## bench-quick: the registry harness on small data against distribution (go run ./bench --quick).
bench-quick:
	go run ./bench --quick

## fuzz-smoke / fuzz: every fuzz target for FUZZTIME (fuzz: 60 s each).
fuzz-smoke:
	bash .ci/fuzz.sh $(FUZZTIME)
fuzz:
	bash .ci/fuzz.sh 60s

## conformance: the OCI distribution-spec conformance suite against a live registryd.
conformance:
	bash registryd/conformance.sh

## conformance-replicas: the same suite against three registryd over one MinIO and one
## PostgreSQL behind a round-robin proxy (docs/scale-out.md). unit runs it too (it is a test
## of registryd/e2e), so test does not run it again; this target runs it alone.
conformance-replicas: export BERTH_REQUIRE_ALL := 1
conformance-replicas:
	go test -count=1 -run 'TestConformanceThreeReplicas' -v ./registryd/e2e
