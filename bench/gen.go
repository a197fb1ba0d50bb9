package main

// The data generator: images made from a seed, the same bytes on every
// machine and every run. A layer is named; its bytes depend only on the
// seed, its name, its size and its compression, so that two images that
// name the same base layer share it byte for byte (what dedupe needs).

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is how a generated layer's tar is compressed.
type Compression int

// The three layer encodings the generator makes.
const (
	// Gzip is tar+gzip, the common case (docker, buildkit defaults).
	Gzip Compression = iota
	// Zstd is tar+zstd.
	Zstd
	// Plain is an uncompressed tar.
	Plain
)

// String names the compression.
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	default:
		return "tar"
	}
}

func (c Compression) mediaType() string {
	switch c {
	case Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	default:
		return ocispec.MediaTypeImageLayer
	}
}

// Blob is one generated blob with its bytes.
type Blob struct {
	// MediaType is the descriptor's media type.
	MediaType string
	// Digest is the sha256 digest of Data.
	Digest digest.Digest
	// Data is the blob's content.
	Data []byte
	// DiffID is the digest of the uncompressed tar (layers only).
	DiffID digest.Digest
}

func newBlob(mediaType string, data []byte) *Blob {
	return &Blob{MediaType: mediaType, Digest: digest.FromBytes(data), Data: data}
}

func (b *Blob) descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: int64(len(b.Data))}
}

// Manifest is one generated manifest (image manifest or index).
type Manifest struct {
	// MediaType is the manifest's media type.
	MediaType string
	// Digest is the digest of Data.
	Digest digest.Digest
	// Data is the manifest's bytes.
	Data []byte
}

// Image is what one push sends: blobs, child manifests (pushed by
// digest), the top manifest (pushed by tag) and referrers (pushed by
// digest after it).
type Image struct {
	// Tag is the tag the top manifest is pushed with.
	Tag string
	// Blobs are every blob the image's manifests reference, once each.
	Blobs []*Blob
	// Children are the image manifests of an index, pushed first.
	Children []*Manifest
	// Top is the manifest pushed by tag: an image manifest or an index.
	Top *Manifest
	// Referrers are artifacts whose subject is Top (pushed last).
	Referrers []*Manifest
	// ReferrerBlobs are the blobs the referrers need.
	ReferrerBlobs []*Blob
}

// Bytes is the number of bytes a full push of the image sends.
func (im *Image) Bytes() int64 {
	var n int64
	for _, b := range im.Blobs {
		n += int64(len(b.Data))
	}
	for _, b := range im.ReferrerBlobs {
		n += int64(len(b.Data))
	}
	for _, m := range im.Children {
		n += int64(len(m.Data))
	}
	for _, m := range im.Referrers {
		n += int64(len(m.Data))
	}
	return n + int64(len(im.Top.Data))
}

// LayerSpec asks for one layer: its name (the seed of its bytes), the
// size of its uncompressed tar and its compression.
type LayerSpec struct {
	Name        string
	Size        int
	Compression Compression
}

// Gen makes deterministic data from a seed. It is not safe for
// concurrent use; it caches layers by spec so that shared layers are
// generated once.
type Gen struct {
	seed   uint64
	layers map[LayerSpec]*Blob
}

// NewGen returns a generator for seed.
func NewGen(seed uint64) *Gen {
	return &Gen{seed: seed, layers: map[LayerSpec]*Blob{}}
}

// rng returns a random source determined by the seed and a name.
func (g *Gen) rng(name string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return rand.New(rand.NewPCG(g.seed, h.Sum64()))
}

var epoch = time.Unix(1_700_000_000, 0).UTC()

var words = []string{
	"the", "registry", "layer", "config", "manifest", "container", "image", "digest", "tag",
	"function", "return", "error", "nil", "struct", "package", "import", "value", "index",
	"license", "copyright", "permission", "software", "without", "warranty", "include",
	"define", "static", "const", "void", "int", "char", "unsigned", "buffer", "length",
	"#", "{", "}", "(", ")", ";", "=", "if", "else", "for", "while", "echo", "export",
	"PATH", "usr", "lib", "share", "doc", "bin", "etc", "var", "local", "python3", "node",
}

// textFile writes n bytes of source-like text.
func textFile(r *rand.Rand, n int) []byte {
	var b bytes.Buffer
	b.Grow(n + 64)
	col := 0
	for b.Len() < n {
		w := words[r.IntN(len(words))]
		if r.IntN(9) == 0 {
			w = fmt.Sprintf("%s%d", w, r.IntN(1000))
		}
		b.WriteString(w)
		col += len(w) + 1
		if col > 60+r.IntN(30) {
			b.WriteByte('\n')
			col = 0
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

// binaryFile writes n bytes that compress like executables: random runs,
// small integers and repeats of earlier blocks.
func binaryFile(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	const blk = 256
	for off := 0; off < n; off += blk {
		end := min(off+blk, n)
		switch k := r.IntN(10); {
		case k < 4:
			fillRandom(r, b[off:end])
		case k < 7:
			for i := off; i < end; i++ {
				b[i] = byte(r.IntN(16))
			}
		default:
			if off >= blk {
				src := r.IntN(off/blk) * blk
				copy(b[off:end], b[src:src+(end-off)])
			}
		}
	}
	return b
}

func fillRandom(r *rand.Rand, p []byte) {
	var tmp [8]byte
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, r.Uint64())
		p = p[8:]
	}
	binary.LittleEndian.PutUint64(tmp[:], r.Uint64())
	copy(p, tmp[:])
}

// layerTar writes an uncompressed tar of about size bytes of files: text,
// binaries and already-compressed files, in a few directories.
func layerTar(r *rand.Rand, name string, size int) []byte {
	var buf bytes.Buffer
	buf.Grow(size + size/8 + 4096)
	tw := tar.NewWriter(&buf)
	dirs := []string{"usr/", "usr/bin/", "usr/lib/", "usr/share/doc/", "etc/", "opt/" + name + "/"}
	for _, d := range dirs {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
	}
	for i := 0; buf.Len() < size; i++ {
		left := size - buf.Len()
		// File sizes spread log-uniformly from 512 bytes to 1 MiB.
		n := min(512<<r.IntN(12)+r.IntN(512), max(left, 512))
		var data []byte
		var path string
		mode := int64(0o644)
		switch k := r.IntN(10); {
		case k < 4:
			data, path = textFile(r, n), fmt.Sprintf("usr/share/doc/%s-%d.txt", name, i)
		case k < 8:
			data, path, mode = binaryFile(r, n), fmt.Sprintf("usr/lib/lib%s-%d.so", name, i), 0o755
		default:
			data = make([]byte, n)
			fillRandom(r, data)
			path = fmt.Sprintf("opt/%s/asset-%d.gz", name, i)
		}
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Size: int64(len(data)), Mode: mode, ModTime: epoch, Format: tar.FormatPAX})
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	return buf.Bytes()
}

// Layer returns the layer spec asks for, generated once.
func (g *Gen) Layer(spec LayerSpec) (*Blob, error) {
	if b, ok := g.layers[spec]; ok {
		return b, nil
	}
	tarball := layerTar(g.rng("layer/"+spec.Name), spec.Name, spec.Size)
	var data []byte
	switch spec.Compression {
	case Gzip:
		var out bytes.Buffer
		zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
		if err != nil {
			return nil, err
		}
		_, _ = zw.Write(tarball)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		data = out.Bytes()
	case Zstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return nil, err
		}
		data = enc.EncodeAll(tarball, nil)
		_ = enc.Close()
	default:
		data = tarball
	}
	b := newBlob(spec.Compression.mediaType(), data)
	sum := sha256.Sum256(tarball)
	b.DiffID = digest.NewDigestFromBytes(digest.SHA256, sum[:])
	g.layers[spec] = b
	return b, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// The generator marshals only its own well-formed types.
		return []byte("{}")
	}
	return b
}

// imageManifest builds a config and an image manifest over layers.
func (g *Gen) imageManifest(name, arch string, layers []*Blob) (*Manifest, *Blob) {
	diffIDs := make([]digest.Digest, len(layers))
	hist := make([]ocispec.History, len(layers))
	descs := make([]ocispec.Descriptor, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.DiffID
		hist[i] = ocispec.History{Created: &epoch, CreatedBy: fmt.Sprintf("/bin/sh -c #(nop) ADD layer %d of %s", i, name)}
		descs[i] = l.descriptor()
	}
	cfg := ocispec.Image{
		Created:  &epoch,
		Platform: ocispec.Platform{Architecture: arch, OS: "linux"},
		Config: ocispec.ImageConfig{
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP=" + name},
			Entrypoint: []string{"/usr/bin/" + name},
			WorkingDir: "/opt/" + name,
			Labels:     map[string]string{"org.opencontainers.image.title": name},
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		History: hist,
	}
	config := newBlob(ocispec.MediaTypeImageConfig, mustJSON(cfg))
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config.descriptor(),
		Layers:    descs,
		Annotations: map[string]string{
			"org.opencontainers.image.created": epoch.Format(time.RFC3339),
		},
	}
	data := mustJSON(m)
	return &Manifest{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Data: data}, config
}

// ImageSpec asks for one image.
type ImageSpec struct {
	// Name names the image (its config and tag derive from it).
	Name string
	// Layers are its layers, base first.
	Layers []LayerSpec
	// Index makes the top manifest a two-platform index (amd64, arm64
	// sharing the layers, with their own configs).
	Index bool
	// Referrer adds an SBOM artifact whose subject is the top manifest.
	Referrer bool
}

// Image generates the image spec asks for.
func (g *Gen) Image(spec ImageSpec) (*Image, error) {
	layers := make([]*Blob, 0, len(spec.Layers))
	for _, ls := range spec.Layers {
		b, err := g.Layer(ls)
		if err != nil {
			return nil, err
		}
		layers = append(layers, b)
	}
	im := &Image{Tag: "v1"}
	seen := map[digest.Digest]bool{}
	add := func(b *Blob) {
		if !seen[b.Digest] {
			seen[b.Digest] = true
			im.Blobs = append(im.Blobs, b)
		}
	}
	amd, amdCfg := g.imageManifest(spec.Name, "amd64", layers)
	add(amdCfg)
	for _, l := range layers {
		add(l)
	}
	im.Top = amd
	if spec.Index {
		arm, armCfg := g.imageManifest(spec.Name, "arm64", layers)
		add(armCfg)
		im.Children = []*Manifest{amd, arm}
		idx := ocispec.Index{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageIndex,
			Manifests: []ocispec.Descriptor{
				{MediaType: amd.MediaType, Digest: amd.Digest, Size: int64(len(amd.Data)), Platform: &ocispec.Platform{Architecture: "amd64", OS: "linux"}},
				{MediaType: arm.MediaType, Digest: arm.Digest, Size: int64(len(arm.Data)), Platform: &ocispec.Platform{Architecture: "arm64", OS: "linux"}},
			},
		}
		data := mustJSON(idx)
		im.Top = &Manifest{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(data), Data: data}
	}
	if spec.Referrer {
		sbom := newBlob("application/spdx+json", textFile(g.rng("sbom/"+spec.Name), 4096))
		empty := newBlob(ocispec.MediaTypeEmptyJSON, []byte("{}"))
		subject := ocispec.Descriptor{MediaType: im.Top.MediaType, Digest: im.Top.Digest, Size: int64(len(im.Top.Data))}
		m := ocispec.Manifest{
			Versioned:    specs.Versioned{SchemaVersion: 2},
			MediaType:    ocispec.MediaTypeImageManifest,
			ArtifactType: "application/spdx+json",
			Config:       empty.descriptor(),
			Layers:       []ocispec.Descriptor{sbom.descriptor()},
			Subject:      &subject,
		}
		data := mustJSON(m)
		im.ReferrerBlobs = []*Blob{empty, sbom}
		im.Referrers = []*Manifest{{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Data: data}}
	}
	return im, nil
}

// BigImage is one large image of about mib MiB pushed: four layers
// (tar+gzip base, tar+zstd runtime, plain tar app, small tar+gzip).
func (g *Gen) BigImage(mib int) (*Image, error) {
	u := mib << 20
	return g.Image(ImageSpec{Name: "big", Layers: []LayerSpec{
		// The generated files compress about 1.5:1, so compressed layers
		// get 1.5 times their share of uncompressed tar.
		{Name: "big-base", Size: u * 35 / 100 * 3 / 2, Compression: Gzip},
		{Name: "big-runtime", Size: u * 35 / 100 * 3 / 2, Compression: Zstd},
		{Name: "big-app", Size: u * 25 / 100, Compression: Plain},
		{Name: "big-extra", Size: u * 5 / 100 * 3 / 2, Compression: Gzip},
	}})
}

// SmallImages returns n images of about kib KiB each: a base layer shared
// by all, a runtime layer shared by groups of four, and an app layer of
// their own. Every eighth is a two-platform index; every fourth has an
// SBOM referrer. Sets of different names share no blob.
func (g *Gen) SmallImages(set string, n, kib int) ([]*Image, error) {
	u := kib << 10
	out := make([]*Image, 0, n)
	for i := range n {
		compressions := []Compression{Gzip, Zstd, Plain}
		im, err := g.Image(ImageSpec{
			Name: fmt.Sprintf("small%s-%d", set, i),
			Layers: []LayerSpec{
				{Name: "small-base" + set, Size: u * 4 / 10 * 2, Compression: Gzip},
				{Name: fmt.Sprintf("small%s-group-%d", set, i/4), Size: u * 3 / 10 * 2, Compression: Zstd},
				{Name: fmt.Sprintf("small%s-app-%d", set, i), Size: u * 3 / 10, Compression: compressions[i%3]},
			},
			Index:    i%8 == 7,
			Referrer: i%4 == 3,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, nil
}

// DedupeImages returns n images that share base layers the way a fleet
// of services does: an OS base (gzip) and a language runtime (plain tar)
// shared by all, a framework layer shared by groups of five, and an app
// layer each (plain tar, compressible).
func (g *Gen) DedupeImages(n, kib int) ([]*Image, error) {
	u := kib << 10
	out := make([]*Image, 0, n)
	for i := range n {
		im, err := g.Image(ImageSpec{
			Name: fmt.Sprintf("svc-%d", i),
			Layers: []LayerSpec{
				{Name: "os-base", Size: u * 3 / 10 * 2, Compression: Gzip},
				{Name: "runtime", Size: u * 3 / 10, Compression: Plain},
				{Name: fmt.Sprintf("framework-%d", i/5), Size: u * 2 / 10 * 2, Compression: Zstd},
				{Name: fmt.Sprintf("svc-app-%d", i), Size: u * 2 / 10, Compression: Plain},
			},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, nil
}

// TinyImage is one image with a single small layer (tags, HEAD, catalog).
func (g *Gen) TinyImage(name string) (*Image, error) {
	return g.Image(ImageSpec{Name: name, Layers: []LayerSpec{{Name: name, Size: 16 << 10, Compression: Gzip}}})
}
