package fuse

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine"
)

// The layer merger, tested without a mount: layers of table-of-contents
// entries in, the merged tree out (mergeLayers, the code the mount builds
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
				rec := newLogRecorder()
				tr, err := mergeLayers(tocs, max, slog.New(rec), keepAbs)
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
func parseLayers(input string) ([]*engine.LayerTOC, error) {
	var tocs []*engine.LayerTOC
	for i, line := range strings.Split(input, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "layer" {
			tocs = append(tocs, &engine.LayerTOC{})
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
	"dir": engine.TOCDir, "file": engine.TOCReg, "symlink": engine.TOCSymlink, "link": engine.TOCLink,
	"fifo": engine.TOCFifo, "char": engine.TOCChar, "block": engine.TOCBlock,
}

var typeNames = map[byte]string{
	engine.TOCDir: "dir", engine.TOCReg: "file", engine.TOCSymlink: "symlink", engine.TOCLink: "link",
	engine.TOCFifo: "fifo", engine.TOCChar: "char", engine.TOCBlock: "block",
}

func parseEntry(line string) (engine.TOCEntry, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return engine.TOCEntry{}, fmt.Errorf("want <type> <name> ...")
	}
	typ, ok := entryTypes[f[0]]
	if !ok {
		return engine.TOCEntry{}, fmt.Errorf("unknown type %q", f[0])
	}
	e := engine.TOCEntry{Name: f[1], Type: typ, Mode: 0o644}
	switch typ {
	case engine.TOCDir:
		e.Mode = 0o755
	case engine.TOCSymlink:
		e.Mode = 0o777
	}
	rest := f[2:]
	if typ == engine.TOCSymlink || typ == engine.TOCLink {
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
func printTree(t testing.TB, tr *tree) string {
	t.Helper()
	var b strings.Builder
	groups := map[int32]int{}
	names := map[int32]int{}
	var count func(id int32)
	count = func(id int32) {
		for _, e := range tr.dirs[id] {
			names[e.ino]++
			if tr.inodes[e.ino].typ == engine.TOCDir {
				count(e.ino)
			}
		}
	}
	count(0)
	var walk func(id int32, p string)
	walk = func(id int32, p string) {
		in := &tr.inodes[id]
		name := p
		if name == "" {
			name = "/"
		}
		fmt.Fprintf(&b, "%s %s %04o %d:%d", name, typeNames[in.typ], in.mode, in.uid, in.gid)
		switch in.typ {
		case engine.TOCReg:
			fmt.Fprintf(&b, " size=%d", in.size)
		case engine.TOCSymlink:
			fmt.Fprintf(&b, " -> %s", in.linkname)
			require.Equal(t, int64(len(in.linkname)), in.size, "%s: a symlink's size is its text's length", name)
		case engine.TOCChar, engine.TOCBlock:
			fmt.Fprintf(&b, " rdev=%#x", in.rdev)
		}
		if !in.mtime.IsZero() {
			fmt.Fprintf(&b, " mtime=%d", in.mtime.Unix())
		}
		if in.typ == engine.TOCReg {
			fmt.Fprintf(&b, " layer=%d", in.layer)
		}
		if in.typ != engine.TOCDir {
			require.Equal(t, uint32(names[id]), in.nlink, "%s: nlink", name)
			if in.nlink > 1 {
				g, ok := groups[id]
				if !ok {
					g = len(groups) + 1
					groups[id] = g
				}
				fmt.Fprintf(&b, " nlink=%d inode=%d", in.nlink, g)
			}
		}
		b.WriteByte('\n')
		if in.typ == engine.TOCDir {
			ents := tr.dirs[id]
			require.True(t, slices.IsSortedFunc(ents, func(a, b dirent) int { return strings.Compare(a.name, b.name) }))
			for _, e := range ents {
				walk(e.ino, joinPath(p, e.name))
			}
		}
	}
	walk(0, "")
	return b.String()
}

// logRecorder is a slog.Handler that keeps the warnings, to print them
// after a merged tree.
type logRecorder struct {
	sink  *logLines
	attrs []slog.Attr
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func newLogRecorder() *logRecorder { return &logRecorder{sink: &logLines{}} }

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "log: %s", rec.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		return true
	}
	for _, a := range r.attrs {
		add(a)
	}
	rec.Attrs(add)
	r.sink.mu.Lock()
	r.sink.lines = append(r.sink.lines, b.String())
	r.sink.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{sink: r.sink, attrs: append(slices.Clone(r.attrs), as...)}
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

func (r *logRecorder) String() string {
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	if len(r.sink.lines) == 0 {
		return ""
	}
	return strings.Join(r.sink.lines, "\n") + "\n"
}
