package sbom

import (
	"slices"
	"strings"

	"github.com/berthstore/berth/scan"
)

// component is one package of a document: the inventory's packages of
// one package URL (the same package recorded at several paths, an npm
// package installed and locked) merged.
type component struct {
	purl string
	pkg  scan.Package // the first of the merged packages in inventory order
	// locations are the paths the package was found at, sorted.
	locations []string
	// license is the first license recorded among the merged packages.
	license string
}

// isOS reports whether the component is a package of the operating
// system's package manager.
func (c *component) isOS() bool {
	switch c.pkg.Kind {
	case scan.KindDeb, scan.KindAPK, scan.KindRPM:
		return true
	}
	return false
}

// components merges the inventory's packages by package URL, in the
// order of their package URLs.
func components(inv *scan.Inventory) []*component {
	byURL := map[string]*component{}
	var out []*component
	for _, p := range inv.Packages {
		u := PackageURL(p, inv.OS)
		c := byURL[u]
		if c == nil {
			c = &component{purl: u, pkg: p}
			byURL[u] = c
			out = append(out, c)
		}
		if p.Location != "" && !slices.Contains(c.locations, p.Location) {
			c.locations = append(c.locations, p.Location)
		}
		if c.license == "" {
			c.license = strings.TrimSpace(p.License)
		}
	}
	for _, c := range out {
		slices.Sort(c.locations)
	}
	slices.SortFunc(out, func(a, b *component) int { return strings.Compare(a.purl, b.purl) })
	return out
}

// sourceInfo says where a package was found and what it was built from,
// in words.
func (c *component) sourceInfo() string {
	var parts []string
	if c.pkg.SourceName != "" {
		src := "built from source package " + c.pkg.SourceName
		if c.pkg.SourceVersion != "" {
			src += " " + c.pkg.SourceVersion
		}
		parts = append(parts, src)
	}
	if len(c.locations) > 0 {
		parts = append(parts, "recorded in "+strings.Join(c.locations, ", "))
	}
	return strings.Join(parts, "; ")
}
