package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDiskBytesCountsHardLinksOnce(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1<<20), 0o644))
	one, err := diskBytes(dir)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "repo2"), 0o755))
	require.NoError(t, os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "repo2", "a")))
	linked, err := diskBytes(dir)
	require.NoError(t, err)
	dirOnly, err := diskBytes(filepath.Join(dir, "repo2"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, one, int64(1<<20))
	// The second link adds its directory's blocks, not the file's.
	assert.Less(t, linked-one, int64(1<<20))
	assert.GreaterOrEqual(t, dirOnly, int64(1<<20), "a link alone in a tree counts")
}
