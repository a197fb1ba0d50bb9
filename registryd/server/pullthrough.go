package server

// The pull-through cache: a pull from a repository under a pull-through
// cache rule that misses locally (or whose tag is due for a check) is
// fetched from the upstream registry, stored, and served from the store
// from then on. docs/pull-through-cache.md.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"

	"github.com/berthstore/berth/engine"
)

// DefaultPullThroughRefresh is how often a cached tag is checked against
// its upstream (ECR: at most once every 24 hours).
const DefaultPullThroughRefresh = 24 * time.Hour

// maxCheckedTags bounds the memory of when tags were last checked.
const maxCheckedTags = 100_000

// maxFetch bounds one upstream fetch. A fetch is shared by the pulls that
// wait for it and goes on when the pull that started it goes away, so
// that the cache is filled either way.
const maxFetch = 30 * time.Minute

// fetchContext is the context of a shared fetch started by a request
// with context ctx: its values, not its cancellation.
func fetchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), maxFetch)
}

// errUpstream reports an upstream registry that could not be reached or
// answered an error other than "not found".
var errUpstream = errors.New("registryd: upstream registry unavailable")

// cacheStore is what the pull-through cache needs; *engine.Engine has it.
type cacheStore interface {
	MatchPullThroughCacheRule(ctx context.Context, repo string) (*engine.PullThroughCacheRule, bool, error)
	EnsureCacheRepository(ctx context.Context, repo string) error
}

var _ cacheStore = (*engine.Engine)(nil)

// pullThrough is the server's pull-through cache state.
type pullThrough struct {
	fetches singleflight.Group
	mu      sync.Mutex
	checked map[string]time.Time // repo + ":" + tag: last upstream check
}

// upstreamRef is the upstream reference that ref (a tag or digest) of
// local repository repo mirrors under rule.
func upstreamRef(rule *engine.PullThroughCacheRule, repo, ref string) (name.Reference, error) {
	host, plain, err := engine.ParseUpstreamURL(rule.UpstreamRegistryURL)
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if plain {
		opts = append(opts, name.Insecure)
	}
	sep := ":"
	if strings.Contains(ref, ":") {
		sep = "@"
	}
	return name.ParseReference(host+"/"+rule.UpstreamRepository(repo)+sep+ref, opts...)
}

// cacheRule returns the rule repo falls under, if any.
func (s *Server) cacheRule(ctx context.Context, repo string) (*engine.PullThroughCacheRule, cacheStore, bool, error) {
	cs, ok := s.store.(cacheStore)
	if !ok {
		return nil, nil, false, nil
	}
	rule, ok, err := cs.MatchPullThroughCacheRule(ctx, repo)
	return rule, cs, ok, err
}

// pullThroughManifest makes sure that a pull of ref from repo can be
// served when repo is a pull-through cache: it fetches the manifest (and
// everything it references) from upstream when the store lacks it, or
// when ref is a tag not checked upstream within the refresh interval. An
// upstream that cannot be reached leaves a stored copy to be served; with
// none, the pull fails with a retryable error.
func (s *Server) pullThroughManifest(ctx context.Context, repo, ref string) error {
	rule, cs, ok, err := s.cacheRule(ctx, repo)
	if err != nil || !ok {
		return err
	}
	isTag := !strings.Contains(ref, ":")
	local, lerr := s.store.StatManifest(ctx, repo, ref)
	if lerr == nil && (!isTag || !s.tagDue(repo, ref)) {
		return nil
	}
	_, err, _ = s.pull.fetches.Do("m\x00"+repo+"\x00"+ref, func() (any, error) {
		fctx, cancel := fetchContext(ctx)
		defer cancel()
		return nil, s.fetchManifest(fctx, cs, rule, repo, ref, local, lerr == nil)
	})
	if err != nil && lerr == nil {
		s.log.Warn("pull-through: upstream check failed; serving the cached copy", "repository", repo, "reference", ref, "err", err)
		return nil
	}
	return err
}

// fetchManifest copies ref from upstream into repo.
func (s *Server) fetchManifest(ctx context.Context, cs cacheStore, rule *engine.PullThroughCacheRule, repo, ref string, local engine.Descriptor, haveLocal bool) error {
	up, err := upstreamRef(rule, repo, ref)
	if err != nil {
		return err
	}
	opts := s.upstreamOptions(ctx)
	desc, err := remote.Get(up, opts...)
	if err != nil {
		return upstreamErr(up, err)
	}
	isTag := !strings.Contains(ref, ":")
	if haveLocal && local.Digest.String() == desc.Digest.String() {
		s.markChecked(repo, ref, isTag)
		return nil
	}
	if err := cs.EnsureCacheRepository(ctx, repo); err != nil {
		return err
	}
	if desc.MediaType.IsIndex() {
		if err := s.copyIndex(ctx, repo, up, opts); err != nil {
			return err
		}
	} else if err := s.copyImageContent(ctx, repo, up, desc); err != nil {
		return err
	}
	if _, err := s.store.PutManifest(ctx, repo, ref, string(desc.MediaType), desc.Manifest); err != nil {
		return err
	}
	s.markChecked(repo, ref, isTag)
	s.log.Info("pull-through: cached", "repository", repo, "reference", ref, "digest", desc.Digest.String(), "upstream", up.String())
	return nil
}

// copyIndex copies the children of the index up names (recursively) into
// repo, each child manifest by digest.
func (s *Server) copyIndex(ctx context.Context, repo string, up name.Reference, opts []remote.Option) error {
	idx, err := remote.Index(up, opts...)
	if err != nil {
		return upstreamErr(up, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return upstreamErr(up, err)
	}
	for _, child := range im.Manifests {
		cref := up.Context().Digest(child.Digest.String())
		if _, err := s.store.StatManifest(ctx, repo, child.Digest.String()); err == nil {
			continue
		}
		cdesc, err := remote.Get(cref, opts...)
		if err != nil {
			return upstreamErr(cref, err)
		}
		if cdesc.MediaType.IsIndex() {
			err = s.copyIndex(ctx, repo, cref, opts)
		} else {
			err = s.copyImageContent(ctx, repo, cref, cdesc)
		}
		if err != nil {
			return err
		}
		if _, err := s.store.PutManifest(ctx, repo, child.Digest.String(), string(cdesc.MediaType), cdesc.Manifest); err != nil {
			return err
		}
	}
	return nil
}

// copyImageContent copies the config and layers of an image manifest
// into repo, skipping those it holds.
func (s *Server) copyImageContent(ctx context.Context, repo string, up name.Reference, desc *remote.Descriptor) error {
	img, err := desc.Image()
	if err != nil {
		return upstreamErr(up, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return upstreamErr(up, err)
	}
	if !s.haveBlob(ctx, repo, m.Config.Digest) {
		cfg, err := img.RawConfigFile()
		if err != nil {
			return upstreamErr(up, err)
		}
		if _, err := s.store.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.Digest(m.Config.Digest.String())); err != nil {
			return err
		}
	}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 || s.haveBlob(ctx, repo, l.Digest) {
			continue // foreign layers stay where their URLs say
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return upstreamErr(up, err)
		}
		if err := s.storeLayer(ctx, repo, up, layer); err != nil {
			return err
		}
	}
	return nil
}

// storeLayer streams an upstream layer into repo.
func (s *Server) storeLayer(ctx context.Context, repo string, up name.Reference, layer v1.Layer) error {
	d, err := layer.Digest()
	if err != nil {
		return upstreamErr(up, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return upstreamErr(up, err)
	}
	defer rc.Close()
	if _, err := s.store.PutBlob(ctx, repo, rc, digest.Digest(d.String())); err != nil {
		if errors.Is(err, engine.ErrDigestInvalid) || errors.Is(err, engine.ErrBlobUploadInvalid) {
			return fmt.Errorf("%w: %s: layer %s: %v", errUpstream, up.Context(), d, err)
		}
		return err
	}
	return nil
}

// pullThroughBlob fetches blob d of repo from upstream when repo is a
// pull-through cache that lacks it.
func (s *Server) pullThroughBlob(ctx context.Context, repo string, d digest.Digest) error {
	rule, cs, ok, err := s.cacheRule(ctx, repo)
	if err != nil || !ok {
		return err
	}
	if _, err := s.store.StatBlob(ctx, repo, d); err == nil {
		return nil
	}
	_, err, _ = s.pull.fetches.Do("b\x00"+repo+"\x00"+string(d), func() (any, error) {
		ctx, cancel := fetchContext(ctx)
		defer cancel()
		up, err := upstreamRef(rule, repo, string(d))
		if err != nil {
			return nil, err
		}
		dref, ok := up.(name.Digest)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not a digest reference", errUpstream, up)
		}
		layer, err := remote.Layer(dref, s.upstreamOptions(ctx)...)
		if err != nil {
			return nil, upstreamErr(up, err)
		}
		if err := cs.EnsureCacheRepository(ctx, repo); err != nil {
			return nil, err
		}
		return nil, s.storeLayer(ctx, repo, up, layer)
	})
	return err
}

// haveBlob reports whether repo holds blob h.
func (s *Server) haveBlob(ctx context.Context, repo string, h v1.Hash) bool {
	_, err := s.store.StatBlob(ctx, repo, digest.Digest(h.String()))
	return err == nil
}

// upstreamOptions are the options of every upstream request: the
// request's context, anonymous access (go-containerregistry follows the
// token flow of registries such as Docker Hub), and the server's
// transport.
func (s *Server) upstreamOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(s.upstreamTransport)}
}

// upstreamErr classifies an upstream failure: "not found" upstream is the
// pull's own not-found (the local lookup answers it); anything else is
// errUpstream, retryable.
func upstreamErr(up name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusUnauthorized) {
		return nil
	}
	return fmt.Errorf("%w: %s: %v", errUpstream, up, err)
}

// tagDue reports whether tag of repo is due for an upstream check.
func (s *Server) tagDue(repo, tag string) bool {
	s.pull.mu.Lock()
	defer s.pull.mu.Unlock()
	at, ok := s.pull.checked[repo+":"+tag]
	return !ok || time.Since(at) >= s.pullThroughRefresh()
}

// markChecked records an upstream check of a tag.
func (s *Server) markChecked(repo, ref string, isTag bool) {
	if !isTag {
		return
	}
	s.pull.mu.Lock()
	defer s.pull.mu.Unlock()
	if s.pull.checked == nil || len(s.pull.checked) >= maxCheckedTags {
		s.pull.checked = map[string]time.Time{}
	}
	s.pull.checked[repo+":"+ref] = time.Now()
}

func (s *Server) pullThroughRefresh() time.Duration {
	if s.cfg.PullThroughRefresh != 0 {
		return s.cfg.PullThroughRefresh
	}
	return DefaultPullThroughRefresh
}

// newUpstreamTransport is the transport of upstream requests: the
// standard one with bounded connection set-up and header waits (a body
// streams as long as it flows).
func newUpstreamTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	t.TLSHandshakeTimeout = 30 * time.Second
	return t
}
