package imagetree

// Symbolic links of a merged image, resolved as a chroot would.
//
// The kernel follows a link's text relative to the link's place in the
// host's tree, so a text that is harmless in the image can leave it
// through the mount: "..", climbed past the image's root, reaches the
// directories above the mount point; a component that a later layer
// turned into a link ("h" in "h/../../x") changes what the ".." after it
// climbs from; an absolute text starts at the host's root. A check of one
// layer's text alone (the engine's) cannot see any of this.
//
// So, once every layer is applied, each link is resolved against the
// MERGED tree with chroot rules (".." at the image root stays at the
// root; an absolute text starts at the image root; at most
// maxSymlinkHops links are followed in one resolution, as Linux's
// MAXSYMLINKS) and its text is replaced by one the kernel resolves to the
// same place without leaving the image:
//
//   - A relative text whose lexical join with the link's directory stays
//     inside the image, and that has no ".." after a component that is a
//     symlink, is kept as the layer has it: the kernel walks it down
//     through real directories and through links that are themselves
//     safe, and climbs only through the link's own ancestors.
//   - Any other text is rewritten to the path of what it resolves to,
//     relative to the link's directory: some "../" that climb the link's
//     own ancestors, then real directories down, then the last component's
//     name. The last component is kept as a name even when it is a link
//     (itself resolved the same way), so chains of links stay chains. A
//     text that cannot resolve (a missing component, or a file where a
//     directory is needed) is rewritten to the same dead end: the path up
//     to the component that stops it, and the names after it with "." and
//     ".." dropped, which the kernel never reaches.
//   - A link whose resolution loops or follows more than maxSymlinkHops
//     links cannot be made safe and is hidden (logged).
//
// A rewritten text therefore never climbs above the image root, neither
// when the kernel follows it nor when a tool joins it lexically, and a
// link's st_size is the length of the text readlink returns. Hard links
// to a symlink share its text only where it resolves to the same place;
// a name elsewhere gets an inode of its own.

import (
	"archive/tar"
	"errors"
	"path"
	"slices"
	"strings"
)

// maxSymlinkHops bounds the links followed in one resolution (Linux's
// MAXSYMLINKS).
const maxSymlinkHops = 40

// Why a link is hidden.
var (
	errSymlinkLoop = errors.New("symlink loop")
	errSymlinkHops = errors.New("more than 40 symlinks to follow")
	// errSymlinkDepth: links nested more than maxSymlinkHops deep. The
	// outermost of them follows more than maxSymlinkHops links; the inner
	// ones may not, so it is never remembered for them.
	errSymlinkDepth = errors.New("symlinks nested too deep")
)

// linkDecision is what becomes of one symlink of a merged tree.
type linkDecision struct {
	dir    *bnode // the directory holding the link
	name   string // its name there
	node   *bnode
	path   string // its path in the image, for logs
	target string // the text readlink returns
	// rewritten is set when target differs from the layer's text.
	rewritten bool
	// hide is why the link cannot be made safe (nil: it is shown).
	hide error
}

// linkResolver resolves the links of one merged tree.
type linkResolver struct {
	root    *bnode
	up      map[*bnode]parentRef // every directory but the root
	memo    map[*bnode]linkMemo  // full resolution of a symlink, once
	busy    map[*bnode]bool      // symlinks being resolved (a cycle when met again)
	keepAbs bool
}

// parentRef is a directory's parent and its name there.
type parentRef struct {
	dir  *bnode
	name string
}

type linkMemo struct {
	end walkEnd
	err error
}

// walkEnd is where the walk of a link's text ended.
type walkEnd struct {
	// dir is the directory the last component was looked up in.
	dir *bnode
	// name is that component; "" when the walk ended on dir itself.
	name string
	// node is what name is in dir (nil: missing); dir when name is "".
	node *bnode
	// stopped: the walk could not go past name (missing, or not a
	// directory), and rest are the components it did not reach.
	stopped bool
	rest    []string
	// climbedPastLink: a ".." came after a symlink followed on the way,
	// so that the kernel, which climbs from where the link leads, and a
	// lexical reading of the text disagree.
	climbedPastLink bool
	// hops counts the symlinks followed.
	hops int
}

// dangling reports whether the walk ended on nothing.
func (w *walkEnd) dangling() bool { return w.stopped || w.node == nil }

// resolveLinks decides the fate of every symlink under root: shown as is,
// shown with a rewritten text, or hidden. It reads the tree and changes
// nothing; decisions come in path order.
func resolveLinks(root *bnode, keepAbs bool) []linkDecision {
	r := &linkResolver{
		root: root, up: map[*bnode]parentRef{}, memo: map[*bnode]linkMemo{},
		busy: map[*bnode]bool{}, keepAbs: keepAbs,
	}
	var links []linkDecision
	var visit func(d *bnode, p string)
	visit = func(d *bnode, p string) {
		names := make([]string, 0, len(d.children))
		for name := range d.children {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			c := d.children[name]
			switch c.Ino.Type {
			case tar.TypeDir:
				r.up[c] = parentRef{dir: d, name: name}
				visit(c, joinPath(p, name))
			case tar.TypeSymlink:
				links = append(links, linkDecision{dir: d, name: name, node: c, path: joinPath(p, name)})
			}
		}
	}
	visit(root, "")
	for i := range links {
		r.decide(&links[i])
	}
	return links
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// decide resolves one link and sets its target, or why it is hidden.
func (r *linkResolver) decide(l *linkDecision) {
	text := l.node.Ino.Linkname
	l.target = text
	abs := path.IsAbs(text)
	if abs && r.keepAbs {
		return // shown as the layer has it: the host resolves it
	}
	full, err := r.full(l.dir, l.node, 0)
	if errors.Is(err, errSymlinkDepth) {
		err = errSymlinkHops
	}
	if err == nil && full.hops+1 > maxSymlinkHops {
		err = errSymlinkHops
	}
	if err != nil {
		l.hide = err
		return
	}
	end, err := r.walk(l.dir, text, false, 0)
	if err != nil { // a prefix of the full walk, which succeeded
		l.hide = err
		return
	}
	if !abs && !end.climbedPastLink && lexicallyInside(r.pathOf(l.dir), text) {
		return
	}
	t := r.relative(l.dir, end)
	if strings.HasSuffix(text, "/") && !end.stopped && end.name != "" {
		t += "/"
	}
	l.target, l.rewritten = t, t != text
}

// full resolves the symlink link in dir to what it finally names,
// following every link on the way, once (memoized).
func (r *linkResolver) full(dir, link *bnode, depth int) (walkEnd, error) {
	if m, ok := r.memo[link]; ok {
		return m.end, m.err
	}
	if r.busy[link] {
		return walkEnd{}, errSymlinkLoop
	}
	if depth > maxSymlinkHops {
		return walkEnd{}, errSymlinkDepth
	}
	r.busy[link] = true
	end, err := r.walk(dir, link.Ino.Linkname, true, depth)
	delete(r.busy, link)
	if !errors.Is(err, errSymlinkDepth) {
		r.memo[link] = linkMemo{end, err}
	}
	return end, err
}

// walk applies target's components from directory start (the image root
// for an absolute target), following the links met before the last
// component, and the last one too when follow is set.
func (r *linkResolver) walk(start *bnode, target string, follow bool, depth int) (walkEnd, error) {
	if target == "" { // an empty link names nothing (ENOENT)
		return walkEnd{dir: start}, nil
	}
	cur := start
	if path.IsAbs(target) {
		cur = r.root
	}
	comps := components(target)
	var viaLink, climbed bool
	var hops int
	for i, c := range comps {
		last := i == len(comps)-1
		switch c {
		case ".":
			continue
		case "..":
			if p, ok := r.up[cur]; ok {
				cur = p.dir
			} // the root's parent is the root
			climbed = climbed || viaLink
			continue
		}
		child := cur.children[c]
		if child != nil && child.Ino.Type == tar.TypeSymlink && (!last || follow) {
			sub, err := r.full(cur, child, depth+1)
			if err != nil {
				return walkEnd{}, err
			}
			hops += 1 + sub.hops
			if hops > maxSymlinkHops {
				return walkEnd{}, errSymlinkHops
			}
			if last {
				sub.hops = hops
				return sub, nil
			}
			if sub.dangling() || sub.node.Ino.Type != tar.TypeDir {
				return walkEnd{dir: cur, name: c, node: child, stopped: true, rest: comps[i+1:], climbedPastLink: climbed, hops: hops}, nil
			}
			viaLink = true
			cur = sub.node
			continue
		}
		if last {
			return walkEnd{dir: cur, name: c, node: child, climbedPastLink: climbed, hops: hops}, nil
		}
		if child == nil || child.Ino.Type != tar.TypeDir {
			return walkEnd{dir: cur, name: c, node: child, stopped: true, rest: comps[i+1:], climbedPastLink: climbed, hops: hops}, nil
		}
		cur = child
	}
	return walkEnd{dir: cur, node: cur, climbedPastLink: climbed, hops: hops}, nil
}

// components splits a link text into its components, without the empty
// ones that "//" and a leading or trailing "/" make.
func components(p string) []string {
	return slices.DeleteFunc(strings.Split(p, "/"), func(s string) bool { return s == "" })
}

// pathOf returns the path of directory d from the root ("" for the root).
func (r *linkResolver) pathOf(d *bnode) string {
	return strings.Join(r.names(r.chain(d)), "/")
}

// chain returns the directories from the root down to d.
func (r *linkResolver) chain(d *bnode) []*bnode {
	var c []*bnode
	for {
		c = append(c, d)
		p, ok := r.up[d]
		if !ok {
			break
		}
		d = p.dir
	}
	slices.Reverse(c)
	return c
}

// names returns the names of a chain's directories below the root.
func (r *linkResolver) names(chain []*bnode) []string {
	out := make([]string, 0, len(chain))
	for _, d := range chain[1:] {
		out = append(out, r.up[d].name)
	}
	return out
}

// relative returns the text, relative to directory from, that names
// where a walk ended: up through from's ancestors, down through real
// directories, then the last component (and, past a dead end, the names
// the kernel never reaches).
func (r *linkResolver) relative(from *bnode, end walkEnd) string {
	a, b := r.chain(from), r.chain(end.dir)
	k := 0
	for k < len(a) && k < len(b) && a[k] == b[k] {
		k++
	}
	var parts []string
	for range len(a) - k {
		parts = append(parts, "..")
	}
	parts = append(parts, r.names(b)[k-1:]...)
	if end.name != "" {
		parts = append(parts, end.name)
	}
	if end.stopped {
		n := len(parts)
		for _, c := range end.rest {
			if c != "." && c != ".." {
				parts = append(parts, c)
			}
		}
		if len(parts) == n && len(end.rest) > 0 {
			parts = append(parts, ".") // still needs name to be a directory
		}
	}
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

// lexicallyInside reports whether target, joined to directory dir (a
// path from the image root) and cleaned, stays inside the image. Cleaning
// keeps a leading "..", so no prefix of the walk climbed above the root
// either.
func lexicallyInside(dir, target string) bool {
	p := path.Join(dir, target)
	return p != ".." && !strings.HasPrefix(p, "../")
}

// applyLinks carries out the decisions: hidden links leave the tree,
// rewritten ones take their new text. A symlink inode that several hard
// links share keeps one text; a name whose text differs gets a copy.
func applyLinks(decisions []linkDecision) {
	owner := map[*Inode]string{}
	for i := range decisions {
		l := &decisions[i]
		if l.hide != nil {
			delete(l.dir.children, l.name)
			continue
		}
		ino := l.node.Ino
		t, taken := owner[ino]
		switch {
		case !taken:
			owner[ino] = l.target
		case t != l.target:
			cp := *ino
			l.node.Ino = &cp
		}
		l.node.Ino.Linkname = l.target
		l.node.Ino.Size = int64(len(l.target))
	}
}
