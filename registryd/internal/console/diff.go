package console

// The diff of two images' trees: files added, removed and changed (type,
// size, mode, owner, link target, and content where it is cheap to
// tell: the same bytes at the same place of the same layer are equal
// without a read; small files of equal size are compared by SHA-256).

import (
	"crypto/sha256"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/engine"
)

// Bounds of a diff.
const (
	// maxDiffRows bounds the rows a diff shows.
	maxDiffRows = 5000
	// maxHashedFile is the largest file whose content is compared.
	maxHashedFile = 1 << 20
	// maxHashedBytes bounds the bytes read to compare contents, in all.
	maxHashedBytes = 64 << 20
)

// diffData is the diff page's.
type diffData struct {
	Repo, From, To          string
	FromDigest, ToDigest    digest.Digest
	Rows                    []diffRow
	Added, Removed, Changed int
	Truncated               bool
	Tags                    []string
}

// diffRow is one path that differs.
type diffRow struct {
	Path   string
	Change string // added, removed, changed
	What   string // what changed
	Old    *engine.ImageInode
	New    *engine.ImageInode
}

// flatten lists every path of t with its inode.
func flatten(t *engine.ImageTree) map[string]*engine.ImageInode {
	out := make(map[string]*engine.ImageInode, len(t.Inodes))
	var walk func(id int32, dir string)
	walk = func(id int32, dir string) {
		for _, e := range t.Dirs[id] {
			p := dir + "/" + e.Name
			in := &t.Inodes[e.Ino]
			out[p] = in
			if in.Type == engine.TOCDir {
				walk(e.Ino, p)
			}
		}
	}
	walk(0, "")
	return out
}

func (c *Console) diffPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := r.URL.Query()
	repo, from, to := q.Get("repo"), q.Get("from"), q.Get("to")
	a, releaseA, err := c.openImage(r, v, repo, from)
	if err != nil {
		return err
	}
	defer releaseA()
	b, releaseB, err := c.openImage(r, v, repo, to)
	if err != nil {
		return err
	}
	defer releaseB()
	d := diffData{Repo: repo, From: from, To: to, FromDigest: a.Digest(), ToDigest: b.Digest()}
	if imgs, err := c.store.Images(r.Context(), repo); err == nil {
		for _, im := range imgs {
			d.Tags = append(d.Tags, im.Tags...)
		}
		sort.Strings(d.Tags)
	}
	old, cur := flatten(a.Tree()), flatten(b.Tree())
	paths := make([]string, 0, len(old)+len(cur))
	for p := range old {
		paths = append(paths, p)
	}
	for p := range cur {
		if _, ok := old[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	budget := int64(maxHashedBytes)
	for _, p := range paths {
		o, n := old[p], cur[p]
		var row diffRow
		switch {
		case o == nil:
			row = diffRow{Path: p, Change: "added", New: n}
			d.Added++
		case n == nil:
			row = diffRow{Path: p, Change: "removed", Old: o}
			d.Removed++
		default:
			what := changes(a, b, p, o, n, &budget)
			if what == "" {
				continue
			}
			row = diffRow{Path: p, Change: "changed", What: what, Old: o, New: n}
			d.Changed++
		}
		if len(d.Rows) < maxDiffRows {
			d.Rows = append(d.Rows, row)
		} else {
			d.Truncated = true
		}
	}
	c.render(w, r, v, http.StatusOK, "diff", "Diff "+from+" → "+to, d)
	return nil
}

// changes says what differs between the inodes o (in a) and n (in b) of
// path p; "" when nothing does.
func changes(a, b *engine.ImageFS, p string, o, n *engine.ImageInode, budget *int64) string {
	var what []string
	if o.Type != n.Type {
		what = append(what, "type")
	}
	if o.Mode != n.Mode {
		what = append(what, "mode")
	}
	if o.UID != n.UID || o.GID != n.GID {
		what = append(what, "owner")
	}
	if o.Linkname != n.Linkname {
		what = append(what, "link")
	}
	if o.Type == engine.TOCReg && n.Type == engine.TOCReg {
		switch {
		case o.Size != n.Size:
			what = append(what, "size")
		case sameBytes(a, b, o, n):
		case o.Size <= maxHashedFile && *budget >= 2*o.Size:
			*budget -= 2 * o.Size
			if !sameContent(a, b, p) {
				what = append(what, "content")
			}
		default:
			what = append(what, "content?")
		}
	}
	return strings.Join(what, ", ")
}

// sameBytes reports whether both inodes read the same bytes of the same
// layer: equal without a read.
func sameBytes(a, b *engine.ImageFS, o, n *engine.ImageInode) bool {
	la, lb := a.LayerOf(o), b.LayerOf(n)
	return la != "" && la == lb && o.Offset == n.Offset
}

// sameContent compares the SHA-256 of path p in both images.
func sameContent(a, b *engine.ImageFS, p string) bool {
	ha, ok1 := fileHash(a, p)
	hb, ok2 := fileHash(b, p)
	return ok1 && ok2 && ha == hb
}

func fileHash(fsys *engine.ImageFS, p string) ([sha256.Size]byte, bool) {
	var sum [sha256.Size]byte
	f, err := fsys.Open(strings.TrimPrefix(p, "/"))
	if err != nil {
		return sum, false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, false
	}
	copy(sum[:], h.Sum(nil))
	return sum, true
}
