package e2e

// What the store gives away without the daemon: to someone who takes its
// disk (without the keyring, which lives elsewhere), and after a team's
// key is destroyed (crypto-shredding). Each is an attempt that must fail,
// counted with the others; no daemon decides them, so none is audited.

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/cli"
)

// offlineAttempt runs one attempt that needs no daemon and counts it.
func (f *tenancy) offlineAttempt(t *testing.T, who, what string, try func(t *testing.T)) {
	t.Helper()
	f.outcomes = append(f.outcomes, tnOutcome{row: tnRefusal{who: who, what: what, audit: tnAuditNone}})
	t.Run(tnName(who, what), func(t *testing.T) {
		defer f.as(t)()
		try(t)
	})
}

// openStore opens the stopped registry's store with its keyring.
func (f *tenancy) openStore(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.Open(f.data, &engine.Options{KeyringPath: f.keyring, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return e
}

// shredding: team-a's key is destroyed; what it sealed (team-a/secret,
// and team-a/fresh made under it on push) is gone, and so are the
// tables of contents built from its layers' plaintext (the FUSE view's
// file lists). The registry then serves BLOB_UNKNOWN for them.
func (f *tenancy) shredding(t *testing.T) {
	secret := f.images["team-a/secret:v1"]
	f.stop()
	e := f.openStore(t)
	require.NoError(t, e.PrepareImage(tnCtx, "team-a/secret", "v1", nil), "the layer's table of contents, as the FUSE view builds it")
	toc, err := e.LayerTOC(tnCtx, "team-a/secret", secret.layer, nil)
	require.NoError(t, err)
	require.NotNil(t, toc)
	require.NoError(t, e.Close())

	var stdout, stderr bytes.Buffer
	code := cli.Main(tnCtx, cli.Env{Stdout: &stdout, Stderr: &stderr},
		[]string{"keys", "destroy", "--yes", "--data", f.data, "--keyring", f.keyring, "team-a-key"})
	require.Equal(t, 0, code, "%s", stderr.String())

	f.offlineAttempt(t, "operator", "read the table of contents of a shredded layer", func(t *testing.T) {
		e := f.openStore(t)
		defer e.Close()
		_, err := e.LayerTOC(tnCtx, "team-a/secret", secret.layer, nil)
		require.Error(t, err)
		orphans, err := e.SweepLayerRecords(tnCtx, true)
		require.NoError(t, err)
		assert.Zero(t, orphans, "no layer record of a blob the store no longer holds")
	})
	f.start()
	f.print = ""
	for _, img := range []string{"team-a/secret:v1", "team-a/fresh:v1"} {
		repo := img[:len(img)-len(":v1")]
		f.refuse(t, []tnRefusal{{who: "alice", what: "GET " + repo + "'s layer after team-a-key was destroyed", audit: tnAuditDecision,
			want: tnAnswer{Status: http.StatusNotFound, Code: "BLOB_UNKNOWN"},
			try: func(f *tenancy) tnAnswer {
				return f.ociAnswer("alice", http.MethodGet, "/v2/"+repo+"/blobs/"+f.images[img].layer.String(), nil, nil)
			}}})
	}
}

// stolenDisk: a copy of the store's directory, without the keyring (kept
// on another volume), opens to nothing, and no file of the store holds a
// byte of a layer in the clear.
func (f *tenancy) stolenDisk(t *testing.T) {
	f.stop()
	t.Run("the operator reads the same denials offline", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(tnCtx, cli.Env{Stdout: &stdout, Stderr: &stderr}, []string{"audit", "--data", f.data, "--keyring", f.keyring,
			"--decision", "Deny", "--since", f.started, "--export"})
		require.Equal(t, 0, code, "%s", stderr.String())
		offline := map[string]bool{}
		for _, line := range bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n")) {
			var e tnAuditEvent
			require.NoError(t, json.Unmarshal(line, &e), "%s", line)
			offline[e.EventID] = true
		}
		require.NotEmpty(t, f.denials)
		for id := range f.denials {
			assert.True(t, offline[id], "denial %s answered by the admin route is in registryd audit --data", id)
		}
	})
	copyDir := filepath.Join(t.TempDir(), "stolen")
	require.NoError(t, tnCopyTree(f.data, copyDir))
	f.offlineAttempt(t, "thief", "open a copy of the store's disk", func(t *testing.T) {
		for _, args := range [][]string{
			{"repo", "list", "--data", copyDir},
			{"keys", "list", "--data", copyDir},
		} {
			var stdout, stderr bytes.Buffer
			code := cli.Main(tnCtx, cli.Env{Stdout: &stdout, Stderr: &stderr}, args)
			assert.Equal(t, 1, code, "%v: %s", args, stdout.String())
			assert.Contains(t, stderr.String(), "keyring", "%v", args)
		}
		_, err := os.Stat(filepath.Join(copyDir, "keyring.json"))
		assert.ErrorIs(t, err, os.ErrNotExist, "the thief's tools made no keyring")
	})
	f.offlineAttempt(t, "thief", "find a layer's bytes in the store's files", func(t *testing.T) {
		var files int
		require.NoError(t, filepath.WalkDir(copyDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files++
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for name, img := range f.images {
				assert.False(t, bytes.Contains(b, img.secret), "%s holds %s's layer in the clear", path, name)
			}
			return nil
		}))
		assert.Greater(t, files, 10)
	})
}

// tnCopyTree copies the directory tree src to dst (regular files and
// directories, modes kept), as a thief's copy of a disk would be.
func tnCopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case !info.Mode().IsRegular():
			return nil // a socket or a lock: nothing a thief reads
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}
