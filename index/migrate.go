package index

import (
	"context"
	"fmt"
	"time"
)

// Migrations: what Open does to a store of an older schema version before
// it raises the version (docs/keys.md, "Schema versions").
//
// A step runs before the version that needs it is written: a crash, a
// failure or a full disk in the middle leaves the store at its old version,
// and the next Open runs the step again from the start. Every step is
// therefore idempotent, and rebuilds what it derives rather than trusting
// what an interrupted run (or the old version's code, which may open the
// store in between and knows nothing of the derived keys) left.

// migration is one step: the version it brings a store to and what it does.
type migration struct {
	to   uint32
	what string
	run  func(db *DB) (int, error)
}

// migrations are the steps, in version order. A version without a step
// (2: the engine's records, read in every version; 4: the archive tier's
// record formats and tier jobs, which need nothing derived) only raises
// the number.
var migrations = []migration{
	{to: 3, what: "reverse link index", run: (*DB).buildReverseLinks},
}

// migrationBatchKeys is the number of keys a migration writes per batch.
var migrationBatchKeys = 4096

// migrationBatchHook, when set (by tests), runs after each committed
// migration batch; an error stops the migration there, as a crash would.
var migrationBatchHook func(batches int) error

// migrate brings a store at version from to SchemaVersion: each step
// newer than from, each followed by a synced write of the version it
// reaches.
func (db *DB) migrate(from uint32) error {
	ver := from
	for _, m := range migrations {
		if m.to <= ver {
			continue
		}
		t0 := time.Now()
		n, err := m.run(db)
		if err != nil {
			return fmt.Errorf("index: migrate schema version %d to %d (%s): %w", ver, m.to, m.what, err)
		}
		if err := db.writeVersion(m.to); err != nil {
			return fmt.Errorf("index: raise schema version %d to %d: %w", ver, m.to, err)
		}
		db.opts.Logger.Info("index: schema version raised", "from", ver, "to", m.to, "migration", m.what,
			"keys", n, "duration", time.Since(t0))
		ver = m.to
	}
	if ver < SchemaVersion {
		if err := db.writeVersion(SchemaVersion); err != nil {
			return fmt.Errorf("index: raise schema version %d to %d: %w", ver, SchemaVersion, err)
		}
		db.opts.Logger.Info("index: schema version raised", "from", ver, "to", SchemaVersion)
	}
	return nil
}

// writeVersion records ver as the store's schema version, synced (which
// also makes every migration batch before it durable: they share the WAL).
func (db *DB) writeVersion(ver uint32) error {
	b := db.kv.newBatch()
	defer func() { _ = b.close() }()
	if err := b.set(metaKey, encodeMeta(ver)); err != nil {
		return err
	}
	return db.kv.apply(context.Background(), b, true)
}

// buildReverseLinks writes the reverse link index entry (L 0 <digest> 0
// <repo>) of every link (l 0 <repo> 0 <digest>), in batches of
// migrationBatchKeys, after deleting every entry already there (those of
// an interrupted run, and any whose link the old version's code deleted
// since). It returns the number of entries written.
func (db *DB) buildReverseLinks() (int, error) {
	rev := []byte{prefixLinkRev, sep}
	stale, err := db.anyKey(rev)
	if err != nil {
		return 0, err
	}
	if stale {
		b := db.kv.newBatch()
		defer func() { _ = b.close() }()
		if err := b.delRange(rev, upperBound(rev)); err != nil {
			return 0, err
		}
		if err := db.kv.apply(context.Background(), b, false); err != nil {
			return 0, err
		}
	}
	lo := []byte{prefixLink, sep}
	it, err := db.kv.newIter(context.Background(), lo, upperBound(lo))
	if err != nil {
		return 0, err
	}
	defer func() { _ = it.Close() }()
	n, batches := 0, 0
	b := db.kv.newBatch()
	defer func() { _ = b.close() }()
	flush := func() error {
		if b.count() == 0 {
			return nil
		}
		if err := db.kv.apply(context.Background(), b, false); err != nil {
			return err
		}
		_ = b.close()
		b = db.kv.newBatch()
		batches++
		if migrationBatchHook != nil {
			return migrationBatchHook(batches)
		}
		return nil
	}
	for ok := it.First(); ok; ok = it.Next() {
		parts, ok := splitKey(it.Key(), prefixLink, 2)
		if !ok {
			return n, fmt.Errorf("link key %q: %w", it.Key(), ErrCorrupt)
		}
		if err := b.set(makeKey(prefixLinkRev, parts[1], parts[0]), nil); err != nil {
			return n, err
		}
		n++
		if b.count() >= migrationBatchKeys {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return n, err
	}
	return n, flush()
}

// anyKey reports whether some key starts with lo.
func (db *DB) anyKey(lo []byte) (bool, error) {
	it, err := db.kv.newIter(context.Background(), lo, upperBound(lo))
	if err != nil {
		return false, err
	}
	ok := it.First()
	if err := it.Close(); err != nil {
		return false, err
	}
	return ok, nil
}
