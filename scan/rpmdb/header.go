package rpmdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Header tags read here (rpmtag.h).
const (
	tagName      = 1000
	tagVersion   = 1001
	tagRelease   = 1002
	tagEpoch     = 1003
	tagLicense   = 1014
	tagArch      = 1022
	tagSourceRPM = 1044
)

// Header entry types (rpmtag.h).
const (
	typeInt32       = 4
	typeString      = 6
	typeStringArray = 8
	typeI18NString  = 9
)

// maxHeaderEntries and maxHeaderData are rpm's own bounds on a header
// (hdrblob limits).
const (
	maxHeaderEntries = 0xffff
	maxHeaderData    = 256 << 20
)

// ParseHeader parses an rpm header blob as the database stores it: a
// count of index entries and a data length (big-endian), the entries
// (tag, type, offset, count), then the data.
func ParseHeader(b []byte) (Package, error) {
	var p Package
	if len(b) < 8 {
		return p, fmt.Errorf("%w: header of %d bytes", ErrCorrupt, len(b))
	}
	il := int64(binary.BigEndian.Uint32(b[0:4]))
	dl := int64(binary.BigEndian.Uint32(b[4:8]))
	if il < 1 || il > maxHeaderEntries || dl > maxHeaderData {
		return p, fmt.Errorf("%w: header with %d entries and %d bytes of data", ErrCorrupt, il, dl)
	}
	dataStart := 8 + 16*il
	if int64(len(b)) < dataStart+dl {
		return p, fmt.Errorf("%w: header of %d bytes, shorter than its %d entries and %d bytes of data", ErrCorrupt, len(b), il, dl)
	}
	data := b[dataStart : dataStart+dl]
	for i := int64(0); i < il; i++ {
		e := b[8+16*i:]
		tag := binary.BigEndian.Uint32(e[0:4])
		typ := binary.BigEndian.Uint32(e[4:8])
		off := int64(int32(binary.BigEndian.Uint32(e[8:12])))
		count := binary.BigEndian.Uint32(e[12:16])
		if off < 0 || off > dl {
			return p, fmt.Errorf("%w: tag %d at offset %d outside %d bytes of data", ErrCorrupt, tag, off, dl)
		}
		switch tag {
		case tagName, tagVersion, tagRelease, tagArch, tagSourceRPM, tagLicense:
			s, err := headerString(data, off, typ)
			if err != nil {
				return p, fmt.Errorf("tag %d: %w", tag, err)
			}
			switch tag {
			case tagName:
				p.Name = s
			case tagVersion:
				p.Version = s
			case tagRelease:
				p.Release = s
			case tagArch:
				p.Arch = s
			case tagSourceRPM:
				p.SourceRPM = s
			case tagLicense:
				p.License = s
			}
		case tagEpoch:
			if typ != typeInt32 || count < 1 || off+4 > dl {
				return p, fmt.Errorf("%w: epoch of type %d", ErrCorrupt, typ)
			}
			p.Epoch = int(int32(binary.BigEndian.Uint32(data[off : off+4])))
			p.HasEpoch = true
		}
	}
	if p.Name == "" || p.Version == "" {
		return p, fmt.Errorf("%w: header without a name or a version", ErrCorrupt)
	}
	return p, nil
}

// headerString reads a NUL-terminated string (the first of an array).
func headerString(data []byte, off int64, typ uint32) (string, error) {
	switch typ {
	case typeString, typeStringArray, typeI18NString:
	default:
		return "", fmt.Errorf("%w: type %d where a string belongs", ErrCorrupt, typ)
	}
	end := bytes.IndexByte(data[off:], 0)
	if end < 0 {
		return "", fmt.Errorf("%w: unterminated string", ErrCorrupt)
	}
	return string(data[off : off+int64(end)]), nil
}
