package index

import (
	"crypto/rand"
	"io/fs"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/faultfs"
)

// smallDisk is a file system of size bytes, in memory, that fails
// writes past it with ENOSPC as a full disk does (no root, no tmpfs).
func smallDisk(size int64) *faultfs.FS { return faultfs.NewMem(size) }

// fillUntilFull commits 16 KiB manifests until a commit fails; it returns
// the digests committed and the error.
func fillUntilFull(t *testing.T, db *DB, start int) ([]digest.Digest, error) {
	t.Helper()
	var ok []digest.Digest
	for i := start; i < start+5000; i++ {
		p := make([]byte, 16<<10)
		_, _ = rand.Read(p)
		d := digest.FromBytes(p)
		b := db.NewBatch()
		require.NoError(t, b.PutManifest(&Manifest{Repo: "full", Digest: d, MediaType: "x", Payload: p}))
		if err := b.Commit(true); err != nil {
			return ok, err
		}
		ok = append(ok, d)
	}
	t.Fatal("the file system never filled up")
	return nil, nil
}

// placeBallast takes n bytes of disk's quota, as a file of n bytes
// would; its release gives them back.
func placeBallast(t *testing.T, disk *faultfs.FS, n int64) (release func()) {
	t.Helper()
	du, err := disk.GetDiskUsage("")
	require.NoError(t, err)
	require.Less(t, n, int64(du.AvailBytes), "not enough room for the ballast")
	return disk.Take(n)
}

// TestNoSpaceReserve fills a small tmpfs with the default free-space
// reserve: Commit is refused with ErrNoSpace before pebble sees ENOSPC, the
// DB stays usable, and commits succeed again once space is freed, without
// reopening.
func TestNoSpaceReserve(t *testing.T) {
	disk := smallDisk(8 << 20)
	release := placeBallast(t, disk, 3<<20)
	db, err := Open("/db", &Options{FS: disk, Logger: testLogger(t), CacheSize: 1 << 20, MemTableSize: 256 << 10})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()

	ok, err := fillUntilFull(t, db, 0)
	require.ErrorIs(t, err, ErrNoSpace)
	require.NotEmpty(t, ok)
	require.NoError(t, db.Failed())
	for _, d := range ok {
		m, err := db.Manifest("full", d)
		require.NoError(t, err)
		require.Equal(t, d, digest.FromBytes(m.Payload))
	}

	release()
	more, err := fillUntilFull(t, db, len(ok))
	require.ErrorIs(t, err, ErrNoSpace)
	require.NotEmpty(t, more, "commits must work again once space is freed")
}

// TestNoSpaceRaw disables the reserve so that pebble's own WAL write hits
// ENOSPC. pebble treats that as fatal; the index turns it into an error
// wrapping ErrNoSpace and ErrFailed, keeps serving reads, and needs a
// Close and Open to accept writes again.
func TestNoSpaceRaw(t *testing.T) {
	disk := smallDisk(8 << 20)
	release := placeBallast(t, disk, 5<<20)
	path := "/db"
	opts := &Options{FS: disk, Logger: testLogger(t), CacheSize: 1 << 20, MemTableSize: 1 << 20, MinFreeBytes: -1, BallastSize: -1, CloseTimeout: 5 * time.Second}
	db, err := Open(path, opts)
	require.NoError(t, err)

	ok, err := fillUntilFull(t, db, 0)
	t.Logf("committed %d manifests, then: %v", len(ok), err)
	require.ErrorIs(t, err, ErrNoSpace)
	require.ErrorIs(t, err, ErrFailed)
	require.NotEmpty(t, ok)
	for _, d := range ok {
		_, err := db.ManifestMeta("full", d)
		require.NoError(t, err)
	}
	// Writes stay refused until reopen, even with space again.
	release()
	b := db.NewBatch()
	require.NoError(t, b.PutTemplate("p", []byte("{}")))
	require.ErrorIs(t, b.Commit(true), ErrFailed)
	require.NoError(t, db.Close())
	du, err := db.fs.GetDiskUsage(path)
	require.NoError(t, err)
	t.Logf("before reopen: %d bytes free of %d", du.AvailBytes, du.TotalBytes)

	db, err = Open(path, opts)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	for _, d := range ok {
		_, err := db.ManifestMeta("full", d)
		require.NoError(t, err)
	}
	b = db.NewBatch()
	require.NoError(t, b.PutTemplate("p", []byte("{}")))
	require.NoError(t, b.Commit(true))
}

// TestNoSpaceBallast checks the ballast protocol deterministically: when
// pebble's file system reports ENOSPC (simulated by calling the OnDiskFull
// callback), the ballast is deleted and commits are refused with ErrNoSpace
// (not ErrFailed) until there is room for the reserve and a new ballast;
// then the ballast is recreated and commits succeed without reopening.
func TestNoSpaceBallast(t *testing.T) {
	disk := smallDisk(8 << 20)
	path := "/db"
	db, err := Open(path, &Options{FS: disk, Logger: testLogger(t), CacheSize: 1 << 20,
		MemTableSize: 256 << 10, BallastSize: 512 << 10})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	ballastFile := disk.PathJoin(path, ballastName)
	fi, err := disk.Stat(ballastFile)
	require.NoError(t, err)
	require.EqualValues(t, 512<<10, fi.Size())

	commitOne := func() error {
		b := db.NewBatch()
		require.NoError(t, b.PutTemplate("p", []byte("{}")))
		return b.Commit(true)
	}
	require.NoError(t, commitOne())

	// Disk full: the ballast goes; fill what it freed and more so that it
	// cannot come back.
	db.onDiskFull()
	_, err = disk.Stat(ballastFile)
	require.ErrorIs(t, err, fs.ErrNotExist)
	du, err := db.fs.GetDiskUsage(path)
	require.NoError(t, err)
	release := placeBallast(t, disk, int64(du.AvailBytes)-(1<<20))
	err = commitOne()
	require.ErrorIs(t, err, ErrNoSpace)
	require.NotErrorIs(t, err, ErrFailed)
	require.NoError(t, db.Failed())
	_, err = db.Template("p")
	require.NoError(t, err, "reads go on")

	// Space freed: the ballast is recreated and commits go on.
	release()
	require.NoError(t, commitOne())
	_, err = disk.Stat(ballastFile)
	require.NoError(t, err, "the ballast is back")
}

// TestIOError fails every write of the index's file system with EIO, as a
// failing disk does: the commit that meets it fails with ErrFailed (not
// ErrNoSpace), earlier commits still read, later writes are refused, and
// a reopen once the disk works again finds every acknowledged commit.
func TestIOError(t *testing.T) {
	disk := smallDisk(64 << 20)
	path := "/db"
	opts := &Options{FS: disk, Logger: testLogger(t), CacheSize: 1 << 20, MemTableSize: 256 << 10, CloseTimeout: 5 * time.Second}
	db, err := Open(path, opts)
	require.NoError(t, err)
	ok, err := fillUntilCount(t, db, 20)
	require.NoError(t, err)

	disk.FailWrites(syscall.EIO)
	b := db.NewBatch()
	require.NoError(t, b.PutTemplate("p", []byte("{}")))
	err = b.Commit(true)
	require.ErrorIs(t, err, ErrFailed)
	require.NotErrorIs(t, err, ErrNoSpace)
	for _, d := range ok {
		_, err := db.ManifestMeta("full", d)
		require.NoError(t, err, "reads go on")
	}
	disk.FailWrites(nil)
	b = db.NewBatch()
	require.NoError(t, b.PutTemplate("p", []byte("{}")))
	require.ErrorIs(t, b.Commit(true), ErrFailed, "writes stay refused until reopen")
	require.NoError(t, db.Close())

	db, err = Open(path, opts)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	for _, d := range ok {
		_, err := db.ManifestMeta("full", d)
		require.NoError(t, err, "an acknowledged commit survives")
	}
	b = db.NewBatch()
	require.NoError(t, b.PutTemplate("p", []byte("{}")))
	require.NoError(t, b.Commit(true))
}

// fillUntilCount commits n 16 KiB manifests.
func fillUntilCount(t *testing.T, db *DB, n int) ([]digest.Digest, error) {
	t.Helper()
	var ok []digest.Digest
	for range n {
		p := make([]byte, 16<<10)
		_, _ = rand.Read(p)
		d := digest.FromBytes(p)
		b := db.NewBatch()
		require.NoError(t, b.PutManifest(&Manifest{Repo: "full", Digest: d, MediaType: "x", Payload: p}))
		if err := b.Commit(true); err != nil {
			return ok, err
		}
		ok = append(ok, d)
	}
	return ok, nil
}
