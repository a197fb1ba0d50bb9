package layertoc

import (
	"archive/tar"
	"bytes"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/errdefs"
)

// elfWith is an ELF-looking file of n bytes with name written at off.
func elfWith(n, off int, name string) []byte {
	b := bytes.Repeat([]byte{'.'}, n) // dots: every byte starts a false match
	copy(b, elfMagic)
	if name != "" {
		copy(b[off:], name)
	}
	return b
}

func TestFacts(t *testing.T) {
	boundary := factsBufferSize // where the second read of the file starts
	tests := []struct {
		name string
		mode int64
		body []byte
		want Facts
	}{
		{"not executable", 0o644, elfWith(100, 50, ".go.buildinfo"), 0},
		{"too short", 0o755, []byte("\x7fEL"), 0},
		{"script", 0o755, []byte("#!/bin/sh\necho .go.buildinfo\n"), FactsRecorded},
		{"only the magic", 0o755, []byte("\x7fELF"), FactsRecorded | FactELF},
		{"ELF without the names", 0o700, elfWith(300_000, 0, ""), FactsRecorded | FactELF},
		{"Go binary", 0o755, elfWith(300_000, 200_000, ".go.buildinfo"), FactsRecorded | FactELF | FactGoBuildInfoName},
		{"cargo auditable binary", 0o100, elfWith(1000, 996-len(".dep-v0"), ".dep-v0"), FactsRecorded | FactELF | FactCargoAuditName},
		{"name at the very end", 0o755, elfWith(5000, 5000-len(".dep-v0"), ".dep-v0"), FactsRecorded | FactELF | FactCargoAuditName},
		{"name cut by a read boundary", 0o755, elfWith(200_000, boundary-5, ".go.buildinfo"), FactsRecorded | FactELF | FactGoBuildInfoName},
		{"name right after the boundary", 0o755, elfWith(200_000, boundary, ".go.buildinfo"), FactsRecorded | FactELF | FactGoBuildInfoName},
		{"a near miss", 0o755, elfWith(200_000, 100_000, ".go.buildinf"), FactsRecorded | FactELF},
		{"both", 0o755, append(elfWith(90_000, 10, ".dep-v0"), ".go.buildinfo"...), FactsRecorded | FactELF | FactGoBuildInfoName | FactCargoAuditName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: "bin/f", Typeflag: tar.TypeReg, Mode: tt.mode, Size: int64(len(tt.body))}))
			_, err := tw.Write(tt.body)
			require.NoError(t, err)
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: "bin/after", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3}))
			_, err = tw.Write([]byte("abc"))
			require.NoError(t, err)
			require.NoError(t, tw.Close())
			data := buf.Bytes()
			for _, seekable := range []bool{false, true} {
				rd := bytes.NewReader(data)
				src := NewCounter(rd, nil)
				if seekable {
					src = NewCounter(rd, rd)
				}
				b, size, _, err := Scan("sha256:x", src, testLimits, func(Refusal) {})
				require.NoError(t, err)
				toc, err := Decode("sha256:x", b.Finish(digest.FromBytes(data), size, 0), testLimits.MaxEntries)
				require.NoError(t, err)
				require.Len(t, toc.Entries, 2)
				assert.Equal(t, tt.want, toc.Entries[0].Facts, "seekable %v", seekable)
				after := toc.Entries[1]
				assert.Equal(t, "abc", string(data[after.Offset:after.Offset+after.Size]), "offsets after a file read for its facts")
			}
		})
	}
}

func TestDecodeRefusesUnknownFacts(t *testing.T) {
	var b Builder
	b.Add(&Entry{Name: "f", Type: tar.TypeReg, Mode: 0o755, Size: 4, Facts: FactsRecorded | FactELF})
	chunks := b.Finish(digest.FromString("x"), 1024, 0)
	_, err := Decode("sha256:x", chunks, 10)
	require.NoError(t, err)
	dec, err := zstd.NewReader(nil)
	require.NoError(t, err)
	defer dec.Close()
	p, err := dec.DecodeAll(chunks[1], nil)
	require.NoError(t, err)
	p[len(p)-1] = 0x80 // the facts byte of the last entry
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	_, err = Decode("sha256:x", [][]byte{chunks[0], enc.EncodeAll(p, nil)}, 10)
	assert.ErrorIs(t, err, errdefs.ErrCorrupt)
}

// BenchmarkFacts measures what looking for the facts costs the indexer:
// the bytes of a real ELF binary (this test's own executable) read as
// an executable file's data.
func BenchmarkFacts(b *testing.B) {
	exe, err := os.Executable()
	require.NoError(b, err)
	body, err := os.ReadFile(exe)
	require.NoError(b, err)
	var f factFinder
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		facts, err := f.find(bytes.NewReader(body))
		require.NoError(b, err)
		require.NotZero(b, facts&FactELF)
	}
}
