package engine

// The engine's caches when several processes share its index
// (PostgreSQL metadata, several registryd replicas): what another
// process commits reaches this one as an index.Change (a notification
// sent in the commit's transaction) and drops what the caches hold of
// it. When the listener's connection is lost, every cache is dropped and
// nothing is cached until it listens again; and every cache is dropped
// every SharedCacheTTL whatever happens, the bound on how long a missed
// notification can leave a change unseen. docs/scale-out.md ("Caches
// across replicas") lists the caches and the bound.
//
// On pebble (one process per store) none of this runs: heads is nil,
// nothing listens, and the writers drop their own caches as before.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/index"
)

// DefaultSharedCacheTTL is the default of Options.SharedCacheTTL.
const DefaultSharedCacheTTL = 5 * time.Second

// listenWait bounds how long Open waits for the listener to listen.
const listenWait = 5 * time.Second

// sharedCaches is the engine's cross-process cache state.
type sharedCaches struct {
	// deaf is set while the listener does not listen: nothing is
	// stored in a cache then (they were emptied when it was set).
	deaf atomic.Bool
	// gen counts drops (dropCaches): a fill stores what it read only if
	// no drop came between its read and its store (fresh).
	gen atomic.Uint64
	// heads caches the HEAD and GET path's tag and manifest lookups;
	// nil when the index is not shared.
	heads *headCache
	// listening is closed at the listener's first Listening(true).
	listening chan struct{}
	once      sync.Once
}

// cacheable reports whether a value read now may be stored in a cache:
// not while the listener is down.
func (e *Engine) cacheable() bool { return !e.shared.deaf.Load() }

// fillGen is the drop generation a cache fill starts under: read it
// before reading the index.
func (e *Engine) fillGen() uint64 { return e.shared.gen.Load() }

// fresh reports whether what a fill read under generation g may be (or
// stay) stored: no drop since, and the listener up. A fill stores, then
// asks again and takes its value back when it is no longer fresh: a drop
// that came between its read and its store then cannot leave it behind.
// The drops take no lock, so that a listener never waits for a writer
// (which may be waiting for the listener's acknowledgement).
func (e *Engine) fresh(g uint64) bool { return !e.shared.deaf.Load() && e.shared.gen.Load() == g }

// startSharedCaches watches the index's changes when it is shared,
// waiting up to wait for the listener to listen (until then nothing is
// cached).
func (e *Engine) startSharedCaches(wait time.Duration) {
	e.shared.deaf.Store(true)
	e.shared.listening = make(chan struct{})
	e.shared.heads = newHeadCache() // before the listener's goroutine reads it
	if !e.db.WatchChanges(changeWatcher{e}) {
		e.shared.heads = nil
		e.shared.deaf.Store(false)
		return
	}
	select {
	case <-e.shared.listening:
	case <-time.After(wait):
		e.log.Warn("not yet listening for other replicas' changes: caches off until then")
	}
	ttl := e.opts.SharedCacheTTL
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(ttl)
		defer t.Stop()
		for {
			select {
			case <-e.stop:
				return
			case <-t.C:
				e.dropCaches(index.ChangeAll)
			}
		}
	}()
}

// changeWatcher passes the index's changes to the engine's caches.
type changeWatcher struct{ e *Engine }

// Changed drops what the caches hold of c. The engine's writers drop
// their own caches under their locks, so a local change only drops the
// head cache (lock-free: Changed must take no lock a committer holds).
func (w changeWatcher) Changed(c index.Change, local bool) {
	if local {
		w.e.shared.heads.drop(c)
		return
	}
	w.e.dropCaches(c)
}

// Listening turns caching off (dropping everything) when the listener
// lost its connection, and back on once it listens again, dropping
// what was read meanwhile first.
func (w changeWatcher) Listening(on bool) {
	e := w.e
	if !on {
		e.shared.deaf.Store(true)
		e.dropCaches(index.ChangeAll)
		return
	}
	e.dropCaches(index.ChangeAll)
	e.shared.deaf.Store(false)
	e.shared.once.Do(func() { close(e.shared.listening) })
}

// dropCaches drops what every cache holds of c: another process changed
// it (or may have). It takes no lock (see fresh).
func (e *Engine) dropCaches(c index.Change) {
	e.shared.gen.Add(1)
	if c.Families&index.FamilyRepository != 0 {
		if c.AnyRepository {
			e.repoStates.gen.Add(1)
			e.repoStates.m.Clear()
			e.policies.Clear()
			e.decisions.m.Clear()
		}
		for _, name := range c.Repositories {
			e.repoChanged(name)
			e.policies.Delete(name)
		}
	}
	if c.Families&index.FamilyRegistry != 0 {
		e.registryPolicy.Store(nil)
		e.accountSettings.Store(nil)
		e.scanConfig.Store(nil)
		e.repl.config.Store(nil)
		e.decisions.m.Clear()
	}
	if c.Families&index.FamilyCacheRule != 0 {
		e.cacheRules.Store(nil)
	}
	e.shared.heads.drop(c)
}

// maxHeadEntries bounds the head cache: past it, it starts over.
const maxHeadEntries = 1 << 16

// headCache caches, per repository, tags' digests and manifests'
// metadata (no payload): a HEAD of a manifest by tag is then answered
// without a database round trip. Only what exists is cached.
//
// A reader takes its repository's *repoHeads before it reads the index
// and stores into that one: a drop replaces it, so what a read from
// before a drop stores lands in the dropped one, never served again.
type headCache struct {
	repos sync.Map     // repo -> *repoHeads
	n     atomic.Int64 // entries stored since the last start over
}

// repoHeads is one repository's cached tags and manifests.
type repoHeads struct {
	tags      sync.Map // tag -> digest.Digest
	manifests sync.Map // digest.Digest -> *index.Manifest (no payload)
}

func newHeadCache() *headCache { return &headCache{} }

// repo returns repository repo's entries.
func (h *headCache) repo(repo string) *repoHeads {
	if v, ok := h.repos.Load(repo); ok {
		return v.(*repoHeads)
	}
	v, _ := h.repos.LoadOrStore(repo, &repoHeads{})
	return v.(*repoHeads)
}

// counted counts one stored entry, starting over past the bound.
func (h *headCache) counted() {
	if h.n.Add(1) > maxHeadEntries {
		h.repos.Clear()
		h.n.Store(1)
	}
}

// drop drops what the cache holds of c's repositories.
func (h *headCache) drop(c index.Change) {
	if h == nil || c.Families&(index.FamilyRepository|index.FamilyTag|index.FamilyManifest) == 0 {
		return
	}
	if c.AnyRepository {
		h.repos.Clear()
		h.n.Store(0)
		return
	}
	for _, r := range c.Repositories {
		h.repos.Delete(r)
	}
}

// tag returns the digest tag names in repository rh, reading the index
// on a miss.
func (e *Engine) cachedTag(ctx context.Context, rh *repoHeads, repo, tag string) (digest.Digest, error) {
	if v, ok := rh.tags.Load(tag); ok {
		return v.(digest.Digest), nil
	}
	d, err := e.dbFor(ctx).Tag(repo, tag)
	if err != nil {
		return "", err
	}
	if e.cacheable() {
		rh.tags.Store(tag, d)
		e.shared.heads.counted()
	}
	return d, nil
}

// cachedManifestMeta returns manifest d's record without its payload,
// reading the index on a miss.
func (e *Engine) cachedManifestMeta(ctx context.Context, rh *repoHeads, repo string, d digest.Digest) (*index.Manifest, error) {
	if v, ok := rh.manifests.Load(d); ok {
		return v.(*index.Manifest), nil
	}
	m, err := e.dbFor(ctx).ManifestMeta(repo, d)
	if err != nil {
		return nil, err
	}
	if e.cacheable() {
		rh.manifests.Store(d, m)
		e.shared.heads.counted()
	}
	return m, nil
}
