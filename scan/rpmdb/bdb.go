package rpmdb

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The Berkeley DB hash access method's on-disk pages (db_page.h,
// dbmeta.h), as far as listing a hash database's values needs. rpm's
// Packages database maps a 32-bit install instance to a header blob; the
// blobs are larger than a page and sit in overflow chains.

const bdbHashMagic = 0x061561

// Page types.
const (
	bdbHashUnsorted = 2
	bdbOverflow     = 7
	bdbHashMeta     = 8
	bdbHash         = 13
)

// Hash item types.
const (
	bdbKeyData = 1
	bdbOffPage = 3
)

// bdbPageHeader is the size of the generic page header: lsn (8), pgno,
// prev_pgno, next_pgno (4 each), entries, hf_offset (2 each), level,
// type (1 each).
const bdbPageHeader = 26

func bdbBlobs(r io.ReaderAt, size int64) ([][]byte, error) {
	meta, err := readAt(r, size, 0, 512)
	if err != nil {
		return nil, err
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if binary.LittleEndian.Uint32(meta[12:16]) != bdbHashMagic {
		order = binary.BigEndian
	}
	if order.Uint32(meta[12:16]) != bdbHashMagic {
		return nil, ErrFormat
	}
	if meta[25] != bdbHashMeta {
		return nil, fmt.Errorf("%w: berkeley db metadata page of type %d", ErrCorrupt, meta[25])
	}
	if meta[24] != 0 {
		return nil, fmt.Errorf("%w: encrypted berkeley db", ErrFormat)
	}
	pageSize := int64(order.Uint32(meta[20:24]))
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("%w: berkeley db page size %d", ErrCorrupt, pageSize)
	}
	last := int64(order.Uint32(meta[32:36]))
	if (last+1)*pageSize > size {
		return nil, fmt.Errorf("%w: berkeley db of %d pages in %d bytes", ErrCorrupt, last+1, size)
	}
	page := func(n int64) ([]byte, error) {
		if n < 1 || n > last {
			return nil, fmt.Errorf("%w: berkeley db page %d of %d", ErrCorrupt, n, last)
		}
		return readAt(r, size, n*pageSize, int(pageSize))
	}
	overflow := func(first uint32, total uint32) ([]byte, error) {
		if int64(total) > maxHeaderData || int64(total) > size {
			return nil, fmt.Errorf("%w: berkeley db value of %d bytes", ErrCorrupt, total)
		}
		out := make([]byte, 0, total)
		n := int64(first)
		for hops := int64(0); uint32(len(out)) < total; hops++ {
			if n == 0 || hops > last {
				return nil, fmt.Errorf("%w: berkeley db overflow chain ends early", ErrCorrupt)
			}
			pg, err := page(n)
			if err != nil {
				return nil, err
			}
			if pg[25] != bdbOverflow {
				return nil, fmt.Errorf("%w: berkeley db page %d of type %d in an overflow chain", ErrCorrupt, n, pg[25])
			}
			l := int64(order.Uint16(pg[22:24])) // hf_offset holds the bytes on the page
			if bdbPageHeader+l > pageSize {
				return nil, fmt.Errorf("%w: berkeley db overflow page %d holds %d bytes", ErrCorrupt, n, l)
			}
			out = append(out, pg[bdbPageHeader:bdbPageHeader+l]...)
			n = int64(order.Uint32(pg[16:20]))
		}
		if uint32(len(out)) != total {
			return nil, fmt.Errorf("%w: berkeley db value of %d bytes where %d were said", ErrCorrupt, len(out), total)
		}
		return out, nil
	}
	var blobs [][]byte
	for n := int64(1); n <= last; n++ {
		pg, err := page(n)
		if err != nil {
			return nil, err
		}
		if pg[25] != bdbHash && pg[25] != bdbHashUnsorted {
			continue
		}
		entries := int64(order.Uint16(pg[20:22]))
		if bdbPageHeader+2*entries > pageSize {
			return nil, fmt.Errorf("%w: berkeley db page %d: %d entries do not fit", ErrCorrupt, n, entries)
		}
		offsets := make([]int64, entries)
		for i := range offsets {
			offsets[i] = int64(order.Uint16(pg[bdbPageHeader+2*i:]))
			if offsets[i] < bdbPageHeader || offsets[i] >= pageSize {
				return nil, fmt.Errorf("%w: berkeley db page %d: item offset %d", ErrCorrupt, n, offsets[i])
			}
		}
		// Items sit from the page's end backwards: item i ends where item
		// i-1 starts. They alternate key, value.
		end := func(i int) int64 {
			if i == 0 {
				return pageSize
			}
			return offsets[i-1]
		}
		for i := 0; i+1 < len(offsets); i += 2 {
			key := pg[offsets[i]:max(offsets[i], end(i))]
			val := pg[offsets[i+1]:max(offsets[i+1], end(i+1))]
			if len(key) < 1 || len(val) < 1 {
				return nil, fmt.Errorf("%w: berkeley db page %d: empty item", ErrCorrupt, n)
			}
			// rpm keeps the last instance number under key 0: not a package.
			if key[0] == bdbKeyData && len(key) == 5 && order.Uint32(key[1:5]) == 0 {
				continue
			}
			switch val[0] {
			case bdbOffPage:
				if len(val) < 12 {
					return nil, fmt.Errorf("%w: berkeley db page %d: short off-page item", ErrCorrupt, n)
				}
				b, err := overflow(order.Uint32(val[4:8]), order.Uint32(val[8:12]))
				if err != nil {
					return nil, err
				}
				blobs = append(blobs, b)
			case bdbKeyData:
				blobs = append(blobs, append([]byte(nil), val[1:]...))
			default:
				return nil, fmt.Errorf("%w: berkeley db page %d: item type %d", ErrCorrupt, n, val[0])
			}
		}
	}
	return blobs, nil
}
