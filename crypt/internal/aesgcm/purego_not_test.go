//go:build !purego

package aesgcm

// puregoBuild reports whether the tests are built with the purego tag, in
// which Go refuses to start in FIPS 140-3 mode.
const puregoBuild = false
