package oci

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseRoute(t *testing.T) {
	tests := []struct {
		path string
		want route
		ok   bool
	}{
		{"/v2/", route{kind: routeBase}, true},
		{"/v2", route{kind: routeBase}, true},
		{"/v2/_catalog", route{kind: routeCatalog}, true},
		{"/v2/library/alpine/tags/list", route{kind: routeTags, name: "library/alpine"}, true},
		{"/v2/a/b/c/manifests/latest", route{kind: routeManifest, name: "a/b/c", ref: "latest"}, true},
		{"/v2/a/manifests/sha256:abc", route{kind: routeManifest, name: "a", ref: "sha256:abc"}, true},
		{"/v2/a/blobs/sha256:abc", route{kind: routeBlob, name: "a", ref: "sha256:abc"}, true},
		{"/v2/a/b/blobs/uploads/", route{kind: routeUpload, name: "a/b"}, true},
		{"/v2/a/b/blobs/uploads", route{kind: routeUpload, name: "a/b"}, true},
		{"/v2/a/b/blobs/uploads/xyz", route{kind: routeUpload, name: "a/b", ref: "xyz"}, true},
		{"/v2/a/referrers/sha256:abc", route{kind: routeReferrers, name: "a", ref: "sha256:abc"}, true},
		// Names that contain endpoint words are routed from the right.
		{"/v2/blobs/manifests/manifests/x", route{kind: routeManifest, name: "blobs/manifests", ref: "x"}, true},
		{"/v2/tags/list/tags/list", route{kind: routeTags, name: "tags/list"}, true},
		{"/v2/a/blobs/uploads/manifests/t", route{kind: routeManifest, name: "a/blobs/uploads", ref: "t"}, true},
		// Escaped parts are unescaped after splitting.
		{"/v2/a%2Fb/manifests/t", route{kind: routeManifest, name: "a/b", ref: "t"}, true},
		{"/v2/a/manifests/sha256%3Aabc", route{kind: routeManifest, name: "a", ref: "sha256:abc"}, true},
		// Not endpoints.
		{"/v2/a", route{}, false},
		{"/v2/a/manifests/", route{}, false},
		{"/v2/manifests/x", route{}, false},
		{"/v2/a/blobs/", route{}, false},
		{"/v2/a/unknown/x", route{}, false},
		{"/v3/a/manifests/x", route{}, false},
		{"/", route{}, false},
		{"/v2/a/manifests/a%2Fb", route{}, false},
		{"/v2/a/manifests/%zz", route{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := parseRoute(tt.path)
			assert.Equal(t, tt.ok, ok)
			if tt.ok {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alpine", true},
		{"team-a/app", true},
		{"a.b_c__d--e/f", true},
		{"..", false},
		{"a/../b", false},
		{"../etc/passwd", false},
		{"/abs", false},
		{"a//b", false},
		{"a/", false},
		{"UPPER", false},
		{"a\x00b", false},
		{"", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ok, validName(tt.name), tt.name)
	}
}
