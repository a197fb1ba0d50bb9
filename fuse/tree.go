package fuse

import (
	"syscall"

	"github.com/berthstore/berth/engine"
)

// tree is an image's merged root filesystem (engine.MergeLayers: the
// merge the engine's ImageFS reads too) with what the mount adds: the
// readers of its layers and the base of its inode numbers.
type tree struct {
	*engine.ImageTree
	layers []*layerData
	base   uint64 // inode numbers are base + index
}

// inode is one file of a merged root filesystem.
type inode = engine.ImageInode

// fileMode returns the kernel mode (type and permission bits).
func fileMode(in *inode) uint32 {
	var t uint32
	switch in.Type {
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
	return t | in.Mode&0o7777
}
