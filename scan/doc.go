// Package scan finds the software installed in an image and the known
// vulnerabilities of it. It is pure, like lifecycle evaluation: an image's
// merged filesystem (an fs.FS, which the engine builds from the layer
// tables) in, an Inventory out; an Inventory and a vulnerability database
// (OSV records) in, Findings out. It stores nothing and fetches nothing.
//
// The nouns:
//
//   - Inventory: what TakeInventory found in one filesystem: the OS (from
//     /etc/os-release), the Packages, and the Problems it met (a file it
//     could not read is noted, not fatal).
//   - Package: one installed thing, in the ecosystem its advisories use:
//     a Debian, Ubuntu, Alpine or RPM package (with the source package the
//     distribution's advisories name), a Go module or the Go standard
//     library compiled into a binary, a Python distribution, an npm
//     package, a Maven artifact in a jar, a Rust crate recorded by cargo
//     auditable.
//   - DB: the advisories, looked up by package (osv.PackageKey). MemDB is
//     the in-memory one; the engine keeps the imported records in its
//     store and serves them through the same interface.
//   - Finding: one vulnerability of one installed package, named by its
//     CVE where the advisory has one, with a severity in ECR's words
//     (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED).
//
// Versions are ordered by scan/version, records are read and validated by
// scan/osv, and RPM databases are read by scan/rpmdb.
package scan
