package imagetree

import (
	"archive/tar"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/berthstore/berth/engine/internal/layertoc"
)

// OCI whiteout names (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// ErrTooLarge is returned when an image's merged tree would have more
// entries than Merge is allowed.
var ErrTooLarge = errors.New("imagetree: image tree too large")

// Inode is one file of a merged root filesystem. Hard links share one.
type Inode struct {
	// Type is the tar type flag (tar.TypeReg, TypeDir, TypeSymlink...).
	Type byte
	// Mode holds the permission bits with setuid, setgid and sticky.
	Mode uint32
	// UID and GID are the numeric owner.
	UID, GID uint32
	// Size is a regular file's length (a symlink's: its text's length;
	// a directory's: 4096).
	Size int64
	// Offset is where a regular file's bytes start in its layer's
	// uncompressed tar.
	Offset int64
	// Layer is the index of the layer the file's bytes are read from.
	Layer int32
	// MTime is the modification time.
	MTime time.Time
	// Linkname is a symlink's target (made safe: links.go).
	Linkname string
	// Rdev is a device's number, as the kernel packs it.
	Rdev uint32
	// Nlink is the number of names (for a directory: 2 + subdirectories).
	Nlink uint32
	// Facts are what indexing its layer learned from a regular file's
	// bytes (layertoc.Facts; zero: nothing recorded).
	Facts layertoc.Facts
	// ID is the inode's index in Tree.Inodes once frozen.
	ID int32
}

// bnode is a path in the tree being built; directories hold children.
type bnode struct {
	Ino      *Inode
	children map[string]*bnode
}

// Dirent is one child of a frozen directory.
type Dirent struct {
	// Name is the child's name.
	Name string
	// Ino is its index in Tree.Inodes.
	Ino int32
}

// Tree is an image's merged root filesystem, frozen: inode 0 is the root.
type Tree struct {
	// Inodes are the files; Inodes[0] is the root directory.
	Inodes []Inode
	// Dirs lists each directory's children, sorted by name.
	Dirs map[int32][]Dirent
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

// Merge builds an image's root filesystem from the tables of its
// layers, bottom first: each layer applied on the ones below it, then
// every symlink resolved against the whole tree (links.go). At most max
// entries; absolute symlinks keep their text when keepAbs is set.
func Merge(tocs []*layertoc.TOC, max int, log *slog.Logger, keepAbs bool) (*Tree, error) {
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
				m.log.Warn("symlink hidden: it cannot be resolved inside the image", "path", d.path, "target", d.node.Ino.Linkname, "reason", d.hide.Error())
			}
		case d.rewritten:
			m.log.Debug("symlink target rewritten to stay inside the image", "path", d.path, "target", d.node.Ino.Linkname, "shown", d.target)
		}
	}
	if hidden > maxLogged {
		m.log.Warn("symlinks hidden: they cannot be resolved inside the image", "count", hidden)
	}
	applyLinks(ds)
}

func newMerger(max int, log *slog.Logger, keepAbs bool) *merger {
	return &merger{
		root: &bnode{Ino: &Inode{Type: tar.TypeDir, Mode: 0o755}, children: map[string]*bnode{}},
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
		if n == nil || n.Ino.Type != tar.TypeDir {
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
			ch = &bnode{Ino: &Inode{Type: tar.TypeDir, Mode: 0o755}, children: map[string]*bnode{}}
			n.children[c] = ch
		} else if ch.Ino.Type != tar.TypeDir {
			return nil, nil
		}
		n = ch
	}
	return n, nil
}

func (m *merger) grow() error {
	m.count++
	if m.count > m.max {
		return fmt.Errorf("%w: more than %d entries (Options.MaxTreeEntries)", ErrTooLarge, m.max)
	}
	return nil
}

// apply applies one layer's table on top of the tree.
func (m *merger) apply(li int, toc *layertoc.TOC) error {
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

func (m *merger) add(li int, e *layertoc.Entry) error {
	if e.Name == "." {
		if e.Type == tar.TypeDir {
			setMeta(m.root.Ino, li, e)
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
	if e.Type == tar.TypeDir && old != nil && old.Ino.Type == tar.TypeDir {
		setMeta(old.Ino, li, e) // a directory again: new metadata, same children
		return nil
	}
	var ino *Inode
	switch e.Type {
	case tar.TypeLink:
		t := m.lookupPath(e.Linkname)
		switch {
		case t == nil:
			m.refuse(li, e.Name, "hard link target missing (or under something not a directory)")
			return nil
		case t.Ino.Type == tar.TypeDir:
			m.refuse(li, e.Name, "hard link to a directory")
			return nil
		}
		ino = t.Ino
	case tar.TypeSymlink:
		ino = &Inode{}
		setMeta(ino, li, e)
		ino.Linkname = e.Linkname // resolved once the tree is whole (links.go)
	default:
		ino = &Inode{}
		setMeta(ino, li, e)
	}
	if old == nil {
		if err := m.grow(); err != nil {
			return err
		}
	}
	n := &bnode{Ino: ino}
	if e.Type == tar.TypeDir {
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

func setMeta(ino *Inode, li int, e *layertoc.Entry) {
	ino.Type, ino.Mode, ino.UID, ino.GID = e.Type, e.Mode, e.UID, e.GID
	ino.Size, ino.Offset, ino.Layer, ino.MTime = e.Size, e.Offset, int32(li), e.ModTime
	ino.Facts = e.Facts
	if e.Type == tar.TypeChar || e.Type == tar.TypeBlock {
		ino.Rdev = uint32(mkdev(e.Devmajor, e.Devminor))
	}
	if e.Type != tar.TypeReg {
		ino.Size = 0
	}
}

func mkdev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}

// freeze numbers the inodes and sorts directories.
func (m *merger) freeze() *Tree {
	t := &Tree{Dirs: map[int32][]Dirent{}}
	ids := map[*Inode]int32{}
	var walk func(n *bnode) int32
	walk = func(n *bnode) int32 {
		if id, ok := ids[n.Ino]; ok {
			t.Inodes[id].Nlink++
			return id
		}
		id := int32(len(t.Inodes))
		ids[n.Ino] = id
		in := *n.Ino
		in.ID, in.Nlink = id, 1
		if in.Type == tar.TypeSymlink {
			in.Size = int64(len(in.Linkname)) // st_size is what readlink returns
		}
		t.Inodes = append(t.Inodes, in)
		if n.Ino.Type != tar.TypeDir {
			return id
		}
		// In name order, so that a tree numbers its inodes the same way
		// every time it is built.
		ents := make([]Dirent, 0, len(n.children))
		for name := range n.children {
			ents = append(ents, Dirent{Name: name})
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
		subdirs := uint32(0)
		for i := range ents {
			c := n.children[ents[i].Name]
			ents[i].Ino = walk(c)
			if c.Ino.Type == tar.TypeDir {
				subdirs++
			}
		}
		t.Dirs[id] = ents
		t.Inodes[id].Nlink = 2 + subdirs
		t.Inodes[id].Size = 4096
		return id
	}
	walk(m.root)
	return t
}

// Lookup finds name in directory id.
func (t *Tree) Lookup(id int32, name string) (int32, bool) {
	ents := t.Dirs[id]
	i := sort.Search(len(ents), func(i int) bool { return ents[i].Name >= name })
	if i < len(ents) && ents[i].Name == name {
		return ents[i].Ino, true
	}
	return 0, false
}
