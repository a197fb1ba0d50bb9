package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/berthstore/berth/internal/testenv"
)

func TestGoContainerRegistry(t *testing.T) {
	addr := startServer(t, nil)
	ctx := context.Background()

	t.Run("single platform", func(t *testing.T) {
		img, err := random.Image(4096, 3)
		require.NoError(t, err)
		ref, err := name.ParseReference(addr+"/ggcr/single:v1", name.Insecure)
		require.NoError(t, err)
		require.NoError(t, remote.Write(ref, img, remote.WithContext(ctx)))
		got, err := remote.Image(ref, remote.WithContext(ctx))
		require.NoError(t, err)
		wantD, _ := img.Digest()
		gotD, err := got.Digest()
		require.NoError(t, err)
		assert.Equal(t, wantD, gotD)
		layers, err := got.Layers()
		require.NoError(t, err)
		require.Len(t, layers, 3)
		for _, l := range layers {
			rc, err := l.Compressed() // verifies the digest while reading
			require.NoError(t, err)
			_, err = readAll(rc)
			require.NoError(t, err)
		}
		tags, err := remote.List(ref.Context(), remote.WithContext(ctx))
		require.NoError(t, err)
		assert.Equal(t, []string{"v1"}, tags)
	})

	t.Run("multi platform", func(t *testing.T) {
		idx, err := random.Index(1024, 2, 3)
		require.NoError(t, err)
		ref, err := name.ParseReference(addr+"/ggcr/multi:v1", name.Insecure)
		require.NoError(t, err)
		require.NoError(t, remote.WriteIndex(ref, idx, remote.WithContext(ctx)))
		got, err := remote.Index(ref, remote.WithContext(ctx))
		require.NoError(t, err)
		wantD, _ := idx.Digest()
		gotD, err := got.Digest()
		require.NoError(t, err)
		assert.Equal(t, wantD, gotD)
		im, err := got.IndexManifest()
		require.NoError(t, err)
		require.Len(t, im.Manifests, 3)
		for _, desc := range im.Manifests {
			child, err := got.Image(desc.Digest)
			require.NoError(t, err)
			_, err = child.Manifest()
			require.NoError(t, err)
		}
		// Delete by digest, then it is gone.
		require.NoError(t, remote.Delete(ref.Context().Digest(gotD.String()), remote.WithContext(ctx)))
		_, err = remote.Index(ref, remote.WithContext(ctx))
		require.Error(t, err)
	})
}

func TestOrasReferrers(t *testing.T) {
	addr := startServer(t, nil)
	ctx := context.Background()
	repo, err := orasremote.NewRepository(addr + "/oras/artifact")
	require.NoError(t, err)
	repo.PlainHTTP = true

	// An artifact with one blob.
	blob := []byte("artifact payload")
	blobDesc := content.NewDescriptorFromBytes("application/vnd.example.payload", blob)
	require.NoError(t, repo.Push(ctx, blobDesc, strings.NewReader(string(blob))))
	subject, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.artifact",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{blobDesc}})
	require.NoError(t, err)
	require.NoError(t, repo.Tag(ctx, subject, "v1"))

	// A referrer (an SBOM) attached to it.
	sbom := []byte(`{"sbom":true}`)
	sbomDesc := content.NewDescriptorFromBytes("application/spdx+json", sbom)
	require.NoError(t, repo.Push(ctx, sbomDesc, strings.NewReader(string(sbom))))
	referrer, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.sbom",
		oras.PackManifestOptions{Subject: &subject, Layers: []ocispec.Descriptor{sbomDesc},
			ManifestAnnotations: map[string]string{"org.example.kind": "sbom"}})
	require.NoError(t, err)

	// oras discovers it through the referrers API.
	for _, tt := range []struct {
		filter string
		want   int
	}{{"", 1}, {"application/vnd.example.sbom", 1}, {"application/vnd.example.other", 0}} {
		var found []ocispec.Descriptor
		require.NoError(t, repo.Referrers(ctx, subject, tt.filter, func(refs []ocispec.Descriptor) error {
			found = append(found, refs...)
			return nil
		}))
		require.Len(t, found, tt.want, "filter %q", tt.filter)
		if tt.want == 1 {
			assert.Equal(t, referrer.Digest, found[0].Digest)
			assert.Equal(t, "application/vnd.example.sbom", found[0].ArtifactType)
			assert.Equal(t, "sbom", found[0].Annotations["org.example.kind"])
		}
	}
	// The server answered the referrers API itself (no tag-schema fallback).
	status, hdr, body := httpDo(t, http.MethodGet, "http://"+addr+"/v2/oras/artifact/referrers/"+subject.Digest.String()+"?artifactType=application/vnd.example.sbom", nil, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "artifactType", hdr.Get("OCI-Filters-Applied"))
	var idx ocispec.Index
	require.NoError(t, json.Unmarshal(body, &idx))
	require.Len(t, idx.Manifests, 1)

	// Copy the whole graph out and back through oras.
	rc, err := repo.Fetch(ctx, referrer)
	require.NoError(t, err)
	got, err := content.ReadAll(rc, referrer)
	require.NoError(t, err)
	assert.Equal(t, referrer.Digest, digest.FromBytes(got))
}

func TestSkopeoCopy(t *testing.T) {
	skopeo := testenv.NeedTool(t, "skopeo")
	addr := startServer(t, nil)
	// An OCI-typed image: skopeo's layout reader lists only OCI manifests.
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	l1, err := random.Layer(2048, types.OCILayer)
	require.NoError(t, err)
	l2, err := random.Layer(1024, types.OCILayer)
	require.NoError(t, err)
	img, err := mutate.AppendLayers(base, l1, l2)
	require.NoError(t, err)
	src := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(src, empty.Index)
	require.NoError(t, err)
	require.NoError(t, p.AppendImage(img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "v1"})))
	want, _ := img.Digest()

	runTool(t, skopeo, "copy", "--dest-tls-verify=false", "oci:"+src+":v1", "docker://"+addr+"/skopeo/app:v1")
	status, hdr, _ := httpDo(t, http.MethodHead, "http://"+addr+"/v2/skopeo/app/manifests/v1", nil, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, want.String(), hdr.Get("Docker-Content-Digest"))

	dst := filepath.Join(t.TempDir(), "dst")
	runTool(t, skopeo, "copy", "--src-tls-verify=false", "docker://"+addr+"/skopeo/app:v1", "oci:"+dst+":v1")
	lp, err := layout.FromPath(dst)
	require.NoError(t, err)
	ii, err := lp.ImageIndex()
	require.NoError(t, err)
	im, err := ii.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	assert.Equal(t, want, im.Manifests[0].Digest)
	back, err := lp.Image(want)
	require.NoError(t, err)
	layers, err := back.Layers()
	require.NoError(t, err)
	assert.Len(t, layers, 2)
}

func TestCraneTagAndDelete(t *testing.T) {
	crane := testenv.NeedTool(t, "crane")
	addr := startServer(t, nil)
	img, err := random.Image(512, 1)
	require.NoError(t, err)
	ref, err := name.ParseReference(addr+"/crane/app:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img))
	d, _ := img.Digest()

	runTool(t, crane, "tag", "--insecure", addr+"/crane/app:v1", "v2")
	out := runTool(t, crane, "ls", "--insecure", addr+"/crane/app")
	assert.Equal(t, []string{"v1", "v2"}, strings.Fields(out))
	got := strings.TrimSpace(runTool(t, crane, "digest", "--insecure", addr+"/crane/app:v2"))
	assert.Equal(t, d.String(), got)

	runTool(t, crane, "delete", "--insecure", addr+"/crane/app@"+d.String())
	status, _, _ := httpDo(t, http.MethodGet, "http://"+addr+"/v2/crane/app/manifests/v1", nil, nil)
	assert.Equal(t, http.StatusNotFound, status)
	out = runTool(t, crane, "ls", "--insecure", addr+"/crane/app")
	assert.Empty(t, strings.Fields(out))
}

// readAll drains and closes rc.
func readAll(rc interface {
	Read([]byte) (int, error)
	Close() error
}) (int64, error) {
	defer rc.Close()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		k, err := rc.Read(buf)
		n += int64(k)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
}
