package engine

// An image's merged root filesystem as an fs.FS, read through the layer
// tables: the layers' tables of contents are merged (whiteouts and
// opaque directories honoured, symlinks made safe:
// engine/internal/imagetree, the merge the FUSE view shows too), and a
// file's bytes are read at their offset in its layer's uncompressed tar,
// so opening a file reads only the frames under it and walking the tree
// reads no layer data at all.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/imagetree"
	"github.com/berthstore/berth/engine/internal/layertoc"
	"github.com/berthstore/berth/engine/internal/manifest"
	"github.com/berthstore/berth/scan"
)

// ImageTree is an image's merged root filesystem: its inodes (Inodes[0]
// is the root directory) and each directory's children sorted by name.
type ImageTree = imagetree.Tree

// ImageInode is one file of an ImageTree; hard links share one.
type ImageInode = imagetree.Inode

// ImageDirent is one child of an ImageTree directory.
type ImageDirent = imagetree.Dirent

// ErrImageTreeTooLarge is returned when an image's merged tree would
// have more entries than allowed.
var ErrImageTreeTooLarge = imagetree.ErrTooLarge

// ErrNotAnImage is returned by ImageFS for a manifest that has no root
// filesystem: an index or manifest list, or an artifact whose layers
// are not tar archives.
var ErrNotAnImage = errors.New("engine: not an image with a root filesystem")

// MergeLayers builds an image's root filesystem from the tables of its
// layers, bottom first (OCI image-spec, "Applying changesets"), with at
// most max entries; symlinks are resolved against the whole tree with
// chroot rules and rewritten or hidden when they would leave it
// (absolute texts are kept when keepAbs is set). Refused entries and
// hidden links are logged on log.
func MergeLayers(tocs []*LayerTOC, max int, log *slog.Logger, keepAbs bool) (*ImageTree, error) {
	return imagetree.Merge(tocs, max, log, keepAbs)
}

// ImageFSOptions bound the merge of an image's tree.
type ImageFSOptions struct {
	// Layer bounds the indexing of each layer.
	Layer LayerOptions
	// MaxEntries bounds the files of the merged tree. Default 4,000,000.
	MaxEntries int
}

// ImageFS is an image's merged root filesystem, read-only. It
// implements fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS; files
// are opened through symlinks (resolved inside the image, as a chroot
// would), and regular files implement io.ReaderAt and io.Seeker. Close
// releases the layer readers it opened.
type ImageFS struct {
	e      *Engine
	repo   string
	digest digest.Digest
	tree   *ImageTree
	tocs   []*LayerTOC

	mu     sync.Mutex
	data   []BlobReader // opened on first read, per layer
	closed bool
}

var (
	_ fs.FS         = (*ImageFS)(nil)
	_ fs.ReadDirFS  = (*ImageFS)(nil)
	_ fs.StatFS     = (*ImageFS)(nil)
	_ fs.ReadLinkFS = (*ImageFS)(nil)
)

// ImageFS opens the merged root filesystem of the image reference names
// in repo (a tag or digest of an image manifest; an index is
// ErrNotAnImage). Layers not indexed yet are indexed first (LayerTOCs).
func (e *Engine) ImageFS(ctx context.Context, repo, reference string, opts *ImageFSOptions) (*ImageFS, error) {
	var o ImageFSOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 4_000_000
	}
	d, err := e.resolve(ctx, repo, reference)
	if err != nil {
		return nil, err
	}
	m, err := e.manifestRecord(ctx, repo, string(d), true)
	if err != nil {
		return nil, err
	}
	pm, err := manifest.Parse(m.MediaType, m.Payload, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %s@%s: %v", ErrNotAnImage, repo, d, err)
	}
	if pm.Index || pm.Config == nil {
		return nil, fmt.Errorf("%w: %s@%s is an index", ErrNotAnImage, repo, d)
	}
	var layers []digest.Digest
	for _, l := range pm.Blobs[1:] {
		layers = append(layers, l.Digest)
	}
	tocs, err := e.LayerTOCs(ctx, repo, layers, &o.Layer)
	if err != nil {
		return nil, err
	}
	t, err := imagetree.Merge(tocs, o.MaxEntries, e.log.With("repository", repo, "image", d), false)
	if err != nil {
		return nil, err
	}
	return &ImageFS{e: e, repo: repo, digest: d, tree: t, tocs: tocs, data: make([]BlobReader, len(tocs))}, nil
}

// Digest is the image manifest's digest.
func (f *ImageFS) Digest() digest.Digest { return f.digest }

// Tree is the merged tree the filesystem serves.
func (f *ImageFS) Tree() *ImageTree { return f.tree }

// Close closes the layer readers opened for reads.
func (f *ImageFS) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	var errs []error
	for i, r := range f.data {
		if r != nil {
			errs = append(errs, r.Close())
			f.data[i] = nil
		}
	}
	return errors.Join(errs...)
}

// layerData returns the reader of layer li's uncompressed tar.
func (f *ImageFS) layerData(li int32) (BlobReader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fs.ErrClosed
	}
	if r := f.data[li]; r != nil {
		return r, nil
	}
	// The context of the call that made the filesystem is gone by now;
	// the reads themselves are bounded by the file's size.
	r, err := f.e.OpenLayerData(context.Background(), f.repo, f.tocs[li])
	if err != nil {
		return nil, err
	}
	f.data[li] = r
	return r, nil
}

// maxSymlinkHops bounds the links followed in one resolution (Linux's
// MAXSYMLINKS).
const maxSymlinkHops = 40

// errSymlinkHops is returned for a path whose resolution follows more
// than maxSymlinkHops links.
var errSymlinkHops = errors.New("too many levels of symbolic links")

// resolve walks name (an fs.FS path) from the root, following symlinks
// (the last component's too when follow is set), ".." clamped at the
// root. It returns the inode's index.
func (f *ImageFS) resolve(op, name string, follow bool) (int32, error) {
	if !fs.ValidPath(name) {
		return 0, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	hops := 0
	chain, err := f.walk([]int32{0}, name, follow, &hops)
	if err != nil {
		return 0, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return chain[len(chain)-1], nil
}

// walk resolves text from the directory at the end of chain (the
// directories from the root to it) and returns the chain to what text
// names: its directories, then the file itself.
func (f *ImageFS) walk(chain []int32, text string, follow bool, hops *int) ([]int32, error) {
	t := f.tree
	if strings.HasPrefix(text, "/") {
		chain = chain[:1]
	}
	comps := strings.Split(text, "/")
	for i, c := range comps {
		last := i == len(comps)-1
		switch c {
		case "", ".":
			continue
		case "..":
			if len(chain) > 1 {
				chain = chain[:len(chain)-1]
			}
			continue
		}
		dir := chain[len(chain)-1]
		if t.Inodes[dir].Type != TOCDir {
			return nil, fs.ErrNotExist
		}
		id, ok := t.Lookup(dir, c)
		if !ok {
			return nil, fs.ErrNotExist
		}
		if t.Inodes[id].Type == TOCSymlink && (!last || follow) {
			*hops++
			if *hops > maxSymlinkHops {
				return nil, errSymlinkHops
			}
			next, err := f.walk(slices.Clone(chain), t.Inodes[id].Linkname, true, hops)
			if err != nil {
				return nil, err
			}
			chain = next
			continue
		}
		chain = append(chain, id)
	}
	return chain, nil
}

// Open opens the file name, following symlinks.
func (f *ImageFS) Open(name string) (fs.File, error) {
	id, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	return f.file(name, id), nil
}

func (f *ImageFS) file(name string, id int32) fs.File {
	in := &f.tree.Inodes[id]
	info := &imageFileInfo{name: path.Base(name), in: in}
	if in.Type == TOCDir {
		return &imageDir{fsys: f, id: id, info: info}
	}
	return &imageFile{fsys: f, in: in, info: info}
}

// Stat describes the file name, following symlinks.
func (f *ImageFS) Stat(name string) (fs.FileInfo, error) {
	id, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return &imageFileInfo{name: path.Base(name), in: &f.tree.Inodes[id]}, nil
}

// Lstat describes the file name without following a final symlink.
func (f *ImageFS) Lstat(name string) (fs.FileInfo, error) {
	id, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return &imageFileInfo{name: path.Base(name), in: &f.tree.Inodes[id]}, nil
}

// ReadLink returns a symlink's target as the image shows it.
func (f *ImageFS) ReadLink(name string) (string, error) {
	id, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	in := &f.tree.Inodes[id]
	if in.Type != TOCSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return in.Linkname, nil
}

// ReadDir lists the directory name in name order.
func (f *ImageFS) ReadDir(name string) ([]fs.DirEntry, error) {
	id, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if f.tree.Inodes[id].Type != TOCDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return f.entries(id), nil
}

func (f *ImageFS) entries(id int32) []fs.DirEntry {
	ents := f.tree.Dirs[id]
	out := make([]fs.DirEntry, len(ents))
	for i, e := range ents {
		out[i] = fs.FileInfoToDirEntry(&imageFileInfo{name: e.Name, in: &f.tree.Inodes[e.Ino]})
	}
	return out
}

// imageFileInfo describes one inode.
type imageFileInfo struct {
	name string
	in   *ImageInode
}

var _ scan.BinaryHinter = (*imageFileInfo)(nil)

// BinaryHint tells the inventory, from the facts indexing recorded,
// whether a regular file may be an ELF binary with Go build information
// or a cargo auditable section (scan.BinaryHinter).
func (i *imageFileInfo) BinaryHint() (mayHold, known bool) {
	f := i.in.Facts
	if i.in.Type != TOCReg || !f.Recorded() {
		return false, false
	}
	return f&layertoc.FactELF != 0 && f&(layertoc.FactGoBuildInfoName|layertoc.FactCargoAuditName) != 0, true
}

func (i *imageFileInfo) Name() string       { return i.name }
func (i *imageFileInfo) Size() int64        { return i.in.Size }
func (i *imageFileInfo) ModTime() time.Time { return i.in.MTime }
func (i *imageFileInfo) IsDir() bool        { return i.in.Type == TOCDir }
func (i *imageFileInfo) Sys() any           { return i.in }
func (i *imageFileInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.in.Mode & 0o777)
	if i.in.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if i.in.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if i.in.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch i.in.Type {
	case TOCDir:
		m |= fs.ModeDir
	case TOCSymlink:
		m |= fs.ModeSymlink
	case TOCChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TOCBlock:
		m |= fs.ModeDevice
	case TOCFifo:
		m |= fs.ModeNamedPipe
	}
	return m
}

// imageDir is an open directory.
type imageDir struct {
	fsys *ImageFS
	id   int32
	info *imageFileInfo
	pos  int
}

func (d *imageDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *imageDir) Close() error               { return nil }
func (d *imageDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir returns the next n entries (all that are left when n <= 0).
func (d *imageDir) ReadDir(n int) ([]fs.DirEntry, error) {
	all := d.fsys.entries(d.id)
	rest := all[d.pos:]
	if n <= 0 {
		d.pos = len(all)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.pos += len(rest)
	return rest, nil
}

// imageFile is an open regular file (or a device or fifo, which reads
// as empty): reads go to its layer's tar at its offset.
type imageFile struct {
	fsys *ImageFS
	in   *ImageInode
	info *imageFileInfo
	off  int64
}

var (
	_ io.ReaderAt = (*imageFile)(nil)
	_ io.Seeker   = (*imageFile)(nil)
)

func (r *imageFile) Stat() (fs.FileInfo, error) { return r.info, nil }
func (r *imageFile) Close() error               { return nil }

// ReadAt reads from the file's bytes at off.
func (r *imageFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: r.info.name, Err: fs.ErrInvalid}
	}
	size := r.in.Size
	if r.in.Type != TOCReg {
		size = 0
	}
	if off >= size {
		return 0, io.EOF
	}
	want := p[:min(int64(len(p)), size-off)]
	data, err := r.fsys.layerData(r.in.Layer)
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: r.info.name, Err: err}
	}
	n, err := data.ReadAt(want, r.in.Offset+off)
	if n == len(want) {
		err = nil
		if n < len(p) {
			err = io.EOF
		}
	} else if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the tar is shorter than its table says
	}
	return n, err
}

// Read reads from the current offset.
func (r *imageFile) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the offset of the next Read.
func (r *imageFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.in.Size
	default:
		return 0, fs.ErrInvalid
	}
	if offset < 0 {
		return 0, fs.ErrInvalid
	}
	r.off = offset
	return offset, nil
}
