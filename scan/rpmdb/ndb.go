package rpmdb

import (
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"io"
)

// rpm's NDB package database (lib/backend/ndb/rpmpkg.c): a header, a
// table of slots (one per package: its index and where its blob lies, in
// 16-byte blocks), then the blobs, each between a head and a tail.
// Everything is little-endian.

const (
	ndbMagic       = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic   = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic   = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbVersion     = 0
	ndbHeaderSize  = 32
	ndbSlotSize    = 16
	ndbPageSize    = 4096
	ndbBlockSize   = 16
	ndbBlobHeadLen = 16
	ndbBlobTailLen = 12
	ndbTailMagic   = 'B' | 'l'<<8 | 'b'<<16 | 'E'<<24
	ndbMaxSlotPage = 1 << 16
)

func ndbBlobs(r io.ReaderAt, size int64) ([][]byte, error) {
	h, err := readAt(r, size, 0, ndbHeaderSize)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if le.Uint32(h[0:4]) != ndbMagic {
		return nil, ErrFormat
	}
	if v := le.Uint32(h[4:8]); v != ndbVersion {
		return nil, fmt.Errorf("%w: ndb version %d", ErrFormat, v)
	}
	slotPages := int64(le.Uint32(h[12:16]))
	if slotPages < 1 || slotPages > ndbMaxSlotPage || slotPages*ndbPageSize > size {
		return nil, fmt.Errorf("%w: ndb with %d slot pages in %d bytes", ErrCorrupt, slotPages, size)
	}
	slots, err := readAt(r, size, ndbHeaderSize, int(slotPages*ndbPageSize-ndbHeaderSize))
	if err != nil {
		return nil, err
	}
	var blobs [][]byte
	for off := 0; off+ndbSlotSize <= len(slots); off += ndbSlotSize {
		s := slots[off : off+ndbSlotSize]
		if le.Uint32(s[0:4]) != ndbSlotMagic {
			return nil, fmt.Errorf("%w: ndb slot %d without its magic", ErrCorrupt, off/ndbSlotSize)
		}
		pkgIdx, blkOff, blkCnt := le.Uint32(s[4:8]), int64(le.Uint32(s[8:12]))*ndbBlockSize, int64(le.Uint32(s[12:16]))*ndbBlockSize
		if pkgIdx == 0 || blkOff == 0 {
			continue // a free slot
		}
		if blkCnt < ndbBlobHeadLen+ndbBlobTailLen || blkOff+blkCnt > size {
			return nil, fmt.Errorf("%w: ndb slot of package %d outside the file", ErrCorrupt, pkgIdx)
		}
		head, err := readAt(r, size, blkOff, ndbBlobHeadLen)
		if err != nil {
			return nil, err
		}
		if le.Uint32(head[0:4]) != ndbBlobMagic || le.Uint32(head[4:8]) != pkgIdx {
			return nil, fmt.Errorf("%w: ndb blob of package %d without its head", ErrCorrupt, pkgIdx)
		}
		n := int64(le.Uint32(head[12:16]))
		if n > maxHeaderData || ndbBlobHeadLen+n+ndbBlobTailLen > blkCnt {
			return nil, fmt.Errorf("%w: ndb blob of %d bytes in %d", ErrCorrupt, n, blkCnt)
		}
		// The whole extent: head, blob, padding, tail (adler32, length, magic).
		ext, err := readAt(r, size, blkOff, int(blkCnt))
		if err != nil {
			return nil, err
		}
		tail := ext[len(ext)-ndbBlobTailLen:]
		if le.Uint32(tail[8:12]) != ndbTailMagic || int64(le.Uint32(tail[4:8])) != n {
			return nil, fmt.Errorf("%w: ndb blob of package %d without its tail", ErrCorrupt, pkgIdx)
		}
		if adler32.Checksum(ext[:len(ext)-ndbBlobTailLen]) != le.Uint32(tail[0:4]) {
			return nil, fmt.Errorf("%w: ndb blob of package %d fails its checksum", ErrCorrupt, pkgIdx)
		}
		blobs = append(blobs, ext[ndbBlobHeadLen:ndbBlobHeadLen+n])
	}
	return blobs, nil
}
