package s3

import (
	"encoding/json"
	"strconv"
	"strings"
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
		sum := rs.PartSize
		for _, n := range rs.Sizes {
			sum += n
		}
		if rs.Sent > 0 && (rs.Sent != sum || len(rs.Sizes) != len(rs.Parts)) {
			t.Fatalf("accepted parts that do not add up: %+v", rs)
		}
	})
}

// FuzzParseRef: a blob reference's metadata (which anyone with write
// access to the bucket could have set) never panics its parser, and what
// it accepts names a staging object under the prefix, with a size a blob
// can have.
func FuzzParseRef(f *testing.F) {
	f.Add("data/up-1", "5242880", "abc")
	f.Add("../OWNER", "1", "")
	f.Add("data/", "-1", "\"")
	f.Fuzz(func(t *testing.T, key, size, etag string) {
		r, err := parseRef(map[string]string{refMetaKey: key, refMetaSize: size, refMetaETag: etag}, "p/")
		if err != nil {
			return
		}
		id, ok := strings.CutPrefix(r.key, "p/"+dataDir)
		if !ok || checkUploadID(id) != nil || r.size < int64(blob.HeaderSize) || r.etag == "" {
			t.Fatalf("accepted %+v", r)
		}
		back, err := parseRef(r.meta("p/"), "p/")
		if err != nil || back != r {
			t.Fatalf("round trip: %+v, %v", back, err)
		}
	})
}

// FuzzRangeTotal: the Content-Range of Open's first GET (the object
// store's answer) never panics its parser, which accepts only a
// non-negative complete length after the slash.
func FuzzRangeTotal(f *testing.F) {
	for _, s := range []string{"bytes 0-262143/1048576", "bytes 0-99/100", "bytes */100", "bytes 0-1/*", "bytes 0-1/-5", "", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cr string) {
		n, ok := rangeTotal(cr)
		if !ok {
			return
		}
		_, after, _ := strings.Cut(cr, "/")
		if m, err := strconv.ParseInt(after, 10, 64); n < 0 || err != nil || m != n {
			t.Fatalf("%q: accepted %d", cr, n)
		}
	})
}

func TestRangeTotal(t *testing.T) {
	for cr, want := range map[string]int64{"bytes 0-262143/1048576": 1048576, "bytes 0-99/100": 100} {
		n, ok := rangeTotal(cr)
		if !ok || n != want {
			t.Errorf("%q: %d %v, want %d", cr, n, ok, want)
		}
	}
	for _, cr := range []string{"bytes 0-1/*", "bytes 0-1/-5", "bytes 0-1", ""} {
		if _, ok := rangeTotal(cr); ok {
			t.Errorf("%q accepted", cr)
		}
	}
}
