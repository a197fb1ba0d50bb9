package index

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSecrets: stored secrets round-trip, list in name order (names with
// slashes, as Secrets Manager's), and go when deleted.
func TestSecrets(t *testing.T) {
	db := openTest(t)
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutSecret("ecr-pullthroughcache/hub", []byte("sealed-1")))
		require.NoError(t, b.PutSecret("ecr-pullthroughcache/a", []byte("sealed-2")))
		require.NoError(t, b.PutCacheRule("hub", []byte("rule")))
	})
	v, err := db.Secret("ecr-pullthroughcache/hub")
	require.NoError(t, err)
	require.Equal(t, []byte("sealed-1"), v)
	var names []string
	require.NoError(t, db.ListSecrets(func(name string, _ []byte) error {
		names = append(names, name)
		return nil
	}))
	require.Equal(t, []string{"ecr-pullthroughcache/a", "ecr-pullthroughcache/hub"}, names, "secrets only, in name order")
	n := 0
	require.NoError(t, db.ListSecrets(func(string, []byte) error { n++; return io.EOF }))
	require.Equal(t, 1, n)

	commit(t, db, func(b *Batch) { require.NoError(t, b.DeleteSecret("ecr-pullthroughcache/hub")) })
	_, err = db.Secret("ecr-pullthroughcache/hub")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = db.Secret("")
	require.ErrorIs(t, err, ErrInvalidKey)
}

// TestUpstreamChecks: when a tag was checked upstream round-trips; the
// records of a repository go with it, and those of a repository whose
// name it prefixes stay.
func TestUpstreamChecks(t *testing.T) {
	db := openTest(t)
	at := time.Date(2026, 11, 23, 12, 0, 0, 5, time.UTC)
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutRepository(&Repository{Name: "hub/app", CreatedAt: at}))
		require.NoError(t, b.PutUpstreamCheck("hub/app", "v1", at))
		require.NoError(t, b.PutUpstreamCheck("hub/app-b", "v1", at.Add(time.Hour)))
	})
	got, err := db.UpstreamCheck("hub/app", "v1")
	require.NoError(t, err)
	require.True(t, at.Equal(got))
	_, err = db.UpstreamCheck("hub/app", "v2")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = db.UpstreamCheck("hub/app", "")
	require.ErrorIs(t, err, ErrInvalidKey)

	commit(t, db, func(b *Batch) { require.NoError(t, b.DeleteRepository("hub/app")) })
	_, err = db.UpstreamCheck("hub/app", "v1")
	require.ErrorIs(t, err, ErrNotFound, "gone with its repository")
	got, err = db.UpstreamCheck("hub/app-b", "v1")
	require.NoError(t, err)
	require.True(t, at.Add(time.Hour).Equal(got))
}
