package engine

import (
	"context"
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFsckFindsCorruption(t *testing.T) {
	requireLocalBlobs(t, "it damages a blob file in place")
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	d, _ := pushImage(t, e, "f/a", "v1", rnd(70000))
	m, err := e.db.ManifestMeta("f/a", d)
	require.NoError(t, err)
	layer := m.Blobs[1]
	p, err := e.blobs.Path(layer)
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[len(b)-10] ^= 0xff
	require.NoError(t, os.WriteFile(p, b, 0o600))
	cfgPath, err := e.blobs.Path(m.Blobs[0])
	require.NoError(t, err)
	require.NoError(t, os.Remove(cfgPath))

	r, err := e.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(t, err)
	require.False(t, r.Clean())
	kinds := map[string]digest.Digest{}
	for _, f := range r.Corrupt {
		kinds[f.Kind] = f.Digest
	}
	assert.Equal(t, layer, kinds[FsckBadBlob])
	assert.Equal(t, m.Blobs[0], kinds[FsckMissingFile])
}
