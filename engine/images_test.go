package engine

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImagesDescribesEveryManifest(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	small, smallPayload := pushImage(t, e, "r", "small", rnd(1000))
	big, bigPayload := pushImage(t, e, "r", "big", rnd(5000), rnd(3000))
	_, err := e.PutManifest(ctx, "r", "big-too", "application/vnd.oci.image.manifest.v1+json", bigPayload)
	require.NoError(t, err)
	idx := pushIndex(t, e, "r", "multi", map[digest.Digest]int{small: len(smallPayload), big: len(bigPayload)})

	imgs, err := e.Images(ctx, "r")
	require.NoError(t, err)
	require.Len(t, imgs, 3)
	by := map[digest.Digest]ImageDetail{}
	for i, im := range imgs {
		by[im.Digest] = im
		if i > 0 {
			require.Less(t, imgs[i-1].Digest, im.Digest, "digest order")
		}
	}
	assert.Equal(t, []string{"big", "big-too"}, by[big].Tags)
	// Sizes: config plus layers; the index is its largest child.
	m, err := e.db.ManifestMeta("r", big)
	require.NoError(t, err)
	var want int64
	for _, d := range m.Blobs {
		b, err := e.db.Blob(d)
		require.NoError(t, err)
		want += b.Size
	}
	assert.Equal(t, want, by[big].Size)
	assert.Greater(t, by[big].Size, int64(8000))
	assert.Less(t, by[small].Size, int64(2000))
	assert.Equal(t, by[big].Size, by[idx].Size)
	assert.Equal(t, "application/vnd.oci.image.index.v1+json", by[idx].MediaType)
	assert.Equal(t, []string{"multi"}, by[idx].Tags)
	assert.Equal(t, int64(len(bigPayload)), by[big].ManifestSize)
	assert.False(t, by[big].PushedAt.IsZero())

	// Image describes one the same way, by tag or digest.
	for _, ref := range []string{"multi", string(idx)} {
		one, err := e.Image(ctx, "r", ref)
		require.NoError(t, err)
		assert.Equal(t, by[idx], *one)
	}
	one, err := e.Image(ctx, "r", "big-too")
	require.NoError(t, err)
	assert.Equal(t, by[big], *one)
	_, err = e.Image(ctx, "r", "nope")
	require.ErrorIs(t, err, ErrManifestUnknown)
	_, err = e.Image(ctx, "r", string(digest.FromString("nope")))
	require.ErrorIs(t, err, ErrManifestUnknown)
	_, err = e.Image(ctx, "absent", "v1")
	require.ErrorIs(t, err, ErrNameUnknown)

	_, err = e.Images(ctx, "absent")
	require.ErrorIs(t, err, ErrNameUnknown)
	_, err = e.Images(ctx, "Bad")
	require.ErrorIs(t, err, ErrNameInvalid)
}

func TestUntagAndDeleteImage(t *testing.T) {
	ctx := context.Background()
	e := openTestEngine(t, quietOptions())
	a, aPayload := pushImage(t, e, "r", "a1", rnd(100))
	_, err := e.PutManifest(ctx, "r", "a2", "application/vnd.oci.image.manifest.v1+json", aPayload)
	require.NoError(t, err)
	child, childPayload := pushImage(t, e, "r", "child", rnd(100))
	idx := pushIndex(t, e, "r", "", map[digest.Digest]int{child: len(childPayload)})

	// Untagging one of two tags leaves the image.
	d, deleted, err := e.UntagImage(ctx, "r", "a1")
	require.NoError(t, err)
	assert.Equal(t, a, d)
	assert.False(t, deleted)
	assert.True(t, manifestSet(t, e, "r")[a])
	// Its last tag takes it.
	_, deleted, err = e.UntagImage(ctx, "r", "a2")
	require.NoError(t, err)
	assert.True(t, deleted)
	assert.False(t, manifestSet(t, e, "r")[a])
	_, _, err = e.UntagImage(ctx, "r", "a2")
	require.ErrorIs(t, err, ErrManifestUnknown)

	// An index's child loses its tag but stays; it cannot be deleted by
	// digest while the index lists it; the index can.
	_, deleted, err = e.UntagImage(ctx, "r", "child")
	require.NoError(t, err)
	assert.False(t, deleted)
	assert.True(t, manifestSet(t, e, "r")[child])
	require.ErrorIs(t, e.DeleteImage(ctx, "r", child), ErrImageReferenced)
	require.NoError(t, e.DeleteImage(ctx, "r", idx))
	require.NoError(t, e.DeleteImage(ctx, "r", child))
	assert.Empty(t, manifestSet(t, e, "r"))
	require.ErrorIs(t, e.DeleteImage(ctx, "r", child), ErrManifestUnknown)
}
