// Package layertoc builds and decodes layer tables of contents: what a
// layer's tar holds and where each file's bytes start in the uncompressed
// tar. The engine builds one once per layer and keeps it in the index
// (index/toc.go); the FUSE view (package fuse) merges the tables of an
// image's layers into its root filesystem and reads files with ReadAt at
// their offsets. Names inside layers are untrusted: Scan refuses (and
// reports) entries that would leave the root. docs/fuse.md has the design.
//
// Encoding (compact, one pebble value per chunk):
//
//	chunk 0:  zstd( version=2 | str data digest | uvarint tar size |
//	                uvarint entries | uvarint refused )
//	chunk n:  zstd( entry... )  about 256 KiB of entries before compression
//	entry:    uvarint shared-name-prefix | str name suffix | type byte |
//	          uvarint mode | uvarint uid | uvarint gid | varint size |
//	          uvarint offset delta | varint mtime seconds | uvarint nanos |
//	          str linkname | uvarint devmajor | uvarint devminor |
//	          facts byte (version 2)
//
// Name prefixes and offset deltas restart at the beginning of each chunk,
// so every chunk decodes on its own. Version 1 tables (no facts byte)
// still decode, with no facts recorded: their readers open the files.
package layertoc

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Entry is one accepted entry of a layer's tar.
type Entry struct {
	// Name is the cleaned relative path ("." for the root directory): no
	// leading "/" or "./", no ".." component.
	Name string
	// Type is a tar type flag: tar.TypeReg, TypeLink, TypeSymlink,
	// TypeChar, TypeBlock, TypeDir or TypeFifo.
	Type byte
	// Linkname is a symlink's target as the layer has it (never leaving
	// the root when relative), or a hard link's cleaned target path.
	Linkname string
	// Mode holds the permission bits with setuid, setgid and sticky (07777).
	Mode uint32
	// UID and GID are the numeric owner.
	UID, GID uint32
	// Size is a regular file's length.
	Size int64
	// Offset is where a regular file's bytes start in the uncompressed tar.
	Offset int64
	// ModTime is the modification time.
	ModTime time.Time
	// Devmajor and Devminor are a device's numbers.
	Devmajor, Devminor uint32
	// Facts are what indexing learned from an executable regular file's
	// bytes (zero: nothing recorded).
	Facts Facts
}

// Facts are what the indexer learned from a regular file's bytes as it
// streamed past them, so that a reader that only wants to know whether a
// file is a binary of interest (a scan's inventory) need not open it.
// They are recorded for executable regular files (any execute bit) of at
// least four bytes; zero means nothing was recorded (another file, or a
// table written before facts were), and the reader must open the file.
type Facts uint8

const (
	// FactsRecorded: the facts below were looked for in this file.
	FactsRecorded Facts = 1 << iota
	// FactELF: the file starts with the ELF magic.
	FactELF
	// FactGoBuildInfoName: an ELF file that holds the bytes
	// ".go.buildinfo" somewhere (a section of that name needs them in the
	// section name table).
	FactGoBuildInfoName
	// FactCargoAuditName: an ELF file that holds the bytes ".dep-v0" (the
	// section cargo auditable writes).
	FactCargoAuditName

	factsKnown = FactsRecorded | FactELF | FactGoBuildInfoName | FactCargoAuditName
)

// Recorded reports whether the indexer looked at the file's bytes.
func (f Facts) Recorded() bool { return f&FactsRecorded != 0 }

// TOC is the table of contents of one layer.
type TOC struct {
	// Layer is the layer's digest (compressed or not).
	Layer digest.Digest
	// Data is the blob holding the uncompressed tar: Layer itself for an
	// uncompressed layer, else its seekable derivative.
	Data digest.Digest
	// TarSize is the length of the uncompressed tar.
	TarSize int64
	// Entries are the accepted entries in tar order.
	Entries []Entry
	// Refused counts entries refused (and logged) while indexing.
	Refused int
}

// Limits bound the indexing of untrusted layers.
type Limits struct {
	// MaxEntries bounds the entries of one layer; a layer with more is
	// refused with ErrLayerRefused.
	MaxEntries int
	// MaxNameLen bounds an entry's path and link target; a longer one is
	// refused (the entry, not the layer).
	MaxNameLen int
}
