package engine

// Layer tables of contents: what a layer's tar holds and where each
// file's bytes start in the uncompressed tar, built once per layer and
// kept in the index (index/toc.go). The FUSE view (package fuse) merges
// the tables of an image's layers into its root filesystem and reads
// files with ReadAt at their offsets. docs/fuse.md has the design.
//
// Encoding (compact, one pebble value per chunk):
//
//	chunk 0:  zstd( version=1 | str data digest | uvarint tar size |
//	                uvarint entries | uvarint refused )
//	chunk n:  zstd( entry... )  about 256 KiB of entries before compression
//	entry:    uvarint shared-name-prefix | str name suffix | type byte |
//	          uvarint mode | uvarint uid | uvarint gid | varint size |
//	          uvarint offset delta | varint mtime seconds | uvarint nanos |
//	          str linkname | uvarint devmajor | uvarint devminor
//
// Name prefixes and offset deltas restart at the beginning of each chunk,
// so every chunk decodes on its own.

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// ErrLayerRefused is returned (wrapped, with the layer and the reason)
// when a layer cannot be indexed: malformed or truncated tar, a broken
// compressed stream, or more entries than LayerOptions.MaxEntries.
var ErrLayerRefused = errors.New("engine: layer refused")

// Entry types of a TOCEntry (the tar type flags the view supports).
const (
	TOCReg     = tar.TypeReg
	TOCLink    = tar.TypeLink
	TOCSymlink = tar.TypeSymlink
	TOCChar    = tar.TypeChar
	TOCBlock   = tar.TypeBlock
	TOCDir     = tar.TypeDir
	TOCFifo    = tar.TypeFifo
)

// TOCEntry is one accepted entry of a layer's tar.
type TOCEntry struct {
	// Name is the cleaned relative path ("." for the root directory): no
	// leading "/" or "./", no ".." component.
	Name string
	// Type is one of the TOC* type flags.
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
}

// LayerTOC is the table of contents of one layer.
type LayerTOC struct {
	// Layer is the layer's digest (compressed or not).
	Layer digest.Digest
	// Data is the blob holding the uncompressed tar: Layer itself for an
	// uncompressed layer, else its seekable derivative.
	Data digest.Digest
	// TarSize is the length of the uncompressed tar.
	TarSize int64
	// Entries are the accepted entries in tar order.
	Entries []TOCEntry
	// Refused counts entries refused (and logged) while indexing.
	Refused int
}

// LayerOptions bound the indexing of untrusted layers.
type LayerOptions struct {
	// MaxEntries bounds the entries of one layer; a layer with more is
	// refused with ErrLayerRefused. Default 1,000,000.
	MaxEntries int
	// MaxNameLen bounds an entry's path and link target. Default 4096
	// (PATH_MAX); a longer one is refused (the entry, not the layer).
	MaxNameLen int
}

func (o *LayerOptions) withDefaults() LayerOptions {
	var r LayerOptions
	if o != nil {
		r = *o
	}
	if r.MaxEntries <= 0 {
		r.MaxEntries = 1_000_000
	}
	if r.MaxNameLen <= 0 {
		r.MaxNameLen = 4096
	}
	return r
}

const (
	tocVersion   = 1
	tocChunkSize = 256 << 10
	nameMax      = 255 // NAME_MAX: one path component
	maxLogged    = 20  // refusal log lines per layer, then a summary
)

var (
	tocEncOnce sync.Once
	tocEnc     *zstd.Encoder
	tocDec     *zstd.Decoder
)

func tocCodec() (*zstd.Encoder, *zstd.Decoder) {
	tocEncOnce.Do(func() {
		tocEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		tocDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
	})
	return tocEnc, tocDec
}

// tocBuilder accumulates accepted entries into encoded chunks, so that
// building holds the compact form only.
type tocBuilder struct {
	chunks  [][]byte
	cur     []byte
	prevNm  string
	prevOff int64
	n       int
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (b *tocBuilder) add(e *TOCEntry) {
	shared := 0
	for shared < len(e.Name) && shared < len(b.prevNm) && e.Name[shared] == b.prevNm[shared] {
		shared++
	}
	c := b.cur
	c = binary.AppendUvarint(c, uint64(shared))
	c = appendStr(c, e.Name[shared:])
	c = append(c, e.Type)
	c = binary.AppendUvarint(c, uint64(e.Mode))
	c = binary.AppendUvarint(c, uint64(e.UID))
	c = binary.AppendUvarint(c, uint64(e.GID))
	c = binary.AppendVarint(c, e.Size)
	c = binary.AppendUvarint(c, uint64(e.Offset-b.prevOff))
	c = binary.AppendVarint(c, e.ModTime.Unix())
	c = binary.AppendUvarint(c, uint64(e.ModTime.Nanosecond()))
	c = appendStr(c, e.Linkname)
	c = binary.AppendUvarint(c, uint64(e.Devmajor))
	c = binary.AppendUvarint(c, uint64(e.Devminor))
	b.cur, b.prevNm, b.prevOff = c, e.Name, e.Offset
	b.n++
	if len(b.cur) >= tocChunkSize {
		b.flush()
	}
}

func (b *tocBuilder) flush() {
	if len(b.cur) == 0 {
		return
	}
	enc, _ := tocCodec()
	b.chunks = append(b.chunks, enc.EncodeAll(b.cur, nil))
	b.cur, b.prevNm, b.prevOff = b.cur[:0], "", 0
}

// finish returns every chunk, the meta chunk first.
func (b *tocBuilder) finish(data digest.Digest, tarSize int64, refused int) [][]byte {
	b.flush()
	m := []byte{tocVersion}
	m = appendStr(m, string(data))
	m = binary.AppendUvarint(m, uint64(tarSize))
	m = binary.AppendUvarint(m, uint64(b.n))
	m = binary.AppendUvarint(m, uint64(refused))
	enc, _ := tocCodec()
	return append([][]byte{enc.EncodeAll(m, nil)}, b.chunks...)
}

// tocReader decodes one chunk; the first error sticks.
type tocReader struct {
	b   []byte
	err error
}

func (r *tocReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *tocReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *tocReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errors.New("string past end")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *tocReader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errors.New("short chunk")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// decodeTOC decodes the chunks stored for layer.
func decodeTOC(layer digest.Digest, chunks [][]byte, maxEntries int) (*LayerTOC, error) {
	_, dec := tocCodec()
	bad := func(what string, err error) error {
		return fmt.Errorf("%w: toc of %s: %s: %v", ErrCorrupt, layer, what, err)
	}
	if len(chunks) == 0 {
		return nil, bad("meta", errors.New("no chunks"))
	}
	m, err := dec.DecodeAll(chunks[0], nil)
	if err != nil {
		return nil, bad("meta", err)
	}
	r := &tocReader{b: m}
	if v := r.byte1(); v != tocVersion && r.err == nil {
		return nil, bad("meta", fmt.Errorf("version %d", v))
	}
	t := &LayerTOC{Layer: layer}
	t.Data = digest.Digest(r.str())
	t.TarSize = int64(r.uvarint())
	n := r.uvarint()
	t.Refused = int(r.uvarint())
	if r.err != nil {
		return nil, bad("meta", r.err)
	}
	if t.Data.Validate() != nil {
		return nil, bad("meta", fmt.Errorf("data digest %q", t.Data))
	}
	if n > uint64(maxEntries) {
		return nil, fmt.Errorf("%w: layer %s has %d entries, limit %d", ErrLayerRefused, layer, n, maxEntries)
	}
	t.Entries = make([]TOCEntry, 0, n)
	var buf []byte
	for i, c := range chunks[1:] {
		buf, err = dec.DecodeAll(c, buf[:0])
		if err != nil {
			return nil, bad(fmt.Sprintf("chunk %d", i+1), err)
		}
		r := &tocReader{b: buf}
		prevNm, prevOff := "", int64(0)
		for len(r.b) > 0 && r.err == nil {
			var e TOCEntry
			shared := r.uvarint()
			suffix := r.str()
			if shared > uint64(len(prevNm)) {
				r.err = errors.New("bad name prefix")
				break
			}
			e.Name = prevNm[:shared] + suffix
			e.Type = r.byte1()
			e.Mode = uint32(r.uvarint())
			e.UID = uint32(r.uvarint())
			e.GID = uint32(r.uvarint())
			e.Size = r.varint()
			e.Offset = prevOff + int64(r.uvarint())
			sec := r.varint()
			ns := r.uvarint()
			e.ModTime = time.Unix(sec, int64(ns%1e9))
			e.Linkname = r.str()
			e.Devmajor = uint32(r.uvarint())
			e.Devminor = uint32(r.uvarint())
			if r.err == nil {
				t.Entries = append(t.Entries, e)
				prevNm, prevOff = e.Name, e.Offset
			}
			if uint64(len(t.Entries)) > n {
				r.err = errors.New("more entries than the meta says")
			}
		}
		if r.err != nil {
			return nil, bad(fmt.Sprintf("chunk %d", i+1), r.err)
		}
	}
	if uint64(len(t.Entries)) != n {
		return nil, bad("entries", fmt.Errorf("%d decoded, meta says %d", len(t.Entries), n))
	}
	return t, nil
}

// countingReader counts the bytes read through it, so that after
// tar.Reader.Next the count is the offset of the entry's data. With a
// seekable source it seeks over file data instead of reading it.
type countingReader struct {
	r   io.Reader
	s   io.Seeker // nil for streams
	off int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.off += int64(n)
	return n, err
}

// seekingCounter is a countingReader over a seekable source; tar.Reader
// uses Seek to skip file data.
type seekingCounter struct{ *countingReader }

func (c seekingCounter) Seek(offset int64, whence int) (int64, error) {
	p, err := c.s.Seek(offset, whence)
	if err == nil {
		c.off = p
	}
	return p, err
}

// refusal is one entry the indexer refused.
type refusal struct{ name, reason string }

// scanTar reads the tar from src and returns its table. It stops with
// ErrLayerRefused on malformed input or when the entries exceed the limit.
func scanTar(layer digest.Digest, src *countingReader, o LayerOptions, refuse func(refusal)) (*tocBuilder, int64, int, error) {
	var rd io.Reader = src
	if src.s != nil {
		rd = seekingCounter{src}
	}
	tr := tar.NewReader(rd)
	b := &tocBuilder{}
	seen := map[string]struct{}{}
	refused := 0
	total := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%w: layer %s: malformed tar after %d entries: %v", ErrLayerRefused, layer, total, err)
		}
		total++
		if total > o.MaxEntries {
			return nil, 0, 0, fmt.Errorf("%w: layer %s has more than %d entries (LayerOptions.MaxEntries)", ErrLayerRefused, layer, o.MaxEntries)
		}
		e, reason := tocEntryOf(h, src.off, o)
		if reason == "" {
			if _, dup := seen[e.Name]; dup {
				reason = "duplicate entry (the first one is kept)"
			}
		}
		if reason != "" {
			refused++
			refuse(refusal{name: h.Name, reason: reason})
			continue
		}
		seen[e.Name] = struct{}{}
		b.add(&e)
	}
	// What follows the end-of-archive marker belongs to the tar too.
	if src.s != nil {
		end, err := src.s.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, 0, 0, err
		}
		src.off = end
	} else if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, 0, 0, fmt.Errorf("%w: layer %s: %v", ErrLayerRefused, layer, err)
	}
	return b, src.off, refused, nil
}

// tocEntryOf checks one tar header and returns its entry, or why it is
// refused.
func tocEntryOf(h *tar.Header, dataOff int64, o LayerOptions) (TOCEntry, string) {
	name, why := cleanEntryName(h.Name, o.MaxNameLen)
	if why != "" {
		return TOCEntry{}, why
	}
	e := TOCEntry{
		Name: name, Mode: uint32(h.Mode) & 0o7777, ModTime: h.ModTime,
		Devmajor: uint32(h.Devmajor), Devminor: uint32(h.Devminor),
	}
	if h.Uid < 0 || h.Gid < 0 || h.Uid > 1<<32-1 || h.Gid > 1<<32-1 {
		return e, "owner out of range"
	}
	e.UID, e.GID = uint32(h.Uid), uint32(h.Gid)
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return e, "sparse file (not supported)"
		}
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		if h.Size < 0 {
			return e, "negative size"
		}
		e.Type, e.Size, e.Offset = TOCReg, h.Size, dataOff
	case tar.TypeDir:
		e.Type = TOCDir
	case tar.TypeSymlink:
		e.Type = TOCSymlink
		if h.Linkname == "" || len(h.Linkname) > o.MaxNameLen || strings.IndexByte(h.Linkname, 0) >= 0 {
			return e, "bad symlink target"
		}
		if !path.IsAbs(h.Linkname) {
			if t := path.Join(path.Dir(name), h.Linkname); t == ".." || strings.HasPrefix(t, "../") {
				return e, "symlink target leaves the root"
			}
		}
		e.Linkname = h.Linkname
	case tar.TypeLink:
		e.Type = TOCLink
		t, why := cleanEntryName(h.Linkname, o.MaxNameLen)
		if why != "" || t == "." {
			return e, "hard link target: " + why
		}
		if t == name {
			return e, "hard link to itself"
		}
		e.Linkname = t
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.Type = h.Typeflag
	default:
		return e, fmt.Sprintf("unsupported entry type %q", h.Typeflag)
	}
	if name == "." && e.Type != TOCDir {
		return e, "root is not a directory"
	}
	return e, ""
}

// cleanEntryName validates and cleans a path from a tar header.
func cleanEntryName(n string, maxLen int) (string, string) {
	switch {
	case n == "":
		return "", "empty name"
	case len(n) > maxLen:
		return "", "name too long"
	case strings.IndexByte(n, 0) >= 0:
		return "", "NUL in name"
	case strings.HasPrefix(n, "/"):
		return "", "absolute path"
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", "path leaves the root (..)"
	}
	for _, part := range strings.Split(c, "/") {
		if len(part) > nameMax {
			return "", "path component longer than 255 bytes"
		}
	}
	return c, ""
}

// sniffCodec tells a layer's compression from its first bytes.
func sniffCodec(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return "tar"
}
