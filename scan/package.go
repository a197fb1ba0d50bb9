package scan

// Kind says where a package was found and how it was installed.
type Kind string

// Kinds of packages.
const (
	KindDeb      Kind = "deb"       // a dpkg package (Debian, Ubuntu, distroless)
	KindAPK      Kind = "apk"       // an apk package (Alpine, Wolfi)
	KindRPM      Kind = "rpm"       // an rpm package (Red Hat family, SUSE)
	KindGoModule Kind = "go-module" // a Go module compiled into a binary
	KindGoStdlib Kind = "go-stdlib" // the Go standard library of a binary
	KindPython   Kind = "python"    // an installed Python distribution
	KindNPM      Kind = "npm"       // an npm package
	KindMaven    Kind = "maven"     // a Maven artifact in a jar
	KindCargo    Kind = "cargo"     // a Rust crate recorded by cargo auditable
)

// Package is one installed package.
type Package struct {
	// Ecosystem is the OSV ecosystem of the package's advisories, with the
	// distribution's release for OS packages ("Debian:12", "Alpine:v3.19",
	// "AlmaLinux:9"; "Go", "PyPI", "npm", "Maven", "crates.io").
	Ecosystem string `json:"ecosystem"`
	// Name is the package's name as installed: the binary package for
	// OS packages, the module path for Go, "group:artifact" for Maven.
	Name string `json:"name"`
	// Version is the installed version: an rpm's is [epoch:]version-release.
	Version string `json:"version"`
	// SourceName is the source package an OS package was built from
	// (dpkg's Source, apk's origin, the rpm's source rpm), when it differs
	// from Name. Debian, Ubuntu and Alpine advisories name source packages.
	SourceName string `json:"sourceName,omitempty"`
	// SourceVersion is the source package's version when it differs from
	// Version (a Debian binNMU: "Source: glibc (2.36-9)").
	SourceVersion string `json:"sourceVersion,omitempty"`
	// Arch is the package's architecture, when the database records it.
	Arch string `json:"arch,omitempty"`
	// License is the license the package database records, as it spells
	// it (apk's L, rpm's LICENSE, a package.json's license, Python's
	// License header); empty where the format records none (dpkg).
	License string `json:"license,omitempty"`
	// Kind says how the package was installed.
	Kind Kind `json:"kind"`
	// Location is the path of the file the package was read from
	// ("/var/lib/dpkg/status", "/usr/local/bin/app", "/app/x.jar!/BOOT-INF/lib/y.jar").
	Location string `json:"location"`
}

// MatchNames returns the names the package's advisories may use, most
// specific first: the source package for Debian, Ubuntu and Alpine (whose
// advisories name source packages), the binary and then the source
// package for rpm (whose advisories name binary packages, some databases
// source ones), the name for everything else.
func (p Package) MatchNames() []string {
	switch p.Kind {
	case KindDeb, KindAPK:
		if p.SourceName != "" {
			return []string{p.SourceName}
		}
	case KindRPM:
		if p.SourceName != "" && p.SourceName != p.Name {
			return []string{p.Name, p.SourceName}
		}
	}
	return []string{p.Name}
}

// MatchVersion returns the version advisories are compared with: the
// source version of a Debian package built from a source of another
// version, the installed version otherwise.
func (p Package) MatchVersion() string {
	if p.Kind == KindDeb && p.SourceVersion != "" {
		return p.SourceVersion
	}
	return p.Version
}
