package engine

// Upstream registries of pull-through cache rules: the names ECR gives
// the registries it supports (upstreamRegistry) with their URLs, and the
// credentials a rule authenticates with (a stored secret in the shape
// ECR expects of its Secrets Manager secrets).

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/berthstore/berth/engine/internal/errdefs"
	"github.com/berthstore/berth/engine/internal/manifest"
)

// UpstreamRegistry is an upstream registry ECR names (the
// UpstreamRegistry enumeration of its API).
type UpstreamRegistry struct {
	// Name is ECR's name for it: docker-hub, quay, ...
	Name string
	// DefaultURL is the registry's URL as ECR documents it ("" when each
	// user has their own host: ecr, azure-container-registry).
	DefaultURL string
	// hosts matches the hosts a rule naming it may have.
	hosts *regexp.Regexp
}

// UpstreamRegistries are the upstream registries ECR names, with the URL
// syntax its API reference gives for upstreamRegistryUrl.
var UpstreamRegistries = []UpstreamRegistry{
	{Name: "ecr", hosts: regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)},
	{Name: "ecr-public", DefaultURL: "public.ecr.aws"},
	{Name: "quay", DefaultURL: "quay.io"},
	{Name: "k8s", DefaultURL: "registry.k8s.io"},
	{Name: "docker-hub", DefaultURL: "registry-1.docker.io"},
	{Name: "github-container-registry", DefaultURL: "ghcr.io"},
	{Name: "azure-container-registry", hosts: regexp.MustCompile(`^[a-z0-9-]+\.azurecr\.io$`)},
	{Name: "gitlab-container-registry", DefaultURL: "registry.gitlab.com"},
	{Name: "chainguard", DefaultURL: "cgr.dev"},
}

// upstreamRegistryNamed returns the upstream registry of ECR's name.
func upstreamRegistryNamed(name string) (UpstreamRegistry, bool) {
	i := slices.IndexFunc(UpstreamRegistries, func(u UpstreamRegistry) bool { return u.Name == name })
	if i < 0 {
		return UpstreamRegistry{}, false
	}
	return UpstreamRegistries[i], true
}

// matches reports whether host (reached over HTTPS) is this registry.
func (u UpstreamRegistry) matches(host string) bool {
	if u.hosts != nil {
		return u.hosts.MatchString(host)
	}
	return host == u.DefaultURL
}

// upstreamRegistryOf is ECR's name of the registry at host, "" for a
// registry ECR does not name (or one reached over plain HTTP).
func upstreamRegistryOf(host string, plainHTTP bool) string {
	if plainHTTP {
		return ""
	}
	for _, u := range UpstreamRegistries {
		if u.matches(host) {
			return u.Name
		}
	}
	return ""
}

// resolveUpstreamRegistry fills in and checks a rule's upstream: the URL
// from the registry's name when only the name is given (and the registry
// has one URL), the name from the URL when only the URL is, and refuses
// a name ECR does not know or one the URL is not. Errors wrap
// ErrInvalidArgument.
func resolveUpstreamRegistry(r *PullThroughCacheRule) error {
	if r.UpstreamRegistry != "" {
		u, ok := upstreamRegistryNamed(r.UpstreamRegistry)
		if !ok {
			names := make([]string, len(UpstreamRegistries))
			for i, u := range UpstreamRegistries {
				names[i] = u.Name
			}
			return fmt.Errorf("%w: upstreamRegistry %q: want one of %s", ErrInvalidArgument, errdefs.Truncate(r.UpstreamRegistry), strings.Join(names, ", "))
		}
		if r.UpstreamRegistryURL == "" {
			if u.DefaultURL == "" {
				return fmt.Errorf("%w: upstreamRegistryUrl is required for upstreamRegistry %s (the registry's own host)", ErrInvalidArgument, u.Name)
			}
			r.UpstreamRegistryURL = u.DefaultURL
		}
		host, plain, err := ParseUpstreamURL(r.UpstreamRegistryURL)
		if err != nil {
			return err
		}
		if plain || !u.matches(host) {
			want := u.DefaultURL
			if want == "" {
				want = u.hosts.String()
			}
			return fmt.Errorf("%w: upstreamRegistryUrl %q is not the registry upstreamRegistry %s names (%s)", ErrInvalidArgument, errdefs.Truncate(r.UpstreamRegistryURL), u.Name, want)
		}
		return nil
	}
	if r.UpstreamRegistryURL == "" {
		return fmt.Errorf("%w: upstreamRegistryUrl is required", ErrInvalidArgument)
	}
	host, plain, err := ParseUpstreamURL(r.UpstreamRegistryURL)
	if err != nil {
		return err
	}
	r.UpstreamRegistry = upstreamRegistryOf(host, plain)
	return nil
}

// UpstreamCredentials are what a stored secret gives a pull-through
// cache rule: the upstream registry's user name and password (an access
// token), used with basic authentication or the registry's token flow.
type UpstreamCredentials struct {
	Username    string `json:"username"`
	AccessToken string `json:"accessToken"`
}

// String never shows the token.
func (c UpstreamCredentials) String() string { return "upstream credentials of " + c.Username }

// GoString never shows the token.
func (c UpstreamCredentials) GoString() string { return c.String() }

// ParseUpstreamCredentials reads a secret's value in the shape ECR
// expects of a pull-through cache secret, a JSON object
// {"username": ..., "accessToken": ...}. The error names what is wrong,
// never the value; it wraps ErrInvalidArgument.
func ParseUpstreamCredentials(value []byte) (UpstreamCredentials, error) {
	var c UpstreamCredentials
	if err := json.Unmarshal(value, &c); err != nil {
		return UpstreamCredentials{}, fmt.Errorf(`%w: the secret is not a JSON object {"username": ..., "accessToken": ...}`, ErrInvalidArgument)
	}
	if c.Username == "" || c.AccessToken == "" {
		return UpstreamCredentials{}, fmt.Errorf(`%w: the secret lacks "username" or "accessToken"`, ErrInvalidArgument)
	}
	return c, nil
}

// ManifestReferences are what a manifest makes its repository hold: the
// blobs (config, then layers, each once) and the child manifests of an
// index, as a pull-through cache fill copies them.
type ManifestReferences struct {
	// MediaType is the manifest's media type (the one given, or found in
	// the payload).
	MediaType string
	// Index is true for an image index or manifest list.
	Index bool
	// Blobs are the blobs the repository must hold: config, then layers.
	// Foreign (non-distributable) layers, with urls, are not among them.
	Blobs []Descriptor
	// Children are the manifests an index lists.
	Children []Descriptor
}

// ParseManifestReferences validates payload as a manifest the store
// accepts (of mediaType, "" to take it from the payload; at most
// Options.MaxManifestSize bytes) and returns what it references. Errors
// wrap ErrManifestInvalid, ErrUnsupported (schema 1) or ErrTooLarge.
func (e *Engine) ParseManifestReferences(mediaType string, payload []byte) (ManifestReferences, error) {
	pm, err := manifest.Parse(mediaType, payload, e.opts.MaxManifestSize)
	if err != nil {
		return ManifestReferences{}, err
	}
	out := ManifestReferences{MediaType: pm.MediaType, Index: pm.Index}
	for _, b := range pm.Blobs {
		out.Blobs = append(out.Blobs, Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size})
	}
	for _, c := range pm.Children {
		out.Children = append(out.Children, Descriptor{MediaType: c.MediaType, Digest: c.Digest, Size: c.Size})
	}
	return out, nil
}
