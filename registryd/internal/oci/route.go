package oci

import (
	"net/url"
	"strings"

	"github.com/berthstore/berth/engine"
)

// routeKind names an API endpoint. It is also the "route" label of the
// metrics.
type routeKind string

const (
	routeBase      routeKind = "base"
	routeCatalog   routeKind = "catalog"
	routeTags      routeKind = "tags"
	routeManifest  routeKind = "manifest"
	routeBlob      routeKind = "blob"
	routeUpload    routeKind = "upload"
	routeReferrers routeKind = "referrers"
	// routeUnknown is a path that is no endpoint (answered NOT_FOUND).
	routeUnknown routeKind = "unknown"
)

// route is a parsed request path.
type route struct {
	kind routeKind
	// name is the repository name.
	name string
	// ref is the manifest reference, blob or subject digest, or upload
	// session id ("" on POST .../blobs/uploads/).
	ref string
}

// validName reports whether name is a valid repository name
// (engine.ValidateRepositoryName).
func validName(name string) bool { return engine.ValidateRepositoryName(name) == nil }

// validTag reports whether tag is a valid tag (engine.ValidateTag).
func validTag(tag string) bool { return engine.ValidateTag(tag) == nil }

// parseRoute parses the escaped path of a request. Repository names
// contain '/', so the endpoint is found from the right: the last segment
// is the reference (digest, tag or upload id) and the segments before it
// name the endpoint. ok is false for a path that is no API endpoint; a
// route with an invalid name is returned with ok true so that the handler
// answers NAME_INVALID.
func parseRoute(escapedPath string) (route, bool) {
	switch escapedPath {
	case "/v2", "/v2/":
		return route{kind: routeBase}, true
	case "/v2/_catalog":
		return route{kind: routeCatalog}, true
	}
	rest, ok := strings.CutPrefix(escapedPath, "/v2/")
	if !ok || rest == "" {
		return route{}, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return route{}, false
	}
	head, last := rest[:i], rest[i+1:]
	var r route
	switch {
	case last == "list" && strings.HasSuffix(head, "/tags"):
		r = route{kind: routeTags, name: strings.TrimSuffix(head, "/tags")}
	case strings.HasSuffix(head, "/blobs/uploads"):
		r = route{kind: routeUpload, name: strings.TrimSuffix(head, "/blobs/uploads"), ref: last}
	case last == "uploads" && strings.HasSuffix(head, "/blobs"):
		// POST /v2/<name>/blobs/uploads without the trailing slash.
		r = route{kind: routeUpload, name: strings.TrimSuffix(head, "/blobs")}
	case strings.HasSuffix(head, "/manifests"):
		r = route{kind: routeManifest, name: strings.TrimSuffix(head, "/manifests"), ref: last}
	case strings.HasSuffix(head, "/blobs"):
		r = route{kind: routeBlob, name: strings.TrimSuffix(head, "/blobs"), ref: last}
	case strings.HasSuffix(head, "/referrers"):
		r = route{kind: routeReferrers, name: strings.TrimSuffix(head, "/referrers"), ref: last}
	default:
		return route{}, false
	}
	if r.name == "" || (r.kind != routeUpload && r.kind != routeTags && r.ref == "") {
		return route{}, false
	}
	name, err := url.PathUnescape(r.name)
	if err != nil {
		name = "\x00invalid"
	}
	ref, err := url.PathUnescape(r.ref)
	if err != nil || strings.ContainsRune(ref, '/') {
		return route{}, false
	}
	r.name, r.ref = name, ref
	return r, true
}
