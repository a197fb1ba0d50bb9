//go:build linux

package index

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/testenv"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "4m") and returns its
// path. Mounting needs root and a kernel that lets this process mount
// (testenv: a skip on a developer's machine, a failure under CI).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	testenv.NeedRoot(t, "the out-of-space tests mount a small tmpfs")
	dir := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(dir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "mounting a tmpfs (CAP_SYS_ADMIN; a container started with --privileged or --cap-add SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

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

func placeBallast(t *testing.T, dir string, n int) string {
	t.Helper()
	p := filepath.Join(dir, "ballast")
	require.NoError(t, os.WriteFile(p, make([]byte, n), 0o600))
	return p
}

// TestNoSpaceReserve fills a small tmpfs with the default free-space
// reserve: Commit is refused with ErrNoSpace before pebble sees ENOSPC, the
// DB stays usable, and commits succeed again once space is freed, without
// reopening.
func TestNoSpaceReserve(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	ballast := placeBallast(t, dir, 3<<20)
	db, err := Open(filepath.Join(dir, "db"), &Options{Logger: testLogger(t), CacheSize: 1 << 20, MemTableSize: 256 << 10})
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

	require.NoError(t, os.Remove(ballast))
	more, err := fillUntilFull(t, db, len(ok))
	require.ErrorIs(t, err, ErrNoSpace)
	require.NotEmpty(t, more, "commits must work again once space is freed")
}

// TestNoSpaceRaw disables the reserve so that pebble's own WAL write hits
// ENOSPC. pebble treats that as fatal; the index turns it into an error
// wrapping ErrNoSpace and ErrFailed, keeps serving reads, and needs a
// Close and Open to accept writes again.
func TestNoSpaceRaw(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	ballast := placeBallast(t, dir, 5<<20)
	path := filepath.Join(dir, "db")
	opts := &Options{Logger: testLogger(t), CacheSize: 1 << 20, MemTableSize: 1 << 20, MinFreeBytes: -1, BallastSize: -1, CloseTimeout: 5 * time.Second}
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
	require.NoError(t, os.Remove(ballast))
	b := db.NewBatch()
	require.NoError(t, b.PutTemplate("p", []byte("{}")))
	require.ErrorIs(t, b.Commit(true), ErrFailed)
	require.NoError(t, db.Close())
	du, err := db.fs.GetDiskUsage(dir)
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
	dir := mountTmpfs(t, "8m")
	path := filepath.Join(dir, "db")
	db, err := Open(path, &Options{Logger: testLogger(t), CacheSize: 1 << 20,
		MemTableSize: 256 << 10, BallastSize: 512 << 10})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	ballastFile := filepath.Join(path, ballastName)
	fi, err := os.Stat(ballastFile)
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
	require.NoFileExists(t, ballastFile)
	du, err := db.fs.GetDiskUsage(path)
	require.NoError(t, err)
	filler := placeBallast(t, dir, int(du.AvailBytes)-(1<<20))
	err = commitOne()
	require.ErrorIs(t, err, ErrNoSpace)
	require.NotErrorIs(t, err, ErrFailed)
	require.NoError(t, db.Failed())
	_, err = db.Template("p")
	require.NoError(t, err, "reads go on")

	// Space freed: the ballast is recreated and commits go on.
	require.NoError(t, os.Remove(filler))
	require.NoError(t, commitOne())
	require.FileExists(t, ballastFile)
}
