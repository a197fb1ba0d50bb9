package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/blob"
)

// TestRun writes the files and opens each, as the fuzz targets do:
// placed in a store under the digest its header names, under fuzzKey
// when sealed, it reads as the content that digest names.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stale.blob"), []byte("old"), 0o644))
	require.NoError(t, run(dir))
	paths, err := filepath.Glob(filepath.Join(dir, "*.blob"))
	require.NoError(t, err)
	require.Len(t, paths, 2*len(contents()), "one plain and one sealed file per content; the stale file is gone")

	s, err := blob.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	want := map[digest.Digest]bool{}
	for _, c := range contents() {
		want[digest.FromBytes(c.data)] = true
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var found digest.Digest
		for d := range want {
			if err := place(s, d, b); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Stat(ctx, d); err != nil {
				continue
			}
			r, err := s.Open(ctx, d, fuzzKey)
			if err != nil {
				r, err = s.Open(ctx, d, nil)
			}
			if err != nil {
				continue
			}
			got, err := io.ReadAll(r)
			r.Close()
			require.NoError(t, err, p)
			require.Equal(t, d, digest.FromBytes(got), p)
			found = d
		}
		require.NotEmpty(t, found, "%s opens as none of the contents", p)
	}
}

func place(s *blob.Store, d digest.Digest, b []byte) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}
