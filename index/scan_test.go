package index

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

// TestVulnVersions: records and package keys of several versions; a
// deletion keeps exactly the versions named.
func TestVulnVersions(t *testing.T) {
	db := openTest(t)
	b := db.NewBatch()
	for _, v := range []uint64{1, 2, 3, 255, 256} {
		require.NoError(t, b.PutVulnRecord(v, "DSA-1", []byte{byte(v)}))
		require.NoError(t, b.PutVulnKey(v, "Debian:12", "glibc", "DSA-1"))
		require.NoError(t, b.PutVulnKey(v, "Debian:12", "glibc", "DSA-0"))
	}
	require.NoError(t, b.Commit(true))
	ids := func(v uint64) []string {
		var out []string
		require.NoError(t, db.VulnIDs(v, "Debian:12", "glibc", func(id string) error { out = append(out, id); return nil }))
		return out
	}
	require.Equal(t, []string{"DSA-0", "DSA-1"}, ids(2))
	require.Empty(t, ids(4))
	require.Empty(t, func() []string {
		var out []string
		require.NoError(t, db.VulnIDs(2, "Debian:12", "glib", func(id string) error { out = append(out, id); return nil }))
		return out
	}(), "a name that is a prefix of another is not it")

	b = db.NewBatch()
	require.NoError(t, b.DeleteVulnVersionsExcept(256, 2))
	require.NoError(t, b.Commit(true))
	for v, kept := range map[uint64]bool{1: false, 2: true, 3: false, 255: false, 256: true} {
		_, err := db.VulnRecord(v, "DSA-1")
		if kept {
			require.NoError(t, err, "version %d", v)
			require.Len(t, ids(v), 2)
		} else {
			require.ErrorIs(t, err, ErrNotFound, "version %d", v)
			require.Empty(t, ids(v))
		}
	}
	n, err := db.CountVulnRecords(256)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	b = db.NewBatch()
	require.NoError(t, b.DeleteVulnVersionsExcept())
	require.NoError(t, b.Commit(true))
	_, err = db.VulnRecord(2, "DSA-1")
	require.ErrorIs(t, err, ErrNotFound)

	b = db.NewBatch()
	require.ErrorIs(t, b.PutVulnKey(1, "Debian:12", "a\x00b", "X-1"), ErrInvalidKey)
	require.ErrorIs(t, b.PutVulnRecord(1, "", nil), ErrInvalidKey)
	require.NoError(t, b.Close())
}

// TestScanRecordsFollowImages: an image's scan record and job go with
// its manifest and with its repository.
func TestScanRecordsFollowImages(t *testing.T) {
	db := openTest(t)
	d1, d2 := digest.FromString("one"), digest.FromString("two")
	b := db.NewBatch()
	for _, r := range []string{"a", "a-b"} {
		for _, d := range []digest.Digest{d1, d2} {
			require.NoError(t, b.PutScan(r, d, []byte("rec")))
			require.NoError(t, b.PutScanJob(r, d, []byte("job")))
		}
	}
	require.NoError(t, b.Commit(true))
	v, err := db.Scan("a", d1)
	require.NoError(t, err)
	require.Equal(t, "rec", string(v))

	b = db.NewBatch()
	require.NoError(t, b.DeleteManifest("a", d1))
	require.NoError(t, b.Commit(true))
	_, err = db.Scan("a", d1)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = db.ScanJob("a", d1)
	require.ErrorIs(t, err, ErrNotFound)

	b = db.NewBatch()
	require.NoError(t, b.DeleteRepository("a"))
	require.NoError(t, b.Commit(true))
	var left []string
	require.NoError(t, db.WalkScans(func(r string, d digest.Digest, v []byte) error {
		left = append(left, r+"@"+string(d)+"="+string(v))
		return nil
	}))
	require.ElementsMatch(t, []string{"a-b@" + string(d1) + "=rec", "a-b@" + string(d2) + "=rec"}, left)
	jobs := 0
	require.NoError(t, db.WalkScanJobs(func(string, digest.Digest, []byte) error { jobs++; return nil }))
	require.Equal(t, 2, jobs)
}
