package imagetree

import (
	"archive/tar"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/layertoc"
	"github.com/berthstore/berth/internal/logtest"
)

// The layer merger, tested without a mount: layers of table-of-contents
// entries in, the merged tree out (Merge, the code the mount builds
// an image's rootfs with). Each case of testdata/merge is
//
//	merge [max=N] [keep-absolute]
//	layer
//	<type> <name> [-> <target>] [<mode>] [uid=N] [gid=N] [size=N] [offset=N] [mtime=N] [dev=MAJ,MIN]
//	...
//	layer
//	...
//	----
//	<the merged tree, one line a path, then what the merger logged>
//
// with type one of dir, file, symlink, link (a hard link), fifo, char,
// block. Names are given as the engine's indexer leaves them (cleaned,
// relative); whiteouts are files named as in the layer (".wh.<name>",
// ".wh..wh..opq"). A tree line is
//
//	<path> <type> <mode> <uid>:<gid> [size=N] [-> target] [rdev=N] [mtime=N] [layer=N] [nlink=N inode=K]
//
// where layer is the layer a file's bytes are read from (0: the first),
// and inode=K numbers the groups of hard links in path order. The lines
// after the tree ("log: ...") are the warnings the merger logged: entries
// refused, symlinks hidden.
func TestMergeLayers(t *testing.T) {
	datadriven.Walk(t, "testdata/merge", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "merge":
				max := 1000
				keepAbs := false
				for _, a := range td.CmdArgs {
					switch a.Key {
					case "max":
						n, err := strconv.Atoi(a.Vals[0])
						require.NoError(t, err)
						max = n
					case "keep-absolute":
						keepAbs = true
					default:
						t.Fatalf("%s: unknown argument %s", td.Pos, a.Key)
					}
				}
				tocs, err := parseLayers(td.Input)
				if err != nil {
					t.Fatalf("%s: %v", td.Pos, err)
				}
				rec := logtest.NewRecorder()
				tr, err := Merge(tocs, max, slog.New(rec), keepAbs)
				if err != nil {
					return "error: " + err.Error() + "\n" + rec.String()
				}
				return printTree(t, tr) + rec.String()
			default:
				t.Fatalf("%s: unknown command %s", td.Pos, td.Cmd)
				return ""
			}
		})
	})
}

// parseLayers reads layers written as TestMergeLayers describes.
func parseLayers(input string) ([]*layertoc.TOC, error) {
	var tocs []*layertoc.TOC
	for i, line := range strings.Split(input, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "layer" {
			tocs = append(tocs, &layertoc.TOC{})
			continue
		}
		if len(tocs) == 0 {
			return nil, fmt.Errorf("line %d: an entry before the first layer", i+1)
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", i+1, line, err)
		}
		toc := tocs[len(tocs)-1]
		toc.Entries = append(toc.Entries, e)
	}
	return tocs, nil
}

var entryTypes = map[string]byte{
	"dir": tar.TypeDir, "file": tar.TypeReg, "symlink": tar.TypeSymlink, "link": tar.TypeLink,
	"fifo": tar.TypeFifo, "char": tar.TypeChar, "block": tar.TypeBlock,
}

var typeNames = map[byte]string{
	tar.TypeDir: "dir", tar.TypeReg: "file", tar.TypeSymlink: "symlink", tar.TypeLink: "link",
	tar.TypeFifo: "fifo", tar.TypeChar: "char", tar.TypeBlock: "block",
}

func parseEntry(line string) (layertoc.Entry, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return layertoc.Entry{}, fmt.Errorf("want <type> <name> ...")
	}
	typ, ok := entryTypes[f[0]]
	if !ok {
		return layertoc.Entry{}, fmt.Errorf("unknown type %q", f[0])
	}
	e := layertoc.Entry{Name: f[1], Type: typ, Mode: 0o644}
	switch typ {
	case tar.TypeDir:
		e.Mode = 0o755
	case tar.TypeSymlink:
		e.Mode = 0o777
	}
	rest := f[2:]
	if typ == tar.TypeSymlink || typ == tar.TypeLink {
		if len(rest) < 2 || rest[0] != "->" {
			return e, fmt.Errorf("want %s <name> -> <target>", f[0])
		}
		e.Linkname, rest = rest[1], rest[2:]
	}
	for _, a := range rest {
		k, v, isKV := strings.Cut(a, "=")
		if !isKV {
			m, err := strconv.ParseUint(a, 8, 32)
			if err != nil {
				return e, fmt.Errorf("bad mode %q", a)
			}
			e.Mode = uint32(m)
			continue
		}
		var n uint64
		var err error
		if k != "dev" {
			n, err = strconv.ParseUint(v, 10, 63)
			if err != nil {
				return e, fmt.Errorf("bad %s: %v", k, err)
			}
		}
		switch k {
		case "uid":
			e.UID = uint32(n)
		case "gid":
			e.GID = uint32(n)
		case "size":
			e.Size = int64(n)
		case "offset":
			e.Offset = int64(n)
		case "mtime":
			e.ModTime = time.Unix(int64(n), 0).UTC()
		case "dev":
			maj, min, _ := strings.Cut(v, ",")
			a, err1 := strconv.ParseUint(maj, 10, 32)
			b, err2 := strconv.ParseUint(min, 10, 32)
			if err1 != nil || err2 != nil {
				return e, fmt.Errorf("bad dev %q", v)
			}
			e.Devmajor, e.Devminor = uint32(a), uint32(b)
		default:
			return e, fmt.Errorf("unknown field %q", k)
		}
	}
	return e, nil
}

// printTree prints a merged tree as TestMergeLayers describes, checking
// on the way what every tree must hold (a symlink's size is its text's
// length, link counts match the names).
func printTree(t testing.TB, tr *Tree) string {
	t.Helper()
	var b strings.Builder
	groups := map[int32]int{}
	names := map[int32]int{}
	var count func(id int32)
	count = func(id int32) {
		for _, e := range tr.Dirs[id] {
			names[e.Ino]++
			if tr.Inodes[e.Ino].Type == tar.TypeDir {
				count(e.Ino)
			}
		}
	}
	count(0)
	var walk func(id int32, p string)
	walk = func(id int32, p string) {
		in := &tr.Inodes[id]
		name := p
		if name == "" {
			name = "/"
		}
		fmt.Fprintf(&b, "%s %s %04o %d:%d", name, typeNames[in.Type], in.Mode, in.UID, in.GID)
		switch in.Type {
		case tar.TypeReg:
			fmt.Fprintf(&b, " size=%d", in.Size)
		case tar.TypeSymlink:
			fmt.Fprintf(&b, " -> %s", in.Linkname)
			require.Equal(t, int64(len(in.Linkname)), in.Size, "%s: a symlink's size is its text's length", name)
		case tar.TypeChar, tar.TypeBlock:
			fmt.Fprintf(&b, " rdev=%#x", in.Rdev)
		}
		if !in.MTime.IsZero() {
			fmt.Fprintf(&b, " mtime=%d", in.MTime.Unix())
		}
		if in.Type == tar.TypeReg {
			fmt.Fprintf(&b, " layer=%d", in.Layer)
		}
		if in.Type != tar.TypeDir {
			require.Equal(t, uint32(names[id]), in.Nlink, "%s: nlink", name)
			if in.Nlink > 1 {
				g, ok := groups[id]
				if !ok {
					g = len(groups) + 1
					groups[id] = g
				}
				fmt.Fprintf(&b, " nlink=%d inode=%d", in.Nlink, g)
			}
		}
		b.WriteByte('\n')
		if in.Type == tar.TypeDir {
			ents := tr.Dirs[id]
			require.True(t, slices.IsSortedFunc(ents, func(a, b Dirent) int { return strings.Compare(a.Name, b.Name) }))
			for _, e := range ents {
				walk(e.Ino, joinPath(p, e.Name))
			}
		}
	}
	walk(0, "")
	return b.String()
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
