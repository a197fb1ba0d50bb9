package engine

// The store: Open, Close, and the state every operation shares.

import (
	"context"
	// go-digest registers no hash function itself: digests computed or
	// verified in this package need these two.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/engine/internal/audit"
	"github.com/berthstore/berth/engine/internal/iam"
	"github.com/berthstore/berth/engine/internal/keycache"
	"github.com/berthstore/berth/engine/internal/locks"
	"github.com/berthstore/berth/index"
	"github.com/berthstore/berth/internal/vfsutil"
)

// Engine is an open store: blob files under <dir>/blobs, metadata in
// pebble under <dir>/index. It is safe for concurrent use. One process
// owns a store (pebble holds an exclusive lock).
type Engine struct {
	dir   string
	opts  Options
	log   *slog.Logger
	clock Clock
	// blobs is the file store: the hot tier's blob files, or the object
	// store's spool when the hot tier is in a bucket.
	blobs *blob.Store
	// hot is the hot tier's blob backend: blobs, or the object store.
	hot blobBackend
	// sharedUploads: other replicas may continue this store's upload
	// sessions (blobs in a bucket, metadata in a shared database), so a
	// live session handle is checked against its record before each use
	// (uploads.go).
	sharedUploads bool
	// archive is the archive tier's blob store: files in
	// Options.ArchiveDir, or the hot tier's bucket under its own prefix.
	archive blobBackend
	db      *index.DB
	keys    crypt.KeyProvider
	dkeys   *keycache.Cache

	repoLocks locks.Striped
	// coord is the coordinator of the replicas sharing the store (nil:
	// one process owns it; coordinator.go).
	coord *index.Coordinator
	// policies caches what access decisions need of each repository
	// (*repoAccess: its ARN, parsed policy and resource tags; policies.go),
	// by name, filled and dropped under the repository's lock.
	policies sync.Map
	// decisions caches Authorize's decisions on repositories
	// (decisions.go).
	decisions decisions
	// repoStates caches the decoded repository records (repostates.go).
	repoStates repoStates
	// shared keeps the caches right when other processes share the index
	// (sharedcaches.go).
	shared sharedCaches
	// registryPolicy caches the registry policy (nil: read it again),
	// written under registryMu (policies.go).
	registryMu     sync.Mutex
	registryPolicy atomic.Pointer[registryPolicyEntry]
	// accountSettings caches the account settings (nil: read them
	// again), written under registryMu (accountsettings.go).
	accountSettings atomic.Pointer[accountSettings]
	// defaultKeyPolicy is the key policy of every key (access.go).
	keyPolicyOnce    sync.Once
	defaultKeyPolicy *iam.Policy
	// cacheRules caches the pull-through cache rules (nil: read them
	// again; filled and dropped under rulesMu; cacherules.go).
	rulesMu    sync.Mutex
	cacheRules atomic.Pointer[[]PullThroughCacheRule]
	// putsInFlight counts PutManifest calls under way: one alone commits
	// with sync under its repository's lock; several apply under the lock
	// and share fsyncs after it (engine/manifests.go).
	putsInFlight atomic.Int32
	digestLocks  locks.Striped
	gcs          gcState     // gc write barrier, schedulers (gc.go), pull times (pulls.go)
	kops         keyOpsState // key operations (keys.go), rewrap (rewrap.go)
	tiers        tierState   // the archive tier's worker (tiers.go)

	upMu    sync.Mutex
	uploads map[string]*upload // live handles by id
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup
	prepare chan prepareJob // see startPreparer

	statsCache storeStatsCache

	// audit is the audit log (audit.go), nil with Options.DisableAudit;
	// auditCounts count its records by decision (Allow, ExplicitDeny,
	// ImplicitDeny) since Open.
	vulns      vulnState                             // vulnerability database imports (vulndb.go)
	scans      scanState                             // the scan queue's workers (scans.go)
	pushes     pushActivity                          // clients' writes in flight, which scans yield to (pushactivity.go)
	scanConfig atomic.Pointer[ScanningConfiguration] // registry scanning configuration, cached (scanconfig.go)

	audit       *audit.Log
	auditDir    string
	auditCounts [3]atomic.Uint64

	ev   eventsState // events: queue, router, webhooks (events.go)
	repl replState   // replication: configuration, queue, statuses (replication*.go)
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts *Options) (*Engine, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// Made with its parents synced: the keyring and the store's identity
	// written in it next are durable only if its name is.
	if err := vfsutil.MkdirAll(vfs.Default, dir, 0o700); err != nil {
		return nil, storageErr(fmt.Errorf("engine: %w", err))
	}
	keys, closeKeys, err := openKeyProvider(dir, &o)
	if errors.Is(err, ErrKeyringMissing) {
		return nil, err
	}
	if err != nil {
		return nil, storageErr(fmt.Errorf("engine: %w", err))
	}
	// A shared database opens first: it holds the identity the bucket
	// is claimed under, which a replica's new data directory adopts.
	var db *index.DB
	if o.Metadata != "" {
		if db, err = openIndex(dir, &o); err != nil {
			closeKeys()
			return nil, storageErr(fmt.Errorf("engine: %w", err))
		}
		if err := adoptStoreIdentity(db, dir); err != nil {
			db.Close()
			closeKeys()
			return nil, err
		}
	}
	hot, bs, err := openHot(context.Background(), dir, &o)
	if err != nil {
		if db != nil {
			db.Close()
		}
		closeKeys()
		return nil, storageErr(fmt.Errorf("engine: %w", err))
	}
	adir, err := archiveDir(dir, &o)
	if err != nil {
		if db != nil {
			db.Close()
		}
		hot.Close()
		closeKeys()
		return nil, err
	}
	as, err := openArchive(context.Background(), dir, adir, &o)
	if err != nil {
		if db != nil {
			db.Close()
		}
		hot.Close()
		closeKeys()
		return nil, storageErr(fmt.Errorf("engine: archive tier: %w", err))
	}
	if db == nil {
		if db, err = openIndex(dir, &o); err != nil {
			as.Close()
			hot.Close()
			closeKeys()
			return nil, storageErr(fmt.Errorf("engine: %w", err))
		}
	}
	e := &Engine{
		dir: dir, opts: o, log: o.Logger, clock: o.Clock, blobs: bs, hot: hot, archive: as, db: db, keys: keys,
		dkeys:         keycache.New(o.KeyCacheSize, o.KeyCacheTTL, o.Clock.Now),
		uploads:       map[string]*upload{},
		stop:          make(chan struct{}),
		sharedUploads: o.ObjectStore != nil && o.Metadata != "",
	}
	if !o.DisableAudit {
		// After the index: pebble's lock has made sure that no other
		// process holds the store (and so its audit log).
		if e.audit, e.auditDir, err = openAudit(dir, &o); err != nil {
			db.Close()
			as.Close()
			bs.Close()
			closeKeys()
			return nil, storageErr(err)
		}
	}
	if err := e.openReplication(); err != nil {
		if e.audit != nil {
			e.audit.Close()
		}
		db.Close()
		bs.Close()
		closeKeys()
		return nil, storageErr(err)
	}
	if err := e.openEvents(); err != nil {
		if e.audit != nil {
			e.audit.Close()
		}
		db.Close()
		hot.Close()
		closeKeys()
		return nil, storageErr(err)
	}
	if err := e.openCoordinator(); err != nil {
		e.closeEvents()
		if e.audit != nil {
			e.audit.Close()
		}
		db.Close()
		hot.Close()
		closeKeys()
		return nil, storageErr(fmt.Errorf("engine: %w", err))
	}
	if err := e.checkSharedKeyring(context.Background()); err != nil {
		e.closeEvents()
		if e.audit != nil {
			e.audit.Close()
		}
		db.Close()
		hot.Close()
		closeKeys()
		return nil, err
	}
	e.startSharedCaches(listenWait)
	e.startReaper()
	e.startPreparer()
	e.startGC()
	e.startKeyOps(closeKeys)
	e.startTiers()
	e.startEvents()
	e.startScanner()
	e.startSharedPoll()
	return e, nil
}

// Close parks every open upload (checkpointed, resumable after the next
// Open), closes the audit log (its appends under way finish first) and
// closes the store.
func (e *Engine) Close() error {
	e.upMu.Lock()
	if e.closed {
		e.upMu.Unlock()
		return nil
	}
	e.closed = true
	live := e.uploads
	e.uploads = nil
	e.upMu.Unlock()
	close(e.stop)
	e.wg.Wait()
	e.closeEvents()
	var errs []error
	for _, u := range live {
		u.mu.Lock()
		if err := u.park(context.Background()); err != nil {
			errs = append(errs, err)
		}
		u.mu.Unlock()
	}
	if e.audit != nil {
		errs = append(errs, e.audit.Close())
	}
	errs = append(errs, e.hot.Close(), e.archive.Close(), e.db.Close(), e.closeKeyProvider())
	return errors.Join(errs...)
}

// Dir is the store's directory.
func (e *Engine) Dir() string { return e.dir }

func (e *Engine) checkOpen() error {
	e.upMu.Lock()
	defer e.upMu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return nil
}

// goBackground runs fn in a goroutine that Close waits for, with a
// context cancelled when the engine closes. It reports false (and runs
// nothing) if the engine is closed.
func (e *Engine) goBackground(fn func(ctx context.Context)) bool {
	e.upMu.Lock()
	if e.closed {
		e.upMu.Unlock()
		return false
	}
	e.wg.Add(1)
	e.upMu.Unlock()
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-e.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		fn(ctx)
	}()
	return true
}

func digestKey(d digest.Digest) string { return string(d) }
