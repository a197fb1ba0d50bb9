package osv

import (
	"regexp"
	"strings"
)

// PackageKey names a package as advisories and inventories both reduce
// to: the database is indexed by it and an inventory looks it up.
type PackageKey struct {
	// Ecosystem is the ecosystem with the release that matters to
	// matching ("Debian:12", "Ubuntu:22.04", "Red Hat:9", "PyPI").
	Ecosystem string
	// Name is the package name, normalized where the ecosystem says names
	// are equivalent (PyPI).
	Name string
}

// String returns "ecosystem/name".
func (k PackageKey) String() string { return k.Ecosystem + "/" + k.Name }

// Key returns the key of a package of ecosystem named name.
func Key(ecosystem, name string) PackageKey {
	return PackageKey{Ecosystem: NormalizeEcosystem(ecosystem), Name: NormalizeName(ecosystem, name)}
}

// Keys returns the distinct keys a record is indexed under.
func (r *Record) Keys() []PackageKey {
	var out []PackageKey
	seen := map[PackageKey]bool{}
	for _, a := range r.Affected {
		if a.Ecosystem == "" || a.Name == "" {
			continue
		}
		k := Key(a.Ecosystem, a.Name)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

var redHatEnterprise = regexp.MustCompile(`^Red Hat:enterprise_linux:([0-9]+)(::.*)?$`)

// NormalizeEcosystem drops what only labels an ecosystem's release:
// Ubuntu's ":LTS" ("Ubuntu:22.04:LTS" is "Ubuntu:22.04") and the
// repository of a Red Hat Enterprise Linux release
// ("Red Hat:enterprise_linux:9::appstream" is "Red Hat:9").
func NormalizeEcosystem(e string) string {
	if strings.HasPrefix(e, "Ubuntu:") {
		return strings.TrimSuffix(e, ":LTS")
	}
	if strings.HasPrefix(e, "Red Hat:") {
		if m := redHatEnterprise.FindStringSubmatch(e); m != nil {
			return "Red Hat:" + m[1]
		}
	}
	return e
}

var pep503 = regexp.MustCompile(`[-_.]+`)

// NormalizeName returns name as the ecosystem compares names: PyPI names
// are case-insensitive and treat runs of "-", "_" and "." alike (PEP 503);
// every other ecosystem compares names exactly.
func NormalizeName(ecosystem, name string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	if base == "PyPI" {
		return pep503.ReplaceAllString(strings.ToLower(name), "-")
	}
	return name
}
