package rpmdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrCorrupt is returned for a database or header that does not hold
// together.
var ErrCorrupt = errors.New("rpmdb: corrupt database")

// ErrFormat is returned for a file that is none of the formats read here.
var ErrFormat = errors.New("rpmdb: not an rpm database")

// Package is one installed package.
type Package struct {
	Name    string
	Version string
	Release string
	// Epoch is the package's epoch; HasEpoch says whether it has one.
	Epoch    int
	HasEpoch bool
	Arch     string
	// SourceRPM is the file name of the source rpm ("openssl-3.0.7-16.el9.src.rpm").
	SourceRPM string
	License   string
}

// EVR returns the package's [epoch:]version-release, as advisories write it.
func (p Package) EVR() string {
	vr := p.Version + "-" + p.Release
	if p.HasEpoch && p.Epoch > 0 {
		return strconv.Itoa(p.Epoch) + ":" + vr
	}
	return vr
}

// SourceName returns the name of the package's source rpm:
// "openssl-3.0.7-16.el9.src.rpm" is "openssl".
func (p Package) SourceName() string {
	s := strings.TrimSuffix(strings.TrimSuffix(p.SourceRPM, ".rpm"), ".src")
	s = strings.TrimSuffix(s, ".nosrc")
	for range 2 { // drop the release, then the version
		i := strings.LastIndexByte(s, '-')
		if i <= 0 {
			return ""
		}
		s = s[:i]
	}
	return s
}

// Format is a database format.
type Format string

// Formats.
const (
	SQLite     Format = "sqlite"
	BerkeleyDB Format = "bdb"
	NDB        Format = "ndb"
)

// Detect returns the format of the database in r.
func Detect(r io.ReaderAt, size int64) (Format, error) {
	var head [16]byte
	if size < int64(len(head)) {
		return "", ErrFormat
	}
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return "", err
	}
	switch {
	case bytes.Equal(head[:], []byte(sqliteMagic)):
		return SQLite, nil
	case binary.LittleEndian.Uint32(head[0:4]) == ndbMagic:
		return NDB, nil
	case binary.LittleEndian.Uint32(head[12:16]) == bdbHashMagic || binary.BigEndian.Uint32(head[12:16]) == bdbHashMagic:
		return BerkeleyDB, nil
	}
	return "", ErrFormat
}

// Read lists the packages of the database in r, whatever its format.
func Read(r io.ReaderAt, size int64) ([]Package, error) {
	return ReadWithWAL(r, size, nil, 0)
}

// ReadWithWAL is Read with the SQLite write-ahead log beside the
// database (rpmdb.sqlite-wal), whose committed pages take precedence. A
// nil or empty log is none.
func ReadWithWAL(r io.ReaderAt, size int64, wal io.ReaderAt, walSize int64) ([]Package, error) {
	f, err := Detect(r, size)
	if err != nil {
		return nil, err
	}
	var blobs [][]byte
	switch f {
	case SQLite:
		blobs, err = sqliteBlobs(r, size, wal, walSize)
	case BerkeleyDB:
		blobs, err = bdbBlobs(r, size)
	case NDB:
		blobs, err = ndbBlobs(r, size)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Package, 0, len(blobs))
	for i, b := range blobs {
		p, err := ParseHeader(b)
		if err != nil {
			return nil, fmt.Errorf("%s database, header %d: %w", f, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// readAt reads n bytes at off, checking the bounds against size.
func readAt(r io.ReaderAt, size, off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off > size || int64(n) > size-off {
		return nil, fmt.Errorf("%w: read of %d bytes at %d past the end (%d)", ErrCorrupt, n, off, size)
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, err
	}
	return buf, nil
}
