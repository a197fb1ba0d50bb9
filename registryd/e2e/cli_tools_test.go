package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/testenv"
)

// toolEnv runs one CLI with a HOME kept across its calls (regctl keeps
// its per-registry settings there).
type toolEnv struct {
	t    *testing.T
	bin  string
	home string
}

func newToolEnv(t *testing.T, name string) *toolEnv {
	return &toolEnv{t: t, bin: testenv.NeedTool(t, name), home: t.TempDir()}
}

// run runs the tool and returns its standard output; it fails the test
// with the combined output on error.
func (e *toolEnv) run(args ...string) string {
	e.t.Helper()
	out, err := e.try(args...)
	require.NoError(e.t, err, "%s %v:\n%s", filepath.Base(e.bin), args, out)
	return out
}

// try runs the tool and returns its output and error.
func (e *toolEnv) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+e.home, "DOCKER_CONFIG="+filepath.Join(e.home, ".docker"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// TestOrasCLI drives registryd with the oras CLI: push an artifact of two
// files with an artifact type, fetch its manifest, pull it back, attach a
// referrer and discover it, tag, list tags and delete.
func TestOrasCLI(t *testing.T) {
	oras := newToolEnv(t, "oras")
	addr := startServer(t, nil)
	ref := addr + "/oras/cli/art"
	dir := t.TempDir()
	files := map[string]string{"readme.txt": "hello from berth\n", "data.json": `{"k":"v"}`}
	for n, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644))
	}
	push := exec.Command(oras.bin, "push", "--plain-http", ref+":v1", "--artifact-type", "application/vnd.berth.test.v1",
		"readme.txt:text/plain", "data.json:application/json")
	push.Dir = dir
	push.Env = append(os.Environ(), "HOME="+oras.home)
	out, err := push.CombinedOutput()
	require.NoError(t, err, "%s", out)

	var m struct {
		ArtifactType string `json:"artifactType"`
		Layers       []struct {
			MediaType   string            `json:"mediaType"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	require.NoError(t, json.Unmarshal([]byte(oras.run("manifest", "fetch", "--plain-http", ref+":v1")), &m))
	assert.Equal(t, "application/vnd.berth.test.v1", m.ArtifactType)
	require.Len(t, m.Layers, 2)

	pulled := t.TempDir()
	oras.run("pull", "--plain-http", "-o", pulled, ref+":v1")
	for n, body := range files {
		got, err := os.ReadFile(filepath.Join(pulled, n))
		require.NoError(t, err)
		assert.Equal(t, body, string(got), n)
	}

	sig := filepath.Join(t.TempDir(), "sig.txt")
	require.NoError(t, os.WriteFile(sig, []byte("signed"), 0o644))
	attach := exec.Command(oras.bin, "attach", "--plain-http", "--artifact-type", "application/vnd.berth.sig.v1", ref+":v1", "sig.txt:text/plain")
	attach.Dir = filepath.Dir(sig)
	attach.Env = append(os.Environ(), "HOME="+oras.home)
	out, err = attach.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var disc struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
			Digest       string `json:"digest"`
		} `json:"referrers"`
	}
	require.NoError(t, json.Unmarshal([]byte(oras.run("discover", "--plain-http", "--format", "json", ref+":v1")), &disc))
	require.Len(t, disc.Referrers, 1)
	assert.Equal(t, "application/vnd.berth.sig.v1", disc.Referrers[0].ArtifactType)

	oras.run("tag", "--plain-http", ref+":v1", "v2", "latest")
	assert.Equal(t, []string{"latest", "v1", "v2"}, strings.Fields(oras.run("repo", "tags", "--plain-http", ref)))
	assert.Contains(t, strings.Fields(oras.run("repo", "ls", "--plain-http", addr+"/oras")), "cli/art")

	oras.run("manifest", "delete", "--plain-http", "--force", ref+"@"+disc.Referrers[0].Digest)
	require.NoError(t, json.Unmarshal([]byte(oras.run("discover", "--plain-http", "--format", "json", ref+":v1")), &disc))
	assert.Empty(t, disc.Referrers)
	d := strings.TrimSpace(oras.run("resolve", "--plain-http", ref+":v2"))
	oras.run("manifest", "delete", "--plain-http", "--force", ref+"@"+d)
	_, err = oras.try("manifest", "fetch", "--plain-http", ref+":v1")
	assert.Error(t, err, "the tags went with the manifest")
}

// TestRegctlCLI drives registryd with regctl: copy an image between
// repositories (the blobs are mounted, not sent again), list tags,
// resolve digests, fetch the manifest and a blob, and delete a tag.
func TestRegctlCLI(t *testing.T) {
	regctl := newToolEnv(t, "regctl")
	addr := startServer(t, nil)
	regctl.run("registry", "set", "--tls", "disabled", addr)

	img, err := random.Image(2048, 2)
	require.NoError(t, err)
	src, err := name.ParseReference(addr+"/regctl/src:v1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(src, img))
	want, err := img.Digest()
	require.NoError(t, err)
	raw, err := img.RawManifest()
	require.NoError(t, err)

	regctl.run("image", "copy", addr+"/regctl/src:v1", addr+"/regctl/dst:v1")
	assert.Equal(t, []string{"v1"}, strings.Fields(regctl.run("tag", "ls", addr+"/regctl/dst")))
	assert.Equal(t, want.String(), strings.TrimSpace(regctl.run("image", "digest", addr+"/regctl/dst:v1")))
	assert.Equal(t, string(raw), regctl.run("manifest", "get", "--format", "raw-body", addr+"/regctl/dst:v1"))
	assert.Contains(t, strings.Fields(regctl.run("repo", "ls", addr)), "regctl/dst")

	layers, err := img.Layers()
	require.NoError(t, err)
	ld, err := layers[1].Digest()
	require.NoError(t, err)
	rc, err := layers[1].Compressed()
	require.NoError(t, err)
	var wantBlob bytes.Buffer
	_, err = wantBlob.ReadFrom(rc)
	rc.Close()
	require.NoError(t, err)
	assert.Equal(t, wantBlob.String(), regctl.run("blob", "get", addr+"/regctl/dst", ld.String()))

	regctl.run("tag", "rm", addr+"/regctl/dst:v1")
	assert.Empty(t, strings.Fields(regctl.run("tag", "ls", addr+"/regctl/dst")))
	// The image is still there by digest; deleting it by digest works too.
	regctl.run("manifest", "rm", addr+"/regctl/src@"+want.String())
	_, err = regctl.try("manifest", "head", addr+"/regctl/src@"+want.String())
	assert.Error(t, err, "deleted manifest")
}
