package layertoc

// The stored form of a table: see the package comment.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/errdefs"
)

const (
	// tocVersion is the version Builder writes; tocVersionNoFacts (no
	// facts byte in an entry) still decodes.
	tocVersion        = 2
	tocVersionNoFacts = 1
	tocChunkSize      = 256 << 10
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

// Builder accumulates accepted entries into encoded chunks, so that
// building holds the compact form only.
type Builder struct {
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

// Add appends e, an entry Scan accepted, to the table.
func (b *Builder) Add(e *Entry) {
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
	c = append(c, byte(e.Facts))
	b.cur, b.prevNm, b.prevOff = c, e.Name, e.Offset
	b.n++
	if len(b.cur) >= tocChunkSize {
		b.flush()
	}
}

func (b *Builder) flush() {
	if len(b.cur) == 0 {
		return
	}
	enc, _ := tocCodec()
	b.chunks = append(b.chunks, enc.EncodeAll(b.cur, nil))
	b.cur, b.prevNm, b.prevOff = b.cur[:0], "", 0
}

// Finish returns every chunk, the meta chunk first: the value stored in
// the index (one pebble key per chunk).
func (b *Builder) Finish(data digest.Digest, tarSize int64, refused int) [][]byte {
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

// Decode decodes the chunks stored for layer; a table of more than
// maxEntries entries is ErrLayerRefused, a damaged one ErrCorrupt.
func Decode(layer digest.Digest, chunks [][]byte, maxEntries int) (*TOC, error) {
	_, dec := tocCodec()
	bad := func(what string, err error) error {
		return fmt.Errorf("%w: toc of %s: %s: %v", errdefs.ErrCorrupt, layer, what, err)
	}
	if len(chunks) == 0 {
		return nil, bad("meta", errors.New("no chunks"))
	}
	m, err := dec.DecodeAll(chunks[0], nil)
	if err != nil {
		return nil, bad("meta", err)
	}
	r := &tocReader{b: m}
	version := r.byte1()
	if version != tocVersion && version != tocVersionNoFacts && r.err == nil {
		return nil, bad("meta", fmt.Errorf("version %d", version))
	}
	t := &TOC{Layer: layer}
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
		return nil, fmt.Errorf("%w: layer %s has %d entries, limit %d", errdefs.ErrLayerRefused, layer, n, maxEntries)
	}
	t.Entries = make([]Entry, 0, n)
	var buf []byte
	for i, c := range chunks[1:] {
		buf, err = dec.DecodeAll(c, buf[:0])
		if err != nil {
			return nil, bad(fmt.Sprintf("chunk %d", i+1), err)
		}
		r := &tocReader{b: buf}
		prevNm, prevOff := "", int64(0)
		for len(r.b) > 0 && r.err == nil {
			var e Entry
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
			if version >= tocVersion {
				e.Facts = Facts(r.byte1())
				if e.Facts&^factsKnown != 0 && r.err == nil {
					r.err = fmt.Errorf("unknown facts %#x", byte(e.Facts))
				}
			}
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

// Len is the number of entries added.
func (b *Builder) Len() int { return b.n }
