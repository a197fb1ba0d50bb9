package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/internal/scanfixture"
	"github.com/berthstore/berth/internal/testenv"
	"github.com/berthstore/berth/scan"
)

// TestInventorySkipsBinariesByFacts: the layer tables record what each
// executable holds, so that the inventory through ImageFS opens only
// the Go and Rust binaries; it finds exactly what the inventory of the
// same tree on disk (every executable opened) finds.
func TestInventorySkipsBinariesByFacts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := scanfixture.Build("../scan", "app", dir); err != nil {
		if errors.Is(err, scanfixture.ErrMissing) {
			testenv.Missing(t, "%v", err)
		}
		require.NoError(t, err)
	}
	// A script and an ELF file that is neither Go nor Rust, executable.
	require.NoError(t, os.WriteFile(dir+"/usr/local/bin/script", []byte("#!/bin/sh\necho .go.buildinfo\n"), 0o755))
	require.NoError(t, os.WriteFile(dir+"/usr/local/bin/cbin", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 200)...), 0o755))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.AddFS(os.DirFS(dir)))
	require.NoError(t, tw.Close())

	e := openTestEngine(t, scanOptions(nil))
	pushImage(t, e, "app", "v1", buf.Bytes())
	ifs, err := e.ImageFS(ctx, "app", "v1", nil)
	require.NoError(t, err)
	defer ifs.Close()

	hint := func(name string) [2]bool {
		fi, err := ifs.Stat(name)
		require.NoError(t, err)
		h, ok := fi.(scan.BinaryHinter)
		require.True(t, ok)
		mayHold, known := h.BinaryHint()
		return [2]bool{mayHold, known}
	}
	require.Equal(t, [2]bool{true, true}, hint("usr/local/bin/app"), "a Go binary")
	require.Equal(t, [2]bool{true, true}, hint("usr/local/bin/rusty"), "a cargo auditable binary")
	require.Equal(t, [2]bool{false, true}, hint("usr/local/bin/script"))
	require.Equal(t, [2]bool{false, true}, hint("usr/local/bin/cbin"))
	require.Equal(t, [2]bool{false, false}, hint("srv/java/app.jar"), "not executable: nothing recorded")

	got, err := TakeInventory(ctx, ifs)
	require.NoError(t, err)
	want, err := TakeInventory(ctx, os.DirFS(dir))
	require.NoError(t, err)
	require.Equal(t, want.Packages, got.Packages)
	require.Equal(t, want.OS, got.OS)
	require.Equal(t, want.Problems, got.Problems)
	kinds := map[scan.Kind]bool{}
	for _, p := range got.Packages {
		kinds[p.Kind] = true
	}
	require.True(t, kinds[scan.KindGoModule] && kinds[scan.KindCargo], "Go and Rust packages found: %v", kinds)
}
