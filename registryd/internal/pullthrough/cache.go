// Package pullthrough is registryd's pull-through cache: a pull from a
// repository under a pull-through cache rule that misses locally (or whose
// tag is due for a check) is fetched from the upstream registry, stored,
// and served from the store from then on. The OCI handlers call it before
// they serve a manifest or a blob. docs/pull-through-cache.md.
//
// A rule fills only repositories that a pull-through cache created (and
// names with no repository yet): the engine's MatchPullThroughCacheRule
// never matches a repository that was pushed to. A fill is the caller's:
// it needs ecr:BatchImportUpstreamImage on the repository, and
// ecr:CreateRepository (with kms:CreateGrant and kms:DescribeKey on its
// template's key) when it creates it; the pull itself was authorized
// (ecr:BatchGetImage, ecr:GetDownloadUrlForLayer) before.
package pullthrough

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/berthstore/berth/registryd/internal/authz"
)

// DefaultRefresh is how often a cached tag is checked against its
// upstream (ECR: at most once every 24 hours).
const DefaultRefresh = 24 * time.Hour

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

// ErrUpstream reports an upstream registry that could not be reached or
// answered an error other than "not found". A pull that fails with it may
// be retried.
var ErrUpstream = errors.New("pullthrough: upstream registry unavailable")

// Store is what the pull-through cache needs of the store: the rules,
// the cache repositories they create, and the manifests and blobs it
// fills in.
type Store interface {
	MatchPullThroughCacheRule(ctx context.Context, repo string) (*engine.PullThroughCacheRule, bool, error)
	EnsureCacheRepository(ctx context.Context, repo string) (created bool, err error)
	DeleteRepository(ctx context.Context, name string, force bool) error
	StatManifest(ctx context.Context, repo, reference string) (engine.Descriptor, error)
	PutCachedManifest(ctx context.Context, repo, reference, mediaType string, payload []byte) (engine.PutManifestResult, error)
	StatBlob(ctx context.Context, repo string, d digest.Digest) (engine.Descriptor, error)
	PutBlob(ctx context.Context, repo string, r io.Reader, expected digest.Digest) (engine.Descriptor, error)
	RecordPullThroughCacheFailure(ctx context.Context, repo, reference, code, reason string) error
}

var _ Store = (*engine.Engine)(nil)

// Config configures a Cache.
type Config struct {
	// Logger receives what the cache fetched and the upstream failures
	// it served a cached copy through. Default slog.Default().
	Logger *slog.Logger
	// Refresh is how often a cached tag is checked against its upstream.
	// Default DefaultRefresh; negative: at every pull.
	Refresh time.Duration
	// Transport carries the requests to upstream registries. Default: the
	// standard transport with bounded connection set-up and header waits.
	Transport http.RoundTripper
}

// Cache fills the store from upstream registries on a miss.
type Cache struct {
	store     Store
	authz     authz.Authorizer
	log       *slog.Logger
	refresh   time.Duration
	transport http.RoundTripper

	fetches singleflight.Group
	mu      sync.Mutex
	checked map[string]time.Time // repo + ":" + tag: last upstream check
}

// New returns the cache over store; az decides whether a caller may fill
// (import into, and create) a cache repository.
func New(store Store, az authz.Authorizer, cfg Config) (*Cache, error) {
	if store == nil || az == nil {
		return nil, errors.New("pullthrough: New needs a store and an authorizer")
	}
	c := &Cache{store: store, authz: az, log: cfg.Logger, refresh: cfg.Refresh, transport: cfg.Transport}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.refresh == 0 {
		c.refresh = DefaultRefresh
	}
	if c.transport == nil {
		c.transport = newUpstreamTransport()
	}
	return c, nil
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

// FillManifest makes sure that a pull of ref from repo by who can be
// served when repo is a pull-through cache: it fetches the manifest (and
// everything it references) from upstream when the store lacks it, or
// when ref is a tag not checked upstream within the refresh interval. An
// upstream that cannot be reached leaves a stored copy to be served; with
// none, the pull fails with a retryable error. A caller who may not fill
// the repository (ecr:BatchImportUpstreamImage; ecr:CreateRepository to
// create it) is served what is stored, or refused when nothing is.
func (c *Cache) FillManifest(ctx context.Context, who engine.Principal, repo, ref string) error {
	rule, ok, err := c.store.MatchPullThroughCacheRule(ctx, repo)
	if err != nil || !ok {
		return err
	}
	isTag := !strings.Contains(ref, ":")
	local, lerr := c.store.StatManifest(ctx, repo, ref)
	if lerr == nil && (!isTag || !c.tagDue(repo, ref)) {
		return nil
	}
	if err := c.mayFill(ctx, who, repo); err != nil {
		if lerr == nil {
			c.log.Debug("pull-through: the caller may not refresh the cached tag; serving the cached copy", "repository", repo, "reference", ref, "err", err)
			return nil
		}
		return err
	}
	ctx = authz.GuardCreation(ctx, c.authz, who)
	_, err, _ = c.fetches.Do(flightKey("m", who, repo, ref), func() (any, error) {
		fctx, cancel := fetchContext(ctx)
		defer cancel()
		return nil, c.reportFailure(fctx, repo, ref, c.fetchManifest(fctx, rule, repo, ref, local, lerr == nil))
	})
	if errors.Is(err, engine.ErrNotPullThroughCache) {
		return nil // pushed to meanwhile: the store answers, the cache does not
	}
	if err != nil && lerr == nil {
		c.log.Warn("pull-through: upstream check failed; serving the cached copy", "repository", repo, "reference", ref, "err", err)
		return nil
	}
	return err
}

// The failure codes of the ECR Pull Through Cache Action events of fills
// that failed (docs/events.md).
const (
	// FailureUpstreamUnavailable: the upstream registry could not be
	// reached or answered an error (ErrUpstream).
	FailureUpstreamUnavailable = "UPSTREAM_UNAVAILABLE"
	// FailureStore: the store refused what the upstream sent (a manifest
	// that does not validate, a full disk, a key that is unavailable).
	FailureStore = "STORE_ERROR"
)

// maxFailureReason bounds the reason an event carries.
const maxFailureReason = 512

// reportFailure queues the FAILED ECR Pull Through Cache Action of a fill
// of ref into repo that ended with err (nothing for a success, or for a
// repository pushed to meanwhile), and returns err.
func (c *Cache) reportFailure(ctx context.Context, repo, ref string, err error) error {
	if err == nil || errors.Is(err, engine.ErrNotPullThroughCache) {
		return err
	}
	code := FailureStore
	if errors.Is(err, ErrUpstream) {
		code = FailureUpstreamUnavailable
	}
	reason := err.Error()
	if len(reason) > maxFailureReason {
		reason = reason[:maxFailureReason]
	}
	if rerr := c.store.RecordPullThroughCacheFailure(ctx, repo, ref, code, reason); rerr != nil {
		c.log.Warn("pull-through: the failed fill's event could not be queued", "repository", repo, "reference", ref, "err", rerr)
	}
	return err
}

// mayFill asks whether who may import upstream images into repo.
func (c *Cache) mayFill(ctx context.Context, who engine.Principal, repo string) error {
	return c.authz.Authorize(ctx, who, authz.BatchImportUpstreamImage, authz.Repository(repo))
}

// flightKey names a shared fetch: its kind, the caller (a fetch runs with
// its caller's authority: it may create the repository) and what it
// fetches.
func flightKey(kind string, who engine.Principal, repo, ref string) string {
	return kind + "\x00" + who.ARN() + "\x00" + repo + "\x00" + ref
}

// fetchManifest copies ref from upstream into repo.
func (c *Cache) fetchManifest(ctx context.Context, rule *engine.PullThroughCacheRule, repo, ref string, local engine.Descriptor, haveLocal bool) error {
	up, err := upstreamRef(rule, repo, ref)
	if err != nil {
		return err
	}
	opts := c.upstreamOptions(ctx)
	desc, err := remote.Get(up, opts...)
	if err != nil {
		return upstreamErr(up, err)
	}
	isTag := !strings.Contains(ref, ":")
	if haveLocal && local.Digest.String() == desc.Digest.String() {
		c.markChecked(repo, ref, isTag)
		return nil
	}
	created, err := c.store.EnsureCacheRepository(ctx, repo)
	if err != nil {
		return err
	}
	if desc.MediaType.IsIndex() {
		err = c.copyIndex(ctx, repo, up, opts)
	} else {
		err = c.copyImageContent(ctx, repo, up, desc)
	}
	if err == nil {
		_, err = c.store.PutCachedManifest(ctx, repo, ref, string(desc.MediaType), desc.Manifest)
	}
	if err != nil {
		c.undoCreation(ctx, repo, created)
		return err
	}
	c.markChecked(repo, ref, isTag)
	c.log.Info("pull-through: cached", "repository", repo, "reference", ref, "digest", desc.Digest.String(), "upstream", up.String())
	return nil
}

// copyIndex copies the children of the index up names (recursively) into
// repo, each child manifest by digest.
func (c *Cache) copyIndex(ctx context.Context, repo string, up name.Reference, opts []remote.Option) error {
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
		if _, err := c.store.StatManifest(ctx, repo, child.Digest.String()); err == nil {
			continue
		}
		cdesc, err := remote.Get(cref, opts...)
		if err != nil {
			return upstreamErr(cref, err)
		}
		if cdesc.MediaType.IsIndex() {
			err = c.copyIndex(ctx, repo, cref, opts)
		} else {
			err = c.copyImageContent(ctx, repo, cref, cdesc)
		}
		if err != nil {
			return err
		}
		if _, err := c.store.PutCachedManifest(ctx, repo, child.Digest.String(), string(cdesc.MediaType), cdesc.Manifest); err != nil {
			return err
		}
	}
	return nil
}

// copyImageContent copies the config and layers of an image manifest
// into repo, skipping those it holds.
func (c *Cache) copyImageContent(ctx context.Context, repo string, up name.Reference, desc *remote.Descriptor) error {
	img, err := desc.Image()
	if err != nil {
		return upstreamErr(up, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return upstreamErr(up, err)
	}
	if !c.haveBlob(ctx, repo, m.Config.Digest) {
		cfg, err := img.RawConfigFile()
		if err != nil {
			return upstreamErr(up, err)
		}
		if _, err := c.store.PutBlob(ctx, repo, bytes.NewReader(cfg), digest.Digest(m.Config.Digest.String())); err != nil {
			return err
		}
	}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 || c.haveBlob(ctx, repo, l.Digest) {
			continue // foreign layers stay where their URLs say
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return upstreamErr(up, err)
		}
		if err := c.storeLayer(ctx, repo, up, layer); err != nil {
			return err
		}
	}
	return nil
}

// storeLayer streams an upstream layer into repo.
func (c *Cache) storeLayer(ctx context.Context, repo string, up name.Reference, layer v1.Layer) error {
	d, err := layer.Digest()
	if err != nil {
		return upstreamErr(up, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return upstreamErr(up, err)
	}
	defer rc.Close()
	src := &upstreamReader{r: rc}
	if _, err := c.store.PutBlob(ctx, repo, src, digest.Digest(d.String())); err != nil {
		// The upstream's bytes failing their digest (checked by the reader
		// or by the store), or the upstream failing mid-body, is the
		// upstream's failure, not the store's: ErrUpstream, retryable.
		if src.err != nil || errors.Is(err, engine.ErrDigestInvalid) || errors.Is(err, engine.ErrBlobUploadInvalid) {
			return fmt.Errorf("%w: %s: layer %s: %v", ErrUpstream, up.Context(), d, err)
		}
		return err
	}
	return nil
}

// upstreamReader keeps the first error reading an upstream body gave
// (other than io.EOF), so that a failed store can be told apart from a
// failed or lying upstream.
type upstreamReader struct {
	r   io.Reader
	err error
}

func (u *upstreamReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err != nil && err != io.EOF && u.err == nil { //nolint:errorlint // io.EOF is returned unwrapped by contract
		u.err = err
	}
	return n, err
}

// FillBlob fetches blob d of repo from upstream when repo is a
// pull-through cache that lacks it and who may fill it.
func (c *Cache) FillBlob(ctx context.Context, who engine.Principal, repo string, d digest.Digest) error {
	rule, ok, err := c.store.MatchPullThroughCacheRule(ctx, repo)
	if err != nil || !ok {
		return err
	}
	if _, err := c.store.StatBlob(ctx, repo, d); err == nil {
		return nil
	}
	if err := c.mayFill(ctx, who, repo); err != nil {
		return err
	}
	ctx = authz.GuardCreation(ctx, c.authz, who)
	_, err, _ = c.fetches.Do(flightKey("b", who, repo, string(d)), func() (any, error) {
		ctx, cancel := fetchContext(ctx)
		defer cancel()
		up, err := upstreamRef(rule, repo, string(d))
		if err != nil {
			return nil, err
		}
		dref, ok := up.(name.Digest)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not a digest reference", ErrUpstream, up)
		}
		layer, err := remote.Layer(dref, c.upstreamOptions(ctx)...)
		if err != nil {
			return nil, upstreamErr(up, err)
		}
		created, err := c.store.EnsureCacheRepository(ctx, repo)
		if err != nil {
			return nil, err
		}
		if err := c.storeLayer(ctx, repo, up, layer); err != nil {
			c.undoCreation(ctx, repo, created)
			return nil, err
		}
		return nil, nil
	})
	if errors.Is(err, engine.ErrNotPullThroughCache) {
		return nil
	}
	return err
}

// undoCreation removes repo again after a failed fill, when the fill
// created it and it holds no image: a failure upstream leaves no empty
// cache repository behind. (A concurrent fill's blobs linked meanwhile go
// with it; the next pull fetches them again.)
func (c *Cache) undoCreation(ctx context.Context, repo string, created bool) {
	if !created {
		return
	}
	err := c.store.DeleteRepository(context.WithoutCancel(ctx), repo, false)
	if err != nil && !errors.Is(err, engine.ErrRepositoryNotEmpty) && !errors.Is(err, engine.ErrNameUnknown) {
		c.log.Warn("pull-through: could not remove the repository a failed fill created", "repository", repo, "err", err)
	}
}

// haveBlob reports whether repo holds blob h.
func (c *Cache) haveBlob(ctx context.Context, repo string, h v1.Hash) bool {
	_, err := c.store.StatBlob(ctx, repo, digest.Digest(h.String()))
	return err == nil
}

// upstreamOptions are the options of every upstream request: the
// request's context, anonymous access (go-containerregistry follows the
// token flow of registries such as Docker Hub), and the server's
// transport.
func (c *Cache) upstreamOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(c.transport)}
}

// upstreamErr classifies an upstream failure: "not found" upstream is the
// pull's own not-found (the local lookup answers it); anything else is
// ErrUpstream, retryable.
func upstreamErr(up name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusUnauthorized) {
		return nil
	}
	return fmt.Errorf("%w: %s: %v", ErrUpstream, up, err)
}

// tagDue reports whether tag of repo is due for an upstream check.
func (c *Cache) tagDue(repo, tag string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.checked[repo+":"+tag]
	return !ok || time.Since(at) >= c.refresh
}

// markChecked records an upstream check of a tag.
func (c *Cache) markChecked(repo, ref string, isTag bool) {
	if !isTag {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checked == nil || len(c.checked) >= maxCheckedTags {
		c.checked = map[string]time.Time{}
	}
	c.checked[repo+":"+ref] = time.Now()
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
