package rpmdb

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// The SQLite file format (https://www.sqlite.org/fileformat.html), as far
// as reading one rowid table needs.

const sqliteMagic = "SQLite format 3\x00"

// Page types of b-tree pages.
const (
	sqliteInteriorTable = 5
	sqliteLeafTable     = 13
)

// maxSQLitePages bounds the pages one walk visits, against cycles.
const maxSQLitePages = 1 << 24

// sqliteDB reads pages of a database, preferring the write-ahead log's.
type sqliteDB struct {
	r        io.ReaderAt
	size     int64
	pageSize int64
	usable   int64
	pages    int64
	wal      map[uint32][]byte // page number -> committed page from the log
}

func openSQLite(r io.ReaderAt, size int64, wal io.ReaderAt, walSize int64) (*sqliteDB, error) {
	h, err := readAt(r, size, 0, 100)
	if err != nil {
		return nil, err
	}
	if string(h[:16]) != sqliteMagic {
		return nil, ErrFormat
	}
	ps := int64(binary.BigEndian.Uint16(h[16:18]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps > 65536 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("%w: sqlite page size %d", ErrCorrupt, ps)
	}
	reserved := int64(h[20])
	db := &sqliteDB{r: r, size: size, pageSize: ps, usable: ps - reserved, pages: size / ps}
	if db.usable < 480 {
		return nil, fmt.Errorf("%w: sqlite usable page size %d", ErrCorrupt, db.usable)
	}
	if wal != nil && walSize > 0 {
		if db.wal, err = readWAL(wal, walSize, ps); err != nil {
			return nil, err
		}
		for n := range db.wal {
			db.pages = max(db.pages, int64(n))
		}
	}
	return db, nil
}

// page returns page n (1-based).
func (db *sqliteDB) page(n uint32) ([]byte, error) {
	if p, ok := db.wal[n]; ok {
		return p, nil
	}
	if n < 1 || int64(n) > db.pages {
		return nil, fmt.Errorf("%w: sqlite page %d of %d", ErrCorrupt, n, db.pages)
	}
	return readAt(db.r, db.size, (int64(n)-1)*db.pageSize, int(db.pageSize))
}

// rows calls fn with the payload of every row of the table rooted at
// root, in rowid order.
func (db *sqliteDB) rows(root uint32, fn func(payload []byte) error) error {
	visited := 0
	var walk func(n uint32, depth int) error
	walk = func(n uint32, depth int) error {
		visited++
		if visited > maxSQLitePages || depth > 64 {
			return fmt.Errorf("%w: sqlite b-tree too deep or cyclic", ErrCorrupt)
		}
		pg, err := db.page(n)
		if err != nil {
			return err
		}
		hdr := 0
		if n == 1 {
			hdr = 100 // page 1 starts with the file header
		}
		if len(pg) < hdr+12 {
			return fmt.Errorf("%w: sqlite page %d too short", ErrCorrupt, n)
		}
		typ := pg[hdr]
		cells := int(binary.BigEndian.Uint16(pg[hdr+3 : hdr+5]))
		ptrs := hdr + 8
		if typ == sqliteInteriorTable {
			ptrs = hdr + 12
		}
		if ptrs+2*cells > len(pg) {
			return fmt.Errorf("%w: sqlite page %d: %d cells do not fit", ErrCorrupt, n, cells)
		}
		for i := 0; i < cells; i++ {
			off := int(binary.BigEndian.Uint16(pg[ptrs+2*i:]))
			if off >= len(pg) {
				return fmt.Errorf("%w: sqlite page %d: cell offset %d", ErrCorrupt, n, off)
			}
			cell := pg[off:]
			switch typ {
			case sqliteInteriorTable:
				if len(cell) < 4 {
					return fmt.Errorf("%w: sqlite page %d: short cell", ErrCorrupt, n)
				}
				if err := walk(binary.BigEndian.Uint32(cell[:4]), depth+1); err != nil {
					return err
				}
			case sqliteLeafTable:
				payload, err := db.leafPayload(cell, pg, n)
				if err != nil {
					return err
				}
				if err := fn(payload); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: sqlite page %d of type %d in a table b-tree", ErrCorrupt, n, typ)
			}
		}
		if typ == sqliteInteriorTable {
			return walk(binary.BigEndian.Uint32(pg[hdr+8:hdr+12]), depth+1)
		}
		return nil
	}
	return walk(root, 0)
}

// leafPayload returns a table leaf cell's whole payload, following its
// overflow pages.
func (db *sqliteDB) leafPayload(cell, pg []byte, n uint32) ([]byte, error) {
	p, k := varint(cell)
	if k == 0 {
		return nil, fmt.Errorf("%w: sqlite page %d: bad payload size", ErrCorrupt, n)
	}
	_, k2 := varint(cell[k:]) // the rowid
	if k2 == 0 {
		return nil, fmt.Errorf("%w: sqlite page %d: bad rowid", ErrCorrupt, n)
	}
	cell = cell[k+k2:]
	size := int64(p)
	// A payload cannot be larger than the pages there are to hold it:
	// checked before anything is allocated for it.
	if size < 0 || size > maxHeaderData || size > db.pages*db.pageSize {
		return nil, fmt.Errorf("%w: sqlite payload of %d bytes", ErrCorrupt, p)
	}
	u := db.usable
	x := u - 35
	local := size
	if size > x {
		m := ((u-12)*32)/255 - 23
		local = m + (size-m)%(u-4)
		if local > x {
			local = m
		}
	}
	if int64(len(cell)) < local {
		return nil, fmt.Errorf("%w: sqlite page %d: payload past the page", ErrCorrupt, n)
	}
	out := make([]byte, 0, size)
	out = append(out, cell[:local]...)
	if local == size {
		return out, nil
	}
	if int64(len(cell)) < local+4 {
		return nil, fmt.Errorf("%w: sqlite page %d: no overflow pointer", ErrCorrupt, n)
	}
	next := binary.BigEndian.Uint32(cell[local : local+4])
	for hops := 0; int64(len(out)) < size; hops++ {
		if next == 0 || hops > maxSQLitePages {
			return nil, fmt.Errorf("%w: sqlite overflow chain ends early", ErrCorrupt)
		}
		op, err := db.page(next)
		if err != nil {
			return nil, err
		}
		take := min(u-4, size-int64(len(out)))
		if int64(len(op)) < 4+take {
			return nil, fmt.Errorf("%w: sqlite overflow page %d too short", ErrCorrupt, next)
		}
		out = append(out, op[4:4+take]...)
		next = binary.BigEndian.Uint32(op[:4])
	}
	return out, nil
}

// varint decodes an SQLite variable-length integer: up to nine bytes, the
// first eight giving seven bits each, the ninth eight. It returns the
// value and the bytes used, 0 if b is too short.
func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0
		}
		if i == 8 {
			return v<<8 | uint64(b[i]), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// recordColumns decodes an SQLite record into its columns: integers as
// int64, text as string, blobs as []byte, NULL as nil. Floats are not
// needed here and are returned as nil.
func recordColumns(rec []byte) ([]any, error) {
	hlen, k := varint(rec)
	if k == 0 || hlen < uint64(k) || hlen > uint64(len(rec)) {
		return nil, fmt.Errorf("%w: sqlite record header", ErrCorrupt)
	}
	var types []uint64
	for pos := k; pos < int(hlen); {
		t, n := varint(rec[pos:int(hlen)])
		if n == 0 {
			return nil, fmt.Errorf("%w: sqlite record header", ErrCorrupt)
		}
		types = append(types, t)
		pos += n
	}
	body := rec[hlen:]
	var out []any
	for _, t := range types {
		var n uint64
		switch {
		case t == 0, t == 8, t == 9:
			n = 0
		case t >= 1 && t <= 4:
			n = t
		case t == 5:
			n = 6
		case t == 6, t == 7:
			n = 8
		case t >= 12:
			n = (t - 12) / 2
		default:
			return nil, fmt.Errorf("%w: sqlite serial type %d", ErrCorrupt, t)
		}
		if n > uint64(len(body)) {
			return nil, fmt.Errorf("%w: sqlite record shorter than its header says", ErrCorrupt)
		}
		v := body[:n]
		body = body[n:]
		switch {
		case t == 0, t == 7:
			out = append(out, nil)
		case t == 8:
			out = append(out, int64(0))
		case t == 9:
			out = append(out, int64(1))
		case t <= 6:
			var x int64
			for _, c := range v {
				x = x<<8 | int64(c)
			}
			if len(v) > 0 && len(v) < 8 && v[0]&0x80 != 0 { // sign-extend
				x -= 1 << (8 * uint(len(v)))
			}
			out = append(out, x)
		case t%2 == 0:
			out = append(out, v)
		default:
			out = append(out, string(v))
		}
	}
	return out, nil
}

// sqliteBlobs returns the header blobs of rpm's Packages table.
func sqliteBlobs(r io.ReaderAt, size int64, wal io.ReaderAt, walSize int64) ([][]byte, error) {
	db, err := openSQLite(r, size, wal, walSize)
	if err != nil {
		return nil, err
	}
	var root uint32
	err = db.rows(1, func(payload []byte) error {
		cols, err := recordColumns(payload)
		if err != nil {
			return err
		}
		// sqlite_schema: type, name, tbl_name, rootpage, sql.
		if len(cols) < 4 {
			return nil
		}
		typ, _ := cols[0].(string)
		name, _ := cols[1].(string)
		rp, _ := cols[3].(int64)
		if typ == "table" && strings.EqualFold(name, "Packages") && rp > 0 && rp <= 1<<31 {
			root = uint32(rp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if root == 0 {
		return nil, fmt.Errorf("%w: sqlite database without a Packages table", ErrFormat)
	}
	var blobs [][]byte
	err = db.rows(root, func(payload []byte) error {
		cols, err := recordColumns(payload)
		if err != nil {
			return err
		}
		// Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL): hnum
		// is the rowid, stored as NULL in the record.
		if len(cols) < 2 {
			return fmt.Errorf("%w: Packages row with %d columns", ErrCorrupt, len(cols))
		}
		b, ok := cols[1].([]byte)
		if !ok {
			return fmt.Errorf("%w: Packages row without a blob", ErrCorrupt)
		}
		blobs = append(blobs, b)
		return nil
	})
	return blobs, err
}

// WAL format constants.
const (
	walMagicLE   = 0x377f0682
	walMagicBE   = 0x377f0683
	walHeader    = 32
	walFrameHead = 24
)

// readWAL returns the pages of a write-ahead log's committed frames: the
// frames of the log's current generation (salts matching the header) with
// valid cumulative checksums, up to the last commit frame.
func readWAL(r io.ReaderAt, size, pageSize int64) (map[uint32][]byte, error) {
	if size < walHeader {
		return nil, nil // an empty log holds nothing
	}
	h, err := readAt(r, size, 0, walHeader)
	if err != nil {
		return nil, err
	}
	magic := binary.BigEndian.Uint32(h[0:4])
	if magic != walMagicLE && magic != walMagicBE {
		return nil, fmt.Errorf("%w: sqlite write-ahead log magic %#x", ErrCorrupt, magic)
	}
	if int64(binary.BigEndian.Uint32(h[8:12])) != pageSize {
		return nil, fmt.Errorf("%w: sqlite write-ahead log page size differs from the database's", ErrCorrupt)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if magic == walMagicBE {
		order = binary.BigEndian
	}
	s0, s1 := walChecksum(order, h[:24], 0, 0)
	if s0 != binary.BigEndian.Uint32(h[24:28]) || s1 != binary.BigEndian.Uint32(h[28:32]) {
		return nil, nil // a log whose header fails its checksum is not in use
	}
	salt := h[16:24]
	committed := map[uint32][]byte{}
	pending := map[uint32][]byte{}
	for off := int64(walHeader); off+walFrameHead+pageSize <= size; off += walFrameHead + pageSize {
		fh, err := readAt(r, size, off, walFrameHead)
		if err != nil {
			return nil, err
		}
		if string(fh[8:16]) != string(salt) {
			break
		}
		pg, err := readAt(r, size, off+walFrameHead, int(pageSize))
		if err != nil {
			return nil, err
		}
		s0, s1 = walChecksum(order, fh[:8], s0, s1)
		s0, s1 = walChecksum(order, pg, s0, s1)
		if s0 != binary.BigEndian.Uint32(fh[16:20]) || s1 != binary.BigEndian.Uint32(fh[20:24]) {
			break
		}
		pending[binary.BigEndian.Uint32(fh[0:4])] = pg
		if binary.BigEndian.Uint32(fh[4:8]) != 0 { // a commit frame
			for n, p := range pending {
				committed[n] = p
			}
			clear(pending)
		}
	}
	return committed, nil
}

// walChecksum is SQLite's write-ahead log checksum over b (a multiple of
// eight bytes), continuing from s0 and s1.
func walChecksum(order binary.ByteOrder, b []byte, s0, s1 uint32) (uint32, uint32) {
	for i := 0; i+8 <= len(b); i += 8 {
		s0 += order.Uint32(b[i:]) + s1
		s1 += order.Uint32(b[i+4:]) + s0
	}
	return s0, s1
}
