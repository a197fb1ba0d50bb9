package imagetree

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthstore/berth/engine/internal/layertoc"
)

// TestResolveLinks: each case's layers are merged (Merge, as the
// mount does) and the links named are shown with the text given, or
// hidden (""). Every case is also checked against a plain chroot
// resolution of the layers' own texts and a simulation of the kernel
// following the shown texts (checkLinks).
func TestResolveLinks(t *testing.T) {
	tests := []struct {
		name   string
		layers string
		want   map[string]string // link path -> text shown ("": hidden)
	}{{
		name: "relative texts that stay inside are kept verbatim",
		layers: `layer
			dir usr
			dir usr/lib
			file usr/lib/libc.so
			symlink lib -> usr/lib
			symlink usr/lib/self -> ./libc.so
			symlink usr/via-lib -> ../lib/libc.so
			symlink usr/trailing -> lib/`,
		want: map[string]string{"lib": "usr/lib", "usr/lib/self": "./libc.so", "usr/via-lib": "../lib/libc.so", "usr/trailing": "lib/"},
	}, {
		name: "absolute texts start at the image root",
		layers: `layer
			dir etc
			dir a
			dir a/b
			file etc/passwd
			symlink top -> /etc/passwd
			symlink a/b/deep -> /etc/passwd
			symlink a/b/root -> /
			symlink a/b/double -> //etc//passwd
			symlink a/b/missing -> /proc/self/mounts`,
		want: map[string]string{"top": "etc/passwd", "a/b/deep": "../../etc/passwd", "a/b/root": "../..",
			"a/b/double": "../../etc/passwd", "a/b/missing": "../../proc/self/mounts"},
	}, {
		name: "dot-dot at the root is clamped",
		layers: `layer
			dir a
			file secret
			symlink a/up -> ../../../..
			symlink a/s -> ../../../../secret
			symlink a/dots -> ../../.././../secret`,
		want: map[string]string{"a/up": "..", "a/s": "../secret", "a/dots": "../secret"},
	}, {
		name: "chained links: dot-dot after a link climbs from where it leads",
		layers: `layer
			dir a
			dir a/b
			dir tmp
			file tmp/secret
			symlink a/b/up -> ../..
			symlink a/b/x -> up/../../tmp/secret
			symlink a/b/y -> up/tmp/secret`,
		want: map[string]string{"a/b/up": "../..", "a/b/x": "../../tmp/secret", "a/b/y": "up/tmp/secret"},
	}, {
		name: "a directory replaced by a link in a later layer",
		layers: `layer
			dir a
			dir a/b
			dir a/b/h
			dir a/b/h/i
			dir etc
			file etc/passwd
			symlink a/b/esc -> h/../../../etc/passwd
			dir a/b/h/j
			dir i
			symlink a/b/esc2 -> h/i/../../../../etc/passwd
			symlink a/b/gone -> h/j/../../../../etc/passwd
			layer
			symlink a/b/h -> ../..`,
		want: map[string]string{"a/b/esc": "../../etc/passwd", "a/b/esc2": "../../etc/passwd", "a/b/h": "../..", "a/b/gone": "h/j/../../../../etc/passwd"},
	}, {
		name: "a link replaced by a directory in a later layer",
		layers: `layer
			dir real
			file real/f
			symlink m -> real
			symlink via -> m/../real/f
			layer
			dir m
			file m/f`,
		want: map[string]string{"via": "m/../real/f"},
	}, {
		name: "a whiteout of a link component",
		layers: `layer
			dir usr
			dir usr/lib
			file usr/lib/x
			symlink lib -> usr/lib
			dir d
			symlink d/via -> ../lib/../../x
			symlink d/plain -> ../lib/x
			layer
			file .wh.lib`,
		want: map[string]string{"d/via": "../lib/x", "d/plain": "../lib/x"},
	}, {
		name: "loops are hidden",
		layers: `layer
			symlink self -> self
			symlink a -> b
			symlink b -> a
			symlink tail -> a
			symlink through -> a/x
			dir d
			symlink d/up -> ..
			symlink d/ok -> up/d/up/d/up/d`,
		want: map[string]string{"self": "", "a": "", "b": "", "tail": "", "through": "", "d/up": "..", "d/ok": "up/d/up/d/up/d"},
	}, {
		name:   "forty hops resolve, forty-one do not",
		layers: "layer\nfile f\n" + chain("l", 41, "f"),
		want:   map[string]string{"l40": "l39", "l41": ""},
	}, {
		// Resolved from the top of the chain down, so that nothing is
		// remembered yet: links nested more than 40 deep.
		name:   "a long chain met from its top",
		layers: "layer\nfile f\n" + chainDown("a", 45, "f"),
		want:   map[string]string{"a01": "", "a05": "", "a06": "a07", "a44": "a45", "a45": "f"},
	}, {
		name: "dead ends stay dead ends inside the image",
		layers: `layer
			dir d
			file d/f
			symlink d/nofile -> ../../../../missing/../../etc/passwd
			symlink d/notdir -> f/../../../../etc/passwd
			symlink d/notdir-dots -> ../../../d/f/..`,
		want: map[string]string{"d/nofile": "../missing/etc/passwd", "d/notdir": "f/etc/passwd", "d/notdir-dots": "f/."},
	}, {
		name: "hard links to a symlink elsewhere get their own text",
		layers: `layer
			dir a
			dir a/b
			file x
			file a/x
			symlink a/b/l -> ../x
			link a/b/same -> a/b/l
			link top -> a/b/l`,
		want: map[string]string{"a/b/l": "../x", "a/b/same": "../x", "top": "x"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tocs, err := parseLayers(tt.layers)
			require.NoError(t, err)
			shown := checkLinks(t, tocs)
			for p, want := range tt.want {
				got, ok := shown[p]
				if want == "" {
					require.False(t, ok, "%s is hidden, not shown as %q", p, got)
					continue
				}
				require.True(t, ok, "%s is shown", p)
				require.Equal(t, want, got, p)
			}
		})
	}
}

// chain returns n links prefix01 -> end, prefix02 -> prefix01, ...
func chain(prefix string, n int, end string) string {
	var b strings.Builder
	prev := end
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s%02d", prefix, i)
		fmt.Fprintf(&b, "symlink %s -> %s\n", name, prev)
		prev = name
	}
	return b.String()
}

// chainDown returns n links prefix01 -> prefix02, ..., prefixNN -> end.
func chainDown(prefix string, n int, end string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		next := end
		if i < n {
			next = fmt.Sprintf("%s%02d", prefix, i+1)
		}
		fmt.Fprintf(&b, "symlink %s%02d -> %s\n", prefix, i, next)
	}
	return b.String()
}

// checkLinks merges tocs as the mount does and checks every symlink:
//   - followed as the kernel follows it from its place in the mount (".."
//     above the image root, or an absolute text, would leave the image),
//     it never leaves the image and ends where a chroot resolution of the
//     layers' own text ends (the same file, or the same kind of dead end);
//   - it is hidden exactly when that chroot resolution loops or follows
//     more than 40 links;
//   - its text, joined to its directory and cleaned, stays inside too;
//   - its size is the length of its text.
//
// It returns the text shown for each link's path.
func checkLinks(t testing.TB, tocs []*layertoc.TOC) map[string]string {
	t.Helper()
	m := newMerger(1000, quietLogger(), false)
	for i, toc := range tocs {
		require.NoError(t, m.apply(i, toc))
	}
	orig := newSim(m.freeze(), true)
	safeTree, err := Merge(tocs, 1000, quietLogger(), false)
	require.NoError(t, err)
	safe := newSim(safeTree, false)

	shown := map[string]string{}
	for _, l := range safe.links() {
		in := &safe.t.Inodes[l.id]
		shown[l.path] = in.Linkname
		require.Equal(t, int64(len(in.Linkname)), in.Size, "%s: size", l.path)
		require.False(t, path.IsAbs(in.Linkname), "%s -> %s: absolute", l.path, in.Linkname)
		require.True(t, lexicallyInside(path.Dir(l.path), in.Linkname), "%s -> %s: lexically outside", l.path, in.Linkname)
	}
	for _, l := range orig.links() {
		want, wantErr := orig.resolve(l.dir, l.name)
		text, ok := shown[l.path]
		if errors.Is(wantErr, errSimLoop) {
			require.False(t, ok, "%s -> %s loops in the image yet is shown as %q", l.path, orig.t.Inodes[l.id].Linkname, text)
			continue
		}
		require.True(t, ok, "%s -> %s (%v) is hidden", l.path, orig.t.Inodes[l.id].Linkname, wantErr)
		dir, found := safe.dirs[orig.paths[l.dir]]
		require.True(t, found)
		got, gotErr := safe.resolve(dir, l.name)
		require.NotErrorIs(t, gotErr, errSimEscape, "%s -> %s leaves the image", l.path, text)
		require.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(gotErr), "%s -> %s (layer: %s)", l.path, text, orig.t.Inodes[l.id].Linkname)
		require.Equal(t, want, got, "%s -> %s (layer: %s)", l.path, text, orig.t.Inodes[l.id].Linkname)
	}
	return shown
}

// Outcomes of a simulated resolution.
var (
	errSimEscape = errors.New("left the image")
	errSimLoop   = errors.New("ELOOP")
	errSimNoent  = errors.New("ENOENT")
	errSimNotdir = errors.New("ENOTDIR")
)

// sim follows paths over a frozen tree, either as a chroot would (".."
// at the root stays there, absolute texts start at the root) or as the
// kernel does through the mount (the image root has a parent outside).
type sim struct {
	t      *Tree
	chroot bool
	parent map[int32]int32
	paths  map[int32]string // of directories
	dirs   map[string]int32 // by path
}

type simLink struct {
	dir        int32
	name, path string
	id         int32
}

func newSim(t *Tree, chroot bool) *sim {
	s := &sim{t: t, chroot: chroot, parent: map[int32]int32{}, paths: map[int32]string{0: ""}, dirs: map[string]int32{"": 0}}
	var walk func(id int32)
	walk = func(id int32) {
		for _, e := range t.Dirs[id] {
			if t.Inodes[e.Ino].Type == tar.TypeDir {
				s.parent[e.Ino] = id
				s.paths[e.Ino] = joinPath(s.paths[id], e.Name)
				s.dirs[s.paths[e.Ino]] = e.Ino
				walk(e.Ino)
			}
		}
	}
	walk(0)
	return s
}

// links lists every symlink, in path order.
func (s *sim) links() []simLink {
	var out []simLink
	var walk func(id int32)
	walk = func(id int32) {
		for _, e := range s.t.Dirs[id] {
			switch s.t.Inodes[e.Ino].Type {
			case tar.TypeDir:
				walk(e.Ino)
			case tar.TypeSymlink:
				out = append(out, simLink{dir: id, name: e.Name, path: joinPath(s.paths[id], e.Name), id: e.Ino})
			}
		}
	}
	walk(0)
	return out
}

// resolve follows name in directory dir as open(2) would, returning the
// path of what it ends on, or why it ends on nothing.
func (s *sim) resolve(dir int32, name string) (string, error) {
	hops := 0
	d, n, err := s.walk(dir, name, &hops)
	if err != nil {
		return "", err
	}
	return joinPath(s.paths[d], n), nil
}

// walk applies text from directory dir, following every link (the last
// component's too). It returns the directory and name of what it ends on
// ("" for the directory itself).
func (s *sim) walk(dir int32, text string, hops *int) (int32, string, error) {
	if text == "" {
		return 0, "", errSimNoent
	}
	cur := dir
	if path.IsAbs(text) {
		if !s.chroot {
			return 0, "", errSimEscape
		}
		cur = 0
	}
	comps := components(text)
	for i, c := range comps {
		last := i == len(comps)-1
		switch c {
		case ".":
			continue
		case "..":
			if cur == 0 {
				if !s.chroot {
					return 0, "", errSimEscape
				}
				continue
			}
			cur = s.parent[cur]
			continue
		}
		id, ok := s.t.Lookup(cur, c)
		if !ok {
			return 0, "", errSimNoent
		}
		in := &s.t.Inodes[id]
		if in.Type == tar.TypeSymlink {
			*hops++
			if *hops > maxSymlinkHops {
				return 0, "", errSimLoop
			}
			d, n, err := s.walk(cur, in.Linkname, hops)
			if err != nil || last {
				return d, n, err
			}
			if n != "" {
				id, ok := s.t.Lookup(d, n)
				if !ok {
					return 0, "", errSimNoent
				}
				if s.t.Inodes[id].Type != tar.TypeDir {
					return 0, "", errSimNotdir
				}
				d = id
			}
			cur = d
			continue
		}
		if last {
			if in.Type == tar.TypeDir {
				return id, "", nil
			}
			return cur, c, nil
		}
		if in.Type != tar.TypeDir {
			return 0, "", errSimNotdir
		}
		cur = id
	}
	return cur, "", nil
}

// FuzzResolveLinks builds random layers (directories, files, symlinks
// with random texts, hard links, whiteouts, opaque markers) and checks
// every link of the merged tree (checkLinks): none leads out of the
// image, each ends where a chroot would, none is hidden but loops, and
// nothing panics.
func FuzzResolveLinks(f *testing.F) {
	f.Add([]byte{4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 4, 1, 2, 3, 3, 3, 3, 3})
	f.Add([]byte("\x01\x01\x01\x04\x02\x11\x05\x04\x04\x33\x00\x06\x01\x02\x07\x05\x04\x09"))
	f.Add([]byte("symlinks all the way down: ../../../../.."))
	f.Fuzz(func(t *testing.T, data []byte) {
		tocs := fuzzLayers(data)
		checkLinks(t, tocs)
	})
}

// fuzzLayers decodes bytes into layers of a small tree (names a, b, c, up
// to three deep) whose links have texts of up to seven components.
func fuzzLayers(data []byte) []*layertoc.TOC {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := int(data[0])
		data = data[1:]
		return b
	}
	names := []string{"a", "b", "c"}
	name := func() string {
		b := next()
		n := 1 + b%3
		parts := make([]string, n)
		for i := range parts {
			parts[i] = names[(b/3+next())%3]
		}
		return strings.Join(parts, "/")
	}
	text := func() string {
		b := next()
		comps := []string{"a", "b", "c", "..", ".", "", ".."}
		n := b % 8
		parts := make([]string, n)
		for i := range parts {
			parts[i] = comps[next()%len(comps)]
		}
		s := strings.Join(parts, "/")
		if b&0x40 != 0 {
			s = "/" + s
		}
		if b&0x80 != 0 {
			s += "/"
		}
		return s
	}
	tocs := []*layertoc.TOC{{}}
	for i := 0; len(data) > 0 && i < 64; i++ {
		toc := tocs[len(tocs)-1]
		add := func(e layertoc.Entry) { toc.Entries = append(toc.Entries, e) }
		switch next() % 9 {
		case 0:
			tocs = append(tocs, &layertoc.TOC{})
		case 1, 2:
			add(layertoc.Entry{Name: name(), Type: tar.TypeDir, Mode: 0o755})
		case 3:
			add(layertoc.Entry{Name: name(), Type: tar.TypeReg, Mode: 0o644})
		case 4, 5, 6:
			add(layertoc.Entry{Name: name(), Type: tar.TypeSymlink, Mode: 0o777, Linkname: text()})
		case 7:
			n, target := name(), name()
			if n != target {
				add(layertoc.Entry{Name: n, Type: tar.TypeLink, Linkname: target})
			}
		case 8:
			n := name()
			if next()%2 == 0 {
				add(layertoc.Entry{Name: path.Join(path.Dir(n), whiteoutPrefix+path.Base(n)), Type: tar.TypeReg})
			} else {
				add(layertoc.Entry{Name: path.Join(n, opaqueWhiteout), Type: tar.TypeReg})
			}
		}
	}
	return tocs
}
