package engine

// Layer access for the FUSE view (package fuse): tables of contents,
// uncompressed tar data with random access, and the list of a
// repository's manifests. Encoding and tar checks:
// engine/internal/layertoc. Design: docs/fuse.md.
//
// Compressed layers (gzip, zstd) have no random access. The first time a
// compressed layer is indexed, its uncompressed tar is stored as a blob of
// its own (the "derived" blob, content-addressed by the diffID and linked
// to the repository), recorded in the index as layer -> derived
// (index.DB.LayerDerived). Blobs are framed, so ReadAt on the derived blob
// decodes only the frames under a file. gc marks the derived blob of
// every live layer (index.DB.WalkLayerDerived).

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/layertoc"
	"github.com/berthstore/berth/engine/internal/manifest"
	"github.com/berthstore/berth/index"
)

// TOCEntry is one accepted entry of a layer's tar: its cleaned relative
// path (Name, "." for the root), its type (one of the TOC* constants),
// link target, mode, owner, size, the offset of a regular file's bytes in
// the uncompressed tar (Offset), modification time and device numbers.
type TOCEntry = layertoc.Entry

// LayerTOC is the table of contents of one layer: the layer (Layer), the
// blob holding its uncompressed tar (Data: the layer itself, or its
// seekable derivative), the tar's size, the accepted entries in tar order
// and the number of entries refused.
type LayerTOC = layertoc.TOC

// Entry types of a TOCEntry (the tar type flags the view supports).
const (
	TOCReg     = tar.TypeReg
	TOCLink    = tar.TypeLink
	TOCSymlink = tar.TypeSymlink
	TOCChar    = tar.TypeChar
	TOCBlock   = tar.TypeBlock
	TOCDir     = tar.TypeDir
	TOCFifo    = tar.TypeFifo
)

// LayerOptions bound the indexing of untrusted layers.
type LayerOptions struct {
	// MaxEntries bounds the entries of one layer; a layer with more is
	// refused with ErrLayerRefused. Default 1,000,000.
	MaxEntries int
	// MaxNameLen bounds an entry's path and link target. Default 4096
	// (PATH_MAX); a longer one is refused (the entry, not the layer).
	MaxNameLen int
}

// limits returns o's bounds with defaults filled in.
func (o *LayerOptions) limits() layertoc.Limits {
	var r layertoc.Limits
	if o != nil {
		r = layertoc.Limits{MaxEntries: o.MaxEntries, MaxNameLen: o.MaxNameLen}
	}
	if r.MaxEntries <= 0 {
		r.MaxEntries = 1_000_000
	}
	if r.MaxNameLen <= 0 {
		r.MaxNameLen = 4096
	}
	return r
}

// maxLogged is the number of refused entries of one layer logged one by
// one; the rest are counted in one line.
const maxLogged = 20

// layerFlight makes concurrent LayerTOC calls for one layer build it once.
var layerFlight = struct {
	mu sync.Mutex
	m  map[string]*flightCall
}{m: map[string]*flightCall{}}

type flightCall struct {
	done chan struct{}
	toc  *LayerTOC
	err  error
}

// LayerTOC returns the table of contents of layer, a blob linked to repo,
// building it (and, for a compressed layer, its seekable derivative) on
// first use. Entries the layer holds unsafely (.. or absolute paths,
// symlinks leaving the root, duplicates, huge names, unsupported types)
// are refused and logged; a malformed or truncated tar, or one with more
// than opts.MaxEntries entries, is ErrLayerRefused.
func (e *Engine) LayerTOC(ctx context.Context, repo string, layer digest.Digest, opts *LayerOptions) (*LayerTOC, error) {
	o := opts.limits()
	if _, err := e.linkedBlob(ctx, repo, layer); err != nil {
		return nil, err
	}
	if t, err := e.loadTOC(layer, o); err == nil || !errors.Is(err, index.ErrNotFound) {
		return t, err
	}
	key := e.dir + "\x00" + string(layer)
	layerFlight.mu.Lock()
	if c, ok := layerFlight.m[key]; ok {
		layerFlight.mu.Unlock()
		select {
		case <-c.done:
			return c.toc, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &flightCall{done: make(chan struct{})}
	layerFlight.m[key] = c
	layerFlight.mu.Unlock()
	c.toc, c.err = e.buildTOC(ctx, repo, layer, o)
	layerFlight.mu.Lock()
	delete(layerFlight.m, key)
	layerFlight.mu.Unlock()
	close(c.done)
	return c.toc, c.err
}

func (e *Engine) loadTOC(layer digest.Digest, o layertoc.Limits) (*LayerTOC, error) {
	chunks, err := e.db.LayerTOC(layer)
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, err
		}
		return nil, storageErr(err)
	}
	return layertoc.Decode(layer, chunks, o.MaxEntries)
}

// buildTOC indexes layer and stores its table (and derived record).
func (e *Engine) buildTOC(ctx context.Context, repo string, layer digest.Digest, o layertoc.Limits) (*LayerTOC, error) {
	br, err := e.OpenBlob(ctx, repo, layer)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	head := make([]byte, 4)
	n, _ := br.ReadAt(head, 0)
	codec := layertoc.SniffCodec(head[:n])
	log := e.log.With("layer", layer, "repository", repo)
	logged := 0
	refuse := func(r layertoc.Refusal) {
		logged++
		if logged <= maxLogged {
			name := r.Name
			if len(name) > 256 {
				name = name[:256] + "..."
			}
			log.Warn("layer entry refused", "entry", name, "reason", r.Reason)
		}
	}
	var (
		b       *layertoc.Builder
		tarSize int64
		refused int
		data    = layer
	)
	if codec == "tar" {
		b, tarSize, refused, err = layertoc.Scan(layer, layertoc.NewCounter(br, br), o, refuse)
		if err != nil {
			log.Warn("layer refused", "err", err)
			return nil, err
		}
	} else {
		b, tarSize, refused, data, err = e.deriveLayer(ctx, repo, layer, codec, br, o, refuse)
		if err != nil {
			log.Warn("layer refused", "err", err)
			return nil, err
		}
	}
	if logged > maxLogged {
		log.Warn("more layer entries refused", "count", logged-maxLogged)
	}
	chunks := b.Finish(data, tarSize, refused)
	batch := e.db.NewBatch()
	defer batch.Close()
	if err := batch.PutLayerTOC(layer, chunks); err != nil {
		return nil, storageErr(err)
	}
	if data != layer {
		if err := batch.PutLayerDerived(layer, data); err != nil {
			return nil, storageErr(err)
		}
	}
	if err := batch.Commit(false); err != nil {
		return nil, storageErr(err)
	}
	log.Info("layer indexed", "codec", codec, "entries", b.Len(), "refused", refused, "tarSize", tarSize, "data", data)
	return layertoc.Decode(layer, chunks, o.MaxEntries)
}

// deriveLayer decompresses a layer once: the stream is indexed and, at
// the same time, stored as the derived blob (sha256 of the uncompressed
// tar: its diffID).
func (e *Engine) deriveLayer(ctx context.Context, repo string, layer digest.Digest, codec string, br BlobReader,
	o layertoc.Limits, refuse func(layertoc.Refusal)) (*layertoc.Builder, int64, int, digest.Digest, error) {
	if _, err := br.Seek(0, io.SeekStart); err != nil {
		return nil, 0, 0, "", err
	}
	var dec io.Reader
	switch codec {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, 0, "", fmt.Errorf("%w: layer %s: gzip: %v", ErrLayerRefused, layer, err)
		}
		defer zr.Close()
		dec = zr
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			return nil, 0, 0, "", fmt.Errorf("%w: layer %s: zstd: %v", ErrLayerRefused, layer, err)
		}
		defer zr.Close()
		dec = zr
	}
	// The upload hashes what it is given (sha256, the diffID): its digest
	// names the derived blob, with no second pass over the bytes.
	u, err := e.beginUpload(ctx, repo, digest.SHA256, uploadDerived)
	if err != nil {
		return nil, 0, 0, "", err
	}
	var up Upload = u
	src := layertoc.NewCounter(io.TeeReader(dec, upWriter{up}), nil)
	b, size, refused, err := layertoc.Scan(layer, src, o, refuse)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = up.Cancel(context.WithoutCancel(ctx))
		return nil, 0, 0, "", err
	}
	d := u.w.Digest()
	if _, err := up.Commit(ctx, d, size); err != nil {
		return nil, 0, 0, "", err
	}
	return b, size, refused, d, nil
}

// linkDerived links derived, the seekable derivative of a layer that
// repo holds, into repo: the derivative is the layer's own tar, so the
// repository may read it through any wrap of its data key that a usable
// key holds, and gets a wrap under its own key.
func (e *Engine) linkDerived(ctx context.Context, repo string, derived digest.Digest) (Descriptor, error) {
	r, err := e.loadRepo(repo)
	if err != nil {
		return Descriptor{}, err
	}
	return e.linkBlob(ctx, r, derived, func(rec *index.Blob) ([]byte, error) {
		var lastErr error
		for _, w := range rec.Wraps {
			dk, err := e.blobDataKey(ctx, rec, w.KeyID)
			if err == nil {
				return dk, nil
			}
			lastErr = err
		}
		return nil, lastErr
	})
}

// upWriter adapts Upload to io.Writer.
type upWriter struct{ u Upload }

func (w upWriter) Write(p []byte) (int, error) { return w.u.Write(p) }

// OpenLayerData opens the uncompressed tar of a layer whose table is toc,
// for ReadAt at the entries' offsets. A derived blob that gc removed (or
// that another repository made) is linked or rebuilt as needed.
func (e *Engine) OpenLayerData(ctx context.Context, repo string, toc *LayerTOC) (BlobReader, error) {
	if toc.Data == toc.Layer {
		return e.OpenBlob(ctx, repo, toc.Layer)
	}
	if _, err := e.linkedBlob(ctx, repo, toc.Layer); err != nil {
		return nil, err
	}
	br, err := e.OpenBlob(ctx, repo, toc.Data)
	if err == nil {
		return br, nil
	}
	if !errors.Is(err, ErrBlobUnknown) {
		return nil, err
	}
	// The repository holds the layer, so it may read what derives from it.
	if _, err := e.linkDerived(ctx, repo, toc.Data); err == nil {
		return e.OpenBlob(ctx, repo, toc.Data)
	} else if !errors.Is(err, ErrBlobUnknown) {
		return nil, err
	}
	// The derived blob is gone: index the layer again.
	b := e.db.NewBatch()
	defer b.Close()
	if err := b.DeleteLayerTOC(toc.Layer); err != nil {
		return nil, storageErr(err)
	}
	if err := b.Commit(false); err != nil {
		return nil, storageErr(err)
	}
	t, err := e.LayerTOC(ctx, repo, toc.Layer, nil)
	if err != nil {
		return nil, err
	}
	return e.OpenBlob(ctx, repo, t.Data)
}

// ManifestDigests lists the digests of every active manifest repo holds
// (tagged or not, index children included; archived ones do not pull),
// in digest order.
func (e *Engine) ManifestDigests(ctx context.Context, repo string) ([]digest.Digest, error) {
	if err := ValidateRepositoryName(repo); err != nil {
		return nil, err
	}
	var out []digest.Digest
	err := e.db.ListManifests(repo, func(m *index.Manifest) error {
		if m.Status == index.StatusActive { // archived images do not pull
			out = append(out, m.Digest)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, storageErr(err)
	}
	if len(out) == 0 {
		if _, err := e.cachedRepoState(repo); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PrepareImage indexes every layer of the image (or of each image of the
// index) that reference names, so that the FUSE view lists it at once.
// Call it after a push, in the background; errors are per layer and
// returned joined.
func (e *Engine) PrepareImage(ctx context.Context, repo, reference string, opts *LayerOptions) error {
	d, err := e.resolve(ctx, repo, reference)
	if err != nil {
		return err
	}
	m, err := e.manifestRecord(ctx, repo, string(d), true)
	if err != nil {
		return err
	}
	pm, err := manifest.Parse(m.MediaType, m.Payload, 0)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range pm.Children {
		if err := e.PrepareImage(ctx, repo, string(c.Digest), opts); err != nil && !errors.Is(err, ErrManifestUnknown) {
			errs = append(errs, err)
		}
	}
	var layers []digest.Digest
	for _, l := range pm.Blobs[min(1, len(pm.Blobs)):] {
		layers = append(layers, l.Digest)
	}
	if _, err := e.LayerTOCs(ctx, repo, layers, opts); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// LayerTOCs returns the tables of contents of layers, in their order,
// indexing those not indexed yet in parallel (at most GOMAXPROCS at a
// time: one layer's decompression is one goroutine, so an image of
// several layers indexes faster on several cores). The error joins the
// errors of every layer that failed.
func (e *Engine) LayerTOCs(ctx context.Context, repo string, layers []digest.Digest, opts *LayerOptions) ([]*LayerTOC, error) {
	out := make([]*LayerTOC, len(layers))
	errs := make([]error, len(layers))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, l := range layers {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = e.LayerTOC(ctx, repo, l, opts)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
