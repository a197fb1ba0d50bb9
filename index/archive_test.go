package index

import (
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestArchiveFieldsRoundTrip: a manifest's status and archive times and a
// blob's tier survive a write and a read; records whose archive fields are
// zero keep value format 1, the others are format 2.
func TestArchiveFieldsRoundTrip(t *testing.T) {
	db := openTest(t)
	active := &Manifest{Repo: "r", Digest: dg("active"), MediaType: "mt", PushedAt: t0, Payload: []byte("{}")}
	archived := &Manifest{Repo: "r", Digest: dg("archived"), MediaType: "mt", PushedAt: t0,
		Blobs: []digest.Digest{dg("l")}, Payload: []byte(`{"x":1}`),
		Status: StatusArchived, LastArchivedAt: t0.Add(time.Hour)}
	activating := &Manifest{Repo: "r", Digest: dg("activating"), MediaType: "mt", PushedAt: t0, Payload: []byte("{}"),
		Status: StatusActivating, LastArchivedAt: t0.Add(time.Hour), LastActivatedAt: t0.Add(2 * time.Hour)}
	hot := &Blob{Digest: dg("hot"), Size: 3, StoredSize: 9, CreatedAt: t0, FileID: []byte("f")}
	cold := &Blob{Digest: dg("cold"), Size: 3, StoredSize: 5, CreatedAt: t0, FileID: []byte("g"), Tier: TierArchive}
	commit(t, db, func(b *Batch) {
		for _, m := range []*Manifest{active, archived, activating} {
			require.NoError(t, b.PutManifest(m))
		}
		require.NoError(t, b.PutBlob(hot))
		require.NoError(t, b.PutBlob(cold))
	})
	for _, m := range []*Manifest{active, archived, activating} {
		got, err := db.Manifest("r", m.Digest)
		require.NoError(t, err)
		assert.Equal(t, m.Status, got.Status, m.Digest)
		assert.True(t, m.LastArchivedAt.Equal(got.LastArchivedAt))
		assert.True(t, m.LastActivatedAt.Equal(got.LastActivatedAt))
		assert.Equal(t, m.Payload, got.Payload, "the payload stays last")
		meta, err := db.ManifestMeta("r", m.Digest)
		require.NoError(t, err)
		assert.Equal(t, m.Status, meta.Status)
		assert.Equal(t, int64(len(m.Payload)), meta.PayloadSize)
	}
	for _, bl := range []*Blob{hot, cold} {
		got, err := db.Blob(bl.Digest)
		require.NoError(t, err)
		assert.Equal(t, bl.Tier, got.Tier)
		assert.Equal(t, bl.FileID, got.FileID)
	}
	assert.Equal(t, valueV1, encodeManifest(active)[0])
	assert.Equal(t, valueV2, encodeManifest(archived)[0])
	assert.Equal(t, valueV1, encodeBlob(hot)[0])
	assert.Equal(t, valueV2, encodeBlob(cold)[0])
	assert.Equal(t, "ARCHIVED", StatusArchived.String())
	assert.Equal(t, "archive", TierArchive.String())
}

// TestArchiveFieldsCorrupt: a status or tier out of range, or format 2
// fields cut short, read as ErrCorrupt.
func TestArchiveFieldsCorrupt(t *testing.T) {
	m := encodeManifest(&Manifest{Repo: "r", Digest: dg("m"), Status: StatusArchived, Payload: []byte("p")})
	_, err := decodeManifest("r", dg("m"), m[:len(m)-4], true)
	assert.ErrorIs(t, err, ErrCorrupt)
	bad := encodeManifest(&Manifest{Repo: "r", Digest: dg("m"), Status: ImageStatus(9)})
	_, err = decodeManifest("r", dg("m"), bad, true)
	assert.ErrorIs(t, err, ErrCorrupt)
	b := encodeBlob(&Blob{Digest: dg("b"), Tier: Tier(7)})
	_, err = decodeBlob(dg("b"), b)
	assert.ErrorIs(t, err, ErrCorrupt)
	b = encodeBlob(&Blob{Digest: dg("b"), Tier: TierArchive})
	_, err = decodeBlob(dg("b"), b[:len(b)-1])
	assert.ErrorIs(t, err, ErrCorrupt)
	_, err = decodeBlob(dg("b"), append([]byte{3}, b[1:]...))
	assert.ErrorIs(t, err, ErrCorrupt, "a format newer than 2")
	_, err = decodeTierJob("r", dg("j"), []byte{valueV1, 9, 0, 0})
	assert.ErrorIs(t, err, ErrCorrupt, "an unknown job kind")
}

// TestTierJobs: jobs are written, replaced, walked in key order, deleted,
// and go with their repository.
func TestTierJobs(t *testing.T) {
	db := openTest(t)
	j1 := &TierJob{Repo: "a", Digest: dg("1"), Kind: JobArchive, Manifests: []digest.Digest{dg("1"), dg("c")}, CreatedAt: t0}
	j2 := &TierJob{Repo: "a-b", Digest: dg("2"), Kind: JobRestore, Manifests: []digest.Digest{dg("2")}, CreatedAt: t0}
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutRepository(&Repository{Name: "a"}))
		require.NoError(t, b.PutTierJob(j1))
		require.NoError(t, b.PutTierJob(j2))
	})
	got, err := db.TierJob("a", dg("1"))
	require.NoError(t, err)
	assert.Equal(t, j1.Kind, got.Kind)
	assert.Equal(t, j1.Manifests, got.Manifests)
	assert.True(t, got.CreatedAt.Equal(t0))

	j1.Kind = JobRestore
	commit(t, db, func(b *Batch) { require.NoError(t, b.PutTierJob(j1)) })
	got, err = db.TierJob("a", dg("1"))
	require.NoError(t, err)
	assert.Equal(t, JobRestore, got.Kind, "a job replaces the image's earlier one")

	var seen []string
	require.NoError(t, db.WalkTierJobs(func(j *TierJob) error {
		seen = append(seen, j.Repo+"@"+j.Kind.String())
		return nil
	}))
	assert.Equal(t, []string{"a@restore", "a-b@restore"}, seen)

	commit(t, db, func(b *Batch) { require.NoError(t, b.DeleteRepository("a")) })
	_, err = db.TierJob("a", dg("1"))
	assert.ErrorIs(t, err, ErrNotFound, "a repository's jobs go with it")
	_, err = db.TierJob("a-b", dg("2"))
	require.NoError(t, err, "a-b is another repository")
	commit(t, db, func(b *Batch) { require.NoError(t, b.DeleteTierJob("a-b", dg("2"))) })
	_, err = db.TierJob("a-b", dg("2"))
	assert.ErrorIs(t, err, ErrNotFound)
}
