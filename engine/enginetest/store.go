package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// QuietLogger is a logger that drops everything, for stores whose logs
// would only clutter a test's output.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Open opens a store in a new temporary directory and closes it when the
// test ends. With o nil the store creates repositories on push (as
// registryd does by default); a nil o.Logger logs nothing.
func Open(t testing.TB, o *engine.Options) *engine.Engine {
	t.Helper()
	return OpenDir(t, t.TempDir(), o)
}

// OpenDir is Open on the store in dir (created if needed), for tests that
// reopen a store or look at its files.
func OpenDir(t testing.TB, dir string, o *engine.Options) *engine.Engine {
	t.Helper()
	var opts engine.Options
	if o != nil {
		opts = *o
	} else {
		opts.CreateOnPush = true
	}
	if opts.Logger == nil {
		opts.Logger = QuietLogger()
	}
	e, err := engine.Open(dir, &opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// Image is what PushImage stored.
type Image struct {
	// Digest is the manifest's digest; Manifest its bytes.
	Digest   digest.Digest
	Manifest []byte
	// Config and Layers describe the blobs pushed.
	Config engine.Descriptor
	Layers []engine.Descriptor
}

// PushImage pushes an OCI image into repo under tag: one layer per
// element of layers (any bytes), and a small config that names tag and
// lists the layers' digests as its diff_ids (so images with other tags or
// other layers have other configs).
func PushImage(t testing.TB, e *engine.Engine, repo, tag string, layers ...[]byte) Image {
	t.Helper()
	img, err := TryPushImage(context.Background(), e, repo, tag, layers...)
	require.NoError(t, err)
	return img
}

// TryPushImage is PushImage returning its error, for tests where a push
// may fail (a concurrent collection, a full disk, a key taken away).
func TryPushImage(ctx context.Context, e *engine.Engine, repo, tag string, layers ...[]byte) (Image, error) {
	var img Image
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	diffIDs := []digest.Digest{}
	for _, l := range layers {
		ld, err := e.PutBlob(ctx, repo, bytes.NewReader(l), "")
		if err != nil {
			return img, err
		}
		img.Layers = append(img.Layers, ld)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: ld.Digest, Size: ld.Size})
		diffIDs = append(diffIDs, ld.Digest)
	}
	ids, err := json.Marshal(diffIDs)
	if err != nil {
		return img, err
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":%s},"x":%q}`, ids, tag))
	cd, err := e.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.FromBytes(cfg))
	if err != nil {
		return img, err
	}
	img.Config = cd
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd.Digest, Size: cd.Size}
	payload, err := json.Marshal(m)
	if err != nil {
		return img, err
	}
	res, err := e.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageManifest, payload)
	if err != nil {
		return img, err
	}
	img.Digest, img.Manifest = res.Digest, payload
	return img, nil
}
