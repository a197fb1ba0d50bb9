// Package pullthrough is registryd's pull-through cache: a pull from a
// repository under a pull-through cache rule that misses locally (or whose
// tag is due for a check) is fetched from the upstream registry, stored,
// and served from the store from then on. The OCI handlers call it before
// they serve a manifest or a blob. docs/pull-through-cache.md.
//
// A first pull streams: a manifest that misses is answered as soon as the
// upstream's manifest is fetched (and checked), while the image's blobs
// are copied into the store in the background; a blob that misses is
// answered from the upstream's bytes as they arrive, while the same bytes
// are verified and stored (flight.go). Concurrent pulls of one blob share
// one upstream fetch.
//
// A rule fills only repositories that a pull-through cache created (and
// names with no repository yet): the engine's MatchPullThroughCacheRule
// never matches a repository that was pushed to. A fill is the caller's:
// it needs ecr:BatchImportUpstreamImage on the repository, and
// ecr:CreateRepository (with kms:CreateGrant and kms:DescribeKey on its
// template's key) when it creates it; the pull itself was authorized
// (ecr:BatchGetImage, ecr:GetDownloadUrlForLayer) before. A rule with a
// credentialArn authenticates to its upstream with the stored secret it
// names (upstream.go).
package pullthrough

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"

	"github.com/berthstore/berth/engine"
	"github.com/berthstore/berth/registryd/internal/authz"
	"github.com/berthstore/berth/registryd/internal/request"
)

// DefaultRefresh is how often a cached tag is checked against its
// upstream (ECR: at most once every 24 hours).
const DefaultRefresh = 24 * time.Hour

// maxFetch bounds one upstream fetch. A fetch is shared by the pulls that
// wait for it and goes on when the pull that started it goes away, so
// that the cache is filled either way.
const maxFetch = 30 * time.Minute

// ErrUpstream reports an upstream registry that could not be reached or
// answered an error other than "not found". A pull that fails with it may
// be retried.
var ErrUpstream = errors.New("pullthrough: upstream registry unavailable")

// ErrUpstreamAuth reports that the credentials of a rule (its
// credentialArn) did not authenticate to the upstream registry, or could
// not be read: as ECR says, "The authentication to the upstream registry
// failed". The pull is refused (DENIED); retrying does not help until
// the rule's secret is fixed.
var ErrUpstreamAuth = errors.New("pullthrough: the authentication to the upstream registry failed; verify the credentials of the pull-through cache rule's secret")

// Store is what the pull-through cache needs of the store: the rules,
// their credentials, the cache repositories they create, the manifests
// and blobs it fills in, and when each cached tag was last checked.
type Store interface {
	MatchPullThroughCacheRule(ctx context.Context, repo string) (*engine.PullThroughCacheRule, bool, error)
	CacheRuleCredentials(ctx context.Context, rule *engine.PullThroughCacheRule) (engine.UpstreamCredentials, bool, error)
	Secret(ctx context.Context, name string) (engine.SecretInfo, error)
	SecretNameFromARN(arn string) (string, error)
	EnsureCacheRepository(ctx context.Context, repo string) (created bool, err error)
	DeleteRepository(ctx context.Context, name string, force bool) error
	StatManifest(ctx context.Context, repo, reference string) (engine.Descriptor, error)
	PutCachedManifest(ctx context.Context, repo, reference, mediaType string, payload []byte) (engine.PutManifestResult, error)
	ParseManifestReferences(mediaType string, payload []byte) (engine.ManifestReferences, error)
	StatBlob(ctx context.Context, repo string, d digest.Digest) (engine.Descriptor, error)
	PutCachedBlob(ctx context.Context, repo string, r io.Reader, expected digest.Digest) (engine.Descriptor, error)
	MarkUpstreamChecked(ctx context.Context, repo, tag string) error
	UpstreamCheckedAt(ctx context.Context, repo, tag string) (time.Time, bool, error)
	// Now is the store's clock, on which UpstreamCheckedAt's times are.
	Now() time.Time
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
	// SpoolDir holds the spool files of blobs being fetched (unlinked as
	// soon as they are made; each as large as its blob while its fetch
	// runs). Default os.TempDir().
	SpoolDir string
	// MaxManifestSize bounds an upstream manifest. Default 4 MiB.
	MaxManifestSize int64
}

// Cache fills the store from upstream registries on a miss.
type Cache struct {
	store     Store
	authz     authz.Authorizer
	log       *slog.Logger
	refresh   time.Duration
	transport http.RoundTripper
	now       func() time.Time
	spoolDir  string
	maxMan    int64

	manifests singleflight.Group // shared upstream manifest fetches
	fills     singleflight.Group // background copies of an image's content
	upstreams upstreamCache      // authenticated upstream clients (upstream.go)
	shakes    handshakes         // upstream registries' ping answers (handshake.go)
	flights   flightTable        // blob fetches under way (flight.go)

	// stop cancels the background work (fills, flights) at Close; bg
	// counts it.
	stopCtx context.Context
	stop    context.CancelFunc
	bg      sync.WaitGroup
	closeMu sync.Mutex
}

// New returns the cache over store; az decides whether a caller may fill
// (import into, and create) a cache repository.
func New(store Store, az authz.Authorizer, cfg Config) (*Cache, error) {
	if store == nil || az == nil {
		return nil, errors.New("pullthrough: New needs a store and an authorizer")
	}
	c := &Cache{store: store, authz: az, log: cfg.Logger, refresh: cfg.Refresh, transport: cfg.Transport,
		now: store.Now, spoolDir: cfg.SpoolDir, maxMan: cfg.MaxManifestSize}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.refresh == 0 {
		c.refresh = DefaultRefresh
	}
	if c.transport == nil {
		c.transport = newUpstreamTransport()
	}
	if c.spoolDir == "" {
		c.spoolDir = os.TempDir()
	}
	if c.maxMan <= 0 {
		c.maxMan = 4 << 20
	}
	c.stopCtx, c.stop = context.WithCancel(context.Background())
	c.flights.init()
	return c, nil
}

// Close lets the background work (image fills, blob fetches) finish
// until ctx is done, then cancels what is left (what it stored stays; a
// repository it created stays too, and the next pull fills it) and waits
// for it to end. Call it once no pull is served any more (the server's
// shutdown does); pulls that come later are answered from the store only.
func (c *Cache) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		c.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		c.closeMu.Lock()
		c.stop()
		c.closeMu.Unlock()
		<-done
	}
	c.closeMu.Lock()
	c.stop()
	c.closeMu.Unlock()
	return nil
}

// stopping reports whether Close cancelled the background work.
func (c *Cache) stopping() bool { return c.stopCtx.Err() != nil }

// goBackground runs fn in a goroutine that Close waits for, with a
// context that carries ctx's values (not its cancellation), is bounded
// by maxFetch, and ends when Close cancels the background work. It
// reports false once that happened (fn does not run). (Work a fill
// starts while Close waits for it still runs: the server takes no pull
// by then, so nothing else starts any.)
func (c *Cache) goBackground(ctx context.Context, fn func(ctx context.Context)) bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.stopCtx.Err() != nil {
		return false
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxFetch)
	stop := context.AfterFunc(c.stopCtx, cancel)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer cancel()
		defer stop()
		fn(bctx)
	}()
	return true
}

// FillManifest makes sure that a pull of ref from repo by who can be
// served when repo is a pull-through cache. It returns nil when the store
// answers: a stored copy (a digest, or a tag checked upstream within the
// refresh interval or whose upstream digest has not changed), or nothing
// (the store's "unknown"). Otherwise it returns the upstream's manifest to
// answer now, while its content (blobs, and an index's child manifests)
// and then the manifest itself are stored in the background. An upstream
// that cannot be reached leaves a stored copy to be served; with none,
// the pull fails with a retryable error. A caller who may not fill the
// repository (ecr:BatchImportUpstreamImage; ecr:CreateRepository to
// create it) is served what is stored, or refused when nothing is.
func (c *Cache) FillManifest(ctx context.Context, who engine.Principal, repo, ref string) (*engine.Manifest, error) {
	rule, ok, err := c.store.MatchPullThroughCacheRule(ctx, repo)
	if err != nil || !ok {
		return nil, err
	}
	isTag := !strings.Contains(ref, ":")
	local, lerr := c.store.StatManifest(ctx, repo, ref)
	haveLocal := lerr == nil
	if haveLocal && !isTag {
		return nil, nil
	}
	if haveLocal && !c.tagDue(ctx, repo, ref) {
		return nil, nil
	}
	ctx = fillContext(ctx)
	if err := c.mayFill(ctx, who, repo); err != nil {
		if haveLocal {
			c.log.Debug("pull-through: the caller may not refresh the cached tag; serving the cached copy", "repository", repo, "reference", ref, "err", err)
			return nil, nil
		}
		return nil, err
	}
	m, err := c.fetchManifest(ctx, rule, repo, ref)
	if !errors.Is(err, errNotFound) {
		c.reportFailure(ctx, repo, ref, err)
	}
	switch {
	case errors.Is(err, errNotFound):
		return nil, nil // the store answers: its copy, or "unknown"
	case err != nil && haveLocal:
		c.log.Warn("pull-through: upstream check failed; serving the cached copy", "repository", repo, "reference", ref, "err", err)
		return nil, nil
	case err != nil:
		return nil, err
	}
	if haveLocal && local.Digest == m.Digest {
		c.markChecked(ctx, repo, ref, isTag)
		return nil, nil
	}
	ctx = authz.GuardCreation(ctx, c.authz, who)
	// The copy starts before the repository is made sure of, so that the
	// upstream is asked for the blobs while this answer goes out: the
	// pull's own blob requests then find the upstream's answers under
	// way, or already in. (Its flights make sure of the repository
	// themselves before they store anything.)
	ensured := make(chan repoEnsured, 1)
	c.startImageFill(ctx, rule, repo, ref, m, ensured)
	created, err := c.store.EnsureCacheRepository(ctx, repo)
	ensured <- repoEnsured{created: created, err: err}
	if errors.Is(err, engine.ErrNotPullThroughCache) {
		return nil, nil // pushed to meanwhile: the store answers, the cache does not
	}
	if err != nil {
		return nil, c.reportFailure(ctx, repo, ref, err)
	}
	return &engine.Manifest{Descriptor: engine.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: int64(len(m.Payload))}, Payload: m.Payload}, nil
}

// StreamBlob serves a GET of blob d of repo by who when repo is a
// pull-through cache that lacks it: it returns the upstream's bytes as
// they arrive (size is -1 when the upstream did not say), while they are
// verified and stored. The reader's last bytes come only once the whole
// blob matched its digest; on a mismatch or a failure upstream, reading
// fails (the answer must be cut short). It returns a nil reader when the
// store answers (it holds the blob, repo is no cache, or upstream does
// not have it).
func (c *Cache) StreamBlob(ctx context.Context, who engine.Principal, repo string, d digest.Digest) (rc io.ReadCloser, size int64, err error) {
	rule, ok, err := c.store.MatchPullThroughCacheRule(ctx, repo)
	if err != nil || !ok {
		return nil, 0, err
	}
	if _, err := c.store.StatBlob(ctx, repo, d); err == nil {
		return nil, 0, nil
	}
	ctx = fillContext(ctx)
	if err := c.mayFill(ctx, who, repo); err != nil {
		return nil, 0, err
	}
	r, size, err := c.joinFlight(authz.GuardCreation(ctx, c.authz, who), rule, repo, d, true)
	if errors.Is(err, errNotFound) || errors.Is(err, engine.ErrNotPullThroughCache) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if size >= 0 && size <= verifyFirstSize {
		// Small: checked whole before the answer starts, so that a blob
		// that does not match its digest is refused (503), not cut short.
		if err := r.fetched(ctx); err != nil {
			r.Close()
			return nil, 0, err
		}
	}
	return r, size, nil // not a nil *flightReader: err is nil
}

// verifyFirstSize is the largest blob StreamBlob verifies whole before
// it answers: a config or a small layer costs no noticeable wait, and an
// altered one gets an error status rather than an answer cut short.
const verifyFirstSize = 1 << 20

// FillBlob fetches blob d of repo from upstream when repo is a
// pull-through cache that lacks it and who may fill it, and returns once
// it is stored (for answers the store must give itself: ranges).
func (c *Cache) FillBlob(ctx context.Context, who engine.Principal, repo string, d digest.Digest) error {
	rule, ok, err := c.store.MatchPullThroughCacheRule(ctx, repo)
	if err != nil || !ok {
		return err
	}
	if _, err := c.store.StatBlob(ctx, repo, d); err == nil {
		return nil
	}
	ctx = fillContext(ctx)
	if err := c.mayFill(ctx, who, repo); err != nil {
		return err
	}
	r, _, err := c.joinFlight(authz.GuardCreation(ctx, c.authz, who), rule, repo, d, true)
	if errors.Is(err, errNotFound) || errors.Is(err, engine.ErrNotPullThroughCache) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	err = r.drain(ctx)
	if errors.Is(err, engine.ErrNotPullThroughCache) {
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
	// FailureUpstreamAuthentication: the rule's credentials did not
	// authenticate to the upstream registry, or could not be read
	// (ErrUpstreamAuth).
	FailureUpstreamAuthentication = "UPSTREAM_AUTHENTICATION_FAILED"
	// FailureStore: the store refused what the upstream sent (a manifest
	// that does not validate, a full disk, a key that is unavailable).
	FailureStore = "STORE_ERROR"
)

// maxFailureReason bounds the reason an event carries.
const maxFailureReason = 512

// reportFailure queues the FAILED ECR Pull Through Cache Action of a fill
// of ref into repo that ended with err (nothing for a success, for a
// repository pushed to meanwhile, or for a caller refused the
// repository's creation: that is a refusal, in the audit log, not a
// fill), and returns err.
func (c *Cache) reportFailure(ctx context.Context, repo, ref string, err error) error {
	if err == nil || errors.Is(err, engine.ErrNotPullThroughCache) || errors.Is(err, engine.ErrAccessDenied) {
		return err
	}
	code := FailureStore
	switch {
	case errors.Is(err, ErrUpstreamAuth):
		code = FailureUpstreamAuthentication
	case errors.Is(err, ErrUpstream):
		code = FailureUpstreamUnavailable
	}
	reason := err.Error()
	if len(reason) > maxFailureReason {
		reason = reason[:maxFailureReason]
	}
	if rerr := c.store.RecordPullThroughCacheFailure(context.WithoutCancel(ctx), repo, ref, code, reason); rerr != nil {
		c.log.Warn("pull-through: the failed fill's event could not be queued", "repository", repo, "reference", ref, "err", rerr)
	}
	return err
}

// fillContext returns ctx under which the audit records of a fill's
// changes (its import into the cache repository, the repository's
// creation) are synced for the fill itself to wait for, before its
// durable commits (awaitRecords), not for the pull's answer: the pull
// acknowledges a read, and the fill goes on after it
// (docs/audit.md, "The seam").
func fillContext(ctx context.Context) context.Context {
	return request.WithAuditSyncs(ctx, new(request.AuditSyncs))
}

// awaitRecords waits for the syncs of the audit records of the changes
// made under ctx (fillContext): a fill makes nothing durable before they
// are on the disk.
func awaitRecords(ctx context.Context) error {
	if s := request.AuditSyncsOf(ctx); s != nil {
		return s.Wait()
	}
	return nil
}

// mayFill asks whether who may import upstream images into repo.
func (c *Cache) mayFill(ctx context.Context, who engine.Principal, repo string) error {
	return c.authz.Authorize(ctx, who, authz.BatchImportUpstreamImage, authz.Repository(repo))
}

// undoCreation removes repo again after a failed fill, when the fill
// created it and it holds no image: a failure upstream leaves no empty
// cache repository behind. (A concurrent fill's blobs linked meanwhile go
// with it; the next pull fetches them again.)
func (c *Cache) undoCreation(ctx context.Context, repo string, created bool) {
	if !created || c.stopping() {
		return // a fill the shutdown cut short: the next pull goes on with it
	}
	err := c.store.DeleteRepository(context.WithoutCancel(ctx), repo, false)
	if err != nil && !errors.Is(err, engine.ErrRepositoryNotEmpty) && !errors.Is(err, engine.ErrNameUnknown) {
		c.log.Warn("pull-through: could not remove the repository a failed fill created", "repository", repo, "err", err)
	}
}

// tagDue reports whether tag of repo is due for an upstream check: never
// checked (as far as the store knows), or not within the refresh
// interval. The store keeps the time of the last check, so that a
// restart does not check every tag again.
func (c *Cache) tagDue(ctx context.Context, repo, tag string) bool {
	if c.refresh < 0 {
		return true
	}
	at, ok, err := c.store.UpstreamCheckedAt(ctx, repo, tag)
	if err != nil {
		c.log.Warn("pull-through: reading when a tag was last checked", "repository", repo, "tag", tag, "err", err)
		return true
	}
	return !ok || c.now().Sub(at) >= c.refresh
}

// markChecked records an upstream check of a tag.
func (c *Cache) markChecked(ctx context.Context, repo, ref string, isTag bool) {
	if !isTag {
		return
	}
	if err := c.store.MarkUpstreamChecked(context.WithoutCancel(ctx), repo, ref); err != nil {
		c.log.Warn("pull-through: recording when a tag was checked", "repository", repo, "tag", ref, "err", err)
	}
}

// newUpstreamTransport is the transport of upstream requests: the
// standard one with bounded connection set-up and header waits (a body
// streams as long as it flows).
func newUpstreamTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	t.TLSHandshakeTimeout = 30 * time.Second
	// Fills fetch several blobs of a registry at once (and several fills
	// run): keep their connections rather than two of them.
	t.MaxIdleConnsPerHost = upstreamIdleConns
	return t
}

// upstreamIdleConns is how many idle connections to one upstream host
// the transport keeps.
const upstreamIdleConns = 16

// upstreamFailure wraps err as a failure of the upstream of up.
func upstreamFailure(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrUpstream, what, err)
}
