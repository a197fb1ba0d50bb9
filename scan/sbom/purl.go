package sbom

import (
	"path"
	"slices"
	"strings"

	packageurl "github.com/package-url/packageurl-go"

	"github.com/berthstore/berth/scan"
)

// PackageURL returns the package URL (purl) of p, a package installed in
// an image of the operating system osys (nil when the image names none),
// as the purl specification's type definitions write it:
//
//   - deb, apk: the distribution as namespace ("debian", "ubuntu",
//     "alpine"); qualifiers arch, distro (ID-VERSION_ID, "debian-12") and
//     upstream, the source package (with its version when it differs,
//     "glibc@2.36-9"), which is what advisories of Debian, Ubuntu and
//     Alpine name;
//   - rpm: the distribution as namespace, the version without its epoch,
//     which is the epoch qualifier; arch, distro, upstream;
//   - golang: the module path (namespace and name), the version as Go
//     writes it ("v0.3.7"); the toolchain is pkg:golang/stdlib;
//   - pypi (name normalized: lower case, "-" for "_"), npm (a scope is the
//     namespace, "%40babel"), maven (groupId as namespace), cargo.
//
// A package of a kind scan does not name here is pkg:generic.
func PackageURL(p scan.Package, osys *scan.OS) string {
	var typ, ns, name, ver string
	q := map[string]string{}
	name, ver = p.Name, p.Version
	switch p.Kind {
	case scan.KindDeb, scan.KindAPK, scan.KindRPM:
		typ = map[scan.Kind]string{scan.KindDeb: packageurl.TypeDebian, scan.KindAPK: packageurl.TypeApk, scan.KindRPM: packageurl.TypeRPM}[p.Kind]
		ns = distroNamespace(p, osys)
		if osys != nil && osys.VersionID != "" && p.Ecosystem == osys.Ecosystem {
			q["distro"] = strings.ToLower(osys.ID) + "-" + osys.VersionID
		}
		if p.Arch != "" {
			q["arch"] = p.Arch
		}
		if p.Kind == scan.KindRPM {
			if epoch, rest, ok := strings.Cut(ver, ":"); ok {
				q["epoch"], ver = epoch, rest
			}
		}
		if p.SourceName != "" {
			q["upstream"] = p.SourceName
			if p.SourceVersion != "" && p.SourceVersion != p.Version {
				q["upstream"] += "@" + p.SourceVersion
			}
		}
	case scan.KindGoModule:
		typ = packageurl.TypeGolang
		ns, name = splitLast(p.Name, "/")
	case scan.KindGoStdlib:
		typ, name = packageurl.TypeGolang, "stdlib"
	case scan.KindPython:
		typ = packageurl.TypePyPi
	case scan.KindNPM:
		typ = packageurl.TypeNPM
		if strings.HasPrefix(p.Name, "@") {
			ns, name = splitLast(p.Name, "/")
		}
	case scan.KindMaven:
		typ = packageurl.TypeMaven
		ns, name = splitLast(p.Name, ":")
	case scan.KindCargo:
		typ = packageurl.TypeCargo
	default:
		typ = packageurl.TypeGeneric
	}
	u := packageurl.NewPackageURL(typ, ns, name, ver, packageurl.QualifiersFromMap(q), "")
	// Normalize applies the specification's rules per type (a PyPI name
	// lower-cased, "_" as "-"; a deb or apk name lower-cased). A Go module
	// path is left as Go spells it: the golang type's definition says to
	// lower-case it, which is an open question in the purl specification
	// (module paths are case-sensitive), and the Go proxy, the Go
	// vulnerability database and deps.dev know github.com/Azure/..., not
	// github.com/azure/....
	if typ != packageurl.TypeGolang {
		if n := *u; n.Normalize() == nil {
			u = &n
		}
	}
	return u.ToString()
}

// distroNamespace is the purl namespace of an OS package: the image's
// distribution when the package is of it (scan gives the packages of the
// image's distribution its ecosystem), else the distribution family its
// ecosystem names ("Debian" → "debian"), else none.
func distroNamespace(p scan.Package, osys *scan.OS) string {
	if osys != nil && osys.ID != "" && p.Ecosystem == osys.Ecosystem {
		return strings.ToLower(osys.ID)
	}
	eco, _, _ := strings.Cut(p.Ecosystem, ":")
	return strings.ReplaceAll(strings.ToLower(eco), " ", "-")
}

// ImageURL returns the package URL of the image: pkg:oci/NAME@DIGEST,
// NAME the last element of the repository, with the qualifiers
// repository_url (REGISTRY/REPOSITORY, when the registry is known) and
// tag (the first tag in order, when there is one).
func ImageURL(img Image) string {
	q := map[string]string{}
	if img.Registry != "" {
		q["repository_url"] = img.Registry + "/" + img.Repository
	}
	if len(img.Tags) > 0 {
		q["tag"] = slices.Min(img.Tags)
	}
	u := packageurl.NewPackageURL(packageurl.TypeOCI, "", strings.ToLower(path.Base(img.Repository)), img.Digest.String(), packageurl.QualifiersFromMap(q), "")
	return u.ToString()
}

// splitLast splits s at its last sep: ("golang.org/x", "text").
func splitLast(s, sep string) (string, string) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+len(sep):]
}
