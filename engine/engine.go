package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berthstore/berth/blob"
	"github.com/berthstore/berth/crypt"
	"github.com/berthstore/berth/index"
)

// Options configure a store. Open clones them and fills zero values with
// the defaults each field names (EnsureDefaults); Validate reports every
// problem at once.
type Options struct {
	// FrameSize is the logical size of a blob frame. Default 1 MiB.
	FrameSize int
	// DisableEncryption stores new blobs unsealed (integrity-checked by
	// CRC-32C only). Default false: envelope encryption on, as in ECR.
	DisableEncryption bool
	// DisableCompression stores every frame raw. Default false: zstd
	// where it pays.
	DisableCompression bool
	// MaxBlobSize bounds one blob. Default 52,000 MiB (ECR's layer limit).
	MaxBlobSize int64
	// MaxManifestSize bounds one manifest. Default 4 MiB.
	MaxManifestSize int64
	// CreateOnPush creates a repository on push with default settings
	// when no creation template with CREATE_ON_PUSH matches its name.
	// Default false: ECR behaviour (NAME_UNKNOWN).
	CreateOnPush bool
	// AllowSparse accepts sparse manifests (OCI distribution-spec
	// "sparse" data): image manifests whose layers, and indexes whose
	// child manifests, the repository does not hold. The config blob is
	// still required. Default false: every reference must be present, as
	// ECR requires.
	AllowSparse bool
	// PrepareLayersOnPush builds the tables of contents of a pushed
	// image's layers in the background (what the FUSE view needs to list
	// it at once). Default false: built on first use.
	PrepareLayersOnPush bool
	// KeyProvider holds the key-encryption keys. Default: the keyring
	// file <dir>/keyring.json, created on first open (mode 0600).
	KeyProvider crypt.KeyProvider
	// KeyCacheTTL bounds how long an unwrapped data key stays in memory.
	// Default 5 minutes.
	KeyCacheTTL time.Duration
	// KeyCacheSize bounds how many unwrapped data keys stay in memory.
	// Default 4096.
	KeyCacheSize int
	// PKCS11Module is the path of a PKCS#11 module (e.g.
	// /usr/lib/softhsm/libsofthsm2.so) serving the key names that are
	// pkcs11: URIs, beside the keyring. Needs a build with cgo and
	// -tags pkcs11. Default "": no HSM. Ignored when KeyProvider is set.
	PKCS11Module string
	// PKCS11Token is the label of the HSM token holding the keys.
	// Default "berth".
	PKCS11Token string
	// PKCS11PIN is the token's user PIN. Default "".
	PKCS11PIN string
	// IdleUploadTimeout closes in-memory handles of uploads idle this
	// long (they stay resumable). Default 10 minutes.
	IdleUploadTimeout time.Duration
	// GCInterval runs an online garbage collection this often (engine/gc.go,
	// docs/gc.md). Default 0: collections run only on demand (CollectGarbage).
	GCInterval time.Duration
	// GCGrace is the grace period of scheduled collections. Default 0:
	// gc.DefaultGrace (1 h).
	GCGrace time.Duration
	// UploadTTL expires upload sessions idle this long at each collection.
	// Default 0: gc.DefaultUploadTTL (7 days).
	UploadTTL time.Duration
	// LifecycleInterval applies every repository's lifecycle policy this
	// often. Default 0: only on demand (LifecycleApply).
	LifecycleInterval time.Duration
	// IndexCacheSize is the size in bytes of the index's block cache
	// (pebble). Default 0: index.DefaultCacheSize (64 MiB), what a daemon
	// serving reads wants. The one-shot gc and fsck commands scan the index
	// once and set a small one (docs/gc.md, Memory).
	IndexCacheSize int64
	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.FrameSize == 0 {
		o.FrameSize = 1 << 20
	}
	if o.MaxBlobSize == 0 {
		o.MaxBlobSize = 52000 << 20
	}
	if o.MaxManifestSize == 0 {
		o.MaxManifestSize = 4 << 20
	}
	if o.KeyCacheTTL == 0 {
		o.KeyCacheTTL = 5 * time.Minute
	}
	if o.KeyCacheSize == 0 {
		o.KeyCacheSize = 4096
	}
	if o.IdleUploadTimeout == 0 {
		o.IdleUploadTimeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every out-of-range option.
func (o *Options) Validate() error {
	var errs []error
	if o.FrameSize < blob.MinFrameSize || o.FrameSize > blob.MaxFrameSize {
		errs = append(errs, fmt.Errorf("%w: FrameSize %d outside [%d, %d]", ErrInvalidArgument, o.FrameSize, blob.MinFrameSize, blob.MaxFrameSize))
	}
	if o.MaxBlobSize < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxBlobSize %d", ErrInvalidArgument, o.MaxBlobSize))
	}
	if o.MaxManifestSize < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxManifestSize %d", ErrInvalidArgument, o.MaxManifestSize))
	}
	if o.IndexCacheSize < 0 {
		errs = append(errs, fmt.Errorf("%w: IndexCacheSize %d", ErrInvalidArgument, o.IndexCacheSize))
	}
	if o.KeyCacheSize < 0 || o.KeyCacheTTL < 0 {
		errs = append(errs, fmt.Errorf("%w: negative key cache bound", ErrInvalidArgument))
	}
	return errors.Join(errs...)
}

// Engine is an open store: blob files under <dir>/blobs, metadata in
// pebble under <dir>/index. It is safe for concurrent use. One process
// owns a store (pebble holds an exclusive lock).
type Engine struct {
	dir   string
	opts  Options
	log   *slog.Logger
	blobs *blob.Store
	db    *index.DB
	keys  crypt.KeyProvider
	dkeys *keyCache

	repoLocks stripedLocks
	// policies caches the parsed repository policies by repository name
	// (policyEntry; reposettings.go), filled and dropped under the
	// repository's lock.
	policies sync.Map
	// cacheRules caches the pull-through cache rules (nil: read them
	// again; filled and dropped under rulesMu; pullthrough.go).
	rulesMu    sync.Mutex
	cacheRules atomic.Pointer[[]PullThroughCacheRule]
	// putsInFlight counts PutManifest calls under way: one alone commits
	// with sync under its repository's lock; several apply under the lock
	// and share fsyncs after it (engine/manifests.go).
	putsInFlight atomic.Int32
	digestLocks  stripedLocks
	gcs          gcState     // gc write barrier, schedulers, pull times (gc.go)
	kops         keyOpsState // key rotation, rewrap, shredding (keyops.go)

	upMu    sync.Mutex
	uploads map[string]*upload // live handles by id
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup
	prepare chan prepareJob // see startPreparer

	statsCache storeStatsCache
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, storageErr(fmt.Errorf("engine: %w", err))
	}
	keys, closeKeys, err := openKeyProvider(dir, &o)
	if err != nil {
		return nil, storageErr(fmt.Errorf("engine: %w", err))
	}
	bs, err := blob.Open(dir, &blob.Options{FrameSize: o.FrameSize, DisableCompression: o.DisableCompression})
	if err != nil {
		closeKeys()
		return nil, storageErr(fmt.Errorf("engine: %w", err))
	}
	db, err := index.Open(filepath.Join(dir, "index"), &index.Options{Logger: o.Logger, CacheSize: o.IndexCacheSize})
	if err != nil {
		bs.Close()
		closeKeys()
		return nil, storageErr(fmt.Errorf("engine: %w", err))
	}
	e := &Engine{
		dir: dir, opts: o, log: o.Logger, blobs: bs, db: db, keys: keys,
		dkeys:   newKeyCache(o.KeyCacheSize, o.KeyCacheTTL),
		uploads: map[string]*upload{},
		stop:    make(chan struct{}),
	}
	e.repoLocks.init()
	e.digestLocks.init()
	e.wg.Add(1)
	go e.reapIdleUploads()
	e.startPreparer()
	e.startGC()
	e.startKeyOps(closeKeys)
	return e, nil
}

// Close parks every open upload (checkpointed, resumable after the next
// Open) and closes the store.
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
	var errs []error
	for _, u := range live {
		u.mu.Lock()
		if err := u.park(context.Background()); err != nil {
			errs = append(errs, err)
		}
		u.mu.Unlock()
	}
	errs = append(errs, e.blobs.Close(), e.db.Close(), e.closeKeyProvider())
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

// stripedLocks serialises read-modify-write cycles per name or digest
// without a map entry per key.
type stripedLocks struct {
	seed  maphash.Seed
	locks [256]sync.Mutex
}

func (s *stripedLocks) init() { s.seed = maphash.MakeSeed() }

func (s *stripedLocks) lock(key string) func() {
	m := &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// storageErr adds ErrStorageFull to errors caused by a full device.
func storageErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, blob.ErrNoSpace) || errors.Is(err, index.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) {
		if !errors.Is(err, ErrStorageFull) {
			return fmt.Errorf("%w: %w", ErrStorageFull, err)
		}
	}
	return err
}

// blobErr translates package blob's errors into the engine's.
func blobErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, blob.ErrDigestMismatch), errors.Is(err, blob.ErrUnsupportedDigest):
		return fmt.Errorf("%w: %w", ErrDigestInvalid, err)
	case errors.Is(err, blob.ErrSizeMismatch):
		return fmt.Errorf("%w: %w", ErrSizeInvalid, err)
	case errors.Is(err, blob.ErrTooLarge):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case errors.Is(err, blob.ErrCorrupt):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case errors.Is(err, blob.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrBlobUnknown, err)
	case errors.Is(err, blob.ErrBadState):
		return fmt.Errorf("%w: %w", ErrBlobUploadInvalid, err)
	}
	return storageErr(err)
}

// keyErr translates key provider errors: an unreachable or disabled key
// is retryable (ErrKeyUnavailable); a destroyed one is lost data.
func keyErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, crypt.ErrUnavailable), errors.Is(err, crypt.ErrKeyDisabled):
		return fmt.Errorf("%w: %w", ErrKeyUnavailable, err)
	case errors.Is(err, crypt.ErrKeyDestroyed):
		return fmt.Errorf("%w: %w", ErrKeyDestroyed, err)
	case errors.Is(err, crypt.ErrUnauthenticated):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

func digestKey(d digest.Digest) string { return string(d) }
