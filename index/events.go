package index

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
)

// The event queue (docs/events.md): events queued in the batch of the
// change they report, then routed by the engine to each webhook endpoint
// that wants them, and given up there (dead letters) when they cannot be
// delivered. Values are opaque to the index (the engine's versioned
// records, engine/internal/events), framed like templates' (a version
// byte, then the bytes).
//
//	e 0 <seq>                  queued event, not yet routed        Batch.PutEvent
//	w 0 <endpoint> 0 <seq>     delivery pending for an endpoint    Batch.PutDelivery
//	W 0 <endpoint> 0 <seq>     delivery given up (dead letter)     Batch.PutDeadLetter
//
// <seq> is the event's sequence number, 16 lower-case hex digits, so that
// each span lists in sequence order. The engine numbers events in the
// order their changes commit within a repository (under the
// repository's lock); across repositories two commits may land in either
// order.
const (
	prefixEvent    byte = 'e'
	prefixDelivery byte = 'w'
	prefixDead     byte = 'W'
)

// seqPart is the key part of sequence number seq.
func seqPart(seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return hex.EncodeToString(b[:])
}

// parseSeq reads a key part written by seqPart.
func parseSeq(s string) (uint64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[:]), true
}

func eventKey(seq uint64) []byte { return makeKey(prefixEvent, seqPart(seq)) }

func queueKey(kind byte, endpoint string, seq uint64) ([]byte, error) {
	if err := checkPart("endpoint", endpoint); err != nil {
		return nil, err
	}
	return makeKey(kind, endpoint, seqPart(seq)), nil
}

// PutEvent queues an event under sequence number seq; value is opaque.
func (b *Batch) PutEvent(seq uint64, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.set(eventKey(seq), encodeOpaque(value))
}

// DeleteEvent removes queued event seq.
func (b *Batch) DeleteEvent(seq uint64) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.del(eventKey(seq))
}

// PutDelivery queues event seq for endpoint; value is opaque.
func (b *Batch) PutDelivery(endpoint string, seq uint64, value []byte) error {
	return b.putQueued(prefixDelivery, endpoint, seq, value)
}

// DeleteDelivery removes the delivery of event seq to endpoint.
func (b *Batch) DeleteDelivery(endpoint string, seq uint64) error {
	return b.deleteQueued(prefixDelivery, endpoint, seq)
}

// PutDeadLetter keeps the given-up delivery of event seq to endpoint.
func (b *Batch) PutDeadLetter(endpoint string, seq uint64, value []byte) error {
	return b.putQueued(prefixDead, endpoint, seq, value)
}

// DeleteDeadLetter removes a dead letter.
func (b *Batch) DeleteDeadLetter(endpoint string, seq uint64) error {
	return b.deleteQueued(prefixDead, endpoint, seq)
}

func (b *Batch) putQueued(kind byte, endpoint string, seq uint64, value []byte) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := queueKey(kind, endpoint, seq)
	if err != nil {
		return err
	}
	return b.set(k, encodeOpaque(value))
}

func (b *Batch) deleteQueued(kind byte, endpoint string, seq uint64) error {
	if err := b.check(); err != nil {
		return err
	}
	k, err := queueKey(kind, endpoint, seq)
	if err != nil {
		return err
	}
	return b.del(k)
}

// WalkEvents calls fn with each queued event in sequence order, from the
// first, until fn returns false or an error (which it returns). value is
// valid only during the call.
func (db *DB) WalkEvents(fn func(seq uint64, value []byte) (bool, error)) error {
	lo := spanPrefix(prefixEvent)
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		seq, ok := parseSeq(string(k[2:]))
		if !ok {
			return false, fmt.Errorf("index: event key %q: %w", k, ErrCorrupt)
		}
		val, err := decodeOpaqueValue("queued event", v)
		if err != nil {
			return false, err
		}
		return fn(seq, val)
	})
}

// Delivery returns the value of the delivery of event seq to endpoint, or
// ErrNotFound.
func (db *DB) Delivery(endpoint string, seq uint64) ([]byte, error) {
	return db.queued(prefixDelivery, endpoint, seq)
}

// DeadLetter returns the value of a dead letter, or ErrNotFound.
func (db *DB) DeadLetter(endpoint string, seq uint64) ([]byte, error) {
	return db.queued(prefixDead, endpoint, seq)
}

func (db *DB) queued(kind byte, endpoint string, seq uint64) ([]byte, error) {
	k, err := queueKey(kind, endpoint, seq)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = db.get(k, func(v []byte) error {
		var derr error
		out, derr = decodeOpaqueValue("delivery", v)
		return derr
	})
	return out, named(err, "delivery %s/%d", endpoint, seq)
}

// WalkDeliveries calls fn with each pending delivery of endpoint in
// sequence order, until fn returns false or an error.
func (db *DB) WalkDeliveries(endpoint string, fn func(seq uint64, value []byte) (bool, error)) error {
	return db.walkQueued(prefixDelivery, endpoint, fn)
}

// WalkDeadLetters calls fn with each dead letter of endpoint in sequence
// order, until fn returns false or an error.
func (db *DB) WalkDeadLetters(endpoint string, fn func(seq uint64, value []byte) (bool, error)) error {
	return db.walkQueued(prefixDead, endpoint, fn)
}

func (db *DB) walkQueued(kind byte, endpoint string, fn func(seq uint64, value []byte) (bool, error)) error {
	if err := checkPart("endpoint", endpoint); err != nil {
		return err
	}
	lo := spanPrefix(kind, endpoint)
	return db.scan(lo, nil, func(k, v []byte) (bool, error) {
		seq, ok := parseSeq(string(k[len(lo):]))
		if !ok {
			return false, fmt.Errorf("index: delivery key %q: %w", k, ErrCorrupt)
		}
		val, err := decodeOpaqueValue("delivery", v)
		if err != nil {
			return false, err
		}
		return fn(seq, val)
	})
}

// DeliveryEndpoints returns the endpoints that have pending deliveries or
// dead letters, in name order, each once.
func (db *DB) DeliveryEndpoints() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, kind := range []byte{prefixDelivery, prefixDead} {
		lo := []byte{kind, sep}
		var start []byte
		for {
			var name string
			err := db.scan(lo, start, func(k, _ []byte) (bool, error) {
				parts, ok := splitKey(k, kind, 2)
				if !ok {
					return false, fmt.Errorf("index: delivery key %q: %w", k, ErrCorrupt)
				}
				name = parts[0]
				return false, nil
			})
			if err != nil {
				return nil, err
			}
			if name == "" {
				break
			}
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
			start = upperBound(spanPrefix(kind, name)) // the next endpoint's first key
		}
	}
	slices.Sort(out)
	return out, nil
}

// LastEventSeq returns the highest sequence number of any queued event,
// pending delivery or dead letter (0 when there is none): the engine
// numbers new events after it.
func (db *DB) LastEventSeq() (uint64, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return 0, fmt.Errorf("index: last event: %w", ErrClosed)
	}
	var last uint64
	// The e span: its last key.
	seqOf := func(lo []byte, fromKey func(k []byte) (uint64, bool)) error {
		it, err := db.kv.newIter(db.callCtx(), lo, upperBound(lo))
		if err != nil {
			return err
		}
		defer it.Close()
		if it.Last() {
			seq, ok := fromKey(it.Key())
			if !ok {
				return fmt.Errorf("index: event key %q: %w", it.Key(), ErrCorrupt)
			}
			last = max(last, seq)
		}
		return nil
	}
	if err := seqOf([]byte{prefixEvent, sep}, func(k []byte) (uint64, bool) { return parseSeq(string(k[2:])) }); err != nil {
		return 0, err
	}
	// The w and W spans are ordered by endpoint first: the last key of
	// each endpoint's span.
	for _, kind := range []byte{prefixDelivery, prefixDead} {
		it, err := db.kv.newIter(db.callCtx(), []byte{kind, sep}, []byte{kind, sep + 1})
		if err != nil {
			return 0, err
		}
		for ok := it.Last(); ok; {
			parts, good := splitKey(it.Key(), kind, 2)
			if !good {
				_ = it.Close()
				return 0, fmt.Errorf("index: delivery key %q: %w", it.Key(), ErrCorrupt)
			}
			seq, good := parseSeq(parts[1])
			if !good {
				_ = it.Close()
				return 0, fmt.Errorf("index: delivery key %q: %w", it.Key(), ErrCorrupt)
			}
			last = max(last, seq)
			ok = it.SeekLT(spanPrefix(kind, parts[0])) // the previous endpoint's last key
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// decodeOpaqueValue reads a value framed by encodeOpaque.
func decodeOpaqueValue(what string, v []byte) ([]byte, error) {
	if len(v) < 1 || v[0] != valueV1 {
		return nil, fmt.Errorf("%s value: %w", what, ErrCorrupt)
	}
	return append([]byte(nil), v[1:]...), nil
}
