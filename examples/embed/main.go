// Command embed shows Berth used as a Go library: it opens a store, imports
// an OCI image layout into a repository, lists repositories and tags, and
// reads every manifest and blob back, verifying each digest.
//
//	go run ./examples/embed                      # builds a small layout itself
//	go run ./examples/embed -data /tmp/store -layout ./image-oci -repo demo/app
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	// go-digest needs the hash functions registered.
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthstore/berth/engine"
)

func main() {
	dataDir := flag.String("data", "", "store directory (default: a temporary directory)")
	layoutDir := flag.String("layout", "", "OCI image layout to import (default: build a small one)")
	repo := flag.String("repo", "embed/demo", "repository to import into")
	flag.Parse()
	if err := run(context.Background(), *dataDir, *layoutDir, *repo); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dataDir, layoutDir, repo string) error {
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "berth-embed-data-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}
	if layoutDir == "" {
		tmp, err := os.MkdirTemp("", "berth-embed-layout-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := buildLayout(tmp); err != nil {
			return fmt.Errorf("build layout: %w", err)
		}
		layoutDir = tmp
	}

	e, err := engine.Open(dataDir, nil)
	if err != nil {
		return fmt.Errorf("open store %s: %w", dataDir, err)
	}
	defer e.Close()

	_, err = e.CreateRepository(ctx, repo, engine.RepositorySettings{})
	if err != nil && !errors.Is(err, engine.ErrRepositoryExists) {
		return fmt.Errorf("create repository: %w", err)
	}
	imported, err := e.ImportLayout(ctx, layoutDir, repo)
	if err != nil {
		return fmt.Errorf("import %s: %w", layoutDir, err)
	}
	for _, im := range imported {
		sep := ":"
		if im.Reference == im.Digest.String() {
			sep = "@"
		}
		fmt.Printf("imported %s%s%s -> %s (%s, %d bytes)\n", repo, sep, im.Reference, im.Digest, im.MediaType, im.Size)
	}

	repos, err := e.ListRepositories(ctx, "", 0)
	if err != nil {
		return err
	}
	v := &verifier{e: e, seen: map[digest.Digest]bool{}}
	for _, r := range repos {
		tags, err := e.ListTags(ctx, r, "", 0)
		if err != nil {
			return err
		}
		fmt.Printf("repository %s: tags %v\n", r, tags)
		v.repo = r
		for _, t := range tags {
			if err := v.manifest(ctx, t); err != nil {
				return fmt.Errorf("%s:%s: %w", r, t, err)
			}
		}
		for _, im := range imported { // untagged images too
			if r == repo {
				if err := v.manifest(ctx, im.Digest.String()); err != nil {
					return fmt.Errorf("%s@%s: %w", r, im.Digest, err)
				}
			}
		}
	}
	fmt.Printf("verified %d repositories, %d manifests, %d blobs (%d bytes): all digests match\n",
		len(repos), v.manifests, v.blobs, v.bytes)
	return nil
}

// verifier reads manifests and blobs back and checks their digests.
type verifier struct {
	e                *engine.Engine
	repo             string
	seen             map[digest.Digest]bool
	manifests, blobs int
	bytes            int64
}

func (v *verifier) manifest(ctx context.Context, ref string) error {
	m, err := v.e.GetManifest(ctx, v.repo, ref)
	if err != nil {
		return err
	}
	if v.seen[m.Digest] {
		return nil
	}
	v.seen[m.Digest] = true
	if m.Digest.Algorithm().FromBytes(m.Payload) != m.Digest {
		return fmt.Errorf("manifest %s: digest mismatch", m.Digest)
	}
	v.manifests++
	// The fields of an image manifest and of an index, in one struct.
	var doc struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(m.Payload, &doc); err != nil {
		return fmt.Errorf("manifest %s: %w", m.Digest, err)
	}
	for _, c := range doc.Manifests {
		if err := v.manifest(ctx, c.Digest.String()); err != nil {
			return err
		}
	}
	blobs := doc.Layers
	if doc.Config != nil {
		blobs = append([]ocispec.Descriptor{*doc.Config}, blobs...)
	}
	for _, b := range blobs {
		if len(b.URLs) > 0 {
			continue // foreign layer: may live elsewhere
		}
		if err := v.blob(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) blob(ctx context.Context, d ocispec.Descriptor) error {
	if v.seen[d.Digest] {
		return nil
	}
	r, err := v.e.OpenBlob(ctx, v.repo, d.Digest)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	defer r.Close()
	vr := d.Digest.Verifier()
	n, err := io.Copy(vr, r)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if n != d.Size || !vr.Verified() {
		return fmt.Errorf("blob %s: read %d bytes that do not match the descriptor", d.Digest, n)
	}
	v.seen[d.Digest] = true
	v.blobs++
	v.bytes += n
	return nil
}

// buildLayout writes a small layout: one random image tagged "latest" and
// a two-platform index tagged "multi".
func buildLayout(dir string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	img, err := random.Image(4096, 3)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "latest"})); err != nil {
		return err
	}
	idx, err := random.Index(1024, 2, 2)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "multi"}))
}
