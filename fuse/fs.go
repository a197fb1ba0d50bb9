package fuse

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// Store is what the view needs from the store; *engine.Engine has it.
type Store interface {
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
	ListTags(ctx context.Context, repo, last string, n int) ([]string, error)
	ManifestDigests(ctx context.Context, repo string) ([]digest.Digest, error)
	GetManifest(ctx context.Context, repo, reference string) (*engine.Manifest, error)
	StatManifest(ctx context.Context, repo, reference string) (engine.Descriptor, error)
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (engine.BlobReader, error)
	LayerTOCs(ctx context.Context, repo string, layers []digest.Digest, opts *engine.LayerOptions) ([]*engine.LayerTOC, error)
	OpenLayerData(ctx context.Context, repo string, toc *engine.LayerTOC) (engine.BlobReader, error)
	Dir() string
}

var _ Store = (*engine.Engine)(nil)

// Options configure a view. Zero fields take the defaults named.
type Options struct {
	// LiveTimeout is how long the kernel caches entries and attributes
	// that change: repositories, tags, the list of digests. Default 500 ms
	// (a push or delete shows within a second).
	LiveTimeout time.Duration
	// ImmutableTimeout is how long the kernel caches what a digest names
	// (an image's files and their attributes). Default 1 h.
	ImmutableTimeout time.Duration
	// Layer bounds the indexing of each layer (engine.LayerOptions:
	// entries per layer, name length).
	Layer engine.LayerOptions
	// MaxTreeEntries bounds the files of one merged image. Default 4,000,000.
	MaxTreeEntries int
	// TreeCache is the number of merged images kept in memory. Default 32.
	TreeCache int
	// ChunkCacheBytes bounds the cache of decoded 1 MiB chunks that small
	// files are read from. Default 32 MiB (the kernel keeps the pages
	// it was served in its own cache besides).
	ChunkCacheBytes int64
	// KeepAbsoluteSymlinks shows absolute symlink targets as the layer
	// has them, for tools that read link texts and follow none: the kernel
	// then follows such a link on the HOST, out of the image. Default
	// false: every link is resolved inside the image as in a chroot, and
	// shown with a text that stays inside it, or hidden (docs/fuse.md).
	KeepAbsoluteSymlinks bool
	// AllowOther lets other users than the mounting one use the view
	// (the kernel still checks each file's mode: default_permissions).
	AllowOther bool
	// ReadAheadKB is written to the mount's bdi read_ahead_kb. Default 4096;
	// negative leaves the kernel's value.
	ReadAheadKB int
	// Debug logs every FUSE request.
	Debug bool
	// Logger receives the view's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.LiveTimeout <= 0 {
		r.LiveTimeout = 500 * time.Millisecond
	}
	if r.ImmutableTimeout <= 0 {
		r.ImmutableTimeout = time.Hour
	}
	if r.MaxTreeEntries <= 0 {
		r.MaxTreeEntries = 4_000_000
	}
	if r.TreeCache <= 0 {
		r.TreeCache = 32
	}
	if r.ChunkCacheBytes <= 0 {
		r.ChunkCacheBytes = 32 << 20
	}
	if r.ReadAheadKB == 0 {
		r.ReadAheadKB = 4096
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r
}

// view is the state shared by every node of one mount.
type view struct {
	store Store
	opts  Options
	log   *slog.Logger
	ctx   context.Context // canceled at unmount: bounds background work
	start time.Time
	uid   uint32
	gid   uint32

	inoMu   sync.Mutex
	inos    map[string]uint64
	nextIno uint64

	repoMu   sync.Mutex
	repos    []string
	reposAt  time.Time
	reposErr error
	treeMu   sync.Mutex
	trees    map[string]*list.Element // of *treeEntry
	treeLRU  *list.List
	chunks   *chunkCache
	building map[string]*treeBuild
}

type treeEntry struct {
	key string
	t   *tree
}

type treeBuild struct {
	done chan struct{}
	t    *tree
	err  error
}

func newView(ctx context.Context, s Store, o Options) *view {
	v := &view{
		store: s, opts: o, log: o.Logger.With("component", "fuse"), ctx: ctx, start: time.Now(),
		uid: uint32(syscall.Getuid()), gid: uint32(syscall.Getgid()),
		inos: map[string]uint64{}, nextIno: 2,
		trees: map[string]*list.Element{}, treeLRU: list.New(),
		chunks: newChunkCache(o.ChunkCacheBytes), building: map[string]*treeBuild{},
	}
	return v
}

// ino returns the stable inode number of a non-rootfs node.
func (v *view) ino(key string) uint64 {
	v.inoMu.Lock()
	defer v.inoMu.Unlock()
	if n, ok := v.inos[key]; ok {
		return n
	}
	n := v.nextIno
	v.nextIno++
	v.inos[key] = n
	return n
}

// reserve returns the first of n fresh inode numbers.
func (v *view) reserve(n int) uint64 {
	v.inoMu.Lock()
	defer v.inoMu.Unlock()
	b := v.nextIno
	v.nextIno += uint64(n)
	return b
}

// repositories returns every repository name, sorted; the list is
// refreshed at most once per LiveTimeout.
func (v *view) repositories(ctx context.Context) ([]string, error) {
	v.repoMu.Lock()
	defer v.repoMu.Unlock()
	if v.repos != nil && time.Since(v.reposAt) < v.opts.LiveTimeout {
		return v.repos, nil
	}
	names, err := v.store.ListRepositories(ctx, "", 0)
	if err != nil {
		v.log.Warn("list repositories", "err", err)
		return nil, err
	}
	sort.Strings(names)
	if names == nil {
		names = []string{}
	}
	v.repos, v.reposAt = names, time.Now()
	return names, nil
}

// children returns the path components below prefix ("" for the root)
// and whether prefix itself is a repository.
func (v *view) children(ctx context.Context, prefix string) (kids []string, isRepo bool, err error) {
	names, err := v.repositories(ctx)
	if err != nil {
		return nil, false, err
	}
	p := prefix
	if p != "" {
		p += "/"
	}
	if prefix != "" {
		j := sort.SearchStrings(names, prefix)
		isRepo = j < len(names) && names[j] == prefix
	}
	seen := map[string]bool{}
	for i := sort.SearchStrings(names, p); i < len(names) && strings.HasPrefix(names[i], p); i++ {
		rest := names[i][len(p):]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[:j]
		}
		if rest != "" && !seen[rest] {
			seen[rest] = true
			kids = append(kids, rest)
		}
	}
	sort.Strings(kids)
	return kids, isRepo, nil
}

// tree returns the merged root filesystem of image (repo, d) with its
// layers, building and caching it.
func (v *view) tree(ctx context.Context, repo string, d digest.Digest, layers []digest.Digest) (*tree, error) {
	key := repo + "\x00" + string(d)
	v.treeMu.Lock()
	if el, ok := v.trees[key]; ok {
		v.treeLRU.MoveToFront(el)
		v.treeMu.Unlock()
		return el.Value.(*treeEntry).t, nil
	}
	if b, ok := v.building[key]; ok {
		v.treeMu.Unlock()
		select {
		case <-b.done:
			return b.t, b.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b := &treeBuild{done: make(chan struct{})}
	v.building[key] = b
	v.treeMu.Unlock()

	// Built on the view's context: an interrupted request does not waste
	// the work other requests wait for.
	b.t, b.err = v.buildTree(v.ctx, repo, d, layers)

	v.treeMu.Lock()
	delete(v.building, key)
	if b.err == nil {
		v.trees[key] = v.treeLRU.PushFront(&treeEntry{key: key, t: b.t})
		for v.treeLRU.Len() > v.opts.TreeCache {
			el := v.treeLRU.Back()
			v.treeLRU.Remove(el)
			te := el.Value.(*treeEntry)
			delete(v.trees, te.key)
			te.t.closeLayers()
		}
	}
	v.treeMu.Unlock()
	close(b.done)
	return b.t, b.err
}

func (v *view) buildTree(ctx context.Context, repo string, d digest.Digest, layers []digest.Digest) (*tree, error) {
	tocs, err := v.store.LayerTOCs(ctx, repo, layers, &v.opts.Layer)
	if err != nil {
		return nil, err
	}
	it, err := engine.MergeLayers(tocs, v.opts.MaxTreeEntries, v.log.With("repository", repo, "image", d), v.opts.KeepAbsoluteSymlinks)
	if err != nil {
		return nil, err
	}
	t := &tree{ImageTree: it}
	t.layers = make([]*layerData, len(tocs))
	for i, toc := range tocs {
		t.layers[i] = &layerData{repo: repo, toc: toc, store: v.store}
	}
	t.base = v.reserve(len(t.Inodes))
	return t, nil
}

// closeAll closes every cached layer reader.
func (v *view) closeAll() {
	v.treeMu.Lock()
	defer v.treeMu.Unlock()
	for _, el := range v.trees {
		el.Value.(*treeEntry).t.closeLayers()
	}
}

// layerData opens a layer's uncompressed tar once, on first read.
type layerData struct {
	repo  string
	toc   *engine.LayerTOC
	store Store

	mu sync.Mutex
	r  engine.BlobReader
}

func (l *layerData) reader(ctx context.Context) (engine.BlobReader, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		return l.r, nil
	}
	// A background decode (whose ctx is the view's) that comes after
	// Unmount cancelled the view must not reopen what it closed.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := l.store.OpenLayerData(ctx, l.repo, l.toc)
	if err != nil {
		return nil, err
	}
	l.r = r
	return r, nil
}

// advise hints that the layer data in [off, off+n) will be read soon
// (the reader starts its disk reads), when the reader is open and
// supports it. It never opens the reader: it runs in the background and
// may come after the view closed its layers.
func (l *layerData) advise(off, n int64) {
	l.mu.Lock()
	r := l.r
	l.mu.Unlock()
	if a, ok := r.(interface{ Advise(off, n int64) }); ok {
		a.Advise(off, n)
	}
}

func (l *layerData) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r != nil {
		_ = l.r.Close()
		l.r = nil
	}
}

func (t *tree) closeLayers() {
	for _, l := range t.layers {
		l.close()
	}
}

// errno maps store errors to what a FUSE call answers.
func (v *view) errno(what string, err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, engine.ErrNameUnknown), errors.Is(err, engine.ErrManifestUnknown),
		errors.Is(err, engine.ErrBlobUnknown), errors.Is(err, engine.ErrNameInvalid),
		errors.Is(err, engine.ErrTagInvalid), errors.Is(err, engine.ErrDigestInvalid):
		return syscall.ENOENT
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return syscall.EINTR
	case errors.Is(err, engine.ErrImageTreeTooLarge), errors.Is(err, engine.ErrLayerRefused):
		v.log.Warn(what, "err", err)
		return syscall.EIO
	}
	v.log.Warn(what, "err", err)
	return syscall.EIO
}
