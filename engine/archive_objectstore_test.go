package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/index"
	"github.com/berthstore/berth/internal/miniotest"
)

// TestArchiveInBucketRestoredByAnotherReplica: with the blobs in a
// bucket, a lifecycle transition moves an image's blobs to the archive
// tier's objects (<prefix>archive/blobs/, none left in the hot tier's
// <prefix>blobs/), and another engine with a data directory of its own
// over the same database and bucket (the store's identity and keyring
// shared, as replicas share them) restores the image, which then pulls
// bit-exact there; the archive prefix is empty afterwards and fsck finds
// the store clean.
func TestArchiveInBucketRestoredByAnotherReplica(t *testing.T) {
	pg, m := scaleOutServers(t)
	client, bucket := newTestBucket(t, m)
	ctx := context.Background()
	clk := manualClock()
	o := quietOptions()
	o.Clock = clk
	o.Metadata = pg.NewDatabase(t)
	o.ObjectStore = &ObjectStoreOptions{Endpoint: m.Endpoint, Bucket: bucket, Prefix: "reg/", AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey}

	dirA := t.TempDir()
	a, err := Open(dirA, o)
	require.NoError(t, err)
	layer := vendoredSource(t, 2<<20)
	_, payload := pushImage(t, a, "team/app", "v1", layer)
	blobs := manifestBlobs(t, payload)
	require.Len(t, objectKeys(t, client, bucket, "reg/blobs/"), len(blobs))

	clk.Advance(40 * 24 * time.Hour)
	require.NoError(t, a.PutLifecyclePolicy(ctx, "team/app", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}]}`))
	applied, err := a.LifecycleApply(ctx, "team/app", "")
	require.NoError(t, err)
	require.Len(t, applied, 1)
	waitTiers(t, a)
	for _, b := range blobs {
		assert.Equal(t, index.TierArchive, tierOf(t, a, b))
	}
	assert.Empty(t, objectKeys(t, client, bucket, "reg/blobs/"), "nothing of the image is left in the hot tier")
	archived := objectKeys(t, client, bucket, "reg/archive/blobs/")
	assert.Len(t, archived, len(blobs), "the archive tier's objects")
	assert.Empty(t, dirBytes(t, filepath.Join(dirA, "archive", "blobs")), "no archive file on the replica that archived")
	require.NoError(t, a.Close())

	// Another replica: its own data directory, the store's identity and
	// keyring as every replica has them.
	dirB := t.TempDir()
	for _, f := range []string{storeIDFile, "keyring.json"} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dirB, f), b, 0o600))
	}
	b, err := Open(dirB, o)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	_, err = b.GetManifest(ctx, "team/app", "v1")
	require.ErrorIs(t, err, ErrImageArchived)
	_, err = b.UpdateImageStorageClass(ctx, "team/app", "v1", StorageStandard)
	require.NoError(t, err)
	waitTiers(t, b)
	got, err := b.GetManifest(ctx, "team/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, payload, got.Payload)
	assert.True(t, bytes.Equal(layer, readArchived(t, b, "team/app", blobs[1])), "the layer pulls bit-exact after its restore on another replica")
	assert.Empty(t, objectKeys(t, client, bucket, "reg/archive/blobs/"), "a restore leaves nothing in the archive")
	hot := objectKeys(t, client, bucket, "reg/blobs/")
	assert.Len(t, hot, len(blobs))
	for _, k := range hot {
		assert.False(t, strings.Contains(k, "archive"), k)
	}
	r, err := b.Fsck(ctx, FsckOptions{Verify: true})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
	assert.Empty(t, r.Orphans)
}
