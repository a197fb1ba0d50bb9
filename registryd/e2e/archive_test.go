package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/registryd/cli"
)

// archiveFixture is a daemon with authentication on, its store and
// archive directories, and its clients.
type archiveFixture struct {
	addr, data, archive string
	ecr                 *ecr.Client
	auth                remote.Option
}

// startArchiveDaemon starts registryd with --archive-dir on a directory
// of its own (as it would be on another file system).
func startArchiveDaemon(t *testing.T) *archiveFixture {
	t.Helper()
	f := &archiveFixture{archive: filepath.Join(t.TempDir(), "cold")}
	withAuth := withECRAuth(t)
	f.addr = startServer(t, func(c *cli.Config) {
		withAuth(c)
		c.ArchiveDir = f.archive
		f.data = c.Data
	})
	f.ecr = ecrClient(f.addr, "")
	f.auth = remote.WithAuth(&authn.Basic{Username: "admin", Password: "pw"})
	return f
}

// text is n bytes of pseudo-English from r: words of a fixed vocabulary,
// the common ones often, as in documentation, sources and scripts.
func text(r *rand.Rand, n int) []byte {
	words := make([]string, 4000)
	for i := range words {
		w := make([]byte, 2+r.IntN(9))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		words[i] = string(w)
	}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[int(float64(len(words))*r.Float64()*r.Float64()*r.Float64())])
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

// treeLayer is an uncompressed tar layer holding `versions` releases of
// the same tree of text files (each release edits a few lines), as a
// layer with vendored copies or a package cache has: compressible, with
// repeats further apart than a hot frame (1 MiB).
func treeLayer(t *testing.T, seed uint64, files, fileSize, versions int) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	tree := make([][]byte, files)
	for i := range tree {
		tree[i] = text(r, fileSize)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for v := range versions {
		for i, body := range tree {
			body = bytes.Clone(body)
			for k := range 3 {
				p := r.IntN(len(body) - 16)
				copy(body[p:], fmt.Sprintf(" release-%d.%d ", v, k))
			}
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("opt/app/%d.%d/share/doc-%03d.txt", seed, v, i),
				Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}))
			_, err := tw.Write(body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// plainLayer is an uncompressed tar layer of one text file of n bytes,
// with no repeats beyond those of its words.
func plainLayer(t *testing.T, seed uint64, n int) []byte {
	t.Helper()
	body := text(rand.New(rand.NewPCG(seed, seed+1)), n)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("srv/plain-%d.txt", seed), Mode: 0o644, Size: int64(n),
		ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}))
	_, err := tw.Write(body)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// ociImage is an OCI image of the layers (uncompressed tar).
func ociImage(t *testing.T, layers ...[]byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, ggcrtypes.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ggcrtypes.OCIConfigJSON)
	for _, l := range layers {
		var err error
		img, err = mutate.AppendLayers(img, static.NewLayer(l, ggcrtypes.OCIUncompressedLayer))
		require.NoError(t, err)
	}
	return img
}

func (f *archiveFixture) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(f.addr+"/"+s, name.Insecure)
	require.NoError(t, err)
	return ref
}

// push pushes img as repo:tag and returns its digest.
func (f *archiveFixture) push(t *testing.T, repo, tag string, img v1.Image) string {
	t.Helper()
	require.NoError(t, remote.Write(f.ref(t, repo+":"+tag), img, f.auth))
	d, err := img.Digest()
	require.NoError(t, err)
	return d.String()
}

// requirePullRefused checks that a pull of repo:tag fails as the engine
// answers an archived image: 404 MANIFEST_UNKNOWN, saying it is archived.
func (f *archiveFixture) requirePullRefused(t *testing.T, repo, tag string) {
	t.Helper()
	_, err := remote.Image(f.ref(t, repo+":"+tag), f.auth)
	require.Error(t, err, "%s:%s pulls", repo, tag)
	var te *transport.Error
	require.True(t, errors.As(err, &te), "%v", err)
	assert.Equal(t, http.StatusNotFound, te.StatusCode)
	require.NotEmpty(t, te.Errors, "%v", err)
	assert.Equal(t, transport.ManifestUnknownErrorCode, te.Errors[0].Code)
	assert.Contains(t, te.Errors[0].Message, "archived")
}

// requirePullsExact pulls repo:tag and checks it bit for bit: the
// manifest's digest, and each layer's bytes against want.
func (f *archiveFixture) requirePullsExact(t *testing.T, repo, tag, wantDigest string, want ...[]byte) {
	t.Helper()
	img, err := remote.Image(f.ref(t, repo+":"+tag), f.auth)
	require.NoError(t, err)
	d, err := img.Digest()
	require.NoError(t, err)
	require.Equal(t, wantDigest, d.String())
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, len(want))
	for i, l := range layers {
		rc, err := l.Compressed()
		require.NoError(t, err)
		got, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		require.True(t, bytes.Equal(want[i], got), "%s:%s layer %d differs", repo, tag, i)
	}
}

// blobFile is where a store (the hot one in the data directory, or the
// archive directory) keeps blob d's file.
func blobFile(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", string(d.Algorithm()), d.Encoded()[:2], d.Encoded())
}

func fileSize(t *testing.T, p string) (int64, bool) {
	t.Helper()
	info, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false
	}
	require.NoError(t, err)
	return info.Size(), true
}

// treeBytes sums the sizes of the files under dir.
func treeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		info, err := de.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	}))
	return n
}

// waitFor polls cond until it holds: the archive and restore jobs run in
// the background of the daemon, and a client learns that they finished
// only by looking (DescribeImages' imageStatus, the files). No clock can
// serve: the work is real I/O in another goroutine of the daemon.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval, not a wait for a window
	}
}

// statuses are the imageStatus of every image of repo, by digest.
func (f *archiveFixture) statuses(t *testing.T, repo string) map[string]types.ImageStatus {
	t.Helper()
	out, err := f.ecr.DescribeImages(context.Background(), &ecr.DescribeImagesInput{RepositoryName: aws.String(repo),
		Filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterAny}})
	require.NoError(t, err)
	m := map[string]types.ImageStatus{}
	for _, d := range out.ImageDetails {
		m[aws.ToString(d.ImageDigest)] = d.ImageStatus
	}
	return m
}

// listed are the digests ListImages answers with filter.
func (f *archiveFixture) listed(t *testing.T, repo string, filter *types.ListImagesFilter) []string {
	t.Helper()
	out, err := f.ecr.ListImages(context.Background(), &ecr.ListImagesInput{RepositoryName: aws.String(repo), Filter: filter})
	require.NoError(t, err)
	var ds []string
	for _, id := range out.ImageIds {
		ds = append(ds, aws.ToString(id.ImageDigest))
	}
	return ds
}

// adminPost calls the admin API as the administrator.
func (f *archiveFixture) adminPost(t *testing.T, path string, body []byte) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+f.addr+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
	return b
}

// TestArchiveTier: through a real registryd, an image archived by a
// lifecycle transition rule and one archived by UpdateImageStorageClass
// do not pull (404 MANIFEST_UNKNOWN), are listed and described as
// ARCHIVED, take at least 30% fewer bytes in the archive directory than
// they took in the hot store (printed), and pull bit-exact after a
// restore; the layer an archived image shares with an active one stays
// hot and the active image pulls throughout; fsck is clean at the end.
func TestArchiveTier(t *testing.T) {
	ctx := context.Background()
	f := startArchiveDaemon(t)
	const repo = "team/archive"
	_, err := f.ecr.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
	require.NoError(t, err)

	// Compressible layers: three releases of a tree of text files
	// (shared by the rule's two images, and one of each's own), and a
	// plain text file.
	shared := treeLayer(t, 1, 12, 160<<10, 3)
	oldOwn := treeLayer(t, 2, 16, 160<<10, 3)
	newOwn := treeLayer(t, 3, 4, 64<<10, 2)
	manualTree := treeLayer(t, 4, 12, 160<<10, 3)
	manualPlain := plainLayer(t, 5, 2<<20)
	oldImg, newImg, manualImg := ociImage(t, shared, oldOwn), ociImage(t, shared, newOwn), ociImage(t, manualTree, manualPlain)
	dOld := f.push(t, repo, "rule-1", oldImg)
	dNew := f.push(t, repo, "rule-2", newImg)
	dManual := f.push(t, repo, "manual", manualImg)

	// The blobs that will move (the archived images' configs and own
	// layers) and what they take in the hot store now.
	var moving []digest.Digest
	what := map[digest.Digest]string{}
	for i, img := range []v1.Image{oldImg, manualImg} {
		cd, err := img.ConfigName()
		require.NoError(t, err)
		moving = append(moving, digest.Digest(cd.String()))
		what[moving[len(moving)-1]] = []string{"config of rule-1", "config of manual"}[i]
	}
	for i, l := range [][]byte{oldOwn, manualTree, manualPlain} {
		moving = append(moving, digest.FromBytes(l))
		what[moving[len(moving)-1]] = fmt.Sprintf("%s (%d bytes)", []string{"rule-1's own tree layer", "manual's tree layer", "manual's plain text layer"}[i], len(l))
	}
	dShared := digest.FromBytes(shared)
	var hotBytes int64
	hotSize := map[digest.Digest]int64{}
	for _, d := range moving {
		n, ok := fileSize(t, blobFile(f.data, d))
		require.True(t, ok, "%s is hot", d)
		hotBytes += n
		hotSize[d] = n
	}

	// A lifecycle transition rule: the rule-* images beyond the newest
	// go to the archive. The preview says so; the admin API applies it.
	policy := `{"rules":[{"rulePriority":1,"description":"archive older releases","selection":{"tagStatus":"tagged","tagPrefixList":["rule"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"transition","targetStorageClass":"archive"}}]}`
	_, err = f.ecr.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(repo), LifecyclePolicyText: aws.String(policy)})
	require.NoError(t, err)
	_, err = f.ecr.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String(repo)})
	require.NoError(t, err)
	prev, err := f.ecr.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String(repo)})
	require.NoError(t, err)
	require.Len(t, prev.PreviewResults, 1)
	assert.Equal(t, dOld, aws.ToString(prev.PreviewResults[0].ImageDigest))
	assert.Equal(t, types.ImageActionTypeTransition, prev.PreviewResults[0].Action.Type)
	assert.Equal(t, types.LifecyclePolicyTargetStorageClassArchive, prev.PreviewResults[0].Action.TargetStorageClass)
	assert.Equal(t, types.LifecyclePolicyStorageClassStandard, prev.PreviewResults[0].StorageClass)
	require.Len(t, prev.Summary.TransitioningImageTotalCounts, 1)
	assert.Equal(t, int32(1), aws.ToInt32(prev.Summary.TransitioningImageTotalCounts[0].ImageTotalCount))
	assert.Equal(t, int32(0), aws.ToInt32(prev.Summary.ExpiringImageTotalCount))
	applied := f.adminPost(t, "/admin/v1/lifecycle/apply?repository="+repo, nil)
	assert.Contains(t, string(applied), dOld)

	// The other by UpdateImageStorageClass.
	upd, err := f.ecr.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: aws.String(repo),
		ImageId: &types.ImageIdentifier{ImageTag: aws.String("manual")}, TargetStorageClass: types.TargetStorageClassArchive})
	require.NoError(t, err)
	assert.Equal(t, types.ImageStatusArchived, upd.ImageStatus)
	assert.Equal(t, dManual, aws.ToString(upd.ImageId.ImageDigest))
	_, err = f.ecr.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: aws.String(repo),
		ImageId: &types.ImageIdentifier{ImageTag: aws.String("manual")}, TargetStorageClass: types.TargetStorageClassArchive})
	requireAPIError(t, err, "ImageStorageClassUpdateNotSupportedException")

	// Archived: no pull.
	for _, tag := range []string{"rule-1", "manual"} {
		f.requirePullRefused(t, repo, tag)
	}

	// Listed and described as ARCHIVED; the lists without a filter are
	// of the active images.
	assert.ElementsMatch(t, []string{dOld, dManual}, f.listed(t, repo, &types.ListImagesFilter{ImageStatus: types.ImageStatusFilterArchived}))
	assert.ElementsMatch(t, []string{dNew}, f.listed(t, repo, nil))
	assert.ElementsMatch(t, []string{dOld, dNew, dManual}, f.listed(t, repo, &types.ListImagesFilter{ImageStatus: types.ImageStatusFilterAny}))
	desc, err := f.ecr.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo),
		Filter: &types.DescribeImagesFilter{ImageStatus: types.ImageStatusFilterArchived}})
	require.NoError(t, err)
	require.Len(t, desc.ImageDetails, 2)
	for _, d := range desc.ImageDetails {
		assert.Equal(t, types.ImageStatusArchived, d.ImageStatus)
		require.NotNil(t, d.LastArchivedAt)
		assert.WithinDuration(t, time.Now(), *d.LastArchivedAt, 5*time.Minute)
		assert.Nil(t, d.LastActivatedAt)
	}
	got, err := f.ecr.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String(repo),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("manual")}}})
	require.NoError(t, err)
	require.Empty(t, got.Images)
	require.Len(t, got.Failures, 1)
	assert.Equal(t, types.ImageFailureCodeImageInaccessible, got.Failures[0].FailureCode)

	// The blobs move to the archive directory in the background.
	waitFor(t, "the archived blobs to leave the hot store", func() bool {
		for _, d := range moving {
			if _, hot := fileSize(t, blobFile(f.data, d)); hot {
				return false
			}
			if _, cold := fileSize(t, blobFile(f.archive, d)); !cold {
				return false
			}
		}
		return true
	})
	// A blob in the archive tier does not pull either.
	status, _, body := httpDo(t, http.MethodGet, "http://"+f.addr+"/v2/"+repo+"/blobs/"+digest.FromBytes(oldOwn).String(), nil,
		map[string]string{"Authorization": "Basic YWRtaW46cHc="})
	assert.Equal(t, http.StatusNotFound, status, "%s", body)
	assert.Contains(t, string(body), "BLOB_UNKNOWN")
	assert.Contains(t, string(body), "archived")

	archiveBytes := treeBytes(t, filepath.Join(f.archive, "blobs"))
	for _, d := range moving {
		n, _ := fileSize(t, blobFile(f.archive, d))
		t.Logf("%s: %d bytes hot, %d bytes archived", what[d], hotSize[d], n)
	}
	t.Logf("archived blobs: %d bytes in the hot store before, %d bytes in the archive directory (%.1f%% fewer)",
		hotBytes, archiveBytes, 100*(1-float64(archiveBytes)/float64(hotBytes)))
	assert.LessOrEqual(t, float64(archiveBytes), 0.7*float64(hotBytes), "the archive tier saves at least 30%% on compressible layers")

	// The shared layer stays hot, and the active image pulls.
	_, hot := fileSize(t, blobFile(f.data, dShared))
	assert.True(t, hot, "the layer an active image shares stays in the hot store")
	_, cold := fileSize(t, blobFile(f.archive, dShared))
	assert.False(t, cold, "the shared layer has no archive copy")
	f.requirePullsExact(t, repo, "rule-2", dNew, shared, newOwn)

	// Restore both: ACTIVATING, then ACTIVE, and they pull bit-exact.
	for _, d := range []string{dOld, dManual} {
		upd, err := f.ecr.UpdateImageStorageClass(ctx, &ecr.UpdateImageStorageClassInput{RepositoryName: aws.String(repo),
			ImageId: &types.ImageIdentifier{ImageDigest: aws.String(d)}, TargetStorageClass: types.TargetStorageClassStandard})
		require.NoError(t, err)
		assert.Contains(t, []types.ImageStatus{types.ImageStatusActivating, types.ImageStatusActive}, upd.ImageStatus)
	}
	waitFor(t, "the restores", func() bool {
		st := f.statuses(t, repo)
		return st[dOld] == types.ImageStatusActive && st[dManual] == types.ImageStatusActive
	})
	f.requirePullsExact(t, repo, "rule-1", dOld, shared, oldOwn)
	f.requirePullsExact(t, repo, "manual", dManual, manualTree, manualPlain)
	f.requirePullsExact(t, repo, "rule-2", dNew, shared, newOwn)
	for _, d := range moving {
		_, hot := fileSize(t, blobFile(f.data, d))
		assert.True(t, hot, "%s is hot again", d)
	}
	desc, err = f.ecr.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("manual")}}})
	require.NoError(t, err)
	require.Len(t, desc.ImageDetails, 1)
	assert.NotNil(t, desc.ImageDetails[0].LastActivatedAt)
	assert.NotNil(t, desc.ImageDetails[0].LastArchivedAt)

	// fsck over both tiers is clean.
	var rep struct {
		Corrupt []json.RawMessage `json:"corrupt"`
	}
	require.NoError(t, json.Unmarshal(f.adminPost(t, "/admin/v1/fsck?verify=true", nil), &rep))
	assert.Empty(t, rep.Corrupt)
}

// TestArchiveWithAWSCLI: the real aws CLI archives an image
// (update-image-storage-class), finds it with describe-images and
// list-images --filter imageStatus=ARCHIVED, and restores it.
func TestArchiveWithAWSCLI(t *testing.T) {
	f := startArchiveDaemon(t)
	run := func(args ...string) map[string]any {
		t.Helper()
		out, err := awsCLI(t, f.addr, append([]string{"ecr"}, args...)...)
		require.NoError(t, err)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &v), out)
		return v
	}
	run("create-repository", "--repository-name", "cli/archive")
	d := f.push(t, "cli/archive", "v1", ociImage(t, treeLayer(t, 7, 4, 64<<10, 2)))

	out := run("update-image-storage-class", "--repository-name", "cli/archive", "--image-id", "imageTag=v1", "--target-storage-class", "ARCHIVE")
	assert.Equal(t, "ARCHIVED", out["imageStatus"])
	assert.Equal(t, d, out["imageId"].(map[string]any)["imageDigest"])
	_, err := awsCLI(t, f.addr, "ecr", "update-image-storage-class", "--repository-name", "cli/archive", "--image-id", "imageTag=v1", "--target-storage-class", "ARCHIVE")
	require.ErrorContains(t, err, "ImageStorageClassUpdateNotSupportedException")
	f.requirePullRefused(t, "cli/archive", "v1")

	details := run("describe-images", "--repository-name", "cli/archive", "--filter", "imageStatus=ARCHIVED")["imageDetails"].([]any)
	require.Len(t, details, 1)
	det := details[0].(map[string]any)
	assert.Equal(t, "ARCHIVED", det["imageStatus"])
	assert.NotNil(t, det["lastArchivedAt"])
	assert.Empty(t, run("describe-images", "--repository-name", "cli/archive")["imageDetails"], "only ACTIVE images without a filter")
	ids := run("list-images", "--repository-name", "cli/archive", "--filter", "imageStatus=ARCHIVED")["imageIds"].([]any)
	require.Len(t, ids, 1)
	assert.Equal(t, d, ids[0].(map[string]any)["imageDigest"])

	out = run("update-image-storage-class", "--repository-name", "cli/archive", "--image-id", "imageDigest="+d, "--target-storage-class", "STANDARD")
	assert.Contains(t, []any{"ACTIVATING", "ACTIVE"}, out["imageStatus"])
	waitFor(t, "the restore", func() bool {
		out := run("describe-images", "--repository-name", "cli/archive", "--image-ids", "imageTag=v1")
		return strings.Contains(fmt.Sprint(out["imageDetails"]), "imageStatus:ACTIVE")
	})
	_, err = remote.Image(f.ref(t, "cli/archive:v1"), f.auth)
	require.NoError(t, err)
}
