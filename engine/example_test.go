package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthstore/berth/engine"
)

// quiet opens stores that create repositories on push and whose logs go
// nowhere, so that the examples' output is what they print.
var quiet = &engine.Options{CreateOnPush: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

// Open a store in a directory (created if needed), push a blob into a
// repository, and close the store.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "berth-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	e, err := engine.Open(dir, quiet)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	d, err := e.PutBlob(context.Background(), "demo/app", bytes.NewReader([]byte("hello")), "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Digest, d.Size)
	// Output:
	// sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5
}

// Import an OCI image layout (a directory as `crane push --format oci`,
// `skopeo copy oci:` or `docker buildx --output type=oci` write it) into a
// repository: every blob, then every manifest, tagged as index.json's
// ref.name annotations say.
func ExampleEngine_ImportLayout() {
	e, cleanup := openExample()
	defer cleanup()
	layoutDir, err := os.MkdirTemp("", "berth-layout-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(layoutDir)
	if err := writeLayout(layoutDir); err != nil {
		log.Fatal(err)
	}

	images, err := e.ImportLayout(context.Background(), layoutDir, "demo/app")
	if err != nil {
		log.Fatal(err)
	}
	for _, img := range images {
		fmt.Println(img.Reference, img.MediaType)
	}
	tags, err := e.ListTags(context.Background(), "demo/app", "", 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tags)
	// Output:
	// v1 application/vnd.oci.image.manifest.v1+json
	// [v1]
}

// Read a manifest by tag (or by digest), exactly as it was pushed.
func ExampleEngine_GetManifest() {
	e, cleanup := openExample()
	defer cleanup()
	ctx := context.Background()
	if err := pushExampleImage(e); err != nil {
		log.Fatal(err)
	}

	m, err := e.GetManifest(ctx, "demo/app", "v1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.MediaType)
	fmt.Println(m.Digest == digest.FromBytes(m.Payload))
	var im ocispec.Manifest
	if err := json.Unmarshal(m.Payload, &im); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(im.Layers), "layer of", im.Layers[0].Size, "bytes")
	// Output:
	// application/vnd.oci.image.manifest.v1+json
	// true
	// 1 layer of 12 bytes
}

// Read a blob linked to a repository: as a stream, or at any offset
// (ReadAt decodes only the frames under the bytes asked for).
func ExampleEngine_OpenBlob() {
	e, cleanup := openExample()
	defer cleanup()
	ctx := context.Background()
	d, err := e.PutBlob(ctx, "demo/app", bytes.NewReader([]byte("hello, blob")), "")
	if err != nil {
		log.Fatal(err)
	}

	r, err := e.OpenBlob(ctx, "demo/app", d.Digest)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	all, err := io.ReadAll(r)
	if err != nil {
		log.Fatal(err)
	}
	part := make([]byte, 4)
	if _, err := r.ReadAt(part, 7); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s|%s|%d\n", all, part, r.Size())

	_, err = e.OpenBlob(ctx, "other/repo", d.Digest)
	fmt.Println(err != nil, "(a repository reads only the blobs linked to it)")
	// Output:
	// hello, blob|blob|11
	// true (a repository reads only the blobs linked to it)
}

// openExample opens a store in a temporary directory.
func openExample() (*engine.Engine, func()) {
	dir, err := os.MkdirTemp("", "berth-example-")
	if err != nil {
		log.Fatal(err)
	}
	e, err := engine.Open(dir, quiet)
	if err != nil {
		log.Fatal(err)
	}
	return e, func() { e.Close(); os.RemoveAll(dir) }
}

// exampleImage is a one-layer image: its config, layer and manifest.
func exampleImage() (config, layer, manifest []byte) {
	config = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer = []byte("layer bytes!")
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}},
	}
	m.SchemaVersion = 2
	manifest, _ = json.Marshal(m)
	return config, layer, manifest
}

// pushExampleImage pushes exampleImage into demo/app as v1.
func pushExampleImage(e *engine.Engine) error {
	ctx := context.Background()
	config, layer, manifest := exampleImage()
	for _, b := range [][]byte{config, layer} {
		if _, err := e.PutBlob(ctx, "demo/app", bytes.NewReader(b), digest.FromBytes(b)); err != nil {
			return err
		}
	}
	_, err := e.PutManifest(ctx, "demo/app", "v1", ocispec.MediaTypeImageManifest, manifest)
	return err
}

// writeLayout writes exampleImage as an OCI image layout tagged v1.
func writeLayout(dir string) error {
	config, layer, manifest := exampleImage()
	for _, b := range [][]byte{config, layer, manifest} {
		d := digest.FromBytes(b)
		p := filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{
		MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest)),
		Annotations: map[string]string{ocispec.AnnotationRefName: "v1"},
	}}}
	idx.SchemaVersion = 2
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}
