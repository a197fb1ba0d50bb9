package pullthrough

// The upstream registries: an authenticated client per upstream
// repository (go-containerregistry's transport does the registry's
// handshake: basic authentication, or the token flow of Docker Hub, GHCR,
// ECR Public, quay.io...), with the rule's credentials (read from the
// stored secret its credentialArn names) or anonymously; the manifest and
// blob requests; and the validation of a rule (ValidatePullThroughCacheRule).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthstore/berth/engine"
)

// errNotFound: the upstream does not have what was asked (or, pulled
// anonymously, refuses it, as registries do for a repository that does
// not exist): the pull is answered as the store answers it.
var errNotFound = errors.New("pullthrough: not found upstream")

// maxUpstreamClients bounds the authenticated clients kept.
const maxUpstreamClients = 1024

// manifestAccept are the manifest types asked of an upstream: those the
// store accepts.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// upstream is an authenticated client of one upstream repository.
type upstream struct {
	// base is the registry's URL: https://host, or http://host for a
	// plain-HTTP rule (the transport settles the scheme the registry
	// answered on).
	base   string
	repo   string
	client *http.Client
	// authed is true when the rule's credentials authenticate the
	// requests: a refusal upstream is then a failure of those
	// credentials, not a "not found".
	authed bool
	// reg is the upstream registry; key is the client's entry in the
	// upstream cache.
	reg name.Registry
	key string
}

// upstreamCache keeps the authenticated upstream clients, by rule,
// upstream repository and credential (and the secret's version, so that
// a secret replaced is used at once).
type upstreamCache struct {
	mu      sync.Mutex
	entries map[string]*upstreamEntry
}

type upstreamEntry struct {
	once sync.Once
	up   *upstream
	err  error
}

// upstreamFor returns the client of the upstream repository that local
// repository repo mirrors under rule, making it (the registry's
// handshake, with the rule's credentials) on first use. ctx bounds the
// handshake.
func (c *Cache) upstreamFor(ctx context.Context, rule *engine.PullThroughCacheRule, repo string) (*upstream, error) {
	host, plain, err := engine.ParseUpstreamURL(rule.UpstreamRegistryURL)
	if err != nil {
		return nil, err
	}
	upRepo := rule.UpstreamRepository(repo)
	version := ""
	if rule.CredentialARN != "" {
		name, err := c.store.SecretNameFromARN(rule.CredentialARN)
		if err != nil {
			return nil, fmt.Errorf("%w: credentialArn: %v", ErrUpstreamAuth, err)
		}
		info, err := c.store.Secret(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%w: the secret %s: %v", ErrUpstreamAuth, name, err)
		}
		version = info.UpdatedAt.String()
	}
	key := strings.Join([]string{rule.UpstreamRegistryURL, upRepo, rule.CredentialARN, version}, "\x00")
	c.upstreams.mu.Lock()
	if c.upstreams.entries == nil || len(c.upstreams.entries) >= maxUpstreamClients {
		c.upstreams.entries = map[string]*upstreamEntry{}
	}
	e := c.upstreams.entries[key]
	if e == nil {
		e = &upstreamEntry{}
		c.upstreams.entries[key] = e
	}
	c.upstreams.mu.Unlock()
	e.once.Do(func() {
		e.up, e.err = c.newUpstream(ctx, rule, host, plain, upRepo)
		if e.up != nil {
			e.up.key = key
		}
	})
	if e.err != nil {
		c.dropUpstream(key, e) // the next pull tries again
		return nil, e.err
	}
	return e.up, nil
}

// dropUpstream forgets the client entry e under key.
func (c *Cache) dropUpstream(key string, e *upstreamEntry) {
	c.upstreams.mu.Lock()
	if cur := c.upstreams.entries[key]; cur != nil && (e == nil || cur == e) {
		delete(c.upstreams.entries, key)
	}
	c.upstreams.mu.Unlock()
}

// withUpstream calls fn with the client of repo's upstream under rule.
// When the upstream refuses the client's credentials, the client and the
// registry's kept ping answer are forgotten and fn is called once more
// with a client of a new handshake: the registry may have changed how it
// authenticates since the client was made (a client is kept for as long
// as its rule and secret stay the same). A refusal of that one too is
// the pull's failure.
func (c *Cache) withUpstream(ctx context.Context, rule *engine.PullThroughCacheRule, repo string, fn func(*upstream) error) error {
	up, err := c.upstreamFor(ctx, rule, repo)
	if err != nil {
		return err
	}
	err = fn(up)
	if !errors.Is(err, ErrUpstreamAuth) {
		return err
	}
	c.forgetChallenge(up.reg)
	c.dropUpstream(up.key, nil)
	if up, err = c.upstreamFor(ctx, rule, repo); err != nil {
		return err
	}
	return fn(up)
}

// newUpstream makes the client of upRepo at host: the registry's
// handshake (its ping answer, kept from an earlier one where there is
// one, and a token for upRepo's pull scope where the registry hands out
// tokens) with the rule's credentials or anonymously.
func (c *Cache) newUpstream(ctx context.Context, rule *engine.PullThroughCacheRule, host string, plain bool, upRepo string) (*upstream, error) {
	reg, err := upstreamRegistry(host, plain)
	if err != nil {
		return nil, fmt.Errorf("%w: upstream %s: %v", ErrUpstream, host, err)
	}
	auth := authn.Anonymous
	creds, authed, err := c.store.CacheRuleCredentials(ctx, rule)
	if err != nil {
		// Never the value: the store's errors name the secret only.
		return nil, fmt.Errorf("%w: %v", ErrUpstreamAuth, err)
	}
	if authed {
		auth = authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.AccessToken})
	}
	scopes := []string{reg.Repo(upRepo).Scope(transport.PullScope)}
	rt, scheme, kept, err := c.upstreamTransport(ctx, reg, auth, scopes, true)
	if err != nil && kept {
		// The kept answer may be stale (a new token realm, say): ask again.
		c.forgetChallenge(reg)
		rt, scheme, kept, err = c.upstreamTransport(ctx, reg, auth, scopes, false)
	}
	if err != nil {
		var te *transport.Error
		if authed && errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return nil, fmt.Errorf("%w: %s", ErrUpstreamAuth, host)
		}
		return nil, upstreamFailure(host, err)
	}
	return &upstream{base: scheme + "://" + host, repo: upRepo, client: &http.Client{Transport: rt}, authed: authed, reg: reg}, nil
}

// upstreamTransport is what NewWithContext of go-containerregistry's
// transport makes, on reg's ping answer (kept, when reuse is set: see
// handshake.go): the requests authenticated as the registry asked
// (nothing, Basic, or a Bearer token for scopes), and the scheme the
// registry answered on.
func (c *Cache) upstreamTransport(ctx context.Context, reg name.Registry, auth authn.Authenticator, scopes []string, reuse bool) (rt http.RoundTripper, scheme string, kept bool, err error) {
	ch, kept, err := c.challenge(ctx, reg, reuse)
	if err != nil {
		return nil, "", false, err
	}
	scheme = "https"
	if ch.Insecure {
		scheme = "http"
	}
	inner := transport.NewUserAgent(c.transport, "")
	tok := &transport.Token{}
	if strings.EqualFold(ch.Scheme, "bearer") {
		if tok, err = transport.Exchange(ctx, reg, auth, inner, scopes, ch); err != nil {
			return nil, "", kept, err
		}
	}
	rt, err = transport.FromToken(reg, auth, inner, ch, tok)
	return rt, scheme, kept, err
}

// get sends a GET of path under the repository (manifests/<ref>,
// blobs/<digest>) and returns the response of status 200; its errors
// are errNotFound, ErrUpstreamAuth or ErrUpstream.
func (u *upstream) get(ctx context.Context, path, accept string) (*http.Response, error) {
	url := u.base + "/v2/" + u.repo + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, upstreamFailure(url, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, upstreamFailure(url, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, errNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		if u.authed {
			return nil, fmt.Errorf("%w: %s answered %s", ErrUpstreamAuth, url, resp.Status)
		}
		return nil, errNotFound // anonymous: a private or absent repository
	}
	return nil, upstreamFailure(url, fmt.Errorf("answered %s", resp.Status))
}

// upstreamManifest is a manifest fetched from upstream and checked: its
// digest computed from its bytes (and equal to the one asked for), its
// references parsed as the store will parse them.
type upstreamManifest struct {
	MediaType string
	Payload   []byte
	Digest    digest.Digest
	Refs      engine.ManifestReferences
}

// fetchManifest fetches ref (a tag or digest) of repo's upstream, shared
// by the pulls that ask for it at the same time (the fetch has no side
// effect: each caller stores with its own authority).
func (c *Cache) fetchManifest(ctx context.Context, rule *engine.PullThroughCacheRule, repo, ref string) (*upstreamManifest, error) {
	key := rule.UpstreamRegistryURL + "\x00" + rule.CredentialARN + "\x00" + rule.UpstreamRepository(repo) + "\x00" + ref
	v, err, _ := c.manifests.Do(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxFetch)
		defer cancel()
		var m *upstreamManifest
		err := c.withUpstream(fctx, rule, repo, func(up *upstream) (err error) {
			m, err = up.manifest(fctx, c.store, ref, c.maxMan)
			return err
		})
		return m, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*upstreamManifest), nil
}

// manifest fetches ref from the upstream repository and checks it.
func (u *upstream) manifest(ctx context.Context, store Store, ref string, limit int64) (*upstreamManifest, error) {
	resp, err := u.get(ctx, "manifests/"+ref, manifestAccept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	what := u.base + "/" + u.repo + ":" + ref
	payload, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, upstreamFailure(what, err)
	}
	if int64(len(payload)) > limit {
		return nil, upstreamFailure(what, fmt.Errorf("a manifest over %d bytes", limit))
	}
	d := digest.SHA256.FromBytes(payload)
	if want, err := digest.Parse(ref); err == nil {
		if !want.Algorithm().Available() {
			return nil, upstreamFailure(what, fmt.Errorf("digest algorithm %s", want.Algorithm()))
		}
		if d = want.Algorithm().FromBytes(payload); d != want {
			return nil, upstreamFailure(what, fmt.Errorf("the manifest's bytes are %s, not %s", d, want))
		}
	}
	// A digest the upstream announces (Docker-Content-Digest) must be
	// the bytes' own: a manifest altered on the way (by tag, where no
	// digest was asked for) is refused, not answered and cached.
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if said, err := digest.Parse(h); err == nil && said.Algorithm().Available() {
			if got := said.Algorithm().FromBytes(payload); got != said {
				return nil, upstreamFailure(what, fmt.Errorf("the manifest's bytes are %s, the upstream announced %s", got, said))
			}
		}
	}
	mt := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	if mt == "application/octet-stream" || mt == "text/plain" {
		mt = "" // no type said: the payload's own
	}
	refs, err := store.ParseManifestReferences(mt, payload)
	if err != nil {
		return nil, upstreamFailure(what, fmt.Errorf("a manifest the store does not accept: %v", err))
	}
	return &upstreamManifest{MediaType: refs.MediaType, Payload: payload, Digest: d, Refs: refs}, nil
}

// ValidateUpstream answers whether rule's upstream can be reached and
// authenticates with the rule's credentials (ECR's
// ValidatePullThroughCacheRule): "" when it does, else why not, in
// words that never hold the secret's value.
func (c *Cache) ValidateUpstream(ctx context.Context, rule *engine.PullThroughCacheRule) string {
	host, plain, err := engine.ParseUpstreamURL(rule.UpstreamRegistryURL)
	if err != nil {
		return err.Error()
	}
	reg, err := upstreamRegistry(host, plain)
	if err != nil {
		return fmt.Sprintf("upstream registry %s: %v", host, err)
	}
	auth := authn.Anonymous
	creds, authed, err := c.store.CacheRuleCredentials(ctx, rule)
	if err != nil {
		return fmt.Sprintf("the credentials of the rule cannot be read from its secret: %v", strings.ReplaceAll(err.Error(), "engine: ", ""))
	}
	if authed {
		auth = authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.AccessToken})
	}
	// A new handshake (kept for the rule's pulls), not a kept one: the
	// question is whether the upstream answers now.
	rt, scheme, _, err := c.upstreamTransport(ctx, reg, auth, nil, false)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return fmt.Sprintf("The authentication to the upstream registry %s failed (%d): verify the credentials of the rule's secret", host, te.StatusCode)
		}
		return fmt.Sprintf("the upstream registry %s cannot be reached: %v", host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v2/", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Sprintf("the upstream registry %s cannot be reached: %v", host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return ""
	case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) && authed:
		return fmt.Sprintf("The authentication to the upstream registry %s failed (%s): verify the credentials of the rule's secret", host, resp.Status)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Sprintf("The upstream registry %s requires authentication (%s): set a credentialArn on the rule (UpdatePullThroughCacheRule)", host, resp.Status)
	}
	return fmt.Sprintf("the upstream registry %s answered %s", host, resp.Status)
}
