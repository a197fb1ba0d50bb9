// Package osv reads vulnerability records in the OSV schema
// (https://ossf.github.io/osv-schema/) as the OSV project publishes them:
// one JSON record per advisory, bundled per ecosystem in zip exports
// ("Debian/all.zip", "PyPI/all.zip"...).
//
// Parse validates a record against the schema's official Go binding
// (github.com/ossf/osv-schema/bindings/go: field types, enumerations,
// RFC 3339 timestamps) and against the rules the schema states in prose
// (an id, a modified time, a package with an ecosystem and a name for every
// affected entry that is not a git range, events of one kind each, at least
// one "introduced" per range, a repository for git ranges, CVSS vectors
// that parse, versions that parse in the ecosystem when Berth orders that
// ecosystem). It returns a Record: the part of the advisory that matching
// and reporting use, small enough to store and to load in bulk.
//
// Key names the package an affected entry is about in the form both the
// advisories and an inventory reduce to, so that the database can be
// indexed by it: a release suffix that only labels (":LTS", a Red Hat
// repository) is dropped and PyPI names are normalized as PEP 503 says.
package osv
