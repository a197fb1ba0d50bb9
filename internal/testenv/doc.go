// Package testenv is the one policy for tests that need something the
// machine may lack (root, /dev/fuse, a tool, SoftHSM2, a CPU feature): on a
// developer's machine such a test skips, saying what to install; under CI
// (CI=true) or with BERTH_REQUIRE_ALL=1 it fails, so that nothing a CI run
// is meant to prove is skipped in silence.
//
// It imports nothing of Berth, so any package's tests may use it.
package testenv
