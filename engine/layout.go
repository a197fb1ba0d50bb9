package engine

// OCI image layout import and export
// (https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
//
//	DIR/
//	├── oci-layout          {"imageLayoutVersion": "1.0.0"}
//	├── index.json          an image index; entries may carry
//	│                       org.opencontainers.image.ref.name
//	└── blobs/<alg>/<hex>   every manifest, config and layer
//
// Both directions use only the engine's public methods. Paths inside a
// layout are never taken from its files: a blob's path is built from its
// validated digest (sha256/sha512, lower-case hex), and every file is
// opened through an os.Root, so neither ".." nor a symbolic link can reach
// outside DIR. Only regular files are read. Blobs stream from file to
// store and back; only manifests (bounded by layoutMaxManifestSize) are
// held in memory.
//
// Tags on import come from the ref.name annotation of index.json's
// entries: a valid tag is used as is; a full reference as containerd
// writes it ("docker.io/library/alpine:3.20") gives its tag part; anything
// else (none, or a name without a tag) imports the image by digest only.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthstore/berth/engine/internal/manifest"
)

const (
	// layoutMaxManifestSize bounds index.json and each manifest read from
	// a layout (the engine's default manifest limit).
	layoutMaxManifestSize = 4 << 20
	// layoutMaxDepth bounds index nesting (content addressing rules out
	// cycles; this bounds hostile depth).
	layoutMaxDepth = 16
	layoutVersion  = "1.0.0"
	layoutFileName = "oci-layout"
	layoutIndex    = "index.json"
)

// ImportedImage is one entry of a layout's index.json as ImportLayout
// stored it.
type ImportedImage struct {
	// Reference is the tag the image was stored under, or its digest when
	// the layout names no usable tag for it.
	Reference string
	Descriptor
}

// layoutManifest is a manifest read from a layout, ready to push.
type layoutManifest struct {
	Descriptor
	payload []byte
	tags    []string
}

// layoutPlan is what an import will push, in order.
type layoutPlan struct {
	// blobs are the configs and layers, each once.
	blobs []Descriptor
	// manifests are in push order: every child before its index.
	manifests []*layoutManifest
	// images are index.json's entries.
	images []ImportedImage
}

// ImportLayout reads the OCI image layout in dir and stores every image it
// lists into repo: all blobs first, then the manifests, children before
// their indexes, each tagged with its ref.name annotation when it has a
// usable one. The repository must exist or be creatable on push. The
// whole layout is checked before anything is stored.
func (e *Engine) ImportLayout(ctx context.Context, dir, repo string) ([]ImportedImage, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: layout %s: %w", ErrInvalidArgument, dir, err)
	}
	defer root.Close()
	plan, err := planLayoutImport(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	for _, b := range plan.blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := e.StatBlob(ctx, repo, b.Digest); err == nil {
			continue // already linked to repo
		}
		if err := e.importLayoutBlob(ctx, root, repo, b); err != nil {
			return nil, fmt.Errorf("layout %s: %w", dir, err)
		}
	}
	for _, m := range plan.manifests {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := e.PutManifest(ctx, repo, m.Digest.String(), m.MediaType, m.payload, m.tags...); err != nil {
			return nil, fmt.Errorf("layout %s: manifest %s: %w", dir, m.Digest, err)
		}
	}
	return plan.images, nil
}

// importLayoutBlob streams one blob file into repo.
func (e *Engine) importLayoutBlob(ctx context.Context, root *os.Root, repo string, b Descriptor) error {
	f, err := root.Open(layoutBlobPath(b.Digest))
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	defer f.Close()
	got, err := e.PutBlob(ctx, repo, io.LimitReader(f, b.Size+1), b.Digest)
	if err != nil {
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	if got.Size != b.Size {
		return fmt.Errorf("%w: blob %s is %d bytes, its descriptor says %d", ErrSizeInvalid, b.Digest, got.Size, b.Size)
	}
	return nil
}

// planLayoutImport reads and checks a whole layout: the oci-layout file,
// index.json, every manifest (digest-verified) and the presence and size
// of every blob. It writes nothing.
func planLayoutImport(ctx context.Context, root *os.Root) (*layoutPlan, error) {
	if err := checkLayoutVersion(root); err != nil {
		return nil, err
	}
	idxBytes, err := readLayoutFile(root, layoutIndex, layoutMaxManifestSize)
	if err != nil {
		return nil, err
	}
	idx, err := manifest.Parse("", idxBytes, layoutMaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", layoutIndex, err)
	}
	if !idx.Index {
		return nil, fmt.Errorf("%w: %s is not an image index", ErrManifestInvalid, layoutIndex)
	}
	w := &layoutWalker{
		ctx:       ctx,
		root:      root,
		plan:      &layoutPlan{},
		manifests: map[digest.Digest]*layoutManifest{},
		blobs:     map[digest.Digest]bool{},
	}
	for i, c := range idx.Children {
		m, err := w.visit(descriptorOf(c.Descriptor), 0)
		if err != nil {
			return nil, fmt.Errorf("%s manifests[%d]: %w", layoutIndex, i, err)
		}
		ref := m.Digest.String()
		if tag := tagFromRefName(c.Annotations[ocispec.AnnotationRefName]); tag != "" {
			ref = tag
			if !containsString(m.tags, tag) {
				m.tags = append(m.tags, tag)
			}
		}
		w.plan.images = append(w.plan.images, ImportedImage{Reference: ref, Descriptor: m.Descriptor})
	}
	return w.plan, nil
}

// layoutWalker walks a layout's manifests depth first.
type layoutWalker struct {
	ctx       context.Context
	root      *os.Root
	plan      *layoutPlan
	manifests map[digest.Digest]*layoutManifest
	blobs     map[digest.Digest]bool
}

// visit reads the manifest d names, its children and blobs, and appends
// it to the plan after them.
func (w *layoutWalker) visit(d Descriptor, depth int) (*layoutManifest, error) {
	if m, ok := w.manifests[d.Digest]; ok {
		return m, nil
	}
	if err := w.ctx.Err(); err != nil {
		return nil, err
	}
	if depth > layoutMaxDepth {
		return nil, fmt.Errorf("%w: indexes nested deeper than %d", ErrManifestInvalid, layoutMaxDepth)
	}
	if !manifest.IsManifest(d.MediaType) {
		return nil, fmt.Errorf("%w: %s has media type %q, not a manifest or index", ErrUnsupported, d.Digest, d.MediaType)
	}
	if d.Size > layoutMaxManifestSize {
		return nil, fmt.Errorf("%w: manifest %s is %d bytes, limit %d", ErrTooLarge, d.Digest, d.Size, layoutMaxManifestSize)
	}
	payload, err := readLayoutFile(w.root, layoutBlobPath(d.Digest), layoutMaxManifestSize)
	if err != nil {
		return nil, err
	}
	if int64(len(payload)) != d.Size {
		return nil, fmt.Errorf("%w: manifest %s is %d bytes, its descriptor says %d", ErrSizeInvalid, d.Digest, len(payload), d.Size)
	}
	if d.Digest.Algorithm().FromBytes(payload) != d.Digest {
		return nil, fmt.Errorf("%w: manifest file %s does not match its name", ErrDigestInvalid, d.Digest)
	}
	p, err := manifest.Parse(d.MediaType, payload, layoutMaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	for i, c := range p.Children {
		if _, err := w.visit(descriptorOf(c.Descriptor), depth+1); err != nil {
			return nil, fmt.Errorf("manifest %s manifests[%d]: %w", d.Digest, i, err)
		}
	}
	for _, b := range p.Blobs {
		if err := w.addBlob(descriptorOf(b), false); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
	}
	for _, b := range p.Foreign {
		if err := w.addBlob(descriptorOf(b), true); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
	}
	m := &layoutManifest{Descriptor: Descriptor{MediaType: p.MediaType, Digest: d.Digest, Size: d.Size}, payload: payload}
	w.manifests[d.Digest] = m
	w.plan.manifests = append(w.plan.manifests, m)
	return m, nil
}

// addBlob checks that blob b is in the layout as a regular file of the
// right size and adds it to the plan. A foreign layer (one with urls)
// missing from the layout is skipped.
func (w *layoutWalker) addBlob(b Descriptor, foreign bool) error {
	if w.blobs[b.Digest] {
		return nil
	}
	fi, err := w.root.Stat(layoutBlobPath(b.Digest))
	switch {
	case foreign && errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: blob %s is not in the layout", ErrManifestBlobUnknown, b.Digest)
	case err != nil:
		return fmt.Errorf("%w: blob %s: %w", ErrInvalidArgument, b.Digest, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: blob %s is not a regular file", ErrInvalidArgument, b.Digest)
	case fi.Size() != b.Size:
		return fmt.Errorf("%w: blob %s is %d bytes, its descriptor says %d", ErrSizeInvalid, b.Digest, fi.Size(), b.Size)
	}
	w.blobs[b.Digest] = true
	w.plan.blobs = append(w.plan.blobs, b)
	return nil
}

// checkLayoutVersion reads the oci-layout file.
func checkLayoutVersion(root *os.Root) error {
	data, err := readLayoutFile(root, layoutFileName, 4096)
	if err != nil {
		return err
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidArgument, layoutFileName, err)
	}
	if l.Version != layoutVersion {
		return fmt.Errorf("%w: %s: imageLayoutVersion %q, want %q", ErrUnsupported, layoutFileName, l.Version, layoutVersion)
	}
	return nil
}

// readLayoutFile reads a small regular file of the layout, at most max bytes.
func readLayoutFile(root *os.Root, name string, max int64) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(name, "blobs/") {
			return nil, fmt.Errorf("%w: %s is not in the layout", ErrManifestBlobUnknown, name)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalidArgument, name)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidArgument, name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrTooLarge, name, max)
	}
	return data, nil
}

// layoutBlobPath is the layout path of a blob; d must come from ParseDigest (or
// a descriptor manifest.Parse checked), so it holds no '/' or "..".
func layoutBlobPath(d digest.Digest) string {
	return path.Join("blobs", d.Algorithm().String(), d.Encoded())
}

// tagFromRefName turns an org.opencontainers.image.ref.name value into a
// tag: itself if it is one, the part after the last ':' of a full
// reference ("registry/name:tag"), else "".
func tagFromRefName(name string) string {
	if name == "" {
		return ""
	}
	if ValidateTag(name) == nil {
		return name
	}
	if strings.ContainsRune(name, '@') {
		return ""
	}
	i := strings.LastIndexByte(name, ':')
	if i < 0 || strings.IndexByte(name[i:], '/') >= 0 {
		return ""
	}
	if tag := name[i+1:]; ValidateTag(tag) == nil {
		return tag
	}
	return ""
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ExportLayout writes the images refs name (tags or digests; all tags of
// repo when refs is empty) from repo into an OCI image layout in dir,
// created if needed. index.json lists one entry per ref, annotated with
// org.opencontainers.image.ref.name when the ref is a tag; it replaces any
// index.json already there, while blobs already present are kept. Files
// are written to a temporary name and renamed, so an interrupted export
// leaves no partial blob; index.json is written last.
func (e *Engine) ExportLayout(ctx context.Context, repo string, refs []string, dir string) error {
	if err := ValidateRepositoryName(repo); err != nil {
		return err
	}
	if len(refs) == 0 {
		tags, err := e.ListTags(ctx, repo, "", 0)
		if err != nil {
			return err
		}
		refs = tags
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	defer root.Close()
	x := &layoutExporter{e: e, repo: repo, root: root, done: map[digest.Digest]bool{}}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: make([]ocispec.Descriptor, 0, len(refs)),
	}
	for _, ref := range refs {
		tag, _, err := ParseReference(ref)
		if err != nil {
			return err
		}
		m, err := e.GetManifest(ctx, repo, ref)
		if err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
		if err := x.manifest(ctx, m, 0); err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
		desc := ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
		if tag != "" {
			desc.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
		}
		index.Manifests = append(index.Manifests, desc)
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: layoutVersion})
	if err != nil {
		return err
	}
	if err := x.writeFile(layoutFileName, layout); err != nil {
		return err
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return x.writeFile(layoutIndex, idx)
}

// layoutExporter writes one layout.
type layoutExporter struct {
	e    *Engine
	repo string
	root *os.Root
	done map[digest.Digest]bool
	seq  int
}

// manifest writes manifest m, its children and its blobs.
func (x *layoutExporter) manifest(ctx context.Context, m *Manifest, depth int) error {
	if x.done[m.Digest] {
		return nil
	}
	if depth > layoutMaxDepth {
		return fmt.Errorf("%w: indexes nested deeper than %d", ErrManifestInvalid, layoutMaxDepth)
	}
	if m.Digest.Algorithm().FromBytes(m.Payload) != m.Digest {
		return fmt.Errorf("%w: manifest %s does not match its digest", ErrCorrupt, m.Digest)
	}
	p, err := manifest.Parse(m.MediaType, m.Payload, 0)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", m.Digest, err)
	}
	for _, c := range p.Children {
		cm, err := x.e.GetManifest(ctx, x.repo, c.Digest.String())
		if err != nil {
			return fmt.Errorf("manifest %s: child %s: %w", m.Digest, c.Digest, err)
		}
		if err := x.manifest(ctx, cm, depth+1); err != nil {
			return err
		}
	}
	for _, b := range p.Blobs {
		if err := x.blob(ctx, descriptorOf(b), false); err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
	}
	for _, b := range p.Foreign {
		if err := x.blob(ctx, descriptorOf(b), true); err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
	}
	if err := x.writeFile(layoutBlobPath(m.Digest), m.Payload); err != nil {
		return err
	}
	x.done[m.Digest] = true
	return nil
}

// blob copies one blob into the layout, verifying its digest on the way.
// A foreign layer the repository does not hold is left out.
func (x *layoutExporter) blob(ctx context.Context, b Descriptor, foreign bool) error {
	if x.done[b.Digest] {
		return nil
	}
	name := layoutBlobPath(b.Digest)
	if fi, err := x.root.Stat(name); err == nil && fi.Mode().IsRegular() && fi.Size() == b.Size {
		x.done[b.Digest] = true // content-addressed and written by rename: complete
		return nil
	}
	r, err := x.e.OpenBlob(ctx, x.repo, b.Digest)
	if err != nil {
		if foreign && errors.Is(err, ErrBlobUnknown) {
			return nil
		}
		return fmt.Errorf("blob %s: %w", b.Digest, err)
	}
	defer r.Close()
	err = x.writeAtomic(name, func(w io.Writer) error {
		v := b.Digest.Verifier()
		n, err := io.Copy(io.MultiWriter(w, v), r)
		if err != nil {
			return err
		}
		if n != b.Size {
			return fmt.Errorf("%w: blob %s read %d bytes, descriptor says %d", ErrCorrupt, b.Digest, n, b.Size)
		}
		if !v.Verified() {
			return fmt.Errorf("%w: blob %s does not match its digest", ErrCorrupt, b.Digest)
		}
		return nil
	})
	if err != nil {
		return err
	}
	x.done[b.Digest] = true
	return nil
}

// writeFile writes data to name atomically.
func (x *layoutExporter) writeFile(name string, data []byte) error {
	return x.writeAtomic(name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic creates name's directory, writes a temporary file beside it
// with fill, syncs it and renames it to name.
func (x *layoutExporter) writeAtomic(name string, fill func(io.Writer) error) error {
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	x.seq++
	tmp := fmt.Sprintf("%s.tmp-%d-%d", name, os.Getpid(), x.seq)
	f, err := x.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = x.root.Rename(tmp, name)
	}
	if err != nil {
		_ = x.root.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
