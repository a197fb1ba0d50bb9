package layertoc

// Facts about a file's bytes, found while the indexer streams past them.

import (
	"archive/tar"
	"bytes"
	"io"
)

var (
	elfMagic         = []byte("\x7fELF")
	goBuildInfoName  = []byte(".go.buildinfo")
	cargoAuditName   = []byte(".dep-v0")
	factsBufferSize  = 64 << 10
	longestFactsName = max(len(goBuildInfoName), len(cargoAuditName))
)

// wantFacts reports whether facts are recorded for e: an executable
// regular file long enough to hold the ELF magic.
func wantFacts(e *Entry) bool {
	return e.Type == tar.TypeReg && e.Mode&0o111 != 0 && e.Size >= int64(len(elfMagic))
}

// factFinder reads files for their facts, with one buffer for all.
type factFinder struct{ buf []byte }

// find reads the file r (a tar entry's data) and returns its facts: its
// first four bytes, and for an ELF file all of it, looking for the two
// section names. What it does not read, the tar reader skips.
func (f *factFinder) find(r io.Reader) (Facts, error) {
	if f.buf == nil {
		f.buf = make([]byte, factsBufferSize)
	}
	facts := FactsRecorded
	if _, err := io.ReadFull(r, f.buf[:len(elfMagic)]); err != nil {
		return 0, err
	}
	if !bytes.Equal(f.buf[:len(elfMagic)], elfMagic) {
		return facts, nil
	}
	facts |= FactELF
	// The last keep bytes of each read stay in front of the next, so that
	// a name cut in two by a read boundary is still found.
	keep := len(elfMagic)
	for {
		n, err := r.Read(f.buf[keep:])
		w := f.buf[:keep+n]
		if facts&FactGoBuildInfoName == 0 && bytes.Contains(w, goBuildInfoName) {
			facts |= FactGoBuildInfoName
		}
		if facts&FactCargoAuditName == 0 && bytes.Contains(w, cargoAuditName) {
			facts |= FactCargoAuditName
		}
		if err == io.EOF || facts&(FactGoBuildInfoName|FactCargoAuditName) == FactGoBuildInfoName|FactCargoAuditName {
			return facts, nil
		}
		if err != nil {
			return 0, err
		}
		keep = min(len(w), longestFactsName-1)
		copy(f.buf, w[len(w)-keep:])
	}
}
