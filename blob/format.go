package blob

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/crypt"
)

// The on-disk format; docs/format.md is its specification.
const (
	magic          = "BERTHBLB"
	formatVersion  = 1
	headerBodySize = 128
	headerSize     = headerBodySize + 32 // body, then MAC (sealed) or SHA-256 (plain)
	frameHdrSize   = 8
	tableEntrySize = 8
	crcSize        = 4

	flagSealed    = 1 << 0
	flagCommitted = 1 << 1

	codecRaw  byte = 0
	codecZstd byte = 1

	frameFlagLast = 1 << 0

	algSHA256 = 1
	algSHA512 = 2

	// MinFrameSize and MaxFrameSize bound Options.FrameSize.
	MinFrameSize = 4 << 10
	MaxFrameSize = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the fixed-size head of a blob file.
type header struct {
	flags     uint16
	frameSize uint32
	fileID    [crypt.FileIDSize]byte
	size      uint64 // logical bytes
	frames    uint32
	alg       byte
	digest    []byte // raw hash bytes
	tableOff  uint64
}

func (h *header) sealed() bool { return h.flags&flagSealed != 0 }

// encodeBody writes the 128-byte header body.
func (h *header) encodeBody(b []byte) {
	clear(b[:headerBodySize])
	copy(b, magic)
	binary.BigEndian.PutUint16(b[8:], formatVersion)
	binary.BigEndian.PutUint16(b[10:], h.flags)
	binary.BigEndian.PutUint32(b[12:], h.frameSize)
	copy(b[16:32], h.fileID[:])
	binary.BigEndian.PutUint64(b[32:], h.size)
	binary.BigEndian.PutUint32(b[40:], h.frames)
	b[44] = h.alg
	b[45] = byte(len(h.digest))
	copy(b[48:112], h.digest)
	binary.BigEndian.PutUint64(b[112:], h.tableOff)
}

// encode returns the whole header, its check made by sealer (nil: plain).
func (h *header) encode(sealer *crypt.FrameSealer) []byte {
	b := make([]byte, headerSize)
	h.encodeBody(b)
	if sealer != nil {
		copy(b[headerBodySize:], sealer.MAC(b[:headerBodySize]))
	} else {
		sum := sha256.Sum256(b[:headerBodySize])
		copy(b[headerBodySize:], sum[:])
	}
	return b
}

// decodeHeader parses b structurally; it does not check the MAC (which
// needs the data key): see checkHeader.
func decodeHeader(b []byte) (*header, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("%w: short header", ErrCorrupt)
	}
	if string(b[:8]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if v := binary.BigEndian.Uint16(b[8:]); v != formatVersion {
		return nil, fmt.Errorf("%w: format version %d", ErrCorrupt, v)
	}
	h := &header{
		flags:     binary.BigEndian.Uint16(b[10:]),
		frameSize: binary.BigEndian.Uint32(b[12:]),
		size:      binary.BigEndian.Uint64(b[32:]),
		frames:    binary.BigEndian.Uint32(b[40:]),
		alg:       b[44],
		tableOff:  binary.BigEndian.Uint64(b[112:]),
	}
	copy(h.fileID[:], b[16:32])
	if h.flags&^(flagSealed|flagCommitted) != 0 || b[46] != 0 || b[47] != 0 || binary.BigEndian.Uint64(b[120:]) != 0 {
		return nil, fmt.Errorf("%w: reserved header bits set", ErrCorrupt)
	}
	if h.frameSize < MinFrameSize || h.frameSize > MaxFrameSize {
		return nil, fmt.Errorf("%w: frame size %d", ErrCorrupt, h.frameSize)
	}
	n := int(b[45])
	switch {
	case h.alg == algSHA256 && n == sha256.Size, h.alg == algSHA512 && n == 64:
	case h.alg == 0 && n == 0 && h.flags&flagCommitted == 0:
	default:
		return nil, fmt.Errorf("%w: digest algorithm %d length %d", ErrCorrupt, h.alg, n)
	}
	h.digest = append([]byte(nil), b[48:48+n]...)
	for _, c := range b[48+n : 112] {
		if c != 0 {
			return nil, fmt.Errorf("%w: digest padding", ErrCorrupt)
		}
	}
	// A uint32 count of frames of at most MaxFrameSize bounds the size
	// far below 2^63, so the size is a valid int64 and framesFor cannot
	// overflow.
	if h.size > math.MaxUint32*uint64(h.frameSize) {
		return nil, fmt.Errorf("%w: size %d", ErrCorrupt, h.size)
	}
	if want := framesFor(int64(h.size), int64(h.frameSize)); int64(h.frames) != want && h.flags&flagCommitted != 0 {
		return nil, fmt.Errorf("%w: %d frames for %d bytes", ErrCorrupt, h.frames, h.size)
	}
	return h, nil
}

// checkLength checks that the frame table of a committed file fills it
// from tableOff to its end, fileLen. The arithmetic is unsigned and has
// no sum that can wrap: a tableOff near 2^64 must not make a huge frame
// count look as if it fitted.
func (h *header) checkLength(fileLen int64) error {
	n := uint64(h.frames)
	if fileLen < headerSize || h.tableOff < headerSize || h.tableOff > uint64(fileLen) || uint64(fileLen)-h.tableOff != n*tableEntrySize {
		return fmt.Errorf("%w: file length %d does not match its table", ErrCorrupt, fileLen)
	}
	return nil
}

// checkHeader verifies the header's MAC (sealed) or checksum (plain).
func checkHeader(b []byte, sealer *crypt.FrameSealer) error {
	if sealer != nil {
		if err := sealer.CheckMAC(b[:headerBodySize], b[headerBodySize:headerSize]); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil
	}
	sum := sha256.Sum256(b[:headerBodySize])
	if string(sum[:]) != string(b[headerBodySize:headerSize]) {
		return fmt.Errorf("%w: header checksum", ErrCorrupt)
	}
	return nil
}

// framesFor is the number of frames of a blob of size bytes: at least one,
// so that even an empty blob has an authenticated last frame.
func framesFor(size, frameSize int64) int64 {
	if size <= 0 {
		return 1
	}
	return (size + frameSize - 1) / frameSize
}

// frameHdr is the 8-byte head of each stored frame, repeated in the table.
type frameHdr struct {
	length uint32 // stored payload bytes after this head
	codec  byte
	flags  byte
}

func (f frameHdr) put(b []byte) {
	binary.BigEndian.PutUint32(b, f.length)
	b[4] = f.codec
	b[5] = f.flags
	b[6], b[7] = 0, 0
}

func getFrameHdr(b []byte) (frameHdr, error) {
	f := frameHdr{length: binary.BigEndian.Uint32(b), codec: b[4], flags: b[5]}
	if b[6] != 0 || b[7] != 0 || f.flags&^frameFlagLast != 0 || f.codec > codecZstd {
		return f, fmt.Errorf("%w: bad frame head", ErrCorrupt)
	}
	return f, nil
}

// plainCheck is the CRC-32C that guards a frame when encryption is off:
// over the file id, frame number, flags, codec and payload, so frames
// cannot be swapped or moved unnoticed.
func plainCheck(fileID *[crypt.FileIDSize]byte, n uint64, last bool, codec byte, payload []byte) uint32 {
	var ad [crypt.FileIDSize + 10]byte
	copy(ad[:], fileID[:])
	binary.BigEndian.PutUint64(ad[crypt.FileIDSize:], n)
	if last {
		ad[crypt.FileIDSize+8] = 1
	}
	ad[crypt.FileIDSize+9] = codec
	c := crc32.Update(0, castagnoli, ad[:])
	return crc32.Update(c, castagnoli, payload)
}

func algByte(a digest.Algorithm) (byte, error) {
	switch a {
	case digest.SHA256:
		return algSHA256, nil
	case digest.SHA512:
		return algSHA512, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnsupportedDigest, a)
}

func algOf(b byte) digest.Algorithm {
	if b == algSHA512 {
		return digest.SHA512
	}
	return digest.SHA256
}
