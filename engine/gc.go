package engine

// Garbage collection: the engine's side of package gc (see docs/gc.md).
// The engine owns the write barrier (shade, gcEnter), the digest locks a
// sweep takes, and the schedulers of collections and lifecycle policies.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/gc"
)

// gcState is the engine's gc and lifecycle machinery.
type gcState struct {
	// running is the collection in progress (nil: none); the write
	// barrier shades through it.
	running atomic.Pointer[gc.Collector]
	// barrier is held for reading by every operation that may add a
	// reference to a blob, from its shade to its commit. A collection
	// takes it for writing once after publishing itself in running, so
	// that every operation that started before (and may not have seen
	// it) has finished before the mark begins.
	barrier sync.RWMutex
	// runMu serialises collections.
	runMu sync.Mutex

	pullMu sync.Mutex
	pulls  map[pullKey]time.Time

	statsMu sync.Mutex
	stats   GCStats
}

// GCStats are cumulative gc and lifecycle figures since Open, for metrics
// (registryd exports them).
type GCStats struct {
	// Collections counts finished collections (dry runs excluded).
	Collections int64
	// BlobsSwept, BytesFreed, OrphanFilesRemoved and UploadsExpired sum
	// the collections' reports.
	BlobsSwept, OrphanFilesRemoved, UploadsExpired int64
	BytesFreed                                     int64
	// Last is the last collection's report (nil before the first).
	Last *gc.Report
	// ImagesExpired counts images expired by lifecycle, by rule priority.
	ImagesExpired map[int]int64
}

// GCStats returns a copy of the cumulative gc and lifecycle figures.
func (e *Engine) GCStats() GCStats {
	e.gcs.statsMu.Lock()
	defer e.gcs.statsMu.Unlock()
	s := e.gcs.stats
	s.ImagesExpired = make(map[int]int64, len(e.gcs.stats.ImagesExpired))
	for k, v := range e.gcs.stats.ImagesExpired {
		s.ImagesExpired[k] = v
	}
	return s
}

// gcEnter opens a write-barrier section (see gcState.barrier); call the
// returned function when the operation's index batch is committed or
// abandoned.
func (e *Engine) gcEnter() func() {
	e.gcs.barrier.RLock()
	return e.gcs.barrier.RUnlock
}

// shade tells a running collection that ds are about to be referenced.
// No-op when no collection runs.
func (e *Engine) shade(ds ...digest.Digest) {
	if c := e.gcs.running.Load(); c != nil {
		c.Shade(ds...)
	}
}

func (e *Engine) collectorConfig() gc.Config {
	return gc.Config{
		DB:         e.db,
		Blobs:      e.blobs,
		LockDigest: func(d digest.Digest) func() { return e.digestLocks.Lock(digestKey(d)) },
		LockDigests: func(ds []digest.Digest) func() {
			keys := make([]string, len(ds))
			for i, d := range ds {
				keys[i] = digestKey(d)
			}
			return e.digestLocks.LockMany(keys)
		},
		LockUpload: func(id string) func() { return e.digestLocks.Lock(uploadLockKey(id)) },
		UploadLive: func(id string) bool {
			e.upMu.Lock()
			defer e.upMu.Unlock()
			return e.uploads[id] != nil
		},
		Logger: e.log,
	}
}

// CollectGarbage runs one online mark-and-sweep collection (docs/gc.md):
// pushes and pulls go on meanwhile. With opts.DryRun it only plans and the
// report's Plan lists what would go. A second call while one runs fails
// with gc.ErrRunning.
func (e *Engine) CollectGarbage(ctx context.Context, opts gc.Options) (gc.Report, error) {
	if err := e.checkOpen(); err != nil {
		return gc.Report{}, err
	}
	if !e.gcs.runMu.TryLock() {
		return gc.Report{}, gc.ErrRunning
	}
	defer e.gcs.runMu.Unlock()
	if opts.UploadTTL == 0 {
		opts.UploadTTL = e.opts.UploadTTL
	}
	c := gc.NewCollector(e.collectorConfig(), opts)
	if !opts.DryRun {
		e.gcs.running.Store(c)
		defer e.gcs.running.Store(nil)
		// Wait for the operations that may have missed the barrier.
		e.gcs.barrier.Lock()
		e.gcs.barrier.Unlock() //nolint:staticcheck // an empty critical section is the point
	}
	// Crypto-shredded blobs (every wrap under a destroyed key) go first:
	// no read can succeed, whatever references them.
	shredded := 0
	if opts.DryRun {
		err := e.ShreddedBlobs(ctx, func(digest.Digest) error { shredded++; return nil })
		if err != nil {
			return gc.Report{}, err
		}
	} else {
		n, err := e.SweepShredded(ctx)
		if err != nil {
			return gc.Report{}, err
		}
		shredded = n
	}
	r, err := c.Run(ctx)
	r.ShreddedBlobs = shredded
	if err == nil && !r.DryRun {
		e.gcs.statsMu.Lock()
		st := &e.gcs.stats
		st.Collections++
		st.BlobsSwept += int64(r.BlobsSwept)
		st.BytesFreed += r.BytesFreed + r.OrphanBytesFreed
		st.OrphanFilesRemoved += int64(r.OrphanFilesRemoved)
		st.UploadsExpired += int64(r.UploadsExpired)
		last := r
		st.Last = &last
		e.gcs.statsMu.Unlock()
	}
	return r, storageErr(err)
}

// startGC starts the background loops: pull-time flushing always, and the
// gc and lifecycle schedulers when their intervals are set.
func (e *Engine) startGC() {
	ctx, cancel := context.WithCancel(context.Background())
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		<-e.stop
		cancel()
	}()
	e.every(pullFlushInterval, e.flushPulls, e.flushPulls)
	if e.opts.GCInterval > 0 {
		e.every(e.opts.GCInterval, func() {
			if _, err := e.CollectGarbage(ctx, gc.Options{Grace: e.opts.GCGrace}); err != nil && !errors.Is(err, gc.ErrRunning) && ctx.Err() == nil {
				e.log.Warn("scheduled gc failed", "err", err)
			}
		}, nil)
	}
	if e.opts.LifecycleInterval > 0 {
		e.every(e.opts.LifecycleInterval, func() { e.applyAllLifecycles(ctx) }, nil)
	}
}

// every runs fn every d until the engine stops, then final once.
func (e *Engine) every(d time.Duration, fn, final func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				if final != nil {
					final()
				}
				return
			case <-t.C:
				fn()
			}
		}
	}()
}
