// Command fuzzfiles writes the blob files that the fuzz targets of package
// blob start from (testdata/blobfiles): small committed blobs, plain and
// sealed, raw and zstd, of one frame and of several, with the smallest
// frame size. The sealed ones are sealed under the fixed test data key
// (32 bytes of 7, fuzzKey in blob's fuzz_test.go). The contents are
// deterministic; the file ids and nonces are random, so each run writes
// different bytes for the same blobs.
//
// Run from package blob with go generate (see generate.go):
//
//	go generate ./blob
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
)

func main() {
	dir := flag.String("dir", "testdata/blobfiles", "directory to write the files to (its *.blob files are replaced)")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "fuzzfiles:", err)
		os.Exit(1)
	}
}

// contents are the blobs written, each plain and sealed.
func contents() []struct {
	name string
	data []byte
} {
	random := make([]byte, blob.MinFrameSize+3)
	mrand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h'}).Read(random)
	var text strings.Builder
	for i := 0; text.Len() < 2*blob.MinFrameSize+100; i++ {
		fmt.Fprintf(&text, "layer %d: usr/lib/berth/file-%04d.go mode 0644\n", i%97, i)
	}
	return []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"hello", []byte("hello")},
		{"repeated-3-frames", bytes.Repeat([]byte("berth "), 2000)},
		{"random-2-frames", random},
		{"text-3-frames", []byte(text.String())},
	}
}

// fuzzKey is the data key of the sealed files.
var fuzzKey = bytes.Repeat([]byte{7}, 32)

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.blob"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "fuzzfiles")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	s, err := blob.Open(tmp, &blob.Options{FrameSize: blob.MinFrameSize})
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	for _, c := range contents() {
		for _, sealed := range []bool{false, true} {
			var key []byte
			mode := "plain"
			if sealed {
				key, mode = fuzzKey, "sealed"
			}
			name := mode + "-" + c.name
			w, err := s.NewWriter(ctx, name, blob.WriterOptions{DataKey: key})
			if err != nil {
				return err
			}
			if _, err := w.Write(c.data); err != nil {
				return err
			}
			d := digest.FromBytes(c.data)
			if _, err := w.Commit(ctx, d, int64(len(c.data))); err != nil {
				return err
			}
			p, err := s.Path(d)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, name+".blob"), b, 0o644); err != nil {
				return err
			}
			if err := s.Delete(ctx, d); err != nil { // the sealed copy of the same digest follows
				return err
			}
		}
	}
	return nil
}
