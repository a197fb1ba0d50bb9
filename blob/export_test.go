package blob

// What the external tests of package blob (package blob_test) may see of
// its internals: the layout of a stored file, the shared frame cache, and
// File, which decodes a stored file into editable parts and encodes it
// again, so that tests can forge files a hostile writer (or one holding
// the data key) could leave.

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
)

// Sizes of the parts of a stored file.
const TableEntrySize = tableEntrySize

// FrameOffsets is the file offset of the head of each frame of r.
func FrameOffsets(r *Reader) []int64 { return append([]int64(nil), r.offs...) }

// FrameStoredLengths is the stored payload length of each frame of r.
func FrameStoredLengths(r *Reader) []int64 {
	out := make([]int64, len(r.table))
	for i, t := range r.table {
		out[i] = int64(t.length)
	}
	return out
}

// ZstdFrames counts the frames of r stored zstd-compressed.
func ZstdFrames(r *Reader) int {
	n := 0
	for _, t := range r.table {
		if t.codec == codecZstd {
			n++
		}
	}
	return n
}

// SharedFrameCount is the number of decoded frames in s's shared cache.
func SharedFrameCount(s *Store) int {
	s.shared.mu.Lock()
	defer s.shared.mu.Unlock()
	return s.shared.lru.Len()
}

// HoldAheadSlots takes every read-ahead slot of the process until release.
func HoldAheadSlots() (release func()) {
	for range cap(aheadSlots) {
		aheadSlots <- struct{}{}
	}
	return func() {
		for range cap(aheadSlots) {
			<-aheadSlots
		}
	}
}

// HeaderDigest parses the header at the start of b structurally (no
// check) and returns the digest it names and whether it is sealed.
func HeaderDigest(b []byte) (d digest.Digest, sealed, ok bool) {
	h, err := decodeHeader(b)
	if err != nil || h.alg == 0 {
		return "", false, false
	}
	return digest.NewDigestFromBytes(algOf(h.alg), h.digest), h.sealed(), true
}

// File is a stored blob file taken apart: every header field, and each
// frame's logical bytes and codec. Encode puts it together again, sealed
// under Key (or CRC-checked when Key is nil), with whatever values the
// fields hold, consistent or not.
type File struct {
	Key       []byte // data key; nil: a plain file
	Flags     uint16 // header flags; Encode sets or clears the sealed bit from Key
	FrameSize uint32
	FileID    [crypt.FileIDSize]byte
	Size      uint64
	Frames    uint32 // the header's frame count
	Alg       byte
	Digest    []byte
	// TableOff is the header's table offset; 0: where the frames end.
	TableOff uint64
	// Data is each frame's logical bytes; Zstd whether it is stored compressed.
	Data [][]byte
	Zstd []bool
}

// ParseFile reads the committed blob file at path, checking it like a
// reader does (dataKey for a sealed file), into a File. Its TableOff is
// left 0, so that Encode computes it.
func ParseFile(path string, d digest.Digest, dataKey []byte) (*File, error) {
	f, err := vfs.Default.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := newReader(f, d, dataKey)
	if err != nil {
		return nil, err
	}
	h := r.h
	out := &File{
		Key: dataKey, Flags: h.flags, FrameSize: h.frameSize, FileID: h.fileID, Size: h.size,
		Frames: h.frames, Alg: h.alg, Digest: h.digest,
	}
	if !h.sealed() {
		out.Key = nil
	}
	for i := range r.table {
		b := make([]byte, r.frameLen(int64(i)))
		if err := r.decodeFrame(int64(i), b); err != nil {
			return nil, err
		}
		out.Data = append(out.Data, b)
		out.Zstd = append(out.Zstd, r.table[i].codec == codecZstd)
	}
	return out, nil
}

// Encode returns the file's bytes.
func (f *File) Encode() ([]byte, error) {
	var sealer *crypt.FrameSealer
	flags := f.Flags &^ flagSealed
	if f.Key != nil {
		var err error
		if sealer, err = crypt.NewFrameSealer(f.Key, f.FileID); err != nil {
			return nil, err
		}
		flags |= flagSealed
	}
	body := make([]byte, headerSize)
	var table []byte
	for i, data := range f.Data {
		codec, payload := codecRaw, data
		if f.Zstd != nil && f.Zstd[i] {
			codec, payload = codecZstd, encoder(LevelFastest).EncodeAll(data, nil)
		}
		last := i == len(f.Data)-1
		out := make([]byte, frameHdrSize, frameHdrSize+len(payload)+crypt.Overhead)
		if sealer != nil {
			var err error
			if out, err = sealer.Seal(out, payload, uint64(i), last, codec); err != nil {
				return nil, err
			}
		} else {
			out = append(out, payload...)
			out = binary.BigEndian.AppendUint32(out, plainCheck(&f.FileID, uint64(i), last, codec, payload))
		}
		var fl byte
		if last {
			fl = frameFlagLast
		}
		fh := frameHdr{length: uint32(len(out) - frameHdrSize), codec: codec, flags: fl}
		fh.put(out)
		var e [tableEntrySize]byte
		fh.put(e[:])
		table = append(table, e[:]...)
		body = append(body, out...)
	}
	tableOff := f.TableOff
	if tableOff == 0 {
		tableOff = uint64(len(body))
	}
	h := header{
		flags: flags, frameSize: f.FrameSize, fileID: f.FileID, size: f.Size, frames: f.Frames,
		alg: f.Alg, digest: f.Digest, tableOff: tableOff,
	}
	copy(body, h.encode(sealer))
	return append(body, table...), nil
}

// Reseal recomputes the check of the header at the start of b in place:
// the MAC under key for its file id (sealed), or its SHA-256 (plain).
func Reseal(b []byte, key []byte) error {
	if len(b) < headerSize {
		return fmt.Errorf("short header")
	}
	if key != nil {
		var id [crypt.FileIDSize]byte
		copy(id[:], b[16:32])
		s, err := crypt.NewFrameSealer(key, id)
		if err != nil {
			return err
		}
		copy(b[headerBodySize:headerSize], s.MAC(b[:headerBodySize]))
		return nil
	}
	sum := sha256.Sum256(b[:headerBodySize])
	copy(b[headerBodySize:headerSize], sum[:])
	return nil
}
