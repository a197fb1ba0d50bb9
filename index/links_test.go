package index

import (
	"io"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// linkedTo lists the repositories that link d, through the reverse index.
func linkedTo(t *testing.T, db *DB, d digest.Digest) []string {
	t.Helper()
	var out []string
	require.NoError(t, db.LinkedRepositories(d, func(repo string) error {
		out = append(out, repo)
		return nil
	}))
	return out
}

// reverseLinks lists every reverse link index entry as "repo@digest".
func reverseLinks(t *testing.T, db *DB) []string {
	t.Helper()
	var out []string
	require.NoError(t, db.WalkReverseLinks(func(d digest.Digest, repo string) error {
		out = append(out, repo+"@"+d.String())
		return nil
	}))
	return out
}

// TestReverseLinkIndex: every link has its reverse entry, written and
// deleted in the same batch; LinkedRepositories lists the repositories of
// one digest in name order, never another digest's, and stops early on
// io.EOF.
func TestReverseLinkIndex(t *testing.T) {
	db := openTest(t)
	d, other := dg("d"), dg("other")
	commit(t, db, func(b *Batch) {
		for _, r := range []string{"b", "a/b", "a", "a-b"} {
			require.NoError(t, b.PutLink(r, d, t0))
		}
		require.NoError(t, b.PutLink("c", other, t0))
	})
	assert.Equal(t, []string{"a", "a-b", "a/b", "b"}, linkedTo(t, db, d))
	assert.Equal(t, []string{"c"}, linkedTo(t, db, other))
	assert.Empty(t, linkedTo(t, db, dg("absent")))

	var first []string
	require.NoError(t, db.LinkedRepositories(d, func(repo string) error {
		first = append(first, repo)
		if len(first) == 2 {
			return io.EOF
		}
		return nil
	}))
	assert.Equal(t, []string{"a", "a-b"}, first, "io.EOF stops the listing")
	assert.ErrorIs(t, db.LinkedRepositories("sha256:nothex", func(string) error { return nil }), ErrInvalidKey)

	ok, err := db.ReverseLinked("a/b", d)
	require.NoError(t, err)
	assert.True(t, ok)

	// Linking again (a newer time) keeps one entry; unlinking removes both.
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutLink("a", d, t0.Add(1)))
		require.NoError(t, b.DeleteLink("a/b", d))
	})
	assert.Equal(t, []string{"a", "a-b", "b"}, linkedTo(t, db, d))
	for _, kind := range []func(string, digest.Digest) (bool, error){db.Linked, db.ReverseLinked} {
		ok, err := kind("a/b", d)
		require.NoError(t, err)
		assert.False(t, ok)
	}

	// A link put and deleted in one batch leaves neither key.
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutLink("z", other, t0))
		require.NoError(t, b.DeleteLink("z", other))
	})
	assert.Equal(t, []string{"c"}, linkedTo(t, db, other))

	// Deleting a repository removes the reverse entries of its links (and
	// of links put earlier in the same batch), no other repository's.
	commit(t, db, func(b *Batch) {
		require.NoError(t, b.PutLink("a", other, t0))
		require.NoError(t, b.DeleteRepository("a"))
	})
	assert.Equal(t, []string{"a-b", "b"}, linkedTo(t, db, d))
	assert.Equal(t, []string{"c"}, linkedTo(t, db, other))
	assert.Equal(t, []string{"a-b@" + d.String(), "b@" + d.String(), "c@" + other.String()}, reverseLinks(t, db))
}
