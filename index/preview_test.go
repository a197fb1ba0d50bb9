package index

import (
	"io"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A preview's results list in digest order, page after a digest, stop
// early, stay apart from a repository whose name has the first's as a
// prefix, and go with the preview and with the repository.
func TestPreviews(t *testing.T) {
	db := openTest(t)
	_, err := db.Preview("a")
	require.ErrorIs(t, err, ErrNotFound)
	ds := []digest.Digest{dg("1"), dg("2"), dg("3"), dg("4")}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	for _, r := range []string{"a", "a-b", "a/b"} {
		commit(t, db, func(b *Batch) {
			require.NoError(t, b.PutRepository(&Repository{Name: r}))
			require.NoError(t, b.PutPreview(r, []byte("header of "+r)))
			for _, d := range ds {
				require.NoError(t, b.PutPreviewResult(r, d, []byte(r+"@"+string(d))))
			}
		})
	}
	v, err := db.Preview("a")
	require.NoError(t, err)
	assert.Equal(t, "header of a", string(v))

	list := func(repo string, after digest.Digest, stop int) []digest.Digest {
		var got []digest.Digest
		require.NoError(t, db.PreviewResults(repo, after, func(d digest.Digest, v []byte) error {
			assert.Equal(t, repo+"@"+string(d), string(v))
			got = append(got, d)
			if len(got) == stop {
				return io.EOF
			}
			return nil
		}))
		return got
	}
	assert.Equal(t, sorted, list("a", "", 0))
	assert.Equal(t, sorted[2:], list("a", sorted[1], 0), "after is exclusive")
	assert.Equal(t, sorted[:2], list("a", "", 2))
	r, err := db.PreviewResult("a/b", ds[0])
	require.NoError(t, err)
	assert.Equal(t, "a/b@"+string(ds[0]), string(r))
	_, err = db.PreviewResult("a", dg("5"))
	require.ErrorIs(t, err, ErrNotFound)

	// Results replaced: the old ones go, the header stays.
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.DeletePreviewResults("a"))
		require.NoError(t, b.PutPreviewResult("a", dg("5"), []byte("a@"+string(dg("5")))))
	})
	assert.Equal(t, []digest.Digest{dg("5")}, list("a", "", 0))
	assert.Len(t, list("a-b", "", 0), 4, "a's deletion is its own")

	var repos []string
	require.NoError(t, db.ListPreviews(func(repo string, _ []byte) error { repos = append(repos, repo); return nil }))
	assert.Equal(t, []string{"a", "a-b", "a/b"}, repos)

	commit(t, db, func(b *Batch) { require.NoError(t, b.DeletePreview("a-b")) })
	_, err = db.Preview("a-b")
	require.ErrorIs(t, err, ErrNotFound)
	assert.Empty(t, list("a-b", "", 0))
	commit(t, db, func(b *Batch) { require.NoError(t, b.DeleteRepository("a/b")) })
	_, err = db.Preview("a/b")
	require.ErrorIs(t, err, ErrNotFound, "a repository's preview goes with it")
	assert.Empty(t, list("a/b", "", 0))
	assert.Len(t, list("a", "", 0), 1)

	// Previews never show among the other opaque records.
	require.NoError(t, db.ListTemplates(func(p string, _ []byte) error { t.Fatalf("template %q", p); return nil }))
	require.ErrorIs(t, db.PreviewResults("", "", func(digest.Digest, []byte) error { return nil }), ErrInvalidKey)
}

func TestSchedules(t *testing.T) {
	db := openTest(t)
	_, err := db.Schedule("lifecycle")
	require.ErrorIs(t, err, ErrNotFound)
	commit(t, db, func(b *Batch) { require.NoError(t, b.PutSchedule("lifecycle", []byte("state"))) })
	v, err := db.Schedule("lifecycle")
	require.NoError(t, err)
	assert.Equal(t, "state", string(v))
	_, err = db.Schedule("gc")
	require.ErrorIs(t, err, ErrNotFound)
}
