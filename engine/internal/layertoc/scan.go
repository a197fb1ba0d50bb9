package layertoc

// Reading a layer's tar: the entries it holds, checked, and where each
// file's bytes start.

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine/internal/errdefs"
)

// nameMax is NAME_MAX: the longest path component.
const nameMax = 255

// Counter counts the bytes read through it, so that after tar.Reader.Next
// the count is the offset of the entry's data. With a seekable source it
// seeks over file data instead of reading it.
type Counter struct {
	r   io.Reader
	s   io.Seeker // nil for streams
	off int64
}

// Read reads from the source and counts what it read.
func (c *Counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.off += int64(n)
	return n, err
}

// NewCounter counts what is read from r; s, if not nil, is r's Seeker
// (a blob reader), used to skip file data.
func NewCounter(r io.Reader, s io.Seeker) *Counter { return &Counter{r: r, s: s} }

// seekingCounter is a Counter over a seekable source; tar.Reader
// uses Seek to skip file data.
type seekingCounter struct{ *Counter }

func (c seekingCounter) Seek(offset int64, whence int) (int64, error) {
	p, err := c.s.Seek(offset, whence)
	if err == nil {
		c.off = p
	}
	return p, err
}

// Refusal is one entry the indexer refused, and why.
type Refusal struct{ Name, Reason string }

// Scan reads the tar from src and returns its table, the tar's size and
// the number of entries refused (each also given to refuse). It stops with
// errdefs.ErrLayerRefused on malformed input or when the entries exceed the limit.
func Scan(layer digest.Digest, src *Counter, lim Limits, refuse func(Refusal)) (*Builder, int64, int, error) {
	var rd io.Reader = src
	if src.s != nil {
		rd = seekingCounter{src}
	}
	tr := tar.NewReader(rd)
	b := &Builder{}
	seen := map[string]struct{}{}
	var fx factFinder
	refused := 0
	total := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%w: layer %s: malformed tar after %d entries: %v", errdefs.ErrLayerRefused, layer, total, err)
		}
		total++
		if total > lim.MaxEntries {
			return nil, 0, 0, fmt.Errorf("%w: layer %s has more than %d entries (LayerOptions.MaxEntries)", errdefs.ErrLayerRefused, layer, lim.MaxEntries)
		}
		e, reason := tocEntryOf(h, src.off, lim)
		if reason == "" {
			if _, dup := seen[e.Name]; dup {
				reason = "duplicate entry (the first one is kept)"
			}
		}
		if reason != "" {
			refused++
			refuse(Refusal{Name: h.Name, Reason: reason})
			continue
		}
		seen[e.Name] = struct{}{}
		if wantFacts(&e) {
			if e.Facts, err = fx.find(tr); err != nil {
				return nil, 0, 0, fmt.Errorf("%w: layer %s: reading %s: %v", errdefs.ErrLayerRefused, layer, e.Name, err)
			}
		}
		b.Add(&e)
	}
	// What follows the end-of-archive marker belongs to the tar too.
	if src.s != nil {
		end, err := src.s.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, 0, 0, err
		}
		src.off = end
	} else if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, 0, 0, fmt.Errorf("%w: layer %s: %v", errdefs.ErrLayerRefused, layer, err)
	}
	return b, src.off, refused, nil
}

// tocEntryOf checks one tar header and returns its entry, or why it is
// refused.
func tocEntryOf(h *tar.Header, dataOff int64, lim Limits) (Entry, string) {
	name, why := cleanEntryName(h.Name, lim.MaxNameLen)
	if why != "" {
		return Entry{}, why
	}
	e := Entry{
		Name: name, Mode: uint32(h.Mode) & 0o7777, ModTime: h.ModTime,
		Devmajor: uint32(h.Devmajor), Devminor: uint32(h.Devminor),
	}
	if h.Uid < 0 || h.Gid < 0 || h.Uid > 1<<32-1 || h.Gid > 1<<32-1 {
		return e, "owner out of range"
	}
	e.UID, e.GID = uint32(h.Uid), uint32(h.Gid)
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return e, "sparse file (not supported)"
		}
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		if h.Size < 0 {
			return e, "negative size"
		}
		e.Type, e.Size, e.Offset = tar.TypeReg, h.Size, dataOff
	case tar.TypeDir:
		e.Type = tar.TypeDir
	case tar.TypeSymlink:
		e.Type = tar.TypeSymlink
		if h.Linkname == "" || len(h.Linkname) > lim.MaxNameLen || strings.IndexByte(h.Linkname, 0) >= 0 {
			return e, "bad symlink target"
		}
		if !path.IsAbs(h.Linkname) {
			if t := path.Join(path.Dir(name), h.Linkname); t == ".." || strings.HasPrefix(t, "../") {
				return e, "symlink target leaves the root"
			}
		}
		e.Linkname = h.Linkname
	case tar.TypeLink:
		e.Type = tar.TypeLink
		t, why := cleanEntryName(h.Linkname, lim.MaxNameLen)
		if why != "" || t == "." {
			return e, "hard link target: " + why
		}
		if t == name {
			return e, "hard link to itself"
		}
		e.Linkname = t
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		e.Type = h.Typeflag
	default:
		return e, fmt.Sprintf("unsupported entry type %q", h.Typeflag)
	}
	if name == "." && e.Type != tar.TypeDir {
		return e, "root is not a directory"
	}
	return e, ""
}

// cleanEntryName validates and cleans a path from a tar header.
func cleanEntryName(n string, maxLen int) (string, string) {
	switch {
	case n == "":
		return "", "empty name"
	case len(n) > maxLen:
		return "", "name too long"
	case strings.IndexByte(n, 0) >= 0:
		return "", "NUL in name"
	case strings.HasPrefix(n, "/"):
		return "", "absolute path"
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", "path leaves the root (..)"
	}
	for _, part := range strings.Split(c, "/") {
		if len(part) > nameMax {
			return "", "path component longer than 255 bytes"
		}
	}
	return c, ""
}

// SniffCodec tells a layer's compression from its first bytes.
func SniffCodec(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return "tar"
}
