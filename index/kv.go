package index

import (
	"context"
	"errors"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// The index's typed records are keys and values in an ordered key-value
// store: kv. pebble (the embedded default) and PostgreSQL (pgkv.go, for
// several registries sharing one database) implement it; the typed API
// above runs unchanged over either. The pebble implementation is pebble's
// own types behind the interfaces (no copy, no allocation per key).

// kv is an ordered key-value store.
type kv interface {
	// get returns k's value, valid until closer is closed;
	// errKVNotFound when k is absent.
	get(ctx context.Context, k []byte) (v []byte, closer io.Closer, err error)
	// newIter iterates the keys in [lo, hi) as of one point in time.
	newIter(ctx context.Context, lo, hi []byte) (kvIter, error)
	// newBatch starts a batch of writes whose reads see its own writes
	// over the committed state.
	newBatch() kvBatch
	// apply commits b atomically; durably when sync is set.
	apply(ctx context.Context, b kvBatch, sync bool) error
	// sync makes every commit so far durable.
	sync(ctx context.Context) error
	close() error
}

// kvIter is an iterator over a key range; Key and Value are valid until
// the next move.
type kvIter interface {
	First() bool
	Last() bool
	Next() bool
	SeekGE(k []byte) bool
	SeekLT(k []byte) bool
	Key() []byte
	Value() []byte
	Error() error
	Close() error
}

// kvBatch is a batch of writes, readable before it commits.
type kvBatch interface {
	set(k, v []byte) error
	del(k []byte) error
	delRange(lo, hi []byte) error
	get(k []byte) ([]byte, io.Closer, error)
	newIter(lo, hi []byte) (kvIter, error)
	// size is the encoded size of the writes, count their number.
	size() int
	count() int
	close() error
}

// errKVNotFound is a kv's absent key.
var errKVNotFound = pebble.ErrNotFound

var (
	_ kv      = pebbleKV{}
	_ kvIter  = (*pebble.Iterator)(nil)
	_ kvBatch = pebbleBatch{}
)

// pebbleKV is the index's pebble as a kv.
type pebbleKV struct{ db *DB }

func (p pebbleKV) get(_ context.Context, k []byte) ([]byte, io.Closer, error) {
	return p.db.pdb.Get(k)
}

func (p pebbleKV) newIter(_ context.Context, lo, hi []byte) (kvIter, error) {
	it, err := p.db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	return it, nil
}

func (p pebbleKV) newBatch() kvBatch { return pebbleBatch{p.db.pdb.NewIndexedBatch()} }

func (p pebbleKV) apply(_ context.Context, b kvBatch, sync bool) error {
	return p.db.apply(b.(pebbleBatch).Batch, sync)
}

func (p pebbleKV) sync(context.Context) error {
	b := p.db.pdb.NewBatch()
	defer b.Close()
	if err := b.LogData(nil, nil); err != nil {
		return err
	}
	return p.db.apply(b, true)
}

func (p pebbleKV) close() error { return p.db.pdb.Close() }

// pebbleBatch is an indexed pebble batch as a kvBatch.
type pebbleBatch struct{ *pebble.Batch }

func (b pebbleBatch) set(k, v []byte) error        { return b.Set(k, v, nil) }
func (b pebbleBatch) del(k []byte) error           { return b.Delete(k, nil) }
func (b pebbleBatch) delRange(lo, hi []byte) error { return b.DeleteRange(lo, hi, nil) }
func (b pebbleBatch) get(k []byte) ([]byte, io.Closer, error) {
	return b.Get(k)
}
func (b pebbleBatch) size() int    { return b.Len() }
func (b pebbleBatch) count() int   { return int(b.Count()) }
func (b pebbleBatch) close() error { return b.Close() }

func (b pebbleBatch) newIter(lo, hi []byte) (kvIter, error) {
	it, err := b.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	return it, nil
}

// isNotFound reports whether err is a kv's absent key.
func isNotFound(err error) bool { return errors.Is(err, errKVNotFound) }
