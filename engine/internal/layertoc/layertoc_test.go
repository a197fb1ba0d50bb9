package layertoc

import (
	"archive/tar"
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/errdefs"
)

var testLimits = Limits{MaxEntries: 1_000_000, MaxNameLen: 4096}

// goldenTar builds the layer testdata/layer.toc was made from (by the
// engine before its table code moved here): every entry type, three
// entries to refuse, and 6,000 files, enough for two chunks of entries.
func goldenTar(t testing.TB) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	add := func(h *tar.Header, body []byte) {
		if h.ModTime.IsZero() {
			h.ModTime = mt
		}
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		require.NoError(t, tw.WriteHeader(h))
		if len(body) > 0 {
			_, err := tw.Write(body)
			require.NoError(t, err)
		}
	}
	add(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	add(&tar.Header{Name: "usr/bin/tool", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 1000, Gid: 1000, ModTime: time.Unix(-5, 0)}, bytes.Repeat([]byte("x"), 3000))
	add(&tar.Header{Name: "usr/bin/link", Typeflag: tar.TypeSymlink, Linkname: "tool", Mode: 0o777}, nil)
	add(&tar.Header{Name: "usr/bin/hard", Typeflag: tar.TypeLink, Linkname: "usr/bin/tool", Mode: 0o755}, nil)
	add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	add(&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Devminor: 0}, nil)
	add(&tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, nil)
	add(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("no"))
	add(&tar.Header{Name: "bad/link", Typeflag: tar.TypeSymlink, Linkname: "../../..", Mode: 0o777}, nil)
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o600}, []byte("dup"))
	for i := 0; i < 6000; i++ {
		add(&tar.Header{Name: fmt.Sprintf("usr/share/doc/p%03d/%x.txt", i/50, digest.FromString(fmt.Sprint(i)).Encoded()[:24]),
			Typeflag: tar.TypeReg, Mode: 0o644, Uid: i % 7, Gid: i % 5, ModTime: mt.Add(time.Duration(i) * time.Second)}, []byte(fmt.Sprint(i)))
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// readGolden reads a golden table: for each chunk a line
// "chunk <i> <length>", the chunk's bytes, and a newline.
func readGolden(t testing.TB, name string) [][]byte {
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	r := bufio.NewReader(f)
	var chunks [][]byte
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			break
		}
		require.NoError(t, err)
		var i, n int
		_, err = fmt.Sscanf(line, "chunk %d %d\n", &i, &n)
		require.NoError(t, err)
		require.Equal(t, len(chunks), i)
		c := make([]byte, n+1)
		_, err = io.ReadFull(r, c)
		require.NoError(t, err)
		require.Equal(t, byte('\n'), c[n])
		chunks = append(chunks, c[:n])
	}
	return chunks
}

func plain(t testing.TB, chunks [][]byte) [][]byte {
	dec, err := zstd.NewReader(nil)
	require.NoError(t, err)
	defer dec.Close()
	out := make([][]byte, len(chunks))
	for i, c := range chunks {
		out[i], err = dec.DecodeAll(c, nil)
		require.NoError(t, err)
	}
	return out
}

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/layer.v2.toc from the current encoding")

// TestGoldenTable shows that the stored form is pinned: a version 1 table
// (no facts), which the engine wrote before this package existed, still
// decodes to what scanning its layer gives today, facts aside; the
// version 2 table decodes to exactly that, and encoding it again gives
// the same bytes (compared before zstd, whose output may change with the
// library).
func TestGoldenTable(t *testing.T) {
	tarBytes := goldenTar(t)
	layer := digest.FromBytes(tarBytes)

	var refused []string
	rd := bytes.NewReader(tarBytes)
	b, size, n, err := Scan(layer, NewCounter(rd, rd), testLimits, func(r Refusal) { refused = append(refused, r.Name+": "+r.Reason) })
	require.NoError(t, err)
	want, err := os.ReadFile("testdata/refusals.txt")
	require.NoError(t, err)
	assert.Equal(t, string(want), strings.Join(refused, "\n")+"\n")
	chunks := b.Finish(layer, size, n)
	scanned, err := Decode(layer, chunks, testLimits.MaxEntries)
	require.NoError(t, err)
	if *updateGolden {
		writeGolden(t, "testdata/layer.v2.toc", chunks)
	}

	v1, err := Decode(layer, readGolden(t, "testdata/layer.toc"), testLimits.MaxEntries)
	require.NoError(t, err)
	golden := readGolden(t, "testdata/layer.v2.toc")
	require.Len(t, golden, 3, "a meta chunk and two chunks of entries")
	toc, err := Decode(layer, golden, testLimits.MaxEntries)
	require.NoError(t, err)
	assert.Equal(t, plain(t, golden), plain(t, chunks), "encoding changed")
	assert.Equal(t, toc, scanned)
	withoutFacts := *scanned
	withoutFacts.Entries = slices.Clone(scanned.Entries)
	for i := range withoutFacts.Entries {
		withoutFacts.Entries[i].Facts = 0
	}
	assert.Equal(t, &withoutFacts, v1, "a version 1 table decodes, without facts")

	assert.Equal(t, layer, toc.Data)
	assert.Equal(t, int64(len(tarBytes)), toc.TarSize)
	assert.Equal(t, 3, toc.Refused)
	require.Len(t, toc.Entries, 6009)
	assert.Equal(t, Entry{Name: ".", Type: tar.TypeDir, Mode: 0o755, ModTime: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)},
		withUTC(toc.Entries[0]))
	tool := toc.Entries[3]
	assert.Equal(t, "usr/bin/tool", tool.Name)
	assert.Equal(t, uint32(0o4755), tool.Mode)
	assert.Equal(t, int64(3000), tool.Size)
	assert.Equal(t, FactsRecorded, tool.Facts, "an executable looked at: not ELF")
	assert.Equal(t, Facts(0), toc.Entries[2].Facts, "etc/passwd is not executable: not looked at")
	assert.Equal(t, bytes.Repeat([]byte("x"), 3000), tarBytes[tool.Offset:tool.Offset+tool.Size])
	assert.Equal(t, int64(-5), tool.ModTime.Unix())
	assert.Equal(t, Entry{Name: "usr/bin/hard", Type: tar.TypeLink, Linkname: "usr/bin/tool", Mode: 0o755}, withoutTime(toc.Entries[5]))
	assert.Equal(t, Entry{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, withoutTime(toc.Entries[6]))

	// A stream (a compressed layer's derivation) gives the same table.
	b2, size2, n2, err := Scan(layer, NewCounter(bytes.NewReader(tarBytes), nil), testLimits, func(Refusal) {})
	require.NoError(t, err)
	assert.Equal(t, plain(t, chunks), plain(t, b2.Finish(layer, size2, n2)))
}

// writeGolden writes chunks as readGolden reads them.
func writeGolden(t testing.TB, name string, chunks [][]byte) {
	var buf bytes.Buffer
	for i, c := range chunks {
		fmt.Fprintf(&buf, "chunk %d %d\n", i, len(c))
		buf.Write(c)
		buf.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(name, buf.Bytes(), 0o644))
}

func withUTC(e Entry) Entry {
	e.ModTime = e.ModTime.UTC()
	return e
}

func withoutTime(e Entry) Entry {
	e.ModTime = time.Time{}
	return e
}

func TestDecodeRefusesDamage(t *testing.T) {
	tarBytes := goldenTar(t)
	layer := digest.FromBytes(tarBytes)
	golden := readGolden(t, "testdata/layer.v2.toc")
	_, err := Decode(layer, nil, 10)
	assert.ErrorIs(t, err, errdefs.ErrCorrupt)
	_, err = Decode(layer, golden, 100)
	assert.ErrorIs(t, err, errdefs.ErrLayerRefused, "more entries than the limit")
	_, err = Decode(layer, golden[:2], testLimits.MaxEntries)
	assert.ErrorIs(t, err, errdefs.ErrCorrupt, "a chunk missing")
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	p := plain(t, golden)
	for _, cut := range []int{1, 7, len(p[1]) / 2, len(p[1]) - 1} {
		damaged := append([][]byte{golden[0], enc.EncodeAll(p[1][:cut], nil)}, golden[2:]...)
		_, err = Decode(layer, damaged, testLimits.MaxEntries)
		assert.ErrorIs(t, err, errdefs.ErrCorrupt, "chunk cut at %d", cut)
	}
	_, err = Decode(layer, [][]byte{[]byte("not zstd")}, 10)
	assert.ErrorIs(t, err, errdefs.ErrCorrupt)
	_, err = Decode(layer, [][]byte{enc.EncodeAll([]byte{9}, nil)}, 10)
	assert.ErrorIs(t, err, errdefs.ErrCorrupt, "unknown version")
}

func TestCleanEntryName(t *testing.T) {
	tests := []struct{ in, want, why string }{
		{"a/b", "a/b", ""},
		{"./a/b/", "a/b", ""},
		{"a/../b", "b", ""},
		{"./", ".", ""},
		{"", "", "empty name"},
		{"/etc/passwd", "", "absolute path"},
		{"../x", "", "path leaves the root (..)"},
		{"a/../../x", "", "path leaves the root (..)"},
		{"a\x00b", "", "NUL in name"},
		{strings.Repeat("a", 256), "", "path component longer than 255 bytes"},
		{strings.Repeat("a/", 2049), "", "name too long"},
	}
	for _, tt := range tests {
		got, why := cleanEntryName(tt.in, 4096)
		assert.Equal(t, tt.want, got, "%q", tt.in)
		assert.Equal(t, tt.why, why, "%q", tt.in)
	}
}

func TestScanRefusesHostileEntries(t *testing.T) {
	tests := []struct {
		name string
		h    tar.Header
		why  string
	}{
		{"symlink out", tar.Header{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "../../x"}, "symlink target leaves the root"},
		{"symlink empty", tar.Header{Name: "l", Typeflag: tar.TypeSymlink}, "bad symlink target"},
		{"hard link out", tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../x"}, "hard link target: path leaves the root (..)"},
		{"hard link to itself", tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "./h"}, "hard link to itself"},
		{"root not a dir", tar.Header{Name: "./", Typeflag: tar.TypeReg}, "root is not a directory"},
		{"negative owner", tar.Header{Name: "f", Typeflag: tar.TypeReg, Uid: -1}, "owner out of range"},
		{"sparse", tar.Header{Name: "s", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"GNU.sparse.major": "1"}}, "sparse file (not supported)"},
		{"unknown type", tar.Header{Name: "x", Typeflag: 'Z'}, `unsupported entry type 'Z'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, why := tocEntryOf(&tt.h, 0, testLimits)
			assert.Equal(t, tt.why, why, "%+v", e)
		})
	}
}

func TestScanLimits(t *testing.T) {
	tarBytes := goldenTar(t)
	_, _, _, err := Scan("sha256:x", NewCounter(bytes.NewReader(tarBytes), nil), Limits{MaxEntries: 100, MaxNameLen: 4096}, func(Refusal) {})
	assert.ErrorIs(t, err, errdefs.ErrLayerRefused)
	// Cut inside a header block, and inside usr/bin/tool's 3000 bytes.
	// (archive/tar takes a tar cut at a block boundary, or inside the
	// padding after a file's last byte, for a tar without its end marker.)
	for _, cut := range []int{2000, 8000} {
		_, _, _, err = Scan("sha256:x", NewCounter(bytes.NewReader(tarBytes[:cut]), nil), testLimits, func(Refusal) {})
		assert.ErrorIs(t, err, errdefs.ErrLayerRefused, "tar cut at %d", cut)
	}
}

func TestSniffCodec(t *testing.T) {
	assert.Equal(t, "gzip", SniffCodec([]byte{0x1f, 0x8b, 8, 0}))
	assert.Equal(t, "zstd", SniffCodec([]byte{0x28, 0xb5, 0x2f, 0xfd}))
	assert.Equal(t, "tar", SniffCodec([]byte("etc/")))
	assert.Equal(t, "tar", SniffCodec(nil))
}

// FuzzScan feeds arbitrary bytes to Scan as a layer's tar: it never
// panics, and what it accepts decodes again to entries with clean names.
func FuzzScan(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []tar.Header{
		{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "f"},
		{Name: "../x", Typeflag: tar.TypeReg},
		{Name: "a/go", Typeflag: tar.TypeReg, Mode: 0o755, Size: 29},
	} {
		require.NoError(f, tw.WriteHeader(&h))
		if h.Size > 0 {
			tw.Write([]byte("\x7fELF.dep-v0.go.buildinfo.....")[:h.Size])
		}
	}
	tw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxEntries: 1000, MaxNameLen: 4096}
		rd := bytes.NewReader(data)
		b, size, refused, err := Scan("sha256:x", NewCounter(rd, rd), lim, func(Refusal) {})
		if err != nil {
			require.ErrorIs(t, err, errdefs.ErrLayerRefused)
			return
		}
		toc, err := Decode("sha256:x", b.Finish(digest.FromBytes(data), size, refused), lim.MaxEntries)
		require.NoError(t, err)
		for _, e := range toc.Entries {
			require.False(t, e.Name == ".." || strings.HasPrefix(e.Name, "../") || strings.HasPrefix(e.Name, "/"), e.Name)
			require.True(t, e.Offset+e.Size <= size || e.Type != tar.TypeReg)
			if e.Type == tar.TypeReg && e.Offset+e.Size <= int64(len(data)) {
				require.Equal(t, factsOf(&e, data[e.Offset:e.Offset+e.Size]), e.Facts, e.Name)
			}
		}
	})
}

// factsOf is what Scan must record for e with content body, computed
// over the whole body at once.
func factsOf(e *Entry, body []byte) Facts {
	if !wantFacts(e) {
		return 0
	}
	f := FactsRecorded
	if !bytes.HasPrefix(body, elfMagic) {
		return f
	}
	f |= FactELF
	if bytes.Contains(body, goBuildInfoName) {
		f |= FactGoBuildInfoName
	}
	if bytes.Contains(body, cargoAuditName) {
		f |= FactCargoAuditName
	}
	return f
}
