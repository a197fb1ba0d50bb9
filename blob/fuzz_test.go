package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

// fuzzKey is the data key of the seed files in testdata/fuzz/FuzzDecode.
var fuzzKey = bytes.Repeat([]byte{7}, 32)

// makeFuzzSeeds writes small valid blob files, sealed and plain, raw and
// compressed, and returns their bytes.
func makeFuzzSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, sealed := range []bool{false, true} {
		for _, data := range [][]byte{{}, []byte("hello"), bytes.Repeat([]byte("berth "), 2000), randomBytes(MinFrameSize + 3)} {
			s, err := Open(t.TempDir(), &Options{FrameSize: MinFrameSize})
			require.NoError(t, err)
			var key []byte
			if sealed {
				key = fuzzKey
			}
			w, err := s.NewWriter(context.Background(), "seed", WriterOptions{DataKey: key})
			require.NoError(t, err)
			w.Write(data)
			d := digest.FromBytes(data)
			_, err = w.Commit(context.Background(), d, -1)
			require.NoError(t, err)
			p, _ := s.Path(d)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			out = append(out, b)
			s.Close()
		}
	}
	return out
}

// TestWriteFuzzSeeds regenerates the committed seed corpus when
// BERTH_WRITE_FUZZ_SEEDS is set.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("BERTH_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set BERTH_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i, b := range makeFuzzSeeds(t) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644))
	}
}

// FuzzDecode feeds arbitrary bytes to the blob file decoder as a stored
// file: it must never panic, and whatever it returns without error must be
// the content the header's digest names.
func FuzzDecode(f *testing.F) {
	for _, b := range makeFuzzSeeds(f) {
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte) {
		p := filepath.Join(dir, "blob")
		if err := os.WriteFile(p, file, 0o600); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		h, err := decodeHeader(append(file, make([]byte, headerSize)...))
		if err != nil || h.alg == 0 {
			return
		}
		d := digest.NewDigestFromBytes(algOf(h.alg), h.digest)
		r, err := newReader(fh, d, fuzzKey)
		if err != nil {
			return
		}
		got, err := io.ReadAll(r)
		if err != nil {
			return
		}
		if h.sealed() && digest.FromBytes(got).Encoded() != d.Encoded() && d.Algorithm() == digest.SHA256 {
			t.Fatalf("sealed file decoded to bytes that are not its digest")
		}
		buf := make([]byte, 100)
		for _, off := range []int64{0, 1, r.Size() / 2, r.Size() - 1, r.Size(), r.Size() + 10} {
			r.ReadAt(buf, off)
		}
	})
}
