package fuse

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berthstore/berth/engine"
)

// OCI whiteout names (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// errTreeTooLarge is returned when an image's merged tree would exceed
// Options.MaxTreeEntries.
var errTreeTooLarge = errors.New("fuse: image tree too large")

// inode is one file of a merged root filesystem. Hard links share one.
type inode struct {
	typ      byte // engine.TOC* type
	mode     uint32
	uid, gid uint32
	size     int64
	offset   int64 // of the data in layer's uncompressed tar
	layer    int32
	mtime    time.Time
	linkname string // symlink target
	rdev     uint32
	nlink    uint32
	id       int32 // index in tree.inodes once frozen
}

// bnode is a path in the tree being built; directories hold children.
type bnode struct {
	ino      *inode
	children map[string]*bnode
}

// dirent is one child of a frozen directory.
type dirent struct {
	name string
	ino  int32
}

// tree is an image's merged root filesystem, frozen: inode 0 is the root.
type tree struct {
	inodes []inode
	dirs   map[int32][]dirent // sorted by name
	layers []*layerData
	base   uint64 // inode numbers are base + id
}

// merger applies layers in order (OCI image-spec, "Applying changesets").
type merger struct {
	root    *bnode
	count   int
	max     int
	log     *slog.Logger
	keepAbs bool
	refused int
}

// maxLogged bounds the warnings of one kind logged for one image; a
// count of the rest follows.
const maxLogged = 20

// mergeLayers builds an image's root filesystem from the tables of its
// layers, bottom first: each layer applied on the ones below it, then
// every symlink resolved against the whole tree (links.go). At most max
// entries; absolute symlinks keep their text when keepAbs is set.
func mergeLayers(tocs []*engine.LayerTOC, max int, log *slog.Logger, keepAbs bool) (*tree, error) {
	m := newMerger(max, log, keepAbs)
	for i, toc := range tocs {
		if err := m.apply(i, toc); err != nil {
			return nil, err
		}
	}
	m.resolveLinks()
	return m.freeze(), nil
}

// resolveLinks rewrites the symlinks that would lead out of the image
// and hides those that cannot be made safe, saying so in the log.
func (m *merger) resolveLinks() {
	ds := resolveLinks(m.root, m.keepAbs)
	hidden := 0
	for i := range ds {
		d := &ds[i]
		switch {
		case d.hide != nil:
			hidden++
			if hidden <= maxLogged {
				m.log.Warn("symlink hidden: it cannot be resolved inside the image", "path", d.path, "target", d.node.ino.linkname, "reason", d.hide.Error())
			}
		case d.rewritten:
			m.log.Debug("symlink target rewritten to stay inside the image", "path", d.path, "target", d.node.ino.linkname, "shown", d.target)
		}
	}
	if hidden > maxLogged {
		m.log.Warn("symlinks hidden: they cannot be resolved inside the image", "count", hidden)
	}
	applyLinks(ds)
}

func newMerger(max int, log *slog.Logger, keepAbs bool) *merger {
	return &merger{
		root: &bnode{ino: &inode{typ: engine.TOCDir, mode: 0o755}, children: map[string]*bnode{}},
		max:  max, log: log, keepAbs: keepAbs,
	}
}

func (m *merger) refuse(layer int, name, why string) {
	m.refused++
	if m.refused <= maxLogged {
		m.log.Warn("layer entry not applied", "layer", layer, "entry", name, "reason", why)
	}
}

// lookupDir walks to directory p through directories only (no symlink
// is ever followed); nil if p is not a directory.
func (m *merger) lookupDir(p string) *bnode {
	n := m.root
	if p == "." || p == "" {
		return n
	}
	for _, c := range strings.Split(p, "/") {
		n = n.children[c]
		if n == nil || n.ino.typ != engine.TOCDir {
			return nil
		}
	}
	return n
}

// parentFor returns the directory that holds p, creating missing
// directories (as tar does); nil if a component is not a directory.
func (m *merger) parentFor(p string) (*bnode, error) {
	n := m.root
	dir := path.Dir(p)
	if dir == "." {
		return n, nil
	}
	for _, c := range strings.Split(dir, "/") {
		ch := n.children[c]
		if ch == nil {
			if err := m.grow(); err != nil {
				return nil, err
			}
			ch = &bnode{ino: &inode{typ: engine.TOCDir, mode: 0o755}, children: map[string]*bnode{}}
			n.children[c] = ch
		} else if ch.ino.typ != engine.TOCDir {
			return nil, nil
		}
		n = ch
	}
	return n, nil
}

func (m *merger) grow() error {
	m.count++
	if m.count > m.max {
		return fmt.Errorf("%w: more than %d entries (Options.MaxTreeEntries)", errTreeTooLarge, m.max)
	}
	return nil
}

// apply applies one layer's table on top of the tree.
func (m *merger) apply(li int, toc *engine.LayerTOC) error {
	// Whiteouts hide what lower layers hold: apply them before the
	// layer's own entries, which they never hide.
	for i := range toc.Entries {
		e := &toc.Entries[i]
		base := path.Base(e.Name)
		if !strings.HasPrefix(base, whiteoutPrefix) {
			continue
		}
		d := m.lookupDir(path.Dir(e.Name))
		if d == nil {
			continue
		}
		if base == opaqueWhiteout {
			clear(d.children)
			continue
		}
		delete(d.children, base[len(whiteoutPrefix):])
	}
	for i := range toc.Entries {
		e := &toc.Entries[i]
		if strings.HasPrefix(path.Base(e.Name), whiteoutPrefix) {
			continue
		}
		if err := m.add(li, e); err != nil {
			return err
		}
	}
	return nil
}

func (m *merger) add(li int, e *engine.TOCEntry) error {
	if e.Name == "." {
		if e.Type == engine.TOCDir {
			setMeta(m.root.ino, li, e)
		}
		return nil
	}
	parent, err := m.parentFor(e.Name)
	if err != nil {
		return err
	}
	if parent == nil {
		m.refuse(li, e.Name, "a parent is not a directory")
		return nil
	}
	base := path.Base(e.Name)
	old := parent.children[base]
	if e.Type == engine.TOCDir && old != nil && old.ino.typ == engine.TOCDir {
		setMeta(old.ino, li, e) // a directory again: new metadata, same children
		return nil
	}
	var ino *inode
	switch e.Type {
	case engine.TOCLink:
		t := m.lookupPath(e.Linkname)
		switch {
		case t == nil:
			m.refuse(li, e.Name, "hard link target missing (or under something not a directory)")
			return nil
		case t.ino.typ == engine.TOCDir:
			m.refuse(li, e.Name, "hard link to a directory")
			return nil
		}
		ino = t.ino
	case engine.TOCSymlink:
		ino = &inode{}
		setMeta(ino, li, e)
		ino.linkname = e.Linkname // resolved once the tree is whole (links.go)
	default:
		ino = &inode{}
		setMeta(ino, li, e)
	}
	if old == nil {
		if err := m.grow(); err != nil {
			return err
		}
	}
	n := &bnode{ino: ino}
	if e.Type == engine.TOCDir {
		n.children = map[string]*bnode{}
	}
	parent.children[base] = n
	return nil
}

func (m *merger) lookupPath(p string) *bnode {
	d := m.lookupDir(path.Dir(p))
	if d == nil {
		return nil
	}
	return d.children[path.Base(p)]
}

func setMeta(ino *inode, li int, e *engine.TOCEntry) {
	ino.typ, ino.mode, ino.uid, ino.gid = e.Type, e.Mode, e.UID, e.GID
	ino.size, ino.offset, ino.layer, ino.mtime = e.Size, e.Offset, int32(li), e.ModTime
	if e.Type == engine.TOCChar || e.Type == engine.TOCBlock {
		ino.rdev = uint32(mkdev(e.Devmajor, e.Devminor))
	}
	if e.Type != engine.TOCReg {
		ino.size = 0
	}
}

func mkdev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

// freeze numbers the inodes and sorts directories.
func (m *merger) freeze() *tree {
	t := &tree{dirs: map[int32][]dirent{}}
	ids := map[*inode]int32{}
	var walk func(n *bnode) int32
	walk = func(n *bnode) int32 {
		if id, ok := ids[n.ino]; ok {
			t.inodes[id].nlink++
			return id
		}
		id := int32(len(t.inodes))
		ids[n.ino] = id
		in := *n.ino
		in.id, in.nlink = id, 1
		if in.typ == engine.TOCSymlink {
			in.size = int64(len(in.linkname)) // st_size is what readlink returns
		}
		t.inodes = append(t.inodes, in)
		if n.ino.typ != engine.TOCDir {
			return id
		}
		// In name order, so that a tree numbers its inodes the same way
		// every time it is built.
		ents := make([]dirent, 0, len(n.children))
		for name := range n.children {
			ents = append(ents, dirent{name: name})
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
		subdirs := uint32(0)
		for i := range ents {
			c := n.children[ents[i].name]
			ents[i].ino = walk(c)
			if c.ino.typ == engine.TOCDir {
				subdirs++
			}
		}
		t.dirs[id] = ents
		t.inodes[id].nlink = 2 + subdirs
		t.inodes[id].size = 4096
		return id
	}
	walk(m.root)
	return t
}

// lookup finds name in directory id.
func (t *tree) lookup(id int32, name string) (int32, bool) {
	ents := t.dirs[id]
	i := sort.Search(len(ents), func(i int) bool { return ents[i].name >= name })
	if i < len(ents) && ents[i].name == name {
		return ents[i].ino, true
	}
	return 0, false
}

// fileMode returns the kernel mode (type and permission bits).
func fileMode(in *inode) uint32 {
	var t uint32
	switch in.typ {
	case engine.TOCDir:
		t = syscall.S_IFDIR
	case engine.TOCSymlink:
		t = syscall.S_IFLNK
	case engine.TOCChar:
		t = syscall.S_IFCHR
	case engine.TOCBlock:
		t = syscall.S_IFBLK
	case engine.TOCFifo:
		t = syscall.S_IFIFO
	default:
		t = syscall.S_IFREG
	}
	return t | in.mode&0o7777
}
