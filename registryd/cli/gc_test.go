package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/enginetest"
)

// gcTestStore makes a store with two images in "app" (the first untagged
// by the second push of "latest") and one stray blob, and closes it.
func gcTestStore(t *testing.T) (dir string, stray digest.Digest) {
	dir = t.TempDir()
	eng := enginetest.OpenDir(t, dir, nil)
	for _, content := range []string{"one", "two"} {
		enginetest.PushImage(t, eng, "app", "latest", []byte("layer "+content))
	}
	sd, err := eng.PutBlob(context.Background(), "app", bytes.NewReader([]byte("stray")), "")
	require.NoError(t, err)
	require.NoError(t, eng.Close()) // the commands open the store themselves
	return dir, sd.Digest
}

func TestGCFsckLifecycleCommands(t *testing.T) {
	dir, stray := gcTestStore(t)
	policy := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(policy, []byte(`{"rules":[{"rulePriority":2,"description":"keep the newest image","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`), 0o600))
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`), 0o600))

	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"fsck clean", []string{"fsck", "--data", dir}, 0, "0 corrupt"},
		{"gc dry run lists the stray blob", []string{"gc", "--data", dir, "--grace", "0", "--dry-run"}, 0, string(stray)},
		{"preview without a policy", []string{"lifecycle", "preview", "--data", dir, "--repo", "app"}, 2, "lifecycle policy not found"},
		{"preview with an invalid policy", []string{"lifecycle", "preview", "--data", dir, "--repo", "app", "--policy", bad}, 2, "Lifecycle policy validation failure"},
		{"preview", []string{"lifecycle", "preview", "--data", dir, "--repo", "app", "--policy", policy}, 0, "would expire 1 images"},
		{"preview json", []string{"lifecycle", "preview", "--data", dir, "--repo", "app", "--policy", policy, "--json"}, 0, `"expiringImageTotalCount": 1`},
		{"apply", []string{"lifecycle", "apply", "--data", dir, "--repo", "app", "--policy", policy}, 0, "<untagged>"},
		{"preview after apply", []string{"lifecycle", "preview", "--data", dir, "--repo", "app", "--policy", policy}, 0, "would expire 0 images"},
		{"gc", []string{"gc", "--data", dir, "--grace", "0"}, 0, "swept 3 blobs"},
		{"gc json", []string{"gc", "--data", dir, "--grace", "0", "--json"}, 0, `"blobsSwept": 0`},
		{"fsck json", []string{"fsck", "--data", dir, "--json", "--sample", "0.5"}, 0, `"corrupt": []`},
		{"lifecycle usage", []string{"lifecycle", "expire"}, 2, ""},
		{"fsck bad sample", []string{"fsck", "--data", dir, "--sample", "2"}, 2, ""},
		{"fsck with the daemon's index cache", []string{"fsck", "--data", dir, "--index-cache", "0"}, 0, "0 corrupt"},
		{"fsck with a 1 MiB index cache", []string{"fsck", "--data", dir, "--index-cache", "1048576", "--no-verify"}, 0, "0 corrupt"},
		{"gc with a 1 MiB index cache", []string{"gc", "--data", dir, "--grace", "0", "--index-cache", "1048576", "--dry-run"}, 0, "total: 0 blobs"},
		{"gc negative index cache", []string{"gc", "--data", dir, "--index-cache", "-1"}, 2, "--index-cache -1"},
		{"fsck negative index cache", []string{"fsck", "--data", dir, "--index-cache", "-1"}, 2, "--index-cache -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "", tc.args...)
			assert.Equal(t, tc.code, code, "stdout %s\nstderr %s", out, errOut)
			assert.Contains(t, out+errOut, tc.contains)
		})
	}
}
