package console

// The repository list's figures (images, size, last push) by
// repository, kept for SummaryMaxAge: sorting 10,000 repositories by size
// must not describe 10,000 repositories per request.

import (
	"context"
	"errors"
	"log/slog"
	"slices"
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

	// orderMu guards order, the last sorted order, and ordering, set
	// while a goroutine makes the next.
	orderMu  sync.Mutex
	order    *sortedOrder
	ordering bool
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

// get returns the figures of names, in their order (a repository that
// cannot be described, deleted meanwhile, has zero figures). Missing ones
// are computed now; with fresh, so are those older than maxAge,
// otherwise those are refreshed in the background and answered as they
// are.
func (s *summaries) get(ctx context.Context, names []string, fresh bool) []repoSummary {
	now := time.Now()
	out := make([]repoSummary, len(names))
	var compute []int
	var stale []string
	s.mu.Lock()
	for i, n := range names {
		sum, ok := s.m[n]
		switch {
		case !ok, fresh && now.Sub(sum.at) > s.maxAge:
			compute = append(compute, i)
		case now.Sub(sum.at) > s.maxAge:
			stale = append(stale, n)
			out[i] = sum
		default:
			out[i] = sum
		}
	}
	startRefresh := len(stale) > 0 && !s.refreshing
	if startRefresh {
		s.refreshing = true
	}
	s.mu.Unlock()
	for _, i := range compute {
		sum, err := summarize(ctx, s.store, names[i])
		if err != nil {
			continue
		}
		sum.at = time.Now()
		out[i] = sum
		s.put(names[i], sum)
	}
	if startRefresh {
		go s.refresh(stale)
	}
	return out
}

// orderMaxAge is how long the list of repositories and its orders are
// reused.
const orderMaxAge = time.Second

// sortedOrder is every repository in name order (the index's), and,
// once asked for, largest first and newest push first.
type sortedOrder struct {
	at                     time.Time
	byName, bySize, byPush []string
}

// sorted returns every repository's name in the order sortBy says
// ("name"; "size": largest first; "pushed": newest push first; ties in
// name order): the same for every caller (what each may see is asked
// afterwards), so the list is read from the index, and sorted, at most
// once a second (orderMaxAge) whoever asks. An order older than that is
// answered as it is while one goroutine makes the next: no request waits
// for the sort but the first.
func (s *summaries) sorted(ctx context.Context, sortBy string) ([]string, error) {
	withSizes := sortBy != "name"
	s.orderMu.Lock()
	o := s.order
	if o == nil || withSizes && o.bySize == nil {
		// Nothing to answer yet: make it now, under the lock.
		defer s.orderMu.Unlock()
		no, err := s.makeOrder(ctx, withSizes || o != nil && o.bySize != nil)
		if err != nil {
			return nil, err
		}
		s.order = no
		return no.pick(sortBy), nil
	}
	if time.Since(o.at) >= orderMaxAge && !s.ordering {
		s.ordering = true
		go s.reorder(o.bySize != nil)
	}
	s.orderMu.Unlock()
	return o.pick(sortBy), nil
}

// pick is the order sortBy names.
func (o *sortedOrder) pick(sortBy string) []string {
	switch sortBy {
	case "size":
		return o.bySize
	case "pushed":
		return o.byPush
	}
	return o.byName
}

// reorder makes the next order in the background.
func (s *summaries) reorder(withSizes bool) {
	no, err := s.makeOrder(context.Background(), withSizes)
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	s.ordering = false
	if err != nil {
		if !errors.Is(err, engine.ErrClosed) {
			s.log.Warn("console: listing repositories", "err", err)
		}
		return
	}
	s.order = no
}

// makeOrder reads every repository's name and, withSizes, sorts them by
// size and by last push.
func (s *summaries) makeOrder(ctx context.Context, withSizes bool) (*sortedOrder, error) {
	names, err := s.store.ListRepositories(ctx, "", 0)
	if err != nil {
		return nil, err
	}
	o := &sortedOrder{at: time.Now(), byName: names}
	if !withSizes {
		return o, nil
	}
	sums := s.get(ctx, names, false)
	type row struct {
		name string
		sum  *repoSummary
	}
	rows := make([]row, len(names))
	order := func(cmp func(a, b *repoSummary) int) []string {
		for i := range names {
			rows[i] = row{names[i], &sums[i]}
		}
		// names come in name order: a stable sort keeps it among ties.
		slices.SortStableFunc(rows, func(a, b row) int { return cmp(a.sum, b.sum) })
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = r.name
		}
		return out
	}
	o.bySize = order(func(a, b *repoSummary) int { return cmpDesc(a.Size, b.Size) })
	o.byPush = order(func(a, b *repoSummary) int { return b.LastPush.Compare(a.LastPush) })
	return o, nil
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
