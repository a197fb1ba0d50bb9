package s3

import (
	"encoding/json"
	"testing"

	"github.com/berthstore/berth/blob"
)

// FuzzDecodeSide: a side object read back from the bucket (which anyone
// with write access to it could have replaced) never panics the parser,
// and what parses encodes back to the same bytes.
func FuzzDecodeSide(f *testing.F) {
	f.Add(encodeSide(blob.UploadImage{From: 0, Pending: []byte("abc"), Tail: []byte("t")}))
	f.Add(encodeSide(blob.UploadImage{From: 5 << 20, Header: make([]byte, blob.HeaderSize), Table: make([]byte, 16), Pending: make([]byte, 100)}))
	f.Add([]byte(sideMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := decodeSide(b)
		if err != nil {
			return
		}
		if got := encodeSide(im); string(got) != string(b) {
			t.Fatalf("round trip differs")
		}
	})
}

// FuzzParseRemote: the object store's part of a stored upload state
// (kept in the metadata) never panics its parser, and a state it accepts
// is consistent with the writer state it belongs to.
func FuzzParseRemote(f *testing.F) {
	ok, _ := json.Marshal(remoteState{Spool: "x", Sent: 5 << 20, PartSize: 5 << 20, Head: "h", Side: "s", SideLen: 10})
	f.Add(ok, int64(6<<20))
	f.Add([]byte(`{"sent":-1}`), int64(0))
	f.Add([]byte(`{"mpu":"m","parts":["a"],"sent":15728640,"partSize":5242880,"head":"h","side":"s","sideLen":1}`), int64(20<<20))
	f.Fuzz(func(t *testing.T, b []byte, end int64) {
		st := blob.WriterState{End: end, Backend: b}
		rs, remote, err := parseRemote(st)
		if err != nil || !remote {
			return
		}
		if rs.Sent < 0 || rs.Sent > end || rs.Hole > rs.Sent || rs.SideSlot > 1 {
			t.Fatalf("accepted inconsistent state %+v for end %d", rs, end)
		}
		if rs.Sent > 0 && rs.Sent != rs.PartSize*int64(1+len(rs.Parts)) {
			t.Fatalf("accepted parts that do not add up: %+v", rs)
		}
	})
}
