package fuse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Reserved entry names. Repository path components match
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, so none can start with '@'.
const (
	tagsDir      = "@tags"
	digestsDir   = "@digests"
	platformsDir = "@platforms"
	rootfsDir    = "rootfs"
	manifestFile = "manifest.json"
	configFile   = "config.json"
	maxConfig    = 16 << 20
)

// common is embedded in every node: the view and statfs.
type common struct {
	fs.Inode
	v *view
}

// Statfs reports the store's file system, with nothing free (read-only).
func (c *common) Statfs(ctx context.Context, out *gofuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(c.v.store.Dir(), &st); err == nil {
		out.Blocks, out.Bsize, out.Frsize = st.Blocks, uint32(st.Bsize), uint32(st.Frsize)
		out.Files = st.Files
	}
	out.Bfree, out.Bavail, out.Ffree = 0, 0, 0
	out.NameLen = 255
	return 0
}

// dirAttr fills the attributes of a synthetic directory.
func (c *common) dirAttr(a *gofuse.Attr, mtime time.Time) {
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
	a.Uid, a.Gid = c.v.uid, c.v.gid
	a.Size = 4096
	a.SetTimes(&mtime, &mtime, &mtime)
}

func (c *common) live(out *gofuse.EntryOut) {
	out.SetEntryTimeout(c.v.opts.LiveTimeout)
	out.SetAttrTimeout(c.v.opts.LiveTimeout)
}

func (c *common) immutable(out *gofuse.EntryOut) {
	out.SetEntryTimeout(c.v.opts.ImmutableTimeout)
	out.SetAttrTimeout(c.v.opts.ImmutableTimeout)
}

// pathNode is a repository path component ("" for the mount's root): its
// children are the next components and, when the path is a repository,
// @tags and @digests.
type pathNode struct {
	common
	prefix string
}

var (
	_ = (fs.NodeLookuper)((*pathNode)(nil))
	_ = (fs.NodeReaddirer)((*pathNode)(nil))
	_ = (fs.NodeGetattrer)((*pathNode)(nil))
	_ = (fs.NodeStatfser)((*pathNode)(nil))
)

// Getattr describes the directory.
func (n *pathNode) Getattr(ctx context.Context, f fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	n.dirAttr(&out.Attr, n.v.start)
	out.SetTimeout(n.v.opts.LiveTimeout)
	return 0
}

// Lookup finds a path component or a reserved entry.
func (n *pathNode) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name == tagsDir || name == digestsDir {
		_, isRepo, err := n.v.children(ctx, n.prefix)
		if err != nil {
			return nil, n.v.errno("lookup", err)
		}
		if !isRepo {
			return nil, syscall.ENOENT
		}
		n.dirAttr(&out.Attr, n.v.start)
		n.live(out)
		var ch fs.InodeEmbedder = &tagsNode{common: common{v: n.v}, repo: n.prefix}
		if name == digestsDir {
			ch = &digestsNode{common: common{v: n.v}, repo: n.prefix}
		}
		return n.NewInode(ctx, ch, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: n.v.ino(name + "\x00" + n.prefix)}), 0
	}
	p := name
	if n.prefix != "" {
		p = n.prefix + "/" + name
	}
	kids, isRepo, err := n.v.children(ctx, p)
	if err != nil {
		return nil, n.v.errno("lookup", err)
	}
	if !isRepo && len(kids) == 0 {
		return nil, syscall.ENOENT
	}
	n.dirAttr(&out.Attr, n.v.start)
	n.live(out)
	ch := &pathNode{common: common{v: n.v}, prefix: p}
	return n.NewInode(ctx, ch, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: n.v.ino("p\x00" + p)}), 0
}

// Readdir lists the next components and the reserved entries.
func (n *pathNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	kids, isRepo, err := n.v.children(ctx, n.prefix)
	if err != nil {
		return nil, n.v.errno("readdir", err)
	}
	var ents []gofuse.DirEntry
	if isRepo {
		ents = append(ents, gofuse.DirEntry{Name: digestsDir, Mode: syscall.S_IFDIR}, gofuse.DirEntry{Name: tagsDir, Mode: syscall.S_IFDIR})
	}
	for _, k := range kids {
		ents = append(ents, gofuse.DirEntry{Name: k, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(ents), 0
}

// tagsNode is a repository's @tags: one image directory per tag.
type tagsNode struct {
	common
	repo string
}

var (
	_ = (fs.NodeLookuper)((*tagsNode)(nil))
	_ = (fs.NodeReaddirer)((*tagsNode)(nil))
	_ = (fs.NodeGetattrer)((*tagsNode)(nil))
	_ = (fs.NodeStatfser)((*tagsNode)(nil))
)

// Getattr describes the directory.
func (n *tagsNode) Getattr(ctx context.Context, f fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	n.dirAttr(&out.Attr, n.v.start)
	out.SetTimeout(n.v.opts.LiveTimeout)
	return 0
}

// Lookup resolves a tag to its image (short timeouts: tags move).
func (n *tagsNode) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if strings.HasPrefix(name, "@") || strings.HasPrefix(name, "sha") && strings.Contains(name, ":") {
		return nil, syscall.ENOENT
	}
	d, err := n.v.store.StatManifest(ctx, n.repo, name)
	if err != nil {
		return nil, n.v.errno("lookup tag", err)
	}
	return lookupImage(ctx, &n.common, n.repo, d.Digest, out, false)
}

// Readdir lists the tags.
func (n *tagsNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	tags, err := n.v.store.ListTags(ctx, n.repo, "", 0)
	if err != nil {
		return nil, n.v.errno("list tags", err)
	}
	ents := make([]gofuse.DirEntry, 0, len(tags))
	for _, t := range tags {
		ents = append(ents, gofuse.DirEntry{Name: t, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(ents), 0
}

// digestsNode is a repository's @digests: one image directory per
// manifest digest (tagged or not).
type digestsNode struct {
	common
	repo string
}

var (
	_ = (fs.NodeLookuper)((*digestsNode)(nil))
	_ = (fs.NodeReaddirer)((*digestsNode)(nil))
	_ = (fs.NodeGetattrer)((*digestsNode)(nil))
	_ = (fs.NodeStatfser)((*digestsNode)(nil))
)

// Getattr describes the directory.
func (n *digestsNode) Getattr(ctx context.Context, f fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	n.dirAttr(&out.Attr, n.v.start)
	out.SetTimeout(n.v.opts.LiveTimeout)
	return 0
}

// Lookup finds a manifest by digest.
func (n *digestsNode) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d, err := digest.Parse(name)
	if err != nil {
		return nil, syscall.ENOENT
	}
	if _, err := n.v.store.StatManifest(ctx, n.repo, string(d)); err != nil {
		return nil, n.v.errno("lookup digest", err)
	}
	return lookupImage(ctx, &n.common, n.repo, d, out, false)
}

// Readdir lists the manifest digests.
func (n *digestsNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ds, err := n.v.store.ManifestDigests(ctx, n.repo)
	if err != nil {
		return nil, n.v.errno("list manifests", err)
	}
	ents := make([]gofuse.DirEntry, 0, len(ds))
	for _, d := range ds {
		ents = append(ents, gofuse.DirEntry{Name: string(d), Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(ents), 0
}

// lookupImage returns the image directory of (repo, d). Its entry is
// live when reached through a tag, long-lived through a digest.
func lookupImage(ctx context.Context, parent *common, repo string, d digest.Digest, out *gofuse.EntryOut, immutable bool) (*fs.Inode, syscall.Errno) {
	img := &imageNode{common: common{v: parent.v}, repo: repo, d: d}
	ino := parent.v.ino("i\x00" + repo + "\x00" + string(d))
	parent.dirAttr(&out.Attr, parent.v.start)
	out.Ino = ino
	if immutable {
		parent.immutable(out)
	} else {
		parent.live(out)
	}
	return parent.NewInode(ctx, img, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino}), 0
}

// imageNode is one manifest: manifest.json, and config.json plus rootfs
// for an image, or @platforms for an index.
type imageNode struct {
	common
	repo string
	d    digest.Digest

	mu        sync.Mutex
	loaded    bool
	payload   []byte
	pushed    time.Time
	config    *ocispec.Descriptor
	layers    []digest.Digest
	isImage   bool
	platforms map[string]digest.Digest
	plNames   []string
}

var (
	_ = (fs.NodeLookuper)((*imageNode)(nil))
	_ = (fs.NodeReaddirer)((*imageNode)(nil))
	_ = (fs.NodeGetattrer)((*imageNode)(nil))
	_ = (fs.NodeStatfser)((*imageNode)(nil))
)

// image config media types that make a manifest an image with a rootfs.
var imageConfigTypes = map[string]bool{
	ocispec.MediaTypeImageConfig:                     true,
	"application/vnd.docker.container.image.v1+json": true,
}

func (n *imageNode) load(ctx context.Context) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.loaded {
		return 0
	}
	m, err := n.v.store.GetManifest(ctx, n.repo, string(n.d))
	if err != nil {
		return n.v.errno("get manifest", err)
	}
	var raw struct {
		MediaType string               `json:"mediaType"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(m.Payload, &raw); err != nil {
		n.v.log.Warn("manifest", "repository", n.repo, "digest", n.d, "err", err)
		return syscall.EIO
	}
	n.payload, n.pushed = m.Payload, m.PushedAt
	if raw.Config != nil {
		n.config = raw.Config
		n.isImage = imageConfigTypes[raw.Config.MediaType]
		for _, l := range raw.Layers {
			if len(l.URLs) > 0 && !n.hasLayer(ctx, l.Digest) {
				n.v.log.Warn("foreign layer not in the store: image has no rootfs", "repository", n.repo, "layer", l.Digest)
				n.isImage = false
			}
			n.layers = append(n.layers, l.Digest)
		}
	}
	if raw.Config == nil && raw.Manifests != nil {
		n.platforms = map[string]digest.Digest{}
		for _, c := range raw.Manifests {
			name := "unknown"
			if p := c.Platform; p != nil {
				name = safeName(p.OS + "-" + p.Architecture)
				if p.Variant != "" {
					name += "-" + safeName(p.Variant)
				}
			}
			base := name
			for i := 2; n.platforms[name] != ""; i++ {
				name = fmt.Sprintf("%s-%d", base, i)
			}
			n.platforms[name] = c.Digest
			n.plNames = append(n.plNames, name)
		}
	}
	n.loaded = true
	return 0
}

func (n *imageNode) hasLayer(ctx context.Context, d digest.Digest) bool {
	r, err := n.v.store.OpenBlob(ctx, n.repo, d)
	if err != nil {
		return false
	}
	r.Close()
	return true
}

// safeName keeps platform fields usable as one file name.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, s)
	if s == "" || s == "." || s == ".." {
		return "_"
	}
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// Getattr describes the directory; its times are the push time.
func (n *imageNode) Getattr(ctx context.Context, f fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	if errno := n.load(ctx); errno != 0 {
		return errno
	}
	n.dirAttr(&out.Attr, n.pushed)
	out.SetTimeout(n.v.opts.ImmutableTimeout)
	return 0
}

// Readdir lists the image's entries.
func (n *imageNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if errno := n.load(ctx); errno != 0 {
		return nil, errno
	}
	ents := []gofuse.DirEntry{{Name: manifestFile, Mode: syscall.S_IFREG}}
	if n.config != nil {
		ents = append(ents, gofuse.DirEntry{Name: configFile, Mode: syscall.S_IFREG})
	}
	if n.isImage {
		ents = append(ents, gofuse.DirEntry{Name: rootfsDir, Mode: syscall.S_IFDIR})
	}
	if n.platforms != nil {
		ents = append(ents, gofuse.DirEntry{Name: platformsDir, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(ents), 0
}

// Lookup finds manifest.json, config.json, rootfs or @platforms.
func (n *imageNode) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.load(ctx); errno != 0 {
		return nil, errno
	}
	key := "\x00" + n.repo + "\x00" + string(n.d)
	switch {
	case name == manifestFile:
		return n.bytesChild(ctx, "m"+key, n.payload, out), 0
	case name == configFile && n.config != nil:
		data, errno := n.readConfig(ctx)
		if errno != 0 {
			return nil, errno
		}
		return n.bytesChild(ctx, "c"+key, data, out), 0
	case name == platformsDir && n.platforms != nil:
		n.dirAttr(&out.Attr, n.pushed)
		n.immutable(out)
		ch := &platformsNode{common: common{v: n.v}, img: n}
		return n.NewInode(ctx, ch, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: n.v.ino("P" + key)}), 0
	case name == rootfsDir && n.isImage:
		t, err := n.v.tree(ctx, n.repo, n.d, n.layers)
		if err != nil {
			return nil, n.v.errno("image "+n.repo+"@"+string(n.d), err)
		}
		rn := &rnode{common: common{v: n.v}, t: t, id: 0}
		rn.fill(&out.Attr)
		n.immutable(out)
		return n.NewInode(ctx, rn, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: t.base}), 0
	}
	return nil, syscall.ENOENT
}

func (n *imageNode) readConfig(ctx context.Context) ([]byte, syscall.Errno) {
	if n.config.Size > maxConfig || n.config.Size < 0 {
		n.v.log.Warn("config too large", "repository", n.repo, "size", n.config.Size)
		return nil, syscall.EFBIG
	}
	r, err := n.v.store.OpenBlob(ctx, n.repo, n.config.Digest)
	if err != nil {
		return nil, n.v.errno("open config", err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxConfig))
	if err != nil {
		return nil, n.v.errno("read config", err)
	}
	return data, 0
}

func (n *imageNode) bytesChild(ctx context.Context, key string, data []byte, out *gofuse.EntryOut) *fs.Inode {
	f := &bytesNode{common: common{v: n.v}, data: data, mtime: n.pushed}
	f.fill(&out.Attr)
	n.immutable(out)
	return n.NewInode(ctx, f, fs.StableAttr{Mode: syscall.S_IFREG, Ino: n.v.ino(key)})
}

// platformsNode is an index's @platforms: one image per platform.
type platformsNode struct {
	common
	img *imageNode
}

var (
	_ = (fs.NodeLookuper)((*platformsNode)(nil))
	_ = (fs.NodeReaddirer)((*platformsNode)(nil))
	_ = (fs.NodeGetattrer)((*platformsNode)(nil))
	_ = (fs.NodeStatfser)((*platformsNode)(nil))
)

// Getattr describes the directory.
func (n *platformsNode) Getattr(ctx context.Context, f fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	n.dirAttr(&out.Attr, n.img.pushed)
	out.SetTimeout(n.v.opts.ImmutableTimeout)
	return 0
}

// Lookup finds one platform's image.
func (n *platformsNode) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d, ok := n.img.platforms[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	if _, err := n.v.store.StatManifest(ctx, n.img.repo, string(d)); err != nil {
		return nil, n.v.errno("lookup platform", err)
	}
	return lookupImage(ctx, &n.common, n.img.repo, d, out, true)
}

// Readdir lists the platforms.
func (n *platformsNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ents := make([]gofuse.DirEntry, 0, len(n.img.plNames))
	for _, p := range n.img.plNames {
		ents = append(ents, gofuse.DirEntry{Name: p, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(ents), 0
}

// bytesNode is a small immutable file held in memory (manifest, config).
type bytesNode struct {
	common
	data  []byte
	mtime time.Time
}

var (
	_ = (fs.NodeOpener)((*bytesNode)(nil))
	_ = (fs.NodeReader)((*bytesNode)(nil))
	_ = (fs.NodeGetattrer)((*bytesNode)(nil))
	_ = (fs.NodeStatfser)((*bytesNode)(nil))
)

func (n *bytesNode) fill(a *gofuse.Attr) {
	a.Mode = syscall.S_IFREG | 0o444
	a.Nlink = 1
	a.Size = uint64(len(n.data))
	a.Blocks = (a.Size + 511) / 512
	a.Uid, a.Gid = n.v.uid, n.v.gid
	a.SetTimes(&n.mtime, &n.mtime, &n.mtime)
}

// Getattr describes the file.
func (n *bytesNode) Getattr(ctx context.Context, f fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	n.fill(&out.Attr)
	out.SetTimeout(n.v.opts.ImmutableTimeout)
	return 0
}

// Open refuses writes and lets the kernel keep the pages.
func (n *bytesNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, gofuse.FOPEN_KEEP_CACHE, 0
}

// Read copies from the bytes.
func (n *bytesNode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if off >= int64(len(n.data)) || off < 0 {
		return gofuse.ReadResultData(nil), 0
	}
	end := min(int64(len(n.data)), off+int64(len(dest)))
	return gofuse.ReadResultData(n.data[off:end]), 0
}
