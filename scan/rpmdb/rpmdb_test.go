package rpmdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The databases in testdata were written by rpm 4.18 and Berkeley DB 5.3
// (testdata/make-rpmdbs.sh says how).

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func evrs(pkgs []Package) map[string]string {
	out := map[string]string{}
	for _, p := range pkgs {
		out[p.Name] = p.EVR() + " " + p.Arch + " " + p.SourceName()
	}
	return out
}

func TestSQLite(t *testing.T) {
	b := readFile(t, "rpmdb.sqlite")
	f, err := Detect(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, SQLite, f)
	pkgs, err := Read(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"openssl-libs": "1:3.0.7-16.el9_2 x86_64 openssl",
		"glibc":        "2.34-60.el9 x86_64 glibc",
	}, evrs(pkgs))
	for _, p := range pkgs {
		require.Equal(t, "MIT", p.License)
	}
}

func TestSQLiteWriteAheadLog(t *testing.T) {
	db, wal := readFile(t, "wal/rpmdb.sqlite"), readFile(t, "wal/rpmdb.sqlite-wal")
	// Without its log the database still lists both packages...
	pkgs, err := Read(bytes.NewReader(db), int64(len(db)))
	require.NoError(t, err)
	require.Len(t, pkgs, 2)
	// ...and with it, the committed deletion of glibc's row shows.
	pkgs, err = ReadWithWAL(bytes.NewReader(db), int64(len(db)), bytes.NewReader(wal), int64(len(wal)))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"openssl-libs": "1:3.0.7-16.el9_2 x86_64 openssl"}, evrs(pkgs))
	// A log of another generation (salts changed) holds nothing current.
	stale := bytes.Clone(wal)
	stale[16] ^= 0xff
	pkgs, err = ReadWithWAL(bytes.NewReader(db), int64(len(db)), bytes.NewReader(stale), int64(len(stale)))
	require.NoError(t, err)
	require.Len(t, pkgs, 2)
}

func TestBerkeleyDB(t *testing.T) {
	b := readFile(t, "Packages")
	f, err := Detect(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, BerkeleyDB, f)
	pkgs, err := Read(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"openssl-libs": "1:3.0.7-16.el9_2 x86_64 openssl",
		"glibc":        "2.34-60.el9_2.7 x86_64 glibc",
	}, evrs(pkgs))
}

// writeNDB writes blobs as rpm's ndb backend lays out Packages.db
// (lib/backend/ndb/rpmpkg.c): a 32-byte header (magic, version,
// generation, slot pages, next package index), one page of 16-byte slots
// after it (magic, package index, block offset, block count), then each
// blob in 16-byte blocks between its head and its tail. Debian's rpm is
// built without this backend, so the test writes it.
func writeNDB(blobs [][]byte) []byte {
	le := binary.LittleEndian
	out := make([]byte, ndbPageSize)
	le.PutUint32(out[0:], ndbMagic)
	le.PutUint32(out[4:], ndbVersion)
	le.PutUint32(out[8:], 7)
	le.PutUint32(out[12:], 1)
	le.PutUint32(out[16:], uint32(len(blobs)+1))
	for off := ndbHeaderSize; off < ndbPageSize; off += ndbSlotSize {
		le.PutUint32(out[off:], ndbSlotMagic)
	}
	for i, b := range blobs {
		blk := len(out) / ndbBlockSize
		ext := make([]byte, (ndbBlobHeadLen+len(b)+ndbBlobTailLen+ndbBlockSize-1)/ndbBlockSize*ndbBlockSize)
		le.PutUint32(ext[0:], ndbBlobMagic)
		le.PutUint32(ext[4:], uint32(i+1))
		le.PutUint32(ext[8:], 7)
		le.PutUint32(ext[12:], uint32(len(b)))
		copy(ext[ndbBlobHeadLen:], b)
		tail := ext[len(ext)-ndbBlobTailLen:]
		le.PutUint32(tail[0:], adler32.Checksum(ext[:len(ext)-ndbBlobTailLen]))
		le.PutUint32(tail[4:], uint32(len(b)))
		le.PutUint32(tail[8:], ndbTailMagic)
		slot := out[ndbHeaderSize+ndbSlotSize*i:]
		le.PutUint32(slot[4:], uint32(i+1))
		le.PutUint32(slot[8:], uint32(blk))
		le.PutUint32(slot[12:], uint32(len(ext)/ndbBlockSize))
		out = append(out, ext...)
	}
	return out
}

func sqliteHeaderBlobs(t testing.TB) [][]byte {
	b := readFile(t, "rpmdb.sqlite")
	blobs, err := sqliteBlobs(bytes.NewReader(b), int64(len(b)), nil, 0)
	require.NoError(t, err)
	return blobs
}

func TestNDB(t *testing.T) {
	b := writeNDB(sqliteHeaderBlobs(t))
	f, err := Detect(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, NDB, f)
	pkgs, err := Read(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"openssl-libs": "1:3.0.7-16.el9_2 x86_64 openssl",
		"glibc":        "2.34-60.el9 x86_64 glibc",
	}, evrs(pkgs))
	// A flipped byte in a blob fails its checksum.
	b[ndbPageSize+ndbBlobHeadLen+40] ^= 1
	_, err = Read(bytes.NewReader(b), int64(len(b)))
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestNotADatabase(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0}, 4096)} {
		_, err := Read(bytes.NewReader(b), int64(len(b)))
		require.True(t, errors.Is(err, ErrFormat), "%v", err)
	}
}

// TestTruncated checks that every truncation of every database is an
// error, never a panic and never a partial list passed off as whole.
func TestTruncated(t *testing.T) {
	for _, b := range [][]byte{readFile(t, "rpmdb.sqlite"), readFile(t, "Packages"), writeNDB(sqliteHeaderBlobs(t))} {
		for n := 0; n < len(b); n += 1 + len(b)/200 {
			pkgs, err := Read(bytes.NewReader(b[:n]), int64(n))
			if err == nil {
				require.Len(t, pkgs, 2, "a truncation to %d bytes read as whole", n)
			}
		}
	}
}

func TestSourceName(t *testing.T) {
	for rpm, want := range map[string]string{
		"openssl-3.0.7-16.el9_2.src.rpm":         "openssl",
		"python3.11-3.11.2-2.el9_2.1.src.rpm":    "python3.11",
		"kernel-5.14.0-284.11.1.el9_2.nosrc.rpm": "kernel",
		"":                                       "",
		"weird.src.rpm":                          "",
	} {
		require.Equal(t, want, Package{SourceRPM: rpm}.SourceName(), rpm)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(readFile(f, "Packages"))
	f.Add(writeNDB(sqliteHeaderBlobs(f)))
	f.Add(readFile(f, "rpmdb.sqlite")[:8192])
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := Read(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			for _, p := range pkgs {
				require.NotEmpty(t, p.Name)
			}
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, b := range sqliteHeaderBlobs(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseHeader(b)
		if err == nil {
			require.NotEmpty(t, p.Name)
		}
	})
}
