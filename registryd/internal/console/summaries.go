package console

// The repository list's figures (images, size, last push) by
// repository, kept for SummaryMaxAge: sorting 10,000 repositories by size
// must not describe 10,000 repositories per request.

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/berthstore/berth/engine"
)

// repoSummary is one repository's figures.
type repoSummary struct {
	// Images counts its manifests that are no referrer.
	Images int
	// Size sums the sizes of its image manifests (ECR's
	// imageSizeInBytes: blobs as stored by the client, compressed layers
	// compressed); blobs shared by images count once per image.
	Size int64
	// LastPush is its newest manifest's push time (zero: none).
	LastPush time.Time
	at       time.Time
}

// summaries caches repoSummary by repository name.
type summaries struct {
	store  Store
	maxAge time.Duration
	log    *slog.Logger

	mu         sync.Mutex
	m          map[string]repoSummary
	refreshing bool
}

func newSummaries(store Store, maxAge time.Duration, log *slog.Logger) *summaries {
	return &summaries{store: store, maxAge: maxAge, log: log, m: map[string]repoSummary{}}
}

// summarize computes the figures of repo.
func summarize(ctx context.Context, store Store, repo string) (repoSummary, error) {
	imgs, err := store.Images(ctx, repo)
	if err != nil {
		return repoSummary{}, err
	}
	var s repoSummary
	for _, im := range imgs {
		if im.Subject != "" {
			continue
		}
		s.Images++
		if !isIndex(im.MediaType) {
			s.Size += im.Size
		}
		if im.PushedAt.After(s.LastPush) {
			s.LastPush = im.PushedAt
		}
	}
	return s, nil
}

// get returns the figures of names. Missing ones are computed now; with
// fresh, so are those older than maxAge, otherwise those are refreshed
// in the background and answered as they are. A repository that cannot
// be described (deleted meanwhile) is left out.
func (s *summaries) get(ctx context.Context, names []string, fresh bool) map[string]repoSummary {
	now := time.Now()
	out := make(map[string]repoSummary, len(names))
	var compute, stale []string
	s.mu.Lock()
	for _, n := range names {
		sum, ok := s.m[n]
		switch {
		case !ok, fresh && now.Sub(sum.at) > s.maxAge:
			compute = append(compute, n)
		case now.Sub(sum.at) > s.maxAge:
			stale = append(stale, n)
			out[n] = sum
		default:
			out[n] = sum
		}
	}
	startRefresh := len(stale) > 0 && !s.refreshing
	if startRefresh {
		s.refreshing = true
	}
	s.mu.Unlock()
	for _, n := range compute {
		sum, err := summarize(ctx, s.store, n)
		if err != nil {
			continue
		}
		sum.at = time.Now()
		out[n] = sum
		s.put(n, sum)
	}
	if startRefresh {
		go s.refresh(stale)
	}
	return out
}

func (s *summaries) put(name string, sum repoSummary) {
	s.mu.Lock()
	s.m[name] = sum
	s.mu.Unlock()
}

// refresh computes the figures of names again, in the background.
func (s *summaries) refresh(names []string) {
	defer func() {
		s.mu.Lock()
		s.refreshing = false
		s.mu.Unlock()
	}()
	ctx := context.Background()
	for _, n := range names {
		sum, err := summarize(ctx, s.store, n)
		if err != nil {
			if errors.Is(err, engine.ErrClosed) {
				return
			}
			s.mu.Lock()
			delete(s.m, n)
			s.mu.Unlock()
			continue
		}
		sum.at = time.Now()
		s.put(n, sum)
	}
}

// isIndex reports whether mediaType is an index or manifest list.
func isIndex(mediaType string) bool {
	return mediaType == "application/vnd.oci.image.index.v1+json" ||
		mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}
