package s3

import (
	"encoding/binary"
	"fmt"

	"github.com/berthstore/berth/blob"
)

// A side object holds what an upload's checkpoint made durable that is in
// no part yet: the file's header, the heads of the complete frames, the
// stored bytes from the end of the parts sent to the end of the complete
// frames, and the partial frame. It is rewritten at every checkpoint (in
// one of two slots, alternately, so that the slot of the recorded state is
// never the one being written) and read back by a replica that continues
// the upload.
//
//	magic "BERTHUP1" | from u64 | header u32-len | heads u32-len |
//	pending u64-len | tail u32-len            (lengths then bytes, big endian)
const sideMagic = "BERTHUP1"

// maxSideTable bounds the frame heads of a side object: a blob of 2^20
// frames (1 TiB of 1 MiB frames).
const maxSideTable = 8 << 20

// encodeSide returns the side object of im.
func encodeSide(im blob.UploadImage) []byte {
	n := len(sideMagic) + 8 + 4 + len(im.Header) + 4 + len(im.Table) + 8 + len(im.Pending) + 4 + len(im.Tail)
	b := make([]byte, 0, n)
	b = append(b, sideMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(im.From))
	b = binary.BigEndian.AppendUint32(b, uint32(len(im.Header)))
	b = append(b, im.Header...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(im.Table)))
	b = append(b, im.Table...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(im.Pending)))
	b = append(b, im.Pending...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(im.Tail)))
	b = append(b, im.Tail...)
	return b
}

// decodeSide parses a side object; its slices alias b. Anything malformed
// is blob.ErrBadState.
func decodeSide(b []byte) (blob.UploadImage, error) {
	var im blob.UploadImage
	bad := func(what string) (blob.UploadImage, error) {
		return blob.UploadImage{}, fmt.Errorf("%w: side object: %s", blob.ErrBadState, what)
	}
	if len(b) < len(sideMagic)+8 || string(b[:len(sideMagic)]) != sideMagic {
		return bad("no magic")
	}
	b = b[len(sideMagic):]
	from := binary.BigEndian.Uint64(b)
	if from > 1<<62 {
		return bad("offset")
	}
	im.From = int64(from)
	b = b[8:]
	take := func(lenSize int, limit uint64) ([]byte, bool) {
		if len(b) < lenSize {
			return nil, false
		}
		var n uint64
		if lenSize == 4 {
			n = uint64(binary.BigEndian.Uint32(b))
		} else {
			n = binary.BigEndian.Uint64(b)
		}
		b = b[lenSize:]
		if n > limit || n > uint64(len(b)) {
			return nil, false
		}
		v := b[:n:n]
		b = b[n:]
		return v, true
	}
	var ok bool
	if im.Header, ok = take(4, blob.HeaderSize); !ok {
		return bad("header")
	}
	if im.Table, ok = take(4, maxSideTable); !ok || len(im.Table)%blob.FrameHeadSize != 0 {
		return bad("frame heads")
	}
	if im.Pending, ok = take(8, 1<<40); !ok {
		return bad("pending bytes")
	}
	if im.Tail, ok = take(4, 1<<30); !ok {
		return bad("tail")
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return im, nil
}
