package blob

import (
	"os"
	"syscall"
)

// fileIdentity names one version of one file: its device and inode, and
// its size and modification and change times, which any write changes
// (the change time even when the modification time is set back).
type fileIdentity struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
	open         uint64
}

// identify is the identity of the file whose status is st.
func identify(st os.FileInfo) fileIdentity {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdentity{open: nextOpen()}
	}
	return fileIdentity{
		dev: uint64(s.Dev), ino: s.Ino, size: s.Size,
		mtime: s.Mtim.Nano(), ctime: s.Ctim.Nano(),
	}
}
