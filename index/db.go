package index

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/berthstore/berth/internal/vfsutil"
)

// SchemaVersion is the version of the key schema and value formats written by
// this package and the engine above it. Open records it in a new store,
// raises an older store's to it (what the older versions wrote is still
// read; docs/keys.md), and refuses a store written by a newer version.
//
// Versions: 1, the first; 2, the engine writes versioned settings,
// template and pull-through cache rule records, which version 1's code
// would read as empty settings, so a store opened by version 2 refuses
// version 1's code; 3, the reverse link index (L keys, written with every
// link), built from the links when an older store is opened (migrate.go),
// so that code which would write links without it refuses the store; 4,
// the archive tier: manifest records with a status and archive times and
// blob records with a tier (value format 2, written only when those are
// not zero), and tier jobs (A keys), which version 3's code would read as
// corrupt or ignore, so that it refuses the store.
const SchemaVersion uint32 = 4

// memTableStopWrites is pebble's MemTableStopWritesThreshold for the index.
const memTableStopWrites = 4

// Defaults of Options.
const (
	// DefaultCacheSize is the default block cache size (64 MiB).
	DefaultCacheSize int64 = 64 << 20
	// DefaultMemTableSize is the default memtable size (4 MiB): metadata
	// records are small, and a small memtable keeps RSS and the WAL short.
	DefaultMemTableSize uint64 = 4 << 20
	// DefaultCloseTimeout bounds how long Close waits for pebble after a
	// fatal error.
	DefaultCloseTimeout = 10 * time.Second
)

// Options configure Open. The zero value is valid; EnsureDefaults fills in
// zero fields.
type Options struct {
	// Logger receives the index's own log lines and pebble's, which are
	// quietened: pebble's informational lines go to Debug, its errors to
	// Error. Default: slog.Default().
	Logger *slog.Logger
	// CacheSize is the size in bytes of pebble's block cache. Default
	// DefaultCacheSize (64 MiB).
	CacheSize int64
	// MemTableSize is the size in bytes of one pebble memtable; up to two are
	// kept in memory before writes stall. Default DefaultMemTableSize (4 MiB).
	MemTableSize uint64
	// MinFreeBytes is the free space that must remain on the file system of
	// the store for a commit to be attempted; below it Commit returns
	// ErrNoSpace without touching pebble, so that pebble itself never runs
	// into ENOSPC on a WAL write (which it treats as fatal, see docs/keys.md).
	// Zero means the default: max(64 MiB, 4*MemTableSize + 1 MiB), capped at
	// a quarter of the file system's size. A negative value disables the
	// check.
	MinFreeBytes int64
	// BallastSize is the size of the ballast file kept in the store
	// directory and deleted when a pebble write hits ENOSPC despite the
	// MinFreeBytes check (see ballast.go). Zero means the default: min(16 MiB,
	// a sixteenth of the file system). A negative value disables it.
	BallastSize int64
	// FS is the file system the store is kept on, under pebble and the
	// ballast. Default vfs.Default (the operating system's). Tests give
	// one that fills up or fails on demand (internal/faultfs).
	FS vfs.FS
	// InMemory keeps the whole store in memory (pebble's vfs.NewMem); dir is
	// then ignored. For tests.
	InMemory bool
	// CloseTimeout bounds how long Close waits for pebble to close after a
	// fatal error left pebble's commit pipeline stuck. Default
	// DefaultCloseTimeout.
	CloseTimeout time.Duration
}

// EnsureDefaults fills in the zero fields of o with their defaults and
// returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	return o
}

// DB is the metadata index of one store. It is safe for concurrent use.
// WithContext makes a view of it whose database calls carry a caller's
// context.
type DB struct {
	*dbState
	// ctx is the context this view's reads and commits pass to the
	// database (WithContext); nil: context.Background().
	ctx context.Context
}

// WithContext returns a view of db whose reads, scans and batches pass
// ctx to the database: on PostgreSQL a cancelled ctx cancels the view's
// SQL and the call fails with ctx's error. Pebble ignores it (a caller
// may use db itself there: the view costs an allocation). The view
// shares everything else with db, closing included.
func (db *DB) WithContext(ctx context.Context) *DB {
	return &DB{dbState: db.dbState, ctx: ctx}
}

// callCtx is the context of db's database calls.
func (db *DB) callCtx() context.Context {
	if db.ctx != nil {
		return db.ctx
	}
	return context.Background()
}

// dbState is a DB's state, shared by its views.
type dbState struct {
	dir  string
	opts Options
	fs   vfs.FS
	// base is the file system under fs's disk-full handling: the ballast
	// is written and removed on it, since fs's own calls wait while its
	// disk-full callback (which removes the ballast) runs.
	base vfs.FS
	log  *slog.Logger

	// mu guards pdb against use after Close: every call holds it for
	// reading, Close for writing.
	mu     sync.RWMutex
	closed bool
	pdb    *pebble.DB
	// kv is the store under the typed records: pdb, or PostgreSQL.
	kv kv

	// failed is set once pebble reported a fatal error; every later write
	// returns it (it wraps ErrFailed and, for a full disk, ErrNoSpace).
	failed atomic.Pointer[error]
	// ballastGone is set when the ballast was released on ENOSPC and not
	// yet recreated; commits are refused meanwhile.
	ballastGone atomic.Bool
}

// Open opens (creating if needed) the index stored in dir. opts may be nil.
func Open(dir string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	db := &DB{dbState: &dbState{dir: dir, opts: o, log: o.Logger.With("component", "index")}}
	if o.InMemory {
		db.fs = vfs.NewMem()
		db.base = db.fs
		db.dir = ""
	} else {
		base := o.FS
		if base == nil {
			base = vfs.Default
		}
		db.base = base
		db.fs = vfs.OnDiskFull(base, db.onDiskFull)
		if err := vfsutil.MkdirAll(db.fs, dir, 0o755); err != nil {
			return nil, fmt.Errorf("index: open %s: %w", dir, err)
		}
		if err := db.checkOpenSpace(); err != nil {
			return nil, err
		}
	}
	po := db.pebbleOptions()
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	po.Cache = cache
	pdb, err := pebble.Open(db.dir, po)
	if err != nil {
		if isNoSpace(err) {
			return nil, fmt.Errorf("index: open %s: %w: %w", dir, ErrNoSpace, err)
		}
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	db.pdb = pdb
	db.kv = pebbleKV{db}
	if err := db.checkSchema(); err != nil {
		_ = pdb.Close()
		return nil, err
	}
	db.ballastGone.Store(!db.ensureBallast())
	return db, nil
}

// pebbleOptions tunes pebble for the index: small values, point gets and
// short prefix scans.
func (db *DB) pebbleOptions() *pebble.Options {
	po := &pebble.Options{
		FS:                          db.fs,
		MemTableSize:                db.opts.MemTableSize,
		MemTableStopWritesThreshold: memTableStopWrites,
		L0CompactionThreshold:       2,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      &pebbleLogger{db: db},
		// pebble's default (16 GiB) would make it delete obsolete files
		// without pacing on every small disk; deletion pacing is off by
		// default anyway.
		FreeSpaceThresholdBytes: 64 << 20,
	}
	el := &pebble.EventListener{
		BackgroundError: func(err error) {
			db.log.Warn("pebble background error", "err", err, "nospace", isNoSpace(err))
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			db.log.Warn("pebble write stall", "reason", info.Reason)
		},
	}
	po.EventListener = el
	for i := range po.Levels {
		// Bloom filters make a Get of an absent key (HEAD of a missing tag or
		// blob, existence checks during push) skip the tables.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	po.EnsureDefaults()
	return po
}

// checkSchema writes the schema version into a new store, brings an older
// store to SchemaVersion (migrate) and refuses a store written by a newer,
// unknown version.
func (db *DB) checkSchema() error {
	v, closer, err := db.kv.get(context.Background(), metaKey)
	if isNotFound(err) {
		b := db.kv.newBatch()
		defer func() { _ = b.close() }()
		if err := b.set(metaKey, encodeMeta(SchemaVersion)); err != nil {
			return fmt.Errorf("index: write schema version: %w", err)
		}
		return db.kv.apply(context.Background(), b, true)
	}
	if err != nil {
		return fmt.Errorf("index: read schema version: %w", err)
	}
	ver, err := decodeMeta(v)
	_ = closer.Close()
	if err != nil {
		return err
	}
	if ver > SchemaVersion {
		return fmt.Errorf("index: store schema version %d is newer than supported %d: %w",
			ver, SchemaVersion, ErrCorrupt)
	}
	if ver < SchemaVersion {
		return db.migrate(ver)
	}
	return nil
}

func encodeMeta(ver uint32) []byte {
	e := encoder{b: []byte{valueV1}}
	e.uvarint(uint64(ver))
	return e.b
}

func decodeMeta(v []byte) (uint32, error) {
	d := newDecoder("store metadata", v)
	ver := d.uvarint()
	if err := d.end("store metadata"); err != nil {
		return 0, err
	}
	if ver == 0 || ver > 1<<31 {
		return 0, fmt.Errorf("store metadata: schema version %d: %w", ver, ErrCorrupt)
	}
	return uint32(ver), nil
}

// Close closes the DB. Batches not yet committed are discarded when closed.
// After a fatal pebble error Close gives pebble at most
// Options.CloseTimeout; if pebble is stuck, Close returns an error and the
// store directory stays locked until the process exits.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return fmt.Errorf("index: close: %w", ErrClosed)
	}
	db.closed = true
	if db.pdb == nil {
		return db.kv.close()
	}
	if db.failed.Load() == nil {
		if err := db.pdb.Close(); err != nil {
			return fmt.Errorf("index: close: %w", err)
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("pebble panic on close: %v", r)
			}
		}()
		done <- db.pdb.Close()
	}()
	select {
	case err := <-done:
		if err != nil {
			db.log.Warn("close after fatal error", "err", err)
		}
		return nil
	case <-time.After(db.opts.CloseTimeout):
		return fmt.Errorf("index: close: pebble stuck after fatal error: %w", ErrFailed)
	}
}

// Failed returns the fatal error that stopped writes, or nil. After a fatal
// error the DB must be closed and opened again before it accepts writes.
func (db *DB) Failed() error {
	if p := db.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// setFailed records the first fatal error.
func (db *DB) setFailed(cause error) error {
	var err error
	if isNoSpace(cause) {
		err = fmt.Errorf("%w: %w: %v", ErrFailed, ErrNoSpace, cause)
	} else {
		err = fmt.Errorf("%w: %v", ErrFailed, cause)
	}
	if db.failed.CompareAndSwap(nil, &err) {
		db.log.Error("index stopped accepting writes", "err", cause)
		return err
	}
	return *db.failed.Load()
}

// fatalPanic is what pebbleLogger.Fatalf panics with on the commit path;
// apply recovers it.
type fatalPanic struct{ err error }

// apply commits a pebble batch, turning pebble's fatal commit errors (which
// it reports through Logger.Fatalf or panics with) into errors. Callers hold
// db.mu for reading.
func (db *DB) apply(b *pebble.Batch, sync bool) (err error) {
	if f := db.Failed(); f != nil {
		return f
	}
	if err := db.checkSpace(b.Len()); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			var cause error
			switch v := r.(type) {
			case fatalPanic:
				cause = v.err
			case error:
				cause = v
			default:
				cause = fmt.Errorf("%v", v)
			}
			err = db.setFailed(cause)
		}
	}()
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := db.pdb.Apply(b, wo); err != nil {
		if isNoSpace(err) {
			return fmt.Errorf("index: commit: %w: %v", ErrNoSpace, err)
		}
		return fmt.Errorf("index: commit: %w", err)
	}
	return nil
}

// minFree returns the free-space reserve for a file system of total bytes.
func (db *DB) minFree(total uint64) int64 {
	if db.opts.MinFreeBytes != 0 {
		return db.opts.MinFreeBytes
	}
	// At least the memtables that may wait for a flush (their WAL data
	// must be flushable, also on the next Open), plus room for MANIFEST and
	// compaction output.
	r := max(int64(64<<20), int64(memTableStopWrites*db.opts.MemTableSize+1<<20))
	if q := int64(total / 4); q < r {
		r = q
	}
	return r
}

// checkSpace refuses a commit of n bytes when it would eat into the
// free-space reserve.
func (db *DB) checkSpace(n int) error {
	if db.opts.InMemory {
		return nil
	}
	if db.opts.MinFreeBytes >= 0 {
		du, err := db.fs.GetDiskUsage(db.dir)
		if err == nil {
			reserve := db.minFree(du.TotalBytes)
			if int64(du.AvailBytes)-int64(n) < reserve {
				return fmt.Errorf("index: commit: %d bytes free, %d reserved: %w", du.AvailBytes, reserve, ErrNoSpace)
			}
		}
	}
	if db.ballastGone.Load() {
		if !db.ensureBallast() {
			return fmt.Errorf("index: commit: disk was full, waiting for room for the ballast: %w", ErrNoSpace)
		}
		db.ballastGone.Store(false)
		db.log.Info("disk space recovered, commits accepted again", "dir", db.dir)
	}
	return nil
}

// pebbleLogger routes pebble's log lines to slog. Fatalf does not exit the
// process: it records the error so that the DB refuses further writes, and
// on the commit path it panics so that apply turns the failure into an error
// instead of pebble reporting success.
type pebbleLogger struct{ db *DB }

// Infof implements pebble.Logger at slog debug level.
func (l *pebbleLogger) Infof(format string, args ...any) {
	l.db.log.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)), "src", "pebble")
}

// Errorf implements pebble.Logger at slog error level.
func (l *pebbleLogger) Errorf(format string, args ...any) {
	l.db.log.Error(strings.TrimSpace(fmt.Sprintf(format, args...)), "src", "pebble")
}

// Fatalf implements pebble.Logger without exiting the process.
func (l *pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	// Recover the wrapped cause so that ENOSPC is recognised.
	for _, a := range args {
		if e, ok := a.(error); ok {
			err = fmt.Errorf("%s: %w", err.Error(), e)
			break
		}
	}
	l.db.setFailed(err)
	if strings.HasPrefix(format, "pebble: fatal commit error") {
		panic(fatalPanic{err: err})
	}
	// Elsewhere (MANIFEST writes during flushes and compactions) pebble
	// returns the error after calling Fatalf; the DB refuses writes from now
	// on and a reopen recovers from what is on disk.
}
