package index

import (
	"io"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWalkLayerTOCs: every layer with a table of contents, once each
// whatever its number of chunks, in digest order; io.EOF stops early;
// fn may write (it runs outside the iterator).
func TestWalkLayerTOCs(t *testing.T) {
	db := openTest(t)
	var want []digest.Digest
	b := db.NewBatch()
	for i, s := range []string{"c", "a", "b"} {
		d := digest.FromString(s)
		chunks := make([][]byte, i+1)
		for j := range chunks {
			chunks[j] = []byte{byte(j)}
		}
		require.NoError(t, b.PutLayerTOC(d, chunks))
		want = append(want, d)
	}
	require.NoError(t, b.Commit(true))
	b.Close()
	slices.Sort(want)

	var got []digest.Digest
	require.NoError(t, db.WalkLayerTOCs(func(l digest.Digest) error { got = append(got, l); return nil }))
	assert.Equal(t, want, got)

	got = nil
	require.NoError(t, db.WalkLayerTOCs(func(l digest.Digest) error { got = append(got, l); return io.EOF }))
	assert.Equal(t, want[:1], got)

	// Deleting each table while walking.
	got = nil
	require.NoError(t, db.WalkLayerTOCs(func(l digest.Digest) error {
		got = append(got, l)
		b := db.NewBatch()
		defer b.Close()
		if err := b.DeleteLayerTOC(l); err != nil {
			return err
		}
		return b.Commit(true)
	}))
	assert.Equal(t, want, got)
	require.NoError(t, db.WalkLayerTOCs(func(l digest.Digest) error { t.Fatalf("%s left", l); return nil }))
}
