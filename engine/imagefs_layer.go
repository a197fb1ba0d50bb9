package engine

import "github.com/opencontainers/go-digest"

// LayerOf returns the digest of the uncompressed tar that holds the
// bytes of in, an inode of f's tree ("" when in names no layer of f):
// two inodes whose bytes sit at the same offset of the same tar hold the
// same bytes, which a diff of two images' trees tells without a read.
func (f *ImageFS) LayerOf(in *ImageInode) digest.Digest {
	if in == nil || in.Layer < 0 || int(in.Layer) >= len(f.tocs) {
		return ""
	}
	return f.tocs[in.Layer].Data
}
