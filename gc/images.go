package gc

import (
	"slices"
	"sort"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/index"
)

// Node is one manifest of a repository as lifecycle planning sees it.
type Node struct {
	Digest digest.Digest
	// Subject is the OCI 1.1 subject, "" if none.
	Subject digest.Digest
	// Children are the child manifests of an index.
	Children []digest.Digest
	// Tags are the tags that point to the manifest.
	Tags []string
	// PushedAt and LastPulledAt are the manifest record's times.
	PushedAt, LastPulledAt time.Time
	// Status is the manifest's storage status; LastArchivedAt and
	// LastActivatedAt are its archive times.
	Status                          index.ImageStatus
	LastArchivedAt, LastActivatedAt time.Time
}

// Graph is the manifests of one repository.
type Graph struct {
	Repo  string
	Nodes map[digest.Digest]*Node
}

// LoadGraph reads every manifest of repo from the index, with its tags.
func LoadGraph(db *index.DB, repo string) (*Graph, error) {
	g := &Graph{Repo: repo, Nodes: map[digest.Digest]*Node{}}
	err := db.ListManifests(repo, func(m *index.Manifest) error {
		g.Nodes[m.Digest] = &Node{Digest: m.Digest, Subject: m.Subject, Children: m.Children, PushedAt: m.PushedAt, LastPulledAt: m.LastPulledAt,
			Status: m.Status, LastArchivedAt: m.LastArchivedAt, LastActivatedAt: m.LastActivatedAt}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, n := range g.Nodes {
		if n.Tags, err = db.TagsOf(repo, n.Digest); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Images returns the images of the graph: the manifests that are neither a
// child of an index in the repository nor a referrer whose subject is in
// the repository (referrers go with their subject, children with their
// index). Sorted by digest.
func (g *Graph) Images() []Image {
	child := map[digest.Digest]bool{}
	for _, n := range g.Nodes {
		for _, c := range n.Children {
			if c != n.Digest {
				child[c] = true
			}
		}
	}
	var out []Image
	for _, n := range g.Nodes {
		if child[n.Digest] {
			continue
		}
		if n.Subject != "" && n.Subject != n.Digest && g.Nodes[n.Subject] != nil {
			continue
		}
		out = append(out, Image{Digest: n.Digest, Tags: slices.Clone(n.Tags), PushedAt: n.PushedAt, LastPulledAt: n.LastPulledAt,
			Status: n.Status, LastArchivedAt: n.LastArchivedAt, LastActivatedAt: n.LastActivatedAt})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out
}

// Closure returns every manifest that goes when the images expired go, in
// an order that deletes referrers and parents before what they point to:
// the expired images themselves, the referrers of anything deleted
// (recursively), and the children of a deleted index that are untagged and
// that no manifest kept in the repository lists as a child (multi-platform
// safety: a child shared with a surviving index, or tagged on its own,
// stays).
func (g *Graph) Closure(expired []digest.Digest) []digest.Digest {
	return g.closure(expired, nil)
}

// ArchiveClosure returns every manifest that is archived when the images
// are: the images, the referrers of anything archived (recursively), and
// the untagged children of an archived index that no active manifest of
// the repository lists as a child ("If an image is referenced by a
// manifest list, it cannot be expired or archived without the manifest
// list being deleted or archived first"). Manifests archived already are
// left out (and, as parents, count as archived).
func (g *Graph) ArchiveClosure(images []digest.Digest) []digest.Digest {
	return g.closure(images, func(n *Node) bool { return n.Status == index.StatusArchived })
}

// RestoreClosure returns every manifest that is restored when the images
// are, so that they pull whole: the images, and (recursively) the
// children and referrers of anything restored that are not active.
func (g *Graph) RestoreClosure(images []digest.Digest) []digest.Digest {
	referrers := g.referrers()
	seen := map[digest.Digest]bool{}
	var order []digest.Digest
	var add func(d digest.Digest, root bool)
	add = func(d digest.Digest, root bool) {
		n := g.Nodes[d]
		if n == nil || seen[d] || (!root && n.Status == index.StatusActive) {
			return
		}
		seen[d] = true
		order = append(order, d)
		for _, c := range n.Children {
			add(c, false)
		}
		for _, r := range referrers[d] {
			add(r, false)
		}
	}
	for _, d := range images {
		add(d, true)
	}
	return order
}

// ListedBy returns the manifests of the graph that list d as a child, in
// digest order.
func (g *Graph) ListedBy(d digest.Digest) []digest.Digest {
	var out []digest.Digest
	for _, n := range g.Nodes {
		if n.Digest != d && slices.Contains(n.Children, d) {
			out = append(out, n.Digest)
		}
	}
	slices.Sort(out)
	return out
}

// referrers maps each subject to its referrers, in digest order.
func (g *Graph) referrers() map[digest.Digest][]digest.Digest {
	referrers := map[digest.Digest][]digest.Digest{}
	for _, n := range g.Nodes {
		if n.Subject != "" {
			referrers[n.Subject] = append(referrers[n.Subject], n.Digest)
		}
	}
	for _, l := range referrers {
		slices.Sort(l)
	}
	return referrers
}

// closure is Closure, with done reporting the manifests that are gone
// already: they are not listed, and as parents they count as gone.
func (g *Graph) closure(expired []digest.Digest, done func(*Node) bool) []digest.Digest {
	parents := map[digest.Digest][]digest.Digest{}
	referrers := map[digest.Digest][]digest.Digest{}
	for _, n := range g.Nodes {
		for _, c := range n.Children {
			parents[c] = append(parents[c], n.Digest)
		}
		if n.Subject != "" {
			referrers[n.Subject] = append(referrers[n.Subject], n.Digest)
		}
	}
	for _, l := range parents {
		slices.Sort(l)
	}
	for _, l := range referrers {
		slices.Sort(l)
	}
	gone := map[digest.Digest]bool{}
	if done != nil {
		for d, n := range g.Nodes {
			if done(n) {
				gone[d] = true
			}
		}
	}
	var order, queue []digest.Digest
	add := func(d digest.Digest) {
		if gone[d] || g.Nodes[d] == nil {
			return
		}
		gone[d] = true
		order = append(order, d)
		queue = append(queue, d)
	}
	for _, d := range expired {
		add(d)
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, r := range referrers[d] {
			add(r)
		}
		for _, c := range g.Nodes[d].Children {
			cn := g.Nodes[c]
			if cn == nil || gone[c] || len(cn.Tags) > 0 {
				continue
			}
			if !slices.ContainsFunc(parents[c], func(p digest.Digest) bool { return !gone[p] }) {
				add(c)
			}
		}
	}
	return order
}
