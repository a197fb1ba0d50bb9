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

// repoEnsured is what the pull that started a fill learned when it made
// sure of the cache repository: whether it created it, or why it could
// not (then the pull reported the failure, and the fill does not again).
type repoEnsured struct {
	created bool
	err     error
}

// startImageFill copies the content of m (fetched upstream for ref of
// repo) into repo and then puts m under ref, in the background; one fill
// runs per repository, reference and digest. ensured receives, once, what
// the pull learned when it made sure of repo (a fill that fails removes
// repo again when the pull created it and it holds no image).
//
// The first blobs' flights (fillParallel of them) are entered before
// startImageFill returns, so that their requests upstream go out before
// the pull is answered: the pull's own blob requests join them
// (flight.go) and find the upstream's answers under way, or already in.
func (c *Cache) startImageFill(ctx context.Context, rule *engine.PullThroughCacheRule, repo, ref string, m *upstreamManifest, ensured <-chan repoEnsured) {
	key := repo + "\x00" + ref + "\x00" + string(m.Digest)
	early := c.enterFirstFlights(ctx, rule, repo, m)
	started := c.goBackground(ctx, func(ctx context.Context) {
		defer closeReaders(early) // those the fill did not take: its copy failed first, or another fill ran
		_, _, _ = c.fills.Do(key, func() (any, error) {
			err := c.fillImage(ctx, rule, repo, ref, m, early)
			switch {
			case err == nil:
				c.markChecked(ctx, repo, ref, !strings.Contains(ref, ":"))
				c.log.Info("pull-through: cached", "repository", repo, "reference", ref, "digest", m.Digest, "upstream", rule.UpstreamRegistryURL)
			case errors.Is(err, engine.ErrNotPullThroughCache):
				// Pushed to meanwhile: the store answers, the cache does not.
			case c.stopping():
				c.log.Info("pull-through: the shutdown cut an image fill short; the next pull goes on with it", "repository", repo, "reference", ref)
			default:
				pull := <-ensured
				if pull.err != nil {
					return nil, err // the pull could not make sure of the repository, and said so
				}
				c.log.Warn("pull-through: filling an image failed; the next pull tries again", "repository", repo, "reference", ref, "digest", m.Digest, "err", err)
				_ = c.reportFailure(ctx, repo, ref, err)
				c.undoCreation(ctx, repo, pull.created)
			}
			return nil, err
		})
	})
	if !started {
		closeReaders(early)
	}
}

// enterFirstFlights enters the flights of the first fillParallel blobs of
// m that repo lacks (enterFlight, the bytes not wanted yet), by digest.
func (c *Cache) enterFirstFlights(ctx context.Context, rule *engine.PullThroughCacheRule, repo string, m *upstreamManifest) map[digest.Digest]*flightReader {
	early := map[digest.Digest]*flightReader{}
	for _, b := range m.Refs.Blobs {
		if len(early) == fillParallel {
			break
		}
		if _, ok := early[b.Digest]; ok {
			continue
		}
		if _, err := c.store.StatBlob(ctx, repo, b.Digest); err == nil {
			continue
		}
		r, err := c.enterFlight(ctx, rule, repo, b.Digest, false)
		if err != nil {
			break // shutting down: the fill will not run either
		}
		early[b.Digest] = r
	}
	return early
}

// closeReaders closes the readers left in rs and empties it.
func closeReaders(rs map[digest.Digest]*flightReader) {
	for d, r := range rs {
		r.Close()
		delete(rs, d)
	}
}

// fillImage stores the content of m, then m under ref.
// early holds the readers of flights entered before the fill began
// (startImageFill); the fill takes those it uses out of it.
func (c *Cache) fillImage(ctx context.Context, rule *engine.PullThroughCacheRule, repo, ref string, m *upstreamManifest, early map[digest.Digest]*flightReader) error {
	if err := c.fillContent(ctx, rule, repo, m, 0, early); err != nil {
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
// The flights of early (entered already, by digest) are taken out of it
// and used.
func (c *Cache) fillContent(ctx context.Context, rule *engine.PullThroughCacheRule, repo string, m *upstreamManifest, depth int, early map[digest.Digest]*flightReader) error {
	if depth > maxIndexDepth {
		return fmt.Errorf("%w: indexes nested over %d deep", ErrUpstream, maxIndexDepth)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fillParallel)
	for _, b := range m.Refs.Blobs {
		r := early[b.Digest]
		delete(early, b.Digest)
		g.Go(func() error { return c.fillBlob(gctx, rule, repo, b.Digest, r) })
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
		if err := c.fillContent(ctx, rule, repo, cm, depth+1, nil); err != nil {
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
// joining the flight of a pull that fetches it already. r, when not nil,
// is the reader of d's flight entered already (it is the fill's to close).
func (c *Cache) fillBlob(ctx context.Context, rule *engine.PullThroughCacheRule, repo string, dg digest.Digest, r *flightReader) error {
	if r != nil {
		r.ctx = ctx // the pull's, until now
		if _, err := r.awaitAnswer(ctx); err != nil {
			r.Close()
			return fillBlobErr(dg, err)
		}
	} else {
		if _, err := c.store.StatBlob(ctx, repo, dg); err == nil {
			return nil
		}
		var err error
		if r, _, err = c.joinFlight(ctx, rule, repo, dg, false); err != nil {
			return fillBlobErr(dg, err)
		}
	}
	defer r.Close()
	return r.drain(ctx)
}

// fillBlobErr is the fill's error for blob dg's flight failing with err.
func fillBlobErr(dg digest.Digest, err error) error {
	if errors.Is(err, errNotFound) {
		return fmt.Errorf("%w: blob %s is not upstream", ErrUpstream, dg)
	}
	return err
}

// fillHeadStart is how long a flight the background copy of an image
// started waits for a pull to want its bytes before it reads them
// anyway (a pull of the manifest alone, or of other blobs).
const fillHeadStart = 500 * time.Millisecond

// fillParallel is how many blobs of an image its copy fetches at once
// (as many as docker pulls at once).
const fillParallel = 3
