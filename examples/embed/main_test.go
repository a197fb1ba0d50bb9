package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// mainEnv makes the test binary run the example's main in place of the
// tests (TestMain), so that the tests run the real program.
const mainEnv = "BERTH_EMBED_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// embed runs the example with args and returns its output (stdout and
// stderr apart) and whether it succeeded.
func embed(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run the example: %v", err)
	}
	return out.String(), errOut.String(), err
}

var (
	importedLine = regexp.MustCompile(`(?m)^imported embed/demo:(latest|multi) -> (sha256:[0-9a-f]{64}) \((\S+), \d+ bytes\)$`)
	verifiedLine = regexp.MustCompile(`(?m)^verified (\d+) repositories, (\d+) manifests, (\d+) blobs \(\d+ bytes\): all digests match$`)
)

// The example imports the layout it builds (an image tagged latest: a
// config and 3 layers; an index tagged multi over 2 images of a config
// and 2 layers each) into a store, lists it and reads everything back;
// the store it leaves holds exactly what it printed.
func TestEmbedImportsAndVerifies(t *testing.T) {
	data := t.TempDir()
	out, errOut, err := embed(t, "-data", data)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out, errOut)

	imported := map[string]digest.Digest{}
	for _, m := range importedLine.FindAllStringSubmatch(out, -1) {
		imported[m[1]] = digest.Digest(m[2])
	}
	require.Len(t, imported, 2, out)
	assert.Contains(t, out, "repository embed/demo: tags [latest multi]\n")
	v := verifiedLine.FindStringSubmatch(out)
	require.NotNil(t, v, out)
	assert.Equal(t, []string{"1", "4", "10"}, v[1:4], "repositories, manifests (image, index, its 2 images), blobs (4 + 2×3)")

	// The store holds what the example printed.
	e, err := engine.Open(data, nil)
	require.NoError(t, err)
	defer e.Close()
	ctx := context.Background()
	for tag, d := range imported {
		m, err := e.GetManifest(ctx, "embed/demo", tag)
		require.NoError(t, err, tag)
		assert.Equal(t, d, m.Digest, tag)
	}
	r, err := e.Fsck(ctx, engine.FsckOptions{Verify: true})
	require.NoError(t, err)
	assert.True(t, r.Clean(), "%v", r.Corrupt)
	assert.Empty(t, r.Orphans)
	assert.Equal(t, 10, r.BlobRecords)
}

// Run again on the same store into another repository, the example
// reads back both repositories; a layout that does not exist is an error.
func TestEmbedSecondRunAndBadLayout(t *testing.T) {
	data := t.TempDir()
	_, errOut, err := embed(t, "-data", data)
	require.NoError(t, err, errOut)
	out, errOut, err := embed(t, "-data", data, "-repo", "embed/again")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "repository embed/again: tags [latest multi]\n")
	assert.Contains(t, out, "repository embed/demo: tags [latest multi]\n")
	v := verifiedLine.FindStringSubmatch(out)
	require.NotNil(t, v, out)
	assert.Equal(t, "2", v[1])

	out, errOut, err = embed(t, "-data", data, "-layout", "/nonexistent/layout")
	require.Error(t, err, "stdout:\n%s", out)
	assert.Contains(t, errOut, "import /nonexistent/layout")
}
