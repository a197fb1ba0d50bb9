package engine

import (
	"context"
	"sync"
	"time"

	"github.com/berthstore/berth/index"
)

// StoreStats are the store's totals, for metrics.
type StoreStats struct {
	// Blobs is the number of blobs stored (each once, whatever the
	// number of repositories linking it).
	Blobs int64
	// Bytes is their logical size; StoredBytes their size on disk
	// (after compression and encryption overhead).
	Bytes, StoredBytes int64
	// Repositories is the number of repositories.
	Repositories int64
	// ComputedAt is when the figures were taken.
	ComputedAt time.Time
}

// storeStatsCache keeps the last StoreStats for statsMaxAge.
type storeStatsCache struct {
	mu   sync.Mutex
	last StoreStats
}

// statsMaxAge bounds how stale StoreStats may be: counting walks every
// blob record (about a second per million), so scrapes share one walk.
const statsMaxAge = 30 * time.Second

// StoreStats counts the store's blobs, bytes and repositories. Figures
// may be up to 30 seconds old.
func (e *Engine) StoreStats(ctx context.Context) (StoreStats, error) {
	if err := e.checkOpen(); err != nil {
		return StoreStats{}, err
	}
	c := &e.statsCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.last.ComputedAt.IsZero() && e.clock.Now().Sub(c.last.ComputedAt) < statsMaxAge {
		return c.last, nil
	}
	var s StoreStats
	err := e.db.WalkBlobs(func(b *index.Blob) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.Blobs++
		s.Bytes += b.Size
		s.StoredBytes += b.StoredSize
		return nil
	})
	if err != nil {
		return StoreStats{}, storageErr(err)
	}
	repos, err := e.db.ListRepositories("", 0)
	if err != nil {
		return StoreStats{}, storageErr(err)
	}
	s.Repositories = int64(len(repos))
	s.ComputedAt = e.clock.Now()
	c.last = s
	return s, nil
}
