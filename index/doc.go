// Package index holds every piece of Berth metadata in pebble
// (github.com/cockroachdb/pebble/v2): repositories, tags and their reverse
// index, manifests (metadata and bytes, so a manifest GET reads no file),
// blob records, repository-to-blob links and their reverse index (the
// repositories that link one blob), referrers, upload sessions and
// creation templates.
//
// The key schema is defined in keys.go and described in docs/keys.md. Every
// state change is one Batch, committed atomically, with an fsync of the WAL
// when the caller acknowledges a client. The DB is safe for concurrent use;
// read-modify-write sequences are serialised by the engine, not here.
//
// index imports neither engine nor blob nor crypt: it sits below them and the
// engine converts between its types and these records.
//
// A full disk is an error (ErrNoSpace), not a crash: see ballast.go and the
// "Disk full" section of docs/keys.md for what pebble does on ENOSPC and how
// the index keeps it from happening.
package index
