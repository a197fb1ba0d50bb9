// Package version orders package versions the way each ecosystem orders
// them: dpkg for Debian and Ubuntu, apk for Alpine, rpm for the Red Hat
// family and SUSE, PEP 440 for PyPI, Maven's ComparableVersion, and
// semantic versioning for Go, npm and crates.io.
//
// Ecosystems are named as the OSV schema names them ("Debian", "PyPI",
// "crates.io"...); a release suffix ("Debian:12", "Alpine:v3.19") is
// ignored, since a release does not change how versions compare.
//
// The orderings are those of github.com/google/osv-scalibr/semantic, the
// OSV project's own implementation of each ecosystem's version rules (the
// one osv-scanner evaluates OSV ranges with), wrapped here so that Berth
// names the ecosystems it supports and refuses the rest with a typed error,
// except apk's: semantic's apk order is not transitive and disagrees with
// apk-tools, so this package orders apk versions itself, as apk-tools 3
// does.
package version

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/osv-scalibr/semantic"
)

// ErrUnsupported is returned for an ecosystem whose versions this package
// cannot order.
var ErrUnsupported = errors.New("version: unsupported ecosystem")

// ErrInvalid is returned for a string that is not a version of its
// ecosystem.
var ErrInvalid = errors.New("version: invalid version")

// Version is a parsed version of one ecosystem.
type Version struct {
	ecosystem string
	raw       string
	v         semantic.Version // every ecosystem but apk's
	apk       *apkVersion      // Alpine, Chainguard, Wolfi
}

// String returns the version as it was given.
func (v Version) String() string { return v.raw }

// Ecosystem returns the ecosystem the version was parsed for, without a
// release suffix.
func (v Version) Ecosystem() string { return v.ecosystem }

// Compare orders v against w: -1 if v is older, 0 if they are the same
// version, +1 if v is newer. Both must be of one ecosystem; versions of
// different ecosystems order by ecosystem name, so that sorting a mixed
// list never fails.
func (v Version) Compare(w Version) int {
	if v.ecosystem != w.ecosystem {
		return strings.Compare(v.ecosystem, w.ecosystem)
	}
	if v.apk != nil && w.apk != nil {
		return v.apk.compare(*w.apk)
	}
	if v.v == nil || w.v == nil {
		switch {
		case v.v == nil && w.v == nil:
			return 0
		case v.v == nil:
			return -1
		default:
			return 1
		}
	}
	c, err := v.v.Compare(w.v)
	if err != nil {
		// Same ecosystem, so the same concrete type: semantic reports an
		// error only for versions of different types.
		return strings.Compare(v.raw, w.raw)
	}
	return sign(c)
}

// Base returns the ecosystem name without its release suffix: "Debian"
// for "Debian:12", "Alpine" for "Alpine:v3.19".
func Base(ecosystem string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	return base
}

// supported lists the ecosystems whose versions Parse orders, each with
// the ordering semantic applies to it.
var supported = map[string]bool{
	"AlmaLinux":   true, // rpm
	"Alpine":      true, // apk
	"Chainguard":  true, // apk
	"crates.io":   true, // semver
	"Debian":      true, // dpkg
	"Go":          true, // semver (Go module versions)
	"Mageia":      true, // rpm
	"Maven":       true, // ComparableVersion
	"npm":         true, // semver
	"openEuler":   true, // rpm
	"openSUSE":    true, // rpm
	"PyPI":        true, // PEP 440
	"Red Hat":     true, // rpm
	"Rocky Linux": true, // rpm
	"SUSE":        true, // rpm
	"Ubuntu":      true, // dpkg
	"Wolfi":       true, // apk
}

// Supported reports whether Parse orders versions of ecosystem.
func Supported(ecosystem string) bool { return supported[Base(ecosystem)] }

// Parse parses s as a version of ecosystem.
func Parse(ecosystem, s string) (Version, error) {
	base := Base(ecosystem)
	if !supported[base] {
		return Version{}, fmt.Errorf("%w: %q", ErrUnsupported, ecosystem)
	}
	if s == "" || len(s) > maxLen || strings.ContainsAny(s, " \t\r\n") {
		return Version{}, fmt.Errorf("%w: %s version %q", ErrInvalid, base, s)
	}
	switch base {
	case "Go":
		// Go module versions carry a "v" that OSV's Go ranges leave out.
		s = strings.TrimPrefix(s, "v")
	case "Alpine", "Chainguard", "Wolfi":
		// apk refuses what is not of its grammar, and so does this
		// package (an ill-formed version such as "A" or "1a0" has no place
		// in apk's order); semantic would order any string. apk's order is
		// apkVersion's, not semantic's (see apkVersion).
		a, ok := parseAPK(s)
		if !ok {
			return Version{}, fmt.Errorf("%w: %s version %q", ErrInvalid, base, s)
		}
		return Version{ecosystem: base, raw: s, apk: &a}, nil
	}
	v, err := semantic.Parse(s, base)
	if err != nil {
		return Version{}, fmt.Errorf("%w: %s version %q: %v", ErrInvalid, base, s, err)
	}
	return Version{ecosystem: base, raw: s, v: v}, nil
}

// maxLen bounds a version string: real versions are far shorter, and the
// bound keeps a hostile one from costing more than it should.
const maxLen = 256

// Compare parses a and b as versions of ecosystem and orders them: -1 if
// a is older, 0 if they are the same version, +1 if a is newer.
func Compare(ecosystem, a, b string) (int, error) {
	va, err := Parse(ecosystem, a)
	if err != nil {
		return 0, err
	}
	vb, err := Parse(ecosystem, b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}
