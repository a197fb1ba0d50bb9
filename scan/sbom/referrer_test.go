package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/berthstore/berth/internal/testenv"
)

// subjectImage is a small image manifest to attach SBOMs to: its bytes
// and descriptor.
func subjectImage(t *testing.T) ([]byte, ocispec.Descriptor, []byte) {
	t.Helper()
	layer := []byte("a layer")
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: ocispec.DescriptorEmptyJSON.Digest, Size: 2},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}},
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}, layer
}

func TestReferrer(t *testing.T) {
	_, subject, _ := subjectImage(t)
	doc := []byte(`{"spdxVersion":"SPDX-2.3"}`)
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	r, err := NewReferrer(doc, FormatSPDXJSON, subject, created)
	require.NoError(t, err)

	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(r.Manifest, &m))
	require.Equal(t, 2, m.SchemaVersion)
	require.Equal(t, ocispec.MediaTypeImageManifest, m.MediaType)
	require.Equal(t, MediaTypeSPDXJSON, m.ArtifactType)
	require.Equal(t, ocispec.MediaTypeEmptyJSON, m.Config.MediaType)
	require.Equal(t, digest.FromBytes([]byte("{}")), m.Config.Digest)
	require.Equal(t, []byte("{}"), r.ConfigData)
	require.Equal(t, r.Config, m.Config)
	require.Len(t, m.Layers, 1)
	require.Equal(t, ocispec.Descriptor{MediaType: MediaTypeSPDXJSON, Digest: digest.FromBytes(doc), Size: int64(len(doc)), Annotations: map[string]string{ocispec.AnnotationTitle: "sbom.spdx.json"}}, m.Layers[0])
	require.Equal(t, r.Layer, m.Layers[0])
	require.Equal(t, &subject, m.Subject)
	require.Equal(t, "2026-03-04T05:06:07Z", m.Annotations[ocispec.AnnotationCreated])
	require.Equal(t, digest.FromBytes(r.Manifest), r.Descriptor.Digest)
	require.Equal(t, int64(len(r.Manifest)), r.Descriptor.Size)
	require.Equal(t, MediaTypeSPDXJSON, r.Descriptor.ArtifactType)

	again, err := NewReferrer(doc, FormatSPDXJSON, subject, created)
	require.NoError(t, err)
	require.Equal(t, r.Manifest, again.Manifest, "the same input packs the same manifest")

	// oras-go's content graph reads the manifest as a referrer of its
	// subject.
	ctx := context.Background()
	store := memory.New()
	pushReferrer(t, ctx, store, r)
	preds, err := store.Predecessors(ctx, subject)
	require.NoError(t, err)
	require.Len(t, preds, 1)
	require.Equal(t, r.Descriptor.Digest, preds[0].Digest)

	cdxRef, err := NewReferrer([]byte(`{"bomFormat":"CycloneDX"}`), FormatCycloneDXJSON, subject, created)
	require.NoError(t, err)
	require.Equal(t, MediaTypeCycloneDXJSON, cdxRef.Descriptor.ArtifactType)
	require.Equal(t, "sbom.cdx.json", cdxRef.Layer.Annotations[ocispec.AnnotationTitle])

	for name, tc := range map[string]struct {
		doc     []byte
		format  Format
		subject ocispec.Descriptor
		created time.Time
	}{
		"empty document":     {nil, FormatSPDXJSON, subject, created},
		"unknown format":     {doc, "xml", subject, created},
		"subject media type": {doc, FormatSPDXJSON, ocispec.Descriptor{Digest: subject.Digest, Size: subject.Size}, created},
		"subject digest":     {doc, FormatSPDXJSON, ocispec.Descriptor{MediaType: subject.MediaType, Digest: "sha256:nope", Size: subject.Size}, created},
		"subject size":       {doc, FormatSPDXJSON, ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest}, created},
		"no time":            {doc, FormatSPDXJSON, subject, time.Time{}},
	} {
		_, err := NewReferrer(tc.doc, tc.format, tc.subject, tc.created)
		require.ErrorIs(t, err, ErrInvalid, name)
	}
}

// pushReferrer pushes a referrer's blobs and then its manifest, in the
// order a registry needs them.
func pushReferrer(t *testing.T, ctx context.Context, store content.Pusher, r *Referrer) {
	t.Helper()
	require.NoError(t, store.Push(ctx, r.Config, bytes.NewReader(r.ConfigData)))
	require.NoError(t, store.Push(ctx, r.Layer, bytes.NewReader(r.SBOM)))
	require.NoError(t, store.Push(ctx, r.Descriptor, bytes.NewReader(r.Manifest)))
}

// TestReferrerDiscovered pushes an image and both SBOMs of it to a real
// registry (the CNCF distribution registry, on 127.0.0.1) and checks that `oras discover` lists
// each SBOM under its artifact type. That registry has no referrers API:
// oras-go, pushing a manifest with a subject, keeps the referrers tag
// (sha256-DIGEST) the image-spec gives as the fallback, and oras
// discover reads it; a registry with the API lists the manifest itself.
func TestReferrerDiscovered(t *testing.T) {
	registry := testenv.NeedTool(t, "registry")
	orasBin := testenv.NeedTool(t, "oras")
	addr := startRegistry(t, registry)
	ctx := context.Background()

	repo, err := remote.NewRepository(addr + "/fixtures/app")
	require.NoError(t, err)
	repo.PlainHTTP = true
	manifest, subject, layer := subjectImage(t)
	require.NoError(t, repo.Push(ctx, ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: ocispec.DescriptorEmptyJSON.Digest, Size: 2}, bytes.NewReader([]byte("{}"))))
	require.NoError(t, repo.Push(ctx, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}, bytes.NewReader(layer)))
	require.NoError(t, repo.PushReference(ctx, subject, bytes.NewReader(manifest), "v1"))

	inv := fixtureInventory(t, "alpine")
	img := fixtureImage("alpine")
	img.Digest = subject.Digest
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	want := map[string]digest.Digest{}
	for _, f := range Formats {
		doc, err := Generate(inv, img, f, Options{})
		require.NoError(t, err)
		r, err := NewReferrer(doc, f, subject, created)
		require.NoError(t, err)
		pushReferrer(t, ctx, repo, r)
		want[f.MediaType()] = r.Descriptor.Digest
	}

	for artifactType, d := range want {
		cmd := exec.Command(orasBin, "discover", "--plain-http", "--format", "json", "--artifact-type", artifactType, addr+"/fixtures/app@"+subject.Digest.String())
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		var res struct {
			Referrers []struct {
				Digest       digest.Digest `json:"digest"`
				ArtifactType string        `json:"artifactType"`
			} `json:"referrers"`
		}
		require.NoError(t, json.Unmarshal(out, &res), "%s", out)
		require.Len(t, res.Referrers, 1, "%s", out)
		require.Equal(t, d, res.Referrers[0].Digest)
		require.Equal(t, artifactType, res.Referrers[0].ArtifactType)
	}
}

// startRegistry runs the distribution registry on a free port of
// 127.0.0.1 with its storage in a temporary directory, and returns its
// address once it answers.
func startRegistry(t *testing.T, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644))
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not answer on %s: %v\n%s", addr, err, strings.TrimSpace(logs.String()))
		}
		// Waiting for a process to listen: there is no clock to serve
		// here, only the process's readiness, polled.
		time.Sleep(50 * time.Millisecond)
	}
}
