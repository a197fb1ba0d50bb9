package pullthrough

// The background fill of an image whose manifest a pull was answered
// from upstream: its blobs (through the blob flights, shared with the
// pulls that ask for them meanwhile) and, for an index, its child
// manifests with theirs, then the manifest itself under the reference
// pulled. It runs with the authority of the pull that started it, and
// goes on (up to maxFetch) when that pull is gone.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/berthstore/berth/engine"
)

// startImageFill copies the content of m (fetched upstream for ref of
// repo) into repo and then puts m under ref, in the background; one fill
// runs per repository, reference and digest. created reports that the
// pull created repo (a fill that fails removes it again when it holds no
// image).
func (c *Cache) startImageFill(ctx context.Context, rule *engine.PullThroughCacheRule, repo, ref string, m *upstreamManifest, created bool) {
	key := repo + "\x00" + ref + "\x00" + string(m.Digest)
	// The copy starts at once: its blob fetches are the ones the pull's
	// own blob requests join (flight.go), so that those find the
	// upstream's answer under way, or already in, when they come.
	c.goBackground(ctx, func(ctx context.Context) {
		_, _, _ = c.fills.Do(key, func() (any, error) {
			err := c.fillImage(ctx, rule, repo, ref, m)
			switch {
			case err == nil:
				c.markChecked(ctx, repo, ref, !strings.Contains(ref, ":"))
				c.log.Info("pull-through: cached", "repository", repo, "reference", ref, "digest", m.Digest, "upstream", rule.UpstreamRegistryURL)
			case errors.Is(err, engine.ErrNotPullThroughCache):
				// Pushed to meanwhile: the store answers, the cache does not.
			case c.stopping():
				c.log.Info("pull-through: the shutdown cut an image fill short; the next pull goes on with it", "repository", repo, "reference", ref)
			default:
				c.log.Warn("pull-through: filling an image failed; the next pull tries again", "repository", repo, "reference", ref, "digest", m.Digest, "err", err)
				_ = c.reportFailure(ctx, repo, ref, err)
				c.undoCreation(ctx, repo, created)
			}
			return nil, err
		})
	})
}

// fillImage stores the content of m, then m under ref.
func (c *Cache) fillImage(ctx context.Context, rule *engine.PullThroughCacheRule, repo, ref string, m *upstreamManifest) error {
	if err := c.fillContent(ctx, rule, repo, m, 0); err != nil {
		return err
	}
	if err := awaitRecords(ctx); err != nil {
		return err
	}
	_, err := c.store.PutCachedManifest(ctx, repo, ref, m.MediaType, m.Payload)
	return err
}

// maxIndexDepth bounds the nesting of indexes a fill follows.
const maxIndexDepth = 8

// fillContent stores what m references: its blobs, or (an index) each
// child manifest, with its content, by digest.
func (c *Cache) fillContent(ctx context.Context, rule *engine.PullThroughCacheRule, repo string, m *upstreamManifest, depth int) error {
	if depth > maxIndexDepth {
		return fmt.Errorf("%w: indexes nested over %d deep", ErrUpstream, maxIndexDepth)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fillParallel)
	for _, b := range m.Refs.Blobs {
		g.Go(func() error { return c.fillBlob(gctx, rule, repo, b.Digest) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, child := range m.Refs.Children {
		if _, err := c.store.StatManifest(ctx, repo, child.Digest.String()); err == nil {
			continue
		}
		cm, err := c.fetchManifest(ctx, rule, repo, child.Digest.String())
		if errors.Is(err, errNotFound) {
			return fmt.Errorf("%w: the index's child %s is not upstream", ErrUpstream, child.Digest)
		}
		if err != nil {
			return err
		}
		if err := c.fillContent(ctx, rule, repo, cm, depth+1); err != nil {
			return err
		}
		if err := awaitRecords(ctx); err != nil {
			return err
		}
		if _, err := c.store.PutCachedManifest(ctx, repo, child.Digest.String(), cm.MediaType, cm.Payload); err != nil {
			return err
		}
	}
	return nil
}

// fillBlob stores blob d of repo from upstream unless repo holds it,
// joining the flight of a pull that fetches it already.
func (c *Cache) fillBlob(ctx context.Context, rule *engine.PullThroughCacheRule, repo string, dg digest.Digest) error {
	if _, err := c.store.StatBlob(ctx, repo, dg); err == nil {
		return nil
	}
	r, _, err := c.joinFlight(ctx, rule, repo, dg, false)
	if errors.Is(err, errNotFound) {
		return fmt.Errorf("%w: blob %s is not upstream", ErrUpstream, dg)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	return r.drain(ctx)
}

// fillHeadStart is how long a flight the background copy of an image
// started waits for a pull to want its bytes before it reads them
// anyway (a pull of the manifest alone, or of other blobs).
const fillHeadStart = 500 * time.Millisecond

// fillParallel is how many blobs of an image its copy fetches at once
// (as many as docker pulls at once).
const fillParallel = 3
