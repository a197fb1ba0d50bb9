package engine

// The event router: it takes the queued events (index key e) in order,
// records each in the audit log, and hands it to every webhook that
// selects it (key w), in one synced batch per round. docs/events.md.

import (
	"context"
	"errors"
	"time"

	"github.com/berthstore/berth/engine/internal/events"
)

// routeBatch is the most events one routing round takes.
const routeBatch = 256

// routeInterval is the shortest time between the starts of two routing
// rounds while events keep coming. A round syncs twice (the audit log,
// then the index); without a pause the router would sync as often as
// pushes do, and its fsyncs would queue with theirs on the same disk.
// With it the router syncs at most twice per interval whatever the rate
// of pushes, each round taking what arrived meanwhile; an event after a
// quiet spell is routed at once, and so is a full round's backlog.
// Measured on real time: it paces I/O, it schedules nothing.
const routeInterval = 50 * time.Millisecond

// routeEvents routes queued events until ctx ends: at once, then each time
// a change queues more, at most once per routeInterval.
func (e *Engine) routeEvents(ctx context.Context) {
	var retry time.Duration
	var last time.Time
	for {
		if wait := routeInterval - time.Since(last); !last.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		last = time.Now()
		n, err := e.routeOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			retry = min(max(2*retry, time.Second), time.Minute)
			e.log.Warn("events: routing failed; the events stay queued and routing is retried", "err", err, "retryIn", retry)
			if !e.sleep(ctx, retry) {
				return
			}
			continue
		}
		retry = 0
		if n == routeBatch {
			last = time.Time{} // a backlog: the next round at once
			continue
		}
		select {
		case <-e.ev.kick:
		case <-ctx.Done():
			return
		}
	}
}

// routed is an event of a routing round.
type routed struct {
	seq uint64
	q   *events.Queued
}

// routeOnce routes up to routeBatch queued events and returns how many it
// took off the queue.
//
// Order of the round: the audit records first (the last one synced, so
// all are on disk), then one synced batch that removes the events from
// the queue and writes their deliveries. A crash between the two records
// them again at the next round (the same event ids). The synced commit
// also makes durable the changes whose events it routes (the WAL is
// written in order): a sender never delivers the event of a change that
// a crash could still take back.
func (e *Engine) routeOnce(ctx context.Context) (int, error) {
	e.ev.routeMu.Lock()
	defer e.ev.routeMu.Unlock()
	// One replica routes at a time: an event is routed (and its
	// deliveries handed to senders) once.
	ctx, release, err := e.tryLease(ctx, "events-router")
	if errors.Is(err, errLeaseHeld) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer release()
	var items []routed
	var corrupt []uint64
	err = e.db.WalkEvents(func(seq uint64, v []byte) (bool, error) {
		q, err := events.DecodeQueued(v)
		if err != nil {
			e.log.Error("events: a queued event does not decode; it is removed", "seq", seqText(seq), "err", err)
			corrupt = append(corrupt, seq)
		} else {
			items = append(items, routed{seq, q})
		}
		return len(items)+len(corrupt) < routeBatch, nil
	})
	if err != nil {
		return 0, storageErr(err)
	}
	if len(items)+len(corrupt) == 0 {
		return 0, nil
	}
	for i, it := range items {
		if err := e.RecordAudit(ctx, e.eventAuditRecord(it.q), i == len(items)-1); err != nil {
			if !errors.Is(err, ErrClosed) {
				e.ev.auditFails.Add(1)
			}
			return 0, err
		}
	}
	b := e.db.NewBatch()
	defer b.Close()
	for _, seq := range corrupt {
		if err := b.DeleteEvent(seq); err != nil {
			return 0, storageErr(err)
		}
	}
	handed := map[*endpoint][]*pending{}
	for _, it := range items {
		if err := b.DeleteEvent(it.seq); err != nil {
			return 0, storageErr(err)
		}
		var val []byte
		for _, name := range e.ev.names {
			ep := e.ev.endpoints[name]
			if !ep.filter.Match(it.q.DetailType, it.q.Repository) {
				continue
			}
			if val == nil {
				val = events.EncodeDelivery(&events.Delivery{Queued: *it.q})
			}
			if err := b.PutDelivery(name, it.seq, val); err != nil {
				return 0, storageErr(err)
			}
			handed[ep] = append(handed[ep], &pending{seq: it.seq, repo: it.q.Repository, size: len(val), at: it.q.At})
		}
	}
	if err := b.Commit(true); err != nil {
		return 0, storageErr(err)
	}
	for _, name := range e.ev.names { // in a fixed order
		if ps := handed[e.ev.endpoints[name]]; len(ps) > 0 {
			e.ev.endpoints[name].add(ps)
		}
	}
	n := len(items) + len(corrupt)
	e.ev.routed.Add(uint64(len(items)))
	e.ev.corrupt.Add(uint64(len(corrupt)))
	e.ev.unrouted.Add(-int64(n))
	return n, nil
}
